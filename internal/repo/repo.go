package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"gocloud.dev/blob"
)

// FormatVersion is the repository format this package reads and writes.
const FormatVersion = 1

// ConfigKey is the object that marks a repository.
const ConfigKey = "linkdr-repo.json"

// Sentinel errors, checked with errors.Is by the CLI to choose exit codes.
var (
	// ErrNotFound: there is no repository at the URL (no linkdr-repo.json).
	ErrNotFound = errors.New("repository not found")
	// ErrLocked: another writer holds the store's lease.
	ErrLocked = errors.New("locked by another writer")
	// ErrNoBackup: no backup matches the request.
	ErrNoBackup = errors.New("no such backup")
	// ErrUnsupportedFormat: the repository was written by a newer linkdr.
	ErrUnsupportedFormat = errors.New("unsupported repository format")
)

// Config is linkdr-repo.json: what a repository is, readable by a human
// with no linkdr at hand.
type Config struct {
	Format      int       `json:"format"`
	ID          string    `json:"id"`
	Created     time.Time `json:"created"`
	Encryption  string    `json:"encryption"`  // always "age"
	Compression string    `json:"compression"` // always "zstd"
	// Recipients are the age public keys of the plan that created the
	// repository; each manifest records the recipients it was written for.
	Recipients []string `json:"recipients"`
	Tool       Tool     `json:"tool"`
}

// Tool identifies the writer of an object.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Version is stamped into everything linkdr writes; set by the build.
var Version = "dev"

func tool() Tool { return Tool{Name: "linkdr", Version: Version} }

// Repo is an open repository.
type Repo struct {
	url  string
	loc  *location
	cfg  Config
	now  func() time.Time
	lock *ObjectLock

	// beforeCopy runs before CopyFrom writes each object (tests).
	beforeCopy func(key string)
}

// Open opens an existing repository. A URL with no repository behind it
// is ErrNotFound; one written in a newer format is ErrUnsupportedFormat.
func Open(ctx context.Context, url string) (*Repo, error) {
	loc, err := openLocation(ctx, url, false)
	if err != nil {
		return nil, err
	}
	r := &Repo{url: url, loc: loc, now: time.Now}
	b, err := r.readAll(ctx, ConfigKey)
	if isNotFound(err) {
		loc.close()
		return nil, fmt.Errorf("%w at %s (hint: run `linkdr repo init`, or check the URL and credentials)", ErrNotFound, redact(url))
	}
	if err != nil {
		loc.close()
		if loc.s3 {
			err = explainS3(err)
		}
		return nil, fmt.Errorf("open repository %s: %w", redact(url), err)
	}
	if err := json.Unmarshal(b, &r.cfg); err != nil {
		loc.close()
		return nil, fmt.Errorf("open repository %s: %s is not valid JSON: %v", redact(url), ConfigKey, err)
	}
	if r.cfg.Format != FormatVersion {
		loc.close()
		return nil, fmt.Errorf("%w %d at %s: this linkdr reads format %d", ErrUnsupportedFormat, r.cfg.Format, redact(url), FormatVersion)
	}
	return r, nil
}

// Init creates a repository, or opens the existing one (created=false):
// running it twice is harmless.
func Init(ctx context.Context, url string, recipients []string) (r *Repo, created bool, err error) {
	r, err = Open(ctx, url)
	if err == nil {
		return r, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	loc, err := openLocation(ctx, url, true)
	if err != nil {
		return nil, false, err
	}
	r = &Repo{url: url, loc: loc, now: time.Now}
	r.cfg = Config{
		Format:      FormatVersion,
		ID:          randomHex(8),
		Created:     r.now().UTC().Truncate(time.Second),
		Encryption:  "age",
		Compression: "zstd",
		Recipients:  recipients,
		Tool:        tool(),
	}
	b, _ := json.MarshalIndent(r.cfg, "", "  ")
	if err := r.writeAll(ctx, ConfigKey, b, true); err != nil {
		if isPrecondition(err) { // someone else initialised it just now
			loc.close()
			r, err = Open(ctx, url)
			return r, false, err
		}
		loc.close()
		return nil, false, fmt.Errorf("init repository %s: %w", redact(url), err)
	}
	return r, true, nil
}

// Close releases the storage.
func (r *Repo) Close() error { return r.loc.close() }

// Config returns linkdr-repo.json.
func (r *Repo) Config() Config { return r.cfg }

// URL is the repository's URL as configured.
func (r *Repo) URL() string { return r.url }

// Bucket exposes the storage for packages that extend the layout (WAL
// archive, drills, runs) under their own prefixes.
func (r *Repo) Bucket() *blob.Bucket { return r.loc.bucket }

// SetClock replaces the clock (tests).
func (r *Repo) SetClock(now func() time.Time) { r.now = now }

func (r *Repo) readAll(ctx context.Context, key string) ([]byte, error) {
	return r.loc.bucket.ReadAll(ctx, key)
}

// writeAll writes a small object durably; ifNotExist makes it conditional.
func (r *Repo) writeAll(ctx context.Context, key string, b []byte, ifNotExist bool) error {
	return r.writeLocked(ctx, key, b, ifNotExist, nil)
}

// writeLocked is writeAll with an Object Lock retention until the given
// time (nil: none).
func (r *Repo) writeLocked(ctx context.Context, key string, b []byte, ifNotExist bool, until *time.Time) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := r.loc.newWriter(wctx, key, &blob.WriterOptions{ContentType: "application/json", IfNotExist: ifNotExist, BeforeWrite: r.lockFunc(until)})
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, bytes.NewReader(b)); err != nil {
		cancel()
		w.Close()
		return err
	}
	return w.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// NewID returns a backup id that sorts by time: 20261126T061500Z-3fa2.
func NewID(t time.Time) string {
	return t.UTC().Format("20060102T150405Z") + "-" + randomHex(2)
}

// IDTime parses the time out of a backup id.
func IDTime(id string) (time.Time, error) {
	if len(id) < 16 {
		return time.Time{}, fmt.Errorf("invalid backup id %q", id)
	}
	return time.Parse("20060102T150405Z", id[:16])
}
