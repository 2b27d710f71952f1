#!/bin/sh
# gemini.h against llama.cpp on the same weights (not part of `make bench`: it needs a llama.cpp
# build, which nothing here downloads). Usage:
#   LLAMA_BIN=/path/to/llama.cpp/build/bin sh bench/compare_llama_cpp.sh
# LLAMA_BIN must hold llama-quantize and llama-bench. One way to get them from PyPI alone (the
# llama-cpp-python sdist vendors llama.cpp's source):
#   pip download --no-deps --no-binary :all: llama-cpp-python && tar xzf llama_cpp_python-*.tar.gz
#   cd llama_cpp_python-*/vendor/llama.cpp && cmake -B build -DCMAKE_BUILD_TYPE=Release \
#       -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF && cmake --build build -j --target llama-bench \
#       llama-quantize
# Both sides requantise the same GGUF (models/src/gemma-3-270m-q4_k_m.gguf, from `make models`)
# to q8_0 and q4_0 (llama-quantize --pure: every matrix, the tied embedding too), and the script
# checks that the tensors are byte for byte the same (CRC-32 of five tensors, via llama.cpp's
# gguf-py, which needs numpy and PyYAML). llama-bench's pp512 / tg128 are set against
# bench_model's prefill 512 and its decode 128 after the 512-token prompt and "tg128 (no
# prompt)" after BOS alone (llama-bench's tg128 starts from an empty context).
set -eu
BUILD=${BUILD:-build}
THREADS=${THREADS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
OUT=${OUT:-$BUILD/llama_cpp}
gguf=models/src/gemma-3-270m-q4_k_m.gguf
: "${LLAMA_BIN:?set LLAMA_BIN to the directory with llama-bench and llama-quantize}"
[ -f "$gguf" ] || { echo "missing $gguf: run 'make models'"; exit 1; }
gguf_py=$(cd "$LLAMA_BIN/../.." && pwd)/gguf-py
mkdir -p "$OUT"
cc -std=c99 -O2 -I. bench/bench_model.c -o "$BUILD/bench_model" -lm -lpthread

for type in q8_0 q4_0; do
    ours=$OUT/gemma-3-270m-$type.gemini
    theirs=$OUT/gemma-3-270m-$type.gguf
    "$BUILD/gemini-convert" -q --type $type -o "$ours" "$gguf"
    "$LLAMA_BIN/llama-quantize" --allow-requantize --pure "$gguf" "$theirs" \
        "$(echo $type | tr a-z A-Z)" 1 > "$OUT/quantize-$type.log" 2>&1
    for name in token_embd blk.0.attn_q blk.0.attn_k blk.0.ffn_down blk.17.ffn_up; do
        a=$("$BUILD/gemini-convert" --info "$ours" | awk -v n="$name" '$1 == n { print $NF }')
        b=$(PYTHONPATH="$gguf_py" python3 -c "
import sys, zlib
from gguf import GGUFReader
for t in GGUFReader(sys.argv[1]).tensors:
    if t.name == sys.argv[2] + '.weight':
        print('%08X' % zlib.crc32(t.data.tobytes()))
" "$theirs" "$name")
        [ "$a" = "$b" ] || { echo "$type $name: ours $a, llama.cpp's $b: not the same weights"; exit 1; }
    done
    echo "== $type: same weights (5 tensors' CRC-32 equal); $THREADS threads"
    "$LLAMA_BIN/llama-bench" -m "$theirs" -p 512 -n 128 -t "$THREADS" -r 3 | grep -E 'pp512|tg128'
    "$BUILD/bench_model" -m "$ours" -t "$THREADS" --runs 3 --speed-only | grep -v 'no head'
done
