/* graph.h: the op graph a model is built into, and that backends run.
 *
 * Tensors are float32, batch 1, laid out CHW (channel planes of H rows of W).
 * A graph is built once per model from its metadata; tm_graph_infer() then
 * fixes every value tensor's shape for one input size, and a backend plans
 * and runs it for that size. Parameter tensors hold host data (float32,
 * already converted from F16/BF16) owned by the model. */
#ifndef TM_GRAPH_H
#define TM_GRAPH_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transmute.h"

enum tm_op {
    TM_OP_CONV2D,     /* in[0] -> out; w [Cout,Cin,KH,KW], optional bias [Cout] */
    TM_OP_CONVT2D,    /* in[0] -> out; w [Cin,Cout,KH,KW] (PyTorch layout), optional bias */
    TM_OP_INSTNORM,   /* per-channel statistics of this image, optional affine w,b */
    TM_OP_BATCHNORM,  /* w,b affine; mean,var running stats (used when !image_stats) */
    TM_OP_ACT,        /* elementwise activation */
    TM_OP_ADD,        /* in[0] + in[1], then activation */
    TM_OP_CONCAT,     /* channels of in[0], then in[1], ... in[n_in-1] */
    TM_OP_SCALE,      /* in[0] * alpha, then activation */
    TM_OP_PRELU,      /* x > 0 ? x : w[c] * x; w has C entries or one shared */
    TM_OP_UPSAMPLE,   /* nearest neighbour, rs.factor on both axes */
    TM_OP_DEPTH2SPACE, /* [C*f*f, H, W] -> [C, H*f, W*f], f = rs.factor, order rs.order */
    TM_OP_SPACE2DEPTH, /* the inverse: [C, H*f, W*f] -> [C*f*f, H, W] */
    TM_OP_COUNT
};

enum tm_act { TM_ACT_NONE = 0, TM_ACT_RELU, TM_ACT_LRELU, TM_ACT_TANH };
enum tm_pad_mode { TM_PAD_ZERO = 0, TM_PAD_REFLECT };

/* Where depth-to-space takes output pixel (y*f+dy, x*f+dx) of channel c from,
 * among the C*f*f input channels (space-to-depth is the exact inverse):
 * TF (tf.nn.depth_to_space, NHWC):   channel (dy*f + dx)*C + c
 * TORCH (nn.PixelShuffle, NCHW):     channel c*f*f + dy*f + dx */
enum tm_d2s_order { TM_D2S_TF = 0, TM_D2S_TORCH };

/* Most inputs one node takes (concat); builders chain longer lists. */
#define TM_MAX_IN 16

struct tm_conv_attr {
    int kh, kw;
    int stride;
    int pad;          /* same on all four sides */
    int pad_mode;     /* enum tm_pad_mode (conv2d only) */
    int out_pad;      /* convT2d output_padding (bottom and right) */
    int dil;          /* conv2d dilation (1 = none; 0 is taken as 1) */
};

struct tm_resample_attr {
    int factor;       /* upsample, depth2space, space2depth */
    int order;        /* enum tm_d2s_order */
};

struct tm_norm_attr {
    float eps;
    int image_stats;  /* batchnorm: 1 = this image's statistics, 0 = running */
};

struct tm_node {
    enum tm_op op;
    int in[TM_MAX_IN]; /* value tensor ids; unused entries are -1 */
    int n_in;          /* inputs used (tm_graph_add counts them) */
    int out;
    /* parameter tensor ids, -1 when absent: conv w,b; norm w(gamma),b(beta),mean,var */
    int w, b, mean, var;
    int act;          /* enum tm_act, applied to the op's result */
    float slope;      /* LeakyReLU negative slope */
    float alpha;      /* scale: the constant factor */
    struct tm_conv_attr conv;
    struct tm_norm_attr norm;
    struct tm_resample_attr rs;
    const char *label; /* e.g. "model.10.conv_block.1" for messages and profiles */
};

enum tm_tensor_kind { TM_T_VALUE = 0, TM_T_PARAM };

