/* fuzz_tokenizer_json.c - libFuzzer target for Hugging Face tokenizer.json readers: the
   library's gemini_tok_load_memory (then encode/decode with what it built) and the
   converter's cv_hf_tokenizer_json + cv_tokenizer_finish (input written to a file). */
#include "fuzz_convert_common.h"
#include "fuzz_tok_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gemini_tok *tok = NULL;
    cv_tokenizer cv_tok;
    char path[256];
    if (gemini_tok_load_memory(data, size, &tok) == GEMINI_OK) {
        fuzz_tok_exercise(tok);
        gemini_tok_free(tok);
    }
    fuzz_path(path, sizeof path, "tokenizer.json");
    fuzz_write_file(path, data, size);
    memset(&cv_tok, 0, sizeof cv_tok);
    if (cv_hf_tokenizer_json(&cv_tok, path, NULL) == GEMINI_OK && cv_tok.model)
        cv_tokenizer_finish(&cv_tok);
    cv_tokenizer_free(&cv_tok);
    return 0;
}
