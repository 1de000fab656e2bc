#!/usr/bin/python3
"""SentencePiece conformance: libtfm's tokenizer against the sentencepiece library, line by line.

    test_spm_conformance.py TOK_DRIVER WORK_DIR [--only NAME]

Assembles the corpus (make_corpus.py), trains SentencePiece models on it with spm_train (BPE and
Unigram; nmt_nfkc, the default, and identity normalisation; byte fallback, user-defined and control
symbols, whitespace options), then for every model and every corpus line compares:
  ids       tok_driver's ids with sentencepiece's EncodeAsIds of the same bytes
  decode    tok_driver --decode of sentencepiece's ids with sentencepiece's DecodeIds
  special   with --special, "<s>"/"</s>" in the text become control ids: compared with sentencepiece
            run on the text between them (what a caller would otherwise do by hand)
  roundtrip decode(encode(x)) == x on the lines where sentencepiece round-trips, and the streaming
            decoder gives the same bytes as decode without releasing partial UTF-8 characters
The same vocabularies are also written into GGUF files (tokenizer.ggml.* as llama.cpp's converter
writes them) and loaded through the GGUF path, which follows llama.cpp: no normalisation, so only
identity-normalised BPE models are compared, on valid UTF-8 lines (sentencepiece turns malformed
bytes into U+FFFD first; llama.cpp keeps the bytes). Prints agreement per tokenizer; exits 1 unless
every comparison is 100 %.
"""
import os
import subprocess
import sys

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

MODELS = {
    # name: spm_train options
    "bpe-nfkc": ["--model_type=bpe", "--vocab_size=3000"],
    "unigram-nfkc": ["--model_type=unigram", "--vocab_size=3000"],
    "bpe-identity-fallback": ["--model_type=bpe", "--vocab_size=3000", "--normalization_rule_name=identity",
                              "--byte_fallback=true", "--remove_extra_whitespaces=false", "--split_digits=true",
                              "--allow_whitespace_only_pieces=true"],
    "unigram-identity-fallback": ["--model_type=unigram", "--vocab_size=3000", "--normalization_rule_name=identity",
                                  "--byte_fallback=true", "--user_defined_symbols=<sep>,WORLD,::",
                                  "--control_symbols=<ctl>"],
    "bpe-nfkc-user-suffix": ["--model_type=bpe", "--vocab_size=2000", "--user_defined_symbols=<sep>,http",
                             "--treat_whitespace_as_suffix=true", "--character_coverage=0.98"],
    "unigram-nodummy-noescape": ["--model_type=unigram", "--vocab_size=2000", "--add_dummy_prefix=false",
                                 "--normalization_rule_name=nfkc_cf", "--byte_fallback=true"],
}


# spm_train cannot switch escape_whitespaces off; protobuf merges a second occurrence of a message
# field into the first, so appending NormalizerSpec{escape_whitespaces: false} (field 3, length 2,
# field 5 = 0) to the file does it, for sentencepiece and for us alike.
PATCHES = {"unigram-nodummy-noescape": b"\x1a\x02\x28\x00"}


