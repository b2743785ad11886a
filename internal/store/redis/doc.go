// Package redis is the Redis store kind, for a standalone server or a
// Redis Cluster.
//
// Method resp: SCAN every master (a cluster's masters are found from the
// cluster itself), PEXPIRETIME and DUMP every key, pipelined, and write each key
// as `RESTORE key <absolute expiry ms> <payload> REPLACE ABSTTL` in RESP —
// one artifact per database, each starting with SELECT. The artifact is
// what `redis-cli --pipe` sends, so it restores by hand; linkdr replays it
// pipelined into a standalone server or a cluster of any shape (go-redis
// routes every key by its slot), skipping keys whose expiry has passed.
// The manifest counts keys per type and per database and records the RDB
// version of the payloads: a target too old to read them is refused before
// anything is written. A resp backup is not a point-in-time snapshot: each
// key is read atomically, but the scan takes time.
//
// Method rdb: a point-in-time snapshot per master fetched over the
// replication protocol, exactly as `redis-cli --rdb` does, and restored as
// dump.rdb into a directory for a cold start.
//
// Nothing is buffered whole: keys stream from SCAN batches into the
// artifact and back out of it in bounded batches. Memory grows only with a
// set of 64-bit key hashes (SCAN may return a key twice) and with the
// largest single value, which DUMP and RESTORE handle in one piece.
package redis
