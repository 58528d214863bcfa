/* engine.c: a Transmute model for an image-editor host (see engine.h). */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct engine {
    tm_ctx *ctx;
    tm_model *model;
    char *name;
};

/* Warnings (no Vulkan driver, validation messages) go to the host's
 * terminal: a plug-in has no other place for them. */
static void log_stderr(void *priv, tm_log_level level, const char *msg)
{
    fprintf(stderr, "transmute: %s\n", msg);
}

/* The file name without folders and extension. */
static char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, b, n);
        s[n] = '\0';
    }
    return s;
}

static bool load(struct engine *e, const char *path, char *err, size_t errlen)
{
    if (tm_model_load(e->ctx, path, &e->model) != TM_OK) {
        const char *m = tm_ctx_error(e->ctx);
        if (m && strstr(m, path))
            snprintf(err, errlen, "%s", m);
        else
            snprintf(err, errlen, "model '%s': %s", path, m && *m ? m : "cannot load it");
        return false;
    }
    const char *meta = tm_model_meta(e->model, "name");
    e->name = meta && *meta ? strdup(meta) : base_name(path);
    if (!e->name) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    return true;
}

struct engine *engine_open(const char *path, const char *device, char *err, size_t errlen)
{
    if (!path || !*path) {
        snprintf(err, errlen, "no model file chosen");
        return NULL;
    }
    struct engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct tm_ctx_params p = {.device = device, .log = log_stderr, .log_level = TM_LOG_WARN};
    if (tm_ctx_create(&p, &e->ctx, err, errlen) != TM_OK || !load(e, path, err, errlen))
        engine_close(&e);
    return e;
}

void engine_close(struct engine **e)
{
    if (!*e)
        return;
    tm_model_destroy(&(*e)->model);
    tm_ctx_destroy(&(*e)->ctx);
    free((*e)->name);
    free(*e);
    *e = NULL;
}

const char *engine_name(const struct engine *e)
{
    return e->name;
}

const char *engine_description(const struct engine *e)
{
    const char *d = tm_model_meta(e->model, "description");
    return d ? d : "";
}

const struct tm_model_info *engine_info(const struct engine *e)
{
    return tm_model_info(e->model);
}

const char *engine_device_name(const struct engine *e)
{
    return tm_ctx_device(e->ctx)->name;
}

int engine_layer_channels(const struct engine *e, bool gray_layer, char *err, size_t errlen)
{
    const struct tm_model_info *mi = engine_info(e);
    if (mi->input_nc == 3 && (mi->output_nc == 3 || mi->output_nc == 1))
        return 4;
    if (mi->input_nc == 1 && mi->output_nc == 1 && gray_layer)
        return 2;
    if (mi->input_nc == 1 && mi->output_nc == 1)
        snprintf(err, errlen, "model '%s' takes 1-channel (grayscale) images, the layer is RGB: "
                              "convert the image to grayscale first", e->name);
    else
        snprintf(err, errlen, "model '%s' turns %d-channel images into %d-channel ones: "
                              "a %s layer cannot take that", e->name, mi->input_nc, mi->output_nc,
                 gray_layer ? "grayscale" : "RGB");
    return 0;
}

/* "A, B, C" from the model's domain list, for messages. */
static void list_domains(const struct tm_model_info *mi, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < mi->n_domains && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", mi->domains[i]);
}

/* The label a target names, NULL for a model without domains. */
static tm_status make_label(struct engine *e, const char *domains, float **label, char *err,
                            size_t errlen)
{
    const struct tm_model_info *mi = engine_info(e);
    bool given = domains && strspn(domains, " ,") < strlen(domains);
    *label = NULL;
    if (!mi->label_size && !given)
        return TM_OK;
    if (!mi->label_size) {
        snprintf(err, errlen, "model '%s' has no domains to choose (domains must be empty, not '%s')",
                 e->name, domains);
        return TM_ERR_INVALID;
    }
    if (!given) {
        char names[1024];
        list_domains(mi, names, sizeof names);
        snprintf(err, errlen, "model '%s' needs target domains, one or more of: %s", e->name, names);
        return TM_ERR_INVALID;
    }
    float *l = malloc((size_t)mi->label_size * sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return TM_ERR_NOMEM;
    }
    if (tm_model_label_from_domains(e->model, domains, l, mi->label_size) != TM_OK) {
        snprintf(err, errlen, "model '%s': %s", e->name, tm_ctx_error(e->ctx));
        free(l);
        return TM_ERR_INVALID;
    }
    *label = l;
    return TM_OK;
}

bool engine_check_domains(struct engine *e, const char *domains, char *err, size_t errlen)
{
    float *label;
    tm_status s = make_label(e, domains, &label, err, errlen);
    free(label);
    return s == TM_OK;
}

