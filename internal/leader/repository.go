package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/linkapp/linkdr/internal/repo"
)

// Terms is what the repository elector needs of a repository
// (*repo.Repo implements it).
type Terms interface {
	CurrentTerm(ctx context.Context) (*repo.LeaderTerm, error)
	ClaimTerm(ctx context.Context, t repo.LeaderTerm) error
	RenewTerm(ctx context.Context, t repo.LeaderTerm) error
	PruneTerms(ctx context.Context, keep int64) error
}

var _ Terms = (*repo.Repo)(nil)

// Repository elects through leader/<term>.json in a repository.
type Repository struct {
	terms  Terms
	timing Timing
	log    *slog.Logger
	now    func() time.Time
	st     state
}

// NewRepository returns an elector on the repository's leader terms.
func NewRepository(terms Terms, identity string, timing Timing, log *slog.Logger) *Repository {
	r := &Repository{terms: terms, timing: timing, log: log, now: time.Now}
	r.st.obs = Observation{Mode: "repository", Identity: identity}
	return r
}

// Mode is "repository".
func (r *Repository) Mode() string { return "repository" }

// Observe returns what this replica last saw.
func (r *Repository) Observe() Observation { return r.st.get() }

// Run campaigns until ctx is done.
func (r *Repository) Run(ctx context.Context, lead func(ctx context.Context)) error {
	id := r.st.get().Identity
	for {
		term, err := r.campaign(ctx, id)
		if err != nil {
			return nil // ctx done
		}
		r.hold(ctx, term, lead)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// campaign waits until this replica holds a term.
func (r *Repository) campaign(ctx context.Context, id string) (repo.LeaderTerm, error) {
	for {
		if t, ok := r.tryClaim(ctx, id); ok {
			return t, nil
		}
		select {
		case <-ctx.Done():
			return repo.LeaderTerm{}, ctx.Err()
		case <-time.After(r.timing.RetryPeriod):
		}
	}
}

func (r *Repository) tryClaim(ctx context.Context, id string) (repo.LeaderTerm, bool) {
	cctx, cancel := context.WithTimeout(ctx, r.timing.RetryPeriod)
	defer cancel()
	cur, err := r.terms.CurrentTerm(cctx)
	if err != nil {
		r.unknown(err)
		return repo.LeaderTerm{}, false
	}
	start := r.now()
	if cur != nil && !start.After(cur.Expires) {
		r.st.update(func(o *Observation) {
			o.Leader, o.Known, o.Expires, o.Error, o.IsLeader = cur.Holder, true, cur.Expires, "", false
		})
		return repo.LeaderTerm{}, false
	}
	next := repo.LeaderTerm{Term: 1, Holder: id, Acquired: start.UTC(), Renewed: start.UTC(), Expires: start.Add(r.timing.LeaseDuration).UTC()}
	if cur != nil {
		next.Term = cur.Term + 1
	}
	if err := r.terms.ClaimTerm(cctx, next); err != nil {
		if !errors.Is(err, repo.ErrLocked) {
			r.unknown(err)
		}
		return repo.LeaderTerm{}, false // someone else won this term; look again
	}
	r.log.Info("became leader", "term", next.Term, "mode", "repository")
	r.st.update(func(o *Observation) {
		o.Leader, o.Known, o.IsLeader, o.Since, o.Expires, o.Error = id, true, true, start, next.Expires, ""
	})
	if next.Term > 3 {
		if err := r.terms.PruneTerms(cctx, next.Term-2); err != nil {
			r.log.Debug("prune leader terms", "err", err)
		}
	}
	return next, true
}

func (r *Repository) unknown(err error) {
	r.st.update(func(o *Observation) {
		if o.Expires.IsZero() || r.now().After(o.Expires) {
			o.Leader, o.Known = "", false
		}
		o.Error = err.Error()
	})
}

// hold leads during term t until a renewal fails for RenewDeadline, a
// later term appears, or ctx is done (then it steps down, so another
// replica can take over at once).
func (r *Repository) hold(ctx context.Context, t repo.LeaderTerm, lead func(ctx context.Context)) {
	// We lead until RenewDeadline after the start of the last renewal
	// that succeeded, while the others wait LeaseDuration after it. The
	// timer cancels the leadership by itself, whatever this loop is doing.
	leadCtx, stop := context.WithCancel(context.Background())
	deadline := time.AfterFunc(time.Until(t.Renewed.Add(r.timing.RenewDeadline)), stop)
	done := runLead(leadCtx, lead)
	defer func() {
		deadline.Stop()
		stop()
		<-done
		r.st.update(func(o *Observation) { o.IsLeader = false })
	}()
	lost := func(why string, err error) {
		stop()
		r.log.Warn("lost leadership", "term", t.Term, "reason", why, "err", err)
		r.st.update(func(o *Observation) {
			o.IsLeader = false
			if err != nil {
				o.Error = err.Error()
			}
		})
	}
	for {
		select {
		case <-ctx.Done():
			// Let the work stop before handing over.
			stop()
			<-done
			r.stepDown(t)
			return
		case <-leadCtx.Done():
			lost("renew deadline passed", errors.New("could not renew the leader term in time"))
			return
		case <-time.After(r.timing.RetryPeriod):
		}
		start := r.now()
		rctx, cancel := context.WithCancel(leadCtx)
		next := t
		next.Renewed, next.Expires = start.UTC(), start.Add(r.timing.LeaseDuration).UTC()
		err := r.terms.RenewTerm(rctx, next)
		var cur *repo.LeaderTerm
		if err == nil {
			cur, err = r.terms.CurrentTerm(rctx)
		}
		cancel()
		if err != nil {
			r.log.Debug("renew leader term", "term", t.Term, "err", err)
			continue // keep trying until the deadline
		}
		if cur != nil && cur.Term != t.Term {
			lost(fmt.Sprintf("term %d was started by %s", cur.Term, cur.Holder), nil)
			r.st.update(func(o *Observation) { o.Leader, o.Expires = cur.Holder, cur.Expires })
			return
		}
		if !deadline.Reset(time.Until(start.Add(r.timing.RenewDeadline))) {
			lost("renew deadline passed", errors.New("renewed too late"))
			return
		}
		t = next
		r.st.update(func(o *Observation) { o.Expires, o.Error = next.Expires, "" })
	}
}

// stepDown ends the term now so a follower need not wait for it to expire.
func (r *Repository) stepDown(t repo.LeaderTerm) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timing.RenewDeadline)
	defer cancel()
	now := r.now().UTC()
	t.Renewed, t.Expires = now, now
	if err := r.terms.RenewTerm(ctx, t); err != nil {
		r.log.Warn("step down: the term will expire by itself", "term", t.Term, "err", err)
		return
	}
	r.log.Info("stepped down", "term", t.Term)
}

