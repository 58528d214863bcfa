/* tfjs_weights.c: the weightsManifest and its shards (see tfjs_weights.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tfjs.h"
#include "tfjs_weights.h"

#define MAX_WEIGHTS (1 << 20) /* entries in the whole manifest */
#define MAX_GROUPS 4096
#define MAX_SHARDS 65536      /* files in one group */
#define MAX_PATH 4096
#define MAX_NUMEL (UINT64_C(1) << 31)

/* The message into err, control characters (from names in the file) made
 * '?' so that it stays one line. */
static tm_status vfail(tm_status s, char *err, size_t errlen, const char *fmt, va_list ap)
{
    vsnprintf(err, errlen, fmt, ap);
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return s;
}

__attribute__((format(printf, 3, 4)))
static tm_status fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tm_status s = vfail(TM_ERR_FORMAT, err, errlen, fmt, ap);
    va_end(ap);
    return s;
}

__attribute__((format(printf, 3, 4)))
static tm_status io_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tm_status s = vfail(TM_ERR_IO, err, errlen, fmt, ap);
    va_end(ap);
    return s;
}

static tm_status nomem(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return TM_ERR_NOMEM;
}

/* ---- The manifest ----------------------------------------------------- */

/* The storage of a weight from its dtype and quantization. Returns the
 * element size in bytes, 0 after writing a message to err. */
static int weight_kind(json_object *o, struct tfjs_wspec *w, char *err, size_t errlen)
{
    json_object *v, *q = json_object_object_get_ex(o, "quantization", &v) ? v : NULL;
    const char *dtype = json_object_object_get_ex(o, "dtype", &v) && json_object_is_type(v, json_type_string)
                            ? json_object_get_string(v) : NULL;
    if (!dtype) {
        fail(err, errlen, "weight '%s': no dtype", w->name);
        return 0;
    }
    if (!q) {
        w->kind = !strcmp(dtype, "float32") ? TFJS_F32 : TFJS_F16;
        if (strcmp(dtype, "float32") && strcmp(dtype, "float16")) {
            fail(err, errlen, "weight '%s': dtype %.32s is not supported (float32 or float16)", w->name, dtype);
            return 0;
        }
        return w->kind == TFJS_F32 ? 4 : 2;
    }
    const char *qd = json_object_is_type(q, json_type_object) && json_object_object_get_ex(q, "dtype", &v) &&
                     json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "?";
    if (strcmp(dtype, "float32")) {
        fail(err, errlen, "weight '%s': quantized dtype %.32s is not supported (only float32)", w->name, dtype);
        return 0;
    }
    if (!strcmp(qd, "float16")) {
        w->kind = TFJS_F16;
        return 2;
    }
    if (strcmp(qd, "uint8") && strcmp(qd, "uint16")) {
        fail(err, errlen, "weight '%s': quantization to %.32s is not supported (uint8, uint16, float16)",
             w->name, qd);
        return 0;
    }
    json_object *s = NULL, *mn = NULL;
    json_object_object_get_ex(q, "scale", &s);
    json_object_object_get_ex(q, "min", &mn);
    bool num = (json_object_is_type(s, json_type_double) || json_object_is_type(s, json_type_int)) &&
               (json_object_is_type(mn, json_type_double) || json_object_is_type(mn, json_type_int));
    w->scale = num ? json_object_get_double(s) : NAN;
    w->min = num ? json_object_get_double(mn) : NAN;
    if (!isfinite(w->scale) || !isfinite(w->min)) {
        fail(err, errlen, "weight '%s': %s quantization needs a finite scale and min", w->name, qd);
        return 0;
    }
    w->kind = qd[4] == '8' ? TFJS_U8 : TFJS_U16;
    return w->kind == TFJS_U8 ? 1 : 2;
}

static tm_status parse_shape(json_object *o, struct tfjs_wspec *w, char *err, size_t errlen)
{
    json_object *s;
    if (!json_object_object_get_ex(o, "shape", &s) || !json_object_is_type(s, json_type_array) ||
        json_object_array_length(s) > TFJS_MAX_DIMS)
        return fail(err, errlen, "weight '%s': the shape is not a list of up to %d sizes", w->name, TFJS_MAX_DIMS);
    w->ndim = (int)json_object_array_length(s);
    w->numel = 1;
    for (int d = 0; d < w->ndim; d++) {
        json_object *v = json_object_array_get_idx(s, (size_t)d);
        int64_t n = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
        if (n < 0 || n > INT32_MAX)
            return fail(err, errlen, "weight '%s': dimension %d is not a size", w->name, d);
        w->shape[d] = n;
        w->numel *= (uint64_t)n; /* both below 2^31, checked each step */
        if (w->numel > MAX_NUMEL)
            return fail(err, errlen, "weight '%s' is too large", w->name);
    }
    return TM_OK;
}

