/* tfjs_layers.c: each Keras layer as graph nodes and tensors.
 *
 * tfjs_convert_layer runs once per layer, in dependency order, so a layer's
 * inputs already carry their channel counts and their side's ratio to the
 * input's. Each layer checks its config and the shapes of its manifest
 * weights against those, so a weight that disagrees with its layer is caught
 * before any shard is read; it then appends its graph node (or, for a linear
 * activation, becomes an alias of its input) and the jobs that will produce
 * its tensors. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tfjs_internal.h"

#define MAX_CHANNELS 65536
#define MAX_KERNEL 63
#define MAX_STRIDE 16
#define MAX_DILATION 64
#define MAX_FACTOR 16        /* upsampling, pixel shuffle */
#define MAX_RATIO (1 << 20)  /* a side's ratio to the input's, while carried */

/* ---- Small helpers ---------------------------------------------------- */

static const char *shape_str(const int64_t *s, int n, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && at < len; i++) {
        int k = snprintf(buf + at, len - at, "%s%lld", i ? ", " : "", (long long)s[i]);
        at += k > 0 ? (size_t)k : 0;
    }
    return buf;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Multiplies l's side ratio by mul/div, kept reduced and bounded. */
static bool rescale(struct ctx *c, struct layer *l, int mul, int div)
{
    l->num *= mul;
    l->den *= div;
    int64_t g = gcd64(l->num, l->den);
    l->num /= g;
    l->den /= g;
    if (l->num > MAX_RATIO || l->den > MAX_RATIO)
        return tfjs_lfail(c, l, "the image size changes too much on the way here");
    return true;
}

static void put_int(struct ctx *c, json_object *o, const char *key, int v)
{
    tfjs_jput(c, o, key, json_object_new_int(v));
}

/* Numbers are written with 9 significant digits, what a float needs, so
 * 0.2 stays "0.2". */
static void put_num(struct ctx *c, json_object *o, const char *key, double v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", v);
    tfjs_jput(c, o, key, json_object_new_double_s(v, buf));
}

/* ---- Reading a layer's config ----------------------------------------- */

/* The config value under key; NULL when absent or JSON null. */
static json_object *cfg(const struct layer *l, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(l->cfg, key, &v) ? v : NULL;
}

static bool cfg_int(struct ctx *c, struct layer *l, const char *key, int lo, int hi, int def, int *out)
{
    json_object *v = cfg(l, key);
    int64_t x = v ? (json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : INT64_MIN) : def;
    if (!v && def < lo)
        return tfjs_lfail(c, l, "no '%s' in its config", key);
    if (x < lo || x > hi)
        return tfjs_lfail(c, l, "'%s' must be a whole number %d..%d", key, lo, hi);
    *out = (int)x;
    return true;
}

/* An int or a list of two (Keras writes [kh, kw]), each lo..hi. */
static bool cfg_pair(struct ctx *c, struct layer *l, const char *key, int lo, int hi, int def, int out[2])
{
    json_object *v = cfg(l, key);
    if (!v && def < lo)
        return tfjs_lfail(c, l, "no '%s' in its config", key);
    for (int i = 0; i < 2; i++) {
        json_object *e = json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, (size_t)i) : v;
        int64_t x = !v ? def : json_object_is_type(e, json_type_int) ? json_object_get_int64(e) : INT64_MIN;
        if (x < lo || x > hi || (json_object_is_type(v, json_type_array) && json_object_array_length(v) != 2))
            return tfjs_lfail(c, l, "'%s' must be one or two whole numbers %d..%d", key, lo, hi);
        out[i] = (int)x;
    }
    return true;
}

static bool cfg_num(struct ctx *c, struct layer *l, const char *key, double def, double *out)
{
    json_object *v = cfg(l, key);
    bool num = json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
    *out = !v ? def : num ? json_object_get_double(v) : NAN;
    if (!isfinite(*out) || fabs(*out) > 1e30)
        return tfjs_lfail(c, l, "'%s' must be a finite number", key);
    return true;
}

static bool cfg_bool(struct ctx *c, struct layer *l, const char *key, bool def, bool *out)
{
    json_object *v = cfg(l, key);
    if (v && !json_object_is_type(v, json_type_boolean))
        return tfjs_lfail(c, l, "'%s' must be true or false", key);
    *out = v ? json_object_get_boolean(v) : def;
    return true;
}

