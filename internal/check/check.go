package check

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
)

// Statuses of a result.
const (
	StatusPass  = "pass"
	StatusFail  = "fail"  // the condition was false
	StatusError = "error" // the probe could not observe (unreachable, timeout…)
)

// ErrFailed is wrapped by the error Results.Err returns when a required
// check did not pass.
var ErrFailed = errors.New("required checks failed")

// Result is one check's outcome.
type Result struct {
	Check       string         `json:"check"`
	Type        string         `json:"type"`
	Description string         `json:"description,omitempty"`
	Condition   string         `json:"condition"`
	Required    bool           `json:"required"`
	Status      string         `json:"status"`
	OK          bool           `json:"ok"`
	Message     string         `json:"message,omitempty"`
	Observed    map[string]any `json:"observed,omitempty"`
	Started     time.Time      `json:"started"`
	Duration    time.Duration  `json:"duration_ns"`
}

// Results are the outcomes of a run, in the order the checks were asked for.
type Results []Result

// Failed returns the results that did not pass; with requiredOnly, only
// those of required checks.
func (rs Results) Failed(requiredOnly bool) Results {
	var out Results
	for _, r := range rs {
		if !r.OK && (r.Required || !requiredOnly) {
			out = append(out, r)
		}
	}
	return out
}

// Err is nil when every required check passed, else an error wrapping
// ErrFailed that names them.
func (rs Results) Err() error {
	failed := rs.Failed(true)
	if len(failed) == 0 {
		return nil
	}
	var parts []string
	for _, r := range failed {
		parts = append(parts, r.Check+": "+r.Message)
	}
	return fmt.Errorf("%w (%d of %d): %s", ErrFailed, len(failed), len(rs), strings.Join(parts, "; "))
}

