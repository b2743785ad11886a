package qdrant

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/store"
)

// Backup runs method snapshot: for each collection, on each node, create
// a snapshot, stream it into an artifact checking its SHA-256 against the
// server's, and delete it from the server.
func (q *Qdrant) Backup(ctx context.Context, req store.BackupRequest) (*store.BackupResult, error) {
	if req.Method != "snapshot" {
		return nil, fmt.Errorf("qdrant: unknown method %q", req.Method)
	}
	log := req.Log
	if log == nil {
		log = q.log
	}
	main, err := NewClient(q.url, q.apiKey)
	if err != nil {
		return nil, err
	}
	ver, err := main.Version(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := main.Cluster(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := q.nodeClients("")
	if err != nil {
		return nil, err
	}
	src := Source{URL: main.URL(), Version: ver.Version, Distributed: cs.Status == "enabled"}
	if src.Distributed {
		// A collection snapshot holds only the shards of the node that
		// took it: every peer must be asked, or shards are silently lost.
		if len(nodes) < len(cs.Peers) {
			return nil, fmt.Errorf("qdrant at %s is a cluster of %d peers but the plan names %d node(s) (hint: list every peer's REST URL in stores.%s.nodes; each node's shards are snapshotted separately)",
				main.URL(), len(cs.Peers), len(nodes), q.name)
		}
		for _, n := range nodes {
			src.Nodes = append(src.Nodes, n.URL())
		}
	}
	names := q.collections
	if len(names) == 0 {
		if names, err = main.Collections(ctx); err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("qdrant at %s has no collections: nothing to back up", main.URL())
		}
	}
	names = append([]string(nil), names...)
	sort.Strings(names)
	var consistent time.Time
	st := Stats{}
	for _, c := range names {
		info, err := main.Collection(ctx, c)
		if err != nil {
			if IsNotFound(err) {
				return nil, fmt.Errorf("%w (hint: fix stores.%s.collections in the plan)", err, q.name)
			}
			return nil, err
		}
		count, err := main.Count(ctx, c)
		if err != nil {
			return nil, err
		}
		cst := CollectionStats{Name: c, Points: count, Status: info.Status, Config: info.Config}
		for i, n := range nodes {
			idx := -1
			if src.Distributed {
				idx = i
			}
			started := time.Now().UTC()
			snap, err := q.snapshot(ctx, req.Sink, n, c, artifactName(c, idx), log)
			if err != nil {
				return nil, err
			}
			if consistent.IsZero() {
				consistent = started
			}
			if src.Distributed {
				cc, err := n.CollectionCluster(ctx, c)
				if err != nil {
					return nil, err
				}
				snap.PeerID, snap.LocalShards = cc.PeerID, cc.LocalShards
			}
			cst.Snapshots = append(cst.Snapshots, *snap)
		}
		st.Collections = append(st.Collections, cst)
		log.Info("collection backed up", "collection", c, "points", count, "snapshots", len(cst.Snapshots))
	}
	return &store.BackupResult{ConsistentAt: consistent, Source: src, Stats: st}, nil
}

// snapshot takes one node's snapshot of a collection into an artifact.
// The server-side snapshot is deleted whatever happens.
func (q *Qdrant) snapshot(ctx context.Context, sink store.Sink, n *Client, collection, artifact string, log interface{ Warn(string, ...any) }) (*SnapshotStats, error) {
	desc, err := n.CreateSnapshot(ctx, collection)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s on %s: %w", collection, n.URL(), err)
	}
	defer func() {
		// Its own deadline: after Ctrl-C the snapshot must still go, or it
		// fills the server's disk.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.DeleteSnapshot(dctx, collection, desc.Name); err != nil {
			log.Warn("could not delete the snapshot from the server; delete it by hand", "collection", collection, "snapshot", desc.Name, "node", n.URL(), "err", err)
		}
	}()
	body, err := n.DownloadSnapshot(ctx, collection, desc.Name)
	if err != nil {
		return nil, fmt.Errorf("download snapshot %s of %s from %s: %w", desc.Name, collection, n.URL(), err)
	}
	defer body.Close()
	w, err := sink.CreateArtifact(ctx, artifact, MediaTypeSnapshot, map[string]string{"collection": collection, "node": n.URL(), "snapshot": desc.Name})
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(w, h), body)
	if err == nil {
		err = checkSnapshot(desc, size, hex.EncodeToString(h.Sum(nil)))
	}
	if err != nil {
		abort(w)
		return nil, fmt.Errorf("snapshot %s of %s from %s: %w", desc.Name, collection, n.URL(), err)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return &SnapshotStats{Artifact: artifact, Node: n.URL(), Name: desc.Name, Size: size, Checksum: sum, Created: desc.CreationTime}, nil
}

// checkSnapshot compares what was downloaded with what the server said.
// Servers before checksums existed report none; size still counts.
func checkSnapshot(desc *SnapshotDescription, size int64, sum string) error {
	if size != desc.Size {
		return fmt.Errorf("%w: downloaded %d bytes, the server reported %d", ErrChecksumMismatch, size, desc.Size)
	}
	if desc.Checksum != "" && !strings.EqualFold(desc.Checksum, sum) {
		return fmt.Errorf("%w: downloaded sha256 %s, the server reported %s", ErrChecksumMismatch, sum, desc.Checksum)
	}
	return nil
}

// abort discards a half-written artifact when the writer can (the repo's
// artifact writers can); the failed backup is removed by its caller anyway.
func abort(w io.WriteCloser) {
	if a, ok := w.(interface{ Abort() }); ok {
		a.Abort()
		return
	}
	w.Close()
}
