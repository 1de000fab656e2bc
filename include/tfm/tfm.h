/*
 * tfm.h — the public C API of libtfm, an embeddable transformer inference library.
 *
 * This is the only installed header. Every exported name starts with tfm_ / TFM_.
 *
 * ABI promise (see docs/api.md):
 *   - functions are never removed or changed within a major version; new behaviour gets a new function;
 *   - enum values are fixed and only appended;
 *   - params/info structs begin with `struct_size` and only ever grow at the end; always initialise
 *     them with the matching tfm_*_params_default() (an inline wrapper of tfm_*_params_init, which
 *     takes the caller's struct size) so the library knows which fields you compiled with;
 *   - objects are opaque handles: tfm_model, tfm_session, tfm_tensor, tfm_tokenizer, tfm_sampler,
 *     tfm_text_stream. Each has a create/load function and a free function; freeing NULL is a no-op.
 *
 * Errors: every fallible call returns a tfm_status. On failure tfm_last_error() holds a detailed,
 * thread-local message (which file, which offset, which tensor, what was expected). The library never
 * prints and never aborts on bad input; diagnostic logging goes to a callback the host installs.
 *
 * Threads: a tfm_model is immutable after load and may be shared by any number of threads; a
 * tfm_session, tfm_sampler or tfm_text_stream must be used by one thread at a time; a tfm_tokenizer
 * is immutable and shareable. Sessions of one model may run on different threads; their forward passes
 * take turns on the model's backend (one at a time per model), so results never depend on timing.
 * Callbacks run on the thread that made the call that invokes them.
 */
#ifndef TFM_TFM_H
#define TFM_TFM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------
 * Visibility
 * ------------------------------------------------------------------------------------------------- */
#if defined(_WIN32) && defined(TFM_BUILDING_LIBRARY)
#define TFM_API __declspec(dllexport)
#elif defined(_WIN32)
#define TFM_API __declspec(dllimport)
#elif defined(__GNUC__) && defined(TFM_BUILDING_LIBRARY)
#define TFM_API __attribute__((visibility("default")))
#else
#define TFM_API
#endif

/* ---------------------------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------------------------- */
#define TFM_VERSION_MAJOR 0
#define TFM_VERSION_MINOR 1
#define TFM_VERSION_PATCH 0
#define TFM_VERSION_STRING "0.1.0"
/* MAJOR*10000 + MINOR*100 + PATCH, e.g. 0.1.0 -> 100. */
#define TFM_VERSION_NUMBER (TFM_VERSION_MAJOR * 10000 + TFM_VERSION_MINOR * 100 + TFM_VERSION_PATCH)

/* The library's version number at run time, encoded as TFM_VERSION_NUMBER. A program can compare it
 * with the header it was compiled with: same major and run-time >= compile-time is compatible.
 * Never fails; any thread. Since 0.1. */
TFM_API int tfm_version_number(void);

/* The library's version as a static string such as "0.1.0". Never fails; any thread. Since 0.1. */
TFM_API const char *tfm_version_string(void);

/* ---------------------------------------------------------------------------------------------------
 * Status codes and errors
 * ------------------------------------------------------------------------------------------------- */
typedef enum tfm_status {
    TFM_OK = 0,
    TFM_E_INVALID_ARGUMENT = 1,  /* a NULL handle, an out-of-range value, a bad token id */
    TFM_E_IO = 2,                /* a file could not be opened, read or mapped */
    TFM_E_FORMAT = 3,            /* a model or tokenizer file is malformed (truncated, bad offsets, ...) */
    TFM_E_UNSUPPORTED = 4,       /* well-formed but not supported: architecture, dtype, feature */
    TFM_E_OOM = 5,               /* memory (host or device, or the caller's memory limit) exhausted */
    TFM_E_CONTEXT_FULL = 6,      /* the tokens do not fit in the session's context; nothing was changed */
    TFM_E_BACKEND = 7,           /* unknown or unavailable backend, or a backend failure */
    TFM_E_ABORTED = 8,           /* a callback asked to stop */
    TFM_E_STATE = 9,             /* the call is not valid now (e.g. logits before any eval) */
    TFM_E_BUFFER_TOO_SMALL = 10, /* a caller's buffer is too small; the size needed was reported */
    TFM_E_INTERNAL = 11          /* a bug in libtfm; please report it with tfm_last_error() */
} tfm_status;

