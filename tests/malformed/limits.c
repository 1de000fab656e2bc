/*
 * limits.c — resource limits and cancellation through the public API.
 *
 *     limits WORK_DIR
 *
 * WORK_DIR holds the models of tests/fuzz/make_seeds.py: model.gguf (tiny, 2 layers), deep.gguf
 * (8 layers) and hf-model/ (a Hugging Face directory).
 *
 *   context   n_ctx beyond the model's training context (and negative) is refused with
 *             TFM_E_INVALID_ARGUMENT naming the limit; exactly the limit works; a full context returns
 *             TFM_E_CONTEXT_FULL and the session stays usable.
 *   memory    tfm_model_params.memory_limit: a session that needs more fails with TFM_E_OOM and a
 *             message; the smallest limit that admits n_ctx 32 refuses n_ctx 64 (the cap binds on the
 *             KV cache) and a second session of 32 (it covers the model and all its sessions); a
 *             session allocates no more heap than the limit admitted.
 *   abort     a complete evaluation consults the abort callback after every layer; a callback that
 *             says stop at its k-th call ends the evaluation at once (exactly k calls: at most one
 *             layer of work after the request), with TFM_E_ABORTED, nothing appended within the
 *             aborted chunk, the session usable, and the logits afterwards bit-identical to a session
 *             never aborted; with several chunks, whole chunks before the abort are kept.
 *   progress  the load callback sees 0..1 non-decreasing, ending at 1; returning nonzero at its k-th
 *             call, for every k, cancels the load with TFM_E_ABORTED and no model (GGUF file, GGUF in
 *             memory, HF directory); under AddressSanitizer each cancel point is also checked for leaks.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tfm/tfm.h"

static int failures, checks;
static char work[1024];

#define CHECK(cond, ...)                     \
    do {                                     \
        checks++;                            \
        if (!(cond)) {                       \
            failures++;                      \
            printf("FAIL %s:%d: ", __func__, __LINE__); \
            printf(__VA_ARGS__);             \
            printf("\n");                    \
        }                                    \
    } while (0)

static const char *path_of(const char *name)
{
    static char buf[4][1200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", work, name);
    return buf[k];
}

static tfm_model *load(const char *name, size_t memory_limit)
{
    tfm_model_params p = tfm_model_params_default();
    p.backend = "cpu";
    p.n_threads = 1;
    p.memory_limit = memory_limit;
    tfm_model *m = NULL;
    tfm_status st = tfm_model_load(path_of(name), &p, &m);
    if (st) {
        printf("cannot load %s: %s\n", name, tfm_last_error());
        exit(1);
    }
    return m;
}

static tfm_model_info info_of(const tfm_model *m)
{
    tfm_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    tfm_model_get_info(m, &info);
    return info;
}

static tfm_session *session(const tfm_model *m, int32_t n_ctx, tfm_status *st)
{
    tfm_session_params sp = tfm_session_params_default();
    sp.n_ctx = n_ctx;
    tfm_session *s = NULL;
    *st = tfm_session_create(m, &sp, &s);
    return s;
}

static void ids_for(int32_t *ids, size_t n, int32_t n_vocab, int seed)
{
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)((seed * 131 + (int)i * 17 + 3) % n_vocab);
}

/* ------------------------------------------------------------------------------------------------ */
static void test_context(void)
{
    tfm_model *m = load("model.gguf", 0);
    tfm_model_info info = info_of(m);
    int32_t train = info.n_ctx_train;
    char want[32];
    snprintf(want, sizeof want, "%d", train);
    tfm_status st;
    tfm_session *s = session(m, train + 1, &st);
    CHECK(st == TFM_E_INVALID_ARGUMENT && !s, "n_ctx %d > %d: %s", train + 1, train, tfm_status_string(st));
    CHECK(strstr(tfm_last_error(), want) != NULL, "message does not name the limit %d: %s", train, tfm_last_error());
    s = session(m, 2147483647, &st);
    CHECK(st == TFM_E_INVALID_ARGUMENT && !s, "n_ctx INT32_MAX: %s", tfm_status_string(st));
    s = session(m, -5, &st);
    CHECK(st == TFM_E_INVALID_ARGUMENT && !s, "n_ctx -5: %s", tfm_status_string(st));
    s = session(m, 0, &st);
    CHECK(st == TFM_OK && tfm_session_n_ctx(s) == (train < 4096 ? train : 4096), "n_ctx 0 gives %d",
          tfm_session_n_ctx(s));
    tfm_session_free(s);

    s = session(m, train, &st);
    CHECK(st == TFM_OK, "n_ctx = the training context %d: %s", train, tfm_last_error());
    if (s) {
        int32_t *ids = malloc((size_t)(train + 1) * sizeof *ids);
        ids_for(ids, (size_t)train + 1, info.n_vocab, 1);
        CHECK(tfm_session_eval(s, ids, (size_t)train) == TFM_OK, "filling the context: %s", tfm_last_error());
        st = tfm_session_eval(s, ids + train, 1);
        CHECK(st == TFM_E_CONTEXT_FULL && tfm_session_n_past(s) == train, "one past a full context: %s, n_past %d",
              tfm_status_string(st), tfm_session_n_past(s));
        CHECK(tfm_session_rewind(s, train - 1) == TFM_OK && tfm_session_eval(s, ids + train, 1) == TFM_OK,
              "after CONTEXT_FULL the session is usable: %s", tfm_last_error());
        free(ids);
        tfm_session_free(s);
    }
    tfm_model_free(m);
}

