/* test_api.c: the public C API end to end, on the CPU backend and on the
 * Vulkan device (llvmpipe here) with validation.
 *
 * Usage: test_api MODEL.safetensors [STARGAN.safetensors]   (the shipped demos)
 * Checks: device selection errors, loading from memory, every sample type,
 * row strides, alpha, gray input, in-place translation, progress and cancel,
 * bad image sizes, re-planning on a size change, CPU/Vulkan agreement; with
 * the StarGAN demo (CelebA + RaFD + mask): domains in the model info, labels
 * from names and their errors, the label's effect and its checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transmute.h"
#include "check.h"


static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*size);
    if (b && fread(b, 1, *size, f) != *size) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* A smooth pattern with detail, channels interleaved, 8-bit. */
static unsigned char *pattern(int w, int h, int ch)
{
    unsigned char *p = malloc((size_t)w * h * ch);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++)
                p[((size_t)y * w + x) * ch + c] =
                    (unsigned char)(127 + 120 * sin(0.13 * x * (c + 1) + 0.07 * y) * cos(0.05 * y * (c + 2)));
    return p;
}

static int max_diff_u8(const unsigned char *a, const unsigned char *b, size_t n, int stride_a, int stride_b)
{
    int d = 0;
    for (size_t i = 0; i < n; i++) {
        int v = abs((int)a[i * stride_a] - (int)b[i * stride_b]);
        if (v > d)
            d = v;
    }
    return d;
}

static bool record_progress(void *priv, double f)
{
    double *last = priv;
    if (f < last[0])
        last[1] = 1; /* went backwards */
    last[0] = f;
    last[2] += 1;
    return true;
}

static bool stop_progress(void *priv, double f)
{
    (void)priv;
    (void)f;
    return false; /* the first report already cancels */
}

enum { W = 37, H = 53 };

static void test_layouts(tm_model *m, const unsigned char *rgb, unsigned char *ref)
{
    struct tm_image in = { (void *)rgb, W, H, 3, TM_U8, 0 };
    struct tm_image out = { ref, W, H, 3, TM_U8, 0 };
    CHECK(tm_translate(m, &in, &out, NULL) == TM_OK, "%s", "translate");

    /* Strided rows with padding bytes that must stay untouched. */
    size_t stride = W * 3 + 13;
    unsigned char *si = malloc(stride * H), *so = malloc(stride * H);
    memset(si, 0xAB, stride * H);
    memset(so, 0xCD, stride * H);
    for (int y = 0; y < H; y++)
        memcpy(si + y * stride, rgb + (size_t)y * W * 3, W * 3);
    struct tm_image sin = { si, W, H, 3, TM_U8, stride }, sout = { so, W, H, 3, TM_U8, stride };
    CHECK(tm_translate(m, &sin, &sout, NULL) == TM_OK, "%s", "strided");
    int d = 0, pad_ok = 1;
    for (int y = 0; y < H; y++) {
        int dy = max_diff_u8(so + y * stride, ref + (size_t)y * W * 3, W * 3, 1, 1);
        d = dy > d ? dy : d;
        for (size_t k = W * 3; k < stride; k++)
            pad_ok &= so[y * stride + k] == 0xCD;
    }
    CHECK(d == 0 && pad_ok, "strided diff %d, padding kept %d", d, pad_ok);

    /* 16-bit and float inputs and outputs agree with 8-bit. */
    uint16_t *i16 = malloc(sizeof *i16 * W * H * 3), *o16 = malloc(sizeof *o16 * W * H * 3);
    float *f32 = malloc(sizeof *f32 * W * H * 3), *of32 = malloc(sizeof *of32 * W * H * 3);
    for (int i = 0; i < W * H * 3; i++) {
        i16[i] = (uint16_t)(rgb[i] * 257);
        f32[i] = rgb[i] / 255.0f;
    }
    struct tm_image in16 = { i16, W, H, 3, TM_U16, 0 }, out16 = { o16, W, H, 3, TM_U16, 0 };
    struct tm_image inf = { f32, W, H, 3, TM_F32, 0 }, outf = { of32, W, H, 3, TM_F32, 0 };
    CHECK(tm_translate(m, &in16, &out16, NULL) == TM_OK, "%s", "u16");
    CHECK(tm_translate(m, &inf, &outf, NULL) == TM_OK, "%s", "f32");
    double d16 = 0, df = 0;
    for (int i = 0; i < W * H * 3; i++) {
        d16 = fmax(d16, fabs(o16[i] / 257.0 - ref[i]));
        df = fmax(df, fabs(of32[i] * 255.0 - ref[i]));
    }
    CHECK(d16 <= 0.51 && df <= 0.51, "u16 diff %.3f, f32 diff %.3f (8-bit steps)", d16, df);

    /* In place on the caller's buffer. */
    unsigned char *ip = malloc(W * H * 3);
    memcpy(ip, rgb, W * H * 3);
    struct tm_image ipi = { ip, W, H, 3, TM_U8, 0 };
    CHECK(tm_translate(m, &ipi, &ipi, NULL) == TM_OK, "%s", "in place");
    CHECK(max_diff_u8(ip, ref, W * H * 3, 1, 1) == 0, "%s", "in-place result differs");
    free(si), free(so), free(i16), free(o16), free(f32), free(of32), free(ip);
}

