package runbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/expr-lang/expr"

	"github.com/linkapp/linkdr/internal/action"
	"github.com/linkapp/linkdr/internal/incident"
	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
)

// Errors a run ends with; the CLI maps them to exit codes.
var (
	ErrFailed           = errors.New("runbook failed")
	ErrAborted          = errors.New("runbook aborted")
	ErrAwaitingApproval = errors.New("runbook awaiting approval")
	ErrUnknownScenario  = errors.New("unknown scenario")
)

// RunPrefix starts every run id.
const RunPrefix = "run-"

// Clock is the engine's time source; tests use a fake one so budgets and
// backoffs need no sleeping.
type Clock = action.Clock

// Engine runs scenarios of one plan.
type Engine struct {
	Plan      *plan.Plan
	Runner    *ops.Runner
	Journals  *journal.Store
	Incidents *incident.Store
	Checks    action.Checker
	Log       *slog.Logger
	Clock     Clock
	// By names who drives runs (user@host), for the journal.
	By string
	// Observer sees every event as it is journaled (the live view).
	Observer func(journal.Event)
	// Actions overrides the action registry (tests).
	Actions func(name string) (action.Action, bool)
	// TickInterval paces budget checks between events. Default 1s.
	TickInterval time.Duration
}

// RunOptions are the knobs of one run.
type RunOptions struct {
	Vars map[string]string
	// Yes approves every gate as the invoking user.
	Yes bool
	// Prompt asks a person on a terminal; nil when there is none.
	Prompt func(ctx context.Context, question string) (bool, error)
	// WaitApproval is how long a gate waits for `runbook approve` before
	// the run pauses (exit: awaiting approval).
	WaitApproval time.Duration
	// Incident to join; empty opens a new one.
	Incident string
}

func (e *Engine) clock() Clock {
	if e.Clock == nil {
		return action.RealClock{}
	}
	return e.Clock
}

func (e *Engine) lookup(name string) (action.Action, bool) {
	if e.Actions != nil {
		return e.Actions(name)
	}
	return action.Get(name)
}

// Scenario finds a scenario of the plan.
func (e *Engine) Scenario(name string) (*plan.Scenario, error) {
	s, ok := e.Plan.Scenarios[name]
	if !ok || s == nil {
		return nil, fmt.Errorf("%w %q in %s (scenarios: %s)", ErrUnknownScenario, name, e.Plan.Path, strings.Join(e.Plan.ScenarioNames(), ", "))
	}
	return s, nil
}

