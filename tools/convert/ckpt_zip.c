/* ckpt_zip.c: the zip checkpoint of torch >= 1.6: the object pickle in
 * <folder>/data.pkl, each storage in the record <folder>/data/<key>, and
 * optionally <folder>/byteorder. The folder is one name of the writer's
 * choice ("archive", or the file's stem). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zip.h>

#include "ckpt_formats.h"

#define MAX_FOLDER 256
#define MAX_PICKLE (UINT64_C(1) << 30)
/* Deflate expands data at most about 1032 times: a record claiming more is
 * found out before its buffer is allocated. */
#define MAX_RATIO 1032

struct archive {
    zip_t *za;
    char folder[MAX_FOLDER + 2]; /* with its '/' */
    size_t input_size;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static tm_status fail(struct archive *a, tm_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, a->errlen, fmt, ap);
    va_end(ap);
    return s;
}

static tm_status open_archive(struct archive *a, const uint8_t *bytes, size_t size)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(bytes, size, 0, &ze);
    if (src && !(a->za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze)))
        zip_source_free(src);
    tm_status s = TM_OK;
    if (!a->za)
        s = fail(a, zip_error_code_zip(&ze) == ZIP_ER_MEMORY ? TM_ERR_NOMEM : TM_ERR_FORMAT,
                 "corrupt zip archive: %s", zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return s;
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* The one "<folder>/data.pkl" record names the folder of all others. */
static tm_status find_folder(struct archive *a, zip_int64_t *pkl)
{
    zip_int64_t n = zip_get_num_entries(a->za, 0);
    int found = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(a->za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        const char *slash = name ? strchr(name, '/') : NULL;
        if (!slash || slash == name || strcmp(slash + 1, "data.pkl"))
            continue;
        size_t len = (size_t)(slash - name) + 1;
        if (found++)
            return fail(a, TM_ERR_FORMAT, "zip archive holds more than one <folder>/data.pkl");
        if (len > MAX_FOLDER || !printable(name, len))
            return fail(a, TM_ERR_FORMAT,
                        "zip archive's folder name is not a short printable name");
        memcpy(a->folder, name, len);
        a->folder[len] = '\0';
        *pkl = i;
    }
    if (!found)
        return fail(a, TM_ERR_FORMAT,
                    "zip archive has no <folder>/data.pkl: not a PyTorch checkpoint");
    return TM_OK;
}

/* The record's size, after checking it against its compressed size. */
static tm_status record_size(struct archive *a, zip_int64_t idx, const char *name, uint64_t *size)
{
    zip_stat_t st;
    zip_stat_init(&st);
    const zip_uint64_t want = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if (zip_stat_index(a->za, (zip_uint64_t)idx, 0, &st) || (st.valid & want) != want)
        return fail(a, TM_ERR_FORMAT, "cannot read zip record '%s': %s", name,
                    zip_strerror(a->za));
    if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
        return fail(a, TM_ERR_UNSUPPORTED,
                    "zip record '%s' uses compression method %u; only stored and deflated "
                    "records are supported", name, (unsigned)st.comp_method);
    /* comp_size is within the input, so the product does not overflow. */
    uint64_t max = st.comp_method == ZIP_CM_STORE ? st.comp_size : st.comp_size * MAX_RATIO;
    if (st.size > max || st.comp_size > a->input_size)
        return fail(a, TM_ERR_FORMAT, "zip record '%s' claims more bytes than it can hold", name);
    *size = st.size;
    return TM_OK;
}

/* The first n bytes of record idx into dst. */
static tm_status read_record(struct archive *a, zip_int64_t idx, const char *name, uint8_t *dst,
                             uint64_t n)
{
    zip_file_t *f = zip_fopen_index(a->za, (zip_uint64_t)idx, 0);
    if (!f)
        return fail(a, TM_ERR_FORMAT, "cannot read zip record '%s': %s", name,
                    zip_strerror(a->za));
    uint64_t got = 0;
    zip_int64_t r = 1;
    while (got < n && (r = zip_fread(f, dst + got, n - got)) > 0)
        got += (uint64_t)r;
    tm_status s = TM_OK;
    if (got < n)
        s = fail(a, TM_ERR_FORMAT, "zip record '%s' is truncated or corrupt%s%s", name,
                 r < 0 ? ": " : "", r < 0 ? zip_file_strerror(f) : "");
    zip_fclose(f);
    return s;
}

static tm_status read_pickle(struct archive *a, zip_int64_t idx, struct tm_pickle *pk)
{
    char name[MAX_FOLDER + 16];
    snprintf(name, sizeof name, "%sdata.pkl", a->folder);
    uint64_t size;
    tm_status s = record_size(a, idx, name, &size);
    if (s)
        return s;
    if (size > MAX_PICKLE)
        return fail(a, TM_ERR_FORMAT, "zip record '%s' is over 1 GiB", name);
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf)
        return fail(a, TM_ERR_NOMEM, "out of memory reading '%s'", name);
    char msg[300];
    s = read_record(a, idx, name, buf, size);
    if (!s && (s = tm_pickle_load(buf, (size_t)size, pk, msg, sizeof msg)))
        fail(a, s, "%s (in %s)", msg, name);
    free(buf);
    return s;
}

