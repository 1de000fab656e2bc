/* kernels.h — the table of inner kernels of one instruction set (generic C, AVX2, AVX-512).
 *
 * The backend picks one table at init (cpu_features.c) and every operation goes through it. Each
 * table computes a given output element the same way wherever it sits in a buffer and whichever
 * thread computes it, so results depend on the table but not on the thread count. */
#ifndef TFM_CPU_KERNELS_H
#define TFM_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "tfm/tfm.h"

/* Slots of the per-dtype arrays: indexed by tfm_dtype value. */
#define TFM_CPU_DTYPE_SLOTS 16

/* The matrix-vector kernels handle up to this many activation rows per pass over the weights. */
#define TFM_CPU_MATVEC_MAX_TOKENS 4

/* y[t*ldy + r] = dot(weight row r, x + t*ldx) for r in [r0, r1) and t in [0, nt), nt <= 4.
 * `w` is the start of the whole weight, rows of `row_bytes` bytes holding `cols` elements. */
typedef void (*tfm_matvec_fn)(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                              const float *x, size_t ldx, int nt, float *y, size_t ldy);
/* dst[0..n) = src elements as f32 (n a multiple of the dtype's block size). */
typedef void (*tfm_to_f32_fn)(const void *src, float *dst, int64_t n);
/* dst[0..n) = src rounded to the dtype (f32, f16, bf16: round to nearest even). */
typedef void (*tfm_from_f32_fn)(const float *src, void *dst, int64_t n);
/* Quantises one row of `cols` activations (a multiple of 32) into the tfm_q8_row layout (quant.h). */
typedef void (*tfm_quantize_q8_fn)(const float *x, int64_t cols, void *row);
/* As tfm_matvec_fn for block-quantised weights, against activations quantised by quantize_q8:
 * row t of them starts at xq + t * xq_stride. */
typedef void (*tfm_matvec_q_fn)(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                                const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);
/* As tfm_matvec_q_fn over a packed weight (repack.h): rows 16 g .. 16 g + 15 for the groups g in
 * [g0, g1), any number of activation rows nt. `packed` is the start of the whole packed weight and
 * `row_bytes` the bytes of one row in the file's layout. */
typedef void (*tfm_matvec_packed_fn)(const void *packed, size_t row_bytes, int64_t cols, int64_t g0, int64_t g1,
                                     const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);
/* y[0..n) += a[r] * row r of v for r = 0 .. rows-1, in that order (rows of n values in the dtype,
 * row_bytes apart: KV cache rows); each element as `rows` multiply-adds one after another. */
typedef void (*tfm_axpy_rows_fn)(const float *a, const void *v, size_t row_bytes, int64_t rows, float *y, int64_t n);

typedef struct tfm_cpu_kernels {
    const char *name;                              /* "generic", "avx2", "avx512" */
    /* Largest activation count for which these kernels beat OpenBLAS sgemm tiles (measured with
     * tests/ops/bench_matvec; see docs/backends.md). */
    int matvec_max_n;
    tfm_matvec_fn matvec[TFM_CPU_DTYPE_SLOTS];      /* f32, f16, bf16 */
    tfm_matvec_q_fn matvec_q[TFM_CPU_DTYPE_SLOTS];  /* block-quantised types */
    /* Packed block-quantised weights (NULL: this table reads the file's layout only). */
    tfm_matvec_packed_fn matvec_packed[TFM_CPU_DTYPE_SLOTS];
    tfm_quantize_q8_fn quantize_q8;
    tfm_to_f32_fn to_f32[TFM_CPU_DTYPE_SLOTS];      /* every weight dtype (NULL: not supported) */
    tfm_from_f32_fn from_f32[TFM_CPU_DTYPE_SLOTS];  /* f32, f16, bf16 */
    tfm_axpy_rows_fn axpy_rows[TFM_CPU_DTYPE_SLOTS]; /* f32, f16, bf16 */

    float (*sum_squares)(const float *x, int64_t n);
    /* y = x * s * g (RMSNorm's scaling), y may be x. */
    void (*scale_mul)(const float *x, float s, const float *g, float *y, int64_t n);
    /* out = gate * sigmoid(gate) * up, out may alias gate or up. */
    void (*swiglu)(const float *gate, const float *up, float *out, int64_t n);
    void (*add)(float *x, const float *y, int64_t n);
    float (*max)(const float *x, int64_t n);
    /* x = exp(x - m); returns the sum of the new x. */
    float (*exp_sum)(float *x, int64_t n, float m);
    void (*scale)(float *x, float s, int64_t n);
} tfm_cpu_kernels;

