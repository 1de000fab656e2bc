/*
 * cmd_logits.c — `tfm logits`: the logits of every position of a token sequence, written as a float32
 * .npy array of shape [n_tokens, n_vocab]. Row i holds the scores for the token after ids[0..i].
 * With --chunk N the ids are evaluated N at a time (the library promises the same result as one call).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "cli.h"
#include "npy.h"

#define CMD "logits"

/* Evaluates ids in pieces of `chunk` and copies each piece's logits into out[n_ids][n_vocab]. */
static int evaluate(tfm_session *session, const int32_t *ids, size_t n_ids, size_t chunk, float *out,
                    int32_t n_vocab) {
    for (size_t done = 0; done < n_ids;) {
        size_t n = n_ids - done < chunk ? n_ids - done : chunk;
        tfm_status st = tfm_session_eval(session, ids + done, n);
        if (st) return cli_fail(CMD, "evaluation failed", st);
        tfm_tensor *logits;
        if ((st = tfm_session_logits(session, TFM_LOGITS_ALL, &logits))) return cli_fail(CMD, "no logits", st);
        int ok = tfm_tensor_dtype(logits) == TFM_DTYPE_F32 && tfm_tensor_ndim(logits) == 2 &&
                 tfm_tensor_dim(logits, 0) == (int64_t)n && tfm_tensor_dim(logits, 1) == n_vocab;
        if (ok) memcpy(out + done * (size_t)n_vocab, tfm_tensor_data(logits), n * (size_t)n_vocab * sizeof(float));
        tfm_tensor_free(logits);
        if (!ok) return cli_error(CMD, EXIT_FAILED, "the library returned logits of an unexpected shape");
        done += n;
    }
    return EXIT_OK;
}

int cmd_logits(int argc, char **argv) {
    cli_model_options mo = {.backend = "auto"};
    const char *ids_text = NULL, *out_path = NULL, *kv = "f32";
    int chunk = 0, n_ctx = 0;
    const cli_option options[] = {
        {"-m|--model", OPT_STRING, &mo.path, "model: GGUF file or Hugging Face directory (required)"},
        {"--ids", OPT_STRING, &ids_text, "token ids, separated by spaces or commas (required)"},
        {"-o|--out", OPT_STRING, &out_path, "output .npy file (required)"},
        {"--chunk", OPT_INT, &chunk, "evaluate the ids N at a time; 0 = all in one call (default)"},
        {"-c|--ctx", OPT_INT, &n_ctx, "session context; 0 = the number of ids (default)"},
        {"--kv", OPT_STRING, &kv, "KV-cache dtype: f32 (default), bf16, f16"},
        {"--backend", OPT_STRING, &mo.backend, "auto, cpu, cuda (default auto)"},
        {"-t|--threads", OPT_INT, &mo.threads, "cpu threads; 0 = all cores (default)"},
        {NULL, OPT_FLAG, NULL, NULL},
    };
    int rc = cli_parse(CMD, "-m MODEL --ids \"1 2 3\" --out FILE.npy [--chunk N]", argc, argv, options);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    if (!ids_text || !out_path) return cli_error(CMD, EXIT_USAGE, "--ids and --out are required");
    if (chunk < 0 || n_ctx < 0) return cli_error(CMD, EXIT_USAGE, "--chunk and --ctx must be >= 0");
    tfm_session_params sp = tfm_session_params_default();
    if (cli_parse_kv_dtype(CMD, kv, &sp.kv_dtype)) return EXIT_USAGE;

    int32_t *ids;
    size_t n_ids;
    if ((rc = cli_parse_ids(CMD, ids_text, &ids, &n_ids))) return rc;
    if (n_ids == 0) {
        free(ids);
        return cli_error(CMD, EXIT_USAGE, "--ids holds no ids");
    }
    tfm_model *model = NULL;
    tfm_session *session = NULL;
    float *out = NULL;
    if ((rc = cli_load_model(CMD, &mo, &model))) goto done;
    tfm_model_info info = {.struct_size = sizeof info};
    tfm_status st = tfm_model_get_info(model, &info);
    if (st) {
        rc = cli_fail(CMD, "cannot describe the model", st);
        goto done;
    }
    sp.n_ctx = n_ctx ? n_ctx : (int32_t)n_ids;
    sp.logits_all = 1;
    if ((st = tfm_session_create(model, &sp, &session))) {
        rc = cli_fail(CMD, "cannot create a session", st);
        goto done;
    }
    out = malloc(n_ids * (size_t)info.n_vocab * sizeof *out);
    if (!out) {
        rc = cli_error(CMD, EXIT_FAILED, "out of memory for %zu x %d logits", n_ids, info.n_vocab);
        goto done;
    }
    if ((rc = evaluate(session, ids, n_ids, chunk ? (size_t)chunk : n_ids, out, info.n_vocab))) goto done;
    if (npy_write_f32(out_path, out, (int64_t)n_ids, info.n_vocab) != 0)
        rc = cli_error(CMD, EXIT_FAILED, "cannot write '%s': %s", out_path, strerror(errno));
done:
    free(out);
    free(ids);
    tfm_session_free(session);
    tfm_model_free(model);
    return rc;
}
