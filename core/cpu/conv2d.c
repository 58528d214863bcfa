/* conv2d.c: convolution as packed GEMM, C[Cout x pixels] = W[Cout x taps] *
 * im2col[taps x pixels]. The im2col panel is built per tile of output pixels
 * and per chunk of K, so it stays in L2 (a full im2col matrix at 1024^2
 * would take gigabytes). Padding (zero or reflect) is resolved while
 * packing, so the input is never copied into a padded buffer. The same
 * driver runs each output phase of a transposed convolution (convt2d.c). */
#include <string.h>

#include "cpu.h"

/* K per chunk: a chunk of the panel (kc x nc floats) and the A micro-panel
 * (kc x MR) stay cache resident while the C tile accumulates. */
#define KC_MAX 256
/* Output pixels per tile before splitting for parallelism. */
#define NC_TARGET 128

struct conv_job {
    const struct gemm_isa *isa;
    const struct conv_gemm *g;
    const struct cpu_tensor *in;
    struct cpu_tensor *out;
    int gh, gw;
    const float *bias;
    int act;
    float slope;
    struct conv_tiling t;
    struct cpu_scratch *scratch;
};

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }
static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* PyTorch ReflectionPad2d: mirror without repeating the edge (pad < n). */
static int mirror(int i, int n)
{
    if (i < 0)
        i = -i;
    if (i >= n)
        i = 2 * (n - 1) - i;
    return imax(0, imin(i, n - 1));
}

void tm_cpu_conv_grid(const struct conv_gemm *g, int oh, int ow, int *gh, int *gw)
{
    *gh = oh > g->oy0 ? cdiv(oh - g->oy0, g->ostep) : 0;
    *gw = ow > g->ox0 ? cdiv(ow - g->ox0, g->ostep) : 0;
}

void tm_cpu_conv_tiling(const struct gemm_isa *isa, int threads, int m, int k, int n,
                        struct conv_tiling *t)
{
    int nr = isa->nr, nmb = cdiv(m, isa->mr);
    int want = 4 * threads; /* tasks, so the dynamic schedule can balance */
    t->nc = imax(nr, NC_TARGET / nr * nr);
    if (cdiv(n, t->nc) < want)
        t->nc = imin(t->nc, imax(nr, cdiv(cdiv(n, want), nr) * nr));
    t->n_tiles = cdiv(n, t->nc);
    /* Too few pixel tiles (deep U-Net layers): split output channels too. */
    t->m_split = imin(nmb, imax(1, cdiv(want, t->n_tiles)));
    t->mb_per_split = cdiv(nmb, t->m_split);
    t->m_split = cdiv(nmb, t->mb_per_split);
    t->kc = k > 0 ? cdiv(k, cdiv(k, KC_MAX)) : 0;
}

/* n GEMM columns of one grid row: input row iy, columns ix0, ix0+s, ... */
static void pack_run(float *d, const struct conv_job *j, const float *plane, int iy, int ix0,
                     int n)
{
    int ih = j->in->h, iw = j->in->w, s = j->g->stride, reflect = j->g->reflect;
    if (iy < 0 || iy >= ih) {
        if (!reflect) {
            memset(d, 0, sizeof(float) * (size_t)n);
            return;
        }
        iy = mirror(iy, ih);
    }
    const float *row = plane + (size_t)iy * (size_t)iw;
    /* Columns [lo, hi) read inside the row; the rest is padding. */
    int lo = ix0 >= 0 ? 0 : cdiv(-ix0, s);
    int hi = iw > ix0 ? cdiv(iw - ix0, s) : 0;
    lo = imin(lo, n);
    hi = imax(lo, imin(hi, n));
    for (int x = 0; x < lo; x++)
        d[x] = reflect ? row[mirror(ix0 + x * s, iw)] : 0.0f;
    if (s == 1)
        memcpy(d + lo, row + ix0 + lo, sizeof(float) * (size_t)(hi - lo));
    else
        for (int x = lo; x < hi; x++)
            d[x] = row[ix0 + x * s];
    for (int x = hi; x < n; x++)
        d[x] = reflect ? row[mirror(ix0 + x * s, iw)] : 0.0f;
}

/* The im2col panel for taps [k0, k0+kn) and columns [n0, n0+nv): kn rows of
 * nc floats, zero past nv up to the next NR multiple. */
static void pack_b(const struct conv_job *j, float *dst, int k0, int kn, int n0, int nv)
{
    const struct conv_gemm *g = j->g;
    size_t plane_size = (size_t)j->in->h * (size_t)j->in->w;
    int tail = cdiv(nv, j->isa->nr) * j->isa->nr - nv;
    for (int kk = 0; kk < kn; kk++) {
        const int32_t *tap = g->taps + 3 * (k0 + kk);
        const float *plane = j->in->p + (size_t)tap[0] * plane_size;
        float *d = dst + (size_t)kk * (size_t)j->t.nc;
        int gy = n0 / j->gw, gx = n0 % j->gw;
        for (int p = 0; p < nv;) {
            int run = imin(j->gw - gx, nv - p);
            pack_run(d + p, j, plane, gy * g->stride + tap[1], gx * g->stride + tap[2], run);
            p += run;
            gy++;
            gx = 0;
        }
        memset(d + nv, 0, sizeof(float) * (size_t)tail);
    }
}

