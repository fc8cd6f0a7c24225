#!/usr/bin/env bash
# Fuzz step: builds the cargo-fuzz targets in fuzz/ and runs each one for a
# bounded time. Fails (non-zero) on any crash, including the saved inputs in
# fuzz/regressions/<target>/, which every run replays first.
#
# Knobs (environment):
#   FUZZ_SECONDS     seconds per target (default 60; 4 targets, run one after
#                    the other, plus a ~3 minute build)
#   FUZZ_TARGETS     targets to run (default: all, as listed by cargo fuzz)
#   FUZZ_SANITIZER   address (default) or none
#   FUZZ_TARGET_DIR  cargo target dir for the instrumented build
#                    (default /tmp/target-fuzz; kept apart from the normal one
#                    so the sanitizer flags do not force rebuilds there)
#
# Only the stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets it accept the
# nightly-only flags (-Zsanitizer, -Cpasses=sancov-module) that cargo fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-address}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/tmp/target-fuzz}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== cargo fmt --check (fuzz/)"
cargo fmt --manifest-path fuzz/Cargo.toml --check

echo "== cargo fuzz build (sanitizer: $FUZZ_SANITIZER)"
(cd fuzz && cargo fuzz build --sanitizer "$FUZZ_SANITIZER")

if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

work="$(mktemp -d /tmp/popdns-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${FUZZ_SECONDS}s"
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    dirs=("$work/corpus/$t")
    [ -d "fuzz/corpus/$t" ] && dirs+=("$PWD/fuzz/corpus/$t")
    [ -d "fuzz/regressions/$t" ] && dirs+=("$PWD/fuzz/regressions/$t")
    log="$work/$t.log"
    rc=0
    (cd fuzz && cargo fuzz run --sanitizer "$FUZZ_SANITIZER" "$t" "${dirs[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$t/") >"$log" 2>&1 || rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    line="$t: ${execs:-?} executions"
    crashes=("$work/artifacts/$t"/*)
    if [ "$rc" -ne 0 ] || [ -e "${crashes[0]}" ]; then
        line="$line, FAILED (exit $rc)"
        failed+=("$t")
        echo "---- last lines of the $t log"
        grep -E "panicked|ERROR|SUMMARY|Test unit|Base64" -A3 "$log" | head -n 40 || true
        tail -n 20 "$log"
        for a in "$work/artifacts/$t"/*; do
            [ -e "$a" ] || continue
            echo "---- $(basename "$a") (hex)"
            od -An -tx1 -v "$a" | head -n 64
        done
    fi
    echo "$line"
    summary+=("$line")
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets"
