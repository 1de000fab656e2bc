/*
 * gguf_model.c — describes a GGUF "llama" model as a tfm_model_source.
 *
 * Conventions (llama.cpp's, see docs/formats.md):
 *   - hyper-parameters come from the llama.* keys;
 *   - tensor ne[0] is the contiguous dimension: a matrix [rows = out features][cols = in features]
 *     is stored with ne = {cols, rows}, so rows = ne[1] and cols = ne[0];
 *   - llama.cpp's converter permutes the rows of attn_q / attn_k so that RoPE rotates adjacent
 *     pairs (x[2i], x[2i+1]); the weights are therefore used with TFM_ROPE_ADJACENT as stored;
 *   - output.weight absent means the LM head is tied to token_embd.weight.
 *
 * The parsed file (and the per-layer tensor table) live in the reader state, released with the model.
 * Every tensor in the file must be one this reader understands: an unknown one (a bias, an expert
 * table) would otherwise be silently ignored and the model computed wrongly.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "formats/gguf.h"
#include "formats/weight_checks.h"
#include "model.h"
#include "tokenizer/tokenizer.h"

/*
 * The one switch for quantised GGUF weights (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K). On: the cpu backend
 * computes each of them in matmul (any batch size) and in the embedding lookup, so a tied LM head works
 * too. A backend that lacks a type refuses it in weight_load, and the model load then fails with
 * TFM_E_UNSUPPORTED naming the tensor, the type and the backend (lib/model.c).
 */
#define GGUF_MODEL_ALLOW_QUANTISED 1

static int dtype_enabled(tfm_dtype dtype)
{
    switch (dtype) {
    case TFM_DTYPE_F32: case TFM_DTYPE_F16: case TFM_DTYPE_BF16:
        return 1;
    case TFM_DTYPE_Q8_0: case TFM_DTYPE_Q4_0: case TFM_DTYPE_Q4_K: case TFM_DTYPE_Q5_K: case TFM_DTYPE_Q6_K:
        return GGUF_MODEL_ALLOW_QUANTISED;
    default:
        return 0;
    }
}

typedef struct gguf_model_state {
    gguf_file *file;
    tfm_host_tensor *layers;
} gguf_model_state;

static void release_state(void *p)
{
    gguf_model_state *s = p;
    if (!s)
        return;
    gguf_free(s->file);
    free(s->layers);
    free(s);
}

/* ------------------------------------------------------------------------------------------------
 * Hyper-parameters
 * ---------------------------------------------------------------------------------------------- */
static const char *kv_type_name(const gguf_kv *kv)
{
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                  "bool", "string", "array", "uint64", "int64", "float64"};
    return (unsigned)kv->type < sizeof(names) / sizeof(names[0]) ? names[kv->type] : "invalid";
}

/* Integer key in [lo, hi]. Returns TFM_OK and leaves *out untouched when absent and !required. */
static tfm_status get_int(const gguf_file *f, const char *label, const char *key, int required, int64_t lo,
                          int64_t hi, int32_t *out)
{
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) {
        if (required)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF key '%s' is missing (expected an integer in %" PRId64
                             "..%" PRId64 ")", label, key, lo, hi);
        return TFM_OK;
    }
    int64_t v;
    if (!gguf_get_int(f, key, &v))
        return tfm_error(TFM_E_FORMAT, "%s: GGUF key '%s' has type %s, expected an integer", label, key,
                         kv_type_name(kv));
    if (v < lo || v > hi)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF key '%s' = %" PRId64 " is out of range %" PRId64 "..%" PRId64,
                         label, key, v, lo, hi);
    *out = (int32_t)v;
    return TFM_OK;
}

/* Float key, finite and in (lo, hi]. Absent and !required: *out untouched. */
static tfm_status get_float(const gguf_file *f, const char *label, const char *key, int required, double lo,
                            double hi, float *out)
{
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) {
        if (required)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF key '%s' is missing (expected a float32)", label, key);
        return TFM_OK;
    }
    double v;
    if (!gguf_get_float(f, key, &v))
        return tfm_error(TFM_E_FORMAT, "%s: GGUF key '%s' has type %s, expected float32", label, key,
                         kv_type_name(kv));
    if (!isfinite(v) || !(v > lo) || v > hi)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF key '%s' = %g is out of range (%g, %g]", label, key, v, lo, hi);
    *out = (float)v;
    return TFM_OK;
}

