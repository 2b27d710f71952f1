/* fuzz_tok_encode.c - libFuzzer target for gemini_tok_encode on arbitrary bytes.

   Input: byte 0 picks the tokenizer (byte % count) and the flags ((byte >> 3) & 7); the rest
   is the text. Tokenizers, loaded once: the committed fixtures (tests/fixtures/convert:
   tokenizer.model, tokenizer.json), Gemma 3's real vocabulary when models/ holds it
   (models/gemma3-rebuilt.model: byte fallback, 262k pieces), and two built here from arrays
   (unigram and BPE, both with byte fallback and user-defined pieces). */
#define GEMINI_TOKENIZER_IMPLEMENTATION
#include "../../gemini_tokenizer.h"
#include "fuzz_tok_common.h"

#include <stdio.h>

#ifndef FUZZ_REPO_ROOT
#define FUZZ_REPO_ROOT "."
#endif

#define MAX_TOKENIZERS 8
static gemini_tok *tokenizers[MAX_TOKENIZERS];
static int n_tokenizers;

static void add_file(const char *relative)
{
    char path[1024];
    gemini_tok *tok = NULL;
    snprintf(path, sizeof path, "%s/%s", FUZZ_REPO_ROOT, relative);
    if (gemini_tok_load(path, &tok) == GEMINI_OK && n_tokenizers < MAX_TOKENIZERS)
        tokenizers[n_tokenizers++] = tok;
}

/* A vocabulary of 256 byte pieces, a few user-defined and control pieces and some words. */
static void add_built(int32_t model_type)
{
    static const char *const words[] = {
        "<unk>", "<s>", "</s>", "<pad>", "<mask>", "\xE2\x96\x81", "\xE2\x96\x81the", "he",
        "ll", "llo", "hello", "\xE2\x96\x81hello", "wor", "ld", "world", "\xC3\xA9", "ab",
        "abc", "\xE2\x96\x81\xE2\x96\x81", "  ", "\xF0\x9F\x98\x80"};
    static const uint8_t word_types[] = {2, 3, 3, 3, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 1,
                                         1, 4, 1};
    enum { N_WORDS = sizeof words / sizeof words[0], N = N_WORDS + 256 };
    static char byte_pieces[256][7];
    const char *pieces[N];
    uint32_t lengths[N];
    float scores[N];
    uint8_t types[N];
    gemini_tok_spm_desc desc;
    gemini_tok *tok = NULL;
    int i;
    for (i = 0; i < N_WORDS; i++) {
        pieces[i] = words[i];
        lengths[i] = (uint32_t)strlen(words[i]);
        scores[i] = -(float)i * 0.5f;
        types[i] = word_types[i];
    }
    for (i = 0; i < 256; i++) {
        snprintf(byte_pieces[i], sizeof byte_pieces[i], "<0x%02X>", i);
        pieces[N_WORDS + i] = byte_pieces[i];
        lengths[N_WORDS + i] = 6;
        scores[N_WORDS + i] = 0;
        types[N_WORDS + i] = 6;
    }
    memset(&desc, 0, sizeof desc);
    desc.model_type = model_type;
    desc.n_pieces = N;
    desc.pieces = pieces;
    desc.piece_lengths = lengths;
    desc.scores = scores;
    desc.types = types;
    desc.unk_id = 0;
    desc.bos_id = 1;
    desc.eos_id = 2;
    desc.pad_id = 3;
    desc.add_dummy_prefix = model_type == GEMINI_TOK_UNIGRAM;
    desc.remove_extra_whitespaces = model_type == GEMINI_TOK_UNIGRAM;
    desc.escape_whitespaces = 1;
    desc.treat_whitespace_as_suffix = 0;
    desc.byte_fallback = 1;
    if (gemini_tok_create_spm(&desc, &tok) == GEMINI_OK && n_tokenizers < MAX_TOKENIZERS)
        tokenizers[n_tokenizers++] = tok;
    else
        fprintf(stderr, "fuzz_tok_encode: built tokenizer refused: %s\n", gemini_last_error());
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    add_file("tests/fixtures/convert/tokenizer.model");
    add_file("tests/fixtures/convert/tokenizer.json");
    add_file("models/gemma3-rebuilt.model");
    add_built(GEMINI_TOK_UNIGRAM);
    add_built(GEMINI_TOK_BPE);
    fprintf(stderr, "fuzz_tok_encode: %d tokenizers\n", n_tokenizers);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const gemini_tok *tok;
    uint32_t flags;
    if (size < 1 || n_tokenizers == 0) return 0;
    tok = tokenizers[data[0] % n_tokenizers];
    flags = (uint32_t)(data[0] >> 3) & 7u;
    fuzz_tok_roundtrip(tok, (const char *)data + 1, size - 1, flags);
    return 0;
}
