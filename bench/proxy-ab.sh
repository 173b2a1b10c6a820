#!/usr/bin/env bash
# A/B throughput of ironmesh-proxy builds against each other and nginx, interleaved so
# that the machine's drift hits every candidate alike. Used for the per-change figures in
# docs/benchmarks.md ("What changed in session 3"); bench/proxy.sh is the benchmark of
# record.
#
#   bench/proxy-ab.sh ROUNDS nginx /path/to/ironmesh-proxy-A /path/to/ironmesh-proxy-B
#
# Each candidate gets a fresh process and a 5 s `wrk -t1 -c16` run per round against a
# 1 KiB file served by nginx (1 worker); the proxy runs as a router from a static
# --config-file (one listener, one STATIC cluster). Prints requests/s and the candidate's
# CPU microseconds per request (user / user+system, from /proc over the wrk run; for
# nginx its master and worker) per run, and the averages per candidate. User time per
# request is the steadier figure when the machine's speed drifts. Also printed per run:
# context switches per request (voluntary / involuntary, all threads, from
# /proc/PID/task/TID/status), the machine's idle share over the run (idle + iowait of
# all CPUs, from /proc/stat), and with SYSCALLS=1 system calls per request (`perf stat
# -e raw_syscalls:sys_enter` over the wrk run; needs perf), and wrk's p50 / p99
# latency. With HOGS=N, N CPU-bound loops (`sh -c 'while :; do :; done'`, each bounded
# by `timeout`) run beside every wrk run: a neighbour that takes whole time slices.
# With PEER=1 the backend answers as a server-side sidecar would, with Istio's
# `x-envoy-peer-metadata` (a 784-byte value) and `-id` headers, and the proxy's listener
# has the `istio.metadata_exchange` filter: the proxy reads the destination's identity
# from them and drops them (the client-side sidecar's outbound path). With RETRY=1 the
# route has Istio's default retry policy (every route discovery generates has one).
# Needs nginx and wrk.
# Ports 18080-18082 on 127.0.0.1.
set -euo pipefail
. "$(dirname "$0")/proxy-common.sh"
ROUNDS=${1:?rounds}
shift
W=$(mktemp -d /tmp/ironmesh-ab.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}" ${M:-}; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/html" "$W/nb/tmp" "$W/np/tmp"
head -c 1024 /dev/zero | tr '\0' x >"$W/html/1k.html"
PEER_HEADERS=""
if [ "${PEER:-0}" = 1 ]; then
    # A protobuf Struct of a sidecar's node metadata (labels, name, namespace, owner...).
    PEER_HEADERS="add_header x-envoy-peer-metadata ChsKDkFQUF9DT05UQUlORVJTEgkaB2JhY2tlbmQKGgoKQ0xVU1RFUl9JRBIMGgpLdWJlcm5ldGVzCh0KDElOU1RBTkNFX0lQUxINGgsxMC4yNDQuMC4xMgofChFJTlRFUkNFUFRJT05fTU9ERRIKGghSRURJUkVDVAoZCg1JU1RJT19WRVJTSU9OEggaBjEuMjQuMAqyAQoGTEFCRUxTEqcBKqQBChAKA2FwcBIJGgdiYWNrZW5kCg8KB3ZlcnNpb24SBBoCdjEKJAoZc2VjdXJpdHkuaXN0aW8uaW8vdGxzTW9kZRIHGgVpc3RpbwosCh9zZXJ2aWNlLmlzdGlvLmlvL2Nhbm9uaWNhbC1uYW1lEgkaB2JhY2tlbmQKKwojc2VydmljZS5pc3Rpby5pby9jYW5vbmljYWwtcmV2aXNpb24SBBoCdjEKGgoHTUVTSF9JRBIPGg1jbHVzdGVyLmxvY2FsCiQKBE5BTUUSHBoaYmFja2VuZC12MS02ZDhmOWM3YjUteDJrNHEKFAoJTkFNRVNQQUNFEgcaBWJlbmNoCkwKBU9XTkVSEkMaQWt1YmVybmV0ZXM6Ly9hcGlzL2FwcHMvdjEvbmFtZXNwYWNlcy9iZW5jaC9kZXBsb3ltZW50cy9iYWNrZW5kLXYxChcKEVBMQVRGT1JNX01FVEFEQVRBEgIqAAoiCg9TRVJWSUNFX0FDQ09VTlQSDxoNYmVuY2gtYmFja2VuZAodCg1XT1JLTE9BRF9OQU1FEgwaCmJhY2tlbmQtdjE=;
    add_header x-envoy-peer-metadata-id sidecar~10.244.0.12~backend-v1-6d8f9c7b5-x2k4q.bench~bench.svc.cluster.local;"
