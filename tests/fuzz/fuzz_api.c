/*
 * fuzz_api.c — the public API driven by random call sequences on one tiny model.
 *
 * The input is a little program: each step is an opcode byte followed by its argument bytes (missing
 * bytes read as 0). Steps create and free sessions (random n_ctx, KV dtype, batch size, logits_all,
 * an abort callback that fires after k calls), evaluate token ids (some out of range), rewind, reset,
 * read logits, sample (also from hostile logits with NaN and Inf), generate with stop ids and a
 * streaming callback that may stop early, tokenize and stream text, create tensors of random shapes,
 * and pass NULL handles everywhere.
 *
 * Beyond "no crash, no leak, no UB", the status of every call is predicted from the documented
 * contract (tfm.h) and checked, and so is the session's state afterwards: n_past, whether logits
 * exist, their shape. Every so often a session's last logits are compared with a fresh session that
 * evaluates the same tokens in one call (f32 KV cache; relative tolerance 1e-5, as the e2e suite's
 * chunking test).
 *
 * The model: $TFM_FUZZ_MODEL (a GGUF file; the fuzz scripts pass a make_model.py model with a
 * SentencePiece vocabulary), or, when unset, a tiny llama built in memory without a tokenizer.
 */
#include <math.h>

#include "../format/gguf_build.h"
#include "fuzz_common.h"

#define N_SESSIONS 4
#define N_SAMPLERS 2
#define MAX_CTX 48

typedef struct {
    const uint8_t *p;
    size_t n;
} reader;

