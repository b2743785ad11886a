package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/runbook"
)

func newRunbookCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runbook",
		Short: "List, show, run and resume the plan's failure scenarios",
		Long: `A runbook is a scenario of the plan: phases with time budgets, and steps
(shell, k8s.*, dns.failover, restore, http.wait, check, notify, approve, wait).
A run is journaled event by event in the state directory and the repository
(runs/<run-id>/journal.jsonl), opens or joins an incident, and can be resumed
after a crash without repeating finished steps. See docs/runbooks.md.`,
	}
	cmd.AddCommand(newRunbookListCmd(g), newRunbookShowCmd(g), newRunbookRunCmd(g), newRunbookResumeCmd(g),
		newRunbookStatusCmd(g), newRunbookApproveCmd(g), newRunbookAbortCmd(g))
	return cmd
}

func newRunbookListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the scenarios of the plan with their RTO and budgets",
		Example: "  linkdr runbook list\n  linkdr runbook list -o json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			if g.json() {
				out := []map[string]any{}
				for _, n := range p.ScenarioNames() {
					s := p.Scenarios[n]
					out = append(out, map[string]any{"id": n, "title": s.Title, "severity": s.Severity, "rto": s.RTO, "budget": plan.Duration(s.Budget()), "phases": len(s.Phases), "steps": len(s.StepIDs())})
				}
				return printJSON(g.stdout, out)
			}
			t := newTable(g.stdout, "SCENARIO", "SEVERITY", "RTO", "BUDGETS", "PHASES", "STEPS", "TITLE")
			for _, n := range p.ScenarioNames() {
				s := p.Scenarios[n]
				t.row(n, s.Severity, s.RTO, plan.Duration(s.Budget()), len(s.Phases), len(s.StepIDs()), s.Title)
			}
			t.flush()
			return nil
		},
	}
}

func newRunbookShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show SCENARIO",
		Short:   "Show a scenario: detection, automatic recovery, phases, budgets and steps",
		Example: "  linkdr runbook show regional-failure\n  linkdr runbook show database-corruption -o json",
		Args:    exactArgs(1, "a scenario id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			s, ok := p.Scenarios[args[0]]
			if !ok {
				return fmt.Errorf("%w %q (scenarios: %s)", runbook.ErrUnknownScenario, args[0], strings.Join(p.ScenarioNames(), ", "))
			}
			if g.json() {
				return printJSON(g.stdout, s)
			}
			w := g.stdout
			fmt.Fprintf(w, "%s — %s (severity %s)\nRTO %s, RPO %s; phase budgets add up to %s\n", args[0], s.Title, s.Severity, s.RTO, p.ScenarioRPO(s), plan.Duration(s.Budget()))
			if s.Description != "" {
				fmt.Fprintf(w, "\n%s\n", s.Description)
			}
			d := s.Detection
			if len(d.Alerts)+len(d.Checks)+len(d.Signals) > 0 {
				fmt.Fprintln(w, "\nDetection:")
				for _, a := range d.Alerts {
					fmt.Fprintf(w, "  alert  %s\n", a)
				}
				for _, c := range d.Checks {
					fmt.Fprintf(w, "  check  %s\n", c)
				}
				for _, s := range d.Signals {
					fmt.Fprintf(w, "  signal %s\n", s)
				}
			}
			if len(s.AutomaticRecovery) > 0 {
				fmt.Fprintln(w, "\nAutomatic recovery:")
				for _, a := range s.AutomaticRecovery {
					fmt.Fprintf(w, "  - %s\n", a)
				}
			}
			for i, ph := range s.Phases {
				fmt.Fprintf(w, "\nPhase %d: %s (%s) — budget %s\n", i+1, ph.ID, ph.Title, ph.Budget)
				for _, st := range ph.Steps {
					flags := []string{}
					if st.Confirm || st.Action == "approve" {
						flags = append(flags, "needs approval")
					}
					if st.Retries > 0 {
						flags = append(flags, fmt.Sprintf("%d retries", st.Retries))
					}
					if st.Policy() != plan.OnErrorFail {
						flags = append(flags, "on_error "+st.Policy())
					}
					if st.When != "" {
						flags = append(flags, "when "+st.When)
					}
					if st.Rollback != nil {
						flags = append(flags, "rollback: "+st.Rollback.Action)
					}
					extra := ""
					if len(flags) > 0 {
						extra = "  [" + strings.Join(flags, "; ") + "]"
					}
					fmt.Fprintf(w, "  %-24s %-16s %s%s\n", st.ID, st.Action, summarize(st), extra)
				}
			}
			return nil
		},
	}
}

