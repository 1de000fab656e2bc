"""Reads and writes .safetensors files with numpy alone (no safetensors package).

The format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
{"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data that follows the
header), an optional "__metadata__" object of strings, then the tensor bytes, row-major.

numpy has no bfloat16: BF16 tensors are held as uint16 bit patterns (the upper half of a float32).
"""
import json
import struct

import numpy as np

# safetensors dtype name -> numpy dtype of the stored elements
NP_DTYPES = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("u1"),
}


def f32_to_bf16_bits(x):
    """float32 array -> uint16 bfloat16 bit patterns, rounded to nearest even."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def encode(x, dtype):
    """A float array as the stored elements of `dtype` ("F32", "F16", "BF16")."""
    if dtype == "BF16":
        return f32_to_bf16_bits(x)
    return np.ascontiguousarray(x, dtype=NP_DTYPES[dtype])


def decode(raw, dtype):
    """Stored elements -> float32 (float types) or the integer array itself."""
    if dtype == "BF16":
        return bf16_bits_to_f32(raw)
    if dtype in ("F16", "F32", "F64"):
        return raw.astype(np.float32)
    return raw


def round_to(x, dtype):
    """What a float32 array becomes after a round trip through `dtype`."""
    return decode(encode(x, dtype), dtype).reshape(np.shape(x))


def header_bytes(header, align=8):
    """JSON header padded with spaces so that the data starts at a multiple of `align`."""
    text = json.dumps(header, separators=(",", ":")).encode()
    pad = (-(8 + len(text))) % align
    return text + b" " * pad


def write(path, tensors, metadata=None, align=8):
    """Writes `tensors`: a dict name -> (dtype name, stored numpy array) in the given order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name, (dtype, arr) in tensors.items():
        arr = np.ascontiguousarray(arr, dtype=NP_DTYPES[dtype])
        blob = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    hb = header_bytes(header, align)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for blob in blobs:
            f.write(blob)
    return offset


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return header, 8 + n


def read(path):
    """Returns (dict name -> (dtype name, stored array), metadata)."""
    header, start = read_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    meta = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        dt = NP_DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        raw = np.frombuffer(data[start + b:start + e].tobytes(), dtype=dt).reshape(info["shape"])
        out[name] = (info["dtype"], raw)
    return out, meta


def read_floats(path):
    """Returns dict name -> float32 array (float dtypes decoded, bf16 widened)."""
    tensors, _ = read(path)
    return {name: decode(raw, dtype) for name, (dtype, raw) in tensors.items()}
