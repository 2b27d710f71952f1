#!/bin/sh
# gemini-transcribe against whisper.cpp on the same weights (not part of `make bench`: it needs a
# whisper.cpp build, which nothing here downloads). Usage:
#   WHISPER_BIN=/path/to/whisper.cpp/build/bin MEL_FILTERS=/path/to/mel_filters.npz \
#       sh bench/compare_whisper_cpp.sh
# WHISPER_BIN must hold whisper-cli. One way to get it from PyPI alone (the pywhispercpp sdist
# carries whisper.cpp's source; `pip download` would try to build it, so fetch the file itself):
#   curl -sO "$(curl -s https://pypi.org/simple/pywhispercpp/ |
#       grep -o 'https://[^"#]*pywhispercpp-1.5.1.tar.gz' | head -1)"
#   tar xzf pywhispercpp-1.5.1.tar.gz && cd pywhispercpp-1.5.1/whisper.cpp
#   cmake -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DWHISPER_SDL2=OFF
#   cmake --build build -j --target whisper-cli
# MEL_FILTERS is openai-whisper's whisper/assets/mel_filters.npz (in its sdist on PyPI:
#   pip download --no-deps --no-binary :all: openai-whisper). whisper.cpp reads the mel filter
# bank from its model file; ours computes the same one.
#
# bench/gemini_to_whisper_cpp.py writes models/whisper-base-{f16,q8_0}.gemini as whisper.cpp
# model files with every tensor's bytes unchanged, so both sides run identical weights. Both
# transcribe the 47 s espeak-ng clip of tests/whisper/make_clips.sh in English with their
# defaults otherwise (timestamps, temperature fallback; whisper.cpp's flash attention is on by
# default), greedy and beam 5, RUNS times each, alternating; the wall time of each whole
# process (load, audio, encoder, decoder) is measured here the same way for both, and the
# best run is kept. The transcripts are printed so that they can be compared.
set -eu
BUILD=${BUILD:-build}
MODELS=${MODELS:-models}
THREADS=${THREADS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
RUNS=${RUNS:-3}
OUT=${OUT:-$BUILD/whisper_cpp}
PYTHON=${PYTHON:-python3}
: "${WHISPER_BIN:?set WHISPER_BIN to the directory with whisper-cli}"
: "${MEL_FILTERS:?set MEL_FILTERS to openai-whisper's mel_filters.npz}"
clips=tests/out/whisper-clips
clip=$clips/long_16k_mono_s16.wav

if ! sh tests/whisper/make_clips.sh "$clips" >/dev/null 2>&1; then
    echo "no clips (are espeak-ng and sox installed?)"
    exit 1
fi
mkdir -p "$OUT"

# Seconds since the epoch with nanoseconds, for wall times measured the same way on both sides.
now() { date +%s.%N; }

# best_of_runs NAME COMMAND...: runs the command RUNS times, prints the best wall time; the
# last run's standard output is kept in $OUT/NAME.txt.
best_of_runs() {
    name=$1
    shift
    best=""
    run=0
    while [ "$run" -lt "$RUNS" ]; do
        start=$(now)
        "$@" > "$OUT/$name.txt" 2> "$OUT/$name.log"
        wall=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
        if [ -z "$best" ] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$wall
        fi
        run=$((run + 1))
    done
    echo "$best"
}

duration=$(soxi -D "$clip")
echo "clip: $clip, $duration s; $THREADS threads; best of $RUNS runs, whole-process wall time"
printf '%-6s %-8s %16s %16s %8s\n' type decoding "whisper.cpp s" "gemini.h s" speedup
for type in f16 q8_0; do
    ours=$MODELS/whisper-base-$type.gemini
    theirs=$OUT/ggml-base-$type.bin
    [ -f "$ours" ] || { echo "missing $ours: run 'make models'"; exit 1; }
    "$PYTHON" bench/gemini_to_whisper_cpp.py "$ours" "$MEL_FILTERS" "$theirs" > /dev/null
    for beam in 1 5; do
        label=$([ "$beam" = 1 ] && echo greedy || echo "beam $beam")
        theirs_s=$(best_of_runs "whisper.cpp-$type-$beam" "$WHISPER_BIN/whisper-cli" \
            -m "$theirs" -f "$clip" -l en -t "$THREADS" -bs "$beam" -np)
        ours_s=$(best_of_runs "gemini-$type-$beam" "$BUILD/gemini-transcribe" \
            -m "$ours" -f "$clip" -l en -t "$THREADS" --beam "$beam" --timestamps)
        printf '%-6s %-8s %16s %16s %7.2fx\n' "$type" "$label" "$theirs_s" "$ours_s" \
            "$(awk -v a="$theirs_s" -v b="$ours_s" 'BEGIN { print a / b }')"
    done
done

echo
for name in "$OUT"/whisper.cpp-*.txt; do
    echo "== $(basename "$name" .txt)"
    cat "$name"
    ours=$OUT/gemini-${name#"$OUT"/whisper.cpp-}
    echo "== $(basename "$ours" .txt)"
    cat "$ours"
done
