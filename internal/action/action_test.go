package action

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/testenv"

	_ "github.com/linkapp/linkdr/internal/store/postgres"
)

// TestRegistryMatchesPlan: every action the plan accepts exists, and the
// other way round, so `plan check` never passes a step that cannot run.
func TestRegistryMatchesPlan(t *testing.T) {
	if got, want := Names(), plan.Actions(); !slices.Equal(got, want) {
		t.Fatalf("registered actions %v, plan accepts %v", got, want)
	}
}

func TestShell(t *testing.T) {
	var out bytes.Buffer
	var secrets []string
	env := &Env{Output: &out, AddSecret: func(s string) { secrets = append(secrets, s) }}
	a, _ := Get("shell")
	ctx := context.Background()
	dir := t.TempDir()
	res, err := a.Run(ctx, env, Params{"command": `echo "db=$DB token=$TOKEN"; pwd; echo oops >&2`, "env": map[string]any{"DB": "users", "TOKEN": "hunter2-token"}, "secrets": []any{"TOKEN"}, "dir": dir})
	if err != nil {
		t.Fatal(err)
	}
	if res["stdout"] != "db=users token=hunter2-token\n"+dir || res["exit_code"] != 0 {
		t.Fatalf("result %v", res)
	}
	if !strings.Contains(out.String(), "oops") {
		t.Fatalf("stderr not captured: %q", out.String())
	}
	if !slices.Contains(secrets, "hunter2-token") {
		t.Fatalf("secret not registered for masking: %v", secrets)
	}
	_, err = a.Run(ctx, env, Params{"args": []any{"sh", "-c", "echo failing; exit 3"}})
	if err == nil || !strings.Contains(err.Error(), "exit 3: failing") {
		t.Fatalf("exit status: %v", err)
	}
	t.Run("TimeoutKillsTheProcessGroup", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := a.Run(ctx, env, Params{"command": "sleep 60 & echo $! > " + pidFile + "; wait"})
		if err == nil || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("got %v", err)
		}
		b, _ := os.ReadFile(pidFile)
		var pid int
		fmt.Sscan(string(b), &pid)
		testenv.WaitFor(t, 10*time.Second, func() error {
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(st), ") Z ") {
				return fmt.Errorf("child %d still running", pid)
			}
			return nil
		})
	})
	if err := a.Check(ctx, env, Params{"command": "no-such-tool-xyz --flag"}); err == nil || !strings.Contains(err.Error(), "no-such-tool-xyz: not found") {
		t.Fatalf("check of a missing binary: %v", err)
	}
	if err := a.Check(ctx, env, Params{"command": "ls -l"}); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPWaitAndCheck(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	var out bytes.Buffer
	clock := &instantClock{}
	env := &Env{Output: &out, Clock: clock}
	ctx := context.Background()
	a, _ := Get("http.wait")
	res, err := a.Run(ctx, env, Params{"url": srv.URL + "/health", "contains": `"ok"`, "interval": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if res["attempts"] != 3 || clock.slept != 2*time.Second {
		t.Fatalf("result %v, slept %s", res, clock.slept)
	}
	c, _ := Get("check")
	if _, err := c.Run(ctx, env, Params{"http": srv.URL, "status": 200}); err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	res, err = c.Run(ctx, env, Params{"tcp": closed, "expect": "down"})
	if err != nil || res["state"] != "down" {
		t.Fatalf("expect down on a closed port: %v %v", res, err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.Run(short, &Env{Output: &out}, Params{"tcp": closed, "interval": "10ms"}); err == nil {
		t.Fatal("a closed port passed a check")
	}
	if err := c.Check(ctx, env, Params{"name": "api-health"}); err == nil || !strings.Contains(err.Error(), "defines no named checks") {
		t.Fatalf("named check without checks: %v", err)
	}
	env.Checks = checkerFunc(func(ctx context.Context, name string) error { return nil })
	if _, err := c.Run(ctx, env, Params{"name": "api-health"}); err != nil {
		t.Fatal(err)
	}
}

type checkerFunc func(ctx context.Context, name string) error

func (f checkerFunc) RunCheck(ctx context.Context, name string) error { return f(ctx, name) }

// instantClock advances instead of sleeping.
type instantClock struct{ slept time.Duration }

func (c *instantClock) Now() time.Time { return time.Unix(0, 0).Add(c.slept) }
func (c *instantClock) Sleep(ctx context.Context, d time.Duration) error {
	c.slept += d
	return ctx.Err()
}

func TestWait(t *testing.T) {
	clock := &instantClock{}
	a, _ := Get("wait")
	if _, err := a.Run(context.Background(), &Env{Clock: clock}, Params{"duration": "10m"}); err != nil || clock.slept != 10*time.Minute {
		t.Fatalf("slept %s, %v", clock.slept, err)
	}
}

func pgCount(t *testing.T, url, table string) int {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pgExec(t *testing.T, url, sql string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

func TestRestore(t *testing.T) {
	src := testenv.NewDatabase(t, "action_restore")
	pgExec(t, src, "CREATE TABLE users (id int PRIMARY KEY); INSERT INTO users SELECT generate_series(1, 100)")
	dbName, _, _ := strings.Cut(src[strings.LastIndex(src, "/")+1:], "?")
	r := ops.TestRunner(t, "", fmt.Sprintf("  users-db:\n    kind: postgres\n    url: %q\n    databases: [%s]\n    backups: [{method: logical}]", src, dbName))
	ctx := context.Background()
	first, err := r.Backup(ctx, "users-db", "logical")
	if err != nil {
		t.Fatal(err)
	}
	pgExec(t, src, "INSERT INTO users SELECT generate_series(101, 150)")
	if _, err := r.Backup(ctx, "users-db", "logical"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	env := &Env{Runner: r, Output: &out, Plan: r.Plan}
	a, _ := Get("restore")

	dr := testenv.NewPostgres(t, testenv.PostgresOptions{})
	target := strings.Replace(dr.URL, "/postgres?", "/link_users?", 1)
	if err := a.Check(ctx, env, Params{"store": "users-db", "target": target}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Run(ctx, env, Params{"store": "users-db", "target": target})
	if err != nil {
		t.Fatal(err)
	}
	if n := pgCount(t, target, "users"); n != 150 {
		t.Fatalf("latest restored %d rows", n)
	}
	if items := res["items"].([]any); !items[0].(map[string]any)["verified"].(bool) {
		t.Fatalf("not verified: %v", res)
	}
	// before: the newest backup consistent at or before a time, the
	// last good state before a corruption.
	old := strings.Replace(dr.URL, "/postgres?", "/link_users_before?", 1)
	res, err = a.Run(ctx, env, Params{"store": "users-db", "target": old, "before": first.ConsistentAt.Add(time.Millisecond).Format(time.RFC3339Nano)})
	if err != nil {
		t.Fatal(err)
	}
	if res["backup"] != first.ID || pgCount(t, old, "users") != 100 {
		t.Fatalf("before picked %v", res["backup"])
	}
	if err := a.Check(ctx, env, Params{"store": "users-db", "before": "2001-01-01T00:00:00Z"}); err == nil || !strings.Contains(err.Error(), "no backup of users-db is consistent at or before") {
		t.Fatalf("before with no backup: %v", err)
	}
	// method: only backups of it, and only a method the plan gives.
	out.Reset()
	if err := a.Check(ctx, env, Params{"store": "users-db", "method": "logical", "target": old, "before": first.ConsistentAt.Add(time.Millisecond).Format(time.RFC3339Nano)}); err != nil || !strings.Contains(out.String(), "backup "+first.ID) {
		t.Fatalf("method logical before the second backup: %v\n%s", err, out.String())
	}
	if err := a.Check(ctx, env, Params{"store": "users-db", "method": "physical", "before": first.ConsistentAt.Format(time.RFC3339Nano)}); !errors.Is(err, ops.ErrUnknownMethod) {
		t.Fatalf("method the plan does not give: %v", err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := fmt.Sprintf("postgres://postgres@%s/x", l.Addr())
	l.Close()
	if err := a.Check(ctx, env, Params{"store": "users-db", "target": dead}); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("unreachable target: %v", err)
	}
}
