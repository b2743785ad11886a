package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/redis"
	"github.com/linkapp/linkdr/internal/store/redis/redistest"
	"github.com/linkapp/linkdr/internal/testenv"
)

// bigSpec is the acceptance dataset: 100k+ keys of every type, small and
// large encodings, 40 % with expiries.
var bigSpec = redistest.Spec{
	Strings: 50000, Lists: 12000, Hashes: 12000, Sets: 12000, ZSets: 12000, Streams: 3000,
	TTLFraction: 0.4, MinTTL: 10 * time.Minute, MaxTTL: 2 * time.Hour, Big: true, Seed: 1,
}

// smallSpec goes into a second database.
var smallSpec = redistest.Spec{
	Prefix: "db3:", Strings: 300, Lists: 50, Hashes: 50, Sets: 50, ZSets: 50, Streams: 20,
	TTLFraction: 0.5, MinTTL: 10 * time.Minute, MaxTTL: time.Hour, Seed: 3,
}

func runner(t *testing.T, url string) *ops.Runner {
	t.Helper()
	return ops.TestRunner(t, "", fmt.Sprintf("  cache:\n    kind: redis\n    url: %q\n    backups: [{method: resp}, {method: rdb}]\n", url))
}

// Test clients wait long for replies: big pipelines on a machine shared
// with other builds can take seconds.
const slow = 2 * time.Minute

func client(addr string, db int) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: addr, DB: db, Protocol: 2, DisableIdentity: true, ReadTimeout: slow})
}

func clientWith(addr, user, password string) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: addr, Username: user, Password: password, Protocol: 2, DisableIdentity: true, ReadTimeout: slow})
}

func clusterClient(addrs []string) *goredis.ClusterClient {
	return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, Protocol: 2, DisableIdentity: true, ReadTimeout: slow})
}

// digest is DEBUG DIGEST of a server started with --enable-debug-command yes.
func digest(t *testing.T, addr string) string {
	t.Helper()
	d, err := client(addr, 0).Do(context.Background(), "DEBUG", "DIGEST").Text()
	if err != nil {
		t.Fatalf("DEBUG DIGEST on %s: %v", addr, err)
	}
	return d
}

