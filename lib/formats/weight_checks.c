/* weight_checks.c — NaN/Inf scans of weights and UTF-8 checks of names (see weight_checks.h). */
#include "formats/weight_checks.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "error.h"

/* Exponent-all-ones tests, on the raw bits so that no float is ever loaded (data may be unaligned). */
static int f32_bad(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return (v & 0x7f800000u) == 0x7f800000u;
}
static int f16_bad(const uint8_t *p) { return ((p[1] << 8 | p[0]) & 0x7c00) == 0x7c00; }
static int bf16_bad(const uint8_t *p) { return ((p[1] << 8 | p[0]) & 0x7f80) == 0x7f80; }

/* The fast pass reads 8 bytes at a time: `exp` holds the exponent mask in every lane (2 or 4 lanes);
 * a lane is bad when its exponent bits are all ones, i.e. when (word & exp) ^ exp has a zero lane,
 * found with the usual has-zero-lane bit trick (`ones` = 1 in each lane, `highs` = each lane's top bit).
 * Little-endian words are assumed, as everywhere in libtfm's readers. */
static int word_bad(uint64_t w, uint64_t exp, uint64_t ones, uint64_t highs)
{
    uint64_t t = (w & exp) ^ exp;
    return ((t - ones) & ~t & highs) != 0;
}

/* Index of the first non-finite element of n elements of `size` bytes, or -1. Chunks of 4 KiB are
 * checked word by word; only a chunk that holds a bad lane is searched element by element. */
static int64_t first_bad(const uint8_t *p, uint64_t n, int size, int (*bad)(const uint8_t *), uint64_t exp)
{
    const uint64_t ones = size == 4 ? 0x0000000100000001ull : 0x0001000100010001ull;
    const uint64_t highs = size == 4 ? 0x8000000080000000ull : 0x8000800080008000ull;
    const uint64_t per_word = 8 / (uint64_t)size, chunk = 4096 / (uint64_t)size;
    for (uint64_t start = 0; start < n; start += chunk) {
        uint64_t end = n - start < chunk ? n : start + chunk;
        uint64_t words = (end - start) / per_word;
        const uint8_t *q = p + start * (uint64_t)size;
        int any = 0;
        for (uint64_t i = 0; i < words; i++) {
            uint64_t w;
            memcpy(&w, q + 8 * i, 8);
            any |= word_bad(w, exp, ones, highs);
        }
        for (uint64_t i = start + words * per_word; i < end; i++) any |= bad(p + i * (uint64_t)size);
        if (any)
            for (uint64_t i = start; i < end; i++)
                if (bad(p + i * (uint64_t)size)) return (int64_t)i;
    }
    return -1;
}

/* Block-quantised types: the f16 scale(s) of each block (ggml's layouts). */
typedef struct { tfm_dtype dtype; int block_bytes, block_elems, scale_at, n_scales; } quant_layout;
static const quant_layout k_quant[] = {
    {TFM_DTYPE_Q8_0, 34, 32, 0, 1},    /* d, then 32 int8 */
    {TFM_DTYPE_Q4_0, 18, 32, 0, 1},    /* d, then 16 bytes of nibbles */
    {TFM_DTYPE_Q4_K, 144, 256, 0, 2},  /* d, dmin, scales, nibbles */
    {TFM_DTYPE_Q5_K, 176, 256, 0, 2},  /* d, dmin, scales, high bits, nibbles */
    {TFM_DTYPE_Q6_K, 210, 256, 208, 1} /* nibbles, high bits, scales, then d */
};

tfm_status tfm_check_finite(const tfm_host_tensor *t, const char *label)
{
    if (!t->data) return TFM_OK;
    const uint8_t *p = t->data;
    uint64_t n = (uint64_t)t->rows * (uint64_t)t->cols;
    int64_t at = -1;
    const char *what = "element";
    switch (t->dtype) {
    case TFM_DTYPE_F32:
        if (n > t->nbytes / 4) n = t->nbytes / 4;
        at = first_bad(p, n, 4, f32_bad, 0x7f8000007f800000ull);
        break;
    case TFM_DTYPE_F16:
    case TFM_DTYPE_BF16:
        if (n > t->nbytes / 2) n = t->nbytes / 2;
        at = t->dtype == TFM_DTYPE_F16 ? first_bad(p, n, 2, f16_bad, 0x7c007c007c007c00ull)
                                       : first_bad(p, n, 2, bf16_bad, 0x7f807f807f807f80ull);
        break;
    default:
        for (size_t q = 0; q < sizeof k_quant / sizeof *k_quant; q++) {
            const quant_layout *L = &k_quant[q];
            if (L->dtype != t->dtype) continue;
            uint64_t blocks = t->nbytes / (uint64_t)L->block_bytes;
            for (uint64_t b = 0; b < blocks && at < 0; b++)
                for (int s = 0; s < L->n_scales; s++)
                    if (f16_bad(p + b * (uint64_t)L->block_bytes + (uint64_t)L->scale_at + 2u * (uint64_t)s)) {
                        at = (int64_t)(b * (uint64_t)L->block_elems);
                        what = "block scale of element";
                        break;
                    }
        }
        break;
    }
    if (at < 0) return TFM_OK;
    int64_t row = t->cols ? at / t->cols : 0, col = t->cols ? at % t->cols : at;
    return tfm_error(TFM_E_FORMAT, "%s: tensor '%s' holds NaN or infinity (%s %" PRId64 ", row %" PRId64
                     " column %" PRId64 " of %s [%" PRId64 ", %" PRId64 "]); the weights are damaged",
                     label, t->name, what, at, row, col, tfm_dtype_name(t->dtype), t->rows, t->cols);
}

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 if it is ill-formed. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int tfm_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(u + i, n - i);
        if (!len) return 0;
        i += len;
    }
    return 1;
}

void tfm_utf8_sanitize(char *s)
{
    unsigned char *u = (unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(u + i, n - i);
        if (!len) {
            u[i++] = '?';
            continue;
        }
        i += len;
    }
}
