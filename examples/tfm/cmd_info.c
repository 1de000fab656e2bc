/* cmd_info.c — `tfm info`: what a model is (architecture, sizes, dtypes) and what its tokenizer is. */
#include <stdio.h>

#include "cli.h"

#define CMD "info"

static void print_tokenizer(const tfm_tokenizer *tok) {
    if (!tok) {
        printf("tokenizer:       none\n");
        return;
    }
    printf("tokenizer:       %s, %d tokens\n", tfm_tokenizer_kind(tok), tfm_tokenizer_vocab_size(tok));
    int32_t bos = tfm_tokenizer_bos(tok), eos = tfm_tokenizer_eos(tok);
    const char *bos_piece = bos >= 0 ? tfm_token_piece(tok, bos) : NULL;
    const char *eos_piece = eos >= 0 ? tfm_token_piece(tok, eos) : NULL;
    printf("bos / eos:       %d %s / %d %s\n", bos, bos_piece ? bos_piece : "-", eos, eos_piece ? eos_piece : "-");
}

int cmd_info(int argc, char **argv) {
    cli_model_options mo = {.backend = "auto", .threads = 1};
    const cli_option options[] = {
        {"-m|--model", OPT_STRING, &mo.path, "model: GGUF file or Hugging Face directory (required)"},
        {"--backend", OPT_STRING, &mo.backend, "auto, cpu, cuda (default auto)"},
        {NULL, OPT_FLAG, NULL, NULL},
    };
    int rc = cli_parse(CMD, "-m MODEL", argc, argv, options);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    tfm_model *model;
    if ((rc = cli_load_model(CMD, &mo, &model))) return rc;

    tfm_model_info info = {.struct_size = sizeof info};
    tfm_status st = tfm_model_get_info(model, &info);
    if (st) {
        rc = cli_fail(CMD, "cannot describe the model", st);
        tfm_model_free(model);
        return rc;
    }
    printf("model:           %s\n", mo.path);
    printf("name:            %s\n", info.name && info.name[0] ? info.name : "-");
    printf("architecture:    %s\n", info.architecture);
    printf("format:          %s\n", info.format);
    printf("backend:         %s\n", info.backend);
    printf("parameters:      %lld (%.2f M)\n", (long long)info.n_params, (double)info.n_params / 1e6);
    printf("weights:         %s, %lld bytes (%.2f MiB)\n", tfm_dtype_name(info.weight_dtype),
           (long long)info.weight_bytes, (double)info.weight_bytes / (1024.0 * 1024.0));
    printf("vocabulary:      %d\n", info.n_vocab);
    printf("context (train): %d\n", info.n_ctx_train);
    printf("embedding:       %d\n", info.n_embd);
    printf("layers:          %d\n", info.n_layer);
    printf("heads:           %d (kv %d, head dim %d)\n", info.n_head, info.n_head_kv, info.head_dim);
    printf("feed-forward:    %d\n", info.n_ff);
    printf("rope theta:      %g\n", info.rope_theta);
    printf("rms eps:         %g\n", info.rms_eps);
    printf("tied embeddings: %s\n", info.tied_embeddings ? "yes" : "no");
    print_tokenizer(tfm_model_tokenizer(model));
    tfm_model_free(model);
    return EXIT_OK;
}
