#!/usr/bin/env bash
# make bench: linkdr against peer tools on the same data, in the same run.
# Figures go to stdout and bench/out/*/results.json; bench/README.md keeps
# the latest measured numbers. Each part can be run alone:
#   scripts/bench.sh logical          PostgreSQL logical backup/restore vs pg_dump/pg_restore
# Other parts (pitr, redis, s3) run when their scripts exist.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(logical pitr redis s3)

go build -o bin/linkdr ./cmd/linkdr
scripts/testenv.sh up pg tools >/dev/null
set -a; source .testenv/env; set +a
export PATH="$root/bin:$PATH"

for part in "${parts[@]}"; do
  case $part in
    logical)
      echo "== PostgreSQL logical (about 800 MB of users and messages; first run creates it)"
      go run ./bench/logical -pg "${LINKDR_TEST_PG_URL%%\?*}" -linkdr bin/linkdr -pg-bin "$LINKDR_TEST_PG_BINDIR" -rounds "${BENCH_ROUNDS:-3}" ${BENCH_ARGS:-}
      ;;
    *)
      if [[ -x scripts/bench-$part.sh ]]; then
        echo "== $part"
        "scripts/bench-$part.sh"
      fi
      ;;
  esac
done
