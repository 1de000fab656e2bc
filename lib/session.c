/*
 * session.c — one sequence: its KV cache, the tokens so far and the logits of the last eval.
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tensor.h"

#define DEFAULT_CTX 4096
#define DEFAULT_BATCH 512

static tfm_session_params session_params_defaults(void) {
    tfm_session_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.kv_dtype = TFM_DTYPE_F16;
    return p;
}

TFM_API void tfm_session_params_init(tfm_session_params *params, size_t struct_size) {
    if (!params || struct_size < sizeof params->struct_size) return;
    tfm_session_params p = session_params_defaults();
    memset(params, 0, struct_size);
    memcpy(params, &p, struct_size < sizeof p ? struct_size : sizeof p);
    params->struct_size = struct_size;
}

static tfm_status read_session_params(const tfm_session_params *in, const tfm_model *m, tfm_session_params *out) {
    *out = session_params_defaults();
    if (in) {
        if (in->struct_size < offsetof(tfm_session_params, n_ctx) + sizeof in->n_ctx)
            return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_session_params.struct_size %zu is too small; "
                             "initialise params with tfm_session_params_default()", in->struct_size);
        memcpy(out, in, in->struct_size < sizeof *out ? in->struct_size : sizeof *out);
        out->struct_size = sizeof *out;
    }
    int32_t train = m->hp.n_ctx_train;
    if (out->n_ctx == 0) out->n_ctx = train < DEFAULT_CTX ? train : DEFAULT_CTX;
    if (out->n_ctx < 1 || out->n_ctx > train)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "n_ctx %d is out of range 1..%d (the model's training context)",
                         out->n_ctx, train);
    if (out->kv_dtype != TFM_DTYPE_F16 && out->kv_dtype != TFM_DTYPE_F32 && out->kv_dtype != TFM_DTYPE_BF16)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "kv_dtype %s is not supported (f16, bf16 or f32)",
                         tfm_dtype_name(out->kv_dtype));
    if (out->n_batch == 0) out->n_batch = DEFAULT_BATCH;
    if (out->n_batch < 1 || out->n_batch > 65536)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "n_batch %d is out of range 1..65536", out->n_batch);
    if (out->n_batch > out->n_ctx) out->n_batch = out->n_ctx;
    return TFM_OK;
}

/* Counts `n` bytes against the model's memory limit (sessions may be created on several threads at
 * once). Returns 0, counting nothing, when that would pass the limit; *in_use gets the bytes counted
 * before. release_bytes gives them back. */
static int reserve_bytes(tfm_model *m, size_t n, size_t *in_use) {
    *in_use = __atomic_fetch_add(&m->session_bytes, n, __ATOMIC_RELAXED);
    if (m->memory_limit && *in_use + n > m->memory_limit) {
        __atomic_fetch_sub(&m->session_bytes, n, __ATOMIC_RELAXED);
        return 0;
    }
    return 1;
}

static void release_bytes(tfm_model *m, size_t n) { __atomic_fetch_sub(&m->session_bytes, n, __ATOMIC_RELAXED); }

/* Everything a session allocates: what the memory limit is checked against. */
static size_t session_bytes(const tfm_model *m, const tfm_session_params *p) {
    size_t logits_rows = p->logits_all ? (size_t)p->n_batch : 1;
    return sizeof(tfm_session) + (size_t)p->n_ctx * sizeof(int32_t) +
           logits_rows * (size_t)m->hp.n_vocab * sizeof(float) + 2 * (size_t)m->hp.n_layer * sizeof(void *) +
           tfm_run_state_bytes(&m->hp, p->n_batch, p->n_ctx, p->kv_dtype);
}

