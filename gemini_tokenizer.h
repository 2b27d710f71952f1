/* gemini_tokenizer.h - SentencePiece-exact and byte-level BPE tokenization, a single-file C99
   library.

   Part of gemini.h. Usable on its own: do this in exactly one C or C++ file

       #define GEMINI_TOKENIZER_IMPLEMENTATION
       #include "gemini_tokenizer.h"

   (gemini.h includes this header and defines the macro for you when GEMINI_IMPLEMENTATION is set.)

   Build macros
       GEMINI_STATIC                  make every function static (private to one file)
       GEMINI_MALLOC/REALLOC/FREE     override the allocator (define all three or none)

   This header also holds what every gemini header shares: the result enum, its to-string
   function and the per-thread last-error message.

   Quick start
       gemini_tok *tok;
       int32_t ids[256], n;
       if (gemini_tok_load("tokenizer.model", &tok) != GEMINI_OK)
           fprintf(stderr, "%s\n", gemini_last_error());
       gemini_tok_encode(tok, "Hello world", 11, GEMINI_TOK_ADD_BOS, ids, 256, &n);
       gemini_tok_free(tok);

   What it does
       SentencePiece BPE and unigram models, read from a .model file (protobuf), a Hugging Face
       tokenizer.json that was converted from one, or plain arrays (gemini_tok_create_spm, the
       layout of a .gemini file). Encoding follows the SentencePiece runtime step by step, so
       ids equal spm_encode's: the precompiled charsmap normaliser (NFKC and friends), dummy
       prefix, whitespace escaping and collapsing, user-defined pieces, BPE merges by score
       (ties: leftmost) with UNUSED pieces split again, unigram Viterbi, byte fallback and
       merged unknowns. Decoding follows SentencePiece's Decode (newer rule for the first
       leading space, see gemini_tok_decode), also as a stream that never cuts a character.
       Byte-level BPE (GPT-2 style, as Whisper uses it): read from a Hugging Face tokenizer.json
       whose pre-tokeniser is ByteLevel, or from arrays (gemini_tok_create_bpe). The GPT-2
       pre-tokenisation pattern is hand-coded with a Unicode letter/number table (Unicode
       version in GEMINI__TOK_UNICODE_VERSION), merges apply by rank, ids equal those of the
       tokenizers library and tiktoken (see tests/tokenizer/whisper_*).

   Limitations
       - WORD and CHAR SentencePiece models, the denormalizer_spec and sampling (subword
         regularisation) are not supported.
       - Byte-level BPE tokenizer.json: only a plain ByteLevel pre-tokeniser (use_regex true,
         add_prefix_space false) with no normaliser; other pre-tokeniser patterns (GPT-4 /
         Llama 3 style Split + ByteLevel) give GEMINI_ERR_UNSUPPORTED. All added tokens, special
         or not, are recognised in text only with GEMINI_TOK_PARSE_SPECIAL (as tiktoken and
         OpenAI's Whisper treat them; the tokenizers library always splits out non-special
         ones such as Whisper's timestamps). Characters assigned after the table's Unicode
         version count as "other" for the pattern.
       - tokenizer.json: only the normalisers and pre-tokenisers that SentencePiece conversions
         produce (Replace " "->U+2581, Prepend U+2581, Precompiled, Strip, Metaspace, Split " ").
         BPE scores are made from merge ranks; bos/eos/pad are found by name (<bos>/<s>,
         <eos>/</s>, <pad>) among special tokens; added tokens become CONTROL (special) or
         USER_DEFINED pieces and the file is then run with SentencePiece's rules, which can
         differ from the tokenizers library on a few inputs (it splits every added token out
         of the raw text first; Metaspace's word split is not done).
       - Input text is limited to 1 GiB per call.

   Thread safety: a gemini_tok is never written after creation; any number of threads may use
   one at once. A gemini_tok_stream belongs to one thread at a time.
   Untrusted files: every length, offset and trie index of a model file is checked before
   use; malformed files give GEMINI_ERR_FORMAT, never a read out of bounds.
*/
#ifndef GEMINI_TOKENIZER_H
#define GEMINI_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifndef GEMINI_API
#ifdef GEMINI_STATIC
#define GEMINI_API static
#else
#define GEMINI_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Shared by all gemini headers ------------------------------------------------------- */

/* Every fallible function returns one of these. On failure a message naming the file, the
   field and the value is left for gemini_last_error(). */
typedef enum gemini_result {
    GEMINI_OK = 0,
    GEMINI_ERR_INVALID_ARGUMENT,  /* a NULL pointer, a size out of range, an unknown option */
    GEMINI_ERR_IO,                /* a file could not be opened, mapped or read */
    GEMINI_ERR_FORMAT,            /* the bytes are not a valid file of the expected kind */
    GEMINI_ERR_UNSUPPORTED,       /* valid, but a feature this build does not handle */
    GEMINI_ERR_OUT_OF_MEMORY,     /* an allocation failed or a header asked for too much */
    GEMINI_ERR_CONTEXT_FULL,      /* more tokens than the context was created for */
    GEMINI_ERR_MISSING_KEY,       /* a required metadata key or tensor is absent */
    GEMINI_ERR_CHECKSUM,          /* a CRC did not match */
    GEMINI_ERR_COUNT
} gemini_result;

/* A short constant English name for a result, never NULL. */
GEMINI_API const char *gemini_result_string(gemini_result result);

/* The message of the last failure on the calling thread ("" if none). Valid until the next
   failing call on the same thread. */
GEMINI_API const char *gemini_last_error(void);

/* ---- Tokenizer ------------------------------------------------------------------------- */

/* A loaded tokenizer. Read-only once created: any number of threads may encode and decode with
   one tokenizer at the same time. */
typedef struct gemini_tok gemini_tok;

/* Model families. The values of the SentencePiece kinds are those of its TrainerSpec. */
typedef enum gemini_tok_model_kind {
    GEMINI_TOK_UNIGRAM = 1,   /* SentencePiece unigram (Viterbi over piece scores) */
    GEMINI_TOK_BPE = 2,       /* SentencePiece BPE (merges by piece score) */
    GEMINI_TOK_BYTE_BPE = 16  /* byte-level BPE, GPT-2 style (Whisper): merges by rank */
} gemini_tok_model_kind;

/* Piece types, numbered as SentencePiece numbers them (5 and 6 are in this order on purpose). */
typedef enum gemini_tok_piece_kind {
    GEMINI_TOK_NORMAL = 1,
    GEMINI_TOK_UNKNOWN = 2,       /* exactly one per model */
    GEMINI_TOK_CONTROL = 3,       /* <bos>, <eos>, <pad>: never produced from text by default */
    GEMINI_TOK_USER_DEFINED = 4,  /* always recognised in raw text, never split */
    GEMINI_TOK_UNUSED = 5,        /* in the vocabulary but never emitted */
    GEMINI_TOK_BYTE = 6           /* <0x00> .. <0xFF>, used by byte fallback */
} gemini_tok_piece_kind;

/* Encode flags (bitwise or). */
#define GEMINI_TOK_ADD_BOS 0x1u       /* put bos_id first (when the model has one) */
#define GEMINI_TOK_ADD_EOS 0x2u       /* put eos_id last (when the model has one) */
/* Recognise the text of CONTROL pieces (<bos>, <eos>, <pad>, </s>, ...) and of the UNKNOWN
   piece (<unk>) in the input and emit their ids, as Hugging Face does with special added
   tokens. The text between two such matches (the longest match wins, scanning left to right)
   is encoded exactly as a separate input would be, so with a dummy prefix each part gets its
   own. Without this flag the text of control pieces is plain text, as in spm_encode.
   USER_DEFINED pieces are recognised in both modes, because SentencePiece itself always does
   so. Gemma's <start_of_turn> / <end_of_turn> are USER_DEFINED in Google's tokenizer.model
   but CONTROL in llama.cpp's GGUF files: with a vocabulary taken from a GGUF, chat markup
   needs this flag (or the ids put in directly).
   Byte-level BPE models: every added token (CONTROL for special ones such as <|endoftext|>,
   <|startoftranscript|>, <|en|>, <|notimestamps|>; USER_DEFINED for non-special ones such as
   Whisper's timestamps <|0.00|> .. <|30.00|>) is recognised only with this flag, the longest
   match first; without it all text goes through the byte-level BPE. */
#define GEMINI_TOK_PARSE_SPECIAL 0x4u

/* Everything needed to build a SentencePiece tokenizer from plain arrays (the layout of the
   tokenizer.* keys of a .gemini file). The create function copies all of it. */
typedef struct gemini_tok_spm_desc {
    int32_t model_type;                  /* GEMINI_TOK_BPE or GEMINI_TOK_UNIGRAM */
    int32_t n_pieces;
    const char *const *pieces;           /* not NUL-terminated: see piece_lengths */
    const uint32_t *piece_lengths;
    const float *scores;
    const uint8_t *types;                /* SentencePiece types 1..6 */
    int32_t unk_id, bos_id, eos_id, pad_id;   /* -1 = none (unk: found from the types) */
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces,
        treat_whitespace_as_suffix, byte_fallback;
    const uint8_t *charsmap; size_t charsmap_size;   /* may be NULL/0 */
} gemini_tok_spm_desc;

/* Builds a tokenizer from arrays. Fails with GEMINI_ERR_INVALID_ARGUMENT (NULL arrays, bad
   counts or types), GEMINI_ERR_FORMAT (empty or duplicate pieces, not exactly one UNKNOWN
   piece, a BYTE piece that is not <0xNN>, byte_fallback without all 256 byte pieces, a broken
   charsmap) or GEMINI_ERR_OUT_OF_MEMORY; *out is then NULL. */
GEMINI_API gemini_result gemini_tok_create_spm(const gemini_tok_spm_desc *desc,
                                               gemini_tok **out);

/* Everything needed to build a byte-level BPE tokenizer from plain arrays. Pieces are raw
   bytes (not the GPT-2 "byte to unicode" text of tokenizer.json and GGUF: "\xC4\xA0the" there
   is " the" here). The create function copies all of it. */
typedef struct gemini_tok_bpe_desc {
    int32_t n_pieces;
    const char *const *pieces;           /* raw bytes, not NUL-terminated */
    const uint32_t *piece_lengths;       /* 0 is allowed for a NORMAL piece (a never-used id) */
    const uint8_t *types;                /* NORMAL (vocabulary), CONTROL (special added token),
                                            USER_DEFINED (non-special added token) */
    int32_t n_merges;
    const int32_t *merges;               /* (n_merges, 2): left and right piece ids, by rank */
    int32_t bos_id, eos_id, pad_id;      /* -1 = none */
} gemini_tok_bpe_desc;

/* Builds a byte-level BPE tokenizer from arrays. Every byte must have a one-byte NORMAL piece;
   each merge joins two NORMAL pieces whose concatenation is a NORMAL piece; the later of two
   equal merges wins (as in the tokenizers library). Fails with GEMINI_ERR_INVALID_ARGUMENT
   (NULL arrays, bad counts or ids), GEMINI_ERR_FORMAT (a type other than the three above, an
   empty added token, duplicate pieces, a missing byte piece, a bad merge) or
   GEMINI_ERR_OUT_OF_MEMORY; *out is then NULL. */
GEMINI_API gemini_result gemini_tok_create_bpe(const gemini_tok_bpe_desc *desc,
                                               gemini_tok **out);

/* Loads a SentencePiece .model (protobuf) or a Hugging Face tokenizer.json; the kind is found
   from the bytes (JSON starts with '{'), and a tokenizer.json whose model is BPE with a
   ByteLevel pre-tokeniser becomes a GEMINI_TOK_BYTE_BPE tokenizer (eos_id = <|endoftext|>
   when it is a special token; no bos or pad). Errors: GEMINI_ERR_IO (cannot read), FORMAT
   (not a valid file, a vocabulary piece that is not in byte-level form, a merge of unknown
   pieces), UNSUPPORTED (a WORD or CHAR model, a JSON normaliser or pre-tokeniser we do not
   implement), plus those of gemini_tok_create_spm / gemini_tok_create_bpe. */
GEMINI_API gemini_result gemini_tok_load(const char *path, gemini_tok **out);
GEMINI_API gemini_result gemini_tok_load_memory(const void *data, size_t size,
                                                gemini_tok **out);

/* Frees a tokenizer (NULL is fine). */
GEMINI_API void gemini_tok_free(gemini_tok *tok);

/* Encodes len bytes of UTF-8 text (NUL bytes are ordinary characters). Malformed UTF-8 is
   handled as SentencePiece does: each bad byte becomes U+FFFD before the model sees it (for
   byte-level BPE too, so decode(encode(x)) == x holds for valid UTF-8 only).
   Writes at most max_ids ids and sets *n_out to the number the whole encoding needs.
   ids == NULL with max_ids == 0 is a pure count query and succeeds. When the buffer is too
   small the first max_ids ids are written, *n_out holds the needed count and the result is
   GEMINI_ERR_INVALID_ARGUMENT. Other errors: NULL arguments, text over 1 GiB,
   GEMINI_ERR_OUT_OF_MEMORY. */
GEMINI_API gemini_result gemini_tok_encode(const gemini_tok *tok, const char *text, size_t len,
                                           uint32_t flags, int32_t *ids, int32_t max_ids,
                                           int32_t *n_out);

/* Called once per output token by gemini_tok_encode_pieces, in order. piece/len is the
   piece's text as spm_encode --output_format=piece prints it: the vocabulary piece, except
   for the unknown token, whose text is the (normalised) input it covers, a run of unknown
   characters being one token. Byte-level BPE: the raw bytes of the token (possibly part of a
   UTF-8 character), so that the pieces of a plain encoding join to the text. */
typedef void (*gemini_tok_piece_fn)(void *user, int32_t id, const char *piece, size_t len);

/* Encodes like gemini_tok_encode and reports each token to fn. Same errors. */
GEMINI_API gemini_result gemini_tok_encode_pieces(const gemini_tok *tok, const char *text,
                                                  size_t len, uint32_t flags,
                                                  gemini_tok_piece_fn fn, void *user);

/* Decodes ids to UTF-8 text exactly as SentencePiece's Decode does: control pieces vanish,
   the unknown piece becomes " \xE2\x81\x87 " (or the model's unk_surface), U+2581 becomes a
   space, runs of byte pieces are decoded as UTF-8 with U+FFFD for each invalid byte, and the
   first piece loses one leading U+2581 when the model adds a dummy prefix or removes extra
   whitespace (control pieces such as BOS do not count as first; with remove_extra_whitespaces
   every piece loses one until some text has appeared), the rule of sentencepiece 0.2.
   Writes the text and a terminating NUL when cap > needed length; *n_out is the length
   without the NUL. text == NULL with cap == 0 is a length query. Errors: an id outside
   [0, vocab size) gives GEMINI_ERR_INVALID_ARGUMENT naming it and nothing is written; a small
   buffer gives GEMINI_ERR_INVALID_ARGUMENT with *n_out set to the length needed.
   Byte-level BPE: the bytes of all pieces are joined, CONTROL pieces (special added tokens)
   vanish without breaking a character across them, USER_DEFINED pieces (Whisper's
   timestamps) give their text, and invalid UTF-8 becomes one U+FFFD per bad byte (Python's
   and the tokenizers library's lossy decoders give one U+FFFD per maximal bad subsequence
   instead, so "\xE2\x82" is two U+FFFD here and one there). This equals the tokenizers
   library's decode with skip_special_tokens for valid UTF-8. */
GEMINI_API gemini_result gemini_tok_decode(const gemini_tok *tok, const int32_t *ids,
                                           size_t n_ids, char *text, size_t cap,
                                           size_t *n_out);

/* The piece of id (not NUL-terminated in general; *len gets its length), NULL when id is out
   of range; for byte-level BPE the raw bytes (possibly part of a UTF-8 character). The
   pointer lives as long as the tokenizer. */
GEMINI_API const char *gemini_tok_piece(const gemini_tok *tok, int32_t id, size_t *len);
/* The id whose piece is exactly piece/len (any type), or -1 when there is none. */
GEMINI_API int32_t gemini_tok_id_of(const gemini_tok *tok, const char *piece, size_t len);
GEMINI_API float gemini_tok_score(const gemini_tok *tok, int32_t id);   /* 0 if out of range */
GEMINI_API int gemini_tok_piece_type(const gemini_tok *tok, int32_t id); /* 0 if out of range */
GEMINI_API int32_t gemini_tok_vocab_size(const gemini_tok *tok);
GEMINI_API int gemini_tok_model_type(const gemini_tok *tok);
GEMINI_API int32_t gemini_tok_unk_id(const gemini_tok *tok);
GEMINI_API int32_t gemini_tok_bos_id(const gemini_tok *tok);   /* -1 if none */
GEMINI_API int32_t gemini_tok_eos_id(const gemini_tok *tok);   /* -1 if none */
GEMINI_API int32_t gemini_tok_pad_id(const gemini_tok *tok);   /* -1 if none */

/* Fills *desc with the tokenizer's own arrays and settings (for writing a .gemini file). The
   pointers stay valid while tok lives. For a byte-level BPE tokenizer the spm desc has
   model_type GEMINI_TOK_BYTE_BPE, the pieces and types, and no merges: use
   gemini_tok_describe_bpe, whose desc rebuilds it with gemini_tok_create_bpe (all zero for
   other kinds). */
GEMINI_API void gemini_tok_describe(const gemini_tok *tok, gemini_tok_spm_desc *desc);
GEMINI_API void gemini_tok_describe_bpe(const gemini_tok *tok, gemini_tok_bpe_desc *desc);

/* ---- Streaming decoder ---- */

/* Turns ids into text one at a time. The concatenation of everything it returns equals
   gemini_tok_decode of the same ids; no step returns part of a UTF-8 character: bytes of an
   unfinished character from byte pieces (any piece of a byte-level BPE model) are held back
   until the character completes, turns out invalid (U+FFFD, as in decode) or the stream is
   flushed. One stream per thread. */
typedef struct gemini_tok_stream gemini_tok_stream;

/* Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL), GEMINI_ERR_OUT_OF_MEMORY. */
GEMINI_API gemini_result gemini_tok_stream_create(const gemini_tok *tok,
                                                  gemini_tok_stream **out);
/* Feeds one id. *text and *len receive the text that became final (possibly empty); the pointer
   is valid until the next call on this stream. An out-of-range id gives
   GEMINI_ERR_INVALID_ARGUMENT and leaves the stream unchanged. */
GEMINI_API gemini_result gemini_tok_stream_push(gemini_tok_stream *stream, int32_t id,
                                                const char **text, size_t *len);
/* Ends the sequence: returns held-back bytes (as U+FFFD where incomplete) and resets the
   stream for a new sequence. */
GEMINI_API gemini_result gemini_tok_stream_flush(gemini_tok_stream *stream, const char **text,
                                                 size_t *len);
GEMINI_API void gemini_tok_stream_reset(gemini_tok_stream *stream);
GEMINI_API void gemini_tok_stream_free(gemini_tok_stream *stream);

#ifdef __cplusplus
}
#endif
#endif /* GEMINI_TOKENIZER_H */

/* ========================================================================================= */
#ifdef GEMINI_TOKENIZER_IMPLEMENTATION
#ifdef GEMINI_TOKENIZER_IMPLEMENTED
#error "gemini_tokenizer.h: the implementation is included twice in one translation unit"
#endif
#define GEMINI_TOKENIZER_IMPLEMENTED

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(GEMINI_MALLOC) && defined(GEMINI_REALLOC) && defined(GEMINI_FREE)
#elif !defined(GEMINI_MALLOC) && !defined(GEMINI_REALLOC) && !defined(GEMINI_FREE)
#define GEMINI_MALLOC(size) malloc(size)
#define GEMINI_REALLOC(ptr, size) realloc(ptr, size)
#define GEMINI_FREE(ptr) free(ptr)
#else
#error "gemini: define all of GEMINI_MALLOC, GEMINI_REALLOC and GEMINI_FREE, or none"
#endif

#if defined(__cplusplus) && __cplusplus >= 201103L
#define GEMINI__THREAD_LOCAL thread_local
#elif defined(_MSC_VER)
#define GEMINI__THREAD_LOCAL __declspec(thread)
#elif defined(__GNUC__) || defined(__clang__)
#define GEMINI__THREAD_LOCAL __thread
#else
#define GEMINI__THREAD_LOCAL /* no thread-local storage: messages are shared between threads */
#endif

static GEMINI__THREAD_LOCAL char gemini__error_message[512];

/* With GEMINI_STATIC every public function is static, and a program rarely calls them all. */
#if defined(GEMINI_STATIC) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

GEMINI_API const char *gemini_result_string(gemini_result result)
{
    switch (result) {
    case GEMINI_OK: return "ok";
    case GEMINI_ERR_INVALID_ARGUMENT: return "invalid argument";
    case GEMINI_ERR_IO: return "input/output error";
    case GEMINI_ERR_FORMAT: return "bad file format";
    case GEMINI_ERR_UNSUPPORTED: return "unsupported";
    case GEMINI_ERR_OUT_OF_MEMORY: return "out of memory";
    case GEMINI_ERR_CONTEXT_FULL: return "context full";
    case GEMINI_ERR_MISSING_KEY: return "missing key";
    case GEMINI_ERR_CHECKSUM: return "checksum mismatch";
    default: return "unknown result";
    }
}

GEMINI_API const char *gemini_last_error(void)
{
    return gemini__error_message;
}

/* Records a printf-style message for gemini_last_error() and returns the result unchanged, so
   that a failure site reads `return gemini__fail(GEMINI_ERR_FORMAT, "...", ...);`. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static gemini_result gemini__fail(gemini_result result, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(gemini__error_message, sizeof gemini__error_message, format, args);
    va_end(args);
    return result;
}


/* ---- Tokenizer: small utilities --------------------------------------------------------- */

#include <float.h>

#define GEMINI__TOK_MAX_TEXT ((size_t)1 << 30)
#define GEMINI__TOK_NONE ((uint32_t)0xFFFFFFFFu)

static const char gemini__tok_space_symbol[] = "\xE2\x96\x81"; /* U+2581, 3 bytes */
static const char gemini__tok_replacement[] = "\xEF\xBF\xBD";  /* U+FFFD, 3 bytes */

static void *gemini__tok_malloc_array(size_t count, size_t size)
{
    if (size != 0 && count > ((size_t)-1) / size) return NULL;
    return GEMINI_MALLOC(count * size != 0 ? count * size : 1);
}

/* A growable byte buffer; `failed` sticks once an allocation has failed. */
typedef struct gemini__tok_buf {
    char *data;
    size_t len, cap;
    int failed;
} gemini__tok_buf;

static int gemini__tok_buf_reserve(gemini__tok_buf *b, size_t extra)
{
    size_t need, cap;
    char *data;
    if (b->failed) return 0;
    if (extra > ((size_t)-1) / 2 - b->len) { b->failed = 1; return 0; }
    need = b->len + extra;
    if (need <= b->cap) return 1;
    cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    data = (char *)GEMINI_REALLOC(b->data, cap);
    if (!data) { b->failed = 1; return 0; }
    b->data = data;
    b->cap = cap;
    return 1;
}

