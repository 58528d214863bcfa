/* test_tiled.c: the tiled large-image path (core/tiled.c) against the
 * whole-image plan, on the CPU backend and on the Vulkan device (lavapipe
 * here) with the validation layer.
 *
 * Usage: test_tiled RESNET8 RESNET4 RESNET_ZERO_BATCH UNET_BATCH_IMAGE
 *                   UNET_BATCH_RUNNING UNET_INSTANCE STARGAN
 * (random-weight models that tests/test_tiled.sh writes with
 * tests/gen_models.py, and the shipped StarGAN demo).
 * Checks: single convs of every kernel/stride/padding kind on odd sizes;
 * whole generators (2048x1536 ResNet on both backends, U-Nets with every
 * norm, StarGAN with its label planes) with tiles that do not
 * divide the image, the smallest tile, one tile larger than the image and
 * the automatic choice; max |diff| <= 1e-3. Progress rises strictly to 1.0;
 * the cancel flag and the progress callback cancel; bad tile sides fail.
 * On Vulkan the device memory in use during a tiled run is measured: it
 * stays within a bound from the tile size, independent of the image size.
 * A missing Vulkan device or any validation message is a failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "tiled.h"
#include "vulkan/vk.h"
#include "check.h"

#define TOL 1e-3

enum { RESNET8, RESNET4, RESNET_ZERO_BATCH, UNET_BATCH_IMAGE, UNET_BATCH_RUNNING, UNET_INSTANCE,
       STARGAN, N_MODELS };
static const char *model_path[N_MODELS];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Smooth content with detail and noise, in -1..1, CHW. */
static float *make_image(int c, int h, int w)
{
    float *x = malloc(sizeof *x * (size_t)c * h * w);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int i = 0; i < w; i++)
                x[((size_t)ch * h + y) * w + i] =
                    0.5f * sinf(0.031f * i + 0.7f * ch) * cosf(0.023f * y) +
                    0.3f * sinf(0.11f * (i + y) + ch) + 0.2f * frand();
    return x;
}

/* Max |a - b|; infinite when either holds a NaN. */
static double max_diff(const float *a, const float *b, size_t n)
{
    double d = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (isnan(e))
            return INFINITY;
        d = e > d ? e : d;
    }
    return d;
}

/* Infers m's graph for ph x pw; the output's element count, 0 on failure. */
static size_t infer(struct tm_model *m, int ph, int pw)
{
    char err[256];
    if (tm_graph_infer(&m->graph, ph, pw, err, sizeof err)) {
        printf("infer %dx%d: %s\n", pw, ph, err);
        return 0;
    }
    return tm_value_numel(&m->graph.tensors[m->graph.output]);
}

/* The whole-image plan (m's graph inferred for the size), made and dropped. */
static tm_status whole_run(struct tm_model *m, const float *x, float *y)
{
    struct tm_backend *be = m->ctx->backend;
    void *plan = NULL;
    tm_status s = be->vt->plan_create(be, &m->graph, m->dev_params, &plan);
    if (!s)
        s = be->vt->plan_run(be, plan, x, y, NULL);
    be->vt->plan_destroy(be, plan);
    return s;
}

static const char *backend_name(const struct tm_model *m)
{
    return tm_ctx_device(m->ctx)->kind == TM_DEVICE_CPU ? "cpu" : "vulkan";
}

/* Tiled runs with each tile side against one whole-image run. */
static void compare(struct tm_model *m, const char *name, int ph, int pw, const int *tiles,
                    int n_tiles)
{
    size_t n = infer(m, ph, pw);
    CHECK(n > 0, "%s: %dx%d does not fit the graph", name, pw, ph);
    if (!n)
        return;
    float *x = make_image(m->graph.tensors[m->graph.input].c, ph, pw);
    float *ref = malloc(sizeof *ref * n), *y = malloc(sizeof *y * n);
    double t0 = now_ms();
    tm_status s = whole_run(m, x, ref);
    double whole_ms = now_ms() - t0;
    CHECK(s == TM_OK, "%s whole %dx%d: %s", name, pw, ph, tm_ctx_error(m->ctx));
    for (int i = 0; i < n_tiles && !s; i++) {
        memset(y, 0xff, sizeof *y * n); /* NaN: a sample never written shows */
        t0 = now_ms();
        tm_status st = tm_tiled_run(m, x, y, ph, pw, tiles[i], NULL);
        double ms = now_ms() - t0, d = st ? INFINITY : max_diff(ref, y, n);
        printf("  %-6s %-26s %4dx%-4d tile %4d: max|diff| %.2e  (tiled %.0f ms, whole %.0f ms)\n",
               backend_name(m), name, pw, ph, tiles[i], d, ms, whole_ms);
        CHECK(st == TM_OK && d <= TOL, "%s %dx%d tile %d: max|diff| %.3g (%s)", name, pw, ph,
              tiles[i], d, st ? tm_ctx_error(m->ctx) : "ran");
    }
    free(x), free(ref), free(y);
}

