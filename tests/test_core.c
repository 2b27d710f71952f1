/* test_core.c - unit tests of gemini.h: types and conversions, the reader, the kernels, the
   forward pass against a naive reference, batching, threads, the sliding window, sampling.

   Builds tiny random .gemini models in memory with a writer of its own. Prints one line per
   check and ends with "N passed, M failed"; exits nonzero on any failure.

       gcc -std=c99 -O2 -Wall -Wextra -pedantic -I. tests/test_core.c -o build/test_core \
           -lm -lpthread
       build/test_core

   With Hugging Face reference fixtures converted to f32 .gemini files, also:

       gemini-convert -q -t f32 -o build/fx/gemma2.gemini tests/fixtures/gemma2/hf
       build/test_core --fixture build/fx/gemma2.gemini tests/fixtures/gemma2 [--fixture ...]
*/
#define GEMINI_IMPLEMENTATION
#include "gemini.h"

#include <math.h>
#if !defined(_WIN32) && !defined(GEMINI_NO_THREADS)
#include <pthread.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tests_passed = 0, tests_failed = 0;

static void check(int ok, const char *name, const char *detail)
{
    if (ok) tests_passed++;
    else tests_failed++;
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, detail[0] ? ": " : "", detail);
}

/* ---- deterministic random numbers ---------------------------------------------------------- */

static uint64_t rng_state = 12345;

static double rng_unit(void)
{
    return gemini__random_unit(&rng_state);
}

static float rng_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)rng_unit();
}

/* ---- a small .gemini writer ------------------------------------------------------------------ */

typedef struct buffer {
    uint8_t *bytes;
    size_t size, capacity;
} buffer;

static void put(buffer *b, const void *data, size_t n)
{
    if (b->size + n > b->capacity) {
        b->capacity = (b->size + n) * 2 + 256;
        b->bytes = (uint8_t *)realloc(b->bytes, b->capacity);
    }
    if (n) memcpy(b->bytes + b->size, data, n);
    b->size += n;
}

static void put_u32(buffer *b, uint32_t v)
{
    uint8_t p[4];
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    put(b, p, 4);
}

