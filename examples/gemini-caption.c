/* gemini-caption - describe images or a short video with a PaliGemma or Gemma 3 model in the
   .gemini format.

       gemini-caption -m gemma-3-4b-it-q8_0.gemini -i photo.jpg -p "Describe this image."
       gemini-caption -m gemma-3-4b-it-q8_0.gemini -i a.jpg -i b.png -p "What differs?"
       gemini-caption -m gemma-3-4b-it-q8_0.gemini --video clip.y4m --frames 8
       gemini-caption -m gemma-3-4b-it-q8_0.gemini --video frames/ --fps 2 --frames 16
       gemini-caption -m paligemma-3b-pt-224.gemini -i photo.jpg -p "caption en"
       gemini-caption -m paligemma2-3b-mix-448.gemini -i photo.jpg -p "detect cat ; dog"

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

   Gemma 3 video (--video): Gemma 3 has no video input of its own (transformers' Gemma3Processor
   takes images only), so a clip is given as N frames sampled evenly (frame floor(i * count /
   N), gemini_vision_video_sample's rule), each an image preceded by its time, then the prompt:

       <start_of_turn>user\nFrame 0.0:  IMAGE  Frame 0.5:  IMAGE ...  PROMPT<end_of_turn>\n...

   The "Frame T:" label, T the frame's start time in seconds as Python prints round(T, 2), is
   the one Hugging Face's Gemma 3 demo (the gemma-3 Space, process_video) interleaves with the
   frames; that demo puts the prompt before the frames, we put it after them, where
   gemini-caption puts it after images, so the question comes right before the answer. The
   chat template joins a message's parts without separators, which gives exactly the layout
   above. A Y4M file gives its frames and frame rate; a directory gives its image files in byte
   order of their names, frame k at k / --fps seconds.

   PaliGemma: one image; the prompt follows its layout: one <image> placeholder per image row,
   BOS, the prompt, a newline, all of it decoded as one bidirectional prefix, then the answer
   until <eos>. Its task prompts are "caption en", "describe en", "answer en QUESTION", "ocr",
   "detect OBJECT ; OBJECT", "segment OBJECT" and so on. After the answer to "detect ..." or
   "segment ...", each box is printed as "box: x0 y0 x1 y1 label" in pixels of the original
   image (gemini_vision_parse_detections; <seg> mask codes are parsed away, not decoded).

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
#else
#include <dirent.h>
#include <sys/stat.h>
#endif

#define MAX_IMAGES 16
#define MAX_FRAMES 64        /* gemini_context_params.n_images: 1 .. 64 image slots */
#define DEFAULT_FRAMES 8
#define MAX_CTX 32768        /* gemini_context_params.n_ctx at most */

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
            "       gemini-caption -m MODEL.gemini --video CLIP.y4m|DIR [--frames N] [options]\n"
            "\n"
            "  -m, --model FILE     a PaliGemma or Gemma 3 (4B and up) .gemini model with its\n"
            "                       tokenizer and vision tower (required)\n"
            "  -i, --image FILE     PNG, JPEG, BMP or binary PPM/PGM image; Gemma 3 takes up\n"
            "                       to %d, in the order given, PaliGemma one\n"
            "      --video PATH     Gemma 3 only: a Y4M (YUV4MPEG2) clip, or a directory whose\n"
            "                       image files (.png .jpg .jpeg .bmp .ppm .pgm .pnm) are the\n"
            "                       frames in byte order of their names (number them with\n"
            "                       leading zeros); not with -i\n"
            "      --frames N       frames to sample evenly, the first always (default %d, at\n"
            "                       most %d: one image slot each); a shorter clip gives all\n"
            "      --fps F          a directory's frame rate, for the frames' times (default 1)\n"
            "  -p, --prompt TEXT    the prompt (default: \"Describe this image.\" for Gemma 3,\n"
            "                       \"Describe this video.\" with --video, \"caption en\" for\n"
            "                       PaliGemma); PaliGemma \"detect A ; B\" and \"segment A\"\n"
            "                       answers are followed by one \"box: x0 y0 x1 y1 label\" line\n"
            "                       per box, in pixels of the original image\n"
            "      --no-chat        Gemma 3: no chat turn markers around the prompt (for the\n"
            "                       pretrained -pt models); default: the -it chat template\n"
            "  -n, --n-predict N    answer tokens at most (default 128); stops earlier at <eos>\n"
            "                       (and, in a chat, <end_of_turn>)\n"
            "  -t, --threads N      threads (0 or unset: one a physical core on Linux, else\n"
            "                       one a CPU); at most one a usable CPU: more would only\n"
            "                       wait on each other\n"
            "      --ctx N          context positions (default: 4096, or more when the prompt\n"
            "                       and -n need it, up to %d)\n"
            "      --temp T         sample at temperature T (top-k 40, top-p 0.95);\n"
            "                       default 0: greedy\n"
            "      --seed S         the sampler's seed (default 0x5eed)\n"
            "      --print-prompt   print the prompt's token ids on stderr (\"prompt ids: ...\")\n"
            "  -v, --verbose        library log messages on stderr\n"
            "  -h, --help           this text\n"
            "\n"
            "Video prompt (Gemma 3 has no video input; the frames are images with their times,\n"
            "labelled as in Hugging Face's Gemma 3 demo, the prompt after them):\n"
            "  <start_of_turn>user\\nFrame 0.0:IMAGEFrame 0.5:IMAGE...PROMPT<end_of_turn>\\n\n"
            "  <start_of_turn>model\\n\n"
            "where IMAGE is \\n\\n<start_of_image> 256 soft tokens <end_of_image>\\n\\n and each\n"
            "time is the frame's start in seconds, rounded to 0.01 and printed as Python prints\n"
            "a float.\n"
            "\n"
            "Exit status: 0 on success, 1 on any error, 2 on bad usage.\n",
            MAX_IMAGES, DEFAULT_FRAMES, MAX_FRAMES, MAX_CTX);
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

