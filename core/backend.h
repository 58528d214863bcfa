/* backend.h: the interface each backend (CPU, Vulkan) implements.
 *
 * Lifecycle for one model:
 *   params_upload(graph)            once: copies/packs every parameter tensor
 *   plan_create(graph, params)      once per input size: activations, pipelines,
 *                                   recorded commands (graph already inferred)
 *   plan_run(plan, in, out, ...)    per image: host CHW float in, CHW float out
 *   plan_destroy / params_free
 * A backend reports failures through tm_fail(be->ctx, ...). */
#ifndef TM_BACKEND_H
#define TM_BACKEND_H

#include "ctx.h"
#include "graph.h"

struct tm_backend;

struct tm_run_opts {
    tm_progress_fn progress;   /* fraction of this run done, 0..1; may be NULL */
    void *progress_priv;
    const volatile int *cancel;
    /* 0: norms use this image's statistics and the carried ones are left
     * alone. In (0, 1): norms with per-image statistics blend them with
     * those the plan carries from its previous smoothed run (core/smooth.h)
     * and carry the result. A new plan carries nothing; reset_stats forgets
     * what it carries. After a failed run they are undefined, so the next
     * one should reset (tm_translate does). */
    float smoothing;
    bool reset_stats;
};

struct tm_backend_vtbl {
    const char *name;
    void (*destroy)(struct tm_backend *be);
    tm_status (*params_upload)(struct tm_backend *be, const struct tm_graph *g,
                               void **params);
    void (*params_free)(struct tm_backend *be, void *params);
    tm_status (*plan_create)(struct tm_backend *be, const struct tm_graph *g,
                             void *params, void **plan);
    /* in: numel(input tensor) floats, out: numel(output tensor) floats */
    tm_status (*plan_run)(struct tm_backend *be, void *plan, const float *in,
                          float *out, const struct tm_run_opts *opts);
    void (*plan_destroy)(struct tm_backend *be, void *plan);
};

struct tm_backend {
    const struct tm_backend_vtbl *vt;
    tm_ctx *ctx;
};

/* The CPU backend; threads = 0 uses every online core. */
tm_status tm_backend_cpu_create(tm_ctx *ctx, int threads, struct tm_backend **out);

/* The Vulkan backend on physical device `index`, with the Khronos validation
 * layer when validate is set (missing layer = error). Counts validation
 * messages into ctx->validation_messages and logs each at error level. */
tm_status tm_backend_vk_create(tm_ctx *ctx, int index, bool validate,
                               struct tm_backend **out);

/* Enumerates Vulkan devices for tm_devices_list (entries after the CPU).
 * Returns the number found; 0 with *why set when there is no Vulkan at all
 * (no loader, no driver). */
int tm_vk_enumerate(struct tm_device_info *list, int max, char *why, size_t whylen);

#endif
