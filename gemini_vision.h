/* gemini_vision.h - image decoding and SigLIP-style preprocessing, a single-file C99 library.

   Version 0.1.0, shipped with gemini.h 0.1.0.

   Part of gemini.h, usable without it. Do this in exactly one C or C++ file

       #define GEMINI_VISION_IMPLEMENTATION
       #include "gemini_vision.h"

   gemini_tokenizer.h must sit beside this header: it holds the shared result enum and the
   per-thread error message. The vision implementation also emits the tokenizer's unless that
   was already emitted in the same file, so put GEMINI_VISION_IMPLEMENTATION in the same file
   as GEMINI_IMPLEMENTATION / GEMINI_TOKENIZER_IMPLEMENTATION when a program uses several.

   Build macros
       GEMINI_VISION_IMPLEMENTATION   emit the implementation
       GEMINI_STATIC                  make every function static (private to one file)
       GEMINI_MALLOC/REALLOC/FREE     override the allocator (all three or none)

   Quick start
       gemini_vision_image image;
       gemini_vision_preprocess_params pre = gemini_vision_preprocess_default_params();
       float *chw = malloc(3 * 224 * 224 * sizeof(float));
       if (gemini_vision_load("photo.jpg", NULL, &image) != GEMINI_OK)
           fprintf(stderr, "%s\n", gemini_last_error());
       gemini_vision_preprocess(image.pixels, image.width, image.height, &pre, chw);
       gemini_vision_image_free(&image);

   What it does
       Decodes PNG, JPEG, BMP and binary PPM/PGM to 8-bit RGB, from a path, a memory block or
       read callbacks, and prepares model input the way Hugging Face's Pillow-backed image
       processors do: Pillow's BICUBIC or BILINEAR resize (with its antialiasing when
       shrinking and its 8-bit rounding between the two passes), times 1/255, minus mean,
       over std, planar float CHW. The resize equals Pillow's bit for bit.

       PNG   every colour type and bit depth (1/2/4/8/16, palette, grey, grey+alpha, RGB,
             RGBA), tRNS, Adam7, all five filters; own inflate (stored, fixed and dynamic
             Huffman blocks) with the Adler-32 of the zlib stream and the CRC-32 of every chunk
             checked. Unknown ancillary chunks are skipped; unknown critical chunks refused.
       JPEG  baseline and extended sequential (SOF0/SOF1) and progressive (SOF2) Huffman, 8-bit,
             greyscale or three components (YCbCr; RGB when an Adobe marker or the component
             ids say so) with any sampling factors 1..4, restart markers. Chroma is upsampled
             with the triangle ("fancy") filter libjpeg uses for 2x1, 2x2 and 1x2 and by
             replication otherwise. The IDCT is floating point, so results differ from
             libjpeg-turbo's integer IDCT by a unit or two on some pixels (the tests state the
             figures). Arithmetic coding, lossless, hierarchical, 12-bit and CMYK are refused
             as GEMINI_ERR_UNSUPPORTED.
       BMP   1/4/8-bit palette and 24/32-bit uncompressed, 32-bit with BITFIELDS masks,
             bottom-up and top-down, header sizes 12 and 40..124. RLE and 16-bit refused.
       PNM   binary P5 (PGM) and P6 (PPM), maxval 1..65535, comments.
       Y4M   YUV4MPEG2 video (see "Y4M video" below); gemini_vision_load* give its first frame.
       Also: gemini_vision_parse_detections reads the boxes (and mask codes) of a PaliGemma
       "detect" / "segment" answer and gives them in pixels of the original image.

   Colour rules (chosen to match Pillow's Image.open(f).convert("RGB"), the reference)
       - Alpha (an alpha channel, a palette tRNS or a tRNS colour key) is dropped by default,
         as convert("RGB") does; GEMINI_VISION_ALPHA_BLEND composites on a background colour
         instead: c' = (c*a + bg*(255-a) + 127) / 255.
       - 16-bit PNG samples keep their high byte (v >> 8), as Pillow does for 16-bit RGB(A).
         Pillow clips 16-bit greyscale to 255 instead (it opens those as 32-bit integer
         images); we do not copy that.
       - PNM samples become v*255/maxval rounded to nearest, ties to even (Pillow's figures).
       - Sub-byte greyscale is scaled to 0..255 (1 bit: x255, 2 bits: x85, 4 bits: x17).
       - A palette index past the end of the palette gives black.
       - JPEG EXIF orientation is applied by default (apply_exif_orientation = 1). Pillow's
         Image.open does NOT apply it (only ImageOps.exif_transpose does), but transformers'
         load_image, which its pipelines use to open paths and URLs, does, and it is how the
         photo was meant to be seen. Set apply_exif_orientation = 0 for the bytes Pillow's
         Image.open gives. EXIF in PNG (eXIf) is ignored.

   Y4M video (gemini_vision_video_open*, _frame, _sample)
       gemini_vision_video *video;
       int64_t index[8];
       double seconds[8];
       if (gemini_vision_video_open("clip.y4m", NULL, &video) == GEMINI_OK &&
           gemini_vision_video_sample(video, 8, index, seconds) == GEMINI_OK)
           for (i = 0; i < 8; i++)
               if (gemini_vision_video_frame(video, index[i], &image) == GEMINI_OK) {
                   gemini_vision_preprocess(image.pixels, image.width, image.height, &pre,
                                            chw + (size_t)i * 3 * 224 * 224);
                   gemini_vision_image_free(&image);
               }
       gemini_vision_video_close(video);

       Stream header: W and H (required), F frame rate n:d (absent or 0:0 means 25:1, as
       ffmpeg assumes), A pixel aspect n:d (0:0 = unknown), I interlacing, C colour space and X
       comments; other tags are ignored, as ffmpeg ignores them. C may be 420jpeg, 420paldv,
       420mpeg2, 420 (the default when absent), 422, 444 or mono; anything else (10-bit, alpha,
       411 ...) is GEMINI_ERR_UNSUPPORTED naming the value. I may be p, t, b, m or ?: interlaced
       frames are converted as whole progressive pictures (no deinterlacing, the field order is
       only reported), which is what ffmpeg does without a deinterlace filter. Each frame is
       "FRAME", optional parameters (read and ignored, per-frame interlacing included), a
       newline, then the Y plane and, unless mono, the Cb and Cr planes of ceil(W/2) x ceil(H/2)
       (4:2:0), ceil(W/2) x H (4:2:2) or W x H (4:4:4) samples. Opening scans every frame header
       (the frame count is not stored in the file); a frame whose samples are cut short fails
       the open with GEMINI_ERR_FORMAT naming the frame, so does a line that is not "FRAME".
       Colour: Y'CbCr -> RGB with the BT.601 matrix (Kr 0.299, Kb 0.114), limited range
       (Y 16..235, C 16..240) unless an X parameter says XCOLORRANGE=FULL; no colour-space
       field exists in Y4M and ffmpeg assumes the same. R = 1.164384 (Y-16) + 1.596027 (Cr-128),
       G = 1.164384 (Y-16) - 0.391762 (Cb-128) - 0.812968 (Cr-128),
       B = 1.164384 (Y-16) + 2.017232 (Cb-128), in 16-bit fixed point, rounded, clipped.
       Chroma is upsampled by replication (each chroma sample covers its 2x2 or 2x1 block), as
       swscale's unscaled YUV->RGB path does, which ffmpeg uses by default for 4:2:0 and 4:2:2
       frames of even height. Against ffmpeg 5.1's own decode (tests/vision/y4m/) we are within
       3 per value, mean 1.2-1.5, at even heights: its SIMD converter truncates, lying about 1
       below exact. 4:4:4 agrees within 1. For 4:2:0 frames of odd height ffmpeg switches to its
       filtered (bicubic) scaler, so values differ by up to ~130 at sharp colour edges (mean
       ~7). Mono gives R = G = B = Y unchanged, as ffmpeg does (it reads mono as full-range
       grey whatever XCOLORRANGE says).
       gemini_vision_video_sample picks frame floor(i * frame_count / n) for i = 0..n-1 (the
       first frame always, then evenly spaced; frames repeat when n > frame_count), which is
       transformers' default video sampling (arange(0, total, total / n)) in exact integer
       arithmetic, and gives each frame's time as index * rate_den / rate_num seconds.

   Limitations
       - No GIF, WebP, TIFF, AVIF or HEIC; no ICC colour management (Pillow applies none
         either); EXIF orientation is read from JPEG only.
       - JPEG pixels are within a few units of libjpeg-turbo's, not identical (float IDCT).
       - 16-bit samples are reduced to 8 bits before preprocessing, as the reference does.
       - The SigLIP encoder and PaliGemma's projector are in gemini.h (gemini_encode_image);
         Gemma 3's projector and pan-and-scan crops are not here yet. The resize is scalar
         and single-threaded.

   Limits (untrusted input)
       Every header field is checked against the bytes present before use; a malformed file
       gives GEMINI_ERR_FORMAT (GEMINI_ERR_CHECKSUM for a CRC or Adler-32 mismatch) and a
       message naming the field and its value, never a read out of bounds. Images are capped
       at 16384 pixels a side and 64 Mi (67108864) pixels in all (lower caps may be set per
       call), files and callback streams at 1 GiB (Y4M opened from a path: no size cap, frames
       are read one at a time; at most GEMINI_VISION_Y4M_MAX_FRAMES frames, header lines at
       most 65536 bytes). Besides the file and the 3-byte-a-pixel
       output, PNG needs its filtered data (up to 8 bytes a pixel for 16-bit RGBA) and JPEG up
       to 12 bytes a pixel (the coefficients of the whole image are kept, then the planes).

   Thread safety: no global state except the per-thread error message; any number of threads
   may decode and preprocess at once.
*/
#ifndef GEMINI_VISION_H
#define GEMINI_VISION_H

/* Once the tokenizer's implementation is in this file its declarations are too; including it
   again would emit the implementation twice while its macro is still defined. */
#ifndef GEMINI_TOKENIZER_IMPLEMENTED
#include "gemini_tokenizer.h"
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The hard caps; gemini_vision_decode_params can only lower them. */
#define GEMINI_VISION_MAX_SIDE 16384
#define GEMINI_VISION_MAX_PIXELS ((uint64_t)64 * 1024 * 1024)

/* File formats, as detected from the first bytes (never from a file name). */
typedef enum gemini_vision_format {
    GEMINI_VISION_FORMAT_UNKNOWN = 0,
    GEMINI_VISION_FORMAT_PNG = 1,
    GEMINI_VISION_FORMAT_JPEG = 2,
    GEMINI_VISION_FORMAT_BMP = 3,
    GEMINI_VISION_FORMAT_PNM = 4,
    GEMINI_VISION_FORMAT_Y4M = 5    /* YUV4MPEG2 video; as an image, its first frame */
} gemini_vision_format;

/* What happens to transparency. */
typedef enum gemini_vision_alpha {
    GEMINI_VISION_ALPHA_DROP = 0,   /* ignore it, as Pillow's convert("RGB") does (default) */
    GEMINI_VISION_ALPHA_BLEND = 1   /* composite on decode_params.background */
} gemini_vision_alpha;

typedef struct gemini_vision_decode_params {
    int32_t apply_exif_orientation; /* 1 (default): rotate/flip JPEGs as EXIF says; 0: don't */
    int32_t alpha;                  /* a gemini_vision_alpha; default GEMINI_VISION_ALPHA_DROP */
    uint8_t background[3];          /* RGB behind transparent pixels when blending; white */
    uint32_t max_side;              /* 0 or above GEMINI_VISION_MAX_SIDE: that cap */
    uint64_t max_pixels;            /* 0 or above GEMINI_VISION_MAX_PIXELS: that cap */
} gemini_vision_decode_params;

/* A decoded image: width*height pixels of 8-bit R, G, B, row-major, top row first. */
typedef struct gemini_vision_image {
    int32_t width, height;
    int32_t channels;      /* in the file: 1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha
                              (a tRNS chunk counts as alpha); the pixels are always RGB */
    int32_t format;        /* a gemini_vision_format */
    int32_t orientation;   /* the EXIF orientation found, 1..8 (1 when there is none) */
    uint8_t *pixels;       /* width * height * 3 bytes; free with gemini_vision_image_free */
} gemini_vision_image;

/* Read callback: copy up to size bytes into buffer and return how many were copied, 0 at the
   end of the data, or a negative number on an error (the load then fails with
   GEMINI_ERR_IO). */
typedef int64_t (*gemini_vision_read_fn)(void *user, void *buffer, size_t size);

/* The defaults described at each field. */
GEMINI_API gemini_vision_decode_params gemini_vision_decode_default_params(void);

/* Decodes an image file. params may be NULL for the defaults. On success *out holds the
   image; on failure *out is zeroed (pixels NULL) and the result is GEMINI_ERR_INVALID_ARGUMENT
   (NULL pointers, bad params), GEMINI_ERR_IO (cannot open or read, a read callback failed),
   GEMINI_ERR_FORMAT (not a supported format, or malformed: the message names the field and
   value), GEMINI_ERR_CHECKSUM (PNG CRC-32 or zlib Adler-32 mismatch), GEMINI_ERR_UNSUPPORTED
   (a valid file using a feature listed as refused above, or larger than the caps) or
   GEMINI_ERR_OUT_OF_MEMORY. The memory form does not keep a pointer to data. */
GEMINI_API gemini_result gemini_vision_load(const char *path,
                                            const gemini_vision_decode_params *params,
                                            gemini_vision_image *out);
GEMINI_API gemini_result gemini_vision_load_memory(const void *data, size_t size,
                                                   const gemini_vision_decode_params *params,
                                                   gemini_vision_image *out);
/* Reads the whole stream through read(user, ...) first (at most 1 GiB), then decodes it. */
GEMINI_API gemini_result gemini_vision_load_callbacks(gemini_vision_read_fn read, void *user,
                                                      const gemini_vision_decode_params *params,
                                                      gemini_vision_image *out);

/* Frees the pixels and zeroes the struct (NULL or an already freed image is fine). */
GEMINI_API void gemini_vision_image_free(gemini_vision_image *image);

/* The format of a block of bytes from its signature; GEMINI_VISION_FORMAT_UNKNOWN if none. */
GEMINI_API gemini_vision_format gemini_vision_detect(const void *data, size_t size);

/* Resampling filters, numbered as Pillow numbers them. */
typedef enum gemini_vision_filter {
    GEMINI_VISION_FILTER_BILINEAR = 2,   /* triangle, support 1 (Gemma 3) */
    GEMINI_VISION_FILTER_BICUBIC = 3     /* cubic convolution a = -0.5, support 2 (SigLIP) */
} gemini_vision_filter;

/* Resizes interleaved 8-bit pixels (channels 1..4) exactly as Pillow's Image.resize does:
   when shrinking the filter is widened by the scale factor (antialiasing), the horizontal pass
   runs first, each pass rounds and clips to 8 bits, and an axis whose size does not change is
   copied untouched. src and dst must not overlap. Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL
   pointers, a size outside 1..GEMINI_VISION_MAX_SIDE, channels outside 1..4, an unknown
   filter), GEMINI_ERR_OUT_OF_MEMORY; dst is then untouched. */
GEMINI_API gemini_result gemini_vision_resize(const uint8_t *src, int32_t src_width,
                                              int32_t src_height, int32_t channels,
                                              uint8_t *dst, int32_t dst_width,
                                              int32_t dst_height, int32_t filter);

typedef struct gemini_vision_preprocess_params {
    int32_t width, height;   /* output size; default 224 x 224 (PaliGemma 224) */
    int32_t filter;          /* a gemini_vision_filter; default BICUBIC (SiglipImageProcessor) */
    float rescale;           /* default 1/255 */
    float mean[3], std[3];   /* default 0.5 each, so values land in [-1, 1] */
} gemini_vision_preprocess_params;

/* SigLIP / PaliGemma defaults. For Gemma 3 set width = height = 896 and filter = BILINEAR. */
GEMINI_API gemini_vision_preprocess_params gemini_vision_preprocess_default_params(void);

/* Turns width x height RGB pixels into model input: resize (gemini_vision_resize), then
   out[c][y][x] = (v * rescale - mean[c]) / std[c] for c = R, G, B; out holds
   3 * params->height * params->width floats. Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL
   pointers, sizes outside 1..GEMINI_VISION_MAX_SIDE, an unknown filter, a std of zero),
   GEMINI_ERR_OUT_OF_MEMORY; out is then untouched. */
GEMINI_API gemini_result gemini_vision_preprocess(const uint8_t *rgb, int32_t width,
                                                  int32_t height,
                                                  const gemini_vision_preprocess_params *params,
                                                  float *out);

/* ---- Y4M (YUV4MPEG2) video ---------------------------------------------------------------- */

/* The most frames a video may hold (8 bytes of index each are kept). */
#define GEMINI_VISION_Y4M_MAX_FRAMES ((int64_t)1 << 22)

/* Chroma layouts. The four 4:2:0 names differ only in chroma siting, which the replicating
   upsampler does not use. */
typedef enum gemini_vision_chroma {
    GEMINI_VISION_CHROMA_420 = 0,   /* C420jpeg, C420paldv, C420mpeg2, C420 or no C */
    GEMINI_VISION_CHROMA_422 = 1,
    GEMINI_VISION_CHROMA_444 = 2,
    GEMINI_VISION_CHROMA_MONO = 3
} gemini_vision_chroma;

/* What the stream header says, and what the scan found. */
typedef struct gemini_vision_video_info {
    int32_t width, height;          /* W, H */
    int32_t chroma;                 /* a gemini_vision_chroma */
    char colour_space[12];          /* the C value as written, "420" when absent */
    int32_t interlace;              /* the I letter: 'p', 't', 'b', 'm' or '?' ('?' if absent) */
    int32_t rate_num, rate_den;     /* F, frames per second as a fraction; 25:1 if absent/0:0 */
    int32_t aspect_num, aspect_den; /* A, pixel aspect ratio; 0:0 (unknown) if absent */
    int32_t full_range;             /* 1 when an X parameter says XCOLORRANGE=FULL, else 0 */
    int64_t frame_count;            /* complete frames in the stream (0 is possible) */
    uint64_t frame_bytes;           /* bytes of samples in one frame */
} gemini_vision_video_info;

/* An open Y4M stream (opaque). */
typedef struct gemini_vision_video gemini_vision_video;

