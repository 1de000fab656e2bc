/*
 * game_loop.c — the pattern a game engine or an editor uses: a fixed-timestep loop (60 frames/s)
 * that advances text generation a little each frame, within a per-frame time budget, shows the text
 * as it streams, and cancels mid-generation when a key is pressed or a timeout expires.
 *
 * One model (loaded from memory, as an engine loads it from its asset pack) serves several
 * characters, each with its own session. Two ways to drive them:
 *   --mode single : the frame loop itself steps the characters, round-robin, until the frame's
 *                   budget is spent (one thread does everything; nothing to lock);
 *   --mode multi  : each character generates on its own thread; the frame loop only collects what
 *                   they said; cancelling raises a flag that the sessions' abort callback reads.
 * With the same seeds both modes produce the same text for each character.
 *
 *     game-loop MODEL [--mode single|multi] [--characters N] [--tokens N] [--budget-ms X]
 *               [--timeout-ms X] [--max-frames N] [--threads N] [--no-sleep] [--quiet]
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "character.h"

#define FRAME_SECONDS (1.0 / 60.0)
#define MAX_CHARACTERS 4

static const struct {
    const char *name;
    const char *prompt;
} cast[MAX_CHARACTERS] = {
    {"Moses", "And the LORD spake unto Moses, saying,"},
    {"David", "The LORD is my shepherd;"},
    {"Ruth", "And Ruth said, Intreat me not to leave thee,"},
    {"Solomon", "To every thing there is a season,"},
};

typedef struct options {
    const char *model;
    int multi, n_characters, tokens, max_frames, threads, no_sleep, quiet;
    double budget_ms, timeout_ms;
} options;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_until(double t) {
    double d = t - now();
    if (d <= 0) return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ---- input: a key press cancels; stdin at end of file (e.g. /dev/null in CI) is not a key ---- */
static struct termios saved_termios;
static int terminal_raw;

static void keyboard_begin(void) {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) != 0) return;
    struct termios raw = saved_termios;
    raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO); /* each key arrives at once, unechoed */
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) terminal_raw = 1;
}

static void keyboard_end(void) {
    if (terminal_raw) tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
}

static int key_pressed(int *stdin_open) {
    if (!*stdin_open) return 0;
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return 0;
    char c;
    ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n <= 0) *stdin_open = 0;
    return n > 0;
}

/* ---- the asset pack: the whole model file in memory ---- */
static void *read_asset(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *data = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)n))) {
            if (fread(data, 1, (size_t)n, f) != (size_t)n) {
                free(data);
                data = NULL;
            }
            *size = (size_t)n;
        }
    }
    fclose(f);
    return data;
}

static int on_progress(float progress, void *user_data) {
    int *quiet = user_data;
    if (!*quiet) fprintf(stderr, "\rloading %3.0f%%%s", 100.0 * progress, progress >= 1.0f ? "\n" : "");
    return 0; /* nonzero would cancel the load */
}

/* ---- rendering: what a frame shows (here: a line per character that said something) ---- */
static void show(const options *o, int frame, const character *c, const char *piece, size_t len) {
    if (o->quiet || len == 0) return;
    printf("frame %4d  %-8s +\"", frame, c->name);
    for (size_t i = 0; i < len; i++) {
        if (piece[i] == '\n') fputs("\\n", stdout);
        else putchar(piece[i]);
    }
    printf("\"\n");
}

typedef struct frame_stats {
    int frames, over_budget, steps;
    double max_work_ms;
} frame_stats;

/* Single-thread mode: spend up to the budget stepping the characters round-robin. A step is only
 * started when the time it is expected to take (a running average) still fits, but each frame makes
 * at least one step so generation never stalls on a slow machine. */
