/*
 * character.h — one speaking character of the game loop: its own session (KV cache), sampler and
 * text stream over a model shared with the other characters.
 *
 * Work is cut into small steps (a few prompt tokens, or one generated token), so a frame can do as
 * many as fit in its time budget. The same steps run either from the frame loop (one thread for all
 * characters) or in a loop on the character's own worker thread, which hands its text to the frame
 * loop through a mailbox and stops when the shared cancel flag is raised (the session's abort
 * callback reads the flag, so even a long evaluation stops between layers).
 */
#ifndef GAME_CHARACTER_H
#define GAME_CHARACTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include <tfm/tfm.h>

typedef enum character_state {
    CHARACTER_PROMPTING, /* evaluating its prompt */
    CHARACTER_SPEAKING,  /* generating */
    CHARACTER_DONE,      /* said all it had to say (end of sequence or its token limit) */
    CHARACTER_CANCELLED, /* stopped by the player or the timeout */
    CHARACTER_FAILED     /* the library reported an error (see `error`) */
} character_state;

#define CHARACTER_TEXT_MAX 8192

typedef struct character {
    const char *name;
    const char *prompt;
    int max_tokens;

    tfm_session *session;
    tfm_sampler *sampler;
    tfm_text_stream *stream;
    const tfm_tokenizer *tokenizer;
    int32_t n_vocab;

    int32_t *ids;         /* prompt ids, then generated ids (the repetition penalty's history) */
    size_t n_prompt, n_prompt_done, n_ids;
    int n_generated;
    character_state state;
    char error[512];
    char text[CHARACTER_TEXT_MAX]; /* everything said so far */
    size_t text_len;

    /* worker-thread mode */
    atomic_int *cancel;   /* shared by all characters; nonzero = stop */
    pthread_t thread;
    pthread_mutex_t lock; /* guards mailbox and finished */
    char mailbox[CHARACTER_TEXT_MAX];
    size_t mailbox_len;
    int finished;
} character;

/* Creates the character's session and sampler and tokenizes its prompt. Returns the status; on
 * failure c->error says why. */
tfm_status character_init(character *c, const tfm_model *model, const char *name, const char *prompt,
                          int max_tokens, uint64_t seed, atomic_int *cancel);
void character_free(character *c);

/* Does one step of work. The text it produced (possibly none) is appended to c->text and returned
 * through *piece / *piece_len (valid until the next step). */
void character_step(character *c, const char **piece, size_t *piece_len);

int character_active(const character *c);
const char *character_state_name(character_state s);

/* Worker-thread mode: start the loop on its own thread; take what it said since the last call (the
 * frame loop's side); whether it has finished; wait for it. */
int character_start_thread(character *c);
size_t character_take_mailbox(character *c, char *out, size_t capacity, int *finished);
void character_join(character *c);

#endif
