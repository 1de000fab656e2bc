#!/usr/bin/env bash
# valgrind memcheck on the C example and the tfm program: no invalid access, no uninitialised value
# used, no leak (definite or indirect), on the tiny models of tests/fuzz/make_seeds.py.
#
#   run_valgrind.sh WORK_DIR TFM_PROGRAM C_EXAMPLE
#
# Each command runs under `valgrind --error-exitcode=1 --leak-check=full`; the script fails if any
# does (its log is printed). Exits 77 (skipped) without valgrind. valgrind emulates no AVX-512: the
# cpu backend's run-time dispatch picks its AVX2 or generic kernels there, as it would on such a CPU.
set -uo pipefail
work=$1 tfm=$2 simple=$3
here=$(cd "$(dirname "$0")" && pwd)
command -v valgrind >/dev/null || { echo "skipped: valgrind not found (Debian: valgrind)"; exit 77; }
/usr/bin/python3 "$here/../fuzz/make_seeds.py" "$work" || exit 1
model=$work/model.gguf
hf=$work/hf-model
export OPENBLAS_NUM_THREADS=1
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=0 n=0
# run NAME EXPECTED_EXIT COMMAND...: valgrind reports errors with exit status 99
run() {
    local name=$1 want=$2
    shift 2
    n=$((n + 1))
    valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --track-origins=yes --log-file="$logs/$name.log" \
        "$@" >"$logs/$name.out" 2>&1 </dev/null
    local rc=$?
    if [ $rc -eq "$want" ]; then
        echo "ok   $name"
    else
        echo "FAIL $name (exit $rc, want $want; 99 = valgrind found errors): $*"
        cat "$logs/$name.out" "$logs/$name.log"
        failed=$((failed + 1))
    fi
}
run simple-gguf 0 "$simple" "$model" "In the beginning" 8
run tfm-run-gguf 0 "$tfm" run -m "$model" -p "And God said" -n 8 --temp 0 -t 2
run tfm-run-sampled 0 "$tfm" run -m "$model" -p "And God said" -n 8 --temp 0.8 --top-k 20 --seed 3 -t 1
run tfm-run-hf 0 "$tfm" run -m "$hf" -p "Let there be light" -n 6 --temp 0 -t 1
run tfm-info 0 "$tfm" info -m "$model"
run tfm-tokenize 0 "$tfm" tokenize -m "$model" --lines
run tfm-not-a-model 1 "$tfm" run -m "$work/vocab/kjv-bpe512.model" -p x -n 1
run simple-not-a-model 1 "$simple" "$work/vocab/kjv-bpe512.model"
echo "$((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
