# popdns as a server under test for the shared peer harness (/work/shared/bench/peers.sh).
# The harness sources every *.sh in EXTRA_SERVERS_DIR; this file defines sut_popdns_start.
#
#   EXTRA_SERVERS_DIR=/work/main/bench/servers PEERS="popdns gdnsd knot" \
#       bash /work/shared/bench/peers.sh          # or bench/run.sh, which does this for you
#
# sut_popdns_start PORT MMDB TOPOLOGY EXPECTED DIR THREADS
#   writes DIR/popdns.toml and DIR/zones/cdn.example.zone from topology.json:
#     the zone (SOA, NS ns1 + its A, the static A/AAAA) exactly as peer_configs.py writes it
#     for the peers, plus a fallback www A/AAAA (first PoP, as for Knot);
#     www.cdn.example as a [[services]] entry (ttl from the topology, 1 answer), the 5 PoPs,
#     local_pop = the first PoP (clients without a location get fra, as with gdnsd/Knot);
#   THREADS=1 -> workers = 1 (one UDP worker thread); default -> omitted (one per core).
#   Starts ${POPDNS_BIN:-/tmp/target-bench/release/popdns} serve -c DIR/popdns.toml,
#   pinned with $PIN_SERVER, stderr to DIR/server.log, and sets SUT_PID.

popdns_write_config() {  # PORT MMDB TOPOLOGY DIR THREADS [ZONEDIR]
    python3 - "$@" <<'PYEOF'
import json, os, sys
port, mmdb, topo_path, d, thr = sys.argv[1:6]
zdir = sys.argv[6] if len(sys.argv) > 6 else os.path.join(d, "zones")
topo = json.load(open(topo_path))
z, st, ns = topo["zone"], topo["static"], topo["ns"]
rel = lambda n: n[: -len(z) - 1] if n.endswith("." + z) else n
os.makedirs(zdir, exist_ok=True)
zf = os.path.join(zdir, z + ".zone")
if not os.path.exists(zf):
    p0 = topo["pops"][0]
    w, t = rel(topo["geo_name"]), topo["geo_ttl"]
    with open(zf, "w") as f:
        # same records and TTLs as the peers' zone (peer_configs.py zone_common)
        f.write(f"$ORIGIN {z}.\n$TTL 300\n"
                f"@ IN SOA {ns['name']}. hostmaster.{z}. 1 7200 1800 1209600 300\n"
                f"@ IN NS {ns['name']}.\n"
                f"{rel(ns['name'])} IN A {ns['A']}\n"
                f"{rel(st['name'])} IN A {st['A']}\n"
                f"{rel(st['name'])} IN AAAA {st['AAAA']}\n"
                f"{w} {t} IN A {p0['A']}\n{w} {t} IN AAAA {p0['AAAA']}\n")
lines = ["version = 1", "", "[server]", f'listen = ["127.0.0.1:{port}"]',
         'identity = "popdns-bench"', f'local_pop = "{topo["pops"][0]["id"]}"']
if thr == "1":
    lines.append("workers = 1")
lines += ["", "[zones]", f"directory = {json.dumps(os.path.abspath(zdir))}", "",
          "[geoip]", f"database = {json.dumps(os.path.abspath(mmdb))}", ""]
for p in topo["pops"]:
    lines += ["[[pops]]", f'name = "{p["id"]}"', f"latitude = {p['lat']}",
              f"longitude = {p['lon']}", f'ipv4 = ["{p["A"]}"]']
    if p.get("AAAA"):
        lines.append(f'ipv6 = ["{p["AAAA"]}"]')
    lines.append("")
lines += ["[[services]]", f'name = "{topo["geo_name"]}"', f"ttl = {topo['geo_ttl']}",
          "answers = 1", ""]
open(os.path.join(d, "popdns.toml"), "w").write("\n".join(lines))
PYEOF
}

sut_popdns_start() {
    local port=$1 mmdb=$2 topo=$3 exp=$4 dir=$5 thr=$6
    mkdir -p "$dir"
    popdns_write_config "$port" "$mmdb" "$topo" "$dir" "$thr"
    $PIN_SERVER "${POPDNS_BIN:-/tmp/target-bench/release/popdns}" serve -c "$dir/popdns.toml" \
        >"$dir/server.log" 2>&1 &
    SUT_PID=$!
}
