#!/usr/bin/python3
"""Step 2 of the bundled model: a SentencePiece BPE vocabulary trained on the training chapters, and
the token ids of every part.

    train_tokenizer.py WORK_DIR [--vocab-size 4000]

Runs Debian's spm_train on WORK_DIR/spm_input.txt with Llama-2's tokenizer settings (BPE, byte
fallback, digits split, identity normalisation, whitespace kept, a dummy prefix space; ids 0/1/2 =
<unk>/<s>/</s>), writing WORK_DIR/kjv-bpe.model and .vocab. Then encodes train.txt, valid.txt and the
held-out file, each as ONE text (no BOS), as `tfm perplexity` does: newlines are byte-fallback pieces
(<0x0A>) and only the very first word gets the dummy-prefix space. Writes WORK_DIR/{train,valid,heldout}.npy
(uint16 ids) and WORK_DIR/meta.json (vocabulary size, BOS/EOS ids). spm_train is deterministic for a given input and settings.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import sentencepiece as spm


def train(work, vocab_size):
    spm_train = shutil.which("spm_train")
    if not spm_train:
        sys.exit("train_tokenizer.py: spm_train not found (apt-get install sentencepiece)")
    prefix = os.path.join(work, "kjv-bpe")
    args = [spm_train, f"--input={os.path.join(work, 'spm_input.txt')}", f"--model_prefix={prefix}",
            "--model_type=bpe", f"--vocab_size={vocab_size}", "--byte_fallback=true", "--split_digits=true",
            "--normalization_rule_name=identity", "--remove_extra_whitespaces=false", "--add_dummy_prefix=true",
            "--allow_whitespace_only_pieces=true", "--character_coverage=1.0", "--max_sentence_length=8192",
            "--input_sentence_size=0", "--shuffle_input_sentence=false",
            "--unk_id=0", "--bos_id=1", "--eos_id=2", "--pad_id=-1", "--num_threads=2", "--minloglevel=2"]
    subprocess.run(args, check=True)
    return prefix + ".model"


def encode_file(sp, path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    ids = np.asarray(sp.EncodeAsIds(text), dtype=np.int64)
    assert sp.DecodeIds(ids.tolist()) == text, f"{path}: decode(encode(text)) differs from the text"
    return ids.astype(np.uint16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work_dir")
    ap.add_argument("--vocab-size", type=int, default=4000)
    ap.add_argument("--heldout", default="examples/models/kjv-heldout.txt")
    a = ap.parse_args()
    model = train(a.work_dir, a.vocab_size)
    sp = spm.SentencePieceProcessor()
    sp.LoadFromFile(model)
    for part, path in (("train", os.path.join(a.work_dir, "train.txt")),
                       ("valid", os.path.join(a.work_dir, "valid.txt")), ("heldout", a.heldout)):
        ids = encode_file(sp, path)
        np.save(os.path.join(a.work_dir, part + ".npy"), ids)
        print(f"{part}: {len(ids)} tokens ({os.path.getsize(path) / len(ids):.2f} bytes per token)")
    with open(os.path.join(a.work_dir, "meta.json"), "w") as f:
        json.dump({"vocab_size": sp.vocab_size(), "bos": sp.bos_id(), "eos": sp.eos_id(), "tokenizer": "kjv-bpe.model"}, f)
    print(model)


if __name__ == "__main__":
    main()
