package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/plan"
)

func cron(t *testing.T, spec string) Schedule {
	t.Helper()
	c, err := plan.ParseCron(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func names(runs []Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.Job.Name+" ("+r.Reason+")")
	}
	return out
}

func wantRuns(t *testing.T, got []Run, want ...string) {
	t.Helper()
	g := names(got)
	if len(g) != len(want) {
		t.Fatalf("runs %q, want %q", g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("runs %q, want %q", g, want)
		}
	}
}

func TestCron(t *testing.T) {
	for _, tc := range []struct {
		spec       string
		last, now  string
		quiet, due string // nothing due at quiet; the job is due at due
		following  string // the activation after due
	}{
		{"*/15 * * * *", "2026-03-01 10:00:00", "2026-03-01 10:07:00", "2026-03-01 10:14:59", "2026-03-01 10:15:00", "2026-03-01 10:30:00"},
		{"@hourly", "2026-03-01 10:00:07", "2026-03-01 10:20:00", "2026-03-01 10:59:59", "2026-03-01 11:00:00", "2026-03-01 12:00:00"},
		{"@daily", "2026-03-01 00:00:02", "2026-03-01 13:00:00", "2026-03-01 23:59:59", "2026-03-02 00:00:00", "2026-03-03 00:00:00"},
		{"0 2 * * 1-5", "2026-03-06 02:00:00", "2026-03-06 09:00:00", "2026-03-08 23:00:00", "2026-03-09 02:00:00", "2026-03-10 02:00:00"},
		{"@every 3s", "2026-03-01 10:00:00", "2026-03-01 10:00:01", "2026-03-01 10:00:02", "2026-03-01 10:00:03", "2026-03-01 10:00:06"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			job := Job{Name: "backup db logical", Group: "store db", Schedule: cron(t, tc.spec)}
			s := New(at(tc.now), []Job{job}, map[string]time.Time{job.Name: at(tc.last)}, Options{})
			if got := s.NextWake(); !got.Equal(at(tc.due)) {
				t.Fatalf("next wake %s, want %s", got, tc.due)
			}
			wantRuns(t, s.Due(at(tc.now)))
			wantRuns(t, s.Due(at(tc.quiet)))
			runs := s.Due(at(tc.due))
			wantRuns(t, runs, "backup db logical (schedule)")
			if !runs[0].Nominal.Equal(at(tc.due)) {
				t.Fatalf("nominal %s", runs[0].Nominal)
			}
			s.Finish(job.Name, at(tc.due).Add(time.Second/2))
			if got := s.NextWake(); !got.Equal(at(tc.following)) {
				t.Fatalf("after the run: next wake %s, want %s", got, tc.following)
			}
		})
	}
}

func TestFirstRun(t *testing.T) {
	now := at("2026-03-01 10:07:00")
	s := New(now, []Job{{Name: "verify", Group: "verify", Schedule: cron(t, "@daily")}}, nil, Options{})
	wantRuns(t, s.Due(now), "verify (first run)")
	s.Finish("verify", now.Add(time.Minute))
	if got := s.NextWake(); !got.Equal(at("2026-03-02 00:00:00")) {
		t.Fatalf("next wake %s", got)
	}
}

// TestCatchUp: after downtime the missed activations are made up by one
// run at start, not one per missed activation.
func TestCatchUp(t *testing.T) {
	job := Job{Name: "backup db logical", Group: "store db", Schedule: cron(t, "@hourly")}
	now := at("2026-03-01 10:20:00")
	s := New(now, []Job{job}, map[string]time.Time{job.Name: at("2026-03-01 06:00:03")}, Options{Jitter: time.Minute})
	runs := s.Due(now)
	wantRuns(t, runs, "backup db logical (catch-up)")
	if !runs[0].Nominal.Equal(at("2026-03-01 07:00:00")) {
		t.Fatalf("nominal %s, want the first missed activation", runs[0].Nominal)
	}
	s.Finish(job.Name, now.Add(2*time.Minute))
	wantRuns(t, s.Due(now.Add(2*time.Minute)))
	if got := s.NextWake(); got.Before(at("2026-03-01 11:00:00")) || !got.Before(at("2026-03-01 11:01:00")) {
		t.Fatalf("next wake %s, want 11:00 plus jitter", got)
	}
}

