/* reference.c — the naive twins (see reference.h). Slow on purpose: one formula per line. */
#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernels.h"
#include "quant.h"

/* Element j (0..255) of a K-quant super-block, straight from the layout in quant.h. */
static float k_element(tfm_dtype dtype, const uint8_t *b, int j) {
    if (dtype == TFM_DTYPE_Q6_K) {
        int h = j / 128, v = j % 128, l = v % 32, quarter = v / 32;
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        int low = quarter == 0 ? ql[l] & 0xF : quarter == 1 ? ql[l + 32] & 0xF : quarter == 2 ? ql[l] >> 4 : ql[l + 32] >> 4;
        int high = (qh[l] >> (2 * quarter)) & 3;
        float d = tfm_load_f16(b + 208);
        return (d * (float)(int8_t)b[192 + j / 16]) * (float)((low | (high << 4)) - 32);
    }
    int sub = j / 32, l = j % 32, sc, m;
    tfm_k_scale_min(b + 4, sub, &sc, &m);
    const uint8_t *qs = b + (dtype == TFM_DTYPE_Q5_K ? 48 : 16);
    int q = sub % 2 == 0 ? qs[32 * (sub / 2) + l] & 0xF : qs[32 * (sub / 2) + l] >> 4;
    if (dtype == TFM_DTYPE_Q5_K)
        q |= ((b[16 + l] >> sub) & 1) << 4;
    return (tfm_load_f16(b) * (float)sc) * (float)q - tfm_load_f16(b + 2) * (float)m;
}

float tfm_ref_weight_element(tfm_dtype dtype, const void *row, int64_t i) {
    const uint8_t *p = row;
    switch (dtype) {
    case TFM_DTYPE_F32: return ((const float *)row)[i];
    case TFM_DTYPE_F16: return tfm_f16_to_f32(((const uint16_t *)row)[i]);
    case TFM_DTYPE_BF16: return tfm_bf16_to_f32(((const uint16_t *)row)[i]);
    case TFM_DTYPE_Q8_0: {
        const uint8_t *b = p + (size_t)(i / 32) * TFM_Q8_0_BYTES;
        return (float)(int8_t)b[2 + i % 32] * tfm_load_f16(b);
    }
    case TFM_DTYPE_Q4_0: {
        const uint8_t *b = p + (size_t)(i / 32) * TFM_Q4_0_BYTES;
        int j = (int)(i % 32);
        int nibble = j < 16 ? b[2 + j] & 0xF : b[2 + j - 16] >> 4;
        return (float)(nibble - 8) * tfm_load_f16(b);
    }
    case TFM_DTYPE_Q4_K:
    case TFM_DTYPE_Q5_K:
    case TFM_DTYPE_Q6_K:
        return k_element(dtype, p + (size_t)(i / 256) * (size_t)tfm_q_block_bytes(dtype), (int)(i % 256));
    default: return NAN;
    }
}

/* Block-quantised weights multiply activations quantised per block of 32 (quant.h): part of the
 * operation's definition. */
static void quantize_activations(const float *x, int64_t cols, float *xd) {
    for (int64_t b = 0; b < cols / 32; b++) {
        int8_t q[32];
        int32_t lane[8], sum32, sum16[2];
        float d, bsum;
        tfm_q8_block(x + b * 32, q, &d, &bsum, lane, &sum32, sum16);
        for (int i = 0; i < 32; i++)
            xd[b * 32 + i] = d * (float)q[i];
    }
}

void tfm_ref_matmul(tfm_dtype dtype, const void *w, int64_t rows, int64_t cols, const float *x, float *y, int n) {
    size_t row_bytes = tfm_cpu_row_bytes(dtype, cols);
    float *xa = malloc((size_t)cols * sizeof *xa);
    if (!xa)
        return;
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * (size_t)cols;
        if (tfm_is_quantized(dtype)) {
            quantize_activations(xt, cols, xa);
            xt = xa;
        }
        for (int64_t r = 0; r < rows; r++) {
            const void *row = (const char *)w + (size_t)r * row_bytes;
            double s = 0.0;
            for (int64_t c = 0; c < cols; c++)
                s += (double)tfm_ref_weight_element(dtype, row, c) * (double)xt[c];
            y[(size_t)t * (size_t)rows + (size_t)r] = (float)s;
        }
    }
    free(xa);
}

void tfm_ref_embed(tfm_dtype dtype, const void *table, int64_t cols, const int32_t *ids, int n, float *out) {
    size_t row_bytes = tfm_cpu_row_bytes(dtype, cols);
    for (int i = 0; i < n; i++)
        for (int64_t c = 0; c < cols; c++)
            out[(size_t)i * (size_t)cols + (size_t)c] =
                tfm_ref_weight_element(dtype, (const char *)table + (size_t)ids[i] * row_bytes, c);
}

