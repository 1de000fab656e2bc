/*
 * tok_internal.h — the tokenizer object and the pieces its modules share (internal).
 *
 * One struct serves all kinds: SentencePiece BPE and Unigram (from a .model file, a GGUF "llama"
 * vocabulary or a byte-fallback tokenizer.json) and byte-level BPE (tokenizer.json, GGUF "gpt2").
 * Loaders fill it through the tok_builder_* helpers; encoders and decoders only read it, so a
 * finished tokenizer is immutable and may be shared between threads.
 */
#ifndef TFM_LIB_TOKENIZER_TOK_INTERNAL_H
#define TFM_LIB_TOKENIZER_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tfm/tfm.h"
#include "tokenizer/tok_map.h"

typedef enum tok_kind {
    TOK_KIND_SPM_BPE = 0,      /* SentencePiece BPE: merges chosen by piece score */
    TOK_KIND_SPM_UNIGRAM = 1,  /* SentencePiece Unigram: Viterbi over piece log-probabilities */
    TOK_KIND_BYTELEVEL_BPE = 2 /* GPT-2 style byte-level BPE: merges chosen by merge rank */
} tok_kind;

/* Piece types; the values are SentencePiece's (and GGUF's tokenizer.ggml.token_type). */
typedef enum tok_type {
    TOK_TYPE_NORMAL = 1,
    TOK_TYPE_UNKNOWN = 2,
    TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4,
    TOK_TYPE_UNUSED = 5,
    TOK_TYPE_BYTE = 6
} tok_type;

/* Whose behaviour the tokenizer reproduces where implementations differ. */
typedef enum tok_flavour {
    TOK_FLAVOUR_SENTENCEPIECE = 0, /* the sentencepiece library (.model files) */
    TOK_FLAVOUR_LLAMA_CPP = 1,     /* llama.cpp (GGUF vocabularies) */
    TOK_FLAVOUR_HF = 2             /* Hugging Face tokenizers (tokenizer.json) */
} tok_flavour;

/* SentencePiece normaliser settings (NormalizerSpec) and its precompiled character map. */
typedef struct tok_normalizer {
    int add_dummy_prefix;
    int remove_extra_whitespaces;
    int escape_whitespaces;
    int treat_whitespace_as_suffix;
    const uint32_t *trie;    /* darts-clone double array units (aligned copy), NULL = identity */
    size_t trie_units;
    const char *strings;     /* NUL-separated replacement strings the trie's values index */
    size_t strings_len;
    void *owned;             /* allocation behind trie and strings */
} tok_normalizer;

struct tfm_tokenizer {
    tok_kind kind;
    tok_flavour flavour;
    int32_t n_vocab;
    char *text;              /* every piece, NUL-terminated, back to back */
    size_t text_cap;         /* bytes allocated for text (while building) */
    uint32_t *offset;        /* piece i starts at text + offset[i] */
    uint32_t *length;        /* its length in bytes (pieces may hold NUL in byte-level vocabularies) */
    float *score;
    uint8_t *type;           /* tok_type */
    tok_map ids;             /* piece text -> id (first id wins on duplicates) */

    int32_t bos, eos, unk, pad;
    int add_bos, add_eos;    /* what TFM_TOKENIZE_MODEL_DEFAULTS adds */
    int32_t byte_id[256];    /* SentencePiece <0xNN> pieces; byte-level: the piece of each byte; -1 */

    /* SentencePiece */
    tok_normalizer norm;
    int byte_fallback;
    float min_score, max_score;  /* over NORMAL pieces (Unigram unknown penalty, user symbols) */
    tok_trie pieces_trie;        /* Unigram: NORMAL, USER_DEFINED and UNUSED pieces */
    tok_trie user_trie;          /* USER_DEFINED pieces: never split or normalised */
    int has_user_pieces;
    char unk_surface[32];        /* what decoding the unknown piece gives */

    /* Special / added tokens matched in the input before the model runs. */
    tok_trie special_trie;       /* value = id */
    uint8_t *special_always;     /* per id: 1 = matched even without PARSE_SPECIAL */
    int has_specials;            /* any special string at all */
    int has_always_specials;     /* any matched without PARSE_SPECIAL */
    uint8_t special_first[32];   /* bit set: a special string starts with this byte */

    /* Byte-level BPE */
    tok_pairmap merges;          /* (left id, right id) -> (rank, merged id) */
    void *pretok;                /* pcre2_code* of the Split pre-tokenizer, NULL = none */
    void *pretok_match_ctx;      /* its pcre2_match_context* (the match limits), read-only */
    int ignore_merges;           /* a whole pre-token found in the vocabulary wins (Llama-3) */
    int hf_spm_strip_first_space;/* HF decoder Strip(" ", 1, 0) after Replace(▁, " ") */
    int hf_metaspace_first_only; /* HF Metaspace prepend_scheme "first": dummy prefix only at start */
    int hf_metaspace_split;      /* HF Metaspace split: each ▁-started word is encoded alone */
    int hf_fuse_unk;             /* HF BPE fuse_unk: a run of unknown characters is one unk */
};

