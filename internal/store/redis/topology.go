package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/store/redis/rdb"
)

// Node is one server that holds data: the standalone server, or a master
// of a cluster. It goes into the manifest as it is.
type Node struct {
	Addr string `json:"addr"`
	// ID is the cluster node id (cluster only).
	ID string `json:"id,omitempty"`
	// Slots are the hash slots the master served, like "0-5460" (cluster only).
	Slots        string `json:"slots,omitempty"`
	RedisVersion string `json:"redis_version"`
	// RDBVersion is the RDB version this server writes, from its version.
	RDBVersion int    `json:"rdb_version"`
	Role       string `json:"role"`
	// Artifact is the node's snapshot (method rdb).
	Artifact string `json:"artifact,omitempty"`
	// SnapshotAt is when the node's snapshot was taken (method rdb).
	SnapshotAt *time.Time `json:"snapshot_at,omitempty"`
	// Framing is how the snapshot came (method rdb): "eof" (diskless,
	// $EOF:<mark>) or "length" (from disk, $<length>).
	Framing string `json:"sync_framing,omitempty"`
	// Keys per database as INFO keyspace reported them (method rdb).
	Keys map[string]int64 `json:"keys,omitempty"`

	// clockOffset is the server's clock minus ours.
	clockOffset time.Duration
}

// topology is a deployment as found at the moment it was asked.
type topology struct {
	cluster bool
	// state is cluster_state (cluster only): "ok" or "fail".
	state   string
	masters []*Node
	// migrating lists slots being moved between masters.
	migrating []string
}

// discover connects to the first seed that answers and finds the
// masters: the server itself, or every master of its cluster.
func (e *endpoint) discover(ctx context.Context) (*topology, error) {
	var errs []error
	for _, addr := range e.addrs {
		t, err := e.discoverFrom(ctx, addr)
		if err == nil {
			return t, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, e.scrub(err)))
	}
	return nil, fmt.Errorf("connect to %s: %w", e, errors.Join(errs...))
}

func (e *endpoint) discoverFrom(ctx context.Context, addr string) (*topology, error) {
	c := goredis.NewClient(e.options(addr, 0))
	defer c.Close()
	info, err := serverInfo(ctx, c)
	if err != nil {
		return nil, err
	}
	clustered := info["cluster_enabled"] == "1"
	switch {
	case clustered && e.cluster == clusterNo:
		return nil, fmt.Errorf("cluster=false in the URL, but this server is a Redis Cluster node (hint: remove ?cluster=false)")
	case !clustered && e.cluster == clusterYes:
		return nil, fmt.Errorf("not a Redis Cluster node (cluster_enabled:0): remove ?cluster=true, or give a cluster node")
	}
	if !clustered {
		n, err := nodeFromInfo(ctx, c, addr, info)
		if err != nil {
			return nil, err
		}
		return &topology{masters: []*Node{n}}, nil
	}
	t := &topology{cluster: true}
	ci, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER INFO: %w", err)
	}
	t.state = parseInfo(ci)["cluster_state"]
	//lint:ignore SA1019 CLUSTER SHARDS exists only since Redis 7.0; CLUSTER SLOTS everywhere.
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	byID := map[string]*Node{}
	ranges := map[string][]goredis.ClusterSlot{}
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		m := s.Nodes[0]
		if byID[m.ID] == nil {
			byID[m.ID] = &Node{Addr: m.Addr, ID: m.ID}
			t.masters = append(t.masters, byID[m.ID])
		}
		ranges[m.ID] = append(ranges[m.ID], s)
	}
	if len(t.masters) == 0 {
		return nil, fmt.Errorf("the cluster has no slots assigned (hint: redis-cli --cluster create / fix)")
	}
	for _, n := range t.masters {
		n.Slots = slotRanges(ranges[n.ID])
		mc := goredis.NewClient(e.options(n.Addr, 0))
		mi, err := serverInfo(ctx, mc)
		if err == nil {
			var filled *Node
			filled, err = nodeFromInfo(ctx, mc, n.Addr, mi)
			if err == nil {
				n.RedisVersion, n.RDBVersion, n.Role, n.clockOffset = filled.RedisVersion, filled.RDBVersion, filled.Role, filled.clockOffset
			}
		}
		mc.Close()
		if err != nil {
			return nil, fmt.Errorf("cluster master %s: %w", n.Addr, err)
		}
	}
	sort.Slice(t.masters, func(i, j int) bool { return firstSlot(t.masters[i].Slots) < firstSlot(t.masters[j].Slots) })
	if nodes, err := c.ClusterNodes(ctx).Result(); err == nil {
		t.migrating = migratingSlots(nodes)
	}
	return t, nil
}

