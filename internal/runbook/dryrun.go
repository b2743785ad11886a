package runbook

import (
	"context"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/action"
	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/plan"
)

// Precondition is the dry-run verdict on one step.
type Precondition struct {
	Phase   string         `json:"phase"`
	Step    string         `json:"step"`
	Action  string         `json:"action"`
	Gate    bool           `json:"gate,omitempty"`
	When    string         `json:"when,omitempty"`
	Timeout string         `json:"timeout,omitempty"`
	Retries int            `json:"retries,omitempty"`
	OnError string         `json:"on_error"`
	Params  map[string]any `json:"params,omitempty"`
	OK      bool           `json:"ok"`
	Error   string         `json:"error,omitempty"`
	Notes   []string       `json:"notes,omitempty"`
}

// DryRun checks every step's preconditions (tools present, clusters and
// zones reachable, backups there) and returns the plan of the run. It
// writes no journal, opens no incident and changes nothing.
func (e *Engine) DryRun(ctx context.Context, name string, opts RunOptions) ([]Precondition, error) {
	sc, err := e.Scenario(name)
	if err != nil {
		return nil, err
	}
	r := &run{e: e, opts: opts, sc: sc, mask: newMasker(e.Plan), state: newState(), dry: true, planned: &action.Planned{}}
	r.state.ID = "dry-run"
	if e.Incidents != nil {
		r.notifier = e.Incidents.Notifier("dry-run", e.vars(sc, opts.Vars))
	}
	var out []Precondition
	for _, ph := range sc.Phases {
		for _, st := range ph.Steps {
			pc := Precondition{Phase: ph.ID, Step: st.ID, Action: st.Action, Gate: action.IsGate(&st), When: st.When, Retries: st.Retries, OnError: st.Policy()}
			if t := st.EffectiveTimeout(); t > 0 {
				pc.Timeout = plan.Duration(t).String()
			}
			pc.OK, pc.Notes, pc.Error = r.precondition(ctx, &st, &pc)
			if st.Rollback != nil {
				rb := Precondition{}
				ok, notes, msg := r.precondition(ctx, st.Rollback, &rb)
				for _, n := range notes {
					pc.Notes = append(pc.Notes, "rollback: "+n)
				}
				if !ok {
					pc.OK = false
					pc.Error = strings.TrimSpace(pc.Error + "; rollback: " + msg)
				}
			}
			out = append(out, pc)
		}
	}
	return out, nil
}

func (r *run) precondition(ctx context.Context, st *plan.Step, pc *Precondition) (bool, []string, string) {
	a, ok := r.e.lookup(st.Action)
	if !ok {
		return false, nil, "unknown action " + st.Action
	}
	params, err := r.expand(st.With, true)
	if err != nil {
		return false, nil, err.Error()
	}
	pc.Params = r.mask.value(map[string]any(params)).(map[string]any)
	var notes []string
	out := &lineWriter{emit: func(l string) { notes = append(notes, r.mask.text(l)) }}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = a.Check(cctx, r.env(out), params)
	out.Flush()
	if err != nil {
		return false, notes, r.mask.text(err.Error())
	}
	return true, notes, ""
}

// Status reads a run: its replayed state and whether a process drives it.
func (e *Engine) Status(ctx context.Context, ref string) (*State, bool, error) {
	id, err := e.Journals.Resolve(ctx, ref, RunPrefix)
	if err != nil {
		return nil, false, err
	}
	evs, err := e.Journals.Read(ctx, id)
	if err != nil {
		return nil, false, err
	}
	st, err := Replay(id, evs)
	if err != nil {
		return nil, false, err
	}
	busy := e.Journals.Busy(id)
	if !busy && st.Status == StatusRunning {
		// Nobody drives it and it did not finish: the process died.
		st.Status = StatusInterrupted
		st.Error = "the process driving the run stopped (crash or kill); resume it"
	}
	return st, busy, nil
}

// Approve records an approval for a gate; the driving process, or the
// next resume, picks it up.
func (e *Engine) Approve(ctx context.Context, ref, step, comment string) (string, error) {
	st, _, err := e.Status(ctx, ref)
	if err != nil {
		return "", err
	}
	s, _ := st.Scenario.StepByID(step)
	if s == nil {
		return st.ID, errorf("run %s has no step %q (steps: %s)", st.ID, step, strings.Join(st.Scenario.StepIDs(), ", "))
	}
	if !action.IsGate(s) {
		return st.ID, errorf("step %s does not wait for approval", step)
	}
	if st.Approvals[step] != "" {
		return st.ID, errorf("step %s is already approved by %s", step, st.Approvals[step])
	}
	return st.ID, e.Journals.WriteControl(ctx, st.ID, journal.Control{Name: "approve-" + step, By: e.By, Time: e.clock().Now().UTC(), Comment: comment})
}

// Abort stops a run: the driving process stops at once (the running step
// is cancelled); a run nobody drives is marked aborted now.
func (e *Engine) Abort(ctx context.Context, ref, comment string) (string, error) {
	st, busy, err := e.Status(ctx, ref)
	if err != nil {
		return "", err
	}
	if st.Terminal() {
		return st.ID, errorf("run %s is already %s", st.ID, st.Status)
	}
	if err := e.Journals.WriteControl(ctx, st.ID, journal.Control{Name: "abort", By: e.By, Time: e.clock().Now().UTC(), Comment: comment}); err != nil {
		return st.ID, err
	}
	if busy {
		return st.ID, nil
	}
	j, _, err := e.Journals.Open(ctx, st.ID)
	if err != nil {
		return st.ID, err
	}
	defer j.Close()
	msg := "aborted by " + e.By + comment2(comment)
	_, err = j.Append(ctx, journal.Event{Time: e.clock().Now(), Type: "run.finished", Status: StatusAborted, Error: msg, By: e.By, Duration: st.Elapsed(e.clock().Now()).Seconds()})
	return st.ID, err
}

func comment2(c string) string {
	if c == "" {
		return ""
	}
	return ": " + c
}
