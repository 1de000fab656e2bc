/*
 * hf_parsers_test.c — unit tests of the safetensors header reader and the config.json parser:
 * every malformation the readers name, and a deterministic mutation run over a valid file in
 * which nothing may crash and every accepted tensor must lie inside the buffer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/hf_config.h"
#include "formats/safetensors.h"

static int failures;

#define CHECK(cond, ...)                                     \
    do {                                                     \
        if (!(cond)) {                                       \
            failures++;                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);      \
            printf(__VA_ARGS__);                             \
            printf("\n");                                    \
        }                                                    \
    } while (0)

/* A file: 8-byte length, `header` padded with spaces to `pad_to`, then `data_len` bytes 0..255. */
static size_t build(uint8_t *buf, size_t cap, const char *header, size_t data_len) {
    size_t hlen = strlen(header), total = 8 + hlen + data_len;
    if (total > cap) abort();
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    for (size_t i = 0; i < data_len; i++) buf[8 + hlen + i] = (uint8_t)i;
    return total;
}

static void expect_error(const char *what, const char *header, size_t data_len, tfm_status want,
                         const char *needle) {
    static uint8_t buf[4096];
    size_t n = build(buf, sizeof buf, header, data_len);
    safetensors_file *f = (safetensors_file *)1;
    tfm_status st = safetensors_parse(buf, n, "t.safetensors", &f);
    CHECK(st == want, "%s: status %d (%s), want %d", what, st, tfm_last_error(), want);
    CHECK(f == NULL, "%s: out not cleared", what);
    CHECK(strstr(tfm_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, tfm_last_error(),
          needle);
    CHECK(strstr(tfm_last_error(), "t.safetensors") != NULL, "%s: message '%s' lacks the file name", what,
          tfm_last_error());
}

#define VALID                                                                                             \
    "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]}," \
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}"

static void test_valid(void) {
    static uint8_t buf[256];
    size_t n = build(buf, sizeof buf, VALID "    ", 32);
    safetensors_file *f;
    tfm_status st = safetensors_parse(buf, n, "t.safetensors", &f);
    CHECK(st == TFM_OK, "valid file: %s", tfm_last_error());
    if (st) return;
    CHECK(f->n_tensors == 2, "n_tensors %zu", f->n_tensors);
    const safetensors_tensor *a = safetensors_find(f, "a"), *b = safetensors_find(f, "b");
    CHECK(a && b && !safetensors_find(f, "c") && !safetensors_find(f, "__metadata__"), "lookups");
    if (a && b) {
        size_t start = 8 + strlen(VALID "    ");
        CHECK(a->dtype == TFM_DTYPE_F32 && a->supported && a->n_dims == 2 && a->shape[0] == 2 && a->shape[1] == 3,
              "a's header");
        CHECK(a->data == buf + start && a->nbytes == 24, "a's data");
        CHECK(b->dtype == TFM_DTYPE_BF16 && b->data == buf + start + 24 && b->nbytes == 8, "b's data");
    }
    safetensors_free(f);

    /* A scalar, an empty tensor and a dtype libtfm cannot compute with are all well-formed. */
    n = build(buf, sizeof buf,
              "{\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
              "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]}}", 8);
    st = safetensors_parse(buf, n, "t.safetensors", &f);
    CHECK(st == TFM_OK, "scalar/empty: %s", tfm_last_error());
    if (!st) {
        const safetensors_tensor *s = safetensors_find(f, "s");
        CHECK(s && !s->supported && s->n_dims == 0 && s->n_elements == 1, "scalar I64");
        safetensors_free(f);
    }
    /* No tensors at all. */
    n = build(buf, sizeof buf, "{}", 0);
    st = safetensors_parse(buf, n, "t.safetensors", &f);
    CHECK(st == TFM_OK && f->n_tensors == 0, "empty header: %s", tfm_last_error());
    if (!st) safetensors_free(f);
}

