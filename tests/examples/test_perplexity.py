"""`tfm perplexity` against a PyTorch reference that follows the documented windows exactly
(examples/tfm/cmd_perplexity.c): the file tokenized as one text without BOS, non-overlapping windows
of n_ctx - 1 ids each evaluated as [BOS] + window, every window id scored, exp(mean nll)."""
import json
import math

import numpy as np
import pytest
import torch

import apps_util as u

CTX = 64


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ppl") / "held-out.txt"
    path.write_text("\n".join(u.corpus_lines(40, start=20000)) + "\n", encoding="utf-8")
    return path


def reference_perplexity(text, ctx):
    ref, _ = u.torch_reference()
    sp = u.sentencepiece()
    ids = sp.encode(text)  # no BOS: the file is one text
    window = ctx - 1
    nll, count, windows = 0.0, 0, 0
    for start in range(0, len(ids), window):
        piece = ids[start:start + window]
        inp = [sp.bos_id()] + piece
        logits = ref.logits(inp).to(torch.float64)
        logp = torch.log_softmax(logits, dim=-1)
        nll -= sum(float(logp[j, piece[j]]) for j in range(len(piece)))
        count += len(piece)
        windows += 1
    return math.exp(nll / count), count, windows, len(ids)


def test_perplexity_equals_the_pytorch_reference(text_file):
    r = u.cli("perplexity", "-m", u.model_path(), "-f", text_file, "--ctx", CTX, "-t", 1, "--json")
    got = json.loads(r.stdout)
    want, count, windows, n_ids = reference_perplexity(text_file.read_text(encoding="utf-8"), CTX)
    assert got["n_tokens"] == n_ids and got["n_scored"] == count and got["n_windows"] == windows
    assert got["window"] == CTX - 1 and got["n_ctx"] == CTX and windows > 3
    assert got["perplexity"] == pytest.approx(want, rel=1e-3)  # the bound: 0.1 %
    assert abs(got["nll_sum"] / count - math.log(want)) < 1e-4  # and in fact much closer


def test_text_output_and_options(text_file):
    r = u.cli("perplexity", "-m", u.model_path(), "-f", text_file, "--ctx", CTX, "-t", 1, "--max-windows", 2,
              "-b", 16)
    line = r.stdout.decode().strip()
    assert line.startswith("perplexity: ") and "tokens scored in 2 windows of up to 63" in line
    assert r.stderr.decode().count(" ids scored, perplexity so far ") == 2
    # batch size changes nothing but the grouping of float sums
    one = json.loads(u.cli("perplexity", "-m", u.model_path(), "-f", text_file, "--ctx", CTX, "--max-windows", 2,
                           "--json").stdout)
    assert float(line.split()[1]) == pytest.approx(one["perplexity"], rel=1e-4)
    assert one["n_scored"] == 2 * (CTX - 1)


def test_errors(tmp_path):
    r = u.cli("perplexity", "-m", u.model_path(), "-f", tmp_path / "none.txt", check=False)
    assert r.returncode == 1 and b"none.txt" in r.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    r = u.cli("perplexity", "-m", u.model_path(), "-f", empty, check=False)
    assert r.returncode == 2 and b"holds no text" in r.stderr
    some = tmp_path / "some.txt"
    some.write_text("In the beginning")
    r = u.cli("perplexity", "-m", u.model_path(), "-f", some, "--ctx", 100000, check=False)
    assert r.returncode == 1 and b"cannot create a session" in r.stderr
