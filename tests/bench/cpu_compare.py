#!/usr/bin/python3
"""tfm bench next to llama.cpp's llama-bench, in the same run, on the same GGUF files.

    cpu_compare.py --tfm build/examples/tfm/tfm --llama-bench PATH [--membw PATH] [-t 2] [--rounds K] MODEL.gguf...

For each model it measures the read bandwidth (membw), then runs the two programs one after the other
(llama-bench, then tfm bench, with the same -p/-n/-r/-t), K rounds in a row, and prints a markdown
row: prompt and generation tokens/s of both, the ratio tfm / llama.cpp, and generation speed as a
fraction of the decode roofline (bytes streamed per token / the bandwidth measured just before). On a
shared host whose bandwidth drifts by tens of percent within minutes, each figure is the best of the
K rounds, for both programs alike; the bandwidth is the best of its rounds too."""
import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_bytes import decode_bytes_per_token  # noqa: E402


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("["):])


def speeds(rows):
    """{'pp': (mean, sd), 'tg': (mean, sd)} from llama-bench-style JSON rows."""
    res = {}
    for r in rows:
        key = "pp" if r["n_prompt"] and not r["n_gen"] else "tg"
        res[key] = (r["avg_ts"], r["stddev_ts"])
    return res


def bandwidth(membw, threads, runs=5):
    """The best of several membw runs: one run now and then lands on a busy moment of a shared host."""
    best = 0.0
    for _ in range(runs):
        out = subprocess.run([membw, str(threads), "2", "5"], check=True, capture_output=True, text=True).stdout
        best = max(best, float(re.search(r"GB/s=([0-9.]+)", out).group(1)))
    return best


def best(a, b):
    """Per measurement, the round with the higher mean."""
    return {k: max(a[k], b[k]) for k in a} if a else b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tfm", required=True)
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--membw")
    ap.add_argument("--bw", type=float, help="read bandwidth in GB/s, instead of running membw")
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="rounds per model; the best round counts")
    ap.add_argument("--json-out", help="also write the measurements here (input of plot_cpu.py)")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()

    common = ["-p", str(a.p), "-n", str(a.n), "-r", str(a.r), "-t", str(a.t)]
    print(f"{a.t} threads, prompt {a.p}, generation {a.n}, best of {a.rounds} round(s) per model\n")
    print("| model | read GB/s | llama.cpp pp t/s | tfm pp t/s | pp ratio | llama.cpp tg t/s | tfm tg t/s | tg ratio "
          "| roofline t/s | tfm tg / roofline | llama.cpp tg / roofline |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for m in a.models:
        peer, ours, bw = None, None, 0.0
        for _ in range(a.rounds):
            bw = max(bw, a.bw if a.bw else bandwidth(a.membw, a.t, runs=3))
            peer = best(peer, speeds(run_json([a.llama_bench, "-m", m, "-o", "json"] + common)))
            ours = best(ours, speeds(run_json([a.tfm, "bench", "-m", m, "--json"] + common)))
        bound = bw * 1e9 / decode_bytes_per_token(m)
        name = os.path.basename(m).replace(".gguf", "")
        print(f"| {name} | {bw:.1f} | {peer['pp'][0]:.1f} ± {peer['pp'][1]:.1f} | {ours['pp'][0]:.1f} ± {ours['pp'][1]:.1f} "
              f"| {ours['pp'][0] / peer['pp'][0]:.2f} | {peer['tg'][0]:.1f} ± {peer['tg'][1]:.1f} "
              f"| {ours['tg'][0]:.1f} ± {ours['tg'][1]:.1f} | {ours['tg'][0] / peer['tg'][0]:.2f} | {bound:.1f} "
              f"| {ours['tg'][0] / bound:.2f} | {peer['tg'][0] / bound:.2f} |", flush=True)
        rows.append({"model": name, "bandwidth_gbs": bw, "llama_cpp": peer, "tfm": ours, "roofline_tg": bound})
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"bandwidth_gbs": max(r["bandwidth_gbs"] for r in rows), "threads": a.t, "p": a.p, "n": a.n,
                       "rounds": a.rounds, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
