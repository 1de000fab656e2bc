/*
 * attention_prefill.cu — flash attention for a batch of queries over an f16/bf16 KV cache.
 *
 * Two kernels share the method: the 64-query kernel first (TFM_CUDA_FA=0, and batches too short to
 * fill the GPU with 128-query blocks), then the wide one (128 queries per block, below).
 *
 * A block of 4 warps takes 64 queries of one head; each warp owns 16 query rows. Key/value tiles of
 * 64 rows are copied to shared memory with cp.async (two buffers: the next tile loads while this one
 * is used). S = Q·Kᵀ and O += P·V run on tensor cores (mma.sync m16n8k16, f32 accumulators); the
 * softmax is online (running max and sum per row, in the log2 domain), and P goes from the S
 * accumulators straight into the A operand of the second product without touching shared memory.
 * Within a head, blocks with the most keys (the last queries under the causal mask) are scheduled first.
 */
#include "cuda_internal.h"

#define LOG2E 1.4426950408889634f
#define FA_BQ 64
#define FA_BK 64
#define FA_THREADS 128

template <typename T> struct mma_type;
template <> struct mma_type<__half> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        __half2 h = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&h);
    }
    static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};
template <> struct mma_type<__nv_bfloat16> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&h);
    }
    static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, bool valid) {
    uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    int size = valid ? 16 : 0; /* 0: fill the 16 bytes with zeros */
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(gmem), "r"(size) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void *smem) {
    uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

template <typename T, int D>
__global__ void __launch_bounds__(FA_THREADS)
    flash_attention_kernel(const float *__restrict__ q, const T *__restrict__ kc, const T *__restrict__ vc,
                           float *__restrict__ out, int n, int pos0, int group, int kv_stride, float qscale,
                           int causal, void *out16, int out16_is_f16) {
    constexpr int LD = D + 8; /* padded shared row: conflict-free fragment loads */
    constexpr int KT = D / 16, NT = FA_BK / 8, DT = D / 8;
    extern __shared__ __align__(16) unsigned char fa_smem[];
    T *Ks = reinterpret_cast<T *>(fa_smem);        /* [2][FA_BK][LD] */
    T *Vs = Ks + 2 * FA_BK * LD;                   /* [2][FA_BK][LD] */

    pdl_wait();
    pdl_launch_dependents();

    const int qb = gridDim.x - 1 - blockIdx.x;
    const int h = blockIdx.y, n_head = gridDim.y, kvh = h / group;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int row_w = qb * FA_BQ + warp * 16; /* first query (index into the batch) of this warp */
    const int q_stride = n_head * D;
    const int L = pos0 + n;
    const int kv_end = causal ? min(L, pos0 + qb * FA_BQ + FA_BQ) : L;
    const int n_tiles = (kv_end + FA_BK - 1) / FA_BK;
    const int warp_last_pos = pos0 + min(row_w + 15, n - 1); /* the last key any row of this warp sees */

    /* Q fragments (A operand), pre-scaled into the log2 domain */
    uint32_t qf[KT][4];
#pragma unroll
    for (int kk = 0; kk < KT; kk++) {
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int row = row_w + g + (r & 1) * 8;
            int col = kk * 16 + 2 * t + (r >> 1) * 8;
            float2 v = make_float2(0.0f, 0.0f);
            if (row < n) v = *reinterpret_cast<const float2 *>(q + (size_t)row * q_stride + h * D + col);
            qf[kk][r] = mma_type<T>::pack(v.x * qscale, v.y * qscale);
        }
    }

    float o[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

    auto load_tile = [&](int tile, int buf) {
        for (int c = threadIdx.x; c < FA_BK * (D / 8); c += FA_THREADS) {
            int r = c / (D / 8), col = (c % (D / 8)) * 8;
            int key = tile * FA_BK + r;
            bool valid = key < kv_end;
            size_t src = (size_t)(valid ? key : 0) * kv_stride + (size_t)kvh * D + col;
            cp_async16(Ks + (buf * FA_BK + r) * LD + col, kc + src, valid);
            cp_async16(Vs + (buf * FA_BK + r) * LD + col, vc + src, valid);
        }
        cp_async_commit();
    };

    load_tile(0, 0);
    for (int tile = 0; tile < n_tiles; tile++) {
        const int buf = tile & 1;
        if (tile + 1 < n_tiles) {
            load_tile(tile + 1, buf ^ 1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();

        const int key0 = tile * FA_BK;
        const bool active = row_w < n && !(causal && key0 > warp_last_pos);
        if (active) {
            /* S = Q Kᵀ for 16 rows x 64 keys */
            float s[NT][4];
#pragma unroll
            for (int nt = 0; nt < NT; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
            const T *kt = Ks + buf * FA_BK * LD;
#pragma unroll
            for (int kk = 0; kk < KT; kk++) {
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
                    const T *kp = kt + (nt * 8 + g) * LD + kk * 16 + 2 * t;
                    uint32_t b0 = *reinterpret_cast<const uint32_t *>(kp);
                    uint32_t b1 = *reinterpret_cast<const uint32_t *>(kp + 8);
                    mma_type<T>::mma(s[nt], qf[kk], b0, b1);
                }
            }
            /* mask keys past the end and, under the causal mask, keys after each query */
            const bool need_mask = key0 + FA_BK > kv_end || (causal && key0 + FA_BK - 1 > pos0 + row_w);
            if (need_mask) {
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        int key = key0 + nt * 8 + 2 * t + (e & 1);
                        int qpos = pos0 + row_w + g + (e >> 1) * 8;
                        if (key >= kv_end || (causal && key > qpos)) s[nt][e] = -INFINITY;
                    }
                }
            }
            /* online softmax */
            float mx0 = m0, mx1 = m1;
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
                mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
            }
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
            const float base0 = mx0 == -INFINITY ? 0.0f : mx0, base1 = mx1 == -INFINITY ? 0.0f : mx1;
            const float c0 = exp2f(m0 - base0), c1 = exp2f(m1 - base1);
            m0 = mx0;
            m1 = mx1;
            l0 *= c0;
            l1 *= c1;
#pragma unroll
            for (int i = 0; i < DT; i++) {
                o[i][0] *= c0;
                o[i][1] *= c0;
                o[i][2] *= c1;
                o[i][3] *= c1;
            }
            uint32_t pf[FA_BK / 16][4];
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                float p0 = exp2f(s[nt][0] - base0), p1 = exp2f(s[nt][1] - base0);
                float p2 = exp2f(s[nt][2] - base1), p3 = exp2f(s[nt][3] - base1);
                l0 += p0 + p1;
                l1 += p2 + p3;
                pf[nt / 2][(nt & 1) * 2 + 0] = mma_type<T>::pack(p0, p1);
                pf[nt / 2][(nt & 1) * 2 + 1] = mma_type<T>::pack(p2, p3);
            }
            /* O += P V */
            const T *vt = Vs + buf * FA_BK * LD;
#pragma unroll
            for (int kc2 = 0; kc2 < FA_BK / 16; kc2++) {
#pragma unroll
                for (int nd = 0; nd < D / 16; nd++) {
                    uint32_t r[4];
                    int key = kc2 * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                    int col = nd * 16 + (lane >> 4) * 8;
                    ldmatrix_x4_trans(r, vt + key * LD + col);
                    mma_type<T>::mma(o[2 * nd], pf[kc2], r[0], r[1]);
                    mma_type<T>::mma(o[2 * nd + 1], pf[kc2], r[2], r[3]);
                }
            }
        }
        __syncthreads(); /* everyone is done with this buffer before it is refilled */
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    const int r0 = row_w + g, r1 = r0 + 8;
#pragma unroll
    for (int i = 0; i < DT; i++) {
        int col = i * 8 + 2 * t;
        float2 v0 = make_float2(o[i][0] * inv0, o[i][1] * inv0), v1 = make_float2(o[i][2] * inv1, o[i][3] * inv1);
        size_t at0 = (size_t)r0 * q_stride + h * D + col, at1 = (size_t)r1 * q_stride + h * D + col;
        if (r0 < n) *reinterpret_cast<float2 *>(out + at0) = v0;
        if (r1 < n) *reinterpret_cast<float2 *>(out + at1) = v1;
        if (out16) { /* the next GEMM's input, rounded once here */
            if (out16_is_f16) {
                if (r0 < n) *reinterpret_cast<__half2 *>(static_cast<__half *>(out16) + at0) = __floats2half2_rn(v0.x, v0.y);
                if (r1 < n) *reinterpret_cast<__half2 *>(static_cast<__half *>(out16) + at1) = __floats2half2_rn(v1.x, v1.y);
            } else {
                if (r0 < n)
                    *reinterpret_cast<__nv_bfloat162 *>(static_cast<__nv_bfloat16 *>(out16) + at0) =
                        __floats2bfloat162_rn(v0.x, v0.y);
                if (r1 < n)
                    *reinterpret_cast<__nv_bfloat162 *>(static_cast<__nv_bfloat16 *>(out16) + at1) =
                        __floats2bfloat162_rn(v1.x, v1.y);
            }
        }
    }
}