static void gemini__tok_buf_append(gemini__tok_buf *b, const void *bytes, size_t n)
{
    if (n == 0 || !gemini__tok_buf_reserve(b, n)) return;
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void gemini__tok_buf_free(gemini__tok_buf *b)
{
    GEMINI_FREE(b->data);
    memset(b, 0, sizeof *b);
}

/* The byte count SentencePiece assumes for a character from its first byte alone (a stray
   continuation byte counts as 1). */
static size_t gemini__tok_char_len(unsigned char lead)
{
    static const unsigned char lengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lengths[lead >> 4];
}

/* Strict UTF-8 decoding of one character: returns its length (1-4) when s[0..n) starts with
   a well-formed, shortest-form, non-surrogate character up to U+10FFFF, else 0. */
static size_t gemini__tok_utf8_valid(const unsigned char *s, size_t n)
{
    uint32_t cp;
    if (n == 0) return 0;
    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xE0) == 0xC0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) return 0;
        cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return cp >= 0x80 ? 2 : 0;
    }
    if ((s[0] & 0xF0) == 0xE0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) ? 3 : 0;
    }
    if ((s[0] & 0xF8) == 0xF0) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
             ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        return (cp >= 0x10000 && cp <= 0x10FFFF) ? 4 : 0;
    }
    return 0;
}

/* A fast hash of short strings (most pieces are under 16 bytes): 8-byte blocks, then the
   tail read as two overlapping words, so no loop runs per byte. */
static uint64_t gemini__tok_read32(const char *s)
{
    uint32_t v;
    memcpy(&v, s, 4);
    return v;
}

static uint64_t gemini__tok_hash(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xC2B2AE3D27D4EB4Full);
    uint64_t v;
    while (n > 8) {
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    if (n >= 4) v = gemini__tok_read32(s) | (gemini__tok_read32(s + n - 4) << 32);
    else if (n > 0) v = ((uint64_t)(unsigned char)s[0] << 16) |
                        ((uint64_t)(unsigned char)s[n >> 1] << 8) | (unsigned char)s[n - 1];
    else v = 0;
    h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

/* ---- Piece map: exact piece text -> id (open addressing) -------------------------------- */

typedef struct gemini__tok_map {
    int32_t *slots;   /* pairs: id (or -1 when empty), then the low 32 bits of the hash,
                         side by side so that a probe touches one cache line */
    uint64_t *bloom;  /* 16 bits per piece, two set per piece: most absent strings are
                         rejected here, in a table small enough to stay in cache */
    size_t mask, bloom_mask;
} gemini__tok_map;

struct gemini_tok;
static int32_t gemini__tok_map_find(const struct gemini_tok *tok, const gemini__tok_map *map,
                                    const char *s, size_t n);

/* ---- Byte trie: used for prefix searches (unigram pieces, user-defined symbols, special
   tokens). A child is found by hashing (node, byte); node_value holds the id of the piece
   that ends at a node, or -1. ------------------------------------------------------------- */

typedef struct gemini__tok_trie {
    uint32_t *keys;      /* node * 256 + byte + 1; 0 = empty slot */
    uint32_t *children;
    size_t mask;
    int32_t *node_value;
    uint32_t n_nodes;
} gemini__tok_trie;

static uint32_t gemini__tok_trie_slot(const gemini__tok_trie *t, uint32_t key)
{
    return (uint32_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 32) & (uint32_t)t->mask;
}

static int64_t gemini__tok_trie_child(const gemini__tok_trie *t, uint32_t node, unsigned char c)
{
    uint32_t key = node * 256u + c + 1u;
    size_t i = gemini__tok_trie_slot(t, key);
    while (t->keys[i] != 0) {
        if (t->keys[i] == key) return t->children[i];
        i = (i + 1) & t->mask;
    }
    return -1;
}

/* Builds a trie of the pieces whose type bit is set in type_mask (bit t for type t). */
static gemini_result gemini__tok_trie_build(gemini__tok_trie *t, const struct gemini_tok *tok,
                                            unsigned type_mask);

static void gemini__tok_trie_free(gemini__tok_trie *t)
{
    GEMINI_FREE(t->keys);
    GEMINI_FREE(t->children);
    GEMINI_FREE(t->node_value);
    memset(t, 0, sizeof *t);
}

/* Longest piece of the trie that is a prefix of s[0..n): its length in bytes (0 if none). */
static size_t gemini__tok_trie_longest(const gemini__tok_trie *t, const char *s, size_t n,
                                       int32_t *id)
{
    size_t i, best = 0;
    uint32_t node = 0;
    if (t->n_nodes <= 1) return 0;
    for (i = 0; i < n; i++) {
        int64_t child = gemini__tok_trie_child(t, node, (unsigned char)s[i]);
        if (child < 0) break;
        node = (uint32_t)child;
        if (t->node_value[node] >= 0) {
            best = i + 1;
            if (id) *id = t->node_value[node];
        }
    }
    return best;
}

/* ---- The tokenizer ----------------------------------------------------------------------- */

struct gemini_tok {
    int32_t model_type;
    int32_t n_pieces;
    char *blob;                 /* all piece bytes, each followed by a NUL */
    const char **pieces;        /* (n_pieces) into blob */
    uint32_t *piece_lengths;    /* (n_pieces) */
    float *scores;              /* (n_pieces) */
    uint8_t *types;             /* (n_pieces) */
    int32_t unk_id, bos_id, eos_id, pad_id;
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    int treat_whitespace_as_suffix, byte_fallback;
    int has_unused;
    int maps_overlap;           /* some string is both a reserved and a normal piece */
    float min_score, max_score; /* over NORMAL pieces, starting at FLT_MAX / FLT_MIN */
    int32_t byte_ids[256];      /* id of <0xNN>, -1 if absent */
    char *unk_surface;          /* decode text of the unknown piece */
    size_t unk_surface_len;

    /* precompiled_charsmap: a darts-clone double array, then NUL-terminated strings */
    uint8_t *charsmap;
    size_t charsmap_size;
    uint32_t *cm_units;
    size_t cm_n_units;
    const char *cm_strings;
    size_t cm_strings_size;

    gemini__tok_map normal_map;   /* NORMAL, USER_DEFINED, UNUSED (SentencePiece pieces_) */
    gemini__tok_map reserved_map; /* CONTROL, UNKNOWN, BYTE (reserved_id_map_) */
    gemini__tok_trie piece_trie;  /* unigram only: the pieces of normal_map */
    gemini__tok_trie user_trie;   /* USER_DEFINED pieces */
    gemini__tok_trie special_trie;/* CONTROL and UNKNOWN pieces, for PARSE_SPECIAL (byte-level
                                     BPE: CONTROL and USER_DEFINED, its added tokens) */

    /* Byte-level BPE only (byte_ids[] then holds the one-byte pieces). */
    int32_t n_merges;
    int32_t *merges;              /* (n_merges, 2): left and right ids, in rank order */
    int32_t *merge_result;        /* (n_merges): the id each merge makes */
    uint64_t *merge_keys;         /* open addressing: (left << 32 | right) + 1; 0 = empty */
    int32_t *merge_ranks;         /* rank stored beside each key */
    size_t merge_mask;
};

static int32_t gemini__tok_map_find(const struct gemini_tok *tok, const gemini__tok_map *map,
                                    const char *s, size_t n)
{
    uint64_t h;
    size_t i;
    if (!map->slots) return -1;
    h = gemini__tok_hash(s, n);
    if (!(map->bloom[(h >> 6) & map->bloom_mask] & ((uint64_t)1 << (h & 63))) ||
        !(map->bloom[(h >> 38) & map->bloom_mask] & ((uint64_t)1 << ((h >> 20) & 63))))
        return -1;
    i = (size_t)(h >> 32) & map->mask;
    while (map->slots[2 * i] >= 0) {
        int32_t id = map->slots[2 * i];
        if ((uint32_t)map->slots[2 * i + 1] == (uint32_t)h && tok->piece_lengths[id] == n &&
            memcmp(tok->pieces[id], s, n) == 0)
            return id;
        i = (i + 1) & map->mask;
    }
    return -1;
}

/* Builds the map of the pieces whose type bit is in type_mask; a duplicate is an error. */
static gemini_result gemini__tok_map_build(gemini__tok_map *map, const gemini_tok *tok,
                                           unsigned type_mask, const char *what)
{
    size_t count = 0, cap = 512, i;
    int32_t id;
    for (id = 0; id < tok->n_pieces; id++)
        if (type_mask & (1u << tok->types[id])) count++;
    while (cap < count * 2) cap *= 2;
    map->slots = (int32_t *)gemini__tok_malloc_array(cap, 2 * sizeof(int32_t));
    map->bloom_mask = cap / 8 - 1; /* cap/8 words = 8 bits per slot = 16 per piece */
    map->bloom = (uint64_t *)gemini__tok_malloc_array(map->bloom_mask + 1, sizeof(uint64_t));
    if (!map->slots || !map->bloom)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer: no memory for the %s map",
                            what);
    map->mask = cap - 1;
    for (i = 0; i < cap; i++) map->slots[2 * i] = -1;
    memset(map->bloom, 0, (map->bloom_mask + 1) * sizeof(uint64_t));
    for (id = 0; id < tok->n_pieces; id++) {
        uint64_t h;
        if (!(type_mask & (1u << tok->types[id]))) continue;
        if (gemini__tok_map_find(tok, map, tok->pieces[id], tok->piece_lengths[id]) >= 0)
            return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: piece %d \"%.*s\" is defined "
                                "twice", (int)id,
                                (int)(tok->piece_lengths[id] < 40 ? tok->piece_lengths[id] : 40),
                                tok->pieces[id]);
        h = gemini__tok_hash(tok->pieces[id], tok->piece_lengths[id]);
        map->bloom[(h >> 6) & map->bloom_mask] |= (uint64_t)1 << (h & 63);
        map->bloom[(h >> 38) & map->bloom_mask] |= (uint64_t)1 << ((h >> 20) & 63);
        i = (size_t)(h >> 32) & map->mask;
        while (map->slots[2 * i] >= 0) i = (i + 1) & map->mask;
        map->slots[2 * i] = id;
        map->slots[2 * i + 1] = (int32_t)(uint32_t)h;
    }
    return GEMINI_OK;
}

static void gemini__tok_map_free(gemini__tok_map *map)
{
    GEMINI_FREE(map->slots);
    GEMINI_FREE(map->bloom);
    memset(map, 0, sizeof *map);
}

static gemini_result gemini__tok_trie_build(gemini__tok_trie *t, const gemini_tok *tok,
                                            unsigned type_mask)
{
    size_t total = 1, cap = 16, i;
    int32_t id;
    for (id = 0; id < tok->n_pieces; id++)
        if (type_mask & (1u << tok->types[id])) total += tok->piece_lengths[id];
    if (total >= ((size_t)1 << 24))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "tokenizer: pieces too long for the trie "
                            "(%zu bytes)", total);
    while (cap < total * 2) cap *= 2;
    t->keys = (uint32_t *)gemini__tok_malloc_array(cap, sizeof(uint32_t));
    t->children = (uint32_t *)gemini__tok_malloc_array(cap, sizeof(uint32_t));
    t->node_value = (int32_t *)gemini__tok_malloc_array(total, sizeof(int32_t));
    if (!t->keys || !t->children || !t->node_value)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer: no memory for a trie");
    memset(t->keys, 0, cap * sizeof(uint32_t));
    t->mask = cap - 1;
    t->n_nodes = 1;
    t->node_value[0] = -1;
    for (id = 0; id < tok->n_pieces; id++) {
        uint32_t node = 0;
        const unsigned char *s = (const unsigned char *)tok->pieces[id];
        if (!(type_mask & (1u << tok->types[id]))) continue;
        for (i = 0; i < tok->piece_lengths[id]; i++) {
            int64_t child = gemini__tok_trie_child(t, node, s[i]);
            if (child < 0) {
                uint32_t key = node * 256u + s[i] + 1u;
                size_t slot = gemini__tok_trie_slot(t, key);
                while (t->keys[slot] != 0) slot = (slot + 1) & t->mask;
                t->keys[slot] = key;
                t->children[slot] = t->n_nodes;
                t->node_value[t->n_nodes] = -1;
                child = t->n_nodes++;
            }
            node = (uint32_t)child;
        }
        if (t->node_value[node] < 0) t->node_value[node] = id;
    }
    return GEMINI_OK;
}

/* ---- Precompiled charsmap (darts-clone double array) ----------------------------------- */

/* Facts of the format: each unit is a little-endian u32. label = unit & 0x800000FF (a leaf
   unit has the top bit set, so it never equals a byte), has_leaf = bit 8, value = low 31 bits
   of the leaf unit, offset = (unit >> 10) << (bit 9 ? 8 : 0). From the root, a child for byte
   c sits at node ^ offset ^ c and must carry label c; after moving, the leaf of the node (if
   has_leaf) is at node ^ offset. The value is a byte offset into the string pool that
   follows the array. */
static size_t gemini__tok_charsmap_match(const gemini_tok *tok, const unsigned char *s,
                                         size_t n, const char **out, size_t *out_len)
{
    const uint32_t *units = tok->cm_units;
    size_t n_units = tok->cm_n_units, i, best = 0;
    uint32_t node, unit, best_value = 0;
    if (!units || n_units == 0) return 0;
    unit = units[0];
    node = (unit >> 10) << ((unit & (1u << 9)) >> 6);
    for (i = 0; i < n; i++) {
        node ^= s[i];
        if (node >= n_units) break;
        unit = units[node];
        if ((unit & 0x800000FFu) != s[i]) break;
        node ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
        if ((unit >> 8) & 1u) {
            if (node >= n_units) break;
            best = i + 1;
            best_value = units[node] & 0x7FFFFFFFu;
        }
    }
    if (best == 0 || best_value >= tok->cm_strings_size) return 0;
    *out = tok->cm_strings + best_value;
    {
        const char *end = (const char *)memchr(*out, 0, tok->cm_strings_size - best_value);
        *out_len = end ? (size_t)(end - *out) : tok->cm_strings_size - best_value;
    }
    return best;
}

static gemini_result gemini__tok_charsmap_init(gemini_tok *tok, const uint8_t *blob,
                                               size_t size)
{
    uint32_t trie_size;
    size_t i;
    if (!blob || size == 0) return GEMINI_OK;
    if (size <= 4)
        return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: charsmap of %zu bytes is broken",
                            size);
    trie_size = (uint32_t)blob[0] | ((uint32_t)blob[1] << 8) | ((uint32_t)blob[2] << 16) |
                ((uint32_t)blob[3] << 24);
    if (trie_size >= size - 4 + 1 || trie_size < 4 || trie_size % 4 != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: charsmap trie size %u does not fit "
                            "its %zu bytes", (unsigned)trie_size, size);
    tok->charsmap = (uint8_t *)gemini__tok_malloc_array(size, 1);
    tok->cm_n_units = trie_size / 4;
    tok->cm_units = (uint32_t *)gemini__tok_malloc_array(tok->cm_n_units, sizeof(uint32_t));
    if (!tok->charsmap || !tok->cm_units)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer: no memory for the charsmap");
    memcpy(tok->charsmap, blob, size);
    tok->charsmap_size = size;
    for (i = 0; i < tok->cm_n_units; i++) {
        const uint8_t *u = blob + 4 + i * 4;
        tok->cm_units[i] = (uint32_t)u[0] | ((uint32_t)u[1] << 8) | ((uint32_t)u[2] << 16) |
                           ((uint32_t)u[3] << 24);
    }
    tok->cm_strings = (const char *)tok->charsmap + 4 + trie_size;
    tok->cm_strings_size = size - 4 - trie_size;
    return GEMINI_OK;
}

/* ---- Construction ------------------------------------------------------------------------ */

static int gemini__tok_byte_of_piece(const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *hi, *lo;
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    hi = p[3] ? strchr(hex, p[3]) : NULL;
    lo = p[4] ? strchr(hex, p[4]) : NULL;
    if (!hi || !lo) return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

GEMINI_API void gemini_tok_free(gemini_tok *tok)
{
    if (!tok) return;
    GEMINI_FREE(tok->blob);
    GEMINI_FREE((void *)tok->pieces);
    GEMINI_FREE(tok->piece_lengths);
    GEMINI_FREE(tok->scores);
    GEMINI_FREE(tok->types);
    GEMINI_FREE(tok->unk_surface);
    GEMINI_FREE(tok->charsmap);
    GEMINI_FREE(tok->cm_units);
    gemini__tok_map_free(&tok->normal_map);
    gemini__tok_map_free(&tok->reserved_map);
    gemini__tok_trie_free(&tok->piece_trie);
    gemini__tok_trie_free(&tok->user_trie);
    gemini__tok_trie_free(&tok->special_trie);
    GEMINI_FREE(tok->merges);
    GEMINI_FREE(tok->merge_result);
    GEMINI_FREE(tok->merge_keys);
    GEMINI_FREE(tok->merge_ranks);
    GEMINI_FREE(tok);
}

#define GEMINI__TOK_NORMAL_MASK ((1u << GEMINI_TOK_NORMAL) | (1u << GEMINI_TOK_USER_DEFINED) | \
                                 (1u << GEMINI_TOK_UNUSED))
#define GEMINI__TOK_RESERVED_MASK ((1u << GEMINI_TOK_CONTROL) | (1u << GEMINI_TOK_UNKNOWN) | \
                                   (1u << GEMINI_TOK_BYTE))

static gemini_result gemini__tok_check_special(const gemini_tok *tok, int32_t id,
                                               const char *name)
{
    if (id < -1 || id >= tok->n_pieces)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "tokenizer: %s %d is out of range "
                            "[-1, %d)", name, (int)id, (int)tok->n_pieces);
    return GEMINI_OK;
}

static gemini_result gemini__tok_bytebpe_init(gemini_tok *tok, const int32_t *merges,
                                              int32_t n_merges);

/* The common constructor; unk_surface may be NULL (SentencePiece's default " ⁇ "). merges
   and n_merges are for GEMINI_TOK_BYTE_BPE only (d->model_type says which). */
static gemini_result gemini__tok_create(const gemini_tok_spm_desc *d, const char *unk_surface,
                                        size_t unk_surface_len, const int32_t *merges,
                                        int32_t n_merges, gemini_tok **out)
{
    gemini_tok *tok;
    gemini_result r;
    size_t total = 0, pos = 0;
    int32_t i, n_unknown = 0;
    int byte_count = 0;
    int byte_level;

    if (!out) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "tokenizer: out is NULL");
    *out = NULL;
    if (!d || !d->pieces || !d->piece_lengths || !d->scores || !d->types || d->n_pieces <= 0)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "tokenizer: the description lacks "
                            "pieces, lengths, scores or types, or has no pieces");
    if (d->model_type != GEMINI_TOK_BPE && d->model_type != GEMINI_TOK_UNIGRAM &&
        d->model_type != GEMINI_TOK_BYTE_BPE)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "tokenizer: model type %d is not "
                            "supported (only SentencePiece BPE and unigram, byte-level BPE)",
                            (int)d->model_type);
    byte_level = d->model_type == GEMINI_TOK_BYTE_BPE;
    for (i = 0; i < d->n_pieces; i++) {
        /* A byte-level vocabulary may hold an empty NORMAL piece (Whisper's id 50256): it is
           never produced and decodes to nothing. */
        if (!d->pieces[i] || (d->piece_lengths[i] == 0 &&
                              !(byte_level && d->types[i] == GEMINI_TOK_NORMAL)))
            return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: piece %d is empty", (int)i);
        if (d->types[i] < 1 || d->types[i] > 6 ||
            (byte_level && d->types[i] != GEMINI_TOK_NORMAL && d->types[i] != GEMINI_TOK_CONTROL
             && d->types[i] != GEMINI_TOK_USER_DEFINED))
            return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: piece %d has type %d (want %s)",
                                (int)i, (int)d->types[i], byte_level ? "1, 3 or 4" : "1..6");
        if (d->piece_lengths[i] > 0xFFFFFFu)
            return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: piece %d is %u bytes long",
                                (int)i, (unsigned)d->piece_lengths[i]);
        total += (size_t)d->piece_lengths[i] + 1;
    }

    tok = (gemini_tok *)GEMINI_MALLOC(sizeof *tok);
    if (!tok) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer: no memory");
    memset(tok, 0, sizeof *tok);
    tok->model_type = d->model_type;
    tok->n_pieces = d->n_pieces;
    tok->blob = (char *)gemini__tok_malloc_array(total, 1);
    tok->pieces = (const char **)gemini__tok_malloc_array((size_t)d->n_pieces, sizeof(char *));
    tok->piece_lengths = (uint32_t *)gemini__tok_malloc_array((size_t)d->n_pieces, 4);
    tok->scores = (float *)gemini__tok_malloc_array((size_t)d->n_pieces, sizeof(float));
    tok->types = (uint8_t *)gemini__tok_malloc_array((size_t)d->n_pieces, 1);
    if (!unk_surface) {
        unk_surface = " \xE2\x81\x87 ";
        unk_surface_len = 5;
    }
    tok->unk_surface = (char *)gemini__tok_malloc_array(unk_surface_len + 1, 1);
    if (!tok->blob || !tok->pieces || !tok->piece_lengths || !tok->scores || !tok->types ||
        !tok->unk_surface) {
        gemini_tok_free(tok);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer: no memory for %d pieces",
                            (int)d->n_pieces);
    }
    memcpy(tok->unk_surface, unk_surface, unk_surface_len);
    tok->unk_surface[unk_surface_len] = 0;
    tok->unk_surface_len = unk_surface_len;

    /* Copy the pieces and find the one UNKNOWN piece, the byte pieces and the score range. */
    tok->min_score = FLT_MAX;
    tok->max_score = FLT_MIN;
    tok->unk_id = -1;
    for (i = 0; i < 256; i++) tok->byte_ids[i] = -1;
    for (i = 0; i < d->n_pieces; i++) {
        memcpy(tok->blob + pos, d->pieces[i], d->piece_lengths[i]);
        tok->blob[pos + d->piece_lengths[i]] = 0;
        tok->pieces[i] = tok->blob + pos;
        pos += (size_t)d->piece_lengths[i] + 1;
        tok->piece_lengths[i] = d->piece_lengths[i];
        tok->scores[i] = d->scores[i];
        tok->types[i] = d->types[i];
        if (d->types[i] == GEMINI_TOK_NORMAL) {
            if (d->scores[i] < tok->min_score) tok->min_score = d->scores[i];
            if (d->scores[i] > tok->max_score) tok->max_score = d->scores[i];
        }
        if (d->types[i] == GEMINI_TOK_UNUSED) tok->has_unused = 1;
        if (d->types[i] == GEMINI_TOK_UNKNOWN) {
            n_unknown++;
            tok->unk_id = i;
        }
        if (d->types[i] == GEMINI_TOK_BYTE) {
            int b = gemini__tok_byte_of_piece(tok->pieces[i], tok->piece_lengths[i]);
            if (b < 0 || !d->byte_fallback) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: byte piece %d \"%.20s\" is %s",
                                 (int)i, tok->pieces[i],
                                 b < 0 ? "not <0xNN>" : "present although byte_fallback is off");
                gemini_tok_free(tok);
                return r;
            }
            if (tok->byte_ids[b] < 0) {
                tok->byte_ids[b] = i;
                byte_count++;
            }
        }
    }
    if (!byte_level && (n_unknown != 1 || (d->unk_id >= 0 && d->unk_id != tok->unk_id))) {
        r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: %d pieces of type UNKNOWN (want exactly "
                         "one%s)", (int)n_unknown, n_unknown == 1 ? ", at unk_id" : "");
        gemini_tok_free(tok);
        return r;
    }
    if (d->byte_fallback && byte_count != 256) {
        r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: byte_fallback is on but only %d of the "
                         "256 <0xNN> pieces exist", byte_count);
        gemini_tok_free(tok);
        return r;
    }
    tok->bos_id = d->bos_id;
    tok->eos_id = d->eos_id;
    tok->pad_id = d->pad_id;
    if (!byte_level) {
        tok->add_dummy_prefix = d->add_dummy_prefix != 0;
        tok->remove_extra_whitespaces = d->remove_extra_whitespaces != 0;
        tok->escape_whitespaces = d->escape_whitespaces != 0;
        tok->treat_whitespace_as_suffix = d->treat_whitespace_as_suffix != 0;
        tok->byte_fallback = d->byte_fallback != 0;
    }

    r = gemini__tok_check_special(tok, d->bos_id, "bos_id");
    if (r == GEMINI_OK) r = gemini__tok_check_special(tok, d->eos_id, "eos_id");
    if (r == GEMINI_OK) r = gemini__tok_check_special(tok, d->pad_id, "pad_id");
    if (r == GEMINI_OK && !byte_level)
        r = gemini__tok_charsmap_init(tok, d->charsmap, d->charsmap_size);
    if (r == GEMINI_OK)
        r = gemini__tok_map_build(&tok->normal_map, tok, GEMINI__TOK_NORMAL_MASK, "piece");
    if (r == GEMINI_OK)
        r = gemini__tok_map_build(&tok->reserved_map, tok, GEMINI__TOK_RESERVED_MASK,
                                  "reserved piece");
    for (i = 0; r == GEMINI_OK && i < tok->n_pieces; i++)
        if ((GEMINI__TOK_RESERVED_MASK & (1u << tok->types[i])) &&
            gemini__tok_map_find(tok, &tok->normal_map, tok->pieces[i], tok->piece_lengths[i]) >= 0)
            tok->maps_overlap = 1;
    if (r == GEMINI_OK && tok->model_type == GEMINI_TOK_UNIGRAM)
        r = gemini__tok_trie_build(&tok->piece_trie, tok, GEMINI__TOK_NORMAL_MASK);
    if (r == GEMINI_OK && !byte_level)
        r = gemini__tok_trie_build(&tok->user_trie, tok, 1u << GEMINI_TOK_USER_DEFINED);
    if (r == GEMINI_OK)
        r = gemini__tok_trie_build(&tok->special_trie, tok, (1u << GEMINI_TOK_CONTROL) |
                                   (1u << (byte_level ? GEMINI_TOK_USER_DEFINED :
                                           GEMINI_TOK_UNKNOWN)));
    if (r == GEMINI_OK && byte_level) r = gemini__tok_bytebpe_init(tok, merges, n_merges);
    if (r != GEMINI_OK) {
        gemini_tok_free(tok);
        return r;
    }
    *out = tok;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_tok_create_spm(const gemini_tok_spm_desc *desc,
                                               gemini_tok **out)
{
    if (desc && desc->model_type == GEMINI_TOK_BYTE_BPE) {
        if (out) *out = NULL;
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_create_spm: a byte-level "
                            "BPE model needs gemini_tok_create_bpe (it has merges)");
    }
    return gemini__tok_create(desc, NULL, 0, NULL, 0, out);
}

