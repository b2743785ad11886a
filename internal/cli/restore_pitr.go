package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/postgres"
)

// BinEnv overrides the linkdr binary written into restore_command.
const BinEnv = "LINKDR_BIN"

func runRestorePITR(cmd *cobra.Command, g *globals, r *ops.Runner, o *restoreOptions, storeName string) error {
	ctx := cmd.Context()
	f := cmd.Flags()
	for _, name := range []string{"target", "select", "jobs", "verify", "temp-dir"} {
		if f.Changed(name) {
			return usagef(fmt.Sprintf("--%s applies to logical restores; a point-in-time restore (--to-time/--to-lsn/--to-name/--latest) writes a data directory (--target-dir)", name))
		}
	}
	if o.Method != "" && o.Method != "physical" {
		return usagef(fmt.Sprintf("--method %s: a point-in-time restore (--to-time/--to-lsn/--to-name/--latest/--target-dir) starts from a physical backup", o.Method))
	}
	cfg, _ := r.StoreConfig(storeName)
	if !cfg.HasMethod("physical") {
		return usagef(fmt.Sprintf("--to-time, --to-lsn, --to-name, --latest and --target-dir apply to physical backups; store %s has no physical backup method in %s", storeName, r.Plan.Path))
	}
	var t store.RecoveryTarget
	n := 0
	if o.toTime != "" {
		ts, err := parseTargetTime(o.toTime)
		if err != nil {
			return usagef("--to-time: " + err.Error())
		}
		t.Time = ts
		n++
	}
	if o.toLSN != "" {
		t.LSN = o.toLSN
		n++
	}
	if o.toName != "" {
		t.Name = o.toName
		n++
	}
	if o.latest {
		t.Latest = true
		n++
	}
	if n != 1 {
		return usagef("a point-in-time restore needs exactly one of --to-time, --to-lsn, --to-name or --latest")
	}
	if o.targetDir == "" && !o.dryRun {
		return usagef("--target-dir is required: the new data directory to restore into")
	}
	if o.start && o.port == 0 {
		return usagef("--start needs --port: the port the restored server listens on")
	}
	dir := o.targetDir
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		dir = abs
	}
	rc, err := restoreCommand(g, storeName)
	if err != nil {
		return err
	}
	po := ops.PITROptions{
		Backup: o.Backup, Repository: o.Repository, Target: t, TargetDir: dir, Port: o.port, Start: o.start,
		Force: o.Force, Archive: o.archive, RestoreCommand: rc, DryRun: true,
	}
	// Always plan first: a missing segment is reported before anything is written.
	plan, err := r.RestorePITR(ctx, storeName, po)
	if o.dryRun || err != nil {
		if plan == nil {
			return err
		}
		if g.json() {
			if perr := printJSON(g.stdout, plan); perr != nil {
				return perr
			}
		} else {
			printPITR(g, plan)
			if o.dryRun {
				fmt.Fprintln(g.stdout, "dry run: nothing changed")
			} else {
				fmt.Fprintln(g.stdout, "nothing was written")
			}
		}
		return err
	}
	if !o.yes {
		if err := confirm(g, fmt.Sprintf("Restore %s backup %s into %s and recover to %s?", storeName, plan.Backup, dir, t)); err != nil {
			return err
		}
	}
	po.DryRun = false
	po.Backup = plan.Backup // exactly the backup that was shown
	start := time.Now()
	res, err := r.RestorePITR(ctx, storeName, po)
	if res == nil {
		return err
	}
	if g.json() {
		if perr := printJSON(g.stdout, map[string]any{"result": res, "duration_ns": time.Since(start)}); perr != nil {
			return perr
		}
		return err
	}
	printPITR(g, res)
	if err == nil {
		if res.Started {
			fmt.Fprintf(g.stdout, "restored %s in %s: the server on port %d is promoted and accepts writes\n", storeName, time.Since(start).Round(time.Millisecond), o.port)
		} else {
			fmt.Fprintf(g.stdout, "laid down %s in %s: start it as the directory's owner (pg_ctl -D %s start); it recovers to %s and promotes\n", storeName, time.Since(start).Round(time.Millisecond), dir, t)
		}
	}
	return err
}

// parseTargetTime accepts RFC 3339 and the plan's "2026-11-26 12:00:00 UTC".
// A time without a zone is UTC.
func parseTargetTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutSuffix(s, " UTC"); ok {
		s = rest + "Z"
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q: use RFC 3339 (2026-11-26T12:00:00Z) or \"2026-11-26 12:00:00 UTC\"", s)
}

// restoreCommand is what the restored server runs to fetch WAL: this
// linkdr (or $LINKDR_BIN) with the same plan and identity.
func restoreCommand(g *globals, storeName string) (string, error) {
	exe := os.Getenv(BinEnv)
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", err
		}
	}
	cfg, err := filepath.Abs(g.config)
	if err != nil {
		return "", err
	}
	cmd := fmt.Sprintf("%s --config %s wal-fetch --store %s %%f %%p", shellQuote(exe), shellQuote(cfg), shellQuote(storeName))
	if id := os.Getenv(ops.IdentityEnv); id != "" {
		abs, err := filepath.Abs(id)
		if err != nil {
			return "", err
		}
		cmd = ops.IdentityEnv + "=" + shellQuote(abs) + " " + cmd
	}
	return cmd, nil
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func printPITR(g *globals, res *store.PITRResult) {
	w := g.stdout
	fmt.Fprintf(w, "store:          %s\nbase backup:    %s (consistent at %s)\ntarget:         %s\n", res.Store, res.Backup, stamp(res.ConsistentAt), res.Target)
	if res.TargetDir != "" {
		fmt.Fprintf(w, "data directory: %s\n", res.TargetDir)
	}
	if pw, ok := res.WAL.(*postgres.PITRWAL); ok && pw.Chain != nil {
		c := pw.Chain
		fmt.Fprintf(w, "WAL:            %s .. %s, %d segments, timeline %d", c.First, orDash(c.Last), c.Segments, c.Timeline)
		if c.Partial {
			fmt.Fprint(w, " (ends in a partial segment)")
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "consistent at:  %s (the server accepts connections once replay passes it)\n", pw.ConsistencyWAL)
		if !c.LastArchived.IsZero() {
			fmt.Fprintf(w, "archived until: %s (%s)\n", stamp(c.LastArchived), c.EndLSN)
		}
		if len(c.Missing) > 0 {
			fmt.Fprintf(w, "missing:        %s\n", strings.Join(c.Missing, ", "))
		}
	}
	complete := "yes"
	if !res.Complete {
		complete = "NO"
	}
	fmt.Fprintf(w, "complete:       %s\n", complete)
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "warning:        %s\n", warn)
	}
	if rc, ok := res.Reached.(*postgres.Reached); ok && rc != nil {
		fmt.Fprintf(w, "reached:        LSN %s, last commit %s, now on timeline %d\n", rc.LSN, stamp(rc.LastCommit), rc.Timeline)
	}
}
