#!/bin/sh
# Whisper base speed (called by bench/run.sh): the real-time factor of gemini-transcribe on the
# 47 s espeak-ng clip of tests/whisper/make_clips.sh (two 30 s windows), f16 and q8_0 files,
# greedy and the reference's default beam 5, and the time of one encoder pass. The wall time
# includes loading, WAV decoding, resampling, log-mel, encoder and decoder; RTF = wall time /
# audio duration (below 1: faster than real time). Best of RUNS runs.
set -u
BUILD=${BUILD:-build}
MODELS=${MODELS:-models}
THREADS=${THREADS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
RUNS=${RUNS:-3}
clips=tests/out/whisper-clips
clip="$clips/long_16k_mono_s16.wav"

if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1; then
    echo "whisper: espeak-ng or sox missing, skipped"
    exit 0
fi
sh tests/whisper/make_clips.sh "$clips" >/dev/null 2>&1 || { echo "whisper: no clips"; exit 1; }

printf '%-26s %-8s %10s %8s\n' "model" "decoding" "wall s" "RTF"
for model in "$MODELS/whisper-base-f16.gemini" "$MODELS/whisper-base-q8_0.gemini"; do
    if [ ! -f "$model" ]; then
        echo "$model: missing, skipped (run 'make models')"
        continue
    fi
    for beam in 1 5; do
        best=""
        run=0
        while [ "$run" -lt "$RUNS" ]; do
            line=$("$BUILD/gemini-transcribe" -m "$model" -f "$clip" -l en -t "$THREADS" \
                   --beam "$beam" -q 2>&1 | grep 'real-time factor')
            rtf=$(echo "$line" | sed -E 's/.*real-time factor ([0-9.]+).*/\1/')
            wall=$(echo "$line" | sed -E 's/.* in ([0-9.]+) s.*/\1/')
            if [ -z "$best" ] || awk -v a="$rtf" -v b="$best" 'BEGIN { exit !(a < b) }'; then
                best=$rtf
                best_wall=$wall
            fi
            run=$((run + 1))
        done
        printf '%-26s %-8s %10s %8s\n' "$(basename "$model")" \
            "$([ "$beam" = 1 ] && echo greedy || echo "beam $beam")" "$best_wall" "$best"
    done
done
