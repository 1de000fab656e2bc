#!/usr/bin/python3
"""Every backend either computes quantised weights or refuses them cleanly.

    test_quant_backends.py      (suite quant)

For each backend `tfm --version` lists other than cpu (the cpu backend is covered by the other quant
tests) and each quantised type, loading a model holding that type (tfm logits --backend NAME) must
either succeed or fail with status 'unsupported' and a message naming the type and the tensor, as
lib/model.c reports a weight_load refusal. Skipped when cpu is the only backend.
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quant_util as qu  # noqa: E402

u = qu.u


def backends():
    out = subprocess.run([u.cli(), "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"backends: ([^)]*)\)", out)
    if not m:
        u.fatal(f"tfm --version does not list its backends: {out!r}")
    return m.group(1).split()


def main():
    others = [b for b in backends() if b != "cpu"]
    if not others:
        u.skip("cpu is the only backend here")
    t = u.Checks("quant backends")
    # one model per type; q4_k_m also holds q6_k tensors next to q4_k ones
    models = {"q8_0": "q8_0", "q4_0": "q4_0-tied", "q4_k": "q4_k", "q5_k": "q5_k-tied", "q6_k": "q6_k"}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in others:
            for dtype, name in models.items():
                cmd = [u.cli(), "logits", "-m", qu.model(name), "--ids", "1 50 60", "-o",
                       os.path.join(tmp, "x.npy"), "--backend", backend]
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
                if r.returncode == 0:
                    t.info(f"{backend}: computes {dtype}")
                    continue
                err = r.stderr.strip()
                t.check("unsupported" in err and dtype in err and re.search(r"tensor '[^']+'", err),
                        f"{backend} refusing {dtype}: expected 'unsupported' naming {dtype} and the tensor, got:\n"
                        f"  {err}")
                t.info(f"{backend}: refuses {dtype}: {err}")
    t.finish()


if __name__ == "__main__":
    main()
