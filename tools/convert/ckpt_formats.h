/* ckpt_formats.h: the two containers torch.save writes, for torch_ckpt.c.
 *
 * Each reader parses the object pickle into *pk and points every storage's
 * data at numel elements, checking each length. On failure *pk is zeroed and
 * err holds a one-line message. */
#ifndef TM_CKPT_FORMATS_H
#define TM_CKPT_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "pickle.h"

/* A zip archive (torch >= 1.6). The storages are copied into one buffer,
 * *blob, which the caller frees after the pickle. */
tm_status tm_ckpt_read_zip(const uint8_t *bytes, size_t size, struct tm_pickle *pk,
                           uint8_t **blob, char *err, size_t errlen);

/* The legacy stream. The storages point into bytes. */
tm_status tm_ckpt_read_legacy(const uint8_t *bytes, size_t size, struct tm_pickle *pk, char *err,
                              size_t errlen);

/* The message for a file that is neither. */
#define TM_CK_NOT_A_CHECKPOINT \
    "not a PyTorch checkpoint (neither a zip archive nor the legacy magic number)"

#endif
