package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/drill"
	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/render"
	"github.com/linkapp/linkdr/internal/report"
	"github.com/linkapp/linkdr/internal/runbook"
)

func newDrillCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run DR drills, list them, and report what they measured",
		Long: `A restore drill restores the latest backup of each store into a scratch
target, proves it against the backup's manifest, runs the store's checks on
the copy, measures RTO and RPO, removes the copy, and stores a report in the
repository (drills/<id>.json). See docs/drills.md.`,
		Example: "  linkdr drill run restore\n  linkdr drill list\n  linkdr drill report -o html > drill.html\n  linkdr drill schedule",
	}
	cmd.AddCommand(newDrillRunCmd(g), newDrillListCmd(g), newDrillReportCmd(g), newDrillDueCmd(g))
	return cmd
}

func newDrillRunCmd(g *globals) *cobra.Command {
	var stores []string
	var scenario string
	cmd := &cobra.Command{
		Use:   "run NAME|restore|failover",
		Short: "Run a drill of the plan, or an ad-hoc restore or failover drill",
		Long: `run starts a drill now. NAME is a drill of the plan (its kind, stores, scratch
servers and checks apply); "restore" is an ad-hoc restore drill of every store
(or --store); "failover" rehearses a scenario runbook (--scenario).

A restore drill, per store: writes a canary record into the live store
(table linkdr_canary for PostgreSQL), restores the latest backup into a
scratch database (linkdr_drill_<id>_<db>), compares every table's rows and
checksum with the manifest, compares the figures with the previous backup
(max_table_shrink), runs the store's checks against the copy, reports which
canaries survived, and drops the scratch copy on every path — failure and
Ctrl-C included. Other kinds restore into their own scratch targets (a spare
Redis database, a renamed Qdrant collection, a scratch bucket prefix). The
report is written to the primary repository even when the drill fails.

A failover drill runs the scenario's runbook unattended (gates approved),
with the drill's vars and rehearsal=true, journaled like any run, and fails
when the run fails or a phase overruns its budget or the scenario's RTO.

Exit status: 0 when the drill passed, 1 when it failed (the report says
where and why), and the usual codes when it could not start (2 usage,
10 no repository, 12 no key).`,
		Example: `  linkdr drill run restore
  linkdr drill run restore --store users-db -o json
  linkdr drill run backup-restore
  linkdr drill run failover --scenario regional-failure`,
		Args: exactArgs(1, "a drill name, restore or failover"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			dr := &drill.Runner{Ops: r, Log: g.log, Trigger: "cli"}
			if !g.json() {
				dr.Progress = func(s string) { fmt.Fprintf(g.stderr, "drill: %s\n", s) }
			}
			rep, err := runDrill(cmd.Context(), g, dr, args[0], stores, scenario)
			if rep == nil {
				return err
			}
			if g.json() {
				if perr := printJSON(g.stdout, rep); perr != nil {
					return perr
				}
			} else {
				printDrill(g, rep)
			}
			return err
		},
	}
	cmd.Flags().StringArrayVar(&stores, "store", nil, "drill only this store (repeatable)")
	cmd.Flags().StringVar(&scenario, "scenario", "", "failover: the scenario to rehearse")
	return cmd
}

// runDrill runs a drill with dr: name is a drill of the plan (its kind,
// stores, scratch servers and checks apply), or "restore" or "failover"
// for an ad-hoc one. `drill run` and serve's scheduled drills both run
// through it. The report comes back even when the drill failed.
func runDrill(ctx context.Context, g *globals, dr *drill.Runner, name string, stores []string, scenario string) (*drillreport.Report, error) {
	p := dr.Ops.Plan
	d, kind := p.Drills[name], name
	if d != nil {
		kind = d.Kind
	}
	switch kind {
	case plan.DrillRestore:
		if scenario != "" {
			return nil, usagef("--scenario belongs to failover drills")
		}
		return dr.Restore(ctx, drill.RestoreOptions{Drill: d, Stores: stores})
	case plan.DrillFailover:
		if len(stores) > 0 {
			return nil, usagef("--store belongs to restore drills")
		}
		o, err := g.operations(ctx, "")
		if err != nil {
			return nil, err
		}
		defer o.closeRepo()
		dr.Rehearser = rehearser{o}
		return dr.Failover(ctx, d, scenario)
	}
	return nil, usagef(fmt.Sprintf("no drill %q in %s (drills: %s; or restore, failover)", name, p.Path, strings.Join(p.DrillNames(), ", ")))
}

// serveDrill is how serve runs the plan's drills on their schedule: as
// `drill run NAME` does, with trigger "schedule". now stamps the drill
// (nil: the wall clock).
func serveDrill(g *globals, r *ops.Runner, log *slog.Logger, now func() time.Time) func(ctx context.Context, name string) (*drillreport.Report, error) {
	return func(ctx context.Context, name string) (*drillreport.Report, error) {
		dr := &drill.Runner{Ops: r, Log: log.With("drill", name), Trigger: "schedule", Now: now}
		return runDrill(ctx, g, dr, name, nil, "")
	}
}

