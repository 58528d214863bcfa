/* build.c: the layer helpers the architecture builders share. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "models.h"

static int fail(struct tm_build *b, tm_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct tm_build *b, tm_status s, const char *fmt, ...)
{
    if (b->status)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, sizeof b->err, fmt, ap);
    va_end(ap);
    b->status = s;
    return -1;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *d)
{
    int o = snprintf(buf, len, "[");
    for (int i = 0; i < ndim && o < (int)len; i++)
        o += snprintf(buf + o, len - (size_t)o, i ? ", %lld" : "%lld", (long long)d[i]);
    if (o < (int)len)
        snprintf(buf + o, len - (size_t)o, "]");
}

/* The file's tensor `name`, checked against the expected shape; its index in
 * the safetensors list, or -1 (absent when optional, or after an error). */
static int lookup(struct tm_build *b, const char *name, int ndim, const int64_t *dims, int required)
{
    if (b->status)
        return -1;
    const struct tm_st_tensor *t = tm_st_find(b->st, name);
    char want[96], have[96];
    shape_str(want, sizeof want, ndim, dims);
    if (!t)
        return required ? fail(b, TM_ERR_FORMAT, "missing tensor '%s' (the architecture expects shape %s)",
                               name, want)
                        : -1;
    int idx = (int)(t - b->st->tensors);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == dims[i];
    if (!same) {
        shape_str(have, sizeof have, t->ndim, t->shape);
        return fail(b, TM_ERR_FORMAT, "tensor '%s' has shape %s but the architecture expects %s",
                    name, have, want);
    }
    if (!b->f32[idx])
        return fail(b, TM_ERR_FORMAT, "tensor '%s' has dtype %s; weights must be F32, F16 or BF16",
                    name, t->dtype_name);
    b->used[idx] = 1;
    return idx;
}

static int param(struct tm_build *b, const char *name, int ndim, const int64_t *dims, int required)
{
    int idx = lookup(b, name, ndim, dims, required);
    if (idx < 0)
        return -1;
    int id = tm_graph_param(b->g, b->st->tensors[idx].name, b->f32[idx], ndim, dims);
    return id < 0 ? fail(b, TM_ERR_NOMEM, "out of memory building the graph") : id;
}

void tm_build_claim_opt(struct tm_build *b, const char *name, int ndim, const int64_t *dims)
{
    lookup(b, name, ndim, dims, 0);
}

int tm_build_param(struct tm_build *b, const char *name, int ndim, const int64_t *dims)
{
    return param(b, name, ndim, dims, 1);
}

int tm_build_param_opt(struct tm_build *b, const char *name, int ndim, const int64_t *dims)
{
    return param(b, name, ndim, dims, 0);
}

static int add_node(struct tm_build *b, struct tm_node *n, const char *label)
{
    if (b->status)
        return -1;
    n->label = label;
    int y = tm_graph_add(b->g, n);
    return y < 0 ? fail(b, TM_ERR_NOMEM, "out of memory building the graph") : y;
}

/* Labels must outlive the graph: use the weight tensor's stored name. */
static const char *label_of(struct tm_build *b, int param_id)
{
    return param_id >= 0 ? b->g->tensors[param_id].name : NULL;
}

static int conv_like(struct tm_build *b, enum tm_op op, int x, const char *prefix, int cin, int cout,
                     const struct tm_conv_attr *a, int bias)
{
    char name[160];
    int transposed = op == TM_OP_CONVT2D;
    int64_t wd[4] = { transposed ? cin : cout, transposed ? cout : cin, a->kh, a->kw };
    int64_t bd[1] = { cout };
    struct tm_node n = tm_node_new(op, x);
    n.conv = *a;
    snprintf(name, sizeof name, "%s.weight", prefix);
    n.w = tm_build_param(b, name, 4, wd);
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        n.b = tm_build_param(b, name, 1, bd);
    }
    return add_node(b, &n, label_of(b, n.w));
}

int tm_build_conv(struct tm_build *b, int x, const char *prefix, int cin, int cout,
                  const struct tm_conv_attr *a, int bias)
{
    return conv_like(b, TM_OP_CONV2D, x, prefix, cin, cout, a, bias);
}

int tm_build_convt(struct tm_build *b, int x, const char *prefix, int cin, int cout,
                   const struct tm_conv_attr *a, int bias)
{
    return conv_like(b, TM_OP_CONVT2D, x, prefix, cin, cout, a, bias);
}

