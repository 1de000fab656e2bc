/* version.c — the run-time version, to compare with the header's TFM_VERSION_NUMBER. */
#include "tfm/tfm.h"

TFM_API int tfm_version_number(void) { return TFM_VERSION_NUMBER; }

TFM_API const char *tfm_version_string(void) { return TFM_VERSION_STRING; }