static void put_u64(buffer *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(buffer *b, const char *s)
{
    put_u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

typedef struct writer {
    buffer meta, dir, data;
    uint64_t n_kv, n_tensors;
    const char *skip;               /* a key or tensor name to leave out */
    const char *misshape;           /* a matrix to write with its dimensions swapped */
} writer;

static int write_key(writer *w, const char *key, uint32_t type)
{
    if (w->skip && strcmp(w->skip, key) == 0) return 0;
    put_str(&w->meta, key);
    put_u32(&w->meta, type);
    w->n_kv++;
    return 1;
}

static void kv_u32(writer *w, const char *key, uint32_t v)
{
    if (write_key(w, key, GEMINI_META_U32)) put_u32(&w->meta, v);
}

static void kv_i32(writer *w, const char *key, int32_t v)
{
    if (write_key(w, key, GEMINI_META_I32)) put_u32(&w->meta, (uint32_t)v);
}

static void kv_f32(writer *w, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    if (write_key(w, key, GEMINI_META_F32)) put_u32(&w->meta, bits);
}

static void kv_bool(writer *w, const char *key, int v)
{
    uint8_t byte = (uint8_t)(v != 0);
    if (write_key(w, key, GEMINI_META_BOOL)) put(&w->meta, &byte, 1);
}

static void kv_str(writer *w, const char *key, const char *v)
{
    if (write_key(w, key, GEMINI_META_STRING)) put_str(&w->meta, v);
}

static void kv_u8_array(writer *w, const char *key, const uint8_t *v, uint64_t n)
{
    if (!write_key(w, key, GEMINI_META_ARRAY)) return;
    put_u32(&w->meta, GEMINI_META_U8);
    put_u64(&w->meta, n);
    put(&w->meta, v, (size_t)n);
}

static void kv_f32_array(writer *w, const char *key, const float *v, uint64_t n)
{
    uint64_t i;
    if (!write_key(w, key, GEMINI_META_ARRAY)) return;
    put_u32(&w->meta, GEMINI_META_F32);
    put_u64(&w->meta, n);
    for (i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        put_u32(&w->meta, bits);
    }
}

static void kv_str_array(writer *w, const char *key, const char *const *v, uint64_t n)
{
    uint64_t i;
    if (!write_key(w, key, GEMINI_META_ARRAY)) return;
    put_u32(&w->meta, GEMINI_META_STRING);
    put_u64(&w->meta, n);
    for (i = 0; i < n; i++) put_str(&w->meta, v[i]);
}

/* Stores a [rows, cols] (cols 0: vector) tensor of `type` made from f32 values. */
static void add_tensor(writer *w, const char *name, gemini_type type, int64_t rows, int64_t cols,
                       const float *values)
{
    int64_t n_cols = cols ? cols : rows, n_rows = cols ? rows : 1, r;
    int64_t row_bytes = gemini_type_row_bytes(type, n_cols);
    uint8_t *bytes = (uint8_t *)malloc((size_t)(row_bytes * n_rows));
    static const uint8_t zeros[64] = {0};
    uint64_t offset;
    if (w->skip && strcmp(w->skip, name) == 0) {
        free(bytes);
        return;
    }
    for (r = 0; r < n_rows; r++)
        gemini_quantize_row(type, values + r * n_cols, bytes + r * row_bytes, n_cols);
    put(&w->data, zeros, (64 - w->data.size % 64) % 64);
    offset = w->data.size;
    put(&w->data, bytes, (size_t)(row_bytes * n_rows));
    put_str(&w->dir, name);
    put_u32(&w->dir, (uint32_t)type);
    put_u32(&w->dir, cols ? 2 : 1);
    if (cols && w->misshape && strcmp(w->misshape, name) == 0) { /* transposed: same size */
        put_u64(&w->dir, (uint64_t)cols);
        put_u64(&w->dir, (uint64_t)rows);
    } else {
        put_u64(&w->dir, (uint64_t)rows);
        if (cols) put_u64(&w->dir, (uint64_t)cols);
    }
    put_u64(&w->dir, offset);
    put_u64(&w->dir, (uint64_t)(row_bytes * n_rows));
    put_u32(&w->dir, gemini_crc32(0, bytes, (size_t)(row_bytes * n_rows)));
    w->n_tensors++;
    free(bytes);
}

/* The finished file in a fresh 64-byte-aligned block (*raw is what to free). */
static uint8_t *finish(writer *w, size_t *size, void **raw)
{
    buffer file = {NULL, 0, 0};
    static const uint8_t zeros[64] = {0};
    uint64_t dir_size = w->meta.size + w->dir.size, data_offset;
    uint8_t *aligned;
    put(&file, "GMNI", 4);
    put_u32(&file, 1);
    put_u32(&file, 64);
    put_u32(&file, 0);
    put_u64(&file, w->n_kv);
    put_u64(&file, w->n_tensors);
    put_u64(&file, dir_size);
    data_offset = (64 + dir_size + 63) / 64 * 64;
    put_u64(&file, data_offset);
    put_u64(&file, w->data.size);
    put_u32(&file, 0); /* CRC, patched below */
    put_u32(&file, 0);
    put(&file, w->meta.bytes, w->meta.size);
    put(&file, w->dir.bytes, w->dir.size);
    put(&file, zeros, (size_t)(data_offset - 64 - dir_size));
    put(&file, w->data.bytes, w->data.size);
    {
        uint32_t crc = gemini_crc32(0, file.bytes + 64, (size_t)dir_size);
        memcpy(file.bytes + 56, &crc, 4); /* the test machine is little-endian */
    }
    *raw = malloc(file.size + 64);
    aligned = (uint8_t *)*raw + (64 - ((uintptr_t)*raw & 63)) % 64;
    memcpy(aligned, file.bytes, file.size);
    *size = file.size;
    free(file.bytes);
    free(w->meta.bytes);
    free(w->dir.bytes);
    free(w->data.bytes);
    return aligned;
}

/* ---- a tiny model: configuration, random weights, file ------------------------------------- */

#define MAX_LAYERS 4

typedef struct config {
    const char *arch;
    int vocab, d, f, layers, heads, kv_heads, head_dim, window;
    int layer_local[MAX_LAYERS];
    float attn_softcap, final_softcap, rope_theta, rope_scale, rope_theta_local, query_scale;
    int sandwich, qk_norm, tied;
} config;

typedef struct weights {
    float *embd, *output_norm, *output;
    float *attn_norm[MAX_LAYERS], *wq[MAX_LAYERS], *wk[MAX_LAYERS], *wv[MAX_LAYERS];
    float *q_norm[MAX_LAYERS], *k_norm[MAX_LAYERS], *wo[MAX_LAYERS], *post_attn[MAX_LAYERS];
    float *ffn_norm[MAX_LAYERS], *gate[MAX_LAYERS], *up[MAX_LAYERS], *down[MAX_LAYERS];
    float *post_ffn[MAX_LAYERS];
} weights;

static float *random_matrix(int64_t rows, int64_t cols)
{
    float *m = (float *)malloc(sizeof(float) * (size_t)(rows * cols));
    float scale = 1.0f / sqrtf((float)cols);
    int64_t i;
    for (i = 0; i < rows * cols; i++) m[i] = rng_uniform(-1.7f, 1.7f) * scale;
    return m;
}

static float *random_norm(int64_t n)
{
    float *v = (float *)malloc(sizeof(float) * (size_t)n);
    int64_t i;
    for (i = 0; i < n; i++) v[i] = 1.0f + rng_uniform(-0.3f, 0.3f);
    return v;
}

static void make_weights(const config *c, weights *w)
{
    int l;
    memset(w, 0, sizeof *w);
    w->embd = random_matrix(c->vocab, c->d);
    w->output_norm = random_norm(c->d);
    w->output = c->tied ? NULL : random_matrix(c->vocab, c->d);
    for (l = 0; l < c->layers; l++) {
        w->attn_norm[l] = random_norm(c->d);
        w->wq[l] = random_matrix((int64_t)c->heads * c->head_dim, c->d);
        w->wk[l] = random_matrix((int64_t)c->kv_heads * c->head_dim, c->d);
        w->wv[l] = random_matrix((int64_t)c->kv_heads * c->head_dim, c->d);
        w->q_norm[l] = random_norm(c->head_dim);
        w->k_norm[l] = random_norm(c->head_dim);
        w->wo[l] = random_matrix(c->d, (int64_t)c->heads * c->head_dim);
        w->post_attn[l] = random_norm(c->d);
        w->ffn_norm[l] = random_norm(c->d);
        w->gate[l] = random_matrix(c->f, c->d);
        w->up[l] = random_matrix(c->f, c->d);
        w->down[l] = random_matrix(c->d, c->f);
        w->post_ffn[l] = random_norm(c->d);
    }
}

static void free_weights(const config *c, weights *w)
{
    int l;
    free(w->embd); free(w->output_norm); free(w->output);
    for (l = 0; l < c->layers; l++) {
        free(w->attn_norm[l]); free(w->wq[l]); free(w->wk[l]); free(w->wv[l]);
        free(w->q_norm[l]); free(w->k_norm[l]); free(w->wo[l]); free(w->post_attn[l]);
        free(w->ffn_norm[l]); free(w->gate[l]); free(w->up[l]); free(w->down[l]);
        free(w->post_ffn[l]);
    }
}

/* Serialises the model with matrices of `type`. skip/misshape: see writer. */
static uint8_t *build_file(const config *c, const weights *w, gemini_type type, const char *skip,
                           const char *misshape, size_t *size, void **raw)
{
    writer wr;
    uint8_t layer_types[MAX_LAYERS];
    const char *pieces[8] = {"<pad>", "<eos>", "<bos>", "<unk>", "a", "b", "ab", "\xe2\x96\x81"};
    float scores[8] = {0, 0, 0, 0, -1, -2, -0.5f, -3};
    uint8_t piece_types[8] = {3, 3, 3, 2, 1, 1, 1, 1};
    int64_t qd = (int64_t)c->heads * c->head_dim, kvd = (int64_t)c->kv_heads * c->head_dim;
    char name[64];
    int l;

    memset(&wr, 0, sizeof wr);
    wr.skip = skip;
    wr.misshape = misshape;
    for (l = 0; l < c->layers; l++) layer_types[l] = (uint8_t)c->layer_local[l];
    kv_str(&wr, "general.architecture", c->arch);
    kv_str(&wr, "general.name", "tiny test model");
    kv_u32(&wr, "model.vocab_size", (uint32_t)c->vocab);
    kv_u32(&wr, "model.hidden_size", (uint32_t)c->d);
    kv_u32(&wr, "model.intermediate_size", (uint32_t)c->f);
    kv_u32(&wr, "model.num_layers", (uint32_t)c->layers);
    kv_u32(&wr, "model.num_heads", (uint32_t)c->heads);
    kv_u32(&wr, "model.num_kv_heads", (uint32_t)c->kv_heads);
    kv_u32(&wr, "model.head_dim", (uint32_t)c->head_dim);
    kv_u32(&wr, "model.max_position", 1024);
    kv_f32(&wr, "model.rms_norm_eps", 1e-6f);
    kv_f32(&wr, "model.embed_scale", sqrtf((float)c->d));
    kv_f32(&wr, "model.query_scale", c->query_scale);
    kv_f32(&wr, "model.attn_softcap", c->attn_softcap);
    kv_f32(&wr, "model.final_softcap", c->final_softcap);
    kv_f32(&wr, "model.rope_theta", c->rope_theta);
    kv_f32(&wr, "model.rope_scale", c->rope_scale);
    kv_f32(&wr, "model.rope_theta_local", c->rope_theta_local);
    kv_u32(&wr, "model.sliding_window", (uint32_t)c->window);
    kv_u8_array(&wr, "model.layer_types", layer_types, (uint64_t)c->layers);
    kv_bool(&wr, "model.sandwich_norms", c->sandwich);
    kv_bool(&wr, "model.qk_norm", c->qk_norm);
    kv_str(&wr, "model.activation", "gelu_tanh");
    kv_bool(&wr, "model.tied_embeddings", c->tied);
    kv_str(&wr, "tokenizer.model", "sentencepiece-bpe");
    kv_str_array(&wr, "tokenizer.pieces", pieces, 8);
    kv_f32_array(&wr, "tokenizer.scores", scores, 8);
    kv_u8_array(&wr, "tokenizer.types", piece_types, 8);
    kv_i32(&wr, "tokenizer.unk_id", 3);
    kv_i32(&wr, "tokenizer.bos_id", 2);
    kv_i32(&wr, "tokenizer.eos_id", 1);
    kv_i32(&wr, "tokenizer.pad_id", 0);
    kv_bool(&wr, "tokenizer.add_bos", 1);
    kv_bool(&wr, "tokenizer.add_dummy_prefix", 0);
    kv_bool(&wr, "tokenizer.remove_extra_whitespaces", 0);
    kv_bool(&wr, "tokenizer.escape_whitespaces", 1);
    kv_bool(&wr, "tokenizer.treat_whitespace_as_suffix", 0);
    kv_bool(&wr, "tokenizer.byte_fallback", 1);

    add_tensor(&wr, "token_embd", type, c->vocab, c->d, w->embd);
    add_tensor(&wr, "output_norm", GEMINI_TYPE_F32, c->d, 0, w->output_norm);
    if (!c->tied) add_tensor(&wr, "output", type, c->vocab, c->d, w->output);
    for (l = 0; l < c->layers; l++) {
#define NAME(suffix) (sprintf(name, "blk.%d." suffix, l), name)
        add_tensor(&wr, NAME("attn_norm"), GEMINI_TYPE_F32, c->d, 0, w->attn_norm[l]);
        add_tensor(&wr, NAME("attn_q"), type, qd, c->d, w->wq[l]);
        add_tensor(&wr, NAME("attn_k"), type, kvd, c->d, w->wk[l]);
        add_tensor(&wr, NAME("attn_v"), type, kvd, c->d, w->wv[l]);
        if (c->qk_norm) {
            add_tensor(&wr, NAME("attn_q_norm"), GEMINI_TYPE_F32, c->head_dim, 0, w->q_norm[l]);
            add_tensor(&wr, NAME("attn_k_norm"), GEMINI_TYPE_F32, c->head_dim, 0, w->k_norm[l]);
        }
        add_tensor(&wr, NAME("attn_out"), type, c->d, qd, w->wo[l]);
        if (c->sandwich)
            add_tensor(&wr, NAME("post_attn_norm"), GEMINI_TYPE_F32, c->d, 0, w->post_attn[l]);
        add_tensor(&wr, NAME("ffn_norm"), GEMINI_TYPE_F32, c->d, 0, w->ffn_norm[l]);
        add_tensor(&wr, NAME("ffn_gate"), type, c->f, c->d, w->gate[l]);
        add_tensor(&wr, NAME("ffn_up"), type, c->f, c->d, w->up[l]);
        add_tensor(&wr, NAME("ffn_down"), type, c->d, c->f, w->down[l]);
        if (c->sandwich)
            add_tensor(&wr, NAME("post_ffn_norm"), GEMINI_TYPE_F32, c->d, 0, w->post_ffn[l]);
#undef NAME
    }
    return finish(&wr, size, raw);
}

/* ---- the naive reference forward (double precision, whole sequence at once) --------------- */

static void ref_rmsnorm(double *out, const double *x, const float *w, int n)
{
    double ss = 0;
    int i;
    for (i = 0; i < n; i++) ss += x[i] * x[i];
    ss = 1.0 / sqrt(ss / n + 1e-6);
    for (i = 0; i < n; i++) out[i] = x[i] * ss * w[i];
}

static void ref_matvec(double *out, const float *m, const double *x, int rows, int cols)
{
    int r, i;
    for (r = 0; r < rows; r++) {
        double s = 0;
        for (i = 0; i < cols; i++) s += (double)m[(int64_t)r * cols + i] * x[i];
        out[r] = s;
    }
}

static void ref_rope(double *head, int D, int pos, double base, double scale)
{
    int i;
    for (i = 0; i < D / 2; i++) {
        double inv = 1.0 / pow(base, 2.0 * i / D) / scale, a = head[i], b = head[i + D / 2];
        double angle = pos * inv;
        head[i] = a * cos(angle) - b * sin(angle);
        head[i + D / 2] = b * cos(angle) + a * sin(angle);
    }
}

/* logits (T, vocab) of the token sequence, by the formulas of REFERENCE.md §1. */
static void reference_forward(const config *c, const weights *w, const int32_t *tokens, int T,
                              float *logits)
{
    int d = c->d, D = c->head_dim, H = c->heads, Hkv = c->kv_heads, F = c->f;
    int qd = H * D, kvd = Hkv * D, t, l, h, j, i;
    double *x = (double *)calloc((size_t)T * d, sizeof(double));
    double *a = (double *)malloc(sizeof(double) * d), *o = (double *)malloc(sizeof(double) * d);
    double *q = (double *)malloc(sizeof(double) * (size_t)T * qd);
    double *k = (double *)malloc(sizeof(double) * (size_t)T * kvd);
    double *v = (double *)malloc(sizeof(double) * (size_t)T * kvd);
    double *att = (double *)malloc(sizeof(double) * qd), *s = (double *)malloc(sizeof(double) * T);
    double *g = (double *)malloc(sizeof(double) * F), *u = (double *)malloc(sizeof(double) * F);
    float embed_scale = sqrtf((float)d);

    for (t = 0; t < T; t++)
        for (i = 0; i < d; i++) x[t * d + i] = (double)w->embd[tokens[t] * d + i] * embed_scale;
    for (l = 0; l < c->layers; l++) {
        int local = c->layer_local[l];
        double base = local ? c->rope_theta_local : c->rope_theta;
        double scale = local ? 1.0 : c->rope_scale;
        for (t = 0; t < T; t++) {
            ref_rmsnorm(a, x + t * d, w->attn_norm[l], d);
            ref_matvec(q + t * qd, w->wq[l], a, qd, d);
            ref_matvec(k + t * kvd, w->wk[l], a, kvd, d);
            ref_matvec(v + t * kvd, w->wv[l], a, kvd, d);
            for (h = 0; h < H; h++) {
                if (c->qk_norm)
                    ref_rmsnorm(q + t * qd + h * D, q + t * qd + h * D, w->q_norm[l], D);
                ref_rope(q + t * qd + h * D, D, t, base, scale);
            }
            for (h = 0; h < Hkv; h++) {
                if (c->qk_norm)
                    ref_rmsnorm(k + t * kvd + h * D, k + t * kvd + h * D, w->k_norm[l], D);
                ref_rope(k + t * kvd + h * D, D, t, base, scale);
            }
        }
        for (t = 0; t < T; t++) {
            for (h = 0; h < H; h++) {
                int g_head = h / (H / Hkv);
                double mx = -1e300, sum = 0;
                for (j = 0; j <= t; j++) {
                    double dot = 0;
                    for (i = 0; i < D; i++)
                        dot += q[t * qd + h * D + i] * k[j * kvd + g_head * D + i];
                    dot *= c->query_scale;
                    if (c->attn_softcap > 0) dot = c->attn_softcap * tanh(dot / c->attn_softcap);
                    if (local && j <= t - c->window) dot = -1e300; /* masked */
                    s[j] = dot;
                    if (dot > mx) mx = dot;
                }
                for (j = 0; j <= t; j++) {
                    s[j] = s[j] <= -1e299 ? 0 : exp(s[j] - mx);
                    sum += s[j];
                }
                for (i = 0; i < D; i++) {
                    double acc = 0;
                    for (j = 0; j <= t; j++) acc += s[j] / sum * v[j * kvd + g_head * D + i];
                    att[h * D + i] = acc;
                }
            }
            ref_matvec(o, w->wo[l], att, d, qd);
            if (c->sandwich) ref_rmsnorm(o, o, w->post_attn[l], d);
            for (i = 0; i < d; i++) x[t * d + i] += o[i];
            ref_rmsnorm(a, x + t * d, w->ffn_norm[l], d);
            ref_matvec(g, w->gate[l], a, F, d);
            ref_matvec(u, w->up[l], a, F, d);
            for (i = 0; i < F; i++) {
                double z = g[i];
                g[i] = 0.5 * z * (1 + tanh(sqrt(2 / 3.14159265358979323846) *
                                           (z + 0.044715 * z * z * z))) * u[i];
            }
            ref_matvec(o, w->down[l], g, d, F);
            if (c->sandwich) ref_rmsnorm(o, o, w->post_ffn[l], d);
            for (i = 0; i < d; i++) x[t * d + i] += o[i];
        }
    }
    for (t = 0; t < T; t++) {
        double *row = (double *)malloc(sizeof(double) * c->vocab);
        ref_rmsnorm(a, x + t * d, w->output_norm, d);
        ref_matvec(row, c->tied ? w->embd : w->output, a, c->vocab, d);
        for (i = 0; i < c->vocab; i++) {
            double z = row[i];
            if (c->final_softcap > 0) z = c->final_softcap * tanh(z / c->final_softcap);
            logits[(int64_t)t * c->vocab + i] = (float)z;
        }
        free(row);
    }
    free(x); free(a); free(o); free(q); free(k); free(v); free(att); free(s); free(g); free(u);
}

/* max |a - b| / max |b| */
static double relative_error(const float *a, const float *b, int64_t n)
{
    double max_diff = 0, max_ref = 1e-30;
    int64_t i;
    for (i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - b[i]);
        if (!(diff <= max_diff)) max_diff = diff; /* NaN counts as huge */
        if (fabs(b[i]) > max_ref) max_ref = fabs(b[i]);
    }
    return max_diff / max_ref;
}

/* A copy of the weights whose matrices went through `type` and back (what the file holds). */
static float *roundtrip_matrix(const float *m, int64_t rows, int64_t cols, gemini_type type)
{
    float *out = (float *)malloc(sizeof(float) * (size_t)(rows * cols));
    uint8_t *row = (uint8_t *)malloc((size_t)gemini_type_row_bytes(type, cols));
    int64_t r;
    for (r = 0; r < rows; r++) {
        gemini_quantize_row(type, m + r * cols, row, cols);
        gemini_dequantize_row(type, row, out + r * cols, cols);
    }
    free(row);
    return out;
}

static void roundtrip_weights(const config *c, const weights *w, gemini_type type, weights *out)
{
    int64_t qd = (int64_t)c->heads * c->head_dim, kvd = (int64_t)c->kv_heads * c->head_dim;
    int l;
    make_weights(c, out); /* allocates; the matrices are replaced below */
    free(out->embd);
    out->embd = roundtrip_matrix(w->embd, c->vocab, c->d, type);
    memcpy(out->output_norm, w->output_norm, sizeof(float) * (size_t)c->d);
    if (!c->tied) {
        free(out->output);
        out->output = roundtrip_matrix(w->output, c->vocab, c->d, type);
    }
    for (l = 0; l < c->layers; l++) {
        memcpy(out->attn_norm[l], w->attn_norm[l], sizeof(float) * (size_t)c->d);
        memcpy(out->q_norm[l], w->q_norm[l], sizeof(float) * (size_t)c->head_dim);
        memcpy(out->k_norm[l], w->k_norm[l], sizeof(float) * (size_t)c->head_dim);
        memcpy(out->post_attn[l], w->post_attn[l], sizeof(float) * (size_t)c->d);
        memcpy(out->ffn_norm[l], w->ffn_norm[l], sizeof(float) * (size_t)c->d);
        memcpy(out->post_ffn[l], w->post_ffn[l], sizeof(float) * (size_t)c->d);
        free(out->wq[l]); out->wq[l] = roundtrip_matrix(w->wq[l], qd, c->d, type);
        free(out->wk[l]); out->wk[l] = roundtrip_matrix(w->wk[l], kvd, c->d, type);
        free(out->wv[l]); out->wv[l] = roundtrip_matrix(w->wv[l], kvd, c->d, type);
        free(out->wo[l]); out->wo[l] = roundtrip_matrix(w->wo[l], c->d, qd, type);
        free(out->gate[l]); out->gate[l] = roundtrip_matrix(w->gate[l], c->f, c->d, type);
        free(out->up[l]); out->up[l] = roundtrip_matrix(w->up[l], c->f, c->d, type);
        free(out->down[l]); out->down[l] = roundtrip_matrix(w->down[l], c->d, c->f, type);
    }
}

/* ---- the configurations ------------------------------------------------------------------- */

static config config_gemma3(void)
{
    config c;
    memset(&c, 0, sizeof c);
    c.arch = "gemma3"; c.vocab = 67; c.d = 64; c.f = 96; c.layers = 3; c.heads = 4;
    c.kv_heads = 2; c.head_dim = 16; c.window = 5;
    c.layer_local[0] = 1; c.layer_local[1] = 1; c.layer_local[2] = 0;
    c.rope_theta = 1e6f; c.rope_scale = 8.0f; c.rope_theta_local = 1e4f; c.query_scale = 0.25f;
    c.sandwich = 1; c.qk_norm = 1; c.tied = 1;
    return c;
}

static config config_gemma2(void)
{
    config c = config_gemma3();
    c.arch = "gemma2"; c.qk_norm = 0; c.attn_softcap = 0.7f; c.final_softcap = 1.5f;
    c.layer_local[0] = 1; c.layer_local[1] = 0; c.layer_local[2] = 1;
    c.rope_theta = 1e4f; c.rope_scale = 1.0f; c.window = 4; c.heads = 4; c.kv_heads = 4;
    return c;
}

static config config_gemma1(void)
{
    config c = config_gemma3();
    c.arch = "gemma"; c.qk_norm = 0; c.sandwich = 0; c.tied = 0; c.window = 0; c.layers = 2;
    c.layer_local[0] = 0; c.layer_local[1] = 0; c.layer_local[2] = 0;
    c.kv_heads = 1; c.rope_theta = 1e4f; c.rope_scale = 1.0f; c.query_scale = 0.25f;
    return c;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_conversions(void)
{
    char detail[160];
    int i, bad = 0;
    uint16_t h;

    check(gemini_crc32(0, "123456789", 9) == 0xCBF43926u, "crc32 check value", "");
    check(gemini_crc32(gemini_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u,
          "crc32 in pieces", "");

    for (i = 0; i < 65536; i++) { /* every f16 value survives f16 -> f32 -> f16 */
        float f = gemini_f16_to_f32((uint16_t)i);
        h = gemini_f32_to_f16(f);
        if (f == f ? h != (uint16_t)i : !((h & 0x7c00) == 0x7c00 && (h & 0x3ff))) bad++;
    }
    check(bad == 0, "f16 round trip of all 65536 values", "");
    check(gemini_f32_to_f16(65520.0f) == 0x7c00 && gemini_f32_to_f16(65519.0f) == 0x7bff &&
          gemini_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00 &&
          gemini_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02 &&
          gemini_f32_to_f16(2.98023224e-8f) == 0 && gemini_f32_to_f16(-3.0e-8f) == 0x8001,
          "f16 rounding: overflow, ties to even, subnormals", "");
    check(gemini_f32_to_bf16(1.0f + 1.0f / 256) == 0x3f80 &&
          gemini_f32_to_bf16(1.0f + 3.0f / 256) == 0x3f82 &&
          gemini_bf16_to_f32(0x3f82) == 1.0f + 2.0f / 128 &&
          (gemini_f32_to_bf16(NAN) & 0x7f80) == 0x7f80 && (gemini_f32_to_bf16(NAN) & 0x7f) != 0,
          "bf16 rounding ties to even, NaN kept", "");

    check(strcmp(gemini_type_name(GEMINI_TYPE_Q4_0), "q4_0") == 0 &&
          gemini_type_name(GEMINI_TYPE_COUNT) == NULL, "type names", "");
    {
        gemini_type t = GEMINI_TYPE_F32;
        check(gemini_type_from_name("bf16", &t) == 1 && t == GEMINI_TYPE_BF16 &&
              gemini_type_from_name("q5_k", &t) == 0 && t == GEMINI_TYPE_BF16,
              "type from name", "");
    }
    check(gemini_type_row_bytes(GEMINI_TYPE_Q8_0, 64) == 68 &&
          gemini_type_row_bytes(GEMINI_TYPE_Q4_0, 96) == 54 &&
          gemini_type_row_bytes(GEMINI_TYPE_Q4_0, 33) == -1 &&
          gemini_type_row_bytes(GEMINI_TYPE_F16, 7) == 14 &&
          gemini_type_row_bytes(GEMINI_TYPE_COUNT, 32) == -1, "row bytes", "");

    /* quantise / dequantise round trips within the documented bounds */
    {
        float x[640], y[640];
        uint8_t q[640 * 4];
        int type;
        for (i = 0; i < 640; i++) x[i] = rng_uniform(-3, 3) * (i % 64 == 5 ? 10.0f : 1.0f);
        for (i = 0; i < 32; i++) x[64 + i] = 0.0f; /* a block of zeros */
        for (type = 0; type < GEMINI_TYPE_COUNT; type++) {
            double worst = 0;
            int b;
            gemini_quantize_row((gemini_type)type, x, q, 640);
            gemini_dequantize_row((gemini_type)type, q, y, 640);
            for (b = 0; b < 20; b++) {
                float amax = 0, bound;
                for (i = 0; i < 32; i++)
                    if (fabsf(x[b * 32 + i]) > amax) amax = fabsf(x[b * 32 + i]);
                if (type == GEMINI_TYPE_F32) bound = 0;
                else if (type == GEMINI_TYPE_F16) bound = amax / 2048;
                else if (type == GEMINI_TYPE_BF16) bound = amax / 256;
                else if (type == GEMINI_TYPE_Q8_0) bound = amax / 127 * 0.502f + amax * 1e-3f;
                else bound = amax / 8 * 1.001f + amax * 1e-3f;
                for (i = 0; i < 32; i++) {
                    double e = fabs((double)x[b * 32 + i] - y[b * 32 + i]);
                    if (e > bound) worst = e > worst ? e : worst;
                }
            }
            sprintf(detail, "%s worst excess %g", gemini_type_name((gemini_type)type), worst);
            check(worst == 0, "quantize round trip within bounds", detail);
        }
        check(gemini_quantize_row(GEMINI_TYPE_Q8_0, x, q, 33) == GEMINI_ERR_INVALID_ARGUMENT,
              "quantize rejects a partial block", "");
        x[3] = INFINITY;
        check(gemini_quantize_row(GEMINI_TYPE_Q4_0, x, q, 32) == GEMINI_ERR_INVALID_ARGUMENT,
              "quantize rejects infinity", "");
    }

    /* a hand-checked q4_0 block: m = -4 -> d = 0.5; x = 1 -> trunc(2 + 8.5) = 10 */
    {
        float x[32], y[32];
        uint8_t q[18];
        for (i = 0; i < 32; i++) x[i] = 0.0f;
        x[0] = -4.0f; x[1] = 1.0f; x[16] = 3.9f;
        gemini_quantize_row(GEMINI_TYPE_Q4_0, x, q, 32);
        gemini_dequantize_row(GEMINI_TYPE_Q4_0, q, y, 32);
        check(q[0] == 0x00 && q[1] == 0x38 && q[2] == (0 | (15 << 4)) && q[3] == (10 | (8 << 4)) &&
              y[0] == -4.0f && y[1] == 1.0f && y[16] == 3.5f, "q4_0 hand-checked block", "");
    }
    /* a hand-checked q8_0 block: max 127 -> d = 1, values round half away from zero */
    {
        float x[32], y[32];
        uint8_t q[34];
        for (i = 0; i < 32; i++) x[i] = 0.0f;
        x[0] = 127.0f; x[1] = 2.5f; x[2] = -2.5f; x[3] = -127.0f;
        gemini_quantize_row(GEMINI_TYPE_Q8_0, x, q, 32);
        gemini_dequantize_row(GEMINI_TYPE_Q8_0, q, y, 32);
        check(q[0] == 0x00 && q[1] == 0x3c && (int8_t)q[2] == 127 && (int8_t)q[3] == 3 &&
              (int8_t)q[4] == -3 && (int8_t)q[5] == -127 && y[1] == 3.0f,
              "q8_0 hand-checked block", "");
    }
}

/* The kernel tables of one level (GEMINI__CPU_*), or NULL where this CPU or build lacks it. */
static const gemini__dot_fn *level_kernels(int level, gemini__axpy_fn *axpy,
                                           const gemini__dot2x2_fn **dot2x2)
{
    const gemini__dot_fn *dot;
    gemini__cpu_limit = level;
    dot = gemini__cpu_level() == level ? gemini__select_kernels(axpy, dot2x2) : NULL;
    gemini__cpu_limit = GEMINI__CPU_TOP;
    return dot;
}

/* The tile kernels of one level (entries NULL where a type has none), or NULL where this CPU
   or build lacks the level. */
static const gemini__tile_fn *level_tile(int level)
{
    const gemini__tile_fn *tile;
    gemini__cpu_limit = level;
    tile = gemini__cpu_level() == level ? gemini__select_tile() : NULL;
    gemini__cpu_limit = GEMINI__CPU_TOP;
    return tile;
}

/* The f16/bf16 axpy kernels of one level, or NULL where this CPU or build lacks it. */
static const gemini__axpy_half_fn *level_axpy16(int level)
{
    const gemini__axpy_half_fn *axpy16;
    gemini__cpu_limit = level;
    axpy16 = gemini__cpu_level() == level ? gemini__select_axpy_half() : NULL;
    gemini__cpu_limit = GEMINI__CPU_TOP;
    return axpy16;
}

static const char *level_name(int level)
{
#if defined(__aarch64__)
    static const char *const names[] = {"scalar", "neon", "neon dotprod"};
#else
    static const char *const names[] = {"scalar", "avx2", "avx512", "avx512 vnni", "amx"};
#endif
    return names[level];
}

/* A row of q8_0 or q4_0 blocks with f16 scale 1.0 and random quants (q8_0 weights over the
   whole int8 range, q8_0 activations over [-127, 127] as the quantiser makes them): every
   partial sum is an integer below 2^24, so any summation order gives the exact value. */
static void unit_scale_row(uint8_t *row, int64_t n, int q4, int activation)
{
    int64_t block, j, bytes = q4 ? 18 : 34;
    for (block = 0; block < n / 32; block++) {
        uint8_t *p = row + block * bytes;
        p[0] = 0x00;
        p[1] = 0x3c;
        for (j = 2; j < bytes; j++) {
            int v = (int)(rng_unit() * 256) - 128;
            if (activation && v == -128) v = -127;
            p[j] = (uint8_t)v;
        }
    }
}

/* The register-blocked attention values of one level by KV type, or NULL where this CPU or
   build lacks the level or the level has none. */
static const gemini__weighted_sum_fn *level_weighted_sums(int level)
{
    const gemini__weighted_sum_fn *sums;
    gemini__cpu_limit = level;
    sums = gemini__cpu_level() == level ? gemini__select_weighted_sums() : NULL;
    gemini__cpu_limit = GEMINI__CPU_TOP;
    return sums;
}

/* The register-blocked attention values of every level give its axpy's bits (f32 values) or
   its f16/bf16 axpy's bits, one call per key and head: heads 1..5 (blocks of 4, 2, 1), key
   runs across the 64-key chunks, lengths with and without a tail (vector and scalar parts),
   outputs that start non-zero. */
static void test_weighted_sum_levels(void)
{
    enum { HEADS = 5, KEYS = 150, LEN = 264, ROW = 300 };
    static const int lens[] = {256, 264, 7, 40, 45, 100}; /* 45, 100: 8-wide and scalar tails */
    static const int key_counts[] = {1, 63, 64, 65, 150};
    float *values = (float *)malloc(sizeof(float) * KEYS * ROW);
    uint8_t *rows = (uint8_t *)malloc(sizeof(float) * KEYS * ROW);
    float *p = (float *)malloc(sizeof(float) * HEADS * KEYS);
    float *start = (float *)malloc(sizeof(float) * HEADS * LEN);
    float *a = (float *)malloc(sizeof(float) * HEADS * LEN);
    float *b = (float *)malloc(sizeof(float) * HEADS * LEN);
    char detail[96];
    int level, tested = 0, i, type;
    for (i = 0; i < KEYS * ROW; i++) values[i] = rng_uniform(-2, 2);
    for (i = 0; i < HEADS * KEYS; i++) p[i] = rng_uniform(0, 1);
    for (i = 0; i < HEADS * LEN; i++) start[i] = rng_uniform(-1, 1);
    for (level = GEMINI__CPU_SCALAR; level <= GEMINI__CPU_TOP; level++) {
        gemini__axpy_fn axpy;
        const gemini__dot2x2_fn *dot2x2;
        const gemini__weighted_sum_fn *sums = level_weighted_sums(level);
        const gemini__axpy_half_fn *axpy16 = level_axpy16(level);
        if (level_kernels(level, &axpy, &dot2x2) == NULL || sums == NULL) continue;
        for (type = GEMINI_TYPE_F32; type <= GEMINI_TYPE_BF16; type++) {
            int64_t row_bytes = gemini_type_row_bytes((gemini_type)type, ROW);
            int same = 1, heads, s, c, k, h;
            if (sums[type] == NULL) continue;
            tested++;
            for (k = 0; k < KEYS; k++)
                gemini_quantize_row((gemini_type)type, values + k * ROW, rows + k * row_bytes,
                                    ROW);
            for (heads = 1; heads <= HEADS; heads++)
                for (s = 0; s < (int)(sizeof lens / sizeof lens[0]); s++)
                    for (c = 0; c < (int)(sizeof key_counts / sizeof key_counts[0]); c++) {
                        int len = lens[s], n_keys = key_counts[c];
                        memcpy(a, start, sizeof(float) * HEADS * LEN);
                        memcpy(b, start, sizeof(float) * HEADS * LEN);
                        sums[type](a, LEN, heads, p, KEYS, rows, row_bytes, n_keys, len);
                        for (k = 0; k < n_keys; k++)
                            for (h = 0; h < heads; h++) {
                                const uint8_t *row = rows + k * row_bytes;
                                if (type == GEMINI_TYPE_F32)
                                    axpy(b + h * LEN, p[h * KEYS + k],
                                         (const float *)(const void *)row, len);
                                else
                                    axpy16[type](b + h * LEN, p[h * KEYS + k], row, len);
                            }
                        same &= memcmp(a, b, sizeof(float) * HEADS * LEN) == 0;
                    }
            sprintf(detail, "%s, %s values, 1..%d heads, 1..%d keys", level_name(level),
                    gemini_type_name((gemini_type)type), HEADS, KEYS);
            check(same, "register-blocked attention values give the axpy bits", detail);
        }
    }
    if (tested == 0) printf("skip register-blocked attention values: no level here has them\n");
    free(values); free(rows); free(p); free(start); free(a); free(b);
}

/* The vectorised tanh-GELU (and GeGLU) of every level against the scalar one: within 1e-6 of
   |x| (a few ulp) from -30 to 30, tails included (n not a multiple of 16). */
static void test_geglu_levels(void)
{
    enum { N = 1000 };
    float *x = (float *)malloc(sizeof(float) * N), *up = (float *)malloc(sizeof(float) * N);
    float *want = (float *)malloc(sizeof(float) * N), *got = (float *)malloc(sizeof(float) * N);
    char detail[160];
    int level, i, k;
    for (i = 0; i < N; i++) {
        x[i] = i < 900 ? rng_uniform(-8, 8) : rng_uniform(-30, 30);
        up[i] = rng_uniform(-2, 2);
    }
    x[0] = 0.0f, x[1] = -0.0f, x[2] = 1e-30f, x[3] = -1e-30f, x[4] = 88.0f, x[5] = -88.0f;
    for (level = GEMINI__CPU_SCALAR + 1; level <= GEMINI__CPU_TOP; level++) {
        gemini__geglu_fn geglu;
        double worst = 0;
        gemini__cpu_limit = level;
        geglu = gemini__cpu_level() == level ? gemini__select_geglu() : NULL;
        gemini__cpu_limit = GEMINI__CPU_TOP;
        if (geglu == NULL) continue;
        for (k = 0; k < 2; k++) {
            memcpy(want, x, sizeof(float) * N);
            memcpy(got, x, sizeof(float) * N);
            gemini__geglu(want, k ? up : NULL, N - 3);
            geglu(got, k ? up : NULL, N - 3);
            for (i = 0; i < N; i++) {
                double scale = fabs(x[i]) * (k ? fabs(up[i]) : 1.0) + 1e-37;
                double e = fabs((double)want[i] - got[i]) / scale;
                if (e > worst) worst = e;
            }
        }
        sprintf(detail, "%s, worst %.2g of |x| (limit 1e-6)", level_name(level), worst);
        check(worst < 1e-6, "tanh-GELU and GeGLU equal the scalar ones", detail);
    }
    free(x); free(up); free(want); free(got);
}

/* The softmax exponentials of every level against libm's: each e^(x - max) within 1e-6 of
   itself (a few ulp; below e^-87, where the vector e^x stops, both are under 2e-38) and the sum
   within 1e-6, on rows of 1..300 scores (every tail length) spread like attention scores, with
   the row's max (the `max` argument) as given and 50 above it (so that a lane past the row's
   end, if it were summed, would add about 1); nothing past the row written; NaN in, NaN out. */
static void test_exp_sum_levels(void)
{
    enum { N = 300 };
    float x[N + 1], want[N + 1], got[N + 1];
    char detail[200];
    int level, n, i, k, tested = 0;
    for (level = GEMINI__CPU_SCALAR + 1; level <= GEMINI__CPU_TOP; level++) {
        gemini__exp_sum_fn exp_sum;
        double worst = 0, worst_sum = 0;
        int kept = 1, nan_kept;
        gemini__cpu_limit = level;
        exp_sum = gemini__cpu_level() == level ? gemini__select_exp_sum() : NULL;
        gemini__cpu_limit = GEMINI__CPU_TOP;
        if (exp_sum == NULL || exp_sum == gemini__exp_sum) continue;
        tested++;
        for (k = 0; k < 2; k++)
            for (n = 1; n <= N; n++) {
                float max = -INFINITY, want_sum, got_sum;
                double e;
                for (i = 0; i < n; i++) {
                    x[i] = rng_uniform(-30, 30) * (i % 7 == 0 ? 4.0f : 1.0f);
                    if (x[i] > max) max = x[i];
                }
                max += k * 50.0f;
                memcpy(want, x, sizeof(float) * (size_t)n);
                memcpy(got, x, sizeof(float) * (size_t)n);
                got[n] = 12345.0f;
                want_sum = gemini__exp_sum(want, n, max);
                got_sum = exp_sum(got, n, max);
                kept &= got[n] == 12345.0f;
                for (i = 0; i < n; i++) {
                    e = fabs((double)want[i] - got[i]) / ((double)want[i] + 1e-24);
                    if (!(e <= worst)) worst = e; /* NaN too */
                }
                e = fabs((double)want_sum - got_sum) / ((double)want_sum + 1e-30);
                if (!(e <= worst_sum)) worst_sum = e;
            }
        for (i = 0; i < 20; i++) x[i] = (float)i;
        x[13] = (float)NAN;
        exp_sum(x, 20, 19.0f);
        nan_kept = x[13] != x[13];
        sprintf(detail, "%s, worst %.2g, sum %.2g (limits 1e-6), tail %s, NaN %s",
                level_name(level), worst, worst_sum, kept ? "untouched" : "WRITTEN",
                nan_kept ? "kept" : "LOST");
        check(worst < 1e-6 && worst_sum < 1e-6 && kept && nan_kept,
              "softmax exponentials equal libm's", detail);
    }
    if (tested == 0) printf("skip softmax exponentials: no vector level here\n");
}

/* The softmax of every vector level against the scalar loops around the same level's
   exponentials: the maximum and the division are exact, so bit for bit, on rows of 1..300
   scores (every tail length), with a NaN passed over by the maximum (and kept in its place),
   and nothing past the row written. */
static void test_softmax_levels(void)
{
    enum { N = 300 };
    float x[N + 1], want[N + 1], got[N + 1];
    char detail[200];
    int level, n, i, tested = 0;
    for (level = GEMINI__CPU_SCALAR + 1; level <= GEMINI__CPU_TOP; level++) {
        gemini__exp_sum_fn exp_sum;
        gemini__softmax_fn softmax;
        int same = 1, kept = 1;
        gemini__cpu_limit = level;
        exp_sum = gemini__cpu_level() == level ? gemini__select_exp_sum() : NULL;
        softmax = gemini__cpu_level() == level ? gemini__select_softmax() : NULL;
        gemini__cpu_limit = GEMINI__CPU_TOP;
        if (softmax == NULL || softmax == gemini__softmax) continue;
        tested++;
        for (n = 1; n <= N; n++) {
            float max = -INFINITY, want_sum, got_sum;
            for (i = 0; i < n; i++) x[i] = rng_uniform(-30, 30) * (i % 7 == 0 ? 4.0f : 1.0f);
            if (n % 5 == 0) x[n / 2] = (float)NAN;
            for (i = 0; i < n; i++)
                if (x[i] > max) max = x[i];
            memcpy(want, x, sizeof(float) * (size_t)n);
            memcpy(got, x, sizeof(float) * (size_t)n);
            got[n] = 12345.0f;
            want_sum = exp_sum(want, n, max);
            for (i = 0; i < n; i++) want[i] /= want_sum;
            got_sum = softmax(got, n);
            kept &= got[n] == 12345.0f;
            same &= memcmp(&want_sum, &got_sum, sizeof want_sum) == 0 &&
                    memcmp(want, got, sizeof(float) * (size_t)n) == 0;
        }
        sprintf(detail, "%s, rows of 1..%d scores, tail %s", level_name(level), N,
                kept ? "untouched" : "WRITTEN");
        check(same && kept, "softmax: vector maximum and division give the scalar loops' bits",
              detail);
    }
    if (tested == 0) printf("skip vector softmax: no vector level here\n");
}

/* The activation quantiser of every level gives the scalar one's bytes: random blocks, and
   blocks of exact halves (roundf goes away from zero), infinities, NaN, zeros and a block
   whose scale underflows f16. */
static void test_quantize_levels(void)
{
    enum { BLOCKS = 64 };
    float *x = (float *)malloc(sizeof(float) * BLOCKS * 32);
    uint8_t want[BLOCKS * 34], got[BLOCKS * 34];
    int level, i;
    for (i = 0; i < BLOCKS * 32; i++) {
        int block = i / 32;
        if (block < 40) x[i] = rng_uniform(-3, 3) * (float)(1 << (block % 8));
        else if (block < 48) x[i] = (float)((int)(rng_unit() * 254) - 127) + 0.5f; /* halves */
        else if (block < 52) x[i] = (i % 32 == 0) ? 127.0f : (float)((i % 64) - 32) * 0.5f;
        else if (block < 54) x[i] = (i % 7 == 0) ? (float)INFINITY : rng_uniform(-1, 1);
        else if (block < 56) x[i] = (i % 5 == 0) ? (float)NAN : rng_uniform(-1, 1);
        else if (block < 58) x[i] = (i % 3 == 0) ? -(float)INFINITY : rng_uniform(-9, 9);
        else if (block < 60) x[i] = 0.0f;
        else x[i] = rng_uniform(-1, 1) * 1e-9f;
    }
    gemini__quantize_q8_0(x, want, BLOCKS);
    for (level = GEMINI__CPU_SCALAR + 1; level <= GEMINI__CPU_TOP; level++) {
        gemini__quantize_fn quantize;
        gemini__cpu_limit = level;
        quantize = gemini__cpu_level() == level ? gemini__select_quantize() : NULL;
        gemini__cpu_limit = GEMINI__CPU_TOP;
        if (quantize == NULL) continue;
        memset(got, 0xee, sizeof got);
        quantize(x, got, BLOCKS);
        check(memcmp(want, got, sizeof want) == 0,
              "activation quantiser gives the scalar bytes (halves, inf, NaN, zeros, tiny)",
              level_name(level));
    }
    free(x);
}

/* Whether a level's q8_0/q4_0 kernels sum each block as one exact int32 (the AMX level). */
static int exact_block_level(int level)
{
#if defined(__aarch64__)
    (void)level;
    return 0;
#else
    return level == GEMINI__CPU_AMX;
#endif
}

/* The exact-block formula, written out: per block in order, acc = fma(isum, d_w * d_x, acc). */
static float exact_block_dot(gemini_type type, const uint8_t *w, const uint8_t *x, int n)
{
    float acc = 0;
    int block, j;
    for (block = 0; block < n / 32; block++) {
        const uint8_t *wb = w + block * (type == GEMINI_TYPE_Q8_0 ? 34 : 18), *xb = x + block * 34;
        int32_t isum = 0;
        for (j = 0; j < 32; j++) {
            int wv = type == GEMINI_TYPE_Q8_0 ? (int8_t)wb[2 + j]
                                              : ((wb[2 + j % 16] >> (j < 16 ? 0 : 4)) & 15) - 8;
            isum += wv * (int8_t)xb[2 + j];
        }
        acc = fmaf((float)isum, gemini_f16_to_f32((uint16_t)(wb[0] | wb[1] << 8)) *
                                    gemini_f16_to_f32((uint16_t)(xb[0] | xb[1] << 8)),
                   acc);
    }
    return acc;
}

/* Every compiled kernel level against the scalar kernels, on sizes that are a multiple of the
   q8_0 block but not of the vector width, and on odd ones for the float types. */
static void test_kernels(void)
{
    static const int sizes[] = {7, 32, 33, 64, 96, 160, 672, 1000, 1024, 1031};
    static const int block_sizes[] = {32, 64, 96, 160, 672, 1024};
    char detail[200];
    float *w = (float *)malloc(sizeof(float) * 1100), *x = (float *)malloc(sizeof(float) * 1100);
    float *y0 = (float *)malloc(sizeof(float) * 1100), *y1 = (float *)malloc(sizeof(float) * 1100);
    uint8_t *wq = (uint8_t *)malloc(8192), *xq = (uint8_t *)malloc(8192);
    uint8_t *w1 = (uint8_t *)malloc(8192), *x1 = (uint8_t *)malloc(8192);
    const gemini__dot_fn *first_dot = NULL; /* the lowest SIMD level: AVX2 or NEON */
    int level, type, s, i, k;
    for (level = GEMINI__CPU_SCALAR + 1; level <= GEMINI__CPU_TOP; level++) {
        gemini__axpy_fn axpy;
        const gemini__dot2x2_fn *dot2x2;
        const gemini__dot_fn *dot = level_kernels(level, &axpy, &dot2x2);
        const char *name = level_name(level);
        if (dot == NULL) {
            sprintf(detail, "%s kernels not built or not supported by this CPU", name);
            check(1, detail, "");
            continue;
        }
        if (level == GEMINI__CPU_SCALAR + 1) first_dot = dot;

        /* float sums: within 1e-5 of the sum of |products| */
        for (type = 0; type < GEMINI_TYPE_COUNT; type++) {
            double worst = 0;
            for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++) {
                int n = sizes[s];
                double magnitude = 0, a, b;
                const void *xp = x;
                if (gemini_type_row_bytes((gemini_type)type, n) < 0) continue;
                for (i = 0; i < n; i++) {
                    w[i] = rng_uniform(-2, 2);
                    x[i] = rng_uniform(-2, 2);
                }
                if (type == GEMINI_TYPE_Q8_0 || type == GEMINI_TYPE_Q4_0) {
                    gemini_quantize_row(GEMINI_TYPE_Q8_0, x, xq, n);
                    xp = xq;
                }
                gemini_quantize_row((gemini_type)type, w, wq, n);
                for (i = 0; i < n; i++) magnitude += fabs(w[i] * x[i]);
                a = gemini__dot_scalar[type](wq, xp, n);
                b = dot[type](wq, xp, n);
                if (fabs(a - b) / magnitude > worst) worst = fabs(a - b) / magnitude;
            }
            sprintf(detail, "%s %s, worst relative difference %.2g (limit 1e-5)", name,
                    gemini_type_name((gemini_type)type), worst);
            check(worst < 1e-5, "kernel dot equals scalar dot (n = 7..1031)", detail);
        }

        /* integer sums: exact */
        for (type = GEMINI_TYPE_Q8_0; type <= GEMINI_TYPE_Q4_0; type++) {
            int q4 = type == GEMINI_TYPE_Q4_0, exact = 1;
            for (s = 0; s < (int)(sizeof block_sizes / sizeof block_sizes[0]); s++) {
                int n = block_sizes[s];
                for (k = 0; k < 4; k++) {
                    unit_scale_row(wq, n, q4, 0);
                    unit_scale_row(xq, n, 0, 1);
                    exact &= dot[type](wq, xq, n) == gemini__dot_scalar[type](wq, xq, n);
                }
            }
            sprintf(detail, "%s %s", name, gemini_type_name((gemini_type)type));
            check(exact, "integer dot is exact (unit scales, n = 32..1024)", detail);
        }

        /* the 2x2 kernels give the one-row kernel's bits (float types: any length, f32
           activations; quantised: whole blocks, q8_0 activations) */
        for (type = GEMINI_TYPE_F32; type <= GEMINI_TYPE_Q4_0; type++) {
            static const int block_counts[] = {1, 2, 3, 4, 5, 21, 31};
            static const int float_lengths[] = {1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 1000};
            int quantised = type == GEMINI_TYPE_Q8_0 || type == GEMINI_TYPE_Q4_0;
            int n_sizes = quantised ? 7 : 11;
            int same = 1;
            if (dot2x2[type] == NULL) continue;
            for (s = 0; s < n_sizes; s++) {
                int n = quantised ? 32 * block_counts[s] : float_lengths[s];
                float out[4];
                for (k = 0; k < 2; k++) {
                    for (i = 0; i < n; i++) w[i] = rng_uniform(-2, 2);
                    gemini_quantize_row((gemini_type)type, w, k ? w1 : wq, n);
                    for (i = 0; i < n; i++) x[i] = rng_uniform(-2, 2);
                    if (quantised) gemini_quantize_row(GEMINI_TYPE_Q8_0, x, k ? x1 : xq, n);
                    else memcpy(k ? x1 : xq, x, sizeof(float) * (size_t)n);
                }
                dot2x2[type](wq, w1, xq, x1, n, out);
                same &= out[0] == dot[type](wq, xq, n) && out[1] == dot[type](wq, x1, n) &&
                        out[2] == dot[type](w1, xq, n) && out[3] == dot[type](w1, x1, n);
            }
            sprintf(detail, "%s %s", name, gemini_type_name((gemini_type)type));
            check(same, "2x2 kernel gives the one-row kernel's bits", detail);
        }

        /* VNNI's vpdpbusd makes the same int32 lanes as AVX2's vpmaddubsw + vpmaddwd, and
           SDOT the same as NEON's vmull + vmlal + pairwise additions; the AMX level sums each
           block exactly instead: acc = fma(isum, d_w * d_x, acc), block by block */
        if (first_dot != NULL && level > GEMINI__CPU_SCALAR + 1) {
            int same = 1, exact = exact_block_level(level);
            for (type = GEMINI_TYPE_Q8_0; type <= GEMINI_TYPE_Q4_0; type++)
                for (s = 0; s < (int)(sizeof block_sizes / sizeof block_sizes[0]); s++) {
                    int n = block_sizes[s];
                    for (i = 0; i < n; i++) w[i] = rng_uniform(-2, 2);
                    gemini_quantize_row((gemini_type)type, w, wq, n);
                    for (i = 0; i < n; i++) x[i] = rng_uniform(-2, 2);
                    gemini_quantize_row(GEMINI_TYPE_Q8_0, x, xq, n);
                    same &= dot[type](wq, xq, n) ==
                            (exact ? exact_block_dot((gemini_type)type, wq, xq, n)
                                   : first_dot[type](wq, xq, n));
                }
            /* and f32 everywhere: the 512-bit form keeps the 256-bit kernel's accumulators */
            for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++) {
                int n = sizes[s];
                for (i = 0; i < n; i++) {
                    w[i] = rng_uniform(-2, 2);
                    x[i] = rng_uniform(-2, 2);
                }
                same &= dot[GEMINI_TYPE_F32](w, x, n) == first_dot[GEMINI_TYPE_F32](w, x, n);
            }
            if (exact)
                sprintf(detail, "q8_0/q4_0 kernels sum each block exactly, then fma by block; "
                                "f32 gives the %s kernel's bits", level_name(1));
            else
                sprintf(detail, "q8_0/q4_0/f32 kernels give the %s kernels' bits",
                        level_name(1));
            check(same, detail, name);
        }


        /* axpy: one rounding (FMA) against two */
        {
            double worst = 0;
            for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++) {
                int n = sizes[s];
                float a = rng_uniform(-2, 2);
                for (i = 0; i < n + 4; i++) {
                    x[i] = rng_uniform(-2, 2);
                    y0[i] = y1[i] = rng_uniform(-2, 2);
                }
                gemini__axpy(y0, a, x, n);
                axpy(y1, a, x, n);
                for (i = 0; i < n; i++) {
                    double d = fabs(y0[i] - y1[i]) / (fabs(y0[i]) + fabs(a * x[i]) + 1e-30);
                    if (d > worst) worst = d;
                }
                for (; i < n + 4; i++)
                    if (y1[i] != y0[i]) worst = 1; /* wrote past the end */
            }
            sprintf(detail, "%s, worst relative difference %.2g (limit 1e-6)", name, worst);
            check(worst < 1e-6, "axpy equals scalar axpy (n = 7..1031)", detail);
        }

        /* axpy from f16 and bf16 rows (16-bit KV cache values): the same, and nothing
           written past the end */
        for (type = GEMINI_TYPE_F16; type <= GEMINI_TYPE_BF16; type++) {
            const gemini__axpy_half_fn *axpy16 = level_axpy16(level);
            double worst = axpy16 == NULL ? 1 : 0;
            for (s = 0; axpy16 != NULL && s < (int)(sizeof sizes / sizeof sizes[0]); s++) {
                int n = sizes[s];
                float a = rng_uniform(-2, 2);
                for (i = 0; i < n + 4; i++) {
                    x[i] = rng_uniform(-2, 2);
                    y0[i] = y1[i] = rng_uniform(-2, 2);
                }
                gemini_quantize_row((gemini_type)type, x, wq, n);
                gemini__axpy16_scalar[type](y0, a, wq, n);
                axpy16[type](y1, a, wq, n);
                for (i = 0; i < n; i++) {
                    double d = fabs(y0[i] - y1[i]) / (fabs(y0[i]) + fabs(a * x[i]) + 1e-30);
                    if (d > worst) worst = d;
                }
                for (; i < n + 4; i++)
                    if (y1[i] != y0[i]) worst = 1;
            }
            sprintf(detail, "%s %s, worst relative difference %.2g (limit 1e-6)", name,
                    gemini_type_name((gemini_type)type), worst);
            check(worst < 1e-6, "axpy of a 16-bit row equals the scalar one (n = 7..1031)",
                  detail);
        }
    }

    /* the scalar f16/bf16 axpy is y + a * (the row converted), rounded once or twice */
    for (type = GEMINI_TYPE_F16; type <= GEMINI_TYPE_BF16; type++) {
        double worst = 0;
        float a = 0.75f;
        for (i = 0; i < 1000; i++) {
            x[i] = rng_uniform(-3, 3);
            y0[i] = y1[i] = rng_uniform(-1, 1);
        }
        gemini_quantize_row((gemini_type)type, x, wq, 1000);
        gemini_dequantize_row((gemini_type)type, wq, w, 1000);
        gemini__axpy16_scalar[type](y0, a, wq, 1000);
        for (i = 0; i < 1000; i++) {
            double d = fabs(y0[i] - (y1[i] + (double)a * w[i])) / (fabs(y0[i]) + 1e-30);
            if (d > worst) worst = d;
        }
        sprintf(detail, "%s, worst relative difference %.2g (limit 1e-6)",
                gemini_type_name((gemini_type)type), worst);
        check(worst < 1e-6, "scalar axpy of a 16-bit row adds a * the converted row", detail);
    }
    free(w); free(x); free(y0); free(y1); free(wq); free(xq); free(w1); free(x1);
}

