#!/bin/sh
# Tokenizer tests: trains small SentencePiece models with spm_train, records what spm_encode
# and spm_decode make of the test inputs, then checks that gemini-tokenize (the CLI) and
# test_tokenizer (the C API) give exactly the same, line for line. test_tokenizer also checks
# Whisper's byte-level BPE against tests/tokenizer/whisper_expected_*.txt (made with the
# tokenizers and tiktoken packages by tools/whisper_tokenizer_fixtures.py) when
# models/whisper-base/tokenizer.json exists (sh tools/fetch_whisper_base.sh models), and prints
# its throughput (information only).
#
# Usage: tests/tokenizer/run.sh [--asan]     (from anywhere; needs spm_train, spm_encode,
#                                             spm_decode and python3)
# Output: one line per check, then "N passed, M failed". Exit status 1 on any failure.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$ROOT/tests/out/tok"
CC=${CC:-cc}
CFLAGS=${CFLAGS:--std=c99 -O2 -g -Wall -Wextra -pedantic}
if [ "${1:-}" = "--asan" ]; then
    CFLAGS="$CFLAGS -O1 -fno-omit-frame-pointer -fsanitize=address,undefined"
    CFLAGS="$CFLAGS -fno-sanitize-recover=undefined"
fi

for tool in spm_train spm_encode spm_decode python3; do
    command -v $tool >/dev/null 2>&1 || { echo "run.sh: $tool not found"; exit 1; }
done
mkdir -p "$OUT"

# Build the CLI and the test program.
$CC $CFLAGS -I"$ROOT" "$ROOT/examples/gemini-tokenize.c" -o "$OUT/gemini-tokenize" -lm -lpthread \
    || exit 1
$CC $CFLAGS -I"$ROOT" "$ROOT/tests/test_tokenizer.c" -o "$OUT/test_tokenizer" -lpthread || exit 1

# Inputs: the corpus, malformed UTF-8, and random bytes (no NUL, no newline).
cp "$HERE/corpus.txt" "$OUT/corpus.txt"
{
    printf 'bad \377 byte\n\303 truncated\n\342\202 short \360\237\230 end\n'
    printf '\355\240\200 surrogate\n\300\257 overlong\n\364\220\200\200 too big\n'
    printf '\200\200\200 continuations\n\357\277\275 literal\n'
} > "$OUT/bad.txt"
python3 - "$OUT/random.txt" <<'EOF'
import random, sys
rng = random.Random(7)
pool = [bytes([b]) for b in range(1, 256) if b != 10] + ["é ".encode(), "中".encode(),
        "😀".encode(), b"  ", b"\t", "\u3000".encode(), "ﬁ".encode(), b"<s>", b"</s>"]
with open(sys.argv[1], "wb") as f:
    for _ in range(300):
        f.write(b"".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) + b"\n")
EOF
python3 "$HERE/gen_train.py" "$HERE/corpus.txt" "$OUT/train.txt" || exit 1

# Models: BPE and unigram, with and without byte fallback, all with the default nmt_nfkc
# normaliser (so the charsmap is used), plus raw whitespace (with and without the dummy
# prefix), user-defined and control symbols with split_digits, and whitespace as suffix.
COMMON="--input=$OUT/train.txt --vocab_size=1000 --input_sentence_size=20000 --minloglevel=2"
USER="--user_defined_symbols=<start_of_turn>,<end_of_turn>,foo,== --control_symbols=<ctl>"
train() {
    name=$1; shift
    spm_train $COMMON --model_prefix="$OUT/$name" "$@" > "$OUT/$name.log" 2>&1 ||
        { echo "run.sh: spm_train failed for $name (see $OUT/$name.log)"; exit 1; }
}
train bpe --model_type=bpe
train bpe_bf --model_type=bpe --byte_fallback=true
train uni --model_type=unigram
train uni_bf --model_type=unigram --byte_fallback=true
train bpe_raw --model_type=bpe --byte_fallback=true --add_dummy_prefix=false \
    --remove_extra_whitespaces=false
train uni_raw --model_type=unigram --add_dummy_prefix=false --remove_extra_whitespaces=false
train bpe_dp --model_type=bpe --remove_extra_whitespaces=false
train bpe_user --model_type=bpe --byte_fallback=true --split_digits=true $USER
train uni_user --model_type=unigram --split_digits=true $USER
train uni_suffix --model_type=unigram --treat_whitespace_as_suffix=true
# UNUSED pieces: copies of two models with every fifth multi-character piece marked UNUSED.
"$OUT/test_tokenizer" --mark-unused "$OUT/bpe_bf.model" "$OUT/bpe_unused.model" || exit 1
"$OUT/test_tokenizer" --mark-unused "$OUT/uni.model" "$OUT/uni_unused.model" || exit 1
MODELS="bpe bpe_bf uni uni_bf bpe_raw uni_raw bpe_dp bpe_user uni_user uni_suffix"
MODELS="$MODELS bpe_unused uni_unused"
INPUTS="corpus bad random"

