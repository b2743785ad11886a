package schedule

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Clock is the time source of a Loop.
type Clock interface {
	Now() time.Time
	// After fires once d has passed (at once when d <= 0).
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// After is time.After.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// ErrStopped: the loop is not running (this replica does not lead, or
// it is shutting down), so it starts nothing.
var ErrStopped = errors.New("scheduler is not running on this replica")

// Loop runs a Scheduler: it starts due jobs, each in its own goroutine,
// and sleeps until the next activation, a finished run or a trigger.
type Loop struct {
	S     *Scheduler
	Clock Clock
	// Do runs one job. Its context is the work context given to Run.
	Do func(ctx context.Context, r Run) error

	mu      sync.Mutex
	work    context.Context // nil while not running
	wake    chan struct{}
	running sync.WaitGroup
}

// Run starts jobs until ctx is done, then stops starting new ones at once
// and waits for the running ones. Running jobs get work as their context:
// the caller cancels it to abort them (grace period over, leadership
// lost).
func (l *Loop) Run(ctx, work context.Context) error {
	l.mu.Lock()
	l.work = work
	if l.wake == nil {
		l.wake = make(chan struct{}, 1)
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.work = nil
		l.mu.Unlock()
		l.running.Wait()
	}()
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := l.Clock.Now()
		for _, r := range l.S.Due(now) {
			l.start(work, r)
		}
		var timer <-chan time.Time
		if w := l.S.NextWake(); !w.IsZero() {
			timer = l.wakeAt(w, now)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer:
		case <-l.wake:
		}
	}
}

// untilClock is a Clock that can sleep until an instant. A fake clock
// set forward between the loop reading it and going to sleep would
// otherwise have the loop sleep from the new time, past the activation.
type untilClock interface {
	Until(t time.Time) <-chan time.Time
}

func (l *Loop) wakeAt(w, now time.Time) <-chan time.Time {
	if c, ok := l.Clock.(untilClock); ok {
		return c.Until(w)
	}
	return l.Clock.After(w.Sub(now))
}

func (l *Loop) start(work context.Context, r Run) <-chan error {
	res := make(chan error, 1)
	l.running.Add(1)
	go func() {
		defer l.running.Done()
		err := l.Do(work, r)
		l.S.Finish(r.Job.Name, l.Clock.Now())
		res <- err
		l.poke()
	}()
	return res
}

func (l *Loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Trigger runs a job now (see Scheduler.Trigger). The channel gets the
// run's result.
func (l *Loop) Trigger(name string) (Run, <-chan error, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.work == nil || l.work.Err() != nil {
		return Run{}, nil, ErrStopped
	}
	r, err := l.S.Trigger(name, l.Clock.Now())
	if err != nil {
		return Run{}, nil, err
	}
	return r, l.start(l.work, r), nil
}

// Request makes a job due now (see Scheduler.Request).
func (l *Loop) Request(name string) error {
	l.mu.Lock()
	running := l.work != nil
	l.mu.Unlock()
	if !running {
		return ErrStopped
	}
	if err := l.S.Request(name, l.Clock.Now()); err != nil {
		return err
	}
	l.poke()
	return nil
}
