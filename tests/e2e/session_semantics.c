/*
 * session_semantics.c — the session contract of tfm.h, checked through the public API only:
 * a full context is refused without side effects, rewind + re-eval reproduces the logits, logits_all
 * has the documented shape and rows, bad ids are refused with nothing appended, the abort callback
 * stops a prompt between chunks, and the greedy sampler picks the argmax.
 *
 *     session_semantics MODEL.gguf
 *
 * The oracle is the library itself on the same tokens: an uninterrupted session. Results of identical
 * call sequences must be bit-identical; results of different chunkings may differ by float rounding
 * only (max |a-b| / max |b| <= 1e-5).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tfm/tfm.h>

#define REL_TOL 1e-5

static int failures;
static const tfm_model *model;
static int32_t n_vocab;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            failures++;                                                               \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                             \
            fprintf(stderr, " (last error: %s)\n", tfm_last_error());                 \
        }                                                                             \
    } while (0)

#define CHECK_STATUS(call, want)                                                      \
    do {                                                                              \
        tfm_status got_ = (call);                                                     \
        CHECK(got_ == (want), "%s returned %s, expected %s", #call,                   \
              tfm_status_string(got_), tfm_status_string(want));                      \
    } while (0)

/* A deterministic prompt of ordinary tokens (ids 3.. avoid <unk>, <s>, </s>). */
static void make_prompt(int32_t *ids, int n, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = 3 + (int32_t)((seed >> 8) % (unsigned)(n_vocab - 3));
    }
}

static double rel_diff(const float *a, const float *ref, size_t n) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!(d <= diff)) diff = d; /* catches NaN */
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    return scale > 0 ? diff / scale : diff;
}

static tfm_session *new_session(int32_t n_ctx, int32_t n_batch, int logits_all, tfm_abort_fn abort_fn,
                                void *abort_data) {
    tfm_session_params p = tfm_session_params_default();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.kv_dtype = TFM_DTYPE_F32;
    p.logits_all = logits_all;
    p.abort = abort_fn;
    p.abort_user_data = abort_data;
    tfm_session *s = NULL;
    tfm_status st = tfm_session_create(model, &p, &s);
    if (st != TFM_OK) {
        fprintf(stderr, "tfm_session_create: %s: %s\n", tfm_status_string(st), tfm_last_error());
        exit(1);
    }
    return s;
}

/* A private copy of the last logits (or NULL when there are none). */
static float *copy_last(const tfm_session *s) {
    const float *l = tfm_session_last_logits(s);
    if (!l) return NULL;
    float *c = malloc((size_t)n_vocab * sizeof *c);
    memcpy(c, l, (size_t)n_vocab * sizeof *c);
    return c;
}

static int same_bits(const float *a, const float *b) {
    return a && b && memcmp(a, b, (size_t)n_vocab * sizeof *a) == 0;
}

static void test_context_full(void) {
    enum { N_CTX = 32 };
    int32_t ids[N_CTX + 8];
    make_prompt(ids, N_CTX + 8, 1);
    tfm_session *s = new_session(N_CTX, 0, 0, NULL, NULL);
    CHECK(tfm_session_n_ctx(s) == N_CTX, "n_ctx %d", tfm_session_n_ctx(s));
    CHECK_STATUS(tfm_session_eval(s, ids, 30), TFM_OK);
    float *before = copy_last(s);

    CHECK_STATUS(tfm_session_eval(s, ids + 30, 5), TFM_E_CONTEXT_FULL);
    CHECK(tfm_session_n_past(s) == 30, "n_past %d after a refused eval, expected 30", tfm_session_n_past(s));
    CHECK(same_bits(tfm_session_last_logits(s), before), "logits changed by a refused eval");
    CHECK(strlen(tfm_last_error()) > 0, "no message for TFM_E_CONTEXT_FULL");

    /* still usable: the remaining room takes tokens, and the result is what an untouched session gives */
    CHECK_STATUS(tfm_session_eval(s, ids + 30, 2), TFM_OK);
    CHECK(tfm_session_n_past(s) == N_CTX, "n_past %d, expected %d", tfm_session_n_past(s), N_CTX);
    float *after = copy_last(s);
    CHECK_STATUS(tfm_session_eval(s, ids, 1), TFM_E_CONTEXT_FULL);
    CHECK(tfm_session_n_past(s) == N_CTX, "n_past %d after a refused eval", tfm_session_n_past(s));

    tfm_session *fresh = new_session(N_CTX, 0, 0, NULL, NULL);
    CHECK_STATUS(tfm_session_eval(fresh, ids, 30), TFM_OK);
    CHECK_STATUS(tfm_session_eval(fresh, ids + 30, 2), TFM_OK);
    CHECK(same_bits(tfm_session_last_logits(fresh), after),
          "after a refused eval the session computes other logits than an untouched one");
    tfm_session_free(fresh);
    tfm_session_free(s);
    free(before);
    free(after);
}

