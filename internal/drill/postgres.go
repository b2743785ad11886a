package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store/postgres"
)

func init() { RegisterKind("postgres", pgKind{}) }

// CanaryTable is the table canaries are written to in every database a
// postgres store backs up (docs/drills.md).
const CanaryTable = "linkdr_canary"

// keepCanaries bounds the canary table: older rows are deleted.
const keepCanaries = 100

// minRowsForShrink: tables smaller than this in the previous backup are
// not judged by how much they shrank (a 3-row table losing 2 is noise).
const minRowsForShrink = 100

// ScratchPrefix starts the name of every scratch database a drill creates.
const ScratchPrefix = "linkdr_drill_"

type pgKind struct{}

// pgURL is a store's server URL with its password (from password_file
// when the URL has none), pointed at database db.
func pgURL(env Env, raw, db string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("invalid PostgreSQL URL for store %s", env.Store.Name)
	}
	if pf := env.Store.PasswordFile; pf != "" && u.User != nil {
		if _, has := u.User.Password(); !has {
			b, err := os.ReadFile(env.Ops.Plan.Resolve(pf))
			if err != nil {
				return nil, fmt.Errorf("store %s password_file: %w", env.Store.Name, err)
			}
			u.User = url.UserPassword(u.User.Username(), strings.TrimRight(string(b), "\r\n"))
		}
	}
	if db != "" {
		u.Path, u.RawPath = "/"+db, ""
	}
	return u, nil
}

// databases are the live databases a store's canaries go to: the plan's
// list, else those of the latest backup.
func (pgKind) databases(env Env) ([]string, error) {
	if len(env.Store.Databases) > 0 {
		return env.Store.Databases, nil
	}
	if env.Latest == nil {
		return nil, fmt.Errorf("store %s lists no databases and has no backup to learn them from", env.Store.Name)
	}
	src, _, err := decode(env.Latest)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range src.Databases {
		out = append(out, d.Name)
	}
	return out, nil
}

func connect(ctx context.Context, u *url.URL) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(cctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	return c, nil
}

func (k pgKind) WriteCanary(ctx context.Context, env Env, cn Canary) error {
	dbs, err := k.databases(env)
	if err != nil {
		return err
	}
	for _, db := range dbs {
		u, err := pgURL(env, env.Store.URL.Reveal(), db)
		if err != nil {
			return err
		}
		c, err := connect(ctx, u)
		if err != nil {
			return err
		}
		_, err = c.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+CanaryTable+` (
			id text PRIMARY KEY, written_at timestamptz NOT NULL, note text)`)
		if err == nil {
			_, err = c.Exec(ctx, `INSERT INTO `+CanaryTable+` (id, written_at, note) VALUES ($1, $2, $3)`,
				cn.ID, cn.WrittenAt.UTC(), "written by linkdr drills; see docs/drills.md")
		}
		if err == nil {
			_, err = c.Exec(ctx, `DELETE FROM `+CanaryTable+` WHERE id NOT IN
				(SELECT id FROM `+CanaryTable+` ORDER BY written_at DESC LIMIT $1)`, keepCanaries)
		}
		c.Close(context.Background())
		if err != nil {
			return fmt.Errorf("write canary into %s: %w", u.Redacted(), err)
		}
	}
	return nil
}

func readCanaries(ctx context.Context, u *url.URL, db string) ([]Canary, error) {
	c, err := connect(ctx, u)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, `SELECT id, written_at FROM `+CanaryTable+` ORDER BY written_at`)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table: no canary yet
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read canaries from %s: %w", u.Redacted(), err)
	}
	var out []Canary
	for rows.Next() {
		cn := Canary{Database: db}
		if err := rows.Scan(&cn.ID, &cn.WrittenAt); err != nil {
			rows.Close()
			return nil, err
		}
		cn.WrittenAt = cn.WrittenAt.UTC()
		out = append(out, cn)
	}
	rows.Close()
	return out, rows.Err()
}