/* One weight entry of group g, placed at *offset (advanced past it). */
static tm_status parse_weight(json_object *o, int g, uint64_t *offset, struct tfjs_wspec *w, char *err,
                              size_t errlen)
{
    json_object *v;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "name", &v) ||
        !json_object_is_type(v, json_type_string))
        return fail(err, errlen, "weightsManifest group %d: an entry without a name", g + 1);
    w->name = json_object_get_string(v);
    size_t len = strlen(w->name);
    if (!len || len > TFJS_MAX_NAME || len != (size_t)json_object_get_string_len(v))
        return fail(err, errlen, "weightsManifest group %d: weight name '%.40s' is empty, too long or holds NUL",
                    g + 1, w->name);
    tm_status s = parse_shape(o, w, err, errlen);
    int esize = s ? 0 : weight_kind(o, w, err, errlen);
    if (!esize)
        return s ? s : TM_ERR_UNSUPPORTED;
    w->group = g;
    w->offset = *offset;
    *offset += w->numel * (uint64_t)esize;
    if (*offset > (uint64_t)TM_TFJS_MAX_WEIGHTS)
        return fail(err, errlen, "weightsManifest group %d holds more than %lld bytes", g + 1,
                    (long long)TM_TFJS_MAX_WEIGHTS);
    return TM_OK;
}

static tm_status parse_group(json_object *o, int g, struct tfjs_manifest *m, char *err, size_t errlen)
{
    json_object *paths, *weights;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "paths", &paths) ||
        !json_object_is_type(paths, json_type_array) || !json_object_object_get_ex(o, "weights", &weights) ||
        !json_object_is_type(weights, json_type_array))
        return fail(err, errlen, "weightsManifest group %d has no paths or weights list", g + 1);
    size_t np = json_object_array_length(paths), nw = json_object_array_length(weights);
    if (np > MAX_SHARDS || nw > (size_t)(MAX_WEIGHTS - m->n))
        return fail(err, errlen, "weightsManifest group %d: too many shards or weights", g + 1);
    for (size_t i = 0; i < np; i++)
        if (!json_object_is_type(json_object_array_get_idx(paths, i), json_type_string))
            return fail(err, errlen, "weightsManifest group %d: path %zu is not a string", g + 1, i + 1);
    m->g[g] = (struct tfjs_group){ .paths = paths };
    for (size_t i = 0; i < nw; i++) {
        tm_status s = parse_weight(json_object_array_get_idx(weights, i), g, &m->g[g].bytes, &m->w[m->n], err,
                                   errlen);
        if (s)
            return s;
        m->n++;
    }
    return TM_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(struct tfjs_wspec *const *)a)->name, (*(struct tfjs_wspec *const *)b)->name);
}

static size_t count_weights(json_object *manifest)
{
    size_t n = 0;
    for (size_t g = 0; g < json_object_array_length(manifest); g++) {
        json_object *w, *grp = json_object_array_get_idx(manifest, g);
        if (json_object_is_type(grp, json_type_object) && json_object_object_get_ex(grp, "weights", &w) &&
            json_object_is_type(w, json_type_array))
            n += json_object_array_length(w);
    }
    return n;
}

tm_status tfjs_manifest_parse(json_object *manifest, struct tfjs_manifest *m, char *err, size_t errlen)
{
    *m = (struct tfjs_manifest){ 0 };
    if (!json_object_is_type(manifest, json_type_array) || json_object_array_length(manifest) > MAX_GROUPS)
        return fail(err, errlen, "the weightsManifest is not a list of up to %d groups", MAX_GROUPS);
    int ng = (int)json_object_array_length(manifest);
    size_t nw = count_weights(manifest);
    if (nw > MAX_WEIGHTS)
        return fail(err, errlen, "the weightsManifest lists more than %d weights", MAX_WEIGHTS);
    m->w = calloc(nw + 1, sizeof *m->w);
    m->sorted = calloc(nw + 1, sizeof *m->sorted);
    m->g = calloc((size_t)ng + 1, sizeof *m->g);
    m->n_groups = ng;
    tm_status s = m->w && m->sorted && m->g ? TM_OK : nomem(err, errlen);
    for (int g = 0; !s && g < ng; g++)
        s = parse_group(json_object_array_get_idx(manifest, (size_t)g), g, m, err, errlen);
    for (int i = 0; !s && i < m->n; i++)
        m->sorted[i] = &m->w[i];
    if (!s)
        qsort(m->sorted, (size_t)m->n, sizeof *m->sorted, by_name);
    for (int i = 1; !s && i < m->n; i++)
        if (!strcmp(m->sorted[i - 1]->name, m->sorted[i]->name))
            s = fail(err, errlen, "the weightsManifest lists weight '%s' twice", m->sorted[i]->name);
    if (s)
        tfjs_manifest_free(m);
    return s;
}

int tfjs_manifest_find(const struct tfjs_manifest *m, const char *name)
{
    struct tfjs_wspec key = { .name = name }, *kp = &key;
    struct tfjs_wspec **hit = m->n ? bsearch(&kp, m->sorted, (size_t)m->n, sizeof *m->sorted, by_name) : NULL;
    return hit ? (int)(*hit - m->w) : -1;
}

