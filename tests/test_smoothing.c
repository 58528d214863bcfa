/* test_smoothing.c: tm_translate_params.smoothing (norm statistics carried
 * across frames) on the CPU and on the Vulkan device (llvmpipe here) with
 * validation, whole-image and tiled.
 *
 * Usage: test_smoothing DIR STARGAN.safetensors
 * DIR is what tests/smoothing_ref.py wrote: models, a clip of frames and
 * PyTorch's smoothed outputs for them (tests/test_smoothing.sh runs both).
 * Checks: (a) smoothing 0 is bit-identical to a call without it, whatever
 * was carried; (b) a smoothed clip matches PyTorch, also through the tiled
 * path, with unsmoothed and rejected calls in between changing nothing;
 * (c) tm_model_reset_stats, a size change, a path change and a cancelled
 * call each start afresh, like a fresh model; batch norm with running
 * statistics is never smoothed; (d) in a still scene where only one region
 * changes (fresh noise each frame), the rest flickers much less with
 * smoothing; (e) values outside [0, 1) are rejected. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transmute.h"
#include "check.h"

#define N_FRAMES 4
#define SMOOTHING 0.6f  /* as tests/smoothing_ref.py */
#define TOL 1e-3
#define TILE 16

/* An RGB float image, rows top to bottom. */
struct img {
    float *p;
    int w, h;
};

static struct img img_new(int w, int h)
{
    return (struct img){ calloc((size_t)w * h * 3, sizeof(float)), w, h };
}

/* A little-endian colour PFM (rows stored bottom to top). */
static struct img read_pfm(const char *path)
{
    struct img im = { NULL, 0, 0 };
    FILE *f = fopen(path, "rb");
    float scale;
    bool ok = f && fscanf(f, "PF %d %d %f", &im.w, &im.h, &scale) == 3 && scale < 0 &&
              im.w > 0 && im.h > 0 && im.w < 4096 && im.h < 4096 && fgetc(f) != EOF;
    if (ok)
        im = img_new(im.w, im.h);
    for (int y = im.h - 1; ok && y >= 0; y--)
        ok = fread(im.p + (size_t)y * im.w * 3, sizeof(float) * 3, (size_t)im.w, f) == (size_t)im.w;
    if (f)
        fclose(f);
    if (!ok) {
        free(im.p);
        im.p = NULL;
    }
    return im;
}

static double max_diff(struct img a, struct img b)
{
    double d = 0;
    for (size_t i = 0; i < (size_t)a.w * a.h * 3; i++)
        d = fmax(d, fabs((double)a.p[i] - b.p[i]));
    return d;
}

static bool same(struct img a, struct img b)
{
    return a.w == b.w && a.h == b.h && !memcmp(a.p, b.p, sizeof(float) * (size_t)a.w * a.h * 3);
}

/* The top-left w x h of im. */
static struct img crop(struct img im, int w, int h)
{
    struct img c = img_new(w, h);
    for (int y = 0; y < h; y++)
        memcpy(c.p + (size_t)y * w * 3, im.p + (size_t)y * im.w * 3, sizeof(float) * w * 3);
    return c;
}

/* One model under test: its file, its label (StarGAN), its reference name. */
struct subject {
    const char *path;
    const float *label;
    int label_size;
    const char *ref;    /* ref-<ref>-<k>.pfm; NULL: running statistics */
};

static struct tm_translate_params params(const struct subject *s, float smoothing, int tile)
{
    return (struct tm_translate_params){ .label = s->label, .label_size = s->label_size,
                                         .tile = tile, .smoothing = smoothing };
}

static tm_status run(tm_model *m, struct img in, struct img out,
                     const struct tm_translate_params *p)
{
    struct tm_image a = { in.p, in.w, in.h, 3, TM_F32, 0 }, b = { out.p, out.w, out.h, 3, TM_F32, 0 };
    return tm_translate(m, &a, &b, p);
}

static tm_model *load(tm_ctx *ctx, const char *path)
{
    tm_model *m = NULL;
    CHECK(tm_model_load(ctx, path, &m) == TM_OK, "load %s: %s", path, tm_ctx_error(ctx));
    return m;
}

/* What a freshly loaded model makes of `in` as its first smoothed call. */
static struct img fresh(tm_ctx *ctx, const struct subject *s, struct img in, int tile)
{
    struct img out = img_new(in.w, in.h);
    tm_model *m = load(ctx, s->path);
    struct tm_translate_params p = params(s, SMOOTHING, tile);
    if (m)
        CHECK(run(m, in, out, &p) == TM_OK, "fresh: %s", tm_ctx_error(ctx));
    tm_model_destroy(&m);
    return out;
}

