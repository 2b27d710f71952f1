/* gemini-transcribe - speech to text with a Whisper model in the .gemini format.

       gemini-transcribe -m whisper-base-f16.gemini -f speech.wav -osrt

   Prints each segment's text on stdout as it is decoded; progress (for audio over 30 s) and
   the real-time factor go to stderr. -otxt/-osrt/-ovtt/-otsv/-ojson write files named after
   the audio (or -of BASE) in the formats of openai/whisper's writers.

   Build: cc -std=c99 -O2 -I. examples/gemini-transcribe.c -o build/gemini-transcribe -lm -lpthread

   Decoding follows openai/whisper's transcribe(): language detection on the first 30 s,
   timestamp tokens, beam search (5 beams, as its command line) at temperature 0, and on a
   failed window (gzip ratio above 2.4, average log probability under -1) sampling at 0.2,
   0.4, ... 1.0 with 5 candidates each. The audio may be any WAV that gemini_audio.h reads; it
   is mixed to mono and resampled to 16 kHz.
*/
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#define GEMINI_IMPLEMENTATION
#define GEMINI_AUDIO_IMPLEMENTATION
#include "gemini.h"
#include "gemini_audio.h"

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
            "usage: gemini-transcribe -m MODEL.gemini -f AUDIO.wav [options]\n"
            "\n"
            "  -m, --model FILE        the Whisper .gemini model (required)\n"
            "  -f, --file FILE         the audio, a WAV file of any rate and channel count\n"
            "                          (required)\n"
            "  -l, --language LANG     spoken language code (en, de, ...) or auto (default:\n"
            "                          auto, detected from the first 30 s; English-only models\n"
            "                          always use en)\n"
            "      --translate         translate to English instead of transcribing\n"
            "  -t, --threads N         threads (0 or unset: one a physical core on Linux, else\n"
            "                          one a CPU); at most one a usable CPU: more would only\n"
            "                          wait on each other\n"
            "      --kv-type TYPE      decoder KV cache element type: f32 (default), f16 or\n"
            "                          bf16 (half the memory and a little faster; keys and\n"
            "                          values rounded as they are stored)\n"
            "      --beam N            beams at temperature 0; 0 or 1 = greedy (default 5)\n"
            "      --best-of N         candidates sampled at temperature > 0 (default 5)\n"
            "      --temperature T     first temperature; failed windows retry at T + 0.2,\n"
            "                          ... up to 1.0 (default 0)\n"
            "      --no-fallback       only the first temperature, no retries\n"
            "      --prompt TEXT       text that prompts the first window (names, spelling)\n"
            "      --no-prev           do not prompt a window with the previous text\n"
            "      --silence-db DB     skip 30 s windows with no 0.1 s block at or above DB\n"
            "                          dBFS RMS, undecoded (default -60; off: no gate)\n"
            "      --no-timestamps     decode without timestamp tokens (one segment per 30 s)\n"
            "      --timestamps        print [start --> end] before each segment on stdout\n"
            "  -otxt, -osrt, -ovtt, -otsv, -ojson\n"
            "                          write BASE.txt, .srt, .vtt, .tsv, .json (several may be\n"
            "                          given)\n"
            "  -of, --output BASE      output file name without extension (default: the audio\n"
            "                          file's name without its extension)\n"
            "  -q, --quiet             no segments on stdout, no progress\n"
            "  -v, --verbose           print library log messages to stderr\n"
            "  -h, --help              show this help\n");
}

static void log_to_stderr(gemini_log_level level, const char *message, void *user_data)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    (void)user_data;
    fprintf(stderr, "[gemini %s] %s\n", names[level], message);
}

typedef struct printer {
    int timestamps, quiet;
    double total_seconds;
} printer;

static void print_segment(void *user, const gemini_whisper_segment *segment, int32_t index)
{
    const printer *p = (const printer *)user;
    const char *text = segment->text;
    size_t len;
    (void)index;
    if (p->quiet) return;
    while (*text == ' ') text++;
    len = strlen(text);
    while (len > 0 && text[len - 1] == ' ') len--;
    if (p->timestamps) {
        char a[32], b[32];
        gemini_whisper_format_timestamp(segment->start, 0, '.', a, sizeof a);
        gemini_whisper_format_timestamp(segment->end, 0, '.', b, sizeof b);
        printf("[%s --> %s] %.*s\n", a, b, (int)len, text);
    } else if (len > 0) {
        printf("%.*s\n", (int)len, text);
    }
    fflush(stdout);
}

static void print_progress(void *user, double done, double total)
{
    const printer *p = (const printer *)user;
    if (p->quiet || total <= 30.0) return;
    fprintf(stderr, "gemini-transcribe: %.1f / %.1f s (%.0f%%)\n", done, total,
            100.0 * done / total);
}

