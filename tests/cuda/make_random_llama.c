/* make_random_llama.c — writes a Hugging Face Llama directory (config.json + model.safetensors) with
 * random f16 or bf16 weights, fast: one thread per core fills the tensors straight into the file.
 * It exists for the GPU benchmark, where a 7B-shaped model (13 GB) must be made on the benchmark
 * machine itself in seconds; tests use tests/tools/make_model.py instead.
 *
 *   make_random_llama DIR f16|bf16 [dim layers heads kv_heads ffn vocab]    (default: Llama-2-7B shape)
 *
 * Matrices are uniform with std 1/sqrt(fan_in) (the LM head 4x), norm gains 1 + U(-0.1, 0.1). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct tensor {
    char name[96];
    int64_t rows, cols; /* rows 0: a vector of cols */
    float scale;        /* uniform half-width; 0 for norm gains */
    uint64_t offset;    /* in the data section */
} tensor;

typedef struct job {
    int fd;
    uint64_t data_start;
    const tensor *t;
    int is_bf16;
    int64_t begin, end; /* element range */
    uint64_t seed;
} job;

static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x477ff000u) return sign | 0x7c00;
    if (ax < 0x38800000u) {
        float s;
        memcpy(&s, &ax, 4);
        s += 0.5f;
        uint32_t b;
        memcpy(&b, &s, 4);
        return (uint16_t)(sign | (b - 0x3f000000u));
    }
    ax += 0xfffu + ((ax >> 13) & 1);
    ax -= (uint32_t)(127 - 15) << 23;
    return (uint16_t)(sign | (ax >> 13));
}

static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

