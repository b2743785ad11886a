#!/usr/bin/env bash
# Redis benchmark: linkdr's resp backup and restore of 1M keys (default)
# against redis-cli --rdb and redis-cli --pipe, on the same data, in the
# same run. Starts its own redis-servers; needs redis-server, redis-cli,
# age and zstd (scripts/testenv.sh up redis tools installs them).
#   scripts/bench-redis.sh                 # 1M keys, best of 2 runs
#   scripts/bench-redis.sh -keys 200000 -runs 3 -jobs 2
# Results: a markdown table on stdout, JSON in bench/redis/latest.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
go build -o bin/linkdr ./cmd/linkdr
go build -o bin/redis-bench ./bench/redis
exec bin/redis-bench -linkdr bin/linkdr -json bench/redis/latest.json "$@"