// summarize shows a step's main parameters in one line.
func summarize(st plan.Step) string {
	if st.Title != "" {
		return st.Title
	}
	keys := make([]string, 0, len(st.With))
	for k := range st.With {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v := fmt.Sprint(st.With[k])
		if len(v) > 50 {
			v = v[:47] + "..."
		}
		parts = append(parts, k+"="+strings.ReplaceAll(v, "\n", " "))
	}
	return strings.Join(parts, " ")
}

type runFlags struct {
	dryRun       bool
	yes          bool
	vars         []string
	incident     string
	waitApproval time.Duration
}

func (f *runFlags) options(g *globals) (runbook.RunOptions, error) {
	o := runbook.RunOptions{Yes: f.yes, WaitApproval: f.waitApproval, Incident: f.incident}
	if len(f.vars) > 0 {
		o.Vars = map[string]string{}
		for _, kv := range f.vars {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return o, usagef(fmt.Sprintf("--var %q: want name=value", kv))
			}
			o.Vars[k] = v
		}
	}
	if !f.yes {
		o.Prompt = g.prompter()
	}
	return o, nil
}

const runHelp = `
Steps that need approval (action approve, or confirm: true) ask on a terminal.
Elsewhere, --yes approves them as you; without it the run waits up to
--wait-approval for 'linkdr runbook approve RUN STEP' from anyone, then pauses
(exit 22) until 'linkdr runbook resume RUN'.

On a terminal the live view shows each phase's elapsed time against its
budget; a phase at 80 % of its budget raises a warning, at 100 % a breach.
Every event is journaled first, so after a crash or kill, 'resume' continues
at the first unfinished step (a step that was running starts again).`

func newRunbookRunCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Run a scenario's runbook (or check it with --dry-run)",
		Long: `run executes the phases and steps of SCENARIO in order, opening an incident
(or joining --incident) whose timeline receives the run's events.

--dry-run changes nothing: it checks every step's preconditions (tools on
PATH, Kubernetes contexts reachable and server-side dry runs, DNS zones
answering, backups present and targets reachable, channels configured) and
prints the plan of the run; it exits 1 when a precondition fails.
` + runHelp,
		Example: `  linkdr runbook run regional-failure --dry-run
  linkdr runbook run regional-failure --yes
  linkdr runbook run database-corruption --var corrupted_at="2026-11-26 05:40:00 UTC"
  linkdr runbook run az-failure --incident inc-20261126T061500Z-3fa2 --wait-approval 30m`,
		Args: exactArgs(1, "a scenario id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			sc, ok := p.Scenarios[args[0]]
			if !ok {
				return fmt.Errorf("%w %q in %s (scenarios: %s)", runbook.ErrUnknownScenario, args[0], g.config, strings.Join(p.ScenarioNames(), ", "))
			}
			o, err := g.operations(cmd.Context(), sc.Repository)
			if err != nil {
				return err
			}
			defer o.closeRepo()
			if f.dryRun {
				return dryRun(g, o, args[0], opts)
			}
			v := newRunView(g, sc)
			o.engine.Observer = v.event
			opts.Prompt = v.ask(opts.Prompt)
			v.start()
			id, err := o.engine.Start(cmd.Context(), args[0], opts)
			v.stop()
			return finishRun(g, o, id, err)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&f.dryRun, "dry-run", false, "check preconditions and print the plan; change nothing")
	fs.BoolVarP(&f.yes, "yes", "y", false, "approve every gate as yourself")
	fs.StringArrayVar(&f.vars, "var", nil, "set a variable the steps use: name=value (repeatable)")
	fs.StringVar(&f.incident, "incident", "", "join this incident instead of opening one")
	fs.DurationVar(&f.waitApproval, "wait-approval", 0, "without a terminal, how long a gate waits for `runbook approve` before the run pauses")
	return cmd
}

