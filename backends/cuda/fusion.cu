/*
 * fusion.cu — the op planner (see fusion.h): holds single-token ops back and launches them fused.
 *
 * Rules that keep it exact:
 *   - Before an op reads memory, owed buffers overlapping it are written (materialised).
 *   - Before an op writes memory, owed buffers it fully covers are forgotten (their value is dead),
 *     and owed buffers it partly covers, or whose sources it overwrites, are materialised.
 *   - Held-back work is launched (settled) before any op that is not its continuation, so the
 *     stream order of all reads and writes is the order the core issued them.
 * The same decisions are taken while a step is recorded, so a replayed step does exactly this.
 */
#include "fusion.h"

static int overlap(const void *a, size_t an, const void *b, size_t bn) {
    if (!a || !b || !an || !bn) return 0;
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y + bn && y < x + an;
}

static int aligned16(const void *p) { return ((uintptr_t)p % 16) == 0; }

/* ---------------------------------------------------------------- owed buffers */

static int owed_reads_from(const tfm_cuda_owed *o, const void *p, size_t bytes) {
    if (o->kind == TFM_CUDA_OWED_GEMM)
        return overlap(o->a, (size_t)o->n * o->w.cols * sizeof(float), p, bytes);
    size_t n = o->count * sizeof(float);
    return overlap(o->a, n, p, bytes) || overlap(o->b, n, p, bytes) || overlap(o->g, n, p, bytes);
}

static tfm_status owed_materialize(tfm_backend *be, int i) {
    tfm_cuda_owed o = be->owed[i];
    be->owed[i].kind = 0;
    tfm_cuda_conv_note_write(be, o.out, o.count * sizeof(float));
    if (o.kind == TFM_CUDA_OWED_GEMM) return tfm_cuda_matmul(be, &o.w, o.a, o.out, o.n);
    if (o.kind == TFM_CUDA_OWED_NORM) {
        tfm_weight g;
        g.data = o.g;
        g.dtype = TFM_DTYPE_F32;
        g.rows = 1;
        g.cols = (int64_t)o.count;
        g.backend_data = NULL;
        return tfm_cuda_rmsnorm(be, o.a, &g, o.out, 1, (int)o.count, o.eps, NULL);
    }
    return tfm_cuda_swiglu(be, o.a, o.b, o.out, o.count, NULL);
}

static tfm_status owed_read(tfm_backend *be, const void *p, size_t bytes) {
    for (int i = 0; i < 4; i++) {
        tfm_cuda_owed *o = &be->owed[i];
        if (o->kind && overlap(o->out, o->count * sizeof(float), p, bytes)) {
            tfm_status st = owed_materialize(be, i);
            if (st) return st;
        }
    }
    return TFM_OK;
}

static tfm_status owed_write(tfm_backend *be, const void *p, size_t bytes) {
    tfm_cuda_conv_note_write(be, p, bytes);
    for (int i = 0; i < 4; i++) {
        tfm_cuda_owed *o = &be->owed[i];
        if (!o->kind) continue;
        size_t n = o->count * sizeof(float);
        uintptr_t w0 = (uintptr_t)p, o0 = (uintptr_t)o->out;
        if (w0 <= o0 && o0 + n <= w0 + bytes) {
            o->kind = 0; /* fully overwritten: the owed value is dead */
        } else if (overlap(o->out, n, p, bytes) || owed_reads_from(o, p, bytes)) {
            tfm_status st = owed_materialize(be, i);
            if (st) return st;
        }
    }
    return TFM_OK;
}

static tfm_status owed_add(tfm_backend *be, const tfm_cuda_owed *e) {
    int slot = -1;
    for (int i = 0; i < 4 && slot < 0; i++)
        if (!be->owed[i].kind) slot = i;
    if (slot < 0) {
        tfm_status st = owed_materialize(be, 0);
        if (st) return st;
        slot = 0;
    }
    be->owed[slot] = *e;
    return TFM_OK;
}

static int owed_find(tfm_backend *be, const float *out, size_t count) {
    for (int i = 0; i < 4; i++)
        if (be->owed[i].kind && be->owed[i].out == out && be->owed[i].count == count) return i;
    return -1;
}

/* ---------------------------------------------------------------- held-back matvecs and RoPE/KV */