fi
nginx_conf "$W/nb" "server { listen 127.0.0.1:18081; location / { root $W/html; $PEER_HEADERS } }" >"$W/nb/nginx.conf"
nginx_conf "$W/np" "upstream backend { server 127.0.0.1:18081; keepalive 32; keepalive_requests 1000000; }
  server { listen 127.0.0.1:18082; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" >"$W/np/nginx.conf"
router_config "$W/cfg.json"
if [ "${PEER:-0}" = 1 ]; then
    sed -i 's|"httpFilters":\[|"httpFilters":[{"name":"istio.metadata_exchange"},|' "$W/cfg.json"
    grep -q istio.metadata_exchange "$W/cfg.json"
fi
if [ "${RETRY:-0}" = 1 ]; then
    sed -i 's/"route":{"cluster":"outbound|80||backend.bench.internal"}/"route":{"cluster":"outbound|80||backend.bench.internal","retryPolicy":{"retryOn":"connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes","numRetries":2,"retriableStatusCodes":[503],"retryHostPredicate":[{"name":"envoy.retry_host_predicates.previous_hosts"}],"hostSelectionRetryMaxAttempts":"5"}}/' "$W/cfg.json"
    grep -q retryPolicy "$W/cfg.json"
fi
nginx -p "$W/nb" -e "$W/nb/error.log" -c "$W/nb/nginx.conf" &
PIDS+=($!)
sleep 0.5
RESULTS=()
HZ=$(getconf CLK_TCK)
# User and system ticks of every thread of the given processes (fields 14 and 15 of
# /proc/PID/task/TID/stat, counted after the command name, which may hold spaces).
cpu_ticks() {
    local p
    for p in "$@"; do cat /proc/"$p"/task/*/stat 2>/dev/null; done |
        sed 's/.*) //' | awk '{ u += $12; s += $13 } END { print u + 0, s + 0 }'
}
# Idle (idle + iowait) and total ticks of the whole machine: a machine that sits idle
# during a closed-loop run is waiting on wake-ups, not short of CPU.
machine_idle() {
    awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}
# Voluntary and involuntary context switches of every thread of the given processes.
switches() {
    local p
    for p in "$@"; do cat /proc/"$p"/task/*/status 2>/dev/null; done |
        awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 }
            END { print v + 0, n + 0 }'
}
for r in $(seq "$ROUNDS"); do
    for b in "$@"; do
        if [ "$b" = nginx ]; then
            nginx -p "$W/np" -e "$W/np/error.log" -c "$W/np/nginx.conf" &
            M=$! PORT=18082
        else
            POD_NAME=gw-0 POD_NAMESPACE=bench INSTANCE_IP=127.0.0.30 "$b" proxy router \
                --concurrency 2 --config-file "$W/cfg.json" --admin-addr 127.0.0.1:0 \
                --status-port 0 --readiness-port 0 --prometheus-port 0 >"$W/proxy.log" 2>&1 &
            M=$! PORT=18080
        fi
        sleep 1
        PROCS="$M $(pgrep -P "$M" | tr '\n' ' ' || true)"
        read -r U0 S0 < <(cpu_ticks $PROCS)
        read -r V0 N0 < <(switches $PROCS)
        read -r I0 T0 < <(machine_idle)
        if [ "${SYSCALLS:-0}" = 1 ]; then
            perf stat -x, -e raw_syscalls:sys_enter -p "$(echo $PROCS | tr ' ' ,)" \
                -o "$W/perf.txt" -- sleep 5 &
            PERF=$!
        fi
        HOG_PIDS=()
        for _ in $(seq "${HOGS:-0}"); do
            timeout 6 sh -c 'while :; do :; done' &
            HOG_PIDS+=($!)
        done
        wrk -t1 -c16 -d5s --latency "http://127.0.0.1:$PORT/1k.html" >"$W/wrk.txt"
        for h in "${HOG_PIDS[@]}"; do kill "$h" 2>/dev/null || true; done
        RPS=$(awk '/Requests\/sec/ {print $2}' "$W/wrk.txt")
        LAT=$(awk '$1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2} END {print p50 " / " p99}' "$W/wrk.txt")
        read -r U1 S1 < <(cpu_ticks $PROCS)
        read -r V1 N1 < <(switches $PROCS)
        read -r I1 T1 < <(machine_idle)
        IDLE=$(awk -v i=$((I1 - I0)) -v t=$((T1 - T0)) 'BEGIN { if (t == 0) t = 1; printf "%.0f%%", 100 * i / t }')
        SC=""
        if [ "${SYSCALLS:-0}" = 1 ]; then
            wait "$PERF" || true
            SC=$(awk -F, -v r="${RPS:-0}" '/raw_syscalls/ { if (r > 0) printf "  %.2f syscalls/req", $1 / r / 5 }' "$W/perf.txt")
        fi
        kill -TERM "$M"
        wait "$M" 2>/dev/null || true
        # ticks (1/HZ s) per request over the 5 s run, in microseconds.
        US=$(awk -v u=$((U1 - U0)) -v s=$((S1 - S0)) -v r="${RPS:-0}" -v hz="$HZ" \
            'BEGIN { n = r * 5; if (n == 0) n = 1; printf "%.1f %.1f", u * 1e6 / hz / n, (u + s) * 1e6 / hz / n }')
        CS=$(awk -v v=$((V1 - V0)) -v n=$((N1 - N0)) -v r="${RPS:-0}" \
            'BEGIN { q = r * 5; if (q == 0) q = 1; printf "%.2f / %.2f", v / q, n / q }')
        echo "round $r  $b  ${RPS:-0} req/s  ${US% *} / ${US#* } us/req  switches ${CS% / *} / ${CS#* / } per req  p50 / p99 $LAT  idle $IDLE$SC"
        RESULTS+=("$b ${RPS:-0} $US")
    done
done
printf '%s\n' "${RESULTS[@]}" | awk '{s[$1]+=$2; u[$1]+=$3; t[$1]+=$4; n[$1]++} END {for (k in s) printf "average  %s  %.0f req/s  %.1f / %.1f us/req\n", k, s[k]/n[k], u[k]/n[k], t[k]/n[k]}'
