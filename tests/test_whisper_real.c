/* test_whisper_real.c - the real Whisper base weights against transformers on them
   (tests/fixtures/whisper-base/reference.txt, made by tools/make_whisper_reference.py):

       test_whisper_real MODEL.gemini CLIP.wav REFERENCE.txt

   MODEL is models/whisper-base-f16.gemini (the same float16 weights the reference widened to
   float32), CLIP the first sentence of tests/whisper/make_clips.sh at 16 kHz. Checks the
   log-mel window (gemini_audio.h) against the reference's statistics and one frame, the
   encoder output's statistics and five rows, the top-5 logits of the 4 prompt positions and
   of 10 greedy steps (values within TOL of the step's largest logit, ids equal), and the
   greedy ids. Prints "N passed, M failed". */
#define GEMINI_IMPLEMENTATION
#define GEMINI_AUDIO_IMPLEMENTATION
#include "gemini.h"
#include "gemini_audio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4 /* relative to the largest value of what is compared */

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

/* Reads up to max numbers after `prefix` on a line of the reference; returns how many. Pairs
   "id:value" give id then value. */
static int numbers_after(const char *line, const char *prefix, double *out, int max)
{
    const char *p;
    int n = 0;
    if (strncmp(line, prefix, strlen(prefix)) != 0) return 0;
    p = line + strlen(prefix);
    while (n < max) {
        char *end;
        double value;
        while (*p == ' ' || *p == ':') p++;
        value = strtod(p, &end);
        if (end == p) break;
        out[n++] = value;
        p = end;
    }
    return n;
}

static int32_t best_allowed(const float *row, int32_t n, const int32_t *blocked, int n_blocked)
{
    int32_t best = -1, i;
    int b;
    for (i = 0; i < n; i++) {
        int skip = 0;
        for (b = 0; b < n_blocked; b++) skip |= blocked[b] == i;
        if (!skip && (best < 0 || row[i] > row[best])) best = i;
    }
    return best;
}

/* The row's 5 reference (id, value) pairs against ours: ids in order, values within TOL of
   the row's largest reference logit. */
static void compare_top5(const float *row, const double *pairs, const char *what)
{
    double scale = fabs(pairs[1]), worst = 0.0;
    int k, ids_ok = 1;
    for (k = 0; k < 5; k++) {
        int32_t id = (int32_t)pairs[2 * k];
        double error = fabs((double)row[id] - pairs[2 * k + 1]) / scale;
        if (error > worst) worst = error;
        if (k > 0 && row[id] > row[(int32_t)pairs[2 * k - 2]]) ids_ok = 0;
    }
    check(worst <= TOL && ids_ok, "%s: top-5 logits within %.2g of the largest (tol %g), same "
          "order", what, worst, TOL);
}

