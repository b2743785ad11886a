package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/redis/rdb"
	"github.com/linkapp/linkdr/internal/store/redis/resp"
)

// Restore replays a resp backup into a running server or cluster, or
// writes an rdb backup's snapshots into a directory for a cold start.
func (s *Redis) Restore(ctx context.Context, req store.RestoreRequest) (*store.RestoreResult, error) {
	src, st, err := decodeManifest(req.Manifest)
	if err != nil {
		return nil, err
	}
	switch req.Manifest.Method {
	case "resp":
		return s.restoreRESP(ctx, req, src, st)
	case "rdb":
		return s.restoreRDB(ctx, req, src)
	}
	return nil, fmt.Errorf("backup %s: redis method %q cannot be restored by this linkdr", req.Manifest.ID, req.Manifest.Method)
}

// TargetPasswordEnv is read for a --target URL without a password, as
// redis-cli reads it.
const TargetPasswordEnv = "REDISCLI_AUTH"

// plannedDB is one database of the backup and where it goes.
type plannedDB struct {
	artifact string
	src, dst int
	stats    *DBStats
}

// restoreTarget is a resolved target: its shape, a client per database.
type restoreTarget struct {
	ep   *endpoint
	topo *topology
	rdb  int // oldest RDB version its masters read (0: unknown)
}

func (s *Redis) resolveTarget(ctx context.Context, req store.RestoreRequest) (*restoreTarget, error) {
	ep := s.ep
	if req.Target != "" {
		var err error
		if ep, err = parseEndpoint(req.Target, "", true); err != nil {
			return nil, fmt.Errorf("--target: %w", err)
		}
		if ep.password == "" {
			ep.password = os.Getenv(TargetPasswordEnv)
		}
	}
	topo, err := ep.discover(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore target: %w", err)
	}
	for _, m := range topo.masters {
		if m.Role != "master" {
			return nil, fmt.Errorf("restore target %s is a replica (role:%s), which is read-only: restore into its master", m.Addr, m.Role)
		}
	}
	if topo.cluster && topo.state != "ok" {
		return nil, fmt.Errorf("restore target cluster %s is not healthy (cluster_state:%s): fix it first (hint: redis-cli --cluster check %s)", ep, topo.state, topo.masters[0].Addr)
	}
	t := &restoreTarget{ep: ep, topo: topo}
	t.rdb, _ = topo.minRDB()
	return t, nil
}

// checkRDBVersion refuses a target too old for the backup's payloads
// before anything is written.
func checkRDBVersion(m string, need int, t *restoreTarget) error {
	have, node := t.topo.minRDB()
	if need == 0 || have == 0 || need <= have {
		return nil
	}
	return fmt.Errorf("backup %s holds RDB version %d values (written by Redis %s or later), but target %s runs Redis %s, which reads RDB versions up to %d: restore into Redis %s or later",
		m, need, rdb.ReleaseFor(need), node.Addr, node.RedisVersion, have, rdb.ReleaseFor(need))
}

func (s *Redis) planDatabases(req store.RestoreRequest, st Stats, t *restoreTarget) ([]plannedDB, error) {
	var all []plannedDB
	for _, a := range req.Manifest.Artifacts {
		if a.MediaType != MediaTypeRESP {
			continue
		}
		db, err := strconv.Atoi(a.Meta["database"])
		if err != nil {
			return nil, fmt.Errorf("backup %s: artifact %s has no database number", req.Manifest.ID, a.Name)
		}
		all = append(all, plannedDB{artifact: a.Name, src: db, dst: db, stats: st.db(db)})
	}
	var dbs []plannedDB
	for _, sel := range req.Select {
		n, err := strconv.Atoi(sel)
		i := slices.IndexFunc(all, func(p plannedDB) bool { return p.src == n })
		if err != nil || i < 0 {
			return nil, fmt.Errorf("backup %s has no database %q (it has %s)", req.Manifest.ID, sel, dbList(all))
		}
		dbs = append(dbs, all[i])
	}
	if len(req.Select) == 0 {
		dbs = all
	}
	switch {
	case t.ep.db >= 0 && len(dbs) > 1:
		return nil, fmt.Errorf("--target names database %d but the backup holds databases %s: pick one with --select, or leave the database out of the target URL", t.ep.db, dbList(dbs))
	case t.topo.cluster && len(dbs) > 1:
		return nil, fmt.Errorf("the target is a Redis Cluster, which has only database 0, but the backup holds databases %s: pick one with --select", dbList(dbs))
	}
	for i := range dbs {
		switch {
		case t.ep.db >= 0:
			dbs[i].dst = t.ep.db
		case t.topo.cluster:
			dbs[i].dst = 0
		}
	}
	return dbs, nil
}

