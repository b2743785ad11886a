// Command redis-bench measures linkdr's Redis backups and restores against
// redis-cli on the same data in the same run: resp backup vs
// `redis-cli --rdb` (the fastest way to get a server's data out) and
// linkdr's own rdb backup, resp restore vs `redis-cli --pipe` of the very
// same command stream (plain, and decrypted by hand as docs/format.md
// describes). It starts its own redis-servers, fills the source with keys
// of every type, and prints keys/s and ratios. scripts/bench-redis.sh runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/store/redis/redistest"
)

type config struct {
	maxRSS      *atomic.Int64 // peak RSS of the linkdr runs since the last result
	keys        int
	runs        int
	jobs        int
	dir         string
	linkdr      string
	redisServer string
	redisCLI    string
	age         string
	ageKeygen   string
	zstd        string
	out         string
}

func main() {
	c := config{maxRSS: new(atomic.Int64)}
	flag.IntVar(&c.keys, "keys", 1_000_000, "keys to back up and restore")
	flag.IntVar(&c.runs, "runs", 2, "runs of each measurement; the fastest counts")
	flag.IntVar(&c.jobs, "jobs", 4, "linkdr restore --jobs")
	flag.StringVar(&c.dir, "dir", "", "work directory (default: a temporary one, removed at the end)")
	flag.StringVar(&c.linkdr, "linkdr", "bin/linkdr", "linkdr binary")
	flag.StringVar(&c.redisServer, "redis-server", "redis-server", "redis-server binary")
	flag.StringVar(&c.redisCLI, "redis-cli", "redis-cli", "redis-cli binary")
	flag.StringVar(&c.age, "age", "age", "age binary")
	flag.StringVar(&c.ageKeygen, "age-keygen", "age-keygen", "age-keygen binary")
	flag.StringVar(&c.zstd, "zstd", "zstd", "zstd binary")
	flag.StringVar(&c.out, "json", "", "also write the results as JSON to this file")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "redis-bench:", err)
		os.Exit(1)
	}
}

type result struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	KeysPS  float64 `json:"keys_per_second"`
	Bytes   int64   `json:"bytes,omitempty"`
	// MaxRSS is the peak resident memory of the linkdr process, in bytes.
	MaxRSS int64   `json:"max_rss_bytes,omitempty"`
	Peer   string  `json:"peer,omitempty"`
	Ratio  float64 `json:"time_ratio_vs_peer,omitempty"`
}

