/* st_write.c: the safetensors writer (see st_write.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "st_write.h"

#define MAX_DIMS 8

static const struct {
    const char *name;
    int size;
} dtypes[] = { { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 }, { "F64", 8 } };

/* A tensor with its element size and where its data goes. */
struct item {
    const struct tm_stw_tensor *t;
    int esize;
    uint64_t offset;
};

__attribute__((format(printf, 3, 4)))
static tm_status fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return TM_ERR_INVALID;
}

/* ---- Checking the arguments ------------------------------------------- */

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
              : (*p & 0xf8) == 0xf0 ? 3 : -1;
        uint32_t c = n == 0 ? *p : n == 1 ? *p & 0x1fu : n == 2 ? *p & 0x0fu : *p & 0x07u;
        if (n < 0)
            return false;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            c = c << 6 | (p[i] & 0x3fu);
        }
        /* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
        static const uint32_t min[4] = { 0, 0x80, 0x800, 0x10000 };
        if (c < min[n] || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
            return false;
        p += n + 1;
    }
    return true;
}

static int esize_of(const char *dtype)
{
    for (size_t i = 0; dtype && i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtype, dtypes[i].name))
            return dtypes[i].size;
    return 0;
}

static tm_status check_tensor(const struct tm_stw_tensor *t, int i, int *esize, char *err,
                              size_t errlen)
{
    if (!t->name || !utf8_valid(t->name) || !strcmp(t->name, "__metadata__"))
        return fail(err, errlen, "tensor %d: the name is missing, not UTF-8 or reserved", i);
    if (!(*esize = esize_of(t->dtype)))
        return fail(err, errlen, "tensor '%s': dtype %s cannot be written", t->name,
                    t->dtype ? t->dtype : "(none)");
    if (t->ndim < 0 || t->ndim > MAX_DIMS || (t->ndim && !t->shape))
        return fail(err, errlen, "tensor '%s': %d dimensions", t->name, t->ndim);
    uint64_t numel = 1;
    bool overflow = false;
    for (int k = 0; k < t->ndim; k++) {
        if (t->shape[k] < 0)
            return fail(err, errlen, "tensor '%s': negative dimension", t->name);
        overflow |= __builtin_mul_overflow(numel, (uint64_t)t->shape[k], &numel);
    }
    overflow |= __builtin_mul_overflow(numel, (uint64_t)*esize, &numel);
    if (overflow || numel != t->nbytes || (t->nbytes && !t->data))
        return fail(err, errlen, "tensor '%s': the shape does not match its %zu bytes of data",
                    t->name, t->nbytes);
    return TM_OK;
}

static tm_status check_meta(const struct tm_stw_meta *meta, int n_meta, char *err, size_t errlen)
{
    for (int i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value || !utf8_valid(meta[i].key) ||
            !utf8_valid(meta[i].value))
            return fail(err, errlen, "metadata entry %d is missing or not UTF-8", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(meta[i].key, meta[j].key))
                return fail(err, errlen, "metadata key '%s' appears twice", meta[i].key);
    }
    return TM_OK;
}

/* ---- Layout and header ------------------------------------------------ */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct item *)a)->t->name, ((const struct item *)b)->t->name);
}

static int by_size_then_name(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    return x->esize != y->esize ? y->esize - x->esize : strcmp(x->t->name, y->t->name);
}

/* Sorts items into data order and sets their offsets; leaves them in name
 * order. */
static void layout(struct item *items, int n)
{
    uint64_t off = 0;
    qsort(items, (size_t)n, sizeof *items, by_size_then_name);
    for (int i = 0; i < n; i++) {
        items[i].offset = off;
        off += items[i].t->nbytes;
    }
    qsort(items, (size_t)n, sizeof *items, by_name);
}

/* Adds v to object o under key, or to array o when key is NULL. Takes v in
 * every case, so a failed allocation anywhere just makes this false. */
static bool add(json_object *o, const char *key, json_object *v)
{
    int rc = !o || !v ? -1 : key ? json_object_object_add(o, key, v) : json_object_array_add(o, v);
    if (rc)
        json_object_put(v);
    return !rc;
}

