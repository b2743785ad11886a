package s3bucket

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// Tunables. Packs rotate at PackSize of plaintext so no single artifact
// grows without bound; objects up to bufferLimit are fetched in parallel
// into memory, larger ones stream straight into the pack.
const (
	PackSize    = 1 << 30
	bufferLimit = 8 << 20
	fetchers    = 16
)

// Entry is one object of a backup, as the encrypted index lists it.
type Entry struct {
	// Key is the object key relative to the store's prefix.
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag"`
	VersionID    string    `json:"version_id,omitempty"`
	LastModified time.Time `json:"last_modified"`
	// MD5 of the content, computed by linkdr as it was copied.
	MD5 string `json:"md5"`
	// Pack is the pool artifact holding the content, as a tar entry named Key.
	Pack string `json:"pack"`
}

// CatalogEntry is one object in the plain catalog: an Entry whose key is
// replaced by its fingerprint, so the next backup can tell unchanged
// objects without the private key and without the key names.
type CatalogEntry struct {
	FP           string    `json:"fp"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag"`
	VersionID    string    `json:"version_id,omitempty"`
	LastModified time.Time `json:"last_modified"`
	MD5          string    `json:"md5"`
	Pack         string    `json:"pack"`
}

// Source is the manifest's "source" for s3 backups.
type Source struct {
	Location
	// FingerprintSalt salts the key fingerprints of the catalog; later
	// backups reuse it so fingerprints stay comparable.
	FingerprintSalt string `json:"fingerprint_salt"`
	// Previous is the backup this one was compared against ("" = full).
	Previous string `json:"previous,omitempty"`
	Index    string `json:"index"`
	Catalog  string `json:"catalog"`
}

// Stats is the manifest's "stats" for s3 backups.
type Stats struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
	// Copied objects were new or changed (key, ETag or size) and were
	// read from the bucket; the others are referenced from earlier packs.
	CopiedObjects    int64 `json:"copied_objects"`
	CopiedBytes      int64 `json:"copied_bytes"`
	UnchangedObjects int64 `json:"unchanged_objects"`
	// Vanished objects were listed but deleted before they could be read.
	Vanished        int64 `json:"vanished,omitempty"`
	PacksWritten    int   `json:"packs_written"`
	PacksReferenced int   `json:"packs_referenced"`
}

// Fingerprint is the catalog's stand-in for a key.
func Fingerprint(salt, key string) string {
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Backup runs method objects.
func (b *Bucket) Backup(ctx context.Context, req store.BackupRequest) (*store.BackupResult, error) {
	if req.Method != "objects" {
		return nil, fmt.Errorf("s3: unknown method %q", req.Method)
	}
	sink, ok := req.Sink.(store.IncrementalSink)
	if !ok {
		return nil, errors.New("s3: the repository writer does not support pool artifacts")
	}
	client, err := b.loc.Client(ctx)
	if err != nil {
		return nil, err
	}
	prev, salt, err := b.previous(ctx, req)
	if err != nil {
		return nil, err
	}
	src := Source{Location: b.loc, FingerprintSalt: salt, Index: IndexArtifact, Catalog: CatalogArtifact}
	if req.Previous != nil && prev != nil {
		src.Previous = req.Previous.ID
	}
	started := time.Now().UTC()
	bk := &backupRun{b: b, client: client, sink: sink, id: req.ID, salt: salt, prev: prev, log: req.Log}
	if bk.log == nil {
		bk.log = b.log
	}
	if err := bk.run(ctx, req.Previous); err != nil {
		return nil, err
	}
	if err := bk.writeIndex(ctx); err != nil {
		return nil, err
	}
	return &store.BackupResult{ConsistentAt: started, Source: src, Stats: bk.stats}, nil
}

// previous loads the catalog of the previous backup, if it describes the
// same bucket and prefix; otherwise this backup copies everything.
func (b *Bucket) previous(ctx context.Context, req store.BackupRequest) (map[string]CatalogEntry, string, error) {
	m := req.Previous
	if m == nil || req.History == nil || len(m.Plain) == 0 {
		return nil, newSalt(), nil
	}
	var src Source
	if err := json.Unmarshal(m.Source, &src); err != nil {
		return nil, "", fmt.Errorf("previous backup %s: manifest source: %w", m.ID, err)
	}
	if src.Bucket != b.loc.Bucket || src.Prefix != b.loc.Prefix {
		b.log.Info("previous backup is of another bucket or prefix; copying everything", "previous", m.ID)
		return nil, newSalt(), nil
	}
	rc, err := req.History.OpenPlain(ctx, m, src.Catalog)
	if err != nil {
		return nil, "", fmt.Errorf("previous backup %s: %w", m.ID, err)
	}
	defer rc.Close()
	out := map[string]CatalogEntry{}
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e CatalogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, "", fmt.Errorf("previous backup %s: catalog: %w", m.ID, err)
		}
		out[e.FP] = e
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("previous backup %s: catalog: %w", m.ID, err)
	}
	return out, src.FingerprintSalt, nil
}

