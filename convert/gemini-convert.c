/* gemini-convert - writes .gemini weight files (format.md) from Hugging Face checkpoints and GGUF.

   Usage (--help has the details)
       gemini-convert [--type T] [-o OUT.gemini] [-q] INPUT     INPUT: a directory or .gguf file
       gemini-convert --info [--full] FILE                      metadata and tensor table
       gemini-convert --verify FILE                             load it, then check every CRC

   Inputs
       - A Hugging Face directory: config.json, model.safetensors or model.safetensors.index.json
         (sharded, with its weight_map), and tokenizer.model and/or tokenizer.json (the former
         is preferred; with neither, the file holds no tokenizer and a warning says so).
         Whisper (model_type "whisper") also reads generation_config.json when present.
       - A GGUF v2/v3 file in llama.cpp's gemma, gemma2 or gemma3 layout, with tensors of type
         F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K.
       - A CTranslate2 Whisper directory (faster-whisper's layout): model.bin (binary version 4
         to 6, WhisperSpec, float32/float16/bfloat16), and optionally config.json (suppress
         lists, languages, alignment heads) and tokenizer.json.

   Families: Gemma 1 (`gemma`), Gemma 2 (`gemma2`), Gemma 3 text (`gemma3_text`, and the text
   part of a `gemma3` checkpoint, in both the released and the transformers >= 4.5x key layout),
   Whisper (encoder-decoder speech recognition, format.md §7; its tokenizer must be a
   byte-level BPE tokenizer.json).

   Matrices are converted to --type through f32 (Q8_0 and Q4_0 blocks are copied when the type
   does not change); norms are f32 and hold 1 + w (GGUF already stores 1 + w). Whisper's
   biases, LayerNorm vectors (stored as they are) and position tables are f32, and its two conv
   stems stay f16 when --type is q8_0 or q4_0. The GGUF
   dequantisers reproduce ggml's reference dequantize_row_* bit for bit (tests/test_convert.sh
   checks them against gguf-py), provided the compiler does not contract a*b-c into a fused
   multiply-add: ISO modes such as -std=c99 do not.

   Every number read from an input is checked against the file size before it is used, and every
   allocation is capped, so hostile files produce an error message, not a crash. Tensors are
   streamed to OUT.tmp a block of rows at a time, then the file is renamed into place.

   Limitations: no GGUF Q2_K, Q3_K, Q8_K or IQ* tensors; safetensors dtypes F32, F16 and BF16
   only; vision towers and other non-decoder tensors are ignored.

   Build
       cc -std=c99 -O2 -I. convert/gemini-convert.c -o build/gemini-convert -lm -lpthread
*/
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64
#endif

#define GEMINI_IMPLEMENTATION
#include "gemini.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef _WIN32
#include <io.h>
#define cv_isatty _isatty
#define cv_fileno _fileno
#else
#include <unistd.h>
#define cv_isatty isatty
#define cv_fileno fileno
#endif

#define CV_VERSION "gemini-convert 1.0"

/* Caps that keep a hostile header from asking for absurd amounts of memory. */
#define CV_MAX_JSON_BYTES ((uint64_t)256 << 20)        /* config.json, tokenizer.json, index */
#define CV_MAX_ST_HEADER ((uint64_t)100000000)         /* safetensors header, as the reference */
#define CV_MAX_GGUF_META ((uint64_t)1 << 30)           /* all GGUF metadata held in memory */
#define CV_MAX_GGUF_STRING ((uint64_t)16 << 20)        /* one GGUF string */
#define CV_MAX_COUNT ((uint64_t)1 << 26)               /* array elements, vocabulary entries */
#define CV_MAX_TENSORS ((uint64_t)1 << 16)             /* tensors of one input (lookups scan) */
#define CV_MAX_KEYS ((uint64_t)1 << 16)                /* GGUF metadata keys */
#define CV_MAX_DIM ((uint64_t)1 << 40)                 /* one tensor dimension */
#define CV_MAX_LAYERS 1024
#define CV_JSON_MAX_DEPTH 64
#define CV_ALIGNMENT 64
#define CV_CHUNK_VALUES ((int64_t)1 << 20)              /* values converted per step */

/* ============================================================================================
   Small utilities
   ============================================================================================ */

static int cv_quiet = 0;
static int cv_info_full = 0;        /* --full: print every array element */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
static void cv_warn(const char *format, ...)
{
    va_list args;
    fputs("gemini-convert: warning: ", stderr);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
}

/* malloc with a cap and a message; size 0 still returns a valid pointer. */
static void *cv_alloc(uint64_t size, const char *what)
{
    void *ptr;
    if (size > ((uint64_t)1 << 40) || size > (uint64_t)SIZE_MAX - 16) {
        gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: %llu bytes is too large", what,
                     (unsigned long long)size);
        return NULL;
    }
    ptr = malloc(size ? (size_t)size : 1);
    if (!ptr)
        gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: out of memory (%llu bytes)", what,
                     (unsigned long long)size);
    return ptr;
}

static void *cv_calloc(uint64_t count, uint64_t elem, const char *what)
{
    void *ptr;
    if (elem && count > ((uint64_t)1 << 40) / elem) {
        gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: %llu elements is too many", what,
                     (unsigned long long)count);
        return NULL;
    }
    ptr = cv_alloc(count * elem, what);
    if (ptr)
        memset(ptr, 0, (size_t)(count * elem));
    return ptr;
}

static char *cv_strndup(const char *s, size_t n)
{
    char *copy = (char *)cv_alloc((uint64_t)n + 1, "string");
    if (copy) {
        memcpy(copy, s, n);
        copy[n] = 0;
    }
    return copy;
}

static char *cv_strdup(const char *s)
{
    return cv_strndup(s, strlen(s));
}

/* a * b into *out, false on 64-bit overflow. */
static int cv_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a && b > UINT64_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

static uint64_t cv_align_up(uint64_t x, uint64_t alignment)
{
    return (x + alignment - 1) / alignment * alignment;
}

static char *cv_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *path = (char *)cv_alloc((uint64_t)a + b + 2, "path");
    if (!path)
        return NULL;
    memcpy(path, dir, a);
    if (a && dir[a - 1] != '/')
        path[a++] = '/';
    memcpy(path + a, name, b + 1);
    return path;
}

static int cv_is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR;
}

static int cv_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG;
}

/* Growable byte buffer used to build the metadata and directory sections. */
typedef struct cv_buf {
    unsigned char *data;
    size_t size, cap;
    int failed;
} cv_buf;

static void cv_buf_put(cv_buf *b, const void *src, size_t n)
{
    if (b->failed)
        return;
    if (n > SIZE_MAX / 2 - b->size) {
        b->failed = 1;
        return;
    }
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *grown;
        while (cap < b->size + n)
            cap *= 2;
        grown = (unsigned char *)realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->size, src, n);
    b->size += n;
}

static void cv_buf_u8(cv_buf *b, uint8_t v)
{
    cv_buf_put(b, &v, 1);
}

static void cv_buf_u32(cv_buf *b, uint32_t v)
{
    unsigned char bytes[4];
    int i;
    for (i = 0; i < 4; i++)
        bytes[i] = (unsigned char)(v >> (8 * i));
    cv_buf_put(b, bytes, 4);
}

static void cv_buf_u64(cv_buf *b, uint64_t v)
{
    unsigned char bytes[8];
    int i;
    for (i = 0; i < 8; i++)
        bytes[i] = (unsigned char)(v >> (8 * i));
    cv_buf_put(b, bytes, 8);
}

static void cv_buf_f32(cv_buf *b, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    cv_buf_u32(b, bits);
}

static void cv_buf_str(cv_buf *b, const char *s, size_t n)
{
    cv_buf_u32(b, (uint32_t)n);
    cv_buf_put(b, s, n);
}

static uint16_t cv_rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t cv_rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t cv_rd64(const unsigned char *p)
{
    return (uint64_t)cv_rd32(p) | ((uint64_t)cv_rd32(p + 4) << 32);
}

static float cv_f32_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ============================================================================================
   Files: random access with 64-bit offsets, every read checked against the file size
   ============================================================================================ */

typedef struct cv_file {
    FILE *fp;
    char *path;
    uint64_t size;
} cv_file;

static int cv_seek(FILE *fp, uint64_t offset)
{
#ifdef _WIN32
    return _fseeki64(fp, (__int64)offset, SEEK_SET);
#else
    if (offset > (uint64_t)INT64_MAX)
        return -1;
    return fseeko(fp, (off_t)offset, SEEK_SET);
#endif
}

