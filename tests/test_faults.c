/* test_faults.c - allocation and read failure injection across all four gemini headers.

   The library promises never to crash or leak on failure. This test replaces the allocator
   (GEMINI_MALLOC/REALLOC/FREE) with a counting one that fails the N-th allocation and tracks
   the live blocks and bytes, and gives the callback loaders a reader that fails the N-th read.
   For N = 1, 2, ... it repeats each sequence until a run completes without the injected
   failure being reached, and requires of every run in which the failure fired:
     - an error result (GEMINI_ERR_OUT_OF_MEMORY for a failed allocation, GEMINI_ERR_IO for a
       failed image read), the out pointer NULL or the out struct zeroed, and a fresh message
       in gemini_last_error() (it must differ from a sentinel message set just before);
     - or, where the API allows it (fewer worker threads, a WAV stream that ends early), a
       success whose results equal those of a clean run;
     - after freeing whatever succeeded, exactly the blocks that were live before.
   Runs past the last failure point must succeed with the clean results.

   Sequences: model load (memory aligned, memory unaligned, path) + tokenizer + context +
   sampler + decode; image decode through callbacks (PNG, progressive JPEG, EXIF-rotated JPEG,
   BMP, PPM, a generated PPM larger than the 64 KiB read buffer, Y4M); Y4M video through
   callbacks and a path, every frame; resize and preprocess; WAV
   decode through callbacks (with and without a seek callback); resampling and log-mel;
   SentencePiece tokenizers made from arrays (BPE and unigram) and from a .model protobuf
   written here, a byte-level BPE tokenizer, and encode, decode and streaming decode.

   Each case runs in a child process (POSIX fork), so that a crash fails that case, names the
   N that crashed and lets the other cases run. New blocks are filled with 0xA5, so that a
   read of uninitialised memory misbehaves the same way on every run.

   Build: gcc -std=c99 -O2 -Wall -Wextra -pedantic -I. tests/test_faults.c \
              -o build/test_faults -lm -lpthread
   (also as C++ with g++ -x c++, and with -fsanitize=address,undefined).
   Usage (from the repository root): build/test_faults [model.gemini]
   The model defaults to tests/out/parity/gemma3-q8_0.gemini, which tests/test_parity.sh
   writes earlier in `make test`; without it the model cases are skipped (and counted).
   Prints one line per case and ends with "N passed, M failed"; exits nonzero on a failure.
*/
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- Counting allocator with one injected failure ------------------------------------------ */

static void *fault_malloc(size_t size);
static void *fault_realloc(void *block, size_t size);
static void fault_free(void *block);

#define GEMINI_MALLOC(size) fault_malloc(size)
#define GEMINI_REALLOC(block, size) fault_realloc(block, size)
#define GEMINI_FREE(block) fault_free(block)

#define GEMINI_IMPLEMENTATION
#define GEMINI_AUDIO_IMPLEMENTATION
#define GEMINI_VISION_IMPLEMENTATION
#include "gemini.h"
#include "gemini_audio.h"
#include "gemini_vision.h"

/* Each block carries its size in front. The union keeps the user part as aligned as malloc's
   own result (16 bytes on x86-64), which the library may rely on. */
typedef union fault_header {
    size_t size;
    long double align_ld;
    void *align_p;
    long long align_ll;
} fault_header;

/* Worker threads free blocks too (gemini.h frees each thread's start record in the thread),
   so the counters sit behind a mutex. */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static long fault_calls;        /* allocations (malloc and realloc) since fault_arm */
static long fault_fail_at;      /* the allocation to fail, counting from 1; 0: none */
static int fault_fired;         /* the failure was injected */
static long live_blocks;
#define FAULT_POISON 0xA5
static size_t live_bytes;

/* Counts one allocation; returns 1 when this one is to fail. */
static int fault_count_call(void)
{
    int fail;
    pthread_mutex_lock(&fault_lock);
    fault_calls++;
    fail = fault_fail_at != 0 && fault_calls == fault_fail_at;
    if (fail) fault_fired = 1;
    pthread_mutex_unlock(&fault_lock);
    return fail;
}

static void fault_track(long blocks, size_t add_bytes, size_t remove_bytes)
{
    pthread_mutex_lock(&fault_lock);
    live_blocks += blocks;
    live_bytes += add_bytes;
    live_bytes -= remove_bytes;
    pthread_mutex_unlock(&fault_lock);
}

static void *fault_malloc(size_t size)
{
    fault_header *h;
    if (fault_count_call()) return NULL;
    if (size > (size_t)-1 - sizeof(fault_header)) return NULL;
    h = (fault_header *)malloc(sizeof(fault_header) + size);
    if (h == NULL) return NULL;
    h->size = size;
    /* Fresh memory is poisoned, so that a read of it before it is written behaves the same on
       every run (and a pointer read from it is far from valid). */
    memset(h + 1, FAULT_POISON, size);
    fault_track(1, size, 0);
    return h + 1;
}

static void *fault_realloc(void *block, size_t size)
{
    fault_header *h, *bigger;
    size_t old;
    if (block == NULL) return fault_malloc(size);
    if (fault_count_call()) return NULL;   /* the old block stays valid, as with realloc */
    if (size > (size_t)-1 - sizeof(fault_header)) return NULL;
    h = (fault_header *)block - 1;
    old = h->size;
    bigger = (fault_header *)realloc(h, sizeof(fault_header) + size);
    if (bigger == NULL) return NULL;
    bigger->size = size;
    if (size > old) memset((unsigned char *)(bigger + 1) + old, FAULT_POISON, size - old);
    fault_track(0, size, old);
    return bigger + 1;
}

static void fault_free(void *block)
{
    fault_header *h;
    if (block == NULL) return;
    h = (fault_header *)block - 1;
    fault_track(-1, 0, h->size);
    free(h);
}

static void fault_arm(long fail_at)
{
    pthread_mutex_lock(&fault_lock);
    fault_calls = 0;
    fault_fail_at = fail_at;
    fault_fired = 0;
    pthread_mutex_unlock(&fault_lock);
}

/* Stops injecting; returns whether the armed failure fired. */
static int fault_disarm(void)
{
    int fired;
    pthread_mutex_lock(&fault_lock);
    fault_fail_at = 0;
    fired = fault_fired;
    pthread_mutex_unlock(&fault_lock);
    return fired;
}

static long fault_live_blocks(void)
{
    long n;
    pthread_mutex_lock(&fault_lock);
    n = live_blocks;
    pthread_mutex_unlock(&fault_lock);
    return n;
}

static size_t fault_live_bytes(void)
{
    size_t n;
    pthread_mutex_lock(&fault_lock);
    n = live_bytes;
    pthread_mutex_unlock(&fault_lock);
    return n;
}

/* ---- Injected read failures ----------------------------------------------------------------- */

/* The read (or seek) callback call to fail, counting from 1, and every one after it (a
   failed stream stays failed); 0: none. Set by the driver, consumed by the readers below. */
static long read_fail_at;
static int read_fired;

/* A stream over a memory block that hands out at most `chunk` bytes per call, so that a small
   file still takes many reads. */
typedef struct chunk_reader {
    const unsigned char *data;
    size_t size, pos, chunk;
    long calls;
} chunk_reader;

static void reader_rewind(chunk_reader *r)
{
    r->pos = 0;
    r->calls = 0;
}

/* Counts a call; returns 1 when it is to fail. */
static int reader_call_fails(chunk_reader *r)
{
    r->calls++;
    if (read_fail_at != 0 && r->calls >= read_fail_at) {
        read_fired = 1;
        return 1;
    }
    return 0;
}

static size_t reader_take(chunk_reader *r, void *buffer, size_t size)
{
    size_t n = r->size - r->pos;
    if (n > size) n = size;
    if (n > r->chunk) n = r->chunk;
    memcpy(buffer, r->data + r->pos, n);
    r->pos += n;
    return n;
}

static int64_t vision_read(void *user, void *buffer, size_t size)
{
    chunk_reader *r = (chunk_reader *)user;
    if (reader_call_fails(r)) return -1;
    return (int64_t)reader_take(r, buffer, size);
}

/* gemini_audio's read callback has no error value: 0 is "end of stream". */
static size_t audio_read(void *user, void *buffer, size_t size)
{
    chunk_reader *r = (chunk_reader *)user;
    if (reader_call_fails(r)) return 0;
    return reader_take(r, buffer, size);
}

static int audio_seek(void *user, uint64_t offset)
{
    chunk_reader *r = (chunk_reader *)user;
    if (reader_call_fails(r)) return 1;
    if (offset > r->size - r->pos) {
        r->pos = r->size;
        return 1;
    }
    r->pos += (size_t)offset;
    return 0;
}

/* ---- Reporting and the driver ------------------------------------------------------------- */

static int tests_passed, tests_failed, tests_skipped;

#define MAX_DETAILS 5

/* What one run of a scenario ended with. */
enum { RUN_ERROR, RUN_OK, RUN_BAD };

