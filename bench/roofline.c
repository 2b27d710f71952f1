/* roofline - this machine's two ceilings for the model benchmark (bench/bench_model.c):
   memory read bandwidth and fp32 FMA peak, both with all the threads the model uses.

   Read bandwidth: a buffer much larger than the last-level cache (at least 512 MiB and 16 times
   the L3) is filled once, so every page is real, then each thread sums its own contiguous
   1/T of it with the widest loads the CPU has (AVX-512, else AVX2, else 64-bit words), into
   four independent accumulators so that the adds never limit. The time is the wall clock
   between two barriers that all threads pass together; bytes / time, best of RUNS passes
   after one warm-up pass.

   FMA peak: each thread runs a loop of independent multiply-add chains held in registers
   (16 chains of 512-bit vectors for AVX-512, 12 of 256-bit for AVX2: more chains than FMA
   latency x FMA ports, so the ports never wait). Counting: one FMA on one fp32 lane is 2 flops,
   so one 512-bit FMA is 32 flops and one 256-bit FMA 16. Best of RUNS, after a warm-up.
   Where the CPU has AVX512_VNNI, the int8 dot-product peak (vpdpbusd, 64 multiply-adds = 128
   ops per 512-bit instruction) is measured the same way, for reference: the q8_0/q4_0
   kernels use it rather than fp32 FMA.

   Usage: roofline [-t THREADS] [--runs N] [--mib MIB] [--values FILE]
   --values writes "READ_BYTES_PER_S FMA_FLOPS_PER_S" to FILE for bench_model.

   Build: cc -std=c99 -O2 -Wall -Wextra -pedantic -I. bench/roofline.c -o build/roofline -lm
          -lpthread */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime, sysconf */
#endif

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define ROOF_X86 1
#include <immintrin.h>
#define ROOF_AVX2_TARGET __attribute__((target("avx2,fma")))
#define ROOF_AVX512_TARGET __attribute__((target("avx512f")))
#define ROOF_VNNI_TARGET __attribute__((target("avx512f,avx512vnni")))
#endif

#define ROOF_MAX_THREADS 256

enum { KERNEL_SCALAR, KERNEL_AVX2, KERNEL_AVX512, KERNEL_VNNI };

static const char *const kernel_names[] = { "scalar", "avx2", "avx512", "avx512vnni" };

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- A reusable barrier (pthread_barrier_t is optional in POSIX) ---------------------------- */

typedef struct barrier {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int count, waiting;
    unsigned long phase;
} barrier;

static void barrier_init(barrier *b, int count)
{
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->count = count;
    b->waiting = 0;
    b->phase = 0;
}

static void barrier_wait(barrier *b)
{
    unsigned long phase;
    pthread_mutex_lock(&b->lock);
    phase = b->phase;
    if (++b->waiting == b->count) {
        b->waiting = 0;
        b->phase++;
        pthread_cond_broadcast(&b->cond);
    } else {
        while (phase == b->phase) pthread_cond_wait(&b->cond, &b->lock);
    }
    pthread_mutex_unlock(&b->lock);
}

static void barrier_destroy(barrier *b)
{
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
}

/* ---- Kernels: each returns a value that depends on all its work, so none is optimised out -- */

/* Sum of n 64-byte lines from p (64-byte aligned). */
static uint64_t read_scalar(const uint8_t *p, size_t n_lines)
{
    const uint64_t *w = (const uint64_t *)(const void *)p;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i;
    for (i = 0; i < n_lines * 8; i += 8) {
        a += w[i] + w[i + 4];
        b += w[i + 1] + w[i + 5];
        c += w[i + 2] + w[i + 6];
        d += w[i + 3] + w[i + 7];
    }
    return a + b + c + d;
}

#ifdef ROOF_X86
ROOF_AVX2_TARGET static uint64_t read_avx2(const uint8_t *p, size_t n_lines)
{
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    uint64_t lanes[4];
    size_t i;
    for (i = 0; i + 1 < n_lines; i += 2) { /* two lines, four 32-byte loads */
        const __m256i *v = (const __m256i *)(const void *)(p + i * 64);
        a = _mm256_add_epi64(a, _mm256_load_si256(v));
        b = _mm256_add_epi64(b, _mm256_load_si256(v + 1));
        c = _mm256_add_epi64(c, _mm256_load_si256(v + 2));
        d = _mm256_add_epi64(d, _mm256_load_si256(v + 3));
    }
    a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
    _mm256_storeu_si256((__m256i *)(void *)lanes, a);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + (i < n_lines ? read_scalar(p + i * 64, 1)
                                                                     : 0);
}

