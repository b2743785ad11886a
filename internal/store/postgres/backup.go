package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/postgres/pgarchive"
)

// Backup runs the logical method (one pg_dump per database) or the
// physical one (a base backup over the replication protocol).
func (p *Postgres) Backup(ctx context.Context, req store.BackupRequest) (*store.BackupResult, error) {
	switch req.Method {
	case "logical":
	case "physical":
		return p.physicalBackup(ctx, req)
	default:
		return nil, fmt.Errorf("postgres: method %q is not supported (supported: logical, physical)", req.Method)
	}
	go stdbufPath() // found while we connect; dumpDatabase waits for it
	c, err := p.ep.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	si, err := queryServerInfo(ctx, c)
	if err != nil {
		return nil, err
	}
	dbs, err := listDatabases(ctx, c, p.databases)
	if err != nil {
		return nil, err
	}
	c.Close(ctx)
	pgDump, dumpMajor, err := findTool(ctx, "pg_dump", p.binDir, si.major())
	if err != nil {
		return nil, err
	}

	src := Source{
		Host: p.ep.hostPort(), ServerVersion: si.Version, ServerVersionNum: si.VersionNum,
		SystemIdentifier: si.SystemIdentifier, InRecovery: si.InRecovery, PgDumpVersion: dumpMajor,
	}
	stats := Stats{RowCounts: rowCountsExact}
	var consistent time.Time
	for _, db := range dbs {
		ds, st, err := p.dumpDatabase(ctx, req, pgDump, db)
		if err != nil {
			return nil, fmt.Errorf("dump database %s: %w", db, err)
		}
		src.Databases = append(src.Databases, ds)
		stats.Databases = append(stats.Databases, st)
		if consistent.IsZero() || ds.SnapshotAt.Before(consistent) {
			consistent = ds.SnapshotAt // the oldest snapshot bounds what the backup holds
		}
	}
	return &store.BackupResult{ConsistentAt: consistent, Source: src, Stats: stats}, nil
}

// dumpDatabase exports a snapshot, hands it to pg_dump and streams the dump
// into an artifact while pgarchive counts it.
func (p *Postgres) dumpDatabase(ctx context.Context, req store.BackupRequest, pgDump, db string) (DatabaseSource, DatabaseStats, error) {
	ds := DatabaseSource{Name: db, Artifact: db + ".dump"}
	st := DatabaseStats{Name: db}
	ep := p.ep.db(db)

	// The exporting transaction must stay open until pg_dump has imported
	// the snapshot; keeping it for the whole dump is simplest and costs
	// nothing pg_dump's own transaction would not.
	c, err := ep.connect(ctx)
	if err != nil {
		return ds, st, err
	}
	defer c.Close(context.Background())
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return ds, st, fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback(context.Background())
	var snapshot string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot(), clock_timestamp(), pg_encoding_to_char(encoding)
		FROM pg_database WHERE datname = current_database()`).Scan(&snapshot, &ds.SnapshotAt, &ds.Encoding); err != nil {
		return ds, st, fmt.Errorf("export snapshot: %w", err)
	}
	ds.SnapshotAt = ds.SnapshotAt.UTC()

	w, err := req.Sink.CreateArtifact(ctx, ds.Artifact, MediaTypeDump, map[string]string{"database": db})
	if err != nil {
		return ds, st, err
	}
	// TimeZone and bytea_output fix the text form of the COPY data so the
	// row checksums can be recomputed identically from a restored copy.
	path, args := stdbufArgs(pgDump, []string{
		"--format=custom", "--compress=0", "--snapshot=" + snapshot, "--no-password", "--dbname=" + ep.String()})
	cmd, tail := command(ctx, path, ep.toolEnv("PGOPTIONS=-c TimeZone=UTC -c bytea_output=hex"), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		w.Close()
		return ds, st, err
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return ds, st, fmt.Errorf("start pg_dump: %w", err)
	}
	// The dump goes to the artifact through pgarchive.Copy, which counts
	// and checksums the rows as they pass and gathers the data into large
	// chunks; it always drains the pipe to its end.
	cw := &errWriter{w: w}
	summary, scanErr := pgarchive.Copy(cw, readUntil{stdout, cw})
	if cw.err != nil {
		stdout.Close() // pg_dump gets EPIPE instead of blocking forever
	}
	waitErr := cmd.Wait()
	if cw.err != nil {
		w.Close()
		return ds, st, cw.err
	}
	if waitErr != nil {
		w.Close()
		if ctx.Err() != nil {
			return ds, st, ctx.Err()
		}
		return ds, st, toolError("pg_dump", waitErr, tail)
	}
	if scanErr != nil && !errors.Is(scanErr, pgarchive.ErrUnsupported) {
		// pg_dump succeeded yet its archive could not be copied whole.
		w.Close()
		return ds, st, fmt.Errorf("copy pg_dump's archive: %w", scanErr)
	}
	if err := w.Close(); err != nil {
		return ds, st, err
	}
	if scanErr != nil {
		// The dump itself is fine; only the figures are missing.
		st.Unavailable = scanErr.Error()
		req.Log.Warn("could not count rows in dump", "database", db, "err", scanErr)
	} else {
		st.Tables = summary.Tables
		st.LargeObjects = summary.LargeObjects
		for _, t := range summary.Tables {
			st.Rows += t.Rows
		}
		if summary.Compressed {
			st.Unavailable = "dump is compressed"
		}
	}
	return ds, st, nil
}

// errWriter remembers the first write error, so a failing repository is
// told apart from a failing pg_dump.
type errWriter struct {
	w   io.Writer
	err error
}

// readUntil reads r until w has failed: there is no point in reading the
// rest of a dump that cannot be stored.
type readUntil struct {
	r io.Reader
	w *errWriter
}

func (u readUntil) Read(p []byte) (int, error) {
	if u.w.err != nil {
		return 0, u.w.err
	}
	return u.r.Read(p)
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