/* A scenario runs its sequence once with the failure armed, frees what it made and returns
   RUN_ERROR (failed cleanly), RUN_OK (succeeded with the clean results) or RUN_BAD (a broken
   promise, described in why). */
typedef int (*scenario_fn)(void *arg, char *why, size_t why_size);

enum { INJECT_ALLOC, INJECT_READ };

/* The message gemini_last_error() holds before each run; a failure must replace it. */
static char sentinel_message[512];

static void set_sentinel(void)
{
    gemini_tok *tok;
    gemini_tok_load_memory(NULL, 0, &tok);   /* fails without allocating: a known message */
    snprintf(sentinel_message, sizeof sentinel_message, "%s", gemini_last_error());
}

static int error_is_fresh(void)
{
    const char *message = gemini_last_error();
    return message != NULL && message[0] != '\0' && strcmp(message, sentinel_message) != 0;
}

/* Checks a failed call: the expected result and a fresh message. Returns RUN_ERROR or
   RUN_BAD. */
static int check_failure(gemini_result r, gemini_result want, const char *call, char *why,
                         size_t why_size)
{
    if (r != want) {
        snprintf(why, why_size, "%s returned %s (want %s): %s", call, gemini_result_string(r),
                 gemini_result_string(want), gemini_last_error());
        return RUN_BAD;
    }
    if (!error_is_fresh()) {
        snprintf(why, why_size, "%s failed with %s but left no new message", call,
                 gemini_result_string(r));
        return RUN_BAD;
    }
    return RUN_ERROR;
}

static void report(int ok, const char *name, const char *detail)
{
    printf("%s %s: %s\n", ok ? "ok  " : "FAIL", name, detail);
    if (ok) tests_passed++;
    else tests_failed++;
}

static void skip(const char *name, const char *why)
{
    printf("skip %s: %s\n", name, why);
    tests_skipped++;
}

/* Some runs end in a way the API allows but that is worth a mention (a WAV decoded up to where
   its stream failed); the scenario counts them here and the summary names them. */
static long run_notes;
static const char *run_note_label;

/* Writes the N about to run to the parent, so that it can name the run that crashed. */
static int progress_fd = -1;

static void send_progress(long n)
{
    if (progress_fd >= 0 && write(progress_fd, &n, sizeof n) != (ssize_t)sizeof n) {
        close(progress_fd);
        progress_fd = -1;
    }
}

/* Runs a scenario for N = 1, 2, ... failing the N-th allocation or read, until a run in which
   the failure did not fire, then once more (runs past the end must keep succeeding). Prints
   one summary line; returns 1 when every run kept the promises. */
static int drive_loop(const char *name, int inject, scenario_fn fn, void *arg)
{
    const long max_points = 20000;   /* a bound, in case a loop never stops allocating */
    long n, errors = 0, absorbed = 0, problems = 0, beyond = 0;
    char why[1200], summary[400];

    run_notes = 0;
    for (n = 1; n <= max_points; n++) {
        long blocks_before = fault_live_blocks();
        size_t bytes_before = fault_live_bytes();
        int outcome, fired;

        why[0] = '\0';
        send_progress(n);
        set_sentinel();
        if (inject == INJECT_ALLOC) fault_arm(n);
        else {
            read_fail_at = n;
            read_fired = 0;
        }
        outcome = fn(arg, why, sizeof why);
        if (inject == INJECT_ALLOC) fired = fault_disarm();
        else {
            fired = read_fired;
            read_fail_at = 0;
        }

        if (outcome == RUN_ERROR && !fired) {
            snprintf(why, sizeof why, "failed with nothing injected: %.500s",
                     gemini_last_error());
            outcome = RUN_BAD;
        }
        if (fault_live_blocks() != blocks_before || fault_live_bytes() != bytes_before) {
            size_t len = strlen(why);
            snprintf(why + len, sizeof why - len, "%sleak: %ld blocks, %ld bytes still live",
                     len ? "; " : "", fault_live_blocks() - blocks_before,
                     (long)(fault_live_bytes() - bytes_before));
            outcome = RUN_BAD;
        }
        if (outcome == RUN_BAD) {
            if (++problems <= MAX_DETAILS) printf("     N=%ld: %s\n", n, why);
        } else if (fired) {
            if (outcome == RUN_ERROR) errors++;
            else absorbed++;
        }
        if (!fired && ++beyond == 2) break;
    }
    if (n > max_points) {
        report(0, name, "no run completed: the sequence never ran out of failure points");
        return 0;
    }
    if (problems == 0) {
        int len;
        if (absorbed > 0)
            len = snprintf(summary, sizeof summary, "%ld failure points, all clean (%ld errors, "
                           "%ld absorbed with correct results)", errors + absorbed, errors,
                           absorbed);
        else
            len = snprintf(summary, sizeof summary, "%ld failure points, all clean", errors);
        if (run_notes > 0 && run_note_label != NULL && len > 0 && (size_t)len < sizeof summary)
            snprintf(summary + len, sizeof summary - (size_t)len, "; %ld %s", run_notes,
                     run_note_label);
    } else {
        snprintf(summary, sizeof summary, "%ld of %ld runs broke a promise (details above)",
                 problems, n);
    }
    report(problems == 0, name, summary);
    return problems == 0;
}

#define CHILD_FAILED 99

/* Runs drive_loop in a child process, so that a crash inside the library (which is what this
   test looks for) fails this case, names the N that crashed, and lets the others run. */
static void drive(const char *name, int inject, scenario_fn fn, void *arg)
{
    int fds[2], status = 0;
    long n, last_n = 0;
    pid_t child;

    fflush(stdout);
    if (pipe(fds) != 0 || (child = fork()) < 0) {
        /* No child process: run here. */
        drive_loop(name, inject, fn, arg);
        return;
    }
    if (child == 0) {
        int ok;
        close(fds[0]);
        progress_fd = fds[1];
        ok = drive_loop(name, inject, fn, arg);
        fflush(stdout);
        close(fds[1]);
        /* exit, not _exit: sanitizers report leaks at exit. A sanitizer's own exit status is
           1 by default, hence CHILD_FAILED for "failed and said why". */
        exit(ok ? 0 : CHILD_FAILED);
    }
    close(fds[1]);
    while (read(fds[0], &n, sizeof n) == (ssize_t)sizeof n) last_n = n;
    close(fds[0]);
    while (waitpid(child, &status, 0) < 0) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        tests_passed++;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_FAILED) {
        tests_failed++;   /* the child printed why */
    } else {
        char message[300];
        if (WIFSIGNALED(status))
            snprintf(message, sizeof message, "CRASHED with signal %d (%s) at N=%ld",
                     WTERMSIG(status), WTERMSIG(status) == SIGSEGV   ? "SIGSEGV"
                                       : WTERMSIG(status) == SIGABRT ? "SIGABRT"
                                                                     : "see above",
                     last_n);
        else
            snprintf(message, sizeof message, "child exited with status %d at N=%ld (see "
                     "the sanitizer report on stderr)", WEXITSTATUS(status), last_n);
        report(0, name, message);
    }
}

/* ---- Files ---------------------------------------------------------------------------------- */

/* Reads a whole file with plain malloc (not the counted allocator). */
static unsigned char *read_whole_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    long n;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = (unsigned char *)malloc((size_t)n + 1);
        if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
            free(data);
            data = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return data;
}

/* ---- 1. Model load, tokenizer, context, sampler, decode ----------------------------------- */

enum { LOAD_ALIGNED, LOAD_UNALIGNED, LOAD_PATH };

#define MODEL_TOKENS 6

typedef struct model_case {
    int how;                       /* LOAD_* */
    const char *path;
    const unsigned char *bytes;    /* the file, 64-byte aligned or deliberately not */
    size_t size;
    int recording;                 /* the clean run: fill in the reference below */
    int has_tokenizer;
    int32_t tokens[MODEL_TOKENS];
    int32_t vocab;
    float *logits;                 /* [MODEL_TOKENS * vocab], this run */
    float *ref_logits;
    int32_t ref_sampled;
} model_case;

/* Any non-NULL value: the functions must overwrite it with NULL when they fail. */
static char not_null_marker;
#define NOT_NULL(type) ((type)(void *)&not_null_marker)

