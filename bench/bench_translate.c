/*
 * bench_translate: times tm_translate through the public API only.
 *
 *   bench_translate --list-devices
 *   bench_translate -m MODEL [-d DEVICE] [-s WxH] [-n REPS] [-t THREADS]
 *                   [--in RAW] [--out RAW] [--validate] [-v]
 *
 * Loads MODEL on DEVICE (a tm_ctx_params.device selector: "cpu", "vulkan",
 * an index or part of a device name), translates one WxH RGB TM_F32 image
 * once as a warm-up (it builds the plan for that size) and then REPS more
 * times, and prints one JSON object on stdout:
 *   {"device": ..., "kind": ..., "width": W, "height": H, "load_ms": ...,
 *    "warmup_ms": ..., "reps_ms": [...], "median_ms": ..., "peak_rss_kib": ...}
 * The input is a fixed pseudo-random image, or --in: raw little-endian
 * float32 H*W*3 interleaved, rows top to bottom, values in 0..1. --out writes
 * the last output in the same raw layout (for checking against PyTorch),
 * scale times larger on each side for a super-resolution model.
 * -v logs the library's debug messages on stderr.
 * --list-devices prints the devices tm_devices_list finds as a JSON array.
 * Exit status: 0 ok, 1 failure, 2 usage, 3 validation messages seen.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "transmute.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *kind_name(tm_device_kind k)
{
    switch (k) {
    case TM_DEVICE_CPU: return "cpu";
    case TM_DEVICE_VK_DISCRETE: return "vk-discrete";
    case TM_DEVICE_VK_INTEGRATED: return "vk-integrated";
    case TM_DEVICE_VK_VIRTUAL: return "vk-virtual";
    case TM_DEVICE_VK_SOFTWARE: return "vk-software";
    default: return "vk-other";
    }
}

/* Prints s as a JSON string literal. */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void log_fn(void *priv, tm_log_level level, const char *msg)
{
    (void)priv;
    fprintf(stderr, "bench_translate: %s%s\n", level == TM_LOG_ERR ? "error: " : "", msg);
}

static int list_devices(void)
{
    struct tm_device_info list[32];
    int count = 0, picked = -1;
    char err[256] = "";
    if (tm_devices_list(NULL, list, 32, &count, &picked, err, sizeof err) != TM_OK) {
        fprintf(stderr, "bench_translate: %s\n", err);
        return 1;
    }
    if (count > 32)
        count = 32;
    printf("[");
    for (int i = 0; i < count; i++) {
        printf("%s{\"index\": %d, \"kind\": \"%s\", \"name\": ", i ? ", " : "",
               list[i].index, kind_name(list[i].kind));
        json_str(list[i].name);
        printf(", \"driver\": ");
        json_str(list[i].driver);
        printf("}");
    }
    printf("]\n");
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_translate --list-devices\n"
            "       bench_translate -m MODEL [-d DEVICE] [-s WxH] [-n REPS] [-t THREADS]\n"
            "                       [--in RAW] [--out RAW] [--validate] [-v]\n");
}

static int read_raw(const char *path, float *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bench_translate: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t got = fread(buf, sizeof *buf, n, f);
    fclose(f);
    if (got != n) {
        fprintf(stderr, "bench_translate: %s: expected %zu floats, read %zu\n", path, n, got);
        return -1;
    }
    return 0;
}