/* ---- single convolutions ------------------------------------------------ */

struct conv_case {
    const char *name;
    int transposed, cin, cout, h, w, k, s, pad, reflect, out_pad, act;
};

static const struct conv_case conv_cases[] = {
    { "conv k3 p1 reflect", 0, 3, 5, 37, 53, 3, 1, 1, 1, 0, TM_ACT_RELU },
    { "conv k7 p3 reflect", 0, 2, 3, 37, 53, 7, 1, 3, 1, 0, TM_ACT_NONE },
    { "conv k3 p2 reflect 5x3", 0, 2, 3, 5, 3, 3, 1, 2, 1, 0, TM_ACT_NONE },
    { "conv k4 s2 p1 reflect", 0, 3, 4, 37, 53, 4, 2, 1, 1, 0, TM_ACT_TANH },
    { "conv k3 s2 p1 zero", 0, 4, 6, 37, 53, 3, 2, 1, 0, 0, TM_ACT_LRELU },
    { "conv k4 s2 p1 zero", 0, 3, 4, 37, 53, 4, 2, 1, 0, 0, TM_ACT_NONE },
    { "conv k5 s3 p2 zero", 0, 3, 4, 37, 53, 5, 3, 2, 0, 0, TM_ACT_TANH },
    { "convt k3 s2 p1 op1", 1, 5, 3, 37, 53, 3, 2, 1, 0, 1, TM_ACT_RELU },
    { "convt k3 s2 p1 op0", 1, 5, 3, 37, 53, 3, 2, 1, 0, 0, TM_ACT_NONE },
    { "convt k4 s2 p1", 1, 4, 3, 37, 53, 4, 2, 1, 0, 0, TM_ACT_TANH },
    { "convt k5 s3 p1 op2", 1, 3, 4, 37, 53, 5, 3, 1, 0, 2, TM_ACT_NONE },
    { "convt k3 s3 p2 op1", 1, 3, 4, 37, 53, 3, 3, 2, 0, 1, TM_ACT_LRELU },
    { "convt k1 s2 (rows w/o taps)", 1, 3, 4, 37, 53, 1, 2, 0, 0, 0, TM_ACT_RELU },
    { "convt k1 s2 p1 (rows w/o taps)", 1, 3, 4, 37, 53, 1, 2, 1, 0, 1, TM_ACT_NONE },
    { "convt k2 s3 p2 (rows w/o taps)", 1, 2, 3, 37, 53, 2, 3, 2, 0, 0, TM_ACT_NONE },
    { "convt k2 s1 p0", 1, 2, 3, 37, 53, 2, 1, 0, 0, 0, TM_ACT_NONE },
};

/* A model around one conv node, as tm_model_load would leave it. */
struct op_model {
    struct tm_model m;
    float *w, *b;
};

static tm_status op_model_init(struct op_model *om, tm_ctx *ctx, const struct conv_case *c)
{
    struct tm_graph *g = &om->m.graph;
    size_t nw = (size_t)c->cin * c->cout * c->k * c->k;
    float fan = (float)c->cin * c->k * c->k / (c->transposed ? (float)(c->s * c->s) : 1.0f);
    memset(om, 0, sizeof *om);
    om->m.ctx = ctx;
    om->w = malloc(sizeof *om->w * nw);
    om->b = malloc(sizeof *om->b * (size_t)c->cout);
    for (size_t i = 0; i < nw; i++)
        om->w[i] = frand() * sqrtf(3.0f / (fan > 1 ? fan : 1));
    for (int i = 0; i < c->cout; i++)
        om->b[i] = 0.5f * frand();
    int64_t wd[4] = { c->transposed ? c->cin : c->cout, c->transposed ? c->cout : c->cin, c->k,
                      c->k };
    int64_t bd[1] = { c->cout };
    tm_graph_init(g);
    g->input = tm_graph_value(g);
    g->tensors[g->input].c = c->cin;
    struct tm_node n = tm_node_new(c->transposed ? TM_OP_CONVT2D : TM_OP_CONV2D, g->input);
    n.w = tm_graph_param(g, "w", om->w, 4, wd);
    n.b = tm_graph_param(g, "b", om->b, 1, bd);
    n.act = c->act;
    n.slope = 0.2f;
    n.conv = (struct tm_conv_attr){ c->k, c->k, c->s, c->pad,
                                    c->reflect ? TM_PAD_REFLECT : TM_PAD_ZERO, c->out_pad, 1 };
    g->output = tm_graph_add(g, &n);
    return ctx->backend->vt->params_upload(ctx->backend, g, &om->m.dev_params);
}

