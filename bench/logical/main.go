// Command logical benchmarks linkdr's PostgreSQL logical backup and
// restore against the standard tools on the same database, in the same
// run, alternating the order each round:
//
//	backup:  linkdr backup  vs  pg_dump -Fc > file  vs  pg_dump -Fc -Z0 | zstd -3 -T2 | age -r KEY > file
//	restore: linkdr restore --jobs 2  vs  pg_restore -j2 from the pg_dump file
//
// A backup is timed until it is durable: linkdr fsyncs what it stores
// before writing the manifest, so the peers' command lines end with
// `sync FILE`; and each step starts after a `sync`, so no step pays for
// writing back another's output.
//
// It prints medians, ratios, sizes and linkdr's peak RSS, and writes the
// same as JSON. Run it through scripts/bench.sh (make bench).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	pgURL   = flag.String("pg", "", "PostgreSQL server URL (superuser), e.g. postgres://postgres@127.0.0.1:5432/postgres")
	linkdr  = flag.String("linkdr", "bin/linkdr", "linkdr binary")
	binDir  = flag.String("pg-bin", "/usr/lib/postgresql/15/bin", "PostgreSQL client binaries")
	out     = flag.String("out", "bench/out/logical", "work and result directory")
	rounds  = flag.Int("rounds", 3, "rounds per comparison")
	users   = flag.Int("users", 1_000_000, "rows in users")
	msgs    = flag.Int("messages", 4_000_000, "rows in messages")
	db      = flag.String("db", "bench_link", "database to create (kept between runs if its size matches)")
	restore = flag.Bool("restore", true, "also benchmark restore")
)

type result struct {
	Name    string    `json:"name"`
	Seconds []float64 `json:"seconds"`
	Bytes   int64     `json:"bytes"`
	MaxRSS  int64     `json:"max_rss_bytes,omitempty"`
}

