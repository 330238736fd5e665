#!/usr/bin/env bash
# Where one benchmark cell spends its time: runs hintsd and CLIENTS hints-bench workers (as
# benches/run.sh does, 4 s) and, over 2 s of the run, counts context switches and the system
# calls of the request path per operation (daemon and clients apart), then samples every CPU
# with perf and prints the 30 hottest symbols, each with its samples per 1000 operations.
#
#   bash benches/where_time_goes.sh [CONTENDER [CLIENTS [DEPTH [WORKLOAD]]]]
#
# CONTENDER is hintsd (the socket) or hintsd-ring (default); CLIENTS 4; DEPTH 1; WORKLOAD mix.
# HINTSD_CONFIG=FILE passes a configuration file to the daemon (connection_threads, say).
# Needs perf (Debian: linux-perf) and root, or kernel.perf_event_paranoid <= 0.
# Figures move between runs on a shared machine: run it a few times, compare within a run.
set -euo pipefail
cd "$(dirname "$0")/.."
contender=${1:-hintsd-ring} clients=${2:-4} depth=${3:-1} workload=${4:-mix}
cargo build -q --release --bins
bin=target/release
dir=$(mktemp -d)
daemon_pid=
cleanup() {
  [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
"$bin/hintsd" ${HINTSD_CONFIG:+--config "$HINTSD_CONFIG"} --socket "$dir/s.sock" --no-snapshot >"$dir/log" 2>&1 &
daemon_pid=$!
sleep 0.5
"$bin/hints-bench" worker --contender hintsd --target "$dir/s.sock" --fill
"$bin/hints-bench" worker --contender hintsd --target "$dir/s.sock" --check
start=$(($(date +%s%3N) + 300))
workers=()
# A file a worker: a worker prints its JSON and its newline in two writes, so workers sharing
# one file could put two reports on one line.
for index in $(seq "$clients"); do
  "$bin/hints-bench" worker --contender "$contender" --target "$dir/s.sock" --seconds 4 --depth "$depth" \
    --workload "$workload" --start-at-ms "$start" >"$dir/worker.$index.json" &
  workers+=($!)
done
sleep 0.8
# Counted, not sampled: `perf stat` on the daemon and on the workers side by side loses no event
# (a `perf record` of every system call dropped some at 200 000 operations a second, and took
# so long to write them that the profile after it missed the run).
events=context-switches,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_poll,syscalls:sys_enter_epoll_wait
perf stat -x, -e "$events" -p "$daemon_pid" -o "$dir/daemon.stat" -- sleep 1 >/dev/null 2>&1 &
daemon_stat=$!
perf stat -x, -e "$events" -p "$(IFS=,; echo "${workers[*]}")" -o "$dir/clients.stat" -- sleep 1 >/dev/null 2>&1 &
clients_stat=$!
wait "$daemon_stat" "$clients_stat"
perf record -q -a -g -F 2000 -o "$dir/profile.data" -- sleep 1 >/dev/null 2>&1
wait "${workers[@]}"
ops=$(python3 -c "import sys,json; print(sum(json.load(open(f))['ops'] for f in sys.argv[1:]))" "$dir"/worker.*.json)
per_second=$((ops / 4))
echo "$contender, $workload, $clients clients, depth $depth: $per_second ops/s"
echo
echo "Per operation (1 s of the run):"
for side in daemon clients; do
  awk -F, -v side="$side" -v ops="$per_second" '$1 ~ /^[0-9]+$/ { printf "  %-8s %-32s %.2f\n", side, $3, $1 / ops }' \
    "$dir/$side.stat"
done
echo
echo "Hottest symbols (perf samples per 1000 operations, 2 kHz on every CPU, over 1 s):"
perf report -i "$dir/profile.data" --no-children --sort comm,dso,symbol --stdio -g none 2>/dev/null |
  grep "%" | grep -v "^#" | head -30 |
  awk -v ops="$per_second" -v cpus="$(nproc)" '{ pct = $1; sub("%", "", pct);
    printf "  %6.2f  %s\n", pct / 100 * 2000 * cpus / ops * 1000, $0 }' | cut -c1-150
