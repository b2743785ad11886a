// Command pitr benchmarks linkdr's PostgreSQL physical backups and
// point-in-time restores against pgBackRest (zstd, process-max 2) on the
// same pgbench database, in the same run, alternating the order each
// round:
//
//	backup:   linkdr backup --method physical  vs  pgbackrest backup --type=full
//	restore:  linkdr restore --latest --start  vs  pgbackrest restore + pg_ctl start,
//	          both timed until the restored server is promoted and accepts writes
//	wal-push: linkdr wal-push  vs  pgbackrest archive-push, one process per segment
//	          as archive_command runs them, in segments per second
//
// Both tools archive the same WAL from one archive_command. The cluster
// (pgbench scale -scale, about 15 MB per unit) is kept in -out between
// runs. Run it through scripts/bench-pitr.sh.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	linkdr  = flag.String("linkdr", "bin/linkdr", "linkdr binary")
	binDir  = flag.String("pg-bin", "/usr/lib/postgresql/15/bin", "PostgreSQL server binaries")
	pgbr    = flag.String("pgbackrest", "/usr/bin/pgbackrest", "pgBackRest binary")
	out     = flag.String("out", "bench/out/pitr", "work and result directory")
	scale   = flag.Int("scale", 150, "pgbench scale (about 15 MB each)")
	rounds  = flag.Int("rounds", 3, "rounds per comparison")
	walSegs = flag.Int("wal-segments", 32, "segments for the wal-push comparison")
	parts   = flag.String("parts", "backup,restore,walpush", "comparisons to run")
)

func want(part string) bool { return strings.Contains(","+*parts+",", ","+part+",") }

type result struct {
	Name    string    `json:"name"`
	Seconds []float64 `json:"seconds"`
	Bytes   int64     `json:"bytes,omitempty"`
}

func (r *result) median() float64 {
	s := append([]float64(nil), r.Seconds...)
	sort.Float64s(s)
	return s[len(s)/2]
}

var cred *syscall.Credential

