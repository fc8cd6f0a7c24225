#!/usr/bin/env python3
"""Markdown tables from the JSON lines of bench/fixed-rate.sh (or bench/scale.sh).

Usage: fixed-rate-report.py RESULTS.jsonl [--base popdns] [--peers gdnsd knot]

Per (offered rate, workload, server): median over the repetitions of the server CPU µs per
answered query, q/s, average latency; the worst max latency; lost queries summed; RSS at the
end. Then the ratios base ÷ peer in the same session (CPU: lower is better for the base;
q/s: higher is better).
"""
import argparse
import json
import statistics
from collections import defaultdict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--base", default="popdns")
    ap.add_argument("--peers", nargs="*", default=["gdnsd", "knot"])
    a = ap.parse_args()
    cells = defaultdict(list)
    order = []
    for line in open(a.results):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        k = (r["rate"], r["workload"], r["server"])
        if k not in cells:
            order.append(k)
        cells[k].append(r)
    med = {}
    for k, rs in cells.items():
        m = lambda f: statistics.median(x[f] for x in rs)
        med[k] = dict(
            runs=len(rs), cpu=m("cpu_us_per_query"), qps=m("qps"), lat=m("lat_avg_ms"),
            latmax=max(x["lat_max_ms"] for x in rs), lost=sum(x["lost"] for x in rs),
            sent=sum(x["completed"] + x["lost"] for x in rs), rss=max(x.get("rss_kib", 0) for x in rs),
            instr_u=m("instructions_u_per_query") if "instructions_u_per_query" in rs[0] else None,
        )
    print("| offered rate | workload | server | runs | server CPU µs/query | q/s | avg latency ms | max latency ms | lost / sent | RSS MiB | user instructions/query |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in order:
        rate, wl, srv = k
        c = med[k]
        iu = "" if c["instr_u"] is None else f"{c['instr_u']:.0f}"
        print(f"| {rate or 'unthrottled'} | {wl} | {srv} | {c['runs']} | {c['cpu']:.2f} | {c['qps']:,.0f} | "
              f"{c['lat']:.3f} | {c['latmax']:.2f} | {c['lost']} / {c['sent']} | {c['rss'] / 1024:.1f} | {iu} |")
    print()
    print(f"Ratios {a.base} ÷ peer, same session (CPU per query: ≤ 1.00 means {a.base} is as lean or leaner; "
          "q/s: ≥ 1.00 means it answers as many or more).")
    print()
    print("| offered rate | workload | peer | CPU µs/query ratio | q/s ratio | avg latency ratio | max latency ratio |")
    print("|---|---|---|---:|---:|---:|---:|")
    seen = set()
    for rate, wl, _ in order:
        for p in a.peers:
            b, o = med.get((rate, wl, a.base)), med.get((rate, wl, p))
            if not b or not o or (rate, wl, p) in seen:
                continue
            seen.add((rate, wl, p))
            print(f"| {rate or 'unthrottled'} | {wl} | {p} | {b['cpu'] / o['cpu']:.2f} | {b['qps'] / o['qps']:.2f} | "
                  f"{b['lat'] / o['lat']:.2f} | {b['latmax'] / o['latmax']:.2f} |")
    if any("instructions_u_per_query" in rs[0] for rs in cells.values()):
        perf_tables(cells, order, a.base, a.peers)


def perf_tables(cells, order, base, peers):
    """With PERF=1: instructions per query (deterministic) and the best run's cycles
    per query (this machine's speed is bimodal: the same instructions take either
    about 4,200 or about 7,000 cycles per query, per run, whatever the server)."""
    def ratio(x, y):
        return f"{x / y:.2f}" if x and y else "-"

    servers = [base] + peers
    rows = sorted({(r, w) for r, w, _ in order}, key=lambda k: (k[0] == 0, k[0], [w for _, w, _ in order].index(k[1])))
    print()
    print("Instructions per answered query, user + kernel (median over the runs), and the ratio of the totals.")
    print()
    print("| offered rate | workload | " + " | ".join(servers) + " | " +
          " | ".join(f"{base} ÷ {p}" for p in peers) + " |")
    print("|---|---|" + "---:|" * (len(servers) + len(peers)))
    for rate, wl in rows:
        u, k, t = {}, {}, {}
        for s in servers:
            rs = cells.get((rate, wl, s), [])
            if rs and "instructions_u_per_query" in rs[0]:
                u[s] = statistics.median(x["instructions_u_per_query"] for x in rs)
                k[s] = statistics.median(x["instructions_k_per_query"] for x in rs)
                t[s] = u[s] + k[s]
        cols = [f"{u[s]:.0f} + {k[s]:.0f}" if s in t else "-" for s in servers]
        rats = [ratio(t.get(base), t.get(p)) for p in peers]
        print(f"| {rate or 'unthrottled'} | {wl} | " + " | ".join(cols + rats) + " |")
    print()
    print("Cycles per answered query in each server's fastest run (the machine's fast mode), and ratios.")
    print()
    print("| offered rate | workload | " + " | ".join(servers) + " | " +
          " | ".join(f"{base} ÷ {p}" for p in peers) + " |")
    print("|---|---|" + "---:|" * (len(servers) + len(peers)))
    for rate, wl in rows:
        c = {}
        for s in servers:
            rs = [x for x in cells.get((rate, wl, s), []) if "cycles_per_query" in x]
            if rs:
                c[s] = min(x["cycles_per_query"] for x in rs)
        cols = [f"{c[s]:.0f}" if s in c else "-" for s in servers]
        rats = [ratio(c.get(base), c.get(p)) for p in peers]
        print(f"| {rate or 'unthrottled'} | {wl} | " + " | ".join(cols + rats) + " |")


if __name__ == "__main__":
    main()
