/*
 * hf_model.c — a Hugging Face model directory as a tfm_model_source.
 *
 * The directory holds config.json (hf_config.c), the weights as model.safetensors or as shards
 * listed by model.safetensors.index.json ({"weight_map": {tensor name: shard file}}), and the
 * tokenizer files. Tensor names follow transformers' LlamaForCausalLM:
 *   model.embed_tokens.weight                          [vocab][hidden]
 *   model.layers.N.input_layernorm.weight              [hidden]
 *   model.layers.N.self_attn.{q,k,v,o}_proj.weight     q [heads*head_dim][hidden], k/v [kv_heads*head_dim][hidden],
 *                                                      o [hidden][heads*head_dim]
 *   model.layers.N.post_attention_layernorm.weight     [hidden]
 *   model.layers.N.mlp.{gate,up,down}_proj.weight      gate/up [ffn][hidden], down [hidden][ffn]
 *   model.norm.weight                                  [hidden]
 *   lm_head.weight                                     [vocab][hidden]; absent when tied
 * HF keeps Q and K rows in their original order and rotates halves of each head ("rotate_half"),
 * so the source says TFM_ROPE_HALF and no row permutation is undone (GGUF permutes them instead).
 *
 * Matrices stay in the mapped shards. Norm weights (a few KB) are converted to f32, the dtype the
 * backends' rmsnorm takes; a matrix whose offset is not aligned to its element size is copied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "formats/weight_checks.h"
#include "model.h"
#include "tokenizer/tokenizer.h"
#include "util/half.h"
#include "util/mapped_file.h"

#include <cJSON.h>

#define INDEX_FILE "model.safetensors.index.json"
#define SINGLE_FILE "model.safetensors"

typedef struct hf_shard {
    char name[256];              /* file name inside the directory */
    tfm_mapped_file map;
    safetensors_file *st;
} hf_shard;

typedef struct hf_entry {        /* one tensor of any shard, for lookups by name */
    const safetensors_tensor *t;
    int shard;
} hf_entry;

typedef struct hf_state {
    int n_shards;
    hf_shard *shards;
    size_t n_entries;
    hf_entry *entries;           /* sorted by name */
    tfm_host_tensor *layers;
    size_t n_owned;
    void **owned;                /* converted / realigned copies */
} hf_state;

static void hf_release(void *p) {
    hf_state *s = p;
    if (!s) return;
    for (int i = 0; i < s->n_shards; i++) {
        safetensors_free(s->shards[i].st);
        tfm_unmap_file(&s->shards[i].map);
    }
    for (size_t i = 0; i < s->n_owned; i++) free(s->owned[i]);
    free(s->owned);
    free(s->shards);
    free(s->entries);
    free(s->layers);
    free(s);
}

static void *own_alloc(hf_state *s, size_t bytes) {
    void **grown = realloc(s->owned, (s->n_owned + 1) * sizeof *grown);
    if (!grown) return NULL;
    s->owned = grown;
    void *p = malloc(bytes ? bytes : 1);
    if (p) s->owned[s->n_owned++] = p;
    return p;
}

/* ---- shards ---------------------------------------------------------------------------------- */

