#!/usr/bin/env bash
# S3 incremental backup benchmark: linkdr vs rclone on the same bucket in
# the same run, against the test environment's versitygw. Prints a table
# (objects/s and linkdr's time as a ratio of rclone's).
#   scripts/bench-s3.sh                       # 10000 objects
#   LINKDR_BENCH_S3_OBJECTS=50000 scripts/bench-s3.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if ! command -v rclone >/dev/null; then
  echo "installing rclone (the peer) with apt" >&2
  apt-get install -qq -y --no-install-recommends rclone >/dev/null || { apt-get update -qq && apt-get install -qq -y --no-install-recommends rclone >/dev/null; }
fi
scripts/testenv.sh up s3
go test -run '^$' -bench BenchmarkIncremental -benchtime 1x -timeout 60m ./bench/s3/
