/* tiled.c: the tiled path's driver: per-model one-node conv graphs and
 * their plans, per-call host tensors, and the walk over the nodes with
 * progress and cancellation. The index math is in tiled_window.c, the host
 * ops in tiled_host.c. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/threadpool.h"
#include "model.h"
#include "tiled.h"
#include "tiled_host.h"
#include "tiled_window.h"

#define AUTO_MAX_TILE 1024
#define AUTO_STEP 16
/* Used when a device does not report its memory. */
#define DEFAULT_DEVICE_MEMORY ((uint64_t)1 << 30)
/* The smallest maxStorageBufferRange Vulkan allows: automatic windows stay
 * within it so that every device reaches them through a descriptor. */
#define MAX_AUTO_TENSOR ((size_t)128 << 20)

/* One convolution of the model as a graph of its own. Its plan lives only
 * while its tiles run: kept plans would add up over the layers, and making
 * one costs little next to running it. */
struct tiled_conv {
    struct tm_graph g;     /* the conv with padding 0 over the model's weights */
    void *params;          /* the backend's copy of those weights */
};

struct tm_tiled {
    struct tiled_conv *conv;  /* by node index; empty graphs for other nodes */
    int n_nodes;
    struct tm_pool *pool;     /* host-side gathers, scatters and ops */
};

/* One call. */
struct run {
    struct tm_model *m;
    const struct tm_graph *g;
    const struct tm_run_opts *opts;
    struct tm_tile_axis (*axes)[2]; /* by node: rows, columns (convs only) */
    float **val;                    /* host data of each value tensor */
    float **slot;
    int n_slots;
    float *win_in, *win_out;        /* one tile's window and its device output */
    double *cost;                   /* by node */
    double done, total, last;
    const struct tm_smooth *smooth; /* m->tiled_stats in a smoothing run, else NULL */
};

static bool is_conv(const struct tm_node *n)
{
    return n->op == TM_OP_CONV2D || n->op == TM_OP_CONVT2D;
}

static const char *label_of(const struct tm_node *n)
{
    return n->label ? n->label : tm_op_name(n->op);
}

static int channels_in(const struct tm_graph *g, const struct tm_node *n)
{
    return (int)g->tensors[n->w].dims[n->op == TM_OP_CONVT2D ? 0 : 1];
}

static int channels_out(const struct tm_graph *g, const struct tm_node *n)
{
    return (int)g->tensors[n->w].dims[n->op == TM_OP_CONVT2D ? 1 : 0];
}

static size_t param_bytes(const struct tm_graph *g, int id)
{
    size_t n = id >= 0 ? sizeof(float) : 0;
    for (int i = 0; id >= 0 && i < g->tensors[id].ndim; i++)
        n *= (size_t)g->tensors[id].dims[i];
    return n;
}

static size_t budget(const tm_ctx *ctx)
{
    uint64_t mem = ctx->device.memory ? ctx->device.memory : DEFAULT_DEVICE_MEMORY;
    return (size_t)(mem / 4);
}

/* ---- per-model conv graphs ---------------------------------------------- */

static int copy_param(struct tm_graph *dst, const struct tm_graph *src, int id)
{
    const struct tm_tensor *t = &src->tensors[id];
    return tm_graph_param(dst, t->name, t->data, t->ndim, t->dims);
}

/* Conv node n alone, reading windows with its padding already applied. */
static bool conv_graph(const struct tm_graph *g, const struct tm_node *n, struct tm_graph *cg)
{
    struct tm_node c = *n;
    c.conv.pad = 0;
    c.conv.out_pad = 0;
    c.conv.pad_mode = TM_PAD_ZERO;
    c.in[0] = cg->input = tm_graph_value(cg);
    c.w = copy_param(cg, g, n->w);
    c.b = n->b >= 0 ? copy_param(cg, g, n->b) : -1;
    if (cg->input < 0 || c.w < 0 || (n->b >= 0 && c.b < 0))
        return false;
    cg->tensors[cg->input].c = channels_in(g, n);
    cg->output = tm_graph_add(cg, &c);
    return cg->output >= 0;
}

