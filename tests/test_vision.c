/* test_vision.c - tests of gemini_vision.h: decoding against Pillow's pixels, preprocessing
   against transformers' SiglipImageProcessor, Y4M video against ffmpeg's decode, and hostile
   input.

   Fixtures: tests/vision/ (made by tools/make_vision_fixtures.py), listed in manifest.txt:
       exact FILE W H CHANNELS REF.rgb OPTIONS    lossless: every byte must equal Pillow's
       jpeg FILE W H CHANNELS REF.rgb OPTIONS     JPEG: within the tolerances below
       preprocess SRC W H FILTER CODES.png ROWS.f32 ROW0 ROW1 ROW2
       refuse FILE unsupported                    must fail with GEMINI_ERR_UNSUPPORTED
   tests/vision/y4m/ (made by tools/make_y4m_fixtures.sh with ffmpeg), listed in its
   manifest.txt: y4m FILE REF.rgb W H FRAMES CHROMA MAX_ABS MEAN_ABS.
   OPTIONS: "-" (defaults, except EXIF orientation off, as Pillow's Image.open), "exif"
   (orientation applied), "white" (alpha blended on white).

   Run from the repository root: build/test_vision [fixture folder]. Prints one line per check
   and ends with "N passed, M failed"; exits nonzero on a failure.
*/
#define GEMINI_VISION_IMPLEMENTATION
#include "gemini_vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libjpeg-turbo's integer IDCT against our float IDCT, plus rounding in the upsampler: the
   largest difference we accept per value, and the largest mean absolute difference. */
#define JPEG_MAX_ABS 4
#define JPEG_MAX_MEAN 0.15

static int tests_passed, tests_failed;
static const char *fixture_dir = "tests/vision";

static void check(int ok, const char *what, const char *detail)
{
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what, detail && detail[0] ? ": " : "",
           detail ? detail : "");
    if (ok) tests_passed++;
    else tests_failed++;
}

static unsigned char *read_file(const char *name, size_t *size)
{
    char path[1024];
    FILE *f;
    unsigned char *data = NULL;
    long n;
    snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
    f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = (unsigned char *)malloc((size_t)n + 1);
        if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
            free(data);
            data = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return data;
}

static gemini_vision_decode_params params_for(const char *options)
{
    gemini_vision_decode_params p = gemini_vision_decode_default_params();
    p.apply_exif_orientation = strcmp(options, "exif") == 0;
    if (strcmp(options, "white") == 0) p.alpha = GEMINI_VISION_ALPHA_BLEND;
    return p;
}

/* ---- Decoding against the references ------------------------------------------------------ */

static double jpeg_worst_mean = 0;
static int jpeg_worst_max = 0;

static void check_decode(const char *kind, const char *file, int w, int h, int channels,
                         const char *ref_name, const char *options)
{
    gemini_vision_decode_params p = params_for(options);
    gemini_vision_image image;
    char what[400], detail[700];
    size_t ref_size = 0, n, i, first_bad = (size_t)-1;
    unsigned char *ref = read_file(ref_name, &ref_size);
    char path[1024];
    gemini_result r;
    snprintf(what, sizeof what, "decode %s (%s)", file, options);
    snprintf(path, sizeof path, "%s/%s", fixture_dir, file);
    r = gemini_vision_load(path, &p, &image);
    if (r != GEMINI_OK || !ref) {
        snprintf(detail, sizeof detail, "%s %s", gemini_result_string(r),
                 ref ? gemini_last_error() : "reference missing");
        check(0, what, detail);
        free(ref);
        return;
    }
    n = (size_t)w * h * 3;
    if (image.width != w || image.height != h || image.channels != channels || ref_size != n) {
        snprintf(detail, sizeof detail, "got %dx%d, %d channels; want %dx%d, %d", image.width,
                 image.height, image.channels, w, h, channels);
        check(0, what, detail);
    } else if (strcmp(kind, "exact") == 0) {
        for (i = 0; i < n && first_bad == (size_t)-1; i++)
            if (image.pixels[i] != ref[i]) first_bad = i;
        if (first_bad == (size_t)-1) {
            snprintf(detail, sizeof detail, "%dx%d, %d channels, all %zu values equal", w, h,
                     channels, n);
        } else {
            snprintf(detail, sizeof detail, "first difference at x=%d y=%d c=%d: %d vs %d",
                     (int)(first_bad / 3 % w), (int)(first_bad / 3 / w), (int)(first_bad % 3),
                     image.pixels[first_bad], ref[first_bad]);
        }
        check(first_bad == (size_t)-1, what, detail);
    } else {
        int max_abs = 0;
        double total = 0;
        for (i = 0; i < n; i++) {
            int d = abs((int)image.pixels[i] - (int)ref[i]);
            if (d > max_abs) max_abs = d;
            total += d;
        }
        if (max_abs > jpeg_worst_max) jpeg_worst_max = max_abs;
        if (total / n > jpeg_worst_mean) jpeg_worst_mean = total / n;
        snprintf(detail, sizeof detail, "vs Pillow max abs %d, mean abs %.4f (limits %d, %.2f)",
                 max_abs, total / n, JPEG_MAX_ABS, JPEG_MAX_MEAN);
        check(max_abs <= JPEG_MAX_ABS && total / n <= JPEG_MAX_MEAN, what, detail);
    }
    gemini_vision_image_free(&image);
    free(ref);
}

/* ---- Preprocessing against transformers --------------------------------------------------- */

static void check_preprocess(const char *src, int w, int h, const char *filter,
                             const char *codes_name, const char *rows_name, const int rows[3])
{
    gemini_vision_image image, codes;
    gemini_vision_preprocess_params pp = gemini_vision_preprocess_default_params();
    gemini_vision_decode_params dp = gemini_vision_decode_default_params();
    char what[400], detail[256], path[1024];
    size_t plane = (size_t)w * h, i, rows_size = 0;
    float *out = (float *)malloc(plane * 3 * sizeof(float));
    unsigned char *row_bytes = read_file(rows_name, &rows_size);
    double worst = 0, worst_rows = 0;
    int c, k, x;
    snprintf(what, sizeof what, "preprocess %s -> %dx%d %s vs SiglipImageProcessor", src, w, h,
             filter);
    snprintf(path, sizeof path, "%s/%s", fixture_dir, src);
    if (gemini_vision_load(path, &dp, &image) != GEMINI_OK) {
        check(0, what, gemini_last_error());
        free(out);
        free(row_bytes);
        return;
    }
    snprintf(path, sizeof path, "%s/%s", fixture_dir, codes_name);
    if (gemini_vision_load(path, &dp, &codes) != GEMINI_OK || codes.width != w ||
        codes.height != h || !row_bytes || rows_size != (size_t)3 * 3 * w * 4) {
        check(0, what, "reference missing or malformed");
        gemini_vision_image_free(&image);
        free(out);
        free(row_bytes);
        return;
    }
    pp.width = w;
    pp.height = h;
    pp.filter = strcmp(filter, "bilinear") == 0 ? GEMINI_VISION_FILTER_BILINEAR :
                                                  GEMINI_VISION_FILTER_BICUBIC;
    if (gemini_vision_preprocess(image.pixels, image.width, image.height, &pp, out) !=
        GEMINI_OK) {
        check(0, what, gemini_last_error());
    } else {
        /* Every value against the stored 8-bit code of the reference tensor. */
        for (c = 0; c < 3; c++)
            for (i = 0; i < plane; i++) {
                double want = ((double)codes.pixels[3 * i + c] / 255.0 - 0.5) / 0.5;
                double d = fabs(out[c * plane + i] - want);
                if (d > worst) worst = d;
            }
        /* Three full rows of each channel against the float32 tensor itself. */
        for (c = 0; c < 3; c++)
            for (k = 0; k < 3; k++)
                for (x = 0; x < w; x++) {
                    float want;
                    memcpy(&want, row_bytes + (((size_t)c * 3 + k) * w + x) * 4, 4);
                    if (fabs(out[c * plane + (size_t)rows[k] * w + x] - want) > worst_rows)
                        worst_rows = fabs(out[c * plane + (size_t)rows[k] * w + x] - want);
                }
        snprintf(detail, sizeof detail, "max abs diff %.3g (%.3g in 8-bit steps), float rows "
                 "%.3g; limit 1/255", worst, worst * 127.5, worst_rows);
        check(worst <= 1.0 / 255 + 1e-6 && worst_rows <= 1.0 / 255 + 1e-6, what, detail);
    }
    gemini_vision_image_free(&image);
    gemini_vision_image_free(&codes);
    free(out);
    free(row_bytes);
}

