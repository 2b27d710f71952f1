#!/usr/bin/env python3
"""Reference ids for the Gemma 3 vocabulary, made with the Python sentencepiece package.

The original Gemma 3 tokenizer.model is not available here, so this script REBUILDS a
SentencePiece ModelProto from the arrays of a GGUF file (tokenizer.ggml.tokens / scores /
token_type and the special ids):

    model_type BPE, byte_fallback true, normalizer "identity" with add_dummy_prefix false,
    remove_extra_whitespaces false, escape_whitespaces true and no charsmap; piece types as
    the GGUF gives them, except that the unknown id becomes UNKNOWN (llama.cpp stores it as
    CONTROL, and SentencePiece needs exactly one UNKNOWN piece).

It writes
    models/gemma3-rebuilt.model             the rebuilt proto (git-ignored; the C test loads it)
    tests/tokenizer/gemma3_expected_ids.txt ids of each corpus line, no BOS (committed)
    tests/tokenizer/gemma3_expected_decode.txt  sentencepiece's decode of those ids
    models/gemma3-rebuilt.tokenizer.json    the same vocabulary in Hugging Face's layout, written
                                            here after REFERENCE 4.9 (GemmaConverter: vocab,
                                            merges from every split of a piece into two pieces,
                                            ordered by score; added tokens = CONTROL and
                                            USER_DEFINED pieces), for the JSON loader's test

Usage: pip install sentencepiece protobuf gguf
       python3 tools/tokenizer_fixtures.py [GGUF] [CORPUS]
"""
import os
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb
from gguf import GGUFReader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def field(reader, key):
    return reader.fields[key].contents()


def rebuild(gguf_path):
    reader = GGUFReader(gguf_path)
    tokens = field(reader, "tokenizer.ggml.tokens")
    scores = field(reader, "tokenizer.ggml.scores")
    types = field(reader, "tokenizer.ggml.token_type")
    unk = int(field(reader, "tokenizer.ggml.unknown_token_id"))
    bos = int(field(reader, "tokenizer.ggml.bos_token_id"))
    eos = int(field(reader, "tokenizer.ggml.eos_token_id"))
    pad = int(field(reader, "tokenizer.ggml.padding_token_id"))

    proto = pb.ModelProto()
    for i, (piece, score, kind) in enumerate(zip(tokens, scores, types)):
        sp = proto.pieces.add()
        sp.piece = piece
        sp.score = float(score)
        sp.type = pb.ModelProto.SentencePiece.UNKNOWN if i == unk else int(kind)

    t = proto.trainer_spec
    t.model_type = pb.TrainerSpec.BPE
    t.vocab_size = len(tokens)
    t.byte_fallback = True
    t.unk_id, t.bos_id, t.eos_id, t.pad_id = unk, bos, eos, pad
    t.unk_piece, t.bos_piece = tokens[unk], tokens[bos]
    t.eos_piece, t.pad_piece = tokens[eos], tokens[pad]

    n = proto.normalizer_spec
    n.name = "identity"
    n.add_dummy_prefix = False
    n.remove_extra_whitespaces = False
    n.escape_whitespaces = True
    return proto


def write_tokenizer_json(proto, path):
    """Hugging Face layout of a SentencePiece BPE model (as GemmaConverter writes it)."""
    import json
    kinds = pb.ModelProto.SentencePiece
    vocab = {}
    for i, p in enumerate(proto.pieces):
        vocab.setdefault(p.piece, i)
    merges = []
    for i, p in enumerate(proto.pieces):
        if p.type != kinds.NORMAL:
            continue
        for k in range(1, len(p.piece)):
            left, right = p.piece[:k], p.piece[k:]
            if left in vocab and right in vocab:
                merges.append((-p.score, i, vocab[left], vocab[right], left, right))
    merges.sort()
    added = [{"id": i, "content": p.piece, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": p.type == kinds.CONTROL}
             for i, p in enumerate(proto.pieces)
             if p.type in (kinds.CONTROL, kinds.USER_DEFINED, kinds.UNKNOWN)]
    doc = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "},
                          "behavior": "MergedWithPrevious", "invert": False},
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": proto.pieces[
                      proto.trainer_spec.unk_id].piece,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[m[4], m[5]] for m in merges]},
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)


def main():
    gguf_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        ROOT, "models/src/gemma-3-270m-q4_k_m.gguf")
    corpus = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        ROOT, "tests/tokenizer/corpus.txt")
    proto = rebuild(gguf_path)
    model_path = os.path.join(ROOT, "models/gemma3-rebuilt.model")
    with open(model_path, "wb") as f:
        f.write(proto.SerializeToString())

    write_tokenizer_json(proto, os.path.join(ROOT, "models/gemma3-rebuilt.tokenizer.json"))

    sp = spm.SentencePieceProcessor(model_file=model_path)
    lines = open(corpus, encoding="utf-8").read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out_dir = os.path.join(ROOT, "tests/tokenizer")
    with open(os.path.join(out_dir, "gemma3_expected_ids.txt"), "w") as ids_file, \
            open(os.path.join(out_dir, "gemma3_expected_decode.txt"), "w",
                 encoding="utf-8") as dec_file:
        for line in lines:
            ids = sp.encode(line)
            ids_file.write(" ".join(str(i) for i in ids) + "\n")
            dec_file.write(sp.decode(ids) + "\n")
    print("wrote %s and the expected ids of %d lines (sentencepiece %s)"
          % (model_path, len(lines), spm.__version__))


if __name__ == "__main__":
    main()
