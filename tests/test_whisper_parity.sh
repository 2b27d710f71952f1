#!/bin/sh
# Converts the tiny Whisper reference fixtures (tests/fixtures/whisper-tiny and its mel128
# variant, made by tools/make_whisper_fixtures.py with transformers) with gemini-convert and
# checks our encoder output and logits against them (tests/test_whisper_parity.c):
#   f32   within 1e-4 of the reference, relative to its largest value (the figure);
#   f16   the weights rounded to f16 move these random-weight models' values by up to ~1e-3,
#         so 5e-3 is allowed; greedy ids are still checked.
# Each also runs with an f16 and a bf16 KV cache (self- and cross-attention keys and values)
# against the f32 cache: logits within 2e-3 (f16) and 1e-2 (bf16) of the f32 cache's largest
# logit (measured: 5.3e-4 and 4.2e-3), batched = token by token and 2 threads = 1 bit for bit.
BUILD=${BUILD:-build}
out=tests/out/whisper-parity
mkdir -p "$out"

status=0
passed=0
failed=0
for fixture in tests/fixtures/whisper-tiny tests/fixtures/whisper-tiny/mel128; do
    name=$(echo "$fixture" | sed 's,tests/fixtures/,,; s,/,-,g')
    for type in f32 f16; do
        case $type in
            f32) tol=1e-4 ;;
            f16) tol=5e-3 ;;
        esac
        model="$out/$name-$type.gemini"
        echo "-- $name $type (tolerance $tol)"
        if ! "$BUILD/gemini-convert" -q --type "$type" -o "$model" "$fixture/hf" \
                >"$out/convert.log" 2>&1; then
            cat "$out/convert.log"
            echo "FAIL convert $fixture to $type"
            failed=$((failed + 1))
            status=1
            continue
        fi
        passed=$((passed + 1))
        result=$("$BUILD/test_whisper_parity" --tol "$tol" "$fixture" "$model")
        [ $? -ne 0 ] && status=1
        printf '%s\n' "$result" | grep -v ' passed, '
        summary=$(printf '%s\n' "$result" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
        if [ -z "$summary" ]; then
            echo "FAIL test_whisper_parity $fixture $type printed no summary"
            failed=$((failed + 1))
            status=1
            continue
        fi
        passed=$((passed + $(echo "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')))
        failed=$((failed + $(echo "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')))
    done
done
echo "$passed passed, $failed failed"
exit $status