static void run_manifest(void)
{
    char path[1024], line[1024];
    FILE *f;
    int lines = 0;
    snprintf(path, sizeof path, "%s/manifest.txt", fixture_dir);
    f = fopen(path, "r");
    check(f != NULL, "open manifest", path);
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char kind[32], file[256], ref[256], options[64], filter[32], rows_name[256];
        int w, h, channels, rows[3];
        if (line[0] == '#') continue;
        if (sscanf(line, "%31s", kind) != 1) continue;
        lines++;
        if ((strcmp(kind, "exact") == 0 || strcmp(kind, "jpeg") == 0) &&
            sscanf(line, "%31s %255s %d %d %d %255s %63s", kind, file, &w, &h, &channels, ref,
                   options) == 7) {
            check_decode(kind, file, w, h, channels, ref, options);
        } else if (strcmp(kind, "preprocess") == 0 &&
                   sscanf(line, "%31s %255s %d %d %31s %255s %255s %d %d %d", kind, file, &w,
                          &h, filter, ref, rows_name, &rows[0], &rows[1], &rows[2]) == 10) {
            check_preprocess(file, w, h, filter, ref, rows_name, rows);
        } else if (strcmp(kind, "refuse") == 0 &&
                   sscanf(line, "%31s %255s %63s", kind, file, options) == 3) {
            gemini_vision_image image;
            char what[400];
            snprintf(path, sizeof path, "%s/%s", fixture_dir, file);
            snprintf(what, sizeof what, "decode %s refused as %s", file, options);
            check(gemini_vision_load(path, NULL, &image) == GEMINI_ERR_UNSUPPORTED &&
                      strcmp(options, "unsupported") == 0 && image.pixels == NULL, what,
                  gemini_last_error());
        } else {
            check(0, "manifest line", line);
        }
    }
    fclose(f);
    check(lines >= 70, "manifest lists the fixtures", "");
}

/* ---- Resize properties that need no reference ---------------------------------------------- */

static void test_resize_basics(void)
{
    unsigned char src[4 * 3 * 3], dst[8 * 6 * 3], flat[16 * 16], small[5 * 5];
    int i, ok = 1;
    for (i = 0; i < (int)sizeof src; i++) src[i] = (unsigned char)(i * 37);
    {
        /* Extreme ratios: a single pixel blown up, a line squeezed to one pixel. */
        unsigned char one[3] = {10, 20, 30}, big[9 * 7 * 3], line[33 * 2], dot[2];
        int same = 1;
        gemini_vision_resize(one, 1, 1, 3, big, 9, 7, GEMINI_VISION_FILTER_BICUBIC);
        for (i = 0; i < 9 * 7 * 3; i++) same &= big[i] == one[i % 3];
        memset(line, 200, sizeof line);
        gemini_vision_resize(line, 33, 1, 2, dot, 1, 1, GEMINI_VISION_FILTER_BILINEAR);
        check(same && dot[0] == 200 && dot[1] == 200, "1x1 -> 9x7 and 33x1 -> 1x1 keep a flat "
              "colour", "");
    }
    check(gemini_vision_resize(src, 4, 3, 3, dst, 4, 3, GEMINI_VISION_FILTER_BICUBIC) ==
              GEMINI_OK && memcmp(src, dst, sizeof src) == 0, "resize to the same size copies",
          "");
    memset(flat, 77, sizeof flat);
    gemini_vision_resize(flat, 16, 16, 1, small, 5, 5, GEMINI_VISION_FILTER_BICUBIC);
    for (i = 0; i < 25; i++) ok &= small[i] == 77;
    check(ok, "a flat image stays flat when shrunk", "");
    check(gemini_vision_resize(src, 4, 3, 3, dst, 8, 6, 1) == GEMINI_ERR_INVALID_ARGUMENT,
          "unknown filter -> INVALID_ARGUMENT", gemini_last_error());
    check(gemini_vision_resize(src, 0, 3, 3, dst, 8, 6, 2) == GEMINI_ERR_INVALID_ARGUMENT,
          "zero width -> INVALID_ARGUMENT", gemini_last_error());
}

/* ---- Hostile input ------------------------------------------------------------------------- */

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int expect(const unsigned char *data, size_t size, gemini_result want,
                  const char *what, const char *needle)
{
    gemini_vision_image image;
    gemini_result r = gemini_vision_load_memory(data, size, NULL, &image);
    char detail[600];
    int ok = r == want && image.pixels == NULL &&
             (!needle || strstr(gemini_last_error(), needle) != NULL);
    snprintf(detail, sizeof detail, "%s: %s", gemini_result_string(r), gemini_last_error());
    check(ok, what, detail);
    gemini_vision_image_free(&image);
    return ok;
}

/* Every proper prefix of a file must fail with a message and no pixels. */
static void test_truncation(const char *file)
{
    size_t size = 0, cut;
    unsigned char *data = read_file(file, &size);
    int wrong = 0;
    char what[256], detail[128];
    if (!data) {
        check(0, "truncation fixture", file);
        return;
    }
    for (cut = 0; cut < size; cut++) {
        gemini_vision_image image;
        unsigned char *copy = (unsigned char *)malloc(cut + 1);
        gemini_result r;
        memcpy(copy, data, cut);
        r = gemini_vision_load_memory(copy, cut, NULL, &image);
        if (r == GEMINI_OK) wrong++;
        if (r != GEMINI_OK && (image.pixels != NULL || gemini_last_error()[0] == 0)) wrong++;
        gemini_vision_image_free(&image);
        free(copy);
    }
    snprintf(what, sizeof what, "every truncation of %s fails with a message", file);
    snprintf(detail, sizeof detail, "%zu prefixes, %d wrong", size, wrong);
    check(wrong == 0, what, detail);
    free(data);
}

/* Random byte flips: nothing may crash or read out of bounds (run under ASan to see it). */
static void test_flips(const char *file, int rounds)
{
    size_t size = 0;
    unsigned char *data = read_file(file, &size), *copy;
    unsigned state = 12345;
    int i, k, accepted = 0, refused = 0;
    char what[256], detail[128];
    if (!data) {
        check(0, "flip fixture", file);
        return;
    }
    copy = (unsigned char *)malloc(size);
    for (i = 0; i < rounds; i++) {
        gemini_vision_image image;
        memcpy(copy, data, size);
        for (k = 0; k < 1 + i % 4; k++) {
            state = state * 1103515245u + 12345u;
            copy[(state >> 8) % size] ^= (unsigned char)(1u << ((state >> 4) & 7));
        }
        if (gemini_vision_load_memory(copy, size, NULL, &image) == GEMINI_OK) accepted++;
        else refused++;
        gemini_vision_image_free(&image);
    }
    snprintf(what, sizeof what, "%d random corruptions of %s handled", rounds, file);
    snprintf(detail, sizeof detail, "%d decoded, %d refused", accepted, refused);
    check(1, what, detail);
    free(copy);
    free(data);
}