static json_object *tensor_json(const struct item *it)
{
    json_object *o = json_object_new_object(), *shape = json_object_new_array(),
                *offs = json_object_new_array();
    bool ok = add(o, "dtype", json_object_new_string(it->t->dtype));
    ok = add(o, "shape", shape) && ok;
    ok = add(o, "data_offsets", offs) && ok;
    for (int k = 0; ok && k < it->t->ndim; k++)
        ok = add(shape, NULL, json_object_new_int64(it->t->shape[k]));
    ok = ok && add(offs, NULL, json_object_new_int64((int64_t)it->offset)) &&
         add(offs, NULL, json_object_new_int64((int64_t)(it->offset + it->t->nbytes)));
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static json_object *header_json(const struct item *items, int n, const struct tm_stw_meta *meta,
                                int n_meta)
{
    json_object *root = json_object_new_object(), *m = json_object_new_object();
    bool ok = n_meta ? add(root, "__metadata__", m) : (json_object_put(m), root != NULL);
    for (int i = 0; ok && i < n_meta; i++)
        ok = add(m, meta[i].key, json_object_new_string(meta[i].value));
    for (int i = 0; ok && i < n; i++)
        ok = add(root, items[i].t->name, tensor_json(&items[i]));
    if (!ok) {
        json_object_put(root);
        return NULL;
    }
    return root;
}

/* ---- The atomic file -------------------------------------------------- */

struct out {
    char *tmp;
    FILE *f;
};

static tm_status open_temp(const char *path, struct out *o, char *err, size_t errlen)
{
    size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
    if (!(o->tmp = malloc(n))) {
        snprintf(err, errlen, "out of memory");
        return TM_ERR_NOMEM;
    }
    snprintf(o->tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(o->tmp);
    if (fd >= 0) {
        /* mkstemp makes 0600; give the file the usual 0666 & ~umask. */
        mode_t mask = umask(0);
        umask(mask);
        (void)fchmod(fd, 0666 & ~mask);
        if (!(o->f = fdopen(fd, "wb"))) {
            close(fd);
            unlink(o->tmp);
        }
    }
    if (!o->f) {
        snprintf(err, errlen, "cannot create %s: %s", o->tmp, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        return TM_ERR_IO;
    }
    return TM_OK;
}

static void discard_temp(struct out *o)
{
    if (o->f)
        fclose(o->f);
    unlink(o->tmp);
    free(o->tmp);
}

/* Best effort: makes the rename itself survive a crash. */
static void sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

static tm_status commit_temp(const char *path, struct out *o, char *err, size_t errlen)
{
    int e = fflush(o->f) || fsync(fileno(o->f)) ? errno : 0;
    if (fclose(o->f) && !e)
        e = errno;
    o->f = NULL;
    if (!e && rename(o->tmp, path))
        e = errno;
    if (e) {
        snprintf(err, errlen, "cannot write the file: %s", strerror(e));
        discard_temp(o);
        return TM_ERR_IO;
    }
    free(o->tmp);
    sync_folder(path);
    return TM_OK;
}

static bool write_body(FILE *f, const char *header, const struct item *items, int n)
{
    size_t hlen = strlen(header), pad = (8 - hlen % 8) % 8;
    uint64_t size = hlen + pad;
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(size >> (8 * i));
    bool ok = fwrite(le, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen &&
              fwrite("        ", 1, pad, f) == pad;
    for (int i = 0; ok && i < n; i++) /* items are in data order here */
        ok = !items[i].t->nbytes ||
             fwrite(items[i].t->data, 1, items[i].t->nbytes, f) == items[i].t->nbytes;
    return ok;
}

static tm_status write_file(const char *path, const char *header, struct item *items, int n,
                            char *err, size_t errlen)
{
    struct out o = { 0 };
    tm_status s = open_temp(path, &o, err, errlen);
    if (s)
        return s;
    qsort(items, (size_t)n, sizeof *items, by_size_then_name);
    if (!write_body(o.f, header, items, n)) {
        snprintf(err, errlen, "cannot write the file: %s", strerror(errno));
        discard_temp(&o);
        return TM_ERR_IO;
    }
    return commit_temp(path, &o, err, errlen);
}

tm_status tm_st_write(const char *path, const struct tm_stw_tensor *tensors, int n,
                      const struct tm_stw_meta *meta, int n_meta, char *err, size_t errlen)
{
    if (n < 0 || n_meta < 0)
        return fail(err, errlen, "negative tensor or metadata count");
    struct item *items = calloc((size_t)n + 1, sizeof *items);
    if (!items) {
        snprintf(err, errlen, "out of memory");
        return TM_ERR_NOMEM;
    }
    tm_status s = TM_OK;
    for (int i = 0; !s && i < n; i++) {
        items[i].t = &tensors[i];
        s = check_tensor(&tensors[i], i, &items[i].esize, err, errlen);
    }
    if (!s)
        s = check_meta(meta, n_meta, err, errlen);
    if (!s)
        layout(items, n);
    for (int i = 1; !s && i < n; i++)
        if (!strcmp(items[i - 1].t->name, items[i].t->name))
            s = fail(err, errlen, "two tensors are named '%s'", items[i].t->name);
    json_object *root = s ? NULL : header_json(items, n, meta, n_meta);
    if (!s && !root) {
        snprintf(err, errlen, "out of memory");
        s = TM_ERR_NOMEM;
    }
    if (!s)
        s = write_file(path,
                       json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE),
                       items, n, err, errlen);
    json_object_put(root);
    free(items);
    return s;
}

/* ---- float32 to half -------------------------------------------------- */

/* v >> s (1 <= s <= 31), rounded to nearest, ties to even. */
static uint32_t round_shift(uint32_t v, unsigned s)
{
    uint32_t q = v >> s, rem = v & ((1u << s) - 1), half = 1u << (s - 1);
    return q + (rem > half || (rem == half && (q & 1)));
}

uint16_t tm_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)(x >> 16 & 0x8000u);
    uint32_t ax = x & 0x7fffffffu, e = ax >> 23, m = ax & 0x7fffffu;
    if (ax > 0x7f800000u) { /* NaN */
        uint16_t h = (uint16_t)(0x7c00u | m >> 13);
        return sign | (h == 0x7c00u ? 0x7c01u : h);
    }
    if (ax >= 0x47800000u) /* 65536 and up, infinity included */
        return sign | 0x7c00u;
    if (ax < 0x33000000u) /* below 2^-25: rounds to zero */
        return sign;
    if (e < 113) /* a half subnormal, in units of 2^-24 */
        return sign | (uint16_t)round_shift(m | 0x800000u, 126 - e);
    /* A mantissa that rounds up to 0x400 carries into the exponent, and from
     * the largest exponent into infinity: both are the right answer. */
    return sign | (uint16_t)(((e - 112) << 10) + round_shift(m, 13));
}