/* The string under key, def when absent; NULL (with a message) when it is
 * something else. */
static const char *cfg_str(struct ctx *c, struct layer *l, const char *key, const char *def)
{
    json_object *v = cfg(l, key);
    if (!v)
        return def;
    if (!json_object_is_type(v, json_type_string)) {
        tfjs_lfail(c, l, "'%s' must be a string", key);
        return NULL;
    }
    return json_object_get_string(v);
}

/* data_format channels_last (the only layout TF.js runs). */
static bool channels_last(struct ctx *c, struct layer *l)
{
    const char *f = cfg_str(c, l, "data_format", "channels_last");
    if (f && strcmp(f, "channels_last"))
        return tfjs_lfail(c, l, "data_format %.32s is not supported (channels_last)", f);
    return f != NULL;
}

/* Keras activation names the graph can run: linear (none), relu, tanh. */
static bool activation(struct ctx *c, struct layer *l, const char *key, const char **act)
{
    const char *a = cfg_str(c, l, key, "linear");
    if (!a)
        return false;
    if (!strcmp(a, "linear") || !strcmp(a, "relu") || !strcmp(a, "tanh")) {
        *act = !strcmp(a, "linear") ? "none" : a;
        return true;
    }
    return tfjs_lfail(c, l, "activation '%.32s' is not supported (linear, relu, tanh)", a);
}

/* ---- Weights and tensors ---------------------------------------------- */

/* The manifest weight NAME/what; its shape must be want (-1: any size). */
static int weight(struct ctx *c, struct layer *l, const char *what, int ndim, const int64_t *want)
{
    char name[TFJS_TENSOR_NAME], b1[160], b2[160];
    snprintf(name, sizeof name, "%s/%s", l->name, what);
    int i = tfjs_manifest_find(&c->man, name);
    if (i < 0) {
        tfjs_lfail(c, l, "weight '%s' is not in the weightsManifest", name);
        return -1;
    }
    struct tfjs_wspec *w = &c->man.w[i];
    bool ok = w->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = want[d] < 0 || w->shape[d] == want[d];
    if (!ok) {
        int64_t shown[4];
        for (int d = 0; d < ndim; d++)
            shown[d] = want[d] < 0 ? 0 : want[d];
        tfjs_lfail(c, l, "weight '%s' has shape [%s] in the weightsManifest, the layer needs [%s]", name,
                   shape_str(w->shape, w->ndim, b1, sizeof b1), shape_str(shown, ndim, b2, sizeof b2));
        return -1;
    }
    w->used = true;
    return i;
}

static bool add_job(struct ctx *c, const struct layer *l, const char *suffix, enum job_kind kind, int weight,
                    float fill, int ndim, const int64_t *shape)
{
    if (c->n_jobs == c->cap_jobs) {
        int cap = c->cap_jobs ? 2 * c->cap_jobs : 64;
        struct job *j = realloc(c->jobs, (size_t)cap * sizeof *j);
        if (!j)
            return tfjs_oom(c);
        c->jobs = j;
        c->cap_jobs = cap;
    }
    struct job *j = &c->jobs[c->n_jobs++];
    *j = (struct job){ .kind = kind, .weight = weight, .fill = fill, .ndim = ndim };
    snprintf(j->name, sizeof j->name, "%s.%s", l->name, suffix);
    memcpy(j->shape, shape, (size_t)ndim * sizeof *shape);
    return true;
}

/* NAME.weight from an HWIO (conv) or HWOI (transposed conv) kernel, and
 * NAME.bias: PyTorch's OIHW and IOHW are the same permutation of them. */
static bool kernel_and_bias(struct ctx *c, struct layer *l, int kh, int kw, int a, int b, bool bias)
{
    int64_t ks[4] = { kh, kw, a, b }, out[4] = { b, a, kh, kw }, bs[1] = { b };
    int k = weight(c, l, "kernel", 4, ks);
    if (k < 0 || !add_job(c, l, "weight", J_KERNEL, k, 0, 4, out))
        return false;
    if (!bias)
        return true;
    int bi = weight(c, l, "bias", 1, bs);
    return bi >= 0 && add_job(c, l, "bias", J_COPY, bi, 0, 1, bs);
}