/* Opens a Y4M stream and scans its frame headers. params may be NULL; only its max_side and
   max_pixels caps apply. On success *out is the video; on failure *out is NULL and the result
   is GEMINI_ERR_INVALID_ARGUMENT (NULL pointers), GEMINI_ERR_IO (cannot open, seek or read),
   GEMINI_ERR_FORMAT (no YUV4MPEG2 signature, a malformed or missing header field, a frame
   header that is not FRAME, a truncated frame; the message names the field or frame and
   value), GEMINI_ERR_UNSUPPORTED (an unsupported C value, over the size caps or over
   GEMINI_VISION_Y4M_MAX_FRAMES frames) or GEMINI_ERR_OUT_OF_MEMORY.
   The path form keeps the file open and reads each frame when asked (messages name the
   path). The memory form KEEPS A POINTER to data, which must outlive the video. The callback
   form reads the whole stream first (at most 1 GiB) into memory of its own. */
GEMINI_API gemini_result gemini_vision_video_open(const char *path,
                                                  const gemini_vision_decode_params *params,
                                                  gemini_vision_video **out);
GEMINI_API gemini_result gemini_vision_video_open_memory(const void *data, size_t size,
                                                         const gemini_vision_decode_params *params,
                                                         gemini_vision_video **out);
GEMINI_API gemini_result gemini_vision_video_open_callbacks(
    gemini_vision_read_fn read, void *user, const gemini_vision_decode_params *params,
    gemini_vision_video **out);

/* Closes the file and frees everything (NULL is fine). */
GEMINI_API void gemini_vision_video_close(gemini_vision_video *video);

/* The header fields and frame count; NULL for a NULL video. */
GEMINI_API const gemini_vision_video_info *gemini_vision_video_get_info(
    const gemini_vision_video *video);

/* Converts frame `index` (0-based, any order) to 8-bit RGB in *out (format
   GEMINI_VISION_FORMAT_Y4M, channels 1 for mono, else 3), ready for gemini_vision_preprocess.
   Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL pointers, index outside 0..frame_count-1),
   GEMINI_ERR_IO (the path form could not read the frame, e.g. the file shrank),
   GEMINI_ERR_OUT_OF_MEMORY; *out is then zeroed. Calls on one video must not overlap (the path
   form shares one file position); different videos are independent. */
GEMINI_API gemini_result gemini_vision_video_frame(gemini_vision_video *video, int64_t index,
                                                   gemini_vision_image *out);

/* Picks n frames evenly for captioning: indices[i] = floor(i * frame_count / n), and when
   seconds is not NULL, seconds[i] = indices[i] * rate_den / rate_num (the frame's start time).
   Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL video or indices, n < 1), GEMINI_ERR_FORMAT (the
   video has no frames); the arrays are then untouched. */
GEMINI_API gemini_result gemini_vision_video_sample(const gemini_vision_video *video, int32_t n,
                                                    int64_t *indices, double *seconds);

/* ---- PaliGemma detection answers ---------------------------------------------------------- */

/* One box of a "detect ..." (or "segment ...") answer. */
typedef struct gemini_vision_box {
    int32_t x0, y0, x1, y1;     /* left, top, right, bottom in pixels of the image the caller
                                   names (round(v / 1024 * side), ties to even); as written,
                                   so x1 < x0 is possible when the model wrote it so */
    int32_t loc[4];             /* the four values in the answer's order y_min, x_min, y_max,
                                   x_max, clamped to 0..1023 */
    int32_t has_mask;           /* 1 when sixteen <segNNN> tokens followed the box */
    int32_t seg[16];            /* their codes clamped to 0..127 (indices into PaliGemma's mask
                                   VQ-VAE codebook, not decoded here); zeros without a mask */
    const char *label;          /* points INTO the parsed text, NOT NUL-terminated; NULL when
                                   the box has no label */
    int32_t label_length;       /* bytes of label; 0 when there is none */
} gemini_vision_box;

/* Finds the boxes in a PaliGemma answer to "detect A ; B" or "segment A":

       <loc0123><loc0045><loc0987><loc0999> A ; <loc0001>...<loc0100>[<seg012> x 16] B

   A box is four <locNNNN> tokens in a row (exactly four digits each), then optionally white
   space and sixteen <segNNN> tokens in a row (exactly three digits each), then optionally a
   label: the bytes up to the next ';', '<' or '>' or the end of the text, white space trimmed
   off both ends. Everything else (text between boxes, fewer than four <loc> tokens in a row,
   a token with other digits or no '>', a short run of <seg> tokens) is skipped, as the parser
   of Google's big_vision PaliGemma demo skips it; numbers above 1023 (<loc>) or 127 (<seg>)
   are clamped. x0 = round(x_min / 1024 * width), y0 from y_min and height, and so on: pass
   the ORIGINAL image's width and height to get boxes in its pixels (PaliGemma's square input
   is a plain resize, so the fractions carry over).
   *n is the number of boxes in the text; the first min(*n, max) are written to boxes (which
   may be NULL when max is 0). Reads text only up to its NUL, allocates nothing.
   Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL text or n, width or height below 1, max below 0,
   NULL boxes with max above 0); *n is then 0 and boxes untouched. */
GEMINI_API gemini_result gemini_vision_parse_detections(const char *text, int32_t width,
                                                        int32_t height, gemini_vision_box *boxes,
                                                        int32_t max, int32_t *n);

#ifdef __cplusplus
}
#endif
#endif /* GEMINI_VISION_H */

/* ========================================================================================= */
#ifdef GEMINI_VISION_IMPLEMENTATION
#ifdef GEMINI_VISION_IMPLEMENTED
#error "gemini_vision.h: the implementation is included twice in one translation unit"
#endif
#define GEMINI_VISION_IMPLEMENTED

#ifndef GEMINI_TOKENIZER_IMPLEMENTED
#define GEMINI_TOKENIZER_IMPLEMENTATION
#include "gemini_tokenizer.h"
#undef GEMINI_TOKENIZER_IMPLEMENTATION
#endif

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEMINI__VISION_MAX_FILE ((size_t)1 << 30)

/* ---- Small helpers ------------------------------------------------------------------------ */

static uint32_t gemini__vision_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint32_t gemini__vision_be16(const uint8_t *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}

static uint32_t gemini__vision_le16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t gemini__vision_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint8_t gemini__vision_clamp8(int32_t v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Floor division by 2^shift for negative values too (>> of a negative int is
   implementation-defined in C). */
static int32_t gemini__vision_shift_down(int64_t v, int shift)
{
    return (int32_t)(v >= 0 ? v >> shift : -((-v - 1) >> shift) - 1);
}

static void *gemini__vision_alloc(size_t count, size_t size)
{
    if (size != 0 && count > ((size_t)-1) / size) return NULL;
    return GEMINI_MALLOC(count * size != 0 ? count * size : 1);
}

/* The state every decoder shares: the caller's params (caps already applied) and the image
   being filled. */
typedef struct gemini__vision_job {
    gemini_vision_decode_params params;
    gemini_vision_image *image;
} gemini__vision_job;

/* Checks a size from a header against the caps. `what` names the format and the header
   field, as in "png: IHDR". */
static gemini_result gemini__vision_check_size(const gemini_vision_decode_params *params,
                                               const char *what, int64_t width, int64_t height)
{
    if (width < 1 || width > (int64_t)params->max_side)
        return gemini__fail(width < 1 ? GEMINI_ERR_FORMAT : GEMINI_ERR_UNSUPPORTED,
                            "%s width %lld is out of range (1..%u)", what, (long long)width,
                            (unsigned)params->max_side);
    if (height < 1 || height > (int64_t)params->max_side)
        return gemini__fail(height < 1 ? GEMINI_ERR_FORMAT : GEMINI_ERR_UNSUPPORTED,
                            "%s height %lld is out of range (1..%u)", what, (long long)height,
                            (unsigned)params->max_side);
    if ((uint64_t)width * (uint64_t)height > params->max_pixels)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s size %lldx%lld is over the cap of "
                            "%llu pixels", what, (long long)width, (long long)height,
                            (unsigned long long)params->max_pixels);
    return GEMINI_OK;
}

/* Checks a size from a header against the caps and allocates the RGB output. */
static gemini_result gemini__vision_start_image(gemini__vision_job *job, const char *what,
                                                int64_t width, int64_t height)
{
    gemini_result r = gemini__vision_check_size(&job->params, what, width, height);
    if (r != GEMINI_OK) return r;
    job->image->width = (int32_t)width;
    job->image->height = (int32_t)height;
    job->image->pixels = (uint8_t *)gemini__vision_alloc((size_t)width * (size_t)height, 3);
    if (!job->image->pixels)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: no memory for %lldx%lld pixels",
                            what, (long long)width, (long long)height);
    return GEMINI_OK;
}

/* Stores one pixel, applying the alpha rule. */
static void gemini__vision_put(const gemini__vision_job *job, uint8_t *dst, uint32_t r,
                               uint32_t g, uint32_t b, uint32_t a)
{
    if (job->params.alpha == GEMINI_VISION_ALPHA_BLEND && a != 255) {
        const uint8_t *bg = job->params.background;
        r = (r * a + bg[0] * (255 - a) + 127) / 255;
        g = (g * a + bg[1] * (255 - a) + 127) / 255;
        b = (b * a + bg[2] * (255 - a) + 127) / 255;
    }
    dst[0] = (uint8_t)r;
    dst[1] = (uint8_t)g;
    dst[2] = (uint8_t)b;
}

/* ---- CRC-32 and Adler-32 ------------------------------------------------------------------ */

/* CRC-32 as PNG and zlib define it (reflected polynomial 0xEDB88320), bitwise by the nibble;
   PNG chunks are small next to the pixel work, so no 1 KiB table is kept. */
static uint32_t gemini__vision_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
        0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
        0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    size_t i;
    crc = ~crc;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nibble[crc & 15];
        crc = (crc >> 4) ^ nibble[crc & 15];
    }
    return ~crc;
}

static uint32_t gemini__vision_adler32(const uint8_t *p, size_t n)
{
    uint32_t a = 1, b = 0;
    while (n > 0) {
        /* 5552 is the longest run whose sums cannot overflow 32 bits before the modulo. */
        size_t run = n < 5552 ? n : 5552, i;
        for (i = 0; i < run; i++) {
            a += p[i];
            b += a;
        }
        a %= 65521u;
        b %= 65521u;
        p += run;
        n -= run;
    }
    return (b << 16) | a;
}

/* ---- Inflate (RFC 1950 zlib wrapper around RFC 1951 deflate) ----------------------------- */

#define GEMINI__VISION_ZFAST_BITS 9

/* A canonical Huffman code of deflate. fast[] is indexed by the next 9 input bits (LSB
   first) and holds symbol << 4 | length, 0 when the code is longer; count/symbol drive the
   bit-by-bit decode of longer codes. */
typedef struct gemini__vision_zhuff {
    uint16_t fast[1 << GEMINI__VISION_ZFAST_BITS];
    uint16_t count[16];
    uint16_t symbol[288];
} gemini__vision_zhuff;

typedef struct gemini__vision_zstream {
    const uint8_t *in;
    size_t in_size, in_pos;   /* in_pos counts zero bytes fed past the end as well */
    uint64_t bits;
    int n_bits;
    uint8_t *out;
    size_t out_size, out_pos;
} gemini__vision_zstream;

static void gemini__vision_zfill(gemini__vision_zstream *z)
{
    while (z->n_bits <= 56) {
        uint64_t byte = z->in_pos < z->in_size ? z->in[z->in_pos] : 0;
        z->in_pos++;
        z->bits |= byte << z->n_bits;
        z->n_bits += 8;
    }
}

/* True when more bits were used than the input holds. */
static int gemini__vision_zoverrun(const gemini__vision_zstream *z)
{
    return z->in_pos * 8 - (size_t)z->n_bits > z->in_size * 8;
}

static uint32_t gemini__vision_zbits(gemini__vision_zstream *z, int n)
{
    uint32_t v;
    if (n == 0) return 0;
    if (z->n_bits < n) gemini__vision_zfill(z);
    v = (uint32_t)(z->bits & ((1u << n) - 1));
    z->bits >>= n;
    z->n_bits -= n;
    return v;
}

/* Builds a code from code lengths (0 = unused symbol). Fails on an over-subscribed set. */
static gemini_result gemini__vision_zbuild(gemini__vision_zhuff *h, const uint8_t *lengths,
                                           int n, const char *which)
{
    uint16_t offsets[16], next_code[16];
    int len, s, left = 1, code = 0;
    memset(h, 0, sizeof *h);
    for (s = 0; s < n; s++) h->count[lengths[s]]++;
    h->count[0] = 0;
    for (len = 1; len < 16; len++) {
        left = (left << 1) - h->count[len];
        if (left < 0)
            return gemini__fail(GEMINI_ERR_FORMAT, "png: deflate %s code is over-subscribed "
                                "at length %d", which, len);
    }
    offsets[1] = 0;
    for (len = 1; len < 15; len++) offsets[len + 1] = (uint16_t)(offsets[len] + h->count[len]);
    for (len = 1; len < 16; len++) {
        code = (code + (len > 1 ? h->count[len - 1] : 0)) << 1;
        next_code[len] = (uint16_t)code;
    }
    for (s = 0; s < n; s++) {
        int l = lengths[s], reversed = 0, c, i;
        if (l == 0) continue;
        h->symbol[offsets[l]++] = (uint16_t)s;
        c = next_code[l]++;
        /* Deflate sends codes most significant bit first into an LSB-first stream. */
        for (i = 0; i < l; i++) reversed |= ((c >> i) & 1) << (l - 1 - i);
        if (l <= GEMINI__VISION_ZFAST_BITS) {
            for (i = reversed; i < (1 << GEMINI__VISION_ZFAST_BITS); i += 1 << l)
                h->fast[i] = (uint16_t)(s << 4 | l);
        }
    }
    return GEMINI_OK;
}

/* Decodes one symbol; -1 for a bit pattern that is no code. */
static int gemini__vision_zdecode(gemini__vision_zstream *z, const gemini__vision_zhuff *h)
{
    int entry, len, code = 0, first = 0, index = 0;
    if (z->n_bits < 16) gemini__vision_zfill(z);
    entry = h->fast[z->bits & ((1u << GEMINI__VISION_ZFAST_BITS) - 1)];
    if (entry) {
        z->bits >>= entry & 15;
        z->n_bits -= entry & 15;
        return entry >> 4;
    }
    /* Canonical codes of one length are consecutive: walk the lengths one bit at a time. */
    for (len = 1; len < 16; len++) {
        code |= (int)((z->bits >> (len - 1)) & 1);
        if (code - first < h->count[len]) {
            z->bits >>= len;
            z->n_bits -= len;
            return h->symbol[index + code - first];
        }
        index += h->count[len];
        first = (first + h->count[len]) << 1;
        code <<= 1;
    }
    return -1;
}

static const uint16_t gemini__vision_len_base[29] = {
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
    131, 163, 195, 227, 258};
