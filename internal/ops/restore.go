package ops

import (
	"context"
	"fmt"
	"io"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// RestoreOptions are the knobs of a restore besides which backup.
type RestoreOptions struct {
	// Backup is an id, id prefix or "store/id"; empty means the latest.
	Backup string
	// Method restricts the backup to one method (a store may have
	// several, e.g. resp and rdb): the latest of it, or a check that
	// Backup is of it. Empty means any method.
	Method string
	// Repository to read from ("" = the store's).
	Repository string
	Target     string
	Select     []string
	// Rename restores parts under other names (qdrant: collection old → new).
	Rename  map[string]string
	Jobs    int
	Force   bool
	Verify  bool
	TempDir string
}

// ResolveBackup finds the backup a restore would use, without restoring.
func (r *Runner) ResolveBackup(ctx context.Context, storeName string, opts RestoreOptions) (*repo.Repo, *repo.Manifest, error) {
	cfg, err := r.StoreConfig(storeName)
	if err != nil {
		return nil, nil, err
	}
	if opts.Method != "" {
		if err := r.CheckMethod(storeName, opts.Method); err != nil {
			return nil, nil, err
		}
	}
	repoName := opts.Repository
	if repoName == "" {
		repoName = cfg.Repository
	}
	rp, err := r.OpenRepo(ctx, repoName)
	if err != nil {
		return nil, nil, err
	}
	var m *repo.Manifest
	if opts.Backup == "" {
		m, err = rp.Latest(ctx, storeName, opts.Method)
	} else {
		m, err = rp.Backup(ctx, opts.Backup)
		switch {
		case err != nil:
		case m.Store != storeName:
			err = fmt.Errorf("backup %s belongs to store %s, not %s", m.ID, m.Store, storeName)
		case opts.Method != "" && m.Method != opts.Method:
			err = fmt.Errorf("backup %s of %s is of method %s, not %s", m.ID, storeName, m.Method, opts.Method)
		}
	}
	if err != nil {
		rp.Close()
		return nil, nil, err
	}
	return rp, m, nil
}

// Restore restores a backup of a store into a target.
func (r *Runner) Restore(ctx context.Context, storeName string, opts RestoreOptions) (*repo.Manifest, *store.RestoreResult, error) {
	st, _, err := r.Store(storeName)
	if err != nil {
		return nil, nil, err
	}
	// Fail on a missing key before touching the target.
	if _, err := r.Identities(); err != nil {
		return nil, nil, err
	}
	rp, m, err := r.ResolveBackup(ctx, storeName, opts)
	if err != nil {
		return nil, nil, err
	}
	defer rp.Close()
	log := r.log().With("store", storeName, "backup", m.ID)
	log.Info("restore started")
	res, err := st.Restore(ctx, store.RestoreRequest{
		Manifest: m,
		Source:   &source{r: r, rp: rp, m: m},
		Target:   opts.Target, Select: opts.Select, Rename: opts.Rename, Jobs: opts.Jobs, Force: opts.Force,
		Verify: opts.Verify, TempDir: opts.TempDir, Log: log,
	})
	if err != nil {
		return m, res, fmt.Errorf("restore %s from %s: %w", storeName, m.ID, err)
	}
	return m, res, nil
}

// source adapts the repository to store.Source, adding progress.
type source struct {
	r     *Runner
	rp    *repo.Repo
	m     *repo.Manifest
	label string // progress prefix
}

func (s *source) OpenArtifact(ctx context.Context, name string) (io.ReadCloser, error) {
	ids, err := s.r.Identities()
	if err != nil {
		return nil, err
	}
	rc, err := s.rp.OpenArtifact(ctx, s.m, name, ids)
	if err != nil {
		return nil, err
	}
	a, _ := s.m.Artifact(name)
	p := s.r.progress(fmt.Sprintf("%s%s: %s", s.label, s.m.Store, name), a.PlainSize)
	return &progressReader{ReadCloser: rc, p: p}, nil
}

type progressReader struct {
	io.ReadCloser
	p Progress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	p.p.Add(int64(n))
	return n, err
}

func (p *progressReader) Close() error {
	p.p.Done()
	return p.ReadCloser.Close()
}