GEMINI_API gemini_result gemini_tok_create_bpe(const gemini_tok_bpe_desc *desc,
                                               gemini_tok **out)
{
    gemini_tok_spm_desc d;
    float *scores;
    gemini_result r;
    if (!out) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "tokenizer: out is NULL");
    *out = NULL;
    if (!desc || !desc->pieces || !desc->piece_lengths || !desc->types || desc->n_pieces <= 0 ||
        desc->n_merges < 0 || (desc->n_merges > 0 && !desc->merges))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_create_bpe: the "
                            "description lacks pieces, lengths, types or merges");
    /* Scores carry no meaning here; they are zero. */
    scores = (float *)gemini__tok_malloc_array((size_t)desc->n_pieces, sizeof(float));
    if (!scores) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer: no memory");
    memset(scores, 0, (size_t)desc->n_pieces * sizeof(float));
    memset(&d, 0, sizeof d);
    d.model_type = GEMINI_TOK_BYTE_BPE;
    d.n_pieces = desc->n_pieces;
    d.pieces = desc->pieces;
    d.piece_lengths = desc->piece_lengths;
    d.scores = scores;
    d.types = desc->types;
    d.unk_id = -1;
    d.bos_id = desc->bos_id;
    d.eos_id = desc->eos_id;
    d.pad_id = desc->pad_id;
    r = gemini__tok_create(&d, NULL, 0, desc->merges, desc->n_merges, out);
    GEMINI_FREE(scores);
    return r;
}

/* ---- Accessors --------------------------------------------------------------------------- */

GEMINI_API const char *gemini_tok_piece(const gemini_tok *tok, int32_t id, size_t *len)
{
    if (!tok || id < 0 || id >= tok->n_pieces) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = tok->piece_lengths[id];
    return tok->pieces[id];
}

GEMINI_API int32_t gemini_tok_id_of(const gemini_tok *tok, const char *piece, size_t len)
{
    int32_t id;
    if (!tok || (!piece && len)) return -1;
    id = gemini__tok_map_find(tok, &tok->reserved_map, piece, len);
    if (id < 0) id = gemini__tok_map_find(tok, &tok->normal_map, piece, len);
    return id;
}

GEMINI_API float gemini_tok_score(const gemini_tok *tok, int32_t id)
{
    return (tok && id >= 0 && id < tok->n_pieces) ? tok->scores[id] : 0.0f;
}

GEMINI_API int gemini_tok_piece_type(const gemini_tok *tok, int32_t id)
{
    return (tok && id >= 0 && id < tok->n_pieces) ? tok->types[id] : 0;
}

GEMINI_API int32_t gemini_tok_vocab_size(const gemini_tok *tok) { return tok ? tok->n_pieces : 0; }
GEMINI_API int gemini_tok_model_type(const gemini_tok *tok) { return tok ? tok->model_type : 0; }
GEMINI_API int32_t gemini_tok_unk_id(const gemini_tok *tok) { return tok ? tok->unk_id : -1; }
GEMINI_API int32_t gemini_tok_bos_id(const gemini_tok *tok) { return tok ? tok->bos_id : -1; }
GEMINI_API int32_t gemini_tok_eos_id(const gemini_tok *tok) { return tok ? tok->eos_id : -1; }
GEMINI_API int32_t gemini_tok_pad_id(const gemini_tok *tok) { return tok ? tok->pad_id : -1; }

GEMINI_API void gemini_tok_describe(const gemini_tok *tok, gemini_tok_spm_desc *d)
{
    if (!d) return;
    memset(d, 0, sizeof *d);
    if (!tok) return;
    d->model_type = tok->model_type;
    d->n_pieces = tok->n_pieces;
    d->pieces = tok->pieces;
    d->piece_lengths = tok->piece_lengths;
    d->scores = tok->scores;
    d->types = tok->types;
    d->unk_id = tok->unk_id;
    d->bos_id = tok->bos_id;
    d->eos_id = tok->eos_id;
    d->pad_id = tok->pad_id;
    d->add_dummy_prefix = tok->add_dummy_prefix;
    d->remove_extra_whitespaces = tok->remove_extra_whitespaces;
    d->escape_whitespaces = tok->escape_whitespaces;
    d->treat_whitespace_as_suffix = tok->treat_whitespace_as_suffix;
    d->byte_fallback = tok->byte_fallback;
    d->charsmap = tok->charsmap;
    d->charsmap_size = tok->charsmap_size;
}

GEMINI_API void gemini_tok_describe_bpe(const gemini_tok *tok, gemini_tok_bpe_desc *d)
{
    if (!d) return;
    memset(d, 0, sizeof *d);
    if (!tok || tok->model_type != GEMINI_TOK_BYTE_BPE) return;
    d->n_pieces = tok->n_pieces;
    d->pieces = tok->pieces;
    d->piece_lengths = tok->piece_lengths;
    d->types = tok->types;
    d->n_merges = tok->n_merges;
    d->merges = tok->merges;
    d->bos_id = tok->bos_id;
    d->eos_id = tok->eos_id;
    d->pad_id = tok->pad_id;
}

/* ---- Encoding: per-call work space -------------------------------------------------------- */

/* One output token. start/len locate its text in the normalised buffer; start == NONE means
   the vocabulary piece itself (byte pieces, BOS, EOS, specials). */
typedef struct gemini__tok_item {
    int32_t id;
    uint32_t start, len;
} gemini__tok_item;

typedef struct gemini__tok_symbol {
    int32_t prev, next;   /* -1 at the ends */
    int32_t id;           /* piece id once merged, -1 before (found at the end) */
    uint32_t start, len;  /* len 0: absorbed by its left neighbour */
    int freeze;           /* a user-defined symbol: never merged */
} gemini__tok_symbol;

typedef struct gemini__tok_pair {
    float score;
    int32_t left, right;
    uint32_t size;
    int32_t id;           /* the piece the pair makes */
} gemini__tok_pair;

typedef struct gemini__tok_best {
    float score;
    int32_t start;        /* -1: not reached yet */
    int32_t id;
} gemini__tok_best;

typedef struct gemini__tok_work {
    gemini__tok_buf norm;         /* normalised text of every segment, one after another */
    gemini__tok_item *items;
    size_t n_items, cap_items;
    gemini__tok_symbol *symbols;
    size_t cap_symbols;
    gemini__tok_pair *heap;
    size_t n_heap, cap_heap;
    gemini__tok_best *best;
    size_t cap_best;
    int32_t *split_keys;          /* BPE: UNUSED piece id -> byte length of its left part */
    uint32_t *split_values;
    size_t split_mask, n_split;
    int failed;
} gemini__tok_work;

static void gemini__tok_work_free(gemini__tok_work *w)
{
    gemini__tok_buf_free(&w->norm);
    GEMINI_FREE(w->items);
    GEMINI_FREE(w->symbols);
    GEMINI_FREE(w->heap);
    GEMINI_FREE(w->best);
    GEMINI_FREE(w->split_keys);
    GEMINI_FREE(w->split_values);
}

/* Grows *array to hold at least need elements of size bytes; sets w->failed on failure. */
static int gemini__tok_grow(gemini__tok_work *w, void **array, size_t *cap, size_t need,
                            size_t size)
{
    size_t new_cap;
    void *p;
    if (w->failed) return 0;
    if (need <= *cap) return 1;
    new_cap = *cap ? *cap : 16;
    while (new_cap < need) new_cap *= 2;
    if (new_cap > ((size_t)-1) / size) { w->failed = 1; return 0; }
    p = GEMINI_REALLOC(*array, new_cap * size);
    if (!p) { w->failed = 1; return 0; }
    *array = p;
    *cap = new_cap;
    return 1;
}

static void gemini__tok_emit(gemini__tok_work *w, int32_t id, uint32_t start, uint32_t len)
{
    void *items = w->items;
    if (!gemini__tok_grow(w, &items, &w->cap_items, w->n_items + 1, sizeof(gemini__tok_item)))
        return;
    w->items = (gemini__tok_item *)items;
    w->items[w->n_items].id = id;
    w->items[w->n_items].start = start;
    w->items[w->n_items].len = len;
    w->n_items++;
}

/* ---- Normaliser (SentencePiece Normalizer::Normalize) ------------------------------------ */

/* One step of normalisation at the start of s[0..n): the replacement text and the number of
   input bytes it consumes. Order: a user-defined piece (longest, copied as is), the longest
   charsmap rule, one valid UTF-8 character, else U+FFFD for one bad byte. */
static size_t gemini__tok_normalize_prefix(const gemini_tok *tok, const char *s, size_t n,
                                           const char **out, size_t *out_len)
{
    size_t len;
    len = gemini__tok_trie_longest(&tok->user_trie, s, n, NULL);
    if (len > 0) {
        *out = s;
        *out_len = len;
        return len;
    }
    len = gemini__tok_charsmap_match(tok, (const unsigned char *)s, n, out, out_len);
    if (len > 0) return len;
    len = gemini__tok_utf8_valid((const unsigned char *)s, n);
    if (len == 0) {
        *out = gemini__tok_replacement;
        *out_len = 3;
        return 1;
    }
    *out = s;
    *out_len = len;
    return len;
}

static void gemini__tok_add_space(const gemini_tok *tok, gemini__tok_buf *b)
{
    if (tok->escape_whitespaces) gemini__tok_buf_append(b, gemini__tok_space_symbol, 3);
    else gemini__tok_buf_append(b, " ", 1);
}

/* Appends the normalised form of s[0..n) to w->norm. */
static void gemini__tok_normalize(const gemini_tok *tok, const char *s, size_t n,
                                  gemini__tok_work *w)
{
    gemini__tok_buf *b = &w->norm;
    const char *piece;
    size_t piece_len, used, begin = b->len;
    int is_prev_space;

    if (n == 0) return;

    /* Leading spaces go first (a rule that yields exactly " " counts as a space). */
    if (tok->remove_extra_whitespaces) {
        while (n > 0) {
            used = gemini__tok_normalize_prefix(tok, s, n, &piece, &piece_len);
            if (piece_len != 1 || piece[0] != ' ') break;
            s += used;
            n -= used;
        }
    }
    if (n == 0) return;

    if (!tok->treat_whitespace_as_suffix && tok->add_dummy_prefix) gemini__tok_add_space(tok, b);

    is_prev_space = tok->remove_extra_whitespaces;
    while (n > 0) {
        size_t k;
        used = gemini__tok_normalize_prefix(tok, s, n, &piece, &piece_len);

        /* Collapse: drop the spaces that open this chunk when the last one ended with one. */
        while (is_prev_space && piece_len > 0 && piece[0] == ' ') {
            piece++;
            piece_len--;
        }
        if (piece_len > 0) {
            if (!gemini__tok_buf_reserve(b, piece_len * 3)) break;
            for (k = 0; k < piece_len; k++) {
                if (tok->escape_whitespaces && piece[k] == ' ') {
                    memcpy(b->data + b->len, gemini__tok_space_symbol, 3);
                    b->len += 3;
                } else {
                    b->data[b->len++] = piece[k];
                }
            }
            is_prev_space = piece[piece_len - 1] == ' ';
        }
        s += used;
        n -= used;
        if (!tok->remove_extra_whitespaces) is_prev_space = 0;
    }

    if (tok->remove_extra_whitespaces) {
        size_t sp = tok->escape_whitespaces ? 3 : 1;
        const char *space = tok->escape_whitespaces ? gemini__tok_space_symbol : " ";
        while (b->len - begin >= sp && memcmp(b->data + b->len - sp, space, sp) == 0)
            b->len -= sp;
    }
    if (tok->treat_whitespace_as_suffix && tok->add_dummy_prefix) gemini__tok_add_space(tok, b);
    if (b->failed) w->failed = 1;
}

/* ---- Piece lookup (SentencePiece ModelInterface::PieceToId) ----------------------------- */

static int32_t gemini__tok_piece_to_id(const gemini_tok *tok, const char *s, size_t n)
{
    int32_t id = gemini__tok_map_find(tok, &tok->reserved_map, s, n);
    if (id < 0) id = gemini__tok_map_find(tok, &tok->normal_map, s, n);
    return id < 0 ? tok->unk_id : id;
}

/* ---- BPE (SentencePiece bpe::Model) --------------------------------------------------------- */