/*
 * The wide kernel: a block takes 128 queries of one head, so each key/value tile in shared memory
 * serves twice as many queries and the cache is read from L2 half as often. Three shapes (TFM_CUDA_FA
 * picks one; unset, shape 2 runs once the batch gives every SM two blocks, the 64-query kernel above
 * before that): 1 = 4 warps of 32 query rows (each K/V fragment read from shared memory feeds two
 * MMAs), 2 = 8 warps of 16 rows with two blocks per SM (128 registers), 3 = 8 warps of 16 rows, one
 * block per SM, three tile buffers. All three measured alike (0.145 ms per layer at 2048 queries on
 * an H200, against 0.254 ms for the 64-query kernel).
 * Q is converted (scaled into the log2 domain) into shared memory once; tiles of 64 keys go through a
 * ring of STAGES buffers filled with cp.async, one barrier per tile. Q and K fragments come from
 * ldmatrix, V fragments from ldmatrix.trans; rows padded by 16 bytes keep all three conflict-free.
 * The grid runs heads fastest and query blocks from the last (the longest under the causal mask) to
 * the first, so the long blocks start first across all heads. Only tiles that cross a warp's diagonal
 * or the end of the cache are masked.
 */
#define FA2_BQ 128

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void *smem) {
    uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}
__device__ __forceinline__ float fast_exp2(float x) { /* ex2.approx: 2^-inf = 0 */
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

template <int WARPS, int STAGES, int MIN_BLOCKS> struct flash_wide_shape {
    static constexpr int threads = WARPS * 32, mt = FA2_BQ / (16 * WARPS), stages = STAGES, min_blocks = MIN_BLOCKS;
};

template <typename T, int D> static constexpr size_t flash_wide_smem_bytes(int stages) {
    return ((size_t)FA2_BQ + (size_t)2 * stages * FA_BK) * (D + 8) * sizeof(T);
}

template <typename T, int D, typename S>
__global__ void __launch_bounds__(S::threads, S::min_blocks)
    flash_attention_wide_kernel(const float *__restrict__ q, const T *__restrict__ kc, const T *__restrict__ vc,
                                float *__restrict__ out, int n, int pos0, int group, int kv_stride, float qscale,
                                int causal, void *out16, int out16_is_f16) {
    constexpr int LD = D + 8, MT = S::mt, THREADS = S::threads, STAGES = S::stages;
    constexpr int KT = D / 16, NT = FA_BK / 8, DT = D / 8;
    static_assert(THREADS % (D / 8) == 0 && FA_BK % (THREADS / (D / 8)) == 0, "tile copy must split evenly");
    extern __shared__ __align__(16) unsigned char fa_smem[];
    T *Qs = reinterpret_cast<T *>(fa_smem); /* [FA2_BQ][LD] */
    T *Ks = Qs + FA2_BQ * LD;               /* [STAGES][FA_BK][LD] */
    T *Vs = Ks + STAGES * FA_BK * LD;       /* [STAGES][FA_BK][LD] */

    pdl_wait();
    pdl_launch_dependents();

    const int h = blockIdx.x, n_head = gridDim.x, kvh = h / group;
    const int qb = gridDim.y - 1 - blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int row_w = qb * FA2_BQ + warp * 16 * MT; /* first query (index into the batch) of this warp */
    const int q_stride = n_head * D;
    const int L = pos0 + n;
    const int kv_end = causal ? min(L, pos0 + qb * FA2_BQ + FA2_BQ) : L;
    const int n_tiles = (kv_end + FA_BK - 1) / FA_BK;
    const int warp_last_pos = pos0 + min(row_w + 16 * MT - 1, n - 1); /* the last key any row of this warp sees */

    /* tile copy: each thread moves one 16-byte column piece of every ROWS-th key row of K and V */
    constexpr int ROWS = THREADS / (D / 8);
    const int ld_row = threadIdx.x / (D / 8), ld_col = (threadIdx.x % (D / 8)) * 8;
    const T *ksrc = kc + (size_t)kvh * D + ld_col, *vsrc = vc + (size_t)kvh * D + ld_col;
    auto load_tile = [&](int tile) {
        if (tile < n_tiles) {
            T *kdst = Ks + ((tile % STAGES) * FA_BK + ld_row) * LD + ld_col;
            const int key_base = tile * FA_BK + ld_row;
#pragma unroll
            for (int i = 0; i < FA_BK / ROWS; i++) {
                int key = key_base + i * ROWS;
                bool valid = key < kv_end;
                size_t off = (size_t)(valid ? key : 0) * kv_stride;
                cp_async16(kdst + i * ROWS * LD, ksrc + off, valid);
                cp_async16(kdst + i * ROWS * LD + STAGES * FA_BK * LD, vsrc + off, valid);
            }
        }
        cp_async_commit(); /* an empty group past the end keeps the group count uniform */
    };

#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) load_tile(s);

    /* Q -> shared memory, scaled and rounded to the cache type (rows past the batch are zeros) */
    for (int c = threadIdx.x; c < FA2_BQ * (D / 4); c += THREADS) {
        int r = c / (D / 4), col = (c % (D / 4)) * 4, row = qb * FA2_BQ + r;
        float2 v0 = make_float2(0.0f, 0.0f), v1 = v0;
        if (row < n) {
            const float *src = q + (size_t)row * q_stride + h * D + col;
            v0 = *reinterpret_cast<const float2 *>(src);
            v1 = *reinterpret_cast<const float2 *>(src + 2);
        }
        uint2 p;
        p.x = mma_type<T>::pack(v0.x * qscale, v0.y * qscale);
        p.y = mma_type<T>::pack(v1.x * qscale, v1.y * qscale);
        *reinterpret_cast<uint2 *>(Qs + r * LD + col) = p;
    }

    float o[MT][DT][4];
#pragma unroll
    for (int mi = 0; mi < MT; mi++)
#pragma unroll
        for (int i = 0; i < DT; i++) o[mi][i][0] = o[mi][i][1] = o[mi][i][2] = o[mi][i][3] = 0.0f;
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mi = 0; mi < MT; mi++) m[mi][0] = m[mi][1] = -INFINITY, l[mi][0] = l[mi][1] = 0.0f;

    /* per-lane ldmatrix offsets (elements) */
    const int q_lane = (warp * 16 * MT + (lane & 15)) * LD + (lane >> 4) * 8;
    const int k_lane = ((lane & 7) + (lane >> 4) * 8) * LD + ((lane >> 3) & 1) * 8;
    const int v_lane = ((lane & 7) + ((lane >> 3) & 1) * 8) * LD + (lane >> 4) * 8;

    for (int tile = 0; tile < n_tiles; tile++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads(); /* this tile (and Q) is visible; every warp is done with the buffer refilled next */
        load_tile(tile + STAGES - 1);

        const int buf = tile % STAGES;
        const int key0 = tile * FA_BK;
        const bool active = row_w < n && !(causal && key0 > warp_last_pos);
        if (!active) continue;

        /* S = Q Kᵀ for 16*MT rows x 64 keys */
        float s[MT][NT][4];
#pragma unroll
        for (int mi = 0; mi < MT; mi++)
#pragma unroll
            for (int nt = 0; nt < NT; nt++) s[mi][nt][0] = s[mi][nt][1] = s[mi][nt][2] = s[mi][nt][3] = 0.0f;
        const T *kt = Ks + buf * FA_BK * LD + k_lane;
#pragma unroll
        for (int kk = 0; kk < KT; kk++) {
            uint32_t qa[MT][4];
#pragma unroll
            for (int mi = 0; mi < MT; mi++) ldmatrix_x4(qa[mi], Qs + q_lane + mi * 16 * LD + kk * 16);
#pragma unroll
            for (int np = 0; np < NT / 2; np++) {
                uint32_t r[4];
                ldmatrix_x4(r, kt + np * 16 * LD + kk * 16);
#pragma unroll
                for (int mi = 0; mi < MT; mi++) {
                    mma_type<T>::mma(s[mi][2 * np], qa[mi], r[0], r[1]);
                    mma_type<T>::mma(s[mi][2 * np + 1], qa[mi], r[2], r[3]);
                }
            }
        }
        /* mask keys past the end and, under the causal mask, keys after each query */
        const bool need_mask = key0 + FA_BK > kv_end || (causal && key0 + FA_BK - 1 > pos0 + row_w);
        if (need_mask) {
            /* relative to this lane's first key of the tile: keys from `end` on are past the cache, and
             * under the causal mask keys after `diag` (+ the row's offset) are in the future */
            const int end = kv_end - key0 - 2 * t;
            const int diag = causal ? pos0 + row_w + g - key0 - 2 * t : FA_BK;
#pragma unroll
            for (int mi = 0; mi < MT; mi++)
#pragma unroll
                for (int nt = 0; nt < NT; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int kr = nt * 8 + (e & 1);
                        if (kr >= end || kr > diag + mi * 16 + (e >> 1) * 8) s[mi][nt][e] = -INFINITY;
                    }
        }
        /* online softmax; P goes straight into A fragments */
        uint32_t pf[MT][FA_BK / 16][4];
#pragma unroll
        for (int mi = 0; mi < MT; mi++) {
            float mx0 = m[mi][0], mx1 = m[mi][1];
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                mx0 = fmaxf(mx0, fmaxf(s[mi][nt][0], s[mi][nt][1]));
                mx1 = fmaxf(mx1, fmaxf(s[mi][nt][2], s[mi][nt][3]));
            }
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
            const float base0 = mx0 == -INFINITY ? 0.0f : mx0, base1 = mx1 == -INFINITY ? 0.0f : mx1;
            const float c0 = fast_exp2(m[mi][0] - base0), c1 = fast_exp2(m[mi][1] - base1);
            m[mi][0] = mx0;
            m[mi][1] = mx1;
            float l0 = l[mi][0] * c0, l1 = l[mi][1] * c1;
#pragma unroll
            for (int i = 0; i < DT; i++) {
                o[mi][i][0] *= c0;
                o[mi][i][1] *= c0;
                o[mi][i][2] *= c1;
                o[mi][i][3] *= c1;
            }
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                float p0 = fast_exp2(s[mi][nt][0] - base0), p1 = fast_exp2(s[mi][nt][1] - base0);
                float p2 = fast_exp2(s[mi][nt][2] - base1), p3 = fast_exp2(s[mi][nt][3] - base1);
                l0 += p0 + p1;
                l1 += p2 + p3;
                pf[mi][nt / 2][(nt & 1) * 2 + 0] = mma_type<T>::pack(p0, p1);
                pf[mi][nt / 2][(nt & 1) * 2 + 1] = mma_type<T>::pack(p2, p3);
            }
            l[mi][0] = l0;
            l[mi][1] = l1;
        }
        /* O += P V */
        const T *vt = Vs + buf * FA_BK * LD + v_lane;
