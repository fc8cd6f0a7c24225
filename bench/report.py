#!/usr/bin/env python3
"""Build bench/RESULTS.md from the outputs of bench/run.sh (stdlib only).

  report.py --scratch DIR --out bench/RESULTS.md [--threshold 0.15]

Reads DIR/peers-results/{results.jsonl,results.contaminated.jsonl,table.md,env.txt,run/*/verify.md},
DIR/extra/{nsdcmp,bigzone}.jsonl, DIR/alloc.txt, DIR/alloc-cpumon.txt and DIR/meta.md.

Per-query server CPU:
  - peers harness: server process CPU (cpumon, utime+stime of the server pid over the run)
    / qps;
  - extra tests: utime+stime of every server process (/proc/PID/stat, before/after the
    dnsperf run) / queries completed.
"core µs/q" is the server core's busy fraction (/proc/stat, includes softirq work of
loopback delivery) / qps.
"""
import argparse
import glob
import json
import os
import statistics


def med(xs):
    xs = [x for x in xs if x is not None and x == x]
    return statistics.median(xs) if xs else float("nan")


def load(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


def fmt(x, nd=0):
    if x is None or x != x:
        return "-"
    return f"{x:,.{nd}f}"


def group(rows, thr):
    g = {}
    for r in rows:
        # failed runs (no answers, > 5 % lost) are listed separately, never in the medians
        if not r.get("qps") or not r.get("sent") or (r.get("lost") or 0) > 0.05 * r["sent"]:
            continue
        g.setdefault((r["peer"], r.get("threads", "1"), r["workload"]), []).append(r)
    out = {}
    for k, rs in g.items():
        clean = [r for r in rs if r.get("others_cores", 0) <= thr]
        use = clean or rs
        us = [r.get("server_us_per_q") if r.get("server_us_per_q") is not None else
              (r["server_cores"] * 1e6 / r["qps"] if r.get("qps") else None) for r in use]
        core = [r["server_cpu_busy"] * 1e6 / r["qps"] if r.get("qps") else None for r in use]
        out[k] = dict(
            n=len(use), contaminated=len(rs) - len(clean), only_contaminated=not clean,
            qps=med([r["qps"] for r in use]), qmin=min(r["qps"] for r in use),
            qmax=max(r["qps"] for r in use), us=med(us), core_us=med(core),
            lat=med([r["lat_avg"] for r in use]), latmax=max(r["lat_max"] for r in use),
            lost=sum(int(r["lost"] or 0) for r in use), sbusy=med([r["server_cpu_busy"] for r in use]),
            lbusy=med([r["load_cpu_busy"] for r in use]),
            others=max(r.get("others_cores", 0) for r in use))
    return out


def limited(c):
    if c["sbusy"] >= 0.95 and c["lbusy"] >= 0.95:
        return "both cores"
    if c["sbusy"] >= 0.95:
        return "server core"
    if c["lbusy"] >= 0.95:
        return "dnsperf core"
    return "neither"


def cell_table(g, keys, lines):
    lines.append("| server | threads | workload | qps (median) | qps min–max | server CPU µs/query "
                 "(process) | server core µs/query (busy, incl. softirq) | lat avg ms | lat max ms "
                 "(worst) | lost (total) | server / load core busy | limited by | runs | "
                 "others' CPU max (cores) |")
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for k in keys:
        if k not in g:
            continue
        c = g[k]
        warn = " ⚠ only contaminated runs" if c["only_contaminated"] else ""
        lines.append(
            f"| {k[0]} | {k[1]} | {k[2]} | {fmt(c['qps'])} | {fmt(c['qmin'])}–{fmt(c['qmax'])} | "
            f"{fmt(c['us'], 2)} | {fmt(c['core_us'], 2)} | {fmt(c['lat'] * 1000, 3)} | "
            f"{fmt(c['latmax'] * 1000, 3)} | {c['lost']} | {c['sbusy']:.2f} / {c['lbusy']:.2f} | "
            f"{limited(c)} | {c['n']} | {c['others']:.2f}{warn} |")


def ratio_table(g, base, others, threads, workloads, lines):
    lines.append("| popdns ÷ peer | threads | workload | qps ratio (higher = popdns faster) | "
                 "server CPU µs/query ratio (lower = popdns cheaper) | "
                 "core µs/query ratio | avg latency ratio |")
    lines.append("|---|---|---|---:|---:|---:|---:|")
    for p in others:
        for t in threads:
            for w in workloads:
                a, b = g.get((base, t, w)), g.get((p, t, w))
                if not a or not b:
                    continue
                warn = " ⚠ contaminated runs only: not a result" \
                    if a["only_contaminated"] or b["only_contaminated"] else ""
                lines.append(
                    f"| popdns / {p} | {t} | {w}{warn} | {a['qps'] / b['qps']:.2f} | "
                    f"{a['us'] / b['us']:.2f} | {a['core_us'] / b['core_us']:.2f} | "
                    f"{a['lat'] / b['lat']:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threshold", type=float, default=0.15)
    a = ap.parse_args()
    S, thr = a.scratch, a.threshold
    L = ["# popdns benchmark results", ""]
    meta = os.path.join(S, "meta.md")
    if os.path.exists(meta):
        L += open(meta).read().rstrip().splitlines() + [""]
    phases = os.path.join(S, "phases.md")
    if os.path.exists(phases):
        L += ["Phases run (UTC; the figures below come from the latest run of each phase, "
              "peers re-runs with KEEP=1 add to the earlier runs):", ""]
        L += open(phases).read().rstrip().splitlines() + [""]

    # ---------------------------------------------------------------- peers
    pr = os.path.join(S, "peers-results")
    rows = load(os.path.join(pr, "results.jsonl"))
    bad = load(os.path.join(pr, "results.contaminated.jsonl"))
    if rows:
        g = group(rows, thr)
        peers = sorted({k[0] for k in g}, key=lambda p: (p != "popdns", p))
        threads = sorted({k[1] for k in g}, key=lambda t: t != "1")
        wls = [w for w in ("static", "www-ecs", "www-noecs") if any(k[2] == w for k in g)]
        L += ["## 1. GeoDNS peers (shared harness): popdns vs gdnsd vs Knot", "",
              "Shared harness `peers.sh` (a writable copy of /work/shared/bench), same zone, "
              "same test mmdb, same 5 PoPs, same dnsperf matrix for every server. "
              "Server pinned to core 1 (cpuset + taskset), dnsperf to core 0. "
              "Medians over the clean runs of each cell.", ""]
        L.append("### Ratios (same session)")
        L.append("")
        ratio_table(g, "popdns", [p for p in peers if p != "popdns"], threads, wls, L)
        L += ["", "### Figures", ""]
        keys = [(p, t, w) for p in peers for t in threads for w in wls]
        cell_table(g, keys, L)
        L += [""]
        env = os.path.join(pr, "env.txt")
        if os.path.exists(env):
            L += ["Harness env.txt:", "", "```"] + open(env).read().rstrip().splitlines() + ["```", ""]
        L += ["Correctness (`verify.py`):", "", "```"]
        for f in sorted(glob.glob(os.path.join(pr, "run", "*", "verify.md"))):
            L += [l for l in open(f).read().splitlines() if l.startswith("SUMMARY")]
        L += ["```", ""]
        L += [f"Contamination: {len(bad)} run(s) had other processes above {thr} cores and were "
              "set aside and re-run (`KEEP=1`); they are in `results.contaminated.jsonl`."]
        for r in bad:
            L.append(f"- {r['peer']} t{r['threads']} {r['workload']} rep{r['rep']}: "
                     f"others {r.get('others_cores', 0):.2f} cores, qps {fmt(r.get('qps'))}")
        failed = load(os.path.join(pr, "results.failed.jsonl"))
        if failed:
            L.append(f"Failed runs (no answers or > 5 % lost), set aside and re-run: {len(failed)}")
            for r in failed:
                L.append(f"- {r['peer']} t{r['threads']} {r['workload']} rep{r['rep']}: "
                         f"qps {fmt(r.get('qps'))}, lost {fmt(r.get('lost'))} of "
                         f"{fmt(r.get('sent'))}, others {r.get('others_cores', 0):.2f} cores")
        left = [r for r in rows if r.get("others_cores", 0) > thr]
        if left:
            L.append(f"- still contaminated after re-runs (kept, flagged ⚠): {len(left)}")
        L += [""]
        tbl = os.path.join(pr, "table.md")
        if os.path.exists(tbl):
            L += ["<details><summary>The harness's own table (summarize.py)</summary>", ""]
            L += open(tbl).read().rstrip().splitlines() + ["", "</details>", ""]

    # ---------------------------------------------------------------- NSD
    ex = os.path.join(S, "extra")
    nrows = [r for r in load(os.path.join(ex, "nsdcmp.jsonl")) if r.get("kind") == "load-run"]
    if nrows:
        g = group(nrows, thr)
        L += ["## 2. Plain zone data: popdns vs NSD", "",
              "Same zone file (the harness zone as popdns.sh writes it), popdns `workers = 1`, "
              "NSD 4.6.1 `server-count: 1` (RRL off: Debian builds NSD with RRL at 200 q/s, "
              "popdns has none yet). Both pinned to core 1 with pin.sh, dnsperf binary input "
              "on core 0. `static` = static.cdn.example A with EDNS0; `nxdomain` = 1,000 "
              "random non-existing names under cdn.example, rotating. Server CPU per query "
              "sums all NSD processes (parent, server child, xfrd).", ""]
        ratio_table(g, "popdns", ["nsd"], ["1"], ["static", "nxdomain"], L)
        L += [""]
        cell_table(g, [(p, "1", w) for p in ("popdns", "nsd") for w in ("static", "nxdomain")], L)
        bad = [r for r in nrows if r.get("contaminated")]
        L += ["", f"Contaminated attempts (re-run automatically): {len(bad)}"]
        for r in bad:
            L.append(f"- {r['peer']} {r['workload']} rep{r['rep']} attempt {r['attempt']}: "
                     f"others {r['others_cores']:.2f} cores, qps {fmt(r['qps'])}")
        L += [""]

    # ---------------------------------------------------------------- big zone
    ball = load(os.path.join(ex, "bigzone.jsonl"))
    if ball:
        loads = [r for r in ball if r.get("kind") == "load"]
        runs = [r for r in ball if r.get("kind") == "load-run"]
        g = group(runs, thr)
        n = loads[0].get("names") if loads else None
        zb = loads[0].get("zone_bytes") if loads else None
        L += [f"## 3. Large zone: {fmt(n)} names", "",
              f"Zone: SOA, NS, ns1 A, static A/AAAA and {fmt(n)} names `hNNNNNNN IN A 10.x.y.z` "
              f"under cdn.example ({fmt((zb or 0) / 1e6, 1)} MB). popdns `workers = 1` (with the "
              "www service and test mmdb as in section 1), NSD `server-count: 1`, Knot "
              "`udp-workers: 1`, `background-workers: 1`, all pinned to core 1. Load time = "
              "process start → first authoritative NOERROR SOA answer (polled every 10 ms). "
              "Memory 1 s after that: RSS (sum over the server's processes) and PSS (shares "
              "NSD's copy-on-write pages between its forks). Queries: 100,000 random existing "
              "names (`1M-exist`) and 100,000 random non-existing names of the same shape "
              "(`1M-nxdomain`), binary input.", ""]
        L.append("| server | load time s | CPU during load s | RSS MiB | PSS MiB | processes | "
                 "qps existing | µs/query existing | qps NXDOMAIN | µs/query NXDOMAIN |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in loads:
            e, x = g.get((r["peer"], "1", "1M-exist")), g.get((r["peer"], "1", "1M-nxdomain"))
            L.append(f"| {r['peer']} | {r['load_s']:.2f} | {r['load_cpu_s']:.2f} | "
                     f"{r['rss_kb'] / 1024:.1f} | {r['pss_kb'] / 1024:.1f} | {r['nprocs']} | "
                     f"{fmt(e and e['qps'])} | {fmt(e and e['us'], 2)} | "
                     f"{fmt(x and x['qps'])} | {fmt(x and x['us'], 2)} |")
        L += [""]
        others = [p for p in ("nsd", "knot") if any(k[0] == p for k in g)]
        ratio_table(g, "popdns", others, ["1"], ["1M-exist", "1M-nxdomain"], L)
        L += [""]
        keys = [(r["peer"], "1", w) for r in loads for w in ("1M-exist", "1M-nxdomain")]
        cell_table(g, keys, L)
        bad = [r for r in runs if r.get("contaminated")]
        L += ["", f"Contaminated attempts (re-run automatically): {len(bad)}"]
        for r in bad:
            L.append(f"- {r['peer']} {r['workload']} rep{r['rep']} attempt {r['attempt']}: "
                     f"others {r['others_cores']:.2f} cores, qps {fmt(r['qps'])}")
        L += [""]

    # ---------------------------------------------------------------- alloc
    al = os.path.join(S, "alloc.txt")
    if os.path.exists(al):
        L += ["## 4. Allocations and time per query in `handle` (no sockets)", "",
              "`cargo bench -p popdns-server --bench alloc` (crates/server/benches/alloc.rs): a "
              "counting `#[global_allocator]` around `System`; a real Snapshot built with "
              "`popdns_config::load` + `popdns_server::build` from a temp config, zone and a "
              "test mmdb written by `popdns_mmdbgen` (geoip/test-city.csv); then "
              "`popdns_server::handle` in a loop with one reused output buffer, after a warm-up. "
              "ns/query is single-threaded wall time on a shared 2-core box (unpinned).", "", "```"]
        L += open(al).read().rstrip().splitlines() + ["```", ""]
        cm = os.path.join(S, "alloc-cpumon.txt")
        if os.path.exists(cm):
            L += [f"Other processes during the alloc bench: `{open(cm).read().strip()}`", ""]
    notes = os.path.join(os.path.dirname(a.out), "NOTES.md")
    if os.path.exists(notes):
        L += open(notes).read().rstrip().splitlines() + [""]
    open(a.out, "w").write("\n".join(L) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
