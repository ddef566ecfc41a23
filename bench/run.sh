#!/bin/sh
# The codec benchmark, end to end: build (release), generate the fixtures, install XO's
# decoder from npm into bench/node_modules, run every contender on the same bytes, and write
# bench/out/results.md and results.json. Takes a few minutes on 2 cores.
#
#   bench/run.sh [--count 5000] [--seed 1]     (any report flags go in REPORT_ARGS)
set -eu
cd "$(dirname "$0")"

count=5000 seed=1
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        *) echo "usage: bench/run.sh [--count N] [--seed S]" >&2; exit 2 ;;
    esac
done

# xo-core's codecs are measured once they exist: into Value (feature `ours`) and into the
# generated records (feature `typed`). OURS=0 skips both.
features=""
if [ "${OURS:-1}" = 1 ] && grep -q "mod xmlrpc" ../xo-core/src/rpc/mod.rs \
    && grep -q "mod jsonrpc" ../xo-core/src/rpc/mod.rs; then
    features="--features ours"
    if [ -f ../xo-core/src/model/generated/vm.rs ]; then
        features="--features typed"
    fi
fi
echo "== build (release) $features" >&2
cargo build --release --quiet $features

echo "== fixtures" >&2
./target/release/gen --count "$count" --seed "$seed" --spec ../spec/xenapi.json --out out/fixtures >&2

echo "== peers: @vates/xml-rpc (npm), CPython $(python3 -c 'import platform; print(platform.python_version())')" >&2
npm ci --silent --no-audit --no-fund >&2

echo "== run" >&2
./target/release/report --fixtures out/fixtures --out out ${REPORT_ARGS:-}