static void test_hostile(void)
{
    size_t size = 0;
    unsigned char *png = read_file("rgb8.png", &size), *jpg, *bmp;
    size_t jsize = 0, bsize = 0, i;
    unsigned char bad[64];
    gemini_vision_image image;
    gemini_vision_decode_params p = gemini_vision_decode_default_params();

    if (!png) {
        check(0, "hostile fixtures", "rgb8.png missing");
        return;
    }

    /* PNG: a flipped IDAT byte breaks the chunk CRC; with the CRC fixed, the Adler-32. */
    {
        unsigned char *copy = (unsigned char *)malloc(size);
        size_t pos = 8, idat = 0;
        while (pos + 8 < size) {
            uint32_t len = ((uint32_t)png[pos] << 24) | (png[pos + 1] << 16) |
                           (png[pos + 2] << 8) | png[pos + 3];
            if (memcmp(png + pos + 4, "IDAT", 4) == 0) {
                idat = pos;
                break;
            }
            pos += len + 12;
        }
        memcpy(copy, png, size);
        copy[idat + 8 + 40] ^= 0x10;
        expect(copy, size, GEMINI_ERR_CHECKSUM, "PNG with a flipped IDAT byte -> CHECKSUM",
               "CRC");
        {
            uint32_t len = ((uint32_t)copy[idat] << 24) | (copy[idat + 1] << 16) |
                           (copy[idat + 2] << 8) | copy[idat + 3];
            /* Flip a byte of the stored Adler-32 itself and fix the CRC: only Adler fails. */
            memcpy(copy, png, size);
            copy[idat + 8 + len - 1] ^= 0x01;
            put_be32(copy + idat + 8 + len, crc32_of(copy + idat + 4, len + 4));
            expect(copy, size, GEMINI_ERR_CHECKSUM, "PNG with a bad Adler-32 -> CHECKSUM",
                   "Adler");
        }
        /* Absurd sizes with a valid CRC. */
        memcpy(copy, png, size);
        put_be32(copy + 16, 1000000);
        put_be32(copy + 29, crc32_of(copy + 12, 17));
        expect(copy, size, GEMINI_ERR_UNSUPPORTED, "PNG width 1000000 -> refused, named",
               "width 1000000");
        memcpy(copy, png, size);
        put_be32(copy + 16, 16000);
        put_be32(copy + 20, 16000);
        put_be32(copy + 29, crc32_of(copy + 12, 17));
        expect(copy, size, GEMINI_ERR_UNSUPPORTED, "PNG 16000x16000 -> over the pixel cap",
               "cap");
        memcpy(copy, png, size);
        put_be32(copy + 16, 0);
        put_be32(copy + 29, crc32_of(copy + 12, 17));
        expect(copy, size, GEMINI_ERR_FORMAT, "PNG width 0 -> FORMAT", "width 0");
        memcpy(copy, png, size);
        copy[24] = 3;   /* bit depth 3 */
        put_be32(copy + 29, crc32_of(copy + 12, 17));
        expect(copy, size, GEMINI_ERR_FORMAT, "PNG bit depth 3 -> FORMAT", "bit depth 3");
        memcpy(copy, png, size);
        put_be32(copy + 8, 0x7FFFFFF0u);
        expect(copy, size, GEMINI_ERR_FORMAT, "PNG chunk length past the end -> FORMAT",
               "length");
        /* A smaller cap set by the caller. */
        p.max_side = 40;
        check(gemini_vision_load_memory(png, size, &p, &image) == GEMINI_ERR_UNSUPPORTED,
              "caller's max_side 40 refuses a 45-pixel-wide image", gemini_last_error());
        p = gemini_vision_decode_default_params();
        free(copy);
    }
    test_truncation("rgb8.png");
    test_truncation("pal2_i.png");

    /* JPEG: absurd SOF size, an over-full Huffman table, 12-bit and arithmetic coding. */
    jpg = read_file("base420.jpg", &jsize);
    if (jpg) {
        unsigned char *copy = (unsigned char *)malloc(jsize);
        size_t sof = 0, dht = 0;
        for (i = 2; i + 4 < jsize; i++) {
            if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0 && !sof) sof = i;
            if (jpg[i] == 0xFF && jpg[i + 1] == 0xC4 && !dht) dht = i;
        }
        memcpy(copy, jpg, jsize);
        copy[sof + 5] = copy[sof + 6] = 0xFF;
        copy[sof + 7] = copy[sof + 8] = 0xFF;
        expect(copy, jsize, GEMINI_ERR_UNSUPPORTED, "JPEG 65535x65535 -> refused, named",
               "65535");
        /* Two codes of length 1 would use the reserved all-ones code; keep the total. */
        memcpy(copy, jpg, jsize);
        {
            int l = 16, delta = 2 - copy[dht + 5];
            while (l > 1 && copy[dht + 4 + l] < delta) l--;
            copy[dht + 4 + l] = (unsigned char)(copy[dht + 4 + l] - delta);
            copy[dht + 5] = 2;
        }
        expect(copy, jsize, GEMINI_ERR_FORMAT, "JPEG over-full Huffman table -> FORMAT",
               "Huffman");
        memcpy(copy, jpg, jsize);
        copy[sof + 4] = 12;
        expect(copy, jsize, GEMINI_ERR_UNSUPPORTED, "JPEG 12-bit -> UNSUPPORTED", "precision");
        memcpy(copy, jpg, jsize);
        copy[sof + 1] = 0xC9;
        expect(copy, jsize, GEMINI_ERR_UNSUPPORTED, "JPEG arithmetic coding -> UNSUPPORTED",
               "arithmetic");
        free(copy);
        free(jpg);
    }
    test_truncation("base420.jpg");
    test_truncation("prog420.jpg");

    /* BMP and PNM headers. */
    bmp = read_file("rgb24.bmp", &bsize);
    if (bmp) {
        unsigned char *copy = (unsigned char *)malloc(bsize);
        memcpy(copy, bmp, bsize);
        copy[22] = 0x00;
        copy[23] = 0x30;   /* height 12288: pixel data past the end */
        expect(copy, bsize, GEMINI_ERR_FORMAT, "BMP rows past the end -> FORMAT", "past the end");
        memcpy(copy, bmp, bsize);
        copy[30] = 1;
        expect(copy, bsize, GEMINI_ERR_UNSUPPORTED, "BMP RLE8 -> UNSUPPORTED", "compression 1");
        free(copy);
        free(bmp);
    }
    test_truncation("rgb24.bmp");
    test_truncation("max1000.ppm");
    memcpy(bad, "P6\n99999999999 2\n255\n", 22);
    expect(bad, 22, GEMINI_ERR_FORMAT, "PPM absurd width -> FORMAT", "width");
    memcpy(bad, "P5\n20000 2\n255\n", 15);
    expect(bad, 15, GEMINI_ERR_UNSUPPORTED, "PGM width 20000 -> refused", "20000");
    memcpy(bad, "P5\n2 2\n70000\n", 13);
    expect(bad, 13, GEMINI_ERR_FORMAT, "PGM maxval 70000 -> FORMAT", "maxval");
    expect((const unsigned char *)"GIF89a", 6, GEMINI_ERR_FORMAT, "GIF -> FORMAT naming bytes",
           "not PNG");
    expect(NULL, 0, GEMINI_ERR_FORMAT, "empty input -> FORMAT", NULL);

    test_flips("rgb8.png", 400);
    test_flips("prog420.jpg", 400);
    test_flips("base422.jpg", 400);
    test_flips("pal8.bmp", 200);
    free(png);
}

/* ---- API edges ---------------------------------------------------------------------------- */

typedef struct memory_reader {
    const unsigned char *data;
    size_t size, pos;
} memory_reader;

static int64_t read_some(void *user, void *buffer, size_t size)
{
    memory_reader *m = (memory_reader *)user;
    size_t n = m->size - m->pos;
    if (n > size) n = size;
    if (n > 7) n = 7;   /* short reads on purpose */
    memcpy(buffer, m->data + m->pos, n);
    m->pos += n;
    return (int64_t)n;
}

static int64_t read_fail(void *user, void *buffer, size_t size)
{
    (void)user;
    (void)buffer;
    (void)size;
    return -1;
}

