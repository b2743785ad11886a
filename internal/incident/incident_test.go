package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/plan"
)

type sink struct {
	mu  sync.Mutex
	got []map[string]any
	srv *httptest.Server
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		s.mu.Lock()
		s.got = append(s.got, m)
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func setup(t *testing.T) (*Store, *sink, *sink, *time.Time) {
	slack, pd := newSink(t), newSink(t)
	p := plan.Default()
	p.Name = "link"
	p.Incidents.Service = "Link App"
	p.Incidents.Notify = []string{"slack", "pd"}
	p.Notifications.Channels = map[string]*plan.Channel{
		"slack": {Type: "slack", URL: plan.Secret(slack.srv.URL)},
		"pd":    {Type: "pagerduty", RoutingKey: "key", URL: plan.Secret(pd.srv.URL)},
	}
	now := time.Date(2026, 11, 26, 6, 15, 0, 0, time.UTC)
	s := &Store{Plan: p, Journals: &journal.Store{Dir: t.TempDir()}, By: "alice", Now: func() time.Time { return now }}
	return s, slack, pd, &now
}

func TestIncidentLifecycleAndCadence(t *testing.T) {
	s, slack, pd, now := setup(t)
	ctx := context.Background()
	inc, err := s.Open(ctx, OpenRequest{Title: "API down", Severity: "critical", Issue: "API errors", Notify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(slack.got) != 1 || !strings.Contains(slack.got[0]["text"].(string), "We are investigating reports of API errors. Updates will be provided every 30 minutes.") {
		t.Fatalf("slack %v", slack.got)
	}
	if pd.got[0]["event_action"] != "trigger" || pd.got[0]["dedup_key"] != inc.ID {
		t.Fatalf("pagerduty %v", pd.got)
	}
	// On time: no reminder.
	*now = now.Add(29 * time.Minute)
	if sent, err := s.Remind(ctx, inc.ID); err != nil || sent {
		t.Fatalf("reminder before the cadence: %v %v", sent, err)
	}
	// Missed: one reminder per missed interval, to Slack only.
	*now = now.Add(2 * time.Minute)
	got, _ := s.Get(ctx, inc.ID)
	if !got.Overdue(*now, 30*time.Minute) {
		t.Fatal("not overdue after 31 minutes")
	}
	if sent, err := s.Remind(ctx, inc.ID); err != nil || !sent {
		t.Fatalf("no reminder after 31 minutes: %v", err)
	}
	if sent, _ := s.Remind(ctx, inc.ID); sent {
		t.Fatal("two reminders for one missed update")
	}
	if len(slack.got) != 2 || !strings.HasPrefix(slack.got[1]["text"].(string), "⏰ UPDATE OVERDUE\nIncident "+inc.ID) || len(pd.got) != 1 {
		t.Fatalf("reminder: slack %v, pagerduty %v", slack.got, pd.got)
	}
	if !strings.Contains(slack.got[1]["text"].(string), "was due at 2026-11-26 06:45 UTC") {
		t.Fatalf("reminder text %q", slack.got[1]["text"])
	}
	// An update resets the cadence and acknowledges in PagerDuty.
	inc, err = s.Update(ctx, inc.ID, "identified", "failing over", true)
	if err != nil || inc.Status != "identified" || inc.Overdue(*now, 30*time.Minute) {
		t.Fatalf("update: %+v %v", inc, err)
	}
	if pd.got[1]["event_action"] != "acknowledge" || !strings.Contains(slack.got[2]["text"].(string), "Status: Identified\nImpact: High\nfailing over") {
		t.Fatalf("update: pd %v slack %v", pd.got, slack.got[2])
	}
	if _, err := s.Update(ctx, inc.ID, "fixed", "x", false); err == nil {
		t.Fatal("unknown status accepted")
	}
	*now = now.Add(time.Hour)
	inc, err = s.Resolve(ctx, inc.ID, "a bad deploy", true)
	if err != nil || inc.Status != "resolved" || inc.Resolved != *now {
		t.Fatalf("resolve: %+v %v", inc, err)
	}
	if pd.got[2]["event_action"] != "resolve" || !strings.Contains(slack.got[3]["text"].(string), "Root cause: a bad deploy") {
		t.Fatalf("resolve: pd %v", pd.got)
	}
	if sent, _ := s.Remind(ctx, inc.ID); sent {
		t.Fatal("reminder for a resolved incident")
	}
}

func TestPostmortem(t *testing.T) {
	s, _, _, now := setup(t)
	ctx := context.Background()
	sc := &plan.Scenario{Title: "Regional failure", Severity: "critical", RTO: plan.Duration(4 * time.Hour)}
	s.Plan.Scenarios = map[string]*plan.Scenario{"regional-failure": sc}
	inc, err := s.Open(ctx, OpenRequest{Title: "Regional failure", Severity: "critical", Scenario: "regional-failure"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := *now
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	run := []journal.Event{
		{Time: at(0), Type: "run.started", Data: map[string]any{"scenario": "regional-failure"}},
		{Time: at(0), Type: "phase.started", Phase: "assessment", Data: map[string]any{"budget": "15m"}},
		{Time: at(1), Type: "approval.requested", Step: "declare"},
		{Time: at(9), Type: "approval.granted", Step: "declare", By: "bob"},
		{Time: at(20), Type: "budget.breached", Phase: "assessment", Message: "phase assessment is over its 15m budget (20m0s elapsed)"},
		{Time: at(21), Type: "phase.finished", Phase: "assessment", Status: "succeeded", Duration: 21 * 60, Data: map[string]any{"budget": "15m"}},
		{Time: at(21), Type: "phase.started", Phase: "database", Data: map[string]any{"budget": "1h30m"}},
		{Time: at(66), Type: "step.finished", Step: "restore", Action: "restore", Status: "succeeded", Duration: 45 * 60,
			Data: map[string]any{"result": map[string]any{"store": "users-db", "backup": "20261126T054500Z-aaaa", "consistent_at": "2026-11-26T05:45:00Z"}}},
		{Time: at(66), Type: "phase.finished", Phase: "database", Status: "succeeded", Duration: 45 * 60, Data: map[string]any{"budget": "1h30m"}},
		{Time: at(66), Type: "run.finished", Status: "succeeded", Duration: 66 * 60},
	}
	s.JoinRun(ctx, inc.ID, "run-x", "regional-failure")
	*now = at(70)
	inc, _ = s.Resolve(ctx, inc.ID, "power loss", false)
	var b bytes.Buffer
	if err := Postmortem(&b, s.Plan, inc, map[string][]journal.Event{"run-x": run}, at(80)); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"**RTO**: 1h10m0s from opening to resolution, against an objective of 4h: met.",
		"**RPO** (users-db): restored backup `20261126T054500Z-aaaa`, consistent at 2026-11-26 05:45:00 UTC — up to 30m0s of data written before the incident opened is lost, within the objective of 1h.",
		"| run-x | assessment | 15m | 21m0s | 140.0 % ⚠ breached | succeeded |",
		"| run-x | database | 1h30m | 45m0s | 50.0 % | succeeded |",
		"- Manual: 1 approvals, 8m0s spent waiting for people; 0 status updates.",
		"`declare` approved by bob after 8m0s",
		"phase assessment is over its 15m budget",
		"### Short term (< 1 week)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("post-mortem lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}
