/* gemini_audio.h - WAV decoding, resampling to 16 kHz, the Whisper log-mel front end and
   Whisper's decoding rules and transcription loop; a single-file C99 library.

   Part of gemini.h, usable without it (it needs only gemini_tokenizer.h beside it, for the
   shared result codes). Do this in exactly one C or C++ file:

       #define GEMINI_AUDIO_IMPLEMENTATION
       #include "gemini_audio.h"

   The implementation also emits gemini_tokenizer.h's (the result strings and the last-error
   message) unless that was already emitted in the same file. So a program that uses gemini.h
   or gemini_tokenizer.h as well defines all the implementation macros in that one file (the
   headers may come in any order); in two files the shared part would be defined twice.

   Build macros
       GEMINI_STATIC                 make every function static (private to one file)
       GEMINI_MALLOC/REALLOC/FREE    override the allocator (define all three or none)
       GEMINI_AUDIO_MAX_SECONDS      longest audio a WAV may hold (default 14400 = 4 hours)
       GEMINI_AUDIO_MAX_DATA_BYTES   largest data chunk read (default 2 GiB)

   Quick start
       gemini_audio audio;
       gemini_audio_mel *mel;
       float features[80 * 3000];
       if (gemini_audio_load_wav("speech.wav", &audio) != GEMINI_OK)
           fprintf(stderr, "%s\n", gemini_last_error());
       gemini_audio_resample_to(&audio, 16000);
       gemini_audio_mel_create(80, &mel);
       gemini_audio_log_mel_30s(mel, audio.samples, audio.n_samples, features);
       gemini_audio_mel_free(mel);
       gemini_audio_free(&audio);

   What it does
       WAV (RIFF/WAVE) decoding from a path, a memory block or read/seek callbacks: PCM 8-bit
       unsigned, 16/24/32-bit signed, IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE, any channel
       count (mixed to mono by averaging), chunks in any order, odd-sized chunks with their pad
       byte, any sample rate. Samples come out as float in [-1, 1]: integers are divided by
       2^(bits-1) (8-bit: (x - 128) / 128), float samples are clamped (NaN becomes 0).

       Resampling between any two rates with a Kaiser-windowed sinc (96 zero crossings of the
       lower rate on each side, beta 8, -6 dB point at 0.955 of the lower Nyquist frequency).
       Positions are exact rationals, so nothing drifts; the weights are exact per phase when
       the rates' ratio has at most a few thousand phases (all the usual rates), else read from
       a finely tabulated kernel. Measured response going 48 -> 16 kHz: flat within 0.02 dB to
       7.45 kHz, -3 dB at 7.6 kHz, below -75 dB from 7.85 kHz and below -85 dB from 7.9 kHz;
       a 12 kHz tone aliases at -106 dB. Against soxr's VHQ resampler on real speech
       (espeak-ng clips, tests/audio), SNR to 16 kHz is 65 dB from 8 kHz, 64 dB from
       22.05 kHz, 60 dB from 44.1 kHz and 56-58 dB from 48 kHz; soxr's own HQ setting scores
       52-62 dB against VHQ on the same clips and scipy's resample_poly 28-36 dB (its -6 dB
       point sits at 8 kHz). What remains is the exact shape of the transition band just
       under 8 kHz. The test holds every clip to at least 50 dB. Cost on one core: about 0.1 s
       per 30 s of 48 or 44.1 kHz audio (1 s on the tabulated-kernel path).

       The Whisper log-mel front end as openai/whisper audio.py and the Hugging Face
       WhisperFeatureExtractor compute it: 16 kHz input, periodic Hann window of 400, hop 160,
       reflect padding of 200 on each side, power spectrum |X|^2 of a 400-point FFT of our
       own (mixed radix 4*4*5*5, double precision), Slaney-scale mel filters with Slaney area
       normalisation computed here (80 or 128 bins), log10 of max(x, 1e-10), clamp to
       (global max - 8), then (x + 4) / 4; the last STFT frame is dropped. Against the HF
       extractor (its numpy path) on speech, the largest difference over all 3000 frames is
       1.2e-7 for 80 and for 128 bins, and 1.2e-7 for the whole clip without the padding;
       the filters equal HF's mel_filter_bank to 6e-8 relative. The test allows 1e-4 (HF's
       torch path, which its public call takes when torch is installed, differs from its own
       numpy path by up to 3e-5). A 30 s window takes about 45 ms on one core, 31 ms of it in
       the FFT (a direct DFT of each frame would take 214 ms).

       Whisper transcription (openai/whisper 20250625's decoding.py and transcribe.py, checked
       against that code in tests/test_whisper.c): the SOT sequence and <|startofprev|> prompt
       (the last 223 tokens), SuppressBlank, SuppressTokens (the non-speech symbols computed
       from the tokenizer as the reference does, plus the task, start and no-speech tokens),
       ApplyTimestampRules (pairs, non-decreasing timestamps, a first timestamp of at most
       1 s, and timestamps when their summed probability beats every other token), the
       no-speech probability at <|startoftranscript|>, greedy decoding, beam search with
       patience, best-of-N sampling, ranking by length-normalised log probability, language
       detection on the first 30 s, temperature fallback (0, 0.2, ... 1.0) on a gzip ratio over
       2.4 or an average log probability under -1, the no-speech skip, seeking by the last
       timestamp pair (the unfinished text of a window is decoded again in the next one),
       prompts from the previous windows, and the txt/srt/vtt/tsv/json writers. The gzip ratio
       comes from a model of zlib's level-6 compressor that counts its output bytes exactly
       (equal to Python's zlib.compress on all 226 test texts). Transcribing with a .gemini
       model needs gemini.h included before this header in the implementation file (#define
       GEMINI_IMPLEMENTATION and GEMINI_AUDIO_IMPLEMENTATION, then #include "gemini.h" and
       "gemini_audio.h"); gemini_whisper_transcribe_with takes any decoder as callbacks.
       The beams or samples share one encoded window (gemini_context_share_audio) and each
       step decodes all of them in one pass (gemini_decode_each), which reads the weights
       once for all: 5 beams decode in about twice greedy's time (whisper-base on a Zen 4).
       Memory: the model's contexts, one per beam or sample (whisper-base: 132 MB for the
       first, which encodes; about 24 MB for each other, which shares its audio: peak RSS 373
       MB at beam 5 against 279 MB greedy), plus a 30 s mel window, the logits of each
       hypothesis and the token history; the log-mel is computed per window (after one pass
       over the audio for its maximum), not held for the whole file.

   Limitations
       - Whisper, against the reference: samples at temperature > 0 come from our own random
         generator, so fallback decodings differ from PyTorch's draws (greedy and beam search
         match); among equally likely tokens the lower id is taken; no word timestamps,
         clip_timestamps, hallucination_silence_threshold, carry_initial_prompt or prefix;
         languages by code only ("de", not "german"); an English-only model ignores a given
         language without a warning; a decoding of zero tokens is ranked by its sum, where
         the reference would divide by zero.
       - WAV only; compressed WAV formats (ADPCM, mu-law, A-law, MP3, ...) are refused.
       - RF64/BW64 (WAV over 4 GiB) is refused; a data chunk is read up to
         GEMINI_AUDIO_MAX_DATA_BYTES and the audio is capped at GEMINI_AUDIO_MAX_SECONDS.
       - Channel masks are ignored: every channel counts the same in the mono mix.
       - The resampler filters in one pass with the rates' exact ratio; it is not streaming.

   Thread safety: a gemini_audio_mel is read-only after creation; any number of threads may use
   one at once. A Whisper transcription uses its own contexts and buffers (the model may be
   shared); a gemini_whisper_result is read-only. Everything else works on the caller's
   buffers.
   Untrusted files: every header field is checked before use. Allocations follow the bytes
   actually read (the data buffer grows as they arrive), never a size the header claims, and
   a claimed size over GEMINI_AUDIO_MAX_DATA_BYTES is refused outright. A data chunk that ends
   early is decoded up to its last complete frame and marked `truncated`.
*/
#ifndef GEMINI_AUDIO_H
#define GEMINI_AUDIO_H

/* Guarded: gemini.h's implementation leaves GEMINI_TOKENIZER_IMPLEMENTATION defined, and a
   second inclusion would emit the tokenizer's implementation again. */
#ifndef GEMINI_TOKENIZER_H
#include "gemini_tokenizer.h"
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- WAV decoding ---------------------------------------------------------------------- */

/* Decoded audio: mono float samples in [-1, 1]. The library allocates `samples`; free them
   with gemini_audio_free. The format fields describe the file as it was. */
typedef struct gemini_audio {
    float *samples;             /* n_samples mono samples (NULL when n_samples is 0) */
    size_t n_samples;
    uint32_t sample_rate;       /* Hz */
    uint16_t channels;          /* channels in the file, before the mono mix */
    uint16_t bits_per_sample;   /* container bits: 8, 16, 24, 32 or 64 */
    uint16_t format;            /* 1 = PCM integer, 3 = IEEE float (after EXTENSIBLE) */
    uint16_t truncated;         /* 1 when the data chunk ended before its declared size */
} gemini_audio;

/* Reads up to `size` bytes into buffer; returns how many were read (0 at the end or on an
   error). */
typedef size_t (*gemini_audio_read_fn)(void *user, void *buffer, size_t size);
/* Moves `offset` bytes forward from the current position; returns 0 on success, nonzero when
   that is not possible (the decoder then stops reading chunks). */
typedef int (*gemini_audio_seek_fn)(void *user, uint64_t offset);

/* Decodes a WAV file. On success *out holds the audio (free it with gemini_audio_free). On
   failure *out is zeroed and the result is GEMINI_ERR_INVALID_ARGUMENT (NULL arguments),
   GEMINI_ERR_IO (the file cannot be opened or read), GEMINI_ERR_FORMAT (not RIFF/WAVE, a
   missing or malformed fmt or data chunk, inconsistent fields), GEMINI_ERR_UNSUPPORTED (a
   compressed format, named in the message; RF64) or GEMINI_ERR_OUT_OF_MEMORY (an allocation
   failed, or the audio exceeds GEMINI_AUDIO_MAX_SECONDS or GEMINI_AUDIO_MAX_DATA_BYTES). */
GEMINI_API gemini_result gemini_audio_load_wav(const char *path, gemini_audio *out);
/* The same from `size` bytes at data; the bytes are not kept. Same errors, without IO. */
GEMINI_API gemini_result gemini_audio_load_wav_memory(const void *data, size_t size,
                                                      gemini_audio *out);
/* The same from callbacks. seek may be NULL: skipped chunks are then read and discarded.
   Same errors; GEMINI_ERR_IO is never returned (a short read is the end of the stream). */
GEMINI_API gemini_result gemini_audio_load_wav_callbacks(gemini_audio_read_fn read,
                                                         gemini_audio_seek_fn seek, void *user,
                                                         gemini_audio *out);

/* Frees the samples and zeroes *audio (NULL and already-freed audio are fine). */
GEMINI_API void gemini_audio_free(gemini_audio *audio);

/* ---- Resampling ------------------------------------------------------------------------ */

/* Output length for n_in samples: ceil(n_in * rate_out / rate_in). 0 when a rate is 0 or the
   length would overflow. */
GEMINI_API size_t gemini_audio_resample_length(size_t n_in, uint32_t rate_in,
                                               uint32_t rate_out);

/* Resamples in[0..n_in) from rate_in to rate_out into out, which must hold out_capacity >=
   gemini_audio_resample_length(n_in, rate_in, rate_out) samples; that many are written.
   Output sample j sits at input time j * rate_in / rate_out; the signal is zero outside the
   input. Equal rates copy. in and out must not overlap. Errors: GEMINI_ERR_INVALID_ARGUMENT
   (NULL buffers with n_in > 0, a zero rate, out_capacity too small),
   GEMINI_ERR_OUT_OF_MEMORY (the filter table). */
GEMINI_API gemini_result gemini_audio_resample(const float *in, size_t n_in, uint32_t rate_in,
                                               float *out, size_t out_capacity,
                                               uint32_t rate_out);

/* Resamples audio->samples in place (a new allocation) to rate and sets audio->sample_rate.
   Nothing to do when the rate already matches. On failure the audio is unchanged; errors as
   gemini_audio_resample. */
GEMINI_API gemini_result gemini_audio_resample_to(gemini_audio *audio, uint32_t rate);

/* ---- Whisper log-mel front end --------------------------------------------------------- */

#define GEMINI_AUDIO_SAMPLE_RATE 16000   /* Whisper's input rate */
#define GEMINI_AUDIO_N_FFT 400
#define GEMINI_AUDIO_HOP 160
#define GEMINI_AUDIO_N_BINS 201          /* N_FFT / 2 + 1 */
#define GEMINI_AUDIO_CHUNK_SAMPLES 480000 /* 30 s */
#define GEMINI_AUDIO_CHUNK_FRAMES 3000

/* Mel filters, window and FFT tables for one mel size. Read-only once created. */
typedef struct gemini_audio_mel gemini_audio_mel;

/* Builds the front end for n_mels = 80 (Whisper tiny to large-v2) or 128 (large-v3).
   Errors: GEMINI_ERR_INVALID_ARGUMENT (another n_mels, out NULL), GEMINI_ERR_OUT_OF_MEMORY;
   *out is then NULL. */
GEMINI_API gemini_result gemini_audio_mel_create(int n_mels, gemini_audio_mel **out);
GEMINI_API void gemini_audio_mel_free(gemini_audio_mel *mel);   /* NULL is fine */
GEMINI_API int gemini_audio_mel_n_mels(const gemini_audio_mel *mel);

/* The dense filter bank, filters[m * 201 + k] for mel m and FFT bin k (bin k is 40k Hz), as
   Hugging Face's mel_filter_bank(201, n_mels, 0, 8000, 16000, "slaney", "slaney") makes it.
   filters must hold n_mels * 201 floats. Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL). */
GEMINI_API gemini_result gemini_audio_mel_filters(const gemini_audio_mel *mel, float *filters);

/* Frames produced for n_samples 16 kHz samples: n_samples / 160 (the STFT gives one more,
   which Whisper drops). */
GEMINI_API size_t gemini_audio_log_mel_frames(size_t n_samples);

/* Whisper's log-mel of the whole signal: out[m * n_frames + t] for mel m and frame t, with
   n_frames = gemini_audio_log_mel_frames(n_samples) and out holding n_mels * n_frames floats.
   The max - 8 clamp uses the maximum over these frames. This is openai's
   log_mel_spectrogram(audio); for its transcribe(), append 480000 zeros first.
   Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL pointers, n_samples <= 200, where reflect padding
   is not defined); nothing is written then. */
GEMINI_API gemini_result gemini_audio_log_mel(const gemini_audio_mel *mel, const float *samples,
                                              size_t n_samples, float *out);

/* The 30 s window a Whisper encoder takes, as the HF WhisperFeatureExtractor makes it: the
   signal is cut or padded with zeros to 480000 samples, then transformed; out holds
   n_mels * 3000 floats, out[m * 3000 + t]. samples may be NULL when n_samples is 0 (silence).
   Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL mel or out), GEMINI_ERR_OUT_OF_MEMORY. */
GEMINI_API gemini_result gemini_audio_log_mel_30s(const gemini_audio_mel *mel,
                                                  const float *samples, size_t n_samples,
                                                  float *out);

/* ---- Whisper transcription ------------------------------------------------------------- */

/* Whisper's decoding rules and long-audio loop as openai/whisper (version 20250625) runs them:
   decoding.py for one 30 s window (the SOT sequence and prompt, SuppressBlank, SuppressTokens,
   ApplyTimestampRules, the no-speech probability, greedy, sampling with best_of and beam
   search with patience, ranking by length-normalised log probability) and transcribe.py for
   the rest (language detection, temperature fallback on the gzip compression ratio and the
   average log probability, the no-speech skip, seeking by timestamps, prompts from the
   previous text). What differs from the reference is listed in the Limitations below.

   Two ways in. gemini_whisper_transcribe runs a Whisper .gemini model through gemini.h; it is
   declared and compiled only where gemini.h was included before this header. The core,
   gemini_whisper_transcribe_with, needs no gemini.h: it takes the vocabulary's special ids and
   a decoder given as callbacks (the tests drive it with a fake model). */

typedef enum gemini_whisper_task {
    GEMINI_WHISPER_TRANSCRIBE = 0,   /* speech to text in the spoken language */
    GEMINI_WHISPER_TRANSLATE = 1     /* speech to English text */
} gemini_whisper_task;

/* One transcribed segment. Pointers stay valid until gemini_whisper_result_free. */
typedef struct gemini_whisper_segment {
    double start, end;          /* seconds from the start of the audio */
    const char *text;           /* UTF-8, NUL-terminated, as decoded (usually a leading space);
                                   "" for a segment the reference clears (no text, or start ==
                                   end) */
    const int32_t *tokens;      /* its text and timestamp tokens (none when cleared) */
    int32_t n_tokens;
    int64_t seek;               /* first mel frame (10 ms) of the window it came from */
    float temperature;          /* of the decoding that was kept */
    double avg_logprob;         /* sum of the sampled tokens' log probabilities / (tokens + 1) */
    double compression_ratio;   /* of the whole window's text */
    double no_speech_prob;      /* probability of <|nospeech|> after <|startoftranscript|> */
} gemini_whisper_segment;

typedef struct gemini_whisper_result gemini_whisper_result;

/* Progress after each 30 s window: seconds of audio done out of the total. */
typedef void (*gemini_whisper_progress_fn)(void *user_data, double done_seconds,
                                           double total_seconds);
/* Each new segment as soon as its window is done; index counts from 0. */
typedef void (*gemini_whisper_segment_fn)(void *user_data, const gemini_whisper_segment *segment,
                                          int32_t index);

typedef struct gemini_whisper_params {
    const char *language;           /* "en", "de", ...; NULL, "" or "auto": detect it from the
                                       first 30 s (multilingual models; English-only models
                                       always use English). Default NULL */
    gemini_whisper_task task;       /* default GEMINI_WHISPER_TRANSCRIBE */
    int timestamps;                 /* 1: decode timestamp tokens and cut segments at them, the
                                       reference's default; 0: <|notimestamps|>, one segment per
                                       window. Default 1 */
    int32_t beam_size;              /* beams at temperature 0; 0 or 1: greedy. Default 5 */
    int32_t best_of;                /* samples drawn at temperature > 0, the best kept; 0 or 1:
                                       one. Default 5 */
    float patience;                 /* beam search stops once round(beam_size * patience)
                                       sequences ended; > 0. Default 1 */
    float length_penalty;           /* < 0: rank by sum of log probabilities / length (the
                                       reference's None); 0..1: by sum / ((5 + length) / 6)^alpha.
                                       Default -1 */
    const float *temperatures;      /* tried in order until a decoding passes; NULL: 0, 0.2,
                                       0.4, 0.6, 0.8, 1.0 */
    int32_t n_temperatures;
    float compression_ratio_threshold; /* fall back when the text's gzip ratio is above this;
                                          NAN: never. Default 2.4 */
    float logprob_threshold;        /* fall back when avg_logprob is below this; NAN: never.
                                       Default -1 */
    float no_speech_threshold;      /* a window whose no-speech probability is above this and
                                       whose avg_logprob is below logprob_threshold is silence:
                                       skipped, and no fallback; NAN: never. Default 0.6 */
    float silence_db;               /* a window none of whose 0.1 s blocks reaches this RMS
                                       level (dBFS, 0 = full scale) is skipped undecoded: no
                                       text for silence, where the reference's rules above can
                                       still return " you". Our addition; NAN: off. Default -60
                                       (-45 dBFS noise is left to the no-speech rule) */
    int condition_on_previous_text; /* 1: the previous windows' tokens prompt the next one
                                       (not after a temperature above 0.5). Default 1 */
    const char *initial_prompt;     /* text that prompts the first window; NULL: none */
    int suppress_blank;             /* 1: no blank or end at the first sampled step. Default 1 */
    int suppress_non_speech;        /* 1: suppress the reference's non-speech symbols (its
                                       suppress_tokens "-1"). Default 1 */
    const int32_t *suppress_tokens; /* more token ids to suppress at every step; may be NULL */
    int32_t n_suppress_tokens;
    float max_initial_timestamp;    /* seconds; the first timestamp is at most this. <= 0: no
                                       limit. Default 1 */
    int32_t sample_len;             /* most tokens sampled per window; 0: n_text_ctx / 2 (224) */
    uint64_t seed;                  /* for sampling at temperature > 0. Default 0x5eed */
    int32_t n_threads;              /* threads of each decoder context; 0: the library's
                                       default (gemini_context_default_params) */
    int32_t kv_type;                /* the decoder contexts' KV cache element type (self- and
                                       cross-attention), as gemini.h's gemini_type: 0 f32, 1
                                       f16, 2 bf16 (half the memory, faster; values rounded).
                                       gemini_whisper_transcribe only. Default 0 (f32) */
    gemini_whisper_progress_fn progress;    /* may be NULL */
    gemini_whisper_segment_fn on_segment;   /* may be NULL */
    void *user_data;                /* passed to both callbacks */
} gemini_whisper_params;

/* The defaults documented on each field: those of the reference's command line (beam 5,
   best_of 5, the six temperatures, thresholds 2.4 / -1 / 0.6). Cannot fail. */
GEMINI_API gemini_whisper_params gemini_whisper_default_params(void);

/* The token ids the rules need. -1 marks an absent token (only no_speech may be absent). */
typedef struct gemini_whisper_vocab {
    int32_t n_vocab;                /* logits per row */
    int32_t eot, sot, translate, transcribe, sot_lm, sot_prev, no_speech, no_timestamps;
    int32_t timestamp_begin;        /* <|0.00|>; timestamps run from here to n_vocab - 1 */
    int multilingual;               /* 1: the SOT sequence carries language and task */
    int32_t n_languages;
    const int32_t *language_ids;    /* [n_languages] <|en|>, <|zh|>, ... */
    const char *const *language_codes;  /* [n_languages] "en", "zh", ... */
    const gemini_tok *tokenizer;    /* text in and out; NULL: segments have no text and
                                       initial_prompt is refused */
    const int32_t *non_speech_tokens;  /* NULL: computed from the tokenizer as the reference's
                                          non_speech_tokens (none without a tokenizer) */
    int32_t n_non_speech_tokens;
    const int32_t *blank_tokens;    /* suppressed with eot at the first step; NULL: the
                                       tokenizer's encoding of " " (none without one) */
    int32_t n_blank_tokens;
} gemini_whisper_vocab;