/* The model was trained on 0..1 samples: high-bit-depth values beyond that
 * range are clamped, as an 8-bit image would be. */
static void clamp_colors(float *px, size_t n, int channels)
{
    int color = channels - 1;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < color; c++) {
            float *v = &px[i * (size_t)channels + (size_t)c];
            *v = *v > 1.0f ? 1.0f : *v >= 0.0f ? *v : 0.0f; /* NaN too */
        }
}

/* The colour channels only: alpha came through the core untouched. */
static void mix(const float *orig, float *out, size_t n, int channels, float blend)
{
    int color = channels - 1;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < color; c++) {
            size_t k = i * (size_t)channels + (size_t)c;
            out[k] = orig[k] + blend * (out[k] - orig[k]);
        }
}

/* Mixing needs the original at the result's size: a model that changes
 * the size takes blend 1 only. */
static bool check_blend(const struct engine *e, double blend, char *err, size_t errlen)
{
    int sc = engine_info(e)->scale;
    if (sc == 1 || blend >= 1.0)
        return true;
    snprintf(err, errlen, "model '%s' is a %dx super-resolution model: blend must be 1 (the "
                          "original has another size to mix with)", e->name, sc);
    return false;
}

static tm_status run(struct engine *e, const struct engine_job *job, const float *label,
                     char *err, size_t errlen)
{
    int sc = engine_info(e)->scale;
    if (!check_blend(e, job->blend, err, errlen))
        return TM_ERR_INVALID;
    size_t n = (size_t)job->width * (size_t)job->height;
    /* The network reads a clamped copy: job->out itself at scale 1 (then
     * translated in place), else a buffer of its own; job->in stays the
     * original for the blend. */
    float *src = sc == 1 ? job->out : malloc(n * (size_t)job->channels * sizeof(float));
    if (!src) {
        snprintf(err, errlen, "out of memory for a %dx%d region", job->width, job->height);
        return TM_ERR_NOMEM;
    }
    memcpy(src, job->in, n * (size_t)job->channels * sizeof(float));
    clamp_colors(src, n, job->channels);
    struct tm_image img = {src, job->width, job->height, job->channels, TM_F32, 0};
    struct tm_image res = {job->out, job->width * sc, job->height * sc, job->channels, TM_F32, 0};
    struct tm_translate_params p = {
        .progress = job->progress,
        .progress_priv = job->progress_priv,
        .cancel = job->cancel,
        .label = label,
        .label_size = label ? engine_info(e)->label_size : 0,
        .tile = 0, /* automatic: tiles only where device memory needs it */
    };
    tm_status s = tm_translate(e->model, &img, &res, &p);
    if (src != job->out)
        free(src);
    if (s) {
        snprintf(err, errlen, "%s", tm_ctx_error(e->ctx));
        return s;
    }
    if (job->blend < 1.0)
        mix(job->in, job->out, n, job->channels, (float)job->blend);
    return TM_OK;
}

tm_status engine_translate(struct engine *e, const struct engine_job *job, char *err,
                           size_t errlen)
{
    float *label;
    tm_status s = make_label(e, job->domains, &label, err, errlen);
    if (!s)
        s = run(e, job, label, err, errlen);
    free(label);
    return s;
}

static const char *kind_name(tm_device_kind k)
{
    switch (k) {
    case TM_DEVICE_VK_DISCRETE: return "GPU";
    case TM_DEVICE_VK_INTEGRATED: return "integrated GPU";
    case TM_DEVICE_VK_VIRTUAL: return "virtual GPU";
    case TM_DEVICE_VK_SOFTWARE: return "software Vulkan";
    default: return "Vulkan";
    }
}

int engine_devices(struct engine_device *list, int max)
{
    struct tm_device_info info[16];
    int count = 0, picked = -1;
    char err[256];
    /* "cpu" always matches: a stale TRANSMUTE_DEVICE must not hide the list. */
    if (tm_devices_list("cpu", info, 16, &count, &picked, err, sizeof err) != TM_OK)
        return 0;
    int n = 0;
    for (int i = 0; i < count && i < 16 && n < max; i++, n++) {
        struct engine_device *d = &list[n];
        if (info[i].kind == TM_DEVICE_CPU)
            snprintf(d->selector, sizeof d->selector, "cpu");
        else
            snprintf(d->selector, sizeof d->selector, "%d", info[i].index);
        if (info[i].kind == TM_DEVICE_CPU)
            snprintf(d->label, sizeof d->label, "CPU");
        else
            snprintf(d->label, sizeof d->label, "%s: %s", kind_name(info[i].kind), info[i].name);
    }
    return n;
}
