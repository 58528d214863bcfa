/* tfjs.c: TF.js layers-models as graph models (see tfjs.h).
 *
 * The layers are read into an array, wired by their inbound_nodes, checked
 * to reach the output without cycles or sharing, and sorted (Kahn's
 * algorithm, earliest listed first, so the node list follows the file).
 * Each layer then becomes a graph node (or, for a linear activation, an
 * alias of its input) while channel counts and the spatial scale are
 * carried along, so a weight whose shape disagrees with its layer is caught
 * before any shard is read. The tensors are produced last, one manifest
 * group at a time. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "tfjs.h"
#include "tfjs_weights.h"

#define MAX_LAYERS 100000
#define MAX_INBOUND 4096     /* inputs of one layer */
#define MAX_CHANNELS 65536
#define MAX_KERNEL 63
#define MAX_STRIDE 16
#define MAX_DILATION 64
#define MAX_FACTOR 16        /* upsampling, pixel shuffle */
#define MAX_SCALE 16         /* docs/GRAPH.md */
#define MAX_RATIO (1 << 20)  /* a side's ratio to the input's, while carried */
#define JSON_DEPTH 64
#define TENSOR_NAME (TFJS_MAX_NAME + 32) /* NAME + "/moving_variance" */

/* ---- State ------------------------------------------------------------ */

struct layer {
    const char *name, *cls;
    json_object *cfg;
    int *in;            /* producers, in the order the layer takes them */
    int n_in;
    bool reached;       /* the output depends on it */
    const char *out;    /* the graph name of its result: its own, or its input's */
    int channels;
    int64_t num, den;   /* its side over the input's side */
};

/* One tensor of the result: a manifest weight, rearranged, or a constant. */
enum job_kind { J_COPY, J_KERNEL, J_FILL };

struct job {
    char name[TENSOR_NAME];
    enum job_kind kind;
    int weight;         /* manifest index; -1 for J_FILL */
    float fill;
    int ndim;
    int64_t shape[4];
};

struct ctx {
    struct layer *L;
    int n;
    struct layer **sorted; /* L by name */
    int *order;            /* the reached layers, dependencies first */
    int n_order;
    struct layer *input, *output;
    struct tfjs_manifest man;
    struct job *jobs;
    int n_jobs, cap_jobs;
    json_object *nodes;
    int n_nodes;
    bool oom;
    char *err;
    size_t errlen;
};

struct tm_tfjs_block {
    struct tm_tfjs_block *next;
    max_align_t data[];
};

/* ---- Messages and small helpers --------------------------------------- */

/* Messages quote names from the file: control characters become '?' so
 * that a message stays one line. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

__attribute__((format(printf, 2, 3)))
static bool cfail(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    one_line(c->err);
    return false;
}

static bool oom(struct ctx *c)
{
    c->oom = true;
    return cfail(c, "out of memory");
}

/* "layer 'NAME': " + message. */
__attribute__((format(printf, 3, 4)))
static bool lfail(struct ctx *c, const struct layer *l, const char *fmt, ...)
{
    int k = snprintf(c->err, c->errlen, "layer '%s': ", l->name);
    va_list ap;
    va_start(ap, fmt);
    if (k >= 0 && (size_t)k < c->errlen)
        vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    one_line(c->err);
    return false;
}

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
        return lfail(c, l, "the image size changes too much on the way here");
    return true;
}

/* Adds v to object o under key (or to array o when key is NULL); an
 * allocation failure is remembered and reported at the end. */
static void jput(struct ctx *c, json_object *o, const char *key, json_object *v)
{
    int rc = !o || !v ? -1 : key ? json_object_object_add(o, key, v) : json_object_array_add(o, v);
    if (rc) {
        json_object_put(v);
        c->oom = true;
    }
}

static void put_int(struct ctx *c, json_object *o, const char *key, int v)
{
    jput(c, o, key, json_object_new_int(v));
}

/* Numbers are written with 9 significant digits, what a float needs, so
 * 0.2 stays "0.2". */
static void put_num(struct ctx *c, json_object *o, const char *key, double v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", v);
    jput(c, o, key, json_object_new_double_s(v, buf));
}

static void put_str(struct ctx *c, json_object *o, const char *key, const char *v)
{
    jput(c, o, key, json_object_new_string(v));
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
        return lfail(c, l, "no '%s' in its config", key);
    if (x < lo || x > hi)
        return lfail(c, l, "'%s' must be a whole number %d..%d", key, lo, hi);
    *out = (int)x;
    return true;
}

