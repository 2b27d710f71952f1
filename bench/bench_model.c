/* bench_model - speed of one .gemini model against this machine's roofline (bench/roofline.c).

   In this order, in one process (so that peak resident memory belongs to one model):
     1. first token: from just before gemini_model_load to the argmax of the first logits for a
        short text prompt (tokenizer built from the file, text encoded, context created, prompt
        decoded). The page cache is warm (the file was read before), but the mapping is new, so
        the weight pages are faulted in here, as in any fresh process.
     2. prefill: a fixed pseudo-random sequence of PROMPT valid token ids (BOS first), no
        tokenizer; one gemini_decode call asking for the last token's logits; best of RUNS.
     3. decode: after each prefill, GEN greedy tokens one gemini_decode call each (argmax not
        timed); best of RUNS. Then the same GEN tokens again with no logits requested, which
        skips the output head: the rest of the time per token is the head's. Then, after a
        reset, GEN greedy tokens after BOS alone ("tgGEN (no prompt)", llama-bench's tg case:
        the KV cache nearly empty, so its reads hardly count).
     4. peak resident memory (getrusage ru_maxrss) against weights + context + 64 MiB.
     5. load: gemini_model_load alone (map, parse, validate the directory; no tensor data is
        touched), best of RUNS + 2, the model freed after each.

   Work per token (printed with every run, see print_method()):
     decode bytes/token  = bytes of every matrix of every block + one embedding row + the head
                           matrix (the whole embedding matrix when it is tied).
     prefill flops/token = 2 x (block matrix parameters) + attention (4 x H x D x keys visible,
                           averaged over the prompt's positions) + 2 x head parameters / PROMPT
                           (gemini_decode computes the head for the last token only).

   Usage: bench_model -m MODEL [-t THREADS] [--prompt N] [--gen N] [--runs N]
                      [--kv-type f32|f16|bf16] [--roofline FILE] [--header] [--method]
                      [--speed-only]
   --kv-type: the KV cache's element type (gemini_context_params.kv_type, default f32); the
   label then says it, and the KV cache reads of the decode split count its bytes.
   --roofline FILE: "READ_BYTES_PER_S FMA_FLOPS_PER_S" as written by roofline --values.
   --method prints how each column is computed; --speed-only prints the prefill and decode rows
   alone.

   Build: cc -std=c99 -O2 -Wall -Wextra -pedantic -I. bench/bench_model.c -o build/bench_model
          -lm -lpthread */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime, getrusage */
#endif

#define GEMINI_IMPLEMENTATION
#include "gemini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MIB (1024.0 * 1024.0)

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_model: %s: %s\n", what, gemini_last_error());
    exit(1);
}