static int model_scenario(void *arg, char *why, size_t why_size)
{
    model_case *mc = (model_case *)arg;
    gemini_model *model = NOT_NULL(gemini_model *);
    gemini_tok *tok = NOT_NULL(gemini_tok *);
    gemini_context *ctx = NOT_NULL(gemini_context *);
    gemini_sampler *sampler = NOT_NULL(gemini_sampler *);
    gemini_context_params params = gemini_context_default_params();
    gemini_result r;
    int32_t sampled = -1;
    int outcome = RUN_OK;

    if (mc->how == LOAD_PATH) r = gemini_model_load(mc->path, &model);
    else r = gemini_model_load_memory(mc->bytes, mc->size, &model);
    if (r != GEMINI_OK) {
        if (model != NULL) {
            snprintf(why, why_size, "model load failed but left *out non-NULL");
            return RUN_BAD;
        }
        return check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "model load", why, why_size);
    }

    /* The clean run learns whether the file holds a tokenizer; without one, MISSING_KEY with
       *out NULL is the expected answer every time. */
    r = gemini_model_tokenizer(model, &tok);
    if (mc->recording) mc->has_tokenizer = r == GEMINI_OK;
    if (!mc->has_tokenizer && r == GEMINI_ERR_MISSING_KEY && tok == NULL) r = GEMINI_OK;
    if (r != GEMINI_OK) {
        outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_model_tokenizer", why,
                                why_size);
        if (tok != NULL) {
            snprintf(why, why_size, "gemini_model_tokenizer failed but left *out non-NULL");
            outcome = RUN_BAD;
        }
        gemini_model_free(model);
        return outcome;
    }

    /* Small, and split so that prefill takes two batch steps; two threads exercise the pool. */
    params.n_ctx = 32;
    params.n_batch = 3;
    params.n_threads = 2;
    params.log_callback = NULL;
    r = gemini_context_create(model, &params, &ctx);
    if (r != GEMINI_OK) {
        outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_context_create", why,
                                why_size);
        if (ctx != NULL) {
            snprintf(why, why_size, "gemini_context_create failed but left *out non-NULL");
            outcome = RUN_BAD;
        }
        gemini_tok_free(tok);
        gemini_model_free(model);
        return outcome;
    }

    r = gemini_sampler_create(NULL, gemini_model_vocab_size(model), &sampler);
    if (r != GEMINI_OK) {
        outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_sampler_create", why,
                                why_size);
        if (sampler != NULL) {
            snprintf(why, why_size, "gemini_sampler_create failed but left *out non-NULL");
            outcome = RUN_BAD;
        }
        gemini_context_free(ctx);
        gemini_tok_free(tok);
        gemini_model_free(model);
        return outcome;
    }

    /* A 4-token prefill, then two single tokens; every row of logits kept. */
    r = gemini_decode(ctx, mc->tokens, 4, mc->logits, 1);
    if (r == GEMINI_OK)
        r = gemini_decode(ctx, mc->tokens + 4, 1, mc->logits + 4 * (size_t)mc->vocab, 1);
    if (r == GEMINI_OK)
        r = gemini_decode(ctx, mc->tokens + 5, 1, mc->logits + 5 * (size_t)mc->vocab, 1);
    if (r == GEMINI_OK) r = gemini_sample(sampler, mc->logits + 5 * (size_t)mc->vocab, &sampled);
    if (r != GEMINI_OK) {
        /* Decoding is documented not to allocate; any failure here is a broken promise
           unless it is a clean out-of-memory error. */
        outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_decode/sample", why,
                                why_size);
    } else if (mc->recording) {
        memcpy(mc->ref_logits, mc->logits, sizeof(float) * MODEL_TOKENS * (size_t)mc->vocab);
        mc->ref_sampled = sampled;
    } else if (memcmp(mc->ref_logits, mc->logits,
                      sizeof(float) * MODEL_TOKENS * (size_t)mc->vocab) != 0 ||
               sampled != mc->ref_sampled) {
        snprintf(why, why_size, "decode succeeded with logits or a sample that differ from "
                 "the clean run");
        outcome = RUN_BAD;
    }
    gemini_sampler_free(sampler);
    gemini_context_free(ctx);
    gemini_tok_free(tok);
    gemini_model_free(model);
    return outcome;
}

static void test_model(const char *path)
{
    static const char *const names[3] = {
        "model load_memory (aligned) + tokenizer + context + sampler + decode",
        "model load_memory (unaligned: copied) + tokenizer + context + sampler + decode",
        "model load (path) + tokenizer + context + sampler + decode"};
    unsigned char *file, *block;
    size_t size = 0;
    model_case mc;
    int how, i;
    char why[600];

    file = read_whole_file(path, &size);
    if (file == NULL) {
        char message[300];
        snprintf(message, sizeof message, "%s is absent (tests/test_parity.sh writes it in "
                 "`make test`); model cases not run", path);
        for (how = 0; how < 3; how++) skip(names[how], message);
        return;
    }
    /* One block holds the file 64-byte aligned and, one byte on, unaligned. */
    block = (unsigned char *)malloc(size + 128);
    if (block == NULL) {
        free(file);
        report(0, "model", "no memory for the test's own copy of the file");
        return;
    }

    memset(&mc, 0, sizeof mc);
    mc.path = path;
    for (how = 0; how < 3; how++) {
        unsigned char *aligned = block + ((64 - ((uintptr_t)block & 63)) & 63);
        mc.how = how;
        mc.bytes = how == LOAD_UNALIGNED ? aligned + 1 : aligned;
        memcpy((void *)mc.bytes, file, size);
        mc.size = size;

        if (how == 0) {
            /* The clean run, which also learns the vocabulary size. */
            gemini_model *probe;
            if (gemini_model_load_memory(mc.bytes, mc.size, &probe) != GEMINI_OK) {
                snprintf(why, sizeof why, "%s does not load: %s", path, gemini_last_error());
                report(0, "model", why);
                break;
            }
            mc.vocab = gemini_model_vocab_size(probe);
            gemini_model_free(probe);
            for (i = 0; i < MODEL_TOKENS; i++) mc.tokens[i] = (int32_t)((7 + 13 * i) % mc.vocab);
            mc.logits = (float *)malloc(sizeof(float) * MODEL_TOKENS * (size_t)mc.vocab);
            mc.ref_logits = (float *)malloc(sizeof(float) * MODEL_TOKENS * (size_t)mc.vocab);
            if (mc.logits == NULL || mc.ref_logits == NULL) {
                report(0, "model", "no memory for the logits");
                break;
            }
            mc.recording = 1;
            why[0] = '\0';
            if (model_scenario(&mc, why, sizeof why) != RUN_OK) {
                char message[1400];
                snprintf(message, sizeof message, "the clean run failed: %s %s", why,
                         gemini_last_error());
                report(0, "model", message);
                break;
            }
            mc.recording = 0;
        }
        drive(names[how], INJECT_ALLOC, model_scenario, &mc);
    }
    free(mc.logits);
    free(mc.ref_logits);
    free(block);
    free(file);
}

/* ---- 2. Images ------------------------------------------------------------------------------ */

typedef struct image_case {
    chunk_reader reader;
    int inject;
    gemini_vision_image ref;        /* plain load of the same bytes */
} image_case;

static int image_is_zeroed(const gemini_vision_image *image)
{
    return image->width == 0 && image->height == 0 && image->channels == 0 &&
           image->format == 0 && image->orientation == 0 && image->pixels == NULL;
}

static int image_scenario(void *arg, char *why, size_t why_size)
{
    image_case *ic = (image_case *)arg;
    gemini_vision_image image;
    gemini_result r;
    int outcome = RUN_OK;

    memset(&image, 0x5A, sizeof image);   /* garbage the loader must clear on failure */
    reader_rewind(&ic->reader);
    r = gemini_vision_load_callbacks(vision_read, &ic->reader, NULL, &image);
    if (r != GEMINI_OK) {
        outcome = check_failure(r, ic->inject == INJECT_READ ? GEMINI_ERR_IO
                                                             : GEMINI_ERR_OUT_OF_MEMORY,
                                "gemini_vision_load_callbacks", why, why_size);
        if (!image_is_zeroed(&image)) {
            snprintf(why, why_size, "gemini_vision_load_callbacks failed (%s) without zeroing "
                     "the image", gemini_result_string(r));
            outcome = RUN_BAD;
        }
        return outcome;
    }
    if (image.width != ic->ref.width || image.height != ic->ref.height ||
        image.channels != ic->ref.channels || image.format != ic->ref.format ||
        image.orientation != ic->ref.orientation ||
        memcmp(image.pixels, ic->ref.pixels, (size_t)image.width * image.height * 3) != 0) {
        snprintf(why, why_size, "decoded %dx%d, but not the pixels of a plain load",
                 (int)image.width, (int)image.height);
        outcome = RUN_BAD;
    }
    gemini_vision_image_free(&image);
    return outcome;
}

/* Compares a plain load with the committed Pillow pixels (lossless formats only). */
static int matches_reference_rgb(const gemini_vision_image *image, const char *rgb_name)
{
    char path[512];
    size_t size = 0;
    unsigned char *rgb;
    int ok;
    snprintf(path, sizeof path, "tests/vision/%s", rgb_name);
    rgb = read_whole_file(path, &size);
    if (rgb == NULL) return 0;
    ok = size == (size_t)image->width * image->height * 3 &&
         memcmp(rgb, image->pixels, size) == 0;
    free(rgb);
    return ok;
}

/* A binary PPM bigger than the loader's first 64 KiB read buffer, so that the buffer has to
   grow (a realloc that can fail). Pixels follow a fixed pattern. */
