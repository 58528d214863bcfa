/* backend_vk.c: the Vulkan backend's vtable: creation, parameter upload,
 * and plans (activation memory plus the whole forward pass recorded once
 * into a single command buffer that every run resubmits). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "smooth.h"
#include "vk.h"

struct vk_params {
    struct vk_alloc *tensors;  /* by tensor id; params only */
    struct vk_alloc *stats;    /* by node id: batch norm running (mean, rstd) */
    int n_tensors, n_nodes;
};

/* Smoothing (tm_run_opts.smoothing): a second recording of the pass in
 * which each norm with per-image statistics blends them with the ones it
 * carries on the device (shaders/norm_ema.comp). It is made on the plan's
 * first smoothing run, so runs without smoothing never see it. */
struct vk_smooth {
    struct vk_alloc *carried;  /* by node: (mean, var) per channel */
    struct vk_alloc weight;    /* host-written before each run: the carried ones' weight */
    VkDescriptorPool pool;
    VkCommandBuffer cmd;
    bool valid;                /* carried holds an earlier run's statistics */
};

struct vk_plan {
    struct vk_alloc *slots;
    int n_slots;
    struct vk_alloc scratch;   /* per-image norm statistics, reused by every norm */
    struct vk_alloc stage_in, stage_out;
    size_t in_bytes, out_bytes;
    VkDescriptorPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    /* What recording the smoothing pass later takes: the graph's nodes and
     * shapes as they were here (the caller's may be re-inferred since). */
    struct tm_graph g;
    int *slot_of;
    const struct vk_params *params;
    bool smoothable;           /* some norm uses per-image statistics */
    struct vk_smooth smooth;
};

tm_status vk_check_fail(struct vk_backend *be, VkResult r, const char *call, const char *file,
                        int line)
{
    bool oom = r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY;
    return tm_fail(be->ctx, oom ? TM_ERR_NOMEM : TM_ERR_DEVICE, "%s failed: %s (%s:%d)", call,
                   vk_result_str(r), file, line);
}

static struct vk_backend *vkbe(struct tm_backend *b)
{
    return (struct vk_backend *)b;
}

/* Whether the shaders can reach a tensor of n floats. Descriptors reach
 * maxStorageBufferRange bytes; device addresses, used for activations only
 * (shaders/common.glsl), a whole allocation (its limit is malloc.c's to
 * report). Either way shaders index with 32-bit element indices, which
 * drivers sign-extend into 64-bit addresses, so a tensor must stay below
 * 2^31 elements (8 GiB). */
static tm_status check_reach(struct vk_backend *be, const char *what, uint64_t n,
                             bool by_address)
{
    uint64_t bytes = n * sizeof(float);
    if (n > INT32_MAX)
        return tm_fail(be->ctx, TM_ERR_UNSUPPORTED,
                       "image too large for the Vulkan backend: a %s of %llu elements "
                       "(%llu MiB) exceeds its limit of 2^31 elements",
                       what, (unsigned long long)n, (unsigned long long)(bytes >> 20));
    if (bytes > be->caps.max_storage_range && !(by_address && be->caps.bda))
        return tm_fail(be->ctx, TM_ERR_UNSUPPORTED,
                       "%s too large for this Vulkan device: a %llu MiB %s exceeds its "
                       "maxStorageBufferRange (%u MiB)%s",
                       by_address ? "image" : "model", (unsigned long long)(bytes >> 20), what,
                       be->caps.max_storage_range >> 20,
                       by_address ? ", and the device lacks bufferDeviceAddress to reach "
                                    "larger buffers"
                                  : "");
    return TM_OK;
}

/* ---- Parameters --------------------------------------------------------- */

static size_t param_numel(const struct tm_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->dims[i];
    return n;
}

