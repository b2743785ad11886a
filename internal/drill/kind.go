package drill

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// Kind is what a restore drill needs from a store kind.
type Kind interface {
	// WriteCanary inserts a canary record into the live store.
	WriteCanary(ctx context.Context, env Env, c Canary) error
	// LiveCanaries lists the canaries the live store holds.
	LiveCanaries(ctx context.Context, env Env) ([]Canary, error)
	// Scratch prepares an empty scratch target for restoring m. It must
	// return a Scratch whose Cleanup removes whatever was created even if
	// it also returns an error.
	Scratch(ctx context.Context, env Env, m *repo.Manifest) (Scratch, error)
	// History compares a backup's figures with the previous backup's.
	History(prev, cur *repo.Manifest, maxShrink float64) ([]drillreport.HistoryFinding, error)
}

// methodKind is a Kind that drills only some backup methods (Redis: resp,
// not the rdb snapshots that only a cold start loads).
type methodKind interface {
	DrillMethods() []string
}

// drillMethod is the method whose newest backup a drill of the store
// restores: the first of the kind's that the plan gives the store, or ""
// (the newest of any method) for kinds that drill every method, or when
// the plan gives none of them (Scratch then says what to add).
func drillMethod(k Kind, cfg *plan.Store) string {
	if mk, ok := k.(methodKind); ok {
		for _, m := range mk.DrillMethods() {
			if cfg.HasMethod(m) {
				return m
			}
		}
	}
	return ""
}

// Scratch is one restored copy of a store.
type Scratch interface {
	// Describe names the scratch target for the report (no secrets).
	Describe() string
	// Restore restores m into the scratch target.
	Restore(ctx context.Context, m *repo.Manifest) error
	// Compare proves the restored data against the manifest's stats.
	Compare(ctx context.Context, m *repo.Manifest) (drillreport.Integrity, error)
	// Canaries lists the canaries in the restored copy.
	Canaries(ctx context.Context) ([]Canary, error)
	// CheckURL is the URL a check of the store naming database should
	// probe instead of the live store; false when the copy has no such
	// database.
	CheckURL(database string) (string, bool)
	// Cleanup removes every scratch resource and says what it removed.
	Cleanup(ctx context.Context) ([]string, error)
}

// Env is what a kind gets for one store.
type Env struct {
	Ops   *ops.Runner
	Store *plan.Store
	// ScratchURL is the drill's scratch server for the store ("" = the
	// store's own server).
	ScratchURL string
	// Drill is the plan's drill name ("" for an ad-hoc drill), for hints
	// naming drills.NAME.scratch.STORE.
	Drill string
	// DrillID names scratch resources so leftovers can be traced.
	DrillID string
	// Latest is the store's newest backup, for kinds that learn from it
	// which parts (databases…) the store has.
	Latest *repo.Manifest
}

// Canary is a timestamped record written into a live store before a
// drill; whether it survives a restore shows what an outage would lose.
type Canary struct {
	ID        string
	Database  string
	WrittenAt time.Time
}

var (
	kindsMu sync.RWMutex
	kinds   = map[string]Kind{}
)

// RegisterKind makes a store kind drillable. Kinds call it from init.
func RegisterKind(name string, k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[name]; dup {
		panic("drill: kind registered twice: " + name)
	}
	kinds[name] = k
}

func kindOf(name string) (Kind, bool) {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	k, ok := kinds[name]
	return k, ok
}

// Kinds lists the drillable store kinds.
func Kinds() []string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// judgeIntegrity ends an integrity check: any problem in bad fails it with
// ErrMismatch and becomes its summary; otherwise ok is the summary.
func judgeIntegrity(in drillreport.Integrity, bad []string, ok string) (drillreport.Integrity, error) {
	in.OK = len(bad) == 0
	if !in.OK {
		in.Summary = strings.Join(bad, "; ")
		return in, fmt.Errorf("%w: %s", store.ErrMismatch, in.Summary)
	}
	in.Summary = ok
	return in, nil
}
