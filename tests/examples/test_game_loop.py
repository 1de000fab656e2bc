"""The game-loop example: one model, several characters, single-threaded stepping within a frame
budget or one thread per character; the same text either way (and the same as the tfm program gives
with the same seed); cancellation by timeout and by a key press."""
import re

import pytest

import apps_util as u

# the cast of examples/game-loop/game_loop.c, in order; character k samples with seed 1000 + k
CAST = [("Moses", "And the LORD spake unto Moses, saying,"), ("David", "The LORD is my shepherd;"),
        ("Ruth", "And Ruth said, Intreat me not to leave thee,"), ("Solomon", "To every thing there is a season,")]


def game(*args, stdin=b""):
    r = u.run_program(u.env_path("TFM_EXAMPLE_GAME", required=False), u.model_path(), *args, stdin=stdin)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    summary = next(line for line in out.splitlines() if line.startswith("mode "))
    finals = {}
    for line in out.splitlines():
        m = re.match(r"final (\S+) (\S+) (\d+):(.*)$", line)
        if m:
            finals[m.group(1)] = (m.group(2), int(m.group(3)), m.group(4).replace("\\n", "\n"))
    frames = int(re.search(r"(\d+) frames \(", summary).group(1))
    return summary, finals, frames, out


def test_single_and_multi_thread_say_the_same_as_the_cli():
    tokens = 16
    _, single, _, out = game("--mode", "single", "--characters", 3, "--tokens", tokens, "--no-sleep")
    _, multi, _, _ = game("--mode", "multi", "--characters", 3, "--tokens", tokens, "--no-sleep")
    assert single == multi
    assert list(single) == [name for name, _ in CAST[:3]]
    for k, (name, prompt) in enumerate(CAST[:3]):
        state, n, text = single[name]
        # the library's default sampler settings in both programs, the same seed
        r = u.cli("run", "-m", u.model_path(), "-p", prompt, "-n", tokens, "--seed", 1000 + k, "-q", "--print-ids")
        ids = u.parse_ids_line(r.stdout)
        printed = r.stdout.decode()[: r.stdout.decode().rindex("ids:")]
        assert state == "done" and n == len(ids)
        assert printed == (text if text.endswith("\n") else text + "\n")
        # what was shown frame by frame adds up to the final text
        shown = "".join(m.replace("\\n", "\n") for m in re.findall(rf'^frame +\d+  {name} +\+"(.*)"$', out, re.M))
        assert shown == text


def test_the_budget_bounds_the_work_per_frame():
    tokens = 10
    _, finals, frames, _ = game("--characters", 3, "--tokens", tokens, "--budget-ms", 0.001, "--no-sleep",
                                "--quiet")
    # a budget too small for two steps: one step per frame, so at least one frame per token
    assert all(state == "done" for state, _, _ in finals.values())
    assert frames >= sum(n for _, n, _ in finals.values())
    _, _, frames_large, _ = game("--characters", 3, "--tokens", tokens, "--budget-ms", 1000, "--no-sleep", "--quiet")
    assert frames_large < frames


def test_timeout_cancels_mid_generation():
    summary, finals, frames, _ = game("--characters", 2, "--tokens", 200, "--budget-ms", 0.001,
                                      "--timeout-ms", 150, "--quiet")
    assert summary.endswith("cancelled by the timeout")
    assert all(state == "cancelled" and n < 200 for state, n, _ in finals.values())
    assert 3 <= frames <= 12  # 150 ms at 60 frames/s is 9 frames, give or take scheduling


def test_key_press_cancels_the_worker_threads():
    summary, finals, _, _ = game("--mode", "multi", "--characters", 4, "--tokens", 200, "--quiet", stdin=b"q")
    assert summary.endswith("cancelled by a key")
    assert len(finals) == 4
    assert all(state == "cancelled" and n < 200 for state, n, _ in finals.values())


def test_errors():
    exe = u.env_path("TFM_EXAMPLE_GAME", required=False)
    r = u.run_program(exe, "/nonexistent/model.gguf")
    assert r.returncode == 1 and b"/nonexistent/model.gguf" in r.stderr
    r = u.run_program(exe, u.model_path(), "--characters", 9)
    assert r.returncode == 2
