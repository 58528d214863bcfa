/* cmd_translate.c: `transmute translate`. */
#include "cli.h"
#include "image_io.h"
#include "resize.h"

#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char translate_help[] =
    "Usage: transmute translate -m MODEL -o OUT INPUT\n"
    "       transmute translate -m MODEL --outdir DIR INPUT...\n"
    "\n"
    "Translates images with a generator model (a safetensors file). With -o one\n"
    "INPUT is written to OUT; with --outdir each INPUT is written to DIR under its\n"
    "own file name (the model is loaded once). The output folder must exist. An\n"
    "output that is the input file itself is refused. Outputs are written to a\n"
    "temporary file and renamed into place, so a failure leaves no partial file.\n"
    "\n"
    "Output size: the input's for image-to-image (GAN) models; a super-resolution\n"
    "model of scale S ('transmute info' shows it) writes an image S times wider\n"
    "and higher (a 2x model turns 640x480 into 1280x960).\n"
    "\n"
    "Options:\n"
    "  -m, --model FILE     the model (required)\n"
    "  -o, --output FILE    output file (one INPUT only)\n"
    "  -D, --outdir DIR     output folder (any number of INPUTs)\n"
    "  -f, --format FMT     output format: png, jpg or pfm. Default: from OUT's\n"
    "                       extension with -o, from each input's extension with\n"
    "                       --outdir. With --outdir, an input extension that does\n"
    "                       not name FMT is replaced by .png, .jpg or .pfm\n"
    "  -d, --device SEL     cpu, vulkan, a Vulkan device index, or part of a device\n"
    "                       name (see 'transmute devices'). Default: TRANSMUTE_DEVICE,\n"
    "                       else the best Vulkan GPU, else the CPU\n"
    "  -s, --size N         resize each input to N x N (bicubic, as PIL) before\n"
    "                       translating, like the official test's --load_size; the\n"
    "                       output is N x N (N*S x N*S with a super-resolution model\n"
    "                       of scale S)\n"
    "  -Q, --quality Q      JPEG quality 1..100 (default 95)\n"
    "  -c, --domain NAMES   multi-domain (StarGAN) models: the target domains,\n"
    "                       comma-separated, e.g. Blond_Hair,Young (those are 1,\n"
    "                       the others 0; 'transmute info' lists a model's domains)\n"
    "  -l, --label VALUES   multi-domain models: the whole label vector instead,\n"
    "                       e.g. 0,1,0,1,1 (with a mask model, the mask included)\n"
    "  -T, --tile N         run each layer in tiles of at most N x N output pixels\n"
    "                       (N >= 16), keeping device memory bounded; the result is\n"
    "                       the same (norm statistics are the whole image's;\n"
    "                       super-resolution models run overlapping tiles of the\n"
    "                       input). 0: tiles only when a Vulkan device's memory is\n"
    "                       too small for the whole image (default); -1: never\n"
    "  -t, --threads N      CPU backend threads (default: all cores)\n"
    "  -q, --quiet          no progress lines or warnings (errors are still printed)\n"
    "  -v, --verbose        also print informational messages (the device chosen);\n"
    "                       twice: debug messages\n"
    "  -h, --help           show this help\n"
    "\n"
    "Inputs: PNG (8 or 16 bits; gray, gray+alpha, RGB, RGBA, palette), JPEG (8-bit\n"
    "gray or RGB) and PFM (float gray or RGB, values 0..1, kept unquantized); the\n"
    "format is read from the file's first bytes.\n"
    "\n"
    "Channels: the output has the model's output channels (usually RGB), so a\n"
    "gray input to an RGB model (fed as R=G=B) gives an RGB output. An alpha\n"
    "channel is copied to the output unchanged when the output is PNG (with\n"
    "--size it is resized like the color; a super-resolution model scales it\n"
    "bilinearly); JPEG and PFM cannot hold alpha, so it is dropped there (with a\n"
    "warning).\n"
    "Sample depth: 16-bit PNG and PFM inputs give 16-bit PNG outputs; 8-bit inputs\n"
    "give 8-bit PNG. JPEG is always 8-bit, PFM always float.\n"
    "\n"
    "A progress line per file goes to stderr ('[3/10] photo.png 512x384 ... 0.42 s';\n"
    "with a super-resolution model '512x384 -> 1024x768'), with a percentage while\n"
    "it runs when stderr is a terminal.\n"
    "Exit status: 0 when every file was translated; 1 when any failed (with\n"
    "--outdir the others are still done and the count of failures is printed);\n"
    "2 for a bad command line; 3 when TRANSMUTE_VALIDATE=1 and the Vulkan\n"
    "validation layer reported anything; 130 when interrupted.\n";

