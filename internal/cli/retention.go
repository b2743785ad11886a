package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newRetentionCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Apply the plan's retention policy",
	}
	var dryRun bool
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Delete backups the retention policy no longer keeps",
		Long: `apply runs the plan's grandfather-father-son policy over every store's backups,
per method, and deletes what it does not keep. It never deletes the newest
backup of a store, nor a backup whose retain_until is in the future. It also
removes leftovers of backups interrupted more than 24 hours ago.
--dry-run prints the decisions (with -v, every backup and why) and deletes
nothing.`,
		Example: "  linkdr retention apply --dry-run -v\n  linkdr retention apply -o json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			reports, err := r.ApplyRetention(cmd.Context(), dryRun)
			if g.json() {
				if perr := printJSON(g.stdout, map[string]any{"dry_run": dryRun, "series": reports}); perr != nil {
					return perr
				}
				return err
			}
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			t := newTable(g.stdout, "STORE", "METHOD", "KEPT", strings.ToUpper(verb), "ERRORS")
			for _, s := range reports {
				removed := s.Removed
				if len(s.Incomplete) > 0 {
					removed = len(s.Incomplete)
				}
				t.row(s.Store, s.Method, s.Kept, removed, len(s.Errors))
			}
			t.flush()
			for _, s := range reports {
				if g.verbose > 0 {
					for _, d := range s.Decisions {
						mark := "keep  "
						if !d.Keep {
							mark = verb
						}
						fmt.Fprintf(g.stdout, "  %s %s %s  %s\n", s.Store, mark, d.ID, strings.Join(d.Reasons, ", "))
					}
					for _, id := range s.Incomplete {
						fmt.Fprintf(g.stdout, "  %s %s %s  interrupted backup\n", s.Store, verb, id)
					}
				}
				for _, e := range s.Errors {
					fmt.Fprintf(g.stderr, "linkdr: %s %s: %s\n", s.Store, s.Method, e)
				}
			}
			if err == nil {
				for _, s := range reports {
					if len(s.Errors) > 0 {
						return fmt.Errorf("retention: some deletions failed (see above)")
					}
				}
			}
			return err
		},
	}
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "decide but delete nothing")
	cmd.AddCommand(apply)
	return cmd
}