#pragma unroll
        for (int kc2 = 0; kc2 < FA_BK / 16; kc2++) {
#pragma unroll
            for (int nd = 0; nd < D / 16; nd++) {
                uint32_t r[4];
                ldmatrix_x4_trans(r, vt + kc2 * 16 * LD + nd * 16);
#pragma unroll
                for (int mi = 0; mi < MT; mi++) {
                    mma_type<T>::mma(o[mi][2 * nd], pf[mi][kc2], r[0], r[1]);
                    mma_type<T>::mma(o[mi][2 * nd + 1], pf[mi][kc2], r[2], r[3]);
                }
            }
        }
    }
    cp_async_wait<0>(); /* no copy may still target shared memory when the block exits */

#pragma unroll
    for (int mi = 0; mi < MT; mi++) {
        float l0 = l[mi][0], l1 = l[mi][1];
        l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
        l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
        const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
        const int r0 = row_w + mi * 16 + g, r1 = r0 + 8;
#pragma unroll
        for (int i = 0; i < DT; i++) {
            int col = i * 8 + 2 * t;
            float2 v0 = make_float2(o[mi][i][0] * inv0, o[mi][i][1] * inv0);
            float2 v1 = make_float2(o[mi][i][2] * inv1, o[mi][i][3] * inv1);
            size_t at0 = (size_t)r0 * q_stride + h * D + col, at1 = (size_t)r1 * q_stride + h * D + col;
            if (r0 < n) *reinterpret_cast<float2 *>(out + at0) = v0;
            if (r1 < n) *reinterpret_cast<float2 *>(out + at1) = v1;
            if (out16) {
                if (out16_is_f16) {
                    if (r0 < n)
                        *reinterpret_cast<__half2 *>(static_cast<__half *>(out16) + at0) = __floats2half2_rn(v0.x, v0.y);
                    if (r1 < n)
                        *reinterpret_cast<__half2 *>(static_cast<__half *>(out16) + at1) = __floats2half2_rn(v1.x, v1.y);
                } else {
                    if (r0 < n)
                        *reinterpret_cast<__nv_bfloat162 *>(static_cast<__nv_bfloat16 *>(out16) + at0) =
                            __floats2bfloat162_rn(v0.x, v0.y);
                    if (r1 < n)
                        *reinterpret_cast<__nv_bfloat162 *>(static_cast<__nv_bfloat16 *>(out16) + at1) =
                            __floats2bfloat162_rn(v1.x, v1.y);
                }
            }
        }
    }
}

