/* character.c — a character's session, its step-by-step generation and its optional worker thread. */
#include "character.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROMPT_STEP 8 /* prompt tokens evaluated per step: bounds the time of one step */

/* The session's abort callback: called by the library between layers and tokens. */
static int should_abort(void *user_data) { return atomic_load((atomic_int *)user_data) != 0; }

static tfm_status fail(character *c, const char *what, tfm_status st) {
    snprintf(c->error, sizeof c->error, "%s: %s: %s", what, tfm_status_string(st), tfm_last_error());
    c->state = CHARACTER_FAILED;
    return st;
}

tfm_status character_init(character *c, const tfm_model *model, const char *name, const char *prompt,
                          int max_tokens, uint64_t seed, atomic_int *cancel) {
    memset(c, 0, sizeof *c);
    c->name = name;
    c->prompt = prompt;
    c->max_tokens = max_tokens;
    c->cancel = cancel;
    c->state = CHARACTER_PROMPTING;
    pthread_mutex_init(&c->lock, NULL);
    c->tokenizer = tfm_model_tokenizer(model);
    if (!c->tokenizer) {
        snprintf(c->error, sizeof c->error, "the model carries no tokenizer");
        c->state = CHARACTER_FAILED;
        return TFM_E_STATE;
    }
    c->n_vocab = tfm_tokenizer_vocab_size(c->tokenizer);

    tfm_session_params sp = tfm_session_params_default();
    sp.abort = should_abort;
    sp.abort_user_data = cancel;
    tfm_status st = tfm_session_create(model, &sp, &c->session);
    if (st) return fail(c, "tfm_session_create", st);
    tfm_sampler_params smp = tfm_sampler_params_default();
    smp.seed = seed;
    if ((st = tfm_sampler_create(&smp, &c->sampler))) return fail(c, "tfm_sampler_create", st);
    if ((st = tfm_text_stream_create(c->tokenizer, &c->stream))) return fail(c, "tfm_text_stream_create", st);

    size_t n = 0;
    st = tfm_tokenize(c->tokenizer, prompt, strlen(prompt), TFM_TOKENIZE_MODEL_DEFAULTS, NULL, 0, &n);
    if (st != TFM_OK && st != TFM_E_BUFFER_TOO_SMALL) return fail(c, "tfm_tokenize", st);
    c->ids = malloc((n + (size_t)max_tokens + 1) * sizeof *c->ids);
    if (!c->ids) return fail(c, "allocating ids", TFM_E_OOM);
    if ((st = tfm_tokenize(c->tokenizer, prompt, strlen(prompt), TFM_TOKENIZE_MODEL_DEFAULTS, c->ids, n, &n)))
        return fail(c, "tfm_tokenize", st);
    c->n_prompt = c->n_ids = n;
    if (n == 0) {
        snprintf(c->error, sizeof c->error, "the prompt gives no tokens");
        c->state = CHARACTER_FAILED;
        return TFM_E_INVALID_ARGUMENT;
    }
    return TFM_OK;
}

void character_free(character *c) {
    tfm_text_stream_free(c->stream);
    tfm_sampler_free(c->sampler);
    tfm_session_free(c->session);
    free(c->ids);
    pthread_mutex_destroy(&c->lock);
}

int character_active(const character *c) {
    return c->state == CHARACTER_PROMPTING || c->state == CHARACTER_SPEAKING;
}

const char *character_state_name(character_state s) {
    switch (s) {
    case CHARACTER_PROMPTING: return "prompting";
    case CHARACTER_SPEAKING: return "speaking";
    case CHARACTER_DONE: return "done";
    case CHARACTER_CANCELLED: return "cancelled";
    case CHARACTER_FAILED: return "failed";
    }
    return "?";
}

static void say(character *c, const char *text, size_t len) {
    if (len > sizeof c->text - 1 - c->text_len) len = sizeof c->text - 1 - c->text_len;
    memcpy(c->text + c->text_len, text, len);
    c->text_len += len;
    c->text[c->text_len] = '\0';
}

/* Ends the speech: whatever the stream held back comes out now. */
static void finish(character *c, character_state state) {
    const char *text;
    size_t len;
    if (tfm_text_stream_flush(c->stream, &text, &len) == TFM_OK && len) say(c, text, len);
    c->state = state;
}

static void check_eval(character *c, tfm_status st) {
    if (st == TFM_E_ABORTED) c->state = CHARACTER_CANCELLED;
    else if (st) fail(c, "tfm_session_eval", st);
}

/* One step: a few prompt tokens, or sampling, showing and evaluating one token. */
static void step(character *c) {
    if (c->state == CHARACTER_PROMPTING) {
        size_t n = c->n_prompt - c->n_prompt_done < PROMPT_STEP ? c->n_prompt - c->n_prompt_done : PROMPT_STEP;
        tfm_status st = tfm_session_eval(c->session, c->ids + c->n_prompt_done, n);
        check_eval(c, st);
        if (st) return;
        c->n_prompt_done += n;
        if (c->n_prompt_done == c->n_prompt) c->state = CHARACTER_SPEAKING;
        return;
    }
    if (c->state != CHARACTER_SPEAKING) return;

    int32_t id;
    tfm_status st = tfm_sampler_sample(c->sampler, tfm_session_last_logits(c->session), c->n_vocab, c->ids, c->n_ids, &id);
    if (st) {
        fail(c, "tfm_sampler_sample", st);
        return;
    }
    if (id == tfm_tokenizer_eos(c->tokenizer)) {
        finish(c, CHARACTER_DONE);
        return;
    }
    c->ids[c->n_ids++] = id;
    c->n_generated++;
    const char *text;
    size_t len;
    if ((st = tfm_text_stream_push(c->stream, id, &text, &len))) {
        fail(c, "tfm_text_stream_push", st);
        return;
    }
    say(c, text, len);
    if (c->n_generated == c->max_tokens || tfm_session_n_past(c->session) == tfm_session_n_ctx(c->session)) {
        finish(c, CHARACTER_DONE);
        return;
    }
    check_eval(c, tfm_session_eval(c->session, &id, 1));
}

void character_step(character *c, const char **piece, size_t *piece_len) {
    size_t start = c->text_len;
    step(c);
    *piece = c->text + start;
    *piece_len = c->text_len - start;
}

/* The worker: steps until done, cancelled or failed, posting each piece to the mailbox. */
static void *worker(void *arg) {
    character *c = arg;
    while (character_active(c)) {
        if (atomic_load(c->cancel)) {
            c->state = CHARACTER_CANCELLED;
            break;
        }
        const char *piece;
        size_t len;
        character_step(c, &piece, &len);
        if (len) {
            pthread_mutex_lock(&c->lock);
            if (len > sizeof c->mailbox - c->mailbox_len) len = sizeof c->mailbox - c->mailbox_len;
            memcpy(c->mailbox + c->mailbox_len, piece, len);
            c->mailbox_len += len;
            pthread_mutex_unlock(&c->lock);
        }
    }
    pthread_mutex_lock(&c->lock);
    c->finished = 1;
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int character_start_thread(character *c) { return pthread_create(&c->thread, NULL, worker, c); }

size_t character_take_mailbox(character *c, char *out, size_t capacity, int *finished) {
    pthread_mutex_lock(&c->lock);
    size_t n = c->mailbox_len < capacity ? c->mailbox_len : capacity;
    memcpy(out, c->mailbox, n);
    memmove(c->mailbox, c->mailbox + n, c->mailbox_len - n);
    c->mailbox_len -= n;
    *finished = c->finished && c->mailbox_len == 0;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void character_join(character *c) { pthread_join(c->thread, NULL); }