static void op_model_free(struct op_model *om)
{
    struct tm_backend *be = om->m.ctx->backend;
    tm_tiled_free(&om->m);
    if (om->m.dev_params)
        be->vt->params_free(be, om->m.dev_params);
    tm_graph_free(&om->m.graph);
    free(om->w), free(om->b);
}

static void test_convs(tm_ctx *ctx)
{
    static const int tiles[] = { TM_TILED_MIN_TILE, 21, 1000 };
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        const struct conv_case *c = &conv_cases[i];
        struct op_model om;
        tm_status s = op_model_init(&om, ctx, c);
        CHECK(s == TM_OK, "%s: %s", c->name, tm_ctx_error(ctx));
        if (!s)
            compare(&om.m, c->name, c->h, c->w, tiles, 3);
        op_model_free(&om);
    }
}

/* ---- whole generators ---------------------------------------------------- */

static tm_model *load(tm_ctx *ctx, int which)
{
    tm_model *m = NULL;
    tm_status s = tm_model_load(ctx, model_path[which], &m);
    CHECK(s == TM_OK, "load %s: %s", model_path[which], tm_ctx_error(ctx));
    return m;
}

static void test_model(tm_ctx *ctx, int which, const char *name, int ph, int pw,
                       const int *tiles, int n_tiles)
{
    tm_model *m = load(ctx, which);
    if (m)
        compare(m, name, ph, pw, tiles, n_tiles);
    tm_model_destroy(&m);
}

static void test_models_cpu(tm_ctx *ctx)
{
    static const int big[] = { 128, 200, 0 };
    static const int odd[] = { TM_TILED_MIN_TILE, 100, 4096 };
    static const int unet[] = { 64, 100, 0 };
    test_model(ctx, RESNET8, "resnet ngf8 instance", 1536, 2048, big, 3);
    /* 644x484 makes the 1/4-scale trunk odd: 161x121. */
    test_model(ctx, RESNET_ZERO_BATCH, "resnet zero-pad batch(img)", 484, 644, odd, 3);
    test_model(ctx, UNET_BATCH_IMAGE, "unet batch(image)", 512, 768, unet, 3);
    test_model(ctx, UNET_BATCH_RUNNING, "unet batch(running)", 512, 768, unet, 3);
    test_model(ctx, UNET_INSTANCE, "unet instance", 512, 768, unet, 3);
    test_model(ctx, STARGAN, "stargan ngf8", 768, 1024, big, 3);
}

static void test_models_vk(tm_ctx *ctx)
{
    static const int big[] = { 200 };
    static const int resnet[] = { 64, 0 };
    static const int odd[] = { TM_TILED_MIN_TILE, 4096 };
    static const int unet[] = { 64 };
    test_model(ctx, RESNET4, "resnet ngf4 instance", 1536, 2048, big, 1);
    test_model(ctx, RESNET4, "resnet ngf4 instance", 480, 640, resnet, 2);
    test_model(ctx, RESNET_ZERO_BATCH, "resnet zero-pad batch(img)", 100, 148, odd, 2);
    test_model(ctx, UNET_BATCH_IMAGE, "unet batch(image)", 512, 768, unet, 1);
    test_model(ctx, UNET_BATCH_RUNNING, "unet batch(running)", 256, 512, unet, 1);
    test_model(ctx, UNET_INSTANCE, "unet instance", 256, 512, unet, 1);
    test_model(ctx, STARGAN, "stargan ngf8", 240, 320, unet, 1);
}

/* ---- progress, cancel, bad tiles ----------------------------------------- */

struct progress {
    int calls, backwards;
    double last;
    int stop_at;            /* return false at this call */
    int flag_at;            /* set *flag at this call */
    volatile int *flag;
};

static bool on_progress(void *priv, double f)
{
    struct progress *p = priv;
    p->calls++;
    p->backwards += f <= p->last;
    p->last = f;
    if (p->flag_at && p->calls == p->flag_at)
        *p->flag = 1;
    return p->calls != p->stop_at;
}

