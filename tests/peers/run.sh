#!/usr/bin/env bash
# Runs the peer-fidelity tests (after scripts/install-peers.sh): the Rust driver starts a
# simulator per test and runs the Python XenAPI and XO xen-api clients against it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export XO_PEER_PYTHON="${XO_PEER_PYTHON:-$PWD/.peers/venv/bin/python}"
cargo test -p xo-core --test simulator_peers -- --ignored
