#!/usr/bin/env python3
"""Hugging Face reference transcripts and numbers for the real Whisper base weights.

Reads the CTranslate2 Whisper base model that tools/fetch_whisper_base.sh fetches (model.bin,
binary format v6, float16, and tokenizer.json), builds transformers'
WhisperForConditionalGeneration in float32 from those exact weights (float16 values widened,
nothing else changed), checks that it transcribes speech, and writes:

    tests/whisper/expected.txt               greedy transcript of every clip that
                                             tests/whisper/make_clips.sh makes, with its word
                                             error rate against the sentence espeak-ng read
    tests/fixtures/whisper-base/reference.txt encoder output summary and decoder top-5 logits
                                             for the clip s1_16k_mono_s16.wav

Usage (after `sh tests/whisper/make_clips.sh`):

    /tmp/fxenv/bin/python tools/make_whisper_reference.py [--model-dir models/whisper-base]
        [--clips tests/out/whisper-clips] [--save-hf DIR]

--save-hf also writes the float32 model as a Hugging Face checkpoint folder (config.json,
generation_config.json, model.safetensors, tokenizer.json; about 290 MB).

Audio is decoded here with scipy.io.wavfile, not with gemini_audio.h: integers are divided
by 2^(bits-1), float samples clamped to [-1, 1], channels averaged, then resampled to 16 kHz
with soxr at quality VHQ (what tests/audio holds gemini_audio.h's resampler to). The log-mel
comes from WhisperFeatureExtractor's NumPy path (_np_extract_fbank_features), which
gemini_audio.h matches to 1.2e-7; its public call would take the torch STFT when torch is
installed, which differs from the NumPy path by up to 3e-5.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import sys

import numpy as np
import scipy
import scipy.io.wavfile
import soxr
import torch
import transformers
from tokenizers import Tokenizer
from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                          WhisperForConditionalGeneration)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# CTranslate2 DataType enum order (include/ctranslate2/types.h)
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
CT2_MAX_RANK = 8


# ---------------------------------------------------------------------------------------------
# CTranslate2 model.bin

class Ct2Reader:
    """Reads the little-endian fields of a CTranslate2 model.bin, checking every bound."""

    def __init__(self, data, path):
        self.data, self.path, self.pos = data, path, 0

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.data):
            raise SystemExit("%s: %s at offset %d needs %d bytes, the file has %d"
                             % (self.path, what, self.pos, n, len(self.data)))
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def scalar(self, fmt, what):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))[0]

    def string(self, what):
        # u16 length including a terminating NUL, then the bytes
        n = self.scalar("H", what + " length")
        raw = self.take(n, what)
        if n == 0 or raw[-1] != 0:
            raise SystemExit("%s: %s at offset %d is not NUL-terminated"
                             % (self.path, what, self.pos - n))
        return raw[:-1].decode("utf-8")


def read_ct2(path):
    """name -> numpy array of a CTranslate2 model.bin (format v6), aliases resolved."""
    with open(path, "rb") as f:
        data = f.read()
    r = Ct2Reader(data, path)
    version = r.scalar("I", "binary version")
    if version != 6:
        raise SystemExit("%s: binary version %d, this reader knows 6" % (path, version))
    spec = r.string("spec name")
    revision = r.scalar("I", "spec revision")
    variables = {}
    for _ in range(r.scalar("I", "variable count")):
        name = r.string("variable name")
        rank = r.scalar("B", name + " rank")
        if rank > CT2_MAX_RANK:
            raise SystemExit("%s: %s has rank %d" % (path, name, rank))
        shape = tuple(r.scalar("I", name + " dim") for _ in range(rank))
        type_id = r.scalar("B", name + " type")
        if type_id not in CT2_DTYPES:
            raise SystemExit("%s: %s has type id %d" % (path, name, type_id))
        dtype = np.dtype(CT2_DTYPES[type_id]).newbyteorder("<")
        n_bytes = r.scalar("I", name + " byte count")
        if n_bytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise SystemExit("%s: %s holds %d bytes for shape %s of %s"
                             % (path, name, n_bytes, shape, dtype))
        variables[name] = np.frombuffer(r.take(n_bytes, name), dtype=dtype).reshape(shape)
    for _ in range(r.scalar("I", "alias count")):
        alias, target = r.string("alias"), r.string("alias target")
        if target not in variables:
            raise SystemExit("%s: alias %s names the missing %s" % (path, alias, target))
        variables[alias] = variables[target]
    if r.pos != len(data):
        raise SystemExit("%s: %d bytes after the aliases" % (path, len(data) - r.pos))
    return spec, revision, variables


def ct2_to_hf(v, n_enc, n_dec, d):
    """HF WhisperForConditionalGeneration state dict (float32 tensors) from CT2 variables."""
    sd = {}

    def put(name, array):
        sd[name] = torch.from_numpy(np.asarray(array, dtype=np.float32).copy())

    def split_rows(name, parts):
        w, b = v[name + "/weight"], v[name + "/bias"]
        if w.shape[0] != parts * d or b.shape != (parts * d,):
            raise SystemExit("CT2 %s: shape %s, bias %s, expected %d x %d rows"
                             % (name, w.shape, b.shape, parts, d))
        return [(w[i * d:(i + 1) * d], b[i * d:(i + 1) * d]) for i in range(parts)]

    def linear(dst, src):
        put(dst + ".weight", v[src + "/weight"])
        put(dst + ".bias", v[src + "/bias"])

    def norm(dst, src):
        put(dst + ".weight", v[src + "/gamma"])
        put(dst + ".bias", v[src + "/beta"])

    def attention(dst, q, k, v_):
        # Whisper's key projection has no bias: CT2 stores zeros in the fused bias
        for proj, (w, b) in (("q_proj", q), ("k_proj", k), ("v_proj", v_)):
            put("%s.%s.weight" % (dst, proj), w)
            if proj == "k_proj":
                if np.any(b != 0):
                    raise SystemExit("CT2 %s: key bias is not zero" % dst)
            else:
                put("%s.%s.bias" % (dst, proj), b)

    for side in ("encoder", "decoder"):
        put("model.%s.embed_positions.weight" % side, v[side + "/position_encodings/encodings"])
        norm("model.%s.layer_norm" % side, side + "/layer_norm")
    for conv in ("conv1", "conv2"):
        linear("model.encoder." + conv, "encoder/" + conv)
    put("model.decoder.embed_tokens.weight", v["decoder/embeddings/weight"])

    for side, n_layers in (("encoder", n_enc), ("decoder", n_dec)):
        for i in range(n_layers):
            src, dst = "%s/layer_%d" % (side, i), "model.%s.layers.%d" % (side, i)
            norm(dst + ".self_attn_layer_norm", src + "/self_attention/layer_norm")
            attention(dst + ".self_attn", *split_rows(src + "/self_attention/linear_0", 3))
            linear(dst + ".self_attn.out_proj", src + "/self_attention/linear_1")
            if side == "decoder":
                norm(dst + ".encoder_attn_layer_norm", src + "/attention/layer_norm")
                q = (v[src + "/attention/linear_0/weight"], v[src + "/attention/linear_0/bias"])
                attention(dst + ".encoder_attn", q, *split_rows(src + "/attention/linear_1", 2))
                linear(dst + ".encoder_attn.out_proj", src + "/attention/linear_2")
            norm(dst + ".final_layer_norm", src + "/ffn/layer_norm")
            linear(dst + ".fc1", src + "/ffn/linear_0")
            linear(dst + ".fc2", src + "/ffn/linear_1")
    return sd


def special_ids(tokenizer):
    ids = {}
    for name in ("<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>",
                 "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>",
                 "<|0.00|>", "<|en|>"):
        i = tokenizer.token_to_id(name)
        if i is None:
            raise SystemExit("tokenizer.json has no %s" % name)
        ids[name] = i
    return ids


def build_model(model_dir):
    """(model, tokenizer, special ids, notes) for the CT2 Whisper base in model_dir."""
    spec, revision, v = read_ct2(os.path.join(model_dir, "model.bin"))
    with open(os.path.join(model_dir, "config.json")) as f:
        ct2_config = json.load(f)
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    ids = special_ids(tokenizer)

    n_enc, n_dec = (len({m.group(1) for m in map(re.compile(side + r"/layer_(\d+)/").match, v)
                         if m}) for side in ("encoder", "decoder"))
    vocab, d = v["decoder/embeddings/weight"].shape
    n_mels = v["encoder/conv1/weight"].shape[1]
    ffn = v["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    heads_enc, heads_dec = int(v["encoder/num_heads"]), int(v["decoder/num_heads"])
    # The decoder flags CT2 uses for other architectures must be Whisper's: pre-LayerNorm,
    # unscaled token embeddings, learned positions from 0, exact GELU (ActivationType 3).
    flags = {k: int(v["decoder/" + k]) for k in ("pre_norm", "scale_embeddings", "alibi",
                                                 "start_from_zero_embedding", "activation")}
    if flags != {"pre_norm": 1, "scale_embeddings": 0, "alibi": 0,
                 "start_from_zero_embedding": 0, "activation": 3}:
        raise SystemExit("unexpected CT2 decoder flags %s" % flags)

    lang_ids = ct2_config["lang_ids"]
    lang_to_id = {tokenizer.id_to_token(i): i for i in lang_ids}
    config = WhisperConfig(
        vocab_size=vocab, num_mel_bins=n_mels, d_model=d,
        encoder_layers=n_enc, decoder_layers=n_dec,
        encoder_attention_heads=heads_enc, decoder_attention_heads=heads_dec,
        encoder_ffn_dim=ffn, decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
        activation_function="gelu", scale_embedding=False, tie_word_embeddings=True,
        pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"], decoder_start_token_id=ids["<|startoftranscript|>"],
        # as openai/whisper-base's config.json has them (WhisperConfig's default 50256 is a
        # text id here); generate() reads the generation config below
        suppress_tokens=ct2_config["suppress_ids"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
    )
    config._attn_implementation = "eager"
    model = WhisperForConditionalGeneration(config)
    sd = ct2_to_hf(v, n_enc, n_dec, d)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if m != "proj_out.weight"]
    if missing or unexpected:
        raise SystemExit("state dict mismatch: missing %s, unexpected %s" % (missing, unexpected))
    model.tie_weights()
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    model.eval()

    # openai/whisper-base's generation settings, from the CT2 config and the tokenizer
    gen = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"], max_length=config.max_target_positions,
        suppress_tokens=ct2_config["suppress_ids"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
        alignment_heads=ct2_config["alignment_heads"],
        is_multilingual=True, lang_to_id=lang_to_id,
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50, return_timestamps=False,
    )
    model.generation_config = gen

    # The stored encoder positions should be the sinusoids, rounded to float16
    pos = v["encoder/position_encodings/encodings"].astype(np.float64)
    half = d // 2
    inv = np.exp(-np.log(10000.0) / (half - 1) * np.arange(half))
    t = np.arange(pos.shape[0])[:, None] * inv[None, :]
    sinus = np.concatenate([np.sin(t), np.cos(t)], axis=1)
    notes = {
        "spec": "%s revision %d" % (spec, revision),
        "sizes": "vocab %d d %d mels %d enc %d x %d heads dec %d x %d heads ffn %d" % (
            vocab, d, n_mels, n_enc, heads_enc, n_dec, heads_dec, ffn),
        "enc_pos_vs_sinusoids": float(np.abs(pos - sinus).max()),
        "dtypes": sorted({str(a.dtype) for a in v.values()}),
    }
    return model, tokenizer, ids, notes


# ---------------------------------------------------------------------------------------------
# Audio

def wav_bits(path):
    """bitsPerSample of the fmt chunk (scipy reports 24-bit samples as int32)."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 12
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if tag == b"fmt " and size >= 16 and pos + 24 <= len(data):
            return struct.unpack("<H", data[pos + 22:pos + 24])[0]
        pos += 8 + size + (size & 1)
    raise SystemExit("%s: no fmt chunk" % path)


