/* test_offload.c - the accelerator offload hook (gemini_backend) against the plain CPU context.

   A reference backend written only against the public hook: it takes every weight matrix,
   computes matrix-vector and matrix-matrix products with scalar loops of its own, and can run
   attention over a KV store of its own. Its arithmetic is the CPU's scalar arithmetic in the
   CPU's order (f32/f16/bf16: one f32 sum along the row; q8_0/q4_0: the activations rounded to
   q8_0 blocks with gemini_quantize_row, an integer sum per block, then d_w * d_x * sum added
   block by block), so with both contexts on the scalar kernels the logits must be equal bit
   for bit. The SIMD kernels sum in another order, so the test forces the scalar ones (the
   gemini__force_scalar test hook) for both contexts.

   For each model file: prefill in batches (matmul), then single-token decode steps (matvec),
   every logits row compared; counters show that the backend computed every product; then the
   same with a backend that declines every other op (the CPU computes those), one that refuses
   every other matrix at creation, with attention offloaded, and with attention and declines;
   a backend that returns wrong results on purpose must change the logits. Also: release runs
   exactly once, including when gemini_context_create fails.

       gcc -std=c99 -O2 -Wall -Wextra -pedantic -I. tests/test_offload.c -o build/test_offload \
           -lm -lpthread
       build/test_offload [MODEL.gemini ...]

   Without arguments it reads tests/out/parity/gemma{1,2,3}-f32.gemini and gemma3-q8_0.gemini,
   which tests/test_parity.sh writes, and tests/out/whisper-parity/whisper-tiny-f32.gemini
   (tests/test_whisper_parity.sh; a Whisper model encodes a made-up log-mel window first); an
   absent file is skipped with a message. Ends with
   "N passed, M failed" and exits nonzero on any failure. */
#define GEMINI_IMPLEMENTATION
#include "gemini.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tests_passed = 0, tests_failed = 0;

static void check(int ok, const char *name, const char *detail)
{
    if (ok) tests_passed++;
    else tests_failed++;
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, detail[0] ? ": " : "", detail);
}

/* ---- the reference backend ------------------------------------------------------------------ */

typedef struct ref_matrix {
    gemini_type type;
    int64_t rows, cols, row_bytes;
    const uint8_t *data;
} ref_matrix;

typedef struct ref_backend {
    int decline_every_other;        /* decline ops 1, 3, 5, ... (counted over all ops) */
    int with_attention;
    int perturb;                    /* add 1 to the first output of every op it computes */
    int take_every_other;           /* refuse matrices 1, 3, 5, ... as they are offered */
    int offers;

    ref_matrix **matrices;          /* (n_matrices) handles handed out */
    int n_matrices, capacity;
    uint8_t *xq;                    /* q8_0 copy of one activation row */
    int64_t xq_bytes;

    float **k_store, **v_store;     /* (layers) -> (n_ctx, Hkv*D) */
    int32_t n_layers;
    float *scores;                  /* (n_ctx) */

    long ops, matvecs, matmuls, attentions, declined, released;
} ref_backend;

static uint16_t read_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static int ref_take(void *user, const gemini_backend_tensor *t, void **handle)
{
    ref_backend *b = (ref_backend *)user;
    ref_matrix *m;
    if (b->take_every_other && (b->offers++ & 1)) return 0;
    if (b->n_matrices == b->capacity) {
        int capacity = b->capacity * 2 + 16;
        ref_matrix **grown = (ref_matrix **)realloc(b->matrices, sizeof *grown * capacity);
        if (grown == NULL) return 0;
        b->matrices = grown;
        b->capacity = capacity;
    }
    m = (ref_matrix *)malloc(sizeof *m);
    if (m == NULL) return 0;
    m->type = t->type;
    m->rows = t->rows;
    m->cols = t->cols;
    m->row_bytes = t->row_bytes;
    m->data = (const uint8_t *)t->data;
    if (gemini_type_row_bytes(t->type, t->cols) != t->row_bytes || strlen(t->name) == 0 ||
        ((uintptr_t)t->data & 63) != 0) {
        free(m);
        return 0;
    }
    if ((t->cols / 32 + 1) * 34 > b->xq_bytes) {
        uint8_t *grown = (uint8_t *)realloc(b->xq, (size_t)((t->cols / 32 + 1) * 34));
        if (grown == NULL) {
            free(m);
            return 0;
        }
        b->xq = grown;
        b->xq_bytes = (t->cols / 32 + 1) * 34;
    }
    b->matrices[b->n_matrices++] = m;
    *handle = m;
    return 1;
}