/* A Whisper model as callbacks. Slots are independent decoder states (one per beam or
   sample) that share the encoded audio. Every callback returns GEMINI_OK or an error code
   after leaving a message for gemini_last_error. */
typedef struct gemini_whisper_decoder {
    void *user_data;
    int32_t n_mels;                 /* mel bins the encoder takes (80 or 128) */
    int32_t n_audio_ctx;            /* encoder positions (1500); 3000 must be a multiple */
    int32_t n_text_ctx;             /* decoder positions (448) */
    int32_t max_slots;              /* slots available, 1 .. GEMINI_WHISPER_MAX_SLOTS */
    /* Encodes a window, mel[m * 3000 + t], for all slots, and empties every slot. */
    gemini_result (*encode)(void *user_data, const float *mel);
    /* Appends n_tokens tokens to a slot's sequence and writes the last one's n_vocab logits. */
    gemini_result (*decode)(void *user_data, int32_t slot, const int32_t *tokens,
                            int32_t n_tokens, float *logits);
    /* Makes slot dst's sequence a copy of slot src's. */
    gemini_result (*copy)(void *user_data, int32_t dst, int32_t src);
    /* Empties a slot's sequence (the audio stays). */
    gemini_result (*reset)(void *user_data, int32_t slot);
    /* Optional (NULL: decode, one slot at a time): appends tokens[i] to the sequence of
       slots[i] for n_slots distinct slots in one pass and writes n_slots rows of n_vocab
       logits, row i for slots[i], as n_slots decode calls would. Beam search and sampling
       use it to read the weights once a step for all their sequences. */
    gemini_result (*decode_slots)(void *user_data, int32_t n_slots, const int32_t *slots,
                                  const int32_t *tokens, float *logits);
} gemini_whisper_decoder;

#define GEMINI_WHISPER_MAX_SLOTS 16

/* Transcribes n_samples 16 kHz mono samples. On success *out holds the result (free it with
   gemini_whisper_result_free); on failure *out is NULL and the result is
   GEMINI_ERR_INVALID_ARGUMENT (NULL arguments, a parameter out of range, an unknown language,
   inconsistent vocabulary ids, too few slots), GEMINI_ERR_OUT_OF_MEMORY, or whatever a
   callback returned. samples may be NULL when n_samples is 0. */
GEMINI_API gemini_result gemini_whisper_transcribe_with(const gemini_whisper_vocab *vocab,
                                                        const gemini_whisper_decoder *decoder,
                                                        const float *samples, size_t n_samples,
                                                        const gemini_whisper_params *params,
                                                        gemini_whisper_result **out);

/* Accessors; NULL result gives 0 / NULL / "". Segment pointers are valid until the free. */
GEMINI_API int32_t gemini_whisper_result_n_segments(const gemini_whisper_result *result);
GEMINI_API const gemini_whisper_segment *gemini_whisper_result_segment(
    const gemini_whisper_result *result, int32_t index);          /* NULL when out of range */
/* The language used: given, detected, or "en" for English-only models. */
GEMINI_API const char *gemini_whisper_result_language(const gemini_whisper_result *result);
/* Probability of the detected language (softmax over the language tokens); NAN when the
   language was given. */
GEMINI_API float gemini_whisper_result_language_prob(const gemini_whisper_result *result);
/* All text, decoded from every segment's tokens at once (the reference's "text"). */
GEMINI_API const char *gemini_whisper_result_text(const gemini_whisper_result *result);
GEMINI_API void gemini_whisper_result_free(gemini_whisper_result *result);   /* NULL is fine */

/* Output formats, as the reference's writers (whisper/utils.py) write them. */
typedef enum gemini_whisper_format_kind {
    GEMINI_WHISPER_FORMAT_TXT = 0,  /* each segment's stripped text on its own line */
    GEMINI_WHISPER_FORMAT_SRT = 1,  /* numbered cues, HH:MM:SS,mmm */
    GEMINI_WHISPER_FORMAT_VTT = 2,  /* WEBVTT, MM:SS.mmm (HH: from the first hour on) */
    GEMINI_WHISPER_FORMAT_TSV = 3,  /* start and end in integer ms, then the text */
    GEMINI_WHISPER_FORMAT_JSON = 4  /* {"text", "segments": [...], "language"}, ASCII only */
} gemini_whisper_format_kind;

/* Writes the result in a format and a terminating NUL into out when cap > length; *n_out
   (may be NULL) gets the length without the NUL. out == NULL with cap == 0 asks for the
   length. Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL result, unknown kind, out too small:
   *n_out still holds the length needed), GEMINI_ERR_OUT_OF_MEMORY. */
GEMINI_API gemini_result gemini_whisper_format(const gemini_whisper_result *result,
                                               gemini_whisper_format_kind kind, char *out,
                                               size_t cap, size_t *n_out);

/* The reference's format_timestamp: milliseconds rounded half to even, "MM:SS.mmm" with
   "HH:" in front when always_hours is set or there is a full hour; decimal_marker is '.' or
   ','. Writes at most cap bytes with a NUL; returns the length (snprintf's rule). Negative
   seconds count as 0. */
GEMINI_API int gemini_whisper_format_timestamp(double seconds, int always_hours,
                                               char decimal_marker, char *out, size_t cap);

/* len(text) / len(zlib.compress(text)) of len bytes, the reference's compression_ratio,
   without zlib (see the implementation for how the size is modelled); 0 for len 0 (as the
   reference: 0 / 8), NAN when out of memory. */
GEMINI_API float gemini_whisper_compression_ratio(const char *text, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* GEMINI_AUDIO_H */

/* The model-level entry point, declared wherever gemini.h came first (this block is outside
   the include guard so that including this header again after gemini.h adds it). */
#if defined(GEMINI_H) && !defined(GEMINI_AUDIO_WHISPER_MODEL_DECLARED)
#define GEMINI_AUDIO_WHISPER_MODEL_DECLARED
#ifdef __cplusplus
extern "C" {
#endif
/* Transcribes n_samples 16 kHz mono samples (gemini_audio_resample_to makes them) with a
   Whisper model (general.architecture "whisper"; the whisper.* keys of format.md). params
   NULL: the defaults. Decoder contexts (one per beam or sample, n_ctx = the model's
   max_position, params->n_threads threads) are created inside and freed before returning.
   Errors: GEMINI_ERR_INVALID_ARGUMENT (NULL arguments, not a Whisper model, a parameter out
   of range, an unknown language), GEMINI_ERR_MISSING_KEY / GEMINI_ERR_FORMAT (a whisper.* key
   absent or malformed), GEMINI_ERR_OUT_OF_MEMORY, and those of the gemini.h calls; *out is
   then NULL. */
GEMINI_API gemini_result gemini_whisper_transcribe(const gemini_model *model,
                                                   const float *samples_16k, size_t n_samples,
                                                   const gemini_whisper_params *params,
                                                   gemini_whisper_result **out);
#ifdef __cplusplus
}
#endif
#endif

/* ========================================================================================= */
#ifdef GEMINI_AUDIO_IMPLEMENTATION
#ifdef GEMINI_AUDIO_IMPLEMENTED
#error "gemini_audio.h: the implementation is included twice in one translation unit"
#endif
#define GEMINI_AUDIO_IMPLEMENTED

/* With GEMINI_STATIC every public function is static, and a program rarely calls them all. */
#if defined(GEMINI_STATIC) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

/* The shared result strings and last-error message live in gemini_tokenizer.h's
   implementation. The macro is withdrawn afterwards so that a gemini.h included later in the
   same file does not emit it twice. */
#ifndef GEMINI_TOKENIZER_IMPLEMENTED
#define GEMINI_TOKENIZER_IMPLEMENTATION
#include "gemini_tokenizer.h"
#undef GEMINI_TOKENIZER_IMPLEMENTATION
#endif

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GEMINI_AUDIO_MAX_SECONDS
#define GEMINI_AUDIO_MAX_SECONDS 14400
#endif
#ifndef GEMINI_AUDIO_MAX_DATA_BYTES
#define GEMINI_AUDIO_MAX_DATA_BYTES ((uint64_t)2 << 30)
#endif

#define GEMINI__AUDIO_PI 3.14159265358979323846

/* ---- Byte sources: memory, FILE, user callbacks ------------------------------------------ */

typedef struct gemini__audio_source {
    gemini_audio_read_fn read;
    gemini_audio_seek_fn seek;   /* may be NULL */
    void *user;
    uint64_t position;           /* bytes consumed so far, for messages */
} gemini__audio_source;

typedef struct gemini__audio_memory {
    const unsigned char *data;
    size_t size, position;
} gemini__audio_memory;

static size_t gemini__audio_memory_read(void *user, void *buffer, size_t size)
{
    gemini__audio_memory *m = (gemini__audio_memory *)user;
    size_t left = m->size - m->position;
    if (size > left) size = left;
    if (size) memcpy(buffer, m->data + m->position, size);
    m->position += size;
    return size;
}

static int gemini__audio_memory_seek(void *user, uint64_t offset)
{
    gemini__audio_memory *m = (gemini__audio_memory *)user;
    if (offset > (uint64_t)(m->size - m->position)) {
        m->position = m->size;
        return 1;
    }
    m->position += (size_t)offset;
    return 0;
}

static size_t gemini__audio_file_read(void *user, void *buffer, size_t size)
{
    return fread(buffer, 1, size, (FILE *)user);
}

static int gemini__audio_file_seek(void *user, uint64_t offset)
{
    /* fseek takes a long, which is 32 bits on some platforms: move in steps of 1 GiB. */
    while (offset > 0) {
        long step = offset > ((uint64_t)1 << 30) ? (long)1 << 30 : (long)offset;
        if (fseek((FILE *)user, step, SEEK_CUR) != 0) return 1;
        offset -= (uint64_t)step;
    }
    return 0;
}

/* Reads exactly size bytes; returns how many were read. */
static size_t gemini__audio_read(gemini__audio_source *src, void *buffer, size_t size)
{
    size_t done = 0;
    while (done < size) {
        size_t got = src->read(src->user, (unsigned char *)buffer + done, size - done);
        if (got == 0 || got > size - done) break;
        done += got;
    }
    src->position += done;
    return done;
}

/* Skips bytes forward; returns 0 when all were skipped. */
static int gemini__audio_skip(gemini__audio_source *src, uint64_t bytes)
{
    unsigned char scratch[4096];
    if (src->seek) {
        if (src->seek(src->user, bytes) != 0) return 1;
        src->position += bytes;
        return 0;
    }
    while (bytes > 0) {
        size_t step = bytes > sizeof scratch ? sizeof scratch : (size_t)bytes;
        if (gemini__audio_read(src, scratch, step) != step) return 1;
        bytes -= step;
    }
    return 0;
}

static uint16_t gemini__audio_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t gemini__audio_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* ---- WAV: the fmt chunk ------------------------------------------------------------------ */

#define GEMINI__AUDIO_TAG_PCM 0x0001
#define GEMINI__AUDIO_TAG_FLOAT 0x0003
#define GEMINI__AUDIO_TAG_EXTENSIBLE 0xFFFE

typedef struct gemini__audio_fmt {
    uint16_t tag;               /* 1 or 3 once EXTENSIBLE is resolved */
    uint16_t channels;
    uint32_t sample_rate;
    uint16_t block_align;       /* bytes per frame */
    uint16_t bits;              /* bits per sample as declared */
    uint16_t container_bytes;   /* block_align / channels */
} gemini__audio_fmt;

/* Names the usual non-PCM tags, so that a refusal says what the file was. */
static const char *gemini__audio_tag_name(unsigned tag)
{
    switch (tag) {
    case 0x0002: return "Microsoft ADPCM";
    case 0x0006: return "A-law";
    case 0x0007: return "mu-law";
    case 0x0011: return "IMA ADPCM";
    case 0x0022: return "TrueSpeech";
    case 0x0031: return "GSM 6.10";
    case 0x0050: return "MPEG audio";
    case 0x0055: return "MPEG Layer 3";
    case 0x0161: case 0x0162: case 0x0163: return "Windows Media Audio";
    case 0x00FF: case 0x1610: return "AAC";
    case 0x2000: return "AC-3";
    case 0xF1AC: return "FLAC";
    default: return "compressed or unknown";
    }
}

/* Parses and validates the fmt chunk body (size bytes at p, size >= 16). */
static gemini_result gemini__audio_parse_fmt(const unsigned char *p, uint32_t size,
                                             gemini__audio_fmt *fmt)
{
    /* The fixed tail of every KSDATAFORMAT_SUBTYPE GUID after its first two bytes (the tag). */
    static const unsigned char guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                                0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    unsigned tag = gemini__audio_u16(p);

    fmt->channels = gemini__audio_u16(p + 2);
    fmt->sample_rate = gemini__audio_u32(p + 4);
    fmt->block_align = gemini__audio_u16(p + 12);
    fmt->bits = gemini__audio_u16(p + 14);

    if (tag == GEMINI__AUDIO_TAG_EXTENSIBLE) {
        if (size < 40 || gemini__audio_u16(p + 16) < 22)
            return gemini__fail(GEMINI_ERR_FORMAT, "wav: WAVE_FORMAT_EXTENSIBLE fmt chunk of "
                                "%u bytes is too short (want 40)", (unsigned)size);
        if (memcmp(p + 26, guid_tail, sizeof guid_tail) != 0)
            return gemini__fail(GEMINI_ERR_UNSUPPORTED, "wav: WAVE_FORMAT_EXTENSIBLE with a "
                                "sub-format GUID that is not a standard format tag");
        tag = gemini__audio_u16(p + 24);
    }
    if (tag != GEMINI__AUDIO_TAG_PCM && tag != GEMINI__AUDIO_TAG_FLOAT)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "wav: format tag 0x%04X (%s) is not "
                            "supported; only PCM (1) and IEEE float (3)", tag,
                            gemini__audio_tag_name(tag));
    fmt->tag = (uint16_t)tag;

    if (fmt->channels == 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "wav: fmt says 0 channels");
    if (fmt->sample_rate == 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "wav: fmt says a sample rate of 0 Hz");
    if (fmt->block_align == 0 || fmt->block_align % fmt->channels != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "wav: block align %u is not a multiple of %u "
                            "channels", (unsigned)fmt->block_align, (unsigned)fmt->channels);
    fmt->container_bytes = (uint16_t)(fmt->block_align / fmt->channels);

    /* Samples sit left-justified in their container (the spec's rule for 12-, 20-bit...), so
       decoding by container size is right for any declared width that fits. */
    if (fmt->tag == GEMINI__AUDIO_TAG_PCM) {
        if (fmt->container_bytes < 1 || fmt->container_bytes > 4 || fmt->bits == 0 ||
            fmt->bits > 8u * fmt->container_bytes || fmt->bits <= 8u * (fmt->container_bytes - 1u))
            return gemini__fail(GEMINI_ERR_UNSUPPORTED, "wav: PCM with %u bits in %u-byte "
                                "samples is not supported (8, 16, 24 or 32 bits)",
                                (unsigned)fmt->bits, (unsigned)fmt->container_bytes);
    } else if (!((fmt->container_bytes == 4 && fmt->bits == 32) ||
                 (fmt->container_bytes == 8 && fmt->bits == 64))) {
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "wav: IEEE float with %u bits in %u-byte "
                            "samples is not supported (32 or 64)", (unsigned)fmt->bits,
                            (unsigned)fmt->container_bytes);
    }
    return GEMINI_OK;
}

/* ---- WAV: reading the data chunk --------------------------------------------------------- */

/* Reads up to `declared` bytes of a data chunk into a buffer that grows with what actually
   arrives, so a hostile size costs nothing. declared == UINT32_MAX means "to the end" (the
   value streaming writers leave). Sets *truncated when fewer bytes came than declared. */
static gemini_result gemini__audio_read_data(gemini__audio_source *src, uint64_t declared,
                                             unsigned char **data, size_t *size, int *truncated)
{
    size_t cap = 0, len = 0;
    unsigned char *buf = NULL;
    int to_end = declared == 0xFFFFFFFFu;

    if (!to_end && declared > GEMINI_AUDIO_MAX_DATA_BYTES)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "wav: data chunk of %llu bytes is over "
                            "the limit of %llu (GEMINI_AUDIO_MAX_DATA_BYTES)",
                            (unsigned long long)declared,
                            (unsigned long long)GEMINI_AUDIO_MAX_DATA_BYTES);
    if (to_end) declared = GEMINI_AUDIO_MAX_DATA_BYTES;

    while (len < declared) {
        size_t want, got;
        if (len == cap) {
            size_t grow = cap < ((size_t)1 << 16) ? ((size_t)1 << 16) : cap;
            unsigned char *bigger;
            if ((uint64_t)cap + grow > declared) grow = (size_t)(declared - cap);
            bigger = (unsigned char *)GEMINI_REALLOC(buf, cap + grow);
            if (!bigger) {
                GEMINI_FREE(buf);
                return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "wav: no memory for %llu bytes "
                                    "of data", (unsigned long long)(cap + grow));
            }
            buf = bigger;
            cap += grow;
        }
        want = cap - len;
        got = gemini__audio_read(src, buf + len, want);
        len += got;
        if (got < want) break;
    }
    if (to_end && len == declared) {
        unsigned char probe;
        if (gemini__audio_read(src, &probe, 1) == 1) {
            GEMINI_FREE(buf);
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "wav: open-ended data chunk is over "
                                "the limit of %llu bytes (GEMINI_AUDIO_MAX_DATA_BYTES)",
                                (unsigned long long)GEMINI_AUDIO_MAX_DATA_BYTES);
        }
    }
    *truncated = !to_end && len < declared;
    *data = buf;
    *size = len;
    return GEMINI_OK;
}

/* One sample of the container at p, as a double in [-1, 1]. */
static double gemini__audio_sample(const gemini__audio_fmt *fmt, const unsigned char *p)
{
    if (fmt->tag == GEMINI__AUDIO_TAG_FLOAT) {
        double v;
        if (fmt->container_bytes == 4) {
            uint32_t bits = gemini__audio_u32(p);
            float f;
            memcpy(&f, &bits, sizeof f);
            v = f;
        } else {
            uint64_t bits = (uint64_t)gemini__audio_u32(p) |
                            ((uint64_t)gemini__audio_u32(p + 4) << 32);
            memcpy(&v, &bits, sizeof v);
        }
        if (v != v) return 0.0;   /* NaN */
        return v > 1.0 ? 1.0 : v < -1.0 ? -1.0 : v;
    }
    switch (fmt->container_bytes) {
    case 1: return ((int)p[0] - 128) / 128.0;
    case 2: return (double)(int16_t)gemini__audio_u16(p) / 32768.0;
    case 3: {
        /* Sign-extend through the top of a 32-bit word without shifting a negative value. */
        uint32_t u = ((uint32_t)p[0] << 8) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 24);
        return (double)(int32_t)u / 2147483648.0;
    }
    default: return (double)(int32_t)gemini__audio_u32(p) / 2147483648.0;
    }
}

/* Turns raw frames into mono float samples. */
static gemini_result gemini__audio_decode(const gemini__audio_fmt *fmt, const unsigned char *data,
                                          size_t size, int truncated, gemini_audio *out)
{
    size_t n_frames = size / fmt->block_align, i;
    uint64_t max_frames = (uint64_t)GEMINI_AUDIO_MAX_SECONDS * fmt->sample_rate;
    float *samples = NULL;

    if (n_frames > max_frames)
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "wav: %llu frames at %u Hz are longer "
                            "than GEMINI_AUDIO_MAX_SECONDS (%u s)", (unsigned long long)n_frames,
                            (unsigned)fmt->sample_rate, (unsigned)GEMINI_AUDIO_MAX_SECONDS);
    if (n_frames > ((size_t)-1) / sizeof *samples)   /* only reachable with a 32-bit size_t */
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "wav: %llu frames do not fit in memory",
                            (unsigned long long)n_frames);
    if (n_frames > 0) {
        samples = (float *)GEMINI_MALLOC(n_frames * sizeof *samples);
        if (!samples)
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "wav: no memory for %llu samples",
                                (unsigned long long)n_frames);
    }

    for (i = 0; i < n_frames; i++) {
        const unsigned char *frame = data + i * fmt->block_align;
        double sum = 0.0;
        unsigned c;
        for (c = 0; c < fmt->channels; c++)
            sum += gemini__audio_sample(fmt, frame + (size_t)c * fmt->container_bytes);
        samples[i] = (float)(sum / fmt->channels);
    }

    out->samples = samples;
    out->n_samples = n_frames;
    out->sample_rate = fmt->sample_rate;
    out->channels = fmt->channels;
    out->bits_per_sample = (uint16_t)(8u * fmt->container_bytes);
    out->format = fmt->tag;
    /* A partial last frame also means the file was cut. */
    out->truncated = (uint16_t)(truncated || size % fmt->block_align != 0);
    return GEMINI_OK;
}

/* ---- WAV: the chunk walk ----------------------------------------------------------------- */

/* Chunks may come in any order (LIST or fmt after data); at most this many are looked at, so
   an endless stream of empty chunks ends. */
#define GEMINI__AUDIO_MAX_CHUNKS 65536

