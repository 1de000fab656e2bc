/*
 * concurrency.c — one model, many sessions, many threads: the results equal those of a serial run.
 *
 *     concurrency MODEL.gguf [THREADS=8] [SESSIONS_PER_THREAD=4] [GENERATIONS=25] [MAX_TOKENS=8]
 *
 * Every (thread, session) pair is a job with its own prompt, sampler settings and seed. A generation
 * resets the session (or, every third time, rewinds it to a prefix of the prompt), then runs
 * tfm_session_generate; its result is the generated ids plus a hash of the bits of the final logits.
 * The serial pass runs every job's generations one after another on one thread; the parallel pass
 * runs THREADS threads at once, each interleaving its SESSIONS sessions generation by generation.
 * Each generation must give exactly (bit for bit) the serial result: the model is immutable and
 * shared, sessions and samplers are per job, and the cpu backend computes each chunk of work the same
 * way whichever thread runs it.
 *
 * Also checked in every thread: the shared tokenizer (tokenize, detokenize, a text stream per thread)
 * gives the serial text, and tfm_last_error() is per thread (each thread provokes a failure whose
 * message names a token id only that thread uses, then checks its own message, many times over).
 *
 * Prints one line per check that failed and "concurrency: N generations compared, ..." at the end.
 * Exit status 1 on any difference.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tfm/tfm.h"

#define MAX_GEN_TOKENS 32

typedef struct {
    int32_t ids[MAX_GEN_TOKENS];
    size_t n;
    uint64_t logits_hash;
    char text[512];
} gen_result;

typedef struct {
    int job;
    int32_t prompt[24];
    size_t n_prompt;
    tfm_sampler_params sp;
    tfm_session_params sess;
    tfm_session *session;
    tfm_sampler *sampler;
    gen_result *serial;   /* [n_gen] */
} job;

static tfm_model *model;
static const tfm_tokenizer *tok;
static int32_t n_vocab;
static int n_threads = 8, n_sessions = 4, n_gen = 25, max_tokens = 8;
static job *jobs;
static int failures;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

#define FAIL(...)                                   \
    do {                                            \
        pthread_mutex_lock(&fail_lock);             \
        if (failures++ < 20) {                      \
            printf("FAIL: ");                       \
            printf(__VA_ARGS__);                    \
            printf("\n");                           \
        }                                           \
        pthread_mutex_unlock(&fail_lock);           \
    } while (0)

static const char *const texts[] = {
    "In the beginning God created the heaven and the earth.",
    "And the earth was without form, and void;",
    "caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",
    "Let there be light: and there was light.",
    "  leading spaces, 1234567 digits, and\ttabs",
    "Blessed are the meek: for they shall inherit the earth.",
};

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* The text of ids through the shared tokenizer and a fresh stream (which must agree). */
static void decode_text(const int32_t *ids, size_t n, char *out, size_t cap, int job_id)
{
    out[0] = 0;
    if (!tok) return;
    size_t len = 0;
    if (tfm_detokenize(tok, ids, n, out, cap - 1, &len) != TFM_OK) {
        FAIL("job %d: detokenize: %s", job_id, tfm_last_error());
        return;
    }
    out[len] = 0;
    tfm_text_stream *s = NULL;
    if (tfm_text_stream_create(tok, &s) != TFM_OK) {
        FAIL("job %d: stream: %s", job_id, tfm_last_error());
        return;
    }
    char streamed[512];
    size_t at = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *t;
        size_t tl;
        tfm_status st = i < n ? tfm_text_stream_push(s, ids[i], &t, &tl) : tfm_text_stream_flush(s, &t, &tl);
        if (st != TFM_OK || at + tl >= sizeof streamed) {
            FAIL("job %d: stream push: %s", job_id, tfm_status_string(st));
            break;
        }
        memcpy(streamed + at, t, tl);
        at += tl;
    }
    tfm_text_stream_free(s);
    if (at != len || memcmp(streamed, out, len) != 0) FAIL("job %d: streamed text differs from decoded text", job_id);
}

