#include "error.h"
#include "tokenizer/tok_loaders.h"
tfm_status tok_load_hf_json(const char *data, size_t size, const char *label, const char *config_dir,
                            tfm_tokenizer **out)
{
    (void)data; (void)size; (void)config_dir; *out = NULL;
    return tfm_error(TFM_E_UNSUPPORTED, "%s: tokenizer.json not yet", label);
}
