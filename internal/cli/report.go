package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/check"
	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/plandoc"
	"github.com/linkapp/linkdr/internal/report"
)

func newReportCmd(g *globals) *cobra.Command {
	var noChecks bool
	var checklists []string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "The DR posture: objectives vs measured RTO/RPO, drill trend, failed checks, freshness",
		Long: `report gathers, from the repositories and by running the plan's checks, the
whole DR posture: each store's RPO exposure against its objective, the RTO
and RPO measured by every drill over time against the objectives, the trend
of drills, and the checks that fail now. -o html writes one self-contained
page (inline SVG charts, no scripts, no external assets); -o md Markdown;
-o json the same data for scripts.`,
		Example: `  linkdr report -o html > posture.html
  linkdr report --no-checks
  linkdr report --checklist post-recovery -o json`,
		Args:        exactArgs(0, "no arguments"),
		Annotations: map[string]string{outputsAnnotation: "md,html,json"},
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			r.Progress = nil
			ctx := cmd.Context()
			st, err := r.Status(ctx)
			if err != nil {
				return err
			}
			reps, err := drillReports(ctx, r)
			if err != nil {
				return err
			}
			var res check.Results
			if !noChecks && len(r.Plan.Checks) > 0 {
				if res, err = (&check.Runner{Plan: r.Plan, Ops: r, Log: g.log}).Run(ctx, checklists); err != nil {
					return usagef(err.Error())
				}
			}
			p := report.Build(r.Plan.Name, drillreport.Objectives{RTOSeconds: r.Plan.Objectives.RTO.D().Seconds(),
				RPOSeconds: r.Plan.Objectives.RPO.D().Seconds()}, st, reps, res, time.Now())
			return writeDoc(g, p.Doc(), p)
		},
	}
	cmd.Flags().BoolVar(&noChecks, "no-checks", false, "do not run checks (repositories only)")
	cmd.Flags().StringArrayVar(&checklists, "checklist", nil, "run only this checklist (repeatable; default every check)")
	return cmd
}

func newPlanRenderCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "render",
		Short: "Write the human DR plan document from the plan file",
		Long: `render writes the DR plan people read — overview, objectives, architecture
(regions, stores, repositories), failure scenarios with their runbooks and
budgets, communication plan and templates, the drill schedule, the recovery
validation checklist with the check behind each item, the latest measured
RTO and RPO (from the drill reports in the primary repository), post-incident
activities, contacts and escalation, and appendices — from the same file
linkdr executes. -o md (default) or -o html (one self-contained page).

If the repository cannot be read, the document is still written, without
measurements, and a warning goes to stderr.`,
		Example:     "  linkdr plan render > DR-PLAN.md\n  linkdr --config examples/link/linkdr.yaml plan render -o html > dr-plan.html",
		Args:        exactArgs(0, "no arguments"),
		Annotations: map[string]string{outputsAnnotation: "md,html"},
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			reps, err := drillReports(cmd.Context(), r)
			if err != nil {
				fmt.Fprintf(g.stderr, "linkdr: warning: the document has no measured RTO/RPO: %v\n", err)
			}
			updated := time.Now()
			if fi, err := os.Stat(r.Plan.Path); err == nil {
				updated = fi.ModTime()
			}
			doc := plandoc.Build(plandoc.Input{Plan: r.Plan, Reports: reps, Updated: updated, Now: time.Now()})
			return writeDoc(g, doc, nil)
		},
	}
}