TFM_API tfm_status tfm_session_create(const tfm_model *m, const tfm_session_params *params, tfm_session **out) {
    tfm_error_clear();
    if (!out) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_session_create: out is NULL");
    *out = NULL;
    if (!m) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_session_create: model is NULL");
    tfm_session_params p;
    tfm_status st = read_session_params(params, m, &p);
    if (st) return st;

    size_t need = session_bytes(m, &p);
    /* Reserved before allocating; tfm_session_free gives the bytes back. */
    tfm_model *mm = (tfm_model *)m;
    size_t before;
    if (!reserve_bytes(mm, need, &before)) {
        return tfm_error(TFM_E_OOM, "a session with n_ctx %d and n_batch %d needs %zu bytes; with %zu bytes used "
                         "by other sessions that exceeds the memory limit of %zu bytes", p.n_ctx, p.n_batch, need,
                         before, m->memory_limit);
    }
    if (m->ops->mem_info) {
        size_t free_bytes = 0, total = 0;
        m->ops->mem_info(m->be, &free_bytes, &total);
        if (free_bytes && need > free_bytes) {
            release_bytes(mm, need);
            return tfm_error(TFM_E_OOM, "a session with n_ctx %d needs %zu bytes of %s memory; %zu are free",
                             p.n_ctx, need, m->ops->name, free_bytes);
        }
    }

    tfm_session *s = calloc(1, sizeof *s);
    if (!s) {
        release_bytes(mm, need);
        return tfm_error(TFM_E_OOM, "out of memory");
    }
    s->model = m;
    s->reserved_bytes = need;
    s->params = p;
    s->tokens = malloc((size_t)p.n_ctx * sizeof *s->tokens);
    s->logits_capacity = p.logits_all ? (size_t)p.n_batch : 1;
    s->logits = malloc(s->logits_capacity * (size_t)m->hp.n_vocab * sizeof(float));
    if (!s->tokens || !s->logits) {
        tfm_session_free(s);
        return tfm_error(TFM_E_OOM, "out of memory for a session of %d tokens", p.n_ctx);
    }
    if ((st = tfm_run_state_init(&s->rs, m, p.n_batch, p.n_ctx, p.kv_dtype))) {
        tfm_session_free(s);
        return st;
    }
    *out = s;
    return TFM_OK;
}

TFM_API void tfm_session_free(tfm_session *s) {
    if (!s) return;
    release_bytes((tfm_model *)s->model, s->reserved_bytes);
    tfm_run_state_free(&s->rs, s->model);
    free(s->tokens);
    free(s->logits);
    free(s);
}

/* Makes room for `rows` rows of logits when every position's logits are kept. */
static tfm_status reserve_logits(tfm_session *s, size_t rows) {
    if (rows <= s->logits_capacity) return TFM_OK;
    size_t n_vocab = (size_t)s->model->hp.n_vocab;
    if (rows > SIZE_MAX / n_vocab / sizeof(float))
        return tfm_error(TFM_E_OOM, "logits of %zu positions do not fit in memory", rows);
    /* The growth counts against the model's memory limit like the session's first allocation. */
    size_t extra = (rows - s->logits_capacity) * n_vocab * sizeof(float);
    tfm_model *m = (tfm_model *)s->model;
    size_t before;
    if (!reserve_bytes(m, extra, &before))
        return tfm_error(TFM_E_OOM, "keeping the logits of %zu positions needs %zu more bytes, beyond the memory "
                         "limit of %zu bytes (%zu in use)", rows, extra, m->memory_limit, before);
    float *grown = realloc(s->logits, rows * n_vocab * sizeof(float));
    if (!grown) {
        release_bytes(m, extra);
        return tfm_error(TFM_E_OOM, "cannot allocate logits for %zu positions", rows);
    }
    s->logits = grown;
    s->logits_capacity = rows;
    s->reserved_bytes += extra;
    return TFM_OK;
}