static gemini_result gemini__audio_load(gemini__audio_source *src, gemini_audio *out)
{
    unsigned char header[12], fmt_body[40];
    gemini__audio_fmt fmt;
    unsigned char *data = NULL;
    size_t data_size = 0;
    int have_fmt = 0, have_data = 0, truncated = 0, chunks = 0;
    gemini_result r;

    memset(&fmt, 0, sizeof fmt);

    /* RIFF header. Its size field is often wrong in the wild, so chunks are read until the
       data and fmt chunks are both found or the stream ends. */
    if (gemini__audio_read(src, header, 12) != 12)
        return gemini__fail(GEMINI_ERR_FORMAT, "wav: file of %llu bytes is too short for a "
                            "RIFF header", (unsigned long long)src->position);
    if (memcmp(header, "RF64", 4) == 0 || memcmp(header, "BW64", 4) == 0)
        return gemini__fail(GEMINI_ERR_UNSUPPORTED, "wav: RF64/BW64 files are not supported");
    if (memcmp(header, "RIFF", 4) != 0 || memcmp(header + 8, "WAVE", 4) != 0)
        return gemini__fail(GEMINI_ERR_FORMAT, "wav: not a RIFF/WAVE file");

    while (!(have_fmt && have_data)) {
        unsigned char chunk[8];
        uint32_t size;
        uint64_t padded;

        if (gemini__audio_read(src, chunk, 8) != 8) break;
        if (++chunks > GEMINI__AUDIO_MAX_CHUNKS) {
            GEMINI_FREE(data);
            return gemini__fail(GEMINI_ERR_FORMAT, "wav: more than %d chunks",
                                GEMINI__AUDIO_MAX_CHUNKS);
        }
        size = gemini__audio_u32(chunk + 4);
        padded = (uint64_t)size + (size & 1u);   /* odd chunks carry a pad byte */

        if (memcmp(chunk, "fmt ", 4) == 0) {
            uint32_t kept = size < sizeof fmt_body ? size : (uint32_t)sizeof fmt_body;
            if (have_fmt) {
                GEMINI_FREE(data);
                return gemini__fail(GEMINI_ERR_FORMAT, "wav: two fmt chunks");
            }
            if (size < 16) {
                GEMINI_FREE(data);
                return gemini__fail(GEMINI_ERR_FORMAT, "wav: fmt chunk of %u bytes is too "
                                    "short (want 16)", (unsigned)size);
            }
            if (gemini__audio_read(src, fmt_body, kept) != kept) {
                GEMINI_FREE(data);
                return gemini__fail(GEMINI_ERR_FORMAT, "wav: fmt chunk is cut off at byte %llu",
                                    (unsigned long long)src->position);
            }
            r = gemini__audio_parse_fmt(fmt_body, kept, &fmt);
            if (r != GEMINI_OK) {
                GEMINI_FREE(data);
                return r;
            }
            have_fmt = 1;
            if (!have_data && gemini__audio_skip(src, padded - kept) != 0) break;
        } else if (memcmp(chunk, "data", 4) == 0) {
            if (have_data) {   /* a second data chunk before fmt: only the first counts */
                if (gemini__audio_skip(src, padded) != 0) break;
                continue;
            }
            r = gemini__audio_read_data(src, size, &data, &data_size, &truncated);
            if (r != GEMINI_OK) return r;
            have_data = 1;
            if (truncated || size == 0xFFFFFFFFu) break;
            if (!have_fmt && (size & 1u) && gemini__audio_skip(src, 1) != 0) break;
        } else if (gemini__audio_skip(src, padded) != 0) {
            break;   /* a chunk that runs past the end: nothing more to find */
        }
    }

    if (!have_fmt) {
        GEMINI_FREE(data);
        return gemini__fail(GEMINI_ERR_FORMAT, "wav: no fmt chunk");
    }
    if (!have_data)
        return gemini__fail(GEMINI_ERR_FORMAT, "wav: no data chunk");
    r = gemini__audio_decode(&fmt, data, data_size, truncated, out);
    GEMINI_FREE(data);
    return r;
}

GEMINI_API gemini_result gemini_audio_load_wav_callbacks(gemini_audio_read_fn read,
                                                         gemini_audio_seek_fn seek, void *user,
                                                         gemini_audio *out)
{
    gemini__audio_source src;
    if (!out) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "wav: out is NULL");
    memset(out, 0, sizeof *out);
    if (!read) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "wav: read callback is NULL");
    src.read = read;
    src.seek = seek;
    src.user = user;
    src.position = 0;
    return gemini__audio_load(&src, out);
}

GEMINI_API gemini_result gemini_audio_load_wav_memory(const void *data, size_t size,
                                                      gemini_audio *out)
{
    gemini__audio_memory memory;
    if (!out) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "wav: out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && size > 0) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "wav: data is NULL");
    memory.data = (const unsigned char *)data;
    memory.size = data ? size : 0;
    memory.position = 0;
    return gemini_audio_load_wav_callbacks(gemini__audio_memory_read, gemini__audio_memory_seek,
                                           &memory, out);
}

GEMINI_API gemini_result gemini_audio_load_wav(const char *path, gemini_audio *out)
{
    FILE *file;
    gemini_result r;
    if (!out) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "wav: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "wav: path is NULL");
    file = fopen(path, "rb");
    if (!file) return gemini__fail(GEMINI_ERR_IO, "wav: cannot open %.400s", path);
    r = gemini_audio_load_wav_callbacks(gemini__audio_file_read, gemini__audio_file_seek, file,
                                        out);
    if (r == GEMINI_OK && ferror(file)) {
        gemini_audio_free(out);
        r = gemini__fail(GEMINI_ERR_IO, "wav: read error in %.400s", path);
    }
    fclose(file);
    return r;
}

GEMINI_API void gemini_audio_free(gemini_audio *audio)
{
    if (!audio) return;
    GEMINI_FREE(audio->samples);
    memset(audio, 0, sizeof *audio);
}

/* ---- Resampling -------------------------------------------------------------------------- */

/* The filter, with u a distance in periods of the lower of the two rates:
       h(u) = c sinc(c u) w(u / Z),  sinc(x) = sin(pi x) / (pi x),
   c the cutoff as a fraction of the lower Nyquist frequency and w a Kaiser window that reaches
   0 at Z zero crossings. Beta 8 puts the stopband near -80 dB; Z = 96 makes the transition
   band about 0.05 of Nyquist wide, so it runs from 0.93 to 0.98 around the cutoff (soxr's
   lies at 0.94 to 0.99). Output sample j is sum_k x[k] s h(s |t_j - k|), t_j = j rate_in /
   rate_out, with s = min(1, rate_out / rate_in) turning input periods into lower-rate ones;
   the factor s keeps the DC gain at 1. */
#define GEMINI__AUDIO_RS_ZEROS 96
#define GEMINI__AUDIO_RS_BETA 8.0
#define GEMINI__AUDIO_RS_CUTOFF 0.955
/* Exact weights per phase when phases * taps fit in this many floats (8 MiB); otherwise the
   kernel is read from a table of 512 points per zero crossing, interpolated linearly
   (error below 1e-5 of full scale). */
#define GEMINI__AUDIO_RS_MAX_WEIGHTS ((size_t)1 << 21)
#define GEMINI__AUDIO_RS_STEPS 512

static double gemini__audio_bessel_i0(double x)
{
    /* Power series; the terms shrink fast enough for x <= 20. */
    double sum = 1.0, term = 1.0, half = x / 2.0;
    int k;
    for (k = 1; k < 64; k++) {
        term *= (half / k) * (half / k);
        sum += term;
        if (term < sum * 1e-17) break;
    }
    return sum;
}

/* h(u) for u >= 0, exactly. */
static double gemini__audio_rs_kernel(double u)
{
    double r = u / GEMINI__AUDIO_RS_ZEROS, x = GEMINI__AUDIO_PI * GEMINI__AUDIO_RS_CUTOFF * u;
    double sinc = u == 0.0 ? 1.0 : sin(x) / x;
    if (r >= 1.0) return 0.0;
    return GEMINI__AUDIO_RS_CUTOFF * sinc *
           gemini__audio_bessel_i0(GEMINI__AUDIO_RS_BETA * sqrt(1.0 - r * r)) /
           gemini__audio_bessel_i0(GEMINI__AUDIO_RS_BETA);
}

static uint32_t gemini__audio_gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

GEMINI_API size_t gemini_audio_resample_length(size_t n_in, uint32_t rate_in, uint32_t rate_out)
{
    uint32_t g;
    uint64_t up, down, n;
    if (rate_in == 0 || rate_out == 0) return 0;
    g = gemini__audio_gcd(rate_in, rate_out);
    up = rate_out / g;
    down = rate_in / g;
    /* n_in * up must fit in 64 bits; 2^40 samples is far beyond any real input. */
    if ((uint64_t)n_in > ((uint64_t)1 << 40)) return 0;
    n = ((uint64_t)n_in * up + down - 1) / down;
    if (n > (uint64_t)((size_t)-1)) return 0;
    return (size_t)n;
}

/* The rational geometry of one conversion: output j sits at input time
   j * down / up = base + phase / up, and reads taps base - half + 1 .. base + half. */
typedef struct gemini__audio_rs_plan {
    uint64_t up, down;
    double scale;       /* s = min(1, rate_out / rate_in) */
    size_t half;        /* taps on each side: floor(Z / s) + 1 */
    float *weights;     /* (up, 2 * half) exact weights, or NULL */
    float *table;       /* the kernel at u = i / STEPS, used when weights is NULL */
} gemini__audio_rs_plan;

static int gemini__audio_rs_plan_init(gemini__audio_rs_plan *plan, uint32_t rate_in,
                                      uint32_t rate_out)
{
    uint32_t g = gemini__audio_gcd(rate_in, rate_out);
    size_t width, phase, i;

    plan->up = rate_out / g;
    plan->down = rate_in / g;
    plan->scale = rate_out < rate_in ? (double)rate_out / rate_in : 1.0;
    plan->half = (size_t)(GEMINI__AUDIO_RS_ZEROS / plan->scale) + 1;
    plan->weights = NULL;
    plan->table = NULL;
    width = 2 * plan->half;

    if (plan->up <= GEMINI__AUDIO_RS_MAX_WEIGHTS / width) {
        plan->weights = (float *)GEMINI_MALLOC((size_t)plan->up * width * sizeof(float));
        if (!plan->weights) return 0;
        for (phase = 0; phase < plan->up; phase++) {
            double frac = (double)phase / (double)plan->up;
            for (i = 0; i < width; i++) {
                /* Tap i reads input base - half + 1 + i, at distance |frac + half - 1 - i|. */
                double d = fabs(frac + (double)plan->half - 1.0 - (double)i);
                plan->weights[phase * width + i] =
                    (float)(plan->scale * gemini__audio_rs_kernel(d * plan->scale));
            }
        }
        return 1;
    }

    plan->table = (float *)GEMINI_MALLOC(
        ((size_t)GEMINI__AUDIO_RS_ZEROS * GEMINI__AUDIO_RS_STEPS + 2) * sizeof(float));
    if (!plan->table) return 0;
    for (i = 0; i < (size_t)GEMINI__AUDIO_RS_ZEROS * GEMINI__AUDIO_RS_STEPS + 2; i++)
        plan->table[i] = (float)gemini__audio_rs_kernel((double)i / GEMINI__AUDIO_RS_STEPS);
    return 1;
}

/* Output sample j. */
static float gemini__audio_rs_sample(const gemini__audio_rs_plan *plan, const float *in,
                                     size_t n_in, size_t j)
{
    uint64_t position = (uint64_t)j * plan->down;
    size_t base = (size_t)(position / plan->up), phase = (size_t)(position % plan->up);
    size_t width = 2 * plan->half, i, start = 0, end = width;
    const float *x;
    double acc = 0.0;

    /* Tap i reads in[base + 1 - half + i]; taps outside the input would read zeros, so the
       range is clipped, and x points at the first tap read. */
    if (base + 1 < plan->half) start = plan->half - 1 - base;
    if (base + plan->half >= n_in) end = n_in + plan->half - 1 - base;
    x = in + (base + 1 + start - plan->half);

    if (plan->weights) {
        /* Four float partial sums: independent chains the compiler can overlap or vectorise.
           Their rounding (about 1e-7 relative) is far below the filter's own -80 dB. */
        const float *w = plan->weights + phase * width;
        float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (i = start; i + 4 <= end; i += 4) {
            sum[0] += x[i - start] * w[i];
            sum[1] += x[i - start + 1] * w[i + 1];
            sum[2] += x[i - start + 2] * w[i + 2];
            sum[3] += x[i - start + 3] * w[i + 3];
        }
        for (; i < end; i++) sum[0] += x[i - start] * w[i];
        return (sum[0] + sum[1]) + (sum[2] + sum[3]);
    }
    for (i = start; i < end; i++) {
        double frac = (double)phase / (double)plan->up;
        double u = fabs(frac + (double)plan->half - 1.0 - (double)i) * plan->scale *
                   GEMINI__AUDIO_RS_STEPS;
        size_t k = (size_t)u;
        double t = u - (double)k;
        if (k >= (size_t)GEMINI__AUDIO_RS_ZEROS * GEMINI__AUDIO_RS_STEPS) continue;
        acc += x[i - start] * ((1.0 - t) * plan->table[k] + t * plan->table[k + 1]);
    }
    return (float)(acc * plan->scale);
}

GEMINI_API gemini_result gemini_audio_resample(const float *in, size_t n_in, uint32_t rate_in,
                                               float *out, size_t out_capacity,
                                               uint32_t rate_out)
{
    size_t n_out = gemini_audio_resample_length(n_in, rate_in, rate_out), j;
    gemini__audio_rs_plan plan;

    if (rate_in == 0 || rate_out == 0)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resample: a rate is 0 Hz");
    if (n_in > 0 && n_out == 0)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resample: %llu samples is too many",
                            (unsigned long long)n_in);
    if (n_in > 0 && (!in || !out))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resample: NULL buffer");
    if (out_capacity < n_out)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resample: output holds %llu samples, "
                            "needs %llu", (unsigned long long)out_capacity,
                            (unsigned long long)n_out);
    if (n_in == 0) return GEMINI_OK;
    if (rate_in == rate_out) {
        memcpy(out, in, n_in * sizeof *in);
        return GEMINI_OK;
    }

    if (!gemini__audio_rs_plan_init(&plan, rate_in, rate_out)) {
        GEMINI_FREE(plan.weights);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "resample: no memory for the filter");
    }
    for (j = 0; j < n_out; j++) out[j] = gemini__audio_rs_sample(&plan, in, n_in, j);
    GEMINI_FREE(plan.weights);
    GEMINI_FREE(plan.table);
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_audio_resample_to(gemini_audio *audio, uint32_t rate)
{
    size_t n_out;
    float *samples;
    gemini_result r;
    if (!audio) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resample: audio is NULL");
    if (rate == 0 || audio->sample_rate == 0)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resample: a rate is 0 Hz");
    if (rate == audio->sample_rate) return GEMINI_OK;
    n_out = gemini_audio_resample_length(audio->n_samples, audio->sample_rate, rate);
    if (audio->n_samples > 0 && n_out == 0)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "resample: too many samples");
    samples = NULL;
    if (n_out > 0) {
        if (n_out > ((size_t)-1) / sizeof *samples)
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "resample: too many samples");
        samples = (float *)GEMINI_MALLOC(n_out * sizeof *samples);
        if (!samples) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "resample: no memory");
    }
    r = gemini_audio_resample(audio->samples, audio->n_samples, audio->sample_rate, samples,
                              n_out, rate);
    if (r != GEMINI_OK) {
        GEMINI_FREE(samples);
        return r;
    }
    GEMINI_FREE(audio->samples);
    audio->samples = samples;
    audio->n_samples = n_out;
    audio->sample_rate = rate;
    return GEMINI_OK;
}

/* ---- FFT: 400 points, mixed radix -------------------------------------------------------- */

/* A recursive decimation-in-time FFT over the factors 4 * 4 * 5 * 5 = 400. Each level splits
   its n inputs into p interleaved sub-sequences, transforms them, and combines them with
   generic radix-p butterflies whose twiddles come from one table of the 400 roots of unity.
   About 7,200 complex multiplications per transform, against 80,000 for a direct DFT. */
#define GEMINI__AUDIO_FFT_LEVELS 4

static const int gemini__audio_fft_factors[GEMINI__AUDIO_FFT_LEVELS] = {4, 4, 5, 5};

typedef struct gemini__audio_complex {
    double re, im;
} gemini__audio_complex;

/* out[0..n) = DFT of in[0], in[stride], ..., using roots[k] = exp(-2 pi i k / 400). */
static void gemini__audio_fft(const gemini__audio_complex *roots, const gemini__audio_complex *in,
                              size_t stride, gemini__audio_complex *out, size_t n, int level)
{
    size_t p, m, j, q, k, root_step;
    gemini__audio_complex sums[5];

    if (n == 1) {
        out[0] = in[0];
        return;
    }
    p = (size_t)gemini__audio_fft_factors[level];
    m = n / p;
    root_step = GEMINI_AUDIO_N_FFT / n;

    /* Sub-transform j (of in[j], in[j + p], ...) lands in out[j * m .. j * m + m). */
    for (j = 0; j < p; j++)
        gemini__audio_fft(roots, in + j * stride, stride * p, out + j * m, m, level + 1);

    /* X[q m + k] = sum_j W_n^(j (q m + k)) Y_j[k]; the exponent steps by q m + k mod n. */
    for (k = 0; k < m; k++) {
        for (q = 0; q < p; q++) {
            double re = 0.0, im = 0.0;
            size_t step = q * m + k, exponent = 0;
            for (j = 0; j < p; j++) {
                const gemini__audio_complex *y = &out[j * m + k];
                const gemini__audio_complex *w = &roots[exponent * root_step];
                re += y->re * w->re - y->im * w->im;
                im += y->re * w->im + y->im * w->re;
                exponent += step;
                if (exponent >= n) exponent -= n;
            }
            sums[q].re = re;
            sums[q].im = im;
        }
        for (q = 0; q < p; q++) out[q * m + k] = sums[q];
    }
}

/* ---- Log-mel ----------------------------------------------------------------------------- */

struct gemini_audio_mel {
    int n_mels;
    double window[GEMINI_AUDIO_N_FFT];                /* periodic Hann */
    gemini__audio_complex roots[GEMINI_AUDIO_N_FFT];  /* exp(-2 pi i k / 400) */
    float *filters;      /* (n_mels, 201), dense */
    int *first, *last;   /* nonzero bins of filter m: first[m] .. last[m] inclusive */
};

/* The Slaney mel scale: linear below 1 kHz (3 mel per 200 Hz), logarithmic above. */
static double gemini__audio_hz_to_mel(double hz)
{
    if (hz < 1000.0) return 3.0 * hz / 200.0;
    return 15.0 + log(hz / 1000.0) * (27.0 / log(6.4));
}

static double gemini__audio_mel_to_hz(double mel)
{
    if (mel < 15.0) return 200.0 * mel / 3.0;
    return 1000.0 * exp((log(6.4) / 27.0) * (mel - 15.0));
}

/* Triangles between n_mels + 2 points evenly spaced in mel over [0, 8000 Hz], each scaled by
   2 / (its width in Hz) so that every filter has the same area (Slaney normalisation). */
static void gemini__audio_make_filters(gemini_audio_mel *mel)
{
    double edges[128 + 2];
    double mel_max = gemini__audio_hz_to_mel(8000.0);
    int n = mel->n_mels, m, k;

    /* As numpy.linspace: start + i * step, the last point exactly the end. */
    for (m = 0; m < n + 2; m++)
        edges[m] = gemini__audio_mel_to_hz(m == n + 1 ? mel_max : m * (mel_max / (n + 1)));

    for (m = 0; m < n; m++) {
        double lower = edges[m + 1] - edges[m], upper = edges[m + 2] - edges[m + 1];
        double area = 2.0 / (edges[m + 2] - edges[m]);
        mel->first[m] = GEMINI_AUDIO_N_BINS;
        mel->last[m] = -1;
        for (k = 0; k < GEMINI_AUDIO_N_BINS; k++) {
            double hz = k * (8000.0 / (GEMINI_AUDIO_N_BINS - 1));
            double rise = (hz - edges[m]) / lower, fall = (edges[m + 2] - hz) / upper;
            double v = rise < fall ? rise : fall;
            v = v > 0.0 ? v * area : 0.0;
            mel->filters[m * GEMINI_AUDIO_N_BINS + k] = (float)v;
            if (v > 0.0) {
                if (k < mel->first[m]) mel->first[m] = k;
                mel->last[m] = k;
            }
        }
    }
}

GEMINI_API gemini_result gemini_audio_mel_create(int n_mels, gemini_audio_mel **out)
{
    gemini_audio_mel *mel;
    int i;
    if (!out) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "mel: out is NULL");
    *out = NULL;
    if (n_mels != 80 && n_mels != 128)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "mel: %d mel bins (want 80 or 128)",
                            n_mels);
    mel = (gemini_audio_mel *)GEMINI_MALLOC(sizeof *mel);
    if (!mel) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "mel: no memory");
    mel->n_mels = n_mels;
    mel->filters = (float *)GEMINI_MALLOC((size_t)n_mels * GEMINI_AUDIO_N_BINS * sizeof(float));
    mel->first = (int *)GEMINI_MALLOC((size_t)n_mels * sizeof(int));
    mel->last = (int *)GEMINI_MALLOC((size_t)n_mels * sizeof(int));
    if (!mel->filters || !mel->first || !mel->last) {
        gemini_audio_mel_free(mel);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "mel: no memory");
    }

    for (i = 0; i < GEMINI_AUDIO_N_FFT; i++) {
        double angle = 2.0 * GEMINI__AUDIO_PI * i / GEMINI_AUDIO_N_FFT;
        mel->window[i] = 0.5 - 0.5 * cos(angle);
        mel->roots[i].re = cos(angle);
        mel->roots[i].im = -sin(angle);
    }
    gemini__audio_make_filters(mel);
    *out = mel;
    return GEMINI_OK;
}

GEMINI_API void gemini_audio_mel_free(gemini_audio_mel *mel)
{
    if (!mel) return;
    GEMINI_FREE(mel->filters);
    GEMINI_FREE(mel->first);
    GEMINI_FREE(mel->last);
    GEMINI_FREE(mel);
}

GEMINI_API int gemini_audio_mel_n_mels(const gemini_audio_mel *mel)
{
    return mel ? mel->n_mels : 0;
}

GEMINI_API gemini_result gemini_audio_mel_filters(const gemini_audio_mel *mel, float *filters)
{
    if (!mel || !filters) return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "mel: NULL argument");
    memcpy(filters, mel->filters, (size_t)mel->n_mels * GEMINI_AUDIO_N_BINS * sizeof(float));
    return GEMINI_OK;
}

GEMINI_API size_t gemini_audio_log_mel_frames(size_t n_samples)
{
    return n_samples / GEMINI_AUDIO_HOP;
}

/* Sample i of the signal after reflect padding by N_FFT / 2 on each side (needs n > 200):
   index -1 reads sample 1, index n reads sample n - 2, as numpy.pad(mode="reflect"). The
   signal is x[0..n_real) followed by zeros up to n (the silence Whisper appends). */
