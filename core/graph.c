/* graph.c: building an op graph, inferring its shapes for one input size,
 * and planning which value tensors can share memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

/* Shapes past these are nonsense (and would overflow int): value tensors
 * have at most MAX_SIDE pixels per side and MAX_CHANNELS channels. */
#define MAX_SIDE (65536 * 16)
#define MAX_CHANNELS (1 << 20)

void tm_graph_init(struct tm_graph *g)
{
    memset(g, 0, sizeof *g);
    g->input = g->output = -1;
}

struct tm_kept {
    struct tm_kept *next;
    char s[];
};

void tm_graph_free(struct tm_graph *g)
{
    free(g->tensors);
    free(g->nodes);
    while (g->kept) {
        struct tm_kept *k = g->kept;
        g->kept = k->next;
        free(k);
    }
    tm_graph_init(g);
}

const char *tm_graph_keep(struct tm_graph *g, const char *s)
{
    size_t n = strlen(s) + 1;
    struct tm_kept *k = malloc(sizeof *k + n);
    if (!k)
        return NULL;
    memcpy(k->s, s, n);
    k->next = g->kept;
    g->kept = k;
    return k->s;
}

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int new_tensor(struct tm_graph *g, const struct tm_tensor *t)
{
    if (grow((void **)&g->tensors, &g->cap_tensors, g->n_tensors + 1, sizeof *t))
        return -1;
    g->tensors[g->n_tensors] = *t;
    return g->n_tensors++;
}

int tm_graph_value(struct tm_graph *g)
{
    struct tm_tensor t = { .kind = TM_T_VALUE };
    return new_tensor(g, &t);
}

int tm_graph_param(struct tm_graph *g, const char *name, const float *data,
                   int ndim, const int64_t *dims)
{
    struct tm_tensor t = { .kind = TM_T_PARAM, .ndim = ndim, .data = data, .name = name };
    for (int i = 0; i < ndim && i < 4; i++)
        t.dims[i] = dims[i];
    return new_tensor(g, &t);
}

struct tm_node tm_node_new(enum tm_op op, int in0)
{
    struct tm_node n = {
        .op = op, .out = -1, .n_in = 1,
        .w = -1, .b = -1, .mean = -1, .var = -1,
        .act = TM_ACT_NONE, .alpha = 1.0f, .norm = { .eps = 1e-5f },
        .conv = { .dil = 1 }, .rs = { .factor = 1, .order = TM_D2S_TF },
    };
    for (int k = 0; k < TM_MAX_IN; k++)
        n.in[k] = -1;
    n.in[0] = in0;
    return n;
}

int tm_graph_add(struct tm_graph *g, const struct tm_node *n)
{
    int out = tm_graph_value(g);
    if (out < 0 || grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *n))
        return -1;
    struct tm_node *d = &g->nodes[g->n_nodes];
    *d = *n;
    d->out = out;
    if (d->conv.dil == 0) /* attrs written as plain initializers predate dilation */
        d->conv.dil = 1;
    d->n_in = 0;
    while (d->n_in < TM_MAX_IN && d->in[d->n_in] >= 0)
        d->n_in++;
    g->n_nodes++;
    return out;
}

const char *tm_op_name(enum tm_op op)
{
    static const char *const names[TM_OP_COUNT] = {
        [TM_OP_CONV2D] = "conv2d", [TM_OP_CONVT2D] = "convt2d",
        [TM_OP_INSTNORM] = "instnorm", [TM_OP_BATCHNORM] = "batchnorm",
        [TM_OP_ACT] = "act", [TM_OP_ADD] = "add", [TM_OP_CONCAT] = "concat",
        [TM_OP_SCALE] = "scale", [TM_OP_PRELU] = "prelu", [TM_OP_UPSAMPLE] = "upsample",
        [TM_OP_DEPTH2SPACE] = "depth2space", [TM_OP_SPACE2DEPTH] = "space2depth",
    };
    return (unsigned)op < TM_OP_COUNT ? names[op] : "?";
}

static int64_t param_numel(const struct tm_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->dims[i];
    return n;
}

