/* PaliGemma and Gemma 3 vision end to end against the transformers reference.

   Usage: test_vision_model [--tol REL] [--greedy-exact] [--vision-only] FIXTURE_DIR MODEL

   FIXTURE_DIR is one prompt written by tools/make_paligemma_fixtures.py or
   tools/make_gemma3_vision_fixtures.py (reference.txt, raw float32 pixel values, vision tower
   outputs, projected image rows and logits, one block per image); MODEL is the fixture's hf/
   directory converted by gemini-convert. Run from the repository root (reference.txt names the
   images by their paths there). The checks:
     - each image decoded and preprocessed by gemini_vision.h equals the processor's pixel values
       to 1/255, with the size, mean, std and resize filter the model file carries;
     - each image's SigLIP output and projected rows (gemini_encode_image_at, image k in slot k;
       Gemma 3's rows are pooled, normed and projected);
     - the logits of every prompt position, decoded in one gemini_decode_prefix call (PaliGemma:
       the whole prompt as prefix; Gemma 3: prefix 0, each image bidirectional), with 1 and 3
       threads (which must agree bit for bit);
     - Gemma 3: the same prompt decoded in pieces, one image per call from slot 0, gives the
       same logits bit for bit;
     - a greedy answer of 16 tokens, one gemini_decode per token, and each step's logits;
     - that the test can fail: for PaliGemma the same prompt with a causal mask (prefix_length
       0) must miss the reference by more than 10 times the tolerance; and the API refuses bad
       calls.
   --vision-only stops after the image rows (for quantised files, whose decoder logits the
   parity tests already bound on better-conditioned fixtures).
   An error is max |ours - reference| divided by the largest |reference| value of that tensor.
   Ends with "N passed, M failed". */
#define GEMINI_IMPLEMENTATION
#include "gemini.h"
#define GEMINI_VISION_IMPLEMENTATION
#include "gemini_vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 4200
#define MAX_IMAGES 8
#define STEPS 16

static int passed, failed;

static void check(int ok, const char *what, const char *detail)
{
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what, detail[0] ? ": " : "", detail);
    if (ok) passed++;
    else failed++;
}

typedef struct reference {
    char image[MAX_IMAGES][512];
    int n_images;
    int image_size;
    int32_t input[MAX_TOKENS];
    int n_input;
    int prefix;
    int32_t greedy[STEPS];
    int n_greedy;
    double causal_delta;
} reference;

static int read_ints(const char *line, int32_t *out, int max)
{
    int n = 0, used;
    long value;
    while (n < max && sscanf(line, "%ld%n", &value, &used) == 1) {
        out[n++] = (int32_t)value;
        line += used;
    }
    return n;
}

static int read_reference(const char *dir, reference *ref)
{
    static char line[65536];
    char path[1024];
    FILE *file;
    memset(ref, 0, sizeof *ref);
    snprintf(path, sizeof path, "%s/reference.txt", dir);
    file = fopen(path, "r");
    if (!file) {
        printf("cannot open %s\n", path);
        return 0;
    }
    while (fgets(line, sizeof line, file)) {
        if (strncmp(line, "image ", 6) == 0 && ref->n_images < MAX_IMAGES)
            sscanf(line + 6, "%511s %d", ref->image[ref->n_images++], &ref->image_size);
        else if (strncmp(line, "input ", 6) == 0)
            ref->n_input = read_ints(line + 6, ref->input, MAX_TOKENS);
        else if (strncmp(line, "prefix ", 7) == 0)
            ref->prefix = atoi(line + 7);
        else if (strncmp(line, "greedy ", 7) == 0)
            ref->n_greedy = read_ints(line + 7, ref->greedy, STEPS);
        else if (strncmp(line, "causal_delta ", 13) == 0)
            ref->causal_delta = atof(line + 13);
    }
    fclose(file);
    return ref->n_images > 0 && ref->image_size > 0 && ref->n_input > 0 && ref->prefix >= 0 &&
           ref->n_greedy == STEPS;
}

