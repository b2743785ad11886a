package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// decodeManifest reads the postgres parts of a manifest.
func decodeManifest(m *repo.Manifest) (Source, Stats, error) {
	var src Source
	var st Stats
	if m.Kind != "postgres" {
		return src, st, fmt.Errorf("backup %s is of kind %s, not postgres", m.ID, m.Kind)
	}
	if err := json.Unmarshal(m.Source, &src); err != nil {
		return src, st, fmt.Errorf("backup %s: manifest source: %w", m.ID, err)
	}
	if len(m.Stats) > 0 {
		if err := json.Unmarshal(m.Stats, &st); err != nil {
			return src, st, fmt.Errorf("backup %s: manifest stats: %w", m.ID, err)
		}
	}
	return src, st, nil
}

// plannedRestore is one database to restore and where.
type plannedRestore struct {
	db     DatabaseSource
	stats  *DatabaseStats
	target *endpoint
}

// planRestore maps the backup's databases onto the target server.
func (p *Postgres) planRestore(req store.RestoreRequest, src Source, st Stats) (*endpoint, []plannedRestore, error) {
	target := p.ep
	named := ""
	if req.Target != "" {
		var err error
		if target, err = parseEndpoint(req.Target, ""); err != nil {
			return nil, nil, fmt.Errorf("--target: %w", err)
		}
		named = target.database()
	}
	var dbs []DatabaseSource
	for _, d := range src.Databases {
		if len(req.Select) == 0 || containsString(req.Select, d.Name) {
			dbs = append(dbs, d)
		}
	}
	for _, s := range req.Select {
		found := false
		for _, d := range src.Databases {
			found = found || d.Name == s
		}
		if !found {
			return nil, nil, fmt.Errorf("backup %s has no database %q (it has %s)", req.Manifest.ID, s, dbNames(src.Databases))
		}
	}
	if named != "" && len(dbs) > 1 {
		return nil, nil, fmt.Errorf("--target names database %q but the backup holds %d databases (%s): pick one with --select, or leave the database out of the target URL", named, len(dbs), dbNames(dbs))
	}
	var out []plannedRestore
	for _, d := range dbs {
		name := d.Name
		if named != "" {
			name = named
		}
		pr := plannedRestore{db: d, target: target.db(name)}
		for i := range st.Databases {
			if st.Databases[i].Name == d.Name {
				pr.stats = &st.Databases[i]
			}
		}
		out = append(out, pr)
	}
	return target, out, nil
}

// Restore restores every (or every selected) database of a logical backup.
func (p *Postgres) Restore(ctx context.Context, req store.RestoreRequest) (*store.RestoreResult, error) {
	src, st, err := decodeManifest(req.Manifest)
	if err != nil {
		return nil, err
	}
	target, plan, err := p.planRestore(req, src, st)
	if err != nil {
		return nil, err
	}
	admin, err := target.db("postgres").connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore target: %w", err)
	}
	defer admin.Close(context.Background())
	si, err := queryServerInfo(ctx, admin)
	if err != nil {
		return nil, err
	}
	if si.InRecovery {
		return nil, fmt.Errorf("restore target %s is a standby (read-only): restore into the primary", target)
	}
	pgRestore, _, err := findTool(ctx, "pg_restore", p.binDir, max(si.major(), src.PgDumpVersion))
	if err != nil {
		return nil, err
	}
	// Check every target before touching any, so a refusal changes nothing.
	exists := map[string]bool{}
	for _, pr := range plan {
		ok, tables, err := databaseState(ctx, admin, pr.target)
		if err != nil {
			return nil, err
		}
		if tables > 0 && !req.Force {
			return nil, fmt.Errorf("%w: database %q on %s already has %d tables (hint: restore elsewhere with --target, or pass --force to replace its contents)",
				store.ErrTargetNotEmpty, pr.target.database(), target.hostPort(), tables)
		}
		exists[pr.target.database()] = ok
	}
	res := &store.RestoreResult{Target: target.String()}
	for _, pr := range plan {
		start := time.Now()
		name := pr.target.database()
		if !exists[name] {
			enc := pr.db.Encoding
			if enc == "" {
				enc = "UTF8"
			}
			if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0 ENCODING "+quoteLiteral(enc)); err != nil {
				return res, fmt.Errorf("create database %s: %w", name, err)
			}
		}
		if err := p.runRestore(ctx, req, pgRestore, pr, exists[name] && req.Force); err != nil {
			if !exists[name] {
				// We created it: leave nothing half-restored behind.
				dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if _, derr := admin.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); derr != nil {
					req.Log.Warn("could not drop the partially restored database", "database", name, "err", derr)
				}
				cancel()
			}
			return res, fmt.Errorf("restore database %s into %s: %w", pr.db.Name, pr.target, err)
		}
		item := store.RestoredItem{Name: pr.db.Name, Target: pr.target.String()}
		if req.Verify {
			checked, err := verifyTables(ctx, pr.target, pr.stats, req.Jobs)
			if err != nil {
				item.Duration = time.Since(start)
				res.Items = append(res.Items, item)
				return res, fmt.Errorf("verify database %s: %w", name, err)
			}
			item.Verified, item.Checked = true, checked
		}
		item.Duration = time.Since(start)
		res.Items = append(res.Items, item)
		req.Log.Info("restored database", "database", pr.db.Name, "target", pr.target.String(), "duration", item.Duration.Round(time.Millisecond), "verified", item.Verified)
	}
	return res, nil
}

