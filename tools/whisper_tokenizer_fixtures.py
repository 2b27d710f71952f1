#!/usr/bin/env python3
"""Reference ids for Whisper's byte-level BPE, from the tokenizers and tiktoken packages.

Oracles, both built from the same models/whisper-base/tokenizer.json (tools/fetch_whisper_base.sh):
  tokenizers  the file itself. Plain mode: a copy without its added tokens, so that nothing is
              split out of the text; special mode: the file as is, encode(add_special_tokens=
              False), which splits out all 1608 added tokens.
  tiktoken    an Encoding made here from the same vocabulary (ranks = ids, raw bytes), the
              GPT-2 pattern and the added tokens as special tokens, as OpenAI's whisper
              builds its own from multilingual.tiktoken. Plain mode: encode_ordinary; special
              mode: encode(allowed_special="all"). (The .tiktoken files themselves are not
              fetched: only PyPI is reachable.)
The two must agree on every line and mode; the script stops if they do not.
With --openai-assets DIR (the whisper/assets folder of the openai-whisper sdist on PyPI:
pip download --no-deps --no-binary :all: openai-whisper), a third oracle uses OpenAI's own
multilingual.tiktoken ranks with the same special tokens, the rank table is compared with
the vocabulary, and gpt2.tiktoken (the .en models) is compared on the corpus for information.

Inputs: tests/tokenizer/corpus.txt, then tests/tokenizer/whisper_extra.txt (written here:
added tokens, timestamps, contractions, whitespace and number edge cases, invalid UTF-8).
Invalid UTF-8 becomes one U+FFFD per bad byte first, as gemini_tok_encode does.

Writes (committed; one line per input line):
  tests/tokenizer/whisper_extra.txt
  tests/tokenizer/whisper_expected_ids.txt            plain mode
  tests/tokenizer/whisper_expected_ids_special.txt    special mode
  tests/tokenizer/whisper_expected_decode.txt         tokenizers decode(skip_special_tokens)
  tests/tokenizer/whisper_expected_decode_special.txt of the plain / special ids
and prints the encode throughput of both packages on the corpus (information only).

Usage: /tmp/fxenv/bin/pip install tokenizers==0.23.3 tiktoken
       /tmp/fxenv/bin/python tools/whisper_tokenizer_fixtures.py [TOKENIZER_JSON]
           [--openai-assets DIR]
"""
import base64
import json
import os
import sys
import time

import tiktoken
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "tests", "tokenizer")
GPT2_PATTERN = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|"""
                r"""\s+""")

EXTRA = [
    "<|startoftranscript|><|en|><|transcribe|><|notimestamps|> Hello world.<|endoftext|>",
    "<|0.00|> And so my fellow Americans<|2.50|><|2.50|> ask not<|30.00|>",
    "<|startofprev|> previous text<|startoftranscript|><|ja|><|translate|><|0.00|>"
    "こんにちは<|1.24|>",
    "text<|endoftext|>more<|nospeech|><|startoflm|> <|de|>  <|yue|>",
    "<|endoftext <|30.02|> <|0.001|> <<|en|>> |<|de|>| <|EN|> <| en |>",
    "I'm you're they've we'll he'd it's don't DON'T I'M 'tis ''s o'clock rock'n'roll '",
    "x'sy 's'd 'll've're '   s",
    "trailing   ",
    "   ",
    "\t",
    " \u00a0 x \u00a0x\u00a0",
    "\u3000x\u3000\u3000y",
    "x\u2003\u2003y\u2028z\u2029",
    "\x0b\x0c\x1c\x1d\x1e\x1f\x85 controls and NEL",
    "１２３ ٣ Ⅻ ½ 2² ⅷ 𝟙𝟚",
    "a" * 300,
    " " * 50 + "x",
    "!!!!????....,,,,;;;;" * 5,
    "nul\x00byte",
    "mixed123abc 123 abc_def ___ ...x x... -1.5e+10",
]
EXTRA_BAD = [b"bad \xff byte", b"\xc3 truncated", b"\xe2\x82 short \xf0\x9f\x98 end",
             b"\xed\xa0\x80 surrogate \xc0\xaf overlong \xf4\x90\x80\x80 too big"]


def read_lines(path):
    """Lines as bytes, split at '\\n' (a final newline does not start another line)."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return lines


def sanitize(raw):
    """Bytes -> str with one U+FFFD per byte that does not start a valid character."""
    out, i = [], 0
    while i < len(raw):
        for k in range(1, 5):
            try:
                ch = raw[i:i + k].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(ch) == 1:
                out.append(ch)
                i += k
                break
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def byte_decoder():
    """GPT-2's byte-level character -> byte."""
    printable = (list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100)))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(0x100 + extra)] = b
            extra += 1
    return table


