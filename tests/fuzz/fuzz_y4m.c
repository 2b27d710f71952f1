/* fuzz_y4m.c - libFuzzer target for gemini_vision.h's Y4M (YUV4MPEG2) reader: the image path
   (gemini_vision_load_memory gives the first frame, then resize and preprocessing), then the
   video API on the same bytes: open, header info, even sampling and the conversion of the
   sampled frames plus the last one (at most 4 frames an input). */
#include "fuzz_vision_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gemini_vision_decode_params params = gemini_vision_decode_default_params();
    gemini_vision_video *video;
    const gemini_vision_video_info *info;
    int64_t indices[3];
    double seconds[3];
    int32_t n = 1 + (int32_t)(size % 3), i;
    gemini_vision_image image;

    fuzz_vision_decode(data, size, GEMINI_VISION_FORMAT_Y4M);

    params.max_pixels = (uint64_t)4 << 20;
    params.max_side = (size & 8) ? 64 : 0;
    if (gemini_vision_video_open_memory(data, size, &params, &video) != GEMINI_OK) return 0;
    info = gemini_vision_video_get_info(video);
    if (gemini_vision_video_sample(video, n, indices, seconds) == GEMINI_OK) {
        for (i = 0; i < n; i++) {
            if (gemini_vision_video_frame(video, indices[i], &image) == GEMINI_OK &&
                (image.width != info->width || image.height != info->height)) abort();
            gemini_vision_image_free(&image);
        }
        if (gemini_vision_video_frame(video, info->frame_count - 1, &image) != GEMINI_OK)
            abort();   /* every scanned frame must convert */
        gemini_vision_image_free(&image);
    } else if (info->frame_count != 0) {
        abort();
    }
    /* Out of range is refused, never read. */
    if (gemini_vision_video_frame(video, info->frame_count, &image) == GEMINI_OK) abort();
    gemini_vision_video_close(video);
    return 0;
}
