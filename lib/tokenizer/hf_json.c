/*
 * hf_json.c — a tokenizer from a Hugging Face tokenizer.json (parsed with cJSON), plus the bos/eos
 * facts of the configs beside it.
 *
 * Supported: model "BPE" in the two shapes Llama models use.
 *   byte-level  pre_tokenizer Split(Regex, Isolated) then ByteLevel(use_regex false) — Llama-3 —
 *               or ByteLevel(use_regex true) alone (GPT-2's pattern); decoder ByteLevel;
 *               ignore_merges honoured.
 *   SentencePiece-style  byte_fallback, normalizer Prepend("▁") + Replace(" ", "▁") (Llama-2,
 *               Mistral) or pre_tokenizer Metaspace (prepend_scheme always / first / never, split);
 *               decoder Replace + ByteFallback + Fuse + Strip(" ", 1, 0); fuse_unk.
 * added_tokens: special ones are matched in the text with TFM_TOKENIZE_PARSE_SPECIAL (decoding
 * drops them), the others always (decoding keeps their text). lstrip/rstrip/single_word options of
 * added tokens are not implemented (Llama vocabularies do not use them).
 * Other models, normalizers or pre-tokenizers give TFM_E_UNSUPPORTED naming them.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_loaders.h"

/* GPT-2's pattern (ByteLevel with use_regex). */
static const char k_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int get_bool(const cJSON *o, const char *key, int dflt)
{
    const cJSON *v = get(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static int is_type(const cJSON *o, const char *type)
{
    const char *t = get_str(o, "type");
    return t && strcmp(t, type) == 0;
}

/* `o` itself if it has `type`, or the first member of `list_key` that does when `o` is a Sequence. */
static const cJSON *find_in_sequence(const cJSON *o, const char *list_key, const char *type)
{
    if (!o || cJSON_IsNull(o)) return NULL;
    if (is_type(o, type)) return o;
    if (is_type(o, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, get(o, list_key)) {
            if (is_type(it, type)) return it;
        }
    }
    return NULL;
}

static const char *type_not_in(const cJSON *o, const char *const *allowed)
{
    const char *t = get_str(o, "type");
    for (int k = 0; t && allowed[k]; k++)
        if (strcmp(t, allowed[k]) == 0) return NULL;
    return t ? t : "(no type)";
}

/* The first member of a (possibly Sequence) component whose type is not in `allowed`, or NULL. */
static const char *first_unsupported(const cJSON *o, const char *list_key, const char *const *allowed)
{
    if (!o || cJSON_IsNull(o)) return NULL;
    if (!is_type(o, "Sequence")) return type_not_in(o, allowed);
    const cJSON *it;
    cJSON_ArrayForEach(it, get(o, list_key)) {
        const char *bad = type_not_in(it, allowed);
        if (bad) return bad;
    }
    return NULL;
}

static int32_t json_id(const cJSON *v)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= (double)(1 << 24) ||
        v->valuedouble != (double)(int32_t)v->valuedouble)
        return -1;
    return (int32_t)v->valuedouble;
}

/* The content of a token given as "text" or {"content": "text"}. */
static const char *token_text(const cJSON *v)
{
    if (cJSON_IsString(v)) return v->valuestring;
    return get_str(v, "content");
}

static cJSON *read_json(const char *dir, const char *name)
{
    if (!dir) return NULL;
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path) return NULL;
    snprintf(path, n, "%s/%s", dir, name);
    char *text;
    size_t size;
    cJSON *j = NULL;
    if (tok_read_small_file(path, 64u << 20, &text, &size) == TFM_OK) {
        j = cJSON_ParseWithLength(text, size);
        free(text);
    }
    free(path);
    return j;
}

static int32_t id_from_config(const tfm_tokenizer *t, const cJSON *v)
{
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
    int32_t id = json_id(v);
    return id < t->n_vocab ? id : -1;
}

static int32_t id_of_text(const tfm_tokenizer *t, const char *s)
{
    return s ? tok_map_find(&t->ids, s, strlen(s)) : -1;
}

/* bos/eos/add_* from the post-processor template (root may be NULL). */
static void apply_template(tfm_tokenizer *t, const cJSON *root)
{
    const cJSON *pp = find_in_sequence(get(root, "post_processor"), "processors", "TemplateProcessing");
    const cJSON *single = get(pp, "single");
    if (cJSON_IsArray(single) && cJSON_GetArraySize(single) > 0) {
        const cJSON *first = cJSON_GetArrayItem(single, 0);
        const cJSON *last = cJSON_GetArrayItem(single, cJSON_GetArraySize(single) - 1);
        const char *b = get_str(get(first, "SpecialToken"), "id");
        const char *e = get_str(get(last, "SpecialToken"), "id");
        if (b && id_of_text(t, b) >= 0) t->bos = id_of_text(t, b), t->add_bos = 1;
        if (e && id_of_text(t, e) >= 0) t->eos = id_of_text(t, e), t->add_eos = 1;
    }
}