ROOF_AVX512_TARGET static uint64_t read_avx512(const uint8_t *p, size_t n_lines)
{
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    size_t i;
    for (i = 0; i + 3 < n_lines; i += 4) { /* four lines, one 64-byte load each */
        const uint8_t *line = p + i * 64;
        a = _mm512_add_epi64(a, _mm512_load_si512((const void *)line));
        b = _mm512_add_epi64(b, _mm512_load_si512((const void *)(line + 64)));
        c = _mm512_add_epi64(c, _mm512_load_si512((const void *)(line + 128)));
        d = _mm512_add_epi64(d, _mm512_load_si512((const void *)(line + 192)));
    }
    a = _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d));
    return (uint64_t)_mm512_reduce_add_epi64(a) + read_scalar(p + i * 64, n_lines - i);
}

/* Independent chains x = x * m + c; m < 1 keeps every value finite and normal. */
#define FMA_CHAINS_AVX2 12
ROOF_AVX2_TARGET static float fma_avx2(long iterations, float seed)
{
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    __m256 x0 = _mm256_set1_ps(seed), x1 = _mm256_add_ps(x0, c), x2 = _mm256_add_ps(x1, c);
    __m256 x3 = _mm256_add_ps(x2, c), x4 = _mm256_add_ps(x3, c), x5 = _mm256_add_ps(x4, c);
    __m256 x6 = _mm256_add_ps(x5, c), x7 = _mm256_add_ps(x6, c), x8 = _mm256_add_ps(x7, c);
    __m256 x9 = _mm256_add_ps(x8, c), x10 = _mm256_add_ps(x9, c), x11 = _mm256_add_ps(x10, c);
    float out[8];
    long i;
    for (i = 0; i < iterations; i++) {
        x0 = _mm256_fmadd_ps(x0, m, c);
        x1 = _mm256_fmadd_ps(x1, m, c);
        x2 = _mm256_fmadd_ps(x2, m, c);
        x3 = _mm256_fmadd_ps(x3, m, c);
        x4 = _mm256_fmadd_ps(x4, m, c);
        x5 = _mm256_fmadd_ps(x5, m, c);
        x6 = _mm256_fmadd_ps(x6, m, c);
        x7 = _mm256_fmadd_ps(x7, m, c);
        x8 = _mm256_fmadd_ps(x8, m, c);
        x9 = _mm256_fmadd_ps(x9, m, c);
        x10 = _mm256_fmadd_ps(x10, m, c);
        x11 = _mm256_fmadd_ps(x11, m, c);
    }
    x0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)),
                       _mm256_add_ps(_mm256_add_ps(x4, x5), _mm256_add_ps(x6, x7)));
    x0 = _mm256_add_ps(x0, _mm256_add_ps(_mm256_add_ps(x8, x9), _mm256_add_ps(x10, x11)));
    _mm256_storeu_ps(out, x0);
    return out[0] + out[7];
}

#define FMA_CHAINS_AVX512 16
ROOF_AVX512_TARGET static float fma_avx512(long iterations, float seed)
{
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    __m512 x0 = _mm512_set1_ps(seed), x1 = _mm512_add_ps(x0, c), x2 = _mm512_add_ps(x1, c);
    __m512 x3 = _mm512_add_ps(x2, c), x4 = _mm512_add_ps(x3, c), x5 = _mm512_add_ps(x4, c);
    __m512 x6 = _mm512_add_ps(x5, c), x7 = _mm512_add_ps(x6, c), x8 = _mm512_add_ps(x7, c);
    __m512 x9 = _mm512_add_ps(x8, c), x10 = _mm512_add_ps(x9, c), x11 = _mm512_add_ps(x10, c);
    __m512 x12 = _mm512_add_ps(x11, c), x13 = _mm512_add_ps(x12, c);
    __m512 x14 = _mm512_add_ps(x13, c), x15 = _mm512_add_ps(x14, c);
    long i;
    for (i = 0; i < iterations; i++) {
        x0 = _mm512_fmadd_ps(x0, m, c);
        x1 = _mm512_fmadd_ps(x1, m, c);
        x2 = _mm512_fmadd_ps(x2, m, c);
        x3 = _mm512_fmadd_ps(x3, m, c);
        x4 = _mm512_fmadd_ps(x4, m, c);
        x5 = _mm512_fmadd_ps(x5, m, c);
        x6 = _mm512_fmadd_ps(x6, m, c);
        x7 = _mm512_fmadd_ps(x7, m, c);
        x8 = _mm512_fmadd_ps(x8, m, c);
        x9 = _mm512_fmadd_ps(x9, m, c);
        x10 = _mm512_fmadd_ps(x10, m, c);
        x11 = _mm512_fmadd_ps(x11, m, c);
        x12 = _mm512_fmadd_ps(x12, m, c);
        x13 = _mm512_fmadd_ps(x13, m, c);
        x14 = _mm512_fmadd_ps(x14, m, c);
        x15 = _mm512_fmadd_ps(x15, m, c);
    }
    x0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(x0, x1), _mm512_add_ps(x2, x3)),
                       _mm512_add_ps(_mm512_add_ps(x4, x5), _mm512_add_ps(x6, x7)));
    x8 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(x8, x9), _mm512_add_ps(x10, x11)),
                       _mm512_add_ps(_mm512_add_ps(x12, x13), _mm512_add_ps(x14, x15)));
    return _mm512_reduce_add_ps(_mm512_add_ps(x0, x8));
}