static gemini_result cv_file_open(cv_file *f, const char *path)
{
    struct stat st;
    memset(f, 0, sizeof *f);
    if (stat(path, &st) != 0)
        return gemini__fail(GEMINI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if ((st.st_mode & S_IFMT) != S_IFREG)
        return gemini__fail(GEMINI_ERR_IO, "%s: not a regular file", path);
    f->fp = fopen(path, "rb");
    if (!f->fp)
        return gemini__fail(GEMINI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    f->size = (uint64_t)st.st_size;
    f->path = cv_strdup(path);
    if (!f->path) {
        fclose(f->fp);
        f->fp = NULL;
        return GEMINI_ERR_OUT_OF_MEMORY;
    }
    return GEMINI_OK;
}

static void cv_file_close(cv_file *f)
{
    if (f->fp)
        fclose(f->fp);
    free(f->path);
    memset(f, 0, sizeof *f);
}

/* Reads n bytes at offset; fails with a message if they are not all inside the file. */
static gemini_result cv_file_read(cv_file *f, uint64_t offset, void *dst, uint64_t n,
                                  const char *what)
{
    if (offset > f->size || n > f->size - offset)
        return gemini__fail(GEMINI_ERR_FORMAT,
                            "%s: %s at offset %llu (%llu bytes) lies beyond the end of the file "
                            "(%llu bytes)",
                            f->path, what, (unsigned long long)offset, (unsigned long long)n,
                            (unsigned long long)f->size);
    if (n == 0)
        return GEMINI_OK;
    if (cv_seek(f->fp, offset) != 0 || fread(dst, 1, (size_t)n, f->fp) != (size_t)n)
        return gemini__fail(GEMINI_ERR_IO, "%s: read error at offset %llu", f->path,
                            (unsigned long long)offset);
    return GEMINI_OK;
}

/* Reads a whole (small) file into memory, NUL-terminated. */
static gemini_result cv_read_whole(const char *path, uint64_t cap, char **out, size_t *out_size)
{
    cv_file f;
    gemini_result r = cv_file_open(&f, path);
    char *data;
    *out = NULL;
    if (r != GEMINI_OK)
        return r;
    if (f.size > cap) {
        r = gemini__fail(GEMINI_ERR_FORMAT, "%s: %llu bytes exceeds the limit of %llu", path,
                         (unsigned long long)f.size, (unsigned long long)cap);
        cv_file_close(&f);
        return r;
    }
    data = (char *)cv_alloc(f.size + 1, path);
    if (!data) {
        cv_file_close(&f);
        return GEMINI_ERR_OUT_OF_MEMORY;
    }
    r = cv_file_read(&f, 0, data, f.size, "contents");
    if (r == GEMINI_OK) {
        data[f.size] = 0;
        *out = data;
        *out_size = (size_t)f.size;
    } else {
        free(data);
    }
    cv_file_close(&f);
    return r;
}

/* Sequential buffered reader over a cv_file, for GGUF headers. */
typedef struct cv_reader {
    cv_file *file;
    uint64_t pos;            /* absolute offset of the next byte */
    unsigned char buf[1 << 16];
    uint64_t buf_start;      /* absolute offset of buf[0] */
    size_t buf_len;
} cv_reader;

static gemini_result cv_reader_read(cv_reader *r, void *dst, uint64_t n, const char *what)
{
    unsigned char *out = (unsigned char *)dst;
    if (r->pos > r->file->size || n > r->file->size - r->pos)
        return gemini__fail(GEMINI_ERR_FORMAT,
                            "%s: truncated: %s at offset %llu needs %llu bytes, file has %llu",
                            r->file->path, what, (unsigned long long)r->pos,
                            (unsigned long long)n, (unsigned long long)r->file->size);
    while (n > 0) {
        uint64_t avail, take;
        if (r->pos < r->buf_start || r->pos >= r->buf_start + r->buf_len) {
            uint64_t left = r->file->size - r->pos;
            size_t want = left < sizeof r->buf ? (size_t)left : sizeof r->buf;
            gemini_result res = cv_file_read(r->file, r->pos, r->buf, want, what);
            if (res != GEMINI_OK)
                return res;
            r->buf_start = r->pos;
            r->buf_len = want;
        }
        avail = r->buf_start + r->buf_len - r->pos;
        take = n < avail ? n : avail;
        memcpy(out, r->buf + (r->pos - r->buf_start), (size_t)take);
        out += take;
        r->pos += take;
        n -= take;
    }
    return GEMINI_OK;
}

/* ============================================================================================
   JSON: a small strict parser (RFC 8259) into a flat node array
   ============================================================================================ */

typedef enum cv_jtype { CV_JNULL, CV_JBOOL, CV_JNUM, CV_JSTR, CV_JARR, CV_JOBJ } cv_jtype;

typedef struct cv_jnode {
    double number;
    uint64_t uint_value;     /* magnitude of an integer number, if it fits */
    /* Offsets and indices are 32-bit: inputs are capped far below 4 GiB. */
    uint32_t str, str_len;   /* a string value: offset and length in the string pool */
    uint32_t key, key_len;   /* the key, when this node is an object member */
    uint32_t first_child, next; /* node indices; 0 = none (node 0 is the root, never a child) */
    uint32_t count;          /* children of an array or object */
    unsigned char type;      /* a cv_jtype */
    unsigned char boolean;
    unsigned char is_int;    /* the number had no fraction or exponent */
    unsigned char negative;
    unsigned char int_overflow;
} cv_jnode;

typedef struct cv_json {
    cv_jnode *nodes;
    size_t n_nodes, cap_nodes;
    char *pool;              /* decoded strings, each NUL-terminated */
    size_t pool_size;
    const char *name;        /* the file, for messages */
    const char *text, *end, *p;
    int depth;
} cv_json;

static gemini_result cv_json_error(cv_json *j, const char *what)
{
    size_t line = 1, col = 1;
    const char *s;
    for (s = j->text; s < j->p && s < j->end; s++) {
        if (*s == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return gemini__fail(GEMINI_ERR_FORMAT, "%s: invalid JSON at line %lu column %lu: %s",
                        j->name, (unsigned long)line, (unsigned long)col, what);
}

static void cv_json_ws(cv_json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static gemini_result cv_json_new_node(cv_json *j, cv_jtype type, size_t *out)
{
    if (j->n_nodes == j->cap_nodes) {
        size_t cap = j->cap_nodes ? j->cap_nodes * 2 : 256;
        cv_jnode *grown;
        if (cap > SIZE_MAX / sizeof(cv_jnode))
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: too many JSON values", j->name);
        grown = (cv_jnode *)realloc(j->nodes, cap * sizeof(cv_jnode));
        if (!grown)
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: out of memory", j->name);
        j->nodes = grown;
        j->cap_nodes = cap;
    }
    if (j->n_nodes >= UINT32_MAX)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: too many JSON values", j->name);
    memset(&j->nodes[j->n_nodes], 0, sizeof(cv_jnode));
    j->nodes[j->n_nodes].type = (unsigned char)type;
    *out = j->n_nodes++;
    return GEMINI_OK;
}

static int cv_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static size_t cv_utf8_encode(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t cv_utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp;
    size_t len, i;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Parses a string at j->p (which points at the opening quote) into the pool. */
static gemini_result cv_json_string(cv_json *j, size_t *offset, size_t *length)
{
    size_t start = j->pool_size;
    j->p++;
    for (;;) {
        unsigned char c;
        if (j->p >= j->end)
            return cv_json_error(j, "unterminated string");
        c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20)
            return cv_json_error(j, "control character in string");
        if (c == '\\') {
            unsigned cp;
            if (j->end - j->p < 2)
                return cv_json_error(j, "unterminated escape");
            switch (j->p[1]) {
            case '"': j->pool[j->pool_size++] = '"'; j->p += 2; break;
            case '\\': j->pool[j->pool_size++] = '\\'; j->p += 2; break;
            case '/': j->pool[j->pool_size++] = '/'; j->p += 2; break;
            case 'b': j->pool[j->pool_size++] = '\b'; j->p += 2; break;
            case 'f': j->pool[j->pool_size++] = '\f'; j->p += 2; break;
            case 'n': j->pool[j->pool_size++] = '\n'; j->p += 2; break;
            case 'r': j->pool[j->pool_size++] = '\r'; j->p += 2; break;
            case 't': j->pool[j->pool_size++] = '\t'; j->p += 2; break;
            case 'u':
                if (j->end - j->p < 6 || !cv_hex4(j->p + 2, &cp))
                    return cv_json_error(j, "bad \\u escape");
                j->p += 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned low;
                    if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                        !cv_hex4(j->p + 2, &low) || low < 0xDC00 || low > 0xDFFF)
                        return cv_json_error(j, "unpaired surrogate in \\u escape");
                    j->p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return cv_json_error(j, "unpaired surrogate in \\u escape");
                }
                /* An escape is 6 or 12 input bytes and decodes to at most 4: the pool, sized
                   like the input, cannot overflow. */
                j->pool_size += cv_utf8_encode(cp, j->pool + j->pool_size);
                break;
            default:
                return cv_json_error(j, "unknown escape");
            }
        } else {
            size_t n = cv_utf8_valid_len((const unsigned char *)j->p, (size_t)(j->end - j->p));
            if (n == 0)
                return cv_json_error(j, "invalid UTF-8 in string");
            memcpy(j->pool + j->pool_size, j->p, n);
            j->pool_size += n;
            j->p += n;
        }
    }
    j->pool[j->pool_size++] = 0;
    *offset = start;
    *length = j->pool_size - start - 1;
    return GEMINI_OK;
}

static gemini_result cv_json_number(cv_json *j, cv_jnode *node)
{
    const char *start = j->p;
    char tmp[64];
    size_t len;
    if (j->p < j->end && *j->p == '-') {
        node->negative = 1;
        j->p++;
    }
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return cv_json_error(j, "bad number");
    node->is_int = 1;
    if (*j->p == '0') {
        j->p++;
    } else {
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            unsigned digit = (unsigned)(*j->p - '0');
            if (node->uint_value > (UINT64_MAX - digit) / 10)
                node->int_overflow = 1;
            else
                node->uint_value = node->uint_value * 10 + digit;
            j->p++;
        }
    }
    if (j->p < j->end && *j->p == '.') {
        node->is_int = 0;
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return cv_json_error(j, "bad number: no digits after '.'");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        node->is_int = 0;
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return cv_json_error(j, "bad number: no exponent digits");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    len = (size_t)(j->p - start);
    if (len >= sizeof tmp) {
        /* Very long literals: only the magnitude matters to us; strtod handles the copy. */
        char *copy = cv_strndup(start, len);
        if (!copy)
            return GEMINI_ERR_OUT_OF_MEMORY;
        node->number = strtod(copy, NULL);
        free(copy);
    } else {
        memcpy(tmp, start, len);
        tmp[len] = 0;
        node->number = strtod(tmp, NULL);
    }
    return GEMINI_OK;
}

static gemini_result cv_json_value(cv_json *j, size_t *out);

static int cv_json_literal(cv_json *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return 0;
    j->p += n;
    return 1;
}

static gemini_result cv_json_container(cv_json *j, size_t index, int is_object)
{
    size_t last = 0;
    char close = is_object ? '}' : ']';
    gemini_result r;
    if (++j->depth > CV_JSON_MAX_DEPTH)
        return cv_json_error(j, "nesting too deep");
    j->p++;
    cv_json_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return GEMINI_OK;
    }
    for (;;) {
        size_t key = 0, key_len = 0, child;
        cv_json_ws(j);
        if (is_object) {
            if (j->p >= j->end || *j->p != '"')
                return cv_json_error(j, "expected a string key");
            r = cv_json_string(j, &key, &key_len);
            if (r != GEMINI_OK)
                return r;
            cv_json_ws(j);
            if (j->p >= j->end || *j->p != ':')
                return cv_json_error(j, "expected ':'");
            j->p++;
        }
        r = cv_json_value(j, &child);
        if (r != GEMINI_OK)
            return r;
        j->nodes[child].key = (uint32_t)key;
        j->nodes[child].key_len = (uint32_t)key_len;
        if (last)
            j->nodes[last].next = (uint32_t)child;
        else
            j->nodes[index].first_child = (uint32_t)child;
        last = child;
        j->nodes[index].count++;
        cv_json_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            break;
        }
        return cv_json_error(j, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    j->depth--;
    return GEMINI_OK;
}

static gemini_result cv_json_value(cv_json *j, size_t *out)
{
    gemini_result r;
    size_t index;
    cv_json_ws(j);
    if (j->p >= j->end)
        return cv_json_error(j, "unexpected end of input");
    switch (*j->p) {
    case '{':
    case '[':
        r = cv_json_new_node(j, *j->p == '{' ? CV_JOBJ : CV_JARR, &index);
        if (r != GEMINI_OK)
            return r;
        r = cv_json_container(j, index, j->nodes[index].type == CV_JOBJ);
        break;
    case '"':
        r = cv_json_new_node(j, CV_JSTR, &index);
        if (r != GEMINI_OK)
            return r;
        {
            size_t offset = 0, length = 0;
            r = cv_json_string(j, &offset, &length);
            j->nodes[index].str = (uint32_t)offset;
            j->nodes[index].str_len = (uint32_t)length;
        }
        break;
    case 't':
    case 'f':
    case 'n':
        if (cv_json_literal(j, "true") || cv_json_literal(j, "false")) {
            r = cv_json_new_node(j, CV_JBOOL, &index);
            if (r == GEMINI_OK)
                j->nodes[index].boolean = j->p[-1] == 'e' && j->p[-2] == 'u';
        } else if (cv_json_literal(j, "null")) {
            r = cv_json_new_node(j, CV_JNULL, &index);
        } else {
            return cv_json_error(j, "unknown literal");
        }
        break;
    default:
        r = cv_json_new_node(j, CV_JNUM, &index);
        if (r != GEMINI_OK)
            return r;
        {
            cv_jnode tmp;
            memset(&tmp, 0, sizeof tmp);
            tmp.type = CV_JNUM;
            r = cv_json_number(j, &tmp);
            j->nodes[index] = tmp;
        }
        break;
    }
    if (r == GEMINI_OK)
        *out = index;
    return r;
}

static void cv_json_free(cv_json *j)
{
    free(j->nodes);
    free(j->pool);
    memset(j, 0, sizeof *j);
}

/* Parses text[0..size) completely (only whitespace may follow the value). */
static gemini_result cv_json_parse(cv_json *j, const char *name, const char *text, size_t size)
{
    size_t root;
    gemini_result r;
    memset(j, 0, sizeof *j);
    j->name = name;
    j->text = j->p = text;
    j->end = text + size;
    j->pool = (char *)cv_alloc((uint64_t)size + 1, name);
    if (!j->pool)
        return GEMINI_ERR_OUT_OF_MEMORY;
    r = cv_json_value(j, &root);
    if (r == GEMINI_OK) {
        cv_json_ws(j);
        if (j->p != j->end)
            r = cv_json_error(j, "trailing characters after the value");
    }
    if (r != GEMINI_OK)
        cv_json_free(j);
    return r;
}

static cv_jnode *cv_jroot(cv_json *j)
{
    return &j->nodes[0];
}

static const char *cv_jkey(const cv_json *j, const cv_jnode *n)
{
    return j->pool + n->key;
}

static const char *cv_jstr(const cv_json *j, const cv_jnode *n)
{
    return j->pool + n->str;
}

static cv_jnode *cv_jchild(cv_json *j, const cv_jnode *n)
{
    return n->first_child ? &j->nodes[n->first_child] : NULL;
}

static cv_jnode *cv_jnext(cv_json *j, const cv_jnode *n)
{
    return n->next ? &j->nodes[n->next] : NULL;
}

/* Member `key` of an object, NULL if absent or if obj is not an object. */
static cv_jnode *cv_jget(cv_json *j, const cv_jnode *obj, const char *key)
{
    cv_jnode *c;
    size_t n = strlen(key);
    if (!obj || obj->type != CV_JOBJ)
        return NULL;
    for (c = cv_jchild(j, obj); c; c = cv_jnext(j, c))
        if (c->key_len == n && memcmp(j->pool + c->key, key, n) == 0)
            return c;
    return NULL;
}

typedef struct cv_keyref {
    const char *s;
    size_t n;
} cv_keyref;

static int cv_keyref_cmp(const void *a, const void *b)
{
    const cv_keyref *x = (const cv_keyref *)a, *y = (const cv_keyref *)b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, n);
    if (c)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* Fails if an object holds the same key twice (sorting the keys, so large objects stay fast). */
static gemini_result cv_json_check_unique_keys(cv_json *j, const cv_jnode *obj)
{
    cv_keyref *keys;
    cv_jnode *c;
    size_t i = 0;
    if (obj->count < 2)
        return GEMINI_OK;
    keys = (cv_keyref *)cv_calloc(obj->count, sizeof *keys, j->name);
    if (!keys)
        return GEMINI_ERR_OUT_OF_MEMORY;
    for (c = cv_jchild(j, obj); c; c = cv_jnext(j, c), i++) {
        keys[i].s = j->pool + c->key;
        keys[i].n = c->key_len;
    }
    qsort(keys, obj->count, sizeof *keys, cv_keyref_cmp);
    for (i = 1; i < obj->count; i++) {
        if (cv_keyref_cmp(&keys[i - 1], &keys[i]) == 0) {
            gemini_result r = gemini__fail(GEMINI_ERR_FORMAT, "%s: duplicate key \"%.200s\"",
                                           j->name, keys[i].s);
            free(keys);
            return r;
        }
    }
    free(keys);
    return GEMINI_OK;
}

/* ============================================================================================
   Source tensor types: ggml's type ids, which also name safetensors' F32/F16/BF16
   ============================================================================================ */

enum {
    CV_GGML_F32 = 0, CV_GGML_F16 = 1, CV_GGML_Q4_0 = 2, CV_GGML_Q4_1 = 3, CV_GGML_Q5_0 = 6,
    CV_GGML_Q5_1 = 7, CV_GGML_Q8_0 = 8, CV_GGML_Q4_K = 12, CV_GGML_Q5_K = 13, CV_GGML_Q6_K = 14,
    CV_GGML_BF16 = 30
};

typedef void (*cv_dequant_fn)(const unsigned char *src, float *dst, int64_t n_blocks);

typedef struct cv_srctype {
    int id;                  /* ggml type id */
    const char *name;
    int64_t block;           /* values per block */
    int64_t block_bytes;
    int gemini;              /* the same bytes as this gemini_type, or -1 */
    cv_dequant_fn dequant;   /* NULL when gemini_dequantize_row handles it */
} cv_srctype;

static float cv_h2f(const unsigned char *p)
{
    return gemini_f16_to_f32(cv_rd16(p));
}

/* The dequantisers below compute each value with the same float operations, in the same order,
   as ggml's reference dequantize_row_* functions, so results match bit for bit. */

/* Q4_1: f16 d, f16 m, 16 bytes of nibbles (low nibbles: values 0-15, high: 16-31). */
static void cv_dequant_q4_1(const unsigned char *src, float *dst, int64_t n_blocks)
{
    int64_t b;
    int j;
    for (b = 0; b < n_blocks; b++, src += 20, dst += 32) {
        const float d = cv_h2f(src), m = cv_h2f(src + 2);
        const unsigned char *qs = src + 4;
        for (j = 0; j < 16; j++) {
            dst[j] = (float)(qs[j] & 0x0F) * d + m;
            dst[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

/* Q5_0: f16 d, u32 of fifth bits, 16 bytes of nibbles; values are 5-bit minus 16. */
static void cv_dequant_q5_0(const unsigned char *src, float *dst, int64_t n_blocks)
{
    int64_t b;
    int j;
    for (b = 0; b < n_blocks; b++, src += 22, dst += 32) {
        const float d = cv_h2f(src);
        const uint32_t qh = cv_rd32(src + 2);
        const unsigned char *qs = src + 6;
        for (j = 0; j < 16; j++) {
            const int high0 = (int)((qh >> j) << 4 & 0x10);
            const int high1 = (int)((qh >> (j + 12)) & 0x10);
            const int x0 = ((qs[j] & 0x0F) | high0) - 16;
            const int x1 = ((qs[j] >> 4) | high1) - 16;
            dst[j] = (float)x0 * d;
            dst[j + 16] = (float)x1 * d;
        }
    }
}

/* Q5_1: f16 d, f16 m, u32 of fifth bits, 16 bytes of nibbles; value = q * d + m. */
static void cv_dequant_q5_1(const unsigned char *src, float *dst, int64_t n_blocks)
{
    int64_t b;
    int j;
    for (b = 0; b < n_blocks; b++, src += 24, dst += 32) {
        const float d = cv_h2f(src), m = cv_h2f(src + 2);
        const uint32_t qh = cv_rd32(src + 4);
        const unsigned char *qs = src + 8;
        for (j = 0; j < 16; j++) {
            const int high0 = (int)((qh >> j) << 4 & 0x10);
            const int high1 = (int)((qh >> (j + 12)) & 0x10);
            const int x0 = (qs[j] & 0x0F) | high0;
            const int x1 = (qs[j] >> 4) | high1;
            dst[j] = (float)x0 * d + m;
            dst[j + 16] = (float)x1 * d + m;
        }
    }
}

/* The 6-bit scale and min of sub-block j of a Q4_K or Q5_K super-block (12 packed bytes). */
static void cv_k_scale_min(int j, const unsigned char *scales, int *sc, int *m)
{
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4);
        *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* Q4_K: 256 values = 8 sub-blocks of 32 with 6-bit scales and mins. */
static void cv_dequant_q4_k(const unsigned char *src, float *dst, int64_t n_blocks)
{
    int64_t b;
    int chunk, l;
    for (b = 0; b < n_blocks; b++, src += 144) {
        const float d = cv_h2f(src), dmin = cv_h2f(src + 2);
        const unsigned char *scales = src + 4, *q = src + 16;
        for (chunk = 0; chunk < 4; chunk++, q += 32) {
            int sc, m;
            float d1, m1, d2, m2;
            cv_k_scale_min(2 * chunk, scales, &sc, &m);
            d1 = d * (float)sc;
            m1 = dmin * (float)m;
            cv_k_scale_min(2 * chunk + 1, scales, &sc, &m);
            d2 = d * (float)sc;
            m2 = dmin * (float)m;
            for (l = 0; l < 32; l++)
                *dst++ = d1 * (float)(q[l] & 0x0F) - m1;
            for (l = 0; l < 32; l++)
                *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

/* Q5_K: as Q4_K plus a fifth bit per value in qh (bit pair 2c, 2c+1 for chunk c). */
static void cv_dequant_q5_k(const unsigned char *src, float *dst, int64_t n_blocks)
{
    int64_t b;
    int chunk, l;
    for (b = 0; b < n_blocks; b++, src += 176) {
        const float d = cv_h2f(src), dmin = cv_h2f(src + 2);
        const unsigned char *scales = src + 4, *qh = src + 16, *q = src + 48;
        for (chunk = 0; chunk < 4; chunk++, q += 32) {
            const unsigned bit1 = 1u << (2 * chunk), bit2 = 2u << (2 * chunk);
            int sc, m;
            float d1, m1, d2, m2;
            cv_k_scale_min(2 * chunk, scales, &sc, &m);
            d1 = d * (float)sc;
            m1 = dmin * (float)m;
            cv_k_scale_min(2 * chunk + 1, scales, &sc, &m);
            d2 = d * (float)sc;
            m2 = dmin * (float)m;
            for (l = 0; l < 32; l++)
                *dst++ = d1 * (float)((q[l] & 0x0F) + ((qh[l] & bit1) ? 16 : 0)) - m1;
            for (l = 0; l < 32; l++)
                *dst++ = d2 * (float)((q[l] >> 4) + ((qh[l] & bit2) ? 16 : 0)) - m2;
        }
    }
}

/* Q6_K: ql[128], qh[64], i8 scales[16], then f16 d; 16 sub-blocks of 16 values. */
static void cv_dequant_q6_k(const unsigned char *src, float *dst, int64_t n_blocks)
{
    int64_t b;
    int half, l;
    for (b = 0; b < n_blocks; b++, src += 210) {
        const float d = cv_h2f(src + 208);
        const unsigned char *ql = src, *qh = src + 128;
        const signed char *sc = (const signed char *)(src + 192);
        for (half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, dst += 128) {
            for (l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                dst[l] = d * (float)sc[is + 0] * (float)q1;
                dst[l + 32] = d * (float)sc[is + 2] * (float)q2;
                dst[l + 64] = d * (float)sc[is + 4] * (float)q3;
                dst[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

static const cv_srctype cv_srctypes[] = {
    {CV_GGML_F32, "F32", 1, 4, GEMINI_TYPE_F32, NULL},
    {CV_GGML_F16, "F16", 1, 2, GEMINI_TYPE_F16, NULL},
    {CV_GGML_BF16, "BF16", 1, 2, GEMINI_TYPE_BF16, NULL},
    {CV_GGML_Q8_0, "Q8_0", 32, 34, GEMINI_TYPE_Q8_0, NULL},
    {CV_GGML_Q4_0, "Q4_0", 32, 18, GEMINI_TYPE_Q4_0, NULL},
    {CV_GGML_Q4_1, "Q4_1", 32, 20, -1, cv_dequant_q4_1},
    {CV_GGML_Q5_0, "Q5_0", 32, 22, -1, cv_dequant_q5_0},
    {CV_GGML_Q5_1, "Q5_1", 32, 24, -1, cv_dequant_q5_1},
    {CV_GGML_Q4_K, "Q4_K", 256, 144, -1, cv_dequant_q4_k},
    {CV_GGML_Q5_K, "Q5_K", 256, 176, -1, cv_dequant_q5_k},
    {CV_GGML_Q6_K, "Q6_K", 256, 210, -1, cv_dequant_q6_k},
};

static const cv_srctype *cv_srctype_find(int id)
{
    size_t i;
    for (i = 0; i < sizeof cv_srctypes / sizeof cv_srctypes[0]; i++)
        if (cv_srctypes[i].id == id)
            return &cv_srctypes[i];
    return NULL;
}

/* Dequantises n values (a multiple of the block size) of a source type into f32. */
static gemini_result cv_dequant(const cv_srctype *t, const void *src, float *dst, int64_t n)
{
    if (t->dequant) {
        t->dequant((const unsigned char *)src, dst, n / t->block);
        return GEMINI_OK;
    }
    return gemini_dequantize_row((gemini_type)t->gemini, src, dst, n);
}

/* ============================================================================================
   Source model: the tensors of the input, wherever they live
   ============================================================================================ */

typedef struct cv_src_tensor {
    char *name;
    int type;                /* ggml type id, or -1 for a dtype we cannot read */
    char dtype_name[16];     /* as spelled in the input, for messages */
    int n_dims;
    uint64_t dims[4];        /* row-major, outermost first */
    uint64_t n_values;
    int file;                /* index into cv_source.files */
    uint64_t offset;         /* absolute offset in that file */
    uint64_t size;           /* bytes */
    const char *from;        /* CTranslate2: the variable this part was cut from, for messages */
} cv_src_tensor;

/* One GGUF metadata value. Numbers keep their raw little-endian bytes. */
typedef struct cv_gstr {
    char *s;                 /* NUL-terminated copy */
    uint32_t n;
} cv_gstr;

typedef struct cv_gkv {
    char *key;
    uint32_t type;           /* GGUF value type */
    uint32_t elem_type;      /* for arrays */
    uint64_t count;          /* for arrays */
    unsigned char raw[8];    /* scalar numbers and bools */
    cv_gstr str;             /* a string */
    unsigned char *array;    /* numeric array elements, raw */
    cv_gstr *strings;        /* string array elements */
} cv_gkv;

typedef struct cv_source {
    const char *input;       /* what the user named */
    int is_gguf;
    int is_ct2;              /* a CTranslate2 model.bin */
    char ct2_spec[64];       /* its specification name ("WhisperSpec") */
    uint32_t ct2_revision;
    cv_file *files;
    int n_files;
    cv_src_tensor *tensors;
    size_t n_tensors, cap_tensors;
    cv_gkv *kvs;             /* GGUF only */
    size_t n_kvs;
} cv_source;

static void cv_source_free(cv_source *s)
{
    size_t i;
    uint64_t k;
    int f;
    for (f = 0; f < s->n_files; f++)
        cv_file_close(&s->files[f]);
    free(s->files);
    for (i = 0; i < s->n_tensors; i++)
        free(s->tensors[i].name);
    free(s->tensors);
    for (i = 0; i < s->n_kvs; i++) {
        free(s->kvs[i].key);
        free(s->kvs[i].str.s);
        free(s->kvs[i].array);
        if (s->kvs[i].strings)
            for (k = 0; k < s->kvs[i].count; k++)
                free(s->kvs[i].strings[k].s);
        free(s->kvs[i].strings);
    }
    free(s->kvs);
    memset(s, 0, sizeof *s);
}

static gemini_result cv_source_add_file(cv_source *s, const char *path, int *index)
{
    cv_file *grown = (cv_file *)realloc(s->files, (size_t)(s->n_files + 1) * sizeof(cv_file));
    gemini_result r;
    if (!grown)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    s->files = grown;
    r = cv_file_open(&s->files[s->n_files], path);
    if (r != GEMINI_OK)
        return r;
    *index = s->n_files++;
    return GEMINI_OK;
}

static gemini_result cv_source_add_tensor(cv_source *s, cv_src_tensor **out)
{
    if (s->n_tensors >= CV_MAX_TENSORS)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: more than %llu tensors", s->input,
                            (unsigned long long)CV_MAX_TENSORS);
    if (s->n_tensors == s->cap_tensors) {
        size_t cap = s->cap_tensors ? s->cap_tensors * 2 : 256;
        cv_src_tensor *grown = (cv_src_tensor *)realloc(s->tensors, cap * sizeof(cv_src_tensor));
        if (!grown)
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: out of memory", s->input);
        s->tensors = grown;
        s->cap_tensors = cap;
    }
    *out = &s->tensors[s->n_tensors++];
    memset(*out, 0, sizeof **out);
    return GEMINI_OK;
}

static cv_src_tensor *cv_source_find(cv_source *s, const char *name)
{
    size_t i;
    for (i = 0; i < s->n_tensors; i++)
        if (strcmp(s->tensors[i].name, name) == 0)
            return &s->tensors[i];
    return NULL;
}

static void cv_shape_string(const cv_src_tensor *t, char *out, size_t size)
{
    int d;
    size_t used = 0;
    used += (size_t)snprintf(out, size, "[");
    for (d = 0; d < t->n_dims && used < size; d++)
        used += (size_t)snprintf(out + used, size - used, "%s%llu", d ? ", " : "",
                                 (unsigned long long)t->dims[d]);
    if (used < size)
        snprintf(out + used, size - used, "]");
}

/* ============================================================================================
   Safetensors
   ============================================================================================ */

static gemini_result cv_safetensors_open(cv_source *s, const char *path)
{
    unsigned char len_bytes[8];
    uint64_t header_len, data_start, data_len;
    char *header = NULL;
    cv_json j;
    cv_jnode *root, *entry;
    int file;
    gemini_result r = cv_source_add_file(s, path, &file);
    cv_file *f;
    if (r != GEMINI_OK)
        return r;
    f = &s->files[file];
    r = cv_file_read(f, 0, len_bytes, 8, "header length");
    if (r != GEMINI_OK)
        return r;
    header_len = cv_rd64(len_bytes);
    if (header_len < 2 || header_len > CV_MAX_ST_HEADER || header_len > f->size - 8)
        return gemini__fail(GEMINI_ERR_FORMAT,
                            "%s: safetensors header length %llu is invalid (file has %llu "
                            "bytes, limit %llu)",
                            path, (unsigned long long)header_len, (unsigned long long)f->size,
                            (unsigned long long)CV_MAX_ST_HEADER);
    header = (char *)cv_alloc(header_len + 1, path);
    if (!header)
        return GEMINI_ERR_OUT_OF_MEMORY;
    r = cv_file_read(f, 8, header, header_len, "JSON header");
    if (r != GEMINI_OK) {
        free(header);
        return r;
    }
    data_start = 8 + header_len;
    data_len = f->size - data_start;
    r = cv_json_parse(&j, path, header, (size_t)header_len);
    free(header);
    if (r != GEMINI_OK)
        return r;
    root = cv_jroot(&j);
    if (root->type != CV_JOBJ) {
        cv_json_free(&j);
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: the safetensors header is not an object",
                            path);
    }
    r = cv_json_check_unique_keys(&j, root);
    for (entry = cv_jchild(&j, root); entry && r == GEMINI_OK; entry = cv_jnext(&j, entry)) {
        const char *name = cv_jkey(&j, entry);
        cv_jnode *dtype = cv_jget(&j, entry, "dtype"), *shape = cv_jget(&j, entry, "shape");
        cv_jnode *offs = cv_jget(&j, entry, "data_offsets"), *dim;
        cv_src_tensor *t;
        uint64_t begin, end, elem_size = 0, bytes;
        if (strcmp(name, "__metadata__") == 0)
            continue;
        if (!dtype || dtype->type != CV_JSTR || !shape || shape->type != CV_JARR || !offs ||
            offs->type != CV_JARR || offs->count != 2) {
            r = gemini__fail(GEMINI_ERR_FORMAT,
                             "%s: tensor \"%.200s\" needs dtype, shape and data_offsets", path,
                             name);
            break;
        }
        if (shape->count > 4) {
            r = gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: tensor \"%.200s\" has %lu dimensions",
                             path, name, (unsigned long)shape->count);
            break;
        }
        r = cv_source_add_tensor(s, &t);
        if (r != GEMINI_OK)
            break;
        t->name = cv_strdup(name);
        if (!t->name) {
            r = GEMINI_ERR_OUT_OF_MEMORY;
            break;
        }
        t->file = file;
        snprintf(t->dtype_name, sizeof t->dtype_name, "%.15s", cv_jstr(&j, dtype));
        if (strcmp(t->dtype_name, "F32") == 0)
            t->type = CV_GGML_F32, elem_size = 4;
        else if (strcmp(t->dtype_name, "F16") == 0)
            t->type = CV_GGML_F16, elem_size = 2;
        else if (strcmp(t->dtype_name, "BF16") == 0)
            t->type = CV_GGML_BF16, elem_size = 2;
        else
            t->type = -1;
        t->n_values = 1;
        for (dim = cv_jchild(&j, shape); dim; dim = cv_jnext(&j, dim)) {
            if (dim->type != CV_JNUM || !dim->is_int || dim->negative || dim->int_overflow ||
                dim->uint_value > CV_MAX_DIM ||
                !cv_mul_u64(t->n_values, dim->uint_value, &t->n_values)) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "%s: tensor \"%.200s\": bad shape", path,
                                 name);
                break;
            }
            t->dims[t->n_dims++] = dim->uint_value;
        }
        if (r != GEMINI_OK)
            break;
        begin = cv_jchild(&j, offs)->uint_value;
        end = cv_jnext(&j, cv_jchild(&j, offs))->uint_value;
        if (cv_jchild(&j, offs)->type != CV_JNUM || !cv_jchild(&j, offs)->is_int ||
            cv_jnext(&j, cv_jchild(&j, offs))->type != CV_JNUM ||
            !cv_jnext(&j, cv_jchild(&j, offs))->is_int || cv_jchild(&j, offs)->negative ||
            cv_jnext(&j, cv_jchild(&j, offs))->negative || begin > end || end > data_len) {
            r = gemini__fail(GEMINI_ERR_FORMAT,
                             "%s: tensor \"%.200s\": data_offsets [%llu, %llu] outside the %llu "
                             "data bytes",
                             path, name, (unsigned long long)begin, (unsigned long long)end,
                             (unsigned long long)data_len);
            break;
        }
        if (elem_size && (!cv_mul_u64(t->n_values, elem_size, &bytes) || bytes != end - begin)) {
            r = gemini__fail(GEMINI_ERR_FORMAT,
                             "%s: tensor \"%.200s\": %llu bytes for %llu %s values", path, name,
                             (unsigned long long)(end - begin), (unsigned long long)t->n_values,
                             t->dtype_name);
            break;
        }
        t->offset = data_start + begin;
        t->size = end - begin;
    }
    cv_json_free(&j);
    return r;
}

/* ============================================================================================
   GGUF v3
   ============================================================================================ */

enum {
    CV_GV_U8 = 0, CV_GV_I8, CV_GV_U16, CV_GV_I16, CV_GV_U32, CV_GV_I32, CV_GV_F32, CV_GV_BOOL,
    CV_GV_STRING, CV_GV_ARRAY, CV_GV_U64, CV_GV_I64, CV_GV_F64, CV_GV_COUNT
};

static const char *const cv_gv_names[CV_GV_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};

static uint64_t cv_gv_size(uint32_t type)
{
    static const unsigned char sizes[CV_GV_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < CV_GV_COUNT ? sizes[type] : 0;
}

typedef struct cv_gguf_parse {
    cv_reader *rd;
    const char *path;
    uint64_t budget;         /* bytes of metadata we may still copy into memory */
} cv_gguf_parse;

static gemini_result cv_gguf_u32(cv_gguf_parse *p, uint32_t *v, const char *what)
{
    unsigned char b[4];
    gemini_result r = cv_reader_read(p->rd, b, 4, what);
    *v = cv_rd32(b);
    return r;
}

static gemini_result cv_gguf_u64(cv_gguf_parse *p, uint64_t *v, const char *what)
{
    unsigned char b[8];
    gemini_result r = cv_reader_read(p->rd, b, 8, what);
    *v = cv_rd64(b);
    return r;
}

static gemini_result cv_gguf_string(cv_gguf_parse *p, cv_gstr *out, uint64_t max_len,
                                    const char *what)
{
    uint64_t len;
    gemini_result r = cv_gguf_u64(p, &len, what);
    out->s = NULL;
    out->n = 0;
    if (r != GEMINI_OK)
        return r;
    if (len > max_len || len + 16 > p->budget)
        return gemini__fail(GEMINI_ERR_FORMAT,
                            "%s: %s at offset %llu has length %llu (limit %llu)", p->path, what,
                            (unsigned long long)(p->rd->pos - 8), (unsigned long long)len,
                            (unsigned long long)(len > p->budget ? p->budget : max_len));
    if (len > p->rd->file->size - p->rd->pos)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: truncated: %s of %llu bytes at offset %llu",
                            p->path, what, (unsigned long long)len,
                            (unsigned long long)p->rd->pos);
    out->s = (char *)cv_alloc(len + 1, p->path);
    if (!out->s)
        return GEMINI_ERR_OUT_OF_MEMORY;
    r = cv_reader_read(p->rd, out->s, len, what);
    if (r != GEMINI_OK) {
        free(out->s);
        out->s = NULL;
        return r;
    }
    out->s[len] = 0;
    out->n = (uint32_t)len;
    p->budget -= len + 16;
    return GEMINI_OK;
}

/* Reads one value of `type` into kv (depth: arrays of arrays are read and discarded). */
static gemini_result cv_gguf_value(cv_gguf_parse *p, cv_gkv *kv, uint32_t type, int depth)
{
    gemini_result r;
    uint64_t size = cv_gv_size(type), i, bytes;
    kv->type = type;
    if (type >= CV_GV_COUNT)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: key \"%s\": unknown value type %u", p->path,
                            kv->key, type);
    if (type == CV_GV_STRING)
        return cv_gguf_string(p, &kv->str, CV_MAX_GGUF_STRING, kv->key);
    if (type != CV_GV_ARRAY) {
        r = cv_reader_read(p->rd, kv->raw, size, kv->key);
        if (r == GEMINI_OK && type == CV_GV_BOOL && kv->raw[0] > 1)
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: key \"%s\": bool value %u", p->path,
                                kv->key, kv->raw[0]);
        return r;
    }

    /* Arrays: element type, count, then the elements. */
    r = cv_gguf_u32(p, &kv->elem_type, kv->key);
    if (r == GEMINI_OK)
        r = cv_gguf_u64(p, &kv->count, kv->key);
    if (r != GEMINI_OK)
        return r;
    if (kv->elem_type >= CV_GV_COUNT)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: key \"%s\": unknown array element type %u",
                            p->path, kv->key, kv->elem_type);
    if (kv->count > CV_MAX_COUNT || kv->count > p->rd->file->size - p->rd->pos)
        return gemini__fail(GEMINI_ERR_FORMAT,
                            "%s: key \"%s\": array count %llu cannot fit in the file", p->path,
                            kv->key, (unsigned long long)kv->count);
    if (kv->elem_type == CV_GV_ARRAY) {
        /* Nested arrays are legal GGUF but hold nothing we use: read past them. */
        if (depth >= 4)
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: key \"%s\": arrays nested too deep",
                                p->path, kv->key);
        for (i = 0; i < kv->count; i++) {
            cv_gkv inner;
            memset(&inner, 0, sizeof inner);
            inner.key = kv->key;
            r = cv_gguf_value(p, &inner, CV_GV_ARRAY, depth + 1);
            free(inner.str.s);
            free(inner.array);
            if (inner.strings) {
                uint64_t k;
                for (k = 0; k < inner.count; k++)
                    free(inner.strings[k].s);
                free(inner.strings);
            }
            if (r != GEMINI_OK)
                return r;
        }
        kv->count = 0;
        return GEMINI_OK;
    }
    if (kv->elem_type == CV_GV_STRING) {
        kv->strings = (cv_gstr *)cv_calloc(kv->count, sizeof(cv_gstr), p->path);
        if (!kv->strings)
            return GEMINI_ERR_OUT_OF_MEMORY;
        for (i = 0; i < kv->count; i++) {
            r = cv_gguf_string(p, &kv->strings[i], CV_MAX_GGUF_STRING, kv->key);
            if (r != GEMINI_OK)
                return r;
        }
        return GEMINI_OK;
    }
    bytes = kv->count * cv_gv_size(kv->elem_type);
    if (bytes > p->budget)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: key \"%s\": metadata too large",
                            p->path, kv->key);
    kv->array = (unsigned char *)cv_alloc(bytes, p->path);
    if (!kv->array)
        return GEMINI_ERR_OUT_OF_MEMORY;
    p->budget -= bytes;
    r = cv_reader_read(p->rd, kv->array, bytes, kv->key);
    if (r == GEMINI_OK && kv->elem_type == CV_GV_BOOL)
        for (i = 0; i < kv->count; i++)
            if (kv->array[i] > 1)
                return gemini__fail(GEMINI_ERR_FORMAT, "%s: key \"%s\": bool value %u", p->path,
                                    kv->key, kv->array[i]);
    return r;
}

static cv_gkv *cv_gguf_find(cv_source *s, const char *key)
{
    size_t i;
    for (i = 0; i < s->n_kvs; i++)
        if (strcmp(s->kvs[i].key, key) == 0)
            return &s->kvs[i];
    return NULL;
}

/* Integer value of raw bytes of GGUF type `type`; false if not an integer type or negative. */
static int cv_gguf_raw_uint(uint32_t type, const unsigned char *raw, uint64_t *out)
{
    int64_t sv;
    switch (type) {
    case CV_GV_U8: *out = raw[0]; return 1;
    case CV_GV_U16: *out = cv_rd16(raw); return 1;
    case CV_GV_U32: *out = cv_rd32(raw); return 1;
    case CV_GV_U64: *out = cv_rd64(raw); return 1;
    case CV_GV_I8: sv = (int8_t)raw[0]; break;
    case CV_GV_I16: sv = (int16_t)cv_rd16(raw); break;
    case CV_GV_I32: sv = (int32_t)cv_rd32(raw); break;
    case CV_GV_I64: sv = (int64_t)cv_rd64(raw); break;
    default: return 0;
    }
    if (sv < 0)
        return 0;
    *out = (uint64_t)sv;
    return 1;
}

/* Signed integer value (for token ids, which may be -1). */
static int cv_gguf_raw_int(uint32_t type, const unsigned char *raw, int64_t *out)
{
    uint64_t u;
    switch (type) {
    case CV_GV_I8: *out = (int8_t)raw[0]; return 1;
    case CV_GV_I16: *out = (int16_t)cv_rd16(raw); return 1;
    case CV_GV_I32: *out = (int32_t)cv_rd32(raw); return 1;
    case CV_GV_I64: *out = (int64_t)cv_rd64(raw); return 1;
    default:
        if (!cv_gguf_raw_uint(type, raw, &u) || u > (uint64_t)INT64_MAX)
            return 0;
        *out = (int64_t)u;
        return 1;
    }
}

static int cv_gguf_raw_f64(uint32_t type, const unsigned char *raw, double *out)
{
    int64_t i;
    if (type == CV_GV_F32) {
        *out = cv_f32_from_bits(cv_rd32(raw));
        return 1;
    }
    if (type == CV_GV_F64) {
        uint64_t bits = cv_rd64(raw);
        memcpy(out, &bits, 8);
        return 1;
    }
    if (cv_gguf_raw_int(type, raw, &i)) {
        *out = (double)i;
        return 1;
    }
    return 0;
}

/* Typed getters: return 0 if absent, 1 if read; fail with a message on a wrong type. */
static int cv_gguf_get_uint(cv_source *s, const char *key, uint64_t *out, gemini_result *err)
{
    cv_gkv *kv = cv_gguf_find(s, key);
    if (!kv)
        return 0;
    if (!cv_gguf_raw_uint(kv->type, kv->raw, out)) {
        *err = gemini__fail(GEMINI_ERR_FORMAT, "%s: key \"%s\": expected a non-negative integer",
                            s->input, key);
        return 0;
    }
    return 1;
}

static int cv_gguf_get_f64(cv_source *s, const char *key, double *out, gemini_result *err)
{
    cv_gkv *kv = cv_gguf_find(s, key);
    if (!kv)
        return 0;
    if (!cv_gguf_raw_f64(kv->type, kv->raw, out)) {
        *err = gemini__fail(GEMINI_ERR_FORMAT, "%s: key \"%s\": expected a number", s->input,
                            key);
        return 0;
    }
    return 1;
}

static int cv_gguf_get_bool(cv_source *s, const char *key, int *out, gemini_result *err)
{
    cv_gkv *kv = cv_gguf_find(s, key);
    if (!kv)
        return 0;
    if (kv->type != CV_GV_BOOL) {
        *err = gemini__fail(GEMINI_ERR_FORMAT, "%s: key \"%s\": expected a bool", s->input, key);
        return 0;
    }
    *out = kv->raw[0];
    return 1;
}

static const char *cv_gguf_get_str(cv_source *s, const char *key)
{
    cv_gkv *kv = cv_gguf_find(s, key);
    return kv && kv->type == CV_GV_STRING ? kv->str.s : NULL;
}

static gemini_result cv_gguf_open(cv_source *s, const char *path)
{
    cv_reader *rd;
    cv_gguf_parse p;
    unsigned char head[24];
    uint64_t n_tensors, n_kv, i, alignment = 32, data_start;
    uint32_t version;
    int file;
    gemini_result r = cv_source_add_file(s, path, &file);
    if (r != GEMINI_OK)
        return r;
    rd = (cv_reader *)cv_calloc(1, sizeof *rd, path);
    if (!rd)
        return GEMINI_ERR_OUT_OF_MEMORY;
    rd->file = &s->files[file];
    p.rd = rd;
    p.path = path;
    p.budget = CV_MAX_GGUF_META;
    s->is_gguf = 1;

    /* Header: magic, version, tensor count, key/value count. */
    r = cv_reader_read(rd, head, 24, "GGUF header");
    if (r != GEMINI_OK)
        goto done;
    if (memcmp(head, "GGUF", 4) != 0) {
        r = gemini__fail(GEMINI_ERR_FORMAT, "%s: not a GGUF file (magic %02X %02X %02X %02X)",
                         path, head[0], head[1], head[2], head[3]);
        goto done;
    }
    version = cv_rd32(head + 4);
    if (version != 3 && version != 2) {
        r = gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: GGUF version %u (only 2 and 3 are read)",
                         path, version);
        goto done;
    }
    n_tensors = cv_rd64(head + 8);
    n_kv = cv_rd64(head + 16);
    if (n_tensors > CV_MAX_TENSORS || n_kv > CV_MAX_KEYS ||
        n_tensors * 24 + n_kv * 12 > rd->file->size) {
        r = gemini__fail(GEMINI_ERR_FORMAT,
                         "%s: tensor count %llu / key count %llu cannot fit in %llu bytes", path,
                         (unsigned long long)n_tensors, (unsigned long long)n_kv,
                         (unsigned long long)rd->file->size);
        goto done;
    }

    /* Metadata. */
    s->kvs = (cv_gkv *)cv_calloc(n_kv, sizeof(cv_gkv), path);
    if (!s->kvs) {
        r = GEMINI_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (i = 0; i < n_kv; i++) {
        cv_gkv *kv = &s->kvs[i];
        cv_gstr key;
        uint32_t type;
        r = cv_gguf_string(&p, &key, 65535, "metadata key");
        if (r != GEMINI_OK)
            goto done;
        kv->key = key.s;
        s->n_kvs++;
        if (cv_gguf_find(s, key.s) != kv) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: duplicate metadata key \"%.200s\"", path,
                             key.s);
            goto done;
        }
        r = cv_gguf_u32(&p, &type, key.s);
        if (r == GEMINI_OK)
            r = cv_gguf_value(&p, kv, type, 0);
        if (r != GEMINI_OK)
            goto done;
    }
    {
        cv_gkv *kv = cv_gguf_find(s, "general.alignment");
        if (kv) {
            if (kv->type != CV_GV_U32 || cv_rd32(kv->raw) == 0 ||
                (cv_rd32(kv->raw) & (cv_rd32(kv->raw) - 1)) != 0) {
                r = gemini__fail(GEMINI_ERR_FORMAT,
                                 "%s: general.alignment must be a u32 power of two", path);
                goto done;
            }
            alignment = cv_rd32(kv->raw);
        }
    }

    /* Tensor infos: name, dims (innermost first), type, offset from the data section. */
    for (i = 0; i < n_tensors; i++) {
        cv_src_tensor *t;
        cv_gstr name;
        uint32_t n_dims, type;
        uint64_t ne[4], d, offset, bytes;
        const cv_srctype *st;
        r = cv_gguf_string(&p, &name, 256, "tensor name");
        if (r != GEMINI_OK)
            goto done;
        r = cv_source_add_tensor(s, &t);
        if (r != GEMINI_OK) {
            free(name.s);
            goto done;
        }
        t->name = name.s;
        t->file = file;
        r = cv_gguf_u32(&p, &n_dims, t->name);
        if (r != GEMINI_OK)
            goto done;
        if (n_dims < 1 || n_dims > 4) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: tensor \"%s\": %u dimensions", path,
                             t->name, n_dims);
            goto done;
        }
        t->n_dims = (int)n_dims;
        t->n_values = 1;
        for (d = 0; d < n_dims; d++) {
            r = cv_gguf_u64(&p, &ne[d], t->name);
            if (r != GEMINI_OK)
                goto done;
            if (ne[d] > CV_MAX_DIM || !cv_mul_u64(t->n_values, ne[d], &t->n_values)) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "%s: tensor \"%s\": dimension %llu too large",
                                 path, t->name, (unsigned long long)ne[d]);
                goto done;
            }
        }
        for (d = 0; d < n_dims; d++)
            t->dims[d] = ne[n_dims - 1 - d];
        r = cv_gguf_u32(&p, &type, t->name);
        if (r == GEMINI_OK)
            r = cv_gguf_u64(&p, &offset, t->name);
        if (r != GEMINI_OK)
            goto done;
        st = cv_srctype_find((int)type);
        t->type = st ? (int)type : -1;
        if (st) {
            snprintf(t->dtype_name, sizeof t->dtype_name, "%s", st->name);
            if (ne[0] % (uint64_t)st->block != 0) {
                r = gemini__fail(GEMINI_ERR_FORMAT,
                                 "%s: tensor \"%s\": row of %llu values is not a multiple of "
                                 "the %s block (%lld)",
                                 path, t->name, (unsigned long long)ne[0], st->name,
                                 (long long)st->block);
                goto done;
            }
            if (!cv_mul_u64(t->n_values / (uint64_t)st->block, (uint64_t)st->block_bytes,
                            &bytes)) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "%s: tensor \"%s\": size overflows", path,
                                 t->name);
                goto done;
            }
        } else {
            snprintf(t->dtype_name, sizeof t->dtype_name, "ggml type %u", type);
            bytes = 0;
        }
        if (offset % alignment != 0) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: tensor \"%s\": offset %llu is not aligned "
                             "to %llu", path, t->name, (unsigned long long)offset,
                             (unsigned long long)alignment);
            goto done;
        }
        t->offset = offset;  /* relative for now */
        t->size = bytes;
    }

    /* The data section starts at the next multiple of the alignment. */
    data_start = cv_align_up(rd->pos, alignment);
    for (i = 0; i < s->n_tensors; i++) {
        cv_src_tensor *t = &s->tensors[i];
        if (data_start > rd->file->size || t->offset > rd->file->size - data_start ||
            t->size > rd->file->size - data_start - t->offset) {
            r = gemini__fail(GEMINI_ERR_FORMAT,
                             "%s: tensor \"%s\": data at offset %llu (%llu bytes) lies beyond "
                             "the end of the file (%llu bytes)",
                             path, t->name, (unsigned long long)(data_start + t->offset),
                             (unsigned long long)t->size, (unsigned long long)rd->file->size);
            goto done;
        }
        t->offset += data_start;
    }

