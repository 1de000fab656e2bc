/* cpu_features.c — run-time detection of AVX2/F16C/FMA and AVX-512 (F, BW, VL). */
#include "cpu_features.h"

#include <stdlib.h>
#include <string.h>

static int has_avx2(void) {
#if defined(TFM_CPU_X86)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

static int has_avx512(void) {
#if defined(TFM_CPU_X86)
    /* libgcc also checks that the OS saves the AVX-512 registers (XCR0). */
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

static int has_avx512vnni(void) {
#if defined(TFM_CPU_X86) && defined(TFM_CPU_VNNI)
    return has_avx512() && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

const tfm_cpu_kernels *tfm_cpu_kernels_named(const char *isa) {
    if (!isa)
        return NULL;
    if (strcmp(isa, "generic") == 0)
        return tfm_cpu_kernels_generic();
#if defined(TFM_CPU_X86)
    if (strcmp(isa, "avx2") == 0 && has_avx2())
        return tfm_cpu_kernels_avx2();
    if (strcmp(isa, "avx512") == 0 && has_avx512())
        return tfm_cpu_kernels_avx512();
#endif
#if defined(TFM_CPU_X86) && defined(TFM_CPU_VNNI)
    if (strcmp(isa, "avx512vnni") == 0 && has_avx512vnni())
        return tfm_cpu_kernels_avx512vnni();
#endif
    return NULL;
}

const tfm_cpu_kernels *tfm_cpu_pick_kernels(void) {
    const tfm_cpu_kernels *k = tfm_cpu_kernels_named(getenv("TFM_CPU_ISA"));
    if (k)
        return k;
    if (has_avx512vnni())
        return tfm_cpu_kernels_named("avx512vnni");
    if (has_avx512())
        return tfm_cpu_kernels_named("avx512");
    if (has_avx2())
        return tfm_cpu_kernels_named("avx2");
    return tfm_cpu_kernels_generic();
}
