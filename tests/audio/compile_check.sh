#!/bin/sh
# Compile-only checks of gemini_audio.h: C99, C++ (g++ -x c++), GEMINI_STATIC, and together
# with gemini.h in one translation unit. Prints "N passed, M failed". Run from the repo root.
CC=${CC:-cc}
CXX=${CXX:-c++}
OUT=${BUILD:-build}
mkdir -p "$OUT"
passed=0
failed=0

try() {
    name=$1
    shift
    if "$@" 2>"$OUT/compile_check.err" && ! [ -s "$OUT/compile_check.err" ]; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        sed 's/^/     /' "$OUT/compile_check.err" | head -20
        failed=$((failed + 1))
    fi
}

SRC=tests/audio/compile_check.c
WARN="-Wall -Wextra -pedantic"
try "C99 alone" $CC -std=c99 $WARN -I. -c $SRC -o "$OUT/audio_c99.o"
try "C99 GEMINI_STATIC" $CC -std=c99 $WARN -DGEMINI_STATIC -I. -c $SRC -o "$OUT/audio_static.o"
try "C++11 alone" $CXX -x c++ -std=c++11 $WARN -I. -c $SRC -o "$OUT/audio_cxx.o"
try "C99 after gemini.h" $CC -std=c99 $WARN -DGEMINI_H_FIRST -I. -c $SRC -o "$OUT/audio_a.o"
try "C99 before gemini.h" $CC -std=c99 $WARN -DGEMINI_H_AFTER -I. -c $SRC -o "$OUT/audio_b.o"
try "C++11 after gemini.h" $CXX -x c++ -std=c++11 $WARN -DGEMINI_H_FIRST -I. -c $SRC \
    -o "$OUT/audio_a_cxx.o"
try "test_audio.c as C++" $CXX -x c++ -std=c++11 $WARN -I. -c tests/test_audio.c \
    -o "$OUT/test_audio_cxx.o"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
