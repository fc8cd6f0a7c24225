#!/usr/bin/env bash
# Operations under load (issues 4 and 5), on loopback, time-bounded:
#   1. dnsperf against popdns with no reloads, then while POST /reload runs
#      10 times a second (each bumping a zone serial), for DURATION seconds;
#   2. the same while the health table is swapped every 10 ms (a PoP's
#      admin state flipped down/up through the admin API).
# Reports q/s, lost queries and rcodes of each run. Server pinned to CPU 1,
# dnsperf to CPU 0.
#   DURATION=30 RATE=0 (0 = unthrottled) bash bench/ops-load.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DURATION=${DURATION:-30}
RATE=${RATE:-0}
PORT=${PORT:-25391}
ADMIN=${ADMIN:-25392}
BIN=${POPDNS_BIN:-$ROOT/target/release/popdns}
WORK=$(mktemp -d /tmp/popdns-ops.XXXXXX)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p popdns)
mkdir -p "$WORK/zones"
cp "$ROOT"/zones/*.zone "$WORK/zones/"
cp -r "$ROOT/geoip" "$WORK/geoip"
sed -e "s#listen = \[.*\]#listen = [\"127.0.0.1:$PORT\"]\nworkers = 1#" \
    -e "s#listen = \"127.0.0.1:9153\"#listen = \"127.0.0.1:$ADMIN\"#" \
    "$ROOT/popdns.toml" > "$WORK/popdns.toml"
taskset -c 1 "$BIN" serve -c "$WORK/popdns.toml" > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q "popdns ready" "$WORK/server.log" && break; sleep 0.1; done
grep -q "popdns ready" "$WORK/server.log" || { cat "$WORK/server.log"; exit 1; }

# A mix: static, geo with ECS, geo without ECS, NXDOMAIN.
python3 - "$WORK/queries.txt" <<'PY'
import sys, random
random.seed(1)
with open(sys.argv[1], "w") as f:
    for i in range(20000):
        k = i % 4
        if k == 0: f.write("static.cdn.example A\n")
        elif k == 1: f.write("www.cdn.example A\n")
        elif k == 2: f.write("video.cdn.example AAAA\n")
        else: f.write(f"nx{random.randrange(10**6)}.cdn.example A\n")
PY
perf() {  # label
    local q=()
    [ "$RATE" -gt 0 ] && q=(-Q "$RATE")
    taskset -c 0 dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries.txt" -l "$DURATION" \
        -c 16 -q 200 -t 1 "${q[@]}" > "$WORK/$1.txt" 2>&1
    local qps lost rc
    qps=$(awk '/Queries per second/ {print $4}' "$WORK/$1.txt")
    lost=$(awk '/Queries lost/ {print $3}' "$WORK/$1.txt")
    rc=$(grep "Response codes" "$WORK/$1.txt" | sed 's/.*codes: *//')
    printf '| %s | %s | %s | %s |\n' "$1" "$qps" "$lost" "$rc"
}
reloader() {
    local serial=2026112300
    while :; do
        serial=$((serial + 1))
        sed -i "s/^\( *\)[0-9]\{10\} ; serial/\1$serial ; serial/" "$WORK/zones/cdn.example.zone"
        curl -s -o /dev/null -XPOST "http://127.0.0.1:$ADMIN/reload"
        sleep 0.1
    done
}
swapper() {
    while :; do
        curl -s -o /dev/null -XPUT -d '{"state":"down"}' "http://127.0.0.1:$ADMIN/pops/syd/admin"
        sleep 0.01
        curl -s -o /dev/null -XPUT -d '{"state":"auto"}' "http://127.0.0.1:$ADMIN/pops/syd/admin"
        sleep 0.01
    done
}
metric() { curl -s "http://127.0.0.1:$ADMIN/metrics" | awk -v k="$1" '$1==k || $1==k"{}" {print $2}'; }

echo "popdns $("$BIN" --version), DURATION=${DURATION}s RATE=${RATE:-unthrottled} $(date -u +%FT%TZ)"
echo "| run | q/s | lost | rcodes |"
echo "|---|---:|---:|---|"
perf baseline
r0=$(metric popdns_reloads_total)
reloader & RL=$!
perf "reload-10-per-second"
kill $RL; wait $RL 2>/dev/null || true
r1=$(metric popdns_reloads_total)
e0=$(metric popdns_health_table_epoch)
swapper & SW=$!
perf "health-swap-10ms"
kill $SW; wait $SW 2>/dev/null || true
e1=$(metric popdns_health_table_epoch)
echo
echo "reloads during the reload run: $((${r1%.*} - ${r0%.*})); failures: $(metric popdns_reload_failures_total)"
echo "health table epochs during the swap run: $((${e1%.*} - ${e0%.*}))"

# 3. RRL: a flood from 127.0.0.1 (1,000 outstanding, unthrottled) while a
#    well-behaved client on 127.0.1.1 sends 50 q/s of the mixed workload
#    (each identical response stays under the limit); RRL on (20
#    identical responses/s per prefix, slip 2).
kill $PID; wait $PID 2>/dev/null || true
printf '\n[rrl]\nenabled = true\nresponses_per_second = 20\nslip = 2\n' >> "$WORK/popdns.toml"
taskset -c 1 "$BIN" serve -c "$WORK/popdns.toml" > "$WORK/server2.log" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q "popdns ready" "$WORK/server2.log" && break; sleep 0.1; done
printf 'static.cdn.example A\n' > "$WORK/flood.txt"
taskset -c 0 dnsperf -s 127.0.0.1 -p "$PORT" -a 127.0.0.1 -d "$WORK/flood.txt" -l "$DURATION" -c 20 -q 1000 -t 1 > "$WORK/flood.out" 2>&1 &
FL=$!
taskset -c 0 dnsperf -s 127.0.0.1 -p "$PORT" -a 127.0.1.1 -d "$WORK/queries.txt" -l "$DURATION" -Q 50 -c 4 -t 1 > "$WORK/good.out" 2>&1
wait $FL || true
echo
echo "RRL under flood (DURATION=${DURATION}s):"
echo "| client | sent q/s | answered | lost | rcodes |"
echo "|---|---:|---:|---:|---|"
for f in flood good; do
    printf '| %s | %s | %s | %s | %s |\n' "$f" \
        "$(awk '/Queries per second/ {print $4}' "$WORK/$f.out")" \
        "$(awk '/Queries completed/ {print $3}' "$WORK/$f.out")" \
        "$(awk '/Queries lost/ {print $3}' "$WORK/$f.out")" \
        "$(grep "Response codes" "$WORK/$f.out" | sed 's/.*codes: *//')"
done
echo "(dnsperf waits 1 s for each dropped query, so the flood's own rate collapses; the server-side counts are below)"
echo "popdns_rrl_responses_total: $(curl -s "http://127.0.0.1:$ADMIN/metrics" | grep '^popdns_rrl_responses_total' | tr '\n' ' ')"