static void test_rewind(void) {
    enum { N = 40 };
    int32_t ids[N];
    make_prompt(ids, N, 2);
    tfm_session *s = new_session(64, 0, 0, NULL, NULL);
    tfm_tensor *t = NULL;
    CHECK_STATUS(tfm_session_logits(s, TFM_LOGITS_LAST, &t), TFM_E_STATE);
    CHECK(t == NULL, "a tensor was returned with an error");
    CHECK(tfm_session_last_logits(s) == NULL, "logits before any eval");

    CHECK_STATUS(tfm_session_eval(s, ids, 20), TFM_OK);
    float *at20 = copy_last(s);
    CHECK_STATUS(tfm_session_eval(s, ids + 20, 20), TFM_OK);
    float *at40 = copy_last(s);

    CHECK_STATUS(tfm_session_rewind(s, 41), TFM_E_INVALID_ARGUMENT);
    CHECK_STATUS(tfm_session_rewind(s, -1), TFM_E_INVALID_ARGUMENT);
    CHECK(tfm_session_n_past(s) == N, "n_past %d after refused rewinds", tfm_session_n_past(s));

    /* same chunks again: bit-identical */
    CHECK_STATUS(tfm_session_rewind(s, 20), TFM_OK);
    CHECK(tfm_session_n_past(s) == 20, "n_past %d after rewind(20)", tfm_session_n_past(s));
    CHECK(tfm_session_last_logits(s) == NULL, "logits still offered after a rewind");
    CHECK_STATUS(tfm_session_logits(s, TFM_LOGITS_LAST, &t), TFM_E_STATE);
    CHECK_STATUS(tfm_session_eval(s, ids + 20, 20), TFM_OK);
    CHECK(same_bits(tfm_session_last_logits(s), at40), "rewind + re-eval of the same chunk gives other logits");

    /* rewound over a different token: the cache row at 20 must be overwritten, not reused */
    CHECK_STATUS(tfm_session_rewind(s, 20), TFM_OK);
    int32_t other = ids[20] == 3 ? 4 : 3;
    CHECK_STATUS(tfm_session_eval(s, &other, 1), TFM_OK);
    CHECK_STATUS(tfm_session_rewind(s, 20), TFM_OK);
    CHECK_STATUS(tfm_session_eval(s, ids + 20, 20), TFM_OK);
    CHECK(same_bits(tfm_session_last_logits(s), at40), "a stale cache row survived a rewind");

    /* one token at a time from 19: a different chunking, equal up to rounding */
    CHECK_STATUS(tfm_session_rewind(s, 19), TFM_OK);
    CHECK_STATUS(tfm_session_eval(s, ids + 19, 1), TFM_OK);
    double d = rel_diff(tfm_session_last_logits(s), at20, (size_t)n_vocab);
    CHECK(d <= REL_TOL, "rewind(19) + eval(1): rel diff %.3g from the logits at 20", d);
    printf("rewind(19) + eval(1) vs one chunk of 20: rel diff %.3g\n", d);

    tfm_session_reset(s);
    CHECK(tfm_session_n_past(s) == 0, "n_past %d after reset", tfm_session_n_past(s));
    CHECK_STATUS(tfm_session_eval(s, ids, 20), TFM_OK);
    CHECK(same_bits(tfm_session_last_logits(s), at20), "reset + eval gives other logits");
    tfm_session_free(s);
    free(at20);
    free(at40);
}