/* One output: row r of m against x (f32), or against xq (q8_0 blocks) for quantised m. */
static float ref_dot(const ref_matrix *m, int64_t r, const float *x, const uint8_t *xq)
{
    const uint8_t *w = m->data + r * m->row_bytes;
    float sum = 0.0f;
    int64_t i, block;
    int j;
    switch (m->type) {
    case GEMINI_TYPE_F32: {
        const float *wf = (const float *)(const void *)w;
        for (i = 0; i < m->cols; i++) sum += wf[i] * x[i];
        break;
    }
    case GEMINI_TYPE_F16:
        for (i = 0; i < m->cols; i++) sum += gemini_f16_to_f32(read_u16(w + 2 * i)) * x[i];
        break;
    case GEMINI_TYPE_BF16:
        for (i = 0; i < m->cols; i++) sum += gemini_bf16_to_f32(read_u16(w + 2 * i)) * x[i];
        break;
    case GEMINI_TYPE_Q8_0:
        for (block = 0; block < m->cols / 32; block++, w += 34, xq += 34) {
            int32_t isum = 0;
            for (j = 0; j < 32; j++) isum += (int8_t)w[2 + j] * (int8_t)xq[2 + j];
            sum += gemini_f16_to_f32(read_u16(w)) * gemini_f16_to_f32(read_u16(xq)) *
                   (float)isum;
        }
        break;
    case GEMINI_TYPE_Q4_0:
        for (block = 0; block < m->cols / 32; block++, w += 18, xq += 34) {
            int32_t isum = 0;
            for (j = 0; j < 16; j++) {
                isum += ((w[2 + j] & 0x0f) - 8) * (int8_t)xq[2 + j];
                isum += ((w[2 + j] >> 4) - 8) * (int8_t)xq[2 + j + 16];
            }
            sum += gemini_f16_to_f32(read_u16(w)) * gemini_f16_to_f32(read_u16(xq)) *
                   (float)isum;
        }
        break;
    default:
        break;
    }
    return sum;
}

/* Counts an op; 1 if this one is to be declined. */
static int ref_declines(ref_backend *b)
{
    int decline = b->decline_every_other && (b->ops & 1);
    b->ops++;
    b->declined += decline;
    return decline;
}

static int ref_row(ref_backend *b, const ref_matrix *m, const float *x, float *y)
{
    int64_t r;
    if (m->type == GEMINI_TYPE_Q8_0 || m->type == GEMINI_TYPE_Q4_0) {
        if (gemini_quantize_row(GEMINI_TYPE_Q8_0, x, b->xq, m->cols) != GEMINI_OK)
            return GEMINI_BACKEND_DECLINE;
    }
    for (r = 0; r < m->rows; r++) y[r] = ref_dot(m, r, x, b->xq);
    y[0] += (float)b->perturb;
    return GEMINI_BACKEND_DONE;
}

static int ref_matvec(void *user, void *handle, const float *x, float *y)
{
    ref_backend *b = (ref_backend *)user;
    if (ref_declines(b)) return GEMINI_BACKEND_DECLINE;
    b->matvecs++;
    return ref_row(b, (const ref_matrix *)handle, x, y);
}