static void update_single(const options *o, character *cs, int n, int frame, double frame_start,
                          double *step_estimate, int *next, frame_stats *st) {
    double budget = o->budget_ms / 1e3;
    for (int done_any = 0;;) {
        double left = budget - (now() - frame_start);
        if (done_any && left < *step_estimate) break;
        int k, tried = 0;
        for (k = *next; tried < n && !character_active(&cs[k]); k = (k + 1) % n) tried++;
        if (tried == n) break; /* nobody left to speak */
        *next = (k + 1) % n;
        double t0 = now();
        const char *piece;
        size_t len;
        character_step(&cs[k], &piece, &len);
        *step_estimate = 0.8 * *step_estimate + 0.2 * (now() - t0);
        show(o, frame, &cs[k], piece, len);
        st->steps++;
        done_any = 1;
    }
}

/* Multi-thread mode: collect what each worker said since the last frame. Returns how many are still
 * running. */
static int update_multi(const options *o, character *cs, int n, int frame) {
    int running = 0;
    for (int k = 0; k < n; k++) {
        char buf[CHARACTER_TEXT_MAX];
        int finished;
        size_t len = character_take_mailbox(&cs[k], buf, sizeof buf, &finished);
        show(o, frame, &cs[k], buf, len);
        running += !finished;
    }
    return running;
}

/* Starts one thread per character; if one cannot start, cancels and joins those that did. */
static int start_workers(character *cs, int n, atomic_int *cancel) {
    for (int k = 0; k < n; k++)
        if (character_start_thread(&cs[k]) != 0) {
            fprintf(stderr, "game-loop: cannot start a thread\n");
            atomic_store(cancel, 1);
            for (int j = 0; j < k; j++) character_join(&cs[j]);
            return -1;
        }
    return 0;
}

static int play(const options *o, const tfm_model *model) {
    character cs[MAX_CHARACTERS];
    atomic_int cancel = 0;
    int n = 0, rc = 0;
    for (; n < o->n_characters; n++) {
        if (character_init(&cs[n], model, cast[n].name, cast[n].prompt, o->tokens, 1000 + (uint64_t)n, &cancel)) {
            fprintf(stderr, "game-loop: %s: %s\n", cast[n].name, cs[n].error);
            character_free(&cs[n]);
            rc = 1;
            goto done;
        }
    }

    keyboard_begin();
    frame_stats st = {0};
    const char *cancelled_by = NULL;
    int stdin_open = 1, next = 0;
    double step_estimate = 0, begin = now(), next_frame = begin;
    for (int frame = 0;; frame++) {
        double frame_start = now();
        if (!cancelled_by && key_pressed(&stdin_open)) cancelled_by = "a key";
        if (!cancelled_by && o->timeout_ms > 0 && (frame_start - begin) * 1e3 >= o->timeout_ms) cancelled_by = "the timeout";
        if (!cancelled_by && o->max_frames > 0 && frame >= o->max_frames) cancelled_by = "the frame limit";
        if (cancelled_by && !atomic_load(&cancel)) {
            atomic_store(&cancel, 1); /* workers stop, even in the middle of an evaluation */
            if (!o->multi)
                for (int k = 0; k < n; k++)
                    if (character_active(&cs[k])) cs[k].state = CHARACTER_CANCELLED;
        }

        /* The workers start in the first frame, after its input is read: a key waiting from the start
         * cancels them before they say anything, however fast they would be. */
        if (o->multi && frame == 0 && start_workers(cs, n, &cancel) != 0) {
            keyboard_end();
            rc = 1;
            goto done;
        }

        int running;
        if (o->multi) {
            running = update_multi(o, cs, n, frame);
        } else {
            update_single(o, cs, n, frame, frame_start, &step_estimate, &next, &st);
            running = 0;
            for (int k = 0; k < n; k++) running += character_active(&cs[k]);
        }

        double work_ms = (now() - frame_start) * 1e3;
        if (work_ms > st.max_work_ms) st.max_work_ms = work_ms;
        if (work_ms > o->budget_ms) st.over_budget++;
        st.frames = frame + 1;
        if (!running) break;
        next_frame += FRAME_SECONDS;
        if (!o->no_sleep) sleep_until(next_frame);
    }
    keyboard_end();
    if (o->multi)
        for (int k = 0; k < n; k++) character_join(&cs[k]);

    printf("mode %s, %d characters, %d frames (%.1f s at 60 frames/s), frame budget %.1f ms: "
           "%d frames over budget, longest frame work %.2f ms%s%s\n",
           o->multi ? "multi" : "single", n, st.frames, st.frames * FRAME_SECONDS, o->budget_ms, st.over_budget,
           st.max_work_ms, cancelled_by ? ", cancelled by " : "", cancelled_by ? cancelled_by : "");
    for (int k = 0; k < n; k++) {
        character *c = &cs[k];
        if (c->state == CHARACTER_FAILED) {
            fprintf(stderr, "game-loop: %s failed: %s\n", c->name, c->error);
            rc = 1;
        }
        /* one line per character: the whole text, newlines shown as \n */
        printf("final %s %s %d:", c->name, character_state_name(c->state), c->n_generated);
        for (size_t i = 0; i < c->text_len; i++) {
            if (c->text[i] == '\n') fputs("\\n", stdout);
            else putchar(c->text[i]);
        }
        putchar('\n');
    }
done:
    for (int k = 0; k < n; k++) character_free(&cs[k]);
    return rc;
}

