#!/usr/bin/python3
"""A small GGUF v3 writer (numpy only) for test models.

    w = GGUFWriter()
    w.add("general.architecture", "llama")                  # str -> string
    w.add("llama.block_count", 2, GGUF.UINT32)              # explicit value type
    w.add_array("tokenizer.ggml.scores", [0.0, -1.5], GGUF.FLOAT32)
    w.add_tensor("output_norm.weight", (64,), "f32", lambda: np.ones(64, np.float32))
    w.write("model.gguf")

Tensors are given in numpy order (shape[-1] contiguous); the file stores ne reversed, as ggml does.
Their data comes from a callable invoked while writing, so a multi-gigabyte model is produced one tensor
at a time. Data types: f32, f16, bf16 (round to nearest even), q8_0 and q4_0 (ggml's block layouts), and
q4_k, q5_k, q6_k (quantize.py, llama.cpp's reference quantisers).

File layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv, the key/values, the tensor
infos (name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset), zero padding to the alignment,
then each tensor's data, each padded to the alignment.
"""
import struct

import numpy as np


class GGUF:
    """Metadata value types."""
    UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)


_SCALAR_FMT = {GGUF.UINT8: "<B", GGUF.INT8: "<b", GGUF.UINT16: "<H", GGUF.INT16: "<h", GGUF.UINT32: "<I",
               GGUF.INT32: "<i", GGUF.FLOAT32: "<f", GGUF.BOOL: "<?", GGUF.UINT64: "<Q", GGUF.INT64: "<q",
               GGUF.FLOAT64: "<d"}
_NUMPY_DTYPE = {GGUF.UINT8: "<u1", GGUF.INT8: "<i1", GGUF.UINT16: "<u2", GGUF.INT16: "<i2", GGUF.UINT32: "<u4",
                GGUF.INT32: "<i4", GGUF.FLOAT32: "<f4", GGUF.BOOL: "<u1", GGUF.UINT64: "<u8", GGUF.INT64: "<i8",
                GGUF.FLOAT64: "<f8"}

# ggml tensor types: id, elements per block, bytes per block
GGML_TYPES = {"f32": (0, 1, 4), "f16": (1, 1, 2), "q4_0": (2, 32, 18), "q8_0": (8, 32, 34), "bf16": (30, 1, 2),
              "q4_k": (12, 256, 144), "q5_k": (13, 256, 176), "q6_k": (14, 256, 210)}
K_QUANTS = ("q4_k", "q5_k", "q6_k")  # encoded by quantize.py


def _string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _infer_type(value):
    if isinstance(value, bool):
        return GGUF.BOOL
    if isinstance(value, int):
        return GGUF.INT32 if -2**31 <= value < 2**31 else GGUF.INT64
    if isinstance(value, float):
        return GGUF.FLOAT32
    if isinstance(value, (str, bytes)):
        return GGUF.STRING
    raise TypeError(f"cannot infer a GGUF type for {value!r}")


def _encode_value(vtype, value):
    if vtype == GGUF.STRING:
        return _string(value)
    if vtype == GGUF.ARRAY:
        etype, items = value
        return _encode_array(etype, items)
    return struct.pack(_SCALAR_FMT[vtype], value)


def _encode_array(etype, items):
    head = struct.pack("<IQ", etype, len(items))
    if etype in _NUMPY_DTYPE:  # numeric arrays in one go
        return head + np.asarray(items).astype(_NUMPY_DTYPE[etype]).tobytes()
    return head + b"".join(_encode_value(etype, v) for v in items)


# ---------------------------------------------------------------------------------------------------
# Tensor encodings
# ---------------------------------------------------------------------------------------------------
def to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest even; NaN stays NaN."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((u.astype(np.uint64) + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), rounded)


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def _round_half_away(x):
    return np.trunc(x + np.copysign(0.5, x))


