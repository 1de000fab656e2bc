/* kernels_quant_avx2.c — activation quantisation (the tfm_q8_row layout of quant.h) with AVX2.
 * Compiled with AVX2/FMA/F16C enabled; used only when the CPU has them. */
#include <immintrin.h>

#include "kernels.h"
#include "quant.h"
#include "simd_shared.h"

/* Same definition as tfm_q8_block: amax, 127/amax, round to nearest even, d = amax/127. */
void tfm_quantize_q8_avx2(const float *x, int64_t cols, void *row) {
    tfm_q8_row r = tfm_q8_row_at(row, cols);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (int64_t b = 0; b < cols / 32; b++) {
        __m256 v[4];
        for (int i = 0; i < 4; i++)
            v[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
        __m256 a = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                                 _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        float amax = _mm_cvtss_f32(m);
        float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        __m256 idv = _mm256_set1_ps(id);
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], idv)); /* MXCSR: nearest even */
        /* |q| <= 127, so the saturating packs are exact; they interleave 128-bit lanes, the
         * permutation puts the 4-byte runs back in order */
        __m256i q16a = _mm256_packs_epi32(q[0], q[1]), q16b = _mm256_packs_epi32(q[2], q[3]);
        __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(r.q + 32 * b), q8);
        /* sums of 4 consecutive values: 1 x q into int16 pairs, then pairs into int32 */
        q8_store_block_sums(r, b, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q8), _mm256_set1_epi16(1)),
                            amax);
    }
}