def train(work, name, opts, corpus):
    prefix = os.path.join(work, name)
    if not os.path.exists(prefix + ".model"):
        subprocess.run(["spm_train", f"--input={corpus}", f"--model_prefix={prefix}", "--num_threads=2",
                        "--minloglevel=2", "--max_sentence_length=20000", "--seed_sentencepiece_size=200000"] + opts,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if name in PATCHES:
            with open(prefix + ".model", "ab") as f:
                f.write(PATCHES[name])
    return prefix + ".model"


def driver(tok, model, args, data):
    out = subprocess.run([tok, model] + args, input=data, check=True, capture_output=True).stdout
    return out.split(b"\n")[:-1]


def write_gguf(sp, path):
    from gguf_writer import GGUF, GGUFWriter
    w = GGUFWriter()
    w.add("general.architecture", "llama")
    w.add("tokenizer.ggml.model", "llama")
    n = sp.get_piece_size()
    w.add_array("tokenizer.ggml.tokens", [sp.id_to_piece(i) for i in range(n)], GGUF.STRING)
    w.add_array("tokenizer.ggml.scores", [sp.get_score(i) for i in range(n)], GGUF.FLOAT32)
    types = []
    for i in range(n):
        t = 1
        if sp.is_unknown(i): t = 2
        elif sp.is_control(i): t = 3
        elif sp.is_unused(i): t = 5
        elif sp.is_byte(i): t = 6
        elif sp.id_to_piece(i) in ("<sep>", "WORLD", "::", "http"): t = 4
        types.append(t)
    w.add_array("tokenizer.ggml.token_type", types, GGUF.INT32)
    w.add("tokenizer.ggml.bos_token_id", sp.bos_id(), GGUF.UINT32)
    w.add("tokenizer.ggml.eos_token_id", sp.eos_id(), GGUF.UINT32)
    w.add("tokenizer.ggml.unknown_token_id", sp.unk_id(), GGUF.UINT32)
    w.add("tokenizer.ggml.add_bos_token", True)
    w.add("tokenizer.ggml.add_eos_token", False)
    w.write(path)


def compare(label, ours, ref, failures, limit=3):
    same = sum(1 for a, b in zip(ours, ref) if a == b)
    total = len(ref)
    ok = same == total and len(ours) == len(ref)
    print(f"  {label:<44} {same:>5}/{total:<5} {100.0 * same / max(total, 1):6.2f} %{'' if ok else '   FAIL'}")
    if not ok:
        shown = 0
        for i, (a, b) in enumerate(zip(ours, ref)):
            if a != b and shown < limit:
                print(f"      line {i}: ours {a[:200]!r}\n              ref  {b[:200]!r}")
                shown += 1
        failures.append(label)


def main():
    tok, work = sys.argv[1], sys.argv[2]
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    os.makedirs(work, exist_ok=True)
    corpus_dir = os.path.join(work, "corpus")
    if not os.path.exists(os.path.join(corpus_dir, "multilingual.txt")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"), corpus_dir], check=True)
    with open(os.path.join(corpus_dir, "multilingual.txt"), "rb") as f:
        data = f.read()
    lines = data.split(b"\n")[:-1]
    print(f"corpus: {len(lines)} lines, {len(data)} bytes")
    failures = []
    for name, opts in MODELS.items():
        if only and name != only:
            continue
        model = train(work, name, opts, os.path.join(corpus_dir, "train.txt"))
        sp = spm.SentencePieceProcessor(model_file=model)
        print(f"{name} ({sp.get_piece_size()} pieces)")
        ref_ids = [sp.encode(ln) for ln in lines]
        ref = [" ".join(map(str, ids)).encode() for ids in ref_ids]
        compare("ids", driver(tok, model, [], data), ref, failures)

        ids_text = b"\n".join(ref) + b"\n"
        ref_dec = [sp.decode(ids).encode("utf-8", "surrogatepass") for ids in ref_ids]
        compare("decode", driver(tok, model, ["--decode"], ids_text), ref_dec, failures)

        # Special tokens: "<s>" and "</s>" split the text; each piece is encoded on its own.
        def ref_special(ln):
            out, rest = [], ln
            while True:
                cut = [(rest.find(tok_), tok_) for tok_ in (b"<s>", b"</s>", b"<unk>") if rest.find(tok_) >= 0]
                if not cut:
                    return out + sp.encode(rest)
                pos, tok_ = min(cut, key=lambda c: (c[0], -len(c[1])))
                out += sp.encode(rest[:pos]) + [sp.piece_to_id(tok_.decode())]
                rest = rest[pos + len(tok_):]
        special_lines = [ln for ln in lines if b"<s>" in ln or b"</s>" in ln or b"<unk>" in ln]
        ref_sp = [" ".join(map(str, ref_special(ln))).encode() for ln in special_lines]
        compare("ids --special", driver(tok, model, ["--special"], b"\n".join(special_lines) + b"\n"), ref_sp,
                failures)

        check = driver(tok, model, ["--check"], data)
        rt_ref = [sp.decode(ids).encode("utf-8", "surrogatepass") == ln for ids, ln in zip(ref_ids, lines)]
        rt_lines = [i for i, r in enumerate(rt_ref) if r]
        compare(f"roundtrip (where sentencepiece round-trips)", [check[i].split()[0] for i in rt_lines],
                [b"1"] * len(rt_lines), failures)
        compare("stream == decode, whole characters", [c.split()[1] for c in check], [b"1"] * len(check), failures)

        if "identity" in name and "bpe" in name:
            gguf = os.path.join(work, name + ".gguf")
            write_gguf(sp, gguf)
            valid = [i for i, ln in enumerate(lines) if _valid_utf8(ln)]
            sub = b"\n".join(lines[i] for i in valid) + b"\n"
            ours = driver(tok, gguf, [], sub)
            compare("GGUF vocabulary ids (valid UTF-8 lines)", ours, [ref[i] for i in valid], failures)
            check = driver(tok, gguf, ["--check"], sub)
            compare("GGUF roundtrip (where sentencepiece does) + stream", check,
                    [b"1 1" if rt_ref[i] else b"0 1" for i in valid], failures)
    if failures:
        print(f"FAILED: {len(failures)} comparisons")
        sys.exit(1)
    print("all comparisons 100 %")


def _valid_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


if __name__ == "__main__":
    main()
