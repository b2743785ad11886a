// Package daemon is `linkdr serve`: independent actors sharing one
// context — leader election, the scheduler (backups, retention, verify,
// cross-region copy, drills) on the leader only, a reader that keeps the
// posture of every repository and the drill reports fresh on every
// replica, and the HTTP server — and the order in which they stop: on
// SIGTERM nothing new starts, running work gets the grace period to
// finish and is then aborted (an aborted backup leaves nothing visible),
// and only then is the leadership handed over and the listener closed.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/leader"
	"github.com/linkapp/linkdr/internal/metrics"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/schedule"
)

// Config is what a daemon is built from.
type Config struct {
	Runner  *ops.Runner
	Elector leader.Elector
	Log     *slog.Logger
	Version string
	// Clock is the scheduler's clock; nil is the wall clock.
	Clock schedule.Clock
	// Listen runs the HTTP server until its context is done; the daemon
	// cancels it last. nil: no HTTP (tests).
	Listen func(ctx context.Context, d *Daemon) error
	// Drill runs the plan's drill name and saves its report in the primary
	// repository (trigger "schedule"); the report comes back even when
	// the drill failed. nil: drill jobs fail.
	Drill func(ctx context.Context, name string) (*drillreport.Report, error)
}

// Daemon is a running `linkdr serve`.
type Daemon struct {
	cfg     Config
	plan    *plan.Plan
	log     *slog.Logger
	clock   schedule.Clock
	Metrics *metrics.Metrics
	started time.Time

	posture  atomic.Pointer[ops.Posture]
	drills   drillState
	refresh  chan struct{}
	kickCopy chan struct{}
	stopping atomic.Bool

	// shutdown is done when SIGTERM arrived; graceCtx when the grace
	// period after it is over. Set by Run before anything starts.
	shutdown, graceCtx context.Context

	// leading is held while lead runs.
	leading sync.Mutex

	mu       sync.Mutex
	loop     *schedule.Loop
	runs     []RunRecord // newest last, at most keepRuns
	lastGood map[string]ops.StoreStatus
}

const keepRuns = 200

