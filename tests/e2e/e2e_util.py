"""Shared pieces of the e2e suite's Python tests: where things are, how to drive the tfm program,
how to compare, and how to report.

Environment (set by tests/e2e/meson.build):
    E2E_MODELS  folder for the generated NAME.gguf / NAME.npz and the SentencePiece model (made on demand)
    E2E_TOOLS   tests/tools (torch_reference.py, llama_oracle.mjs)
    TFM_CLI     the tfm program
    NODE        the node interpreter (conformance tests only)
"""
import fcntl
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

SKIP = 77  # meson's exit code for a skipped test


class Checks:
    """Collects failed checks so one run reports all of them; exit code 1 when any failed."""

    def __init__(self, name):
        self.name = name
        self.failed = 0
        self.passed = 0

    def check(self, ok, message):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {message}", flush=True)
        return ok

    def info(self, message):
        print(message, flush=True)

    def finish(self):
        print(f"{self.name}: {self.passed} checks passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def fatal(message):
    print(f"ERROR: {message}", flush=True)
    sys.exit(1)


def skip(message):
    print(f"SKIP: {message}", flush=True)
    sys.exit(SKIP)


def env_path(name):
    value = os.environ.get(name)
    if not value:
        fatal(f"{name} is not set: run this test through meson (meson test -C BUILD --suite e2e)")
    return value


# The tiny test models: name -> make_model.py arguments. All share one 1000-piece SentencePiece
# vocabulary trained on the KJV text; each also gets its HF-layout weights (NAME.npz).
MODELS = {
    "mha-f32": ["--shape", "tiny", "--dtype", "f32"],
    "gqa-f32": ["--shape", "tiny-gqa", "--dtype", "f32"],
    "gqa-f16": ["--shape", "tiny-gqa", "--dtype", "f16"],
    "gqa-bf16": ["--shape", "tiny-gqa", "--dtype", "bf16"],
    "gqa-tied-llama3-f32": ["--shape", "tiny-gqa", "--dtype", "f32", "--tied", "--rope-llama3", "8,1,4,64",
                            "--rope-theta", "500000", "--seed", "77"],
}
GENERATORS = ("make_model.py", "gguf_writer.py", "train_spm.py")
SPM_NAME = "kjv-bpe1000"


def _generator_stamp(args):
    """What a generated file depends on: the command and the generators' source."""
    h = hashlib.sha256(json.dumps(args).encode())
    for f in GENERATORS:
        with open(os.path.join(tools_dir(), f), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def _generate(outputs, args, stamp_path):
    """Runs a generator unless its outputs exist with a matching stamp; returns nothing, dies on error."""
    stamp = _generator_stamp(args)
    if all(os.path.exists(o) for o in outputs) and os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if f.read() == stamp:
                return
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        fatal(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    with open(stamp_path, "w") as f:
        f.write(stamp)


def models_dir():
    return env_path("E2E_MODELS")


def spm_dir():
    return os.path.join(models_dir(), "spm")


def ensure_model(name):
    """Generates model `name` (and the vocabulary) into E2E_MODELS unless it is there and current.
    A lock file serialises tests that run in parallel."""
    if name not in MODELS:
        fatal(f"unknown test model {name!r} (known: {', '.join(MODELS)})")
    os.makedirs(models_dir(), exist_ok=True)
    with open(os.path.join(models_dir(), ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        spm = os.path.join(spm_dir(), SPM_NAME + ".model")
        _generate([spm], [sys.executable, os.path.join(tools_dir(), "train_spm.py"), spm_dir(),
                          "--vocab-size", "1000", "--name", SPM_NAME], spm + ".stamp")
        gguf = os.path.join(models_dir(), name + ".gguf")
        npz = os.path.join(models_dir(), name + ".npz")
        _generate([gguf, npz], [sys.executable, os.path.join(tools_dir(), "make_model.py"), gguf, "--spm", spm,
                                "--hf-npz", npz, "--name", "e2e-" + name] + MODELS[name], gguf + ".stamp")
    return gguf, npz


def model_path(name, ext="gguf"):
    gguf, npz = ensure_model(name)
    return gguf if ext == "gguf" else npz


def tools_dir():
    return env_path("E2E_TOOLS")


def cli():
    path = os.environ.get("TFM_CLI")
    if not path or not os.path.exists(path):
        fatal("the tfm program was not built (is the 'examples' option disabled?); the e2e tests drive it")
    return path


def run_cli(args, stdin=None, check=True):
    """Runs `tfm ARGS`, returns stdout (bytes). A nonzero exit is a test failure with its stderr shown."""
    cmd = [cli()] + [str(a) for a in args]
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=300)
    if check and r.returncode != 0:
        fatal(f"{' '.join(cmd)} exited with {r.returncode}:\n{r.stderr.decode(errors='replace')}")
    return r.stdout


def ids_arg(ids):
    return " ".join(str(int(i)) for i in ids)


def tfm_logits(model, ids, chunk=None, threads=2):
    """float32 logits of every position, [len(ids), n_vocab], from `tfm logits`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.npy")
        args = ["logits", "-m", model, "--ids", ids_arg(ids), "--out", out, "-t", threads, "--kv", "f32"]
        if chunk:
            args += ["--chunk", chunk]
        run_cli(args)
        x = np.load(out)
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[0] != len(ids):
        fatal(f"tfm logits wrote {x.dtype} {x.shape}, expected float32 [{len(ids)}, n_vocab]")
    return x


def tfm_tokenize(model, lines, bos=True):
    """Ids of each line, from `tfm tokenize --lines` (one output line per input line)."""
    data = b"".join(line.encode("utf-8") + b"\n" for line in lines)
    args = ["tokenize", "-m", model, "--lines"] + ([] if bos else ["--no-bos"])
    out = run_cli(args, stdin=data).decode()
    rows = out.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    if len(rows) != len(lines):
        fatal(f"tfm tokenize printed {len(rows)} lines for {len(lines)} input lines")
    return [[int(t) for t in row.split()] for row in rows]


def tfm_generate(model, prompt, n, temp=0.0, seed=None, extra=()):
    """The n ids `tfm run` generates from a text prompt (f32 KV cache, not stopping at EOS)."""
    args = ["run", "-m", model, "-p", prompt, "-n", n, "--temp", temp, "-t", 2, "--kv", "f32", "--ignore-eos",
            "--print-ids", "-q"] + list(extra)
    if seed is not None:
        args += ["--seed", seed]
    out = run_cli(args).decode(errors="replace")
    return parse_generated_ids(out)


def parse_generated_ids(stdout):
    """The ids of the 'ids: ...' line --print-ids adds after the text (the last such line: the
    generated text itself could hold one)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("ids:"):
            return [int(t) for t in line[4:].split()]
    fatal(f"no 'ids:' line in the output of tfm run:\n{stdout}")


def softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def rel_err(x, ref):
    """max |x - ref| / max |ref| (NaN anywhere counts as infinite error)."""
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    if x.shape != ref.shape:
        return float("inf")
    d = np.abs(x - ref)
    if not np.all(np.isfinite(d)):
        return float("inf")
    return float(d.max() / np.abs(ref).max())


def load_hf_npz(path):
    """(config dict, {HF tensor name: float array}) from make_model.py --hf-npz."""
    weights = {}
    with zipfile.ZipFile(path) as z:
        for member in z.namelist():
            with z.open(member) as fh:
                arr = np.lib.format.read_array(io.BytesIO(fh.read()), allow_pickle=False)
            name = member[:-4] if member.endswith(".npy") else member
            if name == "__config__":
                cfg = json.loads(str(arr))
            else:
                weights[name] = arr.astype(np.float32)
    return cfg, weights


def prompt_ids(n, n_vocab, seed, bos=1):
    """BOS and n-1 ordinary token ids (3.. skips <unk>, <s>, </s>), deterministic."""
    rng = np.random.default_rng(seed)
    return [bos] + [int(t) for t in rng.integers(3, n_vocab, size=n - 1)]


# Prompts for greedy continuations: verse beginnings, and text the training corpus lacks.
GREEDY_PROMPTS = [
    "In the beginning God created",
    "And the LORD spake unto Moses, saying,",
    "Blessed are the meek: for they",
    "The quick brown fox jumps over 13 lazy dogs.",
]
