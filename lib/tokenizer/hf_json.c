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
 * Other models, normalizers, pre-tokenizers or decoders give TFM_E_UNSUPPORTED naming them; what HF
 * itself refuses (text that is not UTF-8, merges outside the vocabulary, a Metaspace replacement that
 * is not one character, a regex that does not compile, configs that are not JSON) TFM_E_FORMAT.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_loaders.h"
#include "tokenizer/tok_utf8.h"

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

/* Parses `dir`/`name` into *out. A file that is absent (or not a regular file) leaves *out NULL and is
 * no error; one that cannot be read or is not JSON is (Hugging Face's loaders fail on it too). */
static tfm_status read_json(const char *dir, const char *name, cJSON **out)
{
    *out = NULL;
    if (!dir) return TFM_OK;
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path) return tfm_error(TFM_E_OOM, "%s: out of memory", dir);
    snprintf(path, n, "%s/%s", dir, name);
    char *text;
    size_t size;
    tfm_status st = tok_read_small_file(path, 64u << 20, &text, &size);
    if (st == TFM_E_IO && !tfm_last_error()[0]) {
        st = TFM_OK; /* absent: tok_read_small_file leaves no message */
    } else if (st == TFM_OK) {
        const char *end = NULL;
        *out = cJSON_ParseWithLengthOpts(text, size, &end, 0);
        if (!*out) {
            size_t off = (end && end >= text && end <= text + size) ? (size_t)(end - text) : 0;
            st = tfm_error(TFM_E_FORMAT, "%s: not valid JSON (near byte %zu)", path, off);
        }
        free(text);
    }
    free(path);
    return st;
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
tfm_status tok_apply_hf_configs(tfm_tokenizer *t, const char *dir)
{
    cJSON *gen = NULL, *cfg = NULL, *tcfg = NULL;
    tfm_status st = read_json(dir, "generation_config.json", &gen);
    if (st == TFM_OK) st = read_json(dir, "config.json", &cfg);
    if (st == TFM_OK) st = read_json(dir, "tokenizer_config.json", &tcfg);
    const cJSON *srcs[2] = {gen, cfg};
    for (int k = 0; k < 2 && st == TFM_OK; k++) {
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
    return st;
}

/* Reads merges given as "left right" strings or as ["left", "right"] pairs. As Hugging Face
 * tokenizers does, both sides and their concatenation must be in the vocabulary (it fails with
 * MergeTokenOutOfVocabulary otherwise) and a string needs a space between two pieces; a string
 * starting with "#version" (a merges.txt header) is skipped without taking a rank. */
static tfm_status load_merges(tfm_tokenizer *t, const cJSON *merges, const char *label)
{
    int n = cJSON_GetArraySize(merges);
    if (tok_pairmap_init(&t->merges, (size_t)(n > 0 ? n : 1)) != TFM_OK)
        return tfm_error(TFM_E_OOM, "%s: out of memory for %d merges", label, n);
    char *buf = NULL;
    size_t cap = 0;
    int rank = 0, index = -1;
    tfm_status st = TFM_OK;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        int32_t ids[3];
        const char *why = NULL, *a = NULL, *b = NULL;
        index++;
        if (cJSON_IsString(m)) {
            a = m->valuestring;
            if (strncmp(a, "#version", 8) == 0) continue;
            st = tok_merge_split(t, a, strlen(a), &buf, &cap, ids, &why);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            a = m->child->valuestring, b = m->child->next->valuestring;
            st = tok_merge_lookup(t, a, strlen(a), b, strlen(b), &buf, &cap, ids);
            if (st == TFM_OK && ids[2] < 0) {
                st = TFM_E_FORMAT;
                why = ids[0] < 0 || ids[1] < 0 ? "names a piece that is not in the vocabulary"
                                               : "merges into a piece that is not in the vocabulary";
            }
        } else {
            st = tfm_error(TFM_E_FORMAT, "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", label, index);
            break;
        }
        if (st == TFM_E_OOM) {
            st = tfm_error(st, "%s: out of memory", label);
            break;
        }
        if (st != TFM_OK) {
            char qa[96], qb[64];
            tok_quote(a, strlen(a), qa, sizeof qa);
            if (b)
                st = tfm_error(st, "%s: model.merges[%d] [\"%s\", \"%s\"] %s", label, index, qa,
                               tok_quote(b, strlen(b), qb, sizeof qb), why);
            else
                st = tfm_error(st, "%s: model.merges[%d] \"%s\" %s", label, index, qa, why);
            break;
        }
        tok_pairmap_insert(&t->merges, ids[0], ids[1], rank++, ids[2]);
    }
    free(buf);
    return st;
}

