/* fuzz_gguf.c - libFuzzer target for the converter's GGUF reader: header, metadata, tensor
   infos, hyperparameters, the tokenizer.ggml.* vocabulary, the tensor plan and every
   dequantiser (the input is converted end to end, then the output is loaded). */
#include "fuzz_convert_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[256];
    fuzz_path(path, sizeof path, "input.gguf");
    fuzz_write_file(path, data, size);
    fuzz_convert_and_load(path);
    return 0;
}