static int ref_matmul(void *user, void *handle, const float *x, int64_t x_stride,
                      int32_t n_tokens, float *y, int64_t y_stride)
{
    ref_backend *b = (ref_backend *)user;
    int32_t t;
    if (ref_declines(b)) return GEMINI_BACKEND_DECLINE;
    b->matmuls++;
    for (t = 0; t < n_tokens; t++)
        if (ref_row(b, (const ref_matrix *)handle, x + t * x_stride, y + t * y_stride) !=
            GEMINI_BACKEND_DONE)
            return GEMINI_BACKEND_DECLINE;
    return GEMINI_BACKEND_DONE;
}

/* The hook's attention contract, with the CPU's scalar arithmetic in its order. */
static int ref_attention(void *user, const gemini_backend_attention *s)
{
    ref_backend *b = (ref_backend *)user;
    int64_t kv_dim = (int64_t)s->n_kv_heads * s->head_dim, q_dim = (int64_t)s->n_heads *
                                                                     s->head_dim;
    int32_t group = s->n_heads / s->n_kv_heads, t, h, j, i;
    float *k_store, *v_store;
    if (s->layer < 0 || s->layer >= b->n_layers) return GEMINI_BACKEND_DECLINE;
    if (b->k_store[s->layer] == NULL) {
        b->k_store[s->layer] = (float *)malloc(sizeof(float) * (size_t)(s->n_ctx * kv_dim));
        b->v_store[s->layer] = (float *)malloc(sizeof(float) * (size_t)(s->n_ctx * kv_dim));
        if (b->scores == NULL) b->scores = (float *)malloc(sizeof(float) * (size_t)s->n_ctx);
    }
    k_store = b->k_store[s->layer];
    v_store = b->v_store[s->layer];
    if (k_store == NULL || v_store == NULL || b->scores == NULL) return GEMINI_BACKEND_DECLINE;

    /* keys and values are stored even when this op is then declined */
    memcpy(k_store + (int64_t)s->first_position * kv_dim, s->k,
           sizeof(float) * (size_t)(s->n_tokens * kv_dim));
    memcpy(v_store + (int64_t)s->first_position * kv_dim, s->v,
           sizeof(float) * (size_t)(s->n_tokens * kv_dim));
    if (ref_declines(b)) return GEMINI_BACKEND_DECLINE;
    b->attentions++;

    for (t = 0; t < s->n_tokens; t++) {
        int32_t position = s->first_position + t, first = 0;
        if (s->window > 0 && position - s->window + 1 > 0) first = position - s->window + 1;
        for (h = 0; h < s->n_heads; h++) {
            const float *q = s->q + t * q_dim + (int64_t)h * s->head_dim;
            float *out = s->out + t * q_dim + (int64_t)h * s->head_dim;
            int64_t head_offset = (int64_t)(h / group) * s->head_dim;
            float max_score = -INFINITY, sum = 0.0f;
            for (j = first; j <= position; j++) {
                const float *k = k_store + j * kv_dim + head_offset;
                float dot = 0.0f, score;
                for (i = 0; i < s->head_dim; i++) dot += q[i] * k[i];
                score = dot * s->query_scale;
                if (s->softcap > 0.0f) score = s->softcap * tanhf(score / s->softcap);
                b->scores[j - first] = score;
                if (score > max_score) max_score = score;
            }
            for (j = first; j <= position; j++) {
                b->scores[j - first] = expf(b->scores[j - first] - max_score);
                sum += b->scores[j - first];
            }
            for (i = 0; i < s->head_dim; i++) out[i] = 0.0f;
            for (j = first; j <= position; j++) {
                const float *v = v_store + j * kv_dim + head_offset;
                float p = b->scores[j - first] / sum;
                for (i = 0; i < s->head_dim; i++) out[i] += p * v[i];
            }
        }
    }
    s->out[0] += (float)b->perturb;
    return GEMINI_BACKEND_DONE;
}

