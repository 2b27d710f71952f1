/* gemini-tokenize - encode or decode standard input, one line at a time.

   Output matches spm_encode --output_format=id (or piece): one line per input line, tokens
   separated by single spaces.

   Build: cc -O2 -I. examples/gemini-tokenize.c -o gemini-tokenize -lm -lpthread
   (gemini.h is needed only to read the tokenizer stored in a .gemini model file.)
*/
#define GEMINI_IMPLEMENTATION
#include "gemini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: gemini-tokenize -m MODEL [--ids | --pieces] [--parse-special | --no-parse-special]\n"
    "                       [--decode] [--bos]\n"
    "\n"
    "Reads standard input line by line and writes one line per input line.\n"
    "  -m MODEL            a SentencePiece .model, a Hugging Face tokenizer.json or a\n"
    "                      .gemini model file\n"
    "  --ids               print token ids (default)\n"
    "  --pieces            print token pieces, as spm_encode --output_format=piece does\n"
    "  --parse-special     text of control tokens (<bos>, <eos>, <unk>, ...) becomes those\n"
    "                      tokens\n"
    "  --no-parse-special  control-token text is plain text, as in spm_encode (default)\n"
    "  --decode            input lines are space-separated ids; print the decoded text\n"
    "  --bos               put the BOS token first when encoding\n"
    "  -h, --help          show this help\n"
    "The trailing newline of each input line is not part of the text.\n";

/* Opens the model; the one place that knows the file kinds. A .gemini file is recognised by
   its magic; anything else goes to the tokenizer's own loader (.model or tokenizer.json). */
static gemini_tok *open_model(const char *path)
{
    gemini_tok *tok = NULL;
    gemini_model *model = NULL;
    unsigned char magic[4] = {0};
    FILE *file = fopen(path, "rb");
    int is_gemini = file != NULL && fread(magic, 1, 4, file) == 4 && memcmp(magic, "GMNI", 4) == 0;
    gemini_result result;
    if (file != NULL)
        fclose(file);

    if (is_gemini) {
        result = gemini_model_load(path, &model);
        if (result == GEMINI_OK)
            result = gemini_model_tokenizer(model, &tok);
        gemini_model_free(model);
    } else {
        result = gemini_tok_load(path, &tok);
    }
    if (result != GEMINI_OK) {
        fprintf(stderr, "gemini-tokenize: %s\n", gemini_last_error());
        return NULL;
    }
    return tok;
}

/* Reads one line of any length without its newline; returns 0 at the end of input. */
static int read_line(FILE *f, char **line, size_t *cap, size_t *len)
{
    *len = 0;
    for (;;) {
        size_t got, chunk;
        char *newline;
        if (*len + 2 >= *cap) {
            size_t new_cap = *cap ? *cap * 2 : 4096;
            char *p = (char *)realloc(*line, new_cap);
            if (!p) return 0;
            *line = p;
            *cap = new_cap;
        }
        /* fgets does not say how much it read, and lines may hold NUL bytes: fill the space
           with a non-NUL mark first; without a newline, the read text ends at the last byte
           that is not the mark (fgets's own terminating NUL). */
        chunk = *cap - *len > 1024 ? 1024 : *cap - *len;
        memset(*line + *len, 'x', chunk);
        if (!fgets(*line + *len, (int)chunk, f)) return *len > 0;
        newline = (char *)memchr(*line + *len, '\n', chunk - 1);
        if (newline) {
            got = (size_t)(newline - (*line + *len)) + 1; /* fgets stops after a newline */
        } else {
            got = chunk - 1;
            while (got > 0 && (*line)[*len + got] == 'x') got--;
        }
        *len += got;
        if (*len > 0 && (*line)[*len - 1] == '\n') {
            (*len)--;
            return 1;
        }
        if (got == 0) return *len > 0;
    }
}

typedef struct piece_printer {
    int first;
} piece_printer;

static void print_piece(void *user, int32_t id, const char *piece, size_t len)
{
    piece_printer *pp = (piece_printer *)user;
    (void)id;
    if (!pp->first) fputc(' ', stdout);
    fwrite(piece, 1, len, stdout);
    pp->first = 0;
}

/* printf is a large share of the time when lines are short; this is the same output. */
static void print_id(int32_t id, int first)
{
    char digits[16];
    int n = 0;
    uint32_t v = id < 0 ? 0u - (uint32_t)id : (uint32_t)id;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (!first) fputc(' ', stdout);
    if (id < 0) fputc('-', stdout);
    while (n > 0) fputc(digits[--n], stdout);
}