# What the reference makes of every input.
for m in $MODELS; do
    for i in $INPUTS; do
        spm_encode --model="$OUT/$m.model" --output_format=id < "$OUT/$i.txt" > "$OUT/$m.$i.id"
        spm_encode --model="$OUT/$m.model" --output_format=piece < "$OUT/$i.txt" \
            > "$OUT/$m.$i.piece"
        spm_decode --model="$OUT/$m.model" --input_format=id < "$OUT/$m.$i.id" \
            > "$OUT/$m.$i.dec"
    done
done

# The CLI, line for line.
passed=0
failed=0
check() { # NAME EXPECTED GOT: GOT must equal EXPECTED and the CLI must have exited cleanly
    if [ "$cli_status" -eq 0 ] && [ ! -s "$OUT/cli.err" ] && cmp -s "$2" "$3"; then
        echo "ok   $1"
        passed=$((passed + 1))
    else
        echo "FAIL $1 (status $cli_status; diff $2 $3; $OUT/cli.err)"
        failed=$((failed + 1))
    fi
}
cli() { # INPUT OUTPUT ARGS...: runs gemini-tokenize, keeps its status and error output
    input=$1
    output=$2
    shift 2
    "$OUT/gemini-tokenize" "$@" < "$input" > "$output" 2> "$OUT/cli.err"
    cli_status=$?
}
for m in $MODELS; do
    for i in $INPUTS; do
        cli "$OUT/$i.txt" "$OUT/$m.$i.got.id" -m "$OUT/$m.model" --ids
        check "cli $m $i ids = spm_encode" "$OUT/$m.$i.id" "$OUT/$m.$i.got.id"
        cli "$OUT/$i.txt" "$OUT/$m.$i.got.piece" -m "$OUT/$m.model" --pieces
        check "cli $m $i pieces = spm_encode" "$OUT/$m.$i.piece" "$OUT/$m.$i.got.piece"
        cli "$OUT/$m.$i.id" "$OUT/$m.$i.got.dec" -m "$OUT/$m.model" --decode
        check "cli $m $i decode = spm_decode" "$OUT/$m.$i.dec" "$OUT/$m.$i.got.dec"
    done
done
set -- $MODELS
printf 'abc\n' > "$OUT/not_ids.txt"
cli "$OUT/not_ids.txt" "$OUT/not_ids.got" -m "$OUT/$1.model" --decode
if [ "$cli_status" -eq 1 ] && [ "$(cat "$OUT/cli.err")" = 'gemini-tokenize: not an id: "abc"' ]
then
    echo "ok   cli --decode of a line that is not ids: status 1, one line saying so"
    passed=$((passed + 1))
else
    echo "FAIL cli --decode of a line that is not ids (status $cli_status; $OUT/cli.err)"
    failed=$((failed + 1))
fi

# The API (it prints its own lines and a summary, which is folded into ours).
"$OUT/test_tokenizer" "$OUT" "$ROOT" $MODELS > "$OUT/api.log" 2>&1
status=$?
grep -v '^[0-9]* passed, [0-9]* failed$' "$OUT/api.log"
summary=$(tail -n 1 "$OUT/api.log")
api_passed=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
api_failed=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
if [ -z "$api_passed" ]; then
    echo "FAIL test_tokenizer ended abnormally (status $status)"
    api_passed=0
    api_failed=1
fi
passed=$((passed + api_passed))
failed=$((failed + api_failed))

# The Unicode letter/number table in the header is generated from Python's unicodedata: check
# it is up to date when this Python has the Unicode version it was made with.
table_version=$(sed -n 's/^#define GEMINI__TOK_UNICODE_VERSION "\(.*\)"$/\1/p' \
    "$ROOT/gemini_tokenizer.h")
if [ "$(python3 -c 'import unicodedata; print(unicodedata.unidata_version)')" = \
     "$table_version" ]; then
    if python3 "$HERE/gen_unicode_classes.py" --check; then
        echo "ok   Unicode $table_version class table = gen_unicode_classes.py"
        passed=$((passed + 1))
    else
        echo "FAIL Unicode class table differs from gen_unicode_classes.py's"
        failed=$((failed + 1))
    fi
else
    echo "skip Unicode class table check: this Python's Unicode is not $table_version"
fi
if [ "${1:-}" != "--asan" ] && [ -f "$ROOT/models/whisper-base/tokenizer.json" ]; then
    "$OUT/test_tokenizer" --bench-whisper "$ROOT"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
