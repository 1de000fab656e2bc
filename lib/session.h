/* session.h — the session object (internal; used by generate.c). */
#ifndef TFM_LIB_SESSION_H
#define TFM_LIB_SESSION_H

#include "graph/forward.h"

struct tfm_session {
    const tfm_model *model;
    tfm_session_params params;
    tfm_run_state rs;
    int32_t n_past;
    int32_t *tokens;          /* [n_ctx] the sequence so far (for repetition penalties) */
    float *logits;            /* host: [logits_capacity][n_vocab] */
    size_t logits_capacity;   /* rows */
    int32_t n_logits;         /* rows valid from the last eval; 0 = none */
    size_t reserved_bytes;    /* counted against the model's memory limit */
};

#endif
