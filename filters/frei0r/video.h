/*
 * video.h: a Transmute model run on 8-bit RGBA video frames for a host with
 * no error channel (frei0r). Knows nothing of frei0r: plugin.c hands it the
 * current settings with every frame.
 *
 * Nothing is loaded until the first frame, so that hosts may construct the
 * filter just to probe it. The device and model are (re)created when the
 * settings name another model file or device. A failure (no or bad model,
 * no device, bad domains, a super-resolution model, which would change the
 * frame size, a failed translation) is printed once on stderr, and the
 * frames pass through unchanged until a setting changes.
 */
#ifndef TRANSMUTE_FREI0R_VIDEO_H
#define TRANSMUTE_FREI0R_VIDEO_H

#include <stddef.h>
#include <stdint.h>

struct video_settings {
    const char *model;   /* model file path */
    const char *device;  /* tm_ctx_params.device: "" automatic */
    const char *domains; /* StarGAN target domains, comma-separated; "" for other models */
    double blend;        /* 1: the translation, 0: the original, between: a mix */
    double smoothing;    /* 0: each frame's own norm statistics; > 0: tm_translate_params.smoothing */
    double scene_cut;    /* with smoothing: the threshold of scene_cut(), where the statistics restart */
};

struct video;

/* An empty runner; `who` prefixes its messages ("transmute (frei0r)") and
 * must outlive it. NULL when out of memory. */
struct video *video_create(const char *who);

/* Frees everything and NULLs the handle; &NULL is a no-op. */
void video_destroy(struct video **v);

/* Translates one RGBA frame (stride bytes per row, in both) into out, or
 * copies it there when that cannot be done. in and out must not overlap. */
void video_frame(struct video *v, const struct video_settings *s, const uint8_t *in,
                 uint8_t *out, int width, int height, size_t stride);

#endif
