/* tok_loaders.h — the file-format readers behind tfm_tokenizer_load (internal). */
#ifndef TFM_LIB_TOKENIZER_TOK_LOADERS_H
#define TFM_LIB_TOKENIZER_TOK_LOADERS_H

#include <stddef.h>

#include "tfm/tfm.h"

/* A SentencePiece .model (serialized ModelProto) held in memory. */
tfm_status tok_load_spm_model(const void *data, size_t size, const char *label, tfm_tokenizer **out);

/* A Hugging Face tokenizer.json held in memory (NUL termination not required). `config_dir`, if not
 * NULL, is searched for tokenizer_config.json / config.json / generation_config.json (bos/eos,
 * add_bos_token / add_eos_token). */
tfm_status tok_load_hf_json(const char *data, size_t size, const char *label, const char *config_dir,
                            tfm_tokenizer **out);

/* bos/eos and add_bos_token / add_eos_token from tokenizer_config.json, config.json and
 * generation_config.json in `dir` (missing files and keys change nothing). TFM_E_FORMAT naming the
 * file if one of them is present but not JSON; TFM_E_IO / TFM_E_OOM if it cannot be read. */
tfm_status tok_apply_hf_configs(tfm_tokenizer *t, const char *dir);

/* Reads a small whole file (configs) into a NUL-terminated buffer; TFM_E_IO if absent. */
tfm_status tok_read_small_file(const char *path, size_t max_size, char **out, size_t *size);

#endif
