/* Checks on the real Gemma 3 270M checkpoint (made by `make models`).

   Usage: test_real MODEL_Q8_0.gemini [MODEL_F32.gemini]

   - the model loads and its tensor checksums hold;
   - greedy continuations name Paris where the transformers reference on the same weights does:
     after "The capital of France is the city of" and after "Question: What is the capital of
     France?\nAnswer:". (After plain "The capital of France is" the reference itself continues
     " the capital of the country of France..." with " Paris" third; test_real_reference checks
     that we follow it token for token, see tests/fixtures/gemma3-270m/README.md.)
   - a batched prefill gives the same logits as token-by-token decoding (within 1e-4 of the
     largest logit: the two paths sum in different orders);
   - 1 and 2 threads give identical logits;
   - with the f32 file (exact values of the GGUF weights): the q8_0 file keeps the argmax of
     every prompt position whose lead is not a near-tie, and its error relative to the largest
     logit is reported and held under 0.1;
   - with the f32 file: an f16 and a bf16 KV cache (gemini_context_params.kv_type) against the
     f32 cache over the prompt and 24 greedy steps on the f32 cache's path: every step's logits
     within 2e-3 (f16) and 1e-2 (bf16) of the largest logit (measured: 2.8e-4 and 3.2e-3), and
     the same argmax wherever the f32 cache's lead exceeds twice that tolerance. (With the q8_0
     file the caches differ by far more, 2.8% and 4.2% measured: a rounded key moves an
     activation across a q8_0 rounding step, which re-draws the activation quantisation noise
     that also separates the q8_0 file from the f32 one by 4.4%.)
   Prints one line per check and ends with "N passed, M failed". */
#define GEMINI_IMPLEMENTATION
#include "gemini.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

static void check(int ok, const char *what, const char *detail)
{
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what, detail[0] ? ": " : "", detail);
    if (ok)
        passed++;
    else
        failed++;
}

static int argmax(const float *row, int n)
{
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (row[i] > row[best])
            best = i;
    return best;
}

static gemini_context *new_context_kv(const gemini_model *model, int n_batch, int n_threads,
                                      gemini_type kv_type)
{
    gemini_context_params params = gemini_context_default_params();
    gemini_context *ctx = NULL;
    params.kv_type = kv_type;
    params.n_ctx = 256;
    params.n_batch = n_batch;
    params.n_threads = n_threads;
    params.log_callback = NULL;
    if (gemini_context_create(model, &params, &ctx) != GEMINI_OK)
        printf("context: %s\n", gemini_last_error());
    return ctx;
}

static gemini_context *new_context(const gemini_model *model, int n_batch, int n_threads)
{
    return new_context_kv(model, n_batch, n_threads, GEMINI_TYPE_F32);
}

/* All logits of the prompt, as one batch or one token at a time. */
static int prompt_logits(const gemini_model *model, const int32_t *ids, int n, int one_by_one,
                         int n_threads, float *logits)
{
    int vocab = gemini_model_vocab_size(model), t, ok;
    gemini_context *ctx = new_context(model, one_by_one ? 1 : 64, n_threads);
    ok = ctx != NULL;
    for (t = 0; ok && one_by_one && t < n; t++)
        ok = gemini_decode(ctx, ids + t, 1, logits + (long)t * vocab, 1) == GEMINI_OK;
    if (ok && !one_by_one)
        ok = gemini_decode(ctx, ids, n, logits, 1) == GEMINI_OK;
    gemini_context_free(ctx);
    return ok;
}

/* Greedy continuation of prompt (BOS first), up to 16 tokens, decoded into text. */
static int greedy_text(const gemini_model *model, const gemini_tok *tok, const char *prompt,
                       char *text, size_t cap)
{
    int32_t ids[64], generated[16], n_ids = 0, n_generated = 0, step;
    int vocab = gemini_model_vocab_size(model), ok;
    float *row = (float *)malloc((size_t)vocab * sizeof(float));
    gemini_context *ctx = new_context(model, 64, 2);
    size_t length = 0;

    ok = row && ctx &&
         gemini_tok_encode(tok, prompt, strlen(prompt), GEMINI_TOK_ADD_BOS, ids, 64, &n_ids) ==
             GEMINI_OK &&
         gemini_decode(ctx, ids, n_ids, row, 0) == GEMINI_OK;
    for (step = 0; ok && step < 16; step++) {
        int32_t next = argmax(row, vocab);
        generated[n_generated++] = next;
        if (next == 1 || gemini_decode(ctx, &next, 1, row, 0) != GEMINI_OK)
            break;
    }
    gemini_context_free(ctx);
    free(row);
    text[0] = 0;
    if (ok && gemini_tok_decode(tok, generated, (size_t)n_generated, text, cap, &length) !=
                  GEMINI_OK)
        ok = 0;
    return ok;
}

