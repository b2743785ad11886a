package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/envelope"
)

// Stores lists the stores that have a directory under backups/.
func (r *Repo) Stores(ctx context.Context) ([]string, error) {
	var out []string
	it := r.loc.bucket.List(&blob.ListOptions{Prefix: backupsPrefix(), Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list stores: %w", err)
		}
		if obj.IsDir {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(obj.Key, backupsPrefix()), "/"))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Backups lists the complete backups of a store (all stores when store is
// empty), oldest first. Directories without a manifest are skipped: they
// are backups that never finished.
func (r *Repo) Backups(ctx context.Context, store string) ([]*Manifest, error) {
	stores := []string{store}
	if store == "" {
		var err error
		if stores, err = r.Stores(ctx); err != nil {
			return nil, err
		}
	}
	type ref struct{ store, id string }
	var refs []ref
	for _, s := range stores {
		ids, err := r.backupDirs(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			refs = append(refs, ref{s, id})
		}
	}
	// Manifests are small and independent: read them concurrently, which
	// matters on S3 where each read is a round trip.
	found := make([]*Manifest, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, rf := range refs {
		g.Go(func() error {
			m, err := r.readManifest(gctx, rf.store, rf.id)
			if isNotFound(err) {
				return nil // never finished: not a backup
			}
			found[i] = m
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []*Manifest
	for _, m := range found {
		if m != nil {
			out = append(out, m)
		}
	}
	// Ids have whole seconds and a random suffix: two backups started in
	// the same second would sort by chance. The start time does not.
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Store < out[j].Store
	})
	return out, nil
}

// Incomplete lists backup directories with no manifest, with the time in
// their id: leftovers of interrupted backups (or ones still running).
func (r *Repo) Incomplete(ctx context.Context, store string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	ids, err := r.backupDirs(ctx, store)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		ok, err := r.loc.bucket.Exists(ctx, manifestKey(store, id))
		if err != nil {
			return nil, err
		}
		if !ok {
			t, _ := IDTime(id)
			out[id] = t
		}
	}
	return out, nil
}

func (r *Repo) backupDirs(ctx context.Context, store string) ([]string, error) {
	var ids []string
	it := r.loc.bucket.List(&blob.ListOptions{Prefix: storePrefix(store), Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list backups of %s: %w", store, err)
		}
		if obj.IsDir {
			ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(obj.Key, storePrefix(store)), "/"))
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func (r *Repo) readManifest(ctx context.Context, store, id string) (*Manifest, error) {
	b, err := r.readAll(ctx, manifestKey(store, id))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("backup %s/%s: manifest is not valid JSON: %v", store, id, err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("backup %s/%s: %w %d", store, id, ErrUnsupportedFormat, m.Format)
	}
	return &m, nil
}

// Backup finds one backup by id (or unique id prefix, or "store/id").
func (r *Repo) Backup(ctx context.Context, ref string) (*Manifest, error) {
	store, id, hasStore := strings.Cut(ref, "/")
	if !hasStore {
		store, id = "", ref
	}
	all, err := r.Backups(ctx, store)
	if err != nil {
		return nil, err
	}
	var found []*Manifest
	for _, m := range all {
		if m.ID == id {
			return m, nil
		}
		if strings.HasPrefix(m.ID, id) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w %q (hint: `linkdr backups list` shows the ids)", ErrNoBackup, ref)
	case 1:
		return found[0], nil
	default:
		return nil, fmt.Errorf("backup id %q is ambiguous: %d backups start with it", ref, len(found))
	}
}

// Latest returns the newest backup of a store, optionally of one method.
func (r *Repo) Latest(ctx context.Context, store, method string) (*Manifest, error) {
	all, err := r.Backups(ctx, store)
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if method == "" || all[i].Method == method {
			return all[i], nil
		}
	}
	if method != "" && len(all) > 0 {
		return nil, fmt.Errorf("%w: store %s has no %s backups yet (hint: run `linkdr backup %s --method %s`)", ErrNoBackup, store, method, store, method)
	}
	return nil, fmt.Errorf("%w: store %s has no backups yet (hint: run `linkdr backup %s`)", ErrNoBackup, store, store)
}

// OpenArtifact streams an artifact's plaintext. Reading it to the end
// checks both SHA-256 sums and sizes against the manifest; damage is
// reported as envelope.ErrIntegrity, a wrong key as envelope.ErrWrongKey.
func (r *Repo) OpenArtifact(ctx context.Context, m *Manifest, name string, ids []age.Identity) (io.ReadCloser, error) {
	a, err := m.Artifact(name)
	if err != nil {
		return nil, err
	}
	key := artifactKey(m.Store, m.ID, name)
	if m.InPool(name) {
		key = poolKey(m.Store, name)
	}
	br, err := r.loc.bucket.NewReader(ctx, key, nil)
	if isNotFound(err) {
		return nil, fmt.Errorf("artifact %s of backup %s: %w: object is missing", name, m.ID, envelope.ErrIntegrity)
	}
	if err != nil {
		return nil, fmt.Errorf("artifact %s of backup %s: %w", name, m.ID, err)
	}
	o, err := envelope.Open(br, ids, &a.Sums)
	if err != nil {
		br.Close()
		return nil, fmt.Errorf("artifact %s of backup %s: %w", name, m.ID, err)
	}
	return &artifactReader{Opener: o, body: br, what: fmt.Sprintf("artifact %s of backup %s", name, m.ID)}, nil
}

type artifactReader struct {
	*envelope.Opener
	body io.Closer
	what string
}

func (a *artifactReader) Read(p []byte) (int, error) {
	n, err := a.Opener.Read(p)
	if err != nil && err != io.EOF && !strings.HasPrefix(err.Error(), a.what) {
		err = fmt.Errorf("%s: %w", a.what, err)
	}
	return n, err
}

func (a *artifactReader) Close() error {
	a.Opener.Close()
	return a.body.Close()
}

// Delete removes a backup: manifest first (so it stops existing at once),
// then its artifacts.
func (r *Repo) Delete(ctx context.Context, m *Manifest) error {
	if now := r.now(); locked(m, now) {
		what := "retain_until " + m.RetainUntil.UTC().Format(time.RFC3339)
		if m.ObjectLock != "" {
			what = "object lock (" + m.ObjectLock + ") until " + m.RetainUntil.UTC().Format(time.RFC3339)
		}
		return fmt.Errorf("delete backup %s: %w: %s", m.ID, ErrRetained, what)
	}
	if err := r.loc.bucket.Delete(ctx, manifestKey(m.Store, m.ID)); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete backup %s: %w", m.ID, err)
	}
	return r.deletePrefix(ctx, backupPrefix(m.Store, m.ID))
}

// DeleteIncomplete removes the leftovers of an interrupted backup.
func (r *Repo) DeleteIncomplete(ctx context.Context, store, id string) error {
	if ok, err := r.loc.bucket.Exists(ctx, manifestKey(store, id)); err != nil || ok {
		if ok {
			return errors.New("backup is complete; use Delete")
		}
		return err
	}
	return r.deletePrefix(ctx, backupPrefix(store, id))
}

func (r *Repo) deletePrefix(ctx context.Context, prefix string) error {
	it := r.loc.bucket.List(&blob.ListOptions{Prefix: prefix})
	var errs []error
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if err := r.loc.bucket.Delete(ctx, obj.Key); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", obj.Key, err))
		}
	}
	return errors.Join(errs...)
}
