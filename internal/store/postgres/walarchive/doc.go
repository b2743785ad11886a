// Package walarchive is a store's PostgreSQL WAL archive inside a linkdr
// repository: wal/<store>/<timeline>/<file>.zst.age, each object sealed
// with the same envelope as backup artifacts (zstd inside age), plus a
// small plain JSON sidecar <file>.json holding its sums and positions.
//
// The sidecar is written after the data, the way a backup's manifest is:
// a file is archived only once its sidecar exists, so a wal-push killed
// half-way leaves nothing that counts, and PostgreSQL simply retries.
// The sidecar also lets a push compare content without the private key
// (same plaintext SHA-256: already archived; different: refuse), and lets
// gap checks, status and retention work from listings and small reads.
package walarchive
