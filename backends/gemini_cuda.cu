/* gemini_cuda.cu - a CUDA backend for gemini.h's offload hook (gemini_backend).

   Takes the f32, f16, bf16 and q8_0 weight matrices (q4_0 stays on the CPU), uploads each once
   at gemini_context_create in the file's own layout (row-major [out, in], q8_0 blocks as in
   format.md §3), and computes matrix-vector (decode) and matrix-matrix (prefill) products on
   one device: one thread block per output row and token, f32 activations (not rounded to q8_0
   as the CPU does), f32 sums. Attention stays on the CPU. Any CUDA error in a product makes it
   decline, so the CPU computes that op.

   Build (only on request; gemini.h itself never includes a CUDA header):

       nvcc -O2 -c backends/gemini_cuda.cu -I. -o build/gemini_cuda.o
       cc -std=c99 -O2 -I. app.c build/gemini_cuda.o -o app -L/usr/local/cuda/lib64 \
           -lcudart -lstdc++ -lm -lpthread

   where app.c defines GEMINI_IMPLEMENTATION and declares

       gemini_result gemini_cuda_backend_create(int device, gemini_backend *out);

   Status: compiled, never run on a GPU yet (see backends/README.md). */
#include "gemini.h"

#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GEMINI_CUDA_THREADS 256 /* threads per block: one block per (output row, token) */

typedef struct gemini_cuda_matrix {
    gemini_type type;
    int64_t rows, cols, row_bytes;
    uint8_t *weights;               /* device: rows * row_bytes */
} gemini_cuda_matrix;

typedef struct gemini_cuda {
    int device;
    cudaStream_t stream;
    gemini_cuda_matrix **matrices;  /* every handle handed out, for release */
    int n_matrices, capacity;
    float *x, *y;                   /* device scratch for activations and results */
    size_t x_floats, y_floats;
} gemini_cuda;

/* ---- kernels ------------------------------------------------------------------------------- */

__device__ static float gemini_cuda_f16(const uint8_t *p)
{
    unsigned short bits = (unsigned short)(p[0] | (p[1] << 8));
    uint32_t sign = (uint32_t)(bits & 0x8000u) << 16, exponent = (bits >> 10) & 0x1f;
    uint32_t mantissa = bits & 0x3ffu;
    if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24 */
        float value = (float)mantissa * 5.9604644775390625e-8f;
        return sign ? -value : value;
    }
    if (exponent == 31) return __uint_as_float(sign | 0x7f800000u | (mantissa << 13));
    return __uint_as_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

