#!/bin/sh
# Tests on the real Gemma 3 270M checkpoint. `make models` fetches and converts it; without it
# this suite says so and counts one skipped check.
BUILD=${BUILD:-build}
MODELS=${MODELS:-models}
q8="$MODELS/gemma-3-270m-q8_0.gemini"
f32="$MODELS/gemma-3-270m-f32.gemini"

if [ ! -f "$q8" ]; then
    echo "SKIP real-model tests: $q8 is missing (run 'make models')"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
if [ -f "$f32" ]; then
    "$BUILD/test_real" "$q8" "$f32"
else
    echo "note: $f32 is missing; the q8_0-against-f32 check is left out"
    "$BUILD/test_real" "$q8"
fi