// vars merges plan, scenario and command-line vars.
func (e *Engine) vars(sc *plan.Scenario, over map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range e.Plan.Vars {
		out[k] = v
	}
	for k, v := range sc.Vars {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// run is one execution (or resumption) of a scenario.
type run struct {
	e     *Engine
	opts  RunOptions
	j     *journal.Journal
	sc    *plan.Scenario
	mask  *masker
	dry   bool
	mu    sync.Mutex
	state *State
	// stepCancel stops the running step on abort.
	stepCancel context.CancelCauseFunc
	notifier   action.Notifier
	// planned collects what a dry run's steps would create.
	planned *action.Planned
}

// Start runs a scenario from the beginning. It returns the run id with
// any error, so a failed or paused run can be shown and resumed.
func (e *Engine) Start(ctx context.Context, name string, opts RunOptions) (string, error) {
	sc, err := e.Scenario(name)
	if err != nil {
		return "", err
	}
	id := RunPrefix + repo.NewID(e.clock().Now())
	j, err := e.Journals.Create(id)
	if err != nil {
		return "", err
	}
	defer j.Close()
	r := &run{e: e, opts: opts, j: j, sc: sc, mask: newMasker(e.Plan), state: newState()}
	r.state.ID = id
	vars := e.vars(sc, opts.Vars)
	inc, err := r.joinIncident(ctx, opts.Incident, vars)
	if err != nil {
		return id, err
	}
	var snapshot map[string]any
	if b, err := json.Marshal(sc); err == nil {
		_ = json.Unmarshal(b, &snapshot)
	}
	varsAny := map[string]any{}
	for k, v := range vars {
		varsAny[k] = v
	}
	if _, err := r.emit(ctx, journal.Event{Type: "run.started", By: e.By, Data: map[string]any{
		"scenario": sc.Name, "title": sc.Title, "rto": sc.RTO.String(), "incident": inc, "vars": varsAny, "snapshot": snapshot,
	}}); err != nil {
		return id, err
	}
	return id, r.execute(ctx)
}

// Resume continues a run from its first unfinished step.
func (e *Engine) Resume(ctx context.Context, ref string, opts RunOptions) (string, error) {
	id, err := e.Journals.Resolve(ctx, ref, RunPrefix)
	if err != nil {
		return "", err
	}
	j, events, err := e.Journals.Open(ctx, id)
	if err != nil {
		return id, err
	}
	defer j.Close()
	st, err := Replay(id, events)
	if err != nil {
		return id, err
	}
	if st.Terminal() {
		return id, fmt.Errorf("run %s is %s: nothing to resume (start a new run)", id, st.Status)
	}
	r := &run{e: e, opts: opts, j: j, sc: st.Scenario, mask: newMasker(e.Plan), state: st}
	if cur, ok := e.Plan.Scenarios[st.Name]; ok && !sameScenario(cur, st.Scenario) {
		e.log().Warn("the plan's scenario changed since the run started; resuming the version the run started with", "run", id, "scenario", st.Name)
	}
	if opts.Vars == nil {
		opts.Vars = st.Vars
	}
	r.opts.Vars = opts.Vars
	if st.Incident != "" && e.Incidents != nil {
		r.notifier = e.Incidents.Notifier(st.Incident, st.Vars)
	}
	if _, err := r.emit(ctx, journal.Event{Type: "run.resumed", By: e.By, Message: "was " + st.Status}); err != nil {
		return id, err
	}
	return id, r.execute(ctx)
}

func sameScenario(a, b *plan.Scenario) bool {
	return fmt.Sprintf("%+v", a.Phases) == fmt.Sprintf("%+v", b.Phases)
}

func (e *Engine) log() *slog.Logger {
	if e.Log == nil {
		return slog.Default()
	}
	return e.Log
}

func (r *run) joinIncident(ctx context.Context, ref string, vars map[string]string) (string, error) {
	inc := r.e.Incidents
	if inc == nil {
		return "", nil
	}
	var id string
	if ref != "" {
		got, err := inc.JoinRun(ctx, ref, r.state.ID, r.sc.Name)
		if err != nil {
			return "", fmt.Errorf("join incident %s: %w", ref, err)
		}
		id = got.ID
	} else {
		got, err := inc.Open(ctx, incident.OpenRequest{Title: r.sc.Title, Severity: r.sc.Severity, Impact: r.sc.ImpactOf(), Scenario: r.sc.Name})
		if err != nil {
			return "", fmt.Errorf("open incident: %w", err)
		}
		if _, err := inc.JoinRun(ctx, got.ID, r.state.ID, r.sc.Name); err != nil {
			return "", err
		}
		id = got.ID
	}
	r.notifier = inc.Notifier(id, vars)
	return id, nil
}

// emit masks, journals, applies and shows an event.
func (r *run) emit(ctx context.Context, ev journal.Event) (journal.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = r.e.clock().Now()
	}
	ev = r.mask.event(ev)
	ev, err := r.j.Append(ctx, ev)
	if err != nil {
		return ev, err
	}
	r.state.apply(ev)
	r.state.Events = append(r.state.Events, ev)
	if r.e.Observer != nil {
		r.e.Observer(ev)
	}
	return ev, nil
}

// finish ends the run with a terminal or paused status.
func (r *run) finish(ctx context.Context, status string, cause error) error {
	typ := "run.finished"
	if status == StatusAwaitingApproval {
		typ = "run.paused"
	}
	ev := journal.Event{Type: typ, Status: status, Duration: r.state.Elapsed(r.e.clock().Now()).Seconds()}
	if cause != nil {
		ev.Error = cause.Error()
	}
	if status == StatusAwaitingApproval {
		for id := range r.state.Requested {
			if r.state.Approvals[id] == "" {
				ev.Step = id
			}
		}
	}
	if _, err := r.emit(context.WithoutCancel(ctx), ev); err != nil {
		return err
	}
	switch status {
	case StatusFailed:
		return fmt.Errorf("%w: %v", ErrFailed, cause)
	case StatusAborted:
		return fmt.Errorf("%w: %v", ErrAborted, cause)
	case StatusAwaitingApproval:
		return fmt.Errorf("%w: step %s (approve with `linkdr runbook approve %s %s`, then `linkdr runbook resume %s`)", ErrAwaitingApproval, ev.Step, r.state.ID, ev.Step, r.state.ID)
	}
	return nil
}

func (r *run) execute(ctx context.Context) (err error) {
	monitorCtx, stopMonitor := context.WithCancel(ctx)
	defer stopMonitor()
	go r.monitor(monitorCtx)
	defer func() {
		if ctx.Err() != nil && err != nil && !errors.Is(err, ErrAborted) {
			_, _ = r.emit(context.WithoutCancel(ctx), journal.Event{Type: "run.interrupted", Error: context.Cause(ctx).Error()})
		}
	}()
	for i := range r.sc.Phases {
		ph := &r.sc.Phases[i]
		ps := r.state.Phases[ph.ID]
		if ps != nil && !ps.Finished.IsZero() {
			continue
		}
		if ps == nil || ps.Started.IsZero() {
			if _, err := r.emit(ctx, journal.Event{Type: "phase.started", Phase: ph.ID, Message: ph.Title,
				Data: map[string]any{"budget": ph.Budget.String(), "budget_ns": int64(ph.Budget)}}); err != nil {
				return err
			}
		}
		failed := false
		for j := range ph.Steps {
			st := &ph.Steps[j]
			if r.state.Steps[st.ID].Done() {
				continue
			}
			if err := r.checkAbort(ctx); err != nil {
				return r.finish(ctx, StatusAborted, err)
			}
			status, err := r.step(ctx, ph, st)
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			switch {
			case errors.Is(err, ErrAwaitingApproval):
				return r.finish(ctx, StatusAwaitingApproval, nil)
			case errors.Is(err, ErrAborted):
				return r.finish(ctx, StatusAborted, err)
			case err != nil && status == StepContinued:
				failed = true
			case err != nil && st.Policy() == plan.OnErrorRollback:
				r.rollback(ctx, st)
				r.endPhase(ctx, ph, StepFailed)
				return r.finish(ctx, StatusFailed, fmt.Errorf("step %s: %v (rolled back)", st.ID, err))
			case err != nil:
				r.endPhase(ctx, ph, StepFailed)
				return r.finish(ctx, StatusFailed, fmt.Errorf("step %s: %v", st.ID, err))
			}
			r.checkBudgets(ctx)
		}
		status := StepSucceeded
		if failed {
			status = "succeeded-with-failures"
		}
		r.endPhase(ctx, ph, status)
	}
	return r.finish(ctx, StatusSucceeded, nil)
}

func (r *run) endPhase(ctx context.Context, ph *plan.Phase, status string) {
	r.checkBudgets(ctx)
	now := r.e.clock().Now()
	el := r.state.PhaseElapsed(ph.ID, now)
	_, _ = r.emit(context.WithoutCancel(ctx), journal.Event{Type: "phase.finished", Phase: ph.ID, Status: status, Duration: el.Seconds(),
		Data: map[string]any{"budget": ph.Budget.String(), "budget_ns": int64(ph.Budget), "over_budget": el > ph.Budget.D()}})
}

// step runs one step through its gate, condition, attempts and policy.
func (r *run) step(ctx context.Context, ph *plan.Phase, st *plan.Step) (string, error) {
	if st.When != "" {
		ok, err := r.when(st.When)
		if err != nil {
			_, _ = r.emit(ctx, journal.Event{Type: "step.finished", Phase: ph.ID, Step: st.ID, Action: st.Action, Status: StepFailed, Error: err.Error()})
			return StepFailed, err
		}
		if !ok {
			_, err := r.emit(ctx, journal.Event{Type: "step.finished", Phase: ph.ID, Step: st.ID, Action: st.Action, Status: StepSkipped, Message: "when: " + st.When + " is false"})
			return StepSkipped, err
		}
	}
	if action.IsGate(st) {
		if err := r.gate(ctx, st); err != nil {
			return "", err
		}
	}
	a, ok := r.e.lookup(st.Action)
	if !ok {
		return StepFailed, fmt.Errorf("unknown action %q", st.Action)
	}
	attempts := st.Retries + 1
	var lastErr error
	for n := max(1, r.state.step(st.ID).Attempts+1); ; n++ {
		params, err := r.expand(st.With, false)
		var res action.Result
		start := r.e.clock().Now()
		if _, eerr := r.emit(ctx, journal.Event{Type: "step.started", Phase: ph.ID, Step: st.ID, Action: st.Action, Attempt: n, Message: st.Title}); eerr != nil {
			return StepFailed, eerr
		}
		if err == nil {
			res, err = r.runAction(ctx, a, st, params)
		}
		dur := r.e.clock().Now().Sub(start)
		if err == nil {
			_, eerr := r.emit(ctx, journal.Event{Type: "step.finished", Phase: ph.ID, Step: st.ID, Action: st.Action, Attempt: n, Status: StepSucceeded, Duration: dur.Seconds(), Data: map[string]any{"result": map[string]any(res)}})
			return StepSucceeded, eerr
		}
		lastErr = err
		if errors.Is(err, ErrAborted) || ctx.Err() != nil {
			_, _ = r.emit(context.WithoutCancel(ctx), journal.Event{Type: "step.finished", Phase: ph.ID, Step: st.ID, Action: st.Action, Attempt: n, Status: "interrupted", Error: err.Error(), Duration: dur.Seconds()})
			return StepFailed, err
		}
		if n >= attempts {
			status := StepFailed
			if st.Policy() == plan.OnErrorContinue {
				status = StepContinued
			}
			_, _ = r.emit(ctx, journal.Event{Type: "step.finished", Phase: ph.ID, Step: st.ID, Action: st.Action, Attempt: n, Status: status, Error: err.Error(), Duration: dur.Seconds(), Data: map[string]any{"result": map[string]any(res)}})
			return status, lastErr
		}
		backoff := st.BackoffFor(n)
		_, _ = r.emit(ctx, journal.Event{Type: "step.retry", Phase: ph.ID, Step: st.ID, Action: st.Action, Attempt: n, Error: err.Error(), Data: map[string]any{"backoff": backoff.String(), "backoff_ns": int64(backoff)}})
		if err := r.e.clock().Sleep(ctx, backoff); err != nil {
			return StepFailed, err
		}
	}
}

// runAction runs one attempt with the step's timeout, output journaled
// line by line, and abort watched.
func (r *run) runAction(ctx context.Context, a action.Action, st *plan.Step, params action.Params) (action.Result, error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if t := st.EffectiveTimeout(); t > 0 {
		var c2 context.CancelFunc
		sctx, c2 = context.WithTimeoutCause(sctx, t, fmt.Errorf("step %s timed out after %s", st.ID, plan.Duration(t)))
		defer c2()
	}
	r.mu.Lock()
	r.stepCancel = cancel
	r.mu.Unlock()
	defer func() { r.mu.Lock(); r.stepCancel = nil; r.mu.Unlock() }()
	out := &lineWriter{emit: func(line string) {
		_, _ = r.emit(ctx, journal.Event{Type: "step.output", Step: st.ID, Message: line})
	}}
	env := r.env(out)
	res, err := a.Run(sctx, env, params)
	out.Flush()
	if err != nil && sctx.Err() != nil && ctx.Err() == nil {
		if cause := context.Cause(sctx); cause != nil {
			if errors.Is(cause, ErrAborted) {
				return res, cause
			}
			err = fmt.Errorf("%v: %w", cause, err)
		}
	}
	return res, err
}

func (r *run) env(out io.Writer) *action.Env {
	return &action.Env{Plan: r.e.Plan, Runner: r.e.Runner, Output: out, Log: r.e.log(), Clock: r.e.clock(),
		Checks: r.e.Checks, Notifier: r.notifier, AddSecret: r.mask.add, Planned: r.planned}
}

// rollback runs, newest first, the rollback step of every step of the run
// that succeeded (and of the failing one, whose change may be partial).
func (r *run) rollback(ctx context.Context, failed *plan.Step) {
	ctx = context.WithoutCancel(ctx)
	_, _ = r.emit(ctx, journal.Event{Type: "rollback.started", Step: failed.ID, Message: "undoing the run's steps after " + failed.ID + " failed"})
	var todo []*plan.Step
	for i := range r.sc.Phases {
		for j := range r.sc.Phases[i].Steps {
			st := &r.sc.Phases[i].Steps[j]
			if st.Rollback == nil || r.state.RolledBack[st.ID] {
				continue
			}
			if s := r.state.Steps[st.ID]; st.ID == failed.ID || (s != nil && s.Status == StepSucceeded) {
				todo = append(todo, st)
			}
		}
	}
	status := StepSucceeded
	for i := len(todo) - 1; i >= 0; i-- {
		st := todo[i]
		rb := st.Rollback
		a, ok := r.e.lookup(rb.Action)
		_, _ = r.emit(ctx, journal.Event{Type: "rollback.step.started", Step: st.ID, Action: rb.Action})
		var err error
		if !ok {
			err = fmt.Errorf("unknown action %q", rb.Action)
		} else {
			var params action.Params
			params, err = r.expand(rb.With, false)
			if err == nil {
				tmp := *rb
				tmp.ID = st.ID
				_, err = r.runAction(ctx, a, &tmp, params)
			}
		}
		ev := journal.Event{Type: "rollback.step.finished", Step: st.ID, Action: rb.Action, Status: StepSucceeded}
		if err != nil {
			ev.Status, ev.Error, status = StepFailed, err.Error(), StepFailed
		}
		_, _ = r.emit(ctx, ev)
	}
	_, _ = r.emit(ctx, journal.Event{Type: "rollback.finished", Status: status, Message: fmt.Sprintf("%d rollback steps", len(todo))})
}

// gate waits for approval of a step.
func (r *run) gate(ctx context.Context, st *plan.Step) error {
	if r.state.Approvals[st.ID] != "" {
		return nil
	}
	msg := fmt.Sprint(st.With["message"])
	if st.With["message"] == nil {
		msg = fmt.Sprintf("run step %s (%s)?", st.ID, st.Action)
		if st.Title != "" {
			msg = st.Title + "?"
		}
	}
	grant := func(by, how string) error {
		_, err := r.emit(ctx, journal.Event{Type: "approval.granted", Step: st.ID, By: by, Message: how})
		return err
	}
	if c, ok := r.e.Journals.Controls(ctx, r.state.ID)["approve-"+st.ID]; ok {
		return grant(c.By, "approved with `linkdr runbook approve`"+comment(c.Comment))
	}
	if r.opts.Yes {
		return grant(r.e.By, "--yes")
	}
	if !r.state.Requested[st.ID] {
		if _, err := r.emit(ctx, journal.Event{Type: "approval.requested", Step: st.ID, Message: msg}); err != nil {
			return err
		}
	}
	answers := make(chan error, 1)
	if r.opts.Prompt != nil {
		go func() {
			ok, err := r.opts.Prompt(ctx, fmt.Sprintf("[%s] %s", st.ID, msg))
			switch {
			case err != nil:
				answers <- err
			case ok:
				answers <- nil
			default:
				answers <- fmt.Errorf("%w: %s was not approved", ErrAborted, st.ID)
			}
		}()
	}
	deadline := r.e.clock().Now().Add(r.opts.WaitApproval)
	for {
		select {
		case err := <-answers:
			if err != nil {
				return err
			}
			return grant(r.e.By, "approved at the prompt")
		default:
		}
		if c, ok := r.e.Journals.Controls(ctx, r.state.ID)["approve-"+st.ID]; ok {
			return grant(c.By, "approved with `linkdr runbook approve`"+comment(c.Comment))
		}
		if err := r.checkAbort(ctx); err != nil {
			return err
		}
		if r.opts.Prompt == nil && !r.e.clock().Now().Before(deadline) {
			return ErrAwaitingApproval
		}
		if err := r.e.clock().Sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

func comment(c string) string {
	if c == "" {
		return ""
	}
	return ": " + c
}

func (r *run) checkAbort(ctx context.Context) error {
	if c, ok := r.e.Journals.Controls(ctx, r.state.ID)["abort"]; ok {
		return fmt.Errorf("%w by %s%s", ErrAborted, c.By, comment(c.Comment))
	}
	return nil
}

// monitor checks budgets and abort requests while a step runs.
func (r *run) monitor(ctx context.Context) {
	iv := r.e.TickInterval
	if iv <= 0 {
		iv = time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.checkBudgets(ctx)
		if n++; n%2 == 0 {
			if err := r.checkAbort(ctx); err != nil {
				r.mu.Lock()
				if r.stepCancel != nil {
					r.stepCancel(err)
				}
				r.mu.Unlock()
			}
		}
	}
}

// checkBudgets emits a warning at 80 % of a running phase's budget and a
// breach at 100 %, once each, and the same for the scenario's RTO; and
// reminds people when the incident's update is overdue.
func (r *run) checkBudgets(ctx context.Context) {
	now := r.e.clock().Now()
	type due struct {
		ev journal.Event
	}
	var out []due
	r.mu.Lock()
	for _, ph := range r.sc.Phases {
		ps := r.state.Phases[ph.ID]
		if ps == nil || ps.Started.IsZero() || !ps.Finished.IsZero() || ph.Budget <= 0 {
			continue
		}
		el := now.Sub(ps.Started)
		pct := 100 * el.Seconds() / ph.Budget.D().Seconds()
		data := map[string]any{"budget": ph.Budget.String(), "elapsed": el.Round(time.Second).String(), "percent": int(pct)}
		if pct >= 80 && !ps.Warned {
			out = append(out, due{journal.Event{Type: "budget.warning", Phase: ph.ID, Data: data,
				Message: fmt.Sprintf("phase %s has used %.0f %% of its %s budget (%s)", ph.ID, pct, ph.Budget, el.Round(time.Second))}})
		}
		if pct >= 100 && !ps.Breached {
			out = append(out, due{journal.Event{Type: "budget.breached", Phase: ph.ID, Data: data,
				Message: fmt.Sprintf("phase %s is over its %s budget (%s elapsed)", ph.ID, ph.Budget, el.Round(time.Second))}})
		}
	}
	if rto := r.sc.RTO.D(); rto > 0 && !r.state.Started.IsZero() {
		el := now.Sub(r.state.Started)
		if el >= rto*8/10 && !r.state.RTOWarned {
			out = append(out, due{journal.Event{Type: "rto.warning", Message: fmt.Sprintf("the run has used %.0f %% of the scenario's %s RTO", 100*el.Seconds()/rto.Seconds(), r.sc.RTO)}})
		}
		if el >= rto && !r.state.RTOBreached {
			out = append(out, due{journal.Event{Type: "rto.breached", Message: fmt.Sprintf("the scenario's %s RTO is breached (%s elapsed)", r.sc.RTO, el.Round(time.Second))}})
		}
	}
	incID := r.state.Incident
	r.mu.Unlock()
	for _, d := range out {
		_, _ = r.emit(ctx, d.ev)
	}
	if incID != "" && r.e.Incidents != nil {
		if sent, err := r.e.Incidents.Remind(ctx, incID); err == nil && sent {
			_, _ = r.emit(ctx, journal.Event{Type: "incident.update_due", Message: fmt.Sprintf("incident %s: the %s status update is overdue; reminder sent", incID, r.e.Plan.Incidents.UpdateInterval)})
		}
	}
}

// when evaluates a step condition.
func (r *run) when(cond string) (bool, error) {
	steps := map[string]any{}
	for id, s := range r.state.Steps {
		steps[id] = map[string]any{"status": s.Status, "result": s.Result, "error": s.Error}
	}
	vars := map[string]any{}
	for k, v := range r.opts.Vars {
		vars[k] = v
	}
	for k, v := range r.e.vars(r.sc, nil) {
		if _, ok := vars[k]; !ok {
			vars[k] = v
		}
	}
	env := map[string]any{"vars": vars, "steps": steps, "env": os.Getenv}
	out, err := expr.Eval(cond, env)
	if err != nil {
		return false, fmt.Errorf("when %q: %v", cond, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("when %q: gives %v, not true or false", cond, out)
	}
	return b, nil
}

// templateData is what {{…}} in step parameters sees.
func (r *run) templateData() map[string]any {
	steps := map[string]any{}
	for id, s := range r.state.Steps {
		steps[id] = map[string]any{"Status": s.Status, "Result": s.Result, "Error": s.Error}
	}
	vars := r.e.vars(r.sc, r.opts.Vars)
	return map[string]any{"Vars": vars, "Steps": steps, "Run": r.state.ID, "Scenario": r.sc.Name, "Incident": r.state.Incident}
}

// expand resolves templates and ${ENV} in every string of a step's
// parameters. In a dry run, references to results of steps that have not
// run stay as written.
func (r *run) expand(with map[string]any, dry bool) (action.Params, error) {
	data := r.templateData()
	var walk func(v any) (any, error)
	walk = func(v any) (any, error) {
		switch x := v.(type) {
		case string:
			return r.expandString(x, data, dry)
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				w, err := walk(e)
				if err != nil {
					return nil, err
				}
				out[i] = w
			}
			return out, nil
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				w, err := walk(e)
				if err != nil {
					return nil, err
				}
				out[k] = w
			}
			return out, nil
		}
		return v, nil
	}
	p := action.Params{}
	for k, v := range with {
		w, err := walk(v)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", k, err)
		}
		p[k] = w
	}
	return p, nil
}

var envRef = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)

var secretName = []string{"PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "PASSWD"}

func (r *run) expandString(s string, data map[string]any, dry bool) (string, error) {
	if strings.Contains(s, "{{") {
		t, err := template.New("param").Option("missingkey=error").Parse(s)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			if dry {
				return s, nil
			}
			return "", err
		}
		s = b.String()
	}
	var missing []string
	// Only ${NAME}: a bare $NAME belongs to the shell of a shell step.
	s = envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
			return ref
		}
		for _, w := range secretName {
			if strings.Contains(strings.ToUpper(name), w) {
				r.mask.add(v)
			}
		}
		return v
	})
	if len(missing) > 0 && !dry {
		sort.Strings(missing)
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return s, nil
}