// TestNoOverlap: a job never runs twice at once, nor alongside another
// job of its group; activations missed while busy become one catch-up.
func TestNoOverlap(t *testing.T) {
	logical := Job{Name: "backup db logical", Group: "store db", Schedule: cron(t, "*/10 * * * *")}
	physical := Job{Name: "backup db physical", Group: "store db", Schedule: cron(t, "*/10 * * * *")}
	other := Job{Name: "backup cache resp", Group: "store cache", Schedule: cron(t, "*/10 * * * *")}
	start := at("2026-03-01 10:00:00")
	last := map[string]time.Time{logical.Name: start, physical.Name: start, other.Name: start}
	s := New(start.Add(time.Second), []Job{logical, physical, other}, last, Options{})

	t10 := at("2026-03-01 10:10:00")
	wantRuns(t, s.Due(t10), "backup db logical (schedule)", "backup cache resp (schedule)")
	if _, err := s.Trigger(physical.Name, t10); !errors.Is(err, ErrBusy) {
		t.Fatalf("trigger while the group is busy: %v", err)
	}
	if _, err := s.Trigger(logical.Name, t10); !errors.Is(err, ErrBusy) {
		t.Fatalf("trigger while running: %v", err)
	}
	s.Finish(other.Name, t10.Add(time.Minute))
	// logical runs for 35 minutes, through three of its activations.
	for _, m := range []int{11, 20, 30, 40} {
		now := t10.Add(time.Duration(m-10) * time.Minute)
		runs := s.Due(now)
		for _, r := range runs {
			if r.Job.Group == "store db" {
				t.Fatalf("%s started at 10:%d while logical runs", r.Job.Name, m)
			}
			s.Finish(r.Job.Name, now)
		}
	}
	if got := s.Running(); len(got) != 1 || got[0] != logical.Name {
		t.Fatalf("running %q", got)
	}
	fin := at("2026-03-01 10:45:00")
	s.Finish(logical.Name, fin)
	// physical was due since 10:10: it goes first (order of the jobs is
	// the plan's), logical's missed 10:20/10:30/10:40 make one catch-up.
	wantRuns(t, s.Due(fin), "backup db physical (schedule)")
	wantRuns(t, s.Due(fin.Add(time.Minute)))
	s.Finish(physical.Name, fin.Add(time.Minute))
	wantRuns(t, s.Due(fin.Add(time.Minute)), "backup db logical (catch-up)")
	// physical's start at 10:45 already covered its missed activations.
	s.Finish(logical.Name, fin.Add(2*time.Minute))
	wantRuns(t, s.Due(fin.Add(2*time.Minute)))
	if got := s.NextWake(); !got.Equal(at("2026-03-01 10:50:00")) {
		t.Fatalf("next wake %s", got)
	}
}

func TestManualRunKeepsSchedule(t *testing.T) {
	job := Job{Name: "backup db logical", Group: "store db", Schedule: cron(t, "@hourly")}
	now := at("2026-03-01 10:20:00")
	s := New(now, []Job{job}, map[string]time.Time{job.Name: at("2026-03-01 10:00:00")}, Options{})
	r, err := s.Trigger(job.Name, now)
	if err != nil || r.Reason != ReasonManual {
		t.Fatalf("%v %v", r, err)
	}
	s.Finish(job.Name, now.Add(time.Minute))
	if got := s.NextWake(); !got.Equal(at("2026-03-01 11:00:00")) {
		t.Fatalf("next wake %s", got)
	}
	if _, err := s.Trigger("nope", now); !errors.Is(err, ErrUnknownJob) {
		t.Fatal(err)
	}
}

