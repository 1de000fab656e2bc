#!/usr/bin/env bash
# Writes the malformed-file corpus (make_cases.py) into CASE_DIR, then runs the checker over it.
#
#   run_cases.sh CHECKER CASE_DIR [CHECKER_ARGS...]
set -euo pipefail
checker=$1 dir=$2
shift 2
/usr/bin/python3 "$(dirname "$0")/make_cases.py" "$dir" >/dev/null
exec "$checker" "$dir" "$@"