// serverInfo reads the INFO fields linkdr uses.
func serverInfo(ctx context.Context, c *goredis.Client) (map[string]string, error) {
	s, err := c.Info(ctx, "server", "replication", "cluster").Result()
	if err != nil {
		return nil, err
	}
	return parseInfo(s), nil
}

func nodeFromInfo(ctx context.Context, c *goredis.Client, addr string, info map[string]string) (*Node, error) {
	n := &Node{Addr: addr, RedisVersion: info["redis_version"], Role: info["role"]}
	n.RDBVersion, _ = rdb.VersionFor(n.RedisVersion)
	before := time.Now()
	st, err := c.Time(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("TIME: %w", err)
	}
	mid := before.Add(time.Since(before) / 2)
	n.clockOffset = st.Sub(mid)
	return n, nil
}

// parseInfo reads "key:value" lines of INFO.
func parseInfo(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}

// keyspace reads INFO keyspace: database number → keys.
func keyspace(ctx context.Context, c *goredis.Client) (map[int]int64, error) {
	s, err := c.Info(ctx, "keyspace").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO keyspace: %w", err)
	}
	out := map[int]int64{}
	for k, v := range parseInfo(s) {
		db, err := strconv.Atoi(strings.TrimPrefix(k, "db"))
		if err != nil || !strings.HasPrefix(k, "db") {
			continue
		}
		for _, f := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(f, "keys="); ok {
				out[db], _ = strconv.ParseInt(n, 10, 64)
			}
		}
	}
	return out, nil
}

func slotRanges(ss []goredis.ClusterSlot) string {
	sort.Slice(ss, func(i, j int) bool { return ss[i].Start < ss[j].Start })
	var parts []string
	for _, s := range ss {
		if s.Start == s.End {
			parts = append(parts, strconv.Itoa(s.Start))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", s.Start, s.End))
		}
	}
	return strings.Join(parts, ",")
}

func firstSlot(r string) int {
	f := strings.FieldsFunc(r, func(c rune) bool { return c == '-' || c == ',' })
	if len(f) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// migratingSlots finds "[slot->-node]" and "[slot-<-node]" markers in
// CLUSTER NODES: slots being moved while we look.
func migratingSlots(nodes string) []string {
	var out []string
	for _, line := range strings.Split(nodes, "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "[") && strings.Contains(f, "->-") {
				out = append(out, strings.Trim(f, "[]"))
			}
		}
	}
	return out
}

// minRDB is the oldest RDB version any master reads (0 if unknown).
func (t *topology) minRDB() (int, *Node) {
	var v int
	var which *Node
	for _, m := range t.masters {
		if m.RDBVersion > 0 && (v == 0 || m.RDBVersion < v) {
			v, which = m.RDBVersion, m
		}
	}
	return v, which
}

// nowMs is the current time on a node's clock, in Unix milliseconds.
func (n *Node) nowMs() int64 { return time.Now().Add(n.clockOffset).UnixMilli() }

// expireTimeCmd is how to read a key's absolute expiry: PEXPIRETIME
// (Redis 7.0 and later) returns it exactly; older servers only give PTTL,
// which is turned into an expiry with the node's clock.
func (n *Node) expireTimeCmd() string {
	major, _, _ := strings.Cut(n.RedisVersion, ".")
	if v, err := strconv.Atoi(major); err == nil && v >= 7 {
		return "PEXPIRETIME"
	}
	return "PTTL"
}

// expireAt turns the reply of expireTimeCmd into an absolute expiry in
// Unix ms (0: none) and whether the key exists; sent is when the command
// went out.
func (n *Node) expireAt(v int64, sent time.Time) (at int64, exists bool) {
	switch {
	case v == -2:
		return 0, false
	case v == -1:
		return 0, true
	case n.expireTimeCmd() == "PEXPIRETIME":
		return max(v, 1), true // 0 would mean "no expiry"
	}
	return max(sent.Add(n.clockOffset).UnixMilli()+v, 1), true
}
