package schedule

import (
	"sync"
	"time"
)

// FakeClock is a Clock for tests: time moves only when Advance is called.
// Every After call is reported on Slept, so a test knows when the code
// under test is waiting and for how long — no sleeping needed.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	// Slept receives the wake-up time of every After call.
	Slept chan time.Time
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewFakeClock starts at now.
func NewFakeClock(now time.Time) *FakeClock {
	return &FakeClock{now: now, Slept: make(chan time.Time, 1000)}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After fires when Advance reaches now+d.
func (c *FakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until(c.now.Add(d))
}

// Until fires when the time reaches t (at once if it has). The Loop
// sleeps with it, so a test may set the time at any moment without the
// loop oversleeping an activation.
func (c *FakeClock) Until(t time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until(t)
}

func (c *FakeClock) until(at time.Time) <-chan time.Time {
	ch := make(chan time.Time, 1)
	if !at.After(c.now) {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, fakeWaiter{at: at, ch: ch})
	}
	c.Slept <- at
	return ch
}

// Advance moves time forward and fires the timers that are due.
func (c *FakeClock) Advance(d time.Duration) {
	c.Set(c.Now().Add(d))
}

// Set moves time to t (never backwards) and fires the timers that are due.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}
