#!/usr/bin/env bash
# HTTP load over the memcached tier: `fms serve --memcached ... --origin DIR` (the remote
# router) against `fms serve --manifest DIR/manifest.json` (the same trees mapped), on the
# 11-tree corpus, with wrk and scripts/http_load.lua (random ids and locales; single GETs,
# then 50-id batches). Two memcached servers run on loopback; the origin is pushed first.
# Servers and memcached share the first half of the CPUs, wrk the other half (PIN=0: no
# pinning). Prints one RESULT line per run, then each server's RSS.
#
# Environment: DIR (a corpus directory made by scripts/http_load.sh or `fms demo` +
# `http_bench prepare`; generated if missing), SECONDS_PER_RUN (10), ROUNDS (2), CONNS (32),
# MEMCACHED_MB (1024 per server).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DUR="${SECONDS_PER_RUN:-10}"
CONNS="${CONNS:-32}"
ROUNDS="${ROUNDS:-2}"
MB="${MEMCACHED_MB:-1024}"
DIR="${DIR:-target/httpbench}"
for bin in wrk memcached; do
    command -v "$bin" >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk memcached >/dev/null; }
done
NCPU=$(nproc)
SERVE=()
LOAD=()
THREADS=2
if [ "${PIN:-1}" = 1 ] && [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
    HALF=$((NCPU / 2))
    SERVE=(taskset -c "0-$((HALF - 1))")
    LOAD=(taskset -c "$HALF-$((NCPU - 1))")
    THREADS=$((NCPU - HALF))
fi

cargo build --release --bin fms --example http_bench
FMS=target/release/fms
if [ ! -f "$DIR/manifest-v1.json" ]; then
    mkdir -p "$DIR"
    "$FMS" demo --dir "$DIR" --scale 1 --locales 10 --seconds 1 --threads 2 > "$DIR/demo.log"
    target/release/examples/http_bench prepare "$DIR"
fi
cp "$DIR/manifest-v1.json" "$DIR/manifest.json"

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MC=()
for _ in 1 2; do
    port=$(free_port)
    "${SERVE[@]}" memcached -l 127.0.0.1 -p "$port" -m "$MB" -U 0 -u "$(id -un)" & PIDS+=($!)
    MC+=("127.0.0.1:$port")
done
SERVERS=$(IFS=,; echo "${MC[*]}")
sleep 0.5
echo "push: $( { /usr/bin/time -f '%e s' "$FMS" push "$DIR" --memcached "$SERVERS" 2>&1 | tail -3 | tr '\n' ' '; } )"

declare -A PORT PID
start() { # start NAME ARGS...
    local name=$1 port out
    shift
    port=$(free_port)
    "${SERVE[@]}" "$FMS" serve --addr "127.0.0.1:$port" "$@" > "$DIR/serve-$name.out" 2> "$DIR/serve-$name.err" &
    PID[$name]=$!
    PIDS+=("${PID[$name]}")
    PORT[$name]=$port
    for _ in $(seq 1 200); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "$name did not start: $(cat "$DIR/serve-$name.err")" >&2
    exit 1
}
start remote --memcached "$SERVERS" --origin "$DIR"
start mapped --manifest "$DIR/manifest.json"
export IDS="$DIR/ids.txt" LOCALES="$DIR/locales.txt"
for name in remote mapped; do # warm up
    MODE=get "${LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d3s -s scripts/http_load.lua "http://127.0.0.1:${PORT[$name]}" >/dev/null
done
for round in $(seq 1 "$ROUNDS"); do
    order="remote mapped"
    [ $((round % 2)) = 0 ] && order="mapped remote"
    for mode in get batch; do
        for name in $order; do
            out=$(MODE=$mode "${LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 10s \
                  -s scripts/http_load.lua "http://127.0.0.1:${PORT[$name]}" | grep '^RESULT')
            echo "round $round: $name $mode $out"
        done
    done
done
for name in remote mapped; do
    echo "$name: RSS $(awk '$1 == "VmRSS:" {print $2}' "/proc/${PID[$name]}/status") kB"
done
curl -s "http://127.0.0.1:${PORT[remote]}/metrics" | grep -E '^fms_remote_(memcached_hits|memcached_misses|cache_hits|origin_fetches|round_trips|ids)_total|^fms_remote_cache_bytes'
