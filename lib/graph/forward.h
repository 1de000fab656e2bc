/* forward.h — the decoder forward pass over a session's KV cache (internal). */
#ifndef TFM_LIB_GRAPH_FORWARD_H
#define TFM_LIB_GRAPH_FORWARD_H

#include "model.h"

/* Activation buffers and KV cache of one sequence, in backend memory. */
typedef struct tfm_run_state {
    int n_batch;            /* rows the activation buffers hold */
    int n_ctx;
    tfm_dtype kv_dtype;
    void **k_cache;         /* [n_layer] -> [n_ctx][n_head_kv][head_dim] */
    void **v_cache;
    float *x;               /* [n_batch][n_embd] residual stream */
    float *xb;              /* [n_batch][n_embd] normed input / block output */
    float *q;               /* [n_batch][n_head * head_dim] */
    float *k;               /* [n_batch][n_head_kv * head_dim] */
    float *v;
    float *att;             /* [n_batch][n_head * head_dim] attention output */
    float *hb;              /* [n_batch][n_ff] gate, then silu(gate) * up */
    float *hb2;             /* [n_batch][n_ff] up */
    float *logits;          /* [n_batch][n_vocab] */
    uint64_t step_key;      /* identifies this state for decode-step capture */
} tfm_run_state;

/* Bytes of backend memory a run state needs. */
size_t tfm_run_state_bytes(const tfm_hparams *hp, int n_batch, int n_ctx, tfm_dtype kv_dtype);

tfm_status tfm_run_state_init(tfm_run_state *rs, const tfm_model *m, int n_batch, int n_ctx, tfm_dtype kv_dtype);
void tfm_run_state_free(tfm_run_state *rs, const tfm_model *m);

/* Runs tokens ids[0..n) at positions pos0.. (n <= n_batch; pos0 + n <= n_ctx), appending their keys
 * and values to the cache. Logits of every row (all_logits) or of the last row only are written to
 * host memory `logits_out` ([n or 1][n_vocab]). `abort` is polled between layers. */
tfm_status tfm_forward(const tfm_model *m, tfm_run_state *rs, const int32_t *ids, int n, int pos0,
                       int all_logits, float *logits_out, tfm_abort_fn abort, void *abort_user_data);

#endif
