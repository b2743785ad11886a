package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/ops"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each store's RPO exposure against its objective",
		Long: `status reads the repositories directly (no daemon needed) and shows, per store,
the newest restorable backup, its age (the RPO exposure: how much data an
outage now would lose), the RPO objective, and a state: OK, AT RISK (over
80% of the objective), BREACHED (over the objective, or never backed up) or
UNKNOWN (repository unreadable).

For a PostgreSQL store with continuous WAL (wal: in the plan) and a physical
backup to replay it on, the exposure is the age of the newest archived WAL
file (marked "(wal)"), not of the newest backup: that is what a
point-in-time restore can reach.

The exit status is 0 when every store is OK or AT RISK, 1 when any is
BREACHED, and the repository's error status (10 when missing) when one
cannot be read — so status works as a cron or monitoring check.`,
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
				if err := printJSON(g.stdout, st); err != nil {
					return err
				}
				return statusError(st)
			}
			t := newTable(g.stdout, "STORE", "KIND", "LATEST BACKUP", "CONSISTENT AT", "EXPOSURE", "RPO", "STATE", "BACKUPS", "STORED", "LAST WAL")
			for _, s := range st {
				latest, exposure := "-", "-"
				if s.LatestID != "" {
					latest = s.LatestID + " (" + s.LatestMethod + ")"
					exposure = age(s.Exposure)
				}
				lastWAL := "-"
				if s.LastWAL != "" {
					lastWAL = s.LastWAL + " (" + age(time.Since(s.LastWALAt)) + " ago)"
				}
				if s.ExposureFrom == "wal" {
					exposure += " (wal)"
				}
				t.row(s.Store, s.Kind, latest, stamp(s.ConsistentAt), exposure, age(s.RPO), s.State, s.Backups, sizeOf(s.StoredBytes), lastWAL)
			}
			t.flush()
			for _, s := range st {
				if s.Error != "" {
					fmt.Fprintf(g.stdout, "%s: %s\n", s.Store, s.Error)
				}
			}
			return statusError(st)
		},
	}
}

// statusError makes status usable in scripts and cron: an unreadable
// repository exits with that error's status (10 when it is missing), a
// breached RPO exits 1. AT RISK is a warning, not a failure.
func statusError(st []ops.StoreStatus) error {
	var breached []string
	for _, s := range st {
		if s.State == ops.StateUnknown {
			return fmt.Errorf("store %s: %w", s.Store, s.Err)
		}
		if s.State == ops.StateBreached {
			breached = append(breached, s.Store)
		}
	}
	if len(breached) > 0 {
		return fmt.Errorf("RPO breached (or never backed up): %s", strings.Join(breached, ", "))
	}
	return nil
}
