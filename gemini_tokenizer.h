/* gemini_tokenizer.h - SentencePiece-exact tokenization, a single-file C99 library.

   Part of gemini.h. Usable on its own: do this in exactly one C or C++ file

       #define GEMINI_TOKENIZER_IMPLEMENTATION
       #include "gemini_tokenizer.h"

   (gemini.h includes this header and defines the macro for you when GEMINI_IMPLEMENTATION is set.)

   Build macros
       GEMINI_STATIC                  make every function static (private to one file)
       GEMINI_MALLOC/REALLOC/FREE     override the allocator (define all three or none)

   This header also holds what every gemini header shares: the result enum, its to-string
   function and the per-thread last-error message.
*/
#ifndef GEMINI_TOKENIZER_H
#define GEMINI_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifndef GEMINI_API
#ifdef GEMINI_STATIC
#define GEMINI_API static
#else
#define GEMINI_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Shared by all gemini headers ------------------------------------------------------- */

/* Every fallible function returns one of these. On failure a message naming the file, the
   field and the value is left for gemini_last_error(). */
typedef enum gemini_result {
    GEMINI_OK = 0,
    GEMINI_ERR_INVALID_ARGUMENT,  /* a NULL pointer, a size out of range, an unknown option */
    GEMINI_ERR_IO,                /* a file could not be opened, mapped or read */
    GEMINI_ERR_FORMAT,            /* the bytes are not a valid file of the expected kind */
    GEMINI_ERR_UNSUPPORTED,       /* valid, but a feature this build does not handle */
    GEMINI_ERR_OUT_OF_MEMORY,     /* an allocation failed or a header asked for too much */
    GEMINI_ERR_CONTEXT_FULL,      /* more tokens than the context was created for */
    GEMINI_ERR_MISSING_KEY,       /* a required metadata key or tensor is absent */
    GEMINI_ERR_CHECKSUM,          /* a CRC did not match */
    GEMINI_ERR_COUNT
} gemini_result;

/* A short constant English name for a result, never NULL. */
GEMINI_API const char *gemini_result_string(gemini_result result);

/* The message of the last failure on the calling thread ("" if none). Valid until the next
   failing call on the same thread. */
GEMINI_API const char *gemini_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* GEMINI_TOKENIZER_H */

/* ========================================================================================= */
#ifdef GEMINI_TOKENIZER_IMPLEMENTATION
#ifdef GEMINI_TOKENIZER_IMPLEMENTED
#error "gemini_tokenizer.h: the implementation is included twice in one translation unit"
#endif
#define GEMINI_TOKENIZER_IMPLEMENTED

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(GEMINI_MALLOC) && defined(GEMINI_REALLOC) && defined(GEMINI_FREE)
#elif !defined(GEMINI_MALLOC) && !defined(GEMINI_REALLOC) && !defined(GEMINI_FREE)
#define GEMINI_MALLOC(size) malloc(size)
#define GEMINI_REALLOC(ptr, size) realloc(ptr, size)
#define GEMINI_FREE(ptr) free(ptr)
#else
#error "gemini: define all of GEMINI_MALLOC, GEMINI_REALLOC and GEMINI_FREE, or none"
#endif

#if defined(__cplusplus) && __cplusplus >= 201103L
#define GEMINI__THREAD_LOCAL thread_local
#elif defined(_MSC_VER)
#define GEMINI__THREAD_LOCAL __declspec(thread)
#elif defined(__GNUC__) || defined(__clang__)
#define GEMINI__THREAD_LOCAL __thread
#else
#define GEMINI__THREAD_LOCAL /* no thread-local storage: messages are shared between threads */
#endif

static GEMINI__THREAD_LOCAL char gemini__error_message[512];

GEMINI_API const char *gemini_result_string(gemini_result result)
{
    switch (result) {
    case GEMINI_OK: return "ok";
    case GEMINI_ERR_INVALID_ARGUMENT: return "invalid argument";
    case GEMINI_ERR_IO: return "input/output error";
    case GEMINI_ERR_FORMAT: return "bad file format";
    case GEMINI_ERR_UNSUPPORTED: return "unsupported";
    case GEMINI_ERR_OUT_OF_MEMORY: return "out of memory";
    case GEMINI_ERR_CONTEXT_FULL: return "context full";
    case GEMINI_ERR_MISSING_KEY: return "missing key";
    case GEMINI_ERR_CHECKSUM: return "checksum mismatch";
    default: return "unknown result";
    }
}

GEMINI_API const char *gemini_last_error(void)
{
    return gemini__error_message;
}

/* Records a printf-style message for gemini_last_error() and returns the result unchanged, so
   that a failure site reads `return gemini__fail(GEMINI_ERR_FORMAT, "...", ...);`. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static gemini_result gemini__fail(gemini_result result, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(gemini__error_message, sizeof gemini__error_message, format, args);
    va_end(args);
    return result;
}

#endif /* GEMINI_TOKENIZER_IMPLEMENTATION */
