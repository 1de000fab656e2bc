/* error.c — thread-local error messages, status names and the host's log callback. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

static tfm_log_fn log_callback;
static void *log_user_data;
static tfm_log_level log_max_level = TFM_LOG_WARN;

/* Formats into a scratch buffer first: callers often pass tfm_last_error() itself as an argument
 * (to wrap a lower layer's message), and vsnprintf must not read from the buffer it writes. */
static void set_message_v(const char *fmt, va_list ap) {
    char msg[sizeof last_error];
    vsnprintf(msg, sizeof msg, fmt, ap);
    memcpy(last_error, msg, sizeof msg);
}

tfm_status tfm_error(tfm_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_message_v(fmt, ap);
    va_end(ap);
    tfm_log(TFM_LOG_DEBUG, "%s: %s", tfm_status_string(status), last_error);
    return status;
}

void tfm_error_set_message(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_message_v(fmt, ap);
    va_end(ap);
}

void tfm_error_clear(void) { last_error[0] = '\0'; }

TFM_API const char *tfm_last_error(void) { return last_error; }

TFM_API const char *tfm_status_string(tfm_status status) {
    switch (status) {
    case TFM_OK: return "ok";
    case TFM_E_INVALID_ARGUMENT: return "invalid argument";
    case TFM_E_IO: return "i/o error";
    case TFM_E_FORMAT: return "malformed file";
    case TFM_E_UNSUPPORTED: return "unsupported";
    case TFM_E_OOM: return "out of memory";
    case TFM_E_CONTEXT_FULL: return "context full";
    case TFM_E_BACKEND: return "backend error";
    case TFM_E_ABORTED: return "aborted";
    case TFM_E_STATE: return "invalid state";
    case TFM_E_BUFFER_TOO_SMALL: return "buffer too small";
    case TFM_E_INTERNAL: return "internal error";
    }
    return "unknown status";
}

TFM_API void tfm_set_log_callback(tfm_log_fn callback, void *user_data, tfm_log_level max_level) {
    log_callback = callback;
    log_user_data = user_data;
    log_max_level = max_level;
}

void tfm_log(tfm_log_level level, const char *fmt, ...) {
    tfm_log_fn cb = log_callback;
    if (!cb || level > log_max_level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cb(level, msg, log_user_data);
}