static volatile int g_cancel;
_Static_assert(sizeof(sig_atomic_t) == sizeof(int), "sig_atomic_t must be an int");

static void on_sigint(int sig)
{
    (void)sig;
    g_cancel = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The folder part of path ("." when none); malloc'ed. */
static char *dir_name(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s)
        return xstrdup(".");
    if (s == path)
        return xstrdup("/");
    size_t n = (size_t)(s - path);
    char *d = xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

/* 0 when dir exists and is a folder; else prints why and returns -1. */
static int check_out_dir(const char *dir, const char *for_file)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (for_file)
            cli_err("%s: output folder '%s' does not exist", for_file, dir);
        else
            cli_err("output folder '%s' does not exist", dir);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_err("'%s' is not a folder", dir);
        return -1;
    }
    return 0;
}

struct progress {
    bool show;      /* progress lines at all */
    bool tty;       /* \r updates */
    bool line_open; /* a \r line is on screen */
    int index, total;
    const char *name;
    char dims[64];
    int last_pct;
};

static bool progress_cb(void *priv, double fraction)
{
    struct progress *p = priv;
    if (p->show && p->tty) {
        int pct = (int)(fraction * 100.0 + 0.5);
        if (pct < 0)
            pct = 0;
        if (pct > 100)
            pct = 100;
        if (pct != p->last_pct) {
            fprintf(stderr, "\r[%d/%d] %s %s ... %d%%\033[K", p->index, p->total, p->name,
                    p->dims, pct);
            fflush(stderr);
            p->last_pct = pct;
            p->line_open = true;
        }
    }
    return !g_cancel;
}

static void progress_clear(struct progress *p)
{
    if (p->line_open) {
        fputs("\r\033[K", stderr);
        p->line_open = false;
    }
}

struct job {
    int tile;                 /* --tile */
    const float *label;       /* conditioned models */
    int label_size;
    tm_ctx *ctx;
    tm_model *model;
    const struct tm_model_info *mi;
    int size;                 /* --size, 0 = keep */
    struct img_save_opts save;
    bool quiet;
    struct progress *prog;
};

/* Resizes im to n x n in place (keeping its sample type). */
static int resize_image(struct tm_image *im, int n, const char *path, char *err, size_t errlen)
{
    if (im->width == n && im->height == n)
        return 0;
    struct tm_image f = {0}, r = {0}, back = {0};
    int rc = -1;
    if (img_convert(im, TM_F32, &f) || img_alloc(&r, n, n, im->channels, TM_F32) ||
        resize_bicubic(f.data, f.width, f.height, r.data, n, n, im->channels,
                       im->type == TM_U8 ? 255 : im->type == TM_U16 ? 65535 : 0)) {
        snprintf(err, errlen, "%s: out of memory while resizing", path);
        goto out;
    }
    if (im->type == TM_F32) {
        img_free(im);
        *im = r;
        r.data = NULL;
        rc = 0;
        goto out;
    }
    /* Round back to the input's type, as PIL does for 8-bit images. */
    if (img_convert(&r, im->type, &back)) {
        snprintf(err, errlen, "%s: out of memory while resizing", path);
        goto out;
    }
    img_free(im);
    *im = back;
    rc = 0;
out:
    img_free(&f);
    img_free(&r);
    return rc;
}

/* A super-resolution model's output must still fit the image limits; a
 * message naming the input and the factor says why it does not. */
static bool out_size_ok(const char *in_path, int scale, long long w, long long h)
{
    char err[512];
    if (scale == 1 || img_check_size("output", w, h, err, sizeof err))
        return true;
    cli_err("%s: a %dx model would make a %lldx%lld image, more than the limit (%d pixels per "
            "side and %llu pixels)", in_path, scale, w, h, IMG_MAX_SIDE, IMG_MAX_PIXELS);
    return false;
}

/* The sizes in the progress line: the file's, after --size when that
 * was given, and the output's when the model changes the size. */
static void describe_dims(struct progress *P, int file_w, int file_h, bool sized,
                          const struct tm_image *in, int scale)
{
    int n = snprintf(P->dims, sizeof P->dims, "%dx%d", file_w, file_h);
    if (sized)
        n += snprintf(P->dims + n, sizeof P->dims - (size_t)n, " -> %dx%d", in->width, in->height);
    if (scale != 1)
        snprintf(P->dims + n, sizeof P->dims - (size_t)n, " -> %lldx%lld",
                 (long long)in->width * scale, (long long)in->height * scale);
}

