package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/check"
	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// ErrFailed is wrapped by the error of a drill that ran and found a
// problem (as opposed to one that could not start).
var ErrFailed = errors.New("drill failed")

// ErrNoRunbookEngine: failover drills rehearse scenario runbooks, and the
// Runner was given no engine to run them with.
var ErrNoRunbookEngine = errors.New("failover drills need a runbook engine")

// cleanupTimeout bounds the removal of scratch resources, which runs even
// after the drill's own context was cancelled.
const cleanupTimeout = 2 * time.Minute

// Runner runs drills of one plan.
type Runner struct {
	Ops *ops.Runner
	// Now is the clock that stamps the drill and its canaries (tests).
	Now func() time.Time
	Log *slog.Logger
	// Trigger is recorded in the report: cli, schedule, runbook.
	Trigger string
	// Progress, when set, hears about each step ("users-db: restore").
	Progress func(step string)
	// Rehearser runs failover drills; nil: they cannot run.
	Rehearser Rehearser
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

func (r *Runner) step(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.log().Info(msg)
	if r.Progress != nil {
		r.Progress(msg)
	}
}

// RestoreOptions select what a restore drill covers.
type RestoreOptions struct {
	// Drill is the plan's drill (nil: an ad-hoc drill with defaults).
	Drill *plan.Drill
	// Stores overrides the drill's stores (empty: the drill's, else all
	// stores of the plan).
	Stores []string
}

// Restore runs a restore drill and saves its report in the primary
// repository. The report is returned even when the drill failed; the
// error then wraps ErrFailed (or says why the report could not be saved).
func (r *Runner) Restore(ctx context.Context, opts RestoreOptions) (*drillreport.Report, error) {
	p := r.Ops.Plan
	d := opts.Drill
	if d == nil {
		d = &plan.Drill{Kind: plan.DrillRestore, Title: "Backup restore drill", MaxTableShrink: plan.DefaultMaxTableShrink}
	}
	stores := opts.Stores
	if len(stores) == 0 {
		stores = d.Stores
	}
	// Every store by default: those of kinds no drill can restore yet are
	// listed in the report as skipped; named ones must be drillable.
	var skipped []string
	if len(stores) == 0 {
		for _, s := range p.StoreNames() {
			if _, ok := kindOf(p.Stores[s].Kind); ok {
				stores = append(stores, s)
			} else {
				skipped = append(skipped, s+" ("+p.Stores[s].Kind+")")
			}
		}
	}
	for _, s := range stores {
		cfg, err := r.Ops.StoreConfig(s)
		if err != nil {
			return nil, err
		}
		if _, ok := kindOf(cfg.Kind); !ok {
			return nil, fmt.Errorf("store %s: kind %s cannot be drilled yet (drillable kinds: %s)", s, cfg.Kind, strings.Join(Kinds(), ", "))
		}
	}
	if len(stores) == 0 {
		return nil, fmt.Errorf("the plan has no stores a drill can restore (drillable kinds: %s)", strings.Join(Kinds(), ", "))
	}
	if len(skipped) > 0 {
		r.log().Warn("stores skipped: their kind cannot be drilled yet", "stores", skipped)
	}
	// Fail on a missing key or repository before writing any canary.
	if _, err := r.Ops.Identities(); err != nil {
		return nil, err
	}
	primary, err := r.Ops.OpenRepo(ctx, plan.DefaultRepository)
	if err != nil {
		return nil, err
	}
	defer primary.Close()

	start := r.now()
	rep := r.newReport(d, plan.DrillRestore, start)
	rep.Skipped = skipped
	var failures []string
	for _, s := range stores {
		if ctx.Err() != nil {
			failures = append(failures, "interrupted")
			break
		}
		sr := r.restoreStore(ctx, rep, d, s, start)
		rep.Stores = append(rep.Stores, sr)
		if !sr.OK {
			failures = append(failures, fmt.Sprintf("%s: %s: %s", s, sr.Phase, sr.Error))
		}
	}
	// Checks the drill lists that name no store run against the live
	// side: what the plan says must hold after a recovery.
	if len(d.Checks) > 0 {
		var live []string
		for _, c := range d.Checks {
			if p.Checks[c].Store == "" {
				live = append(live, c)
			}
		}
		if len(live) > 0 {
			res, err := (&check.Runner{Plan: p, Ops: r.Ops, Log: r.log()}).Run(ctx, live)
			if err != nil {
				failures = append(failures, err.Error())
			}
			rep.Checks = checkOutcomes(res)
			if err := res.Err(); err != nil {
				failures = append(failures, err.Error())
			}
		}
	}
	return r.finish(ctx, primary, rep, failures)
}

// newReport starts the report of a drill of either kind.
func (r *Runner) newReport(d *plan.Drill, kind string, start time.Time) *drillreport.Report {
	p := r.Ops.Plan
	host, _ := os.Hostname()
	return &drillreport.Report{
		Format: drillreport.FormatVersion, ID: repo.NewID(start), Drill: d.Name, Kind: kind,
		Title: d.Title, Plan: p.Name, Started: start.UTC(), Tool: repo.Tool{Name: "linkdr", Version: repo.Version},
		Host: host, Trigger: r.Trigger,
		Objectives: drillreport.Objectives{RTOSeconds: p.Objectives.RTO.D().Seconds(), RPOSeconds: p.Objectives.RPO.D().Seconds()},
	}
}

// finish stamps the report with its outcome and saves it in the primary
// repository — even when the drill was interrupted: a failed drill is
// exactly what must not go unrecorded. The error wraps ErrFailed when
// the drill found a problem.
func (r *Runner) finish(ctx context.Context, primary *repo.Repo, rep *drillreport.Report, failures []string) (*drillreport.Report, error) {
	rep.Finished = r.now().UTC()
	if rep.Finished.Before(rep.Started) {
		rep.Finished = rep.Started
	}
	rep.OK = len(failures) == 0
	if !rep.OK {
		rep.Error = strings.Join(failures, "; ")
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := drillreport.Save(sctx, primary.Bucket(), rep); err != nil {
		return rep, err
	}
	if !rep.OK {
		if ctx.Err() != nil {
			return rep, fmt.Errorf("%w: %s: %w", ErrFailed, rep.Error, ctx.Err())
		}
		return rep, fmt.Errorf("%w: %s", ErrFailed, rep.Error)
	}
	return rep, nil
}

func checkOutcomes(res check.Results) []drillreport.Check {
	var out []drillreport.Check
	for _, c := range res {
		out = append(out, drillreport.Check{Name: c.Check, Type: c.Type, OK: c.OK, Required: c.Required,
			Status: c.Status, Message: c.Message, Seconds: c.Duration.Seconds()})
	}
	return out
}

// restoreStore drills one store. Every early return goes through fail,
// and the scratch copy is removed on every path.
func (r *Runner) restoreStore(ctx context.Context, rep *drillreport.Report, d *plan.Drill, name string, start time.Time) (sr drillreport.Store) {
	p := r.Ops.Plan
	cfg := p.Stores[name]
	kind, _ := kindOf(cfg.Kind)
	sr = drillreport.Store{Store: name, Kind: cfg.Kind, Repository: cfg.Repository,
		RTOObjectiveSeconds: p.Objectives.RTO.D().Seconds(), RPOObjectiveSeconds: p.StoreRPO(cfg).D().Seconds()}
	fail := func(phase string, err error) drillreport.Store {
		sr.OK, sr.Phase, sr.Error = false, phase, err.Error()
		r.log().Warn("drill failed", "store", name, "phase", phase, "err", err)
		return sr
	}
	rp, latest, err := r.Ops.ResolveBackup(ctx, name, ops.RestoreOptions{Method: drillMethod(kind, cfg)})
	if err != nil {
		return fail("resolve", err)
	}
	defer rp.Close()
	env := Env{Ops: r.Ops, Store: cfg, Drill: d.Name, DrillID: rep.ID, Latest: latest}
	if d.Scratch != nil {
		env.ScratchURL = d.Scratch[name].Reveal()
	}
	sr.BackupID, sr.BackupMethod, sr.ConsistentAt = latest.ID, latest.Method, latest.ConsistentAt
	sr.RPOSeconds = start.Sub(latest.ConsistentAt).Seconds()

	// The canary: written now, it is what an outage at this moment would
	// lose; earlier ones show which writes the backup kept.
	r.step("%s: write canary", name)
	if err := kind.WriteCanary(ctx, env, Canary{ID: rep.ID, WrittenAt: start.UTC()}); err != nil {
		return fail("canary", err)
	}
	live, err := kind.LiveCanaries(ctx, env)
	if err != nil {
		return fail("canary", err)
	}

	scratch, err := kind.Scratch(ctx, env, latest)
	if scratch != nil {
		sr.Scratch = scratch.Describe()
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			removed, cerr := scratch.Cleanup(cctx)
			sr.Cleanup = drillreport.Cleanup{OK: cerr == nil, Removed: removed}
			if cerr != nil {
				sr.Cleanup.Error = cerr.Error()
				if sr.OK {
					sr.OK, sr.Phase, sr.Error = false, "cleanup", "scratch resources left behind: "+cerr.Error()
				}
			}
			r.step("%s: cleanup: removed %s", name, strings.Join(removed, ", "))
		}()
	}
	if err != nil {
		return fail("scratch", err)
	}

	r.step("%s: restore %s into %s", name, latest.ID, sr.Scratch)
	t0 := time.Now()
	err = scratch.Restore(ctx, latest)
	sr.RestoreSeconds = time.Since(t0).Seconds()
	if errors.Is(err, store.ErrMismatch) {
		return fail("integrity", err) // kinds that verify while restoring
	}
	if err != nil {
		return fail("restore", err)
	}

	r.step("%s: compare with the manifest", name)
	t1 := time.Now()
	defer func() {
		sr.ValidateSeconds = time.Since(t1).Seconds()
		sr.RTOSeconds = sr.RestoreSeconds + sr.ValidateSeconds
	}()
	sr.Integrity, err = scratch.Compare(ctx, latest)
	if err != nil {
		return fail("integrity", err)
	}

	// History: figures against the previous backup of the same method.
	if prev := previous(ctx, rp, latest); prev != nil {
		sr.History, err = kind.History(prev, latest, d.ShrinkLimit())
		if err != nil {
			return fail("history", err)
		}
		var bad []string
		for _, f := range sr.History {
			if !f.OK {
				bad = append(bad, f.Name+": "+f.Problem)
			}
		}
		if len(bad) > 0 {
			return fail("history", fmt.Errorf("suspicious shrink since the previous backup: %s", strings.Join(bad, "; ")))
		}
	}

	// Canaries in the restored copy.
	restored, err := scratch.Canaries(ctx)
	if err != nil {
		return fail("canary", err)
	}
	sr.Canaries, sr.CanaryRPOSeconds = canaryReport(live, restored, latest.ConsistentAt, start)
	var lost []string
	for _, c := range sr.Canaries {
		if c.Expected && !c.Survived {
			lost = append(lost, fmt.Sprintf("%s (written %s)", c.ID, c.WrittenAt.Format(time.RFC3339)))
		}
	}
	if len(lost) > 0 {
		return fail("canary", fmt.Errorf("canaries written before the backup's consistent_at %s are missing from the restore: %s",
			latest.ConsistentAt.UTC().Format(time.RFC3339), strings.Join(lost, ", ")))
	}

	// The store's own checks, against the scratch copy.
	var names []string
	for _, cn := range p.CheckNames() {
		if c := p.Checks[cn]; c.Store == name && check.Redirectable(c.Type) {
			names = append(names, cn)
		}
	}
	for _, cn := range d.Checks {
		if c := p.Checks[cn]; c.Store == name && !contains(names, cn) {
			names = append(names, cn)
		}
	}
	// A check the copy cannot answer (a qdrant collection under another
	// name, a database the backup lacks) is reported, not run live.
	var runnable []string
	var skipped []drillreport.Check
	for _, cn := range names {
		c := p.Checks[cn]
		if _, ok := scratch.CheckURL(c.Database); ok {
			runnable = append(runnable, cn)
			continue
		}
		skipped = append(skipped, drillreport.Check{Name: cn, Type: c.Type, OK: true, Status: "skipped",
			Message: "not run: the scratch copy of " + cfg.Kind + " store " + name + " cannot answer it (see docs/drills.md)"})
	}
	names = runnable
	sr.Checks = skipped
	if len(names) > 0 {
		r.step("%s: checks %s against the scratch copy", name, strings.Join(names, ", "))
		cr := &check.Runner{Plan: p, Ops: r.Ops, Log: r.log(), StoreURL: func(store, database string) (string, bool) {
			u, _ := scratch.CheckURL(database)
			return u, true // never the live store during a drill
		}}
		res, err := cr.Run(ctx, names)
		if err != nil {
			return fail("checks", err)
		}
		sr.Checks = append(sr.Checks, checkOutcomes(res)...)
		if err := res.Err(); err != nil {
			return fail("checks", err)
		}
	}
	sr.OK = true
	return sr
}

// previous is the newest backup of the same store and method older than m.
func previous(ctx context.Context, rp *repo.Repo, m *repo.Manifest) *repo.Manifest {
	all, err := rp.Backups(ctx, m.Store)
	if err != nil {
		return nil
	}
	var prev *repo.Manifest
	for _, b := range all {
		if b.Method == m.Method && b.ConsistentAt.Before(m.ConsistentAt) && (prev == nil || b.ConsistentAt.After(prev.ConsistentAt)) {
			prev = b
		}
	}
	return prev
}

// canaryReport lists every canary of the live store with whether the
// restore holds it, and the canary RPO: drill start − the newest survivor.
func canaryReport(live, restored []Canary, consistentAt, start time.Time) ([]drillreport.Canary, *float64) {
	in := map[string]bool{}
	for _, c := range restored {
		in[c.Database+"\x00"+c.ID] = true
	}
	sort.SliceStable(live, func(i, j int) bool { return live[i].WrittenAt.Before(live[j].WrittenAt) })
	var out []drillreport.Canary
	var newest time.Time
	for _, c := range live {
		rc := drillreport.Canary{ID: c.ID, Database: c.Database, WrittenAt: c.WrittenAt,
			Survived: in[c.Database+"\x00"+c.ID], Expected: !c.WrittenAt.After(consistentAt)}
		if rc.Survived && c.WrittenAt.After(newest) {
			newest = c.WrittenAt
		}
		out = append(out, rc)
	}
	if newest.IsZero() {
		return out, nil
	}
	v := start.Sub(newest).Seconds()
	return out, &v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// WriteCanary writes a canary into the live store now (r.Now), as a drill
// does before restoring; tests and `linkdr drill canary` use it to mark a
// moment whose data a later drill must (or must not) find.
func (r *Runner) WriteCanary(ctx context.Context, storeName, id string) (Canary, error) {
	cfg, err := r.Ops.StoreConfig(storeName)
	if err != nil {
		return Canary{}, err
	}
	kind, ok := kindOf(cfg.Kind)
	if !ok {
		return Canary{}, fmt.Errorf("store %s: kind %s has no canaries yet", storeName, cfg.Kind)
	}
	env := Env{Ops: r.Ops, Store: cfg}
	if len(cfg.Databases) == 0 {
		rp, m, err := r.Ops.ResolveBackup(ctx, storeName, ops.RestoreOptions{Method: drillMethod(kind, cfg)})
		if err != nil {
			return Canary{}, err
		}
		rp.Close()
		env.Latest = m
	}
	c := Canary{ID: id, WrittenAt: r.now().UTC()}
	return c, kind.WriteCanary(ctx, env, c)
}

// Rehearser runs a scenario's runbook to its end, unattended, and
// reports its phases against their budgets: the runbook engine, which
// the command line wires in.
type Rehearser interface {
	Rehearse(ctx context.Context, scenario string, vars map[string]string) (*drillreport.Scenario, error)
}

// RehearsalVar is set to "true" in every rehearsal, so a scenario's steps
// can spare the primary side with `when: vars.rehearsal != "true"`.
const RehearsalVar = "rehearsal"

// Failover rehearses a scenario's runbook against the DR side (the
// drill's vars point its steps there) and saves the report, with the
// measured RTO against the scenario's, in the primary repository.
func (r *Runner) Failover(ctx context.Context, d *plan.Drill, scenario string) (*drillreport.Report, error) {
	if scenario == "" && d != nil {
		scenario = d.Scenario
	}
	if scenario == "" {
		return nil, fmt.Errorf("name the scenario to rehearse (--scenario), or a failover drill of the plan")
	}
	if r.Rehearser == nil {
		return nil, fmt.Errorf("%w: scenario %q cannot be rehearsed", ErrNoRunbookEngine, scenario)
	}
	p := r.Ops.Plan
	if _, ok := p.Scenarios[scenario]; !ok {
		return nil, fmt.Errorf("no scenario %q in %s (scenarios: %s)", scenario, p.Path, strings.Join(p.ScenarioNames(), ", "))
	}
	if d == nil {
		d = &plan.Drill{Kind: plan.DrillFailover, Title: "Failover rehearsal: " + scenario, Scenario: scenario}
	}
	primary, err := r.Ops.OpenRepo(ctx, plan.DefaultRepository)
	if err != nil {
		return nil, err
	}
	defer primary.Close()
	vars := map[string]string{}
	for k, v := range d.Vars {
		vars[k] = v
	}
	vars[RehearsalVar] = "true"

	start := r.now()
	rep := r.newReport(d, plan.DrillFailover, start)
	r.step("%s: rehearse the runbook", scenario)
	sc, rerr := r.Rehearser.Rehearse(ctx, scenario, vars)
	rep.Scenario = sc
	var failures []string
	if rerr != nil {
		failures = append(failures, rerr.Error())
	}
	if sc != nil {
		for _, ph := range sc.Phases {
			if !ph.OK {
				failures = append(failures, fmt.Sprintf("phase %s took %s, over its budget of %s", ph.Name,
					time.Duration(ph.Seconds*float64(time.Second)).Round(time.Second), time.Duration(ph.BudgetSeconds*float64(time.Second))))
			}
		}
		if sc.RTOObjectiveSeconds > 0 && sc.RTOSeconds > sc.RTOObjectiveSeconds {
			failures = append(failures, fmt.Sprintf("the rehearsal took %.0f s, over the scenario's RTO of %.0f s", sc.RTOSeconds, sc.RTOObjectiveSeconds))
		}
	}
	return r.finish(ctx, primary, rep, failures)
}
