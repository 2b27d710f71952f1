/* gemini-caption - describe images with a PaliGemma or Gemma 3 model in the .gemini format.

       gemini-caption -m gemma-3-4b-it-q8_0.gemini -i photo.jpg -p "Describe this image."
       gemini-caption -m gemma-3-4b-it-q8_0.gemini -i a.jpg -i b.png -p "What differs?"
       gemini-caption -m paligemma-3b-pt-224.gemini -i photo.jpg -p "caption en"

   Streams the answer to stdout; timings go to stderr.

   Build: cc -std=c99 -O2 -I. examples/gemini-caption.c -o build/gemini-caption -lm -lpthread

   Each image (PNG, JPEG, BMP or PPM/PGM) is decoded and resized with gemini_vision.h to the
   model's input size with the filter the model file names (bicubic for PaliGemma, bilinear for
   Gemma 3, as Hugging Face's processors do), normalised with the mean and std stored in the
   model, and encoded into its own image slot.

   Gemma 3: the prompt is built as Hugging Face's chat template and Gemma3Processor build it:

       <bos><start_of_turn>user\n  IMAGE ... IMAGE  PROMPT<end_of_turn>\n<start_of_turn>model\n

   where each IMAGE is "\n\n" <start_of_image> <image_soft_token> x 256 <end_of_image> "\n\n"
   (--no-chat leaves out the turn markers, for the pretrained -pt models). The text between the
   image tokens is tokenized piece by piece with the turn markers parsed, the image ids are put
   in directly. The whole prompt is decoded in one call, each image bidirectional within itself
   and causal otherwise, then the answer token by token until <eos> or <end_of_turn>.

   PaliGemma: one image; the prompt follows its layout: one <image> placeholder per image row,
   BOS, the prompt, a newline, all of it decoded as one bidirectional prefix, then the answer
   until <eos>. Its task prompts are "caption en", "describe en", "answer en QUESTION", "ocr",
   "detect OBJECT" and so on.

   Both: greedy unless --temp is given, at most -n tokens.
*/
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#define GEMINI_IMPLEMENTATION
#include "gemini.h"
#define GEMINI_VISION_IMPLEMENTATION
#include "gemini_vision.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(_WIN32)
#include <windows.h>
#endif

#define MAX_IMAGES 16

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
            "usage: gemini-caption -m MODEL.gemini -i IMAGE [-i IMAGE ...] [options]\n"
            "\n"
            "  -m, --model FILE     a PaliGemma or Gemma 3 (4B and up) .gemini model with its\n"
            "                       tokenizer and vision tower (required)\n"
            "  -i, --image FILE     PNG, JPEG, BMP or binary PPM/PGM image (required); Gemma 3\n"
            "                       takes up to %d, in the order given, PaliGemma one\n"
            "  -p, --prompt TEXT    the prompt (default: \"Describe this image.\" for Gemma 3,\n"
            "                       \"caption en\" for PaliGemma)\n"
            "      --no-chat        Gemma 3: no chat turn markers around the prompt (for the\n"
            "                       pretrained -pt models); default: the -it chat template\n"
            "  -n, --n-predict N    answer tokens at most (default 128); stops earlier at <eos>\n"
            "                       (and, in a chat, <end_of_turn>)\n"
            "  -t, --threads N      threads (default: online CPUs)\n"
            "      --ctx N          context positions (default 4096)\n"
            "      --temp T         sample at temperature T (top-k 40, top-p 0.95);\n"
            "                       default 0: greedy\n"
            "      --seed S         the sampler's seed (default 0x5eed)\n"
            "  -v, --verbose        library log messages on stderr\n"
            "  -h, --help           this text\n"
            "\n"
            "Exit status: 0 on success, 1 on any error, 2 on bad usage.\n",
            MAX_IMAGES);
}

static void log_to_stderr(gemini_log_level level, const char *message, void *user_data)
{
    (void)user_data;
    fprintf(stderr, "[gemini %d] %s\n", (int)level, message);
}

