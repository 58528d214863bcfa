/* resample.c: nearest-neighbour upsampling, depth-to-space and
 * space-to-depth. Pure data movement, so each output row is written from
 * whole input rows with no arithmetic on the values: results are exact.
 * Tasks are blocks of output rows, which balance even when there are
 * fewer channels than threads (an RGB output). */
#include "cpu.h"

/* Output elements per task, about. */
#define CHUNK 16384

struct rs_job {
    const struct tm_node *n;
    const struct cpu_tensor *in;
    struct cpu_tensor *out;
    int rows_per_task;
};

/* Channel of the C*f*f deep tensor that holds sub-pixel (dy, dx) of space
 * channel c (graph.h, enum tm_d2s_order). */
static int deep_channel(int order, int c, int space_c, int f, int dy, int dx)
{
    int q = dy * f + dx;
    return order == TM_D2S_TORCH ? c * f * f + q : q * space_c + c;
}

static const float *in_row(const struct cpu_tensor *t, int c, int y)
{
    return t->p + ((size_t)c * (size_t)t->h + (size_t)y) * (size_t)t->w;
}

static void upsample_row(const struct rs_job *j, int c, int y, float *d)
{
    int f = j->n->rs.factor;
    const float *s = in_row(j->in, c, y / f);
    for (int x = 0; x < j->in->w; x++)
        for (int k = 0; k < f; k++)
            d[x * f + k] = s[x];
}

/* Output row y of space channel c interleaves f input rows, one per dx. */
static void d2s_row(const struct rs_job *j, int c, int y, float *d)
{
    int f = j->n->rs.factor;
    for (int dx = 0; dx < f; dx++) {
        int ic = deep_channel(j->n->rs.order, c, j->out->c, f, y % f, dx);
        const float *s = in_row(j->in, ic, y / f);
        for (int x = 0; x < j->in->w; x++)
            d[x * f + dx] = s[x];
    }
}

/* Output row y of deep channel oc is every f-th sample of one input row. */
static void s2d_row(const struct rs_job *j, int oc, int y, float *d)
{
    int f = j->n->rs.factor, space_c = j->in->c;
    int q = j->n->rs.order == TM_D2S_TORCH ? oc % (f * f) : oc / space_c;
    int c = j->n->rs.order == TM_D2S_TORCH ? oc / (f * f) : oc % space_c;
    const float *s = in_row(j->in, c, y * f + q / f) + q % f;
    for (int x = 0; x < j->out->w; x++)
        d[x] = s[(size_t)x * (size_t)f];
}

static void resample_task(void *arg, int task, int thread)
{
    const struct rs_job *j = arg;
    int rows = j->out->c * j->out->h;
    int r0 = task * j->rows_per_task;
    int r1 = r0 + j->rows_per_task < rows ? r0 + j->rows_per_task : rows;
    for (int r = r0; r < r1; r++) {
        int c = r / j->out->h, y = r % j->out->h;
        float *d = j->out->p + (size_t)r * (size_t)j->out->w;
        if (j->n->op == TM_OP_UPSAMPLE)
            upsample_row(j, c, y, d);
        else if (j->n->op == TM_OP_DEPTH2SPACE)
            d2s_row(j, c, y, d);
        else
            s2d_row(j, c, y, d);
    }
}

void tm_cpu_resample(struct tm_pool *pool, const struct tm_node *n, const struct cpu_tensor *in,
                     struct cpu_tensor *out)
{
    int rows = out->c * out->h;
    struct rs_job j = { .n = n, .in = in, .out = out };
    j.rows_per_task = out->w >= CHUNK ? 1 : CHUNK / (out->w > 0 ? out->w : 1);
    if (rows > 0)
        tm_pool_run(pool, resample_task, &j, (rows + j.rows_per_task - 1) / j.rows_per_task);
}
