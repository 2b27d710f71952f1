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
# examples/gemini-caption runs on the tiny model (two images) with a tiny tokenizer, builds
# the exact interleaved prompt of a video's frames (--video: a Y4M clip, a directory) and
# refuses what it cannot do; on the tiny PaliGemma a "detect" answer is parsed for boxes.
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

# gemini-caption --video on the tiny Gemma 3 model: the prompt's token ids (--print-prompt) are
# exactly BOS, then per sampled frame its label "Frame T:" and the image block, then the
# prompt, in the chat turn; the frames are the evenly sampled ones (a Y4M clip, a directory in
# name order) and the run completes. The tokenizer is the tiny one plus the characters of the
# labels (0 7 8 9 . : F), so that each label's tokens are its own.
video_model=$out/gemma3-vision-video.gemini
video_dir=$out/gemma3-vision-video
rm -rf "$video_dir" && mkdir -p "$video_dir"
cp tests/fixtures/gemma3-vision/hf/config.json tests/fixtures/gemma3-vision/hf/model.safetensors \
    "$video_dir/"
sed 's/"ï": 63$/"ï": 63, "0": 64, "7": 65, "8": 66, "9": 67, ".": 68, ":": 69, "F": 70/' \
    tests/fixtures/convert/tokenizer.json >"$video_dir/tokenizer.json"
config=tests/fixtures/gemma3-vision/hf/config.json
boi=$(sed -n 's/.*"boi_token_index": *\([0-9]*\).*/\1/p' "$config")
eoi=$(sed -n 's/.*"eoi_token_index": *\([0-9]*\).*/\1/p' "$config")
soft=$(sed -n 's/.*"image_token_index": *\([0-9]*\).*/\1/p' "$config")
n_soft=$(sed -n 's/.*"mm_tokens_per_image": *\([0-9]*\).*/\1/p' "$config")
bos=$(sed -n 's/.*"<bos>": *\([0-9]*\).*/\1/p' "$video_dir/tokenizer.json" | head -n 1)
nl=$(sed -n 's/.*"\\n": *\([0-9]*\).*/\1/p' "$video_dir/tokenizer.json" | head -n 1)

# piece_ids TEXT: TEXT's ids, tokenized a line at a time by gemini-tokenize with the newline's
# id between lines. Exact for this tokenizer only: none of its merges involves "\n", so a
# newline is always a token of its own and never joins its neighbours.
piece_ids() {
    printf '%s\n' "$1" | "$BUILD/gemini-tokenize" -m "$video_model" --parse-special |
        while IFS= read -r line; do printf '%s %s ' "$line" "$nl"; done |
        sed 's/ *[0-9][0-9]* *$//'
}

# video_ids CHAT PROMPT LABEL...: the ids gemini-caption must build (CHAT 1: in a user turn).
video_ids() {
    chat=$1
    prompt=$2
    shift 2
    ids=$bos
    piece=""
    [ "$chat" = 1 ] && piece="<start_of_turn>user
"
    block="$boi"
    k=0
    while [ "$k" -lt "$n_soft" ]; do block="$block $soft"; k=$((k + 1)); done
    block="$block $eoi"
    for label in "$@"; do
        ids="$ids $(piece_ids "$piece$label

") $block"
        piece="

"
    done
    if [ "$chat" = 1 ]; then
        ids="$ids $(piece_ids "$piece$prompt<end_of_turn>
<start_of_turn>model
")"
    else
        ids="$ids $(piece_ids "$piece$prompt")"
    fi
    echo $ids
}

# check_video NAME EXPECTED_IDS ARGS...: gemini-caption ARGS --print-prompt succeeds and prints
# exactly EXPECTED_IDS.
check_video() {
    name=$1
    expected=$2
    shift 2
    if caption -m "$video_model" --print-prompt "$@"; then
        actual=$(sed -n 's/^prompt ids: //p' "$out/caption.err")
        if [ -n "$actual" ] && [ "$actual" = "$expected" ] &&
            grep -q "frame(s) encoded" "$out/caption.err"; then
            echo "ok   gemini-caption --video: $name ($(echo $actual | wc -w) prompt ids)"
            passed=$((passed + 1))
            return 0
        fi
        echo "  want: $expected"
        echo "  got:  $actual"
    fi
    cat "$out/caption.err"
    echo "FAIL gemini-caption --video: $name"
    failed=$((failed + 1))
    return 1
}

# refused NAME STATUS TEXT ARGS...: gemini-caption ARGS exits with STATUS saying TEXT.
refused() {
    name=$1
    want_status=$2
    text=$3
    shift 3
    caption "$@"
    got_status=$?
    if [ "$got_status" -eq "$want_status" ] && grep -q -- "$text" "$out/caption.err"; then
        echo "ok   gemini-caption refuses $name"
        passed=$((passed + 1))
    else
        cat "$out/caption.err"
        echo "FAIL gemini-caption: $name (status $got_status, want $want_status and \"$text\")"
        failed=$((failed + 1))
    fi
}

