/* test_ops.c: every op, through the CPU backend against the plain-loop
 * references (ref_ops.c), and through the Vulkan backend against the CPU
 * backend. Each case is a tiny graph; outputs are guarded by sentinels.
 *
 *   test_ops [filter]   runs the cases whose name contains filter
 *   TM_TEST_VK_DEVICE   Vulkan device name substring (default llvmpipe)
 * Prints one line per case and `N passed, M failed`; exits non-zero on any
 * failure, including a missing Vulkan device or validation messages. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "check.h"
#include "ctx.h"
#include "graph.h"
#include "ref_ops.h"

enum kind { K_CONV, K_CONVT, K_INST, K_BATCH, K_ACT, K_ADD, K_CONCAT, K_CHAIN };

struct tcase {
    const char *name;
    enum kind kind;
    int cin, h, w, cout;   /* cout: conv channels (add/concat/chain: of the first conv) */
    int k, stride, pad, reflect, out_pad;
    int bias, act;
    float slope;
    int affine, image_stats;
};

#define L 0.2f
static const struct tcase cases[] = {
    /* odd shapes and channel counts */
    { "conv_1x1_c1", K_CONV, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, TM_ACT_NONE, 0, 0, 0 },
    { "conv_5x3_k3_zero_relu", K_CONV, 3, 5, 3, 5, 3, 1, 1, 0, 0, 1, TM_ACT_RELU, 0, 0, 0 },
    { "conv_37x53_k3_reflect_leaky", K_CONV, 3, 37, 53, 13, 3, 1, 1, 1, 0, 1, TM_ACT_LRELU, L, 0, 0 },
    { "conv_37x53_k3_s2_tanh_nobias", K_CONV, 13, 37, 53, 7, 3, 2, 1, 0, 0, 0, TM_ACT_TANH, 0, 0, 0 },
    { "conv_37x53_k5_s3_p2", K_CONV, 5, 37, 53, 9, 5, 3, 2, 0, 0, 1, TM_ACT_RELU, 0, 0, 0 },
    { "conv_37x53_k7_reflect_p3", K_CONV, 1, 37, 53, 3, 7, 1, 3, 1, 0, 1, TM_ACT_NONE, 0, 0, 0 },
    { "conv_37x53_k4_s2_p1_c70", K_CONV, 70, 37, 53, 33, 4, 2, 1, 0, 0, 1, TM_ACT_LRELU, L, 0, 0 },
    { "conv_5x3_k3_reflect_p2", K_CONV, 2, 5, 3, 3, 3, 1, 2, 1, 0, 0, TM_ACT_NONE, 0, 0, 0 },
    /* ResNet generator layers */
    { "resnet_in_3to64_k7_256", K_CONV, 3, 256, 256, 64, 7, 1, 3, 1, 0, 1, TM_ACT_NONE, 0, 0, 0 },
    { "resnet_down_64to128_128", K_CONV, 64, 128, 128, 128, 3, 2, 1, 0, 0, 1, TM_ACT_NONE, 0, 0, 0 },
    { "resnet_down_128to256_64", K_CONV, 128, 64, 64, 256, 3, 2, 1, 0, 0, 1, TM_ACT_NONE, 0, 0, 0 },
    { "resnet_block_256_k3_reflect_64", K_CONV, 256, 64, 64, 256, 3, 1, 1, 1, 0, 1, TM_ACT_NONE, 0, 0, 0 },
    { "resnet_up_256to128_32", K_CONVT, 256, 32, 32, 128, 3, 2, 1, 0, 1, 1, TM_ACT_NONE, 0, 0, 0 },
    { "resnet_up_128to64_64", K_CONVT, 128, 64, 64, 64, 3, 2, 1, 0, 1, 1, TM_ACT_NONE, 0, 0, 0 },
    { "resnet_out_64to3_k7_tanh_128", K_CONV, 64, 128, 128, 3, 7, 1, 3, 1, 0, 1, TM_ACT_TANH, 0, 0, 0 },
    /* U-Net layers */
    { "unet_down_3to64_64", K_CONV, 3, 64, 64, 64, 4, 2, 1, 0, 0, 1, TM_ACT_NONE, 0, 0, 0 },
    { "unet_down_128to256_16_leaky", K_CONV, 128, 16, 16, 256, 4, 2, 1, 0, 0, 0, TM_ACT_LRELU, L, 0, 0 },
    { "unet_down_512to512_4", K_CONV, 512, 4, 4, 512, 4, 2, 1, 0, 0, 0, TM_ACT_LRELU, L, 0, 0 },
    { "unet_down_512to512_2to1", K_CONV, 512, 2, 2, 512, 4, 2, 1, 0, 0, 0, TM_ACT_RELU, 0, 0, 0 },
    { "unet_up_512to512_1to2", K_CONVT, 512, 1, 1, 512, 4, 2, 1, 0, 0, 0, TM_ACT_RELU, 0, 0, 0 },
    { "unet_up_1024to512_4", K_CONVT, 1024, 4, 4, 512, 4, 2, 1, 0, 0, 0, TM_ACT_RELU, 0, 0, 0 },
    { "unet_up_256to64_16", K_CONVT, 256, 16, 16, 64, 4, 2, 1, 0, 0, 0, TM_ACT_NONE, 0, 0, 0 },
    { "unet_up_128to3_32_tanh", K_CONVT, 128, 32, 32, 3, 4, 2, 1, 0, 0, 1, TM_ACT_TANH, 0, 0, 0 },
    /* convT corner cases */
    { "convt_37x53_k3_s2_op1", K_CONVT, 5, 37, 53, 7, 3, 2, 1, 0, 1, 1, TM_ACT_LRELU, L, 0, 0 },
    { "convt_37x53_k5_s3_p1_op2", K_CONVT, 3, 37, 53, 10, 5, 3, 1, 0, 2, 1, TM_ACT_NONE, 0, 0, 0 },
    { "convt_5x3_k1_s2_notaps", K_CONVT, 3, 5, 3, 4, 1, 2, 0, 0, 0, 1, TM_ACT_RELU, 0, 0, 0 },
    { "convt_5x3_k2_s1", K_CONVT, 1, 5, 3, 3, 2, 1, 0, 0, 0, 0, TM_ACT_TANH, 0, 0, 0 },
    { "convt_1x1_k4_s2_p1_c9", K_CONVT, 9, 1, 1, 11, 4, 2, 1, 0, 0, 1, TM_ACT_NONE, 0, 0, 0 },
    /* normalization */
    { "instnorm_affine_37x53_relu", K_INST, 13, 37, 53, 0, 0, 0, 0, 0, 0, 0, TM_ACT_RELU, 0, 1, 0 },
    { "instnorm_plain_5x3_leaky", K_INST, 3, 5, 3, 0, 0, 0, 0, 0, 0, 0, TM_ACT_LRELU, L, 0, 0 },
    { "instnorm_plain_1x1", K_INST, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, TM_ACT_NONE, 0, 0, 0 },
    { "instnorm_affine_64ch_64", K_INST, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, TM_ACT_NONE, 0, 1, 0 },
    { "batchnorm_image_37x53", K_BATCH, 7, 37, 53, 0, 0, 0, 0, 0, 0, 0, TM_ACT_NONE, 0, 1, 1 },
    { "batchnorm_running_37x53_leaky", K_BATCH, 9, 37, 53, 0, 0, 0, 0, 0, 0, 0, TM_ACT_LRELU, L, 1, 0 },
    { "batchnorm_running_1x1_relu", K_BATCH, 3, 1, 1, 0, 0, 0, 0, 0, 0, 0, TM_ACT_RELU, 0, 1, 0 },
    /* elementwise */
    { "act_none", K_ACT, 3, 37, 53, 0, 0, 0, 0, 0, 0, 0, TM_ACT_NONE, 0, 0, 0 },
    { "act_relu", K_ACT, 3, 37, 53, 0, 0, 0, 0, 0, 0, 0, TM_ACT_RELU, 0, 0, 0 },
    { "act_leaky", K_ACT, 1, 37, 53, 0, 0, 0, 0, 0, 0, 0, TM_ACT_LRELU, L, 0, 0 },
    { "act_tanh", K_ACT, 5, 5, 3, 0, 0, 0, 0, 0, 0, 0, TM_ACT_TANH, 0, 0, 0 },
    { "add_37x53", K_ADD, 3, 37, 53, 3, 0, 0, 0, 0, 0, 0, TM_ACT_NONE, 0, 0, 0 },
    { "add_relu_1x1", K_ADD, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, TM_ACT_RELU, 0, 0, 0 },
    { "concat_37x53", K_CONCAT, 3, 37, 53, 5, 0, 0, 0, 0, 0, 0, TM_ACT_NONE, 0, 0, 0 },
    { "concat_5x3_c1", K_CONCAT, 1, 5, 3, 1, 0, 0, 0, 0, 0, 0, TM_ACT_NONE, 0, 0, 0 },
    /* 192 MiB tensors, beyond lavapipe's 128 MiB maxStorageBufferRange: the
     * Vulkan backend reaches them by buffer device address. */
    { "big_act_leaky_48x1024x1024", K_ACT, 48, 1024, 1024, 0, 0, 0, 0, 0, 0, 0, TM_ACT_LRELU, L, 0, 0 },
    { "big_instnorm_affine_48x1024x1024", K_INST, 48, 1024, 1024, 0, 0, 0, 0, 0, 0, 0, TM_ACT_RELU, 0, 1, 0 },
    { "big_conv_1x1_1to48_1024", K_CONV, 1, 1024, 1024, 48, 1, 1, 0, 0, 0, 1, TM_ACT_TANH, 0, 0, 0 },
    /* in place: the memory plan makes norm and add write over the conv output */
    { "inplace_resblock_37x53", K_CHAIN, 8, 37, 53, 8, 3, 1, 1, 1, 0, 1, TM_ACT_RELU, 0, 1, 0 },
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])


