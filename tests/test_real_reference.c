/* Compares gemini.h on the real Gemma 3 270M weights with the Hugging Face reference recorded
   by tools/make_real_reference.py (tests/fixtures/gemma3-270m/reference.txt, format in the
   README there).

   Usage: test_real_reference MODEL.gemini FIXTURE_DIR
   MODEL is the f32 conversion of the same GGUF (build/gemini-convert --type f32 ...).

   For every recorded row (prompt positions, and the 16 greedy steps, which are fed the
   reference's tokens so that the rows stay comparable):
   - our logits at the recorded top-20 ids are within 1e-3 of the row's largest |logit|, and
     our log-sum-exp over the whole row is too;
   - our argmax is the reference's wherever the reference's top-1/top-2 gap is > 1e-2.
   The prompt is decoded in one batched call per 64 tokens (all_logits), the greedy steps one
   token at a time through the KV cache. Uses only the public API of gemini.h.
   Prints one line per check, the largest errors, and ends with "N passed, M failed". */
#define GEMINI_IMPLEMENTATION
#include "gemini.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPK 20
#define MAX_IDS 4096
#define MAX_ROWS 128
#define CHUNK 64
#define REL_TOL 1e-3
#define GAP_MIN 1e-2

typedef struct row_ref {
    int pos;                    /* prompt position, or greedy step */
    double maxabs, lse;
    int ids[TOPK];
    double logits[TOPK];
} row_ref;

typedef struct prompt_ref {
    char name[64];
    int n_ids;
    int32_t ids[MAX_IDS];
    int n_pos;
    row_ref pos[MAX_ROWS];
    int n_greedy;
    int32_t greedy[64];
    double gaps[64];
    int n_steps;
    row_ref steps[64];
} prompt_ref;

static int passed, failed;
static double worst_rel, worst_abs, worst_lse_rel;
static char worst_where[160];

static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (ok)
        passed++;
    else
        failed++;
}

/* Parses "P maxabs M lse L top id:v ..." (after the tag). */
static int parse_row(const char *s, row_ref *r)
{
    int k, n;
    if (sscanf(s, "%d maxabs %lf lse %lf top %n", &r->pos, &r->maxabs, &r->lse, &n) != 3)
        return 0;
    s += n;
    for (k = 0; k < TOPK; k++) {
        if (sscanf(s, "%d:%lf %n", &r->ids[k], &r->logits[k], &n) != 2)
            return 0;
        s += n;
    }
    return 1;
}

static int parse_ints(const char *s, int32_t *out, int max)
{
    int n = 0, used;
    long v;
    while (n < max && sscanf(s, "%ld%n", &v, &used) == 1) {
        out[n++] = (int32_t)v;
        s += used;
    }
    return n;
}

/* Reads FIXTURE_DIR/reference.txt; returns the number of prompts, or -1. */
static int load_reference(const char *dir, prompt_ref *prompts, int max_prompts)
{
    char path[1024], *line;
    size_t cap = 1 << 20;
    FILE *f;
    int n = -1, lineno = 0;
    prompt_ref *p = NULL;
    snprintf(path, sizeof path, "%s/reference.txt", dir);
    f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    line = (char *)malloc(cap);
    n = 0;
    while (line && fgets(line, (int)cap, f)) {
        lineno++;
        if (strncmp(line, "prompt ", 7) == 0) {
            if (n == max_prompts)
                break;
            p = &prompts[n++];
            memset(p, 0, sizeof *p);
            if (sscanf(line + 7, "%63s %d", p->name, &p->n_ids) != 2 || p->n_ids > MAX_IDS)
                goto bad;
        } else if (!p) {
            continue;                                   /* header lines */
        } else if (strncmp(line, "input ", 6) == 0) {
            if (parse_ints(line + 6, p->ids, MAX_IDS) != p->n_ids)
                goto bad;
        } else if (strncmp(line, "pos ", 4) == 0) {
            if (p->n_pos == MAX_ROWS || !parse_row(line + 4, &p->pos[p->n_pos++]))
                goto bad;
        } else if (strncmp(line, "step ", 5) == 0) {
            if (p->n_steps == 64 || !parse_row(line + 5, &p->steps[p->n_steps++]))
                goto bad;
        } else if (strncmp(line, "greedy ", 7) == 0) {
            p->n_greedy = parse_ints(line + 7, p->greedy, 64);
        } else if (strncmp(line, "gaps ", 5) == 0) {
            const char *s = line + 5;
            int k = 0, used;
            while (k < 64 && sscanf(s, "%lf%n", &p->gaps[k], &used) == 1) {
                k++;
                s += used;
            }
            if (k != p->n_greedy)
                goto bad;
        }
    }
    free(line);
    fclose(f);
    return n;
bad:
    fprintf(stderr, "%s:%d: cannot parse\n", path, lineno);
    free(line);
    fclose(f);
    return -1;
}

static int argmax(const float *row, int n)
{
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (row[i] > row[best])
            best = i;
    return best;
}

static double logsumexp(const float *row, int n)
{
    double m = row[argmax(row, n)], s = 0;
    int i;
    for (i = 0; i < n; i++)
        s += exp((double)row[i] - m);
    return m + log(s);
}

