/*
 * transmute.h: the one public header of libtransmute.
 *
 * Runs GAN image-to-image generators (CycleGAN's ResNet, pix2pix's U-Net,
 * StarGAN's multi-domain generator) and super-resolution networks (ESRGAN's
 * RRDBNet, SRGAN's SRResNet, any Keras/TF.js layer graph) stored as
 * safetensors files, on a Vulkan device or on the CPU.
 *
 * Usage:
 *   tm_ctx *ctx; char err[256];
 *   if (tm_ctx_create(NULL, &ctx, err, sizeof err)) { puts(err); ... }
 *   tm_model *m;
 *   if (tm_model_load(ctx, "horse2zebra.safetensors", &m)) puts(tm_ctx_error(ctx));
 *   tm_translate(m, &in, &out, NULL);
 *   tm_model_destroy(&m); tm_ctx_destroy(&ctx);
 *
 * Threading: a context and the models loaded into it are used by one thread
 * at a time. Separate contexts are independent. The library never prints and
 * never exits; messages go to the caller's log callback.
 */
#ifndef TRANSMUTE_H
#define TRANSMUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TM_BUILDING_LIB)
#define TM_API __attribute__((visibility("default")))
#else
#define TM_API
#endif

typedef enum tm_status {
    TM_OK = 0,
    TM_ERR_INVALID,     /* bad argument or unusable input (image size, format) */
    TM_ERR_IO,          /* a file could not be read or written */
    TM_ERR_FORMAT,      /* a model file is corrupt or does not match its metadata */
    TM_ERR_UNSUPPORTED, /* valid but not supported (arch, layer, dtype) */
    TM_ERR_NOMEM,       /* host or device memory exhausted */
    TM_ERR_DEVICE,      /* the Vulkan device failed or is missing */
    TM_ERR_CANCELLED,   /* the caller's cancel flag was set */
} tm_status;

/* A short constant name for a status ("corrupt model file", ...). */
TM_API const char *tm_status_str(tm_status s);

typedef enum tm_log_level {
    TM_LOG_NONE = 0,
    TM_LOG_ERR,
    TM_LOG_WARN,
    TM_LOG_INFO,
    TM_LOG_DEBUG,
} tm_log_level;

typedef void (*tm_log_fn)(void *priv, tm_log_level level, const char *msg);

typedef struct tm_ctx tm_ctx;
typedef struct tm_model tm_model;

/* ---- Devices -------------------------------------------------------- */

typedef enum tm_device_kind {
    TM_DEVICE_CPU = 0,
    TM_DEVICE_VK_DISCRETE,
    TM_DEVICE_VK_INTEGRATED,
    TM_DEVICE_VK_VIRTUAL,
    TM_DEVICE_VK_SOFTWARE, /* lavapipe/llvmpipe and the like: never picked by default */
    TM_DEVICE_VK_OTHER,
} tm_device_kind;

struct tm_device_info {
    tm_device_kind kind;
    int index;          /* Vulkan physical device index; -1 for the CPU */
    char name[256];
    char driver[128];   /* Vulkan driver name and version, or CPU core count */
    uint64_t memory;    /* largest device-local heap, bytes; host RAM for the CPU */
};

/* Lists the CPU backend (always entry 0) and every Vulkan device, up to max.
 * *count gets the number found (may exceed max), *picked the entry the
 * selector `device` would choose (NULL: TRANSMUTE_DEVICE or automatic), or -1
 * with a message in err when the selector matches nothing. */
TM_API tm_status tm_devices_list(const char *device, struct tm_device_info *list,
                                 int max, int *count, int *picked,
                                 char *err, size_t errlen);

/* ---- Context --------------------------------------------------------- */

struct tm_ctx_params {
    /* "cpu", "vulkan", a Vulkan device index, or part of a device name.
     * NULL or "" reads TRANSMUTE_DEVICE, then picks automatically: the best
     * Vulkan GPU (discrete > integrated > virtual), else the CPU. */
    const char *device;
    int threads;            /* CPU backend threads; 0 = all cores */
    bool validate;          /* enable VK_LAYER_KHRONOS_validation (also TRANSMUTE_VALIDATE=1) */
    tm_log_fn log;          /* NULL = silent */
    void *log_priv;
    tm_log_level log_level; /* 0 = TM_LOG_WARN */
};

/* Creates a context on the chosen device. On failure *out is NULL and err
 * holds a one-line message. params may be NULL (all defaults). */
TM_API tm_status tm_ctx_create(const struct tm_ctx_params *params, tm_ctx **out,
                               char *err, size_t errlen);

/* Frees the context and NULLs the handle; &NULL is a no-op. Models loaded in
 * it must be destroyed first. */
TM_API void tm_ctx_destroy(tm_ctx **ctx);

/* The last error message of any call on this context (or its models). */
TM_API const char *tm_ctx_error(const tm_ctx *ctx);

/* The device the context runs on. */
TM_API const struct tm_device_info *tm_ctx_device(const tm_ctx *ctx);

/* Number of validation-layer messages seen so far (0 without validation). */
TM_API int tm_ctx_validation_messages(const tm_ctx *ctx);

/* ---- Models ---------------------------------------------------------- */

