#!/usr/bin/env bash
# Builds libtfm's libFuzzer targets (tests/fuzz) with clang, AddressSanitizer and UBSan, and runs each.
#
#   tools/fuzz.sh [--ci] BUILD_DIR [SECONDS_PER_TARGET] [TARGET...]
#
#   BUILD_DIR   a clang build folder of its own (configured here on first use)
#   SECONDS     per target (default $TFM_FUZZ_SECONDS, else 20); a long campaign: e.g. 900 under nice
#   TARGET      gguf hf spm tokjson text api (default: all)
#   --ci        exit 77 (skipped) rather than 1 when clang's libFuzzer is missing
#
# The corpus of each target grows in BUILD_DIR/corpus/TARGET (kept between runs); seeds come from
# tests/fuzz/make_seeds.py (the test-model generators) in $TFM_FUZZ_WORK (default BUILD_DIR/work),
# crash inputs from tests/fuzz/regressions/TARGET. A failing input is written to
# BUILD_DIR/artifacts/TARGET/ (crash-*, leak-*, timeout-*, oom-*): copy it to
# tests/fuzz/regressions/TARGET/ once fixed, so every later run replays it. One line per target with
# executions, coverage (libFuzzer's edge count "cov" and feature count "ft") and corpus size is
# printed and appended to BUILD_DIR/summary.txt. Exit status 1 if any target found a failing input.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
ci=0
if [ "${1:-}" = "--ci" ]; then ci=1; shift; fi
build=${1:?usage: tools/fuzz.sh [--ci] BUILD_DIR [SECONDS] [TARGET...]}
shift
secs=${1:-${TFM_FUZZ_SECONDS:-20}}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf hf spm tokjson text api)
mkdir -p "$build"
build=$(cd "$build" && pwd)
work=${TFM_FUZZ_WORK:-$build/work}

probe=$(mktemp -d)
if ! command -v clang >/dev/null ||
   ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
     clang -x c - -fsanitize=fuzzer,address,undefined -o "$probe/probe" 2>/dev/null; then
    rm -rf "$probe"
    echo "fuzz.sh: clang with libFuzzer not found (Debian: clang libclang-rt-14-dev)"
    [ $ci = 1 ] && exit 77
    exit 1
fi
rm -rf "$probe"

if [ ! -f "$build/build.ninja" ]; then
    CC=clang CXX=clang++ meson setup "$build" "$src" --buildtype=debugoptimized \
        -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link \
        -Dcuda=disabled -Dexamples=disabled -Dtests=enabled >"$build/setup.log" 2>&1 ||
        { cat "$build/setup.log"; exit 1; }
fi
ninja -C "$build" $(printf 'tests/fuzz/fuzz-%s ' "${targets[@]}") >"$build/ninja.log" 2>&1 ||
    { tail -n 40 "$build/ninja.log"; exit 1; }
/usr/bin/python3 "$src/tests/fuzz/make_seeds.py" "$work"
set -a
. "$work/env"
set +a

max_len() {
    case $1 in
        gguf) echo 131072 ;; hf) echo 32768 ;; spm) echo 262144 ;; tokjson) echo 16384 ;; text) echo 4096 ;;
        api) echo 512 ;;
    esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
for t in "${targets[@]}"; do
    corpus=$build/corpus/$t
    artifacts=$build/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    dict=()
    [ -f "$src/tests/fuzz/dict/$t.dict" ] && dict=(-dict="$src/tests/fuzz/dict/$t.dict")
    [ $t = text ] && dict=(-dict="$src/tests/fuzz/dict/text.dict")
    [ $t = api ] && dict=()
    dirs=("$corpus" "$work/seeds/$t")
    [ -d "$src/tests/fuzz/regressions/$t" ] && dirs+=("$src/tests/fuzz/regressions/$t")
    log=$build/fuzz-$t.log
    keep_going=()
    # a long campaign goes on past a failing input (each is saved under artifacts/)
    [ -n "${TFM_FUZZ_KEEP_GOING:-}" ] && keep_going=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    touch "$artifacts/.start"
    echo "== fuzz-$t: $secs s"
    set +e
    (cd "$artifacts" && "$build/tests/fuzz/fuzz-$t" "${dict[@]}" "${keep_going[@]}" -max_total_time="$secs" -max_len="$(max_len $t)" \
        -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "${dirs[@]}") >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\(\/[0-9a-zA-Z]*\)*\).*/\1/p')
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
    [ -n "$rate" ] || rate=$(echo "$last" | sed -n 's/.*exec\/s:* \([0-9]*\).*/\1/p')
    line="fuzz-$t: ${secs} s, ${execs:-?} executions (${rate:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
    found=$(cd "$artifacts" && find . -maxdepth 1 -newer .start -name '[clto]*-*' | sed 's|^\./||' |
            grep -E '^(crash|leak|timeout|oom)-' || true)
    if [ $rc -ne 0 ] || [ -n "$found" ]; then
        status=1
        line="$line, FAILED (exit $rc): $(echo $found)"
        grep -E 'ERROR|SUMMARY|fuzz property|runtime error' "$log" | head -n 20 || true
    fi
    echo "$line"
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $line" >>"$build/summary.txt"
done
exit $status