/* Writes the result in one format to BASE.EXT; returns 0 on success. */
static int write_output(const gemini_whisper_result *result, gemini_whisper_format_kind kind,
                        const char *base, const char *extension)
{
    char *text, *path;
    size_t length = 0;
    FILE *file;
    int ok;
    if (gemini_whisper_format(result, kind, NULL, 0, &length) != GEMINI_OK) {
        fprintf(stderr, "gemini-transcribe: %s\n", gemini_last_error());
        return 1;
    }
    text = (char *)malloc(length + 1);
    path = (char *)malloc(strlen(base) + strlen(extension) + 2);
    if (!text || !path ||
        gemini_whisper_format(result, kind, text, length + 1, &length) != GEMINI_OK) {
        fprintf(stderr, "gemini-transcribe: cannot format the %s output\n", extension);
        free(text);
        free(path);
        return 1;
    }
    sprintf(path, "%s.%s", base, extension);
    file = fopen(path, "wb");
    ok = file != NULL && fwrite(text, 1, length, file) == length;
    if (file != NULL && fclose(file) != 0) ok = 0;
    if (!ok) fprintf(stderr, "gemini-transcribe: cannot write %s\n", path);
    else fprintf(stderr, "gemini-transcribe: wrote %s\n", path);
    free(text);
    free(path);
    return ok ? 0 : 1;
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
    static const char *extensions[5] = {"txt", "srt", "vtt", "tsv", "json"};
    const char *model_path = NULL, *audio_path = NULL, *output_base = NULL;
    int outputs[5] = {0, 0, 0, 0, 0}, verbose = 0, fallback = 1, status = 1, i, k;
    float first_temperature = 0.0f, temperatures[16];
    int32_t n_temperatures = 0;
    gemini_whisper_params params = gemini_whisper_default_params();
    printer out = {0, 0, 0.0};
    gemini_model *model = NULL;
    gemini_whisper_result *result = NULL;
    gemini_audio audio;
    gemini_result r;
    char *base = NULL;
    double t_start, t_loaded, t_done;

    memset(&audio, 0, sizeof audio);
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = 1, matched_output = 0;
        for (k = 0; k < 5; k++)
            if (arg[0] == '-' && arg[1] == 'o' && !strcmp(arg + 2, extensions[k])) {
                outputs[k] = 1;
                matched_output = 1;
            }
        if (matched_output) continue;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(arg, "--translate")) {
            params.task = GEMINI_WHISPER_TRANSLATE;
            takes_value = 0;
        } else if (!strcmp(arg, "--no-fallback")) {
            fallback = 0;
            takes_value = 0;
        } else if (!strcmp(arg, "--no-prev")) {
            params.condition_on_previous_text = 0;
            takes_value = 0;
        } else if (!strcmp(arg, "--no-timestamps")) {
            params.timestamps = 0;
            takes_value = 0;
        } else if (!strcmp(arg, "--timestamps")) {
            out.timestamps = 1;
            takes_value = 0;
        } else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
            out.quiet = 1;
            takes_value = 0;
        } else if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
            verbose = 1;
            takes_value = 0;
        } else if (value == NULL) {
            fprintf(stderr, "gemini-transcribe: %s needs a value (or is unknown); see --help\n",
                    arg);
            return 2;
        } else if (!strcmp(arg, "-m") || !strcmp(arg, "--model")) {
            model_path = value;
        } else if (!strcmp(arg, "-f") || !strcmp(arg, "--file")) {
            audio_path = value;
        } else if (!strcmp(arg, "-l") || !strcmp(arg, "--language")) {
            params.language = value;
        } else if (!strcmp(arg, "-t") || !strcmp(arg, "--threads")) {
            int n_threads = thread_count(value);
            if (n_threads < 0) {
                fprintf(stderr, "gemini-transcribe: -t %s: not a number of threads; see --help\n",
                        value);
                return 2;
            }
            if (n_threads > 0) params.n_threads = n_threads;
        } else if (!strcmp(arg, "--kv-type")) {
            gemini_type kv_type;
            if (!gemini_type_from_name(value, &kv_type) || kv_type > GEMINI_TYPE_BF16) {
                fprintf(stderr, "gemini-transcribe: --kv-type %s: not f32, f16 or bf16\n", value);
                return 2;
            }
            params.kv_type = (int32_t)kv_type;
        } else if (!strcmp(arg, "--beam")) {
            params.beam_size = atoi(value);
        } else if (!strcmp(arg, "--best-of")) {
            params.best_of = atoi(value);
        } else if (!strcmp(arg, "--temperature")) {
            first_temperature = (float)atof(value);
        } else if (!strcmp(arg, "--silence-db")) {
            params.silence_db = !strcmp(value, "off") ? (float)NAN : (float)atof(value);
        } else if (!strcmp(arg, "--prompt")) {
            params.initial_prompt = value;
        } else if (!strcmp(arg, "-of") || !strcmp(arg, "--output")) {
            output_base = value;
        } else {
            fprintf(stderr, "gemini-transcribe: unknown option %s; see --help\n", arg);
            return 2;
        }
        if (takes_value) i++;
    }
    if (model_path == NULL || audio_path == NULL) {
        fprintf(stderr, "gemini-transcribe: -m MODEL and -f AUDIO are required\n\n");
        usage(stderr);
        return 2;
    }
    if (!(first_temperature >= 0.0f && first_temperature <= 1.0f) || params.beam_size < 0 ||
        params.beam_size > GEMINI_WHISPER_MAX_SLOTS || params.best_of < 0 ||
        params.best_of > GEMINI_WHISPER_MAX_SLOTS || params.n_threads < 0) {
        fprintf(stderr, "gemini-transcribe: --temperature wants 0 .. 1, --beam and --best-of "
                "0 .. %d, --threads >= 0\n", GEMINI_WHISPER_MAX_SLOTS);
        return 2;
    }

    /* The temperatures, as the reference's command line makes them: arange(T, 1.0, 0.2). */
    temperatures[n_temperatures++] = first_temperature;
    while (fallback && n_temperatures < 16 &&
           first_temperature + 0.2f * (float)n_temperatures <= 1.0f + 1e-6f) {
        temperatures[n_temperatures] = first_temperature + 0.2f * (float)n_temperatures;
        n_temperatures++;
    }
    params.temperatures = temperatures;
    params.n_temperatures = n_temperatures;
    if (verbose) gemini_set_default_log(log_to_stderr, NULL);

    /* The audio: any WAV, mixed to mono, at 16 kHz. */
    t_start = now_seconds();
    r = gemini_audio_load_wav(audio_path, &audio);
    if (r == GEMINI_OK) r = gemini_audio_resample_to(&audio, GEMINI_AUDIO_SAMPLE_RATE);
    if (r != GEMINI_OK) {
        fprintf(stderr, "gemini-transcribe: cannot read %s: %s\n", audio_path,
                gemini_last_error());
        goto done;
    }
    if (audio.truncated)
        fprintf(stderr, "gemini-transcribe: warning: %s ends early; transcribing the %.2f s "
                "present\n", audio_path, (double)audio.n_samples / GEMINI_AUDIO_SAMPLE_RATE);

    r = gemini_model_load(model_path, &model);
    if (r != GEMINI_OK) {
        fprintf(stderr, "gemini-transcribe: cannot load %s: %s\n", model_path,
                gemini_last_error());
        goto done;
    }
    t_loaded = now_seconds();

    out.total_seconds = (double)audio.n_samples / GEMINI_AUDIO_SAMPLE_RATE;
    params.on_segment = print_segment;
    params.progress = print_progress;
    params.user_data = &out;
    r = gemini_whisper_transcribe(model, audio.samples, audio.n_samples, &params, &result);
    if (r != GEMINI_OK) {
        fprintf(stderr, "gemini-transcribe: %s: %s\n", model_path, gemini_last_error());
        goto done;
    }
    t_done = now_seconds();

    /* Output files. */
    if (output_base == NULL) {
        const char *slash = strrchr(audio_path, '/'), *dot = strrchr(audio_path, '.');
        size_t length = dot && (!slash || dot > slash) ? (size_t)(dot - audio_path)
                                                       : strlen(audio_path);
        base = (char *)malloc(length + 1);
        if (base == NULL) goto done;
        memcpy(base, audio_path, length);
        base[length] = '\0';
        output_base = base;
    }
    status = 0;
    for (k = 0; k < 5; k++)
        if (outputs[k] &&
            write_output(result, (gemini_whisper_format_kind)k, output_base, extensions[k]))
            status = 1;

    {
        float prob = gemini_whisper_result_language_prob(result);
        double transcribe_seconds = t_done - t_loaded;
        if (prob == prob)
            fprintf(stderr, "gemini-transcribe: language %s (p = %.2f)\n",
                    gemini_whisper_result_language(result), (double)prob);
        fprintf(stderr, "gemini-transcribe: %.2f s of audio in %.2f s (model load %.2f s): "
                "real-time factor %.3f\n", out.total_seconds, transcribe_seconds,
                t_loaded - t_start,
                out.total_seconds > 0 ? transcribe_seconds / out.total_seconds : 0.0);
    }

done:
    gemini_whisper_result_free(result);
    gemini_model_free(model);
    gemini_audio_free(&audio);
    free(base);
    return status;
}