static tfm_status group_launch_glu(tfm_backend *be, float *res, float *glu_out) {
    tfm_cuda_mv_group g = be->group;
    be->group.k = 0;
    tfm_cuda_mvx_args a;
    memset(&a, 0, sizeof a);
    int end = 0;
    for (int i = 0; i < g.k; i++) {
        a.w[i] = g.w[i].data;
        a.y[i] = g.y[i];
        end += (int)g.w[i].rows;
        a.seg_end[i] = end;
    }
    a.nseg = g.k;
    a.cols = (int)g.w[0].cols;
    a.res = res;
    a.pair = glu_out != NULL;
    a.glu_out = glu_out;
    int mode = TFM_CUDA_MVX_PLAIN;
    if (g.src.kind == TFM_CUDA_OWED_NORM) {
        mode = TFM_CUDA_MVX_NORM;
        a.x = g.src.a;
        a.g = (const float *)g.src.g;
        a.eps = g.src.eps;
    } else if (g.src.kind == TFM_CUDA_OWED_GLU) {
        mode = TFM_CUDA_MVX_GLU;
        a.x = g.src.a;
        a.x2 = g.src.b;
    } else {
        a.x = g.x;
    }
    return tfm_cuda_mvx_launch(be, &a, g.w[0].dtype, mode);
}

static tfm_status group_launch(tfm_backend *be, float *res) { return group_launch_glu(be, res, NULL); }

static tfm_status prelude_flush(tfm_backend *be) {
    tfm_cuda_prelude p = be->prelude;
    be->prelude.stage = 0;
    if (p.stage == 4) return tfm_cuda_rope_store(be, &p);
    tfm_status st = TFM_OK;
    if (p.stage >= 1) st = tfm_cuda_rope(be, p.q, p.n, p.n_head, p.head_dim, p.pos_q, p.inv_freq, p.pairing);
    if (!st && p.stage >= 2) st = tfm_cuda_rope(be, p.k, p.n, p.n_head_kv, p.head_dim, p.pos_k, p.inv_freq, p.pairing);
    if (!st && p.stage >= 3) st = tfm_cuda_kv_store(be, p.k_cache, p.kv_dtype, p.row_k, p.k, p.n, p.width);
    return st;
}

tfm_status tfm_cuda_settle(tfm_backend *be) {
    tfm_status st = TFM_OK;
    if (be->gemm.active) {
        tfm_cuda_gemm_pending g = be->gemm;
        be->gemm.active = 0;
        st = tfm_cuda_matmul(be, &g.w, g.x, g.y, g.n);
    }
    if (!st && be->group.k) st = group_launch(be, NULL);
    if (!st && be->prelude.stage) st = prelude_flush(be);
    return st;
}

tfm_status tfm_cuda_settle_all(tfm_backend *be) {
    tfm_status st = tfm_cuda_settle(be);
    for (int i = 0; i < 4 && !st; i++)
        if (be->owed[i].kind) st = owed_materialize(be, i);
    return st;
}

tfm_status tfm_cuda_before_read(tfm_backend *be, const void *ptr, size_t bytes) {
    tfm_status st = tfm_cuda_settle(be);
    return st ? st : owed_read(be, ptr, bytes);
}

tfm_status tfm_cuda_before_write(tfm_backend *be, const void *ptr, size_t bytes) {
    tfm_status st = tfm_cuda_settle(be);
    return st ? st : owed_write(be, ptr, bytes);
}

#define TRY(call)                         \
    do {                                  \
        tfm_status st_ = (call);          \
        if (st_ != TFM_OK) return st_;    \
    } while (0)

/* ---------------------------------------------------------------- the ops */

static int mvx_fits(tfm_backend *be, const tfm_weight *w, const float *x, const float *y) {
    int epc = w->dtype == TFM_DTYPE_F32 ? 4 : 8;
    if (w->dtype != TFM_DTYPE_F32 && w->dtype != TFM_DTYPE_F16 && w->dtype != TFM_DTYPE_BF16) return 0;
    return w->rows % tfm_cuda_mvx_row_multiple() == 0 && w->cols % epc == 0 &&
           (size_t)w->cols * sizeof(float) <= (size_t)be->mvx_smem_limit && aligned16(w->data) && aligned16(x) &&
           !overlap(x, (size_t)w->cols * 4, y, (size_t)w->rows * 4);
}

static int same_recipe(const tfm_cuda_owed *a, const tfm_cuda_owed *b) {
    return a->kind == b->kind && a->out == b->out && a->count == b->count && a->a == b->a && a->b == b->b &&
           a->g == b->g && a->eps == b->eps;
}