/* Heap order: higher score first; equal scores: the smaller left index first. */
static int gemini__tok_pair_before(const gemini__tok_pair *a, const gemini__tok_pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void gemini__tok_heap_push(gemini__tok_work *w, gemini__tok_pair p)
{
    void *heap = w->heap;
    size_t i;
    if (!gemini__tok_grow(w, &heap, &w->cap_heap, w->n_heap + 1, sizeof(gemini__tok_pair)))
        return;
    w->heap = (gemini__tok_pair *)heap;
    i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!gemini__tok_pair_before(&p, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = p;
}

static gemini__tok_pair gemini__tok_heap_pop(gemini__tok_work *w)
{
    gemini__tok_pair top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && gemini__tok_pair_before(&w->heap[child + 1], &w->heap[child]))
            child++;
        if (!gemini__tok_pair_before(&w->heap[child], &last)) break;
        w->heap[i] = w->heap[child];
        i = child;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

/* Pushes the merge candidate of the adjacent symbols left and right (if any) onto the heap. */
typedef void (*gemini__tok_candidate_fn)(const gemini_tok *tok, gemini__tok_work *w,
                                         int32_t left, int32_t right);

/* The merge loop shared by SentencePiece BPE and byte-level BPE, which differ only in how a
   pair's candidate is found: pop the best pair, skip it if stale (a symbol was absorbed, len 0,
   or has grown since the pair was pushed, so the sizes no longer add up), merge the right symbol
   into the left, and push the two new neighbour pairs. */
static void gemini__tok_merge_pairs(const gemini_tok *tok, gemini__tok_work *w,
                                    gemini__tok_candidate_fn push_candidate)
{
    while (w->n_heap > 0 && !w->failed) {
        gemini__tok_pair top = gemini__tok_heap_pop(w);
        gemini__tok_symbol *l = &w->symbols[top.left], *r = &w->symbols[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size) continue;
        l->len += r->len;
        l->id = top.id;
        l->next = r->next;
        if (r->next >= 0) w->symbols[r->next].prev = top.left;
        r->len = 0;
        push_candidate(tok, w, l->prev, top.left);
        push_candidate(tok, w, top.left, l->next);
    }
}

/* Remembers how an UNUSED piece was formed (the latest candidate wins, as in SentencePiece's
   rev_merge map), so that it can be split again at the end. */
static void gemini__tok_split_put(gemini__tok_work *w, int32_t id, uint32_t left_len)
{
    size_t i;
    if (w->n_split * 2 >= w->split_mask) {
        size_t cap = w->split_mask ? (w->split_mask + 1) * 2 : 64, k;
        int32_t *keys = (int32_t *)gemini__tok_malloc_array(cap, sizeof(int32_t));
        uint32_t *values = (uint32_t *)gemini__tok_malloc_array(cap, sizeof(uint32_t));
        if (!keys || !values) {
            GEMINI_FREE(keys);
            GEMINI_FREE(values);
            w->failed = 1;
            return;
        }
        for (k = 0; k < cap; k++) keys[k] = -1;
        for (k = 0; w->split_keys && k <= w->split_mask; k++) {
            if (w->split_keys[k] < 0) continue;
            i = ((uint32_t)w->split_keys[k] * 2654435761u) & (cap - 1);
            while (keys[i] >= 0) i = (i + 1) & (cap - 1);
            keys[i] = w->split_keys[k];
            values[i] = w->split_values[k];
        }
        GEMINI_FREE(w->split_keys);
        GEMINI_FREE(w->split_values);
        w->split_keys = keys;
        w->split_values = values;
        w->split_mask = cap - 1;
    }
    i = ((uint32_t)id * 2654435761u) & w->split_mask;
    while (w->split_keys[i] >= 0 && w->split_keys[i] != id) i = (i + 1) & w->split_mask;
    if (w->split_keys[i] < 0) w->n_split++;
    w->split_keys[i] = id;
    w->split_values[i] = left_len;
}

static int gemini__tok_split_get(const gemini__tok_work *w, int32_t id, uint32_t *left_len)
{
    size_t i;
    if (!w->split_keys) return 0;
    i = ((uint32_t)id * 2654435761u) & w->split_mask;
    while (w->split_keys[i] >= 0) {
        if (w->split_keys[i] == id) {
            *left_len = w->split_values[i];
            return 1;
        }
        i = (i + 1) & w->split_mask;
    }
    return 0;
}

static void gemini__tok_bpe_candidate(const gemini_tok *tok, gemini__tok_work *w,
                                      int32_t left, int32_t right)
{
    const gemini__tok_symbol *l, *r;
    gemini__tok_pair p;
    int32_t id;
    if (left < 0 || right < 0) return;
    l = &w->symbols[left];
    r = &w->symbols[right];
    if (l->freeze || r->freeze) return;
    id = gemini__tok_map_find(tok, &tok->normal_map, w->norm.data + l->start, l->len + r->len);
    if (id < 0) return;
    p.score = tok->scores[id];
    p.left = left;
    p.right = right;
    p.size = l->len + r->len;
    p.id = id;
    gemini__tok_heap_push(w, p);
    if (tok->types[id] == GEMINI_TOK_UNUSED) gemini__tok_split_put(w, id, l->len);
}

/* Emits the piece norm[start, start+len), splitting UNUSED pieces back into their parts. */
static void gemini__tok_bpe_resegment(const gemini_tok *tok, gemini__tok_work *w,
                                      uint32_t start, uint32_t len, int32_t known_id, int depth)
{
    uint32_t left_len;
    int32_t id = known_id >= 0 && !tok->maps_overlap ? known_id :
        gemini__tok_piece_to_id(tok, w->norm.data + start, len);
    if (id >= 0 && tok->types[id] == GEMINI_TOK_UNUSED && depth < 64 &&
        gemini__tok_split_get(w, id, &left_len) && left_len > 0 && left_len < len) {
        gemini__tok_bpe_resegment(tok, w, start, left_len, -1, depth + 1);
        gemini__tok_bpe_resegment(tok, w, start + left_len, len - left_len, -1, depth + 1);
        return;
    }
    gemini__tok_emit(w, id, start, len);
}

static void gemini__tok_bpe_encode(const gemini_tok *tok, gemini__tok_work *w, uint32_t begin,
                                   uint32_t end)
{
    const char *s = w->norm.data;
    void *symbols = w->symbols;
    int32_t n = 0, i;
    uint32_t pos = begin;

    if (begin >= end) return;
    if (!gemini__tok_grow(w, &symbols, &w->cap_symbols, end - begin, sizeof(gemini__tok_symbol)))
        return;
    w->symbols = (gemini__tok_symbol *)symbols;
    w->n_heap = 0;
    w->n_split = 0;
    if (w->split_keys) for (i = 0; (size_t)i <= w->split_mask; i++) w->split_keys[i] = -1;

    /* Split into characters; a user-defined piece becomes one frozen symbol. */
    while (pos < end) {
        gemini__tok_symbol *sym = &w->symbols[n];
        size_t len = gemini__tok_trie_longest(&tok->user_trie, s + pos, end - pos, NULL);
        sym->freeze = len > 0;
        if (len == 0) {
            len = gemini__tok_char_len((unsigned char)s[pos]);
            if (len > end - pos) len = end - pos;
        }
        sym->start = pos;
        sym->len = (uint32_t)len;
        sym->id = -1;
        sym->prev = n - 1;
        pos += (uint32_t)len;
        sym->next = pos < end ? n + 1 : -1;
        n++;
    }

    for (i = 1; i < n; i++) gemini__tok_bpe_candidate(tok, w, i - 1, i);

    gemini__tok_merge_pairs(tok, w, gemini__tok_bpe_candidate);

    for (i = 0; i >= 0 && !w->failed; i = w->symbols[i].next)
        gemini__tok_bpe_resegment(tok, w, w->symbols[i].start, w->symbols[i].len,
                                  w->symbols[i].id, 0);
}

/* ---- Unigram (SentencePiece unigram::Model::EncodeOptimized) --------------------------- */

static void gemini__tok_unigram_encode(const gemini_tok *tok, gemini__tok_work *w,
                                       uint32_t begin, uint32_t end)
{
    const gemini__tok_trie *trie = &tok->piece_trie;
    const char *s;
    const uint32_t size = end - begin;
    const float unk_score = tok->min_score - 10.0f;
    void *best_mem = w->best;
    gemini__tok_best *best;
    uint32_t starts_at = 0, i, ends_at, first;

    if (begin >= end) return; /* nothing to do; norm.data may even be NULL */
    s = w->norm.data + begin;
    if (!gemini__tok_grow(w, &best_mem, &w->cap_best, (size_t)size + 1, sizeof(gemini__tok_best)))
        return;
    best = w->best = (gemini__tok_best *)best_mem;
    for (i = 0; i <= size; i++) {
        best[i].score = 0.0f;
        best[i].start = -1;
        best[i].id = -1;
    }

    while (starts_at < size) {
        const float best_here = best[starts_at].score;
        uint32_t mblen = (uint32_t)gemini__tok_char_len((unsigned char)s[starts_at]);
        uint32_t node = 0, key_pos = starts_at;
        int has_single_node = 0;
        if (mblen > size - starts_at) mblen = size - starts_at;

        /* Every piece that starts here is an edge; the scores follow the reference's
           arithmetic exactly (user-defined bonus in double, comparisons on the sum). */
        while (key_pos < size) {
            int64_t child = trie->n_nodes > 1 ?
                gemini__tok_trie_child(trie, node, (unsigned char)s[key_pos]) : -1;
            int32_t id;
            if (child < 0) break;
            node = (uint32_t)child;
            key_pos++;
            id = trie->node_value[node];
            if (id >= 0 && tok->types[id] != GEMINI_TOK_UNUSED) {
                gemini__tok_best *target = &best[key_pos];
                const uint32_t length = key_pos - starts_at;
                const double score = tok->types[id] == GEMINI_TOK_USER_DEFINED ?
                    (double)((float)length * tok->max_score) - 0.1 : (double)tok->scores[id];
                const double candidate = score + (double)best_here;
                if (target->start == -1 || candidate > (double)target->score) {
                    target->score = (float)candidate;
                    target->start = (int32_t)starts_at;
                    target->id = id;
                }
                if (!has_single_node && length == mblen) has_single_node = 1;
            }
        }
        if (!has_single_node) {
            gemini__tok_best *target = &best[starts_at + mblen];
            const float candidate = unk_score + best_here;
            if (target->start == -1 || candidate > target->score) {
                target->score = candidate;
                target->start = (int32_t)starts_at;
                target->id = tok->unk_id;
            }
        }
        starts_at += mblen;
    }

    /* Backtrack, then emit in order (reusing the best array's start fields as a chain). */
    first = (uint32_t)w->n_items;
    for (ends_at = size; ends_at > 0; ends_at = (uint32_t)best[ends_at].start)
        gemini__tok_emit(w, best[ends_at].id, begin + (uint32_t)best[ends_at].start,
                         ends_at - (uint32_t)best[ends_at].start);
    if (w->failed) return;
    for (i = 0; first + i < (uint32_t)w->n_items - 1 - i; i++) {
        gemini__tok_item t = w->items[first + i];
        w->items[first + i] = w->items[w->n_items - 1 - i];
        w->items[w->n_items - 1 - i] = t;
    }
}

/* ---- Byte-level BPE (GPT-2 style; Whisper) ---------------------------------------------- */

/* The GPT-2 pre-tokenisation pattern needs the Unicode classes letter (\p{L}: Lu Ll Lt Lm Lo)
   and number (\p{N}: Nd Nl No). The table lists each code point where the class changes as
   start << 2 | class (0 other, 1 letter, 2 number); a class holds up to the next entry. */
/* BEGIN generated by tests/tokenizer/gen_unicode_classes.py */
/* Unicode 14.0.0: 1515 class changes. */
#define GEMINI__TOK_UNICODE_VERSION "14.0.0"
static const uint32_t gemini__tok_class_table[] = {
    0x00000C2u, 0x00000E8u, 0x0000105u, 0x000016Cu, 0x0000185u, 0x00001ECu, 0x00002A9u, 0x00002ACu,
    0x00002CAu, 0x00002D0u, 0x00002D5u, 0x00002D8u, 0x00002E6u, 0x00002E9u, 0x00002ECu, 0x00002F2u,
    0x00002FCu, 0x0000301u, 0x000035Cu, 0x0000361u, 0x00003DCu, 0x00003E1u, 0x0000B08u, 0x0000B19u,
    0x0000B48u, 0x0000B81u, 0x0000B94u, 0x0000BB1u, 0x0000BB4u, 0x0000BB9u, 0x0000BBCu, 0x0000DC1u,
    0x0000DD4u, 0x0000DD9u, 0x0000DE0u, 0x0000DE9u, 0x0000DF8u, 0x0000DFDu, 0x0000E00u, 0x0000E19u,
    0x0000E1Cu, 0x0000E21u, 0x0000E2Cu, 0x0000E31u, 0x0000E34u, 0x0000E39u, 0x0000E88u, 0x0000E8Du,
    0x0000FD8u, 0x0000FDDu, 0x0001208u, 0x0001229u, 0x00014C0u, 0x00014C5u, 0x000155Cu, 0x0001565u,
    0x0001568u, 0x0001581u, 0x0001624u, 0x0001741u, 0x00017ACu, 0x00017BDu, 0x00017CCu, 0x0001881u,
    0x000192Cu, 0x0001982u, 0x00019A8u, 0x00019B9u, 0x00019C0u, 0x00019C5u, 0x0001B50u, 0x0001B55u,
    0x0001B58u, 0x0001B95u, 0x0001B9Cu, 0x0001BB9u, 0x0001BC2u, 0x0001BE9u, 0x0001BF4u, 0x0001BFDu,
    0x0001C00u, 0x0001C41u, 0x0001C44u, 0x0001C49u, 0x0001CC0u, 0x0001D35u, 0x0001E98u, 0x0001EC5u,
    0x0001EC8u, 0x0001F02u, 0x0001F29u, 0x0001FACu, 0x0001FD1u, 0x0001FD8u, 0x0001FE9u, 0x0001FECu,
    0x0002001u, 0x0002058u, 0x0002069u, 0x000206Cu, 0x0002091u, 0x0002094u, 0x00020A1u, 0x00020A4u,
    0x0002101u, 0x0002164u, 0x0002181u, 0x00021ACu, 0x00021C1u, 0x0002220u, 0x0002225u, 0x000223Cu,
    0x0002281u, 0x0002328u, 0x0002411u, 0x00024E8u, 0x00024F5u, 0x00024F8u, 0x0002541u, 0x0002544u,
    0x0002561u, 0x0002588u, 0x000259Au, 0x00025C0u, 0x00025C5u, 0x0002604u, 0x0002615u, 0x0002634u,
    0x000263Du, 0x0002644u, 0x000264Du, 0x00026A4u, 0x00026A9u, 0x00026C4u, 0x00026C9u, 0x00026CCu,
    0x00026D9u, 0x00026E8u, 0x00026F5u, 0x00026F8u, 0x0002739u, 0x000273Cu, 0x0002771u, 0x0002778u,
    0x000277Du, 0x0002788u, 0x000279Au, 0x00027C1u, 0x00027C8u, 0x00027D2u, 0x00027E8u, 0x00027F1u,
    0x00027F4u, 0x0002815u, 0x000282Cu, 0x000283Du, 0x0002844u, 0x000284Du, 0x00028A4u, 0x00028A9u,
    0x00028C4u, 0x00028C9u, 0x00028D0u, 0x00028D5u, 0x00028DCu, 0x00028E1u, 0x00028E8u, 0x0002965u,
    0x0002974u, 0x0002979u, 0x000297Cu, 0x000299Au, 0x00029C0u, 0x00029C9u, 0x00029D4u, 0x0002A15u,
    0x0002A38u, 0x0002A3Du, 0x0002A48u, 0x0002A4Du, 0x0002AA4u, 0x0002AA9u, 0x0002AC4u, 0x0002AC9u,
    0x0002AD0u, 0x0002AD5u, 0x0002AE8u, 0x0002AF5u, 0x0002AF8u, 0x0002B41u, 0x0002B44u, 0x0002B81u,
    0x0002B88u, 0x0002B9Au, 0x0002BC0u, 0x0002BE5u, 0x0002BE8u, 0x0002C15u, 0x0002C34u, 0x0002C3Du,
    0x0002C44u, 0x0002C4Du, 0x0002CA4u, 0x0002CA9u, 0x0002CC4u, 0x0002CC9u, 0x0002CD0u, 0x0002CD5u,
    0x0002CE8u, 0x0002CF5u, 0x0002CF8u, 0x0002D71u, 0x0002D78u, 0x0002D7Du, 0x0002D88u, 0x0002D9Au,
    0x0002DC0u, 0x0002DC5u, 0x0002DCAu, 0x0002DE0u, 0x0002E0Du, 0x0002E10u, 0x0002E15u, 0x0002E2Cu,
    0x0002E39u, 0x0002E44u, 0x0002E49u, 0x0002E58u, 0x0002E65u, 0x0002E6Cu, 0x0002E71u, 0x0002E74u,
    0x0002E79u, 0x0002E80u, 0x0002E8Du, 0x0002E94u, 0x0002EA1u, 0x0002EACu, 0x0002EB9u, 0x0002EE8u,
    0x0002F41u, 0x0002F44u, 0x0002F9Au, 0x0002FCCu, 0x0003015u, 0x0003034u, 0x0003039u, 0x0003044u,
    0x0003049u, 0x00030A4u, 0x00030A9u, 0x00030E8u, 0x00030F5u, 0x00030F8u, 0x0003161u, 0x000316Cu,
    0x0003175u, 0x0003178u, 0x0003181u, 0x0003188u, 0x000319Au, 0x00031C0u, 0x00031E2u, 0x00031FCu,
    0x0003201u, 0x0003204u, 0x0003215u, 0x0003234u, 0x0003239u, 0x0003244u, 0x0003249u, 0x00032A4u,
    0x00032A9u, 0x00032D0u, 0x00032D5u, 0x00032E8u, 0x00032F5u, 0x00032F8u, 0x0003375u, 0x000337Cu,
    0x0003381u, 0x0003388u, 0x000339Au, 0x00033C0u, 0x00033C5u, 0x00033CCu, 0x0003411u, 0x0003434u,
    0x0003439u, 0x0003444u, 0x0003449u, 0x00034ECu, 0x00034F5u, 0x00034F8u, 0x0003539u, 0x000353Cu,
    0x0003551u, 0x000355Cu, 0x0003562u, 0x000357Du, 0x0003588u, 0x000359Au, 0x00035E4u, 0x00035E9u,
    0x0003600u, 0x0003615u, 0x000365Cu, 0x0003669u, 0x00036C8u, 0x00036CDu, 0x00036F0u, 0x00036F5u,
    0x00036F8u, 0x0003701u, 0x000371Cu, 0x000379Au, 0x00037C0u, 0x0003805u, 0x00038C4u, 0x00038C9u,
    0x00038D0u, 0x0003901u, 0x000391Cu, 0x0003942u, 0x0003968u, 0x0003A05u, 0x0003A0Cu, 0x0003A11u,
    0x0003A14u, 0x0003A19u, 0x0003A2Cu, 0x0003A31u, 0x0003A90u, 0x0003A95u, 0x0003A98u, 0x0003A9Du,
    0x0003AC4u, 0x0003AC9u, 0x0003AD0u, 0x0003AF5u, 0x0003AF8u, 0x0003B01u, 0x0003B14u, 0x0003B19u,
    0x0003B1Cu, 0x0003B42u, 0x0003B68u, 0x0003B71u, 0x0003B80u, 0x0003C01u, 0x0003C04u, 0x0003C82u,
    0x0003CD0u, 0x0003D01u, 0x0003D20u, 0x0003D25u, 0x0003DB4u, 0x0003E21u, 0x0003E34u, 0x0004001u,
    0x00040ACu, 0x00040FDu, 0x0004102u, 0x0004128u, 0x0004141u, 0x0004158u, 0x0004169u, 0x0004178u,
    0x0004185u, 0x0004188u, 0x0004195u, 0x000419Cu, 0x00041B9u, 0x00041C4u, 0x00041D5u, 0x0004208u,
    0x0004239u, 0x000423Cu, 0x0004242u, 0x0004268u, 0x0004281u, 0x0004318u, 0x000431Du, 0x0004320u,
    0x0004335u, 0x0004338u, 0x0004341u, 0x00043ECu, 0x00043F1u, 0x0004924u, 0x0004929u, 0x0004938u,
    0x0004941u, 0x000495Cu, 0x0004961u, 0x0004964u, 0x0004969u, 0x0004978u, 0x0004981u, 0x0004A24u,
    0x0004A29u, 0x0004A38u, 0x0004A41u, 0x0004AC4u, 0x0004AC9u, 0x0004AD8u, 0x0004AE1u, 0x0004AFCu,
    0x0004B01u, 0x0004B04u, 0x0004B09u, 0x0004B18u, 0x0004B21u, 0x0004B5Cu, 0x0004B61u, 0x0004C44u,
    0x0004C49u, 0x0004C58u, 0x0004C61u, 0x0004D6Cu, 0x0004DA6u, 0x0004DF4u, 0x0004E01u, 0x0004E40u,
    0x0004E81u, 0x0004FD8u, 0x0004FE1u, 0x0004FF8u, 0x0005005u, 0x00059B4u, 0x00059BDu, 0x0005A00u,
    0x0005A05u, 0x0005A6Cu, 0x0005A81u, 0x0005BACu, 0x0005BBAu, 0x0005BC5u, 0x0005BE4u, 0x0005C01u,
    0x0005C48u, 0x0005C7Du, 0x0005CC8u, 0x0005D01u, 0x0005D48u, 0x0005D81u, 0x0005DB4u, 0x0005DB9u,
    0x0005DC4u, 0x0005E01u, 0x0005ED0u, 0x0005F5Du, 0x0005F60u, 0x0005F71u, 0x0005F74u, 0x0005F82u,
    0x0005FA8u, 0x0005FC2u, 0x0005FE8u, 0x0006042u, 0x0006068u, 0x0006081u, 0x00061E4u, 0x0006201u,
    0x0006214u, 0x000621Du, 0x00062A4u, 0x00062A9u, 0x00062ACu, 0x00062C1u, 0x00063D8u, 0x0006401u,
    0x000647Cu, 0x000651Au, 0x0006541u, 0x00065B8u, 0x00065C1u, 0x00065D4u, 0x0006601u, 0x00066B0u,
    0x00066C1u, 0x0006728u, 0x0006742u, 0x000676Cu, 0x0006801u, 0x000685Cu, 0x0006881u, 0x0006954u,
    0x0006A02u, 0x0006A28u, 0x0006A42u, 0x0006A68u, 0x0006A9Du, 0x0006AA0u, 0x0006C15u, 0x0006CD0u,
    0x0006D15u, 0x0006D34u, 0x0006D42u, 0x0006D68u, 0x0006E0Du, 0x0006E84u, 0x0006EB9u, 0x0006EC2u,
    0x0006EE9u, 0x0006F98u, 0x0007001u, 0x0007090u, 0x0007102u, 0x0007128u, 0x0007135u, 0x0007142u,
    0x0007169u, 0x00071F8u, 0x0007201u, 0x0007224u, 0x0007241u, 0x00072ECu, 0x00072F5u, 0x0007300u,
    0x00073A5u, 0x00073B4u, 0x00073B9u, 0x00073D0u, 0x00073D5u, 0x00073DCu, 0x00073E9u, 0x00073ECu,
    0x0007401u, 0x0007700u, 0x0007801u, 0x0007C58u, 0x0007C61u, 0x0007C78u, 0x0007C81u, 0x0007D18u,
    0x0007D21u, 0x0007D38u, 0x0007D41u, 0x0007D60u, 0x0007D65u, 0x0007D68u, 0x0007D6Du, 0x0007D70u,
    0x0007D75u, 0x0007D78u, 0x0007D7Du, 0x0007DF8u, 0x0007E01u, 0x0007ED4u, 0x0007ED9u, 0x0007EF4u,
    0x0007EF9u, 0x0007EFCu, 0x0007F09u, 0x0007F14u, 0x0007F19u, 0x0007F34u, 0x0007F41u, 0x0007F50u,
    0x0007F59u, 0x0007F70u, 0x0007F81u, 0x0007FB4u, 0x0007FC9u, 0x0007FD4u, 0x0007FD9u, 0x0007FF4u,
    0x00081C2u, 0x00081C5u, 0x00081C8u, 0x00081D2u, 0x00081E8u, 0x00081FDu, 0x0008202u, 0x0008228u,
    0x0008241u, 0x0008274u, 0x0008409u, 0x000840Cu, 0x000841Du, 0x0008420u, 0x0008429u, 0x0008450u,
    0x0008455u, 0x0008458u, 0x0008465u, 0x0008478u, 0x0008491u, 0x0008494u, 0x0008499u, 0x000849Cu,
    0x00084A1u, 0x00084A4u, 0x00084A9u, 0x00084B8u, 0x00084BDu, 0x00084E8u, 0x00084F1u, 0x0008500u,
    0x0008515u, 0x0008528u, 0x0008539u, 0x000853Cu, 0x0008542u, 0x000860Du, 0x0008616u, 0x0008628u,
    0x0009182u, 0x0009270u, 0x00093AAu, 0x0009400u, 0x0009DDAu, 0x0009E50u, 0x000B001u, 0x000B394u,
    0x000B3ADu, 0x000B3BCu, 0x000B3C9u, 0x000B3D0u, 0x000B3F6u, 0x000B3F8u, 0x000B401u, 0x000B498u,
    0x000B49Du, 0x000B4A0u, 0x000B4B5u, 0x000B4B8u, 0x000B4C1u, 0x000B5A0u, 0x000B5BDu, 0x000B5C0u,
    0x000B601u, 0x000B65Cu, 0x000B681u, 0x000B69Cu, 0x000B6A1u, 0x000B6BCu, 0x000B6C1u, 0x000B6DCu,
    0x000B6E1u, 0x000B6FCu, 0x000B701u, 0x000B71Cu, 0x000B721u, 0x000B73Cu, 0x000B741u, 0x000B75Cu,
    0x000B761u, 0x000B77Cu, 0x000B8BDu, 0x000B8C0u, 0x000C015u, 0x000C01Eu, 0x000C020u, 0x000C086u,
    0x000C0A8u, 0x000C0C5u, 0x000C0D8u, 0x000C0E2u, 0x000C0EDu, 0x000C0F4u, 0x000C105u, 0x000C25Cu,
    0x000C275u, 0x000C280u, 0x000C285u, 0x000C3ECu, 0x000C3F1u, 0x000C400u, 0x000C415u, 0x000C4C0u,
    0x000C4C5u, 0x000C63Cu, 0x000C64Au, 0x000C658u, 0x000C681u, 0x000C700u, 0x000C7C1u, 0x000C800u,
    0x000C882u, 0x000C8A8u, 0x000C922u, 0x000C940u, 0x000C946u, 0x000C980u, 0x000CA02u, 0x000CA28u,
    0x000CAC6u, 0x000CB00u, 0x000D001u, 0x0013700u, 0x0013801u, 0x0029234u, 0x0029341u, 0x00293F8u,
    0x0029401u, 0x0029834u, 0x0029841u, 0x0029882u, 0x00298A9u, 0x00298B0u, 0x0029901u, 0x00299BCu,
    0x00299FDu, 0x0029A78u, 0x0029A81u, 0x0029B9Au, 0x0029BC0u, 0x0029C5Du, 0x0029C80u, 0x0029C89u,
    0x0029E24u, 0x0029E2Du, 0x0029F2Cu, 0x0029F41u, 0x0029F48u, 0x0029F4Du, 0x0029F50u, 0x0029F55u,
    0x0029F68u, 0x0029FC9u, 0x002A008u, 0x002A00Du, 0x002A018u, 0x002A01Du, 0x002A02Cu, 0x002A031u,
    0x002A08Cu, 0x002A0C2u, 0x002A0D8u, 0x002A101u, 0x002A1D0u, 0x002A209u, 0x002A2D0u, 0x002A342u,
    0x002A368u, 0x002A3C9u, 0x002A3E0u, 0x002A3EDu, 0x002A3F0u, 0x002A3F5u, 0x002A3FCu, 0x002A402u,
    0x002A429u, 0x002A498u, 0x002A4C1u, 0x002A51Cu, 0x002A581u, 0x002A5F4u, 0x002A611u, 0x002A6CCu,
    0x002A73Du, 0x002A742u, 0x002A768u, 0x002A781u, 0x002A794u, 0x002A799u, 0x002A7C2u, 0x002A7E9u,
    0x002A7FCu, 0x002A801u, 0x002A8A4u, 0x002A901u, 0x002A90Cu, 0x002A911u, 0x002A930u, 0x002A942u,
    0x002A968u, 0x002A981u, 0x002A9DCu, 0x002A9E9u, 0x002A9ECu, 0x002A9F9u, 0x002AAC0u, 0x002AAC5u,
    0x002AAC8u, 0x002AAD5u, 0x002AADCu, 0x002AAE5u, 0x002AAF8u, 0x002AB01u, 0x002AB04u, 0x002AB09u,
    0x002AB0Cu, 0x002AB6Du, 0x002AB78u, 0x002AB81u, 0x002ABACu, 0x002ABC9u, 0x002ABD4u, 0x002AC05u,
    0x002AC1Cu, 0x002AC25u, 0x002AC3Cu, 0x002AC45u, 0x002AC5Cu, 0x002AC81u, 0x002AC9Cu, 0x002ACA1u,
    0x002ACBCu, 0x002ACC1u, 0x002AD6Cu, 0x002AD71u, 0x002ADA8u, 0x002ADC1u, 0x002AF8Cu, 0x002AFC2u,
    0x002AFE8u, 0x002B001u, 0x0035E90u, 0x0035EC1u, 0x0035F1Cu, 0x0035F2Du, 0x0035FF0u, 0x003E401u,
    0x003E9B8u, 0x003E9C1u, 0x003EB68u, 0x003EC01u, 0x003EC1Cu, 0x003EC4Du, 0x003EC60u, 0x003EC75u,
    0x003EC78u, 0x003EC7Du, 0x003ECA4u, 0x003ECA9u, 0x003ECDCu, 0x003ECE1u, 0x003ECF4u, 0x003ECF9u,
    0x003ECFCu, 0x003ED01u, 0x003ED08u, 0x003ED0Du, 0x003ED14u, 0x003ED19u, 0x003EEC8u, 0x003EF4Du,
    0x003F4F8u, 0x003F541u, 0x003F640u, 0x003F649u, 0x003F720u, 0x003F7C1u, 0x003F7F0u, 0x003F9C1u,
    0x003F9D4u, 0x003F9D9u, 0x003FBF4u, 0x003FC42u, 0x003FC68u, 0x003FC85u, 0x003FCECu, 0x003FD05u,
    0x003FD6Cu, 0x003FD99u, 0x003FEFCu, 0x003FF09u, 0x003FF20u, 0x003FF29u, 0x003FF40u, 0x003FF49u,
    0x003FF60u, 0x003FF69u, 0x003FF74u, 0x0040001u, 0x0040030u, 0x0040035u, 0x004009Cu, 0x00400A1u,
    0x00400ECu, 0x00400F1u, 0x00400F8u, 0x00400FDu, 0x0040138u, 0x0040141u, 0x0040178u, 0x0040201u,
    0x00403ECu, 0x004041Eu, 0x00404D0u, 0x0040502u, 0x00405E4u, 0x004062Au, 0x0040630u, 0x0040A01u,
    0x0040A74u, 0x0040A81u, 0x0040B44u, 0x0040B86u, 0x0040BF0u, 0x0040C01u, 0x0040C82u, 0x0040C90u,
    0x0040CB5u, 0x0040D06u, 0x0040D09u, 0x0040D2Au, 0x0040D2Cu, 0x0040D41u, 0x0040DD8u, 0x0040E01u,
    0x0040E78u, 0x0040E81u, 0x0040F10u, 0x0040F21u, 0x0040F40u, 0x0040F46u, 0x0040F58u, 0x0041001u,
    0x0041278u, 0x0041282u, 0x00412A8u, 0x00412C1u, 0x0041350u, 0x0041361u, 0x00413F0u, 0x0041401u,
    0x00414A0u, 0x00414C1u, 0x0041590u, 0x00415C1u, 0x00415ECu, 0x00415F1u, 0x004162Cu, 0x0041631u,
    0x004164Cu, 0x0041651u, 0x0041658u, 0x004165Du, 0x0041688u, 0x004168Du, 0x00416C8u, 0x00416CDu,
    0x00416E8u, 0x00416EDu, 0x00416F4u, 0x0041801u, 0x0041CDCu, 0x0041D01u, 0x0041D58u, 0x0041D81u,
    0x0041DA0u, 0x0041E01u, 0x0041E18u, 0x0041E1Du, 0x0041EC4u, 0x0041EC9u, 0x0041EECu, 0x0042001u,
    0x0042018u, 0x0042021u, 0x0042024u, 0x0042029u, 0x00420D8u, 0x00420DDu, 0x00420E4u, 0x00420F1u,
    0x00420F4u, 0x00420FDu, 0x0042158u, 0x0042162u, 0x0042181u, 0x00421DCu, 0x00421E6u, 0x0042201u,
    0x004227Cu, 0x004229Eu, 0x00422C0u, 0x0042381u, 0x00423CCu, 0x00423D1u, 0x00423D8u, 0x00423EEu,
    0x0042401u, 0x004245Au, 0x0042470u, 0x0042481u, 0x00424E8u, 0x0042601u, 0x00426E0u, 0x00426F2u,
    0x00426F9u, 0x0042702u, 0x0042740u, 0x004274Au, 0x0042801u, 0x0042804u, 0x0042841u, 0x0042850u,
    0x0042855u, 0x0042860u, 0x0042865u, 0x00428D8u, 0x0042902u, 0x0042924u, 0x0042981u, 0x00429F6u,
    0x00429FCu, 0x0042A01u, 0x0042A76u, 0x0042A80u, 0x0042B01u, 0x0042B20u, 0x0042B25u, 0x0042B94u,
    0x0042BAEu, 0x0042BC0u, 0x0042C01u, 0x0042CD8u, 0x0042D01u, 0x0042D58u, 0x0042D62u, 0x0042D81u,
    0x0042DCCu, 0x0042DE2u, 0x0042E01u, 0x0042E48u, 0x0042EA6u, 0x0042EC0u, 0x0043001u, 0x0043124u,
    0x0043201u, 0x00432CCu, 0x0043301u, 0x00433CCu, 0x00433EAu, 0x0043401u, 0x0043490u, 0x00434C2u,
    0x00434E8u, 0x0043982u, 0x00439FCu, 0x0043A01u, 0x0043AA8u, 0x0043AC1u, 0x0043AC8u, 0x0043C01u,
    0x0043C76u, 0x0043C9Du, 0x0043CA0u, 0x0043CC1u, 0x0043D18u, 0x0043D46u, 0x0043D54u, 0x0043DC1u,
    0x0043E08u, 0x0043EC1u, 0x0043F16u, 0x0043F30u, 0x0043F81u, 0x0043FDCu, 0x004400Du, 0x00440E0u,
    0x004414Au, 0x00441C0u, 0x00441C5u, 0x00441CCu, 0x00441D5u, 0x00441D8u, 0x004420Du, 0x00442C0u,
    0x0044341u, 0x00443A4u, 0x00443C2u, 0x00443E8u, 0x004440Du, 0x004449Cu, 0x00444DAu, 0x0044500u,
    0x0044511u, 0x0044514u, 0x004451Du, 0x0044520u, 0x0044541u, 0x00445CCu, 0x00445D9u, 0x00445DCu,
    0x004460Du, 0x00446CCu, 0x0044705u, 0x0044714u, 0x0044742u, 0x0044769u, 0x004476Cu, 0x0044771u,
    0x0044774u, 0x0044786u, 0x00447D4u, 0x0044801u, 0x0044848u, 0x004484Du, 0x00448B0u, 0x0044A01u,
    0x0044A1Cu, 0x0044A21u, 0x0044A24u, 0x0044A29u, 0x0044A38u, 0x0044A3Du, 0x0044A78u, 0x0044A7Du,
    0x0044AA4u, 0x0044AC1u, 0x0044B7Cu, 0x0044BC2u, 0x0044BE8u, 0x0044C15u, 0x0044C34u, 0x0044C3Du,
    0x0044C44u, 0x0044C4Du, 0x0044CA4u, 0x0044CA9u, 0x0044CC4u, 0x0044CC9u, 0x0044CD0u, 0x0044CD5u,
    0x0044CE8u, 0x0044CF5u, 0x0044CF8u, 0x0044D41u, 0x0044D44u, 0x0044D75u, 0x0044D88u, 0x0045001u,
    0x00450D4u, 0x004511Du, 0x004512Cu, 0x0045142u, 0x0045168u, 0x004517Du, 0x0045188u, 0x0045201u,
    0x00452C0u, 0x0045311u, 0x0045318u, 0x004531Du, 0x0045320u, 0x0045342u, 0x0045368u, 0x0045601u,
    0x00456BCu, 0x0045761u, 0x0045770u, 0x0045801u, 0x00458C0u, 0x0045911u, 0x0045914u, 0x0045942u,
    0x0045968u, 0x0045A01u, 0x0045AACu, 0x0045AE1u, 0x0045AE4u, 0x0045B02u, 0x0045B28u, 0x0045C01u,
    0x0045C6Cu, 0x0045CC2u, 0x0045CF0u, 0x0045D01u, 0x0045D1Cu, 0x0046001u, 0x00460B0u, 0x0046281u,
    0x0046382u, 0x00463CCu, 0x00463FDu, 0x004641Cu, 0x0046425u, 0x0046428u, 0x0046431u, 0x0046450u,
    0x0046455u, 0x004645Cu, 0x0046461u, 0x00464C0u, 0x00464FDu, 0x0046500u, 0x0046505u, 0x0046508u,
    0x0046542u, 0x0046568u, 0x0046681u, 0x00466A0u, 0x00466A9u, 0x0046744u, 0x0046785u, 0x0046788u,
    0x004678Du, 0x0046790u, 0x0046801u, 0x0046804u, 0x004682Du, 0x00468CCu, 0x00468E9u, 0x00468ECu,
    0x0046941u, 0x0046944u, 0x0046971u, 0x0046A28u, 0x0046A75u, 0x0046A78u, 0x0046AC1u, 0x0046BE4u,
    0x0047001u, 0x0047024u, 0x0047029u, 0x00470BCu, 0x0047101u, 0x0047104u, 0x0047142u, 0x00471B4u,
    0x00471C9u, 0x0047240u, 0x0047401u, 0x004741Cu, 0x0047421u, 0x0047428u, 0x004742Du, 0x00474C4u,
    0x0047519u, 0x004751Cu, 0x0047542u, 0x0047568u, 0x0047581u, 0x0047598u, 0x004759Du, 0x00475A4u,
    0x00475A9u, 0x0047628u, 0x0047661u, 0x0047664u, 0x0047682u, 0x00476A8u, 0x0047B81u, 0x0047BCCu,
    0x0047EC1u, 0x0047EC4u, 0x0047F02u, 0x0047F54u, 0x0048001u, 0x0048E68u, 0x0049002u, 0x00491BCu,
    0x0049201u, 0x0049510u, 0x004BE41u, 0x004BFC4u, 0x004C001u, 0x004D0BCu, 0x0051001u, 0x005191Cu,
    0x005A001u, 0x005A8E4u, 0x005A901u, 0x005A97Cu, 0x005A982u, 0x005A9A8u, 0x005A9C1u, 0x005AAFCu,
    0x005AB02u, 0x005AB28u, 0x005AB41u, 0x005ABB8u, 0x005AC01u, 0x005ACC0u, 0x005AD01u, 0x005AD10u,
    0x005AD42u, 0x005AD68u, 0x005AD6Eu, 0x005AD88u, 0x005AD8Du, 0x005ADE0u, 0x005ADF5u, 0x005AE40u,
    0x005B901u, 0x005BA02u, 0x005BA5Cu, 0x005BC01u, 0x005BD2Cu, 0x005BD41u, 0x005BD44u, 0x005BE4Du,
    0x005BE80u, 0x005BF81u, 0x005BF88u, 0x005BF8Du, 0x005BF90u, 0x005C001u, 0x0061FE0u, 0x0062001u,
    0x0063358u, 0x0063401u, 0x0063424u, 0x006BFC1u, 0x006BFD0u, 0x006BFD5u, 0x006BFF0u, 0x006BFF5u,
    0x006BFFCu, 0x006C001u, 0x006C48Cu, 0x006C541u, 0x006C54Cu, 0x006C591u, 0x006C5A0u, 0x006C5C1u,
    0x006CBF0u, 0x006F001u, 0x006F1ACu, 0x006F1C1u, 0x006F1F4u, 0x006F201u, 0x006F224u, 0x006F241u,
    0x006F268u, 0x0074B82u, 0x0074BD0u, 0x0074D82u, 0x0074DE4u, 0x0075001u, 0x0075154u, 0x0075159u,
    0x0075274u, 0x0075279u, 0x0075280u, 0x0075289u, 0x007528Cu, 0x0075295u, 0x007529Cu, 0x00752A5u,
    0x00752B4u, 0x00752B9u, 0x00752E8u, 0x00752EDu, 0x00752F0u, 0x00752F5u, 0x0075310u, 0x0075315u,
    0x0075418u, 0x007541Du, 0x007542Cu, 0x0075435u, 0x0075454u, 0x0075459u, 0x0075474u, 0x0075479u,
    0x00754E8u, 0x00754EDu, 0x00754FCu, 0x0075501u, 0x0075514u, 0x0075519u, 0x007551Cu, 0x0075529u,
    0x0075544u, 0x0075549u, 0x0075A98u, 0x0075AA1u, 0x0075B04u, 0x0075B09u, 0x0075B6Cu, 0x0075B71u,
    0x0075BECu, 0x0075BF1u, 0x0075C54u, 0x0075C59u, 0x0075CD4u, 0x0075CD9u, 0x0075D3Cu, 0x0075D41u,
    0x0075DBCu, 0x0075DC1u, 0x0075E24u, 0x0075E29u, 0x0075EA4u, 0x0075EA9u, 0x0075F0Cu, 0x0075F11u,
    0x0075F30u, 0x0075F3Au, 0x0076000u, 0x0077C01u, 0x0077C7Cu, 0x0078401u, 0x00784B4u, 0x00784DDu,
    0x00784F8u, 0x0078502u, 0x0078528u, 0x0078539u, 0x007853Cu, 0x0078A41u, 0x0078AB8u, 0x0078B01u,
    0x0078BB0u, 0x0078BC2u, 0x0078BE8u, 0x0079F81u, 0x0079F9Cu, 0x0079FA1u, 0x0079FB0u, 0x0079FB5u,
    0x0079FBCu, 0x0079FC1u, 0x0079FFCu, 0x007A001u, 0x007A314u, 0x007A31Eu, 0x007A340u, 0x007A401u,
    0x007A510u, 0x007A52Du, 0x007A530u, 0x007A542u, 0x007A568u, 0x007B1C6u, 0x007B2B0u, 0x007B2B6u,
    0x007B2C0u, 0x007B2C6u, 0x007B2D4u, 0x007B406u, 0x007B4B8u, 0x007B4BEu, 0x007B4F8u, 0x007B801u,
    0x007B810u, 0x007B815u, 0x007B880u, 0x007B885u, 0x007B88Cu, 0x007B891u, 0x007B894u, 0x007B89Du,
    0x007B8A0u, 0x007B8A5u, 0x007B8CCu, 0x007B8D1u, 0x007B8E0u, 0x007B8E5u, 0x007B8E8u, 0x007B8EDu,
    0x007B8F0u, 0x007B909u, 0x007B90Cu, 0x007B91Du, 0x007B920u, 0x007B925u, 0x007B928u, 0x007B92Du,
    0x007B930u, 0x007B935u, 0x007B940u, 0x007B945u, 0x007B94Cu, 0x007B951u, 0x007B954u, 0x007B95Du,
    0x007B960u, 0x007B965u, 0x007B968u, 0x007B96Du, 0x007B970u, 0x007B975u, 0x007B978u, 0x007B97Du,
    0x007B980u, 0x007B985u, 0x007B98Cu, 0x007B991u, 0x007B994u, 0x007B99Du, 0x007B9ACu, 0x007B9B1u,
    0x007B9CCu, 0x007B9D1u, 0x007B9E0u, 0x007B9E5u, 0x007B9F4u, 0x007B9F9u, 0x007B9FCu, 0x007BA01u,
    0x007BA28u, 0x007BA2Du, 0x007BA70u, 0x007BA85u, 0x007BA90u, 0x007BA95u, 0x007BAA8u, 0x007BAADu,
    0x007BAF0u, 0x007C402u, 0x007C434u, 0x007EFC2u, 0x007EFE8u, 0x0080001u, 0x00A9B80u, 0x00A9C01u,
    0x00ADCE4u, 0x00ADD01u, 0x00AE078u, 0x00AE081u, 0x00B3A88u, 0x00B3AC1u, 0x00BAF84u, 0x00BE001u,
    0x00BE878u, 0x00C0001u, 0x00C4D2Cu,
};
/* END generated */

enum {
    GEMINI__TOK_OTHER = 0, GEMINI__TOK_LETTER = 1, GEMINI__TOK_NUMBER = 2, GEMINI__TOK_SPACE = 3
};

/* \s of the regex engines the references use: the Unicode White_Space property. */
static int gemini__tok_is_white_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static int gemini__tok_char_class(uint32_t cp)
{
    size_t lo = 0, hi = sizeof gemini__tok_class_table / sizeof gemini__tok_class_table[0];
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return GEMINI__TOK_LETTER;
        if (cp >= '0' && cp <= '9') return GEMINI__TOK_NUMBER;
        return gemini__tok_is_white_space(cp) ? GEMINI__TOK_SPACE : GEMINI__TOK_OTHER;
    }
    if (gemini__tok_is_white_space(cp)) return GEMINI__TOK_SPACE;
    while (lo < hi) { /* the last entry that starts at or before cp */
        size_t mid = lo + (hi - lo) / 2;
        if ((gemini__tok_class_table[mid] >> 2) <= cp) lo = mid + 1;
        else hi = mid;
    }
    return lo == 0 ? GEMINI__TOK_OTHER : (int)(gemini__tok_class_table[lo - 1] & 3u);
}

/* The code point at s[0..n) of text already made valid UTF-8, and its length in *len. */
static uint32_t gemini__tok_code_point(const unsigned char *s, size_t n, size_t *len)
{
    size_t k = gemini__tok_char_len(s[0]);
    if (k > n || s[0] < 0xC0) k = 1;
    *len = k;
    if (k == 1) return s[0];
    if (k == 2) return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3Fu);
    if (k == 3)
        return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3Fu);
    return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
           ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3Fu);
}