/* add (two inputs of one shape) and concat (any number, same H and W). */
static tm_status infer_join(struct tm_graph *g, const struct tm_node *n, const char *label,
                            char *err, size_t errlen)
{
    const struct tm_tensor *x = &g->tensors[n->in[0]];
    struct tm_tensor *y = &g->tensors[n->out];
    if (n->n_in < 2 || (n->op == TM_OP_ADD && n->n_in != 2)) {
        snprintf(err, errlen, "%s: %d inputs", label, n->n_in);
        return TM_ERR_FORMAT;
    }
    int64_t c = 0;
    for (int k = 0; k < n->n_in; k++) {
        const struct tm_tensor *xk = &g->tensors[n->in[k]];
        if ((n->op == TM_OP_ADD && xk->c != x->c) || xk->h != x->h || xk->w != x->w) {
            snprintf(err, errlen, "%s: inputs %dx%dx%d and %dx%dx%d do not fit", label,
                     x->c, x->h, x->w, xk->c, xk->h, xk->w);
            return TM_ERR_INVALID;
        }
        c += xk->c;
    }
    if (c > MAX_CHANNELS) {
        snprintf(err, errlen, "%s: %lld channels are too many", label, (long long)c);
        return TM_ERR_INVALID;
    }
    if (n->op == TM_OP_CONCAT)
        y->c = (int)c;
    return TM_OK;
}

/* upsample, depth2space, space2depth: the factor moves pixels between
 * space and channels (or repeats them). */
static tm_status infer_resample(const struct tm_node *n, const char *label,
                                const struct tm_tensor *x, struct tm_tensor *y,
                                char *err, size_t errlen)
{
    int f = n->rs.factor;
    if (f < 1 || f > 16 || (n->rs.order != TM_D2S_TF && n->rs.order != TM_D2S_TORCH)) {
        snprintf(err, errlen, "%s: factor %d or order %d not supported", label, f, n->rs.order);
        return TM_ERR_FORMAT;
    }
    if (n->op == TM_OP_SPACE2DEPTH) {
        if (x->h % f || x->w % f) {
            snprintf(err, errlen, "%s: %dx%d is not a multiple of %d", label, x->w, x->h, f);
            return TM_ERR_INVALID;
        }
        if ((int64_t)x->c * f * f > MAX_CHANNELS) {
            snprintf(err, errlen, "%s: %lld channels are too many", label, (long long)x->c * f * f);
            return TM_ERR_INVALID;
        }
        y->c = x->c * f * f;
        y->h = x->h / f;
        y->w = x->w / f;
        return TM_OK;
    }
    if (n->op == TM_OP_DEPTH2SPACE) {
        if (x->c % (f * f)) {
            snprintf(err, errlen, "%s: %d channels do not divide by %d", label, x->c, f * f);
            return TM_ERR_FORMAT;
        }
        y->c = x->c / (f * f);
    }
    if ((int64_t)x->h * f > MAX_SIDE || (int64_t)x->w * f > MAX_SIDE) {
        snprintf(err, errlen, "%s: output too large", label);
        return TM_ERR_INVALID;
    }
    y->h = x->h * f;
    y->w = x->w * f;
    return TM_OK;
}

