/*
 * model.c — tfm_model_load: pick the format reader, validate hyper-parameters and tensor shapes,
 * bind the weights to the chosen backend, and precompute the RoPE frequencies.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "registry.h"
#include "tensor.h"
#include "tokenizer/tokenizer.h"
#include "util/half.h"

/* Generous upper bounds: anything larger is a hostile or corrupt file, not a model. */
#define MAX_EMBD (1 << 16)
#define MAX_LAYERS 1024
#define MAX_HEADS 1024
#define MAX_HEAD_DIM 1024
#define MAX_FF (1 << 20)
#define MAX_VOCAB (1 << 22)
#define MAX_CTX (1 << 24)

static tfm_model_params model_params_defaults(void) {
    tfm_model_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.backend = "auto";
    return p;
}

TFM_API void tfm_model_params_init(tfm_model_params *params, size_t struct_size) {
    if (!params || struct_size < sizeof params->struct_size) return;
    tfm_model_params p = model_params_defaults();
    memset(params, 0, struct_size);
    memcpy(params, &p, struct_size < sizeof p ? struct_size : sizeof p);
    params->struct_size = struct_size;
}

/* Copies the caller's params field by field, up to the size the caller compiled with. */
static tfm_status read_model_params(const tfm_model_params *in, tfm_model_params *out) {
    *out = model_params_defaults();
    if (!in) return TFM_OK;
    if (in->struct_size < offsetof(tfm_model_params, backend) + sizeof in->backend)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_model_params.struct_size %zu is too small; "
                         "initialise params with tfm_model_params_default()", in->struct_size);
    size_t n = in->struct_size < sizeof *out ? in->struct_size : sizeof *out;
    memcpy(out, in, n);
    out->struct_size = sizeof *out;
    if (!out->backend) out->backend = "auto";
    if (out->n_threads < 0 || out->n_threads > 1024)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "n_threads %d is out of range 0..1024", out->n_threads);
    return TFM_OK;
}

static tfm_status check_hparams(const tfm_hparams *hp, const char *label) {
#define RANGE(v, lo, hi)                                                                                  \
    if ((v) < (lo) || (v) > (hi))                                                                         \
        return tfm_error(TFM_E_FORMAT, "%s: %s = %lld is out of range %lld..%lld", label, #v,            \
                         (long long)(v), (long long)(lo), (long long)(hi));
    RANGE(hp->n_vocab, 1, MAX_VOCAB);
    RANGE(hp->n_embd, 1, MAX_EMBD);
    RANGE(hp->n_layer, 1, MAX_LAYERS);
    RANGE(hp->n_head, 1, MAX_HEADS);
    RANGE(hp->n_head_kv, 1, hp->n_head);
    RANGE(hp->head_dim, 2, MAX_HEAD_DIM);
    RANGE(hp->n_ff, 1, MAX_FF);
    RANGE(hp->n_ctx_train, 1, MAX_CTX);
#undef RANGE
    if (hp->n_head % hp->n_head_kv)
        return tfm_error(TFM_E_FORMAT, "%s: %d attention heads do not divide into %d kv heads", label,
                         hp->n_head, hp->n_head_kv);
    if (hp->head_dim % 2)
        return tfm_error(TFM_E_FORMAT, "%s: head dimension %d is odd; RoPE needs pairs", label, hp->head_dim);
    if (!(hp->rope_theta > 0) || !isfinite(hp->rope_theta))
        return tfm_error(TFM_E_FORMAT, "%s: rope theta %g is not a positive number", label, hp->rope_theta);
    if (!(hp->rms_eps > 0) || hp->rms_eps > 1)
        return tfm_error(TFM_E_FORMAT, "%s: rms epsilon %g is out of range (0, 1]", label, hp->rms_eps);
    if (hp->rope_scaling != TFM_ROPE_SCALING_NONE && !(hp->rope_factor >= 1 && hp->rope_factor < 1e6))
        return tfm_error(TFM_E_FORMAT, "%s: rope scaling factor %g is out of range [1, 1e6)", label, hp->rope_factor);
    if (hp->rope_scaling == TFM_ROPE_SCALING_LLAMA3 &&
        !(hp->rope_orig_ctx > 0 && hp->rope_low_freq_factor > 0 && hp->rope_high_freq_factor > hp->rope_low_freq_factor))
        return tfm_error(TFM_E_FORMAT, "%s: llama3 rope scaling needs original context > 0 and "
                         "high_freq_factor > low_freq_factor > 0", label);
    return TFM_OK;
}

