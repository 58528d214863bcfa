/* eltwise.c: activation, add and concat. Work is cut into fixed chunks of
 * the flat tensor so both cores share even tiny tensors fairly; every loop
 * reads element i before writing element i, so out may alias an input (the
 * memory plan reuses a dying input's slot). */
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

/* Concat is two copies; memmove in case a plan ever overlaps them. */
void tm_cpu_concat(struct cpu_backend *be, const struct cpu_tensor *a,
                   const struct cpu_tensor *b, struct cpu_tensor *out)
{
    (void)be;
    size_t na = numel(a), nb = numel(b);
    if (out->p + na != b->p)
        memmove(out->p + na, b->p, nb * sizeof(float));
    if (out->p != a->p)
        memmove(out->p, a->p, na * sizeof(float));
}