static void test_alpha_gray(tm_model *m, const unsigned char *rgb, const unsigned char *ref)
{
    unsigned char *rgba = malloc(W * H * 4), *orgba = malloc(W * H * 4);
    for (int i = 0; i < W * H; i++) {
        memcpy(rgba + 4 * i, rgb + 3 * i, 3);
        rgba[4 * i + 3] = (unsigned char)(i * 7);
    }
    struct tm_image in = { rgba, W, H, 4, TM_U8, 0 }, out = { orgba, W, H, 4, TM_U8, 0 };
    CHECK(tm_translate(m, &in, &out, NULL) == TM_OK, "%s", "rgba");
    CHECK(max_diff_u8(orgba + 3, rgba + 3, W * H, 4, 4) == 0, "%s", "alpha changed");
    int d = 0;
    for (int c = 0; c < 3; c++) {
        int dc = max_diff_u8(orgba + c, ref + c, W * H, 4, 3);
        d = dc > d ? dc : d;
    }
    CHECK(d == 0, "rgba color differs from rgb by %d", d);

    /* Gray feeds R=G=B. */
    unsigned char *gray = malloc(W * H), *g3 = malloc(W * H * 3), *og = malloc(W * H * 3),
                  *og3 = malloc(W * H * 3);
    for (int i = 0; i < W * H; i++)
        gray[i] = g3[3 * i] = g3[3 * i + 1] = g3[3 * i + 2] = rgb[3 * i + 1];
    struct tm_image gi = { gray, W, H, 1, TM_U8, 0 }, go = { og, W, H, 3, TM_U8, 0 };
    struct tm_image g3i = { g3, W, H, 3, TM_U8, 0 }, g3o = { og3, W, H, 3, TM_U8, 0 };
    CHECK(tm_translate(m, &gi, &go, NULL) == TM_OK && tm_translate(m, &g3i, &g3o, NULL) == TM_OK,
          "%s", "gray");
    CHECK(max_diff_u8(og, og3, W * H * 3, 1, 1) == 0, "%s", "gray != replicated gray");
    struct tm_image gray_out = { og, W, H, 1, TM_U8, 0 };
    CHECK(tm_translate(m, &g3i, &gray_out, NULL) == TM_ERR_INVALID, "%s", "1-channel output of a 3-channel model");
    free(rgba), free(orgba), free(gray), free(g3), free(og), free(og3);
}

