package ops

import (
	"context"
	"fmt"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// PITROptions are a point-in-time restore's knobs besides the target.
type PITROptions struct {
	// Backup pins the base backup (id or prefix); empty lets the kind
	// choose the newest one consistent before the target.
	Backup     string
	Repository string
	Target     store.RecoveryTarget
	TargetDir  string
	Port       int
	Start      bool
	Force      bool
	DryRun     bool
	Archive    bool
	// RestoreCommand is what the restored server runs to fetch WAL.
	RestoreCommand string
}

// RestorePITR restores a store to a point in time into a new data
// directory. A dry run chooses the backup and checks the WAL chain,
// needing neither the key nor the target directory.
func (r *Runner) RestorePITR(ctx context.Context, storeName string, o PITROptions) (*store.PITRResult, error) {
	st, cfg, err := r.Store(storeName)
	if err != nil {
		return nil, err
	}
	pr, ok := st.(store.PointInTimeRestorer)
	if !ok {
		return nil, fmt.Errorf("store %s (kind %s) has no point-in-time restore", storeName, cfg.Kind)
	}
	if !o.DryRun {
		if _, err := r.Identities(); err != nil { // fail before touching the target
			return nil, err
		}
	}
	repoName := o.Repository
	if repoName == "" {
		repoName = cfg.Repository
	}
	rp, err := r.OpenRepo(ctx, repoName)
	if err != nil {
		return nil, err
	}
	defer rp.Close()
	all, err := rp.Backups(ctx, storeName)
	if err != nil {
		return nil, err
	}
	ids, _ := r.Identities()
	log := r.log().With("store", storeName)
	res, err := pr.RestorePITR(ctx, store.PITRRequest{
		Store: storeName, Backups: all, Backup: o.Backup, Repo: rp,
		Open:       func(m *repo.Manifest) store.Source { return &source{r: r, rp: rp, m: m} },
		Identities: ids, Target: o.Target, TargetDir: o.TargetDir, Port: o.Port, Start: o.Start,
		Force: o.Force, DryRun: o.DryRun, Archive: o.Archive, RestoreCommand: o.RestoreCommand, Log: log,
	})
	if err != nil {
		return res, fmt.Errorf("restore %s to %s: %w", storeName, o.Target, err)
	}
	return res, nil
}
