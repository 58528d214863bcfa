/*
 * engine.h: the host-independent half of the image-editor plug-ins: one
 * model loaded into a Transmute context, described, and run on a region of
 * float pixels with a blend. Knows nothing of GIMP: a host (gimp2.c, a GIMP 3
 * port) reads the region, calls engine_translate and writes the result.
 */
#ifndef TRANSMUTE_PLUGIN_ENGINE_H
#define TRANSMUTE_PLUGIN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include <transmute.h>

struct engine;

/* Loads the model file at path on device (NULL or "": TRANSMUTE_DEVICE,
 * then automatic). NULL with a one-line message in err on failure. */
struct engine *engine_open(const char *path, const char *device, char *err, size_t errlen);

/* Frees the model and its context and NULLs the handle; &NULL is a no-op. */
void engine_close(struct engine **e);

/* The model's metadata "name", else its file name without the extension. */
const char *engine_name(const struct engine *e);

/* The model's metadata "description", or "". */
const char *engine_description(const struct engine *e);

const struct tm_model_info *engine_info(const struct engine *e);

/* The name of the device the model runs on ("CPU", "llvmpipe ..."). */
const char *engine_device_name(const struct engine *e);

/* The float layout the model reads a layer in: 4 (R'G'B'A) for an RGB model
 * on any layer (a gray one is replicated), 2 (Y'A) for a 1-channel model on
 * a gray layer; 0 with a message when the model cannot read the layer. */
int engine_layer_channels(const struct engine *e, bool gray_layer, char *err, size_t errlen);

/* Checks a target for a multi-domain model: comma-separated domain names,
 * at least one; "" for a model without domains. */
bool engine_check_domains(struct engine *e, const char *domains, char *err, size_t errlen);

struct engine_job {
    const float *in;     /* width x height pixels of `channels` floats, 0..1, alpha last */
    float *out;          /* the same layout, scale times wider and higher (scale: the
                          * model's, engine_info()->scale); distinct from in */
    int width, height;
    int channels;        /* from engine_layer_channels */
    const char *domains; /* as engine_check_domains */
    double blend;        /* 1: the translation, 0: the original, between: a mix; a
                          * model of scale > 1 takes 1 only (the original has
                          * another size) */
    tm_progress_fn progress; /* 0..1 as work proceeds; false cancels; may be NULL */
    void *progress_priv;
    const volatile int *cancel; /* non-zero cancels; may be NULL */
};

/* Translates job->in into job->out and mixes it with the original by
 * job->blend; alpha is copied (bilinearly resized by a model of scale > 1,
 * which refuses a blend below 1). Runs the core's automatic tiling (exact,
 * whole-image statistics). On failure err holds a one-line message;
 * TM_ERR_CANCELLED when the progress callback or the flag cancelled. */
tm_status engine_translate(struct engine *e, const struct engine_job *job, char *err,
                           size_t errlen);

/* One device a context can be created on, for a host's device chooser. */
struct engine_device {
    char selector[16]; /* engine_open's device: "cpu" or a Vulkan index */
    char label[300];   /* what to show: kind and name */
};

/* Lists up to max devices (the CPU first); returns the number listed. */
int engine_devices(struct engine_device *list, int max);

#endif
