/* error.h — thread-local error messages and the log callback (internal). */
#ifndef TFM_LIB_ERROR_H
#define TFM_LIB_ERROR_H

#include "tfm/tfm.h"

#if defined(__GNUC__)
#define TFM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TFM_PRINTF(a, b)
#endif

/* Records a detailed message for tfm_last_error() and returns `status`, so callers can write
 * `return tfm_error(TFM_E_FORMAT, "%s: tensor '%s' ...", path, name);`. */
tfm_status tfm_error(tfm_status status, const char *fmt, ...) TFM_PRINTF(2, 3);

/* Sets the message without a status (used by backends through tfm_backend_host). */
void tfm_error_set_message(const char *fmt, ...) TFM_PRINTF(1, 2);

/* Clears the calling thread's message (public entry points call it on entry). */
void tfm_error_clear(void);

/* Sends a message to the host's log callback if one is installed and the level is enabled. */
void tfm_log(tfm_log_level level, const char *fmt, ...) TFM_PRINTF(2, 3);

#endif