func fill(t *testing.T, c goredis.Cmdable, spec redistest.Spec) map[string]int64 {
	t.Helper()
	counts, err := redistest.Fill(context.Background(), c, spec)
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// snapshot reads database db of a standalone server or of a cluster (any node).
func snapshot(t *testing.T, addr string, db int) map[string]redistest.Key {
	t.Helper()
	return snapshotDB(t, addr, "", db)
}

func snapshotWith(t *testing.T, addr, password string) map[string]redistest.Key {
	t.Helper()
	return snapshotDB(t, addr, password, 0)
}

func snapshotDB(t *testing.T, addr, password string, db int) map[string]redistest.Key {
	t.Helper()
	ctx := context.Background()
	opt := goredis.Options{Password: password, Protocol: 2, DisableIdentity: true, ReadTimeout: slow}
	o := opt
	o.Addr = addr
	masters, err := redistest.Masters(ctx, &o)
	if err != nil {
		t.Fatal(err)
	}
	s, err := redistest.Snapshot(ctx, opt, masters, db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func same(t *testing.T, what string, want, got map[string]redistest.Key) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: nothing to compare", what)
	}
	if d := redistest.Diff(want, got, time.Second); len(d) > 0 {
		t.Fatalf("%s: %d keys compared, differences:\n%s", what, len(want), strings.Join(d, "\n"))
	}
}

func decode(t *testing.T, m *repo.Manifest) (redis.Source, redis.Stats) {
	t.Helper()
	var src redis.Source
	var st redis.Stats
	if err := json.Unmarshal(m.Source, &src); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(m.Stats, &st); err != nil {
		t.Fatal(err)
	}
	return src, st
}

func verifyBackup(t *testing.T, r *ops.Runner, m *repo.Manifest) {
	t.Helper()
	rp, err := r.OpenRepo(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	if _, err := r.Verify(context.Background(), rp, m); err != nil {
		t.Fatalf("verify %s: %v", m.ID, err)
	}
}

func restore(t *testing.T, r *ops.Runner, m *repo.Manifest, opts ops.RestoreOptions) *store.RestoreResult {
	t.Helper()
	opts.Backup = m.ID
	_, res, err := r.Restore(context.Background(), "cache", opts)
	if err != nil {
		t.Fatalf("restore %s into %s: %v", m.ID, opts.Target, err)
	}
	for _, it := range res.Items {
		if opts.Verify && !it.Verified {
			t.Fatalf("restore %s: %s not verified", m.ID, it.Name)
		}
		t.Logf("restored %s into %s in %v: %s", it.Name, it.Target, it.Duration.Round(time.Millisecond), it.Checked)
	}
	return res
}

// TestRESPStandalone: two databases of a standalone server → resp backup
// → a fresh standalone server and a cluster.
func TestRESPStandalone(t *testing.T) {
	ctx := context.Background()
	src := testenv.NewRedis(t, "--enable-debug-command", "yes")
	counts := fill(t, client(src, 0), bigSpec)
	fill(t, client(src, 3), smallSpec)
	want0, want3 := snapshot(t, src, 0), snapshot(t, src, 3)
	// DEBUG DIGEST hashes every key, value and absolute expiry of every
	// database: a second proof, independent of how values are read.
	want := digest(t, src)

	r := runner(t, "redis://"+src)
	m, err := r.Backup(ctx, "cache", "resp")
	if err != nil {
		t.Fatal(err)
	}
	source, st := decode(t, m)
	if st.Keys != int64(bigSpec.Total()+smallSpec.Total()) || len(st.Databases) != 2 || st.Databases[1].DB != 3 {
		t.Fatalf("stats: %d keys in %d databases, want %d in [0 3]", st.Keys, len(st.Databases), bigSpec.Total()+smallSpec.Total())
	}
	if !maps.Equal(st.Databases[0].ByType, counts) {
		t.Fatalf("db0 by type %v, want %v", st.Databases[0].ByType, counts)
	}
	if source.Mode != "standalone" || source.RDBVersion != 10 || len(source.Nodes) != 1 {
		t.Fatalf("source: %+v", source)
	}
	if st.Databases[0].WithTTL < int64(bigSpec.Total())/3 {
		t.Fatalf("only %d keys with TTL", st.Databases[0].WithTTL)
	}
	verifyBackup(t, r, m)

	t.Run("IntoStandalone", func(t *testing.T) {
		dst := testenv.NewRedis(t, "--enable-debug-command", "yes")
		res := restore(t, r, m, ops.RestoreOptions{Target: "redis://" + dst, Verify: true, Jobs: 2})
		if len(res.Items) != 2 {
			t.Fatalf("%d items restored, want 2", len(res.Items))
		}
		same(t, "db0", want0, snapshot(t, dst, 0))
		same(t, "db3", want3, snapshot(t, dst, 3))
		if got := digest(t, dst); got != want {
			t.Fatalf("DEBUG DIGEST of the target %v, of the source %v", got, want)
		}

		t.Run("ErrTargetNotEmpty", func(t *testing.T) {
			_, _, err := r.Restore(ctx, "cache", ops.RestoreOptions{Backup: m.ID, Target: "redis://" + dst, Verify: true})
			if !errors.Is(err, store.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "--force") {
				t.Fatalf("err = %v, want ErrTargetNotEmpty with a hint", err)
			}
		})
		t.Run("Force", func(t *testing.T) {
			c := client(dst, 0)
			c.Set(ctx, "s:1", "changed", 0)
			c.Del(ctx, "h:2")
			restore(t, r, m, ops.RestoreOptions{Target: "redis://" + dst, Verify: true, Force: true})
			same(t, "db0 after --force", want0, snapshot(t, dst, 0))
			if got := digest(t, dst); got != want {
				t.Fatalf("after --force: DEBUG DIGEST of the target %v, of the source %v", got, want)
			}
		})
	})

	t.Run("IntoCluster", func(t *testing.T) {
		nodes := testenv.NewRedisCluster(t, 3, 0)
		_, _, err := r.Restore(ctx, "cache", ops.RestoreOptions{Backup: m.ID, Target: "redis://" + nodes[0], Verify: true})
		if err == nil || !strings.Contains(err.Error(), "pick one with --select") {
			t.Fatalf("two databases into a cluster: err = %v", err)
		}
		restore(t, r, m, ops.RestoreOptions{Target: "redis://" + nodes[1], Select: []string{"0"}, Verify: true, Jobs: 3})
		same(t, "db0 in the cluster", want0, snapshot(t, nodes[0], 0))
	})

	t.Run("IntoNamedDatabase", func(t *testing.T) {
		dst := testenv.NewRedis(t)
		restore(t, r, m, ops.RestoreOptions{Target: "redis://" + dst + "/7", Select: []string{"3"}, Verify: true})
		same(t, "db3 as db7", want3, snapshot(t, dst, 7))
		if n := client(dst, 3).DBSize(ctx).Val(); n != 0 {
			t.Fatalf("db3 of the target has %d keys, want 0", n)
		}
	})
}

// TestRESPCluster: a 3+3 cluster → resp backup → a standalone server and
// a cluster of another shape (4 masters, no replicas).
func TestRESPCluster(t *testing.T) {
	ctx := context.Background()
	nodes := testenv.NewRedisCluster(t, 3, 1)
	counts := fill(t, clusterClient(nodes), bigSpec)
	want := snapshot(t, nodes[0], 0)
	if len(want) != bigSpec.Total() {
		t.Fatalf("cluster holds %d keys, want %d", len(want), bigSpec.Total())
	}

	r := runner(t, "redis://"+nodes[2]) // any node: the masters are found from it
	m, err := r.Backup(ctx, "cache", "resp")
	if err != nil {
		t.Fatal(err)
	}
	source, st := decode(t, m)
	if source.Mode != "cluster" || len(source.Nodes) != 3 || st.Keys != int64(bigSpec.Total()) || !maps.Equal(st.ByType, counts) {
		t.Fatalf("source %+v, stats %+v", source, st)
	}
	for _, n := range source.Nodes {
		if n.ID == "" || n.Slots == "" || n.Role != "master" {
			t.Fatalf("node %+v", n)
		}
	}
	verifyBackup(t, r, m)

	t.Run("IntoStandalone", func(t *testing.T) {
		dst := testenv.NewRedis(t)
		restore(t, r, m, ops.RestoreOptions{Target: "redis://" + dst, Verify: true, Jobs: 2})
		same(t, "standalone", want, snapshot(t, dst, 0))
	})
	t.Run("IntoOtherShape", func(t *testing.T) {
		dst := testenv.NewRedisCluster(t, 4, 0)
		restore(t, r, m, ops.RestoreOptions{Target: "redis://" + dst[0] + "," + dst[3], Verify: true, Jobs: 2})
		same(t, "4-master cluster", want, snapshot(t, dst[1], 0))
	})
}

// TestExpiredSkipped: keys whose expiry passes between backup and
// restore are skipped and counted.
func TestExpiredSkipped(t *testing.T) {
	ctx := context.Background()
	src := testenv.NewRedis(t)
	c := client(src, 0)
	for i := range 300 {
		c.Set(ctx, fmt.Sprintf("keep:%d", i), i, 0)
	}
	for i := range 100 {
		c.Set(ctx, fmt.Sprintf("short:%d", i), i, 3*time.Second)
	}
	r := runner(t, "redis://"+src)
	m, err := r.Backup(ctx, "cache", "resp")
	if err != nil {
		t.Fatal(err)
	}
	if _, st := decode(t, m); st.Keys != 400 || st.Databases[0].WithTTL != 100 {
		t.Fatalf("backup holds %d keys, %d with TTL; want 400, 100 (was it slower than 3 s?)", st.Keys, st.Databases[0].WithTTL)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		if n := c.Exists(ctx, "short:0", "short:99").Val(); n > 0 {
			return fmt.Errorf("%d short-lived keys still exist on the source", n)
		}
		return nil
	})
	dst := testenv.NewRedis(t)
	res := restore(t, r, m, ops.RestoreOptions{Target: "redis://" + dst, Verify: true})
	if !strings.Contains(res.Items[0].Checked, "100 keys already expired, skipped") {
		t.Fatalf("checked: %q", res.Items[0].Checked)
	}
	if n := client(dst, 0).DBSize(ctx).Val(); n != 300 {
		t.Fatalf("target holds %d keys, want 300", n)
	}
}

// TestRDB: snapshots over the replication protocol, diskless ($EOF:) and
// from disk ($<len>), load in a fresh redis-server; a cluster's one per
// master.
func TestRDB(t *testing.T) {
	ctx := context.Background()
	src := testenv.NewRedis(t)
	fill(t, client(src, 0), redistest.Spec{Strings: 20000, Lists: 3000, Hashes: 3000, Sets: 3000, ZSets: 3000, Streams: 500,
		TTLFraction: 0.3, MinTTL: 10 * time.Minute, MaxTTL: time.Hour, Big: true, Seed: 7})
	fill(t, client(src, 5), smallSpec)
	want0, want5 := snapshot(t, src, 0), snapshot(t, src, 5)
	r := runner(t, "redis://"+src)

	for _, framing := range []string{"eof", "length"} {
		t.Run(framing, func(t *testing.T) {
			if framing == "length" {
				// From disk, and slowly (25k keys × 100 µs): the master sends
				// "\n" keep-alives while it saves.
				c := client(src, 0)
				if err := c.ConfigSet(ctx, "repl-diskless-sync", "no").Err(); err != nil {
					t.Fatal(err)
				}
				if err := c.ConfigSet(ctx, "rdb-key-save-delay", "100").Err(); err != nil {
					t.Fatal(err)
				}
				defer c.ConfigSet(ctx, "rdb-key-save-delay", "0")
			}
			m, err := r.Backup(ctx, "cache", "rdb")
			if err != nil {
				t.Fatal(err)
			}
			source, st := decode(t, m)
			if got := source.Nodes[0].Framing; got != framing {
				t.Fatalf("framing %q, want %q", got, framing)
			}
			if source.RDBVersion != 10 || st.Keys != int64(len(want0)+len(want5)) || m.ConsistentAt.After(m.Finished) || m.ConsistentAt.Before(m.Started.Add(-time.Second)) {
				t.Fatalf("manifest: source %+v stats %+v consistent_at %v", source, st, m.ConsistentAt)
			}
			verifyBackup(t, r, m)
			dir := t.TempDir()
			res := restore(t, r, m, ops.RestoreOptions{Target: dir, Verify: true})
			if res.Items[0].Target != filepath.Join(dir, "dump.rdb") {
				t.Fatalf("wrote %s", res.Items[0].Target)
			}
			_, _, err = r.Restore(ctx, "cache", ops.RestoreOptions{Backup: m.ID, Target: dir})
			if !errors.Is(err, store.ErrTargetNotEmpty) {
				t.Fatalf("second restore into %s: err = %v, want ErrTargetNotEmpty", dir, err)
			}
			loaded := testenv.NewRedis(t, "--dir", dir)
			same(t, "db0 loaded from dump.rdb", want0, snapshot(t, loaded, 0))
			same(t, "db5 loaded from dump.rdb", want5, snapshot(t, loaded, 5))
		})
	}

	t.Run("Cluster", func(t *testing.T) {
		nodes := testenv.NewRedisCluster(t, 3, 0)
		fill(t, clusterClient(nodes), redistest.Spec{Strings: 9000, Lists: 1000, Hashes: 1000, Sets: 1000, ZSets: 1000, Streams: 200,
			TTLFraction: 0.3, MinTTL: 10 * time.Minute, MaxTTL: time.Hour, Seed: 9})
		want := snapshot(t, nodes[0], 0)
		rc := runner(t, "redis://"+nodes[0])
		m, err := rc.Backup(ctx, "cache", "rdb")
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Artifacts) != 3 {
			t.Fatalf("%d artifacts, want one per master", len(m.Artifacts))
		}
		verifyBackup(t, rc, m)
		dir := t.TempDir()
		_, res, err := rc.Restore(ctx, "cache", ops.RestoreOptions{Backup: m.ID, Target: dir, Verify: true})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]redistest.Key{}
		for _, it := range res.Items {
			loaded := testenv.NewRedis(t, "--dir", filepath.Dir(it.Target))
			maps.Copy(got, snapshot(t, loaded, 0))
		}
		same(t, "masters' snapshots loaded", want, got)
	})
}

