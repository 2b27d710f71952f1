/* test_audio.c - tests of gemini_audio.h: WAV decoding (every format, hostile headers, random
   corruption, failing allocations), the resampler, the FFT and the Whisper log-mel front end
   against reference fixtures. Build it with -fsanitize=address,undefined too: the corruption
   and allocation checks count for most there.

   The fixtures in tests/audio come from tools/make_audio_fixtures.py (espeak-ng speech, sox
   conversions, Hugging Face WhisperFeatureExtractor, soxr). Run from the repository root, or
   set GEMINI_AUDIO_FIXTURES to the folder. Prints one line per check and ends with
   "N passed, M failed"; exits nonzero on any failure.

       gcc -std=c99 -O2 -Wall -Wextra -pedantic -I. tests/test_audio.c -o build/test_audio -lm
*/
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A counting allocator that can fail on purpose: alloc_budget allocations succeed, then every
   one fails (-1: never fail). live_allocations finds leaks on error paths. */
static long alloc_budget = -1, live_allocations = 0;

static void *test_malloc(size_t size)
{
    void *p;
    if (alloc_budget == 0) return NULL;
    if (alloc_budget > 0) alloc_budget--;
    p = malloc(size);
    if (p) live_allocations++;
    return p;
}

static void *test_realloc(void *old, size_t size)
{
    void *p;
    if (alloc_budget == 0) return NULL;
    if (alloc_budget > 0) alloc_budget--;
    p = realloc(old, size);
    if (p && !old) live_allocations++;
    return p;
}

static void test_free(void *p)
{
    if (p) live_allocations--;
    free(p);
}

#define GEMINI_MALLOC(size) test_malloc(size)
#define GEMINI_REALLOC(p, size) test_realloc(p, size)
#define GEMINI_FREE(p) test_free(p)
#define GEMINI_AUDIO_IMPLEMENTATION
#include "gemini_audio.h"

#define PI 3.14159265358979323846

static int tests_passed = 0, tests_failed = 0;

static void check(int ok, const char *name, const char *detail)
{
    if (ok) tests_passed++;
    else tests_failed++;
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, detail[0] ? ": " : "", detail);
}

/* ---- a WAV writer for synthetic files ------------------------------------------------------ */

typedef struct bytes {
    unsigned char data[1 << 16];
    size_t len;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->len + n > sizeof b->data) abort();
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u16(bytes *b, unsigned v)
{
    unsigned char p[2];
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    put(b, p, 2);
}

static void put_u32(bytes *b, uint32_t v)
{
    unsigned char p[4];
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
    put(b, p, 4);
}

/* A chunk with its pad byte when the size is odd. */
static void put_chunk(bytes *b, const char *id, const void *body, uint32_t size)
{
    put(b, id, 4);
    put_u32(b, size);
    put(b, body, size);
    if (size & 1u) put(b, "", 1);
}

static void fmt_body(bytes *f, unsigned tag, unsigned channels, uint32_t rate, unsigned bits,
                     int extensible)
{
    static const unsigned char guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                                0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    unsigned block = channels * (bits / 8);
    f->len = 0;
    put_u16(f, extensible ? 0xFFFE : tag);
    put_u16(f, channels);
    put_u32(f, rate);
    put_u32(f, rate * block);
    put_u16(f, block);
    put_u16(f, bits);
    if (extensible) {
        put_u16(f, 22);
        put_u16(f, bits);
        put_u32(f, 0);
        put_u16(f, tag);
        put(f, guid_tail, sizeof guid_tail);
    }
}

enum { ORDER_PLAIN, ORDER_LIST_FIRST, ORDER_FMT_AFTER_DATA, ORDER_ODD_JUNK };

/* A complete file; the RIFF size is right. */
static void make_wav(bytes *b, const bytes *fmt, const void *data, uint32_t data_size, int order)
{
    static const char list[] = "INFOISFT\x05\0\0\0test\0";   /* 17 bytes: odd */
    bytes body;
    body.len = 0;
    if (order == ORDER_LIST_FIRST) put_chunk(&body, "LIST", list, sizeof list - 1);
    if (order != ORDER_FMT_AFTER_DATA) put_chunk(&body, "fmt ", fmt->data, (uint32_t)fmt->len);
    if (order == ORDER_ODD_JUNK) put_chunk(&body, "junk", "abc", 3);
    put_chunk(&body, "data", data, data_size);
    if (order == ORDER_FMT_AFTER_DATA) put_chunk(&body, "fmt ", fmt->data, (uint32_t)fmt->len);
    b->len = 0;
    put(b, "RIFF", 4);
    put_u32(b, (uint32_t)(body.len + 4));
    put(b, "WAVE", 4);
    put(b, body.data, body.len);
}

/* ---- small helpers ------------------------------------------------------------------------ */

static const char *fixture_dir(void)
{
    const char *dir = getenv("GEMINI_AUDIO_FIXTURES");
    return dir && dir[0] ? dir : "tests/audio";
}

/* Reads a whole file; NULL when it cannot. */
static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    long n;
    void *data;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc(n > 0 ? (size_t)n : 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

/* Little-endian float32 file into floats (the fixtures are written little-endian). */
static float *read_f32(const char *path, size_t *count)
{
    size_t size, i;
    unsigned char *raw = (unsigned char *)read_file(path, &size);
    float *values;
    if (!raw) return NULL;
    *count = size / 4;
    values = (float *)malloc((*count ? *count : 1) * sizeof *values);
    for (i = 0; values && i < *count; i++) {
        uint32_t u = (uint32_t)raw[4 * i] | ((uint32_t)raw[4 * i + 1] << 8) |
                     ((uint32_t)raw[4 * i + 2] << 16) | ((uint32_t)raw[4 * i + 3] << 24);
        memcpy(&values[i], &u, 4);
    }
    free(raw);
    return values;
}

static double snr_db(const float *ref, const float *x, size_t n)
{
    double signal = 0.0, noise = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        signal += (double)ref[i] * ref[i];
        noise += ((double)ref[i] - x[i]) * ((double)ref[i] - x[i]);
    }
    return 10.0 * log10(signal / (noise > 1e-300 ? noise : 1e-300));
}