// New builds a daemon. Nothing runs until Run.
func New(cfg Config) *Daemon {
	if cfg.Clock == nil {
		cfg.Clock = schedule.RealClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	d := &Daemon{
		cfg: cfg, plan: cfg.Runner.Plan, log: cfg.Log, clock: cfg.Clock, started: cfg.Clock.Now(),
		refresh: make(chan struct{}, 1), kickCopy: make(chan struct{}, 1), lastGood: map[string]ops.StoreStatus{},
	}
	d.Metrics = metrics.New(cfg.Version, metrics.Source{Posture: d.Posture, Now: cfg.Clock.Now, Drills: d.DrillStatus})
	return d
}

// Run runs every actor until ctx is done, then shuts down in order within
// the plan's grace period.
func (d *Daemon) Run(ctx context.Context) error {
	grace := d.plan.Serve.GracePeriod.D()
	// electCtx ends the campaign (and hands the lease over) only after
	// the work stopped; httpCtx closes the listener last.
	electCtx, stopElect := context.WithCancel(context.Background())
	defer stopElect()
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	graceCtx, graceOver := context.WithCancel(context.Background())
	defer graceOver()
	d.shutdown = ctx
	d.graceCtx = graceCtx

	g := new(errgroup.Group)
	electDone := make(chan struct{})
	g.Go(func() error {
		defer close(electDone)
		return d.cfg.Elector.Run(electCtx, d.lead)
	})
	g.Go(func() error { return d.refresher(ctx) })
	if d.cfg.Listen != nil {
		g.Go(func() error {
			err := d.cfg.Listen(httpCtx, d)
			if err != nil && ctx.Err() == nil {
				// The listener failed (port taken, bad certificate):
				// nothing else may go on without it.
				stopElect()
				graceOver()
			}
			return err
		})
	}
	g.Go(func() error {
		select {
		case <-ctx.Done():
		case <-httpCtx.Done():
		case <-electDone:
		}
		d.stopping.Store(true)
		if running := d.runningJobs(); len(running) > 0 {
			d.log.Info("shutting down: waiting for running work", "running", running, "grace_period", grace)
		} else {
			d.log.Info("shutting down")
		}
		t := time.AfterFunc(grace, func() {
			if running := d.runningJobs(); len(running) > 0 {
				d.log.Warn("grace period over: aborting running work", "running", running)
			}
			graceOver()
		})
		defer t.Stop()
		// lead stops starting work when ctx is done and returns once the
		// running work finished or was aborted at the end of the grace
		// period; only then may the leadership go (ending the campaign
		// ends the leadership, which would abort the work at once).
		d.leading.Lock()
		stopElect()
		d.leading.Unlock()
		<-electDone
		stopHTTP()
		return nil
	})
	err := g.Wait()
	d.Metrics.Leader.Set(0)
	if ctx.Err() != nil && err == nil {
		d.log.Info("stopped")
	}
	return err
}

// runningJobs names the jobs running on this replica.
func (d *Daemon) runningJobs() []string {
	d.mu.Lock()
	l := d.loop
	d.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.S.Running()
}

// Posture is the latest reading of the repositories (nil before the first).
func (d *Daemon) Posture() *ops.Posture { return d.posture.Load() }

// Observe is what this replica knows of the leader.
func (d *Daemon) Observe() leader.Observation { return d.cfg.Elector.Observe() }

// Ready says whether this replica can serve: the primary repository
// answered the last reading, which is recent, and the leader is known.
func (d *Daemon) Ready() error {
	if d.stopping.Load() {
		return errors.New("shutting down")
	}
	p := d.Posture()
	if p == nil {
		return errors.New("repositories not read yet")
	}
	if age := d.clock.Now().Sub(p.At); age > 3*d.plan.Serve.RefreshInterval.D()+30*time.Second {
		return fmt.Errorf("repositories last read %s ago", age.Round(time.Second))
	}
	for _, r := range p.Repositories {
		if r.Name == plan.DefaultRepository && !r.Reachable {
			return fmt.Errorf("repository %s unreachable: %s", r.Name, r.Error)
		}
	}
	if o := d.Observe(); !o.Known {
		msg := "leader unknown"
		if o.Error != "" {
			msg += ": " + o.Error
		}
		return errors.New(msg)
	}
	return nil
}

// Refresh asks for a new reading of the repositories soon.
func (d *Daemon) Refresh() {
	select {
	case d.refresh <- struct{}{}:
	default:
	}
}

// refresher reads the repositories every refresh_interval (and when
// asked), on every replica: the posture, and the drill reports behind
// the drill gauges.
func (d *Daemon) refresher(ctx context.Context) error {
	every := d.plan.Serve.RefreshInterval.D()
	for {
		rctx, cancel := context.WithTimeout(ctx, max(every, 30*time.Second))
		p, err := d.cfg.Runner.Posture(rctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("read posture", "err", err)
		case err == nil:
			d.keepLastGood(p)
			d.posture.Store(p)
			for _, r := range p.Repositories {
				if !r.Reachable {
					d.log.Warn("repository unreachable", "repository", r.Name, "err", r.Error)
				}
			}
		}
		rctx, cancel = context.WithTimeout(ctx, max(every, 30*time.Second))
		if _, err := d.readDrills(rctx); err != nil && ctx.Err() == nil {
			d.log.Warn("read drill reports", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return nil
		case <-d.refresh:
		case <-time.After(every):
		}
	}
}

// keepLastGood carries a store's last known newest backup through a
// reading that could not reach its repository, so exposure keeps growing
// from the truth instead of vanishing.
func (d *Daemon) keepLastGood(p *ops.Posture) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range p.Stores {
		s := &p.Stores[i]
		if s.State != ops.StateUnknown {
			d.lastGood[s.Store] = *s
			continue
		}
		if g, ok := d.lastGood[s.Store]; ok && g.LatestID != "" {
			s.LatestID, s.LatestMethod, s.ConsistentAt, s.Recent = g.LatestID, g.LatestMethod, g.ConsistentAt, g.Recent
			s.Exposure = p.At.Sub(g.ConsistentAt)
		}
	}
}