/* A static, human-readable name for any status value (unknown values give "unknown status").
 * Never fails; any thread. Since 0.1. */
TFM_API const char *tfm_status_string(tfm_status status);

/* The detailed message of the last failed call on the calling thread, or "" if none failed.
 * The string is owned by the library and valid until the next libtfm call on this thread.
 * Thread-local: errors on one thread never show up on another. Since 0.1. */
TFM_API const char *tfm_last_error(void);

/* ---------------------------------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------------------------------- */
typedef enum tfm_log_level {
    TFM_LOG_ERROR = 0,
    TFM_LOG_WARN = 1,
    TFM_LOG_INFO = 2,
    TFM_LOG_DEBUG = 3
} tfm_log_level;

/* Receives one complete message (no trailing newline). Runs on the thread that logged. */
typedef void (*tfm_log_fn)(tfm_log_level level, const char *message, void *user_data);

/* Installs a process-wide log callback (NULL: discard all messages, the default) and the most verbose
 * level delivered. Set it before loading models; not synchronised with concurrent logging. Since 0.1. */
TFM_API void tfm_set_log_callback(tfm_log_fn callback, void *user_data, tfm_log_level max_level);

/* ---------------------------------------------------------------------------------------------------
 * Backends
 * ------------------------------------------------------------------------------------------------- */

/* Number of known backends: those compiled in ("cpu") plus plugins found next to the library or in
 * the folders of TFM_BACKEND_PATH (e.g. "cuda"). Scans for plugins on first use. Any thread. Since 0.1. */
TFM_API int tfm_backend_count(void);

/* Name of backend `index` (0 <= index < tfm_backend_count()), a static string; NULL if out of range.
 * Since 0.1. */
TFM_API const char *tfm_backend_name(int index);

/* 1 if the named backend can run on this machine now (e.g. "cuda" with a GPU present), else 0.
 * "auto" is available whenever any backend is. Since 0.1. */
TFM_API int tfm_backend_available(const char *name);

/* ---------------------------------------------------------------------------------------------------
 * Data types and tensors
 * ------------------------------------------------------------------------------------------------- */
typedef enum tfm_dtype {
    TFM_DTYPE_F32 = 0,
    TFM_DTYPE_F16 = 1,
    TFM_DTYPE_BF16 = 2,
    TFM_DTYPE_I32 = 3,
    TFM_DTYPE_Q8_0 = 8,  /* GGUF block types, as llama.cpp defines their layout */
    TFM_DTYPE_Q4_0 = 9,
    TFM_DTYPE_Q4_K = 10,
    TFM_DTYPE_Q6_K = 11,
    TFM_DTYPE_Q5_K = 12
} tfm_dtype;

/* Static name of a dtype ("f32", "q4_0", ...; "unknown" otherwise). Since 0.1. */
TFM_API const char *tfm_dtype_name(tfm_dtype dtype);

/* A tensor: dtype, up to 4 dimensions (row-major, last dimension contiguous) and host data. */
typedef struct tfm_tensor tfm_tensor;

/* Creates a zero-filled host tensor owning its data. `shape` has `ndim` (1..4) positive entries.
 * Errors: TFM_E_INVALID_ARGUMENT, TFM_E_OOM. Free with tfm_tensor_free. Since 0.1. */
TFM_API tfm_status tfm_tensor_create(tfm_dtype dtype, int ndim, const int64_t *shape, tfm_tensor **out);

/* Frees a tensor handle (and its data if it owns it). NULL is a no-op. Since 0.1. */
TFM_API void tfm_tensor_free(tfm_tensor *tensor);

/* Accessors; never fail on a valid handle. tfm_tensor_dim returns 0 for dims >= ndim. */
TFM_API tfm_dtype tfm_tensor_dtype(const tfm_tensor *tensor);
TFM_API int tfm_tensor_ndim(const tfm_tensor *tensor);
TFM_API int64_t tfm_tensor_dim(const tfm_tensor *tensor, int dim);
/* Host pointer to the data. For a tensor returned by a session it is a view into the session's
 * memory, valid until that session's next eval/rewind/reset/free (the function's doc says so). */
