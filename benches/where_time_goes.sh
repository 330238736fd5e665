#!/usr/bin/env bash
# Where one benchmark cell spends its time: runs hintsd (or the echo server) and CLIENTS
# hints-bench workers (as benches/run.sh does, for 12 s), samples every CPU with perf for 1 s of
# the run and prints the 30 hottest symbols, each with its samples per 1000 operations, and the
# CPU time a request costs on each side, in the kernel and in user space; then counts context
# switches and the system calls of the request path for 1 s (server and clients apart), as
# counts a second and per operation (at the run's average rate).
#
#   bash benches/where_time_goes.sh [CONTENDER [CLIENTS [DEPTH [WORKLOAD]]]]
#
# CONTENDER is hintsd (the socket), hintsd-ring (default) or echo (the floor: the bare
# Unix-socket echo, whose server takes the daemon's place; WORKLOAD is then ignored); CLIENTS 4;
# DEPTH 1; WORKLOAD mix. Run it for hintsd and for echo in turn to see where hintsd's request
# costs more than a round trip with no work.
# HINTSD_CONFIG=FILE passes a configuration file to the daemon (connection_threads, say).
# Needs perf (Debian: linux-perf) and root, or kernel.perf_event_paranoid <= 0.
# Figures move between runs on a shared machine: run it a few times, compare within a run.
set -euo pipefail
cd "$(dirname "$0")/.."
contender=${1:-hintsd-ring} clients=${2:-4} depth=${3:-1} workload=${4:-mix}
source benches/scratch.sh
if [[ $contender == echo ]]; then
  "$bin/hints-bench" echo-server --socket "$dir/s.sock" >"$dir/log" 2>&1 &
else
  "$bin/hintsd" ${HINTSD_CONFIG:+--config "$HINTSD_CONFIG"} --socket "$dir/s.sock" --no-snapshot >"$dir/log" 2>&1 &
fi
server_pid=$!
sleep 0.5
if [[ $contender != echo ]]; then
  "$bin/hints-bench" worker --contender hintsd --target "$dir/s.sock" --fill
  "$bin/hints-bench" worker --contender hintsd --target "$dir/s.sock" --check
fi
start=$(($(date +%s%3N) + 300))
# Long enough for the counting below: attaching to the echo server took perf 7 s at times (its
# system calls traced at half a million a second).
seconds=12
workers=()
# A file a worker: a worker prints its JSON and its newline in two writes, so workers sharing
# one file could put two reports on one line.
for index in $(seq "$clients"); do
  "$bin/hints-bench" worker --contender "$contender" --target "$dir/s.sock" --seconds "$seconds" --depth "$depth" \
    --workload "$workload" --start-at-ms "$start" >"$dir/worker.$index.json" &
  workers+=($!)
done
sleep 1
# cpu-clock, so that every CPU is sampled 2 000 times a second, idle or not: the figures below
# turn samples into time on that count.
perf record -q -a -g -e cpu-clock -F 2000 -o "$dir/profile.data" -- sleep 1 >"$dir/record.log" 2>&1 ||
  { cat "$dir/record.log" >&2; echo "perf record failed" >&2; exit 1; }
# Counted, not sampled: `perf stat` on the server and on the workers side by side loses no event
# (a `perf record` of every system call dropped some at 200 000 operations a second).
events=context-switches,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_poll,syscalls:sys_enter_epoll_wait
# perf stat -p fails now and then ("Problems finding threads of monitor") when a thread of the
# process ends as perf lists them; a second try then succeeds.
count() {
  local side=$1 pids=$2
  for _ in 1 2 3; do
    perf stat -x, -e "$events" -p "$pids" -o "$dir/$side.stat" -- sleep 1 >"$dir/$side.log" 2>&1 && return 0
  done
  cat "$dir/$side.log" >&2
  return 1
}
count server "$server_pid" &
server_stat=$!
count clients "$(IFS=,; echo "${workers[*]}")" &
clients_stat=$!
for stat in "$server_stat" "$clients_stat"; do
  wait "$stat" || { echo "perf stat failed" >&2; exit 1; }
done
# Everything above must have happened while the workers ran, or the figures mean nothing.
for worker in "${workers[@]}"; do
  kill -0 "$worker" 2>/dev/null || { echo "the workers ended before perf was done; nothing to report" >&2; exit 1; }
done
wait "${workers[@]}"
ops=$(python3 -c "import sys,json; print(sum(json.load(open(f))['ops'] for f in sys.argv[1:]))" "$dir"/worker.*.json)
per_second=$((ops / seconds))
# The echo runs no workload: its cell is named without one.
cell=$contender
[[ $contender == echo ]] || cell+=", $workload"
echo "$cell, $clients clients, depth $depth: $per_second ops/s"
echo
echo "Counted over 1 s: a second, and per operation at the run's average rate (the counting"
echo "slows the run a little, so per-operation figures read a few percent low):"
for side in server clients; do
  awk -F, -v side="$side" -v ops="$per_second" \
    '$1 ~ /^[0-9]+$/ { printf "  %-8s %-32s %9d  %.2f\n", side, $3, $1, $1 / ops }' "$dir/$side.stat"
done
echo
echo "Hottest symbols (perf samples per 1000 operations, 2 kHz on every CPU, over 1 s):"
perf report -i "$dir/profile.data" --no-children --sort comm,dso,symbol --stdio -g none 2>/dev/null |
  grep "%" | grep -v "^#" | head -30 |
  awk -v ops="$per_second" -v cpus="$(nproc)" '{ pct = $1; sub("%", "", pct);
    printf "  %6.2f  %s\n", pct / 100 * 2000 * cpus / ops * 1000, $0 }' | cut -c1-150 || true  # head's early close
echo
echo "CPU a request, by side, from the same profile (µs; the server is hintsd or the echo server):"
perf report -i "$dir/profile.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null |
  grep "%" | grep -v "^#" |
  awk -v ops="$per_second" -v cpus="$(nproc)" '{
    pct = $1; sub("%", "", pct); comm = $2
    side = comm == "hints-bench" ? "clients" : comm ~ /^(hintsd|actix|tokio|echo-server)/ ? "server" : comm == "swapper" ? "idle" : "other"
    mode = $NF ~ /^\[/ && $NF !~ /^\[(vdso|vsyscall|unknown)\]$/ ? "kernel" : "user"
    us[side " " mode] += pct / 100 * cpus * 1e6 / ops
  }
  END { for (key in us) printf "  %-16s %6.2f\n", key, us[key] }' | sort
