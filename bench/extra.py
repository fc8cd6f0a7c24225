#!/usr/bin/env python3
"""popdns vs NSD (and Knot) on plain zone data: the small-zone comparison and the
1,000,000-name zone. Stdlib only; uses the shared harness's pin.sh, cpumon.py,
summarize.py and dnswire.py from HARNESS.

  extra.py nsdcmp   --harness DIR --work DIR --out results.jsonl
  extra.py bigzone  --harness DIR --work DIR --out results.jsonl [--names 1000000]

Every server runs pinned to SERVER_CPU with pin.sh (cpuset + taskset) and dnsperf to
LOAD_CPU, exactly like peers.sh: binary (-B) input, -c CLIENTS -q OUTSTANDING -T 1
-t TIMEOUT -l DURATION. Before each run we wait (bounded) until other processes use
< QUIET_THRESHOLD cores; a run during which they used more is recorded with
"contaminated": true and repeated (up to RETRIES times).

Server CPU per query = (utime+stime of every process of the server, from
/proc/PID/stat, after - before the dnsperf run) / queries completed. For NSD this
sums the parent, the serving child and xfrd.

All traffic is to 127.0.0.1; every dnsperf run is bounded by -l.
"""
import argparse
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")
ENV = os.environ
DURATION = int(ENV.get("DURATION", "10"))
REPS = int(ENV.get("REPS", "2"))
CLIENTS = ENV.get("CLIENTS", "16")
OUTSTANDING = ENV.get("OUTSTANDING", "200")
TIMEOUT = ENV.get("TIMEOUT", "1")
SERVER_CPU = ENV.get("SERVER_CPU", "1")
LOAD_CPU = ENV.get("LOAD_CPU", "0")
QUIET_WAIT = ENV.get("QUIET_WAIT", "120")
QUIET_THRESHOLD = float(ENV.get("QUIET_THRESHOLD", "0.15"))
RETRIES = int(ENV.get("RETRIES", "2"))
POPDNS_BIN = ENV.get("POPDNS_BIN", "/tmp/target-bench/release/popdns")
BENCH = os.path.dirname(os.path.abspath(__file__))
ZONE = "cdn.example"


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ process helpers
def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            s = open(f"/proc/{p}/stat").read()
            rest = s[s.rfind(")") + 2:].split()
            total += int(rest[11]) + int(rest[12])
        except OSError:
            pass
    return total


def memory_kb(pids):
    rss = pss = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def stop(proc):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        for p in reversed(descendants(proc.pid)):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        proc.wait(5)


# ------------------------------------------------------------------ DNS helpers
def soa_ok(port, dnswire, timeout=0.1):
    import socket
    q = dnswire.build_query(ZONE, "SOA", edns=False, qid=4242)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        # connected: a closed port gives ConnectionRefused at once (ICMP), so the
        # poll interval, not the timeout, bounds the load-time resolution
        s.connect(("127.0.0.1", port))
        s.send(q)
        r = s.recv(4096)
        # NOERROR, AA, at least one answer
        return len(r) >= 12 and r[3] & 0x0F == 0 and r[2] & 0x04 and r[6:8] != b"\0\0"
    except OSError:
        return False
    finally:
        s.close()


def wait_ready(port, proc, dnswire, limit=600.0):
    """Poll SOA every 10 ms; seconds from now until the first authoritative answer."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if proc.poll() is not None:
            return None
        if soa_ok(port, dnswire):
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


def write_queries(path, names, qtype, dnswire):
    with open(path, "wb") as f:
        for n in names:
            m = dnswire.build_query(n, qtype, edns=True, qid=0)
            f.write(struct.pack("!H", len(m)) + m)


# ------------------------------------------------------------------ servers
def start_popdns(h, d, port, topo, mmdb, zonedir):
    subprocess.run(["bash", "-c", f'. "{BENCH}/servers/popdns.sh"; popdns_write_config "$@"',
                    "x", str(port), mmdb, topo, d, "1", zonedir], check=True)
    cmd = [f"{h}/pin.sh", SERVER_CPU, POPDNS_BIN, "serve", "-c", f"{d}/popdns.toml"]
    return cmd


def start_nsd(h, d, port, zonefile):
    conf = f"""server:
    server-count: 1
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    reuseport: no
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    username: ""
    chroot: ""
    zonesdir: "{d}"
    verbosity: 1
    # Debian's NSD is built with RRL (default 200 q/s per /24): off, popdns has none yet
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {ZONE}
    zonefile: "{zonefile}"
"""
    open(f"{d}/nsd.conf", "w").write(conf)
    subprocess.run(["nsd-checkconf", f"{d}/nsd.conf"], check=True)
    return [f"{h}/pin.sh", SERVER_CPU, "nsd", "-d", "-c", f"{d}/nsd.conf"]


def start_knot(h, d, port, zonefile):
    os.makedirs(f"{d}/run", exist_ok=True)
    conf = f"""server:
    rundir: {d}/run
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: notice
database:
    storage: {d}/db
