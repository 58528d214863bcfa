/* tiled_host.c: norms, activation, add and concat over whole host tensors,
 * one pool task per channel (norms) or per chunk (elementwise); scale,
 * PReLU, concat and the resampling ops run the CPU backend's kernels. */
#include <math.h>
#include <string.h>

#include "cpu/cpu.h"
#include "smooth.h"
#include "tiled_host.h"

#define CHUNK 65536
#define LANES 8

struct host_job {
    const struct tm_graph *g;
    const struct tm_node *n;
    float *const *val;
    size_t numel;
    const struct tm_smooth *smooth;
};

/* Mean and biased variance (as PyTorch normalizes) in double, one pass:
 * the square of a float is exact in double, so E[x^2] - mean^2 loses
 * nothing at float precision. Independent lanes let the loop vectorize. */
static void plane_stats(const float *x, size_t n, double *mean, double *var)
{
    double s[LANES] = { 0 }, q[LANES] = { 0 };
    size_t full = n / LANES * LANES;
    for (size_t i = 0; i < full; i += LANES)
        for (int l = 0; l < LANES; l++) {
            double v = x[i + (size_t)l];
            s[l] += v;
            q[l] += v * v;
        }
    for (size_t i = full; i < n; i++) {
        s[0] += x[i];
        q[0] += (double)x[i] * x[i];
    }
    double ts = 0.0, tq = 0.0;
    for (int l = 0; l < LANES; l++) {
        ts += s[l];
        tq += q[l];
    }
    *mean = ts / (double)n;
    *var = fmax(tq / (double)n - *mean * *mean, 0.0);
}

/* The fused activation over n floats. A constant act per loop folds
 * tm_act_apply's switch, so the loops vectorize. */
static void act_inplace(float *y, size_t n, int act, float slope)
{
    switch (act) {
    case TM_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = tm_act_apply(TM_ACT_RELU, slope, y[i]);
        break;
    case TM_ACT_LRELU:
        for (size_t i = 0; i < n; i++)
            y[i] = tm_act_apply(TM_ACT_LRELU, slope, y[i]);
        break;
    case TM_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            y[i] = tm_act_apply(TM_ACT_TANH, slope, y[i]);
        break;
    default:
        break;
    }
}

/* Entry c of an optional parameter. */
static double param_at(const struct tm_graph *g, int id, int c, double absent)
{
    return id >= 0 ? g->tensors[id].data[c] : absent;
}

/* The same arithmetic as the backends' norm: (x - mean) * scale + beta. */
static void norm_task(void *arg, int c, int thread)
{
    const struct host_job *j = arg;
    const struct tm_node *n = j->n;
    const struct tm_tensor *t = &j->g->tensors[n->in[0]];
    size_t plane = (size_t)t->h * (size_t)t->w;
    const float *x = j->val[n->in[0]] + (size_t)c * plane;
    float *y = j->val[n->out] + (size_t)c * plane;
    double mean, var;
    if (n->op == TM_OP_BATCHNORM && !n->norm.image_stats) {
        mean = j->g->tensors[n->mean].data[c];
        var = j->g->tensors[n->var].data[c];
    } else {
        plane_stats(x, plane, &mean, &var);
        if (j->smooth)
            tm_smooth_use(j->smooth, (int)(n - j->g->nodes), c, &mean, &var);
    }
    double inv = 1.0 / sqrt(var + (double)n->norm.eps);
    float m = (float)mean, scale = (float)(param_at(j->g, n->w, c, 1.0) * inv);
    float beta = (float)param_at(j->g, n->b, c, 0.0);
    for (size_t i = 0; i < plane; i++)
        y[i] = (x[i] - m) * scale + beta;
    act_inplace(y, plane, n->act, n->slope);
}

static void elementwise_task(void *arg, int task, int thread)
{
    const struct host_job *j = arg;
    const struct tm_node *n = j->n;
    size_t i0 = (size_t)task * CHUNK;
    size_t len = j->numel - i0 < CHUNK ? j->numel - i0 : CHUNK;
    const float *a = j->val[n->in[0]] + i0;
    float *y = j->val[n->out] + i0;
    if (n->op == TM_OP_ADD) {
        const float *b = j->val[n->in[1]] + i0;
        for (size_t i = 0; i < len; i++)
            y[i] = a[i] + b[i];
    } else if (y != a) {
        memcpy(y, a, sizeof(float) * len);
    }
    act_inplace(y, len, n->act, n->slope);
}

static int64_t param_count(const struct tm_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->dims[i];
    return n;
}

static struct cpu_tensor host_tensor(const struct tm_graph *g, float *const *val, int t)
{
    const struct tm_tensor *v = &g->tensors[t];
    return (struct cpu_tensor){ val[t], v->c, v->h, v->w };
}

static void concat(struct tm_pool *pool, const struct tm_graph *g, const struct tm_node *n,
                   float *const *val)
{
    struct cpu_tensor in[TM_MAX_IN], out = host_tensor(g, val, n->out);
    const struct cpu_tensor *ptr[TM_MAX_IN];
    for (int k = 0; k < n->n_in; k++) {
        in[k] = host_tensor(g, val, n->in[k]);
        ptr[k] = &in[k];
    }
    tm_cpu_concat(pool, ptr, n->n_in, &out);
}

/* The ops that reuse the CPU backend's kernels. */
static void cpu_kernel_node(struct tm_pool *pool, const struct tm_graph *g,
                            const struct tm_node *n, float *const *val)
{
    struct cpu_tensor x = host_tensor(g, val, n->in[0]), y = host_tensor(g, val, n->out);
    const struct tm_tensor *w = n->w >= 0 ? &g->tensors[n->w] : NULL;
    switch (n->op) {
    case TM_OP_SCALE:
        tm_cpu_scale(pool, &x, &y, n->alpha, n->act, n->slope);
        break;
    case TM_OP_PRELU:
        tm_cpu_prelu(pool, &x, &y, w->data, (int)param_count(w));
        break;
    case TM_OP_CONCAT:
        concat(pool, g, n, val);
        break;
    default:
        tm_cpu_resample(pool, n, &x, &y);
        break;
    }
}

void tm_host_node(struct tm_pool *pool, const struct tm_graph *g, const struct tm_node *n,
                  float *const *val, const struct tm_smooth *smooth)
{
    const struct tm_tensor *x = &g->tensors[n->in[0]];
    struct host_job j = { .g = g, .n = n, .val = val, .numel = tm_value_numel(x),
                          .smooth = smooth };
    switch (n->op) {
    case TM_OP_INSTNORM:
    case TM_OP_BATCHNORM:
        tm_pool_run(pool, norm_task, &j, x->c);
        break;
    case TM_OP_ACT:
    case TM_OP_ADD:
        tm_pool_run(pool, elementwise_task, &j, (int)((j.numel + CHUNK - 1) / CHUNK));
        break;
    case TM_OP_SCALE:
    case TM_OP_PRELU:
    case TM_OP_CONCAT:
    case TM_OP_UPSAMPLE:
    case TM_OP_DEPTH2SPACE:
    case TM_OP_SPACE2DEPTH:
        cpu_kernel_node(pool, g, n, val);
        break;
    default:
        break;
    }
}
