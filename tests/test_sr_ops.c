/* test_sr_ops.c: the super-resolution ops (scale, PReLU, upsample,
 * depth2space, space2depth, n-input concat, dilated conv) against the
 * plain-loop references in ref_ops.c, on the CPU backend and on a Vulkan
 * device (validation on); then a graph of all of them through the tiled
 * path (core/tiled.c) against the whole-image plan, on both.
 *
 *   test_sr_ops [filter]   runs the cases whose name contains filter
 *   TM_TEST_VK_DEVICE      Vulkan device selector (default "vulkan")
 * Data movement and elementwise results must match within 1e-5 (they are
 * exact but for tanh), convolutions within 1e-4 of the output scale. A
 * missing Vulkan device or any validation message is a failure. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "ctx.h"
#include "graph.h"
#include "model.h"
#include "ref_ops.h"
#include "tiled.h"
#include "check.h"

#define EXACT_TOL 1e-5
#define CONV_TOL 1e-4
#define MAX_BUFS 64

/* ---- building a case ------------------------------------------------------ */

/* One case's graph, the host buffers it points to and its reference output. */
struct built {
    struct tm_graph g;
    float *bufs[MAX_BUFS];
    int n_bufs;
    float *in, *ref;
    int h, w;                /* input size */
    long n_in, n_out;
    int conv;                /* has a conv: CONV_TOL, else EXACT_TOL */
    int alias[3][2], n_alias; /* pairs the memory plan must put in one slot */
};

struct sr_case {
    const char *name;
    int (*build)(struct built *b, const struct sr_case *c);
    int c, h, w;      /* channels of the data (the space side for resampling) and size */
    int f, torch;     /* resampling factor and order; concat: inputs; prelu: slopes */
    int k, pad, stride, dil, reflect, cout;
    int act;
    float alpha;
};

static float *buf_new(struct built *b, long n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p || b->n_bufs >= MAX_BUFS)
        abort();
    b->bufs[b->n_bufs++] = p;
    return p;
}

static float *rand_buf(struct built *b, long n, float scale)
{
    float *p = buf_new(b, n);
    for (long i = 0; i < n; i++)
        p[i] = scale * frand();
    return p;
}

static int param(struct built *b, const float *data, int ndim, int64_t d0, int64_t d1,
                 int64_t d2, int64_t d3)
{
    int64_t dims[4] = { d0, d1, d2, d3 };
    return tm_graph_param(&b->g, "p", data, ndim, dims);
}

/* The graph's input, c x h x w of random data. */
static int input(struct built *b, int c, int h, int w)
{
    int x = tm_graph_value(&b->g);
    b->g.input = x;
    b->g.tensors[x].c = c;
    b->h = h;
    b->w = w;
    b->n_in = (long)c * h * w;
    b->in = rand_buf(b, b->n_in, 1.0f);
    return x;
}

static int unary(struct built *b, enum tm_op op, int x, int act, float alpha, int w)
{
    struct tm_node n = tm_node_new(op, x);
    n.act = act;
    n.slope = 0.1f;
    n.alpha = alpha;
    n.w = w;
    return tm_graph_add(&b->g, &n);
}

static int resample(struct built *b, enum tm_op op, int x, int f, int torch)
{
    struct tm_node n = tm_node_new(op, x);
    n.rs.factor = f;
    n.rs.order = torch ? TM_D2S_TORCH : TM_D2S_TF;
    return tm_graph_add(&b->g, &n);
}

/* A conv2d of case c's geometry on x (cin x h x w); its reference of xin
 * in *ref (none when xin is NULL). */
