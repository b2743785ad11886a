// Package s3 benchmarks linkdr's incremental S3 bucket backups against
// rclone (sync to a local directory with --checksum) on the same bucket,
// in the same run, on the test environment's versitygw. Run it with
// scripts/bench-s3.sh; bench/s3/README.md has the latest figures.
package s3