/* Gemma 3's prompt: the turn markers (chat), each image as Gemma3Processor expands it (after
   its label, when labels is not NULL: a video frame's "Frame T:"), the prompt text. The text
   between two image tokens is tokenized as one piece, so the newlines around an image merge
   with their neighbours as in Hugging Face's tokenization. */
static gemini_result gemma3_prompt(id_list *list, const gemini_tok *tok,
                                   const gemini_model_hparams *hp, int32_t bos_id,
                                   int n_images, char *const *labels, const char *prompt,
                                   int chat)
{
    gemini_result result = GEMINI_OK;
    char *text = trimmed(prompt), *piece;
    size_t longest_label = 0;
    int k;
    for (k = 0; labels != NULL && k < n_images; k++)
        if (strlen(labels[k]) > longest_label) longest_label = strlen(labels[k]);
    if (text == NULL) return GEMINI_ERR_OUT_OF_MEMORY;
    piece = (char *)malloc(strlen(text) + longest_label + 64);
    if (piece == NULL || !id_list_push(list, bos_id, 1)) {
        free(text);
        free(piece);
        return GEMINI_ERR_OUT_OF_MEMORY;
    }
    strcpy(piece, chat ? "<start_of_turn>user\n" : "");
    for (k = 0; k < n_images; k++) {
        if (labels != NULL) strcat(piece, labels[k]);
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

/* Resizes and normalises decoded pixels as the model expects and encodes them into slot
   `slot`. */
static gemini_result encode_image(gemini_context *ctx, const gemini_model_hparams *hp,
                                  const gemini_vision_image *image, int32_t slot, float *pixels)
{
    gemini_vision_preprocess_params pre = gemini_vision_preprocess_default_params();
    gemini_result result;
    int c;
    pre.width = pre.height = hp->image_size;
    pre.filter = hp->image_resample;
    for (c = 0; c < 3; c++) {
        pre.mean[c] = hp->image_mean[c];
        pre.std[c] = hp->image_std[c];
    }
    result = gemini_vision_preprocess(image->pixels, image->width, image->height, &pre, pixels);
    if (result == GEMINI_OK)
        result = gemini_encode_image_at(ctx, slot, pixels, hp->image_size, hp->image_size);
    return result;
}

/* ---- Video frames: a Y4M file or a directory of images ------------------------------------ */

typedef struct frame_source {
    const char *path;
    gemini_vision_video *video;     /* a Y4M clip, or NULL for a directory */
    char **files;                   /* a directory: its image files' paths in name order */
    int64_t count;                  /* frames of the clip, or files */
    double fps;                     /* a directory's frames per second (--fps) */
} frame_source;

static int has_image_extension(const char *name)
{
    static const char *const extensions[] = {"png", "jpg", "jpeg", "bmp", "ppm", "pgm", "pnm"};
    const char *dot = strrchr(name, '.');
    size_t k, i;
    if (dot == NULL || name[0] == '.') return 0;
    for (k = 0; k < sizeof extensions / sizeof extensions[0]; k++) {
        const char *want = extensions[k];
        for (i = 0; want[i] && tolower((unsigned char)dot[1 + i]) == want[i]; i++) continue;
        if (want[i] == '\0' && dot[1 + i] == '\0') return 1;
    }
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds dir/name to the source's file list; 0 when out of memory. */
static int add_file(frame_source *source, const char *dir, const char *name, int64_t *capacity)
{
    char *path;
    if (source->count == *capacity) {
        int64_t grown = *capacity ? *capacity * 2 : 64;
        char **files = (char **)realloc(source->files, sizeof(char *) * (size_t)grown);
        if (files == NULL) return 0;
        source->files = files;
        *capacity = grown;
    }
    path = (char *)malloc(strlen(dir) + strlen(name) + 2);
    if (path == NULL) return 0;
    sprintf(path, "%s/%s", dir, name);
    source->files[source->count++] = path;
    return 1;
}

static int is_directory(const char *path)
{
#if defined(_WIN32)
    DWORD attributes = GetFileAttributesA(path);
    return attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY);
#else
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
#endif
}

/* The image files of a directory, sorted by name; 0 with a message on failure. */
static int list_images(frame_source *source, const char *dir)
{
    int64_t capacity = 0;
    int ok = 1;
#if defined(_WIN32)
    WIN32_FIND_DATAA entry;
    char pattern[MAX_PATH];
    HANDLE find;
    snprintf(pattern, sizeof pattern, "%s\\*", dir);
    find = FindFirstFileA(pattern, &entry);
    if (find == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "gemini-caption: cannot list the directory %s\n", dir);
        return 0;
    }
    do {
        if (!(entry.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) &&
            has_image_extension(entry.cFileName))
            ok = add_file(source, dir, entry.cFileName, &capacity);
    } while (ok && FindNextFileA(find, &entry));
    FindClose(find);
#else
    struct dirent *entry;
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "gemini-caption: cannot list the directory %s\n", dir);
        return 0;
    }
    while (ok && (entry = readdir(d)) != NULL)
        if (has_image_extension(entry->d_name))
            ok = add_file(source, dir, entry->d_name, &capacity);
    closedir(d);