static void *fill(void *arg) {
    job *j = arg;
    enum { CHUNK = 1 << 20 };
    uint16_t *buf = malloc(CHUNK * sizeof *buf);
    uint64_t s = j->seed * 0x9e3779b97f4a7c15ull + (uint64_t)j->begin;
    for (int64_t at = j->begin; at < j->end; at += CHUNK) {
        int64_t n = j->end - at < CHUNK ? j->end - at : CHUNK;
        for (int64_t i = 0; i < n; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            float u = (float)(s >> 40) / 16777216.0f * 2.0f - 1.0f; /* U(-1, 1) */
            float v = j->t->scale > 0 ? u * j->t->scale : 1.0f + 0.1f * u;
            buf[i] = j->is_bf16 ? f32_to_bf16(v) : f32_to_f16(v);
        }
        size_t bytes = (size_t)n * 2;
        off_t off = (off_t)(j->data_start + j->t->offset + (uint64_t)at * 2);
        if (pwrite(j->fd, buf, bytes, off) != (ssize_t)bytes) {
            perror("pwrite");
            exit(1);
        }
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 9) {
        fprintf(stderr, "usage: %s DIR f16|bf16 [dim layers heads kv_heads ffn vocab]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int is_bf16 = strcmp(argv[2], "bf16") == 0;
    if (!is_bf16 && strcmp(argv[2], "f16") != 0) {
        fprintf(stderr, "dtype must be f16 or bf16\n");
        return 2;
    }
    int64_t dim = 4096, layers = 32, heads = 32, kv = 32, ffn = 11008, vocab = 32000;
    if (argc == 9) {
        dim = atoll(argv[3]), layers = atoll(argv[4]), heads = atoll(argv[5]), kv = atoll(argv[6]);
        ffn = atoll(argv[7]), vocab = atoll(argv[8]);
    }
    int64_t hd = dim / heads;
    mkdir(dir, 0755);

    int cap = (int)(layers * 9 + 3), nt = 0;
    tensor *ts = calloc((size_t)cap, sizeof *ts);
#define ADD(nm, r, c, sc)                                                  \
    do {                                                                   \
        snprintf(ts[nt].name, sizeof ts[nt].name, "%s", nm);               \
        ts[nt].rows = (r), ts[nt].cols = (c), ts[nt].scale = (float)(sc);  \
        nt++;                                                              \
    } while (0)
    float s_in = sqrtf(3.0f / (float)dim), s_ff = sqrtf(3.0f / (float)ffn);
    ADD("model.embed_tokens.weight", vocab, dim, 1.0f);
    char nm[96];
    for (int l = 0; l < layers; l++) {
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        ADD(nm, 0, dim, 0);
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.q_proj.weight", l);
        ADD(nm, heads * hd, dim, 1.5f * s_in);
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.k_proj.weight", l);
        ADD(nm, kv * hd, dim, 1.5f * s_in);
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.v_proj.weight", l);
        ADD(nm, kv * hd, dim, s_in);
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.o_proj.weight", l);
        ADD(nm, dim, heads * hd, s_in);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD(nm, 0, dim, 0);
        snprintf(nm, sizeof nm, "model.layers.%d.mlp.gate_proj.weight", l);
        ADD(nm, ffn, dim, s_in);
        snprintf(nm, sizeof nm, "model.layers.%d.mlp.up_proj.weight", l);
        ADD(nm, ffn, dim, s_in);
        snprintf(nm, sizeof nm, "model.layers.%d.mlp.down_proj.weight", l);
        ADD(nm, dim, ffn, s_ff);
    }
    ADD("model.norm.weight", 0, dim, 0);
    ADD("lm_head.weight", vocab, dim, 4.0f * s_in);

    /* header JSON */
    size_t hcap = (size_t)nt * 160 + 64, hlen = 0;
    char *hdr = malloc(hcap);
    uint64_t off = 0;
    const char *dt = is_bf16 ? "BF16" : "F16";
    hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, "{");
    for (int i = 0; i < nt; i++) {
        int64_t count = (ts[i].rows ? ts[i].rows : 1) * ts[i].cols;
        ts[i].offset = off;
        if (ts[i].rows)
            hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],"
                                     "\"data_offsets\":[%llu,%llu]}", i ? "," : "", ts[i].name, dt,
                                     (long long)ts[i].rows, (long long)ts[i].cols, (unsigned long long)off,
                                     (unsigned long long)(off + (uint64_t)count * 2));
        else
            hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],"
                                     "\"data_offsets\":[%llu,%llu]}", i ? "," : "", ts[i].name, dt,
                                     (long long)ts[i].cols, (unsigned long long)off,
                                     (unsigned long long)(off + (uint64_t)count * 2));
        off += (uint64_t)count * 2;
    }
    hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, "}");
    while (hlen % 8) hdr[hlen++] = ' ';

    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    uint64_t hl = hlen;
    if (write(fd, &hl, 8) != 8 || write(fd, hdr, hlen) != (ssize_t)hlen) {
        perror("write");
        return 1;
    }
    uint64_t data_start = 8 + hlen;
    if (ftruncate(fd, (off_t)(data_start + off)) != 0) perror("ftruncate");

    int n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 64) n_threads = 64;
    pthread_t th[64];
    job jobs[64];
    for (int i = 0; i < nt; i++) {
        int64_t count = (ts[i].rows ? ts[i].rows : 1) * ts[i].cols;
        int parts = count < (1 << 22) ? 1 : n_threads;
        for (int p = 0; p < parts; p++) {
            jobs[p] = (job){fd, data_start, &ts[i], is_bf16, count * p / parts, count * (p + 1) / parts,
                            (uint64_t)i * 1000003u + 17};
            pthread_create(&th[p], NULL, fill, &jobs[p]);
        }
        for (int p = 0; p < parts; p++) pthread_join(th[p], NULL);
    }
    close(fd);

    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f,
            "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %lld, "
            "\"intermediate_size\": %lld, \"num_hidden_layers\": %lld, \"num_attention_heads\": %lld, "
            "\"num_key_value_heads\": %lld, \"vocab_size\": %lld, \"max_position_embeddings\": 4096, "
            "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"hidden_act\": \"silu\", "
            "\"tie_word_embeddings\": false, \"torch_dtype\": \"%s\"}\n",
            (long long)dim, (long long)ffn, (long long)layers, (long long)heads, (long long)kv, (long long)vocab,
            is_bf16 ? "bfloat16" : "float16");
    fclose(f);
    printf("%s: %d tensors, %.2f GB of %s\n", dir, nt, (double)off / 1e9, argv[2]);
    return 0;
}