def load_wav(path):
    """(rate, channels, bits, mono float64 in [-1, 1]) decoded with scipy."""
    rate, data = scipy.io.wavfile.read(path)
    channels = 1 if data.ndim == 1 else data.shape[1]
    if data.dtype == np.uint8:
        x, bits = (data.astype(np.float64) - 128.0) / 128.0, 8
    elif data.dtype == np.int16:
        x, bits = data.astype(np.float64) / 32768.0, 16
    elif data.dtype == np.int32:
        # scipy returns 24-bit samples left-justified in an int32, so one scale serves both
        bits = wav_bits(path)
        x = data.astype(np.float64) / 2147483648.0
    elif data.dtype in (np.float32, np.float64):
        x, bits = np.clip(data.astype(np.float64), -1.0, 1.0), data.dtype.itemsize * 8
    else:
        raise SystemExit("unexpected sample type %s in %s" % (data.dtype, path))
    if x.ndim == 2:
        x = x.mean(axis=1)
    return rate, channels, bits, x


def audio_16k(path):
    rate, channels, bits, x = load_wav(path)
    if rate != 16000:
        x = soxr.resample(x, rate, 16000, quality="VHQ")
    return rate, channels, bits, x.astype(np.float32)


def features_30s(fe, x):
    """[1, n_mels, 3000]: the clip zero-padded to 30 s (shorter clips only)."""
    if len(x) > fe.n_samples:
        raise SystemExit("features_30s: %d samples is over 30 s" % len(x))
    padded = np.zeros(fe.n_samples, dtype=np.float32)
    padded[:len(x)] = x
    return torch.from_numpy(fe._np_extract_fbank_features(padded[None, :], "cpu")[:1])


