package incident

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/plan"
)

// Entry is one line of an incident timeline.
type Entry struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"` // "incident" or a run id
	Type   string    `json:"type"`
	Text   string    `json:"text"`
}

// Timeline merges the incident's events with those of its runs, in time
// order. Step output is left out: it is in the run's journal.
func Timeline(inc *Incident, runs map[string][]journal.Event) []Entry {
	var out []Entry
	for _, e := range inc.Events {
		out = append(out, Entry{Time: e.Time, Source: "incident", Type: e.Type, Text: Describe(e)})
	}
	for id, evs := range runs {
		for _, e := range evs {
			if e.Type == "step.output" {
				continue
			}
			out = append(out, Entry{Time: e.Time, Source: id, Type: e.Type, Text: Describe(e)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

func dur(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Describe renders one event for people.
func Describe(e journal.Event) string {
	s := func(k string) string { v, _ := e.Data[k].(string); return v }
	by := ""
	if e.By != "" {
		by = " by " + e.By
	}
	where := e.Step
	if where == "" {
		where = e.Phase
	}
	switch e.Type {
	case "incident.opened":
		return fmt.Sprintf("Incident opened%s: %s (severity %s, impact %s)", by, s("title"), s("severity"), s("impact"))
	case "incident.updated":
		msg := fmt.Sprintf("Status update%s", by)
		if e.Status != "" {
			msg += ": " + e.Status
		}
		if e.Message != "" {
			msg += " — " + e.Message
		}
		return msg
	case "incident.resolved":
		return fmt.Sprintf("Resolved%s. Root cause: %s", by, s("root_cause"))
	case "incident.run_joined":
		return fmt.Sprintf("Runbook run %s (%s) joined", s("run"), s("scenario"))
	case "notification.sent":
		return fmt.Sprintf("Sent %s to %s (%s)", s("template"), s("channel"), s("event"))
	case "notification.failed":
		return fmt.Sprintf("Could not notify %s: %s", s("channel"), e.Error)
	case "run.started":
		return fmt.Sprintf("Runbook %s started%s", s("scenario"), by)
	case "run.resumed":
		return fmt.Sprintf("Run resumed%s", by)
	case "run.paused":
		return fmt.Sprintf("Run paused: %s at %s", e.Status, e.Step)
	case "run.interrupted":
		return "Run interrupted: " + e.Error
	case "run.finished":
		if e.Error != "" {
			return fmt.Sprintf("Run %s after %s: %s", e.Status, dur(e.Duration), e.Error)
		}
		return fmt.Sprintf("Run %s after %s", e.Status, dur(e.Duration))
	case "phase.started":
		return fmt.Sprintf("Phase %s started (budget %s)", e.Phase, s("budget"))
	case "phase.finished":
		return fmt.Sprintf("Phase %s %s in %s of %s", e.Phase, e.Status, dur(e.Duration), s("budget"))
	case "step.started":
		if e.Attempt > 1 {
			return fmt.Sprintf("%s: %s started (attempt %d)", e.Step, e.Action, e.Attempt)
		}
		return fmt.Sprintf("%s: %s started", e.Step, e.Action)
	case "step.finished":
		if e.Status == "skipped" {
			return fmt.Sprintf("%s skipped (%s)", e.Step, e.Message)
		}
		if e.Error != "" {
			return fmt.Sprintf("%s %s after %s: %s", e.Step, e.Status, dur(e.Duration), e.Error)
		}
		return fmt.Sprintf("%s %s in %s", e.Step, e.Status, dur(e.Duration))
	case "step.retry":
		return fmt.Sprintf("%s failed (attempt %d): %s; retrying in %s", e.Step, e.Attempt, e.Error, s("backoff"))
	case "approval.requested":
		return fmt.Sprintf("%s waits for approval: %s", e.Step, e.Message)
	case "approval.granted":
		return fmt.Sprintf("%s approved%s", e.Step, by)
	case "budget.warning", "budget.breached", "rto.warning", "rto.breached":
		return e.Message
	case "rollback.started":
		return "Rollback started: " + e.Message
	case "rollback.finished":
		return "Rollback " + e.Status
	case "incident.update_due":
		return e.Message
	}
	if e.Message != "" {
		return fmt.Sprintf("%s %s: %s", e.Type, where, e.Message)
	}
	return strings.TrimSpace(e.Type + " " + where)
}

// PhaseTime is a phase's measured time against its budget.
type PhaseTime struct {
	Run, Phase string
	Budget     time.Duration
	Elapsed    time.Duration
	Status     string
}

// Phases measures every phase of the runs.
func Phases(runs map[string][]journal.Event, now time.Time) []PhaseTime {
	var out []PhaseTime
	for _, id := range sortedRuns(runs) {
		idx := map[string]int{}
		for _, e := range runs[id] {
			switch e.Type {
			case "phase.started":
				if _, seen := idx[e.Phase]; seen {
					continue
				}
				var b time.Duration
				if d, err := plan.ParseDuration(fmt.Sprint(e.Data["budget"])); err == nil {
					b = d.D()
				}
				idx[e.Phase] = len(out)
				out = append(out, PhaseTime{Run: id, Phase: e.Phase, Budget: b, Elapsed: now.Sub(e.Time), Status: "running"})
			case "phase.finished":
				if i, ok := idx[e.Phase]; ok {
					out[i].Elapsed = time.Duration(e.Duration * float64(time.Second))
					out[i].Status = e.Status
				}
			}
		}
	}
	return out
}

func sortedRuns(runs map[string][]journal.Event) []string {
	ids := make([]string, 0, len(runs))
	for id := range runs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Postmortem writes the Markdown draft: summary, measured RTO and RPO,
// phases against budgets, automated versus manual work, the timeline and
// the plan's post-incident checklist.
func Postmortem(w io.Writer, p *plan.Plan, inc *Incident, runs map[string][]journal.Event, now time.Time) error {
	var b strings.Builder
	f := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	f("# Post-mortem (draft): %s\n\n", inc.Title)
	f("| | |\n|---|---|\n")
	f("| Incident | `%s` |\n| Service | %s |\n| Severity | %s |\n| Impact | %s |\n", inc.ID, inc.Service, inc.Severity, inc.Impact)
	f("| Status | %s |\n| Opened | %s |\n| Resolved | %s |\n", inc.Status, stamp(inc.Opened), stamp(inc.Resolved))
	var sc *plan.Scenario
	if inc.Scenario != "" {
		sc = p.Scenarios[inc.Scenario]
		f("| Scenario | %s |\n", inc.Scenario)
	}
	f("\n## Recovery objectives, measured\n\n")
	end, ongoing := inc.Resolved, false
	if end.IsZero() {
		end, ongoing = now, true
	}
	rto := end.Sub(inc.Opened)
	objective := p.Objectives.RTO.D()
	if sc != nil {
		objective = sc.RTO.D()
	}
	verdict := "met"
	if rto > objective {
		verdict = "**missed**"
	}
	suffix := ""
	if ongoing {
		suffix = " so far (not resolved)"
	}
	f("- **RTO**: %s%s from opening to resolution, against an objective of %s: %s.\n", rto.Round(time.Second), suffix, plan.Duration(objective), verdict)
	for _, id := range sortedRuns(runs) {
		evs := runs[id]
		if len(evs) == 0 {
			continue
		}
		last := evs[len(evs)-1]
		f("- Run `%s`: %s, %s of runbook time.\n", id, runStatus(evs), last.Time.Sub(evs[0].Time).Round(time.Second))
	}
	rpoObjective := p.Objectives.RPO.D()
	if sc != nil {
		rpoObjective = p.ScenarioRPO(sc).D()
	}
	restores := 0
	for _, id := range sortedRuns(runs) {
		for _, e := range runs[id] {
			if e.Type != "step.finished" || e.Action != "restore" || e.Status != "succeeded" {
				continue
			}
			res, _ := e.Data["result"].(map[string]any)
			at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(res["consistent_at"]))
			if err != nil {
				continue
			}
			restores++
			loss := inc.Opened.Sub(at)
			v := "within"
			if loss > rpoObjective {
				v = "**beyond**"
			}
			f("- **RPO** (%s): restored backup `%v`, consistent at %s — up to %s of data written before the incident opened is lost, %s the objective of %s.\n",
				res["store"], res["backup"], stamp(at), loss.Round(time.Second), v, plan.Duration(rpoObjective))
		}
	}
	if restores == 0 {
		f("- **RPO**: no restore ran, so no data was lost to a restore.\n")
	}

	f("\n## Phases against budgets\n\n| run | phase | budget | elapsed | used | status |\n|---|---|---|---|---|---|\n")
	for _, ph := range Phases(runs, now) {
		used := "—"
		if ph.Budget > 0 {
			used = fmt.Sprintf("%.1f %%", 100*ph.Elapsed.Seconds()/ph.Budget.Seconds())
			if ph.Elapsed > ph.Budget {
				used += " ⚠ breached"
			}
		}
		f("| %s | %s | %s | %s | %s | %s |\n", ph.Run, ph.Phase, plan.Duration(ph.Budget), dur(ph.Elapsed.Seconds()), used, ph.Status)
	}

	f("\n## Automated and manual work\n\n")
	var autoN, manualN int
	var autoT, manualT time.Duration
	var manual []string
	for _, id := range sortedRuns(runs) {
		requested := map[string]time.Time{}
		for _, e := range runs[id] {
			switch e.Type {
			case "step.finished":
				if e.Action != "approve" {
					autoN++
					autoT += time.Duration(e.Duration * float64(time.Second))
				}
			case "approval.requested":
				requested[e.Step] = e.Time
			case "approval.granted":
				manualN++
				wait := time.Duration(0)
				if t, ok := requested[e.Step]; ok {
					wait = e.Time.Sub(t)
				}
				manualT += wait
				manual = append(manual, fmt.Sprintf("  - `%s` approved by %s after %s", e.Step, e.By, wait.Round(time.Second)))
			}
		}
	}
	updates := 0
	for _, e := range inc.Events {
		if e.Type == "incident.updated" {
			updates++
		}
	}
	f("- Automated: %d step runs by linkdr, %s in total.\n", autoN, autoT.Round(time.Second))
	f("- Manual: %d approvals, %s spent waiting for people; %d status updates.\n", manualN, manualT.Round(time.Second), updates)
	for _, m := range manual {
		f("%s\n", m)
	}

	f("\n## Root cause\n\n%s\n", firstNonEmpty(inc.RootCause, "_To be written._"))
	f("\n## Timeline (UTC)\n\n| time | source | event |\n|---|---|---|\n")
	for _, e := range Timeline(inc, runs) {
		f("| %s | %s | %s |\n", e.Time.UTC().Format("15:04:05"), e.Source, strings.ReplaceAll(e.Text, "|", "\\|"))
	}
	f("\n## What went well, what did not\n\n_To be written._\n")
	f("\n## Post-incident checklist\n")
	for _, g := range p.Incidents.Checklist {
		f("\n### %s\n\n", g.Title)
		for _, it := range g.Items {
			f("- [ ] %s\n", it)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func runStatus(evs []journal.Event) string {
	for i := len(evs) - 1; i >= 0; i-- {
		switch evs[i].Type {
		case "run.finished", "run.paused":
			return evs[i].Status
		}
	}
	return "unfinished"
}
