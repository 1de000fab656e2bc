#!/usr/bin/python3
"""Trains a SentencePiece BPE vocabulary on the King James Bible, with Llama-2's tokenizer settings.

    train_spm.py OUT_DIR [--vocab-size 1000] [--name kjv-bpe1000]

Writes OUT_DIR/kjv.txt (the corpus: one verse per line, without references), OUT_DIR/NAME.model and
OUT_DIR/NAME.vocab. The text comes from Debian's bible-kjv-text package, read through its `bible`
program (package bible-kjv). Settings follow Llama-2's tokenizer.model: BPE, byte fallback, digits
split, identity normalisation, whitespace kept as is, a dummy prefix space; ids 0/1/2 = <unk>/<s>/</s>.
Training is deterministic (1000 pieces take about a second; 32000 about two).
"""
import argparse
import os
import shutil
import subprocess
import sys


def write_corpus(path):
    bible = shutil.which("bible")
    if not bible or not os.path.exists("/usr/lib/bible.data"):
        sys.exit("train_spm.py: needs the Debian packages bible-kjv and bible-kjv-text "
                 "(apt-get install bible-kjv bible-kjv-text)")
    # -f turns pretty-printing off: one "Book1:1 text" line per verse
    out = subprocess.run([bible, "-f", "gen1:1-rev22:21"], check=True, capture_output=True, text=True).stdout
    lines = [line.split(" ", 1)[1] for line in out.splitlines() if " " in line]
    if len(lines) < 30000:
        sys.exit(f"train_spm.py: expected the whole Bible (31102 verses), got {len(lines)} lines")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--vocab-size", type=int, default=1000)
    ap.add_argument("--name", help="model file name without extension (default kjv-bpe<vocab-size>)")
    a = ap.parse_args()

    os.makedirs(a.out_dir, exist_ok=True)
    corpus = os.path.join(a.out_dir, "kjv.txt")
    if not os.path.exists(corpus):
        write_corpus(corpus)
    name = a.name or f"kjv-bpe{a.vocab_size}"
    spm_train = shutil.which("spm_train")
    if not spm_train:
        sys.exit("train_spm.py: spm_train not found (apt-get install sentencepiece)")
    args = [spm_train, f"--input={corpus}", f"--model_prefix={os.path.join(a.out_dir, name)}",
            "--model_type=bpe", f"--vocab_size={a.vocab_size}", "--byte_fallback=true", "--split_digits=true",
            "--normalization_rule_name=identity", "--remove_extra_whitespaces=false", "--add_dummy_prefix=true",
            "--allow_whitespace_only_pieces=true", "--character_coverage=1.0", "--max_sentence_length=8192",
            "--unk_id=0", "--bos_id=1", "--eos_id=2", "--pad_id=-1", "--num_threads=2", "--minloglevel=2"]
    subprocess.run(args, check=True)
    print(os.path.join(a.out_dir, name + ".model"))


if __name__ == "__main__":
    main()
