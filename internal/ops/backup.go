package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// Backup runs one backup of a store by one method ("" = the store's
// first). It holds the store's lease throughout; on any error or
// cancellation the partial backup is removed and never becomes visible.
func (r *Runner) Backup(ctx context.Context, storeName, method string) (*repo.Manifest, error) {
	st, cfg, err := r.Store(storeName)
	if err != nil {
		return nil, err
	}
	if method == "" {
		method = cfg.Backups[0].Method
	} else if err := r.CheckMethod(storeName, method); err != nil {
		return nil, err
	}
	rp, err := r.OpenRepo(ctx, cfg.Repository)
	if err != nil {
		return nil, err
	}
	defer rp.Close()
	lease, err := rp.AcquireLease(ctx, storeName, "backup "+method, r.LeaseTTL)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lease.KeepAlive(cancel)

	w, err := rp.NewBackup(repo.WriterOptions{
		Store: storeName, Kind: cfg.Kind, Method: method,
		Recipients: r.Plan.Encryption.Recipients, Level: envelope.Level(r.Plan.Encryption.CompressionLevel),
	})
	if err != nil {
		return nil, err
	}
	log := r.log().With("store", storeName, "method", method, "backup", w.ID())
	log.Info("backup started")
	prev, err := rp.Latest(ctx, storeName, method)
	if err != nil && !errors.Is(err, repo.ErrNoBackup) {
		return nil, err
	}
	res, err := st.Backup(ctx, store.BackupRequest{
		Method: method, Sink: &sink{w: w, r: r, store: storeName}, Log: log,
		ID: w.ID(), Previous: prev, History: rp,
	})
	if err == nil {
		var m *repo.Manifest
		m, err = w.Commit(ctx, repo.CommitInfo{ConsistentAt: res.ConsistentAt, Source: res.Source, Stats: res.Stats})
		if err == nil {
			log.Info("backup complete", "stored_bytes", m.StoredSize(), "plain_bytes", m.PlainSize(),
				"duration", m.Finished.Sub(m.Started).Round(time.Millisecond))
			return m, nil
		}
	}
	if aerr := w.Abort(); aerr != nil {
		log.Warn("could not remove partial backup; `linkdr retention apply` removes it later", "err", aerr)
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the lease was lost: that is the real reason
	}
	return nil, fmt.Errorf("backup %s: %w", storeName, err)
}

// ErrUnknownMethod: the plan gives a store no such backup method.
var ErrUnknownMethod = errors.New("unknown backup method")

// CheckMethod is nil when the plan gives the store that backup method.
func (r *Runner) CheckMethod(storeName, method string) error {
	cfg, err := r.StoreConfig(storeName)
	if err != nil {
		return err
	}
	if !cfg.HasMethod(method) {
		return fmt.Errorf("%w %q for store %s (the plan gives it: %s)", ErrUnknownMethod, method, storeName, strings.Join(cfg.Methods(), ", "))
	}
	return nil
}

// sink adapts a BackupWriter to store.Sink, adding progress.
type sink struct {
	w     *repo.BackupWriter
	r     *Runner
	store string
}

func (s *sink) CreateArtifact(ctx context.Context, name, mediaType string, meta map[string]string) (io.WriteCloser, error) {
	aw, err := s.w.CreateArtifact(ctx, name, mediaType, meta)
	if err != nil {
		return nil, err
	}
	return &progressArtifact{ArtifactWriter: aw, p: s.r.progress(s.store+": "+name, -1)}, nil
}

func (s *sink) CreateCompressedArtifact(ctx context.Context, name, mediaType string, meta map[string]string) (io.WriteCloser, error) {
	aw, err := s.w.CreateCompressedArtifact(ctx, name, mediaType, meta)
	if err != nil {
		return nil, err
	}
	return &progressArtifact{ArtifactWriter: aw, p: s.r.progress(s.store+": "+name+" (compressed)", -1)}, nil
}

type progressArtifact struct {
	*repo.ArtifactWriter
	p Progress
}

func (a *progressArtifact) Write(b []byte) (int, error) {
	n, err := a.ArtifactWriter.Write(b)
	a.p.Add(int64(n))
	return n, err
}

func (a *progressArtifact) ReadFrom(rd io.Reader) (int64, error) {
	return a.ArtifactWriter.ReadFrom(&countingReader{r: rd, p: a.p})
}

func (a *progressArtifact) Close() error {
	a.p.Done()
	return a.ArtifactWriter.Close()
}

var _ store.IncrementalSink = (*sink)(nil)

func (s *sink) CreatePoolArtifact(ctx context.Context, name, mediaType string, meta map[string]string) (io.WriteCloser, error) {
	aw, err := s.w.CreatePoolArtifact(ctx, name, mediaType, meta)
	if err != nil {
		return nil, err
	}
	return &progressArtifact{ArtifactWriter: aw, p: s.r.progress(s.store+": "+name, -1)}, nil
}

func (s *sink) ReferencePool(a repo.Artifact) error { return s.w.ReferencePool(a) }

func (s *sink) CreatePlainArtifact(ctx context.Context, name, mediaType string) (io.WriteCloser, error) {
	return s.w.CreatePlainArtifact(ctx, name, mediaType)
}
