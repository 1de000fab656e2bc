/*
 * step.cu — decode steps recorded once as CUDA graphs and replayed.
 *
 * step_begin(key, pos, token) writes pos and token into device memory (a one-thread kernel, queued
 * before the graph). The first time a key is seen it starts stream capture; the core then issues
 * the step's ops, whose position/token-dependent kernels read that device state, and step_end
 * instantiates the graph and launches it (so the recorded step also runs). Later steps with the same
 * key just launch the graph. A few keys are kept, least recently used first out.
 *
 * If the step cannot be recorded (a blocking call inside it, an error, capture refused), the work
 * recorded so far runs once and the key is marked to run eagerly from then on.
 */
#include "fusion.h"

static void step_clear(tfm_cuda_step *s) {
    if (s->exec) cudaGraphExecDestroy(s->exec);
    s->exec = NULL;
    s->key = 0;
    s->broken = 0;
    s->last_use = 0;
}

void tfm_cuda_steps_free(tfm_backend *be) {
    for (int i = 0; i < TFM_CUDA_MAX_STEPS; i++) step_clear(&be->steps[i]);
}

static tfm_cuda_step *step_find(tfm_backend *be, uint64_t key) {
    for (int i = 0; i < TFM_CUDA_MAX_STEPS; i++)
        if (be->steps[i].last_use && be->steps[i].key == key) return &be->steps[i];
    return NULL;
}

static tfm_cuda_step *step_slot(tfm_backend *be) {
    tfm_cuda_step *victim = &be->steps[0];
    for (int i = 0; i < TFM_CUDA_MAX_STEPS; i++) {
        if (!be->steps[i].last_use) return &be->steps[i];
        if (be->steps[i].last_use < victim->last_use) victim = &be->steps[i];
    }
    step_clear(victim);
    return victim;
}

int tfm_cuda_step_begin(tfm_backend *be, uint64_t key, int pos, int32_t token) {
    if (be->recording) tfm_cuda_step_abandon(be, "step_begin inside a step");
    /* a step starts with nothing held back or owed, so every recording starts from the same state */
    if (tfm_cuda_settle_all(be) != TFM_OK) return 0;
    be->step_pos = pos;
    if (!be->use_graphs) return 0;
    tfm_cuda_step *s = step_find(be, key);
    if (s && s->broken) return 0;
    if (tfm_cuda_set_step(be, pos, token) != TFM_OK) return 0;
    if (s && s->exec) {
        s->last_use = ++be->step_clock;
        if (cudaGraphLaunch(s->exec, be->stream) == cudaSuccess) return 1;
        /* a launch that fails leaves the stream as it was: run this step eagerly */
        cudaGetLastError();
        s->broken = 1;
        return 0;
    }
    if (!s) {
        s = step_slot(be);
        s->key = key;
    }
    s->last_use = ++be->step_clock;
    if (cudaStreamBeginCapture(be->stream, cudaStreamCaptureModeRelaxed) != cudaSuccess) {
        cudaGetLastError();
        s->broken = 1;
        return 0;
    }
    be->recording = 1;
    be->step_error = 0;
    be->step_index = (int)(s - be->steps);
    return 0;
}

/* Ends the capture; on success *exec holds the instantiated graph. */
static tfm_status finish_capture(tfm_backend *be, cudaGraphExec_t *exec) {
    *exec = NULL;
    be->recording = 0;
    cudaGraph_t graph = NULL;
    cudaError_t err = cudaStreamEndCapture(be->stream, &graph);
    if (err != cudaSuccess) {
        if (graph) cudaGraphDestroy(graph);
        return tfm_cuda_fail(be, err, "cudaStreamEndCapture (recording a decode step)", __FILE__, __LINE__);
    }
    err = cudaGraphInstantiate(exec, graph, 0);
    cudaGraphDestroy(graph);
    if (err != cudaSuccess) {
        *exec = NULL;
        return tfm_cuda_fail(be, err, "cudaGraphInstantiate (decode step)", __FILE__, __LINE__);
    }
    return TFM_OK;
}

tfm_status tfm_cuda_step_end(tfm_backend *be) {
    if (!be->recording) return tfm_cuda_settle(be);
    /* ends with nothing held back or owed (inside the recording, so replays do the same) */
    if (tfm_cuda_settle_all(be) != TFM_OK) be->step_error = 1;
    tfm_cuda_step *s = &be->steps[be->step_index];
    int op_failed = be->step_error;
    cudaGraphExec_t exec;
    tfm_status st = finish_capture(be, &exec);
    if (st) {
        s->broken = 1;
        return st;
    }
    CUDA_TRY(be, cudaGraphLaunch(exec, be->stream));
    if (op_failed) {
        /* an op reported an error: what was recorded ran once, but it is not a complete step */
        cudaGraphExecDestroy(exec);
        s->broken = 1;
        return TFM_OK;
    }
    s->exec = exec;
    return TFM_OK;
}

tfm_status tfm_cuda_step_abandon(tfm_backend *be, const char *why) {
    if (!be->recording) return TFM_OK;
    tfm_cuda_step *s = &be->steps[be->step_index];
    s->broken = 1;
    if (be->host) be->host->log(TFM_LOG_DEBUG, "cuda: decode step not recorded (%s); running it eagerly", why);
    if (tfm_cuda_settle(be) != TFM_OK) be->step_error = 1;
    cudaGraphExec_t exec;
    tfm_status st = finish_capture(be, &exec);
    if (st) return st;
    cudaError_t err = cudaGraphLaunch(exec, be->stream);
    cudaGraphExecDestroy(exec);
    CUDA_TRY(be, err);
    return TFM_OK;
}