/* TFM_CUDA_FA=1: 4 warps x 32 rows, 2 stages, 2 blocks per SM; =2 (the default for long batches): 8 warps
 * x 16 rows, 2 stages, 2 blocks per SM (128 registers); =3: 8 warps x 16 rows, 3 stages, 1 block per SM */
typedef flash_wide_shape<4, 2, 2> fa_wide1;
typedef flash_wide_shape<8, 2, 2> fa_wide2;
typedef flash_wide_shape<8, 3, 1> fa_wide3;

template <typename T, int D> static size_t flash_smem() { return (size_t)4 * FA_BK * (D + 8) * sizeof(T); }

template <typename T, int D, typename S> static cudaError_t flash_wide_setup() {
    return cudaFuncSetAttribute(flash_attention_wide_kernel<T, D, S>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)flash_wide_smem_bytes<T, D>(S::stages));
}

template <typename T, int D>
static cudaError_t flash_setup_one(int wide) {
    cudaError_t err = cudaFuncSetAttribute(flash_attention_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)flash_smem<T, D>());
    if (err != cudaSuccess || !wide) return err;
    err = flash_wide_setup<T, D, fa_wide1>();
    if (err == cudaSuccess) err = flash_wide_setup<T, D, fa_wide2>();
    if (err == cudaSuccess) err = flash_wide_setup<T, D, fa_wide3>();
    return err;
}