void tfm_ref_rmsnorm(const float *x, const float *g, float *y, int n, int dim, float eps) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * (size_t)dim;
        double ss = 0.0;
        for (int c = 0; c < dim; c++)
            ss += (double)xi[c] * xi[c];
        double inv = 1.0 / sqrt(ss / dim + eps);
        for (int c = 0; c < dim; c++)
            y[(size_t)i * (size_t)dim + (size_t)c] = (float)(xi[c] * inv * g[c]);
    }
}

void tfm_ref_rope(float *x, int n, int n_head, int head_dim, int pos0, const float *inv_freq,
                  tfm_rope_pairing pairing) {
    int half = head_dim / 2;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < n_head; h++) {
            float *v = x + ((size_t)i * (size_t)n_head + (size_t)h) * (size_t)head_dim;
            for (int p = 0; p < half; p++) {
                /* angle as a float product, like the reference model implementations */
                double angle = (double)((float)(pos0 + i) * inv_freq[p]);
                double c = cos(angle), s = sin(angle);
                int a = pairing == TFM_ROPE_ADJACENT ? 2 * p : p;
                int b = pairing == TFM_ROPE_ADJACENT ? 2 * p + 1 : p + half;
                double x0 = v[a], x1 = v[b];
                v[a] = (float)(x0 * c - x1 * s);
                v[b] = (float)(x0 * s + x1 * c);
            }
        }
}

void tfm_ref_kv_store(void *cache, tfm_dtype kv_dtype, int row0, const float *src, int n, int width) {
    size_t count = (size_t)n * (size_t)width, at = (size_t)row0 * (size_t)width;
    for (size_t i = 0; i < count; i++) {
        if (kv_dtype == TFM_DTYPE_F32)
            ((float *)cache)[at + i] = src[i];
        else if (kv_dtype == TFM_DTYPE_F16)
            ((uint16_t *)cache)[at + i] = tfm_f32_to_f16(src[i]);
        else
            ((uint16_t *)cache)[at + i] = tfm_f32_to_bf16(src[i]);
    }
}

void tfm_ref_attention(const float *q, const void *k_cache, const void *v_cache, tfm_dtype kv_dtype, float *out,
                       int n, int pos0, int n_head, int n_head_kv, int head_dim, float scale, int causal) {
    int group = n_head / n_head_kv;
    int n_all = pos0 + n;
    double *p = malloc((size_t)n_all * sizeof *p);
    double *o = malloc((size_t)head_dim * sizeof *o);
    if (!p || !o) {
        free(p);
        free(o);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int h = 0; h < n_head; h++) {
            const float *qv = q + ((size_t)i * (size_t)n_head + (size_t)h) * (size_t)head_dim;
            int kvh = h / group;
            int n_keys = causal ? pos0 + i + 1 : n_all;
            double m = -INFINITY;
            for (int t = 0; t < n_keys; t++) {
                size_t at = ((size_t)t * (size_t)n_head_kv + (size_t)kvh) * (size_t)head_dim;
                double s = 0.0;
                for (int d = 0; d < head_dim; d++)
                    s += (double)qv[d] * tfm_ref_weight_element(kv_dtype, k_cache, (int64_t)(at + (size_t)d));
                p[t] = s * scale;
                m = p[t] > m ? p[t] : m;
            }
            double sum = 0.0;
            for (int t = 0; t < n_keys; t++) {
                p[t] = exp(p[t] - m);
                sum += p[t];
            }
            for (int d = 0; d < head_dim; d++)
                o[d] = 0.0;
            for (int t = 0; t < n_keys; t++) {
                size_t at = ((size_t)t * (size_t)n_head_kv + (size_t)kvh) * (size_t)head_dim;
                for (int d = 0; d < head_dim; d++)
                    o[d] += p[t] / sum * tfm_ref_weight_element(kv_dtype, v_cache, (int64_t)(at + (size_t)d));
            }
            for (int d = 0; d < head_dim; d++)
                out[((size_t)i * (size_t)n_head + (size_t)h) * (size_t)head_dim + (size_t)d] = (float)o[d];
        }
    free(p);
    free(o);
}

void tfm_ref_swiglu(const float *gate, const float *up, float *out, size_t count) {
    for (size_t i = 0; i < count; i++) {
        double g = gate[i];
        out[i] = (float)(g / (1.0 + exp(-g)) * up[i]);
    }
}

void tfm_ref_add(float *x, const float *y, size_t count) {
    for (size_t i = 0; i < count; i++)
        x[i] += y[i];
}
