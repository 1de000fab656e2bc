#!/usr/bin/python3
"""Step 1 of the bundled model: the King James Bible as text, split into train / valid / held-out parts.

    prepare_data.py WORK_DIR [--heldout examples/models/kjv-heldout.txt]

The text comes from Debian's bible-kjv-text package (/usr/lib/bible.data), read through the `bible`
program of the bible-kjv package: 1189 chapters, 31102 verses, public domain.

Format: one chapter per line, its verses joined by single spaces, without verse references, so the
text reads as prose and every verse-initial word carries its leading space (as a prompt does).
The split is by whole chapters, so no held-out verse has its neighbours in the training text:
chapter k (0-based, in canonical order) goes to
    held-out  when k % 20 == 19   (59 chapters, the test set: scored once, for the model card and tests)
    valid     when k % 20 == 9    (59 chapters, watched during training to pick the checkpoint)
    train     otherwise           (1071 chapters)
Writes WORK_DIR/train.txt, WORK_DIR/valid.txt, the held-out file, and WORK_DIR/spm_input.txt (the
training chapters one verse per line: the SentencePiece trainer's input, which caps line length).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

REFERENCE = re.compile(r"^(\S+?)(\d+):(\d+) (.*)$")  # "Ge1:1 In the beginning ..."


def read_chapters():
    bible = shutil.which("bible")
    if not bible or not os.path.exists("/usr/lib/bible.data"):
        sys.exit("prepare_data.py: needs the Debian packages bible-kjv and bible-kjv-text")
    # -f: no pretty-printing, one "BookC:V text" line per verse
    out = subprocess.run([bible, "-f", "gen1:1-rev22:21"], check=True, capture_output=True, text=True).stdout
    chapters, key = [], None
    for line in out.splitlines():
        m = REFERENCE.match(line)
        if not m:
            sys.exit(f"prepare_data.py: unexpected line from bible: {line!r}")
        book, chapter, _, text = m.groups()
        if (book, chapter) != key:
            chapters.append([])
            key = (book, chapter)
        chapters[-1].append(text.strip())
    n_verses = sum(len(c) for c in chapters)
    if len(chapters) != 1189 or n_verses != 31102:
        sys.exit(f"prepare_data.py: expected 1189 chapters and 31102 verses, got {len(chapters)} and {n_verses}")
    return chapters


def part_of(k):
    return "heldout" if k % 20 == 19 else "valid" if k % 20 == 9 else "train"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work_dir")
    ap.add_argument("--heldout", default="examples/models/kjv-heldout.txt")
    a = ap.parse_args()
    chapters = read_chapters()
    os.makedirs(a.work_dir, exist_ok=True)
    paths = {"train": os.path.join(a.work_dir, "train.txt"), "valid": os.path.join(a.work_dir, "valid.txt"),
             "heldout": a.heldout}
    files = {part: open(path, "w", encoding="utf-8", newline="\n") for part, path in paths.items()}
    with open(os.path.join(a.work_dir, "spm_input.txt"), "w", encoding="utf-8", newline="\n") as spm_input:
        for k, verses in enumerate(chapters):
            part = part_of(k)
            files[part].write(" ".join(verses) + "\n")
            if part == "train":
                spm_input.write("\n".join(verses) + "\n")
    for part, f in files.items():
        f.close()
        print(f"{part}: {paths[part]} ({os.path.getsize(paths[part])} bytes)")


if __name__ == "__main__":
    main()