// TestJitterBounds: every scheduled start lies in [activation,
// activation+jitter), the extremes are reachable, catch-ups have none.
func TestJitterBounds(t *testing.T) {
	job := Job{Name: "backup db logical", Group: "store db", Schedule: cron(t, "*/5 * * * *")}
	const jitter = 90 * time.Second
	for _, tc := range []struct {
		name string
		rand func(int64) int64
	}{
		{"random", nil},
		{"lowest", func(int64) int64 { return 0 }},
		{"highest", func(n int64) int64 { return n - 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := at("2026-03-01 10:00:01")
			s := New(now, []Job{job}, map[string]time.Time{job.Name: at("2026-03-01 10:00:00")}, Options{Jitter: jitter, Rand: tc.rand})
			seen := map[time.Duration]bool{}
			for i := 0; i < 500; i++ {
				wake := s.NextWake()
				nominal := job.Schedule.Next(now)
				off := wake.Sub(nominal)
				if off < 0 || off >= jitter {
					t.Fatalf("activation %s starts at %s: offset %s outside [0, %s)", nominal, wake, off, jitter)
				}
				seen[off.Truncate(10*time.Second)] = true
				wantRuns(t, s.Due(wake.Add(-time.Nanosecond)))
				runs := s.Due(wake)
				wantRuns(t, runs, "backup db logical (schedule)")
				if !runs[0].Nominal.Equal(nominal) {
					t.Fatalf("nominal %s, want %s", runs[0].Nominal, nominal)
				}
				now = wake.Add(time.Second)
				s.Finish(job.Name, now)
			}
			switch tc.name {
			case "random":
				if len(seen) < 8 {
					t.Fatalf("500 jittered starts fell in only %d of 9 ten-second buckets", len(seen))
				}
			case "highest":
				if !seen[80*time.Second] {
					t.Fatalf("highest jitter never seen: %v", seen)
				}
			}
		})
	}
	t.Run("catch-up has none", func(t *testing.T) {
		now := at("2026-03-01 12:00:30")
		s := New(now, []Job{job}, map[string]time.Time{job.Name: at("2026-03-01 10:00:00")}, Options{Jitter: jitter, Rand: func(n int64) int64 { return n - 1 }})
		if got := s.NextWake(); !got.Equal(now) {
			t.Fatalf("catch-up at %s, want %s", got, now)
		}
	})
}

// TestRequest: a requested run starts at once, or once right after the
// running one however often it was requested meanwhile.
func TestRequest(t *testing.T) {
	job := Job{Name: "copy dr", Group: "copy dr", Schedule: cron(t, "@every 1m")}
	now := at("2026-03-01 10:00:00")
	s := New(now, []Job{job}, map[string]time.Time{job.Name: now}, Options{})
	wantRuns(t, s.Due(now.Add(time.Second)))
	if err := s.Request(job.Name, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, s.Due(now.Add(time.Second)), "copy dr (requested)")
	s.Request(job.Name, now.Add(2*time.Second))
	s.Request(job.Name, now.Add(3*time.Second))
	wantRuns(t, s.Due(now.Add(4*time.Second)))
	s.Finish(job.Name, now.Add(5*time.Second))
	wantRuns(t, s.Due(now.Add(5*time.Second)), "copy dr (requested)")
	s.Finish(job.Name, now.Add(6*time.Second))
	wantRuns(t, s.Due(now.Add(6*time.Second)))
	if got := s.NextWake(); !got.Equal(now.Add(65 * time.Second)) {
		t.Fatalf("next wake %s", got)
	}
	if err := s.Request("nope", now); !errors.Is(err, ErrUnknownJob) {
		t.Fatal(err)
	}
}

// monthly is the 8th of every month at 10:00, like a drill's slot.
type monthly struct{}

func (monthly) Next(t time.Time) time.Time {
	n := time.Date(t.Year(), t.Month(), 8, 10, 0, 0, 0, time.UTC)
	if !n.After(t) {
		n = n.AddDate(0, 1, 0)
	}
	return n
}