static uint8_t u8(reader *r)
{
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

static uint16_t u16(reader *r) { return (uint16_t)(u8(r) | u8(r) << 8); }

typedef struct {
    int countdown; /* calls left before it asks to stop; < 0: never */
    int calls;
} stopper;

static int stop_after(stopper *s)
{
    s->calls++;
    if (s->countdown < 0) return 0;
    return s->countdown-- == 0;
}

static int abort_cb(void *user) { return stop_after(user); }

typedef struct {
    tfm_session *s;
    int32_t n_ctx;
    int logits_all;
    int kv_f32;
    int has_logits;     /* the last eval succeeded and nothing since dropped its logits */
    int32_t last_n;     /* tokens of the last successful eval */
    int32_t hist[MAX_CTX];
    stopper abort;
    tfm_session_params params;
} session_slot;

static tfm_model *model;
static const tfm_tokenizer *tok;
static int32_t n_vocab, n_ctx_train;
static void *model_bytes;
static session_slot slots[N_SESSIONS];
static tfm_sampler *samplers[N_SAMPLERS];

static void load_model(void)
{
    tfm_model_params p = tfm_model_params_default();
    p.backend = "cpu";
    p.n_threads = 1;
    const char *path = getenv("TFM_FUZZ_MODEL");
    tfm_status st;
    if (path && *path) {
        st = tfm_model_load(path, &p, &model);
    } else {
        gb_model m;
        gb_llama(&m, 16, 2, 4, 2, 32, 40, 0, 0);
        gb_file f = gb_serialize(&m);
        model_bytes = f.data; /* must outlive the model: never freed */
        st = tfm_model_load_from_memory(f.data, f.size, &p, &model);
        gb_free(&m);
    }
    if (st) {
        fprintf(stderr, "fuzz_api: cannot load the model: %s\n", tfm_last_error());
        exit(2);
    }
    tfm_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    tfm_model_get_info(model, &info);
    n_vocab = info.n_vocab;
    n_ctx_train = info.n_ctx_train;
    tok = tfm_model_tokenizer(model);
    for (int i = 0; i < N_SAMPLERS; i++)
        if (tfm_sampler_create(NULL, &samplers[i])) exit(2);
}

static void expect(tfm_status got, tfm_status want, const char *what)
{
    fuzz_expect_message(got, what);
    if (got != want)
        fuzz_fail("%s: got %s, want %s (%s)", what, tfm_status_string(got), tfm_status_string(want), tfm_last_error());
}

static void free_slot(session_slot *sl)
{
    tfm_session_free(sl->s);
    memset(sl, 0, sizeof *sl);
}

static void op_create(reader *r)
{
    session_slot *sl = &slots[u8(r) % N_SESSIONS];
    free_slot(sl);
    uint8_t a = u8(r), b = u8(r), c = u8(r);
    tfm_session_params p = tfm_session_params_default();
    int32_t n_ctx = a % (MAX_CTX + 1);               /* 0 = default */
    if (a == 255) n_ctx = n_ctx_train + 1;           /* beyond the model: refused */
    if (a == 254) n_ctx = -3;
    static const tfm_dtype kv[] = {TFM_DTYPE_F32, TFM_DTYPE_F16, TFM_DTYPE_BF16, TFM_DTYPE_I32};
    p.n_ctx = n_ctx;
    p.kv_dtype = kv[b % 4];
    p.logits_all = (b >> 2) & 1;
    p.n_batch = (b >> 3) % 9;                        /* 0 = default */
    if (b >> 7) p.n_batch = -1;
    sl->abort.countdown = c < 128 ? -1 : c % 16;
    p.abort = (c & 1) ? abort_cb : NULL;
    p.abort_user_data = &sl->abort;
    if (!p.abort) sl->abort.countdown = -1;

    int32_t eff_ctx = n_ctx ? n_ctx : (n_ctx_train < 4096 ? n_ctx_train : 4096);
    tfm_status want = TFM_OK;
    if (eff_ctx < 1 || eff_ctx > n_ctx_train || p.kv_dtype == TFM_DTYPE_I32 || p.n_batch < 0)
        want = TFM_E_INVALID_ARGUMENT;
    if (want == TFM_OK && eff_ctx > MAX_CTX) { /* the default context may be large: keep the history small */
        p.n_ctx = eff_ctx = MAX_CTX;
    }
    tfm_session *s = NULL;
    tfm_status st = tfm_session_create(model, &p, &s);
    expect(st, want, "tfm_session_create");
    if (st) {
        if (s) fuzz_fail("failed create left a session");
        return;
    }
    sl->s = s;
    sl->n_ctx = eff_ctx;
    sl->logits_all = p.logits_all;
    sl->kv_f32 = p.kv_dtype == TFM_DTYPE_F32;
    sl->params = p;
    if (tfm_session_n_ctx(s) != eff_ctx) fuzz_fail("n_ctx %d, asked %d", tfm_session_n_ctx(s), eff_ctx);
    if (tfm_session_n_past(s) != 0) fuzz_fail("new session with n_past %d", tfm_session_n_past(s));
}

/* Reads n ids; *bad is set when one is out of range. */
static void read_ids(reader *r, int32_t *ids, size_t n, int *bad)
{
    *bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t v = u8(r);
        if (v == 255) {
            ids[i] = n_vocab;
            *bad = 1;
        } else if (v == 254) {
            ids[i] = -1;
            *bad = 1;
        } else {
            ids[i] = v % n_vocab;
        }
    }
}

static void op_eval(reader *r)
{
    session_slot *sl = &slots[u8(r) % N_SESSIONS];
    size_t n = u8(r) % 24;
    int32_t ids[24];
    int bad;
    read_ids(r, ids, n, &bad);
    if (!sl->s) {
        expect(tfm_session_eval(NULL, ids, n), TFM_E_INVALID_ARGUMENT, "eval on NULL");
        return;
    }
    int32_t before = tfm_session_n_past(sl->s);
    const float *logits_before = tfm_session_last_logits(sl->s);
    float first = logits_before ? logits_before[0] : 0;
    tfm_status want = TFM_OK;
    if (n && bad) want = TFM_E_INVALID_ARGUMENT;
    else if ((size_t)before + n > (size_t)sl->n_ctx) want = TFM_E_CONTEXT_FULL;
    sl->abort.calls = 0;
    tfm_status st = tfm_session_eval(sl->s, ids, n);
    int32_t after = tfm_session_n_past(sl->s);
    if (st == TFM_E_ABORTED && want == TFM_OK) {
        if (!sl->abort.calls) fuzz_fail("aborted without asking the callback");
        if (after < before || after >= before + (int32_t)n) fuzz_fail("aborted eval kept %d of %zu", after - before, n);
        memcpy(sl->hist + before, ids, (size_t)(after - before) * sizeof *ids);
        sl->has_logits = 0;
        return;
    }
    expect(st, want, "tfm_session_eval");
    if (st) {
        if (after != before) fuzz_fail("a refused eval changed n_past from %d to %d", before, after);
        const float *l = tfm_session_last_logits(sl->s);
        if (sl->has_logits && (!l || l[0] != first)) fuzz_fail("a refused eval changed the logits");
        return;
    }
    if (after != before + (int32_t)n) fuzz_fail("n_past %d after %zu tokens on %d", after, n, before);
    if (n) {
        memcpy(sl->hist + before, ids, n * sizeof *ids);
        sl->has_logits = 1;
        sl->last_n = (int32_t)n;
    }
}

