/*
 * sampler.c — picks the next token from logits: repetition penalty, then greedy, or
 * top-k → temperature → softmax → top-p → min-p → a draw from a seeded generator.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tfm/tfm.h"

struct tfm_sampler {
    tfm_sampler_params params;
    uint64_t rng;
    float *work;          /* n_vocab penalised logits */
    struct candidate *cand;
    double *prob;         /* n_vocab probabilities of the sorted candidates */
    int32_t capacity;
};

typedef struct candidate {
    float logit;
    int32_t id;
} candidate;

static tfm_sampler_params sampler_params_defaults(void) {
    tfm_sampler_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = 0x5EED;
    return p;
}

TFM_API void tfm_sampler_params_init(tfm_sampler_params *params, size_t struct_size) {
    if (!params || struct_size < sizeof params->struct_size) return;
    tfm_sampler_params p = sampler_params_defaults();
    memset(params, 0, struct_size);
    memcpy(params, &p, struct_size < sizeof p ? struct_size : sizeof p);
    params->struct_size = struct_size;
}

/* splitmix64: small, fast, and the same sequence on every platform. */
static uint64_t next_u64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_uniform(uint64_t *state) { return (double)(next_u64(state) >> 11) * (1.0 / 9007199254740992.0); }

TFM_API tfm_status tfm_sampler_create(const tfm_sampler_params *params, tfm_sampler **out) {
    tfm_error_clear();
    if (!out) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_sampler_create: out is NULL");
    *out = NULL;
    tfm_sampler_params p = sampler_params_defaults();
    if (params) {
        if (params->struct_size < offsetof(tfm_sampler_params, temperature) + sizeof(float))
            return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_sampler_params.struct_size %zu is too small; "
                             "initialise params with tfm_sampler_params_default()", params->struct_size);
        memcpy(&p, params, params->struct_size < sizeof p ? params->struct_size : sizeof p);
        p.struct_size = sizeof p;
    }
    if (!(p.temperature >= 0) || !isfinite(p.temperature))
        return tfm_error(TFM_E_INVALID_ARGUMENT, "temperature %g must be >= 0", p.temperature);
    if (p.top_k < 0) return tfm_error(TFM_E_INVALID_ARGUMENT, "top_k %d must be >= 0", p.top_k);
    if (!(p.top_p > 0 && p.top_p <= 1)) return tfm_error(TFM_E_INVALID_ARGUMENT, "top_p %g must be in (0, 1]", p.top_p);
    if (!(p.min_p >= 0 && p.min_p <= 1)) return tfm_error(TFM_E_INVALID_ARGUMENT, "min_p %g must be in [0, 1]", p.min_p);
    if (!(p.repeat_penalty > 0) || !isfinite(p.repeat_penalty))
        return tfm_error(TFM_E_INVALID_ARGUMENT, "repeat_penalty %g must be > 0", p.repeat_penalty);
    if (p.repeat_last_n < 0) return tfm_error(TFM_E_INVALID_ARGUMENT, "repeat_last_n %d must be >= 0", p.repeat_last_n);
    tfm_sampler *s = calloc(1, sizeof *s);
    if (!s) return tfm_error(TFM_E_OOM, "out of memory");
    s->params = p;
    s->rng = p.seed;
    *out = s;
    return TFM_OK;
}

TFM_API void tfm_sampler_free(tfm_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->cand);
    free(s->prob);
    free(s);
}

TFM_API void tfm_sampler_reset(tfm_sampler *s, uint64_t seed) {
    if (s) s->rng = seed;
}