/* A matmul of an odd number of rows and tokens (41, then 1 and 3, which take the
   matrix-vector split), at every kernel level, split into 1, 3 and 24 parts: each output is
   the level's one-row dot product, bit for bit. 149 rows (two whole 64-row tile calls and 21
   rows) and 41 tokens make the VNNI tile kernels' 4 x 4, 4 x 1, 1 x 4 and 1 x 1 shapes all
   run, and the AMX kernel's 16 x 16 tiles with 16-row blocks and rows and tokens left over;
   288 columns are an odd number of blocks, enough (9) for the AMX kernel's ring of four tiles
   to go round twice. */
static void test_matmul(void)
{
    enum { ROWS = 149, COLS = 288, TOKENS = 41 };
    char detail[200];
    float *m = (float *)malloc(sizeof(float) * ROWS * COLS);
    float *xf = (float *)malloc(sizeof(float) * TOKENS * COLS);
    float y[TOKENS * ROWS], z[TOKENS * ROWS], u[TOKENS * ROWS];
    static uint8_t scratch_room[GEMINI__TILE_SCRATCH(COLS) + 64];
    static float x_scales[GEMINI__X_SCALES_BYTES(TOKENS, COLS) / 4];
    uint8_t *scratch = scratch_room + ((64 - ((uintptr_t)scratch_room & 63)) & 63);
    uint8_t *wq = (uint8_t *)malloc(ROWS * COLS * 4), *xq = (uint8_t *)malloc(TOKENS * COLS * 4);
    static const int token_counts[] = {TOKENS, 1, 3}; /* 1 and 3: matrix-vector ranges */
    int level, type, i, r, t, n;
    for (i = 0; i < ROWS * COLS; i++) m[i] = rng_uniform(-1, 1);
    for (i = 0; i < TOKENS * COLS; i++) xf[i] = rng_uniform(-1, 1);
    for (level = GEMINI__CPU_SCALAR; level <= GEMINI__CPU_TOP; level++) {
        gemini__axpy_fn axpy;
        const gemini__dot2x2_fn *dot2x2;
        const gemini__dot_fn *dot = level_kernels(level, &axpy, &dot2x2);
        const gemini__tile_fn *tile = level_tile(level);
        if (dot == NULL) continue;
        for (type = 0; type < GEMINI_TYPE_COUNT; type++) {
            gemini__matmul_task task;
            int64_t row_bytes = gemini_type_row_bytes((gemini_type)type, COLS);
            int quantised = type == GEMINI_TYPE_Q8_0 || type == GEMINI_TYPE_Q4_0, same = 1;
            int64_t x_stride = quantised ? COLS / 32 * 34 : COLS * 4;
            for (r = 0; r < ROWS; r++)
                gemini_quantize_row((gemini_type)type, m + r * COLS, wq + r * row_bytes, COLS);
            for (t = 0; t < TOKENS; t++) {
                if (quantised)
                    gemini_quantize_row(GEMINI_TYPE_Q8_0, xf + t * COLS, xq + t * x_stride, COLS);
                else
                    memcpy(xq + t * x_stride, xf + t * COLS, sizeof(float) * COLS);
            }
            memset(&task, 0, sizeof task);
            task.dot = dot[type];
            task.dot2x2 = dot2x2[type];
            task.tile = tile[type];
            task.tile_rows = gemini__tile_rows(tile, row_bytes);
            task.w = wq;
            task.rows = ROWS;
            task.cols = COLS;
            task.row_bytes = row_bytes;
            task.x = xq;
            task.x_stride = x_stride;
            task.y_stride = ROWS;
            for (n = 0; n < (int)(sizeof token_counts / sizeof token_counts[0]); n++) {
                int n_tokens = token_counts[n];
                task.y = y;
                task.n_tokens = n_tokens;
                task.scratch = NULL;
                task.scratch_bytes = 0;
                task.x_scales = NULL;
                gemini__matmul_worker(&task, 0, 1, 0);
                /* 3 parts, the tile kernels preparing activations in scratch this time, and the
                   AMX kernel finding the activations' scales as floats */
                task.y = z;
                task.scratch = scratch;
                task.scratch_bytes = GEMINI__TILE_SCRATCH(COLS);
                for (t = 0; quantised && t < TOKENS; t++)
                    for (i = 0; i < COLS / 32; i++)
                        x_scales[GEMINI__X_SCALE(t, i, COLS / 32)] =
                            gemini_f16_to_f32(gemini__read_u16(xq + t * x_stride + i * 34));
                task.x_scales = quantised ? x_scales : NULL;
                for (i = 0; i < 3; i++) gemini__matmul_worker(&task, i, 3, 0);
                /* 24 parts (3 threads' worth): matrices this small keep the 16-row split */
                task.y = u;
                for (i = 0; i < 24; i++) gemini__matmul_worker(&task, i, 24, 0);
                for (t = 0; t < n_tokens; t++)
                    for (r = 0; r < ROWS; r++)
                        same &= y[t * ROWS + r] == dot[type](wq + r * row_bytes, xq + t * x_stride,
                                                             COLS) &&
                                z[t * ROWS + r] == y[t * ROWS + r] &&
                                u[t * ROWS + r] == y[t * ROWS + r];
                sprintf(detail, "%s %s%s, %d rows x %d tokens", level_name(level),
                        gemini_type_name((gemini_type)type), task.tile != NULL ? " (tiles)" : "",
                        ROWS, n_tokens);
                check(same, "matmul (1, 3 and 24 parts) gives the one-row kernel's bits", detail);
                same = 1;
            }
        }
    }
    free(m); free(xf); free(wq); free(xq);
}