static double now_seconds(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

static uint32_t rng_state = 12345u;

static uint32_t rng_next(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

/* ---- WAV decoding: formats ------------------------------------------------------------------ */

/* Frames of 2 channels with known values, written in each format and decoded again. */
static void test_formats(void)
{
    static const double left[4] = {0.5, -0.25, -1.0, 0.75};
    static const double right[4] = {-0.5, 0.25, 0.5, -0.75};
    static const unsigned bits_of[6] = {8, 16, 24, 32, 32, 64};
    static const unsigned tag_of[6] = {1, 1, 1, 1, 3, 3};
    int variant;

    for (variant = 0; variant < 6 * 2 * 4; variant++) {
        int which = variant % 6, extensible = (variant / 6) % 2, order = variant / 12;
        unsigned bits = bits_of[which], tag = tag_of[which], bytes_per = bits / 8;
        bytes fmt, wav, data;
        gemini_audio audio;
        gemini_result r;
        double worst = 0.0;
        char name[160], detail[200];
        int f, c;

        data.len = 0;
        for (f = 0; f < 4; f++) {
            for (c = 0; c < 2; c++) {
                double v = c == 0 ? left[f] : right[f];
                unsigned char p[8];
                if (tag == 3 && bits == 32) {
                    float x = (float)v;
                    uint32_t u;
                    memcpy(&u, &x, 4);
                    put_u32(&data, u);
                    continue;
                }
                if (tag == 3) {
                    uint64_t u;
                    memcpy(&u, &v, 8);
                    put_u32(&data, (uint32_t)u);
                    put_u32(&data, (uint32_t)(u >> 32));
                    continue;
                }
                if (bits == 8) {
                    p[0] = (unsigned char)(128 + (int)(v * 128.0 < 127 ? v * 128.0 : 127));
                } else {
                    /* Two's complement of v * 2^(bits-1), little-endian. */
                    double scaled = v * ldexp(1.0, (int)bits - 1);
                    int64_t q = (int64_t)(scaled >= ldexp(1.0, (int)bits - 1)
                                              ? ldexp(1.0, (int)bits - 1) - 1 : scaled);
                    uint64_t u = (uint64_t)q;
                    unsigned i;
                    for (i = 0; i < bytes_per; i++) p[i] = (unsigned char)(u >> (8 * i));
                }
                put(&data, p, bytes_per);
            }
        }
        fmt_body(&fmt, tag, 2, 22050, bits, extensible);
        make_wav(&wav, &fmt, data.data, (uint32_t)data.len, order);

        r = gemini_audio_load_wav_memory(wav.data, wav.len, &audio);
        for (f = 0; r == GEMINI_OK && f < 4 && (size_t)f < audio.n_samples; f++) {
            double want = (left[f] + right[f]) / 2.0;
            double err = fabs(audio.samples[f] - want);
            if (err > worst) worst = err;
        }
        snprintf(name, sizeof name, "decode %s %u-bit%s, order %d",
                 tag == 3 ? "float" : "PCM", bits,
                extensible ? " EXTENSIBLE" : "", order);
        snprintf(detail, sizeof detail, "result %d, %u samples, %u Hz, max err %.2g %.100s", (int)r,
                (unsigned)audio.n_samples, (unsigned)audio.sample_rate, worst,
                r == GEMINI_OK ? "" : gemini_last_error());
        /* 8-bit values are exact in steps of 1/128 except the top, clamped to 127/128. */
        check(r == GEMINI_OK && audio.n_samples == 4 && audio.sample_rate == 22050 &&
              audio.channels == 2 && audio.bits_per_sample == bits && audio.format == tag &&
              !audio.truncated && worst <= (bits == 8 ? 1.0 / 256 : 1e-7), name, detail);
        gemini_audio_free(&audio);
    }
}

/* Many channels, an odd rate, 8-bit with an odd data size and its pad byte. */
static void test_layouts(void)
{
    bytes fmt, wav, data;
    gemini_audio audio;
    gemini_result r;
    char detail[200];
    int i;

    /* 7 channels of 16-bit at 11025 Hz: the mix is the mean. */
    data.len = 0;
    for (i = 0; i < 7 * 3; i++) put_u16(&data, (unsigned)(uint16_t)(int16_t)((i % 7) * 1000));
    fmt_body(&fmt, 1, 7, 11025, 16, 1);
    make_wav(&wav, &fmt, data.data, (uint32_t)data.len, ORDER_PLAIN);
    r = gemini_audio_load_wav_memory(wav.data, wav.len, &audio);
    check(r == GEMINI_OK && audio.n_samples == 3 && audio.channels == 7 &&
          audio.sample_rate == 11025 && fabs(audio.samples[2] - 3000.0 / 32768) < 1e-7,
          "7 channels at 11025 Hz mixed to the mean", gemini_last_error());
    gemini_audio_free(&audio);

    /* Mono 8-bit with 5 samples: the data chunk is odd and followed by a pad byte and a LIST. */
    fmt_body(&fmt, 1, 1, 8000, 8, 0);
    make_wav(&wav, &fmt, "\x80\xff\x00\x40\xc0", 5, ORDER_FMT_AFTER_DATA);
    r = gemini_audio_load_wav_memory(wav.data, wav.len, &audio);
    snprintf(detail, sizeof detail, "result %d, n %u", (int)r, (unsigned)audio.n_samples);
    check(r == GEMINI_OK && audio.n_samples == 5 && audio.samples[0] == 0.0f &&
          audio.samples[1] == 127.0f / 128 && audio.samples[2] == -1.0f &&
          audio.samples[4] == 0.5f, "odd data chunk before fmt, with its pad byte", detail);
    gemini_audio_free(&audio);

    /* Float samples outside [-1, 1] and NaN are clamped. */
    data.len = 0;
    {
        float values[3] = {2.0f, -3.0f, 0.0f};
        uint32_t u;
        int k;
        values[2] = (float)(0.0 * HUGE_VAL);   /* NaN, without needing C99's NAN macro */
        for (k = 0; k < 3; k++) {
            memcpy(&u, &values[k], 4);
            put_u32(&data, u);
        }
    }
    fmt_body(&fmt, 3, 1, 16000, 32, 0);
    make_wav(&wav, &fmt, data.data, (uint32_t)data.len, ORDER_PLAIN);
    r = gemini_audio_load_wav_memory(wav.data, wav.len, &audio);
    check(r == GEMINI_OK && audio.n_samples == 3 && audio.samples[0] == 1.0f &&
          audio.samples[1] == -1.0f && audio.samples[2] == 0.0f,
          "float samples clamped to [-1, 1], NaN to 0", gemini_last_error());
    gemini_audio_free(&audio);

    /* 20-bit samples in 3-byte containers decode as 24-bit (left-justified). */
    data.len = 0;
    put(&data, "\x00\x00\x40", 3);
    fmt_body(&fmt, 1, 1, 16000, 24, 1);
    fmt.data[14] = 20;
    make_wav(&wav, &fmt, data.data, (uint32_t)data.len, ORDER_PLAIN);
    r = gemini_audio_load_wav_memory(wav.data, wav.len, &audio);
    check(r == GEMINI_OK && audio.n_samples == 1 && audio.samples[0] == 0.5f,
          "20-bit PCM in 3-byte containers", gemini_last_error());
    gemini_audio_free(&audio);
}

/* ---- WAV decoding: hostile files ----------------------------------------------------------- */

static void expect_failure(const unsigned char *file, size_t size, gemini_result want,
                           const char *name, const char *must_mention)
{
    gemini_audio audio;
    gemini_result r = gemini_audio_load_wav_memory(file, size, &audio);
    char detail[700];
    snprintf(detail, sizeof detail, "result %d (%s): %.500s", (int)r, gemini_result_string(r),
            r == GEMINI_OK ? "" : gemini_last_error());
    check(r == want && audio.samples == NULL && audio.n_samples == 0 &&
          (!must_mention || strstr(gemini_last_error(), must_mention) != NULL), name, detail);
    gemini_audio_free(&audio);
}

static void test_hostile(void)
{
    static const unsigned tags[5] = {0x0002, 0x0006, 0x0007, 0x0055, 0x0011};
    static const char *tag_text[5] = {"0x0002", "0x0006", "0x0007", "0x0055", "0x0011"};
    bytes fmt, wav, good;
    gemini_audio audio;
    gemini_result r;
    unsigned char pcm[64];
    size_t cut;
    int i, crashes_avoided = 0, bad = 0;
    char detail[200];

    for (i = 0; i < 64; i++) pcm[i] = (unsigned char)(i * 37);
    fmt_body(&fmt, 1, 2, 16000, 16, 0);
    make_wav(&good, &fmt, pcm, 64, ORDER_LIST_FIRST);

    expect_failure(good.data, 0, GEMINI_ERR_FORMAT, "empty input", "too short");
    expect_failure((const unsigned char *)"RIFF\0\0\0\0WAVX", 12, GEMINI_ERR_FORMAT,
                   "not WAVE", "not a RIFF/WAVE");
    expect_failure((const unsigned char *)"RF64\xff\xff\xff\xffWAVE", 12, GEMINI_ERR_UNSUPPORTED,
                   "RF64 refused", "RF64");
    expect_failure(good.data, 12, GEMINI_ERR_FORMAT, "header only: no fmt", "no fmt");

    /* Compressed formats are refused by name. */
    for (i = 0; i < 5; i++) {
        char name[64];
        fmt_body(&fmt, tags[i], 1, 8000, 16, 0);
        make_wav(&wav, &fmt, pcm, 64, ORDER_PLAIN);
        snprintf(name, sizeof name, "format tag %s refused with its tag", tag_text[i]);
        expect_failure(wav.data, wav.len, GEMINI_ERR_UNSUPPORTED, name, tag_text[i]);
    }
    fmt_body(&fmt, 0x0055, 1, 8000, 16, 1);
    make_wav(&wav, &fmt, pcm, 64, ORDER_PLAIN);
    expect_failure(wav.data, wav.len, GEMINI_ERR_UNSUPPORTED, "EXTENSIBLE with MP3 sub-format",
                   "0x0055");
    fmt_body(&fmt, 1, 1, 8000, 16, 1);
    fmt.data[30] ^= 0xFF;   /* break the GUID tail */
    make_wav(&wav, &fmt, pcm, 64, ORDER_PLAIN);
    expect_failure(wav.data, wav.len, GEMINI_ERR_UNSUPPORTED, "EXTENSIBLE with a foreign GUID",
                   "GUID");

    /* Inconsistent fmt fields. */
    fmt_body(&fmt, 1, 0, 8000, 16, 0);
    make_wav(&wav, &fmt, pcm, 64, ORDER_PLAIN);
    expect_failure(wav.data, wav.len, GEMINI_ERR_FORMAT, "zero channels", "0 channels");
    fmt_body(&fmt, 1, 1, 0, 16, 0);
    make_wav(&wav, &fmt, pcm, 64, ORDER_PLAIN);
    expect_failure(wav.data, wav.len, GEMINI_ERR_FORMAT, "zero sample rate", "0 Hz");
    fmt_body(&fmt, 1, 2, 8000, 16, 0);
    fmt.data[12] = 3;   /* block align 3 for two channels */
    make_wav(&wav, &fmt, pcm, 64, ORDER_PLAIN);
    expect_failure(wav.data, wav.len, GEMINI_ERR_FORMAT, "block align not a channel multiple",
                   "block align");
    fmt_body(&fmt, 1, 1, 8000, 16, 0);
    fmt.data[14] = 4;   /* 4 bits in a 2-byte container */
    make_wav(&wav, &fmt, pcm, 64, ORDER_PLAIN);
    expect_failure(wav.data, wav.len, GEMINI_ERR_UNSUPPORTED, "4-bit PCM", "4 bits");
    fmt_body(&fmt, 3, 1, 8000, 16, 0);
    make_wav(&wav, &fmt, pcm, 64, ORDER_PLAIN);
    expect_failure(wav.data, wav.len, GEMINI_ERR_UNSUPPORTED, "16-bit float", "16 bits");
    fmt_body(&fmt, 1, 1, 8000, 16, 0);
    fmt.len = 14;
    make_wav(&wav, &fmt, pcm, 64, ORDER_PLAIN);
    expect_failure(wav.data, wav.len, GEMINI_ERR_FORMAT, "fmt chunk of 14 bytes", "too short");
    fmt_body(&fmt, 1, 1, 8000, 16, 1);
    fmt.len = 24;
    make_wav(&wav, &fmt, pcm, 64, ORDER_PLAIN);
    expect_failure(wav.data, wav.len, GEMINI_ERR_FORMAT, "short EXTENSIBLE fmt", "too short");

    /* Two fmt chunks; a file without data. */
    fmt_body(&fmt, 1, 1, 8000, 16, 0);
    wav.len = 0;
    put(&wav, "RIFF\0\0\0\0WAVE", 12);
    put_chunk(&wav, "fmt ", fmt.data, (uint32_t)fmt.len);
    put_chunk(&wav, "fmt ", fmt.data, (uint32_t)fmt.len);
    put_chunk(&wav, "data", pcm, 4);
    expect_failure(wav.data, wav.len, GEMINI_ERR_FORMAT, "two fmt chunks", "two fmt");
    wav.len = 0;
    put(&wav, "RIFF\0\0\0\0WAVE", 12);
    put_chunk(&wav, "fmt ", fmt.data, (uint32_t)fmt.len);
    expect_failure(wav.data, wav.len, GEMINI_ERR_FORMAT, "no data chunk", "no data");

    /* Absurd sizes: a data chunk claiming 2 GB - 16 in a tiny file is truncation, with no
       large allocation; one over the 2 GiB cap is refused before reading; 0xFFFFFFFF (what
       streaming writers leave) means "to the end". */
    wav.len = 0;
    put(&wav, "RIFF\xff\xff\xff\xffWAVE", 12);
    put_chunk(&wav, "fmt ", fmt.data, (uint32_t)fmt.len);
    put(&wav, "data", 4);
    put_u32(&wav, 0x7FFFFFF0u);
    put(&wav, pcm, 7);
    r = gemini_audio_load_wav_memory(wav.data, wav.len, &audio);
    snprintf(detail, sizeof detail, "result %d, n %u, truncated %u", (int)r,
             (unsigned)audio.n_samples, (unsigned)audio.truncated);
    check(r == GEMINI_OK && audio.n_samples == 3 && audio.truncated, "data size 0x7FFFFFF0 in a "
          "tiny file: 3 frames, marked truncated", detail);
    gemini_audio_free(&audio);

    wav.data[wav.len - 7 - 1] = 0xFF;   /* 0xFFFFFFF0 */
    expect_failure(wav.data, wav.len, GEMINI_ERR_OUT_OF_MEMORY, "data size 0xFFFFFFF0 over the "
                   "cap refused", "GEMINI_AUDIO_MAX_DATA_BYTES");

    wav.data[wav.len - 7 - 4] = 0xFF;   /* 0xFFFFFFFF */
    r = gemini_audio_load_wav_memory(wav.data, wav.len, &audio);
    snprintf(detail, sizeof detail, "result %d, n %u, truncated %u", (int)r,
             (unsigned)audio.n_samples, (unsigned)audio.truncated);
    check(r == GEMINI_OK && audio.n_samples == 3 && audio.truncated,
          "data size 0xFFFFFFFF read to the end", detail);
    gemini_audio_free(&audio);

    /* 4 hours at 1 Hz is 14400 frames; 14401 one-byte frames are refused. */
    {
        static unsigned char big[14401];
        bytes head;
        unsigned char *file;
        memset(big, 0x80, sizeof big);
        fmt_body(&fmt, 1, 1, 1, 8, 0);
        head.len = 0;
        put(&head, "RIFF\0\0\0\0WAVE", 12);
        put_chunk(&head, "fmt ", fmt.data, (uint32_t)fmt.len);
        put(&head, "data", 4);
        put_u32(&head, sizeof big);
        file = (unsigned char *)malloc(head.len + sizeof big);
        memcpy(file, head.data, head.len);
        memcpy(file + head.len, big, sizeof big);
        expect_failure(file, head.len + sizeof big, GEMINI_ERR_OUT_OF_MEMORY,
                       "over 4 hours of audio refused", "GEMINI_AUDIO_MAX_SECONDS");
        r = gemini_audio_load_wav_memory(file, head.len + sizeof big - 1, &audio);
        check(r == GEMINI_OK && audio.n_samples == 14400 && audio.truncated,
              "exactly 4 hours (cut by one byte) accepted", r ? gemini_last_error() : "");
        gemini_audio_free(&audio);
        free(file);
    }

    /* Every prefix of a good file: an error or a (possibly truncated) decode, never a crash;
       the full file decodes untruncated. */
    for (cut = 0; cut <= good.len; cut++) {
        r = gemini_audio_load_wav_memory(good.data, cut, &audio);
        if (r == GEMINI_OK && cut < good.len && !audio.truncated) bad++;
        if (r == GEMINI_OK && cut == good.len && (audio.truncated || audio.n_samples != 16)) bad++;
        if (r != GEMINI_OK && audio.samples) bad++;
        gemini_audio_free(&audio);
        crashes_avoided++;
    }
    snprintf(detail, sizeof detail, "%d prefixes, %d wrong", crashes_avoided, bad);
    check(bad == 0, "every prefix of a file fails cleanly or is marked truncated", detail);

    /* Random corruption of the header bytes (run this under ASan to make it count). */
    bad = 0;
    for (i = 0; i < 20000; i++) {
        unsigned char copy[sizeof good.data];
        size_t len = good.len;
        int flips = 1 + (int)(rng_next() % 4), k;
        memcpy(copy, good.data, good.len);
        for (k = 0; k < flips; k++) copy[rng_next() % 80] = (unsigned char)rng_next();
        if (rng_next() % 4 == 0) len = rng_next() % (good.len + 1);
        r = gemini_audio_load_wav_memory(copy, len, &audio);
        if (r == GEMINI_OK && audio.n_samples > 0 && !audio.samples) bad++;
        if (r == GEMINI_OK) {
            size_t s;
            for (s = 0; s < audio.n_samples; s++)
                if (!(audio.samples[s] >= -1.0f && audio.samples[s] <= 1.0f)) bad++;
        }
        gemini_audio_free(&audio);
    }
    snprintf(detail, sizeof detail, "20000 corrupted files, %d bad results", bad);
    check(bad == 0, "random header corruption never yields bad samples", detail);

    r = gemini_audio_load_wav_memory(NULL, 10, &audio);
    check(r == GEMINI_ERR_INVALID_ARGUMENT, "NULL data refused", "");
    r = gemini_audio_load_wav("/nonexistent/x.wav", &audio);
    check(r == GEMINI_ERR_IO, "missing file is an IO error", gemini_last_error());
}

/* ---- callbacks ------------------------------------------------------------------------------ */

typedef struct stream {
    const unsigned char *data;
    size_t size, position, max_read;
} stream;

/* Returns at most max_read bytes per call, to exercise short reads. */
static size_t stream_read(void *user, void *buffer, size_t size)
{
    stream *s = (stream *)user;
    size_t left = s->size - s->position;
    if (size > left) size = left;
    if (size > s->max_read) size = s->max_read;
    memcpy(buffer, s->data + s->position, size);
    s->position += size;
    return size;
}

static int stream_seek(void *user, uint64_t offset)
{
    stream *s = (stream *)user;
    if (offset > s->size - s->position) return 1;
    s->position += (size_t)offset;
    return 0;
}

static void test_callbacks(const unsigned char *file, size_t size, const gemini_audio *want)
{
    int with_seek;
    for (with_seek = 0; with_seek < 2; with_seek++) {
        stream s;
        gemini_audio audio;
        gemini_result r;
        s.data = file;
        s.size = size;
        s.position = 0;
        s.max_read = 1000;
        r = gemini_audio_load_wav_callbacks(stream_read, with_seek ? stream_seek : NULL, &s,
                                            &audio);
        check(r == GEMINI_OK && audio.n_samples == want->n_samples &&
              memcmp(audio.samples, want->samples, want->n_samples * sizeof(float)) == 0,
              with_seek ? "callbacks with seek and short reads equal memory decode"
                        : "callbacks without seek equal memory decode",
              r ? gemini_last_error() : "");
        gemini_audio_free(&audio);
    }
}

/* ---- resampler ------------------------------------------------------------------------------ */

static void test_resampler_synthetic(void)
{
    static float in[48000], out[48000];
    char detail[200];
    size_t n, i;
    double worst;

    /* A 1 kHz sine at 44.1 kHz comes out as the same sine at 16 kHz (away from the ends). */
    for (i = 0; i < 44100; i++) in[i] = (float)(0.5 * sin(2 * PI * 1000.0 * i / 44100));
    n = gemini_audio_resample_length(44100, 44100, 16000);
    check(n == 16000 && gemini_audio_resample(in, 44100, 44100, out, n, 16000) == GEMINI_OK,
          "resample 44100 -> 16000: length 16000", "");
    worst = 0.0;
    for (i = 1000; i < 15000; i++) {
        double want = 0.5 * sin(2 * PI * 1000.0 * i / 16000), err = fabs(out[i] - want);
        if (err > worst) worst = err;
    }
    snprintf(detail, sizeof detail, "max error %.2g (%.1f dB under the tone)", worst,
             20 * log10(0.5 / worst));
    check(worst < 0.5e-4, "1 kHz sine survives 44.1 -> 16 kHz", detail);

    /* A 12 kHz tone at 48 kHz must vanish at 16 kHz (it would alias to 4 kHz). */
    for (i = 0; i < 48000; i++) in[i] = (float)(0.5 * sin(2 * PI * 12000.0 * i / 48000));
    gemini_audio_resample(in, 48000, 48000, out, 16000, 16000);
    worst = 0.0;
    for (i = 1000; i < 15000; i++) if (fabs(out[i]) > worst) worst = fabs(out[i]);
    snprintf(detail, sizeof detail, "alias at %.1f dB under the tone", 20 * log10(0.5 / worst));
    check(worst < 0.5e-4, "12 kHz tone removed going 48 -> 16 kHz", detail);

    /* Upsampling 8 -> 16 kHz keeps a 2 kHz tone; DC passes with gain 1. */
    for (i = 0; i < 8000; i++) in[i] = (float)(0.5 * sin(2 * PI * 2000.0 * i / 8000) + 0.25);
    gemini_audio_resample(in, 8000, 8000, out, 16000, 16000);
    worst = 0.0;
    for (i = 1000; i < 15000; i++) {
        double want = 0.5 * sin(2 * PI * 2000.0 * i / 16000) + 0.25;
        if (fabs(out[i] - want) > worst) worst = fabs(out[i] - want);
    }
    snprintf(detail, sizeof detail, "max error %.2g", worst);
    check(worst < 1e-4, "2 kHz tone plus DC survives 8 -> 16 kHz", detail);

    /* 44101 Hz has 16000 phases against 16 kHz: too many for exact per-phase weights, so
       this goes through the interpolated kernel table. */
    for (i = 0; i < 44101; i++) in[i] = (float)(0.5 * sin(2 * PI * 1000.0 * i / 44101));
    n = gemini_audio_resample_length(44101, 44101, 16000);
    gemini_audio_resample(in, 44101, 44101, out, n, 16000);
    worst = 0.0;
    for (i = 1000; i < 15000; i++) {
        double want = 0.5 * sin(2 * PI * 1000.0 * i / 16000), err = fabs(out[i] - want);
        if (err > worst) worst = err;
    }
    snprintf(detail, sizeof detail, "max error %.2g (%.1f dB under the tone)", worst,
             20 * log10(0.5 / worst));
    check(n == 16000 && worst < 0.5e-4, "1 kHz sine survives 44.101 -> 16 kHz (table path)",
          detail);

    /* Inputs shorter than the filter: every tap is clipped at both ends. */
    {
        float one = 0.5f, few[3] = {0.1f, 0.2f, 0.3f}, o[16];
        int ok = gemini_audio_resample(&one, 1, 8000, o, 8, 16000) == GEMINI_OK &&
                 gemini_audio_resample(few, 3, 48000, o, 8, 16000) == GEMINI_OK &&
                 gemini_audio_resample(few, 3, 11025, o, 16, 44100) == GEMINI_OK &&
                 gemini_audio_resample(few, 0, 11025, NULL, 0, 44100) == GEMINI_OK;
        check(ok && fabs(o[0] - 0.1f) < 0.2, "resample 0, 1 and 3 samples", "");
    }

    /* gemini_audio_resample_to replaces the samples and the rate. */
    {
        gemini_audio audio;
        memset(&audio, 0, sizeof audio);
        audio.samples = (float *)malloc(441 * sizeof(float));
        audio.n_samples = 441;
        audio.sample_rate = 44100;
        for (i = 0; i < 441; i++) audio.samples[i] = 0.25f;
        check(gemini_audio_resample_to(&audio, 16000) == GEMINI_OK && audio.n_samples == 160 &&
              audio.sample_rate == 16000 && fabs(audio.samples[80] - 0.25f) < 1e-4,
              "resample_to 44100 -> 16000 in place", "");
        gemini_audio_free(&audio);
    }

    check(gemini_audio_resample_length(3, 44100, 16000) == 2 &&
          gemini_audio_resample_length(0, 44100, 16000) == 0 &&
          gemini_audio_resample_length(10, 0, 16000) == 0, "resample lengths", "");
    check(gemini_audio_resample(in, 100, 44100, out, 36, 16000) == GEMINI_ERR_INVALID_ARGUMENT,
          "resample refuses a short output buffer", gemini_last_error());
    check(gemini_audio_resample(in, 5, 16000, out, 5, 16000) == GEMINI_OK && out[3] == in[3],
          "equal rates copy", "");
}

/* ---- FFT and filters ------------------------------------------------------------------------ */

static void test_fft(void)
{
    gemini_audio_mel *mel;
    gemini__audio_complex x[400], y[400];
    double worst = 0.0, t0;
    char detail[200];
    int i, k, reps;

    if (gemini_audio_mel_create(80, &mel) != GEMINI_OK) {
        check(0, "mel create", gemini_last_error());
        return;
    }
    for (i = 0; i < 400; i++) {
        x[i].re = sin(i * 0.37) + (i % 7) * 0.1;
        x[i].im = cos(i * 0.11);
    }
    gemini__audio_fft(mel->roots, x, 1, y, 400, 0);
    for (k = 0; k < 400; k++) {
        double re = 0.0, im = 0.0;
        for (i = 0; i < 400; i++) {
            double a = -2.0 * PI * (double)((i * k) % 400) / 400.0;
            re += x[i].re * cos(a) - x[i].im * sin(a);
            im += x[i].re * sin(a) + x[i].im * cos(a);
        }
        if (fabs(re - y[k].re) > worst) worst = fabs(re - y[k].re);
        if (fabs(im - y[k].im) > worst) worst = fabs(im - y[k].im);
    }
    snprintf(detail, sizeof detail, "max |difference| %.2g", worst);
    check(worst < 1e-10, "400-point FFT equals a direct DFT", detail);

    /* Speed, against a direct one-sided DFT of a real frame with a precomputed table (what the
       FFT replaces): 3000 frames make one 30 s window. */
    {
        static double cos_table[400], sin_table[400], frame[400], bins[201][2];
        double fft_ms, dft_ms, sink = 0.0;
        for (i = 0; i < 400; i++) {
            cos_table[i] = cos(2.0 * PI * i / 400);
            sin_table[i] = -sin(2.0 * PI * i / 400);
            frame[i] = x[i].re;
        }
        t0 = now_seconds();
        for (reps = 0; reps < 3000; reps++) {
            x[reps % 400].re += 1e-9;
            gemini__audio_fft(mel->roots, x, 1, y, 400, 0);
            sink += y[1].re;
        }
        fft_ms = 1000 * (now_seconds() - t0);
        t0 = now_seconds();
        for (reps = 0; reps < 3000; reps++) {
            frame[reps % 400] += 1e-9;
            for (k = 0; k < 201; k++) {
                double re = 0.0, im = 0.0;
                int index = 0;
                for (i = 0; i < 400; i++) {
                    re += frame[i] * cos_table[index];
                    im += frame[i] * sin_table[index];
                    index += k;
                    if (index >= 400) index -= 400;
                }
                bins[k][0] = re;
                bins[k][1] = im;
            }
            sink += bins[1][0];
        }
        dft_ms = 1000 * (now_seconds() - t0);
        snprintf(detail, sizeof detail, "3000 frames: FFT %.1f ms, direct real DFT %.1f ms "
                 "(%s)", fft_ms, dft_ms, sink != 0.0 ? "x" : "y");
        check(1, "FFT speed (information)", detail);
    }

    /* The filters at a few points computed by hand from the Slaney formulas: filter 0 rises from
       0 Hz to its peak at 1 * mel(8000) / 81 mel = 37.2 Hz, so at bin 1 (40 Hz) it is on the
       falling side. Every filter has area 1 in Hz units (2 / width * width / 2). */
    {
        float filters[80 * 201];
        double area_worst = 0.0;
        int m;
        gemini_audio_mel_filters(mel, filters);
        for (m = 1; m < 79; m++) {
            double area = 0.0;
            for (k = 0; k < 201; k++) area += filters[m * 201 + k] * 40.0;
            /* Narrow low filters are sampled coarsely by 40 Hz bins; only check wide ones. */
            if (m > 40 && fabs(area - 1.0) > area_worst) area_worst = fabs(area - 1.0);
        }
        snprintf(detail, sizeof detail, "filter[0][0] %.3g, worst area error (filters 41-78) %.3g",
                filters[0], area_worst);
        check(filters[0] == 0.0f && filters[1] > 0.0f && filters[2] == 0.0f &&
              area_worst < 0.02, "mel filters: shape and Slaney area", detail);
    }
    gemini_audio_mel_free(mel);
}

/* ---- fixtures: decoding, resampling and log-mel against the references ---------------------- */

static void test_fixtures(void)
{
    char path[512], line[512], kind[16], name[128];
    FILE *manifest;
    gemini_audio audio;
    gemini_audio_mel *mel80 = NULL, *mel128 = NULL;
    int lines = 0, callback_done = 0;

    memset(&audio, 0, sizeof audio);
    snprintf(path, sizeof path, "%s/manifest.txt", fixture_dir());
    manifest = fopen(path, "r");
    if (!manifest) {
        check(0, "fixture manifest", path);
        return;
    }
    if (gemini_audio_mel_create(80, &mel80) != GEMINI_OK ||
        gemini_audio_mel_create(128, &mel128) != GEMINI_OK) {
        check(0, "mel create", gemini_last_error());
        fclose(manifest);
        return;
    }

    while (fgets(line, sizeof line, manifest)) {
        char detail[300];
        if (line[0] == '#' || sscanf(line, "%15s %127s", kind, name) != 2) continue;
        lines++;

        if (strcmp(kind, "wav") == 0) {
            unsigned rate, channels, bits;
            unsigned long frames;
            double sum, sum_abs, sum_sq, s = 0, sa = 0, sq = 0, worst;
            size_t i;
            gemini_result r;
            gemini_audio_free(&audio);
            sscanf(line, "%*s %*s %u %u %u %lu %lf %lf %lf", &rate, &channels, &bits, &frames,
                   &sum, &sum_abs, &sum_sq);
            snprintf(path, sizeof path, "%s/%s.wav", fixture_dir(), name);
            r = gemini_audio_load_wav(path, &audio);
            for (i = 0; r == GEMINI_OK && i < audio.n_samples; i++) {
                s += audio.samples[i];
                sa += fabs(audio.samples[i]);
                sq += (double)audio.samples[i] * audio.samples[i];
            }
            /* Our samples are rounded to float32 after the mix, which moves each by at most
               2^-24 relative: the three sums may drift by about 1e-7 per sample, no more. */
            worst = fabs(s - sum);
            if (fabs(sa - sum_abs) > worst) worst = fabs(sa - sum_abs);
            if (fabs(sq - sum_sq) > worst) worst = fabs(sq - sum_sq);
            snprintf(detail, sizeof detail,
                     "%u Hz, %u ch, %u bits, %lu frames, sums off by %.2g %.100s", rate,
                    channels, bits, frames, worst, r == GEMINI_OK ? "" : gemini_last_error());
            snprintf(line, sizeof line, "decode %s equals scipy's decode", name);
            check(r == GEMINI_OK && audio.sample_rate == rate && audio.channels == channels &&
                  audio.n_samples == frames && !audio.truncated && worst < 1e-7 * frames,
                  line, detail);

            if (r == GEMINI_OK && !callback_done) {
                size_t size;
                unsigned char *file = (unsigned char *)read_file(path, &size);
                if (file) test_callbacks(file, size, &audio);
                free(file);
                callback_done = 1;
            }
        } else if (strcmp(kind, "mel") == 0) {
            int n_mels, stored, m, t;
            float floor_value, *want, *got;
            size_t count;
            double worst = 0.0, t0, ms;
            sscanf(line, "%*s %*s %d %d %f", &n_mels, &stored, &floor_value);
            snprintf(path, sizeof path, "%s/%s.mel%d.f32", fixture_dir(), name, n_mels);
            want = read_f32(path, &count);
            got = (float *)malloc((size_t)n_mels * 3000 * sizeof *got);
            if (!want || !got || count != (size_t)n_mels * stored || !audio.samples) {
                check(0, "mel fixture readable", path);
                free(want);
                free(got);
                continue;
            }
            t0 = now_seconds();
            gemini_audio_log_mel_30s(n_mels == 80 ? mel80 : mel128, audio.samples,
                                     audio.n_samples, got);
            ms = 1000 * (now_seconds() - t0);
            for (m = 0; m < n_mels; m++) {
                for (t = 0; t < 3000; t++) {
                    double ref = t < stored ? want[m * stored + t] : floor_value;
                    double err = fabs(got[m * 3000 + t] - ref);
                    if (err > worst) worst = err;
                }
            }
            snprintf(detail, sizeof detail,
                     "max |diff| %.2g over %d x 3000 (tolerance 1e-4), %.1f ms", worst,
                    n_mels, ms);
            snprintf(line, sizeof line, "log-mel %d of %s equals HF WhisperFeatureExtractor",
                     n_mels, name);
            check(worst <= 1e-4, line, detail);
            free(want);
            free(got);
        } else if (strcmp(kind, "melfull") == 0) {
            int n_mels, frames;
            float *want, *got;
            size_t count, i;
            double worst = 0.0;
            sscanf(line, "%*s %*s %d %d", &n_mels, &frames);
            snprintf(path, sizeof path, "%s/%s.melfull%d.f32", fixture_dir(), name, n_mels);
            want = read_f32(path, &count);
            got = (float *)malloc((size_t)n_mels * (frames + 1) * sizeof *got);
            if (!want || !got || count != (size_t)n_mels * frames || !audio.samples ||
                gemini_audio_log_mel_frames(audio.n_samples) != (size_t)frames) {
                check(0, "full log-mel fixture readable", path);
                free(want);
                free(got);
                continue;
            }
            gemini_audio_log_mel(mel80, audio.samples, audio.n_samples, got);
            for (i = 0; i < count; i++)
                if (fabs(got[i] - want[i]) > worst) worst = fabs(got[i] - want[i]);
            snprintf(detail, sizeof detail, "max |diff| %.2g over %d x %d (tolerance 1e-4)",
                     worst, n_mels, frames);
            snprintf(line, sizeof line, "log-mel of all of %s (no 30 s padding) equals HF",
                     name);
            check(worst <= 1e-4, line, detail);
            free(want);
            free(got);
        } else if (strcmp(kind, "resample") == 0) {
            unsigned long n_out;
            float *want, *got;
            size_t count, n;
            double snr;
            sscanf(line, "%*s %*s %lu", &n_out);
            snprintf(path, sizeof path, "%s/%s.16k.f32", fixture_dir(), name);
            want = read_f32(path, &count);
            n = gemini_audio_resample_length(audio.n_samples, audio.sample_rate, 16000);
            got = (float *)malloc((n ? n : 1) * sizeof *got);
            if (!want || !got || count != n_out || !audio.samples) {
                check(0, "resample fixture readable", path);
                free(want);
                free(got);
                continue;
            }
            gemini_audio_resample(audio.samples, audio.n_samples, audio.sample_rate, got, n,
                                  16000);
            snr = snr_db(want, got, n < count ? n : count);
            snprintf(detail, sizeof detail,
                     "%u -> 16000 Hz: %lu vs %lu samples, SNR %.1f dB against soxr VHQ "
                    "(documented: >= 50)", (unsigned)audio.sample_rate, (unsigned long)n,
                    (unsigned long)count, snr);
            snprintf(line, sizeof line, "resample %s", name);
            check(snr >= 50.0 && (n == count || n + 1 == count || n == count + 1), line, detail);
            free(want);
            free(got);
        }
    }
    fclose(manifest);
    check(lines >= 10, "fixture manifest has every line", "");
    gemini_audio_free(&audio);
    gemini_audio_mel_free(mel80);
    gemini_audio_mel_free(mel128);
}

/* ---- allocation failures ------------------------------------------------------------------- */

/* Fails the 1st, 2nd, ... allocation of a whole pipeline (decode a 44.1 kHz stereo file,
   resample it, build the mel tables, transform): every step either succeeds or reports
   GEMINI_ERR_OUT_OF_MEMORY, and nothing leaks. */
static void test_allocation_failures(void)
{
    char path[512], detail[200];
    size_t size;
    unsigned char *file;
    long budget;
    int wrong = 0, failures_seen = 0;
    float *features = (float *)malloc(80 * 3000 * sizeof *features);

    snprintf(path, sizeof path, "%s/speech_44k_stereo_s16.wav", fixture_dir());
    file = (unsigned char *)read_file(path, &size);
    if (!file || !features) {
        check(0, "allocation failures: fixture readable", path);
        free(file);
        free(features);
        return;
    }
    for (budget = 0; budget < 40; budget++) {
        gemini_audio audio;
        gemini_audio_mel *mel = NULL;
        gemini_result r;

        live_allocations = 0;
        alloc_budget = budget;
        r = gemini_audio_load_wav_memory(file, size, &audio);
        if (r == GEMINI_OK) r = gemini_audio_resample_to(&audio, 16000);
        if (r == GEMINI_OK) r = gemini_audio_mel_create(80, &mel);
        if (r == GEMINI_OK)
            r = gemini_audio_log_mel_30s(mel, audio.samples, audio.n_samples, features);
        if (r != GEMINI_OK) failures_seen++;
        if (r != GEMINI_OK && r != GEMINI_ERR_OUT_OF_MEMORY) wrong++;
        gemini_audio_mel_free(mel);
        gemini_audio_free(&audio);
        alloc_budget = -1;
        if (live_allocations != 0) wrong++;
        if (r == GEMINI_OK) break;
    }
    snprintf(detail, sizeof detail, "%d failing runs before the first success, %d wrong",
             failures_seen, wrong);
    check(wrong == 0 && failures_seen > 3 && budget < 40,
          "every allocation failure is reported, nothing leaks", detail);
    free(file);
    free(features);
}

/* ---- log-mel API edges -------------------------------------------------------------------- */

static void test_log_mel_api(void)
{
    gemini_audio_mel *mel;
    float *out = (float *)malloc(80 * 3000 * sizeof *out);
    float x[1000];
    size_t i;
    int ok = 1;

    check(gemini_audio_mel_create(81, &mel) == GEMINI_ERR_INVALID_ARGUMENT && mel == NULL,
          "mel refuses 81 bins", gemini_last_error());
    if (gemini_audio_mel_create(80, &mel) != GEMINI_OK || !out) {
        check(0, "mel create", gemini_last_error());
        free(out);
        return;
    }
    check(gemini_audio_log_mel_30s(mel, NULL, 0, out) == GEMINI_OK, "silence: log-mel 30 s", "");
    for (i = 0; i < 80 * 3000; i++) ok &= out[i] == (-10.0f + 4.0f) / 4.0f;
    check(ok, "silence is -10 everywhere, scaled to -1.5", "");

    for (i = 0; i < 1000; i++) x[i] = (float)sin(i * 0.3);
    check(gemini_audio_log_mel_frames(1000) == 6 &&
          gemini_audio_log_mel(mel, x, 1000, out) == GEMINI_OK, "log-mel of 1000 samples: 6 "
          "frames", "");
    check(gemini_audio_log_mel(mel, x, 200, out) == GEMINI_ERR_INVALID_ARGUMENT,
          "log-mel refuses 200 samples (no reflect padding)", gemini_last_error());
    gemini_audio_mel_free(mel);
    free(out);
}

int main(void)
{
    test_formats();
    test_layouts();
    test_hostile();
    test_resampler_synthetic();
    test_fft();
    test_log_mel_api();
    test_fixtures();
    test_allocation_failures();
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed != 0;
}