tfm_status tfm_cuda_plan_matmul(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n) {
    if (be->fuse && n == 1 && mvx_fits(be, w, x, y)) {
        tfm_cuda_owed src;
        memset(&src, 0, sizeof src);
        int oi = owed_find(be, x, (size_t)w->cols);
        /* the direct kernel takes no SwiGLU input: such an x is written first (below) */
        if (oi >= 0 && !(be->owed[oi].kind == TFM_CUDA_OWED_GLU && tfm_cuda_mvx_direct(be))) src = be->owed[oi];
        size_t ybytes = (size_t)w->rows * sizeof(float);
        int clash = src.kind && owed_reads_from(&src, y, ybytes);
        tfm_cuda_mv_group *g = &be->group;
        if (!clash && g->k > 0 && g->k < 3 && g->x == x && same_recipe(&g->src, &src) && g->w[0].dtype == w->dtype &&
            g->w[0].cols == w->cols) {
            int free_of_others = 1;
            for (int i = 0; i < g->k; i++)
                if (overlap(g->y[i], (size_t)g->w[i].rows * 4, y, ybytes)) free_of_others = 0;
            if (free_of_others) {
                TRY(owed_write(be, y, ybytes));
                g->w[g->k] = *w;
                g->y[g->k] = y;
                g->k++;
                return TFM_OK;
            }
        }
        if (!clash) {
            TRY(tfm_cuda_settle(be));
            if (!src.kind) TRY(owed_read(be, x, (size_t)w->cols * sizeof(float)));
            TRY(owed_write(be, y, ybytes));
            /* owed_write may have materialised x's recipe (if y overlapped something it reads) */
            if (src.kind && owed_find(be, x, (size_t)w->cols) < 0) src.kind = 0;
            g->k = 1;
            g->x = x;
            g->src = src;
            g->w[0] = *w;
            g->y[0] = y;
            return TFM_OK;
        }
    }
    TRY(tfm_cuda_settle(be));
    TRY(owed_read(be, x, (size_t)n * w->cols * sizeof(float)));
    TRY(owed_write(be, y, (size_t)n * w->rows * sizeof(float)));
    if (be->fuse && n > 1 && !overlap(x, (size_t)n * w->cols * 4, y, (size_t)n * w->rows * 4)) {
        /* held back: a residual add that follows folds into it */
        be->gemm.active = 1;
        be->gemm.w = *w;
        be->gemm.x = x;
        be->gemm.y = y;
        be->gemm.n = n;
        return TFM_OK;
    }
    return tfm_cuda_matmul(be, w, x, y, n);
}

tfm_status tfm_cuda_plan_add(tfm_backend *be, float *x, const float *y, size_t count) {
    tfm_cuda_mv_group *g = &be->group;
    size_t bytes = count * sizeof(float);
    tfm_cuda_gemm_pending *pg = &be->gemm;
    if (pg->active && pg->y == y && count == (size_t)pg->n * pg->w.rows && !overlap(x, bytes, y, bytes) &&
        !overlap(x, bytes, pg->x, (size_t)pg->n * pg->w.cols * 4)) {
        /* x += W·in in one GEMM (beta = 1); y (W·in alone) becomes owed */
        tfm_cuda_gemm_pending gp = *pg;
        pg->active = 0;
        TRY(owed_write(be, x, bytes));
        tfm_cuda_owed e;
        memset(&e, 0, sizeof e);
        e.kind = TFM_CUDA_OWED_GEMM;
        e.out = gp.y;
        e.count = count;
        e.a = gp.x;
        e.w = gp.w;
        e.n = gp.n;
        TRY(tfm_cuda_matmul_accumulate(be, &gp.w, gp.x, x, gp.n));
        return owed_add(be, &e);
    }
    if (g->k == 1 && g->y[0] == y && count == (size_t)g->w[0].rows && !overlap(x, bytes, y, bytes) &&
        !overlap(x, bytes, g->x, (size_t)g->w[0].cols * 4) && !(g->src.kind && owed_reads_from(&g->src, x, bytes))) {
        TRY(owed_write(be, x, bytes));
        return group_launch(be, x);
    }
    TRY(tfm_cuda_settle(be));
    TRY(owed_read(be, x, bytes));
    TRY(owed_read(be, y, bytes));
    TRY(owed_write(be, x, bytes));
    return tfm_cuda_add(be, x, y, count);
}