struct tm_model_info {
    const char *arch;      /* "resnet", "unet", "stargan", "rrdbnet", "srresnet", "graph" */
    int input_nc, output_nc; /* image channels in and out */
    int pad_multiple;      /* image sides are padded to a multiple of this */
    int scale;             /* output side / input side: 1, or a super-resolution factor */
    /* The network's pixel values: image 0..1 maps linearly onto in_lo..in_hi
     * on the way in, and out_lo..out_hi back onto 0..1 on the way out
     * (-1..1 both for the GAN generators; 0..255 or 0..1 for most SR nets). */
    float in_lo, in_hi, out_lo, out_hi;
    uint64_t n_params;     /* number of learned scalars */
    int n_tensors;         /* tensors in the file */
    uint64_t file_size;    /* bytes */

    /* Conditioning (StarGAN). The generator takes a target label vector of
     * label_size values (0: an unconditioned model), tiled over the image
     * after the colour channels. Its first n_domains entries are the domains
     * named here, in order. A model trained on several datasets at once has
     * n_groups > 0: domain_group[i] is the dataset of domain i, and a one-hot
     * mask of n_groups entries (which dataset the label speaks for) follows
     * the domain entries. */
    int label_size;
    int n_domains;
    const char *const *domains;
    const int *domain_group;   /* NULL when n_groups == 0 */
    int n_groups;
    const char *const *groups;
};

/* Loads a safetensors model. Every tensor is checked against the
 * architecture its metadata describes; a problem is an error naming it. */
TM_API tm_status tm_model_load(tm_ctx *ctx, const char *path, tm_model **out);

/* Same from memory; the bytes are copied, the caller keeps its buffer. */
TM_API tm_status tm_model_load_memory(tm_ctx *ctx, const void *data, size_t size,
                                      tm_model **out);

TM_API void tm_model_destroy(tm_model **model);

TM_API const struct tm_model_info *tm_model_info(const tm_model *model);

/* A metadata value, or NULL. The string lives as long as the model. */
TM_API const char *tm_model_meta(const tm_model *model, const char *key);

/* Metadata entries in file order: returns false past the end. */
TM_API bool tm_model_meta_at(const tm_model *model, int i, const char **key,
                             const char **value);

/* Fills label[0..n) (n must be the model's label_size) for a target given
 * as a comma-separated list of domain names: those are 1, the others 0, and
 * for a multi-dataset model the mask marks the names' dataset. An unknown
 * name, names from two datasets, or a model without domains is an error. */
TM_API tm_status tm_model_label_from_domains(tm_model *model, const char *names,
                                             float *label, int n);

/* Forgets the statistics carried by smoothing (see tm_translate_params):
 * the next smoothed call uses its own image's, as after a scene cut. */
TM_API void tm_model_reset_stats(tm_model *model);

/* ---- Translation ----------------------------------------------------- */

typedef enum tm_sample_type {
    TM_U8 = 0,  /* 0..255 */
    TM_U16,     /* 0..65535 */
    TM_F32,     /* 0..1 */
} tm_sample_type;

/* An interleaved image in host memory. channels: 1 gray, 2 gray+alpha,
 * 3 RGB, 4 RGBA. stride is in bytes (0 = tightly packed). */
struct tm_image {
    void *data;
    int width, height;
    int channels;
    tm_sample_type type;
    size_t stride;
};

typedef bool (*tm_progress_fn)(void *priv, double fraction); /* return false to cancel */

struct tm_translate_params {
    tm_progress_fn progress;   /* called with 0..1 as work proceeds; may be NULL */
    void *progress_priv;
    const volatile int *cancel; /* checked between ops when non-NULL */
    const float *label;         /* conditioned models: label_size values */
    int label_size;
    /* Large images: > 0 runs every conv in tiles of at most this many output
     * pixels per side (at least 16), with bounded device memory; -1 never
     * tiles; 0 (default) tiles only on a Vulkan device whose memory the
     * whole-image plan would not fit comfortably. Tiling does not change the
     * result: norm statistics are always those of the whole image. Models
     * without per-image statistics (super-resolution) run whole tiles of the
     * input with a margin as wide as the network's receptive radius, cropped,
     * so there too the result is the whole image's. */
    int tile;
    /* Video. 0 (default): every norm layer uses this image's statistics,
     * exactly as the official test code. 0 < smoothing < 1: each norm
     * layer with per-image statistics (instance norm, batch norm with image
     * statistics; not batch norm with running ones) carries its per-channel
     * mean and biased variance across calls as an exponential moving
     * average, used = smoothing * carried + (1 - smoothing) * this image's,
     * so that what changes in one part of a frame (motion, noise) does not
     * make the static rest of it flicker. The carried statistics start
     * afresh (the call uses its image's own) on the first call, after a
     * change of the padded size or between tiled and whole-image runs,
     * after a failed call, and after tm_model_reset_stats (a scene cut).
     * Calls with 0 neither use nor change them. Other values, NaN
     * included, are an error (TM_ERR_INVALID). */
    float smoothing;
};

/* Translates in to out. out is info->scale times in on each side (the same
 * size for image-to-image models); any channels and type. Pixels map onto
 * the model's value range (info->in_lo..in_hi; for the GAN generators
 * x/255*2-1 as their official test code) and back from out_lo..out_hi,
 * clamped and rounded; sides are reflect-padded to the model's multiple
 * and cropped back. Alpha passes through untouched (bilinearly resized when
 * the model changes the size). A gray image feeds a 3-channel model as
 * R=G=B. out->data may equal in->data when both have the same layout and
 * size. A conditioned model (label_size > 0) needs params->label. */
TM_API tm_status tm_translate(tm_model *model, const struct tm_image *in,
                              struct tm_image *out,
                              const struct tm_translate_params *params);

#ifdef __cplusplus
}
#endif
#endif