def features_long(fe, x):
    """[1, n_mels, len // 160]: the whole clip, no padding or truncation (long-form input)."""
    return torch.from_numpy(fe._np_extract_fbank_features(x[None, :], "cpu")[:1])


# ---------------------------------------------------------------------------------------------
# Decoding

def suppress(logits, gen, first):
    out = logits.clone()
    out[list(gen.suppress_tokens)] = -float("inf")
    if first:
        out[list(gen.begin_suppress_tokens)] = -float("inf")
    return out


def argmax_lowest(x):
    """Index of the largest value; the lowest index among equal values."""
    return int(np.flatnonzero(x == x.max())[0])


@torch.no_grad()
def greedy_by_hand(model, features, prompt, eot, max_new=224):
    """Greedy decode with the model's forward, one full re-forward per step.

    Returns the new ids (without eot), the raw logits rows (one per step, the last with eot
    chosen), the no-speech probability and the average log-probability as openai/whisper
    computes them: the softmax of the raw logits after <|startoftranscript|> at the first
    step, and the sum of the chosen tokens' log-softmax after suppression (eot included)
    divided by (number of text tokens + 1)."""
    gen = model.generation_config
    encoder_out = model.model.encoder(features).last_hidden_state
    tokens, rows, logprob_sum, no_speech = list(prompt), [], 0.0, None
    cache, fed = None, 0
    while len(tokens) - len(prompt) < max_new:
        # with the KV cache: each step feeds only the tokens the cache has not seen
        out = model(encoder_outputs=(encoder_out,), decoder_input_ids=torch.tensor([tokens[fed:]]),
                    past_key_values=cache, use_cache=True)
        cache, fed = out.past_key_values, len(tokens)
        all_logits = out.logits[0].double()
        if no_speech is None:
            no_speech = torch.softmax(all_logits[0], dim=-1)
        logits = all_logits[-1]
        rows.append(logits.float().numpy())
        filtered = suppress(logits, gen, first=len(tokens) == len(prompt))
        token = argmax_lowest(filtered.numpy())
        logprob_sum += float(torch.log_softmax(filtered, dim=-1)[token])
        if token == eot:
            break
        tokens.append(token)
    new = tokens[len(prompt):]
    return new, rows, no_speech, logprob_sum / (len(new) + 1), encoder_out[0].numpy()