/* ---- Graph nodes ------------------------------------------------------ */

/* A node named after l, taking l's inputs; l's result is now this node's. */
static json_object *node(struct ctx *c, struct layer *l, const char *op)
{
    json_object *n = json_object_new_object(), *ins = json_object_new_array();
    tfjs_put_str(c, n, "name", l->name);
    tfjs_put_str(c, n, "op", op);
    for (int i = 0; i < l->n_in; i++)
        tfjs_put_str(c, ins, NULL, c->L[l->in[i]].out);
    tfjs_jput(c, n, "inputs", ins);
    json_object_get(n); /* kept alive for the caller's attributes even if the append failed */
    tfjs_jput(c, c->nodes, NULL, n);
    l->out = l->name;
    c->n_nodes++;
    return n;
}

static void node_done(json_object *n)
{
    json_object_put(n);
}

/* Takes the first input's channels and size (elementwise layers). */
static void inherit(struct ctx *c, struct layer *l)
{
    const struct layer *s = &c->L[l->in[0]];
    l->channels = s->channels;
    l->num = s->num;
    l->den = s->den;
    l->out = s->out;
}

static bool one_input(struct ctx *c, struct layer *l)
{
    if (l->n_in != 1)
        return tfjs_lfail(c, l, "%s takes one input, not %d", l->cls, l->n_in);
    inherit(c, l);
    return true;
}

/* ---- Layers ----------------------------------------------------------- */

static bool input_layer(struct ctx *c, struct layer *l)
{
    json_object *s = cfg(l, "batch_input_shape");
    if (!s)
        s = cfg(l, "batch_shape"); /* Keras 3 */
    json_object *last = json_object_is_type(s, json_type_array) && json_object_array_length(s) == 4
                            ? json_object_array_get_idx(s, 3) : NULL;
    int64_t ch = json_object_is_type(last, json_type_int) ? json_object_get_int64(last) : 0;
    if (ch < 1 || ch > 4)
        return tfjs_lfail(c, l, "the input must be an image [batch, height, width, channels] with 1..4 channels "
                          "given in batch_input_shape");
    l->channels = (int)ch;
    l->num = l->den = 1;
    l->out = l->name;
    return true;
}

/* The symmetric padding that gives TF's "same" for a stride-1 conv, or -1. */
static int same_pad(int kh, int kw, int stride, int dil)
{
    if (kh == 1 && kw == 1)
        return 0; /* "same" never pads a 1x1 kernel, whatever the stride */
    if (kh != kw || !(kh & 1) || stride != 1)
        return -1;
    return dil * (kh - 1) / 2;
}

struct conv_cfg {
    int filters, k[2], s[2], d[2];
    bool same, bias;
    const char *act;
};

static bool conv_common(struct ctx *c, struct layer *l, struct conv_cfg *k)
{
    const char *pad = NULL;
    if (!one_input(c, l) || !cfg_int(c, l, "filters", 1, MAX_CHANNELS, 0, &k->filters) ||
        !cfg_pair(c, l, "kernel_size", 1, MAX_KERNEL, 0, k->k) ||
        !cfg_pair(c, l, "strides", 1, MAX_STRIDE, 1, k->s) ||
        !cfg_pair(c, l, "dilation_rate", 1, MAX_DILATION, 1, k->d) || !(pad = cfg_str(c, l, "padding", "valid")) ||
        !cfg_bool(c, l, "use_bias", true, &k->bias) || !channels_last(c, l) || !activation(c, l, "activation", &k->act))
        return false;
    if (strcmp(pad, "valid") && strcmp(pad, "same"))
        return tfjs_lfail(c, l, "padding '%.32s' is not supported (valid, same)", pad);
    if (k->s[0] != k->s[1] || k->d[0] != k->d[1])
        return tfjs_lfail(c, l, "strides and dilation_rate must be the same on both axes");
    k->same = !strcmp(pad, "same");
    return true;
}

static void conv_attrs(struct ctx *c, json_object *n, const struct conv_cfg *k, int pad)
{
    json_object *kern = json_object_new_array();
    put_int(c, kern, NULL, k->k[0]);
    put_int(c, kern, NULL, k->k[1]);
    tfjs_jput(c, n, "kernel", kern);
    put_int(c, n, "pad", pad);
    if (k->s[0] != 1)
        put_int(c, n, "stride", k->s[0]);
    if (!k->bias)
        tfjs_jput(c, n, "bias", json_object_new_boolean(0));
    if (strcmp(k->act, "none"))
        tfjs_put_str(c, n, "act", k->act);
}

