/* bench_cuda_ops.c — where a decode step's time goes, measured through the plugin's vtable.
 *
 *   bench_cuda_ops path/to/libtfm-cuda.so [layers=32] [decode]
 *
 * Loads Llama-2-7B-shaped matrices (random bf16 values, stored as the plugin chooses) and times
 * recorded steps (CUDA graphs) that contain: (1) only the 7 matrix-vector products of each layer, as
 * the core issues them; (2) a chain of 200 residual adds of 4096 floats (the cost of one small
 * kernel in a recorded step); (3) whole decode layers at position 256, and the same without
 * attention or without RoPE/KV append (the differences are their cost), then whole steps with the
 * final norm and a 32000-row LM head, replayed back to back or each followed by the download of its
 * logits (the host's share of a step); then (4) each op of a
 * 2048-token prompt chunk on its own ("decode" as the third argument skips (4)). Set TFM_CUDA_FUSE=0
 * etc. to compare the paths. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"

static char last_error[1024];
static void set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}
static void log_fn(tfm_log_level level, const char *fmt, ...) {
    (void)level;
    (void)fmt;
}
static const tfm_backend_host host = {set_error, log_fn};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define DIM 4096
#define FF 11008

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s libtfm-cuda.so [layers]\n", argv[0]);
        return 2;
    }
    int layers = argc > 2 ? atoi(argv[2]) : 32;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    const tfm_backend_ops *ops = ((tfm_backend_entry_fn)dlsym(h, TFM_BACKEND_ENTRY_SYMBOL))();
    if (!ops->available()) {
        printf("no GPU\n");
        return 77;
    }
    tfm_backend_init_params p = {0, 0};
    tfm_backend *be;
    if (ops->init(&p, &host, &be)) {
        fprintf(stderr, "init: %s\n", last_error);
        return 1;
    }
    uint16_t *src = malloc((size_t)FF * DIM * 2);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < (size_t)FF * DIM; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        src[i] = (uint16_t)(0x3c00u | (s & 0x807fu)); /* bf16 of magnitude ~2^-7 .. 2^-6, random sign */
    }
    tfm_weight(*w)[7] = calloc((size_t)layers, sizeof *w);
    int64_t rows[7] = {DIM, DIM, DIM, DIM, FF, FF, DIM}, cols[7] = {DIM, DIM, DIM, DIM, DIM, DIM, FF};
    double bytes = 0;
    for (int l = 0; l < layers; l++)
        for (int i = 0; i < 7; i++) {
            if (ops->weight_load(be, &w[l][i], src, TFM_DTYPE_BF16, rows[i], cols[i])) {
                fprintf(stderr, "weight_load: %s\n", last_error);
                return 1;
            }
            bytes += (double)rows[i] * cols[i] * 2;
        }
    float *x = ops->alloc(be, FF * 4), *xb = ops->alloc(be, FF * 4), *q = ops->alloc(be, DIM * 4);
    float *k = ops->alloc(be, DIM * 4), *v = ops->alloc(be, DIM * 4), *att = ops->alloc(be, DIM * 4);
    float *hb = ops->alloc(be, FF * 4), *hb2 = ops->alloc(be, FF * 4);
    float init[FF];
    for (int i = 0; i < FF; i++) init[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    float *bufs[] = {x, xb, q, k, v, att, hb, hb2};
    for (int i = 0; i < 8; i++) ops->upload(be, bufs[i], init, i >= 6 || i < 2 ? FF * 4 : DIM * 4);

    /* (1) the matvecs of every layer, as the core issues them */
    for (int pass = 0; pass < 2; pass++) {
        int reps = pass ? 20 : 3;
        double t0 = 0;
        for (int r = 0; r < reps + 1; r++) {
            if (r == 1) {
                ops->sync(be);
                t0 = now();
            }
            if (!ops->step_begin(be, 1, 0, 0)) {
                for (int l = 0; l < layers; l++) {
                    ops->matmul(be, &w[l][0], xb, q, 1);
                    ops->matmul(be, &w[l][1], xb, k, 1);
                    ops->matmul(be, &w[l][2], xb, v, 1);
                    ops->matmul(be, &w[l][3], att, x, 1);
                    ops->matmul(be, &w[l][4], xb, hb, 1);
                    ops->matmul(be, &w[l][5], xb, hb2, 1);
                    ops->matmul(be, &w[l][6], hb, att, 1);
                }
                ops->step_end(be);
            }
        }
        ops->sync(be);
        double dt = (now() - t0) / reps;
        if (pass)
            printf("matvecs only: %d layers, %.3f ms per step, %.0f GB/s of weights\n", layers, dt * 1e3,
                   bytes / dt / 1e9);
    }
    /* (2) a chain of small kernels */
    for (int pass = 0; pass < 2; pass++) {
        int reps = pass ? 20 : 3;
        double t0 = 0;
        for (int r = 0; r < reps + 1; r++) {
            if (r == 1) {
                ops->sync(be);
                t0 = now();
            }
            if (!ops->step_begin(be, 2, 0, 0)) {
                for (int i = 0; i < 200; i++) ops->add(be, x, xb, DIM);
                ops->step_end(be);
            }
        }
        ops->sync(be);
        double dt = (now() - t0) / reps;
        if (pass) printf("small kernels: %.2f us each (200 residual adds in a recorded step)\n", dt * 1e6 / 200);
    }
    /* (3) whole decode layers */
    const int ctx = 2048, hd = 128, heads = DIM / hd;
    float norm1[DIM];
    for (int i = 0; i < DIM; i++) norm1[i] = 1.0f + (float)(i % 7) * 0.01f;
    tfm_weight gnorm;
    ops->weight_load(be, &gnorm, norm1, TFM_DTYPE_F32, 1, DIM);
    float inv[64];
    for (int i = 0; i < 64; i++) inv[i] = 1.0f / (float)(1 << (i % 13));
    float *dinv = ops->alloc(be, sizeof inv);
    ops->upload(be, dinv, inv, sizeof inv);
    void *kc = ops->alloc(be, (size_t)ctx * DIM * 2), *vc = ops->alloc(be, (size_t)ctx * DIM * 2);
    /* the LM head (32000 x 4096) for whole steps */
    const int vocab = 32000;
    uint16_t *hsrc = malloc((size_t)vocab * DIM * 2);
    for (size_t i = 0; i < (size_t)vocab * DIM; i++) hsrc[i] = src[i % ((size_t)FF * DIM)];
    tfm_weight head;
    if (ops->weight_load(be, &head, hsrc, TFM_DTYPE_BF16, vocab, DIM)) {
        fprintf(stderr, "weight_load: %s\n", last_error);
        return 1;
    }
    free(hsrc);
    float *logits = ops->alloc(be, (size_t)vocab * 4), *host_logits = malloc((size_t)vocab * 4);
    const char *what[5] = {"whole layers", "without attention", "without rope/kv append",
                           "whole step (+ final norm, LM head)", "whole step, logits downloaded each step"};
    for (int variant = 0; variant < 5; variant++) {
        double dt = 0;
        for (int pass = 0; pass < 2; pass++) {
            int reps = pass ? 20 : 3;
            double t0 = 0;
            for (int r = 0; r < reps + 1; r++) {
                if (r == 1) {
                    ops->sync(be);
                    t0 = now();
                }
                if (!ops->step_begin(be, 10 + variant, 256, 0)) {
                    for (int l = 0; l < layers; l++) {
                        ops->rmsnorm(be, x, &gnorm, xb, 1, DIM, 1e-5f);
                        ops->matmul(be, &w[l][0], xb, q, 1);
                        ops->matmul(be, &w[l][1], xb, k, 1);
                        ops->matmul(be, &w[l][2], xb, v, 1);
                        if (variant != 2) {
                            ops->rope(be, q, 1, heads, hd, 256, dinv, TFM_ROPE_HALF);
                            ops->rope(be, k, 1, heads, hd, 256, dinv, TFM_ROPE_HALF);
                            ops->kv_store(be, kc, TFM_DTYPE_F16, 256, k, 1, DIM);
                            ops->kv_store(be, vc, TFM_DTYPE_F16, 256, v, 1, DIM);
                        }
                        if (variant != 1)
                            ops->attention(be, q, kc, vc, TFM_DTYPE_F16, att, 1, 256, heads, heads, hd, 0.088f, 1);
                        ops->matmul(be, &w[l][3], att, xb, 1);
                        ops->add(be, x, xb, DIM);
                        ops->rmsnorm(be, x, &gnorm, xb, 1, DIM, 1e-5f);
                        ops->matmul(be, &w[l][4], xb, hb, 1);
                        ops->matmul(be, &w[l][5], xb, hb2, 1);
                        ops->swiglu(be, hb, hb2, hb, FF);
                        ops->matmul(be, &w[l][6], hb, xb, 1);
                        ops->add(be, x, xb, DIM);
                    }
                    if (variant >= 3) {
                        ops->rmsnorm(be, x, &gnorm, xb, 1, DIM, 1e-5f);
                        ops->matmul(be, &head, xb, logits, 1);
                    }
                    ops->step_end(be);
                }
                if (variant == 4) ops->download(be, host_logits, logits, (size_t)vocab * 4);
            }
            ops->sync(be);
            dt = (now() - t0) / reps;
        }
        if (variant < 3)
            printf("decode layers, %s: %.3f ms per step (%.1f us per layer)\n", what[variant], dt * 1e3,
                   dt * 1e6 / layers);
        else
            printf("decode, %s: %.3f ms per step\n", what[variant], dt * 1e3);
        ops->upload(be, x, init, DIM * 4); /* keep the residual bounded */
    }

    if (argc > 3 && strcmp(argv[3], "decode") == 0) {
        ops->destroy(be);
        return 0;
    }
    /* (4) a 2048-token prompt chunk, op by op */
    const int n = 2048;
    float *px = ops->alloc(be, (size_t)n * DIM * 4), *pxb = ops->alloc(be, (size_t)n * DIM * 4);
    float *pq = ops->alloc(be, (size_t)n * DIM * 4), *pk = ops->alloc(be, (size_t)n * DIM * 4);
    float *pv = ops->alloc(be, (size_t)n * DIM * 4), *patt = ops->alloc(be, (size_t)n * DIM * 4);
    float *phb = ops->alloc(be, (size_t)n * FF * 4), *phb2 = ops->alloc(be, (size_t)n * FF * 4);
    if (!phb2) {
        fprintf(stderr, "alloc: %s\n", last_error);
        return 1;
    }
    for (int t = 0; t < n; t += 8) {
        ops->upload(be, px + (size_t)t * DIM, init, DIM * 4);
        ops->upload(be, pq + (size_t)t * DIM, init, DIM * 4);
        ops->upload(be, pk + (size_t)t * DIM, init, DIM * 4);
        ops->upload(be, pv + (size_t)t * DIM, init, DIM * 4);
        ops->upload(be, phb + (size_t)t * FF, init, FF * 4);
        ops->upload(be, phb2 + (size_t)t * FF, init, FF * 4);
    }
    double layer_total = 0;
    for (int op = 0; op < 11; op++) {
        const char *names[11] = {"rmsnorm", "matmul 4096x4096", "matmul 11008x4096", "matmul 4096x11008",
                                 "rope q", "kv_store", "attention (flash, causal)", "add", "swiglu",
                                 "rope+kv append (fused)", "matmul+add (fused)"};
        int per_layer[11] = {2, 3, 2, 1, 0, 0, 1, 0, 1, 1, 1};
        double t0 = 0;
        for (int r = 0; r < 6; r++) {
            if (r == 1) {
                ops->sync(be);
                t0 = now();
            }
            switch (op) {
            case 0: ops->rmsnorm(be, px, &gnorm, pxb, n, DIM, 1e-5f); break;
            case 1: ops->matmul(be, &w[0][0], pxb, pq, n); break;
            case 2: ops->matmul(be, &w[0][4], pxb, phb, n); break;
            case 3: ops->matmul(be, &w[0][6], phb, pxb, n); break;
            case 4: ops->rope(be, pq, n, heads, hd, 0, dinv, TFM_ROPE_HALF); break;
            case 5: ops->kv_store(be, kc, TFM_DTYPE_F16, 0, pk, n, DIM); break;
            case 6: ops->attention(be, pq, kc, vc, TFM_DTYPE_F16, patt, n, 0, heads, heads, hd, 0.088f, 1); break;
            case 7: ops->add(be, px, pxb, (size_t)n * DIM); break;
            case 8: ops->swiglu(be, phb, phb2, phb2, (size_t)n * FF); break;
            case 9:
                ops->rope(be, pq, n, heads, hd, 0, dinv, TFM_ROPE_HALF);
                ops->rope(be, pk, n, heads, hd, 0, dinv, TFM_ROPE_HALF);
                ops->kv_store(be, kc, TFM_DTYPE_F16, 0, pk, n, DIM);
                ops->kv_store(be, vc, TFM_DTYPE_F16, 0, pv, n, DIM);
                break;
            default:
                ops->matmul(be, &w[0][3], patt, pxb, n);
                ops->add(be, px, pxb, (size_t)n * DIM);
                break;
            }
            ops->sync(be);
        }
        double dt = (now() - t0) / 5;
        layer_total += per_layer[op] * dt;
        printf("prefill %d, %-28s %8.3f ms\n", n, names[op], dt * 1e3);
    }
    printf("prefill %d: the fused path's ops of one layer add up to %.3f ms (x %d layers = %.1f ms)\n", n,
           layer_total * 1e3, layers, layer_total * 1e3 * layers);
    if (ops->sync(be)) fprintf(stderr, "error: %s\n", last_error);
    ops->destroy(be);
    return 0;
}