/* Sum of one value per thread over the block; the result is valid in thread 0. */
__device__ static float gemini_cuda_block_sum(float value)
{
    __shared__ float warp_sums[GEMINI_CUDA_THREADS / 32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, offset;
    for (offset = 16; offset > 0; offset >>= 1)
        value += __shfl_down_sync(0xffffffffu, value, offset);
    if (lane == 0) warp_sums[warp] = value;
    __syncthreads();
    value = threadIdx.x < GEMINI_CUDA_THREADS / 32 ? warp_sums[threadIdx.x] : 0.0f;
    if (warp == 0)
        for (offset = 16; offset > 0; offset >>= 1)
            value += __shfl_down_sync(0xffffffffu, value, offset);
    return value;
}

/* y[t * y_stride + r] = W[r] . x[t * x_stride ..]: block (r, t); W of `type` (f32, f16, bf16,
   q8_0) in the file's layout. */
__global__ static void gemini_cuda_rows(int type, const uint8_t *w, int64_t cols,
                                        int64_t row_bytes, const float *x, int64_t x_stride,
                                        float *y, int64_t y_stride)
{
    int64_t r = blockIdx.x, t = blockIdx.y, i;
    const uint8_t *row = w + r * row_bytes;
    const float *xt = x + t * x_stride;
    float sum = 0.0f;
    if (type == GEMINI_TYPE_F32) {
        const float *wf = (const float *)row;
        for (i = threadIdx.x; i < cols; i += blockDim.x) sum += wf[i] * xt[i];
    } else if (type == GEMINI_TYPE_F16) {
        for (i = threadIdx.x; i < cols; i += blockDim.x)
            sum += gemini_cuda_f16(row + 2 * i) * xt[i];
    } else if (type == GEMINI_TYPE_BF16) {
        const unsigned short *wb = (const unsigned short *)row;
        for (i = threadIdx.x; i < cols; i += blockDim.x)
            sum += __uint_as_float((uint32_t)wb[i] << 16) * xt[i];
    } else { /* q8_0: a thread takes whole 34-byte blocks, dequantised here */
        int64_t block;
        for (block = threadIdx.x; block < cols / 32; block += blockDim.x) {
            const uint8_t *b = row + block * 34;
            const float *xb = xt + block * 32;
            float partial = 0.0f;
            int j;
            for (j = 0; j < 32; j++) partial += (float)(int8_t)b[2 + j] * xb[j];
            sum += gemini_cuda_f16(b) * partial;
        }
    }
    sum = gemini_cuda_block_sum(sum);
    if (threadIdx.x == 0) y[t * y_stride + r] = sum;
}

/* ---- the hook ------------------------------------------------------------------------------ */

static int gemini_cuda_take(void *user, const gemini_backend_tensor *tensor, void **handle)
{
    gemini_cuda *cuda = (gemini_cuda *)user;
    gemini_cuda_matrix *m;
    size_t bytes = (size_t)(tensor->rows * tensor->row_bytes);
    if (tensor->type != GEMINI_TYPE_F32 && tensor->type != GEMINI_TYPE_F16 &&
        tensor->type != GEMINI_TYPE_BF16 && tensor->type != GEMINI_TYPE_Q8_0)
        return 0;
    if (tensor->rows > 0x7fffffff) return 0; /* grid x dimension */
    if (cuda->n_matrices == cuda->capacity) {
        int capacity = cuda->capacity * 2 + 64;
        gemini_cuda_matrix **grown = (gemini_cuda_matrix **)realloc(
            cuda->matrices, sizeof(gemini_cuda_matrix *) * (size_t)capacity);
        if (grown == NULL) return 0;
        cuda->matrices = grown;
        cuda->capacity = capacity;
    }
    m = (gemini_cuda_matrix *)malloc(sizeof *m);
    if (m == NULL) return 0;
    m->type = tensor->type;
    m->rows = tensor->rows;
    m->cols = tensor->cols;
    m->row_bytes = tensor->row_bytes;
    m->weights = NULL;
    if (cudaSetDevice(cuda->device) != cudaSuccess ||
        cudaMalloc((void **)&m->weights, bytes) != cudaSuccess ||
        cudaMemcpy(m->weights, tensor->data, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        if (m->weights != NULL) cudaFree(m->weights);
        free(m);
        (void)cudaGetLastError(); /* clear it: a full device only means the CPU keeps this one */
        return 0;
    }
    cuda->matrices[cuda->n_matrices++] = m;
    *handle = m;
    return 1;
}

/* Grows a device scratch buffer to at least n floats. */
static int gemini_cuda_reserve(float **buffer, size_t *capacity, size_t n)
{
    if (n <= *capacity) return 1;
    if (*buffer != NULL) cudaFree(*buffer);
    *buffer = NULL;
    *capacity = 0;
    if (cudaMalloc((void **)buffer, n * sizeof(float)) != cudaSuccess) {
        *buffer = NULL;
        (void)cudaGetLastError();
        return 0;
    }
    *capacity = n;
    return 1;
}

static int gemini_cuda_matmul(void *user, void *handle, const float *x, int64_t x_stride,
                              int32_t n_tokens, float *y, int64_t y_stride)
{
    gemini_cuda *cuda = (gemini_cuda *)user;
    const gemini_cuda_matrix *m = (const gemini_cuda_matrix *)handle;
    size_t in = (size_t)m->cols, out = (size_t)m->rows, n = (size_t)n_tokens;
    dim3 grid((unsigned)m->rows, (unsigned)n_tokens);
    if (n_tokens < 1 || n_tokens > 65535) return GEMINI_BACKEND_DECLINE;
    if (cudaSetDevice(cuda->device) != cudaSuccess ||
        !gemini_cuda_reserve(&cuda->x, &cuda->x_floats, n * in) ||
        !gemini_cuda_reserve(&cuda->y, &cuda->y_floats, n * out))
        return GEMINI_BACKEND_DECLINE;
    /* activations in, packed (row pitch cols); results out with the caller's stride */
    if (cudaMemcpy2DAsync(cuda->x, in * sizeof(float), x, (size_t)x_stride * sizeof(float),
                          in * sizeof(float), n, cudaMemcpyHostToDevice,
                          cuda->stream) != cudaSuccess)
        goto failed;
    gemini_cuda_rows<<<grid, GEMINI_CUDA_THREADS, 0, cuda->stream>>>(
        (int)m->type, m->weights, m->cols, m->row_bytes, cuda->x, (int64_t)in, cuda->y,
        (int64_t)out);
    if (cudaGetLastError() != cudaSuccess ||
        cudaMemcpy2DAsync(y, (size_t)y_stride * sizeof(float), cuda->y, out * sizeof(float),
                          out * sizeof(float), n, cudaMemcpyDeviceToHost,
                          cuda->stream) != cudaSuccess ||
        cudaStreamSynchronize(cuda->stream) != cudaSuccess)
        goto failed;
    return GEMINI_BACKEND_DONE;

failed:
    (void)cudaStreamSynchronize(cuda->stream);
    (void)cudaGetLastError();
    return GEMINI_BACKEND_DECLINE;
}

static int gemini_cuda_matvec(void *user, void *handle, const float *x, float *y)
{
    const gemini_cuda_matrix *m = (const gemini_cuda_matrix *)handle;
    return gemini_cuda_matmul(user, handle, x, m->cols, 1, y, m->rows);
}

static void gemini_cuda_release(void *user)
{
    gemini_cuda *cuda = (gemini_cuda *)user;
    int i;
    if (cuda == NULL) return;
    (void)cudaSetDevice(cuda->device);
    for (i = 0; i < cuda->n_matrices; i++) {
        cudaFree(cuda->matrices[i]->weights);
        free(cuda->matrices[i]);
    }
    if (cuda->x != NULL) cudaFree(cuda->x);
    if (cuda->y != NULL) cudaFree(cuda->y);
    if (cuda->stream != NULL) cudaStreamDestroy(cuda->stream);
    free(cuda->matrices);
    free(cuda);
}

/* Fills *out with a backend on CUDA device `device`, for one context: pass it in
   gemini_context_params.backend; gemini_context_free (or a failed gemini_context_create)
   releases it. Returns GEMINI_ERR_INVALID_ARGUMENT (NULL out, negative device),
   GEMINI_ERR_UNSUPPORTED (no such device, or the CUDA runtime fails to start) or
   GEMINI_ERR_OUT_OF_MEMORY; *out is then zeroed. */
extern "C" gemini_result gemini_cuda_backend_create(int device, gemini_backend *out)
{
    gemini_cuda *cuda;
    int count = 0;
    if (out == NULL || device < 0) return GEMINI_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (cudaGetDeviceCount(&count) != cudaSuccess || device >= count ||
        cudaSetDevice(device) != cudaSuccess) {
        (void)cudaGetLastError();
        return GEMINI_ERR_UNSUPPORTED;
    }
    cuda = (gemini_cuda *)calloc(1, sizeof *cuda);
    if (cuda == NULL) return GEMINI_ERR_OUT_OF_MEMORY;
    cuda->device = device;
    if (cudaStreamCreateWithFlags(&cuda->stream, cudaStreamNonBlocking) != cudaSuccess) {
        (void)cudaGetLastError();
        free(cuda);
        return GEMINI_ERR_UNSUPPORTED;
    }
    out->name = "cuda";
    out->user_data = cuda;
    out->take_tensor = gemini_cuda_take;
    out->matvec = gemini_cuda_matvec;
    out->matmul = gemini_cuda_matmul;
    out->attention = NULL;
    out->release = gemini_cuda_release;
    return GEMINI_OK;
}
