package qdranttest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is the Qdrant version the server claims (the OpenAPI document's).
const Version = "1.19.0"

//go:embed testdata/test-shard.snapshot
var shardSnapshot []byte

// Options configure a test deployment.
type Options struct {
	// APIKey, when set, is required in the api-key header (or as a
	// bearer token) on every request.
	APIKey string
	// Nodes is the number of peers; more than 1 makes a distributed
	// deployment with one shard per node.
	Nodes int
	// YellowPolls is how many GET /collections/{name} answer "yellow"
	// after a snapshot recovery (optimizers running) before "green".
	YellowPolls int
	// CollectViolations records OpenAPI violations (Violations) instead
	// of failing the test: for tests of the validator itself.
	CollectViolations bool
	// Addr is where the first node listens (host:port); empty means a
	// free port of 127.0.0.1. For the demo server, which must be found
	// at a known address.
	Addr string
}

// TB is what the server needs of a test: *testing.T and *testing.B have
// it, and so does the runnable server (qdranttest/server), which is not
// a test.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Point is one vector with its payload.
type Point struct {
	ID      uint64         `json:"id"`
	Vector  []float32      `json:"vector"`
	Payload map[string]any `json:"payload,omitempty"`
}

type snapshot struct {
	data     []byte
	checksum string
	created  time.Time
}

type collection struct {
	config    json.RawMessage
	shards    []map[uint64]Point // by node
	snapshots []map[string]*snapshot
	yellow    int
}

type failure struct {
	method, suffix string
	status         int
	message        string
}

// Cluster is a running test deployment of one or more nodes.
type Cluster struct {
	t     TB
	opts  Options
	v     *validator
	nodes []*node

	mu          sync.Mutex
	collections map[string]*collection
	failures    []failure
	corrupt     bool
	requests    []string
}

type node struct {
	c      *Cluster
	idx    int
	peerID uint64
	srv    *httptest.Server
}

// New starts a deployment; it stops when the test ends.
func New(t TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes < 1 {
		opts.Nodes = 1
	}
	c := &Cluster{t: t, opts: opts, collections: map[string]*collection{}}
	c.v = newValidator(t, opts.CollectViolations)
	for i := range opts.Nodes {
		n := &node{c: c, idx: i, peerID: uint64(7906894357956606 + i)}
		n.srv = httptest.NewUnstartedServer(c.v.wrap(http.HandlerFunc(n.serve)))
		if i == 0 && opts.Addr != "" {
			l, err := net.Listen("tcp", opts.Addr)
			if err != nil {
				t.Fatalf("qdranttest: %v", err)
			}
			n.srv.Listener.Close()
			n.srv.Listener = l
		}
		n.srv.Start()
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.srv.Close()
		}
	})
	return c
}

// URL is the REST URL of the first node.
func (c *Cluster) URL() string { return c.nodes[0].srv.URL }

// NodeURLs are the REST URLs of every node, in shard order.
func (c *Cluster) NodeURLs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.srv.URL
	}
	return out
}

// Validated is how many requests passed through the OpenAPI validator.
func (c *Cluster) Validated() int { return c.v.count() }

// Violations lists OpenAPI violations (with CollectViolations).
func (c *Cluster) Violations() []string { return c.v.list() }

// Requests lists "METHOD path?query" of every request served, in order.
func (c *Cluster) Requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.requests...)
}

// CreateCollection makes a collection of dim-dimensional vectors.
func (c *Cluster) CreateCollection(name string, dim int, distance string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.collections[name] = c.newCollection(configFor(dim, distance, len(c.nodes)))
}

func (c *Cluster) newCollection(cfg json.RawMessage) *collection {
	col := &collection{config: cfg}
	for range c.nodes {
		col.shards = append(col.shards, map[uint64]Point{})
		col.snapshots = append(col.snapshots, map[string]*snapshot{})
	}
	return col
}

func configFor(dim int, distance string, shards int) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"params": map[string]any{
			"vectors":      map[string]any{"size": dim, "distance": distance},
			"shard_number": shards, "replication_factor": 1, "write_consistency_factor": 1, "on_disk_payload": true,
		},
		"hnsw_config":      map[string]any{"m": 16, "ef_construct": 100, "full_scan_threshold": 10000, "max_indexing_threads": 0, "on_disk": false},
		"optimizer_config": map[string]any{"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000, "default_segment_number": 0, "flush_interval_sec": 5},
		"wal_config":       map[string]any{"wal_capacity_mb": 32, "wal_segments_ahead": 0},
	})
	return b
}