static gemini_result load_variant(const config *c, const weights *w, const char *skip,
                                  const char *misshape, gemini_model **model)
{
    size_t size;
    void *raw;
    uint8_t *file = build_file(c, w, GEMINI_TYPE_F32, skip, misshape, &size, &raw);
    gemini_result r = gemini_model_load_memory(file, size, model);
    if (*model) { /* keep the bytes alive: copy them into a block the model owns */
        gemini_model_free(*model);
        r = GEMINI_ERR_COUNT;
    }
    free(raw);
    return r;
}

static void test_reader(void)
{
    config c = config_gemma3();
    weights w;
    size_t size, i;
    void *raw;
    uint8_t *file, *copy;
    gemini_model *model = NULL;
    gemini_result r;
    char detail[300];
    int bad, trial;

    make_weights(&c, &w);
    file = build_file(&c, &w, GEMINI_TYPE_Q8_0, NULL, NULL, &size, &raw);
    r = gemini_model_load_memory(file, size, &model);
    snprintf(detail, sizeof detail, "%.200s", r == GEMINI_OK ? "" : gemini_last_error());
    check(r == GEMINI_OK, "reader accepts a valid file", detail);
    if (r == GEMINI_OK) {
        gemini_tensor_info info;
        gemini_meta_info meta;
        gemini_tokenizer_desc tok;
        const char *name = NULL;
        size_t length = 0;
        int64_t value = 0;
        float f = 0.0f;
        check(gemini_model_vocab_size(model) == 67 &&
              strcmp(gemini_model_architecture(model), "gemma3") == 0 &&
              gemini_model_get_hparams(model)->num_kv_heads == 2, "accessors", "");
        check(gemini_model_meta_i64(model, "model.hidden_size", &value) == GEMINI_OK &&
              value == 64 && gemini_model_meta_f32(model, "model.rope_scale", &f) == GEMINI_OK &&
              f == 8.0f && gemini_model_meta_str(model, "general.name", &name, &length) ==
              GEMINI_OK && length == 15 && memcmp(name, "tiny test model", 15) == 0 &&
              gemini_model_meta_i64(model, "general.name", &value) == GEMINI_ERR_FORMAT &&
              gemini_model_meta_i64(model, "nope", &value) == GEMINI_ERR_MISSING_KEY,
              "typed metadata lookups", "");
        check(gemini_model_meta_count(model) == 38 &&
              gemini_model_meta_at(model, 0, &meta) == GEMINI_OK && meta.key_length == 20 &&
              meta.type == GEMINI_META_STRING &&
              gemini_model_meta_at(model, 38, &meta) == GEMINI_ERR_INVALID_ARGUMENT,
              "metadata iterator", "");
        check(gemini_model_tensor_count(model) == 2 + 3 * 13 &&
              gemini_model_tensor_find(model, "blk.2.ffn_down", &info) == GEMINI_OK &&
              info.type == GEMINI_TYPE_Q8_0 && info.n_dims == 2 && info.dims[0] == 64 &&
              info.dims[1] == 96 && info.size == 64 * 3 * 34 && info.offset % 64 == 0 &&
              gemini_model_tensor_at(model, 0, &info) == GEMINI_OK && info.name_length == 10,
              "tensor iterator and lookup", "");
        memset(&tok, 0, sizeof tok);
        check(gemini_model_tokenizer_desc(model, &tok) == GEMINI_OK && tok.n_pieces == 8 &&
              tok.piece_lengths[7] == 3 && memcmp(tok.pieces[6], "ab", 2) == 0 &&
              tok.scores[5] == -2.0f && tok.types[3] == 2 && tok.bos_id == 2 &&
              tok.eot_id == -1 && tok.escape_whitespaces == 1 && tok.add_dummy_prefix == 0 &&
              tok.charsmap == NULL, "tokenizer arrays", "");
        check(gemini_model_verify(model) == GEMINI_OK, "verify passes on a good file", "");
        gemini_model_free(model);
    }

    /* the unaligned path copies; a file path maps */
    copy = (uint8_t *)malloc(size + 1);
    memcpy(copy + 1, file, size);
    r = gemini_model_load_memory(copy + 1, size, &model);
    check(r == GEMINI_OK, "unaligned memory block is accepted (copied)",
          r ? gemini_last_error() : "");
    gemini_model_free(model);
    {
        FILE *out = fopen("build/test_core_model.gemini", "wb");
        if (out) {
            fwrite(file, 1, size, out);
            fclose(out);
        }
        r = gemini_model_load("build/test_core_model.gemini", &model);
        check(r == GEMINI_OK, "load from a path (mmap)", r ? gemini_last_error() : "");
        gemini_model_free(model);
        remove("build/test_core_model.gemini");
        r = gemini_model_load("build/does-not-exist.gemini", &model);
        check(r == GEMINI_ERR_IO && model == NULL, "missing file is an I/O error", "");
    }

    /* truncations */
    bad = 0;
    for (i = 0; i < size; i += (i < 200 ? 1 : 97)) {
        r = gemini_model_load_memory(file, i, &model);
        if (r != GEMINI_ERR_FORMAT || model != NULL) bad++;
        gemini_model_free(model);
    }
    sprintf(detail, "%d wrong", bad);
    check(bad == 0, "every truncation is refused as FORMAT", detail);

    /* a flipped byte in the directory is a checksum error; in the data, verify finds it */
    memcpy(copy, file, size);
    copy[200] ^= 0x10;
    check(gemini_model_load_memory(copy, size, &model) == GEMINI_ERR_CHECKSUM,
          "flipped directory byte -> CHECKSUM", "");
    memcpy(copy, file, size);
    copy[size - 5] ^= 0x01;
    r = gemini_model_load_memory(copy, size, &model);
    check(r == GEMINI_OK && gemini_model_verify(model) == GEMINI_ERR_CHECKSUM &&
          strstr(gemini_last_error(), "token_embd") == NULL,
          "flipped data byte loads; verify -> CHECKSUM naming the tensor", gemini_last_error());
    gemini_model_free(model);
    memcpy(copy, file, size);
    copy[0] = 'X';
    check(gemini_model_load_memory(copy, size, &model) == GEMINI_ERR_FORMAT, "bad magic", "");
    memcpy(copy, file, size);
    copy[4] = 2;
    check(gemini_model_load_memory(copy, size, &model) == GEMINI_ERR_UNSUPPORTED,
          "unknown version is refused", "");
    memcpy(copy, file, size);
    copy[12] = 1;
    check(gemini_model_load_memory(copy, size, &model) == GEMINI_ERR_FORMAT,
          "unknown flag is refused", "");

    /* random corruption of the directory with the CRC fixed up: never a crash or a success
       that reads out of bounds (run under -fsanitize=address to see the latter) */
    {
        uint64_t dir_size;
        int accepted = 0;
        memcpy(&dir_size, file + 32, 8);
        for (trial = 0; trial < 3000; trial++) {
            uint32_t crc;
            int flips = 1 + (int)(rng_unit() * 3), k;
            memcpy(copy, file, size);
            for (k = 0; k < flips; k++) {
                size_t at = 64 + (size_t)(rng_unit() * (double)dir_size);
                copy[at] ^= (uint8_t)(1u << (int)(rng_unit() * 8));
            }
            crc = gemini_crc32(0, copy + 64, (size_t)dir_size);
            memcpy(copy + 56, &crc, 4);
            if (gemini_model_load_memory(copy, size, &model) == GEMINI_OK) accepted++;
            gemini_model_free(model);
        }
        sprintf(detail, "%d of 3000 still valid (flips inside values or names)", accepted);
        check(1, "3000 corrupted directories handled", detail);
    }
    free(copy);
    free(raw);

    /* missing keys and tensors are named; misshapen tensors are named */
    {
        static const char *keys[] = {"general.architecture", "model.vocab_size",
                                     "model.qk_norm", "model.layer_types",
                                     "model.rope_theta_local", "tokenizer.scores"};
        int k;
        for (k = 0; k < (int)(sizeof keys / sizeof keys[0]); k++) {
            r = load_variant(&c, &w, keys[k], NULL, &model);
            snprintf(detail, sizeof detail, "%s -> %.200s", keys[k], gemini_last_error());
            check(r == GEMINI_ERR_MISSING_KEY && strstr(gemini_last_error(), keys[k]) != NULL,
                  "missing key is refused, naming it", detail);
        }
        r = load_variant(&c, &w, "blk.1.attn_k_norm", NULL, &model);
        check(r == GEMINI_ERR_MISSING_KEY &&
              strstr(gemini_last_error(), "blk.1.attn_k_norm") != NULL,
              "missing tensor is refused, naming it", gemini_last_error());
        r = load_variant(&c, &w, NULL, "blk.2.ffn_up", &model);
        check(r == GEMINI_ERR_FORMAT && strstr(gemini_last_error(), "blk.2.ffn_up") != NULL,
              "misshapen tensor is refused, naming it", gemini_last_error());
    }
    free_weights(&c, &w);
}