// Runner runs checks of one plan.
type Runner struct {
	Plan *plan.Plan
	// Ops reads repositories for backup checks (nil: built from Plan).
	Ops *ops.Runner
	// Parallel is how many probes run at once (default 8).
	Parallel int
	// StoreURL redirects checks that name a store (postgres, redis,
	// qdrant): given the store and the database the check names, it
	// returns the URL to probe instead. Drills point it at scratch copies.
	StoreURL func(store, database string) (string, bool)
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Run runs named checks or checklists of a plan (all checks when names is
// empty), in parallel. The error is about the request (an unknown name);
// failed checks are in Results, and Results.Err summarises them.
func Run(ctx context.Context, p *plan.Plan, names []string) (Results, error) {
	return (&Runner{Plan: p}).Run(ctx, names)
}

// Resolve expands names — checklists (with their includes) and checks —
// into check names, each once, in order.
func Resolve(p *plan.Plan, names []string) ([]string, error) {
	if len(names) == 0 {
		return p.CheckNames(), nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, n := range names {
		if _, ok := p.Checklists[n]; ok {
			list, err := p.ChecklistChecks(n)
			if err != nil {
				return nil, err
			}
			for _, c := range list {
				add(c)
			}
			continue
		}
		if _, ok := p.Checks[n]; ok {
			add(n)
			continue
		}
		return nil, fmt.Errorf("no check or checklist named %q in %s (checks: %s; checklists: %s)", n, p.Path,
			strings.Join(p.CheckNames(), ", "), strings.Join(p.ChecklistNames(), ", "))
	}
	return out, nil
}

// Run runs checks or checklists by name; see the package function Run.
func (r *Runner) Run(ctx context.Context, names []string) (Results, error) {
	list, err := Resolve(r.Plan, names)
	if err != nil {
		return nil, err
	}
	out := make(Results, len(list))
	par := r.Parallel
	if par <= 0 {
		par = 8
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, name := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = r.One(ctx, r.Plan.Checks[name])
		}()
	}
	wg.Wait()
	return out, nil
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

// Redirectable reports whether checks of the type follow Runner.StoreURL
// when they name a store (and so can run against a drill's scratch copy).
func Redirectable(typ string) bool { return plan.CheckStoreKind(typ) != "" }

// probe observes a target and returns the condition's variables.
type probe func(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error)

var probes = map[string]probe{
	"http":       probeHTTP,
	"tls":        probeTLS,
	"dns":        probeDNS,
	"tcp":        probeTCP,
	"postgres":   probePostgres,
	"redis":      probeRedis,
	"qdrant":     probeQdrant,
	"prometheus": probePrometheus,
	"backup":     probeBackup,
	"kubernetes": probeKubernetes,
}

// One runs a single check: the probe under the check's timeout, then the
// condition over what it observed.
func (r *Runner) One(ctx context.Context, c *plan.Check) (res Result) {
	res = Result{Check: c.Name, Type: c.Type, Description: c.Description, Condition: c.EffectiveCondition(),
		Required: c.IsRequired(), Started: r.now()}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	prog, err := plan.CompileCondition(c.Type, res.Condition)
	if err != nil {
		res.Status, res.Message = StatusError, "invalid condition: "+err.Error()
		return res
	}
	p, ok := probes[c.Type]
	if !ok {
		res.Status, res.Message = StatusError, fmt.Sprintf("check type %q is not built into this linkdr", c.Type)
		return res
	}
	pctx, cancel := context.WithTimeout(ctx, c.Timeout.D())
	defer cancel()
	vars, err := p(pctx, r, c)
	if vars == nil {
		vars = map[string]any{}
	}
	if _, set := vars["latency"]; !set {
		vars["latency"] = time.Since(start)
	}
	res.Observed = observed(vars)
	if err != nil {
		if pctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			err = fmt.Errorf("timed out after %s: %w", c.Timeout, err)
		}
		res.Status, res.Message = StatusError, err.Error()
		r.log().Debug("check error", "check", c.Name, "err", err)
		return res
	}
	ok, err = eval(prog, c.Type, vars)
	switch {
	case err != nil:
		res.Status, res.Message = StatusError, "condition: "+err.Error()
	case ok:
		res.Status, res.OK = StatusPass, true
		res.Message = describe(prog, vars)
	default:
		res.Status = StatusFail
		res.Message = fmt.Sprintf("%s is false: %s", res.Condition, describe(prog, vars))
	}
	return res
}

func eval(prog *vm.Program, typ string, vars map[string]any) (bool, error) {
	out, err := expr.Run(prog, plan.ConditionEnv(typ, vars))
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// describe lists the variables the condition mentions with their values,
// so a failure says what was seen: "status=503 latency=1.2s".
func describe(prog *vm.Program, vars map[string]any) string {
	names := map[string]bool{}
	node := prog.Node()
	ast.Walk(&node, identVisitor(names))
	var keys []string
	for k := range names {
		if _, ok := vars[k]; ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+show(vars[k]))
	}
	if e, ok := vars["error"].(string); ok && e != "" {
		parts = append(parts, "error: "+e)
	}
	return strings.Join(parts, " ")
}

type identVisitor map[string]bool

func (v identVisitor) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		v[id.Value] = true
	}
}

func show(v any) string {
	switch x := v.(type) {
	case time.Duration:
		return x.Round(time.Millisecond).String()
	case float64:
		if math.IsNaN(x) {
			return "NaN"
		}
		return fmt.Sprintf("%.4g", x)
	case string:
		if len(x) > 80 {
			x = x[:77] + "..."
		}
		return fmt.Sprintf("%q", x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case map[string]any, []any:
		s := fmt.Sprint(x)
		if len(s) > 80 {
			s = s[:77] + "..."
		}
		return s
	}
	return fmt.Sprint(v)
}

// observed makes the variables printable as JSON: durations as strings,
// NaN as null, big bodies cut.
func observed(vars map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range vars {
		switch x := v.(type) {
		case time.Duration:
			out[k] = x.String()
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				out[k] = nil
			} else {
				out[k] = x
			}
		case string:
			if len(x) > 1024 {
				x = x[:1024] + "…"
			}
			out[k] = x
		default:
			out[k] = v
		}
	}
	return out
}

// RunCheck runs one named check or checklist and returns why it failed, if
// it did: the runbook engine's `check` steps wait on it.
func (r *Runner) RunCheck(ctx context.Context, name string) error {
	res, err := r.Run(ctx, []string{name})
	if err != nil {
		return err
	}
	return res.Err()
}