TFM_API tfm_status tfm_session_eval(tfm_session *s, const int32_t *ids, size_t n_ids) {
    tfm_error_clear();
    if (!s) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_session_eval: session is NULL");
    if (n_ids == 0) return TFM_OK;
    if (!ids) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_session_eval: ids is NULL");
    const tfm_model *m = s->model;
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= m->hp.n_vocab)
            return tfm_error(TFM_E_INVALID_ARGUMENT, "token id %d at index %zu is out of range 0..%d", ids[i], i,
                             m->hp.n_vocab - 1);
    if (n_ids > (size_t)(s->params.n_ctx - s->n_past))
        return tfm_error(TFM_E_CONTEXT_FULL, "%zu tokens do not fit: the context holds %d tokens and %d are used",
                         n_ids, s->params.n_ctx, s->n_past);
    int all = s->params.logits_all;
    tfm_status st = all ? reserve_logits(s, n_ids) : TFM_OK;
    if (st) return st;

    s->n_logits = 0;
    size_t done = 0;
    while (done < n_ids) {
        int n = (int)(n_ids - done < (size_t)s->params.n_batch ? n_ids - done : (size_t)s->params.n_batch);
        float *dst = all ? s->logits + done * (size_t)m->hp.n_vocab : s->logits;
        st = tfm_forward(m, &s->rs, ids + done, n, s->n_past, all, dst, s->params.abort, s->params.abort_user_data);
        if (st) return st; /* the chunk's cache rows are beyond n_past: they are simply overwritten later */
        memcpy(s->tokens + s->n_past, ids + done, (size_t)n * sizeof *ids);
        s->n_past += n;
        done += (size_t)n;
        if (done < n_ids && s->params.abort && s->params.abort(s->params.abort_user_data))
            return tfm_error(TFM_E_ABORTED, "evaluation aborted by the callback after %zu of %zu tokens", done, n_ids);
    }
    s->n_logits = all ? (int32_t)n_ids : 1;
    return TFM_OK;
}

TFM_API int32_t tfm_session_n_past(const tfm_session *s) { return s ? s->n_past : 0; }
TFM_API int32_t tfm_session_n_ctx(const tfm_session *s) { return s ? s->params.n_ctx : 0; }

TFM_API tfm_status tfm_session_rewind(tfm_session *s, int32_t n_past) {
    tfm_error_clear();
    if (!s) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_session_rewind: session is NULL");
    if (n_past < 0 || n_past > s->n_past)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "cannot rewind to %d tokens: the session holds %d", n_past, s->n_past);
    s->n_past = n_past;
    s->n_logits = 0;
    return TFM_OK;
}

TFM_API void tfm_session_reset(tfm_session *s) {
    if (s) tfm_session_rewind(s, 0);
}

TFM_API tfm_status tfm_session_logits(const tfm_session *s, int which, tfm_tensor **out) {
    tfm_error_clear();
    if (!s || !out) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_session_logits: NULL argument");
    *out = NULL;
    if (s->n_logits == 0) return tfm_error(TFM_E_STATE, "no logits: evaluate tokens first");
    int64_t n_vocab = s->model->hp.n_vocab;
    if (which == TFM_LOGITS_LAST) {
        const float *last = s->logits + (size_t)(s->n_logits - 1) * (size_t)n_vocab;
        return tfm_tensor_view(TFM_DTYPE_F32, 1, &n_vocab, (void *)last, out);
    }
    if (which != TFM_LOGITS_ALL) return tfm_error(TFM_E_INVALID_ARGUMENT, "which must be TFM_LOGITS_LAST or TFM_LOGITS_ALL");
    if (!s->params.logits_all)
        return tfm_error(TFM_E_STATE, "logits of all positions need the session parameter logits_all = 1");
    int64_t shape[2] = {s->n_logits, n_vocab};
    return tfm_tensor_view(TFM_DTYPE_F32, 2, shape, s->logits, out);
}

TFM_API const float *tfm_session_last_logits(const tfm_session *s) {
    if (!s || s->n_logits == 0) return NULL;
    return s->logits + (size_t)(s->n_logits - 1) * (size_t)s->model->hp.n_vocab;
}