// LazyTerms opens the repository on first use and again after a failed
// open, so a replica started while the repository is unreachable joins
// the election once it answers.
type LazyTerms struct {
	Open func(ctx context.Context) (Terms, error)
	mu   sync.Mutex
	t    Terms
}

func (l *LazyTerms) get(ctx context.Context) (Terms, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.t == nil {
		t, err := l.Open(ctx)
		if err != nil {
			return nil, err
		}
		l.t = t
	}
	return l.t, nil
}

// CurrentTerm implements Terms.
func (l *LazyTerms) CurrentTerm(ctx context.Context) (*repo.LeaderTerm, error) {
	t, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return t.CurrentTerm(ctx)
}

// ClaimTerm implements Terms.
func (l *LazyTerms) ClaimTerm(ctx context.Context, lt repo.LeaderTerm) error {
	t, err := l.get(ctx)
	if err != nil {
		return err
	}
	return t.ClaimTerm(ctx, lt)
}

// RenewTerm implements Terms.
func (l *LazyTerms) RenewTerm(ctx context.Context, lt repo.LeaderTerm) error {
	t, err := l.get(ctx)
	if err != nil {
		return err
	}
	return t.RenewTerm(ctx, lt)
}

// PruneTerms implements Terms.
func (l *LazyTerms) PruneTerms(ctx context.Context, keep int64) error {
	t, err := l.get(ctx)
	if err != nil {
		return err
	}
	return t.PruneTerms(ctx, keep)
}