static int write_raw(const char *path, const float *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, sizeof *buf, n, f) != n || fclose(f)) {
        fprintf(stderr, "bench_translate: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *device = "cpu", *in_path = NULL, *out_path = NULL;
    int w = 256, h = 256, reps = 5, threads = 0;
    bool validate = false;
    tm_log_level level = TM_LOG_WARN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--list-devices"))
            return list_devices();
        if (!strcmp(a, "--validate")) {
            validate = true;
            continue;
        }
        if (!strcmp(a, "-v")) {
            level = TM_LOG_DEBUG;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model_path = v;
        else if (!strcmp(a, "-d") || !strcmp(a, "--device"))
            device = v;
        else if (!strcmp(a, "-s") || !strcmp(a, "--size")) {
            if (sscanf(v, "%dx%d", &w, &h) != 2 || w < 1 || h < 1) {
                usage();
                return 2;
            }
        } else if (!strcmp(a, "-n") || !strcmp(a, "--reps"))
            reps = atoi(v);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--in"))
            in_path = v;
        else if (!strcmp(a, "--out"))
            out_path = v;
        else {
            usage();
            return 2;
        }
    }
    if (!model_path || reps < 0) {
        usage();
        return 2;
    }

    size_t n = (size_t)w * (size_t)h * 3;
    float *in = malloc(n * sizeof *in), *out = NULL;
    double *ms = malloc(((size_t)reps + 1) * sizeof *ms);
    if (!in || !ms) {
        fprintf(stderr, "bench_translate: out of memory\n");
        return 1;
    }
    if (in_path) {
        if (read_raw(in_path, in, n))
            return 1;
    } else {
        uint32_t s = 12345u;   /* xorshift32: same image every run */
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            in[i] = (float)(s >> 8) / 16777216.0f;
        }
    }

    struct tm_ctx_params p = { .device = device, .threads = threads, .validate = validate,
                               .log = log_fn, .log_level = level };
    tm_ctx *ctx = NULL;
    char err[256] = "";
    if (tm_ctx_create(&p, &ctx, err, sizeof err) != TM_OK) {
        fprintf(stderr, "bench_translate: %s\n", err);
        return 1;
    }
    tm_model *model = NULL;
    double t0 = now_ms();
    if (tm_model_load(ctx, model_path, &model) != TM_OK) {
        fprintf(stderr, "bench_translate: %s\n", tm_ctx_error(ctx));
        tm_ctx_destroy(&ctx);
        return 1;
    }
    double load_ms = now_ms() - t0;

    /* Super-resolution models make a larger image. */
    int sc = tm_model_info(model)->scale;
    size_t n_out = n * (size_t)sc * (size_t)sc;
    out = malloc(n_out * sizeof *out);
    if (!out) {
        fprintf(stderr, "bench_translate: out of memory\n");
        return 1;
    }
    struct tm_image im = { .data = in, .width = w, .height = h, .channels = 3, .type = TM_F32 };
    struct tm_image om = { .data = out, .width = w * sc, .height = h * sc, .channels = 3,
                           .type = TM_F32 };
    double warm = 0;
    for (int r = -1; r < reps; r++) {
        t0 = now_ms();
        if (tm_translate(model, &im, &om, NULL) != TM_OK) {
            fprintf(stderr, "bench_translate: %s\n", tm_ctx_error(ctx));
            return 1;
        }
        double dt = now_ms() - t0;
        if (r < 0)
            warm = dt;
        else
            ms[r] = dt;
        fprintf(stderr, "bench_translate: %s %.1f ms\n", r < 0 ? "warm-up" : "rep", dt);
    }
    if (out_path && write_raw(out_path, out, n_out))
        return 1;

    const struct tm_device_info *dev = tm_ctx_device(ctx);
    int vmsgs = tm_ctx_validation_messages(ctx);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"device\": ");
    json_str(dev->name);
    printf(", \"kind\": \"%s\", \"width\": %d, \"height\": %d, \"scale\": %d, \"load_ms\": %.3f, "
           "\"warmup_ms\": %.3f, \"reps_ms\": [",
           kind_name(dev->kind), w, h, sc, load_ms, warm);
    for (int r = 0; r < reps; r++)
        printf("%s%.3f", r ? ", " : "", ms[r]);
    double med = 0;
    if (reps > 0) {
        qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
        med = reps % 2 ? ms[reps / 2] : (ms[reps / 2 - 1] + ms[reps / 2]) / 2;
    }
    printf("], \"median_ms\": %.3f, \"validation_messages\": %d, \"peak_rss_kib\": %ld}\n",
           med, vmsgs, ru.ru_maxrss);
    fflush(stdout);

    tm_model_destroy(&model);
    tm_ctx_destroy(&ctx);
    free(in);
    free(out);
    free(ms);
    return validate && vmsgs ? 3 : 0;
}
