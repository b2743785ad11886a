package qdrant

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/store"
)

func init() { store.Register("qdrant", New) }

// MediaTypeSnapshot is the media type of a collection snapshot artifact:
// the tar file Qdrant's snapshot API produced, byte for byte.
const MediaTypeSnapshot = "application/x-qdrant-snapshot"

// ErrChecksumMismatch: a downloaded snapshot does not have the SHA-256
// (or size) the server reported for it.
var ErrChecksumMismatch = errors.New("snapshot checksum mismatch")

// Qdrant is one Qdrant deployment from the plan.
type Qdrant struct {
	name        string
	url         string
	nodes       []string
	apiKey      string
	collections []string
	log         *slog.Logger
}

var _ store.Store = (*Qdrant)(nil)

// New builds the store from its plan entry.
func New(cfg *plan.Store, env store.Env) (store.Store, error) {
	key := cfg.APIKey.Reveal()
	if cfg.APIKeyFile != "" {
		path := cfg.APIKeyFile
		if env.Plan != nil {
			path = env.Plan.Resolve(path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("store %s: api_key_file: %w", cfg.Name, err)
		}
		key = strings.TrimSpace(string(b))
	}
	q := &Qdrant{name: cfg.Name, url: cfg.URL.Reveal(), nodes: cfg.Nodes, apiKey: key, collections: cfg.Collections, log: env.Log}
	if q.log == nil {
		q.log = slog.Default()
	}
	if _, err := NewClient(q.url, key); err != nil {
		return nil, fmt.Errorf("store %s: url: %w", cfg.Name, err)
	}
	for i, n := range q.nodes {
		if _, err := NewClient(n, key); err != nil {
			return nil, fmt.Errorf("store %s: nodes[%d]: %w", cfg.Name, i, err)
		}
	}
	return q, nil
}

// nodeClients are the nodes to snapshot: every node of a distributed
// deployment, or the one URL.
func (q *Qdrant) nodeClients(target string) ([]*Client, error) {
	urls := q.nodes
	if target != "" {
		urls = []string{target}
	} else if len(urls) == 0 {
		urls = []string{q.url}
	}
	out := make([]*Client, len(urls))
	for i, u := range urls {
		c, err := NewClient(u, q.apiKey)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// Source is the manifest's "source" for qdrant backups.
type Source struct {
	// URL of the node linkdr asked (never credentials).
	URL     string `json:"url"`
	Version string `json:"version"`
	// Distributed is true when the node reported an enabled cluster;
	// Nodes then lists the REST URLs whose snapshots were taken, in the
	// order their artifacts are numbered.
	Distributed bool     `json:"distributed"`
	Nodes       []string `json:"nodes,omitempty"`
}

// Stats is the manifest's "stats" for qdrant backups.
type Stats struct {
	Collections []CollectionStats `json:"collections"`
}

// CollectionStats describes one collection as it was backed up.
type CollectionStats struct {
	Name string `json:"name"`
	// Points is the exact, cluster-wide count, taken just before the
	// snapshots; restores wait until the target holds as many.
	Points int64  `json:"points"`
	Status string `json:"status"`
	// Config is the collection's config as GET /collections/{name}
	// returned it; restores compare its params.
	Config    RawJSON         `json:"config"`
	Snapshots []SnapshotStats `json:"snapshots"`
}

// SnapshotStats is one node's snapshot of a collection.
type SnapshotStats struct {
	Artifact string `json:"artifact"`
	Node     string `json:"node"`
	PeerID   uint64 `json:"peer_id,omitempty"`
	// Name, Size and Checksum as the server reported them; the artifact's
	// plain_sha256 equals Checksum.
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Checksum string `json:"checksum"`
	Created  string `json:"created,omitempty"`
	// LocalShards are the shards this node held (distributed mode).
	LocalShards []LocalShard `json:"local_shards,omitempty"`
}

var safeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// artifactName maps a collection (and node index, -1 for single-node) to
// a safe artifact name. Names that needed changing get a hash suffix so
// two collections never collide.
func artifactName(collection string, node int) string {
	base := safeName.ReplaceAllString(collection, "_")
	if base != collection || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "-") || strings.HasPrefix(base, "_") {
		h := sha256.Sum256([]byte(collection))
		base = "c" + base + "-" + hex.EncodeToString(h[:4])
	}
	if len(base) > 150 {
		base = base[:150]
	}
	if node >= 0 {
		return fmt.Sprintf("%s.node%d.snapshot", base, node)
	}
	return base + ".snapshot"
}
