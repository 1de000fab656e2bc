/* hf_config.c — config.json / generation_config.json to tfm_hparams, with range checks. */
#include "formats/hf_config.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util/mapped_file.h"

/* Limits far above any released model; values beyond them are taken for corruption. */
#define MAX_VOCAB (1 << 24)
#define MAX_EMBD (1 << 17)
#define MAX_LAYERS 1024
#define MAX_HEADS 4096
#define MAX_HEAD_DIM 4096
#define MAX_FF (1 << 20)
#define MAX_CTX (1 << 26)

/* Parses `len` bytes of JSON; the message names the file, line and column of a syntax error. */
static tfm_status parse_json(const char *text, size_t len, const char *label, cJSON **out) {
    *out = NULL;
    /* A NUL-terminated copy: the text may be a mapping that ends exactly at `len`. */
    char *copy = malloc(len + 1);
    if (!copy) return tfm_error(TFM_E_OOM, "%s: out of memory for %zu bytes of JSON", label, len);
    if (len) memcpy(copy, text, len);
    copy[len] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(copy, &end, 1);
    if (!root) {
        size_t at = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
        int line = 1, col = 1;
        for (size_t i = 0; i < at; i++) {
            if (copy[i] == '\n') line++, col = 1;
            else col++;
        }
        free(copy);
        return tfm_error(TFM_E_FORMAT, "%s: JSON syntax error at line %d, column %d", label, line, col);
    }
    free(copy);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tfm_error(TFM_E_FORMAT, "%s: expected a JSON object at the top level", label);
    }
    *out = root;
    return TFM_OK;
}

/* An integer field in [min, max]; absent (or null) gives `def`, or an error if `def` is NULL. */
static tfm_status get_int(const cJSON *obj, const char *key, const char *label, const int64_t *def,
                          int64_t min, int64_t max, int64_t *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) {
        if (!def) return tfm_error(TFM_E_FORMAT, "%s: \"%s\" is missing", label, key);
        *out = *def;
        return TFM_OK;
    }
    if (!cJSON_IsNumber(it) || floor(it->valuedouble) != it->valuedouble)
        return tfm_error(TFM_E_FORMAT, "%s: \"%s\" must be an integer", label, key);
    double v = it->valuedouble;
    if (v < (double)min || v > (double)max)
        return tfm_error(TFM_E_FORMAT, "%s: \"%s\" = %.0f is out of range (expected %lld..%lld)", label,
                         key, v, (long long)min, (long long)max);
    *out = (int64_t)v;
    return TFM_OK;
}

/* A number field in the open-closed range (min, max]. */
static tfm_status get_float(const cJSON *obj, const char *key, const char *label, const double *def,
                            double min, double max, double *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) {
        if (!def) return tfm_error(TFM_E_FORMAT, "%s: \"%s\" is missing", label, key);
        *out = *def;
        return TFM_OK;
    }
    if (!cJSON_IsNumber(it)) return tfm_error(TFM_E_FORMAT, "%s: \"%s\" must be a number", label, key);
    double v = it->valuedouble;
    if (!(v > min && v <= max))
        return tfm_error(TFM_E_FORMAT, "%s: \"%s\" = %g is out of range (expected > %g and <= %g)", label,
                         key, v, min, max);
    *out = v;
    return TFM_OK;
}

static int get_bool(const cJSON *obj, const char *key, int def) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(it)) return cJSON_IsTrue(it);
    return def;
}