func (r *result) median() float64 {
	s := append([]float64(nil), r.Seconds...)
	sort.Float64s(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *pgURL == "" {
		log.Fatal("-pg is required")
	}
	ctx := context.Background()
	must(os.MkdirAll(*out, 0o755))
	dbURL := withDB(*pgURL, *db)
	size := ensureData(ctx, dbURL)
	log.Printf("database %s: %s", *db, human(size))

	key := filepath.Join(*out, "bench.key")
	os.Remove(key)
	run("", "age-keygen", "-o", key)
	recipient := strings.TrimSpace(strings.TrimPrefix(grep(key, "# public key: "), "# public key: "))
	plan := filepath.Join(*out, "linkdr.yaml")
	repoDir, _ := filepath.Abs(filepath.Join(*out, "repo"))
	os.RemoveAll(repoDir)
	absKey, _ := filepath.Abs(key)
	must(os.WriteFile(plan, []byte(fmt.Sprintf(`version: 1
name: bench
encryption: {recipients: [%q], identity_file: %s}
repositories: {primary: {url: %q}}
stores:
  bench:
    kind: postgres
    url: %q
    databases: [%s]
    backups: [{method: logical, schedule: "*/30 * * * *"}]
retention: {keep_last: 1, keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, keep_yearly: 0}
`, recipient, absKey, "file://"+repoDir, *pgURL, *db)), 0o644))
	env := append(os.Environ(), "LINKDR_CONFIG="+plan)
	runEnv(env, *linkdr, "repo", "init")

	dumpFile := filepath.Join(*out, "pgdump.dump")
	pipeFile := filepath.Join(*out, "pipeline.zst.age")
	pgDump := filepath.Join(*binDir, "pg_dump")
	bLinkdr := &result{Name: "linkdr backup"}
	bDump := &result{Name: "pg_dump -Fc > file"}
	bPipe := &result{Name: "pg_dump -Fc -Z0 | zstd -3 -T2 | age > file"}
	backups := []func(){
		func() {
			secs, rss := timed(env, *linkdr, "backup", "bench")
			bLinkdr.Seconds = append(bLinkdr.Seconds, secs)
			bLinkdr.MaxRSS = max(bLinkdr.MaxRSS, rss)
			// Retention first (keep_last: 1), so the size is this backup's
			// alone, not this round's plus the previous round's.
			runEnv(env, *linkdr, "retention", "apply")
			bLinkdr.Bytes = dirSize(repoDir + "/backups")
		},
		func() {
			secs, _ := timed(nil, "bash", "-c", fmt.Sprintf("%s -Fc -d %s > %s && sync %[3]s", pgDump, dbURL, dumpFile))
			bDump.Seconds = append(bDump.Seconds, secs)
			bDump.Bytes = fileSize(dumpFile)
		},
		func() {
			secs, _ := timed(nil, "bash", "-c", fmt.Sprintf("set -o pipefail; %s -Fc -Z0 -d %s | zstd -q -3 -T2 | age -r %s > %s && sync %[4]s", pgDump, dbURL, recipient, pipeFile))
			bPipe.Seconds = append(bPipe.Seconds, secs)
			bPipe.Bytes = fileSize(pipeFile)
		},
	}
	for r := 0; r < *rounds; r++ {
		order := rotate(len(backups), r)
		for _, i := range order {
			// Every step starts with no dirty pages of another's output
			// queued before its own.
			run("", "sync")
			backups[i]()
		}
		log.Printf("backup round %d: linkdr %.2fs, pg_dump %.2fs, pipeline %.2fs", r+1,
			bLinkdr.Seconds[r], bDump.Seconds[r], bPipe.Seconds[r])
	}

	var restores []*result
	if *restore {
		rLinkdr := &result{Name: "linkdr restore --jobs 2 --verify=false"}
		rLinkdrV := &result{Name: "linkdr restore --jobs 2 (with verification)"}
		rPg := &result{Name: "pg_restore -j2 from local file"}
		pgRestore := filepath.Join(*binDir, "pg_restore")
		target := *db + "_restore"
		fresh := func() {
			exec1(ctx, *pgURL, "DROP DATABASE IF EXISTS "+target+" WITH (FORCE)")
		}
		steps := []func(){
			func() {
				fresh()
				secs, rss := timed(env, *linkdr, "restore", "bench", "--target", withDB(*pgURL, target), "--jobs", "2", "--verify=false", "--yes", "--temp-dir", *out)
				rLinkdr.Seconds = append(rLinkdr.Seconds, secs)
				rLinkdr.MaxRSS = max(rLinkdr.MaxRSS, rss)
			},
			func() {
				fresh()
				secs, rss := timed(env, *linkdr, "restore", "bench", "--target", withDB(*pgURL, target), "--jobs", "2", "--yes", "--temp-dir", *out)
				rLinkdrV.Seconds = append(rLinkdrV.Seconds, secs)
				rLinkdrV.MaxRSS = max(rLinkdrV.MaxRSS, rss)
			},
			func() {
				fresh()
				exec1(ctx, *pgURL, "CREATE DATABASE "+target)
				secs, _ := timed(nil, pgRestore, "-j2", "-d", withDB(*pgURL, target), dumpFile)
				rPg.Seconds = append(rPg.Seconds, secs)
			},
		}
		for r := 0; r < *rounds; r++ {
			for _, i := range rotate(len(steps), r) {
				steps[i]()
			}
			log.Printf("restore round %d: linkdr %.2fs (verified %.2fs), pg_restore -j2 %.2fs", r+1, rLinkdr.Seconds[r], rLinkdrV.Seconds[r], rPg.Seconds[r])
		}
		fresh()
		restores = []*result{rLinkdr, rLinkdrV, rPg}
	}

	fmt.Printf("\nPostgreSQL logical, database %s (%s), %d rounds, medians\n\n", *db, human(size), *rounds)
	fmt.Printf("%-46s %9s %11s %10s\n", "backup", "seconds", "size", "vs pg_dump")
	for _, r := range []*result{bLinkdr, bDump, bPipe} {
		fmt.Printf("%-46s %9.2f %11s %9.2fx\n", r.Name, r.median(), human(r.Bytes), r.median()/bDump.median())
	}
	fmt.Printf("linkdr vs the pipeline: %.2fx time, %.2fx size\n", bLinkdr.median()/bPipe.median(), float64(bLinkdr.Bytes)/float64(bPipe.Bytes))
	// The host's speed drifts between rounds; each round's own ratio shows
	// how far one run can land from the medians' ratio.
	fmt.Printf("linkdr / pg_dump round by round: %s\n", roundRatios(bLinkdr, bDump))
	if len(restores) > 0 {
		fmt.Printf("\n%-46s %9s %10s\n", "restore", "seconds", "vs pg_restore")
		for _, r := range restores {
			fmt.Printf("%-46s %9.2f %9.2fx\n", r.Name, r.median(), r.median()/restores[2].median())
		}
		fmt.Printf("linkdr --verify=false / pg_restore round by round: %s\n", roundRatios(restores[0], restores[2]))
	}
	peak := max(bLinkdr.MaxRSS, 0)
	for _, r := range restores {
		peak = max(peak, r.MaxRSS)
	}
	fmt.Printf("\nlinkdr peak RSS: %s (backup %s", human(peak), human(bLinkdr.MaxRSS))
	if len(restores) > 0 {
		fmt.Printf(", restore %s", human(max(restores[0].MaxRSS, restores[1].MaxRSS)))
	}
	fmt.Println(")")
	all := append([]*result{bLinkdr, bDump, bPipe}, restores...)
	b, _ := json.MarshalIndent(map[string]any{"database_bytes": size, "rounds": *rounds, "results": all, "when": time.Now().UTC()}, "", "  ")
	must(os.WriteFile(filepath.Join(*out, "results.json"), b, 0o644))
}

// roundRatios is a/b for each round, and their range.
func roundRatios(a, b *result) string {
	var parts []string
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range min(len(a.Seconds), len(b.Seconds)) {
		q := a.Seconds[i] / b.Seconds[i]
		lo, hi = min(lo, q), max(hi, q)
		parts = append(parts, fmt.Sprintf("%.2f", q))
	}
	if len(parts) == 0 {
		return "none"
	}
	return fmt.Sprintf("%s (%.2fx to %.2fx)", strings.Join(parts, " "), lo, hi)
}

// rotate gives the order of n steps in round r, so no step always runs
// first (warm caches) or last.
func rotate(n, r int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = (i + r) % n
	}
	return out
}

