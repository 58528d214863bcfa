/* smooth.h: temporal smoothing of norm statistics across runs
 * (tm_translate_params.smoothing), as the CPU backend and the tiled path
 * keep it on the host. The Vulkan backend keeps its own on the device
 * (shaders/norm_ema.comp) by the same rule:
 *   used = weight * carried + (1 - weight) * this image's   (mean, biased var)
 *   carried = used
 * with weight 0 on a fresh start. */
#ifndef TM_SMOOTH_H
#define TM_SMOOTH_H

#include <stdbool.h>

#include "backend.h"

/* The carried statistics of every smoothable norm of one graph. */
struct tm_smooth {
    double *stats;   /* (mean, var) pairs by channel, node after node */
    size_t *at;      /* by node: index of its first pair in stats */
    double weight;   /* of the carried statistics in this run; 0 starts afresh */
    bool carried;    /* stats hold an earlier run's */
};

/* Whether node n normalizes with per-image statistics, so smoothing applies:
 * instance norm, and batch norm with image statistics. */
static inline bool tm_norm_smoothable(const struct tm_node *n)
{
    return n->op == TM_OP_INSTNORM || (n->op == TM_OP_BATCHNORM && n->norm.image_stats);
}

/* Lays out and zeroes s for the norms of g (its value tensors' channel
 * counts, which do not depend on the input size). */
tm_status tm_smooth_init(tm_ctx *ctx, struct tm_smooth *s, const struct tm_graph *g);

void tm_smooth_free(struct tm_smooth *s);

/* Starts a run with opts (may be NULL): true when it smooths, with the
 * weight this run blends by; false, and s untouched, when it does not. */
bool tm_smooth_begin(struct tm_smooth *s, const struct tm_run_opts *opts);

/* Channel c of node `node` (smoothable, during a smoothing run): mean and var
 * hold this image's statistics and get the ones to normalize with, which
 * become the carried ones. Channels may run concurrently. */
void tm_smooth_use(const struct tm_smooth *s, int node, int c, double *mean, double *var);

#endif