/* Raises the shared-memory limit of the flash kernels (called once at init); the wide kernel stays off
 * where a block cannot have its shared memory. */
tfm_status tfm_cuda_attention_setup(tfm_backend *be) {
    if (be->flash_wide < -1 || be->flash_wide > 3) be->flash_wide = -1;
    if (flash_wide_smem_bytes<__half, 128>(fa_wide3::stages) > be->prop.sharedMemPerBlockOptin) be->flash_wide = 0;
    const int wide = be->flash_wide != 0;
    CUDA_TRY(be, (flash_setup_one<__half, 64>(wide)));
    CUDA_TRY(be, (flash_setup_one<__half, 128>(wide)));
    CUDA_TRY(be, (flash_setup_one<__nv_bfloat16, 64>(wide)));
    CUDA_TRY(be, (flash_setup_one<__nv_bfloat16, 128>(wide)));
    return TFM_OK;
}

template <typename T, int D>
static cudaError_t launch_flash(tfm_backend *be, int shape, const float *q, const void *k, const void *v, float *out,
                                int n, int pos0, int n_head, int n_head_kv, float scale, int causal, void *out16) {
    if (shape) {
        dim3 grid((unsigned)n_head, (unsigned)((n + FA2_BQ - 1) / FA2_BQ));
        const int group = n_head / n_head_kv, kv_stride = n_head_kv * D, is_f16 = be->gemm16 == TFM_DTYPE_F16 ? 1 : 0;
        const float qscale = scale * LOG2E;
        const T *kt = (const T *)k, *vt = (const T *)v;
        if (shape == 3)
            return tfm_cuda_launch(be, flash_attention_wide_kernel<T, D, fa_wide3>, grid, dim3(fa_wide3::threads),
                                   flash_wide_smem_bytes<T, D>(fa_wide3::stages), q, kt, vt, out, n, pos0, group,
                                   kv_stride, qscale, causal, out16, is_f16);
        if (shape == 2)
            return tfm_cuda_launch(be, flash_attention_wide_kernel<T, D, fa_wide2>, grid, dim3(fa_wide2::threads),
                                   flash_wide_smem_bytes<T, D>(fa_wide2::stages), q, kt, vt, out, n, pos0, group,
                                   kv_stride, qscale, causal, out16, is_f16);
        return tfm_cuda_launch(be, flash_attention_wide_kernel<T, D, fa_wide1>, grid, dim3(fa_wide1::threads),
                               flash_wide_smem_bytes<T, D>(fa_wide1::stages), q, kt, vt, out, n, pos0, group,
                               kv_stride, qscale, causal, out16, is_f16);
    }
    dim3 grid((unsigned)((n + FA_BQ - 1) / FA_BQ), (unsigned)n_head);
    return tfm_cuda_launch(be, flash_attention_kernel<T, D>, grid, dim3(FA_THREADS), flash_smem<T, D>(), q,
                           (const T *)k, (const T *)v, out, n, pos0, n_head / n_head_kv, n_head_kv * D, scale * LOG2E,
                           causal, out16, be->gemm16 == TFM_DTYPE_F16 ? 1 : 0);
}

