package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store/postgres"
	"github.com/linkapp/linkdr/internal/store/postgres/wal"
	"github.com/linkapp/linkdr/internal/store/postgres/walarchive"
)

// StoreEnv names the store wal-push and wal-fetch act for when the
// command line does not.
const StoreEnv = "LINKDR_STORE"

// WALStore finds the store a WAL command acts for: the named one (or
// $LINKDR_STORE), else the plan's only postgres store with wal set.
func (r *Runner) WALStore(name string) (*plan.Store, error) {
	if name == "" {
		name = os.Getenv(StoreEnv)
	}
	if name != "" {
		cfg, err := r.StoreConfig(name)
		if err != nil {
			return nil, err
		}
		if cfg.Kind != "postgres" || cfg.WAL == nil {
			return nil, fmt.Errorf("store %s has no wal section in %s (hint: add wal: {mode: archive} to it)", name, r.Plan.Path)
		}
		return cfg, nil
	}
	var with []string
	for _, n := range r.Plan.StoreNames() {
		if s := r.Plan.Stores[n]; s.Kind == "postgres" && s.WAL != nil {
			with = append(with, n)
		}
	}
	switch len(with) {
	case 1:
		return r.Plan.Stores[with[0]], nil
	case 0:
		return nil, fmt.Errorf("%w: no store in %s has a wal section (hint: add wal: {mode: archive} to the postgres store)", ErrUnknownStore, r.Plan.Path)
	default:
		return nil, fmt.Errorf("%w: several stores have WAL (%s): name one with --store or %s", ErrUnknownStore, strings.Join(with, ", "), StoreEnv)
	}
}

// WALArchive opens a store's WAL archive in its repository.
func (r *Runner) WALArchive(ctx context.Context, cfg *plan.Store) (*walarchive.Archive, *repo.Repo, error) {
	rp, err := r.OpenRepo(ctx, cfg.Repository)
	if err != nil {
		return nil, nil, err
	}
	a := walarchive.New(rp, cfg.Name, r.Plan.Encryption.Recipients, envelope.Level(r.Plan.Encryption.CompressionLevel))
	if r.Now != nil {
		a.SetClock(r.Now)
	}
	return a, rp, nil
}

// WALPush archives one file PostgreSQL hands to archive_command. path is
// relative to the data directory (the working directory of
// archive_command) or absolute.
func (r *Runner) WALPush(ctx context.Context, storeName, path string) (*walarchive.PushResult, error) {
	cfg, err := r.WALStore(storeName)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("wal-push: %w", err)
	}
	a, rp, err := r.WALArchive(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer rp.Close()
	res, err := a.PushFile(ctx, path, walarchive.SourceArchiveCommand)
	if err != nil {
		return nil, fmt.Errorf("wal-push %s: %w", filepath.Base(path), err)
	}
	return res, nil
}

// PrefetchDir is where wal-fetch keeps segments downloaded ahead, inside
// pg_wal (same filesystem as %p, so handing one over is a rename).
const PrefetchDir = ".linkdr-prefetch"

// WALFetchResult says where a fetched file came from and what to
// prefetch next.
type WALFetchResult struct {
	Info *walarchive.Info
	// Prefetched: it was already downloaded ahead.
	Prefetched bool
	// Next are segments worth downloading ahead now.
	Next []string
	// Dir is the prefetch directory.
	Dir string
}

