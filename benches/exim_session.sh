#!/usr/bin/env bash
# One `exim4 -bh` SMTP session of RCPTS recipients (default 500), each checked by a ratelimit
# ACL condition, three ways: Exim's own hints DB on disk, the same on tmpfs (the ramdisk hack),
# and through ${readsocket} to hintsd. Prints a markdown table of the median session time over
# RUNS runs (default 5) and the time per RCPT. Needs Debian's exim4 (exim4-daemon-light) and a
# release build of hintsd (built here). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
rcpts=${RCPTS:-500}
runs=${RUNS:-5}
exim_user=Debian-exim
hintsd=${HINTSD:-target/release/hintsd}
[ -x "$hintsd" ] || cargo build --release --bin hintsd >&2

disk=$(mktemp -d /var/tmp/hints-exim-disk.XXXXXX)
ram=$(mktemp -d /dev/shm/hints-exim-ram.XXXXXX)
work=$(mktemp -d /tmp/hints-exim-session.XXXXXX)
chmod 755 "$work"
cleanup() {
  [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  rm -rf "$disk" "$ram" "$work"
}
trap cleanup EXIT

printf 'allow_uids = ["%s"]\nsocket_group = "%s"\n' "$exim_user" "$exim_user" > "$work/hintsd.toml"
"$hintsd" --config "$work/hintsd.toml" --socket "$work/run/hintsd.sock" --no-snapshot 2>"$work/hintsd.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$work/run/hintsd-text.sock" ] && break; sleep 0.05; done

{
  printf 'EHLO client.test\r\nMAIL FROM:<sender@example.net>\r\n'
  for n in $(seq "$rcpts"); do printf 'RCPT TO:<rcpt%s@example.org>\r\n' "$n"; done
  printf 'QUIT\r\n'
} > "$work/session.smtp"

# A configuration whose RCPT ACL runs CONDITION, with its spool in SPOOL.
write_conf() { # name spool condition
  chmod 777 "$2"
  cat > "$work/$1.conf" <<CONF
primary_hostname = relay.test
spool_directory = $2
log_file_path = $2/%slog
acl_smtp_rcpt = acl_rcpt
begin acl
acl_rcpt:
  defer $3
  accept
begin routers
begin transports
CONF
}
limit=$((rcpts * 10))
write_conf disk "$disk" "ratelimit = $limit / 1h / strict / per_rcpt"
write_conf tmpfs "$ram" "ratelimit = $limit / 1h / strict / per_rcpt"
write_conf hintsd "$work" "condition = \${if match{\${readsocket{$work/run/hintsd-text.sock}{ratelimit $limit / 1h / strict / per_rcpt / \$sender_host_address}{2s}{}{under}}}{^over}}"

median_secs() { # conf
  local times=()
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N)
    exim4 -C "$work/$1.conf" -bh 192.0.2.1 < "$work/session.smtp" > "$work/$1.out" 2>&1
    end=$(date +%s%N)
    grep -c '^250 Accepted' "$work/$1.out" | grep -qx "$rcpts" || { echo "$1: not every RCPT was accepted" >&2; tail "$work/$1.out" >&2; exit 1; }
    times+=($(( end - start )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v n="$runs" 'NR == int((n + 1) / 2) { printf "%.4f", $1 / 1e9 }'
}

echo "One exim4 -bh session of $rcpts RCPTs, each with a strict per_rcpt ratelimit; median of $runs runs; $(nproc) CPUs"
echo
echo "| hints | session s | µs per RCPT | vs hintsd |"
echo "|---|---:|---:|---:|"
declare -A secs
for variant in disk tmpfs hintsd; do secs[$variant]=$(median_secs "$variant"); done
for variant in disk tmpfs hintsd; do
  case $variant in
    disk) label="Exim's DB file on disk" ;;
    tmpfs) label="Exim's DB file on tmpfs" ;;
    hintsd) label='${readsocket} to hintsd' ;;
  esac
  awk -v s="${secs[$variant]}" -v h="${secs[hintsd]}" -v r="$rcpts" -v l="$label" \
    'BEGIN { printf "| %s | %.3f | %.0f | %.2fx |\n", l, s, s * 1e6 / r, s / h }'
done
