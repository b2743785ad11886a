// Package postgres is the PostgreSQL store kind.
//
// Method logical: one `pg_dump -Fc -Z0` per database, run in a snapshot
// that linkdr exports first so it knows the exact moment the dump
// represents (consistent_at). The dump streams through the envelope into
// the repository; on its way, pgarchive counts every table's rows and
// checksums them, so the manifest holds exact figures from the dump's own
// snapshot at no cost to the server. Restore pipes the artifact into
// pg_restore (or spools it for parallel jobs), then proves the result by
// recomputing the same figures from the restored tables.
//
// The pg_dump and pg_restore used match the server's major version: the
// plan's pg_bin_dir, else /usr/lib/postgresql/<major>/bin, else PATH.
package postgres
