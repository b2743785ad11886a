package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/store/postgres"
	"github.com/linkapp/linkdr/internal/testenv"
)

// restoreInto lays a PITR restore down in a fresh cluster directory,
// starts it and waits until recovery is over; it returns the cluster.
func (e *pitrEnv) restoreInto(t *testing.T, args ...string) *testenv.Postgres {
	t.Helper()
	pg := testenv.NewPostgres(t, testenv.PostgresOptions{Empty: true})
	out := e.must(append([]string{"restore", "db", "--target-dir", pg.DataDir, "--yes"}, args...)...)
	t.Logf("restore %v:\n%s", args, out)
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	r, err := postgres.WaitRecovered(t.Context(), pg.URL, func() error {
		if !pg.Running() {
			b, _ := os.ReadFile(pg.LogFile)
			return fmt.Errorf("restored server died:\n%s", b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recovery reached %s (last commit %s) on timeline %d", r.LSN, r.LastCommit.Format(time.RFC3339Nano), r.Timeline)
	return pg
}

// TestPITR: a writer inserts rows all along; a base backup runs under that
// load; WAL is archived by archive_command = linkdr wal-push. Restores to
// a time, an LSN and a named restore point in the middle of the history
// hold every row committed before the target and none after.
func TestPITR(t *testing.T) {
	t.Parallel()
	e := newPITREnv(t, "archive")
	pg := testenv.NewPostgres(t, testenv.PostgresOptions{Conf: e.archiveConf()})
	e.writePlan(pg.URL, "archive")
	e.must("repo", "init")
	// A second tablespace: restore puts it beside the data directory.
	tsDir := testenv.TempDir(t)
	if err := sqlExec(pg.URL, `CREATE TABLESPACE extra LOCATION '`+tsDir+`'`); err != nil {
		t.Fatal(err)
	}
	if err := sqlExec(pg.URL, `CREATE TABLE elsewhere TABLESPACE extra AS SELECT g FROM generate_series(1, 5000) g`); err != nil {
		t.Fatal(err)
	}
	w := startWriter(t, pg.URL)
	testenv.WaitFor(t, 30*time.Second, func() error {
		if w.count() < 200 {
			return fmt.Errorf("%d rows so far", w.count())
		}
		return nil
	})
	out := e.must("backup", "db", "-o", "json")
	if !strings.Contains(out, `"method": "physical"`) {
		t.Fatalf("backup: %s", out)
	}
	atLeast := func(n int) {
		testenv.WaitFor(t, 30*time.Second, func() error {
			if w.count() < n {
				return fmt.Errorf("%d rows so far", w.count())
			}
			return nil
		})
	}
	atLeast(w.count() + 200)
	targetTime := time.Now()
	atLeast(w.count() + 200)
	var targetLSN string
	lsnFrom := time.Now()
	queryRow(t, pg.URL, `SELECT pg_current_wal_lsn()::text`, &targetLSN)
	lsnTo := time.Now()
	atLeast(w.count() + 200)
	nameFrom := time.Now()
	var rp string
	queryRow(t, pg.URL, `SELECT pg_create_restore_point('before-cleanup')::text`, &rp)
	nameTo := time.Now()
	atLeast(w.count() + 200)
	w.halt(t)
	switchAndWaitArchived(t, pg.URL)

	t.Run("Verify", func(t *testing.T) {
		out := e.must("verify", "--latest", "--store", "db")
		if !strings.Contains(out, "OK") {
			t.Fatal(out)
		}
		out = e.must("wal", "verify", "db")
		if !strings.Contains(out, "gaps:         none") || !strings.Contains(out, "archived") {
			t.Fatal(out)
		}
		out = e.must("status")
		if !strings.Contains(out, "(wal)") || !strings.Contains(out, " OK ") {
			t.Fatalf("status must measure exposure from the last archived WAL:\n%s", out)
		}
	})
	t.Run("DryRun", func(t *testing.T) {
		dir := filepath.Join(testenv.TempDir(t), "pitr")
		out := e.must("restore", "db", "--to-time", targetTime.UTC().Format(time.RFC3339Nano), "--target-dir", dir, "--dry-run")
		for _, want := range []string{"base backup:", "WAL:            000000010000000000000", "complete:       yes", "dry run: nothing changed"} {
			if !strings.Contains(out, want) {
				t.Fatalf("missing %q in:\n%s", want, out)
			}
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("dry run created %s", dir)
		}
		// The method: a point in time starts from a physical backup, and
		// a method the plan does not give the store is refused.
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--method", "logical", "--to-time", targetTime.UTC().Format(time.RFC3339Nano), "--target-dir", dir}, "--method logical: a point-in-time restore"},
			{[]string{"--method", "rdb"}, `unknown backup method "rdb" for store db (the plan gives it: physical)`},
			{nil, "is physical: restore it to a point in time with --target-dir DIR and one of --to-time, --to-lsn, --to-name or --latest (see"},
		} {
			out, code := e.run(append(append([]string{"restore", "db"}, c.args...), "--dry-run")...)
			if code != ExitUsage || !strings.Contains(out, c.want) {
				t.Fatalf("restore %v: exit %d, want %d and %q:\n%s", c.args, code, ExitUsage, c.want, out)
			}
		}
		out = e.must("restore", "db", "--method", "physical", "--latest", "--target-dir", dir, "--dry-run")
		if !strings.Contains(out, "dry run: nothing changed") {
			t.Fatalf("--method physical with --latest:\n%s", out)
		}
	})
	t.Run("ToTime", func(t *testing.T) {
		r := e.restoreInto(t, "--to-time", targetTime.UTC().Format(time.RFC3339Nano))
		w.checkBoundary(t, r.URL, targetTime, targetTime)
	})
	t.Run("ToLSN", func(t *testing.T) {
		r := e.restoreInto(t, "--to-lsn", targetLSN)
		w.checkBoundary(t, r.URL, lsnFrom, lsnTo)
	})
	t.Run("ToName", func(t *testing.T) {
		r := e.restoreInto(t, "--to-name", "before-cleanup")
		w.checkBoundary(t, r.URL, nameFrom, nameTo)
	})
	t.Run("LatestStart", func(t *testing.T) {
		// linkdr starts the server itself (as the directory's owner) and
		// waits until it is promoted.
		dir := filepath.Join(testenv.TempDir(t), "data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		chownPostgres(t, dir)
		port := testenv.FreePort(t)
		t.Cleanup(func() {
			stop := exec.Command(filepath.Join(testenv.PGBinDir(t), "pg_ctl"), "stop", "-m", "fast", "-D", dir)
			stop.SysProcAttr = postgresCred(t)
			if out, err := stop.CombinedOutput(); err != nil {
				t.Errorf("pg_ctl stop: %v %s", err, out)
			}
		})
		out := e.must("restore", "db", "--latest", "--target-dir", dir, "--port", fmt.Sprint(port), "--start", "--yes", "-o", "json")
		var res struct {
			Result struct {
				Started bool
				Reached struct {
					LSN      string
					Timeline int
				}
			}
		}
		jsonField(t, out, &res)
		if !res.Result.Started || res.Result.Reached.LSN == "" || res.Result.Reached.Timeline < 2 {
			t.Fatalf("restore --start: %s", out)
		}
		url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		var n, elsewhere int64
		queryRow(t, url, `SELECT count(*) FROM ticks`, &n)
		if n != int64(w.count()) {
			t.Fatalf("restored %d rows, the writer committed %d", n, w.count())
		}
		queryRow(t, url, `SELECT count(*) FROM elsewhere`, &elsewhere)
		var loc string
		queryRow(t, url, `SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'extra'`, &loc)
		if elsewhere != 5000 || !strings.HasPrefix(loc, dir+"_tablespaces/") {
			t.Fatalf("tablespace extra: %d rows at %s", elsewhere, loc)
		}
		if err := sqlExec(url, `INSERT INTO ticks (id) VALUES (-1)`); err != nil {
			t.Fatalf("the restored server does not accept writes: %v", err)
		}
	})
	t.Run("ErrTargetNotEmpty", func(t *testing.T) {
		dir := testenv.TempDir(t)
		os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600)
		out, code := e.run("restore", "db", "--latest", "--target-dir", dir, "--yes")
		if code != ExitUsage || !strings.Contains(out, "pass --force") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
}
