# measure.sh — sourced by fixed-rate.sh and scale.sh: one dnsperf run against a running
# server at a fixed offered rate, and the server's CPU time per answered query.
#
# measure SERVER WORKLOAD REP PID PORT QUERYFILE OUTFILE [RATE]
#   RATE (default $RATE; 0 = unthrottled). dnsperf is pinned with $PIN_LOAD and runs
#   $DURATION seconds; CPU is utime+stime of PID from /proc/PID/stat (every thread,
#   including exited ones); PERF=1 adds `perf stat` instruction and cycle counts per query.
#   Prints one JSON line: completed, lost, qps, latency, cpu_us_per_query, rss_kib.
measure() {
    local name=$1 wl=$2 rep=$3 pid=$4 port=$5 file=$6 out=$7 rate=${8:-$RATE} t0 t1 perfpid=""
    local qopt=() 
    [ "$rate" != 0 ] && qopt=(-Q "$rate")
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    if [ "${PERF:-0}" = 1 ]; then
        perf stat -x, -e instructions:u,instructions:k,cycles -p "$pid" -o "$out.perf" \
            -- sleep "$((DURATION + 1))" &
        perfpid=$!
    fi
    $PIN_LOAD dnsperf -s 127.0.0.1 -p "$port" -B -d "$file" -l "$DURATION" "${qopt[@]}" \
        -c 16 -q 200 -t 1 -O suppress=timeouts >"$out" 2>&1
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    [ -n "$perfpid" ] && wait "$perfpid"
    python3 - "$name" "$wl" "$rep" "$rate" "$((t1 - t0))" "$(getconf CLK_TCK)" "$out" \
        "$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")" <<'PYEOF'
import json, re, sys, os
p, wl, rep, rate, dt, hz, out, rss = sys.argv[1:]
txt = open(out).read()
g = lambda pat: float(re.search(pat, txt).group(1))
done, lost = g(r"Queries completed:\s+(\d+)"), g(r"Queries lost:\s+(\d+)")
r = dict(server=p, workload=wl, rep=int(rep), rate=int(rate), completed=int(done),
         lost=int(lost), qps=g(r"Queries per second:\s+([\d.]+)"),
         lat_avg_ms=g(r"Average Latency \(s\):\s+([\d.]+)") * 1e3,
         lat_max_ms=g(r"Average Latency \(s\):.*max ([\d.]+)") * 1e3,
         cpu_s=int(dt) / int(hz), rss_kib=int(rss or 0))
r["cpu_us_per_query"] = r["cpu_s"] * 1e6 / max(done, 1)
if os.path.exists(out + ".perf"):
    for line in open(out + ".perf"):
        f = line.strip().split(",")
        if len(f) > 2 and f[0].isdigit():
            r[f[2].replace(":", "_") + "_per_query"] = int(f[0]) / max(done, 1)
print(json.dumps(r))
PYEOF
}