static double relative_error(const float *a, const float *ref, long count)
{
    double max_ref = 0, max_diff = 0;
    long i;
    for (i = 0; i < count; i++) {
        if (fabs(ref[i]) > max_ref)
            max_ref = fabs(ref[i]);
        if (fabs((double)a[i] - ref[i]) > max_diff || a[i] != a[i])
            max_diff = a[i] != a[i] ? INFINITY : fabs((double)a[i] - ref[i]);
    }
    return max_ref > 0 ? max_diff / max_ref : max_diff;
}

#define KV_STEPS 24

/* The logits after the prompt and after each of KV_STEPS tokens of `path` (a greedy path made
   here when `make_path`), rows (KV_STEPS, vocab), with a KV cache of kv_type. */
static int path_logits(const gemini_model *model, const int32_t *ids, int n_ids,
                       gemini_type kv_type, int32_t *path, int make_path, float *rows)
{
    int vocab = gemini_model_vocab_size(model), step;
    gemini_context *ctx = new_context_kv(model, 64, 2, kv_type);
    int ok = ctx != NULL && gemini_decode(ctx, ids, n_ids, rows, 0) == GEMINI_OK;
    for (step = 0; ok && step < KV_STEPS; step++) {
        float *row = rows + (long)step * vocab;
        if (make_path) path[step] = argmax(row, vocab);
        if (step + 1 < KV_STEPS)
            ok = gemini_decode(ctx, &path[step], 1, row + vocab, 0) == GEMINI_OK;
    }
    gemini_context_free(ctx);
    return ok;
}

/* The 16-bit KV caches against the f32 cache (see the top). */
static void check_kv_types(const gemini_model *model, const int32_t *ids, int n_ids)
{
    static const gemini_type kv_types[2] = {GEMINI_TYPE_F16, GEMINI_TYPE_BF16};
    static const double tolerances[2] = {2e-3, 1e-2};
    int vocab = gemini_model_vocab_size(model), k, step;
    float *f32_rows = (float *)malloc((size_t)KV_STEPS * vocab * sizeof(float));
    float *rows = (float *)malloc((size_t)KV_STEPS * vocab * sizeof(float));
    int32_t path[KV_STEPS];
    char label[128], detail[256];
    int ok = f32_rows && rows && path_logits(model, ids, n_ids, GEMINI_TYPE_F32, path, 1,
                                             f32_rows);
    for (k = 0; k < 2; k++) {
        double err, largest = 0;
        int compared = 0, same = 1;
        long i;
        int done = ok && path_logits(model, ids, n_ids, kv_types[k], path, 0, rows);
        err = done ? relative_error(rows, f32_rows, (long)KV_STEPS * vocab) : INFINITY;
        for (i = 0; done && i < (long)KV_STEPS * vocab; i++)
            if (fabs(f32_rows[i]) > largest) largest = fabs(f32_rows[i]);
        for (step = 0; done && step < KV_STEPS; step++) {
            const float *ref = f32_rows + (long)step * vocab;
            float second = -INFINITY;
            int best = argmax(ref, vocab);
            for (i = 0; i < vocab; i++)
                if (i != best && ref[i] > second) second = ref[i];
            if (ref[best] - second <= 2 * tolerances[k] * largest) continue;
            compared++;
            same &= argmax(rows + (long)step * vocab, vocab) == best;
        }
        snprintf(label, sizeof label, "%s KV cache agrees with the f32 cache (f32 weights)",
                 gemini_type_name(kv_types[k]));
        snprintf(detail, sizeof detail, "prompt + %d steps: rel err %.2g (tol %.2g), argmax "
                 "equal at %s of the %d steps with a clear lead", KV_STEPS, err, tolerances[k],
                 same ? "all" : "NOT all", compared);
        check(done && err <= tolerances[k] && same, label, detail);
    }
    free(f32_rows);
    free(rows);
}