static unsigned char *make_big_ppm(size_t *size, int width, int height)
{
    char header[64];
    int header_len = snprintf(header, sizeof header, "P6\n%d %d\n255\n", width, height);
    size_t n = (size_t)header_len + (size_t)width * height * 3, i;
    unsigned char *ppm = (unsigned char *)malloc(n);
    if (ppm == NULL) return NULL;
    memcpy(ppm, header, (size_t)header_len);
    for (i = (size_t)header_len; i < n; i++) ppm[i] = (unsigned char)((i * 37u) ^ (i >> 7));
    *size = n;
    return ppm;
}

static void test_image(const char *file, const char *rgb_name)
{
    char path[512], name[300], why[1200];
    image_case ic;
    unsigned char *data;
    size_t size = 0;
    gemini_result r;
    int generated = file == NULL;

    if (generated) data = make_big_ppm(&size, 160, 150);
    else {
        snprintf(path, sizeof path, "tests/vision/%s", file);
        data = read_whole_file(path, &size);
    }
    snprintf(name, sizeof name, "%s", generated ? "generated 160x150 PPM (70 KB)" : file);
    if (data == NULL) {
        snprintf(why, sizeof why, "cannot read %s", generated ? "(no memory)" : path);
        report(0, name, why);
        return;
    }
    memset(&ic, 0, sizeof ic);
    r = gemini_vision_load_memory(data, size, NULL, &ic.ref);
    if (r != GEMINI_OK) {
        snprintf(why, sizeof why, "plain load failed: %s", gemini_last_error());
        report(0, name, why);
        free(data);
        return;
    }
    if (rgb_name != NULL && !matches_reference_rgb(&ic.ref, rgb_name)) {
        snprintf(why, sizeof why, "plain load differs from %s", rgb_name);
        report(0, name, why);
    }
    if (generated) {
        /* P6 with maxval 255 is stored as is. */
        size_t header = size - (size_t)160 * 150 * 3;
        if (memcmp(ic.ref.pixels, data + header, (size_t)160 * 150 * 3) != 0)
            report(0, name, "plain load differs from the generated pixels");
    }
    ic.reader.data = data;
    ic.reader.size = size;
    /* Small reads make even a 2 KB file take a dozen calls; the big one uses larger ones. */
    ic.reader.chunk = generated ? 4096 : 211;

    ic.inject = INJECT_READ;
    snprintf(name, sizeof name, "vision %s, read failures",
             generated ? "generated 160x150 PPM (70 KB)" : file);
    drive(name, INJECT_READ, image_scenario, &ic);
    ic.inject = INJECT_ALLOC;
    snprintf(name, sizeof name, "vision %s, allocation failures",
             generated ? "generated 160x150 PPM (70 KB)" : file);
    drive(name, INJECT_ALLOC, image_scenario, &ic);

    gemini_vision_image_free(&ic.ref);
    free(data);
}

/* Y4M video: open (callbacks or path), then every frame; on failure *out must be NULL and a
   failed frame must leave its image zeroed. */
typedef struct video_case {
    chunk_reader reader;
    int inject;
    const char *path;               /* NULL: the callback form */
    uint8_t *ref;                   /* every frame of a plain memory open, one after another */
    int64_t frames;
    size_t frame_size;
} video_case;

static int video_scenario(void *arg, char *why, size_t why_size)
{
    video_case *vc = (video_case *)arg;
    gemini_vision_video *video = (gemini_vision_video *)vc;   /* garbage to be cleared */
    gemini_result r;
    int64_t f;
    int outcome = RUN_OK;
    const char *call = vc->path ? "gemini_vision_video_open" : "gemini_vision_video_open_callbacks";
    gemini_result want = vc->inject == INJECT_READ ? GEMINI_ERR_IO : GEMINI_ERR_OUT_OF_MEMORY;

    reader_rewind(&vc->reader);
    r = vc->path ? gemini_vision_video_open(vc->path, NULL, &video)
                 : gemini_vision_video_open_callbacks(vision_read, &vc->reader, NULL, &video);
    if (r != GEMINI_OK) {
        outcome = check_failure(r, want, call, why, why_size);
        if (video != NULL) {
            snprintf(why, why_size, "%s failed without setting *out to NULL", call);
            outcome = RUN_BAD;
        }
        return outcome;
    }
    if (gemini_vision_video_get_info(video)->frame_count != vc->frames) {
        snprintf(why, why_size, "%s found a different frame count", call);
        gemini_vision_video_close(video);
        return RUN_BAD;
    }
    for (f = 0; f < vc->frames && outcome == RUN_OK; f++) {
        gemini_vision_image image;
        r = gemini_vision_video_frame(video, f, &image);
        if (r != GEMINI_OK) {
            outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_vision_video_frame",
                                    why, why_size);
            if (!image_is_zeroed(&image)) {
                snprintf(why, why_size, "gemini_vision_video_frame failed without zeroing "
                         "the image");
                outcome = RUN_BAD;
            }
        } else if (memcmp(image.pixels, vc->ref + (size_t)f * vc->frame_size,
                          vc->frame_size) != 0) {
            snprintf(why, why_size, "frame %lld differs from a plain memory open", (long long)f);
            outcome = RUN_BAD;
        }
        gemini_vision_image_free(&image);
    }
    gemini_vision_video_close(video);
    return outcome;
}

static void test_video(const char *file)
{
    char path[512], name[300], why[1200];
    video_case vc;
    gemini_vision_video *video;
    unsigned char *data;
    size_t size = 0;
    int64_t f;

    snprintf(path, sizeof path, "tests/vision/y4m/%s", file);
    data = read_whole_file(path, &size);
    memset(&vc, 0, sizeof vc);
    if (data == NULL || gemini_vision_video_open_memory(data, size, NULL, &video) != GEMINI_OK) {
        snprintf(why, sizeof why, "cannot open %s: %s", path, gemini_last_error());
        report(0, file, why);
        free(data);
        return;
    }
    vc.frames = gemini_vision_video_get_info(video)->frame_count;
    vc.frame_size = (size_t)gemini_vision_video_get_info(video)->width *
                    (size_t)gemini_vision_video_get_info(video)->height * 3;
    vc.ref = (uint8_t *)malloc(vc.frame_size * (size_t)vc.frames);
    for (f = 0; f < vc.frames; f++) {
        gemini_vision_image image;
        if (gemini_vision_video_frame(video, f, &image) != GEMINI_OK) {
            report(0, file, gemini_last_error());
            break;
        }
        memcpy(vc.ref + (size_t)f * vc.frame_size, image.pixels, vc.frame_size);
        gemini_vision_image_free(&image);
    }
    gemini_vision_video_close(video);
    vc.reader.data = data;
    vc.reader.size = size;
    vc.reader.chunk = 211;

    vc.inject = INJECT_READ;
    snprintf(name, sizeof name, "y4m video %s (callbacks), read failures", file);
    drive(name, INJECT_READ, video_scenario, &vc);
    vc.inject = INJECT_ALLOC;
    snprintf(name, sizeof name, "y4m video %s (callbacks), allocation failures", file);
    drive(name, INJECT_ALLOC, video_scenario, &vc);
    vc.path = path;
    snprintf(name, sizeof name, "y4m video %s (path), allocation failures", file);
    drive(name, INJECT_ALLOC, video_scenario, &vc);

    free(vc.ref);
    free(data);
}

/* Resize and preprocess: on failure the output must be untouched. */
typedef struct preprocess_case {
    const gemini_vision_image *image;
    uint8_t *resized, *ref_resized;
    float *chw, *ref_chw;
    int recording;
} preprocess_case;

#define PRE_W 64
#define PRE_H 48
#define PRE_SIDE 40

static int preprocess_scenario(void *arg, char *why, size_t why_size)
{
    preprocess_case *pc = (preprocess_case *)arg;
    gemini_vision_preprocess_params params = gemini_vision_preprocess_default_params();
    size_t resized_bytes = (size_t)PRE_W * PRE_H * 3, i;
    size_t chw_floats = (size_t)3 * PRE_SIDE * PRE_SIDE;
    gemini_result r;

    memset(pc->resized, 0xA5, resized_bytes);
    r = gemini_vision_resize(pc->image->pixels, pc->image->width, pc->image->height, 3,
                             pc->resized, PRE_W, PRE_H, GEMINI_VISION_FILTER_BICUBIC);
    if (r != GEMINI_OK) {
        int outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_vision_resize", why,
                                    why_size);
        for (i = 0; i < resized_bytes; i++)
            if (pc->resized[i] != 0xA5) {
                snprintf(why, why_size, "gemini_vision_resize failed but wrote its output");
                return RUN_BAD;
            }
        return outcome;
    }
    params.width = PRE_SIDE;
    params.height = PRE_SIDE;
    params.filter = GEMINI_VISION_FILTER_BILINEAR;
    for (i = 0; i < chw_floats; i++) pc->chw[i] = 1234.5f;
    r = gemini_vision_preprocess(pc->image->pixels, pc->image->width, pc->image->height,
                                 &params, pc->chw);
    if (r != GEMINI_OK) {
        int outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_vision_preprocess", why,
                                    why_size);
        for (i = 0; i < chw_floats; i++)
            if (pc->chw[i] != 1234.5f) {
                snprintf(why, why_size, "gemini_vision_preprocess failed but wrote its output");
                return RUN_BAD;
            }
        return outcome;
    }
    if (pc->recording) {
        memcpy(pc->ref_resized, pc->resized, resized_bytes);
        memcpy(pc->ref_chw, pc->chw, chw_floats * sizeof(float));
    } else if (memcmp(pc->ref_resized, pc->resized, resized_bytes) != 0 ||
               memcmp(pc->ref_chw, pc->chw, chw_floats * sizeof(float)) != 0) {
        snprintf(why, why_size, "resize or preprocess succeeded with other values");
        return RUN_BAD;
    }
    return RUN_OK;
}