static int conv(struct built *b, const struct sr_case *c, int x, const float *xin, int cin,
                int h, int w, float **ref, int *oh, int *ow)
{
    int k = c->k, d = c->dil;
    float *wt = rand_buf(b, (long)c->cout * cin * k * k, sqrtf(3.0f / (float)(cin * k * k)));
    float *bias = rand_buf(b, c->cout, 0.5f);
    struct ref_conv r = {
        .cin = cin, .ih = h, .iw = w, .cout = c->cout, .kh = k, .kw = k, .stride = c->stride,
        .pad = c->pad, .reflect = c->reflect, .dil = d, .w = wt, .b = bias, .act = c->act,
        .slope = 0.1f,
    };
    r.oh = (h + 2 * c->pad - d * (k - 1) - 1) / c->stride + 1;
    r.ow = (w + 2 * c->pad - d * (k - 1) - 1) / c->stride + 1;
    *ref = xin ? buf_new(b, (long)c->cout * r.oh * r.ow) : NULL;
    if (xin)
        ref_conv2d(&r, xin, *ref);
    *oh = r.oh;
    *ow = r.ow;
    struct tm_node n = tm_node_new(TM_OP_CONV2D, x);
    n.w = param(b, wt, 4, c->cout, cin, k, k);
    n.b = param(b, bias, 1, c->cout, 0, 0, 0);
    n.act = c->act;
    n.slope = 0.1f;
    n.conv = (struct tm_conv_attr){ .kh = k, .kw = k, .stride = c->stride, .pad = c->pad,
                                    .pad_mode = c->reflect ? TM_PAD_REFLECT : TM_PAD_ZERO,
                                    .dil = d };
    b->conv = 1;
    return tm_graph_add(&b->g, &n);
}

/* A 1x1 conv whose output channel co copies input channel (co*3 + k) % cin
 * times 2^(k%3): exact in float, so concats of its outputs stay exact. */
static int select_conv(struct built *b, int x, const float *xin, int cin, int cout, int k,
                       float **ref)
{
    float *wt = buf_new(b, (long)cout * cin);
    for (int co = 0; co < cout; co++)
        wt[co * cin + (co * 3 + k) % cin] = (float)(1 << (k % 3));
    struct ref_conv r = { .cin = cin, .ih = b->h, .iw = b->w, .cout = cout, .oh = b->h,
                          .ow = b->w, .kh = 1, .kw = 1, .stride = 1, .w = wt };
    *ref = buf_new(b, (long)cout * b->h * b->w);
    ref_conv2d(&r, xin, *ref);
    struct tm_node n = tm_node_new(TM_OP_CONV2D, x);
    n.w = param(b, wt, 4, cout, cin, 1, 1);
    n.conv = (struct tm_conv_attr){ .kh = 1, .kw = 1, .stride = 1 };
    return tm_graph_add(&b->g, &n);
}

static int build_scale(struct built *b, const struct sr_case *c)
{
    int x = input(b, c->c, c->h, c->w);
    b->ref = buf_new(b, b->n_in);
    ref_scale(b->in, b->n_in, c->alpha, c->act, 0.1f, b->ref);
    return unary(b, TM_OP_SCALE, x, c->act, c->alpha, -1);
}

/* c->f slopes: 1 (shared) or c->c. */
static int build_prelu(struct built *b, const struct sr_case *c)
{
    int x = input(b, c->c, c->h, c->w);
    float *slopes = rand_buf(b, c->f, 0.5f);
    b->ref = buf_new(b, b->n_in);
    ref_prelu(b->in, c->c, (long)c->h * c->w, slopes, c->f, b->ref);
    return unary(b, TM_OP_PRELU, x, TM_ACT_NONE, 1.0f, param(b, slopes, 1, c->f, 0, 0, 0));
}

static int build_upsample(struct built *b, const struct sr_case *c)
{
    int x = input(b, c->c, c->h, c->w);
    b->ref = buf_new(b, b->n_in * c->f * c->f);
    ref_upsample(b->in, c->c, c->h, c->w, c->f, b->ref);
    return resample(b, TM_OP_UPSAMPLE, x, c->f, 0);
}

static int build_d2s(struct built *b, const struct sr_case *c)
{
    int x = input(b, c->c * c->f * c->f, c->h, c->w);
    b->ref = buf_new(b, b->n_in);
    ref_depth2space(b->in, c->c, c->h, c->w, c->f, c->torch, b->ref);
    return resample(b, TM_OP_DEPTH2SPACE, x, c->f, c->torch);
}

static int build_s2d(struct built *b, const struct sr_case *c)
{
    int x = input(b, c->c, c->h * c->f, c->w * c->f);
    b->ref = buf_new(b, b->n_in);
    ref_space2depth(b->in, c->c, c->h, c->w, c->f, c->torch, b->ref);
    return resample(b, TM_OP_SPACE2DEPTH, x, c->f, c->torch);
}

