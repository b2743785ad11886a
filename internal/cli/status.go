package cli

import (
	"github.com/spf13/cobra"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each store's RPO exposure against its objective",
		Long: `status reads the repositories directly (no daemon needed) and shows, per store,
the newest restorable backup, its age (the RPO exposure: how much data an
outage now would lose), the RPO objective, and a state: OK, AT RISK (over
80% of the objective), BREACHED (over the objective, or never backed up) or
UNKNOWN (repository unreadable).`,
		Example: "  linkdr status\n  linkdr status -o json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			st, err := r.Status(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(g.stdout, st)
			}
			t := newTable(g.stdout, "STORE", "KIND", "LATEST BACKUP", "CONSISTENT AT", "EXPOSURE", "RPO", "STATE", "BACKUPS", "STORED")
			for _, s := range st {
				latest, exposure := "-", "-"
				if s.LatestID != "" {
					latest = s.LatestID + " (" + s.LatestMethod + ")"
					exposure = age(s.Exposure)
				}
				state := s.State
				if s.Error != "" {
					state += ": " + s.Error
				}
				t.row(s.Store, s.Kind, latest, stamp(s.ConsistentAt), exposure, age(s.RPO), state, s.Backups, sizeOf(s.StoredBytes))
			}
			t.flush()
			return nil
		},
	}
}
