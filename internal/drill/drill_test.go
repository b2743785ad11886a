package drill_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/linkapp/linkdr/internal/drill"
	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	_ "github.com/linkapp/linkdr/internal/store/postgres"
	"github.com/linkapp/linkdr/internal/testenv"
)

const data = `
CREATE TABLE users (id int PRIMARY KEY, email text);
INSERT INTO users SELECT i, 'u' || i || '@example.com' FROM generate_series(1, 1000) i;
CREATE TABLE messages (id int, body text);
INSERT INTO messages SELECT i, repeat('hi ', i % 10) FROM generate_series(1, 3000) i;`

func sql(t *testing.T, u, stmt string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func query(t *testing.T, u, q string) int64 {
	t.Helper()
	c, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int64
	if err := c.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

type fixture struct {
	db, name string
	ops      *ops.Runner
	drills   *drill.Runner
	repoDir  string
}

// setup makes a database with data and a plan protecting it, with a
// store check that only passes on an intact copy of the data.
func setup(t *testing.T, extra string) *fixture {
	t.Helper()
	db := testenv.NewDatabase(t, "drill")
	sql(t, db, data)
	u, _ := url.Parse(db)
	name := strings.TrimPrefix(u.Path, "/")
	r := ops.TestRunner(t, "", fmt.Sprintf(`  users-db:
    kind: postgres
    url: %q
    databases: [%s]
    backups: [{method: logical, schedule: "*/15 * * * *"}]
checks:
  users-count: {type: postgres, store: users-db, database: %s, query: "SELECT count(*) FROM users", condition: "value == 1000"}
%s`, testenv.PostgresURL(t), name, name, extra))
	return &fixture{db: db, name: name, ops: r, drills: &drill.Runner{Ops: r},
		repoDir: strings.TrimPrefix(r.Plan.Repositories["primary"].URL, "file://")}
}

func (f *fixture) backup(t *testing.T) *repo.Manifest {
	t.Helper()
	m, err := f.ops.Backup(context.Background(), "users-db", "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scratchLeft lists scratch databases of the drill that still exist.
func scratchLeft(t *testing.T, drillID string) int64 {
	t.Helper()
	prefix := strings.ToLower(strings.ReplaceAll(drill.ScratchPrefix+drillID, "-", "_"))
	return query(t, testenv.PostgresURL(t), fmt.Sprintf("SELECT count(*) FROM pg_database WHERE datname LIKE '%s%%'", prefix))
}

func TestRestoreDrill(t *testing.T) {
	f := setup(t, "")
	m := f.backup(t)
	// After the backup the live data changes: the store check passes only
	// if it really runs against the restored copy.
	sql(t, f.db, "DELETE FROM users WHERE id > 10")
	ctx := context.Background()
	var steps []string
	f.drills.Progress = func(s string) { steps = append(steps, s) }
	rep, err := f.drills.Restore(ctx, drill.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Stores) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	s := rep.Stores[0]
	if s.BackupID != m.ID || !s.Integrity.OK || len(s.Integrity.Items) != 2 || !s.Cleanup.OK || len(s.Cleanup.Removed) != 1 {
		t.Fatalf("store: %+v", s)
	}
	if !strings.Contains(s.Integrity.Summary, "2 tables, 4000 rows") {
		t.Fatalf("integrity summary %q", s.Integrity.Summary)
	}
	if len(s.Checks) != 1 || !s.Checks[0].OK || !strings.Contains(s.Checks[0].Message, "value=1000") {
		t.Fatalf("checks: %+v", s.Checks)
	}
	if s.RTOSeconds <= 0 || s.RTOSeconds != s.RestoreSeconds+s.ValidateSeconds {
		t.Fatalf("rto %v = restore %v + validate %v?", s.RTOSeconds, s.RestoreSeconds, s.ValidateSeconds)
	}
	if want := rep.Started.Sub(m.ConsistentAt).Seconds(); math.Abs(s.RPOSeconds-want) > 1e-6 || s.RPOSeconds <= 0 {
		t.Fatalf("rpo %v, want %v", s.RPOSeconds, want)
	}
	if n := scratchLeft(t, rep.ID); n != 0 {
		t.Fatalf("%d scratch databases left", n)
	}
	// The drill's canary was written into the live database after the
	// backup: it is reported as lost, and not expected.
	if len(s.Canaries) != 1 || s.Canaries[0].Survived || s.Canaries[0].Expected || s.Canaries[0].ID != rep.ID {
		t.Fatalf("canaries: %+v", s.Canaries)
	}
	if query(t, f.db, "SELECT count(*) FROM linkdr_canary") != 1 {
		t.Fatal("no canary in the live database")
	}
	// The report is in the repository.
	rp, err := repo.Open(ctx, f.ops.Plan.Repositories["primary"].URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	saved, err := drillreport.Load(ctx, rp.Bucket(), "")
	if err != nil || saved.ID != rep.ID || !saved.OK {
		t.Fatalf("saved report: %+v, %v", saved, err)
	}
	if _, err := os.Stat(filepath.Join(f.repoDir, "drills", rep.ID+".json")); err != nil {
		t.Fatal(err)
	}
	if len(steps) < 4 {
		t.Fatalf("progress: %q", steps)
	}
}

// TestStaleScratch: a drill killed outright left its scratch database;
// the next drill on the server removes it.
func TestStaleScratch(t *testing.T) {
	f := setup(t, "")
	f.backup(t)
	stale := drill.ScratchPrefix + "20200101t000000z_dead_" + f.name
	sql(t, testenv.PostgresURL(t), "CREATE DATABASE "+stale)
	t.Cleanup(func() { sql(t, testenv.PostgresURL(t), "DROP DATABASE IF EXISTS "+stale) })
	rep, err := f.drills.Restore(context.Background(), drill.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(rep.Stores[0].Cleanup.Removed, ","), stale) {
		t.Fatalf("removed %v, want %s among them", rep.Stores[0].Cleanup.Removed, stale)
	}
	if query(t, testenv.PostgresURL(t), "SELECT count(*) FROM pg_database WHERE datname = '"+stale+"'") != 0 {
		t.Fatal("stale scratch database still there")
	}
}

func TestCorruptedBackup(t *testing.T) {
	f := setup(t, "")
	m := f.backup(t)
	obj := filepath.Join(f.repoDir, "backups", "users-db", m.ID, f.name+".dump"+repo.ArtifactSuffix)
	flipMiddleByte(t, obj)
	rep, err := f.drills.Restore(context.Background(), drill.RestoreOptions{})
	if !errors.Is(err, drill.ErrFailed) || rep == nil || rep.OK {
		t.Fatalf("got %v, %+v", err, rep)
	}
	s := rep.Stores[0]
	if s.Phase != "restore" || !strings.Contains(s.Error, "integrity check failed") {
		t.Fatalf("phase %q error %q", s.Phase, s.Error)
	}
	// The scratch database was created before the damage showed: it is
	// gone (dropped by the failed restore itself, or else by the cleanup).
	if !s.Cleanup.OK || scratchLeft(t, rep.ID) != 0 {
		t.Fatalf("cleanup %+v, left %d", s.Cleanup, scratchLeft(t, rep.ID))
	}
}

func TestTruncatedBeforeBackup(t *testing.T) {
	f := setup(t, "")
	prev := f.backup(t)
	sql(t, f.db, "TRUNCATE users")
	cur := f.backup(t)
	rep, err := f.drills.Restore(context.Background(), drill.RestoreOptions{})
	if !errors.Is(err, drill.ErrFailed) {
		t.Fatalf("got %v", err)
	}
	s := rep.Stores[0]
	// The restore itself is faithful: the backup holds an empty table.
	if !s.Integrity.OK {
		t.Fatalf("integrity: %+v", s.Integrity)
	}
	want := fmt.Sprintf("%s.public.users: 0 rows in backup %s, 1000 in the previous backup %s: shrank 100%%, more than max_table_shrink 50%%", f.name, cur.ID, prev.ID)
	if s.Phase != "history" || !strings.Contains(s.Error, want) {
		t.Fatalf("phase %q error:\n%s\nwant:\n%s", s.Phase, s.Error, want)
	}
	if !strings.Contains(err.Error(), want) || scratchLeft(t, rep.ID) != 0 {
		t.Fatalf("error %v", err)
	}
}

func TestStatsMismatch(t *testing.T) {
	f := setup(t, "")
	m := f.backup(t)
	// The manifest claims one more row than the dump holds.
	path := filepath.Join(f.repoDir, "backups", "users-db", m.ID, "manifest.json")
	raw, _ := os.ReadFile(path)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tb := range doc["stats"].(map[string]any)["databases"].([]any)[0].(map[string]any)["tables"].([]any) {
		if tb.(map[string]any)["name"] == "users" {
			tb.(map[string]any)["rows"] = 1001
		}
	}
	raw, _ = json.Marshal(doc)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := f.drills.Restore(context.Background(), drill.RestoreOptions{})
	if !errors.Is(err, drill.ErrFailed) {
		t.Fatalf("got %v", err)
	}
	s := rep.Stores[0]
	want := f.name + ".public.users: 1000 rows restored, the backup's manifest says 1001"
	if s.Phase != "integrity" || !strings.Contains(s.Error, want) || s.Integrity.OK {
		t.Fatalf("phase %q error %q", s.Phase, s.Error)
	}
	if !strings.Contains(s.Error, store.ErrMismatch.Error()) || scratchLeft(t, rep.ID) != 0 {
		t.Fatalf("error %q", s.Error)
	}
}

// TestCanaryRPO writes canaries at injected times around real backups.
func TestCanaryRPO(t *testing.T) {
	ctx := context.Background()
	t.Run("BackupAfterCanary", func(t *testing.T) {
		f := setup(t, "")
		canaryAt := time.Now().Add(-10 * time.Second).UTC().Truncate(time.Microsecond)
		f.drills.Now = func() time.Time { return canaryAt }
		if _, err := f.drills.WriteCanary(ctx, "users-db", "before-backup"); err != nil {
			t.Fatal(err)
		}
		m := f.backup(t)
		drillAt := m.ConsistentAt.Add(5 * time.Second)
		f.drills.Now = func() time.Time { return drillAt }
		rep, err := f.drills.Restore(ctx, drill.RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s := rep.Stores[0]
		if len(s.Canaries) != 2 || !s.Canaries[0].Survived || !s.Canaries[0].Expected || s.Canaries[1].Survived {
			t.Fatalf("canaries: %+v", s.Canaries)
		}
		if s.RPOSeconds != 5 {
			t.Fatalf("rpo %v, want 5", s.RPOSeconds)
		}
		// The newest surviving canary was written 10 s (plus however long
		// the backup took to start its snapshot) before the backup.
		gap := *s.CanaryRPOSeconds - s.RPOSeconds
		if want := m.ConsistentAt.Sub(canaryAt).Seconds(); s.CanaryRPOSeconds == nil || math.Abs(gap-want) > 1e-6 || gap < 10 {
			t.Fatalf("canary rpo %v − rpo %v = %v, want %v (≥ 10)", *s.CanaryRPOSeconds, s.RPOSeconds, gap, want)
		}
	})
	t.Run("BackupBeforeCanary", func(t *testing.T) {
		f := setup(t, "")
		m := f.backup(t)
		f.drills.Now = func() time.Time { return m.ConsistentAt.Add(10 * time.Second) }
		if _, err := f.drills.WriteCanary(ctx, "users-db", "after-backup"); err != nil {
			t.Fatal(err)
		}
		f.drills.Now = func() time.Time { return m.ConsistentAt.Add(20 * time.Second) }
		rep, err := f.drills.Restore(ctx, drill.RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s := rep.Stores[0]
		if len(s.Canaries) != 2 || s.Canaries[0].ID != "after-backup" || s.Canaries[0].Survived || s.Canaries[0].Expected {
			t.Fatalf("canaries: %+v", s.Canaries)
		}
		if s.RPOSeconds != 20 || s.CanaryRPOSeconds != nil {
			t.Fatalf("rpo %v canary rpo %v, want 20 and none", s.RPOSeconds, s.CanaryRPOSeconds)
		}
	})
	t.Run("CanaryLostFromBackup", func(t *testing.T) {
		// A canary written long before the backup must be in it: if the
		// backup lost it, the drill fails.
		f := setup(t, "")
		f.drills.Now = func() time.Time { return time.Now().Add(-time.Hour) }
		if _, err := f.drills.WriteCanary(ctx, "users-db", "old"); err != nil {
			t.Fatal(err)
		}
		sql(t, f.db, "CREATE TABLE hide AS SELECT * FROM linkdr_canary; DELETE FROM linkdr_canary")
		f.backup(t)
		sql(t, f.db, "INSERT INTO linkdr_canary SELECT * FROM hide")
		f.drills.Now = nil
		rep, err := f.drills.Restore(ctx, drill.RestoreOptions{})
		if !errors.Is(err, drill.ErrFailed) || rep.Stores[0].Phase != "canary" || !strings.Contains(rep.Stores[0].Error, "old (written") {
			t.Fatalf("got %v; %+v", err, rep.Stores[0])
		}
	})
}

func TestFailoverNeedsRunbookEngine(t *testing.T) {
	f := setup(t, "")
	_, err := f.drills.Failover(context.Background(), nil, "regional-failure")
	if !errors.Is(err, drill.ErrNoRunbookEngine) {
		t.Fatalf("got %v", err)
	}
}

// flipMiddleByte damages a stored object the way a bad disk would.
func flipMiddleByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