// WALFetch hands PostgreSQL one file for restore_command: from the
// prefetch directory if a verified copy is there, else from the archive.
// A file that is not archived is walarchive.ErrNotFound.
func (r *Runner) WALFetch(ctx context.Context, storeName, name, dst string) (*WALFetchResult, error) {
	cfg, err := r.WALStore(storeName)
	if err != nil {
		return nil, err
	}
	n, err := wal.ParseName(name)
	if err != nil {
		return nil, err
	}
	res := &WALFetchResult{Dir: filepath.Join(filepath.Dir(dst), PrefetchDir)}
	if n.Kind == wal.Segment {
		if os.Rename(filepath.Join(res.Dir, name), dst) == nil {
			res.Prefetched = true
		}
		cleanPrefetch(res.Dir, n)
	}
	if !res.Prefetched {
		ids, err := r.Identities()
		if err != nil {
			return nil, err
		}
		a, rp, err := r.WALArchive(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer rp.Close()
		res.Info, err = a.Fetch(ctx, name, dst, ids)
		if err != nil {
			return nil, err
		}
		if res.Info.Kind == wal.Partial.String() {
			return res, nil // the end of the archive: nothing to prefetch
		}
	}
	if n.Kind != wal.Segment || *cfg.WAL.Prefetch == 0 {
		return res, nil
	}
	segSize := int64(wal.DefaultSegmentSize)
	if res.Info != nil && res.Info.SegmentSize > 0 {
		segSize = res.Info.SegmentSize
	} else if fi, err := os.Stat(dst); err == nil && wal.ValidSegmentSize(fi.Size()) {
		segSize = fi.Size()
	}
	segno := n.SegNo(segSize)
	for i := 1; i <= *cfg.WAL.Prefetch; i++ {
		next := wal.SegmentName(n.Timeline, segno+uint64(i), segSize).String()
		if _, err := os.Stat(filepath.Join(res.Dir, next)); err == nil {
			continue
		}
		if fi, err := os.Stat(filepath.Join(res.Dir, next+".running")); err == nil && time.Since(fi.ModTime()) < 2*time.Minute {
			continue
		}
		res.Next = append(res.Next, next)
	}
	return res, nil
}

// cleanPrefetch removes downloaded-ahead segments recovery has passed.
func cleanPrefetch(dir string, cur wal.Name) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		base := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".running"), ".linkdr.tmp")
		n, err := wal.ParseName(base)
		if err != nil || n.Kind != wal.Segment {
			continue
		}
		if walarchive.Less(n, cur) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// WALPrefetch downloads segments ahead of recovery into dir, a few at a