/* The end of the pre-tokenisation chunk that starts at s[p], for the GPT-2 pattern
       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
   tried in that order at each position, as a backtracking regex engine does. */
static size_t gemini__tok_gpt2_chunk(const char *text, size_t p, size_t end)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len, q, last;
    uint32_t cp = gemini__tok_code_point(s + p, end - p, &len);
    int kind = gemini__tok_char_class(cp);

    if (cp == '\'' && p + 1 < end) {
        unsigned char c = s[p + 1], d = p + 2 < end ? s[p + 2] : 0;
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return p + 2;
        if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l'))
            return p + 3;
    }
    q = p + len;
    if (cp == ' ' && q < end) {
        /* " ?X+": one space (U+0020 only) may lead a run of letters, numbers or others */
        size_t next_len;
        int next = gemini__tok_char_class(gemini__tok_code_point(s + q, end - q, &next_len));
        if (next != GEMINI__TOK_SPACE) {
            kind = next;
            q += next_len;
        }
    }
    if (kind != GEMINI__TOK_SPACE) {
        while (q < end) {
            size_t k;
            if (gemini__tok_char_class(gemini__tok_code_point(s + q, end - q, &k)) != kind) break;
            q += k;
        }
        return q;
    }
    /* Whitespace: a run that reaches the end is one chunk. Before other text \s+(?!\S) backs
       off one character, so the last one can lead the next chunk (" ?\p{L}+" for a space);
       a run of one character is taken whole by the final \s+. */
    last = p;
    while (q < end) {
        size_t k;
        if (gemini__tok_char_class(gemini__tok_code_point(s + q, end - q, &k)) !=
            GEMINI__TOK_SPACE)
            break;
        last = q;
        q += k;
    }
    return (q == end || last == p) ? q : last;
}

static size_t gemini__tok_merge_slot(uint64_t key, size_t mask)
{
    key *= 0x9E3779B97F4A7C15ull;
    return (size_t)(key >> 32 ^ key) & mask;
}

/* The rank of the merge of left and right, or -1. */
static int32_t gemini__tok_merge_rank(const gemini_tok *tok, int32_t left, int32_t right)
{
    uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1u;
    size_t i = gemini__tok_merge_slot(key, tok->merge_mask);
    while (tok->merge_keys[i] != 0) {
        if (tok->merge_keys[i] == key) return tok->merge_ranks[i];
        i = (i + 1) & tok->merge_mask;
    }
    return -1;
}

/* Finds the one-byte pieces and checks and indexes the merges. */
static gemini_result gemini__tok_bytebpe_init(gemini_tok *tok, const int32_t *merges,
                                              int32_t n_merges)
{
    size_t cap = 16, i;
    int32_t k, b;
    gemini__tok_buf both;
    if (n_merges < 0 || n_merges > (1 << 24))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "tokenizer: %d merges (at most 2^24)",
                            (int)n_merges);
    for (b = 0; b < 256; b++) {
        char c = (char)b;
        int32_t id = gemini__tok_map_find(tok, &tok->normal_map, &c, 1);
        if (id < 0 || tok->types[id] != GEMINI_TOK_NORMAL)
            return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: byte-level BPE has no piece for "
                                "byte 0x%02X", (unsigned)b);
        tok->byte_ids[b] = id;
    }
    while (cap < (size_t)n_merges * 2) cap *= 2;
    tok->n_merges = n_merges;
    tok->merges = (int32_t *)gemini__tok_malloc_array((size_t)n_merges, 2 * sizeof(int32_t));
    tok->merge_result = (int32_t *)gemini__tok_malloc_array((size_t)n_merges, sizeof(int32_t));
    tok->merge_keys = (uint64_t *)gemini__tok_malloc_array(cap, sizeof(uint64_t));
    tok->merge_ranks = (int32_t *)gemini__tok_malloc_array(cap, sizeof(int32_t));
    if (!tok->merges || !tok->merge_result || !tok->merge_keys || !tok->merge_ranks)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer: no memory for %d merges",
                            (int)n_merges);
    memset(tok->merge_keys, 0, cap * sizeof(uint64_t));
    tok->merge_mask = cap - 1;
    memset(&both, 0, sizeof both);
    for (k = 0; k < n_merges; k++) {
        int32_t left = merges[2 * k], right = merges[2 * k + 1], id;
        uint64_t key;
        if (left < 0 || left >= tok->n_pieces || right < 0 || right >= tok->n_pieces ||
            tok->types[left] != GEMINI_TOK_NORMAL || tok->types[right] != GEMINI_TOK_NORMAL) {
            gemini__tok_buf_free(&both);
            return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: merge %d joins ids %d and %d, "
                                "which are not both vocabulary pieces", (int)k, (int)left,
                                (int)right);
        }
        both.len = 0;
        gemini__tok_buf_append(&both, tok->pieces[left], tok->piece_lengths[left]);
        gemini__tok_buf_append(&both, tok->pieces[right], tok->piece_lengths[right]);
        if (both.failed) {
            gemini__tok_buf_free(&both);
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer: no memory");
        }
        id = gemini__tok_map_find(tok, &tok->normal_map, both.data ? both.data : "", both.len);
        if (id < 0 || tok->types[id] != GEMINI_TOK_NORMAL || both.len == 0) {
            gemini__tok_buf_free(&both);
            return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: merge %d (ids %d + %d) makes a "
                                "piece that is not in the vocabulary", (int)k, (int)left,
                                (int)right);
        }
        tok->merges[2 * k] = left;
        tok->merges[2 * k + 1] = right;
        tok->merge_result[k] = id;
        /* A repeated pair takes the later rank, as the tokenizers library's map does. */
        key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1u;
        i = gemini__tok_merge_slot(key, tok->merge_mask);
        while (tok->merge_keys[i] != 0 && tok->merge_keys[i] != key)
            i = (i + 1) & tok->merge_mask;
        tok->merge_keys[i] = key;
        tok->merge_ranks[i] = k;
    }
    gemini__tok_buf_free(&both);
    return GEMINI_OK;
}

static void gemini__tok_bytebpe_candidate(const gemini_tok *tok, gemini__tok_work *w,
                                          int32_t left, int32_t right)
{
    gemini__tok_pair p;
    int32_t rank;
    if (left < 0 || right < 0) return;
    rank = gemini__tok_merge_rank(tok, w->symbols[left].id, w->symbols[right].id);
    if (rank < 0) return;
    p.score = -(float)rank;   /* exact: ranks are below 2^24 */
    p.left = left;
    p.right = right;
    p.size = w->symbols[left].len + w->symbols[right].len;
    p.id = tok->merge_result[rank];
    gemini__tok_heap_push(w, p);
}

/* Merges the bytes of one chunk norm[begin, end) by rank: always the lowest-ranked adjacent
   pair, the leftmost of equals, until no pair has a merge. */
