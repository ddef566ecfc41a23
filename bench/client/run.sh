#!/usr/bin/env bash
# Client benchmark: this client vs the official Python XenAPI module vs XO's xen-api npm
# client, in one run against the embedded simulator. Installs the peers project-locally.
# Usage: bench/client/run.sh [VMS] [SMALL_CALLS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .peers/venv/bin/python ]; then
  python3 -m venv .peers/venv
fi
.peers/venv/bin/pip install --quiet --disable-pip-version-check XenAPI
(cd bench/client && npm install --silent --no-audit --no-fund)
cargo run --quiet --release --example client-bench -- "$@"
