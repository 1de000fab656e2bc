"""The tfm program: every subcommand on the test model, checked against sentencepiece, the model's
generated config and the program's own other subcommands; usage errors and library errors."""
import json
import os

import numpy as np
import pytest

import apps_util as u

LINES = ["In the beginning God created the heaven and the earth.", "", "  two  spaces", "tab\there",
         "carriage return\r", "café ☃ naïve", "<s> is text unless --special"]


def test_version():
    r = u.cli("--version")
    assert r.stdout.decode().startswith("tfm 0.1.0 (libtfm 0.1.0") and "cpu" in r.stdout.decode()


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "usage"),
    (["frobnicate"], 2, "unknown command"),
    (["run", "--bogus"], 2, "unknown option '--bogus'"),
    (["run", "-m", "x", "-p", "y", "-n", "many"], 2, "-n expects an integer"),
    (["run", "-p", "y"], 2, "-m MODEL is required"),
    (["logits", "-m", "x", "--ids", "1 two", "--out", "o.npy"], 2, "not a token id"),
    (["bench", "-m", "x", "-r", "0"], 2, "-r >= 1"),
    (["run", "-m", "/nonexistent/m.gguf", "-p", "x"], 1, "/nonexistent/m.gguf"),
    (["info", "-m", "/nonexistent/m.gguf"], 1, "cannot load model"),
    (["tokenize", "-m", "/nonexistent/tok.model", "-p", "x"], 1, "cannot read a tokenizer"),
])
def test_errors_exit_codes_and_messages(args, code, message):
    r = u.cli(*args, check=False)
    assert r.returncode == code, r.stderr
    assert message in r.stderr.decode(), r.stderr
    assert r.stdout == b""


def test_help():
    for cmd in ("run", "info", "tokenize", "logits", "bench", "perplexity"):
        r = u.cli(cmd, "--help")
        assert b"usage: tfm " + cmd.encode() in r.stdout and b"--help" in r.stdout


def test_info_matches_the_generated_config():
    cfg, _ = u.hf_config_and_weights()
    out = u.cli("info", "-m", u.model_path()).stdout.decode()
    fields = dict(line.split(":", 1) for line in out.splitlines())
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["architecture"] == "llama" and fields["format"] == "gguf" and fields["name"] == "apps-gqa-f32"
    assert int(fields["vocabulary"]) == cfg["vocab_size"]
    assert int(fields["layers"]) == cfg["num_hidden_layers"]
    assert fields["heads"].startswith(f"{cfg['num_attention_heads']} (kv {cfg['num_key_value_heads']},")
    assert int(fields["feed-forward"]) == cfg["intermediate_size"]
    assert fields["tokenizer"].startswith("sentencepiece-bpe, 1000 tokens")
    n_params = sum(int(np.prod(w.shape)) for w in u.hf_config_and_weights()[1].values())
    assert fields["parameters"].startswith(f"{n_params} ")


def tokenize_lines(path, *flags, data=None):
    data = data if data is not None else b"".join(line.encode() + b"\n" for line in LINES)
    out = u.cli("tokenize", "-m", path, "--lines", *flags, stdin=data).stdout.decode()
    rows = out.split("\n")
    assert rows[-1] == ""
    return [[int(t) for t in row.split()] for row in rows[:-1]]


def test_tokenize_lines_equals_sentencepiece():
    sp = u.sentencepiece()
    assert tokenize_lines(u.model_path()) == [[sp.bos_id()] + sp.encode(x) for x in LINES]
    assert tokenize_lines(u.model_path(), "--no-bos") == [sp.encode(x) for x in LINES]
    # the tokenizer file on its own gives the same ids as the model's vocabulary
    assert tokenize_lines(u.env_path("APPS_SPM")) == tokenize_lines(u.model_path())
    # a last line without '\n' is a line; '\r\n' keeps the '\r'
    assert tokenize_lines(u.model_path(), "--no-bos", data=b"a\r\nb") == [sp.encode("a\r"), sp.encode("b")]
    assert tokenize_lines(u.model_path(), data=b"") == []


def test_tokenize_special_and_single_text():
    sp = u.sentencepiece()
    one = u.cli("tokenize", "-m", u.model_path(), "-p", "<s>x", "--no-bos", "--special").stdout.split()
    assert [int(t) for t in one] == [sp.bos_id()] + sp.encode("x")
    plain = u.cli("tokenize", "-m", u.model_path(), "-p", "<s>x", "--no-bos").stdout.split()
    assert [int(t) for t in plain] == sp.encode("<s>x")
    whole = u.cli("tokenize", "-m", u.model_path(), "--no-bos", stdin=b"line one\nline two\n").stdout.split()
    assert [int(t) for t in whole] == sp.encode("line one\nline two\n")


def logits(tmp_path, ids, *extra):
    out = tmp_path / "l.npy"
    u.cli("logits", "-m", u.model_path(), "--ids", " ".join(map(str, ids)), "--out", out, "-t", 1, *extra)
    return np.load(out)