/* ------------------------------------------------------------------------------------------------ */
/* 1 if a session of n_ctx can be created on the tiny model under `limit` bytes. */
static int fits(size_t limit, int32_t n_ctx)
{
    tfm_model *m = load("model.gguf", limit);
    tfm_status st;
    tfm_session *s = session(m, n_ctx, &st);
    int ok = st == TFM_OK;
    if (!ok) {
        CHECK(st == TFM_E_OOM && !s, "memory limit %zu, n_ctx %d: %s", limit, n_ctx, tfm_status_string(st));
        CHECK(strstr(tfm_last_error(), "limit") != NULL, "message does not mention the limit: %s", tfm_last_error());
    }
    tfm_session_free(s);
    tfm_model_free(m);
    return ok;
}

static size_t smallest_limit(int32_t n_ctx)
{
    size_t lo = 1, hi = (size_t)1 << 32; /* fits(hi) */
    if (!fits(hi, n_ctx)) return 0;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (fits(mid, n_ctx)) hi = mid;
        else lo = mid;
    }
    return hi;
}

static void test_memory(void)
{
    CHECK(!fits(1, 16), "a 1-byte memory limit admits a session");
    size_t l32 = smallest_limit(32);
    CHECK(l32 > 1, "no memory limit admits a session of 32 tokens");
    if (l32 <= 1) return;
    CHECK(!fits(l32 - 1, 32), "one byte below the smallest limit still fits");
    CHECK(!fits(l32, 64), "the limit that admits n_ctx 32 (%zu bytes) also admits n_ctx 64", l32);
    CHECK(fits(l32, 16), "the limit that admits n_ctx 32 refuses n_ctx 16");
    printf("     memory: a session of 32 tokens needs a limit of %zu bytes\n", l32);

    /* the limit covers the model and all its sessions: a second session of the same size is refused */
    tfm_model *m = load("model.gguf", l32);
    tfm_status st1, st2;
    tfm_session *a = session(m, 32, &st1);
    tfm_session *b = session(m, 32, &st2);
    CHECK(st1 == TFM_OK, "the first session under its own limit: %s", tfm_status_string(st1));
    CHECK(st2 == TFM_E_OOM && !b, "a second session of 32 tokens under a limit of %zu bytes (which admits one): %s",
          l32, tfm_status_string(st2));
    tfm_session_free(b);
    tfm_session_free(a);
    a = session(m, 32, &st1);
    CHECK(st1 == TFM_OK, "freeing a session gives its memory back to the limit: %s", tfm_status_string(st1));
    tfm_session_free(a);
    tfm_model_free(m);
}

/* The limit is honest: a session allocates no more heap than the limit admitted (glibc's malloc
 * statistics; skipped under sanitizers, which replace malloc). The slack is glibc's chunk header,
 * 16 bytes, for up to 64 allocations. */
