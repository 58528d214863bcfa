/* graph.c: building an op graph, inferring its shapes for one input size,
 * and planning which value tensors can share memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

void tm_graph_init(struct tm_graph *g)
{
    memset(g, 0, sizeof *g);
    g->input = g->output = -1;
}

void tm_graph_free(struct tm_graph *g)
{
    free(g->tensors);
    free(g->nodes);
    tm_graph_init(g);
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
        .op = op, .in = { in0, -1 }, .out = -1,
        .w = -1, .b = -1, .mean = -1, .var = -1,
        .act = TM_ACT_NONE, .norm = { .eps = 1e-5f },
    };
    return n;
}

int tm_graph_add(struct tm_graph *g, const struct tm_node *n)
{
    int out = tm_graph_value(g);
    if (out < 0 || grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *n))
        return -1;
    g->nodes[g->n_nodes] = *n;
    g->nodes[g->n_nodes].out = out;
    g->n_nodes++;
    return out;
}

const char *tm_op_name(enum tm_op op)
{
    static const char *const names[TM_OP_COUNT] = {
        [TM_OP_CONV2D] = "conv2d", [TM_OP_CONVT2D] = "convt2d",
        [TM_OP_INSTNORM] = "instnorm", [TM_OP_BATCHNORM] = "batchnorm",
        [TM_OP_ACT] = "act", [TM_OP_ADD] = "add", [TM_OP_CONCAT] = "concat",
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
        if (a->stride < 1 || a->kh < 1 || a->kw < 1 || a->pad < 0) {
            snprintf(err, errlen, "%s: invalid kernel/stride/padding", label);
            return TM_ERR_FORMAT;
        }
        y->c = (int)w->dims[transposed ? 1 : 0];
        if (transposed) {
            y->h = (x->h - 1) * a->stride - 2 * a->pad + a->kh + a->out_pad;
            y->w = (x->w - 1) * a->stride - 2 * a->pad + a->kw + a->out_pad;
        } else {
            if (a->pad_mode == TM_PAD_REFLECT && (a->pad >= x->h || a->pad >= x->w)) {
                snprintf(err, errlen, "%s: reflect padding %d needs a %dx%d input to be larger",
                         label, a->pad, x->w, x->h);
                return TM_ERR_INVALID;
            }
            int ph = x->h + 2 * a->pad, pw = x->w + 2 * a->pad;
            if (ph < a->kh || pw < a->kw) {
                snprintf(err, errlen, "%s: %dx%d kernel larger than its %dx%d padded input",
                         label, a->kw, a->kh, pw, ph);
                return TM_ERR_INVALID;
            }
            y->h = (ph - a->kh) / a->stride + 1;
            y->w = (pw - a->kw) / a->stride + 1;
        }
        if (y->h < 1 || y->w < 1) {
            snprintf(err, errlen, "%s: empty output", label);
            return TM_ERR_INVALID;
        }
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
        return TM_OK;
    case TM_OP_ADD:
    case TM_OP_CONCAT: {
        const struct tm_tensor *x1 = &g->tensors[n->in[1]];
        int same_c = n->op == TM_OP_CONCAT || x1->c == x->c;
        if (!same_c || x1->h != x->h || x1->w != x->w) {
            snprintf(err, errlen, "%s: inputs %dx%dx%d and %dx%dx%d do not fit", label,
                     x->c, x->h, x->w, x1->c, x1->h, x1->w);
            return TM_ERR_INVALID;
        }
        if (n->op == TM_OP_CONCAT)
            y->c = x->c + x1->c;
        return TM_OK;
    }
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
    return op == TM_OP_ACT || op == TM_OP_ADD || op == TM_OP_INSTNORM || op == TM_OP_BATCHNORM;
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
        for (int k = 0; k < 2; k++)
            if (g->nodes[i].in[k] >= 0)
                last[g->nodes[i].in[k]] = i;
    last[g->output] = nn; /* read back after the last node */

    slot_of[g->input] = n_slots;
    size[n_slots] = tm_value_numel(&g->tensors[g->input]) * sizeof(float);
    busy[n_slots++] = 1;

    for (int i = 0; i < nn; i++) {
        const struct tm_node *nd = &g->nodes[i];
        size_t need = tm_value_numel(&g->tensors[nd->out]) * sizeof(float);
        int s = -1;
        for (int k = 0; k < 2 && s < 0 && is_elementwise(nd->op); k++)
            if (nd->in[k] >= 0 && last[nd->in[k]] == i && nd->in[k] != g->input)
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
        for (int k = 0; k < 2; k++) {
            int t = nd->in[k];
            if (t >= 0 && last[t] == i && slot_of[t] != s)
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
