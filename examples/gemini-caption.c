/* gemini-caption - describe an image with a PaliGemma model in the .gemini format.

       gemini-caption -m paligemma-3b-pt-224.gemini -i photo.jpg -p "caption en"

   Streams the answer to stdout; timings go to stderr.

   Build: cc -std=c99 -O2 -I. examples/gemini-caption.c -o build/gemini-caption -lm -lpthread

   The image (PNG, JPEG, BMP or PPM/PGM) is decoded and resized with gemini_vision.h to the
   model's input size, bicubic as Hugging Face's SigLIP processor does, and normalised with the
   mean and std stored in the model. The prompt follows PaliGemma's layout: one <image>
   placeholder per image row, BOS, the prompt, a newline; all of it is decoded as one prefix
   (bidirectional attention), then the answer token by token, greedily unless --temp is given,
   until EOS or N tokens. PaliGemma's task prompts are "caption en", "describe en",
   "answer en QUESTION", "ocr", "detect OBJECT" and so on.
*/
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#define GEMINI_IMPLEMENTATION
#include "gemini.h"
#define GEMINI_VISION_IMPLEMENTATION
#include "gemini_vision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(_WIN32)
#include <windows.h>
#endif

static double now_seconds(void)
{
#if defined(_WIN32)
    LARGE_INTEGER frequency, counter;
    QueryPerformanceFrequency(&frequency);
    QueryPerformanceCounter(&counter);
    return (double)counter.QuadPart / (double)frequency.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#endif
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gemini-caption -m MODEL.gemini -i IMAGE [options]\n"
            "\n"
            "  -m, --model FILE     a PaliGemma .gemini model with its tokenizer (required)\n"
            "  -i, --image FILE     PNG, JPEG, BMP or binary PPM/PGM image (required)\n"
            "  -p, --prompt TEXT    the task prompt (default \"caption en\")\n"
            "  -n, --n-predict N    answer tokens at most (default 32); stops earlier at EOS\n"
            "  -t, --threads N      threads (default: online CPUs)\n"
            "      --temp T         sample at temperature T (top-k 40, top-p 0.95);\n"
            "                       default 0: greedy\n"
            "      --seed S         the sampler's seed (default 0x5eed)\n"
            "  -v, --verbose        library log messages on stderr\n"
            "  -h, --help           this text\n"
            "\n"
            "Exit status: 0 on success, 1 on any error, 2 on bad usage.\n");
}