/* Shapes of one node; err names the node. */
static tm_status infer_node(struct tm_graph *g, const struct tm_node *n, char *err, size_t errlen)
{
    const char *label = n->label ? n->label : tm_op_name(n->op);
    struct tm_tensor *x = &g->tensors[n->in[0]];
    struct tm_tensor *y = &g->tensors[n->out];
    const struct tm_tensor *w = n->w >= 0 ? &g->tensors[n->w] : NULL;
    *y = *x;

    switch (n->op) {
    case TM_OP_CONV2D:
    case TM_OP_CONVT2D: {
        const struct tm_conv_attr *a = &n->conv;
        int transposed = n->op == TM_OP_CONVT2D;
        if (!w || w->ndim != 4 || w->dims[transposed ? 0 : 1] != x->c) {
            snprintf(err, errlen, "%s: weight does not take %d input channels", label, x->c);
            return TM_ERR_FORMAT;
        }
        if (a->stride < 1 || a->kh < 1 || a->kw < 1 || a->pad < 0 || a->dil < 1 ||
            (transposed && a->dil != 1)) {
            snprintf(err, errlen, "%s: invalid kernel/stride/padding", label);
            return TM_ERR_FORMAT;
        }
        y->c = (int)w->dims[transposed ? 1 : 0];
        int64_t oh, ow;
        if (transposed) {
            oh = (int64_t)(x->h - 1) * a->stride - 2 * (int64_t)a->pad + a->kh + a->out_pad;
            ow = (int64_t)(x->w - 1) * a->stride - 2 * (int64_t)a->pad + a->kw + a->out_pad;
        } else {
            if (a->pad_mode == TM_PAD_REFLECT && (a->pad >= x->h || a->pad >= x->w)) {
                snprintf(err, errlen, "%s: reflect padding %d needs a %dx%d input to be larger",
                         label, a->pad, x->w, x->h);
                return TM_ERR_INVALID;
            }
            int64_t ph = x->h + 2 * (int64_t)a->pad, pw = x->w + 2 * (int64_t)a->pad;
            int64_t eh = (int64_t)a->dil * (a->kh - 1) + 1, ew = (int64_t)a->dil * (a->kw - 1) + 1;
            if (ph < eh || pw < ew) { /* dilated extent */
                snprintf(err, errlen, "%s: %lldx%lld kernel larger than its %lldx%lld padded input",
                         label, (long long)ew, (long long)eh, (long long)pw, (long long)ph);
                return TM_ERR_INVALID;
            }
            oh = (ph - eh) / a->stride + 1;
            ow = (pw - ew) / a->stride + 1;
        }
        if (oh < 1 || ow < 1) {
            snprintf(err, errlen, "%s: empty output", label);
            return TM_ERR_INVALID;
        }
        if (oh > MAX_SIDE || ow > MAX_SIDE) {
            snprintf(err, errlen, "%s: output too large", label);
            return TM_ERR_INVALID;
        }
        y->h = (int)oh;
        y->w = (int)ow;
        if (n->b >= 0 && param_numel(&g->tensors[n->b]) != y->c) {
            snprintf(err, errlen, "%s: bias size does not match %d channels", label, y->c);
            return TM_ERR_FORMAT;
        }
        return TM_OK;
    }
    case TM_OP_INSTNORM:
    case TM_OP_BATCHNORM: {
        int ids[4] = { n->w, n->b, n->mean, n->var };
        for (int i = 0; i < 4; i++) {
            if (ids[i] >= 0 && param_numel(&g->tensors[ids[i]]) != x->c) {
                snprintf(err, errlen, "%s: parameter %s does not have %d entries", label,
                         g->tensors[ids[i]].name ? g->tensors[ids[i]].name : "?", x->c);
                return TM_ERR_FORMAT;
            }
        }
        return TM_OK;
    }
    case TM_OP_ACT:
    case TM_OP_SCALE:
        return TM_OK;
    case TM_OP_PRELU: {
        int64_t k = w ? param_numel(w) : 0;
        if (k != 1 && k != x->c) {
            snprintf(err, errlen, "%s: %lld slopes for %d channels", label, (long long)k, x->c);
            return TM_ERR_FORMAT;
        }
        return TM_OK;
    }
    case TM_OP_ADD:
    case TM_OP_CONCAT:
        return infer_join(g, n, label, err, errlen);
    case TM_OP_UPSAMPLE:
    case TM_OP_DEPTH2SPACE:
    case TM_OP_SPACE2DEPTH:
        return infer_resample(n, label, x, y, err, errlen);
    default:
        snprintf(err, errlen, "%s: unknown op %d", label, (int)n->op);
        return TM_ERR_UNSUPPORTED;
    }
}

tm_status tm_graph_infer(struct tm_graph *g, int h, int w, char *err, size_t errlen)
{
    if (g->input < 0 || g->output < 0) {
        snprintf(err, errlen, "graph has no input or output");
        return TM_ERR_INVALID;
    }
    g->tensors[g->input].h = h;
    g->tensors[g->input].w = w;
    for (int i = 0; i < g->n_nodes; i++) {
        tm_status s = infer_node(g, &g->nodes[i], err, errlen);
        if (s)
            return s;
    }
    return TM_OK;
}

static int is_elementwise(enum tm_op op)
{
    return op == TM_OP_ACT || op == TM_OP_ADD || op == TM_OP_INSTNORM || op == TM_OP_BATCHNORM ||
           op == TM_OP_SCALE || op == TM_OP_PRELU;
}

/* Best fit among free slots: the smallest that is big enough, else the
 * largest (it will grow). -1 when none is free. */
static int pick_free_slot(const char *busy, const size_t *size, int n, size_t need)
{
    int best = -1;
    for (int s = 0; s < n; s++) {
        if (busy[s])
            continue;
        if (best < 0)
            best = s;
        else if (size[s] >= need && (size[best] < need || size[s] < size[best]))
            best = s;
        else if (size[best] < need && size[s] > size[best])
            best = s;
    }
    return best;
}

