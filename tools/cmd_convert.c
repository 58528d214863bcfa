/* cmd_convert.c: `transmute convert CHECKPOINT -o OUT.safetensors`.
 *
 * Reads an official PyTorch checkpoint (tools/convert/torch_ckpt.h), picks
 * its generator state_dict, recognizes the architecture (arch_detect.h),
 * and writes a safetensors model with the official tensor names. The result
 * is loaded by the core before it is written, so a file that the translate
 * command would reject is never produced. */
#include "arch_detect.h"
#include "cli.h"
#include "st_write.h"
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
    "       transmute convert --list CHECKPOINT\n"
    "\n"
    "Converts a PyTorch checkpoint (.pth, .ckpt: the legacy format of the\n"
    "2017-2019 official releases or the zip format of torch >= 1.6) of a\n"
    "CycleGAN/pix2pix generator (ResnetGenerator, UnetGenerator) or StarGAN's\n"
    "generator into a Transmute model. No Python is needed: the checkpoint's\n"
    "pickle is read by a restricted reader that accepts only what a state_dict\n"
    "holds and never runs code from the file. The architecture and its\n"
    "hyper-parameters are recognized from the tensors' names and shapes and\n"
    "printed; options given are checked against them.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE      the .safetensors file to write (written to a\n"
    "                         temporary file and renamed: never left half-written)\n"
    "  -k, --key KEY          use the state_dict under KEY of a checkpoint that\n"
    "                         holds several (e.g. --key G_A, or a.b for nested dicts)\n"
    "      --netG NAME        expect this generator: resnet_9blocks, resnet_6blocks,\n"
    "                         unet_256, unet_128 (or resnet_Nblocks, unet_N), stargan\n"
    "      --ngf N            expect N filters in the first conv (StarGAN: conv_dim)\n"
    "      --norm KIND        expect instance, batch or none normalization\n"
    "      --norm_stats S     batch norm: image (default: each image's statistics, as\n"
    "                         the official test without --eval) or running\n"
    "      --domains A,B,...  StarGAN: the label names, in label order (default for\n"
    "                         labels of 5, 8 and 15 values: the official CelebA\n"
    "                         attributes, RaFD expressions, or both with the mask)\n"
    "      --domain_groups G  StarGAN trained on several datasets: each dataset's\n"
    "                         name and number of domains, e.g. CelebA:5,RaFD:8; a\n"
    "                         one-hot dataset mask follows the labels\n"
    "      --name TEXT        metadata: the model's name (default: the --netG name)\n"
    "      --description TEXT metadata: what the model does\n"
    "      --license TEXT     metadata: the weights' licence\n"
    "      --half             store the weights as F16 (half the size)\n"
    "  -l, --list             list the checkpoint's tensors and exit\n"
    "  -q, --quiet            print nothing on success\n"
    "  -h, --help             show this help\n"
    "\n"
    "Checkpoints: a DataParallel 'module.' prefix is removed; InstanceNorm running\n"
    "statistics left by PyTorch < 0.4 are dropped, as the official loader does;\n"
    "tensor views into shared storages are copied out contiguously; F64 tensors\n"
    "are stored as F32. Exit status: 0 on success, 1 when the checkpoint cannot\n"
    "be converted (with a one-line reason), 2 for a bad command line.\n";

struct options {
    const char *ckpt, *out, *key, *name, *description, *license;
    struct ad_options ad;
    bool half, list, quiet;
};

/* The tensors of one state_dict, keys relative to it. */
struct selection {
    struct ad_tensor *t;
    const struct tm_ckpt_tensor **src;
    int n;
    char chosen[256]; /* the dict prefix used, "" for the top level */
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

/* Picks the state_dict: the one under --key, or the only one there is. */
static int select_tensors(const struct tm_ckpt *ck, const char *key, struct selection *s)
{
    char prefixes[1024];
    list_prefixes(ck, prefixes, sizeof prefixes);
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

/* The official names, and the resnet_<N>blocks / unet_<2^n> pattern they follow. */
static bool netG_known(const char *s)
{
    char buf[64];
    int n;
    if (!strcmp(s, "stargan"))
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
    enum { O_NETG = 256, O_NGF, O_NORM, O_STATS, O_DOMAINS, O_GROUPS, O_NAME, O_DESC, O_LICENSE, O_HALF };
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
        {"list", no_argument, NULL, 'l'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    long ngf;
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
                                "unet_128, resnet_Nblocks, unet_N or stargan)", optarg);
            o->ad.netG = optarg;
            break;
        case O_NGF:
            if (!cli_parse_int(optarg, 1, 1024, &ngf))
                cli_usage_error("convert", "--ngf needs a whole number 1..1024, not '%s'", optarg);
            o->ad.ngf = (int)ngf;
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
        case 'h': fputs(convert_help, stdout); exit(EXIT_OK);
        case ':': cli_usage_error("convert", "option '%s' needs an argument", argv[optind - 1]);
        default:
            if (optopt > 0 && optopt < 256)
                cli_usage_error("convert", "unknown option '-%c'", optopt);
            cli_usage_error("convert", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        cli_usage_error("convert", optind == argc ? "no checkpoint given" : "one checkpoint at a time");
    o->ckpt = argv[optind];
    if (!o->out && !o->list)
        cli_usage_error("convert", "no output given (-o OUT.safetensors)");
}

int cmd_convert(int argc, char **argv)
{
    struct options o = { 0 };
    parse_args(argc, argv, &o);
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
