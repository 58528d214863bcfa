/* tfjs.h: TF.js layers-models (model.json + weight shards) as graph models.
 *
 * Reads a Keras functional model saved for TF.js (model.json with
 * "format": "layers-model", and the binary shards its weightsManifest lists)
 * and turns it into the tensors and metadata of a Transmute graph model
 * (docs/GRAPH.md): one graph node per Keras layer, in dependency order, under
 * the layer's name; Conv2D kernels transposed from HWIO to OIHW; quantized
 * weights dequantized to float32. Unsupported layers, options and files that
 * disagree with their manifest are errors naming the layer, weight or file.
 * Every count, size and name length read from the files is bounded. */
#ifndef TM_TFJS_H
#define TM_TFJS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "st_write.h"
#include "transmute.h"

#define TM_TFJS_MAX_JSON (64u << 20)       /* model.json bytes */
#define TM_TFJS_MAX_WEIGHTS (INT64_C(4) << 30) /* bytes of one manifest group */

struct tm_tfjs_options {
    /* The network's pixel range "LO,HI" (already checked by the caller), or
     * NULL: the range of a recognized UpscalerJS family, else an error. */
    const char *range;
    const char *name, *description, *license; /* metadata; NULL: none */
    bool half;                                /* store the weights as F16 */
};

struct tm_tfjs_block; /* storage owned by a tm_tfjs_model */

struct tm_tfjs_model {
    struct tm_stw_tensor *tensors; /* ready for tm_st_write, in node order */
    int n_tensors;
    struct tm_stw_meta *meta;      /* arch=graph, input_nc, output_nc, scale, range,
                                      graph, name, source (+ description, license) */
    int n_meta;
    /* For the caller's messages: */
    const char *family;     /* the recognized UpscalerJS family, or NULL */
    const char *range;      /* the range written */
    bool range_from_family; /* options.range was NULL */
    int n_layers, n_nodes, input_nc, output_nc, scale;
    size_t bytes;           /* tensor data written */
    struct tm_tfjs_block *blocks;
};

/* Whether path looks like a TF.js model.json: its name ends in ".json" or
 * its first non-space byte is '{'. False for an unreadable file. */
bool tm_tfjs_is_json(const char *path);

/* Loads the model.json at path and the shards beside it and builds *m.
 * Fails with a one-line message in err that does not repeat path:
 * TM_ERR_IO (a missing or unreadable file), TM_ERR_FORMAT (not a
 * layers-model, broken JSON, shards that disagree with the manifest),
 * TM_ERR_UNSUPPORTED (a layer, option or dtype a graph model cannot hold) or
 * TM_ERR_NOMEM; *m is then empty. */
tm_status tm_tfjs_load(const char *path, const struct tm_tfjs_options *opt, struct tm_tfjs_model *m,
                       char *err, size_t errlen);

/* Frees everything in *m and zeroes it; a zeroed *m is a no-op. */
void tm_tfjs_free(struct tm_tfjs_model *m);

#endif
