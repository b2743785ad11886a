package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkapp/linkdr/internal/daemon"
	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/leader"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/schedule"
	"github.com/linkapp/linkdr/internal/testenv"
)

// lockedBuffer collects a daemon's log lines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// drillDaemon is an in-process `linkdr serve` on a fake clock, wired to
// run drills as serve does.
type drillDaemon struct {
	d    *daemon.Daemon
	logs *lockedBuffer
	stop func()
}

func startDrillDaemon(t *testing.T, planPath string, clock *schedule.FakeClock) *drillDaemon {
	t.Helper()
	g := &globals{config: planPath, output: "table", logFormat: "json", stdout: io.Discard, stderr: io.Discard}
	g.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	r, err := g.runner()
	if err != nil {
		t.Fatal(err)
	}
	r.Progress = nil
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	r.Log = log
	d := daemon.New(daemon.Config{Runner: r, Elector: leader.NewNone("test"), Log: log, Clock: clock,
		Drill: serveDrill(g, r, log, clock.Now)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("daemon: %v", err)
				}
			case <-time.After(2 * time.Minute):
				t.Errorf("daemon did not stop")
			}
			if t.Failed() {
				t.Logf("---- daemon log ----\n%s", tail(logs.String(), 40))
			}
		})
	}
	t.Cleanup(stop)
	// The leader schedules once it has read the last runs.
	testenv.WaitFor(t, time.Minute, func() error {
		for _, j := range d.Jobs() {
			if j.Name == "drill monthly-restore" {
				return nil
			}
		}
		return fmt.Errorf("not scheduling yet")
	})
	return &drillDaemon{d: d, logs: logs, stop: stop}
}