static void gemini__tok_bytebpe_chunk(const gemini_tok *tok, gemini__tok_work *w,
                                      uint32_t begin, uint32_t end)
{
    const unsigned char *s = (const unsigned char *)w->norm.data;
    void *symbols = w->symbols;
    int32_t n = (int32_t)(end - begin), i;
    if (n == 1) {
        gemini__tok_emit(w, tok->byte_ids[s[begin]], begin, 1);
        return;
    }
    if (!gemini__tok_grow(w, &symbols, &w->cap_symbols, (size_t)n, sizeof(gemini__tok_symbol)))
        return;
    w->symbols = (gemini__tok_symbol *)symbols;
    for (i = 0; i < n; i++) {
        gemini__tok_symbol *sym = &w->symbols[i];
        sym->prev = i - 1;
        sym->next = i + 1 < n ? i + 1 : -1;
        sym->id = tok->byte_ids[s[begin + (uint32_t)i]];
        sym->start = begin + (uint32_t)i;
        sym->len = 1;
        sym->freeze = 0;
    }
    w->n_heap = 0;
    for (i = 1; i < n; i++) gemini__tok_bytebpe_candidate(tok, w, i - 1, i);

    gemini__tok_merge_pairs(tok, w, gemini__tok_bytebpe_candidate);
    for (i = 0; i >= 0 && !w->failed; i = w->symbols[i].next)
        gemini__tok_emit(w, w->symbols[i].id, w->symbols[i].start, w->symbols[i].len);
}

/* Encodes text that holds no added token: invalid UTF-8 bytes become U+FFFD, then each
   pre-tokenisation chunk is merged on its own. */
static void gemini__tok_bytebpe_segment(const gemini_tok *tok, const char *text, size_t len,
                                        gemini__tok_work *w)
{
    gemini__tok_buf *b = &w->norm;
    size_t i = 0, begin = b->len, p;
    if (len == 0) return;
    if (!gemini__tok_buf_reserve(b, len * 3)) { w->failed = 1; return; }
    while (i < len) {
        size_t run = i, k;
        while (run < len && (unsigned char)text[run] < 0x80) run++;
        while (run < len && (k = gemini__tok_utf8_valid((const unsigned char *)text + run,
                                                        len - run)) > 0)
            run += k;
        memcpy(b->data + b->len, text + i, run - i);
        b->len += run - i;
        if (run < len) {
            memcpy(b->data + b->len, gemini__tok_replacement, 3);
            b->len += 3;
            run++;
        }
        i = run;
    }
    if (b->len > 0xFFFFFFF0u) { w->failed = 1; return; }
    for (p = begin; p < b->len && !w->failed;) {
        size_t q = gemini__tok_gpt2_chunk(b->data, p, b->len);
        gemini__tok_bytebpe_chunk(tok, w, (uint32_t)p, (uint32_t)q);
        p = q;
    }
}

/* ---- Encode one segment: normalise, run the model, apply byte fallback ----------------- */

static void gemini__tok_encode_segment(const gemini_tok *tok, const char *text, size_t len,
                                       gemini__tok_work *w)
{
    uint32_t begin = (uint32_t)w->norm.len, end;
    size_t first, i, out;
    int prev_unk = 0;

    if (tok->model_type == GEMINI_TOK_BYTE_BPE) {
        gemini__tok_bytebpe_segment(tok, text, len, w);
        return;
    }
    gemini__tok_normalize(tok, text, len, w);
    if (w->failed) return;
    if (w->norm.len > 0xFFFFFFF0u) { w->failed = 1; return; }
    end = (uint32_t)w->norm.len;

    first = w->n_items;
    if (tok->model_type == GEMINI_TOK_BPE) gemini__tok_bpe_encode(tok, w, begin, end);
    else gemini__tok_unigram_encode(tok, w, begin, end);
    if (w->failed) return;

    /* Unknown pieces: one <0xNN> per byte with byte fallback, otherwise a run of them is
       merged into one token (SentencePiece's PopulateSentencePieceText). Done in place;
       byte fallback may lengthen the list, so that case copies the tail first. */
    if (tok->byte_fallback) {
        size_t n_tail = w->n_items - first, n_unknown = 0;
        gemini__tok_item *tail;
        for (i = first; i < w->n_items; i++)
            if (w->items[i].id == tok->unk_id) n_unknown++;
        if (n_unknown == 0) return;
        tail = (gemini__tok_item *)gemini__tok_malloc_array(n_tail, sizeof(gemini__tok_item));
        if (!tail) { w->failed = 1; return; }
        memcpy(tail, w->items + first, n_tail * sizeof(gemini__tok_item));
        w->n_items = first;
        for (i = 0; i < n_tail; i++) {
            if (tail[i].id == tok->unk_id) {
                uint32_t k;
                for (k = 0; k < tail[i].len; k++) {
                    unsigned char byte = (unsigned char)w->norm.data[tail[i].start + k];
                    gemini__tok_emit(w, tok->byte_ids[byte], GEMINI__TOK_NONE, 0);
                }
            } else {
                gemini__tok_emit(w, tail[i].id, tail[i].start, tail[i].len);
            }
        }
        GEMINI_FREE(tail);
        return;
    }
    out = first;
    for (i = first; i < w->n_items; i++) {
        int is_unk = w->items[i].id == tok->unk_id;
        if (is_unk && prev_unk) {
            w->items[out - 1].len += w->items[i].len;
        } else {
            w->items[out++] = w->items[i];
        }
        prev_unk = is_unk;
    }
    w->n_items = out;
}

static gemini_result gemini__tok_encode_all(const gemini_tok *tok, const char *text, size_t len,
                                            uint32_t flags, gemini__tok_work *w)
{
    if (!tok || (!text && len))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_encode: NULL argument");
    if (len > GEMINI__TOK_MAX_TEXT)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_encode: %zu bytes of text "
                            "is over the 1 GiB limit", len);
    if (flags & ~(GEMINI_TOK_ADD_BOS | GEMINI_TOK_ADD_EOS | GEMINI_TOK_PARSE_SPECIAL))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_encode: unknown flags "
                            "0x%x", (unsigned)flags);

    if ((flags & GEMINI_TOK_ADD_BOS) && tok->bos_id >= 0)
        gemini__tok_emit(w, tok->bos_id, GEMINI__TOK_NONE, 0);

    if (flags & GEMINI_TOK_PARSE_SPECIAL) {
        size_t pos = 0, seg = 0;
        while (pos < len && !w->failed) {
            int32_t id = -1;
            size_t m = gemini__tok_trie_longest(&tok->special_trie, text + pos, len - pos, &id);
            if (m == 0) {
                pos++;
                continue;
            }
            gemini__tok_encode_segment(tok, text + seg, pos - seg, w);
            gemini__tok_emit(w, id, GEMINI__TOK_NONE, 0);
            pos += m;
            seg = pos;
        }
        gemini__tok_encode_segment(tok, text + seg, len - seg, w);
    } else {
        gemini__tok_encode_segment(tok, text, len, w);
    }

    if ((flags & GEMINI_TOK_ADD_EOS) && tok->eos_id >= 0)
        gemini__tok_emit(w, tok->eos_id, GEMINI__TOK_NONE, 0);
    if (w->failed || w->norm.failed)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "gemini_tok_encode: out of memory");
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_tok_encode(const gemini_tok *tok, const char *text, size_t len,
                                           uint32_t flags, int32_t *ids, int32_t max_ids,
                                           int32_t *n_out)
{
    gemini__tok_work w;
    gemini_result r;
    size_t i;
    if (n_out) *n_out = 0;
    if (!n_out || max_ids < 0 || (!ids && max_ids > 0))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_encode: bad output "
                            "arguments");
    memset(&w, 0, sizeof w);
    r = gemini__tok_encode_all(tok, text, len, flags, &w);
    if (r == GEMINI_OK) {
        for (i = 0; i < w.n_items && i < (size_t)max_ids; i++) ids[i] = w.items[i].id;
        *n_out = (int32_t)w.n_items;
        if (w.n_items > (size_t)max_ids && !(ids == NULL && max_ids == 0))
            r = gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_encode: %d ids do not fit "
                             "in a buffer of %d", (int)w.n_items, (int)max_ids);
    }
    gemini__tok_work_free(&w);
    return r;
}

GEMINI_API gemini_result gemini_tok_encode_pieces(const gemini_tok *tok, const char *text,
                                                  size_t len, uint32_t flags,
                                                  gemini_tok_piece_fn fn, void *user)
{
    gemini__tok_work w;
    gemini_result r;
    size_t i;
    if (!fn)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_encode_pieces: fn is NULL");
    memset(&w, 0, sizeof w);
    r = gemini__tok_encode_all(tok, text, len, flags, &w);
    for (i = 0; r == GEMINI_OK && i < w.n_items; i++) {
        const gemini__tok_item *it = &w.items[i];
        if (it->start == GEMINI__TOK_NONE)
            fn(user, it->id, tok->pieces[it->id], tok->piece_lengths[it->id]);
        else
            fn(user, it->id, w.norm.data + it->start, it->len);
    }
    gemini__tok_work_free(&w);
    return r;
}

/* ---- Decoding (SentencePiece SentencePieceProcessor::Decode) ----------------------------- */

struct gemini_tok_stream {
    const gemini_tok *tok;
    unsigned char pending[4];   /* bytes of byte pieces not yet turned into text */
    int n_pending;
    int text_nonempty;          /* some text has been produced */
    int bos_ws_seen;            /* the previous piece lost its leading U+2581 */
    int is_bos_ws;              /* still at the start: a leading U+2581 may be dropped */
    gemini__tok_buf out;
};

static void gemini__tok_stream_init(gemini_tok_stream *s, const gemini_tok *tok)
{
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->is_bos_ws = 1;
}

static void gemini__tok_stream_emit(gemini_tok_stream *s, const char *text, size_t len)
{
    gemini__tok_buf_append(&s->out, text, len);
    if (len) s->text_nonempty = 1;
}

/* Turns held-back bytes into text. Without `final`, a character that could still complete
   is kept: its lead byte says how many bytes it needs, and only when they are all present
   (or the sequence ends) is the decision the same as the whole-run decode makes. */
static void gemini__tok_stream_bytes(gemini_tok_stream *s, int final)
{
    while (s->n_pending > 0) {
        unsigned char lead = s->pending[0];
        size_t need = 1, len;
        if (lead >= 0xC0 && lead < 0xE0) need = 2;
        else if (lead >= 0xE0 && lead < 0xF0) need = 3;
        else if (lead >= 0xF0 && lead < 0xF8) need = 4;
        if (!final && (size_t)s->n_pending < need) break;
        len = gemini__tok_utf8_valid(s->pending, (size_t)s->n_pending);
        if (len == 0) {
            gemini__tok_stream_emit(s, gemini__tok_replacement, 3);
            len = 1;
        } else {
            gemini__tok_stream_emit(s, (const char *)s->pending, len);
        }
        memmove(s->pending, s->pending + len, (size_t)s->n_pending - len);
        s->n_pending -= (int)len;
    }
}

/* Byte-level BPE: every piece but a CONTROL one adds its bytes; whole valid characters pass
   straight through, the rest goes through the pending bytes one at a time. */
static void gemini__tok_stream_raw(gemini_tok_stream *s, int32_t id)
{
    const unsigned char *p = (const unsigned char *)s->tok->pieces[id];
    size_t n = s->tok->piece_lengths[id], i = 0;
    if (s->tok->types[id] == GEMINI_TOK_CONTROL) return;
    while (i < n) {
        if (s->n_pending == 0) {
            size_t j = i, k;
            while (j < n && (k = gemini__tok_utf8_valid(p + j, n - j)) > 0) j += k;
            if (j > i) {
                gemini__tok_stream_emit(s, (const char *)p + i, j - i);
                i = j;
                continue;
            }
        }
        s->pending[s->n_pending++] = p[i++];
        gemini__tok_stream_bytes(s, 0);
    }
}

static void gemini__tok_stream_piece(gemini_tok_stream *s, int32_t id)
{
    const gemini_tok *tok = s->tok;
    const char *p = tok->pieces[id];
    size_t n = tok->piece_lengths[id], i;
    int type = tok->types[id];

    if (tok->model_type == GEMINI_TOK_BYTE_BPE) {
        gemini__tok_stream_raw(s, id);
        return;
    }

    if (type == GEMINI_TOK_BYTE) {
        s->pending[s->n_pending++] = (unsigned char)gemini__tok_byte_of_piece(p, n);
        gemini__tok_stream_bytes(s, 0);
        return;
    }
    gemini__tok_stream_bytes(s, 1);

    if (s->bos_ws_seen || s->text_nonempty) s->is_bos_ws = 0;
    s->bos_ws_seen = 0;
    if (type == GEMINI_TOK_CONTROL) return;
    if (type == GEMINI_TOK_UNKNOWN) {
        gemini__tok_stream_emit(s, tok->unk_surface, tok->unk_surface_len);
        return;
    }
    if (s->is_bos_ws && (tok->add_dummy_prefix || tok->remove_extra_whitespaces)) {
        if (n >= 3 && memcmp(p, gemini__tok_space_symbol, 3) == 0) {
            p += 3;
            n -= 3;
            s->bos_ws_seen = !tok->remove_extra_whitespaces;
        }
    }
    for (i = 0; i < n;) {
        if (i + 3 <= n && memcmp(p + i, gemini__tok_space_symbol, 3) == 0) {
            gemini__tok_stream_emit(s, " ", 1);
            i += 3;
        } else {
            size_t j = i + 1;
            while (j < n && !(j + 3 <= n && memcmp(p + j, gemini__tok_space_symbol, 3) == 0)) j++;
            gemini__tok_stream_emit(s, p + i, j - i);
            i = j;
        }
    }
}

GEMINI_API gemini_result gemini_tok_stream_create(const gemini_tok *tok,
                                                  gemini_tok_stream **out)
{
    gemini_tok_stream *s;
    if (!out || !tok)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_stream_create: NULL "
                            "argument");
    *out = NULL;
    s = (gemini_tok_stream *)GEMINI_MALLOC(sizeof *s);
    if (!s) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "gemini_tok_stream_create: no memory");
    gemini__tok_stream_init(s, tok);
    *out = s;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_tok_stream_push(gemini_tok_stream *s, int32_t id,
                                                const char **text, size_t *len)
{
    if (text) *text = "";
    if (len) *len = 0;
    if (!s || !text || !len)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_stream_push: NULL "
                            "argument");
    if (id < 0 || id >= s->tok->n_pieces)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_stream_push: id %d is out "
                            "of range [0, %d)", (int)id, (int)s->tok->n_pieces);
    s->out.len = 0;
    gemini__tok_stream_piece(s, id);
    if (s->out.failed) {
        s->out.failed = 0;
        s->out.len = 0;
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "gemini_tok_stream_push: no memory");
    }
    *text = s->out.data ? s->out.data : "";
    *len = s->out.len;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_tok_stream_flush(gemini_tok_stream *s, const char **text,
                                                 size_t *len)
{
    if (text) *text = "";
    if (len) *len = 0;
    if (!s || !text || !len)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_stream_flush: NULL "
                            "argument");
    s->out.len = 0;
    gemini__tok_stream_bytes(s, 1);
    if (s->out.failed) {
        gemini_tok_stream_reset(s);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "gemini_tok_stream_flush: no memory");
    }
    *text = s->out.data ? s->out.data : "";
    *len = s->out.len;
    s->n_pending = 0;
    s->text_nonempty = 0;
    s->bos_ws_seen = 0;
    s->is_bos_ws = 1;
    return GEMINI_OK;
}

GEMINI_API void gemini_tok_stream_reset(gemini_tok_stream *s)
{
    gemini__tok_buf out;
    if (!s) return;
    out = s->out;
    out.len = 0;
    out.failed = 0;
    gemini__tok_stream_init(s, s->tok);
    s->out = out;
}

GEMINI_API void gemini_tok_stream_free(gemini_tok_stream *s)
{
    if (!s) return;
    gemini__tok_buf_free(&s->out);
    GEMINI_FREE(s);
}

GEMINI_API gemini_result gemini_tok_decode(const gemini_tok *tok, const int32_t *ids,
                                           size_t n_ids, char *text, size_t cap, size_t *n_out)
{
    gemini_tok_stream s;
    size_t i;
    if (n_out) *n_out = 0;
    if (!tok || !n_out || (!ids && n_ids) || (!text && cap))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_decode: NULL argument");
    for (i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= tok->n_pieces)
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_decode: ids[%zu] = %d "
                                "is out of range [0, %d)", i, (int)ids[i], (int)tok->n_pieces);
    gemini__tok_stream_init(&s, tok);
    for (i = 0; i < n_ids; i++) gemini__tok_stream_piece(&s, ids[i]);
    gemini__tok_stream_bytes(&s, 1);
    if (s.out.failed) {
        gemini__tok_buf_free(&s.out);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "gemini_tok_decode: no memory");
    }
    *n_out = s.out.len;
    if (text == NULL && cap == 0) {
        gemini__tok_buf_free(&s.out);
        return GEMINI_OK;
    }
    if (cap <= s.out.len) {
        gemini__tok_buf_free(&s.out);
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_decode: %zu bytes of text "
                            "do not fit in a buffer of %zu", *n_out + 1, cap);
    }
    if (s.out.len) memcpy(text, s.out.data, s.out.len);
    text[s.out.len] = 0;
    gemini__tok_buf_free(&s.out);
    return GEMINI_OK;
}

/* ---- SentencePiece .model (protobuf, proto2) ---------------------------------------------- */

typedef struct gemini__tok_pb {
    const uint8_t *p, *end;
} gemini__tok_pb;

static int gemini__tok_pb_varint(gemini__tok_pb *r, uint64_t *v)
{
    int shift = 0;
    *v = 0;
    while (r->p < r->end && shift < 64) {
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return 1;
        shift += 7;
    }
    return 0;
}

/* Reads one field header and, for length-delimited fields, the payload bounds. Returns 0 at
   the end of the message, -1 on malformed input, 1 otherwise. */
static int gemini__tok_pb_next(gemini__tok_pb *r, uint32_t *field, uint32_t *wire,
                               uint64_t *value, gemini__tok_pb *sub)
{
    uint64_t key;
    if (r->p >= r->end) return 0;
    if (!gemini__tok_pb_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) return -1;
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    switch (*wire) {
    case 0:
        return gemini__tok_pb_varint(r, value) ? 1 : -1;
    case 1:
        if (r->end - r->p < 8) return -1;
        memcpy(value, r->p, 8);
        r->p += 8;
        return 1;
    case 2:
        if (!gemini__tok_pb_varint(r, value) || *value > (uint64_t)(r->end - r->p)) return -1;
        sub->p = r->p;
        sub->end = r->p + *value;
        r->p += *value;
        return 1;
    case 5:
        if (r->end - r->p < 4) return -1;
        *value = (uint32_t)r->p[0] | ((uint32_t)r->p[1] << 8) | ((uint32_t)r->p[2] << 16) |
                 ((uint32_t)r->p[3] << 24);
        r->p += 4;
        return 1;
    default:
        return -1;  /* groups (3, 4) are not used by SentencePiece */
    }
}

typedef struct gemini__tok_str {
    const char *p;
    size_t n;
} gemini__tok_str;

/* Finds the id of a piece of the given type by its text, -1 if none. */
static int32_t gemini__tok_find_typed(const gemini_tok_spm_desc *d, gemini__tok_str name,
                                      int type)
{
    int32_t i;
    for (i = 0; i < d->n_pieces; i++)
        if (d->types[i] == type && d->piece_lengths[i] == name.n &&
            memcmp(d->pieces[i], name.p, name.n) == 0)
            return i;
    return -1;
}

static gemini_result gemini__tok_load_proto(const uint8_t *data, size_t size, gemini_tok **out)
{
    gemini__tok_pb r, sub, msg;
    uint32_t field, wire;
    uint64_t v;
    int rc;
    size_t n = 0, i = 0;
    gemini_tok_spm_desc d;
    const char **pieces = NULL;
    uint32_t *lengths = NULL;
    float *scores = NULL;
    uint8_t *types = NULL;
    gemini__tok_str unk_piece = {"<unk>", 5}, bos_piece = {"<s>", 3}, eos_piece = {"</s>", 4};
    gemini__tok_str pad_piece = {"<pad>", 5}, unk_surface = {NULL, 0};
    gemini_result res = GEMINI_OK;

    memset(&d, 0, sizeof d);
    d.model_type = GEMINI_TOK_UNIGRAM;
    d.add_dummy_prefix = d.remove_extra_whitespaces = d.escape_whitespaces = 1;

    /* First pass: count the pieces. */
    r.p = data;
    r.end = data + size;
    while ((rc = gemini__tok_pb_next(&r, &field, &wire, &v, &sub)) == 1)
        if (field == 1 && wire == 2) n++;
    if (rc < 0 || n == 0 || n > 0x7FFFFFF)
        return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: not a SentencePiece model (%s)",
                            rc < 0 ? "malformed protobuf" : "no pieces");
    pieces = (const char **)gemini__tok_malloc_array(n, sizeof(char *));
    lengths = (uint32_t *)gemini__tok_malloc_array(n, sizeof(uint32_t));
    scores = (float *)gemini__tok_malloc_array(n, sizeof(float));
    types = (uint8_t *)gemini__tok_malloc_array(n, 1);
    if (!pieces || !lengths || !scores || !types) {
        res = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer: no memory for %zu pieces", n);
        goto done;
    }

    /* Second pass: the fields a runtime needs (proto2 defaults where absent). */
    r.p = data;
    r.end = data + size;
    while (res == GEMINI_OK && (rc = gemini__tok_pb_next(&r, &field, &wire, &v, &msg)) == 1) {
        if (wire != 2) continue;
        if (field == 1) {
            pieces[i] = "";
            lengths[i] = 0;
            scores[i] = 0.0f;
            types[i] = GEMINI_TOK_NORMAL;
            while ((rc = gemini__tok_pb_next(&msg, &field, &wire, &v, &sub)) == 1) {
                if (field == 1 && wire == 2) {
                    if (sub.end - sub.p > 0xFFFFFF) { rc = -1; break; }
                    pieces[i] = (const char *)sub.p;
                    lengths[i] = (uint32_t)(sub.end - sub.p);
                } else if (field == 2 && wire == 5) {
                    uint32_t bits = (uint32_t)v;
                    memcpy(&scores[i], &bits, 4);
                } else if (field == 3 && wire == 0) {
                    types[i] = (uint8_t)(v > 255 ? 255 : v);
                }
            }
            i++;
        } else if (field == 2) {
            while ((rc = gemini__tok_pb_next(&msg, &field, &wire, &v, &sub)) == 1) {
                gemini__tok_str s;
                s.p = (const char *)sub.p;
                s.n = wire == 2 ? (size_t)(sub.end - sub.p) : 0;
                if (field == 3 && wire == 0) d.model_type = (int32_t)(v > 100 ? 100 : v);
                else if (field == 24 && wire == 0) d.treat_whitespace_as_suffix = v != 0;
                else if (field == 35 && wire == 0) d.byte_fallback = v != 0;
                else if (field == 44 && wire == 2) unk_surface = s;
                else if (field == 45 && wire == 2 && s.n) unk_piece = s;
                else if (field == 46 && wire == 2 && s.n) bos_piece = s;
                else if (field == 47 && wire == 2 && s.n) eos_piece = s;
                else if (field == 48 && wire == 2 && s.n) pad_piece = s;
            }
        } else if (field == 3) {
            while ((rc = gemini__tok_pb_next(&msg, &field, &wire, &v, &sub)) == 1) {
                if (field == 2 && wire == 2) {
                    d.charsmap = sub.p;
                    d.charsmap_size = (size_t)(sub.end - sub.p);
                } else if (field == 3 && wire == 0) d.add_dummy_prefix = v != 0;
                else if (field == 4 && wire == 0) d.remove_extra_whitespaces = v != 0;
                else if (field == 5 && wire == 0) d.escape_whitespaces = v != 0;
            }
        }
        if (rc < 0)
            res = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: malformed protobuf in field %u of "
                               "the model", (unsigned)field);
    }
    if (res != GEMINI_OK) goto done;
    if (rc < 0) {
        res = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer: malformed protobuf");
        goto done;
    }
    if (d.model_type != GEMINI_TOK_UNIGRAM && d.model_type != GEMINI_TOK_BPE) {
        res = gemini__fail(GEMINI_ERR_UNSUPPORTED, "tokenizer: SentencePiece model_type %d "
                           "(WORD or CHAR) is not supported", (int)d.model_type);
        goto done;
    }
    d.n_pieces = (int32_t)n;
    d.pieces = pieces;
    d.piece_lengths = lengths;
    d.scores = scores;
    d.types = types;

    /* Special ids as SentencePiece reports them: the piece named in the trainer spec, if it
       has the right type. */
    d.unk_id = gemini__tok_find_typed(&d, unk_piece, GEMINI_TOK_UNKNOWN);
    d.bos_id = gemini__tok_find_typed(&d, bos_piece, GEMINI_TOK_CONTROL);
    d.eos_id = gemini__tok_find_typed(&d, eos_piece, GEMINI_TOK_CONTROL);
    d.pad_id = gemini__tok_find_typed(&d, pad_piece, GEMINI_TOK_CONTROL);
    if (d.unk_id < 0) d.unk_id = -1;
    res = gemini__tok_create(&d, unk_surface.p, unk_surface.n, NULL, 0, out);