/* ---- deterministic data ---------------------------------------------------- */

/* ---- building a case --------------------------------------------------------- */

/* The graph of one case, the buffers it points to, and the reference result. */
struct built {
    struct tm_graph g;
    float *bufs[16];
    int n_bufs;
    float *in, *ref;
    long n_in, n_out;
    int alias_a, alias_b;  /* tensors the memory plan must put in one slot, or -1 */
};

static float *buf_new(struct built *b, long n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p || b->n_bufs >= 16)
        abort();
    b->bufs[b->n_bufs++] = p;
    return p;
}

static float *rand_buf(struct built *b, long n, float scale, float offset)
{
    float *p = buf_new(b, n);
    for (long i = 0; i < n; i++)
        p[i] = offset + scale * frand();
    return p;
}

static int param(struct built *b, const char *name, const float *data, int ndim, int64_t d0,
                 int64_t d1, int64_t d2, int64_t d3)
{
    int64_t dims[4] = { d0, d1, d2, d3 };
    return tm_graph_param(&b->g, name, data, ndim, dims);
}

/* A conv or convT node on value x, with its reference output in *ref_out. */
static int add_conv(struct built *b, const struct tcase *c, int transposed, int x,
                    const float *xin, int cin, int h, int w, float **ref_out, int *oh, int *ow)
{
    struct ref_conv r = {
        .cin = cin, .ih = h, .iw = w, .cout = c->cout, .kh = c->k, .kw = c->k,
        .stride = c->stride, .pad = c->pad, .reflect = c->reflect, .out_pad = c->out_pad,
        .act = c->act, .slope = c->slope,
    };
    long nw = (long)cin * c->cout * c->k * c->k;
    /* Uniform weights scaled by fan-in keep outputs near unit scale. */
    float fan = transposed ? (float)cin * c->k * c->k / (float)(c->stride * c->stride)
                           : (float)cin * c->k * c->k;
    float *wt = rand_buf(b, nw, sqrtf(3.0f / (fan > 1 ? fan : 1)), 0.0f);
    float *bias = c->bias ? rand_buf(b, c->cout, 0.5f, 0.0f) : NULL;
    r.w = wt;
    r.b = bias;
    struct tm_node n = tm_node_new(transposed ? TM_OP_CONVT2D : TM_OP_CONV2D, x);
    n.w = transposed ? param(b, "w", wt, 4, cin, c->cout, c->k, c->k)
                     : param(b, "w", wt, 4, c->cout, cin, c->k, c->k);
    n.b = bias ? param(b, "b", bias, 1, c->cout, 0, 0, 0) : -1;
    n.act = c->act;
    n.slope = c->slope;
    n.conv = (struct tm_conv_attr){ c->k, c->k, c->stride, c->pad,
                                    c->reflect ? TM_PAD_REFLECT : TM_PAD_ZERO, c->out_pad, 1 };
    if (transposed) {
        r.oh = (h - 1) * c->stride - 2 * c->pad + c->k + c->out_pad;
        r.ow = (w - 1) * c->stride - 2 * c->pad + c->k + c->out_pad;
    } else {
        r.oh = (h + 2 * c->pad - c->k) / c->stride + 1;
        r.ow = (w + 2 * c->pad - c->k) / c->stride + 1;
    }
    *ref_out = buf_new(b, (long)c->cout * r.oh * r.ow);
    if (transposed)
        ref_convt2d(&r, xin, *ref_out);
    else
        ref_conv2d(&r, xin, *ref_out);
    *oh = r.oh;
    *ow = r.ow;
    return tm_graph_add(&b->g, &n);
}