static const char *get_str(const cJSON *obj, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

/* bos_token_id / eos_token_id: an id, a list of ids (the first is used), or null. */
static tfm_status get_token_id(const cJSON *obj, const char *key, const char *label, int32_t n_vocab,
                               int32_t *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return TFM_OK;
    if (cJSON_IsArray(it)) {
        if (cJSON_GetArraySize(it) == 0) return TFM_OK;
        it = cJSON_GetArrayItem(it, 0);
    }
    if (!cJSON_IsNumber(it) || floor(it->valuedouble) != it->valuedouble)
        return tfm_error(TFM_E_FORMAT, "%s: \"%s\" must be a token id or a list of ids", label, key);
    if (it->valuedouble < 0 || it->valuedouble >= n_vocab)
        return tfm_error(TFM_E_FORMAT, "%s: \"%s\" = %.0f lies outside the vocabulary (0..%d)", label, key,
                         it->valuedouble, n_vocab - 1);
    *out = (int32_t)it->valuedouble;
    return TFM_OK;
}

static tfm_status parse_rope_scaling(const cJSON *root, const char *label, hf_config *c) {
    tfm_hparams *hp = &c->hp;
    hp->rope_scaling = TFM_ROPE_SCALING_NONE;
    hp->rope_factor = 1.0f;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (!rs || cJSON_IsNull(rs)) return TFM_OK;
    if (!cJSON_IsObject(rs)) return tfm_error(TFM_E_FORMAT, "%s: \"rope_scaling\" must be an object or null", label);
    const char *type = get_str(rs, "rope_type");
    if (!type) type = get_str(rs, "type");
    if (!type) return tfm_error(TFM_E_FORMAT, "%s: \"rope_scaling\" has no \"rope_type\"", label);
    if (strcmp(type, "default") == 0) return TFM_OK;

    double factor, low, high;
    int64_t orig;
    tfm_status st = get_float(rs, "factor", label, NULL, 0.0, 1e6, &factor);
    if (st != TFM_OK) return st;
    if (factor < 1.0)
        return tfm_error(TFM_E_FORMAT, "%s: rope_scaling \"factor\" = %g must be >= 1", label, factor);
    hp->rope_factor = (float)factor;
    if (strcmp(type, "linear") == 0) {
        hp->rope_scaling = TFM_ROPE_SCALING_LINEAR;
        return TFM_OK;
    }
    if (strcmp(type, "llama3") == 0) {
        if ((st = get_float(rs, "low_freq_factor", label, NULL, 0.0, 1e6, &low)) != TFM_OK ||
            (st = get_float(rs, "high_freq_factor", label, NULL, 0.0, 1e6, &high)) != TFM_OK ||
            (st = get_int(rs, "original_max_position_embeddings", label, NULL, 1, MAX_CTX, &orig)) != TFM_OK)
            return st;
        if (!(high > low))
            return tfm_error(TFM_E_FORMAT,
                             "%s: rope_scaling high_freq_factor (%g) must exceed low_freq_factor (%g)", label,
                             high, low);
        hp->rope_scaling = TFM_ROPE_SCALING_LLAMA3;
        hp->rope_low_freq_factor = (float)low;
        hp->rope_high_freq_factor = (float)high;
        hp->rope_orig_ctx = (int32_t)orig;
        return TFM_OK;
    }
    return tfm_error(TFM_E_UNSUPPORTED,
                     "%s: rope_scaling type '%s' is not supported (libtfm reads \"linear\" and \"llama3\")",
                     label, type);
}

/* Features of the Llama family that libtfm's forward pass does not have. */
static tfm_status check_unsupported(const cJSON *root, const char *label) {
    const char *act = get_str(root, "hidden_act");
    if (act && strcmp(act, "silu") != 0)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: hidden_act '%s' is not supported (only \"silu\")", label, act);
    if (get_bool(root, "attention_bias", 0))
        return tfm_error(TFM_E_UNSUPPORTED, "%s: attention_bias = true is not supported", label);
    if (get_bool(root, "mlp_bias", 0))
        return tfm_error(TFM_E_UNSUPPORTED, "%s: mlp_bias = true is not supported", label);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (q && !cJSON_IsNull(q)) {
        const char *method = get_str(q, "quant_method");
        return tfm_error(TFM_E_UNSUPPORTED, "%s: quantized checkpoints (quant_method '%s') are not supported",
                         label, method ? method : "?");
    }
    return TFM_OK;
}

static tfm_status parse_architecture(const cJSON *root, const char *label, hf_config *c) {
    copy_str(c->model_type, sizeof c->model_type, get_str(root, "model_type"));
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *arch = NULL;
    if (cJSON_IsArray(archs) && cJSON_GetArraySize(archs) > 0) {
        const cJSON *a0 = cJSON_GetArrayItem(archs, 0);
        if (!cJSON_IsString(a0))
            return tfm_error(TFM_E_FORMAT, "%s: \"architectures\" must be a list of strings", label);
        arch = a0->valuestring;
    } else if (strcmp(c->model_type, "llama") == 0) {
        arch = "LlamaForCausalLM";
    } else if (strcmp(c->model_type, "mistral") == 0) {
        arch = "MistralForCausalLM";
    } else {
        return tfm_error(TFM_E_FORMAT, "%s: neither \"architectures\" nor a known \"model_type\" is given",
                         label);
    }
    copy_str(c->architecture, sizeof c->architecture, arch);
    if (strcmp(arch, "LlamaForCausalLM") != 0 && strcmp(arch, "MistralForCausalLM") != 0)
        return tfm_error(TFM_E_UNSUPPORTED,
                         "%s: architecture '%s' is not supported (libtfm reads LlamaForCausalLM and "
                         "MistralForCausalLM)", label, arch);
    return TFM_OK;
}

static tfm_status parse_sizes(const cJSON *root, const char *label, hf_config *c) {
    tfm_hparams *hp = &c->hp;
    int64_t vocab, embd, layers, heads, heads_kv, head_dim, ff, ctx, window;
    tfm_status st;
    if ((st = get_int(root, "vocab_size", label, NULL, 1, MAX_VOCAB, &vocab)) != TFM_OK ||
        (st = get_int(root, "hidden_size", label, NULL, 1, MAX_EMBD, &embd)) != TFM_OK ||
        (st = get_int(root, "intermediate_size", label, NULL, 1, MAX_FF, &ff)) != TFM_OK ||
        (st = get_int(root, "num_hidden_layers", label, NULL, 1, MAX_LAYERS, &layers)) != TFM_OK ||
        (st = get_int(root, "num_attention_heads", label, NULL, 1, MAX_HEADS, &heads)) != TFM_OK ||
        (st = get_int(root, "num_key_value_heads", label, &heads, 1, MAX_HEADS, &heads_kv)) != TFM_OK)
        return st;
    if (heads % heads_kv != 0)
        return tfm_error(TFM_E_FORMAT,
                         "%s: num_attention_heads (%lld) is not a multiple of num_key_value_heads (%lld)",
                         label, (long long)heads, (long long)heads_kv);
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(root, "head_dim");
    if (!hd || cJSON_IsNull(hd)) {
        if (embd % heads != 0)
            return tfm_error(TFM_E_FORMAT,
                             "%s: hidden_size (%lld) is not a multiple of num_attention_heads (%lld) and no "
                             "head_dim is given", label, (long long)embd, (long long)heads);
        head_dim = embd / heads;
    } else if ((st = get_int(root, "head_dim", label, NULL, 1, MAX_HEAD_DIM, &head_dim)) != TFM_OK) {
        return st;
    }
    if (head_dim % 2 != 0)
        return tfm_error(TFM_E_FORMAT, "%s: head_dim %lld must be even for RoPE", label, (long long)head_dim);
    if (heads * head_dim > MAX_EMBD * 4)
        return tfm_error(TFM_E_FORMAT, "%s: num_attention_heads x head_dim = %lld is out of range", label,
                         (long long)(heads * head_dim));

    const int64_t def_ctx = strcmp(c->model_type, "mistral") == 0 ? 4096 * 32 : 2048;
    if ((st = get_int(root, "max_position_embeddings", label, &def_ctx, 1, MAX_CTX, &ctx)) != TFM_OK)
        return st;
    const int64_t no_window = 0;
    if ((st = get_int(root, "sliding_window", label, &no_window, 0, MAX_CTX, &window)) != TFM_OK) return st;
    c->sliding_window = (int32_t)window;
    /* Within the window, sliding-window attention equals full attention: limit the context to it. */
    if (window > 0 && window < ctx) {
        tfm_log(TFM_LOG_INFO, "%s: sliding_window %lld < max_position_embeddings %lld; context limited to "
                "the window", label, (long long)window, (long long)ctx);
        ctx = window;
    }

    hp->n_vocab = (int32_t)vocab;
    hp->n_embd = (int32_t)embd;
    hp->n_ff = (int32_t)ff;
    hp->n_layer = (int32_t)layers;
    hp->n_head = (int32_t)heads;
    hp->n_head_kv = (int32_t)heads_kv;
    hp->head_dim = (int32_t)head_dim;
    hp->n_ctx_train = (int32_t)ctx;
    return TFM_OK;
}

tfm_status hf_config_parse(const char *json, size_t len, const char *label, hf_config *out) {
    memset(out, 0, sizeof *out);
    out->bos_id = out->eos_id = -1;
    if (!label) label = "config.json";
    cJSON *root;
    tfm_status st = parse_json(json, len, label, &root);
    if (st != TFM_OK) return st;

    tfm_hparams *hp = &out->hp;
    const double def_eps = 1e-6, def_theta = 10000.0;
    double eps = def_eps, theta = def_theta;
    if ((st = parse_architecture(root, label, out)) != TFM_OK || (st = check_unsupported(root, label)) != TFM_OK ||
        (st = parse_sizes(root, label, out)) != TFM_OK ||
        (st = get_float(root, "rms_norm_eps", label, &def_eps, 0.0, 0.5, &eps)) != TFM_OK ||
        (st = get_float(root, "rope_theta", label, &def_theta, 0.0, 1e12, &theta)) != TFM_OK ||
        (st = parse_rope_scaling(root, label, out)) != TFM_OK ||
        (st = get_token_id(root, "bos_token_id", label, hp->n_vocab, &out->bos_id)) != TFM_OK ||
        (st = get_token_id(root, "eos_token_id", label, hp->n_vocab, &out->eos_id)) != TFM_OK) {
        cJSON_Delete(root);
        return st;
    }
    hp->rms_eps = (float)eps;
    hp->rope_theta = (float)theta;
    hp->rope_pairing = TFM_ROPE_HALF;
    /* A value that is not true/false (e.g. "yes") must not silently mean false. */
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tie && !cJSON_IsBool(tie) && !cJSON_IsNull(tie)) {
        cJSON_Delete(root);
        return tfm_error(TFM_E_FORMAT, "%s: \"tie_word_embeddings\" must be true or false", label);
    }
    out->tie_word_embeddings = get_bool(root, "tie_word_embeddings", 0);
    copy_str(out->torch_dtype, sizeof out->torch_dtype, get_str(root, "torch_dtype"));
    cJSON_Delete(root);
    return TFM_OK;
}