// Upsert adds or replaces points; each lands on shard id mod nodes.
func (c *Cluster) Upsert(name string, points []Point) {
	c.mu.Lock()
	defer c.mu.Unlock()
	col := c.collections[name]
	for _, p := range points {
		col.shards[int(p.ID%uint64(len(c.nodes)))][p.ID] = p
	}
}

// DeleteCollection drops a collection (the disaster).
func (c *Cluster) DeleteCollection(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.collections, name)
}

// Points returns a collection's points, all shards together.
func (c *Cluster) Points(name string) map[uint64]Point {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[uint64]Point{}
	if col := c.collections[name]; col != nil {
		for _, s := range col.shards {
			for id, p := range s {
				out[id] = p
			}
		}
	}
	return out
}

// Snapshots lists the snapshots stored on the server for a collection
// (linkdr deletes its own after downloading them).
func (c *Cluster) Snapshots(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	if col := c.collections[name]; col != nil {
		for _, m := range col.snapshots {
			for s := range m {
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}

// CorruptNextDownload flips one byte of the next snapshot download, as a
// broken disk or proxy would.
func (c *Cluster) CorruptNextDownload() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corrupt = true
}

// FailNext makes the next request whose method matches and whose path
// ends with suffix fail with status and a Qdrant error envelope carrying
// message.
func (c *Cluster) FailNext(method, suffix string, status int, message string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, failure{method, suffix, status, message})
}

func (c *Cluster) takeFailure(r *http.Request) *failure {
	for i, f := range c.failures {
		if f.method == r.Method && strings.HasSuffix(r.URL.Path, f.suffix) {
			c.failures = append(c.failures[:i], c.failures[i+1:]...)
			return &f
		}
	}
	return nil
}

var (
	collectionRE = regexp.MustCompile(`^/collections/([^/]+)$`)
	countRE      = regexp.MustCompile(`^/collections/([^/]+)/points/count$`)
	scrollRE     = regexp.MustCompile(`^/collections/([^/]+)/points/scroll$`)
	colClusterRE = regexp.MustCompile(`^/collections/([^/]+)/cluster$`)
	snapshotsRE  = regexp.MustCompile(`^/collections/([^/]+)/snapshots$`)
	uploadRE     = regexp.MustCompile(`^/collections/([^/]+)/snapshots/upload$`)
	snapshotRE   = regexp.MustCompile(`^/collections/([^/]+)/snapshots/([^/]+)$`)
)

// serve answers one request as Qdrant does.
func (n *node) serve(w http.ResponseWriter, r *http.Request) {
	c := n.c
	start := time.Now()
	c.mu.Lock()
	c.requests = append(c.requests, r.Method+" "+r.URL.RequestURI())
	f := c.takeFailure(r)
	c.mu.Unlock()
	if f != nil {
		writeError(w, start, f.status, f.message)
		return
	}
	if key := c.opts.APIKey; key != "" {
		got := r.Header.Get("api-key")
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			got = b
		}
		switch {
		case got == "":
			writeError(w, start, http.StatusUnauthorized, "Must provide an API key or an Authorization bearer token")
			return
		case got != key:
			writeError(w, start, http.StatusForbidden, "Invalid API key or JWT")
			return
		}
	}
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/":
		writeJSON(w, http.StatusOK, map[string]any{"title": "qdrant - vector search engine", "version": Version, "commit": "qdranttest"})
	case r.Method == http.MethodGet && p == "/collections":
		n.listCollections(w, start)
	case r.Method == http.MethodGet && p == "/cluster":
		n.cluster(w, start)
	case r.Method == http.MethodGet && collectionRE.MatchString(p):
		n.getCollection(w, start, unescape(collectionRE.FindStringSubmatch(r.URL.EscapedPath())[1]))
	case r.Method == http.MethodDelete && collectionRE.MatchString(p):
		// DELETE /collections/{name}: result true when it existed.
		name := unescape(collectionRE.FindStringSubmatch(r.URL.EscapedPath())[1])
		c.mu.Lock()
		_, existed := c.collections[name]
		delete(c.collections, name)
		c.mu.Unlock()
		writeOK(w, start, existed)
	case r.Method == http.MethodPost && scrollRE.MatchString(p):
		n.scroll(w, r, start, unescape(scrollRE.FindStringSubmatch(r.URL.EscapedPath())[1]))
	case r.Method == http.MethodPost && countRE.MatchString(p):
		n.count(w, r, start, unescape(countRE.FindStringSubmatch(r.URL.EscapedPath())[1]))
	case r.Method == http.MethodGet && colClusterRE.MatchString(p):
		n.collectionCluster(w, start, unescape(colClusterRE.FindStringSubmatch(r.URL.EscapedPath())[1]))
	case r.Method == http.MethodPost && uploadRE.MatchString(p):
		n.upload(w, r, start, unescape(uploadRE.FindStringSubmatch(r.URL.EscapedPath())[1]))
	case r.Method == http.MethodPost && snapshotsRE.MatchString(p):
		n.createSnapshot(w, r, start, unescape(snapshotsRE.FindStringSubmatch(r.URL.EscapedPath())[1]))
	case r.Method == http.MethodGet && snapshotsRE.MatchString(p):
		n.listSnapshots(w, start, unescape(snapshotsRE.FindStringSubmatch(r.URL.EscapedPath())[1]))
	case snapshotRE.MatchString(p) && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		m := snapshotRE.FindStringSubmatch(r.URL.EscapedPath())
		if r.Method == http.MethodGet {
			n.download(w, start, unescape(m[1]), unescape(m[2]))
		} else {
			n.deleteSnapshot(w, r, start, unescape(m[1]), unescape(m[2]))
		}
	default:
		// actix answers unknown routes with an empty 404.
		w.WriteHeader(http.StatusNotFound)
	}
}