/* A 1x1 conv without activation: a second operand for add and concat. */
static int add_pointwise(struct built *b, int x, const float *xin, int cin, int cout, int h,
                         int w, float **ref_out)
{
    struct tcase pw = { "pw", K_CONV, cin, h, w, cout, 1, 1, 0, 0, 0, 1, TM_ACT_NONE, 0, 0, 0 };
    int oh, ow;
    return add_conv(b, &pw, 0, x, xin, cin, h, w, ref_out, &oh, &ow);
}

static int add_norm(struct built *b, const struct tcase *c, int x, const float *xin, int ch,
                    int h, int w, float **ref_out)
{
    int batch = c->kind == K_BATCH, running = batch && !c->image_stats;
    float *gamma = c->affine ? rand_buf(b, ch, 0.5f, 1.0f) : NULL;
    float *beta = c->affine ? rand_buf(b, ch, 0.5f, 0.0f) : NULL;
    float *mean = running ? rand_buf(b, ch, 2.0f, 0.0f) : NULL;
    float *var = running ? rand_buf(b, ch, 0.9f, 1.0f) : NULL;
    struct tm_node n = tm_node_new(batch ? TM_OP_BATCHNORM : TM_OP_INSTNORM, x);
    n.w = gamma ? param(b, "gamma", gamma, 1, ch, 0, 0, 0) : -1;
    n.b = beta ? param(b, "beta", beta, 1, ch, 0, 0, 0) : -1;
    n.mean = mean ? param(b, "mean", mean, 1, ch, 0, 0, 0) : -1;
    n.var = var ? param(b, "var", var, 1, ch, 0, 0, 0) : -1;
    n.norm.eps = 1e-5f;
    n.norm.image_stats = batch ? c->image_stats : 1;
    n.act = c->act;
    n.slope = c->slope;
    *ref_out = buf_new(b, (long)ch * h * w);
    ref_norm(xin, ch, h, w, gamma, beta, mean, var, 1e-5f, c->act, c->slope, *ref_out);
    return tm_graph_add(&b->g, &n);
}