func TestCatchUpWindow(t *testing.T) {
	job := Job{Name: "drill monthly", Group: "drill", Schedule: monthly{}, CatchUp: 24 * time.Hour}
	for _, tc := range []struct {
		name      string
		last, now string
		// want: the reason and nominal of the next run, and the
		// activation reported skipped ("" = none).
		reason, nominal, skipped string
	}{
		{"ran this month", "2026-03-08 10:00:03", "2026-03-08 12:00:00", ReasonSchedule, "2026-04-08 10:00:00", ""},
		{"slot missed within catch_up", "2026-02-08 10:00:01", "2026-03-09 09:59:00", ReasonCatchUp, "2026-03-08 10:00:00", ""},
		{"slot missed by more than catch_up", "2026-02-08 10:00:01", "2026-03-09 10:00:01", ReasonSchedule, "2026-04-08 10:00:00", "2026-03-08 10:00:00"},
		{"months missed: only the latest slot counts", "2025-11-08 10:00:01", "2026-03-08 11:00:00", ReasonCatchUp, "2026-03-08 10:00:00", ""},
		{"months missed, the latest too", "2025-11-08 10:00:01", "2026-03-20 11:00:00", ReasonSchedule, "2026-04-08 10:00:00", "2025-12-08 10:00:00"},
		{"never ran, slot within catch_up", "", "2026-03-08 20:00:00", ReasonCatchUp, "2026-03-08 10:00:00", ""},
		{"never ran, slot long past: no run at start", "", "2026-03-20 11:00:00", ReasonSchedule, "2026-04-08 10:00:00", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last := map[string]time.Time{}
			if tc.last != "" {
				last[job.Name] = at(tc.last)
			}
			var skipped []string
			s := New(at(tc.now), []Job{job}, last, Options{Skipped: func(j Job, missed, next time.Time) {
				skipped = append(skipped, missed.Format("2006-01-02 15:04:05"))
				if !next.Equal(at("2026-04-08 10:00:00")) {
					t.Errorf("skipped: next %s", next)
				}
			}})
			st := s.Status()[0]
			if st.NextReason != tc.reason {
				t.Fatalf("next reason %q, want %q", st.NextReason, tc.reason)
			}
			if tc.skipped == "" && len(skipped) > 0 || tc.skipped != "" && (len(skipped) != 1 || skipped[0] != tc.skipped) {
				t.Fatalf("skipped %q, want %q", skipped, tc.skipped)
			}
			if tc.reason == ReasonCatchUp {
				runs := s.Due(at(tc.now))
				wantRuns(t, runs, "drill monthly (catch-up)")
				if !runs[0].Nominal.Equal(at(tc.nominal)) {
					t.Fatalf("nominal %s, want %s", runs[0].Nominal, tc.nominal)
				}
				return
			}
			if !st.Next.Equal(at(tc.nominal)) {
				t.Fatalf("next %s, want %s", st.Next, tc.nominal)
			}
			wantRuns(t, s.Due(at(tc.now)))
		})
	}
}

// TestCatchUpWhileRunning: a slot that passes while the daemon sleeps
// past it (or the group is busy) by more than CatchUp is skipped, not run
// late; one within CatchUp runs late.
func TestCatchUpWhileRunning(t *testing.T) {
	a := Job{Name: "drill a", Group: "drill", Schedule: monthly{}, CatchUp: 24 * time.Hour}
	b := Job{Name: "drill b", Group: "drill", Schedule: monthly{}, CatchUp: 2 * time.Hour}
	last := map[string]time.Time{a.Name: at("2026-02-08 10:00:00"), b.Name: at("2026-02-08 10:00:00")}
	var skipped []string
	s := New(at("2026-03-01 00:00:00"), []Job{a, b}, last, Options{Skipped: func(j Job, missed, next time.Time) {
		skipped = append(skipped, j.Name+" "+missed.Format("2006-01-02 15:04"))
	}})
	wantRuns(t, s.Due(at("2026-03-08 10:00:00")), "drill a (schedule)")
	// a runs for three hours: b's slot is then more than 2h old.
	s.Finish(a.Name, at("2026-03-08 13:00:00"))
	wantRuns(t, s.Due(at("2026-03-08 13:00:00")))
	if len(skipped) != 1 || skipped[0] != "drill b 2026-03-08 10:00" {
		t.Fatalf("skipped %q", skipped)
	}
	// The daemon slept through a's April slot; 20h late is within 24h.
	wantRuns(t, s.Due(at("2026-04-09 06:00:00")), "drill a (schedule)")
	s.Finish(a.Name, at("2026-04-09 06:10:00"))
	// May: asleep for 25h past the slot.
	if runs := s.Due(at("2026-05-09 11:00:00")); len(runs) != 0 {
		t.Fatalf("runs %q after 25h", names(runs))
	}
	if want := []string{"drill b 2026-03-08 10:00", "drill b 2026-04-08 10:00", "drill a 2026-05-08 10:00", "drill b 2026-05-08 10:00"}; strings.Join(skipped, ",") != strings.Join(want, ",") {
		t.Fatalf("skipped %q, want %q", skipped, want)
	}
	// Manual runs are never too late.
	if _, err := s.Trigger(a.Name, at("2026-05-09 11:00:00")); err != nil {
		t.Fatal(err)
	}
}