static void test_logits_all(void) {
    enum { N = 7 };
    int32_t ids[N];
    make_prompt(ids, N, 3);
    tfm_session *s = new_session(64, 0, 1, NULL, NULL);
    CHECK_STATUS(tfm_session_eval(s, ids, N), TFM_OK);
    tfm_tensor *all = NULL, *last = NULL;
    CHECK_STATUS(tfm_session_logits(s, TFM_LOGITS_ALL, &all), TFM_OK);
    CHECK_STATUS(tfm_session_logits(s, TFM_LOGITS_LAST, &last), TFM_OK);
    if (all && last) {
        CHECK(tfm_tensor_dtype(all) == TFM_DTYPE_F32, "dtype %s", tfm_dtype_name(tfm_tensor_dtype(all)));
        CHECK(tfm_tensor_ndim(all) == 2, "ndim %d", tfm_tensor_ndim(all));
        CHECK(tfm_tensor_dim(all, 0) == N && tfm_tensor_dim(all, 1) == n_vocab, "shape [%lld, %lld]",
              (long long)tfm_tensor_dim(all, 0), (long long)tfm_tensor_dim(all, 1));
        CHECK(tfm_tensor_nbytes(all) == (size_t)N * (size_t)n_vocab * 4, "nbytes %zu", tfm_tensor_nbytes(all));
        CHECK(tfm_tensor_ndim(last) == 1 && tfm_tensor_dim(last, 0) == n_vocab, "last logits shape");
        const float *rows = tfm_tensor_data(all);
        CHECK(same_bits(rows + (size_t)(N - 1) * (size_t)n_vocab, tfm_tensor_data(last)),
              "last row of TFM_LOGITS_ALL differs from TFM_LOGITS_LAST");

        /* row i = the logits after token i, which a one-token-at-a-time session gives */
        tfm_session *step = new_session(64, 0, 0, NULL, NULL);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            CHECK_STATUS(tfm_session_eval(step, ids + i, 1), TFM_OK);
            double d = rel_diff(rows + (size_t)i * (size_t)n_vocab, tfm_session_last_logits(step), (size_t)n_vocab);
            CHECK(d <= REL_TOL, "row %d of TFM_LOGITS_ALL: rel diff %.3g from a one-token eval", i, d);
            if (d > worst) worst = d;
        }
        tfm_session_free(step);
        printf("logits_all rows vs one-token evals: max rel diff %.3g\n", worst);
    }
    tfm_tensor_free(all);
    tfm_tensor_free(last);

    /* a later eval of 2 tokens gives 2 rows */
    CHECK_STATUS(tfm_session_eval(s, ids, 2), TFM_OK);
    CHECK_STATUS(tfm_session_logits(s, TFM_LOGITS_ALL, &all), TFM_OK);
    if (all) CHECK(tfm_tensor_dim(all, 0) == 2, "rows %lld after an eval of 2", (long long)tfm_tensor_dim(all, 0));
    tfm_tensor_free(all);
    tfm_session_free(s);

    /* without logits_all there is no [n, vocab] tensor */
    s = new_session(64, 0, 0, NULL, NULL);
    CHECK_STATUS(tfm_session_eval(s, ids, N), TFM_OK);
    all = NULL;
    tfm_status st = tfm_session_logits(s, TFM_LOGITS_ALL, &all);
    CHECK(st != TFM_OK && all == NULL, "TFM_LOGITS_ALL without logits_all returned %s", tfm_status_string(st));
    CHECK_STATUS(tfm_session_logits(s, 7, &all), TFM_E_INVALID_ARGUMENT);
    tfm_session_free(s);
}

