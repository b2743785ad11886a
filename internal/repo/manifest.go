package repo

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/linkapp/linkdr/internal/envelope"
)

// Manifest describes one complete backup. It holds no user data: it can be
// read without the key. Kind-specific facts are in Source and Stats, whose
// shape each store kind documents in docs/format.md.
type Manifest struct {
	Format  int       `json:"format"`
	ID      string    `json:"id"`
	Store   string    `json:"store"`
	Kind    string    `json:"kind"`
	Method  string    `json:"method"`
	Started time.Time `json:"started"`
	// Finished is when the last artifact was stored.
	Finished time.Time `json:"finished"`
	// ConsistentAt is the moment the data represents; RPO is measured from it.
	ConsistentAt time.Time `json:"consistent_at"`
	// Source: facts about the server backed up (versions, LSNs…), per kind.
	Source json.RawMessage `json:"source,omitempty"`
	// Stats: what integrity checks compare after a restore, per kind.
	Stats      json.RawMessage `json:"stats,omitempty"`
	Artifacts  []Artifact      `json:"artifacts"`
	Encryption Encryption      `json:"encryption"`
	// RetainUntil, when set and in the future, forbids deleting the backup.
	RetainUntil *time.Time `json:"retain_until,omitempty"`
	Tool        Tool       `json:"tool"`
}

// Encryption says how artifacts were sealed and for whom.
type Encryption struct {
	Scheme      string   `json:"scheme"`      // "age"
	Compression string   `json:"compression"` // "zstd"
	Recipients  []string `json:"recipients"`  // age public keys
}

// Artifact is one stored stream of a backup.
type Artifact struct {
	// Name is the artifact's logical name (e.g. "link_users.dump"); the
	// object is Name + ".zst.age" in the backup's directory.
	Name string `json:"name"`
	// MediaType says what the plaintext is, for by-hand restores.
	MediaType string `json:"media_type,omitempty"`
	// Meta is free-form per kind (e.g. the database name).
	Meta map[string]string `json:"meta,omitempty"`
	envelope.Sums
}

// StoredSize is the total stored size of the backup's artifacts.
func (m *Manifest) StoredSize() int64 {
	var n int64
	for _, a := range m.Artifacts {
		n += a.StoredSize
	}
	return n
}

// PlainSize is the total plaintext size of the backup's artifacts.
func (m *Manifest) PlainSize() int64 {
	var n int64
	for _, a := range m.Artifacts {
		n += a.PlainSize
	}
	return n
}

// Artifact finds an artifact by name.
func (m *Manifest) Artifact(name string) (*Artifact, error) {
	for i := range m.Artifacts {
		if m.Artifacts[i].Name == name {
			return &m.Artifacts[i], nil
		}
	}
	return nil, fmt.Errorf("backup %s has no artifact %q", m.ID, name)
}

// Key layout, in one place (docs/format.md mirrors it).

func backupsPrefix() string                { return "backups/" }
func storePrefix(store string) string      { return "backups/" + store + "/" }
func backupPrefix(store, id string) string { return storePrefix(store) + id + "/" }
func manifestKey(store, id string) string  { return backupPrefix(store, id) + "manifest.json" }
func artifactKey(store, id, name string) string {
	return backupPrefix(store, id) + name + ArtifactSuffix
}

// ArtifactSuffix marks a sealed artifact: zstd inside age.
const ArtifactSuffix = ".zst.age"
