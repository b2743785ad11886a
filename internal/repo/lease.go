package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// DefaultLeaseTTL is how long a lease lives without renewal. A writer
// renews at a third of it, so a crashed writer blocks others for at most
// this long.
const DefaultLeaseTTL = 2 * time.Minute

// ErrLeaseLost: the lease expired or was taken over while we held it.
var ErrLeaseLost = errors.New("lease lost")

// LeaseInfo is leases/<name>.json.
type LeaseInfo struct {
	Name     string    `json:"name"`
	Token    string    `json:"token"`
	Owner    string    `json:"owner"` // host:pid, for humans
	Purpose  string    `json:"purpose,omitempty"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// Lease is a held writer lease. One writer per store: two backups of the
// same store never interleave, whichever machine they run on.
type Lease struct {
	r    *Repo
	ttl  time.Duration
	mu   sync.Mutex
	info LeaseInfo
	stop chan struct{}
	lost chan struct{}
	once sync.Once
}

func leaseKey(name string) string { return "leases/" + name + ".json" }

// AcquireLease takes leases/<name>.json. If another live writer holds it
// the error wraps ErrLocked and says who and until when. An expired lease
// (its writer crashed) is taken over.
func (r *Repo) AcquireLease(ctx context.Context, name, purpose string, ttl time.Duration) (*Lease, error) {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	key := leaseKey(name)
	now := r.now().UTC()
	if cur, err := r.readLease(ctx, name); err == nil {
		if now.Before(cur.Expires) {
			return nil, lockedError(name, cur)
		}
		// Stale: its writer died without releasing it.
		if err := r.loc.bucket.Delete(ctx, key); err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("remove stale lease %s: %w", name, err)
		}
	} else if !isNotFound(err) {
		return nil, fmt.Errorf("read lease %s: %w", name, err)
	}
	host, _ := os.Hostname()
	info := LeaseInfo{
		Name: name, Token: randomHex(12), Owner: fmt.Sprintf("%s:%d", host, os.Getpid()), Purpose: purpose,
		Acquired: now, Expires: now.Add(ttl),
	}
	b, _ := json.Marshal(info)
	if err := r.writeAll(ctx, key, b, true); err != nil {
		if !isPrecondition(err) {
			return nil, fmt.Errorf("write lease %s: %w", name, err)
		}
		cur, rerr := r.readLease(ctx, name)
		switch {
		case rerr == nil:
			return nil, lockedError(name, cur)
		case !isNotFound(rerr):
			return nil, fmt.Errorf("lease %s: %w (taken a moment ago)", name, ErrLocked)
		}
		// The precondition failed yet there is no lease: in a versioned
		// bucket (Object Lock implies versioning) a released lease leaves a
		// delete marker, and some S3 servers (versitygw) treat that as an
		// existing object for If-None-Match. Write unconditionally; the
		// read-back below still settles a race between two writers.
		if err := r.writeAll(ctx, key, b, false); err != nil {
			return nil, fmt.Errorf("write lease %s: %w", name, err)
		}
	}
	// Read back: if two writers removed the same stale lease, only the one
	// whose token is there now holds it.
	cur, err := r.readLease(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read back lease %s: %w", name, err)
	}
	if cur.Token != info.Token {
		return nil, lockedError(name, cur)
	}
	return &Lease{r: r, ttl: ttl, info: info, stop: make(chan struct{}), lost: make(chan struct{})}, nil
}

func lockedError(name string, cur *LeaseInfo) error {
	return fmt.Errorf("%s: %w: held by %s (%s) since %s, expires %s (hint: wait for it to finish, or for the lease to expire if that writer died)",
		name, ErrLocked, cur.Owner, cur.Purpose, cur.Acquired.Format(time.RFC3339), cur.Expires.Format(time.RFC3339))
}

func (r *Repo) readLease(ctx context.Context, name string) (*LeaseInfo, error) {
	b, err := r.readAll(ctx, leaseKey(name))
	if err != nil {
		return nil, err
	}
	var li LeaseInfo
	if err := json.Unmarshal(b, &li); err != nil {
		// A torn or foreign lease file is treated as expired.
		return &LeaseInfo{Name: name, Owner: "unreadable lease file"}, nil
	}
	return &li, nil
}

// Info is the lease as last written.
func (l *Lease) Info() LeaseInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Renew extends the lease. ErrLeaseLost if someone else holds it now.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, err := l.r.readLease(ctx, l.info.Name)
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("%s: %w: lease file was removed", l.info.Name, ErrLeaseLost)
		}
		return fmt.Errorf("renew lease %s: %w", l.info.Name, err)
	}
	if cur.Token != l.info.Token {
		return fmt.Errorf("%s: %w: now held by %s", l.info.Name, ErrLeaseLost, cur.Owner)
	}
	next := l.info
	next.Expires = l.r.now().UTC().Add(l.ttl)
	b, _ := json.Marshal(next)
	if err := l.r.writeAll(ctx, leaseKey(l.info.Name), b, false); err != nil {
		return fmt.Errorf("renew lease %s: %w", l.info.Name, err)
	}
	l.info = next
	return nil
}

// KeepAlive renews the lease every ttl/3 until Release. If renewal fails
// for longer than the lease lives, Lost is closed and cancel is called so
// the writer stops before someone else takes over.
func (l *Lease) KeepAlive(cancel context.CancelCauseFunc) {
	go func() {
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		lastOK := time.Now()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				ctx, c := context.WithTimeout(context.Background(), l.ttl/3)
				err := l.Renew(ctx)
				c()
				switch {
				case err == nil:
					lastOK = time.Now()
				case errors.Is(err, ErrLeaseLost) || time.Since(lastOK) > l.ttl*2/3:
					l.once.Do(func() { close(l.lost) })
					cancel(err)
					return
				}
			}
		}
	}()
}

// Lost is closed when KeepAlive gave up the lease.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release deletes the lease if we still hold it. It uses its own deadline
// so it works after the caller's context was cancelled.
func (l *Lease) Release() error {
	select {
	case <-l.stop:
		return nil
	default:
		close(l.stop)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, err := l.r.readLease(ctx, l.info.Name)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("release lease %s: %w", l.info.Name, err)
	}
	if cur.Token != l.info.Token {
		return nil // already taken over; not ours to delete
	}
	if err := l.r.loc.bucket.Delete(ctx, leaseKey(l.info.Name)); err != nil && !isNotFound(err) {
		return fmt.Errorf("release lease %s: %w", l.info.Name, err)
	}
	return nil
}