static void test_invalid_ids(void) {
    int32_t ids[8];
    make_prompt(ids, 8, 4);
    tfm_session *s = new_session(64, 0, 0, NULL, NULL);
    CHECK_STATUS(tfm_session_eval(s, ids, 4), TFM_OK);
    float *before = copy_last(s);
    int32_t bad[3][3] = {{ids[4], n_vocab, ids[5]}, {-1, ids[4], ids[5]}, {ids[4], ids[5], INT32_MIN}};
    for (int i = 0; i < 3; i++) {
        CHECK_STATUS(tfm_session_eval(s, bad[i], 3), TFM_E_INVALID_ARGUMENT);
        CHECK(tfm_session_n_past(s) == 4, "n_past %d after bad ids #%d", tfm_session_n_past(s), i);
        CHECK(same_bits(tfm_session_last_logits(s), before), "logits changed by bad ids #%d", i);
    }
    CHECK_STATUS(tfm_session_eval(s, NULL, 3), TFM_E_INVALID_ARGUMENT);
    CHECK_STATUS(tfm_session_eval(NULL, ids, 3), TFM_E_INVALID_ARGUMENT);

    /* nothing was appended: continuing equals an untouched session */
    CHECK_STATUS(tfm_session_eval(s, ids + 4, 4), TFM_OK);
    tfm_session *fresh = new_session(64, 0, 0, NULL, NULL);
    CHECK_STATUS(tfm_session_eval(fresh, ids, 4), TFM_OK);
    CHECK_STATUS(tfm_session_eval(fresh, ids + 4, 4), TFM_OK);
    CHECK(same_bits(tfm_session_last_logits(s), tfm_session_last_logits(fresh)),
          "refused ids left a trace in the session");
    tfm_session_free(fresh);
    tfm_session_free(s);
    free(before);
}

struct abort_state {
    int calls;
    int stop_after; /* return nonzero from this call on; 0 = never */
};

static int abort_cb(void *user_data) {
    struct abort_state *a = user_data;
    a->calls++;
    return a->stop_after && a->calls >= a->stop_after;
}

static void test_abort(void) {
    enum { N = 40, BATCH = 8 };
    int32_t ids[N];
    make_prompt(ids, N, 5);

    /* how often an uninterrupted prompt calls back */
    struct abort_state count = {0, 0};
    tfm_session *ref = new_session(64, BATCH, 0, abort_cb, &count);
    CHECK_STATUS(tfm_session_eval(ref, ids, N), TFM_OK);
    CHECK(count.calls > N / BATCH, "the abort callback ran %d times over %d chunks", count.calls, N / BATCH);

    /* stop half-way */
    struct abort_state half = {0, count.calls / 2 > 0 ? count.calls / 2 : 1};
    tfm_session *s = new_session(64, BATCH, 0, abort_cb, &half);
    CHECK_STATUS(tfm_session_eval(s, ids, N), TFM_E_ABORTED);
    int32_t kept = tfm_session_n_past(s);
    CHECK(kept >= 0 && kept < N && kept % BATCH == 0,
          "n_past %d after an abort: expected whole chunks of %d only, fewer than %d", kept, BATCH, N);
    CHECK(half.calls == half.stop_after, "the callback ran %d more times after asking to stop",
          half.calls - half.stop_after);

    /* the session continues from the kept tokens and ends where the uninterrupted one did */
    int stopped_at = half.stop_after;
    half.stop_after = 0;
    CHECK_STATUS(tfm_session_eval(s, ids + kept, (size_t)(N - kept)), TFM_OK);
    CHECK(tfm_session_n_past(s) == N, "n_past %d", tfm_session_n_past(s));
    double d = rel_diff(tfm_session_last_logits(s), tfm_session_last_logits(ref), (size_t)n_vocab);
    CHECK(d <= REL_TOL, "resumed after abort: rel diff %.3g from an uninterrupted eval", d);
    printf("abort after %d callbacks kept %d of %d tokens; resumed vs uninterrupted: rel diff %.3g\n",
           stopped_at, kept, N, d);
    tfm_session_free(s);
    tfm_session_free(ref);
}

