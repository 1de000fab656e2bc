#!/usr/bin/python3
"""Assembles the tokenizer test corpora from text found on this machine.

    make_corpus.py OUT_DIR

Writes, one sample per line (lines split on b"\\n" only: a "\\r" stays in its line):
  OUT_DIR/multilingual.txt  the conformance corpus: English prose, source code, translations
                            (Chinese, Japanese, Korean, Arabic, Hindi, Russian, Greek, Hebrew, Thai,
                            ... from the machine's gettext catalogues), and edge cases (emoji, combining
                            marks, runs of spaces / tabs / newlines, CRLF, long digit runs, contractions,
                            invalid UTF-8, special-token strings)
  OUT_DIR/train.txt         the training text for spm_train (the corpus minus the edge cases, so
                            trained models still meet unknown characters)
  OUT_DIR/english.txt       English prose for the throughput benchmark (~4 MB)

Sources, in order of preference: the King James Bible (Debian bible-kjv), the GPL licence texts in
/usr/share/common-licenses, C headers in /usr/include, Python's standard library, and the .mo message
catalogues under /usr/share/locale. Selection is deterministic (sorted names, fixed counts).
"""
import gettext
import glob
import os
import shutil
import subprocess
import sys

LANGS = ["ja", "ko", "zh_CN", "zh_TW", "ar", "hi", "ru", "uk", "el", "he", "th", "fa", "vi", "de", "fr",
         "es", "pl", "tr", "bn", "ta", "ka", "am"]
PER_LANG = 120

EDGE_CASES = [
    "   three leading spaces", "trailing spaces   ", "many      spaces   between", "\ttab\tseparated\tvalues",
    "\t\t", " ", "    ", "", "CRLF ends here\r", "\r", "mixed \r inside \r\r", "a\u3000ideographic\u3000space",
    "no\u00a0break\u00a0space", "1234567890123456789012345678901234567890", "3.14159265358979 and 2,718,281,828.459",
    "year 2024-05-17 at 13:45:09, +1-555-0100", "I'm sure you're right; he's done, we've won, they'll go, she'd say",
    "DON'T SHOUT, IT'S LOUD, WE'RE HERE, I'LL", "can't won't shan't y'all o'clock rock'n'roll",
    "emoji 👋🌍 family 👨‍👩‍👧‍👦 flags 🇯🇵🇫🇷 thumbs 👍🏽 heart ❤️ coffee ☕ snake 🐍",
    "😀😃😄😁😆😅😂🤣🥲☺️😊😇🙂🙃😉😌😍🥰😘",
    "combining: e\u0301 a\u0308 n\u0303 o\u0302\u0323 A\u030a vs \u00c5, Z\u0351\u0352\u0353alg\u0300\u0301o",
    "ligatures ﬁ ﬂ ﬀ, circled ① ② ⑩, fullwidth ＡＢＣ１２３, halfwidth ｶﾀｶﾅ, squared ㌀ ㍻, roman Ⅻ",
    "zero\u200bwidth\u200cjoiners\u200d and soft\u00adhyphen", "math ∑∫√∞ ≤ ≥ ≠ ∂x/∂t, arrows ← → ⇒",
    "Hello世界мир عالم दुनिया 안녕 こんにちは שלום สวัสดี", "Tiếng Việt có dấu: đường phố Hà Nội",
    "<s>hello</s>", "<unk> <pad> <s> </s>", "<|begin_of_text|>Hi<|eot_id|><|start_header_id|>user<|end_header_id|>",
    "[INST] question [/INST] answer</s>", "<0x41> is not a byte", "▁already▁escaped▁spaces",
    "unicode replacement \ufffd char", "private use \ue000\uf8ff and astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀",
    "C:\\Program Files\\x86\\path", "def f(x):", "    return {'a': [1, 2, 3]}  # comment",
    "int main(void) { printf(\"%d\\n\", 42); }", "x=1;y=2;z=x+y;;;;", "!!!???...,,,;;;:::",
    "a" * 300, "ab" * 150 + " " + "xyz " * 40, "🙂" * 50,
] + [
    # Characters regex engines and normalisers disagree about (is it whitespace? a control?)
    f"a{c}{c}b{c} x{c}" for c in "\u0085\ufeff\u180e\u2028\u2029\u001c\u001f\u000b\u000c\u00a0\u200b\u2007\u202f\u3000\u1680"
] + ["\ufeffBOM first", "\u0085\u0085  nel", "word\u2028\u2028", "tab\t\t\tthen spaces   \t  end"]
INVALID_UTF8 = [
    b"\xff\xfe bad lead bytes", b"truncated at end \xe4\xb8", b"\xc0\xaf overlong slash", b"\xed\xa0\x80 surrogate",
    b"ok \xe4\xb8\xad mid \x80 stray continuation", b"\xf4\x90\x80\x80 above U+10FFFF", b"\xe4\xb8 then ascii",
    b"mix \xe2\x96 \xe2\x96\x81 \xf0\x9f\x98", b"\xfe\xff\xfe\xff", b"latin-1 caf\xe9 na\xefve",
]


def run(cmd):
    try:
        return subprocess.run(cmd, check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return b""


def english_prose():
    if shutil.which("bible") and os.path.exists("/usr/lib/bible.data"):
        out = run(["bible", "-f", "gen1:1-rev22:21"]).decode("utf-8", "replace")
        lines = [ln.split(" ", 1)[1] for ln in out.splitlines() if " " in ln]
        if len(lines) > 1000:
            return lines
    lines = []
    for path in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                lines += [ln.rstrip("\n") for ln in f]
    return lines


def source_code():
    lines = []
    for path in ["/usr/include/stdio.h", "/usr/include/string.h", "/usr/include/pcre2.h"] + \
            sorted(glob.glob("/usr/lib/python3*/textwrap.py"))[:1] + sorted(glob.glob("/usr/lib/python3*/json/decoder.py"))[:1]:
        if os.path.exists(path):
            with open(path, "rb") as f:
                lines += f.read().split(b"\n")[:250]
    return lines


def translations():
    lines = []
    for lang in LANGS:
        got = []
        for mo in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
            try:
                with open(mo, "rb") as f:
                    cat = gettext.GNUTranslations(f)._catalog
            except Exception:
                continue
            for key in sorted(k for k in cat if isinstance(k, str) and k):
                val = cat[key]
                if isinstance(val, str) and len(val) > 8:
                    got += [ln for ln in val.split("\n") if ln.strip()]
            if len(got) >= PER_LANG:
                break
        lines += got[:PER_LANG]
    return lines


def enc(x):
    return x if isinstance(x, bytes) else x.encode("utf-8")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    prose = english_prose()
    body = [enc(x) for x in prose[:1500:3] + source_code() + translations()]
    edges = [enc(x) for x in EDGE_CASES] + INVALID_UTF8
    with open(os.path.join(out, "train.txt"), "wb") as f:
        f.write(b"\n".join([enc(x) for x in prose[:6000]] + body) + b"\n")
    with open(os.path.join(out, "multilingual.txt"), "wb") as f:
        f.write(b"\n".join(body + edges) + b"\n")
    english = []
    size = 0
    for ln in prose:
        english.append(ln)
        size += len(ln) + 1
        if size > 4_000_000:
            break
    with open(os.path.join(out, "english.txt"), "wb") as f:
        f.write("\n".join(english).encode("utf-8") + b"\n")


if __name__ == "__main__":
    main()
