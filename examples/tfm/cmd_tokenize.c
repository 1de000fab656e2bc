/*
 * cmd_tokenize.c — `tfm tokenize`: token ids of text. With --lines, each line of stdin is tokenized
 * on its own (without its trailing '\n'; a '\r' before it stays part of the text) and its ids are
 * printed on one line, separated by spaces. PATH is a model or anything tfm_tokenizer_load reads
 * (a GGUF file, a SentencePiece .model, a tokenizer.json, a Hugging Face directory).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "tokenize"

static int print_ids(const tfm_tokenizer *tok, const char *text, size_t length, uint32_t flags) {
    int32_t *ids;
    size_t n;
    tfm_status st = cli_tokenize(tok, text, length, flags, &ids, &n);
    if (st) return cli_fail(CMD, "cannot tokenize", st);
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    free(ids);
    return EXIT_OK;
}

/* Each line of stdin; a last line without '\n' counts as a line too. */
static int tokenize_lines(const tfm_tokenizer *tok, uint32_t flags) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = EXIT_OK;
    while (rc == EXIT_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') len--;
        rc = print_ids(tok, line, (size_t)len, flags);
    }
    free(line);
    return rc;
}

/* All of stdin as one text. */
static int tokenize_stdin(const tfm_tokenizer *tok, uint32_t flags) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) return cli_error(CMD, EXIT_FAILED, "out of memory");
        len += fread(buf + len, 1, cap - len, stdin);
        if (len < cap) break;
        char *grown = realloc(buf, cap *= 2);
        if (!grown) free(buf);
        buf = grown;
    }
    int rc = print_ids(tok, buf, len, flags);
    free(buf);
    return rc;
}

/* A tokenizer on its own first (cheap); a full model only when that fails. */
static int open_tokenizer(const char *path, tfm_tokenizer **own, tfm_model **model, const tfm_tokenizer **tok) {
    tfm_status st = tfm_tokenizer_load(path, own);
    if (st == TFM_OK) {
        *tok = *own;
        return EXIT_OK;
    }
    char tokenizer_error[1024];
    snprintf(tokenizer_error, sizeof tokenizer_error, "%s (%s)", tfm_status_string(st), tfm_last_error());
    tfm_model_params mp = tfm_model_params_default();
    mp.n_threads = 1;
    tfm_status model_st = tfm_model_load(path, &mp, model);
    if (model_st == TFM_OK && (*tok = tfm_model_tokenizer(*model))) return EXIT_OK;
    if (model_st == TFM_OK) return cli_error(CMD, EXIT_FAILED, "the model '%s' carries no tokenizer", path);
    return cli_error(CMD, EXIT_FAILED, "cannot read a tokenizer from '%s': %s; as a model: %s (%s)", path,
                     tokenizer_error, tfm_status_string(model_st), tfm_last_error());
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *text = NULL;
    int lines = 0, no_bos = 0, eos = 0, special = 0, defaults = 0;
    const cli_option options[] = {
        {"-m|--model", OPT_STRING, &path, "model, GGUF file, tokenizer.model, tokenizer.json or HF directory"},
        {"--lines", OPT_FLAG, &lines, "tokenize each line of stdin; one line of ids per input line"},
        {"-p|--prompt", OPT_STRING, &text, "tokenize this text (else all of stdin as one text)"},
        {"--no-bos", OPT_FLAG, &no_bos, "do not prepend the BOS token"},
        {"--eos", OPT_FLAG, &eos, "append the EOS token"},
        {"--defaults", OPT_FLAG, &defaults, "add BOS/EOS as the tokenizer's settings say (overrides the above)"},
        {"--special", OPT_FLAG, &special, "text such as <s> becomes the special token"},
        {NULL, OPT_FLAG, NULL, NULL},
    };
    int rc = cli_parse(CMD, "-m PATH [--lines | -p TEXT] [--no-bos] [--special]", argc, argv, options);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    if (!path) return cli_error(CMD, EXIT_USAGE, "-m PATH is required");
    if (lines && text) return cli_error(CMD, EXIT_USAGE, "--lines and -p exclude each other");
    uint32_t flags = defaults ? TFM_TOKENIZE_MODEL_DEFAULTS
                              : (no_bos ? 0u : TFM_TOKENIZE_ADD_BOS) | (eos ? TFM_TOKENIZE_ADD_EOS : 0u);
    if (special) flags |= TFM_TOKENIZE_PARSE_SPECIAL;

    tfm_tokenizer *own = NULL;
    tfm_model *model = NULL;
    const tfm_tokenizer *tok = NULL;
    if ((rc = open_tokenizer(path, &own, &model, &tok))) return rc;
    if (text) rc = print_ids(tok, text, strlen(text), flags);
    else if (lines) rc = tokenize_lines(tok, flags);
    else rc = tokenize_stdin(tok, flags);
    if (fflush(stdout) != 0 && rc == EXIT_OK) rc = cli_error(CMD, EXIT_FAILED, "cannot write the output");
    tfm_tokenizer_free(own);
    tfm_model_free(model);
    return rc;
}
