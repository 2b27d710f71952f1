#!/bin/sh
# Encode throughput of gemini-tokenize against spm_encode on the same text and model, both as
# command-line programs (load, read lines, encode, print ids), best of 3 runs each, in CPU
# time. Needs /usr/bin/time and bc.
#
# Usage: bench/bench_tokenizer.sh [MB]   (default 16 MB of text; run tests/tokenizer/run.sh
#                                          first, it trains the small models used here)
# The default is that large because /usr/bin/time reports CPU time in 10 ms steps: 4 MB took
# ours 0.11-0.18 s, so its figures moved in steps of 5-9% and repeated exactly run after run.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT="$ROOT/tests/out/tok"
MB=${1:-16}
[ -f "$OUT/bpe_bf.model" ] || { echo "bench: run tests/tokenizer/run.sh first"; exit 1; }

${CC:-cc} -std=c99 -O2 -I"$ROOT" "$ROOT/examples/gemini-tokenize.c" -o "$OUT/gemini-tokenize-O2" \
    -lm -lpthread ||
    exit 1

# The text: the training text (many scripts) and the corpus, repeated up to MB megabytes.
TEXT="$OUT/bench.txt"
: > "$TEXT"
while [ "$(wc -c < "$TEXT")" -lt $((MB * 1000000)) ]; do
    cat "$OUT/train.txt" "$OUT/corpus.txt" >> "$TEXT"
done
BYTES=$(wc -c < "$TEXT")

# Best of 3 runs of "$@" < TEXT, in CPU seconds (user + system): the machine is shared, and
# CPU time does not count the moments another process held the core.
best_time() {
    best=""
    for run in 1 2 3; do
        /usr/bin/time -f "%U %S" -o "$OUT/bench.time" "$@" < "$TEXT" > /dev/null || return 1
        t=$(awk '{ print $1 + $2 }' "$OUT/bench.time")
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" -eq 1 ]; then best=$t; fi
    done
    echo "$best"
}

printf "%-22s %10s %10s %8s\n" model "spm MB/s" "ours MB/s" ratio
for m in bpe_bf uni_bf "$ROOT/models/gemma3-rebuilt"; do
    model="$m.model"
    case $m in /*) ;; *) model="$OUT/$m.model" ;; esac
    [ -f "$model" ] || { echo "$(basename "$m"): not found, skipped"; continue; }
    spm=$(best_time spm_encode --model="$model" --output_format=id)
    ours=$(best_time "$OUT/gemini-tokenize-O2" -m "$model" --ids)
    printf "%-22s %10.2f %10.2f %7.2fx\n" "$(basename "$m")" \
        "$(echo "$BYTES / 1000000 / $spm" | bc -l)" "$(echo "$BYTES / 1000000 / $ours" | bc -l)" \
        "$(echo "$spm / $ours" | bc -l)"
done
