#!/bin/sh
# Tests of gemini-convert: conversions checked bit for bit against independent oracles
# (gguf-py's dequantisers, NumPy over the HF fixtures, sentencepiece's own protobuf reader,
# NumPy and the tokenizers library over the tiny Whisper checkpoints; see
# tools/gguf_dequant_fixture.py, tools/convert_hf_fixture.py and
# tools/make_whisper_convert_fixtures.py), metadata values, tokenizers, and hostile inputs.
# Prints one line per check and ends with "N passed, M failed".
#
#   sh tests/test_convert.sh            (BUILD=build MODELS=models by default)
#
# The real-model checks run when $MODELS/src/gemma-3-270m-q4_k_m.gguf and
# $MODELS/whisper-base/model.bin exist.

BUILD=${BUILD:-build}
MODELS=${MODELS:-models}
CONVERT=$BUILD/gemini-convert
FX=tests/fixtures
OUT=${TMPDIR:-/tmp}/gemini-convert-test.$$
passed=0
failed=0

cd "$(dirname "$0")/.." || exit 1
mkdir -p "$OUT" || exit 1
trap 'rm -rf "$OUT"' EXIT

if [ ! -x "$CONVERT" ]; then
    mkdir -p "$BUILD"
    ${CC:-cc} -std=c99 -O2 -Wall -Wextra -pedantic -I. convert/gemini-convert.c -o "$CONVERT" \
        -lm -lpthread || exit 1
fi

ok() {
    passed=$((passed + 1))
    echo "ok   - $1"
}

bad() {
    failed=$((failed + 1))
    echo "FAIL - $1"
}

# check NAME COMMAND...: passes when the command succeeds.
check() {
    check_name=$1
    shift
    if "$@" >"$OUT/last.log" 2>&1; then
        ok "$check_name"
    else
        bad "$check_name"
        sed 's/^/       /' "$OUT/last.log" | head -20
    fi
}

# The "name crc" pairs of a .gemini file's tensor table, sorted.
tensor_crcs() {
    "$CONVERT" --info "$1" |
        awk '/^tensors/ { t = 1; next } t && $1 != "name" { print $1, $NF }' | sort
}

# Value column of one metadata key in --info output.
meta() {
    "$CONVERT" --info --full "$1" |
        awk -v k="$2" '$1 == k { $1 = ""; $2 = ""; sub(/^  */, ""); print }'
}

same_files() {
    cmp -s "$1" "$2" || { diff "$1" "$2" | head -10; return 1; }
}

meta_is() {
    got=$(meta "$1" "$2")
    [ "$got" = "$3" ] || { echo "$2: got '$got', expected '$3'"; return 1; }
}

# hostile NAME FILE-OR-DIR [ARGS]: must fail with status 1 and an error message, not crash.
hostile() {
    hostile_name=$1
    shift
    rm -f "$OUT/hostile.gemini"     # left by an earlier check that wrongly succeeded
    "$CONVERT" -q "$@" -o "$OUT/hostile.gemini" >"$OUT/last.log" 2>&1
    status=$?
    if [ $status -eq 1 ] && grep -q 'error:' "$OUT/last.log" && [ ! -e "$OUT/hostile.gemini" ] &&
        [ ! -e "$OUT/hostile.gemini.tmp" ]; then
        ok "hostile: $hostile_name ($(head -c 110 "$OUT/last.log" | tr '\n' ' '))"
    else
        bad "hostile: $hostile_name (status $status)"
        head -5 "$OUT/last.log" | sed 's/^/       /'
    fi
}

