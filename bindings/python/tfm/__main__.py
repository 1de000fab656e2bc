"""python -m tfm: the tfm program's run, tokenize and info commands, through the Python bindings.

    python -m tfm run -m MODEL -p TEXT [-n N] [--temp T --top-k K --top-p P --min-p M
                      --repeat-penalty R --seed S --backend NAME -t THREADS --ctx N --stop STR ...]
    python -m tfm tokenize -m MODEL [--lines] [--no-bos] [--special]
    python -m tfm info -m MODEL
"""
import argparse
import sys
import time

from . import Model, TfmError, Tokenizer, backends, library_version


def _model_args(p):
    p.add_argument("-m", "--model", required=True, help="GGUF file or Hugging Face directory")
    p.add_argument("--backend", default="auto", help="auto, cpu, cuda (default auto)")
    p.add_argument("-t", "--threads", type=int, default=0, help="cpu threads; 0 = all cores")


def cmd_run(a):
    with Model.load(a.model, backend=a.backend, threads=a.threads) as model, \
            model.session(n_ctx=a.ctx, kv_dtype=a.kv) as session:
        prompt = model.tokenize(a.prompt, special=a.special)
        t0 = time.perf_counter()
        session.eval(prompt)
        t1 = time.perf_counter()
        ended_with_newline = True
        for piece in session.generate(None, a.n_predict, temperature=a.temp, top_k=a.top_k, top_p=a.top_p,
                                      min_p=a.min_p, repeat_penalty=a.repeat_penalty, seed=a.seed, stop=a.stop,
                                      ignore_eos=a.ignore_eos):
            sys.stdout.write(piece)
            sys.stdout.flush()
            ended_with_newline = piece.endswith("\n")
        t2 = time.perf_counter()
        ids = session.tokens[len(prompt):]  # generated and evaluated
        if not ended_with_newline:
            sys.stdout.write("\n")
        if a.print_ids:
            print("ids: " + " ".join(map(str, ids)))
        if not a.quiet:
            print(f"prompt:     {len(prompt):5d} tokens in {1e3 * (t1 - t0):8.1f} ms", file=sys.stderr)
            print(f"generation: {len(ids):5d} tokens in {1e3 * (t2 - t1):8.1f} ms, "
                  f"{len(ids) / max(t2 - t1, 1e-9):9.1f} tokens/s", file=sys.stderr)
    return 0


def cmd_tokenize(a):
    try:
        tok = Tokenizer.load(a.model)
    except TfmError:
        model = Model.load(a.model, threads=1)
        tok = model.tokenizer
    bos = not a.no_bos
    with tok:
        if a.lines:
            for line in sys.stdin.buffer:
                line = line[:-1] if line.endswith(b"\n") else line
                print(" ".join(map(str, tok.tokenize(line, bos=bos, eos=False, special=a.special))))
        else:
            text = a.prompt.encode() if a.prompt is not None else sys.stdin.buffer.read()
            print(" ".join(map(str, tok.tokenize(text, bos=bos, eos=False, special=a.special))))
    return 0


def cmd_info(a):
    with Model.load(a.model, backend=a.backend, threads=a.threads) as model:
        for key, value in vars(model.info).items():
            print(f"{key + ':':17s}{value}")
        with model.tokenizer as tok:
            print(f"{'tokenizer:':17s}{tok.kind}, {tok.vocab_size} tokens, bos {tok.bos_id}, eos {tok.eos_id}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tfm", description="libtfm from Python")
    ap.add_argument("--version", action="store_true", help="print the versions and backends")
    sub = ap.add_subparsers(dest="command")

    r = sub.add_parser("run", help="generate text from a prompt")
    _model_args(r)
    r.add_argument("-p", "--prompt", required=True)
    r.add_argument("-n", "--n-predict", type=int, default=128)
    r.add_argument("--temp", type=float, default=None, help="0 = greedy (default 0.8)")
    r.add_argument("--top-k", type=int, default=None)
    r.add_argument("--top-p", type=float, default=None)
    r.add_argument("--min-p", type=float, default=None)
    r.add_argument("--repeat-penalty", type=float, default=None)
    r.add_argument("-s", "--seed", type=int, default=None)
    r.add_argument("-c", "--ctx", type=int, default=0)
    r.add_argument("--kv", default="f16", choices=["f16", "bf16", "f32"])
    r.add_argument("--stop", action="append", default=[], help="stop at this text (repeatable)")
    r.add_argument("--ignore-eos", action="store_true")
    r.add_argument("--special", action="store_true", help="parse special-token text such as <s> in the prompt")
    r.add_argument("--print-ids", action="store_true", help="after the text, print 'ids: ...'")
    r.add_argument("-q", "--quiet", action="store_true")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("tokenize", help="token ids of text")
    t.add_argument("-m", "--model", required=True, help="model or tokenizer file/directory")
    t.add_argument("--lines", action="store_true")
    t.add_argument("-p", "--prompt")
    t.add_argument("--no-bos", action="store_true")
    t.add_argument("--special", action="store_true")
    t.set_defaults(func=cmd_tokenize)

    i = sub.add_parser("info", help="describe a model")
    _model_args(i)
    i.set_defaults(func=cmd_info)

    a = ap.parse_args(argv)
    if a.version:
        names = ", ".join(b.name + ("" if b.available else " (unavailable)") for b in backends())
        print(f"tfm (Python) with libtfm {library_version()}; backends: {names}")
        return 0
    if not a.command:
        ap.print_usage(sys.stderr)
        return 2
    try:
        return a.func(a)
    except TfmError as e:
        print(f"tfm {a.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
