package postgres

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/postgres/wal"
	"github.com/linkapp/linkdr/internal/store/postgres/walarchive"
)

var _ store.PointInTimeRestorer = (*Postgres)(nil)
var _ store.BackupVerifier = (*Postgres)(nil)

// PITRWAL is the WAL part of a point-in-time restore plan.
type PITRWAL struct {
	*walarchive.Chain
	// ConsistencyWAL is the last segment needed before the restored
	// server can accept connections (the backup's stop point).
	ConsistencyWAL string `json:"consistency_wal"`
}

// Reached is where recovery stopped.
type Reached struct {
	LSN        wal.LSN   `json:"lsn"`
	LastCommit time.Time `json:"last_commit,omitzero"`
	Timeline   uint32    `json:"timeline"`
}

// pickBackup chooses the newest physical backup that can reach target.
func pickBackup(req store.PITRRequest) (*repo.Manifest, PhysicalSource, error) {
	var lsn wal.LSN
	if req.Target.LSN != "" {
		var err error
		if lsn, err = wal.ParseLSN(req.Target.LSN); err != nil {
			return nil, PhysicalSource{}, err
		}
	}
	var oldest *repo.Manifest
	for i := len(req.Backups) - 1; i >= 0; i-- {
		m := req.Backups[i]
		if m.Method != "physical" {
			continue
		}
		if req.Backup != "" && m.ID != req.Backup && !strings.HasPrefix(m.ID, req.Backup) {
			continue
		}
		src, err := decodePhysical(m)
		if err != nil {
			return nil, src, err
		}
		oldest = m
		switch {
		case !req.Target.Time.IsZero() && m.ConsistentAt.After(req.Target.Time):
			continue
		case lsn != 0 && src.StopLSN > lsn:
			continue
		}
		return m, src, nil
	}
	if oldest == nil {
		if req.Backup != "" {
			return nil, PhysicalSource{}, fmt.Errorf("%w %q among the physical backups of %s", repo.ErrNoBackup, req.Backup, req.Store)
		}
		return nil, PhysicalSource{}, fmt.Errorf("%w: store %s has no physical backup (hint: run `linkdr backup %s --method physical`)", repo.ErrNoBackup, req.Store, req.Store)
	}
	return nil, PhysicalSource{}, fmt.Errorf("%w: no physical backup of %s is consistent before %s; the oldest (%s) is consistent at %s",
		repo.ErrNoBackup, req.Store, req.Target, oldest.ID, oldest.ConsistentAt.UTC().Format(time.RFC3339))
}

