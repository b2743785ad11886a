package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/testenv"
)

// buildLinkdr builds the real binary once per test binary run.
func buildLinkdr(t *testing.T) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "linkdr")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/linkdr")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type cliEnv struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

func (c *cliEnv) run(args ...string) (string, int) {
	cmd := exec.Command(c.bin, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), 0
}

func (c *cliEnv) listed() int {
	out, code := c.run("backups", "list", "-o", "json")
	if code != 0 {
		c.t.Fatalf("backups list: %d %s", code, out)
	}
	var list []any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		c.t.Fatalf("%v: %s", err, out)
	}
	return len(list)
}

// startBackupAndStop starts a backup of a database big enough to take a
// while, waits until artifact bytes are landing in the repository, and
// sends sig.
func (c *cliEnv) startBackupAndStop(sig syscall.Signal) (string, int) {
	cmd := exec.Command(c.bin, "backup", "users-db")
	cmd.Dir, cmd.Env = c.dir, c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	repoDir := filepath.Join(c.dir, "repo", "backups")
	err := testenv.Poll(60*time.Second, func() error {
		var biggest int64
		filepath.WalkDir(repoDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil && fi.Size() > biggest {
					biggest = fi.Size()
				}
			}
			return nil
		})
		if biggest < 1<<20 {
			return fmt.Errorf("largest object in the repository is %d bytes", biggest)
		}
		return nil
	})
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		c.t.Fatalf("backup never got going: %v\n%s", err, out.String())
	}
	cmd.Process.Signal(sig)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		c.t.Fatalf("backup was not stopped by %v (err %v): %s", sig, err, out.String())
	}
	return out.String(), ee.ExitCode()
}

func newCrashEnv(t *testing.T) *cliEnv {
	db := testenv.NewDatabase(t, "crash")
	// About 100 MB of text that compresses poorly, so the dump takes
	// long enough to be interrupted in the middle.
	if err := sqlExec(db, `CREATE TABLE messages AS SELECT i AS id, md5(i::text) || md5((i+1)::text) || md5((i*7)::text) || md5((i*13)::text) AS body
		FROM generate_series(1, 700000) i`); err != nil {
		t.Fatal(err)
	}
	c := &cliEnv{t: t, bin: buildLinkdr(t), dir: t.TempDir()}
	c.env = append(os.Environ(), "LINKDR_CONFIG=", "LINKDR_LEASE_TTL=3s")
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	if out, code := c.run("init", "--postgres-url", u.String(), "--repo-url", "./repo"); code != 0 {
		t.Fatal(out)
	}
	plan, _ := os.ReadFile(filepath.Join(c.dir, "linkdr.yaml"))
	plan = bytes.Replace(plan, []byte("databases: []"), []byte("databases: ["+name+"]"), 1)
	os.WriteFile(filepath.Join(c.dir, "linkdr.yaml"), plan, 0o644)
	if out, code := c.run("repo", "init"); code != 0 {
		t.Fatal(out)
	}
	return c
}

// TestKilledBackup: kill -9 in the middle of a backup leaves no backup
// visible; the dead writer's lease blocks others (exit 11) until it
// expires, then backups work again.
func TestKilledBackup(t *testing.T) {
	t.Parallel()
	c := newCrashEnv(t)
	c.startBackupAndStop(syscall.SIGKILL)
	if n := c.listed(); n != 0 {
		t.Fatalf("%d backups listed after kill -9", n)
	}
	if out, code := c.run("backup", "users-db"); code != ExitLocked {
		t.Fatalf("backup right after the kill: exit %d, want %d (lease of the dead writer): %s", code, ExitLocked, out)
	}
	err := testenv.Poll(30*time.Second, func() error {
		if out, code := c.run("backup", "users-db"); code != 0 {
			return fmt.Errorf("exit %d: %s", code, out)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("backup after the stale lease expired: %v", err)
	}
	if n := c.listed(); n != 1 {
		t.Fatalf("%d backups listed, want 1", n)
	}
	if out, code := c.run("verify"); code != 0 {
		t.Fatalf("verify: %d %s", code, out)
	}
}

// TestInterruptedBackup: Ctrl-C exits 130, removes what was written and
// releases the lease at once.
func TestInterruptedBackup(t *testing.T) {
	t.Parallel()
	c := newCrashEnv(t)
	out, code := c.startBackupAndStop(syscall.SIGINT)
	if code != ExitInterrupted || !strings.Contains(out, "interrupted") {
		t.Fatalf("exit %d, want %d: %s", code, ExitInterrupted, out)
	}
	if n := c.listed(); n != 0 {
		t.Fatalf("%d backups listed after Ctrl-C", n)
	}
	left := 0
	filepath.WalkDir(filepath.Join(c.dir, "repo", "backups"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left++
			t.Logf("left behind: %s", p)
		}
		return nil
	})
	if left != 0 {
		t.Fatalf("%d files left in the repository after Ctrl-C", left)
	}
	if out, code := c.run("backup", "users-db"); code != 0 {
		t.Fatalf("backup right after Ctrl-C: exit %d: %s", code, out)
	}
}