/* Checks that a host tensor exists with the expected shape and that its byte size matches. */
static tfm_status check_tensor(const tfm_host_tensor *t, const char *role, int64_t rows, int64_t cols,
                               const char *label) {
    if (!t->data) return tfm_error(TFM_E_FORMAT, "%s: tensor %s is missing", label, role);
    int is_vector = rows == 1;
    int64_t n = t->rows * t->cols;
    if (is_vector ? n != cols : (t->rows != rows || t->cols != cols))
        return tfm_error(TFM_E_FORMAT, "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", label,
                         t->name, (long long)t->rows, (long long)t->cols, (long long)rows, (long long)cols);
    size_t row_bytes = tfm_row_bytes(t->dtype, t->cols);
    if (!row_bytes)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: tensor '%s' has dtype %s with %lld columns, which libtfm cannot use",
                         label, t->name, tfm_dtype_name(t->dtype), (long long)t->cols);
    if ((uint64_t)row_bytes * (uint64_t)t->rows != t->nbytes)
        return tfm_error(TFM_E_FORMAT, "%s: tensor '%s' holds %llu bytes, expected %llu", label, t->name,
                         (unsigned long long)t->nbytes, (unsigned long long)row_bytes * (uint64_t)t->rows);
    if (is_vector && t->dtype != TFM_DTYPE_F32 && t->dtype != TFM_DTYPE_F16 && t->dtype != TFM_DTYPE_BF16)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: norm tensor '%s' has dtype %s (needs f32, f16 or bf16)", label,
                         t->name, tfm_dtype_name(t->dtype));
    return TFM_OK;
}

static const char *layer_role_name(int role) {
    static const char *names[TFM_L_COUNT] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                             "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
    return names[role];
}

static tfm_status check_shapes(const tfm_model_source *src, const char *label) {
    const tfm_hparams *hp = &src->hp;
    int64_t d = hp->n_embd, q = (int64_t)hp->n_head * hp->head_dim, kv = (int64_t)hp->n_head_kv * hp->head_dim;
    tfm_status st;
    if ((st = check_tensor(&src->tok_embd, "token_embd", hp->n_vocab, d, label))) return st;
    if ((st = check_tensor(&src->output_norm, "output_norm", 1, d, label))) return st;
    if (src->output.data && (st = check_tensor(&src->output, "output", hp->n_vocab, d, label))) return st;
    if (!src->layers) return tfm_error(TFM_E_FORMAT, "%s: no layers", label);
    const int64_t shape[TFM_L_COUNT][2] = {{1, d}, {q, d}, {kv, d}, {kv, d}, {d, q}, {1, d}, {hp->n_ff, d},
                                           {hp->n_ff, d}, {d, hp->n_ff}};
    for (int l = 0; l < hp->n_layer; l++) {
        for (int r = 0; r < TFM_L_COUNT; r++) {
            char role[64];
            snprintf(role, sizeof role, "blk.%d.%s", l, layer_role_name(r));
            st = check_tensor(&src->layers[l * TFM_L_COUNT + r], role, shape[r][0], shape[r][1], label);
            if (st) return st;
        }
    }
    return TFM_OK;
}

