#!/usr/bin/env bash
# callgrind.sh — user-space instructions per answered query, popdns vs gdnsd vs Knot,
# counted by valgrind's callgrind (issue 6, "Evidence"). For machines without hardware
# performance counters (where `perf stat -e instructions` says "not supported"): callgrind
# counts every instruction the server executes in user space, exactly, whatever the CPU
# does; the kernel's share (UDP receive and send) is not counted.
#
# Each server (the shared harness's configs, one worker, as bench/fixed-rate.sh) starts
# under callgrind with instrumentation off, so loading the zone and database is not
# counted. For each workload: instrumentation on, WARMUP s of the same queries (the
# steady state a long run measures: 6,000 queries ask each of the 4,096 NXDOMAIN names
# once), counters dumped (and reset), dnsperf offers RATE q/s for DURATION s, counters
# dumped; instructions of that dump ÷ answers.
# The idle work of the same interval (timers, health probes) is included, as in
# `perf stat` of a whole process.
#
# Output: a markdown table on stdout; for popdns also the top functions of each workload
# (instructions per query, exclusive) in $OUT_DIR/popdns-<workload>.txt.
#
# Knobs: PEERS_WORK (required, as fixed-rate.sh; run fixed-rate.sh once first, it writes
# nxdomain.bin), PEERS="popdns gdnsd knot", POPDNS_BIN, RATE=2000, DURATION=5, WARMUP=3,
# OUT_DIR=$(mktemp -d), WORKLOADS="static www-ecs www-noecs nxdomain".
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HARNESS=${HARNESS:-/work/shared/bench}
PEERS_WORK=${PEERS_WORK:?set PEERS_WORK to the WORK dir of a peers.sh run}
PEERS=${PEERS:-"popdns gdnsd knot"}
POPDNS_BIN=${POPDNS_BIN:-/tmp/target-bench/release/popdns}
RATE=${RATE:-2000}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-3}
WORKLOADS=${WORKLOADS:-"static www-ecs www-noecs nxdomain"}
OUT_DIR=${OUT_DIR:-$(mktemp -d)}
DATA=$PEERS_WORK/data
RUN=$PEERS_WORK/run
PIN_SERVER="$HARNESS/pin.sh 1"
PIN_LOAD="$HARNESS/pin.sh 0"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
[ -s "$DATA/nxdomain.bin" ] || { echo "run bench/fixed-rate.sh first (writes nxdomain.bin)" >&2; exit 1; }
mkdir -p "$OUT_DIR"

declare -A PORT=([popdns]=25310 [gdnsd]=25301 [knot]=25303)
file_of() {
    case $1 in static) echo static.bin ;; www-ecs) echo www_ecs.bin ;; www-noecs) echo www.bin ;;
        nxdomain) echo nxdomain.bin ;; esac
}

# Ask running callgrind for a dump named $3; print the new file's path.
dump_now() {
    local before
    before=$(find "$OUT_DIR" -name "$1.cg.*" | wc -l)
    callgrind_control --dump="$3" "$2" >/dev/null 2>&1
    for _ in $(seq 100); do
        [ "$(find "$OUT_DIR" -name "$1.cg.*" | wc -l)" -gt "$before" ] && break
        sleep 0.1
    done
    find "$OUT_DIR" -name "$1.cg.*" | awk -F. '{print $NF, $0}' | sort -n | tail -n 1 | cut -d' ' -f2
}
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true' EXIT

echo "| workload | server | answers | user instructions per answered query |"
echo "|---|---|---:|---:|"
for p in $PEERS; do
    d=$RUN/$p-t1
    rm -f "$OUT_DIR/$p.cg"*
    cg=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$OUT_DIR/$p.cg")
    case $p in
        popdns) $PIN_SERVER "${cg[@]}" "$POPDNS_BIN" serve -c "$d/popdns.toml" >"$OUT_DIR/$p.log" 2>&1 & ;;
        gdnsd) $PIN_SERVER "${cg[@]}" gdnsd -c "$d" start >"$OUT_DIR/$p.log" 2>&1 & ;;
        knot) $PIN_SERVER "${cg[@]}" knotd -c "$d/knot.conf" >"$OUT_DIR/$p.log" 2>&1 & ;;
    esac
    pid=$!
    up=0
    for _ in $(seq 300); do
        if dig +short +time=1 +tries=1 @127.0.0.1 -p "${PORT[$p]}" static.cdn.example A 2>/dev/null | grep -q .; then
            up=1
            break
        fi
        sleep 0.2
    done
    [ "$up" = 1 ] || { log "$p did not answer under callgrind"; kill "$pid"; wait "$pid" || true; continue; }
    for wl in $WORKLOADS; do
        # A warm-up pass (steady state: every NXDOMAIN name asked once before), then a
        # dump, which resets the counters: the next dump holds the measured load alone.
        callgrind_control --instr=on "$pid" >/dev/null 2>&1
        $PIN_LOAD dnsperf -s 127.0.0.1 -p "${PORT[$p]}" -B -d "$DATA/$(file_of "$wl")" \
            -l "$WARMUP" -Q "$RATE" -c 4 -q 50 -t 2 >/dev/null 2>&1 || true
        dump_now "$p" "$pid" "pre-$wl" >/dev/null
        answers=$($PIN_LOAD dnsperf -s 127.0.0.1 -p "${PORT[$p]}" -B -d "$DATA/$(file_of "$wl")" \
            -l "$DURATION" -Q "$RATE" -c 4 -q 50 -t 2 2>/dev/null |
            awk '/Queries completed:/ {print $3}')
        dump=$(dump_now "$p" "$pid" "$wl")
        callgrind_control --instr=off "$pid" >/dev/null 2>&1
        ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
        per=$(python3 -c "print(f'{$ir / max($answers, 1):,.0f}')")
        echo "| $wl | $p | $answers | $per |"
        if [ "$p" = popdns ]; then
            # Exclusive instructions per query by function (inlined code counted in the
            # function it was inlined into), the top 15.
            callgrind_annotate --inclusive=no --auto=no --threshold=100 "$dump" 2>/dev/null |
                python3 -c '
import re, sys
n = int(sys.argv[1]); tot = {}
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+?):(.+?)(?: \[.*\])?$", line)
    if m and m.group(2) != "PROGRAM":
        f = m.group(3).strip()
        tot[f] = tot.get(f, 0) + int(m.group(1).replace(",", ""))
total = sum(tot.values())
for f, v in sorted(tot.items(), key=lambda x: -x[1])[:15]:
    print(f"{v / n:8.0f} {100 * v / total:5.1f}%  {f}")
' "$answers" >"$OUT_DIR/popdns-$wl.txt" || true
        fi
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
log "callgrind dumps and popdns top functions in $OUT_DIR"
