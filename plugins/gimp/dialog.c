/*
 * dialog.c: the interactive dialog (dialog.h). A model is loaded as soon as
 * it is chosen, to describe it, to make its domain toggles and to draw the
 * preview; the host loads it again to apply it, as in the other run modes.
 */
#include "dialog.h"

#include <libgimp/gimpui.h>
#include <stdlib.h>
#include <string.h>

#include "domain_toggles.h"
#include "engine.h"
#include "model_list.h"
#include "region.h"

#define MAX_DEVICES 16

struct dialog {
    struct plug_values *v;
    gint32 drawable;
    struct engine *engine;  /* the chosen model, or NULL */
    gboolean usable;        /* loaded, and it can read this layer */
    char error[1024];       /* why it cannot be used */
    struct model_list models;
    struct engine_device devices[MAX_DEVICES];
    int n_devices;
    char custom_device[256]; /* a selector from the last values that lists no device */
    GtkWidget *window, *preview, *combo, *chooser, *info, *domain_frame, *domains, *hint;
    GtkWidget *outputs[3];   /* the output-mode radio buttons, by enum output_mode */
    GtkObject *blend;        /* the blend scale entry's adjustment */
};

static int model_scale(const struct dialog *d)
{
    return d->engine ? engine_info(d->engine)->scale : 1;
}

/* ---- state ---------------------------------------------------------------- */

/* Whether OK may be pressed; if not, msg says what is missing. */
static gboolean ready(struct dialog *d, char *msg, size_t len)
{
    if (!d->usable) {
        g_strlcpy(msg, d->error, len);
        return FALSE;
    }
    if (engine_info(d->engine)->label_size && !d->v->domains[0]) {
        g_strlcpy(msg, "Choose at least one target domain.", len);
        return FALSE;
    }
    return engine_check_domains(d->engine, d->v->domains, msg, len);
}

/* ready, and an output mode the model can take here (as gimp2.c's
 * check_scaled: a scaling model changes the whole layer, so no selection).
 * The preview does not depend on this. */
static gboolean can_apply(struct dialog *d, char *msg, size_t len)
{
    if (!ready(d, msg, len))
        return FALSE;
    if (model_scale(d) > 1 && d->v->output == OUTPUT_REPLACE &&
        !gimp_selection_is_empty(gimp_item_get_image(d->drawable))) {
        g_snprintf(msg, len, "A %dx model scales the whole layer: remove the selection "
                             "(Select > None), or choose a new image.", model_scale(d));
        return FALSE;
    }
    return TRUE;
}

static void set_hint(struct dialog *d, const char *msg)
{
    char *markup = g_markup_printf_escaped("<span foreground=\"#b00000\">%s</span>", msg);
    gtk_label_set_markup(GTK_LABEL(d->hint), markup);
    g_free(markup);
}

/* OK's sensitivity and the hint. */
static void update_ok(struct dialog *d)
{
    char msg[1024] = "";
    gboolean ok = can_apply(d, msg, sizeof msg);
    gtk_dialog_set_response_sensitive(GTK_DIALOG(d->window), GTK_RESPONSE_OK, ok);
    set_hint(d, ok ? "" : msg);
}

/* After any change that the result depends on: also the preview. */
static void refresh(struct dialog *d)
{
    update_ok(d);
    gimp_preview_invalidate(GIMP_PREVIEW(d->preview));
}

