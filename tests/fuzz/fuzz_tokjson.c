/*
 * fuzz_tokjson.c — the input is a Hugging Face tokenizer.json, optionally followed by one NUL byte and
 * a tokenizer_config.json (bos/eos tokens, add_bos_token, ...).
 *
 * Both files are written to a scratch folder and loaded through the public tfm_tokenizer_load, which
 * reads the config beside the tokenizer. A tokenizer that loads is exercised as in fuzz_spm.c.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_scratch_dir();
    char tok_path[512], cfg_path[512];
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", dir);
    const uint8_t *nul = memchr(data, 0, size);
    size_t json_size = nul ? (size_t)(nul - data) : size;
    fuzz_write_file(tok_path, data, json_size);
    if (nul)
        fuzz_write_file(cfg_path, nul + 1, size - json_size - 1);
    else
        unlink(cfg_path);

    tfm_tokenizer *t = NULL;
    tfm_status st = tfm_tokenizer_load(tok_path, &t);
    fuzz_expect_message(st, "tfm_tokenizer_load");
    if (st) {
        if (t) fuzz_fail("failed load left a tokenizer");
        return 0;
    }
    fuzz_exercise_vocab(t);
    tfm_tokenizer_free(t);
    return 0;
}