/* Independent int8 dot-product chains: acc += sum of 4 u8*s8 products per 32-bit lane. */
#define VNNI_CHAINS 16
ROOF_VNNI_TARGET static float vnni_avx512(long iterations, float seed)
{
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8((char)(int)seed);
    /* Distinct starting values: identical chains would be merged into one by the compiler. */
    __m512i x0 = _mm512_set1_epi32(0), x1 = _mm512_set1_epi32(1), x2 = _mm512_set1_epi32(2);
    __m512i x3 = _mm512_set1_epi32(3), x4 = _mm512_set1_epi32(4), x5 = _mm512_set1_epi32(5);
    __m512i x6 = _mm512_set1_epi32(6), x7 = _mm512_set1_epi32(7), x8 = _mm512_set1_epi32(8);
    __m512i x9 = _mm512_set1_epi32(9), x10 = _mm512_set1_epi32(10);
    __m512i x11 = _mm512_set1_epi32(11), x12 = _mm512_set1_epi32(12);
    __m512i x13 = _mm512_set1_epi32(13), x14 = _mm512_set1_epi32(14);
    __m512i x15 = _mm512_set1_epi32(15);
    long i;
    for (i = 0; i < iterations; i++) {
        x0 = _mm512_dpbusd_epi32(x0, a, b);
        x1 = _mm512_dpbusd_epi32(x1, a, b);
        x2 = _mm512_dpbusd_epi32(x2, a, b);
        x3 = _mm512_dpbusd_epi32(x3, a, b);
        x4 = _mm512_dpbusd_epi32(x4, a, b);
        x5 = _mm512_dpbusd_epi32(x5, a, b);
        x6 = _mm512_dpbusd_epi32(x6, a, b);
        x7 = _mm512_dpbusd_epi32(x7, a, b);
        x8 = _mm512_dpbusd_epi32(x8, a, b);
        x9 = _mm512_dpbusd_epi32(x9, a, b);
        x10 = _mm512_dpbusd_epi32(x10, a, b);
        x11 = _mm512_dpbusd_epi32(x11, a, b);
        x12 = _mm512_dpbusd_epi32(x12, a, b);
        x13 = _mm512_dpbusd_epi32(x13, a, b);
        x14 = _mm512_dpbusd_epi32(x14, a, b);
        x15 = _mm512_dpbusd_epi32(x15, a, b);
    }
    x0 = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(x0, x1), _mm512_add_epi32(x2, x3)),
                          _mm512_add_epi32(_mm512_add_epi32(x4, x5), _mm512_add_epi32(x6, x7)));
    x8 = _mm512_add_epi32(
        _mm512_add_epi32(_mm512_add_epi32(x8, x9), _mm512_add_epi32(x10, x11)),
        _mm512_add_epi32(_mm512_add_epi32(x12, x13), _mm512_add_epi32(x14, x15)));
    return (float)_mm512_reduce_add_epi32(_mm512_add_epi32(x0, x8));
}
#endif /* ROOF_X86 */

/* ---- Threads --------------------------------------------------------------------------------- */

typedef struct job {
    int kind;                   /* 0: read, 1: compute */
    int kernel;                 /* KERNEL_* */
    int n_threads, runs;
    const uint8_t *buffer;      /* read: (lines * 64) bytes */
    size_t lines;
    long iterations;            /* compute: loop trips per thread per run */
    barrier start, stop;
    double best_seconds;        /* written by thread 0 */
} job;

