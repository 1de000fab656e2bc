#!/usr/bin/python3
"""Writes the seed corpora and the fixed inputs of the fuzz targets, from the test-model generators.

    make_seeds.py OUT_DIR

OUT_DIR receives (idempotent: a stamp file records the inputs' hash; concurrent runs wait on a lock):
    seeds/gguf/     small GGUF llamas from tests/tools/make_model.py (every dtype, tied, GQA, Llama-3 RoPE,
                    a SentencePiece vocabulary or byte tokens), shrunk to a 16-wide shape
    seeds/hf/       config.json + NUL + model.safetensors from tests/tools/make_hf_model.py
    seeds/spm/      SentencePiece .model files trained by tests/tools/train_spm.py and sentencepiece
                    (BPE and Unigram, identity and nmt_nfkc normalisation)
    seeds/tokjson/  tokenizer.json (+ NUL + tokenizer_config.json): byte-level BPE and byte-fallback BPE
    seeds/text/     text for fuzz_text (a selector byte, then the text)
    seeds/api/      call programs for fuzz_api
    vocab/          the fixed vocabularies of fuzz_text (kjv-bpe512.model, bytelevel/tokenizer.json)
    model.gguf      the fuzz_api model (tiny shape, SentencePiece vocabulary), also used by the
                    concurrency, malformed (limits) and valgrind suites
    deep.gguf       8 layers of the tiny width (the abort-callback test counts layers)
    hf-model/       a Hugging Face directory (config.json, model.safetensors, tokenizer.model)
    env             shell assignments TFM_FUZZ_VOCABS=... TFM_FUZZ_MODEL=...
"""
import fcntl
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")
sys.path.insert(0, TOOLS)