/* Descending by logit; ties by ascending id so the order never depends on qsort's stability. */
static int by_logit_desc(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Keeps the k largest candidates in cand[0..k) (unordered) by repeated selection (quickselect). */
static void select_top(candidate *cand, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        candidate pivot = cand[(lo + hi) / 2];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (by_logit_desc(&cand[i], &pivot) < 0) i++;
            while (by_logit_desc(&cand[j], &pivot) > 0) j--;
            if (i <= j) {
                candidate t = cand[i];
                cand[i++] = cand[j];
                cand[j--] = t;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

static tfm_status ensure_capacity(tfm_sampler *s, int32_t n_vocab) {
    if (n_vocab <= s->capacity) return TFM_OK;
    float *w = realloc(s->work, (size_t)n_vocab * sizeof *w);
    if (w) s->work = w;
    candidate *c = realloc(s->cand, (size_t)n_vocab * sizeof *c);
    if (c) s->cand = c;
    double *pr = realloc(s->prob, (size_t)n_vocab * sizeof *pr);
    if (pr) s->prob = pr;
    if (!w || !c || !pr) return tfm_error(TFM_E_OOM, "sampler: out of memory for %d candidates", n_vocab);
    s->capacity = n_vocab;
    return TFM_OK;
}

static void apply_repeat_penalty(const tfm_sampler_params *p, float *logits, int32_t n_vocab,
                                 const int32_t *history, size_t n_history) {
    if (p->repeat_penalty == 1.0f || !history || p->repeat_last_n == 0) return;
    size_t start = n_history > (size_t)p->repeat_last_n ? n_history - (size_t)p->repeat_last_n : 0;
    for (size_t i = start; i < n_history; i++) {
        int32_t id = history[i];
        if (id < 0 || id >= n_vocab) continue;
        /* Each token is penalised once however often it occurs: skip repeats already seen. */
        int seen = 0;
        for (size_t j = start; j < i && !seen; j++) seen = history[j] == id;
        if (seen) continue;
        logits[id] = logits[id] > 0 ? logits[id] / p->repeat_penalty : logits[id] * p->repeat_penalty;
    }
}

TFM_API tfm_status tfm_sampler_sample(tfm_sampler *s, const float *logits, int32_t n_vocab,
                                      const int32_t *history, size_t n_history, int32_t *id) {
    tfm_error_clear();
    if (!s || !logits || !id || n_vocab < 1)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_sampler_sample: NULL argument or n_vocab < 1");
    tfm_status st = ensure_capacity(s, n_vocab);
    if (st) return st;
    const tfm_sampler_params *p = &s->params;
    float *w = s->work;
    memcpy(w, logits, (size_t)n_vocab * sizeof *w);
    apply_repeat_penalty(p, w, n_vocab, history, n_history);

    if (p->temperature == 0.0f) {
        /* NaN compares neither greater nor smaller, so it must never seed the scan. */
        int32_t best = -1;
        for (int32_t i = 0; i < n_vocab; i++)
            if (!isnan(w[i]) && (best < 0 || w[i] > w[best])) best = i;
        if (best < 0) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_sampler_sample: every logit is NaN");
        *id = best;
        return TFM_OK;
    }

    candidate *c = s->cand;
    int32_t n = 0;
    for (int32_t i = 0; i < n_vocab; i++)
        if (!isnan(w[i])) c[n++] = (candidate){w[i], i};
    if (n == 0) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_sampler_sample: every logit is NaN");
    if (p->top_k > 0 && p->top_k < n) {
        select_top(c, n, p->top_k);
        n = p->top_k;
    }
    qsort(c, (size_t)n, sizeof *c, by_logit_desc);

    /* softmax at temperature, in double for a stable cumulative sum */
    double max = c[0].logit, sum = 0;
    double *prob = s->prob;
    for (int32_t i = 0; i < n; i++) {
        /* An infinite maximum would make inf - inf = NaN: then the tokens holding it share all
         * the mass (the limit of the softmax as their logits grow together). */
        prob[i] = isinf(max) ? (c[i].logit == max) : exp(((double)c[i].logit - max) / p->temperature);
        sum += prob[i];
    }
    /* top-p: the smallest prefix whose mass reaches top_p */
    int32_t keep = n;
    if (p->top_p < 1.0f) {
        double cum = 0;
        for (int32_t i = 0; i < n; i++) {
            cum += prob[i] / sum;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    /* min-p: drop tokens less likely than min_p times the most likely one */
    if (p->min_p > 0) {
        for (int32_t i = 1; i < keep; i++)
            if (prob[i] < p->min_p * prob[0]) {
                keep = i;
                break;
            }
    }
    double total = 0;
    for (int32_t i = 0; i < keep; i++) total += prob[i];
    double r = next_uniform(&s->rng) * total, acc = 0;
    for (int32_t i = 0; i < keep; i++) {
        acc += prob[i];
        if (r < acc) {
            *id = c[i].id;
            return TFM_OK;
        }
    }
    *id = c[keep - 1].id;
    return TFM_OK;
}
