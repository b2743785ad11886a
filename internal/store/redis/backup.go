package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/redis/rdb"
	"github.com/linkapp/linkdr/internal/store/redis/resp"
)

// Backup runs method resp or rdb.
func (s *Redis) Backup(ctx context.Context, req store.BackupRequest) (*store.BackupResult, error) {
	switch req.Method {
	case "resp":
		return s.backupRESP(ctx, req)
	case "rdb":
		return s.backupRDB(ctx, req)
	}
	return nil, fmt.Errorf("redis: method %q is not supported (supported: resp, rdb)", req.Method)
}

// Tuning of the resp scan. A SCAN batch is about scanCount keys; each
// master has fetchers batches of DUMP+PEXPIRETIME in flight while the next SCAN
// runs, and at most queued encoded batches wait for the artifact.
const (
	scanCount = 1000
	fetchers  = 2
	queued    = 8
)

func (s *Redis) backupRESP(ctx context.Context, req store.BackupRequest) (*store.BackupResult, error) {
	started := time.Now().UTC()
	topo, err := s.ep.discover(ctx)
	if err != nil {
		return nil, err
	}
	s.warnTopology(req, topo)
	dbs, err := s.resolveDatabases(ctx, topo)
	if err != nil {
		return nil, err
	}
	src := Source{Mode: mode(topo), URL: s.ep.String(), Nodes: topo.masters, Databases: dbs, ScanStarted: started}
	st := Stats{Counted: countedExact, ByType: map[string]int64{}}
	for _, db := range dbs {
		ds, ver, err := s.dumpDatabase(ctx, req, topo, db)
		if err != nil {
			return nil, fmt.Errorf("database %d: %w", db, err)
		}
		st.Databases = append(st.Databases, ds)
		st.Keys += ds.Keys
		for t, n := range ds.ByType {
			st.ByType[t] += n
		}
		src.RDBVersion = max(src.RDBVersion, ver)
		req.Log.Info("dumped database", "db", db, "keys", ds.Keys, "vanished", ds.Vanished)
	}
	src.ScanFinished = time.Now().UTC()
	// Keys are read one by one while the scan runs: the backup holds no
	// write made after the scan started that it cannot also have missed.
	return &store.BackupResult{ConsistentAt: started, Source: src, Stats: st}, nil
}

func (s *Redis) warnTopology(req store.BackupRequest, t *topology) {
	if t.cluster && t.state != "ok" {
		req.Log.Warn("cluster is not healthy: keys of unserved slots cannot be read", "cluster_state", t.state)
	}
	if len(t.migrating) > 0 {
		req.Log.Warn("slots are being migrated: keys moved during the scan may be missed or read twice", "slots", t.migrating)
	}
}

// resolveDatabases applies the plan's databases to the server: a cluster
// has only 0; a standalone server's default is every database with keys.
func (s *Redis) resolveDatabases(ctx context.Context, t *topology) ([]int, error) {
	if t.cluster {
		if len(s.databases) > 0 && (len(s.databases) > 1 || s.databases[0] != 0) {
			return nil, fmt.Errorf("%s is a Redis Cluster, which has only database 0, but the plan lists databases %v (hint: remove databases: from stores.%s)", s.ep, s.databases, s.name)
		}
		return []int{0}, nil
	}
	c := goredis.NewClient(s.ep.options(t.masters[0].Addr, 0))
	defer c.Close()
	if len(s.databases) > 0 {
		for _, db := range s.databases {
			if err := c.Do(ctx, "SELECT", db).Err(); err != nil {
				return nil, fmt.Errorf("database %d: %w (hint: fix stores.%s.databases; the server's databases setting bounds them)", db, err, s.name)
			}
		}
		return s.databases, nil
	}
	ks, err := keyspace(ctx, c)
	if err != nil {
		return nil, err
	}
	var dbs []int
	for db := range ks {
		dbs = append(dbs, db)
	}
	if len(dbs) == 0 {
		return []int{0}, nil // an empty server still gets a (restorable) artifact
	}
	slices.Sort(dbs)
	return dbs, nil
}

// dumper collects one database's keys from every master.
type dumper struct {
	s  *Redis
	db int

	mu   sync.Mutex
	st   *DBStats
	seen keySet
	ver  int // newest payload RDB version
}