done:
    GEMINI_FREE((void *)pieces);
    GEMINI_FREE(lengths);
    GEMINI_FREE(scores);
    GEMINI_FREE(types);
    return res;
}

/* ---- Hugging Face tokenizer.json ---------------------------------------------------------- */

/* A strict JSON reader: the text is parsed into a flat array of nodes in document order;
   strings and numbers keep their source span and are decoded on demand. */
enum {
    GEMINI__TOK_JNULL, GEMINI__TOK_JFALSE, GEMINI__TOK_JTRUE, GEMINI__TOK_JNUMBER,
    GEMINI__TOK_JSTRING, GEMINI__TOK_JARRAY, GEMINI__TOK_JOBJECT
};

typedef struct gemini__tok_jnode {
    uint32_t type;
    uint32_t start, end;   /* source span (strings: inside the quotes) */
    uint32_t count;        /* children (an object counts keys and values) */
    uint32_t next;         /* index of the first node after this subtree */
} gemini__tok_jnode;

typedef struct gemini__tok_json {
    const char *s;
    size_t n, pos;
    gemini__tok_jnode *nodes;
    size_t n_nodes, cap_nodes;
    int failed;            /* out of memory */
    const char *error;
} gemini__tok_json;

static void gemini__tok_json_ws(gemini__tok_json *j)
{
    while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
                             j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
        j->pos++;
}

static int gemini__tok_json_hex4(const char *p, uint32_t *v)
{
    int k;
    *v = 0;
    for (k = 0; k < 4; k++) {
        char c = p[k];
        uint32_t d;
        if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
        else return 0;
        *v = *v * 16 + d;
    }
    return 1;
}

static int gemini__tok_json_value(gemini__tok_json *j, int depth);

static int64_t gemini__tok_json_add(gemini__tok_json *j, uint32_t type)
{
    if (j->n_nodes == j->cap_nodes) {
        size_t cap = j->cap_nodes ? j->cap_nodes * 2 : 1024;
        gemini__tok_jnode *nodes = (gemini__tok_jnode *)GEMINI_REALLOC(
            j->nodes, cap * sizeof(gemini__tok_jnode));
        if (!nodes || cap > 0xFFFFFFF0u) {
            if (nodes) j->nodes = nodes;
            j->failed = 1;
            return -1;
        }
        j->nodes = nodes;
        j->cap_nodes = cap;
    }
    memset(&j->nodes[j->n_nodes], 0, sizeof(gemini__tok_jnode));
    j->nodes[j->n_nodes].type = type;
    j->nodes[j->n_nodes].start = (uint32_t)j->pos;
    return (int64_t)j->n_nodes++;
}

static int gemini__tok_json_string(gemini__tok_json *j)
{
    int64_t at = gemini__tok_json_add(j, GEMINI__TOK_JSTRING);
    if (at < 0) return 0;
    j->pos++; /* the opening quote */
    j->nodes[at].start = (uint32_t)j->pos;
    while (j->pos < j->n && j->s[j->pos] != '"') {
        unsigned char c = (unsigned char)j->s[j->pos];
        if (c < 0x20) { j->error = "control character in a string"; return 0; }
        if (c == '\\') {
            uint32_t v;
            if (j->pos + 1 >= j->n) break;
            c = (unsigned char)j->s[j->pos + 1];
            if (c == 'u') {
                if (j->pos + 6 > j->n || !gemini__tok_json_hex4(j->s + j->pos + 2, &v)) {
                    j->error = "bad \\u escape";
                    return 0;
                }
                j->pos += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", c)) { j->error = "bad escape"; return 0; }
            j->pos += 2;
            continue;
        }
        j->pos++;
    }
    if (j->pos >= j->n) { j->error = "unterminated string"; return 0; }
    j->nodes[at].end = (uint32_t)j->pos;
    j->pos++;
    j->nodes[at].next = (uint32_t)j->n_nodes;
    return 1;
}

static int gemini__tok_json_number(gemini__tok_json *j)
{
    int64_t at = gemini__tok_json_add(j, GEMINI__TOK_JNUMBER);
    size_t p = j->pos;
    const char *s = j->s;
    if (at < 0) return 0;
    if (p < j->n && s[p] == '-') p++;
    if (p < j->n && s[p] == '0') p++;
    else if (p < j->n && s[p] >= '1' && s[p] <= '9')
        while (p < j->n && s[p] >= '0' && s[p] <= '9') p++;
    else { j->error = "bad number"; return 0; }
    if (p < j->n && s[p] == '.') {
        p++;
        if (p >= j->n || s[p] < '0' || s[p] > '9') { j->error = "bad number"; return 0; }
        while (p < j->n && s[p] >= '0' && s[p] <= '9') p++;
    }
    if (p < j->n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < j->n && (s[p] == '+' || s[p] == '-')) p++;
        if (p >= j->n || s[p] < '0' || s[p] > '9') { j->error = "bad number"; return 0; }
        while (p < j->n && s[p] >= '0' && s[p] <= '9') p++;
    }
    j->nodes[at].end = (uint32_t)p;
    j->pos = p;
    j->nodes[at].next = (uint32_t)j->n_nodes;
    return 1;
}

static int gemini__tok_json_literal(gemini__tok_json *j, const char *word, uint32_t type)
{
    size_t len = strlen(word);
    int64_t at;
    if (j->n - j->pos < len || memcmp(j->s + j->pos, word, len) != 0) {
        j->error = "unexpected character";
        return 0;
    }
    at = gemini__tok_json_add(j, type);
    if (at < 0) return 0;
    j->pos += len;
    j->nodes[at].end = (uint32_t)j->pos;
    j->nodes[at].next = (uint32_t)j->n_nodes;
    return 1;
}

static int gemini__tok_json_container(gemini__tok_json *j, int depth, int is_object)
{
    int64_t at = gemini__tok_json_add(j, is_object ? GEMINI__TOK_JOBJECT : GEMINI__TOK_JARRAY);
    char close = is_object ? '}' : ']';
    uint32_t count = 0;
    if (at < 0) return 0;
    j->pos++;
    gemini__tok_json_ws(j);
    if (j->pos < j->n && j->s[j->pos] == close) {
        j->pos++;
    } else {
        for (;;) {
            gemini__tok_json_ws(j);
            if (is_object) {
                if (j->pos >= j->n || j->s[j->pos] != '"') {
                    j->error = "expected a key";
                    return 0;
                }
                if (!gemini__tok_json_string(j)) return 0;
                gemini__tok_json_ws(j);
                if (j->pos >= j->n || j->s[j->pos] != ':') { j->error = "expected ':'"; return 0; }
                j->pos++;
                count++;
            }
            if (!gemini__tok_json_value(j, depth + 1)) return 0;
            count++;
            gemini__tok_json_ws(j);
            if (j->pos < j->n && j->s[j->pos] == ',') { j->pos++; continue; }
            if (j->pos < j->n && j->s[j->pos] == close) { j->pos++; break; }
            j->error = "expected ',' or a closing bracket";
            return 0;
        }
    }
    j->nodes[at].count = count;
    j->nodes[at].end = (uint32_t)j->pos;
    j->nodes[at].next = (uint32_t)j->n_nodes;
    return 1;
}

static int gemini__tok_json_value(gemini__tok_json *j, int depth)
{
    char c;
    if (depth > 64) { j->error = "nested too deeply"; return 0; }
    gemini__tok_json_ws(j);
    if (j->pos >= j->n) { j->error = "unexpected end"; return 0; }
    c = j->s[j->pos];
    if (c == '{') return gemini__tok_json_container(j, depth, 1);
    if (c == '[') return gemini__tok_json_container(j, depth, 0);
    if (c == '"') return gemini__tok_json_string(j);
    if (c == 't') return gemini__tok_json_literal(j, "true", GEMINI__TOK_JTRUE);
    if (c == 'f') return gemini__tok_json_literal(j, "false", GEMINI__TOK_JFALSE);
    if (c == 'n') return gemini__tok_json_literal(j, "null", GEMINI__TOK_JNULL);
    return gemini__tok_json_number(j);
}

/* The value of key in object node obj, or -1. */
static int64_t gemini__tok_json_get(const gemini__tok_json *j, int64_t obj, const char *key)
{
    uint32_t k, i;
    size_t key_len = strlen(key);
    if (obj < 0 || j->nodes[obj].type != GEMINI__TOK_JOBJECT) return -1;
    i = (uint32_t)obj + 1;
    for (k = 0; k < j->nodes[obj].count; k += 2) {
        const gemini__tok_jnode *kn = &j->nodes[i];
        /* keys with escapes never match the plain ASCII names asked for here */
        if (kn->end - kn->start == key_len && memcmp(j->s + kn->start, key, key_len) == 0)
            return i + 1;
        i = j->nodes[i + 1].next;
    }
    return -1;
}

/* The first child of node when it has the given type and children, else -1. */
static int64_t gemini__tok_json_first(const gemini__tok_json *j, int64_t node, uint32_t type)
{
    if (node < 0 || j->nodes[node].type != type || j->nodes[node].count == 0) return -1;
    return node + 1;
}

/* Decodes string node into b (replacing its content); returns 0 on a bad escape. */
static int gemini__tok_json_text(const gemini__tok_json *j, int64_t node, gemini__tok_buf *b)
{
    const char *s, *end;
    b->len = 0;
    if (node < 0 || j->nodes[node].type != GEMINI__TOK_JSTRING) return 0;
    s = j->s + j->nodes[node].start;
    end = j->s + j->nodes[node].end;
    while (s < end) {
        const char *run = s;
        uint32_t cp;
        char utf8[4];
        size_t n;
        while (s < end && *s != '\\') s++;
        gemini__tok_buf_append(b, run, (size_t)(s - run));
        if (s >= end) break;
        switch (s[1]) {
        case 'b': gemini__tok_buf_append(b, "\b", 1); s += 2; continue;
        case 'f': gemini__tok_buf_append(b, "\f", 1); s += 2; continue;
        case 'n': gemini__tok_buf_append(b, "\n", 1); s += 2; continue;
        case 'r': gemini__tok_buf_append(b, "\r", 1); s += 2; continue;
        case 't': gemini__tok_buf_append(b, "\t", 1); s += 2; continue;
        case 'u': break;
        default: gemini__tok_buf_append(b, s + 1, 1); s += 2; continue;
        }
        gemini__tok_json_hex4(s + 2, &cp);
        s += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return 0;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (end - s < 6 || s[0] != '\\' || s[1] != 'u' || !gemini__tok_json_hex4(s + 2, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF)
                return 0;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            s += 6;
        }
        if (cp < 0x80) { utf8[0] = (char)cp; n = 1; }
        else if (cp < 0x800) {
            utf8[0] = (char)(0xC0 | (cp >> 6)); utf8[1] = (char)(0x80 | (cp & 0x3F)); n = 2;
        } else if (cp < 0x10000) {
            utf8[0] = (char)(0xE0 | (cp >> 12)); utf8[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            utf8[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
        } else {
            utf8[0] = (char)(0xF0 | (cp >> 18)); utf8[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            utf8[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); utf8[3] = (char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        gemini__tok_buf_append(b, utf8, n);
    }
    return !b->failed;
}

static int gemini__tok_json_is(const gemini__tok_json *j, int64_t node, const char *z)
{
    size_t n = strlen(z);
    const gemini__tok_jnode *jn;
    gemini__tok_buf text;
    int same;
    if (node < 0 || j->nodes[node].type != GEMINI__TOK_JSTRING) return 0;
    jn = &j->nodes[node];
    if (!memchr(j->s + jn->start, '\\', jn->end - jn->start))
        return jn->end - jn->start == n && memcmp(j->s + jn->start, z, n) == 0;
    /* escaped: compare the decoded text */
    memset(&text, 0, sizeof text);
    same = gemini__tok_json_text(j, node, &text) && text.len == n &&
           (n == 0 || memcmp(text.data, z, n) == 0);
    gemini__tok_buf_free(&text);
    return same;
}

static int gemini__tok_json_number_value(const gemini__tok_json *j, int64_t node, double *v)
{
    char tmp[64];
    size_t n;
    if (node < 0 || j->nodes[node].type != GEMINI__TOK_JNUMBER) return 0;
    n = j->nodes[node].end - j->nodes[node].start;
    if (n >= sizeof tmp) return 0;
    memcpy(tmp, j->s + j->nodes[node].start, n);
    tmp[n] = 0;
    *v = strtod(tmp, NULL);
    return 1;
}

static int gemini__tok_json_bool(const gemini__tok_json *j, int64_t node, int fallback)
{
    if (node < 0) return fallback;
    if (j->nodes[node].type == GEMINI__TOK_JTRUE) return 1;
    if (j->nodes[node].type == GEMINI__TOK_JFALSE) return 0;
    return fallback;
}

/* What a tokenizer.json is turned into: a desc plus the storage behind it. */
typedef struct gemini__tok_hf {
    gemini_tok_spm_desc d;
    gemini__tok_buf text;        /* all piece bytes */
    size_t *offsets;             /* (n) into text, SIZE_MAX = no piece yet */
    uint32_t *lengths;
    float *scores;
    uint8_t *types;
    const char **pieces;
    gemini__tok_buf charsmap;
    int has_score;               /* unigram: scores come from the file */
} gemini__tok_hf;

/* Allocates the per-id arrays for h->d.n_pieces ids: no piece yet, type NORMAL. The caller's
   cleanup frees whatever was allocated, also on failure. */
static gemini_result gemini__tok_hf_alloc(gemini__tok_hf *h)
{
    size_t n = (size_t)h->d.n_pieces, i;
    h->offsets = (size_t *)gemini__tok_malloc_array(n, sizeof(size_t));
    h->lengths = (uint32_t *)gemini__tok_malloc_array(n, sizeof(uint32_t));
    h->scores = (float *)gemini__tok_malloc_array(n, sizeof(float));
    h->types = (uint8_t *)gemini__tok_malloc_array(n, 1);
    h->pieces = (const char **)gemini__tok_malloc_array(n, sizeof(char *));
    if (!h->offsets || !h->lengths || !h->scores || !h->types || !h->pieces)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer.json: no memory");
    for (i = 0; i < n; i++) {
        h->offsets[i] = (size_t)-1;
        h->types[i] = GEMINI_TOK_NORMAL;
    }
    return GEMINI_OK;
}

static gemini_result gemini__tok_hf_set(gemini__tok_hf *h, int64_t id, const char *p, size_t n,
                                        double score)
{
    if (id < 0 || id >= h->d.n_pieces)
        return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: id %lld out of range",
                            (long long)id);
    if (h->offsets[id] != (size_t)-1) {
        if (h->lengths[id] == n && memcmp(h->text.data + h->offsets[id], p, n) == 0)
            return GEMINI_OK;
        return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: id %lld has two different "
                            "pieces", (long long)id);
    }
    h->offsets[id] = h->text.len;
    h->lengths[id] = (uint32_t)n;
    h->scores[id] = (float)score;
    gemini__tok_buf_append(&h->text, p, n);
    return h->text.failed ? gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer.json: no memory")
                          : GEMINI_OK;
}

static int gemini__tok_base64(const char *s, size_t n, gemini__tok_buf *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        char c = s[i];
        uint32_t v;
        if (c >= 'A' && c <= 'Z') v = (uint32_t)(c - 'A');
        else if (c >= 'a' && c <= 'z') v = (uint32_t)(c - 'a' + 26);
        else if (c >= '0' && c <= '9') v = (uint32_t)(c - '0' + 52);
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') break;
        else return 0;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            char byte = (char)((acc >> (bits - 8)) & 0xFF);
            gemini__tok_buf_append(out, &byte, 1);
            bits -= 8;
        }
    }
    return !out->failed;
}

/* Reads a normalizer (or pre_tokenizer when pre is set) into the SentencePiece settings.
   Only what SentencePiece-converted files use is accepted. */
static gemini_result gemini__tok_hf_normalizer(const gemini__tok_json *j, int64_t node,
                                               gemini__tok_hf *h, int pre, int depth)
{
    int64_t type, list, item;
    uint32_t k;
    gemini__tok_buf tmp;
    if (node < 0 || j->nodes[node].type == GEMINI__TOK_JNULL) return GEMINI_OK;
    if (depth > 8 || j->nodes[node].type != GEMINI__TOK_JOBJECT)
        return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: a %s is not an object",
                            pre ? "pre_tokenizer" : "normalizer");
    type = gemini__tok_json_get(j, node, "type");
    memset(&tmp, 0, sizeof tmp);
    if (gemini__tok_json_is(j, type, "Sequence")) {
        list = gemini__tok_json_get(j, node, pre ? "pretokenizers" : "normalizers");
        item = gemini__tok_json_first(j, list, GEMINI__TOK_JARRAY);
        for (k = 0; item >= 0 && k < j->nodes[list].count; k++) {
            gemini_result r = gemini__tok_hf_normalizer(j, item, h, pre, depth + 1);
            if (r != GEMINI_OK) return r;
            item = j->nodes[item].next;
        }
        return GEMINI_OK;
    }
    if (!pre && gemini__tok_json_is(j, type, "Prepend") &&
        gemini__tok_json_is(j, gemini__tok_json_get(j, node, "prepend"), "\xE2\x96\x81")) {
        h->d.add_dummy_prefix = 1;
        return GEMINI_OK;
    }
    if (!pre && gemini__tok_json_is(j, type, "Replace")) {
        int64_t pattern = gemini__tok_json_get(j, node, "pattern");
        int64_t content = gemini__tok_json_get(j, node, "content");
        if (gemini__tok_json_is(j, gemini__tok_json_get(j, pattern, "String"), " ") &&
            gemini__tok_json_is(j, content, "\xE2\x96\x81")) {
            h->d.escape_whitespaces = 1;
            return GEMINI_OK;
        }
        if (gemini__tok_json_is(j, gemini__tok_json_get(j, pattern, "Regex"), " {2,}")) {
            h->d.remove_extra_whitespaces = 1;
            return GEMINI_OK;
        }
    }
    if (!pre && gemini__tok_json_is(j, type, "Strip")) {
        h->d.remove_extra_whitespaces = 1;
        return GEMINI_OK;
    }
    if (!pre && gemini__tok_json_is(j, type, "Precompiled")) {
        int64_t map = gemini__tok_json_get(j, node, "precompiled_charsmap");
        if (map >= 0 && j->nodes[map].type == GEMINI__TOK_JNULL) return GEMINI_OK;
        if (!gemini__tok_json_text(j, map, &tmp) ||
            !gemini__tok_base64(tmp.data, tmp.len, &h->charsmap)) {
            gemini__tok_buf_free(&tmp);
            return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: bad precompiled_charsmap");
        }
        gemini__tok_buf_free(&tmp);
        return GEMINI_OK;
    }
    if (pre && gemini__tok_json_is(j, type, "Metaspace")) {
        int64_t scheme = gemini__tok_json_get(j, node, "prepend_scheme");
        h->d.escape_whitespaces = 1;
        if (scheme >= 0) h->d.add_dummy_prefix = !gemini__tok_json_is(j, scheme, "never");
        else h->d.add_dummy_prefix =
            gemini__tok_json_bool(j, gemini__tok_json_get(j, node, "add_prefix_space"), 1);
        return GEMINI_OK;
    }
    if (pre && gemini__tok_json_is(j, type, "Split") &&
        gemini__tok_json_is(j, gemini__tok_json_get(j, gemini__tok_json_get(j, node, "pattern"),
                                                    "String"), " "))
        return GEMINI_OK; /* a no-op once spaces are U+2581 */
    return gemini__fail(GEMINI_ERR_UNSUPPORTED, "tokenizer.json: this %s is not supported "
                        "(only those of SentencePiece conversions)",
                        pre ? "pre_tokenizer" : "normalizer");
}

/* ---- Byte-level BPE tokenizer.json -------------------------------------------------------- */

/* GPT-2 writes each byte of a piece as one character: the printable bytes 0x21-0x7E,
   0xA1-0xAC and 0xAE-0xFF as the code point of the same value, the other 68 bytes, in
   increasing order, as U+0100 onwards. Fills the inverse: code point -> byte, or -1. */
static void gemini__tok_byte_level_table(int16_t from_cp[0x144])
{
    int b, extra = 0;
    for (b = 0; b < 0x144; b++) from_cp[b] = -1;
    for (b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        from_cp[printable ? b : 0x100 + extra++] = (int16_t)b;
    }
}

/* Turns the byte-level text in b into raw bytes, in place; 0 if a character is not one of
   the 256 that stand for bytes. */
static int gemini__tok_unbyte(const int16_t from_cp[0x144], gemini__tok_buf *b)
{
    size_t i = 0, out = 0;
    while (i < b->len) {
        size_t len;
        uint32_t cp;
        if (gemini__tok_utf8_valid((const unsigned char *)b->data + i, b->len - i) == 0) return 0;
        cp = gemini__tok_code_point((const unsigned char *)b->data + i, b->len - i, &len);
        if (cp >= 0x144 || from_cp[cp] < 0) return 0;
        b->data[out++] = (char)from_cp[cp];
        i += len;
    }
    b->len = out;
    return 1;
}

