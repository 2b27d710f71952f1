#!/bin/sh
# Runs every test suite and sums their closing lines ("N passed, M failed") into one.
# A suite that exits nonzero without such a line counts as one failure.
# Environment: BUILD (default build), MODELS (default models), SUITES (default: all; else the
# names of the suites to run, separated by spaces: "core parity whisper-parity").
BUILD=${BUILD:-build}
MODELS=${MODELS:-models}
export BUILD MODELS

total_passed=0
total_failed=0
failed_suites=""

run_suite() {
    name=$1
    shift
    if [ -n "${SUITES:-}" ]; then
        case " $SUITES " in
            *" $name "*) ;;
            *) return 0 ;;
        esac
    fi
    echo "== $name"
    output=$("$@" 2>&1)
    status=$?
    printf '%s\n' "$output" | sed 's/^/   /'
    summary=$(printf '%s\n' "$output" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -n "$summary" ]; then
        passed=$(echo "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')
        failed=$(echo "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    else
        passed=0
        failed=0
    fi
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    [ "$failed" -ne 0 ] && failed_suites="$failed_suites $name"
    return 0
}

run_suite core "$BUILD/test_core"
run_suite pool-lock-only sh tests/test_pool_lock_only.sh
run_suite tokenizer "$BUILD/test_tokenizer"
[ -f tests/tokenizer/run.sh ] && run_suite tokenizer-spm sh tests/tokenizer/run.sh
[ -f tests/test_convert.sh ] && run_suite convert sh tests/test_convert.sh
run_suite parity sh tests/test_parity.sh
run_suite whisper-parity sh tests/test_whisper_parity.sh
run_suite faults "$BUILD/test_faults" tests/out/parity/gemma3-q8_0.gemini
run_suite offload "$BUILD/test_offload"
run_suite audio "$BUILD/test_audio"
run_suite audio-compile sh tests/audio/compile_check.sh
run_suite vision "$BUILD/test_vision"
run_suite vision-model sh tests/test_vision_model.sh
run_suite neon sh tests/test_neon.sh
run_suite whisper "$BUILD/test_whisper"
run_suite whisper-model "$BUILD/test_whisper_model"
run_suite transcribe-cli sh tests/test_transcribe_cli.sh
[ -f tests/test_real_model.sh ] && run_suite real-model sh tests/test_real_model.sh
run_suite whisper-speech sh tests/test_whisper_speech.sh

echo
[ -n "$failed_suites" ] && echo "failing suites:$failed_suites"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
