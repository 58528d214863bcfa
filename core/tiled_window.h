/* tiled_window.h: the index math of tiled convolution, one axis at a time,
 * and moving windows between whole host tensors and tile buffers.
 *
 * Along one axis a conv's output is cut into tiles of `tile` samples (the
 * last one cropped). Tile i is computed by running the same conv with
 * padding 0 over an input window of `win` samples that starts at input
 * index tm_tile_start(); the tile then starts `off` samples into that
 * run's output of `dev_out` samples. Window samples outside the input are
 * what the conv's own padding would read there (reflected or zero), or
 * zero where no valid output depends on them. Every tile has the same
 * window size, so one device plan serves all tiles of a node. */
#ifndef TM_TILED_WINDOW_H
#define TM_TILED_WINDOW_H

#include "graph.h"

struct tm_tile_axis {
    int in_len, out_len;    /* whole input and output sides */
    int pad;                /* conv2d padding, resolved while gathering */
    int tile, n_tiles;
    int win, dev_out, off;
    int step, base;         /* window of tile i starts at i * step + base */
};

/* The axis of a conv2d (transposed = 0) or convt2d of kernel k, stride s,
 * padding pad and dilation dil (conv2d only; 1 for a convt2d), with tiles
 * of at most `tile` >= 1 output samples. A convT's
 * tile is rounded down to a multiple of s (at least s) so that every tile
 * starts on the same stride phase; no tile is larger than the output
 * (rounded up to that multiple). */
void tm_tile_axis_init(struct tm_tile_axis *a, int transposed, int k, int s, int pad, int dil,
                       int in_len, int out_len, int tile);

/* First input index of tile i's window (may be negative). */
static inline int tm_tile_start(const struct tm_tile_axis *a, int i)
{
    return i * a->step + a->base;
}

/* Output samples tile i covers: tile, or less for the last one. */
static inline int tm_tile_len(const struct tm_tile_axis *a, int i)
{
    int left = a->out_len - i * a->tile;
    return left < a->tile ? left : a->tile;
}

/* Fills dst (ay->win rows of ax->win) with the window of tile (ty, tx) of
 * one input plane (ay->in_len rows of ax->in_len). With reflect, samples
 * within pad of a border mirror as ReflectionPad2d does; all other samples
 * outside the plane are zero. */
void tm_window_gather(float *dst, const float *plane, const struct tm_tile_axis *ay,
                      const struct tm_tile_axis *ax, int ty, int tx, int reflect);

/* Copies tile (ty, tx) out of src (one plane of the device output, ay->dev_out
 * rows of ax->dev_out) into its place in an output plane (ay->out_len rows of
 * ax->out_len). */
void tm_window_scatter(float *plane, const float *src, const struct tm_tile_axis *ay,
                       const struct tm_tile_axis *ax, int ty, int tx);

#endif