static bool conv2d(struct ctx *c, struct layer *l)
{
    struct conv_cfg k = { 0 };
    int groups = 1;
    if (!conv_common(c, l, &k) || !cfg_int(c, l, "groups", 1, MAX_CHANNELS, 1, &groups))
        return false;
    if (groups != 1)
        return tfjs_lfail(c, l, "grouped convolutions (groups %d) are not supported", groups);
    int pad = k.same ? same_pad(k.k[0], k.k[1], k.s[0], k.d[0]) : 0;
    if (pad < 0)
        return tfjs_lfail(c, l, "padding 'same' with a %dx%d kernel and stride %d pads unevenly, which a graph model "
                          "cannot express", k.k[0], k.k[1], k.s[0]);
    int cin = l->channels;
    if (!kernel_and_bias(c, l, k.k[0], k.k[1], cin, k.filters, k.bias))
        return false;
    json_object *n = node(c, l, "conv2d");
    conv_attrs(c, n, &k, pad);
    if (k.d[0] != 1)
        put_int(c, n, "dilation", k.d[0]);
    node_done(n);
    l->channels = k.filters;
    return rescale(c, l, 1, k.s[0]);
}

/* Keras' transposed conv crops pad_total = max(k - s, 0) (its "same"), the
 * first half rounded down at the start; PyTorch crops pad on both sides and
 * adds out_pad at the end. */
static bool convt2d(struct ctx *c, struct layer *l)
{
    struct conv_cfg k = { 0 };
    if (!conv_common(c, l, &k))
        return false;
    if (cfg(l, "output_padding"))
        return tfjs_lfail(c, l, "output_padding is not supported");
    if (k.d[0] != 1 || k.k[0] != k.k[1])
        return tfjs_lfail(c, l, "only square kernels without dilation are supported in Conv2DTranspose");
    int kk = k.k[0], s = k.s[0], total = kk > s ? kk - s : 0, pad = k.same ? total / 2 : 0;
    int out_pad = kk < s ? s - kk : 0;
    if (k.same && (total & 1))
        return tfjs_lfail(c, l, "padding 'same' with kernel %d and stride %d crops unevenly, which a graph model "
                          "cannot express", kk, s);
    if (!kernel_and_bias(c, l, kk, kk, k.filters, l->channels, false))
        return false;
    /* The kernel's last two axes are [out, in]: the bias has `filters` entries. */
    int64_t bs[1] = { k.filters };
    int bi = k.bias ? weight(c, l, "bias", 1, bs) : -1;
    if (k.bias && (bi < 0 || !add_job(c, l, "bias", J_COPY, bi, 0, 1, bs)))
        return false;
    json_object *n = node(c, l, "convt2d");
    conv_attrs(c, n, &k, pad);
    if (out_pad)
        put_int(c, n, "out_pad", out_pad);
    node_done(n);
    l->channels = k.filters;
    return rescale(c, l, s, 1);
}

static bool activation_layer(struct ctx *c, struct layer *l)
{
    const char *act = NULL;
    if (!one_input(c, l) || !activation(c, l, "activation", &act))
        return false;
    /* A linear activation computes nothing: later layers read its input,
     * unless it is the output, which must be a node of its own. */
    if (!strcmp(act, "none") && l != c->output)
        return true;
    json_object *n = node(c, l, "act");
    tfjs_put_str(c, n, "act", act);
    node_done(n);
    return true;
}

static bool leaky_node(struct ctx *c, struct layer *l, double slope)
{
    json_object *n = node(c, l, "act");
    tfjs_put_str(c, n, "act", slope == 0 ? "relu" : "lrelu");
    if (slope != 0)
        put_num(c, n, "slope", slope);
    node_done(n);
    return true;
}

static bool leaky_relu(struct ctx *c, struct layer *l)
{
    double a = 0;
    /* Keras 2 calls the slope alpha, Keras 3 negative_slope; 0.3 by default. */
    const char *key = cfg(l, "alpha") ? "alpha" : "negative_slope";
    return one_input(c, l) && cfg_num(c, l, key, 0.3, &a) && leaky_node(c, l, a);
}

