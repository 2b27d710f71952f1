#!/bin/sh
# test_core built with GEMINI__POOL_LOCK_ONLY: the thread pool's lock-only path, which compilers
# without GCC/clang atomics get, so that it is built and run here too. Run from the repo root.
CC=${CC:-cc}
OUT=${BUILD:-build}
mkdir -p "$OUT"
$CC -std=c99 -Wall -Wextra -pedantic -O2 -DGEMINI__POOL_LOCK_ONLY -I. tests/test_core.c \
    -o "$OUT/test_core_lock_only" -lm -lpthread || { echo "0 passed, 1 failed"; exit 1; }
"$OUT/test_core_lock_only"
