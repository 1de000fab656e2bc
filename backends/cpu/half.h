/* half.h — scalar conversions between f32 and the 16-bit float formats (f16, bf16).
 *
 * Both directions round to nearest, ties to even, exactly as the F16C instructions and our vector
 * kernels do, so a value stored by any code path reads back identically. */
#ifndef TFM_CPU_HALF_H
#define TFM_CPU_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t tfm_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float tfm_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float tfm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) /* inf / nan: keep the payload */
        return tfm_bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) /* zero / subnormal: mant * 2^-24, exact in f32 */
        return tfm_bits_f32(sign) + (sign ? -1.0f : 1.0f) * (float)mant * 5.9604644775390625e-8f;
    return tfm_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline uint16_t tfm_f32_to_f16(float f) {
    uint32_t x = tfm_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf stays inf; nan becomes a quiet nan with the top payload bits */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000u) /* >= 65520 rounds past the largest f16 */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) {
        /* Below the smallest normal f16 (2^-14): adding 0.5 lines the f16 subnormal step (2^-24)
         * up with the last mantissa bit of the sum, so the FPU does the round-to-nearest-even. */
        float sum = tfm_bits_f32(ax) + 0.5f;
        return (uint16_t)(sign | (tfm_f32_bits(sum) - 0x3f000000u));
    }
    uint32_t odd = (ax >> 13) & 1;
    ax += 0xfffu + odd;             /* round to nearest even at bit 13 */
    ax -= (uint32_t)(127 - 15) << 23; /* rebias the exponent */
    return (uint16_t)(sign | (ax >> 13));
}

static inline float tfm_bf16_to_f32(uint16_t b) {
    return tfm_bits_f32((uint32_t)b << 16);
}

static inline uint16_t tfm_f32_to_bf16(float f) {
    uint32_t x = tfm_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* nan: keep it a (quiet) nan */
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#endif /* TFM_CPU_HALF_H */
