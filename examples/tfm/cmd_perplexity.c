/*
 * cmd_perplexity.c — `tfm perplexity`: how well a model predicts a text file.
 *
 * Exactly which tokens are scored (so that another implementation can reproduce the number):
 *   1. The whole file is read as bytes and tokenized as one text with no BOS/EOS added
 *      (tfm_tokenize flags 0): ids t[0..N).
 *   2. The ids are cut into consecutive, non-overlapping windows of W = n_ctx - 1 ids
 *      (n_ctx: --ctx, default the session default); the last window may be shorter.
 *   3. Each window t[s..s+L) is evaluated on an empty session as [BOS, t[s], ..., t[s+L-1]].
 *      Every id of the window is scored: t[s+j] against the logits at position j (BOS is position 0),
 *      nll = -log softmax(logits_j)[t[s+j]], computed in double precision.
 *      A tokenizer without BOS uses W = n_ctx and leaves the first id of each window unscored.
 *   4. perplexity = exp(sum of nll / number of scored ids).
 * The KV cache is f32 unless --kv says otherwise, so the result is the model's, not the cache's.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "perplexity"

typedef struct score {
    double nll_sum;
    size_t n_scored;
} score;

/* -log softmax(logits)[target], in double precision. */
static double token_nll(const float *logits, int32_t n_vocab, int32_t target) {
    double max = logits[0];
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > max) max = logits[i];
    double sum = 0;
    for (int32_t i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - max);
    return log(sum) - ((double)logits[target] - max);
}

/* Evaluates `input` (n ids) on an empty session, n_batch ids per call, and scores every id after the
 * first: input[j + 1] against the logits at position j. */
static int score_window(tfm_session *s, const int32_t *input, size_t n, size_t n_batch,
                        int32_t n_vocab, score *sc) {
    tfm_session_reset(s);
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < n_batch ? n - done : n_batch;
        tfm_status st = tfm_session_eval(s, input + done, chunk);
        if (st) return cli_fail(CMD, "evaluation failed", st);
        tfm_tensor *logits;
        if ((st = tfm_session_logits(s, TFM_LOGITS_ALL, &logits))) return cli_fail(CMD, "no logits", st);
        const float *rows = tfm_tensor_data(logits);
        for (size_t r = 0; r < chunk; r++) {
            size_t pos = done + r;
            if (pos + 1 >= n) continue;
            sc->nll_sum += token_nll(rows + r * (size_t)n_vocab, n_vocab, input[pos + 1]);
            sc->n_scored++;
        }
        tfm_tensor_free(logits);
        done += chunk;
    }
    return EXIT_OK;
}

static int read_file(const char *path, char **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error(CMD, EXIT_FAILED, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        char *grown = realloc(buf, cap *= 2);
        if (!grown) free(buf);
        buf = grown;
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf) return cli_error(CMD, EXIT_FAILED, "out of memory reading '%s'", path);
    if (failed) {
        free(buf);
        return cli_error(CMD, EXIT_FAILED, "cannot read '%s'", path);
    }
    *data = buf;
    *size = len;
    return EXIT_OK;
}

typedef struct ppl_options {
    cli_model_options model;
    const char *file, *kv;
    int n_ctx, n_batch, json, max_windows;
} ppl_options;

