/*
 * registry.c — backends compiled in (cpu) and plugins (libtfm-<name>.so) found next to libtfm or in
 * the folders listed in TFM_BACKEND_PATH. The scan runs once, on first use.
 */
#define _GNU_SOURCE
#include "registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define MAX_BACKENDS 8

static const tfm_backend_ops *backends[MAX_BACKENDS];
static int n_backends;
static pthread_once_t scan_once = PTHREAD_ONCE_INIT;

static int already_known(const char *name) {
    for (int i = 0; i < n_backends; i++)
        if (strcmp(backends[i]->name, name) == 0) return 1;
    return 0;
}

static void try_plugin(const char *path) {
    if (n_backends >= MAX_BACKENDS) return;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        tfm_log(TFM_LOG_WARN, "backend plugin %s: %s", path, dlerror());
        return;
    }
    tfm_backend_entry_fn entry = (tfm_backend_entry_fn)dlsym(handle, TFM_BACKEND_ENTRY_SYMBOL);
    const tfm_backend_ops *ops = entry ? entry() : NULL;
    if (!ops || ops->abi_version != TFM_BACKEND_ABI_VERSION || !ops->name) {
        tfm_log(TFM_LOG_WARN, "backend plugin %s: no %s or ABI version %d (libtfm wants %d)", path,
                TFM_BACKEND_ENTRY_SYMBOL, ops ? ops->abi_version : -1, TFM_BACKEND_ABI_VERSION);
        dlclose(handle);
        return;
    }
    if (already_known(ops->name)) {
        dlclose(handle);
        return;
    }
    /* The handle stays open for the life of the process: backend code may still be referenced. */
    backends[n_backends++] = ops;
    tfm_log(TFM_LOG_INFO, "backend plugin '%s' loaded from %s", ops->name, path);
}

static void scan_folder(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "libtfm-", 7) != 0 || len < 10 || strcmp(e->d_name + len - 3, ".so") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        try_plugin(path);
    }
    closedir(d);
}

static void scan(void) {
    backends[n_backends++] = tfm_cpu_backend_ops();

    const char *env = getenv("TFM_BACKEND_PATH");
    if (env && *env) {
        char *copy = strdup(env), *save = NULL;
        for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir; dir = strtok_r(NULL, ":", &save))
            scan_folder(dir);
        free(copy);
    }
    /* The folder libtfm itself was loaded from. */
    Dl_info info;
    if (dladdr((void *)&scan, &info) && info.dli_fname) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", info.dli_fname);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            scan_folder(dir);
        } else {
            scan_folder(".");
        }
    }
}

static void ensure_scanned(void) { pthread_once(&scan_once, scan); }

TFM_API int tfm_backend_count(void) {
    ensure_scanned();
    return n_backends;
}

TFM_API const char *tfm_backend_name(int index) {
    ensure_scanned();
    return (index >= 0 && index < n_backends) ? backends[index]->name : NULL;
}

TFM_API int tfm_backend_available(const char *name) {
    const tfm_backend_ops *ops;
    tfm_error_clear();
    return name && tfm_backend_select(name, &ops) == TFM_OK;
}

tfm_status tfm_backend_select(const char *name, const tfm_backend_ops **out) {
    ensure_scanned();
    *out = NULL;
    if (!name || !*name || strcmp(name, "auto") == 0) {
        const tfm_backend_ops *best = NULL;
        for (int i = 0; i < n_backends; i++)
            if (backends[i]->available() && (!best || backends[i]->score > best->score)) best = backends[i];
        if (!best) return tfm_error(TFM_E_BACKEND, "no backend is available on this machine");
        *out = best;
        return TFM_OK;
    }
    for (int i = 0; i < n_backends; i++) {
        if (strcmp(backends[i]->name, name) != 0) continue;
        if (!backends[i]->available())
            return tfm_error(TFM_E_BACKEND, "backend '%s' is installed but cannot run here (no usable device)", name);
        *out = backends[i];
        return TFM_OK;
    }
    char known[256] = "";
    for (int i = 0; i < n_backends; i++) {
        strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, backends[i]->name, sizeof known - strlen(known) - 1);
    }
    if (strcmp(name, "cuda") == 0)
        return tfm_error(TFM_E_BACKEND, "unknown backend 'cuda': plugin libtfm-cuda.so not found next to libtfm "
                         "or on TFM_BACKEND_PATH (known: %s, auto)", known);
    return tfm_error(TFM_E_BACKEND, "unknown backend '%s' (known: %s, auto)", name, known);
}

static void host_set_error(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tfm_error_set_message("%s", msg);
}

static void host_log(tfm_log_level level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tfm_log(level, "%s", msg);
}

static const tfm_backend_host host_services = {host_set_error, host_log};

const tfm_backend_host *tfm_backend_host_services(void) { return &host_services; }