func unescape(s string) string {
	if u, err := urlUnescape(s); err == nil {
		return u
	}
	return s
}

// writeOK writes Qdrant's success envelope.
func writeOK(w http.ResponseWriter, start time.Time, result any) {
	writeJSON(w, http.StatusOK, map[string]any{"result": result, "status": "ok", "time": time.Since(start).Seconds()})
}

// writeAccepted is the answer to wait=false.
func writeAccepted(w http.ResponseWriter, start time.Time) {
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "accepted", "time": time.Since(start).Seconds()})
}

// writeError writes Qdrant's error envelope.
func writeError(w http.ResponseWriter, start time.Time, status int, msg string) {
	writeJSON(w, status, map[string]any{"status": map[string]any{"error": msg}, "time": time.Since(start).Seconds()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter, start time.Time, name string) {
	writeError(w, start, http.StatusNotFound, fmt.Sprintf("Not found: Collection `%s` doesn't exist!", name))
}

// wait parses the wait query parameter (default true).
func wait(r *http.Request) bool {
	v := r.URL.Query().Get("wait")
	b, err := strconv.ParseBool(v)
	return v == "" || err != nil || b
}

func (n *node) listCollections(w http.ResponseWriter, start time.Time) {
	n.c.mu.Lock()
	names := make([]string, 0, len(n.c.collections))
	for k := range n.c.collections {
		names = append(names, k)
	}
	n.c.mu.Unlock()
	sort.Strings(names)
	list := make([]map[string]string, len(names))
	for i, k := range names {
		list[i] = map[string]string{"name": k}
	}
	writeOK(w, start, map[string]any{"collections": list})
}

func (n *node) getCollection(w http.ResponseWriter, start time.Time, name string) {
	c := n.c
	c.mu.Lock()
	col := c.collections[name]
	if col == nil {
		c.mu.Unlock()
		notFound(w, start, name)
		return
	}
	status := "green"
	if col.yellow > 0 {
		col.yellow--
		status = "yellow"
	}
	total := 0
	for _, s := range col.shards {
		total += len(s)
	}
	cfg := col.config
	c.mu.Unlock()
	writeOK(w, start, map[string]any{
		"status": status, "optimizer_status": "ok", "segments_count": len(c.nodes),
		"points_count": total, "indexed_vectors_count": 0, "config": cfg, "payload_schema": map[string]any{},
	})
}

// scroll pages through a collection's points in id order, as Qdrant
// does without order_by: offset is the first id, limit the page size
// (10), payload is on by default, vectors off. Filters are not
// supported: it is for reading a collection back whole.
func (n *node) scroll(w http.ResponseWriter, r *http.Request, start time.Time, name string) {
	var req struct {
		Offset      *uint64         `json:"offset"`
		Limit       *int            `json:"limit"`
		Filter      json.RawMessage `json:"filter"`
		WithPayload *bool           `json:"with_payload"`
		WithVector  *bool           `json:"with_vector"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, start, http.StatusBadRequest, "Format error in JSON body: "+err.Error())
			return
		}
	}
	if len(req.Filter) > 0 && string(req.Filter) != "null" {
		writeError(w, start, http.StatusBadRequest, "qdranttest: scroll filters are not supported")
		return
	}
	limit := 10
	if req.Limit != nil {
		limit = *req.Limit
	}
	points := n.c.Points(name)
	n.c.mu.Lock()
	_, ok := n.c.collections[name]
	n.c.mu.Unlock()
	if !ok {
		notFound(w, start, name)
		return
	}
	ids := make([]uint64, 0, len(points))
	for id := range points {
		if req.Offset == nil || id >= *req.Offset {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var next any
	if len(ids) > limit {
		next, ids = ids[limit], ids[:limit]
	}
	out := make([]map[string]any, len(ids))
	for i, id := range ids {
		rec := map[string]any{"id": id}
		if req.WithPayload == nil || *req.WithPayload {
			rec["payload"] = points[id].Payload
			if rec["payload"] == nil {
				rec["payload"] = map[string]any{}
			}
		}
		if req.WithVector != nil && *req.WithVector {
			rec["vector"] = points[id].Vector
		}
		out[i] = rec
	}
	writeOK(w, start, map[string]any{"points": out, "next_page_offset": next})
}

func (n *node) count(w http.ResponseWriter, r *http.Request, start time.Time, name string) {
	var req struct {
		Exact *bool `json:"exact"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, start, http.StatusBadRequest, "Format error in JSON body: "+err.Error())
			return
		}
	}
	n.c.mu.Lock()
	col := n.c.collections[name]
	total := 0
	if col != nil {
		for _, s := range col.shards {
			total += len(s)
		}
	}
	n.c.mu.Unlock()
	if col == nil {
		notFound(w, start, name)
		return
	}
	writeOK(w, start, map[string]any{"count": total})
}

