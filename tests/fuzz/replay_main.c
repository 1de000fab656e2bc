/*
 * replay_main.c — runs a fuzz target over saved inputs without libFuzzer, so that any compiler (and
 * any sanitizer build) replays the regression inputs and seeds:
 *
 *     fuzz-replay-TARGET FILE_OR_DIR...
 *
 * Each file is handed to LLVMFuzzerTestOneInput in a buffer of its exact size. A broken property
 * aborts (the target prints which); otherwise the program prints how many inputs ran and exits 0.
 * Exits 77 (skipped) when no input was found.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n_run;

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
    if (!data || (size > 0 && fread(data, 1, (size_t)size, f) != (size_t)size)) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    if (getenv("TFM_FUZZ_VERBOSE")) fprintf(stderr, "input %s (%ld bytes)\n", path, size);
    LLVMFuzzerTestOneInput(data, (size_t)size);
    free(data);
    n_run++;
}

static void run_path(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return;
    if (!S_ISDIR(sb.st_mode)) {
        run_file(path);
        return;
    }
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            size_t len = strlen(path) + strlen(names[i]->d_name) + 2;
            char *child = malloc(len);
            snprintf(child, len, "%s/%s", path, names[i]->d_name);
            run_path(child);
            free(child);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) run_path(argv[i]);
    printf("%s: %d inputs ran without a failure\n", argv[0], n_run);
    return n_run ? 0 : 77;
}
