/* fuzz_ppm.c - libFuzzer target for gemini_vision.h's binary PGM/PPM
   decoder (P5/P6, maxval up to 65535, comments), then resize and preprocessing. */
#include "fuzz_vision_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_vision_decode(data, size, GEMINI_VISION_FORMAT_PNM);
    return 0;
}
