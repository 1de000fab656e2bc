/* tensor.c — host tensor handles: owned data or views into a session's memory. */
#include "tensor.h"

#include <stdlib.h>

#include "error.h"

struct tfm_tensor {
    tfm_dtype dtype;
    int ndim;
    int64_t shape[4];
    void *data;
    size_t nbytes;
    int owns_data;
};

size_t tfm_dtype_size(tfm_dtype dtype) {
    switch (dtype) {
    case TFM_DTYPE_F32: case TFM_DTYPE_I32: return 4;
    case TFM_DTYPE_F16: case TFM_DTYPE_BF16: return 2;
    default: return 0;
    }
}

size_t tfm_row_bytes(tfm_dtype dtype, int64_t cols) {
    size_t block = 0, block_bytes = 0;
    switch (dtype) {
    case TFM_DTYPE_F32: case TFM_DTYPE_I32: case TFM_DTYPE_F16: case TFM_DTYPE_BF16:
        return (size_t)cols * tfm_dtype_size(dtype);
    case TFM_DTYPE_Q8_0: block = 32; block_bytes = 34; break;
    case TFM_DTYPE_Q4_0: block = 32; block_bytes = 18; break;
    case TFM_DTYPE_Q4_K: block = 256; block_bytes = 144; break;
    case TFM_DTYPE_Q5_K: block = 256; block_bytes = 176; break;
    case TFM_DTYPE_Q6_K: block = 256; block_bytes = 210; break;
    default: return 0;
    }
    if (cols % (int64_t)block) return 0;
    return (size_t)(cols / (int64_t)block) * block_bytes;
}

TFM_API const char *tfm_dtype_name(tfm_dtype dtype) {
    switch (dtype) {
    case TFM_DTYPE_F32: return "f32";
    case TFM_DTYPE_F16: return "f16";
    case TFM_DTYPE_BF16: return "bf16";
    case TFM_DTYPE_I32: return "i32";
    case TFM_DTYPE_Q8_0: return "q8_0";
    case TFM_DTYPE_Q4_0: return "q4_0";
    case TFM_DTYPE_Q4_K: return "q4_k";
    case TFM_DTYPE_Q6_K: return "q6_k";
    case TFM_DTYPE_Q5_K: return "q5_k";
    }
    return "unknown";
}

static tfm_status make_tensor(tfm_dtype dtype, int ndim, const int64_t *shape, tfm_tensor **out,
                              tfm_tensor **t_out, size_t *nbytes_out) {
    if (!out) return tfm_error(TFM_E_INVALID_ARGUMENT, "tensor: out is NULL");
    *out = NULL;
    if (ndim < 1 || ndim > 4 || !shape) return tfm_error(TFM_E_INVALID_ARGUMENT, "tensor: ndim %d not in 1..4", ndim);
    size_t elem = tfm_dtype_size(dtype);
    if (!elem) return tfm_error(TFM_E_INVALID_ARGUMENT, "tensor: dtype %s has no fixed element size", tfm_dtype_name(dtype));
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) return tfm_error(TFM_E_INVALID_ARGUMENT, "tensor: dimension %d is %lld", i, (long long)shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX / elem / n) return tfm_error(TFM_E_INVALID_ARGUMENT, "tensor: size overflows");
        n *= (size_t)shape[i];
    }
    tfm_tensor *t = calloc(1, sizeof *t);
    if (!t) return tfm_error(TFM_E_OOM, "tensor: out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->nbytes = n * elem;
    *t_out = t;
    *nbytes_out = t->nbytes;
    return TFM_OK;
}

TFM_API tfm_status tfm_tensor_create(tfm_dtype dtype, int ndim, const int64_t *shape, tfm_tensor **out) {
    tfm_error_clear();
    tfm_tensor *t;
    size_t nbytes;
    tfm_status st = make_tensor(dtype, ndim, shape, out, &t, &nbytes);
    if (st) return st;
    t->data = calloc(1, nbytes);
    if (!t->data) {
        free(t);
        return tfm_error(TFM_E_OOM, "tensor: cannot allocate %zu bytes", nbytes);
    }
    t->owns_data = 1;
    *out = t;
    return TFM_OK;
}

tfm_status tfm_tensor_view(tfm_dtype dtype, int ndim, const int64_t *shape, void *data, tfm_tensor **out) {
    tfm_tensor *t;
    size_t nbytes;
    tfm_status st = make_tensor(dtype, ndim, shape, out, &t, &nbytes);
    if (st) return st;
    t->data = data;
    *out = t;
    return TFM_OK;
}

TFM_API void tfm_tensor_free(tfm_tensor *t) {
    if (!t) return;
    if (t->owns_data) free(t->data);
    free(t);
}

TFM_API tfm_dtype tfm_tensor_dtype(const tfm_tensor *t) { return t ? t->dtype : TFM_DTYPE_F32; }
TFM_API int tfm_tensor_ndim(const tfm_tensor *t) { return t ? t->ndim : 0; }
TFM_API int64_t tfm_tensor_dim(const tfm_tensor *t, int dim) {
    return (t && dim >= 0 && dim < t->ndim) ? t->shape[dim] : 0;
}
TFM_API void *tfm_tensor_data(const tfm_tensor *t) { return t ? t->data : NULL; }
TFM_API size_t tfm_tensor_nbytes(const tfm_tensor *t) { return t ? t->nbytes : 0; }