tfm_status tfm_cuda_plan_rmsnorm(tfm_backend *be, const float *x, const tfm_weight *g, float *y, int n, int dim,
                                 float eps) {
    TRY(tfm_cuda_settle(be));
    size_t bytes = (size_t)n * dim * sizeof(float);
    TRY(owed_read(be, x, bytes));
    if (be->fuse && n == 1 && g->dtype == TFM_DTYPE_F32 && g->rows * g->cols == dim && dim % 4 == 0 &&
        (size_t)dim * 4 <= (size_t)be->mvx_smem_limit && aligned16(x) && aligned16(y) && aligned16(g->data) &&
        !overlap(x, bytes, y, bytes)) {
        TRY(owed_write(be, y, bytes));
        tfm_cuda_owed e;
        memset(&e, 0, sizeof e);
        e.kind = TFM_CUDA_OWED_NORM;
        e.out = y;
        e.count = (size_t)dim;
        e.a = x;
        e.g = g->data;
        e.eps = eps;
        return owed_add(be, &e);
    }
    TRY(owed_write(be, y, bytes));
    void *y16 = n > 1 ? tfm_cuda_conv_prepare(be, (size_t)n * dim) : NULL;
    return tfm_cuda_rmsnorm(be, x, g, y, n, dim, eps, y16);
}

tfm_status tfm_cuda_plan_swiglu(tfm_backend *be, const float *gate, const float *up, float *out, size_t count) {
    size_t bytes = count * sizeof(float);
    tfm_cuda_mv_group *g = &be->group;
    if (tfm_cuda_mvx_direct(be) && g->k == 2 && g->y[0] == gate && g->y[1] == up && g->w[0].rows == g->w[1].rows &&
        count == (size_t)g->w[0].rows && (out == gate || (!overlap(out, bytes, gate, bytes) &&
                                                           !overlap(out, bytes, up, bytes) &&
                                                           !overlap(out, bytes, g->x, (size_t)g->w[0].cols * 4) &&
                                                           !(g->src.kind && owed_reads_from(&g->src, out, bytes))))) {
        /* gate and up as pairs: the matvec's epilogue writes silu(gate)·up */
        TRY(owed_write(be, out, bytes));
        return group_launch_glu(be, NULL, out);
    }
    TRY(tfm_cuda_settle(be));
    TRY(owed_read(be, gate, bytes));
    TRY(owed_read(be, up, bytes));
    if (be->fuse && !tfm_cuda_mvx_direct(be) && count % 4 == 0 && bytes <= (size_t)be->mvx_smem_limit &&
        aligned16(gate) && aligned16(up) &&
        aligned16(out) && !overlap(up, bytes, out, bytes) && (out == gate || !overlap(gate, bytes, out, bytes))) {
        TRY(owed_write(be, out, bytes));
        tfm_cuda_owed e;
        memset(&e, 0, sizeof e);
        e.kind = TFM_CUDA_OWED_GLU;
        e.out = out;
        e.count = count;
        e.a = gate;
        e.b = up;
        return owed_add(be, &e);
    }
    TRY(owed_write(be, out, bytes));
    void *o16 = bytes > (size_t)be->mvx_smem_limit ? tfm_cuda_conv_prepare(be, count) : NULL;
    return tfm_cuda_swiglu(be, gate, up, out, count, o16);
}

tfm_status tfm_cuda_plan_rope(tfm_backend *be, float *x, int n, int n_head, int head_dim, int pos0,
                              const float *inv_freq, tfm_rope_pairing pairing) {
    size_t bytes = (size_t)n * n_head * head_dim * sizeof(float);
    tfm_cuda_prelude *p = &be->prelude;
    if (be->fuse && n >= 1 && head_dim >= 2 && head_dim % 2 == 0) {
        if (p->stage == 0) {
            TRY(tfm_cuda_settle(be));
            TRY(owed_read(be, x, bytes));
            TRY(owed_write(be, x, bytes));
            p->stage = 1;
            p->n = n;
            p->q = x;
            p->n_head = n_head;
            p->head_dim = head_dim;
            p->pos_q = pos0;
            p->inv_freq = inv_freq;
            p->pairing = pairing;
            return TFM_OK;
        }
        if (p->stage == 1 && n == p->n && head_dim == p->head_dim && inv_freq == p->inv_freq &&
            pairing == p->pairing && !overlap(x, bytes, p->q, (size_t)n * p->n_head * head_dim * 4)) {
            TRY(owed_read(be, x, bytes));
            TRY(owed_write(be, x, bytes));
            p->stage = 2;
            p->k = x;
            p->n_head_kv = n_head;
            p->pos_k = pos0;
            return TFM_OK;
        }
    }
    TRY(tfm_cuda_settle(be));
    TRY(owed_read(be, x, bytes));
    TRY(owed_write(be, x, bytes));
    return tfm_cuda_rope(be, x, n, n_head, head_dim, pos0, inv_freq, pairing);
}

