#!/usr/bin/env python3
"""Rebuilds the small seed corpora under tests/fuzz/corpus/ (committed; rerun only to refresh).

    .venv-tok/bin/python tests/fuzz/make_seeds.py [path/to/gemini-convert]

Seeds come from the project's fixtures (tests/fixtures, tests/vision) and from tiny files made
here: a 2-layer gemma3 checkpoint (safetensors + config.json) converted to .gemini by the
project's own converter, two tiny GGUF files (gguf-py) and short WAV files of each encoding.
Everything together stays well under 300 KB.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
RNG = np.random.default_rng(4242)


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def copy(target, src, name=None):
    with open(os.path.join(ROOT, src), "rb") as f:
        out(target, name or os.path.basename(src), f.read())


# ---- A tiny gemma3 checkpoint ------------------------------------------------------------

D, F, H, HKV, HD, VOCAB, LAYERS = 32, 32, 2, 1, 16, 64, 2
CONFIG = {
    "model_type": "gemma3_text", "hidden_size": D, "intermediate_size": F,
    "num_hidden_layers": LAYERS, "num_attention_heads": H, "num_key_value_heads": HKV,
    "head_dim": HD, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
    "query_pre_attn_scalar": HD, "sliding_window": 4, "vocab_size": VOCAB,
    "layer_types": ["sliding_attention", "full_attention"], "tie_word_embeddings": True,
    "rope_parameters": {"full_attention": {"rope_theta": 1e6, "rope_type": "linear",
                                           "factor": 8.0},
                        "sliding_attention": {"rope_theta": 1e4, "rope_type": "default"}},
}


def hf_tensors():
    shapes = {"model.embed_tokens.weight": (VOCAB, D), "model.norm.weight": (D,)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (D,), p + "self_attn.q_proj.weight": (H * HD, D),
            p + "self_attn.k_proj.weight": (HKV * HD, D),
            p + "self_attn.v_proj.weight": (HKV * HD, D),
            p + "self_attn.q_norm.weight": (HD,), p + "self_attn.k_norm.weight": (HD,),
            p + "self_attn.o_proj.weight": (D, H * HD),
            p + "post_attention_layernorm.weight": (D,),
            p + "pre_feedforward_layernorm.weight": (D,),
            p + "mlp.gate_proj.weight": (F, D), p + "mlp.up_proj.weight": (F, D),
            p + "mlp.down_proj.weight": (D, F), p + "post_feedforward_layernorm.weight": (D,),
        })
    return shapes


# A Whisper small enough for the fuzzer to run its encoder on every input: 16 mel bins, 32
# encoder positions (64 frames), d 32, one layer each side.
WHISPER_CONFIG = {
    "model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"],
    "vocab_size": 64, "num_mel_bins": 16, "d_model": 32, "encoder_layers": 1,
    "encoder_attention_heads": 2, "decoder_layers": 1, "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32, "decoder_ffn_dim": 32, "max_source_positions": 32,
    "max_target_positions": 16, "activation_function": "gelu", "scale_embedding": False,
    "tie_word_embeddings": True, "decoder_start_token_id": 1, "eos_token_id": 2,
    "pad_token_id": 0, "bos_token_id": 1,
}


def whisper_tensors():
    c = WHISPER_CONFIG
    d, f, mels = c["d_model"], c["encoder_ffn_dim"], c["num_mel_bins"]
    shapes = {"model.encoder.conv1.weight": (d, mels, 3), "model.encoder.conv1.bias": (d,),
              "model.encoder.conv2.weight": (d, d, 3), "model.encoder.conv2.bias": (d,),
              "model.encoder.embed_positions.weight": (c["max_source_positions"], d),
              "model.encoder.layer_norm.weight": (d,), "model.encoder.layer_norm.bias": (d,),
              "model.decoder.embed_tokens.weight": (c["vocab_size"], d),
              "model.decoder.embed_positions.weight": (c["max_target_positions"], d),
              "model.decoder.layer_norm.weight": (d,), "model.decoder.layer_norm.bias": (d,)}
    for side, attentions in (("encoder", ("self_attn",)),
                             ("decoder", ("self_attn", "encoder_attn"))):
        p = f"model.{side}.layers.0."
        for a in attentions:
            shapes[p + a + "_layer_norm.weight"] = (d,)
            shapes[p + a + "_layer_norm.bias"] = (d,)
            for proj in ("q", "k", "v", "out"):
                shapes[p + f"{a}.{proj}_proj.weight"] = (d, d)
                if proj != "k":
                    shapes[p + f"{a}.{proj}_proj.bias"] = (d,)
        shapes.update({p + "final_layer_norm.weight": (d,), p + "final_layer_norm.bias": (d,),
                       p + "fc1.weight": (f, d), p + "fc1.bias": (f,),
                       p + "fc2.weight": (d, f), p + "fc2.bias": (d,)})
    return shapes


def safetensors_bytes(dtype, tensors=None, rng=None):
    header, blobs, offset = {}, [], 0
    for name, shape in (tensors or hf_tensors()).items():
        values = ((rng or RNG).standard_normal(shape) * 0.1).astype(np.float32)
        if dtype == "BF16":
            raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raw = values.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def make_checkpoint(convert):
    work = tempfile.mkdtemp(prefix="gemini-seeds-")
    hf = os.path.join(work, "hf")
    os.makedirs(hf)
    st = safetensors_bytes("BF16")
    with open(os.path.join(hf, "model.safetensors"), "wb") as f:
        f.write(st)
    with open(os.path.join(hf, "config.json"), "w") as f:
        json.dump(CONFIG, f)
    shutil.copy(os.path.join(ROOT, "tests/fixtures/convert/tokenizer.model"), hf)
    out("fuzz_safetensors", "tiny-bf16.safetensors", st)
    out("fuzz_json_config", "tiny-gemma3.json", json.dumps(CONFIG, indent=1).encode())
    for t in ("q8_0", "q4_0"):
        dst = os.path.join(work, f"tiny-{t}.gemini")
        subprocess.run([convert, "-q", "--type", t, "-o", dst, hf], check=True)
        with open(dst, "rb") as f:
            out("fuzz_gemini_model", f"tiny-{t}.gemini", f.read())
    # Whisper (written here, tiny), PaliGemma and Gemma 3 vision (the fixtures): the loader's
    # other paths and the encoders
    whisper = os.path.join(work, "whisper")
    os.makedirs(whisper)
    with open(os.path.join(whisper, "model.safetensors"), "wb") as f:
        # its own generator, so that the other seeds stay as they were
        f.write(safetensors_bytes("F32", whisper_tensors(), np.random.default_rng(7)))
    with open(os.path.join(whisper, "config.json"), "w") as f:
        json.dump(WHISPER_CONFIG, f)
    for name, src, t in (("whisper-f16", whisper, "f16"),
                         ("paligemma-q8_0", "tests/fixtures/paligemma/paligemma/hf", "q8_0"),
                         ("gemma3-vision-q8_0", "tests/fixtures/gemma3-vision/hf", "q8_0")):
        dst = os.path.join(work, f"{name}.gemini")
        subprocess.run([convert, "-q", "--type", t, "-o", dst, os.path.join(ROOT, src)],
                       check=True, stderr=subprocess.DEVNULL)
        with open(dst, "rb") as f:
            out("fuzz_gemini_model", f"{name}.gemini", f.read())
    shutil.rmtree(work)
    return CONFIG


# ---- GGUF ------------------------------------------------------------------------------

# Byte offsets of the f16 scale fields of each block type, kept finite in random blocks.
SCALE_OFFSETS = {Q.Q8_0: [0], Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2],
                 Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}


def quant_blocks(qtype, rows, cols):
    if qtype == Q.F32:
        return (RNG.standard_normal((rows, cols)) * 0.5 + 1).astype(np.float32)
    if qtype == Q.F16:
        return (RNG.standard_normal((rows, cols)) * 0.1).astype(np.float16)
    block, nbytes = gguf.GGML_QUANT_SIZES[qtype]
    n = rows * cols // block
    raw = RNG.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    for off in SCALE_OFFSETS[qtype]:
        scale = (RNG.standard_normal(n) * 0.01).astype(np.float16)
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(n, 2)
    return raw.reshape(rows, cols // block * nbytes)


def write_gguf(path, d, f, hd, types, vocab_tokens):
    w = gguf.GGUFWriter(path, "gemma3")
    w.add_context_length(64)
    w.add_embedding_length(d)
    w.add_block_count(1)
    w.add_feed_forward_length(f)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1e6)
    w.add_sliding_window(4)
    w.add_tokenizer_model("llama")
    w.add_token_list(vocab_tokens)
    w.add_token_scores([-(i + 1.0) for i in range(len(vocab_tokens))])
    w.add_token_types([3, 3, 3, 2] + [1] * (len(vocab_tokens) - 4))
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_add_bos_token(True)
    shapes = [("token_embd.weight", len(vocab_tokens), d), ("blk.0.attn_norm.weight", None, d),
              ("blk.0.attn_q.weight", hd, d), ("blk.0.attn_k.weight", hd, d),
              ("blk.0.attn_v.weight", hd, d), ("blk.0.attn_q_norm.weight", None, hd),
              ("blk.0.attn_k_norm.weight", None, hd), ("blk.0.attn_output.weight", d, hd),
              ("blk.0.post_attention_norm.weight", None, d), ("blk.0.ffn_norm.weight", None, d),
              ("blk.0.ffn_gate.weight", f, d), ("blk.0.ffn_up.weight", f, d),
              ("blk.0.ffn_down.weight", d, f), ("blk.0.post_ffw_norm.weight", None, d),
              ("output_norm.weight", None, d)]
    k = 0
    for name, rows, cols in shapes:
        if rows is None:
            w.add_tensor(name, quant_blocks(Q.F32, 1, cols).reshape(cols))
            continue
        qtype = types[k % len(types)]
        k += 1
        if qtype not in (Q.F32, Q.F16) and cols % gguf.GGML_QUANT_SIZES[qtype][0] != 0:
            qtype = Q.Q8_0
        data = quant_blocks(qtype, rows, cols)
        if qtype in (Q.F32, Q.F16):
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_gguf():
    work = tempfile.mkdtemp(prefix="gemini-seeds-")
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "\u2581", "a", "b", "ab", "\u2581a", "c"]
    small = os.path.join(work, "small.gguf")
    write_gguf(small, 32, 32, 32, [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.F16, Q.F32], tokens)
    kq = os.path.join(work, "kquants.gguf")
    write_gguf(kq, 256, 32, 32, [Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q8_0], tokens[:6])
    for p in (small, kq):
        with open(p, "rb") as f:
            out("fuzz_gguf", os.path.basename(p), f.read())
    shutil.rmtree(work)


# ---- WAV -------------------------------------------------------------------------------

def wav(fmt, channels, rate, bits, frames, extensible=False, extra_chunk=False):
    block = channels * bits // 8
    if extensible:
        fmt_body = struct.pack("<HHIIHHHHIH14s", 0xFFFE, channels, rate, rate * block, block,
                               bits, 22, bits, 0, fmt, b"\x00\x00\x00\x00\x10\x00\x80\x00"
                               b"\x00\xaa\x00\x38\x9b\x71")
    else:
        fmt_body = struct.pack("<HHIIHH", fmt, channels, rate, rate * block, block, bits)
    data = bytes(RNG.integers(0, 256, size=frames * block, dtype=np.uint8))
    if fmt == 3:
        vals = (np.sin(np.arange(frames * channels) * 0.3)).astype("<f4" if bits == 32 else "<f8")
        data = vals.tobytes()
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
    if extra_chunk:
        chunks += b"LIST" + struct.pack("<I", 5) + b"abcde\x00"
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def make_wav():
    out("fuzz_wav", "u8-mono-8k.wav", wav(1, 1, 8000, 8, 300))
    out("fuzz_wav", "s16-stereo-44k.wav", wav(1, 2, 44100, 16, 400, extra_chunk=True))
    out("fuzz_wav", "s24-mono-48k.wav", wav(1, 1, 48000, 24, 300))
    out("fuzz_wav", "s32-ext-16k.wav", wav(1, 1, 16000, 32, 300, extensible=True))
    out("fuzz_wav", "f32-mono-22k.wav", wav(3, 1, 22050, 32, 300))
    out("fuzz_wav", "f64-stereo-16k.wav", wav(3, 2, 16000, 64, 200))


# ---- Fixtures --------------------------------------------------------------------------

def make_fixture_seeds():
    copy("fuzz_spm_model", "tests/fixtures/convert/tokenizer.model")
    copy("fuzz_tokenizer_json", "tests/fixtures/convert/tokenizer.json")
    for family in ("gemma1", "gemma2", "gemma3"):
        copy("fuzz_json_config", f"tests/fixtures/{family}/hf/config.json", family + ".json")
    copy("fuzz_json_config", "tests/fixtures/gemma3/rope_linear8/hf/config.json",
         "gemma3-rope-linear8.json")
    for name in ("grey1.png", "pal2_i.png", "grey8_trns.png", "greya8.png", "rgb8.png",
                 "rgb8_stored.png", "grey16.png", "pal8.png"):
        copy("fuzz_png", "tests/vision/" + name)
    for name in ("base420.jpg", "grey_prog.jpg", "exif6.jpg", "restart420.jpg", "prog444.jpg",
                 "cjpeg411.jpg", "cmyk.jpg", "adobe_rgb.jpg"):
        copy("fuzz_jpeg", "tests/vision/" + name)
    for name in ("pal8.bmp", "rgb24_topdown.bmp", "rgb32.bmp", "rgba32_v5.bmp"):
        copy("fuzz_bmp", "tests/vision/" + name)
    for name in ("grey.pgm", "rgb.ppm"):
        copy("fuzz_ppm", "tests/vision/" + name)
    out("fuzz_ppm", "p6-max65535-2x2.ppm", b"P6\n# c\n2 2\n65535\n" + bytes(range(24)))
    out("fuzz_bmp", "pal1-4x2.bmp", tiny_bmp())
    for name in ("c420jpeg.y4m", "c422_interlaced.y4m", "c444.y4m", "mono.y4m"):
        copy("fuzz_y4m", "tests/vision/y4m/" + name)
    out("fuzz_y4m", "params-3x3.y4m", b"YUV4MPEG2 W3 H3 F30000:1001 Im A10:11 C420mpeg2 "
        b"XCOLORRANGE=FULL Zx\n" + b"".join(b"FRAME It XF=%d\n" % i + bytes(range(i, i + 17))
                                             for i in range(3)))
    seg = b"".join(b"<seg%03d>" % i for i in list(range(15)) + [127])
    out("fuzz_detections", "two-boxes", b"<loc0123><loc0045><loc0987><loc0999> cat ; "
        b"<loc0000><loc0512><loc1023><loc1023> traffic light")
    out("fuzz_detections", "mask", b"<loc0100><loc0200><loc0300><loc0400> " + seg + b" wall")
    out("fuzz_detections", "malformed", b"a caption <loc12><loc9999><loc0001><loc0002>"
        b"<loc0003><seg999> x ;; <loc0004")
    texts = [b"\x00Hello world", b"\x05  two  spaces\tand\ttabs\n", b"\x02<bos>he<eos>llo",
             b"\x07\xe2\x96\x81abc \xc3\xa9t\xc3\xa9 \xff\xfe", b"\x0b<start_of_turn>user\nhi"]
    for i, t in enumerate(texts):
        out("fuzz_tok_encode", f"text{i}", t)


def tiny_bmp():
    pixels = bytes([0b10100000, 0, 0, 0, 0b01010000, 0, 0, 0])
    palette = bytes([0, 0, 0, 0, 255, 255, 255, 0])
    info = struct.pack("<IiiHHIIiiII", 40, 4, 2, 1, 1, 0, len(pixels), 2835, 2835, 2, 0)
    offset = 14 + len(info) + len(palette)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return head + info + palette + pixels


def main():
    convert = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "gemini-convert")
    make_checkpoint(convert)
    make_gguf()
    make_wav()
    make_fixture_seeds()


if __name__ == "__main__":
    main()
