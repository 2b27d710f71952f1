/* fuzz_jpeg.c - libFuzzer target for gemini_vision.h's JPEG
   decoder (sequential and progressive Huffman, restarts, EXIF), then resize and preprocessing. */
#include "fuzz_vision_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_vision_decode(data, size, GEMINI_VISION_FORMAT_JPEG);
    return 0;
}