static void test_preprocess(void)
{
    const char *name = "vision resize (bicubic) + preprocess (bilinear), allocation failures";
    gemini_vision_image image;
    preprocess_case pc;
    char why[600];

    if (gemini_vision_load("tests/vision/rgb8.png", NULL, &image) != GEMINI_OK) {
        report(0, name, gemini_last_error());
        return;
    }
    memset(&pc, 0, sizeof pc);
    pc.image = &image;
    pc.resized = (uint8_t *)malloc((size_t)PRE_W * PRE_H * 3);
    pc.ref_resized = (uint8_t *)malloc((size_t)PRE_W * PRE_H * 3);
    pc.chw = (float *)malloc(sizeof(float) * 3 * PRE_SIDE * PRE_SIDE);
    pc.ref_chw = (float *)malloc(sizeof(float) * 3 * PRE_SIDE * PRE_SIDE);
    if (pc.resized && pc.ref_resized && pc.chw && pc.ref_chw) {
        pc.recording = 1;
        why[0] = '\0';
        if (preprocess_scenario(&pc, why, sizeof why) != RUN_OK) report(0, name, why);
        else {
            pc.recording = 0;
            drive(name, INJECT_ALLOC, preprocess_scenario, &pc);
        }
    } else {
        report(0, name, "no memory for the test's buffers");
    }
    free(pc.resized);
    free(pc.ref_resized);
    free(pc.chw);
    free(pc.ref_chw);
    gemini_vision_image_free(&image);
}

/* ---- 3. Audio ------------------------------------------------------------------------------- */

typedef struct audio_case {
    chunk_reader reader;
    int inject;
    int use_seek;
    gemini_audio ref;
} audio_case;

static int audio_is_zeroed(const gemini_audio *audio)
{
    return audio->samples == NULL && audio->n_samples == 0 && audio->sample_rate == 0 &&
           audio->channels == 0 && audio->bits_per_sample == 0 && audio->format == 0 &&
           audio->truncated == 0;
}

static int audio_scenario(void *arg, char *why, size_t why_size)
{
    audio_case *ac = (audio_case *)arg;
    gemini_audio audio;
    gemini_result r;
    int outcome = RUN_OK;

    memset(&audio, 0x5A, sizeof audio);
    reader_rewind(&ac->reader);
    r = gemini_audio_load_wav_callbacks(audio_read, ac->use_seek ? audio_seek : NULL,
                                        &ac->reader, &audio);
    if (r != GEMINI_OK) {
        /* A failed read is the end of the stream for this API: a cut header is a format
           error. */
        outcome = check_failure(r, ac->inject == INJECT_READ ? GEMINI_ERR_FORMAT
                                                             : GEMINI_ERR_OUT_OF_MEMORY,
                                "gemini_audio_load_wav_callbacks", why, why_size);
        if (!audio_is_zeroed(&audio)) {
            snprintf(why, why_size, "gemini_audio_load_wav_callbacks failed (%s) without "
                     "zeroing the audio", gemini_result_string(r));
            outcome = RUN_BAD;
        }
        return outcome;
    }
    /* Success: the clean decode, or (stream cut inside the data) a marked prefix of it. */
    if (audio.sample_rate != ac->ref.sample_rate || audio.channels != ac->ref.channels ||
        audio.bits_per_sample != ac->ref.bits_per_sample || audio.format != ac->ref.format ||
        audio.n_samples > ac->ref.n_samples ||
        (audio.n_samples > 0 &&
         memcmp(audio.samples, ac->ref.samples, audio.n_samples * sizeof(float)) != 0)) {
        snprintf(why, why_size, "decoded %lu samples that are not a prefix of the clean decode",
                 (unsigned long)audio.n_samples);
        outcome = RUN_BAD;
    } else if (audio.n_samples < ac->ref.n_samples) {
        if (!audio.truncated) {
            snprintf(why, why_size, "decoded %lu of %lu samples without setting truncated",
                     (unsigned long)audio.n_samples, (unsigned long)ac->ref.n_samples);
            outcome = RUN_BAD;
        } else if (ac->inject != INJECT_READ) {
            snprintf(why, why_size, "an allocation failure gave a truncated decode");
            outcome = RUN_BAD;
        } else {
            run_notes++;
        }
    }
    gemini_audio_free(&audio);
    return outcome;
}

static void test_wav(const char *file)
{
    char path[512], name[300], why[1200];
    audio_case ac;
    unsigned char *data;
    size_t size = 0;
    int use_seek;

    snprintf(path, sizeof path, "tests/audio/%s", file);
    data = read_whole_file(path, &size);
    if (data == NULL) {
        snprintf(why, sizeof why, "cannot read %s", path);
        report(0, file, why);
        return;
    }
    memset(&ac, 0, sizeof ac);
    if (gemini_audio_load_wav_memory(data, size, &ac.ref) != GEMINI_OK || ac.ref.truncated) {
        snprintf(why, sizeof why, "plain load failed: %s", gemini_last_error());
        report(0, file, why);
        free(data);
        return;
    }
    ac.reader.data = data;
    ac.reader.size = size;
    ac.reader.chunk = 3001;   /* odd, so that reads end inside frames */

    for (use_seek = 1; use_seek >= 0; use_seek--) {
        ac.use_seek = use_seek;
        ac.inject = INJECT_READ;
        run_note_label = "of those decoded a prefix marked truncated, as the API allows";
        snprintf(name, sizeof name, "audio %s (%s), read/seek failures", file,
                 use_seek ? "with seek" : "no seek");
        drive(name, INJECT_READ, audio_scenario, &ac);
        run_note_label = NULL;
        ac.inject = INJECT_ALLOC;
        snprintf(name, sizeof name, "audio %s (%s), allocation failures", file,
                 use_seek ? "with seek" : "no seek");
        drive(name, INJECT_ALLOC, audio_scenario, &ac);
    }
    gemini_audio_free(&ac.ref);
    free(data);
}

/* WAV load, resample to 16 kHz, mel front end and a 30 s log-mel. */
typedef struct dsp_case {
    const unsigned char *wav;
    size_t wav_size;
    float *mel_out, *ref_mel;
    int recording;
} dsp_case;

#define DSP_MELS 80

static int dsp_scenario(void *arg, char *why, size_t why_size)
{
    dsp_case *dc = (dsp_case *)arg;
    size_t mel_floats = (size_t)DSP_MELS * GEMINI_AUDIO_CHUNK_FRAMES;
    gemini_audio audio, before;
    gemini_audio_mel *mel = NOT_NULL(gemini_audio_mel *);
    gemini_result r;
    int outcome = RUN_OK;

    r = gemini_audio_load_wav_memory(dc->wav, dc->wav_size, &audio);
    if (r != GEMINI_OK)
        return check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_audio_load_wav_memory", why,
                             why_size);
    before = audio;
    r = gemini_audio_resample_to(&audio, GEMINI_AUDIO_SAMPLE_RATE);
    if (r != GEMINI_OK) {
        outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_audio_resample_to", why,
                                why_size);
        if (audio.samples != before.samples || audio.n_samples != before.n_samples ||
            audio.sample_rate != before.sample_rate) {
            snprintf(why, why_size, "gemini_audio_resample_to failed but changed the audio");
            outcome = RUN_BAD;
        }
        gemini_audio_free(&audio);
        return outcome;
    }
    r = gemini_audio_mel_create(DSP_MELS, &mel);
    if (r != GEMINI_OK) {
        outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_audio_mel_create", why,
                                why_size);
        if (mel != NULL) {
            snprintf(why, why_size, "gemini_audio_mel_create failed but left *out non-NULL");
            outcome = RUN_BAD;
        }
        gemini_audio_free(&audio);
        return outcome;
    }
    r = gemini_audio_log_mel_30s(mel, audio.samples, audio.n_samples, dc->mel_out);
    if (r != GEMINI_OK) {
        outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_audio_log_mel_30s", why,
                                why_size);
    } else if (dc->recording) {
        memcpy(dc->ref_mel, dc->mel_out, mel_floats * sizeof(float));
    } else if (memcmp(dc->ref_mel, dc->mel_out, mel_floats * sizeof(float)) != 0) {
        snprintf(why, why_size, "the log-mel differs from the clean run");
        outcome = RUN_BAD;
    }
    gemini_audio_mel_free(mel);
    gemini_audio_free(&audio);
    return outcome;
}

