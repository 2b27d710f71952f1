#!/usr/bin/env python3
"""openai/whisper's own transcribe() on the Whisper test clips, with the real Whisper base weights.

tests/whisper/expected.txt holds Hugging Face transformers' transcripts. For clips under 30 s
transformers zero-pads the waveform to 30 s before the log-mel, while openai/whisper's
transcribe() computes the log-mel of the audio followed by 30 s of zero samples and pads each
window's mel segment with zeros in log-mel space (pad_or_trim); the encoder sees different
input and the transcripts can differ. gemini-transcribe follows transcribe.py, so this script
records what transcribe.py itself says:

    tests/whisper/expected_openai.txt

The weights are the CTranslate2 model.bin (format v6, float16) that tools/fetch_whisper_base.sh
fetches, read by tools/make_whisper_reference.py's parser and loaded into openai's
whisper.model.Whisper in float32 (float16 values widened, nothing else changed). Audio is
loaded exactly as make_whisper_reference.py loads it (scipy, channels averaged, soxr VHQ to
16 kHz) and passed to whisper.transcribe() as a float32 array, so no ffmpeg is involved.

Usage (after `sh tests/whisper/make_clips.sh`; needs `pip install openai-whisper==20250625`):

    /tmp/fxenv/bin/python tools/make_whisper_openai_reference.py
        [--model-dir models/whisper-base] [--clips tests/out/whisper-clips] [--out FILE]

Settings, the ones tests/test_whisper_speech.sh gives gemini-transcribe:
    speech clips up to 30 s: language en, greedy, temperature 0 only, without_timestamps
    the long clip:           language en, greedy, temperature 0 only, timestamps,
                             condition_on_previous_text False
    silence and noise:       language en and transcribe()'s CLI defaults: beam 5, best_of 5,
                             temperatures 0, 0.2 ... 1.0, condition_on_previous_text True
All keep the thresholds at their defaults (compression ratio 2.4, log-probability -1.0,
no-speech 0.6). Sampling at temperatures above 0 draws from torch's generator, which is seeded
with 0 before every clip.
"""
import argparse
import os
import sys

import numpy as np
import scipy
import soxr
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_whisper_reference import (REPO, audio_16k, clip_sentence_ids, read_ct2,  # noqa: E402
                                    sentences, sha256_file, tool_versions, word_error_rate)

try:
    import tiktoken
    import whisper
    from whisper.model import ModelDimensions, Whisper
except ImportError as error:
    raise SystemExit("%s: pip install openai-whisper==20250625" % error)

# What Whisper base is; the checkpoint's shapes must agree.
BASE_DIMS = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=512, n_audio_head=8,
                            n_audio_layer=6, n_vocab=51865, n_text_ctx=448, n_text_state=512,
                            n_text_head=8, n_text_layer=6)

GREEDY = dict(temperature=0.0, beam_size=None, best_of=None)
CLI_DEFAULTS = dict(temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0), beam_size=5, best_of=5)
THRESHOLDS = dict(compression_ratio_threshold=2.4, logprob_threshold=-1.0,
                  no_speech_threshold=0.6)
SEED = 0


# ---------------------------------------------------------------------------------------------
# Weights