typedef struct worker {
    job *job;
    int index;
    pthread_t thread;
    volatile uint64_t sink;     /* keeps each result alive */
} worker;

static uint64_t run_kernel(job *j, int index)
{
    if (j->kind == 0) {
        size_t begin = j->lines * (size_t)index / (size_t)j->n_threads;
        size_t end = j->lines * (size_t)(index + 1) / (size_t)j->n_threads;
        const uint8_t *p = j->buffer + begin * 64;
#ifdef ROOF_X86
        if (j->kernel == KERNEL_AVX512) return read_avx512(p, end - begin);
        if (j->kernel == KERNEL_AVX2) return read_avx2(p, end - begin);
#endif
        return read_scalar(p, end - begin);
    }
#ifdef ROOF_X86
    if (j->kernel == KERNEL_AVX512) return (uint64_t)fma_avx512(j->iterations, 1.0f + index);
    if (j->kernel == KERNEL_AVX2) return (uint64_t)fma_avx2(j->iterations, 1.0f + index);
    if (j->kernel == KERNEL_VNNI) return (uint64_t)vnni_avx512(j->iterations, 1.0f + index);
#endif
    return 0;
}

/* Every thread passes the start barrier, runs, and passes the stop barrier; thread 0 reads the
   clock just after each barrier, so a run lasts until its slowest thread is done. */
static void *worker_main(void *arg)
{
    worker *w = (worker *)arg;
    job *j = w->job;
    int run;
    for (run = 0; run <= j->runs; run++) { /* run 0 is the warm-up */
        double start = 0.0, seconds;
        barrier_wait(&j->start);
        if (w->index == 0) start = now_seconds();
        w->sink += run_kernel(j, w->index);
        barrier_wait(&j->stop);
        if (w->index == 0 && run > 0) {
            seconds = now_seconds() - start;
            if (j->best_seconds == 0.0 || seconds < j->best_seconds) j->best_seconds = seconds;
        }
    }
    return NULL;
}

/* Runs the job on n_threads threads (the caller is thread 0); returns the best run's seconds,
   or -1 if a thread could not start. */
static double run_job(job *j)
{
    worker workers[ROOF_MAX_THREADS];
    int i, started = 1, ok = 1;
    barrier_init(&j->start, j->n_threads);
    barrier_init(&j->stop, j->n_threads);
    j->best_seconds = 0.0;
    memset(workers, 0, sizeof workers);
    for (i = 0; i < j->n_threads; i++) {
        workers[i].job = j;
        workers[i].index = i;
    }
    for (i = 1; i < j->n_threads; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            ok = 0;
            break;
        }
        started++;
    }
    if (!ok) {
        /* The started threads wait at the first barrier for ever; there is no clean way back,
           so give up on the whole program. */
        fprintf(stderr, "roofline: could not start thread %d\n", started);
        exit(1);
    }
    worker_main(&workers[0]);
    for (i = 1; i < j->n_threads; i++) pthread_join(workers[i].thread, NULL);
    barrier_destroy(&j->start);
    barrier_destroy(&j->stop);
    return j->best_seconds;
}

/* ---- CPU features, cache size ---------------------------------------------------------------- */

static int best_vector_kernel(int *has_vnni)
{
    *has_vnni = 0;
#ifdef ROOF_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *has_vnni = __builtin_cpu_supports("avx512vnni");
        return KERNEL_AVX512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return KERNEL_AVX2;
#endif
    return KERNEL_SCALAR;
}

/* Bytes of the largest cache level sysfs reports for cpu0, or 0. */
static long last_level_cache_bytes(void)
{
    long best = 0;
    int index;
    for (index = 0; index < 8; index++) {
        char path[96];
        FILE *f;
        long size;
        char unit = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
        f = fopen(path, "r");
        if (f == NULL) continue;
        if (fscanf(f, "%ld%c", &size, &unit) >= 1) {
            if (unit == 'K') size <<= 10;
            else if (unit == 'M') size <<= 20;
            if (size > best) best = size;
        }
        fclose(f);
    }
    return best;
}

