package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/postgres"
	"github.com/linkapp/linkdr/internal/testenv"
)

// tricky holds data whose text form is easy to get wrong: newlines, tabs
// and backslashes in text, NULLs, bytea, jsonb, arrays, numerics, time
// zones, generated and identity columns, a partitioned table, an empty
// table, and large objects (one spanning many of pg_dump's chunks).
const tricky = `
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL,
  bio text, avatar bytea, prefs jsonb, tags text[], balance numeric(12,4), score double precision,
  created timestamptz NOT NULL, born date, upper_email text GENERATED ALWAYS AS (upper(email)) STORED);
INSERT INTO users (email, bio, avatar, prefs, tags, balance, score, created, born)
  SELECT 'u' || i || '@example.com',
    CASE WHEN i % 7 = 0 THEN NULL ELSE E'line one\nline\ttwo \\ back' || i END,
    decode(md5(i::text), 'hex'), jsonb_build_object('i', i, 'dark', i % 2 = 0),
    ARRAY['a', 'b c', NULL], i * 1.0001, i / 3.0, timestamptz '2026-03-29 01:30:00+01' + i * interval '1 minute',
    date '2000-01-01' + i
  FROM generate_series(1, 5000) i;
CREATE TABLE empty_table (x int);
CREATE SCHEMA chat;
CREATE TABLE chat.messages (id bigint, sent date, body text) PARTITION BY RANGE (sent);
CREATE TABLE chat.messages_2025 PARTITION OF chat.messages FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE chat.messages_2026 PARTITION OF chat.messages FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO chat.messages SELECT i, date '2025-06-01' + (i % 400), repeat('x', i % 50) FROM generate_series(1, 3000) i;
SELECT lo_from_bytea(0, convert_to(repeat('large object ', 40000), 'UTF8')), lo_from_bytea(0, '');
`

func exec1(t *testing.T, dbURL, sql string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
}

