package runbook

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/plan"
)

// Run statuses.
const (
	StatusRunning          = "running"
	StatusSucceeded        = "succeeded"
	StatusFailed           = "failed"
	StatusAborted          = "aborted"
	StatusAwaitingApproval = "awaiting-approval"
	StatusInterrupted      = "interrupted"
)

// Step statuses.
const (
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
	StepRunning   = "running"
	// StepContinued: failed, and on_error: continue carried on.
	StepContinued = "failed-continued"
)

// StepState is what the journal says about a step.
type StepState struct {
	Status   string         `json:"status"`
	Attempts int            `json:"attempts"`
	Error    string         `json:"error,omitempty"`
	Result   map[string]any `json:"result,omitempty"`
	Started  time.Time      `json:"started,omitzero"`
	Finished time.Time      `json:"finished,omitzero"`
	Output   []string       `json:"-"`
}

// Done: a resumed run does not repeat the step.
func (s *StepState) Done() bool {
	return s != nil && (s.Status == StepSucceeded || s.Status == StepSkipped || s.Status == StepContinued)
}

// PhaseState is what the journal says about a phase.
type PhaseState struct {
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Status   string    `json:"status,omitempty"`
	Warned   bool      `json:"warned,omitempty"`
	Breached bool      `json:"breached,omitempty"`
}

// State is a run replayed from its journal.
type State struct {
	ID       string                 `json:"id"`
	Scenario *plan.Scenario         `json:"-"`
	Name     string                 `json:"scenario"`
	Status   string                 `json:"status"`
	Error    string                 `json:"error,omitempty"`
	Started  time.Time              `json:"started"`
	Finished time.Time              `json:"finished,omitzero"`
	Vars     map[string]string      `json:"vars,omitempty"`
	Incident string                 `json:"incident,omitempty"`
	Phases   map[string]*PhaseState `json:"phases"`
	Steps    map[string]*StepState  `json:"steps"`
	// Approvals maps steps to who approved them.
	Approvals   map[string]string `json:"approvals,omitempty"`
	Requested   map[string]bool   `json:"-"`
	RTOWarned   bool              `json:"-"`
	RTOBreached bool              `json:"-"`
	RolledBack  map[string]bool   `json:"-"`
	Events      []journal.Event   `json:"-"`
}

func newState() *State {
	return &State{Status: StatusRunning, Phases: map[string]*PhaseState{}, Steps: map[string]*StepState{},
		Approvals: map[string]string{}, Requested: map[string]bool{}, RolledBack: map[string]bool{}}
}

// Replay rebuilds a run's state from its journal.
func Replay(id string, events []journal.Event) (*State, error) {
	s := newState()
	s.ID, s.Events = id, events
	for _, e := range events {
		s.apply(e)
	}
	if s.Scenario == nil {
		return nil, fmt.Errorf("run %s: the journal has no run.started event %s", id, s.Error)
	}
	return s, nil
}

func (s *State) step(id string) *StepState {
	st := s.Steps[id]
	if st == nil {
		st = &StepState{}
		s.Steps[id] = st
	}
	return st
}

func (s *State) phase(id string) *PhaseState {
	ph := s.Phases[id]
	if ph == nil {
		ph = &PhaseState{}
		s.Phases[id] = ph
	}
	return ph
}

func (s *State) apply(e journal.Event) {
	switch e.Type {
	case "run.started":
		s.Started = e.Time
		s.Name, _ = e.Data["scenario"].(string)
		s.Incident, _ = e.Data["incident"].(string)
		if raw, err := json.Marshal(e.Data["snapshot"]); err == nil {
			var sc plan.Scenario
			if err := json.Unmarshal(raw, &sc); err == nil {
				sc.Name = s.Name
				s.Scenario = &sc
			} else {
				s.Error = "journal: scenario snapshot: " + err.Error()
			}
		}
		s.Vars = map[string]string{}
		if v, ok := e.Data["vars"].(map[string]any); ok {
			for k, x := range v {
				s.Vars[k] = fmt.Sprint(x)
			}
		}
	case "run.resumed":
		s.Status, s.Error = StatusRunning, ""
	case "run.paused":
		s.Status = e.Status
	case "run.interrupted":
		s.Status, s.Error = StatusInterrupted, e.Error
	case "run.finished":
		s.Status, s.Error, s.Finished = e.Status, e.Error, e.Time
	case "phase.started":
		if ph := s.phase(e.Phase); ph.Started.IsZero() {
			ph.Started = e.Time
		}
		s.phase(e.Phase).Status = StatusRunning
	case "phase.finished":
		ph := s.phase(e.Phase)
		ph.Finished, ph.Status = e.Time, e.Status
	case "budget.warning":
		s.phase(e.Phase).Warned = true
	case "budget.breached":
		s.phase(e.Phase).Breached = true
	case "rto.warning":
		s.RTOWarned = true
	case "rto.breached":
		s.RTOBreached = true
	case "step.started":
		st := s.step(e.Step)
		st.Status, st.Attempts, st.Started, st.Error = StepRunning, e.Attempt, e.Time, ""
	case "step.output":
		st := s.step(e.Step)
		st.Output = append(st.Output, e.Message)
		if len(st.Output) > 20 {
			st.Output = st.Output[len(st.Output)-20:]
		}
	case "step.finished":
		st := s.step(e.Step)
		st.Status, st.Error, st.Finished = e.Status, e.Error, e.Time
		if r, ok := e.Data["result"].(map[string]any); ok {
			st.Result = r
		}
	case "approval.requested":
		s.Requested[e.Step] = true
	case "approval.granted":
		s.Approvals[e.Step] = e.By
	case "rollback.step.finished":
		s.RolledBack[e.Step] = true
	}
}

// Terminal reports whether the run is over (resume refuses).
func (s *State) Terminal() bool {
	switch s.Status {
	case StatusSucceeded, StatusFailed, StatusAborted:
		return true
	}
	return false
}

// Elapsed is the run's wall time so far (or in total).
func (s *State) Elapsed(now time.Time) time.Duration {
	if !s.Finished.IsZero() {
		return s.Finished.Sub(s.Started)
	}
	return now.Sub(s.Started)
}

// PhaseElapsed is a phase's wall time so far (or in total).
func (s *State) PhaseElapsed(id string, now time.Time) time.Duration {
	ph := s.Phases[id]
	if ph == nil || ph.Started.IsZero() {
		return 0
	}
	if !ph.Finished.IsZero() {
		return ph.Finished.Sub(ph.Started)
	}
	return now.Sub(ph.Started)
}