struct tm_tensor {
    enum tm_tensor_kind kind;
    int c, h, w;         /* value tensors: shape after tm_graph_infer() */
    /* parameter tensors */
    int ndim;
    int64_t dims[4];
    const float *data;   /* not owned */
    const char *name;    /* not owned */
};

struct tm_graph {
    struct tm_tensor *tensors;
    int n_tensors, cap_tensors;
    struct tm_node *nodes;
    int n_nodes, cap_nodes;
    int input, output;   /* value tensor ids */
    struct tm_kept *kept; /* strings owned by the graph (tm_graph_keep) */
};

void tm_graph_init(struct tm_graph *g);
void tm_graph_free(struct tm_graph *g);

/* Adds a value tensor (shape unknown until inference); returns its id or -1 on OOM. */
int tm_graph_value(struct tm_graph *g);
/* Adds a parameter tensor over host data; returns its id or -1 on OOM. */
int tm_graph_param(struct tm_graph *g, const char *name, const float *data,
                   int ndim, const int64_t *dims);
/* Appends a node (copied); its out tensor is created here and returned, -1 on
 * OOM. n_in is set to the number of leading in[] entries that are >= 0, and
 * a conv dilation of 0 (a plain initializer) becomes 1. */
int tm_graph_add(struct tm_graph *g, const struct tm_node *n);

/* A copy of s owned by the graph (freed with it), NULL on OOM. */
const char *tm_graph_keep(struct tm_graph *g, const char *s);

/* Whether the op applies node.act to its result (the others ignore it). */
static inline bool tm_op_takes_act(enum tm_op op)
{
    return op == TM_OP_CONV2D || op == TM_OP_CONVT2D || op == TM_OP_INSTNORM ||
           op == TM_OP_BATCHNORM || op == TM_OP_ACT || op == TM_OP_ADD || op == TM_OP_SCALE;
}

/* A node with every id set to -1 and no activation; fill what the op needs. */
struct tm_node tm_node_new(enum tm_op op, int in0);

/* Fixes value shapes for an input of c x h x w. Fails with a message when a
 * shape does not fit (kernel larger than its padded input, mismatched add). */
tm_status tm_graph_infer(struct tm_graph *g, int h, int w, char *err, size_t errlen);

/* Memory plan: assigns each value tensor a slot so that tensors whose lives do
 * not overlap share one. Elementwise ops (act, add, norms) may write over an
 * input that dies at that node. slot_of has n_tensors entries (-1 for params);
 * slot_size gets the byte size of each slot. Returns the slot count, -1 on OOM.
 * The caller frees *slot_of and *slot_size. */
int tm_graph_plan_memory(const struct tm_graph *g, int **slot_of, size_t **slot_size);

/* Whether some node normalizes with statistics of the whole image (instance
 * norm, batch norm with image statistics): such graphs cannot be cut into
 * independent tiles. */
bool tm_graph_has_image_stats(const struct tm_graph *g);

/* The output's dependence on the input, after tm_graph_infer(): each output
 * pixel depends only on input pixels within *radius of its own position
 * (scaled back to input resolution), and the output is *scale times the input
 * on each side (0 when the graph changes size in another way, e.g. strided
 * convs). Both in input pixels, rounded up. */
void tm_graph_reach(const struct tm_graph *g, int *radius, int *scale);

/* Infers the graph for an h x w input and sums the memory plan's slots: the
 * bytes of activations a whole-image plan of that size holds. */
tm_status tm_graph_activation_bytes(struct tm_graph *g, int h, int w, uint64_t *bytes,
                                    char *err, size_t errlen);

/* Elements of a value tensor (after inference). */
static inline size_t tm_value_numel(const struct tm_tensor *t)
{
    return (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

const char *tm_op_name(enum tm_op op);

/* The activation as a plain scalar function, shared by the CPU kernels and the
 * test references so every path agrees on its definition. */
static inline float tm_act_apply(int act, float slope, float x)
{
    switch (act) {
    case TM_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case TM_ACT_LRELU: return x > 0.0f ? x : x * slope;
    case TM_ACT_TANH: return tanhf(x);
    default: return x;
    }
}

#endif
