/*
 * plugin.c: the frei0r entry points of transmute.so, a filter that runs a
 * Transmute model on every frame (README.md here).
 *
 * frei0r gives a filter RGBA8888 frames of the size it was constructed for,
 * width * 4 bytes per row, and no way to report an error: video.c prints a
 * failure once and passes the frames through. Hosts construct filters just
 * to read their parameters (GStreamer does at every registry scan), so
 * f0r_construct only stores settings; the device and model come with the
 * first f0r_update. An instance has one size: a host that meets another
 * size constructs another instance, whose statistics start afresh.
 *
 * MLT, given a `threads` property, cuts frames into strips and updates one
 * instance from several threads at once; a Transmute context is one
 * thread's at a time, so every call on an instance holds its lock.
 */
#include <frei0r.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "video.h"

/* The order is the interface: FFmpeg passes values by position
 * (frei0r=transmute:MODEL|BLEND|DOMAINS|...). */
enum { P_MODEL, P_BLEND, P_DOMAINS, P_DEVICE, P_SMOOTHING, P_SCENE_CUT, N_PARAMS };

static const f0r_param_info_t param_info[N_PARAMS] = {
    [P_MODEL] = {"model", F0R_PARAM_STRING, "Transmute model file (.safetensors)"},
    [P_BLEND] = {"blend", F0R_PARAM_DOUBLE, "1: the translation, 0: the original, between: a mix"},
    [P_DOMAINS] = {"domains", F0R_PARAM_STRING,
                   "StarGAN models: target domains, comma-separated (Blond_Hair,Young)"},
    [P_DEVICE] = {"device", F0R_PARAM_STRING,
                  "empty: automatic; cpu, vulkan, a Vulkan device index or part of its name"},
    [P_SMOOTHING] = {"smoothing", F0R_PARAM_DOUBLE,
                     "0: each frame's own norm statistics (exact); up to 0.99: statistics "
                     "carried across frames against flicker, this much of the past"},
    [P_SCENE_CUT] = {"scene_cut", F0R_PARAM_DOUBLE,
                     "with smoothing: how far (0..1) a frame's change must jump above the "
                     "usual one to be a scene cut, where the statistics start afresh; 1: never"},
};

struct instance {
    pthread_mutex_t lock;
    int width, height;
    char *model, *domains, *device; /* never NULL */
    double blend, smoothing, scene_cut;
    struct video *video;
};

int f0r_init(void)
{
    return 1;
}

void f0r_deinit(void)
{
}

void f0r_get_plugin_info(f0r_plugin_info_t *info)
{
    info->name = "transmute";
    info->author = "Transmute developers";
    info->plugin_type = F0R_PLUGIN_TYPE_FILTER;
    info->color_model = F0R_COLOR_MODEL_RGBA8888;
    info->frei0r_version = FREI0R_MAJOR_VERSION;
    info->major_version = 0;
    info->minor_version = 1;
    info->num_params = N_PARAMS;
    info->explanation = "GAN image-to-image translation (CycleGAN, pix2pix, StarGAN) "
                        "with a Transmute model";
}

void f0r_get_param_info(f0r_param_info_t *info, int param_index)
{
    if (param_index >= 0 && param_index < N_PARAMS)
        *info = param_info[param_index];
}

void f0r_destruct(f0r_instance_t instance)
{
    struct instance *in = instance;
    if (!in)
        return;
    video_destroy(&in->video);
    free(in->model);
    free(in->domains);
    free(in->device);
    pthread_mutex_destroy(&in->lock);
    free(in);
}

f0r_instance_t f0r_construct(unsigned int width, unsigned int height)
{
    struct instance *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    pthread_mutex_init(&in->lock, NULL);
    in->width = (int)width;
    in->height = (int)height;
    in->model = strdup("");
    in->domains = strdup("");
    in->device = strdup("");
    in->blend = 1.0;
    in->scene_cut = 0.05;
    in->video = video_create("transmute (frei0r)");
    if (!in->model || !in->domains || !in->device || !in->video) {
        f0r_destruct(in);
        return NULL;
    }
    return in;
}

static char **string_param(struct instance *in, int param_index)
{
    switch (param_index) {
    case P_MODEL: return &in->model;
    case P_DOMAINS: return &in->domains;
    case P_DEVICE: return &in->device;
    default: return NULL;
    }
}

static double *double_param(struct instance *in, int param_index)
{
    switch (param_index) {
    case P_BLEND: return &in->blend;
    case P_SMOOTHING: return &in->smoothing;
    case P_SCENE_CUT: return &in->scene_cut;
    default: return NULL;
    }
}

/* param points to a char * for strings (the host keeps the string: it is
 * copied) and to a double for numbers. Out of memory keeps the old string. */
void f0r_set_param_value(f0r_instance_t instance, f0r_param_t param, int param_index)
{
    struct instance *in = instance;
    char **s = string_param(in, param_index);
    double *d = double_param(in, param_index);
    pthread_mutex_lock(&in->lock);
    if (s) {
        const char *v = *(f0r_param_string *)param;
        char *copy = strdup(v ? v : "");
        if (copy) {
            free(*s);
            *s = copy;
        }
    } else if (d) {
        *d = *(f0r_param_double *)param;
    }
    pthread_mutex_unlock(&in->lock);
}

/* A string is returned as a pointer into the instance, valid until the
 * parameter is set again. */
void f0r_get_param_value(f0r_instance_t instance, f0r_param_t param, int param_index)
{
    struct instance *in = instance;
    char **s = string_param(in, param_index);
    double *d = double_param(in, param_index);
    pthread_mutex_lock(&in->lock);
    if (s)
        *(f0r_param_string *)param = *s;
    else if (d)
        *(f0r_param_double *)param = *d;
    pthread_mutex_unlock(&in->lock);
}

void f0r_update(f0r_instance_t instance, double time, const uint32_t *inframe,
                uint32_t *outframe)
{
    struct instance *in = instance;
    pthread_mutex_lock(&in->lock);
    struct video_settings s = {
        .model = in->model,
        .device = in->device,
        .domains = in->domains,
        .blend = in->blend,
        .smoothing = in->smoothing,
        .scene_cut = in->scene_cut,
    };
    video_frame(in->video, &s, (const uint8_t *)inframe, (uint8_t *)outframe, in->width,
                in->height, (size_t)in->width * 4);
    pthread_mutex_unlock(&in->lock);
}