func dbList(dbs []plannedDB) string {
	var s []string
	for _, d := range dbs {
		s = append(s, strconv.Itoa(d.src))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// dbClient is what restoring one database needs from go-redis: a plain
// client for a standalone server, a cluster client that routes by slot.
type dbClient interface {
	goredis.Cmdable
	Close() error
}

func (t *restoreTarget) client(db int) dbClient {
	if t.topo.cluster {
		return goredis.NewClusterClient(t.ep.clusterOptions())
	}
	return goredis.NewClient(t.ep.options(t.topo.masters[0].Addr, db))
}

// dbSize counts the keys of a database over every master.
func (t *restoreTarget) dbSize(ctx context.Context, db int) (int64, error) {
	var total int64
	for _, m := range t.topo.masters {
		c := goredis.NewClient(t.ep.options(m.Addr, db))
		n, err := c.DBSize(ctx).Result()
		c.Close()
		if err != nil {
			return 0, fmt.Errorf("DBSIZE on %s: %w", m.Addr, t.ep.scrub(err))
		}
		total += n
	}
	return total, nil
}

func (s *Redis) restoreRESP(ctx context.Context, req store.RestoreRequest, src Source, st Stats) (*store.RestoreResult, error) {
	t, err := s.resolveTarget(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := checkRDBVersion(req.Manifest.ID, src.RDBVersion, t); err != nil {
		return nil, err
	}
	dbs, err := s.planDatabases(req, st, t)
	if err != nil {
		return nil, err
	}
	// Check every target database before writing any, so a refusal
	// changes nothing.
	before := map[int]int64{}
	for _, p := range dbs {
		n, err := t.dbSize(ctx, p.dst)
		if err != nil {
			return nil, err
		}
		if n > 0 && !req.Force {
			return nil, fmt.Errorf("%w: database %d on %s already holds %d keys (hint: restore elsewhere with --target, or pass --force to add the backup's keys, replacing keys of the same name)",
				store.ErrTargetNotEmpty, p.dst, t.ep, n)
		}
		before[p.dst] = n
	}
	res := &store.RestoreResult{Target: t.ep.String()}
	for _, p := range dbs {
		start := time.Now()
		item := store.RestoredItem{Name: "db" + strconv.Itoa(p.src), Target: t.ep.withDB(p.dst, t.topo.cluster)}
		r, err := s.replay(ctx, req, t, p)
		if err == nil && req.Verify {
			item.Checked, err = r.verify(ctx, before[p.dst])
			item.Verified = err == nil
		}
		if r != nil {
			r.client.Close()
		}
		item.Duration = time.Since(start)
		res.Items = append(res.Items, item)
		if err != nil {
			return res, fmt.Errorf("database %d into %s: %w", p.src, item.Target, err)
		}
		req.Log.Info("restored database", "db", p.src, "target", item.Target, "keys", r.restored, "expired_skipped", r.expired,
			"duration", item.Duration.Round(time.Millisecond), "verified", item.Verified)
	}
	return res, nil
}

// Restore batches: a pipeline of at most batchCmds RESTOREs or
// batchBytes of payload, whichever comes first.
const (
	batchCmds  = 512
	batchBytes = 4 << 20
)

// batch holds copies of commands read from the artifact. Keys and
// payloads live in one arena, addressed by offsets because it may grow.
type batch struct {
	arena []byte
	cmds  []restoreCmd
}

type restoreCmd struct {
	key, payload [2]int // start, end in arena
	expireAt     int64
}

func (b *batch) add(key, payload []byte, expireAt int64) {
	k0 := len(b.arena)
	b.arena = append(b.arena, key...)
	p0 := len(b.arena)
	b.arena = append(b.arena, payload...)
	b.cmds = append(b.cmds, restoreCmd{key: [2]int{k0, p0}, payload: [2]int{p0, len(b.arena)}, expireAt: expireAt})
}

func (b *batch) full() bool { return len(b.cmds) >= batchCmds || len(b.arena) >= batchBytes }

// replayer restores one database and keeps what verification needs.
type replayer struct {
	s      *Redis
	t      *restoreTarget
	p      plannedDB
	client dbClient
	node   *Node // clock of the target

	seen     keySet
	keys     int64 // distinct keys in the artifact
	byType   map[string]int64
	restored int64   // distinct keys written
	expired  int64   // distinct keys skipped: expiry already passed
	expiries []int64 // expiry of every restored key that has one
	sample   sampler
	// reencoded counts sampled keys whose DUMP on the target differs from
	// the backup's payload yet holds the same value.
	reencoded int
}

// replay streams one artifact into the target: a reader parses commands
// into batches, req.Jobs workers send them as pipelines.
func (s *Redis) replay(ctx context.Context, req store.RestoreRequest, t *restoreTarget, p plannedDB) (*replayer, error) {
	// The caller closes r.client once it has verified.
	r := &replayer{s: s, t: t, p: p, node: t.topo.masters[0], byType: map[string]int64{}}
	r.client = t.client(p.dst)
	if p.stats != nil {
		r.sample.every = max(1, p.stats.Keys/sampleTarget)
	}
	rc, err := req.Source.OpenArtifact(ctx, p.artifact)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan *batch, max(req.Jobs, 1))
	for range max(req.Jobs, 1) {
		g.Go(func() error {
			for b := range batches {
				if err := r.exec(gctx, b); err != nil {
					return err
				}
			}
			return nil
		})
	}
	readErr := r.read(gctx, resp.NewReader(rc), batches)
	close(batches)
	err = g.Wait()
	if readErr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		err = readErr
	}
	if err != nil {
		return r, err
	}
	return r, nil
}

func (r *replayer) read(ctx context.Context, rd *resp.Reader, out chan<- *batch) error {
	b := &batch{}
	send := func() error {
		select {
		case out <- b:
			b = &batch{}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		args, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("artifact %s: %w", r.p.artifact, integrity(err))
		}
		switch {
		case bytes.EqualFold(args[0], []byte("SELECT")) && len(args) == 2:
			if n, err := strconv.Atoi(string(args[1])); err != nil || n != r.p.src {
				return fmt.Errorf("artifact %s: %w: selects database %q, the manifest says %d", r.p.artifact, envelope.ErrIntegrity, args[1], r.p.src)
			}
		case bytes.EqualFold(args[0], []byte("RESTORE")):
			cmd, err := parseRestore(args)
			if err != nil {
				return fmt.Errorf("artifact %s at byte %d: %w", r.p.artifact, rd.Offset(), err)
			}
			if r.t.rdb > 0 && cmd.payload.Version > r.t.rdb {
				return fmt.Errorf("key %q holds an RDB version %d value, newer than the target reads (%d)", clipKey(cmd.key), cmd.payload.Version, r.t.rdb)
			}
			h := hashKey(cmd.key)
			isNew := r.seen.add(h)
			if isNew {
				r.keys++
				r.byType[cmd.payload.TypeName()]++
			}
			if cmd.expireAt > 0 && cmd.expireAt <= r.node.nowMs() {
				if isNew {
					r.expired++
				}
				continue
			}
			if isNew {
				r.restored++
				if cmd.expireAt > 0 {
					r.expiries = append(r.expiries, cmd.expireAt)
				}
				r.sample.offer(h, cmd)
			}
			b.add(cmd.key, cmd.raw, cmd.expireAt)
			if b.full() {
				if err := send(); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("artifact %s: %w: unexpected command %q", r.p.artifact, envelope.ErrIntegrity, clipKey(args[0]))
		}
	}
	if len(b.cmds) > 0 {
		return send()
	}
	return nil
}

// restoreArgs is a parsed `RESTORE key expireAt payload REPLACE ABSTTL`.
type restoreArgs struct {
	key, raw []byte
	expireAt int64
	payload  rdb.Payload
}

func parseRestore(args [][]byte) (restoreArgs, error) {
	var c restoreArgs
	if len(args) != 6 || !bytes.EqualFold(args[4], []byte("REPLACE")) || !bytes.EqualFold(args[5], []byte("ABSTTL")) {
		return c, fmt.Errorf("%w: want RESTORE key ttl payload REPLACE ABSTTL, got %d arguments", envelope.ErrIntegrity, len(args))
	}
	var err error
	c.key, c.raw = args[1], args[3]
	if c.expireAt, err = strconv.ParseInt(string(args[2]), 10, 64); err != nil || c.expireAt < 0 {
		return c, fmt.Errorf("%w: bad expiry %q of key %q", envelope.ErrIntegrity, args[2], clipKey(c.key))
	}
	if c.payload, err = rdb.ParsePayload(c.raw, false); err != nil {
		return c, fmt.Errorf("key %q: %w", clipKey(c.key), integrity(err))
	}
	return c, nil
}

func (r *replayer) exec(ctx context.Context, b *batch) error {
	pipe := r.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(b.cmds))
	for i, c := range b.cmds {
		cmds[i] = pipe.Do(ctx, "RESTORE", b.arena[c.key[0]:c.key[1]], c.expireAt, b.arena[c.payload[0]:c.payload[1]], "REPLACE", "ABSTTL")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		for i, c := range cmds {
			if c.Err() != nil {
				key := b.arena[b.cmds[i].key[0]:b.cmds[i].key[1]]
				return restoreError(key, r.t.ep.scrub(c.Err()))
			}
		}
		return r.t.ep.scrub(err)
	}
	return nil
}

func restoreError(key []byte, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "payload version or checksum"):
		return fmt.Errorf("RESTORE %q: %w (hint: the target's Redis is older than the source's; restore into the same or a newer version)", clipKey(key), err)
	case strings.HasPrefix(msg, "OOM"):
		return fmt.Errorf("RESTORE %q: %w (hint: the target's maxmemory is too small for the backup)", clipKey(key), err)
	}
	return fmt.Errorf("RESTORE %q: %w", clipKey(key), err)
}

// clipKey keeps error messages short when keys are long or binary.
func clipKey(k []byte) string {
	if len(k) > 80 {
		return string(k[:80]) + "…"
	}
	return string(k)
}

// integrity marks damage found inside an artifact whose checksums held:
// the backup wrote something linkdr cannot read back.
func integrity(err error) error {
	if errors.Is(err, envelope.ErrIntegrity) {
		return err
	}
	return fmt.Errorf("%w: %w", envelope.ErrIntegrity, err)
}
