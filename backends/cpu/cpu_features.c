/* cpu_features.c — run-time detection of AVX2/F16C/FMA and AVX-512 (F, BW, VL). */
#include "cpu_features.h"

#include <stdlib.h>
#include <string.h>

#if defined(TFM_CPU_X86)
#include <cpuid.h>

/* Read from CPUID and XGETBV directly: compilers differ in which names __builtin_cpu_supports
 * knows (clang 14 has no "f16c"), and the OS must also save the wider registers (XCR0). */
typedef struct {
    unsigned ecx1, ebx7, ecx7;
    unsigned long long xcr0;
} cpu_bits;

static cpu_bits read_cpu_bits(void) {
    cpu_bits b = {0, 0, 0, 0};
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return b;
    b.ecx1 = ecx;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        b.ebx7 = ebx;
        b.ecx7 = ecx;
    }
    if (b.ecx1 & (1u << 27)) { /* OSXSAVE: XGETBV is usable */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        b.xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    return b;
}
#endif

static int has_avx2(void) {
#if defined(TFM_CPU_X86)
    cpu_bits b = read_cpu_bits();
    int os_avx = (b.xcr0 & 0x6) == 0x6;                         /* XMM and YMM state */
    int fma = b.ecx1 & (1u << 12), avx = b.ecx1 & (1u << 28), f16c = b.ecx1 & (1u << 29);
    int avx2 = b.ebx7 & (1u << 5);
    return os_avx && fma && avx && f16c && avx2;
#else
    return 0;
#endif
}

static int has_avx512(void) {
#if defined(TFM_CPU_X86)
    cpu_bits b = read_cpu_bits();
    int os_avx512 = (b.xcr0 & 0xE6) == 0xE6;                    /* plus opmask and ZMM state */
    int f = b.ebx7 & (1u << 16), bw = b.ebx7 & (1u << 30), vl = b.ebx7 & (1u << 31);
    return has_avx2() && os_avx512 && f && bw && vl;
#else
    return 0;
#endif
}

static int has_avx512vnni(void) {
#if defined(TFM_CPU_X86) && defined(TFM_CPU_VNNI)
    cpu_bits b = read_cpu_bits();
    return has_avx512() && (b.ecx7 & (1u << 11));
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
