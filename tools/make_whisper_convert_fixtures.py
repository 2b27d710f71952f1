#!/usr/bin/env python3
"""Builds the tiny Whisper checkpoints that tests/test_convert.sh converts, and what it expects.

    /tmp/fxenv/bin/python tools/make_whisper_convert_fixtures.py tests/fixtures/convert

Writes, under the output directory:

  whisper-tiny-hf/     a Hugging Face Whisper (transformers' WhisperForConditionalGeneration
                       with a tiny WhisperConfig, save_pretrained in float16): config.json,
                       generation_config.json, model.safetensors, tokenizer.json
  whisper-tiny-ct2/    the same weights as a CTranslate2 (faster-whisper) directory:
                       model.bin written by the independent writer below (fused QKV and KV
                       projections with zero key biases, the head an alias of the embedding,
                       weights float16, vectors float32), config.json, tokenizer.json
  whisper-tiny.expected        "name type dims crc32" of every tensor the converter must write
                               with --type f32 and with --type q8_0 (q8_0 blocks from NumPy)
  whisper-tiny-meta.expected   the whisper.* and tokenizer.* lines of gemini-convert --info
                               --full, formatted here from the tokenizers library's view
  whisper-tiny-ct2.offsets     "what offset" byte positions in model.bin, for the hostile tests
  ../../fuzz/corpus/fuzz_ct2/tiny.bin   a much smaller model.bin for the fuzzer (and the
                                        config.json its harness writes beside it)

The tokenizer is a byte-level BPE trained by the tokenizers library on a few sentences (256
byte pieces + 24 merges), with Whisper's special tokens added in Whisper's order (the no-speech
token spelled <|nocaptions|>, as before v3) and 9 timestamps <|0.00|> .. <|0.16|> as
non-special added tokens: 300 ids in all. Weights: every tensor N(0, 0.5) from a NumPy
generator (seeded) in sorted name order, rounded to float16, so the float16 safetensors and the
float32 CTranslate2 vectors hold the same values and both conversions must agree bit for bit.
Rerunning the script reproduces every file byte for byte with the pinned versions of
tools/requirements-fixtures.txt.
"""
import json
import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_whisper_convert as cw  # noqa: E402  (decoders, q8_0 and the CT2 name mapping)

SEED = 1234
D, ENC_HEADS, DEC_HEADS, ENC_LAYERS, DEC_LAYERS = 32, 2, 4, 2, 2
ENC_FFN, DEC_FFN, N_MELS, AUDIO_CTX, TEXT_CTX = 32, 64, 8, 16, 24
LANGS = ["en", "de", "fr"]
TIMESTAMPS = [f"<|{0.02 * i:.2f}|>" for i in range(9)]


def make_tokenizer():
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=280, show_progress=False, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    text = ["the cat sat on the mat", "hello world, hello there", "the weather is nice today"]
    tok.train_from_iterator(text * 5, trainer)
    specials = (["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{c}|>" for c in LANGS] +
                ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                 "<|nocaptions|>", "<|notimestamps|>"])
    tok.add_special_tokens(specials)
    tok.add_tokens([AddedToken(t, special=False, normalized=True) for t in TIMESTAMPS])
    assert tok.get_vocab_size() == 300, tok.get_vocab_size()
    return tok


def make_hf(out, tok):
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration
    ids = {t: tok.token_to_id(t) for t in tok.get_vocab()}
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    space = ids["\u0120"]              # the byte-level piece of " "
    suppress = [ids["!"], ids["\""], ids["#"], ids["\u0120the"]]
    config = WhisperConfig(
        vocab_size=300, num_mel_bins=N_MELS, d_model=D, encoder_layers=ENC_LAYERS,
        encoder_attention_heads=ENC_HEADS, encoder_ffn_dim=ENC_FFN, decoder_layers=DEC_LAYERS,
        decoder_attention_heads=DEC_HEADS, decoder_ffn_dim=DEC_FFN,
        max_source_positions=AUDIO_CTX, max_target_positions=TEXT_CTX, pad_token_id=eot,
        bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
        suppress_tokens=suppress, begin_suppress_tokens=[space, eot])
    model = WhisperForConditionalGeneration(config).eval()
    rng = np.random.default_rng(SEED)
    state = model.state_dict()
    with torch.no_grad():
        for name in sorted(state):
            if name == "proj_out.weight":
                continue   # tied to the token embedding
            value = rng.normal(0.0, 0.5, size=tuple(state[name].shape)).astype(np.float16)
            state[name].copy_(torch.from_numpy(value.astype(np.float32)))
    model = model.to(torch.float16)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, max_length=TEXT_CTX,
        suppress_tokens=suppress, begin_suppress_tokens=[space, eot],
        alignment_heads=[[1, 0], [1, 3], [0, 2]], is_multilingual=True,
        lang_to_id={f"<|{c}|>": ids[f"<|{c}|>"] for c in LANGS},
        task_to_id={"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"])
    model.save_pretrained(out)
    tok.save(os.path.join(out, "tokenizer.json"))
    return config, model.generation_config


