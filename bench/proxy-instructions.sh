#!/usr/bin/env bash
# User-space instructions per request of ironmesh-proxy builds, counted by valgrind's
# callgrind: a figure that does not move with the machine's load, unlike requests/s or
# CPU time on a shared host (where round-to-round noise of ±10-20% hides a 5% change).
# Instructions are not time (cache misses, branch mispredictions and system calls are
# not in it), so speed claims still need bench/proxy-ab.sh; this tells whether a change
# removed work, and where the work is.
#
#   bench/proxy-instructions.sh /path/to/ironmesh-proxy-A [/path/to/ironmesh-proxy-B ...]
#
# Each candidate runs under `valgrind --tool=callgrind` as a router from the same static
# --config-file as bench/proxy-ab.sh (one listener, one STATIC cluster, to nginx serving
# 1 KiB), takes a 3 s `wrk -t1 -c4` warm-up, then its counters are zeroed and dumped
# around a 10 s run. Prints instructions per request per candidate and the ratio to the
# first, and keeps each dump (callgrind_annotate FILE shows where they go).
# Needs valgrind, nginx, wrk, curl. Ports 18080-18081 on 127.0.0.1.
set -euo pipefail
. "$(dirname "$0")/proxy-common.sh"
[ $# -ge 1 ] || { echo "usage: $0 PROXY [PROXY ...]" >&2; exit 2; }
for t in valgrind callgrind_control callgrind_annotate nginx wrk curl; do
    command -v "$t" >/dev/null || { echo "$t is needed" >&2; exit 1; }
done
W=$(mktemp -d /tmp/ironmesh-ir.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$W/html" "$W/nb/tmp"
head -c 1024 /dev/zero | tr '\0' x >"$W/html/1k.html"
nginx_conf "$W/nb" "server { listen 127.0.0.1:18081; location / { root $W/html; } }" >"$W/nb/nginx.conf"
router_config "$W/cfg.json"
nginx -p "$W/nb" -e "$W/nb/error.log" -c "$W/nb/nginx.conf" &
PIDS+=($!)
sleep 0.5
FIRST=""
printf '| candidate | requests | instructions / request | ratio to the first |\n|---|---:|---:|---:|\n'
i=0
for b in "$@"; do
    i=$((i + 1))
    # --trace-children: the proxy re-executes itself once to set mimalloc's options.
    POD_NAME=gw-0 POD_NAMESPACE=bench INSTANCE_IP=127.0.0.30 valgrind --tool=callgrind \
        --trace-children=yes --callgrind-out-file="$W/cg.$i.%p" "$b" proxy router \
        --concurrency 2 --config-file "$W/cfg.json" --admin-addr 127.0.0.1:0 \
        --status-port 0 --readiness-port 0 --prometheus-port 0 >"$W/proxy.$i.log" 2>&1 &
    P=$!
    for _ in $(seq 120); do
        curl -s -o /dev/null "http://127.0.0.1:18080/1k.html" && break
        sleep 0.5
    done
    wrk -t1 -c4 -d3s "http://127.0.0.1:18080/1k.html" >/dev/null
    callgrind_control -z "$P" >/dev/null 2>&1
    wrk -t1 -c4 -d10s "http://127.0.0.1:18080/1k.html" >"$W/wrk.$i.txt"
    callgrind_control -d "$P" >/dev/null 2>&1
    kill -TERM "$P" 2>/dev/null || true
    wait "$P" 2>/dev/null || true
    N=$(awk '/requests in/ {print $1}' "$W/wrk.$i.txt")
    DUMP=$(ls "$W"/cg."$i".*.1)
    IR=$(callgrind_annotate "$DUMP" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    PER=$((IR / N))
    FIRST=${FIRST:-$PER}
    RATIO=$(awk -v a="$PER" -v b="$FIRST" 'BEGIN { printf "%.3f", a / b }')
    printf '| %s | %s | %s | %s× |\n' "$b" "$N" "$PER" "$RATIO"
done
echo
echo "callgrind dumps kept in $W (callgrind_annotate $W/cg.N.PID.1)"