TFM_API void *tfm_tensor_data(const tfm_tensor *tensor);
/* Size of the data in bytes. */
TFM_API size_t tfm_tensor_nbytes(const tfm_tensor *tensor);

/* ---------------------------------------------------------------------------------------------------
 * Tokenizer
 * ------------------------------------------------------------------------------------------------- */
typedef struct tfm_tokenizer tfm_tokenizer;

/* Flags for tfm_tokenize. */
#define TFM_TOKENIZE_ADD_BOS 1u       /* prepend the BOS token */
#define TFM_TOKENIZE_ADD_EOS 2u       /* append the EOS token */
#define TFM_TOKENIZE_PARSE_SPECIAL 4u /* text such as "<s>" becomes the special id (else plain text) */
#define TFM_TOKENIZE_MODEL_DEFAULTS 8u /* add BOS/EOS as the tokenizer file says (add_bos_token etc.) */

/* Loads a tokenizer on its own: a SentencePiece .model file, a Hugging Face tokenizer.json, a HF model
 * directory, or a GGUF file's vocabulary. Free with tfm_tokenizer_free. The tokenizer is immutable
 * and may be shared across threads. Errors: TFM_E_IO, TFM_E_FORMAT, TFM_E_UNSUPPORTED. Since 0.1. */
TFM_API tfm_status tfm_tokenizer_load(const char *path, tfm_tokenizer **out);

/* Frees a tokenizer from tfm_tokenizer_load. NULL is a no-op. Do not free the one a model owns. */
TFM_API void tfm_tokenizer_free(tfm_tokenizer *tokenizer);

/* Encodes `text` (`length` bytes; need not be NUL-terminated nor valid UTF-8) into at most `capacity`
 * ids. *n_ids receives the number of ids; if capacity is too small it receives the number needed and
 * TFM_E_BUFFER_TOO_SMALL is returned (ids may be NULL with capacity 0 to ask for the size).
 * Any thread. Since 0.1. */
TFM_API tfm_status tfm_tokenize(const tfm_tokenizer *tokenizer, const char *text, size_t length,
                                uint32_t flags, int32_t *ids, size_t capacity, size_t *n_ids);

/* Decodes ids into UTF-8 bytes as the reference tokenizer does (e.g. SentencePiece drops the dummy
 * prefix space of the first piece). Special tokens such as BOS/EOS produce no text. *length receives
 * the number of bytes written (not NUL-terminated); TFM_E_BUFFER_TOO_SMALL reports the size needed.
 * Errors: TFM_E_INVALID_ARGUMENT for an id out of range. Since 0.1. */
TFM_API tfm_status tfm_detokenize(const tfm_tokenizer *tokenizer, const int32_t *ids, size_t n_ids,
                                  char *text, size_t capacity, size_t *length);

/* Vocabulary facts. tfm_token_piece returns the raw piece string of an id (static for the
 * tokenizer's lifetime) or NULL if out of range. Special ids are -1 when the vocabulary has none. */
TFM_API int32_t tfm_tokenizer_vocab_size(const tfm_tokenizer *tokenizer);
TFM_API int32_t tfm_tokenizer_bos(const tfm_tokenizer *tokenizer);
TFM_API int32_t tfm_tokenizer_eos(const tfm_tokenizer *tokenizer);
TFM_API const char *tfm_token_piece(const tfm_tokenizer *tokenizer, int32_t id);
/* Static name of the tokenizer kind: "sentencepiece-bpe", "sentencepiece-unigram", "bpe-bytelevel". */
TFM_API const char *tfm_tokenizer_kind(const tfm_tokenizer *tokenizer);

/* Streaming decoder: turns ids into text one id at a time without ever splitting a UTF-8 character
 * (incomplete byte sequences are held back until they complete). One per stream, one thread at a time. */
typedef struct tfm_text_stream tfm_text_stream;

/* Creates a stream over `tokenizer`, which must outlive it. Since 0.1. */
TFM_API tfm_status tfm_text_stream_create(const tfm_tokenizer *tokenizer, tfm_text_stream **out);
TFM_API void tfm_text_stream_free(tfm_text_stream *stream);
/* Pushes one id; *text points at the complete UTF-8 text it released (possibly empty), owned by the
 * stream and valid until the next call on it. Errors: TFM_E_INVALID_ARGUMENT for an id out of range. */