/* Reads exactly n little-endian floats of dir/name; NULL (and a message) otherwise. */
static float *read_floats(const char *dir, const char *name, size_t n)
{
    char path[1024];
    FILE *file;
    float *data;
    long size;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    file = fopen(path, "rb");
    if (!file) {
        printf("cannot open %s\n", path);
        return NULL;
    }
    fseek(file, 0, SEEK_END);
    size = ftell(file);
    fseek(file, 0, SEEK_SET);
    data = (float *)malloc(n * sizeof(float) + 1);
    if (!data || size != (long)(n * sizeof(float)) || fread(data, sizeof(float), n, file) != n) {
        printf("%s: %ld bytes, expected %lu\n", path, size, (unsigned long)(n * sizeof(float)));
        free(data);
        data = NULL;
    }
    fclose(file);
    return data;
}

/* max |a - b| / max |b| over n values. */
static double relative_error(const float *a, const float *b, size_t n)
{
    double worst = 0.0, scale = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - b[i]);
        if (!(diff <= worst)) worst = diff; /* NaN counts as the worst */
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return scale > 0.0 ? worst / scale : worst;
}

static int32_t argmax(const float *row, int32_t n)
{
    int32_t i, best = 0;
    for (i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

static gemini_context *new_context(const gemini_model *model, int32_t threads, int32_t images)
{
    gemini_context_params params = gemini_context_default_params();
    gemini_context *ctx = NULL;
    params.n_ctx = 512;
    params.n_batch = 8; /* raised to image_tokens + 64 for a model with a vision tower */
    params.n_threads = threads;
    params.n_images = images;
    if (gemini_context_create(model, &params, &ctx) != GEMINI_OK)
        printf("context: %s\n", gemini_last_error());
    return ctx;
}

/* Loads image k of the reference, preprocesses it as the model file says into pixels and
   compares with the processor's values; 1 if within 1/255. */
static int check_pixels(const reference *ref, int k, const gemini_model_hparams *hp,
                        const float *ref_pixels, float *pixels)
{
    gemini_vision_image image;
    gemini_vision_preprocess_params pre;
    size_t n = 3 * (size_t)hp->image_size * hp->image_size, i;
    double worst = 0.0;
    char what[600], detail[128];
    int c;
    snprintf(what, sizeof what, "pixel values of %s", ref->image[k]);
    if (gemini_vision_load(ref->image[k], NULL, &image) != GEMINI_OK) {
        check(0, what, gemini_last_error());
        return 0;
    }
    pre = gemini_vision_preprocess_default_params();
    pre.width = pre.height = hp->image_size;
    pre.filter = hp->image_resample;
    for (c = 0; c < 3; c++) {
        pre.mean[c] = hp->image_mean[c];
        pre.std[c] = hp->image_std[c];
    }
    if (gemini_vision_preprocess(image.pixels, image.width, image.height, &pre, pixels) !=
        GEMINI_OK) {
        check(0, what, gemini_last_error());
        gemini_vision_image_free(&image);
        return 0;
    }
    gemini_vision_image_free(&image);
    for (i = 0; i < n; i++)
        if (fabs((double)pixels[i] - ref_pixels[i]) > worst)
            worst = fabs((double)pixels[i] - ref_pixels[i]);
    snprintf(detail, sizeof detail, "max |diff| %.3g (limit 1/255, filter %d)", worst,
             hp->image_resample);
    check(worst <= 1.0 / 255.0, what, detail);
    return worst <= 1.0 / 255.0;
}

/* Gemma 3: the prompt decoded in pieces, each ending after one image's placeholders and
   taking that image from slot 0 (encoded again before each piece); the logits of every
   position into logits. 1 on success. */
static int decode_in_pieces(gemini_context *ctx, const reference *ref,
                            const gemini_model_hparams *hp, float *const *pixels,
                            float *logits)
{
    int32_t start = 0, end, i, image = 0;
    while (start < ref->n_input) {
        for (i = start; i < ref->n_input && ref->input[i] != hp->image_token_id; i++)
            ;
        end = i < ref->n_input ? i + hp->image_tokens : ref->n_input;
        if (i < ref->n_input &&
            gemini_encode_image(ctx, pixels[image++], hp->image_size, hp->image_size) !=
                GEMINI_OK)
            return 0;
        if (end > ref->n_input ||
            gemini_decode_prefix(ctx, ref->input + start, end - start, 0,
                                 logits + (size_t)start * hp->vocab_size, 1) != GEMINI_OK)
            return 0;
        start = end;
    }
    return 1;
}

/* Gemma 3: a prompt longer than n_batch whose image would straddle the first step's end must be
   split before the image (a span is computed in one step). Decoded in one call, its last
   logits must equal those of the text decoded causally first and the image with the rest after
   it. 1 if equal bit for bit. */
static int span_not_cut(gemini_model *model, const gemini_model_hparams *hp,
                        const float *pixels)
{
    gemini_context *ctx = new_context(model, 2, 1);
    int32_t n_batch = hp->image_tokens + 64, n_text = n_batch - 2, n, i, ids[512];
    float *one = (float *)malloc((size_t)hp->vocab_size * sizeof(float));
    float *two = (float *)malloc((size_t)hp->vocab_size * sizeof(float));
    int same = 0;
    if (ctx && one && two && n_text + hp->image_tokens + 5 <= 512) {
        for (n = 0; n < n_text; n++) ids[n] = 3 + (n * 7) % 90;
        for (i = 0; i < hp->image_tokens; i++) ids[n++] = hp->image_token_id;
        for (i = 0; i < 5; i++) ids[n++] = 11 + i;
        same = gemini_encode_image(ctx, pixels, hp->image_size, hp->image_size) == GEMINI_OK &&
               gemini_decode_prefix(ctx, ids, n, 0, one, 0) == GEMINI_OK;
        gemini_context_reset(ctx);
        same = same && gemini_decode(ctx, ids, n_text, NULL, 0) == GEMINI_OK &&
               gemini_decode_prefix(ctx, ids + n_text, n - n_text, 0, two, 0) == GEMINI_OK &&
               memcmp(one, two, (size_t)hp->vocab_size * sizeof(float)) == 0;
    }
    gemini_context_free(ctx);
    free(one);
    free(two);
    return same;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *model_path = NULL;
    double tol = 1e-4;
    int greedy_exact = 0, vision_only = 0, gemma3, i, k;
    reference ref;
    gemini_model *model = NULL;
    const gemini_model_hparams *hp;
    gemini_context *ctx = NULL, *ctx3 = NULL;
    float *pixels[MAX_IMAGES] = {0}, *ref_pixels = NULL, *ref_vision = NULL, *ref_embd = NULL;
    float *ref_logits = NULL, *ref_greedy = NULL, *logits = NULL, *logits3 = NULL;
    const float *vision, *embd;
    int32_t vocab, n_rows = 0, dim = 0, tokens[STEPS], bad[MAX_TOKENS];
    size_t plane, vision_size, embd_size;
    char what[64], detail[256];
    double err, worst;

    gemini__threads_past_cpus = 1; /* 3 threads must equal 1 even on a machine of 2 CPUs */
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tol") == 0 && i + 1 < argc) tol = atof(argv[++i]);
        else if (strcmp(argv[i], "--greedy-exact") == 0) greedy_exact = 1;
        else if (strcmp(argv[i], "--vision-only") == 0) vision_only = 1;
        else if (!dir) dir = argv[i];
        else model_path = argv[i];
    }
    if (!dir || !model_path) {
        printf("usage: test_vision_model [--tol REL] [--greedy-exact] [--vision-only] "
               "FIXTURE_DIR MODEL\n");
        return 2;
    }
    if (!read_reference(dir, &ref)) {
        printf("FAIL %s/reference.txt is incomplete\n0 passed, 1 failed\n", dir);
        return 1;
    }
    if (gemini_model_load(model_path, &model) != GEMINI_OK) {
        printf("FAIL load %s: %s\n0 passed, 1 failed\n", model_path, gemini_last_error());
        return 1;
    }
    hp = gemini_model_get_hparams(model);
    vocab = hp->vocab_size;
    gemma3 = strcmp(hp->vision_projector, "gemma3") == 0;
    snprintf(detail, sizeof detail, "%s, image %d px, patch %d, %d patches, %d rows, token %d",
             hp->vision_projector, hp->image_size, hp->patch_size, hp->image_patches,
             hp->image_tokens, hp->image_token_id);
    check(hp->has_vision && hp->image_size == ref.image_size, "vision hyperparameters", detail);
    if (!hp->has_vision || hp->image_size != ref.image_size) goto done;

    /* reference files: one block per image */
    plane = (size_t)hp->image_size * (size_t)hp->image_size;
    vision_size = (size_t)hp->image_patches * hp->vision_hidden;
    embd_size = (size_t)hp->image_tokens * hp->hidden_size;
    for (k = 0; k < ref.n_images; k++) pixels[k] = (float *)malloc(3 * plane * sizeof(float));
    ref_pixels = read_floats(dir, "pixel_values.f32", ref.n_images * 3 * plane);
    ref_vision = read_floats(dir, "vision.f32", ref.n_images * vision_size);
    ref_embd = read_floats(dir, "image_embd.f32", ref.n_images * embd_size);
    ref_logits = read_floats(dir, "logits_prompt.f32", (size_t)ref.n_input * vocab);
    ref_greedy = read_floats(dir, "logits_greedy.f32", (size_t)STEPS * vocab);
    logits = (float *)malloc((size_t)ref.n_input * vocab * sizeof(float));
    logits3 = (float *)malloc((size_t)ref.n_input * vocab * sizeof(float));
    if (!pixels[ref.n_images - 1] || !ref_pixels || !ref_vision || !ref_embd || !ref_logits ||
        !ref_greedy || !logits || !logits3) {
        check(0, "reference files", dir);
        goto done;
    }

    /* pixels, then the vision tower and projector, image k into slot k */
    ctx = new_context(model, 1, ref.n_images);
    ctx3 = new_context(model, 3, ref.n_images);
    if (!ctx || !ctx3) {
        check(0, "contexts", gemini_last_error());
        goto done;
    }
    for (k = 0; k < ref.n_images; k++) {
        if (!check_pixels(&ref, k, hp, ref_pixels + k * 3 * plane, pixels[k])) goto done;
        snprintf(what, sizeof what, "gemini_encode_image_at slot %d", k);
        check(gemini_encode_image_at(ctx, k, pixels[k], hp->image_size, hp->image_size) ==
                      GEMINI_OK &&
                  gemini_encode_image_at(ctx3, k, pixels[k], hp->image_size, hp->image_size) ==
                      GEMINI_OK,
              what, "");
        vision = gemini_vision_output(ctx, &n_rows, &dim);
        err = vision ? relative_error(vision, ref_vision + k * vision_size, vision_size) : 1.0;
        snprintf(detail, sizeof detail, "%d x %d, error %.3g (tol %g)", n_rows, dim, err, tol);
        snprintf(what, sizeof what, "vision tower output, image %d", k);
        check(vision && n_rows == hp->image_patches && dim == hp->vision_hidden && err <= tol,
              what, detail);
        embd = gemini_image_embeddings(ctx, &n_rows, &dim);
        err = embd ? relative_error(embd, ref_embd + k * embd_size, embd_size) : 1.0;
        snprintf(detail, sizeof detail, "%d x %d, error %.3g (tol %g)", n_rows, dim, err, tol);
        snprintf(what, sizeof what, "projected image rows, image %d", k);
        check(embd && n_rows == hp->image_tokens && dim == hp->hidden_size && err <= tol, what,
              detail);
    }
    if (vision_only) goto done;

    /* the prompt in one call: PaliGemma's as one bidirectional prefix, Gemma 3's images each
       bidirectional */
    if (gemini_decode_prefix(ctx, ref.input, ref.n_input, ref.prefix, logits, 1) != GEMINI_OK ||
        gemini_decode_prefix(ctx3, ref.input, ref.n_input, ref.prefix, logits3, 1) !=
            GEMINI_OK) {
        check(0, "gemini_decode_prefix", gemini_last_error());
        goto done;
    }
    err = relative_error(logits, ref_logits, (size_t)ref.n_input * vocab);
    snprintf(detail, sizeof detail, "%d positions, %d image(s), error %.3g (tol %g)",
             ref.n_input, ref.n_images, err, tol);
    check(err <= tol, "prompt logits", detail);
    check(memcmp(logits, logits3, (size_t)ref.n_input * vocab * sizeof(float)) == 0,
          "3 threads equal 1 thread bit for bit", "");

    /* Gemma 3: one image per call gives the same logits */
    if (gemma3) {
        gemini_context_reset(ctx3);
        check(decode_in_pieces(ctx3, &ref, hp, pixels, logits3) &&
                  memcmp(logits, logits3, (size_t)ref.n_input * vocab * sizeof(float)) == 0,
              "the prompt in pieces, one image per call, equals one call bit for bit",
              gemini_last_error());
        check(span_not_cut(model, hp, pixels[0]),
              "an image across n_batch starts the next step (one call equals two)", "");
    }

    /* greedy answer, one token per call */
    worst = 0.0;
    tokens[0] = argmax(logits + (size_t)(ref.n_input - 1) * vocab, vocab);
    err = relative_error(logits + (size_t)(ref.n_input - 1) * vocab, ref_greedy, (size_t)vocab);
    if (err > worst) worst = err;
    for (i = 1; i < STEPS; i++) {
        if (gemini_decode(ctx, &tokens[i - 1], 1, logits, 0) != GEMINI_OK) {
            check(0, "gemini_decode", gemini_last_error());
            goto done;
        }
        err = relative_error(logits, ref_greedy + (size_t)i * vocab, (size_t)vocab);
        if (err > worst) worst = err;
        tokens[i] = greedy_exact ? argmax(logits, vocab) : ref.greedy[i];
    }
    snprintf(detail, sizeof detail, "error %.3g (tol %g)", worst, tol);
    check(worst <= tol, "greedy step logits", detail);
    if (greedy_exact) {
        int same = memcmp(tokens, ref.greedy, sizeof tokens) == 0;
        snprintf(detail, sizeof detail, "first tokens %d %d %d, reference %d %d %d", tokens[0],
                 tokens[1], tokens[2], ref.greedy[0], ref.greedy[1], ref.greedy[2]);
        check(same, "greedy 16 tokens identical", detail);
    }

    /* the test can fail: a causal PaliGemma prompt misses the reference by far more than tol */
    if (ref.prefix > 0) {
        gemini_context_reset(ctx);
        if (gemini_decode_prefix(ctx, ref.input, ref.n_input, 0, logits, 1) == GEMINI_OK) {
            err = relative_error(logits, ref_logits, (size_t)ref.n_input * vocab);
            snprintf(detail, sizeof detail, "error %.3g (reference's own: %.3g)", err,
                     ref.causal_delta);
            check(err > 10 * tol, "a causal mask is detected", detail);
        } else {
            check(0, "causal decode", gemini_last_error());
        }
    }

    /* and refuses what it cannot do: an image size, a slot, a run one placeholder short, a
       prefix too long, more images than slots */
    memcpy(bad, ref.input, (size_t)ref.n_input * sizeof(int32_t));
    for (i = 0; i < ref.n_input && bad[i] != hp->image_token_id; i++)
        ;
    if (i < ref.n_input) bad[i] = 2;
    gemini_context_reset(ctx);
    check(gemini_encode_image(ctx, pixels[0], hp->image_size - 1, hp->image_size) ==
                  GEMINI_ERR_INVALID_ARGUMENT &&
              gemini_encode_image_at(ctx, ref.n_images, pixels[0], hp->image_size,
                                     hp->image_size) == GEMINI_ERR_INVALID_ARGUMENT &&
              gemini_encode_image_at(ctx, -1, pixels[0], hp->image_size, hp->image_size) ==
                  GEMINI_ERR_INVALID_ARGUMENT &&
              gemini_decode_prefix(ctx, bad, ref.n_input, ref.prefix, NULL, 0) ==
                  GEMINI_ERR_INVALID_ARGUMENT &&
              gemini_decode_prefix(ctx, ref.input, ref.n_input, ref.n_input + 1, NULL, 0) ==
                  GEMINI_ERR_INVALID_ARGUMENT &&
              gemini_context_position(ctx) == 0,
          "bad sizes, slots, placeholder runs and prefixes are refused", "");
    if (ref.n_images > 1) {
        gemini_context *one = new_context(model, 1, 1);
        int refused = one != NULL &&
                      gemini_encode_image(one, pixels[0], hp->image_size, hp->image_size) ==
                          GEMINI_OK &&
                      gemini_decode_prefix(one, ref.input, ref.n_input, ref.prefix, NULL, 0) ==
                          GEMINI_ERR_INVALID_ARGUMENT &&
                      gemini_context_position(one) == 0;
        check(refused, "more images than the context's slots are refused", "");
        gemini_context_free(one);
    }

done:
    printf("%d passed, %d failed\n", passed, failed);
    gemini_context_free(ctx);
    gemini_context_free(ctx3);
    gemini_model_free(model);
    for (k = 0; k < MAX_IMAGES; k++) free(pixels[k]);
    free(ref_pixels);
    free(ref_vision);
    free(ref_embd);
    free(ref_logits);
    free(ref_greedy);
    free(logits);
    free(logits3);
    return failed == 0 ? 0 : 1;
}
