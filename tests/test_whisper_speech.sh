#!/bin/sh
# Real speech through the real Whisper base model (models/whisper-base-f16.gemini, made by
# `make models`): its encoder output and logits against transformers on the same weights
# (tests/test_whisper_real.c), then the clips of tests/whisper/make_clips.sh (espeak-ng sentences at 8, 16,
# 22.05, 44.1 and 48 kHz, mono and stereo, 16/24-bit and float, a 48 s clip, one word,
# digital silence, quiet noise) transcribed by gemini-transcribe and compared with
#   - what espeak-ng said: the word error rate over all speech clips must be under 15%;
#   - the reference: openai/whisper's own transcribe() on the same clips with the same weights
#     (tests/whisper/expected_openai.txt, tools/make_whisper_openai_reference.py), decoded the
#     same way (greedy, no fallback, English; short clips without timestamps, the long one with
#     them and without conditioning on the previous window): our WER must be no worse than its.
#     transformers' generate() (tests/whisper/expected.txt) is shown too; its short-clip
#     framing (30 s of zero samples) differs from transcribe()'s (zeros in log-mel space).
#   - silence and noise: no text at all (default settings).
# WER: word-level edit distance after lowercasing, turning every character but letters, digits
# and apostrophes into a space and collapsing spaces; the reference's WER is computed here the
# same way. GEMINI_TEST_QUICK=1 (the sanitizer runs) transcribes four clips only.
# Skips (counted as one skipped check) without the model, espeak-ng or sox.
BUILD=${BUILD:-build}
model=${WHISPER_MODEL:-models/whisper-base-f16.gemini}
clips=tests/out/whisper-clips
out=tests/out/whisper-speech
expected=tests/whisper/expected_openai.txt

skip() {
    echo "SKIP whisper speech tests: $1"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
}
[ -f "$model" ] || skip "$model is missing (run 'make models')"
command -v espeak-ng >/dev/null 2>&1 || skip "espeak-ng is not installed"
command -v sox >/dev/null 2>&1 || skip "sox is not installed"

passed=0
failed=0
check() { # OK NAME...
    ok=$1
    shift
    if [ "$ok" -eq 1 ]; then
        echo "ok   $*"
        passed=$((passed + 1))
    else
        echo "FAIL $*"
        failed=$((failed + 1))
    fi
}

mkdir -p "$out"
if sh tests/whisper/make_clips.sh --check "$clips" >"$out/clips.log" 2>&1; then
    check 1 "the clips are those the reference transcribed (tests/whisper/clips.sha256)"
else
    # Another espeak-ng or sox speaks or converts differently: still a fair test of WER, but
    # the reference transcripts are of other bytes.
    cat "$out/clips.log"
    check 0 "the clips are those the reference transcribed (tests/whisper/clips.sha256)"
fi

# The numbers first: encoder output and logits against transformers on the same weights
# (tests/fixtures/whisper-base/reference.txt; tests/test_whisper_real.c).
numbers=$("$BUILD/test_whisper_real" "$model" "$clips/s1_16k_mono_s16.wav" \
          tests/fixtures/whisper-base/reference.txt)