tfm_status hf_generation_config_parse(const char *json, size_t len, const char *label, hf_config *cfg) {
    if (!label) label = "generation_config.json";
    cJSON *root;
    tfm_status st = parse_json(json, len, label, &root);
    if (st != TFM_OK) return st;
    st = get_token_id(root, "bos_token_id", label, cfg->hp.n_vocab, &cfg->bos_id);
    if (st == TFM_OK) st = get_token_id(root, "eos_token_id", label, cfg->hp.n_vocab, &cfg->eos_id);
    cJSON_Delete(root);
    return st;
}

/* Maps dir/name; *present = 0 without error when the file does not exist and `optional`. */
static tfm_status map_in_dir(const char *dir, const char *name, int optional, tfm_mapped_file *f,
                             char *path, size_t path_cap, int *present) {
    *present = 0;
    int n = snprintf(path, path_cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= path_cap) return tfm_error(TFM_E_INVALID_ARGUMENT, "%s: path too long", dir);
    if (optional && !tfm_path_exists(path)) return TFM_OK;
    tfm_status st = tfm_map_file(path, f);
    if (st == TFM_OK) *present = 1;
    return st;
}

tfm_status hf_config_load(const char *dir, hf_config *out) {
    char path[4096];
    tfm_mapped_file f = {0};
    int present;
    tfm_status st = map_in_dir(dir, "config.json", 0, &f, path, sizeof path, &present);
    if (st != TFM_OK) return st;
    st = hf_config_parse(f.data, f.size, path, out);
    tfm_unmap_file(&f);
    if (st != TFM_OK) return st;

    st = map_in_dir(dir, "generation_config.json", 1, &f, path, sizeof path, &present);
    if (st != TFM_OK || !present) return st;
    st = hf_generation_config_parse(f.data, f.size, path, out);
    tfm_unmap_file(&f);
    return st;
}