/* A file string made printable for messages: at most 48 bytes, other bytes as '?'. */
typedef struct { char s[52]; } printable;
static printable show(gguf_str str)
{
    printable out;
    size_t n = str.len < 48 ? (size_t)str.len : 48;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)str.ptr[i];
        out.s[i] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    if (str.len > 48) { memcpy(out.s + n, "...", 3); n += 3; }
    out.s[n] = 0;
    return out;
}

static int str_eq(gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

static tfm_status read_rope_scaling(const gguf_file *f, const char *label, tfm_hparams *hp)
{
    hp->rope_scaling = TFM_ROPE_SCALING_NONE;
    hp->rope_factor = 1.0f;
    gguf_str type;
    const gguf_kv *kv = gguf_find(f, "llama.rope.scaling.type");
    if (kv && !gguf_get_str(f, "llama.rope.scaling.type", &type))
        return tfm_error(TFM_E_FORMAT, "%s: GGUF key 'llama.rope.scaling.type' has type %s, expected string",
                         label, kv_type_name(kv));
    if (kv) {
        if (str_eq(type, "none"))
            return TFM_OK;
        if (!str_eq(type, "linear"))
            return tfm_error(TFM_E_UNSUPPORTED, "%s: GGUF rope scaling type '%s' is not supported (none, linear)",
                             label, show(type).s);
        tfm_status st = get_float(f, label, "llama.rope.scaling.factor", 1, 0, 1e6, &hp->rope_factor);
        if (st) return st;
        hp->rope_scaling = TFM_ROPE_SCALING_LINEAR;
        return TFM_OK;
    }
    /* the older key for linear scaling */
    float scale = 1.0f;
    tfm_status st = get_float(f, label, "llama.rope.scale_linear", 0, 0, 1e6, &scale);
    if (st) return st;
    if (scale != 1.0f) {
        hp->rope_scaling = TFM_ROPE_SCALING_LINEAR;
        hp->rope_factor = scale;
    }
    return TFM_OK;
}

/*
 * Llama-3.1-style RoPE: llama.cpp's converter stores the per-dimension divisors of the inverse
 * frequencies as rope_freqs.weight (f32, head_dim/2) instead of the parameters. They follow
 *   f_i = 1                                   for wavelengths below orig_ctx / high
 *   f_i = factor                              for wavelengths above orig_ctx / low
 *   1/f_i = (1 - s)/factor + s, s = (orig_ctx/wavelen - low)/(high - low)   in between,
 * so the parameters are recovered (orig_ctx from the metadata, 8192 by default) and the whole table is
 * checked against them; any other table is reported as unsupported rather than ignored.
 */
static tfm_status read_rope_freqs(const gguf_file *f, const char *label, tfm_hparams *hp, const gguf_tensor *t)
{
    int half = hp->head_dim / 2;
    if (half < 1 || half > 512)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: GGUF rope_freqs.weight with a head dimension of %d is not supported",
                         label, hp->head_dim);
    if (!t->supported || t->ggml_type != 0 || t->n_dims != 1 || t->ne[0] != half)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor 'rope_freqs.weight' is %s [%" PRId64 "], expected f32 [%d]",
                         label, gguf_type_name(t->ggml_type), t->ne[0], half);
    const uint8_t *p = t->data;
    double fi[512], wl[512];
    double factor = 1.0;
    for (int i = 0; i < half; i++) {
        float v;
        memcpy(&v, p + 4 * (size_t)i, 4);
        if (!isfinite(v) || !(v > 0))
            return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor 'rope_freqs.weight' element %d is %g, expected > 0",
                             label, i, v);
        fi[i] = v;
        wl[i] = 2.0 * M_PI * pow(hp->rope_theta, (2.0 * i) / hp->head_dim);
        if (v > factor) factor = v;
    }
    if (factor == 1.0) {
        int all_one = 1;
        for (int i = 0; i < half; i++) all_one &= fi[i] == 1.0;
        if (all_one) return TFM_OK;
    }

    int32_t orig = 8192;
    tfm_status st = get_int(f, label, "llama.rope.scaling.original_context_length", 0, 1, 1 << 24, &orig);
    if (st) return st;

    /*
     * With s = a / wavelen - b, find a and b. Entries are classified as 1 (short wavelengths), `factor`
     * (long ones) or in between (the smooth band); the band's extreme entries give a and b. When the
     * band holds fewer than two entries the parameters are not unique, and any band lying between the
     * neighbouring entries reproduces the table exactly: its edges are put well inside those gaps.
     */
    int first = -1, last = -1, last_one = -1, first_full = -1;
    for (int i = 0; i < half; i++) {
        if (fi[i] <= 1.0 + 1e-6) last_one = i;
        else if (fi[i] >= factor * (1.0 - 1e-6)) { if (first_full < 0) first_full = i; }
        else { if (first < 0) first = i; last = i; }
    }
    if (!(factor > 1.0))
        goto unsupported;
    if (last_one < 0 && first < 0) {
        /* every frequency divided by the same factor: linear scaling */
        hp->rope_scaling = TFM_ROPE_SCALING_LINEAR;
        hp->rope_factor = (float)factor;
        return TFM_OK;
    }
    double w_one = last_one >= 0 ? wl[last_one] : wl[0] / 4;             /* last wavelength kept as is */
    double w_full = first_full >= 0 ? wl[first_full] : wl[half - 1] * 4; /* first one fully divided */
    double a, b;
    if (first >= 0 && first != last) {
        double s0 = (1.0 / fi[first] - 1.0 / factor) / (1.0 - 1.0 / factor);
        double s1 = (1.0 / fi[last] - 1.0 / factor) / (1.0 - 1.0 / factor);
        a = (s0 - s1) / (1.0 / wl[first] - 1.0 / wl[last]);
        b = a / wl[first] - s0;
    } else if (first >= 0) {
        /* one entry k in the band: its upper edge (s = 1) half-way (geometrically) to the previous entry */
        double sk = (1.0 / fi[first] - 1.0 / factor) / (1.0 - 1.0 / factor);
        double w_hi = sqrt(w_one * wl[first]);
        a = (1.0 - sk) / (1.0 / w_hi - 1.0 / wl[first]);
        b = a / w_hi - 1.0;
    } else {
        /* no entry in the band: put it in the middle of the gap between the two classes */
        double c = pow(w_full / w_one, 0.25), g = sqrt(w_one * w_full);
        double w_hi = g / c, w_lo = g * c;
        a = 1.0 / (1.0 / w_hi - 1.0 / w_lo);
        b = a / w_lo;
    }
    if (!(a > 0) || !(b > 0) || !isfinite(a) || !isfinite(b))
        goto unsupported;
    double low = b * orig / a, high = low + orig / a;
    for (int i = 0; i < half; i++) {
        double want;
        if (wl[i] < orig / high) want = 1.0;
        else if (wl[i] > orig / low) want = factor;
        else {
            double s = (orig / wl[i] - low) / (high - low);
            want = 1.0 / ((1.0 - s) / factor + s);
        }
        if (fabs(want - fi[i]) > 1e-3 * want)
            goto unsupported;
    }
    hp->rope_scaling = TFM_ROPE_SCALING_LLAMA3;
    hp->rope_factor = (float)factor;
    /* the fitted values are exact up to float rounding; snap near-integers (Llama 3.x uses 1 and 4) */
    hp->rope_low_freq_factor = (float)(fabs(low - round(low)) < 1e-3 ? round(low) : low);
    hp->rope_high_freq_factor = (float)(fabs(high - round(high)) < 1e-3 ? round(high) : high);
    hp->rope_orig_ctx = orig;
    return TFM_OK;

