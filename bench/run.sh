#!/usr/bin/env bash
# bench/run.sh — popdns performance figures side by side with its peers (issue 6).
#
#   bash bench/run.sh                       # quick defaults: about 20-25 min on 2 cores
#   DURATION=15 REPS=3 bash bench/run.sh    # the shared harness's full settings
#   PHASES="nsd report" bash bench/run.sh   # only some phases (results of others are kept)
#
# Phases (PHASES, in this order):
#   build    cargo build --release -p popdns (CARGO_TARGET_DIR, default /tmp/target-bench)
#   alloc    cargo bench -p popdns-server --bench alloc (allocations + ns per query in handle)
#   peers    the shared GeoDNS harness (/work/shared/bench/peers.sh, run from a writable copy
#            because it keeps its venv beside itself) for $PEERS with bench/servers/popdns.sh;
#            runs with other processes above QUIET_THRESHOLD cores are re-run with KEEP=1
#            (up to RERUNS times)
#   nsd      popdns vs NSD on the same zone file: static A and NXDOMAIN (bench/extra.py)
#   bigzone  a zone of BIG_NAMES names: load time, RSS, q/s for existing and non-existing
#            names, for $BIG_SERVERS (bench/extra.py)
#   report   writes bench/RESULTS.md (bench/report.py; bench/NOTES.md is appended)
#
# Knobs (environment): DURATION=10 REPS=2 PEERS="popdns gdnsd knot" THREADS="1 default"
#   WORKLOADS="static www-ecs www-noecs" BIG_NAMES=1000000 BIG_QUERIES=100000
#   BIG_SERVERS="popdns nsd knot" QUIET_THRESHOLD=0.15 QUIET_WAIT=120 RERUNS=2
#   SCRATCH=/tmp/popdns-bench SHARED=/work/shared/bench CLIENTS=16 OUTSTANDING=200 TIMEOUT=1
#   KEEP=1 (peers: keep earlier clean runs and re-run only missing/contaminated ones)
#   RESULTS_MD=$HERE/RESULTS.md (where the report goes)
#
# All traffic goes to 127.0.0.1; every load run is bounded by dnsperf -l $DURATION.
# Server on core SERVER_CPU=1, dnsperf on core LOAD_CPU=0, as in the shared harness.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED:-/work/shared/bench}
SCRATCH=${SCRATCH:-/tmp/popdns-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-bench}
export POPDNS_BIN=${POPDNS_BIN:-$CARGO_TARGET_DIR/release/popdns}
export DURATION=${DURATION:-10} REPS=${REPS:-2}
export CLIENTS=${CLIENTS:-16} OUTSTANDING=${OUTSTANDING:-200} TIMEOUT=${TIMEOUT:-1}
export SERVER_CPU=${SERVER_CPU:-1} LOAD_CPU=${LOAD_CPU:-0}
export QUIET_THRESHOLD=${QUIET_THRESHOLD:-0.15} QUIET_WAIT=${QUIET_WAIT:-120}
PEERS=${PEERS:-"popdns gdnsd knot"}
THREADS=${THREADS:-"1 default"}
WORKLOADS=${WORKLOADS:-"static www-ecs www-noecs"}
PHASES=${PHASES:-"build alloc peers nsd bigzone report"}
BIG_NAMES=${BIG_NAMES:-1000000}
BIG_QUERIES=${BIG_QUERIES:-100000}
BIG_SERVERS=${BIG_SERVERS:-"popdns nsd knot"}
RERUNS=${RERUNS:-2}
KEEP=${KEEP:-0}
HARNESS=$SCRATCH/harness
PY=$HARNESS/.venv/bin/python

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
has() { case " $PHASES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# one line per phase run, kept across invocations (report.py prints it): when, what, which tree
phase_log() {
    printf -- '- %s: %s (popdns git %s%s; DURATION=%s REPS=%s)\n' "$(date -u +%FT%TZ)" "$1" \
        "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ', tree with uncommitted changes')" \
        "$DURATION" "$REPS" >>"$SCRATCH/phases.md"
}

mkdir -p "$SCRATCH" "$SCRATCH/extra"

# ---------------------------------------------------------------- harness copy + venv
harness() {
    mkdir -p "$HARNESS"
    # the shared folder is read-only and peers.sh keeps its venv beside itself
    (cd "$SHARED" && tar --exclude=.venv -cf - .) | (cd "$HARNESS" && tar -xf -)
    chmod -R u+w "$HARNESS"
    if [ ! -x "$PY" ] || ! "$PY" -c 'import mmdb_writer, maxminddb' 2>/dev/null; then
        log "python venv $HARNESS/.venv (mmdb-writer, maxminddb)"
        python3 -m venv "$HARNESS/.venv"
        "$HARNESS/.venv/bin/pip" install -q 'mmdb-writer==0.2.7' 'netaddr==1.3.0' 'maxminddb==3.2.0'
    fi
    for b in dnsperf dig gdnsd knotd nsd nsd-checkconf taskset; do
        command -v "$b" >/dev/null || { log "missing $b (see $SHARED/README.md)"; exit 1; }
    done
}
harness

# data for the extra tests (the test mmdb of the harness, written the same way)
DATA=$SCRATCH/data
if [ ! -s "$DATA/test.mmdb" ]; then
    mkdir -p "$DATA"
    "$PY" "$HARNESS/make_test_mmdb.py" --topology "$HARNESS/topology.json" --out "$DATA" >&2
fi

{
    echo "Report written by \`bench/run.sh\` on $(date -u +%FT%TZ) (popdns git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ', with uncommitted changes in the tree'))."
    echo
    echo "Machine: $(uname -r), $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), shared with other jobs."
    echo "dnsperf $(dnsperf -h 2>&1 | awk '/^Version/{print $2}'), gdnsd $(dpkg-query -W -f='${Version}' gdnsd 2>/dev/null), knot $(dpkg-query -W -f='${Version}' knot 2>/dev/null), nsd $(dpkg-query -W -f='${Version}' nsd 2>/dev/null), $(rustc --version 2>/dev/null)."
    echo
    echo "Settings: DURATION=$DURATION REPS=$REPS CLIENTS=$CLIENTS OUTSTANDING=$OUTSTANDING TIMEOUT=$TIMEOUT PEERS=\"$PEERS\" THREADS=\"$THREADS\" BIG_NAMES=$BIG_NAMES BIG_QUERIES=$BIG_QUERIES BIG_SERVERS=\"$BIG_SERVERS\" QUIET_THRESHOLD=$QUIET_THRESHOLD RERUNS=$RERUNS."
    echo "Every dnsperf run: \`pin.sh $LOAD_CPU dnsperf -s 127.0.0.1 -p PORT -B -d FILE -l $DURATION -c $CLIENTS -q $OUTSTANDING -T 1 -t $TIMEOUT\`; every server: \`pin.sh $SERVER_CPU SERVER ...\`."
    echo
    echo "Commands:"
    echo
    echo '```sh'
    echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release -p popdns"
    echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo bench -p popdns-server --bench alloc"
    echo "SKIP_INSTALL=1 WORK=$SCRATCH/peers RESULTS=$SCRATCH/peers-results EXTRA_SERVERS_DIR=$HERE/servers PEERS=\"$PEERS\" THREADS=\"$THREADS\" DURATION=$DURATION REPS=$REPS bash $HARNESS/peers.sh   # $HARNESS = copy of $SHARED"
    echo "KEEP=1 ... bash $HARNESS/peers.sh    # re-runs of contaminated runs, same settings"
    echo "python3 $HERE/extra.py nsdcmp --harness $HARNESS --work $SCRATCH/extra/nsdcmp --mmdb $DATA/test.mmdb --out $SCRATCH/extra/nsdcmp.jsonl"
    echo "python3 $HERE/extra.py bigzone --harness $HARNESS --work $SCRATCH/extra/bigzone --mmdb $DATA/test.mmdb --out $SCRATCH/extra/bigzone.jsonl --names $BIG_NAMES --queries $BIG_QUERIES --servers \"$BIG_SERVERS\""
    echo '```'
    echo
    echo "The whole sequence: \`DURATION=$DURATION REPS=$REPS bash bench/run.sh\`."
} >"$SCRATCH/meta.md"

# ---------------------------------------------------------------- build
if has build; then
    log "cargo build --release -p popdns (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    phase_log "build started"
    (cd "$ROOT" && cargo build --release -p popdns)
fi
[ -x "$POPDNS_BIN" ] || { log "no popdns binary at $POPDNS_BIN"; exit 1; }

# ---------------------------------------------------------------- alloc bench
if has alloc; then
    log "cargo bench -p popdns-server --bench alloc"
    phase_log "alloc started"
    (cd "$ROOT" && cargo bench -p popdns-server --bench alloc --no-run) >&2
    (cd "$ROOT" && ALLOC_BENCH_ITERS=${ALLOC_BENCH_ITERS:-1000000} \
        cargo bench -p popdns-server --bench alloc 2>/dev/null) >"$SCRATCH/alloc.txt" &
    apid=$!
    sleep 0.3
    # other processes' CPU while it runs (the bench and cargo excluded)
    python3 "$HARNESS/cpumon.py" --duration 3 --exclude $apid $(pgrep -P $apid || true) \
        $(for c in $(pgrep -P $apid || true); do pgrep -P "$c" || true; done) \
        >"$SCRATCH/alloc-cpumon.txt" || true
    wait $apid
    cat "$SCRATCH/alloc.txt" >&2
fi

# ---------------------------------------------------------------- peers
if has peers; then
    # runs to redo: other processes above QUIET_THRESHOLD (the harness's KEEP=1 moves those
    # to results.contaminated.jsonl itself), and failed runs (no answers, or more than 5 %
    # lost: e.g. a server that stopped answering), which the harness would keep; we move
    # those to results.failed.jsonl first. Prints how many runs are bad or missing.
    contaminated() {
        python3 - "$SCRATCH/peers/results.jsonl" "$QUIET_THRESHOLD" \
            "$(( $(wc -w <<<"$PEERS") * $(wc -w <<<"$THREADS") * $(wc -w <<<"$WORKLOADS") * REPS ))" <<'PYEOF'
import json, sys
path, thr, want = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
try:
    rows = [json.loads(l) for l in open(path) if l.strip()]
except OSError:
    rows = []
failed = lambda r: not r.get("qps") or not r.get("sent") or (r.get("lost") or 0) > 0.05 * r["sent"]
bad = [r for r in rows if failed(r)]
if bad:
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows if not failed(r))
    with open(path.replace(".jsonl", ".failed.jsonl"), "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in bad)
good = [r for r in rows if not failed(r) and r.get("others_cores", 0) <= thr]
print(len(bad) + sum(1 for r in rows if not failed(r) and r.get("others_cores", 0) > thr)
      + max(0, want - len(rows)))
PYEOF
    }
    run_peers() {
        SKIP_INSTALL=1 WORK=$SCRATCH/peers RESULTS=$SCRATCH/peers-results \
            EXTRA_SERVERS_DIR=$HERE/servers PEERS="$PEERS" THREADS="$THREADS" \
            WORKLOADS="$WORKLOADS" KEEP=$1 bash "$HARNESS/peers.sh" >"$SCRATCH/peers-table-$2.md" \
            || log "peers.sh exit $?"
    }
    log "peers: $PEERS (threads $THREADS), $WORKLOADS, ${DURATION}s x $REPS"
    phase_log "peers started KEEP=$KEEP"
    run_peers "$KEEP" 0
    for i in $(seq 1 "$RERUNS"); do
        [ -s "$SCRATCH/peers/results.jsonl" ] || break
        n=$(contaminated)
        [ "$n" = 0 ] && break
        log "peers: $n contaminated/failed run(s), re-running them (KEEP=1, pass $i)"
        run_peers 1 "$i"
    done
    [ ! -e "$SCRATCH/peers/results.failed.jsonl" ] \
        || cp "$SCRATCH/peers/results.failed.jsonl" "$SCRATCH/peers-results/"
fi

# ---------------------------------------------------------------- NSD comparison
if has nsd; then
    log "popdns vs NSD (static, NXDOMAIN)"
    phase_log "nsd started"
    rm -rf "$SCRATCH/extra/nsdcmp" "$SCRATCH/extra/nsdcmp.jsonl"
    python3 "$HERE/extra.py" nsdcmp --harness "$HARNESS" --work "$SCRATCH/extra/nsdcmp" \
        --mmdb "$DATA/test.mmdb" --out "$SCRATCH/extra/nsdcmp.jsonl"
fi

# ---------------------------------------------------------------- large zone
if has bigzone; then
    log "large zone: $BIG_NAMES names ($BIG_SERVERS)"
    phase_log "bigzone started"
    rm -rf "$SCRATCH/extra/bigzone" "$SCRATCH/extra/bigzone.jsonl"
    python3 "$HERE/extra.py" bigzone --harness "$HARNESS" --work "$SCRATCH/extra/bigzone" \
        --mmdb "$DATA/test.mmdb" --out "$SCRATCH/extra/bigzone.jsonl" \
        --names "$BIG_NAMES" --queries "$BIG_QUERIES" --servers "$BIG_SERVERS"
fi

# ---------------------------------------------------------------- report
if has report; then
    python3 "$HERE/report.py" --scratch "$SCRATCH" --out "${RESULTS_MD:-$HERE/RESULTS.md}" \
        --threshold "$QUIET_THRESHOLD"
fi
