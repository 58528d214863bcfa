/* tiled.h: running a model over an image of any size with bounded device
 * memory, with the result of the whole-image plan.
 *
 * The graph is walked node by node with every value tensor at full size in
 * host memory (tm_graph_plan_memory's slots). Convolutions run on the
 * backend tile by tile: each output tile's input window is gathered on the
 * host with the layer's padding applied relative to the whole tensor, and a
 * one-node plan of the same conv (padding 0, same weights) computes it.
 * Every other op (norms, activations, adds, concats, scale, PReLU,
 * resampling) runs on the host over whole tensors, so instance and batch
 * norm statistics are those of the whole image. The device holds a second
 * copy of the conv weights and one layer's plan at a time; host memory
 * grows with the image. */
#ifndef TM_TILED_H
#define TM_TILED_H

#include "backend.h"

#define TM_TILED_MIN_TILE 16

struct tm_model;

/* Runs m's graph over a ph x pw input x (CHW floats, already padded to the
 * model's multiple) into y (the output tensor, CHW): the same result as
 * plan_run on the whole image, up to float rounding. tile is the largest
 * output tile side of every convolution, in its own output pixels, at least
 * TM_TILED_MIN_TILE; 0 picks per layer the largest (up to 1024) whose
 * window, output and weights fit in a quarter of the device's memory, with
 * the window and the output within 128 MiB each (what any Vulkan device's
 * descriptors reach).
 * Progress (opts may be NULL) is reported per tile by the work done and
 * ends at exactly 1.0; the cancel flag is checked between tiles and host
 * ops (TM_ERR_CANCELLED). With opts->smoothing the norms carry their
 * statistics in m->tiled_stats (core/smooth.h). Re-infers m->graph for
 * ph x pw. */
tm_status tm_tiled_run(struct tm_model *m, const float *x, float *y, int ph, int pw, int tile,
                       const struct tm_run_opts *opts);

/* Frees m's per-layer conv graphs and their device weights (m->tiled); a no-op
 * when the tiled path never ran. */
void tm_tiled_free(struct tm_model *m);

#endif