done:
    free(rd);
    return r;
}

/* ============================================================================================
   CTranslate2 model.bin, binary versions 4 to 6 (the layout CTranslate2's model_spec.py writes
   and its models/model.cc reads; faster-whisper's checkpoints are binary version 6)

       u32     binary version
       string  specification name, e.g. "WhisperSpec"      string: u16 n, then n bytes of
       u32     specification revision                        which the last is a NUL
       u32     variable count, then per variable:
                   string name, u8 rank, u32 dims[rank], u8 dtype, u32 n_bytes, n_bytes of data
       u32     alias count, then per alias: string name, string the variable it stands for

   Little-endian and packed. dtype: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16,
   5 bfloat16. Rank-0 variables are scalars (head counts, flags). An alias may name an earlier
   alias. Every variable becomes a source tensor under its own name; aliases become second
   records over the same bytes.
   ============================================================================================ */

#define CV_CT2_MAX_NAME 1024
#define CV_CT2_N_DTYPES 6

static const char *const cv_ct2_dtype_names[CV_CT2_N_DTYPES] = {
    "float32", "int8", "int16", "int32", "float16", "bfloat16"};
static const unsigned cv_ct2_dtype_sizes[CV_CT2_N_DTYPES] = {4, 1, 2, 4, 2, 2};

static gemini_result cv_ct2_u8(cv_reader *rd, unsigned *v, const char *what)
{
    unsigned char b;
    gemini_result r = cv_reader_read(rd, &b, 1, what);
    *v = b;
    return r;
}

static gemini_result cv_ct2_u32(cv_reader *rd, uint32_t *v, const char *what)
{
    unsigned char b[4];
    gemini_result r = cv_reader_read(rd, b, 4, what);
    *v = cv_rd32(b);
    return r;
}

/* One string into out (CV_CT2_MAX_NAME + 1 bytes): its length byte count includes the NUL,
   which must be the last byte and the only one. */
static gemini_result cv_ct2_string(cv_reader *rd, char *out, const char *what)
{
    unsigned char len_bytes[2];
    uint64_t at = rd->pos;
    unsigned n;
    gemini_result r = cv_reader_read(rd, len_bytes, 2, what);
    if (r != GEMINI_OK)
        return r;
    n = cv_rd16(len_bytes);
    if (n == 0 || n > CV_CT2_MAX_NAME)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: %s at offset %llu has length %u (1 to %d)",
                            rd->file->path, what, (unsigned long long)at, n, CV_CT2_MAX_NAME);
    r = cv_reader_read(rd, out, n, what);
    if (r != GEMINI_OK)
        return r;
    if (out[n - 1] != 0 || memchr(out, 0, n - 1))
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: %s at offset %llu is not one NUL-terminated "
                            "string", rd->file->path, what, (unsigned long long)at);
    return GEMINI_OK;
}

/* Reads one variable record (after its name) into a new source tensor. */
static gemini_result cv_ct2_variable(cv_source *s, cv_reader *rd, int file, const char *name)
{
    const char *path = rd->file->path;
    unsigned rank, dtype, d;
    uint32_t n_bytes, dim;
    uint64_t n_values = 1, want;
    cv_src_tensor *t;
    gemini_result r = cv_ct2_u8(rd, &rank, "rank");
    if (r != GEMINI_OK)
        return r;
    if (rank > 4)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: variable %.200s has rank %u (at most 4)",
                            path, name, rank);
    r = cv_source_add_tensor(s, &t);
    if (r != GEMINI_OK)
        return r;
    t->name = cv_strdup(name);
    if (!t->name)
        return GEMINI_ERR_OUT_OF_MEMORY;
    for (d = 0; d < rank; d++) {
        r = cv_ct2_u32(rd, &dim, "dimension");
        if (r != GEMINI_OK)
            return r;
        if (dim == 0 || !cv_mul_u64(n_values, dim, &n_values) || n_values > CV_MAX_DIM)
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: variable %.200s: dimension %u is %lu "
                                "(1 to 2^32-1, at most 2^40 values in all)", path, name, d,
                                (unsigned long)dim);
        t->dims[d] = dim;
    }
    t->n_dims = (int)rank;
    t->n_values = n_values;
    if ((r = cv_ct2_u8(rd, &dtype, "dtype")) != GEMINI_OK ||
        (r = cv_ct2_u32(rd, &n_bytes, "byte count")) != GEMINI_OK)
        return r;
    if (dtype >= CV_CT2_N_DTYPES)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: variable %.200s has dtype %u (0 to 5 are "
                            "defined)", path, name, dtype);
    want = n_values * cv_ct2_dtype_sizes[dtype];
    if (n_bytes != want)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: variable %.200s: %lu bytes for %llu %s "
                            "values", path, name, (unsigned long)n_bytes,
                            (unsigned long long)n_values, cv_ct2_dtype_names[dtype]);
    if (rd->pos > rd->file->size || n_bytes > rd->file->size - rd->pos)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: truncated: variable %.200s needs %lu bytes "
                            "at offset %llu, the file has %llu", path, name,
                            (unsigned long)n_bytes, (unsigned long long)rd->pos,
                            (unsigned long long)rd->file->size);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", cv_ct2_dtype_names[dtype]);
    t->type = dtype == 0 ? CV_GGML_F32 : dtype == 4 ? CV_GGML_F16 : dtype == 5 ? CV_GGML_BF16
                                                                               : -1;
    t->file = file;
    t->offset = rd->pos;
    t->size = n_bytes;
    rd->pos += n_bytes;
    return GEMINI_OK;
}

/* Reads a model.bin: every variable and alias becomes a source tensor (format above). The
   whole file must be consumed. */
static gemini_result cv_ct2_open(cv_source *s, const char *path)
{
    cv_reader *rd;
    char *name = NULL, *target = NULL;
    uint32_t version, count, i;
    int file;
    gemini_result r = cv_source_add_file(s, path, &file);
    if (r != GEMINI_OK)
        return r;
    s->is_ct2 = 1;
    rd = (cv_reader *)cv_calloc(1, sizeof *rd, path);
    name = (char *)cv_alloc(CV_CT2_MAX_NAME + 1, path);
    target = (char *)cv_alloc(CV_CT2_MAX_NAME + 1, path);
    if (!rd || !name || !target) {
        r = GEMINI_ERR_OUT_OF_MEMORY;
        goto done;
    }
    rd->file = &s->files[file];

    /* Header: binary version, specification name and revision. */
    if ((r = cv_ct2_u32(rd, &version, "binary version")) != GEMINI_OK)
        goto done;
    if (version < 4 || version > 6) {
        r = gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: CTranslate2 binary version %lu (4 to 6 "
                         "are read)", path, (unsigned long)version);
        goto done;
    }
    if ((r = cv_ct2_string(rd, name, "specification name")) != GEMINI_OK ||
        (r = cv_ct2_u32(rd, &s->ct2_revision, "specification revision")) != GEMINI_OK ||
        (r = cv_ct2_u32(rd, &count, "variable count")) != GEMINI_OK)
        goto done;
    snprintf(s->ct2_spec, sizeof s->ct2_spec, "%.63s", name);

    /* A variable record takes at least 10 bytes, so a count that cannot fit is refused before
       anything is read for it. */
    if (count > CV_MAX_TENSORS || (uint64_t)count * 10 > rd->file->size - rd->pos) {
        r = gemini__fail(GEMINI_ERR_FORMAT, "%s: %lu variables cannot fit in %llu bytes (at "
                         "most %llu are read)", path, (unsigned long)count,
                         (unsigned long long)rd->file->size, (unsigned long long)CV_MAX_TENSORS);
        goto done;
    }
    for (i = 0; i < count && r == GEMINI_OK; i++) {
        if ((r = cv_ct2_string(rd, name, "variable name")) != GEMINI_OK)
            break;
        if (cv_source_find(s, name)) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: variable %.200s is defined twice", path,
                             name);
            break;
        }
        r = cv_ct2_variable(s, rd, file, name);
    }
    if (r != GEMINI_OK)
        goto done;

    /* Aliases: a second name for an existing variable (or alias) of this file. */
    if ((r = cv_ct2_u32(rd, &count, "alias count")) != GEMINI_OK)
        goto done;
    if (count > CV_MAX_TENSORS || (uint64_t)count * 6 > rd->file->size - rd->pos) {
        r = gemini__fail(GEMINI_ERR_FORMAT, "%s: %lu aliases cannot fit in the %llu bytes left",
                         path, (unsigned long)count,
                         (unsigned long long)(rd->file->size - rd->pos));
        goto done;
    }
    for (i = 0; i < count && r == GEMINI_OK; i++) {
        const cv_src_tensor *found;
        size_t index;
        cv_src_tensor *t;
        char *copy;
        if ((r = cv_ct2_string(rd, name, "alias name")) != GEMINI_OK ||
            (r = cv_ct2_string(rd, target, "alias target")) != GEMINI_OK)
            break;
        found = cv_source_find(s, target);
        if (!found || cv_source_find(s, name)) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: alias %.200s -> %.200s: %s", path, name,
                             target, found ? "the name is already taken" : "no such variable");
            break;
        }
        index = (size_t)(found - s->tensors);
        copy = cv_strdup(name);
        if (!copy || (r = cv_source_add_tensor(s, &t)) != GEMINI_OK) {
            free(copy);
            r = copy ? r : GEMINI_ERR_OUT_OF_MEMORY;
            break;
        }
        *t = s->tensors[index];
        t->name = copy;
    }
    if (r == GEMINI_OK && rd->pos != rd->file->size)
        r = gemini__fail(GEMINI_ERR_FORMAT, "%s: %llu bytes after the alias table", path,
                         (unsigned long long)(rd->file->size - rd->pos));

done:
    free(rd);
    free(name);
    free(target);
    return r;
}

/* The value of a rank-0 integer variable. 1 = read, 0 = absent; a variable of that name that
   is not an integer scalar is an error in *err. */
static int cv_ct2_scalar(cv_source *s, const char *name, int64_t *value, gemini_result *err)
{
    const cv_src_tensor *t = cv_source_find(s, name);
    unsigned char b[4];
    if (!t)
        return 0;
    if (t->n_dims != 0 || t->size > 4 || strstr(t->dtype_name, "int") != t->dtype_name) {
        *err = gemini__fail(GEMINI_ERR_FORMAT, "%s: variable %s should be an integer scalar, "
                            "not %s with %d dimensions", s->input, name, t->dtype_name,
                            t->n_dims);
        return 0;
    }
    *err = cv_file_read(&s->files[t->file], t->offset, b, t->size, name);
    if (*err != GEMINI_OK)
        return 0;
    *value = t->size == 1 ? (int64_t)(int8_t)b[0]
             : t->size == 2 ? (int64_t)(int16_t)cv_rd16(b) : (int64_t)(int32_t)cv_rd32(b);
    return 1;
}

/* ============================================================================================
   Tokenizer (format.md §4.3), from tokenizer.model, tokenizer.json or GGUF arrays
   ============================================================================================ */

enum { CV_PIECE_NORMAL = 1, CV_PIECE_UNKNOWN, CV_PIECE_CONTROL, CV_PIECE_USER, CV_PIECE_UNUSED,
       CV_PIECE_BYTE };

typedef struct cv_tokenizer {
    const char *model;       /* "sentencepiece-bpe" / "sentencepiece-unigram"; NULL: none */
    const char *source;      /* the file it came from, for messages */
    uint64_t n;
    char **pieces;
    uint32_t *lens;
    float *scores;
    uint8_t *types;
    int64_t unk_id, bos_id, eos_id, pad_id, eot_id;
    int add_bos, add_dummy_prefix, remove_extra_ws, escape_ws, ws_suffix, byte_fallback;
    unsigned char *charsmap;
    uint64_t charsmap_len;
    gemini_tok *byte_bpe;    /* "byte-bpe" (Whisper): gemini_tokenizer.h's own tokenizer.json
                                reader built it; its arrays are written as they are */
} cv_tokenizer;

static void cv_tokenizer_free(cv_tokenizer *t)
{
    uint64_t i;
    if (t->pieces)
        for (i = 0; i < t->n; i++)
            free(t->pieces[i]);
    free(t->pieces);
    free(t->lens);
    free(t->scores);
    free(t->types);
    free(t->charsmap);
    gemini_tok_free(t->byte_bpe);
    memset(t, 0, sizeof *t);
}

static gemini_result cv_tokenizer_alloc(cv_tokenizer *t, uint64_t n, const char *source)
{
    if (n == 0 || n > (uint64_t)INT32_MAX || n > CV_MAX_COUNT)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: vocabulary of %llu pieces", source,
                            (unsigned long long)n);
    t->n = n;
    t->source = source;
    t->pieces = (char **)cv_calloc(n, sizeof(char *), source);
    t->lens = (uint32_t *)cv_calloc(n, sizeof(uint32_t), source);
    t->scores = (float *)cv_calloc(n, sizeof(float), source);
    t->types = (uint8_t *)cv_calloc(n, 1, source);
    t->unk_id = t->bos_id = t->eos_id = t->pad_id = t->eot_id = -1;
    if (!t->pieces || !t->lens || !t->scores || !t->types)
        return GEMINI_ERR_OUT_OF_MEMORY;
    return GEMINI_OK;
}

static gemini_result cv_tokenizer_set(cv_tokenizer *t, uint64_t id, const char *s, size_t n)
{
    if (n > 0xFFFFFF)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: piece %llu is %lu bytes long", t->source,
                            (unsigned long long)id, (unsigned long)n);
    free(t->pieces[id]);
    t->pieces[id] = cv_strndup(s, n);
    if (!t->pieces[id])
        return GEMINI_ERR_OUT_OF_MEMORY;
    t->lens[id] = (uint32_t)n;
    return GEMINI_OK;
}

/* FNV-1a, for the piece index below. */
static uint64_t cv_hash(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    size_t i;
    for (i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* An open-addressing index piece -> id over a tokenizer's pieces (ids + 1; 0 = empty), so that
   the hundreds of thousands of merge lookups of a tokenizer.json stay linear. */
typedef struct cv_piece_index {
    uint32_t *slots;
    uint64_t mask;
} cv_piece_index;

static gemini_result cv_piece_index_build(cv_piece_index *x, const cv_tokenizer *t)
{
    uint64_t cap = 16, i;
    while (cap < t->n * 2)
        cap *= 2;
    x->mask = cap - 1;
    x->slots = (uint32_t *)cv_calloc(cap, sizeof(uint32_t), "piece index");
    if (!x->slots)
        return GEMINI_ERR_OUT_OF_MEMORY;
    for (i = 0; i < t->n; i++) {
        uint64_t h;
        if (!t->pieces[i])
            continue;
        h = cv_hash(t->pieces[i], t->lens[i]) & x->mask;
        while (x->slots[h])
            h = (h + 1) & x->mask;
        x->slots[h] = (uint32_t)(i + 1);
    }
    return GEMINI_OK;
}

static int64_t cv_piece_index_find(const cv_piece_index *x, const cv_tokenizer *t,
                                   const char *s, size_t n)
{
    uint64_t h = cv_hash(s, n) & x->mask;
    while (x->slots[h]) {
        uint32_t id = x->slots[h] - 1;
        if (t->lens[id] == n && memcmp(t->pieces[id], s, n) == 0)
            return id;
        h = (h + 1) & x->mask;
    }
    return -1;
}

static int64_t cv_tokenizer_find(const cv_tokenizer *t, const char *piece)
{
    uint64_t i;
    size_t n = strlen(piece);
    for (i = 0; i < t->n; i++)
        if (t->pieces[i] && t->lens[i] == n && memcmp(t->pieces[i], piece, n) == 0)
            return (int64_t)i;
    return -1;
}

/* Byte pieces are spelled <0xNN> with upper-case hex. */
static int cv_is_byte_piece(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    return n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && strchr(hex, s[3]) && s[3] &&
           strchr(hex, s[4]) && s[4] && s[5] == '>';
}

/* Checks and completes a tokenizer: every piece set, ids in range, eot found by name, the
   unknown piece typed UNKNOWN, and byte_fallback consistent with the pieces present. */
static gemini_result cv_tokenizer_finish(cv_tokenizer *t)
{
    uint64_t i;
    int bytes_seen = 0;
    int64_t *ids[4];
    const char *id_names[4] = {"unk_id", "bos_id", "eos_id", "pad_id"};
    int k;
    ids[0] = &t->unk_id;
    ids[1] = &t->bos_id;
    ids[2] = &t->eos_id;
    ids[3] = &t->pad_id;
    for (i = 0; i < t->n; i++) {
        if (!t->pieces[i])
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: no piece has id %llu", t->source,
                                (unsigned long long)i);
        if (t->types[i] < CV_PIECE_NORMAL || t->types[i] > CV_PIECE_BYTE)
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: piece %llu has type %u", t->source,
                                (unsigned long long)i, t->types[i]);
        if (t->types[i] == CV_PIECE_BYTE && cv_is_byte_piece(t->pieces[i], t->lens[i]))
            bytes_seen++;
    }
    for (k = 0; k < 4; k++)
        if (*ids[k] < -1 || *ids[k] >= (int64_t)t->n)
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: %s %lld is outside the vocabulary of "
                                "%llu", t->source, id_names[k], (long long)*ids[k],
                                (unsigned long long)t->n);
    if (t->unk_id < 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: the tokenizer has no unknown piece",
                            t->source);
    /* SentencePiece requires exactly one UNKNOWN piece; GGUF files often mark it CONTROL. */
    for (i = 0; i < t->n; i++)
        if (t->types[i] == CV_PIECE_UNKNOWN && (int64_t)i != t->unk_id)
            t->types[i] = CV_PIECE_CONTROL;
    t->types[t->unk_id] = CV_PIECE_UNKNOWN;
    if (t->eot_id < -1 || t->eot_id >= (int64_t)t->n)
        t->eot_id = -1;
    if (t->eot_id < 0)
        t->eot_id = cv_tokenizer_find(t, "<end_of_turn>");
    if (t->byte_fallback && bytes_seen != 256) {
        cv_warn("%s: byte_fallback is set but only %d of the 256 <0xNN> pieces exist; "
                "writing byte_fallback = false", t->source, bytes_seen);
        t->byte_fallback = 0;
    }
    return GEMINI_OK;
}

/* ---- SentencePiece ModelProto (protobuf wire format) ---- */

typedef struct cv_pb {
    const unsigned char *p, *end;
} cv_pb;

static int cv_pb_varint(cv_pb *b, uint64_t *out)
{
    uint64_t v = 0;
    int shift = 0;
    while (b->p < b->end && shift < 64) {
        unsigned char c = *b->p++;
        v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 1;
        }
        shift += 7;
    }
    return 0;
}

/* Reads one field header and its payload. For wire type 2, *data and *len give the bytes; for
   varints *value; for fixed32/fixed64 *value holds the raw bits. */
static int cv_pb_field(cv_pb *b, uint64_t *field, int *wire, uint64_t *value,
                       const unsigned char **data, uint64_t *len)
{
    uint64_t key;
    if (!cv_pb_varint(b, &key))
        return 0;
    *field = key >> 3;
    *wire = (int)(key & 7);
    switch (*wire) {
    case 0:
        return cv_pb_varint(b, value);
    case 1:
        if (b->end - b->p < 8)
            return 0;
        *value = cv_rd64(b->p);
        b->p += 8;
        return 1;
    case 2:
        if (!cv_pb_varint(b, len) || *len > (uint64_t)(b->end - b->p))
            return 0;
        *data = b->p;
        b->p += *len;
        return 1;
    case 5:
        if (b->end - b->p < 4)
            return 0;
        *value = cv_rd32(b->p);
        b->p += 4;
        return 1;
    default:
        return 0;   /* groups (3, 4) do not occur in sentencepiece_model.proto */
    }
}

static gemini_result cv_spm_load(cv_tokenizer *t, const char *path)
{
    char *data;
    size_t size;
    cv_pb b;
    uint64_t field, value, len, n_pieces = 0, id;
    const unsigned char *payload;
    int wire;
    int64_t model_type = 1;      /* proto2 defaults (REFERENCE §4.1) */
    gemini_result r = cv_read_whole(path, (uint64_t)1 << 30, &data, &size);
    if (r != GEMINI_OK)
        return r;

    /* Pass 1: count the pieces. */
    b.p = (const unsigned char *)data;
    b.end = b.p + size;
    while (b.p < b.end) {
        if (!cv_pb_field(&b, &field, &wire, &value, &payload, &len)) {
            unsigned long at = (unsigned long)((const char *)b.p - data);
            free(data);
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: malformed protobuf near byte %lu", path,
                                at);
        }
        if (field == 1 && wire == 2)
            n_pieces++;
    }
    r = cv_tokenizer_alloc(t, n_pieces, path);
    if (r != GEMINI_OK) {
        free(data);
        return r;
    }
    t->unk_id = 0;
    t->bos_id = 1;
    t->eos_id = 2;
    t->pad_id = -1;
    t->add_bos = 1;
    t->add_dummy_prefix = 1;
    t->remove_extra_ws = 1;
    t->escape_ws = 1;

    /* Pass 2: pieces, trainer_spec, normalizer_spec. */
    b.p = (const unsigned char *)data;
    id = 0;
    while (b.p < b.end && r == GEMINI_OK) {
        cv_pb sub;
        uint64_t f2, v2, l2;
        const unsigned char *p2;
        int w2;
        cv_pb_field(&b, &field, &wire, &value, &payload, &len);
        if (wire != 2 || (field != 1 && field != 2 && field != 3))
            continue;
        sub.p = payload;
        sub.end = payload + len;
        if (field == 1) {
            /* SentencePiece { piece = 1; score = 2; type = 3 (default NORMAL) } */
            int have_piece = 0;
            t->types[id] = CV_PIECE_NORMAL;
            while (sub.p < sub.end) {
                if (!cv_pb_field(&sub, &f2, &w2, &v2, &p2, &l2)) {
                    r = gemini__fail(GEMINI_ERR_FORMAT, "%s: malformed piece %llu", path,
                                     (unsigned long long)id);
                    break;
                }
                if (f2 == 1 && w2 == 2) {
                    r = cv_tokenizer_set(t, id, (const char *)p2, (size_t)l2);
                    have_piece = 1;
                } else if (f2 == 2 && w2 == 5) {
                    t->scores[id] = cv_f32_from_bits((uint32_t)v2);
                } else if (f2 == 3 && w2 == 0) {
                    t->types[id] = v2 >= 1 && v2 <= 6 ? (uint8_t)v2 : 0;
                }
            }
            if (r == GEMINI_OK && !have_piece)
                r = gemini__fail(GEMINI_ERR_FORMAT, "%s: piece %llu has no text", path,
                                 (unsigned long long)id);
            id++;
        } else {
            while (sub.p < sub.end) {
                if (!cv_pb_field(&sub, &f2, &w2, &v2, &p2, &l2)) {
                    r = gemini__fail(GEMINI_ERR_FORMAT, "%s: malformed %s", path,
                                     field == 2 ? "trainer_spec" : "normalizer_spec");
                    break;
                }
                if (field == 2 && w2 == 0) {
                    /* TrainerSpec: ids are int32 varints (negative ones sign-extended). */
                    int64_t sv = (int64_t)(int32_t)(uint32_t)v2;
                    if (f2 == 3) model_type = (int64_t)v2;
                    else if (f2 == 24) t->ws_suffix = v2 != 0;
                    else if (f2 == 35) t->byte_fallback = v2 != 0;
                    else if (f2 == 40) t->unk_id = sv;
                    else if (f2 == 41) t->bos_id = sv;
                    else if (f2 == 42) t->eos_id = sv;
                    else if (f2 == 43) t->pad_id = sv;
                } else if (field == 3) {
                    if (f2 == 2 && w2 == 2 && l2 > 0) {
                        free(t->charsmap);
                        t->charsmap = (unsigned char *)cv_alloc(l2, path);
                        if (!t->charsmap) {
                            r = GEMINI_ERR_OUT_OF_MEMORY;
                            break;
                        }
                        memcpy(t->charsmap, p2, (size_t)l2);
                        t->charsmap_len = l2;
                    } else if (w2 == 0 && f2 == 3) {
                        t->add_dummy_prefix = v2 != 0;
                    } else if (w2 == 0 && f2 == 4) {
                        t->remove_extra_ws = v2 != 0;
                    } else if (w2 == 0 && f2 == 5) {
                        t->escape_ws = v2 != 0;
                    }
                }
            }
        }
    }
    free(data);
    if (r != GEMINI_OK)
        return r;
    if (model_type == 1)
        t->model = "sentencepiece-unigram";
    else if (model_type == 2)
        t->model = "sentencepiece-bpe";
    else
        return gemini__fail(GEMINI_ERR_UNSUPPORTED,
                            "%s: trainer_spec.model_type %lld (only UNIGRAM = 1 and BPE = 2)",
                            path, (long long)model_type);
    /* Ids of -1 mean "none" in the proto; out-of-range ids are caught in finish. */
    return GEMINI_OK;
}

/* ---- tokenizer.json (Hugging Face tokenizers) ---- */

/* A tokenizer_config.json token entry: a string or {"content": ...}. */
static const char *cv_token_content(cv_json *j, cv_jnode *n)
{
    if (n && n->type == CV_JSTR)
        return cv_jstr(j, n);
    if (n && n->type == CV_JOBJ) {
        cv_jnode *c = cv_jget(j, n, "content");
        if (c && c->type == CV_JSTR)
            return cv_jstr(j, c);
    }
    return NULL;
}

/* Finds the normalizer steps that matter: Prepend("▁") and Replace(" " -> "▁"). */
static void cv_hf_normalizer(cv_json *j, cv_jnode *n, int *prepend, int *replace)
{
    cv_jnode *type = cv_jget(j, n, "type"), *c;
    if (!type || type->type != CV_JSTR)
        return;
    if (strcmp(cv_jstr(j, type), "Sequence") == 0) {
        cv_jnode *list = cv_jget(j, n, "normalizers");
        if (list && list->type == CV_JARR)
            for (c = cv_jchild(j, list); c; c = cv_jnext(j, c))
                cv_hf_normalizer(j, c, prepend, replace);
    } else if (strcmp(cv_jstr(j, type), "Prepend") == 0) {
        *prepend = 1;
    } else if (strcmp(cv_jstr(j, type), "Replace") == 0) {
        cv_jnode *content = cv_jget(j, n, "content");
        if (content && content->type == CV_JSTR && strcmp(cv_jstr(j, content), "\xE2\x96\x81") == 0)
            *replace = 1;
    }
}

