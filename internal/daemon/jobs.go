package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/drill"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/schedule"
)

// Job kinds; a job's name is its kind followed by its subject.
const (
	KindBackup    = "backup"
	KindRetention = "retention"
	KindVerify    = "verify"
	KindCopy      = "copy"
)

// every is a constant-interval schedule (copy passes).
type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

func backupJob(store, method string) string { return KindBackup + " " + store + " " + method }

// jobs lists what the leader schedules, in the plan's order.
func (d *Daemon) jobs() []schedule.Job {
	var out []schedule.Job
	for _, name := range d.plan.StoreNames() {
		s := d.plan.Stores[name]
		for _, b := range s.Backups {
			j := schedule.Job{Name: backupJob(name, b.Method), Group: "store " + name}
			if !b.Schedule.IsZero() {
				j.Schedule = b.Schedule
			}
			out = append(out, j)
		}
	}
	out = append(out,
		schedule.Job{Name: KindRetention, Group: KindRetention, Schedule: d.plan.Retention.Schedule},
		schedule.Job{Name: KindVerify, Group: KindVerify, Schedule: d.plan.Verify.Schedule})
	for _, c := range d.plan.CopyRepositories() {
		out = append(out, schedule.Job{Name: KindCopy + " " + c, Group: KindCopy + " " + c, Schedule: every(d.plan.Serve.CopyInterval.D())})
	}
	return append(out, d.drillJobs()...)
}

// lastRuns reads from the repositories when each job last ran, so that
// activations missed while no replica led are made up once at start.
// Backups: the newest backup's start; verify: the oldest of the stores'
// last verifications; drills: the newest report of each (its start), so
// a restarted daemon neither repeats a drill nor forgets one. Retention
// and copy keep no record: they run once at start, which is harmless
// (both are idempotent).
func (d *Daemon) lastRuns(ctx context.Context) map[string]time.Time {
	out := map[string]time.Time{}
	repos := map[string]*repo.Repo{}
	defer func() {
		for _, r := range repos {
			r.Close()
		}
	}()
	open := func(name string) *repo.Repo {
		if r, ok := repos[name]; ok {
			return r
		}
		r, err := d.cfg.Runner.OpenRepo(ctx, name)
		if err != nil {
			d.log.Warn("read last runs", "repository", name, "err", err)
		}
		repos[name] = r
		return r
	}
	var oldestVerify time.Time
	verifyKnown := true
	for _, name := range d.plan.StoreNames() {
		s := d.plan.Stores[name]
		rp := open(s.Repository)
		if rp == nil {
			verifyKnown = false
			continue
		}
		all, err := rp.Backups(ctx, name)
		if err != nil {
			d.log.Warn("read last runs", "store", name, "err", err)
			continue
		}
		for _, m := range all {
			if k := backupJob(name, m.Method); m.Started.After(out[k]) {
				out[k] = m.Started
			}
		}
		v, err := rp.VerifyRecord(ctx, name)
		if err != nil || v == nil {
			if len(all) > 0 {
				verifyKnown = false
			}
			continue
		}
		if oldestVerify.IsZero() || v.At.Before(oldestVerify) {
			oldestVerify = v.At
		}
	}
	if verifyKnown && !oldestVerify.IsZero() {
		out[KindVerify] = oldestVerify
	}
	if len(d.plan.Drills) > 0 {
		reps, err := d.readDrills(ctx)
		if err != nil {
			// Without the reports a drill whose slot is within catch_up
			// may run again; one further back waits for its next slot.
			d.log.Warn("read last runs: drill reports", "err", err)
		}
		for name, at := range drill.LastRuns(reps) {
			out[drillJob(name)] = at
		}
	}
	return out
}

// do runs one job.
func (d *Daemon) do(ctx context.Context, r schedule.Run) error {
	kind, subject, _ := strings.Cut(r.Job.Name, " ")
	log := d.log.With("job", r.Job.Name, "reason", r.Reason)
	log.Info("job started")
	rec := RunRecord{Job: r.Job.Name, Kind: kind, Reason: r.Reason, Started: r.Started}
	var err error
	switch kind {
	case KindBackup:
		err = d.doBackup(ctx, subject, &rec)
	case KindRetention:
		err = d.doRetention(ctx, &rec)
	case KindVerify:
		err = d.doVerify(ctx, &rec)
	case KindCopy:
		err = d.doCopy(ctx, subject, &rec)
	case KindDrill:
		err = d.doDrill(ctx, subject, &rec)
	default:
		err = fmt.Errorf("unknown job %q", r.Job.Name)
	}
	rec.Finished = d.clock.Now()
	rec.Result = "ok"
	switch {
	case err != nil && ctx.Err() != nil:
		rec.Result, rec.Error = "aborted", err.Error()
		log.Warn("job aborted", "err", err)
	case err != nil:
		rec.Result, rec.Error = "failed", err.Error()
		log.Error("job failed", "err", err, "duration", rec.Finished.Sub(rec.Started).Round(time.Millisecond))
	default:
		log.Info("job finished", "duration", rec.Finished.Sub(rec.Started).Round(time.Millisecond), "detail", rec.Detail)
	}
	d.Metrics.JobRuns.WithLabelValues(kind, rec.Result).Inc()
	d.record(rec)
	d.Refresh()
	return err
}

