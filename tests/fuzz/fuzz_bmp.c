/* fuzz_bmp.c - libFuzzer target for gemini_vision.h's BMP
   decoder (palette, 24/32-bit, BITFIELDS, bottom-up, top-down), then resize and preprocessing. */
#include "fuzz_vision_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_vision_decode(data, size, GEMINI_VISION_FORMAT_BMP);
    return 0;
}