static const char *arch_name(const char *arch)
{
    static const char *const names[][2] = {
        {"resnet", "CycleGAN ResNet"}, {"unet", "pix2pix U-Net"}, {"stargan", "StarGAN"},
        {"rrdbnet", "ESRGAN RRDBNet"}, {"srresnet", "SRGAN SRResNet"}, {"graph", "layer graph"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        if (!strcmp(arch, names[i][0]))
            return names[i][1];
    return arch;
}

static void show_info(struct dialog *d)
{
    if (!d->engine) {
        gtk_label_set_text(GTK_LABEL(d->info), "");
        return;
    }
    const struct tm_model_info *mi = engine_info(d->engine);
    const char *desc = engine_description(d->engine);
    char *domains = !mi->n_domains ? g_strdup("")
                    : mi->n_groups ? g_strdup_printf("\n%d target domains in %d datasets",
                                                     mi->n_domains, mi->n_groups)
                                   : g_strdup_printf("\n%d target domains", mi->n_domains);
    char *kind = mi->scale > 1 ? g_strdup_printf("%dx super-resolution network", mi->scale)
                               : g_strdup("generator");
    char *markup = g_markup_printf_escaped(
        "<b>%s</b>\n%s%s%s %s, %d to %d channels, %.2f M parameters%s\nRuns on: %s",
        engine_name(d->engine), desc, *desc ? "\n" : "", arch_name(mi->arch), kind, mi->input_nc,
        mi->output_nc, (double)mi->n_params / 1e6, domains, engine_device_name(d->engine));
    gtk_label_set_markup(GTK_LABEL(d->info), markup);
    g_free(markup);
    g_free(kind);
    g_free(domains);
}

static void domains_changed(void *priv, const char *domains)
{
    struct dialog *d = priv;
    g_strlcpy(d->v->domains, domains, sizeof d->v->domains);
    refresh(d);
}

/* The toggles of the new model; a model without domains takes none. */
static void show_domains(struct dialog *d)
{
    if (d->domains)
        gtk_widget_destroy(d->domains);
    d->domains = NULL;
    if (!d->engine || !engine_info(d->engine)->label_size) {
        d->v->domains[0] = '\0';
        gtk_widget_hide(d->domain_frame);
        return;
    }
    d->domains = domain_toggles_new(engine_info(d->engine), d->v->domains, domains_changed, d);
    gtk_container_add(GTK_CONTAINER(d->domain_frame), d->domains);
    gtk_widget_show(d->domain_frame);
}

static void set_output_label(struct dialog *d, int mode, const char *text)
{
    gtk_button_set_label(GTK_BUTTON(d->outputs[mode]), text);
    gtk_button_set_use_underline(GTK_BUTTON(d->outputs[mode]), TRUE);
}

/* The output modes and the blend a model of this scale can take: a
 * super-resolution model scales the layer or makes a new image, and has
 * nothing of its size to blend with (blend 1, insensitive). */
static void show_scale(struct dialog *d)
{
    int sc = model_scale(d);
    char *scaled = g_strdup_printf("_Scale the whole layer %dx", sc);
    char *image = g_strdup_printf("New _image, %dx the layer (the selection)", sc);
    set_output_label(d, OUTPUT_REPLACE, sc > 1 ? scaled : "_Replace the layer (the selection)");
    set_output_label(d, OUTPUT_NEW_IMAGE, sc > 1 ? image : "New _image of the layer (the selection)");
    g_free(scaled);
    g_free(image);
    gtk_widget_set_sensitive(d->outputs[OUTPUT_NEW_LAYER], sc == 1);
    if (sc > 1 && d->v->output == OUTPUT_NEW_LAYER)
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(d->outputs[OUTPUT_NEW_IMAGE]), TRUE);
    if (sc > 1)
        gtk_adjustment_set_value(GTK_ADJUSTMENT(d->blend), 1.0);
    gimp_scale_entry_set_sensitive(d->blend, sc == 1);
}

/* (Re)loads v->model on v->device. */
static void load_model(struct dialog *d)
{
    engine_close(&d->engine);
    d->error[0] = '\0';
    d->engine = engine_open(d->v->model, d->v->device, d->error, sizeof d->error);
    d->usable = d->engine && engine_layer_channels(d->engine, gimp_drawable_is_gray(d->drawable),
                                                   d->error, sizeof d->error);
    show_info(d);
    show_domains(d);
    show_scale(d);
    refresh(d);
}

/* ---- preview -------------------------------------------------------------- */

/* The 8-bit layout GimpDrawablePreview draws: the drawable's, in u8. */
static const Babl *preview_format(gint32 drawable)
{
    gboolean alpha = gimp_drawable_has_alpha(drawable);
    if (gimp_drawable_is_gray(drawable))
        return babl_format(alpha ? "Y'A u8" : "Y' u8");
    return babl_format(alpha ? "R'G'B'A u8" : "R'G'B' u8");
}

/* The part of the visible area r that fills the preview once translated:
 * r itself, or for a model of scale s its middle 1/s, whose result at the
 * new scale is r's size (the preview zooms in on the detail the model adds). */
static GeglRectangle preview_source(const GeglRectangle *r, int scale)
{
    GeglRectangle q = *r;
    q.width = (r->width + scale - 1) / scale;
    q.height = (r->height + scale - 1) / scale;
    q.x += (r->width - q.width) / 2;
    q.y += (r->height - q.height) / 2;
    return q;
}

/* Translates the previewed area alone: its norm statistics are the area's,
 * so the preview of a crop can differ a little from the result on the whole
 * selection. */
static void draw_preview(GimpPreview *preview, struct dialog *d)
{
    char msg[1024];
    GeglRectangle r;
    float *px = NULL;
    int channels = 0;
    gimp_preview_get_position(preview, &r.x, &r.y);
    gimp_preview_get_size(preview, &r.width, &r.height);
    if (!ready(d, msg, sizeof msg)) {
        gimp_preview_draw(preview); /* the original */
        return;
    }
    int sc = model_scale(d);
    GeglRectangle q = preview_source(&r, sc);
    if (region_translate(d->engine, d->drawable, &q, d->v, NULL, NULL, &px, &channels, msg,
                         sizeof msg) != TM_OK) {
        set_hint(d, msg);
        gimp_preview_draw(preview);
        return;
    }
    /* The result's rows are q.width * sc pixels, at least r.width: its
     * top-left r.width x r.height is drawn. */
    const Babl *fmt = preview_format(d->drawable);
    const Babl *fish = babl_fish(region_format(channels), fmt);
    int bpp = babl_format_get_bytes_per_pixel(fmt);
    guchar *buf = g_new(guchar, (gsize)r.width * (gsize)r.height * (gsize)bpp);
    gsize row = (gsize)q.width * (gsize)sc * (gsize)channels;
    for (int y = 0; y < r.height; y++)
        babl_process(fish, px + (gsize)y * row, buf + (gsize)y * (gsize)r.width * (gsize)bpp,
                     r.width);
    gimp_preview_draw_buffer(preview, buf, r.width * bpp);
    g_free(buf);
    g_free(px);
}

/* ---- model choice --------------------------------------------------------- */

static void choose_model(struct dialog *d, const char *path)
{
    g_strlcpy(d->v->model, path, sizeof d->v->model);
    load_model(d);
}

static void combo_changed(GtkComboBox *combo, struct dialog *d)
{
    int i = gtk_combo_box_get_active(combo);
    if (i < 0 || i >= d->models.n || !strcmp(d->models.paths[i], d->v->model))
        return;
    gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(d->chooser), d->models.paths[i]);
    choose_model(d, d->models.paths[i]);
}

