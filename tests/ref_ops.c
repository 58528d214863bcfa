/* ref_ops.c: the obvious loops, in double, with no blocking or packing, so
 * they can be trusted by reading. Speed is irrelevant. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "ref_ops.h"

/* Input sample at padded coordinates; reflect mirrors without the edge. */
static double ref_at(const float *plane, int h, int w, int y, int x, int reflect)
{
    if (reflect) {
        if (y < 0) y = -y;
        if (y >= h) y = 2 * (h - 1) - y;
        if (x < 0) x = -x;
        if (x >= w) x = 2 * (w - 1) - x;
    }
    if (y < 0 || y >= h || x < 0 || x >= w)
        return 0.0;
    return plane[(long)y * w + x];
}

void ref_conv2d(const struct ref_conv *p, const float *in, float *out)
{
    int d = p->dil > 1 ? p->dil : 1;
    for (int co = 0; co < p->cout; co++)
        for (int oy = 0; oy < p->oh; oy++)
            for (int ox = 0; ox < p->ow; ox++) {
                double acc = p->b ? p->b[co] : 0.0;
                for (int ci = 0; ci < p->cin; ci++)
                    for (int ky = 0; ky < p->kh; ky++)
                        for (int kx = 0; kx < p->kw; kx++) {
                            double x = ref_at(in + (long)ci * p->ih * p->iw, p->ih, p->iw,
                                              oy * p->stride - p->pad + ky * d,
                                              ox * p->stride - p->pad + kx * d, p->reflect);
                            acc += x * p->w[(((long)co * p->cin + ci) * p->kh + ky) * p->kw + kx];
                        }
                out[((long)co * p->oh + oy) * p->ow + ox] = tm_act_apply(p->act, p->slope, (float)acc);
            }
}

void ref_convt2d(const struct ref_conv *p, const float *in, float *out)
{
    long n = (long)p->cout * p->oh * p->ow;
    double *acc = calloc((size_t)n, sizeof *acc);
    if (!acc)
        abort();
    for (int ci = 0; ci < p->cin; ci++)
        for (int iy = 0; iy < p->ih; iy++)
            for (int ix = 0; ix < p->iw; ix++) {
                double x = in[((long)ci * p->ih + iy) * p->iw + ix];
                for (int co = 0; co < p->cout; co++)
                    for (int ky = 0; ky < p->kh; ky++)
                        for (int kx = 0; kx < p->kw; kx++) {
                            int oy = iy * p->stride - p->pad + ky;
                            int ox = ix * p->stride - p->pad + kx;
                            if (oy < 0 || oy >= p->oh || ox < 0 || ox >= p->ow)
                                continue;
                            acc[((long)co * p->oh + oy) * p->ow + ox] +=
                                x * p->w[(((long)ci * p->cout + co) * p->kh + ky) * p->kw + kx];
                        }
            }
    for (int co = 0; co < p->cout; co++)
        for (long i = 0; i < (long)p->oh * p->ow; i++) {
            double v = acc[co * (long)p->oh * p->ow + i] + (p->b ? p->b[co] : 0.0);
            out[co * (long)p->oh * p->ow + i] = tm_act_apply(p->act, p->slope, (float)v);
        }
    free(acc);
}

void ref_norm(const float *in, int c, int h, int w, const float *gamma, const float *beta,
              const float *mean, const float *var, float eps, int act, float slope, float *out)
{
    long n = (long)h * w;
    for (int ch = 0; ch < c; ch++) {
        const float *x = in + ch * n;
        double m, v;
        if (mean) {
            m = mean[ch];
            v = var[ch];
        } else {
            double s = 0.0, q = 0.0;
            for (long i = 0; i < n; i++)
                s += x[i];
            m = s / (double)n;
            for (long i = 0; i < n; i++)
                q += (x[i] - m) * (x[i] - m);
            v = q / (double)n;
        }
        double g = gamma ? gamma[ch] : 1.0, b = beta ? beta[ch] : 0.0;
        for (long i = 0; i < n; i++) {
            double y = (x[i] - m) / sqrt(v + (double)eps) * g + b;
            out[ch * n + i] = tm_act_apply(act, slope, (float)y);
        }
    }
}

void ref_act(const float *in, long n, int act, float slope, float *out)
{
    for (long i = 0; i < n; i++)
        out[i] = tm_act_apply(act, slope, in[i]);
}

void ref_add(const float *a, const float *b, long n, int act, float slope, float *out)
{
    for (long i = 0; i < n; i++)
        out[i] = tm_act_apply(act, slope, a[i] + b[i]);
}

void ref_concat(const float *a, long na, const float *b, long nb, float *out)
{
    memcpy(out, a, sizeof(float) * (size_t)na);
    memcpy(out + na, b, sizeof(float) * (size_t)nb);
}

void ref_scale(const float *in, long n, float alpha, int act, float slope, float *out)
{
    for (long i = 0; i < n; i++)
        out[i] = tm_act_apply(act, slope, in[i] * alpha);
}

void ref_prelu(const float *in, int c, long hw, const float *w, int n_w, float *out)
{
    for (int ch = 0; ch < c; ch++)
        for (long i = 0; i < hw; i++) {
            float x = in[ch * hw + i], a = w[n_w == 1 ? 0 : ch];
            out[ch * hw + i] = x > 0.0f ? x : a * x;
        }
}

void ref_upsample(const float *in, int c, int h, int w, int f, float *out)
{
    long oh = (long)h * f, ow = (long)w * f;
    for (int ch = 0; ch < c; ch++)
        for (long y = 0; y < oh; y++)
            for (long x = 0; x < ow; x++)
                out[(ch * oh + y) * ow + x] = in[((long)ch * h + y / f) * w + x / f];
}

/* Deep channel of (space channel ch of c, sub-pixel dy, dx). */
static long deep(int ch, int c, int f, int dy, int dx, int torch)
{
    return torch ? ((long)ch * f + dy) * f + dx : ((long)dy * f + dx) * c + ch;
}

void ref_depth2space(const float *in, int c, int h, int w, int f, int torch, float *out)
{
    long ow = (long)w * f, oh = (long)h * f;
    for (int ch = 0; ch < c; ch++)
        for (int dy = 0; dy < f; dy++)
            for (int dx = 0; dx < f; dx++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        out[((long)ch * oh + (long)y * f + dy) * ow + (long)x * f + dx] =
                            in[(deep(ch, c, f, dy, dx, torch) * h + y) * w + x];
}

void ref_space2depth(const float *in, int c, int h, int w, int f, int torch, float *out)
{
    long iw = (long)w * f, ih = (long)h * f;
    for (int ch = 0; ch < c; ch++)
        for (long iy = 0; iy < ih; iy++)
            for (long ix = 0; ix < iw; ix++)
                out[(deep(ch, c, f, (int)(iy % f), (int)(ix % f), torch) * h + iy / f) * w +
                    ix / f] = in[((long)ch * ih + iy) * iw + ix];
}