/* ConvTranspose2d weights [Cin][Cout][K] become the GEMM's [Cout][Cin*K]. */
static float *convt_relayout(const struct tm_tensor *t)
{
    size_t ci_n = (size_t)t->dims[0], co_n = (size_t)t->dims[1];
    size_t k = (size_t)t->dims[2] * (size_t)t->dims[3];
    float *w = malloc(sizeof *w * ci_n * co_n * k);
    if (!w)
        return NULL;
    for (size_t ci = 0; ci < ci_n; ci++)
        for (size_t co = 0; co < co_n; co++)
            memcpy(&w[(co * ci_n + ci) * k], &t->data[(ci * co_n + co) * k], sizeof *w * k);
    return w;
}

/* Direct-form layout [K][m_pad] (see vk_conv_direct) from either PyTorch
 * layout; padding channels are zero. */
static float *direct_relayout(const struct tm_tensor *t, bool transposed, size_t *bytes)
{
    size_t co_n = (size_t)t->dims[transposed ? 1 : 0], ci_n = (size_t)t->dims[transposed ? 0 : 1];
    size_t kk = (size_t)t->dims[2] * (size_t)t->dims[3], k_n = ci_n * kk;
    size_t m_pad = (size_t)vk_direct_m_pad((int)co_n);
    *bytes = sizeof(float) * k_n * m_pad;
    float *w = calloc(k_n * m_pad, sizeof *w);
    if (!w)
        return NULL;
    for (size_t co = 0; co < co_n; co++)
        for (size_t ci = 0; ci < ci_n; ci++)
            for (size_t r = 0; r < kk; r++) {
                size_t src = transposed ? (ci * co_n + co) * kk + r : (co * ci_n + ci) * kk + r;
                w[(ci * kk + r) * m_pad + co] = t->data[src];
            }
    return w;
}

/* Eval-mode batch norm reduces to the same (mean, rstd) pairs the stats
 * shader makes, so it shares the apply shader. Computed in double. */
static float *bn_running_stats(const struct tm_graph *g, const struct tm_node *nd)
{
    const struct tm_tensor *m = &g->tensors[nd->mean], *v = &g->tensors[nd->var];
    size_t c = param_numel(m);
    float *s = malloc(sizeof *s * 2 * c);
    if (!s)
        return NULL;
    for (size_t i = 0; i < c; i++) {
        s[2 * i] = m->data[i];
        s[2 * i + 1] = (float)(1.0 / sqrt((double)v->data[i] + (double)nd->norm.eps));
    }
    return s;
}

struct upload {
    const void *src;
    size_t size;
    struct vk_alloc *dst;
};

/* Copies host data into device allocations: directly when the memory is
 * mapped (UMA, lavapipe), else through one staging buffer and one submit. */
static tm_status upload_all(struct vk_backend *be, const struct upload *u, int n)
{
    size_t staged = 0;
    for (int i = 0; i < n; i++) {
        if (u[i].dst->map) {
            memcpy(u[i].dst->map, u[i].src, u[i].size);
            tm_status s = vk_flush(be, &be->dev_heap, u[i].dst);
            if (s)
                return s;
        } else {
            staged += (u[i].size + be->caps.align - 1) / be->caps.align * be->caps.align;
        }
    }
    if (!staged)
        return TM_OK;
    struct vk_alloc st;
    VkCommandBuffer cmd;
    tm_status s = vk_alloc(be, &be->host_heap, staged, &st);
    if (s)
        return s;
    if (!(s = vk_oneshot_begin(be, &cmd))) {
        VkDeviceSize off = 0;
        for (int i = 0; i < n; i++) {
            if (u[i].dst->map)
                continue;
            memcpy((char *)st.map + off, u[i].src, u[i].size);
            vk_copy(be, cmd, st.buf, st.off + off, u[i].dst->buf, u[i].dst->off, u[i].size);
            off += (u[i].size + be->caps.align - 1) / be->caps.align * be->caps.align;
        }
        vk_barrier(be, cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
                   VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT);
        s = vk_flush(be, &be->host_heap, &st);
        s = s ? s : vk_oneshot_end(be, cmd);
    }
    vk_free(be, &be->host_heap, &st);
    return s;
}

