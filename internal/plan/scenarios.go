package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/expr-lang/expr"
)

// Scenario is one failure scenario of the DR plan and its runbook: how it
// is detected, what recovers by itself, and the phases a person (or
// linkdr) works through, each with a time budget. The key under
// scenarios: is its id.
type Scenario struct {
	Title string `yaml:"title"`
	// Severity: critical, high, medium or low. It sets the PagerDuty
	// severity and the incident's default impact.
	Severity    string `yaml:"severity"`
	Description string `yaml:"description"`
	// RTO is the scenario's recovery time objective; the phase budgets
	// must add up to no more. Default objectives.rto.
	RTO Duration `yaml:"rto"`
	// RPO is informational (the post-mortem compares the measured data
	// loss with it). Default objectives.rpo; 0s means no data loss.
	RPO *Duration `yaml:"rpo"`
	// Detection lists the signals that reveal the scenario.
	Detection Detection `yaml:"detection"`
	// AutomaticRecovery notes what recovers without anyone (rendered
	// into the plan document, not executed).
	AutomaticRecovery []string `yaml:"automatic_recovery"`
	// Vars override the plan's vars for this scenario.
	Vars map[string]string `yaml:"vars"`
	// Impact is the incident impact a run of this scenario reports
	// (High, Medium, Low). Default from severity.
	Impact string `yaml:"impact"`
	// Repository where runs of this scenario are journaled. Default
	// runbooks.repository.
	Repository string  `yaml:"repository"`
	Phases     []Phase `yaml:"phases"`

	// Name is the key under scenarios (not part of the YAML).
	Name string `yaml:"-"`
}

// Detection is how a scenario is noticed.
type Detection struct {
	// Alerts are Alertmanager alert names.
	Alerts []string `yaml:"alerts"`
	// Checks are names of checks whose failure signals the scenario.
	Checks []string `yaml:"checks"`
	// Signals are other signals, in words.
	Signals []string `yaml:"signals"`
}

// Phase is a group of steps with a time budget.
type Phase struct {
	ID     string   `yaml:"id"`
	Title  string   `yaml:"title"`
	Budget Duration `yaml:"budget"`
	Steps  []Step   `yaml:"steps"`
}

// Step is one action of a runbook.
type Step struct {
	// ID is unique within the scenario; approvals and journals name it.
	ID    string `yaml:"id"`
	Title string `yaml:"title"`
	// Action is what the step does: shell, k8s.scale, dns.failover …
	// (see docs/runbooks.md).
	Action string `yaml:"action"`
	// With are the action's parameters. String values may use Go
	// templates ({{.Vars.x}}, {{.Steps.id.Result.y}}) and ${ENV}
	// references, expanded when the step starts.
	With map[string]any `yaml:"with"`
	// Timeout bounds one attempt. Default 15m; approve steps wait
	// without a timeout unless one is set.
	Timeout Duration `yaml:"timeout"`
	// Retries is how many more attempts a failing step gets.
	Retries int `yaml:"retries"`
	// Backoff is the wait before the first retry; it doubles for each
	// further retry, up to 5m. Default 5s.
	Backoff Duration `yaml:"backoff"`
	// OnError: fail (default) stops the run; continue records the
	// failure and goes on; rollback runs the rollback steps of the run's
	// finished steps in reverse order, then stops.
	OnError string `yaml:"on_error"`
	// When is a condition (expr language); the step is skipped when it is
	// false. Names: vars, steps (id → {status, result}), env(NAME).
	When string `yaml:"when"`
	// Rollback undoes the step; run when a later step fails with
	// on_error: rollback.
	Rollback *Step `yaml:"rollback"`
	// Confirm makes the step wait for a person's approval first.
	Confirm bool `yaml:"confirm"`
}

// Step failure policies.
const (
	OnErrorFail     = "fail"
	OnErrorContinue = "continue"
	OnErrorRollback = "rollback"
)

// Default step settings.
const (
	DefaultStepTimeout = 15 * time.Minute
	DefaultBackoff     = 5 * time.Second
	MaxBackoff         = 5 * time.Minute
)

var severities = []string{"critical", "high", "medium", "low"}

// ScenarioNames returns the scenario ids in sorted order.
func (p *Plan) ScenarioNames() []string { return sortedKeys(p.Scenarios) }

// ScenarioRPO is the RPO that applies to a scenario.
func (p *Plan) ScenarioRPO(s *Scenario) Duration {
	if s.RPO != nil {
		return *s.RPO
	}
	return p.Objectives.RPO
}

// Budget is the sum of the phase budgets.
func (s *Scenario) Budget() time.Duration {
	var total time.Duration
	for _, ph := range s.Phases {
		total += ph.Budget.D()
	}
	return total
}

// StepByID finds a step (not a rollback step) and its phase.
func (s *Scenario) StepByID(id string) (*Step, *Phase) {
	for i := range s.Phases {
		for j := range s.Phases[i].Steps {
			if s.Phases[i].Steps[j].ID == id {
				return &s.Phases[i].Steps[j], &s.Phases[i]
			}
		}
	}
	return nil, nil
}

// StepIDs lists every step id in run order.
func (s *Scenario) StepIDs() []string {
	var ids []string
	for _, ph := range s.Phases {
		for _, st := range ph.Steps {
			ids = append(ids, st.ID)
		}
	}
	return ids
}

// ImpactOf is the incident impact of a scenario.
func (s *Scenario) ImpactOf() string {
	if s.Impact != "" {
		return s.Impact
	}
	switch s.Severity {
	case "critical", "high":
		return "High"
	case "medium":
		return "Medium"
	default:
		return "Low"
	}
}

