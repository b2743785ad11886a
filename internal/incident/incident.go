package incident

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/action"
	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/notify"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
)

// Prefix starts every incident id.
const Prefix = "inc-"

// Statuses an incident moves through (the plan's message templates say
// "Status: Investigating").
var Statuses = []string{"investigating", "identified", "monitoring", "resolved"}

// Incident is the state replayed from an incident's journal.
type Incident struct {
	ID         string    `json:"id"`
	Title      string    `json:"title"`
	Severity   string    `json:"severity"`
	Impact     string    `json:"impact"`
	Service    string    `json:"service"`
	Scenario   string    `json:"scenario,omitempty"`
	Issue      string    `json:"issue,omitempty"`
	Status     string    `json:"status"`
	RootCause  string    `json:"root_cause,omitempty"`
	Opened     time.Time `json:"opened"`
	Resolved   time.Time `json:"resolved,omitzero"`
	LastUpdate time.Time `json:"last_update"`
	Runs       []string  `json:"runs,omitempty"`
	By         string    `json:"opened_by,omitempty"`

	Events []journal.Event `json:"-"`
}

// NextUpdate is when the next status update is due.
func (i *Incident) NextUpdate(interval time.Duration) time.Time { return i.LastUpdate.Add(interval) }

// Overdue reports a missed update; resolved incidents are never overdue.
func (i *Incident) Overdue(now time.Time, interval time.Duration) bool {
	return i.Status != "resolved" && now.After(i.NextUpdate(interval))
}

// Replay builds an incident from its events.
func Replay(id string, events []journal.Event) (*Incident, error) {
	inc := &Incident{ID: id, Events: events}
	for _, e := range events {
		s := func(k string) string { v, _ := e.Data[k].(string); return v }
		switch e.Type {
		case "incident.opened":
			inc.Title, inc.Severity, inc.Impact, inc.Service = s("title"), s("severity"), s("impact"), s("service")
			inc.Scenario, inc.Issue, inc.Status, inc.By = s("scenario"), s("issue"), "investigating", e.By
			inc.Opened, inc.LastUpdate = e.Time, e.Time
		case "incident.updated":
			if e.Status != "" {
				inc.Status = e.Status
			}
			if v := s("impact"); v != "" {
				inc.Impact = v
			}
			inc.LastUpdate = e.Time
		case "incident.resolved":
			inc.Status, inc.Resolved, inc.RootCause, inc.LastUpdate = "resolved", e.Time, s("root_cause"), e.Time
		case "incident.run_joined":
			inc.Runs = append(inc.Runs, s("run"))
		case "notification.sent":
			// An alert or update that reached people resets the cadence.
			if t := s("template"); t == "alert" || t == "update" || t == "resolved" {
				inc.LastUpdate = e.Time
			}
		}
	}
	if inc.Opened.IsZero() {
		return nil, fmt.Errorf("incident %s: journal has no incident.opened event", id)
	}
	return inc, nil
}

// Store manages incidents of a plan.
type Store struct {
	Plan     *plan.Plan
	Journals *journal.Store
	HTTP     *http.Client
	Log      *slog.Logger
	By       string
	Now      func() time.Time
	// AddSecret registers channel credentials for masking.
	AddSecret func(string)
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// OpenRequest describes a new incident.
type OpenRequest struct {
	Title, Severity, Impact, Issue, Scenario string
	// Notify sends the alert template to incidents.notify.
	Notify bool
}

// Open starts an incident.
func (s *Store) Open(ctx context.Context, req OpenRequest) (*Incident, error) {
	if req.Title == "" {
		return nil, errors.New("an incident needs a title")
	}
	if req.Severity == "" {
		req.Severity = "high"
	}
	if req.Impact == "" {
		req.Impact = (&plan.Scenario{Severity: req.Severity}).ImpactOf()
	}
	if req.Issue == "" {
		req.Issue = strings.ToLower(req.Title)
	}
	id := Prefix + repo.NewID(s.now())
	j, err := s.Journals.Create(id)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	_, err = j.Append(ctx, journal.Event{Time: s.now(), Type: "incident.opened", By: s.By, Data: map[string]any{
		"title": req.Title, "severity": req.Severity, "impact": req.Impact, "issue": req.Issue,
		"scenario": req.Scenario, "service": s.Plan.Incidents.Service,
	}})
	if err != nil {
		return nil, err
	}
	inc, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if req.Notify {
		_, err = s.send(ctx, j, inc, action.NotifyRequest{Template: "alert"})
		inc, _ = s.get(ctx, id)
	}
	return inc, err
}

func (s *Store) get(ctx context.Context, id string) (*Incident, error) {
	evs, err := s.Journals.Read(ctx, id)
	if err != nil {
		return nil, err
	}
	return Replay(id, evs)
}

// Get reads an incident by id or unique prefix.
func (s *Store) Get(ctx context.Context, ref string) (*Incident, error) {
	id, err := s.Journals.Resolve(ctx, ref, Prefix)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, id)
}