// TestRDBRefusesDirectoryTarget: rdb restores are files, never servers.
func TestRestoreErrors(t *testing.T) {
	ctx := context.Background()
	src := testenv.NewRedis(t)
	client(src, 0).Set(ctx, "k", "v", 0)
	r := runner(t, "redis://"+src)
	rdbBackup, err := r.Backup(ctx, "cache", "rdb")
	if err != nil {
		t.Fatal(err)
	}
	respBackup, err := r.Backup(ctx, "cache", "resp")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		m    *repo.Manifest
		opts ops.RestoreOptions
		want string
	}{
		{"RDBWithoutTarget", rdbBackup, ops.RestoreOptions{}, "pass --target /var/lib/redis"},
		{"RDBIntoServer", rdbBackup, ops.RestoreOptions{Target: "redis://" + src}, "restores into a directory, not a server"},
		{"RESPIntoReplica", respBackup, ops.RestoreOptions{Target: "redis://" + replicaOf(t, src)}, "is a replica"},
		{"RESPUnknownDatabase", respBackup, ops.RestoreOptions{Target: "redis://" + src, Select: []string{"4"}}, `has no database "4" (it has [0])`},
		{"RESPUnreachable", respBackup, ops.RestoreOptions{Target: fmt.Sprintf("redis://127.0.0.1:%d", testenv.FreePort(t))}, "connection refused"},
		{"RESPBadURL", respBackup, ops.RestoreOptions{Target: "redis://h:1?timeout=3"}, `unknown parameter "timeout"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Backup = c.m.ID
			_, _, err := r.Restore(ctx, "cache", c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func replicaOf(t *testing.T, master string) string {
	host, port, _ := strings.Cut(master, ":")
	r := testenv.NewRedis(t, "--replicaof", host, port)
	testenv.WaitFor(t, 20*time.Second, func() error {
		info := client(r, 0).Info(context.Background(), "replication").Val()
		if !strings.Contains(info, "master_link_status:up") {
			return errors.New("replica not in sync yet")
		}
		return nil
	})
	return r
}