static int32_t argmax(const float *logits, int32_t n)
{
    int32_t i, best = 0;
    for (i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* What one token costs, from the model's tensor table and hyperparameters. */
typedef struct model_cost {
    double block_matrix_params;     /* every 2-D tensor under blk.* */
    double block_matrix_bytes;
    double head_params, head_bytes; /* token_embd when tied, else output */
    double embd_row_bytes;
    double weight_bytes;            /* every tensor */
    int32_t n_local, n_global;      /* sliding-window and global layers */
} model_cost;

static int starts_with(const char *s, uint32_t length, const char *prefix)
{
    size_t n = strlen(prefix);
    return length >= n && memcmp(s, prefix, n) == 0;
}

static int is_named(const char *s, uint32_t length, const char *name)
{
    return length == strlen(name) && memcmp(s, name, length) == 0;
}

static void measure_cost(const gemini_model *model, model_cost *cost)
{
    const gemini_model_hparams *hp = gemini_model_get_hparams(model);
    const char *head_name = hp->tied_embeddings ? "token_embd" : "output";
    gemini_meta_info types;
    int64_t i, n = gemini_model_tensor_count(model);
    memset(cost, 0, sizeof *cost);
    for (i = 0; i < n; i++) {
        gemini_tensor_info t;
        if (gemini_model_tensor_at(model, i, &t) != GEMINI_OK) die("tensor table");
        cost->weight_bytes += (double)t.size;
        if (t.n_dims == 2 && starts_with(t.name, t.name_length, "blk.")) {
            cost->block_matrix_params += (double)t.dims[0] * (double)t.dims[1];
            cost->block_matrix_bytes += (double)t.size;
        }
        if (is_named(t.name, t.name_length, head_name)) {
            cost->head_params = (double)t.dims[0] * (double)t.dims[1];
            cost->head_bytes = (double)t.size;
        }
        if (is_named(t.name, t.name_length, "token_embd"))
            cost->embd_row_bytes = (double)t.size / (double)t.dims[0];
    }
    /* model.layer_types: 1 for a sliding-window layer, 0 for a global one (format.md) */
    if (gemini_model_meta_find(model, "model.layer_types", &types) == GEMINI_OK &&
        types.elem_type == GEMINI_META_U8) {
        const uint8_t *v = (const uint8_t *)types.value;
        for (i = 0; i < (int64_t)types.count; i++) {
            if (v[i] == 1) cost->n_local++;
            else cost->n_global++;
        }
    } else {
        cost->n_global = hp->num_layers;
    }
}

/* Attention flops of the token at `position` summed over layers: per query head, q.k over the
   visible keys (2 x D each) and the weighted sum of as many values (2 x D each). */
static double attention_flops(const gemini_model_hparams *hp, const model_cost *cost,
                              int64_t position)
{
    double per_key = 4.0 * hp->num_heads * hp->head_dim;
    double global_keys = (double)(position + 1), local_keys = global_keys;
    if (hp->sliding_window > 0 && local_keys > hp->sliding_window) local_keys = hp->sliding_window;
    return per_key * (cost->n_global * global_keys + cost->n_local * local_keys);
}

/* K and V cache bytes the token at `position` reads (values of value_bytes each), summed over
   layers. */
static double kv_bytes(const gemini_model_hparams *hp, const model_cost *cost, int64_t position,
                       double value_bytes)
{
    double per_key = 2.0 * hp->num_kv_heads * hp->head_dim * value_bytes;
    double global_keys = (double)(position + 1), local_keys = global_keys;
    if (hp->sliding_window > 0 && local_keys > hp->sliding_window) local_keys = hp->sliding_window;
    return per_key * (cost->n_global * global_keys + cost->n_local * local_keys);
}

/* n greedy tokens after the logits in `logits`, one gemini_decode call each (into `tokens`
   unless NULL); the summed time of those calls, argmax not included. */
static double decode_greedy(gemini_context *ctx, float *logits, int32_t vocab, int n,
                            int32_t *tokens)
{
    double seconds = 0.0, t0;
    int32_t next = argmax(logits, vocab);
    int i;
    for (i = 0; i < n; i++) {
        if (tokens != NULL) tokens[i] = next;
        t0 = now_seconds();
        if (gemini_decode(ctx, &next, 1, logits, 0) != GEMINI_OK) die("decode");
        seconds += now_seconds() - t0;
        next = argmax(logits, vocab);
    }
    return seconds;
}

static void print_method(void)
{
    printf(
        "How the columns are computed (every figure measured in this run; best of RUNS):\n"
        "  prefill  tok/s = PROMPT ids (fixed pseudo-random, BOS first, no tokenizer) / the time"
        " of one\n"
        "           gemini_decode call that returns the last token's logits (n_batch 256).\n"
        "           work = flops/token = 2 x block matrix parameters + attention (4 x heads x"
        " head_dim\n"
        "           x keys visible, averaged over the prompt) + 2 x head parameters / PROMPT "
        "(only the\n"
        "           last token's logits are computed); fraction = flops/token x tok/s / fp32 FMA"
        " peak.\n"
        "  decode   tok/s = GEN greedy tokens after the prompt / the summed time of their "
        "gemini_decode\n"
        "           calls. work = bytes/token = all block matrices + one embedding row + the "
        "head matrix\n"
        "           (tied: the whole embedding matrix); fraction = bytes/token x tok/s / read "
        "bandwidth.\n"
        "  tgGEN    the same as decode, for GEN greedy tokens after BOS alone (no prompt: "
        "llama-bench's\n"
        "           tg case, little KV cache to read); same work and fraction.\n"
        "  no head  the same GEN tokens with no logits requested (the head is skipped): work"
        " = block\n"
        "           matrices + embedding row; the difference in time per token is the head's.\n"
        "  first token  gemini_model_load + tokenizer + encode + context + decode of a short "
        "prompt, in\n"
        "           a fresh process (weight pages faulted in; page cache warm).\n"
        "  load     gemini_model_load alone (mapping, parsing, checks; no page-in), best of "
        "RUNS + 2.\n"
        "  peak RSS getrusage ru_maxrss at the end, against weights + context "
        "(gemini_context_memory_size)\n"
        "           + 64 MiB.\n");
}

/* A row of a memory-bound measure: tokens/s, bytes read per token, the bandwidth that makes
   and its fraction of the roofline's read bandwidth (when known). */
static void print_bytes_row(const char *label, const char *what, double tps, double bytes,
                            double read_bw)
{
    char result[32], work[32], achieved[32], fraction[16];
    snprintf(result, sizeof result, "%.1f tok/s", tps);
    snprintf(work, sizeof work, "%.1f MB", bytes / 1e6);
    snprintf(achieved, sizeof achieved, "%.2f GB/s", bytes * tps / 1e9);
    if (read_bw > 0) snprintf(fraction, sizeof fraction, "%.1f%%", 100.0 * bytes * tps / read_bw);
    else snprintf(fraction, sizeof fraction, "-");
    printf("%-33s %-18s %14s %14s %16s %9s\n", label, what, result, work, achieved, fraction);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_model -m MODEL [-t THREADS] [--prompt N] [--gen N] "
                    "[--runs N] [--kv-type f32|f16|bf16] [--roofline FILE] [--header] "
                    "[--method] [--speed-only]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *roofline_path = NULL;
    char label[96];
    const char *short_text = "The capital of France is";
    int n_threads = 0, prompt_len = 512, gen_len = 128, runs = 3, header = 0, method = 0;
    int speed_only = 0;
    gemini_type kv_type = GEMINI_TYPE_F32;
    int i, run;
    double read_bw = 0.0, fma_peak = 0.0;
    double t_start, t_loaded, t_tok, t_encoded, t_ctx, t_first, load_best = 0.0;
    double t0_warm, warm_decode;
    double prefill_best = 0.0, decode_best = 0.0, nohead_best = 0.0, empty_best = 0.0;
    double flops_per_token, bytes_per_token, nohead_bytes, attn_flops = 0.0, kv_read = 0.0;
    int32_t short_ids[64], n_short = 0, *prompt, *generated, vocab, first_token;
    uint64_t context_bytes = 0, state = 0x9e3779b97f4a7c15ull;
    gemini_model *model;
    gemini_tok *tok;
    gemini_context *ctx;
    gemini_context_params params;
    const gemini_model_hparams *hp;
    model_cost cost;
    struct rusage usage_info;
    float *logits;
    double peak_rss, budget;
    char work[64];

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) path = argv[++i];
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--prompt") == 0 && i + 1 < argc) prompt_len = atoi(argv[++i]);
        else if (strcmp(argv[i], "--gen") == 0 && i + 1 < argc) gen_len = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--roofline") == 0 && i + 1 < argc) roofline_path = argv[++i];
        else if (strcmp(argv[i], "--header") == 0) header = 1;
        else if (strcmp(argv[i], "--method") == 0) method = 1;
        else if (strcmp(argv[i], "--speed-only") == 0) speed_only = 1;
        else if (strcmp(argv[i], "--kv-type") == 0 && i + 1 < argc) {
            if (!gemini_type_from_name(argv[++i], &kv_type)) usage();
        }
        else usage();
    }
    if (method) {
        print_method();
        if (path == NULL) return 0;
    }
    if (path == NULL || prompt_len < 2 || gen_len < 1 || runs < 1) usage();
    if (roofline_path != NULL) {
        FILE *f = fopen(roofline_path, "r");
        if (f == NULL || fscanf(f, "%lf %lf", &read_bw, &fma_peak) != 2) {
            fprintf(stderr, "bench_model: cannot read %s\n", roofline_path);
            return 1;
        }
        fclose(f);
    }
    /* 1. First token, from nothing. */
    params = gemini_context_default_params();
    if (n_threads > 0) params.n_threads = n_threads;
    params.kv_type = kv_type; /* an unsupported type fails gemini_context_create below */
    params.n_ctx = prompt_len + 2 * gen_len; /* prompt, greedy tokens, the no-head pass */
    t_start = now_seconds();
    if (gemini_model_load(path, &model) != GEMINI_OK) die(path);
    t_loaded = now_seconds();
    if (gemini_model_tokenizer(model, &tok) != GEMINI_OK) die("tokenizer");
    t_tok = now_seconds();
    if (gemini_tok_encode(tok, short_text, strlen(short_text), GEMINI_TOK_ADD_BOS, short_ids,
                          (int32_t)(sizeof short_ids / sizeof short_ids[0]), &n_short) !=
        GEMINI_OK)
        die("encode");
    t_encoded = now_seconds();
    if (gemini_context_create(model, &params, &ctx) != GEMINI_OK) die("context");
    t_ctx = now_seconds();
    {
        /* "gemma-3-270m-q8_0.gemini" run on 2 threads: "gemma-3-270m-q8_0, 2 thr"
           (the threads it runs on; "2 thr (8 asked)" where the CPUs are fewer) */
        const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
        size_t n = strlen(base);
        int used = gemini_context_threads(ctx);
        char asked[32] = "";
        if (n > 7 && strcmp(base + n - 7, ".gemini") == 0) n -= 7;
        if (used != params.n_threads)
            snprintf(asked, sizeof asked, " (%d asked)", (int)params.n_threads);
        snprintf(label, sizeof label, "%.*s, %d thr%s%s%s", (int)(n < 40 ? n : 40), base, used,
                 asked, kv_type != GEMINI_TYPE_F32 ? ", KV " : "",
                 kv_type != GEMINI_TYPE_F32 ? gemini_type_name(kv_type) : "");
    }

    vocab = gemini_model_vocab_size(model);
    logits = (float *)malloc(sizeof(float) * (size_t)vocab);
    prompt = (int32_t *)malloc(sizeof(int32_t) * (size_t)prompt_len);
    generated = (int32_t *)malloc(sizeof(int32_t) * (size_t)gen_len);
    if (logits == NULL || prompt == NULL || generated == NULL) {
        fprintf(stderr, "bench_model: no memory\n");
        return 1;
    }
    if (gemini_decode(ctx, short_ids, n_short, logits, 0) != GEMINI_OK) die("decode");
    first_token = argmax(logits, vocab);
    t_first = now_seconds();
    (void)first_token;

    /* The same short decode again, now that the weight pages are mapped in: the difference is
       what faulting them in cost the first token. */
    gemini_context_reset(ctx);
    t0_warm = now_seconds();
    if (gemini_decode(ctx, short_ids, n_short, logits, 0) != GEMINI_OK) die("decode");
    warm_decode = now_seconds() - t0_warm;

    /* 2 and 3. Prefill, then greedy decode, then the same tokens without the head. */
    hp = gemini_model_get_hparams(model);
    measure_cost(model, &cost);
    prompt[0] = 2; /* Gemma's <bos>; any valid id would do for timing */
    for (i = 1; i < prompt_len; i++) {
        /* xorshift64: ids from the ordinary part of the vocabulary, past the special pieces */
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        prompt[i] = (int32_t)(1000 + state % (uint64_t)(vocab - 1000));
    }
    for (run = 0; run < runs; run++) {
        double t0, seconds, decode_seconds, nohead_seconds = 0.0;
        gemini_context_reset(ctx);
        t0 = now_seconds();
        if (gemini_decode(ctx, prompt, prompt_len, logits, 0) != GEMINI_OK) die("prefill");
        seconds = now_seconds() - t0;
        if (prefill_best == 0.0 || seconds < prefill_best) prefill_best = seconds;
        decode_seconds = decode_greedy(ctx, logits, vocab, gen_len, generated);
        if (decode_best == 0.0 || decode_seconds < decode_best) decode_best = decode_seconds;
        for (i = 0; i < gen_len; i++) {
            t0 = now_seconds();
            if (gemini_decode(ctx, &generated[i], 1, NULL, 0) != GEMINI_OK) die("decode");
            nohead_seconds += now_seconds() - t0;
        }
        if (nohead_best == 0.0 || nohead_seconds < nohead_best) nohead_best = nohead_seconds;

        /* llama-bench's tg case: GEN greedy tokens after BOS alone (a near-empty cache) */
        gemini_context_reset(ctx);
        if (gemini_decode(ctx, prompt, 1, logits, 0) != GEMINI_OK) die("decode");
        decode_seconds = decode_greedy(ctx, logits, vocab, gen_len, NULL);
        if (empty_best == 0.0 || decode_seconds < empty_best) empty_best = decode_seconds;
    }

    /* 4. Peak resident memory, with everything still alive. */
    if (gemini_context_memory_size(model, &params, &context_bytes) != GEMINI_OK)
        die("gemini_context_memory_size");
    getrusage(RUSAGE_SELF, &usage_info);
    peak_rss = (double)usage_info.ru_maxrss * 1024.0; /* Linux: KiB */
    budget = cost.weight_bytes + (double)context_bytes + 64.0 * MIB;
    gemini_context_free(ctx);
    gemini_tok_free(tok);
    gemini_model_free(model);

    /* 5. Load alone. */
    for (run = 0; run < runs + 2; run++) {
        double t0 = now_seconds(), seconds;
        if (gemini_model_load(path, &model) != GEMINI_OK) die(path);
        seconds = now_seconds() - t0;
        gemini_model_free(model);
        if (load_best == 0.0 || seconds < load_best) load_best = seconds;
    }

    /* Work per token. */
    for (i = 0; i < prompt_len; i++) attn_flops += attention_flops(hp, &cost, i);
    attn_flops /= prompt_len;
    flops_per_token = 2.0 * cost.block_matrix_params + attn_flops +
                      2.0 * cost.head_params / prompt_len;
    bytes_per_token = cost.block_matrix_bytes + cost.embd_row_bytes + cost.head_bytes;
    nohead_bytes = cost.block_matrix_bytes + cost.embd_row_bytes;
    for (i = 0; i < gen_len; i++)
        kv_read += kv_bytes(hp, &cost, prompt_len + i,
                            (double)gemini_type_row_bytes(kv_type, 1));
    kv_read /= gen_len;

    if (header) {
        printf("%-33s %-18s %14s %14s %16s %9s\n", "model", "measure", "result",
               "work/token", "achieved", "of roof");
    }
    {
        double prefill_tps = prompt_len / prefill_best, decode_tps = gen_len / decode_best;
        double nohead_tps = gen_len / nohead_best, empty_tps = gen_len / empty_best;
        char what[32], result[32], achieved[32], fraction[16];

        snprintf(what, sizeof what, "prefill %d", prompt_len);
        snprintf(result, sizeof result, "%.1f tok/s", prefill_tps);
        snprintf(work, sizeof work, "%.1f MFLOP", flops_per_token / 1e6);
        snprintf(achieved, sizeof achieved, "%.1f GFLOP/s", flops_per_token * prefill_tps / 1e9);
        if (fma_peak > 0) {
            snprintf(fraction, sizeof fraction, "%.1f%%",
                     100.0 * flops_per_token * prefill_tps / fma_peak);
        } else {
            snprintf(fraction, sizeof fraction, "-");
        }
        printf("%-33s %-18s %14s %14s %16s %9s\n", label, what, result, work, achieved,
               fraction);

        snprintf(what, sizeof what, "decode %d", gen_len);
        print_bytes_row(label, what, decode_tps, bytes_per_token, read_bw);
        snprintf(what, sizeof what, "tg%d (no prompt)", gen_len);
        print_bytes_row(label, what, empty_tps, bytes_per_token, read_bw);
        print_bytes_row(label, "decode, no head", nohead_tps, nohead_bytes, read_bw);
        if (speed_only) goto done;

        snprintf(result, sizeof result, "%.1f ms", load_best * 1e3);
        printf("%-33s %-18s %14s\n", label, "load", result);
        snprintf(what, sizeof what, "first token (%d)", n_short);
        snprintf(result, sizeof result, "%.0f ms", (t_first - t_start) * 1e3);
        printf("%-33s %-18s %14s   load %.0f + tokenizer %.0f + encode %.1f + context %.1f + "
               "decode %.0f ms (%.0f ms once paged in)\n", label, what, result,
               (t_loaded - t_start) * 1e3, (t_tok - t_loaded) * 1e3, (t_encoded - t_tok) * 1e3,
               (t_ctx - t_encoded) * 1e3, (t_first - t_ctx) * 1e3, warm_decode * 1e3);
        snprintf(result, sizeof result, "%.0f MiB", peak_rss / MIB);
        printf("%-33s %-18s %14s   weights %.0f + context %.0f (n_ctx %d) + 64 = %.0f MiB: "
               "%s\n", label, "peak RSS", result, cost.weight_bytes / MIB,
               (double)context_bytes / MIB, params.n_ctx, budget / MIB,
               peak_rss <= budget ? "within" : "OVER");
        if (read_bw > 0)
            snprintf(fraction, sizeof fraction, "%.1f%%",
                     100.0 * (bytes_per_token + kv_read) * decode_tps / read_bw);
        else
            snprintf(fraction, sizeof fraction, "-");
        printf("%-33s %-18s %14s   head %.1f ms/token of %.1f; KV cache reads %.1f MB/token "
               "(not in work; weights and KV cache together: %s of read bandwidth)\n",
               label, "decode split", "", (decode_best - nohead_best) / gen_len * 1e3,
               decode_best / gen_len * 1e3, kv_read / 1e6, fraction);
        /* The head counted for every prompt token, as if all logits were wanted: not what
           gemini_decode does for a prompt, so shown apart and not used above. */
        if (fma_peak > 0) {
            double every = 2.0 * (cost.block_matrix_params + cost.head_params) + attn_flops;
            snprintf(what, sizeof what, "head x%d tokens", prompt_len);
            printf("%-33s %-18s %14s   %.1f MFLOP/token would be %.1f%% of the FMA peak\n",
                   label, what, "", every / 1e6,
                   100.0 * every * prefill_tps / fma_peak);
        }
    }
done:
    free(logits);
    free(prompt);
    free(generated);
    return 0;
}
