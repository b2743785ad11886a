package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// LeaderTerm is leader/<term>.json: one term of leadership among the
// replicas of `linkdr serve` that share this repository.
//
// Terms only grow. A replica becomes leader by creating the next term's
// object with an if-not-exists write, so of several candidates exactly
// one wins; the leader then renews by rewriting its own term's object,
// which no one else ever writes. Nobody deletes a term to take over (a
// delete-then-create takeover lets two candidates both win), so a late
// renewal of an old term can never resurrect its holder.
type LeaderTerm struct {
	Term     int64     `json:"term"`
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired"`
	Renewed  time.Time `json:"renewed"`
	// Expires is when others may start the next term if this one was not
	// renewed. A holder that steps down sets it to the time it stopped.
	Expires time.Time `json:"expires"`
}

const leaderPrefix = "leader/"

func termKey(term int64) string { return fmt.Sprintf("%s%020d.json", leaderPrefix, term) }

// CurrentTerm returns the newest leadership term, or nil if there was
// never a leader.
func (r *Repo) CurrentTerm(ctx context.Context) (*LeaderTerm, error) {
	var newest string
	it := r.loc.bucket.List(&blob.ListOptions{Prefix: leaderPrefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list leader terms: %w", err)
		}
		name := strings.TrimPrefix(obj.Key, leaderPrefix)
		if len(name) != 25 || !strings.HasSuffix(name, ".json") {
			continue // temporaries and foreign files
		}
		if _, err := strconv.ParseInt(strings.TrimSuffix(name, ".json"), 10, 64); err != nil {
			continue
		}
		if obj.Key > newest {
			newest = obj.Key
		}
	}
	if newest == "" {
		return nil, nil
	}
	b, err := r.readAll(ctx, newest)
	if err != nil {
		return nil, fmt.Errorf("read leader term: %w", err)
	}
	var t LeaderTerm
	if err := json.Unmarshal(b, &t); err != nil {
		// A torn write: the term exists but says nothing; treat it as
		// expired so the replicas can move on to the next one.
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(newest, leaderPrefix), ".json"), 10, 64)
		return &LeaderTerm{Term: n, Holder: "unreadable term file"}, nil
	}
	return &t, nil
}

// ClaimTerm creates term t.Term. If another replica created it first the
// error wraps ErrLocked.
func (r *Repo) ClaimTerm(ctx context.Context, t LeaderTerm) error {
	b, _ := json.Marshal(t)
	if err := r.writeAll(ctx, termKey(t.Term), b, true); err != nil {
		if isPrecondition(err) {
			return fmt.Errorf("leader term %d: %w", t.Term, ErrLocked)
		}
		return fmt.Errorf("claim leader term %d: %w", t.Term, err)
	}
	return nil
}

// RenewTerm rewrites the holder's own term (new Renewed and Expires).
func (r *Repo) RenewTerm(ctx context.Context, t LeaderTerm) error {
	b, _ := json.Marshal(t)
	if err := r.writeAll(ctx, termKey(t.Term), b, false); err != nil {
		return fmt.Errorf("renew leader term %d: %w", t.Term, err)
	}
	return nil
}

// PruneTerms deletes the terms before keep (the newest ones are enough to
// know who leads; old ones are history).
func (r *Repo) PruneTerms(ctx context.Context, keep int64) error {
	it := r.loc.bucket.List(&blob.ListOptions{Prefix: leaderPrefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list leader terms: %w", err)
		}
		if obj.Key < termKey(keep) && strings.HasSuffix(obj.Key, ".json") {
			if err := r.loc.bucket.Delete(ctx, obj.Key); err != nil && !isNotFound(err) {
				return fmt.Errorf("prune leader term %s: %w", obj.Key, err)
			}
		}
	}
}
