package s3bucket

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// decodeManifest reads the s3 parts of a manifest.
func decodeManifest(m *repo.Manifest) (Source, Stats, error) {
	var src Source
	var st Stats
	if m.Kind != "s3" {
		return src, st, fmt.Errorf("backup %s is of kind %s, not s3", m.ID, m.Kind)
	}
	if err := json.Unmarshal(m.Source, &src); err != nil {
		return src, st, fmt.Errorf("backup %s: manifest source: %w", m.ID, err)
	}
	if len(m.Stats) > 0 {
		if err := json.Unmarshal(m.Stats, &st); err != nil {
			return src, st, fmt.Errorf("backup %s: manifest stats: %w", m.ID, err)
		}
	}
	return src, st, nil
}

// ReadIndex reads a backup's encrypted index: every object it contains.
func ReadIndex(ctx context.Context, src store.Source, name string) ([]Entry, error) {
	rc, err := src.OpenArtifact(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out []Entry
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("index %s: %w", name, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("index %s: %w", name, err)
	}
	return out, nil
}

// Restore copies a backup's objects into the target bucket and prefix
// (the store's own by default). A target prefix that already holds
// objects is refused unless Force; with Force it is made exactly as the
// backup was: differing objects are replaced, objects the backup does not
// have are deleted (unless Select restricts the restore), identical ones
// are left alone.
func (b *Bucket) Restore(ctx context.Context, req store.RestoreRequest) (*store.RestoreResult, error) {
	src, st, err := decodeManifest(req.Manifest)
	if err != nil {
		return nil, err
	}
	target := b.loc
	if req.Target != "" {
		if target, err = ParseLocation(req.Target); err != nil {
			return nil, fmt.Errorf("--target: %w", err)
		}
	}
	client, err := target.Client(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	entries, err := ReadIndex(ctx, req.Source, src.Index)
	if err != nil {
		return nil, err
	}
	if int64(len(entries)) != st.Objects {
		return nil, fmt.Errorf("%w: index of backup %s lists %d objects, manifest says %d", store.ErrMismatch, req.Manifest.ID, len(entries), st.Objects)
	}
	entries = selectEntries(entries, req.Select)
	existing, err := listAll(ctx, client, target)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 && !req.Force {
		return nil, fmt.Errorf("%w: %s already holds %d objects (hint: restore elsewhere with --target s3://bucket/prefix, or pass --force to make it exactly as the backup)",
			store.ErrTargetNotEmpty, target.String(), len(existing))
	}
	rs := &restoreRun{client: client, target: target, jobs: max(req.Jobs, 4)}
	if err := rs.copyAll(ctx, req.Source, entries, existing); err != nil {
		return nil, err
	}
	if req.Force && len(req.Select) == 0 {
		if err := rs.deleteExtra(ctx, entries, existing); err != nil {
			return nil, err
		}
	}
	res := &store.RestoreResult{Target: target.String()}
	item := store.RestoredItem{Name: fmt.Sprintf("%d objects", len(entries)), Target: target.String(), Duration: time.Since(start)}
	if req.Verify {
		checked, err := VerifyTarget(ctx, client, target, entries, len(req.Select) == 0)
		item.Duration = time.Since(start)
		if err != nil {
			res.Items = append(res.Items, item)
			return res, err
		}
		item.Verified, item.Checked = true, checked
	}
	res.Items = append(res.Items, item)
	return res, nil
}

func selectEntries(entries []Entry, sel []string) []Entry {
	if len(sel) == 0 {
		return entries
	}
	var out []Entry
	for _, e := range entries {
		for _, p := range sel {
			if strings.HasPrefix(e.Key, p) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// listed is what a listing says of one object.
type listed struct {
	Size         int64
	ETag         string
	LastModified time.Time
}

// listAll lists every object under a location, by key relative to its prefix.
func listAll(ctx context.Context, client *s3.Client, l Location) (map[string]listed, error) {
	out := map[string]listed{}
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), Prefix: aws.String(l.Prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l.String(), err)
		}
		for _, o := range page.Contents {
			out[strings.TrimPrefix(aws.ToString(o.Key), l.Prefix)] = listed{Size: aws.ToInt64(o.Size), ETag: etag(o.ETag), LastModified: aws.ToTime(o.LastModified)}
		}
	}
	return out, nil
}

type restoreRun struct {
	client *s3.Client
	target Location
	jobs   int
}

// copyAll streams every pack the entries need once, uploading the
// entries it holds. Objects already identical in the target are skipped.
func (rs *restoreRun) copyAll(ctx context.Context, src store.Source, entries []Entry, existing map[string]listed) error {
	byPack := map[string]map[string]Entry{}
	for _, e := range entries {
		if x, ok := existing[e.Key]; ok && x.Size == e.Size && (x.ETag == e.MD5 || x.ETag == e.ETag) {
			continue
		}
		if byPack[e.Pack] == nil {
			byPack[e.Pack] = map[string]Entry{}
		}
		byPack[e.Pack][e.Key] = e
	}
	packs := make([]string, 0, len(byPack))
	for p := range byPack {
		packs = append(packs, p)
	}
	sort.Strings(packs)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rs.jobs)
	for _, p := range packs {
		if err := rs.copyPack(gctx, g, src, p, byPack[p]); err != nil {
			g.Wait()
			return err
		}
	}
	return g.Wait()
}

func (rs *restoreRun) copyPack(ctx context.Context, g *errgroup.Group, src store.Source, pack string, want map[string]Entry) error {
	rc, err := src.OpenArtifact(ctx, pack)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for len(want) > 0 {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("pack %s: %w", pack, err)
		}
		e, ok := want[hdr.Name]
		if !ok {
			continue
		}
		delete(want, hdr.Name)
		if hdr.Size != e.Size {
			return fmt.Errorf("%w: pack %s: %s has %d bytes, index says %d", store.ErrMismatch, pack, e.Key, hdr.Size, e.Size)
		}
		in := rs.putInput(e, hdr)
		if e.Size <= bufferLimit {
			data, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("pack %s: %s: %w", pack, e.Key, err)
			}
			g.Go(func() error {
				in.Body, in.ContentLength = bytes.NewReader(data), aws.Int64(int64(len(data)))
				_, err := rs.client.PutObject(ctx, in)
				if err != nil {
					return fmt.Errorf("put %s%s: %w", rs.target.String(), e.Key, err)
				}
				return nil
			})
			continue
		}
		// Large: multipart upload straight from the pack stream.
		tm := transfermanager.New(rs.client)
		_, err = tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
			Bucket: in.Bucket, Key: in.Key, Body: io.LimitReader(tr, e.Size), ContentType: in.ContentType, Metadata: in.Metadata,
		})
		if err != nil {
			return fmt.Errorf("upload %s%s: %w", rs.target.String(), e.Key, err)
		}
	}
	if len(want) > 0 {
		for k := range want {
			return fmt.Errorf("%w: pack %s does not hold %s (and %d more)", store.ErrMismatch, pack, k, len(want)-1)
		}
	}
	_, err = io.Copy(io.Discard, rc) // reading to the end checks the pack's sums
	return err
}

