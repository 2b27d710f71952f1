#!/bin/sh
# Builds every libFuzzer target in tests/fuzz and runs each on a copy of its seed corpus.
#
#   tests/fuzz/run.sh                      all targets, FUZZ_SECONDS (default 10) each
#   FUZZ_SECONDS=120 tests/fuzz/run.sh fuzz_wav fuzz_png     some targets, longer
#
# Environment: CC (default clang), FUZZ_CFLAGS (extra compiler flags), FUZZ_SECONDS,
# FUZZ_BUILD (default build/fuzz),
# FUZZ_ARTIFACTS (crashing inputs; default /tmp/fuzz-crashes), FUZZ_KEEP_CORPUS=1 (keep the
# grown corpora under FUZZ_BUILD/corpus instead of deleting them).
# Targets are built one at a time and run one at a time (no -jobs/-workers). A crash, a leak,
# a timeout (-timeout=10) or an out-of-memory (-rss_limit_mb=2048) fails the target; the
# input that caused it is saved under FUZZ_ARTIFACTS. One line is printed per target, then
# "N passed, M failed"; the exit status is nonzero when any target failed.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-clang}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
BUILD=${FUZZ_BUILD:-$ROOT/build/fuzz}
ARTIFACTS=${FUZZ_ARTIFACTS:-/tmp/fuzz-crashes}
ALL_TARGETS="fuzz_gemini_model fuzz_gguf fuzz_safetensors fuzz_ct2 fuzz_json_config
fuzz_spm_model fuzz_tokenizer_json fuzz_tok_encode fuzz_wav fuzz_png fuzz_jpeg fuzz_bmp fuzz_ppm
fuzz_y4m fuzz_detections"
if [ $# -gt 0 ]; then TARGETS="$*"; else TARGETS=$ALL_TARGETS; fi

CFLAGS="-g -O1 -std=c99 -D_POSIX_C_SOURCE=200809L -fsanitize=fuzzer,address,undefined"
CFLAGS="$CFLAGS -fno-sanitize-recover=undefined -fno-omit-frame-pointer ${FUZZ_CFLAGS:-}"

mkdir -p "$BUILD" "$ARTIFACTS" || exit 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gemini-fuzz-run.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
for target in $TARGETS; do
    src="$ROOT/tests/fuzz/$target.c"
    log="$BUILD/$target.log"
    if [ ! -f "$src" ]; then
        echo "FAIL $target: no such target ($src)"
        failed=$((failed + 1))
        continue
    fi
    if ! $CC $CFLAGS -I"$ROOT" -DFUZZ_REPO_ROOT="\"$ROOT\"" "$src" -o "$BUILD/$target" \
            -lm -lpthread >"$BUILD/$target.build.log" 2>&1; then
        echo "FAIL $target: build failed (see $BUILD/$target.build.log)"
        failed=$((failed + 1))
        continue
    fi
    corpus="$WORK/corpus/$target"
    mkdir -p "$corpus"
    if [ -d "$ROOT/tests/fuzz/corpus/$target" ]; then
        cp "$ROOT/tests/fuzz/corpus/$target"/* "$corpus"/ 2>/dev/null
    fi
    # The converter targets write their inputs to files: keep them inside $WORK.
    if (cd "$WORK" && TMPDIR="$WORK" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
            UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
            "$BUILD/$target" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$target-" "$corpus" \
            >"$log" 2>&1); then
        status=PASS
        passed=$((passed + 1))
    else
        status=FAIL
        failed=$((failed + 1))
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$status" = PASS ]; then
        echo "PASS $target: ${runs:-?} executions in ${FUZZ_SECONDS}s"
    else
        what=$(grep -m 1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' \
            "$log" | cut -c 1-120)
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        echo "FAIL $target: ${what:-see $log}${artifact:+ (input: $artifact)}"
    fi
    if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then
        rm -rf "$BUILD/corpus/$target"
        mkdir -p "$BUILD/corpus"
        cp -r "$corpus" "$BUILD/corpus/$target"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
