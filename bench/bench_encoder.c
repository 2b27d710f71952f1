/* bench_encoder - time of Whisper's audio encoder on one 30 s window (gemini_encode_mel).

   The log-mel input is a fixed pattern (the encoder's work does not depend on the values); the
   context is created once and the window encoded RUNS times; prints the best. Built with
   -DGEMINI_USE_BLAS it also prints how many products cblas_sgemm computed, so a run shows
   which path it timed.

   Usage: bench_encoder -m WHISPER.gemini [-t THREADS] [--runs N]

   Build: cc -std=c99 -O2 -Wall -Wextra -pedantic -I. bench/bench_encoder.c -o build/bench_encoder
          -lm -lpthread   (add -DGEMINI_USE_BLAS ... -lopenblas for the BLAS build) */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#define GEMINI_IMPLEMENTATION
#include "gemini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int runs = 3, run, i;
    gemini_context_params params = gemini_context_default_params();
    const gemini_model_hparams *hp;
    gemini_model *model;
    gemini_context *ctx;
    double best = 0.0;
    float *mel;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) path = argv[++i];
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) params.n_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else path = NULL, i = argc;
    }
    if (path == NULL || runs < 1) {
        fprintf(stderr, "usage: bench_encoder -m WHISPER.gemini [-t THREADS] [--runs N]\n");
        return 2;
    }
    params.log_callback = NULL;
    if (gemini_model_load(path, &model) != GEMINI_OK ||
        gemini_context_create(model, &params, &ctx) != GEMINI_OK) {
        fprintf(stderr, "bench_encoder: %s\n", gemini_last_error());
        return 1;
    }
    hp = gemini_model_get_hparams(model);
    mel = (float *)malloc(sizeof(float) * (size_t)hp->n_mels * 2 * (size_t)hp->audio_ctx);
    if (mel == NULL) return 1;
    for (i = 0; i < hp->n_mels * 2 * hp->audio_ctx; i++) mel[i] = (float)(i % 97) / 97.0f - 0.5f;

    for (run = 0; run < runs; run++) {
        double t0 = now_seconds(), seconds;
        if (gemini_encode_mel(ctx, mel, hp->n_mels, 2 * hp->audio_ctx) != GEMINI_OK) {
            fprintf(stderr, "bench_encoder: %s\n", gemini_last_error());
            return 1;
        }
        seconds = now_seconds() - t0;
        if (run == 0 || seconds < best) best = seconds;
    }
#if defined(GEMINI_USE_BLAS)
    printf("%s, %d threads: encoder %.3f s per window (best of %d), GEMINI_USE_BLAS: %lld "
           "cblas_sgemm products\n", path, (int)gemini_context_threads(ctx), best, runs,
           (long long)ctx->blas_products);
#else
    printf("%s, %d threads: encoder %.3f s per window (best of %d), no BLAS\n", path,
           (int)gemini_context_threads(ctx), best, runs);
#endif
    free(mel);
    gemini_context_free(ctx);
    gemini_model_free(model);
    return 0;
}
