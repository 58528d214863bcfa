/* model.c: loading a safetensors model, checking its metadata and tensors
 * against the architecture, and handing the graph to the backend. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "tiled.h"

/* Far beyond any published generator, small enough to reject nonsense
 * before it allocates gigabytes. */
#define MAX_NGF 1024
#define MAX_BLOCKS 64
#define MAX_FILE ((size_t)8 << 30)

static tm_status meta_int(tm_model *m, const char *key, int lo, int hi, int *out, int dflt)
{
    const char *v = tm_st_meta(&m->st, key);
    if (!v) {
        if (dflt != INT_MIN) {
            *out = dflt;
            return TM_OK;
        }
        return tm_fail(m->ctx, TM_ERR_FORMAT, "model metadata lacks '%s'", key);
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return tm_fail(m->ctx, TM_ERR_UNSUPPORTED, "metadata %s='%.40s' is not an integer in %d..%d",
                       key, v, lo, hi);
    *out = (int)n;
    return TM_OK;
}

/* Index of v in the NULL-terminated choices, -1 with an error when absent. */
static int meta_choice(tm_model *m, const char *key, const char *const *choices, const char *dflt)
{
    const char *v = tm_st_meta(&m->st, key);
    if (!v)
        v = dflt;
    if (!v) {
        tm_fail(m->ctx, TM_ERR_FORMAT, "model metadata lacks '%s'", key);
        return -1;
    }
    for (int i = 0; choices[i]; i++)
        if (!strcmp(v, choices[i]))
            return i;
    tm_fail(m->ctx, TM_ERR_UNSUPPORTED, "metadata %s='%.40s' is not supported", key, v);
    return -1;
}

/* StarGAN: fixed norm and padding; the label is laid out by its domains. */
static tm_status read_stargan(tm_model *m)
{
    const char *domains = tm_st_meta(&m->st, "domains");
    if (!domains)
        return tm_fail(m->ctx, TM_ERR_FORMAT, "stargan model metadata lacks 'domains' (the label names)");
    char err[256];
    tm_status s = tm_domains_parse(domains, tm_st_meta(&m->st, "domain_groups"), &m->domains,
                                   err, sizeof err);
    if (s)
        return tm_fail(m->ctx, s, "%s", err);
    m->arch.label_size = m->domains.label_size;
    m->info.label_size = m->domains.label_size;
    m->info.n_domains = m->domains.n;
    m->info.domains = m->domains.names;
    m->info.n_groups = m->domains.n_groups;
    m->info.groups = m->domains.groups;
    m->info.domain_group = m->domains.group;
    m->info.pad_multiple = m->min_side = 4;
    return meta_int(m, "n_blocks", 0, MAX_BLOCKS, &m->arch.n_blocks, INT_MIN);
}

/* "lo,hi" value range metadata (key absent: dflt kept). */
static tm_status meta_range(tm_model *m, const char *key, float *lo, float *hi)
{
    const char *v = tm_st_meta(&m->st, key);
    if (!v)
        return TM_OK;
    char *end;
    errno = 0;
    double a = strtod(v, &end), b = 0.0;
    int ok = !errno && end != v && *end == ',';
    if (ok) {
        const char *p = end + 1;
        b = strtod(p, &end);
        ok = !errno && end != p && !*end && isfinite(a) && isfinite(b) && b > a &&
             fabs(a) < 1e6 && fabs(b) < 1e6;
    }
    if (!ok)
        return tm_fail(m->ctx, TM_ERR_FORMAT, "metadata %s='%.40s' is not a range lo,hi with lo < hi",
                       key, v);
    *lo = (float)a;
    *hi = (float)b;
    return TM_OK;
}

/* scale and value ranges: defaults per architecture, then the metadata. */
static tm_status read_io(tm_model *m, int dflt_scale, float in_lo, float out_lo, float out_hi)
{
    struct tm_model_info *i = &m->info;
    tm_status s = meta_int(m, "scale", 1, 16, &m->arch.scale, dflt_scale);
    i->scale = m->arch.scale;
    i->in_lo = in_lo;
    i->in_hi = 1.0f;
    if (s || (s = meta_range(m, "range", &i->in_lo, &i->in_hi)))
        return s;
    int both = tm_st_meta(&m->st, "range") != NULL; /* `range` speaks for both sides */
    i->out_lo = both ? i->in_lo : out_lo;
    i->out_hi = both ? i->in_hi : out_hi;
    if ((s = meta_range(m, "input_range", &i->in_lo, &i->in_hi)))
        return s;
    return meta_range(m, "output_range", &i->out_lo, &i->out_hi);
}

/* ESRGAN's RRDBNet (BasicSR): scales 1 and 2 fold the input into channels first. */
static tm_status read_rrdbnet(tm_model *m)
{
    struct tm_arch *a = &m->arch;
    tm_status s;
    if ((s = meta_int(m, "n_blocks", 1, MAX_BLOCKS * 4, &a->n_blocks, INT_MIN)) ||
        (s = meta_int(m, "grow", 1, MAX_NGF, &a->grow, 32)) ||
        (s = read_io(m, 4, 0.0f, 0.0f, 1.0f)))
        return s;
    if (a->scale != 1 && a->scale != 2 && a->scale != 4)
        return tm_fail(m->ctx, TM_ERR_UNSUPPORTED, "rrdbnet scale %d (1, 2 or 4)", a->scale);
    m->info.pad_multiple = m->min_side = 4 / a->scale;
    return TM_OK;
}

/* SRGAN's generator (SRResNet): 0..1 in, tanh out. */
static tm_status read_srresnet(tm_model *m)
{
    struct tm_arch *a = &m->arch;
    tm_status s;
    if ((s = meta_int(m, "n_blocks", 1, MAX_BLOCKS, &a->n_blocks, 5)) ||
        (s = read_io(m, 4, 0.0f, -1.0f, 1.0f)))
        return s;
    if (a->scale & (a->scale - 1))
        return tm_fail(m->ctx, TM_ERR_UNSUPPORTED, "srresnet scale %d (a power of two)", a->scale);
    m->info.pad_multiple = m->min_side = 1;
    return TM_OK;
}

static tm_status read_graph(tm_model *m)
{
    if (!tm_st_meta(&m->st, "graph"))
        return tm_fail(m->ctx, TM_ERR_FORMAT, "graph model metadata lacks 'graph' (the node list)");
    tm_status s = meta_int(m, "pad_multiple", 1, 1024, &m->info.pad_multiple, 1);
    m->min_side = m->info.pad_multiple;
    return s ? s : read_io(m, 1, -1.0f, -1.0f, 1.0f);
}

static tm_status read_arch(tm_model *m)
{
    enum { RESNET, UNET, STARGAN, RRDBNET, SRRESNET, GRAPH }; /* order of archs[] */
    static const char *const archs[] = { "resnet", "unet", "stargan", "rrdbnet", "srresnet",
                                         "graph", NULL };
    static const char *const norms[] = { "none", "instance", "batch", NULL };
    static const char *const pads[] = { "zero", "reflect", NULL };
    static const char *const stats[] = { "running", "image", NULL };
    static const char *const bools[] = { "false", "true", NULL };
    struct tm_arch *a = &m->arch;
    int kind = meta_choice(m, "arch", archs, NULL);
    if (kind < 0)
        return TM_ERR_UNSUPPORTED;
    m->info.arch = archs[kind];
    tm_status s;
    if ((s = meta_int(m, "input_nc", 1, 4, &a->input_nc, INT_MIN)) ||
        (s = meta_int(m, "output_nc", 1, 4, &a->output_nc, INT_MIN)) ||
        (kind != GRAPH && (s = meta_int(m, "ngf", 1, MAX_NGF, &a->ngf, INT_MIN))))
        return s;
    if (kind == RRDBNET)
        return read_rrdbnet(m);
    if (kind == SRRESNET)
        return read_srresnet(m);
    if (kind == GRAPH)
        return read_graph(m);
    if ((s = read_io(m, 1, -1.0f, -1.0f, 1.0f)))
        return s;
    if (m->info.scale != 1)
        return tm_fail(m->ctx, TM_ERR_UNSUPPORTED, "a %s model cannot have scale %d", m->info.arch,
                       m->info.scale);
    if (kind == STARGAN)
        return read_stargan(m);
    int norm = meta_choice(m, "norm", norms, NULL);
    if (norm < 0)
        return TM_ERR_UNSUPPORTED;
    a->norm = (enum tm_norm_kind)norm;
    if (a->norm == TM_NORM_BATCH) {
        a->image_stats = meta_choice(m, "norm_stats", stats, NULL);
        if (a->image_stats < 0)
            return TM_ERR_FORMAT;
    }
    if (kind == RESNET) {
        a->reflect = meta_choice(m, "padding", pads, "reflect");
        a->dropout = meta_choice(m, "dropout", bools, "false");
        if (a->reflect < 0 || a->dropout < 0)
            return TM_ERR_UNSUPPORTED;
        m->info.pad_multiple = 4;
        m->min_side = 8; /* 2x2 after both downsamplings: room for reflect padding 1 */
        return meta_int(m, "n_blocks", 0, MAX_BLOCKS, &a->n_blocks, INT_MIN);
    }
    if ((s = meta_int(m, "num_downs", 5, 10, &a->num_downs, INT_MIN)))
        return s;
    m->info.pad_multiple = m->min_side = 1 << a->num_downs;
    return TM_OK;
}

/* Float copies of every floating tensor, in one allocation. */
static tm_status convert_weights(tm_model *m, float **f32)
{
    uint64_t total = 0;
    for (int i = 0; i < m->st.n_tensors; i++) {
        const struct tm_st_tensor *t = &m->st.tensors[i];
        if (t->dtype == TM_DT_F32 || t->dtype == TM_DT_F16 || t->dtype == TM_DT_BF16)
            total += t->numel;
    }
    if (total > SIZE_MAX / sizeof(float) / 2)
        return tm_fail(m->ctx, TM_ERR_NOMEM, "model too large");
    m->arena = malloc((size_t)(total ? total : 1) * sizeof(float));
    if (!m->arena)
        return tm_fail(m->ctx, TM_ERR_NOMEM, "out of memory for %llu weights",
                       (unsigned long long)total);
    float *p = m->arena;
    for (int i = 0; i < m->st.n_tensors; i++) {
        const struct tm_st_tensor *t = &m->st.tensors[i];
        if (t->dtype != TM_DT_F32 && t->dtype != TM_DT_F16 && t->dtype != TM_DT_BF16)
            continue;
        tm_st_to_f32(&m->st, t, p);
        f32[i] = p;
        p += t->numel;
    }
    return TM_OK;
}

/* Tensors the official state_dicts carry that inference never reads. */
static int ignorable(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && !strcmp(dot, ".num_batches_tracked");
}

/* The built graph against the metadata: it must fit together at a modest
 * size, make output_nc channels and change the size by exactly `scale`. */
static tm_status check_graph(tm_model *m)
{
    struct tm_graph *g = &m->graph;
    int side = m->min_side * ((64 + m->min_side - 1) / m->min_side);
    char err[256];
    tm_status s = tm_graph_infer(g, side, side, err, sizeof err);
    if (s)
        return tm_fail(m->ctx, TM_ERR_FORMAT, "the network does not fit together: %s", err);
    const struct tm_tensor *y = &g->tensors[g->output];
    if (y->c != m->arch.output_nc)
        return tm_fail(m->ctx, TM_ERR_FORMAT, "the network makes %d channels, metadata output_nc says %d",
                       y->c, m->arch.output_nc);
    if (y->h != side * m->info.scale || y->w != side * m->info.scale)
        return tm_fail(m->ctx, TM_ERR_FORMAT, "the network turns %dx%d into %dx%d, not the %dx scale "
                       "the metadata says", side, side, y->w, y->h, m->info.scale);
    int radius, scale;
    tm_graph_reach(g, &radius, &scale);
    m->reach = radius;
    return TM_OK;
}

static tm_status build_graph(tm_model *m)
{
    int n = m->st.n_tensors;
    float **f32 = calloc((size_t)n + 1, sizeof *f32);
    char *used = calloc((size_t)n + 1, 1);
    tm_status s = f32 && used ? convert_weights(m, f32)
                              : tm_fail(m->ctx, TM_ERR_NOMEM, "out of memory loading the model");
    if (!s) {
        struct tm_build b = { .g = &m->graph, .st = &m->st, .f32 = f32, .used = used,
                              .arch = &m->arch };
        tm_graph_init(&m->graph);
        const char *arch = m->info.arch;
        if (!strcmp(arch, "resnet"))
            tm_build_resnet(&b);
        else if (!strcmp(arch, "unet"))
            tm_build_unet(&b);
        else if (!strcmp(arch, "stargan"))
            tm_build_stargan(&b);
        else if (!strcmp(arch, "rrdbnet"))
            tm_build_rrdbnet(&b);
        else if (!strcmp(arch, "srresnet"))
            tm_build_srresnet(&b);
        else
            tm_build_graph_spec(&b, tm_st_meta(&m->st, "graph"));
        s = b.status ? tm_fail(m->ctx, b.status, "%s", b.err) : check_graph(m);
        for (int i = 0; i < n && !s; i++) {
            if (used[i] || ignorable(m->st.tensors[i].name))
                continue;
            if (!strcmp(m->info.arch, "graph"))
                s = tm_fail(m->ctx, TM_ERR_FORMAT, "unexpected tensor '%s': no graph node reads it",
                            m->st.tensors[i].name);
            else
                s = tm_fail(m->ctx, TM_ERR_FORMAT, "unexpected tensor '%s' for %s with these hyper-parameters",
                            m->st.tensors[i].name, m->info.arch);
        }
        for (int i = 0; i < n; i++)
            if (used[i])
                m->info.n_params += m->st.tensors[i].numel;
    }
    free(f32);
    free(used);
    return s;
}

static tm_status load_bytes(tm_model *m, const uint8_t *bytes, size_t size)
{
    char err[384];
    tm_status s = tm_st_parse(bytes, size, &m->st, err, sizeof err);
    if (s)
        return tm_fail(m->ctx, s, "%s", err);
    m->info.n_tensors = m->st.n_tensors;
    m->info.file_size = size;
    if ((s = read_arch(m)))
        return s;
    m->info.input_nc = m->arch.input_nc;
    m->info.output_nc = m->arch.output_nc;
    if ((s = build_graph(m)))
        return s;
    m->st.data = NULL; /* the caller's bytes go away after loading */
    struct tm_backend *be = m->ctx->backend;
    return be->vt->params_upload(be, &m->graph, &m->dev_params);
}

tm_status tm_model_load_memory(tm_ctx *ctx, const void *data, size_t size, tm_model **out)
{
    *out = NULL;
    tm_model *m = calloc(1, sizeof *m);
    if (!m)
        return tm_fail(ctx, TM_ERR_NOMEM, "out of memory loading the model");
    m->ctx = ctx;
    tm_status s = load_bytes(m, data, size);
    if (s) {
        tm_model_destroy(&m);
        return s;
    }
    *out = m;
    return TM_OK;
}

tm_status tm_model_load(tm_ctx *ctx, const char *path, tm_model **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tm_fail(ctx, TM_ERR_IO, "cannot open model '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > MAX_FILE) {
        fclose(f);
        return tm_fail(ctx, TM_ERR_IO, "model '%s' is not a regular file of a sane size", path);
    }
    size_t size = (size_t)sb.st_size;
    uint8_t *bytes = malloc(size ? size : 1);
    if (!bytes) {
        fclose(f);
        return tm_fail(ctx, TM_ERR_NOMEM, "out of memory reading model '%s' (%zu bytes)", path, size);
    }
    size_t got = fread(bytes, 1, size, f);
    fclose(f);
    tm_status s;
    if (got != size) {
        s = tm_fail(ctx, TM_ERR_IO, "cannot read model '%s'", path);
    } else {
        s = tm_model_load_memory(ctx, bytes, size, out);
        if (s) { /* name the file in front of the reason */
            char reason[sizeof ctx->err];
            snprintf(reason, sizeof reason, "%s", ctx->err);
            tm_fail(ctx, s, "model '%s': %s", path, reason);
        }
    }
    free(bytes);
    return s;
}

void tm_model_destroy(tm_model **pm)
{
    tm_model *m = *pm;
    if (!m)
        return;
    struct tm_backend *be = m->ctx->backend;
    if (m->plan)
        be->vt->plan_destroy(be, m->plan);
    tm_tiled_free(m);
    tm_smooth_free(&m->tiled_stats);
    if (m->dev_params)
        be->vt->params_free(be, m->dev_params);
    tm_graph_free(&m->graph);
    tm_st_free(&m->st);
    tm_domains_free(&m->domains);
    free(m->arena);
    free(m);
    *pm = NULL;
}

void tm_model_reset_stats(tm_model *m)
{
    m->reset_stats = true;
}

const struct tm_model_info *tm_model_info(const tm_model *m)
{
    return &m->info;
}

const char *tm_model_meta(const tm_model *m, const char *key)
{
    return tm_st_meta(&m->st, key);
}

bool tm_model_meta_at(const tm_model *m, int i, const char **key, const char **value)
{
    if (i < 0 || i >= m->st.n_meta)
        return false;
    *key = m->st.meta_keys[i];
    *value = m->st.meta_vals[i];
    return true;
}