# ---- CTranslate2 writer (binary version 6, as CTranslate2's model_spec.py lays it out) ------

def hf_to_ct2(hf, enc_layers, dec_layers):
    """Hugging Face Whisper tensors (NumPy float16) -> CTranslate2 WhisperSpec variables."""
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    var = {}
    m = "model."
    var["encoder/conv1/weight"] = hf[m + "encoder.conv1.weight"]
    var["encoder/conv1/bias"] = f32(hf[m + "encoder.conv1.bias"])
    var["encoder/conv2/weight"] = hf[m + "encoder.conv2.weight"]
    var["encoder/conv2/bias"] = f32(hf[m + "encoder.conv2.bias"])
    var["encoder/position_encodings/encodings"] = f32(hf[m + "encoder.embed_positions.weight"])
    var["encoder/layer_norm/gamma"] = f32(hf[m + "encoder.layer_norm.weight"])
    var["encoder/layer_norm/beta"] = f32(hf[m + "encoder.layer_norm.bias"])
    var["decoder/embeddings/weight"] = hf[m + "decoder.embed_tokens.weight"]
    var["decoder/position_encodings/encodings"] = f32(hf[m + "decoder.embed_positions.weight"])
    var["decoder/layer_norm/gamma"] = f32(hf[m + "decoder.layer_norm.weight"])
    var["decoder/layer_norm/beta"] = f32(hf[m + "decoder.layer_norm.bias"])
    for stack, n in (("encoder", enc_layers), ("decoder", dec_layers)):
        for i in range(n):
            p, c = f"{m}{stack}.layers.{i}.", f"{stack}/layer_{i}/"
            a = p + "self_attn."
            zero = np.zeros(hf[a + "q_proj.bias"].shape, np.float32)
            var[c + "self_attention/layer_norm/gamma"] = f32(hf[p + "self_attn_layer_norm.weight"])
            var[c + "self_attention/layer_norm/beta"] = f32(hf[p + "self_attn_layer_norm.bias"])
            var[c + "self_attention/linear_0/weight"] = np.concatenate(
                [hf[a + "q_proj.weight"], hf[a + "k_proj.weight"], hf[a + "v_proj.weight"]])
            var[c + "self_attention/linear_0/bias"] = np.concatenate(
                [f32(hf[a + "q_proj.bias"]), zero, f32(hf[a + "v_proj.bias"])])
            var[c + "self_attention/linear_1/weight"] = hf[a + "out_proj.weight"]
            var[c + "self_attention/linear_1/bias"] = f32(hf[a + "out_proj.bias"])
            if stack == "decoder":
                x = p + "encoder_attn."
                var[c + "attention/layer_norm/gamma"] = f32(
                    hf[p + "encoder_attn_layer_norm.weight"])
                var[c + "attention/layer_norm/beta"] = f32(hf[p + "encoder_attn_layer_norm.bias"])
                var[c + "attention/linear_0/weight"] = hf[x + "q_proj.weight"]
                var[c + "attention/linear_0/bias"] = f32(hf[x + "q_proj.bias"])
                var[c + "attention/linear_1/weight"] = np.concatenate(
                    [hf[x + "k_proj.weight"], hf[x + "v_proj.weight"]])
                var[c + "attention/linear_1/bias"] = np.concatenate(
                    [zero, f32(hf[x + "v_proj.bias"])])
                var[c + "attention/linear_2/weight"] = hf[x + "out_proj.weight"]
                var[c + "attention/linear_2/bias"] = f32(hf[x + "out_proj.bias"])
            var[c + "ffn/layer_norm/gamma"] = f32(hf[p + "final_layer_norm.weight"])
            var[c + "ffn/layer_norm/beta"] = f32(hf[p + "final_layer_norm.bias"])
            var[c + "ffn/linear_0/weight"] = hf[p + "fc1.weight"]
            var[c + "ffn/linear_0/bias"] = f32(hf[p + "fc1.bias"])
            var[c + "ffn/linear_1/weight"] = hf[p + "fc2.weight"]
            var[c + "ffn/linear_1/bias"] = f32(hf[p + "fc2.bias"])
    return var


