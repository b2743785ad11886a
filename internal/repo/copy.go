package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/linkapp/linkdr/internal/envelope"
)

// CopiedPrefixes are the parts of a repository that a copy (a repository
// with copy_from) receives: everything that is data or evidence. Leases,
// leader terms and verification records belong to each repository.
// Whatever other parts of linkdr write under these prefixes is copied
// without the copier knowing it.
var CopiedPrefixes = []string{"backups/", "pool/", "wal/", "drills/", "runs/"}

// ManifestName commits a directory: in any directory holding one, the
// copier writes it after every other object of the directory has been
// copied and verified, so a copy is invisible until complete, exactly as
// in the source. Under backups/ a directory without one is an unfinished
// backup and is not copied.
const ManifestName = "manifest.json"

// ErrCopyMismatch: an object read back from the copy differs from the
// source, or the source differs from its manifest.
var ErrCopyMismatch = errors.New("copy does not match its source")

// errSourceReplaced: a .partial was replaced in the source while it was
// being copied; the unit is tried again.
var errSourceReplaced = errors.New("replaced in the source while being copied")

// replacedTries bounds how often a unit is tried again in one pass when
// its source keeps being replaced (a receiver replaces its .partial every
// few seconds; copying one takes milliseconds).
const replacedTries = 3

// SidecarSuffix names an object's sidecar: outside backup directories,
// X.json beside X.zst.age is X's commit record (the WAL archive's
// sidecars). The copier writes the sidecar after its object, as it
// writes a manifest after a backup's artifacts, and checks the object
// against the sidecar's stored_sha256.
const SidecarSuffix = ".json"

// replaceable tells whether an object may be replaced whole by another of
// the same size: a .partial WAL file and its sidecar, which the streaming
// receiver rewrites as the segment grows. Everything else is written once
// or only appended to, so its size tells whether the copy has it.
func replaceable(key string) bool { return strings.Contains(path.Base(key), ".partial.") }

// sidecarData is the object a sidecar commits ("" if key is no sidecar).
func sidecarData(key string) string {
	if !strings.HasSuffix(key, SidecarSuffix) || path.Base(key) == ManifestName {
		return ""
	}
	return strings.TrimSuffix(key, SidecarSuffix) + ArtifactSuffix
}