static int encode_line(const gemini_tok *tok, const char *line, size_t len, uint32_t flags,
                       int pieces, int32_t **ids, int32_t *cap)
{
    int32_t n = 0, i;
    if (pieces) {
        piece_printer pp;
        pp.first = 1;
        if (gemini_tok_encode_pieces(tok, line, len, flags, print_piece, &pp) != GEMINI_OK)
            return 0;
        fputc('\n', stdout);
        return 1;
    }
    if (*cap == 0) { /* a NULL buffer would make the call a mere count query */
        *ids = (int32_t *)malloc(256 * sizeof(int32_t));
        if (!*ids) return 0;
        *cap = 256;
    }
    /* Try the buffer we have; on "too small" grow it to the reported need and retry. */
    if (gemini_tok_encode(tok, line, len, flags, *ids, *cap, &n) != GEMINI_OK) {
        int32_t *p;
        if (n <= *cap) return 0;
        p = (int32_t *)realloc(*ids, (size_t)n * sizeof(int32_t));
        if (!p) return 0;
        *ids = p;
        *cap = n;
        if (gemini_tok_encode(tok, line, len, flags, *ids, *cap, &n) != GEMINI_OK) return 0;
    }
    for (i = 0; i < n; i++) print_id((*ids)[i], i == 0);
    fputc('\n', stdout);
    return 1;
}

/* Prints the text of one line of ids: 1, or 0 (gemini_last_error() says why), or -1 (a line
   that is not ids, said here). */
static int decode_line(const gemini_tok *tok, char *line, size_t len, int32_t **ids,
                       int32_t *cap)
{
    int32_t n = 0;
    size_t i = 0, text_len = 0;
    char *text;
    while (i < len) {
        char *end;
        long v;
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
        if (i >= len) break;
        line[len] = 0;
        v = strtol(line + i, &end, 10);
        if (end == line + i || v < -2147483647L || v > 2147483647L) {
            fprintf(stderr, "gemini-tokenize: not an id: \"%.20s\"\n", line + i);
            return -1; /* said here; gemini_last_error() has nothing to add */
        }
        if (n == *cap) {
            int32_t *p = (int32_t *)realloc(*ids, (size_t)(*cap * 2 + 16) * sizeof(int32_t));
            if (!p) return 0;
            *ids = p;
            *cap = *cap * 2 + 16;
        }
        (*ids)[n++] = (int32_t)v;
        i = (size_t)(end - line);
    }
    if (gemini_tok_decode(tok, *ids, (size_t)n, NULL, 0, &text_len) != GEMINI_OK) return 0;
    text = (char *)malloc(text_len + 1);
    if (!text) return 0;
    if (gemini_tok_decode(tok, *ids, (size_t)n, text, text_len + 1, &text_len) != GEMINI_OK) {
        free(text);
        return 0;
    }
    fwrite(text, 1, text_len, stdout);
    fputc('\n', stdout);
    free(text);
    return 1;
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    int pieces = 0, decode = 0, i, status = 1;
    uint32_t flags = 0;
    gemini_tok *tok;
    char *line = NULL;
    size_t cap = 0, len;
    int32_t *ids = NULL, ids_cap = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-m") == 0 && i + 1 < argc) model = argv[++i];
        else if (strcmp(a, "--ids") == 0) pieces = 0;
        else if (strcmp(a, "--pieces") == 0) pieces = 1;
        else if (strcmp(a, "--parse-special") == 0) flags |= GEMINI_TOK_PARSE_SPECIAL;
        else if (strcmp(a, "--no-parse-special") == 0) flags &= ~GEMINI_TOK_PARSE_SPECIAL;
        else if (strcmp(a, "--decode") == 0) decode = 1;
        else if (strcmp(a, "--bos") == 0) flags |= GEMINI_TOK_ADD_BOS;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "gemini-tokenize: unknown argument \"%s\"\n%s", a, usage);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "gemini-tokenize: -m MODEL is required\n%s", usage);
        return 2;
    }
    tok = open_model(model);
    if (!tok) return 1;

    /* status: 1 ok, 0 failed (gemini_last_error() says why), -1 failed and said so */
    while (status > 0 && read_line(stdin, &line, &cap, &len)) {
        if (len + 1 > cap) { /* room for the NUL decode_line writes */
            char *p = (char *)realloc(line, len + 1);
            if (!p) {
                fprintf(stderr, "gemini-tokenize: out of memory\n");
                status = -1;
                break;
            }
            line = p;
            cap = len + 1;
        }
        status = decode ? decode_line(tok, line, len, &ids, &ids_cap)
                        : encode_line(tok, line ? line : "", len, flags, pieces, &ids, &ids_cap);
    }
    if (status == 0) fprintf(stderr, "gemini-tokenize: %s\n", gemini_last_error());
    free(line);
    free(ids);
    gemini_tok_free(tok);
    return status > 0 ? 0 : 1;
}
