#!/usr/bin/env python3
"""Makes the audio fixtures of tests/test_audio.c: short speech WAVs and reference outputs.

Needs espeak-ng and sox (Debian: apt-get install espeak-ng sox) and a Python with numpy, scipy,
soxr, torch and transformers (the project uses /tmp/fxenv):

    /tmp/fxenv/bin/python tools/make_audio_fixtures.py [tests/audio]

Writes into the folder (default tests/audio):
    speech_*.wav     speech from espeak-ng, converted by sox to each rate, width and layout
    *.mel80.f32      reference log-mel (Hugging Face WhisperFeatureExtractor), float32,
    *.mel128.f32     row-major [n_mels][frames]: only the first frames, the rest of the 3000
                     are silence and equal the floor value recorded in the manifest
    *.melfull80.f32  the same transform of the clip alone, without padding to 30 s
    *.16k.f32        reference 16 kHz signal from soxr (quality VHQ), float32
    manifest.txt     one line per check, read by the C test (format at the top of the file)

The WAVs are decoded here with scipy.io.wavfile, independently of gemini_audio.h, and mixed to
mono by averaging the channels; integers are scaled by 2^(bits-1) (8-bit: (x - 128) / 128).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import scipy.io.wavfile
import scipy.signal
import soxr
from transformers import WhisperFeatureExtractor

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, twenty six times.",
]

# name, sentence, sox output options, seconds kept
CLIPS = [
    ("speech_16k_mono_s16", 0, ["-r", "16000", "-c", "1", "-b", "16", "-e", "signed"], 2.0),
    ("speech_16k_stereo_s24", 2, ["-r", "16000", "-c", "2", "-b", "24", "-e", "signed"], 1.5),
    ("speech_8k_mono_u8", 1, ["-r", "8000", "-c", "1", "-b", "8", "-e", "unsigned"], 1.5),
    ("speech_22k_mono_s16", 0, ["-r", "22050", "-c", "1", "-b", "16", "-e", "signed"], 1.0),
    ("speech_44k_stereo_s16", 2, ["-r", "44100", "-c", "2", "-b", "16", "-e", "signed"], 1.0),
    ("speech_48k_mono_f32", 1, ["-r", "48000", "-c", "1", "-b", "32", "-e", "floating-point"],
     1.0),
    ("speech_48k_stereo_s24", 2, ["-r", "48000", "-c", "2", "-b", "24", "-e", "signed"], 0.5),
]

MEL_CLIPS = {"speech_16k_mono_s16": (80, 128), "speech_16k_stereo_s24": (80,)}


def run(cmd):
    subprocess.run(cmd, check=True)


def speak(tmp, index):
    """Sentence `index` as a 22050 Hz mono WAV; index 2 is both sentences as a stereo pair."""
    if index < 2:
        path = os.path.join(tmp, "s%d.wav" % index)
        run(["espeak-ng", "-v", "en", "-s", "165", "-w", path, SENTENCES[index]])
        return path
    left, right = speak(tmp, 0), speak(tmp, 1)
    path = os.path.join(tmp, "pair.wav")
    run(["sox", "-M", left, right, path])
    return path


def decode(path):
    """(rate, channels, bits, mono float64) decoded with scipy, not with our code."""
    rate, data = scipy.io.wavfile.read(path)
    channels = 1 if data.ndim == 1 else data.shape[1]
    if data.dtype == np.uint8:
        x, bits = (data.astype(np.float64) - 128.0) / 128.0, 8
    elif data.dtype == np.int16:
        x, bits = data.astype(np.float64) / 32768.0, 16
    elif data.dtype == np.int32:
        # scipy returns 24-bit samples left-justified in an int32, so one scale serves both
        bits = int(subprocess.run(["soxi", "-b", path], check=True, capture_output=True,
                                  text=True).stdout)
        x = data.astype(np.float64) / 2147483648.0
    elif data.dtype == np.float32:
        x, bits = data.astype(np.float64), 32
    else:
        raise SystemExit("unexpected dtype %s in %s" % (data.dtype, path))
    if x.ndim == 2:
        x = x.mean(axis=1)
    return rate, channels, bits, x


def log_mel_reference(x, n_mels):
    """HF log-mel of a 16 kHz signal: [n_mels][3000], numpy path (float64 inside)."""
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    padded = np.zeros(480000, dtype=np.float32)
    padded[: min(len(x), 480000)] = x[:480000]
    ref_np = fe._np_extract_fbank_features(padded[None, :], "cpu")[0]
    feats = fe(x.astype(np.float32), sampling_rate=16000, return_tensors="np")["input_features"][0]
    print("   HF public call (torch path) vs numpy path: max |diff| %.2e"
          % np.abs(feats - ref_np).max())
    return ref_np.astype(np.float32)


def tool_versions():
    espeak = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    sox = subprocess.run(["sox", "--version"], capture_output=True, text=True).stdout
    import transformers
    return ["%s, %s" % (" ".join(espeak.split()[:4]), sox.strip().split(":")[-1].strip()),
            "transformers %s, soxr %s, numpy %s, scipy %s" % (
                transformers.__version__, soxr.__version__, np.__version__, scipy.__version__)]


def snr_db(ref, x):
    n = min(len(ref), len(x))
    noise = np.sum((ref[:n] - x[:n]) ** 2)
    return 10 * np.log10(np.sum(ref[:n] ** 2) / max(noise, 1e-300))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "audio")
    os.makedirs(out_dir, exist_ok=True)
    manifest = [
        "# gemini_audio fixtures, made by tools/make_audio_fixtures.py. Lines:",
        "# wav NAME RATE CHANNELS BITS FRAMES SUM SUM_ABS SUM_SQ   (mono mix, scipy decode)",
        "# mel NAME N_MELS STORED_FRAMES FLOOR                    (NAME.melN.f32, HF)",
        "# melfull NAME N_MELS FRAMES           (NAME.melfullN.f32, no 30 s padding)",
        "# resample NAME N_OUT                                     (NAME.16k.f32, soxr VHQ)",
    ] + ["# made with " + line for line in tool_versions()]
    with tempfile.TemporaryDirectory() as tmp:
        for name, sentence, options, seconds in CLIPS:
            source = speak(tmp, sentence)
            wav = os.path.join(out_dir, name + ".wav")
            # -D: no dither, so the same tools give the same bytes on every run
            run(["sox", "-D", source] + options + [wav, "trim", "0.15", "%.3f" % seconds])
            rate, channels, bits, x = decode(wav)
            print("%s: %d Hz, %d ch, %d bits, %d frames" % (name, rate, channels, bits, len(x)))
            manifest.append("wav %s %d %d %d %d %.17g %.17g %.17g" % (
                name, rate, channels, bits, len(x), x.sum(), np.abs(x).sum(), (x * x).sum()))

            for n_mels in MEL_CLIPS.get(name, ()):
                mel = log_mel_reference(x, n_mels)
                stored = min(3000, (len(x) + 200 + 159) // 160 + 1)
                floor = float(mel[:, -1].max())
                assert np.all(mel[:, stored:] == floor), "frames after the audio are not floor"
                mel[:, :stored].astype("<f4").tofile(
                    os.path.join(out_dir, "%s.mel%d.f32" % (name, n_mels)))
                manifest.append("mel %s %d %d %.9g" % (name, n_mels, stored, floor))

            if name == "speech_16k_mono_s16":
                # The whole clip without the 30 s padding: openai's log_mel_spectrogram(audio),
                # which HF's transform computes when given the bare waveform.
                fe = WhisperFeatureExtractor(feature_size=80)
                full = fe._np_extract_fbank_features(x.astype(np.float32)[None, :], "cpu")[0]
                full.astype("<f4").tofile(os.path.join(out_dir, name + ".melfull80.f32"))
                manifest.append("melfull %s 80 %d" % (name, full.shape[1]))

            if rate != 16000:
                ref = soxr.resample(x, rate, 16000, quality="VHQ")
                ref.astype("<f4").tofile(os.path.join(out_dir, name + ".16k.f32"))
                manifest.append("resample %s %d" % (name, len(ref)))
                hq = soxr.resample(x, rate, 16000, quality="HQ")
                g = np.gcd(rate, 16000)
                poly = scipy.signal.resample_poly(x, 16000 // g, rate // g)
                print("   soxr VHQ vs HQ: %.1f dB, vs scipy resample_poly: %.1f dB"
                      % (snr_db(ref, hq), snr_db(ref, poly)))
    with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()