/* The KV cache type of the contexts run_model creates. */
static gemini_type run_kv_type = GEMINI_TYPE_F32;

/* Decodes tokens in steps of `step` (0: all at once) with all logits. */
static gemini_result run_model(const gemini_model *model, int n_threads, int n_batch, int n_ctx,
                               const int32_t *tokens, int T, int step, float *logits)
{
    gemini_context_params params = gemini_context_default_params();
    gemini_context *ctx;
    gemini_result r;
    int vocab = gemini_model_vocab_size(model), t;
    params.kv_type = run_kv_type;
    params.n_threads = n_threads;
    params.n_batch = n_batch;
    params.n_ctx = n_ctx;
    r = gemini_context_create(model, &params, &ctx);
    if (r != GEMINI_OK) return r;
    if (step == 0) step = T;
    for (t = 0; t < T && r == GEMINI_OK; t += step) {
        int n = T - t < step ? T - t : step;
        r = gemini_decode(ctx, tokens + t, n, logits + (int64_t)t * vocab, 1);
    }
    gemini_context_free(ctx);
    return r;
}

static int argmax(const float *v, int n)
{
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Each kernel level forced in turn: batched prefill equals token by token, bit for bit, and
   the logits are close to `best` (the best level's) with the same greedy tokens. */
static void check_levels(const gemini_model *model, const char *label, gemini_type type,
                         const int32_t *tokens, int T, const float *best, float *a, float *b)
{
    int vocab = gemini_model_vocab_size(model), level, t;
    char detail[200];
    for (level = GEMINI__CPU_SCALAR; level <= GEMINI__CPU_TOP; level++) {
        gemini__axpy_fn axpy;
        const gemini__dot2x2_fn *dot2x2;
        int same_tokens = 1, deterministic;
        double e;
        if (level_kernels(level, &axpy, &dot2x2) == NULL) continue;
        gemini__cpu_limit = level;
        run_model(model, 2, 64, 128, tokens, T, 0, a);
        run_model(model, 3, 64, 128, tokens, T, 1, b);
        gemini__cpu_limit = GEMINI__CPU_TOP;
        deterministic = memcmp(a, b, sizeof(float) * (size_t)T * vocab) == 0;
        e = relative_error(a, best, (int64_t)T * vocab);
        for (t = 0; t < T; t++)
            same_tokens &= argmax(a + (int64_t)t * vocab, vocab) ==
                           argmax(best + (int64_t)t * vocab, vocab);
        sprintf(detail, "%s %s, %s kernels, relative difference %.2g", label,
                gemini_type_name(type), level_name(level), e);
        /* q8_0/q4_0 quantise activations: a last-bit difference can move one value to the
           next q8 step, which the tiny random model then amplifies */
        check(e < (type >= GEMINI_TYPE_Q8_0 ? 3e-2 : 1e-5) && same_tokens,
              "each kernel level gives the best level's logits and greedy tokens", detail);
        check(deterministic, "batched (2 threads) equals token by token (3 threads)", detail);
    }
}

/* An f16 and a bf16 KV cache: logits close to the f32 cache's (f32_logits: batched, 1
   thread), and with each cache type and kernel level a batch (2 threads) equal to token by
   token (3 threads) and to small batches through the sliding-window ring, bit for bit. The
   random tiny models amplify the rounding of keys and values (about 4.9e-4 for f16, 3.9e-3 for
   bf16) some tenfold. */
static void check_kv_types(const gemini_model *model, const char *label, const int32_t *tokens,
                           int T, const float *f32_logits, float *a, float *b)
{
    static const gemini_type kv_types[2] = {GEMINI_TYPE_F16, GEMINI_TYPE_BF16};
    static const double limits[2] = {1e-2, 6e-2};
    int vocab = gemini_model_vocab_size(model), k, level;
    size_t cells = (size_t)T * vocab;
    char detail[300];
    double e;
    for (k = 0; k < 2; k++) {
        run_kv_type = kv_types[k];
        run_model(model, 1, 64, 128, tokens, T, 0, a);
        e = relative_error(a, f32_logits, (int64_t)cells);
        sprintf(detail, "%s, %s cache, relative difference %.2g (limit %.2g)", label,
                gemini_type_name(kv_types[k]), e, limits[k]);
        check(e < limits[k] && e > 0, "a 16-bit KV cache moves the logits a little", detail);
        for (level = GEMINI__CPU_SCALAR; level <= GEMINI__CPU_TOP; level++) {
            gemini__axpy_fn axpy;
            const gemini__dot2x2_fn *dot2x2;
            int same;
            if (level_kernels(level, &axpy, &dot2x2) == NULL) continue;
            gemini__cpu_limit = level;
            run_model(model, 2, 64, 128, tokens, T, 0, a);
            run_model(model, 3, 64, 128, tokens, T, 1, b);
            same = memcmp(a, b, sizeof(float) * cells) == 0;
            run_model(model, 1, 3, 128, tokens, T, 2, b);
            gemini__cpu_limit = GEMINI__CPU_TOP;
            same &= memcmp(a, b, sizeof(float) * cells) == 0;
            sprintf(detail, "%s, %s cache, %s kernels", label, gemini_type_name(kv_types[k]),
                    level_name(level));
            check(same, "batched = token by token = n_batch 3 through the ring, bit for bit",
                  detail);
        }
    }
    run_kv_type = GEMINI_TYPE_F32;
}

/* gemini_decode_each: three contexts at different positions (one past the sliding window, so
   its local layers wrap their ring) each take their next token in one step, lead in the
   middle, three steps running; every row must equal `batched` (the whole prompt decoded in one
   context, known equal to token by token), bit for bit, and each context must advance by one.
   Then the refusals, which change no context. */
static void check_decode_each(const gemini_model *model, const char *label,
                              const int32_t *tokens, int T, const float *batched)
{
    int vocab = gemini_model_vocab_size(model), i, step, same = 1, positions = 1;
    int prefix[3];
    gemini_context *contexts[3] = {NULL, NULL, NULL}, *twice[2], *small = NULL;
    gemini_context_params params = gemini_context_default_params();
    float *rows = (float *)malloc(sizeof(float) * 3 * (size_t)vocab);
    int32_t next[3], bad[3];
    gemini_result r = GEMINI_OK;
    char detail[200];

    prefix[0] = 4, prefix[1] = T - 3, prefix[2] = 0;
    params.kv_type = run_kv_type;
    params.n_threads = 2;
    params.n_batch = 64;
    params.n_ctx = 128;
    for (i = 0; i < 3 && r == GEMINI_OK; i++) {
        r = gemini_context_create(model, &params, &contexts[i]);
        if (r == GEMINI_OK && prefix[i] > 0)
            r = gemini_decode(contexts[i], tokens, prefix[i], NULL, 0);
    }
    for (step = 0; step < 3 && r == GEMINI_OK; step++) {
        for (i = 0; i < 3; i++) next[i] = tokens[prefix[i] + step];
        r = gemini_decode_each(contexts, 3, next, rows);
        for (i = 0; i < 3 && r == GEMINI_OK; i++) {
            same &= memcmp(rows + (size_t)i * vocab,
                           batched + (size_t)(prefix[i] + step) * vocab,
                           sizeof(float) * (size_t)vocab) == 0;
            positions &= gemini_context_position(contexts[i]) == prefix[i] + step + 1;
        }
    }
    snprintf(detail, sizeof detail, "%s: %.80s", label, r ? gemini_last_error() : "");
    check(r == GEMINI_OK && same && positions,
          "gemini_decode_each: each row equals its context's own decode, bit for bit", detail);

    /* refusals: a context twice, a token out of range, no contexts, a mismatched context,
       a full one; none moves a position */
    twice[0] = twice[1] = contexts[0];
    bad[0] = tokens[0], bad[1] = vocab, bad[2] = tokens[0];
    same = gemini_decode_each(twice, 2, bad, NULL) == GEMINI_ERR_INVALID_ARGUMENT;
    same &= gemini_decode_each(contexts, 3, bad, NULL) == GEMINI_ERR_INVALID_ARGUMENT;
    same &= gemini_decode_each(contexts, 0, bad, NULL) == GEMINI_ERR_INVALID_ARGUMENT;
    same &= gemini_decode_each(NULL, 1, bad, NULL) == GEMINI_ERR_INVALID_ARGUMENT;
    params.n_ctx = 2;
    params.n_batch = 2;
    if (gemini_context_create(model, &params, &small) == GEMINI_OK) {
        twice[0] = contexts[0], twice[1] = small;
        bad[1] = tokens[0];
        same &= gemini_decode_each(twice, 2, bad, NULL) == GEMINI_ERR_INVALID_ARGUMENT;
        same &= gemini_decode(small, tokens, 2, NULL, 0) == GEMINI_OK;
        twice[0] = small;
        same &= gemini_decode_each(twice, 1, bad, NULL) == GEMINI_ERR_CONTEXT_FULL;
    } else {
        same = 0;
    }
    for (i = 0; i < 3; i++) same &= gemini_context_position(contexts[i]) == prefix[i] + 3;
    check(same, "gemini_decode_each refuses a repeated context, a bad token, no contexts, "
          "a mismatched or full context, and changes nothing", label);
    gemini_context_free(small);
    for (i = 0; i < 3; i++) gemini_context_free(contexts[i]);
    free(rows);
}

static void test_forward(const char *label, config c, int T)
{
    weights w;
    size_t size;
    void *raw;
    uint8_t *file;
    gemini_model *model = NULL;
    int32_t tokens[64];
    float *ref, *a, *b, *c_logits;
    char detail[200];
    int t, type;
    double e;

    rng_state = 1000 + (uint64_t)T; /* the same model whatever ran before */
    make_weights(&c, &w);
    for (t = 0; t < T; t++) tokens[t] = (int32_t)(rng_unit() * c.vocab);
    ref = (float *)malloc(sizeof(float) * (size_t)T * c.vocab);
    a = (float *)malloc(sizeof(float) * (size_t)T * c.vocab);
    b = (float *)malloc(sizeof(float) * (size_t)T * c.vocab);
    c_logits = (float *)malloc(sizeof(float) * (size_t)T * c.vocab);
    reference_forward(&c, &w, tokens, T, ref);

    file = build_file(&c, &w, GEMINI_TYPE_F32, NULL, NULL, &size, &raw);
    if (gemini_model_load_memory(file, size, &model) != GEMINI_OK) {
        check(0, label, gemini_last_error());
        free(raw);
        return;
    }

    /* whole prompt in one batch vs the naive reference */
    run_model(model, 1, 64, 128, tokens, T, 0, a);
    e = relative_error(a, ref, (int64_t)T * c.vocab);
    sprintf(detail, "%s, %d tokens, relative error %.2g", label, T, e);
    check(e < 1e-4, "batched prefill matches the naive reference (f32)", detail);

    /* token by token vs batched */
    run_model(model, 1, 64, 128, tokens, T, 1, b);
    e = relative_error(b, a, (int64_t)T * c.vocab);
    sprintf(detail, "%s, relative difference %.2g", label, e);
    check(e < 1e-5, "token-by-token decode equals batched prefill", detail);

    /* small batches (ring smaller than the sequence) vs the reference */
    run_model(model, 1, 3, 128, tokens, T, 2, b);
    e = relative_error(b, ref, (int64_t)T * c.vocab);
    sprintf(detail, "%s, n_batch 3, steps of 2, relative error %.2g", label, e);
    check(e < 1e-4, "sliding-window ring with small batches matches the reference", detail);

    /* 3 threads give the same bits as 1 */
    run_model(model, 3, 64, 128, tokens, T, 0, b);
    check(memcmp(a, b, sizeof(float) * (size_t)T * c.vocab) == 0,
          "3 threads give results identical to 1 thread", label);
    check_levels(model, label, GEMINI_TYPE_F32, tokens, T, a, b, c_logits);
    check_decode_each(model, label, tokens, T, a);
    check_kv_types(model, label, tokens, T, a, b, c_logits);
    gemini_model_free(model);
    free(raw);

    /* every weight type against the reference run on the same (rounded) weights: f16/bf16
       use f32 activations (tight); q8_0/q4_0 quantise activations to q8_0 (looser) */
    for (type = 1; type < GEMINI_TYPE_COUNT; type++) {
        float limit = type >= GEMINI_TYPE_Q8_0 ? 0.06f : 1e-4f;
        weights rounded;
        roundtrip_weights(&c, &w, (gemini_type)type, &rounded);
        reference_forward(&c, &rounded, tokens, T, ref);
        free_weights(&c, &rounded);
        file = build_file(&c, &w, (gemini_type)type, NULL, NULL, &size, &raw);
        if (gemini_model_load_memory(file, size, &model) != GEMINI_OK) {
            check(0, "load quantised", gemini_last_error());
            free(raw);
            continue;
        }
        run_model(model, 2, 64, 128, tokens, T, 0, b);
        e = relative_error(b, ref, (int64_t)T * c.vocab);
        sprintf(detail, "%s %s, relative error %.2g (limit %.2g)", label,
                gemini_type_name((gemini_type)type), e, limit);
        check(e < limit, "weights of each type match the reference on rounded weights", detail);
        run_model(model, 3, 64, 128, tokens, T, 1, a);
        sprintf(detail, "%s %s", label, gemini_type_name((gemini_type)type));
        check(memcmp(a, b, sizeof(float) * (size_t)T * c.vocab) == 0,
              "batched prefill (2 threads) equals token by token (3 threads), bit for bit",
              detail);
        check_levels(model, label, (gemini_type)type, tokens, T, b, a, c_logits);
        sprintf(detail, "%s %s", label, gemini_type_name((gemini_type)type));
        check_decode_each(model, detail, tokens, T, b);
        gemini_model_free(model);
        free(raw);
    }
    free(ref); free(a); free(b); free(c_logits);
    free_weights(&c, &w);
}

/* A prompt past GEMINI_USE_BLAS's thresholds (130 tokens, one batch) with f32, f16 and bf16
   weights: the batch against the naive reference on the same weights, and against token by
   token on 3 threads. Default build: bit for bit. Under GEMINI_USE_BLAS cblas_sgemm computes
   the batch (checked by its call count) and sums in its own order, so the two must agree
   within 1e-5 of the largest logit instead (the output says so). */
static void test_long_prompt(void)
{
    enum { T = 130 };
    config c = config_gemma3();
    int32_t tokens[T];
    size_t cells = (size_t)T * (size_t)c.vocab;
    float *ref = (float *)malloc(sizeof(float) * cells);
    float *a = (float *)malloc(sizeof(float) * cells);
    float *b = (float *)malloc(sizeof(float) * cells);
    char detail[200];
    weights w;
    int type, t;

    rng_state = 777;
    make_weights(&c, &w);
    for (t = 0; t < T; t++) tokens[t] = (int32_t)(rng_unit() * c.vocab);
    for (type = GEMINI_TYPE_F32; type <= GEMINI_TYPE_BF16; type++) {
        gemini_context_params params = gemini_context_default_params();
        gemini_context *ctx = NULL;
        gemini_model *model = NULL;
        weights rounded;
        size_t size;
        void *raw;
        uint8_t *file = build_file(&c, &w, (gemini_type)type, NULL, NULL, &size, &raw);
        int64_t blas_products = -1;
        double e, e_steps;
        roundtrip_weights(&c, &w, (gemini_type)type, &rounded);
        reference_forward(&c, &rounded, tokens, T, ref);
        free_weights(&c, &rounded);
        params.n_ctx = 192;
        params.n_batch = 192;
        params.n_threads = 2;
        if (gemini_model_load_memory(file, size, &model) != GEMINI_OK ||
            gemini_context_create(model, &params, &ctx) != GEMINI_OK ||
            gemini_decode(ctx, tokens, T, a, 1) != GEMINI_OK) {
            check(0, "long prompt runs", gemini_last_error());
        } else {
            blas_products = ctx->blas_products;
        }
        gemini_context_free(ctx);
        run_model(model, 3, 192, 192, tokens, T, 1, b);
        e = relative_error(a, ref, (int64_t)cells);
        e_steps = relative_error(b, a, (int64_t)cells);
        sprintf(detail, "%s weights, %d tokens, relative error %.2g", gemini_type_name(
                (gemini_type)type), T, e);
        check(e < 1e-4, "a long batched prompt matches the naive reference", detail);
#if defined(GEMINI_USE_BLAS)
        sprintf(detail, "%s weights, cblas_sgemm products %lld, relative difference %.2g "
                "(BLAS build: within 1e-5, not bit for bit)",
                gemini_type_name((gemini_type)type), (long long)blas_products, e_steps);
        check(blas_products > 0 && e_steps < 1e-5,
              "a long batch (cblas_sgemm) equals token by token on 3 threads", detail);
#else
        sprintf(detail, "%s weights, no BLAS (%lld products), relative difference %.2g",
                gemini_type_name((gemini_type)type), (long long)blas_products, e_steps);
        check(blas_products == 0 && memcmp(a, b, sizeof(float) * cells) == 0,
              "a long batch equals token by token on 3 threads, bit for bit", detail);
#endif
        gemini_model_free(model);
        free(raw);
    }
    free_weights(&c, &w);
    free(ref); free(a); free(b);
}

/* Multi-head attention (a key-value head a query head, gemma2-like) decoded a token at a time
   runs gemini__attend's wide items (one item a token for all heads, keys split over the
   threads); a batch of 40 tokens, past GEMINI__WIDE_TOKENS, runs an item a head. Both must
   give the same bits, with f32 and f16 KV caches, on 1 and 2 threads. q8_0 weights, so that a
   GEMINI_USE_BLAS build (float weights' batches through cblas_sgemm) demands the same. */
static void test_wide_attention(void)
{
    enum { T = 40 };
    config c = config_gemma2();
    int32_t tokens[T];
    size_t cells = (size_t)T * (size_t)c.vocab;
    float *a = (float *)malloc(sizeof(float) * cells);
    float *b = (float *)malloc(sizeof(float) * cells);
    float *d = (float *)malloc(sizeof(float) * cells);
    gemini_model *model = NULL;
    weights w;
    size_t size;
    void *raw;
    uint8_t *file;
    int t, k;

    rng_state = 4242;
    make_weights(&c, &w);
    for (t = 0; t < T; t++) tokens[t] = (int32_t)(rng_unit() * c.vocab);
    file = build_file(&c, &w, GEMINI_TYPE_Q8_0, NULL, NULL, &size, &raw);
    if (gemini_model_load_memory(file, size, &model) != GEMINI_OK) {
        check(0, "the gemma2-like model loads", gemini_last_error());
    } else {
        for (k = 0; k < 2; k++) {
            int same;
            run_kv_type = k ? GEMINI_TYPE_F16 : GEMINI_TYPE_F32;
            same = run_model(model, 2, 64, 64, tokens, T, 0, a) == GEMINI_OK;
            same &= run_model(model, 2, 64, 64, tokens, T, 1, b) == GEMINI_OK;
            same &= run_model(model, 1, 64, 64, tokens, T, 1, d) == GEMINI_OK;
            same &= memcmp(a, b, sizeof(float) * cells) == 0 &&
                    memcmp(a, d, sizeof(float) * cells) == 0;
            check(same, "multi-head attention: wide items (token by token, 1 and 2 threads) "
                  "equal items of one head (a 40-token batch), bit for bit",
                  k ? "f16 cache" : "f32 cache");
        }
        run_kv_type = GEMINI_TYPE_F32;
        gemini_model_free(model);
    }
    free(raw);
    free_weights(&c, &w);
    free(a); free(b); free(d);
}

static void test_context_limits(void)
{
    config c = config_gemma3();
    weights w;
    size_t size;
    void *raw;
    uint8_t *file;
    gemini_model *model = NULL;
    gemini_context *ctx = NULL;
    gemini_context_params params = gemini_context_default_params();
    int32_t tokens[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    float logits[67];

    make_weights(&c, &w);
    file = build_file(&c, &w, GEMINI_TYPE_F32, NULL, NULL, &size, &raw);
    gemini_model_load_memory(file, size, &model);
    params.n_ctx = 8;
    params.n_threads = 2;
    check(gemini_context_create(model, &params, &ctx) == GEMINI_OK, "context create", "");
    check(gemini_decode(ctx, tokens, 6, logits, 0) == GEMINI_OK &&
          gemini_context_position(ctx) == 6, "decode 6 of 8", "");
    check(gemini_decode(ctx, tokens, 3, logits, 0) == GEMINI_ERR_CONTEXT_FULL &&
          gemini_context_position(ctx) == 6, "prompt beyond the context is CONTEXT_FULL", "");
    check(gemini_decode(ctx, tokens, 2, NULL, 0) == GEMINI_OK &&
          gemini_context_position(ctx) == 8, "filling the context exactly works", "");
    tokens[0] = 67;
    gemini_context_reset(ctx);
    check(gemini_decode(ctx, tokens, 1, logits, 0) == GEMINI_ERR_INVALID_ARGUMENT &&
          gemini_context_position(ctx) == 0, "out-of-range token id is refused", "");
    {
        uint64_t bytes = 0;
        params.n_ctx = 100;
        params.n_batch = 4;
        /* local layers: ring of 5 + 4 - 1 = 8 slots; global: 100; kv_dim 32 floats */
        check(gemini_context_memory_size(model, &params, &bytes) == GEMINI_OK &&
              bytes > (uint64_t)(2 * (8 + 8 + 100) * 32 * 4) && bytes < 200000,
              "context memory size query", "");
        {
            /* a 16-bit cache holds the same slots in half the bytes */
            uint64_t half_bytes = 0, bf16_bytes = 0;
            params.kv_type = GEMINI_TYPE_F16;
            gemini_context_memory_size(model, &params, &half_bytes);
            params.kv_type = GEMINI_TYPE_BF16;
            gemini_context_memory_size(model, &params, &bf16_bytes);
            check(bytes - half_bytes == (uint64_t)(2 * (8 + 8 + 100) * 32 * 2) &&
                  bf16_bytes == half_bytes, "memory size of an f16 / bf16 KV cache", "");
        }
        {
            /* every other type is refused, by create and by the size query, with a message */
            static const int bad[3] = {GEMINI_TYPE_Q8_0, GEMINI_TYPE_Q4_0, 77};
            int i, refused = 1;
            for (i = 0; i < 3; i++) {
                uint64_t ignored;
                params.kv_type = (gemini_type)bad[i];
                refused &= gemini_context_create(model, &params, &ctx) ==
                               GEMINI_ERR_INVALID_ARGUMENT && ctx == NULL &&
                           strstr(gemini_last_error(), "kv_type") != NULL &&
                           gemini_context_memory_size(model, &params, &ignored) ==
                               GEMINI_ERR_INVALID_ARGUMENT;
            }
            check(refused, "a KV cache type other than f32, f16 or bf16 is refused",
                  gemini_last_error());
            params.kv_type = GEMINI_TYPE_F32;
        }
        {
            /* copy_sequence copies a 16-bit cache whole, and refuses across types */
            gemini_context *src = NULL, *dst = NULL, *f32 = NULL;
            int32_t ids[8] = {9, 8, 7, 6, 5, 4, 3, 2};
            float row0[67], row1[67];
            params.kv_type = GEMINI_TYPE_F16;
            gemini_context_create(model, &params, &src);
            gemini_context_create(model, &params, &dst);
            params.kv_type = GEMINI_TYPE_F32;
            gemini_context_create(model, &params, &f32);
            check(src && dst && f32 && gemini_decode(src, ids, 7, NULL, 0) == GEMINI_OK &&
                  gemini_context_copy_sequence(dst, src) == GEMINI_OK &&
                  gemini_decode(src, ids + 7, 1, row0, 0) == GEMINI_OK &&
                  gemini_decode(dst, ids + 7, 1, row1, 0) == GEMINI_OK &&
                  memcmp(row0, row1, sizeof row0) == 0,
                  "a copied f16 KV cache continues identically", "");
            check(gemini_context_copy_sequence(f32, src) == GEMINI_ERR_INVALID_ARGUMENT,
                  "copying between KV cache types is refused", gemini_last_error());
            gemini_context_free(src);
            gemini_context_free(dst);
            gemini_context_free(f32);
        }
    }
    params.n_ctx = 40000;
    check(gemini_context_create(model, &params, &ctx) == GEMINI_ERR_INVALID_ARGUMENT &&
          ctx == NULL, "n_ctx above 32768 is refused", "");
    gemini_context_free(ctx);
    gemini_model_free(model);
    free(raw);
    free_weights(&c, &w);
}

static void test_sampler(void)
{
    gemini_sampler_params params = gemini_sampler_default_params();
    gemini_sampler *s1, *s2;
    float logits[100];
    int32_t a = -1, b = -1, counts[100];
    int i, same = 1;
    char text[128];
    size_t length;

    for (i = 0; i < 100; i++) logits[i] = (float)(i % 10);
    params.temperature = 0;
    gemini_sampler_create(&params, 100, &s1);
    gemini_sample(s1, logits, &a);
    check(a == 9, "greedy picks the lowest id among equal maxima", "");
    gemini_sampler_free(s1);

    params = gemini_sampler_default_params();
    params.seed = 42;
    gemini_sampler_create(&params, 100, &s1);
    gemini_sampler_create(&params, 100, &s2);
    for (i = 0; i < 200; i++) {
        gemini_sample(s1, logits, &a);
        gemini_sample(s2, logits, &b);
        same &= a == b;
    }
    check(same, "same seed, same tokens", "");
    gemini_sampler_free(s1);
    gemini_sampler_free(s2);

    params.top_k = 0;
    params.top_p = 1.0f;
    params.min_p = 0.0f;
    params.temperature = 1.0f;
    memset(counts, 0, sizeof counts);
    for (i = 0; i < 100; i++) logits[i] = i < 2 ? 0.0f : -1e9f;
    logits[1] = (float)log(3.0);
    gemini_sampler_create(&params, 100, &s1);
    for (i = 0; i < 4000; i++) {
        gemini_sample(s1, logits, &a);
        counts[a]++;
    }
    sprintf(text, "token 1 drawn %d of 4000 (expect ~3000)", counts[1]);
    check(counts[0] + counts[1] == 4000 && counts[1] > 2850 && counts[1] < 3150,
          "sampling follows the softmax", text);
    gemini_sampler_free(s1);

    /* p = 0.5, 0.3, 0.2 over tokens 0, 1, 2: each cut must leave exactly tokens 0 and 1 */
    {
        static const char *names[] = {"top-k 2", "top-p 0.7", "min-p 0.5"};
        int variant;
        for (variant = 0; variant < 3; variant++) {
            params = gemini_sampler_default_params();
            params.temperature = 1.0f;
            params.top_k = variant == 0 ? 2 : 0;
            params.top_p = variant == 1 ? 0.7f : 1.0f;
            params.min_p = variant == 2 ? 0.5f : 0.0f;
            for (i = 0; i < 100; i++) logits[i] = -INFINITY;
            logits[0] = (float)log(0.5);
            logits[1] = (float)log(0.3);
            logits[2] = (float)log(0.2);
            memset(counts, 0, sizeof counts);
            gemini_sampler_create(&params, 100, &s1);
            for (i = 0; i < 2000; i++) {
                gemini_sample(s1, logits, &a);
                counts[a]++;
            }
            gemini_sampler_free(s1);
            sprintf(text, "%s: counts %d %d %d", names[variant], counts[0], counts[1], counts[2]);
            check(counts[2] == 0 && counts[0] + counts[1] == 2000 && counts[0] > 1150 &&
                  counts[0] < 1350, "sampler cut keeps exactly the expected tokens", text);
        }
    }

    params = gemini_sampler_default_params();
    params.temperature = 0;
    params.repetition_penalty = 2.0f;
    for (i = 0; i < 100; i++) logits[i] = 0.0f;
    logits[7] = 1.0f;
    logits[8] = 0.9f;
    gemini_sampler_create(&params, 100, &s1);
    gemini_sampler_accept(s1, 7);
    gemini_sample(s1, logits, &a);
    check(a == 8, "repetition penalty demotes a recent token", "");
    gemini_sampler_free(s1);

    check(gemini_chat_user_turn("Hi", text, sizeof text, &length) == GEMINI_OK &&
          strcmp(text, "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n") == 0 &&
          length == strlen(text), "chat template", "");
    check(gemini_chat_user_turn("Hi", text, 10, &length) == GEMINI_ERR_INVALID_ARGUMENT &&
          length == strlen("<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"),
          "chat template reports the size it needs", "");
}

/* ---- thread counts --------------------------------------------------------------------------- */

/* The CPU lists Linux writes (/proc/self/status, sysfs topology), and the cap of a context's
   threads at the usable CPUs. */
static void test_thread_counts(void)
{
    static const struct {
        const char *text;
        int32_t count;
    } lists[] = {
        {"0", 1}, {"0-3\n", 4}, {"0-3,8,10-11", 7}, {"1,1,0-1", 2}, {"5-5", 1},
        {"0-2147483647", 1024}, {"", -1}, {"-1", -1}, {"3-1", -1}, {"0-", -1}, {"0,", -1},
        {"0 1", -1}, {"a", -1}, {"0-3,x", -1}
    };
    config c = config_gemma3();
    weights w;
    size_t size, i;
    void *raw;
    uint8_t *file, set[GEMINI__CPU_LIST_BITS / 8];
    gemini_model *model = NULL;
    gemini_context *ctx = NULL;
    gemini_context_params params = gemini_context_default_params();
    int32_t usable = gemini__usable_cpus(NULL), asked;
    char detail[128];

#if defined(__linux__)
    for (i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        int32_t count;
        memset(set, 0, sizeof set);
        count = gemini__parse_cpu_list(lists[i].text, set);
        snprintf(detail, sizeof detail, "\"%s\": %d, expected %d", lists[i].text, (int)count,
                 (int)lists[i].count);
        check(count == lists[i].count, "CPU list parsed", detail);
    }
    memset(set, 0, sizeof set);
    gemini__parse_cpu_list("0-3,8,10-11", set);
    check(set[0] == 0x0f && set[1] == 0x0d && set[2] == 0, "CPU list marks its CPUs", "");
#else
    (void)lists;
    (void)set;
    (void)i;
#endif

    snprintf(detail, sizeof detail, "%d usable, default %d", (int)usable,
             (int)params.n_threads);
    check(usable >= 1 && params.n_threads >= 1 && params.n_threads <= usable,
          "default threads: one a physical core, at most the usable CPUs", detail);

    make_weights(&c, &w);
    file = build_file(&c, &w, GEMINI_TYPE_F32, NULL, NULL, &size, &raw);
    gemini_model_load_memory(file, size, &model);
    asked = usable + 1 <= 256 ? usable + 1 : 256;
    params.n_threads = asked;
    params.n_ctx = 16;
    gemini__threads_past_cpus = 0;
    check(gemini_context_create(model, &params, &ctx) == GEMINI_OK, "context create", "");
    snprintf(detail, sizeof detail, "%d asked, %d usable, %d started", (int)asked, (int)usable,
             (int)gemini_context_threads(ctx));
#if defined(GEMINI_NO_THREADS)
    usable = 1; /* the caller alone */
#endif
    check(gemini_context_threads(ctx) == (asked < usable ? asked : usable),
          "threads past the usable CPUs are not started", detail);
    gemini_context_free(ctx);
    ctx = NULL;
    gemini__threads_past_cpus = 1;
    check(gemini_context_create(model, &params, &ctx) == GEMINI_OK, "context create", "");
    snprintf(detail, sizeof detail, "%d asked, %d started", (int)asked,
             (int)gemini_context_threads(ctx));
#if defined(GEMINI_NO_THREADS)
    asked = 1;
#endif
    check(gemini_context_threads(ctx) == asked,
          "with gemini__threads_past_cpus (tests) every thread asked for starts", detail);
    gemini_context_free(ctx);
    check(gemini_context_threads(NULL) == 0, "gemini_context_threads(NULL) is 0", "");
    gemini_model_free(model);
    free(raw);
    free_weights(&c, &w);
}

/* ---- many contexts of one model on many threads -------------------------------------------- */

#if !defined(_WIN32) && !defined(GEMINI_NO_THREADS)
typedef struct shared_run {
    const gemini_model *model;
    const int32_t *tokens;
    int T;
    float *logits;
    gemini_result result;
} shared_run;

static void *shared_run_main(void *arg)
{
    shared_run *run = (shared_run *)arg;
    run->result = run_model(run->model, 2, 4, 64, run->tokens, run->T, 3, run->logits);
    return NULL;
}

static void test_shared_model(void)
{
    config c = config_gemma3();
    weights w;
    size_t size;
    void *raw;
    uint8_t *file;
    gemini_model *model = NULL;
    int32_t tokens[20];
    float *expected, *got[3];
    shared_run runs[3];
    pthread_t threads[3];
    int i, same = 1;

    rng_state = 77;
    make_weights(&c, &w);
    for (i = 0; i < 20; i++) tokens[i] = (int32_t)(rng_unit() * c.vocab);
    file = build_file(&c, &w, GEMINI_TYPE_Q8_0, NULL, NULL, &size, &raw);
    gemini_model_load_memory(file, size, &model);
    expected = (float *)malloc(sizeof(float) * 20 * 67);
    run_model(model, 1, 4, 64, tokens, 20, 3, expected);
    for (i = 0; i < 3; i++) {
        got[i] = (float *)malloc(sizeof(float) * 20 * 67);
        runs[i].model = model;
        runs[i].tokens = tokens;
        runs[i].T = 20;
        runs[i].logits = got[i];
        pthread_create(&threads[i], NULL, shared_run_main, &runs[i]);
    }
    for (i = 0; i < 3; i++) {
        pthread_join(threads[i], NULL);
        same &= runs[i].result == GEMINI_OK &&
                memcmp(got[i], expected, sizeof(float) * 20 * 67) == 0;
        free(got[i]);
    }
    check(same, "three contexts of one model on three threads agree with one", "");
    free(expected);
    gemini_model_free(model);
    free(raw);
    free_weights(&c, &w);
}
#endif

/* ---- the log hook --------------------------------------------------------------------------- */

static int log_messages = 0;

static void count_log(gemini_log_level level, const char *message, void *user_data)
{
    (void)level;
    (void)message;
    *(int *)user_data += 1;
}

static void test_log_hook(void)
{
    config c = config_gemma3();
    weights w;
    size_t size;
    void *raw;
    uint8_t *file;
    gemini_model *model = NULL;
    gemini_context *ctx = NULL;
    gemini_context_params params;
    int before;

    rng_state = 5;
    make_weights(&c, &w);
    file = build_file(&c, &w, GEMINI_TYPE_F32, NULL, NULL, &size, &raw);
    gemini_set_default_log(count_log, &log_messages);
    gemini_model_load_memory(file, size, &model);
    check(log_messages > 0, "the default log hook hears model loading", "");
    params = gemini_context_default_params();
    params.log_callback = NULL;
    before = log_messages;
    gemini_set_default_log(NULL, NULL);
    gemini_context_create(model, &params, &ctx);
    check(log_messages == before && ctx != NULL, "a NULL context hook is silent", "");
    gemini_context_free(ctx);
    gemini_model_free(model);
    free(raw);
    free_weights(&c, &w);
}

/* ---- optional: Hugging Face reference fixtures (tests/fixtures/gemma*) --------------------- */

/* Reads the ids after `key` on the line of sequence `which` in reference.txt. */
static int read_fixture_ids(const char *dir, const char *which, const char *key, int32_t *ids,
                            int max_ids)
{
    char path[1024], line[8192];
    FILE *file;
    int in_sequence = 0, n = 0;
    snprintf(path, sizeof path, "%s/reference.txt", dir);
    file = fopen(path, "r");
    if (file == NULL) return 0;
    while (fgets(line, sizeof line, file)) {
        if (strncmp(line, "sequence ", 9) == 0) {
            in_sequence = strncmp(line + 9, which, strlen(which)) == 0;
        } else if (in_sequence && strncmp(line, key, strlen(key)) == 0) {
            char *p = line + strlen(key), *end;
            for (;;) {
                long value = strtol(p, &end, 10);
                if (end == p || n >= max_ids) break;
                ids[n++] = (int32_t)value;
                p = end;
            }
        }
    }
    fclose(file);
    return n;
}

static float *read_floats(const char *dir, const char *name, int64_t n)
{
    char path[1024];
    FILE *file;
    float *values = (float *)malloc(sizeof(float) * (size_t)n);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    file = fopen(path, "rb");
    if (file == NULL || fread(values, sizeof(float), (size_t)n, file) != (size_t)n) {
        free(values);
        values = NULL;
    }
    if (file) fclose(file);
    return values;
}

/* MODEL is the fixture converted with `gemini-convert -t f32`; DIR holds reference.txt and the
   logits. Checks prefill logits and 32 greedy decode steps (1 and 2 threads, small batches). */
static void test_fixture(const char *model_path, const char *dir)
{
    static const char *sequences[] = {"short", "long"};
    gemini_model *model = NULL;
    char detail[1400], name[64];
    int s;
    if (gemini_model_load(model_path, &model) != GEMINI_OK) {
        snprintf(detail, sizeof detail, "%.1000s", gemini_last_error());
        check(0, "fixture model loads", detail);
        return;
    }
    for (s = 0; s < 2; s++) {
        int32_t input[128], greedy[64];
        int T = read_fixture_ids(dir, sequences[s], "input ", input, 128);
        int G = read_fixture_ids(dir, sequences[s], "greedy ", greedy, 64);
        int V = gemini_model_vocab_size(model), step, i, tokens_ok = 1, threads;
        float *reference, *step_reference, *logits, *row;
        double e, step_error = 0;
        snprintf(name, sizeof name, "logits_%s.f32", sequences[s]);
        reference = read_floats(dir, name, (int64_t)T * V);
        snprintf(name, sizeof name, "logits_%s_greedy.f32", sequences[s]);
        step_reference = read_floats(dir, name, (int64_t)G * V);
        if (T == 0 || G == 0 || !reference || !step_reference) {
            check(0, "fixture files readable", dir);
            free(reference);
            free(step_reference);
            continue;
        }
        for (threads = 1; threads <= 2; threads++) {
            gemini_context_params params = gemini_context_default_params();
            gemini_context *ctx = NULL;
            params.n_threads = threads;
            params.n_ctx = 128;
            params.n_batch = threads == 1 ? 64 : 3;
            gemini_context_create(model, &params, &ctx);
            logits = (float *)malloc(sizeof(float) * (size_t)T * V);
            row = (float *)malloc(sizeof(float) * (size_t)V);
            gemini_decode(ctx, input, T, logits, 1);
            e = relative_error(logits, reference, (int64_t)T * V);
            snprintf(detail, sizeof detail, "%.900s %s, %d threads, n_batch %d: %.2g", dir,
                     sequences[s], threads, params.n_batch, e);
            check(e < 5e-5, "fixture prefill logits match transformers", detail);
            memcpy(row, logits + (int64_t)(T - 1) * V, sizeof(float) * (size_t)V);
            step_error = 0;
            tokens_ok = 1;
            for (step = 0; step < G; step++) {
                int best = 0;
                for (i = 1; i < V; i++) if (row[i] > row[best]) best = i;
                tokens_ok &= best == greedy[step];
                e = relative_error(row, step_reference + (int64_t)step * V, V);
                if (e > step_error) step_error = e;
                gemini_decode(ctx, &greedy[step], 1, row, 0);
            }
            snprintf(detail, sizeof detail, "%.900s %s, %d threads: tokens %s, step error %.2g",
                     dir, sequences[s], threads, tokens_ok ? "equal" : "DIFFER", step_error);
            check(tokens_ok && step_error < 5e-5, "fixture greedy decode matches transformers",
                  detail);
            free(logits);
            free(row);
            gemini_context_free(ctx);
        }
        free(reference);
        free(step_reference);
    }
    gemini_model_free(model);
}

int main(int argc, char **argv)
{
    int i;
    if (argc > 1) { /* test_core --fixture MODEL.gemini DIR [--fixture ...] */
        for (i = 1; i + 2 < argc && strcmp(argv[i], "--fixture") == 0; i += 3)
            test_fixture(argv[i + 1], argv[i + 2]);
        if (i != argc) {
            fprintf(stderr, "usage: test_core [--fixture MODEL.gemini FIXTURE_DIR]...\n");
            return 2;
        }
        printf("%d passed, %d failed\n", tests_passed, tests_failed);
        return tests_failed != 0;
    }
    gemini__threads_past_cpus = 1; /* 3 threads must equal 1 even on a machine of 2 CPUs */
    test_conversions();
    test_kernels();
    test_quantize_levels();
    test_geglu_levels();
    test_exp_sum_levels();
    test_softmax_levels();
    test_weighted_sum_levels();
    test_matmul();
    test_reader();
    test_forward("gemma3-like (GQA, QK-norm, sandwich, window 5, rope scale 8)",
                 config_gemma3(), 13);
    test_forward("gemma2-like (MHA, soft-caps, window 4)", config_gemma2(), 11);
    test_forward("gemma1-like (MQA, untied head, no window)", config_gemma1(), 9);
    test_long_prompt();
    test_wide_attention();
    test_context_limits();
    test_thread_counts();
    test_sampler();
#if !defined(_WIN32) && !defined(GEMINI_NO_THREADS)
    test_shared_model();
#endif
    test_log_hook();
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed != 0;
}
