/* tfjs.c: TF.js layers-models as graph models (see tfjs.h).
 *
 * The model.json is read and parsed here, its layers wired and sorted in
 * tfjs_topology.c, and each layer turned into a graph node (or, for a
 * linear activation, an alias of its input) in tfjs_layers.c, which checks
 * every weight's shape against its layer before any shard is read. The
 * tensors are produced last, one manifest group at a time, and the metadata
 * names the UpscalerJS family when the layer names give it away. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "tfjs.h"
#include "tfjs_internal.h"
#include "tfjs_weights.h"

#define MAX_SCALE 16         /* docs/GRAPH.md */
#define JSON_DEPTH 64

struct tm_tfjs_block {
    struct tm_tfjs_block *next;
    max_align_t data[];
};

/* ---- Messages and JSON output ---------------------------------------- */

/* Messages quote names from the file: control characters become '?' so
 * that a message stays one line. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

bool tfjs_cfail(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    one_line(c->err);
    return false;
}

bool tfjs_oom(struct ctx *c)
{
    c->oom = true;
    return tfjs_cfail(c, "out of memory");
}

/* "layer 'NAME': " + message. */
bool tfjs_lfail(struct ctx *c, const struct layer *l, const char *fmt, ...)
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

/* Adds v to object o under key (or to array o when key is NULL); an
 * allocation failure is remembered and reported at the end. */
void tfjs_jput(struct ctx *c, json_object *o, const char *key, json_object *v)
{
    int rc = !o || !v ? -1 : key ? json_object_object_add(o, key, v) : json_object_array_add(o, v);
    if (rc) {
        json_object_put(v);
        c->oom = true;
    }
}

void tfjs_put_str(struct ctx *c, json_object *o, const char *key, const char *v)
{
    tfjs_jput(c, o, key, json_object_new_string(v));
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
        is_rdn = is_rdn && tfjs_find_layer(c, rdn[i]);
    for (int i = 0; i < c->n && !is_rrdn; i++)
        is_rrdn = !strcmp(c->L[i].cls, "MultiplyBeta");
    for (size_t i = 0; i < sizeof rrdn / sizeof rrdn[0]; i++)
        is_rrdn = is_rrdn && tfjs_find_layer(c, rrdn[i]);
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
    tfjs_put_str(c, graph, "input", c->input->name);
    tfjs_put_str(c, graph, "output", c->output->out);
    tfjs_jput(c, graph, "nodes", json_object_get(c->nodes));
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
        if (!tfjs_convert_layer(c, &c->L[c->order[i]]))
            return c->oom ? TM_ERR_NOMEM : TM_ERR_UNSUPPORTED;
    for (int i = 0; i < c->man.n; i++)
        if (!c->man.w[i].used) {
            tfjs_cfail(c, "weight '%s' in the weightsManifest belongs to no layer", c->man.w[i].name);
            return TM_ERR_FORMAT;
        }
    const struct layer *out = c->output;
    if (out->channels < 1 || out->channels > 4) {
        tfjs_lfail(c, out, "the output has %d channels: an image has 1..4", out->channels);
        return TM_ERR_UNSUPPORTED;
    }
    if (out->den != 1 || out->num > MAX_SCALE) {
        tfjs_cfail(c, "the output is %lld/%lld times the input's size: graph models scale by a whole number 1..%d",
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
        tfjs_cfail(c, "no weightsManifest: the model.json lists no weights");
        return TM_ERR_FORMAT;
    }
    json_object_object_get_ex(config, "layers", &layers);
    tm_status s = tfjs_manifest_parse(manifest, &c->man, c->err, c->errlen);
    if (s)
        return s;
    if (!tfjs_read_layers(c, layers) || !tfjs_wire(c, config, layers))
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
