package check_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/linkapp/linkdr/internal/check"
	"github.com/linkapp/linkdr/internal/ops"
	_ "github.com/linkapp/linkdr/internal/store/postgres"
	"github.com/linkapp/linkdr/internal/testenv"
)

func sql(t *testing.T, url, stmt string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func TestPostgres(t *testing.T) {
	db := testenv.NewDatabase(t, "chk")
	sql(t, db, "CREATE TABLE users (id int); INSERT INTO users SELECT generate_series(1, 42)")
	p := loadPlan(t, fmt.Sprintf(`checks:
  users: {type: postgres, url: %q, query: "SELECT count(*) FROM users", condition: "connected && value == 42 && rows == 1 && !in_recovery"}
  empty: {type: postgres, url: %q, query: "SELECT count(*) FROM users WHERE id > 100", condition: "value > 0"}
  primary: {type: postgres, url: %q, condition: "replicas >= 1"}
  standby: {type: postgres, url: %q, condition: 'in_recovery && replication_lag < duration("1m")'}
  bad-sql: {type: postgres, url: %q, query: "SELECT nope FROM users"}
`, db, db, testenv.PostgresURL(t), testenv.StandbyURL(t), db))
	res := run(t, p, "users", "empty", "primary", "standby", "bad-sql")
	want(t, res[0], check.StatusPass, "value=42")
	want(t, res[1], check.StatusFail, "value > 0 is false: value=0")
	want(t, res[2], check.StatusPass, "replicas=")
	want(t, res[3], check.StatusPass, "in_recovery=true")
	want(t, res[4], check.StatusError, `column "nope" does not exist`)
}

// TestReplicationLag pauses replay on a standby of its own and watches the
// measured lag grow past a condition's limit while the primary writes.
func TestReplicationLag(t *testing.T) {
	primary := testenv.NewPostgres(t, testenv.PostgresOptions{})
	standby := testenv.NewPostgres(t, testenv.PostgresOptions{StandbyOf: primary})
	p := loadPlan(t, fmt.Sprintf(`checks:
  lag: {type: postgres, url: %q, condition: 'in_recovery && replication_lag < duration("1s")'}
  replicas: {type: postgres, url: %q, condition: "replicas == 1"}
`, standby.URL, primary.URL))
	sql(t, primary.URL, "CREATE TABLE t (x int)")
	testenv.WaitFor(t, 30*time.Second, func() error {
		if r := run(t, p, "lag", "replicas"); !r[0].OK || !r[1].OK {
			return fmt.Errorf("%s; %s", r[0].Message, r[1].Message)
		}
		return nil
	})
	sql(t, standby.URL, "SELECT pg_wal_replay_pause()")
	sql(t, primary.URL, "INSERT INTO t VALUES (1)")
	var last check.Result
	testenv.WaitFor(t, 60*time.Second, func() error {
		// Keep writing so the standby keeps receiving WAL it cannot replay.
		sql(t, primary.URL, "INSERT INTO t VALUES (2)")
		last = run(t, p, "lag")[0]
		if last.Status != check.StatusFail {
			return fmt.Errorf("lag still within 1s: %s", last.Message)
		}
		return nil
	})
	if !strings.Contains(last.Message, "replication_lag=") {
		t.Fatalf("message: %s", last.Message)
	}
	sql(t, standby.URL, "SELECT pg_wal_replay_resume()")
	testenv.WaitFor(t, 30*time.Second, func() error {
		if r := run(t, p, "lag")[0]; !r.OK {
			return fmt.Errorf("%s", r.Message)
		}
		return nil
	})
}

func TestRedis(t *testing.T) {
	addr := testenv.NewRedis(t)
	p := loadPlan(t, fmt.Sprintf(`checks:
  cache: {type: redis, url: "redis://%[1]s/0", condition: 'pong && role == "master" && keys == 0'}
  keys: {type: redis, url: "redis://%[1]s/0", condition: 'keys >= 3'}
`, addr))
	res := run(t, p, "cache", "keys")
	want(t, res[0], check.StatusPass, `role="master"`)
	want(t, res[1], check.StatusFail, "keys=0")
	// Write three keys with the same tiny client a user would reach for.
	for i := range 3 {
		out, err := execRedis(addr, "SET", fmt.Sprintf("k%d", i), "v")
		if err != nil || out != "OK" {
			t.Fatalf("SET: %v %v", out, err)
		}
	}
	want(t, run(t, p, "keys")[0], check.StatusPass, "keys=3")
	t.Run("Replica", func(t *testing.T) {
		replica := testenv.NewRedis(t, "--replicaof", strings.Replace(addr, ":", " ", 1))
		p := loadPlan(t, fmt.Sprintf("checks:\n  r: {type: redis, url: \"redis://%s\", condition: 'role == \"slave\"'}\n", replica))
		want(t, run(t, p)[0], check.StatusPass, `role="slave"`)
	})
}

func TestQdrant(t *testing.T) {
	// No Qdrant server installs here; this one answers GET
	// /collections/{name} with the envelope of qdrant/openapi.json.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("api-key") != "secret" {
			http.Error(w, `{"status":{"error":"Must provide an API key"}}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/collections/posts":
			json.NewEncoder(w).Encode(map[string]any{"time": 0.001, "status": "ok", "result": map[string]any{
				"status": "green", "optimizer_status": "ok", "points_count": 1200, "segments_count": 4,
				"config": map[string]any{}, "payload_schema": map[string]any{}}})
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"status":{"error":"Not found: Collection `+"`missing`"+` doesn't exist!"},"time":0.0}`)
		}
	}))
	defer srv.Close()
	p := loadPlan(t, fmt.Sprintf(`checks:
  posts: {type: qdrant, url: %[1]q, collection: posts, api_key: secret, condition: 'status == "green" && points >= 1000'}
  missing: {type: qdrant, url: %[1]q, collection: missing, api_key: secret}
  nokey: {type: qdrant, url: %[1]q, collection: posts}
`, srv.URL))
	res := run(t, p, "posts", "missing", "nokey")
	want(t, res[0], check.StatusPass, "points=1200")
	want(t, res[1], check.StatusError, "404 Not Found")
	want(t, res[2], check.StatusError, "401 Unauthorized")
}