func main() {
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()
	dir, err := filepath.Abs(*out)
	must(err)
	*out = dir
	bin, err := filepath.Abs(*linkdr)
	must(err)
	*linkdr = bin
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		must(err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	must(os.MkdirAll(dir, 0o755))
	chown(dir)
	// The binary must be reachable by archive_command (the postgres user).
	local := filepath.Join(dir, "linkdr")
	run("", "cp", bin, local)
	*linkdr = local

	port := freePort()
	data := filepath.Join(dir, "data")
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	setup(dir, data, port)
	srv := startServer(data, port, filepath.Join(dir, "server.log"))
	defer stopServer(srv)
	onFatal = append(onFatal, func() { stopServer(srv) })
	waitReady(ctx, url)
	ensureData(ctx, dir, url, port)
	configure(dir, data, port)
	exec1(ctx, url, "SELECT pg_reload_conf()")
	os.Remove(filepath.Join(dir, "archive.off"))
	exec1(ctx, url, "SELECT pg_switch_wal()")

	var dbBytes int64
	must(queryRow(ctx, url, `SELECT sum(pg_database_size(datname))::bigint FROM pg_database`, &dbBytes))
	log.Printf("database: pgbench scale %d, %s on disk", *scale, human(dbBytes))

	lb := &result{Name: "linkdr backup --method physical"}
	pb := &result{Name: "pgbackrest backup --type=full (zstd, process-max 2)"}
	for i := 0; want("backup") && i < *rounds; i++ {
		for _, which := range order(i) {
			if which == 0 {
				lb.Seconds = append(lb.Seconds, timed(dir, nil, *linkdr, "--config", filepath.Join(dir, "linkdr.yaml"), "backup", "db", "--method", "physical"))
			} else {
				pb.Seconds = append(pb.Seconds, timed(dir, cred, *pgbr, "--config", filepath.Join(dir, "pgbackrest.conf"), "--stanza=bench", "--type=full", "backup"))
			}
		}
		log.Printf("backup round %d: linkdr %.1fs, pgbackrest %.1fs", i+1, last(lb), last(pb))
	}
	if want("backup") {
		lb.Bytes = dirSize(filepath.Join(dir, "repo", "backups")) / int64(len(lb.Seconds))
		pb.Bytes = dirSize(filepath.Join(dir, "pgbackrest-repo", "backup")) / int64(len(pb.Seconds))
	}
	// A little WAL after the last backups, so restores replay something.
	exec1(ctx, url, "SELECT pg_switch_wal()")

	onFatal = append(onFatal, func() {
		c := exec.Command(filepath.Join(*binDir, "pg_ctl"), "stop", "-m", "immediate", "-D", filepath.Join(dir, "restored"))
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		c.Run()
	})
	lr := &result{Name: "linkdr restore --latest --start (to a promoted server)"}
	pr := &result{Name: "pgbackrest restore + pg_ctl start (to a promoted server)"}
	for i := 0; want("restore") && i < *rounds; i++ {
		for _, which := range order(i) {
			target := filepath.Join(dir, "restored")
			os.RemoveAll(target)
			must(os.Mkdir(target, 0o700))
			chown(target)
			p := freePort()
			if which == 0 {
				start := time.Now()
				run(dir, *linkdr, "--config", filepath.Join(dir, "linkdr.yaml"), "restore", "db", "--latest", "--target-dir", target, "--port", strconv.Itoa(p), "--start", "--yes")
				lr.Seconds = append(lr.Seconds, time.Since(start).Seconds())
			} else {
				start := time.Now()
				runAs(dir, cred, *pgbr, "--config", filepath.Join(dir, "pgbackrest.conf"), "--stanza=bench", "--pg1-path="+target, "--archive-mode=off", "--type=default", "restore")
				runAs(dir, cred, filepath.Join(*binDir, "pg_ctl"), "start", "-w", "-t", "3600", "-D", target, "-l", filepath.Join(target, "restore.log"), "-o", fmt.Sprintf("-p %d", p))
				waitPromoted(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p))
				pr.Seconds = append(pr.Seconds, time.Since(start).Seconds())
			}
			var n int64
			must(queryRow(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p), `SELECT count(*) FROM pgbench_branches`, &n))
			if n != int64(*scale) {
				fatalf("restored pgbench_branches has %d rows, want %d", n, *scale)
			}
			runAs(dir, cred, filepath.Join(*binDir, "pg_ctl"), "stop", "-m", "immediate", "-D", target)
			os.RemoveAll(target)
		}
		log.Printf("restore round %d: linkdr %.1fs, pgbackrest %.1fs", i+1, last(lr), last(pr))
	}

	var segs []string
	if want("walpush") {
		segs = collectSegments(ctx, dir, url)
	}
	lw := &result{Name: "linkdr wal-push"}
	pw := &result{Name: "pgbackrest archive-push"}
	for i := 0; want("walpush") && i < *rounds; i++ {
		for _, which := range order(i) {
			store := fmt.Sprintf("walbench%d", i)
			start := time.Now()
			for _, s := range segs {
				if which == 0 {
					run(dir, *linkdr, "--config", filepath.Join(dir, "linkdr.yaml"), "wal-push", "--store", store, s)
				} else {
					runAs(dir, cred, *pgbr, "--config", filepath.Join(dir, "pgbackrest.conf"), "--stanza=walbench"+strconv.Itoa(i), "archive-push", s)
				}
			}
			secs := time.Since(start).Seconds()
			if which == 0 {
				lw.Seconds = append(lw.Seconds, secs)
			} else {
				pw.Seconds = append(pw.Seconds, secs)
			}
		}
		log.Printf("wal-push round %d: linkdr %.1f seg/s, pgbackrest %.1f seg/s", i+1, float64(len(segs))/last(lw), float64(len(segs))/last(pw))
	}

	fmt.Printf("\n## PostgreSQL physical backup and PITR restore (pgbench scale %d, %s; %d rounds, medians)\n\n", *scale, human(dbBytes), *rounds)
	fmt.Printf("| operation | linkdr | pgBackRest | ratio (linkdr / pgBackRest) |\n|---|---|---|---|\n")
	if want("backup") {
		fmt.Printf("| full physical backup | %.1f s (%s stored) | %.1f s (%s stored) | %.2f |\n", lb.median(), human(lb.Bytes), pb.median(), human(pb.Bytes), lb.median()/pb.median())
	}
	if want("restore") {
		fmt.Printf("| restore to a running, promoted server | %.1f s | %.1f s | %.2f |\n", lr.median(), pr.median(), lr.median()/pr.median())
	}
	if want("walpush") {
		fmt.Printf("| archive_command, %d segments | %.1f seg/s | %.1f seg/s | %.2f (throughput) |\n", len(segs),
			float64(len(segs))/lw.median(), float64(len(segs))/pw.median(), pw.median()/lw.median())
	}
	res := map[string]any{"scale": *scale, "database_bytes": dbBytes, "rounds": *rounds, "segments": len(segs),
		"results": []*result{lb, pb, lr, pr, lw, pw}, "at": time.Now().UTC()}
	b, _ := json.MarshalIndent(res, "", "  ")
	must(os.WriteFile(filepath.Join(dir, "results-"+strings.ReplaceAll(*parts, ",", "-")+".json"), b, 0o644))
}