static void op_rewind(reader *r)
{
    session_slot *sl = &slots[u8(r) % N_SESSIONS];
    uint8_t a = u8(r);
    if (!sl->s) {
        expect(tfm_session_rewind(NULL, 0), TFM_E_INVALID_ARGUMENT, "rewind NULL");
        tfm_session_reset(NULL);
        return;
    }
    int32_t past = tfm_session_n_past(sl->s);
    if (a == 0) {
        tfm_session_reset(sl->s);
        if (tfm_session_n_past(sl->s) != 0) fuzz_fail("reset left %d tokens", tfm_session_n_past(sl->s));
        sl->has_logits = 0;
        return;
    }
    int32_t to = (int32_t)(a % (past + 3)) - 1; /* -1 .. past + 1 */
    tfm_status st = tfm_session_rewind(sl->s, to);
    expect(st, to >= 0 && to <= past ? TFM_OK : TFM_E_INVALID_ARGUMENT, "tfm_session_rewind");
    if (!st) {
        if (tfm_session_n_past(sl->s) != to) fuzz_fail("rewind to %d left %d", to, tfm_session_n_past(sl->s));
        sl->has_logits = 0;
    }
}

static void check_finite(const float *v, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) fuzz_fail("%s[%zu] = %g", what, i, v[i]);
}

static void op_logits(reader *r)
{
    session_slot *sl = &slots[u8(r) % N_SESSIONS];
    int which = u8(r) % 3; /* 2: an invalid selector */
    tfm_tensor *t = NULL;
    tfm_status st = tfm_session_logits(sl->s, which, &t);
    tfm_status want;
    if (!sl->s || (which == 2 && sl->has_logits)) want = TFM_E_INVALID_ARGUMENT;
    else if (!sl->has_logits) want = which == 2 && st == TFM_E_INVALID_ARGUMENT ? st : TFM_E_STATE; /* either check may come first */
    else if (which == TFM_LOGITS_ALL && !sl->logits_all) want = TFM_E_STATE;
    else want = TFM_OK;
    if (!sl->s && st != TFM_OK) { fuzz_expect_message(st, "logits of NULL"); return; }
    expect(st, want, "tfm_session_logits");
    if (st) {
        if (t) fuzz_fail("failed logits left a tensor");
        if (sl->s && !sl->has_logits && tfm_session_last_logits(sl->s)) fuzz_fail("last_logits without logits");
        return;
    }
    int64_t rows = which == TFM_LOGITS_ALL ? sl->last_n : 1;
    if (tfm_tensor_dtype(t) != TFM_DTYPE_F32) fuzz_fail("logits dtype");
    if (which == TFM_LOGITS_LAST) {
        if (tfm_tensor_ndim(t) != 1 || tfm_tensor_dim(t, 0) != n_vocab) fuzz_fail("last logits shape");
    } else if (tfm_tensor_ndim(t) != 2 || tfm_tensor_dim(t, 0) != rows || tfm_tensor_dim(t, 1) != n_vocab) {
        fuzz_fail("all logits shape [%lld, %lld], want [%lld, %d]", (long long)tfm_tensor_dim(t, 0),
                  (long long)tfm_tensor_dim(t, 1), (long long)rows, n_vocab);
    }
    if (tfm_tensor_nbytes(t) != (size_t)rows * (size_t)n_vocab * sizeof(float)) fuzz_fail("logits nbytes");
    const float *data = tfm_tensor_data(t);
    check_finite(data, (size_t)rows * (size_t)n_vocab, "logits");
    const float *last = tfm_session_last_logits(sl->s);
    if (!last || memcmp(last, data + (size_t)(rows - 1) * (size_t)n_vocab, (size_t)n_vocab * sizeof(float)) != 0)
        fuzz_fail("the last row of the logits differs from tfm_session_last_logits");
    tfm_tensor_free(t);
}