/* An int or a list of two (Keras writes [kh, kw]), each lo..hi. */
static bool cfg_pair(struct ctx *c, struct layer *l, const char *key, int lo, int hi, int def, int out[2])
{
    json_object *v = cfg(l, key);
    if (!v && def < lo)
        return lfail(c, l, "no '%s' in its config", key);
    for (int i = 0; i < 2; i++) {
        json_object *e = json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, (size_t)i) : v;
        int64_t x = !v ? def : json_object_is_type(e, json_type_int) ? json_object_get_int64(e) : INT64_MIN;
        if (x < lo || x > hi || (json_object_is_type(v, json_type_array) && json_object_array_length(v) != 2))
            return lfail(c, l, "'%s' must be one or two whole numbers %d..%d", key, lo, hi);
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
        return lfail(c, l, "'%s' must be a finite number", key);
    return true;
}

static bool cfg_bool(struct ctx *c, struct layer *l, const char *key, bool def, bool *out)
{
    json_object *v = cfg(l, key);
    if (v && !json_object_is_type(v, json_type_boolean))
        return lfail(c, l, "'%s' must be true or false", key);
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
        lfail(c, l, "'%s' must be a string", key);
        return NULL;
    }
    return json_object_get_string(v);
}

/* data_format channels_last (the only layout TF.js runs). */
static bool channels_last(struct ctx *c, struct layer *l)
{
    const char *f = cfg_str(c, l, "data_format", "channels_last");
    if (f && strcmp(f, "channels_last"))
        return lfail(c, l, "data_format %.32s is not supported (channels_last)", f);
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
    return lfail(c, l, "activation '%.32s' is not supported (linear, relu, tanh)", a);
}

/* ---- Weights and tensors ---------------------------------------------- */