def normalise(text):
    text = text.lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def word_error_rate(reference, hypothesis):
    """Word-level Levenshtein distance over the reference word count (normalised text)."""
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    if not ref:
        return float(len(hyp) > 0)
    return previous[-1] / len(ref)


# ---------------------------------------------------------------------------------------------
# Clips and what espeak-ng read in each

def sentences():
    text = {}
    with open(os.path.join(REPO, "tests", "whisper", "sentences.txt")) as f:
        for line in f:
            if line.strip():
                key, sentence = line.rstrip("\n").split(" ", 1)
                text[key] = sentence
    return text


def clip_sentence_ids(name):
    """The sentence ids make_clips.sh spoke into clip NAME (no extension)."""
    special = {
        "long_16k_mono_s16": ["l%d" % i for i in range(1, 9)] + ["s%d" % i for i in range(1, 8)],
        "word_16k_mono_s16": ["w1"],
        "silence_16k_mono_s16": [],
        "noise_16k_mono_s16": [],
    }
    if name in special:
        return special[name]
    return [name.split("_")[0]]


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tool_versions(clips_dir):
    path = os.path.join(clips_dir, "VERSIONS")
    if not os.path.exists(path):
        raise SystemExit("%s missing: run sh tests/whisper/make_clips.sh first" % path)
    with open(path) as f:
        lines = [line.split("Data at:")[0].strip() for line in f if line.strip()]
    return ", ".join(" ".join(line.split()) for line in lines)


