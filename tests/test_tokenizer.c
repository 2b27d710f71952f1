/* test_tokenizer.c - checks gemini_tokenizer.h against what spm_encode / spm_decode wrote.

   Usage: test_tokenizer [DATA_DIR REPO_ROOT MODEL...]
   Without arguments only the self-contained checks run, with the Gemma 3 ones relative to
   the current directory. DATA_DIR holds, for each MODEL and each input I in {corpus, bad,
   random}: MODEL.model, I.txt, MODEL.I.id, MODEL.I.piece and MODEL.I.dec
   (tests/tokenizer/run.sh makes them and passes the arguments).
   Gemma 3 checks, each skipped with a message when its file is absent:
     models/src/gemma-3-270m-q4_k_m.gguf     arrays read here -> gemini_tok_create_spm
     models/gemma3-rebuilt.model             made by tools/tokenizer_fixtures.py
     models/gemma3-rebuilt.tokenizer.json    made by tools/tokenizer_fixtures.py
   all compared with tests/tokenizer/gemma3_expected_ids.txt (Python sentencepiece).
   Whisper check, skipped with a message when the file is absent:
     models/whisper-base/tokenizer.json      made by tools/fetch_whisper_base.sh
   compared with tests/tokenizer/whisper_expected_*.txt (tokenizers and tiktoken, made by
   tools/whisper_tokenizer_fixtures.py). A byte-level tokenizer.json written here is always
   checked. test_tokenizer --bench-whisper ROOT prints the Whisper encode throughput.
   Prints one line per check and ends with "N passed, M failed".
*/
#define GEMINI_TOKENIZER_IMPLEMENTATION
#include "gemini_tokenizer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int n_passed, n_failed;

static void check(int ok, const char *name, const char *detail)
{
    if (ok) {
        printf("ok   %s\n", name);
        n_passed++;
    } else {
        printf("FAIL %s%s%s\n", name, detail ? ": " : "", detail ? detail : "");
        n_failed++;
    }
    fflush(stdout);
}

/* ---- Files and lines ---- */

typedef struct lines {
    char *data;
    size_t size;
    char **line;
    size_t *len;
    size_t n;
} lines;

