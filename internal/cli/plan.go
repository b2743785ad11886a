package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/linkapp/linkdr/internal/plan"
)

func newPlanCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Check or show the plan file",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the plan: every problem with file:line, path and a hint",
		Long: `check reads the plan strictly (unknown keys are errors), applies defaults and
validates it: objectives, keys, repositories, stores, schedules against the
RPO objective, and retention against the retention objective. Errors exit 2;
warnings are printed but do not fail.`,
		Example: "  linkdr plan check\n  linkdr --config examples/link/linkdr.yaml plan check -o json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, warns, err := plan.Load(g.config)
			var inv *plan.InvalidError
			if err != nil && !errors.As(err, &inv) {
				return err
			}
			if g.json() {
				problems := append([]plan.Problem{}, warns...)
				if inv != nil {
					problems = append(inv.Problems, warns...)
				}
				if perr := printJSON(g.stdout, map[string]any{"file": g.config, "valid": err == nil, "problems": problems}); perr != nil {
					return perr
				}
				if err != nil {
					return fmt.Errorf("%w: %s", plan.ErrInvalid, plural(len(inv.Problems), "error"))
				}
				return nil
			}
			for _, w := range warns {
				fmt.Fprintln(g.stdout, w.String())
			}
			if err != nil {
				for _, pr := range inv.Problems {
					fmt.Fprintln(g.stdout, pr.String())
				}
				return fmt.Errorf("%s: %w: %s", g.config, plan.ErrInvalid, plural(len(inv.Problems), "error"))
			}
			fmt.Fprintf(g.stdout, "%s: plan %q is valid: %s, %s, %s\n", g.config, p.Name,
				plural(len(p.Stores), "store"), plural(len(p.Repositories), "repository"), plural(len(warns), "warning"))
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:     "show",
		Short:   "Print the effective plan: defaults applied, secrets masked",
		Example: "  linkdr plan show\n  linkdr plan show -o json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(g.stdout, p)
			}
			b, err := yaml.Marshal(p)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(b)
			return err
		},
	})
	cmd.AddCommand(newPlanRenderCmd(g))
	return cmd
}