unsupported:
    return tfm_error(TFM_E_UNSUPPORTED,
                     "%s: GGUF tensor 'rope_freqs.weight' holds per-dimension RoPE frequency factors that do not "
                     "follow Llama-3 scaling; libtfm cannot use them",
                     label);
}

static tfm_status read_hparams(const gguf_file *f, const char *label, tfm_hparams *hp)
{
    tfm_status st;
    memset(hp, 0, sizeof(*hp));
    if ((st = get_int(f, label, "llama.context_length", 1, 1, INT32_MAX, &hp->n_ctx_train))) return st;
    if ((st = get_int(f, label, "llama.embedding_length", 1, 1, INT32_MAX, &hp->n_embd))) return st;
    if ((st = get_int(f, label, "llama.block_count", 1, 1, 65536, &hp->n_layer))) return st;
    if ((st = get_int(f, label, "llama.feed_forward_length", 1, 1, INT32_MAX, &hp->n_ff))) return st;
    if ((st = get_int(f, label, "llama.attention.head_count", 1, 1, 65536, &hp->n_head))) return st;
    hp->n_head_kv = hp->n_head;
    if ((st = get_int(f, label, "llama.attention.head_count_kv", 0, 1, hp->n_head, &hp->n_head_kv))) return st;
    if (hp->n_head % hp->n_head_kv)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF llama.attention.head_count = %d is not a multiple of "
                         "llama.attention.head_count_kv = %d", label, hp->n_head, hp->n_head_kv);

    hp->rope_theta = 10000.0f;
    if ((st = get_float(f, label, "llama.rope.freq_base", 0, 0, 1e12, &hp->rope_theta))) return st;
    if ((st = get_float(f, label, "llama.attention.layer_norm_rms_epsilon", 1, 0, 1, &hp->rms_eps))) return st;

    /* head_dim: attention.key_length, else n_embd / n_head */
    int32_t key_len = 0, value_len = 0, rope_dims = 0;
    if ((st = get_int(f, label, "llama.attention.key_length", 0, 1, 65536, &key_len))) return st;
    if ((st = get_int(f, label, "llama.attention.value_length", 0, 1, 65536, &value_len))) return st;
    if (key_len) {
        hp->head_dim = key_len;
    } else {
        if (hp->n_embd % hp->n_head)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF llama.embedding_length = %d is not a multiple of "
                             "llama.attention.head_count = %d (and no llama.attention.key_length is given)",
                             label, hp->n_embd, hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    if (value_len && value_len != hp->head_dim)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: GGUF llama.attention.value_length = %d differs from the key "
                         "length %d; libtfm needs them equal", label, value_len, hp->head_dim);
    if ((st = get_int(f, label, "llama.rope.dimension_count", 0, 1, 65536, &rope_dims))) return st;
    if (rope_dims && rope_dims != hp->head_dim)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: GGUF llama.rope.dimension_count = %d rotates part of a head of %d; "
                         "libtfm supports full-head RoPE only", label, rope_dims, hp->head_dim);
    hp->rope_pairing = TFM_ROPE_ADJACENT;

    int32_t n_expert = 0;
    if ((st = get_int(f, label, "llama.expert_count", 0, 0, 65536, &n_expert))) return st;
    if (n_expert > 0)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: GGUF llama model with %d experts (mixture of experts) is not supported",
                         label, n_expert);

    return read_rope_scaling(f, label, hp);
}