TFM_API tfm_status tfm_text_stream_push(tfm_text_stream *stream, int32_t id, const char **text,
                                        size_t *length);
/* Releases whatever is held back (an incomplete sequence comes out as U+FFFD) and resets the stream. */
TFM_API tfm_status tfm_text_stream_flush(tfm_text_stream *stream, const char **text, size_t *length);

/* ---------------------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------------------- */
typedef struct tfm_model tfm_model;

/* Called during loading with progress in [0,1]; return nonzero to cancel (load returns TFM_E_ABORTED). */
typedef int (*tfm_progress_fn)(float progress, void *user_data);

typedef struct tfm_model_params {
    size_t struct_size;          /* sizeof(tfm_model_params), set by tfm_model_params_default */
    const char *backend;         /* "auto" (default), "cpu", "cuda" */
    int32_t n_threads;           /* cpu threads; 0 = the machine's cores (default) */
    tfm_progress_fn progress;    /* optional load progress / cancel callback */
    void *progress_user_data;
    size_t memory_limit;         /* max bytes of session memory (KV caches + activations), summed over all
                                    live sessions of this model; 0 = none. CPU weights are mapped, not counted */
    int32_t device;              /* GPU ordinal for device backends (default 0) */
} tfm_model_params;

/* Fills `params` with the defaults for a struct of `struct_size` bytes (pass sizeof *params): a
 * program built against an older, smaller struct gets only the fields it knows. Since 0.1. */
TFM_API void tfm_model_params_init(tfm_model_params *params, size_t struct_size);

/* The defaults as a value, sized by the header the caller compiled with. Since 0.1. */
static inline tfm_model_params tfm_model_params_default(void) {
    tfm_model_params params;
    tfm_model_params_init(&params, sizeof params);
    return params;
}

/* Loads a model from a GGUF file or a Hugging Face directory (config.json + *.safetensors).
 * CPU weights stay memory-mapped. params may be NULL for defaults. On failure *out is NULL and
 * tfm_last_error() names the problem. Errors: TFM_E_IO, TFM_E_FORMAT, TFM_E_UNSUPPORTED, TFM_E_OOM,
 * TFM_E_BACKEND, TFM_E_ABORTED. The model is immutable and may be shared by threads. Since 0.1. */
TFM_API tfm_status tfm_model_load(const char *path, const tfm_model_params *params, tfm_model **out);

/* Loads a GGUF model from memory. The library does not copy the bytes: `data` must stay valid and
 * unchanged until tfm_model_free. Errors as tfm_model_load. Since 0.1. */
TFM_API tfm_status tfm_model_load_from_memory(const void *data, size_t size,
                                              const tfm_model_params *params, tfm_model **out);

/* Frees a model. All its sessions must have been freed first. NULL is a no-op. Since 0.1. */
TFM_API void tfm_model_free(tfm_model *model);

typedef struct tfm_model_info {
    size_t struct_size;          /* set by the caller to sizeof(tfm_model_info) */
    const char *architecture;    /* e.g. "llama"; static for the model's lifetime */
    const char *format;          /* "gguf" or "safetensors" */
    const char *backend;         /* the backend the model runs on */
    const char *name;            /* general.name or the directory name; may be "" */
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;
    int32_t n_ff;
    float rope_theta;
    float rms_eps;
    tfm_dtype weight_dtype;      /* dtype of most matrix weights */
    int64_t n_params;
    int64_t weight_bytes;
    int32_t tied_embeddings;     /* 1 when the LM head reuses the token embedding */
} tfm_model_info;

/* Fills `info` (the caller sets info->struct_size first). Since 0.1. */
TFM_API tfm_status tfm_model_get_info(const tfm_model *model, tfm_model_info *info);

/* The model's tokenizer, owned by the model (do not free), or NULL if the file carries none. */
TFM_API const tfm_tokenizer *tfm_model_tokenizer(const tfm_model *model);