static tfm_status join_path(const char *dir, const char *name, char *path, size_t cap) {
    int n = snprintf(path, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return tfm_error(TFM_E_INVALID_ARGUMENT, "%s/%s: path too long", dir, name);
    return TFM_OK;
}

static int file_exists(const char *dir, const char *name) {
    char path[4096];
    if (join_path(dir, name, path, sizeof path) != TFM_OK) return 0;
    return tfm_path_exists(path);
}

/* A shard must be a plain file name in the directory (an index must not point elsewhere). */
static int plain_file_name(const char *name) {
    return name[0] && name[0] != '.' && !strchr(name, '/') && !strchr(name, '\\') && strlen(name) < 256;
}

static tfm_status add_shard(hf_state *s, const char *name) {
    for (int i = 0; i < s->n_shards; i++)
        if (strcmp(s->shards[i].name, name) == 0) return TFM_OK;
    hf_shard *grown = realloc(s->shards, (size_t)(s->n_shards + 1) * sizeof *grown);
    if (!grown) return tfm_error(TFM_E_OOM, "out of memory listing shards");
    s->shards = grown;
    hf_shard *sh = &s->shards[s->n_shards++];
    memset(sh, 0, sizeof *sh);
    snprintf(sh->name, sizeof sh->name, "%s", name);
    return TFM_OK;
}

static tfm_status open_shards(hf_state *s, const char *dir, const char *index_label) {
    char path[4096];
    for (int i = 0; i < s->n_shards; i++) {
        hf_shard *sh = &s->shards[i];
        tfm_status st = join_path(dir, sh->name, path, sizeof path);
        if (st != TFM_OK) return st;
        if (!file_exists(dir, sh->name)) {
            if (index_label)
                return tfm_error(TFM_E_IO, "%s: shard '%s' named in %s is missing", dir, sh->name, index_label);
            return tfm_error(TFM_E_IO, "%s: cannot open %s", dir, sh->name);
        }
        if ((st = tfm_map_file(path, &sh->map)) != TFM_OK) return st;
        if ((st = safetensors_parse(sh->map.data, sh->map.size, path, &sh->st)) != TFM_OK) return st;
    }
    return TFM_OK;
}

static int entry_by_name(const void *a, const void *b) {
    return strcmp(((const hf_entry *)a)->t->name, ((const hf_entry *)b)->t->name);
}

/* All tensors of all shards, sorted by name; a name in two shards is an error. */
static tfm_status build_lookup(hf_state *s, const char *dir) {
    size_t n = 0;
    for (int i = 0; i < s->n_shards; i++) n += s->shards[i].st->n_tensors;
    s->entries = calloc(n ? n : 1, sizeof *s->entries);
    if (!s->entries) return tfm_error(TFM_E_OOM, "%s: out of memory for %zu tensor entries", dir, n);
    for (int i = 0; i < s->n_shards; i++)
        for (size_t j = 0; j < s->shards[i].st->n_tensors; j++)
            s->entries[s->n_entries++] = (hf_entry){&s->shards[i].st->tensors[j], i};
    qsort(s->entries, s->n_entries, sizeof *s->entries, entry_by_name);
    for (size_t i = 1; i < s->n_entries; i++)
        if (strcmp(s->entries[i - 1].t->name, s->entries[i].t->name) == 0)
            return tfm_error(TFM_E_FORMAT, "%s: tensor '%s' appears in both %s and %s", dir,
                             s->entries[i].t->name, s->shards[s->entries[i - 1].shard].name,
                             s->shards[s->entries[i].shard].name);
    return TFM_OK;
}

static const hf_entry *find_entry(const hf_state *s, const char *name) {
    safetensors_tensor key_tensor;
    memset(&key_tensor, 0, sizeof key_tensor);
    key_tensor.name = name;
    hf_entry key = {&key_tensor, 0};
    return bsearch(&key, s->entries, s->n_entries, sizeof *s->entries, entry_by_name);
}

/* Reads the index's weight_map: collects the shards, opens them, and checks that each listed
 * tensor is in the shard the index names. */
static tfm_status open_sharded(hf_state *s, const char *dir) {
    char path[4096];
    tfm_status st = join_path(dir, INDEX_FILE, path, sizeof path);
    if (st != TFM_OK) return st;
    tfm_mapped_file f = {0};
    if ((st = tfm_map_file(path, &f)) != TFM_OK) return st;
    char *text = malloc(f.size + 1);
    if (!text) {
        tfm_unmap_file(&f);
        return tfm_error(TFM_E_OOM, "%s: out of memory", path);
    }
    if (f.size) memcpy(text, f.data, f.size);
    text[f.size] = '\0';
    tfm_unmap_file(&f);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        free(text);
        return tfm_error(TFM_E_FORMAT, "%s: JSON syntax error near byte %zu", path, at);
    }
    free(text);

    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map) || !map->child) {
        cJSON_Delete(root);
        return tfm_error(TFM_E_FORMAT, "%s: \"weight_map\" must be a non-empty object {tensor: shard file}", path);
    }
    for (const cJSON *e = map->child; e && st == TFM_OK; e = e->next) {
        if (!cJSON_IsString(e) || !plain_file_name(e->valuestring))
            st = tfm_error(TFM_E_FORMAT, "%s: weight_map entry '%s' must name a file in the model directory",
                           path, e->string);
        else
            st = add_shard(s, e->valuestring);
    }
    if (st == TFM_OK) st = open_shards(s, dir, INDEX_FILE);
    if (st == TFM_OK) st = build_lookup(s, dir);
    for (const cJSON *e = map->child; e && st == TFM_OK; e = e->next) {
        const hf_entry *ent = find_entry(s, e->string);
        if (!ent || strcmp(s->shards[ent->shard].name, e->valuestring) != 0)
            st = tfm_error(TFM_E_FORMAT, "%s: %s maps tensor '%s' to %s, which does not hold it", dir,
                           INDEX_FILE, e->string, e->valuestring);
    }
    cJSON_Delete(root);
    return st;
}