/* The members of a component that may be a Sequence (all of them, or `o` itself), for checks. */
#define FOR_EACH_MEMBER(it, o, list_key)                                                                   \
    for (const cJSON *seq_ = is_type(o, "Sequence") ? get(o, list_key) : NULL,                            \
                     *it = seq_ ? seq_->child : (o && !cJSON_IsNull(o) ? o : NULL);                        \
         it; it = seq_ ? it->next : NULL)

/* A Replace normalizer or decoder: SentencePiece-style files use Replace(String " ", "▁") to escape
 * spaces and Replace(String "▁", " ") to undo it; other replacements are not implemented. A Regex
 * pattern that does not compile is malformed (as HF refuses it), one that compiles unsupported. */
static tfm_status check_replace(const cJSON *rep, const char *from, const char *to, const char *where,
                                const char *label)
{
    const cJSON *pat = get(rep, "pattern");
    const char *str = get_str(pat, "String"), *re = get_str(pat, "Regex"), *content = get_str(rep, "content");
    if (re) {
        char what[48];
        snprintf(what, sizeof what, "%s Replace", where);
        tfm_status st = tok_regex_check(re, strlen(re), label, what);
        if (st != TFM_OK) return st;
    }
    if ((!str && !re) || !content)
        return tfm_error(TFM_E_FORMAT, "%s: %s Replace needs a pattern (String or Regex) and a content string", label,
                         where);
    if (!str || strcmp(str, from) != 0 || strcmp(content, to) != 0) {
        char qs[48], qc[48];
        return tfm_error(TFM_E_UNSUPPORTED, "%s: %s Replace of %s%s%s by \"%s\" is not supported (only \"%s\" by \"%s\")",
                         label, where, str ? "\"" : "a regex", str ? tok_quote(str, strlen(str), qs, sizeof qs) : "",
                         str ? "\"" : "", tok_quote(content, strlen(content), qc, sizeof qc), from, to);
    }
    return TFM_OK;
}

/* A Metaspace pre-tokenizer or decoder. HF reads `replacement` into one character (a Rust char), so
 * anything else is malformed; a character other than U+2581 is not implemented. Absent means U+2581. */
static tfm_status check_metaspace(const cJSON *ms, const char *where, const char *label)
{
    const cJSON *r = get(ms, "replacement");
    if (!r) return TFM_OK;
    char q[48];
    size_t n = cJSON_IsString(r) ? strlen(r->valuestring) : 0;
    if (!cJSON_IsString(r) || n == 0 || tok_utf8_valid_len(r->valuestring, n) != n)
        return tfm_error(TFM_E_FORMAT, "%s: %s Metaspace replacement %s%s%s is not one character", label, where,
                         n ? "\"" : "", n ? tok_quote(r->valuestring, n, q, sizeof q) : "(not a string)", n ? "\"" : "");
    if (strcmp(r->valuestring, "\xE2\x96\x81") != 0)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: %s Metaspace replacement \"%s\" is not supported (U+2581)", label,
                         where, tok_quote(r->valuestring, n, q, sizeof q));
    return TFM_OK;
}