/* s2d(d2s(x)) (c->stride 0) or d2s(s2d(x)) (1): both give x back. */
static int build_roundtrip(struct built *b, const struct sr_case *c)
{
    int d2s_first = c->stride == 0;
    int x = d2s_first ? input(b, c->c * c->f * c->f, c->h, c->w)
                      : input(b, c->c, c->h * c->f, c->w * c->f);
    b->ref = buf_new(b, b->n_in);
    memcpy(b->ref, b->in, sizeof(float) * (size_t)b->n_in);
    int y = resample(b, d2s_first ? TM_OP_DEPTH2SPACE : TM_OP_SPACE2DEPTH, x, c->f, c->torch);
    return resample(b, d2s_first ? TM_OP_SPACE2DEPTH : TM_OP_DEPTH2SPACE, y, c->f, c->torch);
}

/* Input k of a concat of n: the graph input first, and last when n > 3; a
 * repeat of input 1 at k = 3; else a selection of k + 1 channels, so that
 * channel counts differ. Sets its channels and reference data. */
static int concat_input(struct built *b, int x, int k, int n, const int *id, int *ch,
                        float **ref)
{
    if (k == 0 || (n > 3 && k == n - 1)) {
        ch[k] = b->g.tensors[x].c;
        ref[k] = b->in;
        return x;
    }
    if (k == 3) {
        ch[k] = ch[1];
        ref[k] = ref[1];
        return id[1];
    }
    ch[k] = k + 1;
    return select_conv(b, x, b->in, b->g.tensors[x].c, k + 1, k, &ref[k]);
}

static int build_concat(struct built *b, const struct sr_case *c)
{
    int x = input(b, c->c, c->h, c->w), id[TM_MAX_IN], ch[TM_MAX_IN], total = 0;
    float *src[TM_MAX_IN];
    long plane = (long)c->h * c->w;
    struct tm_node n = tm_node_new(TM_OP_CONCAT, x);
    for (int k = 0; k < c->f; k++) {
        n.in[k] = id[k] = concat_input(b, x, k, c->f, id, ch, src);
        total += ch[k];
    }
    b->ref = buf_new(b, total * plane);
    for (int k = 0, off = 0; k < c->f; off += ch[k], k++)
        memcpy(b->ref + off * plane, src[k], sizeof(float) * (size_t)(ch[k] * plane));
    return tm_graph_add(&b->g, &n);
}

static int build_conv(struct built *b, const struct sr_case *c)
{
    int x = input(b, c->c, c->h, c->w), oh, ow;
    return conv(b, c, x, b->in, c->c, c->h, c->w, &b->ref, &oh, &ow);
}

/* conv -> PReLU -> conv -> scale -> add the input -> depth2space: PReLU,
 * scale and add each write over their dying input. */
static int build_chain(struct built *b, const struct sr_case *c)
{
    int ch = c->c, h = c->h, w = c->w, oh, ow;
    long n = (long)ch * h * w;
    int x = input(b, ch, h, w);
    float *r1, *r2, *r3 = buf_new(b, n), *slopes = rand_buf(b, ch, 0.5f);
    int t1 = conv(b, c, x, b->in, ch, h, w, &r1, &oh, &ow);
    int t2 = unary(b, TM_OP_PRELU, t1, TM_ACT_NONE, 1.0f, param(b, slopes, 1, ch, 0, 0, 0));
    ref_prelu(r1, ch, (long)h * w, slopes, ch, r3);
    int t3 = conv(b, c, t2, r3, ch, h, w, &r2, &oh, &ow);
    int t4 = unary(b, TM_OP_SCALE, t3, TM_ACT_NONE, c->alpha, -1);
    struct tm_node add = tm_node_new(TM_OP_ADD, t4);
    add.in[1] = x;
    int t5 = tm_graph_add(&b->g, &add);
    for (long i = 0; i < n; i++) /* scale, then add: the references of both */
        r3[i] = r2[i] * c->alpha + b->in[i];
    b->ref = buf_new(b, n);
    ref_depth2space(r3, ch / 4, h, w, 2, c->torch, b->ref);
    int pairs[3][2] = { { t1, t2 }, { t3, t4 }, { t4, t5 } };
    memcpy(b->alias, pairs, sizeof pairs);
    b->n_alias = 3;
    return resample(b, TM_OP_DEPTH2SPACE, t5, 2, c->torch);
}

