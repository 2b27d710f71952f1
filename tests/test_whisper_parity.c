/* test_whisper_parity.c - our Whisper encoder and decoder against transformers' reference on the
   same tiny random weights (tests/fixtures/whisper-tiny*, made by
   tools/make_whisper_fixtures.py; reference.txt there says what each file holds).

       test_whisper_parity [--tol T] [--kv-tol-f16 T] [--kv-tol-bf16 T] FIXTURE_DIR MODEL

   FIXTURE_DIR holds reference.txt, encoder_out.f32, logits_prompt.f32 and logits_greedy.f32;
   MODEL is FIXTURE_DIR/hf converted by gemini-convert. Checks, each relative to the largest
   reference value of its tensor (default tolerance 1e-4, the figure for f32):
     - the encoder output on the recorded log-mel input;
     - the logits of every prompt position, from one batched decode;
     - the logits of 16 greedy steps decoded one token at a time, and the greedy ids;
     - a batched decode equal bit for bit to a token-by-token one, and 1 thread to 2 threads;
     - gemini_context_copy_sequence / _copy_audio: a copied context continues identically;
     - an f16 and a bf16 KV cache (gemini_context_params.kv_type, which Whisper's
       cross-attention keys and values follow too) against the f32 cache: the logits of the
       whole sequence within --kv-tol-f16 / --kv-tol-bf16 (relative to the largest f32-cache
       logit; defaults 2e-3 and 1e-2), batched (1 thread) equal to token by token (2 threads)
       and 2 threads to 1 bit for bit, greedy ids equal to the reference's up to the first
       step whose reference top-1 lead is under 2 x the tolerance x the largest logit, the
       memory size smaller by exactly half of the f32 caches, and copies between contexts of
       the type (but not across types).
   Built with -DGEMINI_USE_BLAS (make test-blas), the encoder's and a batch's f32 products go
   through cblas_sgemm, whose sums differ from ours in the last bits: a batch against single
   tokens is then compared within 1e-5 of the largest logit (with a 16-bit KV cache, within
   that cache's tolerance: a last-bit difference can round a key to the next 16-bit value),
   said so in the output, not bit for bit.
   Prints "N passed, M failed" and exits nonzero on any failure. */
#define GEMINI_IMPLEMENTATION
#include "gemini.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IDS 64

static int tests_passed = 0, tests_failed = 0;

static void check(int ok, const char *format, ...)
{
    va_list args;
    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    printf("\n");
    if (ok) tests_passed++;
    else tests_failed++;
}

/* The fixture's reference.txt: the input line and the id lists. */
typedef struct reference {
    char input[512];
    int frames;
    float floor_value;
    int32_t prompt[MAX_IDS], greedy[MAX_IDS];
    int n_prompt, n_greedy;
} reference;

static int read_ids(const char *line, const char *key, int32_t *ids, int *n)
{
    size_t key_length = strlen(key);
    const char *p = line + key_length;
    if (strncmp(line, key, key_length) != 0 || *p != ' ') return 0;
    *n = 0;
    while (*n < MAX_IDS) {
        char *end;
        long value = strtol(p, &end, 10);
        if (end == p) break;
        ids[(*n)++] = (int32_t)value;
        p = end;
    }
    return 1;
}

static int read_reference(const char *dir, reference *ref)
{
    char path[1024], line[4096];
    FILE *file;
    memset(ref, 0, sizeof *ref);
    snprintf(path, sizeof path, "%s/reference.txt", dir);
    file = fopen(path, "r");
    if (file == NULL) return 0;
    while (fgets(line, sizeof line, file)) {
        if (strncmp(line, "input ", 6) == 0)
            sscanf(line, "input %511s frames %d floor %f", ref->input, &ref->frames,
                   &ref->floor_value);
        read_ids(line, "prompt", ref->prompt, &ref->n_prompt);
        read_ids(line, "greedy", ref->greedy, &ref->n_greedy);
    }
    fclose(file);
    return ref->frames > 0 && ref->n_prompt > 0 && ref->n_greedy > 0;
}

/* n floats from a raw little-endian file, or NULL when it is missing or shorter. */
static float *read_floats(const char *dir, const char *name, size_t n)
{
    char path[1024];
    float *values = (float *)malloc(n * sizeof(float));
    FILE *file;
    snprintf(path, sizeof path, "%s%s%s", dir, dir[0] ? "/" : "", name);
    file = fopen(path, "rb");
    if (values == NULL || file == NULL || fread(values, sizeof(float), n, file) != n) {
        if (file) fclose(file);
        free(values);
        return NULL;
    }
    fclose(file);
    return values;
}