// time. Each is verified before it appears under its own name; a segment
// not archived yet ends the run (later ones are not there either).
func (r *Runner) WALPrefetch(ctx context.Context, storeName, dir string, names []string) error {
	cfg, err := r.WALStore(storeName)
	if err != nil {
		return err
	}
	ids, err := r.Identities()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	a, rp, err := r.WALArchive(ctx, cfg)
	if err != nil {
		return err
	}
	defer rp.Close()
	sort.Strings(names)
	var mu sync.Mutex
	var errs []error
	missing := "" // the lowest name not archived: later ones are not either
	work := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				mu.Lock()
				skip := missing != "" && name > missing
				mu.Unlock()
				if skip {
					continue
				}
				lock := filepath.Join(dir, name+".running")
				f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
				if err != nil {
					continue // another prefetcher has it
				}
				f.Close()
				_, err = a.FetchComplete(ctx, name, filepath.Join(dir, name), ids)
				os.Remove(lock)
				if err != nil {
					mu.Lock()
					if walarchive.IsNotFound(err) {
						if missing == "" || name < missing {
							missing = name
						}
					} else {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// WALReport is `linkdr wal verify`: the chain from the oldest base backup
// to the newest archived WAL, with its gaps.
type WALReport struct {
	Store string `json:"store"`
	// From is the oldest physical backup the chain starts at.
	From   string            `json:"from_backup,omitempty"`
	Chain  *walarchive.Chain `json:"chain,omitempty"`
	Files  int               `json:"archived_files"`
	Stored int64             `json:"stored_bytes"`
	// Unfinished lists data objects without a sidecar: pushes that were
	// interrupted (PostgreSQL retries them; retention removes leftovers).
	Unfinished []string `json:"unfinished,omitempty"`
	// Backups lists, per physical backup, whether its consistency WAL is there.
	Backups []BackupWAL `json:"backups"`
}

// BackupWAL is one base backup's WAL needs.
type BackupWAL struct {
	ID         string `json:"id"`
	StartWAL   string `json:"start_wal"`
	StopWAL    string `json:"stop_wal"`
	Consistent bool   `json:"consistent"`
}

// ErrWALGap: the WAL chain has holes; a restore cannot replay past them.
var ErrWALGap = errors.New("WAL archive has gaps")

// WALVerify checks the archive of a store from its oldest physical backup
// on: every segment along the timeline history must be archived.
func (r *Runner) WALVerify(ctx context.Context, storeName string) (*WALReport, error) {
	cfg, err := r.WALStore(storeName)
	if err != nil {
		return nil, err
	}
	a, rp, err := r.WALArchive(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer rp.Close()
	rep := &WALReport{Store: cfg.Name}
	entries, err := a.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Archived {
			rep.Files++
			rep.Stored += e.Size
		} else if e.HasData {
			rep.Unfinished = append(rep.Unfinished, e.Name.String())
		}
	}
	backups, err := physicalBackups(ctx, rp, cfg.Name)
	if err != nil {
		return nil, err
	}
	if len(backups) == 0 {
		return rep, fmt.Errorf("store %s has no physical backup: WAL alone cannot be restored (hint: run `linkdr backup %s --method physical`)", cfg.Name, cfg.Name)
	}
	oldest := backups[0]
	rep.From = oldest.m.ID
	rep.Chain, err = a.Walk(ctx, entries, walarchive.WalkOptions{Timeline: oldest.src.Timeline, Start: oldest.src.StartLSN, SegmentSize: oldest.src.WALSegmentSize})
	if err != nil {
		return nil, err
	}
	for _, b := range backups {
		c, err := a.Walk(ctx, entries, walarchive.WalkOptions{Timeline: b.src.Timeline, Start: b.src.StartLSN, SegmentSize: b.src.WALSegmentSize,
			Target: max(b.src.StopLSN, 1) - 1, TargetTimeline: b.src.StopTimeline})
		if err != nil {
			return nil, err
		}
		rep.Backups = append(rep.Backups, BackupWAL{ID: b.m.ID, StartWAL: b.src.StartWAL, StopWAL: b.src.StopWAL, Consistent: c.Complete()})
	}
	if !rep.Chain.Complete() {
		return rep, fmt.Errorf("store %s: %w: %d segment(s) missing after backup %s, first %s: a restore cannot replay past it (hint: take a new physical backup now; check archive_command)",
			cfg.Name, ErrWALGap, len(rep.Chain.Missing), oldest.m.ID, rep.Chain.Missing[0])
	}
	return rep, nil
}

type physicalBackup struct {
	m   *repo.Manifest
	src postgres.PhysicalSource
}

// physicalBackups lists a store's physical backups, oldest first.
func physicalBackups(ctx context.Context, rp *repo.Repo, store string) ([]physicalBackup, error) {
	all, err := rp.Backups(ctx, store)
	if err != nil {
		return nil, err
	}
	var out []physicalBackup
	for _, m := range all {
		if m.Method != "physical" {
			continue
		}
		src, err := postgres.PhysicalSourceOf(m)
		if err != nil {
			return nil, err
		}
		out = append(out, physicalBackup{m: m, src: src})
	}
	return out, nil
}

// WALReceive runs the streaming receiver of a store (wal mode stream)
// until ctx ends.
func (r *Runner) WALReceive(ctx context.Context, storeName string, status func(postgres.ReceiverStatus)) error {
	cfg, err := r.WALStore(storeName)
	if err != nil {
		return err
	}
	st, _, err := r.Store(cfg.Name)
	if err != nil {
		return err
	}
	pg, ok := st.(*postgres.Postgres)
	if !ok {
		return fmt.Errorf("store %s cannot stream WAL", cfg.Name)
	}
	a, rp, err := r.WALArchive(ctx, cfg)
	if err != nil {
		return err
	}
	defer rp.Close()
	return pg.ReceiveWAL(ctx, postgres.ReceiverOptions{
		Archive: a, Slot: cfg.WAL.Slot, PartialInterval: cfg.WAL.PartialInterval.D(),
		Log: r.log().With("store", cfg.Name), Status: status,
	})
}
