package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"sync"
	"time"

	"filippo.io/age"
	"gocloud.dev/blob"

	"github.com/linkapp/linkdr/internal/envelope"
)

// BackupWriter stores the artifacts of one backup, then its manifest.
// Until Commit succeeds the backup is invisible; Abort removes what was
// written.
type BackupWriter struct {
	r          *Repo
	store      string
	kind       string
	method     string
	id         string
	started    time.Time
	recipients []age.Recipient
	recipText  []string
	level      envelope.Level

	mu        sync.Mutex
	artifacts []Artifact
	pool      []Artifact
	plain     []Artifact
	written   []string // keys, for Abort
	done      bool
	// lockUntil is the Object Lock retention of every object written.
	lockUntil *time.Time
}

// WriterOptions configures a new backup.
type WriterOptions struct {
	Store, Kind, Method string
	// Recipients are age public keys ("age1…").
	Recipients []string
	Level      envelope.Level
}

var artifactNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$`)

// NewBackup starts a backup. Hold the store's lease while writing.
func (r *Repo) NewBackup(opts WriterOptions) (*BackupWriter, error) {
	rc, err := envelope.ParseRecipients(opts.Recipients)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	w := &BackupWriter{
		r: r, store: opts.Store, kind: opts.Kind, method: opts.Method,
		id: NewID(now), started: now, recipients: rc, recipText: opts.Recipients, level: opts.Level,
	}
	if r.lock != nil {
		// Whole seconds: S3 stores retain-until dates at that precision, and
		// the manifest must not claim a later date than the objects carry.
		until := now.Add(time.Duration(r.lock.Days) * 24 * time.Hour).Truncate(time.Second)
		w.lockUntil = &until
	}
	return w, nil
}

// LockUntil is the Object Lock retention date of the backup's objects, or
// nil when the repository has no Object Lock.
func (w *BackupWriter) LockUntil() *time.Time { return w.lockUntil }

// ID is the new backup's id.
func (w *BackupWriter) ID() string { return w.id }

// Started is when the backup began.
func (w *BackupWriter) Started() time.Time { return w.started }

// ArtifactWriter is one artifact being stored. Close completes it; an
// error from any Write or from Close means the artifact is not usable.
type ArtifactWriter struct {
	bw     *BackupWriter
	list   *[]Artifact // where Close records the artifact
	art    Artifact
	key    string
	cancel context.CancelFunc
	blob   io.WriteCloser
	seal   *envelope.Sealer
	err    error
}

// CreateArtifact opens a new artifact for streaming. name must be unique
// within the backup and safe as an object name.
func (w *BackupWriter) CreateArtifact(ctx context.Context, name, mediaType string, meta map[string]string) (*ArtifactWriter, error) {
	return w.create(ctx, name, mediaType, meta, artifactKey(w.store, w.id, name), &w.artifacts, false)
}

// CreateCompressedArtifact is CreateArtifact for input that is already a
// zstd stream of the plaintext: it is stored encrypted as it is (the
// object has the same format), and its sums describe the plaintext.
func (w *BackupWriter) CreateCompressedArtifact(ctx context.Context, name, mediaType string, meta map[string]string) (*ArtifactWriter, error) {
	return w.create(ctx, name, mediaType, meta, artifactKey(w.store, w.id, name), &w.artifacts, true)
}

// CreatePoolArtifact opens a new artifact in the store's pool
// (pool/<store>/<name>.zst.age): it outlives this backup for as long as
// any backup lists it in its manifest's pool. name must be unique in the
// pool; prefixing it with the backup id makes it so.
func (w *BackupWriter) CreatePoolArtifact(ctx context.Context, name, mediaType string, meta map[string]string) (*ArtifactWriter, error) {
	return w.create(ctx, name, mediaType, meta, poolKey(w.store, name), &w.pool, false)
}

// CreatePlainArtifact opens an artifact that is compressed but NOT
// encrypted (<name>.zst in the backup's directory). Only for data that
// holds no user content and that a later backup must read without the
// private key, like the fingerprints incremental backups compare.
func (w *BackupWriter) CreatePlainArtifact(ctx context.Context, name, mediaType string) (*ArtifactWriter, error) {
	return w.create(ctx, name, mediaType, nil, plainKey(w.store, w.id, name), &w.plain, false)
}

// ReferencePool records that this backup uses a pool artifact that an
// earlier backup of the same store wrote (a's sums come from that
// backup's manifest). Retention keeps it while any backup references it.
func (w *BackupWriter) ReferencePool(a Artifact) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errors.New("backup already committed or aborted")
	}
	if w.taken(a.Name) {
		return nil
	}
	w.pool = append(w.pool, a)
	return nil
}

// taken reports whether a name is already used in the backup; w.mu held.
func (w *BackupWriter) taken(name string) bool {
	for _, list := range [][]Artifact{w.artifacts, w.pool, w.plain} {
		for _, a := range list {
			if a.Name == name {
				return true
			}
		}
	}
	return false
}

func (w *BackupWriter) create(ctx context.Context, name, mediaType string, meta map[string]string, key string, list *[]Artifact, compressed bool) (*ArtifactWriter, error) {
	if !artifactNameRE.MatchString(name) {
		return nil, fmt.Errorf("invalid artifact name %q", name)
	}
	w.mu.Lock()
	if w.taken(name) {
		w.mu.Unlock()
		return nil, fmt.Errorf("artifact %q written twice", name)
	}
	w.written = append(w.written, key)
	w.mu.Unlock()

	wctx, cancel := context.WithCancel(ctx)
	bw, err := w.r.loc.newWriter(wctx, key, &blob.WriterOptions{
		ContentType: "application/octet-stream",
		BufferSize:  8 << 20, // S3 part size: fewer round trips, bounded memory
		BeforeWrite: w.r.lockFunc(w.lockUntil),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("create artifact %s: %w", name, err)
	}
	var s *envelope.Sealer
	switch {
	case compressed:
		s, err = envelope.SealCompressed(bw, w.recipients)
	case list == &w.plain:
		s, err = envelope.SealPlain(bw, w.level)
	default:
		s, err = envelope.Seal(bw, w.recipients, w.level)
	}
	if err != nil {
		cancel()
		bw.Close()
		return nil, err
	}
	return &ArtifactWriter{bw: w, list: list, art: Artifact{Name: name, MediaType: mediaType, Meta: meta}, key: key, cancel: cancel, blob: bw, seal: s}, nil
}

// Write streams plaintext into the artifact.
func (a *ArtifactWriter) Write(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	n, err := a.seal.Write(p)
	if err != nil {
		a.err = fmt.Errorf("write artifact %s: %w", a.art.Name, err)
	}
	return n, a.err
}

// ReadFrom streams r into the artifact with large buffers.
func (a *ArtifactWriter) ReadFrom(r io.Reader) (int64, error) {
	if a.err != nil {
		return 0, a.err
	}
	n, err := a.seal.ReadFrom(r)
	if err != nil {
		a.err = fmt.Errorf("write artifact %s: %w", a.art.Name, err)
	}
	return n, err
}

// Abort discards the artifact (the upload is cancelled).
func (a *ArtifactWriter) Abort() {
	if a.err == nil {
		a.err = errors.New("aborted")
	}
	a.cancel()
	a.seal.Close()
	a.blob.Close()
}

// Close finishes the artifact and records its sums.
func (a *ArtifactWriter) Close() error {
	defer a.cancel()
	if a.err != nil {
		a.Abort()
		return a.err
	}
	if err := a.seal.Close(); err != nil {
		a.Abort()
		return fmt.Errorf("store artifact %s: %w", a.art.Name, err)
	}
	if err := a.blob.Close(); err != nil {
		return fmt.Errorf("store artifact %s: %w", a.art.Name, err)
	}
	a.art.Sums = a.seal.Sums()
	a.bw.mu.Lock()
	*a.list = append(*a.list, a.art)
	a.bw.mu.Unlock()
	return nil
}

// Sums of the closed artifact.
func (a *ArtifactWriter) Sums() envelope.Sums { return a.art.Sums }

// CommitInfo is what the store kind knows at the end of its backup.
type CommitInfo struct {
	ConsistentAt time.Time
	Source       any // marshalled into Manifest.Source
	Stats        any // marshalled into Manifest.Stats
	RetainUntil  *time.Time
}

// Commit writes the manifest, making the backup visible. It is the last
// write of a backup.
func (w *BackupWriter) Commit(ctx context.Context, info CommitInfo) (*Manifest, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil, errors.New("backup already committed or aborted")
	}
	if len(w.artifacts) == 0 && len(w.pool) == 0 {
		return nil, errors.New("commit: backup has no artifacts")
	}
	if err := ctx.Err(); err != nil {
		return nil, err // interrupted before the manifest: the backup never existed
	}
	// Sorted, so the manifest does not depend on the order a kind
	// referenced them in.
	sort.Slice(w.pool, func(i, j int) bool { return w.pool[i].Name < w.pool[j].Name })
	m := &Manifest{
		Format: FormatVersion, ID: w.id, Store: w.store, Kind: w.kind, Method: w.method,
		Started: w.started, Finished: w.r.now().UTC(), ConsistentAt: info.ConsistentAt.UTC(),
		Artifacts:   w.artifacts,
		Pool:        w.pool,
		Plain:       w.plain,
		Encryption:  Encryption{Scheme: "age", Compression: "zstd", Recipients: w.recipText},
		RetainUntil: info.RetainUntil,
		Tool:        tool(),
	}
	if m.Artifacts == nil {
		m.Artifacts = []Artifact{}
	}
	if w.lockUntil != nil {
		// The objects cannot be deleted before this anyway; saying so lets
		// retention skip them with a reason instead of failing on them.
		if m.RetainUntil == nil || m.RetainUntil.Before(*w.lockUntil) {
			m.RetainUntil = w.lockUntil
		}
		m.ObjectLock = w.r.lock.Mode
	}
	var err error
	if info.Source != nil {
		if m.Source, err = json.Marshal(info.Source); err != nil {
			return nil, fmt.Errorf("commit: source: %w", err)
		}
	}
	if info.Stats != nil {
		if m.Stats, err = json.Marshal(info.Stats); err != nil {
			return nil, fmt.Errorf("commit: stats: %w", err)
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := w.r.writeLocked(ctx, manifestKey(w.store, w.id), b, true, w.lockUntil); err != nil {
		return nil, fmt.Errorf("commit backup %s: write manifest: %w", w.id, err)
	}
	w.done = true
	return m, nil
}

// Abort deletes every artifact written so far. It uses its own short
// deadline so it works after the caller's context was cancelled (Ctrl-C).
func (w *BackupWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, k := range w.written {
		if err := w.r.loc.bucket.Delete(ctx, k); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
