#!/usr/bin/env bash
# fixed-rate.sh — server CPU per answered query at a fixed offered rate (issue 6).
#
# Every server answers the same zone, PoPs and GeoIP data (the configs the shared
# harness wrote in a previous `peers.sh` run, under $PEERS_WORK/run/<peer>-t1/), with
# one query worker, pinned to core 1. dnsperf is pinned to core 0 and offers a fixed
# rate (-Q) that no server drops, so every server does the same work and the figure
# compared is the server's CPU time (utime+stime of the whole process, /proc/PID/stat)
# divided by the answers dnsperf received.
#
# The servers run side by side (different ports) and the runs are interleaved: for each
# repetition, for each rate, for each workload, every server in turn (the order turning
# by one server each repetition), so a change in the machine's speed during the session
# hits every server alike.
#
# Workloads: static (static.cdn.example A), www-ecs (www A with a rotating ECS option
# over the City-schema test database), www-noecs (www A, source 127.0.0.1) and nxdomain
# (4096 distinct names under cdn.example that do not exist). All with EDNS0 (1232).
#
# Each cell also runs unthrottled (rate 0: saturation q/s, lost, latency in the same session).
#
# Knobs: PEERS_WORK (required: the WORK dir of a peers.sh run), PEERS="popdns gdnsd knot",
# RATES="100000 0", DURATION=10, REPS=3, WORKLOADS="static www-ecs www-noecs nxdomain",
# POPDNS_BIN=/tmp/target-bench/release/popdns, OUT=$PEERS_WORK/fixed-rate.jsonl,
# PERF=1 also records `perf stat` (instructions, cycles) of the server for each run.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HARNESS=${HARNESS:-/work/shared/bench}
PEERS_WORK=${PEERS_WORK:?set PEERS_WORK to the WORK dir of a peers.sh run}
PEERS=${PEERS:-"popdns gdnsd knot"}
RATES=${RATES:-"100000 0"}
DURATION=${DURATION:-10}
REPS=${REPS:-3}
WORKLOADS=${WORKLOADS:-"static www-ecs www-noecs nxdomain"}
POPDNS_BIN=${POPDNS_BIN:-/tmp/target-bench/release/popdns}
OUT=${OUT:-$PEERS_WORK/fixed-rate.jsonl}
PERF=${PERF:-0}
DATA=$PEERS_WORK/data
RUN=$PEERS_WORK/run
PIN_SERVER="$HARNESS/pin.sh 1"
PIN_LOAD="$HARNESS/pin.sh 0"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
. "$HERE/measure.sh"

# nxdomain.bin: 4096 names that do not exist, dnsperf -B format
python3 - "$HARNESS" "$DATA/nxdomain.bin" <<'EOF'
import struct, sys
sys.path.insert(0, sys.argv[1])
from dnswire import build_query
with open(sys.argv[2], "wb") as f:
    for i in range(4096):
        m = build_query(f"nx{i:04d}.cdn.example", "A", edns=True)
        f.write(struct.pack("!H", len(m)) + m)
EOF

declare -A PID PORT
PORT=([popdns]=25310 [gdnsd]=25301 [knot]=25303)
start() {
    local p=$1 d=$RUN/$1-t1
    case $p in
        popdns) $PIN_SERVER "$POPDNS_BIN" serve -c "$d/popdns.toml" >"$d/fixed-rate.log" 2>&1 & ;;
        gdnsd) $PIN_SERVER gdnsd -c "$d" start >"$d/fixed-rate.log" 2>&1 & ;;
        knot) $PIN_SERVER knotd -c "$d/knot.conf" >"$d/fixed-rate.log" 2>&1 & ;;
    esac
    PID[$p]=$!
    for _ in $(seq 100); do
        dig +short +time=1 +tries=1 @127.0.0.1 -p "${PORT[$p]}" static.cdn.example A >/dev/null 2>&1 && return
        sleep 0.1
    done
    log "$p did not answer"; exit 1
}
stop_all() { for p in "${!PID[@]}"; do kill "${PID[$p]}" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT

file_of() {
    case $1 in static) echo static.bin ;; www-ecs) echo www_ecs.bin ;; www-noecs) echo www.bin ;;
        nxdomain) echo nxdomain.bin ;; esac
}

# The order of the servers turns by one each repetition: the first run after a change of
# rate tends to catch the machine's slow mode, and no server should always be that run.
rotate() { local k=$(( ($1 - 1) % ($# - 1) )); shift; local a=("$@"); echo "${a[@]:k}" "${a[@]:0:k}"; }
for p in $PEERS; do start "$p"; done
sleep 1
for rep in $(seq 1 "$REPS"); do
    for rate in $RATES; do
        for wl in $WORKLOADS; do
            for p in $(rotate "$rep" $PEERS); do
                measure "$p" "$wl" "$rep" "${PID[$p]}" "${PORT[$p]}" "$DATA/$(file_of "$wl")" \
                    "$RUN/$p-t1/fixed-$wl-$rate-$rep.txt" "$rate" | tee -a "$OUT"
            done
        done
    done
done