func run(c config) error {
	ctx := context.Background()
	if c.dir == "" {
		d, err := os.MkdirTemp("", "linkdr-redis-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		c.dir = d
	}
	for _, p := range []*string{&c.linkdr, &c.redisServer, &c.redisCLI, &c.age, &c.ageKeygen, &c.zstd} {
		abs, err := exec.LookPath(*p)
		if err != nil {
			return err
		}
		*p, _ = filepath.Abs(abs)
	}
	src, err := startRedis(c, "src")
	if err != nil {
		return err
	}
	defer src.stop()
	dst, err := startRedis(c, "dst")
	if err != nil {
		return err
	}
	defer dst.stop()

	each := c.keys / 10
	spec := redistest.Spec{Strings: c.keys - 5*each - bigKeys(c), Lists: each, Hashes: each, Sets: each, ZSets: each, Streams: each,
		TTLFraction: 0.3, MinTTL: time.Hour, MaxTTL: 24 * time.Hour, Big: c.keys >= 100000, Seed: 42}
	start := time.Now()
	srcClient := goredis.NewClient(&goredis.Options{Addr: src.addr, Protocol: 2, DisableIdentity: true, ReadTimeout: time.Minute})
	if _, err := redistest.Fill(ctx, srcClient, spec); err != nil {
		return fmt.Errorf("fill the source: %w", err)
	}
	n := srcClient.DBSize(ctx).Val()
	mem, _ := srcClient.Info(ctx, "memory").Result()
	fmt.Printf("source: %d keys of every type (30%% with TTL), used_memory %s, filled in %v\n", n, infoField(mem, "used_memory_human"), time.Since(start).Round(time.Millisecond))
	if n != int64(spec.Total()) {
		return fmt.Errorf("source holds %d keys, want %d", n, spec.Total())
	}

	// A plan and a repository.
	keyOut, err := exec.Command(c.ageKeygen, "-o", filepath.Join(c.dir, "age.key")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("age-keygen: %v: %s", err, keyOut)
	}
	recipient := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(keyOut)), "Public key:"))
	plan := fmt.Sprintf(`version: 1
name: bench
encryption: {recipients: [%s], identity_file: ./age.key}
repositories: {primary: {url: ./repo}}
stores:
  cache:
    kind: redis
    url: redis://%s
    backups: [{method: resp, schedule: "*/15 * * * *"}, {method: rdb, schedule: "*/15 * * * *"}]
`, recipient, src.addr)
	if err := os.WriteFile(filepath.Join(c.dir, "linkdr.yaml"), []byte(plan), 0o644); err != nil {
		return err
	}
	if _, err := c.linkdrRun("repo", "init"); err != nil {
		return err
	}

	var results []result
	best := func(name string, prepare func() error, f func() error) (float64, error) {
		var times []float64
		for range c.runs {
			if prepare != nil {
				if err := prepare(); err != nil {
					return 0, fmt.Errorf("before %s: %w", name, err)
				}
			}
			t0 := time.Now()
			if err := f(); err != nil {
				return 0, fmt.Errorf("%s: %w", name, err)
			}
			times = append(times, time.Since(t0).Seconds())
			fmt.Fprintf(os.Stderr, "  %s: %.2f s\n", name, times[len(times)-1])
		}
		return slices.Min(times), nil
	}
	add := func(name string, secs float64, bytes int64) {
		results = append(results, result{Name: name, Seconds: secs, KeysPS: float64(n) / secs, Bytes: bytes})
		if strings.Contains(name, "linkdr") {
			results[len(results)-1].MaxRSS = c.maxRSS.Swap(0)
		}
	}

	// Backups.
	rdbFile := filepath.Join(c.dir, "peer.rdb")
	t, err := best("redis-cli --rdb", nil, func() error {
		return c.cmd(c.redisCLI, "-h", src.host(), "-p", src.port(), "--rdb", rdbFile)
	})
	if err != nil {
		return err
	}
	add("backup: redis-cli --rdb (peer)", t, size(rdbFile))
	var ids []string
	var lastJSON []byte
	backup := func(method string) func() error {
		return func() error {
			out, err := c.linkdrRun("backup", "cache", "--method", method, "-o", "json")
			lastJSON = out
			if err == nil {
				var ms []struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(out, &ms); err == nil && len(ms) == 1 {
					ids = append(ids, ms[0].ID)
				}
			}
			return err
		}
	}
	if t, err = best("linkdr backup --method rdb", nil, backup("rdb")); err != nil {
		return err
	}
	add("backup: linkdr rdb (encrypted, into the repository)", t, storedSize(lastJSON))
	if t, err = best("linkdr backup --method resp", nil, backup("resp")); err != nil {
		return err
	}
	add("backup: linkdr resp (encrypted, into the repository)", t, storedSize(lastJSON))
	respID := ids[len(ids)-1]

	// The resp artifact as plain RESP, the input of the peer restore.
	plain := filepath.Join(c.dir, "db0.resp")
	artifact := filepath.Join(c.dir, "repo", "backups", "cache", respID, "db0.resp.zst.age")
	if err := c.cmd("bash", "-c", fmt.Sprintf("set -o pipefail; %q -d -i %q %q | %q -d -q -o %q", c.age, filepath.Join(c.dir, "age.key"), artifact, c.zstd, plain)); err != nil {
		return err
	}

	// Restores, each into an emptied target, each checked.
	// FLUSHALL of a million keys takes seconds on a busy machine.
	dstClient := goredis.NewClient(&goredis.Options{Addr: dst.addr, Protocol: 2, DisableIdentity: true, ReadTimeout: 5 * time.Minute})
	flush := func() error { return dstClient.FlushAll(ctx).Err() }
	check := func(what string) error {
		if got := dstClient.DBSize(ctx).Val(); got != n {
			return fmt.Errorf("%s: target holds %d keys, want %d", what, got, n)
		}
		return nil
	}
	pipe := func(input string) func() error {
		return func() error {
			script := fmt.Sprintf("set -o pipefail; %s | %q -h %s -p %s --pipe", input, c.redisCLI, dst.host(), dst.port())
			if err := c.cmd("bash", "-c", script); err != nil {
				return err
			}
			return check("redis-cli --pipe")
		}
	}
	if t, err = best("redis-cli --pipe", flush, pipe(fmt.Sprintf("cat %q", plain))); err != nil {
		return err
	}
	add("restore: redis-cli --pipe of the plain stream (peer)", t, size(plain))
	peerRestore := t
	if t, err = best("by hand", flush, pipe(fmt.Sprintf("%q -d -i %q %q | %q -d -q", c.age, filepath.Join(c.dir, "age.key"), artifact, c.zstd))); err != nil {
		return err
	}
	add("restore: age -d | zstd -d | redis-cli --pipe (by hand)", t, 0)
	restore := func(jobs int, verify bool) func() error {
		return func() error {
			args := []string{"restore", "cache", "--backup", respID, "--target", "redis://" + dst.addr, "--yes", "--jobs", fmt.Sprint(jobs)}
			if !verify {
				args = append(args, "--verify=false")
			}
			if _, err := c.linkdrRun(args...); err != nil {
				return err
			}
			return check("linkdr restore")
		}
	}
	if t, err = best("linkdr restore --jobs 1", flush, restore(1, false)); err != nil {
		return err
	}
	add("restore: linkdr resp --jobs 1 --verify=false", t, 0)
	if t, err = best("linkdr restore", flush, restore(c.jobs, false)); err != nil {
		return err
	}
	add(fmt.Sprintf("restore: linkdr resp --jobs %d --verify=false", c.jobs), t, 0)
	if t, err = best("linkdr restore --verify", flush, restore(c.jobs, true)); err != nil {
		return err
	}
	add(fmt.Sprintf("restore: linkdr resp --jobs %d (verified: counts + ~1000 sampled keys)", c.jobs), t, 0)

	for i := range results {
		r := &results[i]
		switch {
		case strings.HasPrefix(r.Name, "backup: linkdr"):
			r.Peer, r.Ratio = "redis-cli --rdb", r.Seconds/results[0].Seconds
		case strings.HasPrefix(r.Name, "restore:") && !strings.Contains(r.Name, "(peer)"):
			r.Peer, r.Ratio = "redis-cli --pipe", r.Seconds/peerRestore
		}
	}
	fmt.Printf("\n%d keys, best of %d runs, %s\n\n", n, c.runs, time.Now().UTC().Format("2006-01-02 15:04Z"))
	fmt.Println("| operation | seconds | keys/s | size | time vs peer | linkdr peak RSS |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, r := range results {
		ratio := ""
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f× %s", r.Ratio, r.Peer)
		}
		sz := ""
		if r.Bytes > 0 {
			sz = fmt.Sprintf("%.1f MiB", float64(r.Bytes)/(1<<20))
		}
		rss := ""
		if r.MaxRSS > 0 {
			rss = fmt.Sprintf("%.0f MiB", float64(r.MaxRSS)/(1<<20))
		}
		fmt.Printf("| %s | %.2f | %.0f | %s | %s | %s |\n", strings.ReplaceAll(r.Name, "|", "\\|"), r.Seconds, r.KeysPS, sz, ratio, rss)
	}
	if c.out != "" {
		b, _ := json.MarshalIndent(map[string]any{"keys": n, "runs": c.runs, "results": results}, "", "  ")
		return os.WriteFile(c.out, b, 0o644)
	}
	return nil
}

