/*
 * cli.h — what the tfm subcommands share: option parsing, error reports, loading a model from the
 * common options, timing and a few small parsers. Everything here uses only the public tfm.h.
 */
#ifndef TFM_CLI_H
#define TFM_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <tfm/tfm.h>

/* Exit codes of every subcommand. */
#define EXIT_OK 0
#define EXIT_FAILED 1 /* the library reported an error, or a file could not be written */
#define EXIT_USAGE 2  /* bad command line */

typedef enum cli_kind { OPT_FLAG, OPT_INT, OPT_FLOAT, OPT_STRING } cli_kind;

/* One command-line option. `names` lists its spellings separated by '|', e.g. "-m|--model".
 * `dest` points at an int (OPT_FLAG: set to 1; OPT_INT), a double (OPT_FLOAT) or a const char *
 * (OPT_STRING, pointing into argv). */
typedef struct cli_option {
    const char *names;
    cli_kind kind;
    void *dest;
    const char *help;
} cli_option;

/* Parses argv[0..argc) (the words after the subcommand name) against `options` (terminated by an
 * entry with names == NULL). Returns EXIT_OK when the program should go on, -1 after printing the
 * help for -h/--help (the caller exits with 0), or EXIT_USAGE after printing what is wrong. */
int cli_parse(const char *command, const char *usage, int argc, char **argv, const cli_option *options);

/* Prints "tfm COMMAND: WHAT: STATUS (DETAIL)" to stderr, DETAIL being tfm_last_error(), and returns
 * EXIT_FAILED. Call it right after the failing call: the detail is only valid until the next one. */
int cli_fail(const char *command, const char *what, tfm_status status);

/* Prints "tfm COMMAND: MESSAGE" to stderr and returns `code`. */
int cli_error(const char *command, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The options every model-loading subcommand accepts. */
typedef struct cli_model_options {
    const char *path;    /* -m|--model */
    const char *backend; /* --backend (default "auto") */
    int threads;         /* -t|--threads (default 0: the machine's cores) */
} cli_model_options;

/* Loads opts->path with the backend and thread count asked for; reports failures itself. */
int cli_load_model(const char *command, const cli_model_options *opts, tfm_model **out);

/* Parses "f16" / "f32" / "bf16" into a KV-cache dtype; returns EXIT_USAGE (after a message) if unknown. */
int cli_parse_kv_dtype(const char *command, const char *text, tfm_dtype *out);

/* Parses whitespace- or comma-separated token ids into a malloc'd array (*out, freed by the caller). */
int cli_parse_ids(const char *command, const char *text, int32_t **out, size_t *n_out);

/* Tokenizes text into a malloc'd array, asking the library for the size first. */
tfm_status cli_tokenize(const tfm_tokenizer *tok, const char *text, size_t length, uint32_t flags,
                        int32_t **out, size_t *n_out);

/* Monotonic time in seconds. */
double cli_now(void);

/* The subcommands: argc/argv are the words after the subcommand's name. */
int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);

#endif