static tm_status tiled_create(struct tm_model *m)
{
    struct tm_backend *be = m->ctx->backend;
    const struct tm_graph *g = &m->graph;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = m->ctx->params.threads > 0 ? m->ctx->params.threads : cores > 0 ? (int)cores : 1;
    struct tm_tiled *t = m->tiled = calloc(1, sizeof *t);
    if (t)
        t->conv = calloc((size_t)g->n_nodes + 1, sizeof *t->conv);
    if (t && t->conv)
        t->pool = tm_pool_create(threads);
    if (!t || !t->conv || !t->pool)
        return tm_fail(m->ctx, TM_ERR_NOMEM, "out of memory for the tiled path");
    t->n_nodes = g->n_nodes;
    for (int i = 0; i < g->n_nodes; i++) {
        struct tiled_conv *tc = &t->conv[i];
        tm_graph_init(&tc->g);
        if (!is_conv(&g->nodes[i]))
            continue;
        if (!conv_graph(g, &g->nodes[i], &tc->g))
            return tm_fail(m->ctx, TM_ERR_NOMEM, "out of memory for the tiled path");
        tm_status s = be->vt->params_upload(be, &tc->g, &tc->params);
        if (s)
            return s;
    }
    return TM_OK;
}

void tm_tiled_free(struct tm_model *m)
{
    struct tm_tiled *t = m->tiled;
    struct tm_backend *be = m->ctx->backend;
    if (!t)
        return;
    for (int i = 0; t->conv && i < t->n_nodes; i++) {
        if (t->conv[i].params)
            be->vt->params_free(be, t->conv[i].params);
        tm_graph_free(&t->conv[i].g);
    }
    if (t->pool)
        tm_pool_destroy(t->pool);
    free(t->conv);
    free(t);
    m->tiled = NULL;
}

/* Floats of one tile's window of node n, and of the device's output for it. */
static size_t window_in(const struct tm_graph *g, const struct tm_node *n,
                        const struct tm_tile_axis a[2])
{
    return (size_t)channels_in(g, n) * (size_t)a[0].win * (size_t)a[1].win;
}

static size_t window_out(const struct tm_graph *g, const struct tm_node *n,
                         const struct tm_tile_axis a[2])
{
    return (size_t)channels_out(g, n) * (size_t)a[0].dev_out * (size_t)a[1].dev_out;
}

/* ---- one call: tiles, host tensors, costs ------------------------------- */

static void node_axes(const struct tm_graph *g, const struct tm_node *n, int tile,
                      struct tm_tile_axis a[2])
{
    const struct tm_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    int tr = n->op == TM_OP_CONVT2D, s = n->conv.stride, p = n->conv.pad, d = n->conv.dil;
    tm_tile_axis_init(&a[0], tr, n->conv.kh, s, p, d, x->h, y->h, tile);
    tm_tile_axis_init(&a[1], tr, n->conv.kw, s, p, d, x->w, y->w, tile);
}

/* tile 0: the largest whose window, output and weights fit the budget,
 * each tensor within MAX_AUTO_TENSOR. */
static void choose_axes(const struct run *r, const struct tm_node *n, int tile,
                        struct tm_tile_axis a[2])
{
    size_t weights = param_bytes(r->g, n->w) + param_bytes(r->g, n->b);
    for (int t = tile ? tile : AUTO_MAX_TILE;; t -= AUTO_STEP) {
        node_axes(r->g, n, t, a);
        size_t in = sizeof(float) * window_in(r->g, n, a);
        size_t out = sizeof(float) * window_out(r->g, n, a);
        bool fits = in + out + weights <= budget(r->m->ctx) && in <= MAX_AUTO_TENSOR &&
                    out <= MAX_AUTO_TENSOR;
        if (tile || t <= TM_TILED_MIN_TILE || fits)
            return;
    }
}

/* Multiply-accumulates of a conv, elements of anything else. */
static double node_cost(const struct tm_graph *g, const struct tm_node *n)
{
    const struct tm_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    if (!is_conv(n))
        return (double)tm_value_numel(y);
    double taps = (double)x->c * n->conv.kh * n->conv.kw;
    return taps * (n->op == TM_OP_CONVT2D ? (double)y->c * x->h * x->w : (double)tm_value_numel(y));
}

static void *alloc_floats(struct run *r, size_t n)
{
    void *p = malloc(sizeof(float) * (n ? n : 1));
    if (!p)
        tm_fail(r->m->ctx, TM_ERR_NOMEM, "out of host memory: %zu MiB for the tiled path",
                (sizeof(float) * n) >> 20);
    return p;
}