/* n_vocab: llama.vocab_size, else the tokenizer's token count, else token_embd's rows. */
static tfm_status read_vocab_size(const gguf_file *f, const char *label, const gguf_tensor *embd, tfm_hparams *hp)
{
    int32_t n = 0;
    tfm_status st = get_int(f, label, "llama.vocab_size", 0, 1, INT32_MAX, &n);
    if (st) return st;
    const gguf_kv *tokens = gguf_find(f, "tokenizer.ggml.tokens");
    if (!n && tokens && tokens->type == GGUF_TYPE_ARRAY) {
        if (tokens->array_len > INT32_MAX)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF tokenizer.ggml.tokens has %" PRIu64 " entries", label,
                             tokens->array_len);
        n = (int32_t)tokens->array_len;
    }
    if (!n && embd && embd->ne[1] <= INT32_MAX)
        n = (int32_t)embd->ne[1];
    if (!n)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF vocabulary size unknown: no llama.vocab_size, no tokenizer.ggml.tokens",
                         label);
    hp->n_vocab = n;
    return TFM_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Tensors
 * ---------------------------------------------------------------------------------------------- */
typedef struct binder {
    const gguf_file *f;
    const char *label;
    unsigned char *used;   /* one flag per tensor in the file */
} binder;

/*
 * Finds tensor `name` and fills `out`: a vector when rows == 0 (ne = {cols}), else a matrix
 * (ne = {cols, rows}). Shapes are checked here because the messages can name the GGUF dimensions.
 */
