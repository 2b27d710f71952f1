/* fuzz_gemini_model.c - libFuzzer target for the .gemini reader (gemini_model_load_memory).

   The directory CRC of every input is recomputed first (and data_size made to match the
   input), so mutations reach the metadata and tensor parsers instead of stopping at the
   checksum. A model that loads is then walked through its public accessors, its tokenizer is
   built and used, its tensors are verified, and one tiny decode step runs on it. */
#define GEMINI_IMPLEMENTATION
#define GEMINI_NO_THREADS
#include "../../gemini.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fuzz_rd64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void fuzz_wr32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void fuzz_wr64(unsigned char *p, uint64_t v)
{
    fuzz_wr32(p, (uint32_t)v);
    fuzz_wr32(p + 4, (uint32_t)(v >> 32));
}

/* Makes the header's data_size and dir_crc32 agree with the bytes (format.md §2.1). */
static void fix_header(unsigned char *file, size_t size)
{
    uint64_t dir_size, data_offset;
    if (size < 64) return;
    dir_size = fuzz_rd64(file + 32);
    data_offset = fuzz_rd64(file + 40);
    if (data_offset <= size) fuzz_wr64(file + 48, size - data_offset);
    if (dir_size <= size - 64) fuzz_wr32(file + 56, gemini_crc32(0, file + 64, (size_t)dir_size));
}

static void use_tokenizer(const gemini_model *model)
{
    gemini_tokenizer_desc desc;
    gemini_tok_spm_desc spm;
    gemini_tok *tok = NULL;
    static const char text[] = "Hello  world <bos>\xE2\x96\x81\xC3\xA9\xFF<end_of_turn>\n";
    int32_t ids[64], n = 0;
    char out[512];
    size_t out_len;
    if (gemini_model_tokenizer_desc(model, &desc) != GEMINI_OK) return;
    memset(&spm, 0, sizeof spm);
    spm.model_type = desc.model_length == 17 && memcmp(desc.model, "sentencepiece-bpe", 17) == 0
                         ? GEMINI_TOK_BPE : GEMINI_TOK_UNIGRAM;
    spm.n_pieces = desc.n_pieces;
    spm.pieces = desc.pieces;
    spm.piece_lengths = desc.piece_lengths;
    spm.scores = desc.scores;
    spm.types = desc.types;
    spm.unk_id = desc.unk_id;
    spm.bos_id = desc.bos_id;
    spm.eos_id = desc.eos_id;
    spm.pad_id = desc.pad_id;
    spm.add_dummy_prefix = desc.add_dummy_prefix;
    spm.remove_extra_whitespaces = desc.remove_extra_whitespaces;
    spm.escape_whitespaces = desc.escape_whitespaces;
    spm.treat_whitespace_as_suffix = desc.treat_whitespace_as_suffix;
    spm.byte_fallback = desc.byte_fallback;
    spm.charsmap = desc.charsmap;
    spm.charsmap_size = desc.charsmap_length;
    if (gemini_tok_create_spm(&spm, &tok) != GEMINI_OK) return;
    if (gemini_tok_encode(tok, text, sizeof text - 1,
                          GEMINI_TOK_ADD_BOS | GEMINI_TOK_ADD_EOS | GEMINI_TOK_PARSE_SPECIAL,
                          ids, 64, &n) == GEMINI_OK)
        gemini_tok_decode(tok, ids, (size_t)n, out, sizeof out, &out_len);
    gemini_tok_free(tok);
}

/* Whisper: encode a made-up log-mel window; PaliGemma / Gemma 3: a made-up image. Only for
   small models, so that one input stays well under the fuzzer's time limit. */
static void encode_inputs(const gemini_model *model, gemini_context *ctx)
{
    const gemini_model_hparams *hp = gemini_model_get_hparams(model);
    int64_t n, i;
    float *values;
    if (hp->is_encoder_decoder) {
        n = (int64_t)hp->n_mels * 2 * hp->audio_ctx;
        if (n > (1 << 16) || hp->audio_ctx > 256 ||
            (int64_t)hp->audio_ctx * hp->hidden_size * (hp->encoder_layers + 1) > (1 << 16))
            return;
        values = (float *)malloc((size_t)n * sizeof(float));
        if (values == NULL) return;
        for (i = 0; i < n; i++) values[i] = (float)(i % 7) * 0.25f - 0.75f;
        gemini_encode_mel(ctx, values, hp->n_mels, 2 * hp->audio_ctx);
        free(values);
    }
    if (hp->has_vision) {
        n = 3 * (int64_t)hp->image_size * hp->image_size;
        if (n > (1 << 16) || (int64_t)hp->image_size * hp->image_size * hp->vision_hidden >
                                 (1 << 18))
            return;
        values = (float *)malloc((size_t)n * sizeof(float));
        if (values == NULL) return;
        for (i = 0; i < n; i++) values[i] = (float)(i % 5) * 0.5f - 1.0f;
        gemini_encode_image(ctx, values, hp->image_size, hp->image_size);
        free(values);
    }
}

static void run_decode(const gemini_model *model)
{
    gemini_context_params params = gemini_context_default_params();
    gemini_context *ctx = NULL;
    gemini_sampler *sampler = NULL;
    uint64_t bytes = 0;
    int32_t vocab = gemini_model_vocab_size(model), tokens[2], next;
    float *logits;
    params.n_ctx = 4;
    params.n_batch = 2;
    params.n_threads = 1;
    if (vocab < 1 || vocab > (1 << 20)) return;
    if (gemini_context_memory_size(model, &params, &bytes) != GEMINI_OK || bytes > (64u << 20))
        return;
    if (gemini_context_create(model, &params, &ctx) != GEMINI_OK) return;
    encode_inputs(model, ctx);
    logits = (float *)malloc(2 * (size_t)vocab * sizeof(float));
    tokens[0] = 0;
    tokens[1] = vocab - 1;
    if (logits && gemini_decode(ctx, tokens, 2, logits, 1) == GEMINI_OK &&
        gemini_sampler_create(NULL, vocab, &sampler) == GEMINI_OK) {
        if (gemini_sample(sampler, logits, &next) == GEMINI_OK)
            gemini_decode(ctx, &next, 1, logits, 0);
        gemini_sampler_free(sampler);
    }
    free(logits);
    gemini_context_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *file = NULL;
    gemini_model *model = NULL;
    gemini_meta_info meta;
    gemini_tensor_info tensor;
    const char *str;
    size_t str_len;
    int64_t i, count, value;
    float f;
    if (size == 0 || posix_memalign((void **)&file, 64, size) != 0) return 0;
    memcpy(file, data, size);
    fix_header(file, size);
    if (gemini_model_load_memory(file, size, &model) == GEMINI_OK) {
        count = gemini_model_meta_count(model);
        for (i = 0; i < count; i++) gemini_model_meta_at(model, i, &meta);
        count = gemini_model_tensor_count(model);
        for (i = 0; i < count; i++) gemini_model_tensor_at(model, i, &tensor);
        gemini_model_meta_find(model, "general.architecture", &meta);
        gemini_model_meta_i64(model, "model.num_layers", &value);
        gemini_model_meta_f32(model, "model.rope_theta", &f);
        gemini_model_meta_str(model, "general.name", &str, &str_len);
        gemini_model_tensor_find(model, "token_embd", &tensor);
        gemini_model_get_hparams(model);
        gemini_model_architecture(model);
        gemini_model_verify(model);
        use_tokenizer(model);
        run_decode(model);
        gemini_model_free(model);
    }
    free(file);
    return 0;
}
