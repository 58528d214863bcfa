/* torch_ckpt.c: load a checkpoint (see torch_ckpt.h): pick the container,
 * walk the object tree into dotted names, and copy each tensor out of its
 * storage in row-major order. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_formats.h"
#include "torch_ckpt.h"

#define MAX_NAME 4096
/* Shared subtrees could make a walk exponential: entries are counted. */
#define MAX_ENTRIES (1 << 22)
#define MAX_NAME_BYTES (64u << 20)
/* Tensors may share storages (views, tied weights), but together they may
 * not need more than this many times the storages' bytes, plus a little for
 * small expanded buffers. */
#define MAX_REUSE 4
#define REUSE_SLACK (UINT64_C(1) << 20)

struct frame {
    const struct tm_pk_value *c; /* dict, list or tuple being walked */
    size_t next;                 /* its next item */
    size_t prefix;               /* bytes of name that are its path, with the '.' */
};

struct walk {
    struct tm_ckpt *ck;
    int tensors_cap, others_cap;
    struct frame frames[TM_PK_MAX_DEPTH];
    int depth;
    char name[MAX_NAME + 2]; /* the entry at hand */
    size_t len;
    size_t entries, name_bytes;
    uint64_t bytes, max_bytes;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static tm_status fail(struct walk *w, tm_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, w->errlen, fmt, ap);
    va_end(ap);
    return s;
}

/* "'genA2B'" or "the top-level object", for messages about a container. */
static const char *where(const struct walk *w, size_t prefix, char buf[100])
{
    if (!prefix)
        return "the top-level object";
    snprintf(buf, 100, "'%.*s'", (int)(prefix - 1 < 90 ? prefix - 1 : 90), w->name);
    return buf;
}

/* ---- Tensors ---------------------------------------------------------- */

static void shape_text(const struct tm_pk_tensor *t, char buf[200])
{
    int n = snprintf(buf, 200, "[");
    for (int k = 0; k < t->ndim; k++)
        n += snprintf(buf + n, (size_t)(200 - n), "%s%lld", k ? ", " : "", (long long)t->shape[k]);
    snprintf(buf + n, (size_t)(200 - n), "]");
}

/* The tensor's bytes, after checking that every element it reaches lies in
 * its storage view. */
static tm_status check_tensor(struct walk *w, const struct tm_pk_tensor *t, uint64_t *nbytes)
{
    char shape[200];
    int64_t numel = 1, last = t->offset, span;
    uint64_t es = (uint64_t)tm_ckpt_dtype_size(t->view.storage->dtype);
    bool empty = false;
    for (int k = 0; k < t->ndim; k++)
        empty |= t->shape[k] == 0;
    for (int k = 0; k < t->ndim && !empty; k++) {
        if (__builtin_mul_overflow(numel, t->shape[k], &numel) || (uint64_t)numel > SIZE_MAX / es) {
            shape_text(t, shape);
            return fail(w, TM_ERR_FORMAT, "tensor '%s': shape %s has too many elements", w->name,
                        shape);
        }
        if (__builtin_mul_overflow(t->shape[k] - 1, t->stride[k], &span) ||
            __builtin_add_overflow(last, span, &last))
            return fail(w, TM_ERR_FORMAT, "tensor '%s': its strides overflow", w->name);
    }
    *nbytes = empty ? 0 : (uint64_t)numel * es;
    if (!empty && last >= t->view.numel)
        return fail(w, TM_ERR_FORMAT,
                    "tensor '%s' reaches past its storage: element %lld of %lld", w->name,
                    (long long)last, (long long)t->view.numel);
    return TM_OK;
}

/* Copies the elements in row-major order (numel > 0); the innermost
 * dimension is one memcpy when its stride is 1. */
