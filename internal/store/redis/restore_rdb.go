package redis

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/redis/rdb"
)

// restoreRDB writes each snapshot as dump.rdb into the target directory
// (a cluster's masters into one sub-directory each), ready for
// redis-server --dir to load at start. The checksum is proven while
// writing; a file is renamed into place only when it is whole.
func (s *Redis) restoreRDB(ctx context.Context, req store.RestoreRequest, src Source) (*store.RestoreResult, error) {
	dir := strings.TrimPrefix(req.Target, "file://")
	switch {
	case dir == "":
		return nil, fmt.Errorf("an rdb backup restores as dump.rdb into a directory, for a cold start: pass --target /var/lib/redis (hint: to restore into a running server, use a backup of method resp)")
	case strings.Contains(dir, "://"):
		return nil, fmt.Errorf("--target %s: an rdb backup restores into a directory, not a server (hint: pass a directory, or restore a backup of method resp)", redact(req.Target))
	case len(req.Select) > 0:
		return nil, fmt.Errorf("--select does not apply to rdb backups: a snapshot holds every database")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	type planned struct{ artifact, dest string }
	var files []planned
	for _, a := range req.Manifest.Artifacts {
		if a.MediaType != MediaTypeRDB {
			continue
		}
		dest := filepath.Join(dir, "dump.rdb")
		if src.Mode == "cluster" {
			dest = filepath.Join(dir, strings.TrimSuffix(a.Name, ".rdb"), "dump.rdb")
		}
		if _, err := os.Stat(dest); err == nil && !req.Force {
			return nil, fmt.Errorf("%w: %s exists (hint: restore into another directory, or pass --force to replace it; stop the Redis server that uses it first)", store.ErrTargetNotEmpty, dest)
		}
		files = append(files, planned{a.Name, dest})
	}
	res := &store.RestoreResult{Target: dir}
	for _, f := range files {
		start := time.Now()
		info, err := writeRDB(ctx, req, f.artifact, f.dest)
		item := store.RestoredItem{Name: f.artifact, Target: f.dest, Duration: time.Since(start)}
		if err == nil {
			// The checksum is always proven; that is all a file can show
			// until a server loads it.
			item.Verified = true
			item.Checked = fmt.Sprintf("RDB version %d, %d bytes, CRC-64 matches", info.Version, info.Size)
			if info.Checksum == 0 {
				item.Checked = fmt.Sprintf("RDB version %d, %d bytes, no checksum (rdbchecksum was off)", info.Version, info.Size)
			}
		}
		res.Items = append(res.Items, item)
		if err != nil {
			return res, fmt.Errorf("write %s: %w", f.dest, err)
		}
		req.Log.Info("wrote snapshot", "file", f.dest, "bytes", info.Size)
	}
	return res, nil
}

func writeRDB(ctx context.Context, req store.RestoreRequest, artifact, dest string) (*rdb.File, error) {
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	rc, err := req.Source.OpenArtifact(ctx, artifact)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(dir, ".linkdr-dump-*.rdb")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	chk := &rdb.Checker{}
	if _, err := io.Copy(io.MultiWriter(tmp, chk), &ctxReader{ctx: ctx, r: rc}); err != nil {
		tmp.Close()
		return nil, err
	}
	f, err := chk.Result()
	if err != nil {
		tmp.Close()
		return nil, integrity(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return nil, err
	}
	chownLikeDir(tmp.Name(), dir)
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return nil, err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return f, nil
}

// chownLikeDir gives the file the directory's owner when running as root,
// so a redis-server running as its own user can read what root restored.
func chownLikeDir(path, dir string) {
	if os.Geteuid() != 0 {
		return
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		os.Chown(path, int(st.Uid), int(st.Gid))
	}
}

// ctxReader stops a copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
