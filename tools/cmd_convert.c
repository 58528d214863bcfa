/* cmd_convert.c: `transmute convert INPUT -o OUT.safetensors`.
 *
 * Reads an official PyTorch checkpoint (tools/convert/torch_ckpt.h), picks
 * its generator state_dict, recognizes the architecture (arch_detect.h),
 * and writes a safetensors model with the official tensor names; or reads a
 * TF.js layers-model (tools/convert/tfjs.h) and writes it as a graph model.
 * The result is loaded by the core before it is written, so a file that the
 * translate command would reject is never produced. */
#include "arch_detect.h"
#include "cli.h"
#include "st_write.h"
#include "tfjs.h"
#include "torch_ckpt.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char convert_help[] =
    "Usage: transmute convert CHECKPOINT -o OUT.safetensors [options]\n"
    "       transmute convert MODEL.json -o OUT.safetensors [--range LO,HI] [options]\n"
    "       transmute convert --list CHECKPOINT\n"
    "\n"
    "Converts a PyTorch checkpoint (.pth, .ckpt: the legacy format of the\n"
    "2017-2019 official releases or the zip format of torch >= 1.6) of a\n"
    "CycleGAN/pix2pix generator (ResnetGenerator, UnetGenerator), StarGAN's\n"
    "generator, ESRGAN's RRDBNet (BasicSR / Real-ESRGAN key names) or SRGAN's\n"
    "generator (leftthomas/SRGAN key names) into a Transmute model. No Python\n"
    "is needed: the checkpoint's pickle is read by a restricted reader that\n"
    "accepts only what a state_dict holds and never runs code from the file.\n"
    "The architecture and its hyper-parameters (for the super-resolution\n"
    "models also the scale) are recognized from the tensors' names and shapes\n"
    "and printed; options given are checked against them.\n"
    "\n"
    "An input whose name ends in .json, or whose first character is '{', is read\n"
    "as a TF.js layers-model (a Keras functional model saved for TF.js, such as\n"
    "the UpscalerJS ESRGAN packages): the model.json and the weight shards its\n"
    "weightsManifest names, beside it. It becomes a graph model (docs/GRAPH.md),\n"
    "one node per Keras layer under the layer's name. Layers: one InputLayer\n"
    "(1..4 channels), Conv2D and Conv2DTranspose (padding 'valid', or 'same'\n"
    "where it pads evenly; activation linear, relu or tanh), Activation (linear,\n"
    "relu, tanh), ReLU, LeakyReLU, PReLU (shared over height and width), Add,\n"
    "Concatenate (channels), UpSampling2D (nearest), BatchNormalization, and\n"
    "UpscalerJS' MultiplyBeta and PixelShuffle<N>x; any other layer is an error\n"
    "that names it. Weights may be float32, float16, or quantized to uint8,\n"
    "uint16 or float16; they are stored as F32 (F16 with --half). Without\n"
    "--range, the UpscalerJS ESRGAN layouts are recognized by their layer names\n"
    "(RDN: esrgan-slim and esrgan-medium, pixels 0..255; RRDN: esrgan-thick,\n"
    "0..1) and any other model is refused.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE      the .safetensors file to write (written to a\n"
    "                         temporary file and renamed: never left half-written)\n"
    "      --name TEXT        metadata: the model's name (default: the --netG name;\n"
    "                         TF.js: esrgan-rdn-xN, esrgan-rrdn-xN or the Keras name)\n"
    "      --description TEXT metadata: what the model does\n"
    "      --license TEXT     metadata: the weights' licence\n"
    "      --half             store the weights as F16 (half the size)\n"
    "  -q, --quiet            print nothing on success\n"
    "  -h, --help             show this help\n"
    "\n"
    "PyTorch checkpoints only:\n"
    "  -k, --key KEY          use the state_dict under KEY of a checkpoint that\n"
    "                         holds several (e.g. --key G_A, or a.b for nested dicts)\n"
    "      --netG NAME        expect this generator: resnet_9blocks, resnet_6blocks,\n"
    "                         unet_256, unet_128 (or resnet_Nblocks, unet_N), stargan,\n"
    "                         rrdbnet (ESRGAN) or srresnet (SRGAN)\n"
    "      --ngf N            expect N filters in the first conv (StarGAN: conv_dim,\n"
    "                         RRDBNet: num_feat)\n"
    "      --norm KIND        expect instance, batch or none normalization\n"
    "      --norm_stats S     batch norm: image (default: each image's statistics, as\n"
    "                         the official test without --eval) or running (SRGAN:\n"
    "                         always running)\n"
    "      --scale N          expect a model that enlarges N times (1 for the\n"
    "                         image-to-image generators). RRDBNet (4, 2 or 1): the\n"
    "                         file does not hold its input channels; without\n"
    "                         --scale they are taken to be its output channels and\n"
    "                         the scale follows from conv_first, with --scale the\n"
    "                         input channels do\n"
    "      --domains A,B,...  StarGAN: the label names, in label order (default for\n"
    "                         labels of 5, 8 and 15 values: the official CelebA\n"
    "                         attributes, RaFD expressions, or both with the mask)\n"
    "      --domain_groups G  StarGAN trained on several datasets: each dataset's\n"
    "                         name and number of domains, e.g. CelebA:5,RaFD:8; a\n"
    "                         one-hot dataset mask follows the labels\n"
    "  -l, --list             list the checkpoint's tensors and exit\n"
    "\n"
    "TF.js models only:\n"
    "      --range LO,HI      the value range of the network's pixels, e.g. 0,1 or\n"
    "                         0,255 (the image's 0..1 is mapped onto it and back)\n"
    "\n"
    "Checkpoints: BasicSR / Real-ESRGAN files keep the state_dict under\n"
    "'params_ema' (used when present, without --key) or 'params'; a\n"
    "DataParallel 'module.' prefix is removed; InstanceNorm running statistics\n"
    "left by PyTorch < 0.4 are dropped, as the official loader does;\n"
    "tensor views into shared storages are copied out contiguously; F64 tensors\n"
    "are stored as F32. Exit status: 0 on success, 1 when the input cannot be\n"
    "converted (with a one-line reason), 2 for a bad command line.\n";

