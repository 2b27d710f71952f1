/* fuzz_wav.c - libFuzzer target for the WAV decoder (gemini_audio_load_wav_memory, and the
   callback path without a seek function), followed by resampling to 16 kHz and the Whisper
   log-mel front end on what decoded (both bounded so one input stays fast). */
#define GEMINI_AUDIO_IMPLEMENTATION
#include "../../gemini_audio.h"

#include <stdlib.h>
#include <string.h>

typedef struct fuzz_stream {
    const uint8_t *data;
    size_t size, position;
} fuzz_stream;

static size_t fuzz_read(void *user, void *buffer, size_t size)
{
    fuzz_stream *s = (fuzz_stream *)user;
    size_t n = s->size - s->position < size ? s->size - s->position : size;
    memcpy(buffer, s->data + s->position, n);
    s->position += n;
    return n;
}

static gemini_audio_mel *mel80;

static void use_audio(gemini_audio *audio)
{
    size_t frames;
    float *features;
    if (audio->sample_rate != 16000 &&
        gemini_audio_resample_length(audio->n_samples, audio->sample_rate, 16000) > 48000)
        return;
    if (gemini_audio_resample_to(audio, 16000) != GEMINI_OK) return;
    if (audio->n_samples <= 200) return;
    if (!mel80 && gemini_audio_mel_create(80, &mel80) != GEMINI_OK) return;
    frames = gemini_audio_log_mel_frames(audio->n_samples);
    features = (float *)malloc(80 * frames * sizeof(float));
    if (features) gemini_audio_log_mel(mel80, audio->samples, audio->n_samples, features);
    free(features);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gemini_audio audio;
    fuzz_stream stream;
    if (gemini_audio_load_wav_memory(data, size, &audio) == GEMINI_OK) {
        use_audio(&audio);
        gemini_audio_free(&audio);
    }
    stream.data = data;
    stream.size = size;
    stream.position = 0;
    if (gemini_audio_load_wav_callbacks(fuzz_read, NULL, &stream, &audio) == GEMINI_OK)
        gemini_audio_free(&audio);
    return 0;
}