void tfjs_manifest_free(struct tfjs_manifest *m)
{
    free(m->w);
    free(m->sorted);
    free(m->g);
    *m = (struct tfjs_manifest){ 0 };
}

/* ---- The shards ------------------------------------------------------- */

/* dir/name, refusing names that would leave the model's folder: a hostile
 * model.json must not make the converter read files elsewhere. */
static tm_status shard_path(const char *dir, const char *name, char *out, size_t len, char *err, size_t errlen)
{
    size_t n = strlen(name);
    bool bad = !n || n > MAX_PATH || name[0] == '/' || !strcmp(name, "..") || !strncmp(name, "../", 3) ||
               strstr(name, "/../") || (n >= 3 && !strcmp(name + n - 3, "/.."));
    if (bad)
        return fail(err, errlen, "shard path '%.200s' is empty or leaves the model's folder", name);
    if ((size_t)snprintf(out, len, "%s%s%s", dir, *dir ? "/" : "", name) >= len)
        return fail(err, errlen, "shard path '%.200s' is too long", name);
    return TM_OK;
}

/* Sizes of the group's shard files; their sum must be what the manifest needs. */
static tm_status check_sizes(const struct tfjs_manifest *m, int g, const char *dir, char *err, size_t errlen)
{
    json_object *paths = m->g[g].paths;
    uint64_t total = 0;
    char path[MAX_PATH * 2 + 2];
    for (size_t i = 0; i < json_object_array_length(paths); i++) {
        const char *name = json_object_get_string(json_object_array_get_idx(paths, i));
        tm_status s = shard_path(dir, name, path, sizeof path, err, errlen);
        struct stat st;
        if (s)
            return s;
        if (stat(path, &st))
            return io_fail(err, errlen, "cannot read weight shard '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
            return fail(err, errlen, "weight shard '%s' is not a file", path);
        total += (uint64_t)st.st_size;
    }
    if (total < m->g[g].bytes)
        return fail(err, errlen, "the shards of weight group %d hold %llu bytes, the weightsManifest needs %llu "
                    "(a shard is truncated or missing from paths)", g + 1, (unsigned long long)total,
                    (unsigned long long)m->g[g].bytes);
    if (total > m->g[g].bytes)
        return fail(err, errlen, "the shards of weight group %d hold %llu bytes, the weightsManifest describes "
                    "only %llu: they disagree", g + 1, (unsigned long long)total, (unsigned long long)m->g[g].bytes);
    return TM_OK;
}

static tm_status read_file(const char *path, uint8_t *buf, uint64_t room, uint64_t *got, char *err,
                           size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return io_fail(err, errlen, "cannot read weight shard '%s': %s", path, strerror(errno));
    size_t n = fread(buf, 1, (size_t)room, f);
    bool more = n == room && fgetc(f) != EOF, bad = ferror(f);
    fclose(f);
    *got = n;
    if (bad)
        return io_fail(err, errlen, "cannot read weight shard '%s'", path);
    if (more) /* grew since it was measured */
        return fail(err, errlen, "weight shard '%s' changed while it was read", path);
    return TM_OK;
}

tm_status tfjs_read_group(const struct tfjs_manifest *m, int g, const char *dir, uint8_t **buf, char *err,
                          size_t errlen)
{
    *buf = NULL;
    tm_status s = check_sizes(m, g, dir, err, errlen);
    if (s)
        return s;
    uint64_t need = m->g[g].bytes, at = 0;
    if (!(*buf = malloc(need ? (size_t)need : 1)))
        return nomem(err, errlen);
    json_object *paths = m->g[g].paths;
    char path[MAX_PATH * 2 + 2];
    for (size_t i = 0; !s && i < json_object_array_length(paths); i++) {
        uint64_t got = 0;
        s = shard_path(dir, json_object_get_string(json_object_array_get_idx(paths, i)), path, sizeof path,
                       err, errlen);
        if (!s)
            s = read_file(path, *buf + at, need - at, &got, err, errlen);
        at += got;
    }
    if (!s && at != need)
        s = fail(err, errlen, "the shards of weight group %d changed while they were read", g + 1);
    if (s) {
        free(*buf);
        *buf = NULL;
    }
    return s;
}

/* ---- Values ----------------------------------------------------------- */

static float half_to_float(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY)
                                                       : ldexpf((float)(m | 1024), e - 25);
    return h & 0x8000 ? -v : v;
}

float tfjs_value(const struct tfjs_wspec *w, const uint8_t *group_bytes, uint64_t i)
{
    const uint8_t *p = group_bytes + w->offset;
    switch (w->kind) {
    case TFJS_F32: {
        p += 4 * i;
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    case TFJS_F16: return half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    /* TF.js dequantizes in double precision, then stores float32. */
    case TFJS_U8: return (float)(p[i] * w->scale + w->min);
    default: return (float)((p[2 * i] | p[2 * i + 1] << 8) * w->scale + w->min);
    }
}