func printDrill(g *globals, rep *drillreport.Report) {
	if sc := rep.Scenario; sc != nil {
		t := newTable(g.stdout, "SCENARIO", "RUN", "PHASE", "TOOK", "BUDGET", "RESULT")
		for _, ph := range sc.Phases {
			res := "OK"
			if !ph.OK {
				res = "OVER BUDGET"
			}
			t.row(sc.ID, sc.RunID, ph.Name, render.Seconds(ph.Seconds), render.Seconds(ph.BudgetSeconds), res)
		}
		t.row(sc.ID, sc.RunID, "(total)", render.Seconds(sc.RTOSeconds), render.Seconds(sc.RTOObjectiveSeconds), verdict(rep.OK && sc.RTOSeconds <= sc.RTOObjectiveSeconds, "OK", "OVER RTO"))
		t.flush()
	}
	t := newTable(g.stdout, "STORE", "BACKUP", "RESULT", "RTO", "RPO", "CANARY RPO", "INTEGRITY", "CLEANUP")
	for _, s := range rep.Stores {
		res := "OK"
		if !s.OK {
			res = "FAILED (" + s.Phase + ")"
		}
		canary := "-"
		if s.CanaryRPOSeconds != nil {
			canary = render.Seconds(*s.CanaryRPOSeconds)
		}
		clean := "removed " + fmt.Sprint(len(s.Cleanup.Removed))
		if !s.Cleanup.OK {
			clean = "LEFT: " + s.Cleanup.Error
		}
		integrity := s.Integrity.Summary
		if integrity == "" {
			integrity = "-"
		}
		t.row(s.Store, s.BackupID, res, render.Seconds(s.RTOSeconds), render.Seconds(s.RPOSeconds), canary, integrity, clean)
	}
	if len(rep.Stores) > 0 {
		t.flush()
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(g.stdout, "not drilled (no drill for their kind yet): %s\n", strings.Join(rep.Skipped, ", "))
	}
	fmt.Fprintf(g.stdout, "drill %s %s\nreport: drills/%s.json (linkdr drill report %s -o html > drill.html)\n",
		rep.ID, verdict(rep.OK, "PASSED", "FAILED: "+rep.Error), rep.ID, rep.ID)
}

// drillReports reads every drill report of the primary repository.
func drillReports(ctx context.Context, r *ops.Runner) ([]*drillreport.Report, error) {
	rp, err := r.OpenRepo(ctx, plan.DefaultRepository)
	if err != nil {
		return nil, err
	}
	defer rp.Close()
	return drillreport.List(ctx, rp.Bucket())
}

func newDrillListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the drill reports in the repository",
		Example: "  linkdr drill list\n  linkdr drill list -o json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			reps, err := drillReports(cmd.Context(), r)
			if err != nil {
				return err
			}
			if g.json() {
				var out []report.Drill
				for _, rp := range reps {
					out = append(out, report.Drill{ID: rp.ID, Drill: rp.Drill, Kind: rp.Kind, Title: rp.Title, Started: rp.Started,
						Finished: rp.Finished, OK: rp.OK, Error: rp.Error, Points: report.Points(rp)})
				}
				if out == nil {
					out = []report.Drill{}
				}
				return printJSON(g.stdout, out)
			}
			t := newTable(g.stdout, "ID", "DRILL", "KIND", "STARTED", "RESULT", "STORES", "MAX RTO", "MAX RPO")
			for _, rp := range reps {
				res := "OK"
				if !rp.OK {
					res = "FAILED"
				}
				var names []string
				var rto, rpo float64
				for _, s := range rp.Stores {
					names = append(names, s.Store)
					rto, rpo = max(rto, s.RTOSeconds), max(rpo, s.RPOSeconds)
				}
				name := rp.Drill
				if name == "" {
					name = "-"
				}
				t.row(rp.ID, name, rp.Kind, stamp(rp.Started), res, strings.Join(names, ","), render.Seconds(rto), render.Seconds(rpo))
			}
			t.flush()
			return nil
		},
	}
}

func newDrillReportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "report [ID]",
		Short: "Show one drill's report as Markdown, self-contained HTML or JSON",
		Long: `report renders a drill report from the repository: the measured RTO and RPO
against the objectives, the integrity comparison table by table, the history
check, the canaries, the checks and the cleanup. Without ID, the newest.`,
		Example:     "  linkdr drill report\n  linkdr drill report 20261208T100000Z-3fa2 -o html > drill.html\n  linkdr drill report -o json",
		Args:        maxArgs(1, "one drill id"),
		Annotations: map[string]string{outputsAnnotation: "md,html,json"},
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			rp, err := r.OpenRepo(cmd.Context(), plan.DefaultRepository)
			if err != nil {
				return err
			}
			defer rp.Close()
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			rep, err := drillreport.Load(cmd.Context(), rp.Bucket(), id)
			if err != nil {
				if errors.Is(err, drillreport.ErrNotFound) {
					return usagef(err.Error())
				}
				return err
			}
			return writeDoc(g, report.DrillDoc(rep), rep)
		},
	}
}

