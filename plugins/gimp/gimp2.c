/*
 * gimp2.c: the GIMP 2.10 host. Registers plug-in-transmute, takes its
 * parameters in each run mode, and replaces the drawable's selection (or a
 * copy of the layer above it) with the translation as one undo step, or
 * opens the result as a new image. A super-resolution model (scale > 1)
 * scales the whole layer instead, or makes the new image. The model is
 * loaded and run before anything is written, so a failure leaves the image
 * untouched and returns its message to the caller.
 */
#include <libgimp/gimp.h>
#include <stdio.h>
#include <string.h>

#include "dialog.h"
#include "engine.h"
#include "region.h"
#include "values.h"

#define N_PARAMS 8
#define N_RETURNS 1

static void query(void);
static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals,
                GimpParam **return_vals);

static const GimpPlugInInfo PLUG_IN_INFO = {NULL, NULL, query, run};

MAIN()

static void query(void)
{
    static const GimpParamDef args[N_PARAMS] = {
        {GIMP_PDB_INT32, "run-mode",
         "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1), RUN-WITH-LAST-VALS (2) }"},
        {GIMP_PDB_IMAGE, "image", "Input image"},
        {GIMP_PDB_DRAWABLE, "drawable", "Input drawable"},
        {GIMP_PDB_STRING, "model", "Model file (.safetensors)"},
        {GIMP_PDB_FLOAT, "blend", "Mix with the original, 0..1: 1 the translation, 0 the original"},
        {GIMP_PDB_INT32, "output-mode",
         "{ REPLACE (0), NEW-LAYER (1), NEW-IMAGE (2) }; super-resolution models: 0 scales "
         "the whole layer by the model's factor, 1 is refused"},
        {GIMP_PDB_STRING, "domains",
         "Multi-domain (StarGAN) models: target domains, comma-separated; \"\" for other models"},
        {GIMP_PDB_STRING, "device",
         "\"\" automatic, \"cpu\", \"vulkan\", a Vulkan device index or part of its name"},
    };
    static const GimpParamDef rets[N_RETURNS] = {
        {GIMP_PDB_IMAGE, "new-image", "The image output-mode 2 made; -1 in the other modes"},
    };
    gimp_install_procedure(
        PLUG_PROC,
        "Translate the image with a GAN generator (CycleGAN, pix2pix, StarGAN), or upscale it "
        "with a super-resolution network",
        "Runs a Transmute .safetensors model on the selection (its bounding box is what the "
        "model sees) and replaces it, adds the result as a new layer above, or opens it as a "
        "new image. A super-resolution model (output larger than its input) scales the whole "
        "layer by its factor (the canvas grows to hold it), or makes a new image of the "
        "selection upscaled. Alpha is kept (resized with the image).",
        "Transmute", "MIT", "2026", "Transmute (GAN translation, super-resolution)...", "RGB*, GRAY*",
        GIMP_PLUGIN, N_PARAMS, N_RETURNS, args, rets);
    gimp_plugin_menu_register(PLUG_PROC, "<Image>/Filters/Generic");
}

static gboolean copy_string(char *dst, size_t size, const char *src, const char *what,
                            char *err, size_t errlen)
{
    if (g_strlcpy(dst, src ? src : "", size) < size)
        return TRUE;
    snprintf(err, errlen, "the %s is longer than %zu bytes", what, size - 1);
    return FALSE;
}

static GimpPDBStatusType from_params(gint nparams, const GimpParam *param, struct plug_values *v,
                                     char *err, size_t errlen)
{
    if (nparams != N_PARAMS) {
        snprintf(err, errlen, "%s takes %d parameters, not %d", PLUG_PROC, N_PARAMS, nparams);
        return GIMP_PDB_CALLING_ERROR;
    }
    v->blend = param[4].data.d_float;
    v->output = param[5].data.d_int32;
    if (!(v->blend >= 0.0 && v->blend <= 1.0)) {
        snprintf(err, errlen, "blend must be 0..1, not %g", v->blend);
        return GIMP_PDB_CALLING_ERROR;
    }
    if (v->output != OUTPUT_REPLACE && v->output != OUTPUT_NEW_LAYER &&
        v->output != OUTPUT_NEW_IMAGE) {
        snprintf(err, errlen, "output-mode must be 0 (replace), 1 (new layer) or 2 (new image), "
                              "not %d", v->output);
        return GIMP_PDB_CALLING_ERROR;
    }
    if (!copy_string(v->model, sizeof v->model, param[3].data.d_string, "model path", err, errlen) ||
        !copy_string(v->domains, sizeof v->domains, param[6].data.d_string, "domain list", err,
                     errlen) ||
        !copy_string(v->device, sizeof v->device, param[7].data.d_string, "device", err, errlen))
        return GIMP_PDB_CALLING_ERROR;
    return GIMP_PDB_SUCCESS;
}

