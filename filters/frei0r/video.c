/* video.c: a Transmute model on 8-bit RGBA video frames (see video.h). */
#include "video.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <transmute.h>

#include "scene_cut.h"

/* 1 would freeze the statistics of the first frame for good. */
#define MAX_SMOOTHING 0.99

struct video {
    const char *who;
    char *model_path, *device; /* what the context and model are (to be) made from */
    char *domains;             /* what the label is (to be) made for */
    tm_ctx *ctx;
    tm_model *model;
    float *label;              /* NULL for a model without domains */
    bool label_made;
    bool failed;               /* reported; frames pass through until a setting changes */
    bool smoothing;            /* the last frame carried statistics */
    struct scene_cut cut;
};

/* The one message of a failure; later frames pass through silently. */
static void fail(struct video *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", v->who);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    v->failed = true;
}

/* Warnings of the core (no Vulkan driver, validation messages): a frei0r
 * host has no other place for them. */
static void log_stderr(void *priv, tm_log_level level, const char *msg)
{
    fprintf(stderr, "%s: %s\n", (const char *)priv, msg);
}

struct video *video_create(const char *who)
{
    struct video *v = calloc(1, sizeof *v);
    if (v)
        v->who = who;
    return v;
}

static void unload(struct video *v)
{
    tm_model_destroy(&v->model);
    tm_ctx_destroy(&v->ctx);
    free(v->label);
    v->label = NULL;
    v->label_made = false;
    v->smoothing = false;
}

void video_destroy(struct video **v)
{
    if (!*v)
        return;
    unload(*v);
    free((*v)->model_path);
    free((*v)->device);
    free((*v)->domains);
    free(*v);
    *v = NULL;
}

/* Replaces *kept by a copy of now when they differ; true when it did. */
static bool changed(char **kept, const char *now)
{
    now = now ? now : "";
    if (*kept && !strcmp(*kept, now))
        return false;
    free(*kept);
    *kept = strdup(now);
    return true;
}

/* Forgets what the old settings made; a failure of theirs is retried. */
static void follow(struct video *v, const struct video_settings *s)
{
    bool new_model = changed(&v->model_path, s->model);
    new_model |= changed(&v->device, s->device);
    bool new_domains = changed(&v->domains, s->domains);
    if (new_model)
        unload(v);
    else if (new_domains) {
        free(v->label);
        v->label = NULL;
        v->label_made = false;
        v->smoothing = false; /* another target: the statistics start afresh */
    }
    if (new_model || new_domains)
        v->failed = false;
    if (!v->model_path || !v->device || !v->domains)
        fail(v, "out of memory");
}

/* The core's message names the file ("cannot open model 'P': ...",
 * "model 'P': ..."): only what follows the name is the reason. */
static const char *load_reason(const char *msg, const char *path)
{
    size_t n = strlen(path);
    for (const char *p = strchr(msg, '\''); p; p = strchr(p + 1, '\''))
        if (!strncmp(p + 1, path, n) && !strncmp(p + 1 + n, "': ", 3))
            return p + n + 4;
    return msg;
}

static bool load(struct video *v)
{
    if (!*v->model_path) {
        fail(v, "no model file: set the 'model' parameter to a .safetensors file");
        return false;
    }
    char err[512];
    struct tm_ctx_params p = {.device = v->device, .log = log_stderr, .log_priv = (void *)v->who,
                              .log_level = TM_LOG_WARN};
    if (tm_ctx_create(&p, &v->ctx, err, sizeof err) != TM_OK) {
        fail(v, "%s", err);
        return false;
    }
    if (tm_model_load(v->ctx, v->model_path, &v->model) != TM_OK) {
        fail(v, "cannot load model '%s': %s", v->model_path,
             load_reason(tm_ctx_error(v->ctx), v->model_path));
        tm_ctx_destroy(&v->ctx);
        return false;
    }
    return true;
}

/* A frei0r filter's output has its input's size: a model that changes the
 * size (super-resolution) cannot run here. */