/* One recorded row against ours: values at the top-20 ids, log-sum-exp, argmax. */
static void compare_row(const char *prompt, const char *kind, const row_ref *r, double gap,
                        const float *row, int n_vocab)
{
    double err = 0, tol = REL_TOL * r->maxabs, lse_err;
    int k, worst_k = 0, ours = argmax(row, n_vocab), ok;
    for (k = 0; k < TOPK; k++) {
        double e = fabs((double)row[r->ids[k]] - r->logits[k]);
        if (e > err) {
            err = e;
            worst_k = k;
        }
    }
    lse_err = fabs(logsumexp(row, n_vocab) - r->lse);
    if (err / r->maxabs > worst_rel) {
        worst_rel = err / r->maxabs;
        worst_abs = err;
        snprintf(worst_where, sizeof worst_where, "%s %s %d id %d", prompt, kind, r->pos,
                 r->ids[worst_k]);
    }
    if (lse_err / r->maxabs > worst_lse_rel)
        worst_lse_rel = lse_err / r->maxabs;
    ok = err <= tol && lse_err <= tol && (gap <= GAP_MIN || ours == r->ids[0]);
    check(ok, "%s %s %d: top-%d max err %.3g (%.2g of max|logit| %.2f), lse err %.3g, "
          "argmax ours %d ref %d (gap %.4f%s)", prompt, kind, r->pos, TOPK, err,
          err / r->maxabs, r->maxabs, lse_err, ours, r->ids[0], gap,
          gap <= GAP_MIN ? ", near-tie: not required" : "");
}

static int run_prompt(const gemini_model *model, const prompt_ref *p, float *buf, int n_vocab)
{
    gemini_context_params params = gemini_context_default_params();
    gemini_context *ctx = NULL;
    int start, next_pos = 0, s, agree = 0;
    params.n_ctx = p->n_ids + p->n_greedy + 8;
    params.n_threads = 2;
    if (gemini_context_create(model, &params, &ctx) != GEMINI_OK) {
        check(0, "%s: context: %s", p->name, gemini_last_error());
        return 0;
    }
    for (start = 0; start < p->n_ids; start += CHUNK) {
        int n = p->n_ids - start < CHUNK ? p->n_ids - start : CHUNK;
        if (gemini_decode(ctx, p->ids + start, n, buf, 1) != GEMINI_OK) {
            check(0, "%s: decode: %s", p->name, gemini_last_error());
            gemini_context_free(ctx);
            return 0;
        }
        for (; next_pos < p->n_pos && p->pos[next_pos].pos < start + n; next_pos++) {
            const row_ref *r = &p->pos[next_pos];
            /* the gap of a prompt row is the recorded top-1 minus top-2 */
            compare_row(p->name, "pos", r, r->logits[0] - r->logits[1],
                        buf + (size_t)(r->pos - start) * n_vocab, n_vocab);
        }
    }
    /* greedy: step s compares the row that predicts greedy[s], then feeds greedy[s] */
    for (s = 0; s < p->n_greedy && s < p->n_steps; s++) {
        const float *row = buf + (size_t)(s == 0 ? (p->n_ids - 1) % CHUNK : 0) * n_vocab;
        compare_row(p->name, "step", &p->steps[s], p->gaps[s], row, n_vocab);
        agree += argmax(row, n_vocab) == p->greedy[s];
        if (s + 1 < p->n_greedy && gemini_decode(ctx, &p->greedy[s], 1, buf, 0) != GEMINI_OK) {
            check(0, "%s: decode step %d: %s", p->name, s, gemini_last_error());
            break;
        }
    }
    printf("     %s: our argmax equals the reference's greedy token at %d of %d steps\n",
           p->name, agree, p->n_greedy);
    gemini_context_free(ctx);
    return 1;
}

int main(int argc, char **argv)
{
    static prompt_ref prompts[8];
    gemini_model *model = NULL;
    float *buf;
    int n, i, n_vocab;

    gemini__threads_past_cpus = 1; /* 2 threads even on a machine of 1 CPU */

    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gemini FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    n = load_reference(argv[2], prompts, 8);
    if (n <= 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    if (gemini_model_load(argv[1], &model) != GEMINI_OK) {
        check(0, "load %s: %s", argv[1], gemini_last_error());
        printf("%d passed, %d failed\n", passed, failed);
        return 1;
    }
    n_vocab = gemini_model_vocab_size(model);
    check(n_vocab == 262144, "vocab size %d", n_vocab);
    buf = (float *)malloc((size_t)CHUNK * n_vocab * sizeof(float));
    if (!buf) {
        check(0, "out of memory");
    } else {
        for (i = 0; i < n; i++)
            run_prompt(model, &prompts[i], buf, n_vocab);
    }
    printf("     largest top-20 error: %.3g (%.3g of max|logit|) at %s; largest lse error "
           "%.3g of max|logit|\n", worst_abs, worst_rel, worst_where, worst_lse_rel);
    free(buf);
    gemini_model_free(model);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