/* RoPE inverse frequencies, with the source's frequency scaling applied. */
static void compute_inv_freq(const tfm_hparams *hp, float *out) {
    int half = hp->head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* HF computes theta^(-2i/d) in float32; do the same so both agree to the last bit. */
        float exponent = (float)(2 * i) / (float)hp->head_dim;
        float freq = 1.0f / powf(hp->rope_theta, exponent);
        if (hp->rope_scaling == TFM_ROPE_SCALING_LINEAR) {
            freq /= hp->rope_factor;
        } else if (hp->rope_scaling == TFM_ROPE_SCALING_LLAMA3) {
            float low_wavelen = (float)hp->rope_orig_ctx / hp->rope_low_freq_factor;
            float high_wavelen = (float)hp->rope_orig_ctx / hp->rope_high_freq_factor;
            float wavelen = 2.0f * (float)M_PI / freq;
            if (wavelen > low_wavelen) {
                freq /= hp->rope_factor;
            } else if (wavelen >= high_wavelen) {
                float smooth = ((float)hp->rope_orig_ctx / wavelen - hp->rope_low_freq_factor) /
                               (hp->rope_high_freq_factor - hp->rope_low_freq_factor);
                freq = (1.0f - smooth) * freq / hp->rope_factor + smooth * freq;
            }
        }
        out[i] = freq;
    }
}

/* Norm gains become f32 host arrays (the backends take f32 gains); others are used as stored. */
static tfm_status bind_weight(tfm_model *m, tfm_weight *w, const tfm_host_tensor *t, int is_norm) {
    const void *data = t->data;
    tfm_dtype dtype = t->dtype;
    int64_t rows = is_norm ? 1 : t->rows, cols = is_norm ? t->rows * t->cols : t->cols;
    if (is_norm && dtype != TFM_DTYPE_F32) {
        float *f = malloc((size_t)cols * sizeof *f);
        if (!f) return tfm_error(TFM_E_OOM, "cannot allocate %lld floats for '%s'", (long long)cols, t->name);
        const uint16_t *h = data;
        for (int64_t i = 0; i < cols; i++) {
            f[i] = dtype == TFM_DTYPE_BF16 ? tfm_bf16_to_float(h[i]) : tfm_half_to_float(h[i]);
        }
        /* Kept in the model's list of converted arrays, freed with it. */
        float **grown = realloc(m->converted, (size_t)(m->n_converted + 1) * sizeof *grown);
        if (!grown) {
            free(f);
            return tfm_error(TFM_E_OOM, "out of memory");
        }
        m->converted = grown;
        m->converted[m->n_converted++] = f;
        data = f;
        dtype = TFM_DTYPE_F32;
    }
    const char *file = m->file.is_mapped ? m->file.data : NULL;
    if (file && (const char *)data >= file && (size_t)((const char *)data - file) <= m->file.size &&
        t->nbytes <= m->file.size - (size_t)((const char *)data - file))
        w->flags |= TFM_WEIGHT_HOST_MAPPED;
    tfm_status st = m->ops->weight_load(m->be, w, data, dtype, rows, cols);
    if (st) return tfm_error(st, "%s: cannot load tensor '%s' on backend %s: %s", m->name, t->name,
                             m->ops->name, tfm_last_error());
    return TFM_OK;
}

