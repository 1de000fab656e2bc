/*
 * weight_checks_test.c — the NaN/Inf scan and the UTF-8 checks of lib/formats/weight_checks.c on
 * planted values: every special value (NaN, +Inf, -Inf, a signalling NaN) at every position of
 * buffers whose lengths and start offsets straddle the scan's 8-byte words and 4 KiB chunks, in f32,
 * f16, bf16 and the f16 scales of the block-quantised types; the largest finite values must pass.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/weight_checks.h"

static int failures, checks;
#define CHECK(cond, ...)                                        \
    do {                                                        \
        checks++;                                               \
        if (!(cond)) {                                          \
            if (failures++ < 20) {                              \
                printf("FAIL: ");                               \
                printf(__VA_ARGS__);                            \
                printf("\n");                                   \
            }                                                   \
        }                                                       \
    } while (0)

static tfm_host_tensor tensor(const void *data, tfm_dtype dtype, int64_t rows, int64_t cols, uint64_t nbytes)
{
    tfm_host_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.rows = rows;
    t.cols = cols;
    t.nbytes = nbytes;
    snprintf(t.name, sizeof t.name, "blk.7.planted");
    return t;
}

static void put(uint8_t *p, uint32_t v, int size)
{
    for (int i = 0; i < size; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void test_float_types(void)
{
    static const struct {
        tfm_dtype dtype;
        int size;
        uint32_t finite, max_finite, bad[4];
    } types[] = {
        {TFM_DTYPE_F32, 4, 0x3f800000u, 0x7f7fffffu, {0x7fc00000u, 0x7f800000u, 0xff800000u, 0x7f800001u}},
        {TFM_DTYPE_F16, 2, 0x3c00u, 0x7bffu, {0x7e00u, 0x7c00u, 0xfc00u, 0x7c01u}},
        {TFM_DTYPE_BF16, 2, 0x3f80u, 0x7f7fu, {0x7fc0u, 0x7f80u, 0xff80u, 0x7f81u}},
    };
    const int lengths[] = {1, 3, 4, 5, 7, 8, 9, 1023, 1024, 1025, 2047, 2048, 2049, 5000};
    for (size_t ty = 0; ty < sizeof types / sizeof *types; ty++) {
        int size = types[ty].size;
        for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
            int n = lengths[li];
            for (int shift = 0; shift < 3; shift++) { /* unaligned starts */
                uint8_t *buf = malloc((size_t)n * (size_t)size + 3);
                uint8_t *p = buf + shift;
                for (int i = 0; i < n; i++) put(p + i * size, i % 2 ? types[ty].max_finite : types[ty].finite, size);
                tfm_host_tensor t = tensor(p, types[ty].dtype, 1, n, (uint64_t)n * (uint64_t)size);
                CHECK(tfm_check_finite(&t, "x") == TFM_OK, "%s n %d: finite values refused: %s",
                      tfm_dtype_name(types[ty].dtype), n, tfm_last_error());
                int step = n > 64 ? 37 : 1;
                for (int at = 0; at < n; at += step) {
                    for (int b = 0; b < 4; b++) {
                        put(p + at * size, types[ty].bad[b], size);
                        char want[64];
                        snprintf(want, sizeof want, "element %d,", at);
                        tfm_status st = tfm_check_finite(&t, "file.gguf");
                        CHECK(st == TFM_E_FORMAT && strstr(tfm_last_error(), want) &&
                                  strstr(tfm_last_error(), "blk.7.planted") && strstr(tfm_last_error(), "file.gguf"),
                              "%s n %d shift %d: value 0x%x at %d: %s", tfm_dtype_name(types[ty].dtype), n, shift,
                              types[ty].bad[b], at, st ? tfm_last_error() : "accepted");
                    }
                    put(p + at * size, types[ty].finite, size);
                }
                free(buf);
            }
        }
    }
}

static void test_quantised(void)
{
    static const struct {
        tfm_dtype dtype;
        int block_bytes, block_elems, scale_at, n_scales;
    } q[] = {{TFM_DTYPE_Q8_0, 34, 32, 0, 1}, {TFM_DTYPE_Q4_0, 18, 32, 0, 1}, {TFM_DTYPE_Q4_K, 144, 256, 0, 2},
             {TFM_DTYPE_Q5_K, 176, 256, 0, 2}, {TFM_DTYPE_Q6_K, 210, 256, 208, 1}};
    for (size_t k = 0; k < sizeof q / sizeof *q; k++) {
        int blocks = 5;
        size_t bytes = (size_t)blocks * (size_t)q[k].block_bytes;
        uint8_t *buf = malloc(bytes);
        memset(buf, 0xff, bytes); /* quantised payload bytes may be anything */
        for (int b = 0; b < blocks; b++)
            for (int s = 0; s < q[k].n_scales; s++) put(buf + b * q[k].block_bytes + q[k].scale_at + 2 * s, 0x3c00, 2);
        tfm_host_tensor t = tensor(buf, q[k].dtype, 1, (int64_t)blocks * q[k].block_elems, bytes);
        CHECK(tfm_check_finite(&t, "x") == TFM_OK, "%s: finite scales refused: %s", tfm_dtype_name(q[k].dtype),
              tfm_last_error());
        for (int b = 0; b < blocks; b++)
            for (int s = 0; s < q[k].n_scales; s++) {
                uint8_t *scale = buf + b * q[k].block_bytes + q[k].scale_at + 2 * s;
                put(scale, 0x7e00, 2);
                CHECK(tfm_check_finite(&t, "x") == TFM_E_FORMAT, "%s: NaN scale %d of block %d accepted",
                      tfm_dtype_name(q[k].dtype), s, b);
                put(scale, 0x3c00, 2);
            }
        free(buf);
    }
}

static void test_utf8(void)
{
    static const char *const good[] = {"", "llama", "caf\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xef\xbf\xbf"};
    static const char *const bad[] = {"\xff", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "a\xe2\x96", "\x80"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK(tfm_utf8_valid(good[i], strlen(good[i])), "valid UTF-8 %zu refused", i);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(!tfm_utf8_valid(bad[i], strlen(bad[i])), "invalid UTF-8 %zu accepted", i);
        char copy[16];
        snprintf(copy, sizeof copy, "%s", bad[i]);
        tfm_utf8_sanitize(copy);
        CHECK(tfm_utf8_valid(copy, strlen(copy)) && strlen(copy) == strlen(bad[i]), "sanitised %zu: '%s'", i, copy);
    }
    char mixed[] = "ok \xc3\xa9 \xff end";
    tfm_utf8_sanitize(mixed);
    CHECK(strcmp(mixed, "ok \xc3\xa9 ? end") == 0, "sanitise keeps valid characters: '%s'", mixed);
}

int main(void)
{
    test_float_types();
    test_quantised();
    test_utf8();
    printf("weight-checks: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