static void test_greedy_is_argmax(void) {
    enum { N = 12, GEN = 16 };
    int32_t ids[N];
    make_prompt(ids, N, 6);
    tfm_sampler_params sp = tfm_sampler_params_default();
    sp.temperature = 0;
    tfm_sampler *sampler = NULL;
    CHECK_STATUS(tfm_sampler_create(&sp, &sampler), TFM_OK);
    if (!sampler) return;

    tfm_session *s = new_session(64, 0, 0, NULL, NULL);
    tfm_generate_params gp = tfm_generate_params_default();
    gp.max_tokens = GEN;
    gp.ignore_eos = 1;
    int32_t out[GEN];
    size_t n_out = 0;
    CHECK_STATUS(tfm_session_generate(s, sampler, ids, N, &gp, out, GEN, &n_out), TFM_OK);
    CHECK(n_out == GEN, "generated %zu tokens, expected %d", n_out, GEN);

    /* replay: each generated id must be the argmax of the logits before it */
    tfm_session *check = new_session(64, 0, 0, NULL, NULL);
    CHECK_STATUS(tfm_session_eval(check, ids, N), TFM_OK);
    for (size_t i = 0; i < n_out; i++) {
        const float *l = tfm_session_last_logits(check);
        int32_t best = 0;
        for (int32_t v = 1; v < n_vocab; v++)
            if (l[v] > l[best]) best = v;
        CHECK(out[i] == best, "generated token %zu is %d, the argmax is %d", i, out[i], best);
        CHECK_STATUS(tfm_session_eval(check, &out[i], 1), TFM_OK);
    }
    tfm_session_free(check);
    tfm_session_free(s);

    /* generation that reaches the end of the context stops there and reports success */
    s = new_session(16, 0, 0, NULL, NULL);
    gp.max_tokens = 10;
    n_out = 0;
    CHECK_STATUS(tfm_session_generate(s, sampler, ids, N, &gp, out, GEN, &n_out), TFM_OK);
    CHECK(n_out >= 16 - N && n_out <= 16 - N + 1, "generated %zu tokens in the %d free places of the context",
          n_out, 16 - N);
    CHECK(tfm_session_n_past(s) <= 16, "n_past %d beyond n_ctx 16", tfm_session_n_past(s));
    tfm_session_free(s);
    tfm_sampler_free(sampler);
}

/* The model's memory_limit counts every live session: a second session that would take the total
 * past it is refused with TFM_E_OOM, and freeing the first makes room again. */
static void test_memory_limit(const char *path) {
    tfm_model_params mp = tfm_model_params_default();
    mp.backend = "cpu";
    mp.n_threads = 1;
    tfm_model *probe = NULL, *limited = NULL;
    CHECK_STATUS(tfm_model_load(path, &mp, &probe), TFM_OK);
    if (!probe) return;
    /* How much one session needs is not public: find it as the smallest limit that admits one. */
    tfm_session_params sp = tfm_session_params_default();
    sp.n_ctx = 64;
    size_t lo = 1, hi = (size_t)1 << 34;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        tfm_model_free(limited);
        mp.memory_limit = mid;
        limited = NULL;
        CHECK_STATUS(tfm_model_load(path, &mp, &limited), TFM_OK);
        if (!limited) break;
        tfm_session *s = NULL;
        if (tfm_session_create(limited, &sp, &s) == TFM_OK) hi = mid;
        else lo = mid + 1;
        tfm_session_free(s);
    }
    tfm_model_free(limited);
    tfm_model_free(probe);
    size_t one = lo;
    mp.memory_limit = one + one / 2; /* room for one session, not two */
    limited = NULL;
    CHECK_STATUS(tfm_model_load(path, &mp, &limited), TFM_OK);
    if (!limited) return;
    tfm_session *a = NULL, *b = NULL;
    CHECK_STATUS(tfm_session_create(limited, &sp, &a), TFM_OK);
    CHECK_STATUS(tfm_session_create(limited, &sp, &b), TFM_E_OOM);
    CHECK(b == NULL, "a refused session was returned");
    CHECK(strstr(tfm_last_error(), "memory limit") != NULL, "message does not name the limit");
    tfm_session_free(a);
    CHECK_STATUS(tfm_session_create(limited, &sp, &b), TFM_OK);
    tfm_session_free(b);
    tfm_model_free(limited);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    tfm_model_params mp = tfm_model_params_default();
    mp.backend = "cpu";
    mp.n_threads = 2;
    tfm_model *m = NULL;
    tfm_status st = tfm_model_load(argv[1], &mp, &m);
    if (st != TFM_OK) {
        fprintf(stderr, "tfm_model_load(%s): %s: %s\n", argv[1], tfm_status_string(st), tfm_last_error());
        return 1;
    }
    model = m;
    tfm_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (tfm_model_get_info(m, &info) != TFM_OK || info.n_vocab < 8 || info.n_ctx_train < 64) {
        fprintf(stderr, "the test needs a model with a vocabulary of 8+ and a context of 64+\n");
        return 1;
    }
    n_vocab = info.n_vocab;

    test_context_full();
    test_rewind();
    test_logits_all();
    test_invalid_ids();
    test_abort();
    test_greedy_is_argmax();
    test_memory_limit(argv[1]);

    tfm_model_free(m);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all session checks passed\n");
    return 0;
}
