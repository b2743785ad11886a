package schedule

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// Schedule yields activation times; plan.Cron is one.
type Schedule interface {
	Next(after time.Time) time.Time
}

// Job is something to run on a schedule.
type Job struct {
	// Name is unique, e.g. "backup users-db logical".
	Name string
	// Group: jobs of one group never run at the same time (every backup
	// method of one store shares the group "store users-db").
	Group string
	// Schedule of the job; nil means manual runs only.
	Schedule Schedule
	// CatchUp, when set, is how late a missed activation may still start:
	// an activation missed by longer (no replica ran, or the group was
	// busy) is skipped — reported to Options.Skipped — and the job waits
	// for its next one. A job with CatchUp and no known last run does not
	// run at once either: only an activation within CatchUp is made up.
	// Zero: every missed activation is made up (by one run).
	CatchUp time.Duration
}

// Reasons a run starts.
const (
	ReasonSchedule = "schedule"
	// ReasonCatchUp: one or more activations passed while the daemon was
	// down or the job's group was busy. They are made up by one run.
	ReasonCatchUp = "catch-up"
	// ReasonFirst: nothing is known of an earlier run.
	ReasonFirst  = "first run"
	ReasonManual = "manual"
	// ReasonRequested: something asked for a run soon (a finished backup
	// asks for a copy pass); it starts when the job's group is free.
	ReasonRequested = "requested"
)

// ErrBusy: the job, or another of its group, is running.
var ErrBusy = errors.New("already running")

// ErrUnknownJob: no job has that name.
var ErrUnknownJob = errors.New("unknown job")

// Run is one start of a job.
type Run struct {
	Job     Job
	Reason  string
	Started time.Time
	// Nominal is the activation the run belongs to (zero for manual runs).
	Nominal time.Time
}

// Options tune a Scheduler.
type Options struct {
	// Jitter delays each scheduled activation by a random time in
	// [0, Jitter). Catch-up and manual runs are not delayed.
	Jitter time.Duration
	// Rand returns a number in [0, n); nil uses math/rand/v2.
	Rand func(n int64) int64
	// Skipped hears of every activation of a job with CatchUp that was
	// missed by more than CatchUp and will not be made up, and of the
	// activation the job waits for instead. It is called with the
	// Scheduler's lock held: it must not call the Scheduler.
	Skipped func(j Job, missed, next time.Time)
}

// Scheduler decides which jobs start when. It reads no clock and starts
// no goroutine: callers pass the time, so it is tested with plain values.
// It is safe for concurrent use.
type Scheduler struct {
	mu    sync.Mutex
	opts  Options
	jobs  []*jobState
	named map[string]*jobState
	busy  map[string]string // group → running job
}

type jobState struct {
	job Job
	// nominal is the activation the next scheduled run belongs to and
	// next when it starts (nominal plus jitter, or now for a catch-up).
	nominal, next time.Time
	reason        string
	running       bool
	started       time.Time
	lastStart     time.Time
	lastFinish    time.Time
}

// New schedules jobs as of now. last holds when each job last started
// (from the repository: the newest backup, the last verification…); a
// job whose activation after that is already past runs at once, a single
// time however many activations were missed, and so does a job with no
// known last run.
func New(now time.Time, jobs []Job, last map[string]time.Time, opts Options) *Scheduler {
	if opts.Rand == nil {
		opts.Rand = defaultRand
	}
	s := &Scheduler{opts: opts, named: map[string]*jobState{}, busy: map[string]string{}}
	for _, j := range jobs {
		st := &jobState{job: j, lastStart: last[j.Name]}
		switch {
		case j.Schedule == nil:
			// manual only
		case j.CatchUp > 0:
			s.resume(st, now)
		case st.lastStart.IsZero():
			st.nominal, st.next, st.reason = now, now, ReasonFirst
		default:
			n := j.Schedule.Next(st.lastStart)
			if n.IsZero() || n.After(now) {
				s.plan(st, n)
			} else {
				st.nominal, st.next, st.reason = n, now, ReasonCatchUp
			}
		}
		s.jobs = append(s.jobs, st)
		s.named[j.Name] = st
	}
	return s
}

// resume plans a job with CatchUp at start: the latest activation within
// CatchUp before now that came after the last run is made up; an older
// missed one is skipped.
func (s *Scheduler) resume(st *jobState, now time.Time) {
	j := st.job
	from := now.Add(-j.CatchUp)
	if st.lastStart.After(from) {
		from = st.lastStart
	}
	var missed time.Time
	for n := j.Schedule.Next(from); !n.IsZero() && !n.After(now); n = j.Schedule.Next(n) {
		missed = n
	}
	if !missed.IsZero() {
		st.nominal, st.next, st.reason = missed, now, ReasonCatchUp
		return
	}
	s.plan(st, j.Schedule.Next(now))
	if !st.lastStart.IsZero() {
		if n := j.Schedule.Next(st.lastStart); !n.IsZero() && !n.After(now) {
			s.skipped(st, n)
		}
	}
}