static int is_directory(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static tfm_status report_progress(const tfm_model_params *p, float progress) {
    if (p->progress && p->progress(progress, p->progress_user_data))
        return tfm_error(TFM_E_ABORTED, "loading cancelled by the progress callback at %.0f%%", progress * 100);
    return TFM_OK;
}

static int is_auto(const char *backend) { return !backend || !*backend || strcmp(backend, "auto") == 0; }

/* Whether the model's backend accepts a weight of `dtype`: loads (and frees) one zeroed row of
 * 256 columns, a whole block of every block-quantised type. */
static int backend_takes_dtype(tfm_model *m, tfm_dtype dtype) {
    size_t bytes = tfm_row_bytes(dtype, 256);
    if (!bytes) return 0;
    void *zeros = calloc(1, bytes);
    if (!zeros) return 0;
    tfm_weight w;
    memset(&w, 0, sizeof w);
    tfm_status st = m->ops->weight_load(m->be, &w, zeros, dtype, 1, 256);
    if (st == TFM_OK && m->ops->weight_free) m->ops->weight_free(m->be, &w);
    free(zeros);
    tfm_error_clear();
    return st == TFM_OK;
}

/* Whether the backend accepts every dtype among the model's matrices (norms are converted to f32). */
static int takes_every_dtype(tfm_model *m, const tfm_model_source *src) {
    tfm_dtype seen[16];
    int n_seen = 0;
    int n = m->hp.n_layer * TFM_L_COUNT + 2;
    for (int i = 0; i < n; i++) {
        const tfm_host_tensor *t = i < 2 ? (i == 0 ? &src->tok_embd : &src->output)
                                         : &src->layers[i - 2];
        if (!t->data) continue;
        int r = i < 2 ? -1 : (i - 2) % TFM_L_COUNT;
        if (r == TFM_L_ATTN_NORM || r == TFM_L_FFN_NORM) continue;
        int known = 0;
        for (int k = 0; k < n_seen; k++) known |= seen[k] == t->dtype;
        if (known) continue;
        if (!backend_takes_dtype(m, t->dtype)) return 0;
        if (n_seen < 16) seen[n_seen++] = t->dtype;
    }
    return 1;
}

static tfm_status start_backend(tfm_model *m, const char *name, const tfm_backend_init_params *bp) {
    const tfm_backend_ops *ops;
    tfm_status st = tfm_backend_select(name, &ops);
    if (st) return st;
    if ((st = ops->init(bp, tfm_backend_host_services(), &m->be)))
        return tfm_error(st, "backend %s failed to start: %s", ops->name, tfm_last_error());
    m->ops = ops;
    return TFM_OK;
}

static tfm_status build_model(tfm_model *m, const tfm_model_params *p, const char *label) {
    tfm_model_source *src = &m->src;
    tfm_status st;
    if ((st = check_hparams(&src->hp, label))) return st;
    if ((st = check_shapes(src, label))) return st;
    if ((st = report_progress(p, 0.05f))) return st;

    m->hp = src->hp;
    snprintf(m->architecture, sizeof m->architecture, "%s", src->architecture);
    snprintf(m->name, sizeof m->name, "%s", src->name[0] ? src->name : label);
    m->format = src->format;
    m->tokenizer = src->tokenizer;
    src->tokenizer = NULL;
    m->memory_limit = p->memory_limit;
    m->tied_embeddings = src->output.data == NULL;
    m->weight_dtype = src->layers[TFM_L_WQ].dtype;

    tfm_backend_init_params bp = {p->n_threads, p->device};
    if ((st = start_backend(m, p->backend, &bp))) return st;
    if (is_auto(p->backend) && strcmp(m->ops->name, "cpu") != 0 && !takes_every_dtype(m, src)) {
        /* e.g. cuda with a quantised file: "auto" means the best backend that can run the model. */
        tfm_log(TFM_LOG_INFO, "backend %s cannot hold this model's weights; using cpu", m->ops->name);
        m->ops->destroy(m->be);
        m->be = NULL;
        m->ops = NULL;
        if ((st = start_backend(m, "cpu", &bp))) return st;
    }
    const tfm_backend_ops *ops = m->ops;

    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) return tfm_error(TFM_E_OOM, "out of memory");
    if (!m->tied_embeddings) m->tok_embd.flags |= TFM_WEIGHT_EMBED_ONLY;
    if ((st = bind_weight(m, &m->tok_embd, &src->tok_embd, 0))) return st;
    if ((st = bind_weight(m, &m->output_norm, &src->output_norm, 1))) return st;
    if (!m->tied_embeddings && (st = bind_weight(m, &m->output, &src->output, 0))) return st;
    for (int l = 0; l < m->hp.n_layer; l++) {
        tfm_weight *w[TFM_L_COUNT] = {&m->layers[l].attn_norm, &m->layers[l].wq, &m->layers[l].wk,
                                      &m->layers[l].wv, &m->layers[l].wo, &m->layers[l].ffn_norm,
                                      &m->layers[l].w_gate, &m->layers[l].w_up, &m->layers[l].w_down};
        m->n_layers_bound = l + 1;  /* unbound weights are zeroed, which weight_free accepts */
        for (int r = 0; r < TFM_L_COUNT; r++) {
            const tfm_host_tensor *t = &src->layers[l * TFM_L_COUNT + r];
            if ((st = bind_weight(m, w[r], t, r == TFM_L_ATTN_NORM || r == TFM_L_FFN_NORM))) return st;
            m->weight_bytes += (int64_t)t->nbytes;
            m->n_params += t->rows * t->cols;
        }
        if ((st = report_progress(p, 0.05f + 0.9f * (float)(l + 1) / (float)m->hp.n_layer))) return st;
    }
    m->n_params += src->tok_embd.rows * src->tok_embd.cols + m->hp.n_embd;
    m->weight_bytes += (int64_t)src->tok_embd.nbytes + (int64_t)src->output_norm.nbytes;
    if (!m->tied_embeddings) {
        m->n_params += src->output.rows * src->output.cols;
        m->weight_bytes += (int64_t)src->output.nbytes;
    }

    int half = m->hp.head_dim / 2;
    float freq[MAX_HEAD_DIM / 2];
    compute_inv_freq(&m->hp, freq);
    m->inv_freq = ops->alloc(m->be, (size_t)half * sizeof(float));
    if (!m->inv_freq) return tfm_error(TFM_E_OOM, "backend %s: cannot allocate RoPE table: %s", ops->name, tfm_last_error());
    if ((st = ops->upload(m->be, m->inv_freq, freq, (size_t)half * sizeof(float)))) return st;
    if ((st = ops->sync(m->be))) return st;
    return report_progress(p, 1.0f);
}