func order(i int) []int {
	if i%2 == 0 {
		return []int{0, 1}
	}
	return []int{1, 0}
}

func last(r *result) float64 { return r.Seconds[len(r.Seconds)-1] }

// setup initialises the cluster once; later runs reuse it.
func setup(dir, data string, port int) {
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return
	}
	must(os.MkdirAll(data, 0o700))
	chown(data)
	runAs(dir, cred, filepath.Join(*binDir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--no-locale")
	// The archive script pushes every segment with both tools, like a server that
	// archives into two repositories; archive.off mutes it during loading.
	script := fmt.Sprintf(`#!/bin/sh
[ -e %[1]s/archive.off ] && exit 0
if [ -e %[1]s/archive.collect ]; then cp "$1" %[1]s/walsrc/ || exit 1; fi
%[2]s --config %[1]s/linkdr.yaml wal-push --store db "$1" || exit 1
exec %[3]s --config %[1]s/pgbackrest.conf --stanza=bench archive-push "$1"
`, dir, *linkdr, *pgbr)
	must(os.WriteFile(filepath.Join(dir, "archive-linkdr-pgbackrest.sh"), []byte(script), 0o755))
	must(os.WriteFile(filepath.Join(dir, "archive.off"), nil, 0o644))
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
unix_socket_directories = '%[1]s'
wal_level = replica
max_wal_senders = 10
archive_mode = on
archive_command = '%[1]s/archive-linkdr-pgbackrest.sh %%p'
max_wal_size = 4GB
shared_buffers = 256MB
fsync = off
`, dir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0o600)
	must(err)
	f.WriteString(conf)
	f.Close()
}

// configure writes the linkdr plan and the pgBackRest config and creates
// both repositories (fresh every run, so sizes compare).
func configure(dir, data string, port int) {
	for _, d := range []string{"repo", "pgbackrest-repo", "walsrc"} {
		os.RemoveAll(filepath.Join(dir, d))
		must(os.MkdirAll(filepath.Join(dir, d), 0o755))
		chown(filepath.Join(dir, d))
	}
	for _, d := range []string{"pgbr-log", "pgbr-lock", "pgbr-spool"} {
		must(os.MkdirAll(filepath.Join(dir, d), 0o755))
		chown(filepath.Join(dir, d))
	}
	key := filepath.Join(dir, "age.key")
	if _, err := os.Stat(key); err != nil {
		out, err := exec.Command("age-keygen", "-o", key).CombinedOutput()
		if err != nil {
			fatalf("age-keygen: %v %s", err, out)
		}
	}
	chown(key)
	pub := ""
	b, _ := os.ReadFile(key)
	for _, l := range strings.Split(string(b), "\n") {
		if r, ok := strings.CutPrefix(l, "# public key: "); ok {
			pub = r
		}
	}
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	var stores strings.Builder
	for i := 0; i < *rounds; i++ {
		fmt.Fprintf(&stores, "  walbench%d:\n    kind: postgres\n    url: %s\n    backups: [{method: physical}]\n    wal: {mode: archive}\n", i, url)
	}
	plan := fmt.Sprintf(`version: 1
name: bench
encryption:
  recipients: [%q]
  identity_file: age.key
repositories:
  primary: {url: %s/repo}
stores:
  db:
    kind: postgres
    url: %s
    backups: [{method: physical}]
    wal: {mode: archive}
%sretention: {keep_last: 100}
`, pub, dir, url, stores.String())
	must(os.WriteFile(filepath.Join(dir, "linkdr.yaml"), []byte(plan), 0o644))
	run(dir, *linkdr, "--config", filepath.Join(dir, "linkdr.yaml"), "repo", "init")
	var pc strings.Builder
	fmt.Fprintf(&pc, `[global]
repo1-path=%[1]s/pgbackrest-repo
repo1-retention-full=100
compress-type=zst
compress-level=3
process-max=2
start-fast=y
log-level-console=warn
log-level-file=off
log-path=%[1]s/pgbr-log
lock-path=%[1]s/pgbr-lock
spool-path=%[1]s/pgbr-spool

[bench]
pg1-path=%[2]s
pg1-port=%[3]d
pg1-socket-path=%[1]s
`, dir, data, port)
	for i := 0; i < *rounds; i++ {
		fmt.Fprintf(&pc, "\n[walbench%d]\npg1-path=%s\npg1-port=%d\npg1-socket-path=%s\n", i, data, port, dir)
	}
	must(os.WriteFile(filepath.Join(dir, "pgbackrest.conf"), []byte(pc.String()), 0o644))
	runAs(dir, cred, *pgbr, "--config", filepath.Join(dir, "pgbackrest.conf"), "--stanza=bench", "stanza-create")
	for i := 0; i < *rounds; i++ {
		runAs(dir, cred, *pgbr, "--config", filepath.Join(dir, "pgbackrest.conf"), "--stanza=walbench"+strconv.Itoa(i), "stanza-create")
	}
}

func ensureData(ctx context.Context, dir, url string, port int) {
	var n int64
	if queryRow(ctx, url, `SELECT count(*) FROM pgbench_branches`, &n) == nil && n == int64(*scale) {
		return
	}
	log.Printf("creating pgbench scale %d (once; kept in %s)", *scale, dir)
	runAs(dir, cred, filepath.Join(*binDir, "pgbench"), "-i", "-q", "-s", strconv.Itoa(*scale), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "postgres")
	exec1(ctx, url, "CHECKPOINT")
}

// collectSegments lets the server archive real pgbench WAL and keeps a
// copy of each segment for the wal-push comparison.
func collectSegments(ctx context.Context, dir, url string) []string {
	src := filepath.Join(dir, "walsrc")
	os.WriteFile(filepath.Join(dir, "archive.collect"), nil, 0o644)
	defer os.Remove(filepath.Join(dir, "archive.collect"))
	u := strings.TrimPrefix(url, "postgres://postgres@")
	hostPort := strings.SplitN(u, "/", 2)[0]
	host, port, _ := strings.Cut(hostPort, ":")
	for {
		files, _ := filepath.Glob(filepath.Join(src, "0*"))
		if len(files) >= *walSegs {
			sort.Strings(files)
			return files[:*walSegs]
		}
		runAs(dir, cred, filepath.Join(*binDir, "pgbench"), "-n", "-c", "2", "-T", "10", "-h", host, "-p", port, "-U", "postgres", "postgres")
		exec1(ctx, url, "SELECT pg_switch_wal()")
	}
}

type server struct{ cmd *exec.Cmd }

func startServer(data string, port int, logFile string) *server {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	must(err)
	cmd := exec.Command(filepath.Join(*binDir, "postgres"), "-D", data, "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setsid: true}
	must(cmd.Start())
	return &server{cmd: cmd}
}

func stopServer(s *server) {
	s.cmd.Process.Signal(syscall.SIGINT)
	s.cmd.Wait()
}

func waitReady(ctx context.Context, url string) {
	for i := 0; i < 600; i++ {
		if c, err := pgx.Connect(ctx, url); err == nil {
			c.Close(ctx)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fatalf("server did not start")
}

func waitPromoted(ctx context.Context, url string) {
	for {
		var rec bool
		if queryRow(ctx, url, `SELECT pg_is_in_recovery()`, &rec) == nil && !rec {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func timed(dir string, cr *syscall.Credential, name string, args ...string) float64 {
	start := time.Now()
	runAs(dir, cr, name, args...)
	return time.Since(start).Seconds()
}

func run(dir, name string, args ...string) { runAs(dir, nil, name, args...) }

func runAs(dir string, cr *syscall.Credential, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cr}
	if out, err := cmd.CombinedOutput(); err != nil {
		fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func exec1(ctx context.Context, url, sql string) {
	c, err := pgx.Connect(ctx, url)
	must(err)
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	must(err)
}

func queryRow(ctx context.Context, url, sql string, dst ...any) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.QueryRow(ctx, sql).Scan(dst...)
}

func chown(path string) {
	if cred != nil {
		must(os.Chown(path, int(cred.Uid), int(cred.Gid)))
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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

// onFatal stops what the benchmark started before it exits on an error.
var onFatal []func()

func fatalf(format string, args ...any) {
	for i := len(onFatal) - 1; i >= 0; i-- {
		onFatal[i]()
	}
	log.Fatalf(format, args...)
}

func must(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}
