#!/usr/bin/env bash
# Replays a fuzz target's saved inputs: tests/fuzz/regressions/TARGET (failing inputs found earlier,
# kept for good) and the seeds make_seeds.py writes into WORK_DIR (made on first use).
#
#   run_replay.sh REPLAY_PROGRAM TARGET WORK_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/with_work.sh" "$3" "$1" "$here/regressions/$2" "@WORK@/seeds/$2"
