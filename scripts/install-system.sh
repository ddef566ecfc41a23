#!/usr/bin/env bash
# System packages the tests need beyond Rust itself: a C compiler (bundled SQLite), Python with
# venv (the XenAPI peer) and Node with npm (XO's xen-api peer). Installs only what is missing,
# with apt-get when the machine has it; elsewhere it names what to install and fails.
set -euo pipefail

need=()
command -v cc >/dev/null || need+=(build-essential)
if ! command -v python3 >/dev/null; then
  need+=(python3 python3-venv)
elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  need+=(python3-venv)
fi
command -v npm >/dev/null || need+=(nodejs npm)

[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "missing system packages: ${need[*]} (install them, then re-run)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "== installing system packages: ${need[*]}"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
