/* registry.h — the list of backends: built-in ones plus plugins found at run time (internal). */
#ifndef TFM_LIB_REGISTRY_H
#define TFM_LIB_REGISTRY_H

#include "backend.h"

/* Resolves "auto", "cpu", "cuda", ... to an available backend; TFM_E_BACKEND names the problem
 * (unknown name with the list of known ones, or a known backend that cannot run here). */
tfm_status tfm_backend_select(const char *name, const tfm_backend_ops **out);

/* The services handed to backends at init. */
const tfm_backend_host *tfm_backend_host_services(void);

#endif