struct options {
    const char *ckpt, *out, *key, *name, *description, *license;
    struct ad_options ad;
    bool half, list, quiet;
    char range[64]; /* --range, normalized; "" when not given */
};

/* The tensors of one state_dict, keys relative to it. */
struct selection {
    struct ad_tensor *t;
    const struct tm_ckpt_tensor **src;
    int n;
    char chosen[256]; /* the dict prefix used, "" for the top level */
    bool auto_ema;    /* BasicSR's params_ema picked among several without --key */
};

static void list_tensors(const struct tm_ckpt *ck)
{
    printf("format: %s, %d tensors\n", ck->format, ck->n_tensors);
    for (int i = 0; i < ck->n_tensors; i++) {
        const struct tm_ckpt_tensor *t = &ck->tensors[i];
        printf("  %-48s %-4s [", t->name, tm_ckpt_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            printf(d ? ", %lld" : "%lld", (long long)t->shape[d]);
        printf("]\n");
    }
    for (int i = 0; i < ck->n_others; i++)
        printf("  %-48s (not a tensor)\n", ck->others[i]);
}

/* Distinct dict prefixes of the tensors, comma-separated, into buf. */
static void list_prefixes(const struct tm_ckpt *ck, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < ck->n_tensors; i++) {
        const struct tm_ckpt_tensor *t = &ck->tensors[i];
        int pl = t->prefix_len ? t->prefix_len - 1 : 0; /* without the dot */
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = ck->tensors[j].prefix_len == t->prefix_len &&
                   !strncmp(ck->tensors[j].name, t->name, (size_t)t->prefix_len);
        size_t used = strlen(buf);
        if (!seen && used + (size_t)pl + 3 < len)
            snprintf(buf + used, len - used, "%s%.*s", used ? ", " : "", pl ? pl : 5,
                     pl ? t->name : "(top)");
    }
}

/* BasicSR and Real-ESRGAN save {'params_ema': sd} or {'params': sd,
 * 'params_ema': sd}; the EMA weights are the ones they release and test. */
static bool has_params_ema(const struct tm_ckpt *ck)
{
    for (int i = 0; i < ck->n_tensors; i++)
        if (ck->tensors[i].prefix_len == 11 && !strncmp(ck->tensors[i].name, "params_ema.", 11))
            return true;
    return false;
}

/* Picks the state_dict: the one under --key, BasicSR's params_ema, or the
 * only one there is. */
