/*
 * fuzz_hf.c — the input is a Hugging Face model directory packed as  config.json bytes, one NUL byte,
 * model.safetensors bytes  (JSON holds no raw NUL, so the split is unambiguous; without a NUL the
 * whole input is tried as each file).
 *
 * 1. the parsers directly: safetensors_parse (every tensor touched, every name looked up),
 *    hf_config_parse and hf_generation_config_parse;
 * 2. when both parts parse: the two files are written to a scratch folder and loaded with the public
 *    tfm_model_load (cpu backend, one thread), then one token is evaluated.
 *
 * A sharded directory is packed as byte 0x01, then four parts each preceded by its u32 little-endian
 * length: config.json, model.safetensors.index.json and the two shards the index of the seeds names
 * (model-00001-of-00002.safetensors, model-00002-of-00002.safetensors); the files are written as
 * they are and loaded, so the index reader (shard names, the weight map) is fuzzed too.
 */
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "fuzz_common.h"

static int parse_safetensors(const uint8_t *data, size_t size)
{
    safetensors_file *f = NULL;
    tfm_status st = safetensors_parse(data, size, "fuzz.safetensors", &f);
    fuzz_expect_message(st, "safetensors_parse");
    if (st) {
        if (f) fuzz_fail("failed parse left a file");
        return 0;
    }
    for (size_t i = 0; i < f->n_tensors; i++) {
        const safetensors_tensor *t = &f->tensors[i];
        if (safetensors_find(f, t->name) != t) fuzz_fail("tensor '%s' does not find itself", t->name);
        if (t->offset > size || t->nbytes > size - t->offset) fuzz_fail("tensor '%s' outside the file", t->name);
        if (t->nbytes) {
            const uint8_t *p = t->data;
            volatile uint8_t sink = p[0] ^ p[t->nbytes - 1];
            (void)sink;
        }
        (void)safetensors_dtype_size(t->dtype_name);
    }
    safetensors_free(f);
    return 1;
}

static int parse_config(const uint8_t *data, size_t size)
{
    hf_config cfg;
    tfm_status st = hf_config_parse((const char *)data, size, "config.json", &cfg);
    fuzz_expect_message(st, "hf_config_parse");
    if (st) return 0;
    st = hf_generation_config_parse((const char *)data, size, "generation_config.json", &cfg);
    fuzz_expect_message(st, "hf_generation_config_parse");
    return 1;
}

static void load_directory(const uint8_t *config, size_t config_size, const uint8_t *weights, size_t weights_size)
{
    const char *dir = fuzz_scratch_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    fuzz_write_file(path, config, config_size);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    fuzz_write_file(path, weights, weights_size);

    tfm_model_params p = tfm_model_params_default();
    p.backend = "cpu";
    p.n_threads = 1;
    p.memory_limit = 64u << 20;
    tfm_model *m = NULL;
    tfm_status st = tfm_model_load(dir, &p, &m);
    fuzz_expect_message(st, "tfm_model_load");
    if (st) return;
    tfm_session_params sp = tfm_session_params_default();
    sp.n_ctx = 4;
    tfm_session *s = NULL;
    st = tfm_session_create(m, &sp, &s);
    fuzz_expect_message(st, "tfm_session_create");
    if (!st) {
        int32_t id = 0;
        fuzz_expect_message(tfm_session_eval(s, &id, 1), "tfm_session_eval");
        tfm_session_free(s);
    }
    tfm_model_free(m);
}

static const char *const sharded_names[] = {"config.json", "model.safetensors.index.json",
                                            "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};

static void load_sharded(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_scratch_dir();
    char path[512];
    size_t at = 1;
    for (int i = 0; i < 4; i++) {
        uint32_t len = 0;
        if (at + 4 <= size) memcpy(&len, data + at, 4);
        at += 4;
        if (at > size) at = size;
        if (len > size - at) len = (uint32_t)(size - at);
        snprintf(path, sizeof path, "%s/%s", dir, sharded_names[i]);
        fuzz_write_file(path, data + at, len);
        at += len;
    }
    tfm_model_params p = tfm_model_params_default();
    p.backend = "cpu";
    p.n_threads = 1;
    tfm_model *m = NULL;
    tfm_status st = tfm_model_load(dir, &p, &m);
    fuzz_expect_message(st, "tfm_model_load (sharded)");
    tfm_model_free(m);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, sharded_names[i]);
        unlink(path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size && data[0] == 0x01) {
        load_sharded(data, size);
        return 0;
    }
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul) {
        parse_safetensors(data, size);
        parse_config(data, size);
        return 0;
    }
    size_t config_size = (size_t)(nul - data);
    const uint8_t *weights = nul + 1;
    size_t weights_size = size - config_size - 1;
    /* exact-size copies, so that a read past either part is caught */
    uint8_t *c = malloc(config_size ? config_size : 1), *w = malloc(weights_size ? weights_size : 1);
    if (!c || !w) exit(2);
    memcpy(c, data, config_size);
    memcpy(w, weights, weights_size);
    int ok_weights = parse_safetensors(w, weights_size);
    int ok_config = parse_config(c, config_size);
    if (ok_weights && ok_config) load_directory(c, config_size, w, weights_size);
    free(c);
    free(w);
    return 0;
}