static void usage(void)
{
    fprintf(stderr, "usage: roofline [-t THREADS] [--runs N] [--mib MIB] [--values FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n_threads = online > 0 ? (int)online : 1, runs = 10, i, has_vnni, vector;
    long llc = last_level_cache_bytes(), mib = 0;
    const char *values_path = NULL;
    uint8_t *raw, *buffer;
    size_t bytes, lines;
    double seconds, read_bw, fma_peak = 0.0;
    job j;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) mib = atol(argv[++i]);
        else if (strcmp(argv[i], "--values") == 0 && i + 1 < argc) values_path = argv[++i];
        else usage();
    }
    if (n_threads < 1 || n_threads > ROOF_MAX_THREADS || runs < 1) usage();
    vector = best_vector_kernel(&has_vnni);

    /* Read bandwidth. The buffer is at least 16x the last-level cache so that at most a few
       percent of it can still be cached from the previous pass. */
    if (mib <= 0) {
        mib = 512;
        if (llc * 16 > mib << 20) mib = (llc * 16) >> 20;
    }
    bytes = (size_t)mib << 20;
    raw = (uint8_t *)malloc(bytes + 64);
    if (raw == NULL) {
        fprintf(stderr, "roofline: no memory for %ld MiB\n", mib);
        return 1;
    }
    buffer = raw + ((64 - ((uintptr_t)raw & 63)) & 63);
    memset(buffer, 1, bytes); /* every page touched before timing */
    lines = bytes / 64;

    printf("%-30s %14s   %s\n", "ceiling", "value", "how");
    memset(&j, 0, sizeof j);
    j.kind = 0;
    j.kernel = vector == KERNEL_SCALAR ? KERNEL_SCALAR : vector;
    j.n_threads = n_threads;
    j.runs = runs;
    j.buffer = buffer;
    j.lines = lines;
    seconds = run_job(&j);
    read_bw = (double)bytes / seconds;
    printf("%-30s %9.2f GB/s   %d threads sum %ld MiB (L3 %ld MiB) with %s loads, best of %d\n",
           "memory read bandwidth", read_bw / 1e9, n_threads, mib, llc >> 20,
           kernel_names[j.kernel], runs);
    free(raw);

    /* FMA peak: 5e6 loop trips x 16 chains is some 20-40 ms per run on a 3-4 GHz core. */
    memset(&j, 0, sizeof j);
    j.kind = 1;
    j.n_threads = n_threads;
    j.runs = runs;
    j.iterations = 5000000;
    if (vector == KERNEL_SCALAR) {
        printf("%-30s %14s   no AVX2/AVX-512 on this CPU: not measured\n", "fp32 FMA peak", "-");
    } else {
        int kernel;
        for (kernel = KERNEL_AVX2; kernel <= vector; kernel++) {
            int chains = kernel == KERNEL_AVX512 ? FMA_CHAINS_AVX512 : FMA_CHAINS_AVX2;
            int lanes = kernel == KERNEL_AVX512 ? 16 : 8;
            double flops, rate;
            char label[48];
            j.kernel = kernel;
            seconds = run_job(&j);
            flops = 2.0 * lanes * chains * (double)j.iterations * n_threads;
            rate = flops / seconds;
            if (rate > fma_peak) fma_peak = rate;
            snprintf(label, sizeof label, "fp32 FMA peak (%s)", kernel_names[kernel]);
            printf("%-30s %7.1f GFLOP/s   %d threads x %d chains x %d lanes x 2 flops per FMA, "
                   "best of %d\n", label, rate / 1e9, n_threads, chains, lanes, runs);
        }
    }
    if (has_vnni) {
        double ops;
        j.kernel = KERNEL_VNNI;
        seconds = run_job(&j);
        ops = 2.0 * 64 * VNNI_CHAINS * (double)j.iterations * n_threads;
        printf("%-30s %8.1f GOP/s   (reference) vpdpbusd: 64 int8 multiply-adds = 128 ops, "
               "best of %d\n", "int8 dot peak (avx512vnni)", ops / seconds / 1e9, runs);
    }
    printf("%-30s %9.2f GB/s, %.1f GFLOP/s (ridge %.1f flop/byte)\n", "roofline used below",
           read_bw / 1e9, fma_peak / 1e9, fma_peak > 0 ? fma_peak / read_bw : 0.0);

    if (values_path != NULL) {
        FILE *f = fopen(values_path, "w");
        if (f == NULL || fprintf(f, "%.6e %.6e\n", read_bw, fma_peak) < 0) {
            fprintf(stderr, "roofline: cannot write %s\n", values_path);
            return 1;
        }
        fclose(f);
    }
    return 0;
}