def write_ct2(path, variables, enc_heads, dec_heads, aliases):
    """model.bin: version 6, "WhisperSpec" revision 3, variables sorted by name (as
    CTranslate2 writes them), then the aliases. Returns {what: byte offset} of a few fields."""
    scalars = {"decoder/activation": np.int8(3), "decoder/alibi": np.int8(0),
               "decoder/alibi_use_positive_positions": np.int8(0),
               "decoder/alignment_heads": np.int16(1), "decoder/alignment_layer": np.int16(-1),
               "decoder/num_heads": np.int16(dec_heads), "decoder/pre_norm": np.int8(1),
               "decoder/scale_alibi": np.int8(0), "decoder/scale_embeddings": np.int8(0),
               "decoder/start_from_zero_embedding": np.int8(0),
               "encoder/num_heads": np.int16(enc_heads)}
    dtype_ids = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2,
                 np.dtype(np.int32): 3, np.dtype(np.float16): 4}
    out, offsets = bytearray(), {}

    def string(s):
        b = s.encode() + b"\0"
        out.extend(struct.pack("<H", len(b)) + b)

    out.extend(struct.pack("<I", 6))
    string("WhisperSpec")
    out.extend(struct.pack("<I", 3))
    everything = dict(variables)
    everything.update({k: np.asarray(v) for k, v in scalars.items()})
    offsets["variable_count"] = len(out)
    out.extend(struct.pack("<I", len(everything)))
    for name in sorted(everything):
        value = np.array(everything[name], order="C")   # (ascontiguousarray makes 0-d 1-d)
        offsets[f"name:{name}"] = len(out)
        string(name)
        out.extend(struct.pack("<B", value.ndim))
        offsets[f"dims:{name}"] = len(out)
        for dim in value.shape:
            out.extend(struct.pack("<I", dim))
        out.extend(struct.pack("<B", dtype_ids[value.dtype]))
        offsets[f"bytes:{name}"] = len(out)
        out.extend(struct.pack("<I", value.nbytes))
        offsets[f"data:{name}"] = len(out)
        out.extend(value.astype(value.dtype.newbyteorder("<")).tobytes())
    offsets["alias_count"] = len(out)
    out.extend(struct.pack("<I", len(aliases)))
    for alias, target in aliases:
        offsets[f"alias:{alias}"] = len(out)
        string(alias)
        offsets[f"target:{alias}"] = len(out)
        string(target)
    with open(path, "wb") as f:
        f.write(out)
    return offsets


def ct2_config(gen):
    return {"alignment_heads": gen.alignment_heads,
            "lang_ids": sorted(gen.lang_to_id.values()),
            "suppress_ids": list(gen.suppress_tokens),
            "suppress_ids_begin": list(gen.begin_suppress_tokens)}


# ---- what the converter must write -------------------------------------------------------------

def tensor_lines(hf):
    """name, type, dims, crc32 for --type f32 and --type q8_0 (format.md §7.2 types)."""
    lines = []
    for name, values, kind in cw.expected_tensors(hf, ENC_LAYERS, DEC_LAYERS):
        dims = "x".join(str(d) for d in values.shape)
        f32 = values.astype("<f4").tobytes()
        lines.append(f"f32 {name} f32 {dims} {zlib.crc32(f32):08X}")
        if kind == "vector":
            q8 = ("f32", f32)
        elif kind == "stem" or values.shape[-1] % 32 != 0:
            q8 = ("f16", values.astype("<f2").tobytes())
        else:
            q8 = ("q8_0", cw.quantize(3, values))
        lines.append(f"q8_0 {name} {q8[0]} {dims} {zlib.crc32(q8[1]):08X}")
    return lines