static int perplexity(const ppl_options *o, tfm_model *model, const int32_t *ids, size_t n_ids, int32_t n_vocab) {
    const tfm_tokenizer *tok = tfm_model_tokenizer(model);
    int32_t bos = tfm_tokenizer_bos(tok);
    tfm_session_params sp = tfm_session_params_default();
    sp.n_ctx = o->n_ctx;
    sp.logits_all = 1;
    sp.n_batch = o->n_batch;
    if (cli_parse_kv_dtype(CMD, o->kv, &sp.kv_dtype)) return EXIT_USAGE;
    tfm_session *s;
    tfm_status st = tfm_session_create(model, &sp, &s);
    if (st) return cli_fail(CMD, "cannot create a session", st);
    size_t n_ctx = (size_t)tfm_session_n_ctx(s);
    size_t n_batch = o->n_batch > 0 ? (size_t)o->n_batch : 512;
    size_t window = bos >= 0 ? n_ctx - 1 : n_ctx;
    int32_t *input = malloc(n_ctx * sizeof *input);
    int rc = input ? EXIT_OK : cli_error(CMD, EXIT_FAILED, "out of memory");
    if (rc == EXIT_OK && (window == 0 || (bos < 0 && n_ids < 2)))
        rc = cli_error(CMD, EXIT_USAGE, "nothing to score: %zu ids, context %zu", n_ids, n_ctx);

    score sc = {0, 0};
    size_t n_windows = (n_ids + window - 1) / (window ? window : 1);
    if (o->max_windows > 0 && n_windows > (size_t)o->max_windows) n_windows = (size_t)o->max_windows;
    double t0 = cli_now();
    for (size_t w = 0; rc == EXIT_OK && w < n_windows; w++) {
        size_t start = w * window, len = n_ids - start < window ? n_ids - start : window;
        size_t n = 0;
        if (bos >= 0) input[n++] = bos;
        memcpy(input + n, ids + start, len * sizeof *ids);
        n += len;
        /* With BOS every window id is a target; without, the window's first id is context only. */
        rc = score_window(s, input, n, n_batch, n_vocab, &sc);
        if (rc == EXIT_OK && !o->json)
            fprintf(stderr, "[%zu/%zu] %zu ids scored, perplexity so far %.4f\n", w + 1, n_windows, sc.n_scored,
                    exp(sc.nll_sum / (double)sc.n_scored));
    }
    double elapsed = cli_now() - t0;
    if (rc == EXIT_OK && sc.n_scored == 0) rc = cli_error(CMD, EXIT_FAILED, "no token was scored");
    if (rc == EXIT_OK) {
        double ppl = exp(sc.nll_sum / (double)sc.n_scored);
        if (o->json)
            printf("{\"perplexity\": %.10g, \"nll_sum\": %.10g, \"n_scored\": %zu, \"n_tokens\": %zu, "
                   "\"n_windows\": %zu, \"window\": %zu, \"n_ctx\": %zu, \"bos\": %d, \"seconds\": %.3f}\n",
                   ppl, sc.nll_sum, sc.n_scored, n_ids, n_windows, window, n_ctx, bos, elapsed);
        else
            printf("perplexity: %.4f (%zu tokens scored in %zu windows of up to %zu, mean nll %.6f, %.1f s)\n", ppl,
                   sc.n_scored, n_windows, window, sc.nll_sum / (double)sc.n_scored, elapsed);
    }
    free(input);
    tfm_session_free(s);
    return rc;
}

int cmd_perplexity(int argc, char **argv) {
    ppl_options o = {.model = {.backend = "auto"}, .kv = "f32"};
    const cli_option options[] = {
        {"-m|--model", OPT_STRING, &o.model.path, "model: GGUF file or Hugging Face directory (required)"},
        {"-f|--file", OPT_STRING, &o.file, "text file to score (required)"},
        {"-c|--ctx", OPT_INT, &o.n_ctx, "window context in tokens, BOS included; 0 = the session default"},
        {"-b|--batch", OPT_INT, &o.n_batch, "tokens per evaluation call (default 512)"},
        {"--max-windows", OPT_INT, &o.max_windows, "score only the first N windows; 0 = all (default)"},
        {"--kv", OPT_STRING, &o.kv, "KV-cache dtype: f32 (default), bf16, f16"},
        {"--backend", OPT_STRING, &o.model.backend, "auto, cpu, cuda (default auto)"},
        {"-t|--threads", OPT_INT, &o.model.threads, "cpu threads; 0 = all cores (default)"},
        {"--json", OPT_FLAG, &o.json, "print the result as one JSON object, no progress"},
        {NULL, OPT_FLAG, NULL, NULL},
    };
    int rc = cli_parse(CMD, "-m MODEL -f FILE [--ctx N] [--json]", argc, argv, options);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    if (!o.file) return cli_error(CMD, EXIT_USAGE, "-f FILE is required");
    if (o.n_ctx < 0 || o.n_batch < 0 || o.max_windows < 0)
        return cli_error(CMD, EXIT_USAGE, "--ctx, --batch and --max-windows must be >= 0");

    char *text = NULL;
    size_t size = 0;
    if ((rc = read_file(o.file, &text, &size))) return rc;
    tfm_model *model = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if ((rc = cli_load_model(CMD, &o.model, &model))) goto done;
    const tfm_tokenizer *tok = tfm_model_tokenizer(model);
    if (!tok) {
        rc = cli_error(CMD, EXIT_FAILED, "the model carries no tokenizer");
        goto done;
    }
    tfm_status st = cli_tokenize(tok, text, size, 0, &ids, &n_ids);
    if (st) {
        rc = cli_fail(CMD, "cannot tokenize the file", st);
        goto done;
    }
    if (n_ids == 0) {
        rc = cli_error(CMD, EXIT_USAGE, "'%s' holds no text", o.file);
        goto done;
    }
    tfm_model_info info = {.struct_size = sizeof info};
    if ((st = tfm_model_get_info(model, &info))) {
        rc = cli_fail(CMD, "cannot describe the model", st);
        goto done;
    }
    rc = perplexity(&o, model, ids, n_ids, info.n_vocab);
done:
    free(ids);
    free(text);
    tfm_model_free(model);
    return rc;
}