/* A fresh session evaluating the same tokens in one call gives the same logits (f32 KV cache). */
static void op_replay(reader *r)
{
    session_slot *sl = &slots[u8(r) % N_SESSIONS];
    if (!sl->s || !sl->has_logits || !sl->kv_f32) return;
    int32_t past = tfm_session_n_past(sl->s);
    tfm_session_params p = sl->params;
    p.abort = NULL;
    p.logits_all = 0;
    p.n_batch = 0;
    tfm_session *fresh = NULL;
    expect(tfm_session_create(model, &p, &fresh), TFM_OK, "replay session");
    expect(tfm_session_eval(fresh, sl->hist, (size_t)past), TFM_OK, "replay eval");
    const float *a = tfm_session_last_logits(sl->s), *b = tfm_session_last_logits(fresh);
    float diff = 0, scale = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        diff = fmaxf(diff, fabsf(a[i] - b[i]));
        scale = fmaxf(scale, fabsf(b[i]));
    }
    if (diff > 1e-5f * scale)
        fuzz_fail("after %d tokens the logits differ from a one-call evaluation: max |diff| %g, max |ref| %g", past,
                  diff, scale);
    tfm_session_free(fresh);
}

static void op_sampler(reader *r)
{
    int j = u8(r) % N_SAMPLERS;
    uint8_t a = u8(r), b = u8(r), c = u8(r);
    tfm_sampler_params p = tfm_sampler_params_default();
    static const float temps[] = {0.0f, 0.5f, 1.0f, 2.0f, -1.0f, NAN, INFINITY, 1e-30f};
    static const float ps[] = {1.0f, 0.9f, 0.1f, 0.0f, 1.5f, NAN, 1e-9f, 0.5f};
    p.temperature = temps[a % 8];
    p.top_k = (int32_t)(a >> 3) - 4;
    p.top_p = ps[b % 8];
    p.min_p = ps[(b >> 3) % 8];
    p.repeat_penalty = (b >> 6) == 3 ? 0.0f : 1.0f + 0.25f * (float)(b >> 6);
    p.repeat_last_n = (int32_t)(c % 80) - 8;
    p.seed = c;
    int bad = !(p.temperature >= 0) || !isfinite(p.temperature) || p.top_k < 0 || !(p.top_p > 0 && p.top_p <= 1) ||
              !(p.min_p >= 0 && p.min_p <= 1) || !(p.repeat_penalty > 0) || p.repeat_last_n < 0;
    tfm_sampler *s = NULL;
    tfm_status st = tfm_sampler_create(&p, &s);
    expect(st, bad ? TFM_E_INVALID_ARGUMENT : TFM_OK, "tfm_sampler_create");
    if (st) return;
    tfm_sampler_free(samplers[j]);
    samplers[j] = s;
}

