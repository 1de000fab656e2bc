/*
 * main.c — the tfm program: picks the subcommand and checks that the library it runs against is
 * compatible with the header it was built with.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"run", cmd_run, "generate text from a prompt, streamed to stdout"},
    {"info", cmd_info, "describe a model: architecture, sizes, dtypes, tokenizer"},
    {"tokenize", cmd_tokenize, "print the token ids of each line of stdin"},
    {"logits", cmd_logits, "write the logits of every position of a token sequence as .npy"},
    {"bench", cmd_bench, "measure prompt and generation speed, as llama-bench does"},
    {"perplexity", cmd_perplexity, "perplexity of a text file in context-sized windows"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: tfm COMMAND [options]   (tfm COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-12s %s\n", "--version", "print the library's version and its backends");
}

/* Same major version, and a library at least as new as the header: otherwise the structs and
 * functions this program was compiled against may not exist. */
static int check_version(void) {
    int lib = tfm_version_number();
    if (lib / 10000 != TFM_VERSION_NUMBER / 10000 || lib < TFM_VERSION_NUMBER) {
        fprintf(stderr, "tfm: built for libtfm %s but running with libtfm %s, which is not compatible\n",
                TFM_VERSION_STRING, tfm_version_string());
        return 0;
    }
    return 1;
}

static int print_version(void) {
    printf("tfm %s (libtfm %s", TFM_VERSION_STRING, tfm_version_string());
    printf("; backends:");
    for (int i = 0; i < tfm_backend_count(); i++) {
        const char *name = tfm_backend_name(i);
        printf(" %s%s", name, tfm_backend_available(name) ? "" : " (unavailable)");
    }
    printf(")\n");
    return EXIT_OK;
}

int main(int argc, char **argv) {
    if (!check_version()) return EXIT_FAILED;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) return print_version();
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "tfm: unknown command '%s'\n", name);
    usage(stderr);
    return EXIT_USAGE;
}
