package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/linkapp/linkdr/internal/ops"
)

type restoreOptions struct {
	ops.RestoreOptions
	dryRun bool
	yes    bool

	// Point-in-time restore of physical backups.
	toTime, toLSN, toName string
	latest                bool
	targetDir             string
	port                  int
	start                 bool
	archive               bool
}

func (o *restoreOptions) pitr() bool {
	return o.toTime != "" || o.toLSN != "" || o.toName != "" || o.latest || o.targetDir != "" || o.start || o.port != 0 || o.archive
}

func newRestoreCmd(g *globals) *cobra.Command {
	o := &restoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore STORE",
		Short: "Restore a backup of a store into a target",
		Long: `restore restores the newest backup of STORE (or --backup ID) into the store
itself or into --target. For a store with several backup methods (logical
and physical, resp and rdb), --method picks the newest backup of one.

PostgreSQL: --target is a server URL; if it
names a database, the (single, or --select-ed) database is restored under
that name. Missing databases are created; a database that already has
tables is refused unless --force, which replaces the objects of the dump.

With --jobs 1 the dump streams into pg_restore in one transaction: all or
nothing, no temporary file. With --jobs N > 1 the schema comes from
pg_restore and linkdr loads the table data itself over N connections as
it streams, large tables split between them; indexes and constraints are
then built by pg_restore --jobs N. Only a small file (the dump's table of
contents) goes to --temp-dir, unless the dump holds large objects or
--force replaces existing objects: then the whole dump is spooled there
first for pg_restore --jobs N. Rows of a table loaded over several
connections are stored in a slightly different physical order than in
the source (run CLUSTER where that order matters).

After restoring, every table's row count and content checksum are compared
with the figures recorded at backup time (--verify=false skips this); a
difference exits 13.

Redis (method resp): --target is redis://host:port (a database may
follow: redis://host:port/5) or any node of a cluster (redis://node:6379,
or several: redis://n1:6379,n2:6379); the password comes from the URL or
REDISCLI_AUTH. Keys are replayed pipelined (--jobs pipelines in flight)
and routed by slot, so the target may have another shape than the source;
keys whose expiry has passed are skipped and counted. A target older than
the backup's RDB version is refused before anything is written, and a
database that holds keys is refused unless --force (which keeps its keys
and replaces those of the same name). Verification compares key counts
and the values and expiries of about 1000 sampled keys per database. A
Redis backup of method rdb is written as dump.rdb into the --target
directory, for a server to load at start.

Qdrant: --target is one node (qdrant://host:6333 or http(s)://…); each
collection's snapshot is streamed to POST /collections/NAME/snapshots/upload
(priority snapshot, checksum = the snapshot's SHA-256), then restore waits
until the collection is green with the backup's exact point count and
compares its config params. --select picks collections, --rename OLD=NEW
restores one under another name. An existing collection needs --force.

S3: --target is s3://bucket/prefix?region=…&endpoint=…; objects land under
the prefix with their content type and metadata. A prefix that holds
objects needs --force, which makes it exactly the backup: differing objects
are replaced, objects not in the backup deleted, identical ones left alone.
--select restricts to key prefixes. Verification lists the target and
compares every key, size and MD5.

restore asks for confirmation on a terminal; scripts pass --yes. --dry-run
shows what would be restored where, and changes nothing.`,
		Example: `  linkdr restore users-db --dry-run
  linkdr restore users-db --target postgres://postgres@10.0.0.5:5432/link_users_scratch --yes
  linkdr restore users-db --backup 20261126T061500Z-3fa2 --select link_users --jobs 2 --yes
  linkdr restore cache --target redis://10.0.0.7:6379 --jobs 4 --yes
  linkdr restore cache --method rdb --target /var/lib/redis --yes   # the newest rdb backup: dump.rdb
  linkdr restore vectors --target qdrant://10.0.0.7:6333 --select profiles --rename profiles=profiles_drill --yes
  linkdr restore media --target 's3://link-media-drill/uploads?region=us-east-1' --yes`,
		Args: exactArgs(1, "a store name"),
		RunE: func(cmd *cobra.Command, args []string) error { return runRestore(cmd, g, o, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&o.Backup, "backup", "", "backup id or unique prefix (default: the newest)")
	f.StringVar(&o.Method, "method", "", "restore the newest backup of this method, for a store with several (default: the newest of any method)")
	f.StringVar(&o.Repository, "repo", "", "repository of the plan to restore from (default: the store's)")
	f.StringVar(&o.Target, "target", "", "where to restore (default: the store itself)")
	f.StringSliceVar(&o.Select, "select", nil, "restore only these parts (PostgreSQL: databases, Redis: database numbers, Qdrant: collections, S3: key prefixes)")
	f.StringToStringVar(&o.Rename, "rename", nil, "restore a part under another name, OLD=NEW (Qdrant collections)")
	f.IntVarP(&o.Jobs, "jobs", "j", 1, "parallel jobs (PostgreSQL: connections loading data, and pg_restore --jobs for the indexes, of each large table as soon as it is loaded and of the rest at the end; Redis: pipelines in flight)")
	f.BoolVar(&o.Force, "force", false, "replace the contents of a target that already has data")
	f.BoolVar(&o.Verify, "verify", true, "compare the restored data with the backup's figures (row counts and checksums; Redis: key counts and sampled values)")
	f.StringVar(&o.TempDir, "temp-dir", os.TempDir(), "where --jobs > 1 keeps temporary files (PostgreSQL: the table of contents and lists of its entries; a whole dump with large objects or --force)")
	f.BoolVar(&o.dryRun, "dry-run", false, "show what would be restored, change nothing")
	f.BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	f.StringVar(&o.toTime, "to-time", "", `point-in-time: replay to this time ("2026-11-26 12:00:00 UTC", RFC 3339)`)
	f.StringVar(&o.toLSN, "to-lsn", "", "point-in-time: replay to this WAL position (16/B374D848)")
	f.StringVar(&o.toName, "to-name", "", "point-in-time: replay to this restore point (pg_create_restore_point)")
	f.BoolVar(&o.latest, "latest", false, "point-in-time: replay all archived WAL")
	f.StringVar(&o.targetDir, "target-dir", "", "point-in-time: new data directory to restore into")
	f.IntVar(&o.port, "port", 0, "point-in-time: port of the restored server (needed with --start)")
	f.BoolVar(&o.start, "start", false, "point-in-time: start the server and wait until it reached the target")
	f.BoolVar(&o.archive, "archive", false, "point-in-time: keep the backup's archive settings in the restored server")
	return cmd
}

func runRestore(cmd *cobra.Command, g *globals, o *restoreOptions, storeName string) error {
	if o.Jobs < 1 {
		return usagef("--jobs must be at least 1")
	}
	r, err := g.runner()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	cfg, err := r.StoreConfig(storeName)
	if err != nil {
		return err
	}
	if o.pitr() {
		return runRestorePITR(cmd, g, r, o, storeName)
	}
	rp, m, err := r.ResolveBackup(ctx, storeName, o.RestoreOptions)
	if err != nil {
		return err
	}
	rp.Close()
	if m.Method == "physical" {
		alt := ""
		if cfg.HasMethod("logical") {
			alt = ", or take the newest logical backup with --method logical"
		}
		return usagef(fmt.Sprintf("backup %s of %s is physical: restore it to a point in time with --target-dir DIR and one of --to-time, --to-lsn, --to-name or --latest%s (see 'linkdr restore --help')", m.ID, storeName, alt))
	}
	target := o.Target
	if target == "" {
		target = cfg.URL.String() + " (the store itself)"
	} else {
		target = redactURL(target)
	}
	if o.dryRun {
		plan := map[string]any{
			"store": storeName, "backup": m.ID, "method": m.Method, "consistent_at": m.ConsistentAt, "target": target,
			"artifacts": m.Artifacts, "pool": m.Pool, "select": o.Select, "rename": o.Rename, "jobs": o.Jobs, "force": o.Force, "verify": o.Verify,
		}
		if g.json() {
			return printJSON(g.stdout, plan)
		}
		fmt.Fprintf(g.stdout, "would restore %s backup %s (%s, consistent at %s, %s)\ninto %s\n", storeName, m.ID, m.Method, stamp(m.ConsistentAt), sizeOf(m.PlainSize()), target)
		for _, a := range m.Artifacts {
			if len(o.Select) == 0 || contains(o.Select, a.Meta["database"]) || contains(o.Select, a.Meta["collection"]) {
				fmt.Fprintf(g.stdout, "  %s (%s)\n", a.Name, sizeOf(a.PlainSize))
			}
		}
		for _, a := range m.Pool {
			fmt.Fprintf(g.stdout, "  %s (%s, shared pool)\n", a.Name, sizeOf(a.PlainSize))
		}
		for from, to := range o.Rename {
			fmt.Fprintf(g.stdout, "  %s restored as %s\n", from, to)
		}
		fmt.Fprintln(g.stdout, "dry run: nothing changed")
		return nil
	}
	if !o.yes {
		if err := confirm(g, fmt.Sprintf("Restore %s backup %s (consistent at %s) into %s?", storeName, m.ID, stamp(m.ConsistentAt), target)); err != nil {
			return err
		}
	}
	o.Backup = m.ID // exactly the backup that was confirmed
	start := time.Now()
	_, res, err := r.Restore(ctx, storeName, o.RestoreOptions)
	elapsed := time.Since(start)
	if res != nil {
		if g.json() {
			if perr := printJSON(g.stdout, map[string]any{"backup": m.ID, "result": res, "duration_ns": elapsed}); perr != nil {
				return perr
			}
		} else {
			t := newTable(g.stdout, "RESTORED", "INTO", "DURATION", "VERIFIED")
			for _, it := range res.Items {
				v := "no"
				if it.Verified {
					v = it.Checked
				}
				t.row(it.Name, it.Target, it.Duration.Round(time.Millisecond), v)
			}
			t.flush()
			if err == nil {
				fmt.Fprintf(g.stdout, "restored %s from %s in %s\n", storeName, m.ID, elapsed.Round(time.Millisecond))
			}
		}
	}
	return err
}

// confirm asks on a terminal; elsewhere it refuses, so a script that
// forgot --yes fails instead of hanging.
func confirm(g *globals, question string) error {
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usagef("not a terminal: pass --yes to confirm (or --dry-run to see what would happen)")
	}
	fmt.Fprintf(g.stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(f).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return usagef("not confirmed")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
