#!/bin/sh
# Makes the Whisper test clips: English speech from espeak-ng (tests/whisper/sentences.txt),
# converted by sox to several rates, sample formats and channel layouts, plus a clip over 30 s,
# digital silence, quiet white noise and a single word. The clips are not committed: tests run
# this script first. tests/whisper/expected.txt holds the reference transcripts of exactly
# these files and tests/whisper/clips.sha256 their checksums.
#
# Usage: sh tests/whisper/make_clips.sh [--check] [OUT_DIR]
#   OUT_DIR   default tests/out/whisper-clips (next to this folder)
#   --check   also compare the clips with tests/whisper/clips.sha256 and exit 1 when they
#             differ (another espeak-ng or sox version speaks or converts differently)
# Needs espeak-ng and sox (Debian: apt-get install espeak-ng sox) and sha256sum.
#
# Deterministic: espeak-ng has no randomness, sox runs with -R (fixed seed for the noise) and
# -D (no dither), so the same tool versions give the same bytes on every run.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi
out=${1:-"$(dirname "$here")/out/whisper-clips"}
sentences="$here/sentences.txt"

for tool in espeak-ng sox sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "make_clips.sh: $tool not found" >&2; exit 2; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$out"

# The text of sentence ID ("s1", "l3", "w1"): the rest of its line in sentences.txt.
sentence() {
    text=$(sed -n "s/^$1 //p" "$sentences")
    if [ -z "$text" ]; then
        echo "make_clips.sh: no sentence $1 in $sentences" >&2
        exit 2
    fi
    printf '%s\n' "$text"
}

# speak ID...: espeak-ng (voice en, 160 words a minute) reads the sentences as one text into
# $tmp/speech.wav (22050 Hz, mono, 16-bit).
speak() {
    text=""
    for id in "$@"; do
        text="$text $(sentence "$id")"
    done
    espeak-ng -v en -s 160 -w "$tmp/speech.wav" "$text" </dev/null
}

# convert NAME RATE CHANNELS KIND PAD: $tmp/speech.wav to $out/NAME.wav. KIND is s16, s24
# (signed integers) or f32 (IEEE float); PAD seconds of silence go before and after. Stereo
# puts the speech at full level on the left and at half level on the right, so the two
# channels differ and a mono mix must average them.
convert() {
    case $4 in
        s16) format="-b 16 -e signed-integer" ;;
        s24) format="-b 24 -e signed-integer" ;;
        f32) format="-b 32 -e floating-point" ;;
        *) echo "make_clips.sh: unknown sample kind $4" >&2; exit 2 ;;
    esac
    case $3 in
        1) remix="" ;;
        2) remix="remix 1 1v0.5" ;;
        *) echo "make_clips.sh: unsupported channel count $3" >&2; exit 2 ;;
    esac
    # shellcheck disable=SC2086 # $format and $remix are option lists
    sox -D -R "$tmp/speech.wav" $format "$out/$1.wav" $remix pad "$5" "$5" rate -h "$2" \
        </dev/null
}

# One clip per line: name, sentence, rate, channels, kind. Every rate (8, 16, 22.05, 44.1,
# 48 kHz), both layouts and all three sample kinds occur; s1..s4 come twice in other formats.
# 0.3 s of silence around the speech: Whisper base often drops the first words when they
# start at 0 s.
while read -r name id rate channels kind; do
    speak "$id"
    convert "$name" "$rate" "$channels" "$kind" 0.3
done <<'EOF'
s1_16k_mono_s16 s1 16000 1 s16
s2_8k_mono_s16 s2 8000 1 s16
s3_22k_stereo_s16 s3 22050 2 s16
s4_44k_mono_s24 s4 44100 1 s24
s5_48k_stereo_f32 s5 48000 2 f32
s6_16k_stereo_s24 s6 16000 2 s24
s7_48k_mono_s16 s7 48000 1 s16
s8_44k_stereo_f32 s8 44100 2 f32
s1_48k_stereo_s24 s1 48000 2 s24
s2_22k_mono_f32 s2 22050 1 f32
s3_8k_stereo_s24 s3 8000 2 s24
s4_16k_mono_f32 s4 16000 1 f32
EOF

# Longer than one 30 s window: fifteen sentences read as one text.
speak l1 l2 l3 l4 l5 l6 l7 l8 s1 s2 s3 s4 s5 s6 s7
convert long_16k_mono_s16 16000 1 s16 0.3

# Shorter than a second: one word, with espeak-ng's own short margins.
speak w1
convert word_16k_mono_s16 16000 1 s16 0

# No speech: 2 s of digital silence and 3 s of white noise at -40 dBFS peak (about -45 dBFS
# RMS). The reference transcribes both as " you"; the no-speech rule skips the noise only.
sox -D -R -n -r 16000 -c 1 -b 16 -e signed-integer "$out/silence_16k_mono_s16.wav" trim 0 2
sox -D -R -n -r 16000 -c 1 -b 16 -e signed-integer "$out/noise_16k_mono_s16.wav" \
    synth 3 whitenoise vol -40dB

# byte order for the file list, as the reference script sorts it
(cd "$out" && LC_ALL=C && export LC_ALL && sha256sum -- *.wav >SHA256SUMS)
{
    espeak-ng --version
    sox --version
} >"$out/VERSIONS"
echo "make_clips.sh: $(grep -c . "$out/SHA256SUMS") clips in $out" >&2

if [ "$check" = 1 ]; then
    if cmp -s "$out/SHA256SUMS" "$here/clips.sha256"; then
        echo "make_clips.sh: identical to tests/whisper/clips.sha256" >&2
    else
        echo "make_clips.sh: the clips differ from tests/whisper/clips.sha256" \
             "(made with: $(tr '\n' ' ' <"$out/VERSIONS"))" >&2
        exit 1
    fi
fi
