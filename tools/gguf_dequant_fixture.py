#!/usr/bin/env python3
"""Builds the GGUF fixtures of tests/test_convert.sh with gguf-py as the independent oracle.

    python3 -m venv /tmp/ggufenv && /tmp/ggufenv/bin/pip install gguf numpy
    /tmp/ggufenv/bin/python tools/gguf_dequant_fixture.py [REAL.gguf]

Writes, under tests/fixtures/gguf/:

  tiny-gemma3.gguf       a 2-layer gemma3 model (d=256) written by gguf-py's GGUFWriter, whose
                         tensors hold seeded random blocks of every GGUF type gemini-convert
                         reads (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K), a
                         16-piece SentencePiece-style vocabulary and an untied output head.
  tiny-gemma3.expected   one line per tensor: our name, GGUF type, and the CRC-32 of the
                         tensor dequantised to little-endian f32 by gguf.quants.dequantize.
  real-270m.expected     the same for every tensor except token_embd of the real
                         gemma-3-270m-q4_k_m.gguf (only when its path is given or found).

`gemini-convert --type f32` writes each tensor as exactly those f32 bytes and records their CRC
in the directory, so comparing the CRC column of `--info` with these files checks the
converter's dequantisers bit for bit.
"""
import os
import sys
import zlib

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "gguf")
REAL_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "src",
                            "gemma-3-270m-q4_k_m.gguf")

D, F, H, HKV, HEAD_DIM, VOCAB, LAYERS = 256, 64, 1, 1, 32, 16, 2

# Where the f16 scale fields sit in each block (byte offsets), so random blocks stay finite.
SCALE_OFFSETS = {
    Q.Q8_0: [0], Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2],
    Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}


def gguf_to_ours(name):
    """GGUF tensor name -> the .gemini name (format.md section 5)."""
    base = name[:-len(".weight")]
    renames = {"attn_output": "attn_out", "post_attention_norm": "post_attn_norm",
               "post_ffw_norm": "post_ffn_norm"}
    parts = base.split(".")
    parts[-1] = renames.get(parts[-1], parts[-1])
    return ".".join(parts)


def random_tensor(rng, qtype, rows, cols):
    """Raw bytes (rows, row_bytes) for a quantised type, or a float array for F32/F16/BF16."""
    if qtype == Q.F32:
        return (rng.standard_normal((rows, cols)) * 0.5 + 1.0).astype(np.float32)
    if qtype == Q.F16:
        return (rng.standard_normal((rows, cols)) * 0.1).astype(np.float16)
    if qtype == Q.BF16:
        bits = (rng.standard_normal((rows, cols)) * 0.1).astype(np.float32).view(np.uint32)
        return (bits >> 16).astype(np.uint16).view(np.uint8).reshape(rows, cols * 2)
    block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for off in SCALE_OFFSETS[qtype]:
        scales = (rng.standard_normal(n_blocks) * 0.01).astype(np.float16)
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // block * block_bytes)


def f32_crc(raw, qtype):
    values = gguf.quants.dequantize(np.ascontiguousarray(raw), qtype)
    return zlib.crc32(np.ascontiguousarray(values, dtype="<f4").tobytes()) & 0xFFFFFFFF


def raw_crc(raw):
    """CRC-32 of the stored bytes: what a copied (not requantised) tensor must keep."""
    return "%08X" % (zlib.crc32(np.ascontiguousarray(raw).tobytes()) & 0xFFFFFFFF)


def build_tiny(path_gguf, path_expected):
    rng = np.random.default_rng(20261204)
    layer_types = [
        # (gguf name, rows, cols, layer 0 type, layer 1 type)
        ("attn_norm", None, D, Q.F32, Q.F32),
        ("attn_q", H * HEAD_DIM, D, Q.Q6_K, Q.F16),
        ("attn_k", HKV * HEAD_DIM, D, Q.Q5_K, Q.BF16),
        ("attn_v", HKV * HEAD_DIM, D, Q.Q8_0, Q.Q4_K),
        ("attn_q_norm", None, HEAD_DIM, Q.F32, Q.F32),
        ("attn_k_norm", None, HEAD_DIM, Q.F32, Q.F32),
        ("attn_output", D, H * HEAD_DIM, Q.Q5_0, Q.Q8_0),
        ("post_attention_norm", None, D, Q.F32, Q.F32),
        ("ffn_norm", None, D, Q.F32, Q.F32),
        ("ffn_gate", F, D, Q.Q4_1, Q.Q6_K),
        ("ffn_up", F, D, Q.Q5_1, Q.Q5_K),
        ("ffn_down", D, F, Q.Q4_0, Q.Q5_0),
        ("post_ffw_norm", None, D, Q.F32, Q.F32),
    ]
    tensors = [("token_embd.weight", VOCAB, D, Q.Q4_K)]
    for layer in range(LAYERS):
        for name, rows, cols, t0, t1 in layer_types:
            tensors.append((f"blk.{layer}.{name}.weight", rows, cols, t0 if layer == 0 else t1))
    tensors.append(("output_norm.weight", None, D, Q.F32))
    tensors.append(("output.weight", VOCAB, D, Q.F16))

    w = gguf.GGUFWriter(path_gguf, "gemma3")
    w.add_name("tiny gguf fixture")
    w.add_context_length(128)
    w.add_embedding_length(D)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(HKV)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1e6)
    w.add_sliding_window(8)
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "\n",
              "\u2581", "a", "b", "ab", "\u2581a", "\u2581ab", "c", "bc", "abc"]
    types = [3, 3, 3, 3, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([-1000.0] * 6 + [-(i + 1.0) for i in range(10)])
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(False)

    lines = []
    for name, rows, cols, qtype in tensors:
        data = random_tensor(rng, qtype, rows if rows else 1, cols)
        if rows is None:
            data = data.reshape(cols)
        if qtype in (Q.F32, Q.F16):
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=qtype)
        lines.append(f"{gguf_to_ours(name)} {qtype.name} {f32_crc(data, qtype):08X} "
                     f"{raw_crc(data)}")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path_expected, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path_gguf} ({os.path.getsize(path_gguf)} bytes) and {path_expected}")


def build_real(path_real, path_expected):
    reader = gguf.GGUFReader(path_real)
    lines = []
    for t in reader.tensors:
        # token_embd has 262144 rows: too slow to dequantise in NumPy for a fixture ("-").
        f32 = "-" if t.name == "token_embd.weight" else f"{f32_crc(t.data, t.tensor_type):08X}"
        lines.append(f"{gguf_to_ours(t.name)} {t.tensor_type.name} {f32} {raw_crc(t.data)}")
    with open(path_expected, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path_expected} ({len(lines)} tensors)")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    build_tiny(os.path.join(OUT_DIR, "tiny-gemma3.gguf"),
               os.path.join(OUT_DIR, "tiny-gemma3.expected"))
    real = sys.argv[1] if len(sys.argv) > 1 else REAL_DEFAULT
    if os.path.exists(real):
        build_real(real, os.path.join(OUT_DIR, "real-270m.expected"))
    else:
        print(f"{real} not found: real-270m.expected not rebuilt")


if __name__ == "__main__":
    main()
