/* backend_cpu.c: the CPU backend's vtable. Parameters are packed once
 * (params_upload); a plan owns the activation slots from the graph's memory
 * plan plus per-thread conv scratch, sized for one input size, and the norm
 * statistics smoothing carries; plan_run walks the nodes in order, each
 * kernel parallel inside over the backend's pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"

struct cpu_plan {
    const struct cpu_params *params;
    int n_nodes, n_tensors;
    struct tm_node *nodes;       /* copied: the graph may be re-inferred later */
    struct cpu_tensor *t;        /* value tensors: shape and slot pointer */
    int input, output;
    int n_slots;
    float **slot;
    int n_scratch;
    struct cpu_scratch *scratch;
    double *cost;                /* FLOP estimate per node, for progress */
    double total_cost;
    struct tm_smooth smooth;     /* carried norm statistics (smoothing) */
};

void *tm_cpu_alloc(tm_ctx *ctx, size_t bytes, const char *what)
{
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = rounded ? aligned_alloc(64, rounded) : NULL;
    if (!p)
        tm_fail(ctx, TM_ERR_NOMEM, "cpu backend: cannot allocate %zu bytes for %s", bytes, what);
    return p;
}

void tm_cpu_free(void *p)
{
    free(p);
}

static struct cpu_backend *cpu_of(struct tm_backend *be)
{
    return (struct cpu_backend *)be;
}

/* ---- parameters ---------------------------------------------------------- */

static void node_params_free(struct cpu_node_params *np)
{
    for (int i = 0; np->gemm && i < np->n_gemm; i++) {
        tm_cpu_free(np->gemm[i].a);
        tm_cpu_free(np->gemm[i].taps);
    }
    tm_cpu_free(np->gemm);
    tm_cpu_free(np->bias);
    tm_cpu_free(np->gamma);
    tm_cpu_free(np->beta);
    tm_cpu_free(np->mean);
    tm_cpu_free(np->var);
    tm_cpu_free(np->slope);
}

static void cpu_params_free(struct tm_backend *be, void *params)
{
    struct cpu_params *p = params;
    (void)be;
    if (!p)
        return;
    for (int i = 0; p->node && i < p->n_nodes; i++)
        node_params_free(&p->node[i]);
    free(p->node);
    free(p);
}

static const struct tm_tensor *param_tensor(const struct tm_graph *g, int id)
{
    if (id < 0 || id >= g->n_tensors || g->tensors[id].kind != TM_T_PARAM || !g->tensors[id].data)
        return NULL;
    return &g->tensors[id];
}

static size_t param_numel(const struct tm_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->dims[d];
    return n;
}

/* Copies parameter id (absent: *dst = NULL) so the model may drop its host copy. */
static tm_status copy_param(struct cpu_backend *be, const struct tm_graph *g, int id,
                            float **dst)
{
    *dst = NULL;
    if (id < 0)
        return TM_OK;
    const struct tm_tensor *t = param_tensor(g, id);
    if (!t)
        return tm_fail(be->base.ctx, TM_ERR_FORMAT, "cpu backend: tensor %d is not a parameter", id);
    size_t n = param_numel(t);
    *dst = tm_cpu_alloc(be->base.ctx, n * sizeof(float), t->name ? t->name : "parameter");
    if (!*dst)
        return TM_ERR_NOMEM;
    memcpy(*dst, t->data, n * sizeof(float));
    return TM_OK;
}

static tm_status copy_affine(struct cpu_backend *be, const struct tm_graph *g,
                             const struct tm_node *n, struct cpu_node_params *np)
{
    tm_status s = copy_param(be, g, n->w, &np->gamma);
    return s ? s : copy_param(be, g, n->b, &np->beta);
}

static tm_status node_params(struct cpu_backend *be, const struct tm_graph *g,
                             const struct tm_node *n, struct cpu_node_params *np)
{
    const char *label = n->label ? n->label : tm_op_name(n->op);
    tm_status s = TM_OK;
    switch (n->op) {
    case TM_OP_CONV2D:
    case TM_OP_CONVT2D: {
        const struct tm_tensor *w = param_tensor(g, n->w);
        if (!w || w->ndim != 4)
            return tm_fail(be->base.ctx, TM_ERR_FORMAT, "%s: missing 4-d weight", label);
        s = n->op == TM_OP_CONV2D ? tm_cpu_conv2d_prepare(be, n, w, np)
                                  : tm_cpu_convt2d_prepare(be, n, w, np);
        return s ? s : copy_param(be, g, n->b, &np->bias);
    }
    case TM_OP_BATCHNORM:
        if (!n->norm.image_stats && (n->mean < 0 || n->var < 0))
            return tm_fail(be->base.ctx, TM_ERR_FORMAT, "%s: running statistics missing", label);
        if (!n->norm.image_stats && ((s = copy_param(be, g, n->mean, &np->mean)) ||
                                     (s = copy_param(be, g, n->var, &np->var))))
            return s;
        return copy_affine(be, g, n, np);
    case TM_OP_INSTNORM:
        return copy_affine(be, g, n, np);
    case TM_OP_PRELU:
        if (!param_tensor(g, n->w))
            return tm_fail(be->base.ctx, TM_ERR_FORMAT, "%s: missing slopes", label);
        np->n_slope = (int)param_numel(&g->tensors[n->w]);
        return copy_param(be, g, n->w, &np->slope);
    default:
        return TM_OK;
    }
}

