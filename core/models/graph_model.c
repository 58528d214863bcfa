/* graph_model.c: arch=graph, a network given as a node list in the file's
 * metadata (docs/GRAPH.md), built into the same op graph as the fixed
 * architectures. Every attribute is checked; an unknown op or key, a value
 * of the wrong type or range, or a dangling input is an error naming the
 * node. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "models.h"

#define MAX_NODES 100000

/* The value id of each name seen so far, and how often it is read; index
 * maps a name to its entry (a hash table: long graphs load in linear time). */
struct names {
    json_object *index;
    const char **name;
    int *value, *uses;
    int n;
};

struct spec {
    struct tm_build *b;
    struct names nm;
    const char *node;   /* the node being built, for messages */
};

static int failf(struct spec *sp, tm_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(struct spec *sp, tm_status s, const char *fmt, ...)
{
    struct tm_build *b = sp->b;
    if (b->status)
        return -1;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (sp->node)
        snprintf(b->err, sizeof b->err, "graph node '%.80s': %.256s", sp->node, msg);
    else
        snprintf(b->err, sizeof b->err, "graph: %s", msg);
    b->status = s;
    return -1;
}

static int find_name(const struct names *nm, const char *name)
{
    json_object *v;
    return json_object_object_get_ex(nm->index, name, &v) ? json_object_get_int(v) : -1;
}

/* ---- attributes ---------------------------------------------------- */

static int has_only(struct spec *sp, json_object *node, const char *const *allowed)
{
    json_object_object_foreach(node, key, val) {
        (void)val;
        int ok = 0;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(key, allowed[i]);
        if (!ok)
            return failf(sp, TM_ERR_UNSUPPORTED, "unknown attribute '%.40s'", key);
    }
    return 0;
}

/* Integer attribute in lo..hi, dflt when absent (a dflt below lo: required). */
static int attr_int(struct spec *sp, json_object *node, const char *key, int lo, int hi, int dflt,
                    int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(node, key, &v)) {
        if (dflt < lo)
            return failf(sp, TM_ERR_FORMAT, "lacks '%s'", key);
        *out = dflt;
        return 0;
    }
    if (!json_object_is_type(v, json_type_int))
        return failf(sp, TM_ERR_FORMAT, "'%s' is not an integer", key);
    int64_t n = json_object_get_int64(v);
    if (n < lo || n > hi)
        return failf(sp, TM_ERR_UNSUPPORTED, "'%s' = %lld is outside %d..%d", key, (long long)n, lo, hi);
    *out = (int)n;
    return 0;
}