/* Values stored by an older build (another size) are ignored. */
static gboolean last_values(struct plug_values *v)
{
    return gimp_get_data_size(PLUG_PROC) == sizeof *v && gimp_get_data(PLUG_PROC, v);
}

static GimpPDBStatusType get_values(GimpRunMode mode, gint nparams, const GimpParam *param,
                                    gint32 drawable, struct plug_values *v, char *err,
                                    size_t errlen)
{
    GimpPDBStatusType status;
    switch (mode) {
    case GIMP_RUN_INTERACTIVE:
        /* A script may open the dialog preset: a model given wins over the
         * last values (the menu passes none). */
        last_values(v);
        if (nparams == N_PARAMS && param[3].data.d_string && param[3].data.d_string[0] &&
            (status = from_params(nparams, param, v, err, errlen)) != GIMP_PDB_SUCCESS)
            return status;
        return dialog_run(drawable, v) ? GIMP_PDB_SUCCESS : GIMP_PDB_CANCEL;
    case GIMP_RUN_NONINTERACTIVE:
        return from_params(nparams, param, v, err, errlen);
    case GIMP_RUN_WITH_LAST_VALS:
        if (last_values(v))
            return GIMP_PDB_SUCCESS;
        snprintf(err, errlen, "no last values yet: run Transmute from its dialog first");
        return GIMP_PDB_EXECUTION_ERROR;
    default:
        snprintf(err, errlen, "unknown run mode %d", (int)mode);
        return GIMP_PDB_CALLING_ERROR;
    }
}

/* What GIMP cannot write to, found before any work is done. */
static gboolean check_target(gint32 drawable, int output, char *err, size_t errlen)
{
    gchar *name = gimp_item_get_name(drawable);
    gboolean ok = FALSE;
    if (gimp_drawable_is_indexed(drawable))
        snprintf(err, errlen, "indexed images are not supported: convert the image to RGB or "
                              "grayscale (Image > Mode)");
    else if (gimp_item_is_group(drawable))
        snprintf(err, errlen, "'%s' is a layer group: choose a layer", name);
    else if (output == OUTPUT_NEW_LAYER && !gimp_item_is_layer(drawable))
        snprintf(err, errlen, "a new layer needs a layer to start from, not a channel or mask");
    else if (output == OUTPUT_REPLACE && gimp_item_get_lock_content(drawable))
        snprintf(err, errlen, "the pixels of '%s' are locked", name);
    else
        ok = TRUE;
    g_free(name);
    return ok;
}

/* Every op reports; GIMP's progress bar needs far fewer updates. */
static bool progress(void *priv, double fraction)
{
    double *last = priv;
    if (fraction - *last >= 0.01 || fraction >= 1.0) {
        gimp_progress_update(fraction);
        *last = fraction;
    }
    return true;
}

/* A copy of the layer (offsets, mode, opacity) right above it. */
static gint32 add_layer(gint32 image, gint32 layer, const char *model_name)
{
    gint32 copy = gimp_layer_new_from_drawable(layer, image);
    char *name = g_strdup_printf("Transmute: %s", model_name);
    gimp_item_set_name(copy, name);
    g_free(name);
    gimp_image_insert_layer(image, copy, gimp_item_get_parent(layer),
                            gimp_image_get_item_position(image, layer));
    return copy;
}

/* What a super-resolution model can do with the drawable: scale a whole
 * layer (a selection cannot be kept: it would stay at the old scale), or
 * make a new image. Checked with the model loaded, before any work. */