static void ref_release(void *user)
{
    ref_backend *b = (ref_backend *)user;
    int i;
    for (i = 0; i < b->n_matrices; i++) free(b->matrices[i]);
    for (i = 0; i < b->n_layers && b->k_store != NULL; i++) {
        free(b->k_store[i]);
        free(b->v_store[i]);
    }
    free(b->matrices);
    free(b->k_store);
    free(b->v_store);
    free(b->xq);
    free(b->scores);
    b->matrices = NULL;
    b->k_store = b->v_store = NULL;
    b->xq = NULL;
    b->scores = NULL;
    b->n_matrices = b->capacity = 0;
    b->xq_bytes = 0;
    b->released++;
}

static gemini_backend ref_hook(ref_backend *b, int32_t n_layers)
{
    gemini_backend hook;
    memset(&hook, 0, sizeof hook);
    b->n_layers = n_layers;
    b->k_store = (float **)calloc((size_t)n_layers, sizeof(float *));
    b->v_store = (float **)calloc((size_t)n_layers, sizeof(float *));
    hook.name = "reference";
    hook.user_data = b;
    hook.take_tensor = ref_take;
    hook.matvec = ref_matvec;
    hook.matmul = ref_matmul;
    hook.attention = b->with_attention ? ref_attention : NULL;
    hook.release = ref_release;
    return hook;
}

/* ---- the driver ----------------------------------------------------------------------------- */

#define PROMPT 12       /* prefill tokens, in batches of N_BATCH (8 + 4: both matrix-matrix) */
#define N_BATCH 8
#define STEPS 4         /* single-token decode steps after the prompt */

/* Runs the prompt (all logits) and STEPS greedy steps on ctx; logits gets PROMPT + STEPS rows.
   The fed tokens are fixed (not the argmax) so both contexts see the same input. */
static int run_sequence(gemini_context *ctx, const gemini_model_hparams *hp, float *logits)
{
    int32_t tokens[PROMPT], i, vocab = hp->vocab_size;

    /* Whisper: a fixed made-up log-mel window first (the encoder's products go through the
       backend too) */
    if (hp->is_encoder_decoder) {
        int64_t n = (int64_t)hp->n_mels * 2 * hp->audio_ctx, j;
        float *mel = (float *)malloc(sizeof(float) * (size_t)n);
        int ok;
        if (mel == NULL) return 0;
        for (j = 0; j < n; j++) mel[j] = (float)((j * 7919) % 1000) / 1000.0f - 0.5f;
        ok = gemini_encode_mel(ctx, mel, hp->n_mels, 2 * hp->audio_ctx) == GEMINI_OK;
        free(mel);
        if (!ok) return 0;
    }
    for (i = 0; i < PROMPT; i++) tokens[i] = (int32_t)((i * 7919 + 3) % vocab);
    if (gemini_decode(ctx, tokens, PROMPT, logits, 1) != GEMINI_OK) return 0;
    for (i = 0; i < STEPS; i++) {
        int32_t token = (int32_t)((i * 104729 + 11) % vocab);
        if (gemini_decode(ctx, &token, 1, logits + (int64_t)(PROMPT + i) * vocab, 0) !=
            GEMINI_OK)
            return 0;
    }
    return 1;
}

static gemini_context_params test_params(void)
{
    gemini_context_params params = gemini_context_default_params();
    params.n_ctx = 64;
    params.n_batch = N_BATCH;
    params.n_threads = 2;
    params.log_callback = NULL;
    return params;
}

/* One variant: a backend context against the CPU logits in `expected`. With perturb, the
   backend's results are made wrong on purpose and the logits must differ: this proves they are
   used, not recomputed by the CPU. With take_half, it refuses every other matrix offered. */
