#!/usr/bin/env python3
"""Checks a Whisper .gemini file against the checkpoint it was converted from.

    /tmp/fxenv/bin/python tools/check_whisper_convert.py OUT.gemini SOURCE_DIR

SOURCE_DIR is a CTranslate2 directory (model.bin, optional config.json and tokenizer.json) or
a Hugging Face one (config.json, model.safetensors or an index with shards, optional
generation_config.json and tokenizer.json). Everything is read with code of its own: the
.gemini file from format.md (tools/gemini_file.py), model.bin from CTranslate2's layout (u32
version, string spec, u32 revision, variables, aliases), safetensors from its JSON header, and
tokenizer.json through the `tokenizers` library plus GPT-2's byte-to-unicode table.

For every tensor of format.md §7 the expected values are built from the source (the fused
CTranslate2 projections split by rows, the conv stems reshaped) and compared with the file:
f32 / f16 / bf16 tensors must equal the source rounded to that type, q8_0 / q4_0 tensors must
equal a NumPy re-quantisation of the source byte for byte; the largest absolute difference
from the source is reported for each type. Metadata: sizes, lists, special ids, languages and
the tokenizer (raw-byte pieces, types, merges as id pairs). Exit status 0 when all agree.
"""
import json
import os
import struct
import sys

import numpy as np

from gemini_file import TYPE_NAMES, Reader, read_gemini  # tools/gemini_file.py


def f16_bits_to_f32(bits):
    return bits.view(np.float16).astype(np.float32)


def decode(ttype, dims, raw):
    """The tensor's values as float32, shape dims."""
    if ttype == 0:
        values = np.frombuffer(raw, "<f4")
    elif ttype == 1:
        values = np.frombuffer(raw, "<f2").astype(np.float32)
    elif ttype == 2:
        values = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    elif ttype == 3:
        blocks = np.frombuffer(raw, np.uint8).reshape(-1, 34)
        d = f16_bits_to_f32(blocks[:, :2].copy().view("<u2")[:, 0])
        values = (d[:, None] * blocks[:, 2:].view(np.int8).astype(np.float32)).ravel()
    elif ttype == 4:
        blocks = np.frombuffer(raw, np.uint8).reshape(-1, 18)
        d = f16_bits_to_f32(blocks[:, :2].copy().view("<u2")[:, 0])
        qs = blocks[:, 2:]
        q = np.concatenate([(qs & 0x0F), (qs >> 4)], axis=1).astype(np.int32) - 8
        values = (d[:, None] * q.astype(np.float32)).ravel()
    else:
        raise ValueError(f"tensor type {ttype}")
    return values.reshape(dims)


def round_half_away(v):
    a = np.abs(v)
    r = np.floor(a)
    r += (a - r) >= np.float32(0.5)
    return np.copysign(r, v)


def quantize(ttype, x):
    """ggml's reference q8_0 / q4_0 quantisation of float32 rows x (format.md §3), as bytes."""
    blocks = x.astype(np.float32).reshape(-1, 32)
    if ttype == 3:
        amax = np.abs(blocks).max(axis=1)
        d = amax / np.float32(127)
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), np.float32(0))
        q = round_half_away(blocks * inv[:, None].astype(np.float32)).astype(np.int8)
        out = np.empty((blocks.shape[0], 34), np.uint8)
        out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
        out[:, 2:] = q.view(np.uint8)
        return out.tobytes()
    index = np.abs(blocks).argmax(axis=1)
    m = blocks[np.arange(blocks.shape[0]), index]
    d = m / np.float32(-8)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), np.float32(0)).astype(np.float32)
    q = np.minimum(15, np.trunc(blocks * inv[:, None] + np.float32(8.5))).astype(np.uint8)
    out = np.empty((blocks.shape[0], 18), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def as_type(ttype, x):
    """Source values (float32) as the file's type would store them, back in float32."""
    x = x.astype(np.float32)
    if ttype == 0:
        return x
    if ttype == 1:
        return x.astype(np.float16).astype(np.float32)
    if ttype == 2:
        bits = x.view(np.uint32).astype(np.uint64)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint32)
        rounded = np.where(np.isnan(x), (bits >> 16).astype(np.uint32) | 0x40, rounded)
        return (rounded.astype(np.uint32) << 16).view(np.float32)
    raise ValueError(ttype)


