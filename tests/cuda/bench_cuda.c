/* bench_cuda.c — decode and prompt-processing speed of a model on a backend, through the public API.
 *
 *   bench_cuda MODEL [backend=cuda] [prompt=128] [gen=256] [prefill sizes, comma-separated=512,2048]
 *
 * Decode: a prompt of `prompt` random tokens, then `gen` tokens one at a time (greedy, each eval
 * downloads the logits), timed from the first generated token to the last, after a warm-up run.
 * Prefill: one eval of N tokens into an empty session (n_batch = N), median of 3 after a warm-up.
 * Prints one line per measurement and the weight bytes a decode step streams (for the roofline). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tfm/tfm.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        tfm_status st_ = (call);                                                                   \
        if (st_ != TFM_OK) {                                                                       \
            fprintf(stderr, "%s failed: %s: %s\n", #call, tfm_status_string(st_), tfm_last_error()); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [backend] [prompt] [gen] [prefill,sizes]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1], *backend = argc > 2 ? argv[2] : "cuda";
    int n_prompt = argc > 3 ? atoi(argv[3]) : 128, n_gen = argc > 4 ? atoi(argv[4]) : 256;
    const char *sizes = argc > 5 ? argv[5] : "512,2048";

    tfm_model_params mp = tfm_model_params_default();
    mp.backend = backend;
    tfm_model *model = NULL;
    double t0 = now();
    TRY(tfm_model_load(path, &mp, &model));
    double t_load = now() - t0;
    tfm_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    TRY(tfm_model_get_info(model, &info));
    /* a decode step streams every matrix once, except the embedding table (one row) */
    int64_t wsize = info.weight_dtype == TFM_DTYPE_F32 ? 4 : 2;
    int64_t stream_params = info.n_params - (int64_t)info.n_vocab * info.n_embd * (info.tied_embeddings ? 0 : 1);
    printf("model %s: backend %s, %s weights, %lld params, load %.1f s\n", path, info.backend,
           tfm_dtype_name(info.weight_dtype), (long long)info.n_params, t_load);
    printf("decode_weight_bytes %lld\n", (long long)(stream_params * wsize));

    int max_prefill = 0;
    for (const char *p = sizes; *p;) {
        int v = atoi(p);
        if (v > max_prefill) max_prefill = v;
        const char *c = strchr(p, ',');
        if (!c) break;
        p = c + 1;
    }
    int n_ctx = n_prompt + n_gen + 8;
    if (max_prefill > n_ctx) n_ctx = max_prefill;
    tfm_session_params sp = tfm_session_params_default();
    sp.n_ctx = n_ctx;
    sp.n_batch = max_prefill > n_prompt ? max_prefill : n_prompt;
    tfm_session *s = NULL;
    TRY(tfm_session_create(model, &sp, &s));

    int32_t *ids = malloc((size_t)n_ctx * sizeof *ids);
    uint64_t r = 12345;
    for (int i = 0; i < n_ctx; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)(3 + (r >> 33) % (uint64_t)(info.n_vocab - 3));
    }

    /* decode: warm-up (records the step), then the timed run */
    for (int run = 0; run < 2; run++) {
        tfm_session_reset(s);
        TRY(tfm_session_eval(s, ids, (size_t)n_prompt));
        int steps = run == 0 ? 16 : n_gen;
        int32_t tok = argmax(tfm_session_last_logits(s), info.n_vocab);
        double ts = now(), t_pick = 0.0;
        for (int i = 0; i < steps; i++) {
            TRY(tfm_session_eval(s, &tok, 1));
            double tp = now();
            tok = argmax(tfm_session_last_logits(s), info.n_vocab);
            t_pick += now() - tp;
        }
        double dt = now() - ts;
        if (run == 1)
            printf("decode prompt %d gen %d: %.2f ms/token, %.1f tok/s (greedy pick on the host: %.1f us/token)\n",
                   n_prompt, n_gen, dt * 1e3 / steps, steps / dt, t_pick * 1e6 / steps);
    }

    for (const char *p = sizes; *p;) {
        int n = atoi(p);
        double t[4];
        for (int rep = 0; rep < 4; rep++) {
            tfm_session_reset(s);
            double ts = now();
            TRY(tfm_session_eval(s, ids, (size_t)n));
            t[rep] = now() - ts;
        }
        qsort(t + 1, 3, sizeof *t, cmp_double);
        printf("prefill %d: %.2f ms, %.0f tok/s (warm-up %.2f ms)\n", n, t[2] * 1e3, n / t[2], t[0] * 1e3);
        const char *c = strchr(p, ',');
        if (!c) break;
        p = c + 1;
    }
    tfm_session_free(s);
    tfm_model_free(model);
    free(ids);
    return 0;
}