static const uint8_t gemini__vision_len_extra[29] = {
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t gemini__vision_dist_base[30] = {
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t gemini__vision_dist_extra[30] = {
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
    13, 13};

/* Reads the code-length code and the two codes of a dynamic block (RFC 1951 3.2.7). */
static gemini_result gemini__vision_zdynamic(gemini__vision_zstream *z,
                                             gemini__vision_zhuff *lit,
                                             gemini__vision_zhuff *dist)
{
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2,
                                      14, 1, 15};
    uint8_t lengths[286 + 30], clen[19];
    gemini__vision_zhuff clen_code;
    int n_lit = (int)gemini__vision_zbits(z, 5) + 257;
    int n_dist = (int)gemini__vision_zbits(z, 5) + 1;
    int n_clen = (int)gemini__vision_zbits(z, 4) + 4;
    int i, n = 0;
    gemini_result r;
    if (n_lit > 286 || n_dist > 30)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: deflate block has %d literal/length and "
                            "%d distance codes (max 286 and 30)", n_lit, n_dist);
    memset(clen, 0, sizeof clen);
    for (i = 0; i < n_clen; i++) clen[order[i]] = (uint8_t)gemini__vision_zbits(z, 3);
    r = gemini__vision_zbuild(&clen_code, clen, 19, "code-length");
    if (r != GEMINI_OK) return r;

    while (n < n_lit + n_dist) {
        int sym = gemini__vision_zdecode(z, &clen_code), repeat, value = 0;
        if (sym < 0 || gemini__vision_zoverrun(z))
            return gemini__fail(GEMINI_ERR_FORMAT, "png: bad code-length code in a deflate "
                                "block header");
        if (sym < 16) {
            lengths[n++] = (uint8_t)sym;
            continue;
        }
        if (sym == 16) {
            if (n == 0)
                return gemini__fail(GEMINI_ERR_FORMAT, "png: deflate code length repeat with "
                                    "no previous length");
            value = lengths[n - 1];
            repeat = 3 + (int)gemini__vision_zbits(z, 2);
        } else if (sym == 17) {
            repeat = 3 + (int)gemini__vision_zbits(z, 3);
        } else {
            repeat = 11 + (int)gemini__vision_zbits(z, 7);
        }
        if (n + repeat > n_lit + n_dist)
            return gemini__fail(GEMINI_ERR_FORMAT, "png: deflate code lengths overrun the "
                                "%d codes of the block", n_lit + n_dist);
        while (repeat-- > 0) lengths[n++] = (uint8_t)value;
    }
    if (lengths[256] == 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: deflate block has no end-of-block code");
    r = gemini__vision_zbuild(lit, lengths, n_lit, "literal/length");
    if (r != GEMINI_OK) return r;
    return gemini__vision_zbuild(dist, lengths + n_lit, n_dist, "distance");
}

/* Decodes the symbols of one Huffman block into the output. */
static gemini_result gemini__vision_zcodes(gemini__vision_zstream *z,
                                           const gemini__vision_zhuff *lit,
                                           const gemini__vision_zhuff *dist)
{
    for (;;) {
        int sym = gemini__vision_zdecode(z, lit);
        uint32_t length, distance;
        if (sym < 0 || gemini__vision_zoverrun(z))
            return gemini__fail(GEMINI_ERR_FORMAT, sym < 0 ? "png: bad literal/length code in "
                                "deflate data" : "png: deflate data is truncated");
        if (sym < 256) {
            if (z->out_pos >= z->out_size)
                return gemini__fail(GEMINI_ERR_FORMAT, "png: image data inflates to more "
                                    "than the %zu bytes the header implies", z->out_size);
            z->out[z->out_pos++] = (uint8_t)sym;
            continue;
        }
        if (sym == 256) return GEMINI_OK;
        sym -= 257;
        if (sym >= 29)
            return gemini__fail(GEMINI_ERR_FORMAT, "png: deflate length symbol %d is invalid",
                                sym + 257);
        length = gemini__vision_len_base[sym] +
                 gemini__vision_zbits(z, gemini__vision_len_extra[sym]);
        sym = gemini__vision_zdecode(z, dist);
        if (sym < 0 || sym >= 30)
            return gemini__fail(GEMINI_ERR_FORMAT, "png: bad deflate distance code %d", sym);
        distance = gemini__vision_dist_base[sym] +
                   gemini__vision_zbits(z, gemini__vision_dist_extra[sym]);
        if (distance > z->out_pos)
            return gemini__fail(GEMINI_ERR_FORMAT, "png: deflate distance %u reaches before "
                                "the start of the data", (unsigned)distance);
        if (length > z->out_size - z->out_pos)
            return gemini__fail(GEMINI_ERR_FORMAT, "png: image data inflates to more than "
                                "the %zu bytes the header implies", z->out_size);
        /* Byte by byte on purpose: a copy may overlap its own output (distance < length). */
        while (length-- > 0) {
            z->out[z->out_pos] = z->out[z->out_pos - distance];
            z->out_pos++;
        }
    }
}

/* Inflates a zlib stream into out[0..out_size) and checks its Adler-32. *out_len receives the
   number of bytes produced. */
static gemini_result gemini__vision_inflate(const uint8_t *in, size_t in_size, uint8_t *out,
                                            size_t out_size, size_t *out_len)
{
    gemini__vision_zstream z;
    gemini__vision_zhuff *lit, *dist;
    gemini_result r = GEMINI_OK;
    int final = 0;
    size_t pos;
    if (in_size < 6)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: zlib stream of %zu bytes is too short",
                            in_size);
    if ((in[0] & 15) != 8 || (in[0] >> 4) > 7 || ((uint32_t)in[0] << 8 | in[1]) % 31 != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: zlib header %02X %02X is not deflate",
                            in[0], in[1]);
    if (in[1] & 0x20)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: zlib stream asks for a preset "
                            "dictionary");
    lit = (gemini__vision_zhuff *)gemini__vision_alloc(2, sizeof *lit);
    if (!lit) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "png: no memory for inflate");
    dist = lit + 1;
    memset(&z, 0, sizeof z);
    z.in = in;
    z.in_size = in_size;
    z.in_pos = 2;
    z.out = out;
    z.out_size = out_size;

    while (!final && r == GEMINI_OK) {
        uint32_t type;
        final = (int)gemini__vision_zbits(&z, 1);
        type = gemini__vision_zbits(&z, 2);
        if (type == 0) {
            /* Stored block: byte-align, LEN, its complement, raw bytes. */
            uint32_t len, nlen;
            gemini__vision_zbits(&z, z.n_bits & 7);
            len = gemini__vision_zbits(&z, 16);
            nlen = gemini__vision_zbits(&z, 16);
            if ((len ^ 0xFFFFu) != nlen) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "png: stored deflate block length %u does "
                                 "not match its complement %u", (unsigned)len, (unsigned)nlen);
            } else if (len > out_size - z.out_pos) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "png: image data inflates to more than "
                                 "the %zu bytes the header implies", out_size);
            } else {
                while (len-- > 0) z.out[z.out_pos++] = (uint8_t)gemini__vision_zbits(&z, 8);
                if (gemini__vision_zoverrun(&z))
                    r = gemini__fail(GEMINI_ERR_FORMAT, "png: deflate data is truncated");
            }
        } else if (type == 1) {
            uint8_t lengths[288 + 30];
            int i;
            for (i = 0; i < 288; i++) lengths[i] = (uint8_t)(i < 144 ? 8 : i < 256 ? 9 :
                                                             i < 280 ? 7 : 8);
            for (i = 0; i < 30; i++) lengths[288 + i] = 5;
            r = gemini__vision_zbuild(lit, lengths, 288, "fixed");
            if (r == GEMINI_OK) r = gemini__vision_zbuild(dist, lengths + 288, 30, "fixed");
            if (r == GEMINI_OK) r = gemini__vision_zcodes(&z, lit, dist);
        } else if (type == 2) {
            r = gemini__vision_zdynamic(&z, lit, dist);
            if (r == GEMINI_OK) r = gemini__vision_zcodes(&z, lit, dist);
        } else {
            r = gemini__fail(GEMINI_ERR_FORMAT, "png: deflate block type 3 is reserved");
        }
    }
    GEMINI_FREE(lit);
    if (r != GEMINI_OK) return r;

    /* The Adler-32 follows the deflate data at the next byte boundary. */
    pos = z.in_pos - (size_t)(z.n_bits / 8);
    if (pos + 4 > in_size)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: zlib stream ends without its Adler-32");
    if (gemini__vision_be32(in + pos) != gemini__vision_adler32(out, z.out_pos))
        return gemini__fail(GEMINI_ERR_CHECKSUM, "png: zlib Adler-32 %08X does not match the "
                            "data (%08X)", (unsigned)gemini__vision_be32(in + pos),
                            (unsigned)gemini__vision_adler32(out, z.out_pos));
    *out_len = z.out_pos;
    return GEMINI_OK;
}

/* ---- PNG ---------------------------------------------------------------------------------- */

typedef struct gemini__vision_png {
    uint32_t width, height;
    int depth, colour_type, interlace, samples;   /* samples: channels per pixel in the file */
    uint8_t palette[256][4];                      /* RGBA; alpha from tRNS */
    int palette_size;
    int has_trns;
    uint32_t trns_key[3];                         /* grey or RGB colour key, file units */
} gemini__vision_png;

/* Pass layouts as x0, y0, dx, dy: the seven Adam7 passes, and the one pass of a plain image. */
static const uint8_t gemini__vision_adam7[7][4] = {
    {0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2},
    {0, 1, 1, 2}};
static const uint8_t gemini__vision_single_pass[4] = {0, 0, 1, 1};

/* Pixels of one pass along an axis: ceil((size - start) / step), 0 when start >= size. */
static uint32_t gemini__vision_pass_size(uint32_t size, uint32_t start, uint32_t step)
{
    return size > start ? (size - start + step - 1) / step : 0;
}

static size_t gemini__vision_png_row_bytes(const gemini__vision_png *png, uint32_t pixels)
{
    return ((size_t)pixels * (size_t)(png->samples * png->depth) + 7) / 8;
}

static gemini_result gemini__vision_png_header(gemini__vision_png *png, const uint8_t *d,
                                               uint32_t len)
{
    static const char *allowed[7] = {"1 2 4 8 16", "", "8 16", "1 2 4 8", "8 16", "", "8 16"};
    int ct, depth, ok;
    if (len != 13)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: IHDR length %u is not 13", (unsigned)len);
    png->width = gemini__vision_be32(d);
    png->height = gemini__vision_be32(d + 4);
    depth = d[8];
    ct = d[9];
    png->depth = depth;
    png->colour_type = ct;
    if (ct > 6 || ct == 1 || ct == 5)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: IHDR colour type %d is invalid", ct);
    ok = depth == 8 || (depth == 16 && ct != 3) || ((depth == 1 || depth == 2 || depth == 4) &&
                                                    (ct == 0 || ct == 3));
    if (!ok)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: IHDR bit depth %d is invalid for colour "
                            "type %d (allowed: %s)", depth, ct, allowed[ct]);
    if (d[10] != 0 || d[11] != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: IHDR compression %d / filter method %d "
                            "are not 0", d[10], d[11]);
    if (d[12] > 1)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: IHDR interlace method %d is invalid",
                            d[12]);
    png->interlace = d[12];
    png->samples = ct == 0 ? 1 : ct == 2 ? 3 : ct == 3 ? 1 : ct == 4 ? 2 : 4;
    return GEMINI_OK;
}

static gemini_result gemini__vision_png_palette(gemini__vision_png *png, const uint8_t *d,
                                                uint32_t len)
{
    uint32_t i, n = len / 3;
    if (len % 3 != 0 || n == 0 || n > 256)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: PLTE length %u is not 3..768 in steps of "
                            "3", (unsigned)len);
    for (i = 0; i < n; i++) {
        png->palette[i][0] = d[3 * i];
        png->palette[i][1] = d[3 * i + 1];
        png->palette[i][2] = d[3 * i + 2];
        png->palette[i][3] = 255;
    }
    png->palette_size = (int)n;
    return GEMINI_OK;
}

/* tRNS: alpha per palette entry, or one colour key. Malformed ones are ignored, as decoders
   commonly do: transparency never changes the colours unless blending is asked for. */
static void gemini__vision_png_trns(gemini__vision_png *png, const uint8_t *d, uint32_t len)
{
    uint32_t i;
    if (png->colour_type == 3) {
        for (i = 0; i < len && i < 256; i++) png->palette[i][3] = d[i];
        png->has_trns = 1;
    } else if (png->colour_type == 0 && len == 2) {
        png->trns_key[0] = gemini__vision_be16(d);
        png->has_trns = 1;
    } else if (png->colour_type == 2 && len == 6) {
        for (i = 0; i < 3; i++) png->trns_key[i] = gemini__vision_be16(d + 2 * i);
        png->has_trns = 1;
    }
}

static uint8_t gemini__vision_paeth(uint8_t a, uint8_t b, uint8_t c)
{
    int p = (int)a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return a;
    return pb <= pc ? b : c;
}

/* Undoes the filter of one row in place; prev is the unfiltered previous row or NULL. */
static gemini_result gemini__vision_png_unfilter(uint8_t *row, const uint8_t *prev,
                                                 size_t n, size_t bpp, int type)
{
    size_t i;
    switch (type) {
    case 0:
        break;
    case 1:
        for (i = bpp; i < n; i++) row[i] = (uint8_t)(row[i] + row[i - bpp]);
        break;
    case 2:
        if (prev)
            for (i = 0; i < n; i++) row[i] = (uint8_t)(row[i] + prev[i]);
        break;
    case 3:
        for (i = 0; i < n; i++) {
            int left = i >= bpp ? row[i - bpp] : 0, up = prev ? prev[i] : 0;
            row[i] = (uint8_t)(row[i] + ((left + up) >> 1));
        }
        break;
    case 4:
        for (i = 0; i < n; i++) {
            uint8_t left = i >= bpp ? row[i - bpp] : 0, up = prev ? prev[i] : 0;
            uint8_t corner = (i >= bpp && prev) ? prev[i - bpp] : 0;
            row[i] = (uint8_t)(row[i] + gemini__vision_paeth(left, up, corner));
        }
        break;
    default:
        return gemini__fail(GEMINI_ERR_FORMAT, "png: row filter type %d is invalid", type);
    }
    return GEMINI_OK;
}

/* Sample i of an unfiltered row, in file units. */
static uint32_t gemini__vision_png_sample(const uint8_t *row, size_t i, int depth)
{
    if (depth == 8) return row[i];
    if (depth == 16) return gemini__vision_be16(row + 2 * i);
    {
        size_t bit = i * (size_t)depth;
        int shift = 8 - depth - (int)(bit & 7);
        return (uint32_t)(row[bit >> 3] >> shift) & ((1u << depth) - 1);
    }
}

/* Converts one unfiltered row of pw pixels to RGB at columns x0, x0+dx, ... of image row y. */
static void gemini__vision_png_emit(const gemini__vision_job *job, const gemini__vision_png *png,
                                    const uint8_t *row, uint32_t pw, uint32_t y, uint32_t x0,
                                    uint32_t dx)
{
    int depth = png->depth, ct = png->colour_type;
    uint32_t i, max = (1u << depth) - 1;
    uint8_t *dst = job->image->pixels + ((size_t)y * png->width + x0) * 3;
    for (i = 0; i < pw; i++, dst += 3 * (size_t)dx) {
        size_t s = (size_t)i * (size_t)png->samples;
        uint32_t v0 = gemini__vision_png_sample(row, s, depth), r, g, b, a = 255;
        if (ct == 3) {
            if ((int)v0 < png->palette_size) {
                const uint8_t *entry = png->palette[v0];
                gemini__vision_put(job, dst, entry[0], entry[1], entry[2], entry[3]);
            } else {
                gemini__vision_put(job, dst, 0, 0, 0, 255);
            }
            continue;
        }
        if (ct == 0 || ct == 4) {
            if (png->has_trns && v0 == png->trns_key[0]) a = 0;
            if (ct == 4) a = gemini__vision_png_sample(row, s + 1, depth);
            r = g = b = v0;
        } else {
            r = v0;
            g = gemini__vision_png_sample(row, s + 1, depth);
            b = gemini__vision_png_sample(row, s + 2, depth);
            if (png->has_trns && r == png->trns_key[0] && g == png->trns_key[1] &&
                b == png->trns_key[2])
                a = 0;
            if (ct == 6) a = gemini__vision_png_sample(row, s + 3, depth);
        }
        if (depth == 16) {
            r >>= 8;
            g >>= 8;
            b >>= 8;
            if (ct == 4 || ct == 6) a >>= 8;
        } else if (depth < 8) {
            r = g = b = r * 255 / max;
        }
        gemini__vision_put(job, dst, r, g, b, a);
    }
}

/* Unfilters every pass of the inflated data and writes the pixels. */
static gemini_result gemini__vision_png_pixels(const gemini__vision_job *job,
                                               const gemini__vision_png *png, uint8_t *raw)
{
    size_t bpp = (size_t)(png->samples * png->depth + 7) / 8;
    int pass, n_passes = png->interlace ? 7 : 1;
    for (pass = 0; pass < n_passes; pass++) {
        const uint8_t *step = png->interlace ? gemini__vision_adam7[pass] :
                                               gemini__vision_single_pass;
        uint32_t pw = gemini__vision_pass_size(png->width, step[0], step[2]);
        uint32_t ph = gemini__vision_pass_size(png->height, step[1], step[3]), y;
        size_t row_bytes = gemini__vision_png_row_bytes(png, pw);
        const uint8_t *prev = NULL;
        if (pw == 0 || ph == 0) continue;
        for (y = 0; y < ph; y++) {
            uint8_t *row = raw + 1;
            gemini_result r = gemini__vision_png_unfilter(row, prev, row_bytes, bpp, raw[0]);
            if (r != GEMINI_OK) return r;
            gemini__vision_png_emit(job, png, row, pw, step[1] + y * step[3], step[0],
                                    step[2]);
            prev = row;
            raw += 1 + row_bytes;
        }
    }
    return GEMINI_OK;
}

static gemini_result gemini__vision_png_decode(gemini__vision_job *job, const uint8_t *data,
                                               size_t size)
{
    gemini__vision_png png;
    size_t pos = 8, idat_total = 0, raw_size = 0, raw_len = 0;
    uint8_t *idat = NULL, *raw = NULL;
    int seen_header = 0, seen_end = 0, pass;
    gemini_result r;
    memset(&png, 0, sizeof png);

    /* Pass 1 over the chunks: check lengths and CRCs, read the header, palette and tRNS, and
       add up the IDAT sizes. */
    while (!seen_end) {
        uint32_t len, type_crc;
        const uint8_t *type, *body;
        char name[5];
        if (size - pos < 12)
            return gemini__fail(GEMINI_ERR_FORMAT, "png: file ends at byte %zu before IEND",
                                pos);
        len = gemini__vision_be32(data + pos);
        type = data + pos + 4;
        body = data + pos + 8;
        memcpy(name, type, 4);
        name[4] = 0;
        for (pass = 0; pass < 4; pass++)
            if (!((name[pass] >= 'A' && name[pass] <= 'Z') ||
                  (name[pass] >= 'a' && name[pass] <= 'z')))
                name[pass] = '?';
        if (len > 0x7FFFFFFFu || len > size - pos - 12)
            return gemini__fail(GEMINI_ERR_FORMAT, "png: chunk %s at byte %zu has length %u, "
                                "past the end of the file", name, pos, (unsigned)len);
        type_crc = gemini__vision_crc32(0, type, (size_t)len + 4);
        if (type_crc != gemini__vision_be32(body + len))
            return gemini__fail(GEMINI_ERR_CHECKSUM, "png: chunk %s at byte %zu has CRC %08X, "
                                "computed %08X", name, pos,
                                (unsigned)gemini__vision_be32(body + len), (unsigned)type_crc);
        if (!seen_header && memcmp(type, "IHDR", 4) != 0)
            return gemini__fail(GEMINI_ERR_FORMAT, "png: first chunk is %s, not IHDR", name);
        if (memcmp(type, "IHDR", 4) == 0) {
            if (seen_header)
                return gemini__fail(GEMINI_ERR_FORMAT, "png: second IHDR chunk");
            r = gemini__vision_png_header(&png, body, len);
            if (r != GEMINI_OK) return r;
            seen_header = 1;
        } else if (memcmp(type, "PLTE", 4) == 0) {
            r = gemini__vision_png_palette(&png, body, len);
            if (r != GEMINI_OK) return r;
        } else if (memcmp(type, "tRNS", 4) == 0) {
            gemini__vision_png_trns(&png, body, len);
        } else if (memcmp(type, "IDAT", 4) == 0) {
            idat_total += len;
        } else if (memcmp(type, "IEND", 4) == 0) {
            seen_end = 1;
        } else if (!(type[0] & 0x20)) {
            return gemini__fail(GEMINI_ERR_UNSUPPORTED, "png: unknown critical chunk %s",
                                name);
        }
        pos += (size_t)len + 12;
    }
    if (png.colour_type == 3 && png.palette_size == 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: palette image without a PLTE chunk");
    if (idat_total == 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "png: no IDAT chunk");
    r = gemini__vision_start_image(job, "png: IHDR", png.width, png.height);
    if (r != GEMINI_OK) return r;
    job->image->channels = png.colour_type == 0 ? 1 : png.colour_type == 4 ? 2 :
                           png.colour_type == 6 ? 4 : 3;
    if (png.has_trns && (png.colour_type == 0 || png.colour_type == 2 ||
                         png.colour_type == 3))
        job->image->channels++;

    /* The exact size of the filtered data: one filter byte per row of every pass. */
    for (pass = 0; pass < (png.interlace ? 7 : 1); pass++) {
        const uint8_t *step = png.interlace ? gemini__vision_adam7[pass] :
                                              gemini__vision_single_pass;
        uint32_t pw = gemini__vision_pass_size(png.width, step[0], step[2]);
        uint32_t ph = gemini__vision_pass_size(png.height, step[1], step[3]);
        if (pw && ph) raw_size += (size_t)ph * (1 + gemini__vision_png_row_bytes(&png, pw));
    }

    /* Pass 2: gather the IDAT bodies into one zlib stream and inflate it. */
    idat = (uint8_t *)gemini__vision_alloc(idat_total, 1);
    raw = (uint8_t *)gemini__vision_alloc(raw_size, 1);
    if (!idat || !raw) {
        GEMINI_FREE(idat);
        GEMINI_FREE(raw);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "png: no memory for %zu bytes of image "
                            "data", raw_size);
    }
    idat_total = 0;
    for (pos = 8;;) {
        uint32_t len = gemini__vision_be32(data + pos);
        if (memcmp(data + pos + 4, "IDAT", 4) == 0) {
            memcpy(idat + idat_total, data + pos + 8, len);
            idat_total += len;
        }
        if (memcmp(data + pos + 4, "IEND", 4) == 0) break;
        pos += (size_t)len + 12;
    }
    r = gemini__vision_inflate(idat, idat_total, raw, raw_size, &raw_len);
    GEMINI_FREE(idat);
    if (r == GEMINI_OK && raw_len != raw_size)
        r = gemini__fail(GEMINI_ERR_FORMAT, "png: image data inflates to %zu bytes, the "
                         "header implies %zu", raw_len, raw_size);
    if (r == GEMINI_OK) r = gemini__vision_png_pixels(job, &png, raw);
    GEMINI_FREE(raw);
    return r;
}