// writeDoc writes a document in the chosen format; JSON writes data.
func writeDoc(g *globals, d *render.Doc, data any) error {
	switch g.output {
	case "json":
		return printJSON(g.stdout, data)
	case "html":
		return d.HTML(g.stdout)
	default:
		return d.Markdown(g.stdout)
	}
}

func newDrillDueCmd(g *globals) *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Show when each drill of the plan runs, last ran, and whether it is due",
		Long: `schedule lists the plan's drills with their schedule (a monthly slot such as
"week 2, Tuesday 10:00 UTC", or cron), the last run found in the repository,
the next slot, and whether linkdr serve would start it now.`,
		Example: "  linkdr drill schedule\n  linkdr drill schedule --at 2026-12-08T10:00:00Z -o json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			if at != "" {
				if now, err = time.Parse(time.RFC3339, at); err != nil {
					return usagef(fmt.Sprintf("--at %q: want RFC 3339, like 2026-12-08T10:00:00Z", at))
				}
			}
			reps, err := drillReports(cmd.Context(), r)
			if err != nil {
				return err
			}
			last := drill.LastRuns(reps)
			due := map[string]time.Time{}
			for _, d := range drill.Due(r.Plan, last, now) {
				due[d.Name] = d.At
			}
			type row struct {
				Drill    string    `json:"drill"`
				Kind     string    `json:"kind"`
				Schedule string    `json:"schedule"`
				LastRun  time.Time `json:"last_run,omitempty"`
				Next     time.Time `json:"next,omitempty"`
				Due      bool      `json:"due"`
			}
			var rows []row
			for _, n := range r.Plan.DrillNames() {
				d := r.Plan.Drills[n]
				_, isDue := due[n]
				rows = append(rows, row{Drill: n, Kind: d.Kind, Schedule: d.ScheduleText(), LastRun: last[n], Next: d.NextOccurrence(now), Due: isDue})
			}
			if g.json() {
				if rows == nil {
					rows = []row{}
				}
				return printJSON(g.stdout, rows)
			}
			t := newTable(g.stdout, "DRILL", "KIND", "SCHEDULE", "LAST RUN", "NEXT", "DUE NOW")
			for _, x := range rows {
				dueNow := "no"
				if x.Due {
					dueNow = "yes"
				}
				t.row(x.Drill, x.Kind, x.Schedule, stamp(x.LastRun), stamp(x.Next), dueNow)
			}
			t.flush()
			return nil
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "evaluate at this time instead of now (RFC 3339)")
	return cmd
}

// rehearser runs failover drills with the runbook engine: every gate
// approved (a drill is unattended), the run journaled like any other, so
// `runbook status` and `incident timeline` show the rehearsal too.
type rehearser struct{ o *operations }

func (h rehearser) Rehearse(ctx context.Context, scenario string, vars map[string]string) (*drillreport.Scenario, error) {
	id, err := h.o.engine.Start(ctx, scenario, runbook.RunOptions{Yes: true, Vars: vars})
	if id == "" {
		return nil, err
	}
	st, _, serr := h.o.engine.Status(context.WithoutCancel(ctx), id)
	if serr != nil {
		return nil, errors.Join(err, serr)
	}
	sc := st.Scenario
	out := &drillreport.Scenario{ID: scenario, Title: sc.Title, RunID: id, RTOObjectiveSeconds: sc.RTO.D().Seconds()}
	end := st.Finished
	if end.IsZero() {
		end = time.Now()
	}
	out.RTOSeconds = end.Sub(st.Started).Seconds()
	for _, ph := range sc.Phases {
		ps := st.Phases[ph.ID]
		if ps == nil || ps.Started.IsZero() {
			continue
		}
		fin := ps.Finished
		if fin.IsZero() {
			fin = end
		}
		secs := fin.Sub(ps.Started).Seconds()
		budget := ph.Budget.D().Seconds()
		out.Phases = append(out.Phases, drillreport.Phase{Name: ph.ID, Seconds: secs, BudgetSeconds: budget,
			OK: !ps.Breached && (budget == 0 || secs <= budget)})
	}
	if err == nil && st.Status != runbook.StatusSucceeded {
		err = fmt.Errorf("run %s ended %s", id, st.Status)
	}
	if err != nil {
		return out, fmt.Errorf("runbook %s (run %s): %w", scenario, id, err)
	}
	return out, nil
}

func verdict(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}
