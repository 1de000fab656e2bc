/*
 * model.h — the loaded model: hyper-parameters, weights bound to a backend, tokenizer (internal).
 *
 * Format readers (lib/formats/) describe a model as a tfm_model_source: hyper-parameters plus host
 * tensors by role. lib/model.c checks every shape against the hyper-parameters and binds the host
 * tensors to the chosen backend (the cpu backend keeps pointing into the mapped file).
 */
#ifndef TFM_LIB_MODEL_H
#define TFM_LIB_MODEL_H

#include <pthread.h>
#include <stdint.h>

#include "backend.h"
#include "tfm/tfm.h"
#include "util/mapped_file.h"

typedef enum tfm_rope_scaling_type {
    TFM_ROPE_SCALING_NONE = 0,
    TFM_ROPE_SCALING_LINEAR = 1,  /* positions divided by factor */
    TFM_ROPE_SCALING_LLAMA3 = 2   /* Llama-3.1 frequency-dependent scaling */
} tfm_rope_scaling_type;

typedef struct tfm_hparams {
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;         /* usually n_embd / n_head */
    int32_t n_ff;
    float rope_theta;
    float rms_eps;
    tfm_rope_pairing rope_pairing;
    tfm_rope_scaling_type rope_scaling;
    float rope_factor;           /* linear and llama3 */
    float rope_low_freq_factor;  /* llama3 */
    float rope_high_freq_factor; /* llama3 */
    int32_t rope_orig_ctx;       /* llama3: original_max_position_embeddings */
} tfm_hparams;

/* A tensor as the file holds it (host memory valid for the model's lifetime). For matrices,
 * rows = output features and cols = input features (cols contiguous); vectors have rows = 1. */
typedef struct tfm_host_tensor {
    const void *data;       /* NULL = absent */
    tfm_dtype dtype;
    int64_t rows, cols;
    uint64_t nbytes;
    char name[96];          /* the file's name for the tensor, for messages */
} tfm_host_tensor;

enum tfm_layer_role {
    TFM_L_ATTN_NORM, TFM_L_WQ, TFM_L_WK, TFM_L_WV, TFM_L_WO,
    TFM_L_FFN_NORM, TFM_L_W_GATE, TFM_L_W_UP, TFM_L_W_DOWN,
    TFM_L_COUNT
};

typedef struct tfm_tokenizer tfm_tokenizer;

/* What a format reader hands to the core. The reader owns nothing afterwards: `release` frees
 * the reader's state (mappings, parsed headers) when the model is freed. */
typedef struct tfm_model_source {
    tfm_hparams hp;
    const char *format;        /* "gguf", "safetensors" */
    char architecture[32];
    char name[128];
    tfm_host_tensor tok_embd;      /* [n_vocab][n_embd] */
    tfm_host_tensor output_norm;   /* [n_embd] */
    tfm_host_tensor output;        /* [n_vocab][n_embd]; data NULL = tied to tok_embd */
    tfm_host_tensor *layers;       /* n_layer * TFM_L_COUNT, indexed [layer * TFM_L_COUNT + role] */
    tfm_tokenizer *tokenizer;      /* may be NULL; ownership moves to the model */
    void *reader_state;
    void (*release)(void *reader_state);
} tfm_model_source;

/* Format readers. `label` names the input in messages. */
tfm_status tfm_gguf_model_source(const void *data, size_t size, const char *label,
                                 tfm_model_source *out);
tfm_status tfm_hf_model_source(const char *dir, tfm_model_source *out);
void tfm_model_source_release(tfm_model_source *src);

typedef struct tfm_layer {
    tfm_weight attn_norm, wq, wk, wv, wo;
    tfm_weight ffn_norm, w_gate, w_up, w_down;
} tfm_layer;

struct tfm_model {
    tfm_hparams hp;
    char architecture[32];
    char name[128];
    const char *format;
    tfm_dtype weight_dtype;
    int64_t n_params;
    int64_t weight_bytes;
    int tied_embeddings;

    const tfm_backend_ops *ops;
    tfm_backend *be;
    tfm_weight tok_embd, output_norm, output;
    tfm_layer *layers;
    int n_layers_bound;         /* layers whose weights are bound (for cleanup after a failed load) */
    float **converted;          /* host arrays made at load (f32 copies of f16/bf16 norm gains) */
    int n_converted;
    float *inv_freq;            /* backend memory: head_dim/2 RoPE inverse frequencies */

    tfm_tokenizer *tokenizer;
    tfm_mapped_file file;       /* the mapped GGUF, or empty */
    tfm_model_source src;       /* keeps the reader's state (and host tensors) alive */
    size_t memory_limit;
    size_t session_bytes;       /* session memory in use, summed over live sessions (atomic) */
    /* One forward pass at a time per model: a backend instance (its streams, scratch and any
     * recorded or pending work) is shared by every session of the model. */
    pthread_mutex_t forward_lock;
};

#endif
