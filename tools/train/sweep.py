#!/usr/bin/python3
"""Trains a few regularisation settings of the bundled model side by side on one GPU and keeps the one
with the lowest validation perplexity (the held-out part is not looked at to choose).

    sweep.py WORK_DIR OUT_DIR [--time-budget SECONDS] [--only A,B] [-- extra train.py options]

Every run has the same network (train.py's defaults: 256 wide, 8 layers, 8 query / 2 key-value heads,
feed-forward 768, context 512) and seed; they differ in dropout and length (cosine schedules of
different lengths; each run keeps its best validation checkpoint). Each run gets the same time budget
(train.py --time-budget), so a slower machine runs fewer steps, and the steps each run made are recorded.
OUT_DIR receives the winner's ckpt-N.npz and train_log.json, and sweep.json with every run's log.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> train.py options (batch 32 x 512 tokens: about 56 steps an epoch of the 913k training ids)
RUNS = {
    "A": ["--dropout", "0.0", "--steps", "600"],
    "B": ["--dropout", "0.1", "--steps", "1200"],
    "C": ["--dropout", "0.2", "--steps", "2000"],
    "D": ["--dropout", "0.3", "--steps", "3000"],
}
COMMON = ["--batch", "32", "--lr", "1e-3", "--warmup", "100", "--eval-every", "50", "--seed", "1234"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--time-budget", type=float, default=230)
    ap.add_argument("--only", help="comma-separated run names")
    ap.add_argument("--scratch", default="/tmp/kjv-sweep")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []  # appended to every train.py command
    a = ap.parse_args(argv[:len(argv) - len(extra) - (1 if "--" in argv else 0)])
    names = a.only.split(",") if a.only else list(RUNS)
    os.makedirs(a.out_dir, exist_ok=True)
    procs = {}
    t0 = time.time()
    for name in names:
        run_dir = os.path.join(a.scratch, name)
        os.makedirs(run_dir, exist_ok=True)
        cmd = [sys.executable, "-u", os.path.join(HERE, "train.py"), a.work_dir, run_dir] + COMMON + RUNS[name] + \
            ["--time-budget", str(a.time_budget)] + extra
        log = open(os.path.join(run_dir, "stdout.txt"), "w")
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log, run_dir, cmd)
    results = {}
    for name, (p, log, run_dir, cmd) in procs.items():
        rc = p.wait()
        log.close()
        with open(os.path.join(run_dir, "stdout.txt")) as f:
            out = f.read()
        print(f"--- run {name} (exit {rc}): {' '.join(cmd[2:])}\n{out}", flush=True)
        entry = {"exit": rc, "command": cmd[2:], "stdout": out}
        log_path = os.path.join(run_dir, "train_log.json")
        if rc == 0 and os.path.exists(log_path):
            with open(log_path) as f:
                entry["log"] = json.load(f)
        results[name] = entry
    done = {n: r for n, r in results.items() if "log" in r}
    if not done:
        sys.exit("sweep.py: no run finished")
    best = min(done, key=lambda n: done[n]["log"]["valid_ppl_f32"])
    summary = {"winner": best, "seconds": time.time() - t0,
               "valid_ppl": {n: r["log"]["valid_ppl_f32"] for n, r in done.items()},
               "heldout_ppl": {n: r["log"]["heldout_ppl_f32"] for n, r in done.items()}, "runs": results}
    with open(os.path.join(a.out_dir, "sweep.json"), "w") as f:
        json.dump(summary, f, indent=1)
    run_dir = os.path.join(a.scratch, best)
    for fname in os.listdir(run_dir):
        if fname.startswith("ckpt-") or fname == "train_log.json":
            shutil.copyfile(os.path.join(run_dir, fname), os.path.join(a.out_dir, fname))
    print(f"winner {best}: valid ppl {summary['valid_ppl']}, held-out ppl {summary['heldout_ppl']}", flush=True)


if __name__ == "__main__":
    main()
