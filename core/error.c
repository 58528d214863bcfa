/* error.c: status names, the context's error slot and the log callback. */
#include <stdarg.h>
#include <stdio.h>

#include "ctx.h"

const char *tm_status_str(tm_status s)
{
    switch (s) {
    case TM_OK: return "ok";
    case TM_ERR_INVALID: return "invalid input";
    case TM_ERR_IO: return "i/o error";
    case TM_ERR_FORMAT: return "corrupt or mismatched model file";
    case TM_ERR_UNSUPPORTED: return "unsupported";
    case TM_ERR_NOMEM: return "out of memory";
    case TM_ERR_DEVICE: return "device error";
    case TM_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

static void vlog(const tm_ctx *ctx, tm_log_level level, const char *fmt, va_list ap)
{
    tm_log_level max = ctx->params.log_level ? ctx->params.log_level : TM_LOG_WARN;
    if (!ctx->params.log || level > max)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    ctx->params.log(ctx->params.log_priv, level, msg);
}

void tm_log(const tm_ctx *ctx, tm_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(ctx, level, fmt, ap);
    va_end(ap);
}

tm_status tm_fail(tm_ctx *ctx, tm_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    /* One line, whatever the names quoted from a file (graph nodes, tensors,
     * metadata) hold. */
    for (char *p = ctx->err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    tm_log(ctx, TM_LOG_DEBUG, "error: %s", ctx->err);
    return s;
}
