#!/bin/sh
# Converts every PaliGemma fixture (tests/fixtures/paligemma/*/hf, made by
# tools/make_paligemma_fixtures.py) with gemini-convert and runs test_vision_model on it:
#   f32   pixels to 1/255; SigLIP output, image rows and every logit within 1e-4 of the largest
#         reference value; 16 greedy tokens identical
#   bf16  the same within 0.1 (the tiny fixtures are ill-conditioned on purpose: measured 0.056)
#   q8_0  the vision tower and image rows only, within 0.03 (measured 0.0105); q8_0 rows need a
#         multiple of 32 values, so this runs the quantised products on the tower's 32-wide
#         matrices and the f16 fallback on the rest
BUILD=${BUILD:-build}
out=tests/out/vision_model
mkdir -p "$out"

passed=0
failed=0
status=0
for fixture in tests/fixtures/paligemma/paligemma tests/fixtures/paligemma/paligemma2; do
    name=$(basename "$fixture")
    for check in f32 bf16 q8_0; do
        case $check in
            f32)  options="--tol 1e-4 --greedy-exact" ;;
            bf16) options="--tol 0.1" ;;
            q8_0) options="--tol 0.03 --vision-only" ;;
        esac
        model="$out/$name-$check.gemini"
        echo "-- $name $check ($options)"
        if ! "$BUILD/gemini-convert" -q --type "$check" -o "$model" "$fixture/hf" \
                >"$out/convert.log" 2>&1; then
            cat "$out/convert.log"
            echo "FAIL convert $fixture to $check"
            failed=$((failed + 1))
            continue
        fi
        passed=$((passed + 1))
        result=$("$BUILD/test_vision_model" $options "$fixture" "$model")
        [ $? -ne 0 ] && status=1
        printf '%s\n' "$result" | grep -v ' passed, '
        summary=$(printf '%s\n' "$result" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
        if [ -z "$summary" ]; then
            failed=$((failed + 1))
            continue
        fi
        passed=$((passed + $(echo "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')))
        failed=$((failed + $(echo "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')))
    done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
