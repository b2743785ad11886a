package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/store/postgres/wal"
	"github.com/linkapp/linkdr/internal/testenv"
)

// durableLSN reads, from the repository itself, how far WAL of timeline 1
// is stored: the end of the newest complete segment or partial.
func durableLSN(t *testing.T, repoDir string) wal.LSN {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoDir, "wal", "db", "00000001", "*.json"))
	var best wal.LSN
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // replaced while we looked
		}
		var in struct {
			EndLSN wal.LSN `json:"end_lsn"`
		}
		if json.Unmarshal(b, &in) == nil && in.EndLSN > best {
			best = in.EndLSN
		}
	}
	return best
}

type receiverProc struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

func (e *pitrEnv) startReceiver(t *testing.T) *receiverProc {
	t.Helper()
	p := &receiverProc{cmd: exec.Command(e.bin, "wal-receive", "db", "--status-every", "5s", "-vv")}
	p.cmd.Dir, p.cmd.Env = e.dir, e.env
	// As the server's OS user, like archive_command: the WAL it writes into
	// a local repository must be readable by restore_command.
	p.cmd.SysProcAttr = postgresCred(t)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.cmd.Wait()
		}
	})
	return p
}

// TestWALReceive: stream mode. The receiver streams WAL over a slot while
// pgbench loads the server; the lag between a commit and its WAL being
// durable in the repository is measured from the repository's side.
// Killing the receiver with SIGKILL and restarting it loses nothing: a
// --latest restore holds every committed row.
func TestWALReceive(t *testing.T) {
	t.Parallel()
	e := newPITREnv(t, "stream")
	pg := testenv.NewPostgres(t, testenv.PostgresOptions{})
	e.writePlan(pg.URL, "stream")
	e.must("repo", "init")
	repoDir := filepath.Join(e.dir, "repo")
	rcv := e.startReceiver(t)
	testenv.WaitFor(t, 30*time.Second, func() error {
		var active bool
		queryRow(t, pg.URL, `SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = 'linkdr_db'`, &active)
		if !active {
			return fmt.Errorf("slot not active yet; receiver says: %s", rcv.out.String())
		}
		return nil
	})
	e.must("backup", "db")
	out := e.must("pg", "replication", "db", "--max-retained", "1GiB", "-o", "json")
	if !strings.Contains(out, `"name": "linkdr_db"`) || !strings.Contains(out, `"active": true`) || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("pg replication: %s", out)
	}

	// Lag under pgbench: probes commit a row every 250 ms and wait until
	// the repository holds the WAL up to the flush position after it.
	pgbench := filepath.Join(testenv.PGBinDir(t), "pgbench")
	if out, err := exec.Command(pgbench, "-i", "-s", "2", "-q", pg.URL).CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	if err := sqlExec(pg.URL, `CREATE TABLE probe (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
	bench := exec.Command(pgbench, "-c", "2", "-j", "2", "-T", "15", "-n", pg.URL)
	var benchOut bytes.Buffer
	bench.Stdout, bench.Stderr = &benchOut, &benchOut
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	// One watcher samples the repository every 20 ms and records when each
	// position became durable.
	type seen struct {
		at  time.Time
		lsn wal.LSN
	}
	var mu sync.Mutex
	var history []seen
	watchDone := make(chan struct{})
	go func() {
		for {
			select {
			case <-watchDone:
				return
			case <-time.After(20 * time.Millisecond):
			}
			l := durableLSN(t, repoDir)
			mu.Lock()
			if len(history) == 0 || l > history[len(history)-1].lsn {
				history = append(history, seen{time.Now(), l})
			}
			mu.Unlock()
		}
	}()
	durableAt := func(target wal.LSN) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, h := range history {
			if h.lsn >= target {
				return h.at, true
			}
		}
		return time.Time{}, false
	}
	var lags []time.Duration
	var wg sync.WaitGroup
	deadline := time.Now().Add(14 * time.Second)
	for time.Now().Before(deadline) {
		var lsn string
		queryRow(t, pg.URL, `WITH i AS (INSERT INTO probe DEFAULT VALUES RETURNING id) SELECT pg_current_wal_flush_lsn()::text FROM i`, &lsn)
		committed := time.Now()
		target, err := wal.ParseLSN(lsn)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var at time.Time
			err := testenv.Poll(60*time.Second, func() error {
				var ok bool
				if at, ok = durableAt(target); !ok {
					return fmt.Errorf("not durable")
				}
				return nil
			})
			if err != nil {
				t.Errorf("WAL up to %s never became durable: %v", target, err)
				return
			}
			mu.Lock()
			lags = append(lags, at.Sub(committed))
			mu.Unlock()
		}()
		time.Sleep(250 * time.Millisecond) // probe cadence
	}
	wg.Wait()
	close(watchDone)
	if err := bench.Wait(); err != nil {
		t.Fatalf("pgbench: %v\n%s", err, benchOut.String())
	}
	if len(lags) < 20 {
		t.Fatalf("only %d lag samples", len(lags))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	p := func(q float64) time.Duration { return lags[int(q*float64(len(lags)-1))].Round(time.Millisecond) }
	tps := ""
	for _, l := range strings.Split(benchOut.String(), "\n") {
		if strings.HasPrefix(l, "tps") {
			tps = l
		}
	}
	t.Logf("receiver log:\n%s", lastLines(rcv.out.String(), 40))
	t.Logf("commit-to-repository lag under pgbench (%s), %d samples: p50 %s, p90 %s, p99 %s, max %s", tps, len(lags), p(0.5), p(0.9), p(0.99), lags[len(lags)-1].Round(time.Millisecond))

	// Kill the receiver in the middle of a write stream, restart it.
	w := startWriter(t, pg.URL)
	testenv.WaitFor(t, 30*time.Second, func() error {
		if w.count() < 300 {
			return fmt.Errorf("%d rows", w.count())
		}
		return nil
	})
	rcv.cmd.Process.Signal(syscall.SIGKILL)
	rcv.cmd.Wait()
	n := w.count()
	// With nobody consuming the slot, the check fails: the server keeps WAL for it.
	testenv.WaitFor(t, 30*time.Second, func() error {
		out, code := e.run("pg", "replication", "db")
		if code != ExitFailure || !strings.Contains(out, "slot linkdr_db is inactive") {
			return fmt.Errorf("exit %d: %s", code, out)
		}
		return nil
	})
	testenv.WaitFor(t, 30*time.Second, func() error {
		if w.count() < n+300 {
			return fmt.Errorf("%d rows", w.count())
		}
		return nil
	})
	rcv = e.startReceiver(t)
	testenv.WaitFor(t, 30*time.Second, func() error {
		if w.count() < n+600 {
			return fmt.Errorf("%d rows", w.count())
		}
		return nil
	})
	w.halt(t)
	var final string
	queryRow(t, pg.URL, `SELECT pg_current_wal_flush_lsn()::text`, &final)
	finalLSN, _ := wal.ParseLSN(final)
	testenv.WaitFor(t, 60*time.Second, func() error {
		if got := durableLSN(t, repoDir); got < finalLSN {
			return fmt.Errorf("durable %s, server at %s", got, finalLSN)
		}
		return nil
	})
	if out := e.must("wal", "verify", "db"); !strings.Contains(out, "gaps:         none") {
		t.Fatal(out)
	}
	r := e.restoreInto(t, "--latest")
	var rows int64
	queryRow(t, r.URL, `SELECT count(*) FROM ticks`, &rows)
	if rows != int64(w.count()) {
		t.Fatalf("restored %d rows; the writer committed %d (receiver killed after %d)", rows, w.count(), n)
	}
	t.Logf("receiver killed after row %d and restarted: all %d rows restored", n, rows)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
