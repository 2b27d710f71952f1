/* gemini-generate - generate text with a Gemma model in the .gemini format.

       gemini-generate -m MODEL.gemini -p "The capital of France is" -n 32

   Streams the generated text to stdout; load time, prefill and decode speed go to stderr.

   Build: cc -std=c99 -O2 -I. examples/gemini-generate.c -o build/gemini-generate -lm -lpthread

   The prompt is tokenized with the tokenizer stored in the model (gemini_tokenizer.h), BOS
   first when the model asks for it. With --chat the Gemma turn markers in the prompt are parsed
   as their special tokens; without it the prompt is plain text. Output text is streamed with
   gemini_tok_stream, so a character split over several byte tokens is printed whole.
*/
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#define GEMINI_IMPLEMENTATION
#include "gemini.h"

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

/* ---- command line --------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gemini-generate -m MODEL.gemini (-p PROMPT | -f PROMPT_FILE) [options]\n"
            "\n"
            "  -m, --model FILE        the .gemini model (required)\n"
            "  -p, --prompt TEXT       the prompt\n"
            "  -f, --file FILE         read the prompt from FILE\n"
            "  -n, --n-predict N       tokens to generate (default 128)\n"
            "  -t, --threads N         threads (0 or unset: one a physical core on Linux, else\n"
            "                          one a CPU); at most one a usable CPU: more would only\n"
            "                          wait on each other\n"
            "      --ctx N             context size in tokens (default 4096, max 32768)\n"
            "      --kv-type TYPE      KV cache element type: f32 (default), f16 or bf16;\n"
            "                          f16 and bf16 halve the cache and round keys and values\n"
            "      --temp T            temperature; 0 = greedy (default 0.8)\n"
            "      --top-k K           keep the K most likely tokens; 0 = all (default 40)\n"
            "      --top-p P           nucleus sampling threshold (default 0.95)\n"
            "      --min-p P           drop tokens below P * p(best) (default 0.05)\n"
            "      --repeat-penalty R  penalty for tokens in the last 64 (default 1.0 = off)\n"
            "      --seed S            random seed (default 0x5eed)\n"
            "      --chat              wrap the prompt in the Gemma chat template; stop at\n"
            "                          <end_of_turn>\n"
            "  -v, --verbose           print library log messages to stderr\n"
            "  -h, --help              show this help\n");
}

static void log_to_stderr(gemini_log_level level, const char *message, void *user_data)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    (void)user_data;
    fprintf(stderr, "[gemini %s] %s\n", names[level], message);
}

static char *read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    char *text;
    long size;
    if (file == NULL) return NULL;
    if (fseek(file, 0, SEEK_END) != 0 || (size = ftell(file)) < 0 || fseek(file, 0, SEEK_SET)) {
        fclose(file);
        return NULL;
    }
    text = (char *)malloc((size_t)size + 1);
    if (text != NULL && fread(text, 1, (size_t)size, file) != (size_t)size) {
        free(text);
        text = NULL;
    }
    if (text != NULL) text[size] = '\0';
    fclose(file);
    return text;
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
    const char *model_path = NULL, *prompt_arg = NULL, *prompt_path = NULL;
    int32_t n_predict = 128, n_prompt, eot_id = -1, generated = 0, token, i;
    int chat = 0, verbose = 0, status = 1;
    gemini_context_params context_params = gemini_context_default_params();
    gemini_sampler_params sampler_params = gemini_sampler_default_params();
    gemini_model *model = NULL;
    gemini_context *ctx = NULL;
    gemini_sampler *sampler = NULL;
    gemini_result result;
    gemini_tok *tok = NULL;
    gemini_tok_stream *stream = NULL;
    gemini_tokenizer_desc vocab;
    const char *text;
    size_t text_length;
    uint32_t encode_flags = 0;
    char *prompt = NULL, *file_text = NULL;
    int32_t *ids = NULL, max_ids;
    float *logits = NULL;
    double t_start, t_loaded, t_prefilled, t_done;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = 1;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(arg, "--chat")) {
            chat = 1;
            takes_value = 0;
        } else if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
            verbose = 1;
            takes_value = 0;
        } else if (value == NULL) {
            fprintf(stderr, "gemini-generate: %s needs a value (or is unknown); see --help\n",
                    arg);
            return 2;
        } else if (!strcmp(arg, "-m") || !strcmp(arg, "--model")) {
            model_path = value;
        } else if (!strcmp(arg, "-p") || !strcmp(arg, "--prompt")) {
            prompt_arg = value;
        } else if (!strcmp(arg, "-f") || !strcmp(arg, "--file")) {
            prompt_path = value;
        } else if (!strcmp(arg, "-n") || !strcmp(arg, "--n-predict")) {
            n_predict = atoi(value);
        } else if (!strcmp(arg, "-t") || !strcmp(arg, "--threads")) {
            int n_threads = thread_count(value);
            if (n_threads < 0) {
                fprintf(stderr, "gemini-generate: -t %s: not a number of threads; see --help\n",
                        value);
                return 2;
            }
            if (n_threads > 0) context_params.n_threads = n_threads;
        } else if (!strcmp(arg, "--ctx")) {
            context_params.n_ctx = atoi(value);
        } else if (!strcmp(arg, "--kv-type")) {
            if (!gemini_type_from_name(value, &context_params.kv_type) ||
                context_params.kv_type > GEMINI_TYPE_BF16) {
                fprintf(stderr, "gemini-generate: --kv-type %s: not f32, f16 or bf16\n", value);
                return 2;
            }
        } else if (!strcmp(arg, "--temp")) {
            sampler_params.temperature = (float)atof(value);
        } else if (!strcmp(arg, "--top-k")) {
            sampler_params.top_k = atoi(value);
        } else if (!strcmp(arg, "--top-p")) {
            sampler_params.top_p = (float)atof(value);
        } else if (!strcmp(arg, "--min-p")) {
            sampler_params.min_p = (float)atof(value);
        } else if (!strcmp(arg, "--repeat-penalty")) {
            sampler_params.repetition_penalty = (float)atof(value);
        } else if (!strcmp(arg, "--seed")) {
            sampler_params.seed = strtoull(value, NULL, 0);
        } else {
            fprintf(stderr, "gemini-generate: unknown option %s; see --help\n", arg);
            return 2;
        }
        if (takes_value) i++;
    }
    if (model_path == NULL || (prompt_arg == NULL && prompt_path == NULL)) {
        usage(stderr);
        return 2;
    }
    if (verbose) {
        gemini_set_default_log(log_to_stderr, NULL);
        context_params.log_callback = log_to_stderr;
    }

    /* the prompt text */
    if (prompt_path != NULL) {
        file_text = read_file(prompt_path);
        if (file_text == NULL) {
            fprintf(stderr, "gemini-generate: cannot read %s\n", prompt_path);
            return 1;
        }
        prompt_arg = file_text;
    }
    if (chat) {
        size_t length = 0;
        gemini_chat_user_turn(prompt_arg, NULL, 0, &length);
        prompt = (char *)malloc(length + 1);
        if (prompt == NULL || gemini_chat_user_turn(prompt_arg, prompt, length + 1, NULL)) {
            fprintf(stderr, "gemini-generate: %s\n", gemini_last_error());
            goto done;
        }
    } else {
        prompt = (char *)malloc(strlen(prompt_arg) + 1);
        if (prompt == NULL) goto done;
        strcpy(prompt, prompt_arg);
    }

    /* model, tokenizer, context, sampler */
    t_start = now_seconds();
    result = gemini_model_load(model_path, &model);
    if (result != GEMINI_OK) {
        fprintf(stderr, "gemini-generate: %s\n", gemini_last_error());
        goto done;
    }
    t_loaded = now_seconds();
    if (gemini_model_tokenizer(model, &tok) != GEMINI_OK ||
        gemini_model_tokenizer_desc(model, &vocab) != GEMINI_OK ||
        gemini_tok_stream_create(tok, &stream) != GEMINI_OK) {
        fprintf(stderr, "gemini-generate: the model has no usable tokenizer: %s\n",
                gemini_last_error());
        goto done;
    }
    eot_id = vocab.eot_id >= 0 ? vocab.eot_id : gemini_tok_id_of(tok, "<end_of_turn>", 13);
    if (vocab.add_bos)
        encode_flags |= GEMINI_TOK_ADD_BOS;
    if (chat)
        encode_flags |= GEMINI_TOK_PARSE_SPECIAL;
    result = gemini_context_create(model, &context_params, &ctx);
    if (result == GEMINI_OK)
        result = gemini_sampler_create(&sampler_params, gemini_model_vocab_size(model), &sampler);
    if (result != GEMINI_OK) {
        fprintf(stderr, "gemini-generate: %s\n", gemini_last_error());
        goto done;
    }
    logits = (float *)malloc(sizeof(float) * (size_t)gemini_model_vocab_size(model));
    if (logits == NULL) goto done;

    /* the prompt's ids: count them first, then encode */
    if (gemini_tok_encode(tok, prompt, strlen(prompt), encode_flags, NULL, 0, &max_ids) !=
            GEMINI_OK ||
        (ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)(max_ids + 1))) == NULL ||
        gemini_tok_encode(tok, prompt, strlen(prompt), encode_flags, ids, max_ids, &n_prompt) !=
            GEMINI_OK) {
        fprintf(stderr, "gemini-generate: cannot tokenize the prompt: %s\n", gemini_last_error());
        goto done;
    }
    if (n_prompt < 1) {
        fprintf(stderr, "gemini-generate: the prompt encodes to no tokens\n");
        goto done;
    }
    fprintf(stderr, "model %s: %s, loaded in %.2f s; prompt %d tokens; %d thread%s; %s\n",
            model_path, gemini_model_architecture(model), t_loaded - t_start, n_prompt,
            (int)gemini_context_threads(ctx), gemini_context_threads(ctx) == 1 ? "" : "s",
            gemini_cpu_features());

    /* prefill */
    for (i = 0; i < n_prompt; i++) gemini_sampler_accept(sampler, ids[i]);
    if (!chat) fputs(prompt_arg, stdout);
    fflush(stdout);
    t_prefilled = now_seconds();
    result = gemini_decode(ctx, ids, n_prompt, logits, 0);
    if (result != GEMINI_OK) {
        fprintf(stderr, "\ngemini-generate: %s\n", gemini_last_error());
        goto done;
    }
    t_prefilled = now_seconds() - t_prefilled;

    /* decode: sample, print, feed back */
    t_done = now_seconds();
    while (generated < n_predict) {
        gemini_sample(sampler, logits, &token);
        if (token == vocab.eos_id || (chat && token == eot_id)) break;
        if (gemini_tok_stream_push(stream, token, &text, &text_length) == GEMINI_OK)
            fwrite(text, 1, text_length, stdout);
        fflush(stdout);
        generated++;
        if (generated == n_predict) break;
        result = gemini_decode(ctx, &token, 1, logits, 0);
        if (result == GEMINI_ERR_CONTEXT_FULL) {
            fprintf(stderr, "\n[context full]\n");
            break;
        }
        if (result != GEMINI_OK) {
            fprintf(stderr, "\ngemini-generate: %s\n", gemini_last_error());
            goto done;
        }
    }
    t_done = now_seconds() - t_done;
    if (gemini_tok_stream_flush(stream, &text, &text_length) == GEMINI_OK)
        fwrite(text, 1, text_length, stdout);
    printf("\n");
    fflush(stdout); /* the text's end before the figures on stderr, also through a pipe */
    fprintf(stderr, "prefill: %d tokens in %.2f s (%.1f tokens/s)\n", n_prompt, t_prefilled,
            n_prompt / (t_prefilled > 0 ? t_prefilled : 1e-9));
    fprintf(stderr, "decode: %d tokens in %.2f s (%.1f tokens/s)\n", generated, t_done,
            generated / (t_done > 0 ? t_done : 1e-9));
    status = 0;

done:
    free(ids);
    free(logits);
    free(prompt);
    free(file_text);
    gemini_tok_stream_free(stream);
    gemini_tok_free(tok);
    gemini_sampler_free(sampler);
    gemini_context_free(ctx);
    gemini_model_free(model);
    return status;
}
