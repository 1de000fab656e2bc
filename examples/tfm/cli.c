/* cli.c — option parsing, error reports and small helpers shared by the tfm subcommands. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Does `word` (up to `len` bytes) equal one of the '|'-separated spellings in `names`? */
static int names_match(const char *names, const char *word, size_t len) {
    const char *p = names;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, word, len) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

static void print_help(const char *command, const char *usage, const cli_option *options) {
    printf("usage: tfm %s %s\n\noptions:\n", command, usage);
    for (const cli_option *o = options; o->names; o++) {
        const char *arg = o->kind == OPT_INT ? " N" : o->kind == OPT_FLOAT ? " X" : o->kind == OPT_STRING ? " TEXT" : "";
        char left[64];
        snprintf(left, sizeof left, "%s%s", o->names, arg);
        for (char *c = left; *c; c++)
            if (*c == '|') *c = ',';
        printf("  %-24s %s\n", left, o->help);
    }
    printf("  %-24s %s\n", "-h,--help", "show this help");
}

static int parse_value(const char *command, const cli_option *o, const char *name, const char *value) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case OPT_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < INT_MIN || v > INT_MAX)
            return cli_error(command, EXIT_USAGE, "%s expects an integer, got '%s'", name, value);
        *(int *)o->dest = (int)v;
        return EXIT_OK;
    }
    case OPT_FLOAT: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v))
            return cli_error(command, EXIT_USAGE, "%s expects a number, got '%s'", name, value);
        *(double *)o->dest = v;
        return EXIT_OK;
    }
    case OPT_STRING:
        *(const char **)o->dest = value;
        return EXIT_OK;
    case OPT_FLAG:
        break;
    }
    return cli_error(command, EXIT_USAGE, "%s takes no value", name);
}

int cli_parse(const char *command, const char *usage, int argc, char **argv, const cli_option *options) {
    for (int i = 0; i < argc; i++) {
        const char *word = argv[i];
        if (strcmp(word, "-h") == 0 || strcmp(word, "--help") == 0) {
            print_help(command, usage, options);
            return -1;
        }
        /* "--name=value" is accepted as well as "--name value" */
        const char *eq = strncmp(word, "--", 2) == 0 ? strchr(word, '=') : NULL;
        size_t len = eq ? (size_t)(eq - word) : strlen(word);
        const cli_option *o = options;
        while (o->names && !names_match(o->names, word, len)) o++;
        if (!o->names)
            return cli_error(command, EXIT_USAGE, "unknown option '%s' (see tfm %s --help)", word, command);
        if (o->kind == OPT_FLAG) {
            if (eq) return cli_error(command, EXIT_USAGE, "%.*s takes no value", (int)len, word);
            *(int *)o->dest = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) return cli_error(command, EXIT_USAGE, "%s needs a value", word);
            value = argv[++i];
        }
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)len, word);
        int rc = parse_value(command, o, name, value);
        if (rc) return rc;
    }
    return EXIT_OK;
}

int cli_error(const char *command, int code, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "tfm %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_fail(const char *command, const char *what, tfm_status status) {
    const char *detail = tfm_last_error();
    fprintf(stderr, "tfm %s: %s: %s%s%s%s\n", command, what, tfm_status_string(status),
            detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
    return EXIT_FAILED;
}

int cli_load_model(const char *command, const cli_model_options *opts, tfm_model **out) {
    *out = NULL;
    if (!opts->path) return cli_error(command, EXIT_USAGE, "-m MODEL is required (see tfm %s --help)", command);
    if (opts->threads < 0) return cli_error(command, EXIT_USAGE, "-t must be >= 0 (0: all cores)");
    tfm_model_params mp = tfm_model_params_default();
    if (opts->backend) mp.backend = opts->backend;
    mp.n_threads = opts->threads;
    tfm_status st = tfm_model_load(opts->path, &mp, out);
    if (st) {
        char what[512];
        snprintf(what, sizeof what, "cannot load model '%s'", opts->path);
        return cli_fail(command, what, st);
    }
    return EXIT_OK;
}

int cli_parse_kv_dtype(const char *command, const char *text, tfm_dtype *out) {
    if (strcmp(text, "f16") == 0) *out = TFM_DTYPE_F16;
    else if (strcmp(text, "f32") == 0) *out = TFM_DTYPE_F32;
    else if (strcmp(text, "bf16") == 0) *out = TFM_DTYPE_BF16;
    else return cli_error(command, EXIT_USAGE, "--kv expects f16, bf16 or f32, got '%s'", text);
    return EXIT_OK;
}

int cli_parse_ids(const char *command, const char *text, int32_t **out, size_t *n_out) {
    size_t cap = 16, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return cli_error(command, EXIT_FAILED, "out of memory");
    const char *p = text;
    for (;;) {
        while (*p && (isspace((unsigned char)*p) || *p == ',')) p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX || (*end && !isspace((unsigned char)*end) && *end != ',')) {
            free(ids);
            return cli_error(command, EXIT_USAGE, "--ids: '%.20s' is not a token id", p);
        }
        if (n == cap) {
            int32_t *grown = realloc(ids, 2 * cap * sizeof *ids);
            if (!grown) {
                free(ids);
                return cli_error(command, EXIT_FAILED, "out of memory");
            }
            ids = grown;
            cap *= 2;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    *out = ids;
    *n_out = n;
    return EXIT_OK;
}

tfm_status cli_tokenize(const tfm_tokenizer *tok, const char *text, size_t length, uint32_t flags,
                        int32_t **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    size_t need = 0;
    tfm_status st = tfm_tokenize(tok, text, length, flags, NULL, 0, &need);
    if (st != TFM_OK && st != TFM_E_BUFFER_TOO_SMALL) return st;
    int32_t *ids = malloc((need ? need : 1) * sizeof *ids);
    if (!ids) return TFM_E_OOM;
    st = tfm_tokenize(tok, text, length, flags, ids, need, n_out);
    if (st) {
        free(ids);
        return st;
    }
    *out = ids;
    return TFM_OK;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