// tooLate says whether a due scheduled run of a job with CatchUp is
// later than CatchUp after its activation, and if so moves it to the
// next activation. Requested runs are never too late.
func (s *Scheduler) tooLate(st *jobState, now time.Time) bool {
	j := st.job
	if j.CatchUp <= 0 || j.Schedule == nil || (st.reason != ReasonSchedule && st.reason != ReasonCatchUp) || now.Sub(st.nominal) <= j.CatchUp {
		return false
	}
	missed := st.nominal
	s.plan(st, j.Schedule.Next(now))
	s.skipped(st, missed)
	return true
}

func (s *Scheduler) skipped(st *jobState, missed time.Time) {
	if s.opts.Skipped != nil {
		s.opts.Skipped(st.job, missed, st.nominal)
	}
}

// plan sets the next scheduled activation n, with jitter.
func (s *Scheduler) plan(st *jobState, n time.Time) {
	st.nominal, st.next, st.reason = n, n, ReasonSchedule
	if n.IsZero() {
		return
	}
	if s.opts.Jitter > 0 {
		st.next = n.Add(time.Duration(s.opts.Rand(int64(s.opts.Jitter))))
	}
}

// Due starts and returns the jobs whose time has come and whose group is
// free, longest waiting first (then in the order they were given). A due
// job whose group is busy stays due and starts, once, when the group
// frees.
func (s *Scheduler) Due(now time.Time) []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*jobState
	for _, st := range s.jobs {
		if !st.running && !st.next.IsZero() && !st.next.After(now) && !s.tooLate(st, now) {
			due = append(due, st)
		}
	}
	// The job waiting longest goes first when a group frees.
	sort.SliceStable(due, func(i, j int) bool { return due[i].next.Before(due[j].next) })
	var out []Run
	for _, st := range due {
		if _, busy := s.busy[st.job.Group]; busy {
			continue
		}
		run := Run{Job: st.job, Reason: st.reason, Started: now, Nominal: st.nominal}
		s.start(st, now)
		// The next activation is the first one after now: activations
		// that pass while this run is busy are made up by one run after it.
		var n time.Time
		if st.job.Schedule != nil {
			n = st.job.Schedule.Next(now)
		}
		s.plan(st, n)
		out = append(out, run)
	}
	return out
}

func (s *Scheduler) start(st *jobState, now time.Time) {
	st.running, st.started, st.lastStart = true, now, now
	s.busy[st.job.Group] = st.job.Name
}

// Trigger starts a job now, outside its schedule. It does not move the
// job's next scheduled run.
func (s *Scheduler) Trigger(name string, now time.Time) (Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.named[name]
	if !ok {
		return Run{}, fmt.Errorf("%w %q", ErrUnknownJob, name)
	}
	if other, busy := s.busy[st.job.Group]; busy {
		if other == name {
			return Run{}, fmt.Errorf("%s: %w (since %s)", name, ErrBusy, s.named[other].started.UTC().Format(time.RFC3339))
		}
		return Run{}, fmt.Errorf("%s: %w: %s is running", name, ErrBusy, other)
	}
	s.start(st, now)
	return Run{Job: st.job, Reason: ReasonManual, Started: now}, nil
}

// Finish records that a run ended. If the job's next activation passed
// meanwhile it is due at once (ReasonCatchUp), without jitter.
func (s *Scheduler) Finish(name string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.named[name]
	if !ok || !st.running {
		return
	}
	st.running, st.lastFinish = false, now
	delete(s.busy, st.job.Group)
	if !st.next.IsZero() && !st.next.After(now) && st.reason == ReasonSchedule {
		st.next, st.reason = now, ReasonCatchUp
	}
}

// Request makes a job due now. If it (or its group) is busy it starts
// once when free, however often it was requested meanwhile.
func (s *Scheduler) Request(name string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.named[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownJob, name)
	}
	st.next, st.reason = now, ReasonRequested
	return nil
}

// NextWake is when Due next has something to start, or the zero time if
// nothing is scheduled. Jobs waiting for a busy group are not counted:
// Finish frees the group, and callers call Due after Finish.
func (s *Scheduler) NextWake() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var min time.Time
	for _, st := range s.jobs {
		if st.running || st.next.IsZero() {
			continue
		}
		if _, busy := s.busy[st.job.Group]; busy {
			continue
		}
		if min.IsZero() || st.next.Before(min) {
			min = st.next
		}
	}
	return min
}

// JobStatus is a job's state for the API and the dashboard.
type JobStatus struct {
	Name       string    `json:"name"`
	Group      string    `json:"group"`
	Running    bool      `json:"running"`
	Started    time.Time `json:"started,omitzero"`
	Next       time.Time `json:"next,omitzero"`
	NextReason string    `json:"next_reason,omitempty"`
	LastStart  time.Time `json:"last_start,omitzero"`
	LastFinish time.Time `json:"last_finish,omitzero"`
}

// Status lists every job, by name.
func (s *Scheduler) Status() []JobStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JobStatus, 0, len(s.jobs))
	for _, st := range s.jobs {
		js := JobStatus{Name: st.job.Name, Group: st.job.Group, Running: st.running, Next: st.next, NextReason: st.reason,
			LastStart: st.lastStart, LastFinish: st.lastFinish}
		if st.running {
			js.Started = st.started
		}
		out = append(out, js)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Running lists the names of running jobs.
func (s *Scheduler) Running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, st := range s.jobs {
		if st.running {
			out = append(out, st.job.Name)
		}
	}
	return out
}

func defaultRand(n int64) int64 { return rand.Int64N(n) }