static tfm_status bind(binder *b, const char *name, int64_t rows, int64_t cols, int required, tfm_host_tensor *out)
{
    memset(out, 0, sizeof(*out));
    const gguf_tensor *t = gguf_find_tensor(b->f, name);
    if (!t) {
        if (!required)
            return TFM_OK;
        if (rows)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor '%s' is missing (expected ne = [%" PRId64 ", %" PRId64 "])",
                             b->label, name, cols, rows);
        return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor '%s' is missing (expected ne = [%" PRId64 "])", b->label,
                         name, cols);
    }
    b->used[t - b->f->tensors] = 1;

    int64_t want[4] = {cols, rows ? rows : 1, 1, 1};
    if (t->ne[0] != want[0] || t->ne[1] != want[1] || t->ne[2] != 1 || t->ne[3] != 1) {
        if (rows)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor '%s' has ne = [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                             "], expected [%" PRId64 ", %" PRId64 "] (ne[0] = input features)",
                             b->label, name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], cols, rows);
        return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor '%s' has ne = [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                         "], expected [%" PRId64 "]", b->label, name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], cols);
    }
    if (!t->supported)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: GGUF tensor '%s' has type %s, which libtfm does not support",
                         b->label, name, gguf_type_name(t->ggml_type));
    if (!dtype_enabled(t->dtype))
        return tfm_error(TFM_E_UNSUPPORTED, "%s: GGUF tensor '%s' has type %s; libtfm reads f32, f16, bf16, q8_0, "
                         "q4_0, q4_k, q5_k and q6_k GGUF weights", b->label, name, gguf_type_name(t->ggml_type));

    out->data = t->data;
    out->dtype = t->dtype;
    out->rows = rows ? rows : 1;
    out->cols = cols;
    out->nbytes = t->nbytes;
    snprintf(out->name, sizeof(out->name), "%s", name);
    return tfm_check_finite(out, b->label); /* NaN/Inf weights: refused here, named (weight_checks.h) */
}