/* Bias, activation and placement of output channels [m0, m1) of a C tile. */
static void store_tile(const struct conv_job *j, const float *cbuf, int m0, int m1, int n0,
                       int nv)
{
    const struct conv_gemm *g = j->g;
    int ow = j->out->w, step = g->ostep;
    size_t plane_size = (size_t)j->out->h * (size_t)ow;
    for (int co = m0; co < m1; co++) {
        const float *crow = cbuf + (size_t)(co - m0) * (size_t)j->t.nc;
        float b = j->bias ? j->bias[co] : 0.0f;
        float *plane = j->out->p + (size_t)co * plane_size;
        if (step == 1 && j->gw == ow) { /* plain conv: the tile is one run */
            tm_cpu_bias_act(plane + n0, crow, (size_t)nv, b, j->act, j->slope);
            continue;
        }
        int gy = n0 / j->gw, gx = n0 % j->gw;
        for (int p = 0; p < nv;) {
            int run = imin(j->gw - gx, nv - p);
            float *d = plane + (size_t)(g->oy0 + gy * step) * (size_t)ow + g->ox0 + gx * step;
            for (int x = 0; x < run; x++)
                d[(size_t)x * (size_t)step] = tm_act_apply(j->act, j->slope, crow[p + x] + b);
            p += run;
            gy++;
            gx = 0;
        }
    }
}

/* One task: a tile of columns times a range of MR panels, all of K. */
static void conv_task(void *arg, int task, int thread)
{
    const struct conv_job *j = arg;
    const struct conv_gemm *g = j->g;
    int mr = j->isa->mr, nr = j->isa->nr, nc = j->t.nc;
    int n0 = (task / j->t.m_split) * nc, ms = task % j->t.m_split;
    int nv = imin(nc, j->gh * j->gw - n0);
    int mb0 = ms * j->t.mb_per_split;
    int mb1 = imin(cdiv(g->m, mr), mb0 + j->t.mb_per_split);
    float *bbuf = j->scratch[thread].b, *cbuf = j->scratch[thread].c;
    if (g->k == 0) /* a convT phase no tap reaches: bias only */
        memset(cbuf, 0, sizeof(float) * (size_t)(mb1 - mb0) * (size_t)mr * (size_t)nc);
    for (int k0 = 0; k0 < g->k; k0 += j->t.kc) {
        int kn = imin(j->t.kc, g->k - k0);
        pack_b(j, bbuf, k0, kn, n0, nv);
        for (int mb = mb0; mb < mb1; mb++) {
            const float *a = g->a + ((size_t)mb * (size_t)g->k + (size_t)k0) * (size_t)mr;
            float *c = cbuf + (size_t)(mb - mb0) * (size_t)mr * (size_t)nc;
            for (int s = 0; s < nv; s += nr)
                j->isa->kernel(kn, a, bbuf + s, nc, c + s, nc, k0 > 0);
        }
    }
    store_tile(j, cbuf, mb0 * mr, imin(g->m, mb1 * mr), n0, nv);
}

void tm_cpu_conv_gemm_run(struct cpu_backend *be, const struct conv_gemm *g,
                          const struct cpu_tensor *in, struct cpu_tensor *out,
                          const float *bias, int act, float slope,
                          struct cpu_scratch *scratch)
{
    struct conv_job j = {
        .isa = g->isa, .g = g, .in = in, .out = out,
        .bias = bias, .act = act, .slope = slope, .scratch = scratch,
    };
    tm_cpu_conv_grid(g, out->h, out->w, &j.gh, &j.gw);
    if (j.gh <= 0 || j.gw <= 0)
        return;
    tm_cpu_conv_tiling(g->isa, tm_pool_threads(be->pool), g->m, g->k, j.gh * j.gw, &j.t);
    tm_pool_run(be->pool, conv_task, &j, j.t.n_tiles * j.t.m_split);
}

tm_status tm_cpu_conv2d_prepare(struct cpu_backend *be, const struct tm_node *n,
                                const struct tm_tensor *w, struct cpu_node_params *np)
{
    int cout = (int)w->dims[0], cin = (int)w->dims[1];
    int kh = n->conv.kh, kw = n->conv.kw, pad = n->conv.pad, dil = n->conv.dil;
    if (w->dims[2] != kh || w->dims[3] != kw)
        return tm_fail(be->base.ctx, TM_ERR_FORMAT, "%s: weight is not %dx%d",
                       n->label ? n->label : "conv2d", kh, kw);
    struct conv_gemm *g = tm_cpu_alloc(be->base.ctx, sizeof *g, "conv descriptor");
    if (!g)
        return TM_ERR_NOMEM;
    memset(g, 0, sizeof *g);
    np->gemm = g;
    np->n_gemm = 1;
    *g = (struct conv_gemm){
        .isa = tm_gemm_isa_for(be->isa, cout), .m = cout, .k = cin * kh * kw,
        .stride = n->conv.stride,
        .reflect = n->conv.pad_mode == TM_PAD_REFLECT, .ostep = 1,
    };
    size_t asz = tm_gemm_packed_a_size(g->isa, g->m, g->k) * sizeof(float);
    g->a = tm_cpu_alloc(be->base.ctx, asz, "packed conv weights");
    g->taps = tm_cpu_alloc(be->base.ctx, sizeof(int32_t) * 3 * (size_t)g->k, "conv taps");
    if (!g->a || !g->taps)
        return TM_ERR_NOMEM;
    /* [Cout][Cin][KH][KW] is already A row-major with K = (ci, ky, kx).
     * Dilation only spreads the taps' offsets; packing takes any offset. */
    tm_gemm_pack_a(g->isa, g->a, w->data, g->m, g->k);
    int32_t *t = g->taps;
    for (int ci = 0; ci < cin; ci++)
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++) {
                *t++ = ci;
                *t++ = ky * dil - pad;
                *t++ = kx * dil - pad;
            }
    return TM_OK;
}
