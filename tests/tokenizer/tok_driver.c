/*
 * tok_driver.c — line-oriented front end to libtfm's tokenizer for the conformance tests.
 *
 *   tok_driver MODEL [--special] [--bos] [--eos]       ids of each stdin line, space-separated
 *   tok_driver MODEL --decode                          text of each stdin line of ids
 *   tok_driver MODEL --check [--special]               per line: "<rt> <stream>" where rt = 1 if
 *        decode(encode(line)) == line, stream = 1 if the streaming decoder, fed one id at a time,
 *        gives exactly decode's bytes and never releases a partial UTF-8 character
 *   tok_driver MODEL --bench FILE [--repeat N]         encodes FILE's lines; prints MB/s, tokens
 *   tok_driver MODEL --info                            kind, vocabulary size, bos, eos
 *
 * A line is the bytes before '\n' (a '\r' stays part of it), so CRLF and invalid UTF-8 reach the
 * tokenizer unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tfm/tfm.h"

static int32_t *ids_buf;
static size_t ids_cap;
static char *text_buf;
static size_t text_cap;

static tfm_status encode(const tfm_tokenizer *t, const char *s, size_t n, uint32_t flags, size_t *n_ids)
{
    tfm_status st = tfm_tokenize(t, s, n, flags, ids_buf, ids_cap, n_ids);
    if (st == TFM_E_BUFFER_TOO_SMALL) {
        ids_cap = *n_ids + 16;
        ids_buf = realloc(ids_buf, ids_cap * sizeof *ids_buf);
        if (!ids_buf) return TFM_E_OOM;
        st = tfm_tokenize(t, s, n, flags, ids_buf, ids_cap, n_ids);
    }
    return st;
}

static tfm_status decode(const tfm_tokenizer *t, const int32_t *ids, size_t n, size_t *len)
{
    tfm_status st = tfm_detokenize(t, ids, n, text_buf, text_cap, len);
    if (st == TFM_E_BUFFER_TOO_SMALL) {
        text_cap = *len + 16;
        text_buf = realloc(text_buf, text_cap);
        if (!text_buf) return TFM_E_OOM;
        st = tfm_detokenize(t, ids, n, text_buf, text_cap, len);
    }
    return st;
}

/* 1 if s[0..n) holds no partial UTF-8 character at its end or start (a lead byte's tail is cut). */
static int utf8_whole(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n > 0 && (u[0] & 0xC0) == 0x80) return 0;
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char b = u[n - back];
        if ((b & 0xC0) == 0x80) continue;
        size_t need = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        return need <= back;
    }
    return 1;
}

static int check_stream(const tfm_tokenizer *t, const int32_t *ids, size_t n, const char *expect, size_t expect_len)
{
    tfm_text_stream *ts;
    if (tfm_text_stream_create(t, &ts) != TFM_OK) return 0;
    char *acc = malloc(expect_len + 64);
    size_t acc_len = 0, acc_cap = expect_len + 64;
    int ok = 1;
    for (size_t i = 0; i <= n && ok; i++) {
        const char *p;
        size_t len;
        tfm_status st = i < n ? tfm_text_stream_push(ts, ids[i], &p, &len) : tfm_text_stream_flush(ts, &p, &len);
        if (st != TFM_OK) ok = 0;
        /* Pieces are whole characters unless the stream holds malformed bytes it has to flush. */
        else if (i < n && !utf8_whole(p, len)) ok = 0;
        else {
            if (acc_len + len > acc_cap) {
                acc_cap = (acc_len + len) * 2;
                acc = realloc(acc, acc_cap);
            }
            memcpy(acc + acc_len, p, len);
            acc_len += len;
        }
    }
    if (ok) ok = acc_len == expect_len && memcmp(acc, expect, acc_len) == 0;
    free(acc);
    tfm_text_stream_free(ts);
    return ok;
}

