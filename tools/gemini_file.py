"""Reads a .gemini file as format.md describes it (fixed header, metadata records, tensor
directory), with the Python standard library alone. Used by tools/check_whisper_convert.py and
bench/gemini_to_whisper_cpp.py.

    meta, tensors = read_gemini(path)
    meta: key -> value (strings as bytes, arrays as lists)
    tensors: name -> (type id, dims, raw bytes), in file order
"""
import struct
import sys

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
          11: "<q", 12: "<d"}
TYPE_NAMES = {0: "f32", 1: "f16", 2: "bf16", 3: "q8_0", 4: "q4_0"}


class Reader:
    def __init__(self, data, pos=0):
        self.data, self.pos = data, pos

    def take(self, fmt):
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self):
        n = self.take("<I")
        value = self.data[self.pos:self.pos + n]
        self.pos += n
        return value

    def value(self, vtype):
        if vtype == 8:
            return self.string()
        if vtype == 9:
            elem, count = self.take("<I"), self.take("<Q")
            return [self.value(elem) for _ in range(count)]
        return self.take(SCALAR[vtype])


def read_gemini(path):
    data = open(path, "rb").read()
    if data[:4] != b"GMNI":
        sys.exit(f"{path}: not a .gemini file")
    r = Reader(data, 4)
    version, alignment, flags = r.take("<I"), r.take("<I"), r.take("<I")
    n_kv, n_tensors, dir_size, data_offset, data_size = (r.take("<Q") for _ in range(5))
    assert version == 1 and flags == 0 and data_offset + data_size == len(data)
    r.pos = 64
    meta = {}
    for _ in range(n_kv):
        key = r.string().decode()
        meta[key] = r.value(r.take("<I"))
    tensors = {}
    for _ in range(n_tensors):
        name = r.string().decode()
        ttype, n_dims = r.take("<I"), r.take("<I")
        dims = [r.take("<Q") for _ in range(n_dims)]
        offset, size, crc = r.take("<Q"), r.take("<Q"), r.take("<I")
        assert offset % alignment == 0
        raw = data[data_offset + offset:data_offset + offset + size]
        tensors[name] = (ttype, dims, raw)
    assert r.pos == 64 + dir_size
    return meta, tensors
