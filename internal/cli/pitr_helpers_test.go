package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/testenv"
)

// pitrEnv is a plan, a repository and a linkdr binary that the postgres OS
// user can use, since archive_command and restore_command run as it.
type pitrEnv struct {
	t    *testing.T
	dir  string
	bin  string
	plan string
	env  []string
}

// postgresCred runs a command as the postgres OS user when we are root.
func postgresCred(t *testing.T) *syscall.SysProcAttr {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

func chownPostgres(t *testing.T, paths ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}

// newPITREnv writes a plan with store "db" (physical backups, WAL in the
// given mode) pointing at url.
func newPITREnv(t *testing.T, walMode string) *pitrEnv {
	t.Helper()
	e := &pitrEnv{t: t, dir: testenv.TempDir(t)}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	e.bin = filepath.Join(e.dir, "linkdr")
	build := exec.Command("go", "build", "-o", e.bin, "./cmd/linkdr")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	kp, err := envelope.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(e.dir, "age.key")
	if err := os.WriteFile(key, kp.IdentityFile(time.Now().Format(time.RFC3339)), 0o600); err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(e.dir, "repo")
	if err := os.Mkdir(repoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	chownPostgres(t, key, repoDir)
	e.plan = filepath.Join(e.dir, "linkdr.yaml")
	e.env = append(os.Environ(), "LINKDR_CONFIG="+e.plan, "LINKDR_LEASE_TTL=3s", "LINKDR_AGE_IDENTITY_FILE=")
	e.writePlan("postgres://postgres@127.0.0.1:1/postgres", walMode)
	return e
}

func (e *pitrEnv) writePlan(url, walMode string) {
	e.t.Helper()
	plan := fmt.Sprintf(`version: 1
name: pitr-test
encryption:
  recipients: [%q]
  identity_file: age.key
repositories:
  primary: {url: %s}
stores:
  db:
    kind: postgres
    url: %s
    backups:
      - {method: physical, schedule: "@daily"}
    wal: {mode: %s, partial_interval: 1s}
`, e.recipient(), filepath.Join(e.dir, "repo"), url, walMode)
	if err := os.WriteFile(e.plan, []byte(plan), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *pitrEnv) recipient() string {
	b, err := os.ReadFile(filepath.Join(e.dir, "age.key"))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if r, ok := strings.CutPrefix(l, "# public key: "); ok {
			return r
		}
	}
	e.t.Fatal("no public key in age.key")
	return ""
}

// archiveConf makes a cluster archive into the store with wal-push.
func (e *pitrEnv) archiveConf() []string {
	return []string{
		"archive_mode = on",
		fmt.Sprintf("archive_command = '%s --config %s wal-push --store db %%p'", e.bin, e.plan),
	}
}

// run runs linkdr and returns its stdout+stderr and exit status.
func (e *pitrEnv) run(args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Dir, cmd.Env = e.dir, e.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), 0
}

func (e *pitrEnv) must(args ...string) string {
	e.t.Helper()
	out, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("linkdr %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// writer inserts rows one transaction at a time and remembers, per row,
// when the INSERT was sent and when its commit returned.
type writer struct {
	url    string
	mu     sync.Mutex
	sent   map[int64]time.Time
	done   map[int64]time.Time
	stop   chan struct{}
	exited chan error
}

func startWriter(t *testing.T, url string) *writer {
	t.Helper()
	if err := sqlExec(url, `CREATE TABLE IF NOT EXISTS ticks (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), pad text)`); err != nil {
		t.Fatal(err)
	}
	w := &writer{url: url, sent: map[int64]time.Time{}, done: map[int64]time.Time{}, stop: make(chan struct{}), exited: make(chan error, 1)}
	go func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			w.exited <- err
			return
		}
		defer c.Close(ctx)
		for id := int64(1); ; id++ {
			select {
			case <-w.stop:
				w.exited <- nil
				return
			default:
			}
			w.mu.Lock()
			w.sent[id] = time.Now()
			w.mu.Unlock()
			if _, err := c.Exec(ctx, `INSERT INTO ticks (id, pad) VALUES ($1, repeat('x', 200))`, id); err != nil {
				w.exited <- err
				return
			}
			w.mu.Lock()
			w.done[id] = time.Now()
			w.mu.Unlock()
			time.Sleep(2 * time.Millisecond) // a steady trickle, not a flood: keeps WAL small
		}
	}()
	t.Cleanup(func() { w.halt(t) })
	return w
}

func (w *writer) halt(t *testing.T) {
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	if err := <-w.exited; err != nil {
		t.Errorf("writer: %v", err)
	}
}

// count is how many rows the writer has committed so far.
func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.done)
}

// checkBoundary proves a restored table holds every row committed before
// the target was set (from) and none sent after it was set (to); for a
// time target both are that time. Rows in flight then may go either way,
// but the restored rows must be a prefix (no holes).
func (w *writer) checkBoundary(t *testing.T, url string, from, to time.Time) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n, maxID int64
	if err := c.QueryRow(context.Background(), `SELECT count(*), coalesce(max(id), 0) FROM ticks`).Scan(&n, &maxID); err != nil {
		t.Fatal(err)
	}
	if n != maxID {
		t.Fatalf("restored ticks has %d rows but max id %d: not a prefix of the history", n, maxID)
	}
	var before, after int64
	for id, d := range w.done {
		if d.Before(from) && id > maxID {
			t.Errorf("row %d committed at %s, before the target %s, is missing", id, d.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))
		}
		if d.Before(from) {
			before++
		}
	}
	for id, s := range w.sent {
		if s.After(to) && id <= maxID {
			t.Errorf("row %d sent at %s, after the target %s, is present", id, s.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
		}
		if s.After(to) {
			after++
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("the target must lie inside the writer's history: %d rows before it, %d after", before, after)
	}
	t.Logf("restored %d rows: all %d committed before the target, none of the %d sent after it", n, before, after)
}

func queryRow(t *testing.T, url, sql string, dst ...any) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.QueryRow(context.Background(), sql).Scan(dst...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// switchAndWaitArchived closes the current segment and waits until the
// archiver has pushed it.
func switchAndWaitArchived(t *testing.T, url string) {
	t.Helper()
	var seg string
	queryRow(t, url, `SELECT pg_walfile_name(pg_switch_wal())`, &seg)
	testenv.WaitFor(t, 60*time.Second, func() error {
		var last *string
		var failed int64
		queryRow(t, url, `SELECT last_archived_wal, failed_count FROM pg_stat_archiver`, &last, &failed)
		if last != nil && *last >= seg {
			return nil
		}
		return fmt.Errorf("archiver at %v (failed %d), waiting for %s", last, failed, seg)
	})
}

func jsonField(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
}