#endif
    if (!ok) {
        fprintf(stderr, "gemini-caption: out of memory listing %s\n", dir);
        return 0;
    }
    if (source->count == 0) {
        fprintf(stderr, "gemini-caption: %s holds no image files (.png .jpg .jpeg .bmp .ppm "
                ".pgm .pnm)\n", dir);
        return 0;
    }
    qsort(source->files, (size_t)source->count, sizeof(char *), compare_names);
    return 1;
}

/* Opens --video PATH: a directory of frames or a Y4M file. 0 with a message on failure. */
static int source_open(frame_source *source, const char *path, double fps)
{
    memset(source, 0, sizeof *source);
    source->path = path;
    source->fps = fps;
    if (is_directory(path)) return list_images(source, path);
    if (gemini_vision_video_open(path, NULL, &source->video) != GEMINI_OK) {
        fprintf(stderr, "gemini-caption: %s\n", gemini_last_error());
        return 0;
    }
    source->count = gemini_vision_video_get_info(source->video)->frame_count;
    if (source->count < 1) {
        fprintf(stderr, "gemini-caption: %s holds no frames\n", path);
        return 0;
    }
    return 1;
}

static void source_close(frame_source *source)
{
    int64_t k;
    gemini_vision_video_close(source->video);
    for (k = 0; k < source->count && source->files != NULL; k++) free(source->files[k]);
    free(source->files);
    memset(source, 0, sizeof *source);
}