static int setup_job(job *j, int index)
{
    j->job = index;
    const char *text = texts[index % (int)(sizeof texts / sizeof *texts)];
    if (tok) {
        int32_t ids[256];
        if (tfm_tokenize(tok, text, strlen(text), TFM_TOKENIZE_MODEL_DEFAULTS, ids, 256, &j->n_prompt)) {
            printf("tokenize: %s\n", tfm_last_error());
            return 1;
        }
        if (j->n_prompt > 24) j->n_prompt = 24;
        memcpy(j->prompt, ids, j->n_prompt * sizeof *ids);
    } else {
        j->n_prompt = 6 + (size_t)index % 8;
        for (size_t i = 0; i < j->n_prompt; i++) j->prompt[i] = (int32_t)((index * 7 + (int)i * 13) % n_vocab);
    }
    j->n_prompt = j->n_prompt > (size_t)(4 + index % 12) ? (size_t)(4 + index % 12) : j->n_prompt;
    j->sp = tfm_sampler_params_default();
    j->sp.seed = 1000 + (uint64_t)index;
    j->sp.temperature = index % 4 == 0 ? 0.0f : 0.7f + 0.1f * (float)(index % 3);
    j->sp.top_k = index % 3 == 0 ? 0 : 20;
    j->sp.repeat_penalty = index % 5 == 0 ? 1.1f : 1.0f;
    j->sess = tfm_session_params_default();
    j->sess.n_ctx = 64;
    j->sess.kv_dtype = index % 2 ? TFM_DTYPE_F16 : TFM_DTYPE_F32;
    j->sess.n_batch = index % 3 == 0 ? 3 : 0;   /* some prompts run in several chunks */
    j->sess.logits_all = index % 4 == 1;
    if (tfm_session_create(model, &j->sess, &j->session) || tfm_sampler_create(&j->sp, &j->sampler)) {
        printf("job %d: %s\n", index, tfm_last_error());
        return 1;
    }
    return 0;
}

/* Generation g of job j: reset (or rewind to a prefix of the prompt), reseed, generate. */
static void run_generation(job *j, int g, gen_result *r)
{
    memset(r, 0, sizeof *r);
    tfm_sampler_reset(j->sampler, j->sp.seed + (uint64_t)g);
    size_t skip = 0;
    if (g % 3 == 2 && tfm_session_n_past(j->session) >= 2) {
        /* keep the first two prompt tokens of the previous generation and feed the rest */
        if (tfm_session_rewind(j->session, 2)) FAIL("job %d: rewind: %s", j->job, tfm_last_error());
        skip = 2;
    } else {
        tfm_session_reset(j->session);
    }
    tfm_generate_params gp = tfm_generate_params_default();
    gp.max_tokens = max_tokens;
    gp.ignore_eos = 1;
    tfm_status st = tfm_session_generate(j->session, j->sampler, j->prompt + skip, j->n_prompt - skip, &gp, r->ids,
                                         MAX_GEN_TOKENS, &r->n);
    if (st) FAIL("job %d generation %d: %s", j->job, g, tfm_last_error());
    const float *logits = tfm_session_last_logits(j->session);
    r->logits_hash = logits ? fnv(logits, (size_t)n_vocab * sizeof *logits, 0xcbf29ce484222325ull) : 0;
    decode_text(r->ids, r->n, r->text, sizeof r->text, j->job);
}

static int same(const gen_result *a, const gen_result *b)
{
    return a->n == b->n && memcmp(a->ids, b->ids, a->n * sizeof *a->ids) == 0 && a->logits_hash == b->logits_hash &&
           strcmp(a->text, b->text) == 0;
}

/* A failing call whose message names an id only this thread uses; checked right after, while the
 * other threads make their own failing and succeeding calls. */
