/* gemini.h - run Gemma 1/2/3 text models on a CPU; a dependency-free, single-file C99 library.

   Version 0.1.0 (GEMINI_VERSION_MAJOR/MINOR/PATCH below).

   Quick start: do this in exactly one C or C++ file,

       #define GEMINI_IMPLEMENTATION
       #include "gemini.h"

   and include "gemini.h" without the macro everywhere else (gemini_tokenizer.h must sit beside
   it). Link with -lm and, on POSIX, -lpthread. Then:

       gemini_model *model;  gemini_context *ctx;  gemini_sampler *sampler;
       if (gemini_model_load("gemma-3-270m-q8_0.gemini", &model) != GEMINI_OK)
           fprintf(stderr, "%s\n", gemini_last_error());
       gemini_context_create(model, NULL, &ctx);              NULL: default parameters
       gemini_sampler_create(NULL, gemini_model_vocab_size(model), &sampler);
       gemini_decode(ctx, prompt_ids, n_prompt, logits, 0);   logits: vocab_size floats
       for (;;) {
           gemini_sample(sampler, logits, &next);
           ... print, stop on EOS ...
           if (gemini_decode(ctx, &next, 1, logits, 0) != GEMINI_OK) break;
       }
       gemini_sampler_free(sampler);  gemini_context_free(ctx);  gemini_model_free(model);

   Build macros
       GEMINI_IMPLEMENTATION    emit the implementation (also emits gemini_tokenizer.h's)
       GEMINI_STATIC            make every function static (private to one file)
       GEMINI_NO_AVX2           leave out the AVX2 (+FMA, F16C) and AVX-512 kernels; scalar only
       GEMINI_NO_AVX512         leave out the AVX-512 kernels (AVX2 and scalar remain)
       GEMINI_NO_AMX            leave out the AMX kernels (x86-64 Linux, GCC 11+ / clang 12+;
                                GCC's need binutils 2.36+: define this where the assembler
                                rejects tileloadd)
       GEMINI_NO_NEON           leave out the AArch64 NEON kernels (and NEON dotprod); scalar only
       GEMINI_NO_NEON_DOTPROD   leave out the NEON kernels that use SDOT (NEON and scalar remain)
       GEMINI_NO_THREADS        no thread pool; every context runs on the calling thread
       GEMINI_USE_BLAS          f32 weight products of 16 or more tokens (prefill, the Whisper
                                encoder, the vision tower, encoders' attention) by the system's
                                cblas_sgemm, and f16/bf16 ones of 128 or more converted to f32
                                256 rows at a time; needs <cblas.h> and a BLAS to link (-lopenblas,
                                tested with Debian's OpenBLAS, which runs its own threads:
                                OPENBLAS_NUM_THREADS). A batch then equals single tokens to
                                rounding, not bit for bit. Off by default; q8_0/q4_0 unchanged.
       GEMINI_MALLOC/REALLOC/FREE   override the allocator (all three or none)

   Supported models: Gemma 1 (gemma), Gemma 2 (gemma2) and Gemma 3 text decoders (gemma3),
   PaliGemma 1 and 2 (a SigLIP image encoder before a gemma / gemma2 decoder) and the Gemma 3
   vision-language models (4B and up: SigLIP, pooled to 256 soft tokens per image, before a
   gemma3 decoder; several images per prompt), both through gemini_encode_image and
   gemini_decode_prefix, and Whisper, stored in the `.gemini` format (format.md). Weights may
   be f32, f16, bf16, q8_0 or q4_0, mixed freely per tensor.

   Numerics: activations, norms, softmax and (by default) the KV cache are f32, with the maths of
   transformers' eager implementation (f32 weights match its logits to about 1e-6 of the
   largest logit). Dot products with f32, f16 and bf16 weights use f32 activations; with q8_0 and
   q4_0 weights the activation row is first quantised to q8_0 blocks (as ggml does), which
   trades a little accuracy for integer dot products. Results do not depend on the thread count
   or on whether tokens arrive in one batch or one by one (the same kernel computes each
   output); the SIMD and scalar kernels agree to rounding (q8_0/q4_0 integer sums exactly).
   gemini_context_params.kv_type = GEMINI_TYPE_F16 or GEMINI_TYPE_BF16 keeps the KV cache (and
   Whisper's cross-attention keys and values) in 16 bits: each key and value is rounded once as
   it is stored, attention reads them with the f16/bf16 weight kernels, and the guarantees
   above hold for each type.

   SIMD: on x86-64 with GCC or clang the best of AVX-512 (F, BW, VL; with AVX512_VNNI for the
   q8_0/q4_0 dot products where present), AVX2 (+FMA, F16C) and scalar kernels is chosen at
   run time (cpuid, and xgetbv for the OS saving YMM/ZMM state); the file needs no -m flags.
   On AArch64 the NEON kernels (baseline ARMv8.0) are always used, and for q8_0/q4_0 the SDOT
   ones (dotprod, ARMv8.2+) where the CPU has it: chosen at run time on Linux with GCC
   (getauxval's HWCAP_ASIMDDP), elsewhere only when the compiler targets dotprod already (say
   -march=armv8.2-a+dotprod). Both give the same bits. gemini_cpu_features() names the
   choice.

   Memory: the weights stay in the mapped file. A context holds the KV cache (per layer
   2 * Hkv * D values of kv_type per slot, 4 or 2 bytes each; n_ctx slots on global layers,
   min(n_ctx, W + n_batch - 1) on sliding-window layers, used as a ring) and activations for
   n_batch tokens; gemini_context_memory_size() tells the total before creating one.

   Offload: gemini_context_params.backend registers an accelerator backend, a struct of
   callbacks that takes weight matrices at context creation and computes their products (and,
   optionally, attention), declining any op it likes back to the CPU. gemini.h includes no
   vendor header; backends are separate files (backends/gemini_cuda.cu). The contract (layouts,
   quantised blocks, lifetime, threads) is in the "Accelerator offload hook" section below.

   Limitations
       - Images: PaliGemma (one image per prompt, its rows first) and Gemma 3 (images anywhere
         in the prompt, up to n_images per call), at the model's fixed input size; no pan and
         scan crops. No speculative decoding, one sequence per context (gemini_decode_each
         steps several contexts at once: beams, parallel samples).
       - The vision tower runs on the CPU; its matrices are not offered to a backend.
       - The KV cache is f32, f16 or bf16 and sized to n_ctx (at most 32768 positions).
       - SIMD kernels are x86-64 (AVX2, AVX-512) and AArch64 (NEON, dotprod); other CPUs use
         the scalar kernels. The NEON ones are tested under qemu only, not timed on real ARM.
         With AVX512_VNNI, q8_0/q4_0 products run in 4 x 4 register tiles (f16/bf16 in 2 x 2
         kernels, a row pair meeting every token in turn); other types and levels use 2 x 2
         kernels. With AMX-INT8 (Linux), q8_0/q4_0 prefill runs in AMX tiles
         (16 rows at a time packed into per-thread scratch) and decode in 16-row VNNI
         kernels; both sum each block exactly, so this level's bits differ from the VNNI
         level's (within rounding) but batches still equal single tokens. Otherwise weights
         are read in place (no repacking).
       - A context's worker threads spin for ~100 us after each task before they sleep, so a
         context that decodes keeps its cores busy between the steps of one call. It starts
         at most one thread a CPU the process may run on (Linux: its affinity mask), and by
         default one a physical core; a CPU quota (cgroups) is not seen.
       - The Windows paths (file mapping, threads; Vista or later) are written but untested.
       - Little-endian hosts only (tensors are used in place); a big-endian host is refused.

   Thread safety: a loaded gemini_model is immutable and may be shared by any number of contexts
   on any number of threads. A gemini_context (and a gemini_sampler) must be used by one thread
   at a time; gemini_decode_each uses all the contexts it is given, and a context that shares
   another's audio (gemini_context_share_audio) reads that one's buffers, which must not be
   re-encoded meanwhile. gemini_set_default_log() is not synchronised: call it before
   starting threads.
   gemini_last_error() is per thread.

   Security: gemini_model_load treats its file as untrusted. Every offset, size and count is
   checked against the bytes present before it is used, strings are capped, and the directory's
   CRC is checked; a corrupted or hostile file is refused with an error, never read out of
   bounds. Tensor contents are not checksummed at load (gemini_model_verify does that), so a
   file with valid structure but altered weights loads and produces wrong text, nothing worse.
   Token ids passed to gemini_decode are range-checked.

   The library never prints, exits or aborts. Failures return a gemini_result and leave a
   message for gemini_last_error(); progress messages go to the optional log callback.
*/
#ifndef GEMINI_H
#define GEMINI_H

#define GEMINI_VERSION_MAJOR 0
#define GEMINI_VERSION_MINOR 1
#define GEMINI_VERSION_PATCH 0

/* Under GEMINI_STATIC every function is static; unused ones must not warn. */
#if !defined(GEMINI_API) && defined(GEMINI_STATIC) && (defined(__GNUC__) || defined(__clang__))
#define GEMINI_API static __attribute__((unused))
#endif

#include "gemini_tokenizer.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Tensor types and conversions ---------------------------------------------------------- */

/* Tensor element types of the .gemini format (format.md §3). The ids are stored in files and
   never change. */
typedef enum gemini_type {
    GEMINI_TYPE_F32 = 0,
    GEMINI_TYPE_F16 = 1,
    GEMINI_TYPE_BF16 = 2,
    GEMINI_TYPE_Q8_0 = 3,
    GEMINI_TYPE_Q4_0 = 4,
    GEMINI_TYPE_COUNT
} gemini_type;

/* "f32", "f16", "bf16", "q8_0" or "q4_0"; NULL for an unknown type. */
GEMINI_API const char *gemini_type_name(gemini_type type);

/* Sets *out to the type called `name` and returns 1; returns 0 (and leaves *out alone) if the
   name is unknown or an argument is NULL. */
GEMINI_API int gemini_type_from_name(const char *name, gemini_type *out);

/* Values per block (1 for float types, 32 for q8_0 and q4_0); 0 for an unknown type. */
GEMINI_API int64_t gemini_type_block_size(gemini_type type);

/* Bytes per block; 0 for an unknown type. */
GEMINI_API int64_t gemini_type_block_bytes(gemini_type type);

/* Bytes of a row of n values; -1 if the type is unknown, n is negative or n is not a multiple of
   the block size. */
GEMINI_API int64_t gemini_type_row_bytes(gemini_type type, int64_t n);

/* IEEE binary16 and bfloat16 conversions. Rounding is to nearest, ties to even; overflow gives
   infinity; NaN stays NaN. They cannot fail. */
GEMINI_API uint16_t gemini_f32_to_f16(float x);
GEMINI_API float gemini_f16_to_f32(uint16_t h);
GEMINI_API uint16_t gemini_f32_to_bf16(float x);
GEMINI_API float gemini_bf16_to_f32(uint16_t h);

/* Converts n floats to one row of type `type` in dst (gemini_type_row_bytes(type, n) bytes).
   q8_0 and q4_0 follow format.md §3 and are bit-identical to ggml's reference quantisation.
   Fails with GEMINI_ERR_INVALID_ARGUMENT on a NULL pointer, an unknown type, an n that is not a
   block multiple, or (q8_0/q4_0 only) a non-finite input value. */
GEMINI_API gemini_result gemini_quantize_row(gemini_type type, const float *src, void *dst,
                                             int64_t n);

/* Converts one row of n values of type `type` to floats. Fails with
   GEMINI_ERR_INVALID_ARGUMENT on a NULL pointer, an unknown type or a bad n. */
GEMINI_API gemini_result gemini_dequantize_row(gemini_type type, const void *src, float *dst,
                                               int64_t n);

/* zlib's CRC-32: start with crc = 0 and feed the pieces in order;
   gemini_crc32(0, "123456789", 9) == 0xCBF43926. Cannot fail; NULL data returns crc as is. */
GEMINI_API uint32_t gemini_crc32(uint32_t crc, const void *data, size_t size);

/* ---- Logging -------------------------------------------------------------------------------- */

typedef enum gemini_log_level {
    GEMINI_LOG_ERROR = 0,
    GEMINI_LOG_WARN = 1,
    GEMINI_LOG_INFO = 2,
    GEMINI_LOG_DEBUG = 3
} gemini_log_level;

/* Receives one complete message (no trailing newline). Called on the thread that logs. */
typedef void (*gemini_log_callback)(gemini_log_level level, const char *message, void *user_data);

/* The hook used by model loading and copied into gemini_context_default_params(). NULL (the
   initial value) means silent. Cannot fail. Not synchronised: set it before starting threads. */
GEMINI_API void gemini_set_default_log(gemini_log_callback callback, void *user_data);

/* ---- Model ---------------------------------------------------------------------------------- */

typedef struct gemini_model gemini_model;

/* Hyperparameters read from the file (format.md §4.2). */
typedef struct gemini_model_hparams {
    char architecture[16];      /* "gemma", "gemma2", "gemma3" or "whisper" */
    int32_t vocab_size;         /* rows of token_embd */
    int32_t hidden_size;        /* d */
    int32_t intermediate_size;  /* F */
    int32_t num_layers;         /* L */
    int32_t num_heads;          /* H */
    int32_t num_kv_heads;       /* Hkv */
    int32_t head_dim;           /* D */
    int32_t max_position;       /* trained context length */
    int32_t sliding_window;     /* W; 0 if no layer is local */
    float rms_norm_eps;
    float embed_scale;
    float query_scale;
    float attn_softcap;         /* 0 = off */
    float final_softcap;        /* 0 = off */
    float rope_theta;
    float rope_scale;
    float rope_theta_local;
    int sandwich_norms;         /* 1: post-attention and post-MLP norms */
    int qk_norm;                /* 1: per-head RMSNorm of q and k */
    int tied_embeddings;        /* 1: the head is token_embd */

    /* Whisper (format.md §7): LayerNorm with bias, learned positions, plain GELU MLP with
       biases, cross-attention to an audio encoder. All 0 for the Gemma architectures. */
    int is_encoder_decoder;     /* 1: Whisper */
    float layer_norm_eps;
    int32_t n_mels;             /* log-mel bins the encoder reads (80 or 128) */
    int32_t audio_ctx;          /* encoder positions (1500 for 30 s) */
    int32_t encoder_layers;
    int32_t encoder_heads;
    int32_t encoder_ffn;        /* encoder MLP width */

    /* Vision tower (format.md §8): a SigLIP encoder and a projector into the decoder's
       embeddings. has_vision 0 (and the rest 0) for a text-only model. */
    int has_vision;             /* 1: PaliGemma or Gemma 3 with its vision tower */
    char vision_projector[16];  /* "paligemma" (image prefix) or "gemma3" (pooled soft tokens,
                                   bidirectional within each image) */
    int32_t image_size;         /* S: input pixels a side (square) */
    int32_t patch_size;         /* P: pixels a side of one patch; S is a multiple */
    int32_t image_patches;      /* (S / P)^2 rows of the tower's output */
    int32_t image_tokens;       /* N rows per image in the prompt: image_patches (PaliGemma),
                                   vision.mm_tokens_per_image (Gemma 3: 256) */
    int32_t image_token_id;     /* the placeholder id of an image row in a prompt */
    int32_t image_start_id;     /* Gemma 3: <start_of_image>, before an image's placeholders */
    int32_t image_end_id;       /* Gemma 3: <end_of_image>, after them; -1 if none (PaliGemma) */
    int32_t image_resample;     /* resize filter of the preprocessing, Pillow's numbering:
                                   3 bicubic (PaliGemma), 2 bilinear (Gemma 3) */
    int32_t vision_hidden;      /* Dv */
    int32_t vision_ffn;         /* vision MLP width */
    int32_t vision_layers;
    int32_t vision_heads;
    float vision_norm_eps;      /* LayerNorm eps of the tower */
    float image_mean[3];        /* preprocessing: (v / 255 - mean) / std per channel */
    float image_std[3];
} gemini_model_hparams;

/* Opens a .gemini file, maps it read-only (or reads it into memory where mapping fails) and
   validates it completely (format.md). On success *out owns the model; free it with
   gemini_model_free. On failure *out is NULL and the result says why: GEMINI_ERR_IO (open,
   map or read failed), GEMINI_ERR_FORMAT (bad structure, naming the field or tensor),
   GEMINI_ERR_MISSING_KEY (naming the key or tensor), GEMINI_ERR_CHECKSUM (directory CRC),
   GEMINI_ERR_UNSUPPORTED (architecture, activation or a needed tensor's type),
   GEMINI_ERR_OUT_OF_MEMORY, GEMINI_ERR_INVALID_ARGUMENT (NULL argument). */
GEMINI_API gemini_result gemini_model_load(const char *path, gemini_model **out);

/* As gemini_model_load, on a whole file already in memory. The block is used in place and must
   stay alive and unchanged until gemini_model_free; if it is not 64-byte aligned it is copied
   (once) into an aligned allocation instead. Same results as gemini_model_load. */
GEMINI_API gemini_result gemini_model_load_memory(const void *data, size_t size,
                                                  gemini_model **out);

/* Checks the CRC of every tensor (reads the whole file). GEMINI_ERR_CHECKSUM names the first
   tensor that differs; GEMINI_ERR_INVALID_ARGUMENT on NULL. */
GEMINI_API gemini_result gemini_model_verify(const gemini_model *model);

/* Releases the model. NULL is allowed. Every context of the model must be freed first. */
GEMINI_API void gemini_model_free(gemini_model *model);

/* The hyperparameters; never NULL for a loaded model (NULL for a NULL model). */
GEMINI_API const gemini_model_hparams *gemini_model_get_hparams(const gemini_model *model);

/* Embedding rows (model.vocab_size); 0 for NULL. */
GEMINI_API int32_t gemini_model_vocab_size(const gemini_model *model);

/* "gemma", "gemma2", "gemma3" or "whisper"; "" for NULL. */
GEMINI_API const char *gemini_model_architecture(const gemini_model *model);

/* Metadata value types (format.md §2.2, GGUF numbering). */
typedef enum gemini_meta_type {
    GEMINI_META_U8 = 0, GEMINI_META_I8 = 1, GEMINI_META_U16 = 2, GEMINI_META_I16 = 3,
    GEMINI_META_U32 = 4, GEMINI_META_I32 = 5, GEMINI_META_F32 = 6, GEMINI_META_BOOL = 7,
    GEMINI_META_STRING = 8, GEMINI_META_ARRAY = 9, GEMINI_META_U64 = 10, GEMINI_META_I64 = 11,
    GEMINI_META_F64 = 12
} gemini_meta_type;

/* One metadata record, pointing into the model's bytes (valid while the model lives). */
typedef struct gemini_meta_info {
    const char *key;            /* not NUL-terminated: key_length bytes */
    uint32_t key_length;
    gemini_meta_type type;
    gemini_meta_type elem_type; /* arrays only */
    uint64_t count;             /* arrays: elements; other types: 1 */
    const void *value;          /* the encoded value (little-endian, maybe unaligned); for a
                                   string, its bytes; for an array, its first element */
    uint64_t value_bytes;       /* encoded bytes from `value` on */
} gemini_meta_info;

/* Number of metadata records; 0 for NULL. */
GEMINI_API int64_t gemini_model_meta_count(const gemini_model *model);

/* Record `index` (0 .. count-1, in file order). GEMINI_ERR_INVALID_ARGUMENT on a bad index or
   NULL. */
GEMINI_API gemini_result gemini_model_meta_at(const gemini_model *model, int64_t index,
                                              gemini_meta_info *out);

/* Looks a key up. GEMINI_ERR_MISSING_KEY if absent, GEMINI_ERR_INVALID_ARGUMENT on NULL. */
GEMINI_API gemini_result gemini_model_meta_find(const gemini_model *model, const char *key,
                                                gemini_meta_info *out);

/* Typed lookups. _i64 accepts any integer type (and bool) that fits; _f32 accepts f32 and f64;
   _str gives the bytes (not NUL-terminated) and their length. GEMINI_ERR_MISSING_KEY if
   absent, GEMINI_ERR_FORMAT if the stored type does not fit, GEMINI_ERR_INVALID_ARGUMENT on
   NULL. *out is untouched on failure. */
GEMINI_API gemini_result gemini_model_meta_i64(const gemini_model *model, const char *key,
                                               int64_t *out);
GEMINI_API gemini_result gemini_model_meta_f32(const gemini_model *model, const char *key,
                                               float *out);
GEMINI_API gemini_result gemini_model_meta_str(const gemini_model *model, const char *key,
                                               const char **out, size_t *out_length);

/* One tensor record, pointing into the model's bytes (valid while the model lives). */
typedef struct gemini_tensor_info {
    const char *name;           /* not NUL-terminated: name_length bytes */
    uint32_t name_length;
    uint32_t type;              /* a gemini_type, or an id this reader does not know */
    uint32_t n_dims;            /* 1 to 4 */
    int64_t dims[4];            /* outermost first; unused entries are 1 */
    uint64_t offset;            /* from the start of the data section */
    uint64_t size;              /* bytes */
    uint32_t crc32;             /* as stored in the directory */
    const void *data;           /* the tensor's first byte */
} gemini_tensor_info;

/* Number of tensor records; 0 for NULL. */
GEMINI_API int64_t gemini_model_tensor_count(const gemini_model *model);

/* Record `index` (file order). GEMINI_ERR_INVALID_ARGUMENT on a bad index or NULL. */
GEMINI_API gemini_result gemini_model_tensor_at(const gemini_model *model, int64_t index,
                                                gemini_tensor_info *out);

/* Looks a tensor up by name. GEMINI_ERR_MISSING_KEY if absent. */
GEMINI_API gemini_result gemini_model_tensor_find(const gemini_model *model, const char *name,
                                                  gemini_tensor_info *out);

/* The tokenizer stored in the file (format.md §4.3), as arrays that point into the model (valid
   while it lives). Feed them to the tokenizer's constructor. */
typedef struct gemini_tokenizer_desc {
    const char *model;              /* "sentencepiece-bpe", ...; not NUL-terminated */
    size_t model_length;
    int32_t n_pieces;
    const char *const *pieces;      /* [n_pieces] piece bytes, not NUL-terminated */
    const uint32_t *piece_lengths;  /* [n_pieces] */
    const float *scores;            /* [n_pieces] */
    const uint8_t *types;           /* [n_pieces] 1 normal, 2 unknown, 3 control, 4 user, 5 unused,
                                       6 byte */
    int32_t unk_id, bos_id, eos_id, pad_id, eot_id; /* -1 if none */
    int add_bos;
    int add_dummy_prefix;
    int remove_extra_whitespaces;
    int escape_whitespaces;
    int treat_whitespace_as_suffix;
    int byte_fallback;
    const uint8_t *charsmap;        /* precompiled_charsmap, or NULL */
    size_t charsmap_length;
    int32_t n_merges;               /* byte-bpe: merges by rank, two piece ids each; else 0 */
    const int32_t *merges;          /* [2 * n_merges] or NULL */
} gemini_tokenizer_desc;

/* Fills *out. GEMINI_ERR_MISSING_KEY if the file has no tokenizer (no tokenizer.model),
   GEMINI_ERR_INVALID_ARGUMENT on NULL. */
GEMINI_API gemini_result gemini_model_tokenizer_desc(const gemini_model *model,
                                                     gemini_tokenizer_desc *out);

/* Builds the tokenizer stored in the model file (format.md §4.3); release it with
   gemini_tok_free. It keeps no pointer into the model. Fails with GEMINI_ERR_MISSING_KEY when
   the file holds no tokenizer, GEMINI_ERR_UNSUPPORTED for a tokenizer.model value this build
   does not know, or the errors of gemini_tok_create_spm; *out is then NULL. */
GEMINI_API gemini_result gemini_model_tokenizer(const gemini_model *model, gemini_tok **out);

/* ---- Accelerator offload hook -------------------------------------------------------------- */

/* A backend computes some of a context's weight matrix products (and optionally its attention)
   on other hardware. It is a struct of callbacks plus a user pointer, registered through
   gemini_context_params.backend. gemini.h includes no vendor header and knows no device: a
   backend is a separate, optional file (backends/gemini_cuda.cu is one; see backends/README.md)
   or the caller's own code. Without a backend nothing changes.

   Ownership. gemini_context_create copies the struct and, after its own allocations, offers
   every weight matrix of the model to take_tensor once: per layer attn_q, attn_k, attn_v,
   attn_out, ffn_gate, ffn_up, ffn_down, then the output head ("output", or "token_embd" when the
   embeddings are tied; the embedding lookup itself stays on the CPU). take_tensor may upload the
   matrix and keep it in any layout of its own; it returns 1 to accept (and sets *handle, passed
   back on every product with that matrix) or 0 to leave the matrix to the CPU. Norm vectors are
   not offered. release is called exactly once for every gemini_context_create call made with a
   backend: by gemini_context_free, or before gemini_context_create returns an error (also when
   it fails on its arguments). It frees everything the backend holds, handles included.

   How a matrix is presented (gemini_backend_tensor). Row-major [out, in] = [rows, cols]: row r
   holds the weights of output r, row_bytes = gemini_type_row_bytes(type, cols) bytes, rows
   back to back without padding. f32, f16 (IEEE binary16) and bf16 are little-endian values.
   q8_0 and q4_0 are the block layouts of format.md §3: 32 values per block, in order along the
   row; a q8_0 block is 34 bytes, an f16 scale d then 32 int8 q (value d * q); a q4_0 block is
   18 bytes, d then 16 bytes whose low nibbles are values 0-15 and high nibbles values 16-31
   (value d * (nibble - 8)). `data` is 64-byte aligned (the file's alignment); blocks inside a
   row are not, so read a block's scale bytewise. The bytes are the model's (usually the mapped
   file): read-only, valid until gemini_model_free, which comes after every context's free, so a
   backend with access to host memory may compute from them in place instead of copying. The
   CPU keeps them too: it computes every product the backend declines.

   Products. For an accepted matrix W, gemini_decode calls matvec when a step has one token
   (decode) and matmul when it has more (prefill, up to n_batch tokens):
       matvec: y[r] = sum_c W[r][c] * x[c]                       x: cols floats, y: rows floats
       matmul: y[t * y_stride + r] = sum_c W[r][c] * x[t * x_stride + c]   for t < n_tokens
   Inputs and outputs are f32 host memory; strides are in floats. The call is synchronous: on
   GEMINI_BACKEND_DONE, y holds the result. Any other return value (GEMINI_BACKEND_DECLINE)
   makes the CPU compute that one product, overwriting all of y; the next product is offered
   again, so a backend may decline op by op (say, when busy or out of memory). A NULL matvec or
   matmul declines all such calls. The arithmetic is the backend's choice: the CPU rounds the
   activations to q8_0 for q8_0/q4_0 weights, a backend may keep them f32, so logits differ by
   rounding (a backend that does the CPU's scalar arithmetic in the CPU's order matches it bit
   for bit; tests/test_offload.c has one).

   Attention (optional, NULL: the CPU does it). Called once per layer per step with the step's
   q, k and v after QK-norm and RoPE (gemini_backend_attention). The backend keeps its own KV
   storage: it must store k and v at positions first_position .. first_position + n_tokens - 1
   on every call, also when it then declines, since later steps read them; first_position 0
   means the sequence restarted (gemini_context_reset). The context keeps its CPU cache as well,
   so a decline is always safe. On GEMINI_BACKEND_DONE `out` holds, for token t at position
   p = first_position + t and head h, softmax over keys j in [max(0, p - window + 1), p]
   (window 0: [0, p]) of s_j = softcap(q.k_j * query_scale), applied to v_j, where
   softcap(s) = cap * tanh(s / cap) when cap > 0, and head h reads KV head
   h / (n_heads / n_kv_heads). A step of gemini_decode_prefix that holds a bidirectional span
   (a prefix, a Gemma 3 image) still calls attention (the backend stores k and v), but the CPU
   then attends in its place.

   Threads. Every callback of a context runs on the thread that called gemini_context_create,
   gemini_decode or gemini_context_free on it, one call at a time, never on the context's worker
   threads (they are idle meanwhile). Different contexts may call their backends at the same
   time, so a backend instance shared by several contexts (the same user_data) must be
   thread-safe and receives take_tensor calls from each; the simple rule is one backend instance
   per context. */

enum {
    GEMINI_BACKEND_DONE = 0,        /* the backend computed the result */
    GEMINI_BACKEND_DECLINE = 1      /* the CPU computes this one (so does any nonzero value) */
};

/* One weight matrix offered to take_tensor; the pointers are valid during that call only,
   except `data` (valid until gemini_model_free). */
typedef struct gemini_backend_tensor {
    const char *name;               /* NUL-terminated: "blk.3.attn_q", "output", "token_embd" */
    gemini_type type;
    int64_t rows;                   /* out */
    int64_t cols;                   /* in; a multiple of 32 for q8_0 and q4_0 */
    int64_t row_bytes;              /* gemini_type_row_bytes(type, cols) */
    const void *data;               /* rows * row_bytes bytes, 64-byte aligned, read-only */
} gemini_backend_tensor;

/* One attention step of one layer (see above); valid during the call only. */
typedef struct gemini_backend_attention {
    int32_t layer;                  /* 0 .. num_layers - 1 */
    int32_t n_tokens;               /* tokens in this step */
    int32_t first_position;         /* position of token 0; 0: the sequence restarted */
    int32_t n_ctx;                  /* positions the context holds (an upper bound) */
    int32_t n_heads, n_kv_heads, head_dim;
    int32_t window;                 /* keys visible including the current one; 0: all */
    float query_scale;
    float softcap;                  /* 0: off */
    const float *q;                 /* (n_tokens, n_heads * head_dim) */
    const float *k;                 /* (n_tokens, n_kv_heads * head_dim) */
    const float *v;                 /* (n_tokens, n_kv_heads * head_dim) */
    float *out;                     /* (n_tokens, n_heads * head_dim) */
} gemini_backend_attention;

typedef struct gemini_backend {
    const char *name;               /* for the log; may be NULL */
    void *user_data;                /* passed to every callback */
    /* 1: accepted (*handle set, may be NULL), 0: the CPU keeps it. May be NULL (takes none). */
    int (*take_tensor)(void *user_data, const gemini_backend_tensor *tensor, void **handle);
    int (*matvec)(void *user_data, void *handle, const float *x, float *y);
    int (*matmul)(void *user_data, void *handle, const float *x, int64_t x_stride,
                  int32_t n_tokens, float *y, int64_t y_stride);
    int (*attention)(void *user_data, const gemini_backend_attention *step);
    void (*release)(void *user_data);   /* may be NULL */
} gemini_backend;

/* ---- Context and decoding ------------------------------------------------------------------- */

typedef struct gemini_context gemini_context;

typedef struct gemini_context_params {
    int32_t n_ctx;                  /* positions the KV cache holds; 1 .. 32768 (default 4096) */
    int32_t n_batch;                /* tokens per prefill step; 1 .. 4096 (default 256) */
    int32_t n_threads;              /* threads incl. the caller, at most one a CPU the process
                                       may run on; default: one a physical core (Linux; else
                                       one a CPU) */
    uint64_t seed;                  /* reserved for context-owned randomness; samplers carry
                                       their own seed */
    gemini_log_callback log_callback; /* default: the global default hook; NULL = silent */
    void *log_user_data;
    const gemini_backend *backend;  /* offload hook, copied at creation; NULL (default): CPU */
    int32_t n_images;               /* image slots (gemini_encode_image_at) of a model with a
                                       vision tower, each image_tokens * hidden_size floats;
                                       1 .. 64 (default 1); a model without one allocates none */
    gemini_type kv_type;            /* element type of the KV cache (and of Whisper's
                                       cross-attention keys and values): GEMINI_TYPE_F32
                                       (default), GEMINI_TYPE_F16 or GEMINI_TYPE_BF16; keys and
                                       values are rounded to it as they are stored */
} gemini_context_params;

/* Defaults as documented on each field. Cannot fail. */
GEMINI_API gemini_context_params gemini_context_default_params(void);

/* Creates a context (KV cache, scratch, thread pool) for `model`, which must outlive it. params
   may be NULL for the defaults. On failure *out is NULL: GEMINI_ERR_INVALID_ARGUMENT (NULL model
   or out, a parameter out of range), GEMINI_ERR_OUT_OF_MEMORY. A thread that fails to start
   only reduces the thread count (logged as a warning). With params->backend set, the backend is
   offered the weight matrices last; on failure its release has been called. */
GEMINI_API gemini_result gemini_context_create(const gemini_model *model,
                                               const gemini_context_params *params,
                                               gemini_context **out);

/* Bytes a context with these parameters (NULL: defaults) would allocate, into *bytes (host
   memory of the library; a backend's own allocations are not counted). A Whisper context
   makes its encoder's buffers and cross-attention keys and values (counted here) on its first
   gemini_encode_mel or gemini_context_copy_audio; one that only shares another's audio never
   does. GEMINI_ERR_INVALID_ARGUMENT as gemini_context_create. */
GEMINI_API gemini_result gemini_context_memory_size(const gemini_model *model,
                                                    const gemini_context_params *params,
                                                    uint64_t *bytes);

/* Releases the context and joins its threads. NULL is allowed. */
GEMINI_API void gemini_context_free(gemini_context *ctx);

/* Forgets every position: the next decode starts at position 0. NULL is ignored. */
GEMINI_API void gemini_context_reset(gemini_context *ctx);

/* Tokens decoded so far (the next token's position); 0 for NULL. */
GEMINI_API int32_t gemini_context_position(const gemini_context *ctx);

/* Positions the context holds (n_ctx); 0 for NULL. */
GEMINI_API int32_t gemini_context_size(const gemini_context *ctx);

/* Threads the context runs on, with the caller's: n_threads, or fewer where the process may
   run on fewer CPUs (or a thread could not be started); 0 for NULL. */
GEMINI_API int32_t gemini_context_threads(const gemini_context *ctx);

/* Appends n_tokens tokens at the current position and runs the model on them (a batch uses
   matrix-matrix products, in steps of n_batch tokens). logits_out may be NULL (no logits); else
   with all_logits != 0 it receives n_tokens rows of vocab_size floats, one per token, and with
   all_logits == 0 one row: the last token's. Fails without changing the context:
   GEMINI_ERR_CONTEXT_FULL if position + n_tokens > n_ctx, GEMINI_ERR_INVALID_ARGUMENT on NULL
   ctx or tokens, n_tokens < 1, or a token id outside [0, vocab_size). */
GEMINI_API gemini_result gemini_decode(gemini_context *ctx, const int32_t *tokens,
                                       int32_t n_tokens, float *logits_out, int all_logits);

/* Appends tokens[i] to the sequence of contexts[i], for n_contexts distinct contexts of one
   model (same n_ctx, n_batch and kv_type; n_contexts <= n_batch), in one step: every weight
   matrix is read once for all of them, as in a batch, while each token attends to its own
   context's cache (and, for Whisper, its own context's audio). For beam search and parallel
   sampling. logits_out (may be NULL) receives n_contexts rows of vocab_size floats, row i for
   contexts[i]: the same bits as one gemini_decode per context (a GEMINI_USE_BLAS build may
   differ in the last bits on float weights). The step runs on contexts[0]'s threads, and no
   other thread may use any of the contexts meanwhile. A context whose backend keeps its KV
   cache (an attention callback) makes the call one gemini_decode per context. Fails
   without changing any context: GEMINI_ERR_INVALID_ARGUMENT (NULL, a context listed twice,
   mismatched contexts, a token outside [0, vocab_size), no encoded audio in a Whisper context),
   GEMINI_ERR_CONTEXT_FULL (a context holds n_ctx tokens). */
GEMINI_API gemini_result gemini_decode_each(gemini_context *const *contexts, int32_t n_contexts,
                                            const int32_t *tokens, float *logits_out);

/* ---- Encoder-decoder (Whisper) -------------------------------------------------------------- */

/* A Whisper context decodes text conditioned on one encoded audio window: gemini_encode_mel
   runs the encoder and keeps, per decoder layer, the cross-attention keys and values; every
   gemini_decode after it attends to them. Its n_ctx is capped at the model's max_position
   (448 learned positions); gemini_decode fails until audio has been encoded. */

/* Runs the encoder on one log-mel window: mel holds n_mels rows of n_frames floats
   (mel[m * n_frames + t], as gemini_audio_log_mel_30s writes it) and n_frames must be
   2 * audio_ctx (3000 for 30 s). Stores the cross-attention keys and values and resets the
   decoder position to 0. GEMINI_ERR_INVALID_ARGUMENT on NULL, a model without an encoder, or
   other sizes than the model's; GEMINI_ERR_OUT_OF_MEMORY when the context's first encode
   cannot make the encoder's buffers (see gemini_context_memory_size). */
GEMINI_API gemini_result gemini_encode_mel(gemini_context *ctx, const float *mel, int32_t n_mels,
                                           int32_t n_frames);

/* The last encoder output (after the final LayerNorm): *n_frames rows (audio_ctx) of *dim
   floats (hidden_size); either out pointer may be NULL. NULL before the first successful
   encode. Valid until the next gemini_encode_mel or gemini_context_free. */
GEMINI_API const float *gemini_encoder_output(const gemini_context *ctx, int32_t *n_frames,
                                              int32_t *dim);

/* Copies the decoder state of src (position and self-attention KV cache) into dst, for beam
   search: both contexts of the same model, n_ctx, n_batch and kv_type. The audio is not
   copied.
   GEMINI_ERR_INVALID_ARGUMENT on NULL or mismatched contexts, GEMINI_ERR_UNSUPPORTED when a
   backend keeps the KV cache (its attention callback is set). Works for Gemma contexts too. */
GEMINI_API gemini_result gemini_context_copy_sequence(gemini_context *dst,
                                                      const gemini_context *src);

/* Copies the encoded audio (encoder output and cross-attention keys and values) of src into
   dst; the decoder state is unchanged. Errors as gemini_context_copy_sequence, and
   GEMINI_ERR_INVALID_ARGUMENT when src holds no audio, GEMINI_ERR_OUT_OF_MEMORY as
   gemini_encode_mel's. */
GEMINI_API gemini_result gemini_context_copy_audio(gemini_context *dst, const gemini_context *src);

/* Makes dst decode against src's encoded audio without copying it (beam search slots; and
   gemini_decode_each attends once for all the rows that share one audio). Until dst's next
   gemini_encode_mel or gemini_context_copy_audio, dst reads the audio src holds, so src must
   outlive that use, and what src comes to hold (a new encode, a share) dst decodes against
   too. The decoder state is unchanged. dst needs no buffers of its own for it. Errors as
   gemini_context_copy_audio, but never GEMINI_ERR_OUT_OF_MEMORY. */
GEMINI_API gemini_result gemini_context_share_audio(gemini_context *dst,
                                                    const gemini_context *src);

/* ---- Images (PaliGemma, Gemma 3) ----------------------------------------------------------- */

/* A model with a vision tower (hparams.has_vision) reads prompts in which runs of image_tokens
   placeholder ids (hparams.image_token_id) stand for the rows of encoded images:
   gemini_encode_image runs the SigLIP tower and the projector on one image and keeps its rows
   in one of the context's image slots (gemini_context_params.n_images of them);
   gemini_decode_prefix then puts, in one call, the rows of slot 0 in the place of the first
   run of placeholders, those of slot 1 in the place of the second run, and so on.

   PaliGemma (vision_projector "paligemma") reads one image, first:

       image_token_id x image_tokens, BOS, the prompt's tokens, the tokens of "\n"

   decoded as one prefix (prefix_length = all of it): its tokens see one another in both
   directions, as PaliGemma was trained; what follows (the answer, by gemini_decode) is causal.
   The positions of a PaliGemma model count from 1 for RoPE, as in its reference.

   Gemma 3 (vision_projector "gemma3") takes images anywhere in a causal prompt; Hugging Face's
   processor writes each image as

       "\n\n", image_start_id, image_token_id x image_tokens (256), image_end_id, "\n\n"

   inside the chat template (the "\n\n" merge with neighbouring newlines when tokenized).
   The placeholders of one image attend to each other in both directions, the rest of the
   prompt causally (prefix_length 0); on sliding-window layers an image row sees the rows of
   its image that follow it, but none that lie behind its window (transformers' rule). Decode
   a prompt with several images in one call, after encoding image k into slot k, or in pieces,
   each piece taking its images from slot 0 on: the results are the same. */

/* Runs the vision tower on one image and stores its projected rows in slot 0; the same as
   gemini_encode_image_at(ctx, 0, ...). */
GEMINI_API gemini_result gemini_encode_image(gemini_context *ctx, const float *pixels,
                                             int32_t width, int32_t height);

/* Runs the vision tower and the projector on one image and stores its image_tokens rows in
   slot `slot` (0 .. n_images - 1), replacing what the slot held. pixels holds 3 planes
   (R, G, B) of height rows of width floats, already resized and normalised
   (gemini_vision_preprocess with image_size, the model's image_mean / image_std and its
   image_resample filter gives them), and width == height == image_size. The decoder position
   and KV cache are untouched. GEMINI_ERR_INVALID_ARGUMENT on NULL, a model without a vision
   tower, another size, or a slot outside [0, n_images); the slot is then unchanged. */
GEMINI_API gemini_result gemini_encode_image_at(gemini_context *ctx, int32_t slot,
                                                const float *pixels, int32_t width,
                                                int32_t height);

/* The last encoded image's SigLIP output (after its final LayerNorm, before the projector):
   *n_rows (image_patches) rows of *dim (vision_hidden) floats; either out pointer may be NULL.
   NULL before the first successful encode. Valid until the next one or gemini_context_free. */
GEMINI_API const float *gemini_vision_output(const gemini_context *ctx, int32_t *n_rows,
                                             int32_t *dim);

/* The last encoded image's rows as they enter the decoder: *n_rows (image_tokens) rows of
   *dim (hidden_size) floats (Gemma 3: pooled, normed and projected). NULL before the first
   successful encode; valid until that slot is encoded again or gemini_context_free. */
GEMINI_API const float *gemini_image_embeddings(const gemini_context *ctx, int32_t *n_rows,
                                                int32_t *dim);

/* As gemini_decode, with two differences. Every maximal run of tokens equal to
   hparams.image_token_id must be image_tokens long; run k of the call takes the rows of image
   slot k in place of embeddings (a text row is scaled by embed_scale, an image row is not),
   and for a Gemma 3 model its rows attend to each other in both directions. And the first
   prefix_length tokens of the call attend to each other in both directions (0: none; on
   sliding-window layers a prefix token sees the union of its window and the prefix); the rest
   see the prefix and, causally, themselves. A bidirectional span (the prefix, an image) is
   computed in one step, so prefix_length must not exceed the context's n_batch (a model with a
   vision tower gets n_batch >= image_tokens + 64, see gemini_context_create). Fails without
   changing the context as gemini_decode does, and with GEMINI_ERR_INVALID_ARGUMENT when
   prefix_length is outside [0, n_tokens] or above n_batch, when a run of placeholders has
   another length than image_tokens, when there are more runs than n_images, or when a run's
   slot holds no encoded image (or the model has no vision tower). */
GEMINI_API gemini_result gemini_decode_prefix(gemini_context *ctx, const int32_t *tokens,
                                              int32_t n_tokens, int32_t prefix_length,
                                              float *logits_out, int all_logits);

/* ---- Sampling ------------------------------------------------------------------------------- */

typedef struct gemini_sampler_params {
    /* The repetition penalty applies first, then the logits are divided by the temperature and
       top-k, top-p and min-p cut the candidates in that order; the draw is from what is left,
       renormalised. */
    float temperature;          /* <= 0: greedy (argmax, lowest id on ties); default 0.8 */
    int32_t top_k;              /* keep the k most likely; <= 0: all; default 40 */
    float top_p;                /* keep the smallest set with probability >= p; 1: off; 0.95 */
    float min_p;                /* drop tokens below min_p * p(best); 0: off; default 0.05 */
    float repetition_penalty;   /* > 1 discourages tokens seen in the window; 1: off (default) */
    int32_t repetition_window;  /* tokens remembered for the penalty; default 64 */
    uint64_t seed;              /* the random generator's seed; default 0x5eed */
} gemini_sampler_params;

typedef struct gemini_sampler gemini_sampler;

/* Defaults as documented on each field. Cannot fail. */
GEMINI_API gemini_sampler_params gemini_sampler_default_params(void);

/* Creates a sampler for logit rows of n_vocab entries. params may be NULL for the defaults.
   On failure *out is NULL: GEMINI_ERR_INVALID_ARGUMENT (NULL out, n_vocab < 1, a parameter out
   of range: top_p or min_p outside [0, 1], repetition_penalty <= 0, window < 0 or > 65536),
   GEMINI_ERR_OUT_OF_MEMORY. */
GEMINI_API gemini_result gemini_sampler_create(const gemini_sampler_params *params,
                                               int32_t n_vocab, gemini_sampler **out);

/* Releases the sampler. NULL is allowed. */
GEMINI_API void gemini_sampler_free(gemini_sampler *sampler);

/* Remembers a token (a prompt token or a sampled one) for the repetition penalty. gemini_sample
   calls it for the token it returns. NULL is ignored; cannot fail. */
GEMINI_API void gemini_sampler_accept(gemini_sampler *sampler, int32_t token);

/* Picks the next token from one row of logits (n_vocab floats, not modified). Reproducible for
   a given seed and sequence of calls. GEMINI_ERR_INVALID_ARGUMENT on NULL. */
GEMINI_API gemini_result gemini_sample(gemini_sampler *sampler, const float *logits,
                                       int32_t *token_out);

/* ---- Chat template -------------------------------------------------------------------------- */

/* Writes "<start_of_turn>user\n{user_text}<end_of_turn>\n<start_of_turn>model\n" and a NUL into
   out (BOS is the caller's to add, as a token id). *out_length (may be NULL) receives the text
   length without the NUL, also when out is too small. GEMINI_ERR_INVALID_ARGUMENT on NULL
   user_text, or when out is NULL or too small (out_size must be at least length + 1). */
GEMINI_API gemini_result gemini_chat_user_turn(const char *user_text, char *out, size_t out_size,
                                               size_t *out_length);

/* CPU features the kernels use on this machine: "scalar"; on x86 "avx2 fma f16c", "avx512f
   avx512bw avx512vl avx2 fma f16c" or "avx512f avx512bw avx512vl avx512vnni avx2 fma f16c"; on
   AArch64 "neon" or "neon dotprod". Never NULL. */
GEMINI_API const char *gemini_cpu_features(void);

#ifdef __cplusplus
}
#endif
#endif /* GEMINI_H */

/* ========================================================================================= */
#ifdef GEMINI_IMPLEMENTATION
#ifdef GEMINI_IMPLEMENTED
#error "gemini.h: the implementation is included twice in one translation unit"
#endif
#define GEMINI_IMPLEMENTED

#ifndef GEMINI_TOKENIZER_IMPLEMENTED
#define GEMINI_TOKENIZER_IMPLEMENTATION
#include "gemini_tokenizer.h"
#endif

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Types, conversions, quantisation, CRC -------------------------------------------------- */

#define GEMINI__QK 32 /* values per q8_0 / q4_0 block */

/* A q8_0 block: 34 bytes, d (f16) then 32 signed bytes. Kept as bytes to avoid padding. */
#define GEMINI__Q8_0_BYTES 34
#define GEMINI__Q4_0_BYTES 18

GEMINI_API const char *gemini_type_name(gemini_type type)
{
    switch (type) {
    case GEMINI_TYPE_F32: return "f32";
    case GEMINI_TYPE_F16: return "f16";
    case GEMINI_TYPE_BF16: return "bf16";
    case GEMINI_TYPE_Q8_0: return "q8_0";
    case GEMINI_TYPE_Q4_0: return "q4_0";
    default: return NULL;
    }
}

GEMINI_API int gemini_type_from_name(const char *name, gemini_type *out)
{
    int type;
    if (name == NULL || out == NULL) return 0;
    for (type = 0; type < GEMINI_TYPE_COUNT; type++) {
        if (strcmp(name, gemini_type_name((gemini_type)type)) == 0) {
            *out = (gemini_type)type;
            return 1;
        }
    }
    return 0;
}

GEMINI_API int64_t gemini_type_block_size(gemini_type type)
{
    switch (type) {
    case GEMINI_TYPE_F32: case GEMINI_TYPE_F16: case GEMINI_TYPE_BF16: return 1;
    case GEMINI_TYPE_Q8_0: case GEMINI_TYPE_Q4_0: return GEMINI__QK;
    default: return 0;
    }
}

GEMINI_API int64_t gemini_type_block_bytes(gemini_type type)
{
    switch (type) {
    case GEMINI_TYPE_F32: return 4;
    case GEMINI_TYPE_F16: case GEMINI_TYPE_BF16: return 2;
    case GEMINI_TYPE_Q8_0: return GEMINI__Q8_0_BYTES;
    case GEMINI_TYPE_Q4_0: return GEMINI__Q4_0_BYTES;
    default: return 0;
    }
}

GEMINI_API int64_t gemini_type_row_bytes(gemini_type type, int64_t n)
{
    int64_t block = gemini_type_block_size(type);
    int64_t bytes = gemini_type_block_bytes(type);
    if (block == 0 || n < 0 || n % block != 0) return -1;
    if (n / block > INT64_MAX / bytes) return -1;
    return n / block * bytes;
}

static uint32_t gemini__f32_bits(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static float gemini__bits_f32(uint32_t bits)
{
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

GEMINI_API uint16_t gemini_f32_to_f16(float x)
{
    uint32_t bits = gemini__f32_bits(x);
    uint32_t sign = (bits >> 16) & 0x8000u;
    uint32_t magnitude = bits & 0x7fffffffu;
    uint32_t half, rest;

    if (magnitude > 0x7f800000u) /* NaN: keep it quiet and keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    if (magnitude >= 0x477ff000u) /* at or above the midpoint of 65504 and 65536: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (magnitude < 0x38800000u) { /* below 2^-14: a subnormal half or zero */
        uint32_t exponent = magnitude >> 23, mantissa, shift, halfway;
        if (exponent < 102) return (uint16_t)sign; /* below 2^-25 rounds to zero */
        mantissa = (magnitude & 0x7fffffu) | 0x800000u;
        shift = 126 - exponent;
        half = mantissa >> shift;
        rest = mantissa & ((1u << shift) - 1);
        halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    half = (magnitude - (112u << 23)) >> 13;
    rest = magnitude & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1))) half++;
    return (uint16_t)(sign | half);
}

GEMINI_API float gemini_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24, exact in f32 */
        float magnitude = (float)mantissa * 5.9604644775390625e-8f;
        return gemini__bits_f32(gemini__f32_bits(magnitude) | sign);
    }
    if (exponent == 31) return gemini__bits_f32(sign | 0x7f800000u | (mantissa << 13));
    return gemini__bits_f32(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

GEMINI_API uint16_t gemini_f32_to_bf16(float x)
{
    uint32_t bits = gemini__f32_bits(x);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

GEMINI_API float gemini_bf16_to_f32(uint16_t h)
{
    return gemini__bits_f32((uint32_t)h << 16);
}

static uint16_t gemini__read_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static void gemini__write_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* Float to int with clamping, so that no input (however odd) makes a conversion undefined. */
static int gemini__clamp_int(float v, int lo, int hi)
{
    if (!(v >= (float)lo)) return lo; /* also NaN */
    if (v > (float)hi) return hi;
    return (int)v;
}

/* q8_0 as ggml's reference: d = max|x| / 127, q = round(x * (1/d)), half away from zero. */
static void gemini__quantize_q8_0(const float *src, uint8_t *dst, int64_t n_blocks)
{
    int64_t b;
    int j;
    for (b = 0; b < n_blocks; b++, src += GEMINI__QK, dst += GEMINI__Q8_0_BYTES) {
        float max_abs = 0.0f, d, inverse;
        for (j = 0; j < GEMINI__QK; j++) {
            float a = fabsf(src[j]);
            if (a > max_abs) max_abs = a;
        }
        d = max_abs / 127.0f;
        inverse = d != 0.0f ? 1.0f / d : 0.0f;
        gemini__write_u16(dst, gemini_f32_to_f16(d));
        for (j = 0; j < GEMINI__QK; j++)
            dst[2 + j] = (uint8_t)(int8_t)gemini__clamp_int(roundf(src[j] * inverse), -128, 127);
    }
}

/* q4_0 as ggml's reference: m = the value of largest magnitude (first one on ties), d = m / -8,
   q = min(15, trunc(x * (1/d) + 8.5)); low nibbles hold values 0..15, high nibbles 16..31. */
static void gemini__quantize_q4_0(const float *src, uint8_t *dst, int64_t n_blocks)
{
    int64_t b;
    int j;
    for (b = 0; b < n_blocks; b++, src += GEMINI__QK, dst += GEMINI__Q4_0_BYTES) {
        float max_abs = 0.0f, max_signed = 0.0f, d, inverse;
        for (j = 0; j < GEMINI__QK; j++) {
            if (max_abs < fabsf(src[j])) {
                max_abs = fabsf(src[j]);
                max_signed = src[j];
            }
        }
        d = max_signed / -8.0f;
        inverse = d != 0.0f ? 1.0f / d : 0.0f;
        gemini__write_u16(dst, gemini_f32_to_f16(d));
        for (j = 0; j < GEMINI__QK / 2; j++) {
            int low = gemini__clamp_int(src[j] * inverse + 8.5f, 0, 15);
            int high = gemini__clamp_int(src[j + GEMINI__QK / 2] * inverse + 8.5f, 0, 15);
            dst[2 + j] = (uint8_t)(low | (high << 4));
        }
    }
}

GEMINI_API gemini_result gemini_quantize_row(gemini_type type, const float *src, void *dst,
                                             int64_t n)
{
    uint8_t *out = (uint8_t *)dst;
    int64_t i;
    if (src == NULL || dst == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_quantize_row: NULL pointer");
    if (gemini_type_row_bytes(type, n) < 0)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT,
                            "gemini_quantize_row: type %d cannot hold a row of %lld values",
                            (int)type, (long long)n);
    if (type == GEMINI_TYPE_Q8_0 || type == GEMINI_TYPE_Q4_0) {
        for (i = 0; i < n; i++) {
            if (!(fabsf(src[i]) <= FLT_MAX))
                return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT,
                                    "gemini_quantize_row: value %lld is not finite",
                                    (long long)i);
        }
    }
    switch (type) {
    case GEMINI_TYPE_F32:
        memcpy(out, src, (size_t)n * 4);
        break;
    case GEMINI_TYPE_F16:
        for (i = 0; i < n; i++) gemini__write_u16(out + 2 * i, gemini_f32_to_f16(src[i]));
        break;
    case GEMINI_TYPE_BF16:
        for (i = 0; i < n; i++) gemini__write_u16(out + 2 * i, gemini_f32_to_bf16(src[i]));
        break;
    case GEMINI_TYPE_Q8_0:
        gemini__quantize_q8_0(src, out, n / GEMINI__QK);
        break;
    case GEMINI_TYPE_Q4_0:
        gemini__quantize_q4_0(src, out, n / GEMINI__QK);
        break;
    default:
        break;
    }
    return GEMINI_OK;
}

/* Dequantises n values (n a block multiple for the block types); no argument checks. */
static void gemini__dequantize(gemini_type type, const void *src, float *dst, int64_t n)
{
    const uint8_t *in = (const uint8_t *)src;
    int64_t i;
    int j;
    switch (type) {
    case GEMINI_TYPE_F32:
        memcpy(dst, in, (size_t)n * 4);
        break;
    case GEMINI_TYPE_F16:
        for (i = 0; i < n; i++) dst[i] = gemini_f16_to_f32(gemini__read_u16(in + 2 * i));
        break;
    case GEMINI_TYPE_BF16:
        for (i = 0; i < n; i++) dst[i] = gemini_bf16_to_f32(gemini__read_u16(in + 2 * i));
        break;
    case GEMINI_TYPE_Q8_0:
        for (i = 0; i < n; i += GEMINI__QK, in += GEMINI__Q8_0_BYTES) {
            float d = gemini_f16_to_f32(gemini__read_u16(in));
            for (j = 0; j < GEMINI__QK; j++) dst[i + j] = d * (float)(int8_t)in[2 + j];
        }
        break;
    case GEMINI_TYPE_Q4_0:
        for (i = 0; i < n; i += GEMINI__QK, in += GEMINI__Q4_0_BYTES) {
            float d = gemini_f16_to_f32(gemini__read_u16(in));
            for (j = 0; j < GEMINI__QK / 2; j++) {
                dst[i + j] = d * (float)((in[2 + j] & 0x0f) - 8);
                dst[i + j + GEMINI__QK / 2] = d * (float)((in[2 + j] >> 4) - 8);
            }
        }
        break;
    default:
        break;
    }
}

GEMINI_API gemini_result gemini_dequantize_row(gemini_type type, const void *src, float *dst,
                                               int64_t n)
{
    if (src == NULL || dst == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_dequantize_row: NULL pointer");
    if (gemini_type_row_bytes(type, n) < 0)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT,
                            "gemini_dequantize_row: type %d cannot hold a row of %lld values",
                            (int)type, (long long)n);
    gemini__dequantize(type, src, dst, n);
    return GEMINI_OK;
}

/* The reflected CRC-32 table for polynomial 0xEDB88320 (entry n is the CRC of byte n). */
static const uint32_t gemini__crc_table[256] = {
    0x00000000u, 0x77073096u, 0xEE0E612Cu, 0x990951BAu, 0x076DC419u, 0x706AF48Fu,
    0xE963A535u, 0x9E6495A3u, 0x0EDB8832u, 0x79DCB8A4u, 0xE0D5E91Eu, 0x97D2D988u,
    0x09B64C2Bu, 0x7EB17CBDu, 0xE7B82D07u, 0x90BF1D91u, 0x1DB71064u, 0x6AB020F2u,
    0xF3B97148u, 0x84BE41DEu, 0x1ADAD47Du, 0x6DDDE4EBu, 0xF4D4B551u, 0x83D385C7u,
    0x136C9856u, 0x646BA8C0u, 0xFD62F97Au, 0x8A65C9ECu, 0x14015C4Fu, 0x63066CD9u,
    0xFA0F3D63u, 0x8D080DF5u, 0x3B6E20C8u, 0x4C69105Eu, 0xD56041E4u, 0xA2677172u,
    0x3C03E4D1u, 0x4B04D447u, 0xD20D85FDu, 0xA50AB56Bu, 0x35B5A8FAu, 0x42B2986Cu,
    0xDBBBC9D6u, 0xACBCF940u, 0x32D86CE3u, 0x45DF5C75u, 0xDCD60DCFu, 0xABD13D59u,
    0x26D930ACu, 0x51DE003Au, 0xC8D75180u, 0xBFD06116u, 0x21B4F4B5u, 0x56B3C423u,
    0xCFBA9599u, 0xB8BDA50Fu, 0x2802B89Eu, 0x5F058808u, 0xC60CD9B2u, 0xB10BE924u,
    0x2F6F7C87u, 0x58684C11u, 0xC1611DABu, 0xB6662D3Du, 0x76DC4190u, 0x01DB7106u,
    0x98D220BCu, 0xEFD5102Au, 0x71B18589u, 0x06B6B51Fu, 0x9FBFE4A5u, 0xE8B8D433u,
    0x7807C9A2u, 0x0F00F934u, 0x9609A88Eu, 0xE10E9818u, 0x7F6A0DBBu, 0x086D3D2Du,
    0x91646C97u, 0xE6635C01u, 0x6B6B51F4u, 0x1C6C6162u, 0x856530D8u, 0xF262004Eu,
    0x6C0695EDu, 0x1B01A57Bu, 0x8208F4C1u, 0xF50FC457u, 0x65B0D9C6u, 0x12B7E950u,
    0x8BBEB8EAu, 0xFCB9887Cu, 0x62DD1DDFu, 0x15DA2D49u, 0x8CD37CF3u, 0xFBD44C65u,
    0x4DB26158u, 0x3AB551CEu, 0xA3BC0074u, 0xD4BB30E2u, 0x4ADFA541u, 0x3DD895D7u,
    0xA4D1C46Du, 0xD3D6F4FBu, 0x4369E96Au, 0x346ED9FCu, 0xAD678846u, 0xDA60B8D0u,
    0x44042D73u, 0x33031DE5u, 0xAA0A4C5Fu, 0xDD0D7CC9u, 0x5005713Cu, 0x270241AAu,
    0xBE0B1010u, 0xC90C2086u, 0x5768B525u, 0x206F85B3u, 0xB966D409u, 0xCE61E49Fu,
    0x5EDEF90Eu, 0x29D9C998u, 0xB0D09822u, 0xC7D7A8B4u, 0x59B33D17u, 0x2EB40D81u,
    0xB7BD5C3Bu, 0xC0BA6CADu, 0xEDB88320u, 0x9ABFB3B6u, 0x03B6E20Cu, 0x74B1D29Au,
    0xEAD54739u, 0x9DD277AFu, 0x04DB2615u, 0x73DC1683u, 0xE3630B12u, 0x94643B84u,
    0x0D6D6A3Eu, 0x7A6A5AA8u, 0xE40ECF0Bu, 0x9309FF9Du, 0x0A00AE27u, 0x7D079EB1u,
    0xF00F9344u, 0x8708A3D2u, 0x1E01F268u, 0x6906C2FEu, 0xF762575Du, 0x806567CBu,
    0x196C3671u, 0x6E6B06E7u, 0xFED41B76u, 0x89D32BE0u, 0x10DA7A5Au, 0x67DD4ACCu,
    0xF9B9DF6Fu, 0x8EBEEFF9u, 0x17B7BE43u, 0x60B08ED5u, 0xD6D6A3E8u, 0xA1D1937Eu,
    0x38D8C2C4u, 0x4FDFF252u, 0xD1BB67F1u, 0xA6BC5767u, 0x3FB506DDu, 0x48B2364Bu,
    0xD80D2BDAu, 0xAF0A1B4Cu, 0x36034AF6u, 0x41047A60u, 0xDF60EFC3u, 0xA867DF55u,
    0x316E8EEFu, 0x4669BE79u, 0xCB61B38Cu, 0xBC66831Au, 0x256FD2A0u, 0x5268E236u,
    0xCC0C7795u, 0xBB0B4703u, 0x220216B9u, 0x5505262Fu, 0xC5BA3BBEu, 0xB2BD0B28u,
    0x2BB45A92u, 0x5CB36A04u, 0xC2D7FFA7u, 0xB5D0CF31u, 0x2CD99E8Bu, 0x5BDEAE1Du,
    0x9B64C2B0u, 0xEC63F226u, 0x756AA39Cu, 0x026D930Au, 0x9C0906A9u, 0xEB0E363Fu,
    0x72076785u, 0x05005713u, 0x95BF4A82u, 0xE2B87A14u, 0x7BB12BAEu, 0x0CB61B38u,
    0x92D28E9Bu, 0xE5D5BE0Du, 0x7CDCEFB7u, 0x0BDBDF21u, 0x86D3D2D4u, 0xF1D4E242u,
    0x68DDB3F8u, 0x1FDA836Eu, 0x81BE16CDu, 0xF6B9265Bu, 0x6FB077E1u, 0x18B74777u,
    0x88085AE6u, 0xFF0F6A70u, 0x66063BCAu, 0x11010B5Cu, 0x8F659EFFu, 0xF862AE69u,
    0x616BFFD3u, 0x166CCF45u, 0xA00AE278u, 0xD70DD2EEu, 0x4E048354u, 0x3903B3C2u,
    0xA7672661u, 0xD06016F7u, 0x4969474Du, 0x3E6E77DBu, 0xAED16A4Au, 0xD9D65ADCu,
    0x40DF0B66u, 0x37D83BF0u, 0xA9BCAE53u, 0xDEBB9EC5u, 0x47B2CF7Fu, 0x30B5FFE9u,
    0xBDBDF21Cu, 0xCABAC28Au, 0x53B39330u, 0x24B4A3A6u, 0xBAD03605u, 0xCDD70693u,
    0x54DE5729u, 0x23D967BFu, 0xB3667A2Eu, 0xC4614AB8u, 0x5D681B02u, 0x2A6F2B94u,
    0xB40BBE37u, 0xC30C8EA1u, 0x5A05DF1Bu, 0x2D02EF8Du,
};

GEMINI_API uint32_t gemini_crc32(uint32_t crc, const void *data, size_t size)
{
    const uint8_t *bytes = (const uint8_t *)data;
    size_t i;
    if (bytes == NULL) return crc;
    crc = ~crc;
    for (i = 0; i < size; i++) crc = gemini__crc_table[(crc ^ bytes[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

/* ---- Platform: allocation, logging, CPU features, file mapping, threads --------------------- */

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if !defined(GEMINI_NO_THREADS)
#include <pthread.h>
#include <sched.h>
#endif
#endif

/* Optional BLAS for float prefill (see "Build macros"): cblas_sgemm from the system's BLAS. */
#if defined(GEMINI_USE_BLAS)
#include <cblas.h>
#endif

#if !defined(GEMINI_NO_AVX2) && (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#define GEMINI__HAVE_AVX2 1
#include <cpuid.h>
#include <immintrin.h>
#define GEMINI__AVX2_TARGET __attribute__((target("avx2,fma,f16c")))
/* AVX-512 needs GCC 8+ or clang 8+ (the VNNI intrinsics); it is built on top of AVX2. */
#if !defined(GEMINI_NO_AVX512) && (__GNUC__ >= 8 || (defined(__clang__) && __clang_major__ >= 8))
#define GEMINI__HAVE_AVX512 1
#define GEMINI__AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define GEMINI__AVX512VNNI_TARGET \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
/* AMX (Intel's tile unit, AMX-TILE and AMX-INT8) needs GCC 11+ or clang 12+, and Linux, whose
   arch_prctl grants a process the tile state; the run-time check asks for it. */
#if !defined(GEMINI_NO_AMX) && defined(__x86_64__) && defined(__linux__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11))
#define GEMINI__HAVE_AMX 1
#define GEMINI__AMX_TARGET                                                                      \
    __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,"   \
                          "f16c")))
#endif
#endif
#endif

/* AArch64: Advanced SIMD (NEON) is part of the base architecture, so its kernels need no
   target attribute; f16 to f32 (vcvt_f32_f16) is baseline too. The SDOT instruction
   (dotprod, ARMv8.2 and an option there) is used where the compiler targets it already, or,
   on Linux with GCC 8+, behind a target attribute and a run-time check of HWCAP_ASIMDDP.
   (Clang's arm_neon.h long offered vdotq_s32 only under a -march that has it, so with clang
   the SDOT kernels need such a -march, e.g. armv8.2-a+dotprod.) */
#if !defined(GEMINI_NO_NEON) && defined(__aarch64__) && defined(__ARM_NEON) && \
    (defined(__GNUC__) || defined(__clang__))
#define GEMINI__HAVE_NEON 1
#include <arm_neon.h>
#define GEMINI__NEON_TARGET /* none: baseline */
#if !defined(GEMINI_NO_NEON_DOTPROD) && defined(__ARM_FEATURE_DOTPROD)
#define GEMINI__HAVE_NEON_DOTPROD 1
#define GEMINI__NEON_DOTPROD_TARGET
#elif !defined(GEMINI_NO_NEON_DOTPROD) && defined(__linux__) && !defined(__clang__) && \
    __GNUC__ >= 8
#define GEMINI__HAVE_NEON_DOTPROD 1
#define GEMINI__NEON_DOTPROD_RUNTIME 1 /* selected by getauxval(AT_HWCAP) */
#include <sys/auxv.h>
/* The target GCC's arm_neon.h declares vdotq_s32 under (a bare "+dotprod" may not inline it);
   safe, as only ARMv8.2 and later cores can have SDOT. */
#define GEMINI__NEON_DOTPROD_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
#endif

#if defined(GEMINI__HAVE_AVX2) || defined(GEMINI__HAVE_NEON)
#define GEMINI__INLINE __inline__ __attribute__((always_inline))
/* Full unrolling of a loop over a tile's few rows or tokens, so that its accumulators live in
   registers (GCC 8+ and clang read this pragma; -O2 alone does not unroll). */
#define GEMINI__UNROLL _Pragma("GCC unroll 4")
#define GEMINI__UNROLL16 _Pragma("GCC unroll 16")
#endif

/* Kernel levels of this build's architecture, lowest first; the best one the CPU, the OS and
   the build allow is used. GEMINI__CPU_TOP is the highest the architecture has. */
#define GEMINI__CPU_SCALAR 0
#define GEMINI__CPU_AVX2 1       /* x86: AVX2 + FMA + F16C */
#define GEMINI__CPU_AVX512 2     /* x86: AVX-512 F, BW, VL (+ AVX2, FMA, F16C) */
#define GEMINI__CPU_AVX512VNNI 3 /* x86: the above + AVX512_VNNI */
#define GEMINI__CPU_AMX 4        /* x86: the above + AMX-TILE and AMX-INT8 */
#define GEMINI__CPU_NEON 1       /* AArch64: Advanced SIMD */
#define GEMINI__CPU_NEON_DOTPROD 2 /* AArch64: the above + SDOT */
#if defined(__aarch64__)
#define GEMINI__CPU_TOP GEMINI__CPU_NEON_DOTPROD
#else
#define GEMINI__CPU_TOP GEMINI__CPU_AMX
#endif

#define GEMINI__MAX_CTX 32768
#define GEMINI__QUERY_BLOCK 256 /* queries per block of an encoder's attention */
#define GEMINI__MAX_GROUP 16    /* query heads attended together over one key-value head */
#define GEMINI__MAX_BATCH 4096
#define GEMINI__MAX_PATCHES 16384   /* rows of a vision tower (a 128 x 128 patch grid) */
#define GEMINI__MAX_IMAGES 64       /* image slots of a context */
#define GEMINI__MAX_THREADS 256

/* Tests set these before creating contexts to force a lower kernel level: the scalar kernels,
   or at most the level in gemini__cpu_limit (GEMINI__CPU_*). */
static int gemini__force_scalar = 0;
static int gemini__cpu_limit = GEMINI__CPU_TOP;

static gemini_log_callback gemini__default_log = NULL;
static void *gemini__default_log_user_data = NULL;

GEMINI_API void gemini_set_default_log(gemini_log_callback callback, void *user_data)
{
    gemini__default_log = callback;
    gemini__default_log_user_data = user_data;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 4, 5)))
#endif
static void gemini__log(gemini_log_callback callback, void *user_data, gemini_log_level level,
                        const char *format, ...)
{
    char message[512];
    va_list args;
    if (callback == NULL) return;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    callback(level, message, user_data);
}

/* malloc with a 64-byte aligned result; the raw pointer sits just below it. */
static void *gemini__aligned_malloc(size_t size)
{
    uint8_t *raw, *aligned;
    if (size > SIZE_MAX - 64 - sizeof(void *)) return NULL;
    raw = (uint8_t *)GEMINI_MALLOC(size + 64 + sizeof(void *));
    if (raw == NULL) return NULL;
    aligned = raw + sizeof(void *);
    aligned += (64 - ((uintptr_t)aligned & 63)) & 63;
    memcpy(aligned - sizeof(void *), &raw, sizeof raw);
    return aligned;
}

static void gemini__aligned_free(void *aligned)
{
    void *raw;
    if (aligned == NULL) return;
    memcpy(&raw, (uint8_t *)aligned - sizeof(void *), sizeof raw);
    GEMINI_FREE(raw);
}

/* n zeroed bytes (aligned), or NULL. */
static uint8_t *gemini__alloc_bytes(int64_t n)
{
    uint8_t *p;
    if (n < 0 || (uint64_t)n > SIZE_MAX / 2) return NULL;
    p = (uint8_t *)gemini__aligned_malloc((size_t)n);
    if (p != NULL) memset(p, 0, (size_t)n);
    return p;
}

/* A zeroed float array of n elements (aligned), or NULL. */
static float *gemini__alloc_floats(int64_t n)
{
    float *p;
    if (n < 0 || (uint64_t)n > SIZE_MAX / 4) return NULL;
    p = (float *)gemini__aligned_malloc((size_t)n * 4);
    if (p != NULL) memset(p, 0, (size_t)n * 4);
    return p;
}

/* Linux's HWCAP_ASIMDDP: the AT_HWCAP bit that says the CPU has SDOT/UDOT (AArch64). */
#define GEMINI__HWCAP_ASIMDDP (1ul << 20)

#ifdef GEMINI__HAVE_AMX
/* Linux's arch_prctl (system call 158 on x86-64), made directly: libc declares syscall() only
   under feature macros a C99 build may not have. */
static long gemini__arch_prctl(long code, long argument)
{
    long result;
    __asm__ __volatile__("syscall"
                         : "=a"(result)
                         : "0"(158L), "D"(code), "S"(argument)
                         : "rcx", "r11", "memory");
    return result;
}
#endif

/* The best kernel level of this CPU and build. x86: AVX2, FMA and F16C (cpuid leaves 1 and 7)
   with the OS saving YMM state (XCR0 bits 1-2); AVX-512 F/BW/VL (leaf 7 EBX) with the OS also
   saving the opmask and ZMM state (XCR0 bits 5-7); VNNI (leaf 7 ECX bit 11). AArch64: NEON
   always; dotprod where the build targets it, or where Linux reports it in AT_HWCAP. Then
   capped by the test hooks above. */
static int gemini__cpu_level(void)
{
    int level = GEMINI__CPU_SCALAR;
#ifdef GEMINI__HAVE_AVX2
    unsigned int eax, ebx, ecx, edx, xcr0_low, xcr0_high;
    int fma, osxsave, avx, f16c;
#endif
    if (gemini__force_scalar) return level;
#ifdef GEMINI__HAVE_NEON
    level = GEMINI__CPU_NEON;
#if defined(GEMINI__NEON_DOTPROD_RUNTIME)
    if (getauxval(AT_HWCAP) & GEMINI__HWCAP_ASIMDDP) level = GEMINI__CPU_NEON_DOTPROD;
#elif defined(GEMINI__HAVE_NEON_DOTPROD)
    level = GEMINI__CPU_NEON_DOTPROD;
#endif
#endif
#ifdef GEMINI__HAVE_AVX2
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return level;
    fma = (ecx >> 12) & 1;
    osxsave = (ecx >> 27) & 1;
    avx = (ecx >> 28) & 1;
    f16c = (ecx >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return level;
    __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    (void)xcr0_high;
    if ((xcr0_low & 6) != 6) return level; /* XMM and YMM state enabled */
    if (__get_cpuid_max(0, NULL) < 7) return level;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    if (!((ebx >> 5) & 1)) return level;
    level = GEMINI__CPU_AVX2;
#ifdef GEMINI__HAVE_AVX512
    /* F (bit 16), BW (30), VL (31); opmask, ZMM0-15 upper halves, ZMM16-31 */
    if ((ebx & 0xc0010000u) == 0xc0010000u && (xcr0_low & 0xe0) == 0xe0)
        level = (ecx >> 11) & 1 ? GEMINI__CPU_AVX512VNNI : GEMINI__CPU_AVX512;
#endif
#ifdef GEMINI__HAVE_AMX
    /* AMX-TILE and AMX-INT8 (leaf 7 EDX bits 24, 25), XTILECFG and XTILEDATA enabled (XCR0
       bits 17, 18), and Linux's permission for this process to use the tile data
       (ARCH_REQ_XCOMP_PERM = 0x1023 for XFEATURE_XTILEDATA = 18; asking again is harmless) */
    if (level == GEMINI__CPU_AVX512VNNI && ((edx >> 24) & 3) == 3 &&
        ((xcr0_low >> 17) & 3) == 3 && gemini__cpu_limit >= GEMINI__CPU_AMX &&
        gemini__arch_prctl(0x1023, 18) == 0)
        level = GEMINI__CPU_AMX;
#endif
#endif
    return level < gemini__cpu_limit ? level : gemini__cpu_limit;
}

static const char *gemini__cpu_level_name(int level)
{
#if defined(__aarch64__)
    static const char *const names[] = {"scalar", "neon", "neon dotprod"};
#else
    static const char *const names[] = {
        "scalar", "avx2 fma f16c", "avx512f avx512bw avx512vl avx2 fma f16c",
        "avx512f avx512bw avx512vl avx512vnni avx2 fma f16c",
        "amx-int8 avx512f avx512bw avx512vl avx512vnni avx2 fma f16c"
    };
#endif
    return names[level];
}

GEMINI_API const char *gemini_cpu_features(void)
{
    return gemini__cpu_level_name(gemini__cpu_level());
}

static int32_t gemini__online_cpus(void)
{
#if defined(_WIN32)
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    return info.dwNumberOfProcessors > 0 ? (int32_t)info.dwNumberOfProcessors : 1;
#elif defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    return n > GEMINI__MAX_THREADS ? GEMINI__MAX_THREADS : (int32_t)n;
#else
    return 1;
#endif
}

/* CPU numbers below this are read from Linux's CPU lists; higher ones are not counted. */
#define GEMINI__CPU_LIST_BITS 1024

#if defined(__linux__)
/* Marks in `set` (GEMINI__CPU_LIST_BITS bits) the CPUs of a Linux CPU list such as "0-3,8,10-11"
   that ends at a newline or the string's end; returns how many it marked that were not marked
   before, or -1 if the text is not such a list. */
static int32_t gemini__parse_cpu_list(const char *text, uint8_t *set)
{
    int32_t count = 0;
    for (;;) {
        long first, last, cpu;
        char *end;
        if (*text < '0' || *text > '9') return -1;
        first = strtol(text, &end, 10);
        last = first;
        if (*end == '-') {
            if (end[1] < '0' || end[1] > '9') return -1;
            last = strtol(end + 1, &end, 10);
        }
        if (last < first) return -1;
        for (cpu = first; cpu <= last && cpu < GEMINI__CPU_LIST_BITS; cpu++) {
            if (set[cpu >> 3] & (1u << (cpu & 7))) continue;
            set[cpu >> 3] = (uint8_t)(set[cpu >> 3] | (1u << (cpu & 7)));
            count++;
        }
        if (*end == ',') text = end + 1;
        else if (*end == '\n' || *end == '\0') return count;
        else return -1;
    }
}

/* Reads a small text file whole into text (capacity bytes with the terminating zero); 0 if it
   cannot, or if the file does not fit (a cut list would read as a shorter one). */
static int gemini__read_text(const char *path, char *text, size_t capacity)
{
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL) return 0;
    n = fread(text, 1, capacity - 1, f);
    fclose(f);
    text[n] = '\0';
    return n > 0 && n < capacity - 1;
}

/* The CPUs in a list file (a sysfs list, or the line after `key` in a /proc status file) into
   set; the count, or -1. */
static int32_t gemini__read_cpu_list(const char *path, const char *key, uint8_t *set)
{
    char text[8192];
    const char *list = text;
    memset(set, 0, GEMINI__CPU_LIST_BITS / 8);
    if (!gemini__read_text(path, text, sizeof text)) return -1;
    if (key != NULL) {
        list = strstr(text, key);
        if (list == NULL) return -1;
        list += strlen(key);
        while (*list == ' ' || *list == '\t') list++;
    }
    return gemini__parse_cpu_list(list, set);
}
#endif

/* The CPUs this process may run on (Linux: the online CPUs, /sys/devices/system/cpu/online, in
   its affinity, the Cpus_allowed_list of /proc/self/status, which may also name CPUs that are
   not online; elsewhere the online CPUs), at most GEMINI__MAX_THREADS; with `set` non-NULL,
   the set of them (GEMINI__CPU_LIST_BITS bits; all marked off Linux, where they are unknown). */
static int32_t gemini__usable_cpus(uint8_t *set)
{
    int32_t online = gemini__online_cpus();
#if defined(__linux__)
    uint8_t allowed[GEMINI__CPU_LIST_BITS / 8], up[GEMINI__CPU_LIST_BITS / 8];
    int32_t count = 0, i;
    if (gemini__read_cpu_list("/proc/self/status", "\nCpus_allowed_list:", allowed) > 0 &&
        gemini__read_cpu_list("/sys/devices/system/cpu/online", NULL, up) > 0) {
        for (i = 0; i < GEMINI__CPU_LIST_BITS / 8; i++) {
            uint8_t both = (uint8_t)(allowed[i] & up[i]);
            allowed[i] = both;
            for (; both != 0; both = (uint8_t)(both & (both - 1))) count++;
        }
    }
    if (count > 0) {
        if (set != NULL) memcpy(set, allowed, sizeof allowed);
        return count < GEMINI__MAX_THREADS ? count : GEMINI__MAX_THREADS;
    }
#endif
    if (set != NULL) memset(set, 0xff, GEMINI__CPU_LIST_BITS / 8);
    return online;
}

/* The default thread count: one a physical core this process may run on. Decoding streams
   weights from memory, and a second thread on a core's other hardware thread only competes
   for the same load ports. Linux: usable CPUs that are the lowest usable CPU of their core
   (topology/thread_siblings_list); elsewhere, or if any of that is unreadable, usable CPUs. */
static int32_t gemini__physical_cores(void)
{
    uint8_t usable[GEMINI__CPU_LIST_BITS / 8];
    int32_t n_usable = gemini__usable_cpus(usable);
#if defined(__linux__)
    int32_t cpu, cores = 0;
    for (cpu = 0; cpu < GEMINI__CPU_LIST_BITS; cpu++) {
        char path[96];
        uint8_t siblings[GEMINI__CPU_LIST_BITS / 8];
        int32_t sibling;
        if (!(usable[cpu >> 3] & (1u << (cpu & 7)))) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list",
                 (int)cpu);
        if (gemini__read_cpu_list(path, NULL, siblings) < 1) return n_usable;
        for (sibling = 0; sibling < cpu; sibling++)
            if ((siblings[sibling >> 3] & usable[sibling >> 3]) & (1u << (sibling & 7))) break;
        if (sibling == cpu) cores++;
    }
    if (cores > 0) return cores < n_usable ? cores : n_usable;
#endif
    return n_usable;
}

/* The bytes of a whole file: mapped read-only where possible, else read into memory.
   On success *allocation is non-NULL if the bytes must be released with gemini__aligned_free,
   and NULL if they are a mapping to release with gemini__unmap_file. */
static gemini_result gemini__map_file(const char *path, const uint8_t **out_data,
                                      size_t *out_size, void **allocation)
{
#if defined(_WIN32)
    HANDLE file, mapping;
    LARGE_INTEGER file_size;
    uint8_t *data;
    size_t size, done = 0;
    *allocation = NULL;
    file = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                       FILE_ATTRIBUTE_NORMAL, NULL);
    if (file == INVALID_HANDLE_VALUE)
        return gemini__fail(GEMINI_ERR_IO, "cannot open '%s'", path);
    if (!GetFileSizeEx(file, &file_size) || file_size.QuadPart < 64 ||
        (uint64_t)file_size.QuadPart > (uint64_t)SIZE_MAX) {
        CloseHandle(file);
        return gemini__fail(GEMINI_ERR_FORMAT, "'%s': too small or too large to be a model",
                            path);
    }
    size = (size_t)file_size.QuadPart;
    mapping = CreateFileMappingA(file, NULL, PAGE_READONLY, 0, 0, NULL);
    if (mapping != NULL) {
        data = (uint8_t *)MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
        CloseHandle(mapping);
        if (data != NULL) {
            CloseHandle(file);
            *out_data = data;
            *out_size = size;
            return GEMINI_OK;
        }
    }
    data = (uint8_t *)gemini__aligned_malloc(size);
    if (data == NULL) {
        CloseHandle(file);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "'%s': cannot hold %llu bytes", path,
                            (unsigned long long)size);
    }
    while (done < size) {
        DWORD want = size - done > 0x40000000u ? 0x40000000u : (DWORD)(size - done), got = 0;
        if (!ReadFile(file, data + done, want, &got, NULL) || got == 0) {
            CloseHandle(file);
            gemini__aligned_free(data);
            return gemini__fail(GEMINI_ERR_IO, "'%s': read failed", path);
        }
        done += got;
    }
    CloseHandle(file);
    *allocation = data;
    *out_data = data;
    *out_size = size;
    return GEMINI_OK;
#else
    struct stat info;
    uint8_t *data;
    size_t size, done = 0;
    void *mapped;
    int fd;
    *allocation = NULL;
    fd = open(path, O_RDONLY);
    if (fd < 0) return gemini__fail(GEMINI_ERR_IO, "cannot open '%s'", path);
    if (fstat(fd, &info) != 0) {
        close(fd);
        return gemini__fail(GEMINI_ERR_IO, "cannot stat '%s'", path);
    }
    if (info.st_size < 64 || (uint64_t)info.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return gemini__fail(GEMINI_ERR_FORMAT, "'%s': too small or too large to be a model",
                            path);
    }
    size = (size_t)info.st_size;
    mapped = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped != MAP_FAILED) {
        close(fd);
        *out_data = (const uint8_t *)mapped;
        *out_size = size;
        return GEMINI_OK;
    }
    data = (uint8_t *)gemini__aligned_malloc(size);
    if (data == NULL) {
        close(fd);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "'%s': cannot hold %llu bytes", path,
                            (unsigned long long)size);
    }
    while (done < size) {
        size_t want = size - done > ((size_t)1 << 30) ? ((size_t)1 << 30) : size - done;
        ssize_t got = read(fd, data + done, want);
        if (got <= 0) {
            close(fd);
            gemini__aligned_free(data);
            return gemini__fail(GEMINI_ERR_IO, "'%s': read failed", path);
        }
        done += (size_t)got;
    }
    close(fd);
    *allocation = data;
    *out_data = data;
    *out_size = size;
    return GEMINI_OK;
#endif
}

static void gemini__unmap_file(const uint8_t *data, size_t size)
{
#if defined(_WIN32)
    (void)size;
    UnmapViewOfFile(data);
#else
    munmap((void *)(uintptr_t)data, size);
#endif
}

/* A fixed pool of worker threads. run() cuts a task into parts (GEMINI__POOL_PARTS per thread)
   that the caller and the workers take one at a time until none is left, and returns when
   every part is done. A thread that is descheduled (shared cores, or more threads than
   cores) then delays only the part it holds: the others take the rest, and run() does not wait
   for a thread that took no part.
   A decode step runs ~150 tasks of tens of microseconds each, so waking a sleeping thread for
   every one (a futex call each way) costs more than the work on small models. Threads
   therefore spin for a while (GEMINI__POOL_SPINS polls with a pause, ~100 us) before they
   sleep on a condition variable, and yield the core every GEMINI__POOL_YIELD_EVERY polls so
   that a spinning thread gives way to one that has work. The spin and the part counter use
   GCC/clang atomics; other compilers get one part per thread under the lock. */
typedef void (*gemini__task_fn)(void *task, int part, int n_parts, int thread_index);

typedef struct gemini__pool {
    int n_threads;              /* including the caller */
    gemini__task_fn fn;         /* the current task; written before its ticket */
    void *task;
    uint64_t ticket;            /* generation << 32 | parts << 16 | next part to take */
    int parts_done;
    int caller_sleeping;        /* run() waits on `done` */
    int quit;
#if !defined(GEMINI_NO_THREADS) && defined(_WIN32)
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE start, done;
    HANDLE *threads;            /* (n_threads - 1) */
#elif !defined(GEMINI_NO_THREADS)
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    pthread_t *threads;         /* (n_threads - 1) */
#endif
} gemini__pool;

#define GEMINI__TICKET_GENERATION(t) ((t) >> 32)
#define GEMINI__TICKET_PARTS(t) ((int)(((t) >> 16) & 0xffff))
#define GEMINI__TICKET_NEXT(t) ((int)((t) & 0xffff))

#if !defined(GEMINI_NO_THREADS)
typedef struct gemini__worker_start {
    gemini__pool *pool;
    int index;
} gemini__worker_start;

#if defined(_WIN32)
#define GEMINI__LOCK(p) EnterCriticalSection(&(p)->lock)
#define GEMINI__UNLOCK(p) LeaveCriticalSection(&(p)->lock)
#define GEMINI__WAIT(p, c) SleepConditionVariableCS(&(p)->c, &(p)->lock, INFINITE)
#define GEMINI__WAKE_ALL(p, c) WakeAllConditionVariable(&(p)->c)
#define GEMINI__YIELD() SwitchToThread()
#else
#define GEMINI__LOCK(p) pthread_mutex_lock(&(p)->lock)
#define GEMINI__UNLOCK(p) pthread_mutex_unlock(&(p)->lock)
#define GEMINI__WAIT(p, c) pthread_cond_wait(&(p)->c, &(p)->lock)
#define GEMINI__WAKE_ALL(p, c) pthread_cond_broadcast(&(p)->c)
#define GEMINI__YIELD() sched_yield()
#endif

/* GEMINI__POOL_LOCK_ONLY (tests only) takes the path other compilers get, so that it runs. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(GEMINI__POOL_LOCK_ONLY)
#define GEMINI__POOL_ATOMIC 1
/* Sequentially consistent, so that "set my flag, then read yours" on both sides of a sleep
   never lets both miss each other's write. */
#define GEMINI__LOAD(p) __atomic_load_n(p, __ATOMIC_SEQ_CST)
#define GEMINI__STORE(p, v) __atomic_store_n(p, v, __ATOMIC_SEQ_CST)
#define GEMINI__ADD(p, v) __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST)
#define GEMINI__CAS(p, expected, desired) \
    __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define GEMINI__POOL_PARTS 8
#define GEMINI__POOL_SPINS 2048
#define GEMINI__POOL_YIELD_EVERY 16
#if defined(__x86_64__) || defined(__i386__)
#define GEMINI__PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define GEMINI__PAUSE() __asm__ __volatile__("yield")
#else
#define GEMINI__PAUSE() ((void)0)
#endif
#else
/* Without atomics every access below is made under the lock, and each thread takes the part
   of its own index. */
#define GEMINI__LOAD(p) (*(p))
#define GEMINI__STORE(p, v) (*(p) = (v))
#define GEMINI__ADD(p, v) (*(p) += (v))
#define GEMINI__POOL_PARTS 1
#define GEMINI__POOL_SPINS 0
#define GEMINI__POOL_YIELD_EVERY 16
#define GEMINI__PAUSE() ((void)0)
#endif

/* One poll of a spin: a pause, or every so often a yield of the core. */
static void gemini__spin_pause(int poll)
{
    if (poll % GEMINI__POOL_YIELD_EVERY == 0) GEMINI__YIELD();
    else GEMINI__PAUSE();
}

/* Takes and runs parts of the task whose ticket generation is `generation` until none is left
   (or a newer task has replaced it). */
static void gemini__pool_work(gemini__pool *pool, uint64_t generation, int thread_index)
{
#if defined(GEMINI__POOL_ATOMIC)
    uint64_t ticket = GEMINI__LOAD(&pool->ticket);
    for (;;) {
        int part, n_parts;
        if (GEMINI__TICKET_GENERATION(ticket) != generation) return;
        part = GEMINI__TICKET_NEXT(ticket);
        n_parts = GEMINI__TICKET_PARTS(ticket);
        if (part >= n_parts) return;
        if (!GEMINI__CAS(&pool->ticket, &ticket, ticket + 1)) continue; /* ticket reloaded */
        /* the part is ours, so this task cannot finish, nor fn and task change, before it does */
        pool->fn(pool->task, part, n_parts, thread_index);
        ticket++;
        if (GEMINI__ADD(&pool->parts_done, 1) == n_parts && thread_index != 0 &&
            GEMINI__LOAD(&pool->caller_sleeping)) {
            GEMINI__LOCK(pool);
            GEMINI__WAKE_ALL(pool, done);
            GEMINI__UNLOCK(pool);
        }
    }
#else
    GEMINI__LOCK(pool);
    if (GEMINI__TICKET_GENERATION(pool->ticket) == generation) {
        gemini__task_fn fn = pool->fn;
        void *task = pool->task;
        int n_parts = GEMINI__TICKET_PARTS(pool->ticket); /* one per thread */
        GEMINI__UNLOCK(pool);
        fn(task, thread_index, n_parts, thread_index);
        GEMINI__LOCK(pool);
        if (++pool->parts_done == n_parts) GEMINI__WAKE_ALL(pool, done);
    }
    GEMINI__UNLOCK(pool);
#endif
}

static void gemini__worker_loop(gemini__pool *pool, int index)
{
    uint64_t seen = 0, generation;
    for (;;) {
        int poll;
        for (poll = 1; poll <= GEMINI__POOL_SPINS; poll++) {
            if (GEMINI__TICKET_GENERATION(GEMINI__LOAD(&pool->ticket)) != seen ||
                GEMINI__LOAD(&pool->quit))
                break;
            gemini__spin_pause(poll);
        }
        if (poll > GEMINI__POOL_SPINS) {
            GEMINI__LOCK(pool);
            while (GEMINI__TICKET_GENERATION(GEMINI__LOAD(&pool->ticket)) == seen &&
                   !GEMINI__LOAD(&pool->quit))
                GEMINI__WAIT(pool, start);
            GEMINI__UNLOCK(pool);
        }
        if (GEMINI__LOAD(&pool->quit)) return;
        generation = GEMINI__TICKET_GENERATION(GEMINI__LOAD(&pool->ticket));
        gemini__pool_work(pool, generation, index);
        seen = generation;
    }
}

#if defined(_WIN32)
static DWORD WINAPI gemini__worker_main(LPVOID arg)
#else
static void *gemini__worker_main(void *arg)
#endif
{
    gemini__worker_start start = *(gemini__worker_start *)arg;
    GEMINI_FREE(arg);
    gemini__worker_loop(start.pool, start.index);
    return 0;
}
#endif /* !GEMINI_NO_THREADS */

#ifndef GEMINI__POOL_PARTS
#define GEMINI__POOL_PARTS 1 /* GEMINI_NO_THREADS: the caller alone, one part */
#endif

/* The threads a task's n_parts stand for (run() hands out GEMINI__POOL_PARTS a thread). */
static int gemini__parts_threads(int n_parts)
{
    return n_parts / GEMINI__POOL_PARTS > 0 ? n_parts / GEMINI__POOL_PARTS : 1;
}

/* A context starts at most one thread a usable CPU (gemini__usable_cpus): a thread past them
   holds the parts it took until the OS gives it a CPU, while the others spin waiting for them
   (Zen 4, 2 cores, q4_0 decode: 8 threads 20% slower than 2). Tests set this to 1 to run
   thread counts past the CPUs, whose results must not differ. */
static int gemini__threads_past_cpus = 0;

/* Starts up to n_threads - 1 workers; returns how many threads (with the caller) it has. */
static int gemini__pool_start(gemini__pool *pool, int n_threads)
{
    memset(pool, 0, sizeof *pool);
    pool->n_threads = 1;
#if !defined(GEMINI_NO_THREADS)
    if (n_threads > 1) {
        int i;
#if defined(_WIN32)
        pool->threads = (HANDLE *)GEMINI_MALLOC(sizeof(HANDLE) * (size_t)(n_threads - 1));
        if (pool->threads == NULL) return 1;
        InitializeCriticalSection(&pool->lock);
        InitializeConditionVariable(&pool->start);
        InitializeConditionVariable(&pool->done);
#else
        pool->threads = (pthread_t *)GEMINI_MALLOC(sizeof(pthread_t) * (size_t)(n_threads - 1));
        if (pool->threads == NULL) return 1;
        pthread_mutex_init(&pool->lock, NULL);
        pthread_cond_init(&pool->start, NULL);
        pthread_cond_init(&pool->done, NULL);
#endif
        for (i = 1; i < n_threads; i++) {
            gemini__worker_start *start =
                (gemini__worker_start *)GEMINI_MALLOC(sizeof(gemini__worker_start));
            int ok;
            if (start == NULL) break;
            start->pool = pool;
            start->index = i;
#if defined(_WIN32)
            pool->threads[i - 1] = CreateThread(NULL, 0, gemini__worker_main, start, 0, NULL);
            ok = pool->threads[i - 1] != NULL;
#else
            ok = pthread_create(&pool->threads[i - 1], NULL, gemini__worker_main, start) == 0;
#endif
            if (!ok) {
                GEMINI_FREE(start);
                break;
            }
            pool->n_threads = i + 1;
        }
    }
#else
    (void)n_threads;
#endif
    return pool->n_threads;
}

static void gemini__pool_run(gemini__pool *pool, gemini__task_fn fn, void *task)
{
    (void)pool;
#if !defined(GEMINI_NO_THREADS)
    if (pool->n_threads > 1) {
        int n_parts = pool->n_threads * GEMINI__POOL_PARTS, poll;
        uint64_t generation;
        GEMINI__LOCK(pool);
        pool->fn = fn;
        pool->task = task;
        GEMINI__STORE(&pool->parts_done, 0);
        generation = GEMINI__TICKET_GENERATION(pool->ticket) + 1;
        GEMINI__STORE(&pool->ticket, generation << 32 | (uint64_t)n_parts << 16);
        GEMINI__WAKE_ALL(pool, start);
        GEMINI__UNLOCK(pool);

        gemini__pool_work(pool, generation, 0);

        for (poll = 1; poll <= GEMINI__POOL_SPINS; poll++) {
            if (GEMINI__LOAD(&pool->parts_done) == n_parts) return;
            gemini__spin_pause(poll);
        }
        GEMINI__LOCK(pool);
        GEMINI__STORE(&pool->caller_sleeping, 1);
        while (GEMINI__LOAD(&pool->parts_done) != n_parts) GEMINI__WAIT(pool, done);
        GEMINI__STORE(&pool->caller_sleeping, 0);
        GEMINI__UNLOCK(pool);
        return;
    }
#endif
    fn(task, 0, 1, 0);
}

static void gemini__pool_stop(gemini__pool *pool)
{
#if !defined(GEMINI_NO_THREADS)
    int i;
    if (pool->threads == NULL) return;
    if (pool->n_threads > 1) {
        GEMINI__LOCK(pool);
        GEMINI__STORE(&pool->quit, 1);
        GEMINI__WAKE_ALL(pool, start);
        GEMINI__UNLOCK(pool);
    }
    for (i = 1; i < pool->n_threads; i++) {
#if defined(_WIN32)
        WaitForSingleObject(pool->threads[i - 1], INFINITE);
        CloseHandle(pool->threads[i - 1]);
#else
        pthread_join(pool->threads[i - 1], NULL);
#endif
    }
#if defined(_WIN32)
    DeleteCriticalSection(&pool->lock);
#else
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->start);
    pthread_cond_destroy(&pool->done);
#endif
    GEMINI_FREE(pool->threads);
    pool->threads = NULL;
#endif
    pool->n_threads = 1;
}

/* The part [*begin, *end) of n items that part `index` of n_parts covers, every part but the
   last a multiple of `align` items long. */
static void gemini__split_aligned(int64_t n, int index, int n_parts, int64_t align,
                                  int64_t *begin, int64_t *end)
{
    int64_t per_part = (n + n_parts - 1) / n_parts;
    per_part = (per_part + align - 1) / align * align;
    *begin = per_part * index < n ? per_part * index : n;
    *end = *begin + per_part < n ? *begin + per_part : n;
}

/* The same, any lengths. */
static void gemini__split(int64_t n, int index, int n_parts, int64_t *begin, int64_t *end)
{
    gemini__split_aligned(n, index, n_parts, 1, begin, end);
}

/* ---- Model reader (format.md) ---------------------------------------------------------------- */

#define GEMINI__MAGIC "GMNI"
#define GEMINI__FORMAT_VERSION 1
#define GEMINI__MAX_NAME 256
#define GEMINI__MAX_STRING (16u << 20)

/* One metadata record; pointers into the file. */
typedef struct gemini__meta {
    const char *key;
    uint32_t key_length;
    uint32_t type;
    uint32_t elem_type;             /* arrays only */
    uint64_t count;                 /* arrays: elements; else 1 */
    const uint8_t *value;
    uint64_t value_bytes;
} gemini__meta;

/* One tensor record; pointers into the file. */
typedef struct gemini__tensor {
    const char *name;
    uint32_t name_length;
    uint32_t type;
    uint32_t n_dims;
    int64_t dims[4];                /* outermost first; unused entries 1 */
    uint64_t offset, size;
    uint32_t crc32;
    const uint8_t *data;
} gemini__tensor;

/* The weights of one transformer block, Gemma's, Whisper's (decoder or encoder) or SigLIP's. A
   NULL member is a part the block does not have. Gemma: RMSNorm vectors hold 1 + w; no biases;
   GeGLU MLP (ffn_gate set). Whisper: LayerNorm (weight and bias); biases on q, v, out and the
   MLP (k has none); a plain exact-GELU MLP (ffn_gate NULL); decoder blocks add cross-attention.
   SigLIP: as Whisper's encoder with a bias on k too and a tanh-GELU MLP. */
typedef struct gemini__layer {
    const float *attn_norm;         /* (d) */
    const float *attn_norm_b;       /* (d) LayerNorm bias, or NULL (RMSNorm) */
    const gemini__tensor *attn_q;   /* (H*D, d) */
    const float *attn_q_b;          /* (H*D) or NULL */
    const gemini__tensor *attn_k;   /* (Hkv*D, d) */
    const float *attn_k_b;          /* (Hkv*D) or NULL */
    const gemini__tensor *attn_v;   /* (Hkv*D, d) */
    const float *attn_v_b;          /* (Hkv*D) or NULL */
    const float *attn_q_norm;       /* (D) or NULL */
    const float *attn_k_norm;       /* (D) or NULL */
    const gemini__tensor *attn_out; /* (d, H*D) */
    const float *attn_out_b;        /* (d) or NULL */
    const float *post_attn_norm;    /* (d) or NULL */
    const float *cross_norm;        /* (d) or NULL: cross-attention (Whisper decoder) */
    const float *cross_norm_b;
    const gemini__tensor *cross_q;  /* (d, d) */
    const float *cross_q_b;
    const gemini__tensor *cross_k;  /* (d, d), applied to the encoder output */
    const gemini__tensor *cross_v;
    const float *cross_v_b;
    const gemini__tensor *cross_out;
    const float *cross_out_b;
    const float *ffn_norm;          /* (d) */
    const float *ffn_norm_b;        /* (d) or NULL */
    const gemini__tensor *ffn_gate; /* (F, d) or NULL (plain MLP) */
    const gemini__tensor *ffn_up;   /* (F, d) */
    const float *ffn_up_b;          /* (F) or NULL */
    const gemini__tensor *ffn_down; /* (d, F) */
    const float *ffn_down_b;        /* (d) or NULL */
    const float *post_ffn_norm;     /* (d) or NULL */
    int gelu_tanh;                  /* plain MLP: tanh-approximated GELU, else exact */
    int is_local;                   /* sliding-window attention */
} gemini__layer;

struct gemini_model {
    const uint8_t *bytes;           /* the whole file */
    size_t size;
    void *allocation;               /* aligned block we own, or NULL */
    int mapped;                     /* bytes is a file mapping */

    gemini_model_hparams hparams;

    gemini__meta *metas;            /* (n_metas) file order */
    const gemini__meta **metas_by_key; /* (n_metas) sorted */
    int64_t n_metas;
    gemini__tensor *tensors;        /* (n_tensors) file order */
    const gemini__tensor **tensors_by_name; /* (n_tensors) sorted */
    int64_t n_tensors;

    const gemini__tensor *token_embd; /* (vocab, d) */
    const float *output_norm;       /* (d) */
    const float *output_norm_b;     /* (d) or NULL (RMSNorm) */
    const gemini__tensor *output;   /* (vocab, d): token_embd when tied */
    gemini__layer *layers;          /* (L) */

    /* Whisper only: learned decoder positions and the audio encoder */
    const float *pos_embd;          /* (max_position, d) */
    const gemini__tensor *enc_conv1; /* (d, n_mels * 3) */
    const float *enc_conv1_b;
    const gemini__tensor *enc_conv2; /* (d, d * 3), stride 2 */
    const float *enc_conv2_b;
    const float *enc_pos;           /* (audio_ctx, d) */
    gemini__layer *enc_layers;      /* (encoder_layers) */
    const float *enc_output_norm, *enc_output_norm_b;

    /* PaliGemma and Gemma 3 only: the SigLIP tower and the projector (format.md §8) */
    const gemini__tensor *vis_patch; /* (Dv, 3 * P * P) the patch convolution as a matrix */
    const float *vis_patch_b;       /* (Dv) */
    const float *vis_pos;           /* (image_patches, Dv) learned positions */
    gemini__layer *vis_layers;      /* (vision_layers) */
    const float *vis_post_norm, *vis_post_norm_b; /* (Dv) */
    const float *mm_soft_norm;      /* (Dv) Gemma 3: RMSNorm (1 + w) of the pooled rows */
    const gemini__tensor *mm_proj;  /* (d, Dv) */
    const float *mm_proj_b;         /* (d) PaliGemma; NULL for Gemma 3 */
    int32_t rope_offset;            /* RoPE position of decoder position 0 (PaliGemma: 1) */

    int has_tokenizer;
    gemini_tokenizer_desc tokenizer;
    const char **piece_pointers;    /* (n_pieces) */
    uint32_t *piece_lengths;        /* (n_pieces) */
    float *scores;                  /* (n_pieces) */
    int32_t *merges;                /* (2 * n_merges) byte-bpe merges, aligned copy */
};

/* A bounded reader over the directory bytes. */
typedef struct gemini__cursor {
    const uint8_t *p;
    uint64_t left;
} gemini__cursor;

static uint32_t gemini__le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t gemini__le64(const uint8_t *p)
{
    return (uint64_t)gemini__le32(p) | ((uint64_t)gemini__le32(p + 4) << 32);
}

static int gemini__take(gemini__cursor *c, uint64_t n, const uint8_t **out)
{
    if (n > c->left) return 0;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 1;
}

static int gemini__take_u32(gemini__cursor *c, uint32_t *out)
{
    const uint8_t *p;
    if (!gemini__take(c, 4, &p)) return 0;
    *out = gemini__le32(p);
    return 1;
}

static int gemini__take_u64(gemini__cursor *c, uint64_t *out)
{
    const uint8_t *p;
    if (!gemini__take(c, 8, &p)) return 0;
    *out = gemini__le64(p);
    return 1;
}

/* A string: u32 length, then bytes; refuses lengths above max. 0 on failure. */
static int gemini__take_string(gemini__cursor *c, uint32_t max, const char **out,
                               uint32_t *length)
{
    const uint8_t *p;
    if (!gemini__take_u32(c, length) || *length > max) return 0;
    if (!gemini__take(c, *length, &p)) return 0;
    *out = (const char *)p;
    return 1;
}

/* Bytes of one fixed-size metadata value type; 0 for strings, arrays and unknown types. */
static uint32_t gemini__meta_scalar_bytes(uint32_t type)
{
    switch (type) {
    case GEMINI_META_U8: case GEMINI_META_I8: case GEMINI_META_BOOL: return 1;
    case GEMINI_META_U16: case GEMINI_META_I16: return 2;
    case GEMINI_META_U32: case GEMINI_META_I32: case GEMINI_META_F32: return 4;
    case GEMINI_META_U64: case GEMINI_META_I64: case GEMINI_META_F64: return 8;
    default: return 0;
    }
}

/* Reads one value of `type` (arrays of `elem_type`), checking it all; fills value pointers. */
static gemini_result gemini__parse_value(gemini__cursor *c, gemini__meta *m, const char *where)
{
    const uint8_t *start = c->p;
    const uint8_t *bytes;
    uint64_t i;
    uint32_t length, scalar;
    const char *text;

    m->count = 1;
    m->elem_type = 0;
    if (m->type == GEMINI_META_STRING) {
        if (!gemini__take_string(c, GEMINI__MAX_STRING, &text, &length))
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: string too long or truncated", where);
        m->value = (const uint8_t *)text;
        m->value_bytes = length;
        return GEMINI_OK;
    }
    if (m->type == GEMINI_META_ARRAY) {
        if (!gemini__take_u32(c, &m->elem_type) || !gemini__take_u64(c, &m->count))
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: array header truncated", where);
        start = c->p;
        if (m->elem_type == GEMINI_META_STRING) {
            if (m->count > c->left / 4)
                return gemini__fail(GEMINI_ERR_FORMAT, "%s: %llu strings cannot fit", where,
                                    (unsigned long long)m->count);
            for (i = 0; i < m->count; i++) {
                if (!gemini__take_string(c, GEMINI__MAX_STRING, &text, &length))
                    return gemini__fail(GEMINI_ERR_FORMAT, "%s: string %llu bad or truncated",
                                        where, (unsigned long long)i);
            }
        } else {
            scalar = gemini__meta_scalar_bytes(m->elem_type);
            if (scalar == 0)
                return gemini__fail(GEMINI_ERR_FORMAT, "%s: bad array element type %u", where,
                                    m->elem_type);
            if (m->count > c->left / scalar || !gemini__take(c, m->count * scalar, &bytes))
                return gemini__fail(GEMINI_ERR_FORMAT, "%s: %llu elements cannot fit", where,
                                    (unsigned long long)m->count);
            if (m->elem_type == GEMINI_META_BOOL) {
                for (i = 0; i < m->count; i++)
                    if (bytes[i] > 1)
                        return gemini__fail(GEMINI_ERR_FORMAT, "%s: bool %llu is %u", where,
                                            (unsigned long long)i, bytes[i]);
            }
        }
        m->value = start;
        m->value_bytes = (uint64_t)(c->p - start);
        return GEMINI_OK;
    }
    scalar = gemini__meta_scalar_bytes(m->type);
    if (scalar == 0) 
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: bad value type %u", where, m->type);
    if (!gemini__take(c, scalar, &bytes))
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: value truncated", where);
    if (m->type == GEMINI_META_BOOL && bytes[0] > 1)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: bool value %u", where, bytes[0]);
    m->value = bytes;
    m->value_bytes = scalar;
    return GEMINI_OK;
}

/* Orders byte strings by content, then length. */
static int gemini__compare_names(const char *a, uint32_t a_length, const char *b,
                                 uint32_t b_length)
{
    int order = memcmp(a, b, a_length < b_length ? a_length : b_length);
    if (order != 0) return order;
    return a_length < b_length ? -1 : a_length > b_length;
}

static int gemini__compare_metas(const void *a, const void *b)
{
    const gemini__meta *x = *(const gemini__meta *const *)a;
    const gemini__meta *y = *(const gemini__meta *const *)b;
    return gemini__compare_names(x->key, x->key_length, y->key, y->key_length);
}

static int gemini__compare_tensor_names(const void *a, const void *b)
{
    const gemini__tensor *x = *(const gemini__tensor *const *)a;
    const gemini__tensor *y = *(const gemini__tensor *const *)b;
    return gemini__compare_names(x->name, x->name_length, y->name, y->name_length);
}

static int gemini__compare_tensor_offsets(const void *a, const void *b)
{
    const gemini__tensor *x = *(const gemini__tensor *const *)a;
    const gemini__tensor *y = *(const gemini__tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static const gemini__meta *gemini__find_meta(const gemini_model *model, const char *key)
{
    size_t length = strlen(key);
    int64_t lo = 0, hi = model->n_metas;
    if (length > GEMINI__MAX_NAME) return NULL;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const gemini__meta *m = model->metas_by_key[mid];
        int order = gemini__compare_names(m->key, m->key_length, key, (uint32_t)length);
        if (order == 0) return m;
        if (order < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static const gemini__tensor *gemini__find_tensor(const gemini_model *model, const char *name)
{
    size_t length = strlen(name);
    int64_t lo = 0, hi = model->n_tensors;
    if (length > GEMINI__MAX_NAME) return NULL;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const gemini__tensor *t = model->tensors_by_name[mid];
        int order = gemini__compare_names(t->name, t->name_length, name, (uint32_t)length);
        if (order == 0) return t;
        if (order < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* An integer-typed (or bool) value as int64; 0 if the type is not an integer or it overflows. */
static int gemini__meta_scalar_int(uint32_t type, const uint8_t *p, int64_t *out)
{
    uint64_t u;
    switch (type) {
    case GEMINI_META_U8: case GEMINI_META_BOOL: *out = p[0]; return 1;
    case GEMINI_META_I8: *out = (int8_t)p[0]; return 1;
    case GEMINI_META_U16: *out = gemini__read_u16(p); return 1;
    case GEMINI_META_I16: *out = (int16_t)gemini__read_u16(p); return 1;
    case GEMINI_META_U32: *out = gemini__le32(p); return 1;
    case GEMINI_META_I32: *out = (int32_t)gemini__le32(p); return 1;
    case GEMINI_META_U64:
        u = gemini__le64(p);
        if (u > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)u;
        return 1;
    case GEMINI_META_I64:
        u = gemini__le64(p);
        *out = u > (uint64_t)INT64_MAX ? -(int64_t)(~u) - 1 : (int64_t)u;
        return 1;
    default: return 0;
    }
}

static int gemini__meta_scalar_float(uint32_t type, const uint8_t *p, double *out)
{
    if (type == GEMINI_META_F32) {
        *out = gemini__bits_f32(gemini__le32(p));
        return 1;
    }
    if (type == GEMINI_META_F64) {
        uint64_t bits = gemini__le64(p);
        double value;
        memcpy(&value, &bits, sizeof value);
        *out = value;
        return 1;
    }
    return 0;
}

/* Required-key readers: MISSING_KEY names an absent key, FORMAT a wrong type or range. */
static gemini_result gemini__require_int(const gemini_model *model, const char *key, int64_t lo,
                                         int64_t hi, int32_t *out)
{
    const gemini__meta *m = gemini__find_meta(model, key);
    int64_t value;
    if (m == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "missing required key '%s'", key);
    if (m->type == GEMINI_META_BOOL || !gemini__meta_scalar_int(m->type, m->value, &value))
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': not an integer (type %u)", key, m->type);
    if (value < lo || value > hi)
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': %lld is outside [%lld, %lld]", key,
                            (long long)value, (long long)lo, (long long)hi);
    *out = (int32_t)value;
    return GEMINI_OK;
}

static gemini_result gemini__require_float(const gemini_model *model, const char *key,
                                           float *out)
{
    const gemini__meta *m = gemini__find_meta(model, key);
    double value;
    if (m == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "missing required key '%s'", key);
    if (!gemini__meta_scalar_float(m->type, m->value, &value))
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': not a float (type %u)", key, m->type);
    if (!(fabs(value) <= FLT_MAX))
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': not a finite float", key);
    *out = (float)value;
    return GEMINI_OK;
}

static gemini_result gemini__require_bool(const gemini_model *model, const char *key, int *out)
{
    const gemini__meta *m = gemini__find_meta(model, key);
    if (m == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "missing required key '%s'", key);
    if (m->type != GEMINI_META_BOOL)
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': not a bool (type %u)", key, m->type);
    *out = m->value[0];
    return GEMINI_OK;
}

static gemini_result gemini__require_string(const gemini_model *model, const char *key,
                                            const gemini__meta **out)
{
    const gemini__meta *m = gemini__find_meta(model, key);
    if (m == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "missing required key '%s'", key);
    if (m->type != GEMINI_META_STRING)
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': not a string (type %u)", key, m->type);
    *out = m;
    return GEMINI_OK;
}

static gemini_result gemini__require_array(const gemini_model *model, const char *key,
                                           uint32_t elem_type, uint64_t count,
                                           const gemini__meta **out)
{
    const gemini__meta *m = gemini__find_meta(model, key);
    if (m == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "missing required key '%s'", key);
    if (m->type != GEMINI_META_ARRAY || m->elem_type != elem_type)
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': not an array of type %u", key,
                            elem_type);
    if (m->count != count)
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': %llu elements, expected %llu", key,
                            (unsigned long long)m->count, (unsigned long long)count);
    *out = m;
    return GEMINI_OK;
}

/* The fixed 64-byte header (format.md §2.1). */
typedef struct gemini__header {
    uint32_t version, alignment, flags;
    uint64_t n_kv, n_tensors, dir_size, data_offset, data_size;
} gemini__header;

/* Reads and checks the header, and the directory's CRC. */
static gemini_result gemini__parse_header(const uint8_t *file, uint64_t file_size,
                                          gemini__header *h)
{
    if (file_size < 64) return gemini__fail(GEMINI_ERR_FORMAT, "file of %llu bytes is too small",
                                            (unsigned long long)file_size);
    if (memcmp(file, GEMINI__MAGIC, 4) != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "bad magic: not a .gemini file");
    h->version = gemini__le32(file + 4);
    h->alignment = gemini__le32(file + 8);
    h->flags = gemini__le32(file + 12);
    h->n_kv = gemini__le64(file + 16);
    h->n_tensors = gemini__le64(file + 24);
    h->dir_size = gemini__le64(file + 32);
    h->data_offset = gemini__le64(file + 40);
    h->data_size = gemini__le64(file + 48);
    if (h->version != GEMINI__FORMAT_VERSION)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "format version %u (this reader knows 1)",
                            h->version);
    if (h->alignment < 64 || (h->alignment & (h->alignment - 1)) != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "alignment %u is not a power of two >= 64",
                            h->alignment);
    if (h->flags != 0) return gemini__fail(GEMINI_ERR_FORMAT, "unknown flags 0x%x", h->flags);
    if (h->dir_size > file_size - 64 || h->data_offset < 64 + h->dir_size ||
        h->data_offset > file_size)
        return gemini__fail(GEMINI_ERR_FORMAT, "dir_size %llu / data_offset %llu out of bounds",
                            (unsigned long long)h->dir_size,
                            (unsigned long long)h->data_offset);
    if (h->data_offset % h->alignment != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "data_offset %llu not a multiple of %u",
                            (unsigned long long)h->data_offset, h->alignment);
    if (h->data_size != file_size - h->data_offset)
        return gemini__fail(GEMINI_ERR_FORMAT,
                            "data_offset %llu + data_size %llu != file size %llu",
                            (unsigned long long)h->data_offset,
                            (unsigned long long)h->data_size, (unsigned long long)file_size);
    if (gemini_crc32(0, file + 64, (size_t)h->dir_size) != gemini__le32(file + 56))
        return gemini__fail(GEMINI_ERR_CHECKSUM, "directory CRC-32 mismatch");

    /* Counts must fit the directory: a record takes at least 9 (metadata) or 40 bytes. */
    if (h->n_kv > h->dir_size / 9 || h->n_tensors > h->dir_size / 40)
        return gemini__fail(GEMINI_ERR_FORMAT, "n_kv %llu / n_tensors %llu cannot fit",
                            (unsigned long long)h->n_kv, (unsigned long long)h->n_tensors);
    return GEMINI_OK;
}

/* Reads the metadata records; refuses duplicate keys. */
static gemini_result gemini__parse_metadata(gemini_model *model, gemini__cursor *c,
                                            uint64_t n_kv)
{
    char where[320];
    gemini_result result;
    uint64_t i;
    for (i = 0; i < n_kv; i++) {
        gemini__meta *m = &model->metas[i];
        if (!gemini__take_string(c, GEMINI__MAX_NAME, &m->key, &m->key_length) ||
            !gemini__take_u32(c, &m->type))
            return gemini__fail(GEMINI_ERR_FORMAT, "metadata record %llu: bad or truncated key",
                                (unsigned long long)i);
        snprintf(where, sizeof where, "key '%.*s'", (int)m->key_length, m->key);
        result = gemini__parse_value(c, m, where);
        if (result != GEMINI_OK) return result;
        model->metas_by_key[i] = m;
    }
    model->n_metas = (int64_t)n_kv;
    qsort((void *)model->metas_by_key, (size_t)n_kv, sizeof(gemini__meta *),
          gemini__compare_metas);
    for (i = 1; i < n_kv; i++) {
        if (gemini__compare_metas(&model->metas_by_key[i - 1], &model->metas_by_key[i]) == 0)
            return gemini__fail(GEMINI_ERR_FORMAT, "duplicate key '%.*s'",
                                (int)model->metas_by_key[i]->key_length,
                                model->metas_by_key[i]->key);
    }
    return GEMINI_OK;
}

/* Reads one tensor record and checks its shape, size, alignment and bounds. */
static gemini_result gemini__parse_tensor(gemini__cursor *c, const gemini__header *h,
                                          uint64_t index, gemini__tensor *t)
{
    uint64_t elements = 1, rows, row_bytes;
    int64_t block;
    uint32_t d;
    char where[320];
    if (!gemini__take_string(c, GEMINI__MAX_NAME, &t->name, &t->name_length) ||
        !gemini__take_u32(c, &t->type) || !gemini__take_u32(c, &t->n_dims))
        return gemini__fail(GEMINI_ERR_FORMAT, "tensor record %llu: truncated",
                            (unsigned long long)index);
    snprintf(where, sizeof where, "tensor '%.*s'", (int)t->name_length, t->name);
    if (t->n_dims < 1 || t->n_dims > 4)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: %u dimensions", where, t->n_dims);

    /* dimensions: each at least 1, the product capped so sizes cannot overflow */
    for (d = 0; d < 4; d++) t->dims[d] = 1;
    for (d = 0; d < t->n_dims; d++) {
        uint64_t dim;
        if (!gemini__take_u64(c, &dim))
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: truncated", where);
        if (dim < 1 || dim > ((uint64_t)1 << 40) || elements > ((uint64_t)1 << 50) / dim)
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: dimension %u is %llu", where, d,
                                (unsigned long long)dim);
        t->dims[d] = (int64_t)dim;
        elements *= dim;
    }
    if (!gemini__take_u64(c, &t->offset) || !gemini__take_u64(c, &t->size) ||
        !gemini__take_u32(c, &t->crc32))
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: truncated", where);

    /* a type this reader knows must have exactly the computed size */
    block = gemini_type_block_size((gemini_type)t->type);
    if (block > 0) {
        if (t->dims[t->n_dims - 1] % block != 0)
            return gemini__fail(GEMINI_ERR_FORMAT,
                                "%s: last dimension %lld is not a multiple of %lld", where,
                                (long long)t->dims[t->n_dims - 1], (long long)block);
        row_bytes = (uint64_t)gemini_type_row_bytes((gemini_type)t->type,
                                                    t->dims[t->n_dims - 1]);
        rows = elements / (uint64_t)t->dims[t->n_dims - 1];
        if (t->size != rows * row_bytes)
            return gemini__fail(GEMINI_ERR_FORMAT, "%s: size %llu, expected %llu", where,
                                (unsigned long long)t->size,
                                (unsigned long long)(rows * row_bytes));
    }

    /* aligned and inside the data section */
    if (t->offset % h->alignment != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: offset %llu not aligned to %u", where,
                            (unsigned long long)t->offset, h->alignment);
    if (t->offset > h->data_size || t->size > h->data_size - t->offset)
        return gemini__fail(GEMINI_ERR_FORMAT, "%s: bytes [%llu, +%llu) outside the data",
                            where, (unsigned long long)t->offset, (unsigned long long)t->size);
    return GEMINI_OK;
}

/* Refuses duplicate tensor names and overlapping tensors. */
static gemini_result gemini__check_tensor_set(gemini_model *model)
{
    size_t n = (size_t)model->n_tensors, i;
    gemini__tensor **by_offset;
    gemini_result result = GEMINI_OK;

    qsort((void *)model->tensors_by_name, n, sizeof(gemini__tensor *),
          gemini__compare_tensor_names);
    for (i = 1; i < n; i++) {
        if (gemini__compare_tensor_names(&model->tensors_by_name[i - 1],
                                         &model->tensors_by_name[i]) == 0)
            return gemini__fail(GEMINI_ERR_FORMAT, "duplicate tensor '%.*s'",
                                (int)model->tensors_by_name[i]->name_length,
                                model->tensors_by_name[i]->name);
    }

    by_offset = (gemini__tensor **)GEMINI_MALLOC(sizeof(gemini__tensor *) * (n + 1));
    if (by_offset == NULL) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory");
    for (i = 0; i < n; i++) by_offset[i] = &model->tensors[i];
    qsort(by_offset, n, sizeof(gemini__tensor *), gemini__compare_tensor_offsets);
    for (i = 1; i < n && result == GEMINI_OK; i++) {
        if (by_offset[i - 1]->offset + by_offset[i - 1]->size > by_offset[i]->offset)
            result = gemini__fail(GEMINI_ERR_FORMAT, "tensors '%.*s' and '%.*s' overlap",
                                  (int)by_offset[i - 1]->name_length, by_offset[i - 1]->name,
                                  (int)by_offset[i]->name_length, by_offset[i]->name);
    }
    GEMINI_FREE(by_offset);
    return result;
}

/* Parses the header and the directory, checking every field (format.md §2). */
static gemini_result gemini__parse_directory(gemini_model *model)
{
    gemini__header h;
    gemini__cursor c;
    gemini_result result;
    uint64_t i;

    /* header and directory CRC */
    memset(&h, 0, sizeof h);
    result = gemini__parse_header(model->bytes, model->size, &h);
    if (result != GEMINI_OK) return result;

    /* tables sized from the (already bounded) counts */
    if (h.n_kv + 1 > SIZE_MAX / sizeof(gemini__tensor) ||
        h.n_tensors + 1 > SIZE_MAX / sizeof(gemini__tensor))
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "directory too large for this host");
    model->metas = (gemini__meta *)GEMINI_MALLOC(sizeof(gemini__meta) * (size_t)(h.n_kv + 1));
    model->metas_by_key =
        (const gemini__meta **)GEMINI_MALLOC(sizeof(gemini__meta *) * (size_t)(h.n_kv + 1));
    model->tensors =
        (gemini__tensor *)GEMINI_MALLOC(sizeof(gemini__tensor) * (size_t)(h.n_tensors + 1));
    model->tensors_by_name = (const gemini__tensor **)GEMINI_MALLOC(
        sizeof(gemini__tensor *) * (size_t)(h.n_tensors + 1));
    if (!model->metas || !model->metas_by_key || !model->tensors || !model->tensors_by_name)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory for the directory");

    /* metadata records */
    c.p = model->bytes + 64;
    c.left = h.dir_size;
    result = gemini__parse_metadata(model, &c, h.n_kv);
    if (result != GEMINI_OK) return result;

    /* tensor records, which must end the directory exactly */
    for (i = 0; i < h.n_tensors; i++) {
        gemini__tensor *t = &model->tensors[i];
        result = gemini__parse_tensor(&c, &h, i, t);
        if (result != GEMINI_OK) return result;
        t->data = model->bytes + h.data_offset + t->offset;
        model->tensors_by_name[i] = t;
    }
    model->n_tensors = (int64_t)h.n_tensors;
    if (c.left != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "%llu bytes left over at the end of the directory",
                            (unsigned long long)c.left);

    /* unique names, no overlap */
    return gemini__check_tensor_set(model);
}

/* Finds tensor `name` with shape [rows, cols] (cols == 0: a vector [rows]). Norm vectors
   (f32_only) must be f32; matrices any type this reader knows. */
static gemini_result gemini__bind_tensor(const gemini_model *model, const char *name,
                                         int64_t rows, int64_t cols, int f32_only,
                                         const gemini__tensor **out)
{
    const gemini__tensor *t = gemini__find_tensor(model, name);
    uint32_t want_dims = cols == 0 ? 1 : 2;
    if (t == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "missing tensor '%s'", name);
    if (t->n_dims != want_dims || t->dims[0] != rows || (cols != 0 && t->dims[1] != cols)) {
        if (cols == 0)
            return gemini__fail(GEMINI_ERR_FORMAT, "tensor '%s': shape %u-d [%lld, ...], "
                                "expected [%lld]", name, t->n_dims, (long long)t->dims[0],
                                (long long)rows);
        return gemini__fail(GEMINI_ERR_FORMAT, "tensor '%s': shape %u-d [%lld, %lld, ...], "
                            "expected [%lld, %lld]", name, t->n_dims, (long long)t->dims[0],
                            (long long)t->dims[1], (long long)rows, (long long)cols);
    }
    if (t->type >= GEMINI_TYPE_COUNT)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "tensor '%s': unknown type %u", name,
                            t->type);
    if (f32_only && t->type != GEMINI_TYPE_F32)
        return gemini__fail(GEMINI_ERR_FORMAT, "tensor '%s': norm vectors must be f32, not %s",
                            name, gemini_type_name((gemini_type)t->type));
    *out = t;
    return GEMINI_OK;
}

static gemini_result gemini__bind_vector(const gemini_model *model, const char *name, int64_t n,
                                       const float **out)
{
    const gemini__tensor *t;
    gemini_result result = gemini__bind_tensor(model, name, n, 0, 1, &t);
    if (result == GEMINI_OK) *out = (const float *)(const void *)t->data;
    return result;
}

/* The hyperparameters of a Whisper file (format.md §7.1). The Gemma-only fields get the values
   that make the shared code do Whisper's maths: no embedding scale, q.k scaled by D^-0.5, no
   soft-caps, no RoPE, no sliding window. */
static gemini_result gemini__read_whisper_hparams(gemini_model *model)
{
    gemini_model_hparams *hp = &model->hparams;
    const gemini__meta *m;
    gemini_result r;

    if ((r = gemini__require_int(model, "model.vocab_size", 1, 1 << 24, &hp->vocab_size)) ||
        (r = gemini__require_int(model, "model.hidden_size", 1, 1 << 16, &hp->hidden_size)) ||
        (r = gemini__require_int(model, "model.intermediate_size", 1, 1 << 20,
                                 &hp->intermediate_size)) ||
        (r = gemini__require_int(model, "model.num_layers", 1, 4096, &hp->num_layers)) ||
        (r = gemini__require_int(model, "model.num_heads", 1, 1024, &hp->num_heads)) ||
        (r = gemini__require_int(model, "model.num_kv_heads", 1, 1024, &hp->num_kv_heads)) ||
        (r = gemini__require_int(model, "model.head_dim", 1, 4096, &hp->head_dim)) ||
        (r = gemini__require_int(model, "model.max_position", 1, GEMINI__MAX_CTX,
                                 &hp->max_position)) ||
        (r = gemini__require_float(model, "model.layer_norm_eps", &hp->layer_norm_eps)) ||
        (r = gemini__require_bool(model, "model.tied_embeddings", &hp->tied_embeddings)) ||
        (r = gemini__require_int(model, "whisper.n_mels", 1, 1024, &hp->n_mels)) ||
        (r = gemini__require_int(model, "whisper.audio_ctx", 1, GEMINI__MAX_CTX,
                                 &hp->audio_ctx)) ||
        (r = gemini__require_int(model, "whisper.encoder_layers", 1, 4096,
                                 &hp->encoder_layers)) ||
        (r = gemini__require_int(model, "whisper.encoder_heads", 1, 1024,
                                 &hp->encoder_heads)) ||
        (r = gemini__require_int(model, "whisper.encoder_ffn", 1, 1 << 20, &hp->encoder_ffn)) ||
        (r = gemini__require_string(model, "model.activation", &m)))
        return r;
    if (!(m->value_bytes == 4 && memcmp(m->value, "gelu", 4) == 0))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "model.activation '%.*s' is not supported "
                            "for whisper", (int)(m->value_bytes > 64 ? 64 : m->value_bytes),
                            (const char *)m->value);
    if (hp->num_kv_heads != hp->num_heads ||
        (int64_t)hp->num_heads * hp->head_dim != hp->hidden_size)
        return gemini__fail(GEMINI_ERR_FORMAT, "whisper: heads %d, kv heads %d, head_dim %d "
                            "do not match hidden_size %d", hp->num_heads, hp->num_kv_heads,
                            hp->head_dim, hp->hidden_size);
    if (hp->hidden_size % hp->encoder_heads != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "whisper.encoder_heads %d does not divide "
                            "hidden_size %d", hp->encoder_heads, hp->hidden_size);
    if (!hp->tied_embeddings)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "whisper: untied output head");
    if (!(hp->layer_norm_eps >= 0.0f && hp->layer_norm_eps < 1.0f))
        return gemini__fail(GEMINI_ERR_FORMAT, "model.layer_norm_eps %g is out of range",
                            hp->layer_norm_eps);
    hp->is_encoder_decoder = 1;
    hp->embed_scale = 1.0f;
    hp->query_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->rope_theta = hp->rope_theta_local = hp->rope_scale = 1.0f;
    return GEMINI_OK;
}

/* An optional integer key: *out keeps its default when the key is absent. */
static gemini_result gemini__optional_int(const gemini_model *model, const char *key,
                                          int64_t lo, int64_t hi, int32_t *out)
{
    if (gemini__find_meta(model, key) == NULL) return GEMINI_OK;
    return gemini__require_int(model, key, lo, hi, out);
}

/* The keys of a Gemma 3 vision file (format.md §8.4): the pooled token count and the ids
   around an image. */
static gemini_result gemini__read_gemma3_vision_hparams(gemini_model *model, int32_t grid)
{
    gemini_model_hparams *hp = &model->hparams;
    int32_t side = 1, last_id = hp->vocab_size - 1;
    gemini_result r;

    if (strcmp(hp->architecture, "gemma3") != 0)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "vision.projector 'gemma3' with a %s decoder",
                            hp->architecture);
    if ((r = gemini__require_int(model, "vision.mm_tokens_per_image", 1, GEMINI__MAX_BATCH - 64,
                                 &hp->image_tokens)) ||
        (r = gemini__require_int(model, "vision.image_start_id", 0, last_id,
                                 &hp->image_start_id)) ||
        (r = gemini__require_int(model, "vision.image_end_id", 0, last_id, &hp->image_end_id)))
        return r;
    while ((side + 1) * (side + 1) <= hp->image_tokens) side++;
    if (side * side != hp->image_tokens || grid % side != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "vision.mm_tokens_per_image %d is not the square "
                            "of a divisor of the %d x %d patch grid", hp->image_tokens, grid,
                            grid);
    hp->image_resample = 2; /* Gemma3ImageProcessor: bilinear */
    return GEMINI_OK;
}

/* The vision keys of format.md §8.1, present in PaliGemma and Gemma 3 vision files only
   (vision.projector). */
static gemini_result gemini__read_vision_hparams(gemini_model *model)
{
    gemini_model_hparams *hp = &model->hparams;
    const gemini__meta *m, *mean, *std;
    gemini_result r;
    int32_t grid, c;
    int gemma3;

    hp->image_start_id = hp->image_end_id = -1;
    if (gemini__find_meta(model, "vision.projector") == NULL) return GEMINI_OK;
    if ((r = gemini__require_string(model, "vision.projector", &m))) return r;
    gemma3 = m->value_bytes == 6 && memcmp(m->value, "gemma3", 6) == 0;
    if (!gemma3 && !(m->value_bytes == 9 && memcmp(m->value, "paligemma", 9) == 0))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "vision.projector '%.*s' is not supported",
                            (int)(m->value_bytes > 64 ? 64 : m->value_bytes),
                            (const char *)m->value);
    memcpy(hp->vision_projector, m->value, (size_t)m->value_bytes);
    hp->vision_projector[m->value_bytes] = '\0';
    if (!gemma3 && strcmp(hp->architecture, "gemma") != 0 &&
        strcmp(hp->architecture, "gemma2") != 0)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "vision.projector 'paligemma' with a %s "
                            "decoder (PaliGemma has gemma or gemma2)", hp->architecture);
    if ((r = gemini__require_int(model, "vision.image_size", 1, 16384, &hp->image_size)) ||
        (r = gemini__require_int(model, "vision.patch_size", 1, 1024, &hp->patch_size)) ||
        (r = gemini__require_int(model, "vision.hidden_size", 1, 1 << 16,
                                 &hp->vision_hidden)) ||
        (r = gemini__require_int(model, "vision.intermediate_size", 1, 1 << 20,
                                 &hp->vision_ffn)) ||
        (r = gemini__require_int(model, "vision.num_layers", 1, 4096, &hp->vision_layers)) ||
        (r = gemini__require_int(model, "vision.num_heads", 1, 1024, &hp->vision_heads)) ||
        (r = gemini__require_int(model, "vision.image_token_id", 0, INT32_MAX,
                                 &hp->image_token_id)) ||
        (r = gemini__require_float(model, "vision.layer_norm_eps", &hp->vision_norm_eps)) ||
        (r = gemini__require_array(model, "vision.image_mean", GEMINI_META_F32, 3, &mean)) ||
        (r = gemini__require_array(model, "vision.image_std", GEMINI_META_F32, 3, &std)) ||
        (r = gemini__require_string(model, "vision.activation", &m)))
        return r;
    if (!(m->value_bytes == 9 && memcmp(m->value, "gelu_tanh", 9) == 0))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "vision.activation '%.*s' is not supported",
                            (int)(m->value_bytes > 64 ? 64 : m->value_bytes),
                            (const char *)m->value);
    if (hp->image_size % hp->patch_size != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "vision.image_size %d is not a multiple of "
                            "vision.patch_size %d", hp->image_size, hp->patch_size);
    grid = hp->image_size / hp->patch_size;
    if ((int64_t)grid * grid > GEMINI__MAX_PATCHES)
        return gemini__fail(GEMINI_ERR_FORMAT, "%d x %d image patches are more than %d",
                            grid, grid, GEMINI__MAX_PATCHES);
    if (hp->vision_hidden % hp->vision_heads != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "vision.num_heads %d does not divide "
                            "vision.hidden_size %d", hp->vision_heads, hp->vision_hidden);
    if (!(hp->vision_norm_eps >= 0.0f && hp->vision_norm_eps < 1.0f))
        return gemini__fail(GEMINI_ERR_FORMAT, "vision.layer_norm_eps %g is out of range",
                            hp->vision_norm_eps);
    for (c = 0; c < 3; c++) {
        hp->image_mean[c] = gemini__bits_f32(gemini__le32(mean->value + 4 * c));
        hp->image_std[c] = gemini__bits_f32(gemini__le32(std->value + 4 * c));
        if (!(fabsf(hp->image_mean[c]) <= 1e6f) || !(hp->image_std[c] > 0.0f) ||
            !(hp->image_std[c] <= 1e6f))
            return gemini__fail(GEMINI_ERR_FORMAT, "vision.image_mean/std[%d] (%g, %g) is out "
                                "of range", (int)c, hp->image_mean[c], hp->image_std[c]);
    }
    hp->image_patches = grid * grid;
    if (gemma3) {
        if ((r = gemini__read_gemma3_vision_hparams(model, grid))) return r;
    } else {
        /* PaliGemma's image rows are the patches, decoded in one step with some text */
        if (hp->image_patches > GEMINI__MAX_BATCH - 64)
            return gemini__fail(GEMINI_ERR_FORMAT, "%d x %d image patches are more than %d",
                                grid, grid, GEMINI__MAX_BATCH - 64);
        hp->image_tokens = hp->image_patches;
        hp->image_resample = 3; /* SiglipImageProcessor: bicubic */
        model->rope_offset = 1; /* PaliGemma's reference counts positions from 1 */
    }
    if ((r = gemini__optional_int(model, "vision.resample", 2, 3, &hp->image_resample)))
        return r;
    hp->has_vision = 1;
    return GEMINI_OK;
}

/* Reads and checks the hyperparameters of format.md §4.2. */
static gemini_result gemini__read_hparams(gemini_model *model)
{
    gemini_model_hparams *hp = &model->hparams;
    const gemini__meta *m;
    gemini_result r;

    if ((r = gemini__require_string(model, "general.architecture", &m)) != GEMINI_OK) return r;
    if (m->value_bytes == 7 && memcmp(m->value, "whisper", 7) == 0) {
        memcpy(hp->architecture, "whisper", 8);
        return gemini__read_whisper_hparams(model);
    }
    if (!(m->value_bytes == 5 && memcmp(m->value, "gemma", 5) == 0) &&
        !(m->value_bytes == 6 && memcmp(m->value, "gemma2", 6) == 0) &&
        !(m->value_bytes == 6 && memcmp(m->value, "gemma3", 6) == 0))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "architecture '%.*s' is not supported",
                            (int)(m->value_bytes > 64 ? 64 : m->value_bytes),
                            (const char *)m->value);
    memcpy(hp->architecture, m->value, (size_t)m->value_bytes);
    hp->architecture[m->value_bytes] = '\0';

    if ((r = gemini__require_int(model, "model.vocab_size", 1, 1 << 24, &hp->vocab_size)) ||
        (r = gemini__require_int(model, "model.hidden_size", 1, 1 << 16, &hp->hidden_size)) ||
        (r = gemini__require_int(model, "model.intermediate_size", 1, 1 << 20,
                                 &hp->intermediate_size)) ||
        (r = gemini__require_int(model, "model.num_layers", 1, 4096, &hp->num_layers)) ||
        (r = gemini__require_int(model, "model.num_heads", 1, 1024, &hp->num_heads)) ||
        (r = gemini__require_int(model, "model.num_kv_heads", 1, 1024, &hp->num_kv_heads)) ||
        (r = gemini__require_int(model, "model.head_dim", 2, 4096, &hp->head_dim)) ||
        (r = gemini__require_int(model, "model.max_position", 1, INT32_MAX,
                                 &hp->max_position)) ||
        (r = gemini__require_float(model, "model.rms_norm_eps", &hp->rms_norm_eps)) ||
        (r = gemini__require_float(model, "model.embed_scale", &hp->embed_scale)) ||
        (r = gemini__require_float(model, "model.query_scale", &hp->query_scale)) ||
        (r = gemini__require_float(model, "model.attn_softcap", &hp->attn_softcap)) ||
        (r = gemini__require_float(model, "model.final_softcap", &hp->final_softcap)) ||
        (r = gemini__require_float(model, "model.rope_theta", &hp->rope_theta)) ||
        (r = gemini__require_float(model, "model.rope_scale", &hp->rope_scale)) ||
        (r = gemini__require_float(model, "model.rope_theta_local", &hp->rope_theta_local)) ||
        (r = gemini__require_int(model, "model.sliding_window", 0, INT32_MAX,
                                 &hp->sliding_window)) ||
        (r = gemini__require_bool(model, "model.sandwich_norms", &hp->sandwich_norms)) ||
        (r = gemini__require_bool(model, "model.qk_norm", &hp->qk_norm)) ||
        (r = gemini__require_bool(model, "model.tied_embeddings", &hp->tied_embeddings)) ||
        (r = gemini__require_string(model, "model.activation", &m)))
        return r;
    if (!(m->value_bytes == 9 && memcmp(m->value, "gelu_tanh", 9) == 0))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "model.activation '%.*s' is not supported",
                            (int)(m->value_bytes > 64 ? 64 : m->value_bytes),
                            (const char *)m->value);
    if (hp->num_heads % hp->num_kv_heads != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "model.num_heads %d is not a multiple of "
                            "model.num_kv_heads %d", hp->num_heads, hp->num_kv_heads);
    if (hp->head_dim % 2 != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "model.head_dim %d is odd", hp->head_dim);
    if ((int64_t)hp->num_heads * hp->head_dim > (1 << 20))
        return gemini__fail(GEMINI_ERR_FORMAT, "num_heads * head_dim is too large");
    if (hp->rms_norm_eps < 0.0f || hp->attn_softcap < 0.0f || hp->final_softcap < 0.0f ||
        hp->rope_theta <= 0.0f || hp->rope_theta_local <= 0.0f || hp->rope_scale <= 0.0f)
        return gemini__fail(GEMINI_ERR_FORMAT, "a norm eps, soft-cap or RoPE value is out of "
                            "range (eps %g, caps %g %g, theta %g %g, scale %g)",
                            hp->rms_norm_eps, hp->attn_softcap, hp->final_softcap,
                            hp->rope_theta, hp->rope_theta_local, hp->rope_scale);
    return gemini__read_vision_hparams(model);
}

/* Binds the weights of one Whisper block named prefix + "attn_q" etc. (format.md §7.2):
   self-attention and MLP of width f, and cross-attention when `cross` is set. */
static gemini_result gemini__bind_whisper_layer(gemini_model *model, const char *prefix,
                                                int64_t f, int cross, gemini__layer *layer)
{
    int64_t d = model->hparams.hidden_size;
    char name[96];
    gemini_result r;

#define GEMINI__NAME(suffix) (snprintf(name, sizeof name, "%s" suffix, prefix), name)
#define GEMINI__VECTOR(suffix, n, out) gemini__bind_vector(model, GEMINI__NAME(suffix), n, out)
#define GEMINI__MATRIX(suffix, rows, cols, out) \
    gemini__bind_tensor(model, GEMINI__NAME(suffix), rows, cols, 0, out)
    if ((r = GEMINI__VECTOR("attn_norm", d, &layer->attn_norm)) ||
        (r = GEMINI__VECTOR("attn_norm_b", d, &layer->attn_norm_b)) ||
        (r = GEMINI__MATRIX("attn_q", d, d, &layer->attn_q)) ||
        (r = GEMINI__VECTOR("attn_q_b", d, &layer->attn_q_b)) ||
        (r = GEMINI__MATRIX("attn_k", d, d, &layer->attn_k)) ||
        (r = GEMINI__MATRIX("attn_v", d, d, &layer->attn_v)) ||
        (r = GEMINI__VECTOR("attn_v_b", d, &layer->attn_v_b)) ||
        (r = GEMINI__MATRIX("attn_out", d, d, &layer->attn_out)) ||
        (r = GEMINI__VECTOR("attn_out_b", d, &layer->attn_out_b)) ||
        (r = GEMINI__VECTOR("ffn_norm", d, &layer->ffn_norm)) ||
        (r = GEMINI__VECTOR("ffn_norm_b", d, &layer->ffn_norm_b)) ||
        (r = GEMINI__MATRIX("ffn_up", f, d, &layer->ffn_up)) ||
        (r = GEMINI__VECTOR("ffn_up_b", f, &layer->ffn_up_b)) ||
        (r = GEMINI__MATRIX("ffn_down", d, f, &layer->ffn_down)) ||
        (r = GEMINI__VECTOR("ffn_down_b", d, &layer->ffn_down_b)))
        return r;
    if (cross &&
        ((r = GEMINI__VECTOR("cross_norm", d, &layer->cross_norm)) ||
         (r = GEMINI__VECTOR("cross_norm_b", d, &layer->cross_norm_b)) ||
         (r = GEMINI__MATRIX("cross_q", d, d, &layer->cross_q)) ||
         (r = GEMINI__VECTOR("cross_q_b", d, &layer->cross_q_b)) ||
         (r = GEMINI__MATRIX("cross_k", d, d, &layer->cross_k)) ||
         (r = GEMINI__MATRIX("cross_v", d, d, &layer->cross_v)) ||
         (r = GEMINI__VECTOR("cross_v_b", d, &layer->cross_v_b)) ||
         (r = GEMINI__MATRIX("cross_out", d, d, &layer->cross_out)) ||
         (r = GEMINI__VECTOR("cross_out_b", d, &layer->cross_out_b))))
        return r;
#undef GEMINI__MATRIX
#undef GEMINI__VECTOR
#undef GEMINI__NAME
    return GEMINI_OK;
}

/* Binds and checks the SigLIP tower and the projector of a PaliGemma or Gemma 3 vision file
   (format.md §8.2, §8.4). */
static gemini_result gemini__bind_vision_weights(gemini_model *model)
{
    const gemini_model_hparams *hp = &model->hparams;
    int64_t dv = hp->vision_hidden, fv = hp->vision_ffn, d = hp->hidden_size;
    int64_t patch_columns = 3 * (int64_t)hp->patch_size * hp->patch_size;
    const gemini__tensor *t;
    char name[64];
    gemini_result r;
    int32_t i;

    model->vis_layers = (gemini__layer *)GEMINI_MALLOC(sizeof(gemini__layer) *
                                                       (size_t)hp->vision_layers);
    if (model->vis_layers == NULL) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory");
    memset(model->vis_layers, 0, sizeof(gemini__layer) * (size_t)hp->vision_layers);
    if ((r = gemini__bind_tensor(model, "vis.patch_embd", dv, patch_columns, 0,
                                 &model->vis_patch)) ||
        (r = gemini__bind_vector(model, "vis.patch_embd_b", dv, &model->vis_patch_b)) ||
        (r = gemini__bind_tensor(model, "vis.pos_embd", hp->image_patches, dv, 1, &t)) ||
        (r = gemini__bind_vector(model, "vis.post_norm", dv, &model->vis_post_norm)) ||
        (r = gemini__bind_vector(model, "vis.post_norm_b", dv, &model->vis_post_norm_b)) ||
        (r = gemini__bind_tensor(model, "mm.proj", d, dv, 0, &model->mm_proj)))
        return r;
    if (strcmp(hp->vision_projector, "gemma3") == 0)
        r = gemini__bind_vector(model, "mm.soft_norm", dv, &model->mm_soft_norm);
    else
        r = gemini__bind_vector(model, "mm.proj_b", d, &model->mm_proj_b);
    if (r != GEMINI_OK) return r;
    model->vis_pos = (const float *)(const void *)t->data;

#define GEMINI__NAME(suffix) (snprintf(name, sizeof name, "vis.blk.%d." suffix, (int)i), name)
#define GEMINI__VECTOR(suffix, n, out) gemini__bind_vector(model, GEMINI__NAME(suffix), n, out)
#define GEMINI__MATRIX(suffix, rows, cols, out) \
    gemini__bind_tensor(model, GEMINI__NAME(suffix), rows, cols, 0, out)
    for (i = 0; i < hp->vision_layers; i++) {
        gemini__layer *layer = &model->vis_layers[i];
        layer->gelu_tanh = 1;
        if ((r = GEMINI__VECTOR("attn_norm", dv, &layer->attn_norm)) ||
            (r = GEMINI__VECTOR("attn_norm_b", dv, &layer->attn_norm_b)) ||
            (r = GEMINI__MATRIX("attn_q", dv, dv, &layer->attn_q)) ||
            (r = GEMINI__VECTOR("attn_q_b", dv, &layer->attn_q_b)) ||
            (r = GEMINI__MATRIX("attn_k", dv, dv, &layer->attn_k)) ||
            (r = GEMINI__VECTOR("attn_k_b", dv, &layer->attn_k_b)) ||
            (r = GEMINI__MATRIX("attn_v", dv, dv, &layer->attn_v)) ||
            (r = GEMINI__VECTOR("attn_v_b", dv, &layer->attn_v_b)) ||
            (r = GEMINI__MATRIX("attn_out", dv, dv, &layer->attn_out)) ||
            (r = GEMINI__VECTOR("attn_out_b", dv, &layer->attn_out_b)) ||
            (r = GEMINI__VECTOR("ffn_norm", dv, &layer->ffn_norm)) ||
            (r = GEMINI__VECTOR("ffn_norm_b", dv, &layer->ffn_norm_b)) ||
            (r = GEMINI__MATRIX("ffn_up", fv, dv, &layer->ffn_up)) ||
            (r = GEMINI__VECTOR("ffn_up_b", fv, &layer->ffn_up_b)) ||
            (r = GEMINI__MATRIX("ffn_down", dv, fv, &layer->ffn_down)) ||
            (r = GEMINI__VECTOR("ffn_down_b", dv, &layer->ffn_down_b)))
            return r;
    }
#undef GEMINI__MATRIX
#undef GEMINI__VECTOR
#undef GEMINI__NAME
    return GEMINI_OK;
}

/* Binds and checks every tensor of a Whisper file (format.md §7.2). */
static gemini_result gemini__bind_whisper_weights(gemini_model *model)
{
    const gemini_model_hparams *hp = &model->hparams;
    int64_t d = hp->hidden_size;
    const gemini__tensor *t;
    char prefix[32];
    gemini_result r;
    int32_t i;

    model->layers = (gemini__layer *)GEMINI_MALLOC(sizeof(gemini__layer) *
                                                   (size_t)hp->num_layers);
    model->enc_layers = (gemini__layer *)GEMINI_MALLOC(sizeof(gemini__layer) *
                                                       (size_t)hp->encoder_layers);
    if (model->layers == NULL || model->enc_layers == NULL)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory");
    memset(model->layers, 0, sizeof(gemini__layer) * (size_t)hp->num_layers);
    memset(model->enc_layers, 0, sizeof(gemini__layer) * (size_t)hp->encoder_layers);

    if ((r = gemini__bind_tensor(model, "token_embd", hp->vocab_size, d, 0,
                                 &model->token_embd)) ||
        (r = gemini__bind_tensor(model, "pos_embd", hp->max_position, d, 1, &t)))
        return r;
    model->pos_embd = (const float *)(const void *)t->data;
    model->output = model->token_embd;
    if ((r = gemini__bind_vector(model, "output_norm", d, &model->output_norm)) ||
        (r = gemini__bind_vector(model, "output_norm_b", d, &model->output_norm_b)) ||
        (r = gemini__bind_tensor(model, "enc.conv1", d, (int64_t)hp->n_mels * 3, 0,
                                 &model->enc_conv1)) ||
        (r = gemini__bind_vector(model, "enc.conv1_b", d, &model->enc_conv1_b)) ||
        (r = gemini__bind_tensor(model, "enc.conv2", d, d * 3, 0, &model->enc_conv2)) ||
        (r = gemini__bind_vector(model, "enc.conv2_b", d, &model->enc_conv2_b)) ||
        (r = gemini__bind_tensor(model, "enc.pos", hp->audio_ctx, d, 1, &t)))
        return r;
    model->enc_pos = (const float *)(const void *)t->data;
    if ((r = gemini__bind_vector(model, "enc.output_norm", d, &model->enc_output_norm)) ||
        (r = gemini__bind_vector(model, "enc.output_norm_b", d, &model->enc_output_norm_b)))
        return r;
    for (i = 0; i < hp->encoder_layers; i++) {
        snprintf(prefix, sizeof prefix, "enc.blk.%d.", (int)i);
        r = gemini__bind_whisper_layer(model, prefix, hp->encoder_ffn, 0, &model->enc_layers[i]);
        if (r != GEMINI_OK) return r;
    }
    for (i = 0; i < hp->num_layers; i++) {
        snprintf(prefix, sizeof prefix, "blk.%d.", (int)i);
        r = gemini__bind_whisper_layer(model, prefix, hp->intermediate_size, 1,
                                       &model->layers[i]);
        if (r != GEMINI_OK) return r;
    }
    return GEMINI_OK;
}

/* Binds every tensor the decoder needs and checks its shape (format.md §5). */
static gemini_result gemini__bind_weights(gemini_model *model)
{
    const gemini_model_hparams *hp = &model->hparams;
    int64_t d = hp->hidden_size, f = hp->intermediate_size, D = hp->head_dim;
    int64_t q_rows = (int64_t)hp->num_heads * D, kv_rows = (int64_t)hp->num_kv_heads * D;
    const gemini__meta *layer_types;
    char name[64];
    gemini_result r;
    int32_t i;

    if (model->hparams.is_encoder_decoder) return gemini__bind_whisper_weights(model);
    if ((r = gemini__require_array(model, "model.layer_types", GEMINI_META_U8,
                                   (uint64_t)hp->num_layers, &layer_types)) != GEMINI_OK)
        return r;
    model->layers = (gemini__layer *)GEMINI_MALLOC(sizeof(gemini__layer) *
                                                   (size_t)hp->num_layers);
    if (model->layers == NULL) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory");
    memset(model->layers, 0, sizeof(gemini__layer) * (size_t)hp->num_layers);

    if ((r = gemini__bind_tensor(model, "token_embd", hp->vocab_size, d, 0,
                                 &model->token_embd)) ||
        (r = gemini__bind_vector(model, "output_norm", d, &model->output_norm)))
        return r;
    if (hp->tied_embeddings) model->output = model->token_embd;
    else if ((r = gemini__bind_tensor(model, "output", hp->vocab_size, d, 0, &model->output)))
        return r;

#define GEMINI__NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, (int)i), name)
    for (i = 0; i < hp->num_layers; i++) {
        gemini__layer *layer = &model->layers[i];
        if (layer_types->value[i] > 1)
            return gemini__fail(GEMINI_ERR_FORMAT, "model.layer_types[%d] is %u", (int)i,
                                layer_types->value[i]);
        layer->is_local = layer_types->value[i] == 1;
        if (layer->is_local && hp->sliding_window < 1)
            return gemini__fail(GEMINI_ERR_FORMAT, "layer %d is local but "
                                "model.sliding_window is 0", (int)i);
        if ((r = gemini__bind_vector(model, GEMINI__NAME("attn_norm"), d, &layer->attn_norm)) ||
            (r = gemini__bind_tensor(model, GEMINI__NAME("attn_q"), q_rows, d, 0,
                                     &layer->attn_q)) ||
            (r = gemini__bind_tensor(model, GEMINI__NAME("attn_k"), kv_rows, d, 0,
                                     &layer->attn_k)) ||
            (r = gemini__bind_tensor(model, GEMINI__NAME("attn_v"), kv_rows, d, 0,
                                     &layer->attn_v)) ||
            (r = gemini__bind_tensor(model, GEMINI__NAME("attn_out"), d, q_rows, 0,
                                     &layer->attn_out)) ||
            (r = gemini__bind_vector(model, GEMINI__NAME("ffn_norm"), d, &layer->ffn_norm)) ||
            (r = gemini__bind_tensor(model, GEMINI__NAME("ffn_gate"), f, d, 0,
                                     &layer->ffn_gate)) ||
            (r = gemini__bind_tensor(model, GEMINI__NAME("ffn_up"), f, d, 0, &layer->ffn_up)) ||
            (r = gemini__bind_tensor(model, GEMINI__NAME("ffn_down"), d, f, 0,
                                     &layer->ffn_down)))
            return r;
        if (hp->qk_norm &&
            ((r = gemini__bind_vector(model, GEMINI__NAME("attn_q_norm"), D,
                                    &layer->attn_q_norm)) ||
             (r = gemini__bind_vector(model, GEMINI__NAME("attn_k_norm"), D,
                                    &layer->attn_k_norm))))
            return r;
        if (hp->sandwich_norms &&
            ((r = gemini__bind_vector(model, GEMINI__NAME("post_attn_norm"), d,
                                    &layer->post_attn_norm)) ||
             (r = gemini__bind_vector(model, GEMINI__NAME("post_ffn_norm"), d,
                                    &layer->post_ffn_norm))))
            return r;
    }
#undef GEMINI__NAME
    return hp->has_vision ? gemini__bind_vision_weights(model) : GEMINI_OK;
}

/* An optional special-token id: -1 .. vocab-1. */
static gemini_result gemini__read_token_id(const gemini_model *model, const char *key,
                                           int required, int32_t *out)
{
    if (!required && gemini__find_meta(model, key) == NULL) {
        *out = -1;
        return GEMINI_OK;
    }
    return gemini__require_int(model, key, -1, model->hparams.vocab_size - 1, out);
}

/* Points piece_pointers/lengths at the n strings of the pieces array (validated while the
   directory was parsed) and allocates zero scores. */
static gemini_result gemini__read_pieces(gemini_model *model, const gemini__meta *pieces,
                                         int64_t n)
{
    gemini__cursor c;
    int64_t i;
    model->piece_pointers = (const char **)GEMINI_MALLOC(sizeof(char *) * (size_t)n);
    model->piece_lengths = (uint32_t *)GEMINI_MALLOC(sizeof(uint32_t) * (size_t)n);
    model->scores = (float *)GEMINI_MALLOC(sizeof(float) * (size_t)n);
    if (!model->piece_pointers || !model->piece_lengths || !model->scores)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory for the vocabulary");
    c.p = pieces->value;
    c.left = pieces->value_bytes;
    for (i = 0; i < n; i++) {
        gemini__take_string(&c, GEMINI__MAX_STRING, &model->piece_pointers[i],
                            &model->piece_lengths[i]);
        model->scores[i] = 0.0f;
    }
    return GEMINI_OK;
}

/* A byte-level BPE tokenizer (Whisper, format.md §7.1): pieces, types, merges, special ids. */
static gemini_result gemini__read_byte_bpe(gemini_model *model, const gemini__meta *kind,
                                           const gemini__meta *pieces)
{
    gemini_tokenizer_desc *desc = &model->tokenizer;
    const gemini__meta *types, *merges;
    int64_t n = (int64_t)pieces->count, n_merges, i;
    gemini_result r;

    if ((r = gemini__require_array(model, "tokenizer.pieces", GEMINI_META_STRING, (uint64_t)n,
                                   &pieces)) ||
        (r = gemini__require_array(model, "tokenizer.types", GEMINI_META_U8, (uint64_t)n,
                                   &types)) ||
        (r = gemini__read_token_id(model, "tokenizer.eos_id", 1, &desc->eos_id)) ||
        (r = gemini__read_token_id(model, "tokenizer.bos_id", 0, &desc->bos_id)) ||
        (r = gemini__read_token_id(model, "tokenizer.pad_id", 0, &desc->pad_id)) ||
        (r = gemini__read_token_id(model, "tokenizer.unk_id", 0, &desc->unk_id)))
        return r;
    desc->eot_id = -1;
    merges = gemini__find_meta(model, "tokenizer.merges");
    if (merges == NULL)
        return gemini__fail(GEMINI_ERR_MISSING_KEY, "missing required key 'tokenizer.merges'");
    if (merges->type != GEMINI_META_ARRAY || merges->elem_type != GEMINI_META_I32 ||
        merges->count % 2 != 0 || merges->count / 2 > (uint64_t)INT32_MAX)
        return gemini__fail(GEMINI_ERR_FORMAT, "key 'tokenizer.merges': not an array of i32 "
                            "pairs (%llu values)", (unsigned long long)merges->count);
    n_merges = (int64_t)(merges->count / 2);
    if ((r = gemini__read_pieces(model, pieces, n)) != GEMINI_OK) return r;
    model->merges = (int32_t *)GEMINI_MALLOC(sizeof(int32_t) * (size_t)(2 * n_merges + 1));
    if (model->merges == NULL)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory for %lld merges",
                            (long long)n_merges);
    for (i = 0; i < 2 * n_merges; i++)
        model->merges[i] = (int32_t)gemini__le32(merges->value + 4 * i);

    desc->model = (const char *)kind->value;
    desc->model_length = (size_t)kind->value_bytes;
    desc->n_pieces = (int32_t)n;
    desc->pieces = model->piece_pointers;
    desc->piece_lengths = model->piece_lengths;
    desc->scores = model->scores;
    desc->types = types->value;
    desc->n_merges = (int32_t)n_merges;
    desc->merges = model->merges;
    model->has_tokenizer = 1;
    return GEMINI_OK;
}

/* Reads the tokenizer arrays of format.md §4.3, if the file has a tokenizer. */
static gemini_result gemini__read_tokenizer(gemini_model *model)
{
    gemini_tokenizer_desc *desc = &model->tokenizer;
    const gemini__meta *kind = gemini__find_meta(model, "tokenizer.model");
    const gemini__meta *pieces, *scores, *types, *charsmap;
    gemini_result r;
    int64_t n, i;

    if (kind == NULL) return GEMINI_OK;
    if ((r = gemini__require_string(model, "tokenizer.model", &kind)) != GEMINI_OK) return r;
    pieces = gemini__find_meta(model, "tokenizer.pieces");
    if (pieces == NULL)
        return gemini__fail(GEMINI_ERR_MISSING_KEY, "missing required key 'tokenizer.pieces'");
    n = (int64_t)pieces->count;
    if (n < 1 || n > model->hparams.vocab_size)
        return gemini__fail(GEMINI_ERR_FORMAT, "tokenizer.pieces: %lld pieces for a vocabulary "
                            "of %d", (long long)n, model->hparams.vocab_size);
    if (kind->value_bytes == 8 && memcmp(kind->value, "byte-bpe", 8) == 0)
        return gemini__read_byte_bpe(model, kind, pieces);
    if ((r = gemini__require_array(model, "tokenizer.pieces", GEMINI_META_STRING, (uint64_t)n,
                                   &pieces)) ||
        (r = gemini__require_array(model, "tokenizer.scores", GEMINI_META_F32, (uint64_t)n,
                                   &scores)) ||
        (r = gemini__require_array(model, "tokenizer.types", GEMINI_META_U8, (uint64_t)n,
                                   &types)) ||
        (r = gemini__read_token_id(model, "tokenizer.unk_id", 1, &desc->unk_id)) ||
        (r = gemini__read_token_id(model, "tokenizer.bos_id", 1, &desc->bos_id)) ||
        (r = gemini__read_token_id(model, "tokenizer.eos_id", 1, &desc->eos_id)) ||
        (r = gemini__read_token_id(model, "tokenizer.pad_id", 1, &desc->pad_id)) ||
        (r = gemini__read_token_id(model, "tokenizer.eot_id", 0, &desc->eot_id)) ||
        (r = gemini__require_bool(model, "tokenizer.add_bos", &desc->add_bos)) ||
        (r = gemini__require_bool(model, "tokenizer.add_dummy_prefix",
                                  &desc->add_dummy_prefix)) ||
        (r = gemini__require_bool(model, "tokenizer.remove_extra_whitespaces",
                                  &desc->remove_extra_whitespaces)) ||
        (r = gemini__require_bool(model, "tokenizer.escape_whitespaces",
                                  &desc->escape_whitespaces)) ||
        (r = gemini__require_bool(model, "tokenizer.treat_whitespace_as_suffix",
                                  &desc->treat_whitespace_as_suffix)) ||
        (r = gemini__require_bool(model, "tokenizer.byte_fallback", &desc->byte_fallback)))
        return r;
    charsmap = gemini__find_meta(model, "tokenizer.charsmap");
    if (charsmap != NULL) {
        if (charsmap->type != GEMINI_META_ARRAY || charsmap->elem_type != GEMINI_META_U8)
            return gemini__fail(GEMINI_ERR_FORMAT, "key 'tokenizer.charsmap': not an array of "
                                "u8");
        desc->charsmap = charsmap->value;
        desc->charsmap_length = (size_t)charsmap->count;
    }

    if ((r = gemini__read_pieces(model, pieces, n)) != GEMINI_OK) return r;
    for (i = 0; i < n; i++)
        model->scores[i] = gemini__bits_f32(gemini__le32(scores->value + 4 * i));

    desc->model = (const char *)kind->value;
    desc->model_length = (size_t)kind->value_bytes;
    desc->n_pieces = (int32_t)n;
    desc->pieces = model->piece_pointers;
    desc->piece_lengths = model->piece_lengths;
    desc->scores = model->scores;
    desc->types = types->value;
    model->has_tokenizer = 1;
    return GEMINI_OK;
}

GEMINI_API void gemini_model_free(gemini_model *model)
{
    if (model == NULL) return;
    if (model->mapped) gemini__unmap_file(model->bytes, model->size);
    gemini__aligned_free(model->allocation);
    GEMINI_FREE(model->metas);
    GEMINI_FREE((void *)model->metas_by_key);
    GEMINI_FREE(model->tensors);
    GEMINI_FREE((void *)model->tensors_by_name);
    GEMINI_FREE(model->layers);
    GEMINI_FREE(model->enc_layers);
    GEMINI_FREE(model->vis_layers);
    GEMINI_FREE(model->merges);
    GEMINI_FREE((void *)model->piece_pointers);
    GEMINI_FREE(model->piece_lengths);
    GEMINI_FREE(model->scores);
    GEMINI_FREE(model);
}

/* Takes ownership of the bytes (mapping or allocation) even on failure. */
static gemini_result gemini__model_open(const uint8_t *bytes, size_t size, int mapped,
                                        void *allocation, const char *source,
                                        gemini_model **out)
{
    gemini_model *model = (gemini_model *)GEMINI_MALLOC(sizeof(gemini_model));
    gemini_result result;
    char message[512];

    if (model == NULL) {
        if (mapped) gemini__unmap_file(bytes, size);
        gemini__aligned_free(allocation);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory for a model");
    }
    memset(model, 0, sizeof *model);
    model->bytes = bytes;
    model->size = size;
    model->mapped = mapped;
    model->allocation = allocation;

    {
        const uint32_t one = 1;
        uint8_t first_byte;
        memcpy(&first_byte, &one, 1);
        result = first_byte == 1 ? GEMINI_OK
                                 : gemini__fail(GEMINI_ERR_UNSUPPORTED, "big-endian host: the "
                                                "tensors are little-endian and used in place");
    }
    if (result == GEMINI_OK) result = gemini__parse_directory(model);
    if (result == GEMINI_OK) result = gemini__read_hparams(model);
    if (result == GEMINI_OK) result = gemini__bind_weights(model);
    if (result == GEMINI_OK) result = gemini__read_tokenizer(model);
    if (result != GEMINI_OK) {
        /* Prefix the message with the source, so that it names the file. */
        snprintf(message, sizeof message, "%.100s: %.400s", source, gemini_last_error());
        gemini_model_free(model);
        gemini__log(gemini__default_log, gemini__default_log_user_data, GEMINI_LOG_ERROR, "%s",
                    message);
        return gemini__fail(result, "%s", message);
    }
    gemini__log(gemini__default_log, gemini__default_log_user_data, GEMINI_LOG_INFO,
                "%s: %s, %d layers, d %d, vocab %d, %lld tensors, %s", source,
                model->hparams.architecture, model->hparams.num_layers,
                model->hparams.hidden_size, model->hparams.vocab_size,
                (long long)model->n_tensors, mapped ? "mapped" : "in memory");
    *out = model;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_model_load(const char *path, gemini_model **out)
{
    const uint8_t *bytes = NULL;
    size_t size = 0;
    void *allocation = NULL;
    gemini_result result;
    if (out != NULL) *out = NULL;
    if (path == NULL || out == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_load: NULL argument");
    result = gemini__map_file(path, &bytes, &size, &allocation);
    if (result != GEMINI_OK) return result;
    return gemini__model_open(bytes, size, allocation == NULL, allocation, path, out);
}

GEMINI_API gemini_result gemini_model_load_memory(const void *data, size_t size,
                                                  gemini_model **out)
{
    void *copy = NULL;
    if (out != NULL) *out = NULL;
    if (data == NULL || out == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT,
                            "gemini_model_load_memory: NULL argument");
    if (((uintptr_t)data & 63) != 0) {
        copy = gemini__aligned_malloc(size);
        if (copy == NULL)
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory to copy %llu bytes",
                                (unsigned long long)size);
        memcpy(copy, data, size);
        data = copy;
    }
    return gemini__model_open((const uint8_t *)data, size, 0, copy, "<memory>", out);
}

GEMINI_API gemini_result gemini_model_verify(const gemini_model *model)
{
    int64_t i;
    if (model == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_verify: NULL model");
    for (i = 0; i < model->n_tensors; i++) {
        const gemini__tensor *t = &model->tensors[i];
        if (gemini_crc32(0, t->data, (size_t)t->size) != t->crc32)
            return gemini__fail(GEMINI_ERR_CHECKSUM, "tensor '%.*s': CRC-32 mismatch",
                                (int)t->name_length, t->name);
    }
    return GEMINI_OK;
}

GEMINI_API const gemini_model_hparams *gemini_model_get_hparams(const gemini_model *model)
{
    return model != NULL ? &model->hparams : NULL;
}

GEMINI_API int32_t gemini_model_vocab_size(const gemini_model *model)
{
    return model != NULL ? model->hparams.vocab_size : 0;
}

GEMINI_API const char *gemini_model_architecture(const gemini_model *model)
{
    return model != NULL ? model->hparams.architecture : "";
}

GEMINI_API int64_t gemini_model_meta_count(const gemini_model *model)
{
    return model != NULL ? model->n_metas : 0;
}

static void gemini__meta_info(const gemini__meta *m, gemini_meta_info *out)
{
    out->key = m->key;
    out->key_length = m->key_length;
    out->type = (gemini_meta_type)m->type;
    out->elem_type = (gemini_meta_type)m->elem_type;
    out->count = m->count;
    out->value = m->value;
    out->value_bytes = m->value_bytes;
}

GEMINI_API gemini_result gemini_model_meta_at(const gemini_model *model, int64_t index,
                                              gemini_meta_info *out)
{
    if (model == NULL || out == NULL || index < 0 || index >= model->n_metas)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_meta_at: bad argument");
    gemini__meta_info(&model->metas[index], out);
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_model_meta_find(const gemini_model *model, const char *key,
                                                gemini_meta_info *out)
{
    const gemini__meta *m;
    if (model == NULL || key == NULL || out == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_meta_find: NULL");
    m = gemini__find_meta(model, key);
    if (m == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "no key '%s'", key);
    gemini__meta_info(m, out);
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_model_meta_i64(const gemini_model *model, const char *key,
                                               int64_t *out)
{
    const gemini__meta *m;
    int64_t value;
    if (model == NULL || key == NULL || out == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_meta_i64: NULL");
    m = gemini__find_meta(model, key);
    if (m == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "no key '%s'", key);
    if (!gemini__meta_scalar_int(m->type, m->value, &value))
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': not an integer", key);
    *out = value;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_model_meta_f32(const gemini_model *model, const char *key,
                                               float *out)
{
    const gemini__meta *m;
    double value;
    if (model == NULL || key == NULL || out == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_meta_f32: NULL");
    m = gemini__find_meta(model, key);
    if (m == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "no key '%s'", key);
    if (!gemini__meta_scalar_float(m->type, m->value, &value))
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': not a float", key);
    *out = (float)value;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_model_meta_str(const gemini_model *model, const char *key,
                                               const char **out, size_t *out_length)
{
    const gemini__meta *m;
    if (model == NULL || key == NULL || out == NULL || out_length == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_meta_str: NULL");
    m = gemini__find_meta(model, key);
    if (m == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "no key '%s'", key);
    if (m->type != GEMINI_META_STRING)
        return gemini__fail(GEMINI_ERR_FORMAT, "key '%s': not a string", key);
    *out = (const char *)m->value;
    *out_length = (size_t)m->value_bytes;
    return GEMINI_OK;
}

GEMINI_API int64_t gemini_model_tensor_count(const gemini_model *model)
{
    return model != NULL ? model->n_tensors : 0;
}

static void gemini__tensor_info(const gemini__tensor *t, gemini_tensor_info *out)
{
    out->name = t->name;
    out->name_length = t->name_length;
    out->type = t->type;
    out->n_dims = t->n_dims;
    memcpy(out->dims, t->dims, sizeof out->dims);
    out->offset = t->offset;
    out->size = t->size;
    out->crc32 = t->crc32;
    out->data = t->data;
}

GEMINI_API gemini_result gemini_model_tensor_at(const gemini_model *model, int64_t index,
                                                gemini_tensor_info *out)
{
    if (model == NULL || out == NULL || index < 0 || index >= model->n_tensors)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_tensor_at: bad argument");
    gemini__tensor_info(&model->tensors[index], out);
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_model_tensor_find(const gemini_model *model, const char *name,
                                                  gemini_tensor_info *out)
{
    const gemini__tensor *t;
    if (model == NULL || name == NULL || out == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_tensor_find: NULL");
    t = gemini__find_tensor(model, name);
    if (t == NULL) return gemini__fail(GEMINI_ERR_MISSING_KEY, "no tensor '%s'", name);
    gemini__tensor_info(t, out);
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_model_tokenizer_desc(const gemini_model *model,
                                                     gemini_tokenizer_desc *out)
{
    if (model == NULL || out == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_tokenizer_desc: NULL");
    if (!model->has_tokenizer)
        return gemini__fail(GEMINI_ERR_MISSING_KEY, "the model has no tokenizer "
                            "(no 'tokenizer.model' key)");
    *out = model->tokenizer;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_model_tokenizer(const gemini_model *model, gemini_tok **out)
{
    gemini_tokenizer_desc stored;
    gemini_tok_spm_desc spm;
    gemini_result result;
    if (out == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_model_tokenizer: NULL");
    *out = NULL;
    result = gemini_model_tokenizer_desc(model, &stored);
    if (result != GEMINI_OK)
        return result;

    if (stored.model_length == 8 && memcmp(stored.model, "byte-bpe", 8) == 0) {
        gemini_tok_bpe_desc bpe;
        memset(&bpe, 0, sizeof bpe);
        bpe.n_pieces = stored.n_pieces;
        bpe.pieces = stored.pieces;
        bpe.piece_lengths = stored.piece_lengths;
        bpe.types = stored.types;
        bpe.n_merges = stored.n_merges;
        bpe.merges = stored.merges;
        bpe.bos_id = stored.bos_id;
        bpe.eos_id = stored.eos_id;
        bpe.pad_id = stored.pad_id;
        return gemini_tok_create_bpe(&bpe, out);
    }
    memset(&spm, 0, sizeof spm);
    if (stored.model_length == 17 && memcmp(stored.model, "sentencepiece-bpe", 17) == 0)
        spm.model_type = GEMINI_TOK_BPE;
    else if (stored.model_length == 21 && memcmp(stored.model, "sentencepiece-unigram", 21) == 0)
        spm.model_type = GEMINI_TOK_UNIGRAM;
    else
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "tokenizer.model '%.*s' is not supported",
                            (int)(stored.model_length < 64 ? stored.model_length : 64),
                            stored.model);

    spm.n_pieces = stored.n_pieces;
    spm.pieces = stored.pieces;
    spm.piece_lengths = stored.piece_lengths;
    spm.scores = stored.scores;
    spm.types = stored.types;
    spm.unk_id = stored.unk_id;
    spm.bos_id = stored.bos_id;
    spm.eos_id = stored.eos_id;
    spm.pad_id = stored.pad_id;
    spm.add_dummy_prefix = stored.add_dummy_prefix;
    spm.remove_extra_whitespaces = stored.remove_extra_whitespaces;
    spm.escape_whitespaces = stored.escape_whitespaces;
    spm.treat_whitespace_as_suffix = stored.treat_whitespace_as_suffix;
    spm.byte_fallback = stored.byte_fallback;
    spm.charsmap = stored.charsmap;
    spm.charsmap_size = stored.charsmap_length;
    return gemini_tok_create_spm(&spm, out);
}

/* ---- Kernels: dot products of one weight row with one activation row ------------------------ */

/* For f32/f16/bf16 weights x is f32; for q8_0/q4_0 weights x is a row of q8_0 blocks. */
typedef float (*gemini__dot_fn)(const void *w, const void *x, int64_t n);

static float gemini__dot_f32(const void *w, const void *x, int64_t n)
{
    const float *a = (const float *)w, *b = (const float *)x;
    float sum = 0.0f;
    int64_t i;
    for (i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}

static float gemini__dot_f16(const void *w, const void *x, int64_t n)
{
    const uint8_t *a = (const uint8_t *)w;
    const float *b = (const float *)x;
    float sum = 0.0f;
    int64_t i;
    for (i = 0; i < n; i++) sum += gemini_f16_to_f32(gemini__read_u16(a + 2 * i)) * b[i];
    return sum;
}

static float gemini__dot_bf16(const void *w, const void *x, int64_t n)
{
    const uint8_t *a = (const uint8_t *)w;
    const float *b = (const float *)x;
    float sum = 0.0f;
    int64_t i;
    for (i = 0; i < n; i++) sum += gemini_bf16_to_f32(gemini__read_u16(a + 2 * i)) * b[i];
    return sum;
}

static float gemini__dot_q8_0(const void *w, const void *x, int64_t n)
{
    const uint8_t *a = (const uint8_t *)w, *b = (const uint8_t *)x;
    float sum = 0.0f;
    int64_t block;
    int j;
    for (block = 0; block < n / GEMINI__QK; block++) {
        int32_t isum = 0;
        for (j = 0; j < GEMINI__QK; j++) isum += (int8_t)a[2 + j] * (int8_t)b[2 + j];
        sum += gemini_f16_to_f32(gemini__read_u16(a)) * gemini_f16_to_f32(gemini__read_u16(b)) *
               (float)isum;
        a += GEMINI__Q8_0_BYTES;
        b += GEMINI__Q8_0_BYTES;
    }
    return sum;
}

static float gemini__dot_q4_0(const void *w, const void *x, int64_t n)
{
    const uint8_t *a = (const uint8_t *)w, *b = (const uint8_t *)x;
    float sum = 0.0f;
    int64_t block;
    int j;
    for (block = 0; block < n / GEMINI__QK; block++) {
        int32_t isum = 0;
        for (j = 0; j < GEMINI__QK / 2; j++) {
            isum += ((a[2 + j] & 0x0f) - 8) * (int8_t)b[2 + j];
            isum += ((a[2 + j] >> 4) - 8) * (int8_t)b[2 + j + GEMINI__QK / 2];
        }
        sum += gemini_f16_to_f32(gemini__read_u16(a)) * gemini_f16_to_f32(gemini__read_u16(b)) *
               (float)isum;
        a += GEMINI__Q4_0_BYTES;
        b += GEMINI__Q8_0_BYTES;
    }
    return sum;
}

/* Two weight rows times two activation rows, out = {w0.x0, w0.x1, w1.x0, w1.x1}, in exactly
   the one-row kernel's order (q8_0/q4_0 on AVX2 and NEON; elsewhere the one-row kernel is
   used). */
typedef void (*gemini__dot2x2_fn)(const uint8_t *w0, const uint8_t *w1, const uint8_t *x0,
                                  const uint8_t *x1, int64_t n, float *out);

/* out[h][d] += p[h][k] * v_k[d] for n_heads heads, n_keys value rows (f32, f16 or bf16 by
   instance) and len dimensions (see GEMINI__WEIGHTED_SUMS). */
typedef void (*gemini__weighted_sum_fn)(float *out, int64_t out_stride, int n_heads,
                                        const float *p, int64_t p_stride, const uint8_t *values,
                                        int64_t row_bytes, int32_t n_keys, int64_t len);

/* One kind's weighted sum of a level (below). */
#define GEMINI__WEIGHTED_SUM_KIND(TARGET, NAME, LEVEL, KIND)                                       \
    GEMINI__##TARGET##_TARGET static void NAME(                                                    \
        float *out, int64_t out_stride, int n_heads, const float *p, int64_t p_stride,             \
        const uint8_t *values, int64_t row_bytes, int32_t n_keys, int64_t len)                     \
    {                                                                                              \
        gemini__weighted_kind_##LEVEL(out, out_stride, n_heads, p, p_stride, values, row_bytes,    \
                                      n_keys, len, KIND);                                          \
    }

/* A level's attention values, gemini__weighted_sums_LEVEL[type] for f32, f16 and bf16 rows:
   out[h][d] += p[h][k] * v_k[d] for n_heads heads (out_stride and p_stride floats apart),
   n_keys value rows (row_bytes apart) and len dimensions, with the very FMAs of one call of
   the level's axpy (f16, bf16 axpy) per key and head, in the same order for each output. The
   outputs stay in registers (gemini__weighted_block_LEVEL: DIMS dimensions of up to 4 heads)
   across runs of up to RUN keys, whose rows stay in cache for the next dimensions, and each
   value row is loaded, and converted, once for the heads. */
#define GEMINI__WEIGHTED_SUMS(TARGET, LEVEL, DIMS, RUN)                                            \
    GEMINI__##TARGET##_TARGET static GEMINI__INLINE void gemini__weighted_kind_##LEVEL(            \
        float *out, int64_t out_stride, int n_heads, const float *p, int64_t p_stride,             \
        const uint8_t *values, int64_t row_bytes, int32_t n_keys, int64_t len, const int kind)     \
    {                                                                                              \
        const int value_bytes = kind == 0 ? 4 : 2;                                                 \
        int32_t first, k, run;                                                                     \
        int64_t d;                                                                                 \
        int h;                                                                                     \
        for (first = 0; first < n_keys; first += run) {                                            \
            const uint8_t *rows = values + first * row_bytes;                                      \
            const float *weights = p + first;                                                      \
            run = n_keys - first < RUN ? n_keys - first : RUN;                                     \
            for (d = 0; d + DIMS <= len; d += DIMS) {                                              \
                const uint8_t *column = rows + d * value_bytes;                                    \
                for (h = 0; h + 4 <= n_heads; h += 4)                                              \
                    gemini__weighted_block_##LEVEL(out + h * out_stride + d, out_stride, 4,        \
                                                   weights + h * p_stride, p_stride, column,       \
                                                   row_bytes, run, kind);                          \
                for (; h + 2 <= n_heads; h += 2)                                                   \
                    gemini__weighted_block_##LEVEL(out + h * out_stride + d, out_stride, 2,        \
                                                   weights + h * p_stride, p_stride, column,       \
                                                   row_bytes, run, kind);                          \
                for (; h < n_heads; h++)                                                           \
                    gemini__weighted_block_##LEVEL(out + h * out_stride + d, out_stride, 1,        \
                                                   weights + h * p_stride, p_stride, column,       \
                                                   row_bytes, run, kind);                          \
            }                                                                                      \
            if (d < len) /* the last dimensions, key by key */                                     \
                for (k = 0; k < run; k++)                                                          \
                    for (h = 0; h < n_heads; h++) {                                                \
                        float *y = out + h * out_stride + d;                                       \
                        const uint8_t *x = rows + k * row_bytes + d * value_bytes;                 \
                        float weight = weights[h * p_stride + k];                                  \
                        if (kind == 1)                                                             \
                            gemini__axpy_f16_##LEVEL(y, weight, x, len - d);                       \
                        else if (kind == 2)                                                        \
                            gemini__axpy_bf16_##LEVEL(y, weight, x, len - d);                      \
                        else                                                                       \
                            gemini__axpy_##LEVEL(y, weight, (const float *)(const void *)x,        \
                                                 len - d);                                         \
                    }                                                                              \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    GEMINI__WEIGHTED_SUM_KIND(TARGET, gemini__weighted_sum_##LEVEL, LEVEL, 0)                      \
    GEMINI__WEIGHTED_SUM_KIND(TARGET, gemini__weighted_sum_f16_##LEVEL, LEVEL, 1)                  \
    GEMINI__WEIGHTED_SUM_KIND(TARGET, gemini__weighted_sum_bf16_##LEVEL, LEVEL, 2)                 \
                                                                                                   \
    static const gemini__weighted_sum_fn gemini__weighted_sums_##LEVEL[GEMINI_TYPE_COUNT] = {      \
        gemini__weighted_sum_##LEVEL, gemini__weighted_sum_f16_##LEVEL,                            \
        gemini__weighted_sum_bf16_##LEVEL, NULL, NULL                                              \
    };

/* gate = gelu_tanh(gate), times up unless up is NULL, over n values. */
typedef void (*gemini__geglu_fn)(float *gate, const float *up, int64_t n);

/* row[i] = e^(row[i] - max) for n values; returns their sum (a softmax's denominator). */
typedef float (*gemini__exp_sum_fn)(float *row, int64_t n, float max);

/* row = softmax(row) over n values (e^(x - max) / sum, the level's exponentials); returns the
   sum. */
typedef float (*gemini__softmax_fn)(float *row, int64_t n);

/* q8_0 blocks of n_blocks * 32 floats (gemini__quantize_q8_0's bits at every level). */
typedef void (*gemini__quantize_fn)(const float *src, uint8_t *dst, int64_t n_blocks);

/* y[t * y_stride + r] = w row r . x row t for n_rows weight rows (row_bytes apart) and n_tokens
   activation rows (x_stride bytes apart), each with the one-row kernel's bits. x_scales, or
   NULL, holds the activations' block scales as floats in groups of 16 tokens (see
   GEMINI__X_SCALE), starting at x's first token, which must begin a group (the matmul's tiles
   of tokens are whole groups): the AMX kernel reads them there; the others read x alone. */
typedef void (*gemini__tile_fn)(const uint8_t *w, int64_t row_bytes, int n_rows,
                                const uint8_t *x, int64_t x_stride, const float *x_scales,
                                int n_tokens, int64_t n, float *y, int64_t y_stride,
                                void *scratch, int64_t scratch_bytes);

/* Where token t's block scale of a row of n_blocks blocks sits in an x_scales array: groups of
   16 tokens, each [block][16 tokens], so that a tile of 16 tokens finds one block's 16 scales
   side by side. */
#define GEMINI__X_SCALE(t, block, n_blocks) \
    (((int64_t)(t) / 16 * (n_blocks) + (block)) * 16 + (t) % 16)
/* Bytes of an x_scales array for rows x columns (whole groups of 16 rows). */
#define GEMINI__X_SCALES_BYTES(rows, columns) \
    (((int64_t)(rows) / 16 + 1) * ((columns) / GEMINI__QK + 1) * 16 * 4)

/* Scratch bytes (64-byte aligned) that let the VNNI tile kernel prepare the activations once for
   all rows (less, or none, and it prepares them per group of 4 rows, with the same bits), and
   that the AMX tile kernel needs for its packed weights and sums (less, and it uses VNNI
   registers only, with the same bits); a context gives each thread the larger. */
#define GEMINI__VNNI_SCRATCH(n) ((int64_t)4 * ((n) / 64 + 1) * 128)
#define GEMINI__AMX_SCRATCH(n) ((int64_t)576 * ((n) / 32 + 1) + 4096)
#define GEMINI__TILE_SCRATCH(n) GEMINI__AMX_SCRATCH(n)

/* y += a * x over n floats (the weighted sum of values in attention). */
typedef void (*gemini__axpy_fn)(float *y, float a, const float *x, int64_t n);

static void gemini__axpy(float *y, float a, const float *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}

/* y += a * x over n values of an f16 or bf16 row (the weighted sum of values read from a
   16-bit KV cache); one table per kernel level, indexed by type (f16 and bf16 set). */
typedef void (*gemini__axpy_half_fn)(float *y, float a, const uint8_t *x, int64_t n);

static void gemini__axpy_f16(float *y, float a, const uint8_t *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) y[i] += a * gemini_f16_to_f32(gemini__read_u16(x + 2 * i));
}

static void gemini__axpy_bf16(float *y, float a, const uint8_t *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) y[i] += a * gemini_bf16_to_f32(gemini__read_u16(x + 2 * i));
}

static const gemini__axpy_half_fn gemini__axpy16_scalar[GEMINI_TYPE_COUNT] = {
    NULL, gemini__axpy_f16, gemini__axpy_bf16, NULL, NULL
};

static const gemini__dot_fn gemini__dot_scalar[GEMINI_TYPE_COUNT] = {
    gemini__dot_f32, gemini__dot_f16, gemini__dot_bf16, gemini__dot_q8_0, gemini__dot_q4_0
};

#ifdef GEMINI__HAVE_AVX2
GEMINI__AVX2_TARGET static float gemini__hsum_avx2(__m256 v)
{
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_shuffle_ps(sum, sum, 1));
    return _mm_cvtss_f32(sum);
}

GEMINI__AVX2_TARGET static float gemini__dot_f32_avx2(const void *w, const void *x, int64_t n)
{
    const float *a = (const float *)w, *b = (const float *)x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    float sum;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    sum = gemini__hsum_avx2(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

GEMINI__AVX2_TARGET static __m256 gemini__load_f16x8_avx2(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

GEMINI__AVX2_TARGET static __m256 gemini__load_bf16x8_avx2(const uint8_t *p)
{
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

GEMINI__AVX2_TARGET static float gemini__dot_f16_avx2(const void *w, const void *x, int64_t n)
{
    const uint8_t *a = (const uint8_t *)w;
    const float *b = (const float *)x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float sum;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(gemini__load_f16x8_avx2(a + 2 * i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(gemini__load_f16x8_avx2(a + 2 * i + 16),
                               _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(gemini__load_f16x8_avx2(a + 2 * i), _mm256_loadu_ps(b + i), acc0);
    sum = gemini__hsum_avx2(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum += gemini_f16_to_f32(gemini__read_u16(a + 2 * i)) * b[i];
    return sum;
}

GEMINI__AVX2_TARGET static float gemini__dot_bf16_avx2(const void *w, const void *x, int64_t n)
{
    const uint8_t *a = (const uint8_t *)w;
    const float *b = (const float *)x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float sum;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(gemini__load_bf16x8_avx2(a + 2 * i), _mm256_loadu_ps(b + i),
                               acc0);
        acc1 = _mm256_fmadd_ps(gemini__load_bf16x8_avx2(a + 2 * i + 16),
                               _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(gemini__load_bf16x8_avx2(a + 2 * i), _mm256_loadu_ps(b + i),
                               acc0);
    sum = gemini__hsum_avx2(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum += gemini_bf16_to_f32(gemini__read_u16(a + 2 * i)) * b[i];
    return sum;
}

/* The 2x2 float kernels: two weight rows by two tokens, out = {w0.x0, w0.x1, w1.x0, w1.x1},
   each sum accumulated exactly as dot_*_avx2 does it (same accumulators, same order, same
   tails), so a batch gives single tokens' bits; each weight vector is loaded (and widened)
   once for both tokens. f32 keeps 4 accumulators a sum, so its 2x2 is two passes of one row
   by two tokens (16 accumulators would not fit in the 16 registers). */
GEMINI__AVX2_TARGET static GEMINI__INLINE void gemini__dot1x2_f32_avx2(const float *a,
                                                                      const float *b0,
                                                                      const float *b1, int64_t n,
                                                                      float *out)
{
    const float *b[2];
    __m256 acc[2][4];
    int64_t i = 0;
    int t, c;
    b[0] = b0;
    b[1] = b1;
    for (t = 0; t < 2; t++)
        for (c = 0; c < 4; c++) acc[t][c] = _mm256_setzero_ps();
    for (; i + 32 <= n; i += 32)
        GEMINI__UNROLL
        for (c = 0; c < 4; c++) {
            __m256 weights = _mm256_loadu_ps(a + i + 8 * c);
            GEMINI__UNROLL
            for (t = 0; t < 2; t++)
                acc[t][c] = _mm256_fmadd_ps(weights, _mm256_loadu_ps(b[t] + i + 8 * c),
                                            acc[t][c]);
        }
    for (; i + 8 <= n; i += 8) {
        __m256 weights = _mm256_loadu_ps(a + i);
        for (t = 0; t < 2; t++)
            acc[t][0] = _mm256_fmadd_ps(weights, _mm256_loadu_ps(b[t] + i), acc[t][0]);
    }
    for (t = 0; t < 2; t++) {
        int64_t k;
        float sum = gemini__hsum_avx2(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]),
                                                    _mm256_add_ps(acc[t][2], acc[t][3])));
        for (k = i; k < n; k++) sum += a[k] * b[t][k];
        out[t] = sum;
    }
}

GEMINI__AVX2_TARGET static void gemini__dot2x2_f32_avx2(const uint8_t *w0, const uint8_t *w1,
                                                        const uint8_t *x0, const uint8_t *x1,
                                                        int64_t n, float *out)
{
    const float *b0 = (const float *)(const void *)x0, *b1 = (const float *)(const void *)x1;
    gemini__dot1x2_f32_avx2((const float *)(const void *)w0, b0, b1, n, out);
    gemini__dot1x2_f32_avx2((const float *)(const void *)w1, b0, b1, n, out + 2);
}

/* 8 f16 (bf16 = 0) or bf16 weights widened to f32. */
GEMINI__AVX2_TARGET static GEMINI__INLINE __m256 gemini__load_half_avx2(const uint8_t *p,
                                                                       int bf16)
{
    return bf16 ? gemini__load_bf16x8_avx2(p) : gemini__load_f16x8_avx2(p);
}

/* f16/bf16: 2 accumulators a sum, so all four sums fit: 8 accumulators. */
GEMINI__AVX2_TARGET static GEMINI__INLINE void gemini__dot2x2_half_avx2(
    const uint8_t *w0, const uint8_t *w1, const uint8_t *x0, const uint8_t *x1, int64_t n,
    int bf16, float *out)
{
    const uint8_t *w[2];
    const float *b[2];
    __m256 acc[4][2];
    int64_t i = 0;
    int r, t, c;
    w[0] = w0;
    w[1] = w1;
    b[0] = (const float *)(const void *)x0;
    b[1] = (const float *)(const void *)x1;
    for (r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16)
        GEMINI__UNROLL
        for (c = 0; c < 2; c++)
            GEMINI__UNROLL
            for (r = 0; r < 2; r++) {
                __m256 weights = gemini__load_half_avx2(w[r] + 2 * (i + 8 * c), bf16);
                GEMINI__UNROLL
                for (t = 0; t < 2; t++)
                    acc[2 * r + t][c] = _mm256_fmadd_ps(
                        weights, _mm256_loadu_ps(b[t] + i + 8 * c), acc[2 * r + t][c]);
            }
    for (; i + 8 <= n; i += 8)
        for (r = 0; r < 2; r++) {
            __m256 weights = gemini__load_half_avx2(w[r] + 2 * i, bf16);
            for (t = 0; t < 2; t++)
                acc[2 * r + t][0] = _mm256_fmadd_ps(weights, _mm256_loadu_ps(b[t] + i),
                                                    acc[2 * r + t][0]);
        }
    for (r = 0; r < 2; r++)
        for (t = 0; t < 2; t++) {
            int64_t k;
            float sum = gemini__hsum_avx2(_mm256_add_ps(acc[2 * r + t][0], acc[2 * r + t][1]));
            for (k = i; k < n; k++) {
                uint16_t bits = gemini__read_u16(w[r] + 2 * k);
                sum += (bf16 ? gemini_bf16_to_f32(bits) : gemini_f16_to_f32(bits)) * b[t][k];
            }
            out[2 * r + t] = sum;
        }
}

GEMINI__AVX2_TARGET static void gemini__dot2x2_f16_avx2(const uint8_t *w0, const uint8_t *w1,
                                                        const uint8_t *x0, const uint8_t *x1,
                                                        int64_t n, float *out)
{
    gemini__dot2x2_half_avx2(w0, w1, x0, x1, n, 0, out);
}

GEMINI__AVX2_TARGET static void gemini__dot2x2_bf16_avx2(const uint8_t *w0, const uint8_t *w1,
                                                         const uint8_t *x0, const uint8_t *x1,
                                                         int64_t n, float *out)
{
    gemini__dot2x2_half_avx2(w0, w1, x0, x1, n, 1, out);
}

/* The product of two blocks' f16 scales, converted by F16C. */
GEMINI__AVX2_TARGET static GEMINI__INLINE __m256 gemini__block_scale_avx2(const uint8_t *a,
                                                                          const uint8_t *b)
{
    return _mm256_set1_ps(_cvtsh_ss(gemini__read_u16(a)) * _cvtsh_ss(gemini__read_u16(b)));
}

/* The 32 nibbles of a q4_0 block as unsigned bytes 0..15 (value + 8), in value order. */
GEMINI__AVX2_TARGET static GEMINI__INLINE __m256i gemini__nibbles_q4_0_avx2(const uint8_t *block)
{
    const __m128i low_mask = _mm_set1_epi8(0x0f);
    __m128i packed = _mm_loadu_si128((const __m128i *)(const void *)(block + 2));
    __m128i low = _mm_and_si128(packed, low_mask);
    __m128i high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_mask);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(low), high, 1);
}

/* The 32 values of a q4_0 block as signed bytes in [-8, 7], in value order. */
GEMINI__AVX2_TARGET static GEMINI__INLINE __m256i gemini__unpack_q4_0_avx2(const uint8_t *block)
{
    return _mm256_sub_epi8(gemini__nibbles_q4_0_avx2(block), _mm256_set1_epi8(8));
}

GEMINI__AVX2_TARGET static void gemini__axpy_avx2(float *y, float a, const float *x, int64_t n)
{
    __m256 scale = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(scale, _mm256_loadu_ps(x + i),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

GEMINI__AVX2_TARGET static void gemini__axpy_f16_avx2(float *y, float a, const uint8_t *x,
                                                      int64_t n)
{
    __m256 scale = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(scale, gemini__load_f16x8_avx2(x + 2 * i),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * gemini_f16_to_f32(gemini__read_u16(x + 2 * i));
}

GEMINI__AVX2_TARGET static void gemini__axpy_bf16_avx2(float *y, float a, const uint8_t *x,
                                                       int64_t n)
{
    __m256 scale = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(scale, gemini__load_bf16x8_avx2(x + 2 * i),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * gemini_bf16_to_f32(gemini__read_u16(x + 2 * i));
}

static const gemini__axpy_half_fn gemini__axpy16_avx2[GEMINI_TYPE_COUNT] = {
    NULL, gemini__axpy_f16_avx2, gemini__axpy_bf16_avx2, NULL, NULL
};

/* Eight values of a row of kind 0 (f32), 1 (f16) or 2 (bf16), as floats. */
GEMINI__AVX2_TARGET static GEMINI__INLINE __m256 gemini__load_kind_avx2(const uint8_t *p,
                                                                        const int kind)
{
    if (kind == 1) return gemini__load_f16x8_avx2(p);
    if (kind == 2) return gemini__load_bf16x8_avx2(p);
    return _mm256_loadu_ps((const float *)(const void *)p);
}

/* H heads x 16 dimensions of gemini__weighted_sums_avx2, in 2 x H registers; values of kind
   0 (f32), 1 (f16) or 2 (bf16). */
GEMINI__AVX2_TARGET static GEMINI__INLINE void gemini__weighted_block_avx2(
    float *out, int64_t out_stride, const int H, const float *p, int64_t p_stride,
    const uint8_t *values, int64_t row_bytes, int32_t n_keys, const int kind)
{
    const int value_bytes = kind == 0 ? 4 : 2;
    __m256 acc[4][2];
    int32_t k;
    int h, c;
    GEMINI__UNROLL
    for (h = 0; h < H; h++)
        GEMINI__UNROLL
        for (c = 0; c < 2; c++) acc[h][c] = _mm256_loadu_ps(out + h * out_stride + 8 * c);
    for (k = 0; k < n_keys; k++) {
        const uint8_t *v = values + k * row_bytes;
        __m256 value[2];
        GEMINI__UNROLL
        for (c = 0; c < 2; c++) value[c] = gemini__load_kind_avx2(v + 8 * c * value_bytes, kind);
        GEMINI__UNROLL
        for (h = 0; h < H; h++) {
            __m256 weight = _mm256_set1_ps(p[h * p_stride + k]);
            GEMINI__UNROLL
            for (c = 0; c < 2; c++) acc[h][c] = _mm256_fmadd_ps(weight, value[c], acc[h][c]);
        }
    }
    GEMINI__UNROLL
    for (h = 0; h < H; h++)
        GEMINI__UNROLL
        for (c = 0; c < 2; c++) _mm256_storeu_ps(out + h * out_stride + 8 * c, acc[h][c]);
}

GEMINI__WEIGHTED_SUMS(AVX2, avx2, 16, 64)

/* gemini__quantize_q8_0 in 8 lanes, bit for bit, as gemini__quantize_q8_0_avx512 does it: max
   ignores NaN (it keeps its second operand), roundf's half away from zero is a truncation and
   a step away from zero where the dropped part (exact) is at least one half, and NaN clamps to
   -128. vpackssdw / vpacksswb work within 128-bit halves; a permutation restores the order. */
GEMINI__AVX2_TARGET static void gemini__quantize_q8_0_avx2(const float *src, uint8_t *dst,
                                                           int64_t n_blocks)
{
    const __m256 sign_bit = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f);
    const __m256 one = _mm256_set1_ps(1.0f), lowest = _mm256_set1_ps(-128.0f);
    const __m256 highest = _mm256_set1_ps(127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int64_t b;
    int k;
    for (b = 0; b < n_blocks; b++, src += GEMINI__QK, dst += GEMINI__Q8_0_BYTES) {
        __m256 v[4], max_abs = _mm256_setzero_ps();
        __m128 max4;
        __m256i q[4], pairs01, pairs23;
        float d, inverse;
        for (k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(src + 8 * k);
            max_abs = _mm256_max_ps(_mm256_andnot_ps(sign_bit, v[k]), max_abs);
        }
        max4 = _mm_max_ps(_mm256_castps256_ps128(max_abs), _mm256_extractf128_ps(max_abs, 1));
        max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
        max4 = _mm_max_ss(max4, _mm_shuffle_ps(max4, max4, 1));
        d = _mm_cvtss_f32(max4) / 127.0f;
        inverse = d != 0.0f ? 1.0f / d : 0.0f;
        gemini__write_u16(dst, gemini_f32_to_f16(d));
        for (k = 0; k < 4; k++) {
            __m256 scaled = _mm256_mul_ps(v[k], _mm256_set1_ps(inverse));
            __m256 whole = _mm256_round_ps(scaled, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __m256 dropped = _mm256_andnot_ps(sign_bit, _mm256_sub_ps(scaled, whole));
            __m256 away = _mm256_cmp_ps(dropped, half, _CMP_GE_OQ);
            __m256 step = _mm256_or_ps(one, _mm256_and_ps(sign_bit, scaled));
            __m256 in_range;
            whole = _mm256_add_ps(whole, _mm256_and_ps(away, step));
            in_range = _mm256_cmp_ps(whole, lowest, _CMP_GE_OQ); /* false for NaN */
            whole = _mm256_blendv_ps(lowest, _mm256_min_ps(whole, highest), in_range);
            q[k] = _mm256_cvttps_epi32(whole);
        }
        pairs01 = _mm256_packs_epi32(q[0], q[1]);
        pairs23 = _mm256_packs_epi32(q[2], q[3]);
        _mm256_storeu_si256((__m256i *)(void *)(dst + 2),
                            _mm256_permutevar8x32_epi32(_mm256_packs_epi16(pairs01, pairs23),
                                                        order));
    }
}

/* e^x in 8 lanes, as gemini__exp_avx512 (the same operations, so the same bits): 2^n is made
   in the exponent field, n being in [-126, 127] once x is clamped. */
GEMINI__AVX2_TARGET static __m256 gemini__exp_avx2(__m256 x)
{
    const __m256 ln2_high = _mm256_set1_ps(0.693359375f);
    const __m256 ln2_low = _mm256_set1_ps(-2.12194440e-4f);
    __m256 n, r, p;
    __m256i power;
    /* the bound first: vmaxps/vminps return their second operand when one is NaN */
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-87.0f), x));
    n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_fnmadd_ps(n, ln2_high, x);
    r = _mm256_fnmadd_ps(n, ln2_low, r);
    p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    power = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(power));
}

/* gemini__geglu_avx512 in 8 lanes (the same bits); the last lanes by masked loads and stores. */
GEMINI__AVX2_TARGET static void gemini__geglu_avx2(float *gate, const float *up, int64_t n)
{
    const __m256 minus_two_c = _mm256_set1_ps(-2.0f * 0.7978845608028654f);
    const __m256 cubic = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.0f);
    const __m256i lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int64_t i;
    for (i = 0; i < n; i += 8) {
        __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - i < 8 ? (int)(n - i) : 8),
                                           lane_index);
        __m256 x = _mm256_maskload_ps(gate + i, lanes);
        __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(cubic, x), _mm256_mul_ps(x, x), x);
        __m256 y = _mm256_div_ps(x, _mm256_add_ps(one, gemini__exp_avx2(
                                                           _mm256_mul_ps(minus_two_c, inner))));
        if (up != NULL) y = _mm256_mul_ps(y, _mm256_maskload_ps(up + i, lanes));
        _mm256_maskstore_ps(gate + i, lanes, y);
    }
}

/* gemini__exp_sum in 8 lanes: each lane sums its values in order, then the lanes are added
   (not the scalar order, and e^x within ~2 ulp of libm's: softmax weights within a few ulp). */
GEMINI__AVX2_TARGET static float gemini__exp_sum_avx2(float *row, int64_t n, float max)
{
    const __m256i lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 minus_max = _mm256_set1_ps(-max);
    __m256 sum = _mm256_setzero_ps();
    int64_t i;
    for (i = 0; i < n; i += 8) {
        __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - i < 8 ? (int)(n - i) : 8),
                                           lane_index);
        __m256 e = gemini__exp_avx2(_mm256_add_ps(_mm256_maskload_ps(row + i, lanes),
                                                  minus_max));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(lanes));
        _mm256_maskstore_ps(row + i, lanes, e);
        sum = _mm256_add_ps(sum, e);
    }
    return gemini__hsum_avx2(sum);
}

/* gemini__softmax with this level's exponentials. The maximum and the division are exact
   operations, so their vector loops give the scalar loops' values (a NaN score is passed over
   by the maximum, as by the scalar comparison). */
GEMINI__AVX2_TARGET static float gemini__softmax_avx2(float *row, int64_t n)
{
    __m256 top = _mm256_set1_ps(-INFINITY), divisor;
    float max_score, lanes[8], sum;
    int64_t i = 0;
    int k;
    for (; i + 8 <= n; i += 8) top = _mm256_max_ps(_mm256_loadu_ps(row + i), top);
    _mm256_storeu_ps(lanes, top);
    max_score = lanes[0];
    for (k = 1; k < 8; k++)
        if (lanes[k] > max_score) max_score = lanes[k];
    for (; i < n; i++)
        if (row[i] > max_score) max_score = row[i];
    sum = gemini__exp_sum_avx2(row, n, max_score);
    divisor = _mm256_set1_ps(sum);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(row + i, _mm256_div_ps(_mm256_loadu_ps(row + i), divisor));
    for (; i < n; i++) row[i] /= sum;
    return sum;
}

/* The 8 int32 sums of four adjacent products of unsigned bytes u and signed bytes s: AVX2
   pairs them with vpmaddubsw (no int16 saturation here, as |s| <= 127: q8_0 activations are
   quantised to [-127, 127]) and then vpmaddwd. */
GEMINI__AVX2_TARGET static GEMINI__INLINE __m256i gemini__isum_avx2(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* The integer kernels (q8_0 or q4_0 weights, q8_0 activations), once per instruction set:
   TARGET, ISUM (as gemini__isum_avx2) and the name suffix SFX. Signed x signed bytes become
   |w| x (x with w's sign), as vpmaddubsw and vpdpbusd take unsigned x signed. Each int32
   lane is the same exact integer whichever ISUM is used, so every instantiation gives the
   same bits. The 2x2 kernels take two weight rows times two activation rows: out = {w0.x0,
   w0.x1, w1.x0, w1.x1}, each sum accumulated exactly as the one-row kernel does it (even
   blocks, odd blocks, then their sum), so a batch gives the same bits as single tokens; the
   weight blocks are loaded and prepared once for both tokens. */
#define GEMINI__I8_KERNELS(SFX, TARGET, ISUM)                                                      \
    /* Sum of the 32 products of signed bytes w and x, as 8 float lanes */                         \
    TARGET static GEMINI__INLINE __m256 gemini__dot_i8x32_##SFX(__m256i w, __m256i x)              \
    {                                                                                              \
        return _mm256_cvtepi32_ps(ISUM(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)));           \
    }                                                                                              \
                                                                                                   \
    TARGET static float gemini__dot_q8_0_##SFX(const void *w, const void *x, int64_t n)            \
    {                                                                                              \
        const uint8_t *a = (const uint8_t *)w, *b = (const uint8_t *)x;                            \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                             \
        int64_t block, n_blocks = n / GEMINI__QK;                                                  \
        for (block = 0; block + 2 <= n_blocks; block += 2) {                                       \
            const uint8_t *a1 = a + GEMINI__Q8_0_BYTES, *b1 = b + GEMINI__Q8_0_BYTES;              \
            __m256i qa0 = _mm256_loadu_si256((const __m256i *)(const void *)(a + 2));              \
            __m256i qb0 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 2));              \
            __m256i qa1 = _mm256_loadu_si256((const __m256i *)(const void *)(a1 + 2));             \
            __m256i qb1 = _mm256_loadu_si256((const __m256i *)(const void *)(b1 + 2));             \
            acc0 = _mm256_fmadd_ps(gemini__dot_i8x32_##SFX(qa0, qb0),                              \
                                   gemini__block_scale_avx2(a, b), acc0);                          \
            acc1 = _mm256_fmadd_ps(gemini__dot_i8x32_##SFX(qa1, qb1),                              \
                                   gemini__block_scale_avx2(a1, b1), acc1);                        \
            a += 2 * GEMINI__Q8_0_BYTES;                                                           \
            b += 2 * GEMINI__Q8_0_BYTES;                                                           \
        }                                                                                          \
        if (block < n_blocks) {                                                                    \
            __m256i qa = _mm256_loadu_si256((const __m256i *)(const void *)(a + 2));               \
            __m256i qb = _mm256_loadu_si256((const __m256i *)(const void *)(b + 2));               \
            acc0 = _mm256_fmadd_ps(gemini__dot_i8x32_##SFX(qa, qb),                                \
                                   gemini__block_scale_avx2(a, b), acc0);                          \
        }                                                                                          \
        return gemini__hsum_avx2(_mm256_add_ps(acc0, acc1));                                       \
    }                                                                                              \
                                                                                                   \
    TARGET static float gemini__dot_q4_0_##SFX(const void *w, const void *x, int64_t n)            \
    {                                                                                              \
        const uint8_t *a = (const uint8_t *)w, *b = (const uint8_t *)x;                            \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                             \
        int64_t block, n_blocks = n / GEMINI__QK;                                                  \
        for (block = 0; block + 2 <= n_blocks; block += 2) {                                       \
            const uint8_t *a1 = a + GEMINI__Q4_0_BYTES, *b1 = b + GEMINI__Q8_0_BYTES;              \
            __m256i qb0 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 2));              \
            __m256i qb1 = _mm256_loadu_si256((const __m256i *)(const void *)(b1 + 2));             \
            acc0 = _mm256_fmadd_ps(gemini__dot_i8x32_##SFX(gemini__unpack_q4_0_avx2(a), qb0),      \
                                   gemini__block_scale_avx2(a, b), acc0);                          \
            acc1 = _mm256_fmadd_ps(gemini__dot_i8x32_##SFX(gemini__unpack_q4_0_avx2(a1), qb1),     \
                                   gemini__block_scale_avx2(a1, b1), acc1);                        \
            a += 2 * GEMINI__Q4_0_BYTES;                                                           \
            b += 2 * GEMINI__Q8_0_BYTES;                                                           \
        }                                                                                          \
        if (block < n_blocks) {                                                                    \
            __m256i qb = _mm256_loadu_si256((const __m256i *)(const void *)(b + 2));               \
            acc0 = _mm256_fmadd_ps(gemini__dot_i8x32_##SFX(gemini__unpack_q4_0_avx2(a), qb),       \
                                   gemini__block_scale_avx2(a, b), acc0);                          \
        }                                                                                          \
        return gemini__hsum_avx2(_mm256_add_ps(acc0, acc1));                                       \
    }                                                                                              \
                                                                                                   \
    /* Adds the products of one block pair (w, x) to acc: (w . x) * d_w * d_x */                   \
    TARGET static GEMINI__INLINE __m256 gemini__block_product_##SFX(__m256i w, __m256i magnitude,  \
                                                                    float dw, __m256i x,           \
                                                                    const uint8_t *x_block,        \
                                                                    __m256 acc)                    \
    {                                                                                              \
        __m256 sums = _mm256_cvtepi32_ps(ISUM(magnitude, _mm256_sign_epi8(x, w)));                 \
        return _mm256_fmadd_ps(sums, _mm256_set1_ps(dw * _cvtsh_ss(gemini__read_u16(x_block))),    \
                               acc);                                                               \
    }                                                                                              \
                                                                                                   \
    /* One block of the 2x2 product into the four accumulators acc[0..3] */                        \
    TARGET static GEMINI__INLINE void gemini__block_2x2_##SFX(const uint8_t *a0,                   \
                                                              const uint8_t *a1, int q4,           \
                                                              const uint8_t *x0,                   \
                                                              const uint8_t *x1, __m256 *acc)      \
    {                                                                                              \
        __m256i w0 = q4 ? gemini__unpack_q4_0_avx2(a0)                                             \
                        : _mm256_loadu_si256((const __m256i *)(const void *)(a0 + 2));             \
        __m256i w1 = q4 ? gemini__unpack_q4_0_avx2(a1)                                             \
                        : _mm256_loadu_si256((const __m256i *)(const void *)(a1 + 2));             \
        __m256i v0 = _mm256_loadu_si256((const __m256i *)(const void *)(x0 + 2));                  \
        __m256i v1 = _mm256_loadu_si256((const __m256i *)(const void *)(x1 + 2));                  \
        __m256i m0 = _mm256_sign_epi8(w0, w0), m1 = _mm256_sign_epi8(w1, w1);                      \
        float d0 = _cvtsh_ss(gemini__read_u16(a0)), d1 = _cvtsh_ss(gemini__read_u16(a1));          \
        acc[0] = gemini__block_product_##SFX(w0, m0, d0, v0, x0, acc[0]);                          \
        acc[1] = gemini__block_product_##SFX(w0, m0, d0, v1, x1, acc[1]);                          \
        acc[2] = gemini__block_product_##SFX(w1, m1, d1, v0, x0, acc[2]);                          \
        acc[3] = gemini__block_product_##SFX(w1, m1, d1, v1, x1, acc[3]);                          \
    }                                                                                              \
                                                                                                   \
    TARGET static GEMINI__INLINE void gemini__dot2x2_i8_##SFX(const uint8_t *a0,                   \
                                                              const uint8_t *a1, int q4,           \
                                                              const uint8_t *x0,                   \
                                                              const uint8_t *x1, int64_t n,        \
                                                              float *out)                          \
    {                                                                                              \
        __m256 even[4], odd[4];                                                                    \
        int64_t block, n_blocks = n / GEMINI__QK;                                                  \
        int64_t a_bytes = q4 ? GEMINI__Q4_0_BYTES : GEMINI__Q8_0_BYTES;                            \
        int k;                                                                                     \
        for (k = 0; k < 4; k++) even[k] = odd[k] = _mm256_setzero_ps();                            \
        for (block = 0; block + 2 <= n_blocks; block += 2) {                                       \
            gemini__block_2x2_##SFX(a0, a1, q4, x0, x1, even);                                     \
            gemini__block_2x2_##SFX(a0 + a_bytes, a1 + a_bytes, q4, x0 + GEMINI__Q8_0_BYTES,       \
                                    x1 + GEMINI__Q8_0_BYTES, odd);                                 \
            a0 += 2 * a_bytes;                                                                     \
            a1 += 2 * a_bytes;                                                                     \
            x0 += 2 * GEMINI__Q8_0_BYTES;                                                          \
            x1 += 2 * GEMINI__Q8_0_BYTES;                                                          \
        }                                                                                          \
        if (block < n_blocks) gemini__block_2x2_##SFX(a0, a1, q4, x0, x1, even);                   \
        for (k = 0; k < 4; k++) out[k] = gemini__hsum_avx2(_mm256_add_ps(even[k], odd[k]));        \
    }                                                                                              \
                                                                                                   \
    TARGET static void gemini__dot2x2_q8_0_##SFX(const uint8_t *w0, const uint8_t *w1,             \
                                                 const uint8_t *x0, const uint8_t *x1,             \
                                                 int64_t n, float *out)                            \
    {                                                                                              \
        gemini__dot2x2_i8_##SFX(w0, w1, 0, x0, x1, n, out);                                        \
    }                                                                                              \
                                                                                                   \
    TARGET static void gemini__dot2x2_q4_0_##SFX(const uint8_t *w0, const uint8_t *w1,             \
                                                 const uint8_t *x0, const uint8_t *x1,             \
                                                 int64_t n, float *out)                            \
    {                                                                                              \
        gemini__dot2x2_i8_##SFX(w0, w1, 1, x0, x1, n, out);                                        \
    }

GEMINI__I8_KERNELS(avx2, GEMINI__AVX2_TARGET, gemini__isum_avx2)

static const gemini__dot2x2_fn gemini__dot2x2_avx2[GEMINI_TYPE_COUNT] = {
    gemini__dot2x2_f32_avx2, gemini__dot2x2_f16_avx2, gemini__dot2x2_bf16_avx2,
    gemini__dot2x2_q8_0_avx2, gemini__dot2x2_q4_0_avx2
};

static const gemini__dot_fn gemini__dot_avx2[GEMINI_TYPE_COUNT] = {
    gemini__dot_f32_avx2, gemini__dot_f16_avx2, gemini__dot_bf16_avx2, gemini__dot_q8_0_avx2,
    gemini__dot_q4_0_avx2
};

/* Decode streams every weight once and the hardware prefetcher alone leaves the loads waiting
   (one thread: 5.7 GB/s from memory against 14.7 read by the roofline); asking for the same
   place a few rows on, about 16 KiB ahead, into L2, keeps enough lines in flight (10.7 GB/s;
   8 KiB into L1: 10.0). An address past the matrix is harmless: prefetches do not fault. */
#define GEMINI__PREFETCH_BYTES 16384

/* The AVX2 tile kernels (q8_0 and q4_0 weights, q8_0 activations) give dot_*_avx2's bits: each
   row-token sum keeps its two accumulators (even blocks, odd blocks) and its per-block
   fma(lanes, d_w * d_x), while a weight block is loaded, unpacked and its scale widened once
   for 4 tokens. The activations' side is made once per call for all its rows: each block
   scale widened and repeated over 8 lanes (one vmulps makes the scale product) and, for q4_0,
   the int32 lanes of 8 x (each 4 values' sum). q4_0 then takes the nibbles as the unsigned
   bytes of vpmaddubsw (0..15, so no int16 saturation) and subtracts that side: the same int32
   lanes as |w| x (x with w's sign), two operations fewer a block. Decode goes row by row,
   prefetching ahead: on a Zen 3 that streams 13% faster than the one-row kernel alone, while
   4 rows side by side per activation block ran 30% slower (the hardware prefetcher seems to
   lose the interleaved streams). */
#define GEMINI__AVX2_SCRATCH(n) \
    ((int64_t)((n) / GEMINI__QK) * (4 * (32 + 32) + GEMINI__PAIR_SIDE * 32 / 2))

/* The side of n_tokens (up to 4) tokens: scales[t * n_blocks + block] and, for q4_0,
   corrections[t * n_blocks + block]. */
GEMINI__AVX2_TARGET static void gemini__tile_side_avx2(const uint8_t *x, int64_t x_stride,
                                                       int n_tokens, int64_t n_blocks, int q4,
                                                       __m256 *scales, __m256i *corrections)
{
    const __m256i eight = _mm256_set1_epi8(8);
    int64_t block;
    int t;
    for (t = 0; t < n_tokens; t++)
        for (block = 0; block < n_blocks; block++) {
            const uint8_t *xb = x + t * x_stride + block * GEMINI__Q8_0_BYTES;
            __m256i values = _mm256_loadu_si256((const __m256i *)(const void *)(xb + 2));
            _mm256_storeu_ps((float *)(scales + t * n_blocks + block),
                             _mm256_set1_ps(_cvtsh_ss(gemini__read_u16(xb))));
            if (q4)
                _mm256_storeu_si256(corrections + t * n_blocks + block,
                                    gemini__isum_avx2(eight, values));
        }
}

/* One block of one row by T tokens into acc[t]. */
GEMINI__AVX2_TARGET static GEMINI__INLINE void gemini__tile_block_avx2(
    const uint8_t *wb, const uint8_t *x, int64_t x_stride, const __m256 *scales,
    const __m256i *corrections, int64_t n_blocks, const int T, int q4, int64_t block,
    __m256 *acc)
{
    __m256i values = q4 ? gemini__nibbles_q4_0_avx2(wb)
                        : _mm256_loadu_si256((const __m256i *)(const void *)(wb + 2));
    __m256i magnitude = q4 ? values : _mm256_sign_epi8(values, values);
    __m256 dw = _mm256_set1_ps(_cvtsh_ss(gemini__read_u16(wb)));
    int t;
    GEMINI__UNROLL
    for (t = 0; t < T; t++) {
        const uint8_t *xb = x + t * x_stride + block * GEMINI__Q8_0_BYTES;
        __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(xb + 2));
        __m256 scale = _mm256_mul_ps(dw, _mm256_loadu_ps((const float *)(scales + t * n_blocks +
                                                                          block)));
        __m256i lanes;
        if (q4)
            lanes = _mm256_sub_epi32(gemini__isum_avx2(magnitude, xv),
                                     _mm256_loadu_si256(corrections + t * n_blocks + block));
        else
            lanes = gemini__isum_avx2(magnitude, _mm256_sign_epi8(xv, values));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), scale, acc[t]);
    }
}

/* y[t * y_stride] = w . token t for T tokens, prefetching `ahead` bytes on. */
GEMINI__AVX2_TARGET static GEMINI__INLINE void gemini__tile_row_avx2(
    const uint8_t *w, const uint8_t *x, int64_t x_stride, const __m256 *scales,
    const __m256i *corrections, int64_t n_blocks, const int T, int q4, int64_t ahead, float *y,
    int64_t y_stride)
{
    const int64_t w_bytes = q4 ? GEMINI__Q4_0_BYTES : GEMINI__Q8_0_BYTES;
    __m256 even[4], odd[4];
    int64_t block;
    int t;
    GEMINI__UNROLL
    for (t = 0; t < T; t++) even[t] = odd[t] = _mm256_setzero_ps();
    for (block = 0; block + 2 <= n_blocks; block += 2) {
        const uint8_t *wb = w + block * w_bytes;
        _mm_prefetch((const char *)(wb + ahead), _MM_HINT_T1);
        gemini__tile_block_avx2(wb, x, x_stride, scales, corrections, n_blocks, T, q4, block,
                                even);
        gemini__tile_block_avx2(wb + w_bytes, x, x_stride, scales, corrections, n_blocks, T, q4,
                                block + 1, odd);
    }
    if (block < n_blocks)
        gemini__tile_block_avx2(w + block * w_bytes, x, x_stride, scales, corrections, n_blocks,
                                T, q4, block, even);
    GEMINI__UNROLL
    for (t = 0; t < T; t++) y[t * y_stride] = gemini__hsum_avx2(_mm256_add_ps(even[t], odd[t]));
}

/* q4_0 decode, two blocks a step. A q4_0 block's unpacking (and, shift, and, insert) weighs as
   much as its products when one token uses it, so two blocks' nibbles are loaded into one
   register and split once: the low nibbles (values 0-15) of both blocks, then the high ones
   (16-31). The token's side is laid out to match, per block pair: x's values 0-15 of both
   blocks (lo), values 16-31 (hi), their corrections, and the scales as [d_x even x4, d_x odd
   x4]. Lane j < 4 of the lo sums is then lane j of the even block's sums and lane 4 + j that
   of the odd block, so the lo accumulator carries lanes 0-3 of dot_q4_0_avx2's even and odd
   accumulators (the hi one lanes 4-7), through the same operations in the same order: two
   128-bit permutations at the end give that kernel's accumulators back, and its bits. */
#define GEMINI__PAIR_SIDE 5 /* vectors per block pair: x lo, x hi, corrections lo, hi, scales */

GEMINI__AVX2_TARGET static void gemini__pair_side_q4_0_avx2(const uint8_t *x, int64_t n_blocks,
                                                            __m256i *side)
{
    const __m256i eight = _mm256_set1_epi8(8);
    int64_t pair;
    for (pair = 0; pair < n_blocks / 2; pair++) {
        const uint8_t *even = x + 2 * pair * GEMINI__Q8_0_BYTES;
        const uint8_t *odd = even + GEMINI__Q8_0_BYTES;
        __m256i x_even = _mm256_loadu_si256((const __m256i *)(const void *)(even + 2));
        __m256i x_odd = _mm256_loadu_si256((const __m256i *)(const void *)(odd + 2));
        __m256i lo = _mm256_permute2x128_si256(x_even, x_odd, 0x20);
        __m256i hi = _mm256_permute2x128_si256(x_even, x_odd, 0x31);
        __m128 d_even = _mm_set1_ps(_cvtsh_ss(gemini__read_u16(even)));
        __m128 d_odd = _mm_set1_ps(_cvtsh_ss(gemini__read_u16(odd)));
        __m256i *out = side + pair * GEMINI__PAIR_SIDE;
        _mm256_storeu_si256(out, lo);
        _mm256_storeu_si256(out + 1, hi);
        _mm256_storeu_si256(out + 2, gemini__isum_avx2(eight, lo));
        _mm256_storeu_si256(out + 3, gemini__isum_avx2(eight, hi));
        _mm256_storeu_si256(out + 4, _mm256_castps_si256(_mm256_insertf128_ps(
                                         _mm256_castps128_ps256(d_even), d_odd, 1)));
    }
}

/* y = w . x for one q4_0 row and one token (side from gemini__pair_side_q4_0_avx2; scales and
   corrections as gemini__tile_side_avx2 makes them, for an odd last block). */
GEMINI__AVX2_TARGET static void gemini__tile_pairs_q4_0_avx2(const uint8_t *w,
                                                             const uint8_t *x,
                                                             const __m256i *side,
                                                             const __m256 *scales,
                                                             const __m256i *corrections,
                                                             int64_t n_blocks, int64_t ahead,
                                                             float *y)
{
    const __m256i low_mask = _mm256_set1_epi8(0x0f);
    const __m256i both_lanes = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    __m256 acc_lo = _mm256_setzero_ps(), acc_hi = _mm256_setzero_ps(), even, odd;
    int64_t pair, n_pairs = n_blocks / 2;
    for (pair = 0; pair < n_pairs; pair++) {
        const uint8_t *wb = w + 2 * pair * GEMINI__Q4_0_BYTES;
        const __m256i *s = side + pair * GEMINI__PAIR_SIDE;
        __m256i packed = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(wb + 2))),
            _mm_loadu_si128((const __m128i *)(const void *)(wb + GEMINI__Q4_0_BYTES + 2)), 1);
        __m256i lo = _mm256_and_si256(packed, low_mask);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);
        __m128i d_bits = _mm_insert_epi16(_mm_cvtsi32_si128(gemini__read_u16(wb)),
                                          gemini__read_u16(wb + GEMINI__Q4_0_BYTES), 1);
        __m256 d_w = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(d_bits)),
                                              both_lanes);
        __m256 scale = _mm256_mul_ps(d_w, _mm256_castsi256_ps(_mm256_loadu_si256(s + 4)));
        __m256i sums_lo = _mm256_sub_epi32(gemini__isum_avx2(lo, _mm256_loadu_si256(s)),
                                           _mm256_loadu_si256(s + 2));
        __m256i sums_hi = _mm256_sub_epi32(gemini__isum_avx2(hi, _mm256_loadu_si256(s + 1)),
                                           _mm256_loadu_si256(s + 3));
        _mm_prefetch((const char *)(wb + ahead), _MM_HINT_T1);
        acc_lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums_lo), scale, acc_lo);
        acc_hi = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums_hi), scale, acc_hi);
    }
    even = _mm256_permute2f128_ps(acc_lo, acc_hi, 0x20);
    odd = _mm256_permute2f128_ps(acc_lo, acc_hi, 0x31);
    if (2 * n_pairs < n_blocks)
        gemini__tile_block_avx2(w + 2 * n_pairs * GEMINI__Q4_0_BYTES, x, 0, scales, corrections,
                                n_blocks, 1, 1, 2 * n_pairs, &even);
    *y = gemini__hsum_avx2(_mm256_add_ps(even, odd));
}

/* Any rows by any tokens: groups of 4 tokens row by row, the other tokens one at a time.
   Without GEMINI__AVX2_SCRATCH(n) bytes of scratch for the side, dot_*_avx2 for each. */
#define GEMINI__TILE_ANY_AVX2(TYPE, Q4)                                                            \
    GEMINI__AVX2_TARGET static void gemini__tile_##TYPE##_4_avx2(                                 \
        const uint8_t *w, const uint8_t *x, int64_t x_stride, const __m256 *scales,              \
        const __m256i *corrections, int64_t n_blocks, int64_t ahead, float *y, int64_t y_stride)  \
    {                                                                                              \
        gemini__tile_row_avx2(w, x, x_stride, scales, corrections, n_blocks, 4, Q4, ahead, y,     \
                              y_stride);                                                           \
    }                                                                                              \
                                                                                                   \
    GEMINI__AVX2_TARGET static void gemini__tile_##TYPE##_1_avx2(                                 \
        const uint8_t *w, const uint8_t *x, const __m256 *scales, const __m256i *corrections,     \
        int64_t n_blocks, int64_t ahead, float *y)                                                 \
    {                                                                                              \
        gemini__tile_row_avx2(w, x, 0, scales, corrections, n_blocks, 1, Q4, ahead, y, 0);        \
    }                                                                                              \
                                                                                                   \
    GEMINI__AVX2_TARGET static void gemini__tile_##TYPE##_avx2(                                   \
        const uint8_t *w, int64_t row_bytes, int n_rows, const uint8_t *x, int64_t x_stride,      \
        const float *x_scales, int n_tokens, int64_t n, float *y, int64_t y_stride,               \
        void *scratch, int64_t scratch_bytes)                                                      \
    {                                                                                              \
        const int64_t n_blocks = n / GEMINI__QK;                                                   \
        /* the same place a whole number of rows on (one row ahead at least) */                   \
        const int64_t ahead = row_bytes > 0                                                        \
                                  ? (GEMINI__PREFETCH_BYTES / row_bytes + 1) * row_bytes           \
                                  : GEMINI__PREFETCH_BYTES;                                        \
        __m256 *scales = (__m256 *)scratch;                                                        \
        __m256i *corrections = (__m256i *)(void *)((uint8_t *)scratch + 128 * n_blocks);         \
        __m256i *pairs = (__m256i *)(void *)((uint8_t *)scratch + 256 * n_blocks);               \
        int r, t, u, group;                                                                        \
        (void)x_scales;                                                                            \
        if (scratch == NULL || scratch_bytes < GEMINI__AVX2_SCRATCH(n)) {                          \
            for (t = 0; t < n_tokens; t++)                                                         \
                for (r = 0; r < n_rows; r++)                                                       \
                    y[t * y_stride + r] = gemini__dot_##TYPE##_avx2(w + r * row_bytes,           \
                                                                    x + t * x_stride, n);          \
            return;                                                                                \
        }                                                                                          \
        for (t = 0; t < n_tokens; t += group) {                                                    \
            const uint8_t *xt = x + t * x_stride;                                                  \
            group = n_tokens - t >= 4 ? 4 : n_tokens - t;                                          \
            gemini__tile_side_avx2(xt, x_stride, group, n_blocks, Q4, scales, corrections);       \
            if (group == 4) {                                                                      \
                for (r = 0; r < n_rows; r++)                                                       \
                    gemini__tile_##TYPE##_4_avx2(w + r * row_bytes, xt, x_stride, scales,         \
                                                 corrections, n_blocks, ahead,                     \
                                                 y + t * y_stride + r, y_stride);                  \
                continue;                                                                          \
            }                                                                                      \
            for (u = 0; u < group; u++) {                                                          \
                const uint8_t *xu = xt + u * x_stride;                                             \
                if (Q4) gemini__pair_side_q4_0_avx2(xu, n_blocks, pairs);                          \
                for (r = 0; r < n_rows; r++) {                                                     \
                    if (Q4)                                                                        \
                        gemini__tile_pairs_q4_0_avx2(w + r * row_bytes, xu, pairs,                 \
                                                     scales + u * n_blocks,                        \
                                                     corrections + u * n_blocks, n_blocks, ahead,  \
                                                     y + (t + u) * y_stride + r);                  \
                    else                                                                           \
                        gemini__tile_##TYPE##_1_avx2(w + r * row_bytes, xu,                        \
                                                     scales + u * n_blocks,                        \
                                                     corrections + u * n_blocks, n_blocks, ahead,  \
                                                     y + (t + u) * y_stride + r);                  \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
GEMINI__TILE_ANY_AVX2(q8_0, 0)
GEMINI__TILE_ANY_AVX2(q4_0, 1)
#undef GEMINI__TILE_ANY_AVX2

static const gemini__tile_fn gemini__tile_avx2[GEMINI_TYPE_COUNT] = {
    NULL, NULL, NULL, gemini__tile_q8_0_avx2, gemini__tile_q4_0_avx2
};
#endif /* GEMINI__HAVE_AVX2 */

#ifdef GEMINI__HAVE_AVX512
/* AVX-512 kernels: f16/bf16 dot products (16-lane vcvtph2ps / widening, with a masked load
   for the rest of the row; masked-off lanes are neither read nor faulted), axpy, the
   activation quantiser and tanh-GELU, and with AVX512_VNNI the q8_0/q4_0 tile kernels below
   (512-bit vpdpbusd, same bits as the AVX2 kernels). On a Zen 4 (256-bit AVX-512 units)
   512-bit f32 dot products and integer kernels without VNNI measured 5-20% slower than AVX2,
   so those stay AVX2. bf16 weights are widened to f32 rather than fed to AVX512_BF16's
   vdpbf16ps, which would round the f32 activations to bf16 too (8 mantissa bits), far outside
   the rounding tolerance against the scalar kernels. */

/* gemini__quantize_q8_0 in 16 lanes, bit for bit: the same block maximum (NaN ignored: max
   keeps its second operand when the first is NaN), the same scale and product, roundf's half
   away from zero (truncate, then step away from zero when the dropped part is at least one
   half: v - trunc(v) is exact), and the same clamp (NaN to -128). */
GEMINI__AVX512_TARGET static void gemini__quantize_q8_0_avx512(const float *src, uint8_t *dst,
                                                               int64_t n_blocks)
{
    const __m512 sign_bit = _mm512_set1_ps(-0.0f), half = _mm512_set1_ps(0.5f);
    const __m512 one = _mm512_set1_ps(1.0f), lowest = _mm512_set1_ps(-128.0f);
    const __m512 highest = _mm512_set1_ps(127.0f);
    int64_t b;
    int k;
    for (b = 0; b < n_blocks; b++, src += GEMINI__QK, dst += GEMINI__Q8_0_BYTES) {
        __m512 v[2], max_abs = _mm512_setzero_ps();
        float d, inverse;
        for (k = 0; k < 2; k++) {
            v[k] = _mm512_loadu_ps(src + 16 * k);
            max_abs = _mm512_max_ps(_mm512_abs_ps(v[k]), max_abs);
        }
        d = _mm512_reduce_max_ps(max_abs) / 127.0f;
        inverse = d != 0.0f ? 1.0f / d : 0.0f;
        gemini__write_u16(dst, gemini_f32_to_f16(d));
        for (k = 0; k < 2; k++) {
            __m512 q = _mm512_mul_ps(v[k], _mm512_set1_ps(inverse));
            __m512 whole = _mm512_roundscale_ps(q, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __m512 dropped = _mm512_abs_ps(_mm512_sub_ps(q, whole));
            __mmask16 away = _mm512_cmp_ps_mask(dropped, half, _CMP_GE_OQ), in_range;
            /* +-1 with q's sign (integer logic: the float forms need AVX512DQ) */
            __m512i step = _mm512_or_si512(_mm512_castps_si512(one),
                                           _mm512_and_si512(_mm512_castps_si512(sign_bit),
                                                            _mm512_castps_si512(q)));
            whole = _mm512_mask_add_ps(whole, away, whole, _mm512_castsi512_ps(step));
            in_range = _mm512_cmp_ps_mask(whole, lowest, _CMP_GE_OQ); /* false for NaN */
            whole = _mm512_mask_min_ps(lowest, in_range, whole, highest);
            _mm_storeu_si128((__m128i *)(void *)(dst + 2 + 16 * k),
                             _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(whole)));
        }
    }
}

GEMINI__AVX512_TARGET static float gemini__hsum_avx512(__m512 v)
{
    /* maskz forms here and below: GCC's plain forms start from an undefined vector, which
       g++ warns about */
    __m512d both = _mm512_castps_pd(v);
    __m256 low = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, both, 0));
    __m256 high = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, both, 1));
    return gemini__hsum_avx2(_mm256_add_ps(low, high));
}

/* The mask of the first n (0..15) lanes. */
GEMINI__AVX512_TARGET static __mmask16 gemini__tail_mask_avx512(int64_t n)
{
    return (__mmask16)((1u << n) - 1u);
}

/* e^x in 16 lanes for x in [-87, 88] (clamped there; NaN stays NaN), within ~2 ulp: 2^n times
   a degree-7 polynomial of the remainder (Cephes' expf coefficients, ln 2 split in two). */
GEMINI__AVX512_TARGET static __m512 gemini__exp_avx512(__m512 x)
{
    const __m512 ln2_high = _mm512_set1_ps(0.693359375f);
    const __m512 ln2_low = _mm512_set1_ps(-2.12194440e-4f);
    __m512 n, r, p;
    /* the bound first: vmaxps/vminps return their second operand when one is NaN */
    x = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(_mm512_set1_ps(-87.0f), x));
    n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_fnmadd_ps(n, ln2_high, x);
    r = _mm512_fnmadd_ps(n, ln2_low, r);
    p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* gate = gelu_tanh(gate) (* up when up != NULL) in 16 lanes: 0.5 x (1 + tanh(u)) is
   x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3). Within a few ulp of the scalar
   gemini__gelu_tanh, not bit for bit (libm's tanhf is not vectorised). */
GEMINI__AVX512_TARGET static void gemini__geglu_avx512(float *gate, const float *up, int64_t n)
{
    const __m512 minus_two_c = _mm512_set1_ps(-2.0f * 0.7978845608028654f);
    const __m512 cubic = _mm512_set1_ps(0.044715f), one = _mm512_set1_ps(1.0f);
    int64_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 lanes = n - i >= 16 ? (__mmask16)0xffff : gemini__tail_mask_avx512(n - i);
        __m512 x = _mm512_maskz_loadu_ps(lanes, gate + i);
        __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(cubic, x), _mm512_mul_ps(x, x), x);
        __m512 y = _mm512_div_ps(x, _mm512_add_ps(one, gemini__exp_avx512(
                                                           _mm512_mul_ps(minus_two_c, inner))));
        if (up != NULL) y = _mm512_mul_ps(y, _mm512_maskz_loadu_ps(lanes, up + i));
        _mm512_mask_storeu_ps(gate + i, lanes, y);
    }
}

/* gemini__exp_sum_avx2 in 16 lanes (so again another order of the sum). */
GEMINI__AVX512_TARGET static float gemini__exp_sum_avx512(float *row, int64_t n, float max)
{
    const __m512 minus_max = _mm512_set1_ps(-max);
    __m512 sum = _mm512_setzero_ps();
    int64_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 lanes = n - i >= 16 ? (__mmask16)0xffff : gemini__tail_mask_avx512(n - i);
        __m512 e = gemini__exp_avx512(_mm512_add_ps(_mm512_maskz_loadu_ps(lanes, row + i),
                                                    minus_max));
        _mm512_mask_storeu_ps(row + i, lanes, e);
        sum = _mm512_mask_add_ps(sum, lanes, sum, e);
    }
    return gemini__hsum_avx512(sum);
}

/* gemini__softmax_avx2 in 16 lanes. */
GEMINI__AVX512_TARGET static float gemini__softmax_avx512(float *row, int64_t n)
{
    const __m512 lowest = _mm512_set1_ps(-INFINITY);
    __m512 top = lowest, divisor;
    float max_score, sum;
    int64_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 lanes = n - i >= 16 ? (__mmask16)0xffff : gemini__tail_mask_avx512(n - i);
        top = _mm512_max_ps(_mm512_mask_loadu_ps(lowest, lanes, row + i), top);
    }
    max_score = _mm512_reduce_max_ps(top);
    sum = gemini__exp_sum_avx512(row, n, max_score);
    divisor = _mm512_set1_ps(sum);
    for (i = 0; i < n; i += 16) {
        __mmask16 lanes = n - i >= 16 ? (__mmask16)0xffff : gemini__tail_mask_avx512(n - i);
        _mm512_mask_storeu_ps(row + i, lanes,
                              _mm512_div_ps(_mm512_maskz_loadu_ps(lanes, row + i), divisor));
    }
    return sum;
}

/* 16 f16 or bf16 values (the first `tail` lanes if tail != 0xffff) widened to f32. */
GEMINI__AVX512_TARGET static __m512 gemini__load_f16x16_avx512(const uint8_t *p, __mmask16 tail)
{
    return _mm512_maskz_cvtph_ps(tail, _mm256_maskz_loadu_epi16(tail, p));
}

GEMINI__AVX512_TARGET static __m512 gemini__load_bf16x16_avx512(const uint8_t *p,
                                                                __mmask16 tail)
{
    __m512i wide = _mm512_maskz_cvtepu16_epi32(tail, _mm256_maskz_loadu_epi16(tail, p));
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(tail, wide, 16));
}

GEMINI__AVX512_TARGET static float gemini__dot_half_avx512(const uint8_t *a, const float *b,
                                                           int64_t n, int bf16)
{
    const __mmask16 all = 0xffff;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __mmask16 tail;
    int64_t i = 0;
    if (bf16) {
        for (; i + 32 <= n; i += 32) {
            acc0 = _mm512_fmadd_ps(gemini__load_bf16x16_avx512(a + 2 * i, all),
                                   _mm512_loadu_ps(b + i), acc0);
            acc1 = _mm512_fmadd_ps(gemini__load_bf16x16_avx512(a + 2 * i + 32, all),
                                   _mm512_loadu_ps(b + i + 16), acc1);
        }
        for (; i + 16 <= n; i += 16)
            acc0 = _mm512_fmadd_ps(gemini__load_bf16x16_avx512(a + 2 * i, all),
                                   _mm512_loadu_ps(b + i), acc0);
        if (i < n) {
            tail = gemini__tail_mask_avx512(n - i);
            acc1 = _mm512_fmadd_ps(gemini__load_bf16x16_avx512(a + 2 * i, tail),
                                   _mm512_maskz_loadu_ps(tail, b + i), acc1);
        }
    } else {
        for (; i + 32 <= n; i += 32) {
            acc0 = _mm512_fmadd_ps(gemini__load_f16x16_avx512(a + 2 * i, all),
                                   _mm512_loadu_ps(b + i), acc0);
            acc1 = _mm512_fmadd_ps(gemini__load_f16x16_avx512(a + 2 * i + 32, all),
                                   _mm512_loadu_ps(b + i + 16), acc1);
        }
        for (; i + 16 <= n; i += 16)
            acc0 = _mm512_fmadd_ps(gemini__load_f16x16_avx512(a + 2 * i, all),
                                   _mm512_loadu_ps(b + i), acc0);
        if (i < n) {
            tail = gemini__tail_mask_avx512(n - i);
            acc1 = _mm512_fmadd_ps(gemini__load_f16x16_avx512(a + 2 * i, tail),
                                   _mm512_maskz_loadu_ps(tail, b + i), acc1);
        }
    }
    return gemini__hsum_avx512(_mm512_add_ps(acc0, acc1));
}

/* Two rows by two tokens of gemini__dot_half_avx512: each of the four sums is accumulated in
   exactly its order (so a matmul gives the single dot's bits), while every weight vector is
   converted once for both tokens. */
GEMINI__AVX512_TARGET static void gemini__dot2x2_half_avx512(const uint8_t *w0, const uint8_t *w1,
                                                             const float *x0, const float *x1,
                                                             int64_t n, int bf16, float *out)
{
    const __mmask16 all = 0xffff;
    __m512 a00 = _mm512_setzero_ps(), a01 = _mm512_setzero_ps(), b00 = _mm512_setzero_ps();
    __m512 b01 = _mm512_setzero_ps(), a10 = _mm512_setzero_ps(), a11 = _mm512_setzero_ps();
    __m512 b10 = _mm512_setzero_ps(), b11 = _mm512_setzero_ps();
    __m512 r0, r1, y0, y1;
    __mmask16 tail;
    int64_t i = 0;

#define GEMINI__HALF16(p, mask) (bf16 ? gemini__load_bf16x16_avx512(p, mask) \
                                      : gemini__load_f16x16_avx512(p, mask))
    /* a: accumulator 0 of the single dot, b: accumulator 1; first digit row, second token */
    for (; i + 32 <= n; i += 32) {
        r0 = GEMINI__HALF16(w0 + 2 * i, all);
        r1 = GEMINI__HALF16(w1 + 2 * i, all);
        y0 = _mm512_loadu_ps(x0 + i);
        y1 = _mm512_loadu_ps(x1 + i);
        a00 = _mm512_fmadd_ps(r0, y0, a00);
        a01 = _mm512_fmadd_ps(r0, y1, a01);
        a10 = _mm512_fmadd_ps(r1, y0, a10);
        a11 = _mm512_fmadd_ps(r1, y1, a11);
        r0 = GEMINI__HALF16(w0 + 2 * i + 32, all);
        r1 = GEMINI__HALF16(w1 + 2 * i + 32, all);
        y0 = _mm512_loadu_ps(x0 + i + 16);
        y1 = _mm512_loadu_ps(x1 + i + 16);
        b00 = _mm512_fmadd_ps(r0, y0, b00);
        b01 = _mm512_fmadd_ps(r0, y1, b01);
        b10 = _mm512_fmadd_ps(r1, y0, b10);
        b11 = _mm512_fmadd_ps(r1, y1, b11);
    }
    for (; i + 16 <= n; i += 16) {
        r0 = GEMINI__HALF16(w0 + 2 * i, all);
        r1 = GEMINI__HALF16(w1 + 2 * i, all);
        y0 = _mm512_loadu_ps(x0 + i);
        y1 = _mm512_loadu_ps(x1 + i);
        a00 = _mm512_fmadd_ps(r0, y0, a00);
        a01 = _mm512_fmadd_ps(r0, y1, a01);
        a10 = _mm512_fmadd_ps(r1, y0, a10);
        a11 = _mm512_fmadd_ps(r1, y1, a11);
    }
    if (i < n) {
        tail = gemini__tail_mask_avx512(n - i);
        r0 = GEMINI__HALF16(w0 + 2 * i, tail);
        r1 = GEMINI__HALF16(w1 + 2 * i, tail);
        y0 = _mm512_maskz_loadu_ps(tail, x0 + i);
        y1 = _mm512_maskz_loadu_ps(tail, x1 + i);
        b00 = _mm512_fmadd_ps(r0, y0, b00);
        b01 = _mm512_fmadd_ps(r0, y1, b01);
        b10 = _mm512_fmadd_ps(r1, y0, b10);
        b11 = _mm512_fmadd_ps(r1, y1, b11);
    }
#undef GEMINI__HALF16
    out[0] = gemini__hsum_avx512(_mm512_add_ps(a00, b00));
    out[1] = gemini__hsum_avx512(_mm512_add_ps(a01, b01));
    out[2] = gemini__hsum_avx512(_mm512_add_ps(a10, b10));
    out[3] = gemini__hsum_avx512(_mm512_add_ps(a11, b11));
}

GEMINI__AVX512_TARGET static void gemini__dot2x2_f16_avx512(const uint8_t *w0, const uint8_t *w1,
                                                            const uint8_t *x0, const uint8_t *x1,
                                                            int64_t n, float *out)
{
    gemini__dot2x2_half_avx512(w0, w1, (const float *)(const void *)x0,
                               (const float *)(const void *)x1, n, 0, out);
}

GEMINI__AVX512_TARGET static void gemini__dot2x2_bf16_avx512(const uint8_t *w0,
                                                             const uint8_t *w1,
                                                             const uint8_t *x0,
                                                             const uint8_t *x1, int64_t n,
                                                             float *out)
{
    gemini__dot2x2_half_avx512(w0, w1, (const float *)(const void *)x0,
                               (const float *)(const void *)x1, n, 1, out);
}

/* The tile kernel (gemini__tile_fn) of f16 / bf16 weights, by dot2x2 and dot: each pair of
   weight rows meets all the tokens while it is in L1, where the matmul's own loop passes a
   block of 16 rows once per pair of tokens. On a Zen 4 this made Whisper base's 5-beam
   decoding steps (5 tokens) about 10% faster; the encoder's 1500 tokens took the same time
   either way, also when each row was converted to f32 once for all of them (not kept). */
GEMINI__AVX512_TARGET static GEMINI__INLINE void gemini__tile_half_avx512(
    const uint8_t *w, int64_t row_bytes, int n_rows, const uint8_t *x, int64_t x_stride,
    int n_tokens, int64_t n, float *y, int64_t y_stride, int bf16)
{
    int r, t;
    for (r = 0; r + 1 < n_rows; r += 2) {
        const uint8_t *w0 = w + r * row_bytes, *w1 = w0 + row_bytes;
        for (t = 0; t + 1 < n_tokens; t += 2) {
            float out[4];
            gemini__dot2x2_half_avx512(w0, w1, (const float *)(const void *)(x + t * x_stride),
                                       (const float *)(const void *)(x + (t + 1) * x_stride),
                                       n, bf16, out);
            y[t * y_stride + r] = out[0];
            y[(t + 1) * y_stride + r] = out[1];
            y[t * y_stride + r + 1] = out[2];
            y[(t + 1) * y_stride + r + 1] = out[3];
        }
        if (t < n_tokens) {
            const float *xt = (const float *)(const void *)(x + t * x_stride);
            y[t * y_stride + r] = gemini__dot_half_avx512(w0, xt, n, bf16);
            y[t * y_stride + r + 1] = gemini__dot_half_avx512(w1, xt, n, bf16);
        }
    }
    for (t = 0; r < n_rows && t < n_tokens; t++)
        y[t * y_stride + r] = gemini__dot_half_avx512(
            w + r * row_bytes, (const float *)(const void *)(x + t * x_stride), n, bf16);
}

GEMINI__AVX512_TARGET static void gemini__tile_f16_avx512(
    const uint8_t *w, int64_t row_bytes, int n_rows, const uint8_t *x, int64_t x_stride,
    const float *x_scales, int n_tokens, int64_t n, float *y, int64_t y_stride, void *scratch,
    int64_t scratch_bytes)
{
    (void)x_scales, (void)scratch, (void)scratch_bytes;
    gemini__tile_half_avx512(w, row_bytes, n_rows, x, x_stride, n_tokens, n, y, y_stride, 0);
}

GEMINI__AVX512_TARGET static void gemini__tile_bf16_avx512(
    const uint8_t *w, int64_t row_bytes, int n_rows, const uint8_t *x, int64_t x_stride,
    const float *x_scales, int n_tokens, int64_t n, float *y, int64_t y_stride, void *scratch,
    int64_t scratch_bytes)
{
    (void)x_scales, (void)scratch, (void)scratch_bytes;
    gemini__tile_half_avx512(w, row_bytes, n_rows, x, x_stride, n_tokens, n, y, y_stride, 1);
}

/* f32 dot products in 512-bit registers with gemini__dot_f32_avx2's bits: one zmm holds that
   kernel's accumulators 0 and 1 side by side (elements i..i+15), another its accumulators 2 and
   3 (i+16..i+31); the 8-element steps after the last 32 go to the low half alone, and the sum
   is (acc0 + acc1) + (acc2 + acc3), then the same horizontal sum and scalar tail. Half the
   FMAs and loads of the 256-bit form (which this level used before; 512-bit FMAs gain nothing
   on a Zen 4, but twice as much on an Intel core with two 512-bit units). */
GEMINI__AVX512_TARGET static GEMINI__INLINE void gemini__f32_step_avx512(const float *a,
                                                                       const float *b,
                                                                       __m512 acc[2])
{
    acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b), acc[0]);
    acc[1] = _mm512_fmadd_ps(_mm512_loadu_ps(a + 16), _mm512_loadu_ps(b + 16), acc[1]);
}

GEMINI__AVX512_TARGET static GEMINI__INLINE void gemini__f32_step8_avx512(const float *a,
                                                                        const float *b,
                                                                        __m512 acc[2])
{
    acc[0] = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(0x00ff, a),
                                   _mm512_maskz_loadu_ps(0x00ff, b), acc[0], 0x00ff);
}

GEMINI__AVX512_TARGET static GEMINI__INLINE float gemini__f32_sum_avx512(const __m512 acc[2],
                                                                       const float *a,
                                                                       const float *b,
                                                                       int64_t i, int64_t n)
{
    __m256 pair[2];
    float sum;
    int k;
    for (k = 0; k < 2; k++)
        pair[k] = _mm256_add_ps(
            _mm512_castps512_ps256(acc[k]),
            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[k]), 1)));
    sum = gemini__hsum_avx2(_mm256_add_ps(pair[0], pair[1]));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

GEMINI__AVX512_TARGET static float gemini__dot_f32_avx512(const void *w, const void *x,
                                                          int64_t n)
{
    const float *a = (const float *)w, *b = (const float *)x;
    __m512 acc[2];
    int64_t i = 0;
    acc[0] = acc[1] = _mm512_setzero_ps();
    for (; i + 32 <= n; i += 32) gemini__f32_step_avx512(a + i, b + i, acc);
    for (; i + 8 <= n; i += 8) gemini__f32_step8_avx512(a + i, b + i, acc);
    return gemini__f32_sum_avx512(acc, a, b, i, n);
}

/* Two rows by two tokens of gemini__dot_f32_avx512 (so of gemini__dot_f32_avx2), each row and
   token loaded once for two sums. */
GEMINI__AVX512_TARGET static void gemini__dot2x2_f32_avx512(const uint8_t *w0, const uint8_t *w1,
                                                            const uint8_t *x0, const uint8_t *x1,
                                                            int64_t n, float *out)
{
    const float *r[2], *y[2];
    __m512 acc[4][2];
    int64_t i = 0;
    int j;
    r[0] = (const float *)(const void *)w0;
    r[1] = (const float *)(const void *)w1;
    y[0] = (const float *)(const void *)x0;
    y[1] = (const float *)(const void *)x1;
    for (j = 0; j < 4; j++) acc[j][0] = acc[j][1] = _mm512_setzero_ps();

    /* sum j = 2 * row + token; unrolled so that the accumulators stay in registers (the
       loops as written kept them on the stack: 4x slower) */
    for (; i + 32 <= n; i += 32) {
        __m512 row[2][2], token[2][2];
        int k;
        GEMINI__UNROLL
        for (k = 0; k < 2; k++) {
            row[0][k] = _mm512_loadu_ps(r[0] + i + 16 * k);
            row[1][k] = _mm512_loadu_ps(r[1] + i + 16 * k);
            token[0][k] = _mm512_loadu_ps(y[0] + i + 16 * k);
            token[1][k] = _mm512_loadu_ps(y[1] + i + 16 * k);
        }
        GEMINI__UNROLL
        for (j = 0; j < 4; j++)
            GEMINI__UNROLL
            for (k = 0; k < 2; k++)
                acc[j][k] = _mm512_fmadd_ps(row[j / 2][k], token[j % 2][k], acc[j][k]);
    }
    for (; i + 8 <= n; i += 8)
        GEMINI__UNROLL
        for (j = 0; j < 4; j++) gemini__f32_step8_avx512(r[j / 2] + i, y[j % 2] + i, acc[j]);
    GEMINI__UNROLL
    for (j = 0; j < 4; j++) out[j] = gemini__f32_sum_avx512(acc[j], r[j / 2], y[j % 2], i, n);
}

GEMINI__AVX512_TARGET static float gemini__dot_f16_avx512(const void *w, const void *x,
                                                          int64_t n)
{
    return gemini__dot_half_avx512((const uint8_t *)w, (const float *)x, n, 0);
}

GEMINI__AVX512_TARGET static float gemini__dot_bf16_avx512(const void *w, const void *x,
                                                           int64_t n)
{
    return gemini__dot_half_avx512((const uint8_t *)w, (const float *)x, n, 1);
}

GEMINI__AVX512_TARGET static void gemini__axpy_avx512(float *y, float a, const float *x,
                                                      int64_t n)
{
    __m512 scale = _mm512_set1_ps(a);
    __mmask16 tail;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(scale, _mm512_loadu_ps(x + i),
                                                _mm512_loadu_ps(y + i)));
    if (i < n) {
        tail = gemini__tail_mask_avx512(n - i);
        _mm512_mask_storeu_ps(y + i, tail,
                              _mm512_fmadd_ps(scale, _mm512_maskz_loadu_ps(tail, x + i),
                                              _mm512_maskz_loadu_ps(tail, y + i)));
    }
}

/* Sixteen values of a row of kind 0 (f32), 1 (f16) or 2 (bf16), as floats. */
GEMINI__AVX512_TARGET static GEMINI__INLINE __m512 gemini__load_kind_avx512(const uint8_t *p,
                                                                            const int kind)
{
    if (kind == 1) return gemini__load_f16x16_avx512(p, 0xffff);
    if (kind == 2) return gemini__load_bf16x16_avx512(p, 0xffff);
    return _mm512_loadu_ps((const float *)(const void *)p);
}

/* H heads x 64 dimensions of gemini__weighted_sums_avx512, in 4 x H registers; values of kind
   0 (f32), 1 (f16) or 2 (bf16). */
GEMINI__AVX512_TARGET static GEMINI__INLINE void gemini__weighted_block_avx512(
    float *out, int64_t out_stride, const int H, const float *p, int64_t p_stride,
    const uint8_t *values, int64_t row_bytes, int32_t n_keys, const int kind)
{
    const int value_bytes = kind == 0 ? 4 : 2;
    __m512 acc[4][4];
    int32_t k;
    int h, c;
    GEMINI__UNROLL
    for (h = 0; h < H; h++)
        GEMINI__UNROLL
        for (c = 0; c < 4; c++) acc[h][c] = _mm512_loadu_ps(out + h * out_stride + 16 * c);
    for (k = 0; k < n_keys; k++) {
        const uint8_t *v = values + k * row_bytes;
        __m512 value[4];
        GEMINI__UNROLL
        for (c = 0; c < 4; c++)
            value[c] = gemini__load_kind_avx512(v + 16 * c * value_bytes, kind);
        GEMINI__UNROLL
        for (h = 0; h < H; h++) {
            __m512 weight = _mm512_set1_ps(p[h * p_stride + k]);
            GEMINI__UNROLL
            for (c = 0; c < 4; c++) acc[h][c] = _mm512_fmadd_ps(weight, value[c], acc[h][c]);
        }
    }
    GEMINI__UNROLL
    for (h = 0; h < H; h++)
        GEMINI__UNROLL
        for (c = 0; c < 4; c++) _mm512_storeu_ps(out + h * out_stride + 16 * c, acc[h][c]);
}

/* y += a * x for an f16 (bf16 = 0) or bf16 row x, 16 lanes, the rest of the row masked. */
GEMINI__AVX512_TARGET static void gemini__axpy_half_avx512(float *y, float a, const uint8_t *x,
                                                           int64_t n, int bf16)
{
    const __mmask16 all = 0xffff;
    __m512 scale = _mm512_set1_ps(a), values;
    __mmask16 tail;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        values = bf16 ? gemini__load_bf16x16_avx512(x + 2 * i, all)
                      : gemini__load_f16x16_avx512(x + 2 * i, all);
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(scale, values, _mm512_loadu_ps(y + i)));
    }
    if (i < n) {
        tail = gemini__tail_mask_avx512(n - i);
        values = bf16 ? gemini__load_bf16x16_avx512(x + 2 * i, tail)
                      : gemini__load_f16x16_avx512(x + 2 * i, tail);
        _mm512_mask_storeu_ps(y + i, tail,
                              _mm512_fmadd_ps(scale, values, _mm512_maskz_loadu_ps(tail, y + i)));
    }
}

GEMINI__AVX512_TARGET static void gemini__axpy_f16_avx512(float *y, float a, const uint8_t *x,
                                                          int64_t n)
{
    gemini__axpy_half_avx512(y, a, x, n, 0);
}

GEMINI__AVX512_TARGET static void gemini__axpy_bf16_avx512(float *y, float a, const uint8_t *x,
                                                           int64_t n)
{
    gemini__axpy_half_avx512(y, a, x, n, 1);
}

static const gemini__axpy_half_fn gemini__axpy16_avx512[GEMINI_TYPE_COUNT] = {
    NULL, gemini__axpy_f16_avx512, gemini__axpy_bf16_avx512, NULL, NULL
};

/* The keys in one run (runs of 32 keys made prefill 1% slower on a Zen 4). */
GEMINI__WEIGHTED_SUMS(AVX512, avx512, 64, INT32_MAX)

/* q8_0 and q4_0 weights by q8_0 activations with 512-bit AVX512_VNNI, in tiles of up to four
   weight rows by four tokens: each activation block pair is prepared once for the tile's rows
   and each weight block pair once for its tokens. A zmm register holds two blocks, the even
   one in its low half and the odd one in its high half, which are exactly the even and odd
   accumulators of the 256-bit kernels; every lane's int32 sum is the same exact integer, its
   scale the same product d_w * d_x, and the halves are added and summed as there, so each
   output has the AVX2 kernel's bits whatever the tile's shape.
   vpdpbusd multiplies unsigned by signed bytes: the weights are made unsigned, w + 128 for
   q8_0 (an exclusive or of the top bit) and the nibbles themselves (w + 8) for q4_0, and the
   offset times each lane's activation sum, taken once per token by a vpdpbusd of the offset,
   starts the accumulation negated. */

GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE void gemini__prefetch(const uint8_t *p,
                                                                     int64_t ahead)
{
    _mm_prefetch((const char *)(uintptr_t)((uintptr_t)p + (uintptr_t)ahead), _MM_HINT_T1);
}

/* The tile kernels read their R rows side by side, R short streams that the hardware
   prefetcher follows badly, and prefetching each row a few rows on into L2 (as above) left a
   Zen 4 at 11 GB/s on one thread (roofline 27): there PREFETCHT1/T2 fill L2 and are sometimes
   dropped (Wang et al., arXiv 2411.02814). So the tiles prefetch their rows' bytes in memory
   order instead (a matrix's rows follow each other), GEMINI__TILE_AHEAD bytes past the tile's
   start and moving through it as fast as the tile does (R pairs a step), for decode as
   non-temporal loads into L1: 31 GB/s on one thread, 36 on two (q8_0, 640 columns, matrices
   far larger than the L3; 4 KiB ahead: 30, 8 KiB: 30; T0 instead of NTA: decode 80-88% of
   the roofline against 104-117%). The AMX level's decode kernel keeps the prefetch above,
   which was measured on its Xeon. */
#define GEMINI__TILE_AHEAD 6144

/* The step's bytes [stream, stream + n) of the prefetch stream, a line at a time (n a
   compile-time constant after inlining). Consecutive steps' ranges follow each other, so
   addresses 64 bytes apart within each reach every line. Non-temporal for one token
   (decode reads each weight once); into all levels for more (prefill reads the tile's rows
   again for every group of 4 tokens: the same speed on the Zen 4, and an NTA line may not
   be kept in L2 elsewhere). */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE void gemini__prefetch_stream(uintptr_t stream,
                                                                            int n, int once)
{
    int k;
    for (k = 0; k * 64 < n; k++) {
        if (once) _mm_prefetch((const char *)(stream + (uintptr_t)(64 * k)), _MM_HINT_NTA);
        else _mm_prefetch((const char *)(stream + (uintptr_t)(64 * k)), _MM_HINT_T0);
    }
}

/* The two f16 block scales of a block pair (words 0 and `second`; only word 0 when `single`,
   the other half then 0), each widened and repeated over its half. The two words go through
   a general register and one 128-bit conversion: a masked 512-bit load, vpermw and a 512-bit
   conversion cost a Zen 4 0.15 ns more a block (q8_0 decode tile in cache 0.92 -> 0.77 ns,
   q4_0 1.06 -> 0.91); the floats are the same. */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE __m512 gemini__pair_scales_avx512(
    const uint8_t *pair, int second, int single)
{
    const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    uint32_t words = gemini__read_u16(pair);
    if (!single) words |= (uint32_t)gemini__read_u16(pair + 2 * second) << 16;
    return _mm512_permutexvar_ps(
        halves, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)words))));
}

/* The 64 quants of a q8_0 block pair (32 when `single`, the rest zero). */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE __m512i gemini__pair_q8_avx512(const uint8_t *pair,
                                                                             int single)
{
    __m512i low = _mm512_zextsi256_si512(
        _mm256_loadu_si256((const __m256i *)(const void *)(pair + 2)));
    if (single) return low;
    return _mm512_inserti64x4(low, _mm256_loadu_si256((const __m256i *)(const void *)(pair + 36)),
                              1);
}

/* The 64 nibbles (0..15) of a q4_0 block pair in element order (32 when `single`). */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE __m512i gemini__pair_q4_avx512(const uint8_t *pair,
                                                                             int single)
{
    __m256i packed = _mm256_castsi128_si256(
        _mm_loadu_si128((const __m128i *)(const void *)(pair + 2)));
    __m512i both;
    if (!single)
        packed = _mm256_inserti128_si256(
            packed, _mm_loadu_si128((const __m128i *)(const void *)(pair + 20)), 1);
    /* 128-bit lanes: block 0, block 0, block 1, block 1; then the high nibbles into lanes 1, 3 */
    both = _mm512_shuffle_i64x2(_mm512_zextsi256_si512(packed), _mm512_zextsi256_si512(packed),
                                0x50);
    both = _mm512_mask_srli_epi16(both, 0xff00ff00u, both, 4);
    return _mm512_and_si512(both, _mm512_set1_epi8(0x0f));
}

/* The start of a block pair's sums with unsigned weights: minus offset times each lane's sum
   of activations (offset: 128 for q8_0 weights, 8 for q4_0). */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE __m512i gemini__pair_start_avx512(__m512i values,
                                                                               __m512i offset)
{
    return _mm512_sub_epi32(_mm512_setzero_si512(),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, values));
}

/* The activations' side of one q8_0 block pair: its scales and the start of its sums. */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE void gemini__pair_side_avx512(
    const uint8_t *pair, __m512i values, __m512i offset, int single, __m512 *scales,
    __m512i *start)
{
    *scales = gemini__pair_scales_avx512(pair, GEMINI__Q8_0_BYTES / 2, single);
    *start = gemini__pair_start_avx512(values, offset);
}

/* acc[r][t] += the products of one block pair (or single block) of rows r and tokens t;
   `stream` is where this step prefetches, R pairs in memory order. */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE void gemini__tile_step_avx512(
    const uint8_t *w, int64_t row_bytes, uintptr_t stream, const int R, const uint8_t *x,
    int64_t x_stride, const float *side, int64_t side_stride, const int T, int q4, int single,
    __m512 acc[4][4])
{
    const __mmask16 lanes = single ? 0x00ff : 0xffff;
    const int w_second = q4 ? GEMINI__Q4_0_BYTES / 2 : GEMINI__Q8_0_BYTES / 2;
    const int w_pair = 2 * (q4 ? GEMINI__Q4_0_BYTES : GEMINI__Q8_0_BYTES);
    /* the unsigned weights are w + offset: 128 for q8_0 (w ^ 0x80), 8 for q4_0 (nibbles) */
    const __m512i offset = _mm512_set1_epi8(q4 ? 8 : (char)0x80);
    __m512i x_values[4], x_start[4];
    __m512 x_scales[4];
    int r, t;
    GEMINI__UNROLL
    for (t = 0; t < T; t++) {
        const uint8_t *pair = x + t * x_stride;
        x_values[t] = gemini__pair_q8_avx512(pair, single);
        if (side != NULL) {
            x_scales[t] = _mm512_load_ps(side + t * side_stride);
            x_start[t] = _mm512_load_si512((const void *)(side + t * side_stride + 16));
        } else {
            gemini__pair_side_avx512(pair, x_values[t], offset, single, &x_scales[t],
                                     &x_start[t]);
        }
    }
    gemini__prefetch_stream(stream, R * w_pair, T == 1);
    GEMINI__UNROLL
    for (r = 0; r < R; r++) {
        const uint8_t *pair = w + r * row_bytes;
        __m512 w_scales;
        __m512i w_values;
        w_scales = gemini__pair_scales_avx512(pair, w_second, single);
        w_values = q4 ? gemini__pair_q4_avx512(pair, single)
                      : _mm512_xor_si512(gemini__pair_q8_avx512(pair, single), offset);
        GEMINI__UNROLL
        for (t = 0; t < T; t++) {
            __m512i sums = _mm512_dpbusd_epi32(x_start[t], w_values, x_values[t]);
            acc[r][t] = _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(sums),
                                              _mm512_mul_ps(w_scales, x_scales[t]), acc[r][t],
                                              lanes);
        }
    }
}

/* The activations' side of every block pair of up to 4 tokens, made once for all the rows
   of a tile: per pair 16 scale floats then 16 int32 starts (64-byte aligned), token t's pairs
   side_stride floats apart. */
GEMINI__AVX512VNNI_TARGET static void gemini__tile_side_avx512(const uint8_t *x,
                                                               int64_t x_stride, int n_tokens,
                                                               int64_t n, int q4, float *side,
                                                               int64_t side_stride)
{
    const __m512i offset = _mm512_set1_epi8(q4 ? 8 : (char)0x80);
    int64_t block, n_blocks = n / GEMINI__QK;
    int t;
    for (t = 0; t < n_tokens; t++)
        for (block = 0; block < n_blocks; block += 2) {
            const uint8_t *pair = x + t * x_stride + block * GEMINI__Q8_0_BYTES;
            float *out = side + t * side_stride + block / 2 * 32;
            int single = block + 1 == n_blocks;
            __m512 scales;
            __m512i start;
            gemini__pair_side_avx512(pair, gemini__pair_q8_avx512(pair, single), offset, single,
                                     &scales, &start);
            _mm512_store_ps(out, scales);
            _mm512_store_si512((void *)(out + 16), start);
        }
}

GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE void gemini__tile_i8_avx512(
    const uint8_t *w, int64_t row_bytes, const int R, const uint8_t *x, int64_t x_stride,
    const float *side, int64_t side_stride, const int T, int64_t n, int q4, float *y,
    int64_t y_stride)
{
    const int64_t w_pair = 2 * (q4 ? GEMINI__Q4_0_BYTES : GEMINI__Q8_0_BYTES);
    const int64_t x_pair = 2 * GEMINI__Q8_0_BYTES, n_blocks = n / GEMINI__QK;
    const uintptr_t stream = (uintptr_t)w + GEMINI__TILE_AHEAD; /* may lie past the matrix */
    __m512 acc[4][4];
    int64_t block;
    int r, t;
    GEMINI__UNROLL
    for (r = 0; r < R; r++)
        GEMINI__UNROLL
        for (t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    for (block = 0; block + 2 <= n_blocks; block += 2)
        gemini__tile_step_avx512(w + block / 2 * w_pair, row_bytes,
                                 stream + (uintptr_t)(block / 2 * R * w_pair), R,
                                 x + block / 2 * x_pair,
                                 x_stride, side != NULL ? side + block / 2 * 32 : NULL,
                                 side_stride, T, q4, 0, acc);
    if (block < n_blocks)
        gemini__tile_step_avx512(w + block / 2 * w_pair, row_bytes,
                                 stream + (uintptr_t)(block / 2 * R * w_pair), R,
                                 x + block / 2 * x_pair,
                                 x_stride, side != NULL ? side + block / 2 * 32 : NULL,
                                 side_stride, T, q4, 1, acc);
    GEMINI__UNROLL
    for (r = 0; r < R; r++)
        GEMINI__UNROLL
        for (t = 0; t < T; t++) y[t * y_stride + r] = gemini__hsum_avx512(acc[r][t]);
}

/* Instances for the tile shapes the matmul uses: 4 x 4, and 4 x 1, 1 x 4, 1 x 1 for edges. */
#define GEMINI__TILE_INSTANCE(TYPE, Q4, R, T)                                                      \
    GEMINI__AVX512VNNI_TARGET static void gemini__tile_##TYPE##_##R##x##T(                         \
        const uint8_t *w, int64_t row_bytes, const uint8_t *x, int64_t x_stride,                 \
        const float *side, int64_t side_stride, int64_t n, float *y, int64_t y_stride)            \
    {                                                                                              \
        gemini__tile_i8_avx512(w, row_bytes, R, x, x_stride, side, side_stride, T, n, Q4, y,      \
                               y_stride);                                                          \
    }
GEMINI__TILE_INSTANCE(q8_0, 0, 4, 4)
GEMINI__TILE_INSTANCE(q8_0, 0, 4, 1)
GEMINI__TILE_INSTANCE(q8_0, 0, 1, 4)
GEMINI__TILE_INSTANCE(q8_0, 0, 1, 1)
GEMINI__TILE_INSTANCE(q4_0, 1, 4, 4)
GEMINI__TILE_INSTANCE(q4_0, 1, 4, 1)
GEMINI__TILE_INSTANCE(q4_0, 1, 1, 4)
GEMINI__TILE_INSTANCE(q4_0, 1, 1, 1)
#undef GEMINI__TILE_INSTANCE

/* y[t * y_stride + r] = row r . token t for any number of rows and tokens, in 4 x 4 tiles.
   With scratch room (GEMINI__VNNI_SCRATCH bytes for n), each group of tokens' side is made
   once for all the rows. */
#define GEMINI__TILE_ANY(TYPE, Q4)                                                                 \
    GEMINI__AVX512VNNI_TARGET static void gemini__tile_##TYPE##_avx512vnni(                        \
        const uint8_t *w, int64_t row_bytes, int n_rows, const uint8_t *x, int64_t x_stride,      \
        const float *x_scales, int n_tokens, int64_t n, float *y, int64_t y_stride,               \
        void *scratch, int64_t scratch_bytes)                                                      \
    {                                                                                              \
        int64_t side_stride = (n / GEMINI__QK + 1) / 2 * 32;                                       \
        float *side = scratch_bytes >= GEMINI__VNNI_SCRATCH(n) ? (float *)scratch : NULL;         \
        int r, t = 0, u;                                                                           \
        (void)x_scales;                                                                            \
        for (; t + 4 <= n_tokens; t += 4) {                                                        \
            const uint8_t *xt = x + t * x_stride;                                                  \
            if (side != NULL) gemini__tile_side_avx512(xt, x_stride, 4, n, Q4, side, side_stride); \
            for (r = 0; r + 4 <= n_rows; r += 4)                                                   \
                gemini__tile_##TYPE##_4x4(w + r * row_bytes, row_bytes, xt, x_stride, side,        \
                                          side_stride, n, y + t * y_stride + r, y_stride);         \
            for (; r < n_rows; r++)                                                                \
                gemini__tile_##TYPE##_1x4(w + r * row_bytes, row_bytes, xt, x_stride, side,        \
                                          side_stride, n, y + t * y_stride + r, y_stride);         \
        }                                                                                          \
        for (u = t; u < n_tokens; u++) {                                                           \
            const uint8_t *xt = x + u * x_stride;                                                  \
            if (side != NULL) gemini__tile_side_avx512(xt, x_stride, 1, n, Q4, side, side_stride); \
            for (r = 0; r + 4 <= n_rows; r += 4)                                                   \
                gemini__tile_##TYPE##_4x1(w + r * row_bytes, row_bytes, xt, x_stride, side,        \
                                          side_stride, n, y + u * y_stride + r, y_stride);         \
            for (; r < n_rows; r++)                                                                \
                gemini__tile_##TYPE##_1x1(w + r * row_bytes, row_bytes, xt, x_stride, side,        \
                                          side_stride, n, y + u * y_stride + r, y_stride);         \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    GEMINI__AVX512VNNI_TARGET static float gemini__dot_##TYPE##_avx512vnni(const void *w,          \
                                                                          const void *x,           \
                                                                          int64_t n)               \
    {                                                                                              \
        float out;                                                                                 \
        gemini__tile_##TYPE##_1x1((const uint8_t *)w, 0, (const uint8_t *)x, 0, NULL, 0, n, &out, \
                                  0);                                                              \
        return out;                                                                                \
    }
GEMINI__TILE_ANY(q8_0, 0)
GEMINI__TILE_ANY(q4_0, 1)
#undef GEMINI__TILE_ANY

static const gemini__dot2x2_fn gemini__dot2x2_avx512[GEMINI_TYPE_COUNT] = {
    gemini__dot2x2_f32_avx512, gemini__dot2x2_f16_avx512, gemini__dot2x2_bf16_avx512,
    gemini__dot2x2_q8_0_avx2, gemini__dot2x2_q4_0_avx2
};

/* q8_0 and q4_0 take the tile kernels at this level */
static const gemini__dot2x2_fn gemini__dot2x2_avx512vnni[GEMINI_TYPE_COUNT] = {
    gemini__dot2x2_f32_avx512, gemini__dot2x2_f16_avx512, gemini__dot2x2_bf16_avx512, NULL, NULL
};

static const gemini__tile_fn gemini__tile_avx512vnni[GEMINI_TYPE_COUNT] = {
    NULL, gemini__tile_f16_avx512, gemini__tile_bf16_avx512, gemini__tile_q8_0_avx512vnni,
    gemini__tile_q4_0_avx512vnni
};

static const gemini__dot_fn gemini__dot_avx512[GEMINI_TYPE_COUNT] = {
    gemini__dot_f32_avx512, gemini__dot_f16_avx512, gemini__dot_bf16_avx512,
    gemini__dot_q8_0_avx2, gemini__dot_q4_0_avx2
};

static const gemini__dot_fn gemini__dot_avx512vnni[GEMINI_TYPE_COUNT] = {
    gemini__dot_f32_avx512, gemini__dot_f16_avx512, gemini__dot_bf16_avx512,
    gemini__dot_q8_0_avx512vnni, gemini__dot_q4_0_avx512vnni
};

#ifdef GEMINI__HAVE_AMX
/* The AMX level: q8_0 and q4_0 products in Intel AMX tiles (TDPBSSD) for groups of 16 tokens,
   and in 512-bit AVX512_VNNI registers for the tokens left over and for decoding. Both sum each
   32-value block exactly, as one int32, and then, for blocks in order, acc = fma(isum, d_w * d_x,
   acc): one formula for every output whatever path made it, so prefill and decode give the same
   bits (the VNNI level's split of each block over eight lanes has no AMX counterpart).

   The VNNI path takes 16 weight rows at once. vpdpbusd leaves a row's block pair in 16 lanes
   (eight per block); the 16 rows' registers are then added together in a transposing tree
   (unpacks, then 128-bit shuffles) into two registers, one per block, whose lane r is row r's
   exact sum. The block scales of the 16 rows come in by one gather each. */

/* Rows 16 * row_bytes apart must be reachable with int32 gather indices. */
#define GEMINI__AMX_ROWS_OK(row_bytes) ((row_bytes) > 0 && (row_bytes) < (INT32_MAX / 16))

/* r * stride in lane r: the offsets of 16 rows for a gather. */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE __m512i gemini__row_offsets16(int64_t stride)
{
    const __m512i rows = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    return _mm512_mullo_epi32(rows, _mm512_set1_epi32((int)stride));
}

/* The f16 scales at base + index[r] (16 rows), as floats. */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE __m512 gemini__gather_scales(const uint8_t *base,
                                                                          __m512i index)
{
    __m512i words = _mm512_i32gather_epi32(index, (const void *)base, 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
}

/* One block pair (or the last, single block) of R rows (16, or 1 with the others zero) by one
   token: acc[r] += each block's exact sum times its scales, the even block first. */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE __m512 gemini__rows_exact_step(
    const uint8_t *w_pair, int64_t row_bytes, int64_t ahead, const int R, __m512i index,
    const uint8_t *x_pair, int q4, int single, __m512 acc)
{
    const int64_t w_block = q4 ? GEMINI__Q4_0_BYTES : GEMINI__Q8_0_BYTES;
    const __m512i offset = _mm512_set1_epi8(q4 ? 8 : (char)0x80);
    const __m512i x_values = gemini__pair_q8_avx512(x_pair, single);
    const __m512i x_start = gemini__pair_start_avx512(x_values, offset);
    const uint8_t *row = w_pair;
    __m512i pairs[8], quads[4], halves[2], sums[2], lanes[2];
    int i, k;
    /* rows 2i and 2i+1: their lanes interleaved and added, two partial sums per row and
       128-bit lane (the tree adds 16 registers without holding them all) */
    GEMINI__UNROLL16
    for (i = 0; i < 8; i++) {
        for (k = 0; k < 2; k++) {
            __m512i w_values;
            if (2 * i + k >= R) {
                lanes[k] = _mm512_setzero_si512();
                continue;
            }
            gemini__prefetch(row, ahead);
            w_values = q4 ? gemini__pair_q4_avx512(row, single)
                          : _mm512_xor_si512(gemini__pair_q8_avx512(row, single), offset);
            lanes[k] = _mm512_dpbusd_epi32(x_start, w_values, x_values);
            row += row_bytes;
        }
        pairs[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(lanes[0], lanes[1]),
                                    _mm512_unpackhi_epi32(lanes[0], lanes[1]));
    }
    /* rows 4i..4i+3, one sum each per 128-bit lane */
    for (i = 0; i < 4; i++)
        quads[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(pairs[2 * i], pairs[2 * i + 1]),
                                    _mm512_unpackhi_epi64(pairs[2 * i], pairs[2 * i + 1]));
    /* 128-bit lanes 0+1 are the even block, 2+3 the odd one */
    for (i = 0; i < 2; i++)
        halves[i] = _mm512_add_epi32(
            _mm512_shuffle_i32x4(quads[2 * i], quads[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
            _mm512_shuffle_i32x4(quads[2 * i], quads[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    sums[0] = _mm512_shuffle_i32x4(halves[0], halves[1], _MM_SHUFFLE(2, 0, 2, 0));
    sums[1] = _mm512_shuffle_i32x4(halves[0], halves[1], _MM_SHUFFLE(3, 1, 3, 1));
    for (k = 0; k < (single ? 1 : 2); k++) {
        const __m512 x_scale = _mm512_set1_ps(
            _cvtsh_ss(gemini__read_u16(x_pair + k * GEMINI__Q8_0_BYTES)));
        acc = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(sums[k]),
            _mm512_mul_ps(gemini__gather_scales(w_pair + k * w_block, index), x_scale), acc);
    }
    return acc;
}

/* y[r] = row r . x for R rows (16, or 1), each block summed exactly (see above); x is one
   token's q8_0 row. */
GEMINI__AVX512VNNI_TARGET static GEMINI__INLINE void gemini__rows_exact_avx512(
    const uint8_t *w, int64_t row_bytes, const int R, const uint8_t *x, int64_t n, int q4,
    float *y)
{
    const int64_t w_pair = 2 * (q4 ? GEMINI__Q4_0_BYTES : GEMINI__Q8_0_BYTES);
    const int64_t n_blocks = n / GEMINI__QK;
    /* the same place a few rows on, and past this step's 16 rows at least */
    const int64_t ahead_rows = GEMINI__PREFETCH_BYTES / row_bytes + 1;
    const int64_t ahead = (ahead_rows > 16 ? ahead_rows : 16) * row_bytes;
    const __m512i index = R == 1 ? _mm512_setzero_si512() : gemini__row_offsets16(row_bytes);
    __m512 acc = _mm512_setzero_ps();
    int64_t block;
    for (block = 0; block + 2 <= n_blocks; block += 2)
        acc = gemini__rows_exact_step(w + block / 2 * w_pair, row_bytes, ahead, R, index,
                                      x + block / 2 * 2 * GEMINI__Q8_0_BYTES, q4, 0, acc);
    if (block < n_blocks)
        acc = gemini__rows_exact_step(w + block / 2 * w_pair, row_bytes, ahead, R, index,
                                      x + block / 2 * 2 * GEMINI__Q8_0_BYTES, q4, 1, acc);
    if (R == 1)
        *y = _mm512_cvtss_f32(acc);
    else
        _mm512_storeu_ps(y, acc);
}

/* One row's dot product by the 16-row kernel (rows 1-15 zero). */
#define GEMINI__DOT_EXACT(TYPE, Q4, ROW_BYTES)                                                     \
    GEMINI__AVX512VNNI_TARGET static float gemini__dot_##TYPE##_exact(const void *w,             \
                                                                     const void *x, int64_t n)   \
    {                                                                                              \
        float out;                                                                                 \
        gemini__rows_exact_avx512((const uint8_t *)w, ROW_BYTES, 1, (const uint8_t *)x, n, Q4,    \
                                  &out);                                                           \
        return out;                                                                                \
    }
GEMINI__DOT_EXACT(q8_0, 0, GEMINI__Q8_0_BYTES)
GEMINI__DOT_EXACT(q4_0, 1, GEMINI__Q4_0_BYTES)
#undef GEMINI__DOT_EXACT

/* Palette 1: tiles 0-3 are C (16 tokens x 16 rows of int32 sums), 4 and 6 A (16 tokens x the
   32 bytes of one activation block), 5 and 7 B (the block's 32 bytes of 16 weight rows, as 8
   rows of 16 x 4 bytes, the layout TDPBSSD reads). */
typedef struct gemini__amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} gemini__amx_config;

/* GCC's AMX intrinsics are asm statements that name no memory: this tells the compiler that
   a sums buffer (1 KiB) is written there, so that its loads stay after the tile store and
   before the next one. (A full "memory" clobber would also send the accumulators through the
   stack.) */
#define GEMINI__AMX_TOUCH(buffer) __asm__ __volatile__("" : "+m"(*(int32_t(*)[256])(buffer)))

/* One block of one group of 16 tokens, into the int32 buffer (16 tokens x 16 rows). */
#define GEMINI__AMX_BLOCK(C, A, B, x_block, x_stride, w_block, buffer)                            \
    do {                                                                                           \
        GEMINI__AMX_TOUCH(buffer);                                                                 \
        _tile_zero(C);                                                                             \
        _tile_loadd(A, x_block, x_stride);                                                         \
        _tile_loadd(B, w_block, 64);                                                               \
        _tile_dpbssd(C, A, B);                                                                     \
        _tile_stored(C, buffer, 64);                                                               \
        GEMINI__AMX_TOUCH(buffer);                                                                 \
    } while (0)

/* 16 weight rows made ready for the tiles: per block, its quants as TDPBSSD's B (row k holds
   values 4k..4k+3 of every weight row: q8_0 bytes as they are; q4_0 nibbles as the signed
   values n - 8, rows 0-3 from the low nibbles of bytes 0-15 and rows 4-7 from the high ones)
   and its 16 scales as floats. */
GEMINI__AMX_TARGET static void gemini__amx_pack(const uint8_t *w, int64_t row_bytes,
                                                int64_t n_blocks, int q4, uint8_t *packed,
                                                float *w_scales)
{
    const __m512i index = gemini__row_offsets16(row_bytes);
    const __m512i nibble = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
    int64_t block;
    int k;
    for (block = 0; block < n_blocks; block++) {
        const uint8_t *in = w + block * (q4 ? GEMINI__Q4_0_BYTES : GEMINI__Q8_0_BYTES);
        uint8_t *out = packed + block * 512;
        _mm512_store_ps(w_scales + block * 16, gemini__gather_scales(in, index));
        for (k = 0; k < (q4 ? 4 : 8); k++) {
            __m512i quads = _mm512_i32gather_epi32(index, (const void *)(in + 2 + 4 * k), 1);
            if (!q4) {
                _mm512_store_si512((void *)(out + 64 * k), quads);
                continue;
            }
            _mm512_store_si512((void *)(out + 64 * k),
                               _mm512_sub_epi8(_mm512_and_si512(quads, nibble), eight));
            _mm512_store_si512(
                (void *)(out + 64 * (k + 4)),
                _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi32(quads, 4), nibble), eight));
        }
    }
}

/* acc[t] += the products of one block (sums of 16 tokens x 16 rows in `sums`). */
GEMINI__AMX_TARGET static GEMINI__INLINE void gemini__amx_scale(const int32_t *sums,
                                                               const float *w_scales,
                                                               const float *x_scales,
                                                               __m512 acc[16])
{
    const __m512 w_scale = _mm512_load_ps(w_scales);
    int t;
    GEMINI__UNROLL16
    for (t = 0; t < 16; t++)
        acc[t] = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(_mm512_load_si512((const void *)(sums + 16 * t))),
            _mm512_mul_ps(w_scale, _mm512_set1_ps(x_scales[t])), acc[t]);
}

/* Block `block` of the group into C tile k (0-3) and sums buffer k; the A and B tiles
   alternate between 4, 5 and 6, 7. (GCC's tile intrinsics want literal tile numbers.) */
#define GEMINI__AMX_ISSUE(k, A, B, block)                                                         \
    GEMINI__AMX_BLOCK(k, A, B, x + (block) * GEMINI__Q8_0_BYTES + 2, x_stride,                  \
                      packed + (block) * 512, sums + 256 * (k))
#define GEMINI__AMX_SCALE(k, block)                                                                \
    gemini__amx_scale(sums + 256 * (k), w_scales + (block) * 16, x_scales + (block) * 16, acc)

/* 16 tokens (x_stride bytes apart, their scales in x_scales as [block][16]) by the packed 16
   rows: y[t * y_stride + r]. The int32 sums leave the tiles through memory, so the tiles run
   three blocks ahead of the scaling, in a ring of four C tiles and buffers. */
GEMINI__AMX_TARGET static void gemini__amx_group(const uint8_t *x, int64_t x_stride,
                                                 const float *x_scales, int64_t n_blocks,
                                                 const uint8_t *packed, const float *w_scales,
                                                 int32_t *sums, float *y, int64_t y_stride)
{
    __m512 acc[16];
    int64_t block;
    int t;
    GEMINI__UNROLL16
    for (t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
    GEMINI__AMX_ISSUE(0, 4, 5, 0);
    if (n_blocks > 1) GEMINI__AMX_ISSUE(1, 6, 7, 1);
    if (n_blocks > 2) GEMINI__AMX_ISSUE(2, 4, 5, 2);
    for (block = 0; block < n_blocks; block += 4) {
        if (block + 3 < n_blocks) GEMINI__AMX_ISSUE(3, 6, 7, block + 3);
        GEMINI__AMX_SCALE(0, block);
        if (block + 1 == n_blocks) break;
        if (block + 4 < n_blocks) GEMINI__AMX_ISSUE(0, 4, 5, block + 4);
        GEMINI__AMX_SCALE(1, block + 1);
        if (block + 2 == n_blocks) break;
        if (block + 5 < n_blocks) GEMINI__AMX_ISSUE(1, 6, 7, block + 5);
        GEMINI__AMX_SCALE(2, block + 2);
        if (block + 3 == n_blocks) break;
        if (block + 6 < n_blocks) GEMINI__AMX_ISSUE(2, 4, 5, block + 6);
        GEMINI__AMX_SCALE(3, block + 3);
    }
    GEMINI__UNROLL16
    for (t = 0; t < 16; t++) _mm512_storeu_ps(y + t * y_stride, acc[t]);
}
#undef GEMINI__AMX_ISSUE
#undef GEMINI__AMX_SCALE

/* The tile kernel of the AMX level: whole groups of 16 tokens of a 16-row block in AMX tiles
   (with x_scales and scratch room), everything else 16 rows at a time in VNNI registers, with
   the same bits. */
GEMINI__AMX_TARGET static void gemini__tile_exact(const uint8_t *w, int64_t row_bytes,
                                                  int n_rows, const uint8_t *x, int64_t x_stride,
                                                  const float *x_scales, int n_tokens, int64_t n,
                                                  float *y, int64_t y_stride, void *scratch,
                                                  int64_t scratch_bytes, int q4)
{
    const int64_t n_blocks = n / GEMINI__QK;
    int t = 0;
    if (n_rows == 16 && n_tokens >= 16 && n_blocks > 0 && x_scales != NULL &&
        scratch_bytes >= GEMINI__AMX_SCRATCH(n) && GEMINI__AMX_ROWS_OK(row_bytes)) {
        /* scratch (GEMINI__AMX_SCRATCH): the 16 rows packed for TDPBSSD (512 bytes a block),
           their scales (64 bytes a block), four buffers of a tile's int32 sums */
        uint8_t *packed = (uint8_t *)scratch;
        float *w_scales = (float *)(packed + n_blocks * 512);
        int32_t *sums = (int32_t *)(w_scales + n_blocks * 16);
        gemini__amx_config config;
        int k;
        memset(&config, 0, sizeof config);
        config.palette = 1;
        for (k = 0; k < 4; k++) { /* C */
            config.rows[k] = 16;
            config.bytes_per_row[k] = 64;
        }
        for (k = 4; k < 8; k += 2) {
            config.rows[k] = 16; /* A */
            config.bytes_per_row[k] = GEMINI__QK;
            config.rows[k + 1] = 8; /* B */
            config.bytes_per_row[k + 1] = 64;
        }
        gemini__amx_pack(w, row_bytes, n_blocks, q4, packed, w_scales);
        /* GCC's asm intrinsics name no memory: the configuration and the packed weights are
           stored before the tiles read them, and the tiles done before anything after */
        __asm__ __volatile__("" ::: "memory");
        _tile_loadconfig(&config);
        for (; t + 16 <= n_tokens; t += 16)
            gemini__amx_group(x + t * x_stride, x_stride,
                              x_scales + GEMINI__X_SCALE(t, 0, n_blocks), n_blocks, packed,
                              w_scales, sums, y + t * y_stride, y_stride);
        __asm__ __volatile__("" ::: "memory");
        _tile_release();
    }
    /* the rest: 16 rows at a time in VNNI registers, or one by one (fewer than 16, or rows too
       far apart for the gathers' int32 offsets) */
    for (; t < n_tokens; t++) {
        const uint8_t *xt = x + t * x_stride;
        float *yt = y + t * y_stride;
        int r;
        const int all16 = n_rows == 16 && GEMINI__AMX_ROWS_OK(row_bytes);
        if (all16 && q4) gemini__rows_exact_avx512(w, row_bytes, 16, xt, n, 1, yt);
        if (all16 && !q4) gemini__rows_exact_avx512(w, row_bytes, 16, xt, n, 0, yt);
        for (r = 0; !all16 && r < n_rows; r++)
            yt[r] = q4 ? gemini__dot_q4_0_exact(w + r * row_bytes, xt, n)
                       : gemini__dot_q8_0_exact(w + r * row_bytes, xt, n);
    }
}

#define GEMINI__TILE_AMX(TYPE, Q4)                                                                 \
    GEMINI__AMX_TARGET static void gemini__tile_##TYPE##_amx(                                      \
        const uint8_t *w, int64_t row_bytes, int n_rows, const uint8_t *x, int64_t x_stride,      \
        const float *x_scales, int n_tokens, int64_t n, float *y, int64_t y_stride,               \
        void *scratch, int64_t scratch_bytes)                                                      \
    {                                                                                              \
        gemini__tile_exact(w, row_bytes, n_rows, x, x_stride, x_scales, n_tokens, n, y, y_stride, \
                           scratch, scratch_bytes, Q4);                                            \
    }
GEMINI__TILE_AMX(q8_0, 0)
GEMINI__TILE_AMX(q4_0, 1)
#undef GEMINI__TILE_AMX

static const gemini__dot_fn gemini__dot_amx[GEMINI_TYPE_COUNT] = {
    gemini__dot_f32_avx512, gemini__dot_f16_avx512, gemini__dot_bf16_avx512,
    gemini__dot_q8_0_exact, gemini__dot_q4_0_exact
};

static const gemini__tile_fn gemini__tile_amx[GEMINI_TYPE_COUNT] = {
    NULL, NULL, NULL, gemini__tile_q8_0_amx, gemini__tile_q4_0_amx
};
#endif /* GEMINI__HAVE_AMX */
#endif /* GEMINI__HAVE_AVX512 */

#ifdef GEMINI__HAVE_NEON
/* NEON kernels (AArch64). Loads are byte loads (vld1q_u8) wherever a row may sit at any
   address. The q8_0/q4_0 kernels build, per block, four int32 lanes where lane i holds the
   products of bytes 4i..4i+3 and 16+4i..16+4i+3, with SDOT (dotprod) or without it, so that
   both levels give the same bits; the float side is then the AVX2 kernels' scheme (even and
   odd blocks in two accumulators, then their sum), and the 2x2 kernels repeat it per pair. */
static float gemini__dot_f32_neon(const void *w, const void *x, int64_t n)
{
    const float *a = (const float *)w, *b = (const float *)x;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    float sum;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        acc2 = vfmaq_f32(acc2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        acc3 = vfmaq_f32(acc3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* 4 f16 or bf16 values (8 bytes) as floats: vcvt_f32_f16, or the bits moved up 16 places. */
static GEMINI__INLINE float32x4_t gemini__load_half4_neon(const uint8_t *p, int bf16)
{
    uint8x8_t bytes = vld1_u8(p);
    if (bf16) return vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(bytes), 16));
    return vcvt_f32_f16(vreinterpret_f16_u8(bytes));
}

/* The f16 and bf16 dot products (bf16 = 1: bf16 weights). */
static GEMINI__INLINE float gemini__dot_half_neon(const uint8_t *a, const float *b, int64_t n,
                                                  int bf16)
{
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    float sum;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = vfmaq_f32(acc0, gemini__load_half4_neon(a + 2 * i, bf16), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, gemini__load_half4_neon(a + 2 * i + 8, bf16), vld1q_f32(b + i + 4));
        acc2 = vfmaq_f32(acc2, gemini__load_half4_neon(a + 2 * i + 16, bf16),
                         vld1q_f32(b + i + 8));
        acc3 = vfmaq_f32(acc3, gemini__load_half4_neon(a + 2 * i + 24, bf16),
                         vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        acc0 = vfmaq_f32(acc0, gemini__load_half4_neon(a + 2 * i, bf16), vld1q_f32(b + i));
    sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++) {
        uint16_t h = gemini__read_u16(a + 2 * i);
        sum += (bf16 ? gemini_bf16_to_f32(h) : gemini_f16_to_f32(h)) * b[i];
    }
    return sum;
}

static float gemini__dot_f16_neon(const void *w, const void *x, int64_t n)
{
    return gemini__dot_half_neon((const uint8_t *)w, (const float *)x, n, 0);
}

static float gemini__dot_bf16_neon(const void *w, const void *x, int64_t n)
{
    return gemini__dot_half_neon((const uint8_t *)w, (const float *)x, n, 1);
}

static void gemini__axpy_neon(float *y, float a, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
        vst1q_f32(y + i + 4, vfmaq_n_f32(vld1q_f32(y + i + 4), vld1q_f32(x + i + 4), a));
    }
    for (; i < n; i++) y[i] += a * x[i];
}

/* y += a * x for an f16 (bf16 = 0) or bf16 row x. */
static GEMINI__INLINE void gemini__axpy_half_neon(float *y, float a, const uint8_t *x, int64_t n,
                                                  int bf16)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), gemini__load_half4_neon(x + 2 * i, bf16),
                                     a));
        vst1q_f32(y + i + 4, vfmaq_n_f32(vld1q_f32(y + i + 4),
                                         gemini__load_half4_neon(x + 2 * i + 8, bf16), a));
    }
    for (; i < n; i++) {
        uint16_t h = gemini__read_u16(x + 2 * i);
        y[i] += a * (bf16 ? gemini_bf16_to_f32(h) : gemini_f16_to_f32(h));
    }
}

static void gemini__axpy_f16_neon(float *y, float a, const uint8_t *x, int64_t n)
{
    gemini__axpy_half_neon(y, a, x, n, 0);
}

static void gemini__axpy_bf16_neon(float *y, float a, const uint8_t *x, int64_t n)
{
    gemini__axpy_half_neon(y, a, x, n, 1);
}

static const gemini__axpy_half_fn gemini__axpy16_neon[GEMINI_TYPE_COUNT] = {
    NULL, gemini__axpy_f16_neon, gemini__axpy_bf16_neon, NULL, NULL
};

/* Four values of a row of kind 0 (f32), 1 (f16) or 2 (bf16), as floats. */
static GEMINI__INLINE float32x4_t gemini__load_kind_neon(const uint8_t *p, const int kind)
{
    if (kind == 0) return vld1q_f32((const float *)(const void *)p);
    return gemini__load_half4_neon(p, kind == 2);
}

/* H heads x 16 dimensions of gemini__weighted_sums_neon, in 4 x H registers; values of kind
   0 (f32), 1 (f16) or 2 (bf16). */
static GEMINI__INLINE void gemini__weighted_block_neon(float *out, int64_t out_stride,
                                                       const int H, const float *p,
                                                       int64_t p_stride, const uint8_t *values,
                                                       int64_t row_bytes, int32_t n_keys,
                                                       const int kind)
{
    const int value_bytes = kind == 0 ? 4 : 2;
    float32x4_t acc[4][4];
    int32_t k;
    int h, c;
    GEMINI__UNROLL
    for (h = 0; h < H; h++)
        GEMINI__UNROLL
        for (c = 0; c < 4; c++) acc[h][c] = vld1q_f32(out + h * out_stride + 4 * c);
    for (k = 0; k < n_keys; k++) {
        const uint8_t *v = values + k * row_bytes;
        float32x4_t value[4];
        GEMINI__UNROLL
        for (c = 0; c < 4; c++) value[c] = gemini__load_kind_neon(v + 4 * c * value_bytes, kind);
        GEMINI__UNROLL
        for (h = 0; h < H; h++) {
            float weight = p[h * p_stride + k];
            GEMINI__UNROLL
            for (c = 0; c < 4; c++) acc[h][c] = vfmaq_n_f32(acc[h][c], value[c], weight);
        }
    }
    GEMINI__UNROLL
    for (h = 0; h < H; h++)
        GEMINI__UNROLL
        for (c = 0; c < 4; c++) vst1q_f32(out + h * out_stride + 4 * c, acc[h][c]);
}

GEMINI__WEIGHTED_SUMS(NEON, neon, 16, 64)

/* A block's f16 scale, converted by the FPU. */
static GEMINI__INLINE float gemini__block_scale_neon(const uint8_t *block)
{
    float16x4_t h = vreinterpret_f16_u16(vdup_n_u16(gemini__read_u16(block)));
    return vgetq_lane_f32(vcvt_f32_f16(h), 0);
}

/* The 32 values of a q8_0 (q4 = 0) or q4_0 (q4 = 1) block as signed bytes in two halves:
   values 0-15 in *low, 16-31 in *high. */
static GEMINI__INLINE void gemini__block_values_neon(const uint8_t *block, int q4, int8x16_t *low,
                                                     int8x16_t *high)
{
    if (q4) {
        uint8x16_t packed = vld1q_u8(block + 2);
        *low = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
        *high = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), vdupq_n_s8(8));
    } else {
        *low = vreinterpretq_s8_u8(vld1q_u8(block + 2));
        *high = vreinterpretq_s8_u8(vld1q_u8(block + 18));
    }
}

/* The four int32 lanes of one block's products without SDOT: vmull/vmlal put two products in
   each int16 lane (at most 2 * 128 * 127 in size, no overflow, as q8_0 activations are
   quantised to [-127, 127]), then two pairwise additions gather the lanes' products. */
static GEMINI__INLINE int32x4_t gemini__isum_neon(int8x16_t w0, int8x16_t w1, int8x16_t x0,
                                                  int8x16_t x1)
{
    int16x8_t low = vmlal_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), vget_low_s8(w1),
                             vget_low_s8(x1));
    int16x8_t high = vmlal_high_s8(vmull_high_s8(w0, x0), w1, x1);
    return vpaddq_s32(vpaddlq_s16(low), vpaddlq_s16(high));
}

#ifdef GEMINI__HAVE_NEON_DOTPROD
GEMINI__NEON_DOTPROD_TARGET static GEMINI__INLINE int32x4_t gemini__isum_neon_dotprod(
    int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1)
{
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1);
}
#endif

/* The integer kernels (q8_0 or q4_0 weights, q8_0 activations), once per level: TARGET, ISUM
   (as gemini__isum_neon) and the name suffix SFX. */
#define GEMINI__NEON_I8_KERNELS(SFX, TARGET, ISUM)                                                 \
    /* acc + (w . x) * d_w * d_x for one weight block w (its values and scale) and one q8_0        \
       activation block x */                                                                       \
    TARGET static GEMINI__INLINE float32x4_t gemini__block_product_##SFX(                          \
        int8x16_t w0, int8x16_t w1, float dw, const uint8_t *x, float32x4_t acc)                   \
    {                                                                                              \
        int8x16_t x0 = vreinterpretq_s8_u8(vld1q_u8(x + 2));                                       \
        int8x16_t x1 = vreinterpretq_s8_u8(vld1q_u8(x + 18));                                      \
        return vfmaq_n_f32(acc, vcvtq_f32_s32(ISUM(w0, w1, x0, x1)),                               \
                           dw * gemini__block_scale_neon(x));                                      \
    }                                                                                              \
                                                                                                   \
    TARGET static GEMINI__INLINE float32x4_t gemini__block_1x1_##SFX(const uint8_t *a, int q4,     \
                                                                     const uint8_t *x,             \
                                                                     float32x4_t acc)              \
    {                                                                                              \
        int8x16_t w0, w1;                                                                          \
        gemini__block_values_neon(a, q4, &w0, &w1);                                                \
        return gemini__block_product_##SFX(w0, w1, gemini__block_scale_neon(a), x, acc);           \
    }                                                                                              \
                                                                                                   \
    TARGET static GEMINI__INLINE float gemini__dot_i8_##SFX(const uint8_t *a, int q4,              \
                                                            const uint8_t *x, int64_t n)           \
    {                                                                                              \
        float32x4_t even = vdupq_n_f32(0.0f), odd = even;                                          \
        int64_t block, n_blocks = n / GEMINI__QK;                                                  \
        int64_t a_bytes = q4 ? GEMINI__Q4_0_BYTES : GEMINI__Q8_0_BYTES;                            \
        for (block = 0; block + 2 <= n_blocks; block += 2) {                                       \
            even = gemini__block_1x1_##SFX(a, q4, x, even);                                        \
            odd = gemini__block_1x1_##SFX(a + a_bytes, q4, x + GEMINI__Q8_0_BYTES, odd);           \
            a += 2 * a_bytes;                                                                      \
            x += 2 * GEMINI__Q8_0_BYTES;                                                           \
        }                                                                                          \
        if (block < n_blocks) even = gemini__block_1x1_##SFX(a, q4, x, even);                      \
        return vaddvq_f32(vaddq_f32(even, odd));                                                   \
    }                                                                                              \
                                                                                                   \
    TARGET static float gemini__dot_q8_0_##SFX(const void *w, const void *x, int64_t n)            \
    {                                                                                              \
        return gemini__dot_i8_##SFX((const uint8_t *)w, 0, (const uint8_t *)x, n);                 \
    }                                                                                              \
                                                                                                   \
    TARGET static float gemini__dot_q4_0_##SFX(const void *w, const void *x, int64_t n)            \
    {                                                                                              \
        return gemini__dot_i8_##SFX((const uint8_t *)w, 1, (const uint8_t *)x, n);                 \
    }                                                                                              \
                                                                                                   \
    /* One block of the 2x2 product into acc[0..3]; each weight block is prepared once */          \
    TARGET static GEMINI__INLINE void gemini__block_2x2_##SFX(const uint8_t *a0,                   \
                                                              const uint8_t *a1, int q4,           \
                                                              const uint8_t *x0,                   \
                                                              const uint8_t *x1,                   \
                                                              float32x4_t *acc)                    \
    {                                                                                              \
        int8x16_t w00, w01, w10, w11;                                                              \
        float d0 = gemini__block_scale_neon(a0), d1 = gemini__block_scale_neon(a1);                \
        gemini__block_values_neon(a0, q4, &w00, &w01);                                             \
        gemini__block_values_neon(a1, q4, &w10, &w11);                                             \
        acc[0] = gemini__block_product_##SFX(w00, w01, d0, x0, acc[0]);                            \
        acc[1] = gemini__block_product_##SFX(w00, w01, d0, x1, acc[1]);                            \
        acc[2] = gemini__block_product_##SFX(w10, w11, d1, x0, acc[2]);                            \
        acc[3] = gemini__block_product_##SFX(w10, w11, d1, x1, acc[3]);                            \
    }                                                                                              \
                                                                                                   \
    TARGET static GEMINI__INLINE void gemini__dot2x2_i8_##SFX(const uint8_t *a0,                   \
                                                              const uint8_t *a1, int q4,           \
                                                              const uint8_t *x0,                   \
                                                              const uint8_t *x1, int64_t n,        \
                                                              float *out)                          \
    {                                                                                              \
        float32x4_t even[4], odd[4];                                                               \
        int64_t block, n_blocks = n / GEMINI__QK;                                                  \
        int64_t a_bytes = q4 ? GEMINI__Q4_0_BYTES : GEMINI__Q8_0_BYTES;                            \
        int k;                                                                                     \
        for (k = 0; k < 4; k++) even[k] = odd[k] = vdupq_n_f32(0.0f);                              \
        for (block = 0; block + 2 <= n_blocks; block += 2) {                                       \
            gemini__block_2x2_##SFX(a0, a1, q4, x0, x1, even);                                     \
            gemini__block_2x2_##SFX(a0 + a_bytes, a1 + a_bytes, q4, x0 + GEMINI__Q8_0_BYTES,       \
                                    x1 + GEMINI__Q8_0_BYTES, odd);                                 \
            a0 += 2 * a_bytes;                                                                     \
            a1 += 2 * a_bytes;                                                                     \
            x0 += 2 * GEMINI__Q8_0_BYTES;                                                          \
            x1 += 2 * GEMINI__Q8_0_BYTES;                                                          \
        }                                                                                          \
        if (block < n_blocks) gemini__block_2x2_##SFX(a0, a1, q4, x0, x1, even);                   \
        for (k = 0; k < 4; k++) out[k] = vaddvq_f32(vaddq_f32(even[k], odd[k]));                   \
    }                                                                                              \
                                                                                                   \
    TARGET static void gemini__dot2x2_q8_0_##SFX(const uint8_t *w0, const uint8_t *w1,             \
                                                 const uint8_t *x0, const uint8_t *x1,             \
                                                 int64_t n, float *out)                            \
    {                                                                                              \
        gemini__dot2x2_i8_##SFX(w0, w1, 0, x0, x1, n, out);                                        \
    }                                                                                              \
                                                                                                   \
    TARGET static void gemini__dot2x2_q4_0_##SFX(const uint8_t *w0, const uint8_t *w1,             \
                                                 const uint8_t *x0, const uint8_t *x1,             \
                                                 int64_t n, float *out)                            \
    {                                                                                              \
        gemini__dot2x2_i8_##SFX(w0, w1, 1, x0, x1, n, out);                                        \
    }

GEMINI__NEON_I8_KERNELS(neon, GEMINI__NEON_TARGET, gemini__isum_neon)

static const gemini__dot2x2_fn gemini__dot2x2_neon[GEMINI_TYPE_COUNT] = {
    NULL, NULL, NULL, gemini__dot2x2_q8_0_neon, gemini__dot2x2_q4_0_neon
};

static const gemini__dot_fn gemini__dot_neon[GEMINI_TYPE_COUNT] = {
    gemini__dot_f32_neon, gemini__dot_f16_neon, gemini__dot_bf16_neon, gemini__dot_q8_0_neon,
    gemini__dot_q4_0_neon
};

#ifdef GEMINI__HAVE_NEON_DOTPROD
GEMINI__NEON_I8_KERNELS(neon_dotprod, GEMINI__NEON_DOTPROD_TARGET, gemini__isum_neon_dotprod)

static const gemini__dot2x2_fn gemini__dot2x2_neon_dotprod[GEMINI_TYPE_COUNT] = {
    NULL, NULL, NULL, gemini__dot2x2_q8_0_neon_dotprod, gemini__dot2x2_q4_0_neon_dotprod
};

static const gemini__dot_fn gemini__dot_neon_dotprod[GEMINI_TYPE_COUNT] = {
    gemini__dot_f32_neon, gemini__dot_f16_neon, gemini__dot_bf16_neon,
    gemini__dot_q8_0_neon_dotprod, gemini__dot_q4_0_neon_dotprod
};
#endif
#endif /* GEMINI__HAVE_NEON */

/* The kernel tables for this CPU (a NULL 2x2 kernel: four one-row calls instead). */
static const gemini__dot_fn *gemini__select_kernels(gemini__axpy_fn *axpy,
                                                    const gemini__dot2x2_fn **dot2x2)
{
    static const gemini__dot2x2_fn none[GEMINI_TYPE_COUNT] = {NULL, NULL, NULL, NULL, NULL};
    int level = gemini__cpu_level();
    (void)level;
#ifdef GEMINI__HAVE_AVX512
    if (level >= GEMINI__CPU_AVX512) {
        *axpy = gemini__axpy_avx512;
        *dot2x2 = level >= GEMINI__CPU_AVX512VNNI ? gemini__dot2x2_avx512vnni
                                                  : gemini__dot2x2_avx512;
#ifdef GEMINI__HAVE_AMX
        if (level == GEMINI__CPU_AMX) return gemini__dot_amx;
#endif
        return level == GEMINI__CPU_AVX512VNNI ? gemini__dot_avx512vnni : gemini__dot_avx512;
    }
#endif
#ifdef GEMINI__HAVE_AVX2
    if (level >= GEMINI__CPU_AVX2) {
        *axpy = gemini__axpy_avx2;
        *dot2x2 = gemini__dot2x2_avx2;
        return gemini__dot_avx2;
    }
#endif
#ifdef GEMINI__HAVE_NEON_DOTPROD
    if (level >= GEMINI__CPU_NEON_DOTPROD) {
        *axpy = gemini__axpy_neon;
        *dot2x2 = gemini__dot2x2_neon_dotprod;
        return gemini__dot_neon_dotprod;
    }
#endif
#ifdef GEMINI__HAVE_NEON
    if (level >= GEMINI__CPU_NEON) {
        *axpy = gemini__axpy_neon;
        *dot2x2 = gemini__dot2x2_neon;
        return gemini__dot_neon;
    }
#endif
    *axpy = gemini__axpy;
    *dot2x2 = none;
    return gemini__dot_scalar;
}

/* Whether these tile kernels read the activations' scales as floats (x_scales; the AMX ones,
   for whole groups of 16 tokens). */
static int gemini__tile_reads_scales(const gemini__tile_fn *tile)
{
#ifdef GEMINI__HAVE_AMX
    if (tile == gemini__tile_amx) return 1;
#endif
    (void)tile;
    return 0;
}

/* The tile kernels for this CPU (a NULL entry: that type uses dot and dot2x2). */
static const gemini__tile_fn *gemini__select_tile(void)
{
    static const gemini__tile_fn none[GEMINI_TYPE_COUNT] = {NULL, NULL, NULL, NULL, NULL};
#ifdef GEMINI__HAVE_AVX512
#ifdef GEMINI__HAVE_AMX
    if (gemini__cpu_level() == GEMINI__CPU_AMX) return gemini__tile_amx;
#endif
    if (gemini__cpu_level() == GEMINI__CPU_AVX512VNNI) return gemini__tile_avx512vnni;
#endif
#ifdef GEMINI__HAVE_AVX2
    if (gemini__cpu_level() >= GEMINI__CPU_AVX2) return gemini__tile_avx2;
#endif
    return none;
}

static void gemini__geglu(float *gate, const float *up, int64_t n);
static float gemini__exp_sum(float *row, int64_t n, float max);
static float gemini__softmax(float *row, int64_t n);

/* The softmax exponentials for this CPU: a vector e^x where there is one (libm's expf was
   5 ns a value, a fifth of prefill's attention on a Zen 4). */
static gemini__exp_sum_fn gemini__select_exp_sum(void)
{
#ifdef GEMINI__HAVE_AVX512
    if (gemini__cpu_level() >= GEMINI__CPU_AVX512) return gemini__exp_sum_avx512;
#endif
#ifdef GEMINI__HAVE_AVX2
    if (gemini__cpu_level() >= GEMINI__CPU_AVX2) return gemini__exp_sum_avx2;
#endif
    return gemini__exp_sum;
}

/* The softmax of this CPU's level (the exponentials of gemini__select_exp_sum; the maximum and
   the division in vectors too: they were 2.5 of the 3.7 us a decode layer's softmax took at
   512 keys on a Zen 4). */
static gemini__softmax_fn gemini__select_softmax(void)
{
    gemini__exp_sum_fn exp_sum = gemini__select_exp_sum();
#ifdef GEMINI__HAVE_AVX512
    if (exp_sum == gemini__exp_sum_avx512) return gemini__softmax_avx512;
#endif
#ifdef GEMINI__HAVE_AVX2
    if (exp_sum == gemini__exp_sum_avx2) return gemini__softmax_avx2;
#endif
    (void)exp_sum;
    return gemini__softmax;
}

/* The GeGLU / tanh-GELU for this CPU. */
static gemini__geglu_fn gemini__select_geglu(void)
{
#ifdef GEMINI__HAVE_AVX512
    if (gemini__cpu_level() >= GEMINI__CPU_AVX512) return gemini__geglu_avx512;
#endif
#ifdef GEMINI__HAVE_AVX2
    if (gemini__cpu_level() >= GEMINI__CPU_AVX2) return gemini__geglu_avx2;
#endif
    return gemini__geglu;
}

/* The activation quantiser for this CPU. */
static gemini__quantize_fn gemini__select_quantize(void)
{
#ifdef GEMINI__HAVE_AVX512
    if (gemini__cpu_level() >= GEMINI__CPU_AVX512) return gemini__quantize_q8_0_avx512;
#endif
#ifdef GEMINI__HAVE_AVX2
    if (gemini__cpu_level() >= GEMINI__CPU_AVX2) return gemini__quantize_q8_0_avx2;
#endif
    return gemini__quantize_q8_0;
}

/* The register-blocked attention values of this CPU's level by KV type (f32, f16, bf16; the
   FMAs of its axpy and f16/bf16 axpy kernels in their order, see GEMINI__WEIGHTED_SUMS), or
   NULL where the level has none. */
static const gemini__weighted_sum_fn *gemini__select_weighted_sums(void)
{
    int level = gemini__cpu_level();
    (void)level;
#ifdef GEMINI__HAVE_AVX512
    if (level >= GEMINI__CPU_AVX512) return gemini__weighted_sums_avx512;
#endif
#ifdef GEMINI__HAVE_AVX2
    if (level >= GEMINI__CPU_AVX2) return gemini__weighted_sums_avx2;
#endif
#ifdef GEMINI__HAVE_NEON
    if (level >= GEMINI__CPU_NEON) return gemini__weighted_sums_neon;
#endif
    return NULL;
}

/* The f16/bf16 axpy kernels for this CPU (the same levels as gemini__select_kernels). */
static const gemini__axpy_half_fn *gemini__select_axpy_half(void)
{
    int level = gemini__cpu_level();
    (void)level;
#ifdef GEMINI__HAVE_AVX512
    if (level >= GEMINI__CPU_AVX512) return gemini__axpy16_avx512;
#endif
#ifdef GEMINI__HAVE_AVX2
    if (level >= GEMINI__CPU_AVX2) return gemini__axpy16_avx2;
#endif
#ifdef GEMINI__HAVE_NEON
    if (level >= GEMINI__CPU_NEON) return gemini__axpy16_neon;
#endif
    return gemini__axpy16_scalar;
}

/* The name of a kernel table, for the log. */
static const char *gemini__kernels_name(const gemini__dot_fn *dot)
{
#ifdef GEMINI__HAVE_AVX512
#ifdef GEMINI__HAVE_AMX
    if (dot == gemini__dot_amx) return "amx-int8 + avx512 vnni";
#endif
    if (dot == gemini__dot_avx512vnni) return "avx512 vnni";
    if (dot == gemini__dot_avx512) return "avx512";
#endif
#ifdef GEMINI__HAVE_AVX2
    if (dot == gemini__dot_avx2) return "avx2";
#endif
#ifdef GEMINI__HAVE_NEON_DOTPROD
    if (dot == gemini__dot_neon_dotprod) return "neon dotprod";
#endif
#ifdef GEMINI__HAVE_NEON
    if (dot == gemini__dot_neon) return "neon";
#endif
    (void)dot;
    return "scalar";
}

/* n floats into one row of dst in type f32, f16 or bf16 (rounded to nearest, ties to even). */
static void gemini__store_row(gemini_type type, const float *src, uint8_t *dst, int64_t n)
{
    int64_t i;
    if (type == GEMINI_TYPE_F16)
        for (i = 0; i < n; i++) gemini__write_u16(dst + 2 * i, gemini_f32_to_f16(src[i]));
    else if (type == GEMINI_TYPE_BF16)
        for (i = 0; i < n; i++) gemini__write_u16(dst + 2 * i, gemini_f32_to_bf16(src[i]));
    else
        memcpy(dst, src, (size_t)n * sizeof(float));
}

/* ---- Context --------------------------------------------------------------------------------- */

/* Activations of a block for n rows (tokens or audio frames). */
typedef struct gemini__acts {
    float *x;                       /* (n, d) residual stream */
    float *xn;                      /* (n, d) normed input of a sub-block */
    float *q;                       /* (n, H*D) */
    float *k;                       /* (n, Hkv*D) */
    float *v;                       /* (n, Hkv*D) */
    float *attn;                    /* (n, H*D) attention output */
    float *proj;                    /* (n, d) output of a sub-block */
    float *gate;                    /* (n, F) */
    float *up;                      /* (n, F) */
} gemini__acts;

/* Tokens [begin, end) of a gemini_decode_prefix call that attend to each other in both
   directions. widen: a token also sees the span's keys behind its sliding window (PaliGemma's
   prefix); else the window still bounds it from below (a Gemma 3 image). */
typedef struct gemini__span {
    int32_t begin, end;
    int widen;
} gemini__span;

typedef struct gemini__backend_slot {
    void *handle;                   /* from take_tensor */
    int offered;
    int owned;                      /* take_tensor accepted it */
} gemini__backend_slot;

struct gemini_context {
    const gemini_model *model;
    gemini_log_callback log_callback;
    void *log_user_data;
    const gemini__dot_fn *dot;      /* [GEMINI_TYPE_COUNT] kernels for this CPU */
    const gemini__dot2x2_fn *dot2x2; /* [GEMINI_TYPE_COUNT] 2 rows x 2 tokens, or NULL */
    const gemini__tile_fn *tile;    /* [GEMINI_TYPE_COUNT] many rows x many tokens, or NULL */
    gemini__quantize_fn quantize;   /* activations to q8_0 */
    uint8_t *tile_scratch;          /* (threads, tile_scratch_bytes), 64-byte aligned */
    int64_t tile_scratch_bytes;
    gemini__geglu_fn geglu;
    gemini__softmax_fn softmax;     /* attention weights from scores */
    gemini__axpy_fn axpy;
    gemini__pool pool;
    int32_t n_ctx;
    int32_t n_batch;
    int32_t position;               /* tokens in the cache */

    /* KV cache: post-RoPE keys and values in kv_type; slot of position p is p % capacity */
    gemini_type kv_type;            /* f32, f16 or bf16 */
    const gemini__axpy_half_fn *axpy_half; /* [GEMINI_TYPE_COUNT] f16/bf16 values, this CPU */
    const gemini__weighted_sum_fn *weighted_sums; /* [GEMINI_TYPE_COUNT] or NULL, this CPU */
    int64_t kv_row_bytes;           /* one position of one layer: Hkv*D values of kv_type */
    uint8_t **k_cache;              /* (L) -> (capacity, Hkv*D) */
    uint8_t **v_cache;              /* (L) -> (capacity, Hkv*D) */
    int32_t *capacity;              /* (L) n_ctx; local layers min(n_ctx, W + n_batch - 1) */

    /* activations of one batch of B <= n_batch tokens */
    gemini__acts a;
    float *x_scales;                /* its block scales as floats (GEMINI__X_SCALE) */
    uint8_t *x_q8;                  /* (max_rows, max_in / 32 * 34) q8_0 copy of a matmul
                                       input; max_rows = max(B, encoder rows) */
    float *scores;                  /* (threads, score_rows, scores_stride) attention weights */
    int64_t scores_stride;          /* max(n_ctx, audio_ctx) */
    int64_t score_rows;             /* query heads per key-value head (attended together) */

    /* Whisper: the encoder's activations and output, and the cross-attention keys and values
       of every decoder layer computed from it */
    gemini__acts enc;               /* (audio_ctx rows) */
    float *enc_conv;                /* (2 * audio_ctx, d) output of the first convolution */
    float *enc_columns;             /* im2col rows of a convolution's input */
    float *enc_out;                 /* (audio_ctx, d) */
    uint8_t **cross_k, **cross_v;   /* (L) -> (audio_ctx, d) values of kv_type */
    int64_t cross_row_bytes;        /* d values of kv_type */
    int has_audio;                  /* gemini_encode_mel succeeded */
    const gemini_context *audio_from; /* gemini_context_share_audio: the context whose
                                         encoded audio this one attends to; NULL: its own */

    /* PaliGemma and Gemma 3: the vision tower's activations and the encoded images */
    gemini__acts vis;               /* (image_patches rows) */
    float *vis_columns;             /* (image_patches, 3 * P * P) the patches as rows */
    float *vis_out;                 /* (image_patches, Dv) after the final LayerNorm */
    float *image_embd;              /* (n_images, image_tokens, d) projected rows per slot */
    uint8_t *image_ready;           /* (n_images) 1: the slot holds an encoded image */
    int32_t n_images;
    int32_t last_image;             /* slot of the last successful encode; -1: none */

    /* Encoders' attention as matrix products (gemini__attend_blocked): the scores of a block
       of queries against every key, and one head's values transposed */
    float *block_scores;            /* (GEMINI__QUERY_BLOCK, block_keys) */
    float *block_values;            /* (head_dim, block_keys) */
    int32_t image_next;             /* image row the next placeholder takes; -1: none (text) */

    /* the bidirectional spans (prefix, Gemma 3 images) of the gemini_decode_prefix call being
       decoded, and what they make visible to each token of the current step */
    gemini__span *spans;            /* (n_images + 1) */
    int32_t n_spans;
    int32_t *span_first, *span_last; /* (n_batch) key positions a token's spans add to its
                                        causal window: [span_first, span_last] (none: its own) */
    int step_has_span;              /* some token of the current step is in a span */
    gemini_context *const *step_owners; /* (B) the context whose sequence each row of the
                                           current step extends, at that context's position
                                           (gemini_decode_each); NULL: all rows are this one's,
                                           at consecutive positions */
    float *inv_freq_global;         /* (D/2) */
    float *inv_freq_local;          /* (D/2) */
    float *cos_global, *sin_global; /* (B, D/2) */
    float *cos_local, *sin_local;   /* (B, D/2) */

    /* GEMINI_USE_BLAS: f32 rows of an f16/bf16 weight matrix, converted for cblas_sgemm */
    float *blas_rows;               /* (GEMINI__BLAS_ROWS, blas_cols) or NULL */
    int64_t blas_cols;              /* the widest matmul input */
    int64_t blas_products;          /* products cblas_sgemm computed (tests read it) */

    /* offload hook: a copy of params.backend, and per tensor whether it took it */
    int has_backend;
    gemini_backend backend;
    gemini__backend_slot *slots;    /* (n_tensors) by index in model->tensors, or NULL */
};

GEMINI_API gemini_context_params gemini_context_default_params(void)
{
    gemini_context_params params;
    memset(&params, 0, sizeof params);
    params.n_ctx = 4096;
    params.n_batch = 256;
    params.n_threads = gemini__physical_cores();
    params.seed = 0x5eed;
    params.n_images = 1;
    params.log_callback = gemini__default_log;
    params.log_user_data = gemini__default_log_user_data;
    return params;
}

/* Sizes of a context's buffers, from the model and the (checked) parameters. */
typedef struct gemini__context_sizes {
    int64_t d, q_dim, kv_dim, f;
    int64_t batch_rows;             /* n_batch */
    int64_t enc_rows;               /* audio_ctx (Whisper), else 0 */
    int64_t enc_f;                  /* encoder MLP width */
    int64_t enc_columns;            /* floats of the im2col buffer */
    int64_t q8_rows, q8_cols;       /* the q8_0 input copy: rows x columns */
    int64_t scores_stride, score_rows;
    int64_t vis_rows, vis_d, vis_f; /* vision: image_patches, Dv, vision MLP width */
    int64_t image_rows;             /* vision: n_images * image_tokens */
    int64_t vis_columns;            /* 3 * P * P */
    int64_t block_keys, block_width; /* an encoder's rows and widest head (0: no encoder) */
} gemini__context_sizes;

static void gemini__context_sizes_of(const gemini_model *model,
                                     const gemini_context_params *params,
                                     gemini__context_sizes *z)
{
    const gemini_model_hparams *hp = &model->hparams;
    int64_t conv1_columns, conv2_columns;
    memset(z, 0, sizeof *z);
    z->d = hp->hidden_size;
    z->q_dim = (int64_t)hp->num_heads * hp->head_dim;
    z->kv_dim = (int64_t)hp->num_kv_heads * hp->head_dim;
    z->f = hp->intermediate_size;
    z->batch_rows = params->n_batch;
    z->q8_rows = params->n_batch;
    z->q8_cols = z->d > z->q_dim ? z->d : z->q_dim;
    if (z->f > z->q8_cols) z->q8_cols = z->f;
    z->scores_stride = params->n_ctx;
    z->score_rows = hp->num_kv_heads > 0 && hp->num_heads % hp->num_kv_heads == 0
                        ? hp->num_heads / hp->num_kv_heads
                        : 1;
    /* a key-value head a query head: rows for all heads of a token (the wide items of
       gemini__attend) */
    if (hp->num_kv_heads == hp->num_heads) z->score_rows = hp->num_heads;
    if (hp->is_encoder_decoder) {
        z->enc_rows = hp->audio_ctx;
        z->enc_f = hp->encoder_ffn;
        conv1_columns = 2 * z->enc_rows * 3 * (int64_t)hp->n_mels;
        conv2_columns = z->enc_rows * 3 * z->d;
        z->enc_columns = conv1_columns > conv2_columns ? conv1_columns : conv2_columns;
        if (2 * z->enc_rows > z->q8_rows) z->q8_rows = 2 * z->enc_rows;
        if (3 * z->d > z->q8_cols) z->q8_cols = 3 * z->d;
        if (3 * (int64_t)hp->n_mels > z->q8_cols) z->q8_cols = 3 * (int64_t)hp->n_mels;
        if (z->enc_f > z->q8_cols) z->q8_cols = z->enc_f;
        if (z->enc_rows > z->scores_stride) z->scores_stride = z->enc_rows;
    }
    if (hp->has_vision) {
        z->vis_rows = hp->image_patches;
        z->image_rows = (int64_t)params->n_images * hp->image_tokens;
        z->vis_d = hp->vision_hidden;
        z->vis_f = hp->vision_ffn;
        z->vis_columns = 3 * (int64_t)hp->patch_size * hp->patch_size;
        if (z->vis_rows > z->q8_rows) z->q8_rows = z->vis_rows;
        if (z->vis_columns > z->q8_cols) z->q8_cols = z->vis_columns;
        if (z->vis_d > z->q8_cols) z->q8_cols = z->vis_d;
        if (z->vis_f > z->q8_cols) z->q8_cols = z->vis_f;
        if (z->vis_rows > z->scores_stride) z->scores_stride = z->vis_rows;
    }
    z->block_keys = z->enc_rows > z->vis_rows ? z->enc_rows : z->vis_rows;
    z->block_width = z->d > z->vis_d ? z->d : z->vis_d;
}

/* GEMINI_USE_BLAS (see gemini__matmul_blas): from how many tokens cblas_sgemm takes a product,
   as measured on the 2-core Zen 4 here with OpenBLAS 0.3.21 (bench/README.md). f32: OpenBLAS
   is 1.25-2.3x our kernels at 16 tokens, slower below 8. f16/bf16: the rows are converted to
   f32 per call (scalar), which OpenBLAS outruns our f16 kernels only from about 128 tokens
   (1.05-1.17x; 1.4-1.5x at 256). */
#define GEMINI__BLAS_MIN_TOKENS 16
#define GEMINI__BLAS_MIN_TOKENS_HALF 128
#define GEMINI__BLAS_ROWS 256       /* f16/bf16 weight rows converted at a time */

/* Floats of the converted-rows scratch: GEMINI__BLAS_ROWS rows of the widest matmul input (the
   q8_0 copy's columns); 0 without GEMINI_USE_BLAS. */
static int64_t gemini__blas_rows_floats(const gemini__context_sizes *z)
{
#if defined(GEMINI_USE_BLAS)
    return GEMINI__BLAS_ROWS * z->q8_cols;
#else
    (void)z;
    return 0;
#endif
}

static gemini_result gemini__acts_alloc(gemini__acts *a, int64_t rows, int64_t d, int64_t q_dim,
                                        int64_t kv_dim, int64_t f)
{
    a->x = gemini__alloc_floats(rows * d);
    a->xn = gemini__alloc_floats(rows * d);
    a->q = gemini__alloc_floats(rows * q_dim);
    a->k = gemini__alloc_floats(rows * kv_dim);
    a->v = gemini__alloc_floats(rows * kv_dim);
    a->attn = gemini__alloc_floats(rows * q_dim);
    a->proj = gemini__alloc_floats(rows * d);
    a->gate = gemini__alloc_floats(rows * f);
    a->up = gemini__alloc_floats(rows * f);
    if (!a->x || !a->xn || !a->q || !a->k || !a->v || !a->attn || !a->proj || !a->gate || !a->up)
        return GEMINI_ERR_OUT_OF_MEMORY;
    return GEMINI_OK;
}

static void gemini__acts_free(gemini__acts *a)
{
    gemini__aligned_free(a->x);
    gemini__aligned_free(a->xn);
    gemini__aligned_free(a->q);
    gemini__aligned_free(a->k);
    gemini__aligned_free(a->v);
    gemini__aligned_free(a->attn);
    gemini__aligned_free(a->proj);
    gemini__aligned_free(a->gate);
    gemini__aligned_free(a->up);
}

/* The buffers of Whisper's encoder and every decoder layer's cross-attention keys and values,
   freed (NULL again). */
static void gemini__audio_buffers_free(gemini_context *ctx)
{
    int32_t i;
    gemini__acts_free(&ctx->enc);
    gemini__aligned_free(ctx->enc_conv);
    gemini__aligned_free(ctx->enc_columns);
    gemini__aligned_free(ctx->enc_out);
    for (i = 0; ctx->cross_k != NULL && i < ctx->model->hparams.num_layers; i++)
        gemini__aligned_free(ctx->cross_k[i]);
    for (i = 0; ctx->cross_v != NULL && i < ctx->model->hparams.num_layers; i++)
        gemini__aligned_free(ctx->cross_v[i]);
    GEMINI_FREE(ctx->cross_k);
    GEMINI_FREE(ctx->cross_v);
    memset(&ctx->enc, 0, sizeof ctx->enc);
    ctx->enc_conv = ctx->enc_columns = ctx->enc_out = NULL;
    ctx->cross_k = ctx->cross_v = NULL;
}

/* Makes those buffers on the first gemini_encode_mel or gemini_context_copy_audio: a context
   that only decodes against another's audio (gemini_context_share_audio: the beams and
   samples of gemini_audio.h) never needs them, about 100 MB in whisper-base.
   GEMINI_ERR_OUT_OF_MEMORY leaves none. */
static gemini_result gemini__audio_buffers(gemini_context *ctx, const char *function)
{
    const gemini_model_hparams *hp = &ctx->model->hparams;
    size_t pointers = sizeof(uint8_t *) * (size_t)hp->num_layers;
    gemini_context_params params;
    gemini__context_sizes z;
    int32_t i;
    int ok;
    if (ctx->enc_out != NULL) return GEMINI_OK;
    memset(&params, 0, sizeof params);
    params.n_ctx = ctx->n_ctx;
    params.n_batch = ctx->n_batch;
    params.n_images = 1;
    gemini__context_sizes_of(ctx->model, &params, &z);
    ok = gemini__acts_alloc(&ctx->enc, z.enc_rows, z.d, z.d, z.d, z.enc_f) == GEMINI_OK;
    ctx->enc_conv = gemini__alloc_floats(2 * z.enc_rows * z.d);
    ctx->enc_columns = gemini__alloc_floats(z.enc_columns);
    ctx->cross_k = (uint8_t **)GEMINI_MALLOC(pointers);
    if (ctx->cross_k) memset(ctx->cross_k, 0, pointers);
    ctx->cross_v = (uint8_t **)GEMINI_MALLOC(pointers);
    if (ctx->cross_v) memset(ctx->cross_v, 0, pointers);
    ok &= ctx->enc_conv != NULL && ctx->enc_columns != NULL && ctx->cross_k != NULL &&
          ctx->cross_v != NULL;
    for (i = 0; ok && i < hp->num_layers; i++) {
        ctx->cross_k[i] = gemini__alloc_bytes(z.enc_rows * ctx->cross_row_bytes);
        ctx->cross_v[i] = gemini__alloc_bytes(z.enc_rows * ctx->cross_row_bytes);
        ok = ctx->cross_k[i] != NULL && ctx->cross_v[i] != NULL;
    }
    if (ok) ctx->enc_out = gemini__alloc_floats(z.enc_rows * z.d); /* last: the "made" mark */
    if (ctx->enc_out != NULL) return GEMINI_OK;
    gemini__audio_buffers_free(ctx);
    return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "%s: no memory for the encoder's buffers",
                        function);
}

GEMINI_API void gemini_context_free(gemini_context *ctx)
{
    int32_t i;
    if (ctx == NULL) return;
    gemini__pool_stop(&ctx->pool);
    if (ctx->has_backend && ctx->backend.release != NULL)
        ctx->backend.release(ctx->backend.user_data);
    GEMINI_FREE(ctx->slots);
    for (i = 0; ctx->k_cache != NULL && i < ctx->model->hparams.num_layers; i++)
        gemini__aligned_free(ctx->k_cache[i]);
    for (i = 0; ctx->v_cache != NULL && i < ctx->model->hparams.num_layers; i++)
        gemini__aligned_free(ctx->v_cache[i]);
    GEMINI_FREE(ctx->k_cache);
    GEMINI_FREE(ctx->v_cache);
    GEMINI_FREE(ctx->capacity);
    gemini__acts_free(&ctx->a);
    gemini__acts_free(&ctx->vis);
    gemini__aligned_free(ctx->vis_columns);
    gemini__aligned_free(ctx->vis_out);
    gemini__aligned_free(ctx->image_embd);
    GEMINI_FREE(ctx->image_ready);
    GEMINI_FREE(ctx->spans);
    GEMINI_FREE(ctx->span_first);
    GEMINI_FREE(ctx->span_last);
    gemini__audio_buffers_free(ctx);
    gemini__aligned_free(ctx->block_scores);
    gemini__aligned_free(ctx->block_values);
    gemini__aligned_free(ctx->x_q8);
    gemini__aligned_free(ctx->x_scales);
    gemini__aligned_free(ctx->tile_scratch);
    gemini__aligned_free(ctx->blas_rows);
    gemini__aligned_free(ctx->scores);
    gemini__aligned_free(ctx->inv_freq_global);
    gemini__aligned_free(ctx->inv_freq_local);
    gemini__aligned_free(ctx->cos_global);
    gemini__aligned_free(ctx->sin_global);
    gemini__aligned_free(ctx->cos_local);
    gemini__aligned_free(ctx->sin_local);
    GEMINI_FREE(ctx);
}

/* RoPE frequencies as HF computes them in f32: 1 / base^(2i/D), divided by the linear scale. */
static void gemini__rope_frequencies(float *inv_freq, int32_t head_dim, float base, float scale)
{
    int32_t i;
    for (i = 0; i < head_dim / 2; i++) {
        float exponent = (float)(2 * i) / (float)head_dim;
        inv_freq[i] = 1.0f / powf(base, exponent) / scale;
    }
}

static gemini_result gemini__check_context_params(const gemini_context_params *params)
{
    if (params->n_ctx < 1 || params->n_ctx > GEMINI__MAX_CTX)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "n_ctx %d is outside [1, %d]",
                            params->n_ctx, GEMINI__MAX_CTX);
    if (params->n_batch < 1 || params->n_batch > GEMINI__MAX_BATCH)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "n_batch %d is outside [1, %d]",
                            params->n_batch, GEMINI__MAX_BATCH);
    if (params->n_threads < 1 || params->n_threads > GEMINI__MAX_THREADS)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "n_threads %d is outside [1, %d]",
                            params->n_threads, GEMINI__MAX_THREADS);
    if (params->n_images < 1 || params->n_images > GEMINI__MAX_IMAGES)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "n_images %d is outside [1, %d]",
                            params->n_images, GEMINI__MAX_IMAGES);
    if (params->kv_type != GEMINI_TYPE_F32 && params->kv_type != GEMINI_TYPE_F16 &&
        params->kv_type != GEMINI_TYPE_BF16)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "kv_type %d (%s) is not f32, f16 or "
                            "bf16", (int)params->kv_type,
                            gemini_type_name(params->kv_type) != NULL
                                ? gemini_type_name(params->kv_type) : "unknown");
    return GEMINI_OK;
}

/* KV slots of layer i: all n_ctx positions, or a ring of W + n_batch - 1 on local layers (a
   batch writes its keys before its first query reads the oldest one it needs). */
static int64_t gemini__layer_capacity(const gemini_model *model, int32_t layer,
                                      const gemini_context_params *params)
{
    int64_t capacity = params->n_ctx;
    int64_t ring = (int64_t)model->hparams.sliding_window + params->n_batch - 1;
    if (model->layers[layer].is_local && ring < capacity) capacity = ring;
    return capacity;
}

/* The parameters a context really uses: a model with learned positions (Whisper) has no
   positions beyond max_position, so n_ctx is capped there; a model with a vision tower needs
   an image prompt (image rows and some text) in one step, so n_batch is raised to
   image_tokens + 64. */
static gemini_context_params gemini__effective_params(const gemini_model *model,
                                                      const gemini_context_params *params_in)
{
    gemini_context_params params = params_in != NULL ? *params_in
                                                     : gemini_context_default_params();
    if (model->hparams.is_encoder_decoder && params.n_ctx > model->hparams.max_position)
        params.n_ctx = model->hparams.max_position;
    if (model->hparams.has_vision && params.n_batch < model->hparams.image_tokens + 64)
        params.n_batch = model->hparams.image_tokens + 64;
    return params;
}

GEMINI_API gemini_result gemini_context_memory_size(const gemini_model *model,
                                                    const gemini_context_params *params_in,
                                                    uint64_t *bytes)
{
    gemini_context_params params;
    const gemini_model_hparams *hp;
    gemini__context_sizes z;
    int64_t B, total = 0;
    gemini_result result;
    int32_t i;
    if (model == NULL || bytes == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_context_memory_size: NULL");
    if (params_in != NULL && (result = gemini__check_context_params(params_in)) != GEMINI_OK)
        return result;
    params = gemini__effective_params(model, params_in);
    hp = &model->hparams;
    gemini__context_sizes_of(model, &params, &z);
    B = z.batch_rows;

    /* KV cache, activations, q8_0 input copy, per-thread scores, RoPE tables */
    for (i = 0; i < hp->num_layers; i++)
        total += 2 * gemini__layer_capacity(model, i, &params) *
                 gemini_type_row_bytes(params.kv_type, z.kv_dim);
    total += B * (3 * z.d + 2 * z.q_dim + 2 * z.kv_dim + 2 * z.f) * 4;
    total += z.q8_rows * (z.q8_cols / GEMINI__QK + 1) * GEMINI__Q8_0_BYTES;
    total += GEMINI__X_SCALES_BYTES(z.q8_rows, z.q8_cols) + 64;
    total += gemini__blas_rows_floats(&z) * 4;
    total += (int64_t)params.n_threads * z.score_rows * z.scores_stride * 4;
    total += (int64_t)params.n_threads * GEMINI__TILE_SCRATCH(z.q8_cols) + 64;
    total += (4 * B + 2) * (hp->head_dim / 2) * 4;

    /* Whisper: encoder activations, convolution buffers, output, cross keys and values */
    if (hp->is_encoder_decoder) {
        total += z.enc_rows * (7 * z.d + 2 * z.enc_f) * 4;
        total += (2 * z.enc_rows * z.d + z.enc_columns + z.enc_rows * z.d) * 4;
        total += 2 * (int64_t)hp->num_layers * z.enc_rows *
                 gemini_type_row_bytes(params.kv_type, z.d);
    }

    /* bidirectional spans of a call and per token of a step */
    total += (hp->has_vision ? params.n_images + 1 : 1) * (int64_t)sizeof(gemini__span);
    total += 2 * B * 4;

    /* vision: the tower's activations, patch rows and output; the image slots */
    if (hp->has_vision) {
        total += z.vis_rows * (7 * z.vis_d + 2 * z.vis_f) * 4;
        total += z.vis_rows * (z.vis_columns + z.vis_d) * 4;
        total += z.image_rows * z.d * 4 + params.n_images;
    }
    total += (GEMINI__QUERY_BLOCK + z.block_width) * z.block_keys * 4;
    if (params.backend != NULL)
        total += model->n_tensors * (int64_t)sizeof(gemini__backend_slot);
    *bytes = (uint64_t)total;
    return GEMINI_OK;
}

/* Offers one weight matrix to the backend (once, even where two roles share it). */
static void gemini__backend_offer(gemini_context *ctx, const gemini__tensor *w, int *n_offered,
                                  int *n_taken)
{
    gemini__backend_slot *slot;
    gemini_backend_tensor info;
    char name[GEMINI__MAX_NAME + 1];
    size_t length;
    if (w == NULL) return;
    slot = &ctx->slots[w - ctx->model->tensors];
    if (slot->offered) return;
    slot->offered = 1;
    length = w->name_length < GEMINI__MAX_NAME ? w->name_length : GEMINI__MAX_NAME;
    memcpy(name, w->name, length);
    name[length] = '\0';
    info.name = name;
    info.type = (gemini_type)w->type;
    info.rows = w->dims[0];
    info.cols = w->dims[1];
    info.row_bytes = gemini_type_row_bytes(info.type, info.cols);
    info.data = w->data;
    slot->handle = NULL;
    slot->owned = ctx->backend.take_tensor(ctx->backend.user_data, &info, &slot->handle) != 0;
    *n_offered += 1;
    *n_taken += slot->owned;
}

/* Offers the matrices of one block in the documented order (absent ones are skipped). */
static void gemini__backend_offer_layer(gemini_context *ctx, const gemini__layer *layer,
                                        int *n_offered, int *n_taken)
{
    gemini__backend_offer(ctx, layer->attn_q, n_offered, n_taken);
    gemini__backend_offer(ctx, layer->attn_k, n_offered, n_taken);
    gemini__backend_offer(ctx, layer->attn_v, n_offered, n_taken);
    gemini__backend_offer(ctx, layer->attn_out, n_offered, n_taken);
    gemini__backend_offer(ctx, layer->cross_q, n_offered, n_taken);
    gemini__backend_offer(ctx, layer->cross_k, n_offered, n_taken);
    gemini__backend_offer(ctx, layer->cross_v, n_offered, n_taken);
    gemini__backend_offer(ctx, layer->cross_out, n_offered, n_taken);
    gemini__backend_offer(ctx, layer->ffn_gate, n_offered, n_taken);
    gemini__backend_offer(ctx, layer->ffn_up, n_offered, n_taken);
    gemini__backend_offer(ctx, layer->ffn_down, n_offered, n_taken);
}

/* Offers every weight matrix to the backend, in the documented order. 0 on no memory. */
static int gemini__backend_take(gemini_context *ctx)
{
    const gemini_model *model = ctx->model;
    int n_taken = 0, n_offered = 0;
    int32_t i;
    ctx->slots = (gemini__backend_slot *)GEMINI_MALLOC(sizeof(gemini__backend_slot) *
                                                       (size_t)model->n_tensors);
    if (ctx->slots == NULL) return 0;
    memset(ctx->slots, 0, sizeof(gemini__backend_slot) * (size_t)model->n_tensors);
    if (ctx->backend.take_tensor != NULL) {
        for (i = 0; i < model->hparams.num_layers; i++)
            gemini__backend_offer_layer(ctx, &model->layers[i], &n_offered, &n_taken);
        gemini__backend_offer(ctx, model->output, &n_offered, &n_taken);
        gemini__backend_offer(ctx, model->enc_conv1, &n_offered, &n_taken);
        gemini__backend_offer(ctx, model->enc_conv2, &n_offered, &n_taken);
        for (i = 0; i < model->hparams.encoder_layers; i++)
            gemini__backend_offer_layer(ctx, &model->enc_layers[i], &n_offered, &n_taken);
    }
    gemini__log(ctx->log_callback, ctx->log_user_data, GEMINI_LOG_INFO,
                "backend %s took %d of %d weight matrices%s",
                ctx->backend.name != NULL ? ctx->backend.name : "(unnamed)", n_taken,
                n_offered, ctx->backend.attention != NULL ? ", and offers attention" : "");
    return 1;
}

/* Before a context exists, a failed gemini_context_create still releases the backend. */
static void gemini__backend_release_params(const gemini_context_params *params)
{
    if (params != NULL && params->backend != NULL && params->backend->release != NULL)
        params->backend->release(params->backend->user_data);
}

GEMINI_API gemini_result gemini_context_create(const gemini_model *model,
                                               const gemini_context_params *params_in,
                                               gemini_context **out)
{
    gemini_context_params params;
    const gemini_model_hparams *hp;
    gemini__context_sizes z;
    gemini_context *ctx;
    int64_t B, half;
    int32_t i, n_threads;
    gemini_result result;

    if (out != NULL) *out = NULL;
    if (model == NULL || out == NULL) {
        gemini__backend_release_params(params_in);
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_context_create: NULL argument");
    }
    params = params_in != NULL ? *params_in : gemini_context_default_params();
    hp = &model->hparams;
    if ((result = gemini__check_context_params(&params)) != GEMINI_OK) {
        gemini__backend_release_params(&params);
        return result;
    }
    if (hp->is_encoder_decoder && params.n_ctx > hp->max_position)
        gemini__log(params.log_callback, params.log_user_data, GEMINI_LOG_INFO,
                    "n_ctx %d capped at the model's %d learned positions", params.n_ctx,
                    hp->max_position);
    if (hp->has_vision && params.n_batch < hp->image_tokens + 64)
        gemini__log(params.log_callback, params.log_user_data, GEMINI_LOG_INFO,
                    "n_batch %d raised to %d: an image prompt is decoded in one step",
                    params.n_batch, hp->image_tokens + 64);
    params = gemini__effective_params(model, &params);
    gemini__context_sizes_of(model, &params, &z);

    ctx = (gemini_context *)GEMINI_MALLOC(sizeof(gemini_context));
    if (ctx == NULL) {
        gemini__backend_release_params(&params);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory for a context");
    }
    memset(ctx, 0, sizeof *ctx);
    ctx->model = model;
    if (params.backend != NULL) { /* from here on gemini_context_free releases it */
        ctx->has_backend = 1;
        ctx->backend = *params.backend;
    }
    ctx->log_callback = params.log_callback;
    ctx->log_user_data = params.log_user_data;
    ctx->dot = gemini__select_kernels(&ctx->axpy, &ctx->dot2x2);
    ctx->tile = gemini__select_tile();
    ctx->quantize = gemini__select_quantize();
    ctx->geglu = gemini__select_geglu();
    ctx->softmax = gemini__select_softmax();
    ctx->axpy_half = gemini__select_axpy_half();
    ctx->weighted_sums = gemini__select_weighted_sums();
    ctx->kv_type = params.kv_type;
    ctx->kv_row_bytes = gemini_type_row_bytes(params.kv_type, z.kv_dim);
    ctx->cross_row_bytes = gemini_type_row_bytes(params.kv_type, z.d);
    ctx->n_ctx = params.n_ctx;
    ctx->n_batch = params.n_batch;
    ctx->pool.n_threads = 1;
    ctx->image_next = -1;
    ctx->last_image = -1;
    ctx->n_images = hp->has_vision ? params.n_images : 0;
    B = z.batch_rows;
    half = hp->head_dim / 2;

    /* KV cache: the per-layer pointer arrays are zeroed as soon as they exist, so that the
       error path (gemini_context_free) never frees a pointer that was not set */
    ctx->k_cache = (uint8_t **)GEMINI_MALLOC(sizeof(uint8_t *) * (size_t)hp->num_layers);
    if (ctx->k_cache) memset(ctx->k_cache, 0, sizeof(uint8_t *) * (size_t)hp->num_layers);
    ctx->v_cache = (uint8_t **)GEMINI_MALLOC(sizeof(uint8_t *) * (size_t)hp->num_layers);
    if (ctx->v_cache) memset(ctx->v_cache, 0, sizeof(uint8_t *) * (size_t)hp->num_layers);
    ctx->capacity = (int32_t *)GEMINI_MALLOC(sizeof(int32_t) * (size_t)hp->num_layers);
    if (!ctx->k_cache || !ctx->v_cache || !ctx->capacity) goto out_of_memory;
    for (i = 0; i < hp->num_layers; i++) {
        int64_t capacity = gemini__layer_capacity(model, i, &params);
        ctx->capacity[i] = (int32_t)capacity;
        ctx->k_cache[i] = gemini__alloc_bytes(capacity * ctx->kv_row_bytes);
        ctx->v_cache[i] = gemini__alloc_bytes(capacity * ctx->kv_row_bytes);
        if (!ctx->k_cache[i] || !ctx->v_cache[i]) goto out_of_memory;
    }

    /* Scratch for one batch */
    if (gemini__acts_alloc(&ctx->a, B, z.d, z.q_dim, z.kv_dim, z.f) != GEMINI_OK)
        goto out_of_memory;
    ctx->x_q8 = (uint8_t *)gemini__aligned_malloc((size_t)(z.q8_rows *
                                                           (z.q8_cols / GEMINI__QK + 1) *
                                                           GEMINI__Q8_0_BYTES));
    ctx->x_scales = (float *)gemini__aligned_malloc(
        (size_t)GEMINI__X_SCALES_BYTES(z.q8_rows, z.q8_cols));
    ctx->inv_freq_global = gemini__alloc_floats(half);
    ctx->inv_freq_local = gemini__alloc_floats(half);
    ctx->cos_global = gemini__alloc_floats(B * half);
    ctx->sin_global = gemini__alloc_floats(B * half);
    ctx->cos_local = gemini__alloc_floats(B * half);
    ctx->sin_local = gemini__alloc_floats(B * half);
    if (gemini__blas_rows_floats(&z) > 0) {
        ctx->blas_rows = gemini__alloc_floats(gemini__blas_rows_floats(&z));
        ctx->blas_cols = z.q8_cols;
        if (ctx->blas_rows == NULL) goto out_of_memory;
    }
    if (!ctx->x_q8 || !ctx->x_scales || !ctx->inv_freq_global || !ctx->inv_freq_local ||
        !ctx->cos_global || !ctx->sin_global || !ctx->cos_local || !ctx->sin_local)
        goto out_of_memory;
    gemini__rope_frequencies(ctx->inv_freq_global, hp->head_dim, hp->rope_theta, hp->rope_scale);
    gemini__rope_frequencies(ctx->inv_freq_local, hp->head_dim, hp->rope_theta_local, 1.0f);

    /* Whisper's encoder buffers and cross keys and values: gemini__audio_buffers, when
       first needed */

    /* Bidirectional spans: the prefix and one per image slot */
    ctx->spans = (gemini__span *)GEMINI_MALLOC(sizeof(gemini__span) *
                                               (size_t)(ctx->n_images + 1));
    ctx->span_first = (int32_t *)GEMINI_MALLOC(sizeof(int32_t) * (size_t)B);
    ctx->span_last = (int32_t *)GEMINI_MALLOC(sizeof(int32_t) * (size_t)B);
    if (!ctx->spans || !ctx->span_first || !ctx->span_last) goto out_of_memory;

    /* Vision: the tower's buffers and the image slots */
    if (hp->has_vision) {
        if (gemini__acts_alloc(&ctx->vis, z.vis_rows, z.vis_d, z.vis_d, z.vis_d, z.vis_f) !=
            GEMINI_OK)
            goto out_of_memory;
        ctx->vis_columns = gemini__alloc_floats(z.vis_rows * z.vis_columns);
        ctx->vis_out = gemini__alloc_floats(z.vis_rows * z.vis_d);
        ctx->image_embd = gemini__alloc_floats(z.image_rows * z.d);
        ctx->image_ready = (uint8_t *)GEMINI_MALLOC((size_t)ctx->n_images);
        if (!ctx->vis_columns || !ctx->vis_out || !ctx->image_embd || !ctx->image_ready)
            goto out_of_memory;
        memset(ctx->image_ready, 0, (size_t)ctx->n_images);
    }

    /* encoders' blocked attention */
    if (z.block_keys > 0) {
        ctx->block_scores = gemini__alloc_floats(GEMINI__QUERY_BLOCK * z.block_keys);
        ctx->block_values = gemini__alloc_floats(z.block_width * z.block_keys);
        if (!ctx->block_scores || !ctx->block_values) goto out_of_memory;
    }

    /* Threads, at most one a usable CPU, then one attention-weights row per thread */
    n_threads = params.n_threads;
    if (n_threads > 1 && !gemini__threads_past_cpus) {
        int32_t usable = gemini__usable_cpus(NULL); /* read once: the affinity may change */
        if (n_threads > usable) {
            n_threads = usable;
            gemini__log(ctx->log_callback, ctx->log_user_data, GEMINI_LOG_INFO,
                        "%d threads asked for, %d usable CPUs: starting %d (more would take "
                        "turns on the CPUs and wait on each other)", params.n_threads, usable,
                        usable);
        }
    }
    if (gemini__pool_start(&ctx->pool, n_threads) < n_threads)
        gemini__log(ctx->log_callback, ctx->log_user_data, GEMINI_LOG_WARN,
                    "started %d of %d threads", ctx->pool.n_threads, n_threads);
    n_threads = ctx->pool.n_threads;
    ctx->scores_stride = z.scores_stride;
    ctx->score_rows = z.score_rows;
    ctx->scores = gemini__alloc_floats((int64_t)n_threads * z.score_rows * z.scores_stride);
    if (ctx->scores == NULL) goto out_of_memory;
    ctx->tile_scratch_bytes = GEMINI__TILE_SCRATCH(z.q8_cols);
    ctx->tile_scratch = (uint8_t *)gemini__aligned_malloc((size_t)(n_threads *
                                                                   ctx->tile_scratch_bytes));
    if (ctx->tile_scratch == NULL) goto out_of_memory;

    /* The backend takes the weight matrices it wants, last: nothing can fail after it */
    if (ctx->has_backend && !gemini__backend_take(ctx)) goto out_of_memory;

    if (params.n_ctx > hp->max_position)
        gemini__log(ctx->log_callback, ctx->log_user_data, GEMINI_LOG_WARN,
                    "n_ctx %d exceeds the trained context of %d positions", params.n_ctx,
                    hp->max_position);
    gemini__log(ctx->log_callback, ctx->log_user_data, GEMINI_LOG_INFO,
                "context: n_ctx %d, n_batch %d, threads %d, kernels %s, %s KV cache",
                params.n_ctx, params.n_batch, n_threads, gemini__kernels_name(ctx->dot),
                gemini_type_name(ctx->kv_type));
    *out = ctx;
    return GEMINI_OK;

out_of_memory:
    gemini_context_free(ctx);
    return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory for a context of %d positions",
                        params.n_ctx);
}

GEMINI_API void gemini_context_reset(gemini_context *ctx)
{
    if (ctx != NULL) ctx->position = 0;
}

GEMINI_API int32_t gemini_context_position(const gemini_context *ctx)
{
    return ctx != NULL ? ctx->position : 0;
}

GEMINI_API int32_t gemini_context_size(const gemini_context *ctx)
{
    return ctx != NULL ? ctx->n_ctx : 0;
}

GEMINI_API int32_t gemini_context_threads(const gemini_context *ctx)
{
    return ctx != NULL ? ctx->pool.n_threads : 0;
}

/* ---- Forward pass ---------------------------------------------------------------------------- */

/* y[t][r] = W[r] . x[t] for every weight row r and token t; W is (rows, cols). */
typedef struct gemini__matmul_task {
    gemini__dot_fn dot;
    gemini__dot2x2_fn dot2x2;       /* or NULL */
    gemini__tile_fn tile;           /* or NULL; used instead of dot and dot2x2 */
    int64_t tile_rows;              /* weight rows a call of tile */
    uint8_t *scratch;               /* tile: (threads, scratch_bytes) or NULL */
    int64_t scratch_bytes;
    const uint8_t *w;               /* (rows, row_bytes) */
    int64_t rows, cols, row_bytes;
    const uint8_t *x;               /* (n_tokens, x_stride bytes) */
    int64_t x_stride;
    const float *x_scales;          /* q8_0 x: its block scales (GEMINI__X_SCALE), or NULL */
    float *y;                       /* (n_tokens, y_stride floats) */
    int64_t y_stride;
    int32_t n_tokens;
    /* another matrix on the same inputs whose rows follow this one's in the split over
       threads (q, k and v; gate and up), or NULL */
    const struct gemini__matmul_task *next;
} gemini__matmul_task;

#define GEMINI__ROW_BLOCK 16  /* weight rows kept hot in cache while a tile of tokens passes */
/* Rows per call of a tile kernel: each call widens its tokens' side (activation scales, sums)
   once for all its rows, so more rows a call make that side cheaper (Zen 4, q8_0 prefill: 5%
   of the time in the side at 16 rows; 16 -> 64 rows: ~81% -> ~86% of the FMA peak) while the
   rows still fit in L2 (gemini__tile_rows takes fewer rows of wide matrices). The matmul's
   parts are multiples of it where the matrix is large enough (gemini__matmul_worker). */
#define GEMINI__TILE_ROWS 64
/* A matrix-vector product goes in one range of rows a thread, each range at least this many
   rows (gemini__matmul_worker): each range is a new stream whose first lines no prefetch
   asked for. The pool's 8 parts a thread left a decode step's block matrices at 21-30 GB/s on
   a Zen 4 (q4_0, 2 threads; 28-35 in one range a thread, 33 the roofline), and its 640-row
   matrices had gone in 40-row parts (16-row ones on 8 threads). The price: a thread that the
   OS deschedules holds up its whole range (a context runs no more threads than CPUs). */
#define GEMINI__MATVEC_PART_ROWS 64
#define GEMINI__TILE_BYTES (512 << 10) /* inputs of one tile of tokens, kept in cache while the
                                          thread's weight rows pass (the 1500-frame encoder) */

/* Weight rows per call of a tile kernel of this table for rows of row_bytes: GEMINI__TILE_ROWS
   while they take at most GEMINI__TILE_ROW_BYTES (else fewer, in steps of 16, at least 16);
   the AMX kernel works on exactly 16 rows (GEMINI__ROW_BLOCK). */
#define GEMINI__TILE_ROW_BYTES (256 << 10)

static int64_t gemini__tile_rows(const gemini__tile_fn *tile, int64_t row_bytes)
{
    int64_t rows = GEMINI__TILE_ROWS;
    if (gemini__tile_reads_scales(tile)) return GEMINI__ROW_BLOCK;
    while (rows > GEMINI__ROW_BLOCK && rows * row_bytes > GEMINI__TILE_ROW_BYTES)
        rows -= GEMINI__ROW_BLOCK;
    return rows;
}

/* Rows [begin, end) of one matrix of a matmul task, on thread thread_index. */
static void gemini__matmul_rows(const gemini__matmul_task *task, int64_t begin, int64_t end,
                                int thread_index)
{
    int64_t block, r, block_end;
    int64_t rows_per_block = task->tile != NULL && task->tile_rows > 0 ? task->tile_rows
                                                                         : GEMINI__ROW_BLOCK;
    int32_t tile, tile_end, t, tile_tokens;

    /* whole groups of 16 tokens per tile: dot2x2's token pairs and the AMX kernel's groups of
       x_scales do not depend on it */
    tile_tokens = (int32_t)(GEMINI__TILE_BYTES / task->x_stride) & ~15;
    if (tile_tokens < 16) tile_tokens = 16;
    for (tile = 0; tile < task->n_tokens; tile += tile_tokens) {
        tile_end = task->n_tokens - tile < tile_tokens ? task->n_tokens : tile + tile_tokens;
        for (block = begin; block < end; block += rows_per_block) {
            block_end = block + rows_per_block < end ? block + rows_per_block : end;
            if (task->tile != NULL) {
                task->tile(task->w + block * task->row_bytes, task->row_bytes,
                           (int)(block_end - block), task->x + tile * task->x_stride,
                           task->x_stride,
                           task->x_scales != NULL
                               ? task->x_scales +
                                     GEMINI__X_SCALE(tile, 0, task->cols / GEMINI__QK)
                               : NULL,
                           tile_end - tile, task->cols,
                           task->y + tile * task->y_stride + block, task->y_stride,
                           task->scratch != NULL
                               ? task->scratch + thread_index * task->scratch_bytes
                               : NULL,
                           task->scratch_bytes);
                continue;
            }
            for (t = tile; t < tile_end; t++) {
                const uint8_t *x = task->x + t * task->x_stride;
                float *y = task->y + t * task->y_stride;
                r = block;
                if (task->dot2x2 != NULL && t + 1 < tile_end) { /* two tokens at once */
                    for (; r + 1 < block_end; r += 2) {
                        float out[4];
                        task->dot2x2(task->w + r * task->row_bytes,
                                     task->w + (r + 1) * task->row_bytes, x, x + task->x_stride,
                                     task->cols, out);
                        y[r] = out[0];
                        y[r + task->y_stride] = out[1];
                        y[r + 1] = out[2];
                        y[r + 1 + task->y_stride] = out[3];
                    }
                    if (r < block_end) {
                        y[r] = task->dot(task->w + r * task->row_bytes, x, task->cols);
                        y[r + task->y_stride] = task->dot(task->w + r * task->row_bytes,
                                                          x + task->x_stride, task->cols);
                    }
                    t++;
                    continue;
                }
                for (; r < block_end; r++)
                    y[r] = task->dot(task->w + r * task->row_bytes, x, task->cols);
            }
        }
    }
}

/* A part of the rows of a task's matrices, counted across the chain of `next` matrices. */
static void gemini__matmul_worker(void *arg, int part, int n_parts, int thread_index)
{
    const gemini__matmul_task *task = (const gemini__matmul_task *)arg, *m;
    int64_t total = 0, first = 0, begin, end, align = GEMINI__ROW_BLOCK;
    int64_t threads = gemini__parts_threads(n_parts);
    for (m = task; m != NULL; m = m->next) total += m->rows;
    /* a matrix-vector product streams its rows once: one range a thread, or fewer ranges of
       at least GEMINI__MATVEC_PART_ROWS (the parts past those do nothing) */
    if (task->n_tokens < 4) {
        int64_t ranges = total / GEMINI__MATVEC_PART_ROWS;
        if (ranges > threads) ranges = threads;
        if (ranges < 1) ranges = 1;
        if (part >= ranges) return;
        n_parts = (int)ranges;
    }
    /* tile kernels: parts of whole calls (tile_rows) while that leaves two such parts a
       thread; smaller matrices keep the finer split */
    if (task->tile != NULL && task->tile_rows > 0 && total >= task->tile_rows * 2 * threads)
        align = task->tile_rows;
    gemini__split_aligned(total, part, n_parts, align, &begin, &end);
    for (m = task; m != NULL && first < end; first += m->rows, m = m->next) {
        int64_t b = begin > first ? begin - first : 0;
        int64_t e = end < first + m->rows ? end - first : m->rows;
        if (b < e) gemini__matmul_rows(m, b, e, thread_index);
    }
}

/* An operation on rows of floats, split over threads by row. */
enum {
    GEMINI__ROWS_QUANTIZE = 0,      /* out = q8_0(x) */
    GEMINI__ROWS_GEGLU = 1,         /* gate = gelu_tanh(gate) * up (Gemma) */
    GEMINI__ROWS_GELU = 2,          /* gate = gelu(gate), exact (Whisper) */
    GEMINI__ROWS_GELU_TANH = 3,     /* gate = gelu_tanh(gate) (SigLIP) */
    GEMINI__ROWS_SOFTMAX = 4        /* gate = softmax(gate * scale) */
};

typedef struct gemini__rows_task {
    int kind;                       /* GEMINI__ROWS_* */
    const float *x;                 /* (n_rows, x_stride) */
    int64_t x_stride;
    float *gate;                    /* (n_rows, n) */
    const float *up;                /* (n_rows, n) */
    uint8_t *out;                   /* (n_rows, out_stride bytes) */
    int64_t out_stride;
    float *scales;                  /* GEMINI__ROWS_QUANTIZE: out's block scales, or NULL */
    int64_t n;                      /* values per row */
    int32_t n_rows;
    float scale;                    /* GEMINI__ROWS_SOFTMAX */
    gemini__quantize_fn quantize;   /* GEMINI__ROWS_QUANTIZE */
    gemini__geglu_fn geglu;         /* GEMINI__ROWS_GEGLU, GEMINI__ROWS_GELU_TANH */
    gemini__softmax_fn softmax;     /* GEMINI__ROWS_SOFTMAX */
} gemini__rows_task;

static float gemini__gelu_tanh(float x)
{
    const float sqrt_2_over_pi = 0.7978845608028654f;
    return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * (x + 0.044715f * x * x * x)));
}

static void gemini__geglu(float *gate, const float *up, int64_t n)
{
    int64_t i;
    if (up == NULL)
        for (i = 0; i < n; i++) gate[i] = gemini__gelu_tanh(gate[i]);
    else
        for (i = 0; i < n; i++) gate[i] = gemini__gelu_tanh(gate[i]) * up[i];
}

/* row[i] = e^(row[i] - max), summed in order (libm's expf): the scalar level's softmax. */
static float gemini__exp_sum(float *row, int64_t n, float max)
{
    float sum = 0.0f;
    int64_t i;
    for (i = 0; i < n; i++) {
        row[i] = expf(row[i] - max);
        sum += row[i];
    }
    return sum;
}

/* row = e^(row - max) / sum, the maximum and the sum over the n values: the scalar level's
   softmax; returns the sum. */
static float gemini__softmax(float *row, int64_t n)
{
    float max_score = -INFINITY, sum;
    int64_t i;
    for (i = 0; i < n; i++)
        if (row[i] > max_score) max_score = row[i];
    sum = gemini__exp_sum(row, n, max_score);
    for (i = 0; i < n; i++) row[i] /= sum;
    return sum;
}

/* GELU with the error function, as torch's default (approximate="none"). */
static float gemini__gelu_erf(float x)
{
    const float one_over_sqrt_2 = 0.70710678118654752f;
    return 0.5f * x * (1.0f + erff(x * one_over_sqrt_2));
}

static void gemini__rows_worker(void *arg, int part, int n_parts, int thread_index)
{
    const gemini__rows_task *task = (const gemini__rows_task *)arg;
    int64_t begin, end, t, i;
    (void)thread_index;
    gemini__split(task->n_rows, part, n_parts, &begin, &end);
    for (t = begin; t < end; t++) {
        if (task->kind == GEMINI__ROWS_QUANTIZE) {
            const uint8_t *row = task->out + t * task->out_stride;
            const int64_t n_blocks = task->n / GEMINI__QK;
            task->quantize(task->x + t * task->x_stride, task->out + t * task->out_stride,
                           n_blocks);
            for (i = 0; task->scales != NULL && i < n_blocks; i++)
                task->scales[GEMINI__X_SCALE(t, i, n_blocks)] =
                    gemini_f16_to_f32(gemini__read_u16(row + i * GEMINI__Q8_0_BYTES));
        } else if (task->kind == GEMINI__ROWS_GEGLU) {
            task->geglu(task->gate + t * task->n, task->up + t * task->n, task->n);
        } else if (task->kind == GEMINI__ROWS_GELU_TANH) {
            task->geglu(task->gate + t * task->n, NULL, task->n);
        } else if (task->kind == GEMINI__ROWS_SOFTMAX) {
            float *row = task->gate + t * task->n;
            for (i = 0; i < task->n; i++) row[i] *= task->scale;
            task->softmax(row, task->n);
        } else {
            float *gate = task->gate + t * task->n;
            for (i = 0; i < task->n; i++) gate[i] = gemini__gelu_erf(gate[i]);
        }
    }
}

/* Runs a rows task on the pool when there is more than one row. */
static void gemini__run_rows(gemini_context *ctx, gemini__rows_task *rows)
{
    if (rows->n_rows > 1) gemini__pool_run(&ctx->pool, gemini__rows_worker, rows);
    else gemini__rows_worker(rows, 0, 1, 0);
}

#if defined(GEMINI_USE_BLAS)
/* Rows [0, rows) of a weight matrix of f16 or bf16 converted to f32, split over threads. */
typedef struct gemini__convert_task {
    gemini_type type;
    const uint8_t *w;               /* (rows, row_bytes) */
    int64_t rows, cols, row_bytes;
    float *out;                     /* (rows, cols) */
} gemini__convert_task;

static void gemini__convert_worker(void *arg, int part, int n_parts, int thread_index)
{
    const gemini__convert_task *task = (const gemini__convert_task *)arg;
    int64_t begin, end, r;
    (void)thread_index;
    gemini__split(task->rows, part, n_parts, &begin, &end);
    for (r = begin; r < end; r++)
        gemini__dequantize(task->type, task->w + r * task->row_bytes, task->out + r * task->cols,
                           task->cols);
}

/* y (n_tokens, y_stride) = x (n_tokens, x_stride) W^T by cblas_sgemm: W (rows, cols, row_bytes
   apart) as it is for f32, or converted GEMINI__BLAS_ROWS rows at a time for f16 and bf16.
   Returns 0 (nothing done) for other types and for fewer tokens than the thresholds, where our
   kernels are as fast. BLAS sums in its own order, so a batch no longer gives a single token's
   bits, only the same values to rounding. */
static int gemini__matmul_blas(gemini_context *ctx, gemini_type type, const uint8_t *w,
                               int64_t rows, int64_t cols, int64_t row_bytes, const float *x,
                               int64_t x_stride, int32_t n_tokens, float *y, int64_t y_stride)
{
    gemini__convert_task convert;
    int64_t first;
    if (type == GEMINI_TYPE_F32) {
        if (n_tokens < GEMINI__BLAS_MIN_TOKENS) return 0;
        ctx->blas_products++;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_tokens, (int)rows, (int)cols, 1.0f,
                    x, (int)x_stride, (const float *)(const void *)w, (int)(row_bytes / 4), 0.0f,
                    y, (int)y_stride);
        return 1;
    }
    if ((type != GEMINI_TYPE_F16 && type != GEMINI_TYPE_BF16) ||
        n_tokens < GEMINI__BLAS_MIN_TOKENS_HALF || ctx->blas_rows == NULL ||
        cols > ctx->blas_cols)
        return 0;
    ctx->blas_products++;
    convert.type = type;
    convert.cols = cols;
    convert.row_bytes = row_bytes;
    convert.out = ctx->blas_rows;
    for (first = 0; first < rows; first += GEMINI__BLAS_ROWS) {
        convert.rows = rows - first < GEMINI__BLAS_ROWS ? rows - first : GEMINI__BLAS_ROWS;
        convert.w = w + first * row_bytes;
        gemini__pool_run(&ctx->pool, gemini__convert_worker, &convert);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_tokens, (int)convert.rows,
                    (int)cols, 1.0f, x, (int)x_stride, ctx->blas_rows, (int)cols, 0.0f,
                    y + first, (int)y_stride);
    }
    return 1;
}
#endif

/* Runs a matmul task of f32 "weights" and f32 inputs (an encoder's attention) on the pool, or
   by cblas_sgemm under GEMINI_USE_BLAS. */
static void gemini__run_f32_matmul(gemini_context *ctx, gemini__matmul_task *task)
{
#if defined(GEMINI_USE_BLAS)
    if (gemini__matmul_blas(ctx, GEMINI_TYPE_F32, task->w, task->rows, task->cols,
                            task->row_bytes, (const float *)(const void *)task->x,
                            task->x_stride / (int64_t)sizeof(float), task->n_tokens, task->y,
                            task->y_stride))
        return;
#endif
    gemini__pool_run(&ctx->pool, gemini__matmul_worker, task);
}

#define GEMINI__MAX_FUSED 3 /* matrices on the same inputs in one task: q, k, v */

/* Whether a backend has taken W. */
static int gemini__backend_owns(const gemini_context *ctx, const gemini__tensor *w)
{
    return ctx->slots != NULL && ctx->slots[w - ctx->model->tensors].owned;
}

/* ys[i] (n_tokens, y_strides[i]) = x (n_tokens, x_stride) Ws[i]^T for `count` matrices on the
   same inputs, as one task split over the rows of all of them (one pool run instead of
   `count`, which is most of the saving on a decode step). Quantised weights take a q8_0 copy
   of x, made once. A matrix a backend took is computed by it unless it declines; under
   GEMINI_USE_BLAS, cblas_sgemm computes float weights' products of many tokens. Matrices of
   different types or lengths, or any a backend holds, go one by one. */
static void gemini__matmul_n(gemini_context *ctx, int count, const gemini__tensor *const *ws,
                             const float *x, int64_t x_stride, int32_t n_tokens,
                             float *const *ys, const int64_t *y_strides)
{
    gemini__matmul_task tasks[GEMINI__MAX_FUSED];
    const gemini__tensor *w = ws[0];
    int i, fusable = !gemini__backend_owns(ctx, w);
    for (i = 1; i < count; i++)
        fusable &= !gemini__backend_owns(ctx, ws[i]) && ws[i]->type == w->type &&
                   ws[i]->dims[1] == w->dims[1];
    if (count > 1 && !fusable) {
        for (i = 0; i < count; i++)
            gemini__matmul_n(ctx, 1, ws + i, x, x_stride, n_tokens, ys + i, y_strides + i);
        return;
    }
    if (count == 1 && gemini__backend_owns(ctx, w)) {
        const gemini_backend *backend = &ctx->backend;
        void *handle = ctx->slots[w - ctx->model->tensors].handle;
        if (n_tokens == 1 && backend->matvec != NULL &&
            backend->matvec(backend->user_data, handle, x, ys[0]) == GEMINI_BACKEND_DONE)
            return;
        if (n_tokens > 1 && backend->matmul != NULL &&
            backend->matmul(backend->user_data, handle, x, x_stride, n_tokens, ys[0],
                            y_strides[0]) == GEMINI_BACKEND_DONE)
            return;
    }
    memset(tasks, 0, sizeof tasks);
    tasks[0].dot = ctx->dot[w->type];
    tasks[0].dot2x2 = ctx->dot2x2[w->type];
    tasks[0].tile = ctx->tile[w->type];
    tasks[0].scratch = ctx->tile_scratch;
    tasks[0].scratch_bytes = ctx->tile_scratch_bytes;
    tasks[0].cols = w->dims[1];
    tasks[0].row_bytes = gemini_type_row_bytes((gemini_type)w->type, tasks[0].cols);
    tasks[0].tile_rows = gemini__tile_rows(ctx->tile, tasks[0].row_bytes);
    tasks[0].n_tokens = n_tokens;
#if defined(GEMINI_USE_BLAS)
    /* all or none: the matrices share a type and a length */
    for (i = 0; i < count; i++)
        if (!gemini__matmul_blas(ctx, (gemini_type)w->type, ws[i]->data, ws[i]->dims[0],
                                 tasks[0].cols, tasks[0].row_bytes, x, x_stride, n_tokens,
                                 ys[i], y_strides[i]))
            break;
    if (i == count) return;
#endif
    if (w->type == GEMINI_TYPE_Q8_0 || w->type == GEMINI_TYPE_Q4_0) {
        int64_t q8_stride = tasks[0].cols / GEMINI__QK * GEMINI__Q8_0_BYTES;
        float *x_scales = n_tokens >= 16 && gemini__tile_reads_scales(ctx->tile) ? ctx->x_scales
                                                                                  : NULL;
        gemini__rows_task rows;
        memset(&rows, 0, sizeof rows);
        rows.kind = GEMINI__ROWS_QUANTIZE;
        rows.quantize = ctx->quantize;
        rows.x = x;
        rows.x_stride = x_stride;
        rows.out = ctx->x_q8;
        rows.out_stride = q8_stride;
        rows.scales = x_scales;
        rows.n = tasks[0].cols;
        rows.n_rows = n_tokens;
        gemini__run_rows(ctx, &rows);
        tasks[0].x = ctx->x_q8;
        tasks[0].x_stride = q8_stride;
        tasks[0].x_scales = x_scales;
    } else {
        tasks[0].x = (const uint8_t *)x;
        tasks[0].x_stride = x_stride * (int64_t)sizeof(float);
    }
    for (i = 0; i < count; i++) {
        if (i > 0) {
            tasks[i] = tasks[0];
            tasks[i].next = NULL;
            tasks[i - 1].next = &tasks[i];
        }
        tasks[i].w = ws[i]->data;
        tasks[i].rows = ws[i]->dims[0];
        tasks[i].y = ys[i];
        tasks[i].y_stride = y_strides[i];
    }
    gemini__pool_run(&ctx->pool, gemini__matmul_worker, &tasks[0]);
}

static void gemini__matmul(gemini_context *ctx, const gemini__tensor *w, const float *x,
                           int64_t x_stride, int32_t n_tokens, float *y, int64_t y_stride)
{
    gemini__matmul_n(ctx, 1, &w, x, x_stride, n_tokens, &y, &y_stride);
}

/* gemini__matmul, then the bias (if any) added to every output row. */
static void gemini__add_bias(const gemini__tensor *w, const float *bias, int32_t n_tokens,
                             float *y, int64_t y_stride)
{
    int64_t rows = w->dims[0], r;
    int32_t t;
    if (bias == NULL) return;
    for (t = 0; t < n_tokens; t++)
        for (r = 0; r < rows; r++) y[t * y_stride + r] += bias[r];
}

static void gemini__linear(gemini_context *ctx, const gemini__tensor *w, const float *bias,
                           const float *x, int64_t x_stride, int32_t n_tokens, float *y,
                           int64_t y_stride)
{
    gemini__matmul(ctx, w, x, x_stride, n_tokens, y, y_stride);
    gemini__add_bias(w, bias, n_tokens, y, y_stride);
}

/* out = x * rsqrt(mean(x^2) + eps) * weight, where weight already holds 1 + w. */
static void gemini__rmsnorm(float *out, const float *x, const float *weight, int64_t n, float eps)
{
    /* 8 running sums (value i into sum i % 8), added pairwise at the end: one chain of
       dependent double additions took 4.4% of prefill on a single thread */
    double sums[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum_squares;
    float scale;
    int64_t i;
    int k;
    for (i = 0; i + 8 <= n; i += 8)
        for (k = 0; k < 8; k++) sums[k] += (double)x[i + k] * x[i + k];
    for (k = 0; i < n; i++, k++) sums[k] += (double)x[i] * x[i];
    sum_squares = ((sums[0] + sums[1]) + (sums[2] + sums[3])) +
                  ((sums[4] + sums[5]) + (sums[6] + sums[7]));
    scale = (float)(1.0 / sqrt(sum_squares / (double)n + (double)eps));
    for (i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
}

/* out = (x - mean) / sqrt(variance + eps) * weight + bias (biased variance, as torch). */
static void gemini__layernorm(float *out, const float *x, const float *weight,
                              const float *bias, int64_t n, float eps)
{
    double mean = 0.0, variance = 0.0;
    float mean_f, scale;
    int64_t i;
    for (i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (i = 0; i < n; i++) variance += ((double)x[i] - mean) * ((double)x[i] - mean);
    variance /= (double)n;
    mean_f = (float)mean;
    scale = (float)(1.0 / sqrt(variance + (double)eps));
    for (i = 0; i < n; i++) out[i] = (x[i] - mean_f) * scale * weight[i] + bias[i];
}

/* A norm over n rows of d: LayerNorm where it has a bias (Whisper, SigLIP), else RMSNorm. */
static void gemini__norm_rows_eps(float *out, const float *x, int32_t n, int64_t d,
                                  const float *weight, const float *bias, float eps)
{
    int32_t t;
    for (t = 0; t < n; t++) {
        if (bias != NULL) gemini__layernorm(out + t * d, x + t * d, weight, bias, d, eps);
        else gemini__rmsnorm(out + t * d, x + t * d, weight, d, eps);
    }
}

/* The same with the decoder's eps for the kind of norm. */
static void gemini__norm_rows(const gemini_model_hparams *hp, float *out, const float *x,
                              int32_t n, int64_t d, const float *weight, const float *bias)
{
    gemini__norm_rows_eps(out, x, n, d, weight, bias,
                          bias != NULL ? hp->layer_norm_eps : hp->rms_norm_eps);
}

/* x += y over n rows of d. */
static void gemini__add_rows(float *x, const float *y, int32_t n, int64_t d)
{
    int64_t i;
    for (i = 0; i < (int64_t)n * d; i++) x[i] += y[i];
}

/* NeoX ("rotate half") RoPE on one head: pairs (i, i + D/2). */
static void gemini__rope(float *head, const float *cos_row, const float *sin_row, int32_t D)
{
    int32_t i, half = D / 2;
    for (i = 0; i < half; i++) {
        float a = head[i], b = head[i + half];
        head[i] = a * cos_row[i] - b * sin_row[i];
        head[i + half] = b * cos_row[i] + a * sin_row[i];
    }
}

/* Attention of n_tokens queries over rows of keys and values. Causal: token t (at position
   p = first_position + t) sees the keys of positions [max(0, p - window + 1), p], key row j
   stored at j % capacity (the KV cache), widened to [span_first[t], span_last[t]] where a
   bidirectional span holds it (PaliGemma's prefix: the union of its window and the prefix; a
   Gemma 3 image: up to the image's last row, the window's lower bound kept). Not causal: every
   token sees the n_keys rows (the encoder's own frames, or the encoded audio for
   cross-attention). */
typedef struct gemini__attention_task {
    gemini_context *ctx;
    const float *q;                 /* (n_tokens, n_heads * head_dim) */
    float *out;                     /* (n_tokens, n_heads * head_dim) */
    const uint8_t *k, *v;           /* key and value rows of kv_type, row_bytes apart */
    int64_t row_bytes;
    gemini_type kv_type;            /* f32, f16 or bf16 */
    int32_t n_heads, n_kv_heads, head_dim;
    float scale;                    /* multiplier of q.k */
    float softcap;                  /* 0: off */
    int causal;
    int32_t capacity;               /* causal: rows of the (ring) cache */
    int32_t window;                 /* causal: keys visible including the current one; 0 = all */
    int32_t first_position;         /* causal: position of token 0 */
    const int32_t *span_first;      /* causal: (n_tokens) or NULL, see above */
    const int32_t *span_last;
    int32_t n_keys;                 /* not causal: key rows */
    int32_t n_tokens;
} gemini__attention_task;

/* One token's attention for the query heads [h0, h0 + n_heads) of one key-value head, with
   n_heads score rows of scratch, in three steps that the decode-time split below runs on
   several threads: scores of a range of keys, softmax, values over a range of dimensions. The
   scores of two keys by two heads come from one 2x2 kernel call (each sum with the one-row
   kernel's bits; pairs start at the first visible key, whoever computes them), and each value
   row is read once for all the heads, whose outputs add it in the same order as one head
   alone would. */
typedef struct gemini__attention_item {
    const gemini__attention_task *task;
    float *scores;                  /* n_heads rows, ctx->scores_stride apart */
    int32_t t, h0, n_heads;         /* token, first query head, heads */
    int32_t kv_head, first, last;   /* the visible keys */
    int32_t kv_step;                /* 0: the heads share kv_head's keys and values (a query
                                       group); 1: head h0 + i has key-value head kv_head + i
                                       (all heads of a token with as many key-value heads) */
} gemini__attention_item;

static void gemini__attention_item_init(gemini__attention_item *item,
                                        const gemini__attention_task *task, float *scores,
                                        int32_t t, int32_t h0, int32_t n_heads)
{
    item->task = task;
    item->scores = scores;
    item->t = t;
    item->h0 = h0;
    item->n_heads = n_heads;
    item->kv_head = h0 / (task->n_heads / task->n_kv_heads);
    item->kv_step = 0;
    item->first = 0;
    item->last = task->n_keys - 1;
    if (task->causal) {
        item->last = task->first_position + t;
        if (task->window > 0 && item->last - task->window + 1 > 0)
            item->first = item->last - task->window + 1;
        if (task->span_first != NULL) {
            if (task->span_first[t] < item->first) item->first = task->span_first[t];
            if (task->span_last[t] > item->last) item->last = task->span_last[t];
        }
    }
}

/* Scaled (and soft-capped) scores q.k of the keys first + [begin, end), begin even. */
static void gemini__attend_scores(const gemini__attention_item *item, int32_t begin,
                                  int32_t end)
{
    const gemini__attention_task *task = item->task;
    gemini_context *ctx = task->ctx;
    int32_t D = task->head_dim, n_heads = item->n_heads, first = item->first, j, i, k;
    int32_t capacity = task->causal ? task->capacity : task->n_keys;
    int64_t stride = ctx->scores_stride;
    int64_t head_bytes = gemini_type_row_bytes(task->kv_type, D);
    gemini__dot_fn dot = ctx->dot[task->kv_type];
    gemini__dot2x2_fn dot2x2 = ctx->dot2x2[task->kv_type];
    const float *queries = task->q + ((int64_t)item->t * task->n_heads + item->h0) * D;
    float *scores = item->scores, cap = task->softcap;
#define GEMINI__KEY(j) \
    (task->k + (int64_t)((j) % capacity) * task->row_bytes + item->kv_head * head_bytes)

    /* raw scores q.k (the key row is the kernel's "weight" row); a wide item's heads each
       have their own part of the row (no pairs of heads on one key then), read key by key */
    j = first + begin;
    if (dot2x2 != NULL && n_heads >= 2 && !item->kv_step)
        for (; j + 1 < first + end; j += 2) {
            for (i = 0; i + 1 < n_heads; i += 2) {
                float out[4];
                dot2x2(GEMINI__KEY(j), GEMINI__KEY(j + 1),
                       (const uint8_t *)(const void *)(queries + (int64_t)i * D),
                       (const uint8_t *)(const void *)(queries + (int64_t)(i + 1) * D), D, out);
                scores[i * stride + j - first] = out[0];
                scores[(i + 1) * stride + j - first] = out[1];
                scores[i * stride + j + 1 - first] = out[2];
                scores[(i + 1) * stride + j + 1 - first] = out[3];
            }
            for (; i < n_heads; i++)
                for (k = 0; k < 2; k++)
                    scores[i * stride + j + k - first] =
                        dot(GEMINI__KEY(j + k), queries + (int64_t)i * D, D);
        }
    for (; j < first + end; j++)
        for (i = 0; i < n_heads; i++)
            scores[i * stride + j - first] = dot(GEMINI__KEY(j) + i * item->kv_step * head_bytes,
                                                 queries + (int64_t)i * D, D);
#undef GEMINI__KEY

    /* scale, soft-cap */
    for (i = 0; i < n_heads; i++)
        for (j = begin; j < end; j++) {
            float score = scores[i * stride + j] * task->scale;
            if (cap > 0.0f) score = cap * tanhf(score / cap);
            scores[i * stride + j] = score;
        }
}

/* Softmax per head: the scores become the weights p = exp(score - max) / sum; the outputs
   zeroed. */
static void gemini__attend_softmax(gemini__attention_item *item)
{
    const gemini__attention_task *task = item->task;
    int32_t D = task->head_dim, n = item->last - item->first + 1, i, j;
    float *outs = task->out + ((int64_t)item->t * task->n_heads + item->h0) * D;
    for (i = 0; i < item->n_heads; i++) {
        task->ctx->softmax(item->scores + i * task->ctx->scores_stride, n); /* the weights p */
        for (j = 0; j < D; j++) outs[(int64_t)i * D + j] = 0.0f;
    }
}

/* out[d] = sum_j p_j v_j[d] for the dimensions [begin, end) of the item's heads
   [head, head + n), key by key (heads of a query group share each value row: all of them). */
static void gemini__attend_values(const gemini__attention_item *item, int32_t head, int32_t n,
                                  int32_t begin, int32_t end)
{
    const gemini__attention_task *task = item->task;
    gemini_context *ctx = task->ctx;
    int32_t D = task->head_dim, capacity = task->causal ? task->capacity : task->n_keys, j, i;
    int64_t stride = ctx->scores_stride, head_bytes = gemini_type_row_bytes(task->kv_type, D);
    int64_t offset = gemini_type_row_bytes(task->kv_type, begin);
    gemini__axpy_half_fn axpy_half = ctx->axpy_half[task->kv_type];
    /* this level's axpy in register blocks: the same FMAs, in runs of keys that do not wrap
       around the ring */
    gemini__weighted_sum_fn weighted_sum =
        ctx->weighted_sums != NULL ? ctx->weighted_sums[task->kv_type] : NULL;
    float *outs = task->out + ((int64_t)item->t * task->n_heads + item->h0 + head) * D + begin;
    const float *scores = item->scores + head * stride;
    if (item->kv_step && n > 1) { /* heads with values of their own: one at a time */
        for (i = 0; i < n; i++) gemini__attend_values(item, head + i, 1, begin, end);
        return;
    }
    offset += (item->kv_head + item->kv_step * head) * head_bytes;
    if (weighted_sum != NULL) {
        for (j = item->first; j <= item->last;) {
            int32_t run = capacity - j % capacity;
            if (run > item->last - j + 1) run = item->last - j + 1;
            weighted_sum(outs, D, n, scores + (j - item->first), stride,
                         task->v + (int64_t)(j % capacity) * task->row_bytes + offset,
                         task->row_bytes, run, end - begin);
            j += run;
        }
        return;
    }
    for (j = item->first; j <= item->last; j++) {
        const uint8_t *value = task->v + (int64_t)(j % capacity) * task->row_bytes + offset;
        for (i = 0; i < n; i++) {
            float p = scores[i * stride + j - item->first];
            if (task->kv_type == GEMINI_TYPE_F32)
                ctx->axpy(outs + (int64_t)i * D, p, (const float *)(const void *)value,
                          end - begin);
            else
                axpy_half(outs + (int64_t)i * D, p, value, end - begin);
        }
    }
}

static void gemini__attend_heads(const gemini__attention_task *task, float *scores,
                                 int32_t t, int32_t h0, int32_t n_heads)
{
    gemini__attention_item item;
    gemini__attention_item_init(&item, task, scores, t, h0, n_heads);
    gemini__attend_scores(&item, 0, item.last - item.first + 1);
    gemini__attend_softmax(&item);
    gemini__attend_values(&item, 0, n_heads, 0, task->head_dim);
}

/* The query-head group of each work item (one head at a time where the group is larger than
   the scratch rows or GEMINI__MAX_GROUP). */
static int32_t gemini__attention_group(const gemini__attention_task *task)
{
    gemini_context *ctx = task->ctx;
    int32_t group = task->n_heads / task->n_kv_heads;
    int32_t rows = (int32_t)(ctx->score_rows < GEMINI__MAX_GROUP ? ctx->score_rows
                                                                 : GEMINI__MAX_GROUP);
    return group > rows ? 1 : group;
}

/* Work items are (token, key-value head): the group of query heads that share its keys. */
static void gemini__attention_worker(void *arg, int part, int n_parts, int thread_index)
{
    const gemini__attention_task *task = (const gemini__attention_task *)arg;
    gemini_context *ctx = task->ctx;
    int32_t group = gemini__attention_group(task), h;
    int64_t begin, end, item;
    float *scores = ctx->scores + thread_index * ctx->score_rows * ctx->scores_stride;
    gemini__split((int64_t)task->n_tokens * (task->n_heads / group), part, n_parts, &begin,
                  &end);
    for (item = begin; item < end; item++) {
        int32_t t = (int32_t)(item / (task->n_heads / group));
        h = (int32_t)(item % (task->n_heads / group)) * group;
        gemini__attend_heads(task, scores, t, h, group);
    }
}

/* One item's keys in even-aligned ranges (its scores), then its dimensions in parts of whole
   vectors (its values): the decode-time split, same bits as one thread. The keys go in one
   range a thread (the parts past those do nothing): one long stream each reads the cache
   faster than 8 short ones (Zen 4, 512 keys of 1 KiB, 2 threads: 28-31 -> 21-23 us). The
   price: a thread descheduled here holds up its whole share of the keys, not an eighth. */
static void gemini__attention_scores_worker(void *arg, int part, int n_parts, int thread_index)
{
    const gemini__attention_item *item = (const gemini__attention_item *)arg;
    int ranges = gemini__parts_threads(n_parts);
    int64_t begin, end;
    (void)thread_index;
    if (part >= ranges) return;
    gemini__split_aligned(item->last - item->first + 1, part, ranges, 2, &begin, &end);
    if (begin < end) gemini__attend_scores(item, (int32_t)begin, (int32_t)end);
}

/* Dimensions per part of the value step: 64 (whole vectors of every kernel level), so that
   each axpy call still has some length. */
#define GEMINI__ATTENTION_DIMS 64

static void gemini__attention_values_worker(void *arg, int part, int n_parts, int thread_index)
{
    const gemini__attention_item *item = (const gemini__attention_item *)arg;
    int64_t D = item->task->head_dim, begin;
    (void)thread_index;
    for (begin = (int64_t)part * GEMINI__ATTENTION_DIMS; begin < D;
         begin += (int64_t)n_parts * GEMINI__ATTENTION_DIMS) {
        int64_t end = begin + GEMINI__ATTENTION_DIMS < D ? begin + GEMINI__ATTENTION_DIMS : D;
        gemini__attend_values(item, 0, item->n_heads, (int32_t)begin, (int32_t)end);
    }
}

/* A wide item's values: each thread a range of whole heads, so that it reads one stretch of
   every value row. */
static void gemini__attention_head_values_worker(void *arg, int part, int n_parts,
                                                 int thread_index)
{
    const gemini__attention_item *item = (const gemini__attention_item *)arg;
    int ranges = gemini__parts_threads(n_parts);
    int64_t begin, end;
    (void)thread_index;
    if (part >= ranges) return;
    gemini__split(item->n_heads, part, ranges, &begin, &end);
    if (begin < end)
        gemini__attend_values(item, (int32_t)begin, (int32_t)(end - begin), 0,
                              item->task->head_dim);
}

#define GEMINI__WIDE_TOKENS 16 /* tokens of a task up to which gemini__attend uses wide items */

/* Runs an attention task: items on threads, or, when there are fewer items than threads
   (decoding one token with few key-value heads), each item's keys and then its dimensions
   split over the threads. */
static void gemini__attend(gemini_context *ctx, const gemini__attention_task *task)
{
    int32_t group = gemini__attention_group(task), t, h;
    int64_t n_items = (int64_t)task->n_tokens * (task->n_heads / group);

    /* A few tokens with a key-value head a query head (Whisper's decoder): one item a token
       for all its heads, its keys split over the threads and read row by row, its heads'
       values in ranges of heads. Items of one head each read a 64-value part of every
       1500-key row of the cross-attention cache at a 2 KiB stride (whisper-base), slowly. */
    if (task->n_kv_heads == task->n_heads && task->n_heads > 1 &&
        task->n_tokens <= GEMINI__WIDE_TOKENS &&
        (int64_t)ctx->pool.n_threads * ctx->score_rows >= task->n_heads) {
        for (t = 0; t < task->n_tokens; t++) {
            gemini__attention_item item;
            gemini__attention_item_init(&item, task, ctx->scores, t, 0, task->n_heads);
            item.kv_step = 1;
            gemini__pool_run(&ctx->pool, gemini__attention_scores_worker, &item);
            gemini__attend_softmax(&item);
            gemini__pool_run(&ctx->pool, gemini__attention_head_values_worker, &item);
        }
        return;
    }
    if (n_items >= ctx->pool.n_threads) {
        gemini__pool_run(&ctx->pool, gemini__attention_worker, (void *)task);
        return;
    }
    for (t = 0; t < task->n_tokens; t++)
        for (h = 0; h < task->n_heads; h += group) {
            gemini__attention_item item;
            gemini__attention_item_init(&item, task, ctx->scores, t, h, group);
            gemini__pool_run(&ctx->pool, gemini__attention_scores_worker, &item);
            gemini__attend_softmax(&item);
            gemini__pool_run(&ctx->pool, gemini__attention_values_worker, &item);
        }
}

/* Attention with every key visible: n_tokens queries of n_heads heads over n_keys rows of
   kv_type values (Whisper's cross-attention to the encoded audio). */
static void gemini__attend_all(gemini_context *ctx, const float *q, float *out, const uint8_t *k,
                               const uint8_t *v, gemini_type kv_type, int32_t n_keys,
                               int32_t n_heads, int32_t head_dim, int32_t n_tokens)
{
    gemini__attention_task task;
    memset(&task, 0, sizeof task);
    task.ctx = ctx;
    task.q = q;
    task.out = out;
    task.k = k;
    task.v = v;
    task.kv_type = kv_type;
    task.row_bytes = gemini_type_row_bytes(kv_type, (int64_t)n_heads * head_dim);
    task.n_heads = task.n_kv_heads = n_heads;
    task.head_dim = head_dim;
    task.scale = 1.0f / sqrtf((float)head_dim);
    task.n_keys = n_keys;
    task.n_tokens = n_tokens;
    gemini__attend(ctx, &task);
}

/* The same attention as gemini__attend_all (every key visible), as matrix products, for an
   encoder's many queries: per head and block of queries, S = Q K^T by the matmul worker with
   K's rows as the "weights", softmax(S * scale) row by row, then O = S V with V^T's rows as the
   weights. Streams K and V once per block instead of once per query. */
static void gemini__attend_blocked(gemini_context *ctx, const float *q, float *out,
                                   const float *k, const float *v, int32_t n_keys,
                                   int32_t n_heads, int32_t head_dim, int32_t n_tokens)
{
    int64_t width = (int64_t)n_heads * head_dim, key, i;
    gemini__matmul_task task;
    gemini__rows_task rows;
    int32_t h, block;

    memset(&task, 0, sizeof task);
    memset(&rows, 0, sizeof rows);
    task.dot = ctx->dot[GEMINI_TYPE_F32];
    task.dot2x2 = ctx->dot2x2[GEMINI_TYPE_F32]; /* the same bits, two queries at a time */
    rows.kind = GEMINI__ROWS_SOFTMAX;
    rows.softmax = ctx->softmax;
    rows.gate = ctx->block_scores;
    rows.n = n_keys;
    rows.scale = 1.0f / sqrtf((float)head_dim);
    for (h = 0; h < n_heads; h++) {
        /* this head's values, transposed: row i holds component i of every key */
        for (key = 0; key < n_keys; key++)
            for (i = 0; i < head_dim; i++)
                ctx->block_values[i * n_keys + key] = v[key * width + h * head_dim + i];

        for (block = 0; block < n_tokens; block += GEMINI__QUERY_BLOCK) {
            int32_t n_block = n_tokens - block < GEMINI__QUERY_BLOCK ? n_tokens - block
                                                                      : GEMINI__QUERY_BLOCK;

            /* scores of the block's queries against every key */
            task.w = (const uint8_t *)(k + h * head_dim);
            task.rows = n_keys;
            task.cols = head_dim;
            task.row_bytes = width * (int64_t)sizeof(float);
            task.x = (const uint8_t *)(q + (int64_t)block * width + h * head_dim);
            task.x_stride = width * (int64_t)sizeof(float);
            task.y = ctx->block_scores;
            task.y_stride = n_keys;
            task.n_tokens = n_block;
            gemini__run_f32_matmul(ctx, &task);

            /* softmax, then the weighted values */
            rows.n_rows = n_block;
            gemini__run_rows(ctx, &rows);
            task.w = (const uint8_t *)ctx->block_values;
            task.rows = head_dim;
            task.cols = n_keys;
            task.row_bytes = (int64_t)n_keys * (int64_t)sizeof(float);
            task.x = (const uint8_t *)ctx->block_scores;
            task.x_stride = (int64_t)n_keys * (int64_t)sizeof(float);
            task.y = out + (int64_t)block * width + h * head_dim;
            task.y_stride = width;
            gemini__run_f32_matmul(ctx, &task);
        }
    }
}

/* The logits of n_rows residual rows (stride d) into out (n_rows, vocab). */
static void gemini__output_head(gemini_context *ctx, const float *x, int32_t n_rows, float *out)
{
    const gemini_model *model = ctx->model;
    const gemini_model_hparams *hp = &model->hparams;
    int64_t d = hp->hidden_size, vocab = hp->vocab_size, i;

    /* final norm */
    gemini__norm_rows(hp, ctx->a.xn, x, n_rows, d, model->output_norm, model->output_norm_b);

    /* logits = norm(x) E^T (tied) or Wout^T */
    gemini__matmul(ctx, model->output, ctx->a.xn, d, n_rows, out, vocab);

    /* final soft-cap */
    if (hp->final_softcap > 0.0f) {
        float cap = hp->final_softcap;
        for (i = 0; i < (int64_t)n_rows * vocab; i++) out[i] = cap * tanhf(out[i] / cap);
    }
}

/* Self-attention of a decoder layer over its KV cache: QK-norm and RoPE (Gemma), the new keys
   and values stored at their positions, then causal attention, by the backend if it takes
   it. Reads a->q, a->k, a->v; writes a->attn. */
static void gemini__cached_attention(gemini_context *ctx, gemini__acts *a, int32_t layer_index,
                                     int32_t n, int32_t first_position)
{
    const gemini_model_hparams *hp = &ctx->model->hparams;
    const gemini__layer *layer = &ctx->model->layers[layer_index];
    int64_t D = hp->head_dim, H = hp->num_heads, Hkv = hp->num_kv_heads;
    int64_t q_dim = H * D, kv_dim = Hkv * D, h;
    int32_t capacity = ctx->capacity[layer_index], t;
    const float *cos_table = layer->is_local ? ctx->cos_local : ctx->cos_global;
    const float *sin_table = layer->is_local ? ctx->sin_local : ctx->sin_global;
    gemini_context *const *owners = ctx->step_owners;
    gemini__attention_task attention;
    int backend_attended = 0;

    /* QK-norm per head (Gemma 3), then RoPE; Whisper's positions are in its embeddings */
    if (!hp->is_encoder_decoder) {
        for (t = 0; t < n; t++) {
            for (h = 0; h < H; h++) {
                float *head = a->q + t * q_dim + h * D;
                if (layer->attn_q_norm)
                    gemini__rmsnorm(head, head, layer->attn_q_norm, D, hp->rms_norm_eps);
                gemini__rope(head, cos_table + t * (D / 2), sin_table + t * (D / 2), (int32_t)D);
            }
            for (h = 0; h < Hkv; h++) {
                float *head = a->k + t * kv_dim + h * D;
                if (layer->attn_k_norm)
                    gemini__rmsnorm(head, head, layer->attn_k_norm, D, hp->rms_norm_eps);
                gemini__rope(head, cos_table + t * (D / 2), sin_table + t * (D / 2), (int32_t)D);
            }
        }
    }

    /* store k and v in the cache (a ring for local layers), rounded to its type; a row of
       another context goes to that context's cache at its position */
    for (t = 0; t < n; t++) {
        gemini_context *owner = owners != NULL ? owners[t] : ctx;
        int64_t position = owners != NULL ? owner->position : first_position + t;
        int64_t slot = position % owner->capacity[layer_index];
        gemini__store_row(ctx->kv_type, a->k + t * kv_dim,
                          owner->k_cache[layer_index] + slot * ctx->kv_row_bytes, kv_dim);
        gemini__store_row(ctx->kv_type, a->v + t * kv_dim,
                          owner->v_cache[layer_index] + slot * ctx->kv_row_bytes, kv_dim);
    }

    /* attention over the cache, unless the backend does it over its own */
    if (ctx->has_backend && ctx->backend.attention != NULL && owners == NULL) {
        gemini_backend_attention step;
        step.layer = layer_index;
        step.n_tokens = n;
        step.first_position = first_position;
        step.n_ctx = ctx->n_ctx;
        step.n_heads = hp->num_heads;
        step.n_kv_heads = hp->num_kv_heads;
        step.head_dim = hp->head_dim;
        step.window = layer->is_local ? hp->sliding_window : 0;
        step.query_scale = hp->query_scale;
        step.softcap = hp->attn_softcap;
        step.q = a->q;
        step.k = a->k;
        step.v = a->v;
        step.out = a->attn;
        backend_attended = ctx->backend.attention(ctx->backend.user_data, &step) ==
                           GEMINI_BACKEND_DONE;
        /* a backend attends causally; a bidirectional span is the CPU's (it has stored k, v) */
        if (ctx->step_has_span) backend_attended = 0;
    }
    if (backend_attended) return;
    memset(&attention, 0, sizeof attention);
    attention.ctx = ctx;
    attention.q = a->q;
    attention.out = a->attn;
    attention.k = ctx->k_cache[layer_index];
    attention.v = ctx->v_cache[layer_index];
    attention.row_bytes = ctx->kv_row_bytes;
    attention.kv_type = ctx->kv_type;
    attention.n_heads = hp->num_heads;
    attention.n_kv_heads = hp->num_kv_heads;
    attention.head_dim = hp->head_dim;
    attention.scale = hp->query_scale;
    attention.softcap = hp->attn_softcap;
    attention.causal = 1;
    attention.capacity = capacity;
    attention.window = layer->is_local ? hp->sliding_window : 0;
    attention.first_position = first_position;
    if (ctx->step_has_span) {
        attention.span_first = ctx->span_first;
        attention.span_last = ctx->span_last;
    }
    attention.n_tokens = n;
    if (owners == NULL) {
        gemini__attend(ctx, &attention);
        return;
    }

    /* rows of several contexts: each over its own context's cache (gemini_decode_each) */
    attention.n_tokens = 1;
    for (t = 0; t < n; t++) {
        attention.q = a->q + t * q_dim;
        attention.out = a->attn + t * q_dim;
        attention.k = owners[t]->k_cache[layer_index];
        attention.v = owners[t]->v_cache[layer_index];
        attention.capacity = owners[t]->capacity[layer_index];
        attention.first_position = owners[t]->position;
        gemini__attend(ctx, &attention);
    }
}

/* The shape of a stack of blocks: the decoder's, Whisper's encoder's or the vision tower's. */
typedef struct gemini__stack {
    int64_t d;                      /* residual width */
    int32_t n_heads, head_dim;
    int64_t f;                      /* MLP width */
    float norm_eps;                 /* of its norms (RMSNorm or LayerNorm) */
} gemini__stack;

/* The context whose sequence row t of ctx's current step extends. */
static const gemini_context *gemini__row_owner(const gemini_context *ctx, int32_t t)
{
    return ctx->step_owners != NULL ? ctx->step_owners[t] : ctx;
}

/* The context whose encoder output and cross-attention keys and values ctx decodes with: at
   the end of its chain of shares (a source may itself come to share another's audio after it
   was shared; a share always points at a chain's end other than itself, so chains end). */
static const gemini_context *gemini__audio_of(const gemini_context *ctx)
{
    while (ctx->audio_from != NULL) ctx = ctx->audio_from;
    return ctx;
}

static gemini__stack gemini__decoder_stack(const gemini_model_hparams *hp)
{
    gemini__stack stack;
    stack.d = hp->hidden_size;
    stack.n_heads = hp->num_heads;
    stack.head_dim = hp->head_dim;
    stack.f = hp->intermediate_size;
    stack.norm_eps = hp->is_encoder_decoder ? hp->layer_norm_eps : hp->rms_norm_eps;
    return stack;
}

/* Runs one transformer block of the given stack on the n rows of a. Decoder blocks
   (layer_index >= 0) attend causally over their KV cache from first_position and, where the
   block has it, to the encoded audio; encoder blocks (layer_index < 0: Whisper's encoder, the
   vision tower) attend over their own n rows. */
static void gemini__block_forward(gemini_context *ctx, gemini__acts *a,
                                  const gemini__layer *layer, const gemini__stack *stack,
                                  int32_t layer_index, int32_t n, int32_t first_position)
{
    const gemini_model_hparams *hp = &ctx->model->hparams;
    int64_t d = stack->d, D = stack->head_dim, f = stack->f;
    int32_t n_heads = stack->n_heads;
    int64_t q_dim = n_heads * D;
    int64_t kv_dim = layer_index >= 0 ? (int64_t)hp->num_kv_heads * D : q_dim;
    float eps = stack->norm_eps;
    gemini__rows_task rows;

    /* pre-attention norm; q, k, v projections (one fused product) */
    gemini__norm_rows_eps(a->xn, a->x, n, d, layer->attn_norm, layer->attn_norm_b, eps);
    {
        const gemini__tensor *qkv[3];
        float *outs[3];
        int64_t strides[3];
        qkv[0] = layer->attn_q, qkv[1] = layer->attn_k, qkv[2] = layer->attn_v;
        outs[0] = a->q, outs[1] = a->k, outs[2] = a->v;
        strides[0] = q_dim, strides[1] = kv_dim, strides[2] = kv_dim;
        gemini__matmul_n(ctx, 3, qkv, a->xn, d, n, outs, strides);
        gemini__add_bias(layer->attn_q, layer->attn_q_b, n, a->q, q_dim);
        gemini__add_bias(layer->attn_k, layer->attn_k_b, n, a->k, kv_dim);
        gemini__add_bias(layer->attn_v, layer->attn_v_b, n, a->v, kv_dim);
    }

    /* self-attention */
    if (layer_index >= 0) gemini__cached_attention(ctx, a, layer_index, n, first_position);
    else gemini__attend_blocked(ctx, a->q, a->attn, a->k, a->v, n, n_heads, (int32_t)D, n);

    /* output projection, post-attention norm (Gemma 2/3), residual */
    gemini__linear(ctx, layer->attn_out, layer->attn_out_b, a->attn, q_dim, n, a->proj, d);
    if (layer->post_attn_norm)
        gemini__norm_rows_eps(a->proj, a->proj, n, d, layer->post_attn_norm, NULL, eps);
    gemini__add_rows(a->x, a->proj, n, d);

    /* cross-attention to the encoded audio (Whisper decoder) */
    if (layer->cross_norm != NULL) {
        int32_t t, rows;
        gemini__norm_rows_eps(a->xn, a->x, n, d, layer->cross_norm, layer->cross_norm_b, eps);
        gemini__linear(ctx, layer->cross_q, layer->cross_q_b, a->xn, d, n, a->q, q_dim);
        /* each row attends to its context's audio (rows of several contexts: those of
           gemini_decode_each), neighbours with the same audio together */
        for (t = 0; t < n; t += rows) {
            const gemini_context *audio = gemini__audio_of(gemini__row_owner(ctx, t));
            rows = 1;
            while (t + rows < n && gemini__audio_of(gemini__row_owner(ctx, t + rows)) == audio)
                rows++;
            gemini__attend_all(ctx, a->q + t * q_dim, a->attn + t * q_dim,
                               audio->cross_k[layer_index], audio->cross_v[layer_index],
                               ctx->kv_type, hp->audio_ctx, n_heads, (int32_t)D, rows);
        }
        gemini__linear(ctx, layer->cross_out, layer->cross_out_b, a->attn, q_dim, n, a->proj,
                       d);
        gemini__add_rows(a->x, a->proj, n, d);
    }

    /* pre-MLP norm; GeGLU down(gelu_tanh(gate(x)) * up(x)) or plain down(gelu(up(x))) */
    gemini__norm_rows_eps(a->xn, a->x, n, d, layer->ffn_norm, layer->ffn_norm_b, eps);
    memset(&rows, 0, sizeof rows);
    rows.n = f;
    rows.n_rows = n;
    rows.geglu = ctx->geglu;
    if (layer->ffn_gate != NULL) {
        const gemini__tensor *gate_up[2];
        float *outs[2];
        int64_t strides[2];
        gate_up[0] = layer->ffn_gate, gate_up[1] = layer->ffn_up;
        outs[0] = a->gate, outs[1] = a->up;
        strides[0] = f, strides[1] = f;
        gemini__matmul_n(ctx, 2, gate_up, a->xn, d, n, outs, strides);
        rows.kind = GEMINI__ROWS_GEGLU;
        rows.gate = a->gate;
        rows.up = a->up;
    } else {
        gemini__linear(ctx, layer->ffn_up, layer->ffn_up_b, a->xn, d, n, a->gate, f);
        rows.kind = layer->gelu_tanh ? GEMINI__ROWS_GELU_TANH : GEMINI__ROWS_GELU;
        rows.gate = a->gate;
        rows.up = a->gate;
    }
    gemini__run_rows(ctx, &rows);
    gemini__linear(ctx, layer->ffn_down, layer->ffn_down_b, a->gate, f, n, a->proj, d);

    /* post-MLP norm (Gemma 2/3), residual */
    if (layer->post_ffn_norm)
        gemini__norm_rows_eps(a->proj, a->proj, n, d, layer->post_ffn_norm, NULL, eps);
    gemini__add_rows(a->x, a->proj, n, d);
}

/* Runs n <= n_batch tokens at the current position (with ctx->step_owners: token t at
   step_owners[t]'s position, in its sequence). logits: NULL, one row per token (all_logits)
   or one row for the last token. */
static void gemini__forward_batch(gemini_context *ctx, const int32_t *tokens, int32_t n,
                                  float *logits, int all_logits)
{
    const gemini_model *model = ctx->model;
    const gemini_model_hparams *hp = &model->hparams;
    int64_t d = hp->hidden_size, half = hp->head_dim / 2, i;
    int64_t embd_row_bytes = gemini_type_row_bytes((gemini_type)model->token_embd->type, d);
    gemini__stack stack = gemini__decoder_stack(hp);
    gemini_context *const *owners = ctx->step_owners;
    int32_t t, layer;
#define GEMINI__ROW_POSITION(t) (owners != NULL ? owners[t]->position : ctx->position + (t))

    /* token embeddings: * embed_scale (Gemma), + learned position embeddings (Whisper); in
       an image prompt, the image rows as they are in the place of the placeholders */
    for (t = 0; t < n; t++) {
        float *x = ctx->a.x + t * d;
        if (ctx->image_next >= 0 && tokens[t] == hp->image_token_id) {
            memcpy(x, ctx->image_embd + (int64_t)ctx->image_next * d, (size_t)d * sizeof(float));
            ctx->image_next++;
            continue;
        }
        gemini__dequantize((gemini_type)model->token_embd->type,
                           model->token_embd->data + tokens[t] * embd_row_bytes, x, d);
        if (model->pos_embd != NULL) {
            const float *position = model->pos_embd + (int64_t)GEMINI__ROW_POSITION(t) * d;
            for (i = 0; i < d; i++) x[i] += position[i];
        } else {
            for (i = 0; i < d; i++) x[i] *= hp->embed_scale;
        }
    }

    /* RoPE angles of every token, for global and local layers */
    for (t = 0; t < n && !hp->is_encoder_decoder; t++) {
        float position = (float)(GEMINI__ROW_POSITION(t) + model->rope_offset);
        for (i = 0; i < half; i++) {
            float angle_global = position * ctx->inv_freq_global[i];
            float angle_local = position * ctx->inv_freq_local[i];
            ctx->cos_global[t * half + i] = (float)cos((double)angle_global);
            ctx->sin_global[t * half + i] = (float)sin((double)angle_global);
            ctx->cos_local[t * half + i] = (float)cos((double)angle_local);
            ctx->sin_local[t * half + i] = (float)sin((double)angle_local);
        }
    }

    /* decoder blocks */
    for (layer = 0; layer < hp->num_layers; layer++)
        gemini__block_forward(ctx, &ctx->a, &model->layers[layer], &stack, layer, n,
                              ctx->position);

    /* output head */
    if (logits != NULL) {
        if (all_logits) gemini__output_head(ctx, ctx->a.x, n, logits);
        else gemini__output_head(ctx, ctx->a.x + (int64_t)(n - 1) * d, 1, logits);
    }
    if (owners == NULL) ctx->position += n;
    for (t = 0; owners != NULL && t < n; t++) owners[t]->position++;
#undef GEMINI__ROW_POSITION
}

/* Where the step that starts at call token `start` ends: n_batch tokens on, or earlier so that
   no bidirectional span is cut (each is at most n_batch long, and a step never starts inside
   one, so the span that a full step would cut starts after `start`). */
static int32_t gemini__step_end(const gemini_context *ctx, int32_t start, int32_t n_tokens)
{
    int32_t end = n_tokens - start < ctx->n_batch ? n_tokens : start + ctx->n_batch, i;
    int cut = 1;
    while (cut) {
        cut = 0;
        for (i = 0; i < ctx->n_spans; i++) {
            const gemini__span *span = &ctx->spans[i];
            if (span->begin < end && span->end > end && span->begin > start) {
                end = span->begin;
                cut = 1;
            }
        }
    }
    return end;
}

/* What the spans of the call make visible to each token [start, end) of a step, as key
   positions (format.md §8.3, §8.4); a token in no span sees its causal window alone. */
static void gemini__step_spans(gemini_context *ctx, int32_t start, int32_t end)
{
    int32_t t, i;
    ctx->step_has_span = 0;
    for (t = start; t < end; t++) {
        int32_t position = ctx->position + (t - start), first = position, last = position;
        for (i = 0; i < ctx->n_spans; i++) {
            const gemini__span *span = &ctx->spans[i];
            if (t < span->begin || t >= span->end) continue;
            ctx->step_has_span = 1;
            if (span->widen && ctx->position + (span->begin - start) < first)
                first = ctx->position + (span->begin - start);
            if (ctx->position + (span->end - 1 - start) > last)
                last = ctx->position + (span->end - 1 - start);
        }
        ctx->span_first[t - start] = first;
        ctx->span_last[t - start] = last;
    }
}

/* Runs checked tokens in steps of at most n_batch, none cutting a span of ctx->spans. */
static void gemini__decode_steps(gemini_context *ctx, const int32_t *tokens, int32_t n_tokens,
                                 float *logits_out, int all_logits)
{
    int64_t vocab = ctx->model->hparams.vocab_size;
    int32_t i, end;
    for (i = 0; i < n_tokens; i = end) {
        float *rows = NULL;
        end = gemini__step_end(ctx, i, n_tokens);
        if (logits_out != NULL && all_logits) rows = logits_out + (int64_t)i * vocab;
        else if (logits_out != NULL && end == n_tokens) rows = logits_out;
        gemini__step_spans(ctx, i, end);
        gemini__forward_batch(ctx, tokens + i, end - i, rows, all_logits);
    }
    ctx->n_spans = 0;
    ctx->step_has_span = 0;
}

GEMINI_API gemini_result gemini_decode(gemini_context *ctx, const int32_t *tokens,
                                       int32_t n_tokens, float *logits_out, int all_logits)
{
    int32_t i, vocab;
    if (ctx == NULL || tokens == NULL || n_tokens < 1)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode: NULL or no tokens");
    vocab = ctx->model->hparams.vocab_size;
    if (ctx->model->hparams.is_encoder_decoder && !ctx->has_audio)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode: no audio encoded in "
                            "this context (call gemini_encode_mel first)");
    if (n_tokens > ctx->n_ctx - ctx->position)
        return gemini__fail(GEMINI_ERR_CONTEXT_FULL, "%d tokens at position %d exceed the "
                            "context of %d", n_tokens, ctx->position, ctx->n_ctx);
    for (i = 0; i < n_tokens; i++) {
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "token %d (index %d) is outside "
                                "[0, %d)", tokens[i], i, vocab);
    }
    gemini__decode_steps(ctx, tokens, n_tokens, logits_out, all_logits);
    return GEMINI_OK;
}

/* ---- Whisper's audio encoder ----------------------------------------------------------------- */

GEMINI_API gemini_result gemini_encode_mel(gemini_context *ctx, const float *mel, int32_t n_mels,
                                           int32_t n_frames)
{
    const gemini_model *model;
    const gemini_model_hparams *hp;
    int64_t d, n_in, n_out, columns, t, i, k;
    gemini__rows_task rows;
    gemini__stack stack;
    int32_t layer;

    if (ctx == NULL || mel == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_encode_mel: NULL argument");
    model = ctx->model;
    hp = &model->hparams;
    if (!hp->is_encoder_decoder)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_encode_mel: a %s model has no "
                            "audio encoder", hp->architecture);
    if (n_mels != hp->n_mels || n_frames != 2 * hp->audio_ctx)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_encode_mel: %d x %d log-mel "
                            "frames given, the model reads %d x %d", n_mels, n_frames,
                            hp->n_mels, 2 * hp->audio_ctx);
    if (gemini__audio_buffers(ctx, "gemini_encode_mel") != GEMINI_OK)
        return GEMINI_ERR_OUT_OF_MEMORY;
    d = hp->hidden_size;
    n_in = n_frames;
    n_out = hp->audio_ctx;
    ctx->has_audio = 0;
    ctx->audio_from = NULL;

    /* conv1, kernel 3, padding 1: im2col row t holds mel[i][t + k - 1] at column i * 3 + k,
       the layout of the stored weight [d][n_mels * 3]; then gelu */
    columns = 3 * (int64_t)n_mels;
    for (t = 0; t < n_in; t++) {
        float *row = ctx->enc_columns + t * columns;
        for (i = 0; i < n_mels; i++)
            for (k = 0; k < 3; k++) {
                int64_t source = t + k - 1;
                row[i * 3 + k] = source >= 0 && source < n_in ? mel[i * n_in + source] : 0.0f;
            }
    }
    gemini__linear(ctx, model->enc_conv1, model->enc_conv1_b, ctx->enc_columns, columns,
                   (int32_t)n_in, ctx->enc_conv, d);
    memset(&rows, 0, sizeof rows);
    rows.kind = GEMINI__ROWS_GELU;
    rows.gate = ctx->enc_conv;
    rows.up = ctx->enc_conv;
    rows.n = d;
    rows.n_rows = (int32_t)n_in;
    gemini__run_rows(ctx, &rows);

    /* conv2, kernel 3, stride 2, padding 1: row t reads frames 2t - 1 .. 2t + 1; then gelu and
       the (sinusoidal, stored) positions */
    columns = 3 * d;
    for (t = 0; t < n_out; t++) {
        float *row = ctx->enc_columns + t * columns;
        for (k = 0; k < 3; k++) {
            int64_t source = 2 * t + k - 1;
            const float *frame = ctx->enc_conv + source * d;
            for (i = 0; i < d; i++)
                row[i * 3 + k] = source >= 0 && source < n_in ? frame[i] : 0.0f;
        }
    }
    gemini__linear(ctx, model->enc_conv2, model->enc_conv2_b, ctx->enc_columns, columns,
                   (int32_t)n_out, ctx->enc.x, d);
    rows.gate = ctx->enc.x;
    rows.up = ctx->enc.x;
    rows.n_rows = (int32_t)n_out;
    gemini__run_rows(ctx, &rows);
    gemini__add_rows(ctx->enc.x, model->enc_pos, (int32_t)n_out, d);

    /* encoder blocks, final norm */
    stack.d = d;
    stack.n_heads = hp->encoder_heads;
    stack.head_dim = (int32_t)(d / hp->encoder_heads);
    stack.f = hp->encoder_ffn;
    stack.norm_eps = hp->layer_norm_eps;
    for (layer = 0; layer < hp->encoder_layers; layer++)
        gemini__block_forward(ctx, &ctx->enc, &model->enc_layers[layer], &stack, -1,
                              (int32_t)n_out, 0);
    gemini__norm_rows(hp, ctx->enc_out, ctx->enc.x, (int32_t)n_out, d, model->enc_output_norm,
                      model->enc_output_norm_b);

    /* every decoder layer's cross-attention keys and values, once per window, in the KV
       cache's type (a 16-bit type through the encoder's k and v rows, free by now) */
    for (layer = 0; layer < hp->num_layers; layer++) {
        const gemini__layer *block = &model->layers[layer];
        float *keys = ctx->kv_type == GEMINI_TYPE_F32 ? (float *)(void *)ctx->cross_k[layer]
                                                      : ctx->enc.k;
        float *values = ctx->kv_type == GEMINI_TYPE_F32 ? (float *)(void *)ctx->cross_v[layer]
                                                        : ctx->enc.v;
        gemini__linear(ctx, block->cross_k, NULL, ctx->enc_out, d, (int32_t)n_out, keys, d);
        gemini__linear(ctx, block->cross_v, block->cross_v_b, ctx->enc_out, d, (int32_t)n_out,
                       values, d);
        if (ctx->kv_type == GEMINI_TYPE_F32) continue;
        for (t = 0; t < n_out; t++) {
            gemini__store_row(ctx->kv_type, keys + t * d,
                              ctx->cross_k[layer] + t * ctx->cross_row_bytes, d);
            gemini__store_row(ctx->kv_type, values + t * d,
                              ctx->cross_v[layer] + t * ctx->cross_row_bytes, d);
        }
    }
    ctx->has_audio = 1;
    ctx->audio_from = NULL;
    ctx->position = 0;
    return GEMINI_OK;
}

GEMINI_API const float *gemini_encoder_output(const gemini_context *ctx, int32_t *n_frames,
                                              int32_t *dim)
{
    if (ctx == NULL || !ctx->has_audio) return NULL;
    ctx = gemini__audio_of(ctx);
    if (n_frames != NULL) *n_frames = ctx->model->hparams.audio_ctx;
    if (dim != NULL) *dim = ctx->model->hparams.hidden_size;
    return ctx->enc_out;
}

/* The checks shared by the two copy functions. */
static gemini_result gemini__check_copy(const gemini_context *dst, const gemini_context *src,
                                        const char *function)
{
    if (dst == NULL || src == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "%s: NULL context", function);
    if (dst->model != src->model || dst->n_ctx != src->n_ctx || dst->n_batch != src->n_batch ||
        dst->kv_type != src->kv_type)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "%s: the contexts differ in model, "
                            "n_ctx, n_batch or kv_type", function);
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_context_copy_sequence(gemini_context *dst,
                                                      const gemini_context *src)
{
    const gemini_model_hparams *hp;
    gemini_result result = gemini__check_copy(dst, src, "gemini_context_copy_sequence");
    int64_t rows;
    int32_t layer;
    if (result != GEMINI_OK) return result;
    if ((dst->has_backend && dst->backend.attention != NULL) ||
        (src->has_backend && src->backend.attention != NULL))
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "gemini_context_copy_sequence: a backend "
                            "keeps the KV cache of one of the contexts");
    if (dst == src) return GEMINI_OK;
    hp = &src->model->hparams;
    for (layer = 0; layer < hp->num_layers; layer++) {
        rows = src->position < src->capacity[layer] ? src->position : src->capacity[layer];
        memcpy(dst->k_cache[layer], src->k_cache[layer], (size_t)(rows * src->kv_row_bytes));
        memcpy(dst->v_cache[layer], src->v_cache[layer], (size_t)(rows * src->kv_row_bytes));
    }
    dst->position = src->position;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_context_copy_audio(gemini_context *dst, const gemini_context *src)
{
    const gemini_model_hparams *hp;
    const gemini_context *audio;
    gemini_result result = gemini__check_copy(dst, src, "gemini_context_copy_audio");
    size_t bytes;
    int32_t layer;
    if (result != GEMINI_OK) return result;
    hp = &src->model->hparams;
    if (!src->has_audio)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_context_copy_audio: the "
                            "source context holds no encoded audio");
    audio = gemini__audio_of(src);
    if (dst == audio) return GEMINI_OK;
    if (gemini__audio_buffers(dst, "gemini_context_copy_audio") != GEMINI_OK)
        return GEMINI_ERR_OUT_OF_MEMORY;
    bytes = (size_t)hp->audio_ctx * (size_t)hp->hidden_size * sizeof(float);
    memcpy(dst->enc_out, audio->enc_out, bytes);
    bytes = (size_t)hp->audio_ctx * (size_t)audio->cross_row_bytes;
    for (layer = 0; layer < hp->num_layers; layer++) {
        memcpy(dst->cross_k[layer], audio->cross_k[layer], bytes);
        memcpy(dst->cross_v[layer], audio->cross_v[layer], bytes);
    }
    dst->has_audio = 1;
    dst->audio_from = NULL;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_context_share_audio(gemini_context *dst,
                                                    const gemini_context *src)
{
    gemini_result result = gemini__check_copy(dst, src, "gemini_context_share_audio");
    const gemini_context *audio;
    if (result != GEMINI_OK) return result;
    if (!src->has_audio)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_context_share_audio: the "
                            "source context holds no encoded audio");
    audio = gemini__audio_of(src);
    dst->has_audio = 1;
    dst->audio_from = dst == audio ? NULL : audio;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_decode_each(gemini_context *const *contexts, int32_t n_contexts,
                                            const int32_t *tokens, float *logits_out)
{
    gemini_context *lead;
    int32_t i, j, vocab;
    if (contexts == NULL || tokens == NULL || n_contexts < 1)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_each: NULL or no "
                            "contexts");
    lead = contexts[0];
    if (lead == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_each: NULL context");
    vocab = lead->model->hparams.vocab_size;
    if (n_contexts > lead->n_batch)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_each: %d contexts, "
                            "more than n_batch (%d)", n_contexts, lead->n_batch);
    for (i = 0; i < n_contexts; i++) {
        gemini_context *ctx = contexts[i];
        gemini_result r = gemini__check_copy(ctx, lead, "gemini_decode_each");
        if (r != GEMINI_OK) return r;
        for (j = 0; j < i; j++)
            if (contexts[j] == ctx)
                return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_each: context "
                                    "%d is also context %d", i, j);
        if (lead->model->hparams.is_encoder_decoder && !ctx->has_audio)
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_each: no audio "
                                "encoded in context %d", i);
        if (ctx->position >= ctx->n_ctx)
            return gemini__fail(GEMINI_ERR_CONTEXT_FULL, "gemini_decode_each: context %d is "
                                "full (%d tokens)", i, ctx->n_ctx);
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_each: token %d "
                                "(index %d) is outside [0, %d)", tokens[i], i, vocab);
    }

    /* A backend keeps each context's cache where the lead's step cannot reach it: one
       context at a time then. */
    for (i = 0; i < n_contexts; i++)
        if (contexts[i]->has_backend && contexts[i]->backend.attention != NULL) break;
    if (i < n_contexts) {
        for (i = 0; i < n_contexts; i++)
            gemini__decode_steps(contexts[i], tokens + i, 1,
                                 logits_out ? logits_out + (int64_t)i * vocab : NULL, 0);
        return GEMINI_OK;
    }

    /* One step on the lead's activations and threads, each row in its own context. */
    lead->step_owners = contexts;
    gemini__forward_batch(lead, tokens, n_contexts, logits_out, 1);
    lead->step_owners = NULL;
    return GEMINI_OK;
}

/* ---- Images: SigLIP, the projectors, image prompts ------------------------------------------ */

/* Gemma 3's projector input: the tower's grid x grid rows averaged over k x k blocks (AvgPool2d
   with kernel = stride = k), side x side rows in row-major order, each then RMS-normed. */
static void gemini__pool_patches(const gemini_model *model, const float *patches, float *out)
{
    const gemini_model_hparams *hp = &model->hparams;
    int64_t dv = hp->vision_hidden, grid = hp->image_size / hp->patch_size, side, k, i;
    int64_t row, ky, kx;
    float inverse;
    for (side = 1; side * side < hp->image_tokens; side++)
        ;
    k = grid / side;
    inverse = 1.0f / (float)(k * k);
    for (row = 0; row < hp->image_tokens; row++) {
        int64_t ty = row / side, tx = row % side;
        float *sum = out + row * dv;
        for (i = 0; i < dv; i++) sum[i] = 0.0f;
        for (ky = 0; ky < k; ky++)
            for (kx = 0; kx < k; kx++) {
                const float *patch = patches + ((ty * k + ky) * grid + tx * k + kx) * dv;
                for (i = 0; i < dv; i++) sum[i] += patch[i];
            }
        for (i = 0; i < dv; i++) sum[i] *= inverse;
        gemini__rmsnorm(sum, sum, model->mm_soft_norm, dv, hp->vision_norm_eps);
    }
}

GEMINI_API gemini_result gemini_encode_image(gemini_context *ctx, const float *pixels,
                                             int32_t width, int32_t height)
{
    return gemini_encode_image_at(ctx, 0, pixels, width, height);
}

GEMINI_API gemini_result gemini_encode_image_at(gemini_context *ctx, int32_t slot,
                                                const float *pixels, int32_t width,
                                                int32_t height)
{
    const gemini_model *model;
    const gemini_model_hparams *hp;
    int64_t dv, d, P, grid, columns, row, c, y;
    float *rows;
    gemini__stack stack;
    int32_t layer;

    if (ctx == NULL || pixels == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_encode_image: NULL argument");
    model = ctx->model;
    hp = &model->hparams;
    if (!hp->has_vision)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_encode_image: this %s model "
                            "has no vision tower", hp->architecture);
    if (width != hp->image_size || height != hp->image_size)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_encode_image: a %d x %d image "
                            "given, the model reads %d x %d", width, height, hp->image_size,
                            hp->image_size);
    if (slot < 0 || slot >= ctx->n_images)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_encode_image: slot %d is "
                            "outside [0, %d) (gemini_context_params.n_images)", slot,
                            ctx->n_images);
    dv = hp->vision_hidden;
    d = hp->hidden_size;
    P = hp->patch_size;
    grid = hp->image_size / P;
    columns = 3 * P * P;
    rows = ctx->image_embd + (int64_t)slot * hp->image_tokens * d;

    /* patches as rows, in the order of the convolution's weight [Dv][3][P][P]: row
       gy * grid + gx holds pixel (c, gy * P + ky, gx * P + kx) at column (c * P + ky) * P + kx */
    for (row = 0; row < grid * grid; row++) {
        int64_t gy = row / grid, gx = row % grid;
        float *out = ctx->vis_columns + row * columns;
        for (c = 0; c < 3; c++)
            for (y = 0; y < P; y++)
                memcpy(out + (c * P + y) * P,
                       pixels + (c * hp->image_size + gy * P + y) * hp->image_size + gx * P,
                       (size_t)P * sizeof(float));
    }

    /* patch embedding (the convolution as one product), learned positions */
    gemini__linear(ctx, model->vis_patch, model->vis_patch_b, ctx->vis_columns, columns,
                   hp->image_patches, ctx->vis.x, dv);
    gemini__add_rows(ctx->vis.x, model->vis_pos, hp->image_patches, dv);

    /* pre-LN encoder blocks over all patches, final LayerNorm */
    stack.d = dv;
    stack.n_heads = hp->vision_heads;
    stack.head_dim = (int32_t)(dv / hp->vision_heads);
    stack.f = hp->vision_ffn;
    stack.norm_eps = hp->vision_norm_eps;
    for (layer = 0; layer < hp->vision_layers; layer++)
        gemini__block_forward(ctx, &ctx->vis, &model->vis_layers[layer], &stack, -1,
                              hp->image_patches, 0);
    gemini__norm_rows_eps(ctx->vis_out, ctx->vis.x, hp->image_patches, dv,
                          model->vis_post_norm, model->vis_post_norm_b, hp->vision_norm_eps);

    /* projector into the decoder's embedding space, not scaled (text rows get embed_scale):
       PaliGemma maps every patch linearly, with bias; Gemma 3 pools the patches to
       image_tokens rows, RMS-norms them and maps them without bias */
    if (model->mm_soft_norm != NULL) {
        gemini__pool_patches(model, ctx->vis_out, ctx->vis.xn);
        gemini__linear(ctx, model->mm_proj, NULL, ctx->vis.xn, dv, hp->image_tokens, rows, d);
    } else {
        gemini__linear(ctx, model->mm_proj, model->mm_proj_b, ctx->vis_out, dv,
                       hp->image_tokens, rows, d);
    }
    ctx->image_ready[slot] = 1;
    ctx->last_image = slot;
    return GEMINI_OK;
}

GEMINI_API const float *gemini_vision_output(const gemini_context *ctx, int32_t *n_rows,
                                             int32_t *dim)
{
    if (ctx == NULL || ctx->last_image < 0) return NULL;
    if (n_rows != NULL) *n_rows = ctx->model->hparams.image_patches;
    if (dim != NULL) *dim = ctx->model->hparams.vision_hidden;
    return ctx->vis_out;
}

GEMINI_API const float *gemini_image_embeddings(const gemini_context *ctx, int32_t *n_rows,
                                                int32_t *dim)
{
    const gemini_model_hparams *hp;
    if (ctx == NULL || ctx->last_image < 0) return NULL;
    hp = &ctx->model->hparams;
    if (n_rows != NULL) *n_rows = hp->image_tokens;
    if (dim != NULL) *dim = hp->hidden_size;
    return ctx->image_embd + (int64_t)ctx->last_image * hp->image_tokens * hp->hidden_size;
}

/* Finds the runs of image placeholders of a gemini_decode_prefix call and checks them; a
   Gemma 3 model's runs become bidirectional spans, after the prefix's. Sets *n_runs. */
static gemini_result gemini__image_runs(gemini_context *ctx, const int32_t *tokens,
                                        int32_t n_tokens, int32_t prefix_length,
                                        int32_t *n_runs)
{
    const gemini_model_hparams *hp = &ctx->model->hparams;
    int gemma3 = ctx->model->mm_soft_norm != NULL;
    int32_t i = 0, extent = prefix_length;

    *n_runs = 0;
    while (hp->has_vision && i < n_tokens) {
        int32_t begin = i;
        if (tokens[i] != hp->image_token_id) {
            i++;
            continue;
        }
        while (i < n_tokens && tokens[i] == hp->image_token_id) i++;
        if (i - begin != hp->image_tokens)
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_prefix: a run of "
                                "%d image placeholders at index %d, an image has %d rows",
                                i - begin, begin, hp->image_tokens);
        if (*n_runs >= ctx->n_images || !ctx->image_ready[*n_runs])
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_prefix: image %d "
                                "of the prompt, but slot %d holds no encoded image (call "
                                "gemini_encode_image_at; the context has %d slots)", *n_runs,
                                *n_runs, ctx->n_images);
        if (gemma3) {
            gemini__span *span = &ctx->spans[ctx->n_spans++];
            span->begin = begin;
            span->end = i;
            span->widen = 0;
            if (begin < prefix_length && i > extent) extent = i;
        }
        ++*n_runs;
    }

    /* the prefix and the images it holds are one step */
    if (extent > ctx->n_batch)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_prefix: the prefix "
                            "with the images it holds is %d tokens, more than n_batch %d",
                            extent, ctx->n_batch);
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_decode_prefix(gemini_context *ctx, const int32_t *tokens,
                                              int32_t n_tokens, int32_t prefix_length,
                                              float *logits_out, int all_logits)
{
    const gemini_model_hparams *hp;
    int32_t i, n_runs, vocab;
    gemini_result result;

    if (ctx == NULL || tokens == NULL || n_tokens < 1)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_prefix: NULL or no "
                            "tokens");
    hp = &ctx->model->hparams;
    vocab = hp->vocab_size;
    if (prefix_length < 0 || prefix_length > n_tokens || prefix_length > ctx->n_batch)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_prefix: prefix of %d "
                            "tokens for %d tokens and n_batch %d", prefix_length, n_tokens,
                            ctx->n_batch);
    if (hp->is_encoder_decoder && !ctx->has_audio)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_decode_prefix: no audio "
                            "encoded in this context (call gemini_encode_mel first)");
    if (n_tokens > ctx->n_ctx - ctx->position)
        return gemini__fail(GEMINI_ERR_CONTEXT_FULL, "%d tokens at position %d exceed the "
                            "context of %d", n_tokens, ctx->position, ctx->n_ctx);
    for (i = 0; i < n_tokens; i++) {
        if (hp->has_vision && tokens[i] == hp->image_token_id) continue;
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "token %d (index %d) is outside "
                                "[0, %d)", tokens[i], i, vocab);
    }

    /* the spans: the prefix (widening the window, as PaliGemma's), then Gemma 3's images */
    ctx->n_spans = 0;
    if (prefix_length > 0) {
        ctx->spans[0].begin = 0;
        ctx->spans[0].end = prefix_length;
        ctx->spans[0].widen = 1;
        ctx->n_spans = 1;
    }
    result = gemini__image_runs(ctx, tokens, n_tokens, prefix_length, &n_runs);
    if (result != GEMINI_OK) {
        ctx->n_spans = 0;
        return result;
    }

    /* the placeholders take the rows of slots 0, 1, ... in order: the slots lie back to back */
    ctx->image_next = n_runs != 0 ? 0 : -1;
    gemini__decode_steps(ctx, tokens, n_tokens, logits_out, all_logits);
    ctx->image_next = -1;
    return GEMINI_OK;
}

/* ---- Sampling -------------------------------------------------------------------------------- */

struct gemini_sampler {
    gemini_sampler_params params;
    int32_t n_vocab;
    uint64_t rng;                   /* splitmix64 state */
    int32_t *history;               /* (repetition_window) ring of recent tokens */
    int32_t history_count, history_next;
    float *logits;                  /* (n_vocab) penalised copy */
    int32_t *candidates;            /* (n_vocab) ids, best first */
    float *weights;                 /* (n_vocab) unnormalised probabilities of candidates */
};

GEMINI_API gemini_sampler_params gemini_sampler_default_params(void)
{
    gemini_sampler_params params;
    memset(&params, 0, sizeof params);
    params.temperature = 0.8f;
    params.top_k = 40;
    params.top_p = 0.95f;
    params.min_p = 0.05f;
    params.repetition_penalty = 1.0f;
    params.repetition_window = 64;
    params.seed = 0x5eed;
    return params;
}

GEMINI_API void gemini_sampler_free(gemini_sampler *sampler)
{
    if (sampler == NULL) return;
    GEMINI_FREE(sampler->history);
    GEMINI_FREE(sampler->logits);
    GEMINI_FREE(sampler->candidates);
    GEMINI_FREE(sampler->weights);
    GEMINI_FREE(sampler);
}

GEMINI_API gemini_result gemini_sampler_create(const gemini_sampler_params *params_in,
                                               int32_t n_vocab, gemini_sampler **out)
{
    gemini_sampler_params params;
    gemini_sampler *sampler;
    if (out != NULL) *out = NULL;
    if (out == NULL || n_vocab < 1)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_sampler_create: NULL out or "
                            "n_vocab %d", n_vocab);
    params = params_in != NULL ? *params_in : gemini_sampler_default_params();
    if (!(params.top_p >= 0.0f && params.top_p <= 1.0f) ||
        !(params.min_p >= 0.0f && params.min_p <= 1.0f) ||
        !(params.repetition_penalty > 0.0f) || params.temperature != params.temperature ||
        params.repetition_window < 0 || params.repetition_window > 65536)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "sampler parameter out of range "
                            "(top_p %g, min_p %g, penalty %g, window %d)", params.top_p,
                            params.min_p, params.repetition_penalty, params.repetition_window);
    sampler = (gemini_sampler *)GEMINI_MALLOC(sizeof(gemini_sampler));
    if (sampler == NULL) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory");
    memset(sampler, 0, sizeof *sampler);
    sampler->params = params;
    sampler->n_vocab = n_vocab;
    sampler->rng = params.seed;
    sampler->history = (int32_t *)GEMINI_MALLOC(sizeof(int32_t) *
                                                (size_t)(params.repetition_window + 1));
    sampler->logits = (float *)GEMINI_MALLOC(sizeof(float) * (size_t)n_vocab);
    sampler->candidates = (int32_t *)GEMINI_MALLOC(sizeof(int32_t) * (size_t)n_vocab);
    sampler->weights = (float *)GEMINI_MALLOC(sizeof(float) * (size_t)n_vocab);
    if (!sampler->history || !sampler->logits || !sampler->candidates || !sampler->weights) {
        gemini_sampler_free(sampler);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "no memory for a sampler");
    }
    *out = sampler;
    return GEMINI_OK;
}

GEMINI_API void gemini_sampler_accept(gemini_sampler *sampler, int32_t token)
{
    if (sampler == NULL || sampler->params.repetition_window == 0) return;
    sampler->history[sampler->history_next] = token;
    sampler->history_next = (sampler->history_next + 1) % sampler->params.repetition_window;
    if (sampler->history_count < sampler->params.repetition_window) sampler->history_count++;
}

/* splitmix64: a uniform double in [0, 1). */
static double gemini__random_unit(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Candidate order: higher logit first, lower id on ties. */
static int gemini__better(const float *logits, int32_t a, int32_t b)
{
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
}

/* Restores the heap below `root` (worst candidate at the root) within ids[0, n). */
static void gemini__sift_down(const float *logits, int32_t *ids, int32_t root, int32_t n)
{
    int32_t child, tmp;
    for (; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && gemini__better(logits, ids[child], ids[child + 1])) child++;
        if (!gemini__better(logits, ids[root], ids[child])) break;
        tmp = ids[root];
        ids[root] = ids[child];
        ids[child] = tmp;
    }
}

/* Sorts ids best first (heap sort: no recursion, no global state). */
static void gemini__sort_candidates(const float *logits, int32_t *ids, int32_t n)
{
    int32_t i, tmp;
    for (i = n / 2 - 1; i >= 0; i--) gemini__sift_down(logits, ids, i, n);
    for (i = n - 1; i > 0; i--) {
        tmp = ids[0];
        ids[0] = ids[i];
        ids[i] = tmp;
        gemini__sift_down(logits, ids, 0, i);
    }
}

/* sampler->logits = the logits with NaN as -inf, +inf as FLT_MAX, and the repetition penalty
   applied once per distinct recent token. */
static void gemini__penalised_logits(gemini_sampler *sampler, const float *logits_in)
{
    const gemini_sampler_params *p = &sampler->params;
    float *logits = sampler->logits;
    int32_t i, j;
    for (i = 0; i < sampler->n_vocab; i++) {
        float value = logits_in[i];
        logits[i] = value != value ? -INFINITY : value > FLT_MAX ? FLT_MAX : value;
    }
    if (p->repetition_penalty == 1.0f) return;
    for (i = 0; i < sampler->history_count; i++) {
        int32_t token = sampler->history[i], seen = 0;
        for (j = 0; j < i; j++) seen |= sampler->history[j] == token;
        if (seen || token < 0 || token >= sampler->n_vocab) continue;
        if (logits[token] > 0.0f) logits[token] /= p->repetition_penalty;
        else logits[token] *= p->repetition_penalty;
    }
}

/* Fills sampler->candidates best first (the top k, or every token at or above `threshold`)
   and their weights exp((l - max) / T); returns the count and sets *total to the normaliser
   (over the top k, or over every token). */
static int32_t gemini__collect_candidates(gemini_sampler *sampler, float max_logit,
                                          double threshold, double *total)
{
    const gemini_sampler_params *p = &sampler->params;
    const float *logits = sampler->logits;
    int32_t *candidates = sampler->candidates;
    int32_t n = 0, i, k = p->top_k;
    int use_top_k = k > 0 && k < sampler->n_vocab;
    double temperature = p->temperature;

    if (use_top_k) { /* partial selection: insertion into a sorted prefix of at most k */
        for (i = 0; i < sampler->n_vocab; i++) {
            int32_t at;
            if (logits[i] == -INFINITY) continue;
            if (n == k && !gemini__better(logits, i, candidates[n - 1])) continue;
            at = n < k ? n++ : k - 1;
            while (at > 0 && gemini__better(logits, i, candidates[at - 1])) {
                candidates[at] = candidates[at - 1];
                at--;
            }
            candidates[at] = i;
        }
    } else {
        for (i = 0; i < sampler->n_vocab; i++)
            if ((double)logits[i] >= threshold && logits[i] > -INFINITY) candidates[n++] = i;
        gemini__sort_candidates(logits, candidates, n);
    }

    *total = 0.0;
    for (i = 0; i < n; i++) {
        sampler->weights[i] = (float)exp((double)(logits[candidates[i]] - max_logit) /
                                         temperature);
        if (use_top_k) *total += sampler->weights[i];
    }
    if (!use_top_k) {
        for (i = 0; i < sampler->n_vocab; i++)
            if (logits[i] > -INFINITY)
                *total += exp((double)(logits[i] - max_logit) / temperature);
    }
    return n;
}

GEMINI_API gemini_result gemini_sample(gemini_sampler *sampler, const float *logits_in,
                                       int32_t *token_out)
{
    const gemini_sampler_params *p;
    const float *logits;
    int32_t n, i, best, kept;
    double total, threshold, cumulative, draw;

    if (sampler == NULL || logits_in == NULL || token_out == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_sample: NULL argument");
    p = &sampler->params;
    logits = sampler->logits;

    /* penalised copy */
    gemini__penalised_logits(sampler, logits_in);

    /* greedy: argmax, lowest id on ties */
    best = 0;
    for (i = 1; i < sampler->n_vocab; i++)
        if (logits[i] > logits[best]) best = i;
    if (p->temperature <= 0.0f || logits[best] == -INFINITY) {
        *token_out = best;
        gemini_sampler_accept(sampler, best);
        return GEMINI_OK;
    }

    /* candidates and their probabilities at temperature T */
    threshold = p->min_p > 0.0f
                    ? (double)logits[best] + (double)p->temperature * log((double)p->min_p)
                    : -INFINITY;
    n = gemini__collect_candidates(sampler, logits[best], threshold, &total);

    /* top-p: the shortest prefix whose probability reaches p */
    kept = n;
    if (p->top_p < 1.0f) {
        cumulative = 0.0;
        for (i = 0; i < n; i++) {
            cumulative += sampler->weights[i] / total;
            if (cumulative >= p->top_p) {
                kept = i + 1;
                break;
            }
        }
    }

    /* min-p: drop the tail below min_p * p(best) (the best always stays) */
    for (i = 1; i < kept; i++) {
        if ((double)logits[sampler->candidates[i]] < threshold) {
            kept = i;
            break;
        }
    }

    /* draw from the kept prefix, renormalised */
    total = 0.0;
    for (i = 0; i < kept; i++) total += sampler->weights[i];
    draw = gemini__random_unit(&sampler->rng) * total;
    cumulative = 0.0;
    best = sampler->candidates[kept - 1];
    for (i = 0; i < kept; i++) {
        cumulative += sampler->weights[i];
        if (draw < cumulative) {
            best = sampler->candidates[i];
            break;
        }
    }
    *token_out = best;
    gemini_sampler_accept(sampler, best);
    return GEMINI_OK;
}

/* ---- Chat template --------------------------------------------------------------------------- */

GEMINI_API gemini_result gemini_chat_user_turn(const char *user_text, char *out, size_t out_size,
                                               size_t *out_length)
{
    static const char prefix[] = "<start_of_turn>user\n";
    static const char suffix[] = "<end_of_turn>\n<start_of_turn>model\n";
    size_t text_length, length;
    if (user_text == NULL)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_chat_user_turn: NULL text");
    text_length = strlen(user_text);
    length = sizeof prefix - 1 + text_length + sizeof suffix - 1;
    if (out_length != NULL) *out_length = length;
    if (out == NULL || out_size < length + 1)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "gemini_chat_user_turn: the buffer "
                            "needs %llu bytes", (unsigned long long)(length + 1));
    memcpy(out, prefix, sizeof prefix - 1);
    memcpy(out + sizeof prefix - 1, user_text, text_length);
    memcpy(out + sizeof prefix - 1 + text_length, suffix, sizeof suffix);
    return GEMINI_OK;
}

#endif /* GEMINI_IMPLEMENTATION */