/* ---- JPEG: markers, tables, entropy decoding --------------------------------------------- */

/* Natural (row-major) index of the k-th coefficient in zigzag order. */
static const uint8_t gemini__vision_zigzag[64] = {
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34,
    27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44,
    51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

#define GEMINI__VISION_JFAST_BITS 9

typedef struct gemini__vision_jhuff {
    int defined;
    uint16_t fast[1 << GEMINI__VISION_JFAST_BITS];   /* length << 8 | symbol; 0 = longer */
    int32_t max_code[18];                            /* largest code of each length, -1 none */
    int32_t val_offset[17];                          /* first code's index minus its code */
    uint8_t values[256];
} gemini__vision_jhuff;

typedef struct gemini__vision_jcomp {
    int id, h, v, tq;
    int blocks_w, blocks_h;        /* blocks stored (whole MCUs) */
    int used_w, used_h;            /* blocks that hold image data (non-interleaved scans) */
    int plane_w, plane_h;          /* samples that hold image data */
    int dc_table, ac_table;
    int32_t dc_pred;
    int quant_latched;
    uint16_t quant[64];            /* natural order, latched at the component's first scan */
    int16_t *coef;                 /* blocks_w * blocks_h blocks of 64, natural order */
    uint8_t *plane;                /* blocks_w*8 x blocks_h*8 samples after the IDCT */
} gemini__vision_jcomp;

typedef struct gemini__vision_jpeg {
    const uint8_t *data;
    size_t size, pos;
    /* Entropy-coded segment reader: MSB first, 0xFF00 unstuffed, stops at a marker. */
    uint32_t bits;
    int n_bits;
    int hit_marker;
    size_t pad_bytes;              /* zero bytes fed because the file ended */
    uint16_t quant[4][64];
    int quant_defined[4];
    gemini__vision_jhuff huff[2][4];   /* [0] DC, [1] AC */
    gemini__vision_jcomp comp[3];
    int n_comp, progressive, seen_frame, scans_done;
    int width, height, h_max, v_max, mcus_x, mcus_y;
    int restart_interval;
    int adobe_transform;           /* -1 when there is no Adobe marker */
    int orientation;
    uint32_t eob_run;
    int corrupt;                   /* a bad Huffman code or coefficient index was met */
} gemini__vision_jpeg;

static gemini_result gemini__vision_jpeg_huff_table(gemini__vision_jpeg *j, const uint8_t *d,
                                                    size_t len, size_t *used)
{
    gemini__vision_jhuff *h;
    int tc, th, l, total = 0, k = 0;
    int32_t code = 0;
    if (len < 17)
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: DHT segment is truncated");
    tc = d[0] >> 4;
    th = d[0] & 15;
    if (tc > 1 || th > 3)
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: DHT class %d / id %d is invalid", tc, th);
    for (l = 1; l <= 16; l++) total += d[l];
    if (total > 256 || (size_t)total > len - 17)
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: DHT table %d/%d has %d codes (max 256, "
                            "%zu bytes present)", tc, th, total, len - 17);
    h = &j->huff[tc][th];
    memset(h, 0, sizeof *h);
    memcpy(h->values, d + 17, (size_t)total);
    for (l = 1; l <= 16; l++) {
        int n = d[l], i;
        /* A code of all one bits is reserved, so codes must stay below 2^l. */
        if (code + n >= ((int32_t)1 << l))
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: bad Huffman table %d/%d: %d codes "
                                "of length %d do not fit", tc, th, n, l);
        h->val_offset[l] = k - code;
        for (i = 0; i < n; i++, code++, k++) {
            /* Codes of up to 9 bits fill every table slot that starts with them. */
            if (l <= GEMINI__VISION_JFAST_BITS) {
                int shift = GEMINI__VISION_JFAST_BITS - l, s;
                for (s = 0; s < (1 << shift); s++)
                    h->fast[(code << shift) | s] = (uint16_t)(l << 8 | h->values[k]);
            }
        }
        h->max_code[l] = n ? code - 1 : -1;
        code <<= 1;
    }
    h->max_code[17] = 0x7FFFFFFF;
    h->defined = 1;
    *used = 17 + (size_t)total;
    return GEMINI_OK;
}

static void gemini__vision_jfill(gemini__vision_jpeg *j)
{
    while (j->n_bits <= 24) {
        uint32_t byte = 0;
        if (!j->hit_marker && j->pos < j->size) {
            byte = j->data[j->pos];
            if (byte == 0xFF && j->pos + 1 >= j->size) {
                j->pos++;   /* a lone 0xFF at the very end: the file is cut */
                j->pad_bytes++;
                byte = 0;
            } else if (byte == 0xFF) {
                uint32_t next = j->data[j->pos + 1];
                if (next == 0x00) {
                    j->pos += 2;
                } else {
                    j->hit_marker = 1;
                    byte = 0;
                }
            } else {
                j->pos++;
            }
        } else if (!j->hit_marker) {
            j->pad_bytes++;
        }
        j->bits |= byte << (24 - j->n_bits);
        j->n_bits += 8;
    }
}

static uint32_t gemini__vision_jbits(gemini__vision_jpeg *j, int n)
{
    uint32_t v;
    if (n == 0) return 0;
    if (j->n_bits < n) gemini__vision_jfill(j);
    v = j->bits >> (32 - n);
    j->bits <<= n;
    j->n_bits -= n;
    return v;
}

/* The value of an n-bit magnitude category (JPEG's EXTEND). */
static int32_t gemini__vision_jreceive(gemini__vision_jpeg *j, int n)
{
    int32_t v = (int32_t)gemini__vision_jbits(j, n);
    if (n > 0 && v < ((int32_t)1 << (n - 1))) v -= ((int32_t)1 << n) - 1;
    return v;
}

static int gemini__vision_jdecode(gemini__vision_jpeg *j, const gemini__vision_jhuff *h)
{
    uint32_t entry;
    int l;
    if (j->n_bits < 16) gemini__vision_jfill(j);
    entry = h->fast[j->bits >> (32 - GEMINI__VISION_JFAST_BITS)];
    if (entry) {
        l = (int)(entry >> 8);
        j->bits <<= l;
        j->n_bits -= l;
        return (int)(entry & 255);
    }
    for (l = GEMINI__VISION_JFAST_BITS + 1; l <= 16; l++) {
        int32_t code = (int32_t)(j->bits >> (32 - l));
        if (code <= h->max_code[l]) {
            j->bits <<= l;
            j->n_bits -= l;
            return h->values[(code + h->val_offset[l]) & 255];
        }
    }
    j->corrupt = 1;
    return 0;
}

/* ---- JPEG: block decoding (sequential and the four progressive scan kinds) ---------------- */

static int16_t gemini__vision_jclamp16(int32_t v)
{
    return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
}

static void gemini__vision_jblock_sequential(gemini__vision_jpeg *j, gemini__vision_jcomp *c,
                                             int16_t *coef)
{
    const gemini__vision_jhuff *ac = &j->huff[1][c->ac_table];
    int t = gemini__vision_jdecode(j, &j->huff[0][c->dc_table]), k;
    if (t > 11) {
        j->corrupt = 1;
        return;
    }
    c->dc_pred = gemini__vision_jclamp16(c->dc_pred + gemini__vision_jreceive(j, t));
    coef[0] = (int16_t)c->dc_pred;
    for (k = 1; k < 64; k++) {
        int rs = gemini__vision_jdecode(j, ac), run = rs >> 4, s = rs & 15;
        if (s == 0) {
            if (run != 15) break;
            k += 15;
            continue;
        }
        k += run;
        if (k > 63 || s > 10) {
            j->corrupt = 1;
            return;
        }
        coef[gemini__vision_zigzag[k]] = (int16_t)gemini__vision_jreceive(j, s);
    }
}

static void gemini__vision_jblock_dc(gemini__vision_jpeg *j, gemini__vision_jcomp *c,
                                     int16_t *coef, int ah, int al)
{
    if (ah == 0) {
        int t = gemini__vision_jdecode(j, &j->huff[0][c->dc_table]);
        if (t > 11) {
            j->corrupt = 1;
            return;
        }
        /* Clamped so that hostile differences cannot overflow; valid DCs are 12-bit. */
        c->dc_pred = gemini__vision_jclamp16(c->dc_pred + gemini__vision_jreceive(j, t));
        coef[0] = gemini__vision_jclamp16(c->dc_pred * (1 << al));
    } else if (gemini__vision_jbits(j, 1)) {
        coef[0] = (int16_t)(coef[0] | (1 << al));
    }
}

static void gemini__vision_jblock_ac_first(gemini__vision_jpeg *j, gemini__vision_jcomp *c,
                                           int16_t *coef, int ss, int se, int al)
{
    const gemini__vision_jhuff *ac = &j->huff[1][c->ac_table];
    int k;
    if (j->eob_run > 0) {
        j->eob_run--;
        return;
    }
    for (k = ss; k <= se; k++) {
        int rs = gemini__vision_jdecode(j, ac), run = rs >> 4, s = rs & 15;
        if (s == 0) {
            if (run < 15) {
                /* End-of-band run: this block and (2^run - 1 + extra bits) more end here. */
                j->eob_run = ((uint32_t)1 << run) - 1;
                if (run) j->eob_run += gemini__vision_jbits(j, run);
                break;
            }
            k += 15;
            continue;
        }
        k += run;
        if (k > se || s > 10) {
            j->corrupt = 1;
            return;
        }
        coef[gemini__vision_zigzag[k]] =
            gemini__vision_jclamp16(gemini__vision_jreceive(j, s) * (1 << al));
    }
}

/* Adds one correction bit to a coefficient already known to be nonzero. */
static void gemini__vision_jrefine(gemini__vision_jpeg *j, int16_t *value, int p1)
{
    if (gemini__vision_jbits(j, 1) && (*value & p1) == 0)
        *value = (int16_t)(*value >= 0 ? *value + p1 : *value - p1);
}

static void gemini__vision_jblock_ac_refine(gemini__vision_jpeg *j, gemini__vision_jcomp *c,
                                            int16_t *coef, int ss, int se, int al)
{
    const gemini__vision_jhuff *ac = &j->huff[1][c->ac_table];
    int p1 = 1 << al, k = ss;
    if (j->eob_run == 0) {
        for (; k <= se; k++) {
            int rs = gemini__vision_jdecode(j, ac), run = rs >> 4, s = rs & 15, value = 0;
            if (s != 0) {
                if (s != 1) {
                    j->corrupt = 1;
                    return;
                }
                value = gemini__vision_jbits(j, 1) ? p1 : -p1;
            } else if (run != 15) {
                j->eob_run = (uint32_t)1 << run;
                if (run) j->eob_run += gemini__vision_jbits(j, run);
                break;
            }
            /* Skip `run` coefficients that are still zero, refining nonzero ones on the way;
               the new coefficient (if any) goes in the zero slot after them. */
            for (; k <= se; k++) {
                int16_t *slot = &coef[gemini__vision_zigzag[k]];
                if (*slot != 0) {
                    gemini__vision_jrefine(j, slot, p1);
                } else {
                    if (run == 0) break;
                    run--;
                }
            }
            if (value != 0) {
                if (k > se) {
                    j->corrupt = 1;
                    return;
                }
                coef[gemini__vision_zigzag[k]] = (int16_t)value;
            }
        }
    }
    if (j->eob_run > 0) {
        for (; k <= se; k++) {
            int16_t *slot = &coef[gemini__vision_zigzag[k]];
            if (*slot != 0) gemini__vision_jrefine(j, slot, p1);
        }
        j->eob_run--;
    }
}

/* ---- JPEG: frame, scan and marker parsing ------------------------------------------------- */

static gemini_result gemini__vision_jpeg_frame(gemini__vision_jpeg *j, const uint8_t *d,
                                               size_t len, int marker)
{
    int i, k;
    if (j->seen_frame)
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: second SOF marker");
    if (len < 6)
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: SOF segment is truncated");
    if (d[0] != 8)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "jpeg: SOF sample precision %d (only 8-bit "
                            "is supported)", d[0]);
    j->height = (int)gemini__vision_be16(d + 1);
    j->width = (int)gemini__vision_be16(d + 3);
    j->n_comp = d[5];
    if (j->height == 0)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "jpeg: SOF height 0 (height given by a "
                            "DNL marker) is not supported");
    if (j->width == 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: SOF width 0 is invalid");
    if (j->n_comp != 1 && j->n_comp != 3)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "jpeg: SOF has %d components (1 and 3 are "
                            "supported; CMYK is not)", j->n_comp);
    if (len < 6 + 3 * (size_t)j->n_comp)
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: SOF segment is truncated");
    j->progressive = marker == 0xC2;
    j->h_max = j->v_max = 1;
    for (i = 0; i < j->n_comp; i++) {
        gemini__vision_jcomp *c = &j->comp[i];
        c->id = d[6 + 3 * i];
        c->h = d[7 + 3 * i] >> 4;
        c->v = d[7 + 3 * i] & 15;
        c->tq = d[8 + 3 * i];
        if (c->h < 1 || c->h > 4 || c->v < 1 || c->v > 4)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: component %d sampling factors %dx%d "
                                "are outside 1..4", i, c->h, c->v);
        if (c->tq > 3)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: component %d quantisation table %d "
                                "is outside 0..3", i, c->tq);
        for (k = 0; k < i; k++)
            if (j->comp[k].id == c->id)
                return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: component id %d appears twice",
                                    c->id);
        if (c->h > j->h_max) j->h_max = c->h;
        if (c->v > j->v_max) j->v_max = c->v;
    }
    if (j->n_comp == 1) {
        /* One component is never interleaved: its MCU is a single block. */
        j->comp[0].h = j->comp[0].v = j->h_max = j->v_max = 1;
    }
    j->mcus_x = (j->width + 8 * j->h_max - 1) / (8 * j->h_max);
    j->mcus_y = (j->height + 8 * j->v_max - 1) / (8 * j->v_max);
    for (i = 0; i < j->n_comp; i++) {
        gemini__vision_jcomp *c = &j->comp[i];
        c->plane_w = (j->width * c->h + j->h_max - 1) / j->h_max;
        c->plane_h = (j->height * c->v + j->v_max - 1) / j->v_max;
        c->used_w = (c->plane_w + 7) / 8;
        c->used_h = (c->plane_h + 7) / 8;
        c->blocks_w = j->mcus_x * c->h;
        c->blocks_h = j->mcus_y * c->v;
    }
    j->seen_frame = 1;
    return GEMINI_OK;
}

/* Allocates the coefficient arrays once the size has passed the caps. */
static gemini_result gemini__vision_jpeg_alloc(gemini__vision_jpeg *j)
{
    int i;
    for (i = 0; i < j->n_comp; i++) {
        gemini__vision_jcomp *c = &j->comp[i];
        size_t blocks = (size_t)c->blocks_w * (size_t)c->blocks_h;
        c->coef = (int16_t *)gemini__vision_alloc(blocks, 64 * sizeof(int16_t));
        if (!c->coef)
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "jpeg: no memory for %zu blocks",
                                blocks);
        memset(c->coef, 0, blocks * 64 * sizeof(int16_t));
    }
    return GEMINI_OK;
}

/* Ends a restart interval: drops buffered bits, consumes an RSTn marker when one is next, and
   resets the predictions. Missing markers are tolerated, as libjpeg tolerates them. */
static void gemini__vision_jpeg_restart(gemini__vision_jpeg *j)
{
    int i;
    j->bits = 0;
    j->n_bits = 0;
    j->hit_marker = 0;
    while (j->pos + 1 < j->size && j->data[j->pos] == 0xFF && j->data[j->pos + 1] == 0xFF)
        j->pos++;
    if (j->pos + 1 < j->size && j->data[j->pos] == 0xFF && j->data[j->pos + 1] >= 0xD0 &&
        j->data[j->pos + 1] <= 0xD7)
        j->pos += 2;
    for (i = 0; i < j->n_comp; i++) j->comp[i].dc_pred = 0;
    j->eob_run = 0;
    j->pad_bytes = 0;   /* the interval before was checked at its last unit */
}

static void gemini__vision_jpeg_block(gemini__vision_jpeg *j, gemini__vision_jcomp *c,
                                      int bx, int by, int ss, int se, int ah, int al)
{
    int16_t *coef = c->coef + ((size_t)by * (size_t)c->blocks_w + (size_t)bx) * 64;
    if (!j->progressive)
        gemini__vision_jblock_sequential(j, c, coef);
    else if (ss == 0)
        gemini__vision_jblock_dc(j, c, coef, ah, al);
    else if (ah == 0)
        gemini__vision_jblock_ac_first(j, c, coef, ss, se, al);
    else
        gemini__vision_jblock_ac_refine(j, c, coef, ss, se, al);
}

