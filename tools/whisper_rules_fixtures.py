#!/usr/bin/env python3
"""Writes the reference fixtures of tests/test_whisper.c from openai/whisper's own code.

    pip download --no-deps openai-whisper==20250625 && tar xzf openai_whisper-20250625.tar.gz
    python3 tools/whisper_rules_fixtures.py openai_whisper-20250625 [OUT_DIR]

Needs torch, numpy, tiktoken and tqdm (not numba: the word-timing module it imports is given
a stand-in). Writes to OUT_DIR (default tests/whisper):

filters.txt   Whisper's three logit filters (SuppressBlank, SuppressTokens,
              ApplyTimestampRules, in DecodingTask's order) applied to random rows over a small
              made-up vocabulary: text 0-19, eot 20, sot 21, two languages, translate 24,
              transcribe 25, sot_lm 26, sot_prev 27, no_speech 28, no_timestamps 29, timestamps
              30-69. Per case: "case N_SAMPLED MAX_INITIAL", the sampled tokens, the logits
              (as integers: the logit times 16, exact in float32) and the ids the filters set
              to -inf.

transcribe.txt  whisper.transcribe() end to end with a fake, deterministic Whisper model whose
              logits are a hash of the audio window and the token history (fake_logits below,
              repeated in tests/test_whisper.c), on made-up audio of tones (tone_audio below).
              Per configuration: its options, then every segment (seek, start, end, tokens,
              avg_logprob, no_speech_prob, and the text in hex when a tokenizer is used), the
              language and the whole text.

vocab.txt     the multilingual tokenizer's non_speech_tokens, encode(" ") and language codes.

writers.txt   the reference's txt, srt, vtt, tsv and json writers on WRITER_RESULT, in hex.
"""
import os
import sys
import types

import numpy as np
import torch

V_FAKE = 70

# ---- the fake model (keep in step with tests/test_whisper.c) --------------------------------

N_VOCAB, EOT, SOT, NO_SPEECH, TB = 51865, 50257, 50258, 50362, 50364
LANG_FIRST, LANG_END = 50259, 50358
M32 = 0xFFFFFFFF


def mix(x):
    """A 32-bit integer hash (numpy uint32 arrays or Python ints)."""
    x = np.asarray(x, dtype=np.uint64) & M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & M32
    x ^= x >> np.uint64(16)
    return x


MIXED_IDS = mix(np.arange(N_VOCAB, dtype=np.uint64))


def fake_logits(feature, history):
    """Logits after `history` (all tokens so far) for a window whose feature is `feature`."""
    h = (2166136261 ^ ((feature * 0x9E3779B1) & M32)) & M32
    for t in history:
        h = ((h ^ int(t)) * 16777619) & M32
    sampled = []
    if SOT in history:
        k = len(history) - 1 - history[::-1].index(SOT)
        sampled = history[k + 3:]
    n_s = len(sampled)
    last_ts, k_since = 0, n_s
    for i in range(n_s - 1, -1, -1):
        if sampled[i] >= TB:
            last_ts, k_since = sampled[i] - TB, n_s - 1 - i
            break
    noise = (mix(np.uint64(h) ^ MIXED_IDS) >> np.uint64(12)).astype(np.float64) / 65536.0
    logits = np.full(N_VOCAB, -30.0)
    logits[:2000] = noise[:2000] / 4 - 2
    fav = 1 + h % 1999
    logits[fav] += 2 + (h >> 8) % 8
    logits[EOT] = (n_s - 36) / 8.0
    logits[LANG_FIRST:LANG_END] = noise[LANG_FIRST:LANG_END] / 4 - 4
    logits[NO_SPEECH] = noise[NO_SPEECH] / 2 - 2 + feature % 4
    target = last_ts + 15 + 5 * k_since
    ts = np.arange(N_VOCAB - TB)
    near = np.abs(ts - target) <= 3
    logits[TB:] = np.where(near, noise[TB:] / 4 + (k_since - 5), noise[TB:] / 4 - 9)
    return logits.astype(np.float32)