static char *read_line(FILE *fp, size_t *len, int *eof)
{
    static char *buf;
    static size_t cap;
    size_t n = 0;
    int c;
    *eof = 0;
    while ((c = fgetc(fp)) != EOF && c != '\n') {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
        }
        buf[n++] = (char)c;
    }
    if (c == EOF && n == 0) {
        *eof = 1;
        return NULL;
    }
    if (!buf) buf = malloc(cap = 16);
    buf[n] = 0;
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [--special] [--bos] [--eos] [--decode|--check|--info|--bench FILE]\n", argv[0]);
        return 2;
    }
    uint32_t flags = 0;
    int mode_decode = 0, mode_check = 0, mode_info = 0, repeat = 1;
    const char *bench = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--special")) flags |= TFM_TOKENIZE_PARSE_SPECIAL;
        else if (!strcmp(argv[i], "--bos")) flags |= TFM_TOKENIZE_ADD_BOS;
        else if (!strcmp(argv[i], "--eos")) flags |= TFM_TOKENIZE_ADD_EOS;
        else if (!strcmp(argv[i], "--defaults")) flags |= TFM_TOKENIZE_MODEL_DEFAULTS;
        else if (!strcmp(argv[i], "--decode")) mode_decode = 1;
        else if (!strcmp(argv[i], "--check")) mode_check = 1;
        else if (!strcmp(argv[i], "--info")) mode_info = 1;
        else if (!strcmp(argv[i], "--bench") && i + 1 < argc) bench = argv[++i];
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    tfm_tokenizer *t;
    if (tfm_tokenizer_load(argv[1], &t) != TFM_OK) {
        fprintf(stderr, "load %s: %s\n", argv[1], tfm_last_error());
        return 1;
    }
    if (mode_info) {
        printf("kind %s\nvocab %d\nbos %d\neos %d\n", tfm_tokenizer_kind(t), tfm_tokenizer_vocab_size(t),
               tfm_tokenizer_bos(t), tfm_tokenizer_eos(t));
        tfm_tokenizer_free(t);
        return 0;
    }
    if (bench) {
        FILE *fp = fopen(bench, "rb");
        if (!fp) {
            perror(bench);
            return 1;
        }
        fseek(fp, 0, SEEK_END);
        long size = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        char *data = malloc((size_t)size + 1);
        if (fread(data, 1, (size_t)size, fp) != (size_t)size) return 1;
        fclose(fp);
        double best = 1e30;
        size_t tokens = 0;
        for (int r = 0; r < repeat; r++) {
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            tokens = 0;
            for (long pos = 0; pos < size;) {
                char *nl = memchr(data + pos, '\n', (size_t)(size - pos));
                size_t len = nl ? (size_t)(nl - (data + pos)) : (size_t)(size - pos);
                size_t n;
                if (encode(t, data + pos, len, flags, &n) != TFM_OK) return 1;
                tokens += n;
                pos += (long)len + 1;
            }
            clock_gettime(CLOCK_MONOTONIC, &b);
            double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
            if (s < best) best = s;
        }
        printf("%.2f MB/s %zu tokens %.3f s %ld bytes\n", (double)size / best / 1e6, tokens, best, size);
        free(data);
        tfm_tokenizer_free(t);
        return 0;
    }

    int eof, rc = 0;
    size_t len;
    char *line;
    while ((line = read_line(stdin, &len, &eof)) != NULL) {
        if (mode_decode) {
            size_t n = 0;
            for (char *p = line; *p;) {
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p) break;
                if (n == ids_cap) {
                    ids_cap = ids_cap ? ids_cap * 2 : 256;
                    ids_buf = realloc(ids_buf, ids_cap * sizeof *ids_buf);
                }
                ids_buf[n++] = (int32_t)v;
                p = end;
            }
            size_t out_len;
            if (decode(t, ids_buf, n, &out_len) != TFM_OK) {
                fprintf(stderr, "decode: %s\n", tfm_last_error());
                rc = 1;
                out_len = 0;
            }
            fwrite(text_buf, 1, out_len, stdout);
            putchar('\n');
            continue;
        }
        size_t n;
        if (encode(t, line, len, flags, &n) != TFM_OK) {
            fprintf(stderr, "encode: %s\n", tfm_last_error());
            rc = 1;
            putchar('\n');
            continue;
        }
        if (mode_check) {
            size_t out_len;
            int rt = 0, stream = 0;
            if (decode(t, ids_buf, n, &out_len) == TFM_OK) {
                rt = out_len == len && memcmp(text_buf, line, len) == 0;
                char *copy = malloc(out_len + 1);
                memcpy(copy, text_buf, out_len);
                stream = check_stream(t, ids_buf, n, copy, out_len);
                free(copy);
            }
            printf("%d %d\n", rt, stream);
            continue;
        }
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids_buf[i]);
        putchar('\n');
    }
    tfm_tokenizer_free(t);
    free(ids_buf);
    free(text_buf);
    return rc;
}
