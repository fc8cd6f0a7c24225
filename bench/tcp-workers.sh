#!/usr/bin/env bash
# TCP throughput against Knot, and popdns with 1 against 2 UDP workers.
#   bash bench/tcp-workers.sh        (DURATION=10 by default; loopback only)
# TCP: 100 connections, queries pipelined (dnsperf -m tcp -c 100 -q 1000),
# static A from the demo zone; each server pinned to core 1 with one TCP
# worker where it has the knob, dnsperf on core 0.
# Workers: the demo config with workers = 1 and = 2, server NOT pinned (it
# may use both cores), dnsperf unpinned too; the load generator's CPU share
# is reported (on 2 cores it competes with the second worker).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PIN=${PIN:-/work/shared/bench/pin.sh}
DURATION=${DURATION:-10}
BIN=${POPDNS_BIN:-$ROOT/target/release/popdns}
W=$(mktemp -d /tmp/popdns-tcp.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p popdns)
printf 'static.cdn.example A\n' > "$W/q.txt"

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime+stime, clock ticks
run() {  # LABEL PID PORT MODE(tcp|udp) PIN_LOAD(yes|no)
    local label=$1 pid=$2 port=$3 mode=$4 pinload=$5 c0 c1 dp
    c0=$(cpu_of "$pid")
    if [ "$pinload" = yes ]; then
        taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -m "$mode" -d "$W/q.txt" -l "$DURATION" -c 100 -q 1000 -t 2 > "$W/$label.txt" 2>&1 &
    else
        dnsperf -s 127.0.0.1 -p "$port" -m "$mode" -d "$W/q.txt" -l "$DURATION" -c 16 -q 400 -t 2 > "$W/$label.txt" 2>&1 &
    fi
    dp=$!
    local d0; d0=$(sleep 0.2; cpu_of "$dp" 2>/dev/null || echo 0)
    wait "$dp" || true
    c1=$(cpu_of "$pid")
    local qps lost answered
    qps=$(awk '/Queries per second/ {print $4}' "$W/$label.txt")
    lost=$(awk '/Queries lost/ {print $3}' "$W/$label.txt")
    answered=$(awk '/Queries completed/ {print $3}' "$W/$label.txt")
    local hz; hz=$(getconf CLK_TCK)
    printf '| %s | %.0f | %s | %.2f | %.2f |\n' "$label" "$qps" "$lost" \
        "$(echo "($c1 - $c0) / $hz / $DURATION" | bc -l)" \
        "$(echo "($c1 - $c0) / $hz * 1000000 / ($answered + 1)" | bc -l)"
}

# popdns: the demo zones, one worker, TCP.
mkdir -p "$W/p"
cat > "$W/p/popdns.toml" <<TOML
version = 1
[server]
listen = ["127.0.0.1:25371"]
workers = 1
tcp_max_connections_per_client = 1000
tcp_max_queries_per_connection = 1000000000
[zones]
directory = "$ROOT/zones"
TOML
"$PIN" 1 "$BIN" serve -c "$W/p/popdns.toml" > "$W/p.log" 2>&1 &
PP=$!
# knot: the same zone file, one TCP worker.
mkdir -p "$W/k"
cat > "$W/k/knot.conf" <<KNOT
server:
    listen: 127.0.0.1@25372
    rundir: "$W/k"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    tcp-max-clients: 1000
database:
    storage: "$W/k"
zone:
  - domain: cdn.example
    file: "$ROOT/zones/cdn.example.zone"
KNOT
"$PIN" 1 knotd -c "$W/k/knot.conf" > "$W/k.log" 2>&1 &
KP=$!
sleep 2
dig +short @127.0.0.1 -p 25371 static.cdn.example >/dev/null
dig +short @127.0.0.1 -p 25372 static.cdn.example >/dev/null
echo "TCP, 100 connections, pipelined, static A; $(date -u +%FT%TZ), DURATION=${DURATION}s"
echo "| server | q/s | lost | server cores | server µs/query |"
echo "|---|---:|---:|---:|---:|"
run popdns-tcp "$PP" 25371 tcp yes
run knot-tcp "$KP" 25372 tcp yes
kill "$PP" "$KP"; wait "$PP" "$KP" 2>/dev/null || true

# popdns 1 vs 2 UDP workers, unpinned.
echo
echo "UDP workers (server and dnsperf unpinned, 2 cores in all)"
echo "| workers | q/s | lost | server cores | server µs/query |"
echo "|---|---:|---:|---:|---:|"
for n in 1 2; do
    sed "s/workers = 1/workers = $n/" "$W/p/popdns.toml" > "$W/p/w$n.toml"
    "$BIN" serve -c "$W/p/w$n.toml" > "$W/w$n.log" 2>&1 &
    WP=$!
    sleep 1
    run "$n" "$WP" 25371 udp no
    kill "$WP"; wait "$WP" 2>/dev/null || true
done