# ---- CTranslate2 model.bin ---------------------------------------------------------------------

CT2_DTYPES = {0: "<f4", 1: "<i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "bf16"}


def read_ct2(path):
    data = open(path, "rb").read()
    r = Reader(data)

    def string():
        n = r.take("<H")
        value = data[r.pos:r.pos + n]
        r.pos += n
        assert value.endswith(b"\0")
        return value[:-1].decode()

    version = r.take("<I")
    spec, revision = string(), r.take("<I")
    variables = {}
    for _ in range(r.take("<I")):
        name = string()
        rank = r.take("<B")
        dims = [r.take("<I") for _ in range(rank)]
        dtype, n_bytes = r.take("<B"), r.take("<I")
        raw = data[r.pos:r.pos + n_bytes]
        r.pos += n_bytes
        if CT2_DTYPES[dtype] == "bf16":
            values = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            values = np.frombuffer(raw, CT2_DTYPES[dtype])
        variables[name] = values.reshape(dims)
    aliases = {}
    for _ in range(r.take("<I")):
        alias, target = string(), string()
        aliases[alias] = target
        variables[alias] = variables[target]
    assert r.pos == len(data), "bytes after the alias table"
    return version, spec, revision, variables, aliases


def ct2_to_hf(variables):
    """CTranslate2 WhisperSpec variables -> Hugging Face Whisper tensors (float32)."""
    hf = {}
    zero_parts = []

    def put(name, value):
        hf[name] = np.asarray(value, np.float32)

    top = {"encoder/conv1/weight": "model.encoder.conv1.weight",
           "encoder/conv1/bias": "model.encoder.conv1.bias",
           "encoder/conv2/weight": "model.encoder.conv2.weight",
           "encoder/conv2/bias": "model.encoder.conv2.bias",
           "encoder/position_encodings/encodings": "model.encoder.embed_positions.weight",
           "encoder/layer_norm/gamma": "model.encoder.layer_norm.weight",
           "encoder/layer_norm/beta": "model.encoder.layer_norm.bias",
           "decoder/embeddings/weight": "model.decoder.embed_tokens.weight",
           "decoder/position_encodings/encodings": "model.decoder.embed_positions.weight",
           "decoder/layer_norm/gamma": "model.decoder.layer_norm.weight",
           "decoder/layer_norm/beta": "model.decoder.layer_norm.bias",
           "decoder/projection/weight": "proj_out.weight"}
    for ct2, name in top.items():
        if ct2 in variables:
            put(name, variables[ct2])
    for stack in ("encoder", "decoder"):
        i = 0
        while f"{stack}/layer_{i}/self_attention/linear_0/weight" in variables:
            v = lambda rest: variables[f"{stack}/layer_{i}/{rest}"]  # noqa: E731
            p = f"model.{stack}.layers.{i}."
            put(p + "self_attn_layer_norm.weight", v("self_attention/layer_norm/gamma"))
            put(p + "self_attn_layer_norm.bias", v("self_attention/layer_norm/beta"))
            q, k, w = np.split(v("self_attention/linear_0/weight"), 3)
            qb, kb, wb = np.split(v("self_attention/linear_0/bias"), 3)
            zero_parts.append((f"{stack}/layer_{i}/self_attention/linear_0/bias[k]", kb))
            put(p + "self_attn.q_proj.weight", q)
            put(p + "self_attn.k_proj.weight", k)
            put(p + "self_attn.v_proj.weight", w)
            put(p + "self_attn.q_proj.bias", qb)
            put(p + "self_attn.v_proj.bias", wb)
            put(p + "self_attn.out_proj.weight", v("self_attention/linear_1/weight"))
            put(p + "self_attn.out_proj.bias", v("self_attention/linear_1/bias"))
            if stack == "decoder":
                put(p + "encoder_attn_layer_norm.weight", v("attention/layer_norm/gamma"))
                put(p + "encoder_attn_layer_norm.bias", v("attention/layer_norm/beta"))
                put(p + "encoder_attn.q_proj.weight", v("attention/linear_0/weight"))
                put(p + "encoder_attn.q_proj.bias", v("attention/linear_0/bias"))
                k, w = np.split(v("attention/linear_1/weight"), 2)
                kb, wb = np.split(v("attention/linear_1/bias"), 2)
                zero_parts.append((f"{stack}/layer_{i}/attention/linear_1/bias[k]", kb))
                put(p + "encoder_attn.k_proj.weight", k)
                put(p + "encoder_attn.v_proj.weight", w)
                put(p + "encoder_attn.v_proj.bias", wb)
                put(p + "encoder_attn.out_proj.weight", v("attention/linear_2/weight"))
                put(p + "encoder_attn.out_proj.bias", v("attention/linear_2/bias"))
            put(p + "final_layer_norm.weight", v("ffn/layer_norm/gamma"))
            put(p + "final_layer_norm.bias", v("ffn/layer_norm/beta"))
            put(p + "fc1.weight", v("ffn/linear_0/weight"))
            put(p + "fc1.bias", v("ffn/linear_0/bias"))
            put(p + "fc2.weight", v("ffn/linear_1/weight"))
            put(p + "fc2.bias", v("ffn/linear_1/bias"))
            i += 1
    return hf, zero_parts


# ---- safetensors ---------------------------------------------------------------------------

ST_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "bf16"}


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack_from("<Q", data)[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[8 + n + begin:8 + n + end]
        if ST_DTYPES[info["dtype"]] == "bf16":
            values = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            values = np.frombuffer(raw, ST_DTYPES[info["dtype"]])
        out[name] = values.reshape(info["shape"]).astype(np.float32)
    return out


def read_hf(directory):
    index = os.path.join(directory, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        for shard in sorted(set(json.load(open(index))["weight_map"].values())):
            tensors.update(read_safetensors(os.path.join(directory, shard)))
    else:
        tensors = read_safetensors(os.path.join(directory, "model.safetensors"))
    if "model.decoder.embed_tokens.weight" not in tensors:   # WhisperModel: no "model." prefix
        tensors = {("model." + k if k.startswith(("encoder.", "decoder.")) else k): v
                   for k, v in tensors.items()}
    return tensors


# ---- the tensors of format.md §7.2 -----------------------------------------------------------

LAYER = [("attn_norm", "self_attn_layer_norm.weight"), ("attn_norm_b", "self_attn_layer_norm.bias"),
         ("attn_q", "self_attn.q_proj.weight"), ("attn_q_b", "self_attn.q_proj.bias"),
         ("attn_k", "self_attn.k_proj.weight"), ("attn_v", "self_attn.v_proj.weight"),
         ("attn_v_b", "self_attn.v_proj.bias"), ("attn_out", "self_attn.out_proj.weight"),
         ("attn_out_b", "self_attn.out_proj.bias")]
CROSS = [("cross_norm", "encoder_attn_layer_norm.weight"),
         ("cross_norm_b", "encoder_attn_layer_norm.bias"),
         ("cross_q", "encoder_attn.q_proj.weight"), ("cross_q_b", "encoder_attn.q_proj.bias"),
         ("cross_k", "encoder_attn.k_proj.weight"), ("cross_v", "encoder_attn.v_proj.weight"),
         ("cross_v_b", "encoder_attn.v_proj.bias"), ("cross_out", "encoder_attn.out_proj.weight"),
         ("cross_out_b", "encoder_attn.out_proj.bias")]
FFN = [("ffn_norm", "final_layer_norm.weight"), ("ffn_norm_b", "final_layer_norm.bias"),
       ("ffn_up", "fc1.weight"), ("ffn_up_b", "fc1.bias"), ("ffn_down", "fc2.weight"),
       ("ffn_down_b", "fc2.bias")]


def expected_tensors(hf, enc_layers, dec_layers):
    """(our name, values, kind) in file order; kind: matrix, vector (f32) or stem."""
    out = []
    m = "model."
    conv1, conv2 = hf[m + "encoder.conv1.weight"], hf[m + "encoder.conv2.weight"]
    out.append(("enc.conv1", conv1.reshape(conv1.shape[0], -1), "stem"))
    out.append(("enc.conv1_b", hf[m + "encoder.conv1.bias"], "vector"))
    out.append(("enc.conv2", conv2.reshape(conv2.shape[0], -1), "stem"))
    out.append(("enc.conv2_b", hf[m + "encoder.conv2.bias"], "vector"))
    out.append(("enc.pos", hf[m + "encoder.embed_positions.weight"], "vector"))
    for i in range(enc_layers):
        for ours, name in LAYER + FFN:
            value = hf[f"{m}encoder.layers.{i}.{name}"]
            out.append((f"enc.blk.{i}.{ours}", value, "matrix" if value.ndim == 2 else "vector"))
    out.append(("enc.output_norm", hf[m + "encoder.layer_norm.weight"], "vector"))
    out.append(("enc.output_norm_b", hf[m + "encoder.layer_norm.bias"], "vector"))
    out.append(("token_embd", hf[m + "decoder.embed_tokens.weight"], "matrix"))
    out.append(("pos_embd", hf[m + "decoder.embed_positions.weight"], "vector"))
    for i in range(dec_layers):
        for ours, name in LAYER + CROSS + FFN:
            value = hf[f"{m}decoder.layers.{i}.{name}"]
            out.append((f"blk.{i}.{ours}", value, "matrix" if value.ndim == 2 else "vector"))
    out.append(("output_norm", hf[m + "decoder.layer_norm.weight"], "vector"))
    out.append(("output_norm_b", hf[m + "decoder.layer_norm.bias"], "vector"))
    return out


# ---- tokenizer ---------------------------------------------------------------------------------

def byte_decoder():
    """GPT-2's byte-to-unicode table, inverted: character -> byte."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(0x100 + extra)] = b
            extra += 1
    return chars


def expected_tokenizer(path):
    """pieces (raw bytes), types, merges (id pairs) and the id of each piece text."""
    spec = json.load(open(path, encoding="utf-8"))
    table = byte_decoder()
    vocab = spec["model"]["vocab"]
    n = max(list(vocab.values()) + [t["id"] for t in spec["added_tokens"]]) + 1
    pieces, types = [None] * n, [1] * n
    for text, i in vocab.items():
        pieces[i] = bytes(table[c] for c in text)
    for t in spec["added_tokens"]:
        pieces[t["id"]] = t["content"].encode()
        types[t["id"]] = 3 if t["special"] else 4
    by_text = {}
    for i, p in enumerate(pieces):
        by_text.setdefault(p, i)
    merges = []
    for m in spec["model"]["merges"]:
        a, b = m if isinstance(m, list) else m.split(" ")
        merges += [vocab[a], vocab[b]]
    return pieces, types, merges, by_text


# ---- the check ---------------------------------------------------------------------------------

def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    gemini_path, source = sys.argv[1], sys.argv[2]
    meta, tensors = read_gemini(gemini_path)
    problems = []

    def expect(what, got, want):
        if got != want:
            problems.append(f"{what}: file has {got!r:.200}, source says {want!r:.200}")

    ct2 = os.path.exists(os.path.join(source, "model.bin"))
    if ct2:
        version, spec, revision, variables, aliases = read_ct2(os.path.join(source, "model.bin"))
        hf, zero_parts = ct2_to_hf(variables)
        print(f"source: CTranslate2 binary version {version}, {spec} revision {revision}, "
              f"{len(variables) - len(aliases)} variables, aliases {aliases}")
        for what, values in zero_parts:
            if np.any(values != 0):
                problems.append(f"{what} is not zero")
        enc_heads = int(variables["encoder/num_heads"])
        dec_heads = int(variables["decoder/num_heads"])
        settings = json.load(open(os.path.join(source, "config.json"))) \
            if os.path.exists(os.path.join(source, "config.json")) else {}
        lists = {"whisper.suppress_tokens": settings.get("suppress_ids"),
                 "whisper.begin_suppress_tokens": settings.get("suppress_ids_begin"),
                 "whisper.lang_ids": settings.get("lang_ids"),
                 "whisper.alignment_heads": settings.get("alignment_heads")}
    else:
        hf = read_hf(source)
        config = json.load(open(os.path.join(source, "config.json")))
        print(f"source: Hugging Face, {len(hf)} tensors")
        enc_heads, dec_heads = config["encoder_attention_heads"], config["decoder_attention_heads"]
        gen_path = os.path.join(source, "generation_config.json")
        gen = json.load(open(gen_path)) if os.path.exists(gen_path) else {}
        lists = {"whisper.suppress_tokens": gen.get("suppress_tokens",
                                                    config.get("suppress_tokens")),
                 "whisper.begin_suppress_tokens": gen.get("begin_suppress_tokens",
                                                          config.get("begin_suppress_tokens")),
                 "whisper.alignment_heads": gen.get("alignment_heads")}
        if gen.get("lang_to_id"):
            langs = sorted(gen["lang_to_id"].items(), key=lambda kv: kv[1])
            lists["whisper.lang_ids"] = [i for _, i in langs]
            lists["whisper.lang_codes"] = [k[2:-2].encode() for k, _ in langs]

    # Sizes.
    m = "model."
    embd = hf[m + "decoder.embed_tokens.weight"]
    enc_layers = sum(1 for k in hf if k.startswith(m + "encoder.layers.") and
                     k.endswith(".fc1.weight"))
    dec_layers = sum(1 for k in hf if k.startswith(m + "decoder.layers.") and
                     k.endswith(".fc1.weight"))
    d = embd.shape[1]
    sizes = {"model.vocab_size": embd.shape[0], "model.hidden_size": d,
             "model.intermediate_size": hf[m + "decoder.layers.0.fc1.weight"].shape[0],
             "model.num_layers": dec_layers, "model.num_heads": dec_heads,
             "model.num_kv_heads": dec_heads, "model.head_dim": d // dec_heads,
             "model.max_position": hf[m + "decoder.embed_positions.weight"].shape[0],
             "whisper.n_mels": hf[m + "encoder.conv1.weight"].shape[1],
             "whisper.audio_ctx": hf[m + "encoder.embed_positions.weight"].shape[0],
             "whisper.encoder_layers": enc_layers, "whisper.encoder_heads": enc_heads,
             "whisper.encoder_ffn": hf[m + "encoder.layers.0.fc1.weight"].shape[0]}
    expect("general.architecture", meta.get("general.architecture"), b"whisper")
    expect("model.activation", meta.get("model.activation"), b"gelu")
    expect("model.tied_embeddings", meta.get("model.tied_embeddings"), True)
    expect("model.layer_norm_eps", meta.get("model.layer_norm_eps"), np.float32(1e-5).item())
    for key, value in sizes.items():
        expect(key, meta.get(key), int(value))
    if "proj_out.weight" in hf and not np.array_equal(hf["proj_out.weight"], embd):
        problems.append("the source head is not tied")

    # Lists of the config files.
    for key, value in lists.items():
        if value is None:
            continue
        if key == "whisper.alignment_heads":
            value = [x for pair in value for x in pair]
        expect(key, meta.get(key), list(value))

    # Tokenizer.
    tok_path = os.path.join(source, "tokenizer.json")
    if os.path.exists(tok_path):
        pieces, types, merges, by_text = expected_tokenizer(tok_path)
        expect("tokenizer.model", meta.get("tokenizer.model"), b"byte-bpe")
        expect("tokenizer.pieces", meta.get("tokenizer.pieces"), pieces)
        expect("tokenizer.types", meta.get("tokenizer.types"), types)
        expect("tokenizer.merges", meta.get("tokenizer.merges"), merges)
        names = {"sot": "<|startoftranscript|>", "eot": "<|endoftext|>",
                 "translate": "<|translate|>", "transcribe": "<|transcribe|>",
                 "sot_lm": "<|startoflm|>", "sot_prev": "<|startofprev|>",
                 "no_timestamps": "<|notimestamps|>", "timestamp_begin": "<|0.00|>"}
        for key, text in names.items():
            expect(f"whisper.{key}_id", meta.get(f"whisper.{key}_id"), by_text[text.encode()])
        expect("whisper.no_speech_id", meta.get("whisper.no_speech_id"),
               by_text.get(b"<|nospeech|>", by_text.get(b"<|nocaptions|>")))
        expect("tokenizer.eos_id", meta.get("tokenizer.eos_id"), by_text[b"<|endoftext|>"])
        for key in ("tokenizer.bos_id", "tokenizer.pad_id", "tokenizer.unk_id"):
            expect(key, meta.get(key), -1)
        sot, translate = by_text[b"<|startoftranscript|>"], by_text[b"<|translate|>"]
        expect("whisper.lang_ids", meta.get("whisper.lang_ids"), list(range(sot + 1, translate)))
        expect("whisper.lang_codes", meta.get("whisper.lang_codes"),
               [pieces[i][2:-2] for i in range(sot + 1, translate)])
        print(f"tokenizer: {len(pieces)} pieces, {len(merges) // 2} merges, "
              f"{translate - sot - 1} languages")
    elif any(k.startswith("tokenizer.") or k.endswith("_id") and k.startswith("whisper.")
             for k in meta):
        problems.append("no tokenizer.json, but the file has tokenizer or whisper.*_id keys")

    # Tensors.
    want = expected_tensors(hf, enc_layers, dec_layers)
    expect("tensor names in order", list(tensors), [name for name, _, _ in want])
    worst = {}
    for name, values, kind in want:
        if name not in tensors:
            continue
        ttype, dims, raw = tensors[name]
        tname = TYPE_NAMES.get(ttype, str(ttype))
        if list(dims) != list(values.shape):
            problems.append(f"{name}: shape {dims}, expected {list(values.shape)}")
            continue
        if kind == "vector" and ttype != 0:
            problems.append(f"{name}: {tname}, but vectors and position tables are f32")
        if kind == "stem" and ttype in (3, 4):
            problems.append(f"{name}: {tname}, but the conv stems stay f16 for q types")
        got = decode(ttype, dims, raw)
        if ttype in (3, 4):
            if raw != quantize(ttype, values):
                problems.append(f"{name}: {tname} blocks differ from a NumPy re-quantisation")
        elif not np.array_equal(got, as_type(ttype, values)):
            problems.append(f"{name}: {tname} values differ from the source rounded to {tname}")
        diff = float(np.max(np.abs(got.astype(np.float64) - values.astype(np.float64))))
        scale = float(np.max(np.abs(values))) or 1.0
        w = worst.setdefault(tname, [0.0, 0.0, "", 0])
        w[3] += 1
        if diff > w[0] or not w[2]:
            w[0], w[1], w[2] = diff, diff / scale, name
    for tname, (diff, rel, name, count) in sorted(worst.items()):
        print(f"{tname}: {count} tensors, largest |file - source| {diff:.3g} "
              f"({rel:.3g} of that tensor's max |value|) in {name}")
    print(f"{len(tensors)} tensors, {len(meta)} metadata keys checked")
    for p in problems:
        print("MISMATCH", p)
    print("ok" if not problems else f"{len(problems)} mismatches")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