static void copy_strided(const struct tm_pk_tensor *t, uint8_t *dst)
{
    size_t es = (size_t)tm_ckpt_dtype_size(t->view.storage->dtype);
    const uint8_t *src = t->view.storage->data + (size_t)(t->view.offset + t->offset) * es;
    int nd = t->ndim;
    int64_t inner = nd ? t->shape[nd - 1] : 1, step = nd ? t->stride[nd - 1] : 0;
    int64_t idx[TM_CK_MAX_DIMS] = { 0 };
    for (;;) {
        int64_t base = 0;
        for (int k = 0; k < nd - 1; k++)
            base += idx[k] * t->stride[k];
        if (step == 1) {
            memcpy(dst, src + (size_t)base * es, (size_t)inner * es);
            dst += (size_t)inner * es;
        } else {
            for (int64_t j = 0; j < inner; j++, dst += es)
                memcpy(dst, src + (size_t)(base + j * step) * es, es);
        }
        int k = nd - 2;
        while (k >= 0 && ++idx[k] == t->shape[k])
            idx[k--] = 0;
        if (k < 0)
            return;
    }
}

static tm_status take_name(struct walk *w, char **out)
{
    if ((w->name_bytes += w->len + 1) > MAX_NAME_BYTES)
        return fail(w, TM_ERR_FORMAT, "the checkpoint's names take more than %u MiB",
                    MAX_NAME_BYTES >> 20);
    *out = strdup(w->name);
    return *out ? TM_OK : fail(w, TM_ERR_NOMEM, "out of memory");
}

static tm_status add_tensor(struct walk *w, const struct tm_pk_tensor *t, size_t prefix)
{
    struct tm_ckpt *ck = w->ck;
    uint64_t nbytes = 0;
    tm_status s = check_tensor(w, t, &nbytes);
    if (s)
        return s;
    if (nbytes > w->max_bytes - w->bytes)
        return fail(w, TM_ERR_FORMAT,
                    "the tensors need more than %d times the bytes of their storages", MAX_REUSE);
    w->bytes += nbytes;
    if (ck->n_tensors == w->tensors_cap) {
        int cap = w->tensors_cap ? w->tensors_cap * 2 : 64;
        struct tm_ckpt_tensor *v = realloc(ck->tensors, (size_t)cap * sizeof *v);
        if (!v)
            return fail(w, TM_ERR_NOMEM, "out of memory");
        ck->tensors = v;
        w->tensors_cap = cap;
    }
    struct tm_ckpt_tensor *out = &ck->tensors[ck->n_tensors];
    memset(out, 0, sizeof *out);
    if ((s = take_name(w, &out->name)))
        return s;
    if (!(out->data = malloc(nbytes ? (size_t)nbytes : 1))) {
        free(out->name);
        return fail(w, TM_ERR_NOMEM, "out of memory: tensor '%s' needs %llu bytes", w->name,
                    (unsigned long long)nbytes);
    }
    out->prefix_len = (int)prefix;
    out->dtype = t->view.storage->dtype;
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, sizeof out->shape);
    out->nbytes = (size_t)nbytes;
    if (nbytes)
        copy_strided(t, out->data);
    ck->n_tensors++;
    return TM_OK;
}

static tm_status add_other(struct walk *w)
{
    struct tm_ckpt *ck = w->ck;
    if (ck->n_others == w->others_cap) {
        int cap = w->others_cap ? w->others_cap * 2 : 16;
        char **v = realloc(ck->others, (size_t)cap * sizeof *v);
        if (!v)
            return fail(w, TM_ERR_NOMEM, "out of memory");
        ck->others = v;
        w->others_cap = cap;
    }
    tm_status s = take_name(w, &ck->others[ck->n_others]);
    if (!s)
        ck->n_others++;
    return s;
}

/* ---- The walk --------------------------------------------------------- */

static bool is_container(const struct tm_pk_value *v)
{
    return v->kind == TM_PK_TUPLE || v->kind == TM_PK_LIST || v->kind == TM_PK_DICT;
}