/* A growing list of token ids. */
typedef struct id_list {
    int32_t *ids;
    int32_t n, capacity;
} id_list;

static int id_list_reserve(id_list *list, int32_t more)
{
    int32_t *grown;
    int32_t capacity = list->capacity ? list->capacity : 256;
    while (capacity < list->n + more) capacity *= 2;
    if (capacity == list->capacity) return 1;
    grown = (int32_t *)realloc(list->ids, sizeof(int32_t) * (size_t)capacity);
    if (grown == NULL) return 0;
    list->ids = grown;
    list->capacity = capacity;
    return 1;
}

static int id_list_push(id_list *list, int32_t id, int32_t count)
{
    if (!id_list_reserve(list, count)) return 0;
    while (count-- > 0) list->ids[list->n++] = id;
    return 1;
}

/* Appends the tokens of text (flags: GEMINI_TOK_PARSE_SPECIAL or 0). */
static gemini_result id_list_text(id_list *list, const gemini_tok *tok, const char *text,
                                  uint32_t flags)
{
    int32_t n = 0;
    gemini_result result = gemini_tok_encode(tok, text, strlen(text), flags, NULL, 0, &n);
    if (result != GEMINI_OK) return result;
    if (!id_list_reserve(list, n)) return GEMINI_ERR_OUT_OF_MEMORY;
    result = gemini_tok_encode(tok, text, strlen(text), flags, list->ids + list->n, n, &n);
    if (result == GEMINI_OK) list->n += n;
    return result;
}

/* The prompt's text with leading and trailing white space removed (as the chat template's
   trim), in a new string. */
static char *trimmed(const char *text)
{
    size_t begin = 0, end = strlen(text);
    char *out;
    while (begin < end && isspace((unsigned char)text[begin])) begin++;
    while (end > begin && isspace((unsigned char)text[end - 1])) end--;
    out = (char *)malloc(end - begin + 1);
    if (out == NULL) return NULL;
    memcpy(out, text + begin, end - begin);
    out[end - begin] = '\0';
    return out;
}

/* Gemma 3's prompt: the turn markers (chat), each image as Gemma3Processor expands it, the
   prompt text. The text between two image tokens is tokenized as one piece, so the newlines
   around an image merge with their neighbours as in Hugging Face's tokenization. */
static gemini_result gemma3_prompt(id_list *list, const gemini_tok *tok,
                                   const gemini_model_hparams *hp, int32_t bos_id,
                                   int n_images, const char *prompt, int chat)
{
    gemini_result result = GEMINI_OK;
    char *text = trimmed(prompt), *piece;
    int k;
    if (text == NULL) return GEMINI_ERR_OUT_OF_MEMORY;
    piece = (char *)malloc(strlen(text) + 64);
    if (piece == NULL || !id_list_push(list, bos_id, 1)) {
        free(text);
        free(piece);
        return GEMINI_ERR_OUT_OF_MEMORY;
    }
    strcpy(piece, chat ? "<start_of_turn>user\n" : "");
    for (k = 0; k < n_images; k++) {
        strcat(piece, "\n\n");
        result = id_list_text(list, tok, piece, GEMINI_TOK_PARSE_SPECIAL);
        if (result != GEMINI_OK) break;
        if (!id_list_push(list, hp->image_start_id, 1) ||
            !id_list_push(list, hp->image_token_id, hp->image_tokens) ||
            !id_list_push(list, hp->image_end_id, 1)) {
            result = GEMINI_ERR_OUT_OF_MEMORY;
            break;
        }
        strcpy(piece, "\n\n");
    }
    if (k == n_images) {
        strcat(piece, text);
        if (chat) strcat(piece, "<end_of_turn>\n<start_of_turn>model\n");
        result = id_list_text(list, tok, piece, GEMINI_TOK_PARSE_SPECIAL);
    }
    free(text);
    free(piece);
    return result;
}

