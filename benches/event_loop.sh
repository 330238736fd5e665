#!/usr/bin/env bash
# What tokio costs hintsd's lanes: the same echo served by two servers shaped like hintsd's lanes
# (a thread pinned to each CPU, connections dealt round them, each read until `recv` finds
# nothing), one on hintsd's own lanes (a tokio current-thread runtime a thread, reading through
# hintsd's `ConnSocket`), one on a bare edge-triggered `epoll` loop a thread. The servers take
# turns, ROUNDS times, each running CLIENTS echo workers (client k pinned to the CPU of the
# thread its connection goes to, as hintsd's connections follow their clients) for SECONDS.
# Prints each turn's throughput, p50 and p99, so the two can be compared within a round.
#
#   bash benches/event_loop.sh [CLIENTS [DEPTH [ROUNDS [SECONDS]]]]
#
# CLIENTS 4, DEPTH 1, ROUNDS 3, SECONDS 3. Run it at 1 client for the round trip a lone client
# sees, and at 4 for the throughput of a loaded host. The difference is what an event loop of
# our own on the lanes could save at most (README, "Where hintsd falls short").
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-4} depth=${2:-1} rounds=${3:-3} seconds=${4:-3}
((clients >= 1 && depth >= 1 && rounds >= 1)) || { echo "CLIENTS, DEPTH and ROUNDS are at least 1" >&2; exit 2; }
source benches/scratch.sh
# The CPUs this script may use, in order: the servers pin their threads to these, in turn.
read -r -a cpus <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
((${#cpus[@]} > 0)) || { echo "could not read the CPUs this script may use (needs python3)" >&2; exit 1; }
turn() {
  local shape=$1
  rm -f "$dir/s.sock" "$dir"/w*.json
  "$bin/hints-bench" echo-server --shape "$shape" --socket "$dir/s.sock" &
  server_pid=$!
  for _ in $(seq 100); do [[ -S $dir/s.sock ]] && break; sleep 0.05; done
  [[ -S $dir/s.sock ]] || { echo "the $shape echo server did not listen" >&2; exit 1; }
  # Every worker is started before the start time, 50 ms apart.
  local start=$(($(date +%s%3N) + 300 + 50 * clients)) workers=() worker line
  for client in $(seq 0 $((clients - 1))); do
    taskset -c "${cpus[client % ${#cpus[@]}]}" "$bin/hints-bench" worker --contender echo --target "$dir/s.sock" \
      --seconds "$seconds" --depth "$depth" --start-at-ms "$start" >"$dir/w$client.json" &
    workers+=($!)
    # One at a time, so that client k is the server's connection k.
    sleep 0.05
  done
  for worker in "${workers[@]}"; do
    wait "$worker" || { echo "a worker against the $shape echo server failed" >&2; exit 1; }
  done
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  line=$("$bin/hints-bench" summary "$dir"/w*.json)
  echo "  $shape: $line"
}
echo "echo served on lanes (tokio) and on epoll loops: $clients clients, depth $depth, ${seconds} s a turn, $(nproc) CPUs"
for round in $(seq "$rounds"); do
  echo "round $round"
  if ((round % 2)); then turn lanes; turn epoll; else turn epoll; turn lanes; fi
done
