/*
 * spm_model_file.c — a tokenizer from a SentencePiece .model file (a serialized ModelProto).
 *
 * The file is read with a small bounds-checked protobuf wire-format reader instead of protobuf-c:
 * we need four messages and a dozen scalar fields, the reader is ~100 lines with every length
 * checked against the buffer, and it spares the build a code generator and a library. Fields:
 *   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL)
 *   TrainerSpec     3 model_type (1 unigram, 2 bpe, 3 word, 4 char), 24 treat_whitespace_as_suffix,
 *                   35 byte_fallback, 44 unk_surface, 46 bos_piece, 47 eos_piece, 48 pad_piece
 *   NormalizerSpec  2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces,
 *                   5 escape_whitespaces (the three default to true)
 * Unknown fields are skipped, as protobuf requires.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_loaders.h"

typedef struct pb {
    const uint8_t *p, *end;
} pb;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static int pb_varint(pb *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return 0;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0; /* more than 10 bytes */
}

/* Reads the next field's tag. Returns 0 at the end of the message, -1 on malformed input. */
static int pb_next(pb *r, uint32_t *field, int *wt)
{
    if (r->p >= r->end) return 0;
    uint64_t key;
    if (!pb_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    return 1;
}

static int pb_len(pb *r, pb *sub)
{
    uint64_t n;
    if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p)) return 0;
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return 1;
}

static int pb_i32(pb *r, uint32_t *v)
{
    if (r->end - r->p < 4) return 0;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return 1;
}

static int pb_skip(pb *r, int wt)
{
    uint64_t v;
    pb sub;
    switch (wt) {
    case WT_VARINT: return pb_varint(r, &v);
    case WT_I64:
        if (r->end - r->p < 8) return 0;
        r->p += 8;
        return 1;
    case WT_LEN: return pb_len(r, &sub);
    case WT_I32:
        if (r->end - r->p < 4) return 0;
        r->p += 4;
        return 1;
    default: return 0; /* groups (3, 4) are not used by ModelProto */
    }
}

typedef struct spm_spec {
    int model_type;
    int treat_ws_suffix, byte_fallback;
    pb unk_surface, bos_piece, eos_piece, pad_piece;
    int has_unk_surface, has_bos, has_eos, has_pad;
    pb charsmap;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
} spm_spec;

#define BAD(what) tfm_error(TFM_E_FORMAT, "%s: malformed SentencePiece model: %s at byte %zu", label, what, \
                            (size_t)(r.p - base))

static tfm_status parse_trainer(pb r, const uint8_t *base, spm_spec *spec, const char *label)
{
    uint32_t f;
    int wt, rc;
    while ((rc = pb_next(&r, &f, &wt)) > 0) {
        uint64_t v;
        if (wt == WT_VARINT && (f == 3 || f == 24 || f == 35)) {
            if (!pb_varint(&r, &v)) return BAD("truncated trainer_spec varint");
            if (f == 3) spec->model_type = (int)(v & 0xFF);
            if (f == 24) spec->treat_ws_suffix = v != 0;
            if (f == 35) spec->byte_fallback = v != 0;
        } else if (wt == WT_LEN && (f == 44 || f == 46 || f == 47 || f == 48)) {
            pb s;
            if (!pb_len(&r, &s)) return BAD("truncated trainer_spec string");
            if (f == 44) spec->unk_surface = s, spec->has_unk_surface = 1;
            if (f == 46) spec->bos_piece = s, spec->has_bos = 1;
            if (f == 47) spec->eos_piece = s, spec->has_eos = 1;
            if (f == 48) spec->pad_piece = s, spec->has_pad = 1;
        } else if (!pb_skip(&r, wt)) {
            return BAD("truncated trainer_spec field");
        }
    }
    return rc < 0 ? BAD("bad trainer_spec tag") : TFM_OK;
}

static tfm_status parse_normalizer(pb r, const uint8_t *base, spm_spec *spec, const char *label)
{
    uint32_t f;
    int wt, rc;
    while ((rc = pb_next(&r, &f, &wt)) > 0) {
        uint64_t v;
        if (wt == WT_VARINT && f >= 3 && f <= 5) {
            if (!pb_varint(&r, &v)) return BAD("truncated normalizer_spec varint");
            if (f == 3) spec->add_dummy_prefix = v != 0;
            if (f == 4) spec->remove_extra_ws = v != 0;
            if (f == 5) spec->escape_ws = v != 0;
        } else if (wt == WT_LEN && f == 2) {
            if (!pb_len(&r, &spec->charsmap)) return BAD("truncated precompiled_charsmap");
        } else if (!pb_skip(&r, wt)) {
            return BAD("truncated normalizer_spec field");
        }
    }
    return rc < 0 ? BAD("bad normalizer_spec tag") : TFM_OK;
}

