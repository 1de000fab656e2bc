/*
 * malformed_check.c — runs the malformed-file corpus (make_cases.py) through the public API.
 *
 *     malformed_check CASE_DIR [NAME_SUBSTRING]
 *
 * For each line of CASE_DIR/cases.tsv (name, kind, path, expected statuses, message needles) it loads
 * the file with tfm_model_load / tfm_model_load_from_memory / tfm_tokenizer_load and checks:
 *   - the status is one of the expected ones;
 *   - a failure leaves the handle NULL and a message holding every needle;
 *   - a model that loads has UTF-8 strings in its info, evaluates two tokens to finite logits, and its
 *     tokenizer (if any) works; a tokenizer that loads encodes probe texts (one made to trip regex
 *     backtracking), decodes every id, and refuses an out-of-range id.
 * Each case runs in a child process with 10 s: a loader that blocks (a FIFO in a model directory) or
 * crashes fails that case only. Ends with "N passed, N failed"; exit status 1 if any case failed.
 */
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tfm/tfm.h"

static const char *status_names[] = {"OK", "E_INVALID_ARGUMENT", "E_IO", "E_FORMAT", "E_UNSUPPORTED", "E_OOM",
                                     "E_CONTEXT_FULL", "E_BACKEND", "E_ABORTED", "E_STATE", "E_BUFFER_TOO_SMALL",
                                     "E_INTERNAL"};
static char problem[4096];

static const char *sname(tfm_status s)
{
    return (unsigned)s < sizeof status_names / sizeof *status_names ? status_names[s] : "?";
}

static int valid_utf8(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], len, cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
        else return 0;
        if (i + len > n) return 0;
        for (unsigned k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

#define PROBLEM(...) (snprintf(problem, sizeof problem, __VA_ARGS__) >= 0 ? 0 : 0)

static int exercise_tokenizer(const tfm_tokenizer *t)
{
    static const char *const probes[] = {"", "ab ab a b", "Hello, world!  \t\n", "<s>x</s>",
                                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
                                         "\xff\xfe caf\xc3\xa9 \xf0\x9f\x98\x80"};
    int32_t vocab = tfm_tokenizer_vocab_size(t);
    if (vocab < 1) return PROBLEM("tokenizer with %d tokens", vocab);
    for (size_t k = 0; k < sizeof probes / sizeof *probes; k++) {
        int32_t ids[512];
        size_t n = 0;
        tfm_status st = tfm_tokenize(t, probes[k], strlen(probes[k]), TFM_TOKENIZE_MODEL_DEFAULTS, ids, 512, &n);
        if (st) return PROBLEM("tokenize probe %zu: %s: %s", k, sname(st), tfm_last_error());
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= vocab) return PROBLEM("probe %zu gave id %d of %d", k, ids[i], vocab);
        char text[4096];
        size_t len = 0;
        if ((st = tfm_detokenize(t, ids, n, text, sizeof text, &len)))
            return PROBLEM("detokenize probe %zu: %s", k, tfm_last_error());
    }
    char buf[256];
    for (int32_t i = 0; i < vocab; i++) {
        size_t len = 0;
        tfm_status st = tfm_detokenize(t, &i, 1, buf, sizeof buf, &len);
        if (st && st != TFM_E_BUFFER_TOO_SMALL) return PROBLEM("id %d does not decode: %s", i, tfm_last_error());
    }
    size_t len = 0;
    if (tfm_detokenize(t, &vocab, 1, buf, sizeof buf, &len) != TFM_E_INVALID_ARGUMENT)
        return PROBLEM("out-of-range id %d decoded", vocab);
    return 1;
}

static int exercise_model(tfm_model *m)
{
    tfm_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (tfm_model_get_info(m, &info)) return PROBLEM("model info: %s", tfm_last_error());
    const char *strs[] = {info.name, info.architecture, info.format, info.backend};
    for (int i = 0; i < 4; i++)
        if (!strs[i] || !valid_utf8(strs[i], strlen(strs[i]))) return PROBLEM("info string %d is not UTF-8", i);
    tfm_session_params sp = tfm_session_params_default();
    sp.n_ctx = 8;
    tfm_session *s = NULL;
    tfm_status st = tfm_session_create(m, &sp, &s);
    if (st) return PROBLEM("session: %s", tfm_last_error());
    int32_t ids[2] = {1, info.n_vocab - 1};
    st = tfm_session_eval(s, ids, 2);
    int ok = 1;
    if (st) {
        ok = PROBLEM("eval: %s", tfm_last_error());
    } else {
        const float *l = tfm_session_last_logits(s);
        for (int32_t i = 0; i < info.n_vocab && ok; i++)
            if (!(l[i] - l[i] == 0)) ok = PROBLEM("logit %d is %g", i, l[i]);
    }
    tfm_session_free(s);
    const tfm_tokenizer *t = tfm_model_tokenizer(m);
    if (ok && t) ok = exercise_tokenizer(t);
    return ok;
}