// fingerprint is an independent proof of equality: every table's row
// count and md5 over its rows in key order, computed by PostgreSQL.
func fingerprint(t *testing.T, dbURL string) string {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var out string
	err = c.QueryRow(context.Background(), `SELECT
	  (SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY id)) FROM users t) || ' ' ||
	  (SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|')), '') FROM empty_table t) || ' ' ||
	  (SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY id)) FROM chat.messages t) || ' ' ||
	  (SELECT count(*) || ':' || coalesce(md5(string_agg(md5(lo_get(oid)), '|' ORDER BY oid)), '') FROM pg_largeobject_metadata)`).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func count(t *testing.T, dbURL, table string) int64 {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int64
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func dbName(t *testing.T, dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

func withDB(dbURL, name string) string {
	u, _ := url.Parse(dbURL)
	u.Path = "/" + name
	return u.String()
}

func storeYAML(serverURL, db string) string {
	return fmt.Sprintf("  users-db:\n    kind: postgres\n    url: %q\n    databases: [%s]\n    backups: [{method: logical, schedule: \"*/15 * * * *\"}]\n", serverURL, db)
}

// roundTrip backs up a database, restores it under a new name, and checks
// both linkdr's verification and the independent fingerprint.
func roundTrip(t *testing.T, repoURL string) {
	ctx := context.Background()
	src := testenv.NewDatabase(t, "src")
	exec1(t, src, tricky)
	db := dbName(t, src)
	r := ops.TestRunner(t, repoURL, storeYAML(testenv.PostgresURL(t), db))

	m, err := r.Backup(ctx, "users-db", "")
	if err != nil {
		t.Fatal(err)
	}
	var st postgres.Stats
	mustJSON(t, m.Stats, &st)
	if len(st.Databases) != 1 || st.Databases[0].Unavailable != "" {
		t.Fatalf("stats: %+v", st)
	}
	if len(st.Databases[0].Tables) != 4 {
		t.Fatalf("manifest lists %d tables, want 4: %+v", len(st.Databases[0].Tables), st.Databases[0].Tables)
	}
	for _, tb := range st.Databases[0].Tables {
		if want := count(t, src, tb.Schema+"."+tb.Name); tb.Rows != want || !tb.Counted {
			t.Errorf("manifest rows of %s.%s = %d (counted %v), count(*) = %d", tb.Schema, tb.Name, tb.Rows, tb.Counted, want)
		}
	}
	if m.ConsistentAt.Before(m.Started.Add(-1e9)) || m.ConsistentAt.After(m.Finished) {
		t.Errorf("consistent_at %v outside the backup's span %v–%v", m.ConsistentAt, m.Started, m.Finished)
	}

	dst := testenv.NewDatabase(t, "dst") // exists and is empty: restore fills it
	_, res, err := r.Restore(ctx, "users-db", ops.RestoreOptions{Target: dst, Jobs: 1, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 || !res.Items[0].Verified {
		t.Fatalf("restore result: %+v", res)
	}
	if a, b := fingerprint(t, src), fingerprint(t, dst); a != b {
		t.Fatalf("restored data differs:\nsource   %s\nrestored %s", a, b)
	}

	t.Run("ParallelJobs", func(t *testing.T) {
		dst2 := withDB(dst, dbName(t, dst)+"_j2") // does not exist: restore creates it
		t.Cleanup(func() { exec1(t, testenv.PostgresURL(t), "DROP DATABASE IF EXISTS "+dbName(t, dst2)+" WITH (FORCE)") })
		if _, _, err := r.Restore(ctx, "users-db", ops.RestoreOptions{Target: dst2, Jobs: 2, Verify: true, TempDir: t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		if a, b := fingerprint(t, src), fingerprint(t, dst2); a != b {
			t.Fatalf("restored data differs:\nsource   %s\nrestored %s", a, b)
		}
	})
	t.Run("ErrTargetNotEmpty", func(t *testing.T) {
		_, _, err := r.Restore(ctx, "users-db", ops.RestoreOptions{Target: dst, Jobs: 1, Verify: true})
		if !errors.Is(err, store.ErrTargetNotEmpty) {
			t.Fatalf("got %v", err)
		}
		exec1(t, dst, "DELETE FROM users WHERE id < 100")
		if _, _, err := r.Restore(ctx, "users-db", ops.RestoreOptions{Target: dst, Jobs: 1, Verify: true, Force: true}); err != nil {
			t.Fatalf("--force: %v", err)
		}
		if a, b := fingerprint(t, src), fingerprint(t, dst); a != b {
			t.Fatalf("forced restore differs:\nsource   %s\nrestored %s", a, b)
		}
	})
	t.Run("ErrMismatch", func(t *testing.T) {
		// The verification itself must be able to fail: tamper after a
		// restore and check again.
		exec1(t, dst, "UPDATE users SET bio = 'tampered' WHERE id = 42")
		c, err := pgx.Connect(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		sums, err := postgres.SumTables(ctx, c, st.Databases[0].Tables)
		if err != nil {
			t.Fatal(err)
		}
		changed := 0
		for i, s := range sums {
			tb := st.Databases[0].Tables[i]
			if s.Rows != tb.Rows {
				t.Errorf("%s: rows %d vs %d", tb.Name, s.Rows, tb.Rows)
			}
			if s.Sum != tb.Sum {
				changed++
				if tb.Name != "users" {
					t.Errorf("checksum of untouched %s differs", tb.Name)
				}
			}
		}
		if changed != 1 {
			t.Fatalf("tampering changed %d checksums, want 1", changed)
		}
	})
}

func TestLogicalRoundTripFile(t *testing.T) { roundTrip(t, "") }

func TestLogicalRoundTripS3(t *testing.T) {
	s3 := testenv.S3(t)
	bucket := testenv.NewBucket(t, s3.Endpoint)
	roundTrip(t, testenv.S3URL(t, s3.Endpoint, bucket, "linkdr"))
}

// TestByHand restores a backup with only age, zstd and pg_restore,
// following docs/format.md.
func TestByHand(t *testing.T) {
	ctx := context.Background()
	src := testenv.NewDatabase(t, "src")
	exec1(t, src, tricky)
	db := dbName(t, src)
	r := ops.TestRunner(t, "", storeYAML(testenv.PostgresURL(t), db))
	m, err := r.Backup(ctx, "users-db", "")
	if err != nil {
		t.Fatal(err)
	}
	repoDir := strings.TrimPrefix(r.Plan.Repositories["primary"].URL, "file://")
	object := filepath.Join(repoDir, "backups", "users-db", m.ID, db+".dump"+repo.ArtifactSuffix)
	key := r.Plan.Encryption.IdentityFile
	dst := testenv.NewDatabase(t, "byhand")

	sha := exec.Command("sha256sum", object)
	out, err := sha.Output()
	if err != nil || !strings.HasPrefix(string(out), m.Artifacts[0].StoredSHA256) {
		t.Fatalf("sha256sum of the stored object %q: %v, manifest says %s", out, err, m.Artifacts[0].StoredSHA256)
	}
	pipeline := fmt.Sprintf("set -o pipefail; %s -d -i %s %s | %s -d -q | %s --single-transaction --exit-on-error --no-password -d %s",
		testenv.Bin(t, "age"), key, object, testenv.Bin(t, "zstd"), testenv.Bin(t, "pg_restore"), dst)
	cmd := exec.Command("bash", "-c", pipeline)
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("by-hand restore failed: %v\n%s\n%s", err, pipeline, out)
	}
	if a, b := fingerprint(t, src), fingerprint(t, dst); a != b {
		t.Fatalf("by-hand restore differs:\nsource   %s\nrestored %s", a, b)
	}
}

// TestParallelLoad restores with two jobs an archive that linkdr loads
// itself (no large objects): a table large enough to be split over both
// connections, rows that are empty lines, a row longer than a load
// chunk, a sequence whose value must survive, a comment and a grant (entries
// without a section), and the tricky types. Every table's own indexes are
// built as soon as it is loaded (the threshold is lowered to take that
// path with small tables); a foreign key to one of them, a comment on one
// of them and an expression index wait for the rest of the post-data
// section or go early as they should.
func TestParallelLoad(t *testing.T) {
	ctx := context.Background()
	postgres.SetEarlyPostData(t, 1)
	src := testenv.NewDatabase(t, "src")
	exec1(t, src, tricky[:strings.Index(tricky, "SELECT lo_from_bytea")]+`
CREATE TABLE big (id int PRIMARY KEY, body text NOT NULL);
INSERT INTO big SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 40000) i;
CREATE TABLE blanks (s text);
INSERT INTO blanks VALUES (''), ('x'), (''), (NULL), ('');
INSERT INTO big VALUES (0, repeat('long row ', 100000));
CREATE SEQUENCE ticket START 1000;
SELECT nextval('ticket'), nextval('ticket');
COMMENT ON TABLE big IS 'split over connections';
GRANT SELECT ON big TO PUBLIC;
CREATE INDEX big_head_idx ON big (left(body, 8));
COMMENT ON INDEX big_head_idx IS 'built early';
CREATE TABLE refs (id int PRIMARY KEY, big_id int NOT NULL REFERENCES big (id));
INSERT INTO refs SELECT i, i * 2 FROM generate_series(1, 1000) i;
`)
	db := dbName(t, src)
	r := ops.TestRunner(t, "", storeYAML(testenv.PostgresURL(t), db))
	var logs strings.Builder
	r.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := r.Backup(ctx, "users-db", "")
	if err != nil {
		t.Fatal(err)
	}
	dst := withDB(src, db+"_par")
	t.Cleanup(func() { exec1(t, testenv.PostgresURL(t), "DROP DATABASE IF EXISTS "+dbName(t, dst)+" WITH (FORCE)") })
	_, res, err := r.Restore(ctx, "users-db", ops.RestoreOptions{Target: dst, Jobs: 2, Verify: true, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 || !res.Items[0].Verified {
		t.Fatalf("restore result: %+v", res)
	}
	// The streaming path ran (not the spooled fallback) and loaded every table.
	if got := strings.Count(logs.String(), `msg="loaded table"`); got != 7 {
		t.Fatalf("%d tables loaded by linkdr, want 7; log:\n%s", got, logs.String())
	}
	query := `SELECT (SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY id)) FROM big t) || ' ' ||
	  (SELECT count(*) || ':' || count(s) || ':' || md5(string_agg(coalesce(s, 'NULL'), '|' ORDER BY s NULLS FIRST)) FROM blanks) || ' ' ||
	  (SELECT coalesce(obj_description(oid, 'pg_class'), '-') || ':' || coalesce(relacl::text, '-') FROM pg_class WHERE relname = 'big') || ' ' ||
	  (SELECT last_value || ':' || is_called FROM ticket)`
	scalar := func(dbURL string) string {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var s string
		if err := c.QueryRow(ctx, query).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if a, b := scalar(src), scalar(dst); a != b || !strings.HasSuffix(a, " 1001:true") || !strings.Contains(a, "split over connections:") {
		t.Fatalf("restored data differs:\nsource   %s\nrestored %s", a, b)
	}
	if a, b := fingerprint(t, src), fingerprint(t, dst); a != b {
		t.Fatalf("restored data differs:\nsource   %s\nrestored %s", a, b)
	}
	// The indexes and constraints of the post-data section exist, the
	// tables' own built early, the foreign key and the comment after them.
	// big: its key and the expression index (which lists big twice as a
	// dependency); refs: its key, not its foreign key.
	for table, n := range map[string]int{"public.big": 2, "public.users": 1, "public.refs": 1} {
		if !regexp.MustCompile(`msg="built indexes early" .*table=` + regexp.QuoteMeta(table) + ` entries=` + strconv.Itoa(n) + " ").MatchString(logs.String()) {
			t.Errorf("the %d indexes or constraints of %s were not built early; log:\n%s", n, table, logs.String())
		}
	}
	post := `SELECT (SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'big') || ' ' ||
	  (SELECT string_agg(conname || ':' || convalidated, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'refs'::regclass) || ' ' ||
	  coalesce(obj_description('big_head_idx'::regclass, 'pg_class'), '-')`
	var want, got string
	for dbURL, out := range map[string]*string{src: &want, dst: &got} {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		err = c.QueryRow(ctx, post).Scan(out)
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	if want != "big_head_idx,big_pkey refs_big_id_fkey:true,refs_pkey:true built early" || got != want {
		t.Fatalf("post-data section after restore:\nsource   %s\nrestored %s", want, got)
	}

	// Verification through --jobs 2 still fails: the manifest now claims
	// one more row of big than the dump holds.
	repoDir := strings.TrimPrefix(r.Plan.Repositories["primary"].URL, "file://")
	path := filepath.Join(repoDir, "backups", "users-db", m.ID, "manifest.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tb := range doc["stats"].(map[string]any)["databases"].([]any)[0].(map[string]any)["tables"].([]any) {
		if tb := tb.(map[string]any); tb["name"] == "big" {
			tb["rows"] = 40002
		}
	}
	if raw, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	dst2 := withDB(src, db+"_par2")
	t.Cleanup(func() { exec1(t, testenv.PostgresURL(t), "DROP DATABASE IF EXISTS "+dbName(t, dst2)+" WITH (FORCE)") })
	_, _, err = r.Restore(ctx, "users-db", ops.RestoreOptions{Target: dst2, Jobs: 2, Verify: true, TempDir: t.TempDir()})
	if !errors.Is(err, store.ErrMismatch) || !strings.Contains(err.Error(), "public.big has 40001 rows, backup has 40002") {
		t.Fatalf("restore against an edited manifest: %v", err)
	}
}
