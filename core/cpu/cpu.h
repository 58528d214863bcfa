/* cpu.h: private interface between the files of the CPU backend. */
#ifndef TM_CPU_H
#define TM_CPU_H

#include <stdint.h>

#include <stdbool.h>

#include "backend.h"
#include "gemm.h"
#include "smooth.h"
#include "threadpool.h"

struct cpu_backend {
    struct tm_backend base;
    struct tm_pool *pool;
    const struct gemm_isa *isa;
    bool profile;               /* TRANSMUTE_PROFILE=1: log each node's time */
};

/* One GEMM-shaped convolution: a whole conv2d, or one output phase of a
 * convT2d. GEMM column (gy, gx) of a gh x gw grid reads input tap
 * (gy*stride + dy, gx*stride + dx) and lands on output pixel
 * (oy0 + gy*ostep, ox0 + gx*ostep). */
struct conv_gemm {
    const struct gemm_isa *isa; /* micro-kernel and packing shape of a */
    int m, k;             /* output channels, taps (rows of B) */
    float *a;             /* packed weights, tm_gemm_pack_a layout */
    int32_t *taps;        /* k triples: input channel, dy, dx */
    int stride;
    int reflect;          /* out-of-range taps mirror (else read zero) */
    int oy0, ox0, ostep;
};

/* Parameters of one node, copied or packed at upload. */
struct cpu_node_params {
    int n_gemm;           /* 1 for conv2d, stride^2 phases for convT2d */
    struct conv_gemm *gemm;
    float *bias;          /* conv bias or NULL */
    float *gamma, *beta;  /* norm affine or NULL */
    float *mean, *var;    /* batchnorm running statistics or NULL */
    float *slope;         /* PReLU: n_slope slopes, 1 (shared) or one per channel */
    int n_slope;
};

struct cpu_params {
    int n_nodes;
    struct cpu_node_params *node;
};

/* A value tensor while a plan runs. */
struct cpu_tensor {
    float *p;
    int c, h, w;
};

/* Per-thread scratch for the convolutions: an im2col panel and a C tile. */
struct cpu_scratch {
    float *b, *c;
};

/* How one conv GEMM is cut into tasks; also sizes the scratch. */
struct conv_tiling {
    int nc, kc;           /* pixels per tile (multiple of NR), K per chunk */
    int n_tiles;
    int m_split, mb_per_split;
};

/* 64-byte aligned allocation; on failure sets a message naming the size and
 * what it was for, and returns NULL (the caller returns TM_ERR_NOMEM). */
void *tm_cpu_alloc(tm_ctx *ctx, size_t bytes, const char *what);
void tm_cpu_free(void *p);

/* conv2d.c */
tm_status tm_cpu_conv2d_prepare(struct cpu_backend *be, const struct tm_node *n,
                                const struct tm_tensor *w, struct cpu_node_params *np);
void tm_cpu_conv_tiling(const struct gemm_isa *isa, int threads, int m, int k, int n,
                        struct conv_tiling *t);
void tm_cpu_conv_gemm_run(struct cpu_backend *be, const struct conv_gemm *g,
                          const struct cpu_tensor *in, struct cpu_tensor *out,
                          const float *bias, int act, float slope,
                          struct cpu_scratch *scratch);
/* GEMM grid of g for an output of oh x ow (0 when the phase is empty). */
void tm_cpu_conv_grid(const struct conv_gemm *g, int oh, int ow, int *gh, int *gw);

/* convt2d.c */
tm_status tm_cpu_convt2d_prepare(struct cpu_backend *be, const struct tm_node *n,
                                 const struct tm_tensor *w, struct cpu_node_params *np);

/* norm.c: norm node `node` (n, its parameters np): y = act(gamma * (x -
 * mean) / sqrt(var + eps) + beta) per channel, with the running statistics
 * when np has them, else this image's, blended through smooth when it is
 * not NULL (a smoothing run). out may equal in. */
void tm_cpu_norm(struct cpu_backend *be, const struct tm_node *n,
                 const struct cpu_node_params *np, const struct cpu_tensor *in,
                 struct cpu_tensor *out, const struct tm_smooth *smooth, int node);

/* eltwise.c: out may equal an input. */
void tm_cpu_act(struct cpu_backend *be, const struct cpu_tensor *in, struct cpu_tensor *out,
                int act, float slope);
void tm_cpu_add(struct cpu_backend *be, const struct cpu_tensor *a, const struct cpu_tensor *b,
                struct cpu_tensor *out, int act, float slope);
/* The kernels below take a pool rather than the backend so that the tiled
 * path (core/tiled_host.c) runs them on its own. out = act(alpha * in). */
void tm_cpu_scale(struct tm_pool *pool, const struct cpu_tensor *in, struct cpu_tensor *out,
                  float alpha, int act, float slope);
/* out = in > 0 ? in : w[c] * in, with n_w = 1 (one shared slope) or in->c. */
void tm_cpu_prelu(struct tm_pool *pool, const struct cpu_tensor *in, struct cpu_tensor *out,
                  const float *w, int n_w);
/* The channels of in[0], ..., in[n_in-1] in order; out overlaps no input. */
void tm_cpu_concat(struct tm_pool *pool, const struct cpu_tensor *const *in, int n_in,
                   struct cpu_tensor *out);
/* dst[i] = act(src[i] + bias) for n floats; the fused conv epilogue too. */
void tm_cpu_bias_act(float *dst, const float *src, size_t n, float bias, int act, float slope);

/* resample.c: node n (upsample, depth2space or space2depth, with its
 * factor and order) from in to out, shaped as tm_graph_infer left them;
 * out overlaps no input. */
void tm_cpu_resample(struct tm_pool *pool, const struct tm_node *n, const struct cpu_tensor *in,
                     struct cpu_tensor *out);

#endif