tfm_status tfm_cuda_plan_kv_store(tfm_backend *be, void *cache, tfm_dtype kv_dtype, int row0, const float *src, int n,
                                  int width) {
    tfm_cuda_prelude *p = &be->prelude;
    size_t bytes = (size_t)n * width * sizeof(float);
    if (p->stage == 2 && n == p->n && src == p->k && width == p->n_head_kv * p->head_dim &&
        (kv_dtype == TFM_DTYPE_F32 || kv_dtype == TFM_DTYPE_F16 || kv_dtype == TFM_DTYPE_BF16)) {
        p->stage = 3;
        p->k_cache = cache;
        p->kv_dtype = kv_dtype;
        p->row_k = row0;
        p->width = width;
        return TFM_OK;
    }
    if (p->stage == 3 && n == p->n && kv_dtype == p->kv_dtype && width == p->width && cache != p->k_cache &&
        !overlap(src, bytes, p->q, (size_t)n * p->n_head * p->head_dim * 4) && !overlap(src, bytes, p->k, bytes)) {
        TRY(owed_read(be, src, bytes));
        p->v_cache = cache;
        p->row_v = row0;
        p->v = src;
        p->stage = 4; /* held: attention may take it in (else the next settle launches it) */
        return TFM_OK;
    }
    TRY(tfm_cuda_settle(be));
    TRY(owed_read(be, src, bytes));
    return tfm_cuda_kv_store(be, cache, kv_dtype, row0, src, n, width);
}

/* The held RoPE/KV append is this attention's own prelude: same q, caches and position, one token,
 * and the output clear of everything the fused kernel reads or writes. */
static int prelude_feeds(const tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                         tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv, int head_dim) {
    const tfm_cuda_prelude *p = &be->prelude;
    size_t qb = (size_t)n_head * head_dim * 4, kb = (size_t)n_head_kv * head_dim * 4;
    return be->attn_fuse && p->stage == 4 && n == 1 && p->n == 1 && p->q == q && p->k_cache == k_cache &&
           p->v_cache == v_cache && p->kv_dtype == kv_dtype && p->pos_q == pos0 && p->n_head == n_head &&
           p->n_head_kv == n_head_kv && p->head_dim == head_dim && !overlap(out, qb, q, qb) &&
           !overlap(out, qb, p->k, kb) && !overlap(out, qb, p->v, kb);
}

tfm_status tfm_cuda_plan_attention(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                                   tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                                   int head_dim, float scale, int causal) {
    size_t bytes = (size_t)n * n_head * head_dim * sizeof(float);
    if (prelude_feeds(be, q, k_cache, v_cache, kv_dtype, out, n, pos0, n_head, n_head_kv, head_dim)) {
        tfm_cuda_prelude p = be->prelude;
        TRY(owed_write(be, out, bytes));
        tfm_status st = tfm_cuda_attention_decode_rope(be, &p, out, scale);
        if (st != TFM_E_UNSUPPORTED) {
            be->prelude.stage = 0;
            return st;
        }
    }
    TRY(tfm_cuda_settle(be));
    TRY(owed_read(be, q, bytes));
    TRY(owed_write(be, out, bytes));
    void *out16 = n > 1 && kv_dtype != TFM_DTYPE_F32 && (head_dim == 64 || head_dim == 128)
                      ? tfm_cuda_conv_prepare(be, (size_t)n * n_head * head_dim)
                      : NULL;
    return tfm_cuda_attention(be, q, k_cache, v_cache, kv_dtype, out, n, pos0, n_head, n_head_kv, head_dim, scale,
                              causal, out16);
}

tfm_status tfm_cuda_plan_embed(tfm_backend *be, const tfm_weight *table, const int32_t *ids, int n, float *out) {
    TRY(tfm_cuda_settle(be));
    TRY(owed_write(be, out, (size_t)n * table->cols * sizeof(float)));
    return tfm_cuda_embed(be, table, ids, n, out);
}
