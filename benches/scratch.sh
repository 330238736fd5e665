# Sourced by benchmark scripts, from the repository's root: builds the release binaries (in
# $bin) and makes a scratch directory ($dir); at exit, stops the server the script started
# ($server_pid, if set) and removes the directory.
cargo build -q --release --bins
bin=target/release
dir=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