/* ---- building (loaders) ---- */
tfm_status tok_alloc(tfm_tokenizer **out, tok_kind kind, tok_flavour flavour, int32_t n_vocab,
                     size_t text_bytes_hint);
/* Sets piece `id`; copies `len` bytes. Pieces must be set in id order. */
tfm_status tok_set_piece(tfm_tokenizer *t, int32_t id, const char *piece, size_t len, float score,
                         tok_type type);
/* Builds indexes (ids map, tries, byte ids, score range) after all pieces are set. */
tfm_status tok_finish(tfm_tokenizer *t, const char *label);
/* Marks `id` as a special token string matched in the input (always=1: even without PARSE_SPECIAL). */
tfm_status tok_add_special(tfm_tokenizer *t, int32_t id, int always);
/* `s[0..n)` made fit for an error message in `buf` (cap >= 8): valid UTF-8 kept, control characters
 * and malformed bytes written as \xNN, cut with "..." where it does not fit. Returns buf. */
const char *tok_quote(const char *s, size_t n, char *buf, size_t cap);
/* The ids of pieces a and b and of their concatenation (each -1 if it is no piece); `buf`/`cap` is
 * scratch space the call grows (TFM_E_OOM, without a message, if it cannot). */
tfm_status tok_merge_lookup(const tfm_tokenizer *t, const char *a, size_t la, const char *b, size_t lb, char **buf,
                            size_t *cap, int32_t ids[3]);
/* A BPE merge written "left right" (GGUF, tokenizer.json strings). Each space after the first byte is
 * tried as the separator, first to last, and the first split whose two sides and their concatenation
 * are all pieces wins: in byte-level vocabularies (spaces written U+0120) and SentencePiece ones
 * (U+2581) there is exactly one space; a piece may begin with a space, and should pieces hold
 * spaces, a later split still finds them. TFM_OK with the three ids; TFM_E_FORMAT with *why
 * ("has no space ...", "names a piece that is not in the vocabulary" ...), no message recorded;
 * TFM_E_OOM. */
tfm_status tok_merge_split(const tfm_tokenizer *t, const char *m, size_t n, char **buf, size_t *cap, int32_t ids[3],
                           const char **why);
/* Parses "<0xNN>"; -1 if the piece is not of that form. */
int tok_piece_byte(const char *piece, size_t len);

static inline const char *tok_piece_ptr(const tfm_tokenizer *t, int32_t id) { return t->text + t->offset[id]; }

/* ---- encoding ---- */

/* A growable id buffer. */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;
tfm_status tok_ids_push(tok_ids *ids, int32_t id);

/* Installs a precompiled_charsmap blob (copied); an empty blob means identity. */
tfm_status tok_normalizer_set_charsmap(tok_normalizer *n, const void *blob, size_t len,
                                       const char *label);
tfm_status tok_spm_normalize(const tfm_tokenizer *t, const char *text, size_t len, char **out,
                             size_t *out_len);
tfm_status tok_spm_bpe_encode(const tfm_tokenizer *t, const char *s, size_t len, tok_ids *out);
tfm_status tok_spm_unigram_encode(const tfm_tokenizer *t, const char *s, size_t len, tok_ids *out);
tfm_status tok_bytelevel_encode(const tfm_tokenizer *t, const char *s, size_t len, tok_ids *out);

/* Encodes one fragment of plain text (no special tokens) with the tokenizer's model.
 * `at_start` says whether it begins the input (HF Metaspace prepend_scheme "first"). */
tfm_status tok_encode_fragment(const tfm_tokenizer *t, const char *s, size_t len, int at_start, tok_ids *out);

/* ---- byte-level helpers ---- */
/* The UTF-8 text (2 or 3 bytes... at most 4) GPT-2's byte-to-unicode map gives byte b; returns length. */
int tok_bytelevel_char(unsigned b, char out[4]);
/* Compiles the Split pre-tokenizer regex (PCRE2, UTF + UCP, JIT when available). A pattern that does
 * not compile is TFM_E_FORMAT when it is malformed in any dialect (unbalanced parentheses, a reversed
 * range ...), else TFM_E_UNSUPPORTED (a construct PCRE2 lacks); the message quotes the pattern. */
tfm_status tok_pretok_compile(tfm_tokenizer *t, const char *pattern, size_t len, const char *label);
/* Only checks that `pattern` compiles, with the same statuses; `what` names its role in messages. */
tfm_status tok_regex_check(const char *pattern, size_t len, const char *label, const char *what);
void tok_pretok_free(tfm_tokenizer *t);
/* Splits `s` into pre-tokens (Isolated behaviour) and calls fn on each. A run of malformed UTF-8
 * bytes is a pre-token of its own. */
tfm_status tok_pretok_split(const tfm_tokenizer *t, const char *s, size_t len,
                            tfm_status (*fn)(const tfm_tokenizer *, const char *, size_t, tok_ids *),
                            tok_ids *out);
/* The Llama-3 (tiktoken cl100k-style) pattern, used for GGUF pre "llama-bpe". */
extern const char tok_llama3_pattern[];

#endif