int tm_build_norm(struct tm_build *b, int x, const char *prefix, int c)
{
    if (b->status || b->arch->norm == TM_NORM_NONE)
        return b->status ? -1 : x;
    if (b->arch->norm == TM_NORM_INSTANCE) {
        /* The official InstanceNorm2d has no affine parameters. */
        struct tm_node n = tm_node_new(TM_OP_INSTNORM, x);
        return add_node(b, &n, NULL);
    }
    char name[160];
    int64_t d[1] = { c };
    struct tm_node n = tm_node_new(TM_OP_BATCHNORM, x);
    n.norm.image_stats = b->arch->image_stats;
    snprintf(name, sizeof name, "%s.weight", prefix);
    n.w = tm_build_param(b, name, 1, d);
    snprintf(name, sizeof name, "%s.bias", prefix);
    n.b = tm_build_param(b, name, 1, d);
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    n.mean = tm_build_param(b, name, 1, d);
    snprintf(name, sizeof name, "%s.running_var", prefix);
    n.var = tm_build_param(b, name, 1, d);
    return add_node(b, &n, label_of(b, n.w));
}

int tm_build_act(struct tm_build *b, int x, int act, float slope)
{
    if (b->status)
        return -1;
    struct tm_graph *g = b->g;
    struct tm_node *last = g->n_nodes ? &g->nodes[g->n_nodes - 1] : NULL;
    if (last && last->out == x && last->act == TM_ACT_NONE && tm_op_takes_act(last->op)) {
        last->act = act;
        last->slope = slope;
        return x;
    }
    return tm_build_act_node(b, x, act, slope);
}

int tm_build_act_node(struct tm_build *b, int x, int act, float slope)
{
    struct tm_node n = tm_node_new(TM_OP_ACT, x);
    n.act = act;
    n.slope = slope;
    return add_node(b, &n, NULL);
}

int tm_build_add(struct tm_build *b, int x, int y)
{
    struct tm_node n = tm_node_new(TM_OP_ADD, x);
    n.in[1] = y;
    return add_node(b, &n, NULL);
}

int tm_build_concat(struct tm_build *b, int x, int y)
{
    struct tm_node n = tm_node_new(TM_OP_CONCAT, x);
    n.in[1] = y;
    return add_node(b, &n, NULL);
}

int tm_build_concat_n(struct tm_build *b, const int *xs, int n)
{
    if (n < 2)
        return fail(b, TM_ERR_FORMAT, "concat of %d inputs", n);
    int y = -1, done = 0;
    while (done < n && !b->status) {
        /* After the first link, the running result takes one input slot. */
        struct tm_node nd = tm_node_new(TM_OP_CONCAT, y >= 0 ? y : xs[done++]);
        for (int k = 1; k < TM_MAX_IN && done < n; k++)
            nd.in[k] = xs[done++];
        y = add_node(b, &nd, NULL);
    }
    return b->status ? -1 : y;
}

int tm_build_scale(struct tm_build *b, int x, float alpha)
{
    struct tm_node n = tm_node_new(TM_OP_SCALE, x);
    n.alpha = alpha;
    return add_node(b, &n, NULL);
}

int tm_build_prelu(struct tm_build *b, int x, const char *prefix, int c)
{
    char name[160];
    int64_t one[1] = { 1 }, all[1] = { c };
    snprintf(name, sizeof name, "%s.weight", prefix);
    const struct tm_st_tensor *t = tm_st_find(b->st, name);
    int shared = t && t->ndim == 1 && t->shape[0] == 1;
    struct tm_node n = tm_node_new(TM_OP_PRELU, x);
    n.w = tm_build_param(b, name, 1, shared ? one : all);
    return add_node(b, &n, label_of(b, n.w));
}

int tm_build_resample(struct tm_build *b, int x, enum tm_op op, int factor, int order)
{
    struct tm_node n = tm_node_new(op, x);
    n.rs.factor = factor;
    n.rs.order = order;
    return add_node(b, &n, NULL);
}

const char *tm_build_keep(struct tm_build *b, const char *s)
{
    if (b->status)
        return NULL;
    const char *k = tm_graph_keep(b->g, s);
    if (!k)
        fail(b, TM_ERR_NOMEM, "out of memory building the graph");
    return k;
}

int tm_build_instnorm_affine(struct tm_build *b, int x, const char *prefix, int c)
{
    char name[160];
    int64_t d[1] = { c };
    struct tm_node n = tm_node_new(TM_OP_INSTNORM, x);
    snprintf(name, sizeof name, "%s.weight", prefix);
    n.w = tm_build_param(b, name, 1, d);
    snprintf(name, sizeof name, "%s.bias", prefix);
    n.b = tm_build_param(b, name, 1, d);
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    tm_build_claim_opt(b, name, 1, d);
    snprintf(name, sizeof name, "%s.running_var", prefix);
    tm_build_claim_opt(b, name, 1, d);
    return add_node(b, &n, label_of(b, n.w));
}