static gemini_result cv_hf_tokenizer_json(cv_tokenizer *t, const char *path,
                                          const char *config_path)
{
    char *text = NULL, *cfg_text = NULL;
    size_t size, cfg_size;
    cv_json j, cj;
    cv_jnode *model, *vocab, *added, *e, *type;
    uint64_t n = 0, rank;
    int is_bpe, prepend = 0, replace = 0, have_cfg = 0;
    cv_piece_index index;
    const char *unk_token = "<unk>";
    gemini_result r = cv_read_whole(path, CV_MAX_JSON_BYTES, &text, &size);
    if (r != GEMINI_OK)
        return r;
    r = cv_json_parse(&j, path, text, size);
    free(text);
    if (r != GEMINI_OK)
        return r;
    memset(&cj, 0, sizeof cj);
    memset(&index, 0, sizeof index);
    if (config_path && cv_file_exists(config_path) &&
        cv_read_whole(config_path, CV_MAX_JSON_BYTES, &cfg_text, &cfg_size) == GEMINI_OK) {
        have_cfg = cv_json_parse(&cj, config_path, cfg_text, cfg_size) == GEMINI_OK;
        free(cfg_text);
    }

    model = cv_jget(&j, cv_jroot(&j), "model");
    type = cv_jget(&j, model, "type");
    vocab = cv_jget(&j, model, "vocab");
    added = cv_jget(&j, cv_jroot(&j), "added_tokens");
    if (!type || type->type != CV_JSTR) {
        r = gemini__fail(GEMINI_ERR_FORMAT, "%s: model.type is missing", path);
        goto done;
    }
    is_bpe = strcmp(cv_jstr(&j, type), "BPE") == 0;
    if (!(is_bpe && vocab && vocab->type == CV_JOBJ) &&
        !(strcmp(cv_jstr(&j, type), "Unigram") == 0 && vocab && vocab->type == CV_JARR)) {
        r = gemini__fail(GEMINI_ERR_UNSUPPORTED,
                         "%s: model.type \"%.40s\" (only SentencePiece-style BPE with a vocab "
                         "object, or Unigram with a vocab list)",
                         path, cv_jstr(&j, type));
        goto done;
    }

    /* The vocabulary size is one more than the largest id in vocab and added_tokens. */
    if (is_bpe) {
        for (e = cv_jchild(&j, vocab); e; e = cv_jnext(&j, e)) {
            if (e->type != CV_JNUM || !e->is_int || e->negative || e->uint_value >= CV_MAX_COUNT) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "%s: vocab entry \"%.100s\" has a bad id",
                                 path, cv_jkey(&j, e));
                goto done;
            }
            if (e->uint_value + 1 > n)
                n = e->uint_value + 1;
        }
    } else {
        n = vocab->count;
    }
    if (added && added->type == CV_JARR)
        for (e = cv_jchild(&j, added); e; e = cv_jnext(&j, e)) {
            cv_jnode *id = cv_jget(&j, e, "id"), *content = cv_jget(&j, e, "content");
            if (!id || id->type != CV_JNUM || !id->is_int || id->negative ||
                id->uint_value >= CV_MAX_COUNT || !content || content->type != CV_JSTR) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "%s: an added_tokens entry lacks id/content",
                                 path);
                goto done;
            }
            if (id->uint_value + 1 > n)
                n = id->uint_value + 1;
        }
    r = cv_tokenizer_alloc(t, n, path);
    if (r != GEMINI_OK)
        goto done;

    /* Pieces, with NORMAL or BYTE types. */
    if (is_bpe) {
        cv_jnode *merges = cv_jget(&j, model, "merges"), *unk = cv_jget(&j, model, "unk_token");
        cv_jnode *fallback = cv_jget(&j, model, "byte_fallback");
        t->model = "sentencepiece-bpe";
        t->byte_fallback = fallback && fallback->type == CV_JBOOL && fallback->boolean;
        if (unk && unk->type == CV_JSTR)
            unk_token = cv_jstr(&j, unk);
        for (e = cv_jchild(&j, vocab); e && r == GEMINI_OK; e = cv_jnext(&j, e)) {
            r = cv_tokenizer_set(t, e->uint_value, cv_jkey(&j, e), e->key_len);
            t->types[e->uint_value] = cv_is_byte_piece(cv_jkey(&j, e), e->key_len)
                                          ? CV_PIECE_BYTE : CV_PIECE_NORMAL;
        }

        /* Scores: -rank of the first merge that creates a piece (SentencePiece BPE merges the
           highest-scoring pair first, HF the lowest rank: the orders agree). */
        r = cv_piece_index_build(&index, t);
        for (rank = 0, e = merges && merges->type == CV_JARR ? cv_jchild(&j, merges) : NULL;
             e && r == GEMINI_OK; e = cv_jnext(&j, e), rank++) {
            char buf[1024];
            const char *left, *right;
            size_t ln, rn;
            int64_t id;
            if (e->type == CV_JSTR) {
                const char *s = cv_jstr(&j, e), *space = strchr(s, ' ');
                if (!space)
                    continue;
                left = s;
                ln = (size_t)(space - s);
                right = space + 1;
                rn = strlen(right);
            } else if (e->type == CV_JARR && e->count == 2 &&
                       cv_jchild(&j, e)->type == CV_JSTR &&
                       cv_jnext(&j, cv_jchild(&j, e))->type == CV_JSTR) {
                left = cv_jstr(&j, cv_jchild(&j, e));
                ln = cv_jchild(&j, e)->str_len;
                right = cv_jstr(&j, cv_jnext(&j, cv_jchild(&j, e)));
                rn = cv_jnext(&j, cv_jchild(&j, e))->str_len;
            } else {
                r = gemini__fail(GEMINI_ERR_FORMAT, "%s: merge %llu is malformed", path,
                                 (unsigned long long)rank);
                break;
            }
            if (ln + rn >= sizeof buf)
                continue;
            memcpy(buf, left, ln);
            memcpy(buf + ln, right, rn);
            id = cv_piece_index_find(&index, t, buf, ln + rn);
            if (id >= 0 && t->scores[id] == 0.0f)
                t->scores[id] = -(float)(rank + 1);
        }
        free(index.slots);
    } else {
        cv_jnode *unk_id = cv_jget(&j, model, "unk_id");
        cv_jnode *fallback = cv_jget(&j, model, "byte_fallback");
        uint64_t i = 0;
        t->model = "sentencepiece-unigram";
        t->byte_fallback = fallback && fallback->type == CV_JBOOL && fallback->boolean;
        for (e = cv_jchild(&j, vocab); e && r == GEMINI_OK; e = cv_jnext(&j, e), i++) {
            cv_jnode *piece = cv_jchild(&j, e), *score = piece ? cv_jnext(&j, piece) : NULL;
            if (e->type != CV_JARR || e->count != 2 || piece->type != CV_JSTR ||
                score->type != CV_JNUM) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "%s: vocab entry %llu is not [piece, score]",
                                 path, (unsigned long long)i);
                break;
            }
            r = cv_tokenizer_set(t, i, cv_jstr(&j, piece), piece->str_len);
            t->scores[i] = (float)score->number;
            t->types[i] = cv_is_byte_piece(cv_jstr(&j, piece), piece->str_len) ? CV_PIECE_BYTE
                                                                               : CV_PIECE_NORMAL;
        }
        if (unk_id && unk_id->type == CV_JNUM && unk_id->is_int && !unk_id->negative &&
            unk_id->uint_value < n)
            t->unk_id = (int64_t)unk_id->uint_value;
    }
    if (r != GEMINI_OK)
        goto done;

    /* Added tokens: special ones are CONTROL, others USER_DEFINED. Gemma's turn markers are
       flagged special in tokenizer.json but are USER_DEFINED in its SentencePiece model, where
       they are matched in raw text. */
    if (added && added->type == CV_JARR)
        for (e = cv_jchild(&j, added); e && r == GEMINI_OK; e = cv_jnext(&j, e)) {
            cv_jnode *content = cv_jget(&j, e, "content"), *special = cv_jget(&j, e, "special");
            uint64_t id = cv_jget(&j, e, "id")->uint_value;
            const char *s = cv_jstr(&j, content);
            int is_special = special && special->type == CV_JBOOL && special->boolean;
            r = cv_tokenizer_set(t, id, s, content->str_len);
            if (strcmp(s, "<start_of_turn>") == 0 || strcmp(s, "<end_of_turn>") == 0)
                is_special = 0;
            if (cv_is_byte_piece(s, content->str_len))
                t->types[id] = CV_PIECE_BYTE;
            else
                t->types[id] = is_special ? CV_PIECE_CONTROL : CV_PIECE_USER;
        }
    if (r != GEMINI_OK)
        goto done;

    /* Special ids: tokenizer_config.json names them; Gemma's spellings otherwise. */
    {
        const char *bos = "<bos>", *eos = "<eos>", *pad = "<pad>", *s;
        if (have_cfg) {
            cv_jnode *root = cv_jroot(&cj), *add_bos = cv_jget(&cj, root, "add_bos_token");
            if ((s = cv_token_content(&cj, cv_jget(&cj, root, "bos_token"))) != NULL) bos = s;
            if ((s = cv_token_content(&cj, cv_jget(&cj, root, "eos_token"))) != NULL) eos = s;
            if ((s = cv_token_content(&cj, cv_jget(&cj, root, "pad_token"))) != NULL) pad = s;
            if ((s = cv_token_content(&cj, cv_jget(&cj, root, "unk_token"))) != NULL)
                unk_token = s;
            t->add_bos = add_bos && add_bos->type == CV_JBOOL ? add_bos->boolean : 1;
        } else {
            t->add_bos = 1;
        }
        if (is_bpe || t->unk_id < 0)
            t->unk_id = cv_tokenizer_find(t, unk_token);
        t->bos_id = cv_tokenizer_find(t, bos);
        t->eos_id = cv_tokenizer_find(t, eos);
        t->pad_id = cv_tokenizer_find(t, pad);
    }

    /* Normaliser: Replace(" " -> "▁") means escaping, Prepend("▁") a dummy prefix. A
       Metaspace pre-tokenizer does both (older Llama-style files). */
    cv_hf_normalizer(&j, cv_jget(&j, cv_jroot(&j), "normalizer"), &prepend, &replace);
    {
        cv_jnode *pre = cv_jget(&j, cv_jroot(&j), "pre_tokenizer");
        cv_jnode *pre_type = cv_jget(&j, pre, "type");
        if (pre_type && pre_type->type == CV_JSTR &&
            strcmp(cv_jstr(&j, pre_type), "Metaspace") == 0) {
            cv_jnode *scheme = cv_jget(&j, pre, "prepend_scheme");
            cv_jnode *add = cv_jget(&j, pre, "add_prefix_space");
            replace = 1;
            if ((scheme && scheme->type == CV_JSTR && strcmp(cv_jstr(&j, scheme), "never")) ||
                (add && add->type == CV_JBOOL && add->boolean))
                prepend = 1;
        }
    }
    t->add_dummy_prefix = prepend;
    t->escape_ws = replace;
    t->remove_extra_ws = 0;

done:
    cv_json_free(&j);
    if (have_cfg)
        cv_json_free(&cj);
    return r;
}

/* ---- GGUF tokenizer.ggml.* ---- */

static gemini_result cv_gguf_tokenizer(cv_tokenizer *t, cv_source *s, const char *arch)
{
    cv_gkv *tokens = cv_gguf_find(s, "tokenizer.ggml.tokens");
    cv_gkv *scores = cv_gguf_find(s, "tokenizer.ggml.scores");
    cv_gkv *types = cv_gguf_find(s, "tokenizer.ggml.token_type");
    cv_gkv *charsmap = cv_gguf_find(s, "tokenizer.ggml.precompiled_charsmap");
    const char *model = cv_gguf_get_str(s, "tokenizer.ggml.model");
    gemini_result r = GEMINI_OK;
    uint64_t i, u;
    int b;
    if (!model || !tokens) {
        cv_warn("%s: no tokenizer.ggml.model / tokens: writing no tokenizer", s->input);
        return GEMINI_OK;
    }
    if (strcmp(model, "llama") != 0) {
        cv_warn("%s: tokenizer.ggml.model \"%s\" is not SentencePiece (\"llama\"): writing no "
                "tokenizer", s->input, model);
        return GEMINI_OK;
    }
    if (tokens->type != CV_GV_ARRAY || tokens->elem_type != CV_GV_STRING)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: tokenizer.ggml.tokens is not a string array",
                            s->input);
    r = cv_tokenizer_alloc(t, tokens->count, s->input);
    if (r != GEMINI_OK)
        return r;
    if (scores && (scores->type != CV_GV_ARRAY || scores->elem_type != CV_GV_F32 ||
                   scores->count != tokens->count))
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: tokenizer.ggml.scores: expected %llu f32",
                            s->input, (unsigned long long)tokens->count);
    if (types && (types->type != CV_GV_ARRAY || types->count != tokens->count ||
                  cv_gv_size(types->elem_type) == 0 || types->elem_type == CV_GV_F32 ||
                  types->elem_type == CV_GV_F64 || types->elem_type == CV_GV_BOOL))
        return gemini__fail(GEMINI_ERR_FORMAT,
                            "%s: tokenizer.ggml.token_type: expected %llu integers", s->input,
                            (unsigned long long)tokens->count);
    for (i = 0; i < t->n && r == GEMINI_OK; i++) {
        int64_t type = CV_PIECE_NORMAL;
        r = cv_tokenizer_set(t, i, tokens->strings[i].s, tokens->strings[i].n);
        if (scores)
            t->scores[i] = cv_f32_from_bits(cv_rd32(scores->array + 4 * i));
        if (types)
            cv_gguf_raw_int(types->elem_type,
                            types->array + i * cv_gv_size(types->elem_type), &type);
        if (type < CV_PIECE_NORMAL || type > CV_PIECE_BYTE)
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: token %llu has type %lld", s->input,
                                (unsigned long long)i, (long long)type);
        t->types[i] = (uint8_t)type;
    }
    if (r != GEMINI_OK)
        return r;

    /* llama.cpp writes SentencePiece vocabularies as "llama"; Gemma's is a BPE model. */
    t->model = strncmp(arch, "gemma", 5) == 0 ? "sentencepiece-bpe" : "sentencepiece-unigram";
    {
        /* Special ids; a negative one (-1 as i32) means none. */
        static const char *const keys[5] = {
            "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
            "tokenizer.ggml.eot_token_id"};
        int64_t *targets[5];
        int k;
        targets[0] = &t->unk_id;
        targets[1] = &t->bos_id;
        targets[2] = &t->eos_id;
        targets[3] = &t->pad_id;
        targets[4] = &t->eot_id;
        for (k = 0; k < 5; k++) {
            cv_gkv *kv = cv_gguf_find(s, keys[k]);
            int64_t id;
            if (!kv)
                continue;
            if (!cv_gguf_raw_int(kv->type, kv->raw, &id))
                return gemini__fail(GEMINI_ERR_FORMAT, "%s: %s must be an integer", s->input,
                                    keys[k]);
            *targets[k] = id < 0 ? -1 : id;
        }
    }
    if (t->unk_id < 0)
        t->unk_id = cv_tokenizer_find(t, "<unk>");
    t->add_bos = 1;
    if (cv_gguf_get_bool(s, "tokenizer.ggml.add_bos_token", &b, &r)) t->add_bos = b;
    /* Gemma's SentencePiece model has no dummy prefix; llama.cpp writes the flag anyway. */
    t->add_dummy_prefix = strncmp(arch, "gemma", 5) != 0;
    if (cv_gguf_get_bool(s, "tokenizer.ggml.add_space_prefix", &b, &r)) t->add_dummy_prefix = b;
    t->remove_extra_ws = 0;
    if (cv_gguf_get_bool(s, "tokenizer.ggml.remove_extra_whitespaces", &b, &r))
        t->remove_extra_ws = b;
    t->escape_ws = 1;

    /* byte_fallback: on when all 256 <0xNN> BYTE pieces exist. */
    for (i = 0, u = 0; i < t->n; i++)
        if (t->types[i] == CV_PIECE_BYTE && cv_is_byte_piece(t->pieces[i], t->lens[i]))
            u++;
    t->byte_fallback = u == 256;
    if (charsmap && charsmap->type == CV_GV_ARRAY && charsmap->count > 0 &&
        (charsmap->elem_type == CV_GV_U8 || charsmap->elem_type == CV_GV_I8)) {
        t->charsmap = (unsigned char *)cv_alloc(charsmap->count, s->input);
        if (!t->charsmap)
            return GEMINI_ERR_OUT_OF_MEMORY;
        memcpy(t->charsmap, charsmap->array, (size_t)charsmap->count);
        t->charsmap_len = charsmap->count;
    }
    return r;
}

/* ============================================================================================
   Hyperparameters (format.md §4.2)
   ============================================================================================ */

/* PaliGemma's vision tower and projector (format.md §8); present = 0 for a text model. */
typedef struct cv_vision {
    int present;
    uint64_t image_size, patch, hidden, inter, layers, heads, image_token;
    double eps, mean[3], std[3];
} cv_vision;

/* A list of int32 read from a config file. */
typedef struct cv_i32_list {
    int32_t *v;
    uint64_t n;
    int present;
} cv_i32_list;

/* The special tokens a Whisper file names (format.md §7.1), in key order. */
#define CV_WHISPER_N_IDS 9
static const char *const cv_whisper_id_keys[CV_WHISPER_N_IDS] = {
    "whisper.sot_id", "whisper.eot_id", "whisper.translate_id", "whisper.transcribe_id",
    "whisper.sot_lm_id", "whisper.sot_prev_id", "whisper.no_speech_id",
    "whisper.no_timestamps_id", "whisper.timestamp_begin_id"};
static const char *const cv_whisper_id_pieces[CV_WHISPER_N_IDS] = {
    "<|startoftranscript|>", "<|endoftext|>", "<|translate|>", "<|transcribe|>",
    "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>", "<|0.00|>"};
enum { CV_WH_SOT, CV_WH_EOT, CV_WH_TRANSLATE, CV_WH_TRANSCRIBE, CV_WH_SOT_LM, CV_WH_SOT_PREV,
       CV_WH_NO_SPEECH, CV_WH_NO_TIMESTAMPS, CV_WH_TIMESTAMP_BEGIN };

/* The encoder and the generation settings of a Whisper model; the decoder's sizes are the
   shared fields of cv_hparams. */
typedef struct cv_whisper {
    uint64_t n_mels, audio_ctx, enc_layers, enc_heads, enc_ffn;
    cv_i32_list suppress, begin_suppress, alignment_heads, lang_ids;
    char **lang_codes;       /* lang_ids.n codes ("en"), or NULL when only the ids are known */
    int64_t ids[CV_WHISPER_N_IDS];     /* from the tokenizer; written only when it exists */
    int64_t cfg_translate, cfg_transcribe, cfg_no_timestamps;  /* generation_config, or -1 */
} cv_whisper;

typedef struct cv_hparams {
    const char *arch;        /* "gemma", "gemma2", "gemma3" */
    char name[256];
    uint64_t vocab, hidden, inter, layers, heads, kv_heads, head_dim, max_pos, sliding_window;
    double eps, embed_scale, query_scale, attn_softcap, final_softcap;
    double rope_theta, rope_scale, rope_theta_local;
    uint8_t layer_types[CV_MAX_LAYERS];
    int sandwich, qk_norm, tied;
    cv_vision vision;
    int is_whisper;          /* arch "whisper": the fields below, layer norms (eps), no RoPE */
    cv_whisper wh;
} cv_hparams;

/* Config lookups: 1 = read, 0 = absent or null, and on a wrong type a failure in *err. */
static int cv_cfg_num(cv_json *j, cv_jnode *obj, const char *key, double *out,
                      gemini_result *err)
{
    cv_jnode *n = cv_jget(j, obj, key);
    if (!n || n->type == CV_JNULL)
        return 0;
    if (n->type != CV_JNUM) {
        *err = gemini__fail(GEMINI_ERR_FORMAT, "%s: \"%s\" must be a number", j->name, key);
        return 0;
    }
    *out = n->number;
    return 1;
}

static int cv_cfg_uint(cv_json *j, cv_jnode *obj, const char *key, uint64_t *out,
                       gemini_result *err)
{
    cv_jnode *n = cv_jget(j, obj, key);
    if (!n || n->type == CV_JNULL)
        return 0;
    if (n->type != CV_JNUM || !n->is_int || n->negative || n->int_overflow ||
        n->uint_value > UINT32_MAX) {
        *err = gemini__fail(GEMINI_ERR_FORMAT, "%s: \"%s\" must be an integer from 0 to %lu",
                            j->name, key, (unsigned long)UINT32_MAX);
        return 0;
    }
    *out = n->uint_value;
    return 1;
}

/* Linear RoPE scaling factor of a rope_scaling / rope_parameters object: 1 unless linear. */
static gemini_result cv_cfg_rope_factor(cv_json *j, cv_jnode *obj, double *factor)
{
    cv_jnode *type;
    gemini_result r = GEMINI_OK;
    if (!obj || obj->type != CV_JOBJ)
        return GEMINI_OK;
    type = cv_jget(j, obj, "rope_type");
    if (!type)
        type = cv_jget(j, obj, "type");
    if (!type || type->type != CV_JSTR || strcmp(cv_jstr(j, type), "default") == 0)
        return GEMINI_OK;
    if (strcmp(cv_jstr(j, type), "linear") != 0)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED,
                            "%s: rope type \"%.40s\" (only \"linear\" scaling is supported)",
                            j->name, cv_jstr(j, type));
    if (!cv_cfg_num(j, obj, "factor", factor, &r) && r == GEMINI_OK)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: linear rope scaling without \"factor\"",
                            j->name);
    return r;
}

/* Per-layer local/global pattern and the window: shared by both input kinds. */
static void cv_layers_from_pattern(cv_hparams *hp, uint64_t pattern)
{
    uint64_t i;
    for (i = 0; i < hp->layers; i++)
        hp->layer_types[i] = pattern > 0 && (i + 1) % pattern != 0;
}

static gemini_result cv_check_hparams(cv_hparams *hp, const char *where)
{
    uint64_t i;
    int any_local = 0;
    if (hp->layers == 0 || hp->layers > CV_MAX_LAYERS)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: %llu layers (1 to %d supported)", where,
                            (unsigned long long)hp->layers, CV_MAX_LAYERS);
    if (!hp->hidden || !hp->inter || !hp->heads || !hp->kv_heads || !hp->head_dim ||
        hp->heads % hp->kv_heads != 0 || hp->hidden > UINT32_MAX || hp->inter > UINT32_MAX ||
        hp->heads * hp->head_dim > UINT32_MAX)
        return gemini__fail(GEMINI_ERR_FORMAT,
                            "%s: inconsistent sizes: hidden %llu, intermediate %llu, heads %llu, "
                            "kv heads %llu, head_dim %llu",
                            where, (unsigned long long)hp->hidden, (unsigned long long)hp->inter,
                            (unsigned long long)hp->heads, (unsigned long long)hp->kv_heads,
                            (unsigned long long)hp->head_dim);
    if (!(hp->eps > 0) || !(hp->rope_theta > 0) || !(hp->rope_theta_local > 0) ||
        !(hp->rope_scale > 0) || !(hp->query_scale > 0) || !(hp->attn_softcap >= 0) ||
        !(hp->final_softcap >= 0))
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: a norm epsilon, RoPE base or scale, query "
                            "scale or soft-cap is out of range", where);
    for (i = 0; i < hp->layers; i++)
        any_local |= hp->layer_types[i];
    if (!any_local)
        hp->sliding_window = 0;
    else if (hp->sliding_window == 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: local layers but a sliding window of 0",
                            where);
    return GEMINI_OK;
}

/* A PaliGemma config.json: text_config (a gemma or gemma2 decoder) becomes *cfg and *family;
   vision_config and image_token_index fill hp->vision. Absent keys take PaliGemmaConfig's
   defaults (SigLIP So400m/14 at 224 pixels), except that a missing image_size is derived from
   num_image_tokens where that is given. */
static gemini_result cv_paligemma_config(cv_hparams *hp, cv_json *j, cv_jnode **cfg,
                                         int *family)
{
    cv_jnode *root = cv_jroot(j), *text = cv_jget(j, root, "text_config");
    cv_jnode *vision = cv_jget(j, root, "vision_config"), *n;
    cv_vision *v = &hp->vision;
    gemini_result r = GEMINI_OK;
    uint64_t tokens = 0, side;
    int c;

    if (!text || text->type != CV_JOBJ || !vision || vision->type != CV_JOBJ)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: paligemma config without \"text_config\" "
                            "and \"vision_config\" objects", j->name);
    n = cv_jget(j, text, "model_type");
    if (!n || n->type != CV_JSTR || strcmp(cv_jstr(j, n), "gemma") == 0)
        *family = 1;
    else if (strcmp(cv_jstr(j, n), "gemma2") == 0)
        *family = 2;
    else
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: paligemma text_config model_type "
                            "\"%.60s\" (supported: gemma, gemma2)", j->name, cv_jstr(j, n));
    n = cv_jget(j, vision, "model_type");
    if (n && (n->type != CV_JSTR || strcmp(cv_jstr(j, n), "siglip_vision_model") != 0))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: vision_config model_type must be "
                            "\"siglip_vision_model\"", j->name);
    n = cv_jget(j, vision, "hidden_act");
    if (n && (n->type != CV_JSTR || (strcmp(cv_jstr(j, n), "gelu_pytorch_tanh") != 0 &&
                                     strcmp(cv_jstr(j, n), "gelu_new") != 0)))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: vision_config hidden_act must be a "
                            "tanh GELU (gelu_pytorch_tanh)", j->name);
    n = cv_jget(j, vision, "vision_use_head");
    if (n && n->type == CV_JBOOL && n->boolean)
        cv_warn("%s: vision_use_head is true; PaliGemma does not use the pooling head, which "
                "is not converted", j->name);

    v->present = 1;
    v->image_size = 224, v->patch = 14, v->hidden = 1152, v->inter = 4096, v->layers = 27;
    v->heads = 16, v->eps = 1e-6, v->image_token = 256000;
    for (c = 0; c < 3; c++)
        v->mean[c] = 0.5, v->std[c] = 0.5;
    cv_cfg_uint(j, vision, "patch_size", &v->patch, &r);
    cv_cfg_uint(j, vision, "hidden_size", &v->hidden, &r);
    cv_cfg_uint(j, vision, "intermediate_size", &v->inter, &r);
    cv_cfg_uint(j, vision, "num_hidden_layers", &v->layers, &r);
    cv_cfg_uint(j, vision, "num_attention_heads", &v->heads, &r);
    cv_cfg_num(j, vision, "layer_norm_eps", &v->eps, &r);
    if (!cv_cfg_uint(j, vision, "num_image_tokens", &tokens, &r))
        cv_cfg_uint(j, text, "num_image_tokens", &tokens, &r);
    if (!cv_cfg_uint(j, vision, "image_size", &v->image_size, &r) && tokens > 0 && v->patch) {
        for (side = 1; side * side < tokens; side++)
            ;
        v->image_size = side * v->patch;
    }
    if (!cv_cfg_uint(j, root, "image_token_index", &v->image_token, &r))
        cv_cfg_uint(j, root, "image_token_id", &v->image_token, &r);
    if (r != GEMINI_OK)
        return r;
    if (!v->patch || !v->hidden || !v->inter || !v->layers || !v->heads ||
        v->hidden % v->heads != 0 || v->image_size % v->patch != 0 ||
        v->image_size / v->patch > 64 || v->layers > CV_MAX_LAYERS || v->image_token > INT32_MAX ||
        !(v->eps >= 0 && v->eps < 1))
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: inconsistent vision_config: image %llu, "
                            "patch %llu, hidden %llu, heads %llu, layers %llu", j->name,
                            (unsigned long long)v->image_size, (unsigned long long)v->patch,
                            (unsigned long long)v->hidden, (unsigned long long)v->heads,
                            (unsigned long long)v->layers);
    *cfg = text;
    return GEMINI_OK;
}

/* image_mean and image_std of a preprocessor_config.json beside config.json, if there is one
   (SiglipImageProcessor's values; 0.5 each otherwise). */
static gemini_result cv_paligemma_preprocessor(cv_vision *v, const char *dir)
{
    static const char *const keys[2] = {"image_mean", "image_std"};
    char *path = cv_path_join(dir, "preprocessor_config.json"), *text = NULL;
    gemini_result r = GEMINI_OK;
    size_t size;
    cv_json j;
    int k, c, parsed;
    if (!path)
        return GEMINI_ERR_OUT_OF_MEMORY;
    if (!cv_file_exists(path)) {
        free(path);
        return GEMINI_OK;
    }
    r = cv_read_whole(path, CV_MAX_JSON_BYTES, &text, &size);
    if (r == GEMINI_OK)
        r = cv_json_parse(&j, path, text, size);
    parsed = r == GEMINI_OK;
    for (k = 0; k < 2 && r == GEMINI_OK; k++) {
        cv_jnode *a = cv_jget(&j, cv_jroot(&j), keys[k]), *e;
        double *out = k == 0 ? v->mean : v->std;
        if (!a)
            continue;
        if (a->type != CV_JARR || a->count != 3) {
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: \"%s\" must be 3 numbers", path, keys[k]);
            break;
        }
        for (e = cv_jchild(&j, a), c = 0; e && c < 3; e = cv_jnext(&j, e), c++) {
            if (e->type != CV_JNUM || (k == 1 && !(e->number > 0)) || !(fabs(e->number) < 1e6)) {
                r = gemini__fail(GEMINI_ERR_FORMAT, "%s: \"%s\"[%d] is out of range", path,
                                 keys[k], c);
                break;
            }
            out[c] = e->number;
        }
    }
    if (parsed)
        cv_json_free(&j);
    free(text);
    free(path);
    return r;
}