def test_logits_npy_and_chunks(tmp_path):
    ids = [1] + list(range(40, 90))
    x = logits(tmp_path, ids)
    assert x.dtype == np.float32 and x.shape == (len(ids), 1000) and np.isfinite(x).all()
    for chunk in (1, 7):
        y = logits(tmp_path, ids, "--chunk", chunk)
        assert np.abs(y - x).max() <= 1e-5 * np.abs(x).max()
    # the first rows do not depend on later tokens (causal)
    np.testing.assert_allclose(logits(tmp_path, ids[:5]), x[:5], rtol=0, atol=1e-5 * np.abs(x).max())
    r = u.cli("logits", "-m", u.model_path(), "--ids", "1 1000", "--out", tmp_path / "o.npy", check=False)
    assert r.returncode == 1 and b"out of range" in r.stderr and not (tmp_path / "o.npy").exists()


def test_logits_match_the_pytorch_reference(tmp_path):
    ref, _ = u.torch_reference()
    ids = [1] + list(range(200, 230))
    x = logits(tmp_path, ids)
    want = ref.logits(ids).numpy()
    assert np.abs(x - want).max() / np.abs(want).max() <= 1e-4


def test_run_streams_text_and_reports_speed(tmp_path):
    sp = u.sentencepiece()
    prompt = "And God said,"
    ids_file = tmp_path / "ids.txt"
    r = u.cli("run", "-m", u.model_path(), "-p", prompt, "-n", 16, "--temp", 0, "-t", 1, "--print-ids",
              "--ids-out", ids_file)
    ids = u.parse_ids_line(r.stdout)
    assert 0 < len(ids) <= 16
    assert [int(t) for t in ids_file.read_text().split()] == ids
    text = r.stdout.decode()[: r.stdout.decode().rindex("ids:")]
    decoded = sp.decode(ids)
    assert text == (decoded if decoded.endswith("\n") else decoded + "\n")
    err = r.stderr.decode()
    assert f"prompt:     {len(sp.encode(prompt)) + 1:5d} tokens" in err and "generation:" in err and "tokens/s" in err
    # the same greedy run gives the same ids; -q silences the figures
    r2 = u.cli("run", "-m", u.model_path(), "-p", prompt, "-n", 16, "--temp", 0, "--print-ids", "-q")
    assert u.parse_ids_line(r2.stdout) == ids and r2.stderr == b""


def test_run_sampling_options_and_context():
    base = ["run", "-m", u.model_path(), "-p", "And God said,", "-n", 12, "-q", "--print-ids"]
    a = u.parse_ids_line(u.cli(*base, "--temp", 1.0, "--seed", 5, "--top-k", 0, "--top-p", 1, "--min-p", 0).stdout)
    b = u.parse_ids_line(u.cli(*base, "--temp", 1.0, "--seed", 5, "--top-k", 0, "--top-p", 1, "--min-p", 0).stdout)
    assert a == b
    k1 = u.parse_ids_line(u.cli(*base, "--temp", 1.0, "--seed", 5, "--top-k", 1).stdout)
    greedy = u.parse_ids_line(u.cli(*base, "--temp", 0).stdout)
    assert k1 == greedy  # top-k 1 leaves only the argmax
    # a context shorter than the prompt: the library's error, exit code 1
    r = u.cli(*base, "--ctx", 3, check=False)
    assert r.returncode == 1 and b"context full" in r.stderr
    # a context that fills up while generating ends the text early, not in an error
    r = u.cli("run", "-m", u.model_path(), "-p", "And God said,", "-n", 30, "--temp", 0, "--ctx", 10, "--print-ids")
    n_prompt = 1 + len(u.sentencepiece().encode("And God said,"))
    assert len(u.parse_ids_line(r.stdout)) == 10 - n_prompt + 1 and b"is full" in r.stderr


def test_bench_json_and_table():
    r = u.cli("bench", "-m", u.model_path(), "-p", 16, "-n", 8, "-r", 3, "-t", 1, "--json")
    rows = json.loads(r.stdout)
    assert [row["test"] for row in rows] == ["pp16", "tg8"]
    for row in rows:
        assert row["reps"] == 3 and len(row["samples_ts"]) == 3 and row["avg_ts"] > 0
        assert row["avg_ts"] == pytest.approx(np.mean(row["samples_ts"]), rel=1e-6)
        assert row["stddev_ts"] == pytest.approx(np.std(row["samples_ts"], ddof=1), rel=1e-5, abs=1e-6)
        assert row["model_n_params"] > 0 and row["n_threads"] == 1
    assert (rows[0]["n_prompt"], rows[0]["n_gen"], rows[1]["n_prompt"], rows[1]["n_gen"]) == (16, 0, 0, 8)
    table = u.cli("bench", "-m", u.model_path(), "-p", 8, "-n", 0, "-r", 1, "-t", 1).stdout.decode()
    assert "| pp8 |" in table and "tg" not in table and " ± " in table
