#!/bin/sh
# Benchmarks (not tests), called by `make bench` after the programs are built. In one run:
#   1. this machine's roofline (bench/roofline.c): memory read bandwidth and fp32 FMA peak;
#   2. Gemma 3 270M at q8_0 and q4_0 (bench/bench_model.c): prefill on 512 token ids, decode of
#      128 tokens after them and after BOS alone, each as a fraction of the roofline; load time;
#      time to the first token; peak resident memory against weights + context + 64 MiB; the
#      speed rows again with an f16 KV cache;
#   3. the tokenizer against spm_encode (bench/bench_tokenizer.sh);
#   4. Whisper base: gemini-transcribe's real-time factor on a 47 s clip (bench/bench_whisper.sh).
# Every figure is measured in this run, with THREADS threads for both the roofline and the model
# (default: online CPUs, which is also gemini_context_default_params()'s choice). The machine
# may be shared: figures are best of RUNS (default 3) and still noisy.
# The method is in bench/README.md and printed below the model table.
set -u
BUILD=${BUILD:-build}
MODELS=${MODELS:-models}
CC=${CC:-cc}
THREADS=${THREADS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
RUNS=${RUNS:-3}
CFLAGS_BENCH="-std=c99 -O2 -Wall -Wextra -pedantic -I."

mkdir -p "$BUILD"
for prog in roofline bench_model; do
    $CC $CFLAGS_BENCH "bench/$prog.c" -o "$BUILD/$prog" -lm -lpthread || exit 1
done

echo "== roofline: $THREADS threads (the model's thread count); $(uname -m)," \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)"
roof_values="$BUILD/roofline.values"
# Many short runs (each well under 0.1 s): on shared cores the best one is the one least
# disturbed.
"$BUILD/roofline" -t "$THREADS" --runs 20 --values "$roof_values" || exit 1

# The q4_0 file is made from the same GGUF as the q8_0 one when it is missing.
q8="$MODELS/gemma-3-270m-q8_0.gemini"
q4="$MODELS/gemma-3-270m-q4_0.gemini"
gguf="$MODELS/src/gemma-3-270m-q4_k_m.gguf"
if [ ! -f "$q4" ] && [ -f "$gguf" ] && [ -x "$BUILD/gemini-convert" ]; then
    echo "== making $q4 from $gguf"
    "$BUILD/gemini-convert" -q --type q4_0 -o "$q4" "$gguf" || exit 1
fi

echo
echo "== gemma-3-270m: $THREADS threads, best of $RUNS runs"
header=--header
for model in "$q8" "$q4"; do
    if [ ! -f "$model" ]; then
        echo "$model: missing, skipped (run 'make models')"
        continue
    fi
    # One process per model, so that its peak resident memory is that model's alone.
    "$BUILD/bench_model" -m "$model" -t "$THREADS" --runs "$RUNS" --roofline "$roof_values" \
        $header || exit 1
    header=
done

# The same models with an f16 KV cache (half the bytes to read; llama.cpp's default type, ours
# being f32 for exactness): speed rows only.
for model in "$q8" "$q4"; do
    [ -f "$model" ] || continue
    "$BUILD/bench_model" -m "$model" -t "$THREADS" --runs "$RUNS" --roofline "$roof_values" \
        --kv-type f16 --speed-only || exit 1
done

# How the model scales from one thread: the same q8_0 run on one thread, against a one-thread
# roofline measured now.
if [ "$THREADS" -gt 1 ] && [ -f "$q8" ]; then
    "$BUILD/roofline" -t 1 --runs 20 --values "$BUILD/roofline1.values" |
        sed -n 's/^roofline used below */one-thread roofline: /p'
    "$BUILD/bench_model" -m "$q8" -t 1 --runs "$RUNS" --roofline "$BUILD/roofline1.values" \
        --speed-only || exit 1
fi
echo
"$BUILD/bench_model" --method

echo
echo "== tokenizer: encode throughput, ours against spm_encode"
sh bench/bench_tokenizer.sh

echo
echo "== whisper-base: real-time factor on a 47 s clip, $THREADS threads, best of $RUNS runs"
THREADS=$THREADS RUNS=$RUNS sh bench/bench_whisper.sh