int tm_graph_plan_memory(const struct tm_graph *g, int **slot_of_out, size_t **slot_size_out)
{
    int nt = g->n_tensors, nn = g->n_nodes;
    int *last = malloc(sizeof(int) * (size_t)nt);
    int *slot_of = malloc(sizeof(int) * (size_t)nt);
    size_t *size = calloc((size_t)nt, sizeof *size);
    char *busy = calloc((size_t)nt, 1);
    int n_slots = 0;
    if (!last || !slot_of || !size || !busy)
        goto oom;

    for (int t = 0; t < nt; t++) {
        last[t] = -1;
        slot_of[t] = -1;
    }
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            last[g->nodes[i].in[k]] = i;
    last[g->output] = nn; /* read back after the last node */

    slot_of[g->input] = n_slots;
    size[n_slots] = tm_value_numel(&g->tensors[g->input]) * sizeof(float);
    busy[n_slots++] = 1;

    for (int i = 0; i < nn; i++) {
        const struct tm_node *nd = &g->nodes[i];
        size_t need = tm_value_numel(&g->tensors[nd->out]) * sizeof(float);
        int s = -1;
        for (int k = 0; k < nd->n_in && s < 0 && is_elementwise(nd->op); k++)
            if (last[nd->in[k]] == i && nd->in[k] != g->input)
                s = slot_of[nd->in[k]];
        if (s < 0) {
            s = pick_free_slot(busy, size, n_slots, need);
            if (s < 0)
                s = n_slots++;
        }
        if (size[s] < need)
            size[s] = need;
        slot_of[nd->out] = s;
        busy[s] = 1;
        for (int k = 0; k < nd->n_in; k++) {
            int t = nd->in[k];
            if (last[t] == i && slot_of[t] != s)
                busy[slot_of[t]] = 0;
        }
    }
    free(last);
    free(busy);
    *slot_of_out = slot_of;
    *slot_size_out = size;
    return n_slots;
oom:
    free(last);
    free(slot_of);
    free(size);
    free(busy);
    return -1;
}

tm_status tm_graph_activation_bytes(struct tm_graph *g, int h, int w, uint64_t *bytes,
                                    char *err, size_t errlen)
{
    tm_status s = tm_graph_infer(g, h, w, err, errlen);
    if (s)
        return s;
    int *slot_of = NULL;
    size_t *slot_size = NULL;
    int n = tm_graph_plan_memory(g, &slot_of, &slot_size);
    *bytes = 0;
    for (int i = 0; i < n; i++)
        *bytes += slot_size[i];
    free(slot_of);
    free(slot_size);
    if (n < 0) {
        snprintf(err, errlen, "out of memory planning a %dx%d image", w, h);
        return TM_ERR_NOMEM;
    }
    return TM_OK;
}

bool tm_graph_has_image_stats(const struct tm_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const struct tm_node *n = &g->nodes[i];
        if (n->op == TM_OP_INSTNORM || (n->op == TM_OP_BATCHNORM && n->norm.image_stats))
            return true;
    }
    return false;
}

/* How far (in the node's own input pixels) an output pixel reaches from
 * where it sits; resampling ops count one pixel for the rounding of
 * positions between resolutions. */
static double node_reach(const struct tm_node *n)
{
    const struct tm_conv_attr *a = &n->conv;
    switch (n->op) {
    case TM_OP_CONV2D: {
        int ext = a->dil * ((a->kh > a->kw ? a->kh : a->kw) - 1);
        return a->pad > ext - a->pad ? a->pad : ext - a->pad;
    }
    case TM_OP_CONVT2D:
        return (a->kh > a->kw ? a->kh : a->kw) / a->stride + 1;
    case TM_OP_UPSAMPLE:
    case TM_OP_DEPTH2SPACE:
    case TM_OP_SPACE2DEPTH:
        return 1;
    default:
        return 0;
    }
}

void tm_graph_reach(const struct tm_graph *g, int *radius, int *scale)
{
    /* Per value tensor: its pixels per input pixel, and its reach in input pixels. */
    double *res = malloc(sizeof(double) * 2 * (size_t)(g->n_tensors ? g->n_tensors : 1));
    *radius = 0;
    *scale = 0;
    if (!res || g->input < 0 || g->output < 0) {
        free(res);
        return;
    }
    double *reach = res + g->n_tensors;
    res[g->input] = 1.0;
    reach[g->input] = 0.0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct tm_node *n = &g->nodes[i];
        double r = 0.0, in_res = res[n->in[0]];
        for (int k = 0; k < n->n_in; k++)
            r = reach[n->in[k]] > r ? reach[n->in[k]] : r;
        r += node_reach(n) / in_res;
        double out_res = in_res;
        if (n->op == TM_OP_CONV2D)
            out_res = in_res / n->conv.stride;
        else if (n->op == TM_OP_CONVT2D)
            out_res = in_res * n->conv.stride;
        else if (n->op == TM_OP_UPSAMPLE || n->op == TM_OP_DEPTH2SPACE)
            out_res = in_res * n->rs.factor;
        else if (n->op == TM_OP_SPACE2DEPTH)
            out_res = in_res / n->rs.factor;
        res[n->out] = out_res;
        reach[n->out] = r;
    }
    double s = res[g->output];
    *radius = (int)ceil(reach[g->output] - 1e-9);
    *scale = s >= 1.0 && fabs(s - floor(s + 0.5)) < 1e-9 ? (int)floor(s + 0.5) : 0;
    free(res);
}