printf '%s\n' "$numbers" | grep -v ' passed, '
summary=$(printf '%s\n' "$numbers" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
if [ -n "$summary" ]; then
    passed=$((passed + $(echo "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')))
else
    check 0 "test_whisper_real printed its summary"
fi

# Word errors and reference length: "errors words" for two texts (hypothesis, truth).
wer_counts() {
    printf '%s\n%s\n' "$1" "$2" | awk '
        function normalise(s) {
            s = tolower(s)
            gsub(/[^a-z0-9'"'"']+/, " ", s)
            return s
        }
        NR == 1 { nh = split(normalise($0), h, " ") }
        NR == 2 { nr = split(normalise($0), r, " ") }
        END {
            for (j = 0; j <= nh; j++) d[0, j] = j
            for (i = 1; i <= nr; i++) {
                d[i, 0] = i
                for (j = 1; j <= nh; j++) {
                    best = d[i - 1, j - 1] + (r[i] != h[j])
                    if (d[i - 1, j] + 1 < best) best = d[i - 1, j] + 1
                    if (d[i, j - 1] + 1 < best) best = d[i, j - 1] + 1
                    d[i, j] = best
                }
            }
            print d[nr, nh], nr
        }'
}

ours_errors=0
ref_errors=0
hf_errors=0
words=0
same=0
n_speech=0
# One line per clip: file|openai's transcript|transformers' transcript|the true text ('|' as
# the separator: read would merge empty tab-separated fields).
awk -F'\t' '
    FNR == 1 { file++ }
    /^#/ || $1 == "segment" { next }
    file == 1 { hf[$1] = $2; next }
    { print $1 "|" $2 "|" hf[$1] "|" $3 }' tests/whisper/expected.txt "$expected" \
    >"$out/clips.txt"

if [ "${GEMINI_TEST_QUICK:-0}" = 1 ]; then
    grep -E '^(s1_48k_stereo_s24|s2_22k_mono_f32|word_16k_mono_s16|silence_16k_mono_s16)' \
        "$out/clips.txt" >"$out/clips.quick" && mv "$out/clips.quick" "$out/clips.txt"
fi

while IFS='|' read -r file reference hf_reference truth; do
    name=${file%.wav}
    case $name in
        silence_*|noise_*) options="-l en" ;;
        long_*) options="--beam 1 --no-fallback -l en --no-prev" ;;
        *) options="--beam 1 --no-fallback -l en --no-timestamps" ;;
    esac
    rm -f "$out/$name.txt"
    # shellcheck disable=SC2086
    if ! "$BUILD/gemini-transcribe" -m "$model" -f "$clips/$file" $options -q -otxt \
            -of "$out/$name" 2>"$out/$name.log"; then
        cat "$out/$name.log"
        check 0 "$file: gemini-transcribe ran"
        continue
    fi
    ours=$(tr '\n' ' ' <"$out/$name.txt" | sed 's/^ *//; s/ *$//')
    case $name in
        silence_*|noise_*)
            # openai's rules keep " You" for digital silence; our silence gate drops it
            check "$([ -z "$ours" ] && echo 1 || echo 0)" \
                "$file: no text (got \"$ours\"; openai's transcribe(): \"$reference\")"
            continue ;;
    esac
    set -- $(wer_counts "$ours" "$truth")
    e_ours=$1
    n_words=$2
    set -- $(wer_counts "$reference" "$truth")
    e_ref=$1
    set -- $(wer_counts "$hf_reference" "$truth")
    e_hf=$1
    [ "$ours" = "$reference" ] && same=$((same + 1))
    n_speech=$((n_speech + 1))
    ours_errors=$((ours_errors + e_ours))
    ref_errors=$((ref_errors + e_ref))
    hf_errors=$((hf_errors + e_hf))
    words=$((words + n_words))
    echo "     $file: $e_ours word errors (openai $e_ref, transformers $e_hf) of $n_words:" \
        "\"$ours\""
    printf '%s %s %s %s %s %s\n' "$ours_errors" "$ref_errors" "$hf_errors" "$words" "$same" \
        "$n_speech" >"$out/totals"
done <"$out/clips.txt"

if [ -f "$out/totals" ]; then
    read -r ours_errors ref_errors hf_errors words same n_speech <"$out/totals"
    rm -f "$out/totals"
fi
if [ "$words" -gt 0 ]; then
    ours_wer=$(awk -v e="$ours_errors" -v n="$words" 'BEGIN { printf "%.1f", 100 * e / n }')
    ref_wer=$(awk -v e="$ref_errors" -v n="$words" 'BEGIN { printf "%.1f", 100 * e / n }')
    hf_wer=$(awk -v e="$hf_errors" -v n="$words" 'BEGIN { printf "%.1f", 100 * e / n }')
    check "$([ $((ours_errors * 100)) -lt $((words * 15)) ] && echo 1 || echo 0)" \
        "word error rate over $n_speech speech clips: $ours_wer% ($ours_errors of $words" \
        "words; limit 15%)"
    check "$([ "$ours_errors" -le "$ref_errors" ] && echo 1 || echo 0)" \
        "no worse than openai's greedy transcribe(): $ours_wer% vs $ref_wer%" \
        "(transformers' generate: $hf_wer%)"
    echo "     $same of $n_speech transcripts identical to openai's, character for character"
else
    check 0 "some speech clip was transcribed"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
