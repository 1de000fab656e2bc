#!/usr/bin/python3
"""GGUF block quantisation in numpy: Q8_0, Q4_0, Q4_K, Q5_K and Q6_K, as llama.cpp defines them.

    raw = quantize(x, "q4_k")          # float array (size a multiple of the block) -> uint8 blocks
    y = dequantize(raw, "q4_k")        # uint8 blocks -> float32 values, as llama.cpp decodes them

The block layouts are ggml's (ggml-common.h); the quantisers follow the reference quantisers that
llama-quantize uses when no importance matrix is given (quantize_row_*_ref in ggml-quants.c), in
float32 with the same order of operations, so most blocks come out byte for byte as llama.cpp's.
Sums are accumulated left to right (as the C loops do), roundings are round-half-even
(`nearest_int`) except Q8_0's `roundf` (half away from zero).

Layouts (little-endian, blocks back to back along a row; f16 = IEEE half):
    q8_0  32 values,  34 bytes: f16 d; int8 q[32]                     x = d * q
    q4_0  32 values,  18 bytes: f16 d; u8 qs[16]                      x = d * (nibble - 8)
          value j < 16 is the low nibble of qs[j], value j + 16 its high nibble
    q4_k 256 values, 144 bytes: f16 d, dmin; u8 scales[12]; u8 qs[128]
          8 sub-blocks of 32, each with a 6-bit scale sc and min m packed in scales[12]:
          sub-block j < 4: sc = scales[j] & 63, m = scales[j+4] & 63; j >= 4: sc = low nibble of
          scales[j+4] | (scales[j-4] >> 6) << 4, m = high nibble of scales[j+4] | (scales[j] >> 6) << 4;
          qs[32p + l]: low nibble = value l of sub-block 2p, high nibble = value l of sub-block 2p+1;
          x = (d * sc) * q - (dmin * m)
    q5_k 256 values, 176 bytes: f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
          as q4_k with a fifth bit: bit s of qh[l] is bit 4 of value l of sub-block s
    q6_k 256 values, 210 bytes: u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d
          half h (128 values), l < 32: values l, l+32, l+64, l+96 of the half take the low nibble of
          ql[64h+l], the low nibble of ql[64h+32+l], the high nibble of ql[64h+l], the high nibble of
          ql[64h+32+l] and as bits 4-5 bits 0-1, 2-3, 4-5, 6-7 of qh[32h+l];
          x = (d * scales[i / 16]) * (q - 32)

The reference quantisers, in short:
    q8_0  d = max|x| / 127, q = roundf(x * (1/d))
    q4_0  m = the value of largest magnitude, d = m / -8, q = min(15, trunc(x * (1/d) + 8.5))
    q4_k  per sub-block of 32: weights w = rms(x) + |x|; a scale s and minimum -m (m >= 0) chosen by
          make_qkx2_quants (start at (max - min) / 15, try 21 inverse scales (15 - 1 + 0.1 i) / (max
          - min), each followed by a weighted least-squares fit of scale and min, keep the smallest
          weighted squared error); then d = max(s) / 63, dmin = max(m) / 63 in f16, the 6-bit
          sc = round(63 s / max s), m6 = round(63 m / max m), and q = round((x + dmin m6) / (d sc))
          clamped to 0..15
    q5_k  as q4_k with 31 levels (16 tries from 31 - 0.5)
    q6_k  per group of 16: make_qx_quants (weights x^2, 19 inverse scales -(32 + 0.1 i) / max for
          i = -9..9, least-squares scale of the best), then d = max-magnitude scale / -128 in f16,
          8-bit signed group scales round(scale * -128 / that scale) capped at 127, q = round(x /
          (d * group scale)) clamped to -32..31, stored + 32
When a sub-block's quantised scale is 0 its values keep the levels found by the search.
"""
import numpy as np

# name: (ggml type id, values per block, bytes per block)
TYPES = {
    "q4_0": (2, 32, 18),
    "q8_0": (8, 32, 34),
    "q4_k": (12, 256, 144),
    "q5_k": (13, 256, 176),
    "q6_k": (14, 256, 210),
}

F32 = np.float32
GROUP_MAX_EPS = F32(1e-15)