static tfm_status open_weights(hf_state *s, const char *dir) {
    if (file_exists(dir, INDEX_FILE)) return open_sharded(s, dir);
    if (file_exists(dir, SINGLE_FILE)) {
        tfm_status st = add_shard(s, SINGLE_FILE);
        if (st == TFM_OK) st = open_shards(s, dir, NULL);
        if (st == TFM_OK) st = build_lookup(s, dir);
        return st;
    }
    if (file_exists(dir, "pytorch_model.bin") || file_exists(dir, "pytorch_model.bin.index.json"))
        return tfm_error(TFM_E_UNSUPPORTED,
                         "%s: only PyTorch pickle weights (pytorch_model.bin) found; libtfm reads safetensors",
                         dir);
    return tfm_error(TFM_E_IO, "%s: neither %s nor %s is present", dir, SINGLE_FILE, INDEX_FILE);
}

/* ---- tensors by role ------------------------------------------------------------------------- */

static float element_to_float(const uint8_t *p, tfm_dtype dtype) {
    float f;
    uint16_t h;
    uint32_t bits;
    switch (dtype) {
    case TFM_DTYPE_F16:
        memcpy(&h, p, 2);
        return tfm_half_to_float(h);
    case TFM_DTYPE_BF16:
        memcpy(&h, p, 2);
        bits = (uint32_t)h << 16;
        memcpy(&f, &bits, sizeof f);
        return f;
    default:
        memcpy(&f, p, sizeof f);
        return f;
    }
}

