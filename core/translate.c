/* translate.c: from caller pixels to the network's input and back.
 *
 * Pixels map linearly onto the model's value range (for the GAN generators
 * x/255*2-1 in and (y+1)/2 out, as their official test code), clamped and
 * rounded to the output type; super-resolution models make an output
 * `scale` times larger. The network needs
 * sides that are a multiple of the model's pad_multiple; the image is
 * extended at the right and bottom by mirroring (as ReflectionPad2d does,
 * repeated for extensions longer than the image) and cropped back. The
 * ResNet's padded sides are at least 8 so its innermost reflect padding has
 * room. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "tiled.h"
#include "tiled_overlap.h"

/* Beyond this a request is a mistake, not an image. */
#define MAX_SIDE 65536
#define MAX_PIXELS ((size_t)1 << 28)

static size_t sample_size(tm_sample_type t)
{
    return t == TM_U8 ? 1 : t == TM_U16 ? 2 : 4;
}

static size_t row_stride(const struct tm_image *im)
{
    return im->stride ? im->stride : (size_t)im->width * (size_t)im->channels * sample_size(im->type);
}

static float load_sample(const struct tm_image *im, int x, int y, int c)
{
    const uint8_t *row = (const uint8_t *)im->data + (size_t)y * row_stride(im);
    size_t i = (size_t)x * (size_t)im->channels + (size_t)c;
    switch (im->type) {
    case TM_U8: return row[i] / 255.0f;
    case TM_U16: return ((const uint16_t *)(const void *)row)[i] / 65535.0f;
    default: return ((const float *)(const void *)row)[i];
    }
}

static void store_sample(struct tm_image *im, int x, int y, int c, float v)
{
    uint8_t *row = (uint8_t *)im->data + (size_t)y * row_stride(im);
    size_t i = (size_t)x * (size_t)im->channels + (size_t)c;
    v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    switch (im->type) {
    case TM_U8: row[i] = (uint8_t)lrintf(v * 255.0f); break;
    case TM_U16: ((uint16_t *)(void *)row)[i] = (uint16_t)lrintf(v * 65535.0f); break;
    default: ((float *)(void *)row)[i] = v;
    }
}

static int has_alpha(const struct tm_image *im)
{
    return im->channels == 2 || im->channels == 4;
}

/* Mirror index into 0..n-1 with period 2n-2, the edge not repeated. */
static int mirror(int i, int n)
{
    if (n == 1)
        return 0;
    int p = 2 * n - 2;
    i %= p;
    return i < n ? i : p - i;
}

static tm_status check_image(tm_ctx *ctx, const struct tm_image *im, const char *what)
{
    if (!im || !im->data)
        return tm_fail(ctx, TM_ERR_INVALID, "%s image has no pixel data", what);
    if (im->width < 1 || im->height < 1)
        return tm_fail(ctx, TM_ERR_INVALID, "%s image is %dx%d: nothing to translate", what,
                       im->width, im->height);
    if (im->width > MAX_SIDE || im->height > MAX_SIDE ||
        (size_t)im->width * (size_t)im->height > MAX_PIXELS)
        return tm_fail(ctx, TM_ERR_INVALID, "%s image %dx%d is too large (at most %d per side, %zu pixels)",
                       what, im->width, im->height, MAX_SIDE, MAX_PIXELS);
    if (im->channels < 1 || im->channels > 4 || (unsigned)im->type > TM_F32)
        return tm_fail(ctx, TM_ERR_INVALID, "%s image: unsupported layout (%d channels)", what,
                       im->channels);
    if (im->stride && im->stride < (size_t)im->width * (size_t)im->channels * sample_size(im->type))
        return tm_fail(ctx, TM_ERR_INVALID, "%s image: stride %zu is shorter than a row", what,
                       im->stride);
    return TM_OK;
}

