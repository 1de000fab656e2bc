/*
 * llama.c — the Llama decoder forward pass, written once against the backend vtable.
 *
 * For each layer:  x += Wo · attention(RoPE(Wq·rmsnorm(x)), RoPE(Wk·rmsnorm(x)), Wv·rmsnorm(x))
 *                  x += Wdown · (silu(Wgate·rmsnorm(x)) * Wup·rmsnorm(x))
 * then logits = Wout · rmsnorm(x). Keys and values of every position are kept in the KV cache.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "error.h"
#include "forward.h"
#include "tensor.h"

/* Evaluates a backend call and returns its status on failure. */
#define TRY(call)                                  \
    do {                                           \
        tfm_status st_ = (call);                   \
        if (st_ != TFM_OK) return st_;             \
    } while (0)

static size_t kv_row_bytes(const tfm_hparams *hp, tfm_dtype kv_dtype) {
    return (size_t)hp->n_head_kv * (size_t)hp->head_dim * tfm_dtype_size(kv_dtype);
}

/* The activation buffers, in order, with their widths in floats. */
static void activation_widths(const tfm_hparams *hp, size_t w[9]) {
    size_t q = (size_t)hp->n_head * hp->head_dim, kv = (size_t)hp->n_head_kv * hp->head_dim;
    size_t ww[9] = {(size_t)hp->n_embd, (size_t)hp->n_embd, q, kv, kv, q, (size_t)hp->n_ff, (size_t)hp->n_ff,
                    (size_t)hp->n_vocab};
    memcpy(w, ww, sizeof ww);
}

size_t tfm_run_state_bytes(const tfm_hparams *hp, int n_batch, int n_ctx, tfm_dtype kv_dtype) {
    size_t w[9], total = 2 * (size_t)hp->n_layer * (size_t)n_ctx * kv_row_bytes(hp, kv_dtype);
    activation_widths(hp, w);
    for (int i = 0; i < 9; i++) total += w[i] * (size_t)n_batch * sizeof(float);
    return total;
}

tfm_status tfm_run_state_init(tfm_run_state *rs, const tfm_model *m, int n_batch, int n_ctx, tfm_dtype kv_dtype) {
    const tfm_hparams *hp = &m->hp;
    memset(rs, 0, sizeof *rs);
    rs->n_batch = n_batch;
    rs->n_ctx = n_ctx;
    rs->kv_dtype = kv_dtype;
    rs->k_cache = calloc((size_t)hp->n_layer, sizeof *rs->k_cache);
    rs->v_cache = calloc((size_t)hp->n_layer, sizeof *rs->v_cache);
    if (!rs->k_cache || !rs->v_cache) return tfm_error(TFM_E_OOM, "out of memory for the KV cache table");
    size_t cache_bytes = (size_t)n_ctx * kv_row_bytes(hp, kv_dtype);
    for (int l = 0; l < hp->n_layer; l++) {
        rs->k_cache[l] = m->ops->alloc(m->be, cache_bytes);
        rs->v_cache[l] = m->ops->alloc(m->be, cache_bytes);
        if (!rs->k_cache[l] || !rs->v_cache[l])
            return tfm_error(TFM_E_OOM, "cannot allocate the KV cache of layer %d (%zu bytes per tensor, "
                             "n_ctx %d): %s", l, cache_bytes, n_ctx, tfm_last_error());
    }
    size_t w[9];
    activation_widths(hp, w);
    float **bufs[9] = {&rs->x, &rs->xb, &rs->q, &rs->k, &rs->v, &rs->att, &rs->hb, &rs->hb2, &rs->logits};
    for (int i = 0; i < 9; i++) {
        *bufs[i] = m->ops->alloc(m->be, w[i] * (size_t)n_batch * sizeof(float));
        if (!*bufs[i])
            return tfm_error(TFM_E_OOM, "cannot allocate %zu bytes of activations: %s",
                             w[i] * (size_t)n_batch * sizeof(float), tfm_last_error());
    }
    static uint64_t next_key = 1;
    rs->step_key = __atomic_fetch_add(&next_key, 1, __ATOMIC_RELAXED);
    return TFM_OK;
}