// databaseState reports whether a database exists and how many user
// tables it has.
func databaseState(ctx context.Context, admin *pgx.Conn, ep *endpoint) (exists bool, tables int, err error) {
	name := ep.database()
	if err := admin.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_database WHERE datname = $1`, name).Scan(&exists); err != nil {
		return false, 0, fmt.Errorf("check target database %s: %w", name, err)
	}
	if !exists {
		return false, 0, nil
	}
	c, err := ep.connect(ctx)
	if err != nil {
		return true, 0, err
	}
	defer c.Close(context.Background())
	err = c.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r','p','m','v','f','S') AND n.nspname NOT IN ('pg_catalog','information_schema')
		AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'`).Scan(&tables)
	if err != nil {
		return true, 0, fmt.Errorf("inspect target database %s: %w", name, err)
	}
	return true, tables, nil
}

// runRestore restores one database's dump: streamed through pg_restore's
// stdin in a single transaction (all or nothing) for one job, or over
// several connections (parallelRestore) for more.
func (p *Postgres) runRestore(ctx context.Context, req store.RestoreRequest, pgRestore string, pr plannedRestore, clean bool) error {
	art, err := req.Source.OpenArtifact(ctx, pr.db.Artifact)
	if err != nil {
		return err
	}
	defer art.Close()
	args := []string{"--no-password", "--exit-on-error", "--dbname=" + pr.target.String()}
	if clean {
		args = append(args, "--clean", "--if-exists")
	}
	jobs := max(req.Jobs, 1)
	if jobs == 1 {
		args = append(args, "--single-transaction")
		cmd, tail := command(ctx, pgRestore, pr.target.toolEnv(), args...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start pg_restore: %w", err)
		}
		_, copyErr := io.Copy(stdin, art)
		if copyErr != nil && cmd.Process != nil {
			// Damaged artifact: stop pg_restore before it commits; its
			// single transaction rolls back.
			cmd.Process.Kill()
		}
		stdin.Close()
		waitErr := cmd.Wait()
		if copyErr != nil {
			var pe *os.PathError
			if errors.As(copyErr, &pe) && waitErr != nil { // pg_restore died first: its message matters more
				return toolError("pg_restore", waitErr, tail)
			}
			return copyErr
		}
		if waitErr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return toolError("pg_restore", waitErr, tail)
		}
		return nil
	}
	if !clean {
		return p.parallelRestore(ctx, req, pgRestore, pr, art)
	}
	// Replacing existing objects: the drops must run in dependency order
	// across all sections, which only one pg_restore over the complete
	// file does; spool first, then restore.
	return p.spooledRestore(ctx, req, pgRestore, pr, art, []string{"--clean", "--if-exists"})
}

// VerifyArtifact runs `pg_restore --list` over the dump: it parses the
// whole archive's table of contents the way a real restore would.
func (p *Postgres) VerifyArtifact(ctx context.Context, m *repo.Manifest, a *repo.Artifact, r io.Reader) error {
	if m.Method == "physical" {
		return nil // VerifyBackup checks physical backups file by file
	}
	src, _, err := decodeManifest(m)
	if err != nil {
		return err
	}
	pgRestore, _, err := findTool(ctx, "pg_restore", p.binDir, src.PgDumpVersion)
	if err != nil {
		return err
	}
	cmd, tail := command(ctx, pgRestore, os.Environ(), "--list")
	cmd.Stdout = io.Discard
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pg_restore --list: %w", err)
	}
	_, copyErr := io.Copy(stdin, r)
	stdin.Close()
	waitErr := cmd.Wait()
	var pe *os.PathError
	if errors.As(copyErr, &pe) {
		// pg_restore --list stops after the table of contents; read the
		// rest so the checksums cover the whole artifact.
		_, copyErr = io.Copy(io.Discard, r)
	}
	if copyErr != nil {
		return copyErr // damage explains any complaint of pg_restore's
	}
	if waitErr != nil {
		return toolError("pg_restore --list", waitErr, tail)
	}
	return nil
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dbNames(dbs []DatabaseSource) string {
	var names []string
	for _, d := range dbs {
		names = append(names, d.Name)
	}
	return fmt.Sprint(names)
}
