/* safetensors.c: parse and validate a safetensors file held in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "safetensors.h"

/* Headers beyond this are not weight files but attacks or accidents. */
#define MAX_HEADER (100u << 20)

static const struct {
    const char *name;
    enum tm_dtype dt;
    int size;
} dtypes[] = {
    { "F32", TM_DT_F32, 4 }, { "F16", TM_DT_F16, 2 }, { "BF16", TM_DT_BF16, 2 },
    { "I64", TM_DT_I64, 8 }, { "F64", TM_DT_OTHER, 8 }, { "I32", TM_DT_OTHER, 4 },
    { "I16", TM_DT_OTHER, 2 }, { "I8", TM_DT_OTHER, 1 }, { "U8", TM_DT_OTHER, 1 },
    { "BOOL", TM_DT_OTHER, 1 }, { "U16", TM_DT_OTHER, 2 }, { "U32", TM_DT_OTHER, 4 },
    { "U64", TM_DT_OTHER, 8 }, { "F8_E4M3", TM_DT_OTHER, 1 }, { "F8_E5M2", TM_DT_OTHER, 1 },
};

float tm_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man) { /* subnormal: renormalize */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float tm_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int parse_shape(json_object *arr, struct tm_st_tensor *t)
{
    size_t n = json_object_array_length(arr);
    if (n > TM_ST_MAX_DIMS)
        return -1;
    t->ndim = (int)n;
    t->numel = 1;
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(d, json_type_int))
            return -1;
        int64_t v = json_object_get_int64(d);
        if (v < 0 || v > (INT64_C(1) << 40))
            return -1;
        t->shape[i] = v;
        if (v && t->numel > UINT64_MAX / (uint64_t)v)
            return -1;
        t->numel *= (uint64_t)v;
    }
    return 0;
}

static int get_offsets(json_object *arr, uint64_t *b, uint64_t *e)
{
    if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) != 2)
        return -1;
    json_object *jb = json_object_array_get_idx(arr, 0), *je = json_object_array_get_idx(arr, 1);
    if (!json_object_is_type(jb, json_type_int) || !json_object_is_type(je, json_type_int))
        return -1;
    int64_t vb = json_object_get_int64(jb), ve = json_object_get_int64(je);
    if (vb < 0 || ve < vb)
        return -1;
    *b = (uint64_t)vb;
    *e = (uint64_t)ve;
    return 0;
}

static tm_status parse_tensor(const char *name, json_object *v, size_t data_size,
                              struct tm_st_tensor *t, char *err, size_t errlen)
{
    json_object *jd, *js, *jo;
    memset(t, 0, sizeof *t);
    if (!json_object_is_type(v, json_type_object) || !json_object_object_get_ex(v, "dtype", &jd) ||
        !json_object_object_get_ex(v, "shape", &js) ||
        !json_object_object_get_ex(v, "data_offsets", &jo) ||
        !json_object_is_type(jd, json_type_string) || !json_object_is_type(js, json_type_array)) {
        snprintf(err, errlen, "tensor '%s': entry needs dtype, shape and data_offsets", name);
        return TM_ERR_FORMAT;
    }
    const char *dn = json_object_get_string(jd);
    int esize = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        if (!strcmp(dn, dtypes[i].name)) {
            t->dtype = dtypes[i].dt;
            esize = dtypes[i].size;
        }
    }
    if (!esize) {
        snprintf(err, errlen, "tensor '%s': unknown dtype '%.20s'", name, dn);
        return TM_ERR_FORMAT;
    }
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dn);
    uint64_t b, e;
    if (parse_shape(js, t) || get_offsets(jo, &b, &e)) {
        snprintf(err, errlen, "tensor '%s': invalid shape or data_offsets", name);
        return TM_ERR_FORMAT;
    }
    if (e > data_size) {
        snprintf(err, errlen, "tensor '%s': data ends at byte %llu, past the %zu bytes the file holds",
                 name, (unsigned long long)e, data_size);
        return TM_ERR_FORMAT;
    }
    if (t->numel > UINT64_MAX / (uint64_t)esize || t->numel * (uint64_t)esize != e - b) {
        snprintf(err, errlen, "tensor '%s': shape needs %llu bytes of %s but data_offsets give %llu",
                 name, (unsigned long long)(t->numel * (uint64_t)esize), dn,
                 (unsigned long long)(e - b));
        return TM_ERR_FORMAT;
    }
    t->offset = (size_t)b;
    t->nbytes = (size_t)(e - b);
    t->name = strdup(name);
    return t->name ? TM_OK : TM_ERR_NOMEM;
}

