#!/bin/sh
# The AArch64 build under emulation: cross-compiles the suites that need no model files (core,
# tokenizer, vision, audio) with aarch64-linux-gnu-gcc, statically, and runs them with
# qemu-aarch64. test_core runs twice, on a CPU without SDOT (cortex-a53: the NEON kernels
# against scalar) and on one with it (max: NEON and NEON dotprod against scalar), and each run
# must show the level it was meant to reach; the other suites run once. Prints every check and
# ends with "N passed, M failed"; exits nonzero on a failure. Without the cross compiler or
# qemu it prints a SKIP line and exits 0 (Debian: apt-get install gcc-aarch64-linux-gnu
# qemu-user). Run from the repo root.
# Environment: BUILD (default build; binaries go to $BUILD/aarch64), AARCH64_CC (default
# aarch64-linux-gnu-gcc), QEMU_AARCH64 (default qemu-aarch64), CFLAGS: with -fsanitize=undefined
# test_core alone is built with those flags and run; with -fsanitize=address the script skips,
# as ASan's shadow memory does not run under qemu-user (the plain `make test` runs it all).
BUILD=${BUILD:-build}
AARCH64_CC=${AARCH64_CC:-aarch64-linux-gnu-gcc}
QEMU_AARCH64=${QEMU_AARCH64:-qemu-aarch64}
OUT=$BUILD/aarch64

skip() {
    echo "SKIP neon: $1"
    echo "0 passed, 0 failed"
    exit 0
}

command -v "$AARCH64_CC" >/dev/null 2>&1 ||
    skip "$AARCH64_CC not found (apt-get install gcc-aarch64-linux-gnu)"
command -v "$QEMU_AARCH64" >/dev/null 2>&1 ||
    skip "$QEMU_AARCH64 not found (apt-get install qemu-user)"
suites="core tokenizer vision audio"
flags="-O2"
case " ${CFLAGS:-} " in
    *-fsanitize=address*) skip "AddressSanitizer does not run under qemu-user" ;;
    *-fsanitize=undefined*) flags="$CFLAGS" suites=core ;; # the kernels; the rest is plain C
esac

mkdir -p "$OUT" build # test_core writes build/test_core_model.gemini
passed=0
failed=0
status=0

count() { # OUTPUT: adds its closing "N passed, M failed" to the totals
    summary=$(printf '%s\n' "$1" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$summary" ]; then
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + $(echo "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')))
}

check() { # OK NAME: one check of this script's own
    if [ "$1" -eq 1 ]; then
        echo "ok   $2"
        passed=$((passed + 1))
    else
        echo "FAIL $2"
        failed=$((failed + 1))
    fi
}

# SUITE CPU: runs $OUT/test_SUITE on qemu's CPU model; leaves its output in $output
run() {
    echo "-- test_$1 on qemu -cpu $2"
    output=$("$QEMU_AARCH64" -cpu "$2" "$OUT/test_$1" 2>&1)
    [ $? -ne 0 ] && status=1
    printf '%s\n' "$output" | grep -Ev '^[0-9]+ passed, [0-9]+ failed'
    summary=$(printf '%s\n' "$output" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    echo "-- test_$1 on $2: ${summary:-no closing line}"
    count "$output"
}

for suite in $suites; do
    rm -f "$OUT/test_$suite"
    if "$AARCH64_CC" -std=c99 -Wall -Wextra -pedantic $flags -static -I. "tests/test_$suite.c" \
            -o "$OUT/test_$suite" -lm -lpthread >"$OUT/build.log" 2>&1 &&
            ! [ -s "$OUT/build.log" ]; then
        check 1 "test_$suite builds for aarch64 without warnings"
    else
        sed 's/^/     /' "$OUT/build.log" | head -40
        check 0 "test_$suite builds for aarch64 without warnings"
        status=1
    fi
done

# ARMv8.0 without SDOT: the dotprod level must be reported missing, the NEON one tested
if [ -x "$OUT/test_core" ]; then
    run core cortex-a53
    reached=0
    if printf '%s\n' "$output" | grep -q '^ok   matmul .*: neon q4_0' &&
            printf '%s\n' "$output" | grep -q 'neon dotprod kernels not built or not supported'
    then
        reached=1
    fi
    check $reached "cortex-a53 (no SDOT) runs the neon kernels and not the dotprod ones"

    # ARMv8.2+ with SDOT: both levels tested
    run core max
    reached=0
    printf '%s\n' "$output" | grep -q '^ok   matmul .*: neon dotprod q4_0' && reached=1
    check $reached "max (with SDOT) runs the neon dotprod kernels"
fi
for suite in $suites; do
    [ "$suite" != core ] && [ -x "$OUT/test_$suite" ] && run "$suite" max
done

echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
