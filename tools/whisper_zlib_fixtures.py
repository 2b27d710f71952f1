#!/usr/bin/env python3
"""Writes tests/whisper/zlib_sizes.txt: texts and the size zlib.compress gives them.

Whisper's temperature fallback compares len(text) / len(zlib.compress(text)) with 2.4
(whisper/utils.py compression_ratio). gemini_audio.h models zlib's level-6 compressor to get
that size without zlib; tests/test_whisper.c checks the model against these sizes.

Each line: SIZE HEX, where HEX is the UTF-8 text in hexadecimal (empty for the empty text).
The texts are deterministic: speech-like sentences, the repetition loops Whisper falls into,
Unicode text, random bytes and a few long ones, from 0 bytes to 17 KB.
Usage: python3 tools/whisper_zlib_fixtures.py [OUTPUT]   (prints the zlib version used)
"""
import random
import sys
import zlib

WORDS = (
    "the quick brown fox jumps over a lazy dog and then we went to see what was happening "
    "in the city yesterday so I think that is right you know it is important to remember "
    "thank you very much for watching please subscribe music applause okay yes no maybe "
    "because government people would could should really actually basically"
).split()

SENTENCES = [
    "",
    "a",
    " ",
    "Thank you.",
    " Thank you.",
    "The quick brown fox jumps over the lazy dog.",
    "And so, my fellow Americans, ask not what your country can do for you, ask what you can "
    "do for your country.",
    "xabcabc",
    "abcabc",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "Das ist ein Test. Wir sprechen heute über die Übersetzung von Sprache.",
    "今日はいい天気ですね。明日も晴れるといいですね。",
    "Привет, как дела? Всё хорошо, спасибо.",
    "♪ ♪ ♪",
    "- Hello? - Hi! - How are you? - Fine.",
]


def loops(rng):
    """Repetition loops, the case the 2.4 threshold exists for."""
    out = []
    for phrase in ["Thank you.", " I'm going to go to the store.", " So", " the", "Okay.",
                   " We'll be right back.", " 1, 2, 3, 4,"]:
        for count in [1, 2, 3, 5, 8, 13, 30]:
            out.append(phrase * count)
    for _ in range(20):
        phrase = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8)))
        out.append((phrase + " ") * rng.randint(2, 40))
    return out


def speech(rng, n):
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 120))]
        text = " " + " ".join(words)
        if rng.random() < 0.5:
            text = text.capitalize() + "."
        out.append(text)
    return out


def noise(rng):
    out = []
    for length in [1, 2, 3, 10, 50, 258, 259, 300, 1000, 4000]:
        out.append(bytes(rng.randrange(256) for _ in range(length)))
        out.append(bytes(rng.randrange(97, 101) for _ in range(length)))  # a-d: long matches
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/whisper/zlib_sizes.txt"
    rng = random.Random(20240611)
    texts = [s.encode() for s in SENTENCES]
    texts += [s.encode() for s in loops(rng)]
    texts += [s.encode() for s in speech(rng, 120)]
    texts += noise(rng)
    long_text = " ".join(rng.choice(WORDS) for _ in range(5000)).encode()
    texts += [long_text[:8000]]
    texts += [(b"abc" * 6000)[:17000]]  # more than 16383 symbols: two blocks
    with open(path, "w") as f:
        for t in texts:
            f.write(f"{len(zlib.compress(t))} {t.hex()}\n")
    print(f"{len(texts)} texts, zlib {zlib.ZLIB_RUNTIME_VERSION}", file=sys.stderr)


if __name__ == "__main__":
    main()
