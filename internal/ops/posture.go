package ops

import (
	"context"
	"net/url"
	"time"

	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
)

// Posture is the whole protection picture that `linkdr status`, the
// dashboard, the API and the metrics show: each store's RPO exposure, its
// copies in other regions, the freshness of its last verification and of
// its WAL archive, and each repository's reachability, size and copy lag.
// Everything is read from the repositories; no daemon is needed.
type Posture struct {
	At           time.Time          `json:"at"`
	Stores       []StoreStatus      `json:"stores"`
	Repositories []RepositoryStatus `json:"repositories"`
	// Leader is the current term of the repository leader election in
	// the primary repository, when that mode is used.
	Leader *repo.LeaderTerm `json:"leader,omitempty"`
}

// RepositoryStatus is one repository of the plan.
type RepositoryStatus struct {
	Name      string `json:"name"`
	URL       string `json:"url"` // credentials removed
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	Bytes     int64  `json:"bytes"`
	Objects   int    `json:"objects"`
	// CopyFrom and the copy's lag behind it, for copies.
	CopyFrom     string        `json:"copy_from,omitempty"`
	CopyLag      time.Duration `json:"copy_lag_ns,omitempty"`
	CopyPending  int           `json:"copy_pending,omitempty"`
	CopyPendingB int64         `json:"copy_pending_bytes,omitempty"`
	// CopyOldest is the modification time of the oldest object not yet
	// copied (zero when in sync): the lag grows from it.
	CopyOldest time.Time `json:"copy_oldest,omitzero"`
	CopyError  string    `json:"copy_error,omitempty"`
}

// CopyExposure is a store's RPO exposure counting only what reached a copy.
type CopyExposure struct {
	Repository   string        `json:"repository"`
	LatestID     string        `json:"latest_id,omitempty"`
	ConsistentAt time.Time     `json:"consistent_at,omitzero"`
	Exposure     time.Duration `json:"exposure_ns"`
	State        string        `json:"state"`
	Error        string        `json:"error,omitempty"`
	// Verify is the last verification of the newest backup in the copy.
	Verify *repo.VerifyRecord `json:"verify,omitempty"`
}

// BackupRef is a backup in a store's timeline.
type BackupRef struct {
	ID           string    `json:"id"`
	Method       string    `json:"method"`
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished"`
	ConsistentAt time.Time `json:"consistent_at"`
	StoredBytes  int64     `json:"stored_bytes"`
}

// RecentBackups is how many of a store's newest backups Posture lists.
const RecentBackups = 50

// Posture reads every repository of the plan. Unreachable repositories
// are reported in their status, not as an error.
func (r *Runner) Posture(ctx context.Context) (*Posture, error) {
	now := r.now()
	st, err := r.Status(ctx)
	if err != nil {
		return nil, err
	}
	p := &Posture{At: now, Stores: st}
	repos := map[string]*repo.Repo{}
	defer func() {
		for _, rp := range repos {
			rp.Close()
		}
	}()
	for _, name := range r.Plan.RepositoryNames() {
		rc := r.Plan.Repositories[name]
		rs := RepositoryStatus{Name: name, URL: redactURL(rc.URL), CopyFrom: rc.CopyFrom}
		rp, err := r.OpenRepo(ctx, name)
		if err == nil {
			var u repo.Usage
			if u, err = rp.Usage(ctx); err == nil {
				repos[name] = rp
				rs.Reachable, rs.Bytes, rs.Objects = true, u.Bytes, u.Objects
			} else {
				rp.Close()
			}
		}
		if err != nil {
			rs.Error = err.Error()
		}
		p.Repositories = append(p.Repositories, rs)
	}
	for i := range p.Repositories {
		rs := &p.Repositories[i]
		dst, src := repos[rs.Name], repos[rs.CopyFrom]
		if rs.CopyFrom == "" || dst == nil || src == nil {
			continue
		}
		cp, err := dst.PlanCopy(ctx, src)
		if err != nil {
			rs.CopyError = err.Error()
			continue
		}
		rs.CopyLag, rs.CopyPending, rs.CopyPendingB, rs.CopyOldest = cp.Lag(now), cp.Objects, cp.Bytes, cp.Oldest
	}
	for i := range p.Stores {
		s := &p.Stores[i]
		home := repos[s.Repository]
		if home == nil {
			continue
		}
		all, err := home.Backups(ctx, s.Store)
		if err == nil {
			for j := max(0, len(all)-RecentBackups); j < len(all); j++ {
				m := all[j]
				s.Recent = append(s.Recent, BackupRef{ID: m.ID, Method: m.Method, Started: m.Started, Finished: m.Finished, ConsistentAt: m.ConsistentAt, StoredBytes: m.StoredSize()})
			}
		}
		if v, err := home.VerifyRecord(ctx, s.Store); err == nil {
			s.Verify = v
		}
		if !s.LastWALAt.IsZero() {
			s.WALNewest, s.WALLag = s.LastWALAt, max(now.Sub(s.LastWALAt), 0)
		} else if newest, n, err := home.Newest(ctx, "wal/"+s.Store+"/"); err == nil && n > 0 {
			s.WALNewest, s.WALLag = newest, max(now.Sub(newest), 0)
		}
		for _, copyName := range r.Plan.CopiesOf(s.Repository) {
			ce := CopyExposure{Repository: copyName, State: StateUnknown}
			if dst := repos[copyName]; dst == nil {
				ce.Error = "repository unreachable"
			} else if all, err := dst.Backups(ctx, s.Store); err != nil {
				ce.Error = err.Error()
			} else {
				for _, m := range all {
					if m.ConsistentAt.After(ce.ConsistentAt) {
						ce.LatestID, ce.ConsistentAt = m.ID, m.ConsistentAt
					}
				}
				if len(all) > 0 {
					ce.Exposure = now.Sub(ce.ConsistentAt)
				}
				ce.State = State(ce.Exposure, s.RPO, len(all) > 0)
				if v, err := dst.VerifyRecord(ctx, s.Store); err == nil {
					ce.Verify = v
				}
			}
			s.Copies = append(s.Copies, ce)
		}
	}
	if le := r.Plan.Serve.LeaderElection.Mode; le == plan.ElectRepository || le == plan.ElectAuto {
		if rp := repos[plan.DefaultRepository]; rp != nil {
			if t, err := rp.CurrentTerm(ctx); err == nil {
				p.Leader = t
			}
		}
	}
	return p, nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}
