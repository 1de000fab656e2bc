/*
 * matvec_dot.h — what every decode matvec kernel shares (CUDA C++, internal): the streaming 16-byte
 * weight load and the dot product of one such load with its input values, per storage type.
 *
 * dot16<W>::dot(w, lo, hi, s) adds to s the products of the 16 bytes w (8 values of a 16-bit type,
 * or 4 floats) with lo (and hi: the input values 4..7; unused for f32 weights).
 */
#ifndef TFM_BACKENDS_CUDA_MATVEC_DOT_H
#define TFM_BACKENDS_CUDA_MATVEC_DOT_H

#include "cuda_internal.h"

/* Weights are read once per step: skip L1. */
__device__ __forceinline__ uint4 load_stream16(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

template <typename W> struct dot16;

template <> struct dot16<__nv_bfloat16> {
    static constexpr int n = 8;
    /* a bf16 is the high half of an f32: shifting it into place is the conversion */
    static __device__ __forceinline__ float dot(uint4 w, float4 a, float4 b, float s) {
        s = fmaf(__uint_as_float(w.x << 16), a.x, s);
        s = fmaf(__uint_as_float(w.x & 0xffff0000u), a.y, s);
        s = fmaf(__uint_as_float(w.y << 16), a.z, s);
        s = fmaf(__uint_as_float(w.y & 0xffff0000u), a.w, s);
        s = fmaf(__uint_as_float(w.z << 16), b.x, s);
        s = fmaf(__uint_as_float(w.z & 0xffff0000u), b.y, s);
        s = fmaf(__uint_as_float(w.w << 16), b.z, s);
        s = fmaf(__uint_as_float(w.w & 0xffff0000u), b.w, s);
        return s;
    }
};

template <> struct dot16<__half> {
    static constexpr int n = 8;
    static __device__ __forceinline__ float2 h2(unsigned u) {
        __half2 h = *reinterpret_cast<__half2 *>(&u);
        return __half22float2(h);
    }
    static __device__ __forceinline__ float dot(uint4 w, float4 a, float4 b, float s) {
        float2 p = h2(w.x), q = h2(w.y), r = h2(w.z), t = h2(w.w);
        s = fmaf(p.x, a.x, s);
        s = fmaf(p.y, a.y, s);
        s = fmaf(q.x, a.z, s);
        s = fmaf(q.y, a.w, s);
        s = fmaf(r.x, b.x, s);
        s = fmaf(r.y, b.y, s);
        s = fmaf(t.x, b.z, s);
        s = fmaf(t.y, b.w, s);
        return s;
    }
};

template <> struct dot16<float> {
    static constexpr int n = 4;
    static __device__ __forceinline__ float dot(uint4 w, float4 a, float4, float s) {
        s = fmaf(__uint_as_float(w.x), a.x, s);
        s = fmaf(__uint_as_float(w.y), a.y, s);
        s = fmaf(__uint_as_float(w.z), a.z, s);
        s = fmaf(__uint_as_float(w.w), a.w, s);
        return s;
    }
};

#endif