static void params_free(struct tm_backend *b, void *params)
{
    struct vk_backend *be = vkbe(b);
    struct vk_params *p = params;
    if (!p)
        return;
    for (int i = 0; p->tensors && i < p->n_tensors; i++)
        vk_free(be, &be->dev_heap, &p->tensors[i]);
    for (int i = 0; p->stats && i < p->n_nodes; i++)
        vk_free(be, &be->dev_heap, &p->stats[i]);
    free(p->tensors);
    free(p->stats);
    free(p);
}

/* Host data for each upload: the tensor itself, or a re-laid copy (kept in
 * owned[] for the caller to free). */
struct collect {
    struct upload *u;
    int n;
    void **owned;         /* re-laid host copies, by tensor id, then by node */
    size_t *owned_bytes;
};

static tm_status relayout_weight(struct vk_backend *be, const struct tm_graph *g,
                                 const struct tm_node *nd, struct collect *c)
{
    const struct tm_tensor *t = &g->tensors[nd->w];
    bool convt = nd->op == TM_OP_CONVT2D;
    if (c->owned[nd->w] || (!convt && !vk_conv_direct(be)))
        return TM_OK;
    if (t->ndim != 4)
        return tm_fail(be->ctx, TM_ERR_INVALID, "conv weight %s is not 4-d",
                       t->name ? t->name : "?");
    c->owned_bytes[nd->w] = sizeof(float) * param_numel(t);
    c->owned[nd->w] = vk_conv_direct(be) ? direct_relayout(t, convt, &c->owned_bytes[nd->w])
                                         : convt_relayout(t);
    return c->owned[nd->w] ? TM_OK : tm_fail(be->ctx, TM_ERR_NOMEM, "out of host memory");
}

static tm_status bn_stats(struct vk_backend *be, const struct tm_graph *g, int i,
                          struct vk_params *p, struct collect *c)
{
    const struct tm_node *nd = &g->nodes[i];
    if (nd->mean < 0 || nd->var < 0)
        return tm_fail(be->ctx, TM_ERR_INVALID, "batch norm %s lacks running stats",
                       nd->label ? nd->label : "?");
    float *s = bn_running_stats(g, nd);
    size_t bytes = sizeof(float) * 2 * param_numel(&g->tensors[nd->mean]);
    c->owned[g->n_tensors + i] = s;
    tm_status st = s ? vk_alloc(be, &be->dev_heap, bytes, &p->stats[i])
                     : tm_fail(be->ctx, TM_ERR_NOMEM, "out of host memory");
    if (!st)
        c->u[c->n++] = (struct upload){s, bytes, &p->stats[i]};
    return st;
}

/* Host data for each upload: the tensor itself or a re-laid copy. */
static tm_status params_collect(struct vk_backend *be, const struct tm_graph *g,
                                struct vk_params *p, struct collect *c)
{
    tm_status s = TM_OK;
    for (int i = 0; i < g->n_nodes && !s; i++) {
        const struct tm_node *nd = &g->nodes[i];
        if ((nd->op == TM_OP_CONV2D || nd->op == TM_OP_CONVT2D) && nd->w >= 0)
            s = relayout_weight(be, g, nd, c);
        if (!s && nd->op == TM_OP_BATCHNORM && !nd->norm.image_stats)
            s = bn_stats(be, g, i, p, c);
    }
    for (int t = 0; t < g->n_tensors && !s; t++) {
        const struct tm_tensor *tt = &g->tensors[t];
        if (tt->kind != TM_T_PARAM)
            continue;
        size_t bytes = c->owned[t] ? c->owned_bytes[t] : sizeof(float) * param_numel(tt);
        s = check_reach(be, "parameter", bytes / sizeof(float), false);
        s = s ? s : vk_alloc(be, &be->dev_heap, bytes, &p->tensors[t]);
        if (!s)
            c->u[c->n++] = (struct upload){c->owned[t] ? c->owned[t] : tt->data, bytes,
                                           &p->tensors[t]};
    }
    return s;
}