static int add_binary(struct built *b, enum tm_op op, int x0, int x1, int act, float slope)
{
    struct tm_node n = tm_node_new(op, x0);
    n.in[1] = x1;
    n.act = act;
    n.slope = slope;
    return tm_graph_add(&b->g, &n);
}

/* Input data: per-channel offsets and spreads for norms, so the statistics
 * are not trivially zero-mean unit-variance. */
static void make_input(struct built *b, const struct tcase *c)
{
    long plane = (long)c->h * c->w;
    b->n_in = (long)c->cin * plane;
    b->in = buf_new(b, b->n_in);
    int norm = c->kind == K_INST || c->kind == K_BATCH;
    for (int ch = 0; ch < c->cin; ch++) {
        float off = norm ? 3.0f * frand() + 2.0f : 0.0f, sc = norm ? 1.5f + frand() : 1.0f;
        for (long i = 0; i < plane; i++)
            b->in[ch * plane + i] = off + sc * frand();
    }
}

static int build(struct built *b, const struct tcase *c)
{
    memset(b, 0, sizeof *b);
    b->alias_a = b->alias_b = -1;
    tm_graph_init(&b->g);
    make_input(b, c);
    int x = tm_graph_value(&b->g), y = -1, oh = c->h, ow = c->w, ch = c->cin;
    b->g.input = x;
    b->g.tensors[x].c = c->cin;
    float *r1, *r2;
    switch (c->kind) {
    case K_CONV:
    case K_CONVT:
        y = add_conv(b, c, c->kind == K_CONVT, x, b->in, c->cin, c->h, c->w, &b->ref, &oh, &ow);
        ch = c->cout;
        break;
    case K_INST:
    case K_BATCH:
        y = add_norm(b, c, x, b->in, c->cin, c->h, c->w, &b->ref);
        break;
    case K_ACT: {
        struct tm_node n = tm_node_new(TM_OP_ACT, x);
        n.act = c->act;
        n.slope = c->slope;
        y = tm_graph_add(&b->g, &n);
        b->ref = buf_new(b, b->n_in);
        ref_act(b->in, b->n_in, c->act, c->slope, b->ref);
        break;
    }
    case K_ADD: {
        int p = add_pointwise(b, x, b->in, c->cin, c->cin, c->h, c->w, &r1);
        y = add_binary(b, TM_OP_ADD, p, x, c->act, c->slope);
        b->ref = buf_new(b, b->n_in);
        ref_add(r1, b->in, b->n_in, c->act, c->slope, b->ref);
        b->alias_a = p;
        b->alias_b = y;
        break;
    }
    case K_CONCAT: {
        int p = add_pointwise(b, x, b->in, c->cin, c->cout, c->h, c->w, &r1);
        y = add_binary(b, TM_OP_CONCAT, p, x, TM_ACT_NONE, 0);
        ch = c->cout + c->cin;
        b->ref = buf_new(b, (long)ch * c->h * c->w);
        ref_concat(r1, (long)c->cout * c->h * c->w, b->in, b->n_in, b->ref);
        break;
    }
    case K_CHAIN: {
        /* conv (no act) -> instnorm+relu in place -> add input in place */
        struct tcase cc = *c;
        cc.act = TM_ACT_NONE;
        int t = add_conv(b, &cc, 0, x, b->in, c->cin, c->h, c->w, &r1, &oh, &ow);
        int nrm = add_norm(b, c, t, r1, c->cout, oh, ow, &r2);
        y = add_binary(b, TM_OP_ADD, nrm, x, TM_ACT_NONE, 0);
        b->ref = buf_new(b, b->n_in);
        ref_add(r2, b->in, b->n_in, TM_ACT_NONE, 0, b->ref);
        b->alias_a = t;
        b->alias_b = y;
        break;
    }
    }
    b->g.output = y;
    b->n_out = (long)ch * oh * ow;
    char err[256];
    if (y < 0 || tm_graph_infer(&b->g, c->h, c->w, err, sizeof err)) {
        printf("FAIL %s: graph: %s\n", c->name, y < 0 ? "out of memory" : err);
        return -1;
    }
    const struct tm_tensor *t = &b->g.tensors[y];
    if ((long)tm_value_numel(t) != b->n_out) {
        printf("FAIL %s: graph output %dx%dx%d, reference %ld floats\n", c->name, t->c, t->h,
               t->w, b->n_out);
        return -1;
    }
    return 0;
}

