#!/bin/sh
# Benchmarks (not tests): tokenizer throughput against spm_encode, and generation speed on the
# real Gemma 3 270M when `make models` has been run. Roofline measurements come with issue 6.
BUILD=${BUILD:-build}
MODELS=${MODELS:-models}

echo "== tokenizer: encode throughput, ours against spm_encode"
sh bench/bench_tokenizer.sh

model="$MODELS/gemma-3-270m-q8_0.gemini"
if [ -f "$model" ]; then
    echo "== gemma-3-270m q8_0: prefill and decode speed"
    prompt=$(awk 'NR <= 40' tests/tokenizer/corpus.txt | tr '\n' ' ')
    "$BUILD/gemini-generate" -m "$model" -p "$prompt" -n 128 --temp 0 >/dev/null
else
    echo "== $model missing: run 'make models' for the generation benchmark"
fi
