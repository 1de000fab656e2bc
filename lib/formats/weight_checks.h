/*
 * weight_checks.h — checks the format readers apply to what a file declares (internal).
 *
 * tfm_check_finite: a weight holding NaN or ±Inf makes every logit NaN from the first token on, and
 * nothing downstream can say why; the readers therefore scan each tensor they hand to the core once,
 * at load, and refuse the file with a message naming the tensor and the element. The scan reads only
 * exponent bits (for block-quantised types only the blocks' f16 scales), so it costs one pass over
 * the mapped weights.
 *
 * tfm_utf8_valid / tfm_utf8_sanitize: names and keys reach messages and tfm_model_info, which
 * promise UTF-8 text.
 */
#ifndef TFM_LIB_FORMATS_WEIGHT_CHECKS_H
#define TFM_LIB_FORMATS_WEIGHT_CHECKS_H

#include <stddef.h>

#include "model.h"

/* TFM_E_FORMAT ("<label>: tensor '<name>' holds NaN at element i ...") or TFM_OK. Types without a
 * floating-point field are accepted as they are. */
tfm_status tfm_check_finite(const tfm_host_tensor *t, const char *label);

/* 1 if s[0..n) is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF). */
int tfm_utf8_valid(const char *s, size_t n);

/* Replaces each byte of an ill-formed sequence in the NUL-terminated `s` with '?'. */
void tfm_utf8_sanitize(char *s);

#endif
