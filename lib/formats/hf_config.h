/*
 * hf_config.h — reads a Hugging Face model directory's config.json (and generation_config.json)
 * into libtfm's hyper-parameters (internal).
 *
 * The field names and defaults are those of transformers' LlamaConfig / MistralConfig:
 * hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads
 * (default: num_attention_heads), head_dim (default: hidden_size / num_attention_heads),
 * vocab_size, max_position_embeddings, rms_norm_eps (default 1e-6), rope_theta (default 10000),
 * rope_scaling (null, {"rope_type": "linear", "factor"} or {"rope_type": "llama3", "factor",
 * "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}; older files say
 * "type" instead of "rope_type"), tie_word_embeddings (default false).
 */
#ifndef TFM_LIB_FORMATS_HF_CONFIG_H
#define TFM_LIB_FORMATS_HF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct hf_config {
    char architecture[64];       /* architectures[0], e.g. "LlamaForCausalLM" */
    char model_type[32];         /* "llama", "mistral" */
    char torch_dtype[16];        /* "bfloat16", ... or "" */
    tfm_hparams hp;              /* rope_pairing = TFM_ROPE_HALF */
    int tie_word_embeddings;     /* 0 / 1 */
    int32_t bos_id, eos_id;      /* from generation_config.json, else config.json; -1 = none */
    int32_t sliding_window;      /* Mistral; 0 = none */
} hf_config;

/* Parses config.json text (`len` bytes). `label` (the path) prefixes messages. Checks every value's
 * type and range. Errors: TFM_E_FORMAT (malformed or out of range), TFM_E_UNSUPPORTED (an
 * architecture, activation, rope scaling type or feature libtfm lacks). */
tfm_status hf_config_parse(const char *json, size_t len, const char *label, hf_config *out);

/* Applies generation_config.json text: bos_token_id / eos_token_id (an id or a list; the first id
 * of a list) override config.json's. Ids must lie inside the vocabulary. */
tfm_status hf_generation_config_parse(const char *json, size_t len, const char *label, hf_config *cfg);

/* Reads `dir`/config.json and, when present, `dir`/generation_config.json. */
tfm_status hf_config_load(const char *dir, hf_config *out);

#endif
