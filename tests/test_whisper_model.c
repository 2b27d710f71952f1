/* test_whisper_model.c - gemini_whisper_transcribe through gemini.h on a tiny random-weight
   Whisper model built in memory (d 64, 2 encoder and 2 decoder layers, the byte-level
   vocabulary of test_whisper.c: 1766 ids, no tokenizer stored).

   The model-level entry point keeps one gemini.h context per beam or sample, lets them share
   the encoded audio (gemini_context_share_audio), decodes all of a step's hypotheses in one
   gemini_decode_each and reorders beams by copying KV caches
   (gemini_context_copy_sequence). This test runs the same transcription a second time through
   gemini_whisper_transcribe_with and a decoder that never copies a cache: it re-decodes each
   hypothesis's whole token history in a fresh pass for every step. gemini.h's logits do not
   depend on batching, so both must give the same segments, token for token. It also checks the
   refusals of gemini_whisper_transcribe (not a Whisper model, a missing key), and
   gemini_decode_each over contexts with shared, own and copied audio against decoding alone.
   test_whisper_model --write FILE writes the tiny model to FILE instead (for the command-line
   tests in tests/test_transcribe_cli.sh).

       cc -std=c99 -O2 -I. tests/test_whisper_model.c -o build/test_whisper_model -lm -lpthread
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An allocator that can refuse blocks over 1 MiB: gemini_encode_mel's and
   gemini_context_copy_audio's first call makes the encoder's buffers, and must fail cleanly. */
static int refuse_big_blocks = 0;
static void *test_malloc(size_t size)
{
    return refuse_big_blocks && size > ((size_t)1 << 20) ? NULL : malloc(size);
}
#define GEMINI_MALLOC(size) test_malloc(size)
#define GEMINI_REALLOC(block, size) realloc(block, size)
#define GEMINI_FREE(block) free(block)

#define GEMINI_IMPLEMENTATION
#define GEMINI_AUDIO_IMPLEMENTATION
#include "gemini.h"
#include "gemini_audio.h"

static int tests_passed = 0, tests_failed = 0;

static void check(int ok, const char *name, const char *detail)
{
    if (ok) tests_passed++;
    else tests_failed++;
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, detail && detail[0] ? ": " : "",
           detail ? detail : "");
}

/* ---- a .gemini writer (format.md) ------------------------------------------------------------ */

typedef struct buffer {
    unsigned char *p;
    size_t n, cap;
} buffer;