static tm_status run_with(tm_model *m, const float *x, float *y, struct progress *p,
                          volatile int *flag)
{
    struct tm_run_opts o = { .progress = on_progress, .progress_priv = p, .cancel = flag };
    return tm_tiled_run(m, x, y, 100, 148, 32, &o);
}

static void test_progress_cancel(tm_ctx *ctx)
{
    tm_model *m = load(ctx, RESNET_ZERO_BATCH);
    size_t n = m ? infer(m, 100, 148) : 0;
    if (!n) {
        tm_model_destroy(&m);
        return;
    }
    float *x = make_image(3, 100, 148), *ref = malloc(sizeof *ref * n), *y = malloc(sizeof *y * n);
    CHECK(whole_run(m, x, ref) == TM_OK, "whole: %s", tm_ctx_error(ctx));
    volatile int flag = 0;
    struct progress p = { 0 };
    CHECK(run_with(m, x, y, &p, &flag) == TM_OK && max_diff(ref, y, n) <= TOL, "progress run: %s",
          tm_ctx_error(ctx));
    CHECK(p.calls > m->graph.n_nodes && !p.backwards && p.last == 1.0,
          "%d reports, %d not rising, last %.17g", p.calls, p.backwards, p.last);
    flag = 1;
    p = (struct progress){ 0 };
    CHECK(run_with(m, x, y, &p, &flag) == TM_ERR_CANCELLED && p.calls == 0, "preset flag: %s",
          tm_ctx_error(ctx));
    flag = 0;
    p = (struct progress){ .stop_at = 5 };
    CHECK(run_with(m, x, y, &p, &flag) == TM_ERR_CANCELLED && p.calls == 5,
          "callback: %d calls, %s", p.calls, tm_ctx_error(ctx));
    p = (struct progress){ .flag_at = 7, .flag = &flag };
    CHECK(run_with(m, x, y, &p, &flag) == TM_ERR_CANCELLED && p.calls == 7 &&
              strstr(tm_ctx_error(ctx), "cancelled"),
          "flag set mid-run: %d calls, %s", p.calls, tm_ctx_error(ctx));
    flag = 0;
    p = (struct progress){ 0 };
    CHECK(run_with(m, x, y, &p, &flag) == TM_OK && max_diff(ref, y, n) <= TOL,
          "runs again after a cancel: %s", tm_ctx_error(ctx));
    CHECK(tm_tiled_run(m, x, y, 100, 148, TM_TILED_MIN_TILE - 1, NULL) == TM_ERR_INVALID &&
              tm_tiled_run(m, x, y, 100, 148, -1, NULL) == TM_ERR_INVALID,
          "bad tile sides: %s", tm_ctx_error(ctx));
    free(x), free(ref), free(y);
    static const int tile[] = { 24 };
    compare(m, "resnet, another size", 64, 96, tile, 1);
    tm_model_destroy(&m);
}

/* ---- device memory (Vulkan) ---------------------------------------------- */

/* Bytes sub-allocated from the Vulkan device heap right now. */
static uint64_t vk_in_use(tm_ctx *ctx)
{
    const struct vk_backend *be = (const struct vk_backend *)ctx->backend;
    uint64_t used = 0;
    for (int i = 0; i < be->dev_heap.n_blocks; i++) {
        const struct vk_block *b = be->dev_heap.blocks[i];
        used += b->size;
        for (int f = 0; f < b->n_free; f++)
            used -= b->free[f].size;
    }
    return used;
}

struct peak {
    tm_ctx *ctx;
    uint64_t max;
};

static bool sample_peak(void *priv, double f)
{
    struct peak *p = priv;
    uint64_t u = vk_in_use(p->ctx);
    p->max = u > p->max ? u : p->max;
    return true;
}

/* What one conv's tiles of side t may need on the device: its window and
 * output, generously rounded; the largest over the graph. */
static uint64_t tile_bound(const struct tm_graph *g, int t)
{
    uint64_t b = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct tm_node *n = &g->nodes[i];
        if (n->op != TM_OP_CONV2D && n->op != TM_OP_CONVT2D)
            continue;
        uint64_t cin = (uint64_t)g->tensors[n->in[0]].c, cout = (uint64_t)g->tensors[n->out].c;
        uint64_t in = (uint64_t)(n->conv.stride * t + n->conv.kh + 2);
        uint64_t out = (uint64_t)(t + 2 * n->conv.kh + 2 * n->conv.stride);
        uint64_t need = sizeof(float) * (cin * in * in + cout * out * out) + 4096;
        b = need > b ? need : b;
    }
    return b;
}

