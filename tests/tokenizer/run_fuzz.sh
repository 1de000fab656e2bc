#!/usr/bin/env bash
# Builds the tokenizer's libFuzzer targets (fuzz_tokenizer.c) with clang and runs each for a while.
#
#   tests/tokenizer/run_fuzz.sh OUT_DIR [SECONDS_PER_TARGET=20] [SEED_DIR]
#
# Targets: spm (.model bytes), json (tokenizer.json bytes), gguf (GGUF bytes), text (text for the
# tokenizers among the seeds). Seeds, so that mutations start from valid files: small SentencePiece
# models trained here with spm_train (BPE and Unigram, nmt_nfkc and identity), their vocabularies as
# GGUF, two small tokenizer.json files (byte-level and byte-fallback), plus any *.model, *.gguf,
# tokenizer.json and multilingual.txt under SEED_DIR (the conformance suites' work folders).
# Exit status is non-zero if any target finds a crash, a leak or an out-of-bounds access (libFuzzer
# writes the input as OUT_DIR/<target>/crash-*). Exits 77 (skipped) without clang's libFuzzer.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: run_fuzz.sh OUT_DIR [SECONDS] [SEED_DIR]}
secs=${2:-20}
seeds=${3:-}
mkdir -p "$out"
if ! command -v clang >/dev/null || ! echo 'int LLVMFuzzerTestOneInput(const char*d,long n){return 0;}' |
    clang -x c - -fsanitize=fuzzer -o "$out/probe" 2>/dev/null; then
    echo "skipped: clang with libFuzzer not found"
    exit 77
fi
lib_src=("$src"/lib/tokenizer/*.c "$src/lib/formats/gguf.c" "$src/lib/error.c" "$src/lib/util/mapped_file.c")
flags=(-std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$src/include" -I"$src/lib" $(pkg-config --cflags libpcre2-8 libcjson))
libs=($(pkg-config --libs libpcre2-8 libcjson) -lm -lpthread)
# Base seeds
base="$out/seeds"
mkdir -p "$base/json"
if [ ! -e "$base/done" ] && command -v spm_train >/dev/null; then
    text="$base/train.txt"
    { cat /usr/share/common-licenses/GPL-3 2>/dev/null || true
      printf 'caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \xef\xbd\xb6\xef\xbe\x80\n'; } > "$text"
    for spec in "bpe nmt_nfkc" "unigram nmt_nfkc" "bpe identity" "unigram identity"; do
        set -- $spec
        spm_train --input="$text" --model_prefix="$base/$1-$2" --model_type="$1" --vocab_size=400 \
            --normalization_rule_name="$2" --byte_fallback=true --user_defined_symbols='<sep>' \
            --minloglevel=2 >/dev/null 2>&1 || true
    done
    for m in "$base"/*.model; do
        /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import test_spm_conformance as t, sentencepiece as s; t.write_gguf(s.SentencePieceProcessor(model_file=sys.argv[2]), sys.argv[3])' \
            "$src/tests/tokenizer" "$m" "${m%.model}.gguf" 2>/dev/null || true
    done
    cat > "$base/json/tokenizer.json" <<'JSON'
{"added_tokens": [{"id": 6, "content": "<|bos|>", "special": true}, {"id": 7, "content": "<x>", "special": false}],
 "normalizer": null, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex":
 "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
 "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
 "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|bos|>", "type_id": 0}},
 {"Sequence": {"id": "A", "type_id": 0}}]}, "decoder": {"type": "ByteLevel"},
 "model": {"type": "BPE", "ignore_merges": true, "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120ab": 4, "\u00e4": 5},
 "merges": ["a b", "\u0120 ab"]}}
JSON
    mkdir -p "$base/json2"
    cat > "$base/json2/tokenizer.json" <<'JSON'
{"added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true}],
 "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
 {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}, "pre_tokenizer": null,
 "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
 {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
 "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
 "vocab": {"<unk>": 0, "<s>": 1, "<0xE4>": 2, "<0xB8>": 3, "\u2581": 4, "a": 5, "\u2581a": 6},
 "merges": [["\u2581", "a"]]}}
JSON
    touch "$base/done"
fi
[ -n "$seeds" ] || seeds="$base"

status=0
for target in spm:1 json:2 gguf:3 text:4; do
    name=${target%%:*}
    id=${target##*:}
    clang "${flags[@]}" -DFUZZ_TARGET="$id" "$src/tests/tokenizer/fuzz_tokenizer.c" "${lib_src[@]}" "${libs[@]}" \
        -o "$out/fuzz_$name"
    corpus="$out/$name/corpus"
    mkdir -p "$corpus"
    if [ -n "$seeds" ]; then
        case $name in
            spm) find "$seeds" "$base" -name '*.model' -size -400k -exec cp {} "$corpus/" \; ;;
            json) n=0; for j in $(find "$seeds" "$base" -name 'tokenizer.json' -size -64k); do
                      n=$((n + 1)); cp "$j" "$corpus/seed-$n.json"; done ;;
            gguf) find "$seeds" "$base" -name '*.gguf' -size -400k -exec cp {} "$corpus/" \; ;;
            text) find "$seeds" "$base" \( -name 'multilingual.txt' -o -name train.txt \) \
                      -exec split -b 2000 {} "$corpus/seed-" \; ;;
        esac
    fi
    tokenizers=$( (find "$base" \( -name '*.model' -o -name '*.gguf' \) | head -4
                   find "$base" -name 'tokenizer.json') 2>/dev/null | tr '\n' ':')
    echo "== fuzz_$name ($secs s)"
    if ! (cd "$out/$name" && TFM_FUZZ_TOKENIZERS="$tokenizers" ASAN_OPTIONS=detect_leaks=1 \
          "$out/fuzz_$name" -max_total_time="$secs" -max_len="$([ $name = text ] && echo 4096 || echo 65536)" \
          -rss_limit_mb=2048 -print_final_stats=1 \
          corpus 2>&1 | tail -n 4); then
        status=1
    fi
    if [ -n "$(find "$out/$name" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \))" ]; then
        echo "fuzz_$name: found a failing input in $out/$name"
        status=1
    fi
done
exit $status