/* bos/eos/add_* from the configs in `dir` (later sources win: generation_config, config,
 * tokenizer_config). */
void tok_apply_hf_configs(tfm_tokenizer *t, const char *dir)
{
    cJSON *gen = read_json(dir, "generation_config.json");
    cJSON *cfg = read_json(dir, "config.json");
    cJSON *tcfg = read_json(dir, "tokenizer_config.json");
    const cJSON *srcs[2] = {gen, cfg};
    for (int k = 0; k < 2; k++) {
        int32_t id;
        if ((id = id_from_config(t, get(srcs[k], "bos_token_id"))) >= 0) t->bos = id;
        if ((id = id_from_config(t, get(srcs[k], "eos_token_id"))) >= 0) t->eos = id;
    }
    if (tcfg) {
        int32_t id;
        if ((id = id_of_text(t, token_text(get(tcfg, "bos_token")))) >= 0) t->bos = id;
        if ((id = id_of_text(t, token_text(get(tcfg, "eos_token")))) >= 0) t->eos = id;
        t->add_bos = get_bool(tcfg, "add_bos_token", t->add_bos);
        t->add_eos = get_bool(tcfg, "add_eos_token", t->add_eos);
    }
    cJSON_Delete(gen);
    cJSON_Delete(cfg);
    cJSON_Delete(tcfg);
}

/* Reads merges given as "left right" strings or as ["left", "right"] pairs. */
static tfm_status load_merges(tfm_tokenizer *t, const cJSON *merges, const char *label)
{
    int n = cJSON_GetArraySize(merges);
    if (tok_pairmap_init(&t->merges, (size_t)(n > 0 ? n : 1)) != TFM_OK)
        return tfm_error(TFM_E_OOM, "%s: out of memory for %d merges", label, n);
    char *buf = NULL;
    size_t cap = 0;
    int rank = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(m)) {
            const char *s = m->valuestring, *sp = strchr(s + (s[0] ? 1 : 0), ' ');
            if (!sp) {
                rank++;
                continue;
            }
            a = s, la = (size_t)(sp - s), b = sp + 1, lb = strlen(sp + 1);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            a = m->child->valuestring, la = strlen(a), b = m->child->next->valuestring, lb = strlen(b);
        } else {
            free(buf);
            return tfm_error(TFM_E_FORMAT, "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", label, rank);
        }
        int32_t l = tok_map_find(&t->ids, a, la), r = tok_map_find(&t->ids, b, lb);
        if (la == 0 || lb == 0) { /* an empty side merges nothing */
            rank++;
            continue;
        }
        if (la + lb > cap) {
            cap = (la + lb) * 2;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                return tfm_error(TFM_E_OOM, "%s: out of memory", label);
            }
            buf = p;
        }
        memcpy(buf, a, la);
        memcpy(buf + la, b, lb);
        int32_t merged = tok_map_find(&t->ids, buf, la + lb);
        if (l >= 0 && r >= 0 && merged >= 0) tok_pairmap_insert(&t->merges, l, r, rank, merged);
        rank++;
    }
    free(buf);
    return TFM_OK;
}