static void built_free(struct built *b)
{
    tm_graph_free(&b->g);
    for (int i = 0; i < b->n_bufs; i++)
        free(b->bufs[i]);
}

/* ---- running and comparing ------------------------------------------------ */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Runs the graph; out has GUARD sentinel floats on both sides. */
static tm_status run_graph(struct tm_backend *be, struct built *b, float *out, double *ms,
                           const struct tm_run_opts *opts)
{
    void *params = NULL, *plan = NULL;
    tm_status s = be->vt->params_upload(be, &b->g, &params);
    if (!s)
        s = be->vt->plan_create(be, &b->g, params, &plan);
    if (!s) {
        double t0 = now_ms();
        s = be->vt->plan_run(be, plan, b->in, out + GUARD, opts);
        *ms = now_ms() - t0;
    }
    if (plan)
        be->vt->plan_destroy(be, plan);
    if (params)
        be->vt->params_free(be, params);
    return s;
}

struct diff {
    double max_abs, scale, nmse;
};

static struct diff compare(const float *got, const float *want, long n)
{
    struct diff d = { 0, 0, 0 };
    double se = 0, sr = 0;
    for (long i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= d.max_abs)) /* NaN sticks */
            d.max_abs = e;
        if (fabs(want[i]) > d.scale)
            d.scale = fabs(want[i]);
        se += e * e;
        sr += (double)want[i] * want[i];
    }
    d.nmse = sr > 0 ? se / sr : se;
    return d;
}

