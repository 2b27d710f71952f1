#!/bin/sh
# Command-line checks of gemini-transcribe: help, usage errors, unreadable audio, a file that
# is not a model, a model that is not Whisper (when the parity suite left one), and a full run
# with every output format on the tiny random-weight Whisper of test_whisper_model (garbage
# text, real file formats). Prints "N passed, M failed". Run from the repository root.
BUILD=${BUILD:-build}
OUT=tests/out/transcribe
BIN=$BUILD/gemini-transcribe
mkdir -p "$OUT"
passed=0
failed=0

check() {
    name=$1
    shift
    if "$@"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}

# status WANT CMD...: runs CMD with stdout/stderr in $OUT/out and $OUT/err, compares status
status() {
    want=$1
    shift
    "$@" >"$OUT/out" 2>"$OUT/err"
    got=$?
    [ "$got" -eq "$want" ] || { echo "     exit $got, want $want"; sed 's/^/     /' "$OUT/err"; return 1; }
}

check "--help exits 0 and lists every option" \
    sh -c "$BIN --help >$OUT/help && grep -q -- '-ojson' $OUT/help && grep -q -- '--beam' $OUT/help && grep -q -- '--no-timestamps' $OUT/help"
check "no arguments: usage, exit 2" status 2 "$BIN"
check "an unknown option: exit 2" status 2 "$BIN" -m x -f y --bogus
check "--beam out of range: exit 2" status 2 "$BIN" -m x -f y --beam 99

"$BUILD/test_whisper_model" --write "$OUT/tiny-whisper.gemini"
MODEL=$OUT/tiny-whisper.gemini
AUDIO=tests/audio/speech_16k_mono_s16.wav

check "a missing audio file: exit 1, named" \
    sh -c "! $BIN -m $MODEL -f $OUT/missing.wav >/dev/null 2>$OUT/err && grep -q 'missing.wav' $OUT/err"
echo "not a model" >"$OUT/bad.gemini"
check "a file that is not a model: exit 1 with the library's message" \
    sh -c "! $BIN -m $OUT/bad.gemini -f $AUDIO >/dev/null 2>$OUT/err && grep -q 'cannot load' $OUT/err && cat $OUT/err | grep -q 'bad.gemini'"
check "a WAV file that is not audio: exit 1" \
    sh -c "! $BIN -m $MODEL -f $OUT/bad.gemini >/dev/null 2>$OUT/err && grep -q 'cannot read' $OUT/err"
if [ -f tests/out/parity/gemma3-q8_0.gemini ]; then
    check "a Gemma model: refused as not Whisper" \
        sh -c "! $BIN -m tests/out/parity/gemma3-q8_0.gemini -f $AUDIO >/dev/null 2>$OUT/err && grep -q 'not a Whisper model' $OUT/err"
fi

rm -f "$OUT"/speech.*
check "a full run writes txt, srt, vtt, tsv and json and reports the real-time factor" \
    sh -c "$BIN -m $MODEL -f $AUDIO --beam 2 --best-of 2 -t 2 --timestamps -otxt -osrt -ovtt -otsv -ojson -of $OUT/speech >$OUT/out 2>$OUT/err && grep -q 'real-time factor' $OUT/err && test -s $OUT/speech.txt && test -s $OUT/speech.json && test -s $OUT/speech.tsv"
check "srt: numbered cues with HH:MM:SS,mmm" \
    sh -c "head -n 2 $OUT/speech.srt | tr '\n' ' ' | grep -Eq '^1 [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3} --> [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3} $'"
check "vtt: WEBVTT header, MM:SS.mmm cues" \
    sh -c "head -n 3 $OUT/speech.vtt | tr '\n' ' ' | grep -Eq '^WEBVTT  [0-9]{2}:[0-9]{2}\.[0-9]{3} --> [0-9]{2}:[0-9]{2}\.[0-9]{3} $'"
check "json: text, segments and language keys" \
    sh -c "grep -q '^{\"text\": ' $OUT/speech.json && grep -q '\"segments\": \[{\"id\": 0, \"seek\": 0, ' $OUT/speech.json && grep -q '\"language\": \"en\"}$' $OUT/speech.json"
check "stdout: one [start --> end] line per segment" \
    sh -c "test \$(grep -Ec '^\[[0-9]{2}:[0-9]{2}\.[0-9]{3} --> [0-9]{2}:[0-9]{2}\.[0-9]{3}\]' $OUT/out) -eq \$(grep -c '' $OUT/speech.txt)"
check "-of defaults to the audio name without its extension" \
    sh -c "cp $AUDIO $OUT/clip.wav && $BIN -m $MODEL -f $OUT/clip.wav --beam 1 -q -otxt 2>/dev/null && test -f $OUT/clip.txt"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