/* Samples from a session's logits, or from hostile logits. */
static void op_sample(reader *r)
{
    tfm_sampler *smp = samplers[u8(r) % N_SAMPLERS];
    uint8_t a = u8(r);
    session_slot *sl = &slots[a % N_SESSIONS];
    float hostile[64];
    const float *logits;
    int32_t n;
    int all_nan = 1;
    if (a & 4 || !sl->s || !sl->has_logits) {
        n = 1 + u8(r) % 64;
        for (int32_t i = 0; i < n; i++) {
            uint8_t v = u8(r);
            hostile[i] = v == 0 ? NAN : v == 1 ? INFINITY : v == 2 ? -INFINITY : v == 3 ? 3e38f : (float)v / 16 - 8;
            if (v != 0) all_nan = 0;
        }
        logits = hostile;
    } else {
        logits = tfm_session_last_logits(sl->s);
        n = n_vocab;
        all_nan = 0;
    }
    int32_t hist[8];
    size_t nh = u8(r) % 9;
    for (size_t i = 0; i < nh; i++) hist[i] = (int32_t)u8(r) - 4; /* some out of range: must be ignored */
    int32_t id = -7;
    tfm_status st = tfm_sampler_sample(smp, logits, n, hist, nh, &id);
    fuzz_expect_message(st, "tfm_sampler_sample");
    if (all_nan) {
        if (st != TFM_E_INVALID_ARGUMENT) fuzz_fail("all-NaN logits sampled: %s", tfm_status_string(st));
        return;
    }
    if (st) fuzz_fail("sampling failed: %s", tfm_last_error());
    if (id < 0 || id >= n) fuzz_fail("sampled id %d of %d", id, n);
    if (logits == hostile && isnan(hostile[id])) fuzz_fail("sampled a NaN logit");
    /* +Inf is the limit of an ever larger logit: softmax gives such tokens all the mass, greedy picks one */
    int has_inf = 0;
    for (int32_t i = 0; i < n; i++) has_inf |= logits[i] == INFINITY;
    if (has_inf && logits[id] != INFINITY) fuzz_fail("logits hold +Inf but id %d with logit %g was sampled", id, logits[id]);
    if (a & 8) tfm_sampler_reset(smp, a);
}

typedef struct {
    stopper stop;
    int32_t last_id;
    size_t n_calls;
} gen_state;

static int on_token(int32_t id, const char *text, size_t length, void *user)
{
    gen_state *g = user;
    if (length && !text) fuzz_fail("token text NULL with length %zu", length);
    if (id < -1 || id >= n_vocab) fuzz_fail("streamed id %d", id);
    g->last_id = id;
    g->n_calls++;
    return stop_after(&g->stop);
}

static void op_generate(reader *r)
{
    session_slot *sl = &slots[u8(r) % N_SESSIONS];
    tfm_sampler *smp = samplers[u8(r) % N_SAMPLERS];
    uint8_t a = u8(r), b = u8(r);
    size_t n_prompt = a % 8;
    int32_t prompt[8];
    int bad;
    read_ids(r, prompt, n_prompt, &bad);
    int32_t stop_ids[2] = {u8(r) % n_vocab, u8(r) % n_vocab};
    tfm_generate_params gp = tfm_generate_params_default();
    gp.max_tokens = (a >> 3) % 10;
    if (a >> 7) gp.max_tokens = -1;
    gp.stop_ids = stop_ids;
    gp.n_stop_ids = b & 3 ? (size_t)(b & 3) - 1 : 0;
    gp.ignore_eos = (b >> 2) & 1;
    gen_state g = {{b >> 3 & 1 ? (int)(b >> 4) : -1, 0}, 0, 0};
    gp.on_token = (b >> 3) & 1 ? on_token : NULL;
    gp.user_data = &g;
    int32_t out[16];
    size_t n_out = 99;
    if (!sl->s) {
        expect(tfm_session_generate(NULL, smp, prompt, n_prompt, &gp, out, 16, &n_out), TFM_E_INVALID_ARGUMENT,
               "generate on NULL");
        return;
    }
    int32_t before = tfm_session_n_past(sl->s);
    sl->abort.calls = 0;
    tfm_status st = tfm_session_generate(sl->s, smp, prompt, n_prompt, &gp, out, 16, &n_out);
    int32_t after = tfm_session_n_past(sl->s);
    fuzz_expect_message(st, "tfm_session_generate");
    if (gp.max_tokens < 0 || (n_prompt && bad)) {
        expect(st, TFM_E_INVALID_ARGUMENT, "generate with a bad argument");
        if (after != before) fuzz_fail("refused generate changed n_past");
        return;
    }
    if ((size_t)before + n_prompt > (size_t)sl->n_ctx) {
        expect(st, TFM_E_CONTEXT_FULL, "generate with a prompt that does not fit");
        return;
    }
    if (!n_prompt && !sl->has_logits && st != TFM_E_ABORTED) {
        expect(st, TFM_E_STATE, "generate without prompt or logits");
        return;
    }
    if (st != TFM_OK && !(st == TFM_E_ABORTED && sl->abort.calls))
        fuzz_fail("generate: %s (%s)", tfm_status_string(st), tfm_last_error());
    if (n_out > (size_t)gp.max_tokens) fuzz_fail("%zu tokens generated, max %d", n_out, gp.max_tokens);
    if (gp.on_token && tok && n_out && g.n_calls < n_out) fuzz_fail("%zu tokens, %zu callbacks", n_out, g.n_calls);
    /* the evaluated tokens are a prefix of prompt + generated */
    int32_t seq[24];
    memcpy(seq, prompt, n_prompt * sizeof *seq);
    memcpy(seq + n_prompt, out, n_out * sizeof *seq);
    int32_t kept = after - before;
    if (kept < 0 || (size_t)kept > n_prompt + n_out) fuzz_fail("generate kept %d tokens of %zu", kept, n_prompt + n_out);
    if (st == TFM_OK && (size_t)kept + 1 < n_prompt + n_out) fuzz_fail("generate left %d of %zu unevaluated",
                                                                       (int)(n_prompt + n_out - (size_t)kept), n_out);
    for (size_t i = 0; i < n_out; i++)
        if (out[i] < 0 || out[i] >= n_vocab) fuzz_fail("generated id %d", out[i]);
    memcpy(sl->hist + before, seq, (size_t)kept * sizeof *seq);
    /* The logits are those of the last successful eval: the prompt (one call) or a generated token.
     * A failed eval drops them. */
    if (st != TFM_OK) {
        sl->has_logits = 0;
    } else if (kept > (int32_t)n_prompt) {
        sl->has_logits = 1;
        sl->last_n = 1;
    } else if (kept > 0) {
        sl->has_logits = 1;
        sl->last_n = kept;
    }
}