# patch FILE OFFSET HEXBYTES: overwrite bytes in place ("ffff" writes two 0xFF bytes).
patch() {
    bytes=""
    for h in $(echo "$3" | sed 's/../& /g'); do
        bytes="$bytes\\$(printf %o "0x$h")"
    done
    printf "$bytes" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# ---- Command line -------------------------------------------------------------------------

help_mentions_every_flag() {
    "$CONVERT" --help >"$OUT/help.txt" || return 1
    for flag in --type -o --output -q --quiet --info --full --verify --help --version \
        f32 f16 bf16 q8_0 q4_0; do
        grep -q -- "$flag" "$OUT/help.txt" || { echo "--help lacks $flag"; return 1; }
    done
}
check "--help exits 0 and names every flag and type" help_mentions_every_flag

bad_usage() {
    "$CONVERT" --type q5_k "$FX/gguf/tiny-gemma3.gguf" >/dev/null 2>&1
    [ $? -eq 2 ] || return 1
    "$CONVERT" --bogus >/dev/null 2>&1
    [ $? -eq 2 ] || return 1
    "$CONVERT" >/dev/null 2>&1
    [ $? -eq 2 ]
}
check "unknown --type, unknown flag, no input: exit status 2" bad_usage

# ---- GGUF: dequantisers against gguf-py, block copies ------------------------------------

TINY=$FX/gguf/tiny-gemma3.gguf

tiny_f32_matches_gguf_py() {
    "$CONVERT" -q --type f32 -o "$OUT/tiny-f32.gemini" "$TINY" || return 1
    awk '{ print $1, $3 }' "$FX/gguf/tiny-gemma3.expected" | sort >"$OUT/expected"
    tensor_crcs "$OUT/tiny-f32.gemini" >"$OUT/got"
    same_files "$OUT/expected" "$OUT/got"
}
check "GGUF F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K -> f32 = gguf-py bit for bit" \
    tiny_f32_matches_gguf_py

# copied_blocks TYPE GGUF-TYPE: every tensor of that GGUF type keeps its bytes (CRC).
copied_blocks() {
    "$CONVERT" -q --type "$1" -o "$OUT/tiny-$1.gemini" "$TINY" || return 1
    "$CONVERT" --verify "$OUT/tiny-$1.gemini" >/dev/null || return 1
    awk -v t="$2" '$2 == t { print $1, $4 }' "$FX/gguf/tiny-gemma3.expected" | sort >"$OUT/expected"
    tensor_crcs "$OUT/tiny-$1.gemini" | join - "$OUT/expected" >"$OUT/joined"
    [ -s "$OUT/joined" ] &&
        awk '$2 != $3 { print "changed:", $0; bad = 1 } END { exit bad }' "$OUT/joined"
}
check "--type q8_0 copies Q8_0 blocks unchanged" copied_blocks q8_0 Q8_0
check "--type q4_0 copies Q4_0 blocks unchanged" copied_blocks q4_0 Q4_0

tiny_default_types() {
    "$CONVERT" -q -o "$OUT/tiny-default.gemini" "$TINY" || return 1
    "$CONVERT" --verify "$OUT/tiny-default.gemini" >/dev/null || return 1
    "$CONVERT" --info "$OUT/tiny-default.gemini" >"$OUT/info" || return 1
    for pair in "blk.0.attn_v q8_0" "blk.0.ffn_down q4_0" "blk.1.attn_q f16" "blk.1.attn_k bf16" \
        "blk.0.attn_q q8_0" "token_embd q8_0" "output f16" "blk.0.attn_norm f32"; do
        set -- $pair
        awk -v n="$1" -v t="$2" '$1 == n && $2 == t { found = 1 } END { exit !found }' \
            "$OUT/info" || { echo "$1 is not $2"; return 1; }
    done
}
check "GGUF default: f32/f16/bf16/q8_0/q4_0 kept, K-quants and Q5/Q4_1 become q8_0" \
    tiny_default_types

tiny_metadata() {
    f=$OUT/tiny-f32.gemini
    meta_is "$f" general.architecture '"gemma3"' && meta_is "$f" model.tied_embeddings false &&
        meta_is "$f" model.query_scale 0.176776692 && meta_is "$f" model.embed_scale 16 &&
        meta_is "$f" model.rope_theta 1000000 && meta_is "$f" model.rope_theta_local 10000 &&
        meta_is "$f" model.layer_types 'u8[2] = 1 1' && meta_is "$f" tokenizer.eot_id 5 &&
        meta_is "$f" tokenizer.unk_id 3 && meta_is "$f" tokenizer.add_dummy_prefix false &&
        meta_is "$f" tokenizer.byte_fallback false && meta_is "$f" tokenizer.types \
        'u8[16] = 3 3 3 2 4 4 1 1 1 1 1 1 1 1 1 1'
}
check "GGUF metadata: untied head, 1/sqrt(key_length), sqrt(d), gemma3 defaults, tokenizer" \
    tiny_metadata

convert_and_verify() {
    "$CONVERT" -q --type "$1" -o "$OUT/tiny-$1.gemini" "$TINY" &&
        "$CONVERT" --verify "$OUT/tiny-$1.gemini"
}
for type in f16 bf16; do
    check "GGUF --type $type converts, verifies and loads" convert_and_verify $type
done

# ---- Hugging Face: name mapping and norm + 1 against NumPy; config reading ----------------

for model in gemma1 gemma2 gemma3 gemma3/rope_linear8; do
    name=$(echo $model | tr / _)
    hf_f32() {
        "$CONVERT" -q --type f32 -o "$OUT/$name.gemini" "$FX/$model/hf" 2>/dev/null || return 1
        "$CONVERT" --verify "$OUT/$name.gemini" >/dev/null || return 1
        awk -v m="$model" '$1 == m { print $2, $3 }' "$FX/convert/hf-f32.expected" |
            sort >"$OUT/expected"
        tensor_crcs "$OUT/$name.gemini" >"$OUT/got"
        same_files "$OUT/expected" "$OUT/got"
    }
    check "HF $model -> f32: names, shapes, 1 + w norms equal NumPy; verifies and loads" hf_f32
done

hf_metadata() {
    g1=$OUT/gemma1.gemini g2=$OUT/gemma2.gemini g3=$OUT/gemma3.gemini
    r8=$OUT/gemma3_rope_linear8.gemini
    meta_is "$g1" general.architecture '"gemma"' && meta_is "$g1" model.query_scale 0.25 &&
        meta_is "$g1" model.embed_scale 6.92820311 && meta_is "$g1" model.sliding_window 0 &&
        meta_is "$g1" model.layer_types 'u8[3] = 0 0 0' &&
        meta_is "$g1" model.sandwich_norms false &&
        meta_is "$g1" model.qk_norm false && meta_is "$g1" model.attn_softcap 0 &&
        meta_is "$g2" model.query_scale 0.204124153 && meta_is "$g2" model.attn_softcap 5 &&
        meta_is "$g2" model.final_softcap 3 && meta_is "$g2" model.layer_types 'u8[4] = 1 0 1 0' &&
        meta_is "$g2" model.sliding_window 8 && meta_is "$g2" model.rope_theta_local 10000 &&
        meta_is "$g3" model.layer_types 'u8[7] = 1 1 1 1 1 0 1' &&
        meta_is "$g3" model.qk_norm true &&
        meta_is "$g3" model.rope_theta 1000000 && meta_is "$g3" model.rope_scale 1 &&
        meta_is "$g3" model.embed_scale 5.65685415 && meta_is "$g3" model.final_softcap 0 &&
        meta_is "$r8" model.rope_scale 8 && meta_is "$r8" model.rope_theta_local 10000 &&
        meta_is "$g3" model.tied_embeddings true && meta_is "$g3" model.max_position 256
}
check "HF metadata of the four fixtures (scales, caps, windows, layer types, rope)" hf_metadata

hf_default_f16() {
    "$CONVERT" -q -o "$OUT/g3-f16.gemini" "$FX/gemma3/hf" 2>/dev/null || return 1
    "$CONVERT" --verify "$OUT/g3-f16.gemini" >/dev/null || return 1
    "$CONVERT" --info "$OUT/g3-f16.gemini" >"$OUT/info"
    grep -q '^  blk.0.ffn_up  *f16 ' "$OUT/info" &&
        grep -q '^  blk.0.attn_q_norm  *f32 ' "$OUT/info" &&
        grep -q '^  token_embd  *f16 ' "$OUT/info"
}
check "HF default type is f16 for matrices, f32 for norms" hf_default_f16

hf_quantised() {
    "$CONVERT" -q --type q4_0 -o "$OUT/g2-q4.gemini" "$FX/gemma2/hf" 2>/dev/null || return 1
    "$CONVERT" --verify "$OUT/g2-q4.gemini" >/dev/null || return 1
    "$CONVERT" --info "$OUT/g2-q4.gemini" | grep -q '^  blk.0.ffn_down  *q4_0 ' || return 1
    # gemma3's F = 48 is not a multiple of 32: ffn_down falls back to f16, with a warning.
    "$CONVERT" -q --type q8_0 -o "$OUT/g3-q8.gemini" "$FX/gemma3/hf" 2>"$OUT/err" || return 1
    grep -q 'blk.0.ffn_down: rows of 48 values are not a multiple' "$OUT/err" || return 1
    "$CONVERT" --verify "$OUT/g3-q8.gemini" >/dev/null || return 1
    "$CONVERT" --info "$OUT/g3-q8.gemini" >"$OUT/info"
    grep -q '^  blk.0.ffn_down  *f16 ' "$OUT/info" && grep -q '^  blk.0.ffn_up  *q8_0 ' "$OUT/info"
}
check "HF --type q4_0 / q8_0 quantise, verify and load; rows of 48 fall back to f16" hf_quantised

# The released Gemma 3 multimodal layout: outer gemma3 config with text_config, pre-v5 keys
# (rope_theta, rope_local_base_freq, rope_scaling, sliding_window_pattern, no layer_types),
# sharded through model.safetensors.index.json. It must equal the v5-spelled rope_linear8.
old_layout() {
    d=$OUT/old-layout
    mkdir -p "$d"
    cp "$FX/gemma3/rope_linear8/hf/model.safetensors" "$d/model-00001-of-00001.safetensors"
    cat >"$d/config.json" <<'EOF'
{"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
 "text_config": {"model_type": "gemma3_text", "hidden_size": 32, "intermediate_size": 48,
   "num_hidden_layers": 7, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16,
   "max_position_embeddings": 256, "query_pre_attn_scalar": 16, "rms_norm_eps": 1e-06,
   "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
   "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 8,
   "sliding_window_pattern": 6, "final_logit_softcapping": null,
   "attn_logit_softcapping": null, "vocab_size": 256}}
EOF
    names=$(head -c 200000 "$d/model-00001-of-00001.safetensors" | tr ',' '\n' |
        grep -a -o '"model\.[^"]*"' | sed 's/$/: "model-00001-of-00001.safetensors"/' |
        paste -sd, -)
    echo "{\"metadata\": {}, \"weight_map\": {$names}}" >"$d/model.safetensors.index.json"
    "$CONVERT" -q --type f32 -o "$OUT/old.gemini" "$d" 2>/dev/null || return 1
    tensor_crcs "$OUT/old.gemini" >"$OUT/a"
    tensor_crcs "$OUT/gemma3_rope_linear8.gemini" >"$OUT/b"
    same_files "$OUT/a" "$OUT/b" || return 1
    for key in model.rope_scale model.rope_theta model.rope_theta_local model.layer_types \
        model.sliding_window model.query_scale model.embed_scale; do
        [ "$(meta "$OUT/old.gemini" $key)" = "$(meta "$OUT/gemma3_rope_linear8.gemini" $key)" ] ||
            { echo "$key differs"; return 1; }
    done
}
check "HF gemma3+text_config, old config keys, sharded index: same file as the v5 layout" old_layout

# ---- Tokenizers ----------------------------------------------------------------------------

tok_dir() {
    mkdir -p "$OUT/$1"
    cp "$FX/gemma3/hf/config.json" "$FX/gemma3/hf/model.safetensors" "$OUT/$1/"
}

tokenizer_lines() {
    "$CONVERT" --info --full "$1" | grep '^  tokenizer\.'
}

spm_tokenizer() {
    tok_dir spm && cp "$FX/convert/tokenizer.model" "$OUT/spm/" || return 1
    "$CONVERT" -q -o "$OUT/spm.gemini" "$OUT/spm" || return 1
    tokenizer_lines "$OUT/spm.gemini" >"$OUT/got"
    same_files "$FX/convert/tokenizer.expected" "$OUT/got"
}
check "tokenizer.model: pieces, scores, types, ids, normaliser flags equal sentencepiece's proto" \
    spm_tokenizer

json_tokenizer() {
    tok_dir json && cp "$FX/convert/tokenizer.json" "$OUT/json/" || return 1
    "$CONVERT" -q -o "$OUT/json.gemini" "$OUT/json" || return 1
    tokenizer_lines "$OUT/json.gemini" | grep -v 'tokenizer\.scores' >"$OUT/got"
    grep -v 'tokenizer\.scores' "$FX/convert/tokenizer.expected" >"$OUT/expected"
    same_files "$OUT/expected" "$OUT/got"
}
check "tokenizer.json: same pieces, types, ids and flags as tokenizer.model" json_tokenizer

json_scores_monotone() {
    # Pieces created by merges get -rank: their order must match the SentencePiece scores.
    meta "$OUT/spm.gemini" tokenizer.scores | tr ' ' '\n' | tail -n +3 >"$OUT/spm_scores"
    meta "$OUT/json.gemini" tokenizer.scores | tr ' ' '\n' | tail -n +3 >"$OUT/json_scores"
    meta "$OUT/spm.gemini" tokenizer.types | tr ' ' '\n' | tail -n +3 >"$OUT/spm_types"
    paste -d' ' "$OUT/spm_scores" "$OUT/json_scores" "$OUT/spm_types" | awk '
        $3 == 1 && $2 != 0 { n++; s[n] = $1; j[n] = $2 }
        END {
            for (x = 1; x < n; x++)
                for (y = x + 1; y <= n; y++)
                    if (s[x] != s[y] && (s[x] > s[y]) != (j[x] > j[y])) {
                        print "order differs at", x, y
                        exit 1
                    }
            exit n < 10
        }'
}
check "tokenizer.json: synthesised -merge_rank scores keep SentencePiece's order" \
    json_scores_monotone

prefer_model() {
    tok_dir both || return 1
    cp "$FX/convert/tokenizer.model" "$FX/convert/tokenizer.json" "$OUT/both/" || return 1
    "$CONVERT" -q -o "$OUT/both.gemini" "$OUT/both" || return 1
    tokenizer_lines "$OUT/both.gemini" >"$OUT/got"
    same_files "$FX/convert/tokenizer.expected" "$OUT/got"
}
check "tokenizer.model is preferred when tokenizer.json is also present" prefer_model

no_tokenizer_warns() {
    "$CONVERT" -o "$OUT/none.gemini" "$FX/gemma1/hf" 2>"$OUT/err" >/dev/null || return 1
    grep -q 'warning: .*no tokenizer' "$OUT/err" &&
        [ -z "$(meta "$OUT/none.gemini" tokenizer.model)" ]
}
check "no tokenizer files: a warning and no tokenizer keys" no_tokenizer_warns

# ---- Hostile inputs --------------------------------------------------------------------------

hostile "missing input" "$OUT/does-not-exist.gguf"
: >"$OUT/empty.gguf"
hostile "empty file" "$OUT/empty.gguf"
size=$(wc -c <"$TINY")
for n in 3 23 100 2000 30000 $((size - 1)); do
    head -c $n "$TINY" >"$OUT/trunc.gguf"
    hostile "GGUF truncated to $n bytes" "$OUT/trunc.gguf"
done
cp "$TINY" "$OUT/magic.gguf" && patch "$OUT/magic.gguf" 0 58585858
hostile "GGUF bad magic" "$OUT/magic.gguf"
cp "$TINY" "$OUT/ver.gguf" && patch "$OUT/ver.gguf" 4 07000000
hostile "GGUF version 7" "$OUT/ver.gguf"
cp "$TINY" "$OUT/nt.gguf" && patch "$OUT/nt.gguf" 8 ffffffffffffff7f
hostile "GGUF tensor count 2^63" "$OUT/nt.gguf"
cp "$TINY" "$OUT/nkv.gguf" && patch "$OUT/nkv.gguf" 16 00000000ffffffff
hostile "GGUF key count 2^63" "$OUT/nkv.gguf"
cp "$TINY" "$OUT/klen.gguf" && patch "$OUT/klen.gguf" 24 ffffffffffffffff
hostile "GGUF key length 2^64-1" "$OUT/klen.gguf"
cp "$TINY" "$OUT/vtype.gguf" && patch "$OUT/vtype.gguf" 52 63000000
hostile "GGUF unknown value type" "$OUT/vtype.gguf"

ST=$FX/gemma3/hf/model.safetensors
mkdir -p "$OUT/st"
cp "$FX/gemma3/hf/config.json" "$OUT/st/"
cp "$ST" "$OUT/st/model.safetensors" && patch "$OUT/st/model.safetensors" 0 ffffffffffffff7f
hostile "safetensors header length 2^63" "$OUT/st"
cp "$ST" "$OUT/st/model.safetensors" && patch "$OUT/st/model.safetensors" 9 7b
hostile "safetensors broken JSON header" "$OUT/st"
head -c 100000 "$ST" >"$OUT/st/model.safetensors"
hostile "safetensors truncated (data beyond the end)" "$OUT/st"
head -c 5 "$ST" >"$OUT/st/model.safetensors"
hostile "safetensors of 5 bytes" "$OUT/st"
cp "$ST" "$OUT/st/model.safetensors"
echo '{"model_type": "gemma3_text", "hidden_size": 32,,}' >"$OUT/st/config.json"
hostile "config.json with a syntax error" "$OUT/st"
echo '{"model_type": "llama"}' >"$OUT/st/config.json"
hostile "config.json of an unsupported family" "$OUT/st"
echo '{"model_type": "gemma3_text", "num_hidden_layers": 99999999999}' >"$OUT/st/config.json"
hostile "config.json with an absurd layer count" "$OUT/st"
sed 's/"hidden_size": 32/"hidden_size": 64/' "$FX/gemma3/hf/config.json" >"$OUT/st/config.json"
hostile "config.json disagreeing with the tensor shapes" "$OUT/st"
cp "$FX/gemma3/hf/config.json" "$OUT/st/"
head -c 300 "$FX/convert/tokenizer.model" >"$OUT/st/tokenizer.model"
hostile "truncated tokenizer.model" "$OUT/st"
rm -f "$OUT/st/tokenizer.model"
echo '{"model": {"type": "BPE", "vocab": {"a": 4294967296}}}' >"$OUT/st/tokenizer.json"
hostile "tokenizer.json with a huge id" "$OUT/st"
rm -f "$OUT/st/tokenizer.json"

gemini_hostile() {
    f=$OUT/tiny-f32.gemini
    size=$(wc -c <"$f")
    head -c $((size - 1)) "$f" >"$OUT/cut.gemini"
    "$CONVERT" --info "$OUT/cut.gemini" >/dev/null 2>&1
    [ $? -eq 1 ] || { echo "--info on a truncated file"; return 1; }
    "$CONVERT" --verify "$OUT/cut.gemini" >/dev/null 2>&1
    [ $? -eq 1 ] || { echo "--verify on a truncated file"; return 1; }
    # A flipped data byte: --verify fails naming the tensor whose bytes hold it (found from the
    # intact file's data offset and tensor table: offset and size are the 3rd and 2nd last).
    pos=$((size - 100))
    want=$("$CONVERT" --info "$f" | awk -v p=$pos '
        /^data / { base = $NF } /^tensors/ { t = 1; next }
        t && $1 != "name" && p >= base + $(NF - 2) && p < base + $(NF - 2) + $(NF - 1) {
            print $1 }')
    [ -n "$want" ] || { echo "no tensor holds byte $pos"; return 1; }
    cp "$f" "$OUT/flip.gemini" && patch "$OUT/flip.gemini" $pos 5a
    "$CONVERT" --verify "$OUT/flip.gemini" >"$OUT/v.log" 2>&1
    [ $? -eq 1 ] && grep -q "error: .*tensor '$want': CRC-32 mismatch" "$OUT/v.log" ||
        { echo "flipped data byte (in $want)"; return 1; }
    # A flipped directory byte: gemini_model_load refuses the file, for --verify and --info.
    cp "$f" "$OUT/flip.gemini" && patch "$OUT/flip.gemini" 100 5a
    "$CONVERT" --verify "$OUT/flip.gemini" >"$OUT/v.log" 2>&1
    [ $? -eq 1 ] && grep -q 'error: .*directory CRC-32 mismatch' "$OUT/v.log" ||
        { echo "flipped dir byte"; return 1; }
    "$CONVERT" --info "$OUT/flip.gemini" >"$OUT/v.log" 2>&1
    [ $? -eq 1 ] && grep -q 'error: .*directory CRC-32 mismatch' "$OUT/v.log" ||
        { echo "--info on a flipped dir byte"; return 1; }
    cp "$f" "$OUT/flip.gemini" && patch "$OUT/flip.gemini" 32 ffffffffffffff7f
    "$CONVERT" --info "$OUT/flip.gemini" >/dev/null 2>&1
    [ $? -eq 1 ]
}
check "hostile .gemini: truncated, flipped data and directory bytes, huge dir_size" gemini_hostile

# ---- Whisper: Hugging Face and CTranslate2 against NumPy, and against each other --------------

# tools/make_whisper_convert_fixtures.py made both directories from the same float16 weights,
# and computed every tensor's CRC for --type f32 and q8_0 (whisper-tiny.expected) and the
# whisper.* / tokenizer.* lines of --info --full (whisper-tiny-meta.expected) with NumPy and
# the tokenizers library.
WH=$FX/convert/whisper-tiny-hf
WC=$FX/convert/whisper-tiny-ct2
WEXP=$FX/convert/whisper-tiny.expected

# The "name type crc" triples of a .gemini file's tensor table, sorted.
tensor_types_crcs() {
    "$CONVERT" --info "$1" 2>/dev/null |
        awk '/^tensors/ { t = 1; next } t && $1 != "name" { print $1, $2, $NF }' | sort
}

whisper_f32() {
    "$CONVERT" -q --type f32 -o "$OUT/wh-$1-f32.gemini" "$2" || return 1
    awk '$1 == "f32" { print $2, $3, $5 }' "$WEXP" | sort >"$OUT/expected"
    tensor_types_crcs "$OUT/wh-$1-f32.gemini" >"$OUT/got"
    same_files "$OUT/expected" "$OUT/got"
}
check "Whisper HF -> f32: 89 tensors, names, shapes, conv stems [d, in*3] equal NumPy" \
    whisper_f32 hf "$WH"
check "Whisper CTranslate2 -> f32: fused QKV / KV cut by rows, alias head: equal NumPy" \
    whisper_f32 ct2 "$WC"

whisper_q8() {
    "$CONVERT" -q --type q8_0 -o "$OUT/wh-$1-q8.gemini" "$2" || return 1
    awk '$1 == "q8_0" { print $2, $3, $5 }' "$WEXP" | sort >"$OUT/expected"
    tensor_types_crcs "$OUT/wh-$1-q8.gemini" >"$OUT/got"
    same_files "$OUT/expected" "$OUT/got"
}
check "Whisper HF -> q8_0: NumPy's blocks; conv stems f16; biases, norms, positions f32" \
    whisper_q8 hf "$WH"
check "Whisper CTranslate2 -> q8_0: the same tensors as from HF" whisper_q8 ct2 "$WC"

whisper_same_both_ways() {
    for type in f16 bf16 q4_0; do
        "$CONVERT" -q --type $type -o "$OUT/wh-hf-$type.gemini" "$WH" &&
            "$CONVERT" -q --type $type -o "$OUT/wh-ct2-$type.gemini" "$WC" || return 1
        tensor_types_crcs "$OUT/wh-hf-$type.gemini" >"$OUT/a"
        tensor_types_crcs "$OUT/wh-ct2-$type.gemini" >"$OUT/b"
        [ "$(wc -l <"$OUT/a")" -eq 89 ] && same_files "$OUT/a" "$OUT/b" ||
            { echo "--type $type differs"; return 1; }
    done
    grep -q '^enc.blk.1.ffn_down q4_0 ' "$OUT/a" && grep -q '^enc.conv2 f16 ' "$OUT/a" &&
        grep -q '^pos_embd f32 ' "$OUT/a" && grep -q '^blk.1.cross_v_b f32 ' "$OUT/a"
}
check "Whisper --type f16, bf16, q4_0: HF and CTranslate2 give identical files' tensors" \
    whisper_same_both_ways

whisper_default_f16() {
    "$CONVERT" -q -o "$OUT/wh-default.gemini" "$WC" || return 1
    tensor_types_crcs "$OUT/wh-default.gemini" >"$OUT/got"
    grep -q '^token_embd f16 ' "$OUT/got" && grep -q '^blk.0.attn_k f16 ' "$OUT/got" &&
        grep -q '^enc.blk.0.attn_norm f32 ' "$OUT/got" && grep -q '^enc.pos f32 ' "$OUT/got"
}
check "Whisper default type: f16 matrices, f32 vectors and position tables" whisper_default_f16

whisper_metadata() {
    for f in "$OUT/wh-hf-f32.gemini" "$OUT/wh-ct2-f32.gemini"; do
        "$CONVERT" --info --full "$f" 2>/dev/null | grep -aE '^  (whisper|tokenizer)\.' \
            >"$OUT/meta" || return 1
        same_files "$FX/convert/whisper-tiny-meta.expected" "$OUT/meta" || return 1
        meta_is "$f" general.architecture '"whisper"' && meta_is "$f" model.vocab_size 300 &&
            meta_is "$f" model.hidden_size 32 && meta_is "$f" model.intermediate_size 64 &&
            meta_is "$f" model.num_layers 2 && meta_is "$f" model.num_heads 4 &&
            meta_is "$f" model.num_kv_heads 4 && meta_is "$f" model.head_dim 8 &&
            meta_is "$f" model.max_position 24 && meta_is "$f" model.activation '"gelu"' &&
            meta_is "$f" model.layer_norm_eps 9.99999975e-06 &&
            meta_is "$f" model.tied_embeddings true || return 1
    done
    meta_is "$OUT/wh-hf-f32.gemini" general.source '"hf-safetensors"' &&
        meta_is "$OUT/wh-ct2-f32.gemini" general.source '"ctranslate2"'
}
check "Whisper metadata: sizes, suppress lists, alignment heads, special ids, languages, \
raw-byte pieces, merges" whisper_metadata

whisper_verify() {
    "$CONVERT" --verify "$OUT/wh-ct2-q8.gemini" >"$OUT/v.log" 2>&1 || return 1
    grep -q '89 tensor CRCs ok' "$OUT/v.log" || return 1
    # A flipped data byte is still caught when only the structure can be loaded.
    size=$(wc -c <"$OUT/wh-ct2-q8.gemini")
    cp "$OUT/wh-ct2-q8.gemini" "$OUT/flip.gemini" && patch "$OUT/flip.gemini" $((size - 7)) 5a
    "$CONVERT" --verify "$OUT/flip.gemini" >"$OUT/v.log" 2>&1
    [ $? -eq 1 ] && grep -q 'CRC-32 mismatch' "$OUT/v.log"
}
check "Whisper --verify: every CRC checked (structure-only while gemini.h lacks Whisper)" \
    whisper_verify

whisper_no_tokenizer() {
    rm -rf "$OUT/wnt" && mkdir -p "$OUT/wnt" && cp "$WH"/*.json "$WH"/*.safetensors "$OUT/wnt/" &&
        rm "$OUT/wnt/tokenizer.json" || return 1
    "$CONVERT" -o "$OUT/wnt.gemini" "$OUT/wnt" >/dev/null 2>"$OUT/err" || return 1
    grep -q 'warning: .*no tokenizer.json' "$OUT/err" || return 1
    "$CONVERT" --info --full "$OUT/wnt.gemini" 2>/dev/null >"$OUT/info"
    ! grep -aqE '^  (tokenizer\.|whisper\.[a-z_]*_id )' "$OUT/info" || return 1
    # The languages still come from generation_config.json's lang_to_id, in id order.
    for key in whisper.lang_ids whisper.lang_codes whisper.suppress_tokens; do
        grep -a "^  $key " "$FX/convert/whisper-tiny-meta.expected" >"$OUT/want"
        grep -a "^  $key " "$OUT/info" | cmp -s - "$OUT/want" || { echo "$key"; return 1; }
    done
}
check "Whisper without tokenizer.json: a warning, ids only, languages from lang_to_id" \
    whisper_no_tokenizer

whisper_ct2_bare() {
    rm -rf "$OUT/wbare" && mkdir -p "$OUT/wbare" && cp "$WC/model.bin" "$OUT/wbare/" || return 1
    "$CONVERT" -q -t f32 -o "$OUT/wbare.gemini" "$OUT/wbare" 2>/dev/null || return 1
    "$CONVERT" --info --full "$OUT/wbare.gemini" 2>/dev/null >"$OUT/info"
    if grep -aE '^  (tokenizer\.|whisper\.(lang|suppress|begin|alignment|[a-z_]*_id ))' \
        "$OUT/info"; then
        return 1
    fi
    tensor_types_crcs "$OUT/wh-ct2-f32.gemini" >"$OUT/a"
    tensor_types_crcs "$OUT/wbare.gemini" >"$OUT/b"
    same_files "$OUT/a" "$OUT/b"
}
check "Whisper CTranslate2 model.bin alone: converts, no optional keys" whisper_ct2_bare

off() {
    awk -v k="$1" '$1 == k { print $2 }' "$FX/convert/whisper-tiny-ct2.offsets"
}
BIN=$WC/model.bin
mkdir -p "$OUT/ct2"
cp "$WC/config.json" "$WC/tokenizer.json" "$OUT/ct2/"

# ct2_string TEXT: a CTranslate2 string (u16 length counting the NUL, the bytes, the NUL).
ct2_string() {
    n=$((${#1} + 1))
    printf "\\$(printf %o $((n % 256)))\\$(printf %o $((n / 256)))%s\\000" "$1"
}

# with_alias TARGET: the fixture's model.bin with its one alias, decoder/projection/weight,
# naming TARGET instead; no TARGET: no alias (an absent head).
with_alias() {
    head -c "$(off alias_count)" "$BIN"
    if [ -n "$1" ]; then
        printf '\001\000\000\000'
        ct2_string decoder/projection/weight
        ct2_string "$1"
    else
        printf '\000\000\000\000'
    fi
}

whisper_head_absent() {
    with_alias "" >"$OUT/ct2/model.bin" && with_alias decoder/embeddings/weight |
        cmp -s - "$BIN" || { echo "with_alias does not rebuild the fixture"; return 1; }
    "$CONVERT" -q -t f32 -o "$OUT/noalias.gemini" "$OUT/ct2" || return 1
    tensor_types_crcs "$OUT/wh-ct2-f32.gemini" >"$OUT/a"
    tensor_types_crcs "$OUT/noalias.gemini" >"$OUT/b"
    same_files "$OUT/a" "$OUT/b" && meta_is "$OUT/noalias.gemini" model.tied_embeddings true
}
check "Whisper CTranslate2 without decoder/projection (head absent): the same tensors" \
    whisper_head_absent

# ---- Whisper: hostile CTranslate2 and Hugging Face inputs ---------------------------------------

with_alias decoder/layer_0/attention/linear_2/weight >"$OUT/ct2/model.bin"
hostile "model.bin whose head is not the token embedding (untied)" "$OUT/ct2"
bin_size=$(wc -c <"$BIN")
for n in 3 10 30 $(($(off variable_count) + 4)) 5000 $(($(off alias_count) + 6)) \
    $((bin_size - 1)); do
    head -c $n "$BIN" >"$OUT/ct2/model.bin"
    hostile "model.bin truncated to $n bytes" "$OUT/ct2"
done
# bad_bin NAME OFFSET HEXBYTES: model.bin with bytes overwritten must be refused.
bad_bin() {
    cp "$BIN" "$OUT/ct2/model.bin" && patch "$OUT/ct2/model.bin" "$2" "$3"
    hostile "$1" "$OUT/ct2"
}
bad_bin "model.bin binary version 7" 0 07000000
bad_bin "model.bin variable count 2^32-1" "$(off variable_count)" ffffffff
bad_bin "model.bin dimension 2^32-1" "$(off dims:decoder/layer_1/ffn/linear_0/weight)" ffffffff
bad_bin "model.bin byte count 2^32-1" "$(off bytes:decoder/layer_1/ffn/linear_0/weight)" ffffffff
bad_bin "model.bin name length 65535" "$(off name:decoder/layer_0/ffn/linear_1/bias)" ffff
bad_bin "model.bin unknown variable name" \
    $(($(off name:decoder/layer_0/ffn/linear_1/bias) + 2)) 78
bad_bin "model.bin alias count 2^32-1" "$(off alias_count)" ffffffff
bad_bin "model.bin alias of a missing variable" \
    $(($(off target:decoder/projection/weight) + 2)) 78
bad_bin "model.bin shape [32, 64] for fc1 [64, 32] (same byte count)" \
    "$(off dims:decoder/layer_1/ffn/linear_0/weight)" 2000000040000000
# The key third of the fused [3d] self-attention bias starts at value d = 32 (float32).
bad_bin "model.bin nonzero self-attention key bias" \
    $(($(off data:encoder/layer_0/self_attention/linear_0/bias) + 4 * 32)) 0000803f
bad_bin "model.bin nonzero cross-attention key bias" \
    "$(off data:decoder/layer_1/attention/linear_1/bias)" 000080bf
bad_bin "model.bin fused bias that does not split in three" \
    "$(off dims:encoder/layer_0/self_attention/linear_0/bias)" 61000000
bad_bin "model.bin encoder/num_heads 0" "$(off data:encoder/num_heads)" 0000
bad_bin "model.bin encoder/num_heads 3 (d = 32)" "$(off data:encoder/num_heads)" 0300
bad_bin "model.bin tanh GELU (decoder/activation 1)" "$(off data:decoder/activation)" 01
cp "$BIN" "$OUT/ct2/model.bin" && printf 'x' >>"$OUT/ct2/model.bin"
hostile "model.bin with a byte after the aliases" "$OUT/ct2"
cp "$BIN" "$OUT/ct2/model.bin"
echo '{"lang_ids": [282, 284]}' >"$OUT/ct2/config.json"
hostile "CTranslate2 config.json languages that differ from the tokenizer" "$OUT/ct2"
echo '{"alignment_heads": [[2, 0]]}' >"$OUT/ct2/config.json"
hostile "CTranslate2 config.json alignment head in layer 2 of 2" "$OUT/ct2"
echo '{"suppress_ids": [300]}' >"$OUT/ct2/config.json"
hostile "CTranslate2 config.json suppressed id 300 of 300" "$OUT/ct2"
cp "$WC/config.json" "$OUT/ct2/"
sed 's/<|translate|>/<|translatx|>/' "$WC/tokenizer.json" >"$OUT/ct2/tokenizer.json"
hostile "tokenizer.json without <|translate|>" "$OUT/ct2"
cp "$FX/convert/tokenizer.json" "$OUT/ct2/tokenizer.json"
hostile "tokenizer.json that is not byte-level BPE" "$OUT/ct2"

mkdir -p "$OUT/whf"
cp "$WH"/* "$OUT/whf/"
sed 's/"d_model": 32/"d_model": 64/' "$WH/config.json" >"$OUT/whf/config.json"
hostile "Whisper config.json d_model disagreeing with the tensors" "$OUT/whf"
grep -v '"encoder_attention_heads"' "$WH/config.json" >"$OUT/whf/config.json"
hostile "Whisper config.json without encoder_attention_heads" "$OUT/whf"
sed 's/"gelu"/"relu"/' "$WH/config.json" >"$OUT/whf/config.json"
hostile "Whisper config.json with activation_function relu" "$OUT/whf"
sed 's/"encoder_attention_heads": 2/"encoder_attention_heads": 5/' "$WH/config.json" \
    >"$OUT/whf/config.json"
hostile "Whisper config.json with 5 heads for d_model 32" "$OUT/whf"
cp "$WH/config.json" "$OUT/whf/"
sed 's/"<|de|>": 283/"<|de|>": 284/' "$WH/generation_config.json" \
    >"$OUT/whf/generation_config.json"
hostile "generation_config.json lang_to_id disagreeing with the tokenizer" "$OUT/whf"
sed 's/"transcribe": 286/"transcribe": 285/' "$WH/generation_config.json" \
    >"$OUT/whf/generation_config.json"
hostile "generation_config.json task_to_id disagreeing with the tokenizer" "$OUT/whf"

# ---- The real Gemma 3 270M GGUF ------------------------------------------------------------

REAL=$MODELS/src/gemma-3-270m-q4_k_m.gguf
if [ -f "$REAL" ]; then
    real_q8() {
        "$CONVERT" -q --type q8_0 -o "$OUT/real-q8.gemini" "$REAL" || return 1
        "$CONVERT" --verify "$OUT/real-q8.gemini" || return 1
        want=$(awk '$1 == "token_embd" { print $4 }' "$FX/gguf/real-270m.expected")
        got=$(tensor_crcs "$OUT/real-q8.gemini" | awk '$1 == "token_embd" { print $2 }')
        [ "$want" = "$got" ] || { echo "token_embd not copied: $got vs $want"; return 1; }
    }
    check "real 270M -> q8_0: verifies, loads, token_embd Q8_0 blocks copied" real_q8

    real_f32() {
        "$CONVERT" -q --type f32 -o "$OUT/real-f32.gemini" "$REAL" || return 1
        awk '$3 != "-" { print $1, $3 }' "$FX/gguf/real-270m.expected" | sort >"$OUT/expected"
        tensor_crcs "$OUT/real-f32.gemini" | grep -v '^token_embd ' >"$OUT/got"
        same_files "$OUT/expected" "$OUT/got" && rm -f "$OUT/real-f32.gemini"
    }
    check "real 270M -> f32: 235 tensors (Q5_0 Q4_K Q6_K Q8_0 F32) equal gguf-py" real_f32

    real_meta() {
        f=$OUT/real-q8.gemini
        meta_is "$f" model.vocab_size 262144 && meta_is "$f" model.num_layers 18 &&
            meta_is "$f" model.query_scale 0.0625 && meta_is "$f" model.rope_theta 1000000 &&
            meta_is "$f" model.rope_theta_local 10000 && meta_is "$f" model.sliding_window 512 &&
            meta_is "$f" model.layer_types 'u8[18] = 1 1 1 1 1 0 1 1 1 1 1 0 1 1 1 1 1 0' &&
            meta_is "$f" model.max_position 32768 && meta_is "$f" model.tied_embeddings true &&
            meta_is "$f" tokenizer.eot_id 106 && meta_is "$f" tokenizer.byte_fallback true &&
            meta_is "$f" tokenizer.add_dummy_prefix false && meta_is "$f" tokenizer.bos_id 2 &&
            meta_is "$f" model.embed_scale 25.2982216
    }
    check "real 270M metadata (llama.cpp gemma3 conventions, tokenizer)" real_meta
else
    echo "skip - $REAL not found (make models): real-model checks not run"
fi

# ---- The real Whisper base (CTranslate2, float16) -------------------------------------------

WB=$MODELS/whisper-base
if [ -f "$WB/model.bin" ]; then
    whisper_base() {
        "$CONVERT" -q --type q8_0 -o "$OUT/wb-q8.gemini" "$WB" || return 1
        "$CONVERT" --verify "$OUT/wb-q8.gemini" >"$OUT/v.log" 2>&1 || return 1
        grep -q '245 tensor CRCs ok' "$OUT/v.log" || return 1
        f=$OUT/wb-q8.gemini
        meta_is "$f" model.vocab_size 51865 && meta_is "$f" model.hidden_size 512 &&
            meta_is "$f" model.num_layers 6 && meta_is "$f" model.num_heads 8 &&
            meta_is "$f" model.intermediate_size 2048 && meta_is "$f" model.max_position 448 &&
            meta_is "$f" whisper.n_mels 80 && meta_is "$f" whisper.audio_ctx 1500 &&
            meta_is "$f" whisper.encoder_layers 6 && meta_is "$f" whisper.encoder_heads 8 &&
            meta_is "$f" whisper.sot_id 50258 && meta_is "$f" whisper.eot_id 50257 &&
            meta_is "$f" whisper.no_speech_id 50362 &&
            meta_is "$f" whisper.timestamp_begin_id 50364 &&
            meta_is "$f" whisper.begin_suppress_tokens 'i32[2] = 220 50257' || return 1
        meta "$f" whisper.lang_codes | grep -q '^string\[99\] = "en" "zh" "de" ' &&
            tensor_types_crcs "$f" | grep -q '^enc.conv1 f16 ' &&
            tensor_types_crcs "$f" | grep -q '^token_embd q8_0 '
    }
    check "real Whisper base (CTranslate2 f16) -> q8_0: 245 tensors verify, metadata" \
        whisper_base
    rm -f "$OUT/wb-q8.gemini"
else
    echo "skip - $WB/model.bin not found (make models): real Whisper checks not run"
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