static void test_dsp(void)
{
    const char *name = "audio 8 kHz WAV load + resample_to 16 kHz + mel_create + log_mel_30s";
    dsp_case dc;
    size_t size = 0;
    char why[600];

    memset(&dc, 0, sizeof dc);
    dc.wav = read_whole_file("tests/audio/speech_8k_mono_u8.wav", &size);
    dc.wav_size = size;
    dc.mel_out = (float *)malloc(sizeof(float) * DSP_MELS * GEMINI_AUDIO_CHUNK_FRAMES);
    dc.ref_mel = (float *)malloc(sizeof(float) * DSP_MELS * GEMINI_AUDIO_CHUNK_FRAMES);
    if (dc.wav == NULL || dc.mel_out == NULL || dc.ref_mel == NULL) {
        report(0, name, "cannot read tests/audio/speech_8k_mono_u8.wav");
    } else {
        dc.recording = 1;
        why[0] = '\0';
        if (dsp_scenario(&dc, why, sizeof why) != RUN_OK) report(0, name, why);
        else {
            dc.recording = 0;
            drive(name, INJECT_ALLOC, dsp_scenario, &dc);
        }
    }
    free((void *)dc.wav);
    free(dc.mel_out);
    free(dc.ref_mel);
}

/* ---- 4. Tokenizers -------------------------------------------------------------------------- */

/* A small SentencePiece vocabulary: specials, user-defined markers, all 256 byte pieces (for
   byte fallback) and words whose scores make BPE merge "hello" and "world" step by step. */
#define SPM_SPECIALS 6
#define SPM_BYTES 256

typedef struct spm_word {
    const char *text;
    float score;
} spm_word;

static const spm_word spm_words[] = {
    {"he", -1}, {"ll", -2}, {"llo", -3}, {"hello", -4}, {"\xE2\x96\x81hello", -5},
    {"or", -6}, {"wor", -7}, {"ld", -8}, {"world", -9}, {"\xE2\x96\x81world", -10},
    {"\xE2\x96\x81t", -11}, {"th", -12}, {"the", -13}, {"\xE2\x96\x81the", -14},
    {"\xE2\x96\x81" "a", -15}, {"in", -16}, {"ing", -17}, {"er", -18}, {"an", -19},
    {"\xE2\x96\x81w", -20}, {"\xE2\x96\x81h", -21}, {"\xE2\x96\x81", -30},
    {"a", -31}, {"b", -32}, {"c", -33}, {"d", -34}, {"e", -35}, {"f", -36}, {"g", -37},
    {"h", -38}, {"i", -39}, {"j", -40}, {"k", -41}, {"l", -42}, {"m", -43}, {"n", -44},
    {"o", -45}, {"p", -46}, {"q", -47}, {"r", -48}, {"s", -49}, {"t", -50}, {"u", -51},
    {"v", -52}, {"w", -53}, {"x", -54}, {"y", -55}, {"z", -56}, {".", -57}, {",", -58},
    {"!", -59}};

#define SPM_WORDS ((int)(sizeof spm_words / sizeof spm_words[0]))
#define SPM_PIECES (SPM_SPECIALS + SPM_BYTES + SPM_WORDS)

typedef struct spm_vocab {
    const char *pieces[SPM_PIECES];
    uint32_t lengths[SPM_PIECES];
    float scores[SPM_PIECES];
    uint8_t types[SPM_PIECES];
    char byte_names[SPM_BYTES][7];
} spm_vocab;

static void spm_vocab_init(spm_vocab *v)
{
    static const char *const specials[SPM_SPECIALS] = {
        "<unk>", "<s>", "</s>", "<pad>", "<start_of_turn>", "<end_of_turn>"};
    static const uint8_t special_types[SPM_SPECIALS] = {
        GEMINI_TOK_UNKNOWN, GEMINI_TOK_CONTROL, GEMINI_TOK_CONTROL, GEMINI_TOK_CONTROL,
        GEMINI_TOK_USER_DEFINED, GEMINI_TOK_USER_DEFINED};
    int i;
    for (i = 0; i < SPM_SPECIALS; i++) {
        v->pieces[i] = specials[i];
        v->types[i] = special_types[i];
        v->scores[i] = 0.0f;
    }
    for (i = 0; i < SPM_BYTES; i++) {
        snprintf(v->byte_names[i], sizeof v->byte_names[i], "<0x%02X>", i);
        v->pieces[SPM_SPECIALS + i] = v->byte_names[i];
        v->types[SPM_SPECIALS + i] = GEMINI_TOK_BYTE;
        v->scores[SPM_SPECIALS + i] = 0.0f;
    }
    for (i = 0; i < SPM_WORDS; i++) {
        v->pieces[SPM_SPECIALS + SPM_BYTES + i] = spm_words[i].text;
        v->types[SPM_SPECIALS + SPM_BYTES + i] = GEMINI_TOK_NORMAL;
        v->scores[SPM_SPECIALS + SPM_BYTES + i] = spm_words[i].score;
    }
    for (i = 0; i < SPM_PIECES; i++) v->lengths[i] = (uint32_t)strlen(v->pieces[i]);
}

static gemini_tok_spm_desc spm_desc(const spm_vocab *v, int32_t model_type)
{
    gemini_tok_spm_desc d;
    memset(&d, 0, sizeof d);
    d.model_type = model_type;
    d.n_pieces = SPM_PIECES;
    d.pieces = v->pieces;
    d.piece_lengths = v->lengths;
    d.scores = v->scores;
    d.types = v->types;
    d.unk_id = -1;
    d.bos_id = 1;
    d.eos_id = 2;
    d.pad_id = 3;
    d.add_dummy_prefix = 1;
    d.remove_extra_whitespaces = 1;
    d.escape_whitespaces = 1;
    d.byte_fallback = 1;
    return d;
}

/* A growable byte buffer for the protobuf writer (plain malloc: test data). */
typedef struct byte_buf {
    unsigned char *data;
    size_t len, cap;
    int failed;
} byte_buf;

static void buf_put(byte_buf *b, const void *bytes, size_t n)
{
    if (b->failed) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        unsigned char *bigger;
        while (cap < b->len + n) cap *= 2;
        bigger = (unsigned char *)realloc(b->data, cap);
        if (bigger == NULL) {
            b->failed = 1;
            return;
        }
        b->data = bigger;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void pb_varint(byte_buf *b, uint64_t v)
{
    unsigned char byte;
    do {
        byte = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v) byte |= 0x80;
        buf_put(b, &byte, 1);
    } while (v);
}

static void pb_key(byte_buf *b, uint32_t field, uint32_t wire)
{
    pb_varint(b, ((uint64_t)field << 3) | wire);
}

static void pb_bytes(byte_buf *b, uint32_t field, const void *bytes, size_t n)
{
    pb_key(b, field, 2);
    pb_varint(b, n);
    buf_put(b, bytes, n);
}

static void pb_uint(byte_buf *b, uint32_t field, uint64_t v)
{
    pb_key(b, field, 0);
    pb_varint(b, v);
}

static void pb_float(byte_buf *b, uint32_t field, float f)
{
    uint32_t bits;
    unsigned char le[4];
    memcpy(&bits, &f, 4);
    le[0] = (unsigned char)bits;
    le[1] = (unsigned char)(bits >> 8);
    le[2] = (unsigned char)(bits >> 16);
    le[3] = (unsigned char)(bits >> 24);
    pb_key(b, field, 5);
    buf_put(b, le, 4);
}

/* Writes the vocabulary as a SentencePiece ModelProto: repeated pieces (1: piece, 2: score,
   3: type), trainer_spec (3: model_type, 35: byte_fallback), normalizer_spec (3: dummy
   prefix, 4: remove extra whitespace, 5: escape whitespace). */
static int write_spm_model(const spm_vocab *v, int32_t model_type, byte_buf *out)
{
    byte_buf sub;
    int i;
    memset(out, 0, sizeof *out);
    for (i = 0; i < SPM_PIECES; i++) {
        memset(&sub, 0, sizeof sub);
        pb_bytes(&sub, 1, v->pieces[i], v->lengths[i]);
        pb_float(&sub, 2, v->scores[i]);
        pb_uint(&sub, 3, v->types[i]);
        if (!sub.failed) pb_bytes(out, 1, sub.data, sub.len);
        out->failed |= sub.failed;
        free(sub.data);
    }
    memset(&sub, 0, sizeof sub);
    pb_uint(&sub, 3, (uint64_t)model_type);
    pb_uint(&sub, 35, 1);
    if (!sub.failed) pb_bytes(out, 2, sub.data, sub.len);
    out->failed |= sub.failed;
    free(sub.data);
    memset(&sub, 0, sizeof sub);
    pb_uint(&sub, 3, 1);
    pb_uint(&sub, 4, 1);
    pb_uint(&sub, 5, 1);
    if (!sub.failed) pb_bytes(out, 3, sub.data, sub.len);
    out->failed |= sub.failed;
    free(sub.data);
    return !out->failed;
}

