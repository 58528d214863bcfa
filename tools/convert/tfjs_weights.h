/* tfjs_weights.h: the weightsManifest of a TF.js model.json and its shards
 * (internal to tfjs.c).
 *
 * Within a manifest group the weights lie back to back, in the listed order,
 * across the concatenation of the group's shard files; a weight may straddle
 * two shards. The manifest is checked first (names, shapes, dtypes, sizes),
 * the shards only when their data is needed. */
#ifndef TM_TFJS_WEIGHTS_H
#define TM_TFJS_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "transmute.h"

#define TFJS_MAX_DIMS 8
#define TFJS_MAX_NAME 255

enum tfjs_wkind { TFJS_F32, TFJS_F16, TFJS_U8, TFJS_U16 };

struct tfjs_wspec {
    const char *name;       /* "F_m1/kernel"; points into the JSON tree */
    int ndim;
    int64_t shape[TFJS_MAX_DIMS];
    uint64_t numel;
    enum tfjs_wkind kind;   /* how the bytes are stored */
    double scale, min;      /* uint8/uint16 quantization: q * scale + min */
    int group;
    uint64_t offset;        /* bytes into the group's concatenated shards */
    bool used;              /* taken by a layer (set by the caller) */
};

struct tfjs_group {
    json_object *paths;     /* the shard file names, in order */
    uint64_t bytes;         /* what the weights need */
};

struct tfjs_manifest {
    struct tfjs_wspec *w;
    int n;
    struct tfjs_wspec **sorted; /* w by name, for lookups */
    struct tfjs_group *g;
    int n_groups;
};

/* Parses and checks the weightsManifest array: unique names up to
 * TFJS_MAX_NAME bytes, shapes, supported dtypes and quantizations, sizes
 * that fit TM_TFJS_MAX_WEIGHTS per group. The manifest keeps pointers into
 * the JSON tree, which must outlive it. On failure *m is empty and err says
 * which weight or group is wrong. */
tm_status tfjs_manifest_parse(json_object *manifest, struct tfjs_manifest *m, char *err,
                              size_t errlen);

/* The index of the weight called name, or -1. */
int tfjs_manifest_find(const struct tfjs_manifest *m, const char *name);

/* Reads group g's shards from the folder dir ("" for the current one) into
 * *buf (malloc'ed, m->g[g].bytes long): the files must hold exactly the
 * bytes the manifest describes, no fewer and no more. */
tm_status tfjs_read_group(const struct tfjs_manifest *m, int g, const char *dir, uint8_t **buf,
                          char *err, size_t errlen);

/* Element i of weight w as float32, from its group's bytes. */
float tfjs_value(const struct tfjs_wspec *w, const uint8_t *group_bytes, uint64_t i);

/* Frees *m and zeroes it. */
void tfjs_manifest_free(struct tfjs_manifest *m);

#endif
