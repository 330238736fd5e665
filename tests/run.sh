#!/usr/bin/env bash
# The test command: installs what the tests need (tests/setup.sh), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cargo test --workspace