// dumpDatabase writes database db of every master into one artifact.
func (s *Redis) dumpDatabase(ctx context.Context, req store.BackupRequest, t *topology, db int) (*DBStats, int, error) {
	name := fmt.Sprintf("db%d.resp", db)
	w, err := req.Sink.CreateArtifact(ctx, name, MediaTypeRESP, map[string]string{"database": strconv.Itoa(db)})
	if err != nil {
		return nil, 0, err
	}
	d := &dumper{s: s, db: db, st: &DBStats{DB: db, Artifact: name, ByType: map[string]int64{}}}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(wctx)
	out := make(chan []byte, queued)
	// One writer: the artifact sees whole batches, one at a time. A write
	// error stops the scanners and is the error reported.
	var werr error
	written := make(chan struct{})
	go func() {
		defer close(written)
		for b := range out {
			if werr == nil {
				if _, werr = w.Write(b); werr != nil {
					stop()
				}
			}
		}
	}()
	out <- resp.AppendCommand(nil, []byte("SELECT"), []byte(strconv.Itoa(db)))
	for _, m := range t.masters {
		g.Go(func() error { return d.scanNode(gctx, m, out) })
	}
	err = g.Wait()
	close(out)
	<-written
	if werr != nil {
		err = werr
	}
	if err != nil {
		w.Close()
		return nil, 0, err
	}
	if err := w.Close(); err != nil {
		return nil, 0, err
	}
	return d.st, d.ver, nil
}

// scanNode SCANs one master and sends its keys, as RESTORE commands, to out.
func (d *dumper) scanNode(ctx context.Context, m *Node, out chan<- []byte) error {
	c := goredis.NewClient(d.s.ep.options(m.Addr, d.db))
	defer c.Close()
	g, ctx := errgroup.WithContext(ctx)
	batches := make(chan []string, fetchers)
	g.Go(func() error {
		defer close(batches)
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, "", scanCount).Result()
			if err != nil {
				return fmt.Errorf("SCAN on %s: %w", m.Addr, d.s.ep.scrub(err))
			}
			if len(keys) > 0 {
				select {
				case batches <- keys:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	})
	for range fetchers {
		g.Go(func() error {
			for keys := range batches {
				b, err := d.fetch(ctx, c, m, keys)
				if err != nil {
					return err
				}
				select {
				case out <- b:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// fetch reads a batch of keys with PEXPIRETIME (PTTL before Redis 7.0)
// then DUMP each, pipelined, and encodes them. The expiry comes first so
// that it is never read after a value it may no longer belong to.
func (d *dumper) fetch(ctx context.Context, c *goredis.Client, m *Node, keys []string) ([]byte, error) {
	pipe := c.Pipeline()
	cmds := make([]*goredis.Cmd, 2*len(keys))
	expiry := m.expireTimeCmd()
	for i, k := range keys {
		cmds[2*i] = pipe.Do(ctx, expiry, k)
		cmds[2*i+1] = pipe.Do(ctx, "DUMP", k)
	}
	sent := time.Now()
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("DUMP on %s: %w", m.Addr, d.s.ep.scrub(err))
	}
	var local DBStats
	size := 0
	for i := range keys {
		if s, err := cmds[2*i+1].Text(); err == nil {
			size += len(s) + len(keys[i]) + 64
		}
	}
	buf := make([]byte, 0, size)
	hashes := make([]uint64, 0, len(keys))
	types := make([]string, 0, len(keys))
	ver := 0
	for i, k := range keys {
		v, err := cmds[2*i].Int64()
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", expiry, m.Addr, err)
		}
		expireAt, exists := m.expireAt(v, sent)
		payload, err := cmds[2*i+1].Text()
		if errors.Is(err, goredis.Nil) || !exists {
			local.Vanished++ // deleted or expired since SCAN listed it
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("DUMP on %s: %w", m.Addr, err)
		}
		p, err := rdb.ParsePayload(payload, false)
		if err != nil {
			return nil, fmt.Errorf("DUMP on %s returned %w", m.Addr, err)
		}
		ver = max(ver, p.Version)
		if expireAt > 0 {
			local.WithTTL++
		}
		buf = resp.AppendRestore(buf, k, expireAt, payload)
		hashes = append(hashes, hashKey(k))
		types = append(types, p.TypeName())
		local.PayloadBytes += int64(len(payload))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, h := range hashes {
		if !d.seen.add(h) {
			d.st.Repeated++
			continue
		}
		d.st.Keys++
		d.st.ByType[types[i]]++
	}
	d.st.WithTTL += local.WithTTL
	d.st.PayloadBytes += local.PayloadBytes
	d.st.Vanished += local.Vanished
	d.ver = max(d.ver, ver)
	return buf, nil
}
