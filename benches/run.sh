#!/usr/bin/env bash
# Reproduces the performance table in README.md: builds release binaries, runs hints-bench over
# the full matrix, and writes the table (markdown) and raw JSON to benches/results/.
#
# The matrix is hints-bench's default: hintsd (socket), hintsd-ring, hintsd-pool, the echo floor, Exim's locked-file
# cycle with GDBM and with Berkeley DB 5.3 on disk (/var/tmp) and on tmpfs (/dev/shm), SQLite
# (WAL), LMDB and Redis; workloads mix (uniform and zipfian keys), ratelimit and seen; 1, 2, 4
# and 8 client processes; pipelines of 1 and 16 (hintsd and echo). In each cell the contenders
# take turns, 1 s each, three rounds, and each is shown by its median round (the echo runs
# beside every workload): about 17 minutes on 2 cores. The report ends with the targets hintsd
# is held to, met or short. Contenders whose library or server is missing are reported as
# skipped; on Debian
#   apt-get install -y libgdbm-dev libdb5.3-dev libsqlite3-dev redis-server
# brings them all (the first three are needed to build).
#
# Extra arguments go to `hints-bench run` and replace a default, e.g. --clients 1,4,
# --contenders hintsd,redis, --seconds 2, --rounds 5, --disk-dir /var/spool/exim4/db-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
mkdir -p benches/results
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out="benches/results/$stamp"
{
  echo "Command: benches/run.sh $*"
  echo "Machine: $(nproc) CPUs, $(uname -srm)"
  echo
  ./target/release/hints-bench run --json "$out.json" "$@"
  echo
  echo "Memory and snapshots (one database):"
  echo
  ./target/release/hints-bench memory --json "$out-memory.json"
} | tee "$out.md"
echo "wrote $out.md, $out.json and $out-memory.json"
