"""Shared pieces of the python and examples suites: where the test model and programs are, how to
run the tfm program, and the independent oracles (sentencepiece, the PyTorch reference).

Environment (set by tests/python/meson.build):
    TFM_LIBRARY   the built libtfm.so          APPS_MODEL   the generated GGUF model
    PYTHONPATH    bindings/python              APPS_NPZ     its HF-layout weights and config
    TFM_CLI       the tfm program              APPS_SPM     its SentencePiece model
    APPS_TOOLS    tests/tools                  APPS_CORPUS  the KJV text the vocabulary was trained on
    TFM_EXAMPLE_C / TFM_EXAMPLE_CPP / TFM_EXAMPLE_GAME   the example programs (examples suite)
"""
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest


def env_path(name, required=True):
    value = os.environ.get(name)
    if not value or not os.path.exists(value):
        if required:
            pytest.fail(f"{name} is not set or missing ({value!r}): run through meson test")
        pytest.skip(f"{name} is not available (that part of the build is disabled)")
    return value


def model_path():
    return env_path("APPS_MODEL")


def cli(*args, stdin=None, check=True, timeout=120):
    """Runs the tfm program; returns the CompletedProcess (stdout/stderr as bytes)."""
    cmd = [env_path("TFM_CLI", required=False)] + [str(a) for a in args]
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited with {r.returncode}:\n{r.stderr.decode(errors='replace')}")
    return r


def run_program(path, *args, stdin=None, timeout=120):
    return subprocess.run([path] + [str(a) for a in args], input=stdin, capture_output=True, timeout=timeout)


def parse_ids_line(stdout: bytes):
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith("ids:"):
            return [int(t) for t in line[4:].split()]
    pytest.fail(f"no 'ids:' line in:\n{stdout!r}")


def sentencepiece():
    import sentencepiece as spm
    return spm.SentencePieceProcessor(model_file=env_path("APPS_SPM"))


def hf_config_and_weights():
    """(config dict, {HF name: float32 array}) of the test model, from make_model.py --hf-npz."""
    weights, cfg = {}, None
    with zipfile.ZipFile(env_path("APPS_NPZ")) as z:
        for member in z.namelist():
            with z.open(member) as fh:
                arr = np.lib.format.read_array(io.BytesIO(fh.read()), allow_pickle=False)
            name = member[:-4] if member.endswith(".npy") else member
            if name == "__config__":
                cfg = json.loads(str(arr))
            else:
                weights[name] = arr.astype(np.float32)
    return cfg, weights


def torch_reference():
    sys.path.insert(0, env_path("APPS_TOOLS"))
    from torch_reference import LlamaReference
    cfg, weights = hf_config_and_weights()
    return LlamaReference(cfg, weights), cfg


def corpus_lines(n, start=0):
    with open(env_path("APPS_CORPUS"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    return lines[start:start + n]


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
