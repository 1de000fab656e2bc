/* tensor.h — host tensor handles (internal constructors). */
#ifndef TFM_LIB_TENSOR_H
#define TFM_LIB_TENSOR_H

#include "tfm/tfm.h"

/* A handle viewing memory it does not own (e.g. a session's logits). */
tfm_status tfm_tensor_view(tfm_dtype dtype, int ndim, const int64_t *shape, void *data, tfm_tensor **out);

/* Bytes of one element for plain dtypes; 0 for block-quantised ones. */
size_t tfm_dtype_size(tfm_dtype dtype);

/* Bytes of a row of `cols` elements (block types: cols must be a multiple of the block size);
 * 0 if the dtype is unknown or cols does not divide into blocks. */
size_t tfm_row_bytes(tfm_dtype dtype, int64_t cols);

#endif