static gemini_result cv_hf_hparams(cv_hparams *hp, cv_json *j)
{
    cv_jnode *root = cv_jroot(j), *cfg = root, *mt = cv_jget(j, root, "model_type"), *n;
    const char *model_type;
    gemini_result r = GEMINI_OK;
    uint64_t pattern = 6;
    double qpas = 256;
    int family = 1;          /* 1, 2, 3 */

    if (!mt || mt->type != CV_JSTR)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: \"model_type\" is missing", j->name);
    model_type = cv_jstr(j, mt);
    if (strcmp(model_type, "gemma3") == 0) {
        cfg = cv_jget(j, root, "text_config");
        if (!cfg || cfg->type != CV_JOBJ)
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: gemma3 config without \"text_config\"",
                                j->name);
        family = 3;
    } else if (strcmp(model_type, "gemma3_text") == 0) {
        family = 3;
    } else if (strcmp(model_type, "gemma2") == 0) {
        family = 2;
    } else if (strcmp(model_type, "gemma") == 0) {
        family = 1;
    } else if (strcmp(model_type, "paligemma") == 0) {
        r = cv_paligemma_config(hp, j, &cfg, &family);
        if (r != GEMINI_OK)
            return r;
    } else {
        return gemini__fail(GEMINI_ERR_UNSUPPORTED,
                            "%s: model_type \"%.60s\" (supported: gemma, gemma2, gemma3_text, "
                            "gemma3, paligemma, whisper)", j->name, model_type);
    }
    hp->arch = family == 1 ? "gemma" : family == 2 ? "gemma2" : "gemma3";

    /* transformers' defaults for each config class, where a checkpoint omits a key. */
    hp->head_dim = 256;
    hp->eps = 1e-6;
    if (family == 1) {
        hp->hidden = 3072, hp->inter = 24576, hp->layers = 28, hp->heads = 16;
        hp->kv_heads = 16, hp->max_pos = 8192, hp->rope_theta = 10000;
    } else {
        hp->hidden = 2304, hp->inter = 9216, hp->layers = 26, hp->heads = 8, hp->kv_heads = 4;
        hp->max_pos = family == 2 ? 8192 : 131072;
        hp->rope_theta = family == 2 ? 10000 : 1e6;
        hp->sliding_window = 4096;
    }
    hp->attn_softcap = family == 2 ? 50 : 0;
    hp->final_softcap = family == 2 ? 30 : 0;
    hp->rope_scale = 1;
    hp->rope_theta_local = 10000;

    cv_cfg_uint(j, cfg, "hidden_size", &hp->hidden, &r);
    cv_cfg_uint(j, cfg, "intermediate_size", &hp->inter, &r);
    cv_cfg_uint(j, cfg, "num_hidden_layers", &hp->layers, &r);
    cv_cfg_uint(j, cfg, "num_attention_heads", &hp->heads, &r);
    cv_cfg_uint(j, cfg, "num_key_value_heads", &hp->kv_heads, &r);
    cv_cfg_uint(j, cfg, "head_dim", &hp->head_dim, &r);
    cv_cfg_uint(j, cfg, "max_position_embeddings", &hp->max_pos, &r);
    cv_cfg_num(j, cfg, "rms_norm_eps", &hp->eps, &r);
    cv_cfg_num(j, cfg, "rope_theta", &hp->rope_theta, &r);
    cv_cfg_num(j, cfg, "query_pre_attn_scalar", &qpas, &r);
    if (family >= 2) {
        /* An explicit null turns a soft-cap off; absence keeps the class default. */
        n = cv_jget(j, cfg, "attn_logit_softcapping");
        if (n && n->type == CV_JNULL)
            hp->attn_softcap = 0;
        n = cv_jget(j, cfg, "final_logit_softcapping");
        if (n && n->type == CV_JNULL)
            hp->final_softcap = 0;
        cv_cfg_num(j, cfg, "attn_logit_softcapping", &hp->attn_softcap, &r);
        cv_cfg_num(j, cfg, "final_logit_softcapping", &hp->final_softcap, &r);
        cv_cfg_uint(j, cfg, "sliding_window", &hp->sliding_window, &r);
    }
    if (family == 3) {
        cv_cfg_num(j, cfg, "rope_local_base_freq", &hp->rope_theta_local, &r);
        if (!cv_cfg_uint(j, cfg, "sliding_window_pattern", &pattern, &r))
            cv_cfg_uint(j, cfg, "_sliding_window_pattern", &pattern, &r);
    }
    if (r != GEMINI_OK)
        return r;
    r = cv_cfg_rope_factor(j, cv_jget(j, cfg, "rope_scaling"), &hp->rope_scale);
    if (r != GEMINI_OK)
        return r;

    /* transformers v5: rope_parameters, per attention kind or flat. */
    n = cv_jget(j, cfg, "rope_parameters");
    if (n && n->type == CV_JOBJ) {
        cv_jnode *full = cv_jget(j, n, "full_attention");
        cv_jnode *local = cv_jget(j, n, "sliding_attention");
        if (!full && !local)
            full = n;
        if (full) {
            cv_cfg_num(j, full, "rope_theta", &hp->rope_theta, &r);
            hp->rope_scale = 1;
            if (r == GEMINI_OK)
                r = cv_cfg_rope_factor(j, full, &hp->rope_scale);
        }
        if (local && r == GEMINI_OK) {
            double ignored = 1;
            cv_cfg_num(j, local, "rope_theta", &hp->rope_theta_local, &r);
            if (r == GEMINI_OK)
                r = cv_cfg_rope_factor(j, local, &ignored);
            if (r == GEMINI_OK && ignored != 1)
                cv_warn("%s: rope scaling of sliding layers (%g) is not representable; "
                        "ignored", j->name, ignored);
        }
        if (r != GEMINI_OK)
            return r;
    }
    if (family != 3)
        hp->rope_theta_local = hp->rope_theta;
    if (hp->layers == 0 || hp->layers > CV_MAX_LAYERS)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: num_hidden_layers %llu (1 to %d)", j->name,
                            (unsigned long long)hp->layers, CV_MAX_LAYERS);

    /* Which layers are local: layer_types if present, else the family's rule. */
    n = cv_jget(j, cfg, "layer_types");
    if (family == 1) {
        memset(hp->layer_types, 0, sizeof hp->layer_types);
        hp->sliding_window = 0;
    } else if (n && n->type == CV_JARR) {
        cv_jnode *e;
        uint64_t i = 0;
        if (n->count != hp->layers)
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: layer_types has %lu entries for %llu "
                                "layers", j->name, (unsigned long)n->count,
                                (unsigned long long)hp->layers);
        for (e = cv_jchild(j, n); e; e = cv_jnext(j, e), i++) {
            if (e->type == CV_JSTR && strcmp(cv_jstr(j, e), "sliding_attention") == 0)
                hp->layer_types[i] = 1;
            else if (e->type == CV_JSTR && strcmp(cv_jstr(j, e), "full_attention") == 0)
                hp->layer_types[i] = 0;
            else
                return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: layer_types[%llu] must be "
                                    "\"sliding_attention\" or \"full_attention\"", j->name,
                                    (unsigned long long)i);
        }
    } else {
        cv_layers_from_pattern(hp, family == 2 ? 2 : pattern);
    }

    hp->embed_scale = sqrt((double)hp->hidden);
    if (family == 1)
        hp->query_scale = 1.0 / sqrt((double)hp->head_dim);
    else
        hp->query_scale = qpas > 0 ? 1.0 / sqrt(qpas) : 0;
    hp->sandwich = family >= 2;
    hp->qk_norm = family == 3;
    return cv_check_hparams(hp, j->name);
}

static gemini_result cv_gguf_hparams(cv_hparams *hp, cv_source *s)
{
    const char *arch = cv_gguf_get_str(s, "general.architecture"), *name;
    gemini_result r = GEMINI_OK;
    char key[128];
    uint64_t value_length = 0, pattern = 6;
    cv_gkv *kv;
    const char *scaling;

#define CV_KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    if (!arch)
        return gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: general.architecture is missing",
                            s->input);
    if (strcmp(arch, "gemma") == 0 || strcmp(arch, "gemma2") == 0 ||
        strcmp(arch, "gemma3") == 0) {
        hp->arch = strcmp(arch, "gemma") == 0 ? "gemma" : strcmp(arch, "gemma2") == 0 ? "gemma2"
                                                                                   : "gemma3";
    } else {
        return gemini__fail(GEMINI_ERR_UNSUPPORTED,
                            "%s: general.architecture \"%.60s\" (supported: gemma, gemma2, "
                            "gemma3)", s->input, arch);
    }
    name = cv_gguf_get_str(s, "general.name");
    if (name)
        snprintf(hp->name, sizeof hp->name, "%s", name);

    {
        static const char *const required[] = {"context_length", "embedding_length",
                                               "block_count", "feed_forward_length",
                                               "attention.head_count",
                                               "attention.layer_norm_rms_epsilon"};
        uint64_t *targets[5];
        size_t i;
        targets[0] = &hp->max_pos;
        targets[1] = &hp->hidden;
        targets[2] = &hp->layers;
        targets[3] = &hp->inter;
        targets[4] = &hp->heads;
        for (i = 0; i < 6; i++) {
            int found = i < 5 ? cv_gguf_get_uint(s, CV_KEY(required[i]), targets[i], &r)
                              : cv_gguf_get_f64(s, CV_KEY(required[i]), &hp->eps, &r);
            if (r != GEMINI_OK)
                return r;
            if (!found)
                return gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: metadata key %s is missing",
                                    s->input, key);
        }
    }
    hp->kv_heads = hp->heads;
    cv_gguf_get_uint(s, CV_KEY("attention.head_count_kv"), &hp->kv_heads, &r);
    hp->head_dim = hp->heads ? hp->hidden / hp->heads : 0;
    cv_gguf_get_uint(s, CV_KEY("attention.key_length"), &hp->head_dim, &r);
    if (cv_gguf_get_uint(s, CV_KEY("attention.value_length"), &value_length, &r) &&
        value_length != hp->head_dim)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: %s %llu differs from key_length %llu",
                            s->input, key, (unsigned long long)value_length,
                            (unsigned long long)hp->head_dim);

    /* RoPE: global base, linear scaling, local base (llama.cpp hard-codes 10000 for gemma3). */
    hp->rope_theta = 10000;
    cv_gguf_get_f64(s, CV_KEY("rope.freq_base"), &hp->rope_theta, &r);
    hp->rope_scale = 1;
    scaling = cv_gguf_get_str(s, CV_KEY("rope.scaling.type"));
    if (scaling && strcmp(scaling, "linear") == 0) {
        cv_gguf_get_f64(s, CV_KEY("rope.scaling.factor"), &hp->rope_scale, &r);
    } else if (scaling && strcmp(scaling, "none") != 0) {
        return gemini__fail(GEMINI_ERR_UNSUPPORTED,
                            "%s: %s.rope.scaling.type \"%.40s\" (only linear is supported)",
                            s->input, arch, scaling);
    } else if (!scaling) {
        double factor = 0;
        if (cv_gguf_get_f64(s, CV_KEY("rope.scale_linear"), &factor, &r) && factor > 0)
            hp->rope_scale = factor;
    }
    hp->rope_theta_local = strcmp(arch, "gemma3") == 0 ? 10000 : hp->rope_theta;
    cv_gguf_get_f64(s, CV_KEY("rope.freq_base_swa"), &hp->rope_theta_local, &r);

    /* Soft-caps: llama.cpp's gemma2 defaults are 50 and 30. */
    hp->attn_softcap = strcmp(arch, "gemma2") == 0 ? 50 : 0;
    hp->final_softcap = strcmp(arch, "gemma2") == 0 ? 30 : 0;
    cv_gguf_get_f64(s, CV_KEY("attn_logit_softcapping"), &hp->attn_softcap, &r);
    cv_gguf_get_f64(s, CV_KEY("final_logit_softcapping"), &hp->final_softcap, &r);
    if (r != GEMINI_OK)
        return r;
    if (hp->layers == 0 || hp->layers > CV_MAX_LAYERS)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: %s.block_count %llu (1 to %d)", s->input,
                            arch, (unsigned long long)hp->layers, CV_MAX_LAYERS);

    /* Local layers and the window. */
    hp->sliding_window = strcmp(arch, "gemma2") == 0 ? 4096 : 0;
    cv_gguf_get_uint(s, CV_KEY("attention.sliding_window"), &hp->sliding_window, &r);
    if (strcmp(arch, "gemma") == 0) {
        hp->sliding_window = 0;
    } else if (strcmp(arch, "gemma2") == 0) {
        cv_layers_from_pattern(hp, 2);
    } else if (hp->sliding_window == 0) {
        /* llama.cpp omits the window when every layer is global. */
        cv_layers_from_pattern(hp, 0);
    } else {
        kv = cv_gguf_find(s, CV_KEY("attention.sliding_window_pattern"));
        if (kv && kv->type == CV_GV_ARRAY) {
            uint64_t i;
            int64_t v;
            if (kv->count != hp->layers || cv_gv_size(kv->elem_type) == 0)
                return gemini__fail(GEMINI_ERR_FORMAT,
                                    "%s: %s has %llu entries for %llu layers", s->input, key,
                                    (unsigned long long)kv->count,
                                    (unsigned long long)hp->layers);
            for (i = 0; i < hp->layers; i++) {
                if (!cv_gguf_raw_int(kv->elem_type,
                                     kv->array + i * cv_gv_size(kv->elem_type), &v))
                    return gemini__fail(GEMINI_ERR_FORMAT, "%s: %s: bad entry", s->input, key);
                hp->layer_types[i] = v != 0;
            }
        } else {
            cv_gguf_get_uint(s, key, &pattern, &r);
            cv_layers_from_pattern(hp, pattern);
        }
    }
    if (r != GEMINI_OK)
        return r;
#undef CV_KEY

    /* llama.cpp's attention scale: 1/sqrt(head_dim), except the 27B models (Gemma 2: 46
       layers, Gemma 3: 62 layers), whose query_pre_attn_scalar is hidden / heads. */
    if ((strcmp(arch, "gemma2") == 0 && hp->layers == 46) ||
        (strcmp(arch, "gemma3") == 0 && hp->layers == 62))
        hp->query_scale = 1.0 / sqrt((double)hp->hidden / (double)hp->heads);
    else
        hp->query_scale = hp->head_dim ? 1.0 / sqrt((double)hp->head_dim) : 0;
    hp->embed_scale = sqrt((double)hp->hidden);
    hp->sandwich = strcmp(arch, "gemma") != 0;
    hp->qk_norm = strcmp(arch, "gemma3") == 0;
    return cv_check_hparams(hp, s->input);
}

/* ============================================================================================
   The output plan: which tensors, from where, in what type
   ============================================================================================ */

typedef struct cv_out_tensor {
    char name[64];
    const cv_src_tensor *src;
    gemini_type type;
    int n_dims;
    uint64_t dims[4];
    int add_one;             /* norm weight stored as w: write 1 + w */
    int copy;                /* the source bytes are already in the output type */
    uint64_t offset, size;   /* offset from data_offset */
    uint32_t crc;
} cv_out_tensor;

typedef struct cv_plan {
    cv_out_tensor *tensors;
    size_t n, cap;
} cv_plan;

typedef struct cv_options {
    int has_type;
    gemini_type type;
    const char *output;
} cv_options;

/* What an output tensor is, for its type: a matrix takes --type; a vector (norm, bias) or a
   table that is added, not multiplied (Whisper's positions) is always f32; a convolution stem
   takes --type but stays f16 instead of q8_0/q4_0. */
enum { CV_MATRIX = 0, CV_VECTOR = 1, CV_STEM = 2 };

/* Adds an output tensor after checking the source's shape against the expected one. */
static gemini_result cv_plan_add_kind(cv_plan *plan, const cv_source *src,
                                      const cv_options *opt, const char *name,
                                      const cv_src_tensor *t, int n_dims, uint64_t d0,
                                      uint64_t d1, int kind, int add_one)
{
    cv_out_tensor *o;
    const cv_srctype *st;
    int k;
    if (t->n_dims != n_dims || t->dims[0] != d0 || (n_dims == 2 && t->dims[1] != d1)) {
        char got[96], expected[64];
        cv_shape_string(t, got, sizeof got);
        if (n_dims == 1)
            snprintf(expected, sizeof expected, "[%llu]", (unsigned long long)d0);
        else
            snprintf(expected, sizeof expected, "[%llu, %llu]", (unsigned long long)d0,
                     (unsigned long long)d1);
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: tensor %s%s%s%s has shape %s, expected %s",
                            src->input, t->name, t->from ? " (cut from " : "",
                            t->from ? t->from : "", t->from ? ")" : "", got, expected);
    }
    st = cv_srctype_find(t->type);
    if (!st)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: tensor %s has type %s, which cannot be "
                            "converted", src->input, t->name, t->dtype_name);
    if (plan->n == plan->cap) {
        size_t cap = plan->cap ? plan->cap * 2 : 64;
        cv_out_tensor *grown = (cv_out_tensor *)realloc(plan->tensors, cap * sizeof *grown);
        if (!grown)
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "out of memory");
        plan->tensors = grown;
        plan->cap = cap;
    }
    o = &plan->tensors[plan->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->src = t;
    o->n_dims = n_dims;
    for (k = 0; k < n_dims; k++)
        o->dims[k] = t->dims[k];
    o->add_one = add_one;

    /* Norms and other vectors are always f32. Matrices take --type; without it, GGUF tensors
       keep their type when the format has it (else q8_0) and HF tensors become f16. */
    if (kind == CV_VECTOR || n_dims == 1)
        o->type = GEMINI_TYPE_F32;
    else if (opt->has_type)
        o->type = opt->type;
    else if (src->is_gguf)
        o->type = st->gemini >= 0 ? (gemini_type)st->gemini : GEMINI_TYPE_Q8_0;
    else
        o->type = GEMINI_TYPE_F16;
    if (kind == CV_STEM && (o->type == GEMINI_TYPE_Q8_0 || o->type == GEMINI_TYPE_Q4_0))
        o->type = GEMINI_TYPE_F16;
    if (o->dims[n_dims - 1] % (uint64_t)gemini_type_block_size(o->type) != 0) {
        cv_warn("%s: rows of %llu values are not a multiple of the %s block: writing f16", name,
                (unsigned long long)o->dims[n_dims - 1], gemini_type_name(o->type));
        o->type = GEMINI_TYPE_F16;
    }
    o->copy = st->gemini == (int)o->type && !add_one;
    return GEMINI_OK;
}

static gemini_result cv_plan_add(cv_plan *plan, const cv_source *src, const cv_options *opt,
                                 const char *name, const cv_src_tensor *t, int n_dims,
                                 uint64_t d0, uint64_t d1, int is_norm, int add_one)
{
    return cv_plan_add_kind(plan, src, opt, name, t, n_dims, d0, d1,
                            is_norm ? CV_VECTOR : CV_MATRIX, add_one);
}

/* Tensor-name mapping (format.md §5). For each output name, the HF suffix of every family and
   the GGUF name (after "blk.N."). `which`: 0 all families, 1 Gemma 1 only, 2 Gemma 2/3 only,
   3 Gemma 3 only. Shape codes: see cv_expected_shape. */
typedef struct cv_layer_tensor {
    const char *ours;
    const char *hf;
    const char *gguf;
    int which;
    char shape;              /* 'n' [d], 'h' [D], 'q' [H*D, d], 'k' [Hkv*D, d], 'o' [d, H*D],
                                'f' [F, d], 'd' [d, F] */
} cv_layer_tensor;

static const cv_layer_tensor cv_layer_tensors[] = {
    {"attn_norm", "input_layernorm.weight", "attn_norm.weight", 0, 'n'},
    {"attn_q", "self_attn.q_proj.weight", "attn_q.weight", 0, 'q'},
    {"attn_k", "self_attn.k_proj.weight", "attn_k.weight", 0, 'k'},
    {"attn_v", "self_attn.v_proj.weight", "attn_v.weight", 0, 'k'},
    {"attn_q_norm", "self_attn.q_norm.weight", "attn_q_norm.weight", 3, 'h'},
    {"attn_k_norm", "self_attn.k_norm.weight", "attn_k_norm.weight", 3, 'h'},
    {"attn_out", "self_attn.o_proj.weight", "attn_output.weight", 0, 'o'},
    /* Gemma 1's post_attention_layernorm is the pre-MLP norm; in Gemma 2/3 it follows
       attention and pre_feedforward_layernorm is the pre-MLP norm. */
    {"post_attn_norm", "post_attention_layernorm.weight", "post_attention_norm.weight", 2, 'n'},
    {"ffn_norm", "post_attention_layernorm.weight", "ffn_norm.weight", 1, 'n'},
    {"ffn_norm", "pre_feedforward_layernorm.weight", "ffn_norm.weight", 2, 'n'},
    {"ffn_gate", "mlp.gate_proj.weight", "ffn_gate.weight", 0, 'f'},
    {"ffn_up", "mlp.up_proj.weight", "ffn_up.weight", 0, 'f'},
    {"ffn_down", "mlp.down_proj.weight", "ffn_down.weight", 0, 'd'},
    {"post_ffn_norm", "post_feedforward_layernorm.weight", "post_ffw_norm.weight", 2, 'n'},
};

static void cv_expected_shape(const cv_hparams *hp, char code, int *n_dims, uint64_t *d0,
                              uint64_t *d1)
{
    *n_dims = 2;
    *d1 = hp->hidden;
    switch (code) {
    case 'n': *n_dims = 1; *d0 = hp->hidden; *d1 = 0; break;
    case 'h': *n_dims = 1; *d0 = hp->head_dim; *d1 = 0; break;
    case 'q': *d0 = hp->heads * hp->head_dim; break;
    case 'k': *d0 = hp->kv_heads * hp->head_dim; break;
    case 'o': *d0 = hp->hidden; *d1 = hp->heads * hp->head_dim; break;
    case 'f': *d0 = hp->inter; break;
    default: *d0 = hp->hidden; *d1 = hp->inter; break;
    }
}

/* True if two source tensors hold the same bytes (to detect a stored but tied lm_head). */
static gemini_result cv_same_bytes(cv_source *s, const cv_src_tensor *a, const cv_src_tensor *b,
                                   int *same)
{
    unsigned char *x, *y;
    uint64_t pos, step = (uint64_t)1 << 20;
    gemini_result r = GEMINI_OK;
    *same = a->type == b->type && a->size == b->size && a->n_dims == b->n_dims &&
            memcmp(a->dims, b->dims, sizeof a->dims) == 0;
    if (!*same)
        return GEMINI_OK;
    x = (unsigned char *)cv_alloc(step, "compare");
    y = (unsigned char *)cv_alloc(step, "compare");
    if (!x || !y) {
        free(x);
        free(y);
        return GEMINI_ERR_OUT_OF_MEMORY;
    }
    for (pos = 0; pos < a->size && *same && r == GEMINI_OK; pos += step) {
        uint64_t n = a->size - pos < step ? a->size - pos : step;
        r = cv_file_read(&s->files[a->file], a->offset + pos, x, n, a->name);
        if (r == GEMINI_OK)
            r = cv_file_read(&s->files[b->file], b->offset + pos, y, n, b->name);
        if (r == GEMINI_OK && memcmp(x, y, (size_t)n) != 0)
            *same = 0;
    }
    free(x);
    free(y);
    return r;
}

/* PaliGemma's SigLIP tower and projector (format.md §8.2), after the decoder's tensors. The
   released files name the tower vision_tower.vision_model.*, transformers v5 writes
   vision_tower.* and its in-memory names carry a leading "model."; all are accepted. */
static gemini_result cv_plan_vision(cv_plan *plan, cv_source *s, const cv_hparams *hp,
                                    const cv_options *opt)
{
    static const char *const towers[] = {"vision_tower.vision_model.",
                                         "model.vision_tower.vision_model.", "vision_tower.",
                                         "model.vision_tower."};
    static const char *const projectors[] = {"multi_modal_projector.linear.",
                                             "model.multi_modal_projector.linear."};
    static const struct {
        const char *ours, *hf;
        char shape;          /* 'n' [Dv], 'm' [Dv, Dv], 'u' [F, Dv], 'f' [F], 'd' [Dv, F] */
    } block[] = {
        {"attn_norm", "layer_norm1.weight", 'n'}, {"attn_norm_b", "layer_norm1.bias", 'n'},
        {"attn_q", "self_attn.q_proj.weight", 'm'}, {"attn_q_b", "self_attn.q_proj.bias", 'n'},
        {"attn_k", "self_attn.k_proj.weight", 'm'}, {"attn_k_b", "self_attn.k_proj.bias", 'n'},
        {"attn_v", "self_attn.v_proj.weight", 'm'}, {"attn_v_b", "self_attn.v_proj.bias", 'n'},
        {"attn_out", "self_attn.out_proj.weight", 'm'},
        {"attn_out_b", "self_attn.out_proj.bias", 'n'},
        {"ffn_norm", "layer_norm2.weight", 'n'}, {"ffn_norm_b", "layer_norm2.bias", 'n'},
        {"ffn_up", "mlp.fc1.weight", 'u'}, {"ffn_up_b", "mlp.fc1.bias", 'f'},
        {"ffn_down", "mlp.fc2.weight", 'd'}, {"ffn_down_b", "mlp.fc2.bias", 'n'},
    };
    const cv_vision *v = &hp->vision;
    uint64_t grid = v->image_size / v->patch, layer;
    const char *tower = NULL, *projector = NULL;
    char name[512], ours[64];
    cv_src_tensor *t;
    gemini_result r;
    size_t i;

    for (i = 0; i < sizeof towers / sizeof towers[0] && !tower; i++) {
        snprintf(name, sizeof name, "%sembeddings.patch_embedding.weight", towers[i]);
        if (cv_source_find(s, name))
            tower = towers[i];
    }
    for (i = 0; i < sizeof projectors / sizeof projectors[0] && !projector; i++) {
        snprintf(name, sizeof name, "%sweight", projectors[i]);
        if (cv_source_find(s, name))
            projector = projectors[i];
    }
    if (!tower || !projector)
        return gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: no %s (tried the prefixes "
                            "vision_tower.vision_model., vision_tower. and multi_modal_projector."
                            "linear., each also after model.)", s->input,
                            tower ? "projector" : "vision tower");

#define CV_VISION_TENSOR(suffix)                                                                 \
    do {                                                                                         \
        snprintf(name, sizeof name, "%s%s", tower, suffix);                                      \
        if (!(t = cv_source_find(s, name)))                                                      \
            return gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: tensor %s is missing", s->input,    \
                                name);                                                           \
    } while (0)
    /* the patch convolution [Dv, 3, P, P] is stored as the matrix [Dv, 3 * P * P] it is
       row-major already */
    CV_VISION_TENSOR("embeddings.patch_embedding.weight");
    if (t->n_dims != 4 || t->dims[0] != v->hidden || t->dims[1] != 3 || t->dims[2] != v->patch ||
        t->dims[3] != v->patch)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: tensor %s must be [%llu, 3, %llu, %llu]",
                            s->input, name, (unsigned long long)v->hidden,
                            (unsigned long long)v->patch, (unsigned long long)v->patch);
    t->n_dims = 2;
    t->dims[1] = 3 * v->patch * v->patch;
    t->dims[2] = t->dims[3] = 0;
    r = cv_plan_add(plan, s, opt, "vis.patch_embd", t, 2, v->hidden, t->dims[1], 0, 0);
    if (r == GEMINI_OK) {
        CV_VISION_TENSOR("embeddings.patch_embedding.bias");
        r = cv_plan_add(plan, s, opt, "vis.patch_embd_b", t, 1, v->hidden, 0, 1, 0);
    }
    if (r == GEMINI_OK) {
        CV_VISION_TENSOR("embeddings.position_embedding.weight");
        r = cv_plan_add(plan, s, opt, "vis.pos_embd", t, 2, grid * grid, v->hidden, 1, 0);
    }
    for (layer = 0; layer < v->layers && r == GEMINI_OK; layer++) {
        for (i = 0; i < sizeof block / sizeof block[0] && r == GEMINI_OK; i++) {
            uint64_t d0 = block[i].shape == 'u' || block[i].shape == 'f' ? v->inter : v->hidden;
            uint64_t d1 = block[i].shape == 'm' || block[i].shape == 'u' ? v->hidden
                          : block[i].shape == 'd'                        ? v->inter
                                                                         : 0;
            char suffix[96];
            snprintf(suffix, sizeof suffix, "encoder.layers.%llu.%s", (unsigned long long)layer,
                     block[i].hf);
            CV_VISION_TENSOR(suffix);
            snprintf(ours, sizeof ours, "vis.blk.%llu.%s", (unsigned long long)layer,
                     block[i].ours);
            r = cv_plan_add(plan, s, opt, ours, t, d1 ? 2 : 1, d0, d1, d1 == 0, 0);
        }
    }
    if (r == GEMINI_OK) {
        CV_VISION_TENSOR("post_layernorm.weight");
        r = cv_plan_add(plan, s, opt, "vis.post_norm", t, 1, v->hidden, 0, 1, 0);
    }
    if (r == GEMINI_OK) {
        CV_VISION_TENSOR("post_layernorm.bias");
        r = cv_plan_add(plan, s, opt, "vis.post_norm_b", t, 1, v->hidden, 0, 1, 0);
    }
#undef CV_VISION_TENSOR
    if (r == GEMINI_OK) {
        snprintf(name, sizeof name, "%sweight", projector);
        r = cv_plan_add(plan, s, opt, "mm.proj", cv_source_find(s, name), 2, hp->hidden,
                        v->hidden, 0, 0);
    }
    if (r == GEMINI_OK) {
        snprintf(name, sizeof name, "%sbias", projector);
        if (!(t = cv_source_find(s, name)))
            return gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: tensor %s is missing", s->input,
                                name);
        r = cv_plan_add(plan, s, opt, "mm.proj_b", t, 1, hp->hidden, 0, 1, 0);
    }
    return r;
}

/* Builds the plan for either input kind; sets hp->vocab and hp->tied. */
static gemini_result cv_make_plan(cv_plan *plan, cv_source *s, cv_hparams *hp,
                                  const cv_options *opt)
{
    static const char *const prefixes[] = {"model.", "language_model.model.",
                                           "model.language_model.", ""};
    const char *prefix = "";
    char name[512], ours[64];
    const cv_src_tensor *embd, *norm, *head = NULL;
    size_t i, p;
    uint64_t layer;
    int family = strcmp(hp->arch, "gemma") == 0 ? 1 : strcmp(hp->arch, "gemma2") == 0 ? 2 : 3;
    gemini_result r;

    /* Embeddings, final norm and the head. */
    if (s->is_gguf) {
        embd = cv_source_find(s, "token_embd.weight");
        norm = cv_source_find(s, "output_norm.weight");
        head = cv_source_find(s, "output.weight");
        if (!embd || !norm)
            return gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: tensor %s is missing", s->input,
                                embd ? "output_norm.weight" : "token_embd.weight");
    } else {
        embd = NULL;
        for (p = 0; p < sizeof prefixes / sizeof prefixes[0] && !embd; p++) {
            snprintf(name, sizeof name, "%sembed_tokens.weight", prefixes[p]);
            embd = cv_source_find(s, name);
            prefix = prefixes[p];
        }
        if (!embd)
            return gemini__fail(GEMINI_ERR_MISSING_KEY,
                                "%s: no embed_tokens.weight tensor (tried the prefixes model., "
                                "language_model.model. and model.language_model.)", s->input);
        snprintf(name, sizeof name, "%snorm.weight", prefix);
        norm = cv_source_find(s, name);
        if (!norm)
            return gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: tensor %s is missing", s->input,
                                name);
        head = cv_source_find(s, "lm_head.weight");
        if (!head)
            head = cv_source_find(s, "language_model.lm_head.weight");
    }
    if (embd->n_dims != 2)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: tensor %s must have 2 dimensions", s->input,
                            embd->name);
    hp->vocab = embd->dims[0];
    if (hp->vocab == 0 || hp->vocab > (uint64_t)INT32_MAX)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: %s has %llu rows", s->input, embd->name,
                            (unsigned long long)hp->vocab);
    hp->tied = 1;
    if (head) {
        int same;
        r = cv_same_bytes(s, embd, head, &same);
        if (r != GEMINI_OK)
            return r;
        hp->tied = same;
    }

    r = cv_plan_add(plan, s, opt, "token_embd", embd, 2, hp->vocab, hp->hidden, 0, 0);
    for (layer = 0; layer < hp->layers && r == GEMINI_OK; layer++) {
        for (i = 0; i < sizeof cv_layer_tensors / sizeof cv_layer_tensors[0]; i++) {
            const cv_layer_tensor *lt = &cv_layer_tensors[i];
            const cv_src_tensor *t;
            int n_dims, is_norm;
            uint64_t d0, d1;
            if ((lt->which == 1 && family != 1) || (lt->which == 2 && family == 1) ||
                (lt->which == 3 && family != 3))
                continue;
            if (s->is_gguf)
                snprintf(name, sizeof name, "blk.%llu.%s", (unsigned long long)layer, lt->gguf);
            else
                snprintf(name, sizeof name, "%slayers.%llu.%s", prefix,
                         (unsigned long long)layer, lt->hf);
            t = cv_source_find(s, name);
            if (!t)
                return gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: tensor %s is missing",
                                    s->input, name);
            snprintf(ours, sizeof ours, "blk.%llu.%s", (unsigned long long)layer, lt->ours);
            cv_expected_shape(hp, lt->shape, &n_dims, &d0, &d1);
            is_norm = lt->shape == 'n' || lt->shape == 'h';
            /* HF stores w, GGUF already 1 + w. */
            r = cv_plan_add(plan, s, opt, ours, t, n_dims, d0, d1, is_norm,
                            is_norm && !s->is_gguf);
            if (r != GEMINI_OK)
                return r;
        }
    }
    if (r == GEMINI_OK)
        r = cv_plan_add(plan, s, opt, "output_norm", norm, 1, hp->hidden, 0, 1, !s->is_gguf);
    if (r == GEMINI_OK && !hp->tied)
        r = cv_plan_add(plan, s, opt, "output", head, 2, hp->vocab, hp->hidden, 0, 0);
    if (r == GEMINI_OK && hp->vision.present)
        r = cv_plan_vision(plan, s, hp, opt);
    return r;
}