const tfm_cpu_kernels *tfm_cpu_kernels_generic(void);
/* NULL when not compiled in (non-x86 builds); callers check the CPU first (cpu_features.h). */
const tfm_cpu_kernels *tfm_cpu_kernels_avx2(void);
const tfm_cpu_kernels *tfm_cpu_kernels_avx512(void);
const tfm_cpu_kernels *tfm_cpu_kernels_avx512vnni(void);

/* The AVX-512 VNNI quantised kernels (kernels_quant_avx512.c). */
void tfm_quantize_q8_avx512(const float *x, int64_t cols, void *row);
void tfm_matvec_q8_0_avx512vnni(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                                const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);
void tfm_matvec_q4_0_avx512vnni(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                                const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);
void tfm_matvec_q4_k_avx512vnni(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                                const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);
void tfm_matvec_q5_k_avx512vnni(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                                const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);
void tfm_matvec_q6_k_avx512vnni(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                                const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);

/* The AVX-512 VNNI kernels over packed weights (kernels_packed_avx512.c). */
#define DECLARE_MATVEC_PACKED(NAME)                                                                      \
    void NAME(const void *packed, size_t row_bytes, int64_t cols, int64_t g0, int64_t g1, const void *xq, \
              size_t xq_stride, int nt, float *y, size_t ldy);
DECLARE_MATVEC_PACKED(tfm_matvec_packed_q8_0_avx512vnni)
DECLARE_MATVEC_PACKED(tfm_matvec_packed_q4_0_avx512vnni)
DECLARE_MATVEC_PACKED(tfm_matvec_packed_q4_k_avx512vnni)
DECLARE_MATVEC_PACKED(tfm_matvec_packed_q5_k_avx512vnni)
DECLARE_MATVEC_PACKED(tfm_matvec_packed_q6_k_avx512vnni)

/* The AVX2 quantised kernels: activations (kernels_quant_avx2.c) and packed weights
 * (kernels_packed_avx2.c). */
void tfm_quantize_q8_avx2(const float *x, int64_t cols, void *row);
DECLARE_MATVEC_PACKED(tfm_matvec_packed_q8_0_avx2)
DECLARE_MATVEC_PACKED(tfm_matvec_packed_q4_0_avx2)
DECLARE_MATVEC_PACKED(tfm_matvec_packed_q4_k_avx2)
DECLARE_MATVEC_PACKED(tfm_matvec_packed_q5_k_avx2)
DECLARE_MATVEC_PACKED(tfm_matvec_packed_q6_k_avx2)
#undef DECLARE_MATVEC_PACKED

/* The portable quantised kernels (kernels_quant_generic.c), shared by every table that has no
 * faster version of one of them. */
void tfm_dequant_q8_0(const void *src, float *dst, int64_t n);
void tfm_dequant_q4_0(const void *src, float *dst, int64_t n);
void tfm_dequant_q4_k(const void *src, float *dst, int64_t n);
void tfm_dequant_q5_k(const void *src, float *dst, int64_t n);
void tfm_dequant_q6_k(const void *src, float *dst, int64_t n);
void tfm_quantize_q8_generic(const float *x, int64_t cols, void *row);
void tfm_matvec_q8_0_generic(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                             const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);
void tfm_matvec_q4_0_generic(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                             const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);
void tfm_matvec_q4_k_generic(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                             const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);
void tfm_matvec_q5_k_generic(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                             const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);
void tfm_matvec_q6_k_generic(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                             const void *xq, size_t xq_stride, int nt, float *y, size_t ldy);

/* Table entries of the portable quantised kernels, for the tables' initialisers. */
#define TFM_GENERIC_DEQUANT                                                                    \
    [TFM_DTYPE_Q8_0] = tfm_dequant_q8_0, [TFM_DTYPE_Q4_0] = tfm_dequant_q4_0,                   \
    [TFM_DTYPE_Q4_K] = tfm_dequant_q4_k, [TFM_DTYPE_Q5_K] = tfm_dequant_q5_k,                   \
    [TFM_DTYPE_Q6_K] = tfm_dequant_q6_k

/* Bytes of one weight row of `cols` elements in `dtype`; 0 if the dtype is not a weight type or cols
 * is not a multiple of its block size. */
size_t tfm_cpu_row_bytes(tfm_dtype dtype, int64_t cols);

#endif /* TFM_CPU_KERNELS_H */
