package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/store/postgres"
)

func newPGCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pg",
		Short: "PostgreSQL checks",
	}
	var l postgres.ReplicationLimits
	var maxLagBytes, maxRetained string
	repl := &cobra.Command{
		Use:   "replication STORE",
		Short: "Check streaming replication health: replay lag and slot-retained WAL",
		Long: `replication connects to STORE's server and reports streaming replication as
that server sees it. On a primary: every standby (state, sent/flushed/
replayed LSN, replay lag in bytes and seconds) and every replication slot
(active, WAL it makes the server retain). On a standby: its WAL receiver
and how far replay is behind.

It exits 1 when a limit is exceeded or something is broken (a standby not
streaming, an inactive slot holding WAL, a slot whose WAL was lost), so it
works as a check in runbooks and cron. Sizes accept KiB/MiB/GiB.`,
		Example: `  linkdr pg replication users-db
  linkdr pg replication users-db --max-lag 30s --max-lag-bytes 64MiB --max-retained 10GiB --min-standbys 1 -o json`,
		Args: exactArgs(1, "a store name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if l.MaxLagBytes, err = parseSize(maxLagBytes); err != nil {
				return usagef("--max-lag-bytes: " + err.Error())
			}
			if l.MaxRetained, err = parseSize(maxRetained); err != nil {
				return usagef("--max-retained: " + err.Error())
			}
			r, err := g.runner()
			if err != nil {
				return err
			}
			st, cfg, err := r.Store(args[0])
			if err != nil {
				return err
			}
			pg, ok := st.(*postgres.Postgres)
			if !ok {
				return usagef(fmt.Sprintf("store %s is of kind %s, not postgres", args[0], cfg.Kind))
			}
			rep, err := pg.Replication(cmd.Context())
			if err != nil {
				return err
			}
			problems := rep.Problems(l)
			if g.json() {
				if err := printJSON(g.stdout, map[string]any{"replication": rep, "problems": problems, "ok": len(problems) == 0}); err != nil {
					return err
				}
			} else {
				printPGReplication(g, rep, problems)
			}
			if len(problems) > 0 {
				return fmt.Errorf("replication of %s: %s", args[0], strings.Join(problems, "; "))
			}
			return nil
		},
	}
	f := repl.Flags()
	f.StringVar(&maxLagBytes, "max-lag-bytes", "", "fail if a standby's replay is more than this behind (e.g. 64MiB)")
	f.DurationVar(&l.MaxLag, "max-lag", 0, "fail if a standby's replay lag exceeds this (e.g. 30s)")
	f.StringVar(&maxRetained, "max-retained", "", "fail if a slot makes the server retain more WAL than this (e.g. 10GiB)")
	f.IntVar(&l.MinStandbys, "min-standbys", 0, "fail if fewer standbys are streaming")
	f.BoolVar(&l.InactiveSlotsOK, "inactive-slots-ok", false, "do not fail on slots nobody consumes")
	cmd.AddCommand(repl)
	return cmd
}

func printPGReplication(g *globals, r *postgres.Replication, problems []string) {
	w := g.stdout
	role := "primary"
	if r.InRecovery {
		role = "standby"
	}
	fmt.Fprintf(w, "server: %s (%s), WAL at %s\n", r.Server, role, r.CurrentLSN)
	if len(r.Standbys) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "STANDBY", "CLIENT", "STATE", "SYNC", "REPLAYED", "LAG", "LAG TIME")
		for _, s := range r.Standbys {
			t.row(s.Name, s.Client, s.State, s.SyncState, s.ReplayLSN, sizeOf(s.ReplayLagBytes), time.Duration(s.ReplayLagSeconds*float64(time.Second)).Round(time.Millisecond))
		}
		t.flush()
	}
	if len(r.Slots) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "SLOT", "TYPE", "ACTIVE", "RESTART LSN", "RETAINED", "WAL STATUS")
		for _, s := range r.Slots {
			t.row(s.Name, s.Type, s.Active, s.RestartLSN, sizeOf(s.RetainedBytes), s.WALStatus)
		}
		t.flush()
	}
	if rc := r.Receiver; rc != nil {
		fmt.Fprintf(w, "\nreceiver: %s from %s, received %s, replayed %s (%s behind, last commit replayed %.1fs ago)\n",
			rc.Status, rc.Sender, rc.ReceivedLSN, rc.ReplayLSN, sizeOf(rc.ReplayLagBytes), rc.ReplayDelaySeconds)
	}
	if len(problems) == 0 {
		fmt.Fprintln(w, "\nhealthy")
	} else {
		fmt.Fprintln(w, "\nproblems:")
		for _, p := range problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}

// parseSize parses "64MiB", "10GiB", "1048576" ("" is 0).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	var n float64
	if _, err := fmt.Sscanf(s, "%g", &n); err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: use e.g. 64MiB or 10GiB", s)
	}
	return int64(n * float64(mult)), nil
}