static tm_status params_upload(struct tm_backend *b, const struct tm_graph *g, void **out)
{
    struct vk_backend *be = vkbe(b);
    size_t n_owned = (size_t)g->n_tensors + (size_t)g->n_nodes + 1;
    struct vk_params *p = calloc(1, sizeof *p);
    struct collect c = {
        .u = calloc(n_owned, sizeof *c.u),
        .owned = calloc(n_owned, sizeof *c.owned),
        .owned_bytes = calloc(n_owned, sizeof *c.owned_bytes),
    };
    tm_status s = TM_ERR_NOMEM;
    *out = NULL;
    if (p) {
        p->n_tensors = g->n_tensors;
        p->n_nodes = g->n_nodes;
        p->tensors = calloc((size_t)g->n_tensors + 1, sizeof *p->tensors);
        p->stats = calloc((size_t)g->n_nodes + 1, sizeof *p->stats);
    }
    if (!p || !c.u || !c.owned || !c.owned_bytes || !p->tensors || !p->stats)
        tm_fail(be->ctx, s, "out of host memory");
    else if (!(s = params_collect(be, g, p, &c)))
        s = upload_all(be, c.u, c.n);
    for (size_t i = 0; c.owned && i < n_owned; i++)
        free(c.owned[i]);
    free(c.owned);
    free(c.owned_bytes);
    free(c.u);
    if (s)
        params_free(b, p);
    else
        *out = p;
    return s;
}
/* ---- Plans -------------------------------------------------------------- */

static void smooth_free(struct vk_backend *be, struct vk_plan *p)
{
    struct vk_smooth *sm = &p->smooth;
    if (sm->cmd)
        be->fn.vkFreeCommandBuffers(be->device, be->cmd_pool, 1, &sm->cmd);
    if (sm->pool)
        be->fn.vkDestroyDescriptorPool(be->device, sm->pool, NULL);
    for (int i = 0; sm->carried && i < p->g.n_nodes; i++)
        vk_free(be, &be->dev_heap, &sm->carried[i]);
    free(sm->carried);
    vk_free(be, &be->host_heap, &sm->weight);
    *sm = (struct vk_smooth){0};
}

static void plan_destroy(struct tm_backend *b, void *plan)
{
    struct vk_backend *be = vkbe(b);
    struct vk_plan *p = plan;
    if (!p)
        return;
    smooth_free(be, p);
    if (p->fence)
        be->fn.vkDestroyFence(be->device, p->fence, NULL);
    if (p->cmd)
        be->fn.vkFreeCommandBuffers(be->device, be->cmd_pool, 1, &p->cmd);
    if (p->pool)
        be->fn.vkDestroyDescriptorPool(be->device, p->pool, NULL);
    for (int i = 0; p->slots && i < p->n_slots; i++)
        vk_free(be, &be->dev_heap, &p->slots[i]);
    free(p->slots);
    vk_free(be, &be->dev_heap, &p->scratch);
    vk_free(be, &be->host_heap, &p->stage_in);
    vk_free(be, &be->host_heap, &p->stage_out);
    free(p->slot_of);
    tm_graph_free(&p->g);
    free(p);
}

/* The nodes and value shapes of src (parameter data stays the model's). */
static bool graph_copy(struct tm_graph *dst, const struct tm_graph *src)
{
    dst->tensors = malloc(sizeof *dst->tensors * ((size_t)src->n_tensors + 1));
    dst->nodes = malloc(sizeof *dst->nodes * ((size_t)src->n_nodes + 1));
    if (!dst->tensors || !dst->nodes)
        return false;
    memcpy(dst->tensors, src->tensors, sizeof *dst->tensors * (size_t)src->n_tensors);
    memcpy(dst->nodes, src->nodes, sizeof *dst->nodes * (size_t)src->n_nodes);
    dst->n_tensors = dst->cap_tensors = src->n_tensors;
    dst->n_nodes = dst->cap_nodes = src->n_nodes;
    dst->input = src->input;
    dst->output = src->output;
    return true;
}