static gemini_result gemini__vision_jpeg_scan(gemini__vision_jpeg *j, const uint8_t *d,
                                              size_t len)
{
    gemini__vision_jcomp *scan[4];
    int ns, i, k, ss, se, ah, al;
    long units, unit, n_units_x;
    if (!j->seen_frame)
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: SOS before SOF");
    if (len < 1 || len < 4 + 2 * (size_t)d[0])
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: SOS segment is truncated");
    ns = d[0];
    if (ns < 1 || ns > j->n_comp)
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: SOS has %d components (frame has %d)",
                            ns, j->n_comp);
    for (i = 0; i < ns; i++) {
        int id = d[1 + 2 * i], tables = d[2 + 2 * i];
        scan[i] = NULL;
        for (k = 0; k < j->n_comp; k++)
            if (j->comp[k].id == id) scan[i] = &j->comp[k];
        if (!scan[i])
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: SOS names component id %d, not in "
                                "the frame", id);
        scan[i]->dc_table = tables >> 4;
        scan[i]->ac_table = tables & 15;
        if (scan[i]->dc_table > 3 || scan[i]->ac_table > 3)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: SOS Huffman table ids %d/%d are "
                                "outside 0..3", scan[i]->dc_table, scan[i]->ac_table);
    }
    ss = d[1 + 2 * ns];
    se = d[2 + 2 * ns];
    ah = d[3 + 2 * ns] >> 4;
    al = d[3 + 2 * ns] & 15;
    if (!j->progressive) {
        ss = 0;
        se = 63;   /* sequential files must say 0..63; some say otherwise and mean it */
        ah = al = 0;
    } else if (ss > se || se > 63 || (ss == 0 && se != 0) || (ss > 0 && ns != 1) || al > 13) {
        return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: progressive scan Ss=%d Se=%d Ah=%d "
                            "Al=%d over %d components is invalid", ss, se, ah, al, ns);
    }
    for (i = 0; i < ns; i++) {
        gemini__vision_jcomp *c = scan[i];
        if (((ss == 0 && ah == 0) || !j->progressive) && !j->huff[0][c->dc_table].defined)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: scan uses undefined DC Huffman table "
                                "%d", c->dc_table);
        if (se > 0 && !j->huff[1][c->ac_table].defined)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: scan uses undefined AC Huffman table "
                                "%d", c->ac_table);
        if (!c->quant_latched) {
            if (!j->quant_defined[c->tq])
                return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: component id %d uses undefined "
                                    "quantisation table %d", c->id, c->tq);
            memcpy(c->quant, j->quant[c->tq], sizeof c->quant);
            c->quant_latched = 1;
        }
        c->dc_pred = 0;
    }

    /* Decode: MCUs when several components are interleaved, single blocks otherwise. */
    j->bits = 0;
    j->n_bits = 0;
    j->hit_marker = 0;
    j->pad_bytes = 0;
    j->eob_run = 0;
    n_units_x = ns == 1 ? scan[0]->used_w : j->mcus_x;
    units = ns == 1 ? (long)scan[0]->used_w * scan[0]->used_h : (long)j->mcus_x * j->mcus_y;
    for (unit = 0; unit < units; unit++) {
        int ux = (int)(unit % n_units_x), uy = (int)(unit / n_units_x);
        if (j->restart_interval && unit > 0 && unit % j->restart_interval == 0)
            gemini__vision_jpeg_restart(j);
        if (ns == 1) {
            gemini__vision_jpeg_block(j, scan[0], ux, uy, ss, se, ah, al);
        } else {
            for (i = 0; i < ns; i++) {
                int bx, by;
                for (by = 0; by < scan[i]->v; by++)
                    for (bx = 0; bx < scan[i]->h; bx++)
                        gemini__vision_jpeg_block(j, scan[i], ux * scan[i]->h + bx,
                                                  uy * scan[i]->v + by, ss, se, ah, al);
            }
        }
        if (j->corrupt)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: bad Huffman code or coefficient in "
                                "scan %d at unit %ld", j->scans_done + 1, unit);
        /* Padding is read ahead; only padding bits actually consumed mean truncation. */
        if (j->pad_bytes * 8 > (size_t)j->n_bits)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: file ends inside scan %d (unit %ld "
                                "of %ld)", j->scans_done + 1, unit, units);
    }
    j->scans_done++;
    return GEMINI_OK;
}

/* EXIF in APP1: "Exif\0\0", a TIFF header, IFD0; only tag 0x0112 (Orientation) is read. */
static void gemini__vision_jpeg_exif(gemini__vision_jpeg *j, const uint8_t *d, size_t len)
{
    const uint8_t *t;
    size_t n, ifd, i, count;
    int little;
    if (len < 6 + 8 || memcmp(d, "Exif\0\0", 6) != 0) return;
    t = d + 6;
    n = len - 6;
    little = t[0] == 'I' && t[1] == 'I';
    if (!little && !(t[0] == 'M' && t[1] == 'M')) return;
#define GEMINI__VISION_T16(p) (little ? gemini__vision_le16(p) : gemini__vision_be16(p))
#define GEMINI__VISION_T32(p) (little ? gemini__vision_le32(p) : gemini__vision_be32(p))
    ifd = GEMINI__VISION_T32(t + 4);
    if (ifd > n || n - ifd < 2) return;
    count = GEMINI__VISION_T16(t + ifd);
    for (i = 0; i < count && ifd + 2 + 12 * (i + 1) <= n; i++) {
        const uint8_t *e = t + ifd + 2 + 12 * i;
        if (GEMINI__VISION_T16(e) == 0x0112 && GEMINI__VISION_T16(e + 2) == 3) {
            uint32_t v = GEMINI__VISION_T16(e + 8);
            if (v >= 1 && v <= 8) j->orientation = (int)v;
            break;
        }
    }
#undef GEMINI__VISION_T16
#undef GEMINI__VISION_T32
}

static gemini_result gemini__vision_jpeg_quant(gemini__vision_jpeg *j, const uint8_t *d,
                                               size_t len)
{
    while (len > 0) {
        int pq = d[0] >> 4, tq = d[0] & 15, k;
        size_t need = 1 + (pq ? 128 : 64);
        if (pq > 1 || tq > 3)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: DQT precision %d / id %d is invalid",
                                pq, tq);
        if (len < need)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: DQT segment is truncated");
        for (k = 0; k < 64; k++)
            j->quant[tq][gemini__vision_zigzag[k]] =
                (uint16_t)(pq ? gemini__vision_be16(d + 1 + 2 * k) : d[1 + k]);
        j->quant_defined[tq] = 1;
        d += need;
        len -= need;
    }
    return GEMINI_OK;
}

/* Walks the markers and decodes every scan into the coefficient arrays. */
static gemini_result gemini__vision_jpeg_parse(gemini__vision_jpeg *j, gemini__vision_job *job)
{
    gemini_result r = GEMINI_OK;
    j->pos = 2;
    for (;;) {
        int marker;
        size_t len;
        const uint8_t *d;
        /* Skip to the next marker; stray bytes after a scan are tolerated. */
        while (j->pos + 1 < j->size &&
               !(j->data[j->pos] == 0xFF && j->data[j->pos + 1] != 0 &&
                 j->data[j->pos + 1] != 0xFF))
            j->pos++;
        if (j->pos + 1 >= j->size) {
            /* Strict, as Pillow is by default: a file cut between scans is refused even
               though a coarser progressive image could be shown. */
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: file ends at byte %zu without an "
                                "EOI marker (truncated after %d scans)", j->size,
                                j->scans_done);
        }
        marker = j->data[j->pos + 1];
        j->pos += 2;
        if (marker == 0xD9) return j->scans_done > 0 ? GEMINI_OK :
            gemini__fail(GEMINI_ERR_FORMAT, "jpeg: EOI before any scan");
        if ((marker >= 0xD0 && marker <= 0xD8) || marker == 0x01) continue;
        if (j->pos + 2 > j->size)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: marker %02X at byte %zu is "
                                "truncated", marker, j->pos - 2);
        len = gemini__vision_be16(j->data + j->pos);
        if (len < 2 || len > j->size - j->pos)
            return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: marker %02X at byte %zu has length "
                                "%zu, past the end of the file", marker, j->pos - 2, len);
        d = j->data + j->pos + 2;
        len -= 2;
        j->pos += len + 2;
        if (marker == 0xC0 || marker == 0xC1 || marker == 0xC2) {
            r = gemini__vision_jpeg_frame(j, d, len, marker);
            if (r == GEMINI_OK)
                r = gemini__vision_start_image(job, "jpeg: SOF", j->width, j->height);
            if (r == GEMINI_OK) r = gemini__vision_jpeg_alloc(j);
        } else if (marker == 0xC3 || (marker >= 0xC5 && marker <= 0xCF && marker != 0xC8 &&
                                      marker != 0xCC)) {
            return gemini__fail(GEMINI_ERR_UNSUPPORTED, "jpeg: SOF%d (%s) is not supported",
                                marker - 0xC0, marker >= 0xC9 ? "arithmetic coding" :
                                marker == 0xC3 ? "lossless" : "hierarchical");
        } else if (marker == 0xC4) {
            while (r == GEMINI_OK && len > 0) {
                size_t used = 0;
                r = gemini__vision_jpeg_huff_table(j, d, len, &used);
                d += used;
                len -= used;
            }
        } else if (marker == 0xDB) {
            r = gemini__vision_jpeg_quant(j, d, len);
        } else if (marker == 0xDD) {
            if (len < 2) return gemini__fail(GEMINI_ERR_FORMAT, "jpeg: DRI is truncated");
            j->restart_interval = (int)gemini__vision_be16(d);
        } else if (marker == 0xDA) {
            r = gemini__vision_jpeg_scan(j, d, len);
        } else if (marker == 0xE1) {
            gemini__vision_jpeg_exif(j, d, len);
        } else if (marker == 0xEE && len >= 12 && memcmp(d, "Adobe", 5) == 0) {
            j->adobe_transform = d[11];
        }
        if (r != GEMINI_OK) return r;
    }
}

/* ---- JPEG: IDCT, upsampling, colour ------------------------------------------------------- */

/* Dequantises and inverse-transforms every block of a component into its sample plane. The
   IDCT is the separable float form of the definition. */
static gemini_result gemini__vision_jpeg_idct(gemini__vision_jcomp *c)
{
    static const double pi = 3.14159265358979323846;
    float basis[8][8];   /* basis[x][u] = C(u)/2 * cos((2x+1) u pi / 16) */
    size_t stride = (size_t)c->blocks_w * 8;
    int x, u, bx, by;
    c->plane = (uint8_t *)gemini__vision_alloc(stride, (size_t)c->blocks_h * 8);
    if (!c->plane) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "jpeg: no memory for a plane");
    for (x = 0; x < 8; x++)
        for (u = 0; u < 8; u++)
            basis[x][u] = (float)((u == 0 ? sqrt(0.5) : 1.0) * 0.5 *
                                  cos((2 * x + 1) * u * pi / 16));
    for (by = 0; by < c->blocks_h; by++) {
        for (bx = 0; bx < c->blocks_w; bx++) {
            const int16_t *coef = c->coef + ((size_t)by * c->blocks_w + bx) * 64;
            uint8_t *out = c->plane + (size_t)by * 8 * stride + (size_t)bx * 8;
            float in[64], tmp[64];
            int k, y, has_ac = 0;
            for (k = 0; k < 64; k++) {
                in[k] = (float)coef[k] * c->quant[k];
                if (k > 0 && coef[k] != 0) has_ac = 1;
            }
            if (!has_ac) {
                /* A flat block: every sample is DC / 8. */
                uint8_t v = gemini__vision_clamp8((int32_t)floorf(in[0] / 8 + 128.5f));
                for (y = 0; y < 8; y++) memset(out + y * stride, v, 8);
                continue;
            }
            /* Rows: tmp[v][x] = sum_u basis[x][u] in[v][u]; then columns. */
            for (y = 0; y < 8; y++)
                for (x = 0; x < 8; x++) {
                    float s = 0;
                    for (u = 0; u < 8; u++) s += basis[x][u] * in[y * 8 + u];
                    tmp[y * 8 + x] = s;
                }
            for (y = 0; y < 8; y++)
                for (x = 0; x < 8; x++) {
                    float s = 0;
                    for (u = 0; u < 8; u++) s += basis[y][u] * tmp[u * 8 + x];
                    out[y * stride + x] = gemini__vision_clamp8((int32_t)floorf(s + 128.5f));
                }
        }
    }
    return GEMINI_OK;
}

/* Upsamples a component plane to full size (width x height, one byte per sample) the way
   libjpeg's "fancy" upsampling does for 2x horizontal, 2x2 and 2x vertical factors: each
   output sample weighs its nearer input 3/4 and the farther 1/4, with libjpeg's alternating
   rounding biases; the edges repeat the last sample. Other factors replicate samples. */
static void gemini__vision_jpeg_upsample(const gemini__vision_jpeg *j,
                                         const gemini__vision_jcomp *c, uint8_t *full)
{
    size_t stride = (size_t)c->blocks_w * 8;
    int fx = j->h_max / c->h, fy = j->v_max / c->v, pw = c->plane_w, ph = c->plane_h;
    int exact = j->h_max % c->h == 0 && j->v_max % c->v == 0;
    int x, y, w = j->width, h = j->height;
    for (y = 0; y < h; y++) {
        uint8_t *dst = full + (size_t)y * w;
        if (exact && fx == 1 && fy == 1) {
            memcpy(dst, c->plane + (size_t)y * stride, (size_t)w);
        } else if (exact && (fx == 2 || fx == 1) && (fy == 2 || fy == 1)) {
            int near_row = fy == 2 ? y / 2 : y;
            int far_row = fy == 1 ? near_row : (y & 1) ? near_row + 1 : near_row - 1;
            const uint8_t *near, *far;
            if (far_row < 0) far_row = 0;
            if (far_row >= ph) far_row = ph - 1;
            near = c->plane + (size_t)near_row * stride;
            far = c->plane + (size_t)far_row * stride;
            for (x = 0; x < w; x++) {
                if (fx == 1) {
                    /* Vertical only: 3/4 near row + 1/4 far row, bias 1 above, 2 below. */
                    int bias = (y & 1) ? 2 : 1;
                    dst[x] = (uint8_t)((3 * near[x] + far[x] + bias) >> 2);
                } else {
                    int i = x / 2, other = (x & 1) ? i + 1 : i - 1;
                    if (fy == 1) {
                        if (x == 0 || other >= pw) dst[x] = near[i];
                        else dst[x] = (uint8_t)((3 * near[i] + near[other] + ((x & 1) ? 2 : 1))
                                                >> 2);
                    } else {
                        /* 2x2: column sums of 3*near + far, then 3:1 across columns. */
                        int sum = 3 * near[i] + far[i], osum;
                        if (other < 0 || other >= pw) {
                            dst[x] = (uint8_t)((4 * sum + ((x & 1) ? 7 : 8)) >> 4);
                        } else {
                            osum = 3 * near[other] + far[other];
                            dst[x] = (uint8_t)((3 * sum + osum + ((x & 1) ? 7 : 8)) >> 4);
                        }
                    }
                }
            }
        } else {
            const uint8_t *src = c->plane + (size_t)(y * c->v / j->v_max) * stride;
            for (x = 0; x < w; x++) dst[x] = src[x * c->h / j->h_max];
        }
    }
}

/* YCbCr -> RGB with libjpeg's 16-bit fixed-point constants and rounding. */
static void gemini__vision_jpeg_colour(const gemini__vision_jpeg *j, gemini__vision_job *job,
                                       uint8_t *const planes[3])
{
    size_t i, n = (size_t)j->width * (size_t)j->height;
    int rgb = j->adobe_transform == 0 ||
              (j->comp[0].id == 'R' && j->comp[1].id == 'G' && j->comp[2].id == 'B');
    uint8_t *dst = job->image->pixels;
    for (i = 0; i < n; i++, dst += 3) {
        int32_t y = planes[0][i], cb = planes[1][i] - 128, cr = planes[2][i] - 128;
        if (rgb) {
            dst[0] = planes[0][i];
            dst[1] = planes[1][i];
            dst[2] = planes[2][i];
            continue;
        }
        dst[0] = gemini__vision_clamp8(y + gemini__vision_shift_down(91881 * (int64_t)cr +
                                                                     32768, 16));
        dst[1] = gemini__vision_clamp8(y + gemini__vision_shift_down(-22554 * (int64_t)cb -
                                                                     46802 * (int64_t)cr +
                                                                     32768, 16));
        dst[2] = gemini__vision_clamp8(y + gemini__vision_shift_down(116130 * (int64_t)cb +
                                                                     32768, 16));
    }
}

/* Rotates or flips the decoded image as EXIF orientation o (2..8) asks. */
static gemini_result gemini__vision_orient(gemini_vision_image *image, int o)
{
    int w = image->width, h = image->height, x, y;
    int ow = o >= 5 ? h : w, oh = o >= 5 ? w : h;
    uint8_t *out = (uint8_t *)gemini__vision_alloc((size_t)w * h, 3);
    if (!out) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "jpeg: no memory to rotate");
    for (y = 0; y < oh; y++) {
        for (x = 0; x < ow; x++) {
            int sx, sy;
            switch (o) {
            case 2: sx = w - 1 - x; sy = y; break;                /* mirror left-right */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;        /* rotate 180 */
            case 4: sx = x; sy = h - 1 - y; break;                /* mirror top-bottom */
            case 5: sx = y; sy = x; break;                        /* transpose */
            case 6: sx = y; sy = h - 1 - x; break;                /* rotate 90 clockwise */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;        /* transverse */
            default: sx = w - 1 - y; sy = x; break;               /* 8: rotate 90 anticlockwise */
            }
            memcpy(out + ((size_t)y * ow + x) * 3, image->pixels + ((size_t)sy * w + sx) * 3, 3);
        }
    }
    GEMINI_FREE(image->pixels);
    image->pixels = out;
    image->width = ow;
    image->height = oh;
    return GEMINI_OK;
}