static void op_text(reader *r)
{
    if (!tok) return;
    size_t n = u8(r) % 32;
    char text[32];
    for (size_t i = 0; i < n; i++) text[i] = (char)u8(r);
    static const uint32_t flags[] = {0, TFM_TOKENIZE_PARSE_SPECIAL, TFM_TOKENIZE_ADD_BOS | TFM_TOKENIZE_ADD_EOS,
                                     TFM_TOKENIZE_MODEL_DEFAULTS};
    fuzz_exercise_text(tok, text, n, flags[n % 4]);
}

static void op_stream(reader *r)
{
    if (!tok) return;
    tfm_text_stream *s = NULL;
    expect(tfm_text_stream_create(tok, &s), TFM_OK, "stream create");
    size_t n = u8(r) % 16;
    for (size_t i = 0; i < n; i++) {
        int32_t id = (int32_t)u16(r) - 8;
        const char *text = NULL;
        size_t len = 0;
        tfm_status st = tfm_text_stream_push(s, id, &text, &len);
        expect(st, id >= 0 && id < tfm_tokenizer_vocab_size(tok) ? TFM_OK : TFM_E_INVALID_ARGUMENT, "stream push");
    }
    if (u8(r) & 1) {
        const char *text = NULL;
        size_t len = 0;
        expect(tfm_text_stream_flush(s, &text, &len), TFM_OK, "stream flush");
    }
    tfm_text_stream_free(s);
}

