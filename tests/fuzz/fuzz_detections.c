/* fuzz_detections.c - libFuzzer target for gemini_vision_parse_detections, the parser of
   PaliGemma "detect" / "segment" answers. The input, up to its first NUL, is the answer text,
   copied to a buffer of exactly its length plus the NUL so that any read past the end is an
   ASan report; the image size comes from the input's length. It aborts when a box breaks the
   documented bounds: more boxes than 36-byte runs fit, <loc> or <seg> values past their
   ranges, pixels past the side, a label outside the text, different counts for different
   array sizes. */
#define GEMINI_VISION_IMPLEMENTATION
#include "../../gemini_vision.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gemini_vision_box boxes[4];
    int32_t n = 0, counted = 0, width = 1 + (int32_t)(size % 4099), k, j;
    int32_t height = (size & 1) ? INT32_MAX : 1 + (int32_t)(size % 97);
    size_t length = strnlen((const char *)data, size);
    char *text = (char *)malloc(length + 1);
    if (text == NULL) return 0;
    memcpy(text, data, length);
    text[length] = '\0';

    if (gemini_vision_parse_detections(text, width, height, boxes, 4, &n) != GEMINI_OK ||
        gemini_vision_parse_detections(text, width, height, NULL, 0, &counted) != GEMINI_OK ||
        n != counted || n < 0 || (size_t)n > length / 36)
        abort();
    for (k = 0; k < n && k < 4; k++) {
        const gemini_vision_box *b = &boxes[k];
        for (j = 0; j < 4; j++)
            if (b->loc[j] < 0 || b->loc[j] > 1023) abort();
        for (j = 0; j < 16; j++)
            if (b->seg[j] < 0 || b->seg[j] > 127 || (!b->has_mask && b->seg[j] != 0)) abort();
        if (b->x0 < 0 || b->x0 > width || b->x1 < 0 || b->x1 > width || b->y0 < 0 ||
            b->y0 > height || b->y1 < 0 || b->y1 > height)
            abort();
        if (b->label != NULL &&
            (b->label < text || b->label_length < 1 || b->label + b->label_length > text + length))
            abort();
        if (b->label == NULL && b->label_length != 0) abort();
    }
    free(text);
    return 0;
}
