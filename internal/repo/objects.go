package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"filippo.io/age"
	"gocloud.dev/blob"

	"github.com/linkapp/linkdr/internal/envelope"
)

// Objects outside backups/: packages that own another prefix of the
// layout (the WAL archive under wal/, drills/, runs/) read and write
// through these, so they get the same durability (fsync on local disks)
// and the same envelope as backup artifacts. Keys are full keys from the
// repository root; a missing object is an error wrapping fs.ErrNotExist.

// PutObject writes a small object durably. With ifNotExist the write
// fails (wrapping fs.ErrExist) when the key is already there.
func (r *Repo) PutObject(ctx context.Context, key string, b []byte, ifNotExist bool) error {
	err := r.writeAll(ctx, key, b, ifNotExist)
	if ifNotExist && isPrecondition(err) {
		return fmt.Errorf("%s: %w", key, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// GetObject reads a small object.
func (r *Repo) GetObject(ctx context.Context, key string) ([]byte, error) {
	b, err := r.readAll(ctx, key)
	if isNotFound(err) {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

// PutSealed streams src through the envelope into key and makes it
// durable. It returns the sums to record beside the object. On error
// nothing is left at key (the upload is cancelled before it commits).
func (r *Repo) PutSealed(ctx context.Context, key string, src io.Reader, recipients []string, level envelope.Level) (envelope.Sums, error) {
	rc, err := envelope.ParseRecipients(recipients)
	if err != nil {
		return envelope.Sums{}, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw, err := r.loc.newWriter(wctx, key, &blob.WriterOptions{ContentType: "application/octet-stream", BufferSize: 8 << 20})
	if err != nil {
		return envelope.Sums{}, fmt.Errorf("create %s: %w", key, err)
	}
	s, err := envelope.Seal(bw, rc, level)
	if err != nil {
		cancel()
		bw.Close()
		return envelope.Sums{}, err
	}
	if _, err := s.ReadFrom(src); err != nil {
		cancel()
		s.Close()
		bw.Close()
		return envelope.Sums{}, fmt.Errorf("write %s: %w", key, err)
	}
	if err := s.Close(); err != nil {
		cancel()
		bw.Close()
		return envelope.Sums{}, fmt.Errorf("write %s: %w", key, err)
	}
	if err := bw.Close(); err != nil {
		return envelope.Sums{}, fmt.Errorf("write %s: %w", key, err)
	}
	return s.Sums(), nil
}

// OpenSealed streams the plaintext of a sealed object. With expect, the
// end of the stream checks sizes and sums (envelope.ErrIntegrity).
func (r *Repo) OpenSealed(ctx context.Context, key string, ids []age.Identity, expect *envelope.Sums) (io.ReadCloser, error) {
	br, err := r.loc.bucket.NewReader(ctx, key, nil)
	if isNotFound(err) {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	o, err := envelope.Open(br, ids, expect)
	if err != nil {
		br.Close()
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &artifactReader{Opener: o, body: br, what: key}, nil
}

// ObjectInfo is one listed object.
type ObjectInfo struct {
	Key  string
	Size int64
}

// ListObjects lists keys under prefix; with delim "/" it lists one level
// and reports sub-prefixes (ending in "/") as keys with Size -1.
func (r *Repo) ListObjects(ctx context.Context, prefix, delim string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	it := r.loc.bucket.List(&blob.ListOptions{Prefix: prefix, Delimiter: delim})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		if obj.IsDir {
			out = append(out, ObjectInfo{Key: obj.Key, Size: -1})
			continue
		}
		if strings.HasSuffix(obj.Key, ".tmp") && r.loc.dir != "" {
			continue // fileblob's in-flight temporary file
		}
		out = append(out, ObjectInfo{Key: obj.Key, Size: obj.Size})
	}
}

// DeleteObject removes an object; a missing one is not an error.
func (r *Repo) DeleteObject(ctx context.Context, key string) error {
	if err := r.loc.bucket.Delete(ctx, key); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// IsNotExist reports whether err means a missing object.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