/* Tolerance relative to the output scale: float accumulation over long
 * reductions (K up to 16k) stays well inside 1e-4. */
static int diff_ok(struct diff d)
{
    double scale = d.scale > 1e-3 ? d.scale : 1e-3;
    return d.max_abs <= 1e-4 * scale && d.nmse <= 1e-8;
}

static const char *kind_op(enum kind k)
{
    static const char *const names[] = { "conv2d", "convt2d", "instnorm", "batchnorm",
                                         "act", "add", "concat", "chain" };
    return names[k];
}

/* One backend against an expected output; prints its part of the line. */
static int check_backend(const char *tag, struct tm_backend *be, struct built *b,
                         const float *want, float *got)
{
    double ms = 0;
    tm_status s = run_graph(be, b, got, &ms, NULL);
    if (s) {
        printf(" | %s error: %s", tag, be->ctx->err);
        return 0;
    }
    struct diff d = compare(got + GUARD, want, b->n_out);
    int guard = guards_ok(got, b->n_out);
    printf(" | %s max %.2e (scale %.2f, nmse %.1e) %.1f ms%s", tag, d.max_abs, d.scale,
           d.nmse, ms, guard ? "" : " STRAY WRITE");
    return diff_ok(d) && guard;
}

/* The plan must alias what the case is about, or it does not test in-place. */
static int alias_ok(struct built *b)
{
    if (b->alias_a < 0)
        return 1;
    int *slot_of = NULL;
    size_t *size = NULL;
    if (tm_graph_plan_memory(&b->g, &slot_of, &size) < 0)
        return 0;
    int ok = slot_of[b->alias_a] == slot_of[b->alias_b];
    free(slot_of);
    free(size);
    printf(" | in-place %s", ok ? "yes" : "NO");
    return ok;
}

static int run_case(const struct tcase *c, struct tm_backend *cpu, struct tm_backend *vk)
{
    struct built b;
    if (build(&b, c)) {
        built_free(&b);
        return 0;
    }
    printf("%-34s %-9s %4d->%-4d %3dx%-3d k%d s%d p%d%s", c->name, kind_op(c->kind), c->cin,
           c->cout, c->h, c->w, c->k, c->stride, c->pad, c->reflect ? "r" : "");
    float *got = guarded(b.n_out), *vgot = guarded(b.n_out);
    int ok = alias_ok(&b);
    ok &= check_backend("cpu-ref", cpu, &b, b.ref, got);
    if (vk)
        ok &= check_backend("vk-cpu", vk, &b, got + GUARD, vgot);
    printf(" %s\n", ok ? "ok" : "FAIL");
    free(got);
    free(vgot);
    built_free(&b);
    return ok;
}

