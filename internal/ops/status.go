package ops

import (
	"context"
	"time"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store/postgres/wal"
	"github.com/linkapp/linkdr/internal/store/postgres/walarchive"
)

// walStatus finds the newest archived WAL file of a store and when it was
// archived. Only the listing and one sidecar are read.
func (r *Runner) walStatus(ctx context.Context, rp *repo.Repo, store string, st *StoreStatus) error {
	a := walarchive.New(rp, store, nil, 0)
	entries, err := a.List(ctx)
	if err != nil {
		return err
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if !e.Archived || (e.Name.Kind != wal.Segment && e.Name.Kind != wal.Partial) {
			continue
		}
		in, err := a.Stat(ctx, e.Name)
		if err != nil {
			return err
		}
		st.LastWAL, st.LastWALAt = in.Name, in.Archived
		return nil
	}
	return nil
}

// RPO states of a store, by exposure against its objective.
const (
	StateOK       = "OK"
	StateAtRisk   = "AT RISK"
	StateBreached = "BREACHED"
	StateUnknown  = "UNKNOWN"
)

// AtRiskFraction of the RPO objective is where exposure turns amber; the
// shipped alert rule "RPO at risk" uses the same threshold.
const AtRiskFraction = 0.8

// StoreStatus is the protection posture of one store.
type StoreStatus struct {
	Store      string `json:"store"`
	Kind       string `json:"kind"`
	Repository string `json:"repository"`
	Backups    int    `json:"backups"`
	// Latest is the newest complete backup, if any.
	LatestID     string    `json:"latest_id,omitempty"`
	LatestMethod string    `json:"latest_method,omitempty"`
	ConsistentAt time.Time `json:"consistent_at,omitempty"`
	// Exposure is how much data, in time, would be lost right now: the age
	// of the newest restorable data.
	Exposure    time.Duration `json:"exposure_ns"`
	RPO         time.Duration `json:"rpo_ns"`
	State       string        `json:"state"`
	StoredBytes int64         `json:"stored_bytes"`
	// LastWAL and LastWALAt are the newest WAL file archived for a
	// postgres store with continuous WAL; with a physical backup to replay
	// it on, exposure is measured from it, not from the newest backup.
	LastWAL   string    `json:"last_wal,omitempty"`
	LastWALAt time.Time `json:"last_wal_at,omitzero"`
	// ExposureFrom says what exposure is measured from: backup or wal.
	ExposureFrom string `json:"exposure_from,omitempty"`
	Error        string `json:"error,omitempty"`

	// Filled by Posture only:
	// Recent are the newest backups, oldest first.
	Recent []BackupRef `json:"recent,omitempty"`
	// Copies is the exposure counting only backups that reached each
	// copy of the store's repository (the DR region).
	Copies []CopyExposure `json:"copies,omitempty"`
	// Verify is the last verification of the newest backup.
	Verify *repo.VerifyRecord `json:"verify,omitempty"`
	// WALNewest is the newest object under wal/<store>/; WALLag its age.
	WALNewest time.Time     `json:"wal_newest,omitzero"`
	WALLag    time.Duration `json:"wal_lag_ns,omitempty"`
	// Err is Error as an error, for callers that classify it.
	Err error `json:"-"`
}

// State classifies an exposure against an objective.
func State(exposure, rpo time.Duration, haveBackup bool) string {
	switch {
	case !haveBackup || exposure > rpo:
		return StateBreached
	case float64(exposure) > AtRiskFraction*float64(rpo):
		return StateAtRisk
	default:
		return StateOK
	}
}

// Status reads the repository (no daemon needed) and reports every store
// of the plan. A repository that cannot be read makes its stores UNKNOWN
// with the error, not the whole call fail.
func (r *Runner) Status(ctx context.Context) ([]StoreStatus, error) {
	now := r.now()
	repos := map[string]*repo.Repo{}
	repoErr := map[string]error{}
	defer func() {
		for _, rp := range repos {
			rp.Close()
		}
	}()
	var out []StoreStatus
	for _, name := range r.Plan.StoreNames() {
		cfg := r.Plan.Stores[name]
		st := StoreStatus{Store: name, Kind: cfg.Kind, Repository: cfg.Repository, RPO: r.Plan.StoreRPO(cfg).D()}
		rp, ok := repos[cfg.Repository]
		if !ok && repoErr[cfg.Repository] == nil {
			var err error
			if rp, err = r.OpenRepo(ctx, cfg.Repository); err != nil {
				repoErr[cfg.Repository] = err
			} else {
				repos[cfg.Repository] = rp
			}
		}
		if err := repoErr[cfg.Repository]; err != nil {
			st.State, st.Error, st.Err = StateUnknown, err.Error(), err
			out = append(out, st)
			continue
		}
		all, err := rp.Backups(ctx, name)
		if err != nil {
			st.State, st.Error, st.Err = StateUnknown, err.Error(), err
			out = append(out, st)
			continue
		}
		st.Backups = len(all)
		physical := false
		pool := map[string]bool{}
		for _, m := range all {
			physical = physical || m.Method == "physical"
			// Pool artifacts are shared between backups: count each once.
			for _, a := range m.Pool {
				if !pool[a.Name] {
					pool[a.Name] = true
					st.StoredBytes += a.StoredSize
				}
			}
			for _, a := range append(append([]repo.Artifact(nil), m.Artifacts...), m.Plain...) {
				st.StoredBytes += a.StoredSize
			}
			if m.ConsistentAt.After(st.ConsistentAt) {
				st.LatestID, st.LatestMethod, st.ConsistentAt = m.ID, m.Method, m.ConsistentAt
			}
		}
		if len(all) > 0 {
			st.Exposure, st.ExposureFrom = now.Sub(st.ConsistentAt), "backup"
		}
		if cfg.Kind == "postgres" && cfg.WAL != nil {
			if err := r.walStatus(ctx, rp, cfg.Name, &st); err != nil {
				st.State, st.Error, st.Err = StateUnknown, err.Error(), err
				out = append(out, st)
				continue
			}
			// WAL is only restorable on top of a physical backup.
			if physical && st.LastWALAt.After(st.ConsistentAt) {
				st.Exposure, st.ExposureFrom = now.Sub(st.LastWALAt), "wal"
			}
		}
		st.State = State(st.Exposure, st.RPO, len(all) > 0)
		out = append(out, st)
	}
	return out, nil
}
