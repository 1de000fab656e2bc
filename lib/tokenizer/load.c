/*
 * load.c — tfm_tokenizer_load: recognises the file by its content, not its name.
 *   a directory                 -> Hugging Face model directory (tokenizer.json, else tokenizer.model)
 *   "GGUF" magic                -> the GGUF file's tokenizer.ggml.* vocabulary
 *   '{' first (after spaces)    -> tokenizer.json
 *   anything else               -> a SentencePiece .model (protobuf); a parse failure says so
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "formats/gguf.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_loaders.h"
#include "tokenizer/tokenizer.h"
#include "util/mapped_file.h"

tfm_status tok_read_small_file(const char *path, size_t max_size, char **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    /* A file that cannot be opened (absent, or not a regular file) is TFM_E_IO with no message:
     * callers read optional files with it and must not leave a stale error behind. */
    int fd;
    if (tfm_open_regular_file(path, &fd) != TFM_OK) {
        tfm_error_clear();
        return TFM_E_IO;
    }
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        close(fd);
        return tfm_error(TFM_E_IO, "%s: cannot open", path);
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    tfm_status st = TFM_OK;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *p = realloc(buf, cap);
            if (!p) {
                st = tfm_error(TFM_E_OOM, "%s: out of memory", path);
                break;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, 4096, fp);
        n += got;
        if (n > max_size) {
            st = tfm_error(TFM_E_FORMAT, "%s: larger than %zu bytes", path, max_size);
            break;
        }
        if (got < 4096) {
            if (ferror(fp)) st = tfm_error(TFM_E_IO, "%s: read error", path);
            break;
        }
    }
    fclose(fp);
    if (st != TFM_OK) {
        free(buf);
        return st;
    }
    buf[n] = 0;
    *out = buf;
    *size = n;
    return TFM_OK;
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Loads the tokenizer in a file's bytes; `config_dir` is where HF configs live (or NULL). */
static tfm_status load_bytes(const void *data, size_t size, const char *label, const char *config_dir,
                             tfm_tokenizer **out)
{
    const char *c = data;
    if (size >= 4 && memcmp(c, "GGUF", 4) == 0) {
        gguf_file *f = NULL;
        tfm_status st = gguf_parse(data, size, label, &f);
        if (st != TFM_OK) return st;
        st = tfm_tokenizer_from_gguf(f, label, out);
        gguf_free(f);
        if (st == TFM_OK && !*out)
            st = tfm_error(TFM_E_FORMAT, "%s: GGUF file has no tokenizer (tokenizer.ggml.model)", label);
        return st;
    }
    size_t i = 0;
    while (i < size && (c[i] == ' ' || c[i] == '\t' || c[i] == '\n' || c[i] == '\r')) i++;
    if (i < size && c[i] == '{') return tok_load_hf_json(c, size, label, config_dir, out);
    return tok_load_spm_model(data, size, label, out);
}

static tfm_status load_file(const char *path, const char *config_dir, tfm_tokenizer **out)
{
    tfm_mapped_file mf;
    tfm_status st = tfm_map_file(path, &mf);
    if (st != TFM_OK) return st;
    st = load_bytes(mf.data, mf.size, path, config_dir, out);
    tfm_unmap_file(&mf);
    return st;
}

tfm_status tfm_tokenizer_from_hf_dir(const char *dir, tfm_tokenizer **out)
{
    *out = NULL;
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    if (!path) return tfm_error(TFM_E_OOM, "%s: out of memory", dir);
    struct stat sb;
    tfm_status st = TFM_OK;
    snprintf(path, n, "%s/tokenizer.json", dir);
    if (stat(path, &sb) == 0) {
        st = load_file(path, dir, out);
    } else {
        snprintf(path, n, "%s/tokenizer.model", dir);
        if (stat(path, &sb) == 0) st = load_file(path, dir, out);
        if (st == TFM_OK && *out && (st = tok_apply_hf_configs(*out, dir)) != TFM_OK) { /* e.g. Llama-2's add_bos_token */
            tfm_tokenizer_free(*out);
            *out = NULL;
        }
    }
    free(path);
    return st;
}

tfm_status tfm_tokenizer_load(const char *path, tfm_tokenizer **out)
{
    tfm_error_clear();
    if (out) *out = NULL;
    if (!path || !out) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_tokenizer_load: NULL path or out");
    if (is_dir(path)) {
        tfm_status st = tfm_tokenizer_from_hf_dir(path, out);
        if (st == TFM_OK && !*out)
            st = tfm_error(TFM_E_IO, "%s: directory holds neither tokenizer.json nor tokenizer.model", path);
        return st;
    }
    /* Configs (tokenizer_config.json, ...) next to a tokenizer.json count too. */
    char *dir = strdup(path);
    if (!dir) return tfm_error(TFM_E_OOM, "%s: out of memory", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    tfm_status st = load_file(path, dir, out);
    free(dir);
    return st;
}
