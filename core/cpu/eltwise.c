/* eltwise.c: activation, add, scale, PReLU and concat. Work is cut into
 * fixed chunks of the flat tensor so both cores share even tiny tensors
 * fairly; every elementwise loop reads element i before writing element i,
 * so out may alias an input (the memory plan reuses a dying input's slot;
 * it never does for concat). */
#include <string.h>

#include "cpu.h"

#define CHUNK 16384

static size_t numel(const struct cpu_tensor *t)
{
    return (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

static int n_chunks(size_t n)
{
    return (int)((n + CHUNK - 1) / CHUNK);
}

/* The activation switch sits outside the loops so each loop vectorizes. */
void tm_cpu_bias_act(float *dst, const float *src, size_t n, float bias, int act, float slope)
{
    switch (act) {
    case TM_ACT_RELU:
        for (size_t i = 0; i < n; i++) {
            float v = src[i] + bias;
            dst[i] = v > 0.0f ? v : 0.0f;
        }
        break;
    case TM_ACT_LRELU:
        for (size_t i = 0; i < n; i++) {
            float v = src[i] + bias;
            dst[i] = v > 0.0f ? v : v * slope;
        }
        break;
    case TM_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            dst[i] = tanhf(src[i] + bias);
        break;
    default:
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i] + bias;
        break;
    }
}

struct elt_job {
    const float *a, *b;
    float *out;
    size_t n;
    int act;
    float slope;
};

static void act_task(void *arg, int task, int thread)
{
    const struct elt_job *j = arg;
    size_t i0 = (size_t)task * CHUNK;
    size_t n = j->n - i0 < CHUNK ? j->n - i0 : CHUNK;
    tm_cpu_bias_act(j->out + i0, j->a + i0, n, 0.0f, j->act, j->slope);
}

void tm_cpu_act(struct cpu_backend *be, const struct cpu_tensor *in, struct cpu_tensor *out,
                int act, float slope)
{
    struct elt_job j = { .a = in->p, .out = out->p, .n = numel(in), .act = act, .slope = slope };
    tm_pool_run(be->pool, act_task, &j, n_chunks(j.n));
}

static void add_task(void *arg, int task, int thread)
{
    const struct elt_job *j = arg;
    size_t i0 = (size_t)task * CHUNK;
    size_t n = j->n - i0 < CHUNK ? j->n - i0 : CHUNK;
    const float *a = j->a + i0, *b = j->b + i0;
    float *o = j->out + i0;
    for (size_t i = 0; i < n; i++)
        o[i] = a[i] + b[i];
    if (j->act != TM_ACT_NONE)
        tm_cpu_bias_act(o, o, n, 0.0f, j->act, j->slope);
}

void tm_cpu_add(struct cpu_backend *be, const struct cpu_tensor *a, const struct cpu_tensor *b,
                struct cpu_tensor *out, int act, float slope)
{
    struct elt_job j = {
        .a = a->p, .b = b->p, .out = out->p, .n = numel(a), .act = act, .slope = slope,
    };
    tm_pool_run(be->pool, add_task, &j, n_chunks(j.n));
}

struct scale_job {
    const float *in;
    float *out;
    size_t n, plane;
    float alpha, slope;
    int act;
    const float *w;       /* PReLU slopes */
    int n_w;
};

static void scale_task(void *arg, int task, int thread)
{
    const struct scale_job *j = arg;
    size_t i0 = (size_t)task * CHUNK;
    size_t n = j->n - i0 < CHUNK ? j->n - i0 : CHUNK;
    const float *x = j->in + i0;
    float *o = j->out + i0;
    for (size_t i = 0; i < n; i++)
        o[i] = x[i] * j->alpha;
    if (j->act != TM_ACT_NONE)
        tm_cpu_bias_act(o, o, n, 0.0f, j->act, j->slope);
}

void tm_cpu_scale(struct tm_pool *pool, const struct cpu_tensor *in, struct cpu_tensor *out,
                  float alpha, int act, float slope)
{
    struct scale_job j = {
        .in = in->p, .out = out->p, .n = numel(in), .alpha = alpha, .act = act, .slope = slope,
    };
    tm_pool_run(pool, scale_task, &j, n_chunks(j.n));
}

/* Chunks are cut at channel boundaries too, so each run has one slope and
 * reuses the LeakyReLU loop. */
static void prelu_task(void *arg, int task, int thread)
{
    const struct scale_job *j = arg;
    size_t per_plane = (j->plane + CHUNK - 1) / CHUNK;
    size_t c = (size_t)task / per_plane, i0 = (size_t)task % per_plane * CHUNK;
    size_t n = j->plane - i0 < CHUNK ? j->plane - i0 : CHUNK;
    size_t off = c * j->plane + i0;
    float w = j->w[j->n_w == 1 ? 0 : c];
    tm_cpu_bias_act(j->out + off, j->in + off, n, 0.0f, TM_ACT_LRELU, w);
}

void tm_cpu_prelu(struct tm_pool *pool, const struct cpu_tensor *in, struct cpu_tensor *out,
                  const float *w, int n_w)
{
    struct scale_job j = {
        .in = in->p, .out = out->p, .plane = (size_t)in->h * (size_t)in->w, .w = w, .n_w = n_w,
    };
    if (j.plane)
        tm_pool_run(pool, prelu_task, &j, in->c * n_chunks(j.plane));
}

struct concat_job {
    const struct cpu_tensor *const *in;
    float *out;
};

/* One input per task; CHW makes each a contiguous run of the output. */
static void concat_task(void *arg, int task, int thread)
{
    const struct concat_job *j = arg;
    size_t off = 0;
    for (int k = 0; k < task; k++)
        off += numel(j->in[k]);
    memcpy(j->out + off, j->in[task]->p, numel(j->in[task]) * sizeof(float));
}

void tm_cpu_concat(struct tm_pool *pool, const struct cpu_tensor *const *in, int n_in,
                   struct cpu_tensor *out)
{
    struct concat_job j = { .in = in, .out = out->p };
    tm_pool_run(pool, concat_task, &j, n_in);
}