void tfm_run_state_free(tfm_run_state *rs, const tfm_model *m) {
    if (rs->k_cache) {
        for (int l = 0; l < m->hp.n_layer; l++) {
            if (rs->k_cache[l]) m->ops->free(m->be, rs->k_cache[l]);
            if (rs->v_cache && rs->v_cache[l]) m->ops->free(m->be, rs->v_cache[l]);
        }
    }
    free(rs->k_cache);
    free(rs->v_cache);
    float *bufs[9] = {rs->x, rs->xb, rs->q, rs->k, rs->v, rs->att, rs->hb, rs->hb2, rs->logits};
    for (int i = 0; i < 9; i++)
        if (bufs[i]) m->ops->free(m->be, bufs[i]);
    memset(rs, 0, sizeof *rs);
}

/* y[i] = x · w[i]ᵀ for weights of the same input, in one backend call where the backend offers it. */
static tfm_status matmul_shared(const tfm_model *m, const tfm_weight *const *w, int count, const float *x,
                                float *const *y, int n) {
    if (m->ops->matmul_shared) return m->ops->matmul_shared(m->be, w, count, x, y, n);
    for (int i = 0; i < count; i++) {
        tfm_status st = m->ops->matmul(m->be, w[i], x, y[i], n);
        if (st) return st;
    }
    return TFM_OK;
}

/* One transformer block over n rows of the residual stream x. */
static tfm_status block(const tfm_model *m, tfm_run_state *rs, int l, int n, int pos0) {
    const tfm_backend_ops *ops = m->ops;
    tfm_backend *be = m->be;
    const tfm_hparams *hp = &m->hp;
    const tfm_layer *L = &m->layers[l];
    int hd = hp->head_dim, dim = hp->n_embd, kv_width = hp->n_head_kv * hd;

    /* attention: RMSNorm, Q/K/V projections, RoPE, KV cache append, causal attention, output proj */
    TRY(ops->rmsnorm(be, rs->x, &L->attn_norm, rs->xb, n, dim, hp->rms_eps));
    const tfm_weight *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *qkv_out[3] = {rs->q, rs->k, rs->v};
    TRY(matmul_shared(m, qkv, 3, rs->xb, qkv_out, n));
    TRY(ops->rope(be, rs->q, n, hp->n_head, hd, pos0, m->inv_freq, hp->rope_pairing));
    TRY(ops->rope(be, rs->k, n, hp->n_head_kv, hd, pos0, m->inv_freq, hp->rope_pairing));
    TRY(ops->kv_store(be, rs->k_cache[l], rs->kv_dtype, pos0, rs->k, n, kv_width));
    TRY(ops->kv_store(be, rs->v_cache[l], rs->kv_dtype, pos0, rs->v, n, kv_width));
    TRY(ops->attention(be, rs->q, rs->k_cache[l], rs->v_cache[l], rs->kv_dtype, rs->att, n, pos0, hp->n_head,
                       hp->n_head_kv, hd, 1.0f / sqrtf((float)hd), 1));
    TRY(ops->matmul(be, &L->wo, rs->att, rs->xb, n));
    TRY(ops->add(be, rs->x, rs->xb, (size_t)n * dim)); /* residual */

    /* feed-forward: RMSNorm, SwiGLU, down projection */
    TRY(ops->rmsnorm(be, rs->x, &L->ffn_norm, rs->xb, n, dim, hp->rms_eps));
    const tfm_weight *gate_up[2] = {&L->w_gate, &L->w_up};
    float *gate_up_out[2] = {rs->hb, rs->hb2};
    TRY(matmul_shared(m, gate_up, 2, rs->xb, gate_up_out, n));
    TRY(ops->swiglu(be, rs->hb, rs->hb2, rs->hb, (size_t)n * hp->n_ff));
    TRY(ops->matmul(be, &L->w_down, rs->hb, rs->xb, n));
    TRY(ops->add(be, rs->x, rs->xb, (size_t)n * dim)); /* residual */
    return TFM_OK;
}