def block_values(dtype):
    return TYPES[dtype][1]


def nbytes(n_values, dtype):
    _, vals, size = TYPES[dtype]
    if n_values % vals:
        raise ValueError(f"{n_values} values are not whole {dtype} blocks of {vals}")
    return n_values // vals * size


# ---------------------------------------------------------------------------------------------------
# Float32 helpers with C's semantics
# ---------------------------------------------------------------------------------------------------
def _rint(x):
    """llama.cpp's nearest_int: round half to even (exact for |x| < 2^22)."""
    return np.rint(x).astype(np.int32)


def _seq_sum(t):
    """Sum over the last axis, left to right in float32, as a C loop `s += t[i]` does."""
    acc = t[..., 0].astype(F32)
    for i in range(1, t.shape[-1]):
        acc = acc + t[..., i]
    return acc


def _div(a, b):
    """a / b in float32 where b != 0, else 0 (callers mask those lanes out)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, F32(1)), F32(0)).astype(F32)


def _f16(x):
    """float32 -> f16 (round to nearest even) and the f16 value back as float32."""
    h = np.asarray(x, F32).astype(np.float16)
    return h, h.astype(F32)


def _blocks(x, n):
    x = np.ascontiguousarray(x, dtype=F32).reshape(-1)
    if x.size % n:
        raise ValueError(f"{x.size} values are not whole blocks of {n}")
    return x.reshape(-1, n)


# ---------------------------------------------------------------------------------------------------
# Q8_0, Q4_0
# ---------------------------------------------------------------------------------------------------
def _quantize_q8_0(x):
    b = _blocks(x, 32)
    d = (np.abs(b).max(axis=1) / F32(127)).astype(F32)
    inv = _div(F32(1), d)
    v = b * inv[:, None]
    q = np.trunc(v + np.copysign(F32(0.5), v))  # roundf: half away from zero
    out = np.empty((b.shape[0], 34), np.uint8)
    out[:, :2] = _f16(d)[0].view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.astype(np.int8).view(np.uint8)
    return out


def _quantize_q4_0(x):
    b = _blocks(x, 32)
    m = b[np.arange(b.shape[0]), np.abs(b).argmax(axis=1)]  # first value of largest magnitude
    d = (m / F32(-8)).astype(F32)
    inv = _div(F32(1), d)
    q = np.minimum(15, np.trunc(b * inv[:, None] + F32(8.5)).astype(np.int32)).astype(np.uint8)
    out = np.empty((b.shape[0], 18), np.uint8)
    out[:, :2] = _f16(d)[0].view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out


# ---------------------------------------------------------------------------------------------------
# K-quants
# ---------------------------------------------------------------------------------------------------
def _make_qkx2_quants(x, w, nmax, rmin, rdelta, nstep):
    """Scale and minimum of each row of x (rows of n values) with weights w, and its levels 0..nmax.
    Returns (scale, the_min >= 0, levels) with x ~ scale * level - the_min."""
    rmin, rdelta, fmax = F32(rmin), F32(rdelta), F32(nmax)
    mn = np.minimum(x.min(axis=1), F32(0))
    mx = x.max(axis=1)
    sum_w = _seq_sum(w)
    sum_x = _seq_sum(w * x)
    flat = mx == mn
    rng = np.where(flat, F32(1), mx - mn).astype(F32)
    iscale = (fmax / rng).astype(F32)
    scale = (F32(1) / iscale).astype(F32)
    levels = np.clip(_rint(iscale[:, None] * (x - mn[:, None])), 0, nmax)
    diff = scale[:, None] * levels.astype(F32) + mn[:, None] - x
    best = _seq_sum(w * (diff * diff))
    for i in range(nstep + 1):
        # as in ggml, later tries measure from the minimum of the best fit so far
        rng = np.where(flat, F32(1), mx - mn).astype(F32)
        iscale = ((rmin + rdelta * F32(i) + fmax) / rng).astype(F32)
        laux = np.clip(_rint(iscale[:, None] * (x - mn[:, None])), 0, nmax)
        lf = laux.astype(F32)
        wl = w * lf
        sum_l, sum_l2, sum_xl = _seq_sum(wl), _seq_sum(wl * lf), _seq_sum(wl * x)
        D = sum_w * sum_l2 - sum_l * sum_l
        this_scale = _div(sum_w * sum_xl - sum_x * sum_l, D)
        this_min = _div(sum_l2 * sum_x - sum_l * sum_xl, D)
        clamp = this_min > 0
        this_min = np.where(clamp, F32(0), this_min).astype(F32)
        this_scale = np.where(clamp, _div(sum_xl, sum_l2), this_scale).astype(F32)
        diff = this_scale[:, None] * lf + this_min[:, None] - x
        err = _seq_sum(w * (diff * diff))
        take = (D > 0) & (err < best) & ~flat
        levels = np.where(take[:, None], laux, levels)
        best = np.where(take, err, best)
        scale = np.where(take, this_scale, scale)
        mn = np.where(take, this_min, mn)
    scale = np.where(flat, F32(0), scale).astype(F32)
    levels = np.where(flat[:, None], 0, levels)
    return scale, (-mn).astype(F32), levels


def _pack_k_scales(ls, lm):
    """6-bit scales and mins [n, 8] -> the 12 packed bytes of a Q4_K / Q5_K super-block."""
    s = np.zeros((ls.shape[0], 12), np.uint8)
    s[:, 0:4] = ls[:, 0:4]
    s[:, 4:8] = lm[:, 0:4]
    s[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    s[:, 0:4] |= (ls[:, 4:8] >> 4) << 6
    s[:, 4:8] |= (lm[:, 4:8] >> 4) << 6
    return s


def _quantize_k_levels(x, nmax, rmin, rdelta, nstep):
    """Shared part of Q4_K and Q5_K: (d f16 bits, dmin f16 bits, packed scales, levels [n, 256])."""
    sb = _blocks(x, 256)
    n = sb.shape[0]
    sub = sb.reshape(n * 8, 32)
    av = np.sqrt(_seq_sum(sub * sub) / F32(32)).astype(F32)
    w = av[:, None] + np.abs(sub)
    scales, mins, levels = _make_qkx2_quants(sub, w, nmax, rmin, rdelta, nstep)
    scales, mins, levels = scales.reshape(n, 8), mins.reshape(n, 8), levels.reshape(n, 256)
    max_scale = np.maximum(scales.max(axis=1), F32(0))
    max_min = np.maximum(mins.max(axis=1), F32(0))
    inv_scale = np.where(max_scale > 0, _div(F32(63), max_scale), F32(0)).astype(F32)
    inv_min = np.where(max_min > 0, _div(F32(63), max_min), F32(0)).astype(F32)
    # uint8_t ls = nearest_int(...), then MIN(63, ls)
    ls = np.minimum(63, _rint(inv_scale[:, None] * scales) & 0xFF).astype(np.uint8)
    lm = np.minimum(63, _rint(inv_min[:, None] * mins) & 0xFF).astype(np.uint8)
    d16, d = _f16(max_scale / F32(63))
    m16, dmin = _f16(max_min / F32(63))
    dj = d[:, None] * ls.astype(F32)           # [n, 8]
    mj = dmin[:, None] * lm.astype(F32)
    xs = sb.reshape(n, 8, 32)
    requant = np.clip(_rint(_div(xs + mj[:, :, None], np.broadcast_to(dj[:, :, None], xs.shape))), 0, nmax)
    keep = (dj == 0)[:, :, None]                # a zero scale keeps the searched levels
    levels = np.where(keep, levels.reshape(n, 8, 32), requant).reshape(n, 256)
    return d16, m16, _pack_k_scales(ls, lm), levels


def _quantize_q4_k(x):
    d16, m16, scales, L = _quantize_k_levels(x, 15, -1.0, 0.1, 20)
    n = L.shape[0]
    out = np.empty((n, 144), np.uint8)
    out[:, 0:2] = d16.view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = m16.view(np.uint8).reshape(-1, 2)
    out[:, 4:16] = scales
    L = L.astype(np.uint8).reshape(n, 4, 2, 32)  # [pair p][sub-block 2p / 2p+1][l]
    out[:, 16:144] = (L[:, :, 0] | (L[:, :, 1] << 4)).reshape(n, 128)
    return out


def _quantize_q5_k(x):
    d16, m16, scales, L = _quantize_k_levels(x, 31, -0.5, 0.1, 15)
    n = L.shape[0]
    out = np.empty((n, 176), np.uint8)
    out[:, 0:2] = d16.view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = m16.view(np.uint8).reshape(-1, 2)
    out[:, 4:16] = scales
    L = L.astype(np.uint8).reshape(n, 8, 32)     # [sub-block s][l]
    qh = np.zeros((n, 32), np.uint8)
    for s in range(8):
        qh |= ((L[:, s] >> 4) & 1) << s
    out[:, 16:48] = qh
    lo = (L & 0xF).reshape(n, 4, 2, 32)
    out[:, 48:176] = (lo[:, :, 0] | (lo[:, :, 1] << 4)).reshape(n, 128)
    return out


def _make_qx_quants(x, nmax):
    """make_qx_quants with rmse_type 1 (weights x^2) over rows of x: (scale, levels + nmax)."""
    n_rows = x.shape[0]
    idx = np.abs(x).argmax(axis=1)
    amax = np.abs(x[np.arange(n_rows), idx])
    mx = x[np.arange(n_rows), idx]
    zero = amax < GROUP_MAX_EPS
    safe_max = np.where(zero, F32(1), mx).astype(F32)
    w = x * x

    def attempt(iscale):
        l = np.clip(_rint(iscale[:, None] * x), -nmax, nmax - 1)
        lf = l.astype(F32)
        return l, _seq_sum(w * x * lf), _seq_sum(w * lf * lf)

    levels, sumlx, suml2 = attempt((F32(-nmax) / safe_max).astype(F32))
    scale = _div(sumlx, suml2)
    best = scale * sumlx
    for i in range(-9, 10):
        if i == 0:
            continue
        iscale = (-(F32(nmax) + F32(0.1) * F32(i)) / safe_max).astype(F32)
        l, sumlx, suml2 = attempt(iscale)
        take = (suml2 > 0) & (sumlx * sumlx > best * suml2)
        levels = np.where(take[:, None], l, levels)
        scale = np.where(take, _div(sumlx, suml2), scale).astype(F32)
        best = np.where(take, scale * sumlx, best).astype(F32)
    scale = np.where(zero, F32(0), scale).astype(F32)
    levels = np.where(zero[:, None], 0, levels + nmax)
    return scale, levels


def _quantize_q6_k(x):
    sb = _blocks(x, 256)
    n = sb.shape[0]
    scales, L = _make_qx_quants(sb.reshape(n * 16, 16), 32)
    scales, L = scales.reshape(n, 16), L.reshape(n, 16, 16)
    idx = np.abs(scales).argmax(axis=1)
    max_scale = scales[np.arange(n), idx]
    zero = np.abs(max_scale) < GROUP_MAX_EPS
    iscale = (F32(-128) / np.where(zero, F32(1), max_scale)).astype(F32)
    d16, d = _f16(F32(1) / iscale)
    sc = np.minimum(127, _rint(iscale[:, None] * scales)).astype(np.int8)
    dj = d[:, None] * sc.astype(F32)
    xs = sb.reshape(n, 16, 16)
    requant = np.clip(_rint(_div(xs, np.broadcast_to(dj[:, :, None], xs.shape))), -32, 31) + 32
    L = np.where((dj == 0)[:, :, None], L, requant).reshape(n, 256).astype(np.uint8)

    out = np.empty((n, 210), np.uint8)
    for h in range(2):
        q = L[:, 128 * h:128 * h + 128].reshape(n, 4, 32)  # values l, 32+l, 64+l, 96+l of the half
        out[:, 64 * h:64 * h + 32] = (q[:, 0] & 0xF) | ((q[:, 2] & 0xF) << 4)
        out[:, 64 * h + 32:64 * h + 64] = (q[:, 1] & 0xF) | ((q[:, 3] & 0xF) << 4)
        out[:, 128 + 32 * h:128 + 32 * h + 32] = (q[:, 0] >> 4) | ((q[:, 1] >> 4) << 2) | \
            ((q[:, 2] >> 4) << 4) | ((q[:, 3] >> 4) << 6)
    out[:, 192:208] = sc.view(np.uint8)
    out[:, 208:210] = d16.view(np.uint8).reshape(-1, 2)
    # a super-block whose scales are all (nearly) zero is stored as zeros
    out[zero] = 0
    return out


_QUANTIZERS = {"q8_0": _quantize_q8_0, "q4_0": _quantize_q4_0, "q4_k": _quantize_q4_k, "q5_k": _quantize_q5_k,
               "q6_k": _quantize_q6_k}


def quantize(x, dtype):
    """Float values (any shape; the flattened size a multiple of the block) -> uint8 blocks, flat."""
    return _QUANTIZERS[dtype](x).reshape(-1)


# ---------------------------------------------------------------------------------------------------
# Dequantisation, with llama.cpp's float operations (dequantize_row_*)
# ---------------------------------------------------------------------------------------------------
def _half(b, off):
    return b[:, off:off + 2].copy().view(np.float16).astype(F32)[:, 0]


def _k_scale_min(s):
    """Unpacks the 12 scale bytes [n, 12] into 6-bit (sc, m) [n, 8]."""
    s = s.astype(np.int32)
    sc = np.empty((s.shape[0], 8), np.int32)
    m = np.empty((s.shape[0], 8), np.int32)
    sc[:, :4], m[:, :4] = s[:, 0:4] & 63, s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    m[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, m


def dequantize(raw, dtype):
    """uint8 blocks (flat) -> float32 values, flat."""
    _, vals, size = TYPES[dtype]
    b = np.asarray(raw, np.uint8).reshape(-1, size)
    n = b.shape[0]
    if dtype == "q8_0":
        return (b[:, 2:].view(np.int8).astype(F32) * _half(b, 0)[:, None]).reshape(-1)
    if dtype == "q4_0":
        q = np.concatenate([b[:, 2:] & 0xF, b[:, 2:] >> 4], axis=1).astype(np.int32) - 8
        return (q.astype(F32) * _half(b, 0)[:, None]).reshape(-1)
    if dtype in ("q4_k", "q5_k"):
        sc, m = _k_scale_min(b[:, 4:16])
        d1 = _half(b, 0)[:, None] * sc.astype(F32)       # [n, 8]
        m1 = _half(b, 2)[:, None] * m.astype(F32)
        qs = b[:, 16:144] if dtype == "q4_k" else b[:, 48:176]
        qs = qs.reshape(n, 4, 32)
        q = np.stack([qs & 0xF, qs >> 4], axis=2).reshape(n, 8, 32).astype(np.int32)
        if dtype == "q5_k":
            qh = b[:, 16:48].astype(np.int32)
            q |= np.stack([((qh >> s) & 1) << 4 for s in range(8)], axis=1)
        return (d1[:, :, None] * q.astype(F32) - m1[:, :, None]).reshape(-1)
    # q6_k
    d = _half(b, 208)
    sc = b[:, 192:208].view(np.int8).astype(F32)
    q = np.empty((n, 256), np.int32)
    for h in range(2):
        ql = b[:, 64 * h:64 * h + 64].astype(np.int32)
        qh = b[:, 128 + 32 * h:128 + 32 * h + 32].astype(np.int32)
        base = 128 * h
        q[:, base:base + 32] = (ql[:, :32] & 0xF) | ((qh & 3) << 4)
        q[:, base + 32:base + 64] = (ql[:, 32:] & 0xF) | (((qh >> 2) & 3) << 4)
        q[:, base + 64:base + 96] = (ql[:, :32] >> 4) | (((qh >> 4) & 3) << 4)
        q[:, base + 96:base + 128] = (ql[:, 32:] >> 4) | (((qh >> 6) & 3) << 4)
    scale = d[:, None] * sc                                # [n, 16]
    return (np.repeat(scale, 16, axis=1) * (q - 32).astype(F32)).reshape(-1)


def stored_values(x, dtype):
    """The float32 values a reader decodes after quantising x (same shape as x)."""
    x = np.asarray(x, F32)
    return dequantize(quantize(x, dtype), dtype).reshape(x.shape)
