/* fuzz_tok_common.h - exercises a tokenizer that loaded: encodes fixed texts with every flag,
   decodes ids (all at once and through a stream) and queries pieces. */
#ifndef FUZZ_TOK_COMMON_H
#define FUZZ_TOK_COMMON_H

#include <stdlib.h>
#include <string.h>

static void fuzz_piece_cb(void *user, int32_t id, const char *piece, size_t len)
{
    size_t *total = (size_t *)user;
    (void)id;
    if (len) *total += (unsigned char)piece[0] + (unsigned char)piece[len - 1];
}

/* Decodes ids with gemini_tok_decode and with a stream. */
static void fuzz_tok_decode(const gemini_tok *tok, const int32_t *ids, size_t n_ids)
{
    gemini_tok_stream *stream = NULL;
    size_t needed = 0, len, i;
    const char *text;
    char *buf;
    if (gemini_tok_decode(tok, ids, n_ids, NULL, 0, &needed) == GEMINI_ERR_INVALID_ARGUMENT &&
        needed < (64u << 20)) {
        buf = (char *)malloc(needed + 1);
        if (buf) {
            gemini_tok_decode(tok, ids, n_ids, buf, needed + 1, &len);
            free(buf);
        }
    }
    if (gemini_tok_stream_create(tok, &stream) != GEMINI_OK) return;
    for (i = 0; i < n_ids; i++) gemini_tok_stream_push(stream, ids[i], &text, &len);
    gemini_tok_stream_flush(stream, &text, &len);
    gemini_tok_stream_free(stream);
}

/* Encodes text with flags, then decodes the result. */
static void fuzz_tok_roundtrip(const gemini_tok *tok, const char *text, size_t len,
                               uint32_t flags)
{
    int32_t n = 0, *ids;
    size_t total = 0;
    if (gemini_tok_encode(tok, text, len, flags, NULL, 0, &n) != GEMINI_OK || n < 0) return;
    ids = (int32_t *)malloc(((size_t)n + 1) * sizeof *ids);
    if (!ids) return;
    if (gemini_tok_encode(tok, text, len, flags, ids, n, &n) == GEMINI_OK)
        fuzz_tok_decode(tok, ids, (size_t)n);
    free(ids);
    gemini_tok_encode_pieces(tok, text, len, flags, fuzz_piece_cb, &total);
}

/* Everything a freshly loaded (possibly hostile) tokenizer should survive. */
static void fuzz_tok_exercise(const gemini_tok *tok)
{
    static const char *const texts[] = {
        "Hello world", "  two  spaces\tand\nnewlines  ", "<bos>he<eos>llo<unk><pad>",
        "\xE2\x96\x81" "abc \xC3\xA9t\xC3\xA9 \xFF\xFE\xC0\x80 \xF0\x9F\x98\x80",
        "<start_of_turn>user\nhi<end_of_turn>", "\xEF\xBC\xA1\xE2\x91\xA0 \xEF\xBD\xB6\xEF\xBE\x9E",
        ""};
    static const int32_t odd_ids[] = {-1, 0, 1, 2, 3, 0x7FFFFFFF};
    int32_t vocab = gemini_tok_vocab_size(tok), i, *all;
    size_t t, len;
    gemini_tok_spm_desc desc;
    for (t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        fuzz_tok_roundtrip(tok, texts[t], strlen(texts[t]), 0);
        fuzz_tok_roundtrip(tok, texts[t], strlen(texts[t]),
                           GEMINI_TOK_ADD_BOS | GEMINI_TOK_ADD_EOS | GEMINI_TOK_PARSE_SPECIAL);
    }
    fuzz_tok_decode(tok, odd_ids, sizeof odd_ids / sizeof odd_ids[0]);
    if (vocab > 0 && vocab <= 4096) {
        all = (int32_t *)malloc((size_t)vocab * sizeof *all);
        if (all) {
            for (i = 0; i < vocab; i++) {
                const char *piece = gemini_tok_piece(tok, i, &len);
                all[i] = i;
                if (piece) gemini_tok_id_of(tok, piece, len);
                gemini_tok_score(tok, i);
                gemini_tok_piece_type(tok, i);
            }
            fuzz_tok_decode(tok, all, (size_t)vocab);
            free(all);
        }
    }
    gemini_tok_describe(tok, &desc);
    gemini_tok_model_type(tok);
    gemini_tok_unk_id(tok);
    gemini_tok_bos_id(tok);
    gemini_tok_eos_id(tok);
    gemini_tok_pad_id(tok);
}

#endif /* FUZZ_TOK_COMMON_H */
