#!/usr/bin/env python3
"""Ratio table from the JSON lines of bench/scale.sh: for each pair of servers
(bigger ÷ smaller deployment) and offered rate, the medians over the repetitions of
user and total (user + kernel) instructions, server CPU µs and q/s per answered query.

Usage: scale-report.py scale.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict

PAIRS = [
    ("1,000 ÷ 10 PoPs (even spread)", "pops-1000", "pops-10"),
    ("1,000 ÷ 10 PoPs (the 1,000 most populous cities)", "pops-1000-cities", "pops-10"),
    ("1,000 ÷ 10 PoPs (all on one line)", "pops-1000-line", "pops-10"),
    ("10,000 ÷ 1 services", "svc-10000", "svc-1"),
    ("NXDOMAIN, +1M names ÷ small zone", "zone-1m", "zone-small"),
]


def main():
    runs = defaultdict(list)
    for line in open(sys.argv[1]):
        if line.startswith("{"):
            r = json.loads(line)
            runs[(r["server"], r["rate"])].append(r)
    rates = sorted({rate for _, rate in runs}, key=lambda r: (r == 0, r))

    def med(server, rate, f):
        rs = runs.get((server, rate), [])
        vals = [f(r) for r in rs if f(r) is not None]
        return statistics.median(vals) if vals else None

    user = lambda r: r.get("instructions_u_per_query")
    total = lambda r: (r["instructions_u_per_query"] + r["instructions_k_per_query"]
                       if "instructions_u_per_query" in r else None)
    print("| pair | offered rate | user instructions | user instr ratio | total instr ratio | CPU µs ratio | q/s ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, big, small in PAIRS:
        for rate in rates:
            cells = []
            for f in (user, total, lambda r: r["cpu_us_per_query"], lambda r: r["qps"]):
                b, s = med(big, rate, f), med(small, rate, f)
                cells.append(None if b is None or not s else b / s)
            ub, us = med(big, rate, user), med(small, rate, user)
            if all(c is None for c in cells):
                continue
            fmt = lambda c: "-" if c is None else f"{c:.2f}"
            pair_instr = "-" if ub is None else f"{us:,.0f} → {ub:,.0f}"
            print(f"| {label} | {rate or 'unthrottled'} | {pair_instr} | " + " | ".join(fmt(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
