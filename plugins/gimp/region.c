/* region.c: drawable pixels through the engine (region.h). */
#include "region.h"

#include <stdio.h>

const Babl *region_format(int channels)
{
    return babl_format(channels == 2 ? "Y'A float" : "R'G'B'A float");
}

tm_status region_translate(struct engine *e, gint32 drawable, const GeglRectangle *rect,
                           const struct plug_values *v, tm_progress_fn progress, void *priv,
                           float **px, int *channels, char *err, size_t errlen)
{
    int ch = engine_layer_channels(e, gimp_drawable_is_gray(drawable), err, errlen);
    if (!ch)
        return TM_ERR_INVALID;
    gsize n = (gsize)rect->width * (gsize)rect->height * (gsize)ch;
    gsize sc = (gsize)engine_info(e)->scale;
    float *in = g_try_new(float, n), *out = g_try_new(float, n * sc * sc);
    if (!in || !out) {
        g_free(in);
        g_free(out);
        snprintf(err, errlen, "out of memory for a %dx%d region", rect->width, rect->height);
        return TM_ERR_NOMEM;
    }
    GeglBuffer *buf = gimp_drawable_get_buffer(drawable);
    gegl_buffer_get(buf, rect, 1.0, region_format(ch), in, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
    g_object_unref(buf);
    struct engine_job job = {
        .in = in,
        .out = out,
        .width = rect->width,
        .height = rect->height,
        .channels = ch,
        .domains = v->domains,
        .blend = v->blend,
        .progress = progress,
        .progress_priv = priv,
    };
    tm_status s = engine_translate(e, &job, err, errlen);
    g_free(in);
    if (s) {
        g_free(out);
        return s;
    }
    *px = out;
    *channels = ch;
    return TM_OK;
}

void region_write(gint32 drawable, const GeglRectangle *rect, int channels, const float *px)
{
    GeglBuffer *shadow = gimp_drawable_get_shadow_buffer(drawable);
    gegl_buffer_set(shadow, rect, 0, region_format(channels), px, GEGL_AUTO_ROWSTRIDE);
    g_object_unref(shadow); /* flushes it to GIMP before the merge */
    gimp_drawable_merge_shadow(drawable, TRUE);
    gimp_drawable_update(drawable, rect->x, rect->y, rect->width, rect->height);
}