static tfm_status bind_tensors(binder *b, const tfm_hparams *hp, tfm_model_source *out, tfm_host_tensor *layers)
{
    tfm_status st;
    const int64_t d = hp->n_embd, v = hp->n_vocab, ff = hp->n_ff;
    const int64_t q = (int64_t)hp->n_head * hp->head_dim, kv = (int64_t)hp->n_head_kv * hp->head_dim;
    if ((st = bind(b, "token_embd.weight", v, d, 1, &out->tok_embd))) return st;
    if ((st = bind(b, "output_norm.weight", 0, d, 1, &out->output_norm))) return st;
    if ((st = bind(b, "output.weight", v, d, 0, &out->output))) return st;

    static const char *suffix[TFM_L_COUNT] = {
        [TFM_L_ATTN_NORM] = "attn_norm", [TFM_L_WQ] = "attn_q", [TFM_L_WK] = "attn_k", [TFM_L_WV] = "attn_v",
        [TFM_L_WO] = "attn_output", [TFM_L_FFN_NORM] = "ffn_norm", [TFM_L_W_GATE] = "ffn_gate",
        [TFM_L_W_UP] = "ffn_up", [TFM_L_W_DOWN] = "ffn_down"};
    const int64_t shape[TFM_L_COUNT][2] = {       /* {rows (0 = vector), cols} */
        [TFM_L_ATTN_NORM] = {0, d}, [TFM_L_WQ] = {q, d}, [TFM_L_WK] = {kv, d}, [TFM_L_WV] = {kv, d},
        [TFM_L_WO] = {d, q}, [TFM_L_FFN_NORM] = {0, d}, [TFM_L_W_GATE] = {ff, d}, [TFM_L_W_UP] = {ff, d},
        [TFM_L_W_DOWN] = {d, ff}};
    for (int l = 0; l < hp->n_layer; l++) {
        for (int r = 0; r < TFM_L_COUNT; r++) {
            char name[64];
            snprintf(name, sizeof(name), "blk.%d.%s.weight", l, suffix[r]);
            if ((st = bind(b, name, shape[r][0], shape[r][1], 1, &layers[(size_t)l * TFM_L_COUNT + r]))) return st;
        }
    }

    /* Tensors nothing above claimed: Llama-3 RoPE factors are understood, anything else is refused. */
    for (uint64_t i = 0; i < b->f->n_tensors; i++) {
        if (b->used[i])
            continue;
        const gguf_tensor *t = &b->f->tensors[i];
        if (str_eq(t->name, "rope_freqs.weight"))
            continue;
        return tfm_error(TFM_E_UNSUPPORTED, "%s: GGUF tensor '%s' (tensor %" PRIu64 ") is not part of the llama "
                         "architecture libtfm implements (biases, experts and extra blocks are not supported)",
                         b->label, show(t->name).s, i);
    }
    return TFM_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Entry point
 * ---------------------------------------------------------------------------------------------- */
static tfm_status describe(const gguf_file *f, const char *label, gguf_model_state *state, tfm_model_source *out)
{
    tfm_status st;
    gguf_str arch;
    const gguf_kv *arch_kv = gguf_find(f, "general.architecture");
    if (!arch_kv)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF key 'general.architecture' is missing (expected a string "
                         "such as \"llama\")", label);
    if (!gguf_get_str(f, "general.architecture", &arch))
        return tfm_error(TFM_E_FORMAT, "%s: GGUF key 'general.architecture' has type %s, expected string", label,
                         kv_type_name(arch_kv));
    if (!str_eq(arch, "llama"))
        return tfm_error(TFM_E_UNSUPPORTED, "%s: GGUF architecture '%s' is not supported (supported: llama)", label,
                         show(arch).s);
    snprintf(out->architecture, sizeof(out->architecture), "llama");
    gguf_str name;
    if (gguf_get_str(f, "general.name", &name)) {
        size_t n = name.len < sizeof(out->name) - 1 ? (size_t)name.len : sizeof(out->name) - 1;
        memcpy(out->name, name.ptr, n);
        out->name[n] = 0; /* an embedded NUL simply ends the name early */
        tfm_utf8_sanitize(out->name); /* tfm_model_info.name is UTF-8 text (also when cut at 127 bytes) */
    }

    if ((st = read_hparams(f, label, &out->hp))) return st;
    if ((st = read_vocab_size(f, label, gguf_find_tensor(f, "token_embd.weight"), &out->hp))) return st;
    const gguf_tensor *freqs = gguf_find_tensor(f, "rope_freqs.weight");
    if (freqs && (st = read_rope_freqs(f, label, &out->hp, freqs))) return st;

    if ((uint64_t)out->hp.n_layer * TFM_L_COUNT > f->n_tensors)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF llama.block_count = %d needs %d tensors per block but the file holds "
                         "%" PRIu64 " tensors", label, out->hp.n_layer, TFM_L_COUNT, f->n_tensors);
    state->layers = calloc((size_t)out->hp.n_layer * TFM_L_COUNT, sizeof(tfm_host_tensor));
    binder b = {f, label, calloc(f->n_tensors ? (size_t)f->n_tensors : 1, 1)};
    if (!state->layers || !b.used) {
        free(b.used);
        return tfm_error(TFM_E_OOM, "%s: cannot allocate the tensor table of %d layers", label, out->hp.n_layer);
    }
    st = bind_tensors(&b, &out->hp, out, state->layers);
    free(b.used);
    if (st) return st;
    out->layers = state->layers;

    return tfm_tokenizer_from_gguf(f, label, &out->tokenizer);
}

tfm_status tfm_gguf_model_source(const void *data, size_t size, const char *label, tfm_model_source *out)
{
    if (!out)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_gguf_model_source: out is NULL");
    memset(out, 0, sizeof(*out));
    if (!label)
        label = "<memory>";

    gguf_model_state *state = calloc(1, sizeof(*state));
    if (!state)
        return tfm_error(TFM_E_OOM, "%s: out of memory", label);
    tfm_status st = gguf_parse(data, size, label, &state->file);
    if (!st)
        st = describe(state->file, label, state, out);
    if (st) {
        tfm_tokenizer_free(out->tokenizer);
        release_state(state);
        memset(out, 0, sizeof(*out));
        return st;
    }
    out->format = "gguf";
    out->reader_state = state;
    out->release = release_state;
    return TFM_OK;
}
