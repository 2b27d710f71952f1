/* fuzz_safetensors.c - libFuzzer target for the converter's safetensors reader (8-byte length,
   JSON header, data offsets). The input becomes model.safetensors of a Hugging Face directory
   whose config.json matches the seed checkpoint (tests/fuzz/make_seeds.py), so inputs that
   parse go on through the tensor plan and the f32/f16/bf16 conversion. */
#include "fuzz_convert_common.h"

static const char fuzz_config[] =
    "{\"model_type\": \"gemma3_text\", \"hidden_size\": 32, \"intermediate_size\": 32,"
    " \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 1,"
    " \"head_dim\": 16, \"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-06,"
    " \"query_pre_attn_scalar\": 16, \"sliding_window\": 4, \"vocab_size\": 64,"
    " \"layer_types\": [\"sliding_attention\", \"full_attention\"],"
    " \"tie_word_embeddings\": true}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready = 0;
    char path[256];
    if (!ready) {
        fuzz_path(path, sizeof path, "config.json");
        fuzz_write_file(path, fuzz_config, sizeof fuzz_config - 1);
        ready = 1;
    }
    fuzz_path(path, sizeof path, "model.safetensors");
    fuzz_write_file(path, data, size);
    fuzz_convert_and_load(fuzz_scratch_dir());
    return 0;
}
