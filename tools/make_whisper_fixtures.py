#!/usr/bin/env python3
"""Builds tiny random-weight Whisper reference fixtures with Hugging Face transformers.

    /tmp/fxenv/bin/python tools/make_whisper_fixtures.py [OUTDIR]     (default
                                                        tests/fixtures/whisper-tiny)
    /tmp/fxenv/bin/python tools/make_whisper_fixtures.py --scan 40     (seed scan, writes nothing)

Two models (WhisperForConditionalGeneration, float32, eager attention), each in its folder:

    OUTDIR/            80 mel bins, d 32, encoder 2 layers x 4 heads, decoder 2 x 4, FFN 64
    OUTDIR/mel128/     128 mel bins, d 16, encoder 1 layer x 2 heads (head size 8),
                       decoder 2 layers x 4 heads (head size 4), encoder FFN 32, decoder FFN 48

Both keep Whisper's 1500 encoder positions (3000 mel frames in). Each folder holds:

    hf/                  config.json, generation_config.json, model.safetensors (all F32), as
                         save_pretrained writes them; no tokenizer
    encoder_out.f32      encoder last_hidden_state [1500, d]
    logits_prompt.f32    decoder logits for every position of the prompt [8, vocab]
    logits_greedy.f32    row s: last-position logits for prompt + greedy[:s], [16, vocab]
    reference.txt        what the files are, the input, prompt ids, greedy ids, gaps, checks

All .f32 files are raw little-endian IEEE float32, row-major, no header. The input is the real
speech log-mel that tests/audio keeps for speech_16k_mono_s16.wav (tools/make_audio_fixtures.py):
speech_16k_mono_s16.mel80.f32 / .mel128.f32 hold its first 203 frames ([n_mels][203]); frames
203..2999 all equal the floor value in tests/audio/manifest.txt. The script checks that this,
padded, is exactly WhisperFeatureExtractor's output for the WAV, and feeds the padded array.

Every number is computed from the model reloaded from hf/, so the files on disk are what is
tested. Weights: N(0, std) from torch.Generator(seed), one tensor at a time in sorted name
order: matrices and conv kernels 1/sqrt(fan_in) (query and key 2/sqrt(fan_in)), biases 0.1,
LayerNorm weights 1 + N(0, 0.2), LayerNorm biases 0.1, token embeddings (tied output head)
0.2, decoder positions 1.0; the encoder positions stay Whisper's sinusoids. (Larger token
embeddings against smaller positions make the tied head echo the input token: greedy then
repeats one id forever.) Seeds come from a scan (--scan) for greedy continuations that keep
changing token with clear top-1/top-2 gaps.
"""
import argparse
import hashlib
import os
import shutil
import sys

import numpy as np
import safetensors.torch
import scipy
import scipy.io.wavfile
import torch
import transformers
from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                          WhisperForConditionalGeneration)
from transformers.models.whisper.modeling_whisper import sinusoids

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AUDIO = os.path.join(REPO, "tests", "audio")
WAV = "speech_16k_mono_s16"
FRAMES = 3000
NEW_TOKENS = 16
MIN_GAP = 1e-2          # wanted top-1 minus top-2 logit gap at every greedy step
MIN_DISTINCT = 8        # wanted distinct ids among the 16 greedy tokens

# Special ids laid out like Whisper's, after the text ids: eot, sot, <|en|>, <|translate|>,
# <|transcribe|>, <|notimestamps|>. The prompt is sot, en, transcribe, notimestamps and four
# text ids.
VARIANTS = [
    dict(folder="", seed=11, n_mels=80, d=32, vocab=300, max_target=64,
         enc_layers=2, enc_heads=4, enc_ffn=64, dec_layers=2, dec_heads=4, dec_ffn=64),
    dict(folder="mel128", seed=21, n_mels=128, d=16, vocab=260, max_target=64,
         enc_layers=1, enc_heads=2, enc_ffn=32, dec_layers=2, dec_heads=4, dec_ffn=48),
]
SPECIAL_BASE = {300: 256, 260: 250}
TEXT_PROMPT = [40, 72, 101, 108]
SUPPRESS = [1, 2, 7, 8]