/* SentencePiece-style options from the normalizer / pre-tokenizer / decoder. */
static tfm_status spm_options(tfm_tokenizer *t, const cJSON *root, const char *label)
{
    static const char *const norm_ok[] = {"Prepend", "Replace", NULL};
    static const char *const pre_ok[] = {"Metaspace", NULL};
    const cJSON *norm = get(root, "normalizer"), *pre = get(root, "pre_tokenizer");
    const char *bad = first_unsupported(norm, "normalizers", norm_ok);
    if (bad) return tfm_error(TFM_E_UNSUPPORTED, "%s: normalizer \"%s\" is not supported (Prepend, Replace)", label, bad);
    bad = first_unsupported(pre, "pretokenizers", pre_ok);
    if (bad) return tfm_error(TFM_E_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported here (Metaspace)", label, bad);
    t->norm.add_dummy_prefix = 0;
    const cJSON *prepend = find_in_sequence(norm, "normalizers", "Prepend");
    if (prepend) {
        const char *p = get_str(prepend, "prepend");
        if (!p || strcmp(p, "\xE2\x96\x81") != 0)
            return tfm_error(TFM_E_UNSUPPORTED, "%s: normalizer Prepend of something other than U+2581", label);
        t->norm.add_dummy_prefix = 1;
    }
    const cJSON *ms = find_in_sequence(pre, "pretokenizers", "Metaspace");
    if (ms) {
        const char *scheme = get_str(ms, "prepend_scheme");
        int add = get_bool(ms, "add_prefix_space", 1);
        if (scheme && strcmp(scheme, "never") == 0) add = 0;
        t->norm.add_dummy_prefix = add;
        t->hf_metaspace_first_only = scheme && strcmp(scheme, "first") == 0;
        t->hf_metaspace_split = get_bool(ms, "split", 1);
    }
    const cJSON *strip = find_in_sequence(get(root, "decoder"), "decoders", "Strip");
    const cJSON *start = get(strip, "start");
    t->hf_spm_strip_first_space = strip && cJSON_IsNumber(start) && start->valuedouble >= 1;
    if (ms && !strip) t->hf_spm_strip_first_space = t->norm.add_dummy_prefix; /* Metaspace decoder */
    return TFM_OK;
}

static tfm_status bytelevel_options(tfm_tokenizer *t, const cJSON *root, const char *label)
{
    static const char *const pre_ok[] = {"Split", "ByteLevel", NULL};
    const cJSON *pre = get(root, "pre_tokenizer"), *norm = get(root, "normalizer");
    if (norm && !cJSON_IsNull(norm))
        return tfm_error(TFM_E_UNSUPPORTED, "%s: normalizer \"%s\" with a byte-level BPE is not supported", label,
                         get_str(norm, "type") ? get_str(norm, "type") : "?");
    const char *bad = first_unsupported(pre, "pretokenizers", pre_ok);
    if (bad) return tfm_error(TFM_E_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported (Split, ByteLevel)", label, bad);
    const cJSON *split = find_in_sequence(pre, "pretokenizers", "Split");
    const cJSON *bl = find_in_sequence(pre, "pretokenizers", "ByteLevel");
    if (get_bool(bl, "add_prefix_space", 0))
        return tfm_error(TFM_E_UNSUPPORTED, "%s: ByteLevel add_prefix_space is not supported", label);
    if (split) {
        const char *re = get_str(get(split, "pattern"), "Regex");
        const char *behavior = get_str(split, "behavior");
        if (!re || get_bool(split, "invert", 0) || !behavior || strcmp(behavior, "Isolated") != 0)
            return tfm_error(TFM_E_UNSUPPORTED, "%s: only Split with a Regex pattern and behavior Isolated is supported",
                             label);
        return tok_pretok_compile(t, re, strlen(re), label);
    }
    if (bl && get_bool(bl, "use_regex", 1)) return tok_pretok_compile(t, k_gpt2_pattern, strlen(k_gpt2_pattern), label);
    return TFM_OK;
}

static tfm_status build(const cJSON *root, const char *label, const char *config_dir, tfm_tokenizer **out)
{
    const cJSON *model = get(root, "model");
    const char *mtype = get_str(model, "type");
    if (!cJSON_IsObject(model)) return tfm_error(TFM_E_FORMAT, "%s: tokenizer.json has no \"model\" object", label);
    if (!mtype || strcmp(mtype, "BPE") != 0)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: tokenizer.json model \"%s\" is not supported (BPE)", label,
                         mtype ? mtype : "?");
    const cJSON *vocab = get(model, "vocab"), *merges = get(model, "merges"), *added = get(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) return tfm_error(TFM_E_FORMAT, "%s: model.vocab is not an object", label);
    if (merges && !cJSON_IsArray(merges)) return tfm_error(TFM_E_FORMAT, "%s: model.merges is not an array", label);
    if (get_str(model, "continuing_subword_prefix") || get_str(model, "end_of_word_suffix"))
        return tfm_error(TFM_E_UNSUPPORTED, "%s: BPE subword prefixes/suffixes are not supported", label);

    int bytelevel = find_in_sequence(get(root, "pre_tokenizer"), "pretokenizers", "ByteLevel") != NULL ||
                    find_in_sequence(get(root, "decoder"), "decoders", "ByteLevel") != NULL;

    /* Ids: the vocabulary and the added tokens; the largest id sets the size. */
    int32_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = json_id(it);
        if (id < 0) return tfm_error(TFM_E_FORMAT, "%s: model.vocab[\"%.40s\"] is not an id", label, it->string);
        if (id + 1 > n) n = id + 1;
    }
    cJSON_ArrayForEach(it, added) {
        int32_t id = json_id(get(it, "id"));
        if (id < 0 || !get_str(it, "content")) return tfm_error(TFM_E_FORMAT, "%s: an added_tokens entry lacks id/content", label);
        if (id + 1 > n) n = id + 1;
    }
    /* Real vocabularies number their pieces densely; a few holes are tolerated, not a file of ten
     * entries that claims ids in the millions (it would only make us allocate for them). */
    int n_entries = cJSON_GetArraySize(vocab) + cJSON_GetArraySize(added);
    if ((int64_t)n > 2 * (int64_t)n_entries + 1024)
        return tfm_error(TFM_E_FORMAT, "%s: ids reach %d but only %d pieces are listed", label, (int)n - 1, n_entries);
    const char **text = calloc((size_t)(n ? n : 1), sizeof *text);
    uint8_t *type = calloc((size_t)(n ? n : 1), 1);
    if (!text || !type) {
        free(text);
        free(type);
        return tfm_error(TFM_E_OOM, "%s: out of memory", label);
    }
    size_t bytes = 0;
    cJSON_ArrayForEach(it, vocab) {
        text[json_id(it)] = it->string;
        bytes += strlen(it->string) + 1;
    }
    const char *unk = get_str(model, "unk_token");
    int byte_fallback = get_bool(model, "byte_fallback", 0);
    cJSON_ArrayForEach(it, added) {
        int32_t id = json_id(get(it, "id"));
        text[id] = get_str(it, "content");
        type[id] = get_bool(it, "special", 0) ? TOK_TYPE_CONTROL : TOK_TYPE_USER_DEFINED;
        bytes += strlen(text[id]) + 1;
    }
    tfm_tokenizer *t = NULL;
    tfm_status st = tok_alloc(&t, bytelevel ? TOK_KIND_BYTELEVEL_BPE : TOK_KIND_SPM_BPE, TOK_FLAVOUR_HF, n, bytes);
    for (int32_t i = 0; i < n && st == TFM_OK; i++) {
        const char *s = text[i] ? text[i] : "";
        size_t len = strlen(s);
        tok_type ty = type[i] ? (tok_type)type[i] : TOK_TYPE_NORMAL;
        if (!text[i]) ty = TOK_TYPE_UNUSED; /* a hole in the ids */
        else if (!bytelevel && unk && strcmp(s, unk) == 0) ty = TOK_TYPE_UNKNOWN;
        else if (!bytelevel && byte_fallback && tok_piece_byte(s, len) >= 0) ty = TOK_TYPE_BYTE;
        st = tok_set_piece(t, i, s, len, 0.0f, ty);
    }
    free(text);
    free(type);
    if (st == TFM_OK) st = tok_finish(t, label);
    if (st == TFM_OK && merges) st = load_merges(t, merges, label);
    if (st != TFM_OK) goto fail;
    t->byte_fallback = byte_fallback;
    t->hf_fuse_unk = get_bool(model, "fuse_unk", 0);
    t->ignore_merges = get_bool(model, "ignore_merges", 0);
    if (!bytelevel) {
        for (int b = 0; b < 256; b++) { /* byte pieces by name, whatever their type */
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_id[b] = tok_map_find(&t->ids, name, 6);
        }
    }
    st = bytelevel ? bytelevel_options(t, root, label) : spm_options(t, root, label);
    if (st != TFM_OK) goto fail;
    cJSON_ArrayForEach(it, added) {
        int32_t id = json_id(get(it, "id"));
        if ((st = tok_add_special(t, id, !get_bool(it, "special", 0))) != TFM_OK) goto fail;
    }
    /* Defaults by name, then the template and configs. */
    t->bos = id_of_text(t, bytelevel ? "<|begin_of_text|>" : "<s>");
    t->eos = id_of_text(t, bytelevel ? "<|end_of_text|>" : "</s>");
    t->add_bos = t->add_eos = 0;
    apply_template(t, root);
    tok_apply_hf_configs(t, config_dir);
    *out = t;
    return TFM_OK;
fail:
    tfm_tokenizer_free(t);
    return st;
}

tfm_status tok_load_hf_json(const char *data, size_t size, const char *label, const char *config_dir,
                            tfm_tokenizer **out)
{
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, size, &end, 0);
    if (!root) {
        size_t off = (end && end >= data && end <= data + size) ? (size_t)(end - data) : 0;
        return tfm_error(TFM_E_FORMAT, "%s: not valid JSON (near byte %zu)", label, off);
    }
    tfm_status st = build(root, label, config_dir, out);
    cJSON_Delete(root);
    return st;
}