func (n *node) cluster(w http.ResponseWriter, start time.Time) {
	if len(n.c.nodes) == 1 {
		writeOK(w, start, map[string]any{"status": "disabled"})
		return
	}
	peers := map[string]any{}
	for _, o := range n.c.nodes {
		peers[strconv.FormatUint(o.peerID, 10)] = map[string]any{"uri": fmt.Sprintf("http://qdrant-%d:6335/", o.idx)}
	}
	writeOK(w, start, map[string]any{
		"status": "enabled", "peer_id": n.peerID, "peers": peers,
		"raft_info":               map[string]any{"term": 2, "commit": 40, "pending_operations": 0, "leader": n.c.nodes[0].peerID, "role": role(n.idx), "is_voter": true},
		"consensus_thread_status": map[string]any{"consensus_thread_status": "working", "last_update": time.Now().UTC().Format(time.RFC3339Nano)},
		"message_send_failures":   map[string]any{},
	})
}

func role(i int) string {
	if i == 0 {
		return "Leader"
	}
	return "Follower"
}

func (n *node) collectionCluster(w http.ResponseWriter, start time.Time, name string) {
	c := n.c
	c.mu.Lock()
	col := c.collections[name]
	if col == nil {
		c.mu.Unlock()
		notFound(w, start, name)
		return
	}
	local := []map[string]any{{"shard_id": n.idx, "points_count": len(col.shards[n.idx]), "state": "Active"}}
	remote := []map[string]any{}
	for _, o := range c.nodes {
		if o != n {
			remote = append(remote, map[string]any{"shard_id": o.idx, "peer_id": o.peerID, "state": "Active"})
		}
	}
	c.mu.Unlock()
	writeOK(w, start, map[string]any{"peer_id": n.peerID, "shard_count": len(c.nodes), "local_shards": local, "remote_shards": remote, "shard_transfers": []any{}})
}