static bool keeps_size(struct video *v)
{
    int sc = tm_model_info(v->model)->scale;
    if (sc == 1)
        return true;
    fail(v, "model '%s' is a %dx super-resolution model; frei0r cannot change the frame size: "
            "use the native FFmpeg filter (-vf transmute=model=...) or the CLI (transmute "
            "translate)", v->model_path, sc);
    return false;
}

/* "A, B, C": the model's domains, for messages. */
static void list_domains(const struct tm_model_info *mi, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < mi->n_domains && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", mi->domains[i]);
}

static bool make_label(struct video *v)
{
    const struct tm_model_info *mi = tm_model_info(v->model);
    bool given = strspn(v->domains, " ,") < strlen(v->domains);
    v->label_made = true;
    if (!mi->label_size && !given)
        return true;
    if (!mi->label_size) {
        fail(v, "model '%s' has no domains to choose (domains must be empty, not '%s')",
             v->model_path, v->domains);
        return false;
    }
    if (!given) {
        char names[1024];
        list_domains(mi, names, sizeof names);
        fail(v, "model '%s' needs target domains (the 'domains' parameter), one or more of: %s",
             v->model_path, names);
        return false;
    }
    v->label = malloc((size_t)mi->label_size * sizeof *v->label);
    if (!v->label) {
        fail(v, "out of memory");
        return false;
    }
    if (tm_model_label_from_domains(v->model, v->domains, v->label, mi->label_size) != TM_OK) {
        fail(v, "model '%s': %s", v->model_path, tm_ctx_error(v->ctx));
        return false;
    }
    return true;
}

/* tm_translate_params.smoothing for this frame, after restarting the
 * carried statistics at a scene cut. */
static float smoothing(struct video *v, const struct video_settings *s, const uint8_t *in,
                       int width, int height, size_t stride)
{
    if (!(s->smoothing > 0.0)) {
        v->smoothing = false;
        return 0.0f;
    }
    /* Statistics carried from before frame mode or another target are stale. */
    bool stale = !v->smoothing;
    v->smoothing = true;
    if (scene_cut(&v->cut, in, width, height, stride, s->scene_cut) || stale)
        tm_model_reset_stats(v->model);
    return (float)(s->smoothing < MAX_SMOOTHING ? s->smoothing : MAX_SMOOTHING);
}

/* The colour channels only: the core passed alpha through. */
static void mix(const uint8_t *in, uint8_t *out, int width, int height, size_t stride, float blend)
{
    for (int y = 0; y < height; y++) {
        const uint8_t *a = in + (size_t)y * stride;
        uint8_t *b = out + (size_t)y * stride;
        for (int i = 0; i < width * 4; i++)
            if (i % 4 != 3)
                b[i] = (uint8_t)lrintf(a[i] + blend * (float)(b[i] - a[i]));
    }
}

static bool translate(struct video *v, const struct video_settings *s, const uint8_t *in,
                      uint8_t *out, int width, int height, size_t stride)
{
    if (v->failed || (!v->model && !load(v)) || !keeps_size(v) ||
        (!v->label_made && !make_label(v)))
        return false;
    /* The core does not write its input. */
    struct tm_image src = {(void *)in, width, height, 4, TM_U8, stride};
    struct tm_image dst = {out, width, height, 4, TM_U8, stride};
    struct tm_translate_params p = {
        .label = v->label,
        .label_size = v->label ? tm_model_info(v->model)->label_size : 0,
        .smoothing = smoothing(v, s, in, width, height, stride),
    };
    if (tm_translate(v->model, &src, &dst, &p) != TM_OK) {
        fail(v, "model '%s': %s", v->model_path, tm_ctx_error(v->ctx));
        return false;
    }
    double blend = s->blend < 1.0 ? s->blend : 1.0;
    if (blend < 1.0)
        mix(in, out, width, height, stride, blend > 0.0 ? (float)blend : 0.0f);
    return true;
}

void video_frame(struct video *v, const struct video_settings *s, const uint8_t *in,
                 uint8_t *out, int width, int height, size_t stride)
{
    follow(v, s);
    if (!translate(v, s, in, out, width, height, stride))
        for (int y = 0; y < height; y++)
            memcpy(out + (size_t)y * stride, in + (size_t)y * stride, (size_t)width * 4);
}