static void run_variant(const char *label, const gemini_model *model, const float *expected,
                        int decline_every_other, int with_attention, int perturb, int take_half)
{
    const gemini_model_hparams *hp = gemini_model_get_hparams(model);
    int32_t vocab = hp->vocab_size, layers = hp->num_layers;
    int64_t n_logits = (int64_t)(PROMPT + STEPS) * vocab, i, differ = 0;
    /* Gemma: 7 matrices a layer and the head, each used once per step. Whisper: 10 a decoder
       layer (self and cross attention, MLP), the head, the 2 convolutions and 6 an encoder
       layer; a decoder step uses 8 a layer and the head, the encode (matmuls only) the rest
       and the cross keys and values once. */
    int whisper = hp->is_encoder_decoder;
    long products = whisper ? 10L * layers + 3 + 6L * hp->encoder_layers : 7L * layers + 1;
    long per_step = whisper ? 8L * layers + 1 : products;
    long encode_ops = whisper ? 2L + 6L * hp->encoder_layers + 2L * layers : 0;
    long batches = (PROMPT + N_BATCH - 1) / N_BATCH;
    long taken = take_half ? (products + 1) / 2 : products;
    long matrix_ops = take_half && whisper ? -1 : take_half ? taken * (batches + STEPS)
                      : per_step * (batches + STEPS) + encode_ops;
    long attention_ops = layers * (batches + STEPS);
    long all_ops = matrix_ops + (with_attention ? attention_ops : 0);
    float *logits = (float *)malloc(sizeof(float) * (size_t)n_logits), max_diff = 0.0f;
    gemini_context_params params = test_params();
    gemini_context *ctx = NULL;
    gemini_backend hook;
    ref_backend b;
    char name[256], detail[200];
    int ran;

    memset(&b, 0, sizeof b);
    b.decline_every_other = decline_every_other;
    b.with_attention = with_attention;
    b.perturb = perturb;
    b.take_every_other = take_half;
    hook = ref_hook(&b, layers);
    params.backend = &hook;
    if (logits == NULL || gemini_context_create(model, &params, &ctx) != GEMINI_OK) {
        snprintf(name, sizeof name, "%s: context with the backend", label);
        check(0, name, gemini_last_error());
        free(logits);
        return;
    }
    snprintf(name, sizeof name, take_half ? "%s: backend took the matrices it accepted"
                                          : "%s: backend took every weight matrix", label);
    snprintf(detail, sizeof detail, "%d of %ld offered", b.n_matrices, products);
    check(b.n_matrices == taken, name, detail);

    ran = run_sequence(ctx, hp, logits);
    for (i = 0; ran && i < n_logits; i++) {
        float diff = fabsf(logits[i] - expected[i]);
        if (memcmp(&logits[i], &expected[i], sizeof(float)) != 0) differ++;
        if (diff > max_diff) max_diff = diff;
    }
    snprintf(name, sizeof name, perturb ? "%s: its wrong results reach the logits"
                                        : "%s: logits equal the CPU's bit for bit", label);
    snprintf(detail, sizeof detail, "%lld of %lld differ, max |diff| %g", (long long)differ,
             (long long)n_logits, (double)max_diff);
    check(ran && (perturb ? differ > 0 : differ == 0), name, ran ? detail : gemini_last_error());

    /* who computed what: every op reached the backend; it did all or every other one */
    snprintf(name, sizeof name, "%s: ops the backend took", label);
    snprintf(detail, sizeof detail, "%ld matvec + %ld matmul + %ld attention, %ld declined, "
             "of %ld", b.matvecs, b.matmuls, b.attentions, b.declined, all_ops);
    if (matrix_ops < 0) /* which half a Whisper model's steps use: not worth a formula */
        check(b.ops > 0 && b.declined == 0 && b.ops == b.matvecs + b.matmuls + b.attentions,
              name, detail);
    else if (decline_every_other)
        check(b.ops == all_ops && b.declined == all_ops / 2 &&
              b.matvecs + b.matmuls + b.attentions == all_ops - all_ops / 2, name, detail);
    else
        check(b.ops == all_ops && b.declined == 0 &&
              b.matvecs == (take_half ? taken : per_step) * STEPS &&
              b.matmuls == (take_half ? taken : per_step) * batches + encode_ops &&
              b.attentions == (with_attention ? attention_ops : 0), name, detail);

    gemini_context_free(ctx);
    snprintf(name, sizeof name, "%s: released once at gemini_context_free", label);
    check(b.released == 1 && b.matrices == NULL, name, "");
    free(logits);
}