static int listed_model(const struct dialog *d, const char *path)
{
    char *real = realpath(path, NULL);
    int found = -1;
    for (int i = 0; real && i < d->models.n && found < 0; i++)
        if (!strcmp(d->models.paths[i], real))
            found = i;
    free(real);
    return found;
}

static void file_set(GtkFileChooserButton *chooser, struct dialog *d)
{
    char *path = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(chooser));
    if (!path)
        return;
    g_strlcpy(d->v->model, path, sizeof d->v->model);
    gtk_combo_box_set_active(GTK_COMBO_BOX(d->combo), listed_model(d, path));
    g_free(path);
    load_model(d);
}

static GtkWidget *model_combo(struct dialog *d)
{
    GtkWidget *combo = gtk_combo_box_text_new();
    for (int i = 0; i < d->models.n; i++) {
        char *name = g_path_get_basename(d->models.paths[i]);
        gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(combo), name);
        g_free(name);
    }
    char *dirs[MODEL_LIST_DIRS];
    model_list_dirs(dirs);
    char *tip = g_strdup_printf("Models (*.safetensors) found in\n%s\n%s\n%s",
                                dirs[0] ? dirs[0] : "", dirs[1] ? dirs[1] : "",
                                dirs[2] ? dirs[2] : "");
    gtk_widget_set_tooltip_text(combo, tip);
    g_free(tip);
    for (int i = 0; i < MODEL_LIST_DIRS; i++)
        free(dirs[i]);
    return combo;
}