/* ============================================================================================
   Whisper (format.md §7), from a Hugging Face directory or a CTranslate2 (faster-whisper) one

   Both inputs end up as source tensors under the Hugging Face names (model.encoder.*,
   model.decoder.*, proj_out.weight): a CTranslate2 file's variables are renamed, and its fused
   projections cut into row ranges, right after it is read. One plan then serves both.
   ============================================================================================ */

/* A CTranslate2 WhisperSpec variable and the Hugging Face tensor it holds: rows part of parts
   equal row ranges (self-attention keeps q, k and v in one [3d, d] matrix, cross-attention k
   and v in one [2d, d]). hf NULL: a bias Whisper does not have, which CTranslate2 fills with
   zeros; it must be zero and is dropped. */
typedef struct cv_ct2_name {
    const char *ct2;         /* after "encoder/layer_N/" or "decoder/layer_N/" (layers), or
                                the whole name */
    const char *hf;          /* after "model.encoder.layers.N." / "model.decoder.layers.N." */
    int part, parts;
} cv_ct2_name;

static const cv_ct2_name cv_ct2_layer_names[] = {
    {"self_attention/layer_norm/gamma", "self_attn_layer_norm.weight", 0, 1},
    {"self_attention/layer_norm/beta", "self_attn_layer_norm.bias", 0, 1},
    {"self_attention/linear_0/weight", "self_attn.q_proj.weight", 0, 3},
    {"self_attention/linear_0/weight", "self_attn.k_proj.weight", 1, 3},
    {"self_attention/linear_0/weight", "self_attn.v_proj.weight", 2, 3},
    {"self_attention/linear_0/bias", "self_attn.q_proj.bias", 0, 3},
    {"self_attention/linear_0/bias", NULL, 1, 3},
    {"self_attention/linear_0/bias", "self_attn.v_proj.bias", 2, 3},
    {"self_attention/linear_1/weight", "self_attn.out_proj.weight", 0, 1},
    {"self_attention/linear_1/bias", "self_attn.out_proj.bias", 0, 1},
    /* Cross-attention: decoder layers only. */
    {"attention/layer_norm/gamma", "encoder_attn_layer_norm.weight", 0, 1},
    {"attention/layer_norm/beta", "encoder_attn_layer_norm.bias", 0, 1},
    {"attention/linear_0/weight", "encoder_attn.q_proj.weight", 0, 1},
    {"attention/linear_0/bias", "encoder_attn.q_proj.bias", 0, 1},
    {"attention/linear_1/weight", "encoder_attn.k_proj.weight", 0, 2},
    {"attention/linear_1/weight", "encoder_attn.v_proj.weight", 1, 2},
    {"attention/linear_1/bias", NULL, 0, 2},
    {"attention/linear_1/bias", "encoder_attn.v_proj.bias", 1, 2},
    {"attention/linear_2/weight", "encoder_attn.out_proj.weight", 0, 1},
    {"attention/linear_2/bias", "encoder_attn.out_proj.bias", 0, 1},
    {"ffn/layer_norm/gamma", "final_layer_norm.weight", 0, 1},
    {"ffn/layer_norm/beta", "final_layer_norm.bias", 0, 1},
    {"ffn/linear_0/weight", "fc1.weight", 0, 1},
    {"ffn/linear_0/bias", "fc1.bias", 0, 1},
    {"ffn/linear_1/weight", "fc2.weight", 0, 1},
    {"ffn/linear_1/bias", "fc2.bias", 0, 1},
};

static const cv_ct2_name cv_ct2_top_names[] = {
    {"encoder/conv1/weight", "model.encoder.conv1.weight", 0, 1},
    {"encoder/conv1/bias", "model.encoder.conv1.bias", 0, 1},
    {"encoder/conv2/weight", "model.encoder.conv2.weight", 0, 1},
    {"encoder/conv2/bias", "model.encoder.conv2.bias", 0, 1},
    {"encoder/position_encodings/encodings", "model.encoder.embed_positions.weight", 0, 1},
    {"encoder/layer_norm/gamma", "model.encoder.layer_norm.weight", 0, 1},
    {"encoder/layer_norm/beta", "model.encoder.layer_norm.bias", 0, 1},
    {"decoder/embeddings/weight", "model.decoder.embed_tokens.weight", 0, 1},
    {"decoder/position_encodings/encodings", "model.decoder.embed_positions.weight", 0, 1},
    {"decoder/layer_norm/gamma", "model.decoder.layer_norm.weight", 0, 1},
    {"decoder/layer_norm/beta", "model.decoder.layer_norm.bias", 0, 1},
    {"decoder/projection/weight", "proj_out.weight", 0, 1},
    {"decoder/projection/bias", NULL, 0, 1},
};

/* "encoder/layer_12/rest": *decoder 0, *layer 12, *rest "rest". 0 if the name is not a layer
   variable (or its index has leading zeros or is too large). */
static int cv_ct2_layer_name(const char *name, int *decoder, uint64_t *layer, const char **rest)
{
    const char *p = name + 14;
    if (strncmp(name, "encoder/layer_", 14) == 0)
        *decoder = 0;
    else if (strncmp(name, "decoder/layer_", 14) == 0)
        *decoder = 1;
    else
        return 0;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '/'))
        return 0;
    for (*layer = 0; *p >= '0' && *p <= '9'; p++) {
        *layer = *layer * 10 + (uint64_t)(*p - '0');
        if (*layer >= CV_MAX_LAYERS)
            return 0;
    }
    if (*p != '/')
        return 0;
    *rest = p + 1;
    return 1;
}

/* Fails unless every value of t (f32, f16 or bf16) is +0 or -0. */
static gemini_result cv_ct2_check_zero(cv_source *s, const cv_src_tensor *t,
                                       const char *variable, uint64_t first, const char *what)
{
    unsigned char buf[4096];
    uint64_t pos, elem = t->size / t->n_values, k;
    for (pos = 0; pos < t->size; pos += sizeof buf) {
        uint64_t n = t->size - pos < sizeof buf ? t->size - pos : sizeof buf;
        gemini_result r = cv_file_read(&s->files[t->file], t->offset + pos, buf, n, variable);
        if (r != GEMINI_OK)
            return r;
        /* The sign bit is the top bit of each value's last byte (little-endian). */
        for (k = 0; k < n; k++)
            if ((k % elem == elem - 1 ? buf[k] & 0x7F : buf[k]) != 0)
                return gemini__fail(GEMINI_ERR_UNSUPPORTED,
                                    "%s: variable %s: values %llu to %llu hold %s, which "
                                    "Whisper does not have, but they are not all zero", s->input,
                                    variable, (unsigned long long)first,
                                    (unsigned long long)(first + t->n_values - 1), what);
    }
    return GEMINI_OK;
}

/* Adds the Hugging Face tensor hf_name over part `part` of `parts` equal row ranges of
   CTranslate2 variable `index` (see cv_ct2_name). */
static gemini_result cv_ct2_part(cv_source *s, size_t index, const char *hf_name, int part,
                                 int parts)
{
    cv_src_tensor piece = s->tensors[index], *t;
    uint64_t rows = piece.dims[0];
    gemini_result r;
    if (piece.type < 0)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: variable %s is %s: only float32, "
                            "float16 and bfloat16 checkpoints are read (convert the model again "
                            "with CTranslate2's --quantization float16)", s->input, piece.name,
                            piece.dtype_name);
    if (rows % (uint64_t)parts != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: variable %s: %llu rows do not split into %d "
                            "equal parts", s->input, piece.name, (unsigned long long)rows,
                            parts);
    piece.dims[0] = rows / (uint64_t)parts;
    piece.n_values /= (uint64_t)parts;
    piece.size /= (uint64_t)parts;
    piece.offset += piece.size * (uint64_t)part;
    if (!hf_name)
        return cv_ct2_check_zero(s, &piece, piece.name, piece.n_values * (uint64_t)part,
                                 parts == 1 ? "an output-projection bias" : "a key bias");
    piece.from = s->tensors[index].name;
    piece.name = cv_strdup(hf_name);
    if (!piece.name)
        return GEMINI_ERR_OUT_OF_MEMORY;
    r = cv_source_add_tensor(s, &t);
    if (r != GEMINI_OK) {
        free(piece.name);
        return r;
    }
    *t = piece;
    return GEMINI_OK;
}

/* Renames every non-scalar variable of a WhisperSpec file (the tables above) and counts the
   layers. A variable the tables do not know is an error: it could change the computation. */
static gemini_result cv_ct2_whisper_rename(cv_source *s, cv_hparams *hp)
{
    size_t n = s->n_tensors, i, k;
    gemini_result r = GEMINI_OK;
    char hf[160];
    for (i = 0; i < n && r == GEMINI_OK; i++) {
        const char *name = s->tensors[i].name, *rest;
        int decoder, matched = 0;
        uint64_t layer;
        if (s->tensors[i].n_dims == 0)
            continue;   /* scalars: head counts and flags, read by cv_ct2_whisper_hparams */
        if (cv_ct2_layer_name(name, &decoder, &layer, &rest)) {
            for (k = 0; k < sizeof cv_ct2_layer_names / sizeof cv_ct2_layer_names[0] &&
                        r == GEMINI_OK; k++) {
                const cv_ct2_name *e = &cv_ct2_layer_names[k];
                if (strcmp(e->ct2, rest) != 0 || (!decoder && strncmp(rest, "attention/", 10) == 0))
                    continue;
                matched = 1;
                snprintf(hf, sizeof hf, "model.%s.layers.%llu.%s", decoder ? "decoder" : "encoder",
                         (unsigned long long)layer, e->hf ? e->hf : "");
                r = cv_ct2_part(s, i, e->hf ? hf : NULL, e->part, e->parts);
            }
            if (matched && decoder && layer + 1 > hp->layers)
                hp->layers = layer + 1;
            if (matched && !decoder && layer + 1 > hp->wh.enc_layers)
                hp->wh.enc_layers = layer + 1;
        } else {
            for (k = 0; k < sizeof cv_ct2_top_names / sizeof cv_ct2_top_names[0] &&
                        r == GEMINI_OK; k++)
                if (strcmp(cv_ct2_top_names[k].ct2, name) == 0) {
                    matched = 1;
                    r = cv_ct2_part(s, i, cv_ct2_top_names[k].hf, 0, 1);
                }
        }
        if (!matched && r == GEMINI_OK)
            r = gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: variable %.200s is not part of the "
                             "Whisper layout this converter reads", s->input, name);
    }
    return r;
}

/* The number of rows (and, with cols, the columns) of a source tensor that must exist with
   n_dims dimensions; for hyperparameters found from shapes. */
static gemini_result cv_whisper_dim(cv_source *s, const char *name, int n_dims, int which,
                                    uint64_t *out)
{
    const cv_src_tensor *t = cv_source_find(s, name);
    if (!t || t->n_dims != n_dims)
        return gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: %s%s%s is missing or does not have %d "
                            "dimensions", s->input, name, t && t->from ? ", from " : "",
                            t && t->from ? t->from : "", n_dims);
    *out = t->dims[which];
    return GEMINI_OK;
}

/* Common checks of a Whisper's sizes; sets the derived decoder fields. */
static gemini_result cv_whisper_check(cv_hparams *hp, const char *where)
{
    cv_whisper *w = &hp->wh;
    if (hp->layers == 0 || hp->layers > CV_MAX_LAYERS || w->enc_layers == 0 ||
        w->enc_layers > CV_MAX_LAYERS)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: %llu encoder and %llu decoder layers (1 to "
                            "%d each)", where, (unsigned long long)w->enc_layers,
                            (unsigned long long)hp->layers, CV_MAX_LAYERS);
    if (hp->hidden == 0 || hp->hidden > (1u << 16) || hp->heads == 0 || hp->heads > 1024 ||
        w->enc_heads == 0 || w->enc_heads > 1024 || hp->hidden % hp->heads != 0 ||
        hp->hidden % w->enc_heads != 0 || hp->hidden / hp->heads < 2)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: d_model %llu does not split into %llu "
                            "encoder / %llu decoder heads (d at most 65536, heads at most 1024)",
                            where, (unsigned long long)hp->hidden,
                            (unsigned long long)w->enc_heads, (unsigned long long)hp->heads);
    if (hp->inter == 0 || hp->inter > (1u << 20) || w->enc_ffn == 0 || w->enc_ffn > (1u << 20) ||
        w->n_mels == 0 || w->n_mels > 4096 || w->audio_ctx == 0 || w->audio_ctx > (1u << 20) ||
        hp->max_pos == 0 || hp->max_pos > (1u << 20) || hp->vocab == 0 ||
        hp->vocab > (1u << 24))
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: a size is out of range: MLP widths %llu and "
                            "%llu, %llu mel bins, %llu audio and %llu text positions, vocabulary "
                            "%llu", where, (unsigned long long)w->enc_ffn,
                            (unsigned long long)hp->inter, (unsigned long long)w->n_mels,
                            (unsigned long long)w->audio_ctx, (unsigned long long)hp->max_pos,
                            (unsigned long long)hp->vocab);
    hp->arch = "whisper";
    hp->is_whisper = 1;
    hp->kv_heads = hp->heads;
    hp->head_dim = hp->hidden / hp->heads;
    hp->eps = 1e-5;    /* torch.nn.LayerNorm's default, which Whisper uses; no config key */
    hp->tied = 1;
    return GEMINI_OK;
}

/* Hyperparameters of a CTranslate2 WhisperSpec file: the head counts are scalar variables,
   everything else comes from tensor shapes (CTranslate2 stores no d_model). Also renames the
   variables (cv_ct2_whisper_rename). */
static gemini_result cv_ct2_whisper_hparams(cv_hparams *hp, cv_source *s)
{
    /* Flags of CTranslate2's decoder spec that would change the computation. */
    static const struct {
        const char *name;
        int64_t value;
        const char *meaning;
    } flags[] = {
        {"decoder/activation", 3, "GELU (3)"},
        {"decoder/pre_norm", 1, "pre-norm layers (1)"},
        {"decoder/scale_embeddings", 0, "unscaled embeddings (0)"},
        {"decoder/alibi", 0, "no ALiBi (0)"},
        {"decoder/start_from_zero_embedding", 0, "0"},
    };
    int64_t value;
    size_t i;
    gemini_result r = GEMINI_OK;
    if (strcmp(s->ct2_spec, "WhisperSpec") != 0)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: CTranslate2 specification \"%s\" (only "
                            "WhisperSpec is read)", s->input, s->ct2_spec);
    if (s->ct2_revision > 3)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: WhisperSpec revision %lu is newer than "
                            "the 3 this converter knows", s->input,
                            (unsigned long)s->ct2_revision);
    for (i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (cv_ct2_scalar(s, flags[i].name, &value, &r) && value != flags[i].value)
            return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: %s is %lld; Whisper has %s",
                                s->input, flags[i].name, (long long)value, flags[i].meaning);
    if (r != GEMINI_OK)
        return r;
    if (!cv_ct2_scalar(s, "encoder/num_heads", &value, &r) || value < 1)
        return r != GEMINI_OK ? r : gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: no positive "
                                                 "encoder/num_heads scalar: the head count "
                                                 "cannot be found from the shapes", s->input);
    hp->wh.enc_heads = (uint64_t)value;
    if (!cv_ct2_scalar(s, "decoder/num_heads", &value, &r) || value < 1)
        return r != GEMINI_OK ? r : gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: no positive "
                                                 "decoder/num_heads scalar: the head count "
                                                 "cannot be found from the shapes", s->input);
    hp->heads = (uint64_t)value;

    r = cv_ct2_whisper_rename(s, hp);
    if (r == GEMINI_OK)
        r = cv_whisper_dim(s, "model.decoder.embed_tokens.weight", 2, 0, &hp->vocab);
    if (r == GEMINI_OK)
        r = cv_whisper_dim(s, "model.decoder.embed_tokens.weight", 2, 1, &hp->hidden);
    if (r == GEMINI_OK)
        r = cv_whisper_dim(s, "model.encoder.conv1.weight", 3, 1, &hp->wh.n_mels);
    if (r == GEMINI_OK)
        r = cv_whisper_dim(s, "model.encoder.embed_positions.weight", 2, 0, &hp->wh.audio_ctx);
    if (r == GEMINI_OK)
        r = cv_whisper_dim(s, "model.decoder.embed_positions.weight", 2, 0, &hp->max_pos);
    if (r == GEMINI_OK)
        r = cv_whisper_dim(s, "model.encoder.layers.0.fc1.weight", 2, 0, &hp->wh.enc_ffn);
    if (r == GEMINI_OK)
        r = cv_whisper_dim(s, "model.decoder.layers.0.fc1.weight", 2, 0, &hp->inter);
    if (r != GEMINI_OK)
        return r;
    return cv_whisper_check(hp, s->input);
}

/* Hyperparameters of a Hugging Face Whisper config.json (model_type "whisper"). */
static gemini_result cv_hf_whisper_hparams(cv_hparams *hp, cv_json *j)
{
    static const char *const keys[] = {
        "d_model", "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim",
        "decoder_layers", "decoder_attention_heads", "decoder_ffn_dim", "num_mel_bins",
        "max_source_positions", "max_target_positions", "vocab_size"};
    uint64_t *targets[sizeof keys / sizeof keys[0]];
    cv_jnode *root = cv_jroot(j), *n;
    gemini_result r = GEMINI_OK;
    size_t i;
    targets[0] = &hp->hidden;
    targets[1] = &hp->wh.enc_layers;
    targets[2] = &hp->wh.enc_heads;
    targets[3] = &hp->wh.enc_ffn;
    targets[4] = &hp->layers;
    targets[5] = &hp->heads;
    targets[6] = &hp->inter;
    targets[7] = &hp->wh.n_mels;
    targets[8] = &hp->wh.audio_ctx;
    targets[9] = &hp->max_pos;
    targets[10] = &hp->vocab;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!cv_cfg_uint(j, root, keys[i], targets[i], &r))
            return r != GEMINI_OK ? r : gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: \"%s\" is "
                                                     "missing", j->name, keys[i]);
    n = cv_jget(j, root, "activation_function");
    if (n && (n->type != CV_JSTR || strcmp(cv_jstr(j, n), "gelu") != 0))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: activation_function must be \"gelu\"",
                            j->name);
    n = cv_jget(j, root, "scale_embedding");
    if (n && n->type == CV_JBOOL && n->boolean)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: scale_embedding is true; Whisper's "
                            "embeddings are not scaled", j->name);
    return cv_whisper_check(hp, j->name);
}

static void cv_whisper_free(cv_whisper *w)
{
    uint64_t i;
    free(w->suppress.v);
    free(w->begin_suppress.v);
    free(w->alignment_heads.v);
    free(w->lang_ids.v);
    if (w->lang_codes)
        for (i = 0; i < w->lang_ids.n; i++)
            free(w->lang_codes[i]);
    free(w->lang_codes);
    memset(w, 0, sizeof *w);
}

/* An integer JSON node in [0, limit). */
static int cv_json_index(const cv_jnode *n, uint64_t limit)
{
    return n && n->type == CV_JNUM && n->is_int && !n->negative && !n->int_overflow &&
           n->uint_value < limit;
}

/* Reads key of obj, an array of token ids below vocab, into list (absent or null: not
   present). With pairs, an array of [layer, head] pairs (alignment heads), flattened. */
static gemini_result cv_whisper_list(cv_json *j, cv_jnode *obj, const char *key,
                                     const cv_hparams *hp, int pairs, cv_i32_list *list)
{
    cv_jnode *n = cv_jget(j, obj, key), *e;
    uint64_t k = 0;
    if (!n || n->type == CV_JNULL)
        return GEMINI_OK;
    if (n->type != CV_JARR || n->count > CV_MAX_COUNT / 2)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: \"%s\" must be an array", j->name, key);
    free(list->v);
    list->v = (int32_t *)cv_calloc((uint64_t)n->count * (pairs ? 2 : 1), sizeof(int32_t), key);
    if (!list->v)
        return GEMINI_ERR_OUT_OF_MEMORY;
    for (e = cv_jchild(j, n); e; e = cv_jnext(j, e)) {
        if (pairs) {
            cv_jnode *layer = e->type == CV_JARR && e->count == 2 ? cv_jchild(j, e) : NULL;
            cv_jnode *head = layer ? cv_jnext(j, layer) : NULL;
            if (!cv_json_index(layer, hp->layers) || !cv_json_index(head, hp->heads))
                return gemini__fail(GEMINI_ERR_FORMAT, "%s: %s[%llu] is not a [layer, head] "
                                    "pair of the decoder (%llu layers, %llu heads)", j->name,
                                    key, (unsigned long long)(k / 2),
                                    (unsigned long long)hp->layers, (unsigned long long)hp->heads);
            list->v[k++] = (int32_t)layer->uint_value;
            list->v[k++] = (int32_t)head->uint_value;
        } else {
            if (!cv_json_index(e, hp->vocab))
                return gemini__fail(GEMINI_ERR_FORMAT, "%s: %s[%llu] is not a token id below %llu",
                                    j->name, key, (unsigned long long)k,
                                    (unsigned long long)hp->vocab);
            list->v[k++] = (int32_t)e->uint_value;
        }
    }
    list->n = k;
    list->present = 1;
    return GEMINI_OK;
}

/* "<|en|>" -> "en": the language code of a language token, or NULL if piece (n bytes) is not
   of that form (2 to 16 lower-case letters). */
static char *cv_whisper_lang_code(const char *piece, size_t n)
{
    size_t i;
    if (n < 6 || n > 20 || memcmp(piece, "<|", 2) != 0 || memcmp(piece + n - 2, "|>", 2) != 0)
        return NULL;
    for (i = 2; i < n - 2; i++)
        if (piece[i] < 'a' || piece[i] > 'z')
            return NULL;
    return cv_strndup(piece + 2, n - 4);
}

/* An optional id setting of generation_config.json, into *out (-1 if absent). */
static gemini_result cv_whisper_cfg_id(cv_json *j, cv_jnode *obj, const char *key,
                                       const cv_hparams *hp, int64_t *out)
{
    cv_jnode *n = cv_jget(j, obj, key);
    *out = -1;
    if (!n || n->type == CV_JNULL)
        return GEMINI_OK;
    if (!cv_json_index(n, hp->vocab))
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: \"%s\" is not a token id below %llu", j->name,
                            key, (unsigned long long)hp->vocab);
    *out = (int64_t)n->uint_value;
    return GEMINI_OK;
}

/* Generation settings. CTranslate2's config.json: suppress_ids, suppress_ids_begin, lang_ids,
   alignment_heads. Hugging Face's generation_config.json: suppress_tokens,
   begin_suppress_tokens, alignment_heads, lang_to_id, task_to_id, no_timestamps_token_id (older
   checkpoints keep the two suppress lists in config.json, read first). Every file is optional;
   a key it lacks is not written. */
static gemini_result cv_whisper_settings(cv_hparams *hp, const char *dir, int ct2)
{
    static const char *const hf_files[2] = {"config.json", "generation_config.json"};
    cv_whisper *w = &hp->wh;
    gemini_result r = GEMINI_OK;
    int f;
    w->cfg_translate = w->cfg_transcribe = w->cfg_no_timestamps = -1;
    for (f = ct2 ? 1 : 0; f < 2 && r == GEMINI_OK; f++) {
        char *path = cv_path_join(dir, ct2 ? "config.json" : hf_files[f]), *text = NULL;
        size_t size;
        cv_json j;
        cv_jnode *root, *map, *e;
        if (!path)
            return GEMINI_ERR_OUT_OF_MEMORY;
        if (!cv_file_exists(path)) {
            free(path);
            continue;
        }
        r = cv_read_whole(path, CV_MAX_JSON_BYTES, &text, &size);
        if (r == GEMINI_OK)
            r = cv_json_parse(&j, path, text, size);
        free(text);
        if (r != GEMINI_OK) {
            free(path);
            return r;
        }
        root = cv_jroot(&j);
        if (root->type != CV_JOBJ)
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: not a JSON object", path);
        if (r == GEMINI_OK)
            r = cv_json_check_unique_keys(&j, root);
        if (r == GEMINI_OK && ct2) {
            r = cv_whisper_list(&j, root, "suppress_ids", hp, 0, &w->suppress);
            if (r == GEMINI_OK)
                r = cv_whisper_list(&j, root, "suppress_ids_begin", hp, 0, &w->begin_suppress);
            if (r == GEMINI_OK)
                r = cv_whisper_list(&j, root, "lang_ids", hp, 0, &w->lang_ids);
        } else if (r == GEMINI_OK) {
            r = cv_whisper_list(&j, root, "suppress_tokens", hp, 0, &w->suppress);
            if (r == GEMINI_OK)
                r = cv_whisper_list(&j, root, "begin_suppress_tokens", hp, 0, &w->begin_suppress);
        }
        if (r == GEMINI_OK && (ct2 || f == 1))
            r = cv_whisper_list(&j, root, "alignment_heads", hp, 1, &w->alignment_heads);
        if (r == GEMINI_OK && !ct2 && f == 1) {
            cv_jnode *tasks = cv_jget(&j, root, "task_to_id");
            r = cv_whisper_cfg_id(&j, root, "no_timestamps_token_id", hp, &w->cfg_no_timestamps);
            if (r == GEMINI_OK && tasks && tasks->type == CV_JOBJ) {
                r = cv_whisper_cfg_id(&j, tasks, "translate", hp, &w->cfg_translate);
                if (r == GEMINI_OK)
                    r = cv_whisper_cfg_id(&j, tasks, "transcribe", hp, &w->cfg_transcribe);
            }
        }

        /* lang_to_id {"<|en|>": 50259, ...}: ids and codes, in id order. */
        map = ct2 || f == 0 ? NULL : cv_jget(&j, root, "lang_to_id");
        if (r == GEMINI_OK && map && map->type == CV_JOBJ && map->count > 0 &&
            map->count < CV_MAX_COUNT) {
            uint64_t n = 0, a, b;
            free(w->lang_ids.v);
            w->lang_ids.v = (int32_t *)cv_calloc(map->count, sizeof(int32_t), path);
            w->lang_codes = (char **)cv_calloc(map->count, sizeof(char *), path);
            if (!w->lang_ids.v || !w->lang_codes)
                r = GEMINI_ERR_OUT_OF_MEMORY;
            for (e = cv_jchild(&j, map); e && r == GEMINI_OK; e = cv_jnext(&j, e), n++) {
                w->lang_codes[n] = cv_whisper_lang_code(cv_jkey(&j, e), e->key_len);
                w->lang_ids.n = n + 1;
                if (!w->lang_codes[n] || !cv_json_index(e, hp->vocab))
                    r = gemini__fail(GEMINI_ERR_FORMAT, "%s: lang_to_id[\"%.40s\"] is not a "
                                     "language token's id", path, cv_jkey(&j, e));
                else
                    w->lang_ids.v[n] = (int32_t)e->uint_value;
            }
            /* Insertion sort by id: at most about a hundred languages. */
            for (a = 1; a < n && r == GEMINI_OK; a++)
                for (b = a; b > 0 && w->lang_ids.v[b - 1] > w->lang_ids.v[b]; b--) {
                    int32_t id = w->lang_ids.v[b];
                    char *code = w->lang_codes[b];
                    w->lang_ids.v[b] = w->lang_ids.v[b - 1];
                    w->lang_codes[b] = w->lang_codes[b - 1];
                    w->lang_ids.v[b - 1] = id;
                    w->lang_codes[b - 1] = code;
                }
            w->lang_ids.present = 1;
        }
        cv_json_free(&j);
        free(path);
    }
    return r;
}

/* The byte-level BPE tokenizer of dir/tokenizer.json, read by gemini_tokenizer.h's own loader
   (so the file holds exactly what gemini_tok_create_bpe accepts), and the special tokens and
   languages found in it by name. Without tokenizer.json: a warning, ids only. */
