/* safetensors.h: a strict reader of the safetensors container.
 *
 * Layout: u64 little-endian header size N, N bytes of JSON (tensor name ->
 * {dtype, shape, data_offsets}, plus an optional "__metadata__" object of
 * string values), then the tensor bytes. Every offset, size and shape is
 * checked against the file before anything reads tensor data. */
#ifndef TM_SAFETENSORS_H
#define TM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "transmute.h"

enum tm_dtype { TM_DT_F32, TM_DT_F16, TM_DT_BF16, TM_DT_I64, TM_DT_OTHER };

#define TM_ST_MAX_DIMS 8

struct tm_st_tensor {
    char *name;
    enum tm_dtype dtype;
    char dtype_name[16];
    int ndim;
    int64_t shape[TM_ST_MAX_DIMS];
    uint64_t numel;
    size_t offset, nbytes;   /* relative to the data section */
};

struct tm_safetensors {
    const uint8_t *data;     /* the data section (inside the caller's buffer) */
    size_t data_size;
    struct tm_st_tensor *tensors;
    int n_tensors;
    char **meta_keys, **meta_vals;
    int n_meta;
};

/* Parses bytes[0..size). The result points into bytes for tensor data, so
 * the buffer must outlive it (names and metadata are copied). On failure a
 * one-line message is in err. */
tm_status tm_st_parse(const uint8_t *bytes, size_t size, struct tm_safetensors *st,
                      char *err, size_t errlen);
void tm_st_free(struct tm_safetensors *st);

/* Tensor by name, or NULL. */
const struct tm_st_tensor *tm_st_find(const struct tm_safetensors *st, const char *name);

/* Metadata value by key, or NULL. */
const char *tm_st_meta(const struct tm_safetensors *st, const char *key);

/* Converts a floating-point tensor to float32 into dst (numel floats). */
void tm_st_to_f32(const struct tm_safetensors *st, const struct tm_st_tensor *t, float *dst);

/* IEEE half and bfloat16 to float. */
float tm_half_to_float(uint16_t h);
float tm_bf16_to_float(uint16_t h);

#endif
