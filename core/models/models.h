/* models.h: building a model's op graph from its weight file.
 *
 * A builder walks the architecture in the official layer order, asking for
 * each parameter by its official state_dict name and shape. The first
 * problem (missing tensor, wrong shape) sticks in b->status/b->err and
 * every later call becomes a no-op returning -1, so builders read straight. */
#ifndef TM_MODELS_H
#define TM_MODELS_H

#include "../graph.h"
#include "../weights/safetensors.h"

enum tm_norm_kind { TM_NORM_NONE, TM_NORM_INSTANCE, TM_NORM_BATCH };

struct tm_arch {
    int input_nc, output_nc, ngf;
    enum tm_norm_kind norm;
    int image_stats;    /* batch norm: per-image statistics */
    int n_blocks;       /* resnet */
    int reflect;        /* resnet blocks: reflect (1) or zero (0) padding */
    int dropout;        /* resnet: dropout layers present (shift key indices) */
    int num_downs;      /* unet */
    int label_size;     /* stargan: label channels after the image's */
    int grow;           /* rrdbnet: channels each dense-block conv adds (num_grow_ch) */
    int scale;          /* super-resolution factor (1 for image-to-image) */
};

struct tm_build {
    struct tm_graph *g;
    const struct tm_safetensors *st;
    float *const *f32;   /* float32 data of each st tensor, by index */
    char *used;          /* per st tensor: claimed by the architecture */
    const struct tm_arch *arch;
    tm_status status;
    char err[384];
};

/* The parameter `name` with exactly this shape, as a graph param id. */
int tm_build_param(struct tm_build *b, const char *name, int ndim, const int64_t *dims);

/* Like tm_build_param, but absence is fine (returns -1 without error). */
int tm_build_param_opt(struct tm_build *b, const char *name, int ndim, const int64_t *dims);

/* A tensor the file may carry that inference does not read: checked for
 * shape when present, and marked as expected. */
void tm_build_claim_opt(struct tm_build *b, const char *name, int ndim, const int64_t *dims);

/* Conv2d / ConvTranspose2d layer `prefix` (prefix.weight, prefix.bias).
 * Returns the output value id, -1 after an error. */
int tm_build_conv(struct tm_build *b, int x, const char *prefix, int cin, int cout,
                  const struct tm_conv_attr *a, int bias);
int tm_build_convt(struct tm_build *b, int x, const char *prefix, int cin, int cout,
                   const struct tm_conv_attr *a, int bias);

/* The architecture's norm layer `prefix` over c channels (nothing for none). */
int tm_build_norm(struct tm_build *b, int x, const char *prefix, int c);

/* InstanceNorm2d(affine=True) `prefix` over c channels, normalized with this
 * image's statistics. Stored running_mean/running_var (track_running_stats)
 * are checked and claimed but never used, as in StarGAN's test code. */
int tm_build_instnorm_affine(struct tm_build *b, int x, const char *prefix, int c);

/* Applies an activation to x: fused into the node that just produced x
 * when it has none, else as its own node. Only valid when nothing else has
 * read x yet, which is how in-place activations behave in the official code. */
int tm_build_act(struct tm_build *b, int x, int act, float slope);

/* The activation as a node of its own, never fused. */
int tm_build_act_node(struct tm_build *b, int x, int act, float slope);

int tm_build_add(struct tm_build *b, int x, int y);
int tm_build_concat(struct tm_build *b, int x, int y);

/* Concat of n >= 2 values in order (chained when n exceeds TM_MAX_IN). */
int tm_build_concat_n(struct tm_build *b, const int *xs, int n);

/* x * alpha. */
int tm_build_scale(struct tm_build *b, int x, float alpha);

/* nn.PReLU `prefix` (prefix.weight of 1 or c entries) over c channels. */
int tm_build_prelu(struct tm_build *b, int x, const char *prefix, int c);

/* upsample (nearest), depth2space or space2depth by factor, in order
 * (enum tm_d2s_order; ignored by upsample). */
int tm_build_resample(struct tm_build *b, int x, enum tm_op op, int factor, int order);

/* A string that lives as long as the graph (node labels of graph models). */
const char *tm_build_keep(struct tm_build *b, const char *s);

/* Builds the graph of each architecture; g->input/g->output set on success. */
void tm_build_resnet(struct tm_build *b);
void tm_build_unet(struct tm_build *b);
void tm_build_stargan(struct tm_build *b);
void tm_build_rrdbnet(struct tm_build *b);
void tm_build_srresnet(struct tm_build *b);

/* arch=graph: the node list (docs/GRAPH.md), a JSON document. */
void tm_build_graph_spec(struct tm_build *b, const char *json);

#endif
