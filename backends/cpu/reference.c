/* reference.c — the naive twins (see reference.h). Slow on purpose: one formula per line. */
#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernels.h"

float tfm_ref_weight_element(tfm_dtype dtype, const void *row, int64_t i) {
    switch (dtype) {
    case TFM_DTYPE_F32: return ((const float *)row)[i];
    case TFM_DTYPE_F16: return tfm_f16_to_f32(((const uint16_t *)row)[i]);
    case TFM_DTYPE_BF16: return tfm_bf16_to_f32(((const uint16_t *)row)[i]);
    default: return NAN;
    }
}

void tfm_ref_matmul(tfm_dtype dtype, const void *w, int64_t rows, int64_t cols, const float *x, float *y, int n) {
    size_t row_bytes = tfm_cpu_row_bytes(dtype, cols);
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++) {
            const void *row = (const char *)w + (size_t)r * row_bytes;
            double s = 0.0;
            for (int64_t c = 0; c < cols; c++)
                s += (double)tfm_ref_weight_element(dtype, row, c) * (double)x[(size_t)t * (size_t)cols + (size_t)c];
            y[(size_t)t * (size_t)rows + (size_t)r] = (float)s;
        }
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