// EffectiveTimeout is the step's timeout after defaults; 0 means none.
func (st *Step) EffectiveTimeout() time.Duration {
	if st.Timeout > 0 {
		return st.Timeout.D()
	}
	if st.Action == "approve" {
		return 0
	}
	return DefaultStepTimeout
}

// BackoffFor is the wait before attempt n+1 (n ≥ 1).
func (st *Step) BackoffFor(n int) time.Duration {
	b := DefaultBackoff
	if st.Backoff > 0 {
		b = st.Backoff.D()
	}
	for i := 1; i < n && b < MaxBackoff; i++ {
		b *= 2
	}
	return min(b, MaxBackoff)
}

// Policy is the step's on_error after defaults.
func (st *Step) Policy() string {
	if st.OnError == "" {
		return OnErrorFail
	}
	return st.OnError
}

func applyScenarioDefaults(p *Plan) {
	for name, s := range p.Scenarios {
		if s == nil {
			continue
		}
		s.Name = name
		if s.RTO == 0 {
			s.RTO = p.Objectives.RTO
		}
	}
}

func (p *Plan) validateScenarios(ps *problems) {
	for _, name := range p.ScenarioNames() {
		base := "scenarios." + name
		s := p.Scenarios[name]
		if s == nil {
			ps.add(base, "give the scenario a title, rto and phases", "empty scenario")
			continue
		}
		if !validName(name) {
			ps.add(base, "use lowercase letters, digits and dashes, like regional-failure", "invalid scenario id %q", name)
		}
		if strings.TrimSpace(s.Title) == "" {
			ps.add(base+".title", "e.g. title: Regional failure", "required")
		}
		if s.Severity == "" {
			ps.add(base+".severity", "one of "+strings.Join(severities, ", "), "required")
		} else if !contains(severities, s.Severity) {
			ps.add(base+".severity", "one of "+strings.Join(severities, ", "), "unknown severity %q", s.Severity)
		}
		if s.Repository != "" {
			if _, ok := p.Repositories[s.Repository]; !ok {
				ps.add(base+".repository", "repositories: "+strings.Join(p.RepositoryNames(), ", "), "no repository named %q", s.Repository)
			}
		}
		if len(s.Phases) == 0 {
			ps.add(base+".phases", "add at least one phase with a budget and steps", "no phases")
		}
		ids := map[string]string{}
		phaseIDs := map[string]bool{}
		for i := range s.Phases {
			ph := &s.Phases[i]
			pb := fmt.Sprintf("%s.phases[%d]", base, i)
			switch {
			case ph.ID == "":
				ps.add(pb+".id", "e.g. id: assessment", "required")
			case !validName(ph.ID):
				ps.add(pb+".id", "use lowercase letters, digits and dashes", "invalid phase id %q", ph.ID)
			case phaseIDs[ph.ID]:
				ps.add(pb+".id", "phase ids must be unique within a scenario", "duplicate phase id %q", ph.ID)
			}
			phaseIDs[ph.ID] = true
			if ph.Budget <= 0 {
				ps.add(pb+".budget", "e.g. budget: 15m", "a positive time budget is required")
			}
			if len(ph.Steps) == 0 {
				ps.add(pb+".steps", "add the steps of the phase", "no steps")
			}
			for j := range ph.Steps {
				sp := fmt.Sprintf("%s.steps[%d]", pb, j)
				st := &ph.Steps[j]
				if st.ID != "" {
					if prev, dup := ids[st.ID]; dup {
						ps.add(sp+".id", "step ids must be unique within a scenario; first used at "+prev, "duplicate step id %q", st.ID)
					}
					ids[st.ID] = sp
				}
				p.validateStep(ps, sp, st, false)
			}
		}
		if total := s.Budget(); s.RTO > 0 && total > s.RTO.D() {
			ps.add(base+".phases", fmt.Sprintf("shorten the phase budgets, or raise %s.rto", base),
				"phase budgets add up to %s, more than the scenario's RTO of %s", Duration(total), s.RTO)
		}
	}
}

func (p *Plan) validateStep(ps *problems, sp string, st *Step, rollback bool) {
	switch {
	case st.ID == "" && !rollback:
		ps.add(sp+".id", "e.g. id: restore-users-db", "required")
	case st.ID != "" && !validName(st.ID):
		ps.add(sp+".id", "use lowercase letters, digits and dashes", "invalid step id %q", st.ID)
	}
	if st.Retries < 0 {
		ps.add(sp+".retries", "0 means one attempt", "must not be negative")
	}
	if st.OnError != "" && !contains([]string{OnErrorFail, OnErrorContinue, OnErrorRollback}, st.OnError) {
		ps.add(sp+".on_error", "one of fail, continue, rollback", "unknown policy %q", st.OnError)
	}
	if st.When != "" {
		if _, err := expr.Compile(st.When, expr.AllowUndefinedVariables()); err != nil {
			ps.add(sp+".when", `e.g. when: vars.restore_redis == "yes" or steps["check-primary"].status == "failed"`, "invalid condition: %s", firstLine(err.Error()))
		}
	}
	if rollback {
		if st.Rollback != nil {
			ps.add(sp+".rollback", "a rollback step cannot have its own rollback", "nested rollback")
		}
		if st.Confirm {
			ps.add(sp+".confirm", "rollback runs unattended after a failure", "a rollback step cannot ask for confirmation")
		}
	}
	if st.Rollback != nil {
		p.validateStep(ps, sp+".rollback", st.Rollback, true)
	}
	p.validateAction(ps, sp, st)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
