#!/usr/bin/env bash
# PostgreSQL physical backup and point-in-time restore: linkdr against
# pgBackRest (zstd, process-max 2) on the same pgbench database, in the same
# run. Figures go to stdout and bench/out/pitr/results.json; bench/README.md
# keeps the latest measured numbers.
#   BENCH_SCALE   pgbench scale (default 150, about 2.3 GB; created once, kept)
#   BENCH_ROUNDS  rounds per comparison (default 3)
#   BENCH_PARTS   comparisons to run (default backup,restore,walpush)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
go build -o bin/linkdr ./cmd/linkdr
scripts/testenv.sh up tools >/dev/null
set -a; source .testenv/env; set +a
go run ./bench/pitr -linkdr bin/linkdr -pg-bin "${LINKDR_TEST_PG_BINDIR:-/usr/lib/postgresql/15/bin}" \
  -pgbackrest "${LINKDR_TEST_PGBACKREST_BIN:-/usr/bin/pgbackrest}" \
  -scale "${BENCH_SCALE:-150}" -rounds "${BENCH_ROUNDS:-3}" -wal-segments "${BENCH_WAL_SEGMENTS:-32}" -parts "${BENCH_PARTS:-backup,restore,walpush}"
