#!/usr/bin/env bash
# profile.sh — where popdns spends its instructions, per workload (issue 6, "Evidence").
#
# Starts POPDNS_BIN on the shared harness's popdns config (one UDP worker, pinned to core 1),
# offers each workload at a fixed rate with dnsperf (core 0), and for each:
#   perf stat  -e instructions:u,instructions:k,cycles   → per answered query
#   perf record -e instructions:u                         → the top user-space symbols
# Run it for two binaries (e.g. before and after a change) and compare the outputs.
#
# Knobs: PEERS_WORK (required), POPDNS_BIN, RATE=100000, DURATION=5, OUT (markdown; stdout).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HARNESS=${HARNESS:-/work/shared/bench}
PEERS_WORK=${PEERS_WORK:?set PEERS_WORK to the WORK dir of a peers.sh run}
POPDNS_BIN=${POPDNS_BIN:-/tmp/target-bench/release/popdns}
RATE=${RATE:-100000}
DURATION=${DURATION:-5}
DATA=$PEERS_WORK/data
PIN_SERVER="$HARNESS/pin.sh 1"
PIN_LOAD="$HARNESS/pin.sh 0"
TMP=$(mktemp -d)
PERF=1
. "$HERE/measure.sh"

[ -s "$DATA/nxdomain.bin" ] || { echo "run bench/fixed-rate.sh first (writes nxdomain.bin)" >&2; exit 1; }
sed -e "s|25310|25610|" "$PEERS_WORK/run/popdns-t1/popdns.toml" >"$TMP/popdns.toml"
$PIN_SERVER "$POPDNS_BIN" serve -c "$TMP/popdns.toml" >"$TMP/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do
    dig +short +time=1 +tries=1 @127.0.0.1 -p 25610 static.cdn.example A >/dev/null 2>&1 && break
    sleep 0.1
done
echo "## $("$POPDNS_BIN" --version 2>/dev/null | head -1) ($POPDNS_BIN), $RATE q/s offered, $DURATION s"
echo
for wl in static:static.bin www-ecs:www_ecs.bin www-noecs:www.bin nxdomain:nxdomain.bin; do
    name=${wl%%:*} file=$DATA/${wl#*:}
    line=$(measure popdns "$name" 1 "$pid" 25610 "$file" "$TMP/$name.txt" "$RATE")
    $PIN_LOAD dnsperf -s 127.0.0.1 -p 25610 -B -d "$file" -l "$((DURATION + 1))" -Q "$RATE" \
        -c 16 -q 200 -t 1 >/dev/null 2>&1 &
    dp=$!
    sleep 0.5
    perf record -q -e instructions:u -p "$pid" -o "$TMP/$name.data" -- sleep "$DURATION" >/dev/null 2>&1 || true
    wait "$dp" || true
    python3 - "$line" "$name" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
print(f"### {sys.argv[2]}: {r['instructions_u_per_query']:.0f} user + {r['instructions_k_per_query']:.0f} "
      f"kernel instructions, {r['cycles_per_query']:.0f} cycles, {r['cpu_us_per_query']:.2f} µs CPU per query")
EOF
    echo
    echo '```'
    { perf report -i "$TMP/$name.data" --no-children --sort sym 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -12 | cut -c1-120; } || true   # head ends the pipe early
    echo '```'
    echo
done