static tm_status check_pair(tm_model *m, const struct tm_image *in, const struct tm_image *out)
{
    tm_status s;
    if ((s = check_image(m->ctx, in, "input")) || (s = check_image(m->ctx, out, "output")))
        return s;
    int sc = m->info.scale;
    if ((int64_t)in->width * sc != out->width || (int64_t)in->height * sc != out->height) {
        if (sc == 1)
            return tm_fail(m->ctx, TM_ERR_INVALID, "output image is %dx%d, input %dx%d: sizes must match",
                           out->width, out->height, in->width, in->height);
        return tm_fail(m->ctx, TM_ERR_INVALID, "output image is %dx%d; this %dx model makes %lldx%lld "
                       "from a %dx%d input", out->width, out->height, sc,
                       (long long)in->width * sc, (long long)in->height * sc, in->width, in->height);
    }
    int in_color = in->channels - has_alpha(in), out_color = out->channels - has_alpha(out);
    if (in_color < m->info.input_nc && m->info.input_nc != 3)
        return tm_fail(m->ctx, TM_ERR_INVALID, "model takes %d-channel images, the input has %d",
                       m->info.input_nc, in_color);
    if (in_color > m->info.input_nc)
        return tm_fail(m->ctx, TM_ERR_INVALID, "model takes %d-channel images, the input has %d color channels",
                       m->info.input_nc, in_color);
    if (out_color != m->info.output_nc && !(m->info.output_nc == 1 && out_color == 3))
        return tm_fail(m->ctx, TM_ERR_INVALID, "model makes %d-channel images, the output has %d color channels",
                       m->info.output_nc, out_color);
    if (in->data == out->data && (in->channels != out->channels || in->type != out->type ||
                                  row_stride(in) != row_stride(out) || sc != 1))
        return tm_fail(m->ctx, TM_ERR_INVALID, "in-place translation needs identical layouts");
    return TM_OK;
}

/* A conditioned model's label: present, of the model's size, finite. */
static tm_status check_label(tm_model *m, const struct tm_translate_params *params)
{
    int want = m->info.label_size, have = params && params->label ? params->label_size : 0;
    if (!want && !have)
        return TM_OK;
    if (!want)
        return tm_fail(m->ctx, TM_ERR_INVALID, "this %s model takes no label", m->info.arch);
    if (!have)
        return tm_fail(m->ctx, TM_ERR_INVALID, "this model needs a target label of %d values (domains: %s)",
                       want, tm_model_meta(m, "domains"));
    if (have != want)
        return tm_fail(m->ctx, TM_ERR_INVALID, "the label has %d values, the model takes %d", have, want);
    for (int i = 0; i < want; i++)
        if (!isfinite(params->label[i]))
            return tm_fail(m->ctx, TM_ERR_INVALID, "label value %d is not a finite number", i + 1);
    return TM_OK;
}

static tm_status check_smoothing(tm_model *m, const struct tm_translate_params *params)
{
    float s = params ? params->smoothing : 0.0f;
    if (s >= 0.0f && s < 1.0f)
        return TM_OK;
    return tm_fail(m->ctx, TM_ERR_INVALID,
                   "smoothing %g is not in [0, 1): 0 uses each image's own norm statistics, "
                   "values towards 1 carry more of the previous images'", (double)s);
}

/* Whether this run's carried statistics start afresh: after a reset, or
 * when the padded size or the path (whole image or tiles, each with its own
 * statistics) changed since the last run. Unsmoothed runs leave the
 * statistics alone, so the request waits for the next smoothed one. */
static bool stats_fresh(tm_model *m, int ph, int pw, bool tiled)
{
    if (ph != m->stats_h || pw != m->stats_w || tiled != m->stats_tiled)
        m->reset_stats = true;
    m->stats_h = ph;
    m->stats_w = pw;
    m->stats_tiled = tiled;
    return m->reset_stats;
}

/* The label tiled over the image, as the official code's c.repeat(). */
static void pack_label(const tm_model *m, const float *label, float *x, int ph, int pw)
{
    size_t plane = (size_t)ph * (size_t)pw;
    float *dst = x + (size_t)m->info.input_nc * plane;
    for (int c = 0; c < m->info.label_size; c++)
        for (size_t i = 0; i < plane; i++)
            *dst++ = label[c];
}