static int select_tensors(const struct tm_ckpt *ck, const char *key, struct selection *s)
{
    char prefixes[1024];
    list_prefixes(ck, prefixes, sizeof prefixes);
    if (!key && strchr(prefixes, ',') && has_params_ema(ck)) {
        key = "params_ema";
        s->auto_ema = true;
    }
    if (!key && ck->n_tensors && strchr(prefixes, ',')) {
        cli_err("%s holds several state_dicts (%s): choose one with --key", "the checkpoint", prefixes);
        return -1;
    }
    size_t kl = key ? strlen(key) : 0;
    s->t = xcalloc((size_t)ck->n_tensors + 1, sizeof *s->t);
    s->src = xcalloc((size_t)ck->n_tensors + 1, sizeof *s->src);
    for (int i = 0; i < ck->n_tensors; i++) {
        const struct tm_ckpt_tensor *t = &ck->tensors[i];
        if (key && (t->prefix_len != (int)kl + 1 || strncmp(t->name, key, kl)))
            continue;
        s->src[s->n] = t;
        s->t[s->n++] = (struct ad_tensor){ .key = t->name + t->prefix_len, .ndim = t->ndim,
                                           .shape = t->shape };
    }
    if (key && !s->n) {
        cli_err("the checkpoint has no state_dict under --key '%s' (it has: %s)", key, prefixes);
        return -1;
    }
    if (!s->n) {
        cli_err("the checkpoint holds no tensors%s", ck->n_others ? " (only plain values)" : "");
        return -1;
    }
    snprintf(s->chosen, sizeof s->chosen, "%.*s", s->src[0]->prefix_len ? s->src[0]->prefix_len - 1 : 0,
             s->src[0]->name);
    /* DataParallel saves every key with a leading "module.". */
    bool all_module = true;
    for (int i = 0; i < s->n && all_module; i++)
        all_module = !strncmp(s->t[i].key, "module.", 7);
    for (int i = 0; i < s->n && all_module; i++)
        s->t[i].key += 7;
    return 0;
}

static void selection_free(struct selection *s)
{
    free(s->t);
    free(s->src);
}

/* IEEE half and bfloat16 bits to float (the core's copies are internal). */
static float half_to_float(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY)
                                                       : ldexpf((float)(m | 1024), e - 25);
    return h & 0x8000 ? -v : v;
}

static float bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Element i of a floating tensor as a float. */
static float value_at(const struct tm_ckpt_tensor *t, size_t i)
{
    switch (t->dtype) {
    case TM_CK_F32: return ((const float *)t->data)[i];
    case TM_CK_F64: return (float)((const double *)t->data)[i];
    case TM_CK_F16: return half_to_float(((const uint16_t *)t->data)[i]);
    default: return bf16_to_float(((const uint16_t *)t->data)[i]);
    }
}

/* One output tensor in the stored dtype: the checkpoint's, except F64 ->
 * F32 and, with --half, every float -> F16. *conv is malloc'ed when a
 * conversion was needed. */
static struct tm_stw_tensor out_tensor(const char *key, const struct tm_ckpt_tensor *t, bool half,
                                       void **conv)
{
    struct tm_stw_tensor o = { .name = key, .dtype = tm_ckpt_dtype_name(t->dtype), .ndim = t->ndim,
                               .shape = t->shape, .data = t->data, .nbytes = t->nbytes };
    *conv = NULL;
    if (t->dtype == TM_CK_I64 || (!half && t->dtype != TM_CK_F64) ||
        (half && t->dtype == TM_CK_F16))
        return o;
    size_t n = t->nbytes / (size_t)tm_ckpt_dtype_size(t->dtype);
    o.dtype = half ? "F16" : "F32";
    o.nbytes = n * (half ? 2 : 4);
    void *buf = xmalloc(o.nbytes ? o.nbytes : 1);
    for (size_t i = 0; i < n; i++) {
        float v = value_at(t, i);
        if (half)
            ((uint16_t *)buf)[i] = tm_float_to_half(v);
        else
            ((float *)buf)[i] = v;
    }
    o.data = buf;
    *conv = buf;
    return o;
}

/* Loads the written file with the core: a conversion that the translate
 * command would reject must fail here, not later. */
