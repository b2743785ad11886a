package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/action"
	"github.com/linkapp/linkdr/internal/incident"
	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/plan"
)

// fakeClock moves only when told to, or when something sleeps on it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// fake is a test action: it counts runs, advances the clock by
// "advance", fails while "fail" runs remain, and records rollbacks.
type fake struct {
	mu     sync.Mutex
	clock  *fakeClock
	runs   map[string]int
	checks int
	log    []string
	failN  map[string]int
}

// knobs: the test's settings travel in the shell step's env: mapping,
// which the plan accepts.
func knobs(p action.Params) action.Params {
	for k, v := range p.Map("env") {
		p[k] = v
	}
	return p
}

func (f *fake) Check(ctx context.Context, env *action.Env, p action.Params) error {
	p = knobs(p)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	if p.String("precondition", "") == "bad" {
		return errors.New("precondition failed")
	}
	return nil
}

func (f *fake) Run(ctx context.Context, env *action.Env, p action.Params) (action.Result, error) {
	p = knobs(p)
	id := p.String("id", "")
	f.mu.Lock()
	f.runs[id]++
	f.log = append(f.log, id)
	fail := f.failN[id]
	if fail > 0 {
		f.failN[id]--
	}
	f.mu.Unlock()
	if d, _ := p.Duration("advance", 0); d > 0 {
		f.clock.Advance(d)
	}
	if out := p.String("print", ""); out != "" {
		fmt.Fprintln(env.Output, out)
	}
	if p.String("block", "") == "yes" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if fail != 0 {
		return action.Result{"id": id}, fmt.Errorf("%s failed", id)
	}
	return action.Result{"id": id, "value": "v-" + id}, nil
}

type harness struct {
	t      *testing.T
	e      *Engine
	f      *fake
	clock  *fakeClock
	mu     sync.Mutex
	events []journal.Event
}

