/* reference.h — naive twins of the cpu backend's operations, written for clarity (double
 * accumulators, one element at a time, no threads). The ops tests compare every fast path with them. */
#ifndef TFM_CPU_REFERENCE_H
#define TFM_CPU_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* Element i of a weight row stored in `dtype` (f32, f16, bf16 and the block types), as f32. */
float tfm_ref_weight_element(tfm_dtype dtype, const void *row, int64_t i);

/* For block-quantised weights, x is first quantised per block of 32 as the backend does (quant.h). */
void tfm_ref_matmul(tfm_dtype dtype, const void *w, int64_t rows, int64_t cols, const float *x, float *y, int n);
void tfm_ref_embed(tfm_dtype dtype, const void *table, int64_t cols, const int32_t *ids, int n, float *out);
void tfm_ref_rmsnorm(const float *x, const float *g, float *y, int n, int dim, float eps);
void tfm_ref_rope(float *x, int n, int n_head, int head_dim, int pos0, const float *inv_freq,
                  tfm_rope_pairing pairing);
void tfm_ref_kv_store(void *cache, tfm_dtype kv_dtype, int row0, const float *src, int n, int width);
void tfm_ref_attention(const float *q, const void *k_cache, const void *v_cache, tfm_dtype kv_dtype, float *out,
                       int n, int pos0, int n_head, int n_head_kv, int head_dim, float scale, int causal);
void tfm_ref_swiglu(const float *gate, const float *up, float *out, size_t count);
void tfm_ref_add(float *x, const float *y, size_t count);

#endif /* TFM_CPU_REFERENCE_H */
