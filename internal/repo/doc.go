// Package repo is the repository: where backups live, in the open format
// documented in docs/format.md. It owns the layout of keys, the manifests,
// the catalog (listing backups by reading manifests), writer leases, and
// reading artifacts back with their integrity checked.
//
// The repository is the source of truth: no local state is needed to list,
// verify or restore. Writes are crash-safe: artifacts first, the manifest
// last, so a backup without a manifest does not exist. Storage goes through
// gocloud.dev/blob (file://, s3://, mem://).
//
// This package knows nothing of store kinds; kind-specific facts travel in
// the manifest as opaque JSON (Source, Stats) owned by the kind packages.
package repo
