/* tiled_overlap.c: see tiled_overlap.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "tiled_overlap.h"

/* One axis: core length, window length, and where window i starts. */
struct axis {
    int n, core, win, margin, align;
};

static int count(const struct axis *a)
{
    return (a->n + a->core - 1) / a->core;
}

/* Window start for the core starting at c0: margin before it, kept inside
 * the image, aligned down to the model's multiple (the margin includes that
 * slack). */
static int win_start(const struct axis *a, int c0)
{
    int s = c0 - a->margin;
    if (s > a->n - a->win)
        s = a->n - a->win;
    if (s < 0)
        s = 0;
    return s / a->align * a->align;
}

static void axis_init(struct axis *a, int n, int core, int margin, int align)
{
    a->n = n;
    a->align = align;
    a->margin = margin + align - 1;
    a->core = (core + align - 1) / align * align;
    if (a->core > n)
        a->core = n;
    a->win = a->core + 2 * a->margin;
    a->win = (a->win + align - 1) / align * align;
    if (a->win >= n) /* the window spans the image: one tile does it all */
        a->win = a->core = n;
}

/* Core side in input pixels: from the request, or (measured once per model)
 * the largest whose window's plan fits in half of the device's memory. */
static tm_status core_side(struct tm_model *m, int tile, int *core)
{
    if (tile > 0) {
        *core = tile / m->info.scale > 0 ? tile / m->info.scale : 1;
        return TM_OK;
    }
    if (!m->overlap_core) {
        /* Plan memory grows with the area: measure it per pixel at a small size. */
        int side = m->min_side * ((128 + m->min_side - 1) / m->min_side);
        uint64_t bytes;
        char err[256];
        tm_status s = tm_graph_activation_bytes(&m->graph, side, side, &bytes, err, sizeof err);
        if (s)
            return tm_fail(m->ctx, s, "%s", err);
        const struct tm_device_info *dev = tm_ctx_device(m->ctx);
        double budget = dev->memory ? (double)dev->memory / 2 : 1024.0 * 1024 * 1024;
        int win = (int)sqrt(budget / ((double)bytes / ((double)side * side)));
        m->overlap_core = win - 2 * m->reach > 64 ? win - 2 * m->reach : 64;
    }
    *core = m->overlap_core;
    return TM_OK;
}

struct nested {
    const struct tm_run_opts *outer;
    double base, span, last; /* last: the last fraction passed on */
};

static bool nested_progress(void *priv, double f)
{
    struct nested *n = priv;
    n->last = n->base + n->span * f;
    return n->outer->progress(n->outer->progress_priv, n->last);
}

static void gather(const float *x, int c, int ph, int pw, float *dst, int y0, int x0, int h, int w)
{
    for (int k = 0; k < c; k++)
        for (int r = 0; r < h; r++)
            memcpy(dst + ((size_t)k * h + r) * w, x + ((size_t)k * ph + y0 + r) * pw + x0,
                   sizeof(float) * (size_t)w);
}

/* Copies the core's output rows/cols of the window result into y. */
static void scatter(const float *win, int c, int wh, int ww, float *y, int oh, int ow,
                    int dy, int dx, int y0, int x0, int h, int w)
{
    for (int k = 0; k < c; k++)
        for (int r = 0; r < h; r++)
            memcpy(y + ((size_t)k * oh + y0 + r) * ow + x0,
                   win + ((size_t)k * wh + dy + r) * ww + dx, sizeof(float) * (size_t)w);
}

static tm_status run_window(struct tm_model *m, const float *xw, float *yw, int idx, int total,
                            const struct tm_run_opts *opts, struct nested *nest)
{
    struct tm_backend *be = m->ctx->backend;
    struct tm_run_opts o = { .cancel = opts ? opts->cancel : NULL };
    nest->base = (double)idx / total;
    nest->span = 1.0 / total;
    if (opts && opts->progress) {
        o.progress = nested_progress;
        o.progress_priv = nest;
    }
    return be->vt->plan_run(be, m->plan, xw, yw, &o);
}

tm_status tm_overlap_run(struct tm_model *m, const float *x, float *y, int ph, int pw, int tile,
                         const struct tm_run_opts *opts)
{
    int core = 0, s = m->info.scale, cin = m->graph.tensors[m->graph.input].c;
    int cout = m->info.output_nc;
    tm_status st = core_side(m, tile, &core);
    if (st)
        return st;
    struct axis ay, ax;
    axis_init(&ay, ph, core, m->reach, m->info.pad_multiple);
    axis_init(&ax, pw, core, m->reach, m->info.pad_multiple);
    if ((st = tm_model_plan(m, ay.win, ax.win)))
        return st;
    TM_INFO(m->ctx, "%dx%d in %dx%d tiles of %dx%d input pixels (margin %d)", pw, ph, count(&ax),
            count(&ay), ax.win, ay.win, m->reach);
    float *xw = malloc(sizeof(float) * (size_t)cin * (size_t)ay.win * (size_t)ax.win);
    float *yw = malloc(sizeof(float) * (size_t)cout * (size_t)ay.win * (size_t)ax.win * (size_t)(s * s));
    int total = count(&ay) * count(&ax), done = 0;
    struct nested nest = { .outer = opts };
    st = xw && yw ? TM_OK : tm_fail(m->ctx, TM_ERR_NOMEM, "out of memory for %dx%d tiles", ax.win, ay.win);
    for (int c0y = 0; c0y < ph && !st; c0y += ay.core) {
        for (int c0x = 0; c0x < pw && !st; c0x += ax.core, done++) {
            if (opts && opts->cancel && *opts->cancel) {
                st = tm_fail(m->ctx, TM_ERR_CANCELLED, "cancelled");
                break;
            }
            int wy = win_start(&ay, c0y), wx = win_start(&ax, c0x);
            int ch = ph - c0y < ay.core ? ph - c0y : ay.core;
            int cw = pw - c0x < ax.core ? pw - c0x : ax.core;
            gather(x, cin, ph, pw, xw, wy, wx, ay.win, ax.win);
            st = run_window(m, xw, yw, done, total, opts, &nest);
            if (!st)
                scatter(yw, cout, ay.win * s, ax.win * s, y, ph * s, pw * s, (c0y - wy) * s,
                        (c0x - wx) * s, c0y * s, c0x * s, ch * s, cw * s);
        }
    }
    free(xw);
    free(yw);
    if (!st && opts && opts->progress && nest.last < 1.0 &&
        !opts->progress(opts->progress_priv, 1.0))
        st = tm_fail(m->ctx, TM_ERR_CANCELLED, "cancelled");
    return st;
}