static float gemini__audio_reflect(const float *x, size_t n_real, size_t n, size_t padded_index)
{
    const size_t pad = GEMINI_AUDIO_N_FFT / 2;
    size_t i;
    if (padded_index < pad) i = pad - padded_index;
    else if (padded_index - pad >= n) i = 2 * (n - 1) - (padded_index - pad);
    else i = padded_index - pad;
    return i < n_real ? x[i] : 0.0f;
}

/* log10 of the mel energies (floored at 1e-10) of frames [t0, t1) of the signal above, into
   out[m * stride + t - t0] when out is not NULL; returns the largest value. */
static float gemini__audio_log_mel_raw(const gemini_audio_mel *mel, const float *x,
                                       size_t n_real, size_t n, size_t t0, size_t t1,
                                       float *out, size_t stride)
{
    gemini__audio_complex frame[GEMINI_AUDIO_N_FFT], spectrum[GEMINI_AUDIO_N_FFT];
    double power[GEMINI_AUDIO_N_BINS];
    const float silence = (float)log10(1e-10);
    float top = -1e30f;
    size_t t;
    int m, k;

    for (t = t0; t < t1; t++) {
        /* Windowed frame t: padded samples [t * hop, t * hop + 400), all inside the padded
           signal because t < n / hop. A frame wholly inside the appended silence has no
           energy at all. */
        size_t start = t * GEMINI_AUDIO_HOP;
        if (start >= n_real + GEMINI_AUDIO_N_FFT / 2) {
            for (m = 0; m < mel->n_mels && out; m++) out[(size_t)m * stride + t - t0] = silence;
            if (silence > top) top = silence;
            continue;
        }
        for (k = 0; k < GEMINI_AUDIO_N_FFT; k++) {
            frame[k].re = mel->window[k] * gemini__audio_reflect(x, n_real, n, start + (size_t)k);
            frame[k].im = 0.0;
        }

        /* Power spectrum of the one-sided FFT. */
        gemini__audio_fft(mel->roots, frame, 1, spectrum, GEMINI_AUDIO_N_FFT, 0);
        for (k = 0; k < GEMINI_AUDIO_N_BINS; k++)
            power[k] = spectrum[k].re * spectrum[k].re + spectrum[k].im * spectrum[k].im;

        /* Mel energies, then log10 with the 1e-10 floor. */
        for (m = 0; m < mel->n_mels; m++) {
            const float *filter = mel->filters + (size_t)m * GEMINI_AUDIO_N_BINS;
            double energy = 0.0;
            float value;
            for (k = mel->first[m]; k <= mel->last[m]; k++) energy += filter[k] * power[k];
            value = (float)log10(energy > 1e-10 ? energy : 1e-10);
            if (out) out[(size_t)m * stride + t - t0] = value;
            if (value > top) top = value;
        }
    }
    return top;
}

/* Whisper's dynamic range and scale: nothing more than 8 (80 dB) under the loudest value
   `top`, then (x + 4) / 4. */
static void gemini__audio_log_mel_scale(float *values, size_t count, float top)
{
    float floor_value = top - 8.0f;
    size_t i;
    for (i = 0; i < count; i++) {
        float value = values[i] > floor_value ? values[i] : floor_value;
        values[i] = (value + 4.0f) / 4.0f;
    }
}

/* The whole pipeline on n > 200 samples into out[m * n_frames + t]. */
static void gemini__audio_log_mel(const gemini_audio_mel *mel, const float *x, size_t n,
                                  float *out)
{
    size_t n_frames = gemini_audio_log_mel_frames(n);
    float top = gemini__audio_log_mel_raw(mel, x, n, n, 0, n_frames, out, n_frames);
    gemini__audio_log_mel_scale(out, (size_t)mel->n_mels * n_frames, top);
}

GEMINI_API gemini_result gemini_audio_log_mel(const gemini_audio_mel *mel, const float *samples,
                                              size_t n_samples, float *out)
{
    if (!mel || !samples || !out)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "log-mel: NULL argument");
    if (n_samples <= GEMINI_AUDIO_N_FFT / 2)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "log-mel: %llu samples are too few "
                            "for reflect padding (want more than 200)",
                            (unsigned long long)n_samples);
    gemini__audio_log_mel(mel, samples, n_samples, out);
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_audio_log_mel_30s(const gemini_audio_mel *mel,
                                                  const float *samples, size_t n_samples,
                                                  float *out)
{
    float *chunk;
    size_t kept = n_samples < GEMINI_AUDIO_CHUNK_SAMPLES ? n_samples : GEMINI_AUDIO_CHUNK_SAMPLES;
    if (!mel || !out || (!samples && n_samples > 0))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "log-mel: NULL argument");

    /* Cut or pad the waveform to exactly 30 s before the transform, as HF does. */
    chunk = (float *)GEMINI_MALLOC(GEMINI_AUDIO_CHUNK_SAMPLES * sizeof *chunk);
    if (!chunk) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "log-mel: no memory");
    if (kept) memcpy(chunk, samples, kept * sizeof *chunk);
    memset(chunk + kept, 0, (GEMINI_AUDIO_CHUNK_SAMPLES - kept) * sizeof *chunk);
    gemini__audio_log_mel(mel, chunk, GEMINI_AUDIO_CHUNK_SAMPLES, out);
    GEMINI_FREE(chunk);
    return GEMINI_OK;
}


/* ---- Whisper: the gzip compression ratio -------------------------------------------------- */

/* Whisper's fallback rule compares len(text) / len(zlib.compress(text)) with 2.4. The ratio
   needs only the compressed size, so what follows is a model of zlib's level-6 compressor that
   counts bits instead of writing them: the same lazy LZ77 parse (3-byte rolling hash of 15
   bits, chains of at most 128 candidates, quartered once a match reaches 8 bytes, no lazy
   search past 16, a match of 3 more than 4096 bytes back refused, position 0 never a match
   source because zlib's chains use 0 as "none"), blocks of 16383 symbols, Huffman code lengths
   built with zlib's heap order and depth tie-break and its rule for codes longer than 15 bits,
   the code-length code with its run-length symbols, and the choice among stored, fixed and
   dynamic blocks by their exact sizes. Sizes equal Python's zlib.compress (zlib 1.2.13) on
   every text in tests/whisper/zlib_sizes.txt; inputs over 32 KiB, where zlib slides its window,
   may differ by a few bytes. */

#define GEMINI__ZL_HEAP_SIZE 573      /* 2 * 286 + 1 */
#define GEMINI__ZL_MAX_DIST 32506     /* 32768 - (258 + 3 + 1) */
#define GEMINI__ZL_BLOCK_SYMBOLS 16383
#define GEMINI__ZL_HASH_SIZE 32768

static const uint8_t gemini__zl_length_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                    2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint8_t gemini__zl_dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                                  6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
                                                  13, 13};
static const uint8_t gemini__zl_bl_extra[19] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                0, 0, 0, 0, 0, 0, 2, 3, 7};
static const uint8_t gemini__zl_bl_order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                                11, 4, 12, 3, 13, 2, 14, 1, 15};

typedef struct gemini__zl_counts {
    uint32_t lit[286];      /* literal/length symbol frequencies of the current block */
    uint32_t dist[30];
    uint32_t n_symbols;
    uint64_t bits;          /* bits of the blocks already closed */
} gemini__zl_counts;

/* One Huffman tree as zlib's build_tree makes it. in: frequencies of `elems` symbols; out:
   lens[symbol]. Adds the coded size (with extra bits) to *opt_bits and, given the fixed code
   lengths, the fixed-code size to *static_bits. Returns the largest used symbol. */
typedef struct gemini__zl_tree {
    int elems, max_length, extra_base;
    const uint8_t *extra;            /* extra bits of symbols from extra_base on */
    const uint8_t *fixed_lens;       /* NULL for the code-length tree */
} gemini__zl_tree;

static int gemini__zl_smaller(const uint64_t *freq, const uint8_t *depth, int n, int m)
{
    return freq[n] < freq[m] || (freq[n] == freq[m] && depth[n] <= depth[m]);
}

static void gemini__zl_sift(int *heap, int heap_len, const uint64_t *freq, const uint8_t *depth,
                            int k)
{
    int v = heap[k], j = k << 1;
    while (j <= heap_len) {
        if (j < heap_len && gemini__zl_smaller(freq, depth, heap[j + 1], heap[j])) j++;
        if (gemini__zl_smaller(freq, depth, v, heap[j])) break;
        heap[k] = heap[j];
        k = j;
        j <<= 1;
    }
    heap[k] = v;
}

static int gemini__zl_build_tree(const gemini__zl_tree *tree, const uint32_t *count,
                                 uint8_t *lens, int64_t *opt_bits, int64_t *static_bits)
{
    uint64_t freq[GEMINI__ZL_HEAP_SIZE];
    int dad[GEMINI__ZL_HEAP_SIZE], node_len[GEMINI__ZL_HEAP_SIZE], heap[GEMINI__ZL_HEAP_SIZE];
    uint8_t depth[GEMINI__ZL_HEAP_SIZE];
    int bl_count[16], heap_len = 0, heap_max = GEMINI__ZL_HEAP_SIZE, max_code = -1;
    int n, m, h, node, bits, overflow = 0;

    for (n = 0; n < tree->elems; n++) {
        freq[n] = count[n];
        node_len[n] = 0;
        if (count[n]) {
            heap[++heap_len] = max_code = n;
            depth[n] = 0;
        }
    }

    /* Deflate wants at least two codes: zlib adds symbols 0 and 1 (or 0) with frequency 1
       and takes their cost back out of the totals. */
    while (heap_len < 2) {
        node = heap[++heap_len] = max_code < 2 ? ++max_code : 0;
        freq[node] = 1;
        depth[node] = 0;
        *opt_bits -= 1;
        if (tree->fixed_lens) *static_bits -= tree->fixed_lens[node];
    }
    for (n = heap_len / 2; n >= 1; n--) gemini__zl_sift(heap, heap_len, freq, depth, n);

    /* Join the two least frequent nodes until one is left; the heap's tail records the
       nodes from the root down, which gen_bitlen walks. */
    node = tree->elems;
    do {
        n = heap[1];
        heap[1] = heap[heap_len--];
        gemini__zl_sift(heap, heap_len, freq, depth, 1);
        m = heap[1];
        heap[--heap_max] = n;
        heap[--heap_max] = m;
        freq[node] = freq[n] + freq[m];
        depth[node] = (uint8_t)((depth[n] >= depth[m] ? depth[n] : depth[m]) + 1);
        dad[n] = dad[m] = node;
        heap[1] = node++;
        gemini__zl_sift(heap, heap_len, freq, depth, 1);
    } while (heap_len >= 2);
    heap[--heap_max] = heap[1];

    /* Code lengths from the root down, capped at max_length. */
    memset(bl_count, 0, sizeof bl_count);
    node_len[heap[heap_max]] = 0;
    for (h = heap_max + 1; h < GEMINI__ZL_HEAP_SIZE; h++) {
        int extra_bits = 0;
        n = heap[h];
        bits = node_len[dad[n]] + 1;
        if (bits > tree->max_length) {
            bits = tree->max_length;
            overflow++;
        }
        node_len[n] = bits;
        if (n > max_code) continue;
        bl_count[bits]++;
        if (n >= tree->extra_base) extra_bits = tree->extra[n - tree->extra_base];
        *opt_bits += (int64_t)freq[n] * (bits + extra_bits);
        if (tree->fixed_lens) *static_bits += (int64_t)freq[n] * (tree->fixed_lens[n] + extra_bits);
    }

    /* Too long codes: zlib moves leaves down until the lengths form a valid code again, then
       hands the lengths out again from the longest, in the heap's order. */
    if (overflow > 0) {
        do {
            bits = tree->max_length - 1;
            while (bl_count[bits] == 0) bits--;
            bl_count[bits]--;
            bl_count[bits + 1] += 2;
            bl_count[tree->max_length]--;
            overflow -= 2;
        } while (overflow > 0);
        h = GEMINI__ZL_HEAP_SIZE;
        for (bits = tree->max_length; bits != 0; bits--) {
            n = bl_count[bits];
            while (n != 0) {
                m = heap[--h];
                if (m > max_code) continue;
                if (node_len[m] != bits) {
                    *opt_bits += ((int64_t)bits - node_len[m]) * (int64_t)freq[m];
                    node_len[m] = bits;
                }
                n--;
            }
        }
    }
    for (n = 0; n < tree->elems; n++) lens[n] = (uint8_t)node_len[n];
    return max_code;
}

/* Counts the code-length symbols (with zlib's runs: 16 repeats the previous length 3-6 times,
   17 and 18 give 3-10 and 11-138 zeros) needed to send lens[0..max_code]. */
static void gemini__zl_scan_lengths(const uint8_t *lens, int max_code, uint32_t *bl_freq)
{
    int n, prev_len = -1, count = 0, max_count = 7, min_count = 4;
    int next_len = lens[0];
    if (next_len == 0) max_count = 138, min_count = 3;
    for (n = 0; n <= max_code; n++) {
        int cur_len = next_len;
        next_len = n + 1 <= max_code ? lens[n + 1] : 0xffff;
        if (++count < max_count && cur_len == next_len) continue;
        if (count < min_count) bl_freq[cur_len] += (uint32_t)count;
        else if (cur_len != 0) {
            if (cur_len != prev_len) bl_freq[cur_len]++;
            bl_freq[16]++;
        } else if (count <= 10) bl_freq[17]++;
        else bl_freq[18]++;
        count = 0;
        prev_len = cur_len;
        if (next_len == 0) max_count = 138, min_count = 3;
        else if (cur_len == next_len) max_count = 6, min_count = 3;
        else max_count = 7, min_count = 4;
    }
}

/* Closes the current block of stored_len input bytes: adds the size of the smallest of
   zlib's three encodings of it to c->bits and starts a new block. */
static void gemini__zl_close_block(gemini__zl_counts *c, size_t stored_len)
{
    static uint8_t fixed_lit[288], fixed_dist[30];
    gemini__zl_tree lit_tree = {286, 15, 257, gemini__zl_length_extra, fixed_lit};
    gemini__zl_tree dist_tree = {30, 15, 0, gemini__zl_dist_extra, fixed_dist};
    gemini__zl_tree bl_tree = {19, 7, 0, gemini__zl_bl_extra, NULL};
    uint8_t lit_lens[286], dist_lens[30], bl_lens[19];
    uint32_t bl_freq[19];
    int64_t opt_bits = 0, static_bits = 0, ignored = 0;
    int lit_max, dist_max, max_blindex, n;
    int64_t opt_bytes, static_bytes;

    /* The fixed code: literals 0-143 8 bits, 144-255 9, 256-279 7, 280-287 8; distances 5. */
    for (n = 0; n < 288; n++) fixed_lit[n] = (uint8_t)(n < 144 ? 8 : n < 256 ? 9 : n < 280 ? 7 : 8);
    for (n = 0; n < 30; n++) fixed_dist[n] = 5;

    c->lit[256] = 1;   /* the end-of-block symbol */
    lit_max = gemini__zl_build_tree(&lit_tree, c->lit, lit_lens, &opt_bits, &static_bits);
    dist_max = gemini__zl_build_tree(&dist_tree, c->dist, dist_lens, &opt_bits, &static_bits);

    /* The code-length code, and the header: HLIT, HDIST, HCLEN and 3 bits per sent length. */
    memset(bl_freq, 0, sizeof bl_freq);
    gemini__zl_scan_lengths(lit_lens, lit_max, bl_freq);
    gemini__zl_scan_lengths(dist_lens, dist_max, bl_freq);
    gemini__zl_build_tree(&bl_tree, bl_freq, bl_lens, &opt_bits, &ignored);
    for (max_blindex = 18; max_blindex >= 3; max_blindex--)
        if (bl_lens[gemini__zl_bl_order[max_blindex]] != 0) break;
    opt_bits += 3 * ((int64_t)max_blindex + 1) + 5 + 5 + 4;

    /* zlib compares byte counts that include the 3-bit block header. */
    opt_bytes = (opt_bits + 3 + 7) >> 3;
    static_bytes = (static_bits + 3 + 7) >> 3;
    if (static_bytes <= opt_bytes) opt_bytes = static_bytes;
    if ((int64_t)stored_len + 4 <= opt_bytes)
        c->bits = ((c->bits + 3 + 7) & ~(uint64_t)7) + 32 + 8 * (uint64_t)stored_len;
    else if (static_bytes == opt_bytes) c->bits += 3 + (uint64_t)static_bits;
    else c->bits += 3 + (uint64_t)opt_bits;

    memset(c->lit, 0, sizeof c->lit);
    memset(c->dist, 0, sizeof c->dist);
    c->n_symbols = 0;
}

static int gemini__zl_literal(gemini__zl_counts *c, uint8_t byte)
{
    c->lit[byte]++;
    return ++c->n_symbols == GEMINI__ZL_BLOCK_SYMBOLS;
}

static int gemini__zl_match(gemini__zl_counts *c, size_t distance, int length)
{
    static const uint16_t length_base[29] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24,
                                             28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160,
                                             192, 224, 255};
    static const uint16_t dist_base[30] = {0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128,
                                           192, 256, 384, 512, 768, 1024, 1536, 2048, 3072,
                                           4096, 6144, 8192, 12288, 16384, 24576};
    int code = 28, extra = length - 3;
    if (extra != 255)
        for (code = 27; length_base[code] > extra; code--) {}
    c->lit[257 + code]++;
    for (code = 29; dist_base[code] > distance - 1; code--) {}
    c->dist[code]++;
    return ++c->n_symbols == GEMINI__ZL_BLOCK_SYMBOLS;
}

/* zlib's longest_match: the longest string at `scan` that an earlier position on the hash
   chain from cur_match repeats, longer than best_len; *match_start gets its position. */
static int gemini__zl_longest_match(const uint8_t *w, const uint32_t *prev, size_t scan,
                                    size_t lookahead, size_t cur_match, int best_len,
                                    size_t *match_start)
{
    unsigned chain = 128;
    size_t nice = lookahead < 128 ? lookahead : 128;
    size_t limit = scan > GEMINI__ZL_MAX_DIST ? scan - GEMINI__ZL_MAX_DIST : 0;
    if (best_len >= 8) chain >>= 2;
    do {
        const uint8_t *a = w + scan, *b = w + cur_match;
        int len;
        if (b[best_len] != a[best_len] || b[best_len - 1] != a[best_len - 1] || b[0] != a[0] ||
            b[1] != a[1])
            continue;
        for (len = 2; len < 258 && a[len] == b[len]; len++) {}
        if (len > best_len) {
            *match_start = cur_match;
            best_len = len;
            if ((size_t)len >= nice) break;
        }
    } while ((cur_match = prev[cur_match]) > limit && --chain != 0);
    return (size_t)best_len <= lookahead ? best_len : (int)lookahead;
}

/* Bytes zlib.compress(data) (level 6) returns: 2 header bytes, the deflate stream and the
   4-byte Adler-32. 0 when out of memory. */
static size_t gemini__zlib_compressed_size(const void *data, size_t n)
{
    uint8_t *w;
    uint32_t *head, *prev;
    gemini__zl_counts counts;
    size_t strstart = 0, lookahead = n, block_start = 0, match_start = 0, prev_match;
    int match_length = 2, prev_length, match_available = 0;

    /* The window with zlib's 258 zero bytes past the end, which matches may read. */
    w = (uint8_t *)GEMINI_MALLOC(n + 260);
    head = (uint32_t *)GEMINI_MALLOC(GEMINI__ZL_HASH_SIZE * sizeof *head);
    prev = (uint32_t *)GEMINI_MALLOC((n + 1) * sizeof *prev);
    if (!w || !head || !prev) {
        GEMINI_FREE(w);
        GEMINI_FREE(head);
        GEMINI_FREE(prev);
        return 0;
    }
    if (n) memcpy(w, data, n);
    memset(w + n, 0, 260);
    memset(head, 0, GEMINI__ZL_HASH_SIZE * sizeof *head);
    memset(&counts, 0, sizeof counts);

#define GEMINI__ZL_INSERT(pos, head_out)                                                       \
    do {                                                                                      \
        uint32_t h_ = (((uint32_t)w[pos] << 10) ^ ((uint32_t)w[(pos) + 1] << 5) ^              \
                       w[(pos) + 2]) & (GEMINI__ZL_HASH_SIZE - 1);                            \
        head_out = head[h_];                                                                  \
        prev[pos] = head[h_];                                                                 \
        head[h_] = (uint32_t)(pos);                                                           \
    } while (0)

    while (lookahead > 0) {
        size_t hash_head = 0;
        int flush = 0;
        if (lookahead >= 3) GEMINI__ZL_INSERT(strstart, hash_head);

        /* Lazy evaluation: look for a match here, then decide whether the previous one wins. */
        prev_length = match_length;
        prev_match = match_start;
        match_length = 2;
        if (hash_head != 0 && prev_length < 16 && strstart - hash_head <= GEMINI__ZL_MAX_DIST) {
            match_length = gemini__zl_longest_match(w, prev, strstart, lookahead, hash_head,
                                                    prev_length, &match_start);
            if (match_length == 3 && strstart - match_start > 4096) match_length = 2;
        }

        if (prev_length >= 3 && match_length <= prev_length) {
            size_t max_insert = strstart + lookahead - 3;
            size_t ignored;
            flush = gemini__zl_match(&counts, strstart - 1 - prev_match, prev_length);
            lookahead -= (size_t)prev_length - 1;
            prev_length -= 2;
            do {
                if (++strstart <= max_insert) GEMINI__ZL_INSERT(strstart, ignored);
            } while (--prev_length != 0);
            (void)ignored;
            match_available = 0;
            match_length = 2;
            strstart++;
            if (flush) {
                gemini__zl_close_block(&counts, strstart - block_start);
                block_start = strstart;
            }
        } else if (match_available) {
            if (gemini__zl_literal(&counts, w[strstart - 1])) {
                gemini__zl_close_block(&counts, strstart - block_start);
                block_start = strstart;
            }
            strstart++;
            lookahead--;
        } else {
            match_available = 1;
            strstart++;
            lookahead--;
        }
    }
#undef GEMINI__ZL_INSERT
    if (match_available) gemini__zl_literal(&counts, w[strstart - 1]);
    gemini__zl_close_block(&counts, strstart - block_start);

    GEMINI_FREE(w);
    GEMINI_FREE(head);
    GEMINI_FREE(prev);
    return 2 + (size_t)((counts.bits + 7) / 8) + 4;
}