// RestorePITR lays down a physical backup in a new data directory and
// configures recovery to replay archived WAL up to the target. With
// Start it starts the server and waits until recovery reached the target
// and the server was promoted.
func (p *Postgres) RestorePITR(ctx context.Context, req store.PITRRequest) (*store.PITRResult, error) {
	m, src, err := pickBackup(req)
	if err != nil {
		return nil, err
	}
	res := &store.PITRResult{Store: req.Store, Backup: m.ID, ConsistentAt: m.ConsistentAt, Target: req.Target, TargetDir: req.TargetDir, DryRun: req.DryRun}
	arch := walarchive.New(req.Repo, req.Store, nil, 0)
	entries, err := arch.List(ctx)
	if err != nil {
		return res, err
	}
	wo := walarchive.WalkOptions{Timeline: src.Timeline, Start: src.StartLSN, SegmentSize: src.WALSegmentSize}
	if req.Target.LSN != "" {
		wo.Target, _ = wal.ParseLSN(req.Target.LSN)
	}
	chain, err := arch.Walk(ctx, entries, wo)
	if err != nil {
		return res, err
	}
	pw := &PITRWAL{Chain: chain, ConsistencyWAL: src.StopWAL}
	res.WAL = pw
	stopSeg := wal.SegNoOf(max(src.StopLSN, 1)-1, src.WALSegmentSize)
	var problems []string
	if len(chain.Missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d WAL segment(s) missing, first %s", len(chain.Missing), chain.Missing[0]))
	}
	if last, err := wal.ParseName(chain.Last); chain.Last == "" || err != nil || last.SegNo(src.WALSegmentSize) < stopSeg {
		problems = append(problems, fmt.Sprintf("WAL up to %s (the backup's consistency point) is not archived", src.StopWAL))
	}
	if !req.Target.Time.IsZero() && !chain.LastArchived.IsZero() && chain.LastArchived.Before(req.Target.Time) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the newest archived WAL was archived at %s, before the target: recovery can only reach the target if no transaction committed in between",
			chain.LastArchived.UTC().Format(time.RFC3339)))
	}
	if chain.Partial {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the archive ends in a partial segment (%s) from the streaming receiver: replay ends where it ends", chain.Last))
	}
	res.Complete = len(problems) == 0
	if !res.Complete {
		return res, fmt.Errorf("%w: backup %s to %s: %s (hint: `linkdr wal verify %s` shows every gap; an older --backup or an earlier target may avoid it)",
			store.ErrIncomplete, m.ID, req.Target, strings.Join(problems, "; "), req.Store)
	}
	if req.DryRun {
		return res, nil
	}
	if err := prepareTargetDir(req.TargetDir, req.Force); err != nil {
		return res, err
	}
	for _, ts := range src.Tablespaces {
		if ts.OID == 0 {
			continue
		}
		d := tablespaceDir(req.TargetDir, ts.OID)
		if ents, err := os.ReadDir(d); err == nil && len(ents) > 0 {
			if !req.Force {
				return res, fmt.Errorf("%w: tablespace directory %s is not empty (hint: --force empties it)", store.ErrTargetNotEmpty, d)
			}
			if err := os.RemoveAll(d); err != nil {
				return res, err
			}
		}
	}
	owner, err := dirOwner(req.TargetDir)
	if err != nil {
		return res, err
	}
	source := req.Open(m)
	for _, ts := range src.Tablespaces {
		dir := req.TargetDir
		if ts.OID != 0 {
			dir = tablespaceDir(req.TargetDir, ts.OID)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return res, err
			}
		}
		if err := extractTar(ctx, source, ts.Artifact, dir); err != nil {
			return res, fmt.Errorf("lay down %s: %w", ts.Artifact, err)
		}
	}
	if err := writeRecoveryConfig(req, m, src); err != nil {
		return res, err
	}
	if err := chownTree(req.TargetDir, owner); err != nil {
		return res, err
	}
	for _, ts := range src.Tablespaces {
		if ts.OID != 0 {
			if err := chownTree(filepath.Dir(tablespaceDir(req.TargetDir, ts.OID)), owner); err != nil {
				return res, err
			}
		}
	}
	req.Log.Info("backup laid down", "backup", m.ID, "dir", req.TargetDir, "target", req.Target.String())
	if !req.Start {
		return res, nil
	}
	local := p.ep.db("postgres")
	local.u.Host = fmt.Sprintf("127.0.0.1:%d", req.Port)
	reached, err := startAndWait(ctx, p.binDir, src, req, owner, local)
	if err != nil {
		return res, err
	}
	res.Started, res.Reached = true, reached
	return res, nil
}

// tablespaceDir is where a tablespace of a restored cluster goes: beside
// the data directory, never inside it.
func tablespaceDir(dataDir string, oid uint32) string {
	return filepath.Clean(dataDir) + "_tablespaces/" + strconv.FormatUint(uint64(oid), 10)
}

// prepareTargetDir makes sure DIR is empty (emptying it with force).
func prepareTargetDir(dir string, force bool) error {
	if dir == "" {
		return errors.New("--target-dir is required for a point-in-time restore")
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	if !force {
		if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err == nil {
			return fmt.Errorf("%w: %s holds a data directory with postmaster.pid: a server may be running there", store.ErrTargetNotEmpty, dir)
		}
		return fmt.Errorf("%w: %s has %d entries (hint: restore into an empty or new directory, or pass --force to delete its contents)", store.ErrTargetNotEmpty, dir, len(ents))
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err == nil {
		return fmt.Errorf("%w: %s has postmaster.pid: stop the server running there first, even with --force", store.ErrTargetNotEmpty, dir)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

type owner struct{ uid, gid int }

func dirOwner(dir string) (owner, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return owner{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return owner{os.Getuid(), os.Getgid()}, nil
	}
	return owner{int(st.Uid), int(st.Gid)}, nil
}

// chownTree gives the restored files to the owner of the target
// directory: restoring as root into a directory of the postgres user
// yields files that user's server can run.
func chownTree(dir string, o owner) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, o.uid, o.gid)
	})
}

// extractTar writes one tablespace archive below dir.
func extractTar(ctx context.Context, s store.Source, artifact, dir string) error {
	rc, err := s.OpenArtifact(ctx, artifact)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	buf := make([]byte, 1<<20)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return tarError(err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("unsafe path %q in %s", h.Name, artifact)
		}
		path := filepath.Join(dir, name)
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode|0o600)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(f, tr, buf)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", h.Name, tarError(err))
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, path); err != nil {
				return err
			}
		}
	}
	_, err = io.Copy(io.Discard, rc) // the rest, so the artifact's sums are checked
	return err
}