static int attr_num(struct spec *sp, json_object *node, const char *key, double dflt, double *out)
{
    json_object *v;
    *out = dflt;
    if (!json_object_object_get_ex(node, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return failf(sp, TM_ERR_FORMAT, "'%s' is not a number", key);
    *out = json_object_get_double(v);
    if (!isfinite(*out))
        return failf(sp, TM_ERR_FORMAT, "'%s' is not finite", key);
    /* stored as float: far beyond any real slope or scale, yet no overflow */
    if (fabs(*out) > 1e6)
        return failf(sp, TM_ERR_UNSUPPORTED, "'%s' = %g is outside -1e6..1e6", key, *out);
    return 0;
}

static int attr_bool(struct spec *sp, json_object *node, const char *key, int dflt, int *out)
{
    json_object *v;
    *out = dflt;
    if (!json_object_object_get_ex(node, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_boolean))
        return failf(sp, TM_ERR_FORMAT, "'%s' is not true or false", key);
    *out = json_object_get_boolean(v);
    return 0;
}

/* Index of the string attribute among choices (dflt when absent; NULL dflt: required). */
static int attr_choice(struct spec *sp, json_object *node, const char *key,
                       const char *const *choices, const char *dflt)
{
    json_object *v;
    const char *s = dflt;
    if (json_object_object_get_ex(node, key, &v)) {
        if (!json_object_is_type(v, json_type_string))
            return failf(sp, TM_ERR_FORMAT, "'%s' is not a string", key);
        s = json_object_get_string(v);
    }
    if (!s)
        return failf(sp, TM_ERR_FORMAT, "lacks '%s'", key);
    for (int i = 0; choices[i]; i++)
        if (!strcmp(s, choices[i]))
            return i;
    return failf(sp, TM_ERR_UNSUPPORTED, "%s '%.40s' is not supported", key, s);
}

static int attr_act(struct spec *sp, json_object *node, int required, struct tm_node *n)
{
    static const char *const acts[] = { "none", "relu", "lrelu", "tanh", NULL };
    static const int kinds[] = { TM_ACT_NONE, TM_ACT_RELU, TM_ACT_LRELU, TM_ACT_TANH };
    int a = attr_choice(sp, node, "act", acts, required ? NULL : "none");
    double slope;
    if (a < 0 || attr_num(sp, node, "slope", 0.2, &slope))
        return -1;
    n->act = kinds[a];
    n->slope = (float)slope;
    return 0;
}

/* ---- inputs --------------------------------------------------------- */

/* The node's inputs as value ids; between min and max of them. */
static int node_inputs(struct spec *sp, json_object *node, int *ids, int min, int max)
{
    json_object *arr;
    if (!json_object_object_get_ex(node, "inputs", &arr) || !json_object_is_type(arr, json_type_array))
        return failf(sp, TM_ERR_FORMAT, "lacks an 'inputs' list");
    int n = (int)json_object_array_length(arr);
    if (n < min || n > max)
        return failf(sp, TM_ERR_FORMAT, "has %d inputs (takes %d..%d)", n, min, max);
    for (int k = 0; k < n; k++) {
        json_object *v = json_object_array_get_idx(arr, (size_t)k);
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        int i = s ? find_name(&sp->nm, s) : -1;
        if (i < 0)
            return failf(sp, TM_ERR_FORMAT, "input '%.60s' is not defined before it", s ? s : "?");
        sp->nm.uses[i]++;
        ids[k] = sp->nm.value[i];
    }
    return n;
}

static const struct tm_st_tensor *weight_of(struct spec *sp, const char *suffix, char *name,
                                            size_t len)
{
    snprintf(name, len, "%s.%s", sp->node, suffix);
    const struct tm_st_tensor *t = tm_st_find(sp->b->st, name);
    if (!t)
        failf(sp, TM_ERR_FORMAT, "missing tensor '%s'", name);
    return t;
}

/* ---- ops -------------------------------------------------------------- */

static int build_conv(struct spec *sp, json_object *node, int x, int transposed)
{
    static const char *const keys[] = { "name", "op", "inputs", "kernel", "stride", "pad",
                                        "pad_mode", "dilation", "out_pad", "bias", "act",
                                        "slope", NULL };
    static const char *const pads[] = { "zero", "reflect", NULL };
    struct tm_conv_attr a = { 0 };
    json_object *k, *k0 = NULL, *k1 = NULL;
    if (has_only(sp, node, keys))
        return -1;
    if (json_object_object_get_ex(node, "kernel", &k) && json_object_is_type(k, json_type_array) &&
        json_object_array_length(k) == 2) {
        k0 = json_object_array_get_idx(k, 0);
        k1 = json_object_array_get_idx(k, 1);
    }
    /* json-c would read "3", 3.5 or true as an integer too */
    if (!json_object_is_type(k0, json_type_int) || !json_object_is_type(k1, json_type_int))
        return failf(sp, TM_ERR_FORMAT, "'kernel' is not [kh, kw]");
    int64_t kh = json_object_get_int64(k0), kw = json_object_get_int64(k1);
    if (kh < 1 || kh > 64 || kw < 1 || kw > 64)
        return failf(sp, TM_ERR_UNSUPPORTED, "kernel %lldx%lld is outside 1..64", (long long)kh,
                     (long long)kw);
    a.kh = (int)kh;
    a.kw = (int)kw;
    int bias, mode;
    if (attr_int(sp, node, "stride", 1, 16, 1, &a.stride) ||
        attr_int(sp, node, "pad", 0, 256, 0, &a.pad) ||
        attr_int(sp, node, "dilation", 1, transposed ? 1 : 64, 1, &a.dil) ||
        attr_int(sp, node, "out_pad", 0, transposed ? 15 : 0, 0, &a.out_pad) ||
        attr_bool(sp, node, "bias", 1, &bias) ||
        (mode = attr_choice(sp, node, "pad_mode", pads, "zero")) < 0)
        return -1;
    if (transposed && mode != TM_PAD_ZERO)
        return failf(sp, TM_ERR_UNSUPPORTED, "transposed convs pad with zeros only");
    a.pad_mode = mode;
    char name[200];
    const struct tm_st_tensor *w = weight_of(sp, "weight", name, sizeof name);
    if (!w)
        return -1;
    if (w->ndim != 4 || w->shape[2] != a.kh || w->shape[3] != a.kw || w->shape[0] < 1 ||
        w->shape[1] < 1 || w->shape[0] > 65536 || w->shape[1] > 65536)
        return failf(sp, TM_ERR_FORMAT, "'%s' is not a [out, in, %d, %d] kernel", name, a.kh, a.kw);
    int cin = (int)w->shape[transposed ? 0 : 1], cout = (int)w->shape[transposed ? 1 : 0];
    int y = transposed ? tm_build_convt(sp->b, x, sp->node, cin, cout, &a, bias)
                       : tm_build_conv(sp->b, x, sp->node, cin, cout, &a, bias);
    return y < 0 || attr_act(sp, node, 0, &sp->b->g->nodes[sp->b->g->n_nodes - 1]) ? -1 : y;
}

static int build_norm(struct spec *sp, json_object *node, int x, int batch)
{
    static const char *const keys[] = { "name", "op", "inputs", "eps", "affine", "act", "slope", NULL };
    double eps;
    int affine = 1;
    if (has_only(sp, node, keys) || attr_num(sp, node, "eps", 1e-5, &eps) ||
        (!batch && attr_bool(sp, node, "affine", 0, &affine)))
        return -1;
    if (eps <= 0.0 || eps > 1.0)
        return failf(sp, TM_ERR_FORMAT, "eps %g is outside (0, 1]", eps);
    char name[200];
    const struct tm_st_tensor *w = affine ? weight_of(sp, "weight", name, sizeof name) : NULL;
    if (affine && (!w || w->ndim != 1 || w->shape[0] < 1 || w->shape[0] > 65536))
        return failf(sp, TM_ERR_FORMAT, "'%s.weight' is not a vector", sp->node);
    int y;
    if (!batch && affine) {
        y = tm_build_instnorm_affine(sp->b, x, sp->node, (int)w->shape[0]);
    } else {
        /* tm_build_norm follows the architecture's norm kind: name this one's. */
        struct tm_arch arch = *sp->b->arch;
        const struct tm_arch *saved = sp->b->arch;
        arch.norm = batch ? TM_NORM_BATCH : TM_NORM_INSTANCE;
        arch.image_stats = 0;
        sp->b->arch = &arch;
        y = tm_build_norm(sp->b, x, sp->node, batch ? (int)w->shape[0] : 0);
        sp->b->arch = saved;
    }
    if (y < 0)
        return -1;
    struct tm_node *last = &sp->b->g->nodes[sp->b->g->n_nodes - 1];
    last->norm.eps = (float)eps;
    return attr_act(sp, node, 0, last) ? -1 : y;
}

static int build_simple(struct spec *sp, json_object *node, const char *op, int x)
{
    static const char *const k_act[] = { "name", "op", "inputs", "act", "slope", NULL };
    static const char *const k_scale[] = { "name", "op", "inputs", "value", "act", "slope", NULL };
    static const char *const k_up[] = { "name", "op", "inputs", "factor", NULL };
    static const char *const k_d2s[] = { "name", "op", "inputs", "factor", "order", NULL };
    static const char *const k_prelu[] = { "name", "op", "inputs", NULL };
    static const char *const orders[] = { "tf", "torch", NULL };
    struct tm_build *b = sp->b;
    if (!strcmp(op, "act")) {
        struct tm_node n = tm_node_new(TM_OP_ACT, x);
        if (has_only(sp, node, k_act) || attr_act(sp, node, 1, &n))
            return -1;
        /* Not tm_build_act: x may have readers still to come, which must not
         * see the activation. fuse_acts() merges it once all are known. */
        return tm_build_act_node(b, x, n.act, n.slope);
    }
    if (!strcmp(op, "scale")) {
        double v;
        json_object *tmp;
        if (has_only(sp, node, k_scale) || attr_num(sp, node, "value", 1.0, &v))
            return -1;
        if (!json_object_object_get_ex(node, "value", &tmp))
            return failf(sp, TM_ERR_FORMAT, "lacks 'value'");
        int y = tm_build_scale(b, x, (float)v);
        return y < 0 || attr_act(sp, node, 0, &b->g->nodes[b->g->n_nodes - 1]) ? -1 : y;
    }
    if (!strcmp(op, "prelu")) {
        char name[200];
        const struct tm_st_tensor *w;
        if (has_only(sp, node, k_prelu) || !(w = weight_of(sp, "weight", name, sizeof name)))
            return -1;
        if (w->ndim != 1 || w->shape[0] < 1 || w->shape[0] > 65536)
            return failf(sp, TM_ERR_FORMAT, "'%s' is not a vector of slopes", name);
        return tm_build_prelu(b, x, sp->node, (int)w->shape[0]);
    }
    int f, order = 0;
    int up = !strcmp(op, "upsample");
    if (has_only(sp, node, up ? k_up : k_d2s) || attr_int(sp, node, "factor", 1, 16, 0, &f) ||
        (!up && (order = attr_choice(sp, node, "order", orders, NULL)) < 0))
        return -1;
    enum tm_op kind = up ? TM_OP_UPSAMPLE
                         : !strcmp(op, "depth_to_space") ? TM_OP_DEPTH2SPACE : TM_OP_SPACE2DEPTH;
    return tm_build_resample(b, x, kind, f, order == 1 ? TM_D2S_TORCH : TM_D2S_TF);
}

static int build_join(struct spec *sp, json_object *node, const char *op)
{
    static const char *const k_add[] = { "name", "op", "inputs", "act", "slope", NULL };
    static const char *const k_cat[] = { "name", "op", "inputs", NULL };
    int add = !strcmp(op, "add");
    int ids[4096];
    int n = has_only(sp, node, add ? k_add : k_cat) ? -1 : node_inputs(sp, node, ids, 2, 4096);
    if (n < 0)
        return -1;
    if (!add)
        return tm_build_concat_n(sp->b, ids, n);
    int y = ids[0];
    for (int k = 1; k < n && y >= 0; k++)
        y = tm_build_add(sp->b, y, ids[k]);
    return y < 0 || attr_act(sp, node, 0, &sp->b->g->nodes[sp->b->g->n_nodes - 1]) ? -1 : y;
}

static int build_node(struct spec *sp, json_object *node)
{
    static const char *const ops[] = { "conv2d", "convt2d", "act", "add", "concat", "scale", "prelu",
                                       "upsample", "depth_to_space", "space_to_depth", "instnorm",
                                       "batchnorm", NULL };
    int op = attr_choice(sp, node, "op", ops, NULL);
    if (op < 0)
        return -1;
    if (op == 3 || op == 4)
        return build_join(sp, node, ops[op]);
    int x;
    if (node_inputs(sp, node, &x, 1, 1) < 0)
        return -1;
    switch (op) {
    case 0: case 1: return build_conv(sp, node, x, op == 1);
    case 10: case 11: return build_norm(sp, node, x, op == 11);
    default: return build_simple(sp, node, ops[op], x);
    }
}

/* ---- the document --------------------------------------------------- */

/* A name not yet taken, by the input (entry 0) or a node. */
static int new_name(struct spec *sp, const char *name)
{
    if (!*name || strlen(name) > 120)
        return failf(sp, TM_ERR_FORMAT, "node names must be 1..120 characters");
    int i = find_name(&sp->nm, name);
    if (i == 0)
        return failf(sp, TM_ERR_FORMAT, "name '%.60s' is the graph's input", name);
    if (i > 0)
        return failf(sp, TM_ERR_FORMAT, "name '%.60s' is defined twice", name);
    return 0;
}

static int add_name(struct spec *sp, const char *name, int value)
{
    const char *kept = tm_build_keep(sp->b, name);
    if (!kept)
        return -1;
    json_object *i = json_object_new_int(sp->nm.n);
    if (!i || json_object_object_add(sp->nm.index, kept, i)) {
        json_object_put(i);
        return failf(sp, TM_ERR_NOMEM, "out of memory");
    }
    sp->nm.name[sp->nm.n] = kept;
    sp->nm.value[sp->nm.n] = value;
    sp->nm.uses[sp->nm.n++] = 0;
    return 0;
}

static const char *get_string(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

/* Fuses an activation node into its producer when nothing else reads the
 * producer's result, in one pass (long graphs load in linear time): the
 * act's output becomes an alias of the producer's. -1 on OOM. */
static int fuse_acts(struct tm_graph *g)
{
    size_t nv = (size_t)g->n_tensors;
    int *readers = calloc(nv, sizeof *readers), *alias = malloc(nv * sizeof *alias);
    int *prod = malloc(nv * sizeof *prod); /* node (kept ones, renumbered) making each value */
    int ok = readers && alias && prod;
    for (size_t v = 0; ok && v < nv; v++) {
        alias[v] = (int)v;
        prod[v] = -1;
    }
    for (int j = 0; ok && j < g->n_nodes; j++)
        for (int k = 0; k < g->nodes[j].n_in; k++)
            readers[g->nodes[j].in[k]]++;
    int kept = 0;
    for (int i = 0; ok && i < g->n_nodes; i++) {
        struct tm_node a = g->nodes[i];
        for (int k = 0; k < a.n_in; k++)
            a.in[k] = alias[a.in[k]];
        int x = a.in[0];
        struct tm_node *p = a.op == TM_OP_ACT && prod[x] >= 0 ? &g->nodes[prod[x]] : NULL;
        if (p && readers[x] + (x == g->output) == 1 && p->act == TM_ACT_NONE && tm_op_takes_act(p->op)) {
            p->act = a.act;
            p->slope = a.slope;
            alias[a.out] = x;
            readers[x] = readers[a.out];
            if (g->output == a.out)
                g->output = x;
            continue;
        }
        g->nodes[kept] = a;
        prod[a.out] = kept++;
    }
    if (ok)
        g->n_nodes = kept;
    free(readers);
    free(alias);
    free(prod);
    return ok ? 0 : -1;
}

static void build_nodes(struct spec *sp, json_object *nodes)
{
    int n = (int)json_object_array_length(nodes);
    for (int i = 0; i < n && !sp->b->status; i++) {
        json_object *node = json_object_array_get_idx(nodes, (size_t)i);
        const char *name = json_object_is_type(node, json_type_object) ? get_string(node, "name") : NULL;
        sp->node = NULL;
        if (!name) {
            failf(sp, TM_ERR_FORMAT, "node %d is not an object with a 'name'", i + 1);
            return;
        }
        sp->node = tm_build_keep(sp->b, name);
        struct tm_graph *g = sp->b->g;
        int first = g->n_nodes;
        int y = sp->node && !new_name(sp, name) ? build_node(sp, node) : -1;
        if (y >= 0)
            add_name(sp, name, y);
        for (int k = first; k < g->n_nodes; k++) /* messages name the node */
            if (!g->nodes[k].label)
                g->nodes[k].label = sp->node;
    }
    sp->node = NULL;
}

static void build_doc(struct spec *sp, json_object *doc)
{
    struct tm_graph *g = sp->b->g;
    json_object *nodes;
    const char *in = get_string(doc, "input"), *out = get_string(doc, "output");
    if (!in || !out || !json_object_object_get_ex(doc, "nodes", &nodes) ||
        !json_object_is_type(nodes, json_type_array)) {
        failf(sp, TM_ERR_FORMAT, "needs 'input', 'output' and a 'nodes' list");
        return;
    }
    int n = (int)json_object_array_length(nodes);
    if (n < 1 || n > MAX_NODES) {
        failf(sp, TM_ERR_FORMAT, "%d nodes (1..%d)", n, MAX_NODES);
        return;
    }
    sp->nm.index = json_object_new_object();
    sp->nm.name = calloc((size_t)n + 1, sizeof *sp->nm.name);
    sp->nm.value = calloc((size_t)n + 1, sizeof *sp->nm.value);
    sp->nm.uses = calloc((size_t)n + 1, sizeof *sp->nm.uses);
    if (!sp->nm.index || !sp->nm.name || !sp->nm.value || !sp->nm.uses) {
        failf(sp, TM_ERR_NOMEM, "out of memory");
        return;
    }
    g->input = tm_graph_value(g);
    if (g->input < 0 || new_name(sp, in) || add_name(sp, in, g->input))
        return;
    g->tensors[g->input].c = sp->b->arch->input_nc + sp->b->arch->label_size;
    /* The output is known by name only after its node is built; mark it then. */
    g->output = -2;
    build_nodes(sp, nodes);
    int o = find_name(&sp->nm, out);
    if (!sp->b->status && (o <= 0))
        failf(sp, TM_ERR_FORMAT, "output '%.60s' is not a node", out);
    for (int i = 1; i < sp->nm.n && !sp->b->status; i++)
        if (!sp->nm.uses[i] && i != o)
            failf(sp, TM_ERR_FORMAT, "node '%.60s' is not used by the output", sp->nm.name[i]);
    if (sp->b->status)
        return;
    g->output = sp->nm.value[o];
    if (fuse_acts(g))
        failf(sp, TM_ERR_NOMEM, "out of memory");
}

void tm_build_graph_spec(struct tm_build *b, const char *json)
{
    struct spec sp = { .b = b };
    enum json_tokener_error jerr;
    json_object *doc = json ? json_tokener_parse_verbose(json, &jerr) : NULL;
    if (!doc || !json_object_is_type(doc, json_type_object))
        failf(&sp, TM_ERR_FORMAT, "metadata 'graph' is not a JSON object%s%s", doc || !json ? "" : ": ",
              doc || !json ? "" : json_tokener_error_desc(jerr));
    else
        build_doc(&sp, doc);
    json_object_put(doc);
    json_object_put(sp.nm.index);
    free(sp.nm.name);
    free(sp.nm.value);
    free(sp.nm.uses);
}
