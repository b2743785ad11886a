package ops

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// IdentityEnv overrides encryption.identity_file.
const IdentityEnv = "LINKDR_AGE_IDENTITY_FILE"

// Progress receives byte counts of a long transfer.
type Progress interface {
	Add(n int64)
	Done()
}

// ProgressFunc starts progress reporting for one transfer; total is -1
// when unknown.
type ProgressFunc func(label string, total int64) Progress

// Runner performs operations for one plan.
type Runner struct {
	Plan     *plan.Plan
	Log      *slog.Logger
	Progress ProgressFunc // nil: no progress
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// LeaseTTL overrides repo.DefaultLeaseTTL (tests).
	LeaseTTL time.Duration

	idOnce sync.Once
	ids    []age.Identity
	idErr  error
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

// StoreConfig finds a store of the plan, with a hint listing the others.
func (r *Runner) StoreConfig(name string) (*plan.Store, error) {
	s, ok := r.Plan.Stores[name]
	if !ok || s == nil {
		return nil, fmt.Errorf("%w %q in %s (stores: %v)", ErrUnknownStore, name, r.Plan.Path, r.Plan.StoreNames())
	}
	return s, nil
}

// ErrUnknownStore: the plan has no such store.
var ErrUnknownStore = fmt.Errorf("unknown store")

// Store builds the kind implementation of a plan store.
func (r *Runner) Store(name string) (store.Store, *plan.Store, error) {
	cfg, err := r.StoreConfig(name)
	if err != nil {
		return nil, nil, err
	}
	s, err := store.New(cfg, store.Env{Plan: r.Plan, Log: r.log()})
	return s, cfg, err
}

// OpenRepo opens a repository of the plan by name ("" = primary).
func (r *Runner) OpenRepo(ctx context.Context, name string) (*repo.Repo, error) {
	if name == "" {
		name = plan.DefaultRepository
	}
	rc, ok := r.Plan.Repositories[name]
	if !ok {
		return nil, fmt.Errorf("no repository %q in %s (repositories: %v)", name, r.Plan.Path, r.Plan.RepositoryNames())
	}
	rp, err := repo.Open(ctx, rc.URL)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", name, err)
	}
	if ol := rc.ObjectLock; ol != nil {
		if err := rp.SetObjectLock(&repo.ObjectLock{Mode: ol.Mode, Days: ol.Days}); err != nil {
			rp.Close()
			return nil, fmt.Errorf("repository %s: %w", name, err)
		}
	}
	if r.Now != nil {
		rp.SetClock(r.Now)
	}
	return rp, nil
}

// Identities loads the age identity once: LINKDR_AGE_IDENTITY_FILE, else
// the plan's identity_file.
func (r *Runner) Identities() ([]age.Identity, error) {
	r.idOnce.Do(func() {
		path := os.Getenv(IdentityEnv)
		if path == "" {
			path = r.Plan.Resolve(r.Plan.Encryption.IdentityFile)
		}
		r.ids, r.idErr = envelope.LoadIdentities(path)
	})
	return r.ids, r.idErr
}

func (r *Runner) progress(label string, total int64) Progress {
	if r.Progress == nil {
		return nopProgress{}
	}
	return r.Progress(label, total)
}

type nopProgress struct{}

func (nopProgress) Add(int64) {}
func (nopProgress) Done()     {}

// countingReader reports bytes read to a Progress.
type countingReader struct {
	r io.Reader
	p Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.Add(int64(n))
	return n, err
}
