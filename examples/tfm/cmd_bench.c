/*
 * cmd_bench.c — `tfm bench`: prompt-processing and text-generation speed, measured the way llama.cpp's
 * llama-bench measures them so the two programs' numbers compare directly:
 *   pp N: on an empty session, evaluate N tokens (BOS then pseudo-random ids) in one batch;
 *   tg N: on an empty session, evaluate N tokens one at a time (BOS first, then pseudo-random ids;
 *         no sampling, as llama-bench does);
 *   one warm-up run first (pp: the whole prompt; tg: one token), then r timed runs, each on a
 *   cleared session. Speed of a run = tokens / seconds; reported as mean ± sample standard deviation
 *   of the r speeds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "bench"

typedef struct bench_options {
    cli_model_options model;
    int n_prompt, n_gen, reps, n_batch, json;
    const char *kv;
} bench_options;

typedef struct bench_result {
    const char *test; /* "pp" or "tg" */
    int n_tokens;
    double *seconds;  /* one per run */
    int runs;
} bench_result;

/* A fixed pseudo-random sequence of ids (the values do not affect the speed). */
static int32_t next_id(uint64_t *state, int32_t n_vocab) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (int32_t)((*state >> 33) % (uint64_t)n_vocab);
}

static int run_prompt(tfm_session *s, const int32_t *ids, int n) {
    tfm_status st = tfm_session_eval(s, ids, (size_t)n);
    return st ? cli_fail(CMD, "prompt evaluation failed", st) : EXIT_OK;
}

static int run_generation(tfm_session *s, int32_t first, int n, int32_t n_vocab) {
    uint64_t state = 42;
    int32_t id = first;
    for (int i = 0; i < n; i++) {
        tfm_status st = tfm_session_eval(s, &id, 1);
        if (st) return cli_fail(CMD, "token evaluation failed", st);
        id = next_id(&state, n_vocab);
    }
    return EXIT_OK;
}

/* One test: a session sized for it, a warm-up, then o->reps timed runs. */
static int run_test(const bench_options *o, tfm_model *model, int is_prompt, int32_t n_vocab, int32_t bos,
                    bench_result *r) {
    int n = is_prompt ? o->n_prompt : o->n_gen;
    tfm_session_params sp = tfm_session_params_default();
    sp.n_ctx = n;
    sp.n_batch = is_prompt ? (o->n_batch ? o->n_batch : n) : 1;
    if (o->kv && cli_parse_kv_dtype(CMD, o->kv, &sp.kv_dtype)) return EXIT_USAGE;
    tfm_session *s;
    tfm_status st = tfm_session_create(model, &sp, &s);
    if (st) return cli_fail(CMD, "cannot create a session", st);

    int32_t *ids = malloc((size_t)n * sizeof *ids);
    r->seconds = calloc((size_t)o->reps, sizeof *r->seconds);
    r->test = is_prompt ? "pp" : "tg";
    r->n_tokens = n;
    r->runs = 0;
    int rc = ids && r->seconds ? EXIT_OK : cli_error(CMD, EXIT_FAILED, "out of memory");
    if (rc == EXIT_OK) {
        uint64_t state = 1;
        for (int i = 0; i < n; i++) ids[i] = next_id(&state, n_vocab);
        if (bos >= 0) ids[0] = bos;
        rc = is_prompt ? run_prompt(s, ids, n) : run_generation(s, ids[0], 1, n_vocab); /* warm-up */
    }
    for (int rep = 0; rc == EXIT_OK && rep < o->reps; rep++) {
        tfm_session_reset(s);
        double t0 = cli_now();
        rc = is_prompt ? run_prompt(s, ids, n) : run_generation(s, ids[0], n, n_vocab);
        r->seconds[rep] = cli_now() - t0;
        r->runs = rep + 1;
    }
    free(ids);
    tfm_session_free(s);
    return rc;
}

/* Mean and sample standard deviation of the speeds (tokens / seconds) of r's runs. */
static void speed_stats(const bench_result *r, double *mean, double *sd) {
    double sum = 0, sq = 0;
    for (int i = 0; i < r->runs; i++) sum += r->n_tokens / r->seconds[i];
    *mean = sum / r->runs;
    for (int i = 0; i < r->runs; i++) {
        double d = r->n_tokens / r->seconds[i] - *mean;
        sq += d * d;
    }
    *sd = r->runs > 1 ? sqrt(sq / (r->runs - 1)) : 0.0;
}

static void print_table(const bench_options *o, const tfm_model_info *info, const bench_result *res, int n) {
    printf("| model | size | params | backend | threads | test | t/s |\n");
    printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    for (int i = 0; i < n; i++) {
        double mean, sd;
        speed_stats(&res[i], &mean, &sd);
        printf("| %s %s | %.2f MiB | %.2f M | %s | %d | %s%d | %.2f ± %.2f |\n", info->architecture,
               tfm_dtype_name(info->weight_dtype), (double)info->weight_bytes / (1024.0 * 1024.0),
               (double)info->n_params / 1e6, info->backend, o->model.threads, res[i].test, res[i].n_tokens, mean, sd);
    }
}

