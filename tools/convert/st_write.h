/* st_write.h: write a safetensors file (docs/FORMAT.md), atomically.
 *
 * The JSON header lists "__metadata__" first, then the tensors sorted by
 * name; it is padded with spaces so the data starts at a multiple of 8.
 * The data is laid out by element size (largest first), then by name, so
 * every tensor starts at a multiple of its element size, as the reference
 * safetensors library does. */
#ifndef TM_ST_WRITE_H
#define TM_ST_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "transmute.h"

struct tm_stw_tensor {
    const char *name;     /* valid UTF-8, unique, not "__metadata__" */
    const char *dtype;    /* "F32", "F16", "BF16", "I64" or "F64" */
    int ndim;             /* 0 .. 8 */
    const int64_t *shape;
    const void *data;     /* row-major, little-endian */
    size_t nbytes;        /* must equal the element count times the element size */
};

struct tm_stw_meta {
    const char *key, *value; /* valid UTF-8; keys unique */
};

/* Writes n tensors and n_meta metadata strings to path: first to a
 * temporary file in the same folder (path.tmp.XXXXXX), synced and renamed
 * over path, so path is either left as it was or complete. On failure no
 * temporary file remains and err holds a one-line message: TM_ERR_INVALID
 * for a bad argument, TM_ERR_IO, TM_ERR_NOMEM. */
tm_status tm_st_write(const char *path, const struct tm_stw_tensor *tensors, int n,
                      const struct tm_stw_meta *meta, int n_meta, char *err, size_t errlen);

/* float32 to IEEE half bits, rounding to nearest even: overflow gives
 * infinity, small values become subnormal or zero, and a NaN keeps its sign
 * and top payload bits (made non-zero), as numpy's conversion does. */
uint16_t tm_float_to_half(float f);

#endif
