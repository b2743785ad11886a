package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// VerifyResult is what verifying one backup found.
type VerifyResult struct {
	ID        string        `json:"id"`
	Store     string        `json:"store"`
	Artifacts int           `json:"artifacts"`
	Bytes     int64         `json:"stored_bytes"`
	Duration  time.Duration `json:"duration_ns"`
	OK        bool          `json:"ok"`
	Error     string        `json:"error,omitempty"`
}

// Verify reads every artifact of a backup back: both SHA-256 sums and
// sizes must match the manifest, age must authenticate every chunk, and
// the kind's own tool must accept the plaintext. The returned error wraps
// envelope.ErrIntegrity or envelope.ErrWrongKey where that is the cause.
func (r *Runner) Verify(ctx context.Context, rp *repo.Repo, m *repo.Manifest) (VerifyResult, error) {
	start := time.Now()
	res := VerifyResult{ID: m.ID, Store: m.Store, Artifacts: len(m.Artifacts) + len(m.Pool) + len(m.Plain), Bytes: m.StoredSize()}
	err := r.verify(ctx, rp, m)
	res.Duration = time.Since(start)
	res.OK = err == nil
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

func (r *Runner) verify(ctx context.Context, rp *repo.Repo, m *repo.Manifest) error {
	ids, err := r.Identities()
	if err != nil {
		return err
	}
	// The kind's check needs the store's config only for tool paths; a
	// backup of a store no longer in the plan is still checked byte-wise.
	st, _, _ := r.Store(m.Store)
	if bv, ok := st.(store.BackupVerifier); ok {
		handled, err := bv.VerifyBackup(ctx, store.VerifyRequest{
			Manifest: m, Source: &source{r: r, rp: rp, m: m, label: "verify "}, Repo: rp, Identities: ids,
			Log: r.log().With("store", m.Store, "backup", m.ID),
		})
		if handled {
			return err
		}
	}
	for i := range m.Plain {
		a := &m.Plain[i]
		rc, err := rp.OpenPlain(ctx, m, a.Name)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("verify %s: %w", a.Name, err)
		}
	}
	arts := append(append([]repo.Artifact(nil), m.Artifacts...), m.Pool...)
	for i := range arts {
		a := &arts[i]
		rc, err := rp.OpenArtifact(ctx, m, a.Name, ids)
		if err != nil {
			return err
		}
		p := r.progress(fmt.Sprintf("verify %s: %s", m.ID, a.Name), a.PlainSize)
		body := &countingReader{r: rc, p: p}
		if st != nil {
			err = st.VerifyArtifact(ctx, m, a, body)
		}
		if err == nil {
			_, err = io.Copy(io.Discard, body)
		}
		p.Done()
		rc.Close()
		if err != nil {
			return fmt.Errorf("verify %s: %w", a.Name, err)
		}
	}
	return nil
}

// VerifyLatest verifies the newest backup of a store in a repository of
// the plan and records the outcome there (verify/<store>.json). It
// returns ErrNoBackup-wrapped errors for a store with no backup yet.
func (r *Runner) VerifyLatest(ctx context.Context, repoName, storeName string) (VerifyResult, error) {
	rp, err := r.OpenRepo(ctx, repoName)
	if err != nil {
		return VerifyResult{Store: storeName}, err
	}
	defer rp.Close()
	m, err := rp.Latest(ctx, storeName, "")
	if err != nil {
		return VerifyResult{Store: storeName}, err
	}
	res, verr := r.Verify(ctx, rp, m)
	if ctx.Err() != nil {
		return res, verr // interrupted: not a verdict on the backup
	}
	if _, err := rp.RecordVerification(ctx, storeName, m.ID, r.now(), verr); err != nil {
		return res, errors.Join(verr, err)
	}
	return res, verr
}
