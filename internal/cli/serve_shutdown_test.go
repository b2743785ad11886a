package cli

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/testenv"
)

// TestServeGracefulShutdown: SIGTERM during a backup lets it finish
// within a long grace period, and aborts it — leaving nothing visible,
// no leftovers and no lease — when the grace period is short.
func TestServeGracefulShutdown(t *testing.T) {
	t.Parallel()
	db := testenv.NewDatabase(t, "serve_grace")
	// Enough poorly compressible text that a dump takes a while.
	if err := sqlExec(db, `CREATE TABLE messages AS SELECT i AS id, md5(i::text) || md5((i+1)::text) || md5((i*7)::text) AS body
		FROM generate_series(1, 400000) i`); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(db)
	name := strings.TrimPrefix(u.Path, "/")
	for _, tc := range []struct {
		name    string
		grace   string
		backups int
	}{
		{"Finishes", "2m", 1},
		{"Aborts", "50ms", 0}, // a backup of this table takes about a second since dumps compress on every core
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			repoDir := filepath.Join(dir, "repo")
			repoURL := "file://" + repoDir
			planPath := servePlan(t, dir, fmt.Sprintf(`repositories:
  primary: {url: %q}
stores:
%sserve:
  token_file: serve.token
  grace_period: %s
  leader_election: {mode: none}
`, repoURL, pgStore("big-db", db, name, "@every 1h", "2h"), tc.grace), repoURL)
			p := startServe(t, "serve", planPath, testenv.FreePort(t), nil)
			// The first run starts at once; wait until its bytes land.
			testenv.WaitFor(t, 120*time.Second, func() error {
				if !p.running() {
					return fmt.Errorf("serve exited: %s", p.logText())
				}
				var biggest int64
				filepath.WalkDir(filepath.Join(repoDir, "backups"), func(_ string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						if fi, err := d.Info(); err == nil && fi.Size() > biggest {
							biggest = fi.Size()
						}
					}
					return nil
				})
				if biggest < 1<<20 {
					return fmt.Errorf("largest object %d bytes", biggest)
				}
				return nil
			})
			if code := p.stop(syscall.SIGTERM, 3*time.Minute); code != 0 {
				t.Fatalf("exit %d", code)
			}
			r, err := repo.Open(context.Background(), repoURL)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			all, _ := r.Backups(context.Background(), "big-db")
			inc, _ := r.Incomplete(context.Background(), "big-db")
			if len(all) != tc.backups || len(inc) != 0 {
				t.Fatalf("%d backups (want %d), %d incomplete left", len(all), tc.backups, len(inc))
			}
			leases, _ := filepath.Glob(filepath.Join(repoDir, "leases", "*.json"))
			if len(leases) != 0 {
				t.Fatalf("leases left: %v", leases)
			}
			log := p.logText()
			if tc.backups == 0 && (!strings.Contains(log, "grace period over: aborting running work") || !strings.Contains(log, `"msg":"job aborted"`)) {
				t.Fatal("the log does not say the backup was aborted")
			}
			if tc.backups == 1 && !strings.Contains(log, `"msg":"job finished","job":"backup big-db logical"`) {
				t.Fatal("the log does not say the backup finished")
			}
		})
	}
}
