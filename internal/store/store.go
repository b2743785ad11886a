// Package store defines what a store kind (postgres, redis, …) implements
// and the registry that builds one from its plan entry. Kinds live in
// sub-packages and register themselves; the ops package drives them with
// the repository, so a kind never sees leases, manifests being written,
// or the CLI.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
)

// ErrMismatch: a restored target does not hold what the backup's stats
// say it should (rows, checksums, keys…). The CLI reports it as an
// integrity failure.
var ErrMismatch = errors.New("restored data does not match the backup")

// ErrTargetNotEmpty: the restore target already holds data and Force was
// not given.
var ErrTargetNotEmpty = errors.New("restore target is not empty")

// Store backs up and restores one data store.
type Store interface {
	// Backup streams the store's data into artifacts created on the sink
	// and reports what the data is and when it was consistent.
	Backup(ctx context.Context, req BackupRequest) (*BackupResult, error)
	// Restore reads a backup's artifacts from the source into a target.
	Restore(ctx context.Context, req RestoreRequest) (*RestoreResult, error)
	// VerifyArtifact checks that an artifact's plaintext (already proven
	// intact by its checksums) is usable by the kind's own tools, e.g.
	// `pg_restore --list`. It must read r to the end.
	VerifyArtifact(ctx context.Context, m *repo.Manifest, a *repo.Artifact, r io.Reader) error
}

// Sink is where a backup writes its artifacts. Every artifact must be
// closed before Backup returns; an error from Close fails the backup.
type Sink interface {
	CreateArtifact(ctx context.Context, name, mediaType string, meta map[string]string) (io.WriteCloser, error)
}

// CompressedSink is a Sink that also takes streams that are already zstd
// (standard frames) of the artifact's plaintext, e.g. compressed by the
// server being backed up: they are encrypted as they are and decoded only
// to hash the plaintext. The stored artifact is the same as CreateArtifact
// would write.
type CompressedSink interface {
	CreateCompressedArtifact(ctx context.Context, name, mediaType string, meta map[string]string) (io.WriteCloser, error)
}

// Source reads a backup's artifacts. Reading one to the end proves its
// checksums; an integrity error surfaces from Read.
type Source interface {
	OpenArtifact(ctx context.Context, name string) (io.ReadCloser, error)
}

// BackupRequest asks for one backup by one method.
type BackupRequest struct {
	Method string
	Sink   Sink
	Log    *slog.Logger
	// ID is the new backup's id (pool artifact names start with it).
	ID string
	// Previous is the newest complete backup of the store by the same
	// method, or nil: incremental kinds compare against it.
	Previous *repo.Manifest
	// History reads the plain artifacts of earlier backups; nil when the
	// caller offers none.
	History History
}

// IncrementalSink is a Sink that can share artifacts between backups of
// a store (the repository's pool) and store plain artifacts. The ops
// package's sink implements it; incremental kinds type-assert it.
type IncrementalSink interface {
	Sink
	// CreatePoolArtifact writes an artifact into the store's pool; name
	// must be unique there (start it with BackupRequest.ID).
	CreatePoolArtifact(ctx context.Context, name, mediaType string, meta map[string]string) (io.WriteCloser, error)
	// ReferencePool records that the backup uses a pool artifact of an
	// earlier backup, as listed in that backup's manifest.
	ReferencePool(a repo.Artifact) error
	// CreatePlainArtifact writes an unencrypted (zstd only) artifact; it
	// must hold no user content.
	CreatePlainArtifact(ctx context.Context, name, mediaType string) (io.WriteCloser, error)
}

// History reads what earlier backups left for later ones, without the
// private key.
type History interface {
	OpenPlain(ctx context.Context, m *repo.Manifest, name string) (io.ReadCloser, error)
}

// BackupResult is what the kind knows once its artifacts are stored.
type BackupResult struct {
	// ConsistentAt is the moment the data represents.
	ConsistentAt time.Time
	// Source and Stats go into the manifest as JSON; the kind documents
	// their shape in docs/format.md.
	Source any
	Stats  any
}

// RestoreRequest asks to restore one backup.
type RestoreRequest struct {
	Manifest *repo.Manifest
	Source   Source
	// Target is where to restore, as a URL of the kind's scheme; empty
	// means the store itself.
	Target string
	// Select restricts the restore to some parts (databases, collections…).
	Select []string
	// Rename restores a part under another name (collection old → new).
	Rename map[string]string
	// Jobs is the parallelism the kind may use (at least 1).
	Jobs int
	// Force allows overwriting a target that already holds data.
	Force bool
	// Verify compares the restored data with the manifest's stats.
	Verify bool
	// TempDir is where a kind may spool data when its tool needs a file.
	TempDir string
	Log     *slog.Logger
}

// RestoreResult reports what was restored and what verification found.
type RestoreResult struct {
	Target string         `json:"target"`
	Items  []RestoredItem `json:"items"`
}