static void test_model(const char *path)
{
    gemini_model *model = NULL;
    gemini_context *ctx = NULL;
    gemini_context_params params = test_params();
    float *expected;
    int64_t n_logits;
    char label[96];
    FILE *file = fopen(path, "rb");
    const char *base = strrchr(path, '/');

    if (file == NULL) {
        printf("skip %s: absent (tests/test_parity.sh writes it)\n", path);
        return;
    }
    fclose(file);
    snprintf(label, sizeof label, "%s", base != NULL ? base + 1 : path);
    if (gemini_model_load(path, &model) != GEMINI_OK) {
        check(0, label, gemini_last_error());
        return;
    }
    n_logits = (int64_t)(PROMPT + STEPS) * gemini_model_vocab_size(model);
    expected = (float *)malloc(sizeof(float) * (size_t)n_logits);
    if (expected == NULL || gemini_context_create(model, &params, &ctx) != GEMINI_OK ||
        !run_sequence(ctx, gemini_model_get_hparams(model), expected)) {
        check(0, label, "the plain CPU context failed");
    } else {
        char name[256];
        run_variant(label, model, expected, 0, 0, 0, 0);
        snprintf(name, sizeof name, "%s, declining every other op", label);
        run_variant(name, model, expected, 1, 0, 0, 0);
        snprintf(name, sizeof name, "%s, taking every other matrix", label);
        run_variant(name, model, expected, 0, 0, 0, 1);
        snprintf(name, sizeof name, "%s, with attention", label);
        run_variant(name, model, expected, 0, 1, 0, 0);
        snprintf(name, sizeof name, "%s, with attention, declining every other op", label);
        run_variant(name, model, expected, 1, 1, 0, 0);
        snprintf(name, sizeof name, "%s, perturbed on purpose", label);
        run_variant(name, model, expected, 0, 1, 1, 0);
    }
    gemini_context_free(ctx);

    /* a failed gemini_context_create releases the backend too */
    {
        ref_backend b;
        gemini_backend hook;
        char name[256];
        memset(&b, 0, sizeof b);
        hook = ref_hook(&b, 1);
        params.backend = &hook;
        params.n_ctx = 0;
        ctx = NULL;
        snprintf(name, sizeof name, "%s: a refused context releases the backend once", label);
        check(gemini_context_create(model, &params, &ctx) == GEMINI_ERR_INVALID_ARGUMENT &&
              ctx == NULL && b.released == 1 && b.n_matrices == 0, name, "");
    }
    free(expected);
    gemini_model_free(model);
}

int main(int argc, char **argv)
{
    static const char *const defaults[] = {
        "tests/out/parity/gemma1-f32.gemini", "tests/out/parity/gemma2-f32.gemini",
        "tests/out/parity/gemma3-f32.gemini", "tests/out/parity/gemma3-q8_0.gemini",
        "tests/out/whisper-parity/whisper-tiny-f32.gemini"
    };
    int i;

    gemini__threads_past_cpus = 1; /* 2 threads even on a machine of 1 CPU */

    /* both contexts on the scalar kernels: the reference backend sums in their order */
    gemini__force_scalar = 1;
    if (argc > 1)
        for (i = 1; i < argc; i++) test_model(argv[i]);
    else
        for (i = 0; i < (int)(sizeof defaults / sizeof defaults[0]); i++)
            test_model(defaults[i]);
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed != 0;
}