/* Translates one file. Returns 0, -1 on failure (message printed), or 1 when
 * cancelled. */
static int translate_one(struct job *J, const char *in_path, const char *out_path,
                         enum img_format fmt)
{
    char err[1024];
    struct progress *P = J->prog;
    double t0 = now_s();
    struct tm_image in = {0}, out = {0};
    int rc = -1;

    /* Never overwrite the input itself. */
    struct stat si, so;
    if (stat(in_path, &si) == 0 && stat(out_path, &so) == 0 && si.st_dev == so.st_dev &&
        si.st_ino == so.st_ino) {
        cli_err("%s: refusing to overwrite the input file", out_path);
        return -1;
    }
    if (img_load(in_path, &in, NULL, err, sizeof err)) {
        cli_err("%s", err);
        return -1;
    }
    int in_w = in.width, in_h = in.height;
    if (J->size && resize_image(&in, J->size, in_path, err, sizeof err)) {
        cli_err("%s", err);
        goto out;
    }
    int sc = J->mi->scale;
    long long out_w = (long long)in.width * sc, out_h = (long long)in.height * sc;
    if (!out_size_ok(in_path, sc, out_w, out_h))
        goto out;
    describe_dims(P, in_w, in_h, J->size != 0, &in, sc);

    int color = J->mi->output_nc;
    if (color != 1 && color != 3) {
        cli_err("%s: the model has %d output channels; only 1 or 3 can be written as an image",
                in_path, color);
        goto out;
    }
    bool alpha = in.channels == 2 || in.channels == 4;
    if (alpha && fmt != IMG_PNG && !J->quiet)
        cli_err("warning: %s: %s cannot hold alpha; the alpha channel is dropped", out_path,
                fmt == IMG_JPEG ? "JPEG" : "PFM");
    int out_ch = color + (alpha && fmt == IMG_PNG ? 1 : 0);
    tm_sample_type out_type = fmt == IMG_JPEG ? TM_U8
                              : fmt == IMG_PFM ? TM_F32
                              : (in.type == TM_U8 ? TM_U8 : TM_U16);
    if (img_alloc(&out, (int)out_w, (int)out_h, out_ch, out_type)) {
        cli_err("%s: out of memory for the output image", in_path);
        goto out;
    }

    P->last_pct = -1;
    struct tm_translate_params tp = {
        .progress = progress_cb,
        .progress_priv = P,
        .cancel = &g_cancel,
        .label = J->label,
        .label_size = J->label_size,
        .tile = J->tile,
    };
    tm_status st = tm_translate(J->model, &in, &out, &tp);
    if (st == TM_ERR_CANCELLED || g_cancel) {
        progress_clear(P);
        rc = 1;
        goto out;
    }
    if (st != TM_OK) {
        progress_clear(P);
        const char *m = tm_ctx_error(J->ctx);
        cli_err("%s: %s", in_path, m && *m ? m : tm_status_str(st));
        goto out;
    }
    if (img_save(out_path, fmt, &out, &J->save, err, sizeof err)) {
        progress_clear(P);
        cli_err("%s", err);
        goto out;
    }
    if (P->show) {
        if (P->tty)
            fputc('\r', stderr);
        fprintf(stderr, "[%d/%d] %s %s ... %.2f s%s\n", P->index, P->total, P->name, P->dims,
                now_s() - t0, P->tty ? "\033[K" : "");
        P->line_open = false;
    }
    rc = 0;
out:
    img_free(&in);
    img_free(&out);
    return rc;
}

/* Comma-separated numbers into label[0..n); false on junk or a wrong count. */
static bool parse_label(const char *s, float *label, int n)
{
    int i = 0;
    for (const char *p = s;; i++) {
        char *end;
        errno = 0;
        float v = strtof(p, &end);
        if (end == p || errno || !isfinite(v) || i == n)
            return false;
        label[i] = v;
        while (*end == ' ')
            end++;
        if (!*end)
            return i + 1 == n;
        if (*end != ',')
            return false;
        p = end + 1;
    }
}

/* The target label from --domain or --label; prints why and returns -1 when
 * it cannot be built or the model takes none. */
