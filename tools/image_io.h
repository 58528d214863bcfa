/*
 * image_io.h: PNG, JPEG and PFM files to and from struct tm_image.
 *
 * Loading picks the format by the file's first bytes; saving by the caller's
 * choice (img_format_from_path reads the extension). Images are interleaved
 * and tightly packed (stride 0):
 *   PNG   8-bit -> TM_U8, 16-bit -> TM_U16; gray, gray+alpha, RGB, RGBA;
 *         palette and low bit depths are expanded, tRNS becomes alpha.
 *   JPEG  8-bit gray or RGB -> TM_U8 (CMYK is refused).
 *   PFM   "Pf" gray or "PF" RGB -> TM_F32, values as stored (no quantization).
 * Saving converts the sample type when the format needs it (PNG: F32 -> 16-bit;
 * JPEG: 8-bit only; PFM: floats in 0..1) and refuses channel counts the
 * format cannot hold (JPEG and PFM: 1 or 3).
 *
 * Every error is one line "FILE: problem" in err. Saving is atomic: the data
 * goes to a temporary file in the destination folder, is fsynced and renamed
 * over the destination; on failure the temporary file is removed.
 */
#ifndef TRANSMUTE_IMAGE_IO_H
#define TRANSMUTE_IMAGE_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "transmute.h"

#define IMG_MAX_SIDE 65535
#define IMG_MAX_PIXELS (1ull << 28)
#define IMG_JPEG_QUALITY_DEFAULT 95

enum img_format { IMG_NONE = 0, IMG_PNG, IMG_JPEG, IMG_PFM };

struct img_save_opts {
    int jpeg_quality; /* 1..100; 0 = IMG_JPEG_QUALITY_DEFAULT */
};

/* "png", "jpg", "pfm"; "?" for IMG_NONE. */
const char *img_format_name(enum img_format f);
/* From "png", "jpg", "jpeg", "pfm" (any case); IMG_NONE otherwise. */
enum img_format img_format_from_name(const char *name);
/* From the path's extension; IMG_NONE when there is none or it is unknown. */
enum img_format img_format_from_path(const char *path);

/* Bytes per sample of a type. */
size_t img_sample_size(tm_sample_type t);

/* Checks w x h against the limits (non-zero, <= IMG_MAX_SIDE, <= IMG_MAX_PIXELS);
 * on failure writes "NAME: problem" to err. */
bool img_check_size(const char *name, long long w, long long h, char *err, size_t errlen);

/* Loads path into *out (out->data is malloc'ed; free with img_free). *fmt
 * (may be NULL) gets the format found. Returns 0, or -1 with err set. */
int img_load(const char *path, struct tm_image *out, enum img_format *fmt, char *err,
             size_t errlen);

/* Saves im to path in format fmt. Returns 0, or -1 with err set and no file
 * left behind. */
int img_save(const char *path, enum img_format fmt, const struct tm_image *im,
             const struct img_save_opts *opts, char *err, size_t errlen);

/* Allocates dst (tightly packed) and converts src's samples to type, keeping
 * channels: integers scale by 65535/255, floats are clamped to 0..1 and
 * rounded. Returns 0 or -1 when out of memory. */
int img_convert(const struct tm_image *src, tm_sample_type type, struct tm_image *dst);

/* Allocates a zeroed tightly packed image. Returns 0 or -1 (out of memory). */
int img_alloc(struct tm_image *im, int w, int h, int channels, tm_sample_type type);

void img_free(struct tm_image *im);

#endif
