package ops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/retention"
	"github.com/linkapp/linkdr/internal/store/postgres/wal"
	"github.com/linkapp/linkdr/internal/store/postgres/walarchive"
)

// IncompleteGrace is how old the leftovers of an interrupted backup must be
// before retention removes them; a backup running that long would hold
// its lease anyway.
const IncompleteGrace = 24 * time.Hour

// PoolGrace is how old an unreferenced pool artifact must be before
// retention deletes it. Pruning holds the store's lease, so no backup is
// running; the grace covers a writer that lost its lease but has not
// noticed yet.
const PoolGrace = time.Hour

// SeriesReport is retention's verdict on one store and method.
type SeriesReport struct {
	Store     string               `json:"store"`
	Method    string               `json:"method"`
	Decisions []retention.Decision `json:"decisions"`
	Kept      int                  `json:"kept"`
	Removed   int                  `json:"removed"`
	// Incomplete lists leftovers of interrupted backups that were (or, in
	// a dry run, would be) removed.
	Incomplete []string `json:"incomplete,omitempty"`
	// Pool is what pruning the store's pool did (incremental kinds).
	Pool   *repo.PruneReport `json:"pool,omitempty"`
	Errors []string          `json:"errors,omitempty"`
}

// ApplyRetention applies the plan's policy to every store of the plan.
// With dryRun nothing is deleted. Errors deleting one backup are reported
// in its series and do not stop the others.
func (r *Runner) ApplyRetention(ctx context.Context, dryRun bool) ([]SeriesReport, error) {
	now := r.now()
	pol := r.Plan.Retention
	policy := retention.Policy{Last: pol.KeepLast, Hourly: pol.KeepHourly, Daily: pol.KeepDaily,
		Weekly: pol.KeepWeekly, Monthly: pol.KeepMonthly, Yearly: pol.KeepYearly}
	var out []SeriesReport
	var errs []error
	for _, name := range r.Plan.StoreNames() {
		cfg := r.Plan.Stores[name]
		rp, err := r.OpenRepo(ctx, cfg.Repository)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reports, err := r.retainStore(ctx, rp, name, policy, now, dryRun)
		rp.Close()
		out = append(out, reports...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// ApplyRetentionIn applies the plan's policy to every store's backups in
// one repository — a copy (copy_from) holds the backups of the stores of
// its source and is pruned by the same policy, independently: a copy
// never deletes because its source did (a wiped primary must not wipe the
// DR region).
func (r *Runner) ApplyRetentionIn(ctx context.Context, repoName string, dryRun bool) ([]SeriesReport, error) {
	now := r.now()
	pol := r.Plan.Retention
	policy := retention.Policy{Last: pol.KeepLast, Hourly: pol.KeepHourly, Daily: pol.KeepDaily,
		Weekly: pol.KeepWeekly, Monthly: pol.KeepMonthly, Yearly: pol.KeepYearly}
	rp, err := r.OpenRepo(ctx, repoName)
	if err != nil {
		return nil, err
	}
	defer rp.Close()
	var out []SeriesReport
	var errs []error
	for _, name := range r.Plan.StoreNames() {
		reports, err := r.retainStore(ctx, rp, name, policy, now, dryRun)
		out = append(out, reports...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// BackupRepositories lists the repositories that hold backups: those stores
// back up into and their copies.
func (r *Runner) BackupRepositories() []string {
	seen := map[string]bool{}
	for _, name := range r.Plan.StoreNames() {
		seen[r.Plan.Stores[name].Repository] = true
	}
	for _, c := range r.Plan.CopyRepositories() {
		seen[c] = true
	}
	var out []string
	for _, name := range r.Plan.RepositoryNames() {
		if seen[name] {
			out = append(out, name)
		}
	}
	return out
}

func (r *Runner) retainStore(ctx context.Context, rp *repo.Repo, name string, policy retention.Policy, now time.Time, dryRun bool) ([]SeriesReport, error) {
	all, err := rp.Backups(ctx, name)
	if err != nil {
		return nil, err
	}
	byMethod := map[string][]*repo.Manifest{}
	for _, m := range all {
		byMethod[m.Method] = append(byMethod[m.Method], m)
	}
	methods := make([]string, 0, len(byMethod))
	for k := range byMethod {
		methods = append(methods, k)
	}
	sort.Strings(methods)
	var out []SeriesReport
	kept := map[string]bool{}
	gone := map[string]bool{}
	for _, method := range methods {
		ms := byMethod[method]
		items := make([]retention.Item, len(ms))
		byID := map[string]*repo.Manifest{}
		for i, m := range ms {
			items[i] = retention.Item{ID: m.ID, Time: m.ConsistentAt}
			if m.RetainUntil != nil {
				items[i].RetainUntil = *m.RetainUntil
			}
			if m.ObjectLock != "" {
				// S3 itself refuses to delete these objects; say so rather
				// than try and fail.
				items[i].Hold = "object lock (" + m.ObjectLock + ")"
			}
			byID[m.ID] = m
		}
		rep := SeriesReport{Store: name, Method: method, Decisions: retention.Apply(items, policy, now)}
		for _, d := range rep.Decisions {
			if d.Keep {
				rep.Kept++
				kept[d.ID] = true
				continue
			}
			rep.Removed++
			gone[d.ID] = true
			if dryRun {
				continue
			}
			if err := rp.Delete(ctx, byID[d.ID]); err != nil {
				rep.Errors = append(rep.Errors, err.Error())
			}
		}
		out = append(out, rep)
	}
	if cfg := r.Plan.Stores[name]; cfg != nil && cfg.Kind == "postgres" && cfg.WAL != nil {
		rep, err := r.retainWAL(ctx, rp, name, kept, dryRun)
		if err != nil {
			return out, err
		}
		out = append(out, rep)
	}
	if prep, err := r.prunePool(ctx, rp, name, gone, dryRun); err != nil {
		out = append(out, SeriesReport{Store: name, Method: "(pool)", Pool: prep, Errors: []string{err.Error()}})
	} else if prep != nil {
		out = append(out, SeriesReport{Store: name, Method: "(pool)", Pool: prep, Kept: prep.Referenced, Removed: len(prep.Removed)})
	}
	// Leftovers of interrupted backups, unless a writer is active now.
	inc, err := rp.Incomplete(ctx, name)
	if err != nil {
		return out, err
	}
	var stale []string
	for id, t := range inc {
		if now.Sub(t) > IncompleteGrace {
			stale = append(stale, id)
		}
	}
	if len(stale) == 0 {
		return out, nil
	}
	sort.Strings(stale)
	rep := SeriesReport{Store: name, Method: "(incomplete)", Incomplete: stale}
	if !dryRun {
		lease, err := rp.AcquireLease(ctx, name, "retention", r.LeaseTTL)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("leftovers kept: %v", err))
		} else {
			for _, id := range stale {
				if err := rp.DeleteIncomplete(ctx, name, id); err != nil {
					rep.Errors = append(rep.Errors, err.Error())
				}
			}
			lease.Release()
		}
	}
	return append(out, rep), nil
}

// retainWAL removes the WAL no kept physical backup needs: every segment
// before the start segment of the oldest kept one (history files stay;
// they are tiny and name the timelines). With no physical backup kept,
// nothing is removed: the WAL may be all that is left.
func (r *Runner) retainWAL(ctx context.Context, rp *repo.Repo, store string, kept map[string]bool, dryRun bool) (SeriesReport, error) {
	rep := SeriesReport{Store: store, Method: "(wal)"}
	backups, err := physicalBackups(ctx, rp, store)
	if err != nil {
		return rep, err
	}
	var oldest *physicalBackup
	for i := range backups {
		if kept[backups[i].m.ID] {
			oldest = &backups[i]
			break
		}
	}
	a := walarchive.New(rp, store, nil, 0)
	entries, err := a.List(ctx)
	if err != nil {
		return rep, err
	}
	if oldest == nil {
		rep.Kept = len(entries)
		return rep, nil
	}
	segSize := oldest.src.WALSegmentSize
	first := wal.SegNoOf(oldest.src.StartLSN, segSize)
	for _, e := range entries {
		if e.Name.Kind == wal.History || e.Name.SegNo(segSize) >= first {
			rep.Kept++
			continue
		}
		rep.Removed++
		if dryRun {
			continue
		}
		if err := a.Delete(ctx, e.Name); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
	}
	return rep, nil
}

// prunePool removes pool artifacts no kept backup references, holding the
// store's lease so no backup is between writing a pool artifact and its
// manifest. Stores without a pool get nil.
func (r *Runner) prunePool(ctx context.Context, rp *repo.Repo, name string, gone map[string]bool, dryRun bool) (*repo.PruneReport, error) {
	objs, err := rp.Pool(ctx, name)
	if err != nil || len(objs) == 0 {
		return nil, err
	}
	if !dryRun {
		lease, err := rp.AcquireLease(ctx, name, "retention", r.LeaseTTL)
		if err != nil {
			return nil, fmt.Errorf("pool kept: %w", err)
		}
		defer lease.Release()
	}
	return rp.PrunePool(ctx, name, PoolGrace, gone, dryRun)
}