static void log_to_stderr(gemini_log_level level, const char *message, void *user_data)
{
    (void)user_data;
    fprintf(stderr, "[gemini %d] %s\n", (int)level, message);
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *image_path = NULL, *prompt = "caption en";
    int i, n_predict = 32, generated = 0, verbose = 0, status = 1;
    gemini_context_params context_params = gemini_context_default_params();
    gemini_sampler_params sampler_params = gemini_sampler_default_params();
    const gemini_model_hparams *hp;
    gemini_model *model = NULL;
    gemini_context *ctx = NULL;
    gemini_sampler *sampler = NULL;
    gemini_tok *tok = NULL;
    gemini_tok_stream *stream = NULL;
    gemini_tokenizer_desc vocab;
    gemini_vision_image image;
    gemini_vision_preprocess_params pre;
    char *text_in = NULL;
    const char *text;
    size_t text_length;
    int32_t *ids = NULL, n_text = 0, n_ids, token;
    float *pixels = NULL, *logits = NULL;
    double t_start, t_image, t_prefill, t_decode;

    memset(&image, 0, sizeof image);
    sampler_params.temperature = 0.0f;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
            verbose = 1;
            continue;
        } else if (value == NULL) {
            fprintf(stderr, "gemini-caption: %s needs a value (or is unknown); see --help\n",
                    arg);
            return 2;
        } else if (!strcmp(arg, "-m") || !strcmp(arg, "--model")) {
            model_path = value;
        } else if (!strcmp(arg, "-i") || !strcmp(arg, "--image")) {
            image_path = value;
        } else if (!strcmp(arg, "-p") || !strcmp(arg, "--prompt")) {
            prompt = value;
        } else if (!strcmp(arg, "-n") || !strcmp(arg, "--n-predict")) {
            n_predict = atoi(value);
        } else if (!strcmp(arg, "-t") || !strcmp(arg, "--threads")) {
            context_params.n_threads = atoi(value);
        } else if (!strcmp(arg, "--temp")) {
            sampler_params.temperature = (float)atof(value);
        } else if (!strcmp(arg, "--seed")) {
            sampler_params.seed = strtoull(value, NULL, 0);
        } else {
            fprintf(stderr, "gemini-caption: unknown option %s; see --help\n", arg);
            return 2;
        }
        i++;
    }
    if (model_path == NULL || image_path == NULL || n_predict < 1) {
        usage(stderr);
        return 2;
    }
    if (verbose) {
        gemini_set_default_log(log_to_stderr, NULL);
        context_params.log_callback = log_to_stderr;
    }

    /* model, tokenizer, context, sampler */
    t_start = now_seconds();
    if (gemini_model_load(model_path, &model) != GEMINI_OK) goto fail;
    hp = gemini_model_get_hparams(model);
    if (!hp->has_vision) {
        fprintf(stderr, "gemini-caption: %s is a %s model without a vision tower\n", model_path,
                hp->architecture);
        goto done;
    }
    if (gemini_model_tokenizer(model, &tok) != GEMINI_OK ||
        gemini_model_tokenizer_desc(model, &vocab) != GEMINI_OK ||
        gemini_tok_stream_create(tok, &stream) != GEMINI_OK)
        goto fail;
    if (vocab.bos_id < 0) {
        fprintf(stderr, "gemini-caption: the tokenizer has no BOS token\n");
        goto done;
    }
    if (gemini_context_create(model, &context_params, &ctx) != GEMINI_OK ||
        gemini_sampler_create(&sampler_params, hp->vocab_size, &sampler) != GEMINI_OK)
        goto fail;

    /* the image: decode, resize and normalise as the model expects, encode */
    pixels = (float *)malloc(sizeof(float) * 3 * (size_t)hp->image_size * hp->image_size);
    logits = (float *)malloc(sizeof(float) * (size_t)hp->vocab_size);
    if (pixels == NULL || logits == NULL) goto done;
    if (gemini_vision_load(image_path, NULL, &image) != GEMINI_OK) goto fail;
    pre = gemini_vision_preprocess_default_params();
    pre.width = pre.height = hp->image_size;
    for (i = 0; i < 3; i++) {
        pre.mean[i] = hp->image_mean[i];
        pre.std[i] = hp->image_std[i];
    }
    if (gemini_vision_preprocess(image.pixels, image.width, image.height, &pre, pixels) !=
            GEMINI_OK ||
        gemini_encode_image(ctx, pixels, hp->image_size, hp->image_size) != GEMINI_OK)
        goto fail;
    t_image = now_seconds() - t_start;

    /* the prompt: image placeholders, BOS, the text and its newline */
    text_in = (char *)malloc(strlen(prompt) + 2);
    if (text_in == NULL) goto done;
    sprintf(text_in, "%s\n", prompt);
    if (gemini_tok_encode(tok, text_in, strlen(text_in), 0, NULL, 0, &n_text) != GEMINI_OK)
        goto fail;
    ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)(hp->image_tokens + 1 + n_text));
    if (ids == NULL) goto done;
    for (i = 0; i < hp->image_tokens; i++) ids[i] = hp->image_token_id;
    ids[hp->image_tokens] = vocab.bos_id;
    if (gemini_tok_encode(tok, text_in, strlen(text_in), 0, ids + hp->image_tokens + 1, n_text,
                          &n_text) != GEMINI_OK)
        goto fail;
    n_ids = hp->image_tokens + 1 + n_text;

    /* prefill the prefix, then answer */
    t_prefill = now_seconds();
    if (gemini_decode_prefix(ctx, ids, n_ids, n_ids, logits, 0) != GEMINI_OK) goto fail;
    t_prefill = now_seconds() - t_prefill;
    t_decode = now_seconds();
    while (generated < n_predict) {
        gemini_sample(sampler, logits, &token);
        if (token == vocab.eos_id) break;
        if (gemini_tok_stream_push(stream, token, &text, &text_length) == GEMINI_OK)
            fwrite(text, 1, text_length, stdout);
        fflush(stdout);
        if (++generated == n_predict) break;
        if (gemini_decode(ctx, &token, 1, logits, 0) != GEMINI_OK) goto fail;
    }
    t_decode = now_seconds() - t_decode;
    if (gemini_tok_stream_flush(stream, &text, &text_length) == GEMINI_OK)
        fwrite(text, 1, text_length, stdout);
    printf("\n");
    fprintf(stderr, "image %s (%dx%d) encoded, with loading, in %.2f s; prompt %d tokens in "
            "%.2f s; %d answer tokens in %.2f s\n", image_path, (int)image.width,
            (int)image.height, t_image, (int)n_ids, t_prefill, generated, t_decode);
    status = 0;
    goto done;

fail:
    fprintf(stderr, "gemini-caption: %s\n", gemini_last_error());
done:
    gemini_vision_image_free(&image);
    free(ids);
    free(text_in);
    free(pixels);
    free(logits);
    gemini_tok_stream_free(stream);
    gemini_tok_free(tok);
    gemini_sampler_free(sampler);
    gemini_context_free(ctx);
    gemini_model_free(model);
    return status;
}
