/* fuzz_json_config.c - libFuzzer target for the converter's JSON parser and config.json reader
   (cv_json_parse, cv_json_check_unique_keys, cv_hf_hparams), called on memory directly. */
#include "fuzz_convert_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_json json;
    cv_hparams *hp;
    if (cv_json_parse(&json, "config.json", (const char *)data, size) != GEMINI_OK) return 0;
    if (cv_jroot(&json)->type == CV_JOBJ) cv_json_check_unique_keys(&json, cv_jroot(&json));
    hp = (cv_hparams *)calloc(1, sizeof *hp);
    if (hp) {
        cv_hf_hparams(hp, &json);
        free(hp);
    }
    cv_json_free(&json);
    return 0;
}
