/* tiled_overlap.h: large images through networks without image-wide
 * statistics (super-resolution), in overlapping tiles.
 *
 * Each output pixel of such a network depends only on input pixels within
 * its receptive radius (tm_graph_reach). The input is cut into core tiles;
 * each runs through the whole-network plan inside a window that adds the
 * radius on every side where the image goes on, and only the core's output
 * is kept. Zero padding at a window edge that is an image edge is the
 * image's own, so every kept pixel sees exactly what it sees in the
 * whole-image run. Windows share one size (they shift inwards at the
 * image's far edges), so one plan serves them all. */
#ifndef TM_TILED_OVERLAP_H
#define TM_TILED_OVERLAP_H

#include "backend.h"

struct tm_model;

/* Runs m's graph over the ph x pw input x (CHW, padded to the model's
 * multiple) into y (CHW, scale times larger). tile > 0: cores of about tile
 * output pixels per side (at least one input pixel); 0: the largest window
 * whose plan fits in half of the device's memory. Uses and replaces m->plan.
 * Progress per window, ending at exactly 1.0; cancel checked between
 * windows (TM_ERR_CANCELLED). */
tm_status tm_overlap_run(struct tm_model *m, const float *x, float *y, int ph, int pw, int tile,
                         const struct tm_run_opts *opts);

#endif