/* The ratio in double, as the reference's Python float (segments keep it so). */
static double gemini__whisper_ratio(const char *text, size_t len)
{
    size_t compressed = gemini__zlib_compressed_size(text, text ? len : 0);
    if (compressed == 0) return NAN;
    return (double)(text ? len : 0) / (double)compressed;
}

GEMINI_API float gemini_whisper_compression_ratio(const char *text, size_t len)
{
    return (float)gemini__whisper_ratio(text, len);
}

/* ---- Whisper: text helpers ------------------------------------------------------------------ */

/* The code point at s[0..n) and its byte length in *len; invalid bytes count as one byte. */
static uint32_t gemini__whisper_utf8(const unsigned char *s, size_t n, size_t *len)
{
    uint32_t c = s[0];
    size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    size_t i;
    *len = 1;
    if (need <= 1 || need > n) return need == 1 ? c : 0xFFFD;
    c &= 0x3Fu >> (need - 1);
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0xFFFD;
        c = (c << 6) | (s[i] & 0x3F);
    }
    *len = need;
    return c;
}

/* Python's str.isspace. */
static int gemini__whisper_is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python's str.strip() on UTF-8: sets *begin and returns the stripped length. */
static size_t gemini__whisper_strip(const char *text, size_t n, size_t *begin)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t start = 0, end = n, len;
    while (start < end && gemini__whisper_is_space(gemini__whisper_utf8(s + start, end - start,
                                                                        &len)))
        start += len;
    while (end > start) {
        size_t back = end - 1, count = 1;
        while (back > start && (s[back] & 0xC0) == 0x80 && count < 4) back--, count++;
        if (!gemini__whisper_is_space(gemini__whisper_utf8(s + back, end - back, &len)) ||
            back + len != end)
            break;
        end = back;
    }
    *begin = start;
    return end - start;
}

/* A growable byte string; every function fails softly by setting `failed`. */
typedef struct gemini__whisper_str {
    char *data;
    size_t len, cap;
    int failed;
} gemini__whisper_str;

static void gemini__whisper_put(gemini__whisper_str *s, const char *bytes, size_t n)
{
    if (s->failed) return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        char *data;
        while (cap < s->len + n + 1) cap *= 2;
        data = (char *)GEMINI_REALLOC(s->data, cap);
        if (!data) {
            s->failed = 1;
            return;
        }
        s->data = data;
        s->cap = cap;
    }
    if (n) memcpy(s->data + s->len, bytes, n);
    s->len += n;
    s->data[s->len] = '\0';
}

static void gemini__whisper_puts(gemini__whisper_str *s, const char *text)
{
    gemini__whisper_put(s, text, strlen(text));
}

/* Length of the well-formed UTF-8 character at s[0..n) (Unicode table 3-7), or 0 when it is
   not one; *bad then gets the length of its maximal valid prefix (at least 1), the bytes that
   one U+FFFD replaces, as Python's decode(errors="replace") does. */
static size_t gemini__whisper_utf8_char(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned lead = s[0], lo = 0x80, hi = 0xBF;
    size_t need, i;
    *bad = 1;
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) need = 2;
    else if (lead >= 0xE0 && lead <= 0xEF) need = 3;
    else if (lead >= 0xF0 && lead <= 0xF4) need = 4;
    else return 0;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
    for (i = 1; i < need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need;
}

/* The text of the ids below `limit` (text tokens), as the reference's tokenizer.decode gives
   it: the tokens' bytes joined, then decoded as UTF-8 with one U+FFFD per maximal invalid
   subpart. A new NUL-terminated string; "" without a tokenizer. NULL when out of memory. */
static char *gemini__whisper_text(const gemini_tok *tok, const int32_t *ids, int32_t n,
                                  int32_t limit)
{
    gemini__whisper_str raw = {NULL, 0, 0, 0}, text = {NULL, 0, 0, 0};
    size_t i = 0, len, bad;
    int32_t k;
    for (k = 0; tok && k < n; k++) {
        const char *piece;
        if (ids[k] >= limit || ids[k] < 0) continue;
        piece = gemini_tok_piece(tok, ids[k], &len);
        if (piece) gemini__whisper_put(&raw, piece, len);
    }
    gemini__whisper_put(&text, "", 0);
    while (i < raw.len) {
        len = gemini__whisper_utf8_char((const unsigned char *)raw.data + i, raw.len - i, &bad);
        if (len) {
            gemini__whisper_put(&text, raw.data + i, len);
            i += len;
        } else {
            gemini__whisper_put(&text, "\xEF\xBF\xBD", 3);
            i += bad;
        }
    }
    GEMINI_FREE(raw.data);
    if (raw.failed || text.failed) {
        GEMINI_FREE(text.data);
        return NULL;
    }
    return text.data;
}

/* ---- Whisper: the logit filters ------------------------------------------------------------- */

/* What the three filters of decoding.py need, fixed for one decoding task. */
typedef struct gemini__whisper_rules {
    int32_t n_vocab, eot, no_timestamps, timestamp_begin;
    int suppress_blank;
    const int32_t *blank;           /* encode(" "); eot is added */
    int32_t n_blank;
    const int32_t *suppress;        /* SuppressTokens' sorted list; NULL/0: the filter is off */
    int32_t n_suppress;
    int timestamps;                 /* ApplyTimestampRules on */
    int32_t max_initial_index;      /* -1: no limit */
} gemini__whisper_rules;

/* log(sum(exp(x))) of n floats in double; -INFINITY when all are -inf. */
static double gemini__whisper_logsumexp(const float *x, int32_t n)
{
    double top = -INFINITY, sum = 0.0;
    int32_t i;
    for (i = 0; i < n; i++)
        if (x[i] > top) top = x[i];
    if (top == -INFINITY) return -INFINITY;
    for (i = 0; i < n; i++) sum += exp((double)x[i] - top);
    return top + log(sum);
}

/* Applies SuppressBlank, SuppressTokens and ApplyTimestampRules, in the reference's order, to
   one row of logits, given the tokens sampled so far in this window (after the prompt and the
   SOT sequence). Filters only ever set entries to -inf. */
static void gemini__whisper_filter(const gemini__whisper_rules *r, const int32_t *sampled,
                                   int32_t n_sampled, float *logits)
{
    const int32_t tb = r->timestamp_begin;
    int32_t i;

    if (r->suppress_blank && n_sampled == 0) {
        for (i = 0; i < r->n_blank; i++) logits[r->blank[i]] = -INFINITY;
        logits[r->eot] = -INFINITY;
    }
    for (i = 0; i < r->n_suppress; i++) logits[r->suppress[i]] = -INFINITY;
    if (!r->timestamps) return;

    /* <|notimestamps|> belongs to the other mode. */
    if (r->no_timestamps >= 0) logits[r->no_timestamps] = -INFINITY;

    /* Timestamps come in pairs (end, start), except a single one right before the end. */
    {
        int last_was_ts = n_sampled >= 1 && sampled[n_sampled - 1] >= tb;
        int penultimate_was_ts = n_sampled < 2 || sampled[n_sampled - 2] >= tb;
        int32_t last_ts = -1;
        if (last_was_ts) {
            if (penultimate_was_ts)
                for (i = tb; i < r->n_vocab; i++) logits[i] = -INFINITY;
            else
                for (i = 0; i < r->eot; i++) logits[i] = -INFINITY;
        }

        /* Timestamps never decrease, and a segment has a nonzero length: a timestamp after
           text must be later than the last one; the start after an end may equal it. */
        for (i = n_sampled - 1; i >= 0; i--)
            if (sampled[i] >= tb) {
                last_ts = sampled[i];
                break;
            }
        if (last_ts >= 0) {
            int32_t limit = last_was_ts && !penultimate_was_ts ? last_ts : last_ts + 1;
            for (i = tb; i < limit && i < r->n_vocab; i++) logits[i] = -INFINITY;
        }
    }

    /* The first sampled token is a timestamp, at most max_initial_timestamp. */
    if (n_sampled == 0) {
        for (i = 0; i < tb; i++) logits[i] = -INFINITY;
        if (r->max_initial_index >= 0)
            for (i = tb + r->max_initial_index + 1; i < r->n_vocab; i++) logits[i] = -INFINITY;
    }

    /* When all timestamps together are more likely than any single other token, sample a
       timestamp. Both sides share the softmax's normaliser, so the log-space comparison
       logsumexp(timestamp logprobs) > max(text logprobs) is made on the logits directly. */
    {
        double ts_mass = gemini__whisper_logsumexp(logits + tb, r->n_vocab - tb);
        double text_max = -INFINITY;
        for (i = 0; i < tb; i++)
            if (logits[i] > text_max) text_max = logits[i];
        if (ts_mass > text_max)
            for (i = 0; i < tb; i++) logits[i] = -INFINITY;
    }
}

/* The reference's tokenizer.non_speech_tokens(): the first token of each symbol below, alone
   and after a space, when it is a single token (always, for the musical signs U+2669-266F,
   whose 3-byte encodings share their first two bytes), plus the tokens of " -" and " '". */