static tm_status cpu_params_upload(struct tm_backend *be, const struct tm_graph *g,
                                   void **params)
{
    struct cpu_backend *cb = cpu_of(be);
    struct cpu_params *p = calloc(1, sizeof *p);
    if (p)
        p->node = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *p->node);
    if (!p || !p->node) {
        free(p);
        return tm_fail(be->ctx, TM_ERR_NOMEM, "cpu backend: cannot allocate %zu bytes for node parameters",
                       sizeof *p->node * (size_t)g->n_nodes);
    }
    p->n_nodes = g->n_nodes;
    for (int i = 0; i < g->n_nodes; i++) {
        tm_status s = node_params(cb, g, &g->nodes[i], &p->node[i]);
        if (s) {
            cpu_params_free(be, p);
            return s;
        }
    }
    *params = p;
    return TM_OK;
}

/* ---- plans --------------------------------------------------------------- */

static void cpu_plan_destroy(struct tm_backend *be, void *plan)
{
    struct cpu_plan *p = plan;
    (void)be;
    if (!p)
        return;
    for (int i = 0; p->slot && i < p->n_slots; i++)
        tm_cpu_free(p->slot[i]);
    for (int i = 0; p->scratch && i < p->n_scratch; i++) {
        tm_cpu_free(p->scratch[i].b);
        tm_cpu_free(p->scratch[i].c);
    }
    free(p->slot);
    free(p->scratch);
    free(p->nodes);
    free(p->t);
    free(p->cost);
    tm_smooth_free(&p->smooth);
    free(p);
}

static int writes_in_place_ok(enum tm_op op)
{
    return op == TM_OP_ACT || op == TM_OP_ADD || op == TM_OP_INSTNORM || op == TM_OP_BATCHNORM ||
           op == TM_OP_SCALE || op == TM_OP_PRELU;
}

/* Slots from the graph's memory plan; in-place only where the kernel allows. */
static tm_status plan_slots(struct cpu_backend *be, const struct tm_graph *g, struct cpu_plan *p)
{
    int *slot_of = NULL;
    size_t *slot_size = NULL;
    p->n_slots = tm_graph_plan_memory(g, &slot_of, &slot_size);
    if (p->n_slots < 0)
        return tm_fail(be->base.ctx, TM_ERR_NOMEM, "cpu backend: memory plan failed (out of memory)");
    tm_status s = TM_OK;
    for (int i = 0; i < g->n_nodes && !s; i++) {
        const struct tm_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            if (slot_of[n->in[k]] == slot_of[n->out] &&
                !writes_in_place_ok(n->op))
                s = tm_fail(be->base.ctx, TM_ERR_INVALID, "cpu backend: %s would write over its input",
                            tm_op_name(n->op));
    }
    p->slot = s ? NULL : calloc((size_t)p->n_slots + 1, sizeof *p->slot);
    if (!s && !p->slot)
        s = tm_fail(be->base.ctx, TM_ERR_NOMEM, "cpu backend: cannot allocate slot table");
    for (int i = 0; !s && i < p->n_slots; i++) {
        p->slot[i] = tm_cpu_alloc(be->base.ctx, slot_size[i] ? slot_size[i] : 4, "an activation buffer");
        if (!p->slot[i])
            s = TM_ERR_NOMEM;
    }
    for (int t = 0; !s && t < g->n_tensors; t++)
        if (g->tensors[t].kind == TM_T_VALUE && slot_of[t] >= 0)
            p->t[t].p = p->slot[slot_of[t]];
    free(slot_of);
    free(slot_size);
    return s;
}

