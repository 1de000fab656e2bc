#!/usr/bin/env node
// llama.cpp as an oracle, through node-llama-cpp's prebuilt CPU binding.
//
//     node llama_oracle.mjs MODEL.gguf < request.json > answer.json
//
// request.json:
//     {"tokenize": ["text", ...],                       // each text without BOS, special tokens as plain text
//      "generate": [{"prompt": [1, 5, 9], "n": 32},     // greedy continuation of n tokens from ids,
//                   {"text": "In the beginning", "n": 32}]}  // or from BOS + the tokenized text
// answer.json:
//     {"n_vocab": V, "bos": id, "eos": id,
//      "tokenize": [[ids], ...],
//      "generate": [{"prompt": [ids], "tokens": [ids], "probs": [[V floats], ...]}]}
//
// "probs"[k] is llama.cpp's next-token distribution before tokens[k] was picked (the softmax of its
// logits). Generation does not stop at end-of-generation tokens: it always gives n tokens.
//
// The context is created so llama.cpp computes as closely to exact f32 arithmetic as it can: an f32
// KV cache (its default f16 cache rounds keys and values) and flash attention off (its flash kernel
// stores intermediate values in f16). Temperature 0 makes its sampler chain a plain argmax, so the
// probabilities it reports are the softmax of the raw logits.
//
// NODE_LLAMA_CPP_DIR may name the folder holding node-llama-cpp (default: tests/npm/node_modules).
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const packageDir = process.env.NODE_LLAMA_CPP_DIR ||
    path.join(here, "..", "npm", "node_modules", "node-llama-cpp");
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(packageDir, "dist", "index.js")).href);

function fail(message) {
    process.stderr.write(`llama_oracle: ${message}\n`);
    process.exit(2);
}

const modelPath = process.argv[2];
if (!modelPath)
    fail("usage: node llama_oracle.mjs MODEL.gguf < request.json");
const request = JSON.parse(readFileSync(0, "utf8"));

// build: "never" — the prebuilt binary must work as installed; a silent source build would hide
// an install problem and take minutes.
const llama = await getLlama({
    gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
    logLevel: LlamaLogLevel.error, maxThreads: 2,
});
const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });

// The distribution lists every token only if nothing in the sampler chain pruned it; check it does.
function denseProbabilities(map, nVocab) {
    if (map.size !== nVocab)
        fail(`llama.cpp reported ${map.size} probabilities, the vocabulary has ${nVocab}`);
    const dense = new Array(nVocab).fill(0);
    for (const [token, p] of map)
        dense[token] = p;
    return dense;
}

const nVocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const answer = { n_vocab: nVocab, bos: model.tokens.bos ?? -1, eos: model.tokens.eos ?? -1 };

answer.tokenize = (request.tokenize ?? []).map((text) => Array.from(model.tokenize(text, false)));

const runs = (request.generate ?? []).map((run) => ({
    n: run.n,
    prompt: run.prompt ?? [...(model.tokens.bos == null ? [] : [model.tokens.bos]), ...model.tokenize(run.text, false)],
}));
if (runs.length > 0) {
    const longest = Math.max(...runs.map((r) => r.prompt.length + r.n));
    // One thread: llama.cpp's threads spin while they wait, and two oracles side by side (the test
    // suites run two tests at once) on a 2-core machine would otherwise stall each other for minutes.
    const context = await model.createContext({
        contextSize: Math.max(longest, 256), batchSize: 512, sequences: 1, threads: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
    });
    const sequence = context.getSequence();
    answer.generate = [];
    for (const run of runs) {
        await sequence.clearHistory();
        const tokens = [];
        const probs = [];
        const steps = sequence.evaluateWithMetadata(run.prompt, { probabilities: true },
            { temperature: 0, yieldEogToken: true });
        for await (const step of steps) {
            tokens.push(step.token);
            probs.push(denseProbabilities(step.probabilities, nVocab));
            if (tokens.length >= run.n)
                break;
        }
        answer.generate.push({ prompt: run.prompt, tokens, probs });
    }
    await context.dispose();
}

await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify(answer));
process.stdout.write("\n");
