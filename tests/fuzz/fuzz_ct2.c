/* fuzz_ct2.c - libFuzzer target for the converter's CTranslate2 reader, cv_ct2_open (version,
   strings, ranks, dimensions, dtypes, byte counts, aliases, trailing bytes), and the Whisper
   steps after it: the renaming and row cuts of fused projections, the zero key-bias check, the
   scalars and the hyperparameters found from shapes, the plan and the writing. The input
   becomes model.bin of a directory whose config.json fits the seed (corpus/fuzz_ct2/tiny.bin,
   d 8, 1 + 1 layers, 16 ids, from tools/make_whisper_convert_fixtures.py); there is no
   tokenizer.json. A file that converts is loaded back with gemini_model_load and every CRC
   is checked. */
#include "fuzz_convert_common.h"

static const char fuzz_config[] =
    "{\"alignment_heads\": [[0, 1]], \"lang_ids\": [4, 5], \"suppress_ids\": [1, 2],"
    " \"suppress_ids_begin\": [3]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready = 0;
    static const gemini_type types[3] = {GEMINI_TYPE_F16, GEMINI_TYPE_Q8_0, GEMINI_TYPE_F32};
    char path[256], output[256];
    cv_options opt;
    gemini_model *model = NULL;
    if (!ready) {
        fuzz_path(path, sizeof path, "config.json");
        fuzz_write_file(path, fuzz_config, sizeof fuzz_config - 1);
        ready = 1;
    }
    fuzz_path(path, sizeof path, "model.bin");
    fuzz_write_file(path, data, size);
    fuzz_path(output, sizeof output, "out.gemini");

    /* The output type follows the input's length, so every path of the plan gets inputs. */
    memset(&opt, 0, sizeof opt);
    opt.output = output;
    opt.has_type = 1;
    opt.type = types[size % 3];
    cv_quiet = 1;
    if (cv_convert(fuzz_scratch_dir(), &opt) == GEMINI_OK) {
        if (gemini_model_load(output, &model) == GEMINI_OK) {
            gemini_model_verify(model);
            gemini_model_free(model);
        }
        remove(output);
    }
    return 0;
}