static tm_status alloc_slots(struct vk_backend *be, const struct tm_graph *g,
                             struct vk_plan *p, const size_t *slot_size)
{
    for (int t = 0; t < g->n_tensors; t++) {
        tm_status s = g->tensors[t].kind == TM_T_VALUE
                          ? check_reach(be, "activation", tm_value_numel(&g->tensors[t]), true)
                          : TM_OK;
        if (s)
            return s;
    }
    for (int i = 0; i < p->n_slots; i++) {
        tm_status s = vk_alloc(be, &be->dev_heap, slot_size[i], &p->slots[i]);
        if (s)
            return s;
    }
    size_t scratch = 8;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct tm_node *nd = &g->nodes[i];
        if (nd->op == TM_OP_INSTNORM || nd->op == TM_OP_BATCHNORM) {
            size_t need = 2 * sizeof(float) * (size_t)g->tensors[nd->in[0]].c;
            scratch = need > scratch ? need : scratch;
        }
        p->smoothable |= tm_norm_smoothable(nd);
    }
    p->in_bytes = tm_value_numel(&g->tensors[g->input]) * sizeof(float);
    p->out_bytes = tm_value_numel(&g->tensors[g->output]) * sizeof(float);
    tm_status s = vk_alloc(be, &be->dev_heap, scratch, &p->scratch);
    s = s ? s : vk_alloc(be, &be->host_heap, p->in_bytes, &p->stage_in);
    return s ? s : vk_alloc(be, &be->host_heap, p->out_bytes, &p->stage_out);
}

/* Room for one recording of the pass: a set per dispatch. */
static tm_status recording_objects(struct vk_backend *be, uint32_t sets, VkDescriptorPool *pool,
                                   VkCommandBuffer *cmd)
{
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, sets * VK_MAX_BINDINGS};
    VkDescriptorPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = sets,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = be->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VK(be->fn.vkCreateDescriptorPool(be->device, &pi, NULL, pool));
    VK(be->fn.vkAllocateCommandBuffers(be->device, &ai, cmd));
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

/* Descriptor sets one recording of the pass takes. */
static uint32_t pass_sets(const struct tm_graph *g, bool smooth)
{
    uint32_t n = 1;
    for (int i = 0; i < g->n_nodes; i++)
        n += vk_node_sets(&g->nodes[i], smooth);
    return n;
}