/* Full-size host tensors in the slots of the graph's memory plan. */
static tm_status host_tensors(struct run *r)
{
    int *slot_of = NULL;
    size_t *slot_size = NULL;
    tm_status s = TM_OK;
    r->n_slots = tm_graph_plan_memory(r->g, &slot_of, &slot_size);
    r->slot = r->n_slots < 0 ? NULL : calloc((size_t)r->n_slots + 1, sizeof *r->slot);
    r->val = calloc((size_t)r->g->n_tensors + 1, sizeof *r->val);
    if (!r->slot || !r->val)
        s = tm_fail(r->m->ctx, TM_ERR_NOMEM, "out of host memory for the tiled path");
    for (int i = 0; !s && i < r->n_slots; i++)
        if (!(r->slot[i] = alloc_floats(r, slot_size[i] / sizeof(float))))
            s = TM_ERR_NOMEM;
    for (int t = 0; !s && t < r->g->n_tensors; t++)
        if (slot_of[t] >= 0)
            r->val[t] = r->slot[slot_of[t]];
    free(slot_of);
    free(slot_size);
    return s;
}

/* Tiles and costs of every node, and the window buffers for the largest. */
static tm_status run_prepare(struct run *r, int tile)
{
    const struct tm_graph *g = r->g;
    size_t in_max = 0, out_max = 0;
    r->axes = calloc((size_t)g->n_nodes + 1, sizeof *r->axes);
    r->cost = calloc((size_t)g->n_nodes + 1, sizeof *r->cost);
    if (!r->axes || !r->cost)
        return tm_fail(r->m->ctx, TM_ERR_NOMEM, "out of host memory for the tiled path");
    for (int i = 0; i < g->n_nodes; i++) {
        const struct tm_node *n = &g->nodes[i];
        r->cost[i] = node_cost(g, n);
        r->total += r->cost[i];
        if (!is_conv(n))
            continue;
        struct tm_tile_axis *a = r->axes[i];
        choose_axes(r, n, tile, a);
        size_t in = window_in(g, n, a), out = window_out(g, n, a);
        in_max = in > in_max ? in : in_max;
        out_max = out > out_max ? out : out_max;
    }
    if (!(r->win_in = alloc_floats(r, in_max)) || !(r->win_out = alloc_floats(r, out_max)))
        return TM_ERR_NOMEM;
    return host_tensors(r);
}

static void run_free(struct run *r)
{
    for (int i = 0; r->slot && i < r->n_slots; i++)
        free(r->slot[i]);
    free(r->slot);
    free(r->val);
    free(r->axes);
    free(r->cost);
    free(r->win_in);
    free(r->win_out);
}

/* ---- the walk ------------------------------------------------------------ */

/* Reports the work done so far; only rising fractions below 1, which the
 * end of the run reports. */
static tm_status advance(struct run *r, double cost)
{
    const struct tm_run_opts *o = r->opts;
    r->done += cost;
    double f = r->total > 0 ? r->done / r->total : 0.0;
    if (!o || !o->progress || f <= r->last || f >= 1.0)
        return TM_OK;
    r->last = f;
    if (!o->progress(o->progress_priv, f))
        return tm_fail(r->m->ctx, TM_ERR_CANCELLED, "cancelled by the progress callback");
    return TM_OK;
}

/* Before node i, or before tile `tile` of its n_tiles (convs). */
static tm_status check_cancel(struct run *r, int i, int tile, int n_tiles)
{
    const char *label = label_of(&r->g->nodes[i]);
    if (!r->opts || !r->opts->cancel || !*r->opts->cancel)
        return TM_OK;
    if (!n_tiles)
        return tm_fail(r->m->ctx, TM_ERR_CANCELLED, "cancelled before node %d of %d (%s)", i + 1,
                       r->g->n_nodes, label);
    return tm_fail(r->m->ctx, TM_ERR_CANCELLED, "cancelled at node %d of %d (%s), tile %d of %d",
                   i + 1, r->g->n_nodes, label, tile + 1, n_tiles);
}

struct tile_job {
    const struct run *r;
    const struct tm_node *n;
    const struct tm_tile_axis *a;
    int ty, tx;
};

static void gather_task(void *arg, int c, int thread)
{
    const struct tile_job *j = arg;
    const struct tm_tile_axis *a = j->a;
    const struct tm_node *n = j->n;
    int reflect = n->op == TM_OP_CONV2D && n->conv.pad_mode == TM_PAD_REFLECT;
    tm_window_gather(j->r->win_in + (size_t)c * (size_t)a[0].win * (size_t)a[1].win,
                     j->r->val[n->in[0]] + (size_t)c * (size_t)a[0].in_len * (size_t)a[1].in_len,
                     &a[0], &a[1], j->ty, j->tx, reflect);
}