/* A byte-level BPE vocabulary: the 256 bytes, pieces made by the merges below, one special. */
typedef struct bpe_vocab {
    char storage[512][24];
    const char *pieces[512];
    uint32_t lengths[512];
    uint8_t types[512];
    int32_t merges[64][2];
    int32_t n_pieces, n_merges, eos_id;
} bpe_vocab;

static int32_t bpe_find(const bpe_vocab *v, const char *text, size_t len)
{
    int32_t i;
    for (i = 0; i < v->n_pieces; i++)
        if (v->lengths[i] == len && memcmp(v->pieces[i], text, len) == 0) return i;
    return -1;
}

static int32_t bpe_add(bpe_vocab *v, const char *text, size_t len, uint8_t type)
{
    int32_t id = v->n_pieces++;
    memcpy(v->storage[id], text, len);
    v->pieces[id] = v->storage[id];
    v->lengths[id] = (uint32_t)len;
    v->types[id] = type;
    return id;
}

static void bpe_vocab_init(bpe_vocab *v)
{
    static const char *const merges[][2] = {
        {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {"o", "r"},
        {" w", "or"}, {" wor", "l"}, {" worl", "d"}, {" ", "t"}, {"t", "h"}, {" t", "he"},
        {"i", "n"}, {"in", "g"}, {" ", "h"}, {" h", "ello"}, {"e", "llo"}, {"ll", "o"}};
    int i;
    memset(v, 0, sizeof *v);
    for (i = 0; i < 256; i++) {
        char byte = (char)i;
        bpe_add(v, &byte, 1, GEMINI_TOK_NORMAL);
    }
    for (i = 0; i < (int)(sizeof merges / sizeof merges[0]); i++) {
        char joined[24];
        size_t a = strlen(merges[i][0]), b = strlen(merges[i][1]);
        int32_t left = bpe_find(v, merges[i][0], a), right = bpe_find(v, merges[i][1], b);
        if (left < 0 || right < 0) continue;   /* a merge of pieces not made yet: skip it */
        memcpy(joined, merges[i][0], a);
        memcpy(joined + a, merges[i][1], b);
        if (bpe_find(v, joined, a + b) < 0) bpe_add(v, joined, a + b, GEMINI_TOK_NORMAL);
        v->merges[v->n_merges][0] = left;
        v->merges[v->n_merges][1] = right;
        v->n_merges++;
    }
    v->eos_id = bpe_add(v, "<|endoftext|>", 13, GEMINI_TOK_CONTROL);
}

static gemini_tok_bpe_desc bpe_desc(const bpe_vocab *v)
{
    gemini_tok_bpe_desc d;
    memset(&d, 0, sizeof d);
    d.n_pieces = v->n_pieces;
    d.pieces = v->pieces;
    d.piece_lengths = v->lengths;
    d.types = v->types;
    d.n_merges = v->n_merges;
    d.merges = &v->merges[0][0];
    d.bos_id = -1;
    d.eos_id = v->eos_id;
    d.pad_id = -1;
    return d;
}

/* The text every tokenizer encodes: words the vocabularies know, markers, characters only byte
   fallback covers, extra spaces; repeated so that the work buffers have to grow. */
static char *make_tok_text(size_t *len)
{
    static const char phrase[] =
        "hello world  the <start_of_turn>hello</s> h\xC3\xA9llo w\xC3\xB6rld \xF0\x9F\x98\x80 "
        "thing zzz, the world!<end_of_turn> \xE4\xB8\xAD\xE6\x96\x87 ";
    size_t n = sizeof phrase - 1, i, copies = 40;
    char *text = (char *)malloc(n * copies + 1);
    if (text == NULL) return NULL;
    for (i = 0; i < copies; i++) memcpy(text + i * n, phrase, n);
    text[n * copies] = '\0';
    *len = n * copies;
    return text;
}

#define TOK_FLAGS (GEMINI_TOK_ADD_BOS | GEMINI_TOK_ADD_EOS | GEMINI_TOK_PARSE_SPECIAL)
#define TOK_MAX_IDS 8192

enum { TOK_CREATE_SPM, TOK_LOAD_MODEL, TOK_CREATE_BPE };

/* Making a tokenizer, then one encode with it; the ids must equal the clean run's. */
typedef struct tok_create_case {
    int how;
    const gemini_tok_spm_desc *spm;
    const gemini_tok_bpe_desc *bpe;
    const unsigned char *model_bytes;
    size_t model_size;
    const char *text;
    size_t text_len;
    int32_t *ids, *ref_ids;
    int32_t n_ref;
    int recording;
} tok_create_case;

static int tok_create_scenario(void *arg, char *why, size_t why_size)
{
    tok_create_case *tc = (tok_create_case *)arg;
    gemini_tok *tok = NOT_NULL(gemini_tok *);
    gemini_result r;
    int32_t n = 0;
    int outcome = RUN_OK;
    const char *call = tc->how == TOK_CREATE_SPM   ? "gemini_tok_create_spm"
                       : tc->how == TOK_LOAD_MODEL ? "gemini_tok_load_memory"
                                                   : "gemini_tok_create_bpe";

    if (tc->how == TOK_CREATE_SPM) r = gemini_tok_create_spm(tc->spm, &tok);
    else if (tc->how == TOK_LOAD_MODEL)
        r = gemini_tok_load_memory(tc->model_bytes, tc->model_size, &tok);
    else r = gemini_tok_create_bpe(tc->bpe, &tok);
    if (r != GEMINI_OK) {
        outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, call, why, why_size);
        if (tok != NULL) {
            snprintf(why, why_size, "%s failed but left *out non-NULL", call);
            outcome = RUN_BAD;
        }
        return outcome;
    }
    /* Allocation failures are not injected into this encode: it only checks the result. */
    {
        long saved;
        pthread_mutex_lock(&fault_lock);
        saved = fault_fail_at;
        fault_fail_at = 0;
        pthread_mutex_unlock(&fault_lock);
        r = gemini_tok_encode(tok, tc->text, tc->text_len, TOK_FLAGS, tc->ids, TOK_MAX_IDS, &n);
        pthread_mutex_lock(&fault_lock);
        fault_fail_at = saved;
        pthread_mutex_unlock(&fault_lock);
    }
    if (r != GEMINI_OK) {
        snprintf(why, why_size, "%s succeeded but encoding then failed: %s", call,
                 gemini_last_error());
        outcome = RUN_BAD;
    } else if (tc->recording) {
        memcpy(tc->ref_ids, tc->ids, sizeof(int32_t) * (size_t)n);
        tc->n_ref = n;
    } else if (n != tc->n_ref || memcmp(tc->ids, tc->ref_ids, sizeof(int32_t) * (size_t)n)) {
        snprintf(why, why_size, "%s succeeded, but the tokenizer encodes differently", call);
        outcome = RUN_BAD;
    }
    gemini_tok_free(tok);
    return outcome;
}

/* Encode, encode_pieces, decode and a streaming decode with an existing tokenizer. */
typedef struct tok_use_case {
    const gemini_tok *tok;
    const char *text;
    size_t text_len;
    int32_t *ids, *ref_ids;
    int32_t n_ref;
    char *decoded, *ref_decoded, *streamed;
    size_t decoded_cap, n_decoded;
    size_t pieces_seen;
    int recording;
} tok_use_case;

static void count_piece(void *user, int32_t id, const char *piece, size_t len)
{
    (void)id;
    (void)piece;
    (void)len;
    ((tok_use_case *)user)->pieces_seen++;
}

