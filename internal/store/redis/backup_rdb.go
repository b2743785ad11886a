package redis

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/redis/rdb"
)

// backupRDB fetches one snapshot per master. Each is consistent in
// itself; a cluster's masters fork one after the other, so together they
// are as consistent as the masters' snapshots are close in time.
func (s *Redis) backupRDB(ctx context.Context, req store.BackupRequest) (*store.BackupResult, error) {
	topo, err := s.ep.discover(ctx)
	if err != nil {
		return nil, err
	}
	s.warnTopology(req, topo)
	if len(s.databases) > 0 {
		req.Log.Info("method rdb snapshots every database; databases: applies to method resp only")
	}
	src := Source{Mode: mode(topo), URL: s.ep.String(), Nodes: topo.masters}
	st := Stats{Counted: countedInfoKS}
	perDB := map[int]int64{}
	var consistent time.Time
	for _, m := range topo.masters {
		name := "dump.rdb"
		if topo.cluster {
			name = "node-" + m.ID[:min(12, len(m.ID))] + ".rdb"
		}
		f, snap, err := s.snapshotNode(ctx, req, m, name, perDB)
		if err != nil {
			return nil, fmt.Errorf("snapshot of %s: %w", m.Addr, err)
		}
		at := snap.SyncSent
		// ctime is when the master began writing the snapshot, on its own
		// clock and in whole seconds; it is earlier than SYNC when the
		// master joined us to a disk snapshot already under way.
		if c := f.Created(); !c.IsZero() && c.Add(-m.clockOffset).Before(at) {
			at = c.Add(-m.clockOffset)
		}
		at = at.UTC()
		m.Artifact, m.SnapshotAt, m.Framing = name, &at, snap.Framing
		src.RDBVersion = max(src.RDBVersion, f.Version)
		if consistent.IsZero() || at.Before(consistent) {
			consistent = at
		}
		req.Log.Info("snapshot stored", "node", m.Addr, "bytes", snap.Size, "framing", snap.Framing, "rdb_version", f.Version)
	}
	for db, n := range perDB {
		src.Databases = append(src.Databases, db)
		st.Keys += n
	}
	slices.Sort(src.Databases)
	for _, db := range src.Databases {
		st.Databases = append(st.Databases, &DBStats{DB: db, Keys: perDB[db]})
	}
	return &store.BackupResult{ConsistentAt: consistent, Source: src, Stats: st}, nil
}

// snapshotNode streams one master's RDB into an artifact, checking its
// header and checksum on the way: a damaged transfer fails the backup.
func (s *Redis) snapshotNode(ctx context.Context, req store.BackupRequest, m *Node, name string, perDB map[int]int64) (*rdb.File, *snapshot, error) {
	c := goredis.NewClient(s.ep.options(m.Addr, 0))
	ks, err := keyspace(ctx, c)
	c.Close()
	if err != nil {
		return nil, nil, s.ep.scrub(err)
	}
	m.Keys = map[string]int64{}
	for db, n := range ks {
		m.Keys["db"+strconv.Itoa(db)] = n
		perDB[db] += n
	}
	meta := map[string]string{"node": m.Addr}
	if m.ID != "" {
		meta["node_id"], meta["slots"] = m.ID, m.Slots
	}
	w, err := req.Sink.CreateArtifact(ctx, name, MediaTypeRDB, meta)
	if err != nil {
		return nil, nil, err
	}
	chk := &rdb.Checker{}
	snap, err := s.ep.fetchRDB(ctx, m.Addr, io.MultiWriter(w, chk))
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	f, err := chk.Result()
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("the snapshot received is not a valid RDB file: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, nil, err
	}
	return f, snap, nil
}