/* n frames spread evenly as gemini_vision_video_sample spreads them (floor(i * count / n)),
   with their start times in seconds. */
static void source_sample(const frame_source *source, int n, int64_t *indices, double *seconds)
{
    int i;
    if (source->video != NULL) {
        gemini_vision_video_sample(source->video, n, indices, seconds);
        return;
    }
    for (i = 0; i < n; i++) {
        indices[i] = (int64_t)i * source->count / n;
        seconds[i] = (double)indices[i] / source->fps;
    }
}

static gemini_result source_frame(frame_source *source, int64_t index,
                                  gemini_vision_image *image)
{
    if (source->video != NULL) return gemini_vision_video_frame(source->video, index, image);
    return gemini_vision_load(source->files[index], NULL, image);
}

/* A frame's label, "Frame T:", T as Python prints round(seconds, 2): 0.0, 0.04, 1.5, 12.0. */
static void frame_label(double seconds, char *out, size_t size)
{
    char number[64];
    size_t n;
    snprintf(number, sizeof number, "%.2f", seconds);
    n = strlen(number);
    while (n > 3 && number[n - 1] == '0' && number[n - 2] != '.') number[--n] = '\0';
    snprintf(out, size, "Frame %s:", number);
}

/* ---- PaliGemma detection ------------------------------------------------------------------ */

/* The answer's boxes as "box: x0 y0 x1 y1 label" lines, in pixels of a width x height image. */
static void print_boxes(const char *answer, int32_t width, int32_t height)
{
    gemini_vision_box *boxes;
    int32_t n = 0, k;
    if (gemini_vision_parse_detections(answer, width, height, NULL, 0, &n) != GEMINI_OK) return;
    boxes = (gemini_vision_box *)malloc(sizeof *boxes * (size_t)(n > 0 ? n : 1));
    if (boxes == NULL ||
        gemini_vision_parse_detections(answer, width, height, boxes, n, &n) != GEMINI_OK) {
        free(boxes);
        return;
    }
    for (k = 0; k < n; k++) {
        printf("box: %d %d %d %d", (int)boxes[k].x0, (int)boxes[k].y0, (int)boxes[k].x1,
               (int)boxes[k].y1);
        if (boxes[k].label != NULL)
            printf(" %.*s", (int)boxes[k].label_length, boxes[k].label);
        printf("\n");
    }
    fprintf(stderr, "%d box(es) in the answer, in pixels of the %dx%d image\n", (int)n,
            (int)width, (int)height);
    free(boxes);
}

/* Appends text to a growing NUL-terminated string; 0 when out of memory. */
static int append_text(char **buffer, size_t *length, size_t *capacity, const char *text,
                       size_t n)
{
    if (*length + n + 1 > *capacity) {
        size_t grown = *capacity ? *capacity : 256;
        char *bigger;
        while (grown < *length + n + 1) grown *= 2;
        bigger = (char *)realloc(*buffer, grown);
        if (bigger == NULL) return 0;
        *buffer = bigger;
        *capacity = grown;
    }
    memcpy(*buffer + *length, text, n);
    *length += n;
    (*buffer)[*length] = '\0';
    return 1;
}

