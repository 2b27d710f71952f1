#!/bin/sh
# Converts every vision fixture with gemini-convert and runs test_vision_model on its prompts:
# tests/fixtures/paligemma/*/hf (tools/make_paligemma_fixtures.py; one prompt beside hf/) and
# tests/fixtures/gemma3-vision/hf (tools/make_gemma3_vision_fixtures.py; prompts one/ and two/,
# with one and two images).
#   f32   pixels to 1/255; SigLIP output, image rows and every logit within 1e-4 of the largest
#         reference value; 16 greedy tokens identical
#   bf16  the same within 0.1 (the tiny fixtures are ill-conditioned on purpose: measured 0.056
#         for PaliGemma, 0.013 for Gemma 3)
#   q8_0  the vision tower and image rows only, within 0.03 (measured 0.0105 and 0.011); q8_0
#         rows need a multiple of 32 values, so this runs the quantised products on the tower's
#         32-wide matrices and the f16 fallback on the rest
# Gemma 3 also: the released layout (tests/fixtures/gemma3-vision/hf-released: Hub tensor names,
# bf16 matrices) converts to the same bf16 tensors as the transformers 5.25 layout; and
# examples/gemini-caption runs on the tiny model (two images) with a tiny tokenizer.
BUILD=${BUILD:-build}
out=tests/out/vision_model
mkdir -p "$out"

passed=0
failed=0
status=0

# add_summary RESULT: prints the result's lines and adds its closing "N passed, M failed".
add_summary() {
    printf '%s\n' "$1" | grep -v ' passed, '
    summary=$(printf '%s\n' "$1" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$summary" ]; then
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + $(echo "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')))
}

# convert DIR TYPE OUT: 0 on success; the converter's messages otherwise.
convert() {
    if ! "$BUILD/gemini-convert" -q --type "$2" -o "$3" "$1" >"$out/convert.log" 2>&1; then
        cat "$out/convert.log"
        echo "FAIL convert $1 to $2"
        failed=$((failed + 1))
        return 1
    fi
    passed=$((passed + 1))
}

for fixture in tests/fixtures/paligemma/paligemma tests/fixtures/paligemma/paligemma2 \
    tests/fixtures/gemma3-vision; do
    name=$(basename "$fixture")
    if [ -f "$fixture/reference.txt" ]; then
        prompts=$fixture
    else
        prompts="$fixture/one $fixture/two"
    fi
    for check in f32 bf16 q8_0; do
        case $check in
            f32)  options="--tol 1e-4 --greedy-exact" ;;
            bf16) options="--tol 0.1" ;;
            q8_0) options="--tol 0.03 --vision-only" ;;
        esac
        model="$out/$name-$check.gemini"
        convert "$fixture/hf" "$check" "$model" || continue
        for prompt in $prompts; do
            echo "-- $name $check $(basename "$prompt") ($options)"
            result=$("$BUILD/test_vision_model" $options "$prompt" "$model")
            [ $? -ne 0 ] && status=1
            add_summary "$result"
        done
    done
done

# The Hub's tensor names and bf16 weights give the same file as transformers 5.25's layout.
released="$out/gemma3-vision-released-bf16.gemini"
if convert tests/fixtures/gemma3-vision/hf-released bf16 "$released"; then
    "$BUILD/gemini-convert" --info "$out/gemma3-vision-bf16.gemini" |
        awk '/^tensors/ { t = 1; next } t && $1 != "name" { print $1, $2, $NF }' \
            >"$out/a.txt"
    "$BUILD/gemini-convert" --info "$released" |
        awk '/^tensors/ { t = 1; next } t && $1 != "name" { print $1, $2, $NF }' \
            >"$out/b.txt"
    if [ -s "$out/a.txt" ] && cmp -s "$out/a.txt" "$out/b.txt"; then
        echo "ok   gemma3 released layout (Hub names, bf16): the same" \
            "$(wc -l <"$out/a.txt") tensors"
        passed=$((passed + 1))
    else
        echo "FAIL gemma3 released layout converts to other tensors:"
        diff "$out/a.txt" "$out/b.txt" | head -10
        failed=$((failed + 1))
    fi
fi

# examples/gemini-caption runs on the tiny Gemma 3 model with a tiny tokenizer (the answer is
# noise; this checks the prompt is built and decoded for two images, and that PaliGemma refuses
# a second image).
caption() {
    "$BUILD/gemini-caption" -t 1 -n 4 "$@" >"$out/caption.out" 2>"$out/caption.err"
}
captioned=$out/gemma3-vision-tok
rm -rf "$captioned" && mkdir -p "$captioned"
cp tests/fixtures/gemma3-vision/hf/config.json tests/fixtures/gemma3-vision/hf/model.safetensors \
    tests/fixtures/convert/tokenizer.json "$captioned/"
if [ ! -x "$BUILD/gemini-caption" ]; then
    echo "FAIL $BUILD/gemini-caption is missing"
    failed=$((failed + 1))
elif convert "$captioned" f32 "$captioned.gemini"; then
    if caption -m "$captioned.gemini" -i tests/vision/pre_src300.png \
            -i tests/vision/pre_src96.png -p "What differs?" &&
        grep -q "^2 image(s) encoded" "$out/caption.err" &&
        caption -m "$captioned.gemini" -i tests/vision/pre_src96.png --no-chat; then
        echo "ok   gemini-caption: Gemma 3 with two images, and with --no-chat"
        passed=$((passed + 1))
    else
        cat "$out/caption.err"
        echo "FAIL gemini-caption on the tiny Gemma 3 model"
        failed=$((failed + 1))
    fi
    if ! caption -m "$out/paligemma-f32.gemini" -i tests/vision/pre_src300.png \
            -i tests/vision/pre_src96.png && grep -q "one image" "$out/caption.err"; then
        echo "ok   gemini-caption: PaliGemma refuses a second image"
        passed=$((passed + 1))
    else
        echo "FAIL gemini-caption: PaliGemma took two images"
        failed=$((failed + 1))
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
