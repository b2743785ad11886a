package s3bucket

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/linkapp/linkdr/internal/plan"
)

// ErrNoReplica: the store has no replica in the plan.
var ErrNoReplica = errors.New("no replica configured")

// ObjectState is one side of a replication comparison.
type ObjectState struct {
	Size         int64     `json:"size"`
	ETag         string    `json:"etag"`
	LastModified time.Time `json:"last_modified"`
}

// Difference is one object that is not the same on both sides.
type Difference struct {
	Key     string       `json:"key"`
	Source  *ObjectState `json:"source,omitempty"`
	Replica *ObjectState `json:"replica,omitempty"`
}

// ReplicationReport compares a bucket with its replica.
type ReplicationReport struct {
	Store          string    `json:"store"`
	Source         string    `json:"source"`
	Replica        string    `json:"replica"`
	CheckedAt      time.Time `json:"checked_at"`
	SourceObjects  int       `json:"source_objects"`
	ReplicaObjects int       `json:"replica_objects"`
	// Missing objects are in the source and not in the replica; Different
	// ones differ in size or ETag; Extra ones are only in the replica
	// (deletions that were not replicated, or writes to the replica).
	Missing   []Difference `json:"missing"`
	Different []Difference `json:"different"`
	Extra     []Difference `json:"extra"`
	// Lag estimates how far the replica is behind: the age of the oldest
	// source change (new or modified object) it does not have yet. Zero
	// when it has every source object.
	Lag time.Duration `json:"lag_ns"`
	// OldestUnreplicated is when that change was written.
	OldestUnreplicated *time.Time `json:"oldest_unreplicated,omitempty"`
	// Tolerated counts differences younger than the allowed lag, which do
	// not make the replica out of sync.
	Tolerated int  `json:"tolerated"`
	InSync    bool `json:"in_sync"`
}

// VerifyReplication lists the store's bucket and its replica and reports
// what differs. maxLag tolerates source changes younger than it (they may
// still be in flight); zero tolerates nothing.
func VerifyReplication(ctx context.Context, cfg *plan.Store, maxLag time.Duration, now time.Time) (*ReplicationReport, error) {
	if cfg.Kind != "s3" {
		return nil, fmt.Errorf("store %s is of kind %s: replication verification is for s3 stores", cfg.Name, cfg.Kind)
	}
	if cfg.Replica == nil {
		return nil, fmt.Errorf("store %s: %w (hint: add replica: {url: s3://replica-bucket/prefix?region=…} to the store in the plan)", cfg.Name, ErrNoReplica)
	}
	src, err := ParseLocation(cfg.URL.Reveal())
	if err != nil {
		return nil, fmt.Errorf("store %s: url: %w", cfg.Name, err)
	}
	rep, err := ParseLocation(cfg.Replica.URL)
	if err != nil {
		return nil, fmt.Errorf("store %s: replica.url: %w", cfg.Name, err)
	}
	sc, err := src.Client(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := rep.Client(ctx)
	if err != nil {
		return nil, err
	}
	a, err := listAll(ctx, sc, src)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	b, err := listAll(ctx, rc, rep)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	return compare(cfg.Name, src, rep, a, b, maxLag, now), nil
}

// compare is the pure part of VerifyReplication.
func compare(name string, src, rep Location, a, b map[string]listed, maxLag time.Duration, now time.Time) *ReplicationReport {
	r := &ReplicationReport{Store: name, Source: src.String(), Replica: rep.String(), CheckedAt: now.UTC(),
		SourceObjects: len(a), ReplicaObjects: len(b), Missing: []Difference{}, Different: []Difference{}, Extra: []Difference{}}
	state := func(l listed) *ObjectState {
		return &ObjectState{Size: l.Size, ETag: l.ETag, LastModified: l.LastModified.UTC()}
	}
	var oldest time.Time
	note := func(t time.Time) {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
		if maxLag > 0 && now.Sub(t) < maxLag {
			r.Tolerated++
		}
	}
	for k, s := range a {
		d, ok := b[k]
		switch {
		case !ok:
			r.Missing = append(r.Missing, Difference{Key: k, Source: state(s)})
			note(s.LastModified)
		case d.Size != s.Size || d.ETag != s.ETag:
			r.Different = append(r.Different, Difference{Key: k, Source: state(s), Replica: state(d)})
			note(s.LastModified)
		}
	}
	for k, d := range b {
		if _, ok := a[k]; !ok {
			r.Extra = append(r.Extra, Difference{Key: k, Replica: state(d)})
		}
	}
	for _, l := range [][]Difference{r.Missing, r.Different, r.Extra} {
		sort.Slice(l, func(i, j int) bool { return l[i].Key < l[j].Key })
	}
	if !oldest.IsZero() {
		r.Lag = now.Sub(oldest)
		o := oldest.UTC()
		r.OldestUnreplicated = &o
	}
	r.InSync = len(r.Missing)+len(r.Different)-r.Tolerated == 0 && len(r.Extra) == 0
	return r
}
