/*
 * simple.c — the smallest complete libtfm program: load a model, tokenize a prompt, generate text
 * with streaming, free everything. Every call that can fail is checked.
 *
 *     simple MODEL [PROMPT] [N_TOKENS]
 *
 * Sampling is greedy (temperature 0), so the output is the same on every run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tfm/tfm.h>

/* Prints a failed call's status and the library's detailed message; returns 1 for main's exit code. */
static int fail(const char *what, tfm_status status) {
    fprintf(stderr, "%s failed: %s: %s\n", what, tfm_status_string(status), tfm_last_error());
    return 1;
}

/* Called for each generated token with its text (complete UTF-8 characters, possibly empty). */
static int on_token(int32_t id, const char *text, size_t length, void *user_data) {
    (void)id;
    (void)user_data;
    fwrite(text, 1, length, stdout);
    fflush(stdout);
    return 0; /* nonzero would stop the generation */
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [PROMPT] [N_TOKENS]\n", argv[0]);
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "In the beginning";
    int n_tokens = argc > 3 ? atoi(argv[3]) : 32;

    /* The library must be at least as new as the header, with the same major version. */
    if (tfm_version_number() / 10000 != TFM_VERSION_MAJOR || tfm_version_number() < TFM_VERSION_NUMBER) {
        fprintf(stderr, "libtfm %s is not compatible with the header %s\n", tfm_version_string(), TFM_VERSION_STRING);
        return 1;
    }

    int rc = 1;
    tfm_model *model = NULL;
    tfm_session *session = NULL;
    tfm_sampler *sampler = NULL;
    int32_t *ids = NULL;
    tfm_status st;

    if ((st = tfm_model_load(argv[1], NULL, &model))) {
        rc = fail("tfm_model_load", st);
        goto done;
    }
    const tfm_tokenizer *tok = tfm_model_tokenizer(model);
    if (!tok) {
        fprintf(stderr, "the model has no tokenizer\n");
        goto done;
    }

    /* Ask for the number of ids first, then tokenize into a buffer of that size. */
    size_t n_ids = 0;
    st = tfm_tokenize(tok, prompt, strlen(prompt), TFM_TOKENIZE_MODEL_DEFAULTS, NULL, 0, &n_ids);
    if (st != TFM_OK && st != TFM_E_BUFFER_TOO_SMALL) {
        rc = fail("tfm_tokenize", st);
        goto done;
    }
    ids = malloc((n_ids ? n_ids : 1) * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    if ((st = tfm_tokenize(tok, prompt, strlen(prompt), TFM_TOKENIZE_MODEL_DEFAULTS, ids, n_ids, &n_ids))) {
        rc = fail("tfm_tokenize", st);
        goto done;
    }

    if ((st = tfm_session_create(model, NULL, &session))) {
        rc = fail("tfm_session_create", st);
        goto done;
    }
    tfm_sampler_params sp = tfm_sampler_params_default();
    sp.temperature = 0.0f; /* greedy */
    if ((st = tfm_sampler_create(&sp, &sampler))) {
        rc = fail("tfm_sampler_create", st);
        goto done;
    }

    tfm_generate_params gp = tfm_generate_params_default();
    gp.max_tokens = n_tokens;
    gp.on_token = on_token;
    size_t n_generated = 0;
    if ((st = tfm_session_generate(session, sampler, ids, n_ids, &gp, NULL, 0, &n_generated))) {
        rc = fail("tfm_session_generate", st);
        goto done;
    }
    printf("\n");
    fprintf(stderr, "%zu prompt tokens, %zu generated\n", n_ids, n_generated);
    rc = 0;

done:
    free(ids);
    tfm_sampler_free(sampler); /* freeing NULL is a no-op, so one exit path frees everything */
    tfm_session_free(session);
    tfm_model_free(model);
    return rc;
}