def tone_audio(seconds):
    """Tones that change every 7.3 s, so that windows differ: 16 kHz float32."""
    freqs = [440.0, 1250.0, 2900.0, 700.0, 5100.0, 330.0, 1800.0, 3700.0, 950.0, 6200.0]
    n = int(seconds * 16000)
    i = np.arange(n)
    band = (i // 116800) % len(freqs)
    f = np.array(freqs)[band]
    return (0.5 * np.sin(2 * np.pi * f * i / 16000.0)).astype(np.float32)


class FakeModel:
    def __init__(self, decoding):
        class Dims:
            n_mels, n_audio_ctx, n_audio_state, n_text_ctx = 80, 1500, 4, 448
            n_vocab = N_VOCAB
        self.dims = Dims()
        self.device = torch.device("cpu")
        self.is_multilingual = True
        self.num_languages = 99
        self._decoding = decoding
        model = self

        class Decoder:
            """Callable like the real one, with the blocks PyTorchInference looks into."""
            blocks = [types.SimpleNamespace(
                attn=types.SimpleNamespace(key="history", value="history_v"))]

            def __call__(self, tokens, audio_features, kv_cache=None):
                return model.run_decoder(tokens, audio_features, kv_cache)

        self.decoder = Decoder()

    def encoder(self, mel):
        feature = mel[:, :, 0].argmax(dim=1).float()
        out = torch.zeros(mel.shape[0], 1500, 4)
        out[:, 0, 0] = feature
        return out

    def install_kv_cache_hooks(self):
        return {"history": None, "history_v": None}, []

    def run_decoder(self, tokens, audio_features, kv_cache=None):
        """The decoder: its "KV cache" is the token history, which beam search reorders."""
        previous = None if kv_cache is None else kv_cache.get("history")
        history = tokens if previous is None else torch.cat([previous, tokens], dim=1)
        if kv_cache is not None:
            kv_cache["history"] = kv_cache["history_v"] = history
        offset = history.shape[1] - tokens.shape[1]
        out = torch.zeros(tokens.shape[0], tokens.shape[1], N_VOCAB)
        for row in range(tokens.shape[0]):
            # the reference shares one audio row across beams (broadcast)
            feature = int(audio_features[min(row, audio_features.shape[0] - 1), 0, 0].item())
            seq = history[row].tolist()
            for j in range(tokens.shape[1]):
                out[row, j] = torch.from_numpy(fake_logits(feature, seq[: offset + j + 1]))
        return out

    def logits(self, tokens, audio_features):
        return self.run_decoder(tokens, audio_features)

    def decode(self, mel, options):
        return self._decoding.decode(self, mel, options)

    def detect_language(self, mel, tokenizer=None):
        return self._decoding.detect_language(self, mel, tokenizer)


def load_whisper(src):
    package = types.ModuleType("whisper")
    package.__path__ = [os.path.join(src, "whisper")]
    sys.modules["whisper"] = package
    numba = types.ModuleType("numba")
    numba.jit = lambda *a, **k: (lambda f: f)
    sys.modules["numba"] = numba
    import whisper.decoding as decoding
    import whisper.tokenizer as tokenizer
    import whisper.transcribe as transcribe
    return decoding, tokenizer, transcribe


def write_filters(decoding, path):
    class Tok:
        eot, sot, no_timestamps, timestamp_begin = 20, 21, 29, 30

        def encode(self, text):
            return [3]

    tok = Tok()
    rng = np.random.default_rng(7)
    suppress = [1, 5, 22, 24, 25, 26, 27, 28]
    with open(path, "w") as f:
        f.write("# vocab 70: text 0-19, eot 20, timestamps 30-69; blank [3]; suppress "
                + " ".join(map(str, suppress)) + "\n")
        for case in range(400):
            n_sampled = int(rng.integers(0, 7))
            seq = []
            for _ in range(n_sampled):
                seq.append(int(rng.integers(30, V_FAKE)) if rng.random() < 0.45
                           else int(rng.integers(0, 20)))
            max_initial = [None, 0, 3, 10][case % 4]
            prefix = [21, 22, 25]
            tokens = torch.tensor([prefix + seq])
            row = rng.integers(-64, 64, size=V_FAKE)
            if case % 3 == 0:
                row[30:] += 40
            logits = torch.from_numpy((row / 16.0).astype(np.float32))[None, :].clone()
            for flt in [decoding.SuppressBlank(tok, len(prefix)),
                        decoding.SuppressTokens(suppress),
                        decoding.ApplyTimestampRules(tok, len(prefix), max_initial)]:
                flt.apply(logits, tokens)
            masked = [i for i in range(V_FAKE) if logits[0, i].item() == -np.inf]
            f.write(f"case {n_sampled} {-1 if max_initial is None else max_initial}\n")
            f.write(" ".join(map(str, seq)) + "\n")
            f.write(" ".join(map(str, row.tolist())) + "\n")
            f.write(" ".join(map(str, masked)) + "\n")


CONFIGS = [
    # name, seconds, transcribe() options
    ("greedy", 75.0, dict(language="en", temperature=(0.0,), compression_ratio_threshold=None)),
    ("beam", 62.0, dict(language=None, temperature=(0.0,), beam_size=5,
                        compression_ratio_threshold=None)),
    ("greedy-noprev", 48.0, dict(language="de", temperature=(0.0,),
                                 condition_on_previous_text=False,
                                 compression_ratio_threshold=None, no_speech_threshold=0.3,
                                 logprob_threshold=-0.5)),
    ("beam-patience", 40.0, dict(language="en", temperature=(0.0,), beam_size=3, patience=2.0,
                                 compression_ratio_threshold=None)),
    ("short", 0.7, dict(language=None, temperature=(0.0,), compression_ratio_threshold=None)),
]


def write_transcribe(decoding, transcribe, tokenizer, path):
    model = FakeModel(decoding)
    tok = tokenizer.get_tokenizer(True, num_languages=99, language="en", task="transcribe")
    with open(path, "w") as f:
        for name, seconds, options in CONFIGS:
            audio = tone_audio(seconds)
            result = transcribe.transcribe(model, audio, verbose=None, fp16=False, **options)
            f.write(f"config {name} {seconds} " + " ".join(
                f"{k}={'|'.join(map(str, v)) if isinstance(v, tuple) else v}"
                for k, v in options.items()) + "\n")
            for s in result["segments"]:
                f.write(f"segment {s['seek']} {s['start']!r} {s['end']!r} "
                        f"{s['avg_logprob']!r} {s['no_speech_prob']!r} {len(s['tokens'])} "
                        + " ".join(map(str, s["tokens"])) + f" | {s['text'].encode().hex()}\n")
            f.write(f"language {result['language']}\n")
            f.write(f"text {result['text'].encode().hex()}\n")
            f.write("end\n")
            print(f"{name}: {len(result['segments'])} segments", file=sys.stderr)
    del tok


def write_vocab(tokenizer, path):
    tok = tokenizer.get_tokenizer(True, num_languages=99, language="en", task="transcribe")
    with open(path, "w") as f:
        f.write("non_speech " + " ".join(map(str, tok.non_speech_tokens)) + "\n")
        f.write("blank " + " ".join(map(str, tok.encode(" "))) + "\n")
        # all_language_tokens follows a set's order, which changes between runs: sort by id
        pairs = sorted(zip(tok.all_language_tokens, tok.all_language_codes))
        f.write("languages " + " ".join(code for _, code in pairs) + "\n")
        f.write("language_ids " + " ".join(str(i) for i, _ in pairs) + "\n")


WRITER_RESULT = {
    "text": " Hello world. Second --> arrow\ttab \"q\" \u00e9\u4e16\U0001f600",
    "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 2.54, "text": " Hello world.",
         "tokens": [50364, 2425, 1002, 13, 50491], "temperature": 0.0, "avg_logprob": -0.25,
         "compression_ratio": 1.5, "no_speech_prob": 0.125},
        {"id": 1, "seek": 3000, "start": 30.0, "end": 30.0, "text": "", "tokens": [],
         "temperature": 0.2, "avg_logprob": -1.5, "compression_ratio": 0.0,
         "no_speech_prob": 0.5},
        {"id": 2, "seek": 360000, "start": 3600.5, "end": 3725.0125,
         "text": " Second --> arrow\ttab \"q\" \u00e9\u4e16\U0001f600 ",
         "tokens": [3, 4], "temperature": 1.0, "avg_logprob": -3.0517578125e-05,
         "compression_ratio": 2.75, "no_speech_prob": 1e-08},
    ],
    "language": "en",
}


def write_writers(src, path):
    """The reference's writers (whisper/utils.py) on WRITER_RESULT, each output in hex."""
    import io
    import whisper.utils as utils
    with open(path, "w") as f:
        for name, cls in [("txt", utils.WriteTXT), ("srt", utils.WriteSRT),
                          ("vtt", utils.WriteVTT), ("tsv", utils.WriteTSV),
                          ("json", utils.WriteJSON)]:
            buffer = io.StringIO()
            cls(".").write_result(WRITER_RESULT, buffer)
            f.write(f"{name} {buffer.getvalue().encode().hex()}\n")
    del src


def main():
    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else "tests/whisper"
    decoding, tokenizer, transcribe = load_whisper(src)
    torch.set_num_threads(1)
    write_filters(decoding, os.path.join(out, "filters.txt"))
    write_vocab(tokenizer, os.path.join(out, "vocab.txt"))
    write_writers(src, os.path.join(out, "writers.txt"))
    write_transcribe(decoding, transcribe, tokenizer, os.path.join(out, "transcribe.txt"))


if __name__ == "__main__":
    main()