static void test_api(void)
{
    size_t size = 0;
    unsigned char *data = read_file("rgb8_i.png", &size);
    gemini_vision_image a, b;
    memory_reader m;
    m.data = data;
    m.size = size;
    m.pos = 0;
    if (!data) {
        check(0, "api fixture", "rgb8_i.png");
        return;
    }
    check(gemini_vision_load_memory(data, size, NULL, &a) == GEMINI_OK &&
              gemini_vision_load_callbacks(read_some, &m, NULL, &b) == GEMINI_OK &&
              a.width == b.width && memcmp(a.pixels, b.pixels, (size_t)a.width * a.height * 3)
              == 0, "callbacks with 7-byte reads decode the same pixels as memory", "");
    check(a.format == GEMINI_VISION_FORMAT_PNG, "format reported as PNG", "");
    gemini_vision_image_free(&a);
    gemini_vision_image_free(&b);
    gemini_vision_image_free(&b);
    check(gemini_vision_load_callbacks(read_fail, NULL, NULL, &a) == GEMINI_ERR_IO,
          "failing read callback -> IO", gemini_last_error());
    check(gemini_vision_load("tests/vision/no-such-file.png", NULL, &a) == GEMINI_ERR_IO &&
              strstr(gemini_last_error(), "no-such-file") != NULL,
          "missing file -> IO naming the path", gemini_last_error());
    check(gemini_vision_load_memory(data, size, NULL, NULL) == GEMINI_ERR_INVALID_ARGUMENT,
          "NULL out -> INVALID_ARGUMENT", "");
    free(data);
}

/* ---- Y4M video ------------------------------------------------------------------------------ */

/* The BT.601 conversion in double precision, rounded: what the fixed-point code must give. */
static void y4m_reference_pixel(int y, int cb, int cr, int full, unsigned char rgb[3])
{
    double ys = full ? y : (y - 16) * 255.0 / 219.0, cs = full ? 1.0 : 255.0 / 224.0;
    double u = (cb - 128) * cs, v = (cr - 128) * cs, c[3];
    int k;
    c[0] = ys + 1.402 * v;
    c[1] = ys - 0.344136286 * u - 0.714136286 * v;
    c[2] = ys + 1.772 * u;
    for (k = 0; k < 3; k++) {
        double r = floor(c[k] + 0.5);
        rgb[k] = (unsigned char)(r < 0 ? 0 : r > 255 ? 255 : r);
    }
}

/* Builds a Y4M stream in memory: header, then `frames` frames of pseudo-random samples, each
   after frame_line. Returns its size; *out is malloc'd. */
static size_t y4m_build(const char *header, int w, int h, int chroma_w, int chroma_h,
                        int frames, const char *frame_line, unsigned seed, unsigned char **out)
{
    size_t frame_bytes = (size_t)w * h + 2 * (size_t)chroma_w * chroma_h;
    size_t size = strlen(header) + (size_t)frames * (strlen(frame_line) + frame_bytes), pos, i;
    unsigned char *d = (unsigned char *)malloc(size + 1);
    int f;
    memcpy(d, header, strlen(header));
    pos = strlen(header);
    for (f = 0; f < frames; f++) {
        memcpy(d + pos, frame_line, strlen(frame_line));
        pos += strlen(frame_line);
        for (i = 0; i < frame_bytes; i++) {
            seed = seed * 1103515245u + 12345u;
            d[pos++] = (unsigned char)(seed >> 16);
        }
    }
    *out = d;
    return size;
}

static void check_y4m_clip(const char *file, const char *ref_name, int w, int h, int frames,
                           const char *chroma, int max_allowed, double mean_allowed)
{
    char path[1024], what[400], detail[600];
    size_t ref_size = 0, n = (size_t)w * h * 3, i;
    unsigned char *ref = read_file(ref_name, &ref_size), *data;
    gemini_vision_video *video = NULL, *from_memory = NULL;
    const gemini_vision_video_info *info;
    gemini_vision_image image, again, first;
    gemini_result r;
    int f, max_abs = 0, same = 1;
    double total = 0;
    snprintf(what, sizeof what, "y4m %s (C%s, %d frames) vs ffmpeg's rgb24", file, chroma,
             frames);
    snprintf(path, sizeof path, "%s/%s", fixture_dir, file);
    r = gemini_vision_video_open(path, NULL, &video);
    if (r != GEMINI_OK || !ref || ref_size != n * frames) {
        check(0, what, r != GEMINI_OK ? gemini_last_error() : "reference missing or wrong size");
        gemini_vision_video_close(video);
        free(ref);
        return;
    }
    info = gemini_vision_video_get_info(video);
    if (info->width != w || info->height != h || info->frame_count != frames ||
        strcmp(info->colour_space, chroma) != 0) {
        snprintf(detail, sizeof detail, "header read as %dx%d, %lld frames, C%s", info->width,
                 info->height, (long long)info->frame_count, info->colour_space);
        check(0, what, detail);
    } else {
        /* Backwards, so each frame is found by its index, not by reading on. */
        for (f = frames - 1; f >= 0; f--) {
            if (gemini_vision_video_frame(video, f, &image) != GEMINI_OK) {
                check(0, what, gemini_last_error());
                break;
            }
            for (i = 0; i < n; i++) {
                int d = abs((int)image.pixels[i] - (int)ref[(size_t)f * n + i]);
                if (d > max_abs) max_abs = d;
                total += d;
            }
            gemini_vision_image_free(&image);
        }
        snprintf(detail, sizeof detail, "max abs %d, mean abs %.3f (limits %d, %.2f)", max_abs,
                 total / (n * frames), max_allowed, mean_allowed);
        check(f < 0 && max_abs <= max_allowed && total / (n * frames) <= mean_allowed, what,
              detail);
    }

    /* The memory form and gemini_vision_load (first frame) give the same pixels. */
    data = read_file(file, &ref_size);
    snprintf(what, sizeof what, "y4m %s: path, memory and gemini_vision_load agree", file);
    if (data && gemini_vision_video_open_memory(data, ref_size, NULL, &from_memory) ==
            GEMINI_OK && gemini_vision_load(path, NULL, &first) == GEMINI_OK) {
        for (f = 0; f < frames; f++) {
            if (gemini_vision_video_frame(video, f, &image) != GEMINI_OK ||
                gemini_vision_video_frame(from_memory, f, &again) != GEMINI_OK ||
                memcmp(image.pixels, again.pixels, n) != 0)
                same = 0;
            if (f == 0 && (first.format != GEMINI_VISION_FORMAT_Y4M ||
                           memcmp(first.pixels, image.pixels, n) != 0))
                same = 0;
            gemini_vision_image_free(&image);
            gemini_vision_image_free(&again);
        }
        gemini_vision_image_free(&first);
        check(same, what, "");
    } else {
        check(0, what, gemini_last_error());
    }
    gemini_vision_video_close(from_memory);
    gemini_vision_video_close(video);
    free(data);
    free(ref);
}

static void run_y4m_manifest(void)
{
    char path[1024], line[1024];
    const char *saved = fixture_dir;
    char dir[900];
    FILE *f;
    int lines = 0;
    snprintf(dir, sizeof dir, "%s/y4m", fixture_dir);
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    f = fopen(path, "r");
    check(f != NULL, "open y4m manifest", path);
    if (!f) return;
    fixture_dir = dir;
    while (fgets(line, sizeof line, f)) {
        char kind[32], file[256], ref[256], chroma[32];
        int w, h, frames, max_abs;
        double mean;
        if (sscanf(line, "%31s %255s %255s %d %d %d %31s %d %lf", kind, file, ref, &w, &h,
                   &frames, chroma, &max_abs, &mean) == 9 && strcmp(kind, "y4m") == 0) {
            check_y4m_clip(file, ref, w, h, frames, chroma, max_abs, mean);
            lines++;
        } else {
            check(0, "y4m manifest line", line);
        }
    }
    fclose(f);
    fixture_dir = saved;
    check(lines >= 10, "y4m manifest lists the clips", "");
}

