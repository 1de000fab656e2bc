#!/usr/bin/python3
"""The cpu backend's block-quantised kernels against numpy, on random blocks.

Dequantisation follows the GGUF block layouts (llama.cpp's definitions, written here from the layout
description in backends/cpu/quant.h) in float32 and must match bit for bit. Activations are quantised
per block of 32 (d = max|x|/127, q = rint(x * 127/max|x|)) and must match exactly; dot products must
agree with a float64 product of the dequantised weights and activations within 1e-5 of the sum of
the absolute terms. Every kernel table this CPU supports is checked (usage: test_quant_numpy.py TOOL).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

Q8_0, Q4_0, Q4_K, Q6_K, Q5_K = 8, 9, 10, 11, 12
BLOCK = {Q8_0: (32, 34), Q4_0: (32, 18), Q4_K: (256, 144), Q5_K: (256, 176), Q6_K: (256, 210)}
NAMES = {Q8_0: "q8_0", Q4_0: "q4_0", Q4_K: "q4_k", Q5_K: "q5_k", Q6_K: "q6_k"}
ISAS = ["generic", "avx2", "avx512", "avx512vnni"]


def f16(b, off):
    return b[:, off:off + 2].copy().view(np.float16).astype(np.float32)[:, 0]


def k_scales(b):
    s = b[:, 4:16].astype(np.int32)
    sc = np.zeros((b.shape[0], 8), np.int32)
    m = np.zeros((b.shape[0], 8), np.int32)
    sc[:, :4] = s[:, 0:4] & 63
    m[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    m[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, m


def dequant(t, raw, n_values):
    vals, size = BLOCK[t]
    b = np.frombuffer(raw, np.uint8).reshape(-1, size)
    if t == Q8_0:
        q = b[:, 2:].view(np.int8).astype(np.float32)
        return (q * f16(b, 0)[:, None]).reshape(-1)
    if t == Q4_0:
        qs = b[:, 2:].astype(np.int32)
        q = np.concatenate([qs & 0xF, qs >> 4], axis=1) - 8
        return (q.astype(np.float32) * f16(b, 0)[:, None]).reshape(-1)
    if t in (Q4_K, Q5_K):
        d, dmin = f16(b, 0), f16(b, 2)
        sc, m = k_scales(b)
        qs = b[:, 16:144].astype(np.int32) if t == Q4_K else b[:, 48:176].astype(np.int32)
        q = np.zeros((b.shape[0], 256), np.int32)
        for p in range(4):
            q[:, 64 * p:64 * p + 32] = qs[:, 32 * p:32 * p + 32] & 0xF
            q[:, 64 * p + 32:64 * p + 64] = qs[:, 32 * p:32 * p + 32] >> 4
        if t == Q5_K:
            qh = b[:, 16:48].astype(np.int32)
            for s in range(8):
                q[:, 32 * s:32 * s + 32] |= ((qh >> s) & 1) << 4
        scale = (d[:, None] * sc.astype(np.float32)).astype(np.float32)
        mins = (dmin[:, None] * m.astype(np.float32)).astype(np.float32)
        y = np.repeat(scale, 32, axis=1) * q.astype(np.float32) - np.repeat(mins, 32, axis=1)
        return y.astype(np.float32).reshape(-1)
    # Q6_K
    d = f16(b, 208)
    ql = b[:, 0:128].astype(np.int32)
    qh = b[:, 128:192].astype(np.int32)
    scales = b[:, 192:208].view(np.int8).astype(np.float32)
    q = np.zeros((b.shape[0], 256), np.int32)
    for h in range(2):
        lo, hi = ql[:, 64 * h:64 * h + 64], qh[:, 32 * h:32 * h + 32]
        base = 128 * h
        q[:, base:base + 32] = (lo[:, :32] & 0xF) | ((hi & 3) << 4)
        q[:, base + 32:base + 64] = (lo[:, 32:] & 0xF) | (((hi >> 2) & 3) << 4)
        q[:, base + 64:base + 96] = (lo[:, :32] >> 4) | (((hi >> 4) & 3) << 4)
        q[:, base + 96:base + 128] = (lo[:, 32:] >> 4) | (((hi >> 6) & 3) << 4)
    scale = (d[:, None] * scales).astype(np.float32)
    y = np.repeat(scale, 16, axis=1) * (q - 32).astype(np.float32)
    return y.astype(np.float32).reshape(-1)


def quantize_act(x):
    blocks = x.reshape(-1, 32)
    amax = np.abs(blocks).max(axis=1)
    safe = np.where(amax > 0, amax, np.float32(1))
    inv = np.where(amax > 0, np.float32(127) / safe, np.float32(0)).astype(np.float32)
    q = np.rint((blocks * inv[:, None]).astype(np.float32)).astype(np.int8)
    d = (amax / np.float32(127)).astype(np.float32)
    return q.reshape(x.shape), d


def random_blocks(rng, t, n_blocks, extreme=False):
    """Random blocks; `extreme`: every quant byte 0xFF (the largest unsigned values the kernels see)."""
    vals, size = BLOCK[t]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    if extreme:
        b[:] = 0xFF
    def put(off, v):
        b[:, off:off + 2] = v.astype(np.float16).reshape(-1, 1).view(np.uint8).reshape(n_blocks, 2)
    if t == Q6_K:
        put(208, rng.uniform(-0.02, 0.02, n_blocks))
    else:
        put(0, rng.uniform(-0.02, 0.02, n_blocks))
        if t in (Q4_K, Q5_K):
            put(2, rng.uniform(0, 0.01, n_blocks))
    return b.tobytes()


def main():
    tool = sys.argv[1]
    rng = np.random.default_rng(7)
    failures = 0
    ran = set()
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(t, extreme) for extreme in (False, True) for t in (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)]
        for t, extreme in cases:
            vals, size = BLOCK[t]
            # 37 rows (not a multiple of any row grouping); columns not a multiple of 64 or 512
            rows, n = 37, 6
            cols = 32 * 37 if t in (Q8_0, Q4_0) else 256 * 5
            raw = random_blocks(rng, t, rows * cols // vals, extreme)
            x = rng.uniform(-1, 1, size=(n, cols)).astype(np.float32)
            x[0, :32] = 0.0                       # an all-zero block
            x[1, 5] = 3.0                         # a block with one large value
            if extreme:
                # activations of +-127 everywhere: the largest int16 pair sums the kernels can meet
                x[2:4] = 1.0
                x[4:6] = -1.0
            inp, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
            with open(inp, "wb") as f:
                f.write(np.array([t, rows, cols, n], np.int32).tobytes() + raw + x.tobytes())
            w_ref = dequant(t, raw, rows * cols).reshape(rows, cols)
            q_ref, d_ref = quantize_act(x)
            x_deq = (q_ref.astype(np.float64).reshape(n, -1, 32) * d_ref.astype(np.float64).reshape(n, -1, 1)).reshape(n, cols)
            y_ref = x_deq @ w_ref.astype(np.float64).T
            mag = np.abs(x_deq) @ np.abs(w_ref.astype(np.float64)).T
            for isa in ISAS:
                rc = subprocess.run([tool, isa, inp, out]).returncode
                if rc == 77:
                    continue
                if rc != 0:
                    print(f"FAIL {isa} {NAMES[t]}{' (extreme)' if extreme else ''}: tool exited {rc}")
                    failures += 1
                    continue
                ran.add(isa)
                data = open(out, "rb").read()
                o = 0
                deq = np.frombuffer(data, np.float32, rows * cols, o).reshape(rows, cols); o += 4 * rows * cols
                q = np.frombuffer(data, np.int8, n * cols, o).reshape(n, cols); o += n * cols
                d = np.frombuffer(data, np.float32, n * cols // 32, o); o += 4 * n * cols // 32
                y = np.frombuffer(data, np.float32, n * rows, o).reshape(n, rows); o += 4 * n * rows
                has_packed = np.frombuffer(data, np.int32, 1, o)[0]; o += 4
                y_packed = np.frombuffer(data, np.float32, n * rows, o).reshape(n, rows) if has_packed else None
                problems = []
                if not np.array_equal(deq.view(np.uint32), w_ref.view(np.uint32)):
                    bad = np.argwhere(deq.view(np.uint32) != w_ref.view(np.uint32))[0]
                    problems.append(f"dequantisation differs at {tuple(bad)}: {deq[tuple(bad)]} vs {w_ref[tuple(bad)]}")
                if not np.array_equal(q, q_ref) or not np.array_equal(d.view(np.uint32), d_ref.reshape(-1).view(np.uint32)):
                    problems.append("quantised activations differ")
                err = np.abs(y.astype(np.float64) - y_ref) / mag
                if err.max() > 1e-5:
                    problems.append(f"dot products: worst error {err.max():.3g} of the absolute sum (limit 1e-5)")
                if has_packed:
                    err_p = np.abs(y_packed.astype(np.float64) - y_ref) / mag
                    if err_p.max() > 1e-5:
                        problems.append(f"packed dot products: worst error {err_p.max():.3g} of the absolute sum (limit 1e-5)")
                for p in problems:
                    print(f"FAIL {isa} {NAMES[t]}{' (extreme)' if extreme else ''}: {p}")
                failures += len(problems)
                if not problems:
                    packed = f", packed {err_p.max():.2g}" if has_packed else ""
                    print(f"ok   {isa:10s} {NAMES[t]}{' (extreme)' if extreme else ''}: dequantisation exact, worst dot error {err.max():.2g}{packed}")
    if "generic" not in ran:
        print("FAIL: the portable kernels did not run")
        failures += 1
    print(f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