static int parse(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--mode") && v) {
            if (strcmp(v, "single") && strcmp(v, "multi")) return 0;
            o->multi = !strcmp(argv[++i], "multi");
        } else if (!strcmp(a, "--characters") && v) o->n_characters = atoi(argv[++i]);
        else if (!strcmp(a, "--tokens") && v) o->tokens = atoi(argv[++i]);
        else if (!strcmp(a, "--budget-ms") && v) o->budget_ms = atof(argv[++i]);
        else if (!strcmp(a, "--timeout-ms") && v) o->timeout_ms = atof(argv[++i]);
        else if (!strcmp(a, "--max-frames") && v) o->max_frames = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && v) o->threads = atoi(argv[++i]);
        else if (!strcmp(a, "--no-sleep")) o->no_sleep = 1;
        else if (!strcmp(a, "--quiet")) o->quiet = 1;
        else if (!o->model && a[0] != '-') o->model = a;
        else return 0;
    }
    return o->model && o->n_characters >= 1 && o->n_characters <= MAX_CHARACTERS && o->tokens >= 1 &&
           o->budget_ms > 0;
}

int main(int argc, char **argv) {
    options o = {.n_characters = 3, .tokens = 32, .budget_ms = 4.0, .timeout_ms = 0, .threads = 1};
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: game-loop MODEL [--mode single|multi] [--characters 1..%d] [--tokens N] "
                        "[--budget-ms X] [--timeout-ms X] [--max-frames N] [--threads N] [--no-sleep] [--quiet]\n",
                MAX_CHARACTERS);
        return 2;
    }
    size_t size = 0;
    void *asset = read_asset(o.model, &size);
    if (!asset) {
        fprintf(stderr, "game-loop: cannot read '%s': %s\n", o.model, strerror(errno));
        return 1;
    }
    tfm_model_params mp = tfm_model_params_default();
    mp.n_threads = o.threads; /* the rest of the game needs the other cores */
    mp.progress = on_progress;
    mp.progress_user_data = &o.quiet;
    tfm_model *model = NULL;
    tfm_status st = tfm_model_load_from_memory(asset, size, &mp, &model);
    int rc;
    if (st) {
        fprintf(stderr, "game-loop: loading the model: %s: %s\n", tfm_status_string(st), tfm_last_error());
        rc = 1;
    } else {
        rc = play(&o, model);
    }
    tfm_model_free(model);
    free(asset); /* only after the model: it reads its weights from this memory */
    return rc;
}