/* A list or tuple of plain values is one entry, not one per element. */
static bool has_structure(const struct tm_pk_value *v)
{
    for (size_t i = 0; i < v->u.seq.n; i++)
        if (is_container(v->u.seq.v[i]) || v->u.seq.v[i]->kind == TM_PK_TENSOR)
            return true;
    return v->kind == TM_PK_DICT;
}

static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

/* Sets name to the path of the frame's next item, which goes to *child. */
static tm_status next_entry(struct walk *w, struct frame *f, const struct tm_pk_value **child)
{
    char num[24], buf[100];
    const char *key = num;
    size_t klen;
    const struct tm_pk_value *k = f->c->kind == TM_PK_DICT ? f->c->u.seq.v[f->next++] : NULL;
    *child = f->c->u.seq.v[f->next++];
    if (!k) {
        klen = (size_t)snprintf(num, sizeof num, "%zu", f->next - 1);
    } else if (k->kind == TM_PK_INT) {
        klen = (size_t)snprintf(num, sizeof num, "%lld", (long long)k->u.i);
    } else if (k->kind == TM_PK_STR || k->kind == TM_PK_BYTES) {
        key = k->u.str.s;
        klen = k->u.str.len;
        if (has_control(key, klen))
            return fail(w, TM_ERR_FORMAT, "a key in %s holds a control character",
                        where(w, f->prefix, buf));
    } else {
        return fail(w, TM_ERR_FORMAT, "a dict in %s has a %s key", where(w, f->prefix, buf),
                    tm_pk_kind_name(k->kind));
    }
    if (++w->entries > MAX_ENTRIES)
        return fail(w, TM_ERR_FORMAT, "the checkpoint has more than %d entries", MAX_ENTRIES);
    if (f->prefix + klen > MAX_NAME)
        return fail(w, TM_ERR_FORMAT, "a name in %s is longer than %d bytes",
                    where(w, f->prefix, buf), MAX_NAME);
    memcpy(w->name + f->prefix, key, klen);
    w->len = f->prefix + klen;
    w->name[w->len] = '\0';
    return TM_OK;
}

