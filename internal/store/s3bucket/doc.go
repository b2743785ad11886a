// Package s3bucket is the s3 store kind: incremental backups of an S3
// bucket (or a prefix of one) into a linkdr repository, restores of any
// backup into the same or another bucket, and verification that a replica
// bucket (cross-region replication) holds what the source holds.
//
// Method objects copies only objects whose key, ETag or size changed since
// the previous backup. Copied objects go into tar packs in the
// repository's pool (pool/<store>/), shared by every later backup that
// still contains them; each backup lists every object it contains in an
// encrypted index, and in a plain catalog of key fingerprints that the
// next backup compares against without the private key. docs/format.md
// is the contract.
package s3bucket
