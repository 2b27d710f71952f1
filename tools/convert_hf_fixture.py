#!/usr/bin/env python3
"""Builds the Hugging Face side fixtures of tests/test_convert.sh (tests/fixtures/convert/).

    python3 -m venv /tmp/spenv && /tmp/spenv/bin/pip install numpy sentencepiece protobuf
    /tmp/spenv/bin/python tools/convert_hf_fixture.py

Writes:

  hf-f32.expected    for each HF fixture model (tests/fixtures/gemma*/hf), one line per .gemini
                     tensor: fixture, our name, CRC-32 of the f32 bytes gemini-convert must
                     write with --type f32 (norm weights as 1 + w in float32), computed here
                     with NumPy from the safetensors file, independently of the converter.
  tokenizer.model    a 64-piece SentencePiece BPE model trained by the sentencepiece library
                     with Gemma's conventions (pad 0, eos 1, bos 2, unk 3, <start_of_turn> and
                     <end_of_turn> user-defined, no dummy prefix, no whitespace collapsing).
  tokenizer.json     the same vocabulary in Hugging Face tokenizers' layout (vocab, merges,
                     added_tokens, Replace normaliser), written here from the proto.
  tokenizer.expected what `gemini-convert --info --full` must print for the tokenizer.* keys
                     of a directory holding tokenizer.model, read from the proto by
                     sentencepiece's own protobuf classes.
"""
import json
import os
import zlib

import numpy as np
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as model_pb2

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIXTURES, "convert")
MODELS = ["gemma1", "gemma2", "gemma3", "gemma3/rope_linear8"]


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    dtypes = {"F32": np.float32, "F16": np.float16}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=dtypes[info["dtype"]]).reshape(
            info["shape"])
    return out


def hf_expected():
    lines = []
    for model in MODELS:
        folder = os.path.join(FIXTURES, model, "hf")
        config = json.load(open(os.path.join(folder, "config.json")))
        family = config["model_type"]
        tensors = read_safetensors(os.path.join(folder, "model.safetensors"))
        names = [("token_embd", "model.embed_tokens.weight", False)]
        per_layer = [("attn_norm", "input_layernorm", True),
                     ("attn_q", "self_attn.q_proj", False),
                     ("attn_k", "self_attn.k_proj", False),
                     ("attn_v", "self_attn.v_proj", False)]
        if family == "gemma3_text":
            per_layer += [("attn_q_norm", "self_attn.q_norm", True),
                          ("attn_k_norm", "self_attn.k_norm", True)]
        per_layer.append(("attn_out", "self_attn.o_proj", False))
        if family == "gemma":
            per_layer.append(("ffn_norm", "post_attention_layernorm", True))
        else:
            per_layer += [("post_attn_norm", "post_attention_layernorm", True),
                          ("ffn_norm", "pre_feedforward_layernorm", True)]
        per_layer += [("ffn_gate", "mlp.gate_proj", False), ("ffn_up", "mlp.up_proj", False),
                      ("ffn_down", "mlp.down_proj", False)]
        if family != "gemma":
            per_layer.append(("post_ffn_norm", "post_feedforward_layernorm", True))
        for layer in range(config["num_hidden_layers"]):
            for ours, hf, norm in per_layer:
                names.append((f"blk.{layer}.{ours}", f"model.layers.{layer}.{hf}.weight", norm))
        names.append(("output_norm", "model.norm.weight", True))
        for ours, hf, norm in names:
            w = tensors[hf].astype(np.float32)
            if norm:
                w = w + np.float32(1.0)
            crc = zlib.crc32(np.ascontiguousarray(w, dtype="<f4").tobytes()) & 0xFFFFFFFF
            lines.append(f"{model} {ours} {crc:08X}")
    with open(os.path.join(OUT, "hf-f32.expected"), "w") as f:
        f.write("\n".join(lines) + "\n")


def train_tokenizer():
    text = ["the cat sat on the mat", "a b c abc abcabc", "hello world hello there",
            "<start_of_turn>user\nhi<end_of_turn>", "tab\there  two  spaces",
            "numbers 123 456 and words", "caf\u00e9 na\u00efve r\u00e9sum\u00e9"] * 20
    prefix = os.path.join(OUT, "spm")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_prefix=prefix, model_type="bpe", vocab_size=64,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
        bos_piece="<bos>", unk_piece="<unk>",
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
        add_dummy_prefix=False, remove_extra_whitespaces=False,
        normalization_rule_name="identity", character_coverage=1.0,
        allow_whitespace_only_pieces=True, split_digits=True, minloglevel=2)
    os.replace(prefix + ".model", os.path.join(OUT, "tokenizer.model"))
    os.remove(prefix + ".vocab")


