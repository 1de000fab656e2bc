#!/usr/bin/env bash
# Runs every meson test suite in a build folder, then the sanitizer builds (tools/sanitize.sh), and
# ends with one line totalling them all: "N passed, N failed".
# Skipped tests (e.g. cuda without a GPU) are reported separately and are not failures.
#
#   tools/run-tests.sh [BUILD=build]
#   TFM_SANITIZE=quick            the C-program suites under ASan+UBSan, the concurrency suite under TSan
#   TFM_SANITIZE=full (default)   every suite under ASan+UBSan, then the concurrency suite under TSan
#   TFM_SANITIZE=off              no sanitizer builds
set -uo pipefail
build=${1:-build}
sanitize=${TFM_SANITIZE:-full}
meson test -C "$build" --print-errorlogs --num-processes 2 --timeout-multiplier 3
counts=$(/usr/bin/python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["result"] in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r["result"] == "SKIP":
        skipped += 1
        print(f"skipped: {r['name']}", file=sys.stderr)
    else:
        failed += 1
        print(f"failed: {r['name']} ({r['result']})", file=sys.stderr)
if skipped:
    print(f"{skipped} skipped", file=sys.stderr)
print(passed, failed)
PY
)
passed=${counts% *}
failed=${counts#* }
echo "main build: $passed passed, $failed failed"

if [ "$sanitize" != off ]; then
    mode=--quick
    [ "$sanitize" = full ] && mode=
    mkdir -p "$build-sanitize"
    san_log=$build-sanitize/run.log
    # shellcheck disable=SC2086
    tools/sanitize.sh $mode "$build-sanitize" 2>&1 | tee "$san_log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$san_log" | tail -1)
    if [ -n "$line" ]; then
        passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
        failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
    else
        echo "failed: the sanitizer builds did not complete (see $san_log)"
        failed=$((failed + 1))
    fi
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