def specials(vocab):
    eot = SPECIAL_BASE[vocab]
    return dict(eot=eot, sot=eot + 1, en=eot + 2, translate=eot + 3, transcribe=eot + 4,
                notimestamps=eot + 5)


def prompt_ids(vocab):
    s = specials(vocab)
    return [s["sot"], s["en"], s["transcribe"], s["notimestamps"]] + TEXT_PROMPT


def make_config(v):
    s = specials(v["vocab"])
    config = WhisperConfig(
        vocab_size=v["vocab"], num_mel_bins=v["n_mels"], d_model=v["d"],
        encoder_layers=v["enc_layers"], encoder_attention_heads=v["enc_heads"],
        encoder_ffn_dim=v["enc_ffn"], decoder_layers=v["dec_layers"],
        decoder_attention_heads=v["dec_heads"], decoder_ffn_dim=v["dec_ffn"],
        max_source_positions=FRAMES // 2, max_target_positions=v["max_target"],
        activation_function="gelu", scale_embedding=False, tie_word_embeddings=True,
        pad_token_id=s["eot"], bos_token_id=s["eot"], eos_token_id=s["eot"],
        decoder_start_token_id=s["sot"],
        # also in generation_config.json; here so that config.json names no id out of range
        suppress_tokens=SUPPRESS, begin_suppress_tokens=[220, s["eot"]],
    )
    config._attn_implementation = "eager"
    return config


def make_generation_config(v):
    s = specials(v["vocab"])
    return GenerationConfig(
        decoder_start_token_id=s["sot"], bos_token_id=s["eot"], eos_token_id=s["eot"],
        pad_token_id=s["eot"], max_length=v["max_target"],
        suppress_tokens=SUPPRESS, begin_suppress_tokens=[220, s["eot"]],
        no_timestamps_token_id=s["notimestamps"],
        task_to_id={"transcribe": s["transcribe"], "translate": s["translate"]},
    )


def std_for(name, shape):
    """Standard deviation of the random init of one tensor (None: keep as built)."""
    if name == "model.encoder.embed_positions.weight":
        return None
    if "layer_norm" in name:
        return 0.2 if name.endswith(".weight") else 0.1
    if name == "model.decoder.embed_tokens.weight":
        return 0.2
    if name == "model.decoder.embed_positions.weight":
        return 1.0
    if name.endswith(".bias"):
        return 0.1
    fan_in = int(np.prod(shape[1:]))
    # Query and key twice as large: peakier attention, so a wrong score scale shows
    gain = 2.0 if name.endswith(("q_proj.weight", "k_proj.weight")) else 1.0
    return gain / np.sqrt(fan_in)


def build_model(v, seed):
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(make_config(v))
    model.generation_config = make_generation_config(v)
    generator = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            std = std_for(name, tuple(p.shape))
            if std is None:
                continue
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float32) * std
            p.copy_(1.0 + noise if "layer_norm" in name and name.endswith(".weight") else noise)
        enc_pos = model.model.encoder.embed_positions.weight
        enc_pos.copy_(sinusoids(*enc_pos.shape))
    model.tie_weights()
    return model.eval()


