package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/testenv"
)

// servedDatabase makes a database with a little data and returns its URL
// and name.
func servedDatabase(t *testing.T, prefix string) (string, string) {
	t.Helper()
	db := testenv.NewDatabase(t, prefix)
	if err := sqlExec(db, scriptData); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(db)
	return db, strings.TrimPrefix(u.Path, "/")
}

func pgStore(name, dbURL, dbName, schedule, rpo string) string {
	u, _ := url.Parse(dbURL)
	u.Path = "/postgres"
	return fmt.Sprintf("  %s:\n    kind: postgres\n    url: %q\n    databases: [%s]\n    rpo: %s\n    backups: [{method: logical, schedule: %q}]\n", name, u.String(), dbName, rpo, schedule)
}

// redisStore is a plan fragment: a Redis store backed up by resp.
func redisStore(name, addr, schedule string) string {
	return fmt.Sprintf("  %s:\n    kind: redis\n    url: redis://%s\n    backups: [{method: resp, schedule: %q}]\n", name, addr, schedule)
}

// redisFill writes n string keys, half of them with a TTL, over RESP.
func redisFill(addr string, n int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var b strings.Builder
	for i := 0; i < n; i++ {
		k, v := fmt.Sprintf("session:%d", i), fmt.Sprintf("user-%d", i*7)
		if i%2 == 0 {
			fmt.Fprintf(&b, "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$4\r\n3600\r\n", len(k), k, len(v), v)
		} else {
			fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
		}
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line != "+OK\r\n" {
			return fmt.Errorf("SET: %q", line)
		}
	}
	return nil
}