static int core_accepts(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st)) {
        snprintf(err, errlen, "cannot read back the converted file: %s", strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *bytes = xmalloc(size ? size : 1);
    bool ok = fread(bytes, 1, size, f) == size;
    fclose(f);
    tm_ctx *ctx = NULL;
    tm_model *m = NULL;
    int rc = -1;
    if (!ok)
        snprintf(err, errlen, "cannot read back the converted file");
    else if (tm_ctx_create(&(struct tm_ctx_params){ .device = "cpu", .threads = 1 }, &ctx, err, errlen))
        ;
    else if (tm_model_load_memory(ctx, bytes, size, &m))
        snprintf(err, errlen, "the result does not load as a %s model: %s", "Transmute", tm_ctx_error(ctx));
    else
        rc = 0;
    tm_model_destroy(&m);
    tm_ctx_destroy(&ctx);
    free(bytes);
    return rc;
}

/* Writes the model to a checked temporary file beside out, then renames it
 * into place: out is either untouched or the complete, loadable model. */
static int write_model(const char *out, const struct tm_stw_tensor *t, int n, const struct tm_stw_meta *meta,
                       int n_meta)
{
    size_t len = strlen(out) + 16;
    char *tmp = xmalloc(len), err[1024];
    snprintf(tmp, len, "%s.new.XXXXXX", out);
    int fd = mkstemp(tmp), rc = -1;
    if (fd < 0) {
        cli_err("cannot create a file beside '%s': %s", out, strerror(errno));
        free(tmp);
        return -1;
    }
    close(fd);
    if (tm_st_write(tmp, t, n, meta, n_meta, err, sizeof err))
        cli_err("%s: %s", out, err);
    else if (core_accepts(tmp, err, sizeof err))
        cli_err("%s", err);
    else if (rename(tmp, out))
        cli_err("cannot rename the result to '%s': %s", out, strerror(errno));
    else
        rc = 0;
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* Metadata: what detection found, then the user's words and provenance. */
static int build_meta(const struct ad_result *r, const struct options *o, const struct selection *sel,
                      const struct tm_ckpt *ck, struct tm_stw_meta *meta, char *source, size_t source_len)
{
    int n = 0;
    for (int i = 0; i < r->n_meta; i++) {
        if (!strcmp(r->meta_key[i], "name") && o->name)
            continue;
        meta[n++] = (struct tm_stw_meta){ r->meta_key[i], r->meta_val[i] };
    }
    const char *base = strrchr(o->ckpt, '/') ? strrchr(o->ckpt, '/') + 1 : o->ckpt;
    snprintf(source, source_len, "transmute convert from %s (%s format%s%s)", base, ck->format,
             sel->chosen[0] ? ", key " : "", sel->chosen);
    meta[n++] = (struct tm_stw_meta){ "source", source };
    if (o->name)
        meta[n++] = (struct tm_stw_meta){ "name", o->name };
    if (o->description)
        meta[n++] = (struct tm_stw_meta){ "description", o->description };
    if (o->license)
        meta[n++] = (struct tm_stw_meta){ "license", o->license };
    return n;
}

static int convert(const struct options *o, const struct tm_ckpt *ck)
{
    struct selection sel = { 0 };
    struct ad_result r = { 0 };
    char err[1024];
    int rc = EXIT_FAIL;
    if (select_tensors(ck, o->key, &sel))
        goto out;
    if (ad_detect(sel.t, sel.n, &o->ad, &r, err, sizeof err)) {
        cli_err("%s: %s", o->ckpt, err);
        goto out;
    }
    struct tm_stw_tensor *t = xcalloc((size_t)sel.n, sizeof *t);
    void **conv = xcalloc((size_t)sel.n, sizeof *conv);
    int n = 0;
    size_t bytes = 0;
    for (int i = 0; i < sel.n; i++) {
        if (sel.t[i].drop)
            continue;
        t[n] = out_tensor(sel.t[i].key, sel.src[i], o->half, &conv[n]);
        bytes += t[n++].nbytes;
    }
    struct tm_stw_meta meta[AD_MAX_META + 4];
    char source[512];
    int n_meta = build_meta(&r, o, &sel, ck, meta, source, sizeof source);
    if (!o->quiet) {
        if (sel.auto_ema)
            printf("using the state_dict under 'params_ema' (BasicSR's EMA weights; --key to choose "
                   "another)\n");
        printf("detected %s\n", r.summary);
        if (r.note[0])
            printf("note: %s\n", r.note);
        if (r.n_dropped)
            printf("dropped %d InstanceNorm running statistics (PyTorch < 0.4), as the official loader does\n",
                   r.n_dropped);
    }
    if (!write_model(o->out, t, n, meta, n_meta)) {
        rc = EXIT_OK;
        char hb[32];
        if (!o->quiet)
            printf("wrote %s: %d tensors, %s%s\n", o->out, n, cli_human_bytes(bytes, hb, sizeof hb),
                   o->half ? " (F16)" : "");
    }
    for (int i = 0; i < n; i++)
        free(conv[i]);
    free(conv);
    free(t);
out:
    ad_result_free(&r);
    selection_free(&sel);
    return rc;
}

/* A TF.js layers-model: the graph, its tensors and metadata come from
 * tfjs.c; the write is the same checked one as for checkpoints. */
static int convert_tfjs(const struct options *o)
{
    struct tm_tfjs_options to = { .range = o->range[0] ? o->range : NULL, .name = o->name,
                                  .description = o->description, .license = o->license, .half = o->half };
    struct tm_tfjs_model m;
    char err[1024], hb[32];
    if (tm_tfjs_load(o->ckpt, &to, &m, err, sizeof err)) {
        cli_err("%s: %s", o->ckpt, err);
        return EXIT_FAIL;
    }
    if (!o->quiet) {
        printf("TF.js layers-model: %d layers as %d graph nodes, %d -> %d channels, scale %d\n", m.n_layers,
               m.n_nodes, m.input_nc, m.output_nc, m.scale);
        if (m.family)
            printf("recognized %s\n", m.family);
        printf("pixel range %s (%s)\n", m.range, m.range_from_family ? "that of the recognized model; "
               "--range overrides it" : "--range");
    }
    int rc = write_model(o->out, m.tensors, m.n_tensors, m.meta, m.n_meta) ? EXIT_FAIL : EXIT_OK;
    if (!rc && !o->quiet)
        printf("wrote %s: %d tensors, %s%s\n", o->out, m.n_tensors, cli_human_bytes(m.bytes, hb, sizeof hb),
               o->half ? " (F16)" : "");
    tm_tfjs_free(&m);
    return rc;
}

/* --range LO,HI: two finite numbers, LO < HI, written back as "%g,%g". */
static bool parse_range(const char *s, char *out, size_t len)
{
    char *end;
    errno = 0;
    double lo = strtod(s, &end);
    if (end == s || *end != ',')
        return false;
    const char *hs = end + 1;
    double hi = strtod(hs, &end);
    if (errno || end == hs || *end || !isfinite(lo) || !isfinite(hi) || lo >= hi || fabs(lo) > 1e6 ||
        fabs(hi) > 1e6)
        return false;
    snprintf(out, len, "%.9g,%.9g", lo, hi);
    return true;
}

/* Options that belong to the other kind of input are a usage error. */
static void check_input_kind(const struct options *o, bool tfjs)
{
    const char *torch_only = o->list ? "--list" : o->key ? "--key" : o->ad.netG ? "--netG" : o->ad.ngf ? "--ngf"
                             : o->ad.norm ? "--norm" : o->ad.norm_stats ? "--norm_stats"
                             : o->ad.domains ? "--domains" : o->ad.domain_groups ? "--domain_groups"
                             : o->ad.scale ? "--scale" : NULL;
    if (tfjs && torch_only)
        cli_usage_error("convert", "%s applies to PyTorch checkpoints, not to a TF.js model.json", torch_only);
    if (!tfjs && o->range[0])
        cli_usage_error("convert", "--range applies to TF.js models (model.json), not to PyTorch checkpoints");
}

/* The official names, and the resnet_<N>blocks / unet_<2^n> pattern they follow. */
static bool netG_known(const char *s)
{
    char buf[64];
    int n;
    if (!strcmp(s, "stargan") || !strcmp(s, "rrdbnet") || !strcmp(s, "srresnet"))
        return true;
    if (sscanf(s, "resnet_%d", &n) == 1 && n >= 0 && n <= 64) {
        snprintf(buf, sizeof buf, "resnet_%dblocks", n);
        return !strcmp(s, buf);
    }
    if (sscanf(s, "unet_%d", &n) == 1 && n >= 32 && n <= 1024 && !(n & (n - 1))) {
        snprintf(buf, sizeof buf, "unet_%d", n);
        return !strcmp(s, buf);
    }
    return false;
}

static void parse_args(int argc, char **argv, struct options *o)
{
    enum { O_NETG = 256, O_NGF, O_NORM, O_STATS, O_DOMAINS, O_GROUPS, O_NAME, O_DESC, O_LICENSE, O_HALF,
           O_SCALE, O_RANGE };
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"key", required_argument, NULL, 'k'},
        {"netG", required_argument, NULL, O_NETG},
        {"ngf", required_argument, NULL, O_NGF},
        {"norm", required_argument, NULL, O_NORM},
        {"norm_stats", required_argument, NULL, O_STATS},
        {"domains", required_argument, NULL, O_DOMAINS},
        {"domain_groups", required_argument, NULL, O_GROUPS},
        {"name", required_argument, NULL, O_NAME},
        {"description", required_argument, NULL, O_DESC},
        {"license", required_argument, NULL, O_LICENSE},
        {"half", no_argument, NULL, O_HALF},
        {"range", required_argument, NULL, O_RANGE},
        {"scale", required_argument, NULL, O_SCALE},
        {"list", no_argument, NULL, 'l'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    long ngf, scale;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:k:lqh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case 'k': o->key = optarg; break;
        case 'l': o->list = true; break;
        case 'q': o->quiet = true; break;
        case O_NETG:
            if (!netG_known(optarg))
                cli_usage_error("convert", "unknown --netG '%s' (resnet_9blocks, resnet_6blocks, unet_256, "
                                "unet_128, resnet_Nblocks, unet_N, stargan, rrdbnet or srresnet)", optarg);
            o->ad.netG = optarg;
            break;
        case O_NGF:
            if (!cli_parse_int(optarg, 1, 1024, &ngf))
                cli_usage_error("convert", "--ngf needs a whole number 1..1024, not '%s'", optarg);
            o->ad.ngf = (int)ngf;
            break;
        case O_SCALE:
            if (!cli_parse_int(optarg, 1, 16, &scale))
                cli_usage_error("convert", "--scale needs a whole number 1..16, not '%s'", optarg);
            o->ad.scale = (int)scale;
            break;
        case O_NORM:
            if (strcmp(optarg, "instance") && strcmp(optarg, "batch") && strcmp(optarg, "none"))
                cli_usage_error("convert", "--norm is instance, batch or none, not '%s'", optarg);
            o->ad.norm = optarg;
            break;
        case O_STATS:
            if (strcmp(optarg, "image") && strcmp(optarg, "running"))
                cli_usage_error("convert", "--norm_stats is image or running, not '%s'", optarg);
            o->ad.norm_stats = optarg;
            break;
        case O_DOMAINS: o->ad.domains = optarg; break;
        case O_GROUPS: o->ad.domain_groups = optarg; break;
        case O_NAME: o->name = optarg; break;
        case O_DESC: o->description = optarg; break;
        case O_LICENSE: o->license = optarg; break;
        case O_HALF: o->half = true; break;
        case O_RANGE:
            if (!parse_range(optarg, o->range, sizeof o->range))
                cli_usage_error("convert", "--range needs LO,HI with LO < HI (e.g. 0,1 or 0,255), not '%s'",
                                optarg);
            break;
        case 'h': fputs(convert_help, stdout); exit(EXIT_OK);
        case ':': cli_usage_error("convert", "option '%s' needs an argument", argv[optind - 1]);
        default:
            if (optopt > 0 && optopt < 256)
                cli_usage_error("convert", "unknown option '-%c'", optopt);
            cli_usage_error("convert", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        cli_usage_error("convert", optind == argc ? "no checkpoint or model.json given" : "one input at a time");
    o->ckpt = argv[optind];
    if (!o->out && !o->list)
        cli_usage_error("convert", "no output given (-o OUT.safetensors)");
}

int cmd_convert(int argc, char **argv)
{
    struct options o = { 0 };
    parse_args(argc, argv, &o);
    bool tfjs = tm_tfjs_is_json(o.ckpt);
    check_input_kind(&o, tfjs);
    if (tfjs)
        return convert_tfjs(&o);
    struct tm_ckpt ck = { 0 };
    char err[1024];
    if (tm_ckpt_load(o.ckpt, &ck, err, sizeof err)) {
        cli_err("%s: %s", o.ckpt, err);
        return EXIT_FAIL;
    }
    int rc = EXIT_OK;
    if (o.list)
        list_tensors(&ck);
    else
        rc = convert(&o, &ck);
    tm_ckpt_free(&ck);
    return rc;
}