func newSalt() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type backupRun struct {
	b      *Bucket
	client *s3.Client
	sink   store.IncrementalSink
	id     string
	salt   string
	prev   map[string]CatalogEntry
	log    interface {
		Info(string, ...any)
	}

	mu      sync.Mutex
	entries []Entry
	stats   Stats
	refs    map[string]bool

	pack     *packWriter
	packSeq  int
	poolByID map[string]repo.Artifact
}

// fetched is one object on its way into a pack.
type fetched struct {
	obj  types.Object
	data []byte        // small objects
	body io.ReadCloser // large objects (streamed, closed by the writer)
	out  *s3.GetObjectOutput
	done chan error // for streamed bodies: the writer's verdict
}

func (bk *backupRun) run(ctx context.Context, prevManifest *repo.Manifest) error {
	bk.refs = map[string]bool{}
	bk.poolByID = map[string]repo.Artifact{}
	if prevManifest != nil {
		for _, a := range prevManifest.Pool {
			bk.poolByID[a.Name] = a
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	todo := make(chan types.Object, 256)
	ready := make(chan *fetched, fetchers)
	// Lister: compare each object with the previous catalog.
	g.Go(func() error {
		defer close(todo)
		p := s3.NewListObjectsV2Paginator(bk.client, &s3.ListObjectsV2Input{Bucket: aws.String(bk.b.loc.Bucket), Prefix: aws.String(bk.b.loc.Prefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return fmt.Errorf("list s3://%s/%s: %w", bk.b.loc.Bucket, bk.b.loc.Prefix, err)
			}
			for _, o := range page.Contents {
				if bk.unchanged(o) {
					continue
				}
				select {
				case todo <- o:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return nil
	})
	// Fetchers: read changed objects in parallel.
	var fg sync.WaitGroup
	for range fetchers {
		fg.Add(1)
		g.Go(func() error {
			defer fg.Done()
			for o := range todo {
				if err := bk.fetch(gctx, o, ready); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error { fg.Wait(); close(ready); return nil })
	// Writer: one tar stream at a time.
	g.Go(func() error {
		for f := range ready {
			err := bk.write(gctx, f)
			if f.done != nil {
				f.done <- err
			}
			if err != nil {
				return err
			}
		}
		return bk.closePack()
	})
	err := g.Wait()
	if err != nil && bk.pack != nil {
		if a, ok := bk.pack.w.(interface{ Abort() }); ok {
			a.Abort()
		} else {
			bk.pack.w.Close() // the caller aborts the backup and removes it
		}
	}
	return err
}

// unchanged references an object from an earlier pack when its key, ETag
// and size match the previous backup's catalog.
func (bk *backupRun) unchanged(o types.Object) bool {
	rel := strings.TrimPrefix(aws.ToString(o.Key), bk.b.loc.Prefix)
	pe, ok := bk.prev[Fingerprint(bk.salt, rel)]
	if !ok || pe.ETag != etag(o.ETag) || pe.Size != aws.ToInt64(o.Size) {
		return false
	}
	a, ok := bk.poolByID[pe.Pack]
	if !ok {
		return false // the previous manifest does not list the pack: copy again
	}
	bk.mu.Lock()
	defer bk.mu.Unlock()
	if !bk.refs[pe.Pack] {
		bk.refs[pe.Pack] = true
		bk.stats.PacksReferenced++
		if err := bk.sink.ReferencePool(a); err != nil {
			return false
		}
	}
	bk.entries = append(bk.entries, Entry{Key: rel, Size: pe.Size, ETag: pe.ETag, VersionID: pe.VersionID,
		LastModified: pe.LastModified, MD5: pe.MD5, Pack: pe.Pack})
	bk.stats.Objects++
	bk.stats.Bytes += pe.Size
	bk.stats.UnchangedObjects++
	return true
}

func (bk *backupRun) fetch(ctx context.Context, o types.Object, ready chan<- *fetched) error {
	out, err := bk.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bk.b.loc.Bucket), Key: o.Key})
	if err != nil {
		var nk *types.NoSuchKey
		if errors.As(err, &nk) {
			bk.mu.Lock()
			bk.stats.Vanished++ // deleted since the listing: not part of this backup
			bk.mu.Unlock()
			return nil
		}
		return fmt.Errorf("get s3://%s/%s: %w", bk.b.loc.Bucket, aws.ToString(o.Key), err)
	}
	f := &fetched{obj: o, out: out}
	if aws.ToInt64(out.ContentLength) <= bufferLimit {
		data, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			return fmt.Errorf("read s3://%s/%s: %w", bk.b.loc.Bucket, aws.ToString(o.Key), err)
		}
		f.data = data
		select {
		case ready <- f:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.body, f.done = out.Body, make(chan error, 1)
	select {
	case ready <- f:
	case <-ctx.Done():
		out.Body.Close()
		return ctx.Err()
	}
	select {
	case err := <-f.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// packWriter is one pool artifact being written as a tar stream.
type packWriter struct {
	name string
	w    io.WriteCloser
	tw   *tar.Writer
	size int64
}

func (bk *backupRun) write(ctx context.Context, f *fetched) error {
	if bk.pack == nil || bk.pack.size >= PackSize {
		if err := bk.closePack(); err != nil {
			return err
		}
		bk.packSeq++
		name := fmt.Sprintf("%s-p%04d.tar", bk.id, bk.packSeq)
		w, err := bk.sink.CreatePoolArtifact(ctx, name, MediaTypePack, nil)
		if err != nil {
			return err
		}
		bk.pack = &packWriter{name: name, w: w, tw: tar.NewWriter(w)}
		bk.stats.PacksWritten++
	}
	out := f.out
	rel := strings.TrimPrefix(aws.ToString(f.obj.Key), bk.b.loc.Prefix)
	size := aws.ToInt64(out.ContentLength)
	mod := aws.ToTime(out.LastModified)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: rel, Size: size, Mode: 0o644, ModTime: mod, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"LINKDR.etag": etag(out.ETag)},
	}
	if ct := aws.ToString(out.ContentType); ct != "" {
		hdr.PAXRecords["LINKDR.content-type"] = ct
	}
	for k, v := range out.Metadata {
		hdr.PAXRecords["LINKDR.meta."+k] = v
	}
	if err := bk.pack.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("pack %s: %s: %w", bk.pack.name, rel, err)
	}
	h := md5.New()
	var body io.Reader = bytes.NewReader(f.data)
	if f.body != nil {
		defer f.body.Close()
		body = f.body
	}
	n, err := io.Copy(io.MultiWriter(bk.pack.tw, h), body)
	if err == nil && n != size {
		err = fmt.Errorf("read %d bytes, the object has %d", n, size)
	}
	if err != nil {
		return fmt.Errorf("copy s3://%s/%s: %w", bk.b.loc.Bucket, aws.ToString(f.obj.Key), err)
	}
	bk.pack.size += size + 1024
	bk.mu.Lock()
	bk.entries = append(bk.entries, Entry{Key: rel, Size: size, ETag: etag(out.ETag), VersionID: aws.ToString(out.VersionId),
		LastModified: mod.UTC(), MD5: hex.EncodeToString(h.Sum(nil)), Pack: bk.pack.name})
	bk.stats.Objects++
	bk.stats.Bytes += size
	bk.stats.CopiedObjects++
	bk.stats.CopiedBytes += size
	bk.mu.Unlock()
	return nil
}

func (bk *backupRun) closePack() error {
	if bk.pack == nil {
		return nil
	}
	p := bk.pack
	bk.pack = nil
	if err := p.tw.Close(); err != nil {
		p.w.Close()
		return fmt.Errorf("pack %s: %w", p.name, err)
	}
	return p.w.Close()
}

// writeIndex stores the encrypted index and the plain catalog, both
// sorted by key (fingerprint) so they diff and compress well.
func (bk *backupRun) writeIndex(ctx context.Context) error {
	sort.Slice(bk.entries, func(i, j int) bool { return bk.entries[i].Key < bk.entries[j].Key })
	iw, err := bk.sink.CreateArtifact(ctx, IndexArtifact, MediaTypeIndex, nil)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(iw, 1<<20)
	enc := json.NewEncoder(bw)
	cat := make([]CatalogEntry, 0, len(bk.entries))
	for _, e := range bk.entries {
		if err := enc.Encode(e); err != nil {
			iw.Close()
			return err
		}
		cat = append(cat, CatalogEntry{FP: Fingerprint(bk.salt, e.Key), Size: e.Size, ETag: e.ETag, VersionID: e.VersionID,
			LastModified: e.LastModified, MD5: e.MD5, Pack: e.Pack})
	}
	if err := bw.Flush(); err != nil {
		iw.Close()
		return err
	}
	if err := iw.Close(); err != nil {
		return err
	}
	sort.Slice(cat, func(i, j int) bool { return cat[i].FP < cat[j].FP })
	cw, err := bk.sink.CreatePlainArtifact(ctx, CatalogArtifact, MediaTypeCatalog)
	if err != nil {
		return err
	}
	bw = bufio.NewWriterSize(cw, 1<<20)
	enc = json.NewEncoder(bw)
	for _, c := range cat {
		if err := enc.Encode(c); err != nil {
			cw.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		cw.Close()
		return err
	}
	return cw.Close()
}