NO_SPEECH_THRESHOLD, LOGPROB_THRESHOLD = 0.6, -1.0


@torch.no_grad()
def transcribe_short(model, tokenizer, ids, fe, x):
    """Short-form greedy transcript by generate(), checked against the hand loop."""
    features = features_30s(fe, x)
    out = model.generate(features, language="en", task="transcribe", return_timestamps=False,
                         num_beams=1, do_sample=False, temperature=0.0)
    prompt = [ids["<|startoftranscript|>"], ids["<|en|>"], ids["<|transcribe|>"],
              ids["<|notimestamps|>"]]
    eot = ids["<|endoftext|>"]
    generated = out[0].tolist()
    if generated[:len(prompt)] == prompt:
        generated = generated[len(prompt):]
    if generated and generated[-1] == eot:
        generated = generated[:-1]
    new, rows, no_speech, avg_logprob, encoder_out = greedy_by_hand(model, features, prompt, eot)
    if new != generated:
        raise SystemExit("generate() gave %s, the hand loop %s" % (generated, new))
    gaps = []
    for step, row in enumerate(rows):
        filtered = suppress(torch.from_numpy(row).double(), model.generation_config,
                            first=step == 0).numpy()
        top = np.sort(filtered[np.isfinite(filtered)])[-2:]
        gaps.append(float(top[1] - top[0]))
    return dict(ids=new, text=tokenizer.decode(new).strip(), gaps=gaps,
                no_speech=float(no_speech[ids["<|nospeech|>"]]), avg_logprob=avg_logprob,
                features=features, encoder_out=encoder_out, rows=rows, prompt=prompt)


@torch.no_grad()
def transcribe_long(model, tokenizer, ids, fe, x):
    """Long-form sequential transcript: the whole log-mel, timestamps on, no fallback."""
    features = features_long(fe, x)
    out = model.generate(features, language="en", task="transcribe", return_timestamps=True,
                         num_beams=1, do_sample=False, temperature=0.0,
                         condition_on_prev_tokens=False, return_segments=True)
    sequence = out["sequences"][0].tolist()
    text_ids = [t for t in sequence if t < ids["<|endoftext|>"]]
    segments = []
    for segment in out["segments"][0]:
        tokens = [t for t in segment["tokens"].tolist() if t < ids["<|endoftext|>"]]
        segments.append((float(segment["start"]), float(segment["end"]),
                         tokenizer.decode(tokens).strip()))
    return dict(ids=sequence, text=tokenizer.decode(text_ids).strip(), segments=segments,
                frames=features.shape[-1])


def top_k(row, k=5):
    order = np.argsort(-row, kind="stable")[:k]
    return " ".join("%d:%.6f" % (i, row[i]) for i in order)