/* The left and right parts of merge node item ("a b" or ["a", "b"]) as raw bytes. */
static int gemini__tok_merge_parts(const gemini__tok_json *j, int64_t item,
                                   const int16_t from_cp[0x144], gemini__tok_buf *a,
                                   gemini__tok_buf *b)
{
    if (j->nodes[item].type == GEMINI__TOK_JARRAY && j->nodes[item].count == 2) {
        if (!gemini__tok_json_text(j, item + 1, a) ||
            !gemini__tok_json_text(j, j->nodes[item + 1].next, b))
            return 0;
    } else {
        char *space;
        size_t left;
        if (!gemini__tok_json_text(j, item, a) || !(space = (char *)memchr(a->data, ' ', a->len)))
            return 0;
        left = (size_t)(space - a->data);
        b->len = 0;
        gemini__tok_buf_append(b, space + 1, a->len - left - 1);
        a->len = left;
        if (b->failed || memchr(b->data, ' ', b->len)) return 0;
    }
    return gemini__tok_unbyte(from_cp, a) && gemini__tok_unbyte(from_cp, b);
}

/* Loads the model of a tokenizer.json whose pre_tokenizer is ByteLevel. */
static gemini_result gemini__tok_load_bytelevel(const gemini__tok_json *j, int64_t root,
                                                int64_t model, gemini_tok **out)
{
    int16_t from_cp[0x144];
    int64_t pre = gemini__tok_json_get(j, root, "pre_tokenizer");
    int64_t norm = gemini__tok_json_get(j, root, "normalizer");
    int64_t vocab = gemini__tok_json_get(j, model, "vocab");
    int64_t merges = gemini__tok_json_get(j, model, "merges");
    int64_t added = gemini__tok_json_get(j, root, "added_tokens");
    int64_t item, max_id = -1, i, prefix, suffix;
    gemini__tok_hf h;
    gemini__tok_buf a, b;
    gemini__tok_map map;
    gemini_tok fake;
    gemini_tok_bpe_desc d;
    int32_t *pairs = NULL;
    uint32_t k, n_merges = 0;
    gemini_result r = GEMINI_OK;

    gemini__tok_byte_level_table(from_cp);
    memset(&h, 0, sizeof h);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&map, 0, sizeof map);
    memset(&d, 0, sizeof d);
    prefix = gemini__tok_json_get(j, model, "continuing_subword_prefix");
    suffix = gemini__tok_json_get(j, model, "end_of_word_suffix");
    if (norm >= 0 && j->nodes[norm].type != GEMINI__TOK_JNULL)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "tokenizer.json: a normalizer before a "
                            "ByteLevel pre_tokenizer is not supported");
    if (gemini__tok_json_bool(j, gemini__tok_json_get(j, pre, "add_prefix_space"), 1) ||
        !gemini__tok_json_bool(j, gemini__tok_json_get(j, pre, "use_regex"), 1))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "tokenizer.json: ByteLevel with "
                            "add_prefix_space or without use_regex is not supported");
    if ((prefix >= 0 && j->nodes[prefix].type != GEMINI__TOK_JNULL &&
         !gemini__tok_json_is(j, prefix, "")) ||
        (suffix >= 0 && j->nodes[suffix].type != GEMINI__TOK_JNULL &&
         !gemini__tok_json_is(j, suffix, "")))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "tokenizer.json: BPE subword prefixes or "
                            "suffixes are not supported with ByteLevel");
    if (vocab < 0 || j->nodes[vocab].type != GEMINI__TOK_JOBJECT ||
        (merges >= 0 && j->nodes[merges].type != GEMINI__TOK_JARRAY))
        return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: model.vocab or model.merges "
                            "is missing or has the wrong kind");

    /* Count the ids (vocab values and added token ids). */
    for (k = 0, item = vocab + 1; k < j->nodes[vocab].count; k += 2) {
        double v;
        if (!gemini__tok_json_number_value(j, item + 1, &v) || v < 0 || v >= 16777216.0 ||
            v != (double)(int64_t)v)
            return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: a vocab id is not an "
                                "integer in [0, 2^24)");
        if ((int64_t)v > max_id) max_id = (int64_t)v;
        item = j->nodes[item + 1].next;
    }
    for (k = 0, item = gemini__tok_json_first(j, added, GEMINI__TOK_JARRAY);
         item >= 0 && k < j->nodes[added].count; k++, item = j->nodes[item].next) {
        double v;
        if (!gemini__tok_json_number_value(j, gemini__tok_json_get(j, item, "id"), &v) || v < 0 ||
            v >= 16777216.0 || v != (double)(int64_t)v)
            return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: added token %u has no "
                                "integer id in [0, 2^24)", (unsigned)k);
        if ((int64_t)v > max_id) max_id = (int64_t)v;
    }
    if (max_id < 255)
        return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: %lld ids cannot hold the 256 "
                            "byte pieces", (long long)(max_id + 1));

    h.d.n_pieces = (int32_t)(max_id + 1);
    r = gemini__tok_hf_alloc(&h);
    if (r != GEMINI_OK)
        goto done;

    /* Vocabulary pieces are in byte-level form; added tokens are plain text. */
    for (k = 0, item = vocab + 1; r == GEMINI_OK && k < j->nodes[vocab].count; k += 2) {
        double v;
        gemini__tok_json_number_value(j, item + 1, &v);
        if (!gemini__tok_json_text(j, item, &a) || !gemini__tok_unbyte(from_cp, &a))
            r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: vocab entry %u (id %lld) is "
                             "not in byte-level form", (unsigned)(k / 2), (long long)v);
        else r = gemini__tok_hf_set(&h, (int64_t)v, a.data ? a.data : "", a.len, 0.0);
        item = j->nodes[item + 1].next;
    }
    for (k = 0, item = gemini__tok_json_first(j, added, GEMINI__TOK_JARRAY);
         r == GEMINI_OK && item >= 0 && k < j->nodes[added].count;
         k++, item = j->nodes[item].next) {
        double v;
        gemini__tok_json_number_value(j, gemini__tok_json_get(j, item, "id"), &v);
        if (!gemini__tok_json_text(j, gemini__tok_json_get(j, item, "content"), &a) ||
            a.len == 0) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: added token %u lacks content",
                             (unsigned)k);
            break;
        }
        r = gemini__tok_hf_set(&h, (int64_t)v, a.data, a.len, 0.0);
        if (r == GEMINI_OK)
            h.types[(int64_t)v] =
                gemini__tok_json_bool(j, gemini__tok_json_get(j, item, "special"), 0) ?
                GEMINI_TOK_CONTROL : GEMINI_TOK_USER_DEFINED;
    }
    if (r != GEMINI_OK) goto done;
    for (i = 0; i < h.d.n_pieces; i++) {
        if (h.offsets[i] == (size_t)-1) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: no piece has id %lld",
                             (long long)i);
            goto done;
        }
    }
    for (i = 0; i < h.d.n_pieces; i++)
        h.pieces[i] = h.text.data ? h.text.data + h.offsets[i] : "";

    /* Merges: both parts must be vocabulary pieces. */
    memset(&fake, 0, sizeof fake);
    fake.n_pieces = h.d.n_pieces;
    fake.pieces = h.pieces;
    fake.piece_lengths = h.lengths;
    fake.types = h.types;
    r = gemini__tok_map_build(&map, &fake, 1u << GEMINI_TOK_NORMAL, "piece");
    if (r != GEMINI_OK) goto done;
    n_merges = merges >= 0 ? j->nodes[merges].count : 0;
    pairs = (int32_t *)gemini__tok_malloc_array((size_t)n_merges, 2 * sizeof(int32_t));
    if (!pairs) {
        r = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer.json: no memory for the merges");
        goto done;
    }
    for (k = 0, item = gemini__tok_json_first(j, merges, GEMINI__TOK_JARRAY); item >= 0 &&
         k < n_merges; k++, item = j->nodes[item].next) {
        if (!gemini__tok_merge_parts(j, item, from_cp, &a, &b)) {
            r = gemini__fail(a.failed || b.failed ? GEMINI_ERR_OUT_OF_MEMORY : GEMINI_ERR_FORMAT,
                             "tokenizer.json: merge %u is not two byte-level pieces", k);
            goto done;
        }
        pairs[2 * k] = gemini__tok_map_find(&fake, &map, a.data ? a.data : "", a.len);
        pairs[2 * k + 1] = gemini__tok_map_find(&fake, &map, b.data ? b.data : "", b.len);
        if (pairs[2 * k] < 0 || pairs[2 * k + 1] < 0) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: merge %u names a piece that "
                             "is not in the vocabulary", k);
            goto done;
        }
    }

    d.n_pieces = h.d.n_pieces;
    d.pieces = h.pieces;
    d.piece_lengths = h.lengths;
    d.types = h.types;
    d.n_merges = (int32_t)n_merges;
    d.merges = pairs;
    d.bos_id = d.pad_id = -1;
    {
        gemini__tok_str eot = {"<|endoftext|>", 13};
        gemini_tok_spm_desc view;
        memset(&view, 0, sizeof view);
        view.n_pieces = h.d.n_pieces;
        view.pieces = h.pieces;
        view.piece_lengths = h.lengths;
        view.types = h.types;
        d.eos_id = gemini__tok_find_typed(&view, eot, GEMINI_TOK_CONTROL);
    }
    r = gemini_tok_create_bpe(&d, out);

done:
    GEMINI_FREE(pairs);
    gemini__tok_map_free(&map);
    gemini__tok_buf_free(&a);
    gemini__tok_buf_free(&b);
    gemini__tok_buf_free(&h.text);
    GEMINI_FREE(h.offsets);
    GEMINI_FREE(h.lengths);
    GEMINI_FREE(h.scores);
    GEMINI_FREE(h.types);
    GEMINI_FREE((void *)h.pieces);
    return r;
}

static gemini_result gemini__tok_load_json(const char *text, size_t size, gemini_tok **out)
{
    gemini__tok_json j;
    gemini__tok_hf h;
    gemini__tok_buf a, b;
    gemini_result r = GEMINI_OK;
    int64_t root, model, vocab, added, item, mtype, unk, merges;
    uint32_t k;
    int64_t max_id = -1, i;
    int is_bpe;
    gemini_tok fake;
    gemini__tok_map map;

    memset(&j, 0, sizeof j);
    memset(&h, 0, sizeof h);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&map, 0, sizeof map);
    if (size > 0xFFFFFFF0u)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "tokenizer.json: over 4 GiB");
    j.s = text;
    j.n = size;
    if (!gemini__tok_json_value(&j, 0) || (gemini__tok_json_ws(&j), j.pos != j.n)) {
        r = j.failed ? gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer.json: no memory")
                     : gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: %s at byte %zu",
                                    j.error ? j.error : "trailing characters", j.pos);
        goto done;
    }
    root = 0;
    model = gemini__tok_json_get(&j, root, "model");
    mtype = gemini__tok_json_get(&j, model, "type");
    vocab = gemini__tok_json_get(&j, model, "vocab");
    added = gemini__tok_json_get(&j, root, "added_tokens");
    is_bpe = gemini__tok_json_is(&j, mtype, "BPE");
    if (is_bpe && gemini__tok_json_is(&j, gemini__tok_json_get(&j, gemini__tok_json_get(
            &j, root, "pre_tokenizer"), "type"), "ByteLevel")) {
        r = gemini__tok_load_bytelevel(&j, root, model, out);
        goto done;
    }
    if (!is_bpe && !gemini__tok_json_is(&j, mtype, "Unigram")) {
        r = gemini__fail(GEMINI_ERR_UNSUPPORTED, "tokenizer.json: model type is not BPE or "
                         "Unigram");
        goto done;
    }
    if (vocab < 0 || j.nodes[vocab].type != (is_bpe ? GEMINI__TOK_JOBJECT : GEMINI__TOK_JARRAY)) {
        r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: model.vocab is missing or has the "
                         "wrong kind");
        goto done;
    }

    /* Count the ids: a BPE vocab maps piece -> id, a unigram vocab lists [piece, score]. */
    if (is_bpe) {
        for (k = 0, item = vocab + 1; k < j.nodes[vocab].count; k += 2) {
            double v;
            if (!gemini__tok_json_number_value(&j, item + 1, &v) || v < 0 || v > 16777216.0 ||
                v != (double)(int64_t)v) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: a vocab id is not an "
                                 "integer in range");
                goto done;
            }
            if ((int64_t)v > max_id) max_id = (int64_t)v;
            item = j.nodes[item + 1].next;
        }
    } else {
        max_id = (int64_t)j.nodes[vocab].count - 1;
    }
    for (k = 0, item = gemini__tok_json_first(&j, added, GEMINI__TOK_JARRAY);
         item >= 0 && k < j.nodes[added].count; k++, item = j.nodes[item].next) {
        double v;
        if (!gemini__tok_json_number_value(&j, gemini__tok_json_get(&j, item, "id"), &v) || v < 0 ||
            v > 16777216.0) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: an added token lacks an id");
            goto done;
        }
        if ((int64_t)v > max_id) max_id = (int64_t)v;
    }
    if (max_id < 0) {
        r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: empty vocabulary");
        goto done;
    }
    h.d.n_pieces = (int32_t)(max_id + 1);
    h.d.model_type = is_bpe ? GEMINI_TOK_BPE : GEMINI_TOK_UNIGRAM;
    h.d.unk_id = h.d.bos_id = h.d.eos_id = h.d.pad_id = -1;
    r = gemini__tok_hf_alloc(&h);
    if (r != GEMINI_OK)
        goto done;

    /* The pieces. */
    if (is_bpe) {
        for (k = 0, item = vocab + 1; r == GEMINI_OK && k < j.nodes[vocab].count; k += 2) {
            double v;
            gemini__tok_json_number_value(&j, item + 1, &v);
            if (!gemini__tok_json_text(&j, item, &a))
                r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: bad vocab string");
            else r = gemini__tok_hf_set(&h, (int64_t)v, a.data, a.len, 0.0);
            item = j.nodes[item + 1].next;
        }
    } else {
        for (k = 0, item = vocab + 1; r == GEMINI_OK && k < j.nodes[vocab].count; k++) {
            int64_t p = gemini__tok_json_first(&j, item, GEMINI__TOK_JARRAY);
            double score;
            if (p < 0 || j.nodes[item].count != 2 || !gemini__tok_json_text(&j, p, &a) ||
                !gemini__tok_json_number_value(&j, j.nodes[p].next, &score))
                r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: vocab entry %u is not "
                                 "[piece, score]", (unsigned)k);
            else r = gemini__tok_hf_set(&h, (int64_t)k, a.data, a.len, score);
            item = j.nodes[item].next;
        }
    }
    if (r != GEMINI_OK) goto done;

    /* Added tokens: special ones become CONTROL, the others USER_DEFINED. */
    for (k = 0, item = gemini__tok_json_first(&j, added, GEMINI__TOK_JARRAY);
         item >= 0 && k < j.nodes[added].count; k++, item = j.nodes[item].next) {
        double v;
        gemini__tok_json_number_value(&j, gemini__tok_json_get(&j, item, "id"), &v);
        if (!gemini__tok_json_text(&j, gemini__tok_json_get(&j, item, "content"), &a)) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: an added token lacks content");
            goto done;
        }
        r = gemini__tok_hf_set(&h, (int64_t)v, a.data, a.len, 0.0);
        if (r != GEMINI_OK) goto done;
        h.types[(int64_t)v] =
            gemini__tok_json_bool(&j, gemini__tok_json_get(&j, item, "special"), 0) ?
            GEMINI_TOK_CONTROL : GEMINI_TOK_USER_DEFINED;
    }
    for (i = 0; i < h.d.n_pieces; i++)
        if (h.offsets[i] == (size_t)-1) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: no piece has id %lld",
                             (long long)i);
            goto done;
        }
    for (i = 0; i < h.d.n_pieces; i++) h.pieces[i] = h.text.data + h.offsets[i];

    /* Byte pieces and the unknown piece. */
    h.d.byte_fallback = gemini__tok_json_bool(&j, gemini__tok_json_get(&j, model, "byte_fallback"),
                                              0);
    if (h.d.byte_fallback)
        for (i = 0; i < h.d.n_pieces; i++)
            if (gemini__tok_byte_of_piece(h.pieces[i], h.lengths[i]) >= 0)
                h.types[i] = GEMINI_TOK_BYTE;
    unk = is_bpe ? gemini__tok_json_get(&j, model, "unk_token") : -1;
    if (unk >= 0 && j.nodes[unk].type == GEMINI__TOK_JSTRING) {
        gemini__tok_json_text(&j, unk, &a);
        for (i = 0; i < h.d.n_pieces; i++)
            if (h.lengths[i] == a.len && memcmp(h.pieces[i], a.data, a.len) == 0)
                h.d.unk_id = (int32_t)i;
    } else if (!is_bpe) {
        double v;
        if (gemini__tok_json_number_value(&j, gemini__tok_json_get(&j, model, "unk_id"), &v) &&
            v >= 0 && v < (double)h.d.n_pieces)
            h.d.unk_id = (int32_t)v;
    }
    if (h.d.unk_id < 0 || h.d.unk_id >= h.d.n_pieces) {
        r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: no unknown token");
        goto done;
    }
    h.types[h.d.unk_id] = GEMINI_TOK_UNKNOWN;

    /* BPE scores: a piece scores minus the rank of the first merge that creates it, so that
       merging by score follows the merge list. */
    h.d.n_pieces = (int32_t)(max_id + 1);
    h.d.pieces = h.pieces;
    h.d.piece_lengths = h.lengths;
    h.d.scores = h.scores;
    h.d.types = h.types;
    if (is_bpe) {
        float unset = 1.0f;
        merges = gemini__tok_json_get(&j, model, "merges");
        for (i = 0; i < h.d.n_pieces; i++) h.scores[i] = unset;
        memset(&fake, 0, sizeof fake);
        fake.n_pieces = h.d.n_pieces;
        fake.pieces = h.pieces;
        fake.piece_lengths = h.lengths;
        fake.types = h.types;
        r = gemini__tok_map_build(&map, &fake, GEMINI__TOK_NORMAL_MASK, "piece");
        if (r != GEMINI_OK) goto done;
        for (k = 0, item = gemini__tok_json_first(&j, merges, GEMINI__TOK_JARRAY);
             item >= 0 && k < j.nodes[merges].count; k++, item = j.nodes[item].next) {
            int32_t id;
            if (j.nodes[item].type == GEMINI__TOK_JARRAY && j.nodes[item].count == 2) {
                if (!gemini__tok_json_text(&j, item + 1, &a) ||
                    !gemini__tok_json_text(&j, j.nodes[item + 1].next, &b)) {
                    r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: bad merge %u", k);
                    goto done;
                }
                gemini__tok_buf_append(&a, b.data, b.len);
            } else {
                char *space;
                if (!gemini__tok_json_text(&j, item, &a) ||
                    !(space = (char *)memchr(a.data, ' ', a.len)) ||
                    memchr(space + 1, ' ', a.len - (size_t)(space + 1 - a.data))) {
                    r = gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.json: bad merge %u", k);
                    goto done;
                }
                memmove(space, space + 1, a.len - (size_t)(space + 1 - a.data));
                a.len--;
            }
            if (a.failed) {
                r = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "tokenizer.json: no memory");
                goto done;
            }
            id = gemini__tok_map_find(&fake, &map, a.data, a.len);
            if (id >= 0 && h.scores[id] == unset) h.scores[id] = -(float)k;
        }
        for (i = 0; i < h.d.n_pieces; i++)
            if (h.scores[i] == unset) h.scores[i] = -(float)k - 1.0f;
    }

    /* Normaliser and pre-tokeniser settings. */
    r = gemini__tok_hf_normalizer(&j, gemini__tok_json_get(&j, root, "normalizer"), &h, 0, 0);
    if (r == GEMINI_OK)
        r = gemini__tok_hf_normalizer(&j, gemini__tok_json_get(&j, root, "pre_tokenizer"), &h, 1,
                                      0);
    if (r != GEMINI_OK) goto done;
    h.d.charsmap = (const uint8_t *)h.charsmap.data;
    h.d.charsmap_size = h.charsmap.len;

    /* BOS, EOS and PAD by their usual names, when they are control tokens. */
    {
        static const char *const names[3][2] = {{"<bos>", "<s>"}, {"<eos>", "</s>"},
                                                {"<pad>", "<pad>"}};
        int32_t *ids[3];
        int s, n;
        ids[0] = &h.d.bos_id;
        ids[1] = &h.d.eos_id;
        ids[2] = &h.d.pad_id;
        for (s = 0; s < 3; s++)
            for (n = 0; n < 2 && *ids[s] < 0; n++) {
                gemini__tok_str name;
                name.p = names[s][n];
                name.n = strlen(names[s][n]);
                *ids[s] = gemini__tok_find_typed(&h.d, name, GEMINI_TOK_CONTROL);
            }
    }
    r = gemini__tok_create(&h.d, NULL, 0, NULL, 0, out);

done:
    GEMINI_FREE(j.nodes);
    gemini__tok_map_free(&map);
    gemini__tok_buf_free(&a);
    gemini__tok_buf_free(&b);
    gemini__tok_buf_free(&h.text);
    gemini__tok_buf_free(&h.charsmap);
    GEMINI_FREE(h.offsets);
    GEMINI_FREE(h.lengths);
    GEMINI_FREE(h.scores);
    GEMINI_FREE(h.types);
    GEMINI_FREE((void *)h.pieces);
    return r;
}

/* ---- Loading ------------------------------------------------------------------------------ */

GEMINI_API gemini_result gemini_tok_load_memory(const void *data, size_t size, gemini_tok **out)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t i = 0;
    if (!out) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_load_memory: out is "
                                  "NULL");
    *out = NULL;
    if (!data || size == 0)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_load_memory: no data");
    while (i < size && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    if (i < size && p[i] == '{') return gemini__tok_load_json((const char *)p, size, out);
    return gemini__tok_load_proto(p, size, out);
}

GEMINI_API gemini_result gemini_tok_load(const char *path, gemini_tok **out)
{
    FILE *f;
    long size;
    char *data;
    gemini_result r;
    if (!out || !path)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_tok_load: NULL argument");
    *out = NULL;
    f = fopen(path, "rb");
    if (!f) return gemini__fail(GEMINI_ERR_IO, "%s: cannot open", path);
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return gemini__fail(GEMINI_ERR_IO, "%s: cannot find the size", path);
    }
    if (size == 0) {
        fclose(f);
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: empty file", path);
    }
    data = (char *)GEMINI_MALLOC((size_t)size);
    if (!data) {
        fclose(f);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: no memory for %ld bytes", path, size);
    }
    if (fread(data, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        GEMINI_FREE(data);
        return gemini__fail(GEMINI_ERR_IO, "%s: read failed", path);
    }
    fclose(f);
    r = gemini_tok_load_memory(data, (size_t)size, out);
    GEMINI_FREE(data);
    if (r != GEMINI_OK) {
        char message[sizeof gemini__error_message];
        memcpy(message, gemini__error_message, sizeof message);
        gemini__fail(r, "%s: %s", path, message);
    }
    return r;
}

#if defined(GEMINI_STATIC) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC diagnostic pop
#endif

#endif /* GEMINI_TOKENIZER_IMPLEMENTATION */