// List returns every incident, newest first.
func (s *Store) List(ctx context.Context) ([]*Incident, error) {
	ids, err := s.Journals.List(ctx, Prefix)
	if err != nil {
		return nil, err
	}
	var out []*Incident
	for i := len(ids) - 1; i >= 0; i-- {
		inc, err := s.get(ctx, ids[i])
		if err != nil {
			return nil, err
		}
		out = append(out, inc)
	}
	return out, nil
}

// modify appends events to an incident under its lock.
func (s *Store) modify(ctx context.Context, ref string, f func(j *journal.Journal, inc *Incident) error) (*Incident, error) {
	id, err := s.Journals.Resolve(ctx, ref, Prefix)
	if err != nil {
		return nil, err
	}
	var j *journal.Journal
	// Another process may hold the incident for a moment (a run sending
	// a message): wait briefly rather than fail a human's update.
	for i := 0; ; i++ {
		j, _, err = s.Journals.Open(ctx, id)
		if !errors.Is(err, journal.ErrBusy) || i >= 50 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, err
	}
	defer j.Close()
	inc, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := f(j, inc); err != nil {
		return inc, err
	}
	return s.get(ctx, id)
}

// Update records a status update and, with notify, sends the update
// template (PagerDuty: acknowledge).
func (s *Store) Update(ctx context.Context, ref, status, message string, notifyPeople bool) (*Incident, error) {
	status = strings.ToLower(status)
	if status != "" && (!contains(Statuses, status) || status == "resolved") {
		return nil, fmt.Errorf("status %q: use investigating, identified or monitoring (resolve with `linkdr incident resolve`)", status)
	}
	return s.modify(ctx, ref, func(j *journal.Journal, inc *Incident) error {
		if inc.Status == "resolved" {
			return fmt.Errorf("incident %s is resolved", inc.ID)
		}
		if _, err := j.Append(ctx, journal.Event{Time: s.now(), Type: "incident.updated", Status: status, Message: message, By: s.By}); err != nil {
			return err
		}
		if !notifyPeople {
			return nil
		}
		inc, err := s.get(ctx, inc.ID)
		if err != nil {
			return err
		}
		_, err = s.send(ctx, j, inc, action.NotifyRequest{Template: "update", Fields: map[string]string{"message": message}})
		return err
	})
}

// Resolve closes an incident and sends the resolution notice (PagerDuty:
// resolve).
func (s *Store) Resolve(ctx context.Context, ref, rootCause string, notifyPeople bool) (*Incident, error) {
	return s.modify(ctx, ref, func(j *journal.Journal, inc *Incident) error {
		if inc.Status == "resolved" {
			return fmt.Errorf("incident %s is already resolved", inc.ID)
		}
		if _, err := j.Append(ctx, journal.Event{Time: s.now(), Type: "incident.resolved", By: s.By, Data: map[string]any{"root_cause": rootCause}}); err != nil {
			return err
		}
		if !notifyPeople {
			return nil
		}
		inc, err := s.get(ctx, inc.ID)
		if err != nil {
			return err
		}
		_, err = s.send(ctx, j, inc, action.NotifyRequest{Template: "resolved"})
		return err
	})
}

// JoinRun records that a runbook run works on the incident.
func (s *Store) JoinRun(ctx context.Context, ref, runID, scenario string) (*Incident, error) {
	return s.modify(ctx, ref, func(j *journal.Journal, inc *Incident) error {
		_, err := j.Append(ctx, journal.Event{Time: s.now(), Type: "incident.run_joined", By: s.By, Data: map[string]any{"run": runID, "scenario": scenario}})
		return err
	})
}

// Remind sends the reminder template when an update is overdue.
func (s *Store) Remind(ctx context.Context, ref string) (bool, error) {
	sent := false
	_, err := s.modify(ctx, ref, func(j *journal.Journal, inc *Incident) error {
		iv := s.Plan.Incidents.UpdateInterval.D()
		if !inc.Overdue(s.now(), iv) {
			return nil
		}
		// One reminder per missed interval.
		for _, e := range inc.Events {
			if e.Type == "notification.sent" && e.Data["template"] == "reminder" && !e.Time.Before(inc.NextUpdate(iv)) {
				return nil
			}
		}
		sent = true
		_, err := s.send(ctx, j, inc, action.NotifyRequest{Template: "reminder"})
		return err
	})
	return sent, err
}

// Notifier sends a run's notify steps on behalf of an incident.
func (s *Store) Notifier(id string, vars map[string]string) action.Notifier {
	return &notifier{s: s, id: id, vars: vars}
}

type notifier struct {
	s    *Store
	id   string
	vars map[string]string
}

