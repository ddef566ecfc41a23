#!/usr/bin/env bash
# Runs every test of the workspace: Rust (unit, integration, freshness of generated code),
# then the peer-fidelity tests (official Python XenAPI, XO's xen-api JS client) against the
# embedded simulator. Installs what the peers need into project-local folders.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/install-system.sh

echo "== Rust tests"
cargo test --workspace --all-targets

if [ -d tests/peers ]; then
  echo "== Peer tools"
  scripts/install-peers.sh
  echo "== Peer-fidelity tests (Python XenAPI, XO xen-api)"
  cargo build --quiet --example simulator
  tests/peers/run.sh
fi
