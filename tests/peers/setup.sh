#!/bin/sh
# Installs the peer clients used by xo-core/tests/simulator_peers.rs:
#   - the official Python XenAPI module from PyPI, in .peers/venv (git-ignored);
#   - XO's xen-api client from npm, in tests/peers/node_modules (git-ignored).
# Then: cargo test -p xo-core --test simulator_peers -- --ignored
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
python3 -m venv "$root/.peers/venv"
"$root/.peers/venv/bin/pip" install --quiet "XenAPI==26.21.1"
cd "$root/tests/peers"
npm install --no-audit --no-fund