// RestoredItem is one restored part (a database, a collection…).
type RestoredItem struct {
	Name     string        `json:"name"`
	Target   string        `json:"target"`
	Duration time.Duration `json:"duration_ns"`
	// Verified is true when the restored data matched the manifest's stats.
	Verified bool `json:"verified"`
	// Checked says what verification compared, e.g. "12 tables: rows and checksums".
	Checked string `json:"checked,omitempty"`
}

// VerifyRequest asks a kind to check one backup as a whole.
type VerifyRequest struct {
	Manifest *repo.Manifest
	Source   Source
	// Repo gives access to what lives beside the backup (a WAL archive).
	Repo       *repo.Repo
	Identities []age.Identity
	Log        *slog.Logger
}

// BackupVerifier is implemented by kinds that check some backups as a
// whole rather than artifact by artifact (files against a manifest inside
// the backup, logs outside it). handled=false means "not this backup":
// the caller falls back to VerifyArtifact.
type BackupVerifier interface {
	VerifyBackup(ctx context.Context, req VerifyRequest) (handled bool, err error)
}

// RecoveryTarget is how far a point-in-time restore replays. Exactly one
// of Time, LSN, Name or Latest is set.
type RecoveryTarget struct {
	Time   time.Time `json:"time,omitzero"`
	LSN    string    `json:"lsn,omitempty"`
	Name   string    `json:"name,omitempty"`
	Latest bool      `json:"latest,omitempty"`
}

// String describes the target for messages.
func (t RecoveryTarget) String() string {
	switch {
	case !t.Time.IsZero():
		return "time " + t.Time.UTC().Format(time.RFC3339Nano)
	case t.LSN != "":
		return "LSN " + t.LSN
	case t.Name != "":
		return "restore point " + strconv.Quote(t.Name)
	}
	return "the end of the archived log"
}

// PITRRequest asks for a point-in-time restore into a new data directory.
type PITRRequest struct {
	Store string
	// Backups are the store's complete backups, oldest first; Backup, if
	// set, is the one to use (else the kind picks the newest usable one).
	Backups []*repo.Manifest
	Backup  string
	Repo    *repo.Repo
	// Open reads the artifacts of the chosen backup.
	Open       func(m *repo.Manifest) Source
	Identities []age.Identity
	Target     RecoveryTarget
	TargetDir  string
	// Port for the restored server (0: keep the backup's).
	Port int
	// Start the server and wait until recovery reaches the target.
	Start bool
	Force bool
	// DryRun chooses and checks everything and writes nothing.
	DryRun bool
	// Archive keeps the backup's archive settings in the restored server;
	// otherwise archive_mode is turned off so a scratch copy never writes
	// into the production WAL archive.
	Archive bool
	// RestoreCommand is the restore_command the restored server runs
	// (linkdr wal-fetch …), with %f and %p.
	RestoreCommand string
	Log            *slog.Logger
}

// PITRResult reports a point-in-time restore (or its dry run).
type PITRResult struct {
	Store        string         `json:"store"`
	Backup       string         `json:"backup"`
	ConsistentAt time.Time      `json:"backup_consistent_at"`
	Target       RecoveryTarget `json:"target"`
	TargetDir    string         `json:"target_dir"`
	// WAL is the kind's account of the log it replays (first/last
	// segment, missing ones).
	WAL      any  `json:"wal"`
	Complete bool `json:"complete"`
	DryRun   bool `json:"dry_run"`
	Started  bool `json:"started"`
	// Reached is where recovery stopped, once started.
	Reached any `json:"reached,omitempty"`
	// Warnings are things the operator should know before relying on the result.
	Warnings []string `json:"warnings,omitempty"`
}

// PointInTimeRestorer is implemented by kinds that restore to a point in
// time from a base backup and a log archive.
type PointInTimeRestorer interface {
	RestorePITR(ctx context.Context, req PITRRequest) (*PITRResult, error)
}

// ErrIncomplete: the log needed to reach the target is not all archived.
var ErrIncomplete = errors.New("the archived log does not reach the target")

// Env is what a kind gets from the plan besides its own entry.
type Env struct {
	Plan *plan.Plan
	Log  *slog.Logger
}

// Factory builds a kind's Store from its plan entry.
type Factory func(cfg *plan.Store, env Env) (Store, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a kind available. Kinds call it from init.
func Register(kind string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[kind]; dup {
		panic("store: kind registered twice: " + kind)
	}
	factories[kind] = f
}

// Kinds lists the registered kinds.
func Kinds() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(factories))
	for k := range factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// New builds the Store for a plan entry.
func New(cfg *plan.Store, env Env) (Store, error) {
	mu.RLock()
	f, ok := factories[cfg.Kind]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("store %s: kind %q is not built into this linkdr", cfg.Name, cfg.Kind)
	}
	return f(cfg, env)
}