static int run_case(const char *dir, const char *kind, const char *rel, const char *expected, const char *needles)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    tfm_status st;
    tfm_model *m = NULL;
    tfm_tokenizer *t = NULL;
    void *bytes = NULL;
    tfm_model_params p = tfm_model_params_default();
    p.backend = "cpu";
    p.n_threads = 1;
    if (!strcmp(kind, "model")) {
        st = tfm_model_load(path, &p, &m);
    } else if (!strcmp(kind, "mem")) {
        FILE *f = fopen(path, "rb");
        if (!f) return PROBLEM("cannot read %s", path);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        bytes = malloc((size_t)n);
        if (!bytes || fread(bytes, 1, (size_t)n, f) != (size_t)n) return PROBLEM("cannot read %s", path);
        fclose(f);
        st = tfm_model_load_from_memory(bytes, (size_t)n, &p, &m);
    } else {
        st = tfm_tokenizer_load(path, &t);
    }
    const char *msg = tfm_last_error();
    char msg_copy[1024];
    snprintf(msg_copy, sizeof msg_copy, "%s", msg ? msg : "(null)");

    int ok = 1;
    char want[128];
    snprintf(want, sizeof want, "|%s|", expected);
    char got[32];
    snprintf(got, sizeof got, "|%s|", sname(st));
    if (!strstr(want, got)) {
        ok = PROBLEM("got %s, want %s: %s", sname(st), expected, msg_copy);
    } else if (st != TFM_OK) {
        if (m || t) ok = PROBLEM("failed load left a handle");
        else if (!msg_copy[0]) ok = PROBLEM("%s without a message", sname(st));
        else if (!valid_utf8(msg_copy, strlen(msg_copy))) ok = PROBLEM("message is not UTF-8: %s", msg_copy);
        if (ok && strcmp(needles, "-") != 0) {
            char list[512];
            snprintf(list, sizeof list, "%s", needles);
            for (char *save = NULL, *w = strtok_r(list, "|", &save); w && ok; w = strtok_r(NULL, "|", &save))
                if (!strstr(msg_copy, w)) ok = PROBLEM("message lacks '%s': %s", w, msg_copy);
        }
    } else if (m) {
        ok = exercise_model(m);
    } else if (t) {
        ok = exercise_tokenizer(t);
    }
    if (ok && getenv("TFM_TEST_VERBOSE")) snprintf(problem, sizeof problem, "%s %s", sname(st), st ? msg_copy : "");
    tfm_model_free(m);
    tfm_tokenizer_free(t);
    free(bytes);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CASE_DIR [NAME_SUBSTRING]\n", argv[0]);
        return 2;
    }
    char list_path[2048];
    snprintf(list_path, sizeof list_path, "%s/cases.tsv", argv[1]);
    FILE *f = fopen(list_path, "r");
    if (!f) {
        perror(list_path);
        return 2;
    }
    const char *filter = argc > 2 ? argv[2] : NULL;
    int passed = 0, failed = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *save = NULL;
        char *name = strtok_r(line, "\t", &save), *kind = strtok_r(NULL, "\t", &save);
        char *rel = strtok_r(NULL, "\t", &save), *expected = strtok_r(NULL, "\t", &save);
        char *needles = strtok_r(NULL, "\t", &save);
        if (!name || !kind || !rel || !expected || !needles) continue;
        if (filter && !strstr(name, filter)) continue;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10); /* SIGALRM ends a child that blocks */
            problem[0] = 0;
            int ok = run_case(argv[1], kind, rel, expected, needles);
            if (ok && getenv("TFM_TEST_VERBOSE")) printf("ok   %-52s %s\n", name, problem);
            if (!ok) printf("FAIL %-52s %s\n", name, problem);
            fflush(stdout);
            _exit(ok ? 0 : 1);
        }
        int wst = 0;
        if (pid < 0 || waitpid(pid, &wst, 0) != pid) {
            printf("FAIL %-52s cannot run the case\n", name);
            failed++;
            continue;
        }
        if (WIFEXITED(wst) && WEXITSTATUS(wst) == 0) {
            passed++;
        } else {
            failed++;
            if (WIFSIGNALED(wst))
                printf("FAIL %-52s %s\n", name, WTERMSIG(wst) == SIGALRM ? "blocked for 10 s" : strsignal(WTERMSIG(wst)));
            else if (WEXITSTATUS(wst) != 1)
                printf("FAIL %-52s exit status %d (a sanitizer report?)\n", name, WEXITSTATUS(wst));
        }
        fflush(stdout);
    }
    fclose(f);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
