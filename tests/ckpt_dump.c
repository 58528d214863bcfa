/* ckpt_dump: loads a PyTorch checkpoint with tools/convert and writes every
 * tensor, under its full dotted name and in its own dtype (F32 as F16 with
 * --half), to a safetensors file with st_write; then reads the file back
 * with the core's reader and checks every tensor. For tests/test_ckpt.py.
 *
 * Metadata: "format" (zip or legacy), "order" (a line "<prefix_len> <name>"
 * per tensor, in load order) and "others" (a line per non-tensor entry).
 *
 * Usage: ckpt_dump [--half] CKPT OUT.safetensors
 * Exits 0, or 1 with a one-line message on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_write.h"
#include "torch_ckpt.h"
#include "weights/safetensors.h"

static int die(const char *what, const char *msg)
{
    fprintf(stderr, "ckpt_dump: %s: %s\n", what, msg);
    return 1;
}

/* The F16 copy of an F32 tensor's data. */
static void *to_half(const struct tm_ckpt_tensor *t)
{
    size_t n = t->nbytes / 4;
    uint16_t *h = malloc(n * 2 + 1);
    const float *f = t->data;
    for (size_t i = 0; h && i < n; i++)
        h[i] = tm_float_to_half(f[i]);
    return h;
}

/* "order" and "others" metadata values. */
static void describe(const struct tm_ckpt *ck, char **order, char **others)
{
    size_t n;
    FILE *f = open_memstream(order, &n);
    for (int i = 0; f && i < ck->n_tensors; i++)
        fprintf(f, "%d %s\n", ck->tensors[i].prefix_len, ck->tensors[i].name);
    if (f)
        fclose(f);
    f = open_memstream(others, &n);
    for (int i = 0; f && i < ck->n_others; i++)
        fprintf(f, "%s\n", ck->others[i]);
    if (f)
        fclose(f);
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n = -1;
    if (f && !fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    *size = (size_t)n;
    return buf;
}

/* Every written tensor must come back from core/weights/safetensors.c as it went in. */
static const char *check_back(const char *path, const struct tm_stw_tensor *w, int n,
                              const char *format)
{
    static char msg[300];
    size_t size;
    uint8_t *bytes = read_file(path, &size);
    struct tm_safetensors st;
    if (!bytes)
        return "cannot read the output back";
    if (tm_st_parse(bytes, size, &st, msg, sizeof msg)) {
        free(bytes);
        return msg;
    }
    const char *bad = st.n_tensors != n || !tm_st_meta(&st, "format") ||
                      strcmp(tm_st_meta(&st, "format"), format) ? "tensor count or metadata" : NULL;
    for (int i = 0; !bad && i < n; i++) {
        const struct tm_st_tensor *t = tm_st_find(&st, w[i].name);
        if (!t || strcmp(t->dtype_name, w[i].dtype) || t->ndim != w[i].ndim ||
            memcmp(t->shape, w[i].shape, sizeof(int64_t) * (size_t)w[i].ndim) ||
            t->nbytes != w[i].nbytes || memcmp(st.data + t->offset, w[i].data, w[i].nbytes)) {
            snprintf(msg, sizeof msg, "read back differs at tensor '%s'", w[i].name);
            bad = msg;
        }
    }
    tm_st_free(&st);
    free(bytes);
    return bad;
}

int main(int argc, char **argv)
{
    int half = argc == 4 && !strcmp(argv[1], "--half");
    if (argc != 3 + half) {
        fprintf(stderr, "usage: ckpt_dump [--half] CKPT OUT.safetensors\n");
        return 2;
    }
    const char *in = argv[1 + half], *out = argv[2 + half];
    char err[512];
    struct tm_ckpt ck;
    if (tm_ckpt_load(in, &ck, err, sizeof err))
        return die(in, err);

    struct tm_stw_tensor *w = calloc((size_t)ck.n_tensors + 1, sizeof *w);
    for (int i = 0; w && i < ck.n_tensors; i++) {
        const struct tm_ckpt_tensor *t = &ck.tensors[i];
        bool conv = half && t->dtype == TM_CK_F32;
        w[i] = (struct tm_stw_tensor){ t->name, conv ? "F16" : tm_ckpt_dtype_name(t->dtype),
                                       t->ndim, t->shape, conv ? to_half(t) : t->data,
                                       conv ? t->nbytes / 2 : t->nbytes };
    }
    char *order = NULL, *others = NULL;
    describe(&ck, &order, &others);
    struct tm_stw_meta meta[] = {
        { "format", ck.format }, { "order", order }, { "others", others },
    };
    int rc = 0;
    const char *bad;
    if (!w || !order || !others)
        rc = die(out, "out of memory");
    else if (tm_st_write(out, w, ck.n_tensors, meta, 3, err, sizeof err))
        rc = die(out, err);
    else if ((bad = check_back(out, w, ck.n_tensors, ck.format)))
        rc = die(out, bad);
    for (int i = 0; w && i < ck.n_tensors; i++)
        if (w[i].data != ck.tensors[i].data)
            free((void *)w[i].data);
    free(w);
    free(order);
    free(others);
    tm_ckpt_free(&ck);
    return rc;
}