static gemini_result gemini__whisper_non_speech(const gemini_tok *tok, int32_t **out,
                                                int32_t *n_out)
{
    static const char *const symbols[] = {
        "\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^",
        "_", "`", "{", "|", "}", "~",
        "\xE3\x80\x8C", "\xE3\x80\x8D", "\xE3\x80\x8E", "\xE3\x80\x8F",   /* corner brackets */
        "<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"", "((", "))", "(((",
        ")))", "[[", "]]", "{{", "}}", "\xE2\x99\xAA\xE2\x99\xAA",
        "\xE2\x99\xAA\xE2\x99\xAA\xE2\x99\xAA",
        /* the musical signs U+2669 .. U+266F */
        "\xE2\x99\xA9", "\xE2\x99\xAA", "\xE2\x99\xAB", "\xE2\x99\xAC", "\xE2\x99\xAD",
        "\xE2\x99\xAE", "\xE2\x99\xAF"};
    const size_t n_symbols = sizeof symbols / sizeof symbols[0], first_music = n_symbols - 7;
    int32_t *ids, ids_buf[16], n_ids, n = 0, i, j;
    char text[16];
    size_t s;
    gemini_result r;

    ids = (int32_t *)GEMINI_MALLOC((2 * n_symbols + 2) * sizeof *ids);
    if (!ids) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory");
    for (s = 0; s < 2; s++) {
        r = gemini_tok_encode(tok, s == 0 ? " -" : " '", 2, 0, ids_buf, 16, &n_ids);
        if (r != GEMINI_OK || n_ids < 1) goto fail;
        ids[n++] = ids_buf[0];
    }
    for (s = 0; s < n_symbols; s++) {
        for (j = 0; j < 2; j++) {
            size_t len = strlen(symbols[s]);
            text[0] = ' ';
            memcpy(text + 1, symbols[s], len);
            r = gemini_tok_encode(tok, j ? text : text + 1, j ? len + 1 : len, 0, ids_buf, 16,
                                  &n_ids);
            if (r != GEMINI_OK || n_ids < 1) goto fail;
            if (n_ids == 1 || s >= first_music) ids[n++] = ids_buf[0];
        }
    }

    /* Sorted, without duplicates. */
    for (i = 1; i < n; i++) {
        int32_t v = ids[i];
        for (j = i; j > 0 && ids[j - 1] > v; j--) ids[j] = ids[j - 1];
        ids[j] = v;
    }
    for (i = 0, j = 0; i < n; i++)
        if (j == 0 || ids[j - 1] != ids[i]) ids[j++] = ids[i];
    *out = ids;
    *n_out = j;
    return GEMINI_OK;

fail:
    GEMINI_FREE(ids);
    if (r != GEMINI_OK) return r;
    return gemini__fail(GEMINI_ERR_FORMAT, "whisper: the tokenizer encodes a non-speech symbol "
                        "to no token");
}

/* ---- Whisper: splitting a window into segments ---------------------------------------------- */

/* One segment cut from a window's tokens: tokens [begin, end) of the window, and its times. */
typedef struct gemini__whisper_cut {
    int32_t begin, end;
    double start, stop;
} gemini__whisper_cut;

/* transcribe.py's segmentation of one window's sampled tokens (up to, not including, the end
   token). time_offset is seek * 0.01 s. Writes the cuts (at most n / 2 + 1) and returns how
   many frames seek advances:
   - two timestamps in a row end one segment and start the next; each segment runs from its
     first token's time to its last's;
   - after the last such pair, a lone closing timestamp ends a final segment, and the whole
     window is consumed; without one, the unfinished text is dropped and seek moves to the
     last pair, so that it is decoded again in the next window;
   - with no pair at all the whole window is one segment, ending at its last timestamp if it
     has one (other than <|0.00|>), else at the window's end. */
static int64_t gemini__whisper_split(const int32_t *tokens, int32_t n, int32_t timestamp_begin,
                                     int64_t seek, int64_t segment_size, int32_t input_stride,
                                     gemini__whisper_cut *cuts, int32_t *n_cuts)
{
    const double time_offset = (double)(seek * GEMINI_AUDIO_HOP) / GEMINI_AUDIO_SAMPLE_RATE;
    const double precision = (double)(input_stride * GEMINI_AUDIO_HOP) / GEMINI_AUDIO_SAMPLE_RATE;
    int single_ending = n >= 2 && tokens[n - 2] < timestamp_begin &&
                        tokens[n - 1] >= timestamp_begin;
    int32_t i, last_slice = 0, count = 0, pairs = 0;

    for (i = 0; i + 1 < n; i++)
        if (tokens[i] >= timestamp_begin && tokens[i + 1] >= timestamp_begin) pairs++;

    if (pairs > 0) {
        for (i = 1; i <= n; i++) {
            int is_slice = (i < n && tokens[i - 1] >= timestamp_begin &&
                            tokens[i] >= timestamp_begin) ||
                           (i == n && single_ending);
            if (!is_slice) continue;
            cuts[count].begin = last_slice;
            cuts[count].end = i;
            cuts[count].start = time_offset + (tokens[last_slice] - timestamp_begin) * precision;
            cuts[count].stop = time_offset + (tokens[i - 1] - timestamp_begin) * precision;
            count++;
            last_slice = i;
        }
        *n_cuts = count;
        if (single_ending) return seek + segment_size;
        return seek + (int64_t)(tokens[last_slice - 1] - timestamp_begin) * input_stride;
    }

    {
        double duration = (double)(segment_size * GEMINI_AUDIO_HOP) / GEMINI_AUDIO_SAMPLE_RATE;
        for (i = n - 1; i >= 0; i--)
            if (tokens[i] >= timestamp_begin) break;
        if (i >= 0 && tokens[i] != timestamp_begin)
            duration = (tokens[i] - timestamp_begin) * precision;
        cuts[0].begin = 0;
        cuts[0].end = n;
        cuts[0].start = time_offset;
        cuts[0].stop = time_offset + duration;
        *n_cuts = 1;
        return seek + segment_size;
    }
}

/* ---- Whisper: decoding one window ----------------------------------------------------------- */

typedef struct gemini__whisper_cand {
    double score;
    int32_t beam, token;
} gemini__whisper_cand;

/* Everything one transcription needs; sizes fixed at the start. */
typedef struct gemini__whisper_run {
    const gemini_whisper_vocab *vocab;
    const gemini_whisper_decoder *dec;
    gemini_whisper_params params;
    gemini__whisper_rules rules;
    int32_t n_vocab, sample_len, input_stride, n_group_max, beam_size, best_of;
    int32_t max_candidates;         /* round(beam_size * patience) */
    int32_t *suppress, *blank;      /* owned lists behind rules */
    float *rows;                    /* (n_group_max, n_vocab) logits, one row per hypothesis */
    float *batch;                   /* (n_group_max, n_vocab) decode_slots' rows, or NULL */
    int32_t *hyp, *hyp_next;        /* (n_group_max, sample_len + 1) sampled tokens */
    int32_t hyp_n[GEMINI_WHISPER_MAX_SLOTS], next_n[GEMINI_WHISPER_MAX_SLOTS];
    double hyp_sum[GEMINI_WHISPER_MAX_SLOTS], next_sum[GEMINI_WHISPER_MAX_SLOTS];
    int32_t hyp_slot[GEMINI_WHISPER_MAX_SLOTS];
    int hyp_done[GEMINI_WHISPER_MAX_SLOTS];
    int32_t *finished;              /* (max_candidates + beam_size, sample_len + 1) */
    int32_t *finished_n;
    double *finished_sum;
    int32_t n_finished;
    gemini__whisper_cand *cands;    /* beam_size * (beam_size + 1) */
    int32_t *initial;               /* [sot_prev, prompt..., sot sequence] */
    int32_t n_initial, sot_index;
    int32_t sot_sequence[4], n_sot;
    uint64_t rng;
    /* the kept decoding of the current window */
    int32_t *best;
    int32_t n_best;
    double sum_logprob, avg_logprob, no_speech_prob, compression_ratio;
    float temperature;
} gemini__whisper_run;

/* xorshift64* seeded through splitmix64; uniform doubles in [0, 1). */
static double gemini__whisper_uniform(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0);
}

static int32_t gemini__whisper_argmax(const float *row, int32_t n)
{
    int32_t i, best = 0;
    for (i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

/* A draw from softmax(row / temperature) (torch's Categorical(logits=row / t).sample()). */
static int32_t gemini__whisper_sample(const float *row, int32_t n, float temperature,
                                      uint64_t *rng)
{
    double top = row[gemini__whisper_argmax(row, n)], total = 0.0, u;
    int32_t i, last = 0;
    for (i = 0; i < n; i++) total += exp(((double)row[i] - top) / temperature);
    u = gemini__whisper_uniform(rng) * total;
    for (i = 0; i < n; i++) {
        double p = exp(((double)row[i] - top) / temperature);
        if (p <= 0.0) continue;
        last = i;
        if (u < p) return i;
        u -= p;
    }
    return last;
}

/* The k largest entries of row, largest first, lower ids first among equals (torch.topk). */
static void gemini__whisper_top_k(const float *row, int32_t n, int32_t k, int32_t *ids)
{
    int32_t count = 0, i, j;
    for (i = 0; i < n; i++) {
        if (count == k && !(row[i] > row[ids[k - 1]])) continue;
        j = count < k ? count++ : k - 1;
        while (j > 0 && row[i] > row[ids[j - 1]]) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
}

/* The ranking score of MaximumLikelihoodRanker: sum / length, or sum / ((5 + length) / 6)^a. */
static double gemini__whisper_rank_score(double sum, int32_t length, float length_penalty)
{
    double penalty;
    if (length_penalty < 0.0f) penalty = length > 0 ? length : 1;
    else penalty = pow((5.0 + length) / 6.0, length_penalty);
    return sum / penalty;
}

/* Appends one token to each of n slots: tokens[i] to slots[i], whose logits go to row
   rows[i] of run->rows. In one decode_slots call where the decoder has it (into run->batch
   first unless the rows are 0 .. n-1), else slot by slot. */
static gemini_result gemini__whisper_decode_slots(gemini__whisper_run *run, int32_t n,
                                                  const int32_t *slots, const int32_t *tokens,
                                                  const int32_t *rows)
{
    const gemini_whisper_decoder *dec = run->dec;
    const size_t V = (size_t)run->n_vocab;
    int32_t i, in_place = 1;
    gemini_result r;
    if (dec->decode_slots == NULL || n < 2) {
        for (i = 0; i < n; i++) {
            r = dec->decode(dec->user_data, slots[i], &tokens[i], 1, run->rows + rows[i] * V);
            if (r != GEMINI_OK) return r;
        }
        return GEMINI_OK;
    }
    for (i = 0; i < n; i++)
        if (rows[i] != i) in_place = 0;
    r = dec->decode_slots(dec->user_data, n, slots, tokens, in_place ? run->rows : run->batch);
    for (i = 0; r == GEMINI_OK && !in_place && i < n; i++)
        memcpy(run->rows + rows[i] * V, run->batch + i * V, V * sizeof *run->rows);
    return r;
}

/* Greedy decoding (temperature 0) or sampling (best_of independent draws, the best kept).
   rows[0] holds the logits after the prompt, and slot 0 its state. */
static gemini_result gemini__whisper_sample_group(gemini__whisper_run *run, float temperature,
                                                  int32_t n_group)
{
    const gemini_whisper_decoder *dec = run->dec;
    const int32_t V = run->n_vocab, stride = run->sample_len + 1;
    int32_t k, step, best = 0, n_live;
    int32_t slots[GEMINI_WHISPER_MAX_SLOTS], last[GEMINI_WHISPER_MAX_SLOTS];
    double best_score = -INFINITY;
    gemini_result r;

    for (k = 0; k < n_group; k++) {
        if (k > 0) {
            r = dec->copy(dec->user_data, k, 0);
            if (r != GEMINI_OK) return r;
            memcpy(run->rows + (size_t)k * V, run->rows, (size_t)V * sizeof *run->rows);
        }
        run->hyp_n[k] = 0;
        run->hyp_sum[k] = 0.0;
        run->hyp_done[k] = 0;
    }

    for (step = 0; step < run->sample_len; step++) {
        int all_done = 1;
        for (k = 0; k < n_group; k++) {
            float *row = run->rows + (size_t)k * V;
            int32_t *tokens = run->hyp + (size_t)k * stride, token;
            if (run->hyp_done[k]) continue;
            gemini__whisper_filter(&run->rules, tokens, run->hyp_n[k], row);
            token = temperature == 0.0f ? gemini__whisper_argmax(row, V)
                                        : gemini__whisper_sample(row, V, temperature, &run->rng);
            run->hyp_sum[k] += (double)row[token] - gemini__whisper_logsumexp(row, V);
            tokens[run->hyp_n[k]++] = token;
            if (token == run->vocab->eot) run->hyp_done[k] = 1;
            else all_done = 0;
        }
        if (all_done || run->n_initial + step + 1 > dec->n_text_ctx) break;
        n_live = 0;
        for (k = 0; k < n_group; k++) {
            if (run->hyp_done[k]) continue;
            slots[n_live] = k;
            last[n_live++] = run->hyp[(size_t)k * stride + run->hyp_n[k] - 1];
        }
        r = gemini__whisper_decode_slots(run, n_live, slots, last, slots);
        if (r != GEMINI_OK) return r;
    }

    /* The candidates end at their end token; the best by length-normalised log probability. */
    for (k = 0; k < n_group; k++) {
        int32_t length = run->hyp_n[k] - (run->hyp_done[k] ? 1 : 0);
        double score = gemini__whisper_rank_score(run->hyp_sum[k], length,
                                                  run->params.length_penalty);
        if (k == 0 || score > best_score) {
            best = k;
            best_score = score;
        }
    }
    run->n_best = run->hyp_n[best] - (run->hyp_done[best] ? 1 : 0);
    memcpy(run->best, run->hyp + (size_t)best * stride, (size_t)run->n_best * sizeof *run->best);
    run->sum_logprob = run->hyp_sum[best];
    return GEMINI_OK;
}

/* Records a finished beam: its sampled tokens (without the end token) and its score. */
static void gemini__whisper_finish(gemini__whisper_run *run, const int32_t *tokens, int32_t n,
                                   double sum)
{
    int32_t i = run->n_finished++;
    memcpy(run->finished + (size_t)i * (run->sample_len + 1), tokens, (size_t)n * sizeof *tokens);
    run->finished_n[i] = n;
    run->finished_sum[i] = sum;
}

/* Gives every new beam a decoder slot holding its source's sequence: a source's first heir
   keeps the slot, later heirs get a copy in a slot that no surviving beam needs. */
static gemini_result gemini__whisper_reorder(gemini__whisper_run *run, const int32_t *source,
                                             int32_t n_beams)
{
    int32_t old_slot[GEMINI_WHISPER_MAX_SLOTS], new_slot[GEMINI_WHISPER_MAX_SLOTS];
    int claimed[GEMINI_WHISPER_MAX_SLOTS];
    int32_t k, f = 0;
    gemini_result r;
    for (k = 0; k < n_beams; k++) {
        old_slot[k] = run->hyp_slot[k];
        claimed[k] = 0;
    }
    for (k = 0; k < n_beams; k++) {
        int32_t s = old_slot[source[k]];
        new_slot[k] = -1;
        if (!claimed[s]) {
            claimed[s] = 1;
            new_slot[k] = s;
        }
    }
    for (k = 0; k < n_beams; k++) {
        if (new_slot[k] >= 0) continue;
        while (claimed[f]) f++;
        claimed[f] = 1;
        r = run->dec->copy(run->dec->user_data, f, old_slot[source[k]]);
        if (r != GEMINI_OK) return r;
        new_slot[k] = f;
    }
    for (k = 0; k < n_beams; k++) run->hyp_slot[k] = new_slot[k];
    return GEMINI_OK;
}

/* BeamSearchDecoder at temperature 0. Each step extends every beam by its beam_size + 1 most
   likely tokens, sorts all candidates by total log probability (stable: beam order, then
   token order), moves those ending in the end token to the finished list (until it holds
   max_candidates) and keeps the best beam_size others. The first step extends only the
   prompt (all beams are equal then, and the reference's candidates coincide). */
static gemini_result gemini__whisper_beam_search(gemini__whisper_run *run)
{
    const gemini_whisper_decoder *dec = run->dec;
    const int32_t V = run->n_vocab, stride = run->sample_len + 1, B = run->beam_size;
    const int32_t eot = run->vocab->eot;
    int32_t source[GEMINI_WHISPER_MAX_SLOTS], top[GEMINI_WHISPER_MAX_SLOTS + 1];
    int32_t last[GEMINI_WHISPER_MAX_SLOTS], rows[GEMINI_WHISPER_MAX_SLOTS];
    int32_t step, j, k, n_beams = 1, best = 0;
    double best_score = -INFINITY;
    gemini_result r;

    run->n_finished = 0;
    run->hyp_n[0] = 0;
    run->hyp_sum[0] = 0.0;
    run->hyp_slot[0] = 0;

    for (step = 0; step < run->sample_len; step++) {
        int32_t n_cands = 0, saved = 0, *swap, completed;

        /* Step 1: every beam's best continuations. */
        for (j = 0; j < n_beams; j++) {
            float *row = run->rows + (size_t)j * V;
            const int32_t *tokens = run->hyp + (size_t)j * stride;
            double lse;
            gemini__whisper_filter(&run->rules, tokens, run->hyp_n[j], row);
            lse = gemini__whisper_logsumexp(row, V);
            gemini__whisper_top_k(row, V, B + 1, top);
            for (k = 0; k <= B; k++) {
                gemini__whisper_cand *c = &run->cands[n_cands++];
                c->score = run->hyp_sum[j] + ((double)row[top[k]] - lse);
                c->beam = j;
                c->token = top[k];
            }
        }

        /* Step 2: a stable sort, best first; keep beam_size unfinished ones. */
        for (j = 1; j < n_cands; j++) {
            gemini__whisper_cand c = run->cands[j];
            for (k = j; k > 0 && run->cands[k - 1].score < c.score; k--)
                run->cands[k] = run->cands[k - 1];
            run->cands[k] = c;
        }
        for (j = 0; j < n_cands && saved < B; j++) {
            const gemini__whisper_cand *c = &run->cands[j];
            const int32_t *tokens = run->hyp + (size_t)c->beam * stride;
            if (c->token == eot) {
                if (run->n_finished < run->max_candidates)
                    gemini__whisper_finish(run, tokens, run->hyp_n[c->beam], c->score);
                continue;
            }
            memcpy(run->hyp_next + (size_t)saved * stride, tokens,
                   (size_t)run->hyp_n[c->beam] * sizeof *tokens);
            run->hyp_next[(size_t)saved * stride + run->hyp_n[c->beam]] = c->token;
            run->next_n[saved] = run->hyp_n[c->beam] + 1;
            run->next_sum[saved] = c->score;
            source[saved] = c->beam;
            saved++;
        }
        swap = run->hyp;
        run->hyp = run->hyp_next;
        run->hyp_next = swap;
        for (k = 0; k < saved; k++) {
            run->hyp_n[k] = run->next_n[k];
            run->hyp_sum[k] = run->next_sum[k];
        }
        if (step == 0)
            for (k = 0; k < B; k++) run->hyp_slot[k] = 0;
        r = gemini__whisper_reorder(run, source, saved);
        if (r != GEMINI_OK) return r;
        n_beams = saved;

        completed = run->n_finished >= run->max_candidates;
        if (completed || run->n_initial + step + 1 > dec->n_text_ctx) break;
        for (k = 0; k < n_beams; k++) {
            last[k] = run->hyp[(size_t)k * stride + run->hyp_n[k] - 1];
            rows[k] = k;
        }
        r = gemini__whisper_decode_slots(run, n_beams, run->hyp_slot, last, rows);
        if (r != GEMINI_OK) return r;
    }

    /* Too few finished: add the unfinished beams, best first (ties: later beam first). */
    while (run->n_finished < B) {
        int32_t pick = -1;
        for (k = n_beams - 1; k >= 0; k--) {
            if (source[k] < 0) continue;
            if (pick < 0 || run->hyp_sum[k] > run->hyp_sum[pick]) pick = k;
        }
        if (pick < 0) break;
        gemini__whisper_finish(run, run->hyp + (size_t)pick * stride, run->hyp_n[pick],
                               run->hyp_sum[pick]);
        source[pick] = -1;
    }

    for (k = 0; k < run->n_finished; k++) {
        double score = gemini__whisper_rank_score(run->finished_sum[k], run->finished_n[k],
                                                  run->params.length_penalty);
        if (k == 0 || score > best_score) {
            best = k;
            best_score = score;
        }
    }
    run->n_best = run->finished_n[best];
    memcpy(run->best, run->finished + (size_t)best * stride,
           (size_t)run->n_best * sizeof *run->best);
    run->sum_logprob = run->finished_sum[best];
    return GEMINI_OK;
}

/* DecodingTask.run for one encoded window at one temperature: the prompt, the no-speech
   probability at <|startoftranscript|>, the search, and the kept sequence's statistics. */
static gemini_result gemini__whisper_decode_window(gemini__whisper_run *run, float temperature)
{
    const gemini_whisper_decoder *dec = run->dec;
    const gemini_whisper_vocab *vocab = run->vocab;
    int32_t n_head = run->sot_index + 1;
    char *text;
    size_t begin, length;
    gemini_result r;

    /* The prompt up to <|startoftranscript|>, whose logits give the no-speech probability,
       then the rest of the SOT sequence. */
    r = dec->reset(dec->user_data, 0);
    if (r == GEMINI_OK) r = dec->decode(dec->user_data, 0, run->initial, n_head, run->rows);
    if (r != GEMINI_OK) return r;
    run->no_speech_prob = NAN;
    if (vocab->no_speech >= 0)
        run->no_speech_prob = exp((double)run->rows[vocab->no_speech] -
                                  gemini__whisper_logsumexp(run->rows, run->n_vocab));
    if (n_head < run->n_initial) {
        r = dec->decode(dec->user_data, 0, run->initial + n_head, run->n_initial - n_head,
                        run->rows);
        if (r != GEMINI_OK) return r;
    }

    if (temperature == 0.0f && run->beam_size > 1) r = gemini__whisper_beam_search(run);
    else r = gemini__whisper_sample_group(run, temperature,
                                          temperature > 0.0f ? run->best_of : 1);
    if (r != GEMINI_OK) return r;

    run->temperature = temperature;
    run->avg_logprob = run->sum_logprob / (run->n_best + 1);
    /* The reference decodes every token below <|0.00|> here: a special token the model
       emits (a language token, say) counts as its text, "<|hu|>". */
    text = gemini__whisper_text(vocab->tokenizer, run->best, run->n_best,
                                vocab->timestamp_begin);
    if (!text) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: cannot decode text");
    length = gemini__whisper_strip(text, strlen(text), &begin);
    run->compression_ratio = gemini__whisper_ratio(text + begin, length);
    GEMINI_FREE(text);
    return GEMINI_OK;
}

/* decode_with_fallback: each temperature in turn until the text is neither too repetitive
   (gzip ratio) nor too improbable (average log probability), unless it is silence. */
static gemini_result gemini__whisper_decode_fallback(gemini__whisper_run *run)
{
    const gemini_whisper_params *p = &run->params;
    int32_t i;
    for (i = 0; i < p->n_temperatures; i++) {
        int needs_fallback;
        gemini_result r = gemini__whisper_decode_window(run, p->temperatures[i]);
        if (r != GEMINI_OK) return r;
        needs_fallback = run->compression_ratio > p->compression_ratio_threshold ||
                         run->avg_logprob < p->logprob_threshold;
        if (run->no_speech_prob > p->no_speech_threshold &&
            run->avg_logprob < p->logprob_threshold)
            needs_fallback = 0;
        if (!needs_fallback) break;
    }
    return GEMINI_OK;
}

/* ---- Whisper: results ------------------------------------------------------------------------ */

struct gemini_whisper_result {
    gemini_whisper_segment *segments;
    int32_t n_segments, capacity;
    char language[32];
    float language_prob;
    char *text;
};

GEMINI_API void gemini_whisper_result_free(gemini_whisper_result *result)
{
    int32_t i;
    if (!result) return;
    for (i = 0; i < result->n_segments; i++) {
        GEMINI_FREE((void *)result->segments[i].text);
        GEMINI_FREE((void *)result->segments[i].tokens);
    }
    GEMINI_FREE(result->segments);
    GEMINI_FREE(result->text);
    GEMINI_FREE(result);
}

GEMINI_API int32_t gemini_whisper_result_n_segments(const gemini_whisper_result *result)
{
    return result ? result->n_segments : 0;
}

GEMINI_API const gemini_whisper_segment *gemini_whisper_result_segment(
    const gemini_whisper_result *result, int32_t index)
{
    if (!result || index < 0 || index >= result->n_segments) return NULL;
    return &result->segments[index];
}

GEMINI_API const char *gemini_whisper_result_language(const gemini_whisper_result *result)
{
    return result ? result->language : "";
}

GEMINI_API float gemini_whisper_result_language_prob(const gemini_whisper_result *result)
{
    return result ? result->language_prob : NAN;
}

GEMINI_API const char *gemini_whisper_result_text(const gemini_whisper_result *result)
{
    return result && result->text ? result->text : "";
}

/* Appends a segment of tokens[0..n) and its times; a segment without text or without length
   keeps its place with no text and no tokens, as the reference clears it. */
static gemini_result gemini__whisper_add_segment(gemini_whisper_result *result,
                                                 const gemini__whisper_run *run,
                                                 const int32_t *tokens, int32_t n, double start,
                                                 double end, int64_t seek)
{
    gemini_whisper_segment *segment;
    char *text = gemini__whisper_text(run->vocab->tokenizer, tokens, n, run->vocab->eot);
    int32_t *copy = NULL;
    size_t begin;

    int has_text = 0;
    int32_t i;

    if (!text) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: cannot decode text");
    if (run->vocab->tokenizer) has_text = gemini__whisper_strip(text, strlen(text), &begin) > 0;
    else
        for (i = 0; i < n; i++) has_text |= tokens[i] < run->vocab->eot;
    if (start == end || !has_text) {
        text[0] = '\0';
        n = 0;
    }
    if (n > 0) copy = (int32_t *)GEMINI_MALLOC((size_t)n * sizeof *copy);
    if (result->n_segments == result->capacity) {
        int32_t capacity = result->capacity ? 2 * result->capacity : 64;
        gemini_whisper_segment *grown = (gemini_whisper_segment *)GEMINI_REALLOC(
            result->segments, (size_t)capacity * sizeof *grown);
        if (grown) {
            result->segments = grown;
            result->capacity = capacity;
        }
    }
    if ((n > 0 && !copy) || result->n_segments == result->capacity) {
        GEMINI_FREE(text);
        GEMINI_FREE(copy);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory for segments");
    }
    if (n > 0) memcpy(copy, tokens, (size_t)n * sizeof *copy);
    segment = &result->segments[result->n_segments++];
    segment->start = start;
    segment->end = end;
    segment->text = text;
    segment->tokens = copy;
    segment->n_tokens = n;
    segment->seek = seek;
    segment->temperature = run->temperature;
    segment->avg_logprob = run->avg_logprob;
    segment->compression_ratio = run->compression_ratio;
    segment->no_speech_prob = run->no_speech_prob;
    return GEMINI_OK;
}

/* ---- Whisper: the long-audio loop ------------------------------------------------------------ */

GEMINI_API gemini_whisper_params gemini_whisper_default_params(void)
{
    gemini_whisper_params p;
    memset(&p, 0, sizeof p);
    p.language = NULL;
    p.task = GEMINI_WHISPER_TRANSCRIBE;
    p.timestamps = 1;
    p.beam_size = 5;
    p.best_of = 5;
    p.patience = 1.0f;
    p.length_penalty = -1.0f;
    p.temperatures = NULL;
    p.n_temperatures = 0;
    p.compression_ratio_threshold = 2.4f;
    p.logprob_threshold = -1.0f;
    p.no_speech_threshold = 0.6f;
    p.silence_db = -60.0f;
    p.condition_on_previous_text = 1;
    p.suppress_blank = 1;
    p.suppress_non_speech = 1;
    p.max_initial_timestamp = 1.0f;
    p.seed = 0x5eed;
    return p;
}

static const float gemini__whisper_default_temperatures[6] = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f};

static void gemini__whisper_run_free(gemini__whisper_run *run)
{
    GEMINI_FREE(run->suppress);
    GEMINI_FREE(run->blank);
    GEMINI_FREE(run->rows);
    GEMINI_FREE(run->batch);
    GEMINI_FREE(run->hyp);
    GEMINI_FREE(run->hyp_next);
    GEMINI_FREE(run->finished);
    GEMINI_FREE(run->finished_n);
    GEMINI_FREE(run->finished_sum);
    GEMINI_FREE(run->cands);
    GEMINI_FREE(run->initial);
    GEMINI_FREE(run->best);
}

static int gemini__whisper_id_ok(const gemini_whisper_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n_vocab;
}

/* Checks the vocabulary, decoder and parameters, and sizes everything. */
static gemini_result gemini__whisper_run_init(gemini__whisper_run *run,
                                              const gemini_whisper_vocab *vocab,
                                              const gemini_whisper_decoder *dec,
                                              const gemini_whisper_params *params)
{
    gemini_whisper_params *p = &run->params;
    int32_t i, n_suppress = 0, stride, uses_zero = 0, uses_hot = 0;
    gemini_result r;

    memset(run, 0, sizeof *run);
    run->vocab = vocab;
    run->dec = dec;
    *p = params ? *params : gemini_whisper_default_params();
    if (!p->temperatures || p->n_temperatures <= 0) {
        p->temperatures = gemini__whisper_default_temperatures;
        p->n_temperatures = 6;
    }

    /* The vocabulary: text tokens < eot < the other specials < timestamp_begin < n_vocab. */
    if (vocab->n_vocab < 2 || !gemini__whisper_id_ok(vocab, vocab->eot) ||
        !gemini__whisper_id_ok(vocab, vocab->sot) ||
        !gemini__whisper_id_ok(vocab, vocab->translate) ||
        !gemini__whisper_id_ok(vocab, vocab->transcribe) ||
        !gemini__whisper_id_ok(vocab, vocab->sot_lm) ||
        !gemini__whisper_id_ok(vocab, vocab->sot_prev) ||
        !gemini__whisper_id_ok(vocab, vocab->no_timestamps) ||
        !gemini__whisper_id_ok(vocab, vocab->timestamp_begin) ||
        (vocab->no_speech != -1 && !gemini__whisper_id_ok(vocab, vocab->no_speech)) ||
        vocab->eot >= vocab->timestamp_begin || vocab->n_languages < 0 ||
        (vocab->n_languages > 0 && (!vocab->language_ids || !vocab->language_codes)))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: inconsistent vocabulary ids "
                            "(n_vocab %d, eot %d, timestamp_begin %d)", (int)vocab->n_vocab,
                            (int)vocab->eot, (int)vocab->timestamp_begin);
    for (i = 0; i < vocab->n_languages; i++)
        if (!gemini__whisper_id_ok(vocab, vocab->language_ids[i]) || !vocab->language_codes[i])
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: language %d is invalid",
                                (int)i);
    if (!dec->encode || !dec->decode || !dec->copy || !dec->reset || dec->n_audio_ctx <= 0 ||
        GEMINI_AUDIO_CHUNK_FRAMES % dec->n_audio_ctx != 0 || dec->n_text_ctx < 8 ||
        (dec->n_mels != 80 && dec->n_mels != 128) || dec->max_slots < 1 ||
        dec->max_slots > GEMINI_WHISPER_MAX_SLOTS)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: bad decoder (n_mels %d, "
                            "n_audio_ctx %d, n_text_ctx %d, max_slots %d, or a NULL callback)",
                            (int)dec->n_mels, (int)dec->n_audio_ctx, (int)dec->n_text_ctx,
                            (int)dec->max_slots);

    /* Parameters. */
    if (p->task != GEMINI_WHISPER_TRANSCRIBE && p->task != GEMINI_WHISPER_TRANSLATE)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: unknown task %d", (int)p->task);
    run->beam_size = p->beam_size > 1 ? p->beam_size : 1;
    run->best_of = p->best_of > 1 ? p->best_of : 1;
    for (i = 0; i < p->n_temperatures; i++) {
        float t = p->temperatures[i];
        if (!(t >= 0.0f) || t > 100.0f)
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: temperature %g",
                                (double)t);
        if (t == 0.0f) uses_zero = 1;
        else uses_hot = 1;
    }
    run->n_group_max = 1;
    if (uses_zero && run->beam_size > run->n_group_max) run->n_group_max = run->beam_size;
    if (uses_hot && run->best_of > run->n_group_max) run->n_group_max = run->best_of;
    if (run->n_group_max > dec->max_slots)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: beam_size %d / best_of %d "
                            "need %d decoder slots, the decoder has %d", (int)p->beam_size,
                            (int)p->best_of, (int)run->n_group_max, (int)dec->max_slots);
    if (!(p->patience > 0.0f) || p->patience > 100.0f)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: patience %g",
                            (double)p->patience);
    run->max_candidates = (int32_t)nearbyint((double)run->beam_size * p->patience);
    if (run->max_candidates < 1)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: beam_size %d with patience "
                            "%g keeps no candidate", (int)run->beam_size, (double)p->patience);
    if (p->length_penalty > 1.0f)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: length_penalty %g (want "
                            "0..1, or negative for none)", (double)p->length_penalty);
    if (p->sample_len < 0 || p->n_suppress_tokens < 0 ||
        (p->n_suppress_tokens > 0 && !p->suppress_tokens))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: sample_len or "
                            "suppress_tokens out of range");
    for (i = 0; i < p->n_suppress_tokens; i++)
        if (!gemini__whisper_id_ok(vocab, p->suppress_tokens[i]))
            return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: suppress token %d is "
                                "not in the vocabulary", (int)p->suppress_tokens[i]);
    run->n_vocab = vocab->n_vocab;
    run->sample_len = p->sample_len > 0 ? p->sample_len : dec->n_text_ctx / 2;
    run->input_stride = GEMINI_AUDIO_CHUNK_FRAMES / dec->n_audio_ctx;
    run->rng = p->seed + 0x9E3779B97F4A7C15ULL;
    run->rng = (run->rng ^ (run->rng >> 30)) * 0xBF58476D1CE4E5B9ULL;
    run->rng = (run->rng ^ (run->rng >> 27)) * 0x94D049BB133111EBULL;
    run->rng ^= run->rng >> 31;
    if (run->rng == 0) run->rng = 1;

    /* SuppressTokens: the non-speech symbols, the caller's ids, and the task and start tokens
       and <|nospeech|> (whose probability is read separately). The reference leaves the filter
       out altogether when its list is empty. */
    if (p->suppress_non_speech || p->n_suppress_tokens > 0) {
        int32_t *non_speech = NULL, n_non_speech = 0;
        if (p->suppress_non_speech) {
            if (vocab->non_speech_tokens) {
                n_non_speech = vocab->n_non_speech_tokens;
                for (i = 0; i < n_non_speech; i++)
                    if (!gemini__whisper_id_ok(vocab, vocab->non_speech_tokens[i]))
                        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: non-speech "
                                            "token %d", (int)vocab->non_speech_tokens[i]);
            } else if (vocab->tokenizer) {
                r = gemini__whisper_non_speech(vocab->tokenizer, &non_speech, &n_non_speech);
                if (r != GEMINI_OK) return r;
            }
        }
        run->suppress = (int32_t *)GEMINI_MALLOC(
            ((size_t)n_non_speech + (size_t)p->n_suppress_tokens + 6) * sizeof *run->suppress);
        if (!run->suppress) {
            GEMINI_FREE(non_speech);
            return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory");
        }
        for (i = 0; i < n_non_speech; i++)
            run->suppress[n_suppress++] = non_speech ? non_speech[i] : vocab->non_speech_tokens[i];
        GEMINI_FREE(non_speech);
        for (i = 0; i < p->n_suppress_tokens; i++)
            run->suppress[n_suppress++] = p->suppress_tokens[i];
        run->suppress[n_suppress++] = vocab->transcribe;
        run->suppress[n_suppress++] = vocab->translate;
        run->suppress[n_suppress++] = vocab->sot;
        run->suppress[n_suppress++] = vocab->sot_prev;
        run->suppress[n_suppress++] = vocab->sot_lm;
        if (vocab->no_speech >= 0) run->suppress[n_suppress++] = vocab->no_speech;
    }

    /* SuppressBlank: encode(" ") and the end token at the first step. */
    if (vocab->blank_tokens) {
        run->rules.n_blank = vocab->n_blank_tokens;
        run->blank = (int32_t *)GEMINI_MALLOC(((size_t)run->rules.n_blank + 1) * sizeof(int32_t));
        if (run->blank)
            for (i = 0; i < run->rules.n_blank; i++) {
                if (!gemini__whisper_id_ok(vocab, vocab->blank_tokens[i]))
                    return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: blank token %d",
                                        (int)vocab->blank_tokens[i]);
                run->blank[i] = vocab->blank_tokens[i];
            }
    } else {
        int32_t n_space = 0;
        run->blank = (int32_t *)GEMINI_MALLOC(8 * sizeof(int32_t));
        if (run->blank && vocab->tokenizer &&
            (r = gemini_tok_encode(vocab->tokenizer, " ", 1, 0, run->blank, 8, &n_space)) !=
                GEMINI_OK)
            return r;
        run->rules.n_blank = n_space;
    }

    run->rules.n_vocab = vocab->n_vocab;
    run->rules.eot = vocab->eot;
    run->rules.no_timestamps = vocab->no_timestamps;
    run->rules.timestamp_begin = vocab->timestamp_begin;
    run->rules.suppress_blank = p->suppress_blank;
    run->rules.blank = run->blank;
    run->rules.suppress = run->suppress;
    run->rules.n_suppress = n_suppress;
    run->rules.timestamps = p->timestamps;
    run->rules.max_initial_index = -1;
    if (p->max_initial_timestamp > 0.0f) {
        double precision = 30.0 / dec->n_audio_ctx;   /* CHUNK_LENGTH / n_audio_ctx */
        run->rules.max_initial_index = (int32_t)nearbyint(p->max_initial_timestamp / precision);
    }

    /* Buffers: logits and hypotheses per slot, the finished list, the prompt. */
    stride = run->sample_len + 1;
    run->rows = (float *)GEMINI_MALLOC((size_t)run->n_group_max * run->n_vocab * sizeof(float));
    if (dec->decode_slots != NULL)
        run->batch = (float *)GEMINI_MALLOC((size_t)run->n_group_max * run->n_vocab *
                                            sizeof(float));
    run->hyp = (int32_t *)GEMINI_MALLOC((size_t)run->n_group_max * stride * sizeof(int32_t));
    run->hyp_next = (int32_t *)GEMINI_MALLOC((size_t)run->n_group_max * stride * sizeof(int32_t));
    run->finished = (int32_t *)GEMINI_MALLOC(
        ((size_t)run->max_candidates + run->beam_size) * stride * sizeof(int32_t));
    run->finished_n = (int32_t *)GEMINI_MALLOC(
        ((size_t)run->max_candidates + run->beam_size) * sizeof(int32_t));
    run->finished_sum = (double *)GEMINI_MALLOC(
        ((size_t)run->max_candidates + run->beam_size) * sizeof(double));
    run->cands = (gemini__whisper_cand *)GEMINI_MALLOC(
        (size_t)run->beam_size * (run->beam_size + 1) * sizeof *run->cands);
    run->initial = (int32_t *)GEMINI_MALLOC((size_t)(dec->n_text_ctx + 8) * sizeof(int32_t));
    run->best = (int32_t *)GEMINI_MALLOC((size_t)stride * sizeof(int32_t));
    if (!run->blank || !run->rows || !run->hyp || !run->hyp_next || !run->finished ||
        !run->finished_n || !run->finished_sum || !run->cands || !run->initial || !run->best ||
        (dec->decode_slots != NULL && !run->batch))
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory for %d hypotheses of "
                            "%d logits", (int)run->n_group_max, (int)run->n_vocab);
    return GEMINI_OK;
}

