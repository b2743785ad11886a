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
	Stats     json.RawMessage `json:"stats,omitempty"`
	Artifacts []Artifact      `json:"artifacts"`
	// Pool lists artifacts in the store's pool (pool/<store>/) that this
	// backup uses: incremental kinds share them between backups.
	Pool []Artifact `json:"pool,omitempty"`
	// Plain lists unencrypted artifacts (zstd only, <name>.zst) that hold
	// no user content, such as the fingerprints an incremental backup
	// compares without the private key.
	Plain      []Artifact `json:"plain,omitempty"`
	Encryption Encryption `json:"encryption"`
	// RetainUntil, when set and in the future, forbids deleting the backup.
	RetainUntil *time.Time `json:"retain_until,omitempty"`
	// ObjectLock is the S3 Object Lock mode every object of the backup was
	// written with (until RetainUntil); empty when none.
	ObjectLock string `json:"object_lock,omitempty"`
	Tool       Tool   `json:"tool"`
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

// StoredSize is the total stored size of the backup's artifacts,
// including the pool artifacts it uses.
func (m *Manifest) StoredSize() int64 {
	var n int64
	for _, a := range m.all() {
		n += a.StoredSize
	}
	return n
}

// PlainSize is the total plaintext size of the backup's artifacts,
// including the pool artifacts it uses.
func (m *Manifest) PlainSize() int64 {
	var n int64
	for _, a := range m.all() {
		n += a.PlainSize
	}
	return n
}

func (m *Manifest) all() []Artifact {
	out := make([]Artifact, 0, len(m.Artifacts)+len(m.Pool)+len(m.Plain))
	out = append(out, m.Artifacts...)
	out = append(out, m.Pool...)
	return append(out, m.Plain...)
}

// Artifact finds an encrypted artifact by name, in the backup's own
// directory or in the pool.
func (m *Manifest) Artifact(name string) (*Artifact, error) {
	for i := range m.Artifacts {
		if m.Artifacts[i].Name == name {
			return &m.Artifacts[i], nil
		}
	}
	for i := range m.Pool {
		if m.Pool[i].Name == name {
			return &m.Pool[i], nil
		}
	}
	return nil, fmt.Errorf("backup %s has no artifact %q", m.ID, name)
}

// PlainArtifact finds an unencrypted artifact by name.
func (m *Manifest) PlainArtifact(name string) (*Artifact, error) {
	for i := range m.Plain {
		if m.Plain[i].Name == name {
			return &m.Plain[i], nil
		}
	}
	return nil, fmt.Errorf("backup %s has no plain artifact %q", m.ID, name)
}

// InPool reports whether an artifact of the manifest lives in the pool.
func (m *Manifest) InPool(name string) bool {
	for _, a := range m.Pool {
		if a.Name == name {
			return true
		}
	}
	return false
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

// PlainSuffix marks an unencrypted artifact: zstd only.
const PlainSuffix = ".zst"

func poolPrefix(store string) string         { return "pool/" + store + "/" }
func poolKey(store, name string) string      { return poolPrefix(store) + name + ArtifactSuffix }
func plainKey(store, id, name string) string { return backupPrefix(store, id) + name + PlainSuffix }
