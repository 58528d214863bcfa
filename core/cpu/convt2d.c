/* convt2d.c: transposed convolution as stride^2 ordinary GEMM convolutions.
 *
 * Output pixel oy receives tap ky when (oy + pad - ky) is a multiple of the
 * stride, from input row iy = (oy + pad - ky) / stride. All rows with the
 * same phase py = oy % stride use the same taps, ky = (py + pad) mod stride
 * + j*stride, and for oy = py + stride*gy the input row is gy + dy with
 * dy = (py + pad - ky) / stride (exact). So each phase is a stride-1 gather
 * convolution over its own sub-grid of the output: no scatter, no races,
 * and no multiplications by inserted zeros. */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

static int first_tap(int phase, int pad, int stride)
{
    return ((phase + pad) % stride + stride) % stride;
}

static int n_taps(int first, int k, int stride)
{
    return first < k ? (k - 1 - first) / stride + 1 : 0;
}

/* Row-major A (Cout x taps) and the tap table of phase (py, px). */
static void phase_taps(const struct tm_node *n, const struct tm_tensor *w, int py, int px,
                       float *arow, struct conv_gemm *g)
{
    int cin = (int)w->dims[0], cout = (int)w->dims[1];
    int kh = n->conv.kh, kw = n->conv.kw, s = n->conv.stride, pad = n->conv.pad;
    int fy = first_tap(py, pad, s), fx = first_tap(px, pad, s);
    int kk = 0;
    for (int ci = 0; ci < cin; ci++)
        for (int ky = fy; ky < kh; ky += s)
            for (int kx = fx; kx < kw; kx += s, kk++) {
                g->taps[3 * kk] = ci;
                g->taps[3 * kk + 1] = (py + pad - ky) / s;
                g->taps[3 * kk + 2] = (px + pad - kx) / s;
                for (int co = 0; co < cout; co++)
                    arow[(size_t)co * (size_t)g->k + (size_t)kk] =
                        w->data[(((size_t)ci * (size_t)cout + (size_t)co) * (size_t)kh +
                                 (size_t)ky) * (size_t)kw + (size_t)kx];
            }
}

static tm_status prepare_phase(struct cpu_backend *be, const struct tm_node *n,
                               const struct tm_tensor *w, int py, int px, struct conv_gemm *g)
{
    int cin = (int)w->dims[0], cout = (int)w->dims[1], s = n->conv.stride;
    int ty = n_taps(first_tap(py, n->conv.pad, s), n->conv.kh, s);
    int tx = n_taps(first_tap(px, n->conv.pad, s), n->conv.kw, s);
    *g = (struct conv_gemm){
        .isa = tm_gemm_isa_for(be->isa, cout), .m = cout, .k = cin * ty * tx,
        .stride = 1, .reflect = 0,
        .oy0 = py, .ox0 = px, .ostep = s,
    };
    tm_ctx *ctx = be->base.ctx;
    size_t asz = tm_gemm_packed_a_size(g->isa, g->m, g->k) * sizeof(float);
    g->a = tm_cpu_alloc(ctx, asz ? asz : sizeof(float), "packed convT weights");
    g->taps = tm_cpu_alloc(ctx, sizeof(int32_t) * (3 * (size_t)g->k + 1), "convT taps");
    size_t rsz = sizeof(float) * (size_t)g->m * (size_t)g->k;
    float *arow = tm_cpu_alloc(ctx, rsz ? rsz : sizeof(float), "convT weight staging");
    if (!g->a || !g->taps || !arow) {
        tm_cpu_free(arow);
        return TM_ERR_NOMEM;
    }
    phase_taps(n, w, py, px, arow, g);
    tm_gemm_pack_a(g->isa, g->a, arow, g->m, g->k);
    tm_cpu_free(arow);
    return TM_OK;
}

tm_status tm_cpu_convt2d_prepare(struct cpu_backend *be, const struct tm_node *n,
                                 const struct tm_tensor *w, struct cpu_node_params *np)
{
    int s = n->conv.stride;
    if (w->dims[2] != n->conv.kh || w->dims[3] != n->conv.kw)
        return tm_fail(be->base.ctx, TM_ERR_FORMAT, "%s: weight is not %dx%d",
                       n->label ? n->label : "convt2d", n->conv.kh, n->conv.kw);
    size_t bytes = sizeof(struct conv_gemm) * (size_t)s * (size_t)s;
    np->gemm = tm_cpu_alloc(be->base.ctx, bytes, "convT phases");
    if (!np->gemm)
        return TM_ERR_NOMEM;
    memset(np->gemm, 0, bytes);
    np->n_gemm = s * s;
    for (int py = 0; py < s; py++)
        for (int px = 0; px < s; px++) {
            tm_status st = prepare_phase(be, n, w, py, px, &np->gemm[py * s + px]);
            if (st)
                return st;
        }
    return TM_OK;
}