@torch.no_grad()
def write_base_reference(path, model, tokenizer, clip_path, short, notes, versions):
    """tests/fixtures/whisper-base/reference.txt for one clip."""
    features = short["features"]
    mel = features[0].numpy()
    enc = short["encoder_out"]
    prompt = short["prompt"]
    steps = 10
    greedy = short["ids"][:steps]
    with torch.no_grad():
        prompt_logits = model(encoder_outputs=(torch.from_numpy(enc)[None],),
                              decoder_input_ids=torch.tensor([prompt])).logits[0].numpy()
    lines = [
        "# Hugging Face reference for Whisper base on the real weights (CTranslate2 model.bin,",
        "# float16, widened to float32; computed in float32, eager attention, CPU).",
        "# made by tools/make_whisper_reference.py. Values are float32 printed with %.6f.",
        "versions %s" % versions,
        "model %s sha256 %s" % (notes["spec"], notes["model_sha256"]),
        "config %s" % notes["sizes"],
        "clip tests/out/whisper-clips/%s sha256 %s" % (os.path.basename(clip_path),
                                                        sha256_file(clip_path)),
        "# the clip is 16 kHz mono 16-bit (no resampling); log-mel: WhisperFeatureExtractor's",
        "# NumPy path on the samples / 32768 zero-padded to 30 s: [80][3000], mel-major",
        "mel frames %d mean %.6f max %.6f min %.6f (the floor)" % (
            mel.shape[1], mel.mean(), mel.max(), mel.min()),
        "mel frame100 bins0-7 %s" % " ".join("%.6f" % v for v in mel[:8, 100]),
        "# encoder last_hidden_state [1500][512]; rowN = the first 8 values of frame N",
        "encoder mean %.6f max_abs %.6f std %.6f" % (enc.mean(), np.abs(enc).max(), enc.std()),
    ]
    for frame in (0, 1, 100, 750, 1499):
        lines.append("encoder row%d %s" % (frame, " ".join("%.6f" % v for v in enc[frame, :8])))
    lines += [
        "# decoder: raw logits (before any suppression), top 5 as id:value, largest first",
        "prompt %s" % " ".join(map(str, prompt)),
    ]
    for p in range(len(prompt)):
        lines.append("pos %d top %s" % (p, top_k(prompt_logits[p])))
    lines += [
        "# greedy: at step s the logits after prompt + greedy[:s]; the id is the argmax once",
        "# suppress_tokens (every step) and begin_suppress_tokens 220 50257 (step 0) are -inf;",
        "# gap = its margin over the next allowed id",
        "greedy %s" % " ".join(map(str, greedy)),
        "text %s" % tokenizer.decode(greedy).strip(),
    ]
    for s in range(len(greedy)):
        lines.append("step %d id %d gap %.6f top %s" % (s, greedy[s], short["gaps"][s],
                                                       top_k(short["rows"][s])))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", default=os.path.join(REPO, "models", "whisper-base"))
    parser.add_argument("--clips", default=os.path.join(REPO, "tests", "out", "whisper-clips"))
    parser.add_argument("--expected", default=os.path.join(REPO, "tests", "whisper",
                                                           "expected.txt"))
    parser.add_argument("--reference", default=os.path.join(REPO, "tests", "fixtures",
                                                            "whisper-base", "reference.txt"))
    parser.add_argument("--save-hf", metavar="DIR", help="also save the float32 HF model here")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, tokenizer, ids, notes = build_model(args.model_dir)
    notes["model_sha256"] = sha256_file(os.path.join(args.model_dir, "model.bin"))
    print("built %s (%s); encoder positions vs sinusoids %.2g" % (
        notes["spec"], notes["sizes"], notes["enc_pos_vs_sinusoids"]), file=sys.stderr)
    if args.save_hf:
        model.save_pretrained(args.save_hf)
        model.generation_config.save_pretrained(args.save_hf)
        shutil.copy(os.path.join(args.model_dir, "tokenizer.json"), args.save_hf)
        print("saved %s" % args.save_hf, file=sys.stderr)

    versions = "transformers %s torch %s numpy %s scipy %s soxr %s" % (
        transformers.__version__, torch.__version__, np.__version__, scipy.__version__,
        soxr.__version__)
    text = sentences()
    fe = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    names = sorted(f[:-4] for f in os.listdir(args.clips) if f.endswith(".wav"))
    if not names:
        raise SystemExit("no clips in %s: run sh tests/whisper/make_clips.sh first" % args.clips)

    rows, segment_rows, sums, wers = [], [], [], {}
    for name in names:
        path = os.path.join(args.clips, name + ".wav")
        sums.append("%s  %s.wav" % (sha256_file(path), name))
        rate, channels, bits, x = audio_16k(path)
        truth = " ".join(text[i] for i in clip_sentence_ids(name))
        seconds = len(x) / 16000.0
        if seconds <= 30.0:
            r = transcribe_short(model, tokenizer, ids, fe, x)
            skip = r["no_speech"] > NO_SPEECH_THRESHOLD and r["avg_logprob"] <= LOGPROB_THRESHOLD
            extra = ["%.4f" % r["no_speech"], "%.4f" % r["avg_logprob"],
                     "yes" if skip else "no", "%.4f" % min(r["gaps"])]
            if name == "s1_16k_mono_s16":
                write_base_reference(args.reference, model, tokenizer, path, r, notes,
                                     versions)
        else:
            r = transcribe_long(model, tokenizer, ids, fe, x)
            extra = ["-", "-", "-", "-"]
            for start, end, segment_text in r["segments"]:
                segment_rows.append("segment\t%s.wav\t%.2f\t%.2f\t%s" % (name, start, end,
                                                                         segment_text))
        wer = word_error_rate(truth, r["text"]) if truth else float("nan")
        wers[name] = wer
        rows.append("\t".join([name + ".wav", r["text"], truth,
                               "%.4f" % wer if truth else "-"] + extra
                              + [" ".join(map(str, r["ids"]))]))
        print("%-24s %5.1f s %5d Hz %d ch %2d bit  WER %s  %s" % (
            name, seconds, rate, channels, bits, "%.3f" % wer if truth else "  - ", r["text"]),
            file=sys.stderr)

    speech = [w for w in wers.values() if w == w]
    header = [
        "# Reference transcripts of the clips that tests/whisper/make_clips.sh makes, by",
        "# tools/make_whisper_reference.py: Hugging Face WhisperForConditionalGeneration with",
        "# the Whisper base weights (CTranslate2 model.bin, float16 widened to float32),",
        "# float32, eager attention, CPU.",
        "# clips made with: %s" % tool_versions(args.clips),
        "# reference made with: %s" % versions,
        "# model.bin sha256 %s" % notes["model_sha256"],
        "#",
        "# Audio: WAV decoded by scipy (integers / 2^(bits-1), floats clamped to [-1, 1]),",
        "# channels averaged, resampled to 16 kHz by soxr (quality VHQ), log-mel by",
        "# WhisperFeatureExtractor's NumPy path (80 bins).",
        "# Clips up to 30 s: zero-padded to 30 s, generate(language='en', task='transcribe',",
        "#   return_timestamps=False, num_beams=1, do_sample=False, temperature=0.0): prompt",
        "#   50258 50259 50359 50363, suppress_tokens every step, 220 and 50257 at the first",
        "#   step, greedy until 50257. A hand loop (argmax, lowest id on ties) gave the same ids.",
        "# Longer clips: the whole log-mel without padding or truncation (clamped to its",
        "#   global max - 8 over the whole clip), generate(..., return_timestamps=True,",
        "#   condition_on_prev_tokens=False, temperature=0.0), transformers' sequential",
        "#   long-form decoding: 30 s windows (short ones zero-padded in log-mel space), each",
        "#   resumed at its last timestamp; no fallback, no thresholds.",
        "#",
        "# One line per clip, TAB-separated:",
        "#   file, transcript (decoded text ids, outer spaces stripped), true text (what",
        "#   espeak-ng read), WER (word error rate after lowercasing, removing punctuation and",
        "#   collapsing spaces; '-' without speech), no_speech_prob (softmax of the raw logits",
        "#   after <|startoftranscript|>, id 50362), avg_logprob (sum of the chosen ids'",
        "#   log-softmax after suppression, eot included, / (text ids + 1)), skip (openai's",
        "#   rule: no_speech_prob > %.1f and avg_logprob <= %.1f), min_gap (smallest margin of"
        % (NO_SPEECH_THRESHOLD, LOGPROB_THRESHOLD),
        "#   the chosen id over the next allowed one, over all steps; a small one means a",
        "#   near tie), ids (the generated ids, without prompt and eot; for the long clip the",
        "#   whole sequence generate() returned, timestamps included). '-': not computed.",
        "# Lines 'segment<TAB>file<TAB>start<TAB>end<TAB>text' give the long clip's segments.",
        "# Mean WER over the %d speech clips: %.4f" % (len(speech), sum(speech) / len(speech)),
    ]
    os.makedirs(os.path.dirname(args.expected), exist_ok=True)
    with open(args.expected, "w") as f:
        f.write("\n".join(header + rows + segment_rows) + "\n")
    with open(os.path.join(os.path.dirname(args.expected), "clips.sha256"), "w") as f:
        f.write("\n".join(sums) + "\n")


if __name__ == "__main__":
    sys.exit(main())