static int make_label(tm_ctx *ctx, tm_model *model, const char *path, const char *domain, const char *label_str,
                      float **out)
{
    const struct tm_model_info *mi = tm_model_info(model);
    *out = NULL;
    if (!mi->label_size) {
        if (domain || label_str)
            cli_err("%s: a %s model has no domains: --domain and --label do not apply", path, mi->arch);
        return domain || label_str ? -1 : 0;
    }
    const char *names = tm_model_meta(model, "domains");
    if (!domain && !label_str) {
        cli_err("%s is a multi-domain model: choose the target with --domain NAMES or --label VALUES "
                "(domains: %s)", path, names);
        return -1;
    }
    float *label = xcalloc((size_t)mi->label_size, sizeof *label);
    if (domain && tm_model_label_from_domains(model, domain, label, mi->label_size)) {
        cli_err("%s: %s", path, tm_ctx_error(ctx));
        free(label);
        return -1;
    }
    if (label_str && !parse_label(label_str, label, mi->label_size)) {
        cli_err("%s: --label needs %d comma-separated numbers (%s%s), not '%s'", path, mi->label_size,
                names, mi->n_groups ? ", then the dataset mask" : "", label_str);
        free(label);
        return -1;
    }
    *out = label;
    return 0;
}

/* DIR/basename(input), with the extension replaced when it does not name fmt. */
static char *outdir_path(const char *dir, const char *input, enum img_format fmt)
{
    const char *base = base_name(input);
    size_t blen = strlen(base);
    const char *ext = "";
    if (img_format_from_path(base) != fmt) {
        const char *dot = strrchr(base, '.');
        if (dot && dot != base)
            blen = (size_t)(dot - base);
        ext = fmt == IMG_PNG ? ".png" : fmt == IMG_JPEG ? ".jpg" : ".pfm";
    }
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    size_t n = dl + 1 + blen + strlen(ext) + 1;
    char *p = xmalloc(n);
    snprintf(p, n, "%.*s/%.*s%s", (int)dl, dir, (int)blen, base, ext);
    return p;
}

