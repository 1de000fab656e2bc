/*
 * generate.c — the common generation loop: evaluate the prompt, then sample, stream and evaluate
 * one token at a time until a stop condition.
 */
#include <string.h>

#include "error.h"
#include "session.h"

static tfm_generate_params generate_params_defaults(void) {
    tfm_generate_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.max_tokens = 128;
    return p;
}

TFM_API void tfm_generate_params_init(tfm_generate_params *params, size_t struct_size) {
    if (!params || struct_size < sizeof params->struct_size) return;
    tfm_generate_params p = generate_params_defaults();
    memset(params, 0, struct_size);
    memcpy(params, &p, struct_size < sizeof p ? struct_size : sizeof p);
    params->struct_size = struct_size;
}

static int is_stop(const tfm_generate_params *p, int32_t eos, int32_t id) {
    if (!p->ignore_eos && eos >= 0 && id == eos) return 1;
    for (size_t i = 0; i < p->n_stop_ids; i++)
        if (p->stop_ids[i] == id) return 1;
    return 0;
}

TFM_API tfm_status tfm_session_generate(tfm_session *s, tfm_sampler *sampler, const int32_t *prompt, size_t n_prompt,
                                        const tfm_generate_params *params, int32_t *out_ids, size_t capacity,
                                        size_t *n_out) {
    tfm_error_clear();
    if (n_out) *n_out = 0;
    if (!s || !sampler) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_session_generate: session or sampler is NULL");
    tfm_generate_params p = generate_params_defaults();
    if (params) {
        if (params->struct_size < offsetof(tfm_generate_params, max_tokens) + sizeof(int32_t))
            return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_generate_params.struct_size %zu is too small",
                             params->struct_size);
        memcpy(&p, params, params->struct_size < sizeof p ? params->struct_size : sizeof p);
    }
    if (p.max_tokens < 0) return tfm_error(TFM_E_INVALID_ARGUMENT, "max_tokens %d must be >= 0", p.max_tokens);
    if (p.n_stop_ids && !p.stop_ids) return tfm_error(TFM_E_INVALID_ARGUMENT, "stop_ids is NULL");

    tfm_status st = tfm_session_eval(s, prompt, n_prompt);
    if (st) return st;
    if (s->n_logits == 0) return tfm_error(TFM_E_STATE, "tfm_session_generate: no prompt and no logits to continue from");

    const tfm_tokenizer *tok = tfm_model_tokenizer(s->model);
    int32_t eos = tok ? tfm_tokenizer_eos(tok) : -1;
    tfm_text_stream *stream = NULL;
    if (p.on_token && tok && (st = tfm_text_stream_create(tok, &stream))) return st;

    size_t produced = 0;
    int stopped_by_caller = 0;
    for (int32_t i = 0; i < p.max_tokens; i++) {
        int32_t id;
        st = tfm_sampler_sample(sampler, tfm_session_last_logits(s), s->model->hp.n_vocab, s->tokens,
                                (size_t)s->n_past, &id);
        if (st || is_stop(&p, eos, id)) break;
        if (out_ids && produced < capacity) out_ids[produced] = id;
        produced++;
        if (p.on_token) {
            const char *text = "";
            size_t len = 0;
            if (stream && (st = tfm_text_stream_push(stream, id, &text, &len))) break;
            if (p.on_token(id, text, len, p.user_data)) {
                stopped_by_caller = 1;
                break;
            }
        }
        if (s->n_past >= s->params.n_ctx) break; /* context full: return what was generated */
        if ((st = tfm_session_eval(s, &id, 1))) break;
    }
    /* Deliver any bytes held back at the end (an incomplete character comes out as U+FFFD). */
    if (stream && !st && !stopped_by_caller) {
        const char *text;
        size_t len;
        if (tfm_text_stream_flush(stream, &text, &len) == TFM_OK && len) p.on_token(-1, text, len, p.user_data);
    }
    tfm_text_stream_free(stream);
    if (n_out) *n_out = produced;
    return st;
}