/* The manifest weight NAME/what; its shape must be want (-1: any size). */
static int weight(struct ctx *c, struct layer *l, const char *what, int ndim, const int64_t *want)
{
    char name[TENSOR_NAME], b1[160], b2[160];
    snprintf(name, sizeof name, "%s/%s", l->name, what);
    int i = tfjs_manifest_find(&c->man, name);
    if (i < 0) {
        lfail(c, l, "weight '%s' is not in the weightsManifest", name);
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
        lfail(c, l, "weight '%s' has shape [%s] in the weightsManifest, the layer needs [%s]", name,
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
            return oom(c);
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
    put_str(c, n, "name", l->name);
    put_str(c, n, "op", op);
    for (int i = 0; i < l->n_in; i++)
        put_str(c, ins, NULL, c->L[l->in[i]].out);
    jput(c, n, "inputs", ins);
    json_object_get(n); /* kept alive for the caller's attributes even if the append failed */
    jput(c, c->nodes, NULL, n);
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
        return lfail(c, l, "%s takes one input, not %d", l->cls, l->n_in);
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
        return lfail(c, l, "the input must be an image [batch, height, width, channels] with 1..4 channels "
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
        return lfail(c, l, "padding '%.32s' is not supported (valid, same)", pad);
    if (k->s[0] != k->s[1] || k->d[0] != k->d[1])
        return lfail(c, l, "strides and dilation_rate must be the same on both axes");
    k->same = !strcmp(pad, "same");
    return true;
}

static void conv_attrs(struct ctx *c, json_object *n, const struct conv_cfg *k, int pad)
{
    json_object *kern = json_object_new_array();
    put_int(c, kern, NULL, k->k[0]);
    put_int(c, kern, NULL, k->k[1]);
    jput(c, n, "kernel", kern);
    put_int(c, n, "pad", pad);
    if (k->s[0] != 1)
        put_int(c, n, "stride", k->s[0]);
    if (!k->bias)
        jput(c, n, "bias", json_object_new_boolean(0));
    if (strcmp(k->act, "none"))
        put_str(c, n, "act", k->act);
}

static bool conv2d(struct ctx *c, struct layer *l)
{
    struct conv_cfg k = { 0 };
    int groups = 1;
    if (!conv_common(c, l, &k) || !cfg_int(c, l, "groups", 1, MAX_CHANNELS, 1, &groups))
        return false;
    if (groups != 1)
        return lfail(c, l, "grouped convolutions (groups %d) are not supported", groups);
    int pad = k.same ? same_pad(k.k[0], k.k[1], k.s[0], k.d[0]) : 0;
    if (pad < 0)
        return lfail(c, l, "padding 'same' with a %dx%d kernel and stride %d pads unevenly, which a graph model "
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
        return lfail(c, l, "output_padding is not supported");
    if (k.d[0] != 1 || k.k[0] != k.k[1])
        return lfail(c, l, "only square kernels without dilation are supported in Conv2DTranspose");
    int kk = k.k[0], s = k.s[0], total = kk > s ? kk - s : 0, pad = k.same ? total / 2 : 0;
    int out_pad = kk < s ? s - kk : 0;
    if (k.same && (total & 1))
        return lfail(c, l, "padding 'same' with kernel %d and stride %d crops unevenly, which a graph model "
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
    put_str(c, n, "act", act);
    node_done(n);
    return true;
}

static bool leaky_node(struct ctx *c, struct layer *l, double slope)
{
    json_object *n = node(c, l, "act");
    put_str(c, n, "act", slope == 0 ? "relu" : "lrelu");
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
        return lfail(c, l, "ReLU with max_value or threshold is not supported");
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
        return lfail(c, l, "alpha of shape [%lld, %lld, %lld] is not shared across height and width "
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
        return lfail(c, l, "%s needs at least two inputs", l->cls);
    int64_t ch = 0;
    for (int i = 0; i < l->n_in; i++) {
        const struct layer *s = &c->L[l->in[i]];
        if (s->num != c->L[l->in[0]].num || s->den != c->L[l->in[0]].den)
            return lfail(c, l, "its inputs '%s' and '%s' differ in size", c->L[l->in[0]].name, s->name);
        if (sum && s->channels != c->L[l->in[0]].channels)
            return lfail(c, l, "its inputs '%s' (%d channels) and '%s' (%d) differ in depth",
                         c->L[l->in[0]].name, c->L[l->in[0]].channels, s->name, s->channels);
        ch += s->channels;
    }
    if (ch > MAX_CHANNELS)
        return lfail(c, l, "more than %d channels", MAX_CHANNELS);
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
        return lfail(c, l, "concatenation along axis %d is not supported (channels: -1 or 3)", axis);
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
        return lfail(c, l, "%.32s interpolation is not supported (nearest)", interp);
    if (f[0] != f[1])
        return lfail(c, l, "size must be the same on both axes");
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
        return lfail(c, l, "its scale %d contradicts its class %s", f, l->cls);
    if (l->channels % (f * f))
        return lfail(c, l, "%d channels do not shuffle by %d", l->channels, f);
    json_object *n = node(c, l, "depth_to_space");
    put_int(c, n, "factor", f);
    put_str(c, n, "order", "tf");
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
        return lfail(c, l, "normalization must be over the channels (axis -1 or 3)");
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

static bool convert_layer(struct ctx *c, struct layer *l)
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
        return lfail(c, l, "a second input: only models with one input are supported");
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(l->cls, kinds[i].cls))
            return kinds[i].fn(c, l);
    if (shuffle_factor(l->cls))
        return pixel_shuffle(c, l);
    return lfail(c, l, "unsupported layer type %.64s", l->cls);
}

/* ---- Topology --------------------------------------------------------- */

static int layer_by_name(const void *a, const void *b)
{
    return strcmp((*(struct layer *const *)a)->name, (*(struct layer *const *)b)->name);
}

static struct layer *find_layer(const struct ctx *c, const char *name)
{
    struct layer key = { .name = name }, *kp = &key;
    struct layer **hit = c->n ? bsearch(&kp, c->sorted, (size_t)c->n, sizeof *c->sorted, layer_by_name) : NULL;
    return hit ? *hit : NULL;
}

/* A JSON string of 1..TFJS_MAX_NAME bytes without NUL, or NULL. */
static const char *name_of(json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    size_t n = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    return n && n <= TFJS_MAX_NAME && strlen(s) == n ? s : NULL;
}

static bool read_layer(struct ctx *c, json_object *o, int i)
{
    struct layer *l = &c->L[i];
    json_object *v = NULL, *conf = NULL;
    json_object_object_get_ex(o, "config", &conf);
    if (!json_object_object_get_ex(o, "name", &v) && json_object_is_type(conf, json_type_object))
        json_object_object_get_ex(conf, "name", &v);
    if (!json_object_is_type(o, json_type_object) || !(l->name = name_of(v)))
        return cfail(c, "layer %d has no name, or one longer than %d bytes", i + 1, TFJS_MAX_NAME);
    if (!json_object_object_get_ex(o, "class_name", &v) || !(l->cls = name_of(v)))
        return lfail(c, l, "no class_name");
    if (!json_object_is_type(conf, json_type_object))
        return lfail(c, l, "no config");
    l->cfg = conf;
    return true;
}

static bool read_layers(struct ctx *c, json_object *layers)
{
    if (!json_object_is_type(layers, json_type_array) || json_object_array_length(layers) > MAX_LAYERS)
        return cfail(c, "the model's layers are not a list of up to %d", MAX_LAYERS);
    c->n = (int)json_object_array_length(layers);
    c->L = calloc((size_t)c->n + 1, sizeof *c->L);
    c->sorted = calloc((size_t)c->n + 1, sizeof *c->sorted);
    c->order = calloc((size_t)c->n + 1, sizeof *c->order);
    if (!c->L || !c->sorted || !c->order)
        return oom(c);
    for (int i = 0; i < c->n; i++) {
        if (!read_layer(c, json_object_array_get_idx(layers, (size_t)i), i))
            return false;
        c->sorted[i] = &c->L[i];
    }
    qsort(c->sorted, (size_t)c->n, sizeof *c->sorted, layer_by_name);
    for (int i = 1; i < c->n; i++)
        if (!strcmp(c->sorted[i - 1]->name, c->sorted[i]->name))
            return cfail(c, "two layers are named '%s'", c->sorted[i]->name);
    return true;
}

/* [name, node_index, tensor_index(, kwargs)] -> the producing layer. */
static int inbound_ref(struct ctx *c, struct layer *l, json_object *ref)
{
    size_t n = json_object_is_type(ref, json_type_array) ? json_object_array_length(ref) : 0;
    const char *name = n ? name_of(json_object_array_get_idx(ref, 0)) : NULL;
    json_object *ni = n >= 3 ? json_object_array_get_idx(ref, 1) : NULL,
                *ti = n >= 3 ? json_object_array_get_idx(ref, 2) : NULL;
    if (!name || (n != 3 && n != 4) || !json_object_is_type(ni, json_type_int) ||
        !json_object_is_type(ti, json_type_int)) {
        lfail(c, l, "an inbound node is not [layer, node, tensor, kwargs]");
        return -1;
    }
    struct layer *src = find_layer(c, name);
    if (!src) {
        lfail(c, l, "its input '%s' is not a layer of the model", name);
        return -1;
    }
    if (json_object_get_int64(ni) != 0 || json_object_get_int64(ti) != 0) {
        lfail(c, l, "it reads output %lld of call %lld of '%s': shared layers and layers with several "
              "outputs are not supported", (long long)json_object_get_int64(ti),
              (long long)json_object_get_int64(ni), name);
        return -1;
    }
    return (int)(src - c->L);
}

static bool wire_layer(struct ctx *c, struct layer *l, json_object *o)
{
    json_object *nodes;
    if (!json_object_object_get_ex(o, "inbound_nodes", &nodes) || !json_object_is_type(nodes, json_type_array))
        return lfail(c, l, "no inbound_nodes list");
    size_t calls = json_object_array_length(nodes);
    if (calls > 1)
        return lfail(c, l, "the layer is shared (called %zu times): shared layers are not supported", calls);
    if (!calls)
        return true;
    json_object *refs = json_object_array_get_idx(nodes, 0);
    if (!json_object_is_type(refs, json_type_array))
        return lfail(c, l, "its inbound node is not a list of inputs (a Keras 3 file?)");
    size_t n = json_object_array_length(refs);
    if (!n || n > MAX_INBOUND)
        return lfail(c, l, "it has %zu inputs (1..%d)", n, MAX_INBOUND);
    if (!(l->in = calloc(n, sizeof *l->in)))
        return oom(c);
    for (size_t i = 0; i < n; i++)
        if ((l->in[l->n_in++] = inbound_ref(c, l, json_object_array_get_idx(refs, i))) < 0)
            return false;
    return true;
}

/* input_layers / output_layers: exactly one [name, 0, 0]. */
static struct layer *end_layer(struct ctx *c, json_object *config, const char *key, const char *what)
{
    json_object *v = NULL;
    json_object_object_get_ex(config, key, &v);
    size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
    json_object *ref = n == 1 ? json_object_array_get_idx(v, 0) : NULL;
    if (n != 1) {
        cfail(c, "the model has %zu %ss: only models with one input and one output are supported", n, what);
        return NULL;
    }
    const char *name = json_object_is_type(ref, json_type_array) ? name_of(json_object_array_get_idx(ref, 0)) : NULL;
    struct layer *l = name ? find_layer(c, name) : NULL;
    if (!l)
        cfail(c, "the model's %s '%s' is not one of its layers", what, name ? name : "?");
    return l;
}

/* Marks what the output depends on; everything else is an error, as is an
 * output that does not depend on the input. */
static bool reach(struct ctx *c)
{
    int *stack = c->order, top = 0; /* borrowed: order is filled later */
    c->output->reached = true;
    stack[top++] = (int)(c->output - c->L);
    while (top) {
        struct layer *l = &c->L[stack[--top]];
        for (int i = 0; i < l->n_in; i++) {
            struct layer *s = &c->L[l->in[i]];
            if (!s->reached) {
                s->reached = true;
                stack[top++] = (int)(s - c->L);
            }
        }
    }
    for (int i = 0; i < c->n; i++)
        if (!c->L[i].reached)
            return lfail(c, &c->L[i], "the model's output does not depend on it");
    if (!c->input->reached)
        return cfail(c, "the model's output does not depend on its input");
    for (int i = 0; i < c->n; i++)
        if (!c->L[i].n_in && strcmp(c->L[i].cls, "InputLayer"))
            return lfail(c, &c->L[i], "it has no inputs");
    return true;
}

/* A min-heap of layer indices: Kahn's algorithm takes the earliest listed
 * ready layer, so a file already in order keeps its order. */
static void heap_push(int *h, int *n, int v)
{
    int i = (*n)++;
    for (; i && h[(i - 1) / 2] > v; i = (i - 1) / 2)
        h[i] = h[(i - 1) / 2];
    h[i] = v;
}

static int heap_pop(int *h, int *n)
{
    int top = h[0], v = h[--*n], i = 0;
    for (;;) {
        int k = 2 * i + 1;
        if (k >= *n)
            break;
        if (k + 1 < *n && h[k + 1] < h[k])
            k++;
        if (h[k] >= v)
            break;
        h[i] = h[k];
        i = k;
    }
    h[i] = v;
    return top;
}

/* Dependencies first, into c->order; fails on a cycle. */
static bool topo_sort(struct ctx *c)
{
    int *heap = calloc((size_t)c->n + 1, sizeof *heap), *waiting = calloc((size_t)c->n + 1, sizeof *waiting);
    int nh = 0;
    if (!heap || !waiting) {
        free(heap);
        free(waiting);
        return oom(c);
    }
    /* Kahn runs on the reversed edges: a layer is ready when all its
     * inputs are placed. waiting[i] counts inputs not yet placed. */
    for (int i = 0; i < c->n; i++)
        if (!(waiting[i] = c->L[i].n_in))
            heap_push(heap, &nh, i);
    /* Consumers of each layer, as offsets into one array. */
    int *start = calloc((size_t)c->n + 2, sizeof *start), *users = NULL;
    int64_t edges = 0;
    for (int i = 0; i < c->n; i++)
        edges += c->L[i].n_in;
    users = start ? calloc((size_t)edges + 1, sizeof *users) : NULL;
    bool ok = users != NULL;
    for (int i = 0; ok && i < c->n; i++)
        for (int k = 0; k < c->L[i].n_in; k++)
            start[c->L[i].in[k] + 2]++;
    for (int i = 0; ok && i < c->n; i++)
        start[i + 2] += start[i + 1];
    for (int i = 0; ok && i < c->n; i++)
        for (int k = 0; k < c->L[i].n_in; k++)
            users[start[c->L[i].in[k] + 1]++] = i;
    c->n_order = 0;
    while (ok && nh) {
        int i = heap_pop(heap, &nh);
        c->order[c->n_order++] = i;
        for (int u = start[i]; u < start[i + 1]; u++)
            if (!--waiting[users[u]])
                heap_push(heap, &nh, users[u]);
    }
    if (!ok)
        oom(c);
    for (int i = 0; ok && i < c->n; i++)
        if (waiting[i])
            ok = lfail(c, &c->L[i], "its inputs form a cycle");
    free(heap);
    free(waiting);
    free(start);
    free(users);
    return ok;
}

static bool wire(struct ctx *c, json_object *config, json_object *layers)
{
    for (int i = 0; i < c->n; i++)
        if (!wire_layer(c, &c->L[i], json_object_array_get_idx(layers, (size_t)i)))
            return false;
    if (!(c->input = end_layer(c, config, "input_layers", "input")) ||
        !(c->output = end_layer(c, config, "output_layers", "output")))
        return false;
    if (strcmp(c->input->cls, "InputLayer"))
        return lfail(c, c->input, "the model's input is a %s, not an InputLayer", c->input->cls);
    if (c->input->n_in)
        return lfail(c, c->input, "the input layer has inputs");
    if (c->output == c->input)
        return cfail(c, "the model's output is its input: there is nothing to convert");
    return reach(c) && topo_sort(c);
}

/* ---- The model file --------------------------------------------------- */

/* The whole file, NUL-terminated, sized from fstat (a regular file of at
 * most TM_TFJS_MAX_JSON bytes). */
static char *read_text(const char *path, size_t *len, char *err, size_t errlen, tm_status *s)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf = NULL;
    *s = TM_ERR_IO;
    if (!f || fstat(fileno(f), &st)) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        if (f)
            fclose(f);
        return NULL;
    }
    *len = (size_t)st.st_size;
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)TM_TFJS_MAX_JSON) {
        snprintf(err, errlen, "not a file of at most %u MiB: not a model.json", TM_TFJS_MAX_JSON >> 20);
        *s = TM_ERR_FORMAT;
    } else if (!(buf = malloc(*len + 1))) {
        snprintf(err, errlen, "out of memory");
        *s = TM_ERR_NOMEM;
    } else if (fread(buf, 1, *len, f) != *len) {
        snprintf(err, errlen, "cannot read the file");
        free(buf);
        buf = NULL;
    } else {
        buf[*len] = '\0';
        *s = TM_OK;
    }
    fclose(f);
    return buf;
}

static json_object *parse_json(const char *text, size_t len, char *err, size_t errlen)
{
    json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    while (root && used < len && isspace((unsigned char)text[used]))
        used++;
    if (!root || e != json_tokener_success || used != len) {
        snprintf(err, errlen, "not a JSON document (%s at byte %zu)",
                 root && e == json_tokener_success ? "trailing data"
                 : e == json_tokener_continue       ? "it ends too early"
                                                    : json_tokener_error_desc(e), used);
        json_object_put(root);
        root = NULL;
    }
    json_tokener_free(tok);
    return root;
}

static const char *str_at(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

/* The functional model's config ({name, layers, input_layers,
 * output_layers}), after checking this is a layers-model. */
static json_object *model_config(json_object *root, char *err, size_t errlen)
{
    json_object *topo = NULL, *mc = NULL, *conf = NULL;
    const char *format = str_at(root, "format");
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(err, errlen, "not a TF.js model.json (the document is not an object)");
        return NULL;
    }
    json_object_object_get_ex(root, "modelTopology", &topo);
    if ((format && !strcmp(format, "graph-model")) || json_object_object_get_ex(topo, "node", NULL)) {
        snprintf(err, errlen, "a TF.js graph-model (a converted TensorFlow graph) is not supported: only "
                 "layers-models (Keras models saved for TF.js) can be converted");
        return NULL;
    }
    if (format && strcmp(format, "layers-model")) {
        snprintf(err, errlen, "format '%.40s' is not supported (layers-model)", format);
        return NULL;
    }
    /* Files of TF.js before 1.0 keep the model config at the top. */
    if (!json_object_object_get_ex(topo, "model_config", &mc))
        mc = topo;
    const char *cls = str_at(mc, "class_name");
    if (!cls || !json_object_object_get_ex(mc, "config", &conf)) {
        snprintf(err, errlen, "not a TF.js layers-model (no modelTopology.model_config)");
        return NULL;
    }
    if (strcmp(cls, "Functional") && strcmp(cls, "Model")) {
        snprintf(err, errlen, "a %.40s model is not supported: only functional models (Functional, Model) "
                 "can be converted", cls);
        return NULL;
    }
    if (!json_object_is_type(conf, json_type_object)) {
        snprintf(err, errlen, "the model's config is not an object");
        return NULL;
    }
    return conf;
}

/* ---- The result ------------------------------------------------------- */

static void *keep(struct tm_tfjs_model *m, size_t n)
{
    struct tm_tfjs_block *b = malloc(sizeof *b + (n ? n : 1));
    if (!b)
        return NULL;
    b->next = m->blocks;
    m->blocks = b;
    return b->data;
}

static char *keep_str(struct tm_tfjs_model *m, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = keep(m, n);
    return p ? memcpy(p, s, n) : NULL;
}

/* Writes the float value v as element i of tensor t's data. */
static void store(void *data, bool half, uint64_t i, float v)
{
    if (half)
        ((uint16_t *)data)[i] = tm_float_to_half(v);
    else
        ((float *)data)[i] = v;
}

static void run_job(const struct job *j, const struct tfjs_wspec *w, const uint8_t *bytes, void *data,
                    bool half)
{
    uint64_t n = 1;
    for (int d = 0; d < j->ndim; d++)
        n *= (uint64_t)j->shape[d];
    if (j->kind == J_FILL) {
        for (uint64_t i = 0; i < n; i++)
            store(data, half, i, j->fill);
        return;
    }
    if (j->kind == J_COPY) {
        for (uint64_t i = 0; i < n; i++)
            store(data, half, i, tfjs_value(w, bytes, i));
        return;
    }
    /* [kh, kw, a, b] -> [b, a, kh, kw] */
    uint64_t kh = (uint64_t)w->shape[0], kw = (uint64_t)w->shape[1], a = (uint64_t)w->shape[2],
             b = (uint64_t)w->shape[3], i = 0;
    for (uint64_t y = 0; y < kh; y++)
        for (uint64_t x = 0; x < kw; x++)
            for (uint64_t p = 0; p < a; p++)
                for (uint64_t q = 0; q < b; q++)
                    store(data, half, ((q * a + p) * kh + y) * kw + x, tfjs_value(w, bytes, i++));
}

/* Allocates the result's tensors, then fills them group by group, so only
 * one group's shards are in memory at a time. */
static tm_status make_tensors(struct ctx *c, const char *dir, bool half, struct tm_tfjs_model *m)
{
    m->tensors = keep(m, (size_t)c->n_jobs * sizeof *m->tensors + 1);
    if (!m->tensors)
        return TM_ERR_NOMEM;
    for (int k = 0; k < c->n_jobs; k++) {
        const struct job *j = &c->jobs[k];
        uint64_t n = 1;
        for (int d = 0; d < j->ndim; d++)
            n *= (uint64_t)j->shape[d];
        int64_t *shape = keep(m, sizeof j->shape);
        char *name = keep_str(m, j->name);
        void *data = keep(m, (size_t)n * (half ? 2 : 4));
        if (!shape || !name || !data)
            return TM_ERR_NOMEM;
        memcpy(shape, j->shape, sizeof j->shape);
        m->tensors[k] = (struct tm_stw_tensor){ .name = name, .dtype = half ? "F16" : "F32", .ndim = j->ndim,
                                                .shape = shape, .data = data, .nbytes = (size_t)n * (half ? 2 : 4) };
        m->bytes += m->tensors[k].nbytes;
        if (j->kind == J_FILL)
            run_job(j, NULL, NULL, data, half);
    }
    m->n_tensors = c->n_jobs;
    for (int g = 0; g < c->man.n_groups; g++) {
        uint8_t *bytes;
        tm_status s = tfjs_read_group(&c->man, g, dir, &bytes, c->err, c->errlen);
        if (s)
            return s;
        for (int k = 0; k < c->n_jobs; k++)
            if (c->jobs[k].kind != J_FILL && c->man.w[c->jobs[k].weight].group == g)
                run_job(&c->jobs[k], &c->man.w[c->jobs[k].weight], bytes, (void *)m->tensors[k].data, half);
        free(bytes);
    }
    return TM_OK;
}

/* The UpscalerJS ESRGAN packages, by their layer names (idealo's ISR
 * layouts), and the pixel range their model definitions give. */
static const char *recognize(const struct ctx *c, const char **range, const char **short_name)
{
    static const char *const rdn[] = { "F_m1", "F_0", "FDF", "GFF_1", "UPN1", "SR" };
    static const char *const rrdn[] = { "Pre_blocks_conv", "post_blocks_conv", "GRL", "PreShuffle", "SR" };
    bool is_rdn = true, is_rrdn = false;
    for (size_t i = 0; i < sizeof rdn / sizeof rdn[0]; i++)
        is_rdn = is_rdn && find_layer(c, rdn[i]);
    for (int i = 0; i < c->n && !is_rrdn; i++)
        is_rrdn = !strcmp(c->L[i].cls, "MultiplyBeta");
    for (size_t i = 0; i < sizeof rrdn / sizeof rrdn[0]; i++)
        is_rrdn = is_rrdn && find_layer(c, rrdn[i]);
    if (is_rdn == is_rrdn || strcmp(c->output->name, "SR"))
        return NULL;
    *range = is_rdn ? "0,255" : "0,1";
    *short_name = is_rdn ? "esrgan-rdn" : "esrgan-rrdn";
    return is_rdn ? "UpscalerJS ESRGAN RDN (esrgan-slim, esrgan-medium)" : "UpscalerJS ESRGAN RRDN (esrgan-thick)";
}

/* The last three components of path, for the "source" metadata: enough to
 * tell esrgan-thick/models/x4/model.json from another model.json. */
static const char *path_tail(const char *path)
{
    const char *p = path + strlen(path);
    for (int slashes = 0; p > path; p--)
        if (p[-1] == '/' && ++slashes == 3)
            break;
    return p;
}

static tm_status make_meta(struct ctx *c, json_object *root, json_object *config, const char *path,
                           const struct tm_tfjs_options *opt, struct tm_tfjs_model *m)
{
    char num[3][16], source[1024], name[128];
    const char *short_name = NULL, *range = NULL;
    m->family = recognize(c, &range, &short_name);
    m->range_from_family = !opt->range;
    m->range = opt->range ? opt->range : range;
    if (!m->range) {
        snprintf(c->err, c->errlen, "the model's pixel range is not known: give it with --range LO,HI "
                 "(e.g. 0,1 or 0,255)");
        return TM_ERR_INVALID;
    }
    snprintf(num[0], sizeof num[0], "%d", m->input_nc);
    snprintf(num[1], sizeof num[1], "%d", m->output_nc);
    snprintf(num[2], sizeof num[2], "%d", m->scale);
    const char *gen = str_at(root, "generatedBy"), *conv = str_at(root, "convertedBy");
    snprintf(source, sizeof source, "transmute convert from %.300s (TF.js layers-model%s%.200s%s%.200s)",
             path_tail(path), gen ? ", generated by " : "", gen ? gen : "", conv ? ", converted by " : "",
             conv ? conv : "");
    if (short_name)
        snprintf(name, sizeof name, "%s-x%d", short_name, m->scale);
    else
        snprintf(name, sizeof name, "%.120s", str_at(config, "name") ? str_at(config, "name") : "tfjs-model");
    json_object *graph = json_object_new_object();
    put_str(c, graph, "input", c->input->name);
    put_str(c, graph, "output", c->output->out);
    jput(c, graph, "nodes", json_object_get(c->nodes));
    const char *gtext = graph ? json_object_to_json_string_ext(graph, JSON_C_TO_STRING_PLAIN |
                                                                          JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
    const char *kv[][2] = {
        { "arch", "graph" }, { "input_nc", num[0] }, { "output_nc", num[1] }, { "scale", num[2] },
        { "range", m->range }, { "graph", gtext }, { "name", opt->name ? opt->name : name },
        { "source", source }, { "description", opt->description }, { "license", opt->license },
    };
    m->meta = keep(m, sizeof kv / sizeof kv[0] * sizeof *m->meta);
    for (size_t i = 0; m->meta && gtext && i < sizeof kv / sizeof kv[0]; i++) {
        if (!kv[i][1])
            continue;
        const char *k = keep_str(m, kv[i][0]), *v = keep_str(m, kv[i][1]);
        if (!k || !v)
            c->oom = true;
        m->meta[m->n_meta++] = (struct tm_stw_meta){ k, v };
    }
    json_object_put(graph);
    return c->oom || !m->meta || !gtext ? TM_ERR_NOMEM : TM_OK;
}

/* Converts every layer in order, then checks what the manifest holds
 * beyond what the layers took, and the result's channels and scale. */
static tm_status convert_all(struct ctx *c, struct tm_tfjs_model *m)
{
    if (!(c->nodes = json_object_new_array()))
        return TM_ERR_NOMEM;
    for (int i = 0; i < c->n_order; i++)
        if (!convert_layer(c, &c->L[c->order[i]]))
            return c->oom ? TM_ERR_NOMEM : TM_ERR_UNSUPPORTED;
    for (int i = 0; i < c->man.n; i++)
        if (!c->man.w[i].used) {
            cfail(c, "weight '%s' in the weightsManifest belongs to no layer", c->man.w[i].name);
            return TM_ERR_FORMAT;
        }
    const struct layer *out = c->output;
    if (out->channels < 1 || out->channels > 4) {
        lfail(c, out, "the output has %d channels: an image has 1..4", out->channels);
        return TM_ERR_UNSUPPORTED;
    }
    if (out->den != 1 || out->num > MAX_SCALE) {
        cfail(c, "the output is %lld/%lld times the input's size: graph models scale by a whole number 1..%d",
              (long long)out->num, (long long)out->den, MAX_SCALE);
        return TM_ERR_UNSUPPORTED;
    }
    m->input_nc = c->input->channels;
    m->output_nc = out->channels;
    m->scale = (int)out->num;
    m->n_layers = c->n;
    m->n_nodes = c->n_nodes;
    return c->oom ? TM_ERR_NOMEM : TM_OK;
}

static void ctx_free(struct ctx *c)
{
    for (int i = 0; c->L && i < c->n; i++)
        free(c->L[i].in);
    free(c->L);
    free(c->sorted);
    free(c->order);
    free(c->jobs);
    json_object_put(c->nodes);
    tfjs_manifest_free(&c->man);
}

/* The folder of path, "" for the current one. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup("");
}

static tm_status load(const char *path, json_object *root, const struct tm_tfjs_options *opt,
                      struct tm_tfjs_model *m, struct ctx *c)
{
    json_object *config = model_config(root, c->err, c->errlen), *manifest = NULL, *layers = NULL;
    if (!config)
        return TM_ERR_FORMAT;
    if (!json_object_object_get_ex(root, "weightsManifest", &manifest)) {
        cfail(c, "no weightsManifest: the model.json lists no weights");
        return TM_ERR_FORMAT;
    }
    json_object_object_get_ex(config, "layers", &layers);
    tm_status s = tfjs_manifest_parse(manifest, &c->man, c->err, c->errlen);
    if (s)
        return s;
    if (!read_layers(c, layers) || !wire(c, config, layers))
        return c->oom ? TM_ERR_NOMEM : TM_ERR_FORMAT;
    if ((s = convert_all(c, m)) || (s = make_meta(c, root, config, path, opt, m)))
        return s;
    char *dir = dir_of(path);
    s = dir ? make_tensors(c, dir, opt->half, m) : TM_ERR_NOMEM;
    free(dir);
    return s;
}

tm_status tm_tfjs_load(const char *path, const struct tm_tfjs_options *opt, struct tm_tfjs_model *m,
                       char *err, size_t errlen)
{
    *m = (struct tm_tfjs_model){ 0 };
    size_t len = 0;
    tm_status s;
    char *text = read_text(path, &len, err, errlen, &s);
    if (!text)
        return s;
    json_object *root = parse_json(text, len, err, errlen);
    free(text);
    if (!root)
        return TM_ERR_FORMAT;
    struct ctx c = { .err = err, .errlen = errlen };
    s = load(path, root, opt, m, &c);
    if (s == TM_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    ctx_free(&c);
    json_object_put(root);
    if (s)
        tm_tfjs_free(m);
    return s;
}

void tm_tfjs_free(struct tm_tfjs_model *m)
{
    while (m->blocks) {
        struct tm_tfjs_block *b = m->blocks;
        m->blocks = b->next;
        free(b);
    }
    *m = (struct tm_tfjs_model){ 0 };
}

bool tm_tfjs_is_json(const char *path)
{
    size_t n = strlen(path);
    if (n >= 5 && !strcasecmp(path + n - 5, ".json"))
        return true;
    FILE *f = fopen(path, "rb");
    int ch = EOF;
    while (f && (ch = fgetc(f)) != EOF && isspace(ch))
        ;
    if (f)
        fclose(f);
    return ch == '{';
}