/* ---- (a), (b), (e) ------------------------------------------------------- */

/* Smoothing 0, the field left out, and repeats: the same bits, before and
 * after smoothed calls. */
static void check_off(tm_ctx *ctx, tm_model *m, const struct subject *s, const struct img *clip)
{
    struct img a = img_new(clip[0].w, clip[0].h), b = img_new(clip[0].w, clip[0].h);
    struct tm_translate_params none = { .label = s->label, .label_size = s->label_size };
    struct tm_translate_params zero = params(s, 0.0f, 0), on = params(s, SMOOTHING, 0);
    CHECK(run(m, clip[0], a, &none) == TM_OK && run(m, clip[0], b, &zero) == TM_OK && same(a, b),
          "%s: smoothing 0 differs from no smoothing: %s", s->path, tm_ctx_error(ctx));
    CHECK(run(m, clip[1], b, &on) == TM_OK && run(m, clip[2], b, &on) == TM_OK, "%s",
          tm_ctx_error(ctx));
    CHECK(run(m, clip[0], b, &zero) == TM_OK && same(a, b),
          "%s: smoothing 0 after smoothed calls differs", s->path);
    CHECK(run(m, clip[0], b, &none) == TM_OK && same(a, b), "%s: repeat differs", s->path);
    free(a.p), free(b.p);
}

static void check_rejected(tm_ctx *ctx, tm_model *m, const struct subject *s, struct img in,
                           struct img out)
{
    const float bad[] = { -0.1f, 1.0f, 1.5f, NAN, INFINITY, -INFINITY };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct tm_translate_params p = params(s, bad[i], 0);
        CHECK(run(m, in, out, &p) == TM_ERR_INVALID && strstr(tm_ctx_error(ctx), "smoothing"),
              "smoothing %g: %s", (double)bad[i], tm_ctx_error(ctx));
    }
}

/* The clip against PyTorch's smoothed outputs; an unsmoothed call and a
 * rejected one before frame 2 leave the carried statistics alone. */