/* Finds a language code (case-insensitive) among the vocabulary's; -1 if absent. */
static int32_t gemini__whisper_find_language(const gemini_whisper_vocab *vocab, const char *code)
{
    int32_t i;
    for (i = 0; i < vocab->n_languages; i++) {
        const char *a = vocab->language_codes[i], *b = code;
        while (*a && *b && tolower((unsigned char)*a) == tolower((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return i;
    }
    return -1;
}

/* The mel window the encoder takes at frame seek: frames [seek, seek + size) of the log-mel
   of the samples followed by 30 s of silence, scaled with that signal's maximum `top`, and
   zeros after them (pad_or_trim of the slice). */
/* 1 when no 0.1 s block of the window's samples (frames first_frame .. + n_frames, 160
   samples each) has an RMS level of silence_db dBFS or more; 0 when one does or the gate is
   off (NAN). */
static int gemini__whisper_is_silent(const float *samples, size_t n_samples, int64_t first_frame,
                                     int64_t n_frames, float silence_db)
{
    const size_t block = 1600;
    double threshold;
    size_t begin = (size_t)first_frame * 160, end = (size_t)(first_frame + n_frames) * 160, i;
    if (silence_db != silence_db) return 0;
    threshold = pow(10.0, (double)silence_db / 10.0); /* mean square of the level */
    if (end > n_samples) end = n_samples;
    for (; begin < end; begin += block) {
        size_t stop = end - begin < block ? end : begin + block;
        double sum = 0.0;
        for (i = begin; i < stop; i++) sum += (double)samples[i] * samples[i];
        if (sum / (double)(stop - begin) >= threshold) return 0;
    }
    return 1;
}

static void gemini__whisper_window_mel(const gemini_audio_mel *mel, const float *samples,
                                       size_t n_samples, float top, int64_t seek, int64_t size,
                                       float *out)
{
    const size_t n_total = n_samples + GEMINI_AUDIO_CHUNK_SAMPLES;
    int m;
    gemini__audio_log_mel_raw(mel, samples, n_samples, n_total, (size_t)seek,
                              (size_t)(seek + size), out, GEMINI_AUDIO_CHUNK_FRAMES);
    for (m = 0; m < mel->n_mels; m++) {
        float *row = out + (size_t)m * GEMINI_AUDIO_CHUNK_FRAMES;
        gemini__audio_log_mel_scale(row, (size_t)size, top);
        memset(row + size, 0, (size_t)(GEMINI_AUDIO_CHUNK_FRAMES - size) * sizeof *row);
    }
}

/* detect_language: logits after <|startoftranscript|> alone, restricted to the language
   tokens; the first most likely one wins. */
static gemini_result gemini__whisper_detect(gemini__whisper_run *run, int32_t *language,
                                            float *probability)
{
    const gemini_whisper_vocab *vocab = run->vocab;
    const gemini_whisper_decoder *dec = run->dec;
    double top = -INFINITY, sum = 0.0;
    int32_t i, best = 0;
    gemini_result r = dec->reset(dec->user_data, 0);
    if (r == GEMINI_OK) r = dec->decode(dec->user_data, 0, &vocab->sot, 1, run->rows);
    if (r != GEMINI_OK) return r;
    for (i = 0; i < vocab->n_languages; i++) {
        float logit = run->rows[vocab->language_ids[i]];
        if (logit > top) {
            top = logit;
            best = i;
        }
    }
    for (i = 0; i < vocab->n_languages; i++)
        sum += exp((double)run->rows[vocab->language_ids[i]] - top);
    *language = best;
    *probability = (float)(1.0 / sum);
    return GEMINI_OK;
}

/* Builds the decoder input of a window: [<|startofprev|>, the last prompt tokens] when there
   is a prompt, then the SOT sequence. */
static void gemini__whisper_set_prompt(gemini__whisper_run *run, const int32_t *prompt,
                                       size_t n_prompt)
{
    size_t keep = (size_t)(run->dec->n_text_ctx / 2 - 1), i;
    int32_t n = 0;
    if (n_prompt > 0) {
        if (n_prompt > keep) {
            prompt += n_prompt - keep;
            n_prompt = keep;
        }
        run->initial[n++] = run->vocab->sot_prev;
        for (i = 0; i < n_prompt; i++) run->initial[n++] = prompt[i];
    }
    run->sot_index = n;
    for (i = 0; i < (size_t)run->n_sot; i++) run->initial[n++] = run->sot_sequence[i];
    run->n_initial = n;
}

GEMINI_API gemini_result gemini_whisper_transcribe_with(const gemini_whisper_vocab *vocab,
                                                        const gemini_whisper_decoder *decoder,
                                                        const float *samples, size_t n_samples,
                                                        const gemini_whisper_params *params,
                                                        gemini_whisper_result **out)
{
    gemini__whisper_run run;
    gemini_whisper_result *result = NULL;
    gemini_audio_mel *mel = NULL;
    float *window = NULL, top;
    int32_t *all = NULL, n_prompt = 0, language = -1;
    gemini__whisper_cut *cuts = NULL;
    size_t n_all = 0, cap_all, prompt_reset_since = 0;
    int64_t seek = 0, content_frames, encoded_seek = -1;
    gemini_result r;

    if (out) *out = NULL;
    if (!vocab || !decoder || !out || (!samples && n_samples > 0))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: NULL argument");
    if (n_samples > (size_t)GEMINI_AUDIO_MAX_SECONDS * GEMINI_AUDIO_SAMPLE_RATE)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: %llu samples is more than "
                            "GEMINI_AUDIO_MAX_SECONDS", (unsigned long long)n_samples);
    r = gemini__whisper_run_init(&run, vocab, decoder, params);
    if (r != GEMINI_OK) goto done;

    result = (gemini_whisper_result *)GEMINI_MALLOC(sizeof *result);
    if (result) {
        memset(result, 0, sizeof *result);
        result->language_prob = NAN;
    }
    window = (float *)GEMINI_MALLOC((size_t)decoder->n_mels * GEMINI_AUDIO_CHUNK_FRAMES *
                                    sizeof *window);
    cap_all = 1024;
    all = (int32_t *)GEMINI_MALLOC(cap_all * sizeof *all);
    cuts = (gemini__whisper_cut *)GEMINI_MALLOC(((size_t)run.sample_len / 2 + 2) * sizeof *cuts);
    if (!result || !window || !all || !cuts) {
        r = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory");
        goto done;
    }
    r = gemini_audio_mel_create(decoder->n_mels, &mel);
    if (r != GEMINI_OK) goto done;

    /* The log-mel of the audio with 30 s of silence appended; its maximum sets the floor of
       every window. content_frames counts the frames of the audio itself. */
    content_frames = (int64_t)gemini_audio_log_mel_frames(n_samples);
    top = gemini__audio_log_mel_raw(mel, samples, n_samples,
                                    n_samples + GEMINI_AUDIO_CHUNK_SAMPLES, 0,
                                    gemini_audio_log_mel_frames(n_samples +
                                                                GEMINI_AUDIO_CHUNK_SAMPLES),
                                    NULL, 0);

    /* The language: given, "en" for English-only models, or detected on the first 30 s (all
       3000 frames of the padded log-mel, which is the first window itself once the audio
       lasts 30 s). */
    if (vocab->multilingual) {
        const char *code = run.params.language;
        if (code && code[0] && strcmp(code, "auto") != 0) {
            language = gemini__whisper_find_language(vocab, code);
            if (language < 0) {
                r = gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: unknown language "
                                 "\"%.16s\" (not among the model's %d)", code,
                                 (int)vocab->n_languages);
                goto done;
            }
        } else if (vocab->n_languages > 0) {
            gemini__whisper_window_mel(mel, samples, n_samples, top, 0,
                                       GEMINI_AUDIO_CHUNK_FRAMES, window);
            r = decoder->encode(decoder->user_data, window);
            if (r == GEMINI_OK) r = gemini__whisper_detect(&run, &language,
                                                           &result->language_prob);
            if (r != GEMINI_OK) goto done;
            if (content_frames >= GEMINI_AUDIO_CHUNK_FRAMES) encoded_seek = 0;
        } else {
            r = gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: the model lists no "
                             "languages to detect; give one");
            goto done;
        }
    }
    if (language >= 0) {
        size_t len = strlen(vocab->language_codes[language]);
        if (len >= sizeof result->language) len = sizeof result->language - 1;
        memcpy(result->language, vocab->language_codes[language], len);
        result->language[len] = '\0';
    } else {
        memcpy(result->language, "en", 3);
    }

    /* The SOT sequence: <|startoftranscript|> [language task] [<|notimestamps|>]. */
    run.sot_sequence[run.n_sot++] = vocab->sot;
    if (vocab->multilingual) {
        run.sot_sequence[run.n_sot++] = vocab->language_ids[language];
        run.sot_sequence[run.n_sot++] =
            run.params.task == GEMINI_WHISPER_TRANSLATE ? vocab->translate : vocab->transcribe;
    }
    if (!run.params.timestamps) run.sot_sequence[run.n_sot++] = vocab->no_timestamps;

    /* An initial prompt, " " + its stripped text, starts the token history. */
    if (run.params.initial_prompt) {
        const char *text = run.params.initial_prompt;
        size_t begin, len = gemini__whisper_strip(text, strlen(text), &begin);
        char *spaced = (char *)GEMINI_MALLOC(len + 2);
        int32_t needed = 0;
        if (!vocab->tokenizer) {
            GEMINI_FREE(spaced);
            r = gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: an initial prompt needs "
                             "a tokenizer");
            goto done;
        }
        if (!spaced) {
            r = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory");
            goto done;
        }
        spaced[0] = ' ';
        memcpy(spaced + 1, text + begin, len);
        r = gemini_tok_encode(vocab->tokenizer, spaced, len + 1, 0, NULL, 0, &needed);
        if (r == GEMINI_OK && (size_t)needed > cap_all) {
            int32_t *grown = (int32_t *)GEMINI_REALLOC(all, (size_t)needed * sizeof *all);
            if (grown) all = grown, cap_all = (size_t)needed;
            else r = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory");
        }
        if (r == GEMINI_OK)
            r = gemini_tok_encode(vocab->tokenizer, spaced, len + 1, 0, all, (int32_t)cap_all,
                                  &n_prompt);
        GEMINI_FREE(spaced);
        if (r != GEMINI_OK) goto done;
        n_all = (size_t)n_prompt;
    }

    /* The windows. */
    while (seek < content_frames) {
        int64_t segment_size = content_frames - seek, next_seek;
        int32_t n_cuts = 0, i;
        int skip;
        if (segment_size > GEMINI_AUDIO_CHUNK_FRAMES) segment_size = GEMINI_AUDIO_CHUNK_FRAMES;

        /* Silence (our gate, not the reference's): nothing to decode. */
        if (gemini__whisper_is_silent(samples, n_samples, seek, segment_size,
                                      run.params.silence_db)) {
            seek += segment_size;
            if (run.params.progress)
                run.params.progress(run.params.user_data, (double)seek * 0.01,
                                    (double)content_frames * 0.01);
            continue;
        }

        if (encoded_seek != seek || segment_size != GEMINI_AUDIO_CHUNK_FRAMES) {
            gemini__whisper_window_mel(mel, samples, n_samples, top, seek, segment_size, window);
            r = decoder->encode(decoder->user_data, window);
            if (r != GEMINI_OK) goto done;
        }
        encoded_seek = -1;

        gemini__whisper_set_prompt(&run, all + prompt_reset_since, n_all - prompt_reset_since);
        r = gemini__whisper_decode_fallback(&run);
        if (r != GEMINI_OK) goto done;

        /* Silence: a likely <|nospeech|> and an improbable text. */
        skip = run.no_speech_prob > run.params.no_speech_threshold;
        if (run.avg_logprob > run.params.logprob_threshold) skip = 0;
        if (skip) {
            seek += segment_size;
            if (run.params.progress)
                run.params.progress(run.params.user_data, (double)seek * 0.01,
                                    (double)content_frames * 0.01);
            continue;
        }

        next_seek = gemini__whisper_split(run.best, run.n_best, vocab->timestamp_begin, seek,
                                          segment_size, run.input_stride, cuts, &n_cuts);
        for (i = 0; i < n_cuts; i++) {
            const gemini_whisper_segment *segment;
            r = gemini__whisper_add_segment(result, &run, run.best + cuts[i].begin,
                                            cuts[i].end - cuts[i].begin, cuts[i].start,
                                            cuts[i].stop, seek);
            if (r != GEMINI_OK) goto done;
            segment = &result->segments[result->n_segments - 1];

            /* The history the next windows are prompted with: every kept segment's tokens. */
            if (n_all + (size_t)segment->n_tokens > cap_all) {
                size_t capacity = 2 * (n_all + (size_t)segment->n_tokens);
                int32_t *grown = (int32_t *)GEMINI_REALLOC(all, capacity * sizeof *all);
                if (!grown) {
                    r = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory");
                    goto done;
                }
                all = grown;
                cap_all = capacity;
            }
            if (segment->n_tokens > 0)
                memcpy(all + n_all, segment->tokens, (size_t)segment->n_tokens * sizeof *all);
            n_all += (size_t)segment->n_tokens;
            if (run.params.on_segment)
                run.params.on_segment(run.params.user_data, segment, result->n_segments - 1);
        }
        seek = next_seek;
        if (!run.params.condition_on_previous_text || run.temperature > 0.5f)
            prompt_reset_since = n_all;
        if (run.params.progress)
            run.params.progress(run.params.user_data,
                                (double)(seek < content_frames ? seek : content_frames) * 0.01,
                                (double)content_frames * 0.01);
    }

    /* The whole text, decoded from all tokens after the initial prompt (special tokens below
       <|0.00|> as their text, as the reference's tokenizer.decode does; segment texts keep
       only the text tokens). */
    result->text = gemini__whisper_text(vocab->tokenizer, all + n_prompt,
                                        (int32_t)(n_all - (size_t)n_prompt),
                                        vocab->timestamp_begin);
    if (!result->text) r = gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory");

done:
    gemini__whisper_run_free(&run);
    gemini_audio_mel_free(mel);
    GEMINI_FREE(window);
    GEMINI_FREE(all);
    GEMINI_FREE(cuts);
    if (r != GEMINI_OK) {
        gemini_whisper_result_free(result);
        return r;
    }
    *out = result;
    return GEMINI_OK;
}

/* ---- Whisper: output formats ----------------------------------------------------------------- */

GEMINI_API int gemini_whisper_format_timestamp(double seconds, int always_hours,
                                               char decimal_marker, char *out, size_t cap)
{
    /* round() in Python rounds half to even, as nearbyint does in the default mode. */
    double ms = nearbyint((seconds > 0.0 ? seconds : 0.0) * 1000.0);
    long long total = (long long)ms, hours, minutes, secs;
    char buffer[64];
    int n;
    hours = total / 3600000;
    total -= hours * 3600000;
    minutes = total / 60000;
    total -= minutes * 60000;
    secs = total / 1000;
    total -= secs * 1000;
    if (always_hours || hours > 0)
        n = snprintf(buffer, sizeof buffer, "%02lld:%02lld:%02lld%c%03lld", hours, minutes, secs,
                     decimal_marker, total);
    else
        n = snprintf(buffer, sizeof buffer, "%02lld:%02lld%c%03lld", minutes, secs,
                     decimal_marker, total);
    if (out && cap) {
        size_t copy = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
        memcpy(out, buffer, copy);
        out[copy] = '\0';
    }
    return n;
}

/* Python's repr of a float, as json.dump writes it: the shortest digits that read back the
   same, positional from 1e-4 to 1e16, else d.ddde+XX; NaN and Infinity as json spells them.
   With `single` the digits are the shortest that read back the same float32 (temperatures
   are floats: 0.2f prints as 0.2, as the reference's Python float). */
static void gemini__whisper_put_float(gemini__whisper_str *s, double x, int single)
{
    char buffer[40], digits[24], text[64];
    int precision, exponent, n_digits = 0, i, pos = 0;
    const char *p;
    if (x != x) {
        gemini__whisper_puts(s, "NaN");
        return;
    }
    if (x == INFINITY || x == -INFINITY) {
        gemini__whisper_puts(s, x > 0 ? "Infinity" : "-Infinity");
        return;
    }
    for (precision = 1; precision <= 17; precision++) {
        snprintf(buffer, sizeof buffer, "%.*e", precision - 1, x);
        if (single ? (float)strtod(buffer, NULL) == (float)x : strtod(buffer, NULL) == x) break;
    }
    p = buffer;
    if (*p == '-') text[pos++] = *p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[n_digits++] = *p;
    exponent = atoi(p + 1);
    while (n_digits > 1 && digits[n_digits - 1] == '0') n_digits--;
    if (exponent >= -5 + 1 && exponent < 16) {
        if (exponent < 0) {
            text[pos++] = '0';
            text[pos++] = '.';
            for (i = 0; i < -exponent - 1; i++) text[pos++] = '0';
            for (i = 0; i < n_digits; i++) text[pos++] = digits[i];
        } else {
            for (i = 0; i <= exponent; i++) text[pos++] = i < n_digits ? digits[i] : '0';
            text[pos++] = '.';
            if (n_digits > exponent + 1)
                for (i = exponent + 1; i < n_digits; i++) text[pos++] = digits[i];
            else
                text[pos++] = '0';
        }
        text[pos] = '\0';
    } else {
        text[pos++] = digits[0];
        if (n_digits > 1) {
            text[pos++] = '.';
            for (i = 1; i < n_digits; i++) text[pos++] = digits[i];
        }
        snprintf(text + pos, sizeof text - (size_t)pos, "e%c%02d", exponent < 0 ? '-' : '+',
                 exponent < 0 ? -exponent : exponent);
    }
    gemini__whisper_puts(s, text);
}