static void test_progress_cancel(tm_ctx *ctx, tm_model *m, const unsigned char *rgb)
{
    unsigned char *out = malloc(W * H * 3);
    struct tm_image in = { (void *)rgb, W, H, 3, TM_U8, 0 }, o = { out, W, H, 3, TM_U8, 0 };
    double state[3] = { 0, 0, 0 };
    struct tm_translate_params p = { .progress = record_progress, .progress_priv = state };
    CHECK(tm_translate(m, &in, &o, &p) == TM_OK, "%s", "progress run");
    CHECK(state[2] >= 2 && !state[1] && fabs(state[0] - 1.0) < 1e-9,
          "progress calls %.0f, backwards %.0f, last %.3f", state[2], state[1], state[0]);
    volatile int cancel = 1;
    struct tm_translate_params pc = { .cancel = &cancel };
    CHECK(tm_translate(m, &in, &o, &pc) == TM_ERR_CANCELLED, "cancel flag: %s", tm_ctx_error(ctx));
    struct tm_translate_params ps = { .progress = stop_progress };
    CHECK(tm_translate(m, &in, &o, &ps) == TM_ERR_CANCELLED, "progress false: %s", tm_ctx_error(ctx));
    CHECK(tm_translate(m, &in, &o, NULL) == TM_OK, "%s", "runs again after a cancel");
    free(out);
}

static void test_bad_images(tm_ctx *ctx, tm_model *m)
{
    unsigned char px[16] = { 0 };
    struct tm_image zero = { px, 0, 0, 3, TM_U8, 0 }, one = { px, 1, 1, 3, TM_U8, 0 };
    CHECK(tm_translate(m, &zero, &zero, NULL) == TM_ERR_INVALID && strstr(tm_ctx_error(ctx), "0x0"),
          "0x0: %s", tm_ctx_error(ctx));
    struct tm_image huge = { px, 70000, 10, 3, TM_U8, 0 };
    CHECK(tm_translate(m, &huge, &huge, NULL) == TM_ERR_INVALID && strstr(tm_ctx_error(ctx), "too large"),
          "huge: %s", tm_ctx_error(ctx));
    struct tm_image two = { px, 2, 1, 3, TM_U8, 0 };
    CHECK(tm_translate(m, &one, &two, NULL) == TM_ERR_INVALID, "size mismatch: %s", tm_ctx_error(ctx));
    struct tm_image short_stride = { px, 4, 1, 3, TM_U8, 5 };
    CHECK(tm_translate(m, &short_stride, &short_stride, NULL) == TM_ERR_INVALID, "stride: %s",
          tm_ctx_error(ctx));
    unsigned char o1[3];
    struct tm_image out1 = { o1, 1, 1, 3, TM_U8, 0 };
    CHECK(tm_translate(m, &one, &out1, NULL) == TM_OK, "1x1 image: %s", tm_ctx_error(ctx));
}

static void test_model_memory(tm_ctx *ctx, const unsigned char *bytes, size_t size)
{
    tm_model *m = NULL;
    CHECK(tm_model_load_memory(ctx, bytes, size / 2, &m) != TM_OK && !m, "%s", "truncated model loads");
    CHECK(strstr(tm_ctx_error(ctx), "past the") != NULL, "message: %s", tm_ctx_error(ctx));
    tm_model_destroy(&m);
    CHECK(tm_model_load(ctx, "/nonexistent/model.safetensors", &m) == TM_ERR_IO, "%s", "missing file");
}

