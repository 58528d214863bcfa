/* ckpt_legacy.c: the torch.save stream before the zip format (and with
 * _use_new_zipfile_serialization=False): five pickles (magic number,
 * protocol version 1001, sys_info, the object, the storage keys in order),
 * then each storage as an int64 element count and its raw bytes. */
#include <stdio.h>
#include <string.h>

#include "ckpt_formats.h"

/* 0x1950a86a20f9469cfc6c as pickle's LONG1 writes it: little-endian. */
static const uint8_t magic[10] = { 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };

/* Parses the pickle at *pos into pk and moves *pos past it. Its offsets in
 * messages count from its start, which the message then gives. */
static tm_status next_pickle(const uint8_t *bytes, size_t size, size_t *pos, struct tm_pickle *pk,
                             char *err, size_t errlen)
{
    char msg[300];
    tm_status s = tm_pickle_load(bytes + *pos, size - *pos, pk, msg, sizeof msg);
    if (s)
        snprintf(err, errlen, "%s (in the pickle at byte %zu)", msg, *pos);
    else
        *pos += pk->end;
    return s;
}

/* The first pickle, at byte 0: anything but the magic number is not a checkpoint. */
static tm_status check_magic(const uint8_t *bytes, size_t size, size_t *pos, char *err,
                             size_t errlen)
{
    struct tm_pickle pk;
    char ignored[8];
    tm_status s = tm_pickle_load(bytes, size, &pk, ignored, sizeof ignored);
    bool ok = !s && pk.root->kind == TM_PK_BIGINT && pk.root->u.str.len == sizeof magic &&
              !memcmp(pk.root->u.str.s, magic, sizeof magic);
    *pos = pk.end;
    tm_pickle_free(&pk);
    if (ok)
        return TM_OK;
    snprintf(err, errlen, TM_CK_NOT_A_CHECKPOINT);
    return TM_ERR_FORMAT;
}

/* The protocol version and the sys_info dict: only little-endian files. */
static tm_status check_header(const uint8_t *bytes, size_t size, size_t *pos, char *err,
                              size_t errlen)
{
    struct tm_pickle pk;
    tm_status s = next_pickle(bytes, size, pos, &pk, err, errlen);
    if (s)
        return s;
    bool ok = pk.root->kind == TM_PK_INT && pk.root->u.i == 1001;
    tm_pickle_free(&pk);
    if (!ok) {
        snprintf(err, errlen, "legacy checkpoint: protocol version is not 1001");
        return TM_ERR_UNSUPPORTED;
    }
    if ((s = next_pickle(bytes, size, pos, &pk, err, errlen)))
        return s;
    const struct tm_pk_value *info = pk.root;
    s = info->kind == TM_PK_DICT ? TM_OK : TM_ERR_FORMAT;
    for (size_t i = 0; !s && i < info->u.seq.n; i += 2) {
        const struct tm_pk_value *k = info->u.seq.v[i], *v = info->u.seq.v[i + 1];
        if (k->kind == TM_PK_STR && !strcmp(k->u.str.s, "little_endian") &&
            (v->kind != TM_PK_BOOL || !v->u.b))
            s = TM_ERR_UNSUPPORTED;
    }
    tm_pickle_free(&pk);
    if (s)
        snprintf(err, errlen, s == TM_ERR_FORMAT ? "legacy checkpoint: sys_info is not a dict"
                                                 : "big-endian checkpoints are not supported");
    return s;
}

/* One storage record: int64 element count, then the elements. */
static tm_status read_storage(const uint8_t *bytes, size_t size, size_t *pos,
                              struct tm_pk_storage *st, char *err, size_t errlen)
{
    if (st->data) {
        snprintf(err, errlen, "legacy checkpoint lists storage '%s' twice", st->key);
        return TM_ERR_FORMAT;
    }
    uint64_t n = 0;
    if (size - *pos >= 8)
        for (int i = 7; i >= 0; i--)
            n = n << 8 | bytes[*pos + (size_t)i];
    if (size - *pos < 8 || n != (uint64_t)st->numel) {
        snprintf(err, errlen, size - *pos < 8 ? "checkpoint is truncated at storage '%s'"
                              : "storage '%s' holds a different number of elements than its "
                                "tensors declare", st->key);
        return TM_ERR_FORMAT;
    }
    *pos += 8;
    /* numel <= INT64_MAX / 8 (pickle.c), so this does not overflow. */
    uint64_t nbytes = n * (uint64_t)tm_ckpt_dtype_size(st->dtype);
    if (nbytes > size - *pos) {
        snprintf(err, errlen, "checkpoint is truncated: storage '%s' needs %llu bytes, %zu remain",
                 st->key, (unsigned long long)nbytes, size - *pos);
        return TM_ERR_FORMAT;
    }
    st->data = bytes + *pos;
    *pos += (size_t)nbytes;
    return TM_OK;
}

/* The key list, then the storages in its order; every storage needs data. */
static tm_status read_storages(const uint8_t *bytes, size_t size, size_t *pos,
                               struct tm_pickle *pk, char *err, size_t errlen)
{
    struct tm_pickle keys;
    tm_status s = next_pickle(bytes, size, pos, &keys, err, errlen);
    if (s)
        return s;
    const struct tm_pk_value *list = keys.root;
    if (list->kind != TM_PK_LIST) {
        snprintf(err, errlen, "legacy checkpoint: the storage keys are not a list");
        s = TM_ERR_FORMAT;
    }
    for (size_t i = 0; !s && i < list->u.seq.n; i++) {
        const struct tm_pk_value *k = list->u.seq.v[i];
        bool text = (k->kind == TM_PK_STR || k->kind == TM_PK_BYTES) &&
                    strlen(k->u.str.s) == k->u.str.len;
        struct tm_pk_storage *st = text ? tm_pickle_storage(pk, k->u.str.s) : NULL;
        if (!st) {
            snprintf(err, errlen, "legacy checkpoint lists storage %zu, which no tensor uses", i);
            s = TM_ERR_FORMAT;
        } else {
            s = read_storage(bytes, size, pos, st, err, errlen);
        }
    }
    tm_pickle_free(&keys);
    for (int i = 0; !s && i < pk->n_storages; i++) {
        if (!pk->storages[i]->data) {
            snprintf(err, errlen, "storage '%s' has no data in the checkpoint",
                     pk->storages[i]->key);
            s = TM_ERR_FORMAT;
        }
    }
    return s;
}

tm_status tm_ckpt_read_legacy(const uint8_t *bytes, size_t size, struct tm_pickle *pk, char *err,
                              size_t errlen)
{
    size_t pos = 0;
    memset(pk, 0, sizeof *pk);
    tm_status s = check_magic(bytes, size, &pos, err, errlen);
    if (!s)
        s = check_header(bytes, size, &pos, err, errlen);
    if (!s)
        s = next_pickle(bytes, size, &pos, pk, err, errlen);
    if (!s && (s = read_storages(bytes, size, &pos, pk, err, errlen)))
        tm_pickle_free(pk);
    return s;
}