/* torch >= 2.1 records the byte order; files without it are little-endian. */
static tm_status check_byteorder(struct archive *a)
{
    char name[MAX_FOLDER + 16], order[16] = "";
    snprintf(name, sizeof name, "%sbyteorder", a->folder);
    zip_int64_t idx = zip_name_locate(a->za, name, ZIP_FL_ENC_RAW);
    uint64_t size;
    if (idx < 0)
        return TM_OK;
    tm_status s = record_size(a, idx, name, &size);
    if (!s && size < sizeof order)
        s = read_record(a, idx, name, (uint8_t *)order, size);
    if (s || !strcmp(order, "little"))
        return s;
    if (!strcmp(order, "big"))
        return fail(a, TM_ERR_UNSUPPORTED, "big-endian checkpoints are not supported");
    return fail(a, TM_ERR_FORMAT, "zip record '%s' names no byte order", name);
}

/* The record of storage st and the bytes it must hold. */
static tm_status locate(struct archive *a, const struct tm_pk_storage *st, zip_int64_t *idx,
                        uint64_t *need, char name[static MAX_FOLDER + 300])
{
    snprintf(name, MAX_FOLDER + 300, "%sdata/%s", a->folder, st->key);
    *idx = zip_name_locate(a->za, name, ZIP_FL_ENC_RAW);
    if (*idx < 0)
        return fail(a, TM_ERR_FORMAT, "storage record '%s' is missing", name);
    uint64_t size;
    tm_status s = record_size(a, *idx, name, &size);
    /* numel <= INT64_MAX / 8 (pickle.c), so this does not overflow. */
    *need = (uint64_t)st->numel * (uint64_t)tm_ckpt_dtype_size(st->dtype);
    if (!s && size < *need)
        s = fail(a, TM_ERR_FORMAT,
                 "storage record '%s' holds %llu bytes but its %lld %s elements need %llu", name,
                 (unsigned long long)size, (long long)st->numel, tm_ckpt_dtype_name(st->dtype),
                 (unsigned long long)*need);
    return s;
}

/* Sizes every storage first, so that a lying archive fails before the
 * allocation, then reads them all into one buffer. */
static tm_status read_storages(struct archive *a, struct tm_pickle *pk, uint8_t **blob)
{
    char name[MAX_FOLDER + 300];
    zip_int64_t idx;
    uint64_t need, total = 0, limit = (uint64_t)a->input_size * MAX_RATIO;
    tm_status s = TM_OK;
    for (int i = 0; !s && i < pk->n_storages; i++) {
        s = locate(a, pk->storages[i], &idx, &need, name);
        if (!s && (total += need) > limit)
            s = fail(a, TM_ERR_FORMAT, "zip storages claim more bytes than the archive can hold");
    }
    if (!s && !(*blob = malloc(total ? (size_t)total : 1)))
        s = fail(a, TM_ERR_NOMEM, "out of memory: the storages need %llu bytes",
                 (unsigned long long)total);
    total = 0;
    for (int i = 0; !s && i < pk->n_storages; i++) {
        s = locate(a, pk->storages[i], &idx, &need, name);
        if (!s)
            s = read_record(a, idx, name, *blob + total, need);
        pk->storages[i]->data = *blob + total;
        total += need;
    }
    return s;
}

tm_status tm_ckpt_read_zip(const uint8_t *bytes, size_t size, struct tm_pickle *pk,
                           uint8_t **blob, char *err, size_t errlen)
{
    struct archive a = { .input_size = size, .err = err, .errlen = errlen };
    zip_int64_t pkl = -1;
    memset(pk, 0, sizeof *pk);
    *blob = NULL;
    tm_status s = open_archive(&a, bytes, size);
    if (!s)
        s = find_folder(&a, &pkl);
    if (!s)
        s = check_byteorder(&a);
    if (!s)
        s = read_pickle(&a, pkl, pk);
    if (!s)
        s = read_storages(&a, pk, blob);
    if (s) {
        tm_pickle_free(pk);
        free(*blob);
        *blob = NULL;
    }
    if (a.za)
        zip_discard(a.za);
    return s;
}