TFM_API void tfm_model_free(tfm_model *m) {
    if (!m) return;
    if (m->be) {
        if (m->inv_freq) m->ops->free(m->be, m->inv_freq);
        if (m->ops->weight_free) {
            m->ops->weight_free(m->be, &m->tok_embd);
            m->ops->weight_free(m->be, &m->output_norm);
            if (!m->tied_embeddings) m->ops->weight_free(m->be, &m->output);
            for (int l = 0; l < m->n_layers_bound; l++) {
                tfm_layer *L = &m->layers[l];
                tfm_weight *w[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo,
                                   &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down};
                for (size_t i = 0; i < sizeof w / sizeof *w; i++) m->ops->weight_free(m->be, w[i]);
            }
        }
        m->ops->destroy(m->be);
    }
    for (int i = 0; i < m->n_converted; i++) free(m->converted[i]);
    free(m->converted);
    free(m->layers);
    tfm_tokenizer_free(m->tokenizer);
    tfm_model_source_release(&m->src);
    tfm_unmap_file(&m->file);
    pthread_mutex_destroy(&m->forward_lock);
    free(m);
}

void tfm_model_source_release(tfm_model_source *src) {
    if (src->release) src->release(src->reader_state);
    src->release = NULL;
    src->reader_state = NULL;
    tfm_tokenizer_free(src->tokenizer);
    src->tokenizer = NULL;
}

static tfm_model *new_model(void) {
    tfm_model *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->forward_lock, NULL);
    return m;
}

static int has_gguf_magic(const void *data, size_t size) {
    return size >= 4 && memcmp(data, "GGUF", 4) == 0;
}

