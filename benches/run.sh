#!/usr/bin/env bash
# Reproduces the performance table in README.md: builds release binaries, runs hints-bench
# over every contender, and writes the table (markdown) and raw JSON to benches/results/.
# Extra arguments go to `hints-bench run` (e.g. --clients 1,2,4,8 --seconds 5).
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