def info_string(b):
    """A byte string as gemini-convert --info prints it."""
    out = bytearray(b'"')
    for c in b[:200]:
        if c in (0x22, 0x5C):
            out += b"\\" + bytes([c])
        elif c < 0x20 or c == 0x7F:
            out += b"\\x%02X" % c
        else:
            out.append(c)
    out += b'"...' if len(b) > 200 else b'"'
    return bytes(out)


def info_line(key, vtype, value):
    head = b"  %-40s %-6s " % (key.encode(), vtype.encode())
    if vtype == "array":
        elem, items = value
        body = b"%s[%d] =" % (elem.encode(), len(items))
        for item in items:
            body += b" " + (info_string(item) if elem == "string" else str(item).encode())
        return head + body
    return head + (info_string(value) if vtype == "string" else str(value).encode())


def meta_lines(tokenizer_path, gen):
    pieces, types, merges, by_text = cw.expected_tokenizer(tokenizer_path)
    ids = lambda t: by_text[t.encode()]  # noqa: E731
    sot, translate = ids("<|startoftranscript|>"), ids("<|translate|>")
    langs = list(range(sot + 1, translate))
    heads = [x for pair in gen.alignment_heads for x in pair]
    lines = [
        info_line("whisper.n_mels", "u32", N_MELS),
        info_line("whisper.audio_ctx", "u32", AUDIO_CTX),
        info_line("whisper.encoder_layers", "u32", ENC_LAYERS),
        info_line("whisper.encoder_heads", "u32", ENC_HEADS),
        info_line("whisper.encoder_ffn", "u32", ENC_FFN),
        info_line("whisper.suppress_tokens", "array", ("i32", list(gen.suppress_tokens))),
        info_line("whisper.begin_suppress_tokens", "array",
                  ("i32", list(gen.begin_suppress_tokens))),
        info_line("whisper.alignment_heads", "array", ("i32", heads)),
        info_line("whisper.lang_ids", "array", ("i32", langs)),
        info_line("whisper.lang_codes", "array", ("string", [pieces[i][2:-2] for i in langs])),
    ]
    for key, text in (("sot", "<|startoftranscript|>"), ("eot", "<|endoftext|>"),
                      ("translate", "<|translate|>"), ("transcribe", "<|transcribe|>"),
                      ("sot_lm", "<|startoflm|>"), ("sot_prev", "<|startofprev|>"),
                      ("no_speech", "<|nocaptions|>"), ("no_timestamps", "<|notimestamps|>"),
                      ("timestamp_begin", "<|0.00|>")):
        lines.append(info_line(f"whisper.{key}_id", "i32", ids(text)))
    lines += [
        info_line("tokenizer.model", "string", b"byte-bpe"),
        info_line("tokenizer.pieces", "array", ("string", pieces)),
        info_line("tokenizer.types", "array", ("u8", types)),
        info_line("tokenizer.merges", "array", ("i32", merges)),
        info_line("tokenizer.eos_id", "i32", ids("<|endoftext|>")),
        info_line("tokenizer.bos_id", "i32", -1),
        info_line("tokenizer.pad_id", "i32", -1),
        info_line("tokenizer.unk_id", "i32", -1),
    ]
    return b"\n".join(lines) + b"\n"


