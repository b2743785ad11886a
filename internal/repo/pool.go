package repo

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/linkapp/linkdr/internal/envelope"
)

// OpenPlain streams an unencrypted artifact (see CreatePlainArtifact).
// Reading it to the end checks its sums against the manifest. It needs no
// identity: incremental backups read their predecessor's plain artifacts
// on hosts that hold only public keys.
func (r *Repo) OpenPlain(ctx context.Context, m *Manifest, name string) (io.ReadCloser, error) {
	a, err := m.PlainArtifact(name)
	if err != nil {
		return nil, err
	}
	br, err := r.loc.bucket.NewReader(ctx, plainKey(m.Store, m.ID, name), nil)
	if isNotFound(err) {
		return nil, fmt.Errorf("plain artifact %s of backup %s: %w: object is missing", name, m.ID, envelope.ErrIntegrity)
	}
	if err != nil {
		return nil, fmt.Errorf("plain artifact %s of backup %s: %w", name, m.ID, err)
	}
	o, err := envelope.OpenPlain(br, &a.Sums)
	if err != nil {
		br.Close()
		return nil, err
	}
	return &artifactReader{Opener: o, body: br, what: fmt.Sprintf("plain artifact %s of backup %s", name, m.ID)}, nil
}

// PoolObject is one artifact found in a store's pool.
type PoolObject struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
}

// PruneReport says what PrunePool did (or, in a dry run, would do).
type PruneReport struct {
	// Referenced is how many pool artifacts kept backups still use.
	Referenced int `json:"referenced"`
	// Removed lists unreferenced pool artifacts deleted.
	Removed []string `json:"removed,omitempty"`
	// Locked lists unreferenced pool artifacts kept because their Object
	// Lock has not expired, with the date.
	Locked map[string]time.Time `json:"locked,omitempty"`
	// Young lists unreferenced pool artifacts kept because they are newer
	// than the grace period (a backup may be writing them right now).
	Young []string `json:"young,omitempty"`
}

// PrunePool deletes the pool artifacts of a store that no complete backup
// references any more. Hold the store's lease while calling it, so no
// backup is between writing a pool artifact and committing the manifest
// that references it; grace protects leftovers of backups still running
// elsewhere all the same. An artifact still under Object Lock is never
// touched: its lock date is derived from the backup id its name starts
// with and the repository's lock period.
//
// gone names backups to treat as already deleted (a dry run of retention
// passes the ones it would delete).
func (r *Repo) PrunePool(ctx context.Context, store string, grace time.Duration, gone map[string]bool, dryRun bool) (*PruneReport, error) {
	all, err := r.Backups(ctx, store)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, m := range all {
		if gone[m.ID] {
			continue
		}
		for _, a := range m.Pool {
			used[a.Name] = true
		}
	}
	objs, err := r.Pool(ctx, store)
	if err != nil {
		return nil, err
	}
	now := r.now()
	rep := &PruneReport{}
	for _, o := range objs {
		if used[o.Name] {
			rep.Referenced++
			continue
		}
		if now.Sub(o.ModTime) < grace {
			rep.Young = append(rep.Young, o.Name)
			continue
		}
		if until, ok := r.poolLockUntil(o.Name); ok && until.After(now) {
			if rep.Locked == nil {
				rep.Locked = map[string]time.Time{}
			}
			rep.Locked[o.Name] = until
			continue
		}
		if !dryRun {
			if err := r.loc.bucket.Delete(ctx, poolKey(store, o.Name)); err != nil && !isNotFound(err) {
				return rep, fmt.Errorf("prune pool of %s: delete %s: %w", store, o.Name, err)
			}
		}
		rep.Removed = append(rep.Removed, o.Name)
	}
	return rep, nil
}

// poolLockUntil derives an unreferenced pool artifact's lock date: pool
// names start with the id of the backup that wrote them, and that backup
// locked its objects for the repository's lock period from its start.
func (r *Repo) poolLockUntil(name string) (time.Time, bool) {
	if r.lock == nil {
		return time.Time{}, false
	}
	t, err := IDTime(name)
	if err != nil {
		// Unknown age: assume it was written just now.
		t = r.now()
	}
	return t.Add(time.Duration(r.lock.Days)*24*time.Hour + time.Second), true
}

// Pool lists the artifacts in a store's pool, by name.
func (r *Repo) Pool(ctx context.Context, store string) ([]PoolObject, error) {
	var out []PoolObject
	it := r.loc.bucket.List(&blob.ListOptions{Prefix: poolPrefix(store)})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list pool of %s: %w", store, err)
		}
		name, ok := strings.CutSuffix(strings.TrimPrefix(obj.Key, poolPrefix(store)), ArtifactSuffix)
		if !ok || obj.IsDir {
			continue
		}
		out = append(out, PoolObject{Name: name, Size: obj.Size, ModTime: obj.ModTime})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
