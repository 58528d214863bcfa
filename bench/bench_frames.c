/*
 * bench_frames: the core alone on a clip, the yardstick of
 * bench/bench_filter.sh.
 *
 *   bench_frames -m MODEL -s WxH --in FRAMES.rgb [-d DEVICE] [-n PASSES]
 *
 * FRAMES.rgb holds WxH rgb24 frames back to back (ffmpeg -f rawvideo
 * -pix_fmt rgb24), all read into memory first. Each is translated with
 * tm_translate, U8 in, U8 out, as the FFmpeg filter does on rgb24, PASSES
 * times over (default 1). Prints one line on stdout:
 *   frames N WxH load_ms L first_ms F cpu_ms C fps X
 * load_ms is the model's loading, first_ms the first frame (which plans),
 * fps the steady rate of the frames after it and cpu_ms the processor time
 * they took (user and system, all threads) a frame.
 */
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

/* User and system time of the process, all threads. */
static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int fail(const char *msg)
{
    fprintf(stderr, "bench_frames: %s\n", msg);
    return 1;
}

/* The whole file, its size in *size. */
static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (f && !fseek(f, 0, SEEK_END) && (n = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) &&
        (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        *size = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *device = "cpu", *in_path = NULL;
    int w = 0, h = 0, passes = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "-m"))
            model_path = v;
        else if (!strcmp(a, "-d"))
            device = v;
        else if (!strcmp(a, "-s"))
            sscanf(v, "%dx%d", &w, &h);
        else if (!strcmp(a, "--in"))
            in_path = v;
        else if (!strcmp(a, "-n"))
            passes = atoi(v);
    }
    if (!model_path || !in_path || w < 1 || h < 1 || passes < 1 || argc % 2 == 0) {
        fprintf(stderr, "usage: bench_frames -m MODEL -s WxH --in FRAMES.rgb [-d DEVICE] [-n PASSES]\n");
        return 2;
    }

    size_t frame_size = (size_t)w * (size_t)h * 3, size = 0;
    unsigned char *frames = read_file(in_path, &size);
    if (!frames || size % frame_size)
        return fail("cannot read the frames, or their size is not a multiple of WxHx3");
    int n = (int)(size / frame_size);
    unsigned char *out = malloc(frame_size);
    if (!out)
        return fail("out of memory");

    struct tm_ctx_params p = { .device = device };
    tm_ctx *ctx;
    tm_model *model;
    char err[256];
    if (tm_ctx_create(&p, &ctx, err, sizeof err) != TM_OK)
        return fail(err);
    double t0 = now_ms();
    if (tm_model_load(ctx, model_path, &model) != TM_OK)
        return fail(tm_ctx_error(ctx));
    double load_ms = now_ms() - t0, first_ms = 0, cpu0 = 0;

    int total = passes * n;
    if (total < 2)
        return fail("needs two frames at least: the first plans, the others are timed");
    t0 = now_ms();
    for (int k = 0; k < total; k++) {
        struct tm_image im = { frames + (size_t)(k % n) * frame_size, w, h, 3, TM_U8, 0 };
        struct tm_image om = { out, w, h, 3, TM_U8, 0 };
        if (tm_translate(model, &im, &om, NULL) != TM_OK)
            return fail(tm_ctx_error(ctx));
        if (k == 0) {
            first_ms = now_ms() - t0;
            t0 = now_ms();
            cpu0 = cpu_ms();
        }
    }
    double steady_ms = now_ms() - t0;
    printf("frames %d %dx%d load_ms %.1f first_ms %.1f cpu_ms %.2f fps %.3f\n", total, w, h,
           load_ms, first_ms, (cpu_ms() - cpu0) / (total - 1), (total - 1) * 1000.0 / steady_ms);

    tm_model_destroy(&model);
    tm_ctx_destroy(&ctx);
    free(frames);
    free(out);
    return 0;
}