static gboolean check_scaled(gint32 image, gint32 drawable, int output,
                             const struct engine *e, char *err, size_t errlen)
{
    int sc = engine_info(e)->scale;
    const char *m = engine_name(e);
    if (sc == 1 || output == OUTPUT_NEW_IMAGE)
        return TRUE;
    if (output == OUTPUT_NEW_LAYER)
        snprintf(err, errlen, "model '%s' is a %dx super-resolution model: its result does not "
                 "fit a new layer of the same size; choose output-mode 0 (scale the layer) or "
                 "2 (new image)", m, sc);
    else if (!gimp_item_is_layer(drawable))
        snprintf(err, errlen, "model '%s' is a %dx super-resolution model: it scales a layer, "
                 "not a channel or mask; choose output-mode 2 (new image)", m, sc);
    else if (!gimp_selection_is_empty(image))
        snprintf(err, errlen, "model '%s' is a %dx super-resolution model: it scales the whole "
                 "layer and cannot keep to a selection; remove the selection (Select > None), "
                 "or choose output-mode 2 (new image) to upscale the selection alone", m, sc);
    else if (gimp_item_get_lock_position(drawable))
        snprintf(err, errlen, "model '%s' would scale the layer, whose position and size are "
                 "locked", m);
    else if ((gint64)gimp_drawable_width(drawable) * sc > GIMP_MAX_IMAGE_SIZE ||
             (gint64)gimp_drawable_height(drawable) * sc > GIMP_MAX_IMAGE_SIZE)
        snprintf(err, errlen, "model '%s' would make the layer larger than GIMP's limit of %d "
                 "pixels a side", m, GIMP_MAX_IMAGE_SIZE);
    else
        return TRUE;
    return FALSE;
}

/* Grows the canvas right and down (nothing moves) to hold the layer. */
static void grow_canvas(gint32 image, gint32 layer)
{
    gint ox, oy;
    gimp_drawable_offsets(layer, &ox, &oy);
    gint w = gimp_image_width(image), h = gimp_image_height(image);
    gint need_w = MAX(w, ox + gimp_drawable_width(layer));
    gint need_h = MAX(h, oy + gimp_drawable_height(layer));
    if (need_w > w || need_h > h)
        gimp_image_resize(image, need_w, need_h, 0, 0);
}

/* The whole layer scale times larger, its offsets too (scaled from the
 * image's origin, as Image > Scale Image places layers), then filled with
 * the result. The resampling only matters for a layer mask: the pixels are
 * all overwritten. */
static void store_scaled(gint32 image, gint32 layer, int scale, const GeglRectangle *rect,
                         int channels, const float *px)
{
    GeglRectangle all = {0, 0, rect->width * scale, rect->height * scale};
    gimp_image_undo_group_start(image);
    gimp_context_push();
    gimp_context_set_interpolation(GIMP_INTERPOLATION_LINEAR);
    gimp_layer_scale(layer, all.width, all.height, FALSE);
    gimp_context_pop();
    grow_canvas(image, layer);
    region_write(layer, &all, channels, px);
    gimp_image_undo_group_end(image);
}

/* The new image's layer type: the drawable's colour model, with alpha when
 * it has some. */
static GimpImageType new_layer_type(gint32 drawable)
{
    gboolean alpha = gimp_drawable_has_alpha(drawable);
    if (gimp_drawable_is_gray(drawable))
        return alpha ? GIMP_GRAYA_IMAGE : GIMP_GRAY_IMAGE;
    return alpha ? GIMP_RGBA_IMAGE : GIMP_RGB_IMAGE;
}

/* A new image of the result (the source image is not touched): the
 * source's precision, resolution and colour profile, as the pixels are in
 * its colour space. Shown in a display when display is set; returns its ID. */
static gint32 store_new_image(gint32 image, gint32 drawable, const char *name,
                              const GeglRectangle *rect, int scale, int channels,
                              const float *px, gboolean display)
{
    gint w = rect->width * scale, h = rect->height * scale;
    gint32 img = gimp_image_new_with_precision(w, h, gimp_drawable_is_gray(drawable) ? GIMP_GRAY
                                                                                   : GIMP_RGB,
                                               gimp_image_get_precision(image));
    gimp_image_undo_disable(img);
    gdouble xres, yres;
    if (gimp_image_get_resolution(image, &xres, &yres))
        gimp_image_set_resolution(img, xres, yres);
    GimpColorProfile *profile = gimp_image_get_color_profile(image);
    if (profile) {
        gimp_image_set_color_profile(img, profile);
        g_object_unref(profile);
    }
    char *layer_name = g_strdup_printf("Transmute: %s", name);
    gint32 layer = gimp_layer_new(img, layer_name, w, h, new_layer_type(drawable), 100.0,
                                  GIMP_LAYER_MODE_NORMAL);
    g_free(layer_name);
    gimp_image_insert_layer(img, layer, -1, 0);
    GeglBuffer *buf = gimp_drawable_get_buffer(layer);
    gegl_buffer_set(buf, GEGL_RECTANGLE(0, 0, w, h), 0, region_format(channels), px,
                    GEGL_AUTO_ROWSTRIDE);
    g_object_unref(buf); /* flushes it to GIMP */
    gimp_image_undo_enable(img);
    if (display)
        gimp_display_new(img);
    return img;
}