static void test_memory_heap(void)
{
    size_t l32 = smallest_limit(32);
    tfm_model *m = load("model.gguf", l32);
    struct mallinfo2 before = mallinfo2();
    tfm_status st;
    tfm_session *s = session(m, 32, &st);
    struct mallinfo2 after = mallinfo2();
    if (s && after.uordblks > before.uordblks) {
        size_t used = after.uordblks - before.uordblks;
        CHECK(used <= l32 + 64 * 16, "a session admitted under a limit of %zu bytes allocated %zu bytes of heap", l32,
              used);
        printf("     memory: the session allocated %zu bytes of heap (limit %zu)\n", used, l32);
    }
    tfm_session_free(s);
    tfm_model_free(m);
}

/* ------------------------------------------------------------------------------------------------ */
typedef struct {
    int stop_at; /* call number that returns 1; 0 = never */
    int calls;
} counter;

static int abort_cb(void *user)
{
    counter *c = user;
    return ++c->calls == c->stop_at;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_abort(void)
{
    tfm_model *m = load("deep.gguf", 0);
    tfm_model_info info = info_of(m);
    int layers = info.n_layer;
    enum { N = 300 };
    int32_t ids[N];
    ids_for(ids, N, info.n_vocab, 2);
    counter c = {0, 0};
    tfm_session_params sp = tfm_session_params_default();
    sp.n_ctx = 512;
    sp.n_batch = 512;
    sp.kv_dtype = TFM_DTYPE_F32;
    sp.abort = abort_cb;
    sp.abort_user_data = &c;

    tfm_session *ref = NULL, *s = NULL;
    CHECK(tfm_session_create(m, &sp, &ref) == TFM_OK, "session: %s", tfm_last_error());
    double t0 = now();
    CHECK(tfm_session_eval(ref, ids, N) == TFM_OK, "complete eval: %s", tfm_last_error());
    double full = now() - t0;
    CHECK(c.calls >= layers, "a complete eval of %d tokens consulted the callback %d times for %d layers", N, c.calls,
          layers);
    int per_eval = c.calls;

    CHECK(tfm_session_create(m, &sp, &s) == TFM_OK, "session: %s", tfm_last_error());
    for (int k = 1; k <= 3; k++) {
        c = (counter){k, 0};
        t0 = now();
        tfm_status st = tfm_session_eval(s, ids, N);
        double t = now() - t0;
        CHECK(st == TFM_E_ABORTED, "stop at call %d: %s", k, tfm_status_string(st));
        CHECK(c.calls == k, "stop at call %d: the callback was called %d times (work went on after the request)",
              k, c.calls);
        CHECK(tfm_session_n_past(s) == 0, "an aborted single-chunk eval kept %d tokens", tfm_session_n_past(s));
        CHECK(tfm_session_last_logits(s) == NULL, "logits after an aborted eval");
        CHECK(strstr(tfm_last_error(), "abort") != NULL, "message: %s", tfm_last_error());
        printf("     abort: stop at call %d of %d: %.1f ms of %.1f ms for the whole prompt\n", k, per_eval,
               1e3 * t, 1e3 * full);
    }
    c = (counter){0, 0};
    CHECK(tfm_session_eval(s, ids, N) == TFM_OK, "eval after aborts: %s", tfm_last_error());
    const float *a = tfm_session_last_logits(s), *b = tfm_session_last_logits(ref);
    CHECK(a && b && memcmp(a, b, (size_t)info.n_vocab * sizeof *a) == 0,
          "logits after aborted evals differ from a session never aborted");
    tfm_session_free(s);
    tfm_session_free(ref);

    /* several chunks: whole chunks before the abort stay */
    sp.n_batch = 64;
    c = (counter){0, 0};
    CHECK(tfm_session_create(m, &sp, &ref) == TFM_OK && tfm_session_create(m, &sp, &s) == TFM_OK, "sessions");
    int stop = 2 * layers + 3; /* in the third chunk */
    c = (counter){stop, 0};
    tfm_status st = tfm_session_eval(s, ids, N);
    int32_t kept = tfm_session_n_past(s);
    CHECK(st == TFM_E_ABORTED && c.calls == stop, "chunked: %s after %d calls", tfm_status_string(st), c.calls);
    CHECK(kept % 64 == 0 && kept < N && kept >= 64, "chunked abort kept %d tokens (chunks of 64)", kept);
    c = (counter){0, 0};
    CHECK(tfm_session_eval(s, ids + kept, (size_t)(N - kept)) == TFM_OK, "continuing after a chunked abort: %s",
          tfm_last_error());
    CHECK(tfm_session_eval(ref, ids, (size_t)kept) == TFM_OK &&
              tfm_session_eval(ref, ids + kept, (size_t)(N - kept)) == TFM_OK, "reference: %s", tfm_last_error());
    a = tfm_session_last_logits(s);
    b = tfm_session_last_logits(ref);
    CHECK(a && b && memcmp(a, b, (size_t)info.n_vocab * sizeof *a) == 0,
          "logits after a chunked abort and continuation differ from the same chunks never aborted");
    tfm_session_free(s);
    tfm_session_free(ref);
    tfm_model_free(m);
}

/* ------------------------------------------------------------------------------------------------ */
typedef struct {
    int cancel_at;
    int calls;
    float last;
    int decreasing, out_of_range;
} progress_state;

static int progress_cb(float p, void *user)
{
    progress_state *s = user;
    s->calls++;
    if (!(p >= 0.0f && p <= 1.0f)) s->out_of_range = 1;
    if (s->calls > 1 && p < s->last) s->decreasing = 1;
    s->last = p;
    return s->calls == s->cancel_at;
}

static void *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)n);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