/* ---------------------------------------------------------------------------------------------------
 * Sessions: one sequence's KV cache and logits
 * ------------------------------------------------------------------------------------------------- */
typedef struct tfm_session tfm_session;

/* Called between layers and between tokens; return nonzero to stop (the call returns TFM_E_ABORTED
 * and the session keeps the tokens evaluated before the aborted call). */
typedef int (*tfm_abort_fn)(void *user_data);

typedef struct tfm_session_params {
    size_t struct_size;          /* sizeof(tfm_session_params), set by tfm_session_params_default */
    int32_t n_ctx;               /* context length in tokens; 0 = min(model's training context, 4096) */
    tfm_dtype kv_dtype;          /* TFM_DTYPE_F16 (default) or TFM_DTYPE_F32 */
    int32_t logits_all;          /* 1: keep logits of every position of the last eval; 0: last only */
    tfm_abort_fn abort;          /* optional */
    void *abort_user_data;
    int32_t n_batch;             /* max tokens per forward chunk; 0 = 512 */
} tfm_session_params;

/* Fills `params` with the defaults for a struct of `struct_size` bytes (pass sizeof *params): a
 * program built against an older, smaller struct gets only the fields it knows. Since 0.1. */
TFM_API void tfm_session_params_init(tfm_session_params *params, size_t struct_size);

/* The defaults as a value, sized by the header the caller compiled with. Since 0.1. */
static inline tfm_session_params tfm_session_params_default(void) {
    tfm_session_params params;
    tfm_session_params_init(&params, sizeof params);
    return params;
}

/* Creates a session over `model` (which must outlive it); params may be NULL. Errors:
 * TFM_E_INVALID_ARGUMENT (n_ctx beyond the model's limit), TFM_E_OOM. Since 0.1. */
TFM_API tfm_status tfm_session_create(const tfm_model *model, const tfm_session_params *params,
                                      tfm_session **out);

/* Frees a session. NULL is a no-op. */
TFM_API void tfm_session_free(tfm_session *session);

/* Appends `n_ids` tokens to the sequence, running the forward pass (in chunks of n_batch). A prompt
 * evaluated in one call or in several gives the same logits. Errors: TFM_E_CONTEXT_FULL (nothing is
 * appended, the session stays usable), TFM_E_INVALID_ARGUMENT (id out of range; nothing appended),
 * TFM_E_ABORTED (tokens of the aborted chunk are not kept). One thread at a time. Since 0.1. */
TFM_API tfm_status tfm_session_eval(tfm_session *session, const int32_t *ids, size_t n_ids);

/* Number of tokens in the sequence (the KV cache length), and the context size. */
TFM_API int32_t tfm_session_n_past(const tfm_session *session);
TFM_API int32_t tfm_session_n_ctx(const tfm_session *session);

/* Drops tokens so that n_past tokens remain (0 <= n_past <= current). Logits become unavailable
 * until the next eval. Since 0.1. */
TFM_API tfm_status tfm_session_rewind(tfm_session *session, int32_t n_past);

/* Empties the sequence. Same as tfm_session_rewind(session, 0). */
TFM_API void tfm_session_reset(tfm_session *session);

#define TFM_LOGITS_LAST 0
#define TFM_LOGITS_ALL 1

/* Logits of the last eval as a new f32 tensor handle: TFM_LOGITS_LAST gives shape [n_vocab],
 * TFM_LOGITS_ALL gives [n_tokens_of_last_eval, n_vocab] (needs logits_all=1). Free the handle with
 * tfm_tensor_free; its data views the session's memory and is valid until the session's next
 * eval/rewind/reset/free. Errors: TFM_E_STATE when there are none. Since 0.1. */
TFM_API tfm_status tfm_session_logits(const tfm_session *session, int which, tfm_tensor **out);

/* Pointer to the last position's logits (n_vocab floats), or NULL; same lifetime as above. */
TFM_API const float *tfm_session_last_logits(const tfm_session *session);

/* ---------------------------------------------------------------------------------------------------
 * Sampling
 * ------------------------------------------------------------------------------------------------- */
typedef struct tfm_sampler tfm_sampler;