static int read_file(const char *path, char **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = (char *)malloc((size_t)n + 1);
    if (!*data || fread(*data, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return 0;
    }
    (*data)[n] = 0;
    *size = (size_t)n;
    fclose(f);
    return 1;
}

/* Splits a file at '\n' (a final newline does not start another line). */
static int read_lines(const char *path, lines *out)
{
    size_t i, start = 0, k = 0;
    memset(out, 0, sizeof *out);
    if (!read_file(path, &out->data, &out->size)) return 0;
    for (i = 0; i < out->size; i++) if (out->data[i] == '\n') out->n++;
    if (out->size && out->data[out->size - 1] != '\n') out->n++;
    out->line = (char **)calloc(out->n + 1, sizeof(char *));
    out->len = (size_t *)calloc(out->n + 1, sizeof(size_t));
    for (i = 0; i <= out->size && k < out->n; i++) {
        if (i == out->size || out->data[i] == '\n') {
            out->line[k] = out->data + start;
            out->len[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    return 1;
}

static void free_lines(lines *l)
{
    free(l->data);
    free(l->line);
    free(l->len);
}

static size_t parse_ids(const char *s, size_t len, int32_t *ids, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len && n < max) {
        long v = 0;
        int neg = 0;
        while (i < len && s[i] == ' ') i++;
        if (i >= len) break;
        if (s[i] == '-') { neg = 1; i++; }
        while (i < len && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0');
        ids[n++] = (int32_t)(neg ? -v : v);
    }
    return n;
}

/* Strictly valid UTF-8 throughout (no cut character at the end). */
static int utf8_ok(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = gemini__tok_utf8_valid((const unsigned char *)s + i, n - i);
        if (k == 0) return 0;
        i += k;
    }
    return 1;
}

#define MAX_IDS 65536
static int32_t g_ids[MAX_IDS], g_expected[MAX_IDS];

/* Encodes every line and compares with the expected ids; returns the first bad line or -1. */
static long compare_ids(const gemini_tok *tok, const lines *text, const lines *expected,
                        uint32_t flags, int32_t *ids, int32_t *want)
{
    size_t i;
    if (text->n != expected->n) return 0;
    for (i = 0; i < text->n; i++) {
        int32_t n = 0;
        size_t m = parse_ids(expected->line[i], expected->len[i], want, MAX_IDS);
        if (gemini_tok_encode(tok, text->line[i], text->len[i], flags, ids, MAX_IDS, &n) !=
                GEMINI_OK || (size_t)n != m || memcmp(ids, want, m * sizeof(int32_t)) != 0)
            return (long)i;
    }
    return -1;
}

typedef struct piece_sink {
    char *buf;
    size_t len, cap;
} piece_sink;

static void collect_piece(void *user, int32_t id, const char *piece, size_t len)
{
    piece_sink *s = (piece_sink *)user;
    (void)id;
    if (s->len + len + 2 > s->cap) {
        s->cap = (s->len + len + 2) * 2;
        s->buf = (char *)realloc(s->buf, s->cap);
    }
    if (s->len) s->buf[s->len++] = ' ';
    memcpy(s->buf + s->len, piece, len);
    s->len += len;
}

/* Decodes ids both at once and through a stream; checks every stream chunk is whole UTF-8
   and that the chunks add up to the decode. Returns 1 when the decode equals want. */
static int decode_both(const gemini_tok *tok, const int32_t *ids, size_t n, const char *want,
                       size_t want_len, int *stream_ok)
{
    size_t len = 0, total = 0, i;
    char *text, *joined;
    gemini_tok_stream *s;
    const char *chunk;
    size_t chunk_len;
    int same;
    if (gemini_tok_decode(tok, ids, n, NULL, 0, &len) != GEMINI_OK) return 0;
    text = (char *)malloc(len + 1);
    gemini_tok_decode(tok, ids, n, text, len + 1, &len);
    same = want == NULL || (len == want_len && memcmp(text, want, len) == 0);

    joined = (char *)malloc(len + 64);
    *stream_ok = gemini_tok_stream_create(tok, &s) == GEMINI_OK;
    for (i = 0; *stream_ok && i <= n; i++) {
        gemini_result r = i < n ? gemini_tok_stream_push(s, ids[i], &chunk, &chunk_len)
                                : gemini_tok_stream_flush(s, &chunk, &chunk_len);
        if (r != GEMINI_OK || total + chunk_len > len || !utf8_ok(chunk, chunk_len)) {
            *stream_ok = 0;
            break;
        }
        memcpy(joined + total, chunk, chunk_len);
        total += chunk_len;
    }
    if (*stream_ok) *stream_ok = total == len && memcmp(joined, text, len) == 0;
    gemini_tok_stream_free(s);
    free(joined);
    free(text);
    return same;
}

/* ---- Per-model checks against the reference outputs ---- */

static void check_inputs(const gemini_tok *tok, const char *dir, const char *model,
                         const char *label)
{
    static const char *const inputs[] = {"corpus", "bad", "random"};
    char path[1024], name[256], detail[128];
    size_t k;
    for (k = 0; k < 3; k++) {
        lines text, ids, pieces, dec;
        long bad;
        size_t i;
        int pieces_ok = 1, dec_ok = 1, stream_ok = 1;
        snprintf(path, sizeof path, "%s/%s.txt", dir, inputs[k]);
        read_lines(path, &text);
        snprintf(path, sizeof path, "%s/%s.%s.id", dir, model, inputs[k]);
        read_lines(path, &ids);
        snprintf(path, sizeof path, "%s/%s.%s.piece", dir, model, inputs[k]);
        read_lines(path, &pieces);
        snprintf(path, sizeof path, "%s/%s.%s.dec", dir, model, inputs[k]);
        read_lines(path, &dec);

        bad = compare_ids(tok, &text, &ids, 0, g_ids, g_expected);
        snprintf(name, sizeof name, "%s %s: ids = spm_encode on %zu lines%s", model, inputs[k],
                 text.n, label);
        snprintf(detail, sizeof detail, "line %ld differs", bad + 1);
        check(bad < 0 && text.n > 0, name, detail);

        for (i = 0; i < text.n && i < pieces.n; i++) {
            piece_sink sink = {NULL, 0, 0};
            gemini_tok_encode_pieces(tok, text.line[i], text.len[i], 0, collect_piece, &sink);
            if (sink.len != pieces.len[i] || (sink.len &&
                                              memcmp(sink.buf, pieces.line[i], sink.len))) {
                if (pieces_ok) fprintf(stdout, "     (first piece mismatch: line %zu)\n", i + 1);
                pieces_ok = 0;
            }
            free(sink.buf);
        }
        snprintf(name, sizeof name, "%s %s: pieces = spm_encode%s", model, inputs[k], label);
        check(pieces_ok && pieces.n == text.n, name, NULL);

        for (i = 0; i < ids.n && i < dec.n; i++) {
            size_t n = parse_ids(ids.line[i], ids.len[i], g_expected, MAX_IDS);
            int s_ok;
            if (!decode_both(tok, g_expected, n, dec.line[i], dec.len[i], &s_ok)) dec_ok = 0;
            if (!s_ok) stream_ok = 0;
        }
        snprintf(name, sizeof name, "%s %s: decode = spm_decode%s", model, inputs[k], label);
        check(dec_ok && dec.n == ids.n, name, NULL);
        snprintf(name, sizeof name, "%s %s: stream = decode, whole characters%s", model,
                 inputs[k], label);
        check(stream_ok, name, NULL);
        free_lines(&text);
        free_lines(&ids);
        free_lines(&pieces);
        free_lines(&dec);
    }
}

/* Encodes a + special + b with PARSE_SPECIAL and expects enc(a), id, enc(b). */
static int special_split_ok(const gemini_tok *tok, const char *a, const char *special,
                            const char *b)
{
    char text[512];
    int32_t n = 0, na = 0, nb = 0, id = gemini_tok_id_of(tok, special, strlen(special));
    int32_t want[1024];
    snprintf(text, sizeof text, "%s%s%s", a, special, b);
    if (id < 0) return 0;
    gemini_tok_encode(tok, a, strlen(a), 0, want, 512, &na);
    want[na] = id;
    gemini_tok_encode(tok, b, strlen(b), 0, want + na + 1, 512, &nb);
    if (gemini_tok_encode(tok, text, strlen(text), GEMINI_TOK_PARSE_SPECIAL, g_ids, MAX_IDS, &n)
            != GEMINI_OK)
        return 0;
    return n == na + 1 + nb && memcmp(g_ids, want, (size_t)n * sizeof(int32_t)) == 0;
}

static int contains_id(const gemini_tok *tok, const char *text, uint32_t flags, int32_t id)
{
    int32_t n = 0, i;
    gemini_tok_encode(tok, text, strlen(text), flags, g_ids, MAX_IDS, &n);
    for (i = 0; i < n; i++) if (g_ids[i] == id) return 1;
    return 0;
}

static void check_model(const char *dir, const char *model)
{
    char path[1024], name[256];
    gemini_tok *tok = NULL, *copy = NULL;
    gemini_tok_spm_desc desc;
    gemini_result r;

    snprintf(path, sizeof path, "%s/%s.model", dir, model);
    r = gemini_tok_load(path, &tok);
    snprintf(name, sizeof name, "%s: load .model", model);
    check(r == GEMINI_OK, name, gemini_last_error());
    if (r != GEMINI_OK) return;
    check_inputs(tok, dir, model, "");

    /* The arrays of a loaded model build the same tokenizer (the .gemini path). */
    gemini_tok_describe(tok, &desc);
    r = gemini_tok_create_spm(&desc, &copy);
    snprintf(name, sizeof name, "%s: gemini_tok_create_spm from its own arrays", model);
    check(r == GEMINI_OK, name, gemini_last_error());
    if (r == GEMINI_OK) {
        check_inputs(copy, dir, model, " (from arrays)");
        gemini_tok_free(copy);
    }

    /* Control pieces: plain text by default, tokens with PARSE_SPECIAL. */
    if (gemini_tok_eos_id(tok) >= 0) {
        const char *eos = gemini_tok_piece(tok, gemini_tok_eos_id(tok), NULL);
        char text[64];
        snprintf(text, sizeof text, "a%sb", eos);
        snprintf(name, sizeof name, "%s: \"%s\" is text without parse_special", model, eos);
        check(!contains_id(tok, text, 0, gemini_tok_eos_id(tok)), name, NULL);
        snprintf(name, sizeof name, "%s: parse_special splits at \"%s\"", model, eos);
        check(special_split_ok(tok, "Hello world", eos, " again"), name, NULL);
    }
    if (gemini_tok_id_of(tok, "<ctl>", 5) >= 0) {
        snprintf(name, sizeof name, "%s: parse_special splits at a control symbol", model);
        check(special_split_ok(tok, "x ", "<ctl>", "y"), name, NULL);
    }
    if (gemini_tok_id_of(tok, "<start_of_turn>", 15) >= 0) {
        int32_t id = gemini_tok_id_of(tok, "<start_of_turn>", 15);
        snprintf(name, sizeof name, "%s: user-defined piece recognised in both modes", model);
        check(contains_id(tok, "a<start_of_turn>b", 0, id) &&
              contains_id(tok, "a<start_of_turn>b", GEMINI_TOK_PARSE_SPECIAL, id), name, NULL);
    }

    /* BOS first, EOS last. */
    if (gemini_tok_bos_id(tok) >= 0 && gemini_tok_eos_id(tok) >= 0) {
        int32_t n = 0, m = 0;
        gemini_tok_encode(tok, "hi there", 8, 0, g_expected, MAX_IDS, &m);
        gemini_tok_encode(tok, "hi there", 8, GEMINI_TOK_ADD_BOS | GEMINI_TOK_ADD_EOS, g_ids,
                          MAX_IDS, &n);
        snprintf(name, sizeof name, "%s: ADD_BOS and ADD_EOS", model);
        check(n == m + 2 && g_ids[0] == gemini_tok_bos_id(tok) &&
              g_ids[n - 1] == gemini_tok_eos_id(tok) &&
              memcmp(g_ids + 1, g_expected, (size_t)m * sizeof(int32_t)) == 0, name, NULL);
    }
    /* BOS in front changes nothing in the text: no leading space appears after it. */
    if (gemini_tok_bos_id(tok) >= 0) {
        int32_t n = 0, s_ok;
        size_t len = 0;
        char plain[256];
        g_ids[0] = gemini_tok_bos_id(tok);
        gemini_tok_encode(tok, "Hello world", 11, 0, g_ids + 1, MAX_IDS - 1, &n);
        gemini_tok_decode(tok, g_ids + 1, (size_t)n, plain, sizeof plain, &len);
        snprintf(name, sizeof name, "%s: decode and stream with BOS first = without", model);
        check(decode_both(tok, g_ids, (size_t)n + 1, plain, len, &s_ok) && s_ok &&
              len >= 11 && memcmp(plain, "Hello world", 11) == 0, name, plain);
    }
    gemini_tok_free(tok);
}

/* ---- Threads: one tokenizer, many encoders ---- */

typedef struct thread_job {
    const gemini_tok *tok;
    const lines *text, *expected;
    int ok;
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *job = (thread_job *)arg;
    int32_t *ids = (int32_t *)malloc(MAX_IDS * sizeof(int32_t));
    int32_t *want = (int32_t *)malloc(MAX_IDS * sizeof(int32_t));
    int round;
    job->ok = 1;
    for (round = 0; round < 10 && job->ok; round++)
        if (compare_ids(job->tok, job->text, job->expected, 0, ids, want) >= 0) job->ok = 0;
    free(ids);
    free(want);
    return NULL;
}

static void check_threads(const char *dir, const char *model)
{
    char path[1024], name[256];
    gemini_tok *tok;
    lines text, expected;
    thread_job jobs[4];
    pthread_t threads[4];
    int i, ok = 1;
    snprintf(path, sizeof path, "%s/%s.model", dir, model);
    if (gemini_tok_load(path, &tok) != GEMINI_OK) return;
    snprintf(path, sizeof path, "%s/random.txt", dir);
    read_lines(path, &text);
    snprintf(path, sizeof path, "%s/%s.random.id", dir, model);
    read_lines(path, &expected);
    for (i = 0; i < 4; i++) {
        jobs[i].tok = tok;
        jobs[i].text = &text;
        jobs[i].expected = &expected;
        pthread_create(&threads[i], NULL, thread_main, &jobs[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        ok = ok && jobs[i].ok;
    }
    snprintf(name, sizeof name, "%s: 4 threads encode one tokenizer, same ids", model);
    check(ok, name, NULL);
    free_lines(&text);
    free_lines(&expected);
    gemini_tok_free(tok);
}

/* ---- Errors and malformed files ---- */

static void check_errors(const char *dir)
{
    char path[1024], *data;
    size_t size, cut, len = 0;
    gemini_tok *tok = NULL, *bad = NULL;
    int32_t ids[4], n = 0, big = 0;
    int ok = 1;
    const char *chunk;
    gemini_tok_stream *s;

    check(gemini_tok_load("/nonexistent/x.model", &tok) == GEMINI_ERR_IO && tok == NULL,
          "load of a missing file fails with GEMINI_ERR_IO", NULL);
    check(gemini_tok_load_memory("garbage!", 8, &tok) == GEMINI_ERR_FORMAT,
          "load of garbage fails with GEMINI_ERR_FORMAT", gemini_last_error());

    snprintf(path, sizeof path, "%s/uni_bf.model", dir);
    if (!read_file(path, &data, &size) || gemini_tok_load(path, &tok) != GEMINI_OK) {
        check(0, "load uni_bf.model for the error checks", gemini_last_error());
        return;
    }
    /* Every truncation either loads or fails cleanly (the sanitizer run catches bad reads). */
    for (cut = 0; cut < size; cut += 1 + size / 300) {
        gemini_result r = gemini_tok_load_memory(data, cut, &bad);
        if (r == GEMINI_OK) gemini_tok_free(bad);
        else if (r != GEMINI_ERR_FORMAT && r != GEMINI_ERR_INVALID_ARGUMENT) ok = 0;
    }
    check(ok, "truncated .model files fail cleanly", NULL);

    /* Scribbled charsmap bytes must not crash encoding. */
    {
        gemini_tok_spm_desc desc;
        uint8_t *map;
        unsigned seed = 1;
        int round, crashed = 0;
        gemini_tok_describe(tok, &desc);
        map = (uint8_t *)malloc(desc.charsmap_size);
        for (round = 0; round < 20; round++) {
            size_t k;
            memcpy(map, desc.charsmap, desc.charsmap_size);
            for (k = 0; k < 64; k++) {
                seed = seed * 1103515245u + 12345u;
                map[4 + (seed >> 8) % (desc.charsmap_size - 4)] ^= (uint8_t)(seed >> 24);
            }
            desc.charsmap = map;
            if (gemini_tok_create_spm(&desc, &bad) == GEMINI_OK) {
                if (gemini_tok_encode(bad, "Ｈｅｌｌｏ ﬁ ½ wörld", 27, 0, NULL, 0, &n) !=
                    GEMINI_OK)
                    crashed = 1;
                gemini_tok_free(bad);
            }
            gemini_tok_describe(tok, &desc);
        }
        free(map);
        check(!crashed, "corrupted charsmaps never break encoding", NULL);
    }

    check(gemini_tok_encode(tok, "hello world again", 17, 0, NULL, 0, &big) == GEMINI_OK &&
          big > 2, "encode with no buffer counts the ids", NULL);
    check(gemini_tok_encode(tok, "hello world again", 17, 0, ids, 2, &n) ==
          GEMINI_ERR_INVALID_ARGUMENT && n == big, "encode into a small buffer reports the need",
          gemini_last_error());
    ids[0] = 5;
    ids[1] = 1 << 20;
    check(gemini_tok_decode(tok, ids, 2, NULL, 0, &len) == GEMINI_ERR_INVALID_ARGUMENT &&
          strstr(gemini_last_error(), "out of range") != NULL,
          "decode of an out-of-range id fails and says so", gemini_last_error());
    ids[1] = -1;
    check(gemini_tok_decode(tok, ids, 2, NULL, 0, &len) == GEMINI_ERR_INVALID_ARGUMENT,
          "decode of a negative id fails", NULL);
    gemini_tok_stream_create(tok, &s);
    check(gemini_tok_stream_push(s, 1 << 20, &chunk, &len) == GEMINI_ERR_INVALID_ARGUMENT,
          "stream push of an out-of-range id fails", NULL);
    gemini_tok_stream_free(s);
    check(gemini_tok_encode(tok, "x", 1, 0x80, ids, 4, &n) == GEMINI_ERR_INVALID_ARGUMENT,
          "encode with unknown flags fails", NULL);
    check(gemini_tok_piece(tok, -1, &len) == NULL && gemini_tok_piece(tok, 1 << 20, &len) == NULL
          && gemini_tok_id_of(tok, "no such piece at all", 20) == -1,
          "piece and id_of outside the vocabulary", NULL);
    gemini_tok_free(tok);
    free(data);
}

/* ---- A tokenizer.json written here: BPE with merges, byte fallback, added tokens ---- */

static const char tiny_json[] =
    "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<pad>\",\"special\":true},"
    "{\"id\":1,\"content\":\"<eos>\",\"special\":true},{\"id\":2,\"content\":\"<bos>\","
    "\"special\":true},{\"id\":3,\"content\":\"<unk>\",\"special\":true},"
    "{\"id\":4,\"content\":\"<start_of_turn>\",\"special\":false}],"
    "\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
    "\"content\":\"\\u2581\"},\"pre_tokenizer\":null,"
    "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"fuse_unk\":true,"
    "\"byte_fallback\":false,\"vocab\":{\"<pad>\":0,\"<eos>\":1,\"<bos>\":2,\"<unk>\":3,"
    "\"<start_of_turn>\":4,\"a\":5,\"b\":6,\"\\u2581\":7,\"ab\":8,\"\\u2581ab\":9,\"c\":10},"
    "\"merges\":[\"a b\",[\"\\u2581\",\"ab\"]]}}";

static void check_json(void)
{
    gemini_tok *tok = NULL;
    int32_t ids[32], n = 0;
    char text[64];
    size_t len = 0;
    static const int32_t want[] = {8, 9, 7, 10, 4, 3};
    gemini_result r = gemini_tok_load_memory(tiny_json, sizeof tiny_json - 1, &tok);
    check(r == GEMINI_OK, "tokenizer.json (BPE, merges as strings and pairs) loads",
          gemini_last_error());
    if (r == GEMINI_OK) {
        gemini_tok_encode(tok, "ab ab c<start_of_turn>z", 23, 0, ids, 32, &n);
        check(n == 6 && memcmp(ids, want, sizeof want) == 0,
              "tokenizer.json: merges, user-defined and unknown tokens", NULL);
        check(gemini_tok_bos_id(tok) == 2 && gemini_tok_eos_id(tok) == 1 &&
              gemini_tok_pad_id(tok) == 0 && gemini_tok_unk_id(tok) == 3,
              "tokenizer.json: special ids found by name", NULL);
        ids[0] = 2;
        ids[1] = 8;
        ids[2] = 9;
        gemini_tok_decode(tok, ids, 3, text, sizeof text, &len);
        check(len == 5 && memcmp(text, "ab ab", 5) == 0, "tokenizer.json: decode", text);

        /* The error contract of the API. */
        check(gemini_tok_encode(tok, "ab ab ab", 8, 0, ids, 2, &n) ==
              GEMINI_ERR_INVALID_ARGUMENT && n == 3, "encode into a small buffer: error and "
              "the needed count", gemini_last_error());
        check(gemini_tok_encode(tok, "ab ab ab", 8, 0, NULL, 0, &n) == GEMINI_OK && n == 3,
              "encode with no buffer counts the ids", NULL);
        ids[0] = 9;
        ids[1] = 11;
        check(gemini_tok_decode(tok, ids, 2, text, sizeof text, &len) ==
              GEMINI_ERR_INVALID_ARGUMENT && strstr(gemini_last_error(), "out of range"),
              "decode of an out-of-range id fails and says so", gemini_last_error());
        ids[1] = 8;
        check(gemini_tok_decode(tok, ids, 2, text, 3, &len) == GEMINI_ERR_INVALID_ARGUMENT &&
              len == 5, "decode into a small buffer: error and the needed length", NULL);
        gemini_tok_free(tok);
    }
    {
        char broken[sizeof tiny_json];
        memcpy(broken, tiny_json, sizeof tiny_json);
        broken[40] = '}';
        check(gemini_tok_load_memory(broken, sizeof tiny_json - 1, &tok) == GEMINI_ERR_FORMAT,
              "malformed tokenizer.json fails with GEMINI_ERR_FORMAT", gemini_last_error());
    }
}

/* ---- A unigram model written out as a tokenizer.json ---- */

static void append(piece_sink *out, const char *p, size_t n)
{
    if (out->len + n + 1 > out->cap) {
        out->cap = (out->len + n + 1) * 2;
        out->buf = (char *)realloc(out->buf, out->cap);
    }
    memcpy(out->buf + out->len, p, n);
    out->len += n;
}

static void append_z(piece_sink *out, const char *z)
{
    append(out, z, strlen(z));
}

static void append_json_string(piece_sink *out, const char *p, size_t n)
{
    size_t i;
    char esc[8];
    append(out, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            append(out, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            append(out, esc, 6);
        } else {
            append(out, p + i, 1);
        }
    }
    append(out, "\"", 1);
}

/* Writes the model in the layout of transformers' SpmConverter for unigram models
   (Precompiled charsmap, " {2,}" collapsing, Metaspace) and checks that the JSON loader gives
   the ids spm_encode gave for the .model. */
static void check_unigram_json(const char *dir, const char *model)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char path[1024], name[256], num[96];
    gemini_tok *tok, *from_json = NULL;
    gemini_tok_spm_desc d;
    piece_sink js = {NULL, 0, 0};
    lines text, expected;
    size_t i;
    int32_t id;
    gemini_result r;
    snprintf(path, sizeof path, "%s/%s.model", dir, model);
    if (gemini_tok_load(path, &tok) != GEMINI_OK) return;
    gemini_tok_describe(tok, &d);

    append_z(&js, "{\"version\":\"1.0\",\"added_tokens\":[");
    for (id = 0; id < d.n_pieces; id++) {
        int t = d.types[id];
        if (t != GEMINI_TOK_CONTROL && t != GEMINI_TOK_USER_DEFINED && t != GEMINI_TOK_UNKNOWN)
            continue;
        snprintf(num, sizeof num, "%s{\"id\":%d,\"content\":",
                 js.buf[js.len - 1] == '[' ? "" : ",", (int)id);
        append_z(&js, num);
        append_json_string(&js, d.pieces[id], d.piece_lengths[id]);
        append_z(&js, t == GEMINI_TOK_USER_DEFINED ? ",\"special\":false}" : ",\"special\":true}");
    }
    append_z(&js, "],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":["
                  "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"");
    for (i = 0; i < d.charsmap_size; i += 3) {
        uint32_t v = (uint32_t)d.charsmap[i] << 16;
        char quad[4];
        if (i + 1 < d.charsmap_size) v |= (uint32_t)d.charsmap[i + 1] << 8;
        if (i + 2 < d.charsmap_size) v |= d.charsmap[i + 2];
        quad[0] = b64[v >> 18];
        quad[1] = b64[(v >> 12) & 63];
        quad[2] = i + 1 < d.charsmap_size ? b64[(v >> 6) & 63] : '=';
        quad[3] = i + 2 < d.charsmap_size ? b64[v & 63] : '=';
        append(&js, quad, 4);
    }
    append_z(&js, "\"},{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},"
                  "\"content\":\"\\u2581\"}]},\"pre_tokenizer\":{\"type\":\"Metaspace\","
                  "\"replacement\":\"\\u2581\",\"prepend_scheme\":\"always\",\"split\":true},");
    snprintf(num, sizeof num, "\"model\":{\"type\":\"Unigram\",\"unk_id\":%d,\"vocab\":[",
             (int)d.unk_id);
    append_z(&js, num);
    for (id = 0; id < d.n_pieces; id++) {
        append_z(&js, id ? ",[" : "[");
        append_json_string(&js, d.pieces[id], d.piece_lengths[id]);
        snprintf(num, sizeof num, ",%.9g]", (double)d.scores[id]);
        append_z(&js, num);
    }
    append_z(&js, "],\"byte_fallback\":");
    append_z(&js, d.byte_fallback ? "true}}" : "false}}");

    r = gemini_tok_load_memory(js.buf, js.len, &from_json);
    snprintf(name, sizeof name, "%s: written as a unigram tokenizer.json, loads", model);
    check(r == GEMINI_OK, name, gemini_last_error());
    if (r == GEMINI_OK) {
        long bad;
        snprintf(path, sizeof path, "%s/corpus.txt", dir);
        read_lines(path, &text);
        snprintf(path, sizeof path, "%s/%s.corpus.id", dir, model);
        read_lines(path, &expected);
        bad = compare_ids(from_json, &text, &expected, 0, g_ids, g_expected);
        snprintf(name, sizeof name, "%s: tokenizer.json ids = spm_encode (charsmap, "
                 "Metaspace)", model);
        check(bad < 0, name, "a line differs");
        free_lines(&text);
        free_lines(&expected);
        gemini_tok_free(from_json);
    }
    free(js.buf);
    gemini_tok_free(tok);
}

/* ---- Gemma 3 (vocabulary rebuilt from GGUF arrays by tools/tokenizer_fixtures.py) ---- */

static void check_gemma(const char *root, const char *file, const char *label)
{
    char path[1024], name[256];
    gemini_tok *tok = NULL;
    lines text, expected, dec;
    long bad;
    size_t i;
    int dec_ok = 1, stream_ok = 1, s_ok;
    FILE *f;

    snprintf(path, sizeof path, "%s/models/%s", root, file);
    f = fopen(path, "rb");
    if (!f) {
        printf("skip gemma3 %s: models/%s not found (run tools/tokenizer_fixtures.py)\n", label,
               file);
        return;
    }
    fclose(f);
    snprintf(name, sizeof name, "gemma3 %s: load", label);
    check(gemini_tok_load(path, &tok) == GEMINI_OK, name, gemini_last_error());
    if (!tok) return;
    snprintf(path, sizeof path, "%s/tests/tokenizer/corpus.txt", root);
    read_lines(path, &text);
    snprintf(path, sizeof path, "%s/tests/tokenizer/gemma3_expected_ids.txt", root);
    read_lines(path, &expected);
    snprintf(path, sizeof path, "%s/tests/tokenizer/gemma3_expected_decode.txt", root);
    read_lines(path, &dec);

    bad = compare_ids(tok, &text, &expected, 0, g_ids, g_expected);
    snprintf(name, sizeof name, "gemma3 %s: ids = python sentencepiece on %zu lines", label,
             text.n);
    check(bad < 0, name, "a line differs");
    for (i = 0; i < expected.n && i < dec.n; i++) {
        size_t n = parse_ids(expected.line[i], expected.len[i], g_expected, MAX_IDS);
        if (!decode_both(tok, g_expected, n, dec.line[i], dec.len[i], &s_ok)) dec_ok = 0;
        if (!s_ok) stream_ok = 0;
    }
    snprintf(name, sizeof name, "gemma3 %s: decode = python sentencepiece", label);
    check(dec_ok, name, NULL);
    snprintf(name, sizeof name, "gemma3 %s: stream = decode, whole characters", label);
    check(stream_ok, name, NULL);

    snprintf(name, sizeof name, "gemma3 %s: <bos>=2 <eos>=1 <pad>=0 <unk>=3", label);
    check(gemini_tok_bos_id(tok) == 2 && gemini_tok_eos_id(tok) == 1 &&
          gemini_tok_pad_id(tok) == 0 && gemini_tok_unk_id(tok) == 3, name, NULL);
    snprintf(name, sizeof name, "gemma3 %s: parse_special makes ids of <bos>, <eos>, "
             "<start_of_turn>", label);
    check(special_split_ok(tok, "", "<bos>", "Hello") &&
          special_split_ok(tok, "Hi there", "<eos>", "") &&
          special_split_ok(tok, "user\nHi", "<end_of_turn>", "\n") &&
          special_split_ok(tok, "", "<start_of_turn>", "user\n"), name, NULL);
    snprintf(name, sizeof name, "gemma3 %s: without parse_special <bos> is plain text", label);
    check(!contains_id(tok, "<bos>Hello", 0, 2) && contains_id(tok, "<bos>Hello",
                                                               GEMINI_TOK_PARSE_SPECIAL, 2),
          name, NULL);
    {
        /* No spurious space after BOS, and ADD_BOS puts 2 first. */
        int32_t n = 0;
        char out[64];
        size_t len = 0;
        gemini_tok_encode(tok, "Hello world", 11, GEMINI_TOK_ADD_BOS, g_ids, MAX_IDS, &n);
        gemini_tok_decode(tok, g_ids, (size_t)n, out, sizeof out, &len);
        snprintf(name, sizeof name, "gemma3 %s: ADD_BOS, and decode gives \"Hello world\"",
                 label);
        check(n >= 2 && g_ids[0] == 2 && len == 11 && memcmp(out, "Hello world", 11) == 0, name,
              out);
    }
    {
        gemini_tok_spm_desc desc;
        gemini_tok *copy = NULL;
        gemini_tok_describe(tok, &desc);
        snprintf(name, sizeof name, "gemma3 %s: create_spm from its arrays gives the same ids",
                 label);
        check(gemini_tok_create_spm(&desc, &copy) == GEMINI_OK &&
              compare_ids(copy, &text, &expected, 0, g_ids, g_expected) < 0, name,
              gemini_last_error());
        gemini_tok_free(copy);
    }
    free_lines(&text);
    free_lines(&expected);
    free_lines(&dec);
    gemini_tok_free(tok);
}

/* ---- Gemma 3 straight from the GGUF arrays, through gemini_tok_create_spm ----
   A minimal reader of GGUF metadata (REFERENCE 5.1), enough for the tokenizer keys; it is the
   same path a .gemini file takes (arrays into the constructor). */

typedef struct gguf_reader {
    FILE *f;
    int ok;
} gguf_reader;

static uint64_t gguf_uint(gguf_reader *g, int bytes)
{
    unsigned char b[8];
    uint64_t v = 0;
    int i;
    if (!g->ok || fread(b, 1, (size_t)bytes, g->f) != (size_t)bytes) {
        g->ok = 0;
        return 0;
    }
    for (i = bytes - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static char *gguf_string(gguf_reader *g, uint64_t *len)
{
    char *s;
    *len = gguf_uint(g, 8);
    if (!g->ok || *len > (1u << 24)) {
        g->ok = 0;
        return NULL;
    }
    s = (char *)malloc(*len + 1);
    if (!s || fread(s, 1, *len, g->f) != *len) {
        free(s);
        g->ok = 0;
        return NULL;
    }
    s[*len] = 0;
    return s;
}

static int gguf_scalar_size(uint32_t type)
{
    static const int sizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < 13 ? sizes[type] : -1;
}

static void gguf_skip(gguf_reader *g, uint32_t type)
{
    uint64_t len, n, i;
    if (type == 8) {
        free(gguf_string(g, &len));
    } else if (type == 9) {
        uint32_t elem = (uint32_t)gguf_uint(g, 4);
        n = gguf_uint(g, 8);
        for (i = 0; g->ok && i < n; i++) gguf_skip(g, elem);
    } else if (gguf_scalar_size(type) > 0) {
        gguf_uint(g, gguf_scalar_size(type));
    } else {
        g->ok = 0;
    }
}

static void check_gemma_gguf(const char *root)
{
    char path[1024];
    gguf_reader g;
    uint64_t n_tensors, n_kv, k, i, len;
    char **pieces = NULL;
    uint32_t *lengths = NULL;
    float *scores = NULL;
    uint8_t *types = NULL;
    int64_t n_pieces = -1, n_scores = -1, n_types = -1;
    int32_t unk = -1, bos = -1, eos = -1, pad = -1;
    gemini_tok_spm_desc d;
    gemini_tok *tok = NULL;
    lines text, expected;
    gemini_result r;

    snprintf(path, sizeof path, "%s/models/src/gemma-3-270m-q4_k_m.gguf", root);
    g.f = fopen(path, "rb");
    g.ok = g.f != NULL;
    if (!g.ok) {
        printf("skip gemma3 gguf: models/src/gemma-3-270m-q4_k_m.gguf not found (make models)\n");
        return;
    }
    if (gguf_uint(&g, 4) != 0x46554747u || gguf_uint(&g, 4) != 3) g.ok = 0;
    n_tensors = gguf_uint(&g, 8);
    n_kv = gguf_uint(&g, 8);
    (void)n_tensors;
    for (k = 0; g.ok && k < n_kv; k++) {
        char *key = gguf_string(&g, &len);
        uint32_t type = (uint32_t)gguf_uint(&g, 4);
        if (!g.ok) break;
        if (type == 9 && (!strcmp(key, "tokenizer.ggml.tokens") ||
                          !strcmp(key, "tokenizer.ggml.scores") ||
                          !strcmp(key, "tokenizer.ggml.token_type"))) {
            uint32_t elem = (uint32_t)gguf_uint(&g, 4);
            uint64_t n = gguf_uint(&g, 8);
            if (n > (1u << 24)) g.ok = 0;
            if (!strcmp(key, "tokenizer.ggml.tokens") && elem == 8) {
                pieces = (char **)calloc(n + 1, sizeof(char *));
                lengths = (uint32_t *)calloc(n + 1, sizeof(uint32_t));
                for (i = 0; g.ok && i < n; i++) {
                    pieces[i] = gguf_string(&g, &len);
                    lengths[i] = (uint32_t)len;
                }
                n_pieces = (int64_t)n;
            } else if (!strcmp(key, "tokenizer.ggml.scores") && elem == 6) {
                scores = (float *)calloc(n + 1, sizeof(float));
                for (i = 0; g.ok && i < n; i++) {
                    uint32_t bits = (uint32_t)gguf_uint(&g, 4);
                    memcpy(&scores[i], &bits, 4);
                }
                n_scores = (int64_t)n;
            } else if (!strcmp(key, "tokenizer.ggml.token_type") && elem == 5) {
                types = (uint8_t *)calloc(n + 1, 1);
                for (i = 0; g.ok && i < n; i++) types[i] = (uint8_t)gguf_uint(&g, 4);
                n_types = (int64_t)n;
            } else {
                for (i = 0; g.ok && i < n; i++) gguf_skip(&g, elem);
            }
        } else if (type == 4 && !strcmp(key, "tokenizer.ggml.unknown_token_id")) {
            unk = (int32_t)gguf_uint(&g, 4);
        } else if (type == 4 && !strcmp(key, "tokenizer.ggml.bos_token_id")) {
            bos = (int32_t)gguf_uint(&g, 4);
        } else if (type == 4 && !strcmp(key, "tokenizer.ggml.eos_token_id")) {
            eos = (int32_t)gguf_uint(&g, 4);
        } else if (type == 4 && !strcmp(key, "tokenizer.ggml.padding_token_id")) {
            pad = (int32_t)gguf_uint(&g, 4);
        } else {
            gguf_skip(&g, type);
        }
        free(key);
    }
    fclose(g.f);
    check(g.ok && n_pieces > 0 && n_scores == n_pieces && n_types == n_pieces && unk >= 0 &&
          unk < n_pieces, "gemma3 gguf: tokenizer arrays read from the GGUF", NULL);
    if (g.ok && n_pieces > 0 && n_scores == n_pieces && n_types == n_pieces && unk >= 0 &&
        unk < n_pieces) {
        /* As tools/tokenizer_fixtures.py: llama.cpp stores <unk> as CONTROL; SentencePiece
           wants it UNKNOWN. No dummy prefix, no collapsing, spaces escaped, byte fallback. */
        types[unk] = GEMINI_TOK_UNKNOWN;
        memset(&d, 0, sizeof d);
        d.model_type = GEMINI_TOK_BPE;
        d.n_pieces = (int32_t)n_pieces;
        d.pieces = (const char *const *)pieces;
        d.piece_lengths = lengths;
        d.scores = scores;
        d.types = types;
        d.unk_id = unk;
        d.bos_id = bos;
        d.eos_id = eos;
        d.pad_id = pad;
        d.escape_whitespaces = 1;
        d.byte_fallback = 1;
        r = gemini_tok_create_spm(&d, &tok);
        check(r == GEMINI_OK, "gemma3 gguf: gemini_tok_create_spm from the GGUF arrays",
              gemini_last_error());
        if (r == GEMINI_OK) {
            snprintf(path, sizeof path, "%s/tests/tokenizer/corpus.txt", root);
            read_lines(path, &text);
            snprintf(path, sizeof path, "%s/tests/tokenizer/gemma3_expected_ids.txt", root);
            read_lines(path, &expected);
            check(text.n > 0 && compare_ids(tok, &text, &expected, 0, g_ids, g_expected) < 0,
                  "gemma3 gguf: ids = python sentencepiece (committed fixture)", NULL);
            free_lines(&text);
            free_lines(&expected);
            gemini_tok_free(tok);
        }
    }
    for (i = 0; pieces && i < (uint64_t)n_pieces; i++) free(pieces[i]);
    free(pieces);
    free(lengths);
    free(scores);
    free(types);
}

/* ---- Whisper's byte-level BPE (models/whisper-base/tokenizer.json) ----
   Expected ids and decodes come from the tokenizers and tiktoken packages
   (tools/whisper_tokenizer_fixtures.py), for tests/tokenizer/corpus.txt followed by
   tests/tokenizer/whisper_extra.txt; "plain" encodes without GEMINI_TOK_PARSE_SPECIAL. */

/* Joins two line lists into one (the pointers still point into a and b). */
static void join_lines(const lines *a, const lines *b, lines *out)
{
    size_t i;
    memset(out, 0, sizeof *out);
    out->n = a->n + b->n;
    out->line = (char **)calloc(out->n + 1, sizeof(char *));
    out->len = (size_t *)calloc(out->n + 1, sizeof(size_t));
    for (i = 0; i < out->n; i++) {
        out->line[i] = i < a->n ? a->line[i] : b->line[i - a->n];
        out->len[i] = i < a->n ? a->len[i] : b->len[i - a->n];
    }
}

/* Decodes the expected ids of every line; 1 when all equal want and every stream agrees. */
static int whisper_decodes_ok(const gemini_tok *tok, const lines *ids, const lines *want,
                              int *stream_ok)
{
    size_t i;
    int ok = ids->n == want->n, s_ok;
    *stream_ok = 1;
    for (i = 0; i < ids->n && i < want->n; i++) {
        size_t n = parse_ids(ids->line[i], ids->len[i], g_expected, MAX_IDS);
        if (!decode_both(tok, g_expected, n, want->line[i], want->len[i], &s_ok)) {
            if (ok) printf("     (first decode mismatch: line %zu)\n", i + 1);
            ok = 0;
        }
        if (!s_ok) *stream_ok = 0;
    }
    return ok;
}

static void concat_piece(void *user, int32_t id, const char *piece, size_t len)
{
    (void)id;
    append((piece_sink *)user, piece, len);
}

static void check_whisper_round_trip(const gemini_tok *tok, const lines *text)
{
    size_t i, len;
    int ok = 1, pieces_ok = 1, n_valid = 0;
    char *out = NULL;
    for (i = 0; i < text->n; i++) {
        int32_t n = 0;
        piece_sink sink = {NULL, 0, 0};
        if (!utf8_ok(text->line[i], text->len[i])) continue;
        n_valid++;
        gemini_tok_encode(tok, text->line[i], text->len[i], 0, g_ids, MAX_IDS, &n);
        out = (char *)realloc(out, text->len[i] + 1);
        if (gemini_tok_decode(tok, g_ids, (size_t)n, out, text->len[i] + 1, &len) != GEMINI_OK ||
            len != text->len[i] || memcmp(out, text->line[i], len) != 0)
            ok = 0;
        /* The pieces of a plain encoding are the raw bytes of the text, in order. */
        gemini_tok_encode_pieces(tok, text->line[i], text->len[i], 0, concat_piece, &sink);
        if (sink.len != text->len[i] || (sink.len && memcmp(sink.buf, text->line[i], sink.len)))
            pieces_ok = 0;
        free(sink.buf);
    }
    free(out);
    check(ok && n_valid > 60, "whisper: decode(encode(x)) == x for every valid UTF-8 line", NULL);
    check(pieces_ok, "whisper: encode_pieces gives the bytes of the text", NULL);
}

/* Random byte strings: a plain encoding decodes back to the text with one U+FFFD per bad
   byte, and parse_special encodes without error. */
static void check_whisper_random(const gemini_tok *tok)
{
    static const char *const pool[] = {"a", "Z", " ", "  ", "\t", "\n", "'s", "'", "1", "\xFF",
        "\xC3", "\xA9", "\xE2\x82", "\xAC", "\xF0\x9F\x98\x80", "\xE4\xB8\xAD",
        "\xE3\x80\x80", "<|en|>", "<|0.00|>", "<|endoftext|>", "<|", "|>", "\x00", ".", "!?"};
    unsigned seed = 12345;
    int round, ok = 1, special_ok = 1;
    char text[256], want[1024], *got = (char *)malloc(4096);
    for (round = 0; round < 500; round++) {
        size_t len = 0, n_want = 0, i, got_len = 0;
        int32_t n = 0;
        int parts;
        seed = seed * 1103515245u + 12345u;
        parts = (int)((seed >> 16) % 40);
        while (parts-- > 0) {
            const char *p;
            seed = seed * 1103515245u + 12345u;
            p = pool[(seed >> 16) % (sizeof pool / sizeof pool[0])];
            if (p[0] == 0) text[len++] = 0; /* the NUL entry */
            else {
                memcpy(text + len, p, strlen(p));
                len += strlen(p);
            }
        }
        for (i = 0; i < len;) {
            size_t k = gemini__tok_utf8_valid((const unsigned char *)text + i, len - i);
            if (k == 0) {
                memcpy(want + n_want, "\xEF\xBF\xBD", 3);
                n_want += 3;
                i++;
            } else {
                memcpy(want + n_want, text + i, k);
                n_want += k;
                i += k;
            }
        }
        if (gemini_tok_encode(tok, text, len, 0, g_ids, MAX_IDS, &n) != GEMINI_OK ||
            gemini_tok_decode(tok, g_ids, (size_t)n, got, 4096, &got_len) != GEMINI_OK ||
            got_len != n_want || memcmp(got, want, n_want) != 0)
            ok = 0;
        if (gemini_tok_encode(tok, text, len, GEMINI_TOK_PARSE_SPECIAL, g_ids, MAX_IDS, &n) !=
            GEMINI_OK)
            special_ok = 0;
    }
    free(got);
    check(ok && special_ok, "whisper: 500 random byte strings: decode(encode(x)) = x with "
          "U+FFFD per bad byte", NULL);
}

static void check_whisper(const char *root)
{
    static const struct { const char *piece; int32_t id; } known[] = {
        {"<|endoftext|>", 50257}, {"<|startoftranscript|>", 50258}, {"<|en|>", 50259},
        {"<|ja|>", 50266}, {"<|translate|>", 50358}, {"<|transcribe|>", 50359},
        {"<|startoflm|>", 50360}, {"<|startofprev|>", 50361}, {"<|nospeech|>", 50362},
        {"<|notimestamps|>", 50363}, {"<|0.00|>", 50364}, {"<|30.00|>", 51864},
        {" the", 264}, {"Hello", 15947}};
    char path[1024], name[256];
    gemini_tok *tok = NULL, *copy = NULL;
    gemini_tok_bpe_desc desc;
    lines corpus, extra, text, ids, ids_sp, dec, dec_sp;
    size_t i;
    int known_ok = 1, stream_ok;
    FILE *f;

    snprintf(path, sizeof path, "%s/models/whisper-base/tokenizer.json", root);
    f = fopen(path, "rb");
    if (!f) {
        printf("skip whisper: models/whisper-base/tokenizer.json not found "
               "(sh tools/fetch_whisper_base.sh models)\n");
        return;
    }
    fclose(f);
    check(gemini_tok_load(path, &tok) == GEMINI_OK, "whisper: load tokenizer.json",
          gemini_last_error());
    if (!tok) return;
    check(gemini_tok_model_type(tok) == GEMINI_TOK_BYTE_BPE && gemini_tok_vocab_size(tok) == 51865
          && gemini_tok_eos_id(tok) == 50257 && gemini_tok_bos_id(tok) == -1 &&
          gemini_tok_unk_id(tok) == -1, "whisper: byte-level BPE, 51865 ids, eos 50257", NULL);
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (gemini_tok_id_of(tok, known[i].piece, strlen(known[i].piece)) != known[i].id) {
            printf("     (%s is not %d)\n", known[i].piece, (int)known[i].id);
            known_ok = 0;
        }
    check(known_ok && gemini_tok_piece_type(tok, 50258) == GEMINI_TOK_CONTROL &&
          gemini_tok_piece_type(tok, 50364) == GEMINI_TOK_USER_DEFINED,
          "whisper: special, language, task and timestamp ids (REFERENCE 3.3)", NULL);

    snprintf(path, sizeof path, "%s/tests/tokenizer/corpus.txt", root);
    read_lines(path, &corpus);
    snprintf(path, sizeof path, "%s/tests/tokenizer/whisper_extra.txt", root);
    read_lines(path, &extra);
    join_lines(&corpus, &extra, &text);
    snprintf(path, sizeof path, "%s/tests/tokenizer/whisper_expected_ids.txt", root);
    read_lines(path, &ids);
    snprintf(path, sizeof path, "%s/tests/tokenizer/whisper_expected_ids_special.txt", root);
    read_lines(path, &ids_sp);
    snprintf(path, sizeof path, "%s/tests/tokenizer/whisper_expected_decode.txt", root);
    read_lines(path, &dec);
    snprintf(path, sizeof path, "%s/tests/tokenizer/whisper_expected_decode_special.txt", root);
    read_lines(path, &dec_sp);

    snprintf(name, sizeof name, "whisper: ids = tokenizers/tiktoken on %zu lines, plain",
             text.n);
    check(text.n > 60 && compare_ids(tok, &text, &ids, 0, g_ids, g_expected) < 0, name, NULL);
    snprintf(name, sizeof name, "whisper: ids = tokenizers/tiktoken on %zu lines, "
             "parse_special", text.n);
    check(text.n > 60 && compare_ids(tok, &text, &ids_sp, GEMINI_TOK_PARSE_SPECIAL, g_ids,
                                     g_expected) < 0, name, NULL);
    check(whisper_decodes_ok(tok, &ids, &dec, &stream_ok),
          "whisper: decode = tokenizers decode, plain ids", NULL);
    check(stream_ok, "whisper: stream = decode, whole characters, plain ids", NULL);
    check(whisper_decodes_ok(tok, &ids_sp, &dec_sp, &stream_ok),
          "whisper: decode = tokenizers decode (skip special), parse_special ids", NULL);
    check(stream_ok, "whisper: stream = decode, whole characters, parse_special ids", NULL);
    check_whisper_round_trip(tok, &text);
    check_whisper_random(tok);

    /* Arrays out, arrays in: the same tokenizer (the .gemini path). */
    gemini_tok_describe_bpe(tok, &desc);
    check(desc.n_merges == 50000 && gemini_tok_create_bpe(&desc, &copy) == GEMINI_OK &&
          compare_ids(copy, &text, &ids, 0, g_ids, g_expected) < 0 &&
          compare_ids(copy, &text, &ids_sp, GEMINI_TOK_PARSE_SPECIAL, g_ids, g_expected) < 0,
          "whisper: create_bpe from describe_bpe gives the same ids", gemini_last_error());
    gemini_tok_free(copy);

    /* Four threads on one tokenizer. */
    {
        thread_job jobs[4];
        pthread_t threads[4];
        int k, ok = 1;
        for (k = 0; k < 4; k++) {
            jobs[k].tok = tok;
            jobs[k].text = &text;
            jobs[k].expected = &ids;
            pthread_create(&threads[k], NULL, thread_main, &jobs[k]);
        }
        for (k = 0; k < 4; k++) {
            pthread_join(threads[k], NULL);
            ok = ok && jobs[k].ok;
        }
        check(ok, "whisper: 4 threads encode one tokenizer, same ids", NULL);
    }

    /* Cut files fail cleanly (the sanitizer run catches bad reads). */
    {
        char *data;
        size_t size, cut;
        int ok = 1;
        snprintf(path, sizeof path, "%s/models/whisper-base/tokenizer.json", root);
        if (read_file(path, &data, &size)) {
            for (cut = 1; cut < size; cut += size / 7) {
                gemini_tok *bad = NULL;
                if (gemini_tok_load_memory(data, cut, &bad) != GEMINI_ERR_FORMAT) ok = 0;
                gemini_tok_free(bad);
            }
            free(data);
        }
        check(ok, "whisper: truncated tokenizer.json files fail with GEMINI_ERR_FORMAT", NULL);
    }
    free_lines(&corpus);
    free_lines(&extra);
    free(text.line);
    free(text.len);
    free_lines(&ids);
    free_lines(&ids_sp);
    free_lines(&dec);
    free_lines(&dec_sp);
    gemini_tok_free(tok);
}

/* ---- A byte-level tokenizer.json written here: works without the Whisper download ---- */

/* Appends GPT-2's byte-level character for byte b as a JSON \u escape. */
static void append_byte_level(piece_sink *out, unsigned b)
{
    unsigned cp = b, k, extra = 0;
    char esc[8];
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
        for (k = 0; k < b; k++)
            if (!((k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE)) extra++;
        cp = 0x100 + extra;
    }
    snprintf(esc, sizeof esc, "\\u%04x", cp);
    append(out, esc, 6);
}

/* 256 byte pieces, then "ab" 256, " a" 257, " ab" 258 (merges "Ġ a", "a b", then merge3,
   normally ["Ġa", "b"]), added tokens <|endoftext|> 259 (special) and <|0.00|> 260 (not
   special). pre is the pre_tokenizer and vocab_extra is appended to the vocab: the hostile
   cases change these. */
static char *byte_level_json(const char *pre, const char *merge3, const char *vocab_extra)
{
    piece_sink js = {NULL, 0, 0};
    unsigned b;
    char num[32];
    append_z(&js, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":259,\"content\":"
                  "\"<|endoftext|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
                  "\"normalized\":false,\"special\":true},{\"id\":260,\"content\":"
                  "\"<|0.00|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
                  "\"normalized\":true,\"special\":false}],\"normalizer\":null,"
                  "\"pre_tokenizer\":");
    append_z(&js, pre);
    append_z(&js, ",\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\","
                  "\"dropout\":null,\"unk_token\":null,\"vocab\":{");
    for (b = 0; b < 256; b++) {
        append_z(&js, b ? ",\"" : "\"");
        append_byte_level(&js, b);
        snprintf(num, sizeof num, "\":%u", b);
        append_z(&js, num);
    }
    append_z(&js, ",\"ab\":256,\"\\u0120a\":257,\"\\u0120ab\":258");
    append_z(&js, vocab_extra);
    append_z(&js, "},\"merges\":[\"\\u0120 a\",\"a b\",");
    append_z(&js, merge3);
    append_z(&js, "]}}");
    append(&js, "", 1);
    return js.buf;
}

static void check_byte_level_json(void)
{
    static const char level[] = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                                "\"trim_offsets\":true,\"use_regex\":true}";
    static const int32_t want_special[] = {256, 258, 259, 32, 260};
    char *js = byte_level_json(level, "[\"\\u0120a\",\"b\"]", "");
    gemini_tok *tok = NULL;
    int32_t ids[64], n = 0;
    char text[64];
    size_t len = 0;
    gemini_result r = gemini_tok_load_memory(js, strlen(js), &tok);
    check(r == GEMINI_OK && gemini_tok_model_type(tok) == GEMINI_TOK_BYTE_BPE,
          "byte-level tokenizer.json loads (merges as strings and pairs)", gemini_last_error());
    free(js);
    if (r == GEMINI_OK) {
        gemini_tok_encode(tok, "ab ab<|endoftext|> <|0.00|>", 27, GEMINI_TOK_PARSE_SPECIAL,
                          ids, 64, &n);
        check(n == 5 && memcmp(ids, want_special, sizeof want_special) == 0,
              "byte-level: merges by rank, added tokens with parse_special", NULL);
        gemini_tok_encode(tok, "ab ab<|endoftext|> <|0.00|>", 27, 0, ids, 64, &n);
        check(n == 2 + 13 + 1 + 8 && ids[0] == 256 && ids[1] == 258 && ids[2] == '<',
              "byte-level: added tokens are text without parse_special", NULL);
        check(gemini_tok_decode(tok, want_special, 5, text, sizeof text, &len) == GEMINI_OK &&
              len == 14 && memcmp(text, "ab ab <|0.00|>", 14) == 0,
              "byte-level: decode drops special tokens, keeps the others", text);
        ids[0] = 0xE2;
        ids[1] = 259;
        ids[2] = 0x82;
        ids[3] = 0xAC;
        ids[4] = 0xE2;
        ids[5] = 'x';
        check(gemini_tok_decode(tok, ids, 6, text, sizeof text, &len) == GEMINI_OK && len == 7 &&
              memcmp(text, "\xE2\x82\xAC\xEF\xBF\xBDx", 7) == 0,
              "byte-level: bytes join across a special token; one U+FFFD per bad byte", NULL);
        gemini_tok_encode(tok, "\xFF" "a", 2, 0, ids, 64, &n);
        check(n == 4 && ids[0] == 0xEF && ids[3] == 'a',
              "byte-level: an invalid byte is encoded as U+FFFD", NULL);
        gemini_tok_free(tok);
    }

    /* Scribbled files load or fail cleanly (the sanitizer run catches bad reads). */
    {
        static const char scribble[] = "{}[]\":,\\ u0123456789abzGx-e.";
        char *good = byte_level_json(level, "[\"\\u0120a\",\"b\"]", "");
        size_t size = strlen(good), k;
        unsigned seed = 99;
        int round, ok = 1;
        for (round = 0; round < 300; round++) {
            gemini_tok *bad = NULL;
            js = (char *)malloc(size + 1);
            memcpy(js, good, size + 1);
            for (k = 0; k < 4; k++) {
                seed = seed * 1103515245u + 12345u;
                js[(seed >> 8) % size] = scribble[(seed >> 24) % (sizeof scribble - 1)];
            }
            r = gemini_tok_load_memory(js, size, &bad);
            if (r == GEMINI_OK) {
                if (gemini_tok_encode(bad, "ab ab<|endoftext|>", 18, GEMINI_TOK_PARSE_SPECIAL,
                                      ids, 64, &n) != GEMINI_OK)
                    ok = 0;
                gemini_tok_free(bad);
            } else if (r != GEMINI_ERR_FORMAT && r != GEMINI_ERR_UNSUPPORTED) {
                ok = 0;
            }
            free(js);
        }
        free(good);
        check(ok, "byte-level tokenizer.json: 300 scribbled copies load or fail cleanly", NULL);
    }

    /* Hostile or unsupported variants fail cleanly, with the right code. */
    {
        static const struct { const char *pre, *merge3, *extra; gemini_result want;
                              const char *what; } cases[] = {
            {level, "[\"\\u0120a\",\"zz\"]", "", GEMINI_ERR_FORMAT, "a merge of an unknown piece"},
            {level, "\"a b c\"", "", GEMINI_ERR_FORMAT, "a merge of three parts"},
            {level, "[\"b\",\"a\"]", "", GEMINI_ERR_FORMAT, "a merge whose result is not a piece"},
            {level, "\"a b\"", ",\"\\u4e00\":261", GEMINI_ERR_FORMAT, "a piece not in byte form"},
            {level, "\"a b\"", ",\"x\":1e9", GEMINI_ERR_FORMAT, "an id out of range"},
            {level, "\"a b\"", ",\"zz\":262", GEMINI_ERR_FORMAT, "a gap in the ids"},
            {"{\"type\":\"ByteLevel\",\"add_prefix_space\":true}", "\"a b\"", "",
             GEMINI_ERR_UNSUPPORTED, "add_prefix_space"}};
        size_t k;
        for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            char name[160];
            gemini_tok *bad = NULL;
            js = byte_level_json(cases[k].pre, cases[k].merge3, cases[k].extra);
            r = gemini_tok_load_memory(js, strlen(js), &bad);
            snprintf(name, sizeof name, "byte-level tokenizer.json with %s fails with %s",
                     cases[k].what, gemini_result_string(cases[k].want));
            check(r == cases[k].want && bad == NULL, name, gemini_last_error());
            gemini_tok_free(bad);
            free(js);
        }
    }
}

/* --bench-whisper ROOT: plain-mode encode throughput on the corpus (information only). */
static int bench_whisper(const char *root)
{
    char path[1024];
    gemini_tok *tok;
    lines text;
    size_t i, bytes = 0;
    int rounds = 0;
    clock_t start;
    double seconds;
    snprintf(path, sizeof path, "%s/models/whisper-base/tokenizer.json", root);
    start = clock();
    if (gemini_tok_load(path, &tok) != GEMINI_OK) {
        printf("bench: %s\n", gemini_last_error());
        return 1;
    }
    printf("bench whisper: load tokenizer.json %.0f ms\n",
           1000.0 * (double)(clock() - start) / CLOCKS_PER_SEC);
    snprintf(path, sizeof path, "%s/tests/tokenizer/corpus.txt", root);
    read_lines(path, &text);
    for (i = 0; i < text.n; i++) bytes += text.len[i];
    start = clock();
    do {
        for (i = 0; i < text.n; i++) {
            int32_t n;
            gemini_tok_encode(tok, text.line[i], text.len[i], 0, g_ids, MAX_IDS, &n);
        }
        rounds++;
        seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    } while (seconds < 1.0);
    printf("bench whisper: %.2f MB/s on the corpus (line by line, one thread)\n",
           (double)bytes * rounds / seconds / 1e6);
    free_lines(&text);
    gemini_tok_free(tok);
    return 0;
}

/* ---- A model with UNUSED pieces, for spm_encode to encode: --mark-unused IN OUT ----
   Writes IN again as a .model protobuf with every fifth multi-character NORMAL piece made
   UNUSED, so that BPE must split those pieces again and unigram must avoid them. */

static void pb_varint(FILE *f, uint64_t v)
{
    while (v >= 0x80) {
        fputc((int)(v & 0x7F) | 0x80, f);
        v >>= 7;
    }
    fputc((int)v, f);
}

static void pb_bytes(FILE *f, unsigned field, const void *p, size_t n)
{
    pb_varint(f, (uint64_t)field << 3 | 2);
    pb_varint(f, n);
    fwrite(p, 1, n, f);
}

static void pb_bool(piece_sink *out, unsigned field, int v)
{
    char b[2];
    b[0] = (char)(field << 3);
    b[1] = (char)(v != 0);
    append(out, b, 2);
}

static void append_byte(piece_sink *out, size_t n)
{
    char b = (char)n;
    append(out, &b, 1);
}

static int mark_unused(const char *in, const char *out_path)
{
    gemini_tok *tok;
    gemini_tok_spm_desc d;
    FILE *f;
    int32_t id;
    int count = 0;
    piece_sink msg = {NULL, 0, 0};
    if (gemini_tok_load(in, &tok) != GEMINI_OK) {
        fprintf(stderr, "%s\n", gemini_last_error());
        return 1;
    }
    gemini_tok_describe(tok, &d);
    f = fopen(out_path, "wb");
    if (!f) return 1;
    for (id = 0; id < d.n_pieces; id++) {
        unsigned char piece[16];
        int type = d.types[id];
        size_t chars = 0, k;
        uint32_t bits;
        for (k = 0; k < d.piece_lengths[id]; k++)
            if ((d.pieces[id][k] & 0xC0) != 0x80) chars++;
        if (type == GEMINI_TOK_NORMAL && chars >= 2 && ++count % 5 == 0) type = GEMINI_TOK_UNUSED;
        msg.len = 0;
        append(&msg, "\x0a", 1);
        if (d.piece_lengths[id] >= 0x80) return 1; /* the test models' pieces are short */
        append_byte(&msg, d.piece_lengths[id]);
        append(&msg, d.pieces[id], d.piece_lengths[id]);
        memcpy(&bits, &d.scores[id], 4);
        piece[0] = 0x15;
        for (k = 0; k < 4; k++) piece[1 + k] = (unsigned char)(bits >> (8 * k));
        piece[5] = 0x18;
        piece[6] = (unsigned char)type;
        append(&msg, (const char *)piece, 7);
        pb_bytes(f, 1, msg.buf, msg.len);
    }
    msg.len = 0;
    append(&msg, "\x18", 1); /* model_type */
    append(&msg, d.model_type == GEMINI_TOK_BPE ? "\x02" : "\x01", 1);
    if (d.byte_fallback) append(&msg, "\x98\x02\x01", 3); /* field 35, varint 1 */
    pb_bytes(f, 2, msg.buf, msg.len);
    msg.len = 0;
    if (d.charsmap_size) {
        size_t n = d.charsmap_size;
        append(&msg, "\x12", 1); /* field 2, bytes */
        while (n >= 0x80) {
            char b = (char)((n & 0x7F) | 0x80);
            append(&msg, &b, 1);
            n >>= 7;
        }
        append_byte(&msg, n);
        append(&msg, (const char *)d.charsmap, d.charsmap_size);
    }
    pb_bool(&msg, 3, d.add_dummy_prefix);
    pb_bool(&msg, 4, d.remove_extra_whitespaces);
    pb_bool(&msg, 5, d.escape_whitespaces);
    pb_bytes(f, 3, msg.buf, msg.len);
    fclose(f);
    free(msg.buf);
    gemini_tok_free(tok);
    return 0;
}

int main(int argc, char **argv)
{
    int i;
    const char *root = argc > 2 ? argv[2] : ".";
    if (argc == 4 && strcmp(argv[1], "--mark-unused") == 0) return mark_unused(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "--bench-whisper") == 0) return bench_whisper(argv[2]);
    if (argc <= 3)
        printf("skip the spm_encode comparisons: tests/tokenizer/run.sh trains the models and "
               "runs them\n");
    for (i = 3; i < argc; i++) check_model(argv[1], argv[i]);
    if (argc > 3) {
        check_threads(argv[1], "bpe_bf");
        check_threads(argv[1], "uni");
        check_errors(argv[1]);
        check_unigram_json(argv[1], "uni_bf");
        check_unigram_json(argv[1], "uni_user");
    }
    check_json();
    check_gemma(root, "gemma3-rebuilt.model", ".model");
    check_gemma(root, "gemma3-rebuilt.tokenizer.json", "tokenizer.json");
    check_gemma_gguf(root);
    check_byte_level_json();
    check_whisper(root);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