/* Random samples in every layout and both ranges against the double-precision formula. */
static void test_y4m_conversion(void)
{
    static const struct { const char *c; int sx, sy; } layouts[] = {
        {"420", 1, 1}, {"422", 1, 0}, {"444", 0, 0}};
    int l, full;
    for (l = 0; l < 3; l++)
        for (full = 0; full < 2; full++) {
            int w = 37, h = 21, cw = layouts[l].sx ? 19 : 37, ch = layouts[l].sy ? 11 : 21;
            char header[160], what[160], detail[160];
            unsigned char *data, want[3];
            gemini_vision_video *video;
            gemini_vision_image image;
            size_t size;
            int x, y, k, worst = 0, off = 0;
            snprintf(header, sizeof header, "YUV4MPEG2 W%d H%d C%s%s\n", w, h, layouts[l].c,
                     full ? " XCOLORRANGE=FULL" : "");
            size = y4m_build(header, w, h, cw, ch, 2, "FRAME\n", 7u + (unsigned)l, &data);
            snprintf(what, sizeof what, "y4m C%s %s range, 37x21 random samples vs the BT.601 "
                     "formula in double", layouts[l].c, full ? "full" : "limited");
            if (gemini_vision_video_open_memory(data, size, NULL, &video) != GEMINI_OK ||
                gemini_vision_video_frame(video, 1, &image) != GEMINI_OK) {
                check(0, what, gemini_last_error());
                free(data);
                continue;
            }
            {
                const unsigned char *f1 = data + strlen(header) + 6 +
                                          (size_t)(w * h + 2 * cw * ch) + 6;
                const unsigned char *cb = f1 + w * h, *cr = cb + cw * ch;
                for (y = 0; y < h; y++)
                    for (x = 0; x < w; x++) {
                        size_t c = (size_t)(y >> layouts[l].sy) * cw + (x >> layouts[l].sx);
                        y4m_reference_pixel(f1[y * w + x], cb[c], cr[c], full, want);
                        for (k = 0; k < 3; k++) {
                            int d = abs((int)image.pixels[3 * (y * w + x) + k] - want[k]);
                            if (d > worst) worst = d;
                            off += d != 0;
                        }
                    }
            }
            /* Fixed-point coefficients move a value only when it lies within ~0.002 of a
               rounding tie. */
            snprintf(detail, sizeof detail, "max abs %d, %d of %d values off (limits 1, 3)",
                     worst, off, w * h * 3);
            check(worst <= 1 && off <= 3, what, detail);
            gemini_vision_image_free(&image);
            gemini_vision_video_close(video);
            free(data);
        }
}

/* Opens a built stream with the memory form and checks the result and message. */
static int expect_y4m(const unsigned char *data, size_t size, gemini_result want,
                      const char *what, const char *needle)
{
    gemini_vision_video *video = (gemini_vision_video *)&video;
    gemini_result r = gemini_vision_video_open_memory(data, size, NULL, &video);
    char detail[600];
    int ok = r == want && (r == GEMINI_OK) == (video != NULL) &&
             (!needle || strstr(gemini_last_error(), needle) != NULL);
    snprintf(detail, sizeof detail, "%s: %s", gemini_result_string(r),
             r == GEMINI_OK ? "" : gemini_last_error());
    check(ok, what, detail);
    gemini_vision_video_close(video);
    return ok;
}

/* A header line and one 4x2 4:2:0 frame (8 + 2 + 2 samples). */
static size_t y4m_one(const char *header, unsigned char *out, size_t cap)
{
    size_t n = strlen(header);
    if (n + 6 + 12 > cap) return 0;
    memcpy(out, header, n);
    memcpy(out + n, "FRAME\n", 6);
    memset(out + n + 6, 128, 12);
    return n + 18;
}