static void put(buffer *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 1024;
        b->p = (unsigned char *)realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put_u32(buffer *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(b, x, 4);
}

static void put_u64(buffer *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_string(buffer *b, const char *s)
{
    put_u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

typedef struct writer {
    buffer meta, dir, data;
    uint64_t n_kv, n_tensors;
} writer;

static void meta_u32(writer *w, const char *key, uint32_t v)
{
    put_string(&w->meta, key);
    put_u32(&w->meta, 4);
    put_u32(&w->meta, v);
    w->n_kv++;
}

static void meta_i32(writer *w, const char *key, int32_t v)
{
    put_string(&w->meta, key);
    put_u32(&w->meta, 5);
    put_u32(&w->meta, (uint32_t)v);
    w->n_kv++;
}

static void meta_f32(writer *w, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    put_string(&w->meta, key);
    put_u32(&w->meta, 6);
    put_u32(&w->meta, bits);
    w->n_kv++;
}

static void meta_bool(writer *w, const char *key, int v)
{
    unsigned char x = (unsigned char)(v != 0);
    put_string(&w->meta, key);
    put_u32(&w->meta, 7);
    put(&w->meta, &x, 1);
    w->n_kv++;
}

static void meta_string(writer *w, const char *key, const char *v)
{
    put_string(&w->meta, key);
    put_u32(&w->meta, 8);
    put_string(&w->meta, v);
    w->n_kv++;
}

static void meta_ids(writer *w, const char *key, const int32_t *ids, int n)
{
    int i;
    put_string(&w->meta, key);
    put_u32(&w->meta, 9);
    put_u32(&w->meta, 5);
    put_u64(&w->meta, (uint64_t)n);
    for (i = 0; i < n; i++) put_u32(&w->meta, (uint32_t)ids[i]);
    w->n_kv++;
}

static uint64_t rng_state = 0x1234567;

static float uniform(float scale)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return scale * ((float)((rng_state >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f);
}

/* An f32 tensor of rows x cols (cols only when rows is 0): random in [-scale, scale] plus
   `offset`. */
static void tensor(writer *w, const char *name, int64_t rows, int64_t cols, float scale,
                   float offset)
{
    int64_t count = (rows ? rows : 1) * cols, i;
    uint64_t start = w->data.n;
    float *values = (float *)malloc((size_t)count * sizeof *values);
    while (w->data.n % 64) put(&w->data, "", 1);
    start = w->data.n;
    for (i = 0; i < count; i++) values[i] = offset + uniform(scale);
    put(&w->data, values, (size_t)count * 4);
    put_string(&w->dir, name);
    put_u32(&w->dir, 0);
    put_u32(&w->dir, rows ? 2 : 1);
    if (rows) put_u64(&w->dir, (uint64_t)rows);
    put_u64(&w->dir, (uint64_t)cols);
    put_u64(&w->dir, start);
    put_u64(&w->dir, (uint64_t)count * 4);
    put_u32(&w->dir, gemini_crc32(0, values, (size_t)count * 4));
    w->n_tensors++;
    free(values);
}

#define TINY_D 64
#define TINY_F 128
#define TINY_V 1766
#define TINY_TB 265

/* The whole file; `skip_key` leaves one metadata key out. */
static unsigned char *tiny_whisper(size_t *size, const char *skip_key)
{
    static const int32_t suppress[4] = {1, 2, 7, 8}, begin_suppress[2] = {32, 256};
    static const char *const ids[10][2] = {
        {"whisper.eot_id", "256"},          {"whisper.sot_id", "257"},
        {"whisper.translate_id", "259"},    {"whisper.transcribe_id", "260"},
        {"whisper.sot_lm_id", "261"},       {"whisper.sot_prev_id", "262"},
        {"whisper.no_speech_id", "263"},    {"whisper.no_timestamps_id", "264"},
        {"whisper.timestamp_begin_id", "265"}, {NULL, NULL}};
    writer w;
    buffer file = {NULL, 0, 0};
    unsigned char header[64];
    uint64_t dir_size, data_offset;
    int i, layer;
    char name[64];

    memset(&w, 0, sizeof w);
    meta_string(&w, "general.architecture", "whisper");
#define U32(key, v) if (!skip_key || strcmp(skip_key, key)) meta_u32(&w, key, v)
    U32("model.vocab_size", TINY_V);
    U32("model.hidden_size", TINY_D);
    U32("model.intermediate_size", TINY_F);
    U32("model.num_layers", 2);
    U32("model.num_heads", 2);
    U32("model.num_kv_heads", 2);
    U32("model.head_dim", TINY_D / 2);
    U32("model.max_position", 448);
    U32("whisper.n_mels", 80);
    U32("whisper.audio_ctx", 1500);
    U32("whisper.encoder_layers", 2);
    U32("whisper.encoder_heads", 2);
    U32("whisper.encoder_ffn", TINY_F);
#undef U32
    meta_f32(&w, "model.layer_norm_eps", 1e-5f);
    meta_string(&w, "model.activation", "gelu");
    meta_bool(&w, "model.tied_embeddings", 1);
    for (i = 0; ids[i][0]; i++)
        if (!skip_key || strcmp(skip_key, ids[i][0])) meta_i32(&w, ids[i][0], atoi(ids[i][1]));
    meta_ids(&w, "whisper.suppress_tokens", suppress, 4);
    meta_ids(&w, "whisper.begin_suppress_tokens", begin_suppress, 2);

    tensor(&w, "token_embd", TINY_V, TINY_D, 0.5f, 0.0f);
    tensor(&w, "pos_embd", 448, TINY_D, 0.1f, 0.0f);
    tensor(&w, "output_norm", 0, TINY_D, 0.1f, 1.0f);
    tensor(&w, "output_norm_b", 0, TINY_D, 0.1f, 0.0f);
    tensor(&w, "enc.conv1", TINY_D, 80 * 3, 0.1f, 0.0f);
    tensor(&w, "enc.conv1_b", 0, TINY_D, 0.1f, 0.0f);
    tensor(&w, "enc.conv2", TINY_D, TINY_D * 3, 0.1f, 0.0f);
    tensor(&w, "enc.conv2_b", 0, TINY_D, 0.1f, 0.0f);
    tensor(&w, "enc.pos", 1500, TINY_D, 0.5f, 0.0f);
    tensor(&w, "enc.output_norm", 0, TINY_D, 0.1f, 1.0f);
    tensor(&w, "enc.output_norm_b", 0, TINY_D, 0.1f, 0.0f);
    for (layer = 0; layer < 4; layer++) {
        static const char *const parts[] = {"attn", "cross"};
        const char *prefix = layer < 2 ? "enc.blk" : "blk";
        int block = layer % 2, p;
        for (p = 0; p < (layer < 2 ? 1 : 2); p++) {
#define T(suffix, rows, cols, scale, offset)                                              \
    snprintf(name, sizeof name, "%s.%d.%s%s", prefix, block, parts[p], suffix);           \
    tensor(&w, name, rows, cols, scale, offset)
            T("_norm", 0, TINY_D, 0.1f, 1.0f);
            T("_norm_b", 0, TINY_D, 0.1f, 0.0f);
            T("_q", TINY_D, TINY_D, 0.25f, 0.0f);
            T("_q_b", 0, TINY_D, 0.1f, 0.0f);
            T("_k", TINY_D, TINY_D, 0.25f, 0.0f);
            T("_v", TINY_D, TINY_D, 0.25f, 0.0f);
            T("_v_b", 0, TINY_D, 0.1f, 0.0f);
            T("_out", TINY_D, TINY_D, 0.25f, 0.0f);
            T("_out_b", 0, TINY_D, 0.1f, 0.0f);
#undef T
        }
        snprintf(name, sizeof name, "%s.%d.ffn_norm", prefix, block);
        tensor(&w, name, 0, TINY_D, 0.1f, 1.0f);
        snprintf(name, sizeof name, "%s.%d.ffn_norm_b", prefix, block);
        tensor(&w, name, 0, TINY_D, 0.1f, 0.0f);
        snprintf(name, sizeof name, "%s.%d.ffn_up", prefix, block);
        tensor(&w, name, TINY_F, TINY_D, 0.2f, 0.0f);
        snprintf(name, sizeof name, "%s.%d.ffn_up_b", prefix, block);
        tensor(&w, name, 0, TINY_F, 0.1f, 0.0f);
        snprintf(name, sizeof name, "%s.%d.ffn_down", prefix, block);
        tensor(&w, name, TINY_D, TINY_F, 0.2f, 0.0f);
        snprintf(name, sizeof name, "%s.%d.ffn_down_b", prefix, block);
        tensor(&w, name, 0, TINY_D, 0.1f, 0.0f);
    }

    dir_size = w.meta.n + w.dir.n;
    data_offset = (64 + dir_size + 63) / 64 * 64;
    while (w.data.n % 64) put(&w.data, "", 1);
    memset(header, 0, sizeof header);
    memcpy(header, "GMNI", 4);
    {
        buffer h = {NULL, 0, 0};
        put_u32(&h, 1);
        put_u32(&h, 64);
        put_u32(&h, 0);
        put_u64(&h, w.n_kv);
        put_u64(&h, w.n_tensors);
        put_u64(&h, dir_size);
        put_u64(&h, data_offset);
        put_u64(&h, w.data.n);
        memcpy(header + 4, h.p, h.n);
        free(h.p);
    }
    put(&file, header, 64);
    put(&file, w.meta.p, w.meta.n);
    put(&file, w.dir.p, w.dir.n);
    {
        uint32_t crc = gemini_crc32(0, file.p + 64, (size_t)dir_size);
        file.p[56] = (unsigned char)crc, file.p[57] = (unsigned char)(crc >> 8);
        file.p[58] = (unsigned char)(crc >> 16), file.p[59] = (unsigned char)(crc >> 24);
    }
    while (file.n < data_offset) put(&file, "", 1);
    put(&file, w.data.p, w.data.n);
    free(w.meta.p);
    free(w.dir.p);
    free(w.data.p);
    *size = file.n;
    return file.p;
}

/* ---- a decoder that never copies a cache --------------------------------------------------- */

typedef struct replay {
    gemini_context *ctx;
    int32_t history[GEMINI_WHISPER_MAX_SLOTS][448];
    int32_t n[GEMINI_WHISPER_MAX_SLOTS];
    long tokens_decoded;
} replay;

static gemini_result replay_encode(void *user, const float *mel)
{
    replay *r = (replay *)user;
    memset(r->n, 0, sizeof r->n);
    return gemini_encode_mel(r->ctx, mel, 80, 3000);
}

static gemini_result replay_decode(void *user, int32_t slot, const int32_t *tokens, int32_t n,
                                   float *logits)
{
    replay *r = (replay *)user;
    if (r->n[slot] + n > 448) return GEMINI_ERR_CONTEXT_FULL;
    memcpy(r->history[slot] + r->n[slot], tokens, (size_t)n * sizeof *tokens);
    r->n[slot] += n;
    r->tokens_decoded += r->n[slot];
    gemini_context_reset(r->ctx);
    return gemini_decode(r->ctx, r->history[slot], r->n[slot], logits, 0);
}

static gemini_result replay_copy(void *user, int32_t dst, int32_t src)
{
    replay *r = (replay *)user;
    memcpy(r->history[dst], r->history[src], (size_t)r->n[src] * sizeof(int32_t));
    r->n[dst] = r->n[src];
    return GEMINI_OK;
}

static gemini_result replay_reset(void *user, int32_t slot)
{
    ((replay *)user)->n[slot] = 0;
    return GEMINI_OK;
}

static float *tones(double seconds, size_t *n_out)
{
    size_t n = (size_t)(seconds * 16000), i;
    float *x = (float *)malloc(n * sizeof *x);
    for (i = 0; i < n; i++)
        x[i] = (float)(0.3 * sin(2 * 3.14159265358979 * (i < n / 2 ? 500.0 : 2300.0) * i /
                                 16000.0));
    *n_out = n;
    return x;
}

static int same_results(const gemini_whisper_result *a, const gemini_whisper_result *b,
                        char *detail, size_t cap)
{
    int32_t i, n = gemini_whisper_result_n_segments(a);
    if (n != gemini_whisper_result_n_segments(b)) {
        snprintf(detail, cap, "%d segments against %d", (int)n,
                 (int)gemini_whisper_result_n_segments(b));
        return 0;
    }
    for (i = 0; i < n; i++) {
        const gemini_whisper_segment *x = gemini_whisper_result_segment(a, i);
        const gemini_whisper_segment *y = gemini_whisper_result_segment(b, i);
        if (x->seek != y->seek || x->start != y->start || x->end != y->end ||
            x->n_tokens != y->n_tokens || x->temperature != y->temperature ||
            memcmp(x->tokens, y->tokens, (size_t)x->n_tokens * sizeof *x->tokens) ||
            fabs(x->avg_logprob - y->avg_logprob) > 1e-9 ||
            fabs(x->no_speech_prob - y->no_speech_prob) > 1e-9) {
            snprintf(detail, cap, "segment %d differs (seek %lld/%lld, %d/%d tokens, "
                     "temperature %g/%g)", (int)i, (long long)x->seek, (long long)y->seek,
                     (int)x->n_tokens, (int)y->n_tokens, (double)x->temperature,
                     (double)y->temperature);
            return 0;
        }
    }
    {
        int hot = 0;
        for (i = 0; i < n; i++) hot += gemini_whisper_result_segment(a, i)->temperature > 0.0f;
        snprintf(detail, cap, "%d segments, %d of them sampled at 0.5", (int)n, hot);
    }
    return 1;
}

/* gemini_context_share_audio and gemini_decode_each on Whisper contexts: four contexts, two
   sharing one window's audio (not adjacent in the step, so the step attends to it in two
   runs), one with another window's audio, one with a copy of the first; each at its own
   position. Every row of three steps must equal what a context with its own encode of the same
   window and the same tokens decodes alone, bit for bit. */
static void test_decode_each(const gemini_model *model)
{
    enum { N = 4, MELS = 80 * 3000 };
    static const int prefix[N] = {3, 1, 5, 2};  /* tokens each context has before the steps */
    static const int window[N] = {0, 1, 0, 0};  /* which mel each context's audio is */
    float *mel[2], *rows = (float *)malloc(sizeof(float) * N * TINY_V);
    float *alone = (float *)malloc(sizeof(float) * TINY_V);
    gemini_context *contexts[N] = {NULL}, *reference[N] = {NULL}, *order[N], *empty = NULL;
    gemini_context_params cp = gemini_context_default_params();
    int32_t tokens[N], history[16];
    int i, step, same = 1, k;
    gemini_result r = GEMINI_OK;

    for (k = 0; k < 2; k++) {
        mel[k] = (float *)malloc(sizeof(float) * MELS);
        for (i = 0; i < MELS; i++) mel[k][i] = uniform(1.0f);
    }
    for (i = 0; i < 16; i++) history[i] = (int32_t)(i * 37 % 256);
    cp.n_ctx = 448;
    cp.n_threads = 2;
    for (i = 0; i < N && r == GEMINI_OK; i++) {
        r = gemini_context_create(model, &cp, &contexts[i]);
        if (r == GEMINI_OK) r = gemini_context_create(model, &cp, &reference[i]);
        if (r == GEMINI_OK) r = gemini_encode_mel(reference[i], mel[window[i]], 80, 3000);
    }
    /* 0 encodes window 0, 1 window 1, 2 shares 0's audio, 3 copies it */
    if (r == GEMINI_OK) r = gemini_encode_mel(contexts[0], mel[0], 80, 3000);
    if (r == GEMINI_OK) r = gemini_encode_mel(contexts[1], mel[1], 80, 3000);
    if (r == GEMINI_OK) r = gemini_context_share_audio(contexts[2], contexts[0]);
    if (r == GEMINI_OK) r = gemini_context_copy_audio(contexts[3], contexts[2]);
    for (i = 0; i < N && r == GEMINI_OK; i++) {
        r = gemini_decode(contexts[i], history, prefix[i], NULL, 0);
        if (r == GEMINI_OK) r = gemini_decode(reference[i], history, prefix[i], NULL, 0);
    }
    check(r == GEMINI_OK && gemini_encoder_output(contexts[2], NULL, NULL) ==
                                gemini_encoder_output(contexts[0], NULL, NULL),
          "a context sharing another's audio has its encoder output, not a copy",
          r ? gemini_last_error() : "");
    check(r == GEMINI_OK && contexts[2]->enc_out == NULL && contexts[2]->cross_k == NULL &&
              contexts[3]->enc_out != NULL,
          "a context that shares audio makes no encoder buffers; one that copies does", "");

    /* the step order 2, 1, 0, 3: contexts 2 and 0 share audio but are not neighbours */
    order[0] = contexts[2], order[1] = contexts[1], order[2] = contexts[0];
    order[3] = contexts[3];
    for (step = 0; step < 3 && r == GEMINI_OK; step++) {
        static const int index[N] = {2, 1, 0, 3};
        for (i = 0; i < N; i++) tokens[i] = history[prefix[index[i]] + step];
        r = gemini_decode_each(order, N, tokens, rows);
        for (i = 0; i < N && r == GEMINI_OK; i++) {
            r = gemini_decode(reference[index[i]], &tokens[i], 1, alone, 0);
            same &= memcmp(rows + (size_t)i * TINY_V, alone, sizeof(float) * TINY_V) == 0;
            same &= gemini_context_position(order[i]) == prefix[index[i]] + step + 1;
        }
    }
    check(r == GEMINI_OK && same,
          "gemini_decode_each over shared, own and copied audio equals decoding alone, bit "
          "for bit", r ? gemini_last_error() : "");

    r = gemini_context_create(model, &cp, &empty);
    check(r == GEMINI_OK && gemini_context_share_audio(empty, contexts[0]) == GEMINI_OK &&
              gemini_context_share_audio(contexts[0], contexts[0]) == GEMINI_OK &&
              gemini_encoder_output(contexts[0], NULL, NULL) != NULL,
          "sharing with itself or from a context with audio is fine", gemini_last_error());

    /* what a source comes to hold, its sharers read: empty shares 0; 0 then shares 1's
       window; then 0 and 1 share each other's, which ends the chain at 1 */
    same = gemini_context_share_audio(contexts[0], contexts[1]) == GEMINI_OK &&
           gemini_encoder_output(empty, NULL, NULL) ==
               gemini_encoder_output(contexts[1], NULL, NULL) &&
           gemini_encoder_output(contexts[0], NULL, NULL) ==
               gemini_encoder_output(contexts[1], NULL, NULL) &&
           gemini_context_share_audio(contexts[1], contexts[0]) == GEMINI_OK &&
           contexts[1]->audio_from == NULL &&
           gemini_encoder_output(empty, NULL, NULL) ==
               gemini_encoder_output(contexts[1], NULL, NULL);
    check(same, "a sharer follows its source when the source comes to share another's audio",
          "");
    gemini_context_free(empty);
    empty = NULL;
    r = gemini_context_create(model, &cp, &empty);
    check(r == GEMINI_OK &&
              gemini_context_share_audio(contexts[0], empty) == GEMINI_ERR_INVALID_ARGUMENT &&
              gemini_decode_each(&empty, 1, tokens, NULL) == GEMINI_ERR_INVALID_ARGUMENT,
          "no audio: nothing to share, no step to take", gemini_last_error());

    /* the encoder's buffers refused: an error, no audio, nothing kept; then they are made */
    refuse_big_blocks = 1;
    same = r == GEMINI_OK &&
           gemini_encode_mel(empty, mel[0], 80, 3000) == GEMINI_ERR_OUT_OF_MEMORY &&
           strstr(gemini_last_error(), "gemini_encode_mel") != NULL &&
           gemini_context_copy_audio(empty, contexts[0]) == GEMINI_ERR_OUT_OF_MEMORY &&
           empty->enc_out == NULL && empty->cross_k == NULL && empty->enc.x == NULL &&
           gemini_encoder_output(empty, NULL, NULL) == NULL;
    refuse_big_blocks = 0;
    same &= r == GEMINI_OK && gemini_encode_mel(empty, mel[0], 80, 3000) == GEMINI_OK &&
            gemini_decode(empty, history, 1, alone, 0) == GEMINI_OK;
    check(same, "no memory for the encoder's buffers: gemini_encode_mel and "
          "gemini_context_copy_audio fail cleanly, and work once there is", gemini_last_error());
    gemini_context_free(empty);
    for (i = 0; i < N; i++) {
        gemini_context_free(contexts[i]);
        gemini_context_free(reference[i]);
    }
    free(mel[0]);
    free(mel[1]);
    free(rows);
    free(alone);
}

int main(int argc, char **argv)
{
    static const float temperatures[2] = {0.0f, 0.5f};
    static const int32_t non_speech[4] = {1, 2, 7, 8}, blank[1] = {32};
    size_t size, n_samples;
    unsigned char *file = tiny_whisper(&size, NULL);
    gemini_model *model = NULL;
    gemini_whisper_result *direct = NULL, *replayed = NULL;
    gemini_whisper_params p = gemini_whisper_default_params();
    float *audio = tones(35.0, &n_samples);
    char detail[200];
    gemini_result r;
    int beam, run;

    gemini__threads_past_cpus = 1; /* 2 threads even on a machine of 1 CPU */

    if (argc == 3 && !strcmp(argv[1], "--write")) {
        FILE *out = fopen(argv[2], "wb");
        int ok = out && fwrite(file, 1, size, out) == size;
        if (out && fclose(out) != 0) ok = 0;
        free(file);
        free(audio);
        if (!ok) fprintf(stderr, "test_whisper_model: cannot write %s\n", argv[2]);
        return ok ? 0 : 1;
    }

    r = gemini_model_load_memory(file, size, &model);
    check(r == GEMINI_OK, "the tiny Whisper file loads", r ? gemini_last_error() : "");
    if (r != GEMINI_OK) return 1;

    p.temperatures = temperatures;
    p.n_temperatures = 2;
    p.sample_len = 24;
    p.n_threads = 2;
    p.best_of = 3;
    for (run = 0; run < 3; run++) {
        replay rp;
        gemini_whisper_vocab v;
        gemini_whisper_decoder d;
        gemini_context_params cp = gemini_context_default_params();
        char title[160];

        /* Greedy, then beam search, both rejected by the thresholds and replaced by samples
           at 0.5; then beam search kept (thresholds off). */
        beam = run == 0 ? 1 : 3;
        p.beam_size = beam;
        if (run == 2) p.logprob_threshold = p.compression_ratio_threshold = NAN;
        r = gemini_whisper_transcribe(model, audio, n_samples, &p, &direct);
        snprintf(title, sizeof title, "gemini_whisper_transcribe on the tiny model (beam %d, "
                 "best_of 3, temperatures 0 and 0.5%s)", beam, run == 2 ? ", no fallback" : "");
        check(r == GEMINI_OK && gemini_whisper_result_n_segments(direct) > 0, title,
              r ? gemini_last_error() : "");

        memset(&rp, 0, sizeof rp);
        cp.n_ctx = 448;
        cp.n_threads = 2;
        r = gemini_context_create(model, &cp, &rp.ctx);
        memset(&v, 0, sizeof v);
        v.n_vocab = TINY_V;
        v.eot = 256, v.sot = 257, v.translate = 259, v.transcribe = 260, v.sot_lm = 261;
        v.sot_prev = 262, v.no_speech = 263, v.no_timestamps = 264, v.timestamp_begin = TINY_TB;
        v.non_speech_tokens = non_speech, v.n_non_speech_tokens = 4;
        v.blank_tokens = blank, v.n_blank_tokens = 1;
        memset(&d, 0, sizeof d);
        d.user_data = &rp;
        d.n_mels = 80, d.n_audio_ctx = 1500, d.n_text_ctx = 448;
        d.max_slots = GEMINI_WHISPER_MAX_SLOTS;
        d.encode = replay_encode, d.decode = replay_decode, d.copy = replay_copy;
        d.reset = replay_reset;
        if (r == GEMINI_OK)
            r = gemini_whisper_transcribe_with(&v, &d, audio, n_samples, &p, &replayed);
        snprintf(title, sizeof title, "beam %d%s: contexts with shared audio, copied KV "
                 "caches and one-step batches give what full re-decoding gives", beam,
                 run == 2 ? " kept" : "");
        check(r == GEMINI_OK && same_results(direct, replayed, detail, sizeof detail), title,
              r ? gemini_last_error() : detail);
        gemini_whisper_result_free(direct);
        gemini_whisper_result_free(replayed);
        direct = replayed = NULL;
        gemini_context_free(rp.ctx);
    }

    test_decode_each(model);

    /* Refusals. */
    p = gemini_whisper_default_params();
    p.language = "de";
    p.sample_len = 4;
    p.n_temperatures = 1;
    p.temperatures = temperatures;
    r = gemini_whisper_transcribe(model, audio, 16000, &p, &direct);
    check(r == GEMINI_OK && !strcmp(gemini_whisper_result_language(direct), "en"),
          "an English-only model (vocabulary < 51865) ignores the language and says en", "");
    gemini_whisper_result_free(direct);
    p.kv_type = GEMINI_TYPE_Q8_0;
    r = gemini_whisper_transcribe(model, audio, 16000, &p, &direct);
    check(r == GEMINI_ERR_INVALID_ARGUMENT && direct == NULL,
          "a KV cache type other than f32, f16, bf16 is refused", gemini_last_error());
    p.kv_type = GEMINI_TYPE_F16;
    r = gemini_whisper_transcribe(model, audio, 16000, &p, &direct);
    check(r == GEMINI_OK && gemini_whisper_result_n_segments(direct) > 0,
          "an f16 KV cache transcribes", r ? gemini_last_error() : "");
    gemini_whisper_result_free(direct);
    gemini_model_free(model);
    free(file);

    file = tiny_whisper(&size, "whisper.timestamp_begin_id");
    r = gemini_model_load_memory(file, size, &model);
    if (r == GEMINI_OK) {
        r = gemini_whisper_transcribe(model, audio, 16000, NULL, &direct);
        check(r == GEMINI_ERR_MISSING_KEY && direct == NULL &&
                  strstr(gemini_last_error(), "whisper.timestamp_begin_id"),
              "a missing whisper.timestamp_begin_id is named", gemini_last_error());
        gemini_model_free(model);
    } else {
        check(0, "the file without whisper.timestamp_begin_id loads", gemini_last_error());
    }
    free(file);
    free(audio);
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed ? 1 : 0;
}
