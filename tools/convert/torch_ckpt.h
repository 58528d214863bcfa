/* torch_ckpt.h: the tensors of a PyTorch checkpoint (.pth, .pt, .ckpt).
 *
 * Reads both torch.save formats: the zip archive (torch >= 1.6: data.pkl
 * plus one record per storage) and the legacy stream (magic number,
 * protocol, sys_info and object pickles, then the raw storages), through the
 * restricted unpickler of pickle.h: loading never runs code from the file.
 *
 * The object is flattened into dotted names: dict keys are joined with '.',
 * so {"genA2B": state_dict} gives "genA2B.model.1.weight" (the state_dict's
 * own keys keep their dots), integer keys and list or tuple elements give
 * their decimal number ("opt.0"), and a key with a control character or of
 * another type is an error. A list or tuple holding no container and no
 * tensor is one non-tensor entry. The top-level object must be a dict, list
 * or tuple; two tensors with the same name are an error. */
#ifndef TM_TORCH_CKPT_H
#define TM_TORCH_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "pickle.h"
#include "transmute.h"

#define TM_CK_MAX_FILE (INT64_C(8) << 30)

struct tm_ckpt_tensor {
    char *name;
    int prefix_len;    /* bytes of name that came from enclosing dicts, with the '.' */
    enum tm_ckpt_dtype dtype;
    int ndim;          /* 0 (a scalar) .. TM_CK_MAX_DIMS */
    int64_t shape[TM_CK_MAX_DIMS];
    void *data;        /* row-major, little-endian; never NULL */
    size_t nbytes;     /* product of shape * element size (0 for an empty tensor) */
};

struct tm_ckpt {
    struct tm_ckpt_tensor *tensors; /* in the order of the file's dicts */
    int n_tensors;
    char **others;                  /* names of the non-tensor entries ("epoch") */
    int n_others;
    const char *format;             /* "zip" or "legacy" */
};

/* Loads the checkpoint file at path (at most TM_CK_MAX_FILE bytes). Every
 * tensor is materialized contiguous from its storage, offset and strides,
 * each checked against the storage. An empty dict is not an error.
 * TM_ERR_IO, TM_ERR_FORMAT (corrupt, truncated), TM_ERR_UNSUPPORTED (code
 * or a dtype the file should not need) or TM_ERR_NOMEM, with a one-line
 * message in err that does not repeat the path; *ck is then empty. */
tm_status tm_ckpt_load(const char *path, struct tm_ckpt *ck, char *err, size_t errlen);

/* The same from memory; the result does not point into bytes. */
tm_status tm_ckpt_load_memory(const uint8_t *bytes, size_t size, struct tm_ckpt *ck, char *err,
                              size_t errlen);

/* Frees everything in *ck and zeroes it; a zeroed *ck is a no-op. */
void tm_ckpt_free(struct tm_ckpt *ck);

#endif