def mel_input(n_mels):
    """[1, n_mels, 3000] from tests/audio, checked against WhisperFeatureExtractor."""
    floor, stored = None, None
    with open(os.path.join(AUDIO, "manifest.txt")) as f:
        for line in f:
            fields = line.split()
            if fields[:3] == ["mel", WAV, str(n_mels)]:
                stored, floor = int(fields[3]), np.float32(fields[4])
    if floor is None:
        raise SystemExit("tests/audio/manifest.txt has no mel line for %s %d" % (WAV, n_mels))
    path = os.path.join(AUDIO, "%s.mel%d.f32" % (WAV, n_mels))
    head = np.fromfile(path, dtype="<f4")
    if head.size != n_mels * stored:
        raise SystemExit("%s: %d floats, expected %d x %d" % (path, head.size, n_mels, stored))
    mel = np.full((n_mels, FRAMES), floor, dtype=np.float32)
    mel[:, :stored] = head.reshape(n_mels, stored)

    rate, data = scipy.io.wavfile.read(os.path.join(AUDIO, WAV + ".wav"))
    assert rate == 16000 and data.dtype == np.int16 and data.ndim == 1
    x = np.zeros(FRAMES * 160, dtype=np.float32)
    x[:len(data)] = data.astype(np.float64) / 32768.0
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    hf = fe._np_extract_fbank_features(x[None, :], "cpu")[0]
    diff = float(np.abs(hf - mel).max())
    if diff != 0.0:
        raise SystemExit("%s padded with %r differs from WhisperFeatureExtractor by %g"
                         % (path, floor, diff))
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return torch.from_numpy(mel[None]), dict(path=os.path.relpath(path, REPO), stored=stored,
                                             floor=float(floor), sha256=digest)


def argmax_lowest(row):
    """Index of the largest value; the lowest index among equal values."""
    return int(np.flatnonzero(row == row.max())[0])


def top2_gap(row):
    top = np.sort(row)[-2:]
    return float(top[1] - top[0])


@torch.no_grad()
def run(model, features, prompt):
    """Encoder output, prompt logits, greedy ids, greedy step logits (full re-forward)."""
    encoder_out = model.model.encoder(features).last_hidden_state
    prompt_logits = model(encoder_outputs=(encoder_out,),
                          decoder_input_ids=torch.tensor([prompt])).logits[0]
    tokens, rows = list(prompt), []
    for _ in range(NEW_TOKENS):
        logits = model(encoder_outputs=(encoder_out,),
                       decoder_input_ids=torch.tensor([tokens])).logits[0, -1].numpy()
        rows.append(logits)
        tokens.append(argmax_lowest(logits))
    return (encoder_out[0].numpy(), prompt_logits.numpy(), tokens[len(prompt):],
            np.stack(rows))


@torch.no_grad()
def run_cached(model, features, prompt, n):
    """Greedy ids and step logits again, with the KV cache (one new token per step)."""
    encoder_out = model.model.encoder(features).last_hidden_state
    out = model(encoder_outputs=(encoder_out,), decoder_input_ids=torch.tensor([prompt]),
                use_cache=True)
    ids, rows = [], []
    for _ in range(n):
        logits = out.logits[0, -1].numpy()
        rows.append(logits)
        ids.append(argmax_lowest(logits))
        out = model(encoder_outputs=(encoder_out,), decoder_input_ids=torch.tensor([[ids[-1]]]),
                    past_key_values=out.past_key_values, use_cache=True)
    return ids, np.stack(rows)


def max_rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def describe(v, seed, features):
    """Greedy ids, min gap and distinct count for one seed (used by --scan)."""
    model = build_model(v, seed)
    _, _, greedy, rows = run(model, features, prompt_ids(v["vocab"]))
    return greedy, min(top2_gap(r) for r in rows), len(set(greedy))


