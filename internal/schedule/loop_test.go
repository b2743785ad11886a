package schedule

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLoop drives the actor with a fake clock: it starts a job at once
// when nothing is known of it, sleeps exactly until the next activation,
// coalesces activations missed while the job runs into one catch-up,
// refuses a second concurrent run, and on shutdown starts nothing more
// but waits for the running job.
func TestLoop(t *testing.T) {
	start := at("2026-03-01 10:00:30")
	clock := NewFakeClock(start)
	job := Job{Name: "backup db logical", Group: "store db", Schedule: cron(t, "* * * * *")}
	started := make(chan Run)
	release := make(chan error)
	l := &Loop{
		S:     New(start, []Job{job}, nil, Options{}),
		Clock: clock,
		Do: func(ctx context.Context, r Run) error {
			started <- r
			return <-release
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx, context.Background()) }()

	if r := <-started; r.Reason != ReasonFirst || !r.Started.Equal(start) {
		t.Fatalf("first run %+v", r)
	}
	if _, _, err := l.Trigger(job.Name); !errors.Is(err, ErrBusy) {
		t.Fatalf("trigger while running: %v", err)
	}
	// Three activations pass while the job runs.
	clock.Advance(3 * time.Minute)
	release <- nil
	if r := <-started; r.Reason != ReasonCatchUp {
		t.Fatalf("after a long run: %+v, want one catch-up", r)
	}
	release <- errors.New("boom")
	if wake := <-clock.Slept; !wake.Equal(at("2026-03-01 10:04:00")) {
		t.Fatalf("loop sleeps until %s, want 10:04:00", wake)
	}
	clock.Set(at("2026-03-01 10:04:00"))
	if r := <-started; r.Reason != ReasonSchedule || !r.Nominal.Equal(at("2026-03-01 10:04:00")) {
		t.Fatalf("scheduled run %+v", r)
	}
	release <- nil
	<-clock.Slept

	// A manual run; its result comes back on the channel.
	r, res, err := l.Trigger(job.Name)
	if err != nil || r.Reason != ReasonManual {
		t.Fatalf("trigger: %+v %v", r, err)
	}
	<-started
	release <- errors.New("manual failure")
	if err := <-res; err == nil || err.Error() != "manual failure" {
		t.Fatalf("trigger result %v", err)
	}
	<-clock.Slept

	// Shutdown while a run is in progress.
	clock.Set(at("2026-03-01 10:05:00"))
	<-started
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned while a job was still running")
	default:
	}
	release <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Trigger(job.Name); !errors.Is(err, ErrStopped) {
		t.Fatalf("trigger after shutdown: %v", err)
	}
	clock.Advance(time.Hour)
	select {
	case r := <-started:
		t.Fatalf("%+v started after shutdown", r)
	default:
	}
}
