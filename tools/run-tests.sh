#!/usr/bin/env bash
# Runs every meson test suite in a build folder and ends with one line: "N passed, N failed".
# Skipped tests (e.g. cuda without a GPU) are reported separately and are not failures.
set -uo pipefail
build=${1:-build}
meson test -C "$build" --print-errorlogs --num-processes 2 --timeout-multiplier 3
/usr/bin/python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["result"] in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r["result"] == "SKIP":
        skipped += 1
        print(f"skipped: {r['name']}")
    else:
        failed += 1
        print(f"failed: {r['name']} ({r['result']})")
if skipped:
    print(f"{skipped} skipped")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
