#!/usr/bin/env bash
# HTTP load benchmark: fms (fms::http::router over a Store) against the same routes over
# HashMap<String, serde_json::Value>, on the 11-tree corpus (en + 10 locale overlays), with
# wrk. For each server: single-record GETs and 50-id batches, steady and with a content-update
# swap (en -> en-v2, a reload through POST /admin/reload) in the middle of the run; then the
# server's RSS (VmRSS now, VmHWM the peak). Prints one table row per run.
#
# Environment: SECONDS_PER_RUN (12), CONNS (32), THREADS (2), SCALE (1), DIR (a temp dir,
# kept if given), PORT_FMS (18181), PORT_PEER (18182), SERVERS ("fms peer").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DUR="${SECONDS_PER_RUN:-12}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
SCALE="${SCALE:-1}"
SERVERS="${SERVERS:-fms peer}"
PORT_FMS="${PORT_FMS:-18181}"
PORT_PEER="${PORT_PEER:-18182}"

if ! command -v wrk >/dev/null; then
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
wrk --version 2>&1 | head -1 || true

cargo build --release --bin fms --example http_bench
FMS=target/release/fms
BENCH=target/release/examples/http_bench

if [ -n "${DIR:-}" ]; then
    mkdir -p "$DIR"
else
    DIR=$(mktemp -d)
    trap 'rm -rf "$DIR"' EXIT
fi
if [ ! -f "$DIR/manifest-v2.json" ]; then
    "$FMS" demo --dir "$DIR" --scale "$SCALE" --locales 10 --seconds 1 --threads 2 > "$DIR/demo.log"
    "$BENCH" prepare "$DIR"
fi
cp "$DIR/manifest-v1.json" "$DIR/manifest.json"
export IDS="$DIR/ids.txt" LOCALES="$DIR/locales.txt"

status_kb() { awk -v f="$2" '$1 == f {print $2}' "/proc/$1/status"; }

run() { # run NAME PORT MODE SWAP
    local name=$1 port=$2 mode=$3 swap=$4 out swapper=""
    cp "$DIR/manifest-v1.json" "$DIR/manifest.json"
    curl -sf -X POST "http://127.0.0.1:$port/admin/reload" >/dev/null
    if [ "$swap" = yes ]; then
        ( sleep "$((DUR / 2))"
          cp "$DIR/manifest-v2.json" "$DIR/manifest.json.tmp" && mv "$DIR/manifest.json.tmp" "$DIR/manifest.json"
          curl -sf -X POST "http://127.0.0.1:$port/admin/reload" > "$DIR/swap-$name-$mode.log" ) &
        swapper=$!
    fi
    out=$(MODE=$mode wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 10s -s scripts/http_load.lua \
          "http://127.0.0.1:$port" | grep '^RESULT')
    [ -n "$swapper" ] && wait "$swapper"
    local swaplog=""
    [ "$swap" = yes ] && swaplog=" swap: $(cat "$DIR/swap-$name-$mode.log")"
    echo "$name $mode swap=$swap $out$swaplog"
}

for name in $SERVERS; do
    port=$PORT_FMS
    [ "$name" = peer ] && port=$PORT_PEER
    "$BENCH" "$name" "$DIR/manifest.json" "127.0.0.1:$port" > "$DIR/$name.out" 2> "$DIR/$name.err" &
    pid=$!
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.5
    done
    echo "$name: $(head -1 "$DIR/$name.out"); RSS at start $(status_kb $pid VmRSS:) kB"
    # Warm up (page in what the requests touch), then measure.
    MODE=get wrk -t"$THREADS" -c"$CONNS" -d3s -s scripts/http_load.lua "http://127.0.0.1:$port" >/dev/null
    run "$name" "$port" get no
    run "$name" "$port" get yes
    run "$name" "$port" batch no
    run "$name" "$port" batch yes
    echo "$name: RSS $(status_kb $pid VmRSS:) kB, peak (VmHWM) $(status_kb $pid VmHWM:) kB"
    kill -INT "$pid"
    wait "$pid" || true
done