static void check_clip(tm_ctx *ctx, const char *dir, const struct subject *s,
                       const struct img *clip, int tile)
{
    tm_model *m = load(ctx, s->path);
    struct img out = img_new(clip[0].w, clip[0].h);
    struct tm_translate_params on = params(s, SMOOTHING, tile), off = params(s, 0.0f, tile);
    double worst = 0;
    for (int k = 0; m && k < N_FRAMES; k++) {
        if (k == 2) {
            CHECK(run(m, clip[3], out, &off) == TM_OK, "%s", tm_ctx_error(ctx));
            check_rejected(ctx, m, s, clip[3], out);
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/ref-%s-%d.pfm", dir, s->ref, k);
        struct img ref = read_pfm(path);
        CHECK(ref.p && ref.w == out.w && ref.h == out.h, "cannot read %s", path);
        CHECK(run(m, clip[k], out, &on) == TM_OK, "%s", tm_ctx_error(ctx));
        double d = ref.p ? max_diff(out, ref) : INFINITY;
        CHECK(d <= TOL, "%s frame %d tile %d: %.3g from PyTorch", s->ref, k, tile, d);
        worst = fmax(worst, d);
        free(ref.p);
    }
    printf("  %-10s tile %2d: %d smoothed frames, max diff to PyTorch %.2g\n", s->ref, tile,
           N_FRAMES, worst);
    free(out.p);
    tm_model_destroy(&m);
}

/* ---- (c) ----------------------------------------------------------------- */

/* Calls 0 and 1 of clip smoothed on m, so that statistics are carried. */
static void carry_some(tm_ctx *ctx, tm_model *m, const struct subject *s, const struct img *clip,
                       struct img out, int tile)
{
    struct tm_translate_params on = params(s, SMOOTHING, tile);
    CHECK(run(m, clip[0], out, &on) == TM_OK && run(m, clip[1], out, &on) == TM_OK, "%s",
          tm_ctx_error(ctx));
}

static void check_afresh(tm_ctx *ctx, const struct subject *s, const struct img *clip)
{
    tm_model *m = load(ctx, s->path);
    struct img out = img_new(clip[0].w, clip[0].h), small = crop(clip[1], 29, 21);
    struct img small_out = img_new(small.w, small.h);
    struct img want = fresh(ctx, s, clip[2], 0), want_small = fresh(ctx, s, small, 0);
    struct img want_tiled = fresh(ctx, s, clip[2], TILE);
    struct tm_translate_params on = params(s, SMOOTHING, 0), tiled = params(s, SMOOTHING, TILE);
    volatile int stop = 1;
    struct tm_translate_params cancel = on;
    cancel.cancel = &stop;
    if (m) {
        carry_some(ctx, m, s, clip, out, 0);
        tm_model_reset_stats(m);
        CHECK(run(m, clip[2], out, &on) == TM_OK && same(out, want), "%s: reset", s->path);
        carry_some(ctx, m, s, clip, out, 0);
        CHECK(run(m, small, small_out, &on) == TM_OK && same(small_out, want_small),
              "%s: to another size", s->path);
        CHECK(run(m, clip[2], out, &on) == TM_OK && same(out, want), "%s: back", s->path);
        carry_some(ctx, m, s, clip, out, 0);
        CHECK(run(m, clip[2], out, &tiled) == TM_OK && same(out, want_tiled), "%s: to tiles",
              s->path);
        carry_some(ctx, m, s, clip, out, TILE);
        CHECK(run(m, clip[2], out, &on) == TM_OK && same(out, want), "%s: from tiles", s->path);
        carry_some(ctx, m, s, clip, out, 0);
        CHECK(run(m, clip[2], out, &cancel) == TM_ERR_CANCELLED, "%s", tm_ctx_error(ctx));
        CHECK(run(m, clip[2], out, &on) == TM_OK && same(out, want), "%s: after a cancel",
              s->path);
    }
    free(out.p), free(small.p), free(small_out.p), free(want.p), free(want_small.p),
        free(want_tiled.p);
    tm_model_destroy(&m);
}

/* Running statistics: smoothing changes nothing. */
static void check_running(tm_ctx *ctx, const struct subject *s, const struct img *clip)
{
    tm_model *m = load(ctx, s->path);
    struct img a = img_new(clip[0].w, clip[0].h), b = img_new(clip[0].w, clip[0].h);
    struct tm_translate_params on = params(s, SMOOTHING, 0), off = params(s, 0.0f, 0);
    for (int k = 0; m && k < N_FRAMES; k++)
        CHECK(run(m, clip[k], a, &on) == TM_OK && run(m, clip[k], b, &off) == TM_OK && same(a, b),
              "%s frame %d: running statistics were smoothed", s->path, k);
    free(a.p), free(b.p);
    tm_model_destroy(&m);
}

/* ---- (d) ----------------------------------------------------------------- */

enum { FW = 96, FH = 64, NOISY_COLS = 24, STILL_FROM = 64, FLICKER_FRAMES = 8 };

static uint64_t rng = 0x2545f4914f6cdd1dull;

static double uniform01(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}

static double gaussian(void)
{
    return sqrt(-2.0 * log(uniform01())) * cos(6.283185307179586 * uniform01());
}

/* A still image; fresh Gaussian noise (sigma) each frame in the first
 * `cols` columns (all of them: the whole frame). */
static void noisy_frame(struct img im, double sigma, int cols)
{
    for (int y = 0; y < im.h; y++)
        for (int x = 0; x < im.w; x++)
            for (int c = 0; c < 3; c++) {
                double v = 0.5 + 0.4 * sin(0.17 * (c + 1) * x + 0.11 * y) * cos(0.07 * (c + 2) * y);
                if (x < cols)
                    v += sigma * gaussian();
                im.p[((size_t)y * im.w + x) * 3 + c] = (float)fmin(fmax(v, 0.0), 1.0);
            }
}

/* Mean absolute change of the output's columns x0.. from frame to frame. */
static double flicker(tm_ctx *ctx, const struct subject *s, float smoothing, int cols, int x0)
{
    tm_model *m = load(ctx, s->path);
    struct img in = img_new(FW, FH), prev = img_new(FW, FH), out = img_new(FW, FH);
    struct tm_translate_params p = params(s, smoothing, 0);
    double sum = 0;
    long n = 0;
    rng = 0x2545f4914f6cdd1dull; /* the same noise for every setting */
    for (int f = 0; m && f < FLICKER_FRAMES; f++) {
        noisy_frame(in, 0.03, cols);
        CHECK(run(m, in, out, &p) == TM_OK, "%s", tm_ctx_error(ctx));
        for (int y = 0; f && y < FH; y++)
            for (size_t i = (size_t)x0 * 3; i < (size_t)FW * 3; i++, n++)
                sum += fabs(out.p[(size_t)y * FW * 3 + i] - prev.p[(size_t)y * FW * 3 + i]);
        memcpy(prev.p, out.p, sizeof(float) * FW * FH * 3);
    }
    free(in.p), free(prev.p), free(out.p);
    tm_model_destroy(&m);
    return n ? sum / (double)n : INFINITY;
}

static void check_flicker(tm_ctx *ctx, const struct subject *s, const char *name)
{
    double off = flicker(ctx, s, 0.0f, NOISY_COLS, STILL_FROM);
    double on = flicker(ctx, s, 0.9f, NOISY_COLS, STILL_FROM);
    printf("  %-10s flicker of the still part (noise sigma 0.03 in the first %d of %d columns, "
           "%d frames): smoothing 0: %.5f, 0.9: %.5f (%.2fx)\n",
           name, NOISY_COLS, FW, FLICKER_FRAMES, off, on, on / off);
    CHECK(on < 0.7 * off, "%s: smoothing 0.9 flickers %.5f, 0: %.5f", name, on, off);
}

/* Noise over the whole frame: printed, not checked. Per-image statistics
 * already cancel the part of such noise that moves them, so carrying them
 * cannot reduce this flicker. */
static void show_whole_frame_noise(tm_ctx *ctx, const struct subject *s, const char *name)
{
    printf("  %-10s (noise over the whole frame, for comparison: smoothing 0: %.5f, 0.9: %.5f)\n",
           name, flicker(ctx, s, 0.0f, FW, 0), flicker(ctx, s, 0.9f, FW, 0));
}

/* ---- main ---------------------------------------------------------------- */

static void run_all(tm_ctx *ctx, const char *dir, const struct subject *subjects, int n,
                    const struct img *clip)
{
    for (int i = 0; i < n; i++) {
        const struct subject *s = &subjects[i];
        if (!s->ref) {
            check_running(ctx, s, clip);
            continue;
        }
        tm_model *m = load(ctx, s->path);
        if (m)
            check_off(ctx, m, s, clip);
        tm_model_destroy(&m);
        check_clip(ctx, dir, s, clip, 0);
        check_clip(ctx, dir, s, clip, TILE);
        check_afresh(ctx, s, clip);
    }
    check_flicker(ctx, &subjects[0], subjects[0].ref);
    check_flicker(ctx, &subjects[2], subjects[2].ref);
    show_whole_frame_noise(ctx, &subjects[0], subjects[0].ref);
}

static tm_ctx *open_ctx(const char *device, bool validate)
{
    char err[256];
    tm_ctx *ctx = NULL;
    tm_status s = tm_ctx_create(&(struct tm_ctx_params){ .device = device, .validate = validate },
                                &ctx, err, sizeof err);
    CHECK(s == TM_OK, "context '%s' (a Vulkan device is required): %s", device, err);
    if (ctx)
        printf("device: %s\n", tm_ctx_device(ctx)->name);
    return ctx;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        printf("usage: test_smoothing DIR STARGAN.safetensors\n0 passed, 1 failed\n");
        return 1;
    }
    const char *dir = argv[1];
    char paths[3][4096];
    struct img clip[N_FRAMES];
    for (int k = 0; k < N_FRAMES; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/frame%d.pfm", dir, k);
        clip[k] = read_pfm(path);
        CHECK(clip[k].p, "cannot read %s", path);
        if (!clip[k].p)
            return 1;
    }
    static const float stargan_label[15] = { 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    const char *names[3] = { "resnet", "unet-image", "unet-running" };
    for (int i = 0; i < 3; i++)
        snprintf(paths[i], sizeof paths[i], "%s/%s.safetensors", dir, names[i]);
    const struct subject subjects[] = {
        { paths[0], NULL, 0, "resnet" },
        { paths[1], NULL, 0, "unet-image" },
        { argv[2], stargan_label, 15, "stargan" },
        { paths[2], NULL, 0, NULL },
    };
    int n = (int)(sizeof subjects / sizeof *subjects);

    tm_ctx *ctx = open_ctx("cpu", false);
    if (ctx)
        run_all(ctx, dir, subjects, n, clip);
    tm_ctx_destroy(&ctx);

    const char *vk = getenv("TM_TEST_VK_DEVICE") ? getenv("TM_TEST_VK_DEVICE") : "vulkan";
    ctx = open_ctx(vk, true);
    if (ctx) {
        run_all(ctx, dir, subjects, n, clip);
        CHECK(tm_ctx_validation_messages(ctx) == 0, "%d validation messages",
              tm_ctx_validation_messages(ctx));
    }
    tm_ctx_destroy(&ctx);
    for (int k = 0; k < N_FRAMES; k++)
        free(clip[k].p);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