def fuzz_seed(corpus):
    """A model.bin of d = 8 (1 + 1 layers, 16 ids, 2 mel bins): small enough to mutate fast."""
    rng = np.random.default_rng(SEED + 1)
    d, ffn, vocab = 8, 16, 16
    shapes = {"model.encoder.conv1.weight": (d, 2, 3), "model.encoder.conv1.bias": (d,),
              "model.encoder.conv2.weight": (d, d, 3), "model.encoder.conv2.bias": (d,),
              "model.encoder.embed_positions.weight": (4, d),
              "model.encoder.layer_norm.weight": (d,), "model.encoder.layer_norm.bias": (d,),
              "model.decoder.embed_tokens.weight": (vocab, d),
              "model.decoder.embed_positions.weight": (4, d),
              "model.decoder.layer_norm.weight": (d,), "model.decoder.layer_norm.bias": (d,)}
    for stack in ("encoder", "decoder"):
        p = f"model.{stack}.layers.0."
        attn = ["self_attn"] + (["encoder_attn"] if stack == "decoder" else [])
        for a in attn:
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                shapes[f"{p}{a}.{proj}.weight"] = (d, d)
                if proj != "k_proj":
                    shapes[f"{p}{a}.{proj}.bias"] = (d,)
            norm = "self_attn_layer_norm" if a == "self_attn" else "encoder_attn_layer_norm"
            shapes[f"{p}{norm}.weight"] = shapes[f"{p}{norm}.bias"] = (d,)
        shapes[p + "final_layer_norm.weight"] = shapes[p + "final_layer_norm.bias"] = (d,)
        shapes[p + "fc1.weight"], shapes[p + "fc1.bias"] = (ffn, d), (ffn,)
        shapes[p + "fc2.weight"], shapes[p + "fc2.bias"] = (d, ffn), (d,)
    hf = {k: rng.normal(0, 0.5, v).astype(np.float16) for k, v in sorted(shapes.items())}
    os.makedirs(corpus, exist_ok=True)
    write_ct2(os.path.join(corpus, "tiny.bin"), hf_to_ct2(hf, 1, 1), 2, 2,
              [("decoder/projection/weight", "decoder/embeddings/weight")])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    hf_dir, ct2_dir = os.path.join(out, "whisper-tiny-hf"), os.path.join(out, "whisper-tiny-ct2")
    for d in (hf_dir, ct2_dir):
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            os.remove(os.path.join(d, name))
    tok = make_tokenizer()
    config, gen = make_hf(hf_dir, tok)
    hf = cw.read_hf(hf_dir)
    tok.save(os.path.join(ct2_dir, "tokenizer.json"))

    # The CTranslate2 twin, from the float16 tensors as saved (vectors widened to float32).
    raw16 = {}
    for name, value in hf.items():
        raw16[name] = value.astype(np.float16)
        assert np.array_equal(raw16[name].astype(np.float32), value)
    offsets = write_ct2(os.path.join(ct2_dir, "model.bin"),
                        hf_to_ct2(raw16, ENC_LAYERS, DEC_LAYERS), ENC_HEADS, DEC_HEADS,
                        [("decoder/projection/weight", "decoder/embeddings/weight")])
    with open(os.path.join(ct2_dir, "config.json"), "w") as f:
        json.dump(ct2_config(gen), f, indent=2, sort_keys=True)
        f.write("\n")
    # The writer's output, read back by the reader of check_whisper_convert.py, must give the
    # same tensors (and zero key biases).
    _, _, _, variables, _ = cw.read_ct2(os.path.join(ct2_dir, "model.bin"))
    back, zeros = cw.ct2_to_hf(variables)
    assert all(np.array_equal(back[k], hf[k]) for k in hf if k != "proj_out.weight")
    assert all(not np.any(z) for _, z in zeros)

    with open(os.path.join(out, "whisper-tiny.expected"), "w") as f:
        f.write("\n".join(tensor_lines(hf)) + "\n")
    with open(os.path.join(out, "whisper-tiny-meta.expected"), "wb") as f:
        f.write(meta_lines(os.path.join(hf_dir, "tokenizer.json"), gen))
    wanted = ["variable_count", "alias_count", "alias:decoder/projection/weight",
              "target:decoder/projection/weight", "dims:decoder/layer_1/ffn/linear_0/weight",
              "bytes:decoder/layer_1/ffn/linear_0/weight",
              "dims:encoder/layer_0/self_attention/linear_0/bias",
              "data:encoder/layer_0/self_attention/linear_0/bias",
              "data:decoder/layer_1/attention/linear_1/bias", "data:encoder/num_heads",
              "data:decoder/activation", "name:decoder/layer_0/ffn/linear_1/bias"]
    with open(os.path.join(out, "whisper-tiny-ct2.offsets"), "w") as f:
        for what in wanted:
            f.write(f"{what} {offsets[what]}\n")
    fuzz_seed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz",
                           "corpus", "fuzz_ct2"))
    sizes = {d: sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
             for d in (hf_dir, ct2_dir)}
    print(f"wrote {hf_dir} ({sizes[hf_dir]} bytes), {ct2_dir} ({sizes[ct2_dir]} bytes)")


if __name__ == "__main__":
    main()