static gemini_result gemini__vision_jpeg_decode(gemini__vision_job *job, const uint8_t *data,
                                                size_t size)
{
    gemini__vision_jpeg *j = (gemini__vision_jpeg *)gemini__vision_alloc(1, sizeof *j);
    uint8_t *planes[3] = {NULL, NULL, NULL};
    gemini_result r;
    int i;
    if (!j) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "jpeg: no memory for the decoder");
    memset(j, 0, sizeof *j);
    j->data = data;
    j->size = size;
    j->adobe_transform = -1;
    j->orientation = 1;
    r = gemini__vision_jpeg_parse(j, job);

    for (i = 0; r == GEMINI_OK && i < j->n_comp; i++) {
        r = gemini__vision_jpeg_idct(&j->comp[i]);
        GEMINI_FREE(j->comp[i].coef);
        j->comp[i].coef = NULL;
        if (r != GEMINI_OK) break;
        planes[i] = (uint8_t *)gemini__vision_alloc((size_t)j->width, (size_t)j->height);
        if (!planes[i]) {
            r = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "jpeg: no memory for a plane");
            break;
        }
        gemini__vision_jpeg_upsample(j, &j->comp[i], planes[i]);
        GEMINI_FREE(j->comp[i].plane);
        j->comp[i].plane = NULL;
    }
    if (r == GEMINI_OK) {
        job->image->channels = j->n_comp;
        job->image->orientation = j->orientation;
        if (j->n_comp == 1) {
            size_t k, n = (size_t)j->width * (size_t)j->height;
            for (k = 0; k < n; k++)
                memset(job->image->pixels + 3 * k, planes[0][k], 3);
        } else {
            gemini__vision_jpeg_colour(j, job, planes);
        }
        if (job->params.apply_exif_orientation && j->orientation > 1)
            r = gemini__vision_orient(job->image, j->orientation);
    }
    for (i = 0; i < 3; i++) {
        GEMINI_FREE(planes[i]);
        GEMINI_FREE(j->comp[i].coef);
        GEMINI_FREE(j->comp[i].plane);
    }
    GEMINI_FREE(j);
    return r;
}

/* ---- BMP ---------------------------------------------------------------------------------- */

/* One BITFIELDS channel: the value under mask, scaled to 0..255. */
static uint32_t gemini__vision_bmp_field(uint32_t v, uint32_t mask)
{
    uint32_t max;
    if (mask == 0) return 255;
    while (!(mask & 1)) {
        mask >>= 1;
        v >>= 1;
    }
    max = mask;
    return ((v & mask) * 255 + max / 2) / max;
}

static int gemini__vision_mask_ok(uint32_t mask)
{
    if (mask == 0) return 1;
    while (!(mask & 1)) mask >>= 1;
    return (mask & (mask + 1)) == 0;   /* contiguous ones */
}

static gemini_result gemini__vision_bmp_decode(gemini__vision_job *job, const uint8_t *data,
                                               size_t size)
{
    uint32_t offset, header, bpp, compression = 0, colours = 0, masks[4] = {0, 0, 0, 0};
    int64_t width, height;
    int top_down = 0, entry_size = 4, i;
    size_t stride, palette_at;
    uint32_t x, y;
    gemini_result r;
    if (size < 26) return gemini__fail(GEMINI_ERR_FORMAT, "bmp: file of %zu bytes is too short",
                                       size);
    offset = gemini__vision_le32(data + 10);
    header = gemini__vision_le32(data + 14);
    if (header == 12) {
        width = gemini__vision_le16(data + 18);
        height = gemini__vision_le16(data + 20);
        bpp = gemini__vision_le16(data + 24);
        entry_size = 3;
    } else if (header >= 40 && header <= 124 && size >= 14 + (size_t)header) {
        width = (int32_t)gemini__vision_le32(data + 18);
        height = (int32_t)gemini__vision_le32(data + 22);
        bpp = gemini__vision_le16(data + 28);
        compression = gemini__vision_le32(data + 30);
        colours = gemini__vision_le32(data + 46);
        if (height < 0) {
            top_down = 1;
            height = -height;
        }
    } else {
        return gemini__fail(GEMINI_ERR_FORMAT, "bmp: header size %u is not 12 or 40..124 "
                            "(or the file is truncated)", (unsigned)header);
    }
    if (compression == 3 || compression == 6) {
        /* The masks follow a 40-byte header, or sit inside a larger one at the same place. */
        int n_masks = (compression == 6 || header >= 56) ? 4 : 3;
        if (size < 14 + 40 + 4 * (size_t)n_masks)
            return gemini__fail(GEMINI_ERR_FORMAT, "bmp: BITFIELDS masks are truncated");
        for (i = 0; i < n_masks; i++) masks[i] = gemini__vision_le32(data + 54 + 4 * i);
        if (bpp != 32)
            return gemini__fail(GEMINI_ERR_UNSUPPORTED, "bmp: BITFIELDS with %u bits per pixel "
                                "(only 32 is supported)", (unsigned)bpp);
        for (i = 0; i < 4; i++)
            if (!gemini__vision_mask_ok(masks[i]))
                return gemini__fail(GEMINI_ERR_FORMAT, "bmp: BITFIELDS mask %08X is not "
                                    "contiguous", (unsigned)masks[i]);
    } else if (compression != 0) {
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "bmp: compression %u (RLE, JPEG or PNG) "
                            "is not supported", (unsigned)compression);
    }
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24 && bpp != 32)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "bmp: %u bits per pixel is not supported "
                            "(1, 4, 8, 24 and 32 are)", (unsigned)bpp);
    r = gemini__vision_start_image(job, "bmp: header", width, height);
    if (r != GEMINI_OK) return r;
    job->image->channels = (compression != 0 && masks[3] != 0) ? 4 : 3;

    stride = ((size_t)width * bpp + 31) / 32 * 4;
    palette_at = 14 + (size_t)header;   /* only palette images (no masks) use it */
    if (bpp <= 8) {
        if (colours == 0 || colours > (1u << bpp)) colours = 1u << bpp;
        if (palette_at > size || (size - palette_at) / (size_t)entry_size < colours)
            return gemini__fail(GEMINI_ERR_FORMAT, "bmp: palette of %u colours is truncated",
                                (unsigned)colours);
    }
    if (offset > size || (size - offset) / stride < (size_t)height)
        return gemini__fail(GEMINI_ERR_FORMAT, "bmp: pixel data at offset %u (%zu bytes per "
                            "row, %lld rows) is past the end of the %zu-byte file",
                            (unsigned)offset, stride, (long long)height, size);

    for (y = 0; y < (uint32_t)height; y++) {
        const uint8_t *row = data + offset + stride * (top_down ? y : (uint32_t)height - 1 - y);
        uint8_t *dst = job->image->pixels + (size_t)y * (size_t)width * 3;
        for (x = 0; x < (uint32_t)width; x++, dst += 3) {
            if (bpp <= 8) {
                uint32_t bit = x * bpp, index = (row[bit / 8] >> (8 - bpp - bit % 8)) &
                                                ((1u << bpp) - 1);
                const uint8_t *e = data + palette_at + (size_t)index * entry_size;
                if (index >= colours) gemini__vision_put(job, dst, 0, 0, 0, 255);
                else gemini__vision_put(job, dst, e[2], e[1], e[0], 255);
            } else if (bpp == 24) {
                gemini__vision_put(job, dst, row[3 * x + 2], row[3 * x + 1], row[3 * x], 255);
            } else if (compression == 0) {
                /* 32-bit BI_RGB: B, G, R and an unused byte (not alpha, as Pillow reads it). */
                gemini__vision_put(job, dst, row[4 * x + 2], row[4 * x + 1], row[4 * x], 255);
            } else {
                uint32_t v = gemini__vision_le32(row + 4 * x);
                gemini__vision_put(job, dst, gemini__vision_bmp_field(v, masks[0]),
                                   gemini__vision_bmp_field(v, masks[1]),
                                   gemini__vision_bmp_field(v, masks[2]),
                                   gemini__vision_bmp_field(v, masks[3]));
            }
        }
    }
    return GEMINI_OK;
}

/* ---- PNM (P5, P6) ------------------------------------------------------------------------- */

/* Reads one decimal header field after whitespace and # comments; -1 when there is none or it
   exceeds limit. */
static int64_t gemini__vision_pnm_number(const uint8_t *d, size_t size, size_t *pos,
                                         int64_t limit)
{
    int64_t v = 0;
    int digits = 0;
    for (;;) {
        while (*pos < size && (d[*pos] == ' ' || (d[*pos] >= 9 && d[*pos] <= 13))) (*pos)++;
        if (*pos < size && d[*pos] == '#') {
            while (*pos < size && d[*pos] != '\n' && d[*pos] != '\r') (*pos)++;
            continue;
        }
        break;
    }
    while (*pos < size && d[*pos] >= '0' && d[*pos] <= '9') {
        v = v * 10 + (d[*pos] - '0');
        if (v > limit) return -1;
        digits++;
        (*pos)++;
    }
    return digits ? v : -1;
}

static gemini_result gemini__vision_pnm_decode(gemini__vision_job *job, const uint8_t *data,
                                               size_t size)
{
    static const char *field[3] = {"width", "height", "maxval"};
    int channels = data[1] == '6' ? 3 : 1, i, bytes;
    int64_t value[3];
    size_t pos = 2, n, k;
    uint32_t maxval;
    gemini_result r;
    for (i = 0; i < 3; i++) {
        value[i] = gemini__vision_pnm_number(data, size, &pos, i < 2 ? 1000000000 : 65535);
        if (value[i] < 1)
            return gemini__fail(GEMINI_ERR_FORMAT, "pnm: header %s is missing or out of range "
                                "(%s)", field[i], i < 2 ? "1..1e9" : "1..65535");
    }
    if (pos >= size || !(data[pos] == ' ' || (data[pos] >= 9 && data[pos] <= 13)))
        return gemini__fail(GEMINI_ERR_FORMAT, "pnm: no whitespace after maxval");
    pos++;
    r = gemini__vision_start_image(job, "pnm: header", value[0], value[1]);
    if (r != GEMINI_OK) return r;
    job->image->channels = channels;
    maxval = (uint32_t)value[2];
    bytes = maxval > 255 ? 2 : 1;
    n = (size_t)value[0] * (size_t)value[1] * (size_t)channels;
    if ((size - pos) / (size_t)bytes < n)
        return gemini__fail(GEMINI_ERR_FORMAT, "pnm: %zu bytes of samples present, %zu needed",
                            size - pos, n * bytes);
    for (k = 0; k < n; k++) {
        uint32_t v = bytes == 2 ? gemini__vision_be16(data + pos + 2 * k) : data[pos + k];
        uint32_t q, rem;
        if (v > maxval) v = maxval;
        /* v * 255 / maxval rounded to nearest, ties to even (what Pillow produces). */
        q = v * 255 / maxval;
        rem = v * 255 % maxval;
        if (2 * rem > maxval || (2 * rem == maxval && (q & 1))) q++;
        if (channels == 3) {
            job->image->pixels[k] = (uint8_t)q;
        } else {
            memset(job->image->pixels + 3 * k, (int)q, 3);
        }
    }
    return GEMINI_OK;
}

/* ---- Y4M (YUV4MPEG2) ---------------------------------------------------------------------- */

#define GEMINI__VISION_Y4M_MAX_LINE 65536
/* A first read for a frame header: "FRAME\n" plus room for a few parameters. */
#define GEMINI__VISION_Y4M_SHORT_LINE 128

struct gemini_vision_video {
    gemini_vision_video_info info;
    const uint8_t *data;     /* memory and callback forms: the whole stream */
    size_t size;
    uint8_t *owned;          /* callback form: data, ours to free */
    FILE *file;              /* path form: the open file, its size and its name */
    int64_t file_size;
    char *path;
    int64_t *offsets;        /* where each frame's samples start */
    int64_t offsets_cap;
    uint8_t *buffer;         /* path form: a header line or one frame's samples */
    size_t buffer_cap;
};

static int64_t gemini__vision_y4m_total(const gemini_vision_video *v)
{
    return v->file ? v->file_size : (int64_t)v->size;
}

/* Grows the path form's buffer to hold n bytes. */
static gemini_result gemini__vision_y4m_reserve(gemini_vision_video *v, size_t n)
{
    uint8_t *bigger;
    if (v->buffer_cap >= n) return GEMINI_OK;
    bigger = (uint8_t *)GEMINI_REALLOC(v->buffer, n);
    if (!bigger)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "y4m: no memory for %zu bytes", n);
    v->buffer = bigger;
    v->buffer_cap = n;
    return GEMINI_OK;
}

/* Points *bytes at n bytes at offset (which the caller has checked lie inside the stream):
   into the memory block, or read from the file into the buffer. */
static gemini_result gemini__vision_y4m_bytes(gemini_vision_video *v, int64_t offset, size_t n,
                                              const uint8_t **bytes)
{
    gemini_result r;
    if (!v->file) {
        *bytes = v->data + offset;
        return GEMINI_OK;
    }
    r = gemini__vision_y4m_reserve(v, n ? n : 1);
    if (r != GEMINI_OK) return r;
    /* fseek takes a long, which is 32 bits on some platforms. */
    if (offset > (int64_t)LONG_MAX || fseek(v->file, (long)offset, SEEK_SET) != 0 ||
        fread(v->buffer, 1, n, v->file) != n)
        return gemini__fail(GEMINI_ERR_IO, "y4m: reading %zu bytes at byte %lld failed", n,
                            (long long)offset);
    *bytes = v->buffer;
    return GEMINI_OK;
}

/* Finds the line starting at offset: *line points at it and *length excludes the newline.
   `what` names it for messages ("stream header", "frame 3 header"). */
static gemini_result gemini__vision_y4m_line(gemini_vision_video *v, int64_t offset,
                                             const char *what, const uint8_t **line,
                                             size_t *length)
{
    int64_t left = gemini__vision_y4m_total(v) - offset;
    size_t want = GEMINI__VISION_Y4M_SHORT_LINE;
    for (;;) {
        size_t n = (int64_t)want < left ? want : (size_t)left;
        const uint8_t *end;
        gemini_result r = gemini__vision_y4m_bytes(v, offset, n, line);
        if (r != GEMINI_OK) return r;
        end = (const uint8_t *)memchr(*line, '\n', n);
        if (end) {
            *length = (size_t)(end - *line);
            return GEMINI_OK;
        }
        if ((int64_t)n == left)
            return gemini__fail(GEMINI_ERR_FORMAT, "y4m: %s at byte %lld ends (%zu bytes) "
                                "before its newline", what, (long long)offset, n);
        if (want >= GEMINI__VISION_Y4M_MAX_LINE)
            return gemini__fail(GEMINI_ERR_FORMAT, "y4m: %s at byte %lld has no newline in "
                                "its first %d bytes", what, (long long)offset,
                                GEMINI__VISION_Y4M_MAX_LINE);
        want = GEMINI__VISION_Y4M_MAX_LINE;
    }
}

/* Parses a decimal number filling text[0..n) exactly, at most 2^31 - 1; -1 when it is not
   one. */
static int64_t gemini__vision_y4m_number(const uint8_t *text, size_t n)
{
    int64_t v = 0;
    size_t i;
    if (n == 0 || n > 10) return -1;
    for (i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9') return -1;
        v = v * 10 + (text[i] - '0');
    }
    return v <= 0x7FFFFFFF ? v : -1;
}

/* Parses "n:d" (both decimal); 0 when it is not that. */
static int gemini__vision_y4m_ratio(const uint8_t *text, size_t n, int32_t *num, int32_t *den)
{
    const uint8_t *colon = (const uint8_t *)memchr(text, ':', n);
    int64_t a, b;
    if (!colon) return 0;
    a = gemini__vision_y4m_number(text, (size_t)(colon - text));
    b = gemini__vision_y4m_number(colon + 1, n - (size_t)(colon - text) - 1);
    if (a < 0 || b < 0) return 0;
    *num = (int32_t)a;
    *den = (int32_t)b;
    return 1;
}

static int gemini__vision_y4m_is(const uint8_t *token, size_t n, const char *text)
{
    return n == strlen(text) && memcmp(token, text, n) == 0;
}

/* Parses the stream header line (without its newline) into v->info. */
static gemini_result gemini__vision_y4m_header(gemini_vision_video *v,
                                               const gemini_vision_decode_params *params,
                                               const uint8_t *line, size_t length)
{
    static const struct { const char *name; int chroma; } spaces[] = {
        {"420jpeg", GEMINI_VISION_CHROMA_420}, {"420paldv", GEMINI_VISION_CHROMA_420},
        {"420mpeg2", GEMINI_VISION_CHROMA_420}, {"420", GEMINI_VISION_CHROMA_420},
        {"422", GEMINI_VISION_CHROMA_422}, {"444", GEMINI_VISION_CHROMA_444},
        {"mono", GEMINI_VISION_CHROMA_MONO}};
    gemini_vision_video_info *info = &v->info;
    int64_t width = -1, height = -1;
    uint64_t luma, chroma;
    size_t pos = 9;
    gemini_result r;

    if (length < 9 || memcmp(line, "YUV4MPEG2", 9) != 0 || (length > 9 && line[9] != ' '))
        return gemini__fail(GEMINI_ERR_FORMAT, "y4m: the stream does not start with "
                            "\"YUV4MPEG2 \"");
    info->chroma = GEMINI_VISION_CHROMA_420;
    memcpy(info->colour_space, "420", 4);
    info->interlace = '?';
    info->rate_num = 25;
    info->rate_den = 1;

    /* Space-separated tokens, each a tag letter and its value. */
    while (pos < length) {
        const uint8_t *token = line + pos, *value = token + 1;
        size_t n = 0, vn;
        int shown;
        while (pos + n < length && line[pos + n] != ' ') n++;
        pos += n + 1;
        if (n == 0) continue;
        vn = n - 1;
        shown = (int)(vn < 40 ? vn : 40);
        switch (token[0]) {
        case 'W':
        case 'H': {
            int64_t x = gemini__vision_y4m_number(value, vn);
            if (x < 1)
                return gemini__fail(GEMINI_ERR_FORMAT, "y4m: header %c value \"%.*s\" is not "
                                    "a number in 1..2147483647", token[0], shown, value);
            if (token[0] == 'W') width = x;
            else height = x;
            break;
        }
        case 'F':
            if (!gemini__vision_y4m_ratio(value, vn, &info->rate_num, &info->rate_den) ||
                (info->rate_num == 0) != (info->rate_den == 0))
                return gemini__fail(GEMINI_ERR_FORMAT, "y4m: header F (frame rate) value "
                                    "\"%.*s\" is not n:d with both positive (or 0:0)", shown,
                                    value);
            /* 0:0 is "unknown", which ffmpeg reads as 25 frames a second. */
            if (info->rate_num == 0) {
                info->rate_num = 25;
                info->rate_den = 1;
            }
            break;
        case 'A':
            if (!gemini__vision_y4m_ratio(value, vn, &info->aspect_num, &info->aspect_den) ||
                (info->aspect_num == 0) != (info->aspect_den == 0))
                return gemini__fail(GEMINI_ERR_FORMAT, "y4m: header A (aspect) value \"%.*s\" "
                                    "is not n:d with both positive (or 0:0)", shown, value);
            break;
        case 'I':
            if (vn != 1 || !strchr("ptbm?", value[0]) || value[0] == 0)
                return gemini__fail(GEMINI_ERR_FORMAT, "y4m: header I (interlacing) value "
                                    "\"%.*s\" is not p, t, b, m or ?", shown, value);
            info->interlace = value[0];
            break;
        case 'C': {
            size_t k, count = sizeof spaces / sizeof spaces[0];
            for (k = 0; k < count; k++)
                if (gemini__vision_y4m_is(value, vn, spaces[k].name)) break;
            if (k == count)
                return gemini__fail(GEMINI_ERR_UNSUPPORTED, "y4m: header C (colour space) "
                                    "value \"%.*s\" is not supported (420jpeg, 420paldv, "
                                    "420mpeg2, 420, 422, 444, mono)", shown, value);
            info->chroma = spaces[k].chroma;
            memcpy(info->colour_space, spaces[k].name, strlen(spaces[k].name) + 1);
            break;
        }
        case 'X':
            /* ffmpeg writes the range as a comment; other comments mean nothing to us. */
            if (gemini__vision_y4m_is(value, vn, "COLORRANGE=FULL")) info->full_range = 1;
            if (gemini__vision_y4m_is(value, vn, "COLORRANGE=LIMITED")) info->full_range = 0;
            break;
        default:
            break;   /* unknown tags are skipped, as ffmpeg skips them */
        }
    }

    if (width < 0 || height < 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "y4m: header has no %s", width < 0 ? "W (width)"
                            : "H (height)");
    r = gemini__vision_check_size(params, "y4m: header", width, height);
    if (r != GEMINI_OK) return r;
    info->width = (int32_t)width;
    info->height = (int32_t)height;
    luma = (uint64_t)width * (uint64_t)height;
    switch (info->chroma) {
    case GEMINI_VISION_CHROMA_420:
        chroma = (uint64_t)((width + 1) / 2) * (uint64_t)((height + 1) / 2);
        break;
    case GEMINI_VISION_CHROMA_422: chroma = (uint64_t)((width + 1) / 2) * (uint64_t)height; break;
    case GEMINI_VISION_CHROMA_444: chroma = luma; break;
    default: chroma = 0;
    }
    info->frame_bytes = luma + 2 * chroma;
    return GEMINI_OK;
}