func TestBackup(t *testing.T) {
	db := testenv.NewDatabase(t, "chkb")
	sql(t, db, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
	u, _ := url.Parse(db)
	r := ops.TestRunner(t, "", fmt.Sprintf(`  users-db:
    kind: postgres
    url: %q
    databases: [%s]
    backups: [{method: logical, schedule: "*/15 * * * *"}]
checks:
  fresh: {type: backup, store: users-db}
  verified: {type: backup, store: users-db, verify: true, condition: "fresh && verified"}
  drilled: {type: backup, condition: "fresh && drilled"}
`, testenv.PostgresURL(t), strings.TrimPrefix(u.Path, "/")))
	cr := &check.Runner{Plan: r.Plan, Ops: r}
	ctx := context.Background()
	res, err := cr.Run(ctx, []string{"fresh"})
	if err != nil {
		t.Fatal(err)
	}
	want(t, res[0], check.StatusFail, "users-db breached")
	if _, err := r.Backup(ctx, "users-db", ""); err != nil {
		t.Fatal(err)
	}
	res, err = cr.Run(ctx, []string{"fresh", "verified", "drilled"})
	if err != nil {
		t.Fatal(err)
	}
	want(t, res[0], check.StatusPass, "fresh=true")
	want(t, res[1], check.StatusPass, "verified=true")
	want(t, res[2], check.StatusFail, "drilled=false")
	// An hour and a half later the 1h RPO is breached.
	r.Now = func() time.Time { return time.Now().Add(90 * time.Minute) }
	res, _ = cr.Run(ctx, []string{"fresh"})
	want(t, res[0], check.StatusFail, "fresh=false")
}