static tfm_status finish_load(tfm_model *m, const tfm_model_params *p, const char *label, tfm_model **out) {
    tfm_status st = build_model(m, p, label);
    if (st) {
        tfm_model_free(m);
        return st;
    }
    *out = m;
    return TFM_OK;
}

TFM_API tfm_status tfm_model_load(const char *path, const tfm_model_params *params, tfm_model **out) {
    tfm_error_clear();
    if (!out) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_model_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_model_load: path is NULL or empty");
    tfm_model_params p;
    tfm_status st = read_model_params(params, &p);
    if (st) return st;
    if ((st = report_progress(&p, 0.0f))) return st;

    tfm_model *m = new_model();
    if (!m) return tfm_error(TFM_E_OOM, "out of memory");
    if (is_directory(path)) {
        st = tfm_hf_model_source(path, &m->src);
    } else {
        st = tfm_map_file(path, &m->file);
        if (!st && !has_gguf_magic(m->file.data, m->file.size))
            st = tfm_error(TFM_E_FORMAT, "%s: not a GGUF file (no 'GGUF' magic) and not a model directory", path);
        if (!st) st = tfm_gguf_model_source(m->file.data, m->file.size, path, &m->src);
    }
    if (st) {
        tfm_model_free(m);
        return st;
    }
    return finish_load(m, &p, path, out);
}

TFM_API tfm_status tfm_model_load_from_memory(const void *data, size_t size, const tfm_model_params *params,
                                              tfm_model **out) {
    tfm_error_clear();
    if (!out) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_model_load_from_memory: out is NULL");
    *out = NULL;
    if (!data) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_model_load_from_memory: data is NULL");
    tfm_model_params p;
    tfm_status st = read_model_params(params, &p);
    if (st) return st;
    if (!has_gguf_magic(data, size))
        return tfm_error(TFM_E_FORMAT, "memory buffer of %zu bytes: not a GGUF model (no 'GGUF' magic)", size);
    tfm_model *m = new_model();
    if (!m) return tfm_error(TFM_E_OOM, "out of memory");
    st = tfm_gguf_model_source(data, size, "memory buffer", &m->src);
    if (st) {
        tfm_model_free(m);
        return st;
    }
    return finish_load(m, &p, "memory buffer", out);
}

TFM_API tfm_status tfm_model_get_info(const tfm_model *m, tfm_model_info *info) {
    tfm_error_clear();
    if (!m || !info) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_model_get_info: NULL argument");
    if (info->struct_size < offsetof(tfm_model_info, n_vocab))
        return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_model_info.struct_size %zu is too small", info->struct_size);
    tfm_model_info full;
    memset(&full, 0, sizeof full);
    full.struct_size = sizeof full;
    full.architecture = m->architecture;
    full.format = m->format;
    full.backend = m->ops->name;
    full.name = m->name;
    full.n_vocab = m->hp.n_vocab;
    full.n_ctx_train = m->hp.n_ctx_train;
    full.n_embd = m->hp.n_embd;
    full.n_layer = m->hp.n_layer;
    full.n_head = m->hp.n_head;
    full.n_head_kv = m->hp.n_head_kv;
    full.head_dim = m->hp.head_dim;
    full.n_ff = m->hp.n_ff;
    full.rope_theta = m->hp.rope_theta;
    full.rms_eps = m->hp.rms_eps;
    full.weight_dtype = m->weight_dtype;
    full.n_params = m->n_params;
    full.weight_bytes = m->weight_bytes;
    full.tied_embeddings = m->tied_embeddings;
    size_t n = info->struct_size < sizeof full ? info->struct_size : sizeof full;
    size_t caller_size = info->struct_size;
    memcpy(info, &full, n);
    info->struct_size = caller_size;
    return TFM_OK;
}

TFM_API const tfm_tokenizer *tfm_model_tokenizer(const tfm_model *m) { return m ? m->tokenizer : NULL; }