func quoteConf(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// writeRecoveryConfig turns the laid-down backup into a cluster that
// recovers from the archive to the target and then promotes.
func writeRecoveryConfig(req store.PITRRequest, m *repo.Manifest, src PhysicalSource) error {
	dir := req.TargetDir
	// A backup of a standby carries its standby settings: recovery must
	// read the archive, not follow the old primary.
	for _, f := range []string{"standby.signal", "recovery.signal", "postmaster.pid", "postmaster.opts"} {
		os.Remove(filepath.Join(dir, f))
	}
	if err := os.MkdirAll(filepath.Join(dir, "pg_wal", "archive_status"), 0o700); err != nil {
		return err
	}
	// Tablespaces now live beside the data directory.
	if len(src.Tablespaces) > 1 {
		var lines []string
		for _, ts := range src.Tablespaces {
			if ts.OID != 0 {
				lines = append(lines, fmt.Sprintf("%d %s", ts.OID, tablespaceDir(dir, ts.OID)))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "tablespace_map"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n# Written by linkdr restore: point-in-time recovery of backup %s to %s.\n", m.ID, req.Target)
	fmt.Fprintf(&b, "restore_command = %s\n", quoteConf(req.RestoreCommand))
	switch t := req.Target; {
	case !t.Time.IsZero():
		fmt.Fprintf(&b, "recovery_target_time = %s\n", quoteConf(t.Time.UTC().Format("2006-01-02 15:04:05.999999-07")))
	case t.LSN != "":
		fmt.Fprintf(&b, "recovery_target_lsn = %s\n", quoteConf(t.LSN))
	case t.Name != "":
		fmt.Fprintf(&b, "recovery_target_name = %s\n", quoteConf(t.Name))
	}
	b.WriteString("recovery_target_timeline = 'latest'\n")
	if !req.Target.Latest {
		b.WriteString("recovery_target_action = 'promote'\n")
	}
	b.WriteString("primary_conninfo = ''\nprimary_slot_name = ''\n")
	if !req.Archive {
		b.WriteString("# A restored copy must not archive into the production WAL archive.\narchive_mode = 'off'\n")
	}
	if req.Port != 0 {
		fmt.Fprintf(&b, "port = %d\n", req.Port)
	}
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.auto.conf"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "recovery.signal"), nil, 0o600)
}

// startAndWait starts the restored cluster with pg_ctl (as the owner of
// its directory) and waits until recovery is over.
func startAndWait(ctx context.Context, binDir string, src PhysicalSource, req store.PITRRequest, o owner, ep *endpoint) (*Reached, error) {
	pgctl, _, err := findTool(ctx, "pg_ctl", binDir, src.ServerVersionNum/10000)
	if err != nil {
		return nil, err
	}
	logFile := filepath.Join(req.TargetDir, "linkdr-restore.log")
	cmd := exec.CommandContext(ctx, pgctl, "start", "-D", req.TargetDir, "-l", logFile, "-w", "-t", "3600", "-o", fmt.Sprintf("-p %d", req.Port))
	if os.Geteuid() == 0 {
		if o.uid == 0 {
			return nil, errors.New("--start: PostgreSQL refuses to run as root: make the target directory belong to the postgres user (chown postgres DIR) or run linkdr as that user")
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}}
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			os.Lchown(logFile, o.uid, o.gid)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pg_ctl start: %v: %s\n%s", err, strings.TrimSpace(string(out)), logTail(logFile))
	}
	reached, err := WaitRecovered(ctx, ep.connString(), func() error {
		if _, err := os.Stat(filepath.Join(req.TargetDir, "postmaster.pid")); err != nil {
			return fmt.Errorf("the server stopped during recovery:\n%s", logTail(logFile))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return reached, nil
}

// WaitRecovered polls a server in recovery until it has been promoted,
// then reports the point recovery reached. alive, if set, is called
// between polls to notice a server that died (recovery failed).
func WaitRecovered(ctx context.Context, url string, alive func() error) (*Reached, error) {
	var last error
	for {
		r, err := recoveredPoint(ctx, url)
		if err == nil && r != nil {
			return r, nil
		}
		if err != nil {
			last = err
		}
		if alive != nil {
			if err := alive(); err != nil {
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), last)
			}
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func recoveredPoint(ctx context.Context, url string) (*Reached, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(cctx, url)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	var inRecovery bool
	var lsn *string
	var commit *time.Time
	var tli uint32
	err = c.QueryRow(cctx, `SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp(),
		(SELECT timeline_id FROM pg_control_checkpoint())`).Scan(&inRecovery, &lsn, &commit, &tli)
	if err != nil || inRecovery {
		return nil, err
	}
	r := &Reached{Timeline: tli}
	if lsn != nil {
		r.LSN, _ = wal.ParseLSN(*lsn)
	}
	if commit != nil {
		r.LastCommit = commit.UTC()
	}
	return r, nil
}

// logTail is the end of a server log, for error messages.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 15 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