typedef struct tfm_sampler_params {
    size_t struct_size;          /* sizeof(tfm_sampler_params) */
    float temperature;           /* 0 = greedy (default 0.8) */
    int32_t top_k;               /* 0 = off (default 40) */
    float top_p;                 /* 1 = off (default 0.95) */
    float min_p;                 /* 0 = off (default 0.05) */
    float repeat_penalty;        /* 1 = off (default 1.0) */
    int32_t repeat_last_n;       /* tokens of history the penalty looks at (default 64) */
    uint64_t seed;               /* the same seed gives the same tokens (default 0x5EED) */
} tfm_sampler_params;

/* Fills `params` with the defaults for a struct of `struct_size` bytes (pass sizeof *params): a
 * program built against an older, smaller struct gets only the fields it knows. Since 0.1. */
TFM_API void tfm_sampler_params_init(tfm_sampler_params *params, size_t struct_size);

/* The defaults as a value, sized by the header the caller compiled with. Since 0.1. */
static inline tfm_sampler_params tfm_sampler_params_default(void) {
    tfm_sampler_params params;
    tfm_sampler_params_init(&params, sizeof params);
    return params;
}

/* Creates a sampler; params may be NULL. One thread at a time. Since 0.1. */
TFM_API tfm_status tfm_sampler_create(const tfm_sampler_params *params, tfm_sampler **out);
TFM_API void tfm_sampler_free(tfm_sampler *sampler);

/* Picks the next token from `logits` (n_vocab floats, not modified) given the recent `history` for the
 * repetition penalty. Pipeline: repetition penalty, then greedy if temperature == 0, else top-k,
 * temperature, softmax, top-p, min-p, and a draw from the seeded generator. Since 0.1. */
TFM_API tfm_status tfm_sampler_sample(tfm_sampler *sampler, const float *logits, int32_t n_vocab,
                                      const int32_t *history, size_t n_history, int32_t *id);

/* Restarts the random stream from `seed`. */
TFM_API void tfm_sampler_reset(tfm_sampler *sampler, uint64_t seed);

/* ---------------------------------------------------------------------------------------------------
 * Generation: the common loop (eval prompt, sample, stream text), for hosts that need no more control
 * ------------------------------------------------------------------------------------------------- */

/* Receives each generated token and its text (complete UTF-8, possibly empty). Return nonzero to stop.
 * If bytes of an incomplete character are still held back when generation ends, one last call with
 * id -1 delivers them (as U+FFFD). */
typedef int (*tfm_token_fn)(int32_t id, const char *text, size_t length, void *user_data);

typedef struct tfm_generate_params {
    size_t struct_size;          /* sizeof(tfm_generate_params) */
    int32_t max_tokens;          /* tokens to generate at most (default 128) */
    const int32_t *stop_ids;     /* extra stop tokens (EOS always stops unless ignore_eos) */
    size_t n_stop_ids;
    int32_t ignore_eos;          /* 1: keep going past EOS */
    tfm_token_fn on_token;       /* optional streaming callback */
    void *user_data;
} tfm_generate_params;

/* Fills `params` with the defaults for a struct of `struct_size` bytes (pass sizeof *params): a
 * program built against an older, smaller struct gets only the fields it knows. Since 0.1. */
TFM_API void tfm_generate_params_init(tfm_generate_params *params, size_t struct_size);

/* The defaults as a value, sized by the header the caller compiled with. Since 0.1. */
static inline tfm_generate_params tfm_generate_params_default(void) {
    tfm_generate_params params;
    tfm_generate_params_init(&params, sizeof params);
    return params;
}

/* Evaluates `prompt` (may be empty to continue), then samples up to max_tokens tokens with `sampler`,
 * evaluating each. Generated ids are written to `out_ids` (capacity entries; may be NULL) and their
 * count to *n_out. Stops at EOS, a stop id, max_tokens, a full context (returns TFM_OK with what was
 * generated) or when on_token returns nonzero. Errors as tfm_session_eval. Since 0.1. */
TFM_API tfm_status tfm_session_generate(tfm_session *session, tfm_sampler *sampler,
                                        const int32_t *prompt, size_t n_prompt,
                                        const tfm_generate_params *params,
                                        int32_t *out_ids, size_t capacity, size_t *n_out);

#ifdef __cplusplus
}
#endif

#endif /* TFM_TFM_H */