func (n *node) createSnapshot(w http.ResponseWriter, r *http.Request, start time.Time, name string) {
	c := n.c
	c.mu.Lock()
	col := c.collections[name]
	if col == nil {
		c.mu.Unlock()
		notFound(w, start, name)
		return
	}
	now := time.Now().UTC()
	snapName := fmt.Sprintf("%s-%d-%s.snapshot", name, n.peerID, now.Format("2006-01-02-15-04-05"))
	for col.snapshots[n.idx][snapName] != nil { // two in one second: real Qdrant would overwrite
		now = now.Add(time.Second)
		snapName = fmt.Sprintf("%s-%d-%s.snapshot", name, n.peerID, now.Format("2006-01-02-15-04-05"))
	}
	data, err := buildSnapshot(col.config, n.idx, col.shards[n.idx])
	if err != nil {
		c.mu.Unlock()
		writeError(w, start, http.StatusInternalServerError, "Service internal error: "+err.Error())
		return
	}
	sum := sha256.Sum256(data)
	s := &snapshot{data: data, checksum: hex.EncodeToString(sum[:]), created: now}
	col.snapshots[n.idx][snapName] = s
	c.mu.Unlock()
	if !wait(r) {
		writeAccepted(w, start)
		return
	}
	writeOK(w, start, describe(snapName, s))
}

func describe(name string, s *snapshot) map[string]any {
	return map[string]any{"name": name, "creation_time": s.created.Format("2006-01-02T15:04:05"), "size": len(s.data), "checksum": s.checksum}
}

func (n *node) listSnapshots(w http.ResponseWriter, start time.Time, name string) {
	c := n.c
	c.mu.Lock()
	col := c.collections[name]
	if col == nil {
		c.mu.Unlock()
		notFound(w, start, name)
		return
	}
	out := []map[string]any{}
	for k, s := range col.snapshots[n.idx] {
		out = append(out, describe(k, s))
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i]["name"].(string) < out[j]["name"].(string) })
	writeOK(w, start, out)
}

func (n *node) download(w http.ResponseWriter, start time.Time, name, snap string) {
	c := n.c
	c.mu.Lock()
	col := c.collections[name]
	var s *snapshot
	if col != nil {
		s = col.snapshots[n.idx][snap]
	}
	corrupt := c.corrupt && s != nil
	if corrupt {
		c.corrupt = false
	}
	c.mu.Unlock()
	switch {
	case col == nil:
		notFound(w, start, name)
		return
	case s == nil:
		writeError(w, start, http.StatusNotFound, fmt.Sprintf("Not found: Snapshot %s not found", snap))
		return
	}
	data := s.data
	if corrupt {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 0x40
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

func (n *node) deleteSnapshot(w http.ResponseWriter, r *http.Request, start time.Time, name, snap string) {
	c := n.c
	c.mu.Lock()
	col := c.collections[name]
	var ok bool
	if col != nil {
		_, ok = col.snapshots[n.idx][snap]
		delete(col.snapshots[n.idx], snap)
	}
	c.mu.Unlock()
	switch {
	case col == nil:
		notFound(w, start, name)
	case !ok:
		writeError(w, start, http.StatusNotFound, fmt.Sprintf("Not found: Snapshot %s not found", snap))
	case !wait(r):
		writeAccepted(w, start)
	default:
		writeOK(w, start, true)
	}
}

var sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// upload recovers a collection from an uploaded snapshot, as
// POST /collections/{name}/snapshots/upload does.
func (n *node) upload(w http.ResponseWriter, r *http.Request, start time.Time, name string) {
	q := r.URL.Query()
	sum := q.Get("checksum")
	if sum != "" && !sha256RE.MatchString(sum) {
		writeError(w, start, http.StatusUnprocessableEntity, "Validation error in path parameters: [checksum: invalid SHA256 hash]")
		return
	}
	switch q.Get("priority") {
	case "", "no_sync", "snapshot", "replica":
	default:
		writeError(w, start, http.StatusBadRequest, "Query deserialize error: unknown variant `"+q.Get("priority")+"`, expected one of `no_sync`, `snapshot`, `replica`")
		return
	}
	data, err := snapshotPart(r)
	if err != nil {
		writeError(w, start, http.StatusBadRequest, "Bad request: "+err.Error())
		return
	}
	if sum != "" {
		got := sha256.Sum256(data)
		if h := hex.EncodeToString(got[:]); !strings.EqualFold(h, sum) {
			writeError(w, start, http.StatusBadRequest, fmt.Sprintf("Checksum mismatch: expected %s, actual %s", h, sum))
			return
		}
	}
	cfg, points, err := readSnapshot(data, n.idx)
	if err != nil {
		writeError(w, start, http.StatusInternalServerError, "Service internal error: "+err.Error())
		return
	}
	c := n.c
	c.mu.Lock()
	col := c.collections[name]
	if col == nil {
		col = c.newCollection(cfg)
		c.collections[name] = col
	}
	col.config = cfg
	col.shards[n.idx] = points
	col.yellow = c.opts.YellowPolls
	c.mu.Unlock()
	if !wait(r) {
		writeAccepted(w, start)
		return
	}
	writeOK(w, start, true)
}

// snapshotPart reads the multipart field "snapshot".
func snapshotPart(r *http.Request) ([]byte, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("multipart form expected: %v", err)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, fmt.Errorf("field `snapshot` is missing from the multipart form")
		}
		if err != nil {
			return nil, err
		}
		if p.FormName() == "snapshot" {
			return io.ReadAll(p)
		}
	}
}

