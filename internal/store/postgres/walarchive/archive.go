package walarchive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store/postgres/wal"
)

// Format of the sidecar objects.
const Format = 1

// Sentinel errors.
var (
	// ErrNotFound: the file is not in the archive (restore_command must
	// then exit 1, PostgreSQL's "no such file").
	ErrNotFound = errors.New("not in the WAL archive")
	// ErrConflict: a different file of the same name is already archived.
	ErrConflict = errors.New("a different file of the same name is already archived")
	// ErrForeign: the segment belongs to another cluster than the archive's.
	ErrForeign = errors.New("segment of another cluster")
)

// Sources of archived files.
const (
	SourceArchiveCommand = "archive_command"
	SourceStream         = "stream"
)

// Info is the sidecar of one archived file.
type Info struct {
	Format   int    `json:"format"`
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Timeline uint32 `json:"timeline"`
	// SegmentSize and SystemIdentifier come from the segment's own header.
	SegmentSize      int64  `json:"segment_size,omitempty"`
	SystemIdentifier string `json:"system_identifier,omitempty"`
	// StartLSN is where a segment begins; EndLSN is where its data ends
	// (the segment's end, or for a partial the last byte received).
	StartLSN wal.LSN `json:"start_lsn,omitempty"`
	EndLSN   wal.LSN `json:"end_lsn,omitempty"`
	// History is the parsed content of a timeline history file.
	History  []wal.Switch `json:"history,omitempty"`
	Archived time.Time    `json:"archived"`
	Source   string       `json:"source"`
	envelope.Sums
}

// Archive is one store's WAL archive in a repository.
type Archive struct {
	rp         *repo.Repo
	store      string
	recipients []string
	level      envelope.Level
	now        func() time.Time
	// beforeRetry runs before Fetch waits to try a partial again (tests).
	beforeRetry func()
}

// New opens the archive of store in rp. Recipients are needed to push,
// identities (passed to Fetch) to read.
func New(rp *repo.Repo, store string, recipients []string, level envelope.Level) *Archive {
	return &Archive{rp: rp, store: store, recipients: recipients, level: level, now: time.Now}
}

// SetClock replaces the clock (tests).
func (a *Archive) SetClock(now func() time.Time) { a.now = now }

// Prefix is wal/<store>/.
func Prefix(store string) string { return "wal/" + store + "/" }

func (a *Archive) dir(tli uint32) string { return fmt.Sprintf("%s%08X/", Prefix(a.store), tli) }

// DataKey is where a file's sealed content lives.
func (a *Archive) DataKey(n wal.Name) string {
	return a.dir(n.Timeline) + n.String() + repo.ArtifactSuffix
}

// InfoKey is where a file's sidecar lives.
func (a *Archive) InfoKey(n wal.Name) string { return a.dir(n.Timeline) + n.String() + ".json" }