static void check_thread_local_error(job *j, int thread)
{
    int32_t bad = -(100000 + thread);
    char want[32];
    snprintf(want, sizeof want, "%d", bad);
    if (tfm_session_eval(j->session, &bad, 1) != TFM_E_INVALID_ARGUMENT) FAIL("thread %d: bad id accepted", thread);
    if (!strstr(tfm_last_error(), want)) FAIL("thread %d: message '%s' is not its own (%s)", thread, tfm_last_error(), want);
}

typedef struct {
    int thread;
    int compared;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    job *mine = jobs + a->thread * n_sessions;
    for (int g = 0; g < n_gen; g++) {
        for (int s = 0; s < n_sessions; s++) {
            gen_result r;
            run_generation(&mine[s], g, &r);
            if (!same(&r, &mine[s].serial[g]))
                FAIL("thread %d session %d generation %d differs from the serial run (%zu vs %zu ids)", a->thread, s,
                     g, r.n, mine[s].serial[g].n);
            a->compared++;
        }
        check_thread_local_error(&mine[g % n_sessions], a->thread);
    }
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [THREADS] [SESSIONS_PER_THREAD] [GENERATIONS] [MAX_TOKENS]\n", argv[0]);
        return 2;
    }
    if (argc > 2) n_threads = atoi(argv[2]);
    if (argc > 3) n_sessions = atoi(argv[3]);
    if (argc > 4) n_gen = atoi(argv[4]);
    if (argc > 5) max_tokens = atoi(argv[5]);
    if (n_threads < 1 || n_sessions < 1 || n_gen < 1 || max_tokens < 1 || max_tokens > MAX_GEN_TOKENS) return 2;

    tfm_model_params mp = tfm_model_params_default();
    mp.backend = "cpu";
    mp.n_threads = 2;
    if (tfm_model_load(argv[1], &mp, &model)) {
        printf("load %s: %s\n", argv[1], tfm_last_error());
        return 1;
    }
    tfm_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    tfm_model_get_info(model, &info);
    n_vocab = info.n_vocab;
    tok = tfm_model_tokenizer(model);

    int n_jobs = n_threads * n_sessions;
    jobs = calloc((size_t)n_jobs, sizeof *jobs);
    for (int i = 0; i < n_jobs; i++) {
        if (setup_job(&jobs[i], i)) return 1;
        jobs[i].serial = calloc((size_t)n_gen, sizeof(gen_result));
    }

    /* serial pass: job by job */
    double t0 = now();
    for (int i = 0; i < n_jobs; i++)
        for (int g = 0; g < n_gen; g++) run_generation(&jobs[i], g, &jobs[i].serial[g]);
    double t1 = now();
    /* the serial results are not degenerate: jobs differ from one another */
    int distinct = 0;
    for (int i = 1; i < n_jobs; i++) distinct += !same(&jobs[i].serial[0], &jobs[0].serial[0]);
    if (n_jobs > 1 && distinct < n_jobs / 2) FAIL("only %d of %d jobs differ from job 0: a weak test", distinct, n_jobs);

    /* parallel pass */
    pthread_t *th = calloc((size_t)n_threads, sizeof *th);
    thread_arg *args = calloc((size_t)n_threads, sizeof *args);
    for (int t = 0; t < n_threads; t++) {
        args[t].thread = t;
        if (pthread_create(&th[t], NULL, thread_main, &args[t])) {
            printf("pthread_create failed\n");
            return 1;
        }
    }
    int compared = 0;
    for (int t = 0; t < n_threads; t++) {
        pthread_join(th[t], NULL);
        compared += args[t].compared;
    }
    double t2 = now();

    for (int i = 0; i < n_jobs; i++) {
        tfm_session_free(jobs[i].session);
        tfm_sampler_free(jobs[i].sampler);
        free(jobs[i].serial);
    }
    free(jobs);
    free(th);
    free(args);
    tfm_model_free(model);
    printf("concurrency: %d threads x %d sessions x %d generations of %d tokens: %d generations compared, "
           "%d failed checks (serial %.1f s, parallel %.1f s)\n",
           n_threads, n_sessions, n_gen, max_tokens, compared, failures, t1 - t0, t2 - t1);
    return failures ? 1 : 0;
}