/* Runs every test on one context; out gets the reference translation. */
static void run_all(tm_ctx *ctx, const unsigned char *bytes, size_t size, unsigned char *ref)
{
    tm_model *m = NULL;
    CHECK(tm_model_load_memory(ctx, bytes, size, &m) == TM_OK, "load: %s", tm_ctx_error(ctx));
    if (!m)
        return;
    const struct tm_model_info *info = tm_model_info(m);
    CHECK(!strcmp(info->arch, "resnet") && info->pad_multiple == 4 && info->n_params == 494083 &&
              info->n_tensors == 36 && info->file_size == size,
          "info %s %d %llu %d", info->arch, info->pad_multiple, (unsigned long long)info->n_params,
          info->n_tensors);
    const char *k, *v;
    CHECK(tm_model_meta_at(m, 0, &k, &v) && tm_model_meta(m, "n_blocks") &&
              !strcmp(tm_model_meta(m, "n_blocks"), "6") && !tm_model_meta_at(m, 1000, &k, &v),
          "%s", "metadata");
    unsigned char *rgb = pattern(W, H, 3);
    test_layouts(m, rgb, ref);
    test_alpha_gray(m, rgb, ref);
    test_progress_cancel(ctx, m, rgb);
    test_bad_images(ctx, m);
    /* A different size re-plans; coming back gives the same result. */
    unsigned char *again = malloc(W * H * 3);
    struct tm_image in = { rgb, W, H, 3, TM_U8, 0 }, out = { again, W, H, 3, TM_U8, 0 };
    CHECK(tm_translate(m, &in, &out, NULL) == TM_OK && max_diff_u8(again, ref, W * H * 3, 1, 1) == 0,
          "%s", "re-plan");
    test_model_memory(ctx, bytes, size);
    free(again);
    free(rgb);
    tm_model_destroy(&m);
    CHECK(m == NULL, "%s", "destroy NULLs the handle");
}

static void test_conditioned(tm_ctx *ctx, const char *path)
{
    tm_model *m = NULL;
    CHECK(tm_model_load(ctx, path, &m) == TM_OK, "load %s: %s", path, tm_ctx_error(ctx));
    if (!m)
        return;
    const struct tm_model_info *mi = tm_model_info(m);
    CHECK(!strcmp(mi->arch, "stargan") && mi->label_size == 15 && mi->n_domains == 13 &&
              mi->n_groups == 2 && !strcmp(mi->groups[1], "RaFD") && !strcmp(mi->domains[9], "happy") &&
              mi->domain_group[4] == 0 && mi->domain_group[5] == 1,
          "stargan info: %s label %d domains %d groups %d", mi->arch, mi->label_size, mi->n_domains,
          mi->n_groups);
    float a[15], b[15];
    CHECK(tm_model_label_from_domains(m, "Blond_Hair, Young", a, 15) == TM_OK && a[1] == 1 && a[4] == 1 &&
              a[0] == 0 && a[13] == 1 && a[14] == 0,
          "celeba label: %s", tm_ctx_error(ctx));
    CHECK(tm_model_label_from_domains(m, "happy", b, 15) == TM_OK && b[9] == 1 && b[13] == 0 && b[14] == 1,
          "rafd label: %s", tm_ctx_error(ctx));
    float junk[15];
    CHECK(tm_model_label_from_domains(m, "Bald", junk, 15) == TM_ERR_INVALID &&
              strstr(tm_ctx_error(ctx), "Bald"), "unknown domain: %s", tm_ctx_error(ctx));
    CHECK(tm_model_label_from_domains(m, "Male,sad", junk, 15) == TM_ERR_INVALID &&
              strstr(tm_ctx_error(ctx), "two datasets"), "two datasets: %s", tm_ctx_error(ctx));
    CHECK(tm_model_label_from_domains(m, "", junk, 15) == TM_ERR_INVALID, "no dataset: %s",
          tm_ctx_error(ctx));
    CHECK(tm_model_label_from_domains(m, "Male", junk, 5) == TM_ERR_INVALID, "wrong size: %s",
          tm_ctx_error(ctx));

    unsigned char *rgb = pattern(W, H, 3), *oa = malloc(W * H * 3), *ob = malloc(W * H * 3);
    struct tm_image in = { rgb, W, H, 3, TM_U8, 0 }, out = { oa, W, H, 3, TM_U8, 0 };
    CHECK(tm_translate(m, &in, &out, NULL) == TM_ERR_INVALID && strstr(tm_ctx_error(ctx), "label"),
          "no label: %s", tm_ctx_error(ctx));
    struct tm_translate_params p = { .label = a, .label_size = 14 };
    CHECK(tm_translate(m, &in, &out, &p) == TM_ERR_INVALID, "short label: %s", tm_ctx_error(ctx));
    float nan_label[15];
    memcpy(nan_label, a, sizeof a);
    nan_label[3] = NAN;
    p = (struct tm_translate_params){ .label = nan_label, .label_size = 15 };
    CHECK(tm_translate(m, &in, &out, &p) == TM_ERR_INVALID, "NaN label: %s", tm_ctx_error(ctx));
    p = (struct tm_translate_params){ .label = a, .label_size = 15 };
    CHECK(tm_translate(m, &in, &out, &p) == TM_OK, "label a: %s", tm_ctx_error(ctx));
    p.label = b;
    out.data = ob;
    CHECK(tm_translate(m, &in, &out, &p) == TM_OK, "label b: %s", tm_ctx_error(ctx));
    CHECK(max_diff_u8(oa, ob, W * H * 3, 1, 1) > 10, "the label changes nothing (%d)",
          max_diff_u8(oa, ob, W * H * 3, 1, 1));
    free(rgb), free(oa), free(ob);
    tm_model_destroy(&m);
}