/* Peak device memory of a tiled run (tile 64) on a fresh model above what
 * the model itself holds; *bound: the model's weights again (re-laid per
 * conv, at most 4x) and the largest conv window; *whole: the whole-image
 * plan's activations. */
static uint64_t tiled_peak(tm_ctx *ctx, int ph, int pw, uint64_t *bound, uint64_t *whole)
{
    tm_model *m = load(ctx, RESNET4);
    size_t n = m ? infer(m, ph, pw) : 0;
    if (!n) {
        tm_model_destroy(&m);
        return UINT64_MAX;
    }
    struct tm_backend *be = ctx->backend;
    uint64_t base = vk_in_use(ctx);
    float *x = make_image(3, ph, pw), *y = malloc(sizeof *y * n);
    struct peak p = { ctx, 0 };
    struct tm_run_opts o = { .progress = sample_peak, .progress_priv = &p };
    CHECK(tm_tiled_run(m, x, y, ph, pw, 64, &o) == TM_OK, "%s", tm_ctx_error(ctx));
    *bound = 4 * base + tile_bound(&m->graph, 64);
    void *plan = NULL;
    uint64_t before = vk_in_use(ctx);
    CHECK(be->vt->plan_create(be, &m->graph, m->dev_params, &plan) == TM_OK, "%s",
          tm_ctx_error(ctx));
    *whole = vk_in_use(ctx) - before;
    be->vt->plan_destroy(be, plan);
    free(x), free(y);
    tm_model_destroy(&m);
    return p.max - base;
}

static void test_device_memory(tm_ctx *ctx)
{
    uint64_t bound, whole_small, whole_big;
    uint64_t small = tiled_peak(ctx, 480, 640, &bound, &whole_small);
    uint64_t big = tiled_peak(ctx, 1920, 2560, &bound, &whole_big);
    printf("  vulkan device memory, resnet ngf4, tile 64: tiled peak %.2f MiB at 640x480, "
           "%.2f MiB at 2560x1920 (bound %.2f MiB); whole-image plan %.1f / %.1f MiB\n",
           small / 1048576.0, big / 1048576.0, bound / 1048576.0, whole_small / 1048576.0,
           whole_big / 1048576.0);
    CHECK(big <= bound && small <= bound, "tiled peak %llu / %llu above %llu",
          (unsigned long long)small, (unsigned long long)big, (unsigned long long)bound);
    CHECK(big == small, "device memory grows with the image: %llu -> %llu",
          (unsigned long long)small, (unsigned long long)big);
    CHECK(big * 20 < whole_big, "tiled %llu not far below whole %llu", (unsigned long long)big,
          (unsigned long long)whole_big);
}

/* ---- main -------------------------------------------------------------------- */

static void run_cpu(void)
{
    char err[256];
    tm_ctx *ctx = NULL;
    CHECK(tm_ctx_create(&(struct tm_ctx_params){ .device = "cpu" }, &ctx, err, sizeof err) == TM_OK,
          "cpu context: %s", err);
    if (!ctx)
        return;
    test_convs(ctx);
    test_models_cpu(ctx);
    test_progress_cancel(ctx);
    tm_ctx_destroy(&ctx);
}

static void run_vulkan(void)
{
    char err[256];
    tm_ctx *ctx = NULL;
    const char *vk = getenv("TM_TEST_VK_DEVICE") ? getenv("TM_TEST_VK_DEVICE") : "vulkan";
    struct tm_ctx_params params = { .device = vk, .validate = true };
    tm_status s = tm_ctx_create(&params, &ctx, err, sizeof err);
    CHECK(s == TM_OK, "Vulkan context '%s' (a Vulkan device is required): %s", vk, err);
    if (!ctx)
        return;
    printf("vulkan device: %s\n", tm_ctx_device(ctx)->name);
    test_convs(ctx);
    test_models_vk(ctx);
    test_progress_cancel(ctx);
    test_device_memory(ctx);
    CHECK(tm_ctx_validation_messages(ctx) == 0, "%d validation messages",
          tm_ctx_validation_messages(ctx));
    tm_ctx_destroy(&ctx);
}

int main(int argc, char **argv)
{
    if (argc != 1 + N_MODELS) {
        printf("usage: test_tiled RESNET8 RESNET4 RESNET_ZERO_BATCH UNET_BATCH_IMAGE "
               "UNET_BATCH_RUNNING UNET_INSTANCE STARGAN\n0 passed, 1 failed\n");
        return 1;
    }
    for (int i = 0; i < N_MODELS; i++)
        model_path[i] = argv[1 + i];
    setvbuf(stdout, NULL, _IOLBF, 0);
    run_cpu();
    run_vulkan();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
