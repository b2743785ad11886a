package redis_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/store/redis/redistest"
	"github.com/linkapp/linkdr/internal/testenv"
)

// The ACL rules docs/redis.md gives for backing up and for restoring.
const (
	backupACL  = "~* +@read +info +time +select +cluster|slots +cluster|info +cluster|nodes +replconf +sync"
	restoreACL = "~* +restore +dbsize +del +pexpiretime +pttl +dump +info +time +select +cluster|slots +cluster|info +cluster|nodes"
)

// TestACL: backups and restores work with a password (in the URL or a
// password_file, also over the replication connection) and with no more
// rights than docs/redis.md asks for.
func TestACL(t *testing.T) {
	ctx := context.Background()
	src := testenv.NewRedis(t, "--requirepass", "admin-secret")
	admin := clientWith(src, "", "admin-secret")
	if err := admin.Do(ctx, append([]any{"ACL", "SETUSER", "linkdr", "on", ">backup-secret"}, fields(backupACL)...)...).Err(); err != nil {
		t.Fatal(err)
	}
	fill(t, admin, redistest.Spec{Strings: 500, Lists: 50, Hashes: 50, Sets: 50, ZSets: 50, Streams: 20, TTLFraction: 0.5, MinTTL: time.Hour, MaxTTL: 2 * time.Hour, Seed: 13})
	want := snapshotWith(t, src, "admin-secret")

	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte("backup-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ops.TestRunner(t, "", fmt.Sprintf(`  in-url:
    kind: redis
    url: redis://linkdr:backup-secret@%s
    backups: [{method: resp}, {method: rdb}]
  in-file:
    kind: redis
    url: redis://linkdr@%s
    password_file: %s
    backups: [{method: resp}, {method: rdb}]
`, src, src, pwFile))

	nodes := testenv.NewRedisCluster(t, 3, 0)
	for _, n := range nodes {
		c := clientWith(n, "", "")
		if err := c.Do(ctx, append([]any{"ACL", "SETUSER", "restorer", "on", ">restore-secret"}, fields(restoreACL)...)...).Err(); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for _, name := range []string{"in-url", "in-file"} {
		t.Run(name, func(t *testing.T) {
			for _, method := range []string{"resp", "rdb"} {
				m, err := r.Backup(ctx, name, method)
				if err != nil {
					t.Fatalf("%s backup: %v", method, err)
				}
				if strings.Contains(string(m.Source), "secret") {
					t.Fatalf("the manifest shows the password: %s", m.Source)
				}
			}
		})
	}
	// Into a cluster, as a user with only the restore rights; the
	// password from REDISCLI_AUTH.
	t.Setenv("REDISCLI_AUTH", "restore-secret")
	m, err := r.Backup(ctx, "in-file", "resp")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Restore(ctx, "in-file", ops.RestoreOptions{Backup: m.ID, Target: "redis://restorer@" + nodes[0], Verify: true}); err != nil {
		t.Fatalf("restore as restorer: %v", err)
	}
	same(t, "restored by a user with restore rights only", want, snapshot(t, nodes[0], 0))

	t.Run("WrongPassword", func(t *testing.T) {
		r := ops.TestRunner(t, "", fmt.Sprintf("  c:\n    kind: redis\n    url: redis://linkdr:nope@%s\n    backups: [{method: resp}, {method: rdb}]\n", src))
		for _, method := range []string{"resp", "rdb"} {
			_, err := r.Backup(ctx, "c", method)
			if err == nil || !strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "nope") {
				t.Fatalf("%s: err = %v, want WRONGPASS without the password", method, err)
			}
		}
	})
}

func fields(s string) []any {
	var out []any
	for _, f := range strings.Fields(s) {
		out = append(out, f)
	}
	return out
}