static tm_status parse_meta(json_object *m, struct tm_safetensors *st, char *err, size_t errlen)
{
    if (!json_object_is_type(m, json_type_object)) {
        snprintf(err, errlen, "__metadata__ is not an object");
        return TM_ERR_FORMAT;
    }
    int n = json_object_object_length(m);
    st->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    st->meta_vals = calloc((size_t)n + 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_vals)
        return TM_ERR_NOMEM;
    json_object_object_foreach(m, key, val) {
        if (!json_object_is_type(val, json_type_string)) {
            snprintf(err, errlen, "metadata '%s' is not a string", key);
            return TM_ERR_FORMAT;
        }
        st->meta_keys[st->n_meta] = strdup(key);
        st->meta_vals[st->n_meta] = strdup(json_object_get_string(val));
        if (!st->meta_keys[st->n_meta++] || !st->meta_vals[st->n_meta - 1])
            return TM_ERR_NOMEM;
    }
    return TM_OK;
}

static int cmp_offset(const void *a, const void *b)
{
    const struct tm_st_tensor *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Tensors must not share bytes: a file that aliases them is lying. */
static tm_status check_overlap(struct tm_safetensors *st, char *err, size_t errlen)
{
    int n = st->n_tensors;
    struct tm_st_tensor *sorted = malloc(sizeof *sorted * (size_t)(n ? n : 1));
    if (!sorted)
        return TM_ERR_NOMEM;
    memcpy(sorted, st->tensors, sizeof *sorted * (size_t)n);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_offset);
    tm_status s = TM_OK;
    for (int i = 1; i < n && !s; i++) {
        if (sorted[i].offset < sorted[i - 1].offset + sorted[i - 1].nbytes) {
            snprintf(err, errlen, "tensors '%s' and '%s' overlap in the file", sorted[i - 1].name,
                     sorted[i].name);
            s = TM_ERR_FORMAT;
        }
    }
    free(sorted);
    return s;
}

static tm_status parse_header(json_object *root, struct tm_safetensors *st, char *err, size_t errlen)
{
    int n = json_object_object_length(root);
    st->tensors = calloc((size_t)n + 1, sizeof *st->tensors);
    if (!st->tensors)
        return TM_ERR_NOMEM;
    json_object_object_foreach(root, key, val) {
        tm_status s;
        if (!strcmp(key, "__metadata__"))
            s = parse_meta(val, st, err, errlen);
        else
            s = parse_tensor(key, val, st->data_size, &st->tensors[st->n_tensors++], err, errlen);
        if (s)
            return s;
    }
    return check_overlap(st, err, errlen);
}

tm_status tm_st_parse(const uint8_t *bytes, size_t size, struct tm_safetensors *st, char *err,
                      size_t errlen)
{
    memset(st, 0, sizeof *st);
    if (size < 8) {
        snprintf(err, errlen, "not a safetensors file: %zu bytes is too short", size);
        return TM_ERR_FORMAT;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | bytes[i];
    if (n < 2 || n > MAX_HEADER || n > size - 8) {
        snprintf(err, errlen, "not a safetensors file: header size %llu does not fit the %zu-byte file",
                 (unsigned long long)n, size);
        return TM_ERR_FORMAT;
    }
    if (bytes[8] != '{') {
        snprintf(err, errlen, "not a safetensors file: header is not a JSON object");
        return TM_ERR_FORMAT;
    }
    st->data = bytes + 8 + n;
    st->data_size = size - 8 - (size_t)n;

    json_tokener *tok = json_tokener_new();
    if (!tok)
        return TM_ERR_NOMEM;
    json_object *root = json_tokener_parse_ex(tok, (const char *)bytes + 8, (int)n);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    tm_status s = TM_OK;
    if (!root || jerr != json_tokener_success || !json_object_is_type(root, json_type_object)) {
        snprintf(err, errlen, "corrupt safetensors header: %s",
                 root ? "not a JSON object" : json_tokener_error_desc(jerr));
        s = TM_ERR_FORMAT;
    } else if (used < n && strspn((const char *)bytes + 8 + used, " \t\r\n") < n - used) {
        snprintf(err, errlen, "corrupt safetensors header: bytes after the JSON object");
        s = TM_ERR_FORMAT;
    } else {
        s = parse_header(root, st, err, errlen);
    }
    json_object_put(root);
    if (s)
        tm_st_free(st);
    return s;
}

void tm_st_free(struct tm_safetensors *st)
{
    for (int i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_vals);
    memset(st, 0, sizeof *st);
}

const struct tm_st_tensor *tm_st_find(const struct tm_safetensors *st, const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (st->tensors[i].name && !strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

const char *tm_st_meta(const struct tm_safetensors *st, const char *key)
{
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key))
            return st->meta_vals[i];
    return NULL;
}

void tm_st_to_f32(const struct tm_safetensors *st, const struct tm_st_tensor *t, float *dst)
{
    const uint8_t *p = st->data + t->offset;
    for (uint64_t i = 0; i < t->numel; i++) {
        uint16_t h;
        switch (t->dtype) {
        case TM_DT_F32:
            memcpy(&dst[i], p + 4 * i, 4);
            break;
        case TM_DT_F16:
            memcpy(&h, p + 2 * i, 2);
            dst[i] = tm_half_to_float(h);
            break;
        case TM_DT_BF16:
            memcpy(&h, p + 2 * i, 2);
            dst[i] = tm_bf16_to_float(h);
            break;
        default:
            dst[i] = 0.0f;
        }
    }
}
