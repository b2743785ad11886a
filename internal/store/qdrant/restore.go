package qdrant

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
)

// RecoveryTimeout bounds the wait for a restored collection to turn green
// with all its points.
var RecoveryTimeout = 30 * time.Minute

func decodeManifest(m *repo.Manifest) (Source, Stats, error) {
	var src Source
	var st Stats
	if m.Kind != "qdrant" {
		return src, st, fmt.Errorf("backup %s is of kind %s, not qdrant", m.ID, m.Kind)
	}
	if err := json.Unmarshal(m.Source, &src); err != nil {
		return src, st, fmt.Errorf("backup %s: manifest source: %w", m.ID, err)
	}
	if err := json.Unmarshal(m.Stats, &st); err != nil {
		return src, st, fmt.Errorf("backup %s: manifest stats: %w", m.ID, err)
	}
	return src, st, nil
}

// Restore uploads each collection's snapshot(s) to the target (the
// store's own nodes by default, or --target: one node), under its own
// name or the one Rename gives, then waits until the collection is green
// and holds as many points as it did at backup time.
func (q *Qdrant) Restore(ctx context.Context, req store.RestoreRequest) (*store.RestoreResult, error) {
	_, st, err := decodeManifest(req.Manifest)
	if err != nil {
		return nil, err
	}
	targets, err := q.nodeClients(req.Target)
	if err != nil {
		return nil, fmt.Errorf("--target: %w", err)
	}
	res := &store.RestoreResult{Target: targets[0].URL()}
	var todo []CollectionStats
	for _, c := range st.Collections {
		if len(req.Select) == 0 || contains(req.Select, c.Name) {
			todo = append(todo, c)
		}
	}
	for _, s := range req.Select {
		if !hasCollection(st.Collections, s) {
			return nil, fmt.Errorf("backup %s has no collection %q (it has: %s)", req.Manifest.ID, s, collectionNames(st.Collections))
		}
	}
	// Check every target name first: refuse before changing anything.
	for _, c := range todo {
		name := targetName(req.Rename, c.Name)
		if len(c.Snapshots) != len(targets) {
			return nil, fmt.Errorf("collection %s was backed up as %d node snapshot(s) but the target has %d node(s) (hint: restore a distributed backup into a deployment of the same shape, with its nodes listed in the plan; see docs/qdrant.md)",
				c.Name, len(c.Snapshots), len(targets))
		}
		info, err := targets[0].Collection(ctx, name)
		switch {
		case err == nil && !req.Force:
			pts := int64(0)
			if info.PointsCount != nil {
				pts = *info.PointsCount
			}
			return nil, fmt.Errorf("%w: collection %q already exists on %s with %d points (hint: restore under another name with --rename %s=NEW, or pass --force to replace it)",
				store.ErrTargetNotEmpty, name, targets[0].URL(), pts, c.Name)
		case err != nil && !IsNotFound(err):
			return nil, err
		}
	}
	for _, c := range todo {
		name := targetName(req.Rename, c.Name)
		start := time.Now()
		for i, s := range c.Snapshots {
			if err := q.upload(ctx, req, targets[i], name, s); err != nil {
				return res, err
			}
		}
		item := store.RestoredItem{Name: c.Name, Target: targets[0].URL() + "/collections/" + name}
		checked, err := waitRestored(ctx, targets[0], name, c, req.Verify)
		item.Duration = time.Since(start)
		if err != nil {
			res.Items = append(res.Items, item)
			return res, err
		}
		item.Verified, item.Checked = req.Verify, checked
		res.Items = append(res.Items, item)
	}
	return res, nil
}

func (q *Qdrant) upload(ctx context.Context, req store.RestoreRequest, n *Client, name string, s SnapshotStats) error {
	a, err := req.Manifest.Artifact(s.Artifact)
	if err != nil {
		return err
	}
	rc, err := req.Source.OpenArtifact(ctx, s.Artifact)
	if err != nil {
		return err
	}
	defer rc.Close()
	// The artifact's plaintext is the snapshot file, so its SHA-256 is
	// the checksum Qdrant verifies before recovering.
	if err := n.UploadSnapshot(ctx, name, s.Name, rc, a.PlainSHA256); err != nil {
		return fmt.Errorf("restore %s into %s on %s: %w", s.Artifact, name, n.URL(), err)
	}
	return nil
}

// waitRestored polls until the collection is green with the backup's
// exact point count; with verify it also compares the config params.
func waitRestored(ctx context.Context, n *Client, name string, c CollectionStats, verify bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, RecoveryTimeout)
	defer cancel()
	wait := 50 * time.Millisecond
	var last string
	for {
		info, err := n.Collection(ctx, name)
		if err == nil && info.Status == "green" {
			var count int64
			if count, err = n.Count(ctx, name); err == nil {
				if count == c.Points {
					if !verify {
						return "", nil
					}
					return verifyConfig(name, c, info)
				}
				last = fmt.Sprintf("has %d points, the backup has %d", count, c.Points)
			}
		} else if err == nil {
			last = "status " + info.Status
		}
		if err != nil {
			last = err.Error()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if ctx.Err() == context.DeadlineExceeded {
				return "", fmt.Errorf("%w: collection %s on %s not green with all points after %s: %s", store.ErrMismatch, name, n.URL(), RecoveryTimeout, last)
			}
			return "", ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func verifyConfig(name string, c CollectionStats, info *CollectionInfo) (string, error) {
	var want, got struct {
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal(c.Config, &want) != nil || json.Unmarshal(info.Config, &got) != nil || !sameJSON(want.Params, got.Params) {
		return "", fmt.Errorf("%w: collection %s: config params differ from the backup's (backup %s, restored %s)", store.ErrMismatch, name, want.Params, got.Params)
	}
	return fmt.Sprintf("%d points, status green, config params match", c.Points), nil
}

// VerifyArtifact checks that a snapshot is a complete tar archive with a
// collection config in it, as Qdrant will need on upload.
func (q *Qdrant) VerifyArtifact(ctx context.Context, m *repo.Manifest, a *repo.Artifact, r io.Reader) error {
	if a.MediaType != MediaTypeSnapshot {
		return nil
	}
	tr := tar.NewReader(r)
	config := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("snapshot %s is not a valid tar: %w", a.Name, err)
		}
		if strings.TrimPrefix(h.Name, "./") == "config.json" {
			config = true
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return fmt.Errorf("snapshot %s: %w", a.Name, err)
		}
	}
	if !config {
		return fmt.Errorf("snapshot %s has no config.json: not a collection snapshot", a.Name)
	}
	return nil
}

func targetName(rename map[string]string, name string) string {
	if n, ok := rename[name]; ok && n != "" {
		return n
	}
	return name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasCollection(cs []CollectionStats, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}

func collectionNames(cs []CollectionStats) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return strings.Join(out, ", ")
}