int main(int argc, char **argv)
{
    const char *prompt = "The capital of France is";
    gemini_model *model = NULL, *model_f32 = NULL;
    gemini_tok *tok = NULL;
    int32_t ids[64];
    int32_t n_ids = 0;
    int vocab, step;
    float *batch = NULL, *stepwise = NULL, *threaded = NULL;
    char text[1024], detail[1200];

    gemini__threads_past_cpus = 1; /* 2 threads must equal 1 even on a machine of 1 CPU */
    if (argc < 2) {
        fprintf(stderr, "usage: test_real MODEL_Q8_0.gemini [MODEL_F32.gemini]\n");
        return 2;
    }
    if (gemini_model_load(argv[1], &model) != GEMINI_OK) {
        check(0, "model loads", gemini_last_error());
        printf("%d passed, %d failed\n", passed, failed);
        return 1;
    }
    check(1, "model loads", argv[1]);
    check(gemini_model_verify(model) == GEMINI_OK, "tensor checksums", gemini_last_error());
    check(gemini_model_tokenizer(model, &tok) == GEMINI_OK, "tokenizer from the model file",
          gemini_last_error());
    vocab = gemini_model_vocab_size(model);

    /* Encode the prompt with BOS. */
    if (tok && gemini_tok_encode(tok, prompt, strlen(prompt), GEMINI_TOK_ADD_BOS, ids, 64,
                                 &n_ids) != GEMINI_OK)
        n_ids = 0;
    snprintf(detail, sizeof detail, "%d ids, first %d", (int)n_ids, n_ids ? (int)ids[0] : -1);
    check(n_ids > 1 && ids[0] == 2, "prompt encodes with BOS", detail);
    if (n_ids <= 1)
        goto done;

    /* Greedy continuations name Paris where the reference does. */
    for (step = 0; step < 2; step++) {
        const char *paris_prompts[2] = {"The capital of France is the city of",
                                        "Question: What is the capital of France?\nAnswer:"};
        int ok = greedy_text(model, tok, paris_prompts[step], text, sizeof text);
        char *newline;
        while ((newline = strchr(text, '\n')) != NULL) /* keep the report on one line */
            *newline = '|';
        snprintf(detail, sizeof detail, "\"%s\" + \"%s\"", paris_prompts[step], text);
        check(ok && strstr(text, "Paris") != NULL, "greedy continuation names Paris", detail);
    }

    /* Batched prefill against token by token, and 2 threads against 1. */
    batch = (float *)malloc((size_t)n_ids * vocab * sizeof(float));
    stepwise = (float *)malloc((size_t)n_ids * vocab * sizeof(float));
    threaded = (float *)malloc((size_t)n_ids * vocab * sizeof(float));
    if (batch && stepwise && threaded && prompt_logits(model, ids, n_ids, 0, 1, batch) &&
        prompt_logits(model, ids, n_ids, 1, 1, stepwise) &&
        prompt_logits(model, ids, n_ids, 0, 2, threaded)) {
        double err = relative_error(stepwise, batch, (long)n_ids * vocab);
        snprintf(detail, sizeof detail, "rel err %.3g (tol 1e-4)", err);
        check(err <= 1e-4, "batched prefill equals token-by-token decode", detail);
        check(memcmp(batch, threaded, (size_t)n_ids * vocab * sizeof(float)) == 0,
              "2 threads equal 1 thread bit for bit", "");
    } else {
        check(0, "prompt logits", gemini_last_error());
    }

    /* q8_0 against the exact f32 values of the checkpoint. */
    if (argc > 2 && gemini_model_load(argv[2], &model_f32) == GEMINI_OK && batch &&
        prompt_logits(model_f32, ids, n_ids, 0, 2, stepwise)) {
        double err = relative_error(batch, stepwise, (long)n_ids * vocab);
        int t, mismatches = 0, compared = 0;
        for (t = 0; t < n_ids; t++) {
            const float *ref = stepwise + (long)t * vocab;
            int best = argmax(ref, vocab), i;
            float second = -INFINITY;
            for (i = 0; i < vocab; i++)
                if (i != best && ref[i] > second)
                    second = ref[i];
            if (ref[best] - second < 0.5f) /* a near-tie: either answer is right */
                continue;
            compared++;
            mismatches += argmax(batch + (long)t * vocab, vocab) != best;
        }
        snprintf(detail, sizeof detail, "rel err %.3g (tol 0.1), top-1 differs at %d of %d "
                 "positions", err, mismatches, compared);
        check(err <= 0.1 && mismatches == 0, "q8_0 agrees with f32", detail);
        check_kv_types(model_f32, ids, n_ids);
    } else if (argc > 2) {
        check(0, "f32 model", gemini_last_error());
    }

done:
    free(batch);
    free(stepwise);
    free(threaded);
    gemini_tok_free(tok);
    gemini_model_free(model_f32);
    gemini_model_free(model);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