static tm_status visit(struct walk *w, const struct tm_pk_value *v, size_t prefix)
{
    if (v->kind == TM_PK_TENSOR)
        return add_tensor(w, v->u.tensor, prefix);
    if (!is_container(v) || !has_structure(v))
        return add_other(w);
    /* pickle.c bounds the depth of the tree; this is the same bound. */
    if (w->depth == TM_PK_MAX_DEPTH)
        return fail(w, TM_ERR_FORMAT, "the checkpoint nests deeper than %d levels",
                    TM_PK_MAX_DEPTH);
    w->name[w->len] = '.';
    w->frames[w->depth++] = (struct frame){ v, 0, w->len + 1 };
    return TM_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static tm_status check_unique(struct walk *w)
{
    int n = w->ck->n_tensors;
    char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (!names)
        return fail(w, TM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        names[i] = w->ck->tensors[i].name;
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    tm_status s = TM_OK;
    for (int i = 1; i < n && !s; i++)
        if (!strcmp(names[i - 1], names[i]))
            s = fail(w, TM_ERR_FORMAT, "two tensors are named '%s'", names[i]);
    free(names);
    return s;
}

static tm_status flatten(const struct tm_pickle *pk, struct tm_ckpt *ck, char *err, size_t errlen)
{
    const struct tm_pk_value *root = pk->root;
    if (!is_container(root)) {
        snprintf(err, errlen, "the checkpoint holds a %s, not a dict of tensors",
                 tm_pk_kind_name(root->kind));
        return TM_ERR_UNSUPPORTED;
    }
    struct walk *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return TM_ERR_NOMEM;
    }
    *w = (struct walk){ .ck = ck, .err = err, .errlen = errlen, .max_bytes = REUSE_SLACK };
    /* The container readers checked every storage against the input, so
     * this sum stays far from overflowing. */
    for (int i = 0; i < pk->n_storages; i++)
        w->max_bytes += MAX_REUSE * (uint64_t)pk->storages[i]->numel *
                        (uint64_t)tm_ckpt_dtype_size(pk->storages[i]->dtype);
    w->frames[0] = (struct frame){ root, 0, 0 };
    w->depth = 1;
    tm_status s = TM_OK;
    while (w->depth && !s) {
        struct frame *f = &w->frames[w->depth - 1];
        const struct tm_pk_value *child;
        if (f->next >= f->c->u.seq.n)
            w->depth--;
        else if (!(s = next_entry(w, f, &child)))
            s = visit(w, child, f->prefix);
    }
    if (!s)
        s = check_unique(w);
    free(w);
    return s;
}

/* ---- Entry points ----------------------------------------------------- */

tm_status tm_ckpt_load_memory(const uint8_t *bytes, size_t size, struct tm_ckpt *ck, char *err,
                              size_t errlen)
{
    memset(ck, 0, sizeof *ck);
    if (!size) {
        snprintf(err, errlen, "not a PyTorch checkpoint (the file is empty)");
        return TM_ERR_FORMAT;
    }
    if ((uint64_t)size > (uint64_t)TM_CK_MAX_FILE) {
        snprintf(err, errlen, "checkpoints over 8 GiB are not supported");
        return TM_ERR_UNSUPPORTED;
    }
    bool zip = size >= 2 && bytes[0] == 'P' && bytes[1] == 'K';
    struct tm_pickle pk;
    uint8_t *blob = NULL;
    tm_status s = zip ? tm_ckpt_read_zip(bytes, size, &pk, &blob, err, errlen)
                      : tm_ckpt_read_legacy(bytes, size, &pk, err, errlen);
    if (!s)
        s = flatten(&pk, ck, err, errlen);
    tm_pickle_free(&pk);
    free(blob);
    if (s)
        tm_ckpt_free(ck);
    else
        ck->format = zip ? "zip" : "legacy";
    return s;
}

static tm_status read_all(int fd, uint8_t *buf, size_t size, char *err, size_t errlen)
{
    for (size_t got = 0; got < size;) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "cannot read the checkpoint: %s",
                     r < 0 ? strerror(errno) : "the file shrank while being read");
            return TM_ERR_IO;
        }
        got += (size_t)r;
    }
    return TM_OK;
}

tm_status tm_ckpt_load(const char *path, struct tm_ckpt *ck, char *err, size_t errlen)
{
    memset(ck, 0, sizeof *ck);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the checkpoint: %s", strerror(errno));
        return TM_ERR_IO;
    }
    struct stat st;
    uint8_t *buf = NULL;
    tm_status s = TM_OK;
    if (fstat(fd, &st)) {
        snprintf(err, errlen, "cannot read the checkpoint: %s", strerror(errno));
        s = TM_ERR_IO;
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot read the checkpoint: not a regular file");
        s = TM_ERR_IO;
    } else if (st.st_size > TM_CK_MAX_FILE) {
        snprintf(err, errlen, "checkpoints over 8 GiB are not supported");
        s = TM_ERR_UNSUPPORTED;
    } else if (!(buf = malloc(st.st_size ? (size_t)st.st_size : 1))) {
        snprintf(err, errlen, "out of memory: the checkpoint has %lld bytes",
                 (long long)st.st_size);
        s = TM_ERR_NOMEM;
    } else {
        s = read_all(fd, buf, (size_t)st.st_size, err, errlen);
    }
    close(fd);
    if (!s)
        s = tm_ckpt_load_memory(buf, (size_t)st.st_size, ck, err, errlen);
    free(buf);
    return s;
}

void tm_ckpt_free(struct tm_ckpt *ck)
{
    for (int i = 0; i < ck->n_tensors; i++) {
        free(ck->tensors[i].name);
        free(ck->tensors[i].data);
    }
    for (int i = 0; i < ck->n_others; i++)
        free(ck->others[i]);
    free(ck->tensors);
    free(ck->others);
    memset(ck, 0, sizeof *ck);
}
