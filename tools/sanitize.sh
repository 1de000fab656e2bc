#!/usr/bin/env bash
# Builds libtfm with AddressSanitizer + UBSan and runs the test suites there, then builds it with
# ThreadSanitizer and runs the concurrency suite. Ends with "N passed, N failed".
#
#   tools/sanitize.sh [--quick] [BUILD_ROOT=build-sanitize]
#
#   BUILD_ROOT/asan   -Db_sanitize=address,undefined: every suite. Test programs linked with the
#                     sanitizers run with leak detection; tests that are Python scripts loading
#                     libtfm.so (ctypes) run with the sanitizer runtimes preloaded and leak detection
#                     off (CPython does not free everything at exit).
#   BUILD_ROOT/tsan   -Db_sanitize=thread: the concurrency suite (8 threads x 4 sessions, 10 generations).
#   --quick           only the suites whose tests are C programs (format, ops, malformed, fuzz replay,
#                     concurrency, abi) under ASan+UBSan, then TSan: about 4 min on 2 cores from scratch.
#
# UBSan stops at the first report (halt_on_error), so any undefined behaviour fails its test.
# The fuzz suite's libFuzzer test (its own clang build) is not run here: tools/fuzz.sh does that.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
root=${1:-build-sanitize}
mkdir -p "$root"
root=$(cd "$root" && pwd)
jobs=${TFM_SANITIZE_JOBS:-2}

setup() { # DIR SANITIZERS
    [ -f "$1/build.ninja" ] && return 0
    meson setup "$1" "$src" --buildtype=debugoptimized -Db_sanitize="$2" -Db_lundef=false -Dcuda=disabled \
        >"$1.setup.log" 2>&1 || { cat "$1.setup.log"; exit 1; }
}

passed=0 failed=0
tally() { # a meson-logs/testlog.json
    local counts
    counts=$(/usr/bin/python3 - "$1" <<'PY'
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["result"] in ("OK", "EXPECTEDFAIL", "SKIP"):
        p += r["result"] != "SKIP"
    else:
        f += 1
        print(f"failed: {r['name']} ({r['result']})", file=sys.stderr)
print(p, f)
PY
)
    passed=$((passed + ${counts% *}))
    failed=$((failed + ${counts#* }))
}

# Test names of a build, split by whether the test's program is a Python interpreter.
tests_of() { # DIR python|native
    meson introspect "$1" --tests | /usr/bin/python3 -c '
import json, os, sys
want_python = sys.argv[1] == "python"
# fuzz-libfuzzer and tok-fuzz build their own clang trees (tools/fuzz.sh); valgrind cannot run
# sanitized programs
skip = {"fuzz-libfuzzer", "tok-fuzz", "valgrind"}
for t in json.load(sys.stdin):
    if t["name"] in skip:
        continue
    is_python = "python" in os.path.basename(t["cmd"][0])
    if is_python == want_python:
        print(t["name"])' "$2"
}

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export OPENBLAS_NUM_THREADS=1

# --- AddressSanitizer + UBSan ----------------------------------------------------------------------
asan=$root/asan
setup "$asan" address,undefined
ninja -C "$asan" -j"$jobs" >"$asan.build.log" 2>&1 || { tail -n 40 "$asan.build.log"; exit 1; }
if [ $quick = 1 ]; then
    native=$(tests_of "$asan" native | grep -E '^(format|malformed|limits|weight-checks|fuzz-replay-|concurrency|abi|exports|ops|tok-unit|hf-parsers|session-semantics)' || true)
else
    native=$(tests_of "$asan" native)
fi
# shellcheck disable=SC2086
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 meson test -C "$asan" --print-errorlogs --num-processes "$jobs" \
    --timeout-multiplier 4 $native
tally "$asan/meson-logs/testlog.json"
if [ $quick = 0 ]; then
    python_tests=$(tests_of "$asan" python)
    preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
    # shellcheck disable=SC2086
    # no quarantine: the Python suite's leak tests measure RSS over 1000 cycles, and ASan's 256 MB
    # quarantine of freed blocks would read as growth (C tests keep it, for use-after-free detection)
    [ -n "$python_tests" ] && LD_PRELOAD=$preload \
        ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:quarantine_size_mb=0:thread_local_quarantine_size_kb=0 \
        meson test -C "$asan" --print-errorlogs --num-processes "$jobs" --timeout-multiplier 4 $python_tests
    tally "$asan/meson-logs/testlog.json"
fi

# --- ThreadSanitizer: the concurrency suite --------------------------------------------------------
tsan=$root/tsan
setup "$tsan" thread
ninja -C "$tsan" -j"$jobs" tests/concurrency/concurrency >"$tsan.build.log" 2>&1 ||
    { tail -n 40 "$tsan.build.log"; exit 1; }
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 meson test -C "$tsan" --no-rebuild --print-errorlogs \
    --suite concurrency --timeout-multiplier 4
tally "$tsan/meson-logs/testlog.json"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
