#!/usr/bin/env bash
# Makes the generated test inputs (tests/fuzz/make_seeds.py WORK_DIR: tiny model, vocabularies, seeds)
# on first use, then runs PROGRAM with @MODEL@ and @WORK@ in its arguments replaced by the model's and
# the folder's paths, and TFM_FUZZ_MODEL / TFM_FUZZ_VOCABS in its environment.
#
#   with_work.sh WORK_DIR PROGRAM [ARGS...]
set -euo pipefail
work=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 "$here/make_seeds.py" "$work"
set -a
. "$work/env"
set +a
args=()
for a in "$@"; do
    a=${a//@MODEL@/$TFM_FUZZ_MODEL}
    args+=("${a//@WORK@/$work}")
done
exec "${args[@]}"