static int tok_use_scenario(void *arg, char *why, size_t why_size)
{
    tok_use_case *uc = (tok_use_case *)arg;
    gemini_tok_stream *stream = NOT_NULL(gemini_tok_stream *);
    gemini_result r;
    int32_t n = 0, i;
    size_t n_text = 0, streamed = 0;
    const char *piece_text;
    size_t piece_len;

    r = gemini_tok_encode(uc->tok, uc->text, uc->text_len, TOK_FLAGS, uc->ids, TOK_MAX_IDS, &n);
    if (r != GEMINI_OK)
        return check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_tok_encode", why, why_size);
    if (uc->recording) {
        memcpy(uc->ref_ids, uc->ids, sizeof(int32_t) * (size_t)n);
        uc->n_ref = n;
    } else if (n != uc->n_ref || memcmp(uc->ids, uc->ref_ids, sizeof(int32_t) * (size_t)n)) {
        snprintf(why, why_size, "gemini_tok_encode succeeded with other ids");
        return RUN_BAD;
    }

    uc->pieces_seen = 0;
    r = gemini_tok_encode_pieces(uc->tok, uc->text, uc->text_len, TOK_FLAGS, count_piece, uc);
    if (r != GEMINI_OK)
        return check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_tok_encode_pieces", why,
                             why_size);
    if (uc->pieces_seen != (size_t)uc->n_ref) {
        snprintf(why, why_size, "gemini_tok_encode_pieces reported %lu pieces, want %ld",
                 (unsigned long)uc->pieces_seen, (long)uc->n_ref);
        return RUN_BAD;
    }

    r = gemini_tok_decode(uc->tok, uc->ref_ids, (size_t)uc->n_ref, uc->decoded, uc->decoded_cap,
                          &n_text);
    if (r != GEMINI_OK)
        return check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_tok_decode", why, why_size);
    if (uc->recording) {
        memcpy(uc->ref_decoded, uc->decoded, n_text + 1);
        uc->n_decoded = n_text;
    } else if (n_text != uc->n_decoded || memcmp(uc->decoded, uc->ref_decoded, n_text) != 0) {
        snprintf(why, why_size, "gemini_tok_decode succeeded with other text");
        return RUN_BAD;
    }

    r = gemini_tok_stream_create(uc->tok, &stream);
    if (r != GEMINI_OK) {
        int outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY, "gemini_tok_stream_create", why,
                                    why_size);
        if (stream != NULL) {
            snprintf(why, why_size, "gemini_tok_stream_create failed but left *out non-NULL");
            outcome = RUN_BAD;
        }
        return outcome;
    }
    for (i = 0; i <= uc->n_ref; i++) {
        if (i < uc->n_ref)
            r = gemini_tok_stream_push(stream, uc->ref_ids[i], &piece_text, &piece_len);
        else r = gemini_tok_stream_flush(stream, &piece_text, &piece_len);
        if (r != GEMINI_OK) {
            int outcome = check_failure(r, GEMINI_ERR_OUT_OF_MEMORY,
                                        i < uc->n_ref ? "gemini_tok_stream_push"
                                                      : "gemini_tok_stream_flush",
                                        why, why_size);
            gemini_tok_stream_free(stream);
            return outcome;
        }
        if (streamed + piece_len > uc->decoded_cap) {
            snprintf(why, why_size, "the stream returned more text than decode");
            gemini_tok_stream_free(stream);
            return RUN_BAD;
        }
        memcpy(uc->streamed + streamed, piece_text, piece_len);
        streamed += piece_len;
    }
    gemini_tok_stream_free(stream);
    if (streamed != uc->n_decoded || memcmp(uc->streamed, uc->ref_decoded, streamed) != 0) {
        snprintf(why, why_size, "the streamed text differs from gemini_tok_decode's");
        return RUN_BAD;
    }
    return RUN_OK;
}

static void test_tokenizers(void)
{
    static spm_vocab spm;
    static bpe_vocab bpe;
    gemini_tok_spm_desc spm_bpe_desc, spm_unigram_desc;
    gemini_tok_bpe_desc byte_desc;
    byte_buf model;
    tok_create_case tc;
    tok_use_case uc;
    size_t text_len = 0;
    char *text = make_tok_text(&text_len);
    int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * TOK_MAX_IDS);
    int32_t *ref_ids = (int32_t *)malloc(sizeof(int32_t) * TOK_MAX_IDS);
    size_t text_cap = 64 * 1024;
    char *decoded = (char *)malloc(text_cap), *ref_decoded = (char *)malloc(text_cap);
    char *streamed = (char *)malloc(text_cap);
    char why[600], name[200];
    int k;

    spm_vocab_init(&spm);
    bpe_vocab_init(&bpe);
    spm_bpe_desc = spm_desc(&spm, GEMINI_TOK_BPE);
    spm_unigram_desc = spm_desc(&spm, GEMINI_TOK_UNIGRAM);
    byte_desc = bpe_desc(&bpe);
    memset(&model, 0, sizeof model);
    if (!text || !ids || !ref_ids || !decoded || !ref_decoded || !streamed ||
        !write_spm_model(&spm, GEMINI_TOK_BPE, &model)) {
        report(0, "tokenizer", "no memory for the test's buffers");
        goto done;
    }

    /* Making tokenizers. */
    for (k = 0; k < 4; k++) {
        memset(&tc, 0, sizeof tc);
        tc.text = text;
        tc.text_len = text_len;
        tc.ids = ids;
        tc.ref_ids = ref_ids;
        tc.model_bytes = model.data;
        tc.model_size = model.len;
        tc.bpe = &byte_desc;
        tc.how = k == 2 ? TOK_LOAD_MODEL : k == 3 ? TOK_CREATE_BPE : TOK_CREATE_SPM;
        tc.spm = k == 1 ? &spm_unigram_desc : &spm_bpe_desc;
        snprintf(name, sizeof name, "%s",
                 k == 0   ? "tokenizer gemini_tok_create_spm (BPE, byte fallback)"
                 : k == 1 ? "tokenizer gemini_tok_create_spm (unigram, byte fallback)"
                 : k == 2 ? "tokenizer gemini_tok_load_memory (SentencePiece .model, BPE)"
                          : "tokenizer gemini_tok_create_bpe (byte-level)");
        tc.recording = 1;
        why[0] = '\0';
        if (tok_create_scenario(&tc, why, sizeof why) != RUN_OK) {
            char message[700];
            snprintf(message, sizeof message, "the clean run failed: %s", why);
            report(0, name, message);
            continue;
        }
        tc.recording = 0;
        drive(name, INJECT_ALLOC, tok_create_scenario, &tc);
    }

    /* Using tokenizers. */
    for (k = 0; k < 3; k++) {
        gemini_tok *tok = NULL;
        gemini_result r = k == 0   ? gemini_tok_create_spm(&spm_bpe_desc, &tok)
                          : k == 1 ? gemini_tok_create_spm(&spm_unigram_desc, &tok)
                                   : gemini_tok_create_bpe(&byte_desc, &tok);
        snprintf(name, sizeof name, "%s",
                 k == 0   ? "tokenizer encode + encode_pieces + decode + stream (SPM BPE)"
                 : k == 1 ? "tokenizer encode + encode_pieces + decode + stream (unigram)"
                          : "tokenizer encode + encode_pieces + decode + stream (byte-level)");
        if (r != GEMINI_OK) {
            report(0, name, gemini_last_error());
            continue;
        }
        memset(&uc, 0, sizeof uc);
        uc.tok = tok;
        uc.text = text;
        uc.text_len = text_len;
        uc.ids = ids;
        uc.ref_ids = ref_ids;
        uc.decoded = decoded;
        uc.ref_decoded = ref_decoded;
        uc.streamed = streamed;
        uc.decoded_cap = text_cap;
        uc.recording = 1;
        why[0] = '\0';
        if (tok_use_scenario(&uc, why, sizeof why) != RUN_OK) {
            char message[700];
            snprintf(message, sizeof message, "the clean run failed: %s", why);
            report(0, name, message);
        } else {
            uc.recording = 0;
            drive(name, INJECT_ALLOC, tok_use_scenario, &uc);
        }
        gemini_tok_free(tok);
    }

done:
    free(model.data);
    free(text);
    free(ids);
    free(ref_ids);
    free(decoded);
    free(ref_decoded);
    free(streamed);
}

/* ---- Main ----------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *model_path = argc > 1 ? argv[1] : "tests/out/parity/gemma3-q8_0.gemini";

    gemini__threads_past_cpus = 1; /* the pool's 2 threads even on a machine of 1 CPU */

    /* Line by line, so that nothing is lost when a case's child process crashes. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    test_model(model_path);

    test_image("rgb8.png", "rgb8_png.rgb");
    test_image("prog420.jpg", NULL);
    test_image("exif6.jpg", NULL);   /* EXIF orientation 6: the rotation allocates */
    test_image("pal8.bmp", "pal8_bmp.rgb");
    test_image("rgb.ppm", "rgb_ppm.rgb");
    test_image(NULL, NULL);          /* generated, bigger than the 64 KiB read buffer */
    test_image("y4m/c422.y4m", NULL);   /* a Y4M stream's first frame */
    test_video("c420jpeg.y4m");
    test_preprocess();

    test_wav("speech_8k_mono_u8.wav");
    test_wav("speech_16k_stereo_s24.wav");
    test_dsp();

    test_tokenizers();

    if (fault_live_blocks() != 0) {
        char message[200];
        snprintf(message, sizeof message, "%ld blocks (%lu bytes) still live at the end",
                 fault_live_blocks(), (unsigned long)fault_live_bytes());
        report(0, "final leak check", message);
    }
    if (tests_skipped > 0) printf("(%d skipped)\n", tests_skipped);
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed == 0 ? 0 : 1;
}