// newHarness loads a plan whose scenario "s" has the given phases; every
// step action is the fake (shell steps need a command, so steps carry
// `command: x` and the fake reads id and its knobs from with:).
func newHarness(t *testing.T, phases string) *harness {
	t.Helper()
	dir := t.TempDir()
	src := `version: 1
name: link
encryption: {recipients: ["age1xr6u8t73dv7sccmfhau34tvcs4pnjkgyxucrgukk9wpp89zd2fzqn6v5nt"], identity_file: k}
repositories: {primary: {url: "file://` + dir + `/repo"}}
stores:
  users-db:
    kind: postgres
    url: "postgres://app:pa55word-xyz@127.0.0.1:1/db"
    backups: [{method: logical, schedule: "*/20 * * * *"}]
vars: {region: us-east-1}
scenarios:
  s:
    title: Test scenario
    severity: high
    rto: 1h
    phases:
` + phases
	path := filepath.Join(dir, "linkdr.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, err := plan.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)}
	f := &fake{clock: clock, runs: map[string]int{}, failN: map[string]int{}}
	h := &harness{t: t, f: f, clock: clock}
	js := &journal.Store{Dir: filepath.Join(dir, "state")}
	h.e = &Engine{
		Plan: p, Journals: js, Clock: clock, By: "tester@host", TickInterval: time.Hour,
		Incidents: &incident.Store{Plan: p, Journals: js, By: "tester@host", Now: clock.Now},
		Actions: func(name string) (action.Action, bool) {
			if name == "approve" {
				return action.Get(name)
			}
			return f, true
		},
		Observer: func(e journal.Event) { h.mu.Lock(); h.events = append(h.events, e); h.mu.Unlock() },
	}
	return h
}

func (h *harness) of(typ string) []journal.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []journal.Event
	for _, e := range h.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func (h *harness) state(id string) *State {
	st, _, err := h.e.Status(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func step(id string, extra string) string {
	return fmt.Sprintf("          - {id: %s, action: shell, with: {command: x, env: {id: %s%s}}}\n", id, id, extra)
}

func TestBudgetWarningAndBreach(t *testing.T) {
	h := newHarness(t, `      - id: assess
        budget: 10m
        steps:
`+step("look", ", advance: 8m")+step("think", ", advance: 3m")+`      - id: fix
        budget: 40m
        steps:
`+step("repair", ", advance: 20m"))
	id, err := h.e.Start(context.Background(), "s", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	warn, breach := h.of("budget.warning"), h.of("budget.breached")
	if len(warn) != 1 || warn[0].Phase != "assess" || warn[0].Data["percent"] != 80 {
		t.Fatalf("warnings %+v", warn)
	}
	if len(breach) != 1 || breach[0].Phase != "assess" || breach[0].Data["percent"] != 110 {
		t.Fatalf("breaches %+v", breach)
	}
	if warn[0].Seq > breach[0].Seq {
		t.Fatal("breach before warning")
	}
	// 31 of 60 minutes: the RTO is fine; fix used half its budget.
	if len(h.of("rto.warning")) != 0 {
		t.Fatal("rto warning at 52 %")
	}
	st := h.state(id)
	if st.Status != StatusSucceeded || st.PhaseElapsed("assess", h.clock.Now()) != 11*time.Minute || st.PhaseElapsed("fix", h.clock.Now()) != 20*time.Minute {
		t.Fatalf("state %s, phases %v %v", st.Status, st.PhaseElapsed("assess", h.clock.Now()), st.PhaseElapsed("fix", h.clock.Now()))
	}
	fin := h.of("phase.finished")
	if fin[0].Data["over_budget"] != true || fin[1].Data["over_budget"] != false {
		t.Fatalf("phase.finished %+v", fin)
	}
}

func TestRTOBreach(t *testing.T) {
	h := newHarness(t, `      - id: all
        budget: 1h
        steps:
`+step("slow", ", advance: 65m"))
	if _, err := h.e.Start(context.Background(), "s", RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(h.of("rto.warning")) != 1 || len(h.of("rto.breached")) != 1 {
		t.Fatalf("rto events: %v %v", h.of("rto.warning"), h.of("rto.breached"))
	}
}

func TestRetriesWithBackoff(t *testing.T) {
	h := newHarness(t, `      - id: p
        budget: 30m
        steps:
          - {id: flaky, action: shell, with: {command: x, env: {id: flaky}}, retries: 3, backoff: 10s}
`)
	h.f.failN["flaky"] = 2
	start := h.clock.Now()
	id, err := h.e.Start(context.Background(), "s", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	retries := h.of("step.retry")
	if len(retries) != 2 || retries[0].Data["backoff"] != "10s" || retries[1].Data["backoff"] != "20s" {
		t.Fatalf("retries %+v", retries)
	}
	if h.f.runs["flaky"] != 3 || h.clock.Now().Sub(start) != 30*time.Second {
		t.Fatalf("%d runs, %s waited", h.f.runs["flaky"], h.clock.Now().Sub(start))
	}
	if st := h.state(id); st.Steps["flaky"].Status != StepSucceeded || st.Steps["flaky"].Attempts != 3 {
		t.Fatalf("step %+v", st.Steps["flaky"])
	}
	// Retries exhausted: the step fails after 1 + retries attempts.
	h2 := newHarness(t, `      - id: p
        budget: 30m
        steps:
          - {id: broken, action: shell, with: {command: x, env: {id: broken}}, retries: 1}
`)
	h2.f.failN["broken"] = -1
	if _, err := h2.e.Start(context.Background(), "s", RunOptions{}); !errors.Is(err, ErrFailed) || h2.f.runs["broken"] != 2 {
		t.Fatalf("got %v after %d runs", err, h2.f.runs["broken"])
	}
}

func TestOnErrorPolicies(t *testing.T) {
	t.Run("Continue", func(t *testing.T) {
		h := newHarness(t, `      - id: p
        budget: 30m
        steps:
          - {id: optional, action: shell, with: {command: x, env: {id: optional}}, on_error: continue}
`+step("next", ""))
		h.f.failN["optional"] = -1
		id, err := h.e.Start(context.Background(), "s", RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st := h.state(id)
		if st.Steps["optional"].Status != StepContinued || h.f.runs["next"] != 1 || st.Status != StatusSucceeded {
			t.Fatalf("state %+v %+v", st.Steps["optional"], st)
		}
		if ph := h.of("phase.finished"); ph[0].Status != "succeeded-with-failures" {
			t.Fatalf("phase %+v", ph)
		}
	})
	t.Run("Fail", func(t *testing.T) {
		h := newHarness(t, `      - id: p
        budget: 30m
        steps:
`+step("first", "")+step("breaks", "")+step("never", ""))
		h.f.failN["breaks"] = -1
		id, err := h.e.Start(context.Background(), "s", RunOptions{})
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "step breaks: breaks failed") {
			t.Fatalf("got %v", err)
		}
		if h.f.runs["never"] != 0 || h.state(id).Status != StatusFailed {
			t.Fatal("a step after a failed one ran")
		}
		if _, err := h.e.Resume(context.Background(), id, RunOptions{}); err == nil {
			t.Fatal("a failed run resumed")
		}
	})
}

func TestRollback(t *testing.T) {
	rb := func(id string) string {
		return fmt.Sprintf(", rollback: {action: shell, with: {command: x, env: {id: undo-%s}}}", id)
	}
	h := newHarness(t, `      - id: p
        budget: 30m
        steps:
          - {id: scale, action: shell, with: {command: x, env: {id: scale}}`+rb("scale")+`}
          - {id: note, action: shell, with: {command: x, env: {id: note}}}
          - {id: flip, action: shell, with: {command: x, env: {id: flip}}`+rb("flip")+`}
      - id: q
        budget: 20m
        steps:
          - {id: verify, action: shell, with: {command: x, env: {id: verify}}, on_error: rollback`+rb("verify")+`}
          - {id: after, action: shell, with: {command: x, env: {id: after}}`+rb("after")+`}
`)
	h.f.failN["verify"] = -1
	id, err := h.e.Start(context.Background(), "s", RunOptions{})
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("got %v", err)
	}
	want := "scale note flip verify undo-verify undo-flip undo-scale"
	if got := strings.Join(h.f.log, " "); got != want {
		t.Fatalf("order: %s\nwant:  %s", got, want)
	}
	if fin := h.of("rollback.finished"); len(fin) != 1 || fin[0].Status != StepSucceeded {
		t.Fatalf("rollback.finished %+v", fin)
	}
	if h.state(id).Status != StatusFailed {
		t.Fatal("a rolled-back run is a failed run")
	}
}

func TestApprovalGate(t *testing.T) {
	phases := `      - id: p
        budget: 30m
        steps:
` + step("before", "") + `          - {id: go-ahead, action: approve, with: {message: "Fail over?"}}
          - {id: risky, action: shell, with: {command: x, env: {id: risky}}, confirm: true}
`
	t.Run("PauseApproveResume", func(t *testing.T) {
		h := newHarness(t, phases)
		id, err := h.e.Start(context.Background(), "s", RunOptions{})
		if !errors.Is(err, ErrAwaitingApproval) {
			t.Fatalf("got %v", err)
		}
		st := h.state(id)
		if st.Status != StatusAwaitingApproval || h.f.runs["before"] != 1 || h.f.runs["risky"] != 0 {
			t.Fatalf("state %s, runs %v", st.Status, h.f.runs)
		}
		if req := h.of("approval.requested"); len(req) != 1 || req[0].Message != "Fail over?" {
			t.Fatalf("requested %+v", req)
		}
		if _, err := h.e.Approve(context.Background(), id, "before", ""); err == nil {
			t.Fatal("approved a step that is not a gate")
		}
		if _, err := h.e.Approve(context.Background(), id, "go-ahead", "outage confirmed"); err != nil {
			t.Fatal(err)
		}
		// The next gate stops the run again.
		if _, err := h.e.Resume(context.Background(), id, RunOptions{}); !errors.Is(err, ErrAwaitingApproval) {
			t.Fatalf("got %v", err)
		}
		if _, err := h.e.Approve(context.Background(), id[:12], "risky", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := h.e.Resume(context.Background(), id, RunOptions{}); err != nil {
			t.Fatal(err)
		}
		if h.f.runs["before"] != 1 || h.f.runs["risky"] != 1 || h.state(id).Status != StatusSucceeded {
			t.Fatalf("runs %v", h.f.runs)
		}
		g := h.of("approval.granted")
		if len(g) != 2 || g[0].By != "tester@host" || !strings.Contains(g[0].Message, "outage confirmed") {
			t.Fatalf("granted %+v", g)
		}
	})
	t.Run("ApprovedWhileWaiting", func(t *testing.T) {
		h := newHarness(t, phases)
		var id string
		h.e.Observer = func(e journal.Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
			if e.Type == "run.started" {
				id = "pending"
			}
			if e.Type == "approval.requested" {
				ids, _ := h.e.Journals.List(context.Background(), RunPrefix)
				h.e.Approve(context.Background(), ids[0], e.Step, "")
			}
		}
		// The approval lands while the gate polls, long before the
		// hour it would wait.
		done := make(chan error)
		go func() {
			_, err := h.e.Start(context.Background(), "s", RunOptions{WaitApproval: time.Hour})
			done <- err
		}()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if id == "" || h.f.runs["risky"] != 1 {
			t.Fatalf("runs %v", h.f.runs)
		}
	})
	t.Run("Yes", func(t *testing.T) {
		h := newHarness(t, phases)
		if _, err := h.e.Start(context.Background(), "s", RunOptions{Yes: true}); err != nil {
			t.Fatal(err)
		}
		if g := h.of("approval.granted"); len(g) != 2 || g[0].Message != "--yes" {
			t.Fatalf("granted %+v", g)
		}
	})
	t.Run("PromptDeclined", func(t *testing.T) {
		h := newHarness(t, phases)
		no := func(context.Context, string) (bool, error) { return false, nil }
		if _, err := h.e.Start(context.Background(), "s", RunOptions{Prompt: no}); !errors.Is(err, ErrAborted) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("AbortPaused", func(t *testing.T) {
		h := newHarness(t, phases)
		id, _ := h.e.Start(context.Background(), "s", RunOptions{})
		if _, err := h.e.Abort(context.Background(), id, "false alarm"); err != nil {
			t.Fatal(err)
		}
		if st := h.state(id); st.Status != StatusAborted || !strings.Contains(st.Error, "false alarm") {
			t.Fatalf("state %s %s", st.Status, st.Error)
		}
	})
}

func TestResumeRepeatsNoFinishedStep(t *testing.T) {
	h := newHarness(t, `      - id: p
        budget: 30m
        steps:
`+step("one", "")+step("two", ", block: yes")+`      - id: q
        budget: 10m
        steps:
`+step("three", ""))
	ctx, cancel := context.WithCancel(context.Background())
	h.e.Observer = func(e journal.Event) {
		if e.Type == "step.started" && e.Step == "two" {
			cancel()
		}
	}
	id, err := h.e.Start(ctx, "s", RunOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if st := h.state(id); st.Status != StatusInterrupted {
		t.Fatalf("status %s", st.Status)
	}
	h.e.Observer = nil
	// On resume, step two runs again (it never finished), one does not.
	h.e.Actions = func(string) (action.Action, bool) { return unblocked{h.f}, true }
	if _, err := h.e.Resume(context.Background(), id, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if h.f.runs["one"] != 1 || h.f.runs["two"] != 2 || h.f.runs["three"] != 1 {
		t.Fatalf("runs %v", h.f.runs)
	}
}

type unblocked struct{ f *fake }

func (u unblocked) Check(ctx context.Context, env *action.Env, p action.Params) error {
	return u.f.Check(ctx, env, p)
}
func (u unblocked) Run(ctx context.Context, env *action.Env, p action.Params) (action.Result, error) {
	p = knobs(p)
	delete(p, "block")
	delete(p, "env")
	return u.f.Run(ctx, env, p)
}

func TestDryRunHasNoSideEffect(t *testing.T) {
	h := newHarness(t, `      - id: p
        budget: 30m
        steps:
`+step("one", ", target: \"{{.Vars.region}}\"")+step("two", ", precondition: bad, from: \"{{.Steps.one.Result.value}}\""))
	pcs, err := h.e.DryRun(context.Background(), "s", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pcs) != 2 || !pcs[0].OK || pcs[1].OK || pcs[1].Error != "precondition failed" {
		t.Fatalf("preconditions %+v", pcs)
	}
	if e0, e1 := pcs[0].Params["env"].(map[string]any), pcs[1].Params["env"].(map[string]any); e0["target"] != "us-east-1" || e1["from"] != "{{.Steps.one.Result.value}}" {
		t.Fatalf("params %+v %+v", pcs[0].Params, pcs[1].Params)
	}
	if len(h.f.runs) != 0 || h.f.checks != 2 || len(h.events) != 0 {
		t.Fatalf("runs %v checks %d events %d", h.f.runs, h.f.checks, len(h.events))
	}
	if ents, err := os.ReadDir(h.e.Journals.Dir); err == nil && len(ents) > 0 {
		t.Fatalf("dry run wrote %v", ents)
	}
}

func TestTemplatesConditionsAndMasking(t *testing.T) {
	h := newHarness(t, `      - id: p
        budget: 30m
        steps:
`+step("one", `, print: "connecting with pa55word-xyz and ${LINKDR_TEST_API_TOKEN}"`)+
		step("two", `, from: "{{.Steps.one.Result.value}} in {{.Vars.region}}"`)+
		`          - {id: skipped, action: shell, with: {command: x, env: {id: skipped}}, when: 'steps["one"].status != "succeeded"'}
          - {id: ran, action: shell, with: {command: x, env: {id: ran}}, when: 'vars.region == "us-east-1"'}
`)
	t.Setenv("LINKDR_TEST_API_TOKEN", "tok-123456789")
	id, err := h.e.Start(context.Background(), "s", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := h.state(id)
	if st.Steps["skipped"].Status != StepSkipped || st.Steps["ran"].Status != StepSucceeded || h.f.runs["skipped"] != 0 {
		t.Fatalf("conditions: %+v %+v", st.Steps["skipped"], st.Steps["ran"])
	}
	b, _ := os.ReadFile(filepath.Join(h.e.Journals.Dir, "runs", id, "journal.jsonl"))
	if strings.Contains(string(b), "pa55word-xyz") || strings.Contains(string(b), "tok-123456789") {
		t.Fatalf("secret in journal:\n%s", b)
	}
	if !strings.Contains(string(b), "connecting with *** and ***") {
		t.Fatalf("masked output missing:\n%s", b)
	}
	started := h.of("step.started")
	_ = started
	if h.f.log[1] != "two" {
		t.Fatal("order")
	}
	// The template saw step one's result.
	evs, _ := h.e.Journals.Read(context.Background(), id)
	inc := ""
	for _, e := range evs {
		if e.Type == "run.started" {
			inc, _ = e.Data["incident"].(string)
		}
	}
	if !strings.HasPrefix(inc, incident.Prefix) {
		t.Fatalf("the run opened no incident: %q", inc)
	}
	got, err := h.e.Incidents.Get(context.Background(), inc)
	if err != nil || len(got.Runs) != 1 || got.Runs[0] != id {
		t.Fatalf("incident %+v %v", got, err)
	}
}