func (rs *restoreRun) putInput(e Entry, hdr *tar.Header) *s3.PutObjectInput {
	in := &s3.PutObjectInput{Bucket: aws.String(rs.target.Bucket), Key: aws.String(rs.target.Prefix + e.Key)}
	if ct := hdr.PAXRecords["LINKDR.content-type"]; ct != "" {
		in.ContentType = aws.String(ct)
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "LINKDR.meta."); ok {
			if in.Metadata == nil {
				in.Metadata = map[string]string{}
			}
			in.Metadata[name] = v
		}
	}
	return in
}

// deleteExtra removes target objects the backup does not hold.
func (rs *restoreRun) deleteExtra(ctx context.Context, entries []Entry, existing map[string]listed) error {
	keep := make(map[string]bool, len(entries))
	for _, e := range entries {
		keep[e.Key] = true
	}
	var batch []types.ObjectIdentifier
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		for _, id := range batch {
			// One by one: DeleteObjects needs Content-MD5, which not every
			// S3-compatible server accepts from this SDK.
			if _, err := rs.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(rs.target.Bucket), Key: id.Key}); err != nil {
				return fmt.Errorf("delete %s: %w", aws.ToString(id.Key), err)
			}
		}
		batch = batch[:0]
		return nil
	}
	for k := range existing {
		if !keep[k] {
			batch = append(batch, types.ObjectIdentifier{Key: aws.String(rs.target.Prefix + k)})
			if len(batch) == 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// VerifyTarget lists the target and compares it with the backup's index:
// every object present with its size, and its content MD5 where the
// target's ETag is one (single-part uploads). With exact, objects the
// backup does not hold are differences too.
func VerifyTarget(ctx context.Context, client *s3.Client, target Location, entries []Entry, exact bool) (string, error) {
	got, err := listAll(ctx, client, target)
	if err != nil {
		return "", err
	}
	var bad []string
	md5s, sizes := 0, 0
	for _, e := range entries {
		g, ok := got[e.Key]
		switch {
		case !ok:
			bad = append(bad, e.Key+" is missing")
		case g.Size != e.Size:
			bad = append(bad, fmt.Sprintf("%s has %d bytes, backup has %d", e.Key, g.Size, e.Size))
		case isMD5(g.ETag) && g.ETag != e.MD5:
			bad = append(bad, e.Key+" content differs (MD5)")
		case isMD5(g.ETag):
			md5s++
		default:
			sizes++
		}
		delete(got, e.Key)
	}
	if exact {
		for k := range got {
			bad = append(bad, k+" is not in the backup")
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		more := ""
		if len(bad) > 5 {
			more = fmt.Sprintf(" (and %d more)", len(bad)-5)
			bad = bad[:5]
		}
		return "", fmt.Errorf("%w: %s%s", store.ErrMismatch, strings.Join(bad, "; "), more)
	}
	checked := fmt.Sprintf("%d objects: keys, sizes and MD5s match", len(entries))
	if sizes > 0 {
		checked = fmt.Sprintf("%d objects: keys and sizes match, MD5 for %d (multipart ETags for the rest)", len(entries), md5s)
	}
	return checked, nil
}

func isMD5(etag string) bool {
	if len(etag) != 32 {
		return false
	}
	_, err := hex.DecodeString(etag)
	return err == nil
}

// VerifyArtifact checks that a pack is a readable tar to its end, and
// that an index parses and lists as many objects as the manifest says.
func (b *Bucket) VerifyArtifact(ctx context.Context, m *repo.Manifest, a *repo.Artifact, r io.Reader) error {
	switch a.MediaType {
	case MediaTypePack:
		tr := tar.NewReader(r)
		for {
			_, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("pack %s is not a valid tar: %w", a.Name, err)
			}
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return err
			}
		}
	case MediaTypeIndex:
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		n := 0
		for sc.Scan() {
			var e Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				return fmt.Errorf("index line %d: %w", n+1, err)
			}
			n++
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if _, st, err := decodeManifest(m); err == nil && int64(n) != st.Objects {
			return fmt.Errorf("%w: index lists %d objects, manifest says %d", store.ErrMismatch, n, st.Objects)
		}
	}
	return nil
}
