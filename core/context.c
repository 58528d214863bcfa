/* context.c: device listing and choice, and the context object.
 *
 * The automatic choice is the best Vulkan GPU (discrete > integrated >
 * virtual); software rasterizers such as lavapipe are only used when asked
 * for, by "vulkan" when nothing else exists, by index or by name. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

#define MAX_DEVICES 16

static int kind_rank(tm_device_kind k, int allow_software)
{
    switch (k) {
    case TM_DEVICE_VK_DISCRETE: return 5;
    case TM_DEVICE_VK_INTEGRATED: return 4;
    case TM_DEVICE_VK_VIRTUAL: return 3;
    case TM_DEVICE_VK_OTHER: return 2;
    case TM_DEVICE_VK_SOFTWARE: return allow_software ? 1 : 0;
    default: return 0;
    }
}

static int best_vulkan(const struct tm_device_info *list, int n, int allow_software)
{
    int best = -1, best_rank = 0;
    for (int i = 1; i < n; i++) {
        int r = kind_rank(list[i].kind, allow_software);
        if (r > best_rank) {
            best = i;
            best_rank = r;
        }
    }
    return best;
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Index into list of the device `sel` names, or -1 with err set. */
static int pick_device(const char *sel, const struct tm_device_info *list, int n,
                       const char *no_vk_why, char *err, size_t errlen)
{
    if (!sel || !*sel || !strcmp(sel, "auto")) {
        int i = best_vulkan(list, n, 0);
        return i > 0 ? i : 0;
    }
    if (!strcmp(sel, "cpu"))
        return 0;
    if (n <= 1) {
        snprintf(err, errlen, "device '%s' asked for, but there is no Vulkan device (%s)", sel,
                 no_vk_why[0] ? no_vk_why : "none found");
        return -1;
    }
    if (!strcmp(sel, "vulkan"))
        return best_vulkan(list, n, 1);
    for (int i = 1; i < n; i++) {
        if (all_digits(sel) ? list[i].index == atoi(sel) : contains_nocase(list[i].name, sel))
            return i;
    }
    snprintf(err, errlen, "no Vulkan device matches '%s' (see `transmute devices`)", sel);
    return -1;
}

static void cpu_info(struct tm_device_info *d)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    memset(d, 0, sizeof *d);
    d->kind = TM_DEVICE_CPU;
    d->index = -1;
    snprintf(d->name, sizeof d->name, "CPU");
    snprintf(d->driver, sizeof d->driver, "native, %ld threads", cores > 0 ? cores : 1);
    d->memory = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

static const char *selector_or_env(const char *device)
{
    if (device && *device)
        return device;
    return getenv("TRANSMUTE_DEVICE");
}

tm_status tm_devices_list(const char *device, struct tm_device_info *list, int max,
                          int *count, int *picked, char *err, size_t errlen)
{
    struct tm_device_info all[MAX_DEVICES];
    char why[256] = "";
    cpu_info(&all[0]);
    int n = 1 + tm_vk_enumerate(all + 1, MAX_DEVICES - 1, why, sizeof why);
    for (int i = 0; i < n && i < max; i++)
        list[i] = all[i];
    *count = n;
    *picked = pick_device(selector_or_env(device), all, n, why, err, errlen);
    return *picked < 0 ? TM_ERR_INVALID : TM_OK;
}

static int env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static tm_status open_backend(tm_ctx *ctx)
{
    struct tm_device_info list[MAX_DEVICES];
    char why[256] = "";
    const char *sel = selector_or_env(ctx->params.device);
    cpu_info(&list[0]);
    /* Asking for the CPU must not touch the Vulkan loader at all. */
    int n = sel && !strcmp(sel, "cpu") ? 1 : 1 + tm_vk_enumerate(list + 1, MAX_DEVICES - 1, why, sizeof why);
    int i = pick_device(sel, list, n, why, ctx->err, sizeof ctx->err);
    if (i < 0)
        return TM_ERR_INVALID;
    ctx->device = list[i];
    if (i == 0) {
        if (n == 1 && !(sel && *sel))
            TM_WARN(ctx, "no Vulkan device (%s): running on the CPU backend", why[0] ? why : "none found");
        else
            TM_INFO(ctx, "running on the CPU backend");
        return tm_backend_cpu_create(ctx, ctx->params.threads, &ctx->backend);
    }
    TM_INFO(ctx, "running on Vulkan device %d: %s (%s)", list[i].index, list[i].name, list[i].driver);
    return tm_backend_vk_create(ctx, list[i].index, ctx->params.validate, &ctx->backend);
}

tm_status tm_ctx_create(const struct tm_ctx_params *params, tm_ctx **out, char *err, size_t errlen)
{
    *out = NULL;
    tm_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        snprintf(err, errlen, "out of memory creating the context");
        return TM_ERR_NOMEM;
    }
    if (params)
        ctx->params = *params;
    ctx->params.validate = ctx->params.validate || env_flag("TRANSMUTE_VALIDATE");
    tm_status s = open_backend(ctx);
    ctx->params.device = NULL; /* the caller's string need only live for this call */
    if (s) {
        snprintf(err, errlen, "%s", ctx->err);
        tm_ctx_destroy(&ctx);
        return s;
    }
    *out = ctx;
    return TM_OK;
}

void tm_ctx_destroy(tm_ctx **pctx)
{
    tm_ctx *ctx = *pctx;
    if (!ctx)
        return;
    if (ctx->backend)
        ctx->backend->vt->destroy(ctx->backend);
    free(ctx);
    *pctx = NULL;
}

const char *tm_ctx_error(const tm_ctx *ctx)
{
    return ctx->err;
}

const struct tm_device_info *tm_ctx_device(const tm_ctx *ctx)
{
    return &ctx->device;
}

int tm_ctx_validation_messages(const tm_ctx *ctx)
{
    return ctx->validation_messages;
}
