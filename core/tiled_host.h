/* tiled_host.h: the graph's ops other than convolutions, on whole host
 * tensors, for the tiled path: norms with the statistics of the whole
 * image, activation, add, concat, scale, PReLU and resampling. */
#ifndef TM_TILED_HOST_H
#define TM_TILED_HOST_H

#include "graph.h"

struct tm_pool;
struct tm_smooth;

/* Runs node n of g (not a conv2d/convt2d); value tensor t lives at val[t]
 * with the shape of the last tm_graph_infer. An elementwise op's output may
 * share memory with an input, as tm_graph_plan_memory allows. Instance norm
 * and batch norm with image statistics use each whole channel's mean and
 * biased variance, summed in double, blended through smooth when it is not
 * NULL (a smoothing run over g); the fused activation follows. */
void tm_host_node(struct tm_pool *pool, const struct tm_graph *g, const struct tm_node *n,
                  float *const *val, const struct tm_smooth *smooth);

#endif
