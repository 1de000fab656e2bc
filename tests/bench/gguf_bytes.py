"""Bytes a decode step streams from a GGUF Llama model: every matrix once, plus one embedding row.

Reads only the GGUF header and tensor table (no weights)."""
import struct

# GGML type id -> (block elements, block bytes)
BLOCKS = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 8: (32, 34), 12: (256, 144), 13: (256, 176),
          14: (256, 210)}
SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _read_tensor_table(path):
    with open(path, "rb") as f:
        data = f.read(64 << 20)  # headers of even large vocabularies fit

    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def skip_string():
        nonlocal pos
        n = take("Q")
        pos += n

    def skip_value(t):
        nonlocal pos
        if t == 8:
            skip_string()
        elif t == 9:
            et, n = take("I"), take("Q")
            if et in SCALAR:
                pos += SCALAR[et] * n
            else:
                for _ in range(n):
                    skip_value(et)
        else:
            pos += SCALAR[t]

    assert data[:4] == b"GGUF", path
    pos = 4
    take("I")
    n_tensors, n_kv = take("Q"), take("Q")
    for _ in range(n_kv):
        skip_string()
        skip_value(take("I"))
    tensors = {}
    for _ in range(n_tensors):
        n = take("Q")
        name = data[pos:pos + n].decode()
        pos += n
        dims = [take("Q") for _ in range(take("I"))]
        ggml_type = take("I")
        take("Q")
        elems = 1
        for d in dims:
            elems *= d
        be, bb = BLOCKS[ggml_type]
        tensors[name] = (dims, elems // be * bb)
    return tensors


def decode_bytes_per_token(path):
    """Weights read per generated token: all tensors but the embedding table, of which one row;
    a tied model reads the whole table once more as its LM head."""
    t = _read_tensor_table(path)
    dims, emb_bytes = t["token_embd.weight"]
    total = sum(b for name, (_, b) in t.items() if name != "token_embd.weight")
    total += emb_bytes // dims[1]
    if "output.weight" not in t:
        total += emb_bytes
    return total