def ct2_to_openai(v, dims):
    """openai Whisper state dict (float32 tensors) from CTranslate2 Whisper variables."""
    sd = {}
    d_audio, d_text = dims.n_audio_state, dims.n_text_state

    def put(name, array):
        sd[name] = torch.from_numpy(np.asarray(array, dtype=np.float32).copy())

    def linear(dst, src):
        put(dst + ".weight", v[src + "/weight"])
        put(dst + ".bias", v[src + "/bias"])

    def norm(dst, src):
        put(dst + ".weight", v[src + "/gamma"])
        put(dst + ".bias", v[src + "/beta"])

    def fused(src, parts, d):
        """CT2 fuses q, k, v (or k, v) row-wise into one linear; split it back."""
        w, b = v[src + "/weight"], v[src + "/bias"]
        if w.shape != (parts * d, d) or b.shape != (parts * d,):
            raise SystemExit("CT2 %s: weight %s, bias %s, expected %d x %d rows of %d"
                             % (src, w.shape, b.shape, parts, d, d))
        return [(w[i * d:(i + 1) * d], b[i * d:(i + 1) * d]) for i in range(parts)]

    def projections(dst, names, pieces):
        for name, (w, b) in zip(names, pieces):
            put("%s.%s.weight" % (dst, name), w)
            if name == "key":
                # Whisper's key projection has no bias; CT2 keeps zeros in the fused bias
                if np.any(b != 0):
                    raise SystemExit("CT2 %s: key bias is not zero" % dst)
            else:
                put("%s.%s.bias" % (dst, name), b)

    def block(dst, src, d, cross):
        norm(dst + ".attn_ln", src + "/self_attention/layer_norm")
        projections(dst + ".attn", ("query", "key", "value"),
                    fused(src + "/self_attention/linear_0", 3, d))
        linear(dst + ".attn.out", src + "/self_attention/linear_1")
        if cross:
            norm(dst + ".cross_attn_ln", src + "/attention/layer_norm")
            linear(dst + ".cross_attn.query", src + "/attention/linear_0")
            projections(dst + ".cross_attn", ("key", "value"),
                        fused(src + "/attention/linear_1", 2, d))
            linear(dst + ".cross_attn.out", src + "/attention/linear_2")
        norm(dst + ".mlp_ln", src + "/ffn/layer_norm")
        linear(dst + ".mlp.0", src + "/ffn/linear_0")
        linear(dst + ".mlp.2", src + "/ffn/linear_1")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    # openai's checkpoints store the sinusoids in this buffer too (float16 in base.pt); CT2
    # keeps them, so the stored values are used, as load_model would use base.pt's
    put("encoder.positional_embedding", v["encoder/position_encodings/encodings"])
    for i in range(dims.n_audio_layer):
        block("encoder.blocks.%d" % i, "encoder/layer_%d" % i, d_audio, cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")

    put("decoder.token_embedding.weight", v["decoder/embeddings/weight"])
    put("decoder.positional_embedding", v["decoder/position_encodings/encodings"])
    for i in range(dims.n_text_layer):
        block("decoder.blocks.%d" % i, "decoder/layer_%d" % i, d_text, cross=True)
    norm("decoder.ln", "decoder/layer_norm")
    return sd


def check_ct2(v, dims):
    """Refuse a checkpoint that is not Whisper base as openai's model.py computes it."""
    shapes = {
        "encoder/conv1/weight": (dims.n_audio_state, dims.n_mels, 3),
        "encoder/position_encodings/encodings": (dims.n_audio_ctx, dims.n_audio_state),
        "decoder/embeddings/weight": (dims.n_vocab, dims.n_text_state),
        "decoder/position_encodings/encodings": (dims.n_text_ctx, dims.n_text_state),
        "encoder/layer_%d/ffn/linear_0/weight" % (dims.n_audio_layer - 1):
            (4 * dims.n_audio_state, dims.n_audio_state),
        "decoder/layer_%d/ffn/linear_0/weight" % (dims.n_text_layer - 1):
            (4 * dims.n_text_state, dims.n_text_state),
    }
    for name, shape in shapes.items():
        if name not in v or v[name].shape != shape:
            raise SystemExit("CT2 %s: shape %s, Whisper base has %s"
                             % (name, v[name].shape if name in v else "missing", shape))
    for side, layers in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        if "%s/layer_%d/ffn/linear_0/weight" % (side, layers) in v:
            raise SystemExit("CT2 %s has more than %d layers" % (side, layers))
    heads = (int(v["encoder/num_heads"]), int(v["decoder/num_heads"]))
    if heads != (dims.n_audio_head, dims.n_text_head):
        raise SystemExit("CT2 head counts %s, Whisper base has %d, %d"
                         % (heads, dims.n_audio_head, dims.n_text_head))
    # openai's decoder: pre-LayerNorm, unscaled embeddings, positions from 0, exact GELU
    # (CT2 ActivationType 3), logits from the token embedding itself
    flags = {k: int(v["decoder/" + k]) for k in ("pre_norm", "scale_embeddings", "alibi",
                                                 "start_from_zero_embedding", "activation")}
    if flags != {"pre_norm": 1, "scale_embeddings": 0, "alibi": 0,
                 "start_from_zero_embedding": 0, "activation": 3}:
        raise SystemExit("unexpected CT2 decoder flags %s" % flags)
    if "decoder/projection/weight" in v and not np.array_equal(v["decoder/projection/weight"],
                                                               v["decoder/embeddings/weight"]):
        raise SystemExit("CT2 decoder/projection/weight is not the token embedding")


def build_model(model_dir):
    spec, revision, v = read_ct2(os.path.join(model_dir, "model.bin"))
    check_ct2(v, BASE_DIMS)
    model = Whisper(BASE_DIMS)
    # strict: every parameter and persistent buffer of model.py named, nothing left over
    model.load_state_dict(ct2_to_openai(v, BASE_DIMS), strict=True)
    model = model.float().eval()
    return model, "%s revision %d" % (spec, revision)


# ---------------------------------------------------------------------------------------------
# Transcription

class DecodeLog:
    """Wraps model.decode to keep every DecodingResult transcribe() sees, fallbacks included
    and windows that the no-speech rule then drops, and GreedyDecoder.update to keep, for
    each greedy decode, the smallest margin of the chosen token over the next one (the logits
    it receives have every logit filter applied); beam search has no such margin."""

    def __init__(self, model):
        self.model, self.results, self.gaps = model, [], []
        self.inner_decode = model.decode
        self.inner_update = whisper.decoding.GreedyDecoder.update
        self.step_gaps = None

    def __enter__(self):
        log = self

        def update(decoder, tokens, logits, sum_logprobs):
            if decoder.temperature == 0 and log.step_gaps is not None:
                top = logits.float().topk(2, dim=-1).values
                log.step_gaps.append(float((top[:, 0] - top[:, 1]).min()))
            return log.inner_update(decoder, tokens, logits, sum_logprobs)

        whisper.decoding.GreedyDecoder.update = update
        self.model.decode = self.decode
        return self

    def __exit__(self, *exc):
        whisper.decoding.GreedyDecoder.update = self.inner_update
        del self.model.decode

    def decode(self, mel, options):
        self.step_gaps = []
        result = self.inner_decode(mel, options)
        self.results.append(result)
        self.gaps.append(min(self.step_gaps) if self.step_gaps else None)
        self.step_gaps = None
        return result


def settings_for(name, seconds):
    if name.startswith(("silence_", "noise_")):
        return dict(CLI_DEFAULTS, condition_on_previous_text=True, without_timestamps=False)
    if seconds > 30.0:
        return dict(GREEDY, condition_on_previous_text=False, without_timestamps=False)
    return dict(GREEDY, condition_on_previous_text=True, without_timestamps=True)


def outcome(result, temperatures):
    """What transcribe() did with one decode, by its rules and default thresholds."""
    low_logprob = result.avg_logprob < THRESHOLDS["logprob_threshold"]
    silent = result.no_speech_prob > THRESHOLDS["no_speech_threshold"]
    needs_fallback = (result.compression_ratio > THRESHOLDS["compression_ratio_threshold"]
                      or low_logprob) and not (silent and low_logprob)
    if needs_fallback and result.temperature != temperatures[-1]:
        return "retry"
    skip = silent and not result.avg_logprob > THRESHOLDS["logprob_threshold"]
    return "skip" if skip else "kept"


def transcribe_clip(model, x, settings):
    torch.manual_seed(SEED)
    with DecodeLog(model) as log:
        result = whisper.transcribe(model, x, verbose=None, language="en", task="transcribe",
                                    fp16=False, **THRESHOLDS, **settings)
    temperatures = settings["temperature"]
    if not isinstance(temperatures, tuple):
        temperatures = (temperatures,)
    decodes = ["t %.1f no_speech %.4f avg_logprob %.4f compression %.3f min_gap %s %s" % (
        r.temperature, r.no_speech_prob, r.avg_logprob, r.compression_ratio,
        "-" if gap is None else "%.4f" % gap, outcome(r, temperatures))
        for r, gap in zip(log.results, log.gaps)]
    segments = [(s["start"], s["end"], s["text"].strip()) for s in result["segments"]]
    text = " ".join(t for _, _, t in segments if t)
    if " ".join(result["text"].split()) != " ".join(text.split()):
        raise SystemExit("segments joined %r, transcribe()'s text %r" % (text, result["text"]))
    ids = [t for s in result["segments"] for t in s["tokens"]]
    return text, segments, decodes, ids


# ---------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", default=os.path.join(REPO, "models", "whisper-base"))
    parser.add_argument("--clips", default=os.path.join(REPO, "tests", "out", "whisper-clips"))
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "whisper",
                                                      "expected_openai.txt"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, spec = build_model(args.model_dir)
    model_sha = sha256_file(os.path.join(args.model_dir, "model.bin"))
    text = sentences()
    names = sorted(f[:-4] for f in os.listdir(args.clips) if f.endswith(".wav"))
    if not names:
        raise SystemExit("no clips in %s: run sh tests/whisper/make_clips.sh first" % args.clips)

    # Sanity check before anything is written: the plainest clip must come out right.
    first = "s1_16k_mono_s16"
    if first not in names:
        raise SystemExit("%s.wav missing from %s" % (first, args.clips))
    x = audio_16k(os.path.join(args.clips, first + ".wav"))[3]
    heard = transcribe_clip(model, x, settings_for(first, len(x) / 16000.0))[0]
    if heard != text["s1"]:
        raise SystemExit("sanity check: %s.wav gave %r, espeak-ng read %r"
                         % (first, heard, text["s1"]))

    rows, segment_rows, wers = [], [], []
    for name in names:
        path = os.path.join(args.clips, name + ".wav")
        rate, channels, bits, x = audio_16k(path)
        seconds = len(x) / 16000.0
        truth = " ".join(text[i] for i in clip_sentence_ids(name))
        transcript, segments, decodes, ids = transcribe_clip(model, x, settings_for(name,
                                                                                    seconds))
        wer = word_error_rate(truth, transcript) if truth else None
        if wer is not None:
            wers.append(wer)
        rows.append("\t".join([name + ".wav", transcript, truth,
                               "-" if wer is None else "%.4f" % wer,
                               " | ".join(decodes), " ".join(map(str, ids))]))
        if seconds > 30.0:
            for start, end, segment_text in segments:
                segment_rows.append("segment\t%s.wav\t%.2f\t%.2f\t%s" % (name, start, end,
                                                                         segment_text))
        print("%-24s %5.1f s %5d Hz %d ch %2d bit  %s" % (name, seconds, rate, channels, bits,
                                                         transcript), file=sys.stderr)

    header = [
        "# Reference transcripts of the clips that tests/whisper/make_clips.sh makes, by",
        "# tools/make_whisper_openai_reference.py: openai/whisper's own transcribe() with",
        "# the Whisper base weights (CTranslate2 model.bin, %s, float16 widened to" % spec,
        "# float32) in whisper.model.Whisper, float32, CPU, %d threads, attention by"
        % args.threads,
        "# model.py's default path (torch's scaled_dot_product_attention).",
        "# clips made with: %s" % tool_versions(args.clips),
        "# reference made with: openai-whisper %s torch %s numpy %s scipy %s soxr %s "
        "tiktoken %s" % (whisper.__version__, torch.__version__, np.__version__,
                         scipy.__version__, soxr.__version__, tiktoken.__version__),
        "# model.bin sha256 %s" % model_sha,
        "#",
        "# Audio: WAV decoded by scipy (integers / 2^(bits-1), floats clamped to [-1, 1]),",
        "# channels averaged, resampled to 16 kHz by soxr (quality VHQ), passed to",
        "# whisper.transcribe() as float32 samples (no ffmpeg). transcribe() then takes the",
        "# log-mel of the samples followed by 30 s of zeros (torch.stft), clamps it at its",
        "# max - 8 over all of that, and pads each window's mel segment to 3000 frames with",
        "# zeros in log-mel space (pad_or_trim).",
        "# transcribe(language='en', task='transcribe', fp16=False,",
        "#   compression_ratio_threshold=2.4, logprob_threshold=-1.0, no_speech_threshold=0.6)",
        "#   and, per clip:",
        "# clips up to 30 s: temperature=0.0 (no fallback), beam_size=None, best_of=None",
        "#   (greedy), without_timestamps=True",
        "# longer clips: temperature=0.0, beam_size=None, best_of=None, timestamps on,",
        "#   condition_on_previous_text=False",
        "# silence and noise: temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0), beam_size=5,",
        "#   best_of=5, condition_on_previous_text=True, timestamps on (the CLI defaults)",
        "# torch.manual_seed(%d) before every clip (sampling at temperature > 0)." % SEED,
        "#",
        "# One line per clip, TAB-separated:",
        "#   file, transcript (the segments' texts, each stripped, joined by one space),",
        "#   true text (what espeak-ng read), WER (word error rate after lowercasing, removing",
        "#   punctuation and collapsing spaces; '-' without speech), decodes (every decode()",
        "#   call, ' | '-separated: temperature, no_speech_prob, avg_logprob, compression",
        "#   ratio, min_gap (greedy only: the smallest margin of the chosen token's logit over",
        "#   the next one after openai's logit filters, over all steps; small = near tie),",
        "#   and what transcribe() did with it: 'retry' at the next temperature, 'skip'",
        "#   the window (no-speech rule: no_speech_prob > 0.6 and avg_logprob <= -1.0) or",
        "#   'kept'), ids (the tokens of the kept segments, timestamps included).",
        "# Lines 'segment<TAB>file<TAB>start<TAB>end<TAB>text' give the long clip's segments.",
        "# Mean WER over the %d speech clips: %.4f" % (len(wers), sum(wers) / len(wers)),
    ]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(header + rows + segment_rows) + "\n")


if __name__ == "__main__":
    sys.exit(main())
