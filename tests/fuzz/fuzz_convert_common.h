/* fuzz_convert_common.h - pulls in convert/gemini-convert.c (its main renamed) for the targets
   that fuzz the converter's parsers, which read files: each input is written to a file in a
   private directory under /tmp first. */
#ifndef FUZZ_CONVERT_COMMON_H
#define FUZZ_CONVERT_COMMON_H

#define main gemini_convert_main
#include "../../convert/gemini-convert.c"
#undef main

#include "fuzz_util.h"

/* Runs the whole conversion of `input` (a GGUF file or an HF directory) into the scratch
   directory, then loads the result as a reader would. */
static void fuzz_convert_and_load(const char *input)
{
    char output[256];
    cv_options opt;
    gemini_model *model = NULL;
    memset(&opt, 0, sizeof opt);
    fuzz_path(output, sizeof output, "out.gemini");
    opt.output = output;
    cv_quiet = 1;
    if (cv_convert(input, &opt) == GEMINI_OK) {
        if (gemini_model_load(output, &model) == GEMINI_OK) {
            gemini_model_verify(model);
            gemini_model_free(model);
        }
        remove(output);
    }
}

#endif /* FUZZ_CONVERT_COMMON_H */