/* SentencePiece-style options from the normalizer / pre-tokenizer / decoder. */
static tfm_status spm_options(tfm_tokenizer *t, const cJSON *root, const char *label)
{
    static const char *const norm_ok[] = {"Prepend", "Replace", NULL};
    static const char *const pre_ok[] = {"Metaspace", NULL};
    static const char *const dec_ok[] = {"Replace", "ByteFallback", "Fuse", "Strip", "Metaspace", NULL};
    const cJSON *norm = get(root, "normalizer"), *pre = get(root, "pre_tokenizer"), *dec = get(root, "decoder");
    const char *bad = first_unsupported(norm, "normalizers", norm_ok);
    if (bad) return tfm_error(TFM_E_UNSUPPORTED, "%s: normalizer \"%s\" is not supported (Prepend, Replace)", label, bad);
    bad = first_unsupported(pre, "pretokenizers", pre_ok);
    if (bad) return tfm_error(TFM_E_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported here (Metaspace)", label, bad);
    bad = first_unsupported(dec, "decoders", dec_ok);
    if (bad)
        return tfm_error(TFM_E_UNSUPPORTED,
                         "%s: decoder \"%s\" is not supported here (Replace, ByteFallback, Fuse, Strip, Metaspace)", label,
                         bad);
    tfm_status st = TFM_OK;
    FOR_EACH_MEMBER(it, norm, "normalizers") {
        if (st == TFM_OK && is_type(it, "Replace")) st = check_replace(it, " ", "\xE2\x96\x81", "normalizer", label);
    }
    FOR_EACH_MEMBER(it, pre, "pretokenizers") {
        if (st == TFM_OK && is_type(it, "Metaspace")) st = check_metaspace(it, "pre_tokenizer", label);
    }
    FOR_EACH_MEMBER(it, dec, "decoders") {
        if (st == TFM_OK && is_type(it, "Replace")) st = check_replace(it, "\xE2\x96\x81", " ", "decoder", label);
        if (st == TFM_OK && is_type(it, "Metaspace")) st = check_metaspace(it, "decoder", label);
    }
    if (st != TFM_OK) return st;
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
    static const char *const dec_ok[] = {"ByteLevel", NULL};
    const cJSON *pre = get(root, "pre_tokenizer"), *norm = get(root, "normalizer");
    if (norm && !cJSON_IsNull(norm))
        return tfm_error(TFM_E_UNSUPPORTED, "%s: normalizer \"%s\" with a byte-level BPE is not supported", label,
                         get_str(norm, "type") ? get_str(norm, "type") : "?");
    const char *bad = first_unsupported(pre, "pretokenizers", pre_ok);
    if (bad) return tfm_error(TFM_E_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported (Split, ByteLevel)", label, bad);
    bad = first_unsupported(get(root, "decoder"), "decoders", dec_ok);
    if (bad)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: decoder \"%s\" with a byte-level BPE is not supported (ByteLevel)", label,
                         bad);
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

/* After a merge was refused: we keep one text per id, so a model.vocab entry whose id also belongs to
 * another text (a second vocab entry with the same id, or an added token) is no piece of ours, and a
 * merge naming it fails. Hugging Face keeps both (it warns and gives the added token another id), so
 * the message says when that is the likely cause. */
static void hint_lost_pieces(const tfm_tokenizer *t, const cJSON *vocab)
{
    const cJSON *it, *first = NULL;
    int n_lost = 0;
    cJSON_ArrayForEach(it, vocab) {
        if (strcmp(tok_piece_ptr(t, json_id(it)), it->string) != 0 && n_lost++ == 0) first = it;
    }
    if (!first) return;
    int32_t id = json_id(first);
    char msg[1024], qa[48], qb[48];
    snprintf(msg, sizeof msg, "%s (in %d model.vocab entr%s the id also belongs to another text, e.g. \"%s\" and "
             "\"%s\" both have id %d; libtfm keeps one text per id)", tfm_last_error(), n_lost,
             n_lost == 1 ? "y" : "ies", tok_quote(first->string, strlen(first->string), qa, sizeof qa),
             tok_quote(tok_piece_ptr(t, id), t->length[id], qb, sizeof qb), (int)id);
    tfm_error(TFM_E_FORMAT, "%s", msg);
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
    if (st == TFM_OK && merges && (st = load_merges(t, merges, label)) == TFM_E_FORMAT)
        hint_lost_pieces(t, vocab);
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
    if ((st = tok_apply_hf_configs(t, config_dir)) != TFM_OK) goto fail;
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
    /* JSON text is UTF-8 (RFC 8259); HF reads the file into a Rust String, which refuses anything
     * else, and cJSON would pass malformed bytes through into pieces and names. */
    for (size_t i = 0; i < size;) {
        size_t used;
        if ((unsigned char)data[i] < 0x80) {
            i++;
        } else if (tok_utf8_check((const unsigned char *)data + i, size - i, &used, NULL) == TOK_UTF8_VALID) {
            i += used;
        } else {
            return tfm_error(TFM_E_FORMAT, "%s: not valid UTF-8 at byte %zu (byte 0x%02X); JSON text must be UTF-8",
                             label, i, (unsigned char)data[i]);
        }
    }
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