// TestServeEndToEnd runs the real binary against real PostgreSQL, Redis and the
// two real S3 servers (primary and DR region) on a schedule of every few
// seconds: backups appear, retention prunes, the DR repository receives
// and verifies every object — backups and whatever lies under wal/,
// drills/ and runs/ — verification runs in both, the API needs the
// token, and SIGTERM stops it cleanly.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	s3 := testenv.S3(t)
	primaryURL := testenv.S3URL(t, s3.Endpoint, testenv.NewBucket(t, s3.Endpoint), "linkdr")
	drURL := testenv.S3URL(t, s3.DREndpoint, testenv.NewBucket(t, s3.DREndpoint), "linkdr")
	db, dbName := servedDatabase(t, "serve_e2e")
	redisAddr := testenv.NewRedis(t)
	if err := redisFill(redisAddr, 500); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	planPath := servePlan(t, dir, fmt.Sprintf(`repositories:
  primary: {url: %q}
  dr: {url: %q, copy_from: primary}
stores:
%sretention: {keep_last: 2, keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, keep_yearly: 0, schedule: "@every 4s"}
verify: {schedule: "@every 5s"}
serve:
  token_file: serve.token
  grace_period: 20s
  copy_interval: 2s
  refresh_interval: 1s
  leader_election: {mode: none}
`, primaryURL, drURL, pgStore("users-db", db, dbName, "@every 3s", "1m")+redisStore("sessions", redisAddr, "@every 3s")), primaryURL, drURL)

	primary, err := repo.Open(context.Background(), primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	dr, err := repo.Open(context.Background(), drURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	// What other parts of linkdr write: WAL segments, drill reports, run
	// journals. The copy must carry them without knowing them.
	generic := map[string]string{
		"wal/users-db/00000001/000000010000000000000003.zst.age": "segment",
		"drills/20261126T061500Z-ab12.json":                      `{"drill": "restore users-db"}`,
		"runs/20261126T070000Z-cd34/journal.jsonl":               "{\"step\": 1}\n",
	}
	for k, v := range generic {
		if err := primary.Bucket().WriteAll(context.Background(), k, []byte(v), nil); err != nil {
			t.Fatal(err)
		}
	}

	p := startServe(t, "serve", planPath, testenv.FreePort(t), nil)
	p.waitReady(60 * time.Second)

	t.Run("Auth", func(t *testing.T) {
		for _, c := range []struct {
			method, path, token string
			want                int
		}{
			{"GET", "/healthz", "", 200},
			{"GET", "/readyz", "", 200},
			{"GET", "/api/v1/status", "", 401},
			{"GET", "/api/v1/status", "wrong-token-wrong-token", 401},
			{"GET", "/api/v1/backups", "", 401},
			{"GET", "/api/v1/backups/users-db", "", 401},
			{"POST", "/api/v1/backups", "", 401},
			{"GET", "/metrics", "", 401},
			{"GET", "/", "", 401},
			{"GET", "/api/v1/status", testToken, 200},
			{"GET", "/metrics", testToken, 200},
			{"GET", "/?token=" + testToken, "", 303},
		} {
			code, body, err := p.do(c.method, c.path, c.token, nil)
			if err != nil || code != c.want {
				t.Errorf("%s %s (token %q): %d %v, want %d: %s", c.method, c.path, c.token, code, err, c.want, body)
			}
		}
	})

	t.Run("TriggerBackup", func(t *testing.T) {
		// While the schedule runs this store, a manual backup gets 409
		// (never two at once); it gets in between two scheduled runs.
		var code int
		var body []byte
		busy := 0
		testenv.WaitFor(t, 5*time.Minute, func() error {
			var err error
			code, body, err = p.do("POST", "/api/v1/backups", testToken, map[string]any{"store": "users-db", "wait": true})
			if err != nil {
				return err
			}
			if code == 409 {
				busy++
				return fmt.Errorf("409: %s", body)
			}
			return nil
		})
		t.Logf("manual backup got in after %d busy answers", busy)
		var res struct {
			Manifest *repo.Manifest `json:"manifest"`
		}
		if code != 201 || json.Unmarshal(body, &res) != nil || res.Manifest == nil || res.Manifest.Store != "users-db" {
			t.Fatalf("POST /api/v1/backups: %d %s", code, body)
		}
		code, body = p.get("/api/v1/backups/users-db/" + res.Manifest.ID)
		if code != 200 && code != 404 { // 404 if retention already pruned it
			t.Fatalf("GET the new backup: %d %s", code, body)
		}
		if code, body, _ := p.do("POST", "/api/v1/backups", testToken, map[string]any{"store": "nope"}); code != 404 {
			t.Fatalf("unknown store: %d %s", code, body)
		}
	})

	t.Run("RetentionPrunes", func(t *testing.T) {
		seen := map[string]bool{}
		testenv.WaitFor(t, 90*time.Second, func() error {
			all, err := primary.Backups(context.Background(), "users-db")
			if err != nil {
				return err
			}
			now := map[string]bool{}
			for _, m := range all {
				now[m.ID], seen[m.ID] = true, true
			}
			gone := 0
			for id := range seen {
				if !now[id] {
					gone++
				}
			}
			if len(seen) < 4 || gone == 0 || len(all) > 4 {
				return fmt.Errorf("seen %d backups, %d pruned, %d now", len(seen), gone, len(all))
			}
			return nil
		})
	})

	t.Run("DRCopyVerified", func(t *testing.T) {
		var last string
		testenv.WaitFor(t, 90*time.Second, func() error {
			src, dst := objects(t, primary), objects(t, dr)
			backups := 0
			for k, sum := range src {
				if dst[k] != sum {
					last = k
					return fmt.Errorf("%s not (yet) in the DR copy with the same SHA-256", k)
				}
				if strings.HasSuffix(k, "/manifest.json") {
					backups++
				}
			}
			if backups == 0 {
				return fmt.Errorf("no backup in the primary yet")
			}
			for k := range generic {
				if _, ok := dst[k]; !ok {
					return fmt.Errorf("%s missing in the DR copy", k)
				}
			}
			return nil
		})
		_ = last
		for _, store := range []string{"users-db", "sessions"} {
			all, err := dr.Backups(context.Background(), store)
			if err != nil || len(all) == 0 {
				t.Fatalf("DR lists %d backups of %s: %v", len(all), store, err)
			}
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		var body []byte
		testenv.WaitFor(t, 60*time.Second, func() error {
			_, body = p.get("/metrics")
			for _, want := range []string{
				`linkdr_rpo_exposure_seconds{store="users-db"}`,
				`linkdr_rpo_objective_seconds{store="users-db"} 60`,
				`linkdr_backup_last_success_timestamp_seconds{method="logical",store="users-db"}`,
				`linkdr_backup_last_success_timestamp_seconds{method="resp",store="sessions"}`,
				`linkdr_backup_duration_seconds{method="logical",store="users-db"}`,
				`linkdr_backup_size_bytes{method="logical",store="users-db"}`,
				`linkdr_verify_last_success_timestamp_seconds{repository="primary",store="users-db"}`,
				`linkdr_verify_last_success_timestamp_seconds{repository="dr",store="users-db"}`,
				`linkdr_copy_lag_seconds{repository="dr"}`,
				`linkdr_copy_rpo_exposure_seconds{repository="dr",store="users-db"}`,
				`linkdr_wal_archive_lag_seconds{store="users-db"}`,
				`linkdr_repository_bytes{repository="primary"}`,
				`linkdr_repository_up{repository="dr"} 1`,
				`linkdr_leader 1`,
				`linkdr_build_info{`,
				`linkdr_job_runs_total{kind="copy",result="ok"}`,
			} {
				if _, ok := metric(body, want); !ok {
					return fmt.Errorf("no %s in /metrics", want)
				}
			}
			return nil
		})
		promtool := exec.Command(testenv.Bin(t, "promtool"), "check", "metrics")
		promtool.Stdin = strings.NewReader(string(body))
		if out, err := promtool.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	})

	t.Run("StatusCommand", func(t *testing.T) {
		// linkdr status shows the same posture, reading the repositories.
		c := &cliEnv{t: t, bin: linkdrBinary(t), dir: dir, env: append(os.Environ(), "LINKDR_CONFIG=")}
		out, code := c.run("--config", planPath, "status")
		if code != 0 {
			t.Fatalf("status: exit %d\n%s", code, out)
		}
		for _, want := range []string{"users-db", "↳ in dr", "↳ WAL archive", "REPOSITORY", "dr          reachable", "primary"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		t.Logf("linkdr status:\n%s", out)
	})

	t.Run("Shutdown", func(t *testing.T) {
		if code := p.stop(syscall.SIGTERM, 60*time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM", code)
		}
		if !strings.Contains(p.logText(), `"msg":"stopped"`) {
			t.Fatal("no clean stop in the log")
		}
		inc, err := primary.Incomplete(context.Background(), "users-db")
		if err != nil || len(inc) != 0 {
			t.Fatalf("partial backups left: %v %v", inc, err)
		}
	})
}

// TestServeInvalidPlan: serve refuses to start on an invalid plan, with
// every problem, and without a token.
func TestServeInvalidPlan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "linkdr.yaml")
	os.WriteFile(bad, []byte("version: 1\nname: x\nserve: {listen: nowhere, grace_period: 0s}\n"), 0o644)
	c := &cliEnv{t: t, bin: linkdrBinary(t), dir: dir, env: append(os.Environ(), "LINKDR_CONFIG=", "LINKDR_SERVE_TOKEN=")}
	out, code := c.run("--config", bad, "serve")
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d: %s", code, ExitUsage, out)
	}
	for _, want := range []string{"linkdr.yaml:3: serve.listen: invalid listen address", "serve.grace_period: must be positive", "encryption.recipients"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	good := servePlan(t, dir, fmt.Sprintf("repositories:\n  primary: {url: %q}\nstores: {}\n", "file://"+filepath.Join(dir, "repo")), "file://"+filepath.Join(dir, "repo"))
	os.Remove(filepath.Join(dir, "serve.token"))
	out, code = c.run("--config", good, "serve")
	if code != ExitUsage || !strings.Contains(out, "LINKDR_SERVE_TOKEN") {
		t.Fatalf("without a token: exit %d: %s", code, out)
	}
}
