/* cpu_features.h — picks the kernel table for the CPU we run on. */
#ifndef TFM_CPU_FEATURES_H
#define TFM_CPU_FEATURES_H

#include "kernels.h"

/* The best kernel table this CPU (and this build) supports. The environment variable TFM_CPU_ISA
 * ("generic", "avx2", "avx512", "avx512vnni") may ask for a lower one, for tests and comparisons; asking for one
 * the CPU lacks falls back to the best available. */
const tfm_cpu_kernels *tfm_cpu_pick_kernels(void);

/* The table of the named instruction set if this CPU and build support it, else NULL. */
const tfm_cpu_kernels *tfm_cpu_kernels_named(const char *isa);

#endif /* TFM_CPU_FEATURES_H */