/* Writes the result where v->output says; the new image's ID, or -1. */
static gint32 store(gint32 image, gint32 drawable, const struct plug_values *v,
                    const struct engine *e, const GeglRectangle *rect, int channels,
                    const float *px, gboolean display)
{
    int sc = engine_info(e)->scale;
    if (v->output == OUTPUT_NEW_IMAGE)
        return store_new_image(image, drawable, engine_name(e), rect, sc, channels, px, display);
    if (sc != 1) {
        store_scaled(image, drawable, sc, rect, channels, px);
        return -1;
    }
    gimp_image_undo_group_start(image);
    gint32 target = v->output == OUTPUT_NEW_LAYER ? add_layer(image, drawable, engine_name(e))
                                                  : drawable;
    region_write(target, rect, channels, px);
    gimp_image_undo_group_end(image);
    return -1;
}

/* *new_image gets the image output-mode 2 made (shown when display is
 * set), else -1. */
static GimpPDBStatusType apply(gint32 image, gint32 drawable, const struct plug_values *v,
                               gboolean display, gint32 *new_image, char *err, size_t errlen)
{
    *new_image = -1;
    if (!check_target(drawable, v->output, err, errlen))
        return GIMP_PDB_EXECUTION_ERROR;
    struct engine *e = engine_open(v->model, v->device, err, errlen);
    if (!e)
        return GIMP_PDB_EXECUTION_ERROR;
    GeglRectangle rect;
    tm_status s = TM_OK;
    if (!check_scaled(image, drawable, v->output, e, err, errlen)) {
        s = TM_ERR_INVALID;
    } else if (gimp_drawable_mask_intersect(drawable, &rect.x, &rect.y, &rect.width,
                                            &rect.height)) {
        gimp_progress_init_printf("Transmute: %s", engine_name(e));
        double last = 0.0;
        float *px = NULL;
        int channels = 0;
        s = region_translate(e, drawable, &rect, v, progress, &last, &px, &channels, err, errlen);
        if (!s)
            *new_image = store(image, drawable, v, e, &rect, channels, px, display);
        g_free(px);
    }
    engine_close(&e);
    return s ? GIMP_PDB_EXECUTION_ERROR : GIMP_PDB_SUCCESS;
}

static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals,
                GimpParam **return_vals)
{
    static GimpParam ret[2];
    static char err[1024];
    gint32 new_image = -1;
    struct plug_values v = PLUG_VALUES_DEFAULT;
    GimpPDBStatusType status = GIMP_PDB_CALLING_ERROR;
    GimpRunMode mode = nparams > 0 ? (GimpRunMode)param[0].data.d_int32 : GIMP_RUN_NONINTERACTIVE;

    err[0] = '\0';
    gegl_init(NULL, NULL);
    if (nparams < 3)
        snprintf(err, sizeof err, "%s takes %d parameters, not %d", PLUG_PROC, N_PARAMS, nparams);
    else
        status = get_values(mode, nparams, param, param[2].data.d_drawable, &v, err, sizeof err);
    if (status == GIMP_PDB_SUCCESS)
        status = apply(param[1].data.d_image, param[2].data.d_drawable, &v,
                       mode != GIMP_RUN_NONINTERACTIVE, &new_image, err, sizeof err);
    if (status == GIMP_PDB_SUCCESS && mode == GIMP_RUN_INTERACTIVE)
        gimp_set_data(PLUG_PROC, &v, sizeof v);
    if (status == GIMP_PDB_SUCCESS && mode != GIMP_RUN_NONINTERACTIVE)
        gimp_displays_flush();

    ret[0].type = GIMP_PDB_STATUS;
    ret[0].data.d_status = status;
    *nreturn_vals = 1;
    if (err[0]) { /* GIMP shows it, or hands it to the calling script */
        ret[1].type = GIMP_PDB_STRING;
        ret[1].data.d_string = err;
        *nreturn_vals = 2;
    } else if (status == GIMP_PDB_SUCCESS) {
        ret[1].type = GIMP_PDB_IMAGE;
        ret[1].data.d_image = new_image;
        *nreturn_vals = 2;
    }
    *return_vals = ret;
}