if [ -x "$BUILD/gemini-caption" ] && [ -x "$BUILD/gemini-tokenize" ] &&
    convert "$video_dir" f32 "$video_model"; then
    clip=tests/vision/y4m/c420jpeg.y4m   # 3 frames at 25 fps
    # the default 8 frames from a 3-frame clip: all three, at 0, 0.04 and 0.08 s
    check_video "Y4M, all 3 frames" \
        "$(video_ids 1 "What happens?" "Frame 0.0:" "Frame 0.04:" "Frame 0.08:")" \
        --video "$clip" -p "  What happens? " &&
        if grep -q "has 3 frame(s); using all of them" "$out/caption.err" &&
            grep -q "^frame 2: $clip frame 2, Frame 0.08: (32x24)" "$out/caption.err"; then
            echo "ok   gemini-caption --video: a short clip gives all its frames, named"
            passed=$((passed + 1))
        else
            echo "FAIL gemini-caption --video: the frames used are not named as expected"
            failed=$((failed + 1))
        fi
    # two of three frames: floor(i * 3 / 2) = 0, 1
    check_video "Y4M, --frames 2" \
        "$(video_ids 1 "Describe this video." "Frame 0.0:" "Frame 0.04:")" \
        --video "$clip" --frames 2
    # a directory: image files only, in byte order of their names; two of four files,
    # floor(i * 4 / 2) = 0, 2, at --fps 4: 0 and 0.5 s; --no-chat
    frames=$out/frames
    rm -rf "$frames" && mkdir -p "$frames"
    cp tests/vision/pre_src300.png "$frames/d.png"
    cp tests/vision/pre_src96.png "$frames/c.png"
    cp tests/vision/base420.jpg "$frames/b.JPG"
    cp tests/vision/rgb8.png "$frames/a.png"
    cp tests/vision/rgb8.png "$frames/.hidden.png"
    echo "not a frame" >"$frames/notes.txt"
    check_video "a directory at --fps 4, --no-chat" \
        "$(video_ids 0 "Describe this video." "Frame 0.0:" "Frame 0.5:")" \
        --video "$frames" --fps 4 --frames 2 --no-chat &&
        if grep -q "^frame 0: $frames/a.png, Frame 0.0: (45x33)" "$out/caption.err" &&
            grep -q "^frame 1: $frames/c.png, Frame 0.5: (96x80)" "$out/caption.err"; then
            echo "ok   gemini-caption --video: a directory's image files, sampled in name order"
            passed=$((passed + 1))
        else
            cat "$out/caption.err"
            echo "FAIL gemini-caption --video: a directory's frames are not a.png and c.png"
            failed=$((failed + 1))
        fi
    refused "65 frames" 2 "give 1 to 64 frames" --video "$clip" --frames 65 -m "$video_model"
    refused "images and a video together" 2 "not both" -m "$video_model" --video "$clip" \
        -i tests/vision/rgb8.png
    refused "a PNG as --video" 1 "rgb8.png" -m "$video_model" --video tests/vision/rgb8.png
    refused "--video for PaliGemma" 1 "PaliGemma reads one image per prompt" \
        -m "$out/paligemma-f32.gemini" --video "$clip"
else
    echo "FAIL gemini-caption --video: gemini-caption, gemini-tokenize or the model is missing"
    failed=$((failed + 1))
fi

# gemini-caption on the tiny PaliGemma with "detect ...": the answer is parsed for boxes in the
# original image's pixels. The tiny tokenizer has no <loc> tokens, so the random answer holds
# no box; the parsing itself is tested on made-up answers in test_vision.
detect_dir=$out/paligemma-tok
rm -rf "$detect_dir" && mkdir -p "$detect_dir"
cp tests/fixtures/paligemma/paligemma/hf/config.json \
    tests/fixtures/paligemma/paligemma/hf/model.safetensors \
    tests/fixtures/convert/tokenizer.json "$detect_dir/"
if convert "$detect_dir" f32 "$detect_dir.gemini"; then
    if caption -m "$detect_dir.gemini" -i tests/vision/pre_src300.png -p "detect cat ; dog" &&
        grep -q "^0 box(es) in the answer, in pixels of the 300x260 image" "$out/caption.err"
    then
        echo "ok   gemini-caption: PaliGemma \"detect\" answers are parsed for boxes"
        passed=$((passed + 1))
    else
        cat "$out/caption.err"
        echo "FAIL gemini-caption: PaliGemma \"detect\" run"
        failed=$((failed + 1))
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