/* Scratch for the largest conv task of the plan, per thread; and FLOPs. */
static tm_status plan_scratch(struct cpu_backend *be, struct cpu_plan *p)
{
    int threads = tm_pool_threads(be->pool);
    size_t need_b = 1, need_c = 1;
    for (int i = 0; i < p->n_nodes; i++) {
        const struct tm_node *n = &p->nodes[i];
        const struct cpu_node_params *np = &p->params->node[i];
        const struct cpu_tensor *out = &p->t[n->out];
        p->cost[i] = (double)out->c * out->h * out->w;
        for (int k = 0; k < np->n_gemm; k++) {
            const struct conv_gemm *g = &np->gemm[k];
            int gh, gw;
            struct conv_tiling t;
            tm_cpu_conv_grid(g, out->h, out->w, &gh, &gw);
            if (gh <= 0 || gw <= 0)
                continue;
            tm_cpu_conv_tiling(g->isa, threads, g->m, g->k, gh * gw, &t);
            size_t b = (size_t)t.kc * (size_t)t.nc;
            size_t c = (size_t)t.mb_per_split * (size_t)g->isa->mr * (size_t)t.nc;
            need_b = b > need_b ? b : need_b;
            need_c = c > need_c ? c : need_c;
            p->cost[i] += 2.0 * g->m * (double)g->k * gh * gw;
        }
        p->total_cost += p->cost[i];
    }
    p->n_scratch = threads;
    p->scratch = calloc((size_t)threads, sizeof *p->scratch);
    if (!p->scratch)
        return tm_fail(be->base.ctx, TM_ERR_NOMEM, "cpu backend: cannot allocate scratch table");
    for (int i = 0; i < threads; i++) {
        p->scratch[i].b = tm_cpu_alloc(be->base.ctx, need_b * sizeof(float), "an im2col panel");
        p->scratch[i].c = tm_cpu_alloc(be->base.ctx, need_c * sizeof(float), "a GEMM output tile");
        if (!p->scratch[i].b || !p->scratch[i].c)
            return TM_ERR_NOMEM;
    }
    return TM_OK;
}

static tm_status cpu_plan_create(struct tm_backend *be, const struct tm_graph *g, void *params,
                                 void **plan)
{
    struct cpu_backend *cb = cpu_of(be);
    const struct cpu_params *cp = params;
    if (!cp || cp->n_nodes != g->n_nodes)
        return tm_fail(be->ctx, TM_ERR_INVALID, "cpu backend: parameters belong to another graph");
    struct cpu_plan *p = calloc(1, sizeof *p);
    if (!p)
        return tm_fail(be->ctx, TM_ERR_NOMEM, "cpu backend: cannot allocate %zu bytes for a plan", sizeof *p);
    p->params = cp;
    p->n_nodes = g->n_nodes;
    p->n_tensors = g->n_tensors;
    p->input = g->input;
    p->output = g->output;
    p->nodes = malloc(sizeof *p->nodes * (size_t)(g->n_nodes + 1));
    p->t = calloc((size_t)g->n_tensors + 1, sizeof *p->t);
    p->cost = calloc((size_t)g->n_nodes + 1, sizeof *p->cost);
    tm_status s = TM_OK;
    if (!p->nodes || !p->t || !p->cost)
        s = tm_fail(be->ctx, TM_ERR_NOMEM, "cpu backend: cannot allocate plan tables for %d nodes",
                    g->n_nodes);
    if (!s) {
        memcpy(p->nodes, g->nodes, sizeof *p->nodes * (size_t)g->n_nodes);
        for (int t = 0; t < g->n_tensors; t++)
            p->t[t] = (struct cpu_tensor){ NULL, g->tensors[t].c, g->tensors[t].h, g->tensors[t].w };
        s = plan_slots(cb, g, p);
    }
    if (!s)
        s = plan_scratch(cb, p);
    if (!s)
        s = tm_smooth_init(be->ctx, &p->smooth, g);
    if (s) {
        cpu_plan_destroy(be, p);
        return s;
    }
    *plan = p;
    return TM_OK;
}

