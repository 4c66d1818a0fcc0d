#!/usr/bin/env bash
# HTTP load benchmark: fms (fms::http::router over a Store) against the same routes over
# HashMap<String, serde_json::Value>, on the 11-tree corpus (en + 10 locale overlays), with
# wrk. Both servers run at once and take turns under load (fms, peer, then peer, fms in the
# next round, ...), so that a noisy machine disturbs both alike. Scenarios: single-record
# GETs and 50-id batches (random ids and locales), steady and with a content-update swap
# (en -> en-v2: the manifest is replaced and POST /admin/reload re-reads it) at half time.
# Then each server's RSS (VmRSS) and peak (VmHWM). Prints one RESULT line per run.
#
# Environment: SECONDS_PER_RUN (12), ROUNDS (2), CONNS (32), THREADS (wrk's threads: one per
# CPU it runs on), SCALE (1), COMPRESS (auto: the trees' string compression, as `fms build
# --compress`), DIR (a temp dir, kept if given; the corpus is generated once per DIR, with
# the COMPRESS of that first run), PORT_FMS (18181), PORT_PEER (18182), PIN (1: the servers
# run on the first half of the CPUs and wrk on the other half, with taskset, so that the
# load generator does not take the servers' cores; 0: no pinning).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DUR="${SECONDS_PER_RUN:-12}"
CONNS="${CONNS:-32}"
NCPU=$(nproc)
SERVE=()
LOAD=()
if [ "${PIN:-1}" = 1 ] && [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
    HALF=$((NCPU / 2))
    SERVE=(taskset -c "0-$((HALF - 1))")
    LOAD=(taskset -c "$HALF-$((NCPU - 1))")
    echo "pinned: servers on CPUs 0-$((HALF - 1)), wrk on CPUs $HALF-$((NCPU - 1))"
    THREADS="${THREADS:-$((NCPU - HALF))}"
fi
THREADS="${THREADS:-2}"
SCALE="${SCALE:-1}"
ROUNDS="${ROUNDS:-2}"
PORT_FMS="${PORT_FMS:-18181}"
PORT_PEER="${PORT_PEER:-18182}"

if ! command -v wrk >/dev/null; then
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
wrk --version 2>&1 | head -1 || true

cargo build --release --bin fms --example http_bench
FMS=target/release/fms
BENCH=target/release/examples/http_bench

declare -A PORT PID
PORT[fms]=$PORT_FMS
PORT[peer]=$PORT_PEER
CLEAN_DIR=""
cleanup() {
    for p in "${PID[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$CLEAN_DIR" ]; then rm -rf "$CLEAN_DIR"; fi
}
trap cleanup EXIT
if [ -n "${DIR:-}" ]; then
    mkdir -p "$DIR"
else
    DIR=$(mktemp -d)
    CLEAN_DIR=$DIR
fi
if [ ! -f "$DIR/manifest-v2.json" ]; then
    "$FMS" demo --dir "$DIR" --scale "$SCALE" --locales 10 --seconds 1 --threads 2 \
        --compress "${COMPRESS:-auto}" > "$DIR/demo.log"
    "$BENCH" prepare "$DIR"
fi
export IDS="$DIR/ids.txt" LOCALES="$DIR/locales.txt"

status_kb() { awk -v f="$2" '$1 == f {print $2}' "/proc/$1/status"; }

# Each server reads its own copy of the manifest, so that one's swap is not the other's.

run() { # run NAME MODE SWAP
    local name=$1 mode=$2 swap=$3 port=${PORT[$1]} out swapper=""
    local m="$DIR/manifest-$name.json"
    cp "$DIR/manifest-v1.json" "$m"
    curl -sf -X POST "http://127.0.0.1:$port/admin/reload" >/dev/null
    if [ "$swap" = yes ]; then
        ( sleep "$((DUR / 2))"
          cp "$DIR/manifest-v2.json" "$m.tmp" && mv "$m.tmp" "$m"
          curl -sf -X POST "http://127.0.0.1:$port/admin/reload" > "$DIR/swap-$name-$mode.log" ) &
        swapper=$!
    fi
    out=$(MODE=$mode "${LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 10s -s scripts/http_load.lua \
          "http://127.0.0.1:$port" | grep '^RESULT')
    [ -n "$swapper" ] && wait "$swapper"
    local swaplog=""
    [ "$swap" = yes ] && swaplog=" swap: $(cat "$DIR/swap-$name-$mode.log")"
    echo "$name $mode swap=$swap $out$swaplog"
}

for name in fms peer; do
    cp "$DIR/manifest-v1.json" "$DIR/manifest-$name.json"
    "${SERVE[@]}" "$BENCH" "$name" "$DIR/manifest-$name.json" "127.0.0.1:${PORT[$name]}" \
        > "$DIR/$name.out" 2> "$DIR/$name.err" &
    PID[$name]=$!
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:${PORT[$name]}/healthz" >/dev/null 2>&1 && break
        sleep 0.5
    done
    echo "$name: $(head -1 "$DIR/$name.out"); RSS at start $(status_kb "${PID[$name]}" VmRSS:) kB"
done
for name in fms peer; do # warm up: page in what the requests touch
    MODE=get "${LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d3s -s scripts/http_load.lua "http://127.0.0.1:${PORT[$name]}" >/dev/null
done
for round in $(seq 1 "$ROUNDS"); do
    order="fms peer"
    [ $((round % 2)) = 0 ] && order="peer fms"
    for scenario in "get no" "get yes" "batch no" "batch yes"; do
        for name in $order; do
            # shellcheck disable=SC2086
            echo "round $round: $(run "$name" $scenario)"
        done
    done
done
for name in fms peer; do
    echo "$name: RSS $(status_kb "${PID[$name]}" VmRSS:) kB, peak (VmHWM) $(status_kb "${PID[$name]}" VmHWM:) kB"
done