// Stat reads a file's sidecar: ErrNotFound when it is not archived.
func (a *Archive) Stat(ctx context.Context, n wal.Name) (*Info, error) {
	b, err := a.rp.GetObject(ctx, a.InfoKey(n))
	if repo.IsNotExist(err) {
		return nil, fmt.Errorf("%s: %w", n, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var in Info
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%s: sidecar is not valid JSON: %v", a.InfoKey(n), err)
	}
	if in.Format != Format {
		return nil, fmt.Errorf("%s: %w %d", a.InfoKey(n), repo.ErrUnsupportedFormat, in.Format)
	}
	return &in, nil
}

// PushResult says what a push did.
type PushResult struct {
	Info *Info
	// AlreadyArchived: the same content was there; nothing was uploaded.
	AlreadyArchived bool
}

// Push archives one file's content under its WAL name. Pushing the same
// content twice is harmless; different content under the name of a
// complete segment or history file is ErrConflict (a .partial is
// replaced: it is the best prefix known of its segment). sysid, when not
// empty, must match the segment header's system identifier.
func (a *Archive) Push(ctx context.Context, name string, data []byte, source string) (*PushResult, error) {
	return a.push(ctx, name, int64(len(data)), data, func() (io.Reader, error) { return bytes.NewReader(data), nil }, source)
}

// PushFile is Push for a file on disk (archive_command's %p): it is
// streamed, never held in memory whole, and hashed before uploading only
// when a file of that name is already archived.
func (a *Archive) PushFile(ctx context.Context, path, source string) (*PushResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	head := make([]byte, min(fi.Size(), 64<<10))
	if _, err := io.ReadFull(f, head); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return a.push(ctx, filepath.Base(path), fi.Size(), head, func() (io.Reader, error) {
		_, err := f.Seek(0, io.SeekStart)
		return f, err
	}, source)
}

// push archives size bytes read from open(); head is their beginning
// (all of a history file).
func (a *Archive) push(ctx context.Context, name string, size int64, head []byte, open func() (io.Reader, error), source string) (*PushResult, error) {
	n, err := wal.ParseName(name)
	if err != nil {
		return nil, err
	}
	in := &Info{Format: Format, Name: name, Kind: n.Kind.String(), Timeline: n.Timeline, Source: source}
	switch n.Kind {
	case wal.Segment, wal.Partial:
		h, err := wal.ReadSegmentHeader(head)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := h.Check(n); err != nil {
			return nil, err
		}
		if n.Kind == wal.Segment && size != int64(h.SegmentSize) {
			return nil, fmt.Errorf("%s: %d bytes, but its header says segments are %d bytes: not a complete segment", name, size, h.SegmentSize)
		}
		in.SegmentSize = int64(h.SegmentSize)
		in.SystemIdentifier = fmt.Sprint(h.SystemIdentifier)
		in.StartLSN = wal.SegmentStart(n.SegNo(in.SegmentSize), in.SegmentSize)
		in.EndLSN = in.StartLSN + wal.LSN(size)
	case wal.History:
		if int64(len(head)) != size {
			return nil, fmt.Errorf("%s: a history file of %d bytes is too large", name, size)
		}
		if in.History, err = wal.ParseHistory(head); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if cur, err := a.Stat(ctx, n); err == nil {
		// Archived already (PostgreSQL retries after a crash): compare the
		// plaintext without the private key, by its recorded SHA-256.
		r, err := open()
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		got, err := io.Copy(h, r)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		plain := hex.EncodeToString(h.Sum(nil))
		if cur.PlainSHA256 == plain && cur.PlainSize == got {
			return &PushResult{Info: cur, AlreadyArchived: true}, nil
		}
		if n.Kind != wal.Partial {
			return nil, fmt.Errorf("%s: %w (archived %s, sha256 %.12s…; this one sha256 %.12s…). Two clusters may be archiving into store %s: check archive_command on every server",
				name, ErrConflict, cur.Archived.Format(time.RFC3339), cur.PlainSHA256, plain, a.store)
		}
		// Replacing a partial: remove its sidecar first, so a crash between
		// the two writes never pairs old sums with new data.
		if err := a.rp.DeleteObject(ctx, a.InfoKey(n)); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	r, err := open()
	if err != nil {
		return nil, err
	}
	sum, err := a.rp.PutSealed(ctx, a.DataKey(n), r, a.recipients, a.level)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", name, err)
	}
	if sum.PlainSize != size {
		return nil, fmt.Errorf("archive %s: %d bytes read, expected %d: the file changed while it was read", name, sum.PlainSize, size)
	}
	in.Sums = sum
	in.Archived = a.now().UTC()
	b, _ := json.MarshalIndent(in, "", "  ")
	if err := a.rp.PutObject(ctx, a.InfoKey(n), b, false); err != nil {
		return nil, fmt.Errorf("archive %s: %w", name, err)
	}
	return &PushResult{Info: in}, nil
}

// Delete removes an archived file: sidecar first, so it stops counting
// at once, then the data.
func (a *Archive) Delete(ctx context.Context, n wal.Name) error {
	if err := a.rp.DeleteObject(ctx, a.InfoKey(n)); err != nil {
		return err
	}
	return a.rp.DeleteObject(ctx, a.DataKey(n))
}

// Open streams an archived file's plaintext; reading it to the end checks
// its sums.
func (a *Archive) Open(ctx context.Context, n wal.Name, ids []age.Identity) (io.ReadCloser, *Info, error) {
	in, err := a.Stat(ctx, n)
	if err != nil {
		return nil, nil, err
	}
	rc, err := a.rp.OpenSealed(ctx, a.DataKey(n), ids, &in.Sums)
	if repo.IsNotExist(err) {
		return nil, in, fmt.Errorf("%s: %w: data object is missing but its sidecar exists", n, envelope.ErrIntegrity)
	}
	return rc, in, err
}

// Fetch writes an archived file to dst the way restore_command must:
// complete or not at all (a temporary file renamed into place after its
// sums were checked). For a segment that is not archived complete, the
// newest .partial of it is served instead, padded with zeros to the
// segment size as PostgreSQL expects; recovery then stops at its end.
func (a *Archive) Fetch(ctx context.Context, name, dst string, ids []age.Identity) (*Info, error) {
	return a.fetch(ctx, name, dst, ids, true)
}

// FetchComplete is Fetch without the .partial fallback (prefetching must
// not keep a partial that may be completed later).
func (a *Archive) FetchComplete(ctx context.Context, name, dst string, ids []age.Identity) (*Info, error) {
	return a.fetch(ctx, name, dst, ids, false)
}

// A streaming receiver replaces its .partial every few seconds, sidecar
// first: a restore fetching it in between finds the data without a
// sidecar, or new data under the old sums. Served as "not archived", that
// would end recovery a segment early, so Fetch waits for the replacement
// (which took up to 1.6 s under load in the tests) and tries again.
const (
	partialTries      = 20
	partialRetryDelay = 250 * time.Millisecond
)

func (a *Archive) fetch(ctx context.Context, name, dst string, ids []age.Identity, partialOK bool) (*Info, error) {
	for try := 1; ; try++ {
		in, err := a.fetchOnce(ctx, name, dst, ids, partialOK)
		if err == nil || !partialOK || try == partialTries || !a.partialInFlux(ctx, name, err) {
			return in, err
		}
		if a.beforeRetry != nil {
			a.beforeRetry()
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(partialRetryDelay):
		}
	}
}

// partialInFlux tells whether a failed fetch of segment name met its
// .partial in the middle of being replaced.
func (a *Archive) partialInFlux(ctx context.Context, name string, err error) bool {
	n, perr := wal.ParseName(name)
	if perr != nil || n.Kind != wal.Segment {
		return false
	}
	if _, serr := a.Stat(ctx, n); !errors.Is(serr, ErrNotFound) {
		return false // the complete segment is archived: not a partial's trouble
	}
	p := n
	p.Kind = wal.Partial
	switch {
	case errors.Is(err, ErrNotFound):
		ok, _ := a.rp.Bucket().Exists(ctx, a.DataKey(p)) // data, no sidecar yet
		return ok
	case errors.Is(err, envelope.ErrIntegrity):
		return true // new data under the old sidecar's sums
	}
	return false
}

func (a *Archive) fetchOnce(ctx context.Context, name, dst string, ids []age.Identity, partialOK bool) (*Info, error) {
	n, err := wal.ParseName(name)
	if err != nil {
		return nil, err
	}
	rc, in, err := a.Open(ctx, n, ids)
	if errors.Is(err, ErrNotFound) && n.Kind == wal.Segment && partialOK {
		p := n
		p.Kind = wal.Partial
		rc, in, err = a.Open(ctx, p, ids)
		if errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%s: %w", name, ErrNotFound)
		}
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tmp := dst + ".linkdr.tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, rc)
	if err == nil && in.Kind == wal.Partial.String() && in.SegmentSize > in.Sums.PlainSize {
		err = f.Truncate(in.SegmentSize) // sparse zeros: an invalid record ends replay there
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("fetch %s: %w", name, err)
	}
	return in, nil
}

// Entry is one file found by List.
type Entry struct {
	Name wal.Name
	// Archived: its sidecar exists (it counts). A data object without a
	// sidecar is the leftover of an interrupted push.
	Archived bool
	HasData  bool
	// Size is the stored size of the data object.
	Size int64
}

// List lists the archive, sorted by timeline, then position, then kind.
func (a *Archive) List(ctx context.Context) ([]Entry, error) {
	objs, err := a.rp.ListObjects(ctx, Prefix(a.store), "")
	if err != nil {
		return nil, err
	}
	byName := map[string]*Entry{}
	for _, o := range objs {
		base := filepath.Base(o.Key)
		var name string
		isData := false
		switch {
		case strings.HasSuffix(base, repo.ArtifactSuffix):
			name, isData = strings.TrimSuffix(base, repo.ArtifactSuffix), true
		case strings.HasSuffix(base, ".json"):
			name = strings.TrimSuffix(base, ".json")
		default:
			continue
		}
		n, err := wal.ParseName(name)
		if err != nil {
			continue
		}
		e := byName[name]
		if e == nil {
			e = &Entry{Name: n}
			byName[name] = e
		}
		if isData {
			e.HasData, e.Size = true, o.Size
		} else {
			e.Archived = true
		}
	}
	out := make([]Entry, 0, len(byName))
	for _, e := range byName {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return Less(out[i].Name, out[j].Name) })
	return out, nil
}

// Less orders WAL names by timeline, then position, then kind.
func Less(a, b wal.Name) bool {
	if a.Timeline != b.Timeline {
		return a.Timeline < b.Timeline
	}
	if a.Log != b.Log {
		return a.Log < b.Log
	}
	if a.Seg != b.Seg {
		return a.Seg < b.Seg
	}
	return a.Kind < b.Kind
}

// IsNotFound reports whether err means the file is not archived.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrNotExist) }