static bool relu_layer(struct ctx *c, struct layer *l)
{
    double slope = 0, threshold = 0;
    if (!one_input(c, l) || !cfg_num(c, l, "negative_slope", 0, &slope) ||
        !cfg_num(c, l, "threshold", 0, &threshold))
        return false;
    if (cfg(l, "max_value") || threshold != 0)
        return tfjs_lfail(c, l, "ReLU with max_value or threshold is not supported");
    return leaky_node(c, l, slope);
}

static bool prelu(struct ctx *c, struct layer *l)
{
    if (!one_input(c, l))
        return false;
    int64_t any[3] = { -1, -1, -1 };
    int i = weight(c, l, "alpha", 3, any);
    if (i < 0)
        return false;
    const int64_t *s = c->man.w[i].shape;
    if (s[0] != 1 || s[1] != 1 || (s[2] != 1 && s[2] != l->channels))
        return tfjs_lfail(c, l, "alpha of shape [%lld, %lld, %lld] is not shared across height and width "
                          "(shared_axes [1, 2]) for %d channels", (long long)s[0], (long long)s[1],
                          (long long)s[2], l->channels);
    if (!add_job(c, l, "weight", J_COPY, i, 0, 1, &s[2]))
        return false;
    node_done(node(c, l, "prelu"));
    return true;
}

/* Add and Concatenate: every input the same size (and, for add, depth). */
static bool merge(struct ctx *c, struct layer *l, bool sum)
{
    if (l->n_in < 2)
        return tfjs_lfail(c, l, "%s needs at least two inputs", l->cls);
    int64_t ch = 0;
    for (int i = 0; i < l->n_in; i++) {
        const struct layer *s = &c->L[l->in[i]];
        if (s->num != c->L[l->in[0]].num || s->den != c->L[l->in[0]].den)
            return tfjs_lfail(c, l, "its inputs '%s' and '%s' differ in size", c->L[l->in[0]].name, s->name);
        if (sum && s->channels != c->L[l->in[0]].channels)
            return tfjs_lfail(c, l, "its inputs '%s' (%d channels) and '%s' (%d) differ in depth",
                              c->L[l->in[0]].name, c->L[l->in[0]].channels, s->name, s->channels);
        ch += s->channels;
    }
    if (ch > MAX_CHANNELS)
        return tfjs_lfail(c, l, "more than %d channels", MAX_CHANNELS);
    inherit(c, l);
    l->channels = sum ? l->channels : (int)ch;
    node_done(node(c, l, sum ? "add" : "concat"));
    return true;
}

static bool add_layer(struct ctx *c, struct layer *l)
{
    return merge(c, l, true);
}

static bool concat(struct ctx *c, struct layer *l)
{
    int axis = 0;
    if (!cfg_int(c, l, "axis", -1, 3, -1, &axis))
        return false;
    if (axis != -1 && axis != 3)
        return tfjs_lfail(c, l, "concatenation along axis %d is not supported (channels: -1 or 3)", axis);
    return merge(c, l, false);
}

/* UpscalerJS' RRDN residual scaling: x * beta (0.2 unless configured). */
static bool multiply_beta(struct ctx *c, struct layer *l)
{
    double beta = 0;
    if (!one_input(c, l) || !cfg_num(c, l, "beta", 0.2, &beta))
        return false;
    json_object *n = node(c, l, "scale");
    put_num(c, n, "value", beta);
    node_done(n);
    return true;
}

static bool upsampling(struct ctx *c, struct layer *l)
{
    int f[2] = { 0, 0 };
    const char *interp = NULL;
    if (!one_input(c, l) || !cfg_pair(c, l, "size", 1, MAX_FACTOR, 2, f) || !channels_last(c, l) ||
        !(interp = cfg_str(c, l, "interpolation", "nearest")))
        return false;
    if (strcmp(interp, "nearest"))
        return tfjs_lfail(c, l, "%.32s interpolation is not supported (nearest)", interp);
    if (f[0] != f[1])
        return tfjs_lfail(c, l, "size must be the same on both axes");
    json_object *n = node(c, l, "upsample");
    put_int(c, n, "factor", f[0]);
    node_done(n);
    return rescale(c, l, f[0], 1);
}

