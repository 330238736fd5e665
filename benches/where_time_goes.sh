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
for _ in $(seq "$clients"); do
  "$bin/hints-bench" worker --contender "$contender" --target "$dir/s.sock" --seconds 4 --depth "$depth" \
    --workload "$workload" --start-at-ms "$start" >>"$dir/workers.json" &
  workers+=($!)
done
sleep 0.8
events=context-switches,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_poll,syscalls:sys_enter_epoll_wait
perf record -q -a -c 1 -e "$events" -o "$dir/counts.data" -- sleep 1 >/dev/null 2>&1
perf record -q -a -g -F 2000 -o "$dir/profile.data" -- sleep 1 >/dev/null 2>&1
wait "${workers[@]}"
ops=$(python3 -c "import sys,json; print(sum(json.loads(l)['ops'] for l in open(sys.argv[1]) if l.strip()))" "$dir/workers.json")
per_second=$((ops / 4))
echo "$contender, $workload, $clients clients, depth $depth: $per_second ops/s"
echo
echo "Per operation (1 s of the run):"
perf script -i "$dir/counts.data" -F comm,event 2>/dev/null | awk -v ops="$per_second" '
  { side = ($1 ~ /^(hintsd|actix|tokio)/) ? "daemon" : "clients"; n[side " " $2]++ }
  END { for (k in n) printf "  %-45s %.2f\n", k, n[k] / ops }' | sort
echo
echo "Hottest symbols (perf samples per 1000 operations, 2 kHz on every CPU, over 1 s):"
perf report -i "$dir/profile.data" --no-children --sort comm,dso,symbol --stdio -g none 2>/dev/null |
  grep "%" | grep -v "^#" | head -30 |
  awk -v ops="$per_second" -v cpus="$(nproc)" '{ pct = $1; sub("%", "", pct);
    printf "  %6.2f  %s\n", pct / 100 * 2000 * cpus / ops * 1000, $0 }' | cut -c1-150
