#!/usr/bin/env bash
# Instructions per request, daemon and client apart, counted by callgrind: a measure of what a
# request costs that does not move with the machine's load, as throughput on a shared VM does.
# Use it to compare two builds of the request path (run it on each; differences of 1-2 % are
# real).
#
#   bash benches/instructions.sh [WORKLOAD [DEPTH [CONTENDER]]]
#
# WORKLOAD mix (default), ratelimit or seen; DEPTH the pipeline depth (16); CONTENDER
# hintsd-ring (default) or hintsd (the socket). The daemon runs with one lane that never
# spins, so that no instruction is spent waiting; one hints-bench worker runs for 4 s (under
# valgrind, some 10 000-80 000 requests). Only the run is counted: the fill, the start-up and
# the worker's own set-up are not. Needs valgrind (Debian: valgrind). Prints the figures and
# keeps the callgrind files for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:-mix} depth=${2:-16} contender=${3:-hintsd-ring}
cargo build -q --release --bins
bin=target/release
dir=$(mktemp -d)
daemon_pid=
cleanup() { [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null; true; }
trap cleanup EXIT
printf 'connection_threads = 1\nspin_micros = 0\n' >"$dir/hintsd.toml"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/daemon.callgrind" \
  "$bin/hintsd" --config "$dir/hintsd.toml" --socket "$dir/s.sock" --no-snapshot >"$dir/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [[ -S $dir/s.sock ]] && break; sleep 0.1; done
"$bin/hints-bench" worker --contender hintsd --target "$dir/s.sock" --fill --workload "$workload"
start=$(($(date +%s%3N) + 4000))
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/client.callgrind" \
  "$bin/hints-bench" worker --contender "$contender" --target "$dir/s.sock" --seconds 4 --depth "$depth" \
  --workload "$workload" --start-at-ms "$start" >"$dir/worker.json" 2>"$dir/client.log" &
client_pid=$!
# Both start counting half a second before the worker's first request (valgrind takes about
# a second to start it).
sleep 3.5
callgrind_control -i on "$daemon_pid" >/dev/null
callgrind_control -i on "$client_pid" >/dev/null
wait "$client_pid"
callgrind_control -i off "$daemon_pid" >/dev/null
kill -INT "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=
requests=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['ops'])" "$dir/worker.json")
daemon=$(awk '/^totals:/ { print $2; exit }' "$dir/daemon.callgrind")
client=$(awk '/^totals:/ { print $2; exit }' "$dir/client.callgrind")
echo "$contender, $workload, depth $depth: $requests requests"
echo "  daemon: $((daemon / requests)) instructions a request"
echo "  client: $((client / requests)) instructions a request (hints-bench's worker: the client library and the workload's own making of requests)"
echo "  callgrind files: $dir/daemon.callgrind, $dir/client.callgrind"