/* A JSON string literal: quotes, backslashes and control characters escaped. */
static void print_json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

static void print_json(const bench_options *o, const tfm_model_info *info, const bench_result *res, int n) {
    printf("[\n");
    for (int i = 0; i < n; i++) {
        const bench_result *r = &res[i];
        double mean, sd, ns_mean = 0, ns_sq = 0;
        speed_stats(r, &mean, &sd);
        for (int k = 0; k < r->runs; k++) ns_mean += 1e9 * r->seconds[k] / r->runs;
        for (int k = 0; k < r->runs; k++) ns_sq += pow(1e9 * r->seconds[k] - ns_mean, 2);
        printf("  {\"model_filename\": ");
        print_json_string(o->model.path);
        printf(", \"model_type\": \"%s %s\", \"model_size\": %lld, "
               "\"model_n_params\": %lld, \"backend\": \"%s\", \"n_threads\": %d, \"kv_type\": \"%s\", "
               "\"test\": \"%s%d\", \"n_prompt\": %d, \"n_gen\": %d, \"reps\": %d, "
               "\"avg_ns\": %.0f, \"stddev_ns\": %.0f, \"avg_ts\": %.6f, \"stddev_ts\": %.6f, \"samples_ts\": [",
               info->architecture, tfm_dtype_name(info->weight_dtype), (long long)info->weight_bytes,
               (long long)info->n_params, info->backend, o->model.threads, o->kv ? o->kv : "f16", r->test,
               r->n_tokens, r->test[0] == 'p' ? r->n_tokens : 0, r->test[0] == 't' ? r->n_tokens : 0, r->runs,
               ns_mean, r->runs > 1 ? sqrt(ns_sq / (r->runs - 1)) : 0.0, mean, sd);
        for (int k = 0; k < r->runs; k++) printf(k ? ", %.6f" : "%.6f", r->n_tokens / r->seconds[k]);
        printf("]}%s\n", i + 1 < n ? "," : "");
    }
    printf("]\n");
}

int cmd_bench(int argc, char **argv) {
    bench_options o = {.model = {.backend = "auto"}, .n_prompt = 512, .n_gen = 128, .reps = 5};
    const cli_option options[] = {
        {"-m|--model", OPT_STRING, &o.model.path, "model: GGUF file or Hugging Face directory (required)"},
        {"-p|--n-prompt", OPT_INT, &o.n_prompt, "prompt tokens of the pp test; 0 = skip it (default 512)"},
        {"-n|--n-gen", OPT_INT, &o.n_gen, "tokens of the tg test; 0 = skip it (default 128)"},
        {"-r|--repetitions", OPT_INT, &o.reps, "timed runs per test (default 5)"},
        {"-b|--batch", OPT_INT, &o.n_batch, "tokens per forward chunk in pp; 0 = the whole prompt (default)"},
        {"-t|--threads", OPT_INT, &o.model.threads, "cpu threads; 0 = all cores (default)"},
        {"--backend", OPT_STRING, &o.model.backend, "auto, cpu, cuda (default auto)"},
        {"--kv", OPT_STRING, &o.kv, "KV-cache dtype: f16 (default), bf16, f32"},
        {"--json", OPT_FLAG, &o.json, "print JSON (fields named as llama-bench's -o json)"},
        {NULL, OPT_FLAG, NULL, NULL},
    };
    int rc = cli_parse(CMD, "-m MODEL [-p 512] [-n 128] [-r 5] [-t THREADS] [--json]", argc, argv, options);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    if (o.n_prompt < 0 || o.n_gen < 0 || o.reps < 1 || o.n_batch < 0)
        return cli_error(CMD, EXIT_USAGE, "-p, -n and -b must be >= 0 and -r >= 1");
    if (o.n_prompt == 0 && o.n_gen == 0) return cli_error(CMD, EXIT_USAGE, "-p and -n are both 0: nothing to measure");

    tfm_model *model;
    if ((rc = cli_load_model(CMD, &o.model, &model))) return rc;
    tfm_model_info info = {.struct_size = sizeof info};
    tfm_status st = tfm_model_get_info(model, &info);
    if (st) {
        rc = cli_fail(CMD, "cannot describe the model", st);
        tfm_model_free(model);
        return rc;
    }
    const tfm_tokenizer *tok = tfm_model_tokenizer(model);
    int32_t bos = tok ? tfm_tokenizer_bos(tok) : -1;
    bench_result results[2] = {{0}};
    int n_results = 0;
    if (o.n_prompt > 0 && rc == EXIT_OK) rc = run_test(&o, model, 1, info.n_vocab, bos, &results[n_results++]);
    if (o.n_gen > 0 && rc == EXIT_OK) rc = run_test(&o, model, 0, info.n_vocab, bos, &results[n_results++]);
    if (rc == EXIT_OK) {
        if (o.json) print_json(&o, &info, results, n_results);
        else print_table(&o, &info, results, n_results);
    }
    for (int i = 0; i < n_results; i++) free(results[i].seconds);
    tfm_model_free(model);
    return rc;
}