/* max |a - b| / max |b| */
static double relative_error(const float *a, const float *b, size_t n)
{
    double max_error = 0.0, max_reference = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        double error = fabs((double)a[i] - b[i]);
        if (error > max_error || error != error) max_error = error;
        if (fabs(b[i]) > max_reference) max_reference = fabs(b[i]);
    }
    return max_reference > 0.0 ? max_error / max_reference : max_error;
}

static int32_t argmax(const float *row, int32_t n)
{
    int32_t best = 0, i;
    for (i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

static gemini_context *new_context_kv(const gemini_model *model, int n_threads,
                                      gemini_type kv_type)
{
    gemini_context_params params = gemini_context_default_params();
    gemini_context *ctx = NULL;
    params.n_threads = n_threads;
    params.kv_type = kv_type;
    params.log_callback = NULL;
    if (gemini_context_create(model, &params, &ctx) != GEMINI_OK)
        printf("context: %s\n", gemini_last_error());
    return ctx;
}

static gemini_context *new_context(const gemini_model *model, int n_threads)
{
    return new_context_kv(model, n_threads, GEMINI_TYPE_F32);
}

/* Equal within blas_tol of the largest value under GEMINI_USE_BLAS (see the top), else bit for
   bit; how says which. */
static int same_logits(const float *a, const float *b, size_t n, double blas_tol, char *how,
                       size_t how_size)
{
#ifdef GEMINI_USE_BLAS
    double error = relative_error(a, b, n);
    snprintf(how, how_size, "BLAS build: rel diff %.2g, within %.2g, not bit for bit", error,
             blas_tol);
    return error <= blas_tol;
#else
    (void)blas_tol;
    snprintf(how, how_size, "bit for bit");
    return memcmp(a, b, n * sizeof(float)) == 0;
#endif
}

/* A fixture's input and expectations, for check_kv_type. */
typedef struct kv_case {
    const gemini_model *model;
    const float *mel;
    int n_mels, vocab, n_ids;
    const int32_t *ids;             /* prompt then the reference's greedy ids */
    const reference *ref;
    const float *f32_logits;        /* (n_ids, vocab) batched, f32 cache */
    const float *greedy_ref;        /* (n_greedy, vocab) the reference's step logits */
} kv_case;

/* The checks of an f16 or bf16 KV cache against the f32 one (see the top). */
static void check_kv_type(const kv_case *c, gemini_type kv_type, double tol)
{
    const gemini_model_hparams *hp = gemini_model_get_hparams(c->model);
    const char *name = gemini_type_name(kv_type);
    char how[128];
    size_t cells = (size_t)c->n_ids * (size_t)c->vocab, i;
    float *batch = (float *)malloc(sizeof(float) * cells);
    float *stepwise = (float *)malloc(sizeof(float) * cells);
    float *threaded = (float *)malloc(sizeof(float) * cells);
    float *row = (float *)malloc(sizeof(float) * (size_t)c->vocab), largest = 0.0f;
    gemini_context *one = new_context_kv(c->model, 1, kv_type);
    gemini_context *two = new_context_kv(c->model, 2, kv_type);
    gemini_context *copy = new_context_kv(c->model, 2, kv_type);
    gemini_context *f32 = new_context(c->model, 2);
    gemini_context_params params = gemini_context_default_params();
    uint64_t bytes_f32 = 0, bytes_kv = 0, expected;
    int32_t token;
    int step, compared = 0, same = 1, ok;
    double error;

    if (!batch || !stepwise || !threaded || !row || !one || !two || !copy || !f32) {
        check(0, "%s KV cache: contexts and buffers", name);
        goto done;
    }
    for (i = 0; i < cells; i++)
        if (fabsf(c->f32_logits[i]) > largest) largest = fabsf(c->f32_logits[i]);

    /* batched on 1 thread, against the f32 cache */
    ok = gemini_encode_mel(one, c->mel, c->n_mels, 3000) == GEMINI_OK &&
         gemini_decode(one, c->ids, c->n_ids, batch, 1) == GEMINI_OK;
    error = ok ? relative_error(batch, c->f32_logits, cells) : INFINITY;
    check(error <= tol, "%s KV cache: logits of %d positions against the f32 cache: rel err "
          "%.2g (tol %g)", name, c->n_ids, error, tol);

    /* token by token and batched on 2 threads */
    ok = gemini_encode_mel(two, c->mel, c->n_mels, 3000) == GEMINI_OK;
    for (step = 0; ok && step < c->n_ids; step++)
        ok = gemini_decode(two, &c->ids[step], 1, stepwise + (size_t)step * c->vocab, 1) ==
             GEMINI_OK;
    /* under BLAS a last-bit difference in a key or value can round to the next 16-bit value,
       which moves the logits by up to the cache's own tolerance */
    ok = ok && same_logits(stepwise, batch, cells, tol, how, sizeof how);
    check(ok, "%s KV cache: batched on 1 thread = token by token on 2 threads, %s", name, how);
    ok = gemini_encode_mel(two, c->mel, c->n_mels, 3000) == GEMINI_OK &&
         gemini_decode(two, c->ids, c->n_ids, threaded, 1) == GEMINI_OK;
    check(ok && memcmp(threaded, batch, sizeof(float) * cells) == 0,
          "%s KV cache: batched on 2 threads = on 1 thread, bit for bit", name);

    /* free-running greedy ids against the reference's, while its lead is out of reach */
    ok = gemini_encode_mel(one, c->mel, c->n_mels, 3000) == GEMINI_OK &&
         gemini_decode(one, c->ref->prompt, c->ref->n_prompt, row, 0) == GEMINI_OK;
    for (step = 0; ok && step < c->ref->n_greedy; step++) {
        const float *expected_row = c->greedy_ref + (size_t)step * c->vocab;
        int32_t best = argmax(expected_row, c->vocab), second = best == 0 ? 1 : 0, j;
        for (j = 0; j < c->vocab; j++)
            if (j != best && expected_row[j] > expected_row[second]) second = j;
        if (expected_row[best] - expected_row[second] <= 2.0 * tol * largest) break;
        token = argmax(row, c->vocab);
        compared++;
        if (token != c->ref->greedy[step]) {
            same = 0;
            break;
        }
        ok = gemini_decode(one, &token, 1, row, 0) == GEMINI_OK;
    }
    check(ok && same, "%s KV cache: greedy ids equal the reference's for the %d of %d steps "
          "whose lead exceeds %.3g", name, compared, c->ref->n_greedy, 2.0 * tol * largest);

    /* copies: within the type, not across types */
    gemini_context_reset(one);
    ok = gemini_decode(one, c->ids, c->ref->n_prompt, NULL, 0) == GEMINI_OK &&
         gemini_context_copy_audio(copy, one) == GEMINI_OK &&
         gemini_context_copy_sequence(copy, one) == GEMINI_OK &&
         gemini_decode(one, &c->ids[c->ref->n_prompt], 1, row, 0) == GEMINI_OK &&
         gemini_decode(copy, &c->ids[c->ref->n_prompt], 1, stepwise, 0) == GEMINI_OK;
    check(ok && memcmp(row, stepwise, sizeof(float) * (size_t)c->vocab) == 0,
          "%s KV cache: a copied context (audio and sequence) continues identically", name);
    check(gemini_context_copy_sequence(f32, one) == GEMINI_ERR_INVALID_ARGUMENT &&
              gemini_context_copy_audio(one, f32) == GEMINI_ERR_INVALID_ARGUMENT,
          "%s KV cache: copies to or from an f32-cache context are refused", name);

    /* memory: the f32 caches (self-attention: n_ctx capped at max_position; cross-attention:
       audio_ctx rows) halved */
    params.log_callback = NULL;
    gemini_context_memory_size(c->model, &params, &bytes_f32);
    params.kv_type = kv_type;
    gemini_context_memory_size(c->model, &params, &bytes_kv);
    expected = (uint64_t)hp->num_layers *
               (2u * (uint64_t)hp->max_position * (uint64_t)hp->num_kv_heads * hp->head_dim +
                2u * (uint64_t)hp->audio_ctx * (uint64_t)hp->hidden_size) * 2u;
    check(bytes_f32 - bytes_kv == expected, "%s KV cache: memory size %llu, %llu less than f32's "
          "(expected %llu)", name, (unsigned long long)bytes_kv,
          (unsigned long long)(bytes_f32 - bytes_kv), (unsigned long long)expected);

done:
    gemini_context_free(one);
    gemini_context_free(two);
    gemini_context_free(copy);
    gemini_context_free(f32);
    free(batch);
    free(stepwise);
    free(threaded);
    free(row);
}

int main(int argc, char **argv)
{
    const char *dir, *model_path;
    double tol = 1e-4, kv_tol_f16 = 2e-3, kv_tol_bf16 = 1e-2, error;
    int argi = 1, n_mels, vocab, d, step;
    int32_t n_frames = 0, dim = 0, ids[MAX_IDS * 2];
    float *mel, *input, *enc_ref, *prompt_ref, *greedy_ref, *logits, *row, *row2;
    gemini_context *ctx, *other, *copy;
    gemini_model *model;
    const float *encoded;
    reference ref;
    size_t m, t;

    gemini__threads_past_cpus = 1; /* 2 threads must equal 1 even on a machine of 1 CPU */
    for (; argi + 1 < argc && argv[argi][0] == '-'; argi += 2) {
        if (strcmp(argv[argi], "--tol") == 0) tol = atof(argv[argi + 1]);
        else if (strcmp(argv[argi], "--kv-tol-f16") == 0) kv_tol_f16 = atof(argv[argi + 1]);
        else if (strcmp(argv[argi], "--kv-tol-bf16") == 0) kv_tol_bf16 = atof(argv[argi + 1]);
        else break;
    }
    if (argc - argi < 2) {
        fprintf(stderr, "usage: test_whisper_parity [--tol T] [--kv-tol-f16 T] "
                        "[--kv-tol-bf16 T] FIXTURE_DIR MODEL.gemini\n");
        return 2;
    }
    dir = argv[argi];
    model_path = argv[argi + 1];
    if (!read_reference(dir, &ref)) {
        check(0, "%s/reference.txt readable", dir);
        printf("%d passed, %d failed\n", tests_passed, tests_failed);
        return 1;
    }
    if (gemini_model_load(model_path, &model) != GEMINI_OK) {
        check(0, "load %s: %s", model_path, gemini_last_error());
        printf("%d passed, %d failed\n", tests_passed, tests_failed);
        return 1;
    }
    n_mels = gemini_model_get_hparams(model)->n_mels;
    vocab = gemini_model_vocab_size(model);
    d = gemini_model_get_hparams(model)->hidden_size;

    /* the input: the recorded frames, then the floor up to 3000 frames */
    input = read_floats("", ref.input, (size_t)n_mels * (size_t)ref.frames);
    mel = (float *)malloc(sizeof(float) * (size_t)n_mels * 3000);
    enc_ref = read_floats(dir, "encoder_out.f32", 1500 * (size_t)d);
    prompt_ref = read_floats(dir, "logits_prompt.f32", (size_t)ref.n_prompt * (size_t)vocab);
    greedy_ref = read_floats(dir, "logits_greedy.f32", (size_t)ref.n_greedy * (size_t)vocab);
    logits = (float *)malloc(sizeof(float) * (size_t)(ref.n_prompt + ref.n_greedy) * vocab);
    row2 = (float *)malloc(sizeof(float) * (size_t)vocab);
    if (!input || !mel || !enc_ref || !prompt_ref || !greedy_ref || !logits || !row2) {
        check(0, "fixture files of %s present and of the expected sizes", dir);
        printf("%d passed, %d failed\n", tests_passed, tests_failed);
        return 1;
    }
    for (m = 0; m < (size_t)n_mels; m++)
        for (t = 0; t < 3000; t++)
            mel[m * 3000 + t] = t < (size_t)ref.frames ? input[m * ref.frames + t]
                                                       : ref.floor_value;

    /* encoder */
    ctx = new_context(model, 2);
    other = new_context(model, 1);
    copy = new_context(model, 2);
    if (!ctx || !other || !copy) return 1;
    check(gemini_decode(ctx, ref.prompt, 1, NULL, 0) == GEMINI_ERR_INVALID_ARGUMENT,
          "decoding before any audio is encoded is refused");
    check(gemini_encode_mel(ctx, mel, n_mels, 2999) == GEMINI_ERR_INVALID_ARGUMENT,
          "a window of 2999 frames is refused");
    check(gemini_encode_mel(ctx, mel, n_mels, 3000) == GEMINI_OK, "encode %d x 3000 log-mel "
          "values", n_mels);
    encoded = gemini_encoder_output(ctx, &n_frames, &dim);
    check(encoded != NULL && n_frames == 1500 && dim == d, "encoder output is 1500 x %d", d);
    error = encoded ? relative_error(encoded, enc_ref, 1500 * (size_t)d) : 1.0;
    check(error <= tol, "encoder output: rel err %.2g (tol %g)", error, tol);

    /* the prompt in one batch, every position's logits */
    gemini_decode(ctx, ref.prompt, ref.n_prompt, logits, 1);
    error = relative_error(logits, prompt_ref, (size_t)ref.n_prompt * vocab);
    check(error <= tol, "prompt logits (%d positions, batched): rel err %.2g (tol %g)",
          ref.n_prompt, error, tol);

    /* greedy steps, one token at a time; the reference's row s follows prompt + greedy[:s] */
    row = logits + (size_t)(ref.n_prompt - 1) * vocab;
    memcpy(ids, ref.prompt, sizeof(int32_t) * (size_t)ref.n_prompt);
    {
        double worst = 0.0;
        int same_ids = 1;
        for (step = 0; step < ref.n_greedy; step++) {
            error = relative_error(row, greedy_ref + (size_t)step * vocab, (size_t)vocab);
            if (error > worst) worst = error;
            if (argmax(row, vocab) != ref.greedy[step]) same_ids = 0;
            ids[ref.n_prompt + step] = ref.greedy[step];
            gemini_decode(ctx, &ref.greedy[step], 1, row, 0);
        }
        check(worst <= tol, "greedy step logits (%d steps, one token each): rel err %.2g "
              "(tol %g)", ref.n_greedy, worst, tol);
        check(same_ids, "greedy ids identical for %d tokens", ref.n_greedy);
    }

    /* the whole sequence in one batch on a 1-thread context = token by token on 2 threads */
    memcpy(row2, row, sizeof(float) * (size_t)vocab);
    gemini_encode_mel(other, mel, n_mels, 3000);
    gemini_decode(other, ids, ref.n_prompt + ref.n_greedy, logits, 1);
    {
        char how[128];
        int same = same_logits(logits + (size_t)(ref.n_prompt + ref.n_greedy - 1) * vocab, row2,
                               (size_t)vocab, 1e-5, how, sizeof how);
        check(same, "batched on 1 thread = token by token on 2 threads, %s", how);
    }

    /* the 16-bit KV caches against the f32 one, on the same sequence */
    {
        kv_case c;
        float *f32_logits = (float *)malloc(sizeof(float) * (size_t)(ref.n_prompt +
                                                                     ref.n_greedy) * vocab);
        if (f32_logits != NULL) {
            memcpy(f32_logits, logits, sizeof(float) * (size_t)(ref.n_prompt + ref.n_greedy) *
                                           vocab);
            c.model = model;
            c.mel = mel;
            c.n_mels = n_mels;
            c.vocab = vocab;
            c.ids = ids;
            c.n_ids = ref.n_prompt + ref.n_greedy;
            c.ref = &ref;
            c.f32_logits = f32_logits;
            c.greedy_ref = greedy_ref;
            check_kv_type(&c, GEMINI_TYPE_F16, kv_tol_f16);
            check_kv_type(&c, GEMINI_TYPE_BF16, kv_tol_bf16);
        }
        free(f32_logits);
    }

    /* a copied state continues as the original */
    row = logits;
    gemini_context_reset(ctx);
    gemini_decode(ctx, ids, ref.n_prompt, NULL, 0);
    check(gemini_context_copy_audio(copy, ctx) == GEMINI_OK &&
              gemini_context_copy_sequence(copy, ctx) == GEMINI_OK,
          "copy the audio and the sequence to another context");
    check(gemini_context_position(copy) == ref.n_prompt, "the copy is at position %d",
          ref.n_prompt);
    gemini_decode(ctx, &ref.greedy[0], 1, row, 0);
    gemini_decode(copy, &ref.greedy[0], 1, row2, 0);
    check(memcmp(row, row2, sizeof(float) * (size_t)vocab) == 0,
          "the copy's next logits equal the original's");
    gemini_context_free(other);
    other = new_context(model, 1);
    check(gemini_context_copy_audio(copy, other) == GEMINI_ERR_INVALID_ARGUMENT,
          "copying from a context without audio is refused");

    gemini_context_free(ctx);
    gemini_context_free(other);
    gemini_context_free(copy);
    gemini_model_free(model);
    free(input);
    free(mel);
    free(enc_ref);
    free(prompt_ref);
    free(greedy_ref);
    free(logits);
    free(row2);
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed ? 1 : 0;
}