static void scatter_task(void *arg, int c, int thread)
{
    const struct tile_job *j = arg;
    const struct tm_tile_axis *a = j->a;
    size_t plane = (size_t)a[0].out_len * (size_t)a[1].out_len;
    tm_window_scatter(j->r->val[j->n->out] + (size_t)c * plane,
                      j->r->win_out + (size_t)c * (size_t)a[0].dev_out * (size_t)a[1].dev_out,
                      &a[0], &a[1], j->ty, j->tx);
}

static tm_status run_tile(struct run *r, int i, void *plan, int ty, int tx)
{
    struct tm_backend *be = r->m->ctx->backend;
    const struct tm_node *n = &r->g->nodes[i];
    const struct tm_tile_axis *a = r->axes[i];
    struct tile_job j = { r, n, a, ty, tx };
    tm_status s = check_cancel(r, i, ty * a[1].n_tiles + tx, a[0].n_tiles * a[1].n_tiles);
    if (s)
        return s;
    tm_pool_run(r->m->tiled->pool, gather_task, &j, channels_in(r->g, n));
    if ((s = be->vt->plan_run(be, plan, r->win_in, r->win_out, NULL)))
        return s;
    tm_pool_run(r->m->tiled->pool, scatter_task, &j, channels_out(r->g, n));
    double area = (double)tm_tile_len(&a[0], ty) * tm_tile_len(&a[1], tx);
    return advance(r, r->cost[i] * area / ((double)a[0].out_len * a[1].out_len));
}

/* Conv node i: one plan for its window size, run over every tile. */
static tm_status run_conv(struct run *r, int i)
{
    struct tiled_conv *tc = &r->m->tiled->conv[i];
    struct tm_backend *be = r->m->ctx->backend;
    const struct tm_tile_axis *a = r->axes[i];
    void *plan = NULL;
    char err[256];
    tm_status s = tm_graph_infer(&tc->g, a[0].win, a[1].win, err, sizeof err);
    if (s)
        return tm_fail(r->m->ctx, s, "tiled %s: %s", label_of(&r->g->nodes[i]), err);
    s = be->vt->plan_create(be, &tc->g, tc->params, &plan);
    for (int ty = 0; !s && ty < a[0].n_tiles; ty++)
        for (int tx = 0; !s && tx < a[1].n_tiles; tx++)
            s = run_tile(r, i, plan, ty, tx);
    if (plan)
        be->vt->plan_destroy(be, plan);
    return s;
}

static tm_status run_nodes(struct run *r)
{
    for (int i = 0; i < r->g->n_nodes; i++) {
        const struct tm_node *n = &r->g->nodes[i];
        tm_status s = is_conv(n) ? run_conv(r, i) : check_cancel(r, i, 0, 0);
        if (!s && !is_conv(n)) {
            tm_host_node(r->m->tiled->pool, r->g, n, r->val, r->smooth);
            s = advance(r, r->cost[i]);
        }
        if (s)
            return s;
    }
    const struct tm_run_opts *o = r->opts;
    if (o && o->progress && !o->progress(o->progress_priv, 1.0))
        return tm_fail(r->m->ctx, TM_ERR_CANCELLED, "cancelled by the progress callback");
    return TM_OK;
}

tm_status tm_tiled_run(struct tm_model *m, const float *x, float *y, int ph, int pw, int tile,
                       const struct tm_run_opts *opts)
{
    if (tile < 0 || (tile > 0 && tile < TM_TILED_MIN_TILE))
        return tm_fail(m->ctx, TM_ERR_INVALID, "tile side %d: use 0 (automatic) or at least %d",
                       tile, TM_TILED_MIN_TILE);
    char err[256];
    tm_status s = tm_graph_infer(&m->graph, ph, pw, err, sizeof err);
    if (s)
        return tm_fail(m->ctx, s, "image %dx%d (padded): %s", pw, ph, err);
    if (!m->tiled && (s = tiled_create(m))) {
        tm_tiled_free(m);
        return s;
    }
    const struct tm_graph *g = &m->graph;
    if (opts && opts->smoothing > 0.0f && !m->tiled_stats.at &&
        (s = tm_smooth_init(m->ctx, &m->tiled_stats, g)))
        return s;
    struct run r = { .m = m, .g = g, .opts = opts };
    if (!(s = run_prepare(&r, tile))) {
        memcpy(r.val[g->input], x, sizeof(float) * tm_value_numel(&g->tensors[g->input]));
        r.smooth = tm_smooth_begin(&m->tiled_stats, opts) ? &m->tiled_stats : NULL;
        s = run_nodes(&r);
    }
    if (!s)
        memcpy(y, r.val[g->output], sizeof(float) * tm_value_numel(&g->tensors[g->output]));
    run_free(&r);
    return s;
}
