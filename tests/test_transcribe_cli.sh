#!/bin/sh
# Command-line checks of gemini-transcribe: help, usage errors, unreadable audio, a file that
# is not a model, a model that is not Whisper (when the parity suite left one), and a full run
# with every output format on the tiny random-weight Whisper of test_whisper_model (garbage
# text, real file formats). With MODELS/whisper-base-f16.gemini (make models), also a real
# transcription of the espeak-ng fixture. Prints "N passed, M failed". Run from the repository
# root.
BUILD=${BUILD:-build}
OUT=tests/out/transcribe
BIN=$BUILD/gemini-transcribe
AUDIO=tests/audio/speech_16k_mono_s16.wav
MODEL=$OUT/tiny-whisper.gemini
mkdir -p "$OUT"
passed=0
failed=0

check() {
    name=$1
    shift
    if "$@" >/dev/null 2>&1; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}

# run WANT_STATUS ARGS...: gemini-transcribe with stdout and stderr in $OUT/out and $OUT/err
run() {
    want=$1
    shift
    "$BIN" "$@" >"$OUT/out" 2>"$OUT/err"
    [ "$?" -eq "$want" ]
}

# fails WORD ARGS...: exit status 1 and WORD in the message
fails() {
    word=$1
    shift
    run 1 "$@" && grep -q -- "$word" "$OUT/err"
}

help_is_complete() {
    run 0 --help && for option in -m -f -l -t --kv-type --beam --best-of --translate --timestamps \
        --no-timestamps --prompt -otxt -osrt -ovtt -otsv -ojson -of; do
        grep -q -- "$option" "$OUT/out" || return 1
    done
}

check "--help exits 0 and lists every option" help_is_complete
check "no arguments: usage, exit 2" run 2
check "an unknown option: exit 2" run 2 -m x -f y --bogus
check "--beam out of range: exit 2" run 2 -m x -f y --beam 99
check "-t that is not a number: exit 2" run 2 -m x -f y -t 3x
check "-t -1: exit 2" run 2 -m x -f y -t -1
check "--kv-type that is not f32, f16 or bf16: exit 2" run 2 -m x -f y --kv-type q8_0

"$BUILD/test_whisper_model" --write "$MODEL"
echo "not a model" >"$OUT/bad.gemini"
check "a missing audio file: exit 1, named" fails missing.wav -m "$MODEL" -f "$OUT/missing.wav"
check "a file that is not a model: exit 1 with the library's message" \
    fails "cannot load $OUT/bad.gemini: " -m "$OUT/bad.gemini" -f "$AUDIO"
check "a WAV file that is not audio: exit 1" fails "cannot read" -m "$MODEL" -f "$OUT/bad.gemini"
check "-t 0: the default thread count" run 0 -m "$MODEL" -f "$AUDIO" --beam 1 -t 0
if [ -f tests/out/parity/gemma3-q8_0.gemini ]; then
    check "a Gemma model: refused as not Whisper" \
        fails "not a Whisper model" -m tests/out/parity/gemma3-q8_0.gemini -f "$AUDIO"
fi

full_run() {
    rm -f "$OUT"/speech.*
    run 0 -m "$MODEL" -f "$AUDIO" --beam 2 --best-of 2 -t 2 --timestamps \
        -otxt -osrt -ovtt -otsv -ojson -of "$OUT/speech" &&
        grep -q 'real-time factor' "$OUT/err" &&
        for ext in txt srt vtt tsv json; do test -s "$OUT/speech.$ext" || return 1; done
}
srt_cue() {
    head -n 2 "$OUT/speech.srt" | tr '\n' ' ' |
        grep -Eq '^1 [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3} --> [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3} $'
}
vtt_cue() {
    head -n 3 "$OUT/speech.vtt" | tr '\n' ' ' |
        grep -Eq '^WEBVTT  [0-9]{2}:[0-9]{2}\.[0-9]{3} --> [0-9]{2}:[0-9]{2}\.[0-9]{3} $'
}
json_keys() {
    grep -q '^{"text": ' "$OUT/speech.json" &&
        grep -q '"segments": \[{"id": 0, "seek": 0, ' "$OUT/speech.json" &&
        grep -q '"language": "en"}$' "$OUT/speech.json"
}
stdout_lines() {
    lines=$(grep -Ec '^\[[0-9]{2}:[0-9]{2}\.[0-9]{3} --> [0-9]{2}:[0-9]{2}\.[0-9]{3}\]' "$OUT/out")
    [ "$lines" -gt 0 ] && [ "$lines" -eq "$(grep -c '' "$OUT/speech.txt")" ]
}
default_base() {
    cp "$AUDIO" "$OUT/clip.wav" && rm -f "$OUT/clip.txt" &&
        run 0 -m "$MODEL" -f "$OUT/clip.wav" --beam 1 -q -otxt && test -f "$OUT/clip.txt"
}

check "a full run writes txt, srt, vtt, tsv and json and reports the real-time factor" full_run
check "srt: numbered cues with HH:MM:SS,mmm" srt_cue
check "vtt: WEBVTT header, MM:SS.mmm cues" vtt_cue
check "json: text, segments and language keys" json_keys
check "stdout: one [start --> end] line per segment" stdout_lines
check "-of defaults to the audio name without its extension" default_base

# The real model on tests/audio/speech_16k_mono_s16.wav: espeak-ng saying "The quick brown fox
# jumps over the lazy dog.", cut at 2 s (greedy gives "Quick brown fox jump over the lake.").
REAL=${MODELS:-models}/whisper-base-f16.gemini
real_speech() {
    run 0 -m "$REAL" -f "$AUDIO" -l en --beam 1 -t 2 && grep -qi 'brown fox' "$OUT/out"
}
# The same with 16-bit KV caches (self- and cross-attention): the same words here.
real_speech_16() {
    run 0 -m "$REAL" -f "$AUDIO" -l en --beam 1 -t 2 --kv-type "$1" &&
        grep -qi 'brown fox' "$OUT/out"
}
if [ -f "$REAL" ]; then
    check "whisper-base on espeak-ng speech: \"... brown fox ...\"" real_speech
    check "the same with an f16 KV cache" real_speech_16 f16
    check "the same with a bf16 KV cache" real_speech_16 bf16
else
    echo "note: no $REAL (make models); the real-speech check is skipped"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
