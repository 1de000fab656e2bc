"""The tensor table of a GGUF file and each tensor's raw bytes (numpy only; files the tests made).

    tensors = read_tensors("model.gguf")      # {name: Tensor(ggml_type, ne, data: uint8 array)}
"""
import collections
import struct

import numpy as np

Tensor = collections.namedtuple("Tensor", "ggml_type ne data")

# ggml type id -> (values per block, bytes per block), for the types test models hold
_BLOCKS = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 8: (32, 34), 12: (256, 144), 13: (256, 176),
           14: (256, 210)}
_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
TYPE_NAMES = {0: "f32", 1: "f16", 30: "bf16", 2: "q4_0", 8: "q8_0", 12: "q4_k", 13: "q5_k", 14: "q6_k"}


def read_tensors(path):
    data = np.fromfile(path, np.uint8)
    buf = data.tobytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)[0]
        pos += struct.calcsize("<" + fmt)
        return v

    def string():
        nonlocal pos
        n = take("Q")
        s = buf[pos:pos + n]
        pos += n
        return s

    def value(t):
        nonlocal pos
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        v = struct.unpack_from("<" + "BbHhIif?__QqD"[t].replace("D", "d"), buf, pos)[0]
        pos += _SCALAR[t]
        return v

    if buf[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    pos = 4
    take("I")
    n_tensors, n_kv = take("Q"), take("Q")
    alignment = 32
    for _ in range(n_kv):
        key = string().decode()
        v = value(take("I"))
        if key == "general.alignment":
            alignment = v
    infos = []
    for _ in range(n_tensors):
        name = string().decode()
        ne = [take("Q") for _ in range(take("I"))]
        infos.append((name, take("I"), ne, take("Q")))
    base = (pos + alignment - 1) // alignment * alignment
    out = {}
    for name, gtype, ne, offset in infos:
        vals, size = _BLOCKS[gtype]
        n = int(np.prod(ne)) // vals * size
        out[name] = Tensor(gtype, ne, data[base + offset:base + offset + n])
    return out
