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
if [ ! -f "$f32" ]; then
    echo "note: $f32 is missing; the checks against it and the transformers reference are left out"
    exec "$BUILD/test_real" "$q8"
fi

# Both programs end with "N passed, M failed"; report the sum as one line.
"$BUILD/test_real" "$q8" "$f32" > "$BUILD/test_real.out" 2>&1
status_real=$?
"$BUILD/test_real_reference" "$f32" tests/fixtures/gemma3-270m > "$BUILD/test_real_reference.out" 2>&1
status_reference=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$BUILD/test_real.out"
grep -E "^(FAIL|  *largest|  *[a-z]+: our argmax)" "$BUILD/test_real_reference.out"
passed=0
failed=0
for out in "$BUILD/test_real.out" "$BUILD/test_real_reference.out"; do
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    [ -z "$line" ] && line="0 passed, 1 failed"
    passed=$((passed + $(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')))
done
echo "transformers reference on the same weights: $(tail -n 1 "$BUILD/test_real_reference.out")"
echo "$passed passed, $failed failed"
[ "$status_real" -eq 0 ] && [ "$status_reference" -eq 0 ]
