/* compile_check.c - gemini_audio.h's implementation builds alone, as C++, with GEMINI_STATIC,
   and beside gemini.h in one file (before or after it). Built by tests/audio/compile_check.sh;
   never run. */
#ifdef GEMINI_H_FIRST
#define GEMINI_IMPLEMENTATION
#include "gemini.h"
#endif
#define GEMINI_AUDIO_IMPLEMENTATION
#include "gemini_audio.h"
#ifdef GEMINI_H_AFTER
#define GEMINI_IMPLEMENTATION
#include "gemini.h"
#endif

int gemini_audio_compile_check(void);

int gemini_audio_compile_check(void)
{
    gemini_audio audio;
    gemini_audio_free(&audio);
    return (int)gemini_audio_resample_length(10, 44100, 16000) +
           (int)gemini_result_string(GEMINI_OK)[0];
}