/* PaliGemma's prompt: the image placeholders, BOS, the prompt and its newline. */
static gemini_result paligemma_prompt(id_list *list, const gemini_tok *tok,
                                      const gemini_model_hparams *hp, int32_t bos_id,
                                      const char *prompt)
{
    gemini_result result;
    char *text = (char *)malloc(strlen(prompt) + 2);
    if (text == NULL || !id_list_push(list, hp->image_token_id, hp->image_tokens) ||
        !id_list_push(list, bos_id, 1)) {
        free(text);
        return GEMINI_ERR_OUT_OF_MEMORY;
    }
    sprintf(text, "%s\n", prompt);
    result = id_list_text(list, tok, text, 0);
    free(text);
    return result;
}

/* Decodes, preprocesses and encodes one image into slot `slot`. */
static gemini_result encode_image(gemini_context *ctx, const gemini_model_hparams *hp,
                                  const char *path, int32_t slot, float *pixels)
{
    gemini_vision_image image;
    gemini_vision_preprocess_params pre;
    gemini_result result;
    int c;
    memset(&image, 0, sizeof image);
    result = gemini_vision_load(path, NULL, &image);
    if (result != GEMINI_OK) return result;
    pre = gemini_vision_preprocess_default_params();
    pre.width = pre.height = hp->image_size;
    pre.filter = hp->image_resample;
    for (c = 0; c < 3; c++) {
        pre.mean[c] = hp->image_mean[c];
        pre.std[c] = hp->image_std[c];
    }
    result = gemini_vision_preprocess(image.pixels, image.width, image.height, &pre, pixels);
    if (result == GEMINI_OK)
        result = gemini_encode_image_at(ctx, slot, pixels, hp->image_size, hp->image_size);
    if (result == GEMINI_OK)
        fprintf(stderr, "image %d: %s (%dx%d)\n", (int)slot, path, (int)image.width,
                (int)image.height);
    gemini_vision_image_free(&image);
    return result;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *image_paths[MAX_IMAGES], *prompt = NULL;
    int i, n_images = 0, n_predict = 128, generated = 0, verbose = 0, chat = 1, status = 1;
    int gemma3;
    gemini_context_params context_params = gemini_context_default_params();
    gemini_sampler_params sampler_params = gemini_sampler_default_params();
    const gemini_model_hparams *hp;
    gemini_model *model = NULL;
    gemini_context *ctx = NULL;
    gemini_sampler *sampler = NULL;
    gemini_tok *tok = NULL;
    gemini_tok_stream *stream = NULL;
    gemini_tokenizer_desc vocab;
    id_list ids = {NULL, 0, 0};
    const char *text;
    size_t text_length;
    int32_t token, eot_id = -1;
    float *pixels = NULL, *logits = NULL;
    double t_start, t_images, t_prefill, t_decode;

    sampler_params.temperature = 0.0f;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
            verbose = 1;
            continue;
        } else if (!strcmp(arg, "--no-chat")) {
            chat = 0;
            continue;
        } else if (value == NULL) {
            fprintf(stderr, "gemini-caption: %s needs a value (or is unknown); see --help\n",
                    arg);
            return 2;
        } else if (!strcmp(arg, "-m") || !strcmp(arg, "--model")) {
            model_path = value;
        } else if (!strcmp(arg, "-i") || !strcmp(arg, "--image")) {
            if (n_images == MAX_IMAGES) {
                fprintf(stderr, "gemini-caption: at most %d images\n", MAX_IMAGES);
                return 2;
            }
            image_paths[n_images++] = value;
        } else if (!strcmp(arg, "-p") || !strcmp(arg, "--prompt")) {
            prompt = value;
        } else if (!strcmp(arg, "-n") || !strcmp(arg, "--n-predict")) {
            n_predict = atoi(value);
        } else if (!strcmp(arg, "-t") || !strcmp(arg, "--threads")) {
            context_params.n_threads = atoi(value);
        } else if (!strcmp(arg, "--ctx")) {
            context_params.n_ctx = atoi(value);
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
    if (model_path == NULL || n_images == 0 || n_predict < 1) {
        usage(stderr);
        return 2;
    }
    if (verbose) {
        gemini_set_default_log(log_to_stderr, NULL);
        context_params.log_callback = log_to_stderr;
    }

    /* model, tokenizer, context (one image slot per image), sampler */
    t_start = now_seconds();
    if (gemini_model_load(model_path, &model) != GEMINI_OK) goto fail;
    hp = gemini_model_get_hparams(model);
    gemma3 = strcmp(hp->vision_projector, "gemma3") == 0;
    if (!hp->has_vision) {
        fprintf(stderr, "gemini-caption: %s is a %s model without a vision tower\n", model_path,
                hp->architecture);
        goto done;
    }
    if (!gemma3 && n_images > 1) {
        fprintf(stderr, "gemini-caption: PaliGemma reads one image, %d given\n", n_images);
        goto done;
    }
    if (prompt == NULL) prompt = gemma3 ? "Describe this image." : "caption en";
    if (gemini_model_tokenizer(model, &tok) != GEMINI_OK ||
        gemini_model_tokenizer_desc(model, &vocab) != GEMINI_OK ||
        gemini_tok_stream_create(tok, &stream) != GEMINI_OK)
        goto fail;
    if (vocab.bos_id < 0) {
        fprintf(stderr, "gemini-caption: the tokenizer has no BOS token\n");
        goto done;
    }
    if (gemma3 && chat)
        eot_id = vocab.eot_id >= 0 ? vocab.eot_id : gemini_tok_id_of(tok, "<end_of_turn>", 13);
    context_params.n_images = n_images;
    if (gemini_context_create(model, &context_params, &ctx) != GEMINI_OK ||
        gemini_sampler_create(&sampler_params, hp->vocab_size, &sampler) != GEMINI_OK)
        goto fail;

    /* the images: decode, resize and normalise as the model expects, encode */
    pixels = (float *)malloc(sizeof(float) * 3 * (size_t)hp->image_size * hp->image_size);
    logits = (float *)malloc(sizeof(float) * (size_t)hp->vocab_size);
    if (pixels == NULL || logits == NULL) goto done;
    for (i = 0; i < n_images; i++)
        if (encode_image(ctx, hp, image_paths[i], i, pixels) != GEMINI_OK) goto fail;
    t_images = now_seconds() - t_start;

    /* the prompt */
    if ((gemma3 ? gemma3_prompt(&ids, tok, hp, vocab.bos_id, n_images, prompt, chat)
                : paligemma_prompt(&ids, tok, hp, vocab.bos_id, prompt)) != GEMINI_OK)
        goto fail;

    /* prefill (PaliGemma: all of it one prefix; Gemma 3: the images bidirectional), answer */
    t_prefill = now_seconds();
    if (gemini_decode_prefix(ctx, ids.ids, ids.n, gemma3 ? 0 : ids.n, logits, 0) != GEMINI_OK)
        goto fail;
    t_prefill = now_seconds() - t_prefill;
    t_decode = now_seconds();
    while (generated < n_predict) {
        gemini_sample(sampler, logits, &token);
        if (token == vocab.eos_id || token == eot_id) break;
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
    fprintf(stderr, "%d image(s) encoded, with loading, in %.2f s; prompt %d tokens in %.2f s; "
            "%d answer tokens in %.2f s\n", n_images, t_images, (int)ids.n, t_prefill,
            generated, t_decode);
    status = 0;
    goto done;

fail:
    fprintf(stderr, "gemini-caption: %s\n", gemini_last_error());
done:
    free(ids.ids);
    free(pixels);
    free(logits);
    gemini_tok_stream_free(stream);
    gemini_tok_free(tok);
    gemini_sampler_free(sampler);
    gemini_context_free(ctx);
    gemini_model_free(model);
    return status;
}