static tfm_status load_with(const char *what, const void *bytes, size_t size, progress_state *ps, tfm_model **m)
{
    tfm_model_params p = tfm_model_params_default();
    p.backend = "cpu";
    p.n_threads = 1;
    p.progress = progress_cb;
    p.progress_user_data = ps;
    return bytes ? tfm_model_load_from_memory(bytes, size, &p, m) : tfm_model_load(path_of(what), &p, m);
}

static void test_progress_of(const char *what, const void *bytes, size_t size)
{
    progress_state ps = {0, 0, 0, 0, 0};
    tfm_model *m = NULL;
    tfm_status st = load_with(what, bytes, size, &ps, &m);
    CHECK(st == TFM_OK && m, "%s: load with a progress callback: %s", what, tfm_last_error());
    tfm_model_info info = m ? info_of(m) : (tfm_model_info){0};
    tfm_model_free(m);
    CHECK(ps.calls >= 2 && ps.last == 1.0f && !ps.decreasing && !ps.out_of_range,
          "%s: progress made %d calls, last %g, decreasing %d, out of range %d", what, ps.calls, ps.last,
          ps.decreasing, ps.out_of_range);
    CHECK(ps.calls >= info.n_layer, "%s: %d progress calls for %d layers", what, ps.calls, info.n_layer);
    int total = ps.calls;
    for (int k = 1; k <= total; k++) {
        progress_state c = {k, 0, 0, 0, 0};
        m = NULL;
        st = load_with(what, bytes, size, &c, &m);
        CHECK(st == TFM_E_ABORTED && !m, "%s: cancel at call %d of %d: %s", what, k, total, tfm_status_string(st));
        CHECK(c.calls == k, "%s: cancel at call %d: the callback was called %d times", what, k, c.calls);
        CHECK(*tfm_last_error() != 0, "%s: cancel without a message", what);
        tfm_model_free(m);
    }
    printf("     progress: %s: %d calls, each one cancels cleanly\n", what, total);
}

static void test_progress(void)
{
    test_progress_of("deep.gguf", NULL, 0);
    test_progress_of("hf-model", NULL, 0);
    size_t size = 0;
    void *bytes = read_all(path_of("model.gguf"), &size);
    CHECK(bytes != NULL, "cannot read model.gguf");
    if (bytes) test_progress_of("model.gguf in memory", bytes, size);
    free(bytes);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    test_context();
    test_memory();
    test_memory_heap();
    test_abort();
    test_progress();
    printf("limits: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
