#!/usr/bin/env bash
# The test command: installs what the tests need (tests/setup.sh), then runs every test, then
# model-checks the shared-memory ring with loom (a build of its own, in target/loom, since
# --cfg loom changes every crate's flags).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cargo test --workspace
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release -p hints-proto --test loom_ring