template:
  - id: default
    storage: {d}
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
zone:
  - domain: {ZONE}
    file: {zonefile}
"""
    open(f"{d}/knot.conf", "w").write(conf)
    return [f"{h}/pin.sh", SERVER_CPU, "knotd", "-c", f"{d}/knot.conf"]


# ------------------------------------------------------------------ load
def run_load(h, server, workload, rep, port, proc, qfile, rdir, extra):
    pids = descendants(proc.pid)
    ex = [str(p) for p in pids]
    attempt = 0
    rows = []
    while True:
        attempt += 1
        quiet = subprocess.run(
            ["python3", f"{h}/cpumon.py", "--wait-quiet", QUIET_WAIT, "--threshold",
             str(QUIET_THRESHOLD), "--exclude", *ex], capture_output=True, text=True).stdout
        out = f"{rdir}/dnsperf-{server}-{workload}-{rep}-{attempt}.txt"
        c0 = cpu_ticks(pids)
        with open(out, "w") as f:
            dp = subprocess.Popen(
                [f"{h}/pin.sh", LOAD_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-B",
                 "-d", qfile, "-l", str(DURATION), "-c", CLIENTS, "-q", OUTSTANDING, "-T", "1",
                 "-t", TIMEOUT, "-O", "suppress=timeouts,unexpected,congestion"],
                stdout=f, stderr=subprocess.STDOUT)
            mon = subprocess.run(
                ["python3", f"{h}/cpumon.py", "--duration", str(DURATION), "--exclude", *ex,
                 str(dp.pid)], capture_output=True, text=True).stdout
            dp.wait(DURATION + 60)
        c1 = cpu_ticks(pids)
        r = json.loads(subprocess.run(["python3", f"{h}/summarize.py", "parse", out],
                                      capture_output=True, text=True, check=True).stdout)
        m = dict(kv.split("=") for kv in mon.split())
        r.update(extra)
        r.update(peer=server, threads="1", workload=workload, rep=rep, attempt=attempt,
                 others_cores=float(m["others_cores"]),
                 server_cores=sum(float(m.get(f"pid{p}_cores", 0)) for p in pids),
                 dnsperf_cores=float(m.get(f"pid{dp.pid}_cores", "nan")),
                 server_cpu_busy=float(m.get(f"cpu{SERVER_CPU}_busy", "nan")),
                 load_cpu_busy=float(m.get(f"cpu{LOAD_CPU}_busy", "nan")),
                 quiet_before=quiet.strip(),
                 server_cpu_s=(c1 - c0) / HZ,
                 server_us_per_q=((c1 - c0) / HZ * 1e6 / r["completed"])
                 if r.get("completed") else None)
        r["contaminated"] = r["others_cores"] > QUIET_THRESHOLD
        rows.append(r)
        log(f"{server} {workload} rep{rep}/{attempt}: qps={r['qps']} avg={r['lat_avg']} "
            f"max={r['lat_max']} lost={r['lost']} server_us/q={r['server_us_per_q']} "
            f"others={r['others_cores']:.2f} busy={r['server_cpu_busy']:.2f}/"
            f"{r['load_cpu_busy']:.2f}")
        if not r["contaminated"] or attempt > RETRIES:
            return rows


def serve_and_measure(h, name, cmd, port, d, workloads, out, dnswire, extra=None,
                      measure_load=False):
    """Start cmd, wait for SOA, record load time / memory, run workloads, stop."""
    extra = dict(extra or {})
    log(f"start {name} on 127.0.0.1:{port}")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=open(f"{d}/server.log", "w"), stderr=subprocess.STDOUT)
    try:
        ready = wait_ready(port, proc, dnswire)
        if ready is None:
            log(f"{name} did not come up; log tail:")
            log(open(f"{d}/server.log").read()[-2000:])
            return []
        ready_s = time.monotonic() - t0
        time.sleep(1.0)  # let RSS settle (Knot frees load-time structures)
        pids = descendants(proc.pid)
        rss, pss = memory_kb(pids)
        load_cpu = cpu_ticks(pids) / HZ
        info = dict(peer=name, load_s=round(ready_s, 3), rss_kb=rss, pss_kb=pss,
                    nprocs=len(pids), load_cpu_s=load_cpu, **extra)
        log(f"{name}: ready after {ready_s:.2f} s, RSS {rss / 1024:.1f} MiB, "
            f"PSS {pss / 1024:.1f} MiB, {len(pids)} process(es), CPU {load_cpu:.2f} s")
        with open(out, "a") as f:
            f.write(json.dumps(dict(kind="load", **info)) + "\n")
        with open(f"{d}/process.txt", "w") as f:
            for p in pids:
                for t in os.listdir(f"/proc/{p}/task"):
                    comm = open(f"/proc/{p}/task/{t}/comm").read().strip()
                    aff = [x.split()[1] for x in open(f"/proc/{p}/task/{t}/status")
                           if x.startswith("Cpus_allowed_list")]
                    f.write(f"{p} {t} {comm} {aff[0] if aff else '?'}\n")
        rows = []
        for wl, qfile in workloads:
            for rep in range(1, REPS + 1):
                for r in run_load(h, name, wl, rep, port, proc, qfile, d, extra):
                    r["kind"] = "load-run"
                    rows.append(r)
                    with open(out, "a") as f:
                        f.write(json.dumps(r) + "\n")
        return rows
    finally:
        stop(proc)


# ------------------------------------------------------------------ phases
def setup(a):
    sys.path.insert(0, a.harness)
    import dnswire  # noqa: E402
    os.makedirs(a.work, exist_ok=True)
    return dnswire


def nsdcmp(a):
    dnswire = setup(a)
    h, w = a.harness, a.work
    topo, mmdb = f"{h}/topology.json", a.mmdb
    zdir = f"{w}/zones"
    os.makedirs(zdir, exist_ok=True)
    # the zone file popdns.sh writes (the peers' zone + fallback www A/AAAA), used by both
    pd = f"{w}/popdns"
    os.makedirs(pd, exist_ok=True)
    cmd_p = start_popdns(h, pd, a.port, topo, mmdb, zdir)
    zonefile = f"{zdir}/{ZONE}.zone"
    rnd = random.Random(1)
    nx = [f"nx{rnd.getrandbits(40):010x}.{ZONE}" for _ in range(1000)]
    write_queries(f"{w}/static.bin", [f"static.{ZONE}"], "A", dnswire)
    write_queries(f"{w}/nxdomain.bin", nx, "A", dnswire)
    wls = [("static", f"{w}/static.bin"), ("nxdomain", f"{w}/nxdomain.bin")]
    serve_and_measure(h, "popdns", cmd_p, a.port, pd, wls, a.out, dnswire,
                      extra={"test": "nsdcmp"})
    nd = f"{w}/nsd"
    os.makedirs(nd, exist_ok=True)
    cmd_n = start_nsd(h, nd, a.port + 1, zonefile)
    serve_and_measure(h, "nsd", cmd_n, a.port + 1, nd, wls, a.out, dnswire,
                      extra={"test": "nsdcmp"})


def bigzone(a):
    dnswire = setup(a)
    h, w = a.harness, a.work
    topo, mmdb = f"{h}/topology.json", a.mmdb
    n = a.names
    zdir = f"{w}/zones"
    os.makedirs(zdir, exist_ok=True)
    zonefile = f"{zdir}/{ZONE}.zone"
    t0 = time.monotonic()
    tj = json.load(open(topo))
    with open(zonefile, "w") as f:
        f.write(f"$ORIGIN {ZONE}.\n$TTL 300\n"
                f"@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 7200 1800 1209600 300\n"
                f"@ IN NS ns1.{ZONE}.\nns1 IN A {tj['ns']['A']}\n"
                f"static IN A {tj['static']['A']}\nstatic IN AAAA {tj['static']['AAAA']}\n")
        buf = []
        for i in range(n):
            buf.append(f"h{i:07d} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
            if len(buf) >= 100000:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))
    size = os.path.getsize(zonefile)
    log(f"wrote {zonefile}: {n} A names + SOA/NS/static, {size / 1e6:.1f} MB "
        f"in {time.monotonic() - t0:.1f} s")
    rnd = random.Random(2)
    nq = a.queries
    exist = [f"h{rnd.randrange(n):07d}.{ZONE}" for _ in range(nq)]
    # non-existing: same shape, a different first letter and random digits
    missing = [f"m{rnd.randrange(10 ** 7):07d}.{ZONE}" for _ in range(nq)]
    write_queries(f"{w}/exist.bin", exist, "A", dnswire)
    write_queries(f"{w}/missing.bin", missing, "A", dnswire)
    wls = [("1M-exist", f"{w}/exist.bin"), ("1M-nxdomain", f"{w}/missing.bin")]
    extra = {"test": "bigzone", "names": n, "zone_bytes": size}
    servers = a.servers.split()
    for i, name in enumerate(servers):
        d = f"{w}/{name}"
        os.makedirs(d, exist_ok=True)
        port = a.port + i
        if name == "popdns":
            cmd = start_popdns(h, d, port, topo, mmdb, zdir)
        elif name == "nsd":
            cmd = start_nsd(h, d, port, zonefile)
        elif name == "knot":
            cmd = start_knot(h, d, port, zonefile)
        else:
            raise SystemExit(f"unknown server {name}")
        serve_and_measure(h, name, cmd, port, d, wls, a.out, dnswire, extra=extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=["nsdcmp", "bigzone"])
    ap.add_argument("--harness", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mmdb", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int, default=25340)
    ap.add_argument("--names", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--servers", default="popdns nsd knot")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    {"nsdcmp": nsdcmp, "bigzone": bigzone}[a.phase](a)


if __name__ == "__main__":
    main()
