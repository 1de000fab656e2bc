"""The C example (simple) and the C++ chat example on the test model: their greedy text against the
tfm program, their error paths. (Like the whole examples suite, this runs only programs, never loads
libtfm into Python, so it also runs on a sanitizer build.)"""
import pytest

import apps_util as u


def c_exe():
    return u.env_path("TFM_EXAMPLE_C", required=False)


def cpp_exe():
    return u.env_path("TFM_EXAMPLE_CPP", required=False)


@pytest.mark.parametrize("prompt", ["In the beginning", "And Moses said unto the LORD,"])
def test_c_example_prints_the_greedy_text(prompt):
    r = u.run_program(c_exe(), u.model_path(), prompt, 20)
    assert r.returncode == 0, r.stderr
    want = u.cli("run", "-m", u.model_path(), "-p", prompt, "-n", 20, "--temp", 0, "-q").stdout
    assert r.stdout == want
    n_prompt = 1 + len(u.sentencepiece().encode(prompt))
    assert f"{n_prompt} prompt tokens, 20 generated".encode() in r.stderr


def test_c_example_reports_failures():
    r = u.run_program(c_exe(), "/nonexistent/model.gguf")
    assert r.returncode == 1 and b"tfm_model_load failed" in r.stderr and b"/nonexistent/model.gguf" in r.stderr
    assert u.run_program(c_exe()).returncode == 2


LINES = ["In the beginning", "And God said,", "The LORD is my shepherd"]


def test_chat_replies_once_per_line():
    r = u.run_program(cpp_exe(), u.model_path(), "--max-tokens", 16,
                      stdin="\n".join(LINES[:1] + [""] + LINES[1:]).encode() + b"\n")
    assert r.returncode == 0, r.stderr
    replies = r.stdout.decode().split("\n")
    assert replies[-1] == "" and len(replies) == len(LINES) + 1  # the empty line is not a turn
    # the first turn is a plain greedy continuation of the line, ended by a newline or the limit
    greedy = u.cli("run", "-m", u.model_path(), "-p", LINES[0], "-n", 16, "--temp", 0, "-q").stdout.decode()
    assert replies[0] == greedy.split("\n")[0]


def test_chat_starts_over_when_the_context_is_full():
    r = u.run_program(cpp_exe(), u.model_path(), "--max-tokens", 12, "--ctx", 24,
                      stdin=("\n".join(LINES * 2) + "\n").encode())
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.decode().split("\n")) == 2 * len(LINES) + 1
    assert b"[context full: starting over from this turn]" in r.stderr


def test_chat_errors():
    r = u.run_program(cpp_exe(), "/nonexistent/model.gguf", stdin=b"hi\n")
    assert r.returncode == 1 and b"chat: loading /nonexistent/model.gguf" in r.stderr
    r = u.run_program(cpp_exe(), u.model_path(), "--bogus", stdin=b"")
    assert r.returncode == 2