// buildSnapshot lays out a collection snapshot: the collection's files
// and the shard directory of this node, filled with the real shard
// snapshot's files plus the points.
func buildSnapshot(cfg json.RawMessage, shard int, points map[uint64]Point) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Now().UTC().Truncate(time.Second)
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644, ModTime: mod}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := file("config.json", cfg); err != nil {
		return nil, err
	}
	if err := file("version.info", []byte(Version)); err != nil {
		return nil, err
	}
	if err := file("payload_index.json", []byte(`{"schema":{}}`)); err != nil {
		return nil, err
	}
	dir := strconv.Itoa(shard) + "/"
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mod}); err != nil {
		return nil, err
	}
	tr := tar.NewReader(bytes.NewReader(shardSnapshot))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("embedded shard snapshot: %w", err)
		}
		if h.Typeflag == tar.TypeDir {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + h.Name, Mode: 0o755, ModTime: h.ModTime}); err != nil {
				return nil, err
			}
			continue
		}
		data, err := io.ReadAll(tr) // sparse files come back expanded
		if err != nil {
			return nil, err
		}
		if err := file(dir+h.Name, data); err != nil {
			return nil, err
		}
	}
	ids := make([]uint64, 0, len(points))
	for id := range points {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var pts bytes.Buffer
	enc := json.NewEncoder(&pts)
	for _, id := range ids {
		enc.Encode(points[id])
	}
	if err := file(dir+"segments/qdranttest/points.jsonl", pts.Bytes()); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readSnapshot takes a collection snapshot apart again.
func readSnapshot(data []byte, shard int) (json.RawMessage, map[uint64]Point, error) {
	tr := tar.NewReader(bytes.NewReader(data))
	var cfg json.RawMessage
	points := map[uint64]Point{}
	shardFile := false
	pointsFile := strconv.Itoa(shard) + "/segments/qdranttest/points.jsonl"
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("failed to unpack snapshot: %v", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch {
		case name == "config.json":
			b, err := io.ReadAll(tr)
			if err != nil || !json.Valid(b) {
				return nil, nil, fmt.Errorf("failed to read collection config: invalid JSON")
			}
			cfg = b
		case name == strconv.Itoa(shard)+"/shard_config.json":
			shardFile = true
		case name == pointsFile:
			dec := json.NewDecoder(tr)
			for dec.More() {
				var p Point
				if err := dec.Decode(&p); err != nil {
					return nil, nil, fmt.Errorf("failed to load segment: %v", err)
				}
				points[p.ID] = p
			}
		}
	}
	if cfg == nil {
		return nil, nil, fmt.Errorf("failed to read collection config: config.json not found in snapshot")
	}
	if !shardFile {
		// Qdrant's own wording, capital and all.
		return nil, nil, errors.New("Can't read shard config at " + strconv.Itoa(shard) + "/")
	}
	return cfg, points, nil
}