static tm_status plan_objects(struct vk_backend *be, const struct tm_graph *g, struct vk_plan *p)
{
    tm_status s = recording_objects(be, pass_sets(g, false), &p->pool, &p->cmd);
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if (s)
        return s;
    VK(be->fn.vkCreateFence(be->device, &fi, NULL, &p->fence));
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

static struct vk_view alloc_view(const struct vk_alloc *a)
{
    return (struct vk_view){a->buf, a->off, a->size, a->addr};
}

static struct vk_view value_view(const struct vk_plan *p, int t)
{
    const struct vk_alloc *a = &p->slots[p->slot_of[t]];
    return (struct vk_view){a->buf, a->off, tm_value_numel(&p->g.tensors[t]) * sizeof(float),
                            a->addr};
}

/* Node i's buffers; with smooth, a norm with per-image statistics also gets
 * its carried statistics. */
static struct vk_node_io node_io(const struct vk_plan *p, int i, bool smooth)
{
    const struct tm_node *nd = &p->g.nodes[i];
    const struct vk_params *pr = p->params;
    struct vk_node_io io = {
        .out = value_view(p, nd->out),
        .scratch = alloc_view(&p->scratch),
        .has_w = nd->w >= 0,
        .has_b = nd->b >= 0,
        .has_stats = pr->stats[i].block != NULL,
        .has_carried = smooth && tm_norm_smoothable(nd),
    };
    for (int k = 0; k < nd->n_in; k++)
        io.in[k] = value_view(p, nd->in[k]);
    if (io.has_w)
        io.w = alloc_view(&pr->tensors[nd->w]);
    if (io.has_b)
        io.b = alloc_view(&pr->tensors[nd->b]);
    if (io.has_stats)
        io.stats = alloc_view(&pr->stats[i]);
    if (io.has_carried) {
        io.carried = alloc_view(&p->smooth.carried[i]);
        io.weight = alloc_view(&p->smooth.weight);
    }
    return io;
}

/* The whole run into cmd: input upload, every node, output readback. The
 * first barrier orders this run's input copy after the previous run's
 * reads. */
static tm_status record_pass(struct vk_backend *be, const struct vk_plan *p, VkCommandBuffer cmd,
                             VkDescriptorPool pool, bool smooth)
{
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    const struct tm_graph *g = &p->g;
    struct vk_view in = value_view(p, g->input);
    struct vk_view out = value_view(p, g->output);
    VK(be->fn.vkBeginCommandBuffer(cmd, &bi));
    vk_barrier(be, cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0,
               VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT);
    vk_copy(be, cmd, p->stage_in.buf, p->stage_in.off, in.buf, in.off, p->in_bytes);
    vk_barrier(be, cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
               VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT);
    for (int i = 0; i < g->n_nodes; i++) {
        struct vk_node_io io = node_io(p, i, smooth);
        tm_status s = vk_record_node(be, cmd, pool, g, &g->nodes[i], &io);
        if (s)
            return s;
        if (i + 1 < g->n_nodes)
            vk_barrier_compute(be, cmd);
    }
    vk_barrier(be, cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
               VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_READ_BIT);
    vk_copy(be, cmd, out.buf, out.off, p->stage_out.buf, p->stage_out.off, p->out_bytes);
    vk_barrier(be, cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
               VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    VK(be->fn.vkEndCommandBuffer(cmd));
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

static tm_status plan_create(struct tm_backend *b, const struct tm_graph *g, void *params,
                             void **out)
{
    struct vk_backend *be = vkbe(b);
    size_t *slot_size = NULL;
    struct vk_plan *p = calloc(1, sizeof *p);
    tm_status s = TM_ERR_NOMEM;
    *out = NULL;
    if (p) {
        p->params = params;
        p->n_slots = tm_graph_plan_memory(g, &p->slot_of, &slot_size);
    }
    if (p && p->n_slots > 0)
        p->slots = calloc((size_t)p->n_slots, sizeof *p->slots);
    if (!p || !p->slots || !graph_copy(&p->g, g))
        tm_fail(be->ctx, s, "out of host memory");
    else if (!(s = alloc_slots(be, g, p, slot_size)) && !(s = plan_objects(be, g, p)))
        s = record_pass(be, p, p->cmd, p->pool, false);
    free(slot_size);
    if (s)
        plan_destroy(b, p);
    else
        *out = p;
    return s;
}

/* The smoothing pass and its buffers, on the plan's first smoothing run. */
static tm_status smooth_record(struct vk_backend *be, struct vk_plan *p)
{
    struct vk_smooth *sm = &p->smooth;
    const struct tm_graph *g = &p->g;
    sm->carried = calloc((size_t)g->n_nodes + 1, sizeof *sm->carried);
    if (!sm->carried)
        return tm_fail(be->ctx, TM_ERR_NOMEM, "out of host memory");
    tm_status s = vk_alloc(be, &be->host_heap, sizeof(float), &sm->weight);
    for (int i = 0; !s && i < g->n_nodes; i++)
        if (tm_norm_smoothable(&g->nodes[i]))
            s = vk_alloc(be, &be->dev_heap,
                         2 * sizeof(float) * (size_t)g->tensors[g->nodes[i].in[0]].c,
                         &sm->carried[i]);
    s = s ? s : recording_objects(be, pass_sets(g, true), &sm->pool, &sm->cmd);
    s = s ? s : record_pass(be, p, sm->cmd, sm->pool, true);
    if (s)
        smooth_free(be, p);
    return s;
}

/* A smoothing run: its pass, and the weight of the carried statistics (none
 * on a fresh start). */
static tm_status smooth_begin(struct vk_backend *be, struct vk_plan *p,
                              const struct tm_run_opts *opts)
{
    struct vk_smooth *sm = &p->smooth;
    tm_status s = sm->cmd ? TM_OK : smooth_record(be, p);
    if (s)
        return s;
    *(float *)sm->weight.map = sm->valid && !opts->reset_stats ? opts->smoothing : 0.0f;
    return vk_flush(be, &be->host_heap, &sm->weight);
}

static bool report(const struct tm_run_opts *o, double f)
{
    return !o || !o->progress || o->progress(o->progress_priv, f);
}

static tm_status plan_run(struct tm_backend *b, void *plan, const float *in, float *out,
                          const struct tm_run_opts *opts)
{
    struct vk_backend *be = vkbe(b);
    struct vk_plan *p = plan;
    bool smooth = opts && opts->smoothing > 0.0f && p->smoothable;
    if ((opts && opts->cancel && *opts->cancel) || !report(opts, 0.0))
        return tm_fail(be->ctx, TM_ERR_CANCELLED, "cancelled");
    tm_status s = smooth ? smooth_begin(be, p, opts) : TM_OK;
    if (s)
        return s;
    memcpy(p->stage_in.map, in, p->in_bytes);
    s = vk_flush(be, &be->host_heap, &p->stage_in);
    s = s ? s : vk_submit_wait(be, smooth ? p->smooth.cmd : p->cmd, p->fence);
    if (smooth)
        p->smooth.valid = !s;
    s = s ? s : vk_invalidate(be, &be->host_heap, &p->stage_out);
    if (s)
        return s;
    memcpy(out, p->stage_out.map, p->out_bytes);
    report(opts, 1.0);
    return TM_OK;
}

/* ---- Backend ------------------------------------------------------------ */

static void vk_destroy(struct tm_backend *b)
{
    struct vk_backend *be = vkbe(b);
    if (!be)
        return;
    if (be->device) {
        be->fn.vkDeviceWaitIdle(be->device);
        vk_free(be, &be->dev_heap, &be->dummy);
        vk_pipelines_destroy(be);
        vk_heap_destroy(be, &be->dev_heap);
        vk_heap_destroy(be, &be->host_heap);
    }
    vk_device_destroy(be);
    vk_instance_destroy(be);
    vk_unload(&be->fn);
    free(be);
}

static const struct tm_backend_vtbl vk_vtbl = {
    .name = "vulkan",
    .destroy = vk_destroy,
    .params_upload = params_upload,
    .params_free = params_free,
    .plan_create = plan_create,
    .plan_run = plan_run,
    .plan_destroy = plan_destroy,
};

static tm_status backend_init(struct vk_backend *be, int index, bool validate)
{
    const VkBufferUsageFlags usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                     VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                     VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    char why[256];
    if (!vk_load_loader(&be->fn, why, sizeof why))
        return tm_fail(be->ctx, TM_ERR_DEVICE, "%s", why);
    tm_status s = vk_instance_create(be, validate);
    s = s ? s : vk_device_create(be, index);
    if (s)
        return s;
    /* Only tensors, all in the device heap, are reached by address. */
    VkBufferUsageFlags dev_usage =
        usage | (be->caps.bda ? VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT : 0);
    vk_heap_init(&be->dev_heap, "device", 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, dev_usage);
    vk_heap_init(&be->host_heap, "staging", VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
                 VK_MEMORY_PROPERTY_HOST_COHERENT_BIT | VK_MEMORY_PROPERTY_HOST_CACHED_BIT,
                 usage);
    s = vk_pipelines_init(be);
    return s ? s : vk_alloc(be, &be->dev_heap, 256, &be->dummy);
}

tm_status tm_backend_vk_create(tm_ctx *ctx, int index, bool validate, struct tm_backend **out)
{
    struct vk_backend *be = calloc(1, sizeof *be);
    *out = NULL;
    if (!be)
        return tm_fail(ctx, TM_ERR_NOMEM, "out of host memory");
    be->base.vt = &vk_vtbl;
    be->base.ctx = ctx;
    be->ctx = ctx;
    tm_status s = backend_init(be, index, validate);
    if (s) {
        vk_destroy(&be->base);
        return s;
    }
    *out = &be->base;
    return TM_OK;
}