/* Reads the stream header, then walks the frames: each a "FRAME" line and frame_bytes of
   samples, recording where the samples start. */
static gemini_result gemini__vision_y4m_scan(gemini_vision_video *v,
                                             const gemini_vision_decode_params *params)
{
    int64_t total = gemini__vision_y4m_total(v), pos;
    const uint8_t *line;
    size_t length;
    gemini_result r;
    char what[64];

    if (total < 10)
        return gemini__fail(GEMINI_ERR_FORMAT, "y4m: %lld bytes are too few for a stream "
                            "header", (long long)total);
    r = gemini__vision_y4m_line(v, 0, "stream header", &line, &length);
    if (r != GEMINI_OK) return r;
    r = gemini__vision_y4m_header(v, params, line, length);
    if (r != GEMINI_OK) return r;

    pos = (int64_t)length + 1;
    while (pos < total) {
        int64_t index = v->info.frame_count, samples;
        if (index >= GEMINI_VISION_Y4M_MAX_FRAMES)
            return gemini__fail(GEMINI_ERR_UNSUPPORTED, "y4m: more than %lld frames",
                                (long long)GEMINI_VISION_Y4M_MAX_FRAMES);
        snprintf(what, sizeof what, "frame %lld header", (long long)index);
        r = gemini__vision_y4m_line(v, pos, what, &line, &length);
        if (r != GEMINI_OK) return r;
        if (length < 5 || memcmp(line, "FRAME", 5) != 0 || (length > 5 && line[5] != ' '))
            return gemini__fail(GEMINI_ERR_FORMAT, "y4m: frame %lld header at byte %lld is "
                                "not \"FRAME\" (it starts %02X %02X %02X)", (long long)index,
                                (long long)pos, line[0], length > 1 ? line[1] : 0,
                                length > 2 ? line[2] : 0);
        samples = pos + (int64_t)length + 1;
        if ((uint64_t)(total - samples) < v->info.frame_bytes)
            return gemini__fail(GEMINI_ERR_FORMAT, "y4m: frame %lld is truncated: %lld of its "
                                "%llu sample bytes are present", (long long)index,
                                (long long)(total - samples),
                                (unsigned long long)v->info.frame_bytes);
        if (index == v->offsets_cap) {
            int64_t cap = v->offsets_cap ? 2 * v->offsets_cap : 64;
            int64_t *bigger = (int64_t *)GEMINI_REALLOC(v->offsets, (size_t)cap * sizeof *bigger);
            if (!bigger)
                return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "y4m: no memory for the index "
                                    "of %lld frames", (long long)cap);
            v->offsets = bigger;
            v->offsets_cap = cap;
        }
        v->offsets[index] = samples;
        v->info.frame_count = index + 1;
        pos = samples + (int64_t)v->info.frame_bytes;
    }
    return GEMINI_OK;
}

/* Y'CbCr samples of one frame to RGB: BT.601, limited or full range, chroma replicated. */
static void gemini__vision_y4m_convert(const gemini_vision_video_info *info,
                                       const uint8_t *samples, uint8_t *rgb)
{
    const double kr = 0.299, kb = 0.114, kg = 1.0 - kr - kb;
    const int full = info->full_range != 0;
    const double y_scale = full ? 1.0 : 255.0 / 219.0, c_scale = full ? 1.0 : 255.0 / 224.0;
    /* 16-bit fixed point; the largest sum, 255 * 76309 + 127 * 132201, fits in 32 bits. */
    const int32_t ky = (int32_t)floor(y_scale * 65536.0 + 0.5);
    const int32_t r_cr = (int32_t)floor(2.0 * (1.0 - kr) * c_scale * 65536.0 + 0.5);
    const int32_t g_cb = (int32_t)floor(2.0 * (1.0 - kb) * kb / kg * c_scale * 65536.0 + 0.5);
    const int32_t g_cr = (int32_t)floor(2.0 * (1.0 - kr) * kr / kg * c_scale * 65536.0 + 0.5);
    const int32_t b_cb = (int32_t)floor(2.0 * (1.0 - kb) * c_scale * 65536.0 + 0.5);
    const int32_t y_offset = full ? 0 : 16;
    const size_t w = (size_t)info->width, h = (size_t)info->height;
    size_t cw = w, ch = h, x, y;
    int sx = 0, sy = 0;
    const uint8_t *cb, *cr;

    if (info->chroma == GEMINI_VISION_CHROMA_MONO) {
        /* ffmpeg reads mono as full-range grey and copies it. */
        for (x = 0; x < w * h; x++) memset(rgb + 3 * x, samples[x], 3);
        return;
    }
    if (info->chroma != GEMINI_VISION_CHROMA_444) {
        sx = 1;
        cw = (w + 1) / 2;
    }
    if (info->chroma == GEMINI_VISION_CHROMA_420) {
        sy = 1;
        ch = (h + 1) / 2;
    }
    cb = samples + w * h;
    cr = cb + cw * ch;
    for (y = 0; y < h; y++) {
        const uint8_t *luma = samples + y * w;
        const uint8_t *cb_row = cb + (y >> sy) * cw, *cr_row = cr + (y >> sy) * cw;
        uint8_t *out = rgb + 3 * y * w;
        for (x = 0; x < w; x++) {
            int32_t l = ky * ((int32_t)luma[x] - y_offset) + 32768;
            int32_t u = (int32_t)cb_row[x >> sx] - 128, v = (int32_t)cr_row[x >> sx] - 128;
            out[3 * x + 0] = gemini__vision_clamp8(gemini__vision_shift_down(l + r_cr * v, 16));
            out[3 * x + 1] = gemini__vision_clamp8(
                gemini__vision_shift_down(l - g_cb * u - g_cr * v, 16));
            out[3 * x + 2] = gemini__vision_clamp8(gemini__vision_shift_down(l + b_cb * u, 16));
        }
    }
}

/* Fills image with frame `index` of an open video. */
static gemini_result gemini__vision_y4m_frame(gemini_vision_video *v, int64_t index,
                                              gemini_vision_image *image)
{
    const gemini_vision_video_info *info = &v->info;
    const uint8_t *samples;
    gemini_result r = gemini__vision_y4m_bytes(v, v->offsets[index], (size_t)info->frame_bytes,
                                               &samples);
    if (r != GEMINI_OK) return r;
    image->pixels = (uint8_t *)gemini__vision_alloc((size_t)info->width * (size_t)info->height,
                                                    3);
    if (!image->pixels)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "y4m: no memory for %dx%d pixels",
                            (int)info->width, (int)info->height);
    image->width = info->width;
    image->height = info->height;
    image->channels = info->chroma == GEMINI_VISION_CHROMA_MONO ? 1 : 3;
    image->format = GEMINI_VISION_FORMAT_Y4M;
    image->orientation = 1;
    gemini__vision_y4m_convert(info, samples, image->pixels);
    return GEMINI_OK;
}

/* Frees what a video holds, not the struct. */
static void gemini__vision_y4m_release(gemini_vision_video *v)
{
    if (v->file) fclose(v->file);
    GEMINI_FREE(v->owned);
    GEMINI_FREE(v->path);
    GEMINI_FREE(v->offsets);
    GEMINI_FREE(v->buffer);
}

/* gemini_vision_load_memory on a Y4M stream: its first frame. */
static gemini_result gemini__vision_y4m_decode(gemini__vision_job *job, const uint8_t *data,
                                               size_t size)
{
    gemini_vision_video v;
    gemini_result r;
    memset(&v, 0, sizeof v);
    v.data = data;
    v.size = size;
    r = gemini__vision_y4m_scan(&v, &job->params);
    if (r == GEMINI_OK && v.info.frame_count == 0)
        r = gemini__fail(GEMINI_ERR_FORMAT, "y4m: the stream has no frames");
    if (r == GEMINI_OK) r = gemini__vision_y4m_frame(&v, 0, job->image);
    gemini__vision_y4m_release(&v);
    return r;
}

/* ---- Entry points ------------------------------------------------------------------------- */

GEMINI_API gemini_vision_decode_params gemini_vision_decode_default_params(void)
{
    gemini_vision_decode_params p;
    memset(&p, 0, sizeof p);
    p.apply_exif_orientation = 1;
    p.alpha = GEMINI_VISION_ALPHA_DROP;
    p.background[0] = p.background[1] = p.background[2] = 255;
    p.max_side = GEMINI_VISION_MAX_SIDE;
    p.max_pixels = GEMINI_VISION_MAX_PIXELS;
    return p;
}

GEMINI_API gemini_vision_format gemini_vision_detect(const void *data, size_t size)
{
    const uint8_t *d = (const uint8_t *)data;
    if (!d) return GEMINI_VISION_FORMAT_UNKNOWN;
    if (size >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return GEMINI_VISION_FORMAT_PNG;
    if (size >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF)
        return GEMINI_VISION_FORMAT_JPEG;
    if (size >= 2 && d[0] == 'B' && d[1] == 'M') return GEMINI_VISION_FORMAT_BMP;
    if (size >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6')) return GEMINI_VISION_FORMAT_PNM;
    if (size >= 10 && memcmp(d, "YUV4MPEG2", 9) == 0 && (d[9] == ' ' || d[9] == '\n'))
        return GEMINI_VISION_FORMAT_Y4M;
    return GEMINI_VISION_FORMAT_UNKNOWN;
}

GEMINI_API void gemini_vision_image_free(gemini_vision_image *image)
{
    if (!image) return;
    GEMINI_FREE(image->pixels);
    memset(image, 0, sizeof *image);
}

GEMINI_API gemini_result gemini_vision_load_memory(const void *data, size_t size,
                                                   const gemini_vision_decode_params *params,
                                                   gemini_vision_image *out)
{
    gemini__vision_job job;
    gemini_vision_format format;
    gemini_result r;
    const uint8_t *d = (const uint8_t *)data;
    if (!out) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "vision: out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && size > 0) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "vision: data is "
                                               "NULL");
    job.params = params ? *params : gemini_vision_decode_default_params();
    if (job.params.alpha != GEMINI_VISION_ALPHA_DROP &&
        job.params.alpha != GEMINI_VISION_ALPHA_BLEND)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "vision: alpha mode %d is unknown",
                            (int)job.params.alpha);
    if (job.params.max_side == 0 || job.params.max_side > GEMINI_VISION_MAX_SIDE)
        job.params.max_side = GEMINI_VISION_MAX_SIDE;
    if (job.params.max_pixels == 0 || job.params.max_pixels > GEMINI_VISION_MAX_PIXELS)
        job.params.max_pixels = GEMINI_VISION_MAX_PIXELS;
    job.image = out;
    out->orientation = 1;
    format = gemini_vision_detect(d, size);
    out->format = (int32_t)format;
    switch (format) {
    case GEMINI_VISION_FORMAT_PNG: r = gemini__vision_png_decode(&job, d, size); break;
    case GEMINI_VISION_FORMAT_JPEG: r = gemini__vision_jpeg_decode(&job, d, size); break;
    case GEMINI_VISION_FORMAT_BMP: r = gemini__vision_bmp_decode(&job, d, size); break;
    case GEMINI_VISION_FORMAT_PNM: r = gemini__vision_pnm_decode(&job, d, size); break;
    case GEMINI_VISION_FORMAT_Y4M: r = gemini__vision_y4m_decode(&job, d, size); break;
    default:
        r = gemini__fail(GEMINI_ERR_FORMAT, "vision: %zu bytes starting %02X %02X are not PNG, "
                         "JPEG, BMP, binary PNM or Y4M", size, size > 0 ? d[0] : 0,
                         size > 1 ? d[1] : 0);
    }
    if (r != GEMINI_OK) gemini_vision_image_free(out);
    return r;
}

/* Reads a whole stream into memory, growing the buffer geometrically up to the 1 GiB cap. */
static gemini_result gemini__vision_slurp(gemini_vision_read_fn read, void *user,
                                          uint8_t **data, size_t *size, const char *what)
{
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = (uint8_t *)GEMINI_MALLOC(cap);
    if (!buf) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "vision: no memory to read %s",
                                  what);
    for (;;) {
        int64_t got;
        if (len == cap) {
            uint8_t *bigger;
            if (cap >= GEMINI__VISION_MAX_FILE) {
                GEMINI_FREE(buf);
                return gemini__fail(GEMINI_ERR_UNSUPPORTED, "vision: %s is larger than 1 GiB",
                                    what);
            }
            bigger = (uint8_t *)GEMINI_REALLOC(buf, cap * 2);
            if (!bigger) {
                GEMINI_FREE(buf);
                return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "vision: no memory to read %s",
                                    what);
            }
            buf = bigger;
            cap *= 2;
        }
        got = read(user, buf + len, cap - len);
        if (got < 0 || (uint64_t)got > cap - len) {
            GEMINI_FREE(buf);
            return gemini__fail(GEMINI_ERR_IO, "vision: reading %s failed", what);
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    *data = buf;
    *size = len;
    return GEMINI_OK;
}

static int64_t gemini__vision_read_file(void *user, void *buffer, size_t size)
{
    FILE *f = (FILE *)user;
    size_t got = fread(buffer, 1, size, f);
    if (got == 0 && ferror(f)) return -1;
    return (int64_t)got;
}

GEMINI_API gemini_result gemini_vision_load_callbacks(gemini_vision_read_fn read, void *user,
                                                      const gemini_vision_decode_params *params,
                                                      gemini_vision_image *out)
{
    uint8_t *data;
    size_t size;
    gemini_result r;
    if (out) memset(out, 0, sizeof *out);
    if (!read || !out)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "vision: read callback or out is NULL");
    r = gemini__vision_slurp(read, user, &data, &size, "the stream");
    if (r != GEMINI_OK) return r;
    r = gemini_vision_load_memory(data, size, params, out);
    GEMINI_FREE(data);
    return r;
}

GEMINI_API gemini_result gemini_vision_load(const char *path,
                                            const gemini_vision_decode_params *params,
                                            gemini_vision_image *out)
{
    FILE *f;
    uint8_t *data;
    size_t size;
    gemini_result r;
    if (out) memset(out, 0, sizeof *out);
    if (!path || !out)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "vision: path or out is NULL");
    f = fopen(path, "rb");
    if (!f) return gemini__fail(GEMINI_ERR_IO, "vision: cannot open %s", path);
    r = gemini__vision_slurp(gemini__vision_read_file, f, &data, &size, path);
    fclose(f);
    if (r != GEMINI_OK) return r;
    r = gemini_vision_load_memory(data, size, params, out);
    GEMINI_FREE(data);
    if (r != GEMINI_OK) {
        /* Put the path in front of the decoder's message. */
        char message[512];
        snprintf(message, sizeof message, "%s", gemini_last_error());
        gemini__fail(r, "%s: %s", path, message);
    }
    return r;
}

/* ---- Y4M video entry points --------------------------------------------------------------- */

/* Caps from params as gemini_vision_load_memory applies them. */
static gemini_vision_decode_params gemini__vision_caps(const gemini_vision_decode_params *params)
{
    gemini_vision_decode_params p = params ? *params : gemini_vision_decode_default_params();
    if (p.max_side == 0 || p.max_side > GEMINI_VISION_MAX_SIDE) p.max_side = GEMINI_VISION_MAX_SIDE;
    if (p.max_pixels == 0 || p.max_pixels > GEMINI_VISION_MAX_PIXELS)
        p.max_pixels = GEMINI_VISION_MAX_PIXELS;
    return p;
}

/* Scans a video whose source fields are set; hands it to *out, or frees it. */
static gemini_result gemini__vision_video_finish(gemini_vision_video *v,
                                                 const gemini_vision_decode_params *params,
                                                 gemini_vision_video **out)
{
    gemini_vision_decode_params caps = gemini__vision_caps(params);
    gemini_result r = gemini__vision_y4m_scan(v, &caps);
    if (r != GEMINI_OK) {
        gemini_vision_video_close(v);
        return r;
    }
    *out = v;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_vision_video_open_memory(const void *data, size_t size,
                                                         const gemini_vision_decode_params *params,
                                                         gemini_vision_video **out)
{
    gemini_vision_video *v;
    if (out) *out = NULL;
    if (!out || (!data && size > 0))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "y4m: data or out is NULL");
    v = (gemini_vision_video *)GEMINI_MALLOC(sizeof *v);
    if (!v) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "y4m: no memory for a video");
    memset(v, 0, sizeof *v);
    v->data = (const uint8_t *)data;
    v->size = size;
    return gemini__vision_video_finish(v, params, out);
}

