/* ctx.h: the context object every part of the core reaches its log,
 * its error slot and its backend through. Private to the library. */
#ifndef TM_CTX_H
#define TM_CTX_H

#include "transmute.h"

struct tm_backend;

struct tm_ctx {
    struct tm_ctx_params params;
    struct tm_device_info device;
    struct tm_backend *backend;
    int validation_messages; /* incremented by the Vulkan debug callback */
    char err[512];
};

/* Formats a message into ctx->err (read by tm_ctx_error) and returns s.
 * It is logged only at debug level: the caller decides how to show it. */
tm_status tm_fail(tm_ctx *ctx, tm_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs through the caller's callback when level is enabled. */
void tm_log(const tm_ctx *ctx, tm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TM_ERR(ctx, ...) tm_log(ctx, TM_LOG_ERR, __VA_ARGS__)
#define TM_WARN(ctx, ...) tm_log(ctx, TM_LOG_WARN, __VA_ARGS__)
#define TM_INFO(ctx, ...) tm_log(ctx, TM_LOG_INFO, __VA_ARGS__)
#define TM_DEBUG(ctx, ...) tm_log(ctx, TM_LOG_DEBUG, __VA_ARGS__)

#endif