static int starts_with(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* A positive integer option's value, or -1. */
static int positive(const char *value)
{
    char *end;
    long n = strtol(value, &end, 10);
    return *end == '\0' && n > 0 && n <= 1 << 30 ? (int)n : -1;
}

/* A thread count option: a whole number, 0 for the default; -1 if it is not one. */
static int thread_count(const char *value)
{
    char *end;
    long n = strtol(value, &end, 10);
    return end != value && *end == '\0' && n >= 0 && n <= 1 << 20 ? (int)n : -1;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *image_paths[MAX_IMAGES], *prompt = NULL, *video_path = NULL;
    int i, n_images = 0, n_predict = 128, generated = 0, verbose = 0, chat = 1, status = 1;
    int n_frames = DEFAULT_FRAMES, frames_given = 0, fps_given = 0, ctx_given = 0;
    int print_prompt = 0, gemma3, detect = 0;
    double fps = 1.0;
    gemini_context_params context_params = gemini_context_default_params();
    gemini_sampler_params sampler_params = gemini_sampler_default_params();
    const gemini_model_hparams *hp;
    gemini_model *model = NULL;
    gemini_context *ctx = NULL;
    gemini_sampler *sampler = NULL;
    gemini_tok *tok = NULL;
    gemini_tok_stream *stream = NULL;
    gemini_tokenizer_desc vocab;
    frame_source source;
    int64_t frame_index[MAX_FRAMES];
    double frame_seconds[MAX_FRAMES];
    char *labels[MAX_FRAMES], *answer = NULL;
    size_t answer_length = 0, answer_capacity = 0;
    gemini_vision_image image;
    int32_t image_width = 0, image_height = 0;
    id_list ids = {NULL, 0, 0};
    const char *text;
    size_t text_length;
    int32_t token, eot_id = -1;
    float *pixels = NULL, *logits = NULL;
    double t_start, t_images, t_prefill, t_decode;

    memset(&source, 0, sizeof source);
    memset(labels, 0, sizeof labels);
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
        } else if (!strcmp(arg, "--no-chat")) {
            chat = 0;
            continue;
        } else if (!strcmp(arg, "--print-prompt")) {
            print_prompt = 1;
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
        } else if (!strcmp(arg, "--video")) {
            video_path = value;
        } else if (!strcmp(arg, "--frames")) {
            n_frames = positive(value);
            frames_given = 1;
            if (n_frames < 1 || n_frames > MAX_FRAMES) {
                fprintf(stderr, "gemini-caption: --frames %s: give 1 to %d frames (each takes "
                        "one of a context's %d image slots)\n", value, MAX_FRAMES, MAX_FRAMES);
                return 2;
            }
        } else if (!strcmp(arg, "--fps")) {
            char *end;
            fps = strtod(value, &end);
            fps_given = 1;
            if (*end != '\0' || !(fps > 0.0 && fps < 1e6)) {
                fprintf(stderr, "gemini-caption: --fps %s: give frames per second above 0\n",
                        value);
                return 2;
            }
        } else if (!strcmp(arg, "-p") || !strcmp(arg, "--prompt")) {
            prompt = value;
        } else if (!strcmp(arg, "-n") || !strcmp(arg, "--n-predict")) {
            n_predict = atoi(value);
        } else if (!strcmp(arg, "-t") || !strcmp(arg, "--threads")) {
            int n_threads = thread_count(value);
            if (n_threads < 0) {
                fprintf(stderr, "gemini-caption: -t %s: not a number of threads; see --help\n",
                        value);
                return 2;
            }
            if (n_threads > 0) context_params.n_threads = n_threads;
        } else if (!strcmp(arg, "--ctx")) {
            context_params.n_ctx = atoi(value);
            ctx_given = 1;
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
    if (video_path != NULL && n_images > 0) {
        fprintf(stderr, "gemini-caption: give images (-i) or a video (--video), not both\n");
        return 2;
    }
    if (video_path == NULL && (frames_given || fps_given)) {
        fprintf(stderr, "gemini-caption: --frames and --fps go with --video\n");
        return 2;
    }
    if (model_path == NULL || (n_images == 0 && video_path == NULL) || n_predict < 1) {
        usage(stderr);
        return 2;
    }
    if (verbose) {
        gemini_set_default_log(log_to_stderr, NULL);
        context_params.log_callback = log_to_stderr;
    }

    /* the model and its tokenizer */
    t_start = now_seconds();
    if (gemini_model_load(model_path, &model) != GEMINI_OK) goto fail;
    hp = gemini_model_get_hparams(model);
    gemma3 = strcmp(hp->vision_projector, "gemma3") == 0;
    if (!hp->has_vision) {
        fprintf(stderr, "gemini-caption: %s is a %s model without a vision tower\n", model_path,
                hp->architecture);
        goto done;
    }
    if (!gemma3 && video_path != NULL) {
        fprintf(stderr, "gemini-caption: PaliGemma reads one image per prompt, so it takes no "
                "--video; use a Gemma 3 model (4B and up), or give PaliGemma one frame as -i\n");
        goto done;
    }
    if (!gemma3 && n_images > 1) {
        fprintf(stderr, "gemini-caption: PaliGemma reads one image, %d given\n", n_images);
        goto done;
    }
    if (prompt == NULL)
        prompt = !gemma3 ? "caption en"
                         : video_path != NULL ? "Describe this video." : "Describe this image.";
    detect = !gemma3 && (starts_with(prompt, "detect ") || starts_with(prompt, "segment "));
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

    /* the video's frames: which ones, and their labels */
    if (video_path != NULL) {
        if (!source_open(&source, video_path, fps)) goto done;
        if (source.video != NULL && fps_given)
            fprintf(stderr, "gemini-caption: --fps is for a directory; %s has its own frame "
                    "rate\n", video_path);
        if (n_frames > source.count) {
            fprintf(stderr, "gemini-caption: %s has %lld frame(s); using all of them\n",
                    video_path, (long long)source.count);
            n_frames = (int)source.count;
        }
        source_sample(&source, n_frames, frame_index, frame_seconds);
        for (i = 0; i < n_frames; i++) {
            labels[i] = (char *)malloc(80);
            if (labels[i] == NULL) goto done;
            frame_label(frame_seconds[i], labels[i], 80);
        }
        n_images = n_frames;
    }

    /* the prompt */
    if ((gemma3 ? gemma3_prompt(&ids, tok, hp, vocab.bos_id, n_images,
                                video_path != NULL ? labels : NULL, prompt, chat)
                : paligemma_prompt(&ids, tok, hp, vocab.bos_id, prompt)) != GEMINI_OK)
        goto fail;
    if (print_prompt) {
        fprintf(stderr, "prompt ids:");
        for (i = 0; i < ids.n; i++) fprintf(stderr, " %d", (int)ids.ids[i]);
        fprintf(stderr, "\n");
    }

    /* context (room for the prompt and the answer, one image slot per image), sampler */
    if (!ctx_given && (int64_t)ids.n + n_predict > context_params.n_ctx)
        context_params.n_ctx = (int64_t)ids.n + n_predict < MAX_CTX ? ids.n + n_predict
                                                                    : MAX_CTX;
    if (ids.n >= context_params.n_ctx) {
        fprintf(stderr, "gemini-caption: the prompt has %d tokens, more than the context's %d "
                "positions hold%s\n", (int)ids.n, (int)context_params.n_ctx,
                ctx_given ? " (--ctx)" : "; give fewer frames or images");
        goto done;
    }
    context_params.n_images = n_images;
    if (gemini_context_create(model, &context_params, &ctx) != GEMINI_OK ||
        gemini_sampler_create(&sampler_params, hp->vocab_size, &sampler) != GEMINI_OK)
        goto fail;

    /* the images or frames: decode, resize and normalise as the model expects, encode */
    pixels = (float *)malloc(sizeof(float) * 3 * (size_t)hp->image_size * hp->image_size);
    logits = (float *)malloc(sizeof(float) * (size_t)hp->vocab_size);
    if (pixels == NULL || logits == NULL) goto done;
    for (i = 0; i < n_images; i++) {
        if ((video_path != NULL ? source_frame(&source, frame_index[i], &image)
                                : gemini_vision_load(image_paths[i], NULL, &image)) != GEMINI_OK ||
            encode_image(ctx, hp, &image, i, pixels) != GEMINI_OK) {
            gemini_vision_image_free(&image);
            goto fail;
        }
        if (video_path == NULL)
            fprintf(stderr, "image %d: %s (%dx%d)\n", i, image_paths[i], (int)image.width,
                    (int)image.height);
        else if (source.video != NULL)
            fprintf(stderr, "frame %d: %s frame %lld, %s (%dx%d)\n", i, video_path,
                    (long long)frame_index[i], labels[i], (int)image.width, (int)image.height);
        else
            fprintf(stderr, "frame %d: %s, %s (%dx%d)\n", i, source.files[frame_index[i]],
                    labels[i], (int)image.width, (int)image.height);
        image_width = image.width;
        image_height = image.height;
        gemini_vision_image_free(&image);
    }
    t_images = now_seconds() - t_start;

    /* prefill (PaliGemma: all of it one prefix; Gemma 3: the images bidirectional), answer */
    t_prefill = now_seconds();
    if (gemini_decode_prefix(ctx, ids.ids, ids.n, gemma3 ? 0 : ids.n, logits, 0) != GEMINI_OK)
        goto fail;
    t_prefill = now_seconds() - t_prefill;
    t_decode = now_seconds();
    while (generated < n_predict) {
        gemini_sample(sampler, logits, &token);
        if (token == vocab.eos_id || token == eot_id) break;
        if (gemini_tok_stream_push(stream, token, &text, &text_length) == GEMINI_OK) {
            fwrite(text, 1, text_length, stdout);
            if (detect && !append_text(&answer, &answer_length, &answer_capacity, text,
                                       text_length))
                goto done;
        }
        fflush(stdout);
        if (++generated == n_predict) break;
        if (gemini_decode(ctx, &token, 1, logits, 0) != GEMINI_OK) goto fail;
    }
    t_decode = now_seconds() - t_decode;
    if (gemini_tok_stream_flush(stream, &text, &text_length) == GEMINI_OK) {
        fwrite(text, 1, text_length, stdout);
        if (detect && !append_text(&answer, &answer_length, &answer_capacity, text, text_length))
            goto done;
    }
    printf("\n");
    fflush(stdout); /* the answer's end before the figures on stderr, also through a pipe */

    /* PaliGemma "detect ..." / "segment ...": the boxes in the original image's pixels */
    if (detect) print_boxes(answer != NULL ? answer : "", image_width, image_height);
    fprintf(stderr, "%d %s encoded, with loading, in %.2f s; prompt %d tokens in %.2f s; "
            "%d answer tokens in %.2f s; %d thread(s)\n", n_images,
            video_path != NULL ? "frame(s)" : "image(s)", t_images, (int)ids.n, t_prefill,
            generated, t_decode, (int)gemini_context_threads(ctx));
    status = 0;
    goto done;

fail:
    fprintf(stderr, "gemini-caption: %s\n", gemini_last_error());
done:
    for (i = 0; i < MAX_FRAMES; i++) free(labels[i]);
    source_close(&source);
    free(answer);
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
