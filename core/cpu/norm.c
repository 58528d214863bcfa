/* norm.c: instance norm and batch norm (image or running statistics), one
 * task per channel. Statistics are exact enough without a slow scalar
 * double loop: 16 float lanes each sum a block of at most 64 values (short,
 * vectorizable), blocks are added in double, and the variance is a second
 * pass over (x - mean) so there is no cancellation. Statistics are taken
 * before any output is written, so out may alias in. */
#include <math.h>

#include "cpu.h"

#define LANES 16
#define BLOCK (LANES * 64)

/* Sum of x over one block of at most BLOCK floats, in float lanes. */
static double block_sum(const float *x, size_t m)
{
    float lane[LANES] = { 0 };
    size_t full = m / LANES * LANES;
    for (size_t i = 0; i < full; i += LANES)
        for (int l = 0; l < LANES; l++)
            lane[l] += x[i + (size_t)l];
    for (size_t i = full; i < m; i++)
        lane[0] += x[i];
    double t = 0.0;
    for (int l = 0; l < LANES; l++)
        t += lane[l];
    return t;
}

/* Sum of (x - mean)^2 over one block. */
static double block_sqdev(const float *x, size_t m, float mean)
{
    float lane[LANES] = { 0 };
    size_t full = m / LANES * LANES;
    for (size_t i = 0; i < full; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float d = x[i + (size_t)l] - mean;
            lane[l] += d * d;
        }
    for (size_t i = full; i < m; i++)
        lane[0] += (x[i] - mean) * (x[i] - mean);
    double t = 0.0;
    for (int l = 0; l < LANES; l++)
        t += lane[l];
    return t;
}

/* Mean and biased variance (as PyTorch normalizes) of one plane. */
static void plane_stats(const float *x, size_t n, double *mean, double *var)
{
    double s = 0.0, q = 0.0;
    for (size_t i = 0; i < n; i += BLOCK)
        s += block_sum(x + i, n - i < BLOCK ? n - i : BLOCK);
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i += BLOCK)
        q += block_sqdev(x + i, n - i < BLOCK ? n - i : BLOCK, (float)*mean);
    *var = q / (double)n;
}

struct norm_job {
    const struct tm_node *n;
    const struct cpu_node_params *np;
    const struct cpu_tensor *in;
    struct cpu_tensor *out;
    const struct tm_smooth *smooth;
    int node;
};

/* y = act((x - mean) * scale + beta) over one plane; subtracting first
 * keeps precision when the mean is large against the deviation. */
static void affine_act(float *y, const float *x, size_t n, float mean, float scale, float beta,
                       int act, float slope)
{
    for (size_t i = 0; i < n; i++)
        y[i] = (x[i] - mean) * scale + beta;
    if (act != TM_ACT_NONE)
        tm_cpu_bias_act(y, y, n, 0.0f, act, slope);
}

static void norm_task(void *arg, int c, int thread)
{
    const struct norm_job *j = arg;
    const struct cpu_node_params *np = j->np;
    size_t n = (size_t)j->in->h * (size_t)j->in->w;
    const float *x = j->in->p + (size_t)c * n;
    double mean, var;
    if (np->mean) {
        mean = np->mean[c];
        var = np->var[c];
    } else {
        plane_stats(x, n, &mean, &var);
        if (j->smooth)
            tm_smooth_use(j->smooth, j->node, c, &mean, &var);
    }
    double inv = 1.0 / sqrt(var + (double)j->n->norm.eps);
    double g = np->gamma ? np->gamma[c] : 1.0;
    float b = np->beta ? np->beta[c] : 0.0f;
    affine_act(j->out->p + (size_t)c * n, x, n, (float)mean, (float)(g * inv), b, j->n->act,
               j->n->slope);
}

void tm_cpu_norm(struct cpu_backend *be, const struct tm_node *n,
                 const struct cpu_node_params *np, const struct cpu_tensor *in,
                 struct cpu_tensor *out, const struct tm_smooth *smooth, int node)
{
    struct norm_job j = { .n = n, .np = np, .in = in, .out = out, .smooth = smooth, .node = node };
    tm_pool_run(be->pool, norm_task, &j, in->c);
}