/* The factor of a PixelShuffle<N>x class name, 0 when it is not one. */
static int shuffle_factor(const char *cls)
{
    const char *p = cls + strlen("PixelShuffle");
    if (strncmp(cls, "PixelShuffle", strlen("PixelShuffle")) || !isdigit((unsigned char)*p))
        return 0;
    int f = 0;
    while (isdigit((unsigned char)*p) && f <= MAX_FACTOR)
        f = f * 10 + (*p++ - '0');
    return strcmp(p, "x") || f < 1 || f > MAX_FACTOR ? 0 : f;
}

/* UpscalerJS' PixelShuffle<N>x layers: tf.depthToSpace(x, N, 'NHWC'). */
static bool pixel_shuffle(struct ctx *c, struct layer *l)
{
    int named = shuffle_factor(l->cls), f = 0;
    if (!one_input(c, l) || !cfg_int(c, l, "scale", 1, MAX_FACTOR, named, &f))
        return false;
    if (f != named)
        return tfjs_lfail(c, l, "its scale %d contradicts its class %s", f, l->cls);
    if (l->channels % (f * f))
        return tfjs_lfail(c, l, "%d channels do not shuffle by %d", l->channels, f);
    json_object *n = node(c, l, "depth_to_space");
    put_int(c, n, "factor", f);
    tfjs_put_str(c, n, "order", "tf");
    node_done(n);
    l->channels /= f * f;
    return rescale(c, l, f, 1);
}

static bool batchnorm(struct ctx *c, struct layer *l)
{
    json_object *ax = cfg(l, "axis");
    json_object *a = json_object_is_type(ax, json_type_array) && json_object_array_length(ax) == 1
                         ? json_object_array_get_idx(ax, 0) : ax;
    int64_t axis = !ax ? -1 : json_object_is_type(a, json_type_int) ? json_object_get_int64(a) : 0;
    double eps = 0;
    bool center = true, scale = true;
    if (!one_input(c, l) || !cfg_num(c, l, "epsilon", 1e-3, &eps) || !cfg_bool(c, l, "center", true, &center) ||
        !cfg_bool(c, l, "scale", true, &scale))
        return false;
    if (axis != -1 && axis != 3)
        return tfjs_lfail(c, l, "normalization must be over the channels (axis -1 or 3)");
    int64_t cs[1] = { l->channels };
    static const char *const from[4] = { "gamma", "beta", "moving_mean", "moving_variance" };
    static const char *const to[4] = { "weight", "bias", "running_mean", "running_var" };
    for (int i = 0; i < 4; i++) {
        if ((i == 0 && !scale) || (i == 1 && !center)) { /* Keras stores none: gamma 1, beta 0 */
            if (!add_job(c, l, to[i], J_FILL, -1, i == 0 ? 1.0f : 0.0f, 1, cs))
                return false;
            continue;
        }
        int w = weight(c, l, from[i], 1, cs);
        if (w < 0 || !add_job(c, l, to[i], J_COPY, w, 0, 1, cs))
            return false;
    }
    json_object *n = node(c, l, "batchnorm");
    put_num(c, n, "eps", eps);
    node_done(n);
    return true;
}

/* By class name; PixelShuffle<N>x names carry their factor, so they are
 * matched by pattern rather than listed. */
bool tfjs_convert_layer(struct ctx *c, struct layer *l)
{
    static const struct {
        const char *cls;
        bool (*fn)(struct ctx *, struct layer *);
    } kinds[] = {
        { "Conv2D", conv2d }, { "Conv2DTranspose", convt2d }, { "Activation", activation_layer },
        { "LeakyReLU", leaky_relu }, { "ReLU", relu_layer }, { "PReLU", prelu },
        { "Concatenate", concat }, { "Add", add_layer }, { "MultiplyBeta", multiply_beta },
        { "UpSampling2D", upsampling }, { "BatchNormalization", batchnorm },
    };
    if (l == c->input)
        return input_layer(c, l);
    if (!strcmp(l->cls, "InputLayer"))
        return tfjs_lfail(c, l, "a second input: only models with one input are supported");
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(l->cls, kinds[i].cls))
            return kinds[i].fn(c, l);
    if (shuffle_factor(l->cls))
        return pixel_shuffle(c, l);
    return tfjs_lfail(c, l, "unsupported layer type %.64s", l->cls);
}