func (dd *drillDaemon) job(t *testing.T, name string) schedule.JobStatus {
	t.Helper()
	for _, j := range dd.d.Jobs() {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("no job %q in %+v", name, dd.d.Jobs())
	return schedule.JobStatus{}
}

// drillRun waits for the daemon's first finished run of the drill.
func (dd *drillDaemon) drillRun(t *testing.T) daemon.RunRecord {
	t.Helper()
	var rec daemon.RunRecord
	testenv.WaitFor(t, 2*time.Minute, func() error {
		for _, r := range dd.d.Runs() {
			if r.Job == "drill monthly-restore" {
				rec = r
				return nil
			}
		}
		return fmt.Errorf("no drill run yet (runs: %+v)", dd.d.Runs())
	})
	return rec
}

func (dd *drillDaemon) drillRuns() int {
	n := 0
	for _, r := range dd.d.Runs() {
		if strings.HasPrefix(r.Job, "drill ") {
			n++
		}
	}
	return n
}

// sample is the value of a metric with label drill=monthly-restore.
func sample(t *testing.T, reg *prometheus.Registry, name string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "drill" && l.GetValue() == "monthly-restore" {
					if c := m.GetCounter(); c != nil {
						return c.GetValue(), true
					}
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestServeScheduledDrill: the leader runs a monthly restore drill of the
// plan (week 2, Tuesday 10:00) at its slot against real PostgreSQL; the
// report lands in the repository with trigger schedule and the run's
// record names it; the drill gauges show it, on a restarted daemon too,
// which does not repeat the drill; a slot missed by more than catch_up
// is skipped with a log line, one missed by less is made up.
func TestServeScheduledDrill(t *testing.T) {
	t.Parallel()
	db, dbName := servedDatabase(t, "serve_drill")
	u, _ := url.Parse(db)
	u.Path = "/postgres"
	dir := t.TempDir()
	repoURL := "file://" + filepath.Join(dir, "repo")
	planPath := servePlan(t, dir, fmt.Sprintf(`repositories:
  primary: {url: %q}
stores:
  users-db:
    kind: postgres
    url: %q
    databases: [%s]
    rpo: 60d
    backups: [{method: logical}]
drills:
  monthly-restore:
    kind: restore
    title: Monthly restore drill
    week: 2
    weekday: tuesday
    at: "10:00"
serve:
  token_file: serve.token
  grace_period: 1m
  refresh_interval: 1s
  leader_election: {mode: none}
`, repoURL, u.String(), dbName), repoURL)
	// The drill restores the newest backup: take one by hand (the store
	// has no backup schedule).
	g := &globals{config: planPath, output: "json", stdout: io.Discard, stderr: io.Discard}
	g.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	r, err := g.runner()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backup(context.Background(), "users-db", "logical"); err != nil {
		t.Fatal(err)
	}
	reports := func() []*drillreport.Report {
		t.Helper()
		rp, err := r.OpenRepo(context.Background(), plan.DefaultRepository)
		if err != nil {
			t.Fatal(err)
		}
		defer rp.Close()
		all, err := drillreport.List(context.Background(), rp.Bucket())
		if err != nil {
			t.Fatal(err)
		}
		return all
	}

	// December 2026: the 2nd Tuesday is the 8th.
	slot := mustTime("2026-12-08T10:00:00Z")
	clock := schedule.NewFakeClock(slot.Add(-time.Hour))
	d1 := startDrillDaemon(t, planPath, clock)
	if j := d1.job(t, "drill monthly-restore"); !j.Next.Equal(slot) || j.NextReason != schedule.ReasonSchedule || j.Group != "drill" {
		t.Fatalf("drill job %+v, want next %s (schedule) in group drill", j, slot)
	}
	if v, ok := sample(t, d1.d.Metrics.Registry, "linkdr_drill_scheduled"); !ok || v != 1 {
		t.Fatalf("linkdr_drill_scheduled %v %v", v, ok)
	}
	if _, ok := sample(t, d1.d.Metrics.Registry, "linkdr_drill_last_run_timestamp_seconds"); ok {
		t.Fatal("a drill that never ran has a last run")
	}
	clock.Set(slot)
	rec := d1.drillRun(t)
	if rec.Result != "ok" || rec.Reason != schedule.ReasonSchedule || !rec.Started.Equal(slot) || rec.Detail == "" {
		t.Fatalf("drill run %+v, want ok, reason schedule, started %s, the report id in detail", rec, slot)
	}
	all := reports()
	if len(all) != 1 {
		t.Fatalf("%d drill reports, want 1", len(all))
	}
	rep := all[0]
	if rep.ID != rec.Detail || rep.Drill != "monthly-restore" || rep.Trigger != "schedule" || !rep.OK || !rep.Started.Equal(slot) || len(rep.Stores) != 1 {
		t.Fatalf("report %s: drill %q trigger %q ok %v started %s stores %d; want %s, monthly-restore, schedule, ok, %s, 1",
			rep.ID, rep.Drill, rep.Trigger, rep.OK, rep.Started, len(rep.Stores), rec.Detail, slot)
	}
	st := rep.Stores[0]
	for _, m := range []struct {
		name string
		want float64
	}{
		{"linkdr_drill_last_run_timestamp_seconds", unixSeconds(slot)},
		{"linkdr_drill_last_success_timestamp_seconds", unixSeconds(slot)},
		{"linkdr_drill_last_result", 1},
		{"linkdr_drill_rto_seconds", st.RTOSeconds},
		{"linkdr_drill_rpo_seconds", st.RPOSeconds},
		{"linkdr_drill_rto_objective_seconds", (4 * time.Hour).Seconds()},
	} {
		v, ok := sample(t, d1.d.Metrics.Registry, m.name)
		// The report's figures went through JSON, the gauges did not:
		// equal up to the last bits of a float64.
		if !ok || math.Abs(v-m.want) > 1e-9*math.Max(1, math.Abs(m.want)) {
			t.Errorf("%s = %v (present %v), want %v", m.name, v, ok, m.want)
		}
	}
	if st.RTOSeconds <= 0 || st.RPOSeconds <= 0 {
		t.Errorf("measured RTO %v RPO %v, want both > 0", st.RTOSeconds, st.RPOSeconds)
	}
	if v, _ := sample(t, d1.d.Metrics.Registry, "linkdr_drill_failures_total"); v != 0 {
		t.Errorf("linkdr_drill_failures_total = %v", v)
	}
	d1.stop()

	// Restarted half an hour later: the slot is within catch_up but the
	// report says it ran, so the next run is January's slot; a fresh
	// daemon shows the drill gauges from the report.
	clock.Set(slot.Add(30 * time.Minute))
	d2 := startDrillDaemon(t, planPath, clock)
	jan := mustTime("2027-01-12T10:00:00Z")
	if j := d2.job(t, "drill monthly-restore"); !j.Next.Equal(jan) || j.NextReason != schedule.ReasonSchedule || !j.LastStart.Equal(slot) {
		t.Fatalf("after restart: drill job %+v, want next %s (schedule), last start %s", j, jan, slot)
	}
	if v, ok := sample(t, d2.d.Metrics.Registry, "linkdr_drill_last_run_timestamp_seconds"); !ok || v != unixSeconds(slot) {
		t.Fatalf("restarted daemon: linkdr_drill_last_run_timestamp_seconds = %v (present %v), want %v", v, ok, unixSeconds(slot))
	}
	d2.stop()
	if n := d2.drillRuns(); n != 0 || len(reports()) != 1 {
		t.Fatalf("the restarted daemon ran %d drills; %d reports", n, len(reports()))
	}

	// No replica ran from before January's slot until 25h after it:
	// longer than catch_up (24h), so the slot is skipped, not made up.
	clock.Set(jan.Add(25 * time.Hour))
	d3 := startDrillDaemon(t, planPath, clock)
	feb := mustTime("2027-02-09T10:00:00Z")
	if j := d3.job(t, "drill monthly-restore"); !j.Next.Equal(feb) || j.NextReason != schedule.ReasonSchedule {
		t.Fatalf("slot missed by 25h: drill job %+v, want next %s (schedule)", j, feb)
	}
	if logs := d3.logs.String(); !strings.Contains(logs, `"msg":"missed activation skipped: more than catch_up late","job":"drill monthly-restore","missed":"2027-01-12T10:00:00Z"`) {
		t.Fatalf("no log line for the skipped slot:\n%s", logs)
	}
	d3.stop()
	if n := d3.drillRuns(); n != 0 || len(reports()) != 1 {
		t.Fatalf("a slot older than catch_up was made up: %d runs, %d reports", n, len(reports()))
	}

	// February's slot missed by two hours: made up at start.
	clock.Set(feb.Add(2 * time.Hour))
	d4 := startDrillDaemon(t, planPath, clock)
	rec = d4.drillRun(t)
	if rec.Result != "ok" || rec.Reason != schedule.ReasonCatchUp {
		t.Fatalf("catch-up run %+v, want ok (catch-up)", rec)
	}
	if all := reports(); len(all) != 2 || all[1].Trigger != "schedule" || !all[1].Started.Equal(feb.Add(2*time.Hour)) {
		t.Fatalf("%d reports after the catch-up", len(all))
	}
	if v, ok := sample(t, d4.d.Metrics.Registry, "linkdr_drill_last_run_timestamp_seconds"); !ok || v != unixSeconds(feb.Add(2*time.Hour)) {
		t.Fatalf("after the catch-up: linkdr_drill_last_run_timestamp_seconds = %v", v)
	}
}