static void run_node(struct cpu_backend *be, struct cpu_plan *p, int i, bool smooth)
{
    const struct tm_node *n = &p->nodes[i];
    const struct cpu_node_params *np = &p->params->node[i];
    struct cpu_tensor *x = &p->t[n->in[0]], *y = &p->t[n->out];
    switch (n->op) {
    case TM_OP_CONV2D:
    case TM_OP_CONVT2D:
        for (int k = 0; k < np->n_gemm; k++)
            tm_cpu_conv_gemm_run(be, &np->gemm[k], x, y, np->bias, n->act, n->slope, p->scratch);
        break;
    case TM_OP_INSTNORM:
    case TM_OP_BATCHNORM:
        tm_cpu_norm(be, n, np, x, y, smooth && tm_norm_smoothable(n) ? &p->smooth : NULL, i);
        break;
    case TM_OP_ACT:
        tm_cpu_act(be, x, y, n->act, n->slope);
        break;
    case TM_OP_ADD:
        tm_cpu_add(be, x, &p->t[n->in[1]], y, n->act, n->slope);
        break;
    case TM_OP_SCALE:
        tm_cpu_scale(be->pool, x, y, n->alpha, n->act, n->slope);
        break;
    case TM_OP_PRELU:
        tm_cpu_prelu(be->pool, x, y, np->slope, np->n_slope);
        break;
    case TM_OP_CONCAT: {
        const struct cpu_tensor *in[TM_MAX_IN];
        for (int k = 0; k < n->n_in; k++)
            in[k] = &p->t[n->in[k]];
        tm_cpu_concat(be->pool, in, n->n_in, y);
        break;
    }
    case TM_OP_UPSAMPLE:
    case TM_OP_DEPTH2SPACE:
    case TM_OP_SPACE2DEPTH:
        tm_cpu_resample(be->pool, n, x, y);
        break;
    default:
        break;
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One info line per node: where the time goes, for tuning and bug reports. */
static void profile_node(struct cpu_backend *be, const struct cpu_plan *p, int i, double ms)
{
    const struct tm_node *n = &p->nodes[i];
    const struct cpu_tensor *y = &p->t[n->out];
    int conv = n->op == TM_OP_CONV2D || n->op == TM_OP_CONVT2D;
    char rate[32] = "";
    if (conv && ms > 0) /* conv costs are FLOPs; the others count elements */
        snprintf(rate, sizeof rate, "%7.1f GFLOP/s", p->cost[i] / ms / 1e6);
    TM_INFO(be->base.ctx, "profile: %3d %-9s %-32s -> %dx%dx%d %8.2f ms %s", i,
            tm_op_name(n->op), n->label ? n->label : "", y->c, y->h, y->w, ms, rate);
}

static tm_status cpu_plan_run(struct tm_backend *be, void *plan, const float *in, float *out,
                              const struct tm_run_opts *opts)
{
    struct cpu_plan *p = plan;
    struct cpu_tensor *tin = &p->t[p->input], *tout = &p->t[p->output];
    size_t nin = (size_t)tin->c * tin->h * tin->w, nout = (size_t)tout->c * tout->h * tout->w;
    /* The input slot is copied so the caller's buffer is never written. */
    memcpy(tin->p, in, nin * sizeof(float));
    bool smooth = tm_smooth_begin(&p->smooth, opts);
    double done = 0.0;
    for (int i = 0; i < p->n_nodes; i++) {
        if (opts && opts->cancel && *opts->cancel)
            return tm_fail(be->ctx, TM_ERR_CANCELLED, "cancelled before node %d of %d", i,
                           p->n_nodes);
        double t0 = cpu_of(be)->profile ? now_ms() : 0.0;
        run_node(cpu_of(be), p, i, smooth);
        if (cpu_of(be)->profile)
            profile_node(cpu_of(be), p, i, now_ms() - t0);
        done += p->cost[i];
        if (opts && opts->progress &&
            !opts->progress(opts->progress_priv, p->total_cost > 0 ? done / p->total_cost : 1.0))
            return tm_fail(be->ctx, TM_ERR_CANCELLED, "cancelled by the progress callback");
    }
    memcpy(out, tout->p, nout * sizeof(float));
    return TM_OK;
}

static void cpu_destroy(struct tm_backend *be)
{
    if (!be)
        return;
    tm_pool_destroy(cpu_of(be)->pool);
    free(be);
}

static const struct tm_backend_vtbl cpu_vtbl = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .params_upload = cpu_params_upload,
    .params_free = cpu_params_free,
    .plan_create = cpu_plan_create,
    .plan_run = cpu_plan_run,
    .plan_destroy = cpu_plan_destroy,
};

tm_status tm_backend_cpu_create(tm_ctx *ctx, int threads, struct tm_backend **out)
{
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    struct cpu_backend *be = calloc(1, sizeof *be);
    if (!be)
        return tm_fail(ctx, TM_ERR_NOMEM, "cpu backend: cannot allocate %zu bytes", sizeof *be);
    be->base.vt = &cpu_vtbl;
    be->base.ctx = ctx;
    be->isa = tm_gemm_isa_best();
    const char *prof = getenv("TRANSMUTE_PROFILE");
    be->profile = prof && *prof && strcmp(prof, "0") != 0;
    be->pool = tm_pool_create(threads);
    if (!be->pool) {
        free(be);
        return tm_fail(ctx, TM_ERR_NOMEM, "cpu backend: cannot start %d threads", threads);
    }
    TM_DEBUG(ctx, "cpu backend: %d threads, %s kernel %dx%d", threads, be->isa->name,
             be->isa->mr, be->isa->nr);
    *out = &be->base;
    return TM_OK;
}
