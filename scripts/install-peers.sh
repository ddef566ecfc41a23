#!/usr/bin/env bash
# Installs the peer clients used by the fidelity tests and benchmarks, project-locally:
# a Python venv in .peers/venv (XenAPI, pytest) and node_modules in tests/peers.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .peers/venv/bin/python ]; then
  python3 -m venv .peers/venv
fi
.peers/venv/bin/pip install --quiet --disable-pip-version-check -r tests/peers/requirements.txt
if [ -f tests/peers/package.json ]; then
  (cd tests/peers && npm install --silent --no-audit --no-fund)
fi