static void test_y4m_header(void)
{
    unsigned char buf[256], *data, *big;
    gemini_vision_video *video;
    const gemini_vision_video_info *info;
    size_t size, i;
    int ok;

    /* Every field read; frame parameters skipped. */
    size = y4m_build("YUV4MPEG2 W6 H4 F30000:1001 It A10:11 C422 XCOLORRANGE=FULL Zunknown "
                     "XCOMMENT=yes\n", 6, 4, 3, 4, 10, "FRAME Ip XFRAME=1 A1:1\n", 3u, &data);
    ok = gemini_vision_video_open_memory(data, size, NULL, &video) == GEMINI_OK;
    info = gemini_vision_video_get_info(video);
    check(ok && info->width == 6 && info->height == 4 && info->rate_num == 30000 &&
              info->rate_den == 1001 && info->interlace == 't' && info->aspect_num == 10 &&
              info->aspect_den == 11 && info->chroma == GEMINI_VISION_CHROMA_422 &&
              info->full_range == 1 && info->frame_count == 10 && info->frame_bytes == 48,
          "y4m header fields and frames with parameters", ok ? "" : gemini_last_error());
    if (ok) {
        int64_t idx[16];
        double sec[16];
        gemini_vision_image image;
        static const int64_t want4[4] = {0, 2, 5, 7}, want13[13] = {0, 0, 1, 2, 3, 3, 4, 5, 6,
                                                                     6, 7, 8, 9};
        int good = gemini_vision_video_sample(video, 4, idx, sec) == GEMINI_OK;
        for (i = 0; i < 4; i++)
            good &= idx[i] == want4[i] && fabs(sec[i] - want4[i] * 1001.0 / 30000.0) < 1e-12;
        check(good, "y4m sample 4 of 10 frames: 0 2 5 7 at index * 1001 / 30000 s", "");
        good = gemini_vision_video_sample(video, 13, idx, NULL) == GEMINI_OK;
        for (i = 0; i < 13; i++) good &= idx[i] == want13[i];
        check(good, "y4m sample 13 of 10 frames repeats frames, floor(i * 10 / 13)", "");
        good = gemini_vision_video_sample(video, 1, idx, sec) == GEMINI_OK && idx[0] == 0 &&
               sec[0] == 0;
        check(good, "y4m sample 1 frame: the first", "");
        check(gemini_vision_video_sample(video, 0, idx, sec) == GEMINI_ERR_INVALID_ARGUMENT,
              "y4m sample n = 0 -> INVALID_ARGUMENT", gemini_last_error());
        check(gemini_vision_video_frame(video, 10, &image) == GEMINI_ERR_INVALID_ARGUMENT &&
                  image.pixels == NULL && strstr(gemini_last_error(), "0..9") != NULL,
              "y4m frame 10 of 10 -> INVALID_ARGUMENT naming the range", gemini_last_error());
        check(gemini_vision_video_frame(video, -1, &image) == GEMINI_ERR_INVALID_ARGUMENT,
              "y4m frame -1 -> INVALID_ARGUMENT", "");
        check(gemini_vision_video_frame(video, 9, &image) == GEMINI_OK && image.width == 6 &&
                  image.channels == 3, "y4m last frame decodes", "");
        gemini_vision_image_free(&image);
    }
    gemini_vision_video_close(video);
    free(data);

    /* Defaults when fields are absent; an empty stream has no frames to sample. */
    size = y4m_one("YUV4MPEG2 W4 H2\n", buf, sizeof buf);
    ok = gemini_vision_video_open_memory(buf, size, NULL, &video) == GEMINI_OK;
    info = gemini_vision_video_get_info(video);
    check(ok && info->rate_num == 25 && info->rate_den == 1 && info->aspect_num == 0 &&
              info->interlace == '?' && strcmp(info->colour_space, "420") == 0 &&
              info->full_range == 0 && info->frame_count == 1,
          "y4m defaults: F25:1, A0:0, I?, C420, limited range", "");
    gemini_vision_video_close(video);
    ok = gemini_vision_video_open_memory("YUV4MPEG2 W4 H2 F0:0\n", 21, NULL, &video) ==
         GEMINI_OK;
    info = gemini_vision_video_get_info(video);
    check(ok && info->frame_count == 0 && info->rate_num == 25 &&
              gemini_vision_video_sample(video, 2, (int64_t *)buf, NULL) == GEMINI_ERR_FORMAT,
          "y4m header only: 0 frames, F0:0 read as 25:1, sample -> FORMAT", "");
    gemini_vision_video_close(video);
    {
        gemini_vision_image image;
        check(gemini_vision_load_memory("YUV4MPEG2 W4 H2\n", 16, NULL, &image) ==
                  GEMINI_ERR_FORMAT && strstr(gemini_last_error(), "no frames") != NULL,
              "gemini_vision_load of a Y4M without frames -> FORMAT", gemini_last_error());
    }

    /* Hostile headers. */
#define Y4M_EXPECT(header, result, what, needle)                                            \
    do {                                                                                  \
        size = y4m_one(header, buf, sizeof buf);                                          \
        expect_y4m(buf, size, result, what, needle);                                      \
    } while (0)
    Y4M_EXPECT("YUV4MPEG2 W20000 H2\n", GEMINI_ERR_UNSUPPORTED, "y4m W20000 -> refused, named",
               "width 20000");
    Y4M_EXPECT("YUV4MPEG2 W16000 H16000\n", GEMINI_ERR_UNSUPPORTED,
               "y4m 16000x16000 -> over the pixel cap", "cap");
    Y4M_EXPECT("YUV4MPEG2 W99999999999 H2\n", GEMINI_ERR_FORMAT, "y4m W99999999999 -> FORMAT",
               "W value \"99999999999\"");
    Y4M_EXPECT("YUV4MPEG2 W0 H2\n", GEMINI_ERR_FORMAT, "y4m W0 -> FORMAT", "W value \"0\"");
    Y4M_EXPECT("YUV4MPEG2 W4 H-2\n", GEMINI_ERR_FORMAT, "y4m H-2 -> FORMAT", "H value \"-2\"");
    Y4M_EXPECT("YUV4MPEG2 W4\n", GEMINI_ERR_FORMAT, "y4m without H -> FORMAT", "H (height)");
    Y4M_EXPECT("YUV4MPEG2 H2\n", GEMINI_ERR_FORMAT, "y4m without W -> FORMAT", "W (width)");
    Y4M_EXPECT("YUV4MPEG2 W4 H2 F30:0\n", GEMINI_ERR_FORMAT, "y4m F30:0 -> FORMAT", "\"30:0\"");
    Y4M_EXPECT("YUV4MPEG2 W4 H2 Fabc\n", GEMINI_ERR_FORMAT, "y4m Fabc -> FORMAT", "frame rate");
    Y4M_EXPECT("YUV4MPEG2 W4 H2 A1\n", GEMINI_ERR_FORMAT, "y4m A1 -> FORMAT", "aspect");
    Y4M_EXPECT("YUV4MPEG2 W4 H2 Ix\n", GEMINI_ERR_FORMAT, "y4m Ix -> FORMAT", "\"x\"");
    Y4M_EXPECT("YUV4MPEG2 W4 H2 C420p10 XYSCSS=420P10\n", GEMINI_ERR_UNSUPPORTED,
               "y4m C420p10 -> UNSUPPORTED, named", "\"420p10\"");
    Y4M_EXPECT("YUV4MPEG2 W4 H2 C444alpha\n", GEMINI_ERR_UNSUPPORTED,
               "y4m C444alpha -> UNSUPPORTED", "444alpha");
    Y4M_EXPECT("YUV4MPEG W4 H2\n", GEMINI_ERR_FORMAT, "y4m without the signature -> FORMAT",
               "YUV4MPEG2");
    Y4M_EXPECT("FRAME\n", GEMINI_ERR_FORMAT, "y4m missing stream header -> FORMAT",
               "YUV4MPEG2");
    size = y4m_one("YUV4MPEG2 W4 H2\n", buf, sizeof buf);
    memcpy(buf + 16, "FRAMX\n", 6);
    expect_y4m(buf, size, GEMINI_ERR_FORMAT, "y4m frame header FRAMX -> FORMAT", "frame 0");
    expect_y4m((const unsigned char *)"YUV4MPEG2 W4 H2", 15, GEMINI_ERR_FORMAT,
               "y4m header without its newline -> FORMAT", "newline");
    expect_y4m(NULL, 0, GEMINI_ERR_FORMAT, "y4m empty input -> FORMAT", "too few");
#undef Y4M_EXPECT

    /* A long X comment: 60000 bytes are fine, a line over 65536 bytes is refused. */
    big = (unsigned char *)malloc(80000);
    for (i = 0; i < 2; i++) {
        size_t comment = i ? 70000 : 60000;
        memcpy(big, "YUV4MPEG2 W4 H2 X", 17);
        memset(big + 17, 'c', comment);
        size = 17 + comment + y4m_one("\n", big + 17 + comment, 80000 - 17 - comment);
        expect_y4m(big, size, i ? GEMINI_ERR_FORMAT : GEMINI_OK, i ? "y4m 70000-byte header "
                   "line -> FORMAT" : "y4m 60000-byte X comment accepted", i ? "65536" : NULL);
    }
    free(big);

    /* A caller's smaller cap. */
    {
        gemini_vision_decode_params p = gemini_vision_decode_default_params();
        p.max_pixels = 7;
        size = y4m_one("YUV4MPEG2 W4 H2\n", buf, sizeof buf);
        check(gemini_vision_video_open_memory(buf, size, &p, &video) == GEMINI_ERR_UNSUPPORTED &&
                  video == NULL, "y4m caller's max_pixels 7 refuses 4x2", gemini_last_error());
    }
}

/* Every prefix of a clip fails with a message, except those that end exactly after a frame,
   which open with that many frames. */
static void test_y4m_truncation(const char *file, int frames)
{
    char name[300], what[300], detail[200];
    size_t size = 0, cut, header;
    unsigned char *data;
    int wrong = 0, whole = 0;
    snprintf(name, sizeof name, "y4m/%s", file);
    data = read_file(name, &size);
    if (!data) {
        check(0, "y4m truncation fixture", name);
        return;
    }
    header = (size_t)((unsigned char *)memchr(data, '\n', size) - data) + 1;
    for (cut = 0; cut < size; cut++) {
        gemini_vision_video *video;
        unsigned char *copy = (unsigned char *)malloc(cut + 1);
        gemini_result r;
        size_t frame = (size - header) / (size_t)frames;
        memcpy(copy, data, cut);
        r = gemini_vision_video_open_memory(copy, cut, NULL, &video);
        if (r == GEMINI_OK) {
            const gemini_vision_video_info *info = gemini_vision_video_get_info(video);
            whole++;
            if (cut < header || (cut - header) % frame != 0 ||
                info->frame_count != (int64_t)((cut - header) / frame))
                wrong++;
        } else if (video != NULL || gemini_last_error()[0] == 0) {
            wrong++;
        }
        gemini_vision_video_close(video);
        free(copy);
    }
    snprintf(what, sizeof what, "every truncation of %s fails, or ends on a frame", file);
    snprintf(detail, sizeof detail, "%zu prefixes, %d open (whole frames), %d wrong", size,
             whole, wrong);
    check(wrong == 0 && whole == frames, what, detail);
    free(data);
}

static void test_y4m_flips(const char *file, int rounds)
{
    char name[300], what[300], detail[200];
    size_t size = 0;
    unsigned char *data, *copy;
    unsigned state = 99;
    int i, k, opened = 0, refused = 0;
    snprintf(name, sizeof name, "y4m/%s", file);
    data = read_file(name, &size);
    if (!data) {
        check(0, "y4m flip fixture", name);
        return;
    }
    copy = (unsigned char *)malloc(size);
    for (i = 0; i < rounds; i++) {
        gemini_vision_video *video;
        memcpy(copy, data, size);
        for (k = 0; k < 1 + i % 3; k++) {
            state = state * 1103515245u + 12345u;
            /* Mostly in the header and frame lines, where the parsing is. */
            copy[(state >> 8) % (i % 2 ? size : 120)] ^= (unsigned char)(1u << ((state >> 4) & 7));
        }
        if (gemini_vision_video_open_memory(copy, size, NULL, &video) == GEMINI_OK) {
            const gemini_vision_video_info *info = gemini_vision_video_get_info(video);
            int64_t f;
            for (f = 0; f < info->frame_count; f++) {
                gemini_vision_image image;
                gemini_vision_video_frame(video, f, &image);
                gemini_vision_image_free(&image);
            }
            opened++;
        } else {
            refused++;
        }
        gemini_vision_video_close(video);
    }
    snprintf(what, sizeof what, "%d random corruptions of %s handled", rounds, file);
    snprintf(detail, sizeof detail, "%d opened, %d refused", opened, refused);
    check(1, what, detail);
    free(copy);
    free(data);
}