// CopyItem is one object the copy lacks.
type CopyItem struct {
	Key     string    `json:"key"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	// Reason: "missing", "size differs" (an append-only journal grew), or
	// "replaced" (a .partial WAL file grew; its sidecar changed).
	Reason string `json:"reason"`
}

// CopyPlan is what a copy lacks, grouped into units: one backup
// directory (manifest last), one object and its sidecar (sidecar last),
// or one object.
type CopyPlan struct {
	Units [][]CopyItem `json:"units"`
	// Objects and Bytes count everything pending.
	Objects int   `json:"objects"`
	Bytes   int64 `json:"bytes"`
	// Oldest is the modification time of the oldest pending object: the
	// copy lags the source by now minus Oldest (zero when in sync).
	Oldest time.Time `json:"oldest,omitzero"`
	// SourceBytes and CopyBytes are the sizes of the copied prefixes.
	SourceBytes int64 `json:"source_bytes"`
	CopyBytes   int64 `json:"copy_bytes"`
}

// Lag is how far the copy is behind at now.
func (p *CopyPlan) Lag(now time.Time) time.Duration {
	if p.Oldest.IsZero() {
		return 0
	}
	return max(now.Sub(p.Oldest), 0)
}

type listed struct {
	size int64
	mod  time.Time
}

func listPrefixes(ctx context.Context, b *blob.Bucket) (map[string]listed, error) {
	out := map[string]listed{}
	for _, p := range CopiedPrefixes {
		it := b.List(&blob.ListOptions{Prefix: p})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", p, err)
			}
			if obj.IsDir || strings.HasSuffix(obj.Key, ".tmp") {
				continue // a temporary of a write in progress
			}
			out[obj.Key] = listed{size: obj.Size, mod: obj.ModTime}
		}
	}
	return out, nil
}

// PlanCopy compares the copied prefixes of src with r (the copy).
// Objects are compared by key and size: everything linkdr writes there is
// written once or only appended to, and each copy was verified when made.
func (r *Repo) PlanCopy(ctx context.Context, src *Repo) (*CopyPlan, error) {
	have, err := listPrefixes(ctx, src.loc.bucket)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", redact(src.url), err)
	}
	got, err := listPrefixes(ctx, r.loc.bucket)
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", redact(r.url), err)
	}
	p := &CopyPlan{}
	for _, o := range got {
		p.CopyBytes += o.size
	}
	dirs := map[string][]string{} // directory → keys
	for k, o := range have {
		p.SourceBytes += o.size
		dirs[path.Dir(k)] = append(dirs[path.Dir(k)], k)
	}
	var units [][]CopyItem
	for dir, keys := range dirs {
		sort.Strings(keys)
		manifest := dir + "/" + ManifestName
		_, committed := have[manifest]
		if !committed && strings.HasPrefix(dir, "backups/") && strings.Count(dir, "/") == 2 {
			continue // a backup still being written (or abandoned)
		}
		if committed {
			if g, ok := got[manifest]; ok && g.size == have[manifest].size {
				continue // complete and verified when its manifest was written
			}
			// The whole directory is one unit, manifest last. Objects the
			// copy already holds are verified again before the manifest
			// is written (an earlier pass may have died in between).
			var unit []CopyItem
			for _, k := range keys {
				if k == manifest {
					continue
				}
				unit = append(unit, item(k, have[k], got))
			}
			unit = append(unit, item(manifest, have[manifest], got))
			units = append(units, unit)
			continue
		}
		for _, k := range keys {
			if strings.HasSuffix(k, ArtifactSuffix) {
				if _, ok := have[strings.TrimSuffix(k, ArtifactSuffix)+SidecarSuffix]; ok {
					continue // goes with its sidecar
				}
			}
			if data := sidecarData(k); data != "" {
				if _, ok := have[data]; ok {
					unit, err := r.planSidecar(ctx, src, data, k, have, got)
					if err != nil {
						return nil, err
					}
					if unit != nil {
						units = append(units, unit)
					}
					continue
				}
			}
			if g, ok := got[k]; ok && g.size == have[k].size {
				continue
			}
			units = append(units, []CopyItem{item(k, have[k], got)})
		}
	}
	// Newest first: after an outage the copy's exposure shrinks fastest.
	sort.Slice(units, func(i, j int) bool {
		a, b := units[i][len(units[i])-1], units[j][len(units[j])-1]
		if !a.ModTime.Equal(b.ModTime) {
			return a.ModTime.After(b.ModTime)
		}
		return a.Key > b.Key
	})
	for _, u := range units {
		for _, it := range u {
			if it.Reason == "" {
				continue
			}
			p.Objects++
			p.Bytes += it.Size
			if p.Oldest.IsZero() || it.ModTime.Before(p.Oldest) {
				p.Oldest = it.ModTime
			}
		}
	}
	p.Units = units
	return p, nil
}

// planSidecar returns the unit for an object and its sidecar, or nil when
// the copy holds both as they are. A replaceable pair of the same sizes is
// compared by its sidecars' bytes (a few hundred, and there are only as
// many as live .partial files).
func (r *Repo) planSidecar(ctx context.Context, src *Repo, data, sidecar string, have, got map[string]listed) ([]CopyItem, error) {
	unit := []CopyItem{item(data, have[data], got), item(sidecar, have[sidecar], got)}
	if unit[0].Reason != "" || unit[1].Reason != "" {
		return unit, nil
	}
	if !replaceable(sidecar) {
		return nil, nil
	}
	a, err := src.readAll(ctx, sidecar)
	if isNotFound(err) {
		return nil, nil // being replaced right now: the next pass sees the new one
	}
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", sidecar, err)
	}
	b, err := r.readAll(ctx, sidecar)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("copy %s: %w", sidecar, err)
	}
	if bytes.Equal(a, b) {
		return nil, nil
	}
	unit[0].Reason, unit[1].Reason = "replaced", "replaced"
	return unit, nil
}

func item(k string, o listed, got map[string]listed) CopyItem {
	it := CopyItem{Key: k, Size: o.size, ModTime: o.mod}
	switch g, ok := got[k]; {
	case !ok:
		it.Reason = "missing"
	case g.size != o.size:
		it.Reason = "size differs"
	}
	return it
}

// CopyReport is what one copy pass did.
type CopyReport struct {
	Copied   int      `json:"copied"`
	Verified int      `json:"verified"`
	Bytes    int64    `json:"bytes"`
	Errors   []string `json:"errors,omitempty"`
	// Remaining is what is still pending after the pass.
	Remaining *CopyPlan `json:"remaining,omitempty"`
}

// CopyFrom copies into r every object of src's copied prefixes that r
// lacks (with r's Object Lock, if it has one): each is streamed, hashed (SHA-256), read back from r and
// compared, and for a backup also checked against its manifest's
// stored_sha256; a backup's manifest is written only after all its
// artifacts passed. The copy is idempotent (what is there is skipped) and
// resumable (a pass that dies leaves complete, verified objects and no
// visible partial backup). Errors on one unit do not stop the others;
// they are returned joined. progress, if not nil, gets each copied key.
func (r *Repo) CopyFrom(ctx context.Context, src *Repo, progress func(key string, bytes int64)) (*CopyReport, error) {
	plan, err := r.PlanCopy(ctx, src)
	if err != nil {
		return nil, err
	}
	rep := &CopyReport{}
	var errs []error
	for _, unit := range plan.Units {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		err := r.copyUnit(ctx, src, unit, rep, progress)
		for try := 1; errors.Is(err, errSourceReplaced) && try < replacedTries; try++ {
			err = r.copyUnit(ctx, src, unit, rep, progress)
		}
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			errs = append(errs, err)
		}
	}
	if rest, err := r.PlanCopy(ctx, src); err == nil {
		rep.Remaining = rest
	}
	return rep, errors.Join(errs...)
}

func (r *Repo) copyUnit(ctx context.Context, src *Repo, unit []CopyItem, rep *CopyReport, progress func(string, int64)) error {
	last := unit[len(unit)-1]
	var want map[string]string // key → stored_sha256, from the manifest
	// With Object Lock on the copy, its objects are locked as its own
	// backups would be: from the backup's start (from now for objects
	// outside backups), unless the source manifest says until when.
	var until *time.Time
	if r.lock != nil {
		u := time.Now().UTC().AddDate(0, 0, r.lock.Days)
		until = &u
	}
	var sidecar []byte // a sidecar's bytes as read, written last as they are
	if data := sidecarData(last.Key); data != "" && len(unit) == 2 && unit[0].Key == data {
		b, err := src.readAll(ctx, last.Key)
		if isNotFound(err) && replaceable(last.Key) {
			return fmt.Errorf("copy %s: %w", last.Key, errSourceReplaced)
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", last.Key, err)
		}
		var sums envelope.Sums
		if err := json.Unmarshal(b, &sums); err != nil {
			return fmt.Errorf("copy %s: not a sidecar: %w", last.Key, err)
		}
		want = map[string]string{data: sums.StoredSHA256}
		// The copy drops its old sidecar first, as the source did, so old
		// sums never pair with new data there either.
		if unit[1].Reason != "missing" {
			if err := r.loc.bucket.Delete(ctx, last.Key); err != nil && !isNotFound(err) {
				return fmt.Errorf("copy %s: %w", last.Key, err)
			}
			unit[1].Reason = "replaced"
		}
		sidecar = b
	} else if path.Base(last.Key) == ManifestName {
		b, err := src.readAll(ctx, last.Key)
		if err != nil {
			return fmt.Errorf("copy %s: %w", last.Key, err)
		}
		var m Manifest
		if json.Unmarshal(b, &m) == nil && m.Store != "" && m.ID != "" {
			if r.lock != nil {
				u := m.Started.UTC().AddDate(0, 0, r.lock.Days)
				if m.RetainUntil != nil && m.RetainUntil.After(u) {
					u = *m.RetainUntil
				}
				until = &u
			}
			want = map[string]string{}
			for _, a := range m.Artifacts {
				want[artifactKey(m.Store, m.ID, a.Name)] = a.StoredSHA256
			}
			for _, a := range m.Plain {
				want[plainKey(m.Store, m.ID, a.Name)] = a.StoredSHA256
			}
			// Every artifact must be there before the manifest may be.
			for k := range want {
				if !hasItem(unit, k) {
					return fmt.Errorf("copy %s: %w: artifact %s is missing in the source", last.Key, ErrCopyMismatch, k)
				}
			}
			// So must the pool artifacts it uses, which live outside its
			// directory: copy those the copy lacks first.
			var pool []CopyItem
			for _, a := range m.Pool {
				k := poolKey(m.Store, a.Name)
				want[k] = a.StoredSHA256
				if attrs, err := r.loc.bucket.Attributes(ctx, k); err == nil && attrs.Size == a.StoredSize {
					continue
				}
				pool = append(pool, CopyItem{Key: k, Size: a.StoredSize, Reason: "missing"})
			}
			unit = append(pool, unit...)
		}
	}
	for _, it := range unit {
		expect := want[it.Key]
		if it.Reason != "" && len(unit) == 1 {
			// A pool artifact may have come along with a backup that
			// uses it earlier in this pass.
			if attrs, err := r.loc.bucket.Attributes(ctx, it.Key); err == nil && attrs.Size == it.Size {
				continue
			}
		}
		if it.Reason == "" {
			// Already in the copy (a pass died before the manifest):
			// prove it before committing the directory.
			sum, _, err := r.hashObject(ctx, it.Key)
			if err != nil {
				return fmt.Errorf("verify copied %s: %w", it.Key, err)
			}
			if expect == "" {
				if expect, _, err = src.hashObject(ctx, it.Key); err != nil {
					return fmt.Errorf("verify copied %s: %w", it.Key, err)
				}
			}
			if sum == expect {
				rep.Verified++
				continue
			}
		}
		if r.beforeCopy != nil {
			r.beforeCopy(it.Key)
		}
		var n int64
		var err error
		if sidecar != nil && it.Key == last.Key {
			n, err = r.writeVerified(ctx, it.Key, bytes.NewReader(sidecar), "application/json", "", until)
		} else {
			n, err = r.copyObject(ctx, src, it.Key, expect, until)
		}
		if err != nil && sidecar != nil && errors.Is(err, ErrCopyMismatch) && replaceable(it.Key) {
			if now, rerr := src.readAll(ctx, last.Key); rerr != nil || !bytes.Equal(now, sidecar) {
				return fmt.Errorf("copy %s: %w", it.Key, errSourceReplaced)
			}
		}
		if err != nil {
			return err
		}
		rep.Copied++
		rep.Verified++
		rep.Bytes += n
		if progress != nil {
			progress(it.Key, n)
		}
	}
	return nil
}

func hasItem(unit []CopyItem, key string) bool {
	for _, it := range unit {
		if it.Key == key {
			return true
		}
	}
	return false
}

// copyObject streams one object from src into r and reads it back.
// expect, when set, is the SHA-256 the source object must have.
func (r *Repo) copyObject(ctx context.Context, src *Repo, key, expect string, until *time.Time) (int64, error) {
	rd, err := src.loc.bucket.NewReader(ctx, key, nil)
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", key, err)
	}
	defer rd.Close()
	return r.writeVerified(ctx, key, rd, rd.ContentType(), expect, until)
}

// writeVerified writes rd to key in r, then reads it back and compares.
func (r *Repo) writeVerified(ctx context.Context, key string, rd io.Reader, contentType, expect string, until *time.Time) (int64, error) {
	h := sha256.New()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := r.loc.newWriter(wctx, key, &blob.WriterOptions{ContentType: contentType, BeforeWrite: r.lockFunc(until)})
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", key, err)
	}
	n, err := io.Copy(w, io.TeeReader(rd, h))
	if err != nil {
		cancel() // abandons the write: nothing appears under key
		w.Close()
		return 0, fmt.Errorf("copy %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("copy %s: %w", key, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if expect != "" && sum != expect {
		r.loc.bucket.Delete(context.Background(), key)
		return 0, fmt.Errorf("copy %s: %w: the source's SHA-256 %s differs from its manifest's %s (the source is damaged: `linkdr verify` it)", key, ErrCopyMismatch, sum, expect)
	}
	back, size, err := r.hashObject(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("read back %s: %w", key, err)
	}
	if back != sum || size != n {
		r.loc.bucket.Delete(context.Background(), key)
		return 0, fmt.Errorf("copy %s: %w: wrote %d bytes with SHA-256 %s, read back %d bytes with %s", key, ErrCopyMismatch, n, sum, size, back)
	}
	return n, nil
}

func (r *Repo) hashObject(ctx context.Context, key string) (string, int64, error) {
	rd, err := r.loc.bucket.NewReader(ctx, key, nil)
	if err != nil {
		return "", 0, err
	}
	defer rd.Close()
	var h hash.Hash = sha256.New()
	n, err := io.Copy(h, rd)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