func dryRun(g *globals, o *operations, name string, opts runbook.RunOptions) error {
	pcs, err := o.engine.DryRun(g.ctx(), name, opts)
	if err != nil {
		return err
	}
	failed := 0
	for _, pc := range pcs {
		if !pc.OK {
			failed++
		}
	}
	if g.json() {
		if err := printJSON(g.stdout, map[string]any{"scenario": name, "steps": pcs, "failed": failed}); err != nil {
			return err
		}
	} else {
		sc := o.plan.Scenarios[name]
		phase := ""
		for _, pc := range pcs {
			if pc.Phase != phase {
				phase = pc.Phase
				for _, ph := range sc.Phases {
					if ph.ID == phase {
						fmt.Fprintf(g.stdout, "\nphase %s (budget %s)\n", ph.ID, ph.Budget)
					}
				}
			}
			mark := "ok  "
			if !pc.OK {
				mark = "FAIL"
			}
			gate := ""
			if pc.Gate {
				gate = " [needs approval]"
			}
			fmt.Fprintf(g.stdout, "  %s %-24s %-16s%s\n", mark, pc.Step, pc.Action, gate)
			for _, n := range pc.Notes {
				fmt.Fprintf(g.stdout, "         %s\n", n)
			}
			if pc.Error != "" {
				fmt.Fprintf(g.stdout, "         error: %s\n", pc.Error)
			}
		}
		fmt.Fprintf(g.stdout, "\ndry run: %d steps, %d preconditions failed; nothing changed\n", len(pcs), failed)
	}
	if failed > 0 {
		return fmt.Errorf("dry run of %s: %d of %d preconditions failed", name, failed, len(pcs))
	}
	return nil
}

// finishRun prints the run's summary and returns its error (exit code).
func finishRun(g *globals, o *operations, id string, runErr error) error {
	if id == "" {
		return runErr
	}
	st, _, err := o.engine.Status(g.ctx(), id)
	if err != nil {
		if runErr != nil {
			return runErr
		}
		return err
	}
	if err := printRun(g, st); err != nil {
		return err
	}
	return runErr
}

func printRun(g *globals, st *runbook.State) error {
	now := time.Now()
	if g.json() {
		phases := []map[string]any{}
		for _, ph := range st.Scenario.Phases {
			ps := st.Phases[ph.ID]
			m := map[string]any{"id": ph.ID, "budget": ph.Budget, "elapsed_s": st.PhaseElapsed(ph.ID, now).Seconds()}
			if ps != nil {
				m["status"], m["warned"], m["breached"] = ps.Status, ps.Warned, ps.Breached
			}
			phases = append(phases, m)
		}
		return printJSON(g.stdout, map[string]any{"run": st, "elapsed_s": st.Elapsed(now).Seconds(), "phases": phases})
	}
	w := g.stdout
	fmt.Fprintf(w, "run %s (%s): %s after %s", st.ID, st.Name, strings.ToUpper(st.Status), elapsed(st.Elapsed(now)))
	if st.Incident != "" {
		fmt.Fprintf(w, ", incident %s", st.Incident)
	}
	fmt.Fprintln(w)
	if st.Error != "" {
		fmt.Fprintf(w, "  %s\n", st.Error)
	}
	t := newTable(w, "PHASE", "BUDGET", "ELAPSED", "USED", "STATUS")
	for _, ph := range st.Scenario.Phases {
		ps := st.Phases[ph.ID]
		status, el, used := "pending", "-", "-"
		if ps != nil && !ps.Started.IsZero() {
			d := st.PhaseElapsed(ph.ID, now)
			el = elapsed(d)
			used = fmt.Sprintf("%.1f%%", 100*d.Seconds()/ph.Budget.D().Seconds())
			status = ps.Status
			if ps.Breached {
				status += " (over budget)"
			}
		}
		t.row(ph.ID, ph.Budget, el, used, status)
	}
	t.flush()
	fmt.Fprintln(w)
	t = newTable(w, "STEP", "ACTION", "STATUS", "ATTEMPTS", "DURATION", "ERROR")
	for _, ph := range st.Scenario.Phases {
		for _, s := range ph.Steps {
			ss := st.Steps[s.ID]
			status, att, dur, msg := "pending", "", "", ""
			if ss != nil {
				status, att, msg = ss.Status, fmt.Sprint(ss.Attempts), ss.Error
				if !ss.Finished.IsZero() && !ss.Started.IsZero() {
					dur = ss.Finished.Sub(ss.Started).Round(time.Millisecond).String()
				}
				if by := st.Approvals[s.ID]; by != "" && status == "pending" {
					status = "approved"
				}
			} else if st.Requested[s.ID] {
				status = "awaiting approval"
			}
			if len(msg) > 80 {
				msg = msg[:77] + "..."
			}
			t.row(s.ID, s.Action, status, att, dur, msg)
		}
	}
	t.flush()
	return nil
}

func newRunbookResumeCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "resume RUN",
		Short: "Continue a crashed, interrupted or paused run at its first unfinished step",
		Long: `resume continues RUN (an id or unique prefix) with the scenario as it was when
the run started (the journal keeps a copy), its variables, and its incident.
Finished steps are not repeated; a step that was running when the process
died starts again.` + runHelp,
		Example: "  linkdr runbook resume run-20261126T061500Z-3fa2\n  linkdr runbook resume run-2026 --yes",
		Args:    exactArgs(1, "a run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			st, _, err := o.engine.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			v := newRunView(g, st.Scenario)
			v.seed(st)
			o.engine.Observer = v.event
			opts.Prompt = v.ask(opts.Prompt)
			v.start()
			id, err := o.engine.Resume(cmd.Context(), st.ID, opts)
			v.stop()
			return finishRun(g, o, id, err)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&f.yes, "yes", "y", false, "approve every remaining gate as yourself")
	fs.DurationVar(&f.waitApproval, "wait-approval", 0, "without a terminal, how long a gate waits for `runbook approve`")
	return cmd
}

func newRunbookStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status [RUN]",
		Short: "Show a run's phases and steps, or list the runs",
		Long: `status reads the journal (here, or from the repository on another machine).
A run that nobody drives and that did not finish shows as interrupted: resume it.`,
		Example: "  linkdr runbook status\n  linkdr runbook status run-20261126T061500Z-3fa2 -o json",
		Args:    maxArgs(1, "a run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			if len(args) == 1 {
				st, _, err := o.engine.Status(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return printRun(g, st)
			}
			ids, err := o.journals.List(cmd.Context(), runbook.RunPrefix)
			if err != nil {
				return err
			}
			var list []*runbook.State
			for i := len(ids) - 1; i >= 0; i-- {
				if st, _, err := o.engine.Status(cmd.Context(), ids[i]); err == nil {
					list = append(list, st)
				}
			}
			// Newest first by start time: ids order runs only to the
			// second, and two runs of the same second by a random suffix.
			sort.SliceStable(list, func(i, j int) bool { return list[i].Started.After(list[j].Started) })
			if g.json() {
				return printJSON(g.stdout, list)
			}
			t := newTable(g.stdout, "RUN", "SCENARIO", "STATUS", "STARTED", "ELAPSED", "INCIDENT")
			for _, st := range list {
				t.row(st.ID, st.Name, st.Status, stamp(st.Started), age(st.Elapsed(time.Now())), st.Incident)
			}
			t.flush()
			return nil
		},
	}
}

func newRunbookApproveCmd(g *globals) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   "approve RUN STEP",
		Short: "Approve a step that waits for a person",
		Long: `approve records your approval of STEP in RUN (locally and in the repository).
A process waiting at the gate continues; a paused run continues with
'linkdr runbook resume RUN'.`,
		Example: "  linkdr runbook approve run-20261126T061500Z-3fa2 declare-failover --comment 'AWS confirms us-west-2 outage'",
		Args:    exactArgs(2, "a run id and a step id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			id, err := o.engine.Approve(cmd.Context(), args[0], args[1], comment)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "approved %s of %s as %s\n", args[1], id, o.by)
			if !o.journals.Busy(id) {
				fmt.Fprintf(g.stdout, "the run is paused: continue it with `linkdr runbook resume %s`\n", id)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "why (lands in the journal and the post-mortem)")
	return cmd
}

func newRunbookAbortCmd(g *globals) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:     "abort RUN",
		Short:   "Stop a run: the running step is cancelled, nothing more runs",
		Example: "  linkdr runbook abort run-20261126T061500Z-3fa2 --comment 'false alarm'",
		Args:    exactArgs(1, "a run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.operations(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer o.closeRepo()
			id, err := o.engine.Abort(cmd.Context(), args[0], comment)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "abort requested for %s\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "why")
	return cmd
}

// elapsed shows short durations precisely (a rehearsal's phases take
// seconds) and long ones as age does.
func elapsed(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return age(d)
}
