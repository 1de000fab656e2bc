/*
 * fuzz_gguf.c — the input is a GGUF file.
 *
 * 1. gguf_parse, then every lookup and typed getter on every key and tensor it reports;
 * 2. the llama reader (tfm_gguf_model_source) and the tokenizer it builds;
 * 3. when the reader accepts the file: the public loader (tfm_model_load_from_memory, cpu backend, one
 *    thread, a memory limit) and a short evaluation, so that shapes the reader lets through are run.
 */
#include "formats/gguf.h"
#include "fuzz_common.h"
#include "model.h"

static void walk_file(const gguf_file *g)
{
    char key[256];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        if (kv->key.len >= sizeof key) continue;
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = 0;
        if (gguf_find(g, key) != kv) fuzz_fail("key '%s' does not find itself", key);
        int64_t iv;
        double dv;
        int bv;
        gguf_str sv;
        (void)gguf_get_int(g, key, &iv);
        (void)gguf_get_float(g, key, &dv);
        (void)gguf_get_bool(g, key, &bv);
        if (gguf_get_str(g, key, &sv) && sv.len && !sv.ptr) fuzz_fail("string without bytes");
        if (kv->type == GGUF_TYPE_ARRAY) {
            uint64_t n = kv->array_len;
            uint64_t probe[] = {0, n / 2, n ? n - 1 : 0, n, n + 1, UINT64_MAX};
            for (size_t k = 0; k < sizeof probe / sizeof *probe; k++) {
                (void)gguf_array_float(kv, probe[k]);
                (void)gguf_array_int(kv, probe[k]);
            }
            if (kv->strings) {
                volatile uint8_t sink = 0;
                for (uint64_t s = 0; s < n; s++)
                    if (kv->strings[s].len) sink ^= (uint8_t)kv->strings[s].ptr[kv->strings[s].len - 1];
                (void)sink;
            }
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if (t->name.len >= sizeof key) continue;
        memcpy(key, t->name.ptr, t->name.len);
        key[t->name.len] = 0;
        if (gguf_find_tensor(g, key) != t) fuzz_fail("tensor '%s' does not find itself", key);
        (void)gguf_type_name(t->ggml_type);
        /* the data range is inside the file: touch its first and last byte */
        if (t->nbytes) {
            const uint8_t *p = t->data;
            if (p < g->base || p + t->nbytes > g->base + g->size) fuzz_fail("tensor '%s' outside the file", key);
            volatile uint8_t sink = p[0] ^ p[t->nbytes - 1];
            (void)sink;
        }
    }
}

static void run_model(const uint8_t *data, size_t size)
{
    tfm_model_params p = tfm_model_params_default();
    p.backend = "cpu";
    p.n_threads = 1;
    p.memory_limit = 64u << 20;
    tfm_model *m = NULL;
    tfm_status st = tfm_model_load_from_memory(data, size, &p, &m);
    fuzz_expect_message(st, "tfm_model_load_from_memory");
    if (st) {
        if (m) fuzz_fail("failed load left a model");
        return;
    }
    tfm_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (tfm_model_get_info(m, &info) != TFM_OK) fuzz_fail("model info: %s", tfm_last_error());
    tfm_session_params sp = tfm_session_params_default();
    sp.n_ctx = info.n_ctx_train < 8 ? info.n_ctx_train : 8;
    sp.kv_dtype = TFM_DTYPE_F32;
    tfm_session *s = NULL;
    st = tfm_session_create(m, &sp, &s);
    fuzz_expect_message(st, "tfm_session_create");
    if (!st) {
        int32_t ids[3] = {0, info.n_vocab - 1, info.n_vocab / 2};
        size_t n = (size_t)(sp.n_ctx < 3 ? sp.n_ctx : 3);
        st = tfm_session_eval(s, ids, n);
        fuzz_expect_message(st, "tfm_session_eval");
        if (!st && tfm_session_n_past(s) != (int32_t)n) fuzz_fail("n_past %d after %zu tokens", tfm_session_n_past(s), n);
        tfm_session_free(s);
    }
    const tfm_tokenizer *tok = tfm_model_tokenizer(m);
    if (tok) fuzz_exercise_vocab(tok);
    tfm_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *g = NULL;
    tfm_status st = gguf_parse(data, size, "fuzz.gguf", &g);
    fuzz_expect_message(st, "gguf_parse");
    if (!st) {
        walk_file(g);
        gguf_free(g);
    }
    tfm_model_source src;
    memset(&src, 0, sizeof src);
    st = tfm_gguf_model_source(data, size, "fuzz.gguf", &src);
    fuzz_expect_message(st, "tfm_gguf_model_source");
    if (!st) {
        if (src.tokenizer) fuzz_exercise_vocab(src.tokenizer);
        tfm_model_source_release(&src);
        run_model(data, size);
    }
    return 0;
}