int main(int argc, char **argv)
{
    static const int32_t rows_wanted[5] = {0, 1, 100, 750, 1499};
    char line[4096];
    double values[64], mel_stats[3] = {0, 0, 0}, enc_stats[3] = {0, 0, 0};
    double enc_rows[5][8], mel_frame[8], greedy_ref[16], top[16][10];
    int32_t prompt[8], n_prompt = 0, n_greedy = 0, n_top = 0, i, step;
    int32_t suppress[128], n_suppress = 0, nf = 0, dim = 0;
    float *mel, *logits;
    const float *encoded;
    gemini_model *model;
    gemini_context *ctx;
    gemini_audio_mel *mel_maker;
    gemini_audio audio;
    gemini_context_params params;
    int64_t vocab;
    FILE *file;
    double sum = 0.0, sum_squares = 0.0, max_abs = 0.0, worst;

    if (argc != 4) {
        fprintf(stderr, "usage: test_whisper_real MODEL.gemini CLIP.wav REFERENCE.txt\n");
        return 2;
    }
    file = fopen(argv[3], "r");
    if (file == NULL) return 2;
    memset(enc_rows, 0, sizeof enc_rows);
    memset(mel_frame, 0, sizeof mel_frame);
    while (fgets(line, sizeof line, file)) {
        char key[32];
        if (strncmp(line, "mel frames", 10) == 0)
            sscanf(line, "mel frames %*d mean %lf max %lf min %lf", &mel_stats[0], &mel_stats[1],
                   &mel_stats[2]);
        numbers_after(line, "mel frame100 bins0-7", mel_frame, 8);
        if (strncmp(line, "encoder mean", 12) == 0)
            sscanf(line, "encoder mean %lf max_abs %lf std %lf", &enc_stats[0], &enc_stats[1],
                   &enc_stats[2]);
        for (i = 0; i < 5; i++) {
            snprintf(key, sizeof key, "encoder row%d ", (int)rows_wanted[i]);
            numbers_after(line, key, enc_rows[i], 8);
        }
        if (strncmp(line, "prompt ", 7) == 0) {
            n_prompt = numbers_after(line, "prompt", values, 8);
            for (i = 0; i < n_prompt; i++) prompt[i] = (int32_t)values[i];
        }
        if (strncmp(line, "pos ", 4) == 0 && n_top < 16) {
            const char *t = strstr(line, " top ");
            if (t && numbers_after(t, " top", top[n_top], 10) == 10) n_top++;
        }
        if (strncmp(line, "step ", 5) == 0 && n_top < 16) {
            const char *t = strstr(line, " top ");
            if (t && numbers_after(t, " top", top[n_top], 10) == 10) n_top++;
        }
        if (strncmp(line, "greedy ", 7) == 0) n_greedy = numbers_after(line, "greedy", greedy_ref,
                                                                        16);
    }
    fclose(file);
    check(n_prompt == 4 && n_top == 4 + n_greedy && n_greedy == 10 && mel_stats[1] != 0.0,
          "reference read: %d prompt ids, %d greedy, %d top-5 rows", n_prompt, n_greedy, n_top);

    /* the log-mel window */
    if (gemini_audio_load_wav(argv[2], &audio) != GEMINI_OK ||
        gemini_audio_resample_to(&audio, 16000) != GEMINI_OK ||
        gemini_audio_mel_create(80, &mel_maker) != GEMINI_OK) {
        check(0, "read %s: %s", argv[2], gemini_last_error());
        printf("%d passed, %d failed\n", tests_passed, tests_failed);
        return 1;
    }
    mel = (float *)malloc(sizeof(float) * 80 * 3000);
    gemini_audio_log_mel_30s(mel_maker, audio.samples, audio.n_samples, mel);
    for (i = 0; i < 80 * 3000; i++) sum += mel[i];
    worst = 0.0;
    for (i = 0; i < 8; i++) {
        double error = fabs((double)mel[i * 3000 + 100] - mel_frame[i]);
        if (error > worst) worst = error;
    }
    check(fabs(sum / (80 * 3000) - mel_stats[0]) < 1e-5 && worst < 1e-5,
          "log-mel window: mean %.6f (reference %.6f), frame 100 within %.2g", sum / 240000,
          mel_stats[0], worst);

    /* the encoder */
    if (gemini_model_load(argv[1], &model) != GEMINI_OK) {
        check(0, "load %s: %s", argv[1], gemini_last_error());
        printf("%d passed, %d failed\n", tests_passed, tests_failed);
        return 1;
    }
    params = gemini_context_default_params();
    params.log_callback = NULL;
    if (gemini_context_create(model, &params, &ctx) != GEMINI_OK ||
        gemini_encode_mel(ctx, mel, 80, 3000) != GEMINI_OK) {
        check(0, "encode: %s", gemini_last_error());
        printf("%d passed, %d failed\n", tests_passed, tests_failed);
        return 1;
    }
    encoded = gemini_encoder_output(ctx, &nf, &dim);
    sum = 0.0;
    for (i = 0; i < nf * dim; i++) {
        sum += encoded[i];
        sum_squares += (double)encoded[i] * encoded[i];
        if (fabs(encoded[i]) > max_abs) max_abs = fabs(encoded[i]);
    }
    check(fabs(max_abs - enc_stats[1]) <= TOL * enc_stats[1] &&
              fabs(sum / (nf * dim) - enc_stats[0]) <= TOL * enc_stats[1],
          "encoder output: max |x| %.6f (reference %.6f), mean %.6f (%.6f)", max_abs,
          enc_stats[1], sum / (nf * dim), enc_stats[0]);
    worst = 0.0;
    for (i = 0; i < 5; i++) {
        int k;
        for (k = 0; k < 8; k++) {
            double error = fabs((double)encoded[rows_wanted[i] * dim + k] - enc_rows[i][k]);
            if (error > worst) worst = error;
        }
    }
    check(worst <= TOL * enc_stats[1], "encoder rows 0, 1, 100, 750, 1499: within %.2g of the "
          "largest value (tol %g)", worst / enc_stats[1], TOL);

    /* the prompt's logits, then greedy steps with the reference's suppression */
    vocab = gemini_model_vocab_size(model);
    logits = (float *)malloc(sizeof(float) * (size_t)vocab * 4);
    {
        gemini_meta_info info;
        if (gemini_model_meta_find(model, "whisper.suppress_tokens", &info) == GEMINI_OK &&
            info.count <= 120) {
            const uint8_t *p = (const uint8_t *)info.value;
            for (i = 0; i < (int32_t)info.count; i++)
                suppress[n_suppress++] = (int32_t)((uint32_t)p[4 * i] |
                                                   ((uint32_t)p[4 * i + 1] << 8) |
                                                   ((uint32_t)p[4 * i + 2] << 16) |
                                                   ((uint32_t)p[4 * i + 3] << 24));
        }
    }
    check(n_suppress > 50, "the file lists %d tokens to suppress", n_suppress);
    gemini_decode(ctx, prompt, n_prompt, logits, 1);
    for (i = 0; i < n_prompt; i++) {
        char what[64];
        snprintf(what, sizeof what, "prompt position %d", (int)i);
        compare_top5(logits + (size_t)i * vocab, top[i], what);
    }
    {
        int32_t id, row_blocked[130];
        int same = 1;
        float *row = logits + (size_t)(n_prompt - 1) * vocab;
        memcpy(logits, row, sizeof(float) * (size_t)vocab);
        row = logits;
        for (step = 0; step < n_greedy; step++) {
            char what[64];
            int n_blocked = n_suppress;
            memcpy(row_blocked, suppress, sizeof(int32_t) * (size_t)n_suppress);
            if (step == 0) {
                row_blocked[n_blocked++] = 220;
                row_blocked[n_blocked++] = 50257;
            }
            snprintf(what, sizeof what, "greedy step %d", (int)step);
            compare_top5(row, top[n_prompt + step], what);
            id = best_allowed(row, (int32_t)vocab, row_blocked, n_blocked);
            if (id != (int32_t)greedy_ref[step]) same = 0;
            gemini_decode(ctx, &id, 1, row, 0);
        }
        check(same, "greedy ids equal the reference's for %d steps", n_greedy);
    }

    free(mel);
    free(logits);
    gemini_audio_free(&audio);
    gemini_audio_mel_free(mel_maker);
    gemini_context_free(ctx);
    gemini_model_free(model);
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed ? 1 : 0;
}