static void test_y4m_api(void)
{
    size_t size = 0;
    unsigned char *data = read_file("y4m/c422.y4m", &size);
    gemini_vision_video *a = NULL, *b = NULL;
    gemini_vision_image fa, fb;
    memory_reader m;
    int same = 0;
    if (!data) {
        check(0, "y4m api fixture", "y4m/c422.y4m");
        return;
    }
    m.data = data;
    m.size = size;
    m.pos = 0;
    if (gemini_vision_video_open_memory(data, size, NULL, &a) == GEMINI_OK &&
        gemini_vision_video_open_callbacks(read_some, &m, NULL, &b) == GEMINI_OK &&
        gemini_vision_video_frame(a, 2, &fa) == GEMINI_OK &&
        gemini_vision_video_frame(b, 2, &fb) == GEMINI_OK) {
        same = memcmp(fa.pixels, fb.pixels, (size_t)fa.width * fa.height * 3) == 0;
        gemini_vision_image_free(&fa);
        gemini_vision_image_free(&fb);
    }
    check(same, "y4m callbacks with 7-byte reads give the memory form's frames", "");
    gemini_vision_video_close(a);
    gemini_vision_video_close(b);
    check(gemini_vision_video_open_callbacks(read_fail, NULL, NULL, &a) == GEMINI_ERR_IO &&
              a == NULL, "y4m failing read callback -> IO", gemini_last_error());
    check(gemini_vision_video_open("tests/vision/y4m/no-such.y4m", NULL, &a) == GEMINI_ERR_IO &&
              strstr(gemini_last_error(), "no-such.y4m") != NULL,
          "y4m missing file -> IO naming the path", gemini_last_error());
    check(gemini_vision_video_open("tests/vision/rgb8.png", NULL, &a) == GEMINI_ERR_FORMAT &&
              strstr(gemini_last_error(), "rgb8.png") != NULL,
          "y4m open of a PNG -> FORMAT naming the path", gemini_last_error());
    check(gemini_vision_video_open_memory(data, size, NULL, NULL) ==
              GEMINI_ERR_INVALID_ARGUMENT && gemini_vision_video_get_info(NULL) == NULL,
          "y4m NULL out -> INVALID_ARGUMENT", "");
    check(gemini_vision_video_frame(NULL, 0, &fa) == GEMINI_ERR_INVALID_ARGUMENT &&
              fa.pixels == NULL, "y4m NULL video -> INVALID_ARGUMENT", "");
    gemini_vision_video_close(NULL);
    free(data);
}

/* ---- PaliGemma detection answers ---------------------------------------------------------- */

/* The pixel a <loc> value maps to, computed another way than the library: in floating point
   (v / 1024 * side is exact in a double), rounded by nearbyint (ties to even by default). */
static int loc_pixel(int v, int side)
{
    return (int)nearbyint((double)v / 1024.0 * side);
}

/* Parses text from a heap copy of exactly its size, so that a read past the NUL is caught
   under AddressSanitizer. */
static gemini_result parse_copy(const char *text, int w, int h, gemini_vision_box *boxes,
                                int max, int32_t *n, char **copy)
{
    size_t size = strlen(text) + 1;
    *copy = (char *)malloc(size);
    if (!*copy) return GEMINI_ERR_OUT_OF_MEMORY;
    memcpy(*copy, text, size);
    return gemini_vision_parse_detections(*copy, w, h, boxes, max, n);
}

/* Frees a parse_copy buffer and forgets it (a check that stops early never made a new one). */
static void release(char **copy)
{
    free(*copy);
    *copy = NULL;
}

static int label_is(const gemini_vision_box *box, const char *want)
{
    if (!want) return box->label == NULL && box->label_length == 0;
    return box->label != NULL && box->label_length == (int32_t)strlen(want) &&
           memcmp(box->label, want, strlen(want)) == 0;
}

static int box_is(const gemini_vision_box *box, int w, int h, int ymin, int xmin, int ymax,
                  int xmax)
{
    return box->loc[0] == ymin && box->loc[1] == xmin && box->loc[2] == ymax &&
           box->loc[3] == xmax && box->y0 == loc_pixel(ymin, h) &&
           box->x0 == loc_pixel(xmin, w) && box->y1 == loc_pixel(ymax, h) &&
           box->x1 == loc_pixel(xmax, w);
}