/* CHW planes of the padded input in the model's range; gray feeds every
 * model channel. */
static void pack_input(const tm_model *m, const struct tm_image *in, float *x, int ph, int pw)
{
    int color = in->channels - has_alpha(in);
    float lo = m->info.in_lo, span = m->info.in_hi - m->info.in_lo;
    for (int c = 0; c < m->info.input_nc; c++) {
        int src_c = color == 1 ? 0 : c;
        float *plane = x + (size_t)c * (size_t)ph * (size_t)pw;
        for (int y = 0; y < ph; y++) {
            int sy = mirror(y, in->height);
            for (int xx = 0; xx < pw; xx++)
                plane[(size_t)y * (size_t)pw + (size_t)xx] =
                    lo + load_sample(in, mirror(xx, in->width), sy, src_c) * span;
        }
    }
}

/* The input's alpha at output pixel (x, r): itself at scale 1, else
 * bilinear between pixel centres (clamped at the edges). */
static float alpha_at(const struct tm_image *in, int x, int r, int scale)
{
    int a = in->channels - 1;
    if (scale == 1)
        return load_sample(in, x, r, a);
    float fx = (x + 0.5f) / scale - 0.5f, fy = (r + 0.5f) / scale - 0.5f;
    fx = fx < 0 ? 0 : fx > in->width - 1 ? (float)(in->width - 1) : fx;
    fy = fy < 0 ? 0 : fy > in->height - 1 ? (float)(in->height - 1) : fy;
    int x0 = (int)fx, y0 = (int)fy;
    int x1 = x0 + 1 < in->width ? x0 + 1 : x0, y1 = y0 + 1 < in->height ? y0 + 1 : y0;
    float tx = fx - x0, ty = fy - y0;
    float top = load_sample(in, x0, y0, a) * (1 - tx) + load_sample(in, x1, y0, a) * tx;
    float bot = load_sample(in, x0, y1, a) * (1 - tx) + load_sample(in, x1, y1, a) * tx;
    return top * (1 - ty) + bot * ty;
}

/* y is the network output over the padded input, oh x ow. */
static void unpack_output(const tm_model *m, const float *y, int oh, int ow,
                          const struct tm_image *in, struct tm_image *out)
{
    int color = out->channels - has_alpha(out);
    float lo = m->info.out_lo, inv = 1.0f / (m->info.out_hi - m->info.out_lo);
    for (int r = 0; r < out->height; r++) {
        for (int x = 0; x < out->width; x++) {
            for (int c = 0; c < color; c++) {
                int src_c = m->info.output_nc == 1 ? 0 : c;
                float v = y[((size_t)src_c * (size_t)oh + (size_t)r) * (size_t)ow + (size_t)x];
                store_sample(out, x, r, c, (v - lo) * inv);
            }
            if (has_alpha(out))
                store_sample(out, x, r, color,
                             has_alpha(in) ? alpha_at(in, x, r, m->info.scale) : 1.0f);
        }
    }
}

tm_status tm_model_plan(tm_model *m, int ph, int pw)
{
    struct tm_backend *be = m->ctx->backend;
    if (m->plan && m->plan_h == ph && m->plan_w == pw)
        return TM_OK;
    if (m->plan) {
        be->vt->plan_destroy(be, m->plan);
        m->plan = NULL;
    }
    char err[256];
    tm_status s = tm_graph_infer(&m->graph, ph, pw, err, sizeof err);
    if (s)
        return tm_fail(m->ctx, s, "image %dx%d (padded): %s", pw, ph, err);
    if ((s = be->vt->plan_create(be, &m->graph, m->dev_params, &m->plan)))
        return s;
    m->plan_h = ph;
    m->plan_w = pw;
    return TM_OK;
}

/* The padded side: a multiple of the network's stride, and no smaller than
 * it can take (tiny images are mirrored out to that size). */
static int padded_side(const tm_model *m, int v)
{
    int mult = m->info.pad_multiple;
    v = (v + mult - 1) / mult * mult;
    return v < m->min_side ? m->min_side : v;
}

