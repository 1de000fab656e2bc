/* kernels_quant_generic.c — portable kernels of the block-quantised types: dequantisation,
 * activation quantisation and dot products. The reference for the vector versions. */
#include <string.h>

#include "kernels.h"
#include "quant.h"

/* One block decoded to integers and per-16-value scale and minimum: w[i] = scale[i/16] * q[i] -
 * min[i/16]. Exactly the float operations llama.cpp's dequantisation performs. */
typedef struct decoded {
    int q[TFM_QK_BLOCK];
    float scale[TFM_QK_BLOCK / 16];
    float min[TFM_QK_BLOCK / 16];
    int n;          /* values in the block */
    int has_min;
} decoded;

static void decode_q8_0(const uint8_t *b, decoded *o) {
    float d = tfm_load_f16(b);
    o->n = 32;
    o->has_min = 0;
    for (int i = 0; i < 32; i++)
        o->q[i] = (int8_t)b[2 + i];
    o->scale[0] = o->scale[1] = d;
    o->min[0] = o->min[1] = 0.0f;
}

static void decode_q4_0(const uint8_t *b, decoded *o) {
    float d = tfm_load_f16(b);
    o->n = 32;
    o->has_min = 0;
    for (int i = 0; i < 16; i++) {
        o->q[i] = (b[2 + i] & 0xF) - 8;
        o->q[i + 16] = (b[2 + i] >> 4) - 8;
    }
    o->scale[0] = o->scale[1] = d;
    o->min[0] = o->min[1] = 0.0f;
}

static void k_scales(const uint8_t *b, decoded *o) {
    float d = tfm_load_f16(b), dmin = tfm_load_f16(b + 2);
    for (int s = 0; s < 8; s++) {
        int sc, m;
        tfm_k_scale_min(b + 4, s, &sc, &m);
        o->scale[2 * s] = o->scale[2 * s + 1] = d * (float)sc;
        o->min[2 * s] = o->min[2 * s + 1] = dmin * (float)m;
    }
    o->n = 256;
    o->has_min = 1;
}

static void decode_q4_k(const uint8_t *b, decoded *o) {
    k_scales(b, o);
    const uint8_t *qs = b + 16;
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++) {
            o->q[64 * p + l] = qs[32 * p + l] & 0xF;
            o->q[64 * p + 32 + l] = qs[32 * p + l] >> 4;
        }
}

static void decode_q5_k(const uint8_t *b, decoded *o) {
    k_scales(b, o);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++) {
            o->q[64 * p + l] = (qs[32 * p + l] & 0xF) | (((qh[l] >> (2 * p)) & 1) << 4);
            o->q[64 * p + 32 + l] = (qs[32 * p + l] >> 4) | (((qh[l] >> (2 * p + 1)) & 1) << 4);
        }
}

static void decode_q6_k(const uint8_t *b, decoded *o) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = tfm_load_f16(b + 208);
    o->n = 256;
    o->has_min = 0;
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *lo = ql + 64 * h, *hi = qh + 32 * h;
            int *q = o->q + 128 * h;
            q[l] = ((lo[l] & 0xF) | (((hi[l] >> 0) & 3) << 4)) - 32;
            q[l + 32] = ((lo[l + 32] & 0xF) | (((hi[l] >> 2) & 3) << 4)) - 32;
            q[l + 64] = ((lo[l] >> 4) | (((hi[l] >> 4) & 3) << 4)) - 32;
            q[l + 96] = ((lo[l + 32] >> 4) | (((hi[l] >> 6) & 3) << 4)) - 32;
        }
    for (int g = 0; g < 16; g++) {
        o->scale[g] = d * (float)sc[g];
        o->min[g] = 0.0f;
    }
}

typedef void (*decode_fn)(const uint8_t *b, decoded *o);

static decode_fn decoder(tfm_dtype t) {
    switch (t) {
    case TFM_DTYPE_Q8_0: return decode_q8_0;
    case TFM_DTYPE_Q4_0: return decode_q4_0;
    case TFM_DTYPE_Q4_K: return decode_q4_k;
    case TFM_DTYPE_Q5_K: return decode_q5_k;
    case TFM_DTYPE_Q6_K: return decode_q6_k;
    default: return NULL;
    }
}

