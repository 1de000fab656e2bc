#!/usr/bin/python3
"""Runs a test program on a generated e2e model: makes the model if needed, then `PROGRAM MODEL.gguf`.

    with_model.py MODEL_NAME PROGRAM [ARGS...]      (run by meson: suite e2e)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_util as u  # noqa: E402

if len(sys.argv) < 3:
    u.fatal("usage: with_model.py MODEL_NAME PROGRAM [ARGS...]")
gguf = u.model_path(sys.argv[1])
sys.stdout.flush()
os.execv(sys.argv[2], sys.argv[2:] + [gguf])