static GtkWidget *model_chooser(void)
{
    GtkWidget *chooser = gtk_file_chooser_button_new("Transmute model", GTK_FILE_CHOOSER_ACTION_OPEN);
    GtkFileFilter *models = gtk_file_filter_new(), *all = gtk_file_filter_new();
    gtk_file_filter_set_name(models, "Transmute models (*.safetensors)");
    gtk_file_filter_add_pattern(models, "*.safetensors");
    gtk_file_filter_set_name(all, "All files");
    gtk_file_filter_add_pattern(all, "*");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(chooser), models);
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(chooser), all);
    gtk_widget_set_tooltip_text(chooser, "Any model file");
    return chooser;
}

static GtkWidget *model_frame(struct dialog *d)
{
    GtkWidget *frame = gimp_frame_new("Model");
    GtkWidget *box = gtk_vbox_new(FALSE, 6);
    gtk_container_add(GTK_CONTAINER(frame), box);
    d->combo = model_combo(d);
    d->chooser = model_chooser();
    d->info = gtk_label_new(NULL);
    gtk_label_set_line_wrap(GTK_LABEL(d->info), TRUE);
    gtk_label_set_selectable(GTK_LABEL(d->info), TRUE);
    gtk_label_set_width_chars(GTK_LABEL(d->info), 44);
    gtk_misc_set_alignment(GTK_MISC(d->info), 0.0, 0.0);
    gtk_box_pack_start(GTK_BOX(box), d->combo, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), d->chooser, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), d->info, FALSE, FALSE, 0);
    if (d->v->model[0])
        gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(d->chooser), d->v->model);
    gtk_combo_box_set_active(GTK_COMBO_BOX(d->combo), listed_model(d, d->v->model));
    g_signal_connect(d->combo, "changed", G_CALLBACK(combo_changed), d);
    g_signal_connect(d->chooser, "file-set", G_CALLBACK(file_set), d);
    return frame;
}

/* ---- settings ------------------------------------------------------------- */

static void device_changed(GtkComboBox *combo, struct dialog *d)
{
    int i = gtk_combo_box_get_active(combo);
    const char *sel = i <= 0 ? "" : i <= d->n_devices ? d->devices[i - 1].selector : d->custom_device;
    g_strlcpy(d->v->device, sel, sizeof d->v->device);
    load_model(d);
}

/* "Automatic", then every device; a selector from the last values that
 * names none of them exactly ("vulkan", part of a name) is kept as it is. */
static GtkWidget *device_combo(struct dialog *d)
{
    GtkWidget *combo = gtk_combo_box_text_new();
    gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(combo), "Automatic");
    d->n_devices = engine_devices(d->devices, MAX_DEVICES);
    int active = 0;
    for (int i = 0; i < d->n_devices; i++) {
        gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(combo), d->devices[i].label);
        if (!strcmp(d->v->device, d->devices[i].selector))
            active = i + 1;
    }
    if (d->v->device[0] && !active) {
        g_strlcpy(d->custom_device, d->v->device, sizeof d->custom_device);
        gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(combo), d->custom_device);
        active = d->n_devices + 1;
    }
    gtk_combo_box_set_active(GTK_COMBO_BOX(combo), active);
    g_signal_connect(combo, "changed", G_CALLBACK(device_changed), d);
    return combo;
}

static GtkWidget *settings(struct dialog *d)
{
    GtkWidget *table = gtk_table_new(2, 3, FALSE);
    gtk_table_set_col_spacings(GTK_TABLE(table), 6);
    gtk_table_set_row_spacings(GTK_TABLE(table), 6);
    GtkObject *blend = gimp_scale_entry_new(GTK_TABLE(table), 0, 0, "_Blend:", 150, 6, d->v->blend,
                                            0.0, 1.0, 0.01, 0.1, 2, TRUE, 0, 0,
                                            "1: the translation, 0: the original (1 only for "
                                            "a super-resolution model)", NULL);
    d->blend = blend;
    g_signal_connect(blend, "value-changed", G_CALLBACK(gimp_double_adjustment_update),
                     &d->v->blend);
    g_signal_connect_swapped(blend, "value-changed", G_CALLBACK(gimp_preview_invalidate),
                             d->preview);
    gimp_table_attach_aligned(GTK_TABLE(table), 0, 1, "_Device:", 0.0, 0.5, device_combo(d), 2,
                              FALSE);
    return table;
}

