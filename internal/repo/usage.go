package repo

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// Usage is the size of a repository's data (the copied prefixes).
type Usage struct {
	Bytes   int64 `json:"bytes"`
	Objects int   `json:"objects"`
}

// Usage lists the repository's data and adds it up.
func (r *Repo) Usage(ctx context.Context) (Usage, error) {
	objs, err := listPrefixes(ctx, r.loc.bucket)
	if err != nil {
		return Usage{}, err
	}
	u := Usage{Objects: len(objs)}
	for _, o := range objs {
		u.Bytes += o.size
	}
	return u, nil
}

// Newest returns the modification time of the newest object under prefix
// (e.g. "wal/users-db/") and how many objects there are; zero time when
// there is none.
func (r *Repo) Newest(ctx context.Context, prefix string) (time.Time, int, error) {
	var newest time.Time
	n := 0
	it := r.loc.bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return newest, n, nil
		}
		if err != nil {
			return time.Time{}, 0, fmt.Errorf("list %s: %w", prefix, err)
		}
		if obj.IsDir || strings.HasSuffix(obj.Key, ".tmp") {
			continue
		}
		n++
		if obj.ModTime.After(newest) {
			newest = obj.ModTime
		}
	}
}