func (d *Daemon) doBackup(ctx context.Context, subject string, rec *RunRecord) error {
	store, method, _ := strings.Cut(subject, " ")
	rec.Store = store
	m, err := d.cfg.Runner.Backup(ctx, store, method)
	if err != nil {
		if ctx.Err() == nil {
			d.Metrics.BackupFailures.WithLabelValues(store, method).Inc()
			d.Metrics.BackupLastFailure.WithLabelValues(store, method).Set(float64(d.clock.Now().UnixNano()) / 1e9)
		}
		return err
	}
	rec.Detail = m.ID
	d.KickCopy()
	return nil
}

func (d *Daemon) doRetention(ctx context.Context, rec *RunRecord) error {
	var errs []error
	deleted := 0
	for _, name := range d.cfg.Runner.BackupRepositories() {
		reps, err := d.cfg.Runner.ApplyRetentionIn(ctx, name, false)
		n := 0
		for _, r := range reps {
			n += r.Removed - len(r.Errors)
			for _, e := range r.Errors {
				err = errors.Join(err, errors.New(e))
			}
		}
		deleted += n
		d.Metrics.RetentionDeleted.WithLabelValues(name).Add(float64(max(n, 0)))
		if err != nil {
			d.Metrics.RetentionFailures.WithLabelValues(name).Inc()
			errs = append(errs, fmt.Errorf("repository %s: %w", name, err))
			continue
		}
		d.Metrics.RetentionLast.WithLabelValues(name).Set(float64(d.clock.Now().UnixNano()) / 1e9)
	}
	rec.Detail = fmt.Sprintf("%d backups deleted", deleted)
	return errors.Join(errs...)
}

func (d *Daemon) doVerify(ctx context.Context, rec *RunRecord) error {
	var errs []error
	ok := 0
	for _, name := range d.plan.StoreNames() {
		s := d.plan.Stores[name]
		for _, rn := range append([]string{s.Repository}, d.plan.CopiesOf(s.Repository)...) {
			res, err := d.cfg.Runner.VerifyLatest(ctx, rn, name)
			switch {
			case errors.Is(err, repo.ErrNoBackup):
				continue // nothing to verify yet; the RPO alert covers it
			case err != nil && ctx.Err() != nil:
				return err
			case err != nil:
				d.Metrics.VerifyFailures.WithLabelValues(name, rn).Inc()
				d.Metrics.VerifyLastFailure.WithLabelValues(name, rn).Set(float64(d.clock.Now().UnixNano()) / 1e9)
				errs = append(errs, fmt.Errorf("%s in %s: %w", name, rn, err))
			default:
				ok++
				_ = res
			}
		}
	}
	rec.Detail = fmt.Sprintf("%d backups verified", ok)
	return errors.Join(errs...)
}

func (d *Daemon) doCopy(ctx context.Context, dstName string, rec *RunRecord) error {
	rec.Repository = dstName
	srcName := d.plan.Repositories[dstName].CopyFrom
	src, err := d.cfg.Runner.OpenRepo(ctx, srcName)
	if err != nil {
		d.Metrics.CopyFailures.WithLabelValues(dstName).Inc()
		return err
	}
	defer src.Close()
	dst, err := d.cfg.Runner.OpenRepo(ctx, dstName)
	if err != nil {
		d.Metrics.CopyFailures.WithLabelValues(dstName).Inc()
		return err
	}
	defer dst.Close()
	rep, err := dst.CopyFrom(ctx, src, func(key string, n int64) {
		d.Metrics.CopyObjects.WithLabelValues(dstName).Inc()
		d.Metrics.CopyBytes.WithLabelValues(dstName).Add(float64(n))
	})
	if rep != nil {
		rec.Detail = fmt.Sprintf("%d objects (%d bytes) copied and verified", rep.Copied, rep.Bytes)
	}
	if err != nil {
		if ctx.Err() == nil {
			d.Metrics.CopyFailures.WithLabelValues(dstName).Inc()
		}
		return fmt.Errorf("copy %s → %s: %w", srcName, dstName, err)
	}
	if rep.Remaining != nil && rep.Remaining.Objects == 0 {
		d.Metrics.CopyLastSuccess.WithLabelValues(dstName).Set(float64(d.clock.Now().UnixNano()) / 1e9)
	}
	return nil
}