int main(int argc, char **argv)
{
    size_t size = 0;
    unsigned char *bytes = argc > 1 ? read_file(argv[1], &size) : NULL;
    if (!bytes) {
        printf("usage: test_api MODEL.safetensors (could not read it)\n0 passed, 1 failed\n");
        return 1;
    }
    char err[256];
    tm_ctx *ctx = NULL;
    CHECK(tm_ctx_create(&(struct tm_ctx_params){ .device = "no-such-gpu" }, &ctx, err, sizeof err) ==
                  TM_ERR_INVALID && !ctx && strstr(err, "no-such-gpu"),
          "bad selector: %s", err);
    unsigned char *ref_cpu = malloc(W * H * 3), *ref_vk = malloc(W * H * 3);

    CHECK(tm_ctx_create(&(struct tm_ctx_params){ .device = "cpu" }, &ctx, err, sizeof err) == TM_OK,
          "cpu context: %s", err);
    if (ctx) {
        CHECK(tm_ctx_device(ctx)->kind == TM_DEVICE_CPU, "%s", "cpu device kind");
        run_all(ctx, bytes, size, ref_cpu);
        if (argc > 2)
            test_conditioned(ctx, argv[2]);
        tm_ctx_destroy(&ctx);
    }

    const char *vk = getenv("TM_TEST_VK_DEVICE") ? getenv("TM_TEST_VK_DEVICE") : "vulkan";
    tm_status s = tm_ctx_create(&(struct tm_ctx_params){ .device = vk, .validate = true }, &ctx, err,
                                sizeof err);
    CHECK(s == TM_OK, "Vulkan context '%s' (a Vulkan device is required): %s", vk, err);
    if (ctx) {
        printf("vulkan device: %s\n", tm_ctx_device(ctx)->name);
        run_all(ctx, bytes, size, ref_vk);
        if (argc > 2)
            test_conditioned(ctx, argv[2]);
        CHECK(max_diff_u8(ref_cpu, ref_vk, W * H * 3, 1, 1) <= 1, "CPU and Vulkan differ by %d",
              max_diff_u8(ref_cpu, ref_vk, W * H * 3, 1, 1));
        CHECK(tm_ctx_validation_messages(ctx) == 0, "%d validation messages",
              tm_ctx_validation_messages(ctx));
        tm_ctx_destroy(&ctx);
    }
    tm_ctx_destroy(&ctx); /* &NULL is a no-op */
    free(ref_cpu), free(ref_vk), free(bytes);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
