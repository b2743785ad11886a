package drill_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/drill"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/redis/redistest"
	"github.com/linkapp/linkdr/internal/testenv"
)

type redisFixture struct {
	addr    string
	ops     *ops.Runner
	drills  *drill.Runner
	repoDir string
}

func redisDB(t *testing.T, addr string, db int) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, DB: db, Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

func dbsize(t *testing.T, addr string, db int) int64 {
	t.Helper()
	n, err := redisDB(t, addr, db).DBSize(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// scratchKeys counts keys in every database of the server but the
// live one: what a drill could have left behind.
func scratchKeys(t *testing.T, addr string) int64 {
	t.Helper()
	var n int64
	for db := 1; db < 16; db++ {
		n += dbsize(t, addr, db)
	}
	return n
}

// setupRedis fills database 0 of a server of the test's own with 1000
// keys of every type (a tenth with an expiry an hour away) and protects
// it with a plan whose store check passes only on exactly those keys.
func setupRedis(t *testing.T, args ...string) *redisFixture {
	t.Helper()
	addr := testenv.NewRedis(t, args...)
	spec := redistest.Spec{Strings: 600, Lists: 100, Hashes: 100, Sets: 100, ZSets: 80, Streams: 20,
		TTLFraction: 0.1, MinTTL: time.Hour, MaxTTL: 2 * time.Hour, Seed: 7}
	if _, err := redistest.Fill(context.Background(), redisDB(t, addr, 0), spec); err != nil {
		t.Fatal(err)
	}
	r := ops.TestRunner(t, "", fmt.Sprintf(`  sessions:
    kind: redis
    url: redis://%s
    backups: [{method: resp}]
checks:
  sessions-keys: {type: redis, store: sessions, condition: "keys == 1000"}
`, addr))
	return &redisFixture{addr: addr, ops: r, drills: &drill.Runner{Ops: r},
		repoDir: strings.TrimPrefix(r.Plan.Repositories["primary"].URL, "file://")}
}

func (f *redisFixture) backup(t *testing.T) *repo.Manifest {
	t.Helper()
	m, err := f.ops.Backup(context.Background(), "sessions", "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRedisDrill drills a standalone store into a spare database of its
// own server: counted against the manifest, checked, emptied; the live
// database only gains the canary. A store that lost most keys before
// the next backup fails that drill's history.
func TestRedisDrill(t *testing.T) {
	f := setupRedis(t)
	m := f.backup(t)
	ctx := context.Background()
	rep, err := f.drills.Restore(ctx, drill.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Stores[0]
	if !s.OK || s.BackupID != m.ID || !s.Integrity.OK || len(s.Integrity.Items) != 1 || s.Integrity.Items[0].Rows != 1000 || s.Integrity.Items[0].ExpectedRows != 1000 {
		t.Fatalf("store: %+v", s)
	}
	if !strings.Contains(s.Integrity.Summary, "db0: 1000 keys (hash 100, list 100, set 100, stream 20, string 600, zset 80): counts match") {
		t.Fatalf("integrity summary %q", s.Integrity.Summary)
	}
	if want := fmt.Sprintf("redis://%s database 15", f.addr); s.Scratch != want {
		t.Fatalf("scratch %q, want %q", s.Scratch, want)
	}
	// The check counted the copy's keys: live database 0 has the canary too.
	if len(s.Checks) != 1 || !s.Checks[0].OK || !strings.Contains(s.Checks[0].Message, "keys=1000") {
		t.Fatalf("checks: %+v", s.Checks)
	}
	if want := fmt.Sprintf("1000 keys in database 15 of redis://%s", f.addr); !s.Cleanup.OK || len(s.Cleanup.Removed) != 1 || s.Cleanup.Removed[0] != want {
		t.Fatalf("cleanup %+v, want %q", s.Cleanup, want)
	}
	if n := scratchKeys(t, f.addr); n != 0 {
		t.Fatalf("%d scratch keys left", n)
	}
	if n := dbsize(t, f.addr, 0); n != 1001 {
		t.Fatalf("live database holds %d keys, want 1000 and the canary", n)
	}
	if len(s.Canaries) != 1 || s.Canaries[0].ID != rep.ID || s.Canaries[0].Survived || s.Canaries[0].Expected || s.Canaries[0].Database != "0" {
		t.Fatalf("canaries: %+v", s.Canaries)
	}

	// The next backup holds the first drill's canary; then 900 keys go.
	f.backup(t)
	rep2, err := f.drills.Restore(ctx, drill.RestoreOptions{})
	if err == nil || rep2.Stores[0].Phase != "checks" {
		// 1001 keys in the copy now: the check's condition says 1000.
		t.Fatalf("got %v, %+v", err, rep2.Stores[0])
	}
	if c := rep2.Stores[0].Canaries; len(c) != 2 || !c[0].Survived || c[0].ID != rep.ID || c[1].Survived {
		t.Fatalf("canaries: %+v", c)
	}
	keys, err := redisDB(t, f.addr, 0).Keys(ctx, "*").Result()
	if err != nil || len(keys) != 1001 {
		t.Fatalf("keys %d, %v", len(keys), err)
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return k == drill.RedisCanaryKey })
	if err := redisDB(t, f.addr, 0).Del(ctx, keys[:900]...).Err(); err != nil {
		t.Fatal(err)
	}
	cur := f.backup(t)
	rep3, err := f.drills.Restore(ctx, drill.RestoreOptions{})
	if !errors.Is(err, drill.ErrFailed) {
		t.Fatalf("got %v", err)
	}
	s = rep3.Stores[0]
	want := fmt.Sprintf("db0: 101 keys in backup %s, 1001 in the previous backup", cur.ID)
	if s.Phase != "history" || !strings.Contains(s.Error, want) || !s.Cleanup.OK || scratchKeys(t, f.addr) != 0 {
		t.Fatalf("phase %q error %q, want %q; cleanup %+v", s.Phase, s.Error, want, s.Cleanup)
	}
}

func TestRedisDrillStatsMismatch(t *testing.T) {
	f := setupRedis(t)
	m := f.backup(t)
	// The manifest claims one more key than the artifact holds.
	path := filepath.Join(f.repoDir, "backups", "sessions", m.ID, "manifest.json")
	raw, _ := os.ReadFile(path)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["stats"].(map[string]any)["databases"].([]any)[0].(map[string]any)["keys"] = 1001
	raw, _ = json.Marshal(doc)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := f.drills.Restore(context.Background(), drill.RestoreOptions{})
	if !errors.Is(err, drill.ErrFailed) {
		t.Fatalf("got %v", err)
	}
	s := rep.Stores[0]
	want := "database 0: the artifact holds 1000 keys (hash 100, list 100, set 100, stream 20, string 600, zset 80), the backup's manifest counted 1001"
	if s.Phase != "integrity" || !strings.Contains(s.Error, want) || !strings.Contains(s.Error, store.ErrMismatch.Error()) {
		t.Fatalf("phase %q error %q, want %q", s.Phase, s.Error, want)
	}
	// The keys were all restored before the count was found wrong.
	if !s.Cleanup.OK || len(s.Cleanup.Removed) != 1 || !strings.HasPrefix(s.Cleanup.Removed[0], "1000 keys in database 15") || scratchKeys(t, f.addr) != 0 {
		t.Fatalf("cleanup %+v, %d keys left", s.Cleanup, scratchKeys(t, f.addr))
	}
	if dbsize(t, f.addr, 0) != 1001 {
		t.Fatal("live database changed")
	}
}

func TestRedisDrillCorrupted(t *testing.T) {
	f := setupRedis(t)
	m := f.backup(t)
	obj := filepath.Join(f.repoDir, "backups", "sessions", m.ID, "db0.resp"+repo.ArtifactSuffix)
	flipMiddleByte(t, obj)
	rep, err := f.drills.Restore(context.Background(), drill.RestoreOptions{})
	if !errors.Is(err, drill.ErrFailed) || rep == nil || rep.OK {
		t.Fatalf("got %v, %+v", err, rep)
	}
	s := rep.Stores[0]
	if s.Phase != "restore" || !strings.Contains(s.Error, "integrity check failed") {
		t.Fatalf("phase %q error %q", s.Phase, s.Error)
	}
	if !s.Cleanup.OK || scratchKeys(t, f.addr) != 0 || dbsize(t, f.addr, 0) != 1001 {
		t.Fatalf("cleanup %+v, %d scratch keys left, live %d", s.Cleanup, scratchKeys(t, f.addr), dbsize(t, f.addr, 0))
	}
}

// TestRedisDrillCluster: a cluster has only database 0, so its drill
// needs a scratch server; given one, the copy is proven there and emptied.
func TestRedisDrillCluster(t *testing.T) {
	nodes := testenv.NewRedisCluster(t, 3, 0)
	ctx := context.Background()
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: nodes, Protocol: 2})
	defer cc.Close()
	if _, err := redistest.Fill(ctx, cc, redistest.Spec{Strings: 400, Hashes: 100, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	scratch := testenv.NewRedis(t)
	r := ops.TestRunner(t, "", fmt.Sprintf(`  sessions:
    kind: redis
    url: redis://%s?cluster=true
    backups: [{method: resp}]
drills:
  backup-restore: {kind: restore}
  with-scratch: {kind: restore, scratch: {sessions: "redis://%s"}}
`, nodes[0], scratch))
	if _, err := r.Backup(ctx, "sessions", ""); err != nil {
		t.Fatal(err)
	}
	dr := &drill.Runner{Ops: r}
	rep, err := dr.Restore(ctx, drill.RestoreOptions{Drill: r.Plan.Drills["backup-restore"]})
	if !errors.Is(err, drill.ErrFailed) {
		t.Fatalf("got %v", err)
	}
	if s := rep.Stores[0]; s.Phase != "scratch" || !strings.Contains(s.Error, "set drills.backup-restore.scratch.sessions to a spare Redis server") {
		t.Fatalf("phase %q error %q", s.Phase, s.Error)
	}
	rep, err = dr.Restore(ctx, drill.RestoreOptions{Drill: r.Plan.Drills["with-scratch"]})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Stores[0]
	if !s.OK || s.Integrity.Items[0].Rows != 500 || s.Scratch != fmt.Sprintf("redis://%s database 15", scratch) || !s.Cleanup.OK {
		t.Fatalf("store: %+v", s)
	}
	var scratchLeft int64
	for db := range 16 {
		scratchLeft += dbsize(t, scratch, db)
	}
	if n, err := cc.DBSize(ctx).Result(); err != nil || n != 501 || scratchLeft != 0 {
		t.Fatalf("scratch left %d keys; live %d, %v", scratchLeft, n, err)
	}
	// Both drills wrote their canary into the live cluster.
	if n, err := cc.ZCard(ctx, drill.RedisCanaryKey).Result(); err != nil || n != 2 {
		t.Fatalf("canaries in the live cluster: %d, %v", n, err)
	}
}

// TestRedisDrillTakesResp: a store backed up by resp and rdb is drilled
// from its newest resp backup, although an rdb snapshot is newer (only a
// cold start loads those).
func TestRedisDrillTakesResp(t *testing.T) {
	addr := testenv.NewRedis(t, "--repl-diskless-sync-delay", "0")
	ctx := context.Background()
	if _, err := redistest.Fill(ctx, redisDB(t, addr, 0), redistest.Spec{Strings: 200, Hashes: 20, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	r := ops.TestRunner(t, "", fmt.Sprintf(`  sessions:
    kind: redis
    url: redis://%s
    backups: [{method: rdb}, {method: resp}]
`, addr))
	resp, err := r.Backup(ctx, "sessions", "resp")
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := r.Backup(ctx, "sessions", "rdb")
	if err != nil {
		t.Fatal(err)
	}
	if rp, latest, err := r.ResolveBackup(ctx, "sessions", ops.RestoreOptions{}); err != nil || latest.ID != rdb.ID {
		t.Fatalf("the rdb backup must be the newest: %v", err)
	} else {
		rp.Close()
	}
	rep, err := (&drill.Runner{Ops: r}).Restore(ctx, drill.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Stores[0]; !s.OK || s.BackupID != resp.ID || s.BackupMethod != "resp" || s.Integrity.Items[0].Rows != 220 {
		t.Fatalf("drilled %s (%s), want resp backup %s: %+v", s.BackupID, s.BackupMethod, resp.ID, s)
	}
}
