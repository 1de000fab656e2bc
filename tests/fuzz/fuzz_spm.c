/*
 * fuzz_spm.c — the input is a SentencePiece .model file (a serialized ModelProto).
 *
 * The loader must refuse a malformed file with a message; a tokenizer it accepts must tokenize awkward
 * text into in-range ids, decode every id, refuse out-of-range ids, and stream exactly what it decodes.
 */
#include "fuzz_common.h"
#include "tokenizer/tok_loaders.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tfm_tokenizer *t = NULL;
    tfm_status st = tok_load_spm_model(data, size, "fuzz.model", &t);
    fuzz_expect_message(st, "tok_load_spm_model");
    if (st) {
        if (t) fuzz_fail("failed load left a tokenizer");
        return 0;
    }
    fuzz_exercise_vocab(t);
    tfm_tokenizer_free(t);
    return 0;
}
