package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

func init() {
	store.Register("redis", New)
	// go-redis logs dial failures and the like on its own; linkdr returns
	// them as errors with context instead.
	goredis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Media types of the artifacts.
const (
	// MediaTypeRESP: a stream of RESP commands (SELECT, then RESTORE … REPLACE
	// ABSTTL per key), for `redis-cli --pipe`.
	MediaTypeRESP = "application/x-redis-resp-restore"
	// MediaTypeRDB: an RDB file as the replication protocol sends it.
	MediaTypeRDB = "application/x-redis-rdb"
)

// Redis is one Redis deployment of the plan.
type Redis struct {
	name      string
	ep        *endpoint
	databases []int // empty: every database that has keys
	log       *slog.Logger
}

var _ store.Store = (*Redis)(nil)

// New builds the store from its plan entry.
func New(cfg *plan.Store, env store.Env) (store.Store, error) {
	pwFile := cfg.PasswordFile
	if pwFile != "" && env.Plan != nil {
		pwFile = env.Plan.Resolve(pwFile)
	}
	ep, err := parseEndpoint(cfg.URL.Reveal(), pwFile, false)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", cfg.Name, err)
	}
	dbs, err := ParseDatabases(cfg.Databases)
	if err != nil {
		return nil, fmt.Errorf("store %s: databases: %w", cfg.Name, err)
	}
	log := env.Log
	if log == nil {
		log = slog.Default()
	}
	return &Redis{name: cfg.Name, ep: ep, databases: dbs, log: log.With("store", cfg.Name)}, nil
}

// ParseDatabases reads the plan's database numbers.
func ParseDatabases(in []string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, s := range in {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a database number (0, 1, …)", s)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// Source is the manifest's "source" for redis backups.
type Source struct {
	// Mode is "standalone" or "cluster".
	Mode string `json:"mode"`
	// URL is the store's URL without credentials.
	URL string `json:"url"`
	// RDBVersion is the newest RDB version among the data: restore needs a
	// target that reads it (Redis 7.0 reads up to 10, 7.2 up to 11…).
	RDBVersion int `json:"rdb_version"`
	// Nodes are the servers read: the standalone server or each master.
	Nodes []*Node `json:"nodes"`
	// Databases are the database numbers backed up.
	Databases []int `json:"databases"`
	// ScanStarted and ScanFinished bound when the keys were read (resp).
	ScanStarted  time.Time `json:"scan_started,omitzero"`
	ScanFinished time.Time `json:"scan_finished,omitzero"`
}

// Stats is the manifest's "stats" for redis backups.
type Stats struct {
	// Counted says how the figures were obtained.
	Counted string `json:"counted"`
	// Keys is the number of distinct keys in the backup.
	Keys   int64            `json:"keys"`
	ByType map[string]int64 `json:"by_type,omitempty"`
	// Databases has one entry per database, in order.
	Databases []*DBStats `json:"databases"`
}

// DBStats are the figures of one database.
type DBStats struct {
	DB       int              `json:"db"`
	Artifact string           `json:"artifact,omitempty"`
	Keys     int64            `json:"keys"`
	ByType   map[string]int64 `json:"by_type,omitempty"`
	// WithTTL is how many keys have an expiry.
	WithTTL int64 `json:"with_ttl"`
	// PayloadBytes is the total size of the DUMP payloads.
	PayloadBytes int64 `json:"payload_bytes,omitempty"`
	// Vanished keys were listed by SCAN but gone (deleted or expired)
	// before DUMP: they are not in the backup.
	Vanished int64 `json:"vanished,omitempty"`
	// Repeated is how often SCAN returned a key already written (it may,
	// while the keyspace is resized); the artifact holds the key again,
	// harmlessly, but it is counted once.
	Repeated int64 `json:"repeated,omitempty"`
}

const (
	countedExact  = "exact: every key in the artifact, counted as it was written"
	countedInfoKS = "approximate: INFO keyspace of each master just before its snapshot"
)

func (st *Stats) db(n int) *DBStats {
	for _, d := range st.Databases {
		if d.DB == n {
			return d
		}
	}
	return nil
}

// decodeManifest reads the kind-specific parts of a manifest.
func decodeManifest(m *repo.Manifest) (Source, Stats, error) {
	var src Source
	var st Stats
	if m.Kind != "redis" {
		return src, st, fmt.Errorf("backup %s is of kind %s, not redis", m.ID, m.Kind)
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

func mode(t *topology) string {
	if t.cluster {
		return "cluster"
	}
	return "standalone"
}