/* Automatic choice: tile when the whole-image activations would take more
 * than half of a Vulkan device's memory. On the CPU both paths hold every
 * tensor in the same host memory, so tiling gains nothing there. Decided
 * once per padded size (video calls this for every frame). */
static tm_status want_tiles(tm_model *m, int ph, int pw, int requested, int *tile)
{
    *tile = requested > 0 ? (requested < TM_TILED_MIN_TILE ? TM_TILED_MIN_TILE : requested) : -1;
    const struct tm_device_info *dev = tm_ctx_device(m->ctx);
    if (requested != 0 || dev->kind == TM_DEVICE_CPU || !dev->memory)
        return TM_OK;
    if (m->auto_h == ph && m->auto_w == pw) {
        *tile = m->auto_tile;
        return TM_OK;
    }
    char err[256];
    uint64_t need;
    tm_status s = tm_graph_activation_bytes(&m->graph, ph, pw, &need, err, sizeof err);
    if (s)
        return tm_fail(m->ctx, s, "image %dx%d (padded): %s", pw, ph, err);
    if (need > dev->memory / 2) {
        *tile = 0; /* tiled, sizes chosen from the device memory */
        TM_INFO(m->ctx, "%dx%d needs %llu MiB of activations: running in tiles", pw, ph,
                (unsigned long long)(need >> 20));
    }
    m->auto_h = ph;
    m->auto_w = pw;
    m->auto_tile = *tile;
    return TM_OK;
}

/* The whole image through the backend's plan, or through the tiled path,
 * which replaces the plan (its memory is what tiling saves). */
static tm_status run_network(tm_model *m, const float *x, float *y, int ph, int pw, int tile,
                             const struct tm_run_opts *opts)
{
    struct tm_backend *be = m->ctx->backend;
    if (tile < 0) {
        tm_status s = tm_model_plan(m, ph, pw);
        return s ? s : be->vt->plan_run(be, m->plan, x, y, opts);
    }
    if (!tm_graph_has_image_stats(&m->graph))
        return tm_overlap_run(m, x, y, ph, pw, tile, opts);
    if (m->plan) {
        be->vt->plan_destroy(be, m->plan);
        m->plan = NULL;
    }
    return tm_tiled_run(m, x, y, ph, pw, tile, opts);
}

tm_status tm_translate(tm_model *m, const struct tm_image *in, struct tm_image *out,
                       const struct tm_translate_params *params)
{
    tm_status s = check_pair(m, in, out);
    if (s || (s = check_label(m, params)) || (s = check_smoothing(m, params)))
        return s;
    int ph = padded_side(m, in->height);
    int pw = padded_side(m, in->width);
    int tile;
    if ((s = want_tiles(m, ph, pw, params ? params->tile : 0, &tile)))
        return s;
    size_t plane = (size_t)ph * (size_t)pw, sc = (size_t)m->info.scale;
    float *x = malloc(plane * (size_t)(m->info.input_nc + m->info.label_size) * sizeof *x);
    float *y = malloc(plane * sc * sc * (size_t)m->info.output_nc * sizeof *y);
    if (!x || !y) {
        s = tm_fail(m->ctx, TM_ERR_NOMEM, "out of memory for a %dx%d image", pw, ph);
    } else {
        struct tm_run_opts opts = { 0 };
        if (params) {
            opts.progress = params->progress;
            opts.progress_priv = params->progress_priv;
            opts.cancel = params->cancel;
            opts.smoothing = params->smoothing;
        }
        opts.reset_stats = stats_fresh(m, ph, pw, tile >= 0);
        pack_input(m, in, x, ph, pw);
        if (m->info.label_size)
            pack_label(m, params->label, x, ph, pw);
        s = run_network(m, x, y, ph, pw, tile, &opts);
        if (opts.smoothing > 0.0f)
            m->reset_stats = s != TM_OK;
        if (!s)
            unpack_output(m, y, ph * (int)sc, pw * (int)sc, in, out);
    }
    free(x);
    free(y);
    return s;
}