GEMINI_API gemini_result gemini_vision_video_open_callbacks(
    gemini_vision_read_fn read, void *user, const gemini_vision_decode_params *params,
    gemini_vision_video **out)
{
    gemini_vision_video *v;
    uint8_t *data;
    size_t size;
    gemini_result r;
    if (out) *out = NULL;
    if (!read || !out)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "y4m: read callback or out is NULL");
    r = gemini__vision_slurp(read, user, &data, &size, "the stream");
    if (r != GEMINI_OK) return r;
    v = (gemini_vision_video *)GEMINI_MALLOC(sizeof *v);
    if (!v) {
        GEMINI_FREE(data);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "y4m: no memory for a video");
    }
    memset(v, 0, sizeof *v);
    v->data = v->owned = data;
    v->size = size;
    return gemini__vision_video_finish(v, params, out);
}

GEMINI_API gemini_result gemini_vision_video_open(const char *path,
                                                  const gemini_vision_decode_params *params,
                                                  gemini_vision_video **out)
{
    gemini_vision_video *v;
    gemini_result r;
    long size;
    if (out) *out = NULL;
    if (!path || !out)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "y4m: path or out is NULL");
    v = (gemini_vision_video *)GEMINI_MALLOC(sizeof *v);
    if (!v) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "y4m: no memory for a video");
    memset(v, 0, sizeof *v);
    v->path = (char *)GEMINI_MALLOC(strlen(path) + 1);
    if (!v->path) {
        gemini_vision_video_close(v);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "y4m: no memory for a video");
    }
    memcpy(v->path, path, strlen(path) + 1);
    v->file = fopen(path, "rb");
    if (!v->file) {
        gemini_vision_video_close(v);
        return gemini__fail(GEMINI_ERR_IO, "y4m: cannot open %s", path);
    }
    if (fseek(v->file, 0, SEEK_END) != 0 || (size = ftell(v->file)) < 0) {
        gemini_vision_video_close(v);
        return gemini__fail(GEMINI_ERR_IO, "y4m: %s: cannot find the file's size", path);
    }
    v->file_size = (int64_t)size;
    r = gemini__vision_video_finish(v, params, out);
    if (r != GEMINI_OK) {
        /* Put the path in front of the parser's message. */
        char message[512];
        snprintf(message, sizeof message, "%s", gemini_last_error());
        gemini__fail(r, "%s: %s", path, message);
    }
    return r;
}

GEMINI_API void gemini_vision_video_close(gemini_vision_video *video)
{
    if (!video) return;
    gemini__vision_y4m_release(video);
    GEMINI_FREE(video);
}

GEMINI_API const gemini_vision_video_info *gemini_vision_video_get_info(
    const gemini_vision_video *video)
{
    return video ? &video->info : NULL;
}

GEMINI_API gemini_result gemini_vision_video_frame(gemini_vision_video *video, int64_t index,
                                                   gemini_vision_image *out)
{
    gemini_result r;
    if (out) memset(out, 0, sizeof *out);
    if (!video || !out)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "y4m: video or out is NULL");
    if (index < 0 || index >= video->info.frame_count)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "y4m: frame %lld is outside "
                            "0..%lld", (long long)index, (long long)video->info.frame_count - 1);
    r = gemini__vision_y4m_frame(video, index, out);
    if (r != GEMINI_OK) {
        gemini_vision_image_free(out);
        if (video->path) {
            char message[512];
            snprintf(message, sizeof message, "%s", gemini_last_error());
            gemini__fail(r, "%s: frame %lld: %s", video->path, (long long)index, message);
        }
    }
    return r;
}

GEMINI_API gemini_result gemini_vision_video_sample(const gemini_vision_video *video, int32_t n,
                                                    int64_t *indices, double *seconds)
{
    int64_t count, i;
    if (!video || !indices || n < 1)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "y4m: sample needs a video, an index "
                            "array and n >= 1 (n = %d)", (int)n);
    count = video->info.frame_count;
    if (count < 1) return gemini__fail(GEMINI_ERR_FORMAT, "y4m: the video has no frames");
    /* i * count < 2^31 * 2^22: exact in 64 bits. */
    for (i = 0; i < n; i++) {
        indices[i] = i * count / n;
        if (seconds)
            seconds[i] = (double)indices[i] * video->info.rate_den / video->info.rate_num;
    }
    return GEMINI_OK;
}

/* ---- PaliGemma detection answers ---------------------------------------------------------- */

/* The conventions, as Google's own code and documents state them:
   - big_vision/pp/proj/paligemma/segmentation.py (refcoco_mask2str) writes a box as
     <loc%04d> of round(v * 1023) clipped to 0..1023, in the order y_min, x_min, y_max, x_max,
     then 16 <seg%03d> codes (0..127) of the mask's VQ-VAE;
   - the PaliGemma model card and the demo's parser (paligemma_parse.py of the big-vision
     PaliGemma space) turn a value back into pixels as v / 1024 times the height (y) or the
     width (x), rounded with Python's round (ties to even), and skip what does not fit between
     boxes: text before a box, a missing label, a missing mask. We follow the demo. (big_vision's
     segmentation evaluator divides by 1023 instead; the two differ by under 1/1024 of a side.)
   - ai.google.dev's PaliGemma prompt page: "detect {object} ; {object}", so labels end at ';'. */

/* value (a <loc> number, 0..1023) / 1024 * side, rounded to nearest, ties to even; exact. */
static int32_t gemini__vision_loc_to_pixels(int32_t value, int32_t side)
{
    int64_t scaled = (int64_t)value * side;
    int64_t whole = scaled >> 10, rest = scaled & 1023;
    if (rest > 512 || (rest == 512 && (whole & 1))) whole++;
    return (int32_t)whole;
}

/* 1 when text[0..] is "<" name, exactly `digits` ASCII digits, ">"; *value is the number. */
static int gemini__vision_token(const char *text, const char *name, int digits, int32_t *value)
{
    size_t name_length = strlen(name);
    int i;
    if (text[0] != '<' || strncmp(text + 1, name, name_length) != 0) return 0;
    text += 1 + name_length;
    *value = 0;
    for (i = 0; i < digits; i++) {
        if (text[i] < '0' || text[i] > '9') return 0;   /* also stops at the NUL */
        *value = *value * 10 + (text[i] - '0');
    }
    return text[digits] == '>';
}

#define GEMINI__VISION_LOC_LENGTH 9   /* "<loc0123>" */
#define GEMINI__VISION_SEG_LENGTH 8   /* "<seg012>" */

static int gemini__vision_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

GEMINI_API gemini_result gemini_vision_parse_detections(const char *text, int32_t width,
                                                        int32_t height, gemini_vision_box *boxes,
                                                        int32_t max, int32_t *n)
{
    const char *p;
    int32_t found = 0;
    if (n) *n = 0;
    if (!text || !n || width < 1 || height < 1 || max < 0 || (!boxes && max > 0))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "parse_detections: needs text, n, a "
                            "size of at least 1x1 (%dx%d) and max >= 0 (%d) boxes", (int)width,
                            (int)height, (int)max);

    for (p = text; *p;) {
        gemini_vision_box box;
        const char *q = p, *label_end;
        int k;

        /* four <loc> tokens in a row start a box; anything else is skipped a byte at a time
           (each check stops at the first byte that differs, so never reads past the NUL) */
        memset(&box, 0, sizeof box);
        for (k = 0; k < 4; k++, q += GEMINI__VISION_LOC_LENGTH)
            if (!gemini__vision_token(q, "loc", 4, &box.loc[k])) break;
        if (k < 4) {
            p++;
            continue;
        }
        for (k = 0; k < 4; k++)
            if (box.loc[k] > 1023) box.loc[k] = 1023;

        /* sixteen <seg> tokens in a row, after optional white space: the mask's codes */
        p = q;
        while (gemini__vision_is_space(*q)) q++;
        for (k = 0; k < 16; k++, q += GEMINI__VISION_SEG_LENGTH)
            if (!gemini__vision_token(q, "seg", 3, &box.seg[k])) break;
        if (k == 16) {
            box.has_mask = 1;
            for (k = 0; k < 16; k++)
                if (box.seg[k] > 127) box.seg[k] = 127;
            p = q;
        } else {
            memset(box.seg, 0, sizeof box.seg);
        }

        /* the label: up to ';', '<', '>' or the end, trimmed */
        while (gemini__vision_is_space(*p)) p++;
        label_end = p;
        while (*label_end && *label_end != ';' && *label_end != '<' && *label_end != '>')
            label_end++;
        q = label_end;
        while (q > p && gemini__vision_is_space(q[-1])) q--;
        if (q > p) {
            box.label = p;
            box.label_length = (int32_t)(q - p < INT32_MAX ? q - p : INT32_MAX);
        }
        p = label_end;

        box.y0 = gemini__vision_loc_to_pixels(box.loc[0], height);
        box.x0 = gemini__vision_loc_to_pixels(box.loc[1], width);
        box.y1 = gemini__vision_loc_to_pixels(box.loc[2], height);
        box.x1 = gemini__vision_loc_to_pixels(box.loc[3], width);
        if (found < max) boxes[found] = box;
        if (found < INT32_MAX) found++;
    }
    *n = found;
    return GEMINI_OK;
}

/* ---- Resampling (Pillow's convolution resize) -------------------------------------------- */

/* Fixed-point fraction bits of the 8-bit passes: 32 - 8 (sample) - 2 (headroom). */
#define GEMINI__VISION_PRECISION 22

static double gemini__vision_filter(int filter, double x)
{
    if (x < 0) x = -x;
    if (filter == GEMINI_VISION_FILTER_BILINEAR) return x < 1 ? 1 - x : 0;
    /* Keys' cubic convolution with a = -0.5, evaluated in the order Pillow evaluates it so
       that the weights round to the same fixed-point values. */
    if (x < 1) return ((-0.5 + 2.0) * x - (-0.5 + 3.0)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * -0.5;
    return 0;
}

/* For each output index: the first input index, the tap count, and ksize fixed-point weights.
   The support grows with the shrink factor, which is what antialiases. */
typedef struct gemini__vision_taps {
    int ksize;
    int32_t *first, *count;
    int32_t *weights;   /* out_size * ksize */
} gemini__vision_taps;

static gemini_result gemini__vision_taps_make(gemini__vision_taps *t, int in_size,
                                              int out_size, int filter)
{
    double support = filter == GEMINI_VISION_FILTER_BILINEAR ? 1.0 : 2.0;
    double scale = (double)in_size / out_size, filter_scale = scale < 1 ? 1 : scale;
    double inv_scale = 1.0 / filter_scale, *k;
    int i, x;
    support *= filter_scale;
    t->ksize = (int)ceil(support) * 2 + 1;
    t->first = (int32_t *)gemini__vision_alloc((size_t)out_size, 2 * sizeof(int32_t));
    t->weights = (int32_t *)gemini__vision_alloc((size_t)out_size, t->ksize * sizeof(int32_t));
    k = (double *)gemini__vision_alloc((size_t)t->ksize, sizeof(double));
    if (!t->first || !t->weights || !k) {
        GEMINI_FREE(t->first);
        GEMINI_FREE(t->weights);
        GEMINI_FREE(k);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "resize: no memory for filter taps");
    }
    t->count = t->first + out_size;
    for (i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale, total = 0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        if (hi - lo > t->ksize) hi = lo + t->ksize;   /* cannot happen; keeps k[] in bounds */
        for (x = 0; x < hi - lo; x++) {
            k[x] = gemini__vision_filter(filter, (x + lo - center + 0.5) * inv_scale);
            total += k[x];
        }
        for (x = 0; x < t->ksize; x++) {
            double w = x < hi - lo ? (total != 0 ? k[x] / total : k[x]) : 0;
            double fixed = w * (1 << GEMINI__VISION_PRECISION);
            /* Round half away from zero into the fixed-point weight. */
            t->weights[(size_t)i * t->ksize + x] = (int32_t)(fixed < 0 ? fixed - 0.5 :
                                                             fixed + 0.5);
        }
        t->first[i] = lo;
        t->count[i] = hi - lo;
    }
    GEMINI_FREE(k);
    return GEMINI_OK;
}

/* One pass along rows (horizontal) or columns: src is width pixels wide, dst out_w x out_h;
   each output is rounded and clipped to 8 bits. */
static void gemini__vision_pass(const gemini__vision_taps *t, const uint8_t *src, uint8_t *dst,
                                int horizontal, int width, int out_w, int out_h, int channels)
{
    int x, y, c, i;
    for (y = 0; y < out_h; y++) {
        for (x = 0; x < out_w; x++) {
            int o = horizontal ? x : y;
            const int32_t *w = t->weights + (size_t)o * t->ksize;
            for (c = 0; c < channels; c++) {
                int64_t sum = (int64_t)1 << (GEMINI__VISION_PRECISION - 1);
                for (i = 0; i < t->count[o]; i++) {
                    int sx = horizontal ? t->first[o] + i : x;
                    int sy = horizontal ? y : t->first[o] + i;
                    sum += (int64_t)src[((size_t)sy * width + sx) * channels + c] * w[i];
                }
                dst[((size_t)y * out_w + x) * channels + c] =
                    gemini__vision_clamp8(gemini__vision_shift_down(sum,
                                                                    GEMINI__VISION_PRECISION));
            }
        }
    }
}

GEMINI_API gemini_result gemini_vision_resize(const uint8_t *src, int32_t src_width,
                                              int32_t src_height, int32_t channels,
                                              uint8_t *dst, int32_t dst_width,
                                              int32_t dst_height, int32_t filter)
{
    gemini__vision_taps tx, ty;
    uint8_t *mid = NULL;
    const uint8_t *vertical_src = src;
    gemini_result r;
    int need_x = src_width != dst_width, need_y = src_height != dst_height;
    if (!src || !dst)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resize: src or dst is NULL");
    if (src_width < 1 || src_height < 1 || dst_width < 1 || dst_height < 1 ||
        src_width > GEMINI_VISION_MAX_SIDE || src_height > GEMINI_VISION_MAX_SIDE ||
        dst_width > GEMINI_VISION_MAX_SIDE || dst_height > GEMINI_VISION_MAX_SIDE)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resize: %dx%d -> %dx%d is outside "
                            "1..%d", (int)src_width, (int)src_height, (int)dst_width,
                            (int)dst_height, GEMINI_VISION_MAX_SIDE);
    if (channels < 1 || channels > 4)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resize: %d channels (1..4)",
                            (int)channels);
    if (filter != GEMINI_VISION_FILTER_BILINEAR && filter != GEMINI_VISION_FILTER_BICUBIC)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resize: filter %d is unknown",
                            (int)filter);
    if (!need_x && !need_y) {
        memcpy(dst, src, (size_t)src_width * src_height * channels);
        return GEMINI_OK;
    }
    memset(&tx, 0, sizeof tx);
    memset(&ty, 0, sizeof ty);

    /* Horizontal first, into a temporary when a vertical pass follows. */
    if (need_x) {
        r = gemini__vision_taps_make(&tx, src_width, dst_width, filter);
        if (r != GEMINI_OK) return r;
        mid = need_y ? (uint8_t *)gemini__vision_alloc((size_t)dst_width * src_height,
                                                       (size_t)channels) : dst;
        if (!mid) {
            GEMINI_FREE(tx.first);
            GEMINI_FREE(tx.weights);
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "resize: no memory");
        }
        gemini__vision_pass(&tx, src, mid, 1, src_width, dst_width, src_height, channels);
        GEMINI_FREE(tx.first);
        GEMINI_FREE(tx.weights);
        vertical_src = mid;
    }

    if (need_y) {
        r = gemini__vision_taps_make(&ty, src_height, dst_height, filter);
        if (r == GEMINI_OK) {
            gemini__vision_pass(&ty, vertical_src, dst, 0, dst_width, dst_width, dst_height,
                                channels);
            GEMINI_FREE(ty.first);
            GEMINI_FREE(ty.weights);
        }
        if (need_x) GEMINI_FREE(mid);
        return r;
    }
    return GEMINI_OK;
}

GEMINI_API gemini_vision_preprocess_params gemini_vision_preprocess_default_params(void)
{
    gemini_vision_preprocess_params p;
    int c;
    p.width = p.height = 224;
    p.filter = GEMINI_VISION_FILTER_BICUBIC;
    p.rescale = 1.0f / 255.0f;
    for (c = 0; c < 3; c++) {
        p.mean[c] = 0.5f;
        p.std[c] = 0.5f;
    }
    return p;
}

GEMINI_API gemini_result gemini_vision_preprocess(const uint8_t *rgb, int32_t width,
                                                  int32_t height,
                                                  const gemini_vision_preprocess_params *params,
                                                  float *out)
{
    uint8_t *resized;
    size_t plane, i;
    gemini_result r;
    int c;
    if (!rgb || !params || !out)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "preprocess: NULL argument");
    for (c = 0; c < 3; c++)
        if (params->std[c] == 0)
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "preprocess: std[%d] is 0", c);
    if (params->width < 1 || params->height < 1 || params->width > GEMINI_VISION_MAX_SIDE ||
        params->height > GEMINI_VISION_MAX_SIDE)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "preprocess: output %dx%d is outside "
                            "1..%d", (int)params->width, (int)params->height,
                            GEMINI_VISION_MAX_SIDE);
    plane = (size_t)params->width * (size_t)params->height;
    resized = (uint8_t *)gemini__vision_alloc(plane, 3);
    if (!resized) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "preprocess: no memory");
    r = gemini_vision_resize(rgb, width, height, 3, resized, params->width, params->height,
                             params->filter);
    if (r == GEMINI_OK) {
        /* Interleaved HWC bytes -> planar CHW floats, as (v * rescale - mean) / std. */
        for (c = 0; c < 3; c++)
            for (i = 0; i < plane; i++)
                out[c * plane + i] = ((float)resized[3 * i + c] * params->rescale -
                                      params->mean[c]) / params->std[c];
    }
    GEMINI_FREE(resized);
    return r;
}

#endif /* GEMINI_VISION_IMPLEMENTATION */

