/* arch_detect.c: which official generator a state_dict holds, and its
 * hyper-parameters, from the keys and shapes alone. */
#include "arch_detect.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The official defaults of StarGAN's --selected_attrs (CelebA) and the RaFD
 * folder names in the order ImageFolder sorts them. */
#define CELEBA "Black_Hair,Blond_Hair,Brown_Hair,Male,Young"
#define RAFD "angry,contemptuous,disgusted,fearful,happy,neutral,sad,surprised"

struct sd {
    struct ad_tensor *t;
    int n;
};

static struct ad_tensor *find(const struct sd *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static struct ad_tensor *find(const struct sd *s, const char *fmt, ...)
{
    char key[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].key, key))
            return &s->t[i];
    return NULL;
}

static bool is_conv(const struct ad_tensor *t)
{
    return t && t->ndim == 4;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void put(struct ad_result *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put(struct ad_result *r, const char *key, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (r->n_meta == AD_MAX_META)
        return;
    char *v = strdup(buf);
    if (!v)
        return; /* the missing entry fails the core's check of the result */
    r->meta_key[r->n_meta] = key;
    r->meta_val[r->n_meta++] = v;
}

/* The norm of the CycleGAN/pix2pix code from the layer after a conv:
 * BatchNorm2d has affine weights; the official InstanceNorm2d has none and
 * its convs have a bias (use_bias); with norm=none neither. */
static const char *norm_kind(const struct ad_tensor *norm_w, const struct ad_tensor *conv_b)
{
    return norm_w ? "batch" : conv_b ? "instance" : "none";
}

/* InstanceNorm2d in checkpoints of PyTorch < 0.4 kept running statistics
 * that the official loader deletes before load_state_dict: so do we. */
static void drop_instnorm_stats(const struct sd *s, struct ad_result *r)
{
    static const char *const tails[] = { ".running_mean", ".running_var", ".num_batches_tracked" };
    for (int i = 0; i < s->n; i++) {
        size_t kl = strlen(s->t[i].key);
        for (int k = 0; k < 3; k++) {
            size_t tl = strlen(tails[k]);
            if (kl > tl && !strcmp(s->t[i].key + kl - tl, tails[k]) && !s->t[i].drop) {
                s->t[i].drop = true;
                r->n_dropped++;
            }
        }
    }
}

static int check_opts(const struct ad_options *o, const char *netG, int ngf, const char *norm,
                      char *err, size_t errlen)
{
    if (o->netG && strcmp(o->netG, netG))
        return fail(err, errlen, "--netG %s, but the checkpoint holds a %s", o->netG, netG);
    if (o->ngf && o->ngf != ngf)
        return fail(err, errlen, "--ngf %d, but the first conv has %d filters", o->ngf, ngf);
    if (o->norm && strcmp(o->norm, norm))
        return fail(err, errlen, "--norm %s, but the tensors are those of norm %s", o->norm, norm);
    return 0;
}

/* The image-to-image generators keep the size: --scale can only say 1. */
static int check_same_size(const struct ad_options *o, const char *netG, char *err, size_t errlen)
{
    if (o->scale && o->scale != 1)
        return fail(err, errlen, "--scale %d, but a %s keeps the image size", o->scale, netG);
    return 0;
}

static void common_meta(struct ad_result *r, const char *arch, int in, int out, int ngf, const char *norm,
                        const struct ad_options *o)
{
    put(r, "arch", "%s", arch);
    put(r, "input_nc", "%d", in);
    put(r, "output_nc", "%d", out);
    put(r, "ngf", "%d", ngf);
    put(r, "norm", "%s", norm);
    if (!strcmp(norm, "batch")) {
        const char *stats = o->norm_stats ? o->norm_stats : "image";
        put(r, "norm_stats", "%s", stats);
        if (!o->norm_stats)
            snprintf(r->note, sizeof r->note,
                     "batch norm uses each image's statistics, as the official test does without "
                     "--eval; --norm_stats running uses the stored ones");
    }
}

static int resnet(const struct sd *s, const struct ad_options *o, struct ad_result *r, char *err,
                  size_t errlen)
{
    const struct ad_tensor *first = find(s, "model.1.weight");
    int ngf = (int)first->shape[0], in = (int)first->shape[1];
    int nb = 0;
    while (find(s, "model.%d.conv_block.%d.weight", 10 + nb, 0) ||
           find(s, "model.%d.conv_block.%d.weight", 10 + nb, 1))
        nb++;
    bool reflect = nb == 0 || is_conv(find(s, "model.10.conv_block.1.weight"));
    int second = reflect ? 5 : 3; /* the block's second conv without dropout */
    bool dropout = nb > 0 && !is_conv(find(s, "model.10.conv_block.%d.weight", second)) &&
                   is_conv(find(s, "model.10.conv_block.%d.weight", second + 1));
    const struct ad_tensor *last = find(s, "model.%d.weight", 10 + nb + 7);
    if (!is_conv(last))
        return fail(err, errlen, "a ResNet generator with %d blocks should end with tensor 'model.%d.weight': "
                    "not found", nb, 10 + nb + 7);
    const char *norm = norm_kind(find(s, "model.2.weight"), find(s, "model.1.bias"));
    char netG[32];
    snprintf(netG, sizeof netG, "resnet_%dblocks", nb);
    if (check_opts(o, netG, ngf, norm, err, errlen) || check_same_size(o, netG, err, errlen))
        return -1;
    common_meta(r, "resnet", in, (int)last->shape[0], ngf, norm, o);
    put(r, "n_blocks", "%d", nb);
    put(r, "padding", "%s", reflect ? "reflect" : "zero");
    put(r, "dropout", "%s", dropout ? "true" : "false");
    put(r, "name", "%s", netG);
    if (!strcmp(norm, "instance"))
        drop_instnorm_stats(s, r);
    snprintf(r->summary, sizeof r->summary, "%s (ngf %d, %s norm, %s padding%s, %d -> %d channels)",
             netG, ngf, norm, reflect ? "reflect" : "zero", dropout ? ", dropout layers" : "", in,
             (int)last->shape[0]);
    return 0;
}

static int unet(const struct sd *s, const struct ad_options *o, struct ad_result *r, char *err,
                size_t errlen)
{
    const struct ad_tensor *first = find(s, "model.model.0.weight");
    const struct ad_tensor *up = find(s, "model.model.3.weight");
    if (!is_conv(up))
        return fail(err, errlen, "a U-Net generator needs tensor 'model.model.3.weight': not found");
    int ngf = (int)first->shape[0], in = (int)first->shape[1], out = (int)up->shape[1];
    /* Level L's layers sit under model.model.1.model(.3.model)^(L-1). */
    char prefix[512] = "model.model.1.model";
    int downs = 1;
    while (downs < 16 && is_conv(find(s, "%s.1.weight", prefix))) {
        downs++;
        size_t len = strlen(prefix);
        snprintf(prefix + len, sizeof prefix - len, ".3.model");
    }
    const char *norm = norm_kind(find(s, "model.model.1.model.2.weight"),
                                 find(s, "model.model.0.bias"));
    char netG[32];
    snprintf(netG, sizeof netG, "unet_%d", 1 << downs);
    if (downs < 5 || downs > 10)
        return fail(err, errlen, "a U-Net with %d downsamplings is not supported (5..10)", downs);
    if (check_opts(o, netG, ngf, norm, err, errlen) || check_same_size(o, netG, err, errlen))
        return -1;
    common_meta(r, "unet", in, out, ngf, norm, o);
    put(r, "num_downs", "%d", downs);
    put(r, "name", "%s", netG);
    if (!strcmp(norm, "instance"))
        drop_instnorm_stats(s, r);
    snprintf(r->summary, sizeof r->summary, "%s (ngf %d, %s norm, %d downsamplings, %d -> %d channels)",
             netG, ngf, norm, downs, in, out);
    return 0;
}

static int count_names(const char *list)
{
    int n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

/* The label names and layout: given, or the official defaults by size. */
static int stargan_domains(int c_dim, const struct ad_options *o, struct ad_result *r, char *err,
                           size_t errlen)
{
    const char *names = o->domains, *groups = o->domain_groups;
    if (!names) {
        if (c_dim == 5 && !groups) {
            names = CELEBA;
        } else if (c_dim == 8 && !groups) {
            names = RAFD;
        } else if (c_dim == 15 && (!groups || !strcmp(groups, "CelebA:5,RaFD:8"))) {
            names = CELEBA "," RAFD;
            groups = "CelebA:5,RaFD:8";
        } else {
            return fail(err, errlen, "the generator takes a label of %d values: name them with --domains "
                        "A,B,... (and --domain_groups for a multi-dataset model)", c_dim);
        }
        snprintf(r->note, sizeof r->note, "label names not given: assuming the official %s (--domains to change)",
                 c_dim == 5 ? "CelebA attributes" : c_dim == 8 ? "RaFD expressions" :
                 "CelebA attributes, RaFD expressions and dataset mask");
    }
    int n = count_names(names), n_groups = groups ? count_names(groups) : 0;
    if (n + n_groups != c_dim)
        return fail(err, errlen, "%d domain names%s, but the generator takes a label of %d values", n,
                    n_groups ? " plus the dataset mask" : "", c_dim);
    put(r, "domains", "%s", names);
    if (groups)
        put(r, "domain_groups", "%s", groups);
    return 0;
}

static int stargan(const struct sd *s, const struct ad_options *o, struct ad_result *r, char *err,
                   size_t errlen)
{
    const struct ad_tensor *first = find(s, "main.0.weight");
    int dim = (int)first->shape[0], c_dim = (int)first->shape[1] - 3;
    if (c_dim < 1)
        return fail(err, errlen, "'main.0.weight' takes %d channels: no room for a label after RGB",
                    (int)first->shape[1]);
    int nb = 0;
    while (is_conv(find(s, "main.%d.main.0.weight", 9 + nb)))
        nb++;
    if (check_opts(o, "stargan", dim, "instance", err, errlen) ||
        check_same_size(o, "stargan", err, errlen))
        return -1;
    put(r, "arch", "stargan");
    put(r, "input_nc", "3");
    put(r, "output_nc", "3");
    put(r, "ngf", "%d", dim);
    put(r, "n_blocks", "%d", nb);
    put(r, "name", "stargan");
    if (stargan_domains(c_dim, o, r, err, errlen))
        return -1;
    snprintf(r->summary, sizeof r->summary, "stargan (conv_dim %d, %d residual blocks, label of %d)", dim,
             nb, c_dim);
    return 0;
}

/* The largest N of the keys "body.N.*", -1 when there is none. */
static int max_body_index(const struct sd *s)
{
    int max = -1;
    for (int i = 0; i < s->n; i++) {
        const char *k = s->t[i].key;
        if (strncmp(k, "body.", 5) || k[5] < '0' || k[5] > '9')
            continue;
        char *end;
        long v = strtol(k + 5, &end, 10);
        if (*end == '.' && v > max && v < 100000)
            max = (int)v;
    }
    return max;
}

/* RRDBNet's scale and input channels from conv_first's cin channels: scale
 * 2 and 1 fold each image channel into 4 or 16 first (pixel_unshuffle).
 * The file does not say num_in_ch: it is taken as conv_last's output
 * channels (as in every released model) unless --scale says otherwise. */
static int rrdb_scale(const struct ad_options *o, int cin, int out, int *in, char *err, size_t errlen)
{
    if (o->scale) {
        if (o->scale != 1 && o->scale != 2 && o->scale != 4)
            return fail(err, errlen, "--scale %d, but an RRDBNet enlarges 4, 2 or 1 times", o->scale);
        int fold = (4 / o->scale) * (4 / o->scale);
        *in = cin / fold;
        if (cin % fold || *in < 1 || *in > 4)
            return fail(err, errlen, "--scale %d, but conv_first takes %d channels: not 1..4 image "
                        "channels folded into %d each", o->scale, cin, fold);
        return o->scale;
    }
    *in = out;
    if (cin == out || cin == 4 * out || cin == 16 * out)
        return cin == out ? 4 : cin == 4 * out ? 2 : 1;
    return fail(err, errlen, "conv_first takes %d channels and conv_last makes %d: not an RRDBNet of "
                "scale 4, 2 or 1 with as many input as output channels (--scale N to say which)",
                cin, out);
}

static int rrdbnet(const struct sd *s, const struct ad_options *o, struct ad_result *r, char *err,
                   size_t errlen)
{
    const struct ad_tensor *first = find(s, "conv_first.weight");
    const struct ad_tensor *last = find(s, "conv_last.weight");
    const struct ad_tensor *grow = find(s, "body.0.rdb1.conv1.weight");
    if (!is_conv(last))
        return fail(err, errlen, "an RRDBNet should end with tensor 'conv_last.weight': not found");
    if (!is_conv(grow))
        return fail(err, errlen, "an RRDBNet needs tensor 'body.0.rdb1.conv1.weight' (the first "
                    "dense block): not found");
    int nf = (int)first->shape[0], gc = (int)grow->shape[0], out = (int)last->shape[0];
    int nb = max_body_index(s) + 1, in = 0;
    int scale = rrdb_scale(o, (int)first->shape[1], out, &in, err, errlen);
    if (scale < 0 || check_opts(o, "rrdbnet", nf, "none", err, errlen))
        return -1;
    put(r, "arch", "rrdbnet");
    put(r, "input_nc", "%d", in);
    put(r, "output_nc", "%d", out);
    put(r, "ngf", "%d", nf);
    put(r, "n_blocks", "%d", nb);
    put(r, "grow", "%d", gc);
    put(r, "scale", "%d", scale);
    put(r, "name", "rrdbnet");
    if (!o->scale)
        snprintf(r->note, sizeof r->note, "input channels taken as conv_last's output channels (%d), "
                 "as in every released model: scale %d (--scale to say otherwise)", out, scale);
    snprintf(r->summary, sizeof r->summary, "rrdbnet x%d (ESRGAN: num_feat %d, %d RRDB block%s, "
             "num_grow_ch %d, %d -> %d channels)", scale, nf, nb, nb == 1 ? "" : "s", gc, in, out);
    return 0;
}

/* SRGAN's generator, leftthomas/SRGAN names: block1 (9x9 conv, PReLU),
 * residual blocks block2..block(n+1), block(n+2) (conv, BN), then in
 * block(n+3) one conv + PixelShuffle(2) + PReLU per doubling and a 9x9 conv. */
static int srresnet(const struct sd *s, const struct ad_options *o, struct ad_result *r, char *err,
                    size_t errlen)
{
    const struct ad_tensor *first = find(s, "block1.0.weight");
    int ngf = (int)first->shape[0], in = (int)first->shape[1];
    int nb = 0, ups = 0;
    while (is_conv(find(s, "block%d.conv1.weight", 2 + nb)))
        nb++;
    int tail = nb + 3;
    while (is_conv(find(s, "block%d.%d.conv.weight", tail, ups)))
        ups++;
    const struct ad_tensor *last = find(s, "block%d.%d.weight", tail, ups);
    if (!is_conv(last))
        return fail(err, errlen, "an SRGAN generator with %d residual blocks and %d upsampling blocks "
                    "should end with tensor 'block%d.%d.weight': not found", nb, ups, tail, ups);
    if (check_opts(o, "srresnet", ngf, "batch", err, errlen))
        return -1;
    if (o->scale && o->scale != 1 << ups)
        return fail(err, errlen, "--scale %d, but the checkpoint has %d upsampling block%s (scale %d)",
                    o->scale, ups, ups == 1 ? "" : "s", 1 << ups);
    if (o->norm_stats && strcmp(o->norm_stats, "running"))
        return fail(err, errlen, "--norm_stats %s, but SRGAN's batch norm uses the stored statistics "
                    "(eval mode)", o->norm_stats);
    put(r, "arch", "srresnet");
    put(r, "input_nc", "%d", in);
    put(r, "output_nc", "%d", (int)last->shape[0]);
    put(r, "ngf", "%d", ngf);
    put(r, "n_blocks", "%d", nb);
    put(r, "scale", "%d", 1 << ups);
    put(r, "name", "srresnet");
    snprintf(r->summary, sizeof r->summary, "srresnet x%d (SRGAN: %d filters, %d residual block%s, "
             "%d upsampling block%s, %d -> %d channels)", 1 << ups, ngf, nb, nb == 1 ? "" : "s", ups,
             ups == 1 ? "" : "s", in, (int)last->shape[0]);
    return 0;
}

int ad_detect(struct ad_tensor *t, int n, const struct ad_options *o, struct ad_result *r, char *err,
              size_t errlen)
{
    struct sd s = { t, n };
    memset(r, 0, sizeof *r);
    int rc;
    if (is_conv(find(&s, "main.0.weight")))
        rc = stargan(&s, o, r, err, errlen);
    else if (is_conv(find(&s, "model.1.weight")))
        rc = resnet(&s, o, r, err, errlen);
    else if (is_conv(find(&s, "model.model.0.weight")))
        rc = unet(&s, o, r, err, errlen);
    else if (is_conv(find(&s, "conv_first.weight")))
        rc = rrdbnet(&s, o, r, err, errlen);
    else if (is_conv(find(&s, "block1.0.weight")))
        rc = srresnet(&s, o, r, err, errlen);
    else
        rc = fail(err, errlen, "not a generator Transmute knows: no 'model.1.weight' (ResNet), "
                  "'model.model.0.weight' (U-Net), 'main.0.weight' (StarGAN), 'conv_first.weight' "
                  "(RRDBNet) or 'block1.0.weight' (SRGAN) among %d tensors (first: '%s')", n,
                  n ? t[0].key : "none");
    if (rc)
        ad_result_free(r);
    return rc;
}

void ad_result_free(struct ad_result *r)
{
    for (int i = 0; i < r->n_meta; i++)
        free(r->meta_val[i]);
    r->n_meta = 0;
}
