#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine (run as root): Debian's exim4 (the
# end-to-end tests drive the real Exim), the libraries the benchmark's contenders link
# (GDBM, Berkeley DB 5.3, SQLite), redis-server (a benchmark contender), and a `nobody` user
# (the credential test runs a client as nobody). Does nothing that is already done.
set -euo pipefail
packages=(exim4-daemon-light libgdbm-dev libdb5.3-dev libsqlite3-dev redis-server)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
id nobody >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin nobody