static void op_tensor(reader *r)
{
    static const tfm_dtype dtypes[] = {TFM_DTYPE_F32, TFM_DTYPE_F16, TFM_DTYPE_BF16, TFM_DTYPE_I32, TFM_DTYPE_Q8_0,
                                       (tfm_dtype)77};
    uint8_t a = u8(r);
    tfm_dtype dt = dtypes[a % 6];
    int ndim = (a >> 3) % 6; /* 0 and 5 are invalid */
    int64_t shape[5];
    int bad = ndim < 1 || ndim > 4 || dt == TFM_DTYPE_Q8_0 || dt == (tfm_dtype)77;
    uint64_t elem_size = dt == TFM_DTYPE_F32 || dt == TFM_DTYPE_I32 ? 4 : 2;
    unsigned __int128 bytes = elem_size;
    uint64_t elems = 1;
    for (int i = 0; i < 5; i++) {
        uint8_t v = u8(r);
        shape[i] = v == 255 ? INT64_MAX : v == 254 ? -1 : v % 7;
        if (i < ndim) {
            if (shape[i] <= 0) bad = 1;
            else elems *= (uint64_t)shape[i], bytes *= (uint64_t)shape[i];
        }
    }
    /* A byte size beyond 2^64 must be refused; a huge one that fits would only test the allocator. */
    if (!bad && bytes > UINT64_MAX) bad = 1;
    else if (!bad && bytes > ((unsigned __int128)1 << 32)) return;
    tfm_tensor *t = NULL;
    tfm_status st = tfm_tensor_create(dt, ndim, shape, &t);
    fuzz_expect_message(st, "tfm_tensor_create");
    if (bad && st == TFM_OK) fuzz_fail("tensor with dtype %d ndim %d accepted", (int)dt, ndim);
    if (!bad && st != TFM_OK) fuzz_fail("valid tensor refused: %s", tfm_last_error());
    if (st) return;
    if (tfm_tensor_ndim(t) != ndim || tfm_tensor_dtype(t) != dt) fuzz_fail("tensor header");
    size_t nbytes = tfm_tensor_nbytes(t);
    if (nbytes != elems * elem_size) fuzz_fail("tensor nbytes %zu", nbytes);
    uint8_t *d = tfm_tensor_data(t);
    for (size_t i = 0; i < nbytes; i++)
        if (d[i]) fuzz_fail("tensor not zero-filled");
    if (tfm_tensor_dim(t, 4) != 0 || tfm_tensor_dim(t, -1) != 0) fuzz_fail("dim out of range not 0");
    tfm_tensor_free(t);
}

static void op_nulls(reader *r)
{
    uint8_t a = u8(r);
    (void)tfm_status_string((tfm_status)a);
    (void)tfm_dtype_name((tfm_dtype)a);
    if (!tfm_status_string((tfm_status)(int)(a - 128))) fuzz_fail("status string NULL");
    tfm_session_free(NULL);
    tfm_sampler_free(NULL);
    tfm_tensor_free(NULL);
    tfm_text_stream_free(NULL);
    tfm_tokenizer_free(NULL);
    tfm_model_free(NULL);
    int32_t id = 0;
    size_t n = 0;
    expect(tfm_session_create(NULL, NULL, NULL), TFM_E_INVALID_ARGUMENT, "session_create NULL");
    expect(tfm_sampler_sample(NULL, NULL, 0, NULL, 0, &id), TFM_E_INVALID_ARGUMENT, "sample NULL");
    expect(tfm_session_generate(NULL, NULL, NULL, 0, NULL, NULL, 0, &n), TFM_E_INVALID_ARGUMENT, "generate NULL");
    if (tfm_session_n_past(NULL) != 0 || tfm_session_last_logits(NULL)) fuzz_fail("NULL session accessors");
    if (tok) {
        fuzz_expect_message(tfm_tokenize(tok, NULL, 3, 0, NULL, 0, &n), "tokenize NULL text");
        fuzz_expect_message(tfm_detokenize(tok, NULL, 2, NULL, 0, &n), "detokenize NULL ids");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model) load_model();
    /* every input starts from default samplers, so that a failing input fails on its own */
    for (int i = 0; i < N_SAMPLERS; i++) {
        tfm_sampler_free(samplers[i]);
        samplers[i] = NULL;
        if (tfm_sampler_create(NULL, &samplers[i])) fuzz_fail("default sampler: %s", tfm_last_error());
    }
    reader r = {data, size};
    int steps = 0;
    while (r.n && steps++ < 64) {
        switch (u8(&r) % 13) {
        case 0: op_create(&r); break;
        case 1: case 2: op_eval(&r); break;
        case 3: op_rewind(&r); break;
        case 4: op_logits(&r); break;
        case 5: op_replay(&r); break;
        case 6: op_sampler(&r); break;
        case 7: op_sample(&r); break;
        case 8: op_generate(&r); break;
        case 9: op_text(&r); break;
        case 10: op_stream(&r); break;
        case 11: op_tensor(&r); break;
        default: op_nulls(&r); break;
        }
    }
    for (int i = 0; i < N_SESSIONS; i++) free_slot(&slots[i]);
    return 0;
}