/* One SentencePiece message. */
static tfm_status parse_piece(pb r, const uint8_t *base, pb *piece, float *score, int *type,
                              const char *label)
{
    uint32_t f;
    int wt, rc;
    piece->p = piece->end = r.p;
    *score = 0.0f;
    *type = TOK_TYPE_NORMAL;
    while ((rc = pb_next(&r, &f, &wt)) > 0) {
        if (f == 1 && wt == WT_LEN) {
            if (!pb_len(&r, piece)) return BAD("truncated piece string");
        } else if (f == 2 && wt == WT_I32) {
            uint32_t u;
            if (!pb_i32(&r, &u)) return BAD("truncated piece score");
            memcpy(score, &u, 4);
        } else if (f == 3 && wt == WT_VARINT) {
            uint64_t v;
            if (!pb_varint(&r, &v)) return BAD("truncated piece type");
            *type = (int)v;
        } else if (!pb_skip(&r, wt)) {
            return BAD("truncated piece field");
        }
    }
    if (rc < 0) return BAD("bad piece tag");
    if (*type < TOK_TYPE_NORMAL || *type > TOK_TYPE_BYTE)
        return tfm_error(TFM_E_FORMAT, "%s: piece type %d is not a SentencePiece type (1..6)", label, *type);
    return TFM_OK;
}

/* What the sentencepiece library checks when it loads a model (ModelInterface::InitializePieces),
 * so that a model it refuses is refused here too:
 *   - a piece's text is unique among the NORMAL, USER_DEFINED and UNUSED pieces, and among the
 *     UNKNOWN, CONTROL and BYTE pieces (the same text may be in both groups: the reference keeps the
 *     two groups in two maps and accepts that);
 *   - at most one UNKNOWN piece (none is refused later);
 *   - BYTE pieces are named exactly <0x00> .. <0xFF> (upper-case hex, as the reference writes and
 *     reads them), exist only with byte_fallback, and byte_fallback needs all 256 of them. */
static int is_reserved(uint8_t type)
{
    return type == TOK_TYPE_UNKNOWN || type == TOK_TYPE_CONTROL || type == TOK_TYPE_BYTE;
}

static tfm_status check_pieces(const tfm_tokenizer *t, int byte_fallback, const char *label)
{
    char q[64];
    tok_map group[2];
    for (int g = 0; g < 2; g++)
        if (tok_map_init(&group[g], (size_t)t->n_vocab, t->text, t->offset, t->length) != TFM_OK) {
            if (g) tok_map_free(&group[0]);
            return tfm_error(TFM_E_OOM, "%s: out of memory", label);
        }
    tfm_status st = TFM_OK;
    int32_t unk = -1, n_bytes = 0;
    uint8_t seen[256] = {0};
    for (int32_t i = 0; i < t->n_vocab && st == TFM_OK; i++) {
        uint8_t ty = t->type[i];
        const char *p = tok_piece_ptr(t, i);
        size_t n = t->length[i];
        int g = is_reserved(ty);
        if (!tok_map_insert(&group[g], i)) {
            int32_t j = tok_map_find(&group[g], p, n);
            st = tfm_error(TFM_E_FORMAT, "%s: piece %d \"%s\" is defined twice (also piece %d)", label, (int)i,
                           tok_quote(p, n, q, sizeof q), (int)j);
        } else if (ty == TOK_TYPE_UNKNOWN && unk >= 0) {
            st = tfm_error(TFM_E_FORMAT, "%s: pieces %d and %d are both the unknown piece (type 2)", label, (int)unk,
                           (int)i);
        } else if (ty == TOK_TYPE_UNKNOWN) {
            unk = i;
        } else if (ty == TOK_TYPE_BYTE) {
            int b = tok_piece_byte(p, n);
            char canon[12];
            if (b >= 0) snprintf(canon, sizeof canon, "<0x%02X>", (unsigned char)b);
            if (b < 0 || memcmp(canon, p, 6) != 0)
                st = tfm_error(TFM_E_FORMAT, "%s: byte piece %d \"%s\" is not named <0x00> .. <0xFF>", label, (int)i,
                               tok_quote(p, n, q, sizeof q));
            else if (!byte_fallback)
                st = tfm_error(TFM_E_FORMAT, "%s: byte piece %d \"%s\" in a model without byte_fallback", label,
                               (int)i, canon);
            else
                seen[b] = 1, n_bytes++;
        }
    }
    tok_map_free(&group[0]);
    tok_map_free(&group[1]);
    if (st == TFM_OK && byte_fallback && n_bytes < 256) {
        int missing = 0;
        while (seen[missing]) missing++;
        st = tfm_error(TFM_E_FORMAT, "%s: byte_fallback is on but only %d of the 256 byte pieces are present "
                       "(<0x%02X> is missing)", label, (int)n_bytes, missing);
    }
    return st;
}

static int32_t find_piece(const tfm_tokenizer *t, const pb *s, const char *dflt, uint8_t want_type)
{
    int32_t id = s->p ? tok_map_find(&t->ids, (const char *)s->p, (size_t)(s->end - s->p))
                      : tok_map_find(&t->ids, dflt, strlen(dflt));
    return (id >= 0 && t->type[id] == want_type) ? id : -1;
}

