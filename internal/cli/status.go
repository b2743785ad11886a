package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each store's RPO exposure against its objective",
		Long: `status reads the repositories directly (no daemon needed) and shows, per store,
the newest restorable backup, its age (the RPO exposure: how much data an
outage now would lose), the RPO objective, and a state: OK, AT RISK (over
80% of the objective), BREACHED (over the objective, or never backed up) or
UNKNOWN (repository unreadable). It is the posture the dashboard of 'linkdr
serve' shows: under each store, its exposure counting only the backups that
reached each copy repository (copy_from, the DR region) and the age of its
WAL archive; then each repository's reachability, size and copy lag; and,
with the repository leader election, which replica of serve leads.

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
			p, err := r.Posture(cmd.Context())
			if err != nil {
				return err
			}
			st := p.Stores
			if g.json() {
				if err := printJSON(g.stdout, p); err != nil {
					return err
				}
				return statusError(st)
			}
			now := p.At
			t := newTable(g.stdout, "STORE", "KIND", "LATEST BACKUP", "CONSISTENT AT", "EXPOSURE", "RPO", "STATE", "BACKUPS", "STORED", "VERIFIED")
			for _, s := range st {
				latest, exposure := "-", "-"
				if s.LatestID != "" {
					latest = s.LatestID + " (" + s.LatestMethod + ")"
					exposure = age(s.Exposure)
				}
				if s.ExposureFrom == "wal" {
					exposure += " (wal)"
				}
				t.row(s.Store, s.Kind, latest, stamp(s.ConsistentAt), exposure, age(s.RPO), s.State, s.Backups, sizeOf(s.StoredBytes), verified(s.Verify, now))
				for _, c := range s.Copies {
					latest, exposure, state := "-", "-", c.State
					if c.LatestID != "" {
						latest, exposure = c.LatestID, age(c.Exposure)
					}
					if c.Error != "" {
						state += ": " + c.Error
					}
					t.row("  ↳ in "+c.Repository, "", latest, stamp(c.ConsistentAt), exposure, age(s.RPO), state, "", "", verified(c.Verify, now))
				}
				if !s.WALNewest.IsZero() {
					t.row("  ↳ WAL archive", "", "", stamp(s.WALNewest), age(s.WALLag), "", "", "", "", "")
				}
			}
			t.flush()
			for _, s := range st {
				if s.Error != "" {
					fmt.Fprintf(g.stdout, "%s: %s\n", s.Store, s.Error)
				}
			}
			fmt.Fprintln(g.stdout)
			rt := newTable(g.stdout, "REPOSITORY", "STATE", "DATA", "COPY OF", "COPY LAG", "PENDING")
			for _, rs := range p.Repositories {
				state := "reachable"
				if !rs.Reachable {
					state = "UNREACHABLE: " + rs.Error
				}
				lag, pending := "-", "-"
				if rs.CopyFrom != "" && rs.Reachable {
					lag, pending = age(rs.CopyLag), fmt.Sprintf("%d (%s)", rs.CopyPending, sizeOf(rs.CopyPendingB))
					if rs.CopyError != "" {
						lag = "unknown: " + rs.CopyError
					}
				}
				copyOf := rs.CopyFrom
				if copyOf == "" {
					copyOf = "-"
				}
				rt.row(rs.Name, state, fmt.Sprintf("%s in %d objects", sizeOf(rs.Bytes), rs.Objects), copyOf, lag, pending)
			}
			rt.flush()
			if l := p.Leader; l != nil {
				state := "leading"
				if now.After(l.Expires) {
					state = "expired: no replica leads"
				}
				fmt.Fprintf(g.stdout, "\nserve leader (repository lease, term %d): %s, %s until %s\n", l.Term, l.Holder, state, stamp(l.Expires))
			}
			return statusError(st)
		},
	}
}

// verified renders the last successful verification's age.
func verified(v *repo.VerifyRecord, now time.Time) string {
	switch {
	case v == nil:
		return "never"
	case !v.OK:
		return "FAILED " + age(now.Sub(v.At)) + " ago"
	case v.LastSuccess.IsZero():
		return "never"
	default:
		return age(now.Sub(v.LastSuccess)) + " ago"
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