// bigKeys is how many large values redistest adds (5 of each of 6 types).
func bigKeys(c config) int {
	if c.keys >= 100000 {
		return 30
	}
	return 0
}

func (c config) cmd(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v\n%s", filepath.Base(name), err, tail(out.String()))
	}
	return nil
}

func (c config) linkdrRun(args ...string) ([]byte, error) {
	cmd := exec.Command(c.linkdr, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LINKDR_CONFIG=linkdr.yaml")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss*1024 > c.maxRSS.Load() {
		c.maxRSS.Store(ru.Maxrss * 1024)
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("linkdr %s: %v\n%s", strings.Join(args, " "), err, tail(errb.String()))
	}
	return out.Bytes(), nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

func size(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func storedSize(manifests []byte) int64 {
	var ms []struct {
		Artifacts []struct {
			StoredSize int64 `json:"stored_size"`
		} `json:"artifacts"`
	}
	json.Unmarshal(manifests, &ms)
	var total int64
	for _, m := range ms {
		for _, a := range m.Artifacts {
			total += a.StoredSize
		}
	}
	return total
}

func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return "?"
}

// server is a redis-server run in the foreground as our child.
type server struct {
	addr string
	cmd  *exec.Cmd
}

func (s *server) host() string { h, _, _ := net.SplitHostPort(s.addr); return h }
func (s *server) port() string { _, p, _ := net.SplitHostPort(s.addr); return p }

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func startRedis(c config, name string) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	dir := filepath.Join(c.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(c.redisServer, "--port", port, "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "no",
		"--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{addr: "127.0.0.1:" + port, cmd: cmd}
	cl := goredis.NewClient(&goredis.Options{Addr: s.addr, Protocol: 2, DisableIdentity: true})
	defer cl.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if cl.Ping(context.Background()).Err() == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server %s did not answer within 30 s (see %s)", name, filepath.Join(dir, "log"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
