/* Compile-only check: every header's implementation builds in one translation unit, as C++ and
   with GEMINI_STATIC and with GEMINI_NO_THREADS (the Makefile's test-cxx target). */
#define GEMINI_IMPLEMENTATION
#define GEMINI_AUDIO_IMPLEMENTATION
#define GEMINI_VISION_IMPLEMENTATION
#include "gemini.h"
#include "gemini_audio.h"
#include "gemini_vision.h"

int gemini_compile_check(void);

int gemini_compile_check(void)
{
    return (int)gemini_result_string(GEMINI_OK)[0];
}