/* The labels are show_scale's: they depend on the model. */
static GtkWidget *output_choice(struct dialog *d)
{
    GtkWidget *frame = gimp_int_radio_group_new(
        TRUE, "Output", G_CALLBACK(gimp_radio_button_update), &d->v->output, d->v->output,
        "_Replace the layer (the selection)", OUTPUT_REPLACE, &d->outputs[OUTPUT_REPLACE],
        "Add a _new layer above it", OUTPUT_NEW_LAYER, &d->outputs[OUTPUT_NEW_LAYER],
        "New _image", OUTPUT_NEW_IMAGE, &d->outputs[OUTPUT_NEW_IMAGE], NULL);
    /* After gimp_radio_button_update has stored the choice: whether OK may
     * be pressed depends on it (a selection with a scaling model). */
    for (int i = 0; i < 3; i++)
        g_signal_connect_swapped(d->outputs[i], "toggled", G_CALLBACK(update_ok), d);
    return frame;
}

/* ---- window --------------------------------------------------------------- */

static GtkWidget *controls(struct dialog *d)
{
    GtkWidget *box = gtk_vbox_new(FALSE, 12);
    d->domain_frame = gimp_frame_new("Target domains");
    d->hint = gtk_label_new(NULL);
    gtk_label_set_line_wrap(GTK_LABEL(d->hint), TRUE);
    gtk_misc_set_alignment(GTK_MISC(d->hint), 0.0, 0.5);
    gtk_box_pack_start(GTK_BOX(box), model_frame(d), FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), d->domain_frame, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), settings(d), FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), output_choice(d), FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), d->hint, FALSE, FALSE, 0);
    return box;
}

static void build(struct dialog *d)
{
    /* No help button: GIMP's manual has no page for a third-party filter. */
    d->window = gimp_dialog_new("Transmute (GAN translation, super-resolution)", PLUG_BINARY, NULL, 0, NULL, NULL,
                                "_Cancel", GTK_RESPONSE_CANCEL, "_OK", GTK_RESPONSE_OK, NULL);
    gtk_dialog_set_alternative_button_order(GTK_DIALOG(d->window), GTK_RESPONSE_OK,
                                            GTK_RESPONSE_CANCEL, -1);
    gimp_window_set_transient(GTK_WINDOW(d->window));
    GtkWidget *hbox = gtk_hbox_new(FALSE, 12);
    gtk_container_set_border_width(GTK_CONTAINER(hbox), 12);
    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(d->window))), hbox, TRUE,
                       TRUE, 0);
    d->preview = gimp_drawable_preview_new_from_drawable_id(d->drawable);
    gimp_preview_set_update(GIMP_PREVIEW(d->preview), d->v->preview);
    gtk_box_pack_start(GTK_BOX(hbox), d->preview, TRUE, TRUE, 0);
    gtk_box_pack_start(GTK_BOX(hbox), controls(d), FALSE, FALSE, 0);
    gtk_widget_show_all(hbox);
    g_signal_connect(d->preview, "invalidated", G_CALLBACK(draw_preview), d);
}

gboolean dialog_run(gint32 drawable, struct plug_values *v)
{
    struct dialog d = {.v = v, .drawable = drawable};
    gimp_ui_init(PLUG_BINARY, FALSE);
    model_list_find(&d.models);
    if (!v->model[0] && d.models.n)
        g_strlcpy(v->model, d.models.paths[0], sizeof v->model);
    build(&d);
    gtk_widget_show(d.window);
    load_model(&d);
    gboolean ok = gimp_dialog_run(GIMP_DIALOG(d.window)) == GTK_RESPONSE_OK;
    v->preview = gimp_preview_get_update(GIMP_PREVIEW(d.preview));
    gtk_widget_destroy(d.window);
    engine_close(&d.engine);
    model_list_free(&d.models);
    return ok;
}
