/* fuzz_png.c - libFuzzer target for gemini_vision.h's PNG
   decoder (colour types, depths, Adam7, inflate, CRC, Adler-32), then resize and preprocessing. */
#include "fuzz_vision_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_vision_decode(data, size, GEMINI_VISION_FORMAT_PNG);
    return 0;
}