#define SCALE(nm, ch, hh, ww, a, al) \
    { .name = nm, .build = build_scale, .c = ch, .h = hh, .w = ww, .act = a, .alpha = al }
/* f: the factor; concat: the inputs; PReLU: the slopes */
#define RS(nm, fn, ch, hh, ww, ff, to) \
    { .name = nm, .build = fn, .c = ch, .h = hh, .w = ww, .f = ff, .torch = to }
/* stride 0: d2s first, 1: s2d first */
#define TRIP(nm, ch, ff, to, s2d_first) \
    { .name = nm, .build = build_roundtrip, .c = ch, .h = 13, .w = 7, .f = ff, .torch = to, \
      .stride = s2d_first }
#define CONV(nm, cin, hh, ww, co, kk, pd, st, dl, refl) \
    { .name = nm, .build = build_conv, .c = cin, .h = hh, .w = ww, .k = kk, .pad = pd, \
      .stride = st, .dil = dl, .reflect = refl, .cout = co }

static const struct sr_case cases[] = {
    SCALE("scale_13x7", 5, 13, 7, TM_ACT_NONE, 0.2f),
    SCALE("scale_lrelu_13x7", 5, 13, 7, TM_ACT_LRELU, -1.5f),
    SCALE("scale_relu_1x1", 1, 1, 1, TM_ACT_RELU, 3.0f),
    SCALE("scale_tanh_37x53", 3, 37, 53, TM_ACT_TANH, 2.5f),
    RS("prelu_shared_13x7", build_prelu, 6, 13, 7, 1, 0),
    RS("prelu_channel_13x7", build_prelu, 6, 13, 7, 6, 0),
    RS("prelu_channel_c1_37x53", build_prelu, 1, 37, 53, 1, 0),
    RS("upsample_f2_13x7", build_upsample, 3, 13, 7, 2, 0),
    RS("upsample_f3_13x7", build_upsample, 3, 13, 7, 3, 0),
    RS("upsample_f4_13x7", build_upsample, 2, 13, 7, 4, 0),
    RS("upsample_f2_1x1", build_upsample, 1, 1, 1, 2, 0),
    RS("d2s_tf_f2_13x7", build_d2s, 3, 13, 7, 2, 0),
    RS("d2s_torch_f2_13x7", build_d2s, 3, 13, 7, 2, 1),
    RS("d2s_tf_f3_13x7", build_d2s, 2, 13, 7, 3, 0),
    RS("d2s_torch_f3_13x7", build_d2s, 2, 13, 7, 3, 1),
    RS("d2s_tf_f4_13x7", build_d2s, 3, 13, 7, 4, 0),
    RS("d2s_torch_f4_13x7", build_d2s, 3, 13, 7, 4, 1),
    RS("d2s_tf_f8_5x3", build_d2s, 2, 5, 3, 8, 0),
    RS("d2s_torch_f8_5x3", build_d2s, 2, 5, 3, 8, 1),
    RS("s2d_tf_f2_13x7", build_s2d, 3, 13, 7, 2, 0),
    RS("s2d_torch_f2_13x7", build_s2d, 3, 13, 7, 2, 1),
    RS("s2d_tf_f3_13x7", build_s2d, 2, 13, 7, 3, 0),
    RS("s2d_torch_f3_13x7", build_s2d, 2, 13, 7, 3, 1),
    RS("s2d_tf_f4_13x7", build_s2d, 3, 13, 7, 4, 0),
    RS("s2d_torch_f4_13x7", build_s2d, 3, 13, 7, 4, 1),
    RS("s2d_tf_f8_5x3", build_s2d, 2, 5, 3, 8, 0),
    RS("s2d_torch_f8_5x3", build_s2d, 2, 5, 3, 8, 1),
    TRIP("roundtrip_d2s_s2d_tf_f3", 3, 3, 0, 0),
    TRIP("roundtrip_d2s_s2d_torch_f2", 3, 2, 1, 0),
    TRIP("roundtrip_d2s_s2d_torch_f8", 2, 8, 1, 0),
    TRIP("roundtrip_s2d_d2s_tf_f4", 2, 4, 0, 1),
    TRIP("roundtrip_s2d_d2s_torch_f3", 2, 3, 1, 1),
    RS("concat_2_13x7", build_concat, 3, 13, 7, 2, 0),
    RS("concat_3_13x7", build_concat, 5, 13, 7, 3, 0),
    RS("concat_10_13x7", build_concat, 7, 13, 7, 10, 0),
    RS("concat_16_5x3", build_concat, 4, 5, 3, 16, 0),
    CONV("conv_1x1_p0_13x7", 5, 13, 7, 7, 1, 0, 1, 1, 0),
    CONV("conv_5x5_p2_13x7", 5, 13, 7, 7, 5, 2, 1, 1, 0),
    CONV("conv_3x3_d2_p2_13x7", 5, 13, 7, 7, 3, 2, 1, 2, 0),
    CONV("conv_3x3_d3_p1_13x7", 5, 13, 7, 7, 3, 1, 1, 3, 0),
    CONV("conv_3x3_d2_p2_s2_13x7", 5, 13, 7, 7, 3, 2, 2, 2, 0),
    CONV("conv_3x3_d2_p2_reflect_37x53", 4, 37, 53, 3, 3, 2, 1, 2, 1),
    CONV("conv_3x3_d4_p4_c40_9x11", 6, 9, 11, 40, 3, 4, 1, 4, 0),
    CONV("conv_5x5_d2_p0_s3_c20_37x53", 8, 37, 53, 20, 5, 0, 3, 2, 0),
    { .name = "chain_conv_prelu_conv_scale_add_d2s", .build = build_chain, .c = 8, .h = 13,
      .w = 7, .k = 3, .pad = 1, .stride = 1, .dil = 1, .cout = 8, .alpha = 0.2f, .torch = 1 },
    { .name = "chain_dilated_tf", .build = build_chain, .c = 12, .h = 21, .w = 17, .k = 3,
      .pad = 2, .stride = 1, .dil = 2, .cout = 12, .alpha = -0.5f },
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

/* Builds case c; on failure prints why and returns -1. */
static int build(struct built *b, const struct sr_case *c)
{
    memset(b, 0, sizeof *b);
    tm_graph_init(&b->g);
    int y = c->build(b, c);
    b->g.output = y;
    char err[256];
    if (y < 0 || tm_graph_infer(&b->g, b->h, b->w, err, sizeof err)) {
        printf("FAIL %s: graph: %s\n", c->name, y < 0 ? "out of memory" : err);
        return -1;
    }
    b->n_out = (long)tm_value_numel(&b->g.tensors[y]);
    return 0;
}

static void built_free(struct built *b)
{
    tm_graph_free(&b->g);
    for (int i = 0; i < b->n_bufs; i++)
        free(b->bufs[i]);
}

/* ---- running and comparing ------------------------------------------------ */

/* Max |got - want|, infinite on a NaN; *scale gets max |want|. */
static double max_diff(const float *got, const float *want, long n, double *scale)
{
    double d = 0.0;
    *scale = 0.0;
    for (long i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        if (isnan(e))
            return INFINITY;
        d = e > d ? e : d;
        *scale = fabs(want[i]) > *scale ? fabs(want[i]) : *scale;
    }
    return d;
}

static tm_status run_graph(struct tm_backend *be, struct built *b, float *out)
{
    void *params = NULL, *plan = NULL;
    tm_status s = be->vt->params_upload(be, &b->g, &params);
    if (!s)
        s = be->vt->plan_create(be, &b->g, params, &plan);
    if (!s)
        s = be->vt->plan_run(be, plan, b->in, out, NULL);
    if (plan)
        be->vt->plan_destroy(be, plan);
    if (params)
        be->vt->params_free(be, params);
    return s;
}

/* Largest differences seen, by backend (0 cpu, 1 vulkan) and tolerance class. */
static double worst[2][2];

/* One backend against the reference; prints its part of the line. */
static int check_backend(int vk, tm_ctx *ctx, struct built *b)
{
    float *got = guarded(b->n_out);
    tm_status s = run_graph(ctx->backend, b, got + GUARD);
    double scale = 0.0, d = s ? INFINITY : max_diff(got + GUARD, b->ref, b->n_out, &scale);
    double tol = b->conv ? CONV_TOL * (scale > 1.0 ? scale : 1.0) : EXACT_TOL;
    int guard = guards_ok(got, b->n_out);
    if (s)
        printf(" | %s error: %s", vk ? "vk" : "cpu", tm_ctx_error(ctx));
    else
        printf(" | %s max %.2e%s", vk ? "vk" : "cpu", d, guard ? "" : " STRAY WRITE");
    worst[vk][b->conv] = d > worst[vk][b->conv] ? d : worst[vk][b->conv];
    free(got);
    return !s && d <= tol && guard;
}

/* The memory plan must put each pair of b->alias in one slot, or the case
 * does not test writing in place. */
static int alias_ok(struct built *b)
{
    int *slot_of = NULL;
    size_t *size = NULL;
    int ok = tm_graph_plan_memory(&b->g, &slot_of, &size) >= 0;
    for (int i = 0; ok && i < b->n_alias; i++)
        ok = slot_of[b->alias[i][0]] == slot_of[b->alias[i][1]];
    free(slot_of);
    free(size);
    printf(" | in-place %s", ok ? "yes" : "NO");
    return ok;
}

static void run_case(const struct sr_case *c, tm_ctx *cpu, tm_ctx *vk)
{
    struct built b;
    if (build(&b, c)) {
        built_free(&b);
        CHECK(0, "%s: does not build", c->name);
        return;
    }
    printf("%-38s %2dx%-2d -> %4ld", c->name, b.w, b.h, b.n_out);
    int ok = b.n_alias ? alias_ok(&b) : 1;
    ok &= check_backend(0, cpu, &b);
    if (vk)
        ok &= check_backend(1, vk, &b);
    printf(" %s\n", ok ? "ok" : "FAIL");
    CHECK(ok, "%s", c->name);
    built_free(&b);
}

/* ---- the tiled path ---------------------------------------------------------- */

/* A model around a graph of every new op, as tm_model_load would leave it. */
struct sr_model {
    struct tm_model m;
    struct built b;
};

static const struct sr_case tiled_convs[] = {
    CONV("c1", 3, 0, 0, 8, 3, 2, 1, 2, 1),   /* reflect, dilation 2 */
    CONV("c2", 8, 0, 0, 8, 3, 1, 1, 3, 0),   /* dilation 3 reaching past pad 1 */
    CONV("c3", 8, 0, 0, 12, 3, 2, 2, 2, 0),  /* stride 2, dilation 2 */
    CONV("c4", 20, 0, 0, 3, 1, 0, 1, 1, 0),
};

/* conv -> PReLU -> conv -> scale -> upsample -> conv -> concat -> d2s ->
 * s2d -> conv; no references (whole against tiled). */
static int sr_graph(struct built *b, int h, int w)
{
    float *r;
    int oh, ow, x = input(b, 3, h, w);
    const struct sr_case *c = tiled_convs;
    float *slopes = rand_buf(b, 8, 0.5f);
    int t = conv(b, &c[0], x, NULL, 3, h, w, &r, &oh, &ow);
    t = unary(b, TM_OP_PRELU, t, TM_ACT_NONE, 1.0f, param(b, slopes, 1, 8, 0, 0, 0));
    t = conv(b, &c[1], t, NULL, 8, oh, ow, &r, &oh, &ow);
    int s = unary(b, TM_OP_SCALE, t, TM_ACT_LRELU, 0.5f, -1);
    t = resample(b, TM_OP_UPSAMPLE, s, 2, 0);
    t = conv(b, &c[2], t, NULL, 8, 2 * oh, 2 * ow, &r, &oh, &ow);
    struct tm_node cat = tm_node_new(TM_OP_CONCAT, t);
    cat.in[1] = s;
    t = tm_graph_add(&b->g, &cat);
    t = resample(b, TM_OP_DEPTH2SPACE, t, 2, 0);
    t = resample(b, TM_OP_SPACE2DEPTH, t, 2, 1);
    return conv(b, &c[3], t, NULL, 20, oh, ow, &r, &oh, &ow);
}

static int sr_model_init(struct sr_model *sm, tm_ctx *ctx, int h, int w)
{
    memset(sm, 0, sizeof *sm);
    sm->m.ctx = ctx;
    tm_graph_init(&sm->b.g);
    sm->b.g.output = sr_graph(&sm->b, h, w);
    sm->m.graph = sm->b.g;
    return ctx->backend->vt->params_upload(ctx->backend, &sm->m.graph, &sm->m.dev_params);
}

static void sr_model_free(struct sr_model *sm)
{
    struct tm_backend *be = sm->m.ctx->backend;
    tm_tiled_free(&sm->m);
    if (sm->m.dev_params)
        be->vt->params_free(be, sm->m.dev_params);
    sm->b.g = sm->m.graph;
    built_free(&sm->b);
}

/* Tiled runs with tiles that do not divide the layers, the smallest tile
 * and one larger than the image, against the whole-image plan. */
static void test_tiled(tm_ctx *ctx, const char *tag)
{
    static const int tiles[] = { TM_TILED_MIN_TILE, 21, 1000 };
    const int h = 37, w = 45;
    struct sr_model sm;
    tm_status s = sr_model_init(&sm, ctx, h, w);
    char err[256] = "";
    if (!s && tm_graph_infer(&sm.m.graph, h, w, err, sizeof err))
        s = TM_ERR_INVALID;
    CHECK(!s, "tiled graph on %s: %s %s", tag, err, tm_ctx_error(ctx));
    size_t n = s ? 0 : tm_value_numel(&sm.m.graph.tensors[sm.m.graph.output]);
    float *ref = malloc(sizeof(float) * (n + 1)), *y = malloc(sizeof(float) * (n + 1));
    void *plan = NULL;
    struct tm_backend *be = ctx->backend;
    if (!s && !(s = be->vt->plan_create(be, &sm.m.graph, sm.m.dev_params, &plan)))
        s = be->vt->plan_run(be, plan, sm.b.in, ref, NULL);
    if (plan)
        be->vt->plan_destroy(be, plan);
    CHECK(!s, "whole-image run on %s: %s", tag, tm_ctx_error(ctx));
    for (int i = 0; i < 3 && !s; i++) {
        memset(y, 0xff, sizeof(float) * n); /* NaN: a sample never written shows */
        tm_status st = tm_tiled_run(&sm.m, sm.b.in, y, h, w, tiles[i], NULL);
        double scale, d = st ? INFINITY : max_diff(y, ref, (long)n, &scale);
        printf("tiled_sr_graph %-6s %dx%d tile %4d: max|diff| %.2e (scale %.2f)\n", tag, w, h,
               tiles[i], d, st ? 0.0 : scale);
        CHECK(!st && d <= CONV_TOL * (scale > 1.0 ? scale : 1.0), "tiled on %s, tile %d: %s",
              tag, tiles[i], st ? tm_ctx_error(ctx) : "differs");
        double *w1 = &worst[strcmp(tag, "cpu") != 0][1];
        *w1 = d > *w1 ? d : *w1;
    }
    free(ref), free(y);
    sr_model_free(&sm);
}

/* ---- main -------------------------------------------------------------------- */

static tm_ctx *open_ctx(const char *device, bool validate)
{
    char err[256];
    tm_ctx *ctx = NULL;
    struct tm_ctx_params p = { .device = device, .validate = validate };
    CHECK(tm_ctx_create(&p, &ctx, err, sizeof err) == TM_OK,
          "context on '%s' (a Vulkan device is required for Vulkan): %s", device, err);
    return ctx;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *vk_dev = getenv("TM_TEST_VK_DEVICE");
    setvbuf(stdout, NULL, _IOLBF, 0);
    tm_ctx *cpu = open_ctx("cpu", false);
    tm_ctx *vk = open_ctx(vk_dev && *vk_dev ? vk_dev : "vulkan", true);
    if (!cpu) {
        printf("%d passed, %d failed\n", n_pass, n_fail);
        return 1;
    }
    printf("cpu kernel: %s; vulkan device: %s\n", ((struct cpu_backend *)cpu->backend)->isa->name,
           vk ? tm_ctx_device(vk)->name : "NONE");
    for (int i = 0; i < N_CASES; i++)
        if (!filter || strstr(cases[i].name, filter))
            run_case(&cases[i], cpu, vk);
    if (!filter || strstr("tiled", filter)) {
        test_tiled(cpu, "cpu");
        if (vk)
            test_tiled(vk, "vulkan");
    }
    if (vk) {
        CHECK(tm_ctx_validation_messages(vk) == 0, "%d validation messages",
              tm_ctx_validation_messages(vk));
        tm_ctx_destroy(&vk);
    }
    tm_ctx_destroy(&cpu);
    printf("max |diff|: cpu exact %.2e conv %.2e; vulkan exact %.2e conv %.2e\n", worst[0][0],
           worst[0][1], worst[1][0], worst[1][1]);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
