package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/postgres/pgarchive"
)

func init() { store.Register("postgres", New) }

// MediaTypeDump is the media type of a logical backup artifact: the
// output of `pg_dump -Fc -Z0`, readable by pg_restore.
const MediaTypeDump = "application/x-postgresql-custom-dump"

// Postgres is one PostgreSQL server from the plan.
type Postgres struct {
	name      string
	ep        *endpoint
	databases []string
	binDir    string
	log       *slog.Logger
	// level is the plan's compression level; serverZstd lets physical
	// backups ask the server to compress (see physicalBackup).
	level      int
	serverZstd bool
}

var _ store.Store = (*Postgres)(nil)

// New builds the store from its plan entry.
func New(cfg *plan.Store, env store.Env) (store.Store, error) {
	pwFile := ""
	if cfg.PasswordFile != "" && env.Plan != nil {
		pwFile = env.Plan.Resolve(cfg.PasswordFile)
	} else {
		pwFile = cfg.PasswordFile
	}
	ep, err := parseEndpoint(cfg.URL.Reveal(), pwFile)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", cfg.Name, err)
	}
	log := env.Log
	if log == nil {
		log = slog.Default()
	}
	level := 2
	if env.Plan != nil {
		level = env.Plan.Encryption.CompressionLevel
	}
	return &Postgres{name: cfg.Name, ep: ep, databases: cfg.Databases, binDir: cfg.PGBinDir, log: log.With("store", cfg.Name),
		level: level, serverZstd: true}, nil
}

// Source is the manifest's "source" for postgres backups.
type Source struct {
	Host             string           `json:"host"`
	ServerVersion    string           `json:"server_version"`
	ServerVersionNum int              `json:"server_version_num"`
	SystemIdentifier string           `json:"system_identifier"`
	InRecovery       bool             `json:"in_recovery"`
	PgDumpVersion    int              `json:"pg_dump_major"`
	Databases        []DatabaseSource `json:"databases"`
}

// DatabaseSource is one dumped database.
type DatabaseSource struct {
	Name     string `json:"name"`
	Artifact string `json:"artifact"`
	Encoding string `json:"encoding"`
	// SnapshotAt is when the snapshot pg_dump used was taken.
	SnapshotAt time.Time `json:"snapshot_at"`
}

// Stats is the manifest's "stats" for logical backups.
type Stats struct {
	// RowCounts says how rows were counted: "exact (from the dump's COPY
	// data, same snapshot)".
	RowCounts string          `json:"row_counts"`
	Databases []DatabaseStats `json:"databases"`
}

// DatabaseStats holds every table's exact row count and checksum.
type DatabaseStats struct {
	Name   string             `json:"name"`
	Rows   int64              `json:"rows"`
	Tables []*pgarchive.Table `json:"tables"`
	// LargeObjects is the number of large objects dumped.
	LargeObjects int `json:"large_objects,omitempty"`
	// Unavailable says why tables could not be counted (empty when they were).
	Unavailable string `json:"unavailable,omitempty"`
}

const rowCountsExact = "exact (counted from the dump's own COPY data, same snapshot)"

// listDatabases resolves the plan's database list against the server.
func listDatabases(ctx context.Context, c *pgx.Conn, want []string) ([]string, error) {
	rows, err := c.Query(ctx, `SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname`)
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	if len(want) == 0 {
		return have, nil
	}
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	var missing []string
	for _, w := range want {
		if !set[w] {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("database %v does not exist on the server (it has: %v); fix stores.*.databases in the plan", missing, have)
	}
	out := append([]string(nil), want...)
	sort.Strings(out)
	return out, nil
}