// timed runs a command and returns wall seconds and its peak RSS.
func timed(env []string, name string, args ...string) (float64, int64) {
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = env
	}
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		log.Fatalf("%s %v: %v", name, args, err)
	}
	secs := time.Since(start).Seconds()
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024
	}
	return secs, rss
}

func run(dir, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func runEnv(env []string, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func grep(file, prefix string) string {
	b, err := os.ReadFile(file)
	must(err)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	log.Fatalf("%s: no line starting with %q", file, prefix)
	return ""
}

func withDB(raw, name string) string {
	u, err := url.Parse(raw)
	must(err)
	u.Path = "/" + name
	return u.String()
}

func exec1(ctx context.Context, dbURL, sql string) {
	c, err := pgx.Connect(ctx, dbURL)
	must(err)
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		log.Fatalf("%s: %v", sql, err)
	}
}

// ensureData creates users and messages with realistic, varied rows:
// random words from a chat vocabulary, ids, jsonb and timestamps, so the
// data compresses like real text (about 3–4×), not like pgbench's blank
// filler.
func ensureData(ctx context.Context, dbURL string) int64 {
	want := fmt.Sprintf("users=%d messages=%d v3", *users, *msgs)
	c, err := pgx.Connect(ctx, withDB(dbURL, "postgres"))
	must(err)
	var exists bool
	must(c.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_database WHERE datname = $1", *db).Scan(&exists))
	if exists {
		var comment *string
		c.QueryRow(ctx, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", *db).Scan(&comment)
		if comment != nil && *comment == want {
			var size int64
			must(c.QueryRow(ctx, "SELECT pg_database_size($1)", *db).Scan(&size))
			c.Close(ctx)
			return size
		}
		_, err = c.Exec(ctx, "DROP DATABASE "+*db+" WITH (FORCE)")
		must(err)
	}
	_, err = c.Exec(ctx, "CREATE DATABASE "+*db)
	must(err)
	log.Printf("creating %s (%s)…", *db, want)
	d, err := pgx.Connect(ctx, dbURL)
	must(err)
	// Words are drawn at random with a skew towards the frequent ones
	// (random()^2), as in real chat; setseed makes the data reproducible.
	words := "ARRAY['" + strings.Join(strings.Fields(vocabulary), "','") + "']"
	n := len(strings.Fields(vocabulary))
	pick := fmt.Sprintf("(%s)[1 + floor(power(random(), 2) * %d)::int]", words, n)
	_, err = d.Exec(ctx, fmt.Sprintf(`
SELECT setseed(0.42);
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, display_name text NOT NULL, bio text,
  prefs jsonb NOT NULL, created_at timestamptz NOT NULL, last_seen timestamptz);
INSERT INTO users SELECT i,
  'user' || i || '@' || (ARRAY['gmail.com','yahoo.com','proton.me','outlook.com'])[1 + i %% 4],
  initcap(%[3]s) || ' ' || upper(substr(%[3]s, 1, 1)) || '.',
  (SELECT string_agg(%[3]s, ' ') FROM generate_series(1, 6 + (i %% 15))),
  jsonb_build_object('lang', (ARRAY['en','es','de','fr'])[1 + i %% 4], 'notify', random() < 0.3,
    'radius_km', floor(random() * 80)::int, 'tags', jsonb_build_array(%[3]s, %[3]s)),
  timestamptz '2023-01-01' + i * interval '53 seconds', now() - floor(random() * 100000) * interval '1 minute'
  FROM generate_series(1::bigint, %[1]d) i;
CREATE TABLE messages (id bigint PRIMARY KEY, sender bigint NOT NULL, recipient bigint NOT NULL, body text NOT NULL,
  meta jsonb, sent_at timestamptz NOT NULL, read_at timestamptz);
INSERT INTO messages SELECT i, 1 + floor(random() * %[1]d)::bigint, 1 + floor(random() * %[1]d)::bigint,
  (SELECT string_agg(%[3]s, ' ') FROM generate_series(1, 3 + (i %% 12)))
    || CASE WHEN random() < 0.05 THEN ' https://lnk.app/' || substr(md5(random()::text), 1, 8) WHEN random() < 0.3 THEN '!' ELSE '' END,
  CASE WHEN random() < 0.2 THEN jsonb_build_object('reaction', (ARRAY['❤️','😂','👍'])[1 + floor(random() * 3)::int], 'edited', random() < 0.1) END,
  timestamptz '2025-01-01' + i * interval '2 seconds' + floor(random() * 1000) * interval '1 millisecond',
  CASE WHEN random() < 0.7 THEN timestamptz '2025-01-01' + i * interval '2 seconds' + floor(random() * 3600) * interval '1 second' END
  FROM generate_series(1::bigint, %[2]d) i;
CREATE INDEX ON messages (recipient, sent_at);
CREATE INDEX ON messages (sender);
CREATE INDEX ON users (email);
ANALYZE;`, *users, *msgs, pick))
	must(err)
	d.Close(ctx)
	_, err = c.Exec(ctx, fmt.Sprintf("COMMENT ON DATABASE %s IS '%s'", *db, want))
	must(err)
	var size int64
	must(c.QueryRow(ctx, "SELECT pg_database_size($1)", *db).Scan(&size))
	c.Close(ctx)
	return size
}

const vocabulary = "hey hi hello see you soon tonight tomorrow coffee dinner movie hike trip beach music concert game " +
	"love like great awesome maybe sure okay yes no thanks sorry later weekend friday saturday sunday " +
	"work busy free call text meet park city downtown near far late early morning evening night photo " +
	"dog cat travel book read watch cook food pizza sushi tacos wine beer tea run gym yoga bike swim " +
	"what when where how why who which really just also very much more most some any every"

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	must(err)
	return fi.Size()
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
