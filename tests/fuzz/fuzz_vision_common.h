/* fuzz_vision_common.h - shared body of the image targets: decode with
   gemini_vision_load_memory (decode options chosen from the input's length, so every option
   gets exercised), then run the Pillow-exact resize and preprocessing on the pixels. Images
   are capped at 4 Mi pixels to keep one input fast (the hard caps are the library tests'). */
#ifndef FUZZ_VISION_COMMON_H
#define FUZZ_VISION_COMMON_H

#define GEMINI_VISION_IMPLEMENTATION
#include "../../gemini_vision.h"

#include <stdlib.h>
#include <string.h>

/* Decodes only inputs whose signature is `format`, so each target stays on its decoder. */
static int fuzz_vision_decode(const uint8_t *data, size_t size, gemini_vision_format format)
{
    gemini_vision_decode_params params = gemini_vision_decode_default_params();
    gemini_vision_preprocess_params pre = gemini_vision_preprocess_default_params();
    gemini_vision_image image;
    float *chw;
    if (gemini_vision_detect(data, size) != format) return 0;
    params.apply_exif_orientation = (int32_t)(size & 1);
    params.alpha = (size & 2) ? GEMINI_VISION_ALPHA_BLEND : GEMINI_VISION_ALPHA_DROP;
    params.background[0] = 10;
    params.max_pixels = (uint64_t)4 << 20;
    if (gemini_vision_load_memory(data, size, &params, &image) != GEMINI_OK) return 0;
    pre.width = 1 + (int32_t)(size % 37);
    pre.height = 1 + (int32_t)(size % 29);
    pre.filter = (size & 4) ? GEMINI_VISION_FILTER_BILINEAR : GEMINI_VISION_FILTER_BICUBIC;
    chw = (float *)malloc(3 * (size_t)pre.width * (size_t)pre.height * sizeof(float));
    if (chw && (uint64_t)image.width * (uint64_t)image.height <= ((uint64_t)1 << 20))
        gemini_vision_preprocess(image.pixels, image.width, image.height, &pre, chw);
    free(chw);
    gemini_vision_image_free(&image);
    return 1;
}

#endif /* FUZZ_VISION_COMMON_H */
