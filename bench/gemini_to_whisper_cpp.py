#!/usr/bin/env python3
"""Writes a Whisper .gemini file as a whisper.cpp model file (the legacy "ggml" layout that
whisper.cpp's own converters write), so that both programs run the very same weight bytes.

    python3 bench/gemini_to_whisper_cpp.py IN.gemini MEL_FILTERS.npz OUT.bin

Only the Python standard library is used; IN.gemini is read by tools/gemini_file.py. Every
tensor's bytes are copied unchanged: f32, f16 and q8_0 blocks are laid out alike in both
formats (q8_0: an f16 scale, then 32 int8), and both store a [rows, cols] matrix row after
row. MEL_FILTERS.npz is openai-whisper's
whisper/assets/mel_filters.npz (array "mel_80", 80 x 201 float32), which whisper.cpp reads
from the model file; bench/compare_whisper_cpp.sh takes it from the openai-whisper sdist.

whisper.cpp's file, as its loader (src/whisper.cpp, whisper_model_load) reads it, all
little-endian:
  u32 magic 0x67676d6c ("ggml")
  i32 n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
      n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype
  i32 n_mel, n_fft; f32 filters[n_mel * n_fft]
  i32 n_tokens; n_tokens x (u32 length, raw bytes): the ordinary pieces, ids 0 .. n_tokens-1;
      the loader names the special tokens above them itself
  tensors: i32 n_dims, i32 name length, i32 ggml type; i32 ne[n_dims] (innermost first);
      name bytes; data
ftype is 1 for f16 files; for quantised ones it is the ggml file type plus 1000 x the
quantisation version (2), e.g. 2007 for q8_0. Conv weights are f16 in every quantised file,
biases, norms and position tables f32 (as whisper.cpp's loader expects).
"""
import ast
import io
import os
import struct
import sys
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from gemini_file import TYPE_NAMES, read_gemini  # noqa: E402  (tools/gemini_file.py)

GGML_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8}
GGML_FILE_TYPES = {"f16": 1, "q4_0": 2, "q8_0": 7}

# .gemini tensor names (format.md §7.2) -> whisper.cpp's (openai-whisper's state_dict names).
TOP_NAMES = {"enc.conv1": "encoder.conv1.weight", "enc.conv1_b": "encoder.conv1.bias",
             "enc.conv2": "encoder.conv2.weight", "enc.conv2_b": "encoder.conv2.bias",
             "enc.pos": "encoder.positional_embedding",
             "enc.output_norm": "encoder.ln_post.weight",
             "enc.output_norm_b": "encoder.ln_post.bias",
             "token_embd": "decoder.token_embedding.weight",
             "pos_embd": "decoder.positional_embedding",
             "output_norm": "decoder.ln.weight", "output_norm_b": "decoder.ln.bias"}
LAYER_NAMES = {"attn_norm": "attn_ln.weight", "attn_norm_b": "attn_ln.bias",
               "attn_q": "attn.query.weight", "attn_q_b": "attn.query.bias",
               "attn_k": "attn.key.weight", "attn_v": "attn.value.weight",
               "attn_v_b": "attn.value.bias", "attn_out": "attn.out.weight",
               "attn_out_b": "attn.out.bias",
               "cross_norm": "cross_attn_ln.weight", "cross_norm_b": "cross_attn_ln.bias",
               "cross_q": "cross_attn.query.weight", "cross_q_b": "cross_attn.query.bias",
               "cross_k": "cross_attn.key.weight", "cross_v": "cross_attn.value.weight",
               "cross_v_b": "cross_attn.value.bias", "cross_out": "cross_attn.out.weight",
               "cross_out_b": "cross_attn.out.bias",
               "ffn_norm": "mlp_ln.weight", "ffn_norm_b": "mlp_ln.bias",
               "ffn_up": "mlp.0.weight", "ffn_up_b": "mlp.0.bias",
               "ffn_down": "mlp.2.weight", "ffn_down_b": "mlp.2.bias"}