func (k pgKind) LiveCanaries(ctx context.Context, env Env) ([]Canary, error) {
	dbs, err := k.databases(env)
	if err != nil {
		return nil, err
	}
	var out []Canary
	for _, db := range dbs {
		u, err := pgURL(env, env.Store.URL.Reveal(), db)
		if err != nil {
			return nil, err
		}
		cs, err := readCanaries(ctx, u, db)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func decode(m *repo.Manifest) (postgres.Source, postgres.Stats, error) {
	var src postgres.Source
	var st postgres.Stats
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

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// scratchName is linkdr_drill_<drill id>_<database>, lower case, at most
// 63 bytes (PostgreSQL's limit).
func scratchName(drillID, db string) string {
	n := ScratchPrefix + unsafeName.ReplaceAllString(strings.ToLower(drillID+"_"+db), "_")
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

type pgScratch struct {
	env     Env
	server  *url.URL          // scratch server, no database
	dbs     map[string]string // backup database → scratch database
	order   []string
	created []string
}

func (k pgKind) Scratch(ctx context.Context, env Env, m *repo.Manifest) (Scratch, error) {
	raw := env.ScratchURL
	if raw == "" {
		raw = env.Store.URL.Reveal()
	}
	server, err := pgURL(env, raw, "postgres")
	if err != nil {
		return nil, err
	}
	src, _, err := decode(m)
	if err != nil {
		return nil, err
	}
	s := &pgScratch{env: env, server: server, dbs: map[string]string{}}
	for _, d := range src.Databases {
		s.dbs[d.Name] = scratchName(env.DrillID, d.Name)
		s.order = append(s.order, d.Name)
	}
	// A drill killed outright (kill -9, a lost node) could not clean up:
	// its scratch databases are removed with this drill's, once they are
	// older than any drill runs.
	stale, err := staleScratch(ctx, server, time.Now())
	s.created = append(s.created, stale...)
	return s, err
}

// staleAfter is how old a scratch database must be before another drill
// takes it for a leftover.
const staleAfter = 24 * time.Hour

// staleScratch lists scratch databases on the server whose drill started
// more than staleAfter ago (the time is in the name).
func staleScratch(ctx context.Context, server *url.URL, now time.Time) ([]string, error) {
	c, err := connect(ctx, server)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname`, ScratchPrefix)
	if err != nil {
		return nil, fmt.Errorf("list scratch databases on %s: %w", server.Redacted(), err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list scratch databases on %s: %w", server.Redacted(), err)
	}
	var out []string
	for _, n := range names {
		rest := strings.TrimPrefix(n, ScratchPrefix)
		if len(rest) < 16 {
			continue
		}
		t, err := repo.IDTime(strings.ToUpper(rest[:16]))
		if err == nil && now.Sub(t) > staleAfter {
			out = append(out, n)
		}
	}
	return out, nil
}

func (s *pgScratch) url(scratchDB string) *url.URL {
	u := *s.server
	u.Path, u.RawPath = "/"+scratchDB, ""
	return &u
}

func (s *pgScratch) Describe() string {
	var names []string
	for _, d := range s.order {
		names = append(names, s.dbs[d])
	}
	u := *s.server
	u.Path = ""
	return fmt.Sprintf("%s databases %s", u.Redacted(), strings.Join(names, ", "))
}

// Restore restores database by database, each into its scratch name; the
// name is recorded before restoring so Cleanup drops a half-restored one.
func (s *pgScratch) Restore(ctx context.Context, m *repo.Manifest) error {
	for _, db := range s.order {
		s.created = append(s.created, s.dbs[db])
		_, _, err := s.env.Ops.Restore(ctx, m.Store, ops.RestoreOptions{
			Backup: m.ID, Target: s.url(s.dbs[db]).String(), Select: []string{db}, Jobs: 1,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *pgScratch) Compare(ctx context.Context, m *repo.Manifest) (drillreport.Integrity, error) {
	_, st, err := decode(m)
	if err != nil {
		return drillreport.Integrity{}, err
	}
	var in drillreport.Integrity
	var bad []string
	tables, rows := 0, int64(0)
	for _, db := range s.order {
		var ds *postgres.DatabaseStats
		for i := range st.Databases {
			if st.Databases[i].Name == db {
				ds = &st.Databases[i]
			}
		}
		if ds == nil || ds.Unavailable != "" {
			reason := "the manifest has no table figures"
			if ds != nil {
				reason = ds.Unavailable
			}
			bad = append(bad, fmt.Sprintf("database %s cannot be verified: %s", db, reason))
			continue
		}
		c, err := connect(ctx, s.url(s.dbs[db]))
		if err != nil {
			return in, err
		}
		sums, err := postgres.SumTables(ctx, c, ds.Tables)
		c.Close(context.Background())
		if err != nil {
			return in, fmt.Errorf("database %s: %w", db, err)
		}
		for i, t := range ds.Tables {
			got := sums[i]
			want, _ := t.Sum.MarshalText()
			have, _ := got.Sum.MarshalText()
			it := drillreport.IntegrityItem{Name: db + "." + t.Schema + "." + t.Name, ExpectedRows: t.Rows, Rows: got.Rows,
				ExpectedSum: string(want), Sum: string(have), OK: true}
			switch {
			case got.Rows != t.Rows:
				it.OK, it.Problem = false, fmt.Sprintf("%d rows restored, the backup's manifest says %d", got.Rows, t.Rows)
			case got.Sum != t.Sum:
				it.OK, it.Problem = false, fmt.Sprintf("content checksum %s, the backup's manifest says %s", have, want)
			}
			if !it.OK {
				bad = append(bad, it.Name+": "+it.Problem)
			}
			in.Items = append(in.Items, it)
			tables++
			rows += got.Rows
		}
	}
	return judgeIntegrity(in, bad, fmt.Sprintf("%d tables, %d rows: counts and checksums match the manifest", tables, rows))
}

func (s *pgScratch) Canaries(ctx context.Context) ([]Canary, error) {
	var out []Canary
	for _, db := range s.order {
		cs, err := readCanaries(ctx, s.url(s.dbs[db]), db)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// CheckURL maps a check's database to its scratch copy: the named one,
// else (no database named) the store URL's own, else the only one.
func (s *pgScratch) CheckURL(database string) (string, bool) {
	if database == "" {
		if u, err := url.Parse(s.env.Store.URL.Reveal()); err == nil {
			database = strings.TrimPrefix(u.Path, "/")
		}
	}
	if d, ok := s.dbs[database]; ok {
		return s.url(d).String(), true
	}
	if len(s.order) == 1 && (database == "" || database == "postgres") {
		return s.url(s.dbs[s.order[0]]).String(), true
	}
	return "", false
}

// Cleanup drops every scratch database (FORCE ends sessions a check may
// have left), including ones a failed restore half created.
func (s *pgScratch) Cleanup(ctx context.Context) ([]string, error) {
	if len(s.created) == 0 {
		return nil, nil
	}
	c, err := connect(ctx, s.server)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	var removed []string
	var errs []error
	for _, db := range s.created {
		var exists bool
		if err := c.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_database WHERE datname = $1`, db).Scan(&exists); err != nil {
			errs = append(errs, err)
			continue
		}
		if !exists {
			continue
		}
		if _, err := c.Exec(ctx, "DROP DATABASE "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("drop %s: %w", db, err))
			continue
		}
		removed = append(removed, "database "+db)
	}
	return removed, errors.Join(errs...)
}

func (pgKind) History(prev, cur *repo.Manifest, maxShrink float64) ([]drillreport.HistoryFinding, error) {
	_, ps, err := decode(prev)
	if err != nil {
		return nil, err
	}
	_, cs, err := decode(cur)
	if err != nil {
		return nil, err
	}
	rowsOf := map[string]int64{}
	for _, d := range cs.Databases {
		for _, t := range d.Tables {
			rowsOf[d.Name+"."+t.Schema+"."+t.Name] = t.Rows
		}
	}
	var out []drillreport.HistoryFinding
	for _, d := range ps.Databases {
		if d.Unavailable != "" {
			continue
		}
		for _, t := range d.Tables {
			if t.Name == CanaryTable {
				continue
			}
			name := d.Name + "." + t.Schema + "." + t.Name
			now, present := rowsOf[name]
			if f, ok := judgeShrink(prev, cur, counted{name, "table", "rows", t.Rows, now, present}, maxShrink); ok {
				out = append(out, f)
			}
		}
	}
	return out, nil
}
