#!/usr/bin/env bash
# The test command: installs what the tests need (tests/setup.sh), then runs every test (the
# clients on their default, the shared-memory ring), then the end-to-end tests again with every
# client on its socket (HINTSD_RING=0), then model-checks the ring with loom (a build of its
# own, in target/loom, since --cfg loom changes every crate's flags).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cargo test --workspace
HINTSD_RING=0 cargo test --test client_and_daemon --test hints --test hintsctl --test c_library \
  --test exim_backend --test exim_import --test bad_input
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release -p hints-proto --test loom_ring