/* ---- run options: progress and cancel ------------------------------------ */

struct progress_log {
    int calls;
    double last;
    int monotone;
};

static bool on_progress(void *priv, double f)
{
    struct progress_log *p = priv;
    p->monotone &= f >= p->last;
    p->last = f;
    p->calls++;
    return true;
}

static int check_run_opts(const char *tag, struct tm_backend *be)
{
    const struct tcase *c = &cases[N_CASES - 1]; /* the three-node chain */
    struct built b;
    if (build(&b, c)) {
        built_free(&b);
        return 0;
    }
    float *got = guarded(b.n_out);
    double ms;
    struct progress_log log = { 0, 0.0, 1 };
    struct tm_run_opts opts = { .progress = on_progress, .progress_priv = &log };
    tm_status s1 = run_graph(be, &b, got, &ms, &opts);
    volatile int cancel = 1;
    struct tm_run_opts copts = { .cancel = &cancel };
    tm_status s2 = run_graph(be, &b, got, &ms, &copts);
    int ok = s1 == TM_OK && log.calls > 0 && log.monotone && fabs(log.last - 1.0) < 1e-9 &&
             s2 == TM_ERR_CANCELLED;
    printf("%-34s %s: progress %d calls, last %.3f%s; cancel -> %s %s\n", "run_opts", tag,
           log.calls, log.last, log.monotone ? "" : " (not monotone)", tm_status_str(s2),
           ok ? "ok" : "FAIL");
    free(got);
    built_free(&b);
    return ok;
}

/* ---- Vulkan -------------------------------------------------------------- */

#ifndef TM_TEST_NO_VULKAN
static struct tm_backend *open_vulkan(tm_ctx *vctx)
{
    struct tm_device_info list[16];
    char why[256] = "";
    int n = tm_vk_enumerate(list, 16, why, sizeof why);
    if (n <= 0) {
        printf("FAIL vulkan: no device (%s)\n", why);
        return NULL;
    }
    const char *want = getenv("TM_TEST_VK_DEVICE");
    if (!want || !*want)
        want = "llvmpipe";
    for (int i = 0; i < n && i < 16; i++) {
        if (!strstr(list[i].name, want))
            continue;
        struct tm_backend *vk = NULL;
        if (tm_backend_vk_create(vctx, list[i].index, true, &vk)) {
            printf("FAIL vulkan: creating on %s: %s\n", list[i].name, vctx->err);
            return NULL;
        }
        printf("vulkan device: %s (%s)\n", list[i].name, list[i].driver);
        return vk;
    }
    printf("FAIL vulkan: no device name contains \"%s\"\n", want);
    return NULL;
}
#endif

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    static tm_ctx ctx, vctx;
    struct tm_backend *cpu = NULL, *vk = NULL;
    int passed = 0, failed = 0;
    if (tm_backend_cpu_create(&ctx, 0, &cpu)) {
        printf("FAIL cpu backend: %s\n", ctx.err);
        printf("0 passed, 1 failed\n");
        return 1;
    }
#ifndef TM_TEST_NO_VULKAN
    vk = open_vulkan(&vctx);
    if (!vk)
        failed++;
#else
    printf("built with TM_TEST_NO_VULKAN: CPU against the reference only\n");
#endif
    for (int i = 0; i < N_CASES; i++) {
        const struct tcase *c = &cases[i];
        if (filter && !strstr(c->name, filter) && !strstr(kind_op(c->kind), filter))
            continue;
        if (run_case(c, cpu, vk))
            passed++;
        else
            failed++;
    }
    if (!filter || strstr("run_opts", filter)) {
        check_run_opts("cpu", cpu) ? passed++ : failed++;
        if (vk)
            check_run_opts("vk", vk) ? passed++ : failed++;
    }
    if (vk) {
        vk->vt->destroy(vk);
        if (vctx.validation_messages) {
            printf("FAIL vulkan: %d validation messages\n", vctx.validation_messages);
            failed++;
        }
    }
    cpu->vt->destroy(cpu);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
