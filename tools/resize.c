/* resize.c: separable bicubic resampling (see resize.h). */
#include "resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CUBIC_A (-0.5)

static double cubic(double x)
{
    x = fabs(x);
    if (x < 1.0)
        return ((CUBIC_A + 2.0) * x - (CUBIC_A + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return (((x - 5.0) * x + 8.0) * x - 4.0) * CUBIC_A;
    return 0.0;
}

/* For each output index: the first source index, the tap count and ksize
 * weights (PIL's precompute_coeffs). */
struct taps {
    int ksize;
    int *first;
    int *count;
    double *w;
};

static int taps_make(struct taps *t, int in, int out)
{
    double scale = (double)in / out;
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * fscale;
    t->ksize = (int)ceil(support) * 2 + 1;
    t->first = malloc(sizeof *t->first * (size_t)out);
    t->count = malloc(sizeof *t->count * (size_t)out);
    t->w = calloc((size_t)out * (size_t)t->ksize, sizeof *t->w);
    if (!t->first || !t->count || !t->w)
        return -1;
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        int xmax = (int)(center + support + 0.5);
        if (xmin < 0)
            xmin = 0;
        if (xmax > in)
            xmax = in;
        int n = xmax - xmin;
        if (n > t->ksize)
            n = t->ksize;
        double *k = t->w + (size_t)o * t->ksize;
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            k[i] = cubic((i + xmin - center + 0.5) / fscale);
            sum += k[i];
        }
        if (sum != 0.0)
            for (int i = 0; i < n; i++)
                k[i] /= sum;
        t->first[o] = xmin;
        t->count[o] = n;
    }
    return 0;
}

static void taps_free(struct taps *t)
{
    free(t->first);
    free(t->count);
    free(t->w);
}

static float quantize(double v, int levels)
{
    if (levels <= 0)
        return (float)v;
    if (!(v > 0.0))
        return 0.0f;
    if (v >= 1.0)
        return 1.0f;
    return (float)(floor(v * levels + 0.5) / levels);
}

int resize_bicubic(const float *src, int sw, int sh, float *dst, int dw, int dh, int ch,
                   int levels)
{
    if (sw == dw && sh == dh) {
        memcpy(dst, src, sizeof *dst * (size_t)sw * sh * ch);
        return 0;
    }
    /* A pass whose size does not change is skipped (it would be the identity). */
    struct taps th = {0}, tv = {0};
    float *tmp = NULL;
    const float *mid = src;
    int rc = -1;
    if (sw != dw) {
        tmp = malloc(sizeof *tmp * (size_t)dw * sh * ch);
        if (!tmp || taps_make(&th, sw, dw))
            goto out;
        /* Horizontal: sw x sh -> dw x sh. */
        for (int y = 0; y < sh; y++) {
            const float *srow = src + (size_t)y * sw * ch;
            float *trow = tmp + (size_t)y * dw * ch;
            for (int x = 0; x < dw; x++) {
                const double *k = th.w + (size_t)x * th.ksize;
                for (int c = 0; c < ch; c++) {
                    double acc = 0.0;
                    for (int i = 0; i < th.count[x]; i++)
                        acc += k[i] * srow[(size_t)(th.first[x] + i) * ch + c];
                    trow[(size_t)x * ch + c] = quantize(acc, levels);
                }
            }
        }
        mid = tmp;
    }
    if (sh == dh) {
        memcpy(dst, mid, sizeof *dst * (size_t)dw * dh * ch);
    } else {
        if (taps_make(&tv, sh, dh))
            goto out;
        /* Vertical: dw x sh -> dw x dh. */
        for (int y = 0; y < dh; y++) {
            const double *k = tv.w + (size_t)y * tv.ksize;
            float *drow = dst + (size_t)y * dw * ch;
            for (size_t i = 0; i < (size_t)dw * ch; i++) {
                double acc = 0.0;
                for (int j = 0; j < tv.count[y]; j++)
                    acc += k[j] * mid[(size_t)(tv.first[y] + j) * dw * ch + i];
                drow[i] = quantize(acc, levels);
            }
        }
    }
    rc = 0;
out:
    free(tmp);
    taps_free(&th);
    taps_free(&tv);
    return rc;
}
