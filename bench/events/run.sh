#!/usr/bin/env bash
# Events benchmark: xo-core watcher + cache vs XO's xen-api (Node) on one simulator.
#   bench/events/run.sh [VMS] [extra events-bench args…]
set -euo pipefail
cd "$(dirname "$0")/../.."
VMS=${1:-3000}
shift || true
(cd bench/events && npm ci --no-audit --no-fund >/dev/null)
[ -n "${NO_BUILD:-}" ] || cargo build --release --example simulator --example events-bench
SIM_OUT=$(mktemp)
mkfifo "$SIM_OUT.in"
target/release/examples/simulator --vms "$VMS" <"$SIM_OUT.in" >"$SIM_OUT" 2>/dev/null &
SIM=$!
exec 3>"$SIM_OUT.in" # keep the simulator's stdin open
trap 'kill $SIM 2>/dev/null; rm -f "$SIM_OUT" "$SIM_OUT.in"' EXIT
for _ in $(seq 1 600); do grep -q '^credentials:' "$SIM_OUT" && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$SIM_OUT")
read -r _ USER PASSWORD < <(grep '^credentials:' "$SIM_OUT")
target/release/examples/events-bench "$URL" "$USER" "$PASSWORD" --node bench/events/xo-cache.mjs "$@"
