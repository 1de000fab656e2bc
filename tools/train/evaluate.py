#!/usr/bin/python3
"""Step 5 of the bundled model: scores the exported model and writes its record.

    evaluate.py RUN_DIR --gguf examples/models/kjv-llama.gguf --tokenizer examples/models/kjv-bpe.model
                [--heldout examples/models/kjv-heldout.txt] [--tfm BUILD/examples/tfm/tfm]
                [--out examples/models/kjv-llama.json]

Held-out perplexity on the windows `tfm perplexity --ctx 512` scores (consecutive runs of 511 ids,
each after BOS; ids from the sentencepiece library, the file encoded as one text), computed by
  - the training network (llama_model.py) in float64 on the checkpoint's weights rounded as the GGUF
    file stores them (f16 matrices, f32 gains): over all windows, and over the first 6 (the model
    suite checks libtfm against this number);
  - libtfm, `tfm perplexity` on the GGUF file (with --tfm).
The record (--out) also holds the training log (command, seed, steps, wall time, loss curves), the
sweep's per-run results when RUN_DIR/sweep.json exists, and the GGUF file's SHA-256.
"""
import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from export import load_checkpoint, stored_dtype  # noqa: E402
from gguf_writer import stored_values  # noqa: E402  (export.py put tests/tools on the path)
from llama_model import LlamaLM  # noqa: E402

CHECK_WINDOWS = 6


def window_nll(model, ids, bos, ctx):
    """Per-window (nll sum, ids scored) of the `tfm perplexity` windows, float64."""
    W = ctx - 1
    out = []
    with torch.no_grad():
        for s in range(0, len(ids), W):
            window = ids[s:s + W]
            x = torch.tensor([[bos] + window[:-1]])
            logp = torch.log_softmax(model(x)[0].double(), dim=-1)
            out.append((-float(logp[torch.arange(len(window)), torch.tensor(window)].sum()), len(window)))
    return out


def ppl(parts):
    return math.exp(sum(p[0] for p in parts) / sum(p[1] for p in parts))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--heldout", default="examples/models/kjv-heldout.txt")
    ap.add_argument("--tfm", help="the tfm program, to score the GGUF file with libtfm too")
    ap.add_argument("--out", default="examples/models/kjv-llama.json")
    a = ap.parse_args()
    import sentencepiece as spm

    log, weights = load_checkpoint(a.run_dir)
    cfg = log["config"]
    model = LlamaLM(cfg).double().eval()
    stored = {k: torch.from_numpy(stored_values(v, stored_dtype(v)).astype(np.float64)) for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(stored, strict=False)
    if missing or unexpected:
        sys.exit(f"evaluate.py: checkpoint mismatch, missing {missing}, unexpected {unexpected}")
    sp = spm.SentencePieceProcessor()
    sp.LoadFromFile(a.tokenizer)
    with open(a.heldout, encoding="utf-8") as f:
        ids = sp.EncodeAsIds(f.read())
    ctx = cfg["max_position_embeddings"]
    t0 = time.time()
    parts = window_nll(model, ids, sp.bos_id(), ctx)
    ev = {"heldout_file": os.path.basename(a.heldout), "ctx": ctx, "window": ctx - 1, "heldout_ids": len(ids),
          "windows": len(parts),
          "pytorch": {"what": "training network, float64, weights as stored in the GGUF file",
                      "perplexity": ppl(parts), "nll_sum": sum(p[0] for p in parts),
                      "perplexity_first_windows": ppl(parts[:CHECK_WINDOWS]), "first_windows": CHECK_WINDOWS,
                      "seconds": time.time() - t0}}
    print(f"PyTorch: held-out perplexity {ev['pytorch']['perplexity']:.6f} over {len(parts)} windows, "
          f"{ev['pytorch']['perplexity_first_windows']:.6f} over the first {CHECK_WINDOWS}", flush=True)
    if a.tfm:
        r = subprocess.run([a.tfm, "perplexity", "-m", a.gguf, "-f", a.heldout, "--ctx", str(ctx), "--json",
                            "-t", "2"], check=True, capture_output=True, text=True)
        ev["libtfm"] = json.loads(r.stdout)
        rel = ev["libtfm"]["perplexity"] / ev["pytorch"]["perplexity"] - 1
        ev["libtfm_vs_pytorch_rel_diff"] = rel
        print(f"libtfm:  held-out perplexity {ev['libtfm']['perplexity']:.6f} (rel diff {rel:.2g})", flush=True)

    keep = ("command", "args", "n_params", "torch", "device", "tokens_per_step", "n_train_tokens", "steps",
            "best_step", "seconds_per_step_measured", "train_seconds", "wall_seconds", "valid_ppl_f32",
            "heldout_ppl_f32", "train_curve", "valid_curve")
    record = {"model": os.path.basename(a.gguf), "sha256": sha256(a.gguf), "bytes": os.path.getsize(a.gguf),
              "config": cfg, "training": {k: log[k] for k in keep if k in log}, "evaluation": ev}
    sweep_path = os.path.join(a.run_dir, "sweep.json")
    if os.path.exists(sweep_path):
        with open(sweep_path) as f:
            sweep = json.load(f)
        record["sweep"] = {"winner": sweep["winner"], "seconds": sweep["seconds"], "runs": {
            name: {"command": " ".join(r["command"]), **({k: r["log"][k] for k in ("steps", "best_step",
                   "valid_ppl_f32", "heldout_ppl_f32", "train_seconds")} if "log" in r else {}),
                   "valid_curve": r.get("log", {}).get("valid_curve")}
            for name, r in sweep["runs"].items()}}
    text = json.dumps(record, indent=1)
    text = re.sub(r"\[\s+([-+\d.e]+),\s+([-+\d.e]+)\s+\]", r"[\1, \2]", text)  # one [step, loss] a line
    with open(a.out, "w") as f:
        f.write(text + "\n")
    print(a.out)


if __name__ == "__main__":
    main()