def load_tiktoken_file(path):
    """A .tiktoken file: one "base64-token rank" per line."""
    ranks = {}
    with open(path, "rb") as f:
        for line in f.read().splitlines():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def openai_oracles(assets, vocab, specials, texts):
    """Checks OpenAI's multilingual.tiktoken against the vocabulary; returns its Encoding and
    reports how gpt2.tiktoken (English-only models) differs on texts."""
    multi = load_tiktoken_file(os.path.join(assets, "multilingual.tiktoken"))
    if multi != vocab:
        sys.exit("multilingual.tiktoken differs from the vocabulary of tokenizer.json")
    print(f"multilingual.tiktoken: the same {len(multi)} (bytes, rank) pairs as "
          f"tokenizer.json's vocab (rank 50256 = {[k for k, v in multi.items() if v == 50256]})",
          file=sys.stderr)
    enc = tiktoken.Encoding(name="whisper-multilingual", pat_str=GPT2_PATTERN,
                            mergeable_ranks={k: v for k, v in multi.items() if k},
                            special_tokens=specials)
    gpt2 = tiktoken.Encoding(name="whisper-gpt2", pat_str=GPT2_PATTERN,
                             mergeable_ranks=load_tiktoken_file(os.path.join(assets,
                                                                             "gpt2.tiktoken")),
                             special_tokens={})
    same = sum(enc.encode_ordinary(t) == gpt2.encode_ordinary(t) for t in texts)
    print(f"gpt2.tiktoken (.en models) gives the multilingual ids on {same} of {len(texts)} "
          "lines (information only: a different vocabulary)", file=sys.stderr)
    return enc


def main():
    args = sys.argv[1:]
    assets = None
    if "--openai-assets" in args:
        at = args.index("--openai-assets")
        assets = args[at + 1]
        del args[at:at + 2]
    path = args[0] if args else os.path.join(ROOT, "models", "whisper-base", "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    hf_special = Tokenizer.from_file(path)
    plain_spec = dict(spec, added_tokens=[], post_processor=None)
    hf_plain = Tokenizer.from_str(json.dumps(plain_spec))

    decoder = byte_decoder()
    # Id 50256 is an empty piece (in multilingual.tiktoken too); tiktoken is given the rest.
    vocab = {bytes(decoder[c] for c in piece): i for piece, i in spec["model"]["vocab"].items()}
    ranks = {k: v for k, v in vocab.items() if k}
    specials = {t["content"]: t["id"] for t in spec["added_tokens"]}
    enc = tiktoken.Encoding(name="whisper-from-tokenizer-json", pat_str=GPT2_PATTERN,
                            mergeable_ranks=ranks, special_tokens=specials)

    with open(os.path.join(HERE, "whisper_extra.txt"), "wb") as f:
        for line in EXTRA:
            f.write(line.encode("utf-8") + b"\n")
        for line in EXTRA_BAD:
            f.write(line + b"\n")
    corpus = read_lines(os.path.join(HERE, "corpus.txt"))
    lines = corpus + read_lines(os.path.join(HERE, "whisper_extra.txt"))

    encoders = [("tiktoken", enc)]
    if assets:
        encoders.append(("openai-tiktoken", openai_oracles(assets, vocab, specials,
                                                           [sanitize(raw) for raw in lines])))

    outputs = {"ids": [], "ids_special": [], "decode": [], "decode_special": []}
    disagreements = 0
    for number, raw in enumerate(lines, 1):
        text = sanitize(raw)
        plain = hf_plain.encode(text, add_special_tokens=False).ids
        special = hf_special.encode(text, add_special_tokens=False).ids
        for label, encoder in encoders:
            for mode, ours, theirs in (
                    ("plain", plain, encoder.encode_ordinary(text)),
                    ("special", special, encoder.encode(text, allowed_special="all"))):
                if ours != theirs:
                    disagreements += 1
                    print(f"line {number} ({mode}): tokenizers {ours[:12]}... != "
                          f"{label} {theirs[:12]}...", file=sys.stderr)
        outputs["ids"].append(" ".join(map(str, plain)))
        outputs["ids_special"].append(" ".join(map(str, special)))
        outputs["decode"].append(hf_special.decode(plain, skip_special_tokens=True))
        outputs["decode_special"].append(hf_special.decode(special, skip_special_tokens=True))
        if "\n" in outputs["decode"][-1] + outputs["decode_special"][-1]:
            sys.exit(f"line {number}: a decode holds a newline")
    if disagreements:
        sys.exit(f"{disagreements} disagreements between tokenizers and tiktoken")
    for name, rows in outputs.items():
        with open(os.path.join(HERE, f"whisper_expected_{name}.txt"), "w", encoding="utf-8",
                  newline="\n") as f:
            f.write("".join(row + "\n" for row in rows))
    print(f"{len(lines)} lines ({len(corpus)} corpus + {len(lines) - len(corpus)} extra): "
          f"tokenizers and {', '.join(label for label, _ in encoders)} agree in both modes",
          file=sys.stderr)

    # Throughput on the corpus, one thread, plain mode (information only).
    texts = [sanitize(raw) for raw in corpus]
    size = sum(len(t.encode("utf-8")) for t in texts)
    for label, fn in (("tokenizers", lambda t: hf_plain.encode(t, add_special_tokens=False)),
                      ("tiktoken", enc.encode_ordinary)):
        rounds, start = 0, time.perf_counter()
        while time.perf_counter() - start < 1.0:
            for t in texts:
                fn(t)
            rounds += 1
        seconds = time.perf_counter() - start
        print(f"{label}: {size * rounds / seconds / 1e6:.2f} MB/s on the corpus "
              f"(line by line, one thread)", file=sys.stderr)


if __name__ == "__main__":
    main()
