/*
 * cmd_run.c — `tfm run`: evaluate a prompt, then sample and evaluate one token at a time, streaming
 * the text to stdout as soon as it forms complete UTF-8 characters. Speed figures go to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define CMD "run"

typedef struct run_options {
    cli_model_options model;
    const char *prompt;
    int n_predict;
    double temperature, top_p, min_p, repeat_penalty;
    int top_k, repeat_last_n, seed;
    int n_ctx;
    const char *kv;
    int print_ids, ignore_eos, special, quiet;
    const char *ids_out;
} run_options;

/* Writes the generated ids, space-separated, to `f`. */
static void write_ids(FILE *f, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) fprintf(f, i ? " %d" : "%d", ids[i]);
    fputc('\n', f);
}

/* Generates up to o->n_predict tokens after `prompt`; the generated ids end up in history[n_prompt..]. */
static int generate(const run_options *o, tfm_session *session, tfm_sampler *sampler, const tfm_tokenizer *tok,
                    int32_t *history, size_t n_prompt, size_t *n_generated, size_t *n_evals,
                    int *ended_with_newline) {
    int32_t n_vocab = tfm_tokenizer_vocab_size(tok);
    int32_t eos = tfm_tokenizer_eos(tok);
    tfm_text_stream *stream = NULL;
    tfm_status st = tfm_text_stream_create(tok, &stream);
    if (st) return cli_fail(CMD, "cannot create a text stream", st);

    int rc = EXIT_OK;
    size_t n = 0;
    const char *text;
    size_t len;
    for (int i = 0; i < o->n_predict; i++) {
        int32_t id;
        st = tfm_sampler_sample(sampler, tfm_session_last_logits(session), n_vocab, history, n_prompt + n, &id);
        if (st) {
            rc = cli_fail(CMD, "sampling failed", st);
            break;
        }
        if (id == eos && !o->ignore_eos) break;
        history[n_prompt + n++] = id;
        if ((st = tfm_text_stream_push(stream, id, &text, &len))) {
            rc = cli_fail(CMD, "cannot decode a token", st);
            break;
        }
        if (len) {
            fwrite(text, 1, len, stdout);
            fflush(stdout);
            *ended_with_newline = text[len - 1] == '\n';
        }
        if (i + 1 == o->n_predict) break; /* the last token needs no evaluation */
        if (tfm_session_n_past(session) >= tfm_session_n_ctx(session)) {
            fprintf(stderr, "\ntfm run: the context of %d tokens is full; stopping\n", tfm_session_n_ctx(session));
            break;
        }
        if ((st = tfm_session_eval(session, &id, 1))) {
            rc = cli_fail(CMD, "evaluation failed", st);
            break;
        }
        ++*n_evals;
    }
    if (rc == EXIT_OK && tfm_text_stream_flush(stream, &text, &len) == TFM_OK && len) {
        fwrite(text, 1, len, stdout);
        *ended_with_newline = text[len - 1] == '\n';
    }
    tfm_text_stream_free(stream);
    *n_generated = n;
    return rc;
}