static void test_errors(void) {
    static uint8_t buf[64];
    safetensors_file *f;
    CHECK(safetensors_parse(buf, 7, "t.safetensors", &f) == TFM_E_FORMAT && strstr(tfm_last_error(), "too short"),
          "7-byte file: %s", tfm_last_error());
    /* header length beyond the file */
    memset(buf, 0, sizeof buf);
    buf[0] = 200;
    CHECK(safetensors_parse(buf, 40, "t.safetensors", &f) == TFM_E_FORMAT &&
              strstr(tfm_last_error(), "header length 200 reaches beyond"),
          "long header: %s", tfm_last_error());
    buf[0] = 0xff, buf[7] = 0xff; /* a length near 2^64 must not wrap */
    CHECK(safetensors_parse(buf, 40, "t.safetensors", &f) == TFM_E_FORMAT, "huge header length");

    expect_error("not JSON", "[1,2]", 0, TFM_E_FORMAT, "JSON object");
    expect_error("syntax", "{\"a\":{\"dtype\":\"F32\",}", 0, TFM_E_FORMAT, "does not parse");
    expect_error("garbage after", "{} x", 0, TFM_E_FORMAT, "unexpected bytes");
    expect_error("entry not an object", "{\"a\":3}", 0, TFM_E_FORMAT, "not an object");
    expect_error("no dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TFM_E_FORMAT, "\"dtype\"");
    expect_error("negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                 TFM_E_FORMAT, "shape[0]");
    expect_error("fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                 TFM_E_FORMAT, "shape[0]");
    expect_error("9 dims",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                 TFM_E_FORMAT, "dimensions");
    expect_error("overflowing shape",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
                 TFM_E_FORMAT, "overflows");
    expect_error("one offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                 TFM_E_FORMAT, "data_offsets");
    expect_error("end before begin", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                 TFM_E_FORMAT, "end before");
    expect_error("beyond the data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
                 TFM_E_FORMAT, "beyond the data buffer");
    expect_error("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                 TFM_E_FORMAT, "need 3 elements x 4 bytes");
    expect_error("overlap",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, TFM_E_FORMAT, "overlaps");
    expect_error("same range",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, TFM_E_FORMAT, "overlaps");
    expect_error("hole",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, TFM_E_FORMAT, "hole");
    expect_error("trailing data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
                 TFM_E_FORMAT, "holds 12 bytes");
    expect_error("duplicate",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, TFM_E_FORMAT, "listed twice");
    expect_error("bad metadata", "{\"__metadata__\":3}", 0, TFM_E_FORMAT, "__metadata__");
}

/* Flips, overwrites and truncates bytes of a valid file; the parser must reject or accept cleanly. */
static void test_mutations(void) {
    static uint8_t orig[512], buf[512];
    const char *header =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[96,104]},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[4,6],\"data_offsets\":[0,96]},"
        "\"z\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[104,112]}}";
    size_t n = build(orig, sizeof orig, header, 112);
    const char digits[] = "0123456789[]{},:\"-.e ";
    uint64_t rng = 0x9E3779B97F4A7C15u;
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, orig, n);
        size_t len = n;
        int edits = 1 + (int)(iter % 3);
        for (int e = 0; e < edits; e++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t at = (size_t)(rng >> 8) % len;
            switch ((rng >> 40) % 4) {
            case 0: buf[at] ^= (uint8_t)(1u << ((rng >> 50) % 8)); break;
            case 1: buf[at] = (uint8_t)digits[(rng >> 48) % (sizeof digits - 1)]; break;
            case 2: len = at + 1; break;
            default: buf[at] = (uint8_t)(rng >> 32); break;
            }
        }
        /* Copy into an exact-size heap block so that ASan sees any read past the end. */
        uint8_t *exact = malloc(len);
        memcpy(exact, buf, len);
        safetensors_file *f;
        if (safetensors_parse(exact, len, "fuzz", &f) == TFM_OK) {
            accepted++;
            for (size_t i = 0; i < f->n_tensors; i++) {
                const safetensors_tensor *t = &f->tensors[i];
                CHECK(t->offset >= f->data_start && t->offset + t->nbytes <= len &&
                          (const uint8_t *)t->data == exact + t->offset,
                      "mutation %d: tensor '%s' outside the buffer", iter, t->name);
            }
            safetensors_free(f);
        }
        free(exact);
    }
    printf("mutations: 20000 files, %d accepted\n", accepted);
}

/* ---- config.json ------------------------------------------------------------------------------ */

#define CFG_SIZES "\"vocab_size\":100,\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"

static tfm_status cfg(const char *json, hf_config *c) {
    return hf_config_parse(json, strlen(json), "config.json", c);
}

static void expect_cfg_error(const char *what, const char *json, tfm_status want, const char *needle) {
    hf_config c;
    tfm_status st = cfg(json, &c);
    CHECK(st == want, "%s: status %d (%s), want %d", what, st, tfm_last_error(), want);
    CHECK(strstr(tfm_last_error(), needle) != NULL && strstr(tfm_last_error(), "config.json") != NULL,
          "%s: message '%s' lacks '%s'", what, tfm_last_error(), needle);
}

static void test_config(void) {
    hf_config c;
    tfm_status st = cfg("{\"architectures\":[\"LlamaForCausalLM\"]," CFG_SIZES
                        "\"num_attention_heads\":8,\"num_key_value_heads\":2,\"head_dim\":16,\"rms_norm_eps\":1e-5,"
                        "\"rope_theta\":500000.0,\"max_position_embeddings\":1024,\"tie_word_embeddings\":true,"
                        "\"eos_token_id\":[7,8],\"bos_token_id\":1,"
                        "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":32.0,\"low_freq_factor\":1.0,"
                        "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":64}}", &c);
    CHECK(st == TFM_OK, "llama3 config: %s", tfm_last_error());
    if (!st) {
        const tfm_hparams *h = &c.hp;
        CHECK(h->n_vocab == 100 && h->n_embd == 64 && h->n_ff == 128 && h->n_layer == 2 && h->n_head == 8 &&
                  h->n_head_kv == 2 && h->head_dim == 16 && h->n_ctx_train == 1024,
              "llama3 sizes");
        CHECK(h->rope_theta == 500000.0f && h->rms_eps == 1e-5f && h->rope_pairing == TFM_ROPE_HALF, "llama3 floats");
        CHECK(h->rope_scaling == TFM_ROPE_SCALING_LLAMA3 && h->rope_factor == 32.0f &&
                  h->rope_low_freq_factor == 1.0f && h->rope_high_freq_factor == 4.0f && h->rope_orig_ctx == 64,
              "llama3 rope scaling");
        CHECK(c.tie_word_embeddings == 1 && c.eos_id == 7 && c.bos_id == 1, "tie / eos list");
    }
    /* Defaults of LlamaConfig; the older "type" key for rope scaling. */
    st = cfg("{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,"
             "\"rope_scaling\":{\"type\":\"linear\",\"factor\":4}}", &c);
    CHECK(st == TFM_OK, "defaults: %s", tfm_last_error());
    if (!st)
        CHECK(c.hp.n_head_kv == 4 && c.hp.head_dim == 16 && c.hp.rms_eps == 1e-6f && c.hp.rope_theta == 10000.0f &&
                  c.hp.n_ctx_train == 2048 && c.hp.rope_scaling == TFM_ROPE_SCALING_LINEAR && c.hp.rope_factor == 4.0f &&
                  c.tie_word_embeddings == 0 && c.bos_id == -1 && c.eos_id == -1,
              "defaults");
    /* Mistral: the context is limited to the sliding window, where attention is unchanged. */
    st = cfg("{\"architectures\":[\"MistralForCausalLM\"]," CFG_SIZES "\"num_attention_heads\":4,"
             "\"max_position_embeddings\":32768,\"sliding_window\":4096}", &c);
    CHECK(st == TFM_OK && c.hp.n_ctx_train == 4096, "mistral window: %s", tfm_last_error());

    expect_cfg_error("syntax", "{\"vocab_size\": 10,\n \"hidden_size\": }", TFM_E_FORMAT, "line 2");
    expect_cfg_error("architecture", "{\"architectures\":[\"GPT2LMHeadModel\"]}", TFM_E_UNSUPPORTED, "GPT2LMHeadModel");
    expect_cfg_error("missing size", "{\"model_type\":\"llama\",\"vocab_size\":10}", TFM_E_FORMAT, "hidden_size");
    expect_cfg_error("zero size", "{\"model_type\":\"llama\",\"vocab_size\":100,\"hidden_size\":0}", TFM_E_FORMAT,
                     "hidden_size");
    expect_cfg_error("absurd size", "{\"model_type\":\"llama\",\"vocab_size\":1e12}", TFM_E_FORMAT, "vocab_size");
    expect_cfg_error("string size", "{\"model_type\":\"llama\",\"vocab_size\":\"100\"}", TFM_E_FORMAT, "vocab_size");
    expect_cfg_error("kv heads", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":8,\"num_key_value_heads\":3}",
                     TFM_E_FORMAT, "num_key_value_heads");
    expect_cfg_error("heads vs hidden", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":6}", TFM_E_FORMAT,
                     "head_dim");
    expect_cfg_error("odd head_dim", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,\"head_dim\":15}",
                     TFM_E_FORMAT, "even");
    expect_cfg_error("eps", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,\"rms_norm_eps\":-1}",
                     TFM_E_FORMAT, "rms_norm_eps");
    expect_cfg_error("theta", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,\"rope_theta\":0}",
                     TFM_E_FORMAT, "rope_theta");
    expect_cfg_error("yarn", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,"
                     "\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}", TFM_E_UNSUPPORTED, "yarn");
    expect_cfg_error("llama3 factors", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,"
                     "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":4,"
                     "\"high_freq_factor\":1,\"original_max_position_embeddings\":8192}}", TFM_E_FORMAT, "high_freq_factor");
    expect_cfg_error("llama3 missing", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,"
                     "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8}}", TFM_E_FORMAT, "low_freq_factor");
    expect_cfg_error("activation", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,\"hidden_act\":\"gelu\"}",
                     TFM_E_UNSUPPORTED, "gelu");
    expect_cfg_error("bias", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,\"attention_bias\":true}",
                     TFM_E_UNSUPPORTED, "attention_bias");
    expect_cfg_error("quantized", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,"
                     "\"quantization_config\":{\"quant_method\":\"gptq\"}}", TFM_E_UNSUPPORTED, "gptq");
    expect_cfg_error("eos range", "{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,\"eos_token_id\":100}",
                     TFM_E_FORMAT, "eos_token_id");

    /* generation_config.json overrides bos/eos and is checked against the vocabulary. */
    st = cfg("{\"model_type\":\"llama\"," CFG_SIZES "\"num_attention_heads\":4,\"eos_token_id\":2}", &c);
    const char *gen = "{\"bos_token_id\":5,\"eos_token_id\":[9,2]}";
    st = st ? st : hf_generation_config_parse(gen, strlen(gen), "generation_config.json", &c);
    CHECK(st == TFM_OK && c.bos_id == 5 && c.eos_id == 9, "generation config: %s", tfm_last_error());
    gen = "{\"eos_token_id\":1000}";
    st = hf_generation_config_parse(gen, strlen(gen), "generation_config.json", &c);
    CHECK(st == TFM_E_FORMAT && strstr(tfm_last_error(), "generation_config.json"), "generation eos range");
}

int main(void) {
    test_valid();
    test_errors();
    test_mutations();
    test_config();
    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