static gemini_result cv_whisper_tokenizer(cv_tokenizer *tok, cv_hparams *hp, const char *dir)
{
    cv_whisper *w = &hp->wh;
    char *path = cv_path_join(dir, "tokenizer.json"), *text = NULL, **codes = NULL;
    int32_t *langs = NULL;
    gemini_tok_bpe_desc desc;
    gemini_tok *bpe = NULL;
    int64_t n_langs = 0, i;
    size_t size;
    int k;
    gemini_result r = GEMINI_OK;
    if (!path)
        return GEMINI_ERR_OUT_OF_MEMORY;
    if (!cv_file_exists(path)) {
        cv_warn("%s: no tokenizer.json: the file will hold no tokenizer and no whisper.*_id "
                "keys (token ids only)", dir);
        free(path);
        return GEMINI_OK;
    }
    r = cv_read_whole(path, CV_MAX_JSON_BYTES, &text, &size);
    if (r == GEMINI_OK && gemini_tok_load_memory(text, size, &bpe) != GEMINI_OK) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", gemini_last_error());
        r = gemini__fail(GEMINI_ERR_FORMAT, "%s: %s", path, reason);
    }
    free(text);
    if (r == GEMINI_OK && gemini_tok_model_type(bpe) != GEMINI_TOK_BYTE_BPE)
        r = gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: not a byte-level BPE tokenizer (Whisper's "
                         "is one)", path);
    if (r != GEMINI_OK) {
        gemini_tok_free(bpe);
        free(path);
        return r;
    }
    tok->byte_bpe = bpe;
    tok->model = "byte-bpe";
    tok->n = (uint64_t)gemini_tok_vocab_size(bpe);
    gemini_tok_describe_bpe(bpe, &desc);

    /* Special tokens, by name; no-speech has two spellings (<|nocaptions|> before v3). */
    for (k = 0; k < CV_WHISPER_N_IDS && r == GEMINI_OK; k++) {
        const char *piece = cv_whisper_id_pieces[k];
        w->ids[k] = gemini_tok_id_of(bpe, piece, strlen(piece));
        if (w->ids[k] < 0 && k == CV_WH_NO_SPEECH)
            w->ids[k] = gemini_tok_id_of(bpe, "<|nocaptions|>", 14);
        if (w->ids[k] < 0)
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: no %s token (for %s)", path, piece,
                             cv_whisper_id_keys[k]);
    }
    tok->eos_id = w->ids[CV_WH_EOT];

    /* Languages: every token between <|startoftranscript|> and <|translate|>. */
    if (r == GEMINI_OK) {
        n_langs = w->ids[CV_WH_TRANSLATE] - w->ids[CV_WH_SOT] - 1;
        if (n_langs < 1)
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: no language tokens between %s and %s",
                             path, cv_whisper_id_pieces[CV_WH_SOT],
                             cv_whisper_id_pieces[CV_WH_TRANSLATE]);
    }
    if (r == GEMINI_OK) {
        langs = (int32_t *)cv_calloc((uint64_t)n_langs, sizeof(int32_t), path);
        codes = (char **)cv_calloc((uint64_t)n_langs, sizeof(char *), path);
        if (!langs || !codes)
            r = GEMINI_ERR_OUT_OF_MEMORY;
    }
    for (i = 0; i < n_langs && r == GEMINI_OK; i++) {
        int32_t id = (int32_t)(w->ids[CV_WH_SOT] + 1 + i);
        langs[i] = id;
        codes[i] = cv_whisper_lang_code(desc.pieces[id], desc.piece_lengths[id]);
        if (!codes[i])
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: token %ld, between %s and %s, is not a "
                             "language token <|xx|>", path, (long)id,
                             cv_whisper_id_pieces[CV_WH_SOT],
                             cv_whisper_id_pieces[CV_WH_TRANSLATE]);
    }

    /* What the config files say must agree with the tokenizer. */
    if (r == GEMINI_OK && w->lang_ids.present) {
        int same = (int64_t)w->lang_ids.n == n_langs;
        for (i = 0; same && i < n_langs; i++)
            same = w->lang_ids.v[i] == langs[i] &&
                   (!w->lang_codes || strcmp(w->lang_codes[i], codes[i]) == 0);
        if (!same)
            r = gemini__fail(GEMINI_ERR_FORMAT, "%s: the languages of the config (%llu) differ "
                             "from the tokenizer's (%lld, ids %ld to %ld)", dir,
                             (unsigned long long)w->lang_ids.n, (long long)n_langs,
                             (long)langs[0], (long)langs[n_langs - 1]);
    }
    if (r == GEMINI_OK &&
        ((w->cfg_translate >= 0 && w->cfg_translate != w->ids[CV_WH_TRANSLATE]) ||
         (w->cfg_transcribe >= 0 && w->cfg_transcribe != w->ids[CV_WH_TRANSCRIBE]) ||
         (w->cfg_no_timestamps >= 0 && w->cfg_no_timestamps != w->ids[CV_WH_NO_TIMESTAMPS])))
        r = gemini__fail(GEMINI_ERR_FORMAT, "%s: generation_config.json's task_to_id or "
                         "no_timestamps_token_id differs from the tokenizer", dir);
    if (r == GEMINI_OK) {
        uint64_t old_n = w->lang_ids.n;
        free(w->lang_ids.v);
        if (w->lang_codes)
            for (i = 0; i < (int64_t)old_n; i++)
                free(w->lang_codes[i]);
        free(w->lang_codes);
        w->lang_ids.v = langs;
        w->lang_ids.n = (uint64_t)n_langs;
        w->lang_ids.present = 1;
        w->lang_codes = codes;
        langs = NULL;
        codes = NULL;
    }
    free(langs);
    if (codes)
        for (i = 0; i < n_langs; i++)
            free(codes[i]);
    free(codes);
    free(path);
    return r;
}

/* Adds output tensor `ours` from source tensor hf with the shape of code: 'v' [d], 'f' [ffn],
   'm' [d, d], 'u' [ffn, d], 'w' [d, ffn], 'e' [vocab, d], 'a' [audio_ctx, d] and
   't' [max_position, d] (f32 tables), 'c' and 'C' the conv stems [d, n_mels, 3] and
   [d, d, 3], written as [d, in * 3] (the same bytes: element [o][i * 3 + k]). */
static gemini_result cv_whisper_add(cv_plan *plan, cv_source *s, const cv_hparams *hp,
                                    const cv_options *opt, const char *ours, const char *hf,
                                    char shape, uint64_t ffn)
{
    cv_src_tensor *t = cv_source_find(s, hf);
    uint64_t d = hp->hidden, d0 = d, d1 = d, in;
    int n_dims = 2, kind = CV_MATRIX;
    if (!t)
        return gemini__fail(GEMINI_ERR_MISSING_KEY, "%s: tensor %s is missing", s->input, hf);
    switch (shape) {
    case 'v': n_dims = 1, kind = CV_VECTOR; break;
    case 'f': n_dims = 1, d0 = ffn, kind = CV_VECTOR; break;
    case 'm': break;
    case 'u': d0 = ffn; break;
    case 'w': d1 = ffn; break;
    case 'e': d0 = hp->vocab; break;
    case 'a': d0 = hp->wh.audio_ctx, kind = CV_VECTOR; break;
    case 't': d0 = hp->max_pos, kind = CV_VECTOR; break;
    default:
        in = shape == 'c' ? hp->wh.n_mels : d;
        if (t->n_dims != 3 || t->dims[0] != d || t->dims[1] != in || t->dims[2] != 3) {
            char got[96];
            cv_shape_string(t, got, sizeof got);
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: tensor %s has shape %s, expected [%llu, "
                                "%llu, 3]", s->input, hf, got, (unsigned long long)d,
                                (unsigned long long)in);
        }
        t->n_dims = 2;
        t->dims[1] = in * 3;
        t->dims[2] = 0;
        d1 = in * 3;
        kind = CV_STEM;
        break;
    }
    return cv_plan_add_kind(plan, s, opt, ours, t, n_dims, d0, d1, kind, 0);
}

/* One encoder or decoder layer: output name after "enc.blk.N." / "blk.N.", source name after
   "[model.]encoder.layers.N." / "[model.]decoder.layers.N.", cv_whisper_add's shape code. */
typedef struct cv_whisper_tensor {
    const char *ours;
    const char *hf;
    int decoder_only;
    char shape;
} cv_whisper_tensor;

static const cv_whisper_tensor cv_whisper_layer_tensors[] = {
    {"attn_norm", "self_attn_layer_norm.weight", 0, 'v'},
    {"attn_norm_b", "self_attn_layer_norm.bias", 0, 'v'},
    {"attn_q", "self_attn.q_proj.weight", 0, 'm'},
    {"attn_q_b", "self_attn.q_proj.bias", 0, 'v'},
    {"attn_k", "self_attn.k_proj.weight", 0, 'm'},
    {"attn_v", "self_attn.v_proj.weight", 0, 'm'},
    {"attn_v_b", "self_attn.v_proj.bias", 0, 'v'},
    {"attn_out", "self_attn.out_proj.weight", 0, 'm'},
    {"attn_out_b", "self_attn.out_proj.bias", 0, 'v'},
    {"cross_norm", "encoder_attn_layer_norm.weight", 1, 'v'},
    {"cross_norm_b", "encoder_attn_layer_norm.bias", 1, 'v'},
    {"cross_q", "encoder_attn.q_proj.weight", 1, 'm'},
    {"cross_q_b", "encoder_attn.q_proj.bias", 1, 'v'},
    {"cross_k", "encoder_attn.k_proj.weight", 1, 'm'},
    {"cross_v", "encoder_attn.v_proj.weight", 1, 'm'},
    {"cross_v_b", "encoder_attn.v_proj.bias", 1, 'v'},
    {"cross_out", "encoder_attn.out_proj.weight", 1, 'm'},
    {"cross_out_b", "encoder_attn.out_proj.bias", 1, 'v'},
    {"ffn_norm", "final_layer_norm.weight", 0, 'v'},
    {"ffn_norm_b", "final_layer_norm.bias", 0, 'v'},
    {"ffn_up", "fc1.weight", 0, 'u'},
    {"ffn_up_b", "fc1.bias", 0, 'f'},
    {"ffn_down", "fc2.weight", 0, 'w'},
    {"ffn_down_b", "fc2.bias", 0, 'v'},
};

/* The layers of one stack, after its top tensors. */
static gemini_result cv_whisper_layers(cv_plan *plan, cv_source *s, const cv_hparams *hp,
                                       const cv_options *opt, const char *prefix, int decoder)
{
    uint64_t n = decoder ? hp->layers : hp->wh.enc_layers;
    uint64_t ffn = decoder ? hp->inter : hp->wh.enc_ffn, layer;
    const char *stack = decoder ? "decoder" : "encoder";
    char hf[192], ours[64];
    size_t i;
    gemini_result r = GEMINI_OK;
    for (layer = 0; layer < n && r == GEMINI_OK; layer++) {
        const char *k_bias[2] = {"self_attn.k_proj.bias", "encoder_attn.k_proj.bias"};
        for (i = 0; i < 2; i++) {
            snprintf(hf, sizeof hf, "%s%s.layers.%llu.%s", prefix, stack,
                     (unsigned long long)layer, k_bias[i]);
            if (cv_source_find(s, hf))
                return gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: tensor %s exists, but Whisper's "
                                    "key projections have no bias (format.md §7 has none)",
                                    s->input, hf);
        }
        for (i = 0; i < sizeof cv_whisper_layer_tensors / sizeof cv_whisper_layer_tensors[0] &&
                    r == GEMINI_OK; i++) {
            const cv_whisper_tensor *e = &cv_whisper_layer_tensors[i];
            if (e->decoder_only && !decoder)
                continue;
            snprintf(hf, sizeof hf, "%s%s.layers.%llu.%s", prefix, stack,
                     (unsigned long long)layer, e->hf);
            snprintf(ours, sizeof ours, "%sblk.%llu.%s", decoder ? "" : "enc.",
                     (unsigned long long)layer, e->ours);
            r = cv_whisper_add(plan, s, hp, opt, ours, hf, e->shape, ffn);
        }
    }
    return r;
}

/* The whole plan of a Whisper file (format.md §7.2): encoder, then decoder. The head must be
   the token embedding (tied), as in every released Whisper. */
static gemini_result cv_whisper_plan(cv_plan *plan, cv_source *s, cv_hparams *hp,
                                     const cv_options *opt)
{
    static const struct {
        const char *ours, *hf;
        char shape;
        int decoder;
    } top[] = {
        {"enc.conv1", "encoder.conv1.weight", 'c', 0},
        {"enc.conv1_b", "encoder.conv1.bias", 'v', 0},
        {"enc.conv2", "encoder.conv2.weight", 'C', 0},
        {"enc.conv2_b", "encoder.conv2.bias", 'v', 0},
        {"enc.pos", "encoder.embed_positions.weight", 'a', 0},
        {"enc.output_norm", "encoder.layer_norm.weight", 'v', 0},
        {"enc.output_norm_b", "encoder.layer_norm.bias", 'v', 0},
        {"token_embd", "decoder.embed_tokens.weight", 'e', 1},
        {"pos_embd", "decoder.embed_positions.weight", 't', 1},
        {"output_norm", "decoder.layer_norm.weight", 'v', 1},
        {"output_norm_b", "decoder.layer_norm.bias", 'v', 1},
    };
    /* WhisperForConditionalGeneration names start with "model.", WhisperModel's do not. */
    const char *prefix = cv_source_find(s, "model.decoder.embed_tokens.weight") ? "model." : "";
    const cv_src_tensor *embd, *head;
    char hf[192];
    size_t i;
    int decoder, same = 1;
    gemini_result r = GEMINI_OK;

    for (decoder = 0; decoder < 2 && r == GEMINI_OK; decoder++) {
        /* Stem and positions, the layers, then the final norm. */
        for (i = 0; i < sizeof top / sizeof top[0] && r == GEMINI_OK; i++) {
            if (top[i].decoder != decoder || strstr(top[i].ours, "output_norm"))
                continue;
            snprintf(hf, sizeof hf, "%s%s", prefix, top[i].hf);
            r = cv_whisper_add(plan, s, hp, opt, top[i].ours, hf, top[i].shape, 0);
        }
        if (r == GEMINI_OK)
            r = cv_whisper_layers(plan, s, hp, opt, prefix, decoder);
        for (i = 0; i < sizeof top / sizeof top[0] && r == GEMINI_OK; i++) {
            if (top[i].decoder != decoder || !strstr(top[i].ours, "output_norm"))
                continue;
            snprintf(hf, sizeof hf, "%s%s", prefix, top[i].hf);
            r = cv_whisper_add(plan, s, hp, opt, top[i].ours, hf, top[i].shape, 0);
        }
    }
    if (r != GEMINI_OK)
        return r;

    snprintf(hf, sizeof hf, "%sdecoder.embed_tokens.weight", prefix);
    embd = cv_source_find(s, hf);
    head = cv_source_find(s, "proj_out.weight");
    if (head && embd)
        r = cv_same_bytes(s, embd, head, &same);
    if (r == GEMINI_OK && !same)
        r = gemini__fail(GEMINI_ERR_UNSUPPORTED, "%s: %s%s%s differs from the token embedding: "
                         "an untied Whisper head is not supported", s->input, head->name,
                         head->from ? ", from " : "", head->from ? head->from : "");
    return r;
}

/* ============================================================================================
   Writing the .gemini file (format.md §2)
   ============================================================================================ */

typedef struct cv_meta {
    cv_buf buf;
    uint64_t n_kv;
} cv_meta;

static void cv_meta_key(cv_meta *m, const char *key, uint32_t type)
{
    cv_buf_str(&m->buf, key, strlen(key));
    cv_buf_u32(&m->buf, type);
    m->n_kv++;
}

static void cv_meta_str(cv_meta *m, const char *key, const char *value)
{
    cv_meta_key(m, key, CV_GV_STRING);
    cv_buf_str(&m->buf, value, strlen(value));
}

static void cv_meta_u32(cv_meta *m, const char *key, uint64_t value)
{
    cv_meta_key(m, key, CV_GV_U32);
    cv_buf_u32(&m->buf, (uint32_t)value);
}

static void cv_meta_i32(cv_meta *m, const char *key, int64_t value)
{
    cv_meta_key(m, key, CV_GV_I32);
    cv_buf_u32(&m->buf, (uint32_t)(int32_t)value);
}

static void cv_meta_f32(cv_meta *m, const char *key, double value)
{
    cv_meta_key(m, key, CV_GV_F32);
    cv_buf_f32(&m->buf, (float)value);
}

static void cv_meta_bool(cv_meta *m, const char *key, int value)
{
    cv_meta_key(m, key, CV_GV_BOOL);
    cv_buf_u8(&m->buf, (uint8_t)(value != 0));
}

static void cv_meta_array(cv_meta *m, const char *key, uint32_t elem_type, uint64_t count)
{
    cv_meta_key(m, key, CV_GV_ARRAY);
    cv_buf_u32(&m->buf, elem_type);
    cv_buf_u64(&m->buf, count);
}

/* The vision.* keys of format.md §8.1. */
static void cv_write_vision_metadata(cv_meta *m, const cv_vision *v)
{
    int c;
    cv_meta_str(m, "vision.projector", "paligemma");
    cv_meta_u32(m, "vision.image_size", v->image_size);
    cv_meta_u32(m, "vision.patch_size", v->patch);
    cv_meta_u32(m, "vision.hidden_size", v->hidden);
    cv_meta_u32(m, "vision.intermediate_size", v->inter);
    cv_meta_u32(m, "vision.num_layers", v->layers);
    cv_meta_u32(m, "vision.num_heads", v->heads);
    cv_meta_f32(m, "vision.layer_norm_eps", v->eps);
    cv_meta_str(m, "vision.activation", "gelu_tanh");
    cv_meta_i32(m, "vision.image_token_id", (int64_t)v->image_token);
    cv_meta_array(m, "vision.image_mean", CV_GV_F32, 3);
    for (c = 0; c < 3; c++)
        cv_buf_f32(&m->buf, (float)v->mean[c]);
    cv_meta_array(m, "vision.image_std", CV_GV_F32, 3);
    for (c = 0; c < 3; c++)
        cv_buf_f32(&m->buf, (float)v->std[c]);
}

/* An i32 array key, when the list was found. */
static void cv_meta_i32_list(cv_meta *m, const char *key, const cv_i32_list *list)
{
    uint64_t i;
    if (!list->present)
        return;
    cv_meta_array(m, key, CV_GV_I32, list->n);
    for (i = 0; i < list->n; i++)
        cv_buf_u32(&m->buf, (uint32_t)list->v[i]);
}

/* The keys of format.md §7.1 (after the general ones). */
static void cv_write_whisper_metadata(cv_meta *m, const cv_hparams *hp, const cv_tokenizer *tok)
{
    const cv_whisper *w = &hp->wh;
    gemini_tok_bpe_desc desc;
    int64_t i;
    int k;
    cv_meta_u32(m, "model.vocab_size", hp->vocab);
    cv_meta_u32(m, "model.hidden_size", hp->hidden);
    cv_meta_u32(m, "model.intermediate_size", hp->inter);
    cv_meta_u32(m, "model.num_layers", hp->layers);
    cv_meta_u32(m, "model.num_heads", hp->heads);
    cv_meta_u32(m, "model.num_kv_heads", hp->kv_heads);
    cv_meta_u32(m, "model.head_dim", hp->head_dim);
    cv_meta_u32(m, "model.max_position", hp->max_pos);
    cv_meta_f32(m, "model.layer_norm_eps", hp->eps);
    cv_meta_str(m, "model.activation", "gelu");
    cv_meta_bool(m, "model.tied_embeddings", 1);
    cv_meta_u32(m, "whisper.n_mels", w->n_mels);
    cv_meta_u32(m, "whisper.audio_ctx", w->audio_ctx);
    cv_meta_u32(m, "whisper.encoder_layers", w->enc_layers);
    cv_meta_u32(m, "whisper.encoder_heads", w->enc_heads);
    cv_meta_u32(m, "whisper.encoder_ffn", w->enc_ffn);
    cv_meta_i32_list(m, "whisper.suppress_tokens", &w->suppress);
    cv_meta_i32_list(m, "whisper.begin_suppress_tokens", &w->begin_suppress);
    cv_meta_i32_list(m, "whisper.alignment_heads", &w->alignment_heads);
    cv_meta_i32_list(m, "whisper.lang_ids", &w->lang_ids);
    if (w->lang_ids.present && w->lang_codes) {
        cv_meta_array(m, "whisper.lang_codes", CV_GV_STRING, w->lang_ids.n);
        for (i = 0; i < (int64_t)w->lang_ids.n; i++)
            cv_buf_str(&m->buf, w->lang_codes[i], strlen(w->lang_codes[i]));
    }
    if (!tok->byte_bpe)
        return;

    for (k = 0; k < CV_WHISPER_N_IDS; k++)
        cv_meta_i32(m, cv_whisper_id_keys[k], w->ids[k]);
    gemini_tok_describe_bpe(tok->byte_bpe, &desc);
    cv_meta_str(m, "tokenizer.model", "byte-bpe");
    cv_meta_array(m, "tokenizer.pieces", CV_GV_STRING, (uint64_t)desc.n_pieces);
    for (i = 0; i < desc.n_pieces; i++)
        cv_buf_str(&m->buf, desc.pieces[i], desc.piece_lengths[i]);
    cv_meta_array(m, "tokenizer.types", CV_GV_U8, (uint64_t)desc.n_pieces);
    cv_buf_put(&m->buf, desc.types, (size_t)desc.n_pieces);
    cv_meta_array(m, "tokenizer.merges", CV_GV_I32, 2 * (uint64_t)desc.n_merges);
    for (i = 0; i < 2 * (int64_t)desc.n_merges; i++)
        cv_buf_u32(&m->buf, (uint32_t)desc.merges[i]);
    cv_meta_i32(m, "tokenizer.eos_id", tok->eos_id);
    cv_meta_i32(m, "tokenizer.bos_id", -1);
    cv_meta_i32(m, "tokenizer.pad_id", -1);
    cv_meta_i32(m, "tokenizer.unk_id", -1);
}

static void cv_write_metadata(cv_meta *m, const cv_hparams *hp, const cv_tokenizer *tok,
                              const char *source_kind)
{
    uint64_t i;
    cv_meta_str(m, "general.architecture", hp->arch);
    if (hp->name[0])
        cv_meta_str(m, "general.name", hp->name);
    cv_meta_str(m, "general.source", source_kind);
    cv_meta_str(m, "general.converter", CV_VERSION);
    if (hp->is_whisper) {
        cv_write_whisper_metadata(m, hp, tok);
        return;
    }

    cv_meta_u32(m, "model.vocab_size", hp->vocab);
    cv_meta_u32(m, "model.hidden_size", hp->hidden);
    cv_meta_u32(m, "model.intermediate_size", hp->inter);
    cv_meta_u32(m, "model.num_layers", hp->layers);
    cv_meta_u32(m, "model.num_heads", hp->heads);
    cv_meta_u32(m, "model.num_kv_heads", hp->kv_heads);
    cv_meta_u32(m, "model.head_dim", hp->head_dim);
    cv_meta_u32(m, "model.max_position", hp->max_pos > UINT32_MAX ? UINT32_MAX : hp->max_pos);
    cv_meta_f32(m, "model.rms_norm_eps", hp->eps);
    cv_meta_f32(m, "model.embed_scale", hp->embed_scale);
    cv_meta_f32(m, "model.query_scale", hp->query_scale);
    cv_meta_f32(m, "model.attn_softcap", hp->attn_softcap);
    cv_meta_f32(m, "model.final_softcap", hp->final_softcap);
    cv_meta_f32(m, "model.rope_theta", hp->rope_theta);
    cv_meta_f32(m, "model.rope_scale", hp->rope_scale);
    cv_meta_f32(m, "model.rope_theta_local", hp->rope_theta_local);
    cv_meta_u32(m, "model.sliding_window", hp->sliding_window);
    cv_meta_array(m, "model.layer_types", CV_GV_U8, hp->layers);
    cv_buf_put(&m->buf, hp->layer_types, (size_t)hp->layers);
    cv_meta_bool(m, "model.sandwich_norms", hp->sandwich);
    cv_meta_bool(m, "model.qk_norm", hp->qk_norm);
    cv_meta_str(m, "model.activation", "gelu_tanh");
    cv_meta_bool(m, "model.tied_embeddings", hp->tied);
    if (hp->vision.present)
        cv_write_vision_metadata(m, &hp->vision);

    if (!tok->model)
        return;
    cv_meta_str(m, "tokenizer.model", tok->model);
    cv_meta_array(m, "tokenizer.pieces", CV_GV_STRING, tok->n);
    for (i = 0; i < tok->n; i++)
        cv_buf_str(&m->buf, tok->pieces[i], tok->lens[i]);
    cv_meta_array(m, "tokenizer.scores", CV_GV_F32, tok->n);
    for (i = 0; i < tok->n; i++)
        cv_buf_f32(&m->buf, tok->scores[i]);
    cv_meta_array(m, "tokenizer.types", CV_GV_U8, tok->n);
    cv_buf_put(&m->buf, tok->types, (size_t)tok->n);
    cv_meta_i32(m, "tokenizer.unk_id", tok->unk_id);
    cv_meta_i32(m, "tokenizer.bos_id", tok->bos_id);
    cv_meta_i32(m, "tokenizer.eos_id", tok->eos_id);
    cv_meta_i32(m, "tokenizer.pad_id", tok->pad_id);
    cv_meta_i32(m, "tokenizer.eot_id", tok->eot_id);
    cv_meta_bool(m, "tokenizer.add_bos", tok->add_bos);
    cv_meta_bool(m, "tokenizer.add_dummy_prefix", tok->add_dummy_prefix);
    cv_meta_bool(m, "tokenizer.remove_extra_whitespaces", tok->remove_extra_ws);
    cv_meta_bool(m, "tokenizer.escape_whitespaces", tok->escape_ws);
    cv_meta_bool(m, "tokenizer.treat_whitespace_as_suffix", tok->ws_suffix);
    cv_meta_bool(m, "tokenizer.byte_fallback", tok->byte_fallback);
    if (tok->charsmap_len) {
        cv_meta_array(m, "tokenizer.charsmap", CV_GV_U8, tok->charsmap_len);
        cv_buf_put(&m->buf, tok->charsmap, (size_t)tok->charsmap_len);
    }
}

/* The tensor directory (format.md §2.3), with the CRCs known so far. */
static void cv_write_directory(cv_buf *b, const cv_plan *plan)
{
    size_t i;
    int d;
    for (i = 0; i < plan->n; i++) {
        const cv_out_tensor *o = &plan->tensors[i];
        cv_buf_str(b, o->name, strlen(o->name));
        cv_buf_u32(b, (uint32_t)o->type);
        cv_buf_u32(b, (uint32_t)o->n_dims);
        for (d = 0; d < o->n_dims; d++)
            cv_buf_u64(b, o->dims[d]);
        cv_buf_u64(b, o->offset);
        cv_buf_u64(b, o->size);
        cv_buf_u32(b, o->crc);
    }
}

