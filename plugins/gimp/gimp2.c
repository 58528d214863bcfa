/*
 * gimp2.c: the GIMP 2.10 host. Registers plug-in-transmute, takes its
 * parameters in each run mode, and replaces the drawable's selection (or a
 * copy of the layer above it) with the translation as one undo step. The
 * model is loaded and run before anything is written, so a failure leaves
 * the image untouched and returns its message to the caller.
 */
#include <libgimp/gimp.h>
#include <stdio.h>
#include <string.h>

#include "dialog.h"
#include "engine.h"
#include "region.h"
#include "values.h"

#define N_PARAMS 8

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
        {GIMP_PDB_INT32, "output-mode", "{ REPLACE (0), NEW-LAYER (1) }"},
        {GIMP_PDB_STRING, "domains",
         "Multi-domain (StarGAN) models: target domains, comma-separated; \"\" for other models"},
        {GIMP_PDB_STRING, "device",
         "\"\" automatic, \"cpu\", \"vulkan\", a Vulkan device index or part of its name"},
    };
    gimp_install_procedure(
        PLUG_PROC, "Translate the image with a GAN generator (CycleGAN, pix2pix, StarGAN)",
        "Runs an image-to-image generator stored as a Transmute .safetensors model on the "
        "selection (its bounding box is what the model sees) and replaces it, or adds the "
        "result as a new layer above. Alpha is kept.",
        "Transmute", "MIT", "2026", "Transmute (GAN translation)...", "RGB*, GRAY*",
        GIMP_PLUGIN, N_PARAMS, 0, args, NULL);
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
    if (v->output != OUTPUT_REPLACE && v->output != OUTPUT_NEW_LAYER) {
        snprintf(err, errlen, "output-mode must be 0 (replace) or 1 (new layer), not %d", v->output);
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

static void store(gint32 image, gint32 drawable, const struct plug_values *v, const char *name,
                  const GeglRectangle *rect, int channels, const float *px)
{
    gimp_image_undo_group_start(image);
    gint32 target = v->output == OUTPUT_NEW_LAYER ? add_layer(image, drawable, name) : drawable;
    region_write(target, rect, channels, px);
    gimp_image_undo_group_end(image);
}

static GimpPDBStatusType apply(gint32 image, gint32 drawable, const struct plug_values *v,
                               char *err, size_t errlen)
{
    if (!check_target(drawable, v->output, err, errlen))
        return GIMP_PDB_EXECUTION_ERROR;
    struct engine *e = engine_open(v->model, v->device, err, errlen);
    if (!e)
        return GIMP_PDB_EXECUTION_ERROR;
    GeglRectangle rect;
    tm_status s = TM_OK;
    if (gimp_drawable_mask_intersect(drawable, &rect.x, &rect.y, &rect.width, &rect.height)) {
        gimp_progress_init_printf("Transmute: %s", engine_name(e));
        double last = 0.0;
        float *px = NULL;
        int channels = 0;
        s = region_translate(e, drawable, &rect, v, progress, &last, &px, &channels, err, errlen);
        if (!s)
            store(image, drawable, v, engine_name(e), &rect, channels, px);
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
        status = apply(param[1].data.d_image, param[2].data.d_drawable, &v, err, sizeof err);
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
    }
    *return_vals = ret;
}
