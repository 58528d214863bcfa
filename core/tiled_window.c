/* tiled_window.c: which input window each output tile of a conv needs, and
 * the copies into and out of tile buffers. */
#include <string.h>

#include "tiled_window.h"

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }
static int clamp(int v, int lo, int hi) { return imax(lo, imin(v, hi)); }

/* Rounding toward minus and plus infinity, for b > 0 and any sign of a. */
static int floor_div(int a, int b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static int ceil_div(int a, int b)
{
    return -floor_div(-a, b);
}

void tm_tile_axis_init(struct tm_tile_axis *a, int transposed, int k, int s, int pad, int dil,
                       int in_len, int out_len, int tile)
{
    int unit = transposed ? s : 1;
    int t = clamp(tile / unit * unit, unit, ceil_div(out_len, unit) * unit);
    a->in_len = in_len;
    a->out_len = out_len;
    a->tile = t;
    a->n_tiles = ceil_div(out_len, t);
    if (!transposed) {
        /* Output o reads padded inputs o*s .. o*s+ext-1, i.e. o*s-pad
         * onwards, where ext is the dilated kernel's extent. */
        a->pad = pad;
        a->win = (t - 1) * s + dil * (k - 1) + 1;
        a->dev_out = t;
        a->off = 0;
        a->step = t * s;
        a->base = -pad;
        return;
    }
    /* Output o receives input i through tap o + pad - i*s when that is in
     * [0, k). Tiles start on multiples of s, so the first input a tile needs
     * sits a fixed c0 after start/s: its lowest contributor, or lower when
     * k < s leaves the tile's first outputs with none, so that the run's
     * output still begins at or before the tile. The window then reaches the
     * tile's last contributor and covers the tile's end. Inputs outside the
     * tensor contribute nothing: they are gathered as zeros (pad 0). */
    int c0 = imin(ceil_div(pad - k + 1, s), floor_div(pad, s));
    a->pad = 0;
    a->off = pad - c0 * s;
    a->win = imax(floor_div(t - 1 + pad, s) - c0 + 1, ceil_div(a->off + t - k, s) + 1);
    a->dev_out = (a->win - 1) * s + k;
    a->step = t / s;
    a->base = c0;
}

/* The input index window position i reads, or -1 for a zero. */
static int source(int i, int n, int pad, int reflect)
{
    if (i >= 0 && i < n)
        return i;
    if (!reflect || i < -pad || i >= n + pad)
        return -1;
    return i < 0 ? -i : 2 * (n - 1) - i;
}

static float sample(const float *row, int i, const struct tm_tile_axis *ax, int reflect)
{
    int s = source(i, ax->in_len, ax->pad, reflect);
    return s < 0 ? 0.0f : row[s];
}

void tm_window_gather(float *dst, const float *plane, const struct tm_tile_axis *ay,
                      const struct tm_tile_axis *ax, int ty, int tx, int reflect)
{
    int y0 = tm_tile_start(ay, ty), x0 = tm_tile_start(ax, tx);
    int w = ax->win, n = ax->in_len;
    /* Window columns [lo, hi) lie inside the row and copy as one run. */
    int lo = clamp(-x0, 0, w), hi = clamp(n - x0, lo, w);
    for (int r = 0; r < ay->win; r++) {
        float *d = dst + (size_t)r * (size_t)w;
        int sy = source(y0 + r, ay->in_len, ay->pad, reflect);
        if (sy < 0) {
            memset(d, 0, sizeof(float) * (size_t)w);
            continue;
        }
        const float *row = plane + (size_t)sy * (size_t)n;
        for (int x = 0; x < lo; x++)
            d[x] = sample(row, x0 + x, ax, reflect);
        if (hi > lo)
            memcpy(d + lo, row + x0 + lo, sizeof(float) * (size_t)(hi - lo));
        for (int x = hi; x < w; x++)
            d[x] = sample(row, x0 + x, ax, reflect);
    }
}

void tm_window_scatter(float *plane, const float *src, const struct tm_tile_axis *ay,
                       const struct tm_tile_axis *ax, int ty, int tx)
{
    int h = tm_tile_len(ay, ty), w = tm_tile_len(ax, tx);
    float *d = plane + (size_t)ty * (size_t)ay->tile * (size_t)ax->out_len +
               (size_t)tx * (size_t)ax->tile;
    const float *s = src + (size_t)ay->off * (size_t)ax->dev_out + (size_t)ax->off;
    for (int r = 0; r < h; r++)
        memcpy(d + (size_t)r * (size_t)ax->out_len, s + (size_t)r * (size_t)ax->dev_out,
               sizeof(float) * (size_t)w);
}