/* A JSON string as json.dump writes it with ensure_ascii: \uXXXX for everything outside
   printable ASCII (surrogate pairs above U+FFFF), invalid UTF-8 as U+FFFD. */
static void gemini__whisper_put_json_string(gemini__whisper_str *s, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text), i = 0, len;
    char buffer[16];
    gemini__whisper_put(s, "\"", 1);
    while (i < n) {
        uint32_t c = gemini__whisper_utf8(p + i, n - i, &len);
        i += len;
        if (c == '"') gemini__whisper_puts(s, "\\\"");
        else if (c == '\\') gemini__whisper_puts(s, "\\\\");
        else if (c == '\n') gemini__whisper_puts(s, "\\n");
        else if (c == '\r') gemini__whisper_puts(s, "\\r");
        else if (c == '\t') gemini__whisper_puts(s, "\\t");
        else if (c == '\b') gemini__whisper_puts(s, "\\b");
        else if (c == '\f') gemini__whisper_puts(s, "\\f");
        else if (c >= 0x20 && c < 0x7F) {
            buffer[0] = (char)c;
            gemini__whisper_put(s, buffer, 1);
        } else if (c < 0x10000) {
            snprintf(buffer, sizeof buffer, "\\u%04x", (unsigned)c);
            gemini__whisper_puts(s, buffer);
        } else {
            c -= 0x10000;
            snprintf(buffer, sizeof buffer, "\\u%04x\\u%04x", (unsigned)(0xD800 + (c >> 10)),
                     (unsigned)(0xDC00 + (c & 0x3FF)));
            gemini__whisper_puts(s, buffer);
        }
    }
    gemini__whisper_put(s, "\"", 1);
}

/* A segment's text stripped, with "-->" written "->" when `arrows` (the subtitle writers)
   and tabs as spaces when `tabs` (TSV). */
static void gemini__whisper_put_clean(gemini__whisper_str *s, const char *text, int arrows,
                                      int tabs)
{
    size_t begin, len = gemini__whisper_strip(text, strlen(text), &begin), i;
    text += begin;
    for (i = 0; i < len; i++) {
        if (arrows && i + 3 <= len && memcmp(text + i, "-->", 3) == 0) {
            gemini__whisper_put(s, "->", 2);
            i += 2;
        } else if (tabs && text[i] == '\t') {
            gemini__whisper_put(s, " ", 1);
        } else {
            gemini__whisper_put(s, text + i, 1);
        }
    }
}

static void gemini__whisper_format(const gemini_whisper_result *result,
                                   gemini_whisper_format_kind kind, gemini__whisper_str *s)
{
    char a[48], b[48], number[16];
    int32_t i, j;
    if (kind == GEMINI_WHISPER_FORMAT_VTT) gemini__whisper_puts(s, "WEBVTT\n\n");
    if (kind == GEMINI_WHISPER_FORMAT_TSV) gemini__whisper_puts(s, "start\tend\ttext\n");
    if (kind == GEMINI_WHISPER_FORMAT_JSON) {
        gemini__whisper_puts(s, "{\"text\": ");
        gemini__whisper_put_json_string(s, gemini_whisper_result_text(result));
        gemini__whisper_puts(s, ", \"segments\": [");
    }
    for (i = 0; i < result->n_segments; i++) {
        const gemini_whisper_segment *seg = &result->segments[i];
        switch (kind) {
        case GEMINI_WHISPER_FORMAT_TXT:
            gemini__whisper_put_clean(s, seg->text, 0, 0);
            gemini__whisper_puts(s, "\n");
            break;
        case GEMINI_WHISPER_FORMAT_SRT:
        case GEMINI_WHISPER_FORMAT_VTT: {
            int srt = kind == GEMINI_WHISPER_FORMAT_SRT;
            gemini_whisper_format_timestamp(seg->start, srt, srt ? ',' : '.', a, sizeof a);
            gemini_whisper_format_timestamp(seg->end, srt, srt ? ',' : '.', b, sizeof b);
            if (srt) {
                snprintf(number, sizeof number, "%d", (int)(i + 1));
                gemini__whisper_puts(s, number);
                gemini__whisper_puts(s, "\n");
            }
            gemini__whisper_puts(s, a);
            gemini__whisper_puts(s, " --> ");
            gemini__whisper_puts(s, b);
            gemini__whisper_puts(s, "\n");
            gemini__whisper_put_clean(s, seg->text, 1, 0);
            gemini__whisper_puts(s, "\n\n");
            break;
        }
        case GEMINI_WHISPER_FORMAT_TSV:
            snprintf(a, sizeof a, "%.0f\t%.0f\t", nearbyint(1000.0 * seg->start),
                     nearbyint(1000.0 * seg->end));
            gemini__whisper_puts(s, a);
            gemini__whisper_put_clean(s, seg->text, 0, 1);
            gemini__whisper_puts(s, "\n");
            break;
        case GEMINI_WHISPER_FORMAT_JSON:
            snprintf(a, sizeof a, "%s{\"id\": %d, \"seek\": %lld, \"start\": ", i ? ", " : "",
                     (int)i, (long long)seg->seek);
            gemini__whisper_puts(s, a);
            gemini__whisper_put_float(s, seg->start, 0);
            gemini__whisper_puts(s, ", \"end\": ");
            gemini__whisper_put_float(s, seg->end, 0);
            gemini__whisper_puts(s, ", \"text\": ");
            gemini__whisper_put_json_string(s, seg->text);
            gemini__whisper_puts(s, ", \"tokens\": [");
            for (j = 0; j < seg->n_tokens; j++) {
                snprintf(a, sizeof a, "%s%d", j ? ", " : "", (int)seg->tokens[j]);
                gemini__whisper_puts(s, a);
            }
            gemini__whisper_puts(s, "], \"temperature\": ");
            gemini__whisper_put_float(s, seg->temperature, 1);
            gemini__whisper_puts(s, ", \"avg_logprob\": ");
            gemini__whisper_put_float(s, seg->avg_logprob, 0);
            gemini__whisper_puts(s, ", \"compression_ratio\": ");
            gemini__whisper_put_float(s, seg->compression_ratio, 0);
            gemini__whisper_puts(s, ", \"no_speech_prob\": ");
            gemini__whisper_put_float(s, seg->no_speech_prob, 0);
            gemini__whisper_puts(s, "}");
            break;
        }
    }
    if (kind == GEMINI_WHISPER_FORMAT_JSON) {
        gemini__whisper_puts(s, "], \"language\": ");
        gemini__whisper_put_json_string(s, result->language);
        gemini__whisper_puts(s, "}");
    }
}

GEMINI_API gemini_result gemini_whisper_format(const gemini_whisper_result *result,
                                               gemini_whisper_format_kind kind, char *out,
                                               size_t cap, size_t *n_out)
{
    gemini__whisper_str s = {NULL, 0, 0, 0};
    gemini_result r = GEMINI_OK;
    if (n_out) *n_out = 0;
    if (!result || (!out && cap) || (int)kind < 0 || kind > GEMINI_WHISPER_FORMAT_JSON)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper format: bad argument");
    gemini__whisper_put(&s, "", 0);
    gemini__whisper_format(result, kind, &s);
    if (s.failed) {
        GEMINI_FREE(s.data);
        return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper format: no memory");
    }
    if (n_out) *n_out = s.len;
    if (out && cap > s.len) memcpy(out, s.data, s.len + 1);
    else if (out || cap)
        r = gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper format: %llu bytes do not fit "
                         "in %llu", (unsigned long long)s.len + 1, (unsigned long long)cap);
    GEMINI_FREE(s.data);
    return r;
}

/* ---- Whisper: a .gemini model through gemini.h ----------------------------------------------- */

#if defined(GEMINI_H)

/* The decoder callbacks over gemini.h contexts: one context per slot, created when first
   used; slot 0 runs the encoder and the others decode against its audio (shared, not
   copied); decode_slots runs all the slots of a step in one gemini_decode_each. */
typedef struct gemini__whisper_model {
    const gemini_model *model;
    gemini_context_params context_params;
    gemini_context *contexts[GEMINI_WHISPER_MAX_SLOTS];
    int has_audio[GEMINI_WHISPER_MAX_SLOTS];
    int32_t n_mels;
} gemini__whisper_model;

static gemini_result gemini__whisper_model_slot(gemini__whisper_model *m, int32_t slot)
{
    gemini_result r;
    if (!m->contexts[slot]) {
        r = gemini_context_create(m->model, &m->context_params, &m->contexts[slot]);
        if (r != GEMINI_OK) return r;
    }
    if (!m->has_audio[slot]) {
        r = gemini_context_share_audio(m->contexts[slot], m->contexts[0]);
        if (r != GEMINI_OK) return r;
        m->has_audio[slot] = 1;
    }
    return GEMINI_OK;
}

static gemini_result gemini__whisper_model_encode(void *user, const float *mel)
{
    gemini__whisper_model *m = (gemini__whisper_model *)user;
    gemini_result r;
    int32_t i;
    if (!m->contexts[0]) {
        r = gemini_context_create(m->model, &m->context_params, &m->contexts[0]);
        if (r != GEMINI_OK) return r;
    }
    r = gemini_encode_mel(m->contexts[0], mel, m->n_mels, GEMINI_AUDIO_CHUNK_FRAMES);
    for (i = 0; i < GEMINI_WHISPER_MAX_SLOTS; i++) m->has_audio[i] = 0;
    if (r == GEMINI_OK) m->has_audio[0] = 1;
    return r;
}

static gemini_result gemini__whisper_model_decode(void *user, int32_t slot,
                                                  const int32_t *tokens, int32_t n_tokens,
                                                  float *logits)
{
    gemini__whisper_model *m = (gemini__whisper_model *)user;
    gemini_result r = gemini__whisper_model_slot(m, slot);
    if (r != GEMINI_OK) return r;
    return gemini_decode(m->contexts[slot], tokens, n_tokens, logits, 0);
}

static gemini_result gemini__whisper_model_decode_slots(void *user, int32_t n_slots,
                                                        const int32_t *slots,
                                                        const int32_t *tokens, float *logits)
{
    gemini__whisper_model *m = (gemini__whisper_model *)user;
    gemini_context *contexts[GEMINI_WHISPER_MAX_SLOTS];
    gemini_result r;
    int32_t i;
    for (i = 0; i < n_slots; i++) {
        r = gemini__whisper_model_slot(m, slots[i]);
        if (r != GEMINI_OK) return r;
        contexts[i] = m->contexts[slots[i]];
    }
    return gemini_decode_each(contexts, n_slots, tokens, logits);
}

static gemini_result gemini__whisper_model_copy(void *user, int32_t dst, int32_t src)
{
    gemini__whisper_model *m = (gemini__whisper_model *)user;
    gemini_result r = gemini__whisper_model_slot(m, dst);
    if (r != GEMINI_OK) return r;
    return gemini_context_copy_sequence(m->contexts[dst], m->contexts[src]);
}

static gemini_result gemini__whisper_model_reset(void *user, int32_t slot)
{
    gemini__whisper_model *m = (gemini__whisper_model *)user;
    gemini_result r = gemini__whisper_model_slot(m, slot);
    if (r != GEMINI_OK) return r;
    gemini_context_reset(m->contexts[slot]);
    return GEMINI_OK;
}

/* An integer key; *out untouched when the key is absent and `required` is 0. */
static gemini_result gemini__whisper_meta_id(const gemini_model *model, const char *key,
                                             int required, int32_t n_vocab, int32_t *out)
{
    int64_t value;
    gemini_result r = gemini_model_meta_i64(model, key, &value);
    if (r == GEMINI_ERR_MISSING_KEY && !required) return GEMINI_OK;
    if (r != GEMINI_OK) return r;
    if (value < 0 || value >= n_vocab)
        return gemini__fail(GEMINI_ERR_FORMAT, "whisper: %s = %lld is outside the vocabulary "
                            "(%d)", key, (long long)value, (int)n_vocab);
    *out = (int32_t)value;
    return GEMINI_OK;
}

/* An optional array of 32-bit integers, copied; *out NULL when the key is absent. */
static gemini_result gemini__whisper_meta_ids(const gemini_model *model, const char *key,
                                              int32_t n_vocab, int32_t **out, int32_t *n_out)
{
    gemini_meta_info info;
    uint64_t i;
    gemini_result r = gemini_model_meta_find(model, key, &info);
    *out = NULL;
    *n_out = 0;
    if (r == GEMINI_ERR_MISSING_KEY) return GEMINI_OK;
    if (r != GEMINI_OK) return r;
    if (info.type != GEMINI_META_ARRAY ||
        (info.elem_type != GEMINI_META_I32 && info.elem_type != GEMINI_META_U32) ||
        info.count > (uint64_t)n_vocab * 4 || info.value_bytes < info.count * 4)
        return gemini__fail(GEMINI_ERR_FORMAT, "whisper: %s is not an array of at most %d "
                            "32-bit ids", key, (int)n_vocab * 4);
    *out = (int32_t *)GEMINI_MALLOC((size_t)(info.count ? info.count : 1) * sizeof **out);
    if (!*out) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory for %s", key);
    for (i = 0; i < info.count; i++) {
        const unsigned char *b = (const unsigned char *)info.value + 4 * i;
        uint32_t v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                     (uint32_t)b[3] << 24;
        if (v >= (uint32_t)n_vocab) {
            GEMINI_FREE(*out);
            *out = NULL;
            return gemini__fail(GEMINI_ERR_FORMAT, "whisper: %s[%llu] = %u is outside the "
                                "vocabulary", key, (unsigned long long)i, (unsigned)v);
        }
        (*out)[i] = (int32_t)v;
    }
    *n_out = (int32_t)info.count;
    return GEMINI_OK;
}

/* whisper.lang_codes: n strings (u32 length, bytes), copied as NUL-terminated strings into one
   block: an array of n pointers followed by the text. */
static gemini_result gemini__whisper_meta_codes(const gemini_model *model, int32_t n,
                                                char ***out)
{
    gemini_meta_info info;
    const unsigned char *p, *end;
    char **codes, *text;
    int32_t i;
    gemini_result r = gemini_model_meta_find(model, "whisper.lang_codes", &info);
    *out = NULL;
    if (r != GEMINI_OK) return r;
    if (info.type != GEMINI_META_ARRAY || info.elem_type != GEMINI_META_STRING ||
        info.count != (uint64_t)n)
        return gemini__fail(GEMINI_ERR_FORMAT, "whisper.lang_codes is not an array of %d "
                            "strings (as whisper.lang_ids)", (int)n);
    codes = (char **)GEMINI_MALLOC((size_t)n * (sizeof *codes + 17) + 1);
    if (!codes) return gemini__fail(GEMINI_ERR_OUT_OF_MEMORY, "whisper: no memory");
    text = (char *)(codes + n);
    p = (const unsigned char *)info.value;
    end = p + info.value_bytes;
    for (i = 0; i < n; i++) {
        uint32_t len;
        if (end - p < 4) break;
        len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        p += 4;
        if (len == 0 || len > 16 || (uint64_t)(end - p) < len) break;
        codes[i] = text;
        memcpy(text, p, len);
        text[len] = '\0';
        text += len + 1;
        p += len;
    }
    if (i < n) {
        GEMINI_FREE(codes);
        return gemini__fail(GEMINI_ERR_FORMAT, "whisper.lang_codes[%d] is empty, longer than "
                            "16 bytes or cut short", (int)i);
    }
    *out = codes;
    return GEMINI_OK;
}

GEMINI_API gemini_result gemini_whisper_transcribe(const gemini_model *model,
                                                   const float *samples_16k, size_t n_samples,
                                                   const gemini_whisper_params *params,
                                                   gemini_whisper_result **out)
{
    gemini__whisper_model m;
    gemini_whisper_vocab vocab;
    gemini_whisper_decoder dec;
    gemini_whisper_params p = params ? *params : gemini_whisper_default_params();
    gemini_tok *tok = NULL;
    int32_t *lang_ids = NULL, *non_speech = NULL, *blank = NULL, n_blank = 0, i;
    char **lang_codes = NULL;
    int64_t value;
    gemini_result r;

    if (out) *out = NULL;
    if (!model || !out || (!samples_16k && n_samples > 0))
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: NULL argument");
    if (strcmp(gemini_model_architecture(model), "whisper") != 0)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: the model is \"%s\", not "
                            "a Whisper model", gemini_model_architecture(model));
    if (p.kv_type != GEMINI_TYPE_F32 && p.kv_type != GEMINI_TYPE_F16 &&
        p.kv_type != GEMINI_TYPE_BF16)
        return gemini__fail(GEMINI_ERR_INVALID_ARGUMENT, "whisper: kv_type %d is not f32 (0), "
                            "f16 (1) or bf16 (2)", (int)p.kv_type);
    memset(&m, 0, sizeof m);
    memset(&vocab, 0, sizeof vocab);
    memset(&dec, 0, sizeof dec);

    /* Sizes. */
    vocab.n_vocab = gemini_model_vocab_size(model);
    dec.n_text_ctx = gemini_model_get_hparams(model)->max_position;
    r = gemini_model_meta_i64(model, "whisper.n_mels", &value);
    if (r != GEMINI_OK) return r;
    dec.n_mels = (int32_t)value;
    r = gemini_model_meta_i64(model, "whisper.audio_ctx", &value);
    if (r != GEMINI_OK) return r;
    dec.n_audio_ctx = (int32_t)value;

    /* The special tokens. */
    vocab.no_speech = -1;
    if ((r = gemini__whisper_meta_id(model, "whisper.sot_id", 1, vocab.n_vocab, &vocab.sot)) ||
        (r = gemini__whisper_meta_id(model, "whisper.eot_id", 1, vocab.n_vocab, &vocab.eot)) ||
        (r = gemini__whisper_meta_id(model, "whisper.translate_id", 1, vocab.n_vocab,
                                     &vocab.translate)) ||
        (r = gemini__whisper_meta_id(model, "whisper.transcribe_id", 1, vocab.n_vocab,
                                     &vocab.transcribe)) ||
        (r = gemini__whisper_meta_id(model, "whisper.sot_lm_id", 1, vocab.n_vocab,
                                     &vocab.sot_lm)) ||
        (r = gemini__whisper_meta_id(model, "whisper.sot_prev_id", 1, vocab.n_vocab,
                                     &vocab.sot_prev)) ||
        (r = gemini__whisper_meta_id(model, "whisper.no_speech_id", 0, vocab.n_vocab,
                                     &vocab.no_speech)) ||
        (r = gemini__whisper_meta_id(model, "whisper.no_timestamps_id", 1, vocab.n_vocab,
                                     &vocab.no_timestamps)) ||
        (r = gemini__whisper_meta_id(model, "whisper.timestamp_begin_id", 1, vocab.n_vocab,
                                     &vocab.timestamp_begin)))
        return r;

    /* Multilingual as the reference decides it: by the vocabulary size. */
    vocab.multilingual = vocab.n_vocab >= 51865;
    r = gemini__whisper_meta_ids(model, "whisper.lang_ids", vocab.n_vocab, &lang_ids,
                                 &vocab.n_languages);
    if (r == GEMINI_OK && vocab.n_languages > 0)
        r = gemini__whisper_meta_codes(model, vocab.n_languages, &lang_codes);
    if (r != GEMINI_OK) goto done;
    vocab.language_ids = lang_ids;
    vocab.language_codes = (const char *const *)lang_codes;

    /* Text: the stored tokenizer, from which the non-speech list and the blank are computed
       as the reference computes them; without one, the stored lists. */
    r = gemini_model_tokenizer(model, &tok);
    if (r == GEMINI_ERR_MISSING_KEY) r = GEMINI_OK;
    if (r != GEMINI_OK) goto done;
    vocab.tokenizer = tok;
    if (!tok) {
        r = gemini__whisper_meta_ids(model, "whisper.suppress_tokens", vocab.n_vocab,
                                     &non_speech, &vocab.n_non_speech_tokens);
        if (r == GEMINI_OK)
            r = gemini__whisper_meta_ids(model, "whisper.begin_suppress_tokens", vocab.n_vocab,
                                         &blank, &n_blank);
        if (r != GEMINI_OK) goto done;
        vocab.non_speech_tokens = non_speech;
        if (non_speech == NULL) vocab.non_speech_tokens = &vocab.eot, vocab.n_non_speech_tokens = 0;
        /* begin_suppress_tokens lists eot too; the filter adds it itself. */
        for (i = 0; blank && i < n_blank; i++)
            if (blank[i] == vocab.eot) blank[i--] = blank[--n_blank];
        vocab.blank_tokens = blank ? blank : &vocab.eot;
        vocab.n_blank_tokens = n_blank;
    }

    /* The decoder: contexts of the whole text length, made when first needed. */
    m.model = model;
    m.n_mels = dec.n_mels;
    m.context_params = gemini_context_default_params();
    m.context_params.n_ctx = dec.n_text_ctx;
    if (p.n_threads > 0) m.context_params.n_threads = p.n_threads;
    m.context_params.kv_type = (gemini_type)p.kv_type;
    dec.user_data = &m;
    dec.max_slots = GEMINI_WHISPER_MAX_SLOTS;
    dec.encode = gemini__whisper_model_encode;
    dec.decode = gemini__whisper_model_decode;
    dec.decode_slots = gemini__whisper_model_decode_slots;
    dec.copy = gemini__whisper_model_copy;
    dec.reset = gemini__whisper_model_reset;

    r = gemini_whisper_transcribe_with(&vocab, &dec, samples_16k, n_samples, &p, out);

done:
    for (i = 0; i < GEMINI_WHISPER_MAX_SLOTS; i++) gemini_context_free(m.contexts[i]);
    gemini_tok_free(tok);
    GEMINI_FREE(lang_ids);
    GEMINI_FREE(lang_codes);
    GEMINI_FREE(non_speech);
    GEMINI_FREE(blank);
    return r;
}

#endif /* GEMINI_H */

#if defined(GEMINI_STATIC) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC diagnostic pop
#endif

#endif /* GEMINI_AUDIO_IMPLEMENTATION */
