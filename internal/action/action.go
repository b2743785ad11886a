package action

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
)

// Action is one kind of step.
type Action interface {
	// Check verifies the preconditions of a step without changing
	// anything: tools present, cluster reachable, zone answering, backup
	// there. Dry runs call it.
	Check(ctx context.Context, env *Env, p Params) error
	// Run performs the step. What it prints to env.Output lands in the
	// journal; what it returns is recorded as the step's result, and later
	// steps may refer to it as {{.Steps.ID.Result.key}}.
	Run(ctx context.Context, env *Env, p Params) (Result, error)
}

// Result is what a step reports: JSON-friendly values.
type Result map[string]any

// Env is what actions get from the engine.
type Env struct {
	Plan *plan.Plan
	// Runner performs restores.
	Runner *ops.Runner
	// Output receives the step's output, line by line, for the journal.
	Output io.Writer
	Log    *slog.Logger
	// Clock paces polling and waits; tests substitute a fake one.
	Clock Clock
	// Checks runs named checks; nil when the plan defines none.
	Checks Checker
	// Notifier sends notify steps' messages; nil means notify fails.
	Notifier Notifier
	// AddSecret registers a value to be masked in the journal.
	AddSecret func(string)
	// Planned, in a dry run, collects the objects earlier steps would
	// create, so later steps' checks know they will exist.
	Planned *Planned
}

// Planned is what a dry run's earlier steps would create.
type Planned struct {
	mu      sync.Mutex
	objects []PlannedObject
}

// PlannedObject is a Kubernetes object a dry-run step would apply.
type PlannedObject struct {
	Context, Namespace, Resource, Name string
	Labels                             map[string]string
}

// Add records an object.
func (p *Planned) Add(o PlannedObject) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.objects = append(p.objects, o)
}

// Find returns the planned objects of a resource in a namespace that a
// name or selector match.
func (p *Planned) Find(context, ns, resource string, match func(PlannedObject) bool) []PlannedObject {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []PlannedObject
	for _, o := range p.objects {
		if o.Context == context && o.Namespace == ns && o.Resource == resource && match(o) {
			out = append(out, o)
		}
	}
	return out
}

func (e *Env) clock() Clock {
	if e.Clock == nil {
		return RealClock{}
	}
	return e.Clock
}

func (e *Env) printf(format string, args ...any) {
	if e.Output != nil {
		fmt.Fprintf(e.Output, format+"\n", args...)
	}
}

func (e *Env) secret(s string) {
	if e.AddSecret != nil && s != "" {
		e.AddSecret(s)
	}
}

// Clock is the time source of waits and polling.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits for d or ctx.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Checker runs a named check once. The checks package implements it;
// until a plan defines checks, the check action takes inline probes.
type Checker interface {
	RunCheck(ctx context.Context, name string) error
}

// Notifier sends a notify step's message.
type Notifier interface {
	Notify(ctx context.Context, req NotifyRequest) ([]string, error)
}

// NotifyRequest is a notify step, resolved.
type NotifyRequest struct {
	Channels []string
	Template string // name from incidents.templates, or ""
	Message  string // inline template, or ""
	Event    string // trigger, acknowledge, resolve, info (PagerDuty)
	Fields   map[string]string
}

var registry = map[string]Action{}

func register(name string, a Action) {
	if _, dup := registry[name]; dup {
		panic("action registered twice: " + name)
	}
	registry[name] = a
}

// Get returns the action of a name.
func Get(name string) (Action, bool) {
	a, ok := registry[name]
	return a, ok
}

// Names lists the registered actions.
func Names() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// IsGate reports whether a step waits for a person before it runs.
func IsGate(st *plan.Step) bool { return st.Confirm || st.Action == "approve" }

// Params are a step's expanded parameters with typed getters. The plan
// checked names and types where it could; templated values are checked
// here, with errors that name the parameter.
type Params map[string]any

// Has reports whether a parameter is set.
func (p Params) Has(k string) bool { _, ok := p[k]; return ok }

// String returns a string parameter, or def.
func (p Params) String(k, def string) string {
	v, ok := p[k]
	if !ok || v == nil {
		return def
	}
	return fmt.Sprint(v)
}

// Int returns a whole-number parameter, or def.
func (p Params) Int(k string, def int) (int, error) {
	v, ok := p[k]
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case float64:
		return int(x), nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("parameter %s: want a whole number, got %q", k, x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("parameter %s: want a whole number, got %v", k, v)
}

// Bool returns a boolean parameter, or def.
func (p Params) Bool(k string, def bool) (bool, error) {
	v, ok := p[k]
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		if err != nil {
			return false, fmt.Errorf("parameter %s: want true or false, got %q", k, x)
		}
		return b, nil
	}
	return false, fmt.Errorf("parameter %s: want true or false, got %v", k, v)
}

// Duration returns a duration parameter, or def.
func (p Params) Duration(k string, def time.Duration) (time.Duration, error) {
	v, ok := p[k]
	if !ok {
		return def, nil
	}
	d, err := plan.ParseDuration(fmt.Sprint(v))
	if err != nil {
		return 0, fmt.Errorf("parameter %s: %v", k, err)
	}
	return d.D(), nil
}

// Strings returns a list parameter; a single string is a list of one.
func (p Params) Strings(k string) []string {
	switch x := p[k].(type) {
	case nil:
		return nil
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	default:
		s := fmt.Sprint(x)
		if strings.TrimSpace(s) == "" {
			return nil
		}
		return []string{s}
	}
}

// Map returns a mapping parameter with string values.
func (p Params) Map(k string) map[string]string {
	m, _ := p[k].(map[string]any)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for key, v := range m {
		out[key] = fmt.Sprint(v)
	}
	return out
}

// Required returns a string parameter that must be set.
func (p Params) Required(k string) (string, error) {
	s := strings.TrimSpace(p.String(k, ""))
	if s == "" {
		return "", fmt.Errorf("parameter %s is required", k)
	}
	return s, nil
}

// poll calls try every interval until it returns nil or ctx ends; the
// error names the last failure.
func poll(ctx context.Context, env *Env, interval time.Duration, try func() error) error {
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil {
			return nil
		}
		if attempt == 1 || attempt%10 == 0 {
			env.printf("waiting: %v", err)
		}
		if serr := env.clock().Sleep(ctx, interval); serr != nil {
			return fmt.Errorf("%w (last: %v)", serr, err)
		}
	}
}
