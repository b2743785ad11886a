package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/store/postgres"
	"github.com/linkapp/linkdr/internal/store/postgres/walarchive"
)

func newWALPushCmd(g *globals) *cobra.Command {
	var storeName string
	cmd := &cobra.Command{
		Use:   "wal-push PATH",
		Short: "Archive one WAL file (PostgreSQL archive_command)",
		Long: `wal-push archives one file that PostgreSQL hands to archive_command — a WAL
segment, a timeline .history file, a .partial segment or a .backup label —
into wal/<store>/<timeline>/ of the store's repository, compressed and
encrypted like every backup artifact. It needs only the plan's public keys.

Pushing a file that is already archived with the same content succeeds
without uploading (PostgreSQL may retry after a crash); a different file
under the same name fails, because two clusters archiving into one store
would make both archives useless. A killed wal-push leaves nothing that
counts: a file is archived only once its sidecar (<file>.json) is written.

The store is --store, else $LINKDR_STORE, else the plan's only postgres store
with a wal section. The plan is --config or $LINKDR_CONFIG: archive_command
runs in the data directory as the server's OS user, so give absolute paths
that user can read.`,
		Example: `  # postgresql.conf
  archive_mode = on
  archive_command = '/usr/local/bin/linkdr --config /etc/linkdr/linkdr.yaml wal-push --store users-db %p'
  archive_timeout = 60s

  linkdr wal-push pg_wal/000000010000000000000003`,
		Args: exactArgs(1, "the path of the WAL file (%p)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := r.WALPush(cmd.Context(), storeName, args[0])
			if err != nil {
				return err
			}
			verb := "archived"
			if res.AlreadyArchived {
				verb = "already archived"
			}
			g.log.Info("wal-push", "file", res.Info.Name, "result", verb, "stored_bytes", res.Info.StoredSize, "duration", time.Since(start).Round(time.Millisecond))
			if g.json() {
				return printJSON(g.stdout, map[string]any{"file": res.Info.Name, "already_archived": res.AlreadyArchived, "info": res.Info})
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&storeName, "store", "", "store the WAL belongs to (default $LINKDR_STORE, or the only store with wal)")
	return cmd
}

// walFatal marks a wal-fetch failure that is not "file not archived":
// PostgreSQL must stop recovery (exit status > 125) rather than take it
// for the end of the archive and promote too early.
type walFatal struct{ err error }

func (e walFatal) Error() string { return e.err.Error() }
func (e walFatal) Unwrap() error { return e.err }

// walMissing is a file that is not in the archive: PostgreSQL's
// restore_command contract is exit status 1, quietly.
type walMissing struct{ err error }

func (e walMissing) Error() string { return e.err.Error() }
func (e walMissing) Unwrap() error { return e.err }

func newWALFetchCmd(g *globals) *cobra.Command {
	var storeName string
	cmd := &cobra.Command{
		Use:   "wal-fetch NAME PATH",
		Short: "Restore one WAL file from the archive (PostgreSQL restore_command)",
		Long: `wal-fetch writes the archived WAL file NAME (%f) to PATH (%p), decrypted and
checked against its recorded SHA-256, and only then renamed into place.
It needs the age identity (identity_file or $LINKDR_AGE_IDENTITY_FILE)
readable by the server's OS user.

Exit status 1 means "not in the archive", which PostgreSQL expects for the
end of the archive and for timelines that do not exist. Any other failure
(repository unreachable, damaged file, wrong key) exits 255 so that
PostgreSQL stops recovery instead of promoting at the wrong point.

After a segment it starts a background wal-prefetch of the next segments
(wal.prefetch, default 8) into pg_wal/.linkdr-prefetch, so replay does not
wait for the network. A segment that is not archived complete is served
from its newest .partial (streaming mode), padded with zeros: replay stops
at its end. linkdr restore writes this restore_command for you.`,
		Example: `  restore_command = '/usr/local/bin/linkdr --config /etc/linkdr/linkdr.yaml wal-fetch --store users-db %f %p'`,
		Args:    exactArgs(2, "the WAL file name (%f) and the path to write (%p)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return walFatal{err}
			}
			res, err := r.WALFetch(cmd.Context(), storeName, args[0], args[1])
			if walarchive.IsNotFound(err) {
				return walMissing{err}
			}
			if err != nil {
				return walFatal{err}
			}
			if len(res.Next) > 0 {
				if err := spawnPrefetch(g, storeName, res); err != nil {
					g.log.Warn("could not start wal-prefetch", "err", err)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&storeName, "store", "", "store the WAL belongs to (default $LINKDR_STORE, or the only store with wal)")
	return cmd
}

// spawnPrefetch starts `linkdr wal-prefetch` detached from PostgreSQL's
// restore_command, which must return at once.
func spawnPrefetch(g *globals, storeName string, res *ops.WALFetchResult) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg, err := filepath.Abs(g.config)
	if err != nil {
		return err
	}
	args := []string{"--config", cfg, "wal-prefetch", "--dir", res.Dir}
	if storeName != "" {
		args = append(args, "--store", storeName)
	}
	c := exec.Command(exe, append(args, res.Next...)...)
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return err
	}
	return c.Process.Release()
}

func newWALPrefetchCmd(g *globals) *cobra.Command {
	var storeName, dir string
	cmd := &cobra.Command{
		Use:    "wal-prefetch --dir DIR NAME...",
		Short:  "Download WAL segments ahead of recovery (started by wal-fetch)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usagef("--dir is required")
			}
			r, err := g.runner()
			if err != nil {
				return err
			}
			return r.WALPrefetch(cmd.Context(), storeName, dir, args)
		},
	}
	cmd.Flags().StringVar(&storeName, "store", "", "store the WAL belongs to")
	cmd.Flags().StringVar(&dir, "dir", "", "prefetch directory (pg_wal/.linkdr-prefetch)")
	return cmd
}

func newWALCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wal",
		Short: "Inspect a store's WAL archive",
	}
	verify := &cobra.Command{
		Use:   "verify STORE",
		Short: "Find gaps in the WAL chain since the oldest base backup",
		Long: `wal verify follows the WAL archive of STORE from the start of its oldest
physical backup along the timeline history to the newest archived segment,
and reports every segment that is missing: a restore cannot replay past a
gap, so everything after it is unrecoverable by point-in-time restore. It
also says, per physical backup, whether the WAL needed to make it
consistent is there. Only listings and the small sidecars are read; no key
is needed. Exit 13 when there is a gap.`,
		Example: "  linkdr wal verify users-db\n  linkdr wal verify users-db -o json",
		Args:    exactArgs(1, "a store name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			rep, err := r.WALVerify(cmd.Context(), args[0])
			if rep == nil {
				return err
			}
			if g.json() {
				if perr := printJSON(g.stdout, rep); perr != nil {
					return perr
				}
				return err
			}
			printWALReport(g, rep)
			return err
		},
	}
	cmd.AddCommand(verify)
	return cmd
}

func printWALReport(g *globals, rep *ops.WALReport) {
	w := g.stdout
	fmt.Fprintf(w, "store:        %s\narchived:     %d files, %s stored\n", rep.Store, rep.Files, sizeOf(rep.Stored))
	if c := rep.Chain; c != nil {
		fmt.Fprintf(w, "chain:        from backup %s, %s .. %s on timeline %d (%d segments)\n", rep.From, c.First, orDash(c.Last), c.Timeline, c.Segments)
		if !c.LastArchived.IsZero() {
			fmt.Fprintf(w, "last WAL:     %s (%s ago), up to %s\n", stamp(c.LastArchived), age(time.Since(c.LastArchived)), c.EndLSN)
		}
		if c.Complete() {
			fmt.Fprintln(w, "gaps:         none")
		} else {
			fmt.Fprintf(w, "gaps:         %d missing: %s\n", len(c.Missing), strings.Join(c.Missing, ", "))
		}
	}
	if len(rep.Unfinished) > 0 {
		fmt.Fprintf(w, "unfinished:   %s (interrupted pushes; PostgreSQL retries them)\n", strings.Join(rep.Unfinished, ", "))
	}
	if len(rep.Backups) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "BACKUP", "START WAL", "STOP WAL", "CONSISTENCY WAL")
		for _, b := range rep.Backups {
			ok := "archived"
			if !b.Consistent {
				ok = "MISSING"
			}
			t.row(b.ID, b.StartWAL, b.StopWAL, ok)
		}
		t.flush()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newWALReceiveCmd(g *globals) *cobra.Command {
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "wal-receive STORE",
		Short: "Stream WAL into the repository over a replication slot (wal mode stream)",
		Long: `wal-receive is a long-running WAL receiver for STORE: it connects with the
replication protocol, creates the store's physical replication slot
(wal.slot, default linkdr_<store>) if needed, and uploads every completed
segment as soon as it fills, and the segment being written as a .partial
every wal.partial_interval (default 2s). The repository is never more than
about that far behind the server.

The slot is told WAL is flushed only once it is in the repository, so the
server keeps what a restarted receiver still needs: kill it at any moment,
start it again, and it resumes after the newest archived segment with no
gap. It reconnects by itself after network errors and stops on Ctrl-C or
SIGTERM after uploading what it has.

Every --status-every it prints its position and lag (bytes between the
server's WAL end and what is durable in the repository) on stderr, or as
JSON lines on stdout with -o json. Run it under a supervisor (systemd,
a Kubernetes Deployment with one replica).

A slot that nobody consumes makes the server keep WAL forever: if you stop
using stream mode, drop the slot (SELECT pg_drop_replication_slot('…')).`,
		Example: "  linkdr wal-receive users-db\n  linkdr wal-receive users-db -o json --status-every 5s",
		Args:    exactArgs(1, "a store name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			cfg, err := r.WALStore(args[0])
			if err != nil {
				return err
			}
			if cfg.WAL.Mode != "stream" {
				g.log.Warn("the store's wal mode is not stream; receiving anyway", "store", cfg.Name, "mode", cfg.WAL.Mode)
			}
			var last time.Time
			status := func(s postgres.ReceiverStatus) {
				if time.Since(last) < every {
					return
				}
				last = time.Now()
				if g.json() {
					printJSON(g.stdout, s)
					return
				}
				fmt.Fprintf(g.stderr, "%s wal-receive %s: durable %s, received %s, server %s, lag %s\n",
					time.Now().UTC().Format("15:04:05"), cfg.Name, s.Durable, s.Received, s.ServerEnd, sizeOf(s.LagBytes))
			}
			err = r.WALReceive(cmd.Context(), cfg.Name, status)
			if err == nil && cmd.Context().Err() != nil {
				return nil // stopped on purpose, after uploading what it had
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&every, "status-every", 10*time.Second, "how often to report position and lag")
	return cmd
}
