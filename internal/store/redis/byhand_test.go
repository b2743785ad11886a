package redis_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/store/redis/redistest"
	"github.com/linkapp/linkdr/internal/testenv"
)

// TestByHand follows docs/format.md's by-hand restores with only age,
// zstd and redis-cli: a resp artifact piped into `redis-cli --pipe`, into
// a cluster through `redis-cli --cluster import`, and an rdb artifact
// loaded as dump.rdb.
func TestByHand(t *testing.T) {
	ctx := context.Background()
	src := testenv.NewRedis(t)
	fill(t, client(src, 0), redistest.Spec{Strings: 15000, Lists: 3000, Hashes: 3000, Sets: 3000, ZSets: 3000, Streams: 500,
		TTLFraction: 0.4, MinTTL: 10 * time.Minute, MaxTTL: time.Hour, Big: true, Seed: 11})
	fill(t, client(src, 3), smallSpec)
	want0, want3 := snapshot(t, src, 0), snapshot(t, src, 3)
	r := runner(t, "redis://"+src)
	respBackup, err := r.Backup(ctx, "cache", "resp")
	if err != nil {
		t.Fatal(err)
	}
	rdbBackup, err := r.Backup(ctx, "cache", "rdb")
	if err != nil {
		t.Fatal(err)
	}
	repoDir := strings.TrimPrefix(r.Plan.Repositories["primary"].URL, "file://")
	key := r.Plan.Resolve(r.Plan.Encryption.IdentityFile)
	env := []string{
		"AGE=" + testenv.Bin(t, "age"), "ZSTD=" + testenv.Bin(t, "zstd"), "REDIS_CLI=" + testenv.Bin(t, "redis-cli"),
		"KEY=" + key, "PATH=" + os.Getenv("PATH"),
	}
	sh := func(script string, vars ...string) string {
		t.Helper()
		cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+script)
		cmd.Env = append(append([]string(nil), env...), vars...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	artifact := func(id, name string) string {
		return filepath.Join(repoDir, "backups", "cache", id, name+".zst.age")
	}

	dst := testenv.NewRedis(t)
	host, port, _ := strings.Cut(dst, ":")
	for _, a := range respBackup.Artifacts {
		out := sh(`"$AGE" -d -i "$KEY" "$F" | "$ZSTD" -d | "$REDIS_CLI" -h "$H" -p "$P" --pipe`,
			"F="+artifact(respBackup.ID, a.Name), "H="+host, "P="+port)
		if !strings.Contains(out, "errors: 0,") {
			t.Fatalf("redis-cli --pipe of %s: %s", a.Name, out)
		}
	}
	same(t, "db0 piped by hand", want0, snapshot(t, dst, 0))
	same(t, "db3 piped by hand", want3, snapshot(t, dst, 3))

	t.Run("IntoCluster", func(t *testing.T) {
		// A cluster takes each key only on its master: restore into a
		// standalone server first (above), then let redis-cli move the keys.
		nodes := testenv.NewRedisCluster(t, 3, 0)
		sh(`"$REDIS_CLI" --cluster import "$NODE" --cluster-from "$FROM" --cluster-copy --cluster-replace`, "NODE="+nodes[0], "FROM="+dst)
		same(t, "db0 imported into a cluster by hand", want0, snapshot(t, nodes[0], 0))
	})

	t.Run("RDB", func(t *testing.T) {
		dir := t.TempDir()
		sh(`"$AGE" -d -i "$KEY" "$F" | "$ZSTD" -d > "$DIR/dump.rdb"`, "F="+artifact(rdbBackup.ID, "dump.rdb"), "DIR="+dir)
		loaded := testenv.NewRedis(t, "--dir", dir)
		same(t, "db0 from dump.rdb decrypted by hand", want0, snapshot(t, loaded, 0))
		same(t, "db3 from dump.rdb decrypted by hand", want3, snapshot(t, loaded, 3))
	})
}