tfm_status tok_load_spm_model(const void *data, size_t size, const char *label, tfm_tokenizer **out)
{
    *out = NULL;
    const uint8_t *base = data;
    pb r = {base, base + size};
    spm_spec spec = {.model_type = 1, .add_dummy_prefix = 1, .remove_extra_ws = 1, .escape_ws = 1};
    size_t n_pieces = 0, text_bytes = 0;
    uint32_t f;
    int wt, rc;
    tfm_status st;

    /* Pass 1: count pieces, read the specs. */
    while ((rc = pb_next(&r, &f, &wt)) > 0) {
        pb sub;
        if (wt == WT_LEN && (f == 1 || f == 2 || f == 3)) {
            if (!pb_len(&r, &sub)) return BAD("truncated field");
            if (f == 1) {
                n_pieces++;
                text_bytes += (size_t)(sub.end - sub.p) + 1;
            } else if (f == 2 && (st = parse_trainer(sub, base, &spec, label)) != TFM_OK) {
                return st;
            } else if (f == 3 && (st = parse_normalizer(sub, base, &spec, label)) != TFM_OK) {
                return st;
            }
        } else if (!pb_skip(&r, wt)) {
            return BAD("truncated field");
        }
    }
    if (rc < 0) return BAD("bad field tag");
    if (n_pieces == 0) return tfm_error(TFM_E_FORMAT, "%s: not a SentencePiece model (no pieces)", label);
    if (spec.model_type != 1 && spec.model_type != 2)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: SentencePiece model_type %d (%s) is not supported (unigram, bpe)",
                         label, spec.model_type,
                         spec.model_type == 3 ? "word" : spec.model_type == 4 ? "char" : "unknown");

    tfm_tokenizer *t;
    st = tok_alloc(&t, spec.model_type == 2 ? TOK_KIND_SPM_BPE : TOK_KIND_SPM_UNIGRAM,
                   TOK_FLAVOUR_SENTENCEPIECE, (int32_t)(n_pieces > (1u << 24) ? 0 : n_pieces), text_bytes);
    if (st != TFM_OK) return st;

    /* Pass 2: the pieces. */
    r = (pb){base, base + size};
    int32_t id = 0;
    while (st == TFM_OK && (rc = pb_next(&r, &f, &wt)) > 0) {
        pb sub;
        if (wt == WT_LEN && f == 1) {
            pb piece;
            float score;
            int type;
            pb_len(&r, &sub); /* checked in pass 1 */
            st = parse_piece(sub, base, &piece, &score, &type, label);
            if (st == TFM_OK && piece.end == piece.p)
                st = tfm_error(TFM_E_FORMAT, "%s: piece %d is empty", label, (int)id);
            if (st == TFM_OK)
                st = tok_set_piece(t, id++, (const char *)piece.p, (size_t)(piece.end - piece.p), score,
                                   (tok_type)type);
        } else {
            pb_skip(&r, wt);
        }
    }
    if (st == TFM_OK) st = tok_finish(t, label);
    if (st == TFM_OK) st = check_pieces(t, spec.byte_fallback, label);
    if (st != TFM_OK) goto fail;

    t->byte_fallback = spec.byte_fallback;
    t->norm.add_dummy_prefix = spec.add_dummy_prefix;
    t->norm.remove_extra_whitespaces = spec.remove_extra_ws;
    t->norm.escape_whitespaces = spec.escape_ws;
    t->norm.treat_whitespace_as_suffix = spec.treat_ws_suffix;
    if (spec.charsmap.p &&
        (st = tok_normalizer_set_charsmap(&t->norm, spec.charsmap.p, (size_t)(spec.charsmap.end - spec.charsmap.p),
                                          label)) != TFM_OK)
        goto fail;
    if (spec.has_unk_surface) {
        size_t n = (size_t)(spec.unk_surface.end - spec.unk_surface.p);
        if (n >= sizeof t->unk_surface) n = sizeof t->unk_surface - 1;
        memcpy(t->unk_surface, spec.unk_surface.p, n);
        t->unk_surface[n] = 0;
    }
    if (t->unk < 0) {
        st = tfm_error(TFM_E_FORMAT, "%s: SentencePiece model has no unknown piece", label);
        goto fail;
    }
    t->bos = find_piece(t, spec.has_bos ? &spec.bos_piece : &(pb){0}, "<s>", TOK_TYPE_CONTROL);
    t->eos = find_piece(t, spec.has_eos ? &spec.eos_piece : &(pb){0}, "</s>", TOK_TYPE_CONTROL);
    t->pad = find_piece(t, spec.has_pad ? &spec.pad_piece : &(pb){0}, "<pad>", TOK_TYPE_CONTROL);
    t->add_bos = 0; /* sentencepiece adds nothing unless asked */
    t->add_eos = 0;
    /* With TFM_TOKENIZE_PARSE_SPECIAL, control and unknown pieces are matched in the text. */
    for (int32_t i = 0; i < t->n_vocab && st == TFM_OK; i++)
        if (t->type[i] == TOK_TYPE_CONTROL || t->type[i] == TOK_TYPE_UNKNOWN) st = tok_add_special(t, i, 0);
    if (st != TFM_OK) goto fail;
    *out = t;
    return TFM_OK;
fail:
    tfm_tokenizer_free(t);
    return st;
}