tfm_status tfm_cuda_attention_flash(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                                    tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                                    int head_dim, float scale, int causal, void *out16) {
    if ((head_dim != 64 && head_dim != 128) || be->recording || n_head > 65535 || ((uintptr_t)q % 8) ||
        ((uintptr_t)out % 8) || ((uintptr_t)k_cache % 16) || ((uintptr_t)v_cache % 16) ||
        flash_smem<__half, 128>() > be->prop.sharedMemPerBlockOptin)
        return TFM_E_UNSUPPORTED;
    /* 128-query blocks once they fill every SM twice (two blocks fit on one); a shorter batch keeps the
     * 64-query kernel, whose twice as many blocks spread it over more SMs */
    const long long wide_blocks = (long long)((n + FA2_BQ - 1) / FA2_BQ) * n_head;
    int shape = be->flash_wide >= 0 ? be->flash_wide : wide_blocks >= 2LL * be->prop.multiProcessorCount ? 2 : 0;
    if ((n + FA2_BQ - 1) / FA2_BQ > 65535) shape = 0;
    cudaError_t err;
    if (kv_dtype == TFM_DTYPE_F16)
        err = head_dim == 64 ? launch_flash<__half, 64>(be, shape, q, k_cache, v_cache, out, n, pos0, n_head, n_head_kv, scale, causal, out16)
                             : launch_flash<__half, 128>(be, shape, q, k_cache, v_cache, out, n, pos0, n_head, n_head_kv, scale, causal, out16);
    else
        err = head_dim == 64
                  ? launch_flash<__nv_bfloat16, 64>(be, shape, q, k_cache, v_cache, out, n, pos0, n_head, n_head_kv, scale, causal, out16)
                  : launch_flash<__nv_bfloat16, 128>(be, shape, q, k_cache, v_cache, out, n, pos0, n_head, n_head_kv, scale,
                                                     causal, out16);
    CUDA_TRY(be, err);
    if (out16) tfm_cuda_conv_set(be, out, (size_t)n * n_head * head_dim);
    return TFM_OK;
}