static gemini_result cv_fwrite(FILE *fp, const void *data, size_t n, const char *path)
{
    if (n && fwrite(data, 1, n, fp) != n)
        return gemini__fail(GEMINI_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return GEMINI_OK;
}

static gemini_result cv_write_zeros(FILE *fp, uint64_t n, const char *path)
{
    static const unsigned char zeros[4096] = {0};
    gemini_result r = GEMINI_OK;
    while (n > 0 && r == GEMINI_OK) {
        size_t step = n < sizeof zeros ? (size_t)n : sizeof zeros;
        r = cv_fwrite(fp, zeros, step, path);
        n -= step;
    }
    return r;
}

static double cv_now_mb(uint64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

/* Streams one tensor: reads row blocks of the source, converts them through f32 (or copies
   them), writes them and accumulates the CRC. */
static gemini_result cv_write_tensor(FILE *fp, const char *out_path, cv_source *s,
                                     cv_out_tensor *o)
{
    const cv_src_tensor *t = o->src;
    const cv_srctype *st = cv_srctype_find(t->type);
    uint64_t cols = t->dims[t->n_dims - 1], rows = t->n_values / (cols ? cols : 1), row, chunk;
    uint64_t src_row = cols / (uint64_t)st->block * (uint64_t)st->block_bytes;
    uint64_t dst_row = (uint64_t)gemini_type_row_bytes(o->type, (int64_t)cols);
    unsigned char *in = NULL, *out = NULL;
    float *values = NULL;
    gemini_result r = GEMINI_OK;
    uint32_t crc = 0;

    if (cols == 0 || rows == 0) {
        o->crc = 0;
        return GEMINI_OK;
    }
    chunk = (uint64_t)CV_CHUNK_VALUES / cols;
    if (chunk == 0)
        chunk = 1;
    if (chunk > rows)
        chunk = rows;
    in = (unsigned char *)cv_alloc(chunk * src_row, o->name);
    if (!o->copy) {
        values = (float *)cv_alloc(chunk * cols * sizeof(float), o->name);
        out = (unsigned char *)cv_alloc(chunk * dst_row, o->name);
    }
    if (!in || (!o->copy && (!values || !out))) {
        r = GEMINI_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (row = 0; row < rows && r == GEMINI_OK; row += chunk) {
        uint64_t n_rows = rows - row < chunk ? rows - row : chunk, k;
        const unsigned char *result = in;
        r = cv_file_read(&s->files[t->file], t->offset + row * src_row, in, n_rows * src_row,
                         t->name);
        if (r != GEMINI_OK)
            break;
        if (!o->copy) {
            int64_t n = (int64_t)(n_rows * cols);
            r = cv_dequant(st, in, values, n);
            if (r == GEMINI_OK && o->add_one)
                for (k = 0; k < n_rows * cols; k++)
                    values[k] += 1.0f;
            if (r == GEMINI_OK)
                r = gemini_quantize_row(o->type, values, out, n);
            if (r != GEMINI_OK) {
                char reason[512];
                snprintf(reason, sizeof reason, "%s", gemini_last_error());
                r = gemini__fail(r, "%s: tensor %s, rows %llu..%llu: %s", s->input, t->name,
                                 (unsigned long long)row, (unsigned long long)(row + n_rows - 1),
                                 reason);
                break;
            }
            result = out;
        }
        crc = gemini_crc32(crc, result, (size_t)(n_rows * dst_row));
        r = cv_fwrite(fp, result, (size_t)(n_rows * dst_row), out_path);
    }
    o->crc = crc;
done:
    free(in);
    free(values);
    free(out);
    return r;
}

static gemini_result cv_write_file(const char *out_path, cv_source *s, cv_plan *plan,
                                   const cv_hparams *hp, const cv_tokenizer *tok)
{
    cv_meta meta;
    cv_buf dir;
    unsigned char header[64];
    uint64_t dir_size, data_offset, pos, i;
    uint32_t dir_crc;
    char *tmp_path;
    FILE *fp = NULL;
    gemini_result r = GEMINI_OK;
    int progress = !cv_quiet && cv_isatty(cv_fileno(stderr));

    memset(&meta, 0, sizeof meta);
    memset(&dir, 0, sizeof dir);
    tmp_path = (char *)cv_alloc(strlen(out_path) + 5, "path");
    if (!tmp_path)
        return GEMINI_ERR_OUT_OF_MEMORY;
    sprintf(tmp_path, "%s.tmp", out_path);

    /* Layout: sizes and offsets first (the directory size does not depend on the CRCs). */
    cv_write_metadata(&meta, hp, tok, s->is_gguf ? "gguf" : s->is_ct2 ? "ctranslate2"
                                                                      : "hf-safetensors");
    pos = 0;
    for (i = 0; i < plan->n; i++) {
        cv_out_tensor *o = &plan->tensors[i];
        uint64_t cols = o->dims[o->n_dims - 1], n_values = 1;
        int d;
        for (d = 0; d < o->n_dims; d++)
            n_values *= o->dims[d];
        o->offset = cv_align_up(pos, CV_ALIGNMENT);
        o->size = n_values / cols * (uint64_t)gemini_type_row_bytes(o->type, (int64_t)cols);
        pos = o->offset + o->size;
    }
    cv_write_directory(&dir, plan);
    if (meta.buf.failed || dir.failed) {
        r = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "out of memory building the directory");
        goto done;
    }
    dir_size = meta.buf.size + dir.size;
    data_offset = cv_align_up(64 + dir_size, CV_ALIGNMENT);

    fp = fopen(tmp_path, "wb");
    if (!fp) {
        r = gemini__fail(GEMINI_ERR_IO, "%s: cannot create: %s", tmp_path, strerror(errno));
        goto done;
    }

    /* Placeholder header, metadata, directory without CRCs, padding. */
    memset(header, 0, sizeof header);
    r = cv_fwrite(fp, header, 64, tmp_path);
    if (r == GEMINI_OK)
        r = cv_fwrite(fp, meta.buf.data, meta.buf.size, tmp_path);
    if (r == GEMINI_OK)
        r = cv_fwrite(fp, dir.data, dir.size, tmp_path);
    if (r == GEMINI_OK)
        r = cv_write_zeros(fp, data_offset - 64 - dir_size, tmp_path);

    /* Tensors, each at its aligned offset. */
    pos = 0;
    for (i = 0; i < plan->n && r == GEMINI_OK; i++) {
        cv_out_tensor *o = &plan->tensors[i];
        r = cv_write_zeros(fp, o->offset - pos, tmp_path);
        if (r == GEMINI_OK)
            r = cv_write_tensor(fp, tmp_path, s, o);
        pos = o->offset + o->size;
        /* A terminal gets one line redrawn per tensor; a log about ten lines in all. */
        if (progress)
            fprintf(stderr, "\rgemini-convert: tensor %lu/%lu  %-24s %9.1f MB written",
                    (unsigned long)(i + 1), (unsigned long)plan->n, o->name,
                    cv_now_mb(data_offset + pos));
        else if (!cv_quiet && (i + 1) * 10 / plan->n != i * 10 / plan->n)
            fprintf(stderr, "gemini-convert: tensor %lu/%lu, %.1f MB written\n",
                    (unsigned long)(i + 1), (unsigned long)plan->n, cv_now_mb(data_offset + pos));
    }
    if (progress)
        fputc('\n', stderr);
    if (r != GEMINI_OK)
        goto done;

    /* Now the CRCs are known: rewrite the directory and the header. */
    dir.size = 0;
    cv_write_directory(&dir, plan);
    dir_crc = gemini_crc32(0, meta.buf.data, meta.buf.size);
    dir_crc = gemini_crc32(dir_crc, dir.data, dir.size);
    memcpy(header, "GMNI", 4);
    {
        cv_buf hb;
        memset(&hb, 0, sizeof hb);
        cv_buf_u32(&hb, 1);
        cv_buf_u32(&hb, CV_ALIGNMENT);
        cv_buf_u32(&hb, 0);
        cv_buf_u64(&hb, meta.n_kv);
        cv_buf_u64(&hb, plan->n);
        cv_buf_u64(&hb, dir_size);
        cv_buf_u64(&hb, data_offset);
        cv_buf_u64(&hb, pos);
        cv_buf_u32(&hb, dir_crc);
        cv_buf_u32(&hb, 0);
        if (hb.failed || hb.size != 60) {
            free(hb.data);
            r = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        memcpy(header + 4, hb.data, 60);
        free(hb.data);
    }
    if (cv_seek(fp, 0) != 0) {
        r = gemini__fail(GEMINI_ERR_IO, "%s: seek failed", tmp_path);
        goto done;
    }
    r = cv_fwrite(fp, header, 64, tmp_path);
    if (r == GEMINI_OK && cv_seek(fp, 64 + meta.buf.size) != 0)
        r = gemini__fail(GEMINI_ERR_IO, "%s: seek failed", tmp_path);
    if (r == GEMINI_OK)
        r = cv_fwrite(fp, dir.data, dir.size, tmp_path);
    if (r != GEMINI_OK)
        goto done;
    if (fclose(fp) != 0) {
        fp = NULL;
        r = gemini__fail(GEMINI_ERR_IO, "%s: write failed: %s", tmp_path, strerror(errno));
        goto done;
    }
    fp = NULL;
#ifdef _WIN32
    remove(out_path);   /* rename does not replace an existing file there */
#endif
    if (rename(tmp_path, out_path) != 0)
        r = gemini__fail(GEMINI_ERR_IO, "cannot rename %s to %s: %s", tmp_path, out_path,
                         strerror(errno));
    if (r == GEMINI_OK && !cv_quiet)
        fprintf(stderr, "gemini-convert: wrote %s: %lu tensors, %llu metadata keys, %.1f MB\n",
                out_path, (unsigned long)plan->n, (unsigned long long)meta.n_kv,
                cv_now_mb(data_offset + pos));

done:
    if (fp)
        fclose(fp);
    if (r != GEMINI_OK)
        remove(tmp_path);
    free(tmp_path);
    free(meta.buf.data);
    free(dir.data);
    return r;
}

/* ============================================================================================
   Reading .gemini files back: --info and --verify, through gemini.h's reader

   gemini_model_load parses and validates the header and directory (format.md §2: bounds,
   alignment, directory CRC, value encodings, tensor sizes, duplicates, overlaps) as well as
   the keys and tensors a model needs; the commands below only display what it accepted.
   ============================================================================================ */

static void cv_print_string(const char *s, uint64_t n, uint64_t max)
{
    uint64_t i;
    putchar('"');
    for (i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02X", c);
        else
            putchar(c);
    }
    printf(n > max ? "\"..." : "\"");
}

/* Prints one encoded array element of `type` (strings: u32 length, then bytes) from the n bytes
   at p. Returns the bytes it took; 0 if it does not fit (gemini_model_load has ruled that out,
   but nothing here reads past the record). */
static uint64_t cv_print_element(const unsigned char *p, uint64_t n, uint32_t type)
{
    uint64_t size = cv_gv_size(type);
    if (type == CV_GV_STRING) {
        uint32_t len;
        if (n < 4 || (len = cv_rd32(p)) > n - 4)
            return 0;
        cv_print_string((const char *)p + 4, len, 200);
        return 4 + (uint64_t)len;
    }
    if (size == 0 || size > n)
        return 0;
    switch (type) {
    case CV_GV_U8: printf("%u", p[0]); break;
    case CV_GV_I8: printf("%d", (int8_t)p[0]); break;
    case CV_GV_U16: printf("%u", cv_rd16(p)); break;
    case CV_GV_I16: printf("%d", (int16_t)cv_rd16(p)); break;
    case CV_GV_U32: printf("%lu", (unsigned long)cv_rd32(p)); break;
    case CV_GV_I32: printf("%ld", (long)(int32_t)cv_rd32(p)); break;
    case CV_GV_F32: printf("%.9g", cv_f32_from_bits(cv_rd32(p))); break;
    case CV_GV_BOOL: printf(p[0] ? "true" : "false"); break;
    case CV_GV_U64: printf("%llu", (unsigned long long)cv_rd64(p)); break;
    case CV_GV_I64: printf("%lld", (long long)cv_rd64(p)); break;
    case CV_GV_F64: {
        uint64_t bits = cv_rd64(p);
        double d;
        memcpy(&d, &bits, 8);
        printf("%.17g", d);
        break;
    }
    default: return 0;
    }
    return size;
}

/* One metadata line: key, type, value (arrays: element type, count, the first 8 elements or,
   with --full, all of them). */
static void cv_print_meta(const gemini_meta_info *m)
{
    const unsigned char *p = (const unsigned char *)m->value;
    uint64_t left = m->value_bytes, k;
    printf("  %-40.*s %-6s ", (int)m->key_length, m->key,
           (uint32_t)m->type < CV_GV_COUNT ? cv_gv_names[m->type] : "?");
    if (m->type == GEMINI_META_STRING) {
        cv_print_string((const char *)p, m->value_bytes, 200);
    } else if (m->type == GEMINI_META_ARRAY) {
        printf("%s[%llu] =", (uint32_t)m->elem_type < CV_GV_COUNT ? cv_gv_names[m->elem_type]
                                                                  : "?",
               (unsigned long long)m->count);
        for (k = 0; k < m->count && (k < 8 || cv_info_full); k++) {
            uint64_t took;
            putchar(' ');
            took = cv_print_element(p, left, (uint32_t)m->elem_type);
            if (took == 0) {
                putchar('?');
                break;
            }
            p += took;
            left -= took;
        }
        if (k < m->count)
            printf(" ...");
    } else if (cv_print_element(p, left, (uint32_t)m->type) == 0) {
        putchar('?');
    }
    putchar('\n');
}

/* The header fields gemini.h does not expose (format.md §2.1), read back for display only:
   gemini_model_load has already checked them. */
static gemini_result cv_print_header(const char *path)
{
    unsigned char h[64];
    cv_file f;
    gemini_result r = cv_file_open(&f, path);
    if (r == GEMINI_OK)
        r = cv_file_read(&f, 0, h, 64, "header");
    if (r == GEMINI_OK) {
        printf("file        %s (%llu bytes)\n", path, (unsigned long long)f.size);
        printf("version     %lu, alignment %lu, flags %lu\n", (unsigned long)cv_rd32(h + 4),
               (unsigned long)cv_rd32(h + 8), (unsigned long)cv_rd32(h + 12));
        printf("directory   %llu bytes at 64, CRC-32 %08lX (ok)\n",
               (unsigned long long)cv_rd64(h + 32), (unsigned long)cv_rd32(h + 56));
        printf("data        %llu bytes at %llu\n", (unsigned long long)cv_rd64(h + 48),
               (unsigned long long)cv_rd64(h + 40));
    }
    cv_file_close(&f);
    return r;
}

static gemini_result cv_print_info(const char *path, const gemini_model *model)
{
    int64_t n_kv = gemini_model_meta_count(model), n_tensors = gemini_model_tensor_count(model);
    int64_t i;
    gemini_result r = cv_print_header(path);
    if (r != GEMINI_OK)
        return r;
    printf("model       %s, %ld embedding rows (gemini_model_load ok)\n",
           gemini_model_architecture(model), (long)gemini_model_vocab_size(model));
    printf("\nmetadata (%lld keys)\n", (long long)n_kv);
    for (i = 0; i < n_kv; i++) {
        gemini_meta_info m;
        if ((r = gemini_model_meta_at(model, i, &m)) != GEMINI_OK)
            return r;
        cv_print_meta(&m);
    }
    printf("\ntensors (%lld)\n", (long long)n_tensors);
    printf("  %-28s %-5s %-20s %12s %12s %8s\n", "name", "type", "shape", "offset", "size",
           "crc32");
    for (i = 0; i < n_tensors; i++) {
        gemini_tensor_info t;
        char shape[96], type_name[16];
        size_t used = 0;
        uint32_t d;
        if ((r = gemini_model_tensor_at(model, i, &t)) != GEMINI_OK)
            return r;
        used += (size_t)snprintf(shape, sizeof shape, "[");
        for (d = 0; d < t.n_dims && d < 4 && used < sizeof shape; d++)
            used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%lld", d ? ", " : "",
                                     (long long)t.dims[d]);
        if (used < sizeof shape)
            snprintf(shape + used, sizeof shape - used, "]");
        if (t.type < GEMINI_TYPE_COUNT)
            snprintf(type_name, sizeof type_name, "%s", gemini_type_name((gemini_type)t.type));
        else
            snprintf(type_name, sizeof type_name, "?%lu", (unsigned long)t.type);
        printf("  %-28.*s %-5s %-20s %12llu %12llu %08lX\n", (int)t.name_length, t.name,
               type_name, shape, (unsigned long long)t.offset, (unsigned long long)t.size,
               (unsigned long)t.crc32);
    }
    return GEMINI_OK;
}

/* --info and/or --verify of one file: one gemini_model_load, which must accept the file. */
static int cv_cmd_read(const char *path, int info, int verify)
{
    gemini_model *model = NULL;
    int name_path = 0;      /* gemini_model_verify's message does not name the file */
    gemini_result r = gemini_model_load(path, &model);
    if (r == GEMINI_OK && info)
        r = cv_print_info(path, model);
    if (r == GEMINI_OK && verify) {
        printf("%s: gemini_model_load ok (%s, %ld embedding rows; structure and directory CRC "
               "checked)\n", path, gemini_model_architecture(model),
               (long)gemini_model_vocab_size(model));
    }
    if (r == GEMINI_OK && verify) {
        r = gemini_model_verify(model);
        name_path = 1;
        if (r == GEMINI_OK)
            printf("%s: %lld tensor CRCs ok\n", path,
                   (long long)gemini_model_tensor_count(model));
    }
    if (r != GEMINI_OK)
        fprintf(stderr, "gemini-convert: error: %s%s%s\n", name_path ? path : "",
                name_path ? ": " : "", gemini_last_error());
    gemini_model_free(model);
    return r == GEMINI_OK ? 0 : 1;
}

/* ============================================================================================
   Inputs: a Hugging Face directory or a GGUF file
   ============================================================================================ */

/* Shard names from an index must be plain file names inside the directory. */
static int cv_plain_file_name(const char *s)
{
    return s[0] && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\');
}

static gemini_result cv_hf_open(cv_source *s, const char *dir)
{
    char *index_path = cv_path_join(dir, "model.safetensors.index.json");
    char *single_path = cv_path_join(dir, "model.safetensors");
    gemini_result r = GEMINI_OK;
    if (!index_path || !single_path) {
        r = GEMINI_ERR_OUT_OF_MEMORY;
    } else if (cv_file_exists(index_path)) {
        char *text;
        size_t size;
        cv_json j;
        cv_jnode *map, *e, *prev;
        r = cv_read_whole(index_path, CV_MAX_JSON_BYTES, &text, &size);
        if (r == GEMINI_OK) {
            r = cv_json_parse(&j, index_path, text, size);
            free(text);
            if (r == GEMINI_OK) {
                map = cv_jget(&j, cv_jroot(&j), "weight_map");
                if (!map || map->type != CV_JOBJ || map->count == 0)
                    r = gemini__fail(GEMINI_ERR_FORMAT, "%s: \"weight_map\" is missing or empty",
                                     index_path);
                /* Open each shard once, in order of first mention. */
                for (e = map ? cv_jchild(&j, map) : NULL; e && r == GEMINI_OK;
                     e = cv_jnext(&j, e)) {
                    int seen = 0;
                    if (e->type != CV_JSTR || !cv_plain_file_name(cv_jstr(&j, e))) {
                        r = gemini__fail(GEMINI_ERR_FORMAT, "%s: weight_map[\"%.100s\"] is not a "
                                         "file name in the directory", index_path,
                                         cv_jkey(&j, e));
                        break;
                    }
                    for (prev = cv_jchild(&j, map); prev != e && !seen; prev = cv_jnext(&j, prev))
                        seen = strcmp(cv_jstr(&j, prev), cv_jstr(&j, e)) == 0;
                    if (!seen) {
                        char *shard = cv_path_join(dir, cv_jstr(&j, e));
                        r = shard ? cv_safetensors_open(s, shard) : GEMINI_ERR_OUT_OF_MEMORY;
                        free(shard);
                    }
                }
                cv_json_free(&j);
            }
        }
    } else if (cv_file_exists(single_path)) {
        r = cv_safetensors_open(s, single_path);
    } else {
        r = gemini__fail(GEMINI_ERR_IO, "%s: neither model.safetensors nor "
                         "model.safetensors.index.json exists", dir);
    }
    free(index_path);
    free(single_path);
    return r;
}

static gemini_result cv_hf_tokenizer(cv_tokenizer *tok, const char *dir)
{
    char *spm = cv_path_join(dir, "tokenizer.model");
    char *hf = cv_path_join(dir, "tokenizer.json");
    char *cfg = cv_path_join(dir, "tokenizer_config.json");
    gemini_result r = GEMINI_OK;
    if (!spm || !hf || !cfg) {
        r = GEMINI_ERR_OUT_OF_MEMORY;
    } else if (cv_file_exists(spm)) {
        r = cv_spm_load(tok, spm);
        /* add_bos is not in the proto; tokenizer_config.json says it (Gemma: true). */
        if (r == GEMINI_OK && cv_file_exists(cfg)) {
            char *text;
            size_t size;
            cv_json j;
            if (cv_read_whole(cfg, CV_MAX_JSON_BYTES, &text, &size) == GEMINI_OK) {
                if (cv_json_parse(&j, cfg, text, size) == GEMINI_OK) {
                    cv_jnode *add = cv_jget(&j, cv_jroot(&j), "add_bos_token");
                    if (add && add->type == CV_JBOOL)
                        tok->add_bos = add->boolean;
                    cv_json_free(&j);
                }
                free(text);
            }
        }
    } else if (cv_file_exists(hf)) {
        r = cv_hf_tokenizer_json(tok, hf, cfg);
    } else {
        cv_warn("%s: no tokenizer.model or tokenizer.json: the file will hold no tokenizer "
                "(token ids only)", dir);
    }
    if (r == GEMINI_OK && tok->model)
        r = cv_tokenizer_finish(tok);
    free(spm);
    free(hf);
    free(cfg);
    return r;
}

/* Name for general.name: the directory's or file's last path component. */
static void cv_base_name(const char *path, char *out, size_t size)
{
    size_t n = strlen(path);
    const char *start;
    while (n > 1 && path[n - 1] == '/')
        n--;
    start = path + n;
    while (start > path && start[-1] != '/')
        start--;
    snprintf(out, size, "%.*s", (int)(n - (size_t)(start - path)), start);
}

static gemini_result cv_convert(const char *input, const cv_options *opt)
{
    cv_source src;
    cv_hparams *hp;
    cv_tokenizer tok;
    cv_plan plan;
    char *out_path = NULL, *ct2_bin;
    gemini_result r;

    memset(&src, 0, sizeof src);
    memset(&tok, 0, sizeof tok);
    memset(&plan, 0, sizeof plan);
    src.input = input;
    hp = (cv_hparams *)cv_calloc(1, sizeof *hp, "hyperparameters");
    if (!hp)
        return GEMINI_ERR_OUT_OF_MEMORY;

    ct2_bin = cv_is_directory(input) ? cv_path_join(input, "model.bin") : NULL;
    if (ct2_bin && cv_file_exists(ct2_bin)) {
        /* CTranslate2 (faster-whisper): model.bin; config.json holds generation settings. */
        cv_base_name(input, hp->name, sizeof hp->name);
        r = cv_ct2_open(&src, ct2_bin);
        if (r == GEMINI_OK)
            r = cv_ct2_whisper_hparams(hp, &src);
        if (r == GEMINI_OK)
            r = cv_whisper_settings(hp, input, 1);
        if (r == GEMINI_OK)
            r = cv_whisper_tokenizer(&tok, hp, input);
    } else if (cv_is_directory(input)) {
        char *config_path = cv_path_join(input, "config.json"), *text = NULL;
        size_t size;
        cv_json j;
        r = config_path ? cv_read_whole(config_path, CV_MAX_JSON_BYTES, &text, &size)
                        : GEMINI_ERR_OUT_OF_MEMORY;
        if (r == GEMINI_OK) {
            r = cv_json_parse(&j, config_path, text, size);
            if (r == GEMINI_OK) {
                cv_jnode *name = cv_jget(&j, cv_jroot(&j), "_name_or_path");
                cv_jnode *type = cv_jget(&j, cv_jroot(&j), "model_type");
                if (type && type->type == CV_JSTR && strcmp(cv_jstr(&j, type), "whisper") == 0)
                    r = cv_hf_whisper_hparams(hp, &j);
                else
                    r = cv_hf_hparams(hp, &j);
                if (name && name->type == CV_JSTR && name->str_len > 0)
                    snprintf(hp->name, sizeof hp->name, "%s", cv_jstr(&j, name));
                else
                    cv_base_name(input, hp->name, sizeof hp->name);
                cv_json_free(&j);
            }
        }
        free(text);
        free(config_path);
        if (r == GEMINI_OK)
            r = cv_hf_open(&src, input);
        if (r == GEMINI_OK && hp->is_whisper) {
            r = cv_whisper_settings(hp, input, 0);
            if (r == GEMINI_OK)
                r = cv_whisper_tokenizer(&tok, hp, input);
        } else if (r == GEMINI_OK) {
            r = cv_hf_tokenizer(&tok, input);
        }
        if (r == GEMINI_OK && hp->vision.present)
            r = cv_paligemma_preprocessor(&hp->vision, input);
    } else {
        r = cv_gguf_open(&src, input);
        if (r == GEMINI_OK)
            r = cv_gguf_hparams(hp, &src);
        if (r == GEMINI_OK)
            r = cv_gguf_tokenizer(&tok, &src, hp->arch);
        if (r == GEMINI_OK && tok.model)
            r = cv_tokenizer_finish(&tok);
    }
    if (r == GEMINI_OK)
        r = hp->is_whisper ? cv_whisper_plan(&plan, &src, hp, opt)
                           : cv_make_plan(&plan, &src, hp, opt);
    if (r == GEMINI_OK && tok.model && tok.n > hp->vocab)
        r = gemini__fail(GEMINI_ERR_FORMAT, "%s: the tokenizer has %llu pieces but the embedding "
                         "only %llu rows", input, (unsigned long long)tok.n,
                         (unsigned long long)hp->vocab);

    /* Output path: -o, else the input with .gguf (or a trailing slash) replaced by .gemini. */
    if (r == GEMINI_OK) {
        if (opt->output) {
            out_path = cv_strdup(opt->output);
        } else {
            size_t n = strlen(input);
            while (n > 1 && input[n - 1] == '/')
                n--;
            if (n > 5 && strcmp(input + n - 5, ".gguf") == 0)
                n -= 5;
            out_path = (char *)cv_alloc(n + 8, "path");
            if (out_path)
                sprintf(out_path, "%.*s.gemini", (int)n, input);
        }
        if (!out_path)
            r = GEMINI_ERR_OUT_OF_MEMORY;
    }
    if (r == GEMINI_OK && !cv_quiet && hp->is_whisper)
        fprintf(stderr, "gemini-convert: %s: whisper (%s), %llu + %llu layers, d=%llu, %llu mel "
                "bins, vocab %llu, %s\n", input, src.is_ct2 ? "CTranslate2" : "Hugging Face",
                (unsigned long long)hp->wh.enc_layers, (unsigned long long)hp->layers,
                (unsigned long long)hp->hidden, (unsigned long long)hp->wh.n_mels,
                (unsigned long long)hp->vocab, tok.model ? tok.model : "no tokenizer");
    else if (r == GEMINI_OK && !cv_quiet)
        fprintf(stderr, "gemini-convert: %s: %s, %llu layers, d=%llu, vocab %llu, %s, %s\n",
                input, hp->arch, (unsigned long long)hp->layers, (unsigned long long)hp->hidden,
                (unsigned long long)hp->vocab, hp->tied ? "tied head" : "separate head",
                tok.model ? tok.model : "no tokenizer");
    if (r == GEMINI_OK)
        r = cv_write_file(out_path, &src, &plan, hp, &tok);

    free(ct2_bin);
    free(out_path);
    free(plan.tensors);
    cv_tokenizer_free(&tok);
    cv_source_free(&src);
    cv_whisper_free(&hp->wh);
    free(hp);
    return r;
}

/* ============================================================================================
   Command line
   ============================================================================================ */

static void cv_usage(FILE *fp)
{
    fputs(
        "usage: gemini-convert [--type TYPE] [-o OUT.gemini] [-q] INPUT\n"
        "       gemini-convert --info [--full] FILE.gemini\n"
        "       gemini-convert --verify FILE.gemini\n"
        "\n"
        "Converts a Gemma 1/2/3, PaliGemma 1/2 or Whisper checkpoint to the .gemini format\n"
        "(format.md).\n"
        "INPUT is a Hugging Face directory (config.json; model.safetensors or\n"
        "model.safetensors.index.json with its shards; tokenizer.model and/or tokenizer.json;\n"
        "Whisper: generation_config.json), a GGUF v2/v3 file (tensor types F32 F16 BF16 Q8_0\n"
        "Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K), or a CTranslate2 (faster-whisper) Whisper\n"
        "directory (model.bin of float32/float16/bfloat16 variables; config.json and\n"
        "tokenizer.json when present).\n"
        "\n"
        "  -t, --type TYPE   type of the weight matrices: f32, f16, bf16, q8_0 or q4_0.\n"
        "                    Default: f16 for Hugging Face and CTranslate2 input; for GGUF\n"
        "                    input each matrix keeps its type if the format has it\n"
        "                    (F32/F16/BF16/Q8_0/Q4_0), others become q8_0. Norms and other\n"
        "                    vectors are always f32 (HF norm weights w are written as\n"
        "                    1 + w). A tensor whose type does not change (e.g. GGUF Q8_0 ->\n"
        "                    q8_0) is copied byte for byte; others are converted through\n"
        "                    f32. Rows that are not a multiple of 32 values fall back to\n"
        "                    f16 for q8_0/q4_0.\n"
        "                    Whisper: biases, LayerNorm vectors and position tables are\n"
        "                    f32; the conv stems are f16 for q8_0/q4_0.\n"
        "  -o, --output OUT  output path. Default: INPUT with .gguf replaced by .gemini, or\n"
        "                    the directory's path plus .gemini. Written to OUT.tmp, then\n"
        "                    renamed.\n"
        "  -q, --quiet       no progress or summary on stderr (warnings and errors remain).\n"
        "  --info FILE       load FILE with gemini_model_load and print its header, every\n"
        "                    metadata key with type and value (arrays: the first 8 elements;\n"
        "                    with --full, all of them) and the tensor table (name, type, shape,\n"
        "                    offset from the data section, size, CRC-32 as stored; --verify\n"
        "                    checks them). A file gemini_model_load refuses (bad structure,\n"
        "                    directory CRC, a missing key or tensor, an unsupported architecture)\n"
        "                    is not shown: the error is printed and the exit status is 1.\n"
        "                    Exception: a Whisper file, while this build of gemini.h does not\n"
        "                    load Whisper, is shown (and verified) from its structure alone,\n"
        "                    with a warning.\n"
        "  --verify FILE     load FILE with gemini_model_load, as --info does, then check\n"
        "                    every tensor's CRC with gemini_model_verify, which names the\n"
        "                    first tensor that differs; exit status 1 on any failure.\n"
        "  -h, --help        this text.  --version  the converter's version.\n"
        "\n"
        "Exit status: 0 on success, 1 on any error (with a message on stderr), 2 on bad usage.\n",
        fp);
}

int main(int argc, char **argv)
{
    cv_options opt;
    const char *input = NULL;
    int i, info = 0, verify = 0;
    gemini_result r;

    memset(&opt, 0, sizeof opt);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cv_usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("%s (gemini.h %d.%d.%d)\n", CV_VERSION, GEMINI_VERSION_MAJOR,
                   GEMINI_VERSION_MINOR, GEMINI_VERSION_PATCH);
            return 0;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            cv_quiet = 1;
        } else if (strcmp(a, "--full") == 0) {
            cv_info_full = 1;
        } else if (strcmp(a, "--info") == 0) {
            info = 1;
        } else if (strcmp(a, "--verify") == 0) {
            verify = 1;
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--type") == 0 || strcmp(a, "-o") == 0 ||
                   strcmp(a, "--output") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "gemini-convert: %s needs a value (see --help)\n", a);
                return 2;
            }
            if (a[1] == 't' || strcmp(a, "--type") == 0) {
                if (!gemini_type_from_name(argv[i + 1], &opt.type)) {
                    fprintf(stderr, "gemini-convert: unknown --type \"%s\" (f32, f16, bf16, "
                            "q8_0, q4_0)\n", argv[i + 1]);
                    return 2;
                }
                opt.has_type = 1;
            } else {
                opt.output = argv[i + 1];
            }
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "gemini-convert: unknown option %s (see --help)\n", a);
            return 2;
        } else if (input) {
            fprintf(stderr, "gemini-convert: more than one input (%s, %s)\n", input, a);
            return 2;
        } else {
            input = a;
        }
    }
    if ((info || verify) && input)
        return cv_cmd_read(input, info, verify);
    if (!input) {
        cv_usage(stderr);
        return 2;
    }
    r = cv_convert(input, &opt);
    if (r != GEMINI_OK) {
        fprintf(stderr, "gemini-convert: error: %s\n", gemini_last_error());
        return 1;
    }
    return 0;
}
