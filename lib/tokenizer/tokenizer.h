/*
 * tokenizer.h — constructors of the built-in tokenizer (internal). The public functions
 * (tfm_tokenize, tfm_detokenize, tfm_text_stream_*, ...) are declared in tfm.h.
 */
#ifndef TFM_LIB_TOKENIZER_TOKENIZER_H
#define TFM_LIB_TOKENIZER_TOKENIZER_H

#include <stddef.h>

#include "formats/gguf.h"
#include "tfm/tfm.h"

/* From a GGUF file's tokenizer.ggml.* metadata ("llama" and "gpt2" models). TFM_E_UNSUPPORTED
 * names the model/pre-tokenizer when libtfm lacks it. *out = NULL (and TFM_OK) if there is none. */
tfm_status tfm_tokenizer_from_gguf(const gguf_file *f, const char *label, tfm_tokenizer **out);

/* From a HF model directory: tokenizer.json preferred, tokenizer.model otherwise; bos/eos from
 * tokenizer_config.json / config.json / generation_config.json. *out = NULL if none is present. */
tfm_status tfm_tokenizer_from_hf_dir(const char *dir, tfm_tokenizer **out);

#endif
