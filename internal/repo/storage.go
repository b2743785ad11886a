package repo

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
)

// location is an opened bucket plus what we know of its backing.
type location struct {
	bucket *blob.Bucket
	// dir is set for file:// repositories, whose objects are written by
	// newWriter's fileWriter rather than blob's file driver: that
	// renames into place without syncing, and a manifest that survives a
	// power cut must not point at data that did not.
	dir string
	// shared buckets (mem://) outlive the Repo that opened them.
	shared bool
	// s3 is true for s3:// repositories (Object Lock works there only).
	s3 bool
}

var (
	memMu      sync.Mutex
	memBuckets = map[string]*blob.Bucket{}
)

// openLocation opens the storage behind a repository URL. With create,
// a missing local directory is made; otherwise it is ErrNotFound.
func openLocation(ctx context.Context, raw string, create bool) (*location, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("repository URL %q: %v", raw, err)
	}
	switch u.Scheme {
	case "file":
		dir := filepath.FromSlash(u.Path)
		if u.Host != "" || dir == "" {
			return nil, fmt.Errorf("repository URL %q: use file:///absolute/path", raw)
		}
		if !create {
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: directory %s does not exist (hint: run `linkdr repo init`)", ErrNotFound, dir)
			}
		}
		b, err := fileblob.OpenBucket(dir, &fileblob.Options{
			CreateDir:   create,
			DirFileMode: 0o750,
			NoTempDir:   true, // temp files beside the target: rename never crosses a mount
			Metadata:    fileblob.MetadataDontWrite,
		})
		if err != nil {
			return nil, fmt.Errorf("open repository %s: %w", dir, err)
		}
		return &location{bucket: b, dir: dir}, nil
	case "s3":
		b, err := openS3(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("open repository %s: %w", redact(raw), err)
		}
		return &location{bucket: b, s3: true}, nil
	case "mem":
		// mem:// buckets live for the process; the same URL opens the same
		// bucket so tests can reopen a repository.
		memMu.Lock()
		defer memMu.Unlock()
		key := u.Host + u.Path
		b, ok := memBuckets[key]
		if !ok {
			b = memblob.OpenBucket(nil)
			memBuckets[key] = b
		}
		return &location{bucket: b, shared: true}, nil
	default:
		return nil, fmt.Errorf("repository URL %q: unsupported scheme %q (supported: file, s3, mem)", redact(raw), u.Scheme)
	}
}

func (l *location) close() error {
	if l.shared {
		return nil
	}
	return l.bucket.Close()
}

// errExists: an exclusive create found the key taken.
var errExists = errors.New("object already exists")

func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }

func isPrecondition(err error) bool {
	return errors.Is(err, errExists) || gcerrors.Code(err) == gcerrors.FailedPrecondition
}

// redact hides credentials that may sit in a URL's query.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}