static int run(const run_options *o) {
    if (o->n_predict < 0) return cli_error(CMD, EXIT_USAGE, "-n must be >= 0");
    if (!o->prompt) return cli_error(CMD, EXIT_USAGE, "-p TEXT is required");
    tfm_session_params sp = tfm_session_params_default();
    sp.n_ctx = o->n_ctx;
    if (o->kv && cli_parse_kv_dtype(CMD, o->kv, &sp.kv_dtype)) return EXIT_USAGE;
    tfm_sampler_params smp = tfm_sampler_params_default();
    smp.temperature = (float)o->temperature;
    smp.top_k = o->top_k;
    smp.top_p = (float)o->top_p;
    smp.min_p = (float)o->min_p;
    smp.repeat_penalty = (float)o->repeat_penalty;
    smp.repeat_last_n = o->repeat_last_n;
    if (o->seed >= 0) smp.seed = (uint64_t)o->seed;
    else smp.seed = (uint64_t)time(NULL);

    tfm_model *model = NULL;
    tfm_session *session = NULL;
    tfm_sampler *sampler = NULL;
    int32_t *prompt = NULL, *history = NULL;
    size_t n_prompt = 0, n_generated = 0, n_evals = 0;
    int rc = cli_load_model(CMD, &o->model, &model);
    if (rc) return rc;
    const tfm_tokenizer *tok = tfm_model_tokenizer(model);
    tfm_status st;
    int ended_with_newline = 1;
    double t0, t1, t2;
    if (!tok) {
        rc = cli_error(CMD, EXIT_FAILED, "the model '%s' carries no tokenizer", o->model.path);
        goto done;
    }
    uint32_t flags = TFM_TOKENIZE_MODEL_DEFAULTS | (o->special ? TFM_TOKENIZE_PARSE_SPECIAL : 0);
    if ((st = cli_tokenize(tok, o->prompt, strlen(o->prompt), flags, &prompt, &n_prompt))) {
        rc = cli_fail(CMD, "cannot tokenize the prompt", st);
        goto done;
    }
    if (n_prompt == 0) {
        rc = cli_error(CMD, EXIT_USAGE, "the prompt gives no tokens (the model adds no BOS): give some text");
        goto done;
    }
    if ((st = tfm_session_create(model, &sp, &session))) {
        rc = cli_fail(CMD, "cannot create a session", st);
        goto done;
    }
    if ((st = tfm_sampler_create(&smp, &sampler))) {
        rc = cli_fail(CMD, "cannot create a sampler", st);
        goto done;
    }
    history = malloc((n_prompt + (size_t)o->n_predict) * sizeof *history);
    if (!history) {
        rc = cli_error(CMD, EXIT_FAILED, "out of memory");
        goto done;
    }
    memcpy(history, prompt, n_prompt * sizeof *prompt);

    t0 = cli_now();
    if ((st = tfm_session_eval(session, prompt, n_prompt))) {
        rc = cli_fail(CMD, "cannot evaluate the prompt", st);
        goto done;
    }
    t1 = cli_now();
    rc = generate(o, session, sampler, tok, history, n_prompt, &n_generated, &n_evals, &ended_with_newline);
    t2 = cli_now();
    if (!ended_with_newline) fputc('\n', stdout);
    if (o->print_ids) {
        fputs("ids: ", stdout);
        write_ids(stdout, history + n_prompt, n_generated);
    }
    fflush(stdout);
    if (o->ids_out) {
        FILE *f = fopen(o->ids_out, "w");
        if (!f || (write_ids(f, history + n_prompt, n_generated), fclose(f) != 0))
            rc = cli_error(CMD, EXIT_FAILED, "cannot write '%s'", o->ids_out);
    }
    if (!o->quiet) {
        /* Generation speed: tokens evaluated one at a time (sampling included) per second. The last
         * token generated is not evaluated, so n tokens cost n - 1 evaluations. */
        fprintf(stderr, "prompt:     %5zu tokens in %8.1f ms, %9.1f tokens/s\n", n_prompt, 1e3 * (t1 - t0),
                (double)n_prompt / (t1 - t0));
        fprintf(stderr, "generation: %5zu tokens in %8.1f ms, %9.1f tokens/s\n", n_generated, 1e3 * (t2 - t1),
                n_evals ? (double)n_evals / (t2 - t1) : 0.0);
    }
done:
    free(history);
    free(prompt);
    tfm_sampler_free(sampler);
    tfm_session_free(session);
    tfm_model_free(model);
    return rc;
}

int cmd_run(int argc, char **argv) {
    tfm_sampler_params d = tfm_sampler_params_default();
    run_options o = {.model = {.backend = "auto"}, .n_predict = 128, .temperature = d.temperature, .top_p = d.top_p,
                     .min_p = d.min_p, .repeat_penalty = d.repeat_penalty, .top_k = d.top_k,
                     .repeat_last_n = d.repeat_last_n, .seed = (int)(d.seed & 0x7fffffff)};
    const cli_option options[] = {
        {"-m|--model", OPT_STRING, &o.model.path, "model: GGUF file or Hugging Face directory (required)"},
        {"-p|--prompt", OPT_STRING, &o.prompt, "prompt text (required)"},
        {"-n|--n-predict", OPT_INT, &o.n_predict, "tokens to generate at most (default 128)"},
        {"--temp", OPT_FLOAT, &o.temperature, "temperature; 0 = greedy (default 0.8)"},
        {"--top-k", OPT_INT, &o.top_k, "keep the k most likely tokens; 0 = off (default 40)"},
        {"--top-p", OPT_FLOAT, &o.top_p, "nucleus sampling; 1 = off (default 0.95)"},
        {"--min-p", OPT_FLOAT, &o.min_p, "drop tokens below min-p x the top probability; 0 = off (default 0.05)"},
        {"--repeat-penalty", OPT_FLOAT, &o.repeat_penalty, "repetition penalty; 1 = off (default 1)"},
        {"--repeat-last-n", OPT_INT, &o.repeat_last_n, "tokens of history the penalty looks at (default 64)"},
        {"-s|--seed", OPT_INT, &o.seed, "random seed; -1 = from the clock"},
        {"--backend", OPT_STRING, &o.model.backend, "auto, cpu, cuda (default auto)"},
        {"-t|--threads", OPT_INT, &o.model.threads, "cpu threads; 0 = all cores (default)"},
        {"-c|--ctx", OPT_INT, &o.n_ctx, "context length; 0 = the library's default"},
        {"--kv", OPT_STRING, &o.kv, "KV-cache dtype: f16 (default), bf16, f32"},
        {"--special", OPT_FLAG, &o.special, "parse special-token text such as <s> in the prompt"},
        {"--ignore-eos", OPT_FLAG, &o.ignore_eos, "keep generating after the end-of-sequence token"},
        {"--print-ids", OPT_FLAG, &o.print_ids, "after the text, print a line 'ids: ...' of the generated ids"},
        {"--ids-out", OPT_STRING, &o.ids_out, "write the generated ids to this file"},
        {"-q|--quiet", OPT_FLAG, &o.quiet, "no speed figures on stderr"},
        {NULL, OPT_FLAG, NULL, NULL},
    };
    int rc = cli_parse(CMD, "-m MODEL -p TEXT [-n N] [sampling options]", argc, argv, options);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    return run(&o);
}