func (n *notifier) Notify(ctx context.Context, req action.NotifyRequest) ([]string, error) {
	var sent []string
	_, err := n.s.modify(ctx, n.id, func(j *journal.Journal, inc *Incident) error {
		if st := req.Fields["status"]; st != "" && contains(Statuses, strings.ToLower(st)) && strings.ToLower(st) != "resolved" {
			if _, err := j.Append(ctx, journal.Event{Time: n.s.now(), Type: "incident.updated", Status: strings.ToLower(st), Message: req.Fields["issue"], By: n.s.By}); err != nil {
				return err
			}
			inc.Status = strings.ToLower(st)
		}
		var err error
		sent, err = n.s.send(ctx, j, inc, req)
		return err
	})
	return sent, err
}

// Check opens every channel a request names (credentials readable) and
// renders its template, sending nothing.
func (n *notifier) Check(ctx context.Context, req action.NotifyRequest) error {
	chs := n.s.channels(req)
	if len(chs) == 0 {
		return errors.New("no channel: name one, or list channels under incidents.notify")
	}
	for _, c := range chs {
		if _, err := notify.Open(n.s.Plan, c, n.s.HTTP); err != nil {
			return err
		}
	}
	inline := req.Message
	if req.Template != "" {
		inline = ""
	}
	_, err := notify.Render(n.s.Plan, req.Template, inline, notify.Data{Service: n.s.Plan.Incidents.Service, Vars: n.vars})
	return err
}

func (s *Store) channels(req action.NotifyRequest) []string {
	if len(req.Channels) > 0 {
		return req.Channels
	}
	return s.Plan.Incidents.Notify
}

// eventFor maps templates to PagerDuty event actions.
func eventFor(req action.NotifyRequest) string {
	if req.Event != "" {
		return req.Event
	}
	switch req.Template {
	case "alert":
		return notify.EventTrigger
	case "update":
		return notify.EventAcknowledge
	case "resolved":
		return notify.EventResolve
	}
	return notify.EventInfo
}

// send renders and delivers a message to every channel, journaling each
// delivery; it fails if any channel failed, after trying them all.
func (s *Store) send(ctx context.Context, j *journal.Journal, inc *Incident, req action.NotifyRequest) ([]string, error) {
	chs := s.channels(req)
	if len(chs) == 0 {
		return nil, errors.New("no channel: name one, or list channels under incidents.notify")
	}
	d := s.data(inc)
	for k, v := range req.Fields {
		switch k {
		case "status":
			d.Status = titleCase(v)
		case "impact":
			d.Impact = v
		case "issue":
			d.Issue = v
		case "root_cause":
			d.RootCause = v
		case "message":
			d.Message = v
		}
	}
	if req.Template == "reminder" {
		d.NextUpdate = inc.NextUpdate(s.Plan.Incidents.UpdateInterval.D())
	}
	// With a named template, message fills {{.Message}}; alone it is the
	// template itself.
	inline := req.Message
	if req.Template != "" {
		d.Message, inline = firstNonEmpty(req.Message, d.Message), ""
	}
	text, err := notify.Render(s.Plan, req.Template, inline, d)
	if err != nil {
		return nil, err
	}
	m := notify.Message{Event: eventFor(req), Summary: notify.Summary(text), Text: text, Severity: inc.Severity,
		DedupKey: inc.ID, Source: "linkdr/" + firstNonEmpty(inc.Scenario, s.Plan.Name), Time: s.now(),
		Details: map[string]string{"incident": inc.ID, "status": d.Status, "impact": d.Impact}}
	var sent []string
	var errs []error
	for _, name := range chs {
		ch, err := notify.Open(s.Plan, name, s.HTTP)
		if err == nil {
			if s.AddSecret != nil {
				for _, sec := range ch.Secrets() {
					s.AddSecret(sec)
				}
			}
			err = ch.Send(ctx, m)
		}
		ev := journal.Event{Time: s.now(), Type: "notification.sent", By: s.By, Message: m.Summary,
			Data: map[string]any{"channel": name, "template": firstNonEmpty(req.Template, "inline"), "event": m.Event}}
		if err != nil {
			ev.Type, ev.Error = "notification.failed", err.Error()
			errs = append(errs, err)
		} else {
			sent = append(sent, name)
		}
		if _, jerr := j.Append(ctx, ev); jerr != nil {
			return sent, jerr
		}
	}
	return sent, errors.Join(errs...)
}

func (s *Store) data(inc *Incident) notify.Data {
	iv := s.Plan.Incidents.UpdateInterval.D()
	return notify.Data{
		ID: inc.ID, Title: inc.Title, Service: firstNonEmpty(inc.Service, s.Plan.Incidents.Service), Status: titleCase(inc.Status),
		Impact: inc.Impact, Severity: inc.Severity, Issue: inc.Issue, RootCause: firstNonEmpty(inc.RootCause, "under investigation"),
		Scenario: inc.Scenario, Started: inc.Opened, Resolved: inc.Resolved, NextUpdate: s.now().Add(iv),
		UpdateInterval: iv, PostmortemDue: s.Plan.Incidents.PostmortemDue.D(),
	}
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