def run_make_model(argv):
    """tests/tools/make_model.py with its command line, plus a 'fuzz' shape small enough to mutate."""
    import make_model
    make_model.SHAPES["fuzz"] = (16, 1, 2, 1, 32, 32, None)
    make_model.SHAPES["fuzz-mha"] = (16, 2, 2, 2, 32, 16, None)
    make_model.SHAPES["deep"] = (64, 8, 4, 2, 128, 512, None)
    saved = sys.argv
    sys.argv = ["make_model.py"] + argv
    try:
        make_model.main()
    finally:
        sys.argv = saved


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map (printable Latin-1 stays, the rest moves to 256+)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def bytelevel_tokenizer(text, n_merges=60):
    """A small byte-level BPE tokenizer.json: 256 byte symbols plus merges learned on `text`."""
    b2u = bytes_to_unicode()
    words = {}
    for w in text.split(" "):
        key = tuple(b2u[b] for b in (" " + w).encode("utf-8"))
        words[key] = words.get(key, 0) + 1
    vocab = {b2u[b]: i for i, b in enumerate(range(256))}
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(f"{a} {b}")
        vocab[a + b] = len(vocab)
        merged = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    bos = len(vocab)
    return {
        "version": "1.0",
        "added_tokens": [{"id": bos, "content": "<|begin_of_text|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True},
                         {"id": bos + 1, "content": "<|end_of_text|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                                                   "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
                                                   "\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                                                                    "ids": [bos], "tokens": ["<|begin_of_text|>"]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }


def bytefallback_tokenizer():
    """A byte-fallback BPE tokenizer.json as Llama-2/Mistral ship it (Prepend + Replace, no pre-tokenizer)."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    pieces = ["\u2581", "t", "h", "e", "a", "n", "d", "\u2581t", "he", "\u2581the", "\u2581a", "nd", "\u2581and"]
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    merges = ["\u2581 t", "h e", "\u2581t he", "\u2581 a", "n d", "\u2581a nd"]
    return {
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
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "vocab": vocab,
                  "merges": merges},
    }


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def api_programs():
    """Call programs for fuzz_api (opcode byte, then its arguments; see fuzz_api.c)."""
    create = lambda slot, ctx, b, c: bytes([0, slot, ctx, b, c])
    ev = lambda slot, ids: bytes([1, slot, len(ids)] + list(ids))
    progs = {
        "eval-logits": create(0, 32, 0, 0) + ev(0, [1, 5, 9, 13]) + bytes([4, 0, 0, 5, 0]) + ev(0, [7]) + bytes([4, 0, 0]),
        "logits-all": create(1, 40, 4 | 8 * 3, 0) + ev(1, range(10)) + bytes([4, 1, 1, 5, 1]),
        "rewind": create(0, 16, 0, 0) + ev(0, [3, 4, 5, 6]) + bytes([3, 0, 3, 4, 0, 0]) + ev(0, [2]) + bytes([5, 0]),
        "context-full": create(2, 6, 1, 0) + ev(2, [1, 2, 3, 4, 5]) + ev(2, [6, 7]) + bytes([4, 2, 0]),
        "generate": create(0, 40, 0, 0) + bytes([6, 0, 0, 8, 0]) + bytes([8, 0, 0, 3 | 5 << 3, 8 | 4, 1, 2, 3, 9, 9]),
        "abort": create(3, 40, 8 * 2, 129) + ev(3, range(20)) + bytes([4, 3, 0]),
        "sample-hostile": bytes([7, 0, 4, 8, 0, 1, 2, 3, 100, 200, 0, 0, 2, 1, 250]),
        "text-stream": bytes([9, 12]) + b"Hello <s>\xff\xe4x" + bytes([10, 4, 1, 0, 2, 0, 255, 255, 7, 0, 1]),
        "tensors": bytes([11, 0, 1, 2, 3, 4, 5, 11, 8 * 4 + 1, 255, 255, 1, 1, 1, 11, 8 * 2 + 3, 254, 1, 1, 1, 1]),
        "nulls": bytes([12, 3, 12, 200]),
    }
    return progs


def build(out):
    seeds = os.path.join(out, "seeds")
    tmp = tempfile.mkdtemp(prefix="tfm-seeds-")
    try:
        # --- vocabularies: SentencePiece models trained on the KJV text --------------------------------
        vocab_dir = os.path.join(out, "vocab")
        os.makedirs(vocab_dir, exist_ok=True)
        import subprocess
        subprocess.run([sys.executable, os.path.join(TOOLS, "train_spm.py"), tmp, "--vocab-size", "512",
                        "--name", "kjv-bpe512"], check=True, stdout=subprocess.DEVNULL)
        spm_bpe = os.path.join(vocab_dir, "kjv-bpe512.model")
        shutil.copy(os.path.join(tmp, "kjv-bpe512.model"), spm_bpe)
        corpus = os.path.join(tmp, "kjv.txt")
        with open(corpus, encoding="utf-8") as f:
            kjv = f.read()
        small = os.path.join(tmp, "small.txt")
        with open(small, "w", encoding="utf-8") as f:
            f.write(kjv[:200000] + "\ncaf\u00e9 na\u00efve \u4e2d\u6587 \U0001F600 \uff76\uff80 \u00c5\u212b\n")
        import sentencepiece as spm
        for model_type, norm in (("unigram", "identity"), ("bpe", "nmt_nfkc"), ("unigram", "nfkc_cf")):
            prefix = os.path.join(tmp, f"{model_type}-{norm}")
            spm.SentencePieceTrainer.train(input=small, model_prefix=prefix, model_type=model_type, vocab_size=400,
                                           normalization_rule_name=norm, byte_fallback=True,
                                           user_defined_symbols=["<sep>"], minloglevel=2)
            os.makedirs(os.path.join(seeds, "spm"), exist_ok=True)
            shutil.copy(prefix + ".model", os.path.join(seeds, "spm", f"{model_type}-{norm}.model"))
        shutil.copy(spm_bpe, os.path.join(seeds, "spm", "kjv-bpe512.model"))

        bl = bytelevel_tokenizer(kjv[:50000])
        bl_path = os.path.join(vocab_dir, "bytelevel", "tokenizer.json")
        write(bl_path, json.dumps(bl, ensure_ascii=False).encode("utf-8"))
        bf = bytefallback_tokenizer()
        cfg = json.dumps({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, "add_eos_token": False,
                          "model_max_length": 4096}).encode()
        cfg3 = json.dumps({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                           "add_bos_token": True}).encode()
        write(os.path.join(seeds, "tokjson", "bytelevel.json"), json.dumps(bl).encode())
        write(os.path.join(seeds, "tokjson", "bytelevel-config.json"), json.dumps(bl).encode() + b"\0" + cfg3)
        write(os.path.join(seeds, "tokjson", "bytefallback.json"), json.dumps(bf).encode())
        write(os.path.join(seeds, "tokjson", "bytefallback-config.json"), json.dumps(bf).encode() + b"\0" + cfg)
        bl_small = bytelevel_tokenizer(kjv[:3000], n_merges=8)
        write(os.path.join(seeds, "tokjson", "bytelevel-small.json"), json.dumps(bl_small).encode())

        # --- GGUF models ----------------------------------------------------------------------------------
        gguf_dir = os.path.join(seeds, "gguf")
        os.makedirs(gguf_dir, exist_ok=True)
        variants = {
            "f32-spm": ["--shape", "fuzz", "--dtype", "f32", "--spm", spm_bpe],
            "f16-bytes": ["--shape", "fuzz", "--dtype", "f16"],
            "bf16-tied": ["--shape", "fuzz", "--dtype", "bf16", "--tied", "--spm", spm_bpe],
            "q8_0-mha": ["--shape", "fuzz-mha", "--dtype", "q8_0", "--ffn", "32"],
            "q4_0": ["--shape", "fuzz", "--dtype", "q4_0"],
            "llama3-rope": ["--shape", "fuzz", "--rope-llama3", "8,1,4,16", "--rope-theta", "500000"],
        }
        for name, argv in variants.items():
            run_make_model([os.path.join(gguf_dir, name + ".gguf"), "--seed", "7"] + argv)
        run_make_model([os.path.join(out, "model.gguf"), "--shape", "tiny", "--spm", spm_bpe, "--seed", "3"])
        run_make_model([os.path.join(out, "deep.gguf"), "--shape", "deep", "--spm", spm_bpe, "--seed", "4"])

        # --- Hugging Face directories -------------------------------------------------------------------
        import make_hf_model
        small_hf = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                        num_key_value_heads=1, vocab_size=24, max_position_embeddings=32)
        for preset, dtype in (("llama3-gqa", "BF16"), ("llama2-tied", "F16"), ("llama2-linear", "F32")):
            d = os.path.join(tmp, "hf-" + preset)
            over = dict(small_hf)
            if preset == "llama3-gqa":
                over["head_dim"] = 8
                over["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
            make_hf_model.make_hf_model(d, preset, dtype, 1, seed=5, **over)
            with open(os.path.join(d, "config.json"), "rb") as f:
                config = f.read()
            with open(os.path.join(d, "model.safetensors"), "rb") as f:
                weights = f.read()
            write(os.path.join(seeds, "hf", f"{preset}-{dtype}.bin"), config + b"\0" + weights)
        # a sharded directory: 0x01, then config, index and two shards, each after its u32 length
        d = os.path.join(tmp, "hf-sharded")
        make_hf_model.make_hf_model(d, "llama2-mha", "F16", 2, seed=5, **small_hf)
        packed = b"\x01"
        for name in ("config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                     "model-00002-of-00002.safetensors"):
            with open(os.path.join(d, name), "rb") as f:
                part = f.read()
            packed += struct.pack("<I", len(part)) + part
        write(os.path.join(seeds, "hf", "sharded-F16.bin"), packed)

        hf_dir = os.path.join(out, "hf-model")
        shutil.rmtree(hf_dir, ignore_errors=True)
        make_hf_model.make_hf_model(hf_dir, "llama2-mha", "F32", 1, seed=6, vocab_size=512, hidden_size=64,
                                    intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                    num_key_value_heads=4, max_position_embeddings=256)
        shutil.copy(spm_bpe, os.path.join(hf_dir, "tokenizer.model"))

        # --- text ---------------------------------------------------------------------------------------
        texts = [kjv[:400], kjv[5000:5300], "  leading and  double  spaces \t tabs\r\nand CRLF\n\n",
                 "caf\u00e9 na\u00efve \u4e2d\u6587 \U0001F600 \uff76\uff80 \u00c5\u212b \u0130stanbul",
                 "<s>not special</s> <|begin_of_text|> <unk> <0x41>", "1234567890 3.14159 I'm you're we'll",
                 "\u200b\u00a0\u3000\ufeff\u0085 odd spaces", ""]
        for i, t in enumerate(texts):
            for sel in (0x00, 0x01, 0x12, 0x33):
                write(os.path.join(seeds, "text", f"t{i}-{sel:02x}"), bytes([sel]) + t.encode("utf-8"))
        write(os.path.join(seeds, "text", "invalid-utf8"), b"\x00\xff\xfe\xc3\x28\xe2\x82\xf0\x9f\x98")

        # --- API programs -------------------------------------------------------------------------------
        for name, prog in api_programs().items():
            write(os.path.join(seeds, "api", name), prog)

        with open(os.path.join(out, "env"), "w") as f:
            f.write(f"TFM_FUZZ_VOCABS={spm_bpe}:{bl_path}\nTFM_FUZZ_MODEL={os.path.join(out, 'model.gguf')}\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def inputs_hash():
    h = hashlib.sha256()
    for path in [__file__] + [os.path.join(TOOLS, n) for n in ("make_model.py", "make_hf_model.py", "gguf_writer.py",
                                                               "safetensors_np.py", "train_spm.py")]:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = os.path.join(out, "stamp")
        want = inputs_hash()
        if os.path.exists(stamp) and open(stamp).read() == want:
            return
        for sub in ("seeds", "vocab"):
            shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        build(out)
        with open(stamp, "w") as f:
            f.write(want)


if __name__ == "__main__":
    main()
