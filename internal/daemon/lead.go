package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/schedule"
)

// RunRecord is one finished job run, for the API and the dashboard.
type RunRecord struct {
	Job        string    `json:"job"`
	Kind       string    `json:"kind"`
	Store      string    `json:"store,omitempty"`
	Repository string    `json:"repository,omitempty"`
	Reason     string    `json:"reason"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	Result     string    `json:"result"` // ok, failed, aborted
	Error      string    `json:"error,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

func (d *Daemon) record(r RunRecord) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.runs = append(d.runs, r)
	if len(d.runs) > keepRuns {
		d.runs = append([]RunRecord(nil), d.runs[len(d.runs)-keepRuns:]...)
	}
}

// Runs returns the recorded runs of this replica, newest first.
func (d *Daemon) Runs() []RunRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]RunRecord, len(d.runs))
	for i, r := range d.runs {
		out[len(d.runs)-1-i] = r
	}
	return out
}

// Jobs returns the scheduler's jobs while this replica leads.
func (d *Daemon) Jobs() []schedule.JobStatus {
	d.mu.Lock()
	l := d.loop
	d.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.S.Status()
}

// lead is called by the elector while this replica leads. It schedules
// until leadership is lost (leadCtx) or shutdown begins (d.shutdown);
// running work is aborted when leadership is lost or the grace period
// ends, and lead returns only once it has stopped.
func (d *Daemon) lead(leadCtx context.Context) {
	d.leading.Lock()
	defer d.leading.Unlock()
	d.Metrics.Leader.Set(1)
	defer d.Metrics.Leader.Set(0)
	startCtx, stopStarting := context.WithCancel(leadCtx)
	defer stopStarting()
	defer context.AfterFunc(d.shutdown, stopStarting)()
	work, abort := context.WithCancel(leadCtx)
	defer abort()
	defer context.AfterFunc(d.graceCtx, abort)()
	if startCtx.Err() != nil {
		return
	}

	lctx, cancel := context.WithTimeout(startCtx, time.Minute)
	last := d.lastRuns(lctx)
	cancel()
	now := d.clock.Now()
	l := &schedule.Loop{
		S: schedule.New(now, d.jobs(), last, schedule.Options{Jitter: d.plan.Serve.Jitter.D(),
			Skipped: func(j schedule.Job, missed, next time.Time) {
				d.log.Warn("missed activation skipped: more than catch_up late", "job", j.Name,
					"missed", missed.UTC(), "catch_up", j.CatchUp, "next", next.UTC())
			}}),
		Clock: d.clock,
		Do:    d.do,
	}
	d.mu.Lock()
	d.loop = l
	d.mu.Unlock()
	d.log.Info("scheduling", "jobs", len(d.jobs()))
	// Backups kick the copies; a kick while a copy runs makes it run once
	// more right after (the backup may have finished after that pass
	// listed the source).
	kicks := make(chan struct{})
	go func() {
		defer close(kicks)
		for {
			select {
			case <-startCtx.Done():
				return
			case <-d.kickCopy:
				for _, c := range d.plan.CopyRepositories() {
					if err := l.Request(KindCopy + " " + c); err != nil && !errors.Is(err, schedule.ErrStopped) {
						d.log.Warn("request copy", "repository", c, "err", err)
					}
				}
			}
		}
	}()
	l.Run(startCtx, work)
	<-kicks
	d.mu.Lock()
	d.loop = nil
	d.mu.Unlock()
	if leadCtx.Err() != nil && d.shutdown.Err() == nil {
		d.log.Warn("leadership lost: stopped scheduling")
	}
}

// KickCopy asks for copy passes soon.
func (d *Daemon) KickCopy() {
	select {
	case d.kickCopy <- struct{}{}:
	default:
	}
}

// Errors of TriggerBackup.
var (
	// ErrNotLeader: this replica does not schedule; ask the leader.
	ErrNotLeader = errors.New("this replica is not the leader")
	// ErrUnknownStore: the plan has no such store or method.
	ErrUnknownStore = errors.New("unknown store or method")
)

// TriggerResult says what a manual backup did.
type TriggerResult struct {
	Job      string         `json:"job"`
	Started  time.Time      `json:"started"`
	Manifest *repo.Manifest `json:"manifest,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// TriggerBackup starts a backup now (method "" = the store's first). With
// wait it returns when the backup is done.
func (d *Daemon) TriggerBackup(ctx context.Context, store, method string, wait bool) (TriggerResult, error) {
	s, ok := d.plan.Stores[store]
	if !ok || s == nil {
		return TriggerResult{}, fmt.Errorf("%w %q (stores: %v)", ErrUnknownStore, store, d.plan.StoreNames())
	}
	if method == "" {
		method = s.Backups[0].Method
	}
	d.mu.Lock()
	l := d.loop
	d.mu.Unlock()
	if l == nil {
		o := d.Observe()
		return TriggerResult{}, fmt.Errorf("%w (leader: %q)", ErrNotLeader, o.Leader)
	}
	job := backupJob(store, method)
	r, res, err := l.Trigger(job)
	if errors.Is(err, schedule.ErrUnknownJob) {
		return TriggerResult{}, fmt.Errorf("%w: store %s has no method %q", ErrUnknownStore, store, method)
	}
	if errors.Is(err, schedule.ErrStopped) {
		return TriggerResult{}, ErrNotLeader
	}
	if err != nil {
		return TriggerResult{}, err
	}
	tr := TriggerResult{Job: job, Started: r.Started}
	if !wait {
		return tr, nil
	}
	select {
	case <-ctx.Done():
		return tr, ctx.Err()
	case err := <-res:
		if err != nil {
			tr.Error = err.Error()
			return tr, nil
		}
	}
	for _, rec := range d.Runs() {
		if rec.Job == job && rec.Started.Equal(r.Started) && rec.Detail != "" {
			rp, err := d.cfg.Runner.OpenRepo(ctx, s.Repository)
			if err == nil {
				tr.Manifest, _ = rp.Backup(ctx, store+"/"+rec.Detail)
				rp.Close()
			}
			break
		}
	}
	return tr, nil
}

// Backups lists the complete backups in a repository of the plan ("" =
// primary), of one store or all.
func (d *Daemon) Backups(ctx context.Context, repository, store string) ([]*repo.Manifest, error) {
	if store != "" {
		if _, err := d.cfg.Runner.StoreConfig(store); err != nil {
			return nil, err
		}
	}
	rp, err := d.cfg.Runner.OpenRepo(ctx, repository)
	if err != nil {
		return nil, err
	}
	defer rp.Close()
	return rp.Backups(ctx, store)
}

// Backup finds one backup by id, unique prefix or STORE/ID.
func (d *Daemon) Backup(ctx context.Context, repository, ref string) (*repo.Manifest, error) {
	rp, err := d.cfg.Runner.OpenRepo(ctx, repository)
	if err != nil {
		return nil, err
	}
	defer rp.Close()
	return rp.Backup(ctx, ref)
}