/* Looks up `name` and checks dtype and shape ([rows][cols]; rows = 0 means a vector of cols). */
static tfm_status bind(hf_state *s, const char *dir, const char *name, int64_t rows, int64_t cols,
                       tfm_host_tensor *out) {
    memset(out, 0, sizeof *out);
    const hf_entry *e = find_entry(s, name);
    if (!e) {
        if (s->n_shards > 1)
            return tfm_error(TFM_E_FORMAT, "%s: tensor '%s' is missing (in none of the %d shards)", dir, name,
                             s->n_shards);
        return tfm_error(TFM_E_FORMAT, "%s: tensor '%s' is missing from %s", dir, name, s->shards[0].name);
    }
    const safetensors_tensor *t = e->t;
    const char *shard = s->shards[e->shard].name;
    if (!t->supported)
        return tfm_error(TFM_E_UNSUPPORTED, "%s/%s: tensor '%s' has dtype %s (libtfm reads F32, F16, BF16)", dir,
                         shard, name, t->dtype_name);
    int ok = rows == 0 ? t->n_dims == 1 && t->shape[0] == cols
                       : t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols;
    if (!ok) {
        char got[128] = "[", *p = got + 1;
        for (int d = 0; d < t->n_dims && p < got + sizeof got - 24; d++)
            p += sprintf(p, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        strcpy(p, "]");
        if (rows == 0)
            return tfm_error(TFM_E_FORMAT, "%s/%s: tensor '%s' has shape %s, expected [%lld] from config.json",
                             dir, shard, name, got, (long long)cols);
        return tfm_error(TFM_E_FORMAT, "%s/%s: tensor '%s' has shape %s, expected [%lld, %lld] from config.json",
                         dir, shard, name, got, (long long)rows, (long long)cols);
    }
    out->data = t->data;
    out->dtype = t->dtype;
    out->rows = rows == 0 ? 1 : rows;
    out->cols = cols;
    out->nbytes = t->nbytes;
    snprintf(out->name, sizeof out->name, "%s", name);
    char where[512];
    snprintf(where, sizeof where, "%s/%s", dir, shard);
    tfm_status st = tfm_check_finite(out, where); /* NaN/Inf weights: refused, named (weight_checks.h) */
    if (st != TFM_OK) return st;

    size_t esize = safetensors_dtype_size(t->dtype_name);
    if (rows == 0 && t->dtype != TFM_DTYPE_F32) {
        /* Norm weights: the backends' rmsnorm takes f32. */
        float *f = own_alloc(s, (size_t)cols * sizeof *f);
        if (!f) return tfm_error(TFM_E_OOM, "%s: out of memory converting '%s'", dir, name);
        for (int64_t i = 0; i < cols; i++) f[i] = element_to_float((const uint8_t *)t->data + i * esize, t->dtype);
        out->data = f;
        out->dtype = TFM_DTYPE_F32;
        out->nbytes = (uint64_t)cols * sizeof *f;
    } else if ((uintptr_t)t->data % esize != 0) {
        void *copy = own_alloc(s, t->nbytes);
        if (!copy) return tfm_error(TFM_E_OOM, "%s: out of memory realigning '%s' (%llu bytes)", dir, name,
                                    (unsigned long long)t->nbytes);
        memcpy(copy, t->data, t->nbytes);
        out->data = copy;
        tfm_log(TFM_LOG_WARN, "%s/%s: tensor '%s' is not aligned to its element size; copied", dir, shard, name);
    }
    return TFM_OK;
}

static const struct {
    enum tfm_layer_role role;
    const char *suffix;
} layer_names[TFM_L_COUNT] = {
    {TFM_L_ATTN_NORM, "input_layernorm.weight"},  {TFM_L_WQ, "self_attn.q_proj.weight"},
    {TFM_L_WK, "self_attn.k_proj.weight"},        {TFM_L_WV, "self_attn.v_proj.weight"},
    {TFM_L_WO, "self_attn.o_proj.weight"},        {TFM_L_FFN_NORM, "post_attention_layernorm.weight"},
    {TFM_L_W_GATE, "mlp.gate_proj.weight"},       {TFM_L_W_UP, "mlp.up_proj.weight"},
    {TFM_L_W_DOWN, "mlp.down_proj.weight"},
};

static void layer_shape(const tfm_hparams *hp, enum tfm_layer_role role, int64_t *rows, int64_t *cols) {
    int64_t q = (int64_t)hp->n_head * hp->head_dim, kv = (int64_t)hp->n_head_kv * hp->head_dim;
    switch (role) {
    case TFM_L_ATTN_NORM:
    case TFM_L_FFN_NORM: *rows = 0, *cols = hp->n_embd; break;
    case TFM_L_WQ: *rows = q, *cols = hp->n_embd; break;
    case TFM_L_WK:
    case TFM_L_WV: *rows = kv, *cols = hp->n_embd; break;
    case TFM_L_WO: *rows = hp->n_embd, *cols = q; break;
    case TFM_L_W_GATE:
    case TFM_L_W_UP: *rows = hp->n_ff, *cols = hp->n_embd; break;
    default: *rows = hp->n_embd, *cols = hp->n_ff; break; /* TFM_L_W_DOWN */
    }
}

static tfm_status bind_all(hf_state *s, const char *dir, const hf_config *cfg, tfm_model_source *out) {
    const tfm_hparams *hp = &cfg->hp;
    tfm_status st;
    /* Unknown tensors are ignored (older checkpoints carry rotary_emb.inv_freq buffers), but a bias
     * would change every result: refuse it as the GGUF reader does. */
    for (size_t i = 0; i < s->n_entries; i++) {
        const char *name = s->entries[i].t->name;
        size_t len = strlen(name);
        if (len >= 5 && strcmp(name + len - 5, ".bias") == 0)
            return tfm_error(TFM_E_UNSUPPORTED, "%s/%s: tensor '%s' is a bias, which the llama architecture libtfm "
                             "implements does not have", dir, s->shards[s->entries[i].shard].name, name);
    }
    if ((st = bind(s, dir, "model.embed_tokens.weight", hp->n_vocab, hp->n_embd, &out->tok_embd)) != TFM_OK ||
        (st = bind(s, dir, "model.norm.weight", 0, hp->n_embd, &out->output_norm)) != TFM_OK)
        return st;
    /* HF ties the head to the embedding when the config says so, whatever the file holds. */
    if (cfg->tie_word_embeddings) {
        memset(&out->output, 0, sizeof out->output);
    } else if (find_entry(s, "lm_head.weight")) {
        if ((st = bind(s, dir, "lm_head.weight", hp->n_vocab, hp->n_embd, &out->output)) != TFM_OK) return st;
    } else {
        tfm_log(TFM_LOG_INFO, "%s: no lm_head.weight; the output head is tied to model.embed_tokens", dir);
        memset(&out->output, 0, sizeof out->output);
    }

    s->layers = calloc((size_t)hp->n_layer * TFM_L_COUNT, sizeof *s->layers);
    if (!s->layers) return tfm_error(TFM_E_OOM, "%s: out of memory for %d layers", dir, hp->n_layer);
    for (int l = 0; l < hp->n_layer; l++)
        for (int r = 0; r < TFM_L_COUNT; r++) {
            char name[96];
            int64_t rows, cols;
            layer_shape(hp, layer_names[r].role, &rows, &cols);
            snprintf(name, sizeof name, "model.layers.%d.%s", l, layer_names[r].suffix);
            st = bind(s, dir, name, rows, cols, &s->layers[(size_t)l * TFM_L_COUNT + layer_names[r].role]);
            if (st != TFM_OK) return st;
        }
    out->layers = s->layers;
    return TFM_OK;
}

/* The directory's last component, for the model's name. */
static void dir_name(const char *dir, char *out, size_t cap) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    size_t n = len - start < cap - 1 ? len - start : cap - 1;
    memcpy(out, dir + start, n);
    out[n] = '\0';
}

tfm_status tfm_hf_model_source(const char *dir, tfm_model_source *out) {
    memset(out, 0, sizeof *out);
    if (!dir) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_hf_model_source: dir is NULL");
    hf_config cfg;
    tfm_status st = hf_config_load(dir, &cfg);
    if (st != TFM_OK) return st;

    hf_state *s = calloc(1, sizeof *s);
    if (!s) return tfm_error(TFM_E_OOM, "%s: out of memory", dir);
    st = open_weights(s, dir);
    if (st == TFM_OK) st = bind_all(s, dir, &cfg, out);
    if (st == TFM_OK) st = tfm_tokenizer_from_hf_dir(dir, &out->tokenizer);
    if (st != TFM_OK) {
        hf_release(s);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->hp = cfg.hp;
    out->format = "safetensors";
    snprintf(out->architecture, sizeof out->architecture, "llama");
    dir_name(dir, out->name, sizeof out->name);
    out->reader_state = s;
    out->release = hf_release;
    return TFM_OK;
}