def tokenizer_files():
    proto = model_pb2.ModelProto()
    proto.ParseFromString(open(os.path.join(OUT, "tokenizer.model"), "rb").read())
    pieces = [p.piece for p in proto.pieces]
    scores = [p.score for p in proto.pieces]
    types = [p.type for p in proto.pieces]   # proto2 default NORMAL = 1 is applied by protobuf

    # tokenizer.json: every piece in vocab; CONTROL, UNKNOWN and USER_DEFINED pieces also in
    # added_tokens; merges from every split of a piece into two in-vocabulary halves, ordered
    # by the merged piece's score (highest first).
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for i, p in enumerate(pieces):
        if types[i] != 1:
            continue
        for cut in range(1, len(p)):
            left, right = p[:cut], p[cut:]
            if left in vocab and right in vocab:
                merges.append((-scores[i], vocab[left], vocab[right], left, right))
    merges.sort()
    special = {"<start_of_turn>", "<end_of_turn>"}
    added = [{"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": types[i] in (2, 3) or p in special}
             for i, p in enumerate(pieces) if types[i] in (2, 3, 4)]
    doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
           "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
           "pre_tokenizer": None, "post_processor": None, "decoder": None,
           "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                     "continuing_subword_prefix": None, "end_of_word_suffix": None,
                     "fuse_unk": True, "byte_fallback": False, "ignore_merges": False,
                     "vocab": vocab, "merges": [[m[3], m[4]] for m in merges]}}
    with open(os.path.join(OUT, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)

    # What --info --full prints for the tokenizer keys of the tokenizer.model directory.
    def text(s):
        out = b'"'
        for b in s.encode("utf-8"):
            if b in (0x22, 0x5C):
                out += b"\\" + bytes([b])
            elif b < 0x20 or b == 0x7F:
                out += b"\\x%02X" % b
            else:
                out += bytes([b])
        return (out + b'"').decode("utf-8")

    trainer, norm = proto.trainer_spec, proto.normalizer_spec
    n = len(pieces)
    eot = pieces.index("<end_of_turn>") if "<end_of_turn>" in pieces else -1
    lines = [
        f"  {'tokenizer.model':<40} {'string':<6} \"sentencepiece-bpe\"",
        f"  {'tokenizer.pieces':<40} {'array':<6} string[{n}] =" +
        "".join(" " + text(p) for p in pieces),
        f"  {'tokenizer.scores':<40} {'array':<6} f32[{n}] =" +
        "".join(" %.9g" % s for s in scores),
        f"  {'tokenizer.types':<40} {'array':<6} u8[{n}] =" + "".join(f" {t}" for t in types),
        f"  {'tokenizer.unk_id':<40} {'i32':<6} {trainer.unk_id}",
        f"  {'tokenizer.bos_id':<40} {'i32':<6} {trainer.bos_id}",
        f"  {'tokenizer.eos_id':<40} {'i32':<6} {trainer.eos_id}",
        f"  {'tokenizer.pad_id':<40} {'i32':<6} {trainer.pad_id}",
        f"  {'tokenizer.eot_id':<40} {'i32':<6} {eot}",
        f"  {'tokenizer.add_bos':<40} {'bool':<6} true",
        f"  {'tokenizer.add_dummy_prefix':<40} {'bool':<6} {str(norm.add_dummy_prefix).lower()}",
        f"  {'tokenizer.remove_extra_whitespaces':<40} {'bool':<6} "
        f"{str(norm.remove_extra_whitespaces).lower()}",
        f"  {'tokenizer.escape_whitespaces':<40} {'bool':<6} "
        f"{str(norm.escape_whitespaces).lower()}",
        f"  {'tokenizer.treat_whitespace_as_suffix':<40} {'bool':<6} "
        f"{str(trainer.treat_whitespace_as_suffix).lower()}",
        f"  {'tokenizer.byte_fallback':<40} {'bool':<6} {str(trainer.byte_fallback).lower()}",
    ]
    with open(os.path.join(OUT, "tokenizer.expected"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    hf_expected()
    train_tokenizer()
    tokenizer_files()
    print("wrote", ", ".join(sorted(os.listdir(OUT))))


if __name__ == "__main__":
    main()