int cmd_translate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {"outdir", required_argument, NULL, 'D'},
        {"format", required_argument, NULL, 'f'},
        {"device", required_argument, NULL, 'd'},
        {"size", required_argument, NULL, 's'},
        {"quality", required_argument, NULL, 'Q'},
        {"domain", required_argument, NULL, 'c'},
        {"label", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'},
        {"tile", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *model_path = NULL, *out_file = NULL, *out_dir = NULL, *device = NULL;
    const char *domain = NULL, *label_str = NULL;
    enum img_format force_fmt = IMG_NONE;
    long size = 0, quality = IMG_JPEG_QUALITY_DEFAULT, threads = 0, tile = 0;
    bool quiet = false;
    int verbose = 0;

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:o:D:f:d:s:Q:c:l:t:T:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'o': out_file = optarg; break;
        case 'D': out_dir = optarg; break;
        case 'd': device = optarg; break;
        case 'c': domain = optarg; break;
        case 'l': label_str = optarg; break;
        case 'f':
            force_fmt = img_format_from_name(optarg);
            if (force_fmt == IMG_NONE)
                cli_usage_error("translate", "unknown format '%s' (png, jpg or pfm)", optarg);
            break;
        case 's':
            if (!cli_parse_int(optarg, 1, 16384, &size)) /* 16384^2 = IMG_MAX_PIXELS */
                cli_usage_error("translate", "--size needs a whole number 1..16384, not '%s'",
                                optarg);
            break;
        case 'Q':
            if (!cli_parse_int(optarg, 1, 100, &quality))
                cli_usage_error("translate", "--quality needs a whole number 1..100, not '%s'",
                                optarg);
            break;
        case 't':
            if (!cli_parse_int(optarg, 0, 4096, &threads))
                cli_usage_error("translate", "--threads needs a whole number 0..4096, not '%s'",
                                optarg);
            break;
        case 'T':
            if (!cli_parse_int(optarg, -1, 65536, &tile) || (tile > 0 && tile < 16))
                cli_usage_error("translate", "--tile needs -1, 0 or a whole number 16..65536, not '%s'",
                                optarg);
            break;
        case 'q': quiet = true; break;
        case 'v': verbose++; break;
        case 'h': fputs(translate_help, stdout); return EXIT_OK;
        case ':':
            cli_usage_error("translate", "option '%s' needs an argument", argv[optind - 1]);
        default:
            if (optopt)
                cli_usage_error("translate", "unknown option '-%c'", optopt);
            cli_usage_error("translate", "unknown option '%s'", argv[optind - 1]);
        }
    }
    int n_in = argc - optind;
    char **inputs = argv + optind;
    if (!model_path)
        cli_usage_error("translate", "no model given (-m MODEL)");
    if (out_file && out_dir)
        cli_usage_error("translate", "give either -o or --outdir, not both");
    if (!out_file && !out_dir)
        cli_usage_error("translate", "no output given (-o OUT or --outdir DIR)");
    if (n_in == 0)
        cli_usage_error("translate", "no input image given");
    if (domain && label_str)
        cli_usage_error("translate", "give either --domain or --label, not both");
    if (out_file && n_in > 1)
        cli_usage_error("translate", "-o takes one input; use --outdir DIR for %d inputs", n_in);
    enum img_format file_fmt = IMG_NONE;
    if (out_file) {
        file_fmt = force_fmt != IMG_NONE ? force_fmt : img_format_from_path(out_file);
        if (file_fmt == IMG_NONE)
            cli_usage_error("translate",
                            "cannot tell the output format of '%s' (use .png, .jpg, .pfm or --format)",
                            out_file);
    }

    /* The output folder must exist before any work is done. */
    if (out_file) {
        char *d = dir_name(out_file);
        int bad = check_out_dir(d, out_file);
        free(d);
        if (bad)
            return EXIT_FAIL;
    } else if (check_out_dir(out_dir, NULL)) {
        return EXIT_FAIL;
    }

    struct progress prog = {
        .show = !quiet,
        .tty = isatty(STDERR_FILENO) == 1,
        .total = n_in,
    };
    struct cli_log lg = {cli_log_level(verbose, quiet), &prog.line_open};
    struct tm_ctx_params params = {
        .device = device,
        .threads = (int)threads,
        .validate = cli_validate_env(),
        .log = cli_log_fn,
        .log_priv = &lg,
        .log_level = lg.level,
    };
    tm_ctx *ctx = NULL;
    char err[512];
    if (tm_ctx_create(&params, &ctx, err, sizeof err) != TM_OK) {
        cli_err("%s", err);
        return EXIT_FAIL;
    }
    tm_model *model = NULL;
    if (tm_model_load(ctx, model_path, &model) != TM_OK) {
        const char *m = tm_ctx_error(ctx);
        if (m && strstr(m, model_path))
            cli_err("%s", m);
        else
            cli_err("%s: %s", model_path, m && *m ? m : "cannot load the model");
        int rc = cli_validation_exit(ctx, EXIT_FAIL);
        tm_ctx_destroy(&ctx);
        return rc;
    }
    float *label = NULL;
    if (make_label(ctx, model, model_path, domain, label_str, &label)) {
        tm_model_destroy(&model);
        tm_ctx_destroy(&ctx);
        return EXIT_FAIL;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the process */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    struct job J = {
        .ctx = ctx,
        .model = model,
        .mi = tm_model_info(model),
        .size = (int)size,
        .save = {.jpeg_quality = (int)quality},
        .quiet = quiet,
        .prog = &prog,
        .label = label,
        .label_size = tm_model_info(model)->label_size,
        .tile = (int)tile,
    };
    int failed = 0, done = 0;
    bool cancelled = false;
    char **written = xcalloc((size_t)n_in, sizeof *written);
    int n_written = 0;
    for (int i = 0; i < n_in && !cancelled; i++) {
        const char *in_path = inputs[i];
        prog.index = i + 1;
        prog.name = base_name(in_path);
        char *out_path;
        enum img_format fmt;
        if (out_file) {
            out_path = xstrdup(out_file);
            fmt = file_fmt;
        } else {
            fmt = force_fmt != IMG_NONE ? force_fmt : img_format_from_path(in_path);
            if (fmt == IMG_NONE) {
                cli_err("%s: cannot tell the output format from the name (use --format)",
                        in_path);
                failed++;
                continue;
            }
            out_path = outdir_path(out_dir, in_path, fmt);
            bool dup = false;
            for (int k = 0; k < n_written && !dup; k++)
                dup = strcmp(written[k], out_path) == 0;
            if (dup) {
                cli_err("%s: output '%s' was already written from an earlier input", in_path,
                        out_path);
                free(out_path);
                failed++;
                continue;
            }
        }
        int r = translate_one(&J, in_path, out_path, fmt);
        if (r == 0) {
            done++;
            written[n_written++] = out_path;
        } else {
            free(out_path);
            if (r > 0)
                cancelled = true;
            else
                failed++;
        }
    }
    for (int k = 0; k < n_written; k++)
        free(written[k]);
    free(written);

    int rc = EXIT_OK;
    if (cancelled) {
        cli_err("interrupted after %d of %d file%s", done, n_in, n_in == 1 ? "" : "s");
        rc = EXIT_CANCELLED;
    } else if (failed) {
        if (n_in > 1)
            cli_err("%d of %d files failed", failed, n_in);
        rc = EXIT_FAIL;
    }
    free(label);
    tm_model_destroy(&model);
    rc = cli_validation_exit(ctx, rc);
    tm_ctx_destroy(&ctx);
    return rc;
}