/* ---- dequantisation ---- */

static void dequantize(tfm_dtype t, const void *src, float *dst, int64_t n) {
    decode_fn dec = decoder(t);
    int bytes = tfm_q_block_bytes(t), values = tfm_q_block_values(t);
    decoded o;
    for (int64_t b = 0; b < n / values; b++) {
        dec((const uint8_t *)src + (size_t)b * (size_t)bytes, &o);
        for (int i = 0; i < values; i++) {
            float v = o.scale[i / 16] * (float)o.q[i];
            dst[(size_t)b * (size_t)values + (size_t)i] = o.has_min ? v - o.min[i / 16] : v;
        }
    }
}

#define DEFINE_DEQUANT(NAME, TYPE)                                       \
    void NAME(const void *src, float *dst, int64_t n) { dequantize(TYPE, src, dst, n); }
DEFINE_DEQUANT(tfm_dequant_q8_0, TFM_DTYPE_Q8_0)
DEFINE_DEQUANT(tfm_dequant_q4_0, TFM_DTYPE_Q4_0)
DEFINE_DEQUANT(tfm_dequant_q4_k, TFM_DTYPE_Q4_K)
DEFINE_DEQUANT(tfm_dequant_q5_k, TFM_DTYPE_Q5_K)
DEFINE_DEQUANT(tfm_dequant_q6_k, TFM_DTYPE_Q6_K)

/* ---- activations ---- */

void tfm_quantize_q8_generic(const float *x, int64_t cols, void *row) {
    tfm_q8_row r = tfm_q8_row_at(row, cols);
    for (int64_t b = 0; b < cols / TFM_Q_BLOCK; b++)
        tfm_q8_block(x + b * TFM_Q_BLOCK, r.q + b * TFM_Q_BLOCK, &r.d[b], &r.bsum[b], r.lane + b * (TFM_Q_BLOCK / 4),
                     &r.sum32[b], r.sum16 + 2 * b);
}

/* ---- dot products: integer sums per 16 values, scaled in float ---- */

static float dot_q(tfm_dtype t, const uint8_t *wrow, int64_t cols, tfm_q8_row x) {
    decode_fn dec = decoder(t);
    int bytes = tfm_q_block_bytes(t), values = tfm_q_block_values(t);
    decoded o;
    float sum = 0.0f;
    for (int64_t b = 0; b < cols / values; b++) {
        dec(wrow + (size_t)b * (size_t)bytes, &o);
        const int8_t *xq = x.q + b * values;
        for (int g = 0; g < values / 16; g++) {
            int isum = 0;
            for (int i = 0; i < 16; i++)
                isum += o.q[16 * g + i] * xq[16 * g + i];
            int64_t xb = (b * values + 16 * g) / TFM_Q_BLOCK;
            sum += o.scale[g] * x.d[xb] * (float)isum;
            if (o.has_min && (g & 1))
                sum -= o.min[g] * x.bsum[xb];
        }
    }
    return sum;
}

#define DEFINE_MATVEC_Q(NAME, TYPE)                                                                    \
    void NAME(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,            \
                     const void *xq, size_t xq_stride, int nt, float *y, size_t ldy) {                 \
        for (int64_t r = r0; r < r1; r++)                                                              \
            for (int t = 0; t < nt; t++)                                                               \
                y[(size_t)t * ldy + (size_t)r] =                                                       \
                    dot_q(TYPE, (const uint8_t *)w + (size_t)r * row_bytes, cols,                      \
                          tfm_q8_row_at((char *)xq + (size_t)t * xq_stride, cols));                    \
    }
DEFINE_MATVEC_Q(tfm_matvec_q8_0_generic, TFM_DTYPE_Q8_0)
DEFINE_MATVEC_Q(tfm_matvec_q4_0_generic, TFM_DTYPE_Q4_0)
DEFINE_MATVEC_Q(tfm_matvec_q4_k_generic, TFM_DTYPE_Q4_K)
DEFINE_MATVEC_Q(tfm_matvec_q5_k_generic, TFM_DTYPE_Q5_K)
DEFINE_MATVEC_Q(tfm_matvec_q6_k_generic, TFM_DTYPE_Q6_K)