def write_variant(v, out_dir):
    features, mel_info = mel_input(v["n_mels"])
    hf_dir = os.path.join(out_dir, "hf")
    if os.path.isdir(hf_dir):
        shutil.rmtree(hf_dir)
    os.makedirs(hf_dir)
    build_model(v, v["seed"]).save_pretrained(hf_dir)

    model = WhisperForConditionalGeneration.from_pretrained(
        hf_dir, dtype=torch.float32, attn_implementation="eager").eval()
    tensors = safetensors.torch.load_file(os.path.join(hf_dir, "model.safetensors"))
    dtypes = sorted({str(t.dtype) for t in tensors.values()})
    if dtypes != ["torch.float32"]:
        raise SystemExit("model.safetensors holds %s, wanted only float32" % dtypes)
    if "proj_out.weight" in tensors:
        raise SystemExit("model.safetensors has proj_out.weight: the head should be tied")
    enc_pos = tensors["model.encoder.embed_positions.weight"]
    sinus_diff = float((enc_pos - sinusoids(*enc_pos.shape)).abs().max())

    prompt = prompt_ids(v["vocab"])
    encoder_out, prompt_logits, greedy, rows = run(model, features, prompt)
    gaps = [top2_gap(r) for r in rows]
    if min(gaps) < MIN_GAP or len(set(greedy)) < MIN_DISTINCT:
        raise SystemExit("seed %d: min gap %.3g, %d distinct ids; pick another with --scan"
                         % (v["seed"], min(gaps), len(set(greedy))))
    cached_ids, cached_rows = run_cached(model, features, prompt, NEW_TOKENS)
    if cached_ids != greedy:
        raise SystemExit("KV-cached greedy %s differs from the re-forward %s"
                         % (cached_ids, greedy))

    # The same forward in float64, to show how far float32 rounding alone moves the numbers
    model64 = WhisperForConditionalGeneration.from_pretrained(
        hf_dir, dtype=torch.float64, attn_implementation="eager").eval()
    with torch.no_grad():
        enc64 = model64.model.encoder(features.double()).last_hidden_state
        logits64 = model64(encoder_outputs=(enc64,),
                           decoder_input_ids=torch.tensor([prompt])).logits[0].numpy()
    enc64 = enc64[0].numpy()

    # Attention should be neither uniform nor one-hot: mean over rows of the largest weight
    with torch.no_grad():
        att = model(features, decoder_input_ids=torch.tensor([prompt]), output_attentions=True)
    peaks = {kind: " ".join("%.3f" % float(a.max(-1).values.mean()) for a in layers)
             for kind, layers in (("encoder", att.encoder_attentions),
                                  ("cross", att.cross_attentions),
                                  ("self", att.decoder_attentions))}

    encoder_out.astype("<f4").tofile(os.path.join(out_dir, "encoder_out.f32"))
    prompt_logits.astype("<f4").tofile(os.path.join(out_dir, "logits_prompt.f32"))
    rows.astype("<f4").tofile(os.path.join(out_dir, "logits_greedy.f32"))

    s = specials(v["vocab"])
    d, vocab = v["d"], v["vocab"]
    lines = [
        "# Tiny random-weight Whisper reference, made by tools/make_whisper_fixtures.py.",
        "# Hugging Face WhisperForConditionalGeneration, float32 weights and float32 compute",
        "# (no bf16 anywhere), eager attention, eval, no_grad, CPU.",
        "versions transformers %s torch %s numpy %s scipy %s safetensors %s" % (
            transformers.__version__, torch.__version__, np.__version__, scipy.__version__,
            safetensors.__version__),
        "seed %d" % v["seed"],
        "config n_mels %d d_model %d vocab %d audio_ctx %d max_target %d" % (
            v["n_mels"], d, vocab, FRAMES // 2, v["max_target"]),
        "config encoder layers %d heads %d head_dim %d ffn %d" % (
            v["enc_layers"], v["enc_heads"], d // v["enc_heads"], v["enc_ffn"]),
        "config decoder layers %d heads %d head_dim %d ffn %d" % (
            v["dec_layers"], v["dec_heads"], d // v["dec_heads"], v["dec_ffn"]),
        "config layer_norm_eps 1e-5 activation gelu (erf) tied_head yes scale_embedding no",
        "special eot %d sot %d en %d translate %d transcribe %d notimestamps %d" % (
            s["eot"], s["sot"], s["en"], s["translate"], s["transcribe"], s["notimestamps"]),
        "generation suppress_tokens %s begin_suppress_tokens 220 %d" % (
            " ".join(map(str, SUPPRESS)), s["eot"]),
        "# (config.json and generation_config.json; the greedy ids below do not apply them)",
        "enc_pos sinusoids max_abs_diff %.3g (encoder positions are Whisper's sinusoids)"
        % sinus_diff,
        "",
        "# Input [%d][%d]: the first %d frames are the file below ([%d][%d] float32,"
        % (v["n_mels"], FRAMES, mel_info["stored"], v["n_mels"], mel_info["stored"]),
        "# mel-major), frames %d..%d all equal the floor. That equals, bit for bit, the" % (
            mel_info["stored"], FRAMES - 1),
        "# NumPy path of WhisperFeatureExtractor(feature_size=%d) on tests/audio/%s.wav" % (
            v["n_mels"], WAV),
        "# zero-padded to 30 s (checked when made).",
        "input %s frames %d floor %.9g sha256 %s" % (
            mel_info["path"], mel_info["stored"], mel_info["floor"], mel_info["sha256"]),
        "",
        "# Files: raw little-endian float32, row-major, no header.",
        "file encoder_out.f32 %d %d   encoder last_hidden_state (after the final LayerNorm)"
        % (FRAMES // 2, d),
        "file logits_prompt.f32 %d %d   logits at every prompt position (one forward)" % (
            len(prompt), vocab),
        "file logits_greedy.f32 %d %d   row s: last-position logits for prompt + greedy[:s]" % (
            NEW_TOKENS, vocab),
        "",
        "prompt %s" % " ".join(map(str, prompt)),
        "# greedy: argmax of the raw logits (lowest id on ties), one full re-forward per step;",
        "# a KV-cached run gives the same ids. No token is suppressed, eot does not stop it.",
        "greedy %s" % " ".join(map(str, greedy)),
        "gaps %s" % " ".join("%.4f" % g for g in gaps),
        "min_gap %.4f" % min(gaps),
        "",
        "encoder_out max_abs %.6f mean %.6f std %.6f first8 %s" % (
            np.abs(encoder_out).max(), encoder_out.mean(), encoder_out.std(),
            " ".join("%.6f" % x for x in encoder_out.reshape(-1)[:8])),
        "logits_prompt max_abs %.6f std %.6f" % (np.abs(prompt_logits).max(),
                                                 prompt_logits.std()),
        "logits_greedy max_abs %.6f std %.6f" % (np.abs(rows).max(), rows.std()),
        "# mean largest attention weight per layer (uniform over 1500 frames: 0.0007)",
        "attention_peak encoder %s cross %s self %s" % (
            peaks["encoder"], peaks["cross"], peaks["self"]),
        "",
        "# How close a correct float32 implementation can be expected to come: the same model",
        "# run in float64 (relative to max |ref|), and the KV-cached float32 run.",
        "f64 encoder_out max_rel_diff %.3g" % max_rel(encoder_out, enc64),
        "f64 logits_prompt max_rel_diff %.3g" % max_rel(prompt_logits, logits64),
        "kv_cache logits_greedy max_rel_diff %.3g" % max_rel(cached_rows, rows),
    ]
    with open(os.path.join(out_dir, "reference.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: greedy %s min gap %.4f, encoder max |x| %.3f, f64 rel %.2g / %.2g" % (
        out_dir, greedy, min(gaps), np.abs(encoder_out).max(),
        max_rel(encoder_out, enc64), max_rel(prompt_logits, logits64)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir", nargs="?",
                        default=os.path.join(REPO, "tests", "fixtures", "whisper-tiny"))
    parser.add_argument("--scan", type=int, default=0,
                        help="print greedy stats for seeds 0..N-1 of each variant and stop")
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.scan:
        for v in VARIANTS:
            features, _ = mel_input(v["n_mels"])
            for seed in range(args.scan):
                greedy, gap, distinct = describe(v, seed, features)
                print("%s seed %d: min gap %.4f, %d distinct: %s" % (
                    v["folder"] or "base", seed, gap, distinct, greedy))
        return

    for v in VARIANTS:
        out_dir = os.path.join(args.outdir, v["folder"])
        os.makedirs(out_dir, exist_ok=True)
        write_variant(v, out_dir)


if __name__ == "__main__":
    sys.exit(main())
