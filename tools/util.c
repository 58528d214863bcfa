/* util.c: allocation wrappers, messages and small helpers of the CLI. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void *xmalloc_at(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "transmute: out of memory (%zu bytes) at %s:%d\n", n, file, line);
        exit(EXIT_FAIL);
    }
    return p;
}

void *xcalloc_at(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "transmute: out of memory (%zu x %zu bytes) at %s:%d\n", n, size,
                file, line);
        exit(EXIT_FAIL);
    }
    return p;
}

char *xstrdup_at(const char *s, const char *file, int line)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc_at(n, file, line);
    memcpy(p, s, n);
    return p;
}

void cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("transmute: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

_Noreturn void cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "transmute%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fprintf(stderr, "Try 'transmute%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
    exit(EXIT_USAGE);
}

void cli_log_fn(void *priv, tm_log_level level, const char *msg)
{
    const struct cli_log *lg = priv;
    if (level == TM_LOG_NONE || (lg && level > lg->level))
        return;
    if (lg && lg->line_open && *lg->line_open) {
        fputs("\r\033[K", stderr);
        *lg->line_open = false;
    }
    const char *tag = level == TM_LOG_ERR    ? "error: "
                      : level == TM_LOG_WARN ? "warning: "
                      : level == TM_LOG_DEBUG ? "debug: "
                                             : "";
    fprintf(stderr, "transmute: %s%s\n", tag, msg);
}

tm_log_level cli_log_level(int verbose, bool quiet)
{
    if (quiet && verbose == 0)
        return TM_LOG_ERR;
    if (verbose >= 2)
        return TM_LOG_DEBUG;
    if (verbose == 1)
        return TM_LOG_INFO;
    return TM_LOG_WARN;
}

bool cli_validate_env(void)
{
    const char *v = getenv("TRANSMUTE_VALIDATE");
    return v && *v && strcmp(v, "0") != 0;
}

int cli_validation_exit(const tm_ctx *ctx, int rc)
{
    if (!ctx || !cli_validate_env())
        return rc;
    int n = tm_ctx_validation_messages(ctx);
    if (n > 0) {
        cli_err("error: %d Vulkan validation message%s (TRANSMUTE_VALIDATE is set)", n,
                n == 1 ? "" : "s");
        return EXIT_VALIDATION;
    }
    return rc;
}

bool cli_parse_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

const char *cli_human_bytes(unsigned long long n, char *buf, size_t len)
{
    static const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu bytes", n);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}