def quantize_q8_0(x):
    """Rows of 32-element blocks: f16 scale d = max|x| / 127, then 32 int8 q = round(x / d)."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(blocks).max(axis=1, keepdims=True)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.clip(_round_half_away(blocks * inv), -127, 127).astype(np.int8)
    out = np.empty((blocks.shape[0], 34), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.reshape(-1)


def dequantize_q8_0(raw, n):
    b = np.asarray(raw, np.uint8).reshape(-1, 34)
    d = b[:, :2].copy().view(np.float16).astype(np.float32)
    return (b[:, 2:].view(np.int8).astype(np.float32) * d).reshape(-1)[:n]


def quantize_q4_0(x):
    """Rows of 32-element blocks: f16 d = (signed value of largest magnitude) / -8; 16 bytes whose low
    nibbles hold elements 0..15 and high nibbles elements 16..31, each q = min(15, trunc(x/d + 8.5))."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    idx = np.abs(blocks).argmax(axis=1)
    mx = blocks[np.arange(blocks.shape[0]), idx][:, None]
    d = mx / -8.0
    inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0.0)
    q = np.minimum(15, np.trunc(blocks * inv + 8.5)).astype(np.uint8)
    out = np.empty((blocks.shape[0], 18), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.reshape(-1)


def dequantize_q4_0(raw, n):
    b = np.asarray(raw, np.uint8).reshape(-1, 18)
    d = b[:, :2].copy().view(np.float16).astype(np.float32)
    lo = (b[:, 2:] & 0x0F).astype(np.float32) - 8
    hi = (b[:, 2:] >> 4).astype(np.float32) - 8
    return (np.concatenate([lo, hi], axis=1) * d).reshape(-1)[:n]


def encode_tensor(x, dtype):
    """float array -> the bytes of `dtype` (numpy order, last axis contiguous)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "f32":
        return x.astype("<f4").tobytes()
    if dtype == "f16":
        return x.astype("<f2").tobytes()
    if dtype == "bf16":
        return to_bf16_bits(x).astype("<u2").tobytes()
    if dtype == "q8_0":
        return quantize_q8_0(x).tobytes()
    if dtype == "q4_0":
        return quantize_q4_0(x).tobytes()
    if dtype in K_QUANTS:
        import quantize  # tests/tools, beside this file
        return quantize.quantize(x, dtype).tobytes()
    raise ValueError(f"unknown dtype {dtype}")


def stored_values(x, dtype):
    """The float32 values a reader gets back after `dtype` encoding (for reference computations)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "f32":
        return x
    if dtype == "f16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return from_bf16_bits(to_bf16_bits(x)).reshape(x.shape)
    if dtype == "q8_0":
        return dequantize_q8_0(quantize_q8_0(x), x.size).reshape(x.shape)
    if dtype == "q4_0":
        return dequantize_q4_0(quantize_q4_0(x), x.size).reshape(x.shape)
    if dtype in K_QUANTS:
        import quantize
        return quantize.stored_values(x, dtype)
    raise ValueError(f"unknown dtype {dtype}")


# ---------------------------------------------------------------------------------------------------
# The writer
# ---------------------------------------------------------------------------------------------------
class GGUFWriter:
    def __init__(self, alignment=32, version=3):
        self.alignment = alignment
        self.version = version
        self.kv = []        # (key, encoded type+value)
        self.keys = set()
        self.tensors = []   # (name, numpy shape, dtype, producer)

    def add(self, key, value, vtype=None):
        if key in self.keys:
            raise ValueError(f"duplicate key {key}")
        if vtype is None:
            vtype = _infer_type(value)
        self.keys.add(key)
        self.kv.append((key, struct.pack("<I", vtype) + _encode_value(vtype, value)))
        if key == "general.alignment":
            self.alignment = int(value)

    def add_array(self, key, items, etype):
        self.add(key, (etype, list(items) if etype in (GGUF.STRING, GGUF.ARRAY) else items), GGUF.ARRAY)

    def add_tensor(self, name, shape, dtype, producer):
        """`producer()` returns a float array of `shape` (numpy order), or the encoded bytes."""
        if dtype not in GGML_TYPES:
            raise ValueError(f"unsupported tensor dtype {dtype}")
        _, block, _ = GGML_TYPES[dtype]
        if shape[-1] % block:
            raise ValueError(f"{name}: last dimension {shape[-1]} is not a multiple of the {dtype} block {block}")
        self.tensors.append((name, tuple(int(s) for s in shape), dtype, producer))

    def _nbytes(self, shape, dtype):
        _, block, size = GGML_TYPES[dtype]
        return int(np.prod(shape)) // block * size

    def _pad(self, n):
        return (-n) % self.alignment

    def write(self, path):
        head = bytearray(b"GGUF")
        head += struct.pack("<IQQ", self.version, len(self.tensors), len(self.kv))
        for key, value in self.kv:
            head += _string(key) + value
        offset = 0
        layout = []
        for name, shape, dtype, _ in self.tensors:
            ne = shape[::-1]
            head += _string(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
            head += struct.pack("<IQ", GGML_TYPES[dtype][0], offset)
            n = self._nbytes(shape, dtype)
            layout.append(n)
            offset += n + self._pad(n)
        head += b"\0" * self._pad(len(head))
        with open(path, "wb") as f:
            f.write(head)
            for (name, shape, dtype, producer), n in zip(self.tensors, layout):
                data = producer()
                raw = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else None
                if raw is None:
                    data = np.asarray(data)
                    if data.shape != shape:
                        raise ValueError(f"{name}: producer gave shape {data.shape}, declared {shape}")
                    raw = encode_tensor(data, dtype)
                if len(raw) != n:
                    raise ValueError(f"{name}: {len(raw)} bytes, expected {n}")
                f.write(raw)
                f.write(b"\0" * self._pad(n))