static void test_detections(void)
{
    gemini_vision_box boxes[8];
    int32_t n = -1;
    char *copy = NULL, detail[160];
    int ok, k;
    const char *three = "<loc0123><loc0045><loc0987><loc0999> cat ; "
                        "<loc0000><loc0512><loc1023><loc1023> traffic light ;"
                        "<loc0256><loc0256><loc0768><loc0768>dog";
    const char *seg16 = "<seg000><seg001><seg002><seg003><seg004><seg005><seg006><seg007>"
                        "<seg008><seg009><seg010><seg011><seg012><seg013><seg014><seg127>";
    char text[1024];

    /* several boxes, the pixels of a 640 x 480 original */
    ok = parse_copy(three, 640, 480, boxes, 8, &n, &copy) == GEMINI_OK && n == 3 &&
         box_is(&boxes[0], 640, 480, 123, 45, 987, 999) && label_is(&boxes[0], "cat") &&
         box_is(&boxes[1], 640, 480, 0, 512, 1023, 1023) &&
         label_is(&boxes[1], "traffic light") &&
         box_is(&boxes[2], 640, 480, 256, 256, 768, 768) && label_is(&boxes[2], "dog") &&
         !boxes[0].has_mask && boxes[1].x0 == 320 && boxes[1].y1 == 480 &&
         boxes[1].x1 == 639 && boxes[2].x0 == 160 && boxes[2].y1 == 360;
    snprintf(detail, sizeof detail, "n %d, box 0 (%d %d %d %d)", (int)n, (int)boxes[0].x0,
             (int)boxes[0].y0, (int)boxes[0].x1, (int)boxes[0].y1);
    check(ok, "detections: three boxes, labels, pixels of 640x480 (y, x order, /1024)", detail);
    release(&copy);

    /* y_min, x_min, y_max, x_max: a wide short box stays wide and short */
    ok = parse_copy("<loc0100><loc0000><loc0200><loc1000> bar", 1024, 1024, boxes, 8, &n,
                    &copy) == GEMINI_OK && n == 1 && boxes[0].x0 == 0 && boxes[0].y0 == 100 &&
         boxes[0].x1 == 1000 && boxes[0].y1 == 200;
    check(ok, "detections: order y_min x_min y_max x_max", "");
    release(&copy);

    /* rounding: v / 1024 * side to nearest, ties to even (Python's round) */
    ok = parse_copy("<loc0512><loc0512><loc0256><loc0512>", 5, 3, boxes, 8, &n, &copy) ==
             GEMINI_OK && n == 1 && boxes[0].y0 == 2 /* 1.5 */ && boxes[0].x0 == 2 /* 2.5 */ &&
         boxes[0].y1 == 1 /* 0.75 */ && boxes[0].x1 == 2;
    release(&copy);
    ok = ok && parse_copy("<loc0512><loc0768><loc0640><loc0384>", 1, 7, boxes, 8, &n, &copy) ==
                   GEMINI_OK && n == 1 && boxes[0].y0 == 4 /* 3.5 */ &&
         boxes[0].x0 == 1 /* 0.75 */ && boxes[0].y1 == 4 /* 4.375 */ &&
         boxes[0].x1 == 0 /* 0.375 */;
    check(ok, "detections: rounding to nearest, ties to even", "");
    release(&copy);

    /* missing labels: at the end, before " ; ", before the next box */
    ok = parse_copy("<loc0010><loc0020><loc0030><loc0040> ; <loc0001><loc0002><loc0003>"
                    "<loc0004><loc0005><loc0006><loc0007><loc0008>   ", 100, 100, boxes, 8, &n,
                    &copy) == GEMINI_OK && n == 3 && label_is(&boxes[0], NULL) &&
         label_is(&boxes[1], NULL) && label_is(&boxes[2], NULL) &&
         box_is(&boxes[2], 100, 100, 5, 6, 7, 8);
    check(ok, "detections: boxes without labels", "");
    release(&copy);

    /* malformed tokens are skipped; a well-formed box after them is found */
    ok = parse_copy("<loc12><loc0001><loc0002><loc0003> <loc00a1><loc0001><loc0002><loc0003>"
                    "<loc0004 <LOC0001><loc0002><loc0003><loc0004><loc0005> <loc00001><loc0001>"
                    "<loc0002><loc0003> x <loc0001><loc0002><loc0003>", 10, 10, boxes, 8, &n,
                    &copy) == GEMINI_OK && n == 1 && box_is(&boxes[0], 10, 10, 2, 3, 4, 5) &&
         label_is(&boxes[0], NULL);
    snprintf(detail, sizeof detail, "n %d", (int)n);
    check(ok, "detections: short, non-digit, unclosed, upper-case tokens are skipped", detail);
    release(&copy);
    ok = parse_copy("caption: a cat <loc0001><loc0002> <loc0003><loc0004> ; no boxes here",
                    10, 10, boxes, 8, &n, &copy) == GEMINI_OK && n == 0;
    check(ok, "detections: plain text and split runs give no box", "");
    release(&copy);

    /* <seg> tokens: sixteen after a space are the mask, the label follows them */
    snprintf(text, sizeof text, "<loc0100><loc0200><loc0300><loc0400> %s wall ; "
             "<loc0001><loc0002><loc0003><loc0004>%s", seg16, seg16);
    ok = parse_copy(text, 1024, 1024, boxes, 8, &n, &copy) == GEMINI_OK && n == 2 &&
         boxes[0].has_mask && label_is(&boxes[0], "wall") && boxes[1].has_mask &&
         label_is(&boxes[1], NULL) && box_is(&boxes[1], 1024, 1024, 1, 2, 3, 4);
    for (k = 0; ok && k < 15; k++) ok = boxes[0].seg[k] == k;
    ok = ok && boxes[0].seg[15] == 127;
    check(ok, "detections: 16 <seg> tokens are the mask and are parsed away", "");
    release(&copy);
    /* fifteen <seg> tokens are no mask: skipped as text, the box has no label */
    snprintf(text, sizeof text, "<loc0100><loc0200><loc0300><loc0400> %s cat",
             seg16 + 8);
    ok = parse_copy(text, 64, 64, boxes, 8, &n, &copy) == GEMINI_OK && n == 1 &&
         !boxes[0].has_mask && label_is(&boxes[0], NULL) && boxes[0].seg[0] == 0;
    check(ok, "detections: 15 <seg> tokens are no mask (and no label)", "");
    release(&copy);

    /* out-of-range numbers clamp: <loc> to 1023, <seg> to 127 */
    snprintf(text, sizeof text, "<loc5000><loc9999><loc1024><loc1023><seg999>%s x",
             seg16 + 8);
    ok = parse_copy(text, 2048, 100, boxes, 8, &n, &copy) == GEMINI_OK && n == 1 &&
         boxes[0].loc[0] == 1023 && boxes[0].loc[1] == 1023 && boxes[0].loc[2] == 1023 &&
         boxes[0].x0 == 2046 && boxes[0].y0 == 100 /* 99.9 */ && boxes[0].has_mask &&
         boxes[0].seg[0] == 127 && label_is(&boxes[0], "x");
    check(ok, "detections: numbers above 1023 / 127 clamp", "");
    release(&copy);

    /* more boxes than room: *n counts them all, max are written */
    memset(boxes, 0x5a, sizeof boxes);
    ok = parse_copy(three, 640, 480, boxes, 2, &n, &copy) == GEMINI_OK && n == 3 &&
         label_is(&boxes[1], "traffic light") && boxes[2].x0 == 0x5a5a5a5a;
    ok = ok && gemini_vision_parse_detections(copy, 640, 480, NULL, 0, &n) == GEMINI_OK &&
         n == 3;
    check(ok, "detections: *n counts every box, only max are written", "");
    release(&copy);

    /* bad arguments */
    ok = gemini_vision_parse_detections(NULL, 1, 1, boxes, 1, &n) ==
             GEMINI_ERR_INVALID_ARGUMENT && n == 0 &&
         gemini_vision_parse_detections("", 1, 1, boxes, 1, NULL) ==
             GEMINI_ERR_INVALID_ARGUMENT &&
         gemini_vision_parse_detections("", 0, 1, boxes, 1, &n) ==
             GEMINI_ERR_INVALID_ARGUMENT &&
         gemini_vision_parse_detections("", 1, -5, boxes, 1, &n) ==
             GEMINI_ERR_INVALID_ARGUMENT &&
         gemini_vision_parse_detections("", 1, 1, boxes, -1, &n) ==
             GEMINI_ERR_INVALID_ARGUMENT &&
         gemini_vision_parse_detections("", 1, 1, NULL, 1, &n) ==
             GEMINI_ERR_INVALID_ARGUMENT &&
         gemini_vision_parse_detections("", 1, 1, NULL, 0, &n) == GEMINI_OK && n == 0;
    check(ok, "detections: NULL text or n, size < 1, max < 0, NULL boxes -> INVALID_ARGUMENT",
          "");

    /* every prefix and random byte flips of a valid answer: no read past the end (under
       ASan), never more boxes than the text has room for (36 bytes a box) */
    snprintf(text, sizeof text, "%s ; <loc0100><loc0200><loc0300><loc0400> %s wall", three,
             seg16);
    ok = 1;
    for (k = 0; ok && k <= (int)strlen(text); k++) {
        char saved = text[k];
        text[k] = '\0';
        ok = parse_copy(text, 7, 9, boxes, 8, &n, &copy) == GEMINI_OK && n >= 0 &&
             n <= k / 36;
        release(&copy);
        text[k] = saved;
    }
    {
        uint32_t state = 12345;
        size_t length = strlen(text);
        char *flipped = (char *)malloc(length + 1);
        for (k = 0; ok && flipped && k < 3000; k++) {
            int f;
            memcpy(flipped, text, length + 1);
            for (f = 0; f < 4; f++) {
                state = state * 1664525u + 1013904223u;
                flipped[(state >> 8) % length] = (char)(1 + (state >> 20) % 255);
            }
            ok = gemini_vision_parse_detections(flipped, 640, 480, boxes, 8, &n) == GEMINI_OK;
            if (ok && n > 0 && n <= 8)
                ok = boxes[0].loc[0] <= 1023 && boxes[0].seg[15] <= 127 &&
                     boxes[0].x1 <= 640 && boxes[0].y1 <= 480 &&
                     (boxes[0].label == NULL ||
                      (boxes[0].label >= flipped &&
                       boxes[0].label + boxes[0].label_length <= flipped + length));
        }
        free(flipped);
    }
    check(ok, "detections: every prefix and 3000 flipped answers parse within bounds", "");
}

int main(int argc, char **argv)
{
    char detail[128];
    if (argc > 1) fixture_dir = argv[1];
    run_manifest();
    snprintf(detail, sizeof detail, "worst max abs %d, worst mean abs %.4f over all JPEGs",
             jpeg_worst_max, jpeg_worst_mean);
    check(1, "JPEG summary", detail);
    test_resize_basics();
    test_hostile();
    test_api();
    run_y4m_manifest();
    test_y4m_conversion();
    test_y4m_header();
    test_y4m_truncation("c420jpeg.y4m", 3);
    test_y4m_truncation("mono.y4m", 3);
    test_y4m_flips("c420mpeg2.y4m", 400);
    test_y4m_flips("odd420.y4m", 200);
    test_y4m_api();
    test_detections();
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed != 0;
}