/* Embedding, every block, final norm and LM head. Returns without syncing. */
static tfm_status issue_forward(const tfm_model *m, tfm_run_state *rs, const int32_t *ids, int n, int pos0,
                                int all_logits, tfm_abort_fn abort, void *abort_user_data) {
    const tfm_backend_ops *ops = m->ops;
    tfm_backend *be = m->be;
    const tfm_hparams *hp = &m->hp;

    TRY(ops->embed(be, &m->tok_embd, ids, n, rs->x));
    for (int l = 0; l < hp->n_layer; l++) {
        TRY(block(m, rs, l, n, pos0));
        if (abort && abort(abort_user_data)) {
            ops->sync(be);
            return tfm_error(TFM_E_ABORTED, "evaluation aborted by the callback after layer %d of %d", l + 1,
                             hp->n_layer);
        }
    }
    /* Only the rows whose logits are wanted go through the final norm and the LM head. */
    int rows = all_logits ? n : 1;
    const float *last = rs->x + (size_t)(n - rows) * hp->n_embd;
    const tfm_weight *head = m->tied_embeddings ? &m->tok_embd : &m->output;
    TRY(ops->rmsnorm(be, last, &m->output_norm, rs->xb, rows, hp->n_embd, hp->rms_eps));
    TRY(ops->matmul(be, head, rs->xb, rs->logits, rows));
    return TFM_OK;
}

static tfm_status forward_locked(const tfm_model *m, tfm_run_state *rs, const int32_t *ids, int n, int pos0,
                                 int all_logits, float *logits_out, tfm_abort_fn abort, void *abort_user_data) {
    const tfm_backend_ops *ops = m->ops;
    if (n < 1 || n > rs->n_batch || pos0 < 0 || pos0 + n > rs->n_ctx)
        return tfm_error(TFM_E_INTERNAL, "forward: %d tokens at position %d do not fit (batch %d, ctx %d)", n,
                         pos0, rs->n_batch, rs->n_ctx);

    /* A single-token step may be recorded once and replayed by the backend (e.g. a CUDA graph). */
    int captured = n == 1 && !all_logits && ops->step_begin && ops->step_end;
    int replayed = captured ? ops->step_begin(m->be, rs->step_key, pos0, ids[0]) : 0;
    if (!replayed) {
        tfm_status st = issue_forward(m, rs, ids, n, pos0, all_logits, captured ? NULL : abort, abort_user_data);
        if (captured) {
            tfm_status end = ops->step_end(m->be);
            if (!st) st = end;
        }
        if (st) return st;
    }
    int rows = all_logits ? n : 1;
    TRY(ops->download(m->be, logits_out, rs->logits, (size_t)rows * m->hp.n_vocab * sizeof(float)));
    TRY(ops->sync(m->be));
    if (captured && abort && abort(abort_user_data))
        return tfm_error(TFM_E_ABORTED, "evaluation aborted by the callback");
    return TFM_OK;
}

tfm_status tfm_forward(const tfm_model *m, tfm_run_state *rs, const int32_t *ids, int n, int pos0,
                       int all_logits, float *logits_out, tfm_abort_fn abort, void *abort_user_data) {
    pthread_mutex_t *lock = (pthread_mutex_t *)&m->forward_lock;
    pthread_mutex_lock(lock);
    tfm_status st = forward_locked(m, rs, ids, n, pos0, all_logits, logits_out, abort, abort_user_data);
    pthread_mutex_unlock(lock);
    return st;
}