def read_mel_filters(path, n_mels):
    """The float32 bytes and shape of mel_<n_mels> in openai-whisper's mel_filters.npz."""
    with zipfile.ZipFile(path) as archive:
        npy = archive.read(f"mel_{n_mels}.npy")
    stream = io.BytesIO(npy)
    if stream.read(6) != b"\x93NUMPY":
        sys.exit(f"{path}: mel_{n_mels} is not a .npy array")
    major = stream.read(2)[0]
    length_format = "<H" if major == 1 else "<I"
    header_length = struct.unpack(length_format, stream.read(struct.calcsize(length_format)))[0]
    header = ast.literal_eval(stream.read(header_length).decode("latin-1"))
    if header["descr"] != "<f4" or header["fortran_order"] or len(header["shape"]) != 2:
        sys.exit(f"{path}: mel_{n_mels} is not a C-ordered float32 matrix")
    rows, cols = header["shape"]
    values = stream.read(rows * cols * 4)
    if len(values) != rows * cols * 4:
        sys.exit(f"{path}: mel_{n_mels} is truncated")
    return values, rows, cols


def whisper_cpp_name(name):
    if name in TOP_NAMES:
        return TOP_NAMES[name]
    parts = name.split(".")
    if parts[0] == "enc" and parts[1] == "blk" and parts[3] in LAYER_NAMES:
        return f"encoder.blocks.{parts[2]}.{LAYER_NAMES[parts[3]]}"
    if parts[0] == "blk" and parts[2] in LAYER_NAMES:
        return f"decoder.blocks.{parts[1]}.{LAYER_NAMES[parts[2]]}"
    sys.exit(f"no whisper.cpp name for tensor {name}")


def ggml_shape(name, dims, n_mels, n_state):
    """ne[], innermost first: whisper.cpp's conv weights are [3, in, out], biases [1, out]."""
    if name == "enc.conv1":
        return [3, n_mels, n_state]
    if name == "enc.conv2":
        return [3, n_state, n_state]
    if name in ("enc.conv1_b", "enc.conv2_b"):
        return [1, n_state]
    return list(reversed(dims))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    source, filters_path, out_path = sys.argv[1:]
    meta, table = read_gemini(source)
    if meta.get("general.architecture") != b"whisper":
        sys.exit(f"{source}: not a Whisper model")
    tensors = []
    for name, (type_id, dims, raw) in table.items():
        if TYPE_NAMES.get(type_id) not in GGML_TYPES:
            sys.exit(f"{source}: {name} is of type {type_id}, which whisper.cpp cannot read")
        tensors.append((name, TYPE_NAMES[type_id], dims, raw))

    n_state, n_mels = meta["model.hidden_size"], meta["whisper.n_mels"]
    matrix_types = {t for name, t, dims, _ in tensors if len(dims) == 2 and name != "enc.pos"
                    and name != "pos_embd" and not name.startswith("enc.conv")}
    weight_type = matrix_types.pop() if len(matrix_types) == 1 else None
    if weight_type not in GGML_FILE_TYPES:
        sys.exit(f"{source}: the matrices must share one type of f16, q8_0, q4_0")
    for name, type_name, _, _ in tensors:
        if name in ("enc.conv1", "enc.conv2") and type_name != "f16":
            sys.exit(f"{source}: {name} is {type_name}; whisper.cpp wants f16 convolutions")
    file_type = GGML_FILE_TYPES[weight_type] + (0 if weight_type == "f16" else 2000)
    hparams = [meta["model.vocab_size"], meta["whisper.audio_ctx"], n_state,
               meta["whisper.encoder_heads"], meta["whisper.encoder_layers"],
               meta["model.max_position"], n_state, meta["model.num_heads"],
               meta["model.num_layers"], n_mels, file_type]

    filters, filter_rows, filter_cols = read_mel_filters(filters_path, n_mels)
    pieces = meta["tokenizer.pieces"]
    ordinary = meta["tokenizer.eos_id"]     # the pieces below <|endoftext|>, as whisper.cpp's files

    with open(out_path, "wb") as out:
        out.write(struct.pack("<I", 0x67676D6C))
        out.write(struct.pack("<11i", *hparams))
        out.write(struct.pack("<2i", filter_rows, filter_cols))
        out.write(filters)
        out.write(struct.pack("<i", ordinary))
        for piece in pieces[:ordinary]:
            out.write(struct.pack("<I", len(piece)) + piece)
        for name, type_name, dims, raw in tensors:
            shape = ggml_shape(name, dims, n_mels, n_state)
            encoded = whisper_cpp_name(name).encode()
            out.write(struct.pack("<3i", len(shape), len(encoded), GGML_TYPES[type_name]))
            out.write(struct.pack(f"<{len(shape)}i", *shape))
            out.write(encoded)
            out.write(raw)
    print(f"{out_path}: {len(tensors)} tensors ({weight_type}, ggml file type {file_type}), "
          f"{ordinary} pieces, mel filters {filter_rows} x {filter_cols}")


if __name__ == "__main__":
    main()
