/* ops.c: records the dispatches of one graph node: picks the pipeline
 * variant (descriptors or device addresses, specialization constants), fills
 * its descriptor set or addresses and push constants, and sizes the grid. */
#include <string.h>

#include "vk.h"

#define ELTWISE_WG 256u

void vk_barrier(struct vk_backend *be, VkCommandBuffer cmd, VkPipelineStageFlags src,
                VkAccessFlags src_access, VkPipelineStageFlags dst, VkAccessFlags dst_access)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = src_access,
        .dstAccessMask = dst_access,
    };
    be->fn.vkCmdPipelineBarrier(cmd, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

/* Dependent dispatches: writes before become visible to later reads, and
 * later writes wait for earlier reads (buffers are reused by the memory plan). */
void vk_barrier_compute(struct vk_backend *be, VkCommandBuffer cmd)
{
    vk_barrier(be, cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
               VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
               VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
}

/* Lavapipe (Mesa 22.3) copies each region with a signed 32-bit width, so a
 * region of 2 GiB (a tensor at maxMemoryAllocationSize) overflows and
 * crashes; regions of at most 1 GiB are safe everywhere. */
#define COPY_CHUNK ((VkDeviceSize)1 << 30)

void vk_copy(struct vk_backend *be, VkCommandBuffer cmd, VkBuffer src, VkDeviceSize src_off,
             VkBuffer dst, VkDeviceSize dst_off, VkDeviceSize size)
{
    for (VkDeviceSize done = 0; done < size; done += COPY_CHUNK) {
        VkDeviceSize n = size - done < COPY_CHUNK ? size - done : COPY_CHUNK;
        VkBufferCopy c = {src_off + done, dst_off + done, n};
        be->fn.vkCmdCopyBuffer(cmd, src, dst, 1, &c);
    }
}

struct dispatch {
    enum vk_shader shader;
    uint32_t spec[VK_MAX_SPEC];
    int n_spec;
    struct vk_view views[VK_MAX_BINDINGS]; /* buf == NULL: bind the dummy */
    struct vk_push push;
    uint32_t groups[3];
};

static tm_status write_set(struct vk_backend *be, VkDescriptorPool pool,
                           const struct dispatch *d, VkDescriptorSet *set)
{
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = pool,
        .descriptorSetCount = 1,
        .pSetLayouts = &be->set_layout,
    };
    VK(be->fn.vkAllocateDescriptorSets(be->device, &ai, set));
    VkDescriptorBufferInfo bi[VK_MAX_BINDINGS];
    VkWriteDescriptorSet w[VK_MAX_BINDINGS];
    for (int i = 0; i < VK_MAX_BINDINGS; i++) {
        const struct vk_view *v = &d->views[i];
        /* Every binding gets a valid buffer, used by the shader or not; a
         * tensor beyond the descriptor range is read through its address
         * (use_bda), and its binding too gets the dummy. */
        bool ok = v->buf && v->size <= be->caps.max_storage_range;
        bi[i] = ok ? (VkDescriptorBufferInfo){v->buf, v->off, v->size}
                   : (VkDescriptorBufferInfo){be->dummy.buf, be->dummy.off, be->dummy.size};
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = *set,
            .dstBinding = (uint32_t)i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    }
    be->fn.vkUpdateDescriptorSets(be->device, VK_MAX_BINDINGS, w, 0, NULL);
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

/* Whether a dispatch reaches its activations through device addresses (the
 * shaders' TM_BDA variant): only when one exceeds the descriptor range,
 * because on lavapipe address loads are slower (shaders/common.glsl) and
 * the descriptor path needs no device feature. Parameters always fit
 * (check_reach in backend_vk.c). */
static bool use_bda(const struct vk_backend *be, const struct dispatch *d)
{
    if (be->caps.bda_all)
        return true;
    for (int i = 0; i < VK_MAX_BINDINGS; i++)
        if (d->views[i].buf && d->views[i].size > be->caps.max_storage_range)
            return true;
    return false;
}

static tm_status record(struct vk_backend *be, VkCommandBuffer cmd, VkDescriptorPool pool,
                        const struct dispatch *d)
{
    VkPipeline pipe;
    VkDescriptorSet set = VK_NULL_HANDLE;
    bool bda = use_bda(be, d);
    struct vk_push push = d->push;
    if (bda && !be->caps.bda) /* alloc_slots refuses such plans first */
        return tm_fail(be->ctx, TM_ERR_UNSUPPORTED,
                       "a tensor exceeds this Vulkan device's maxStorageBufferRange (%u MiB) "
                       "and the device lacks bufferDeviceAddress",
                       be->caps.max_storage_range >> 20);
    for (int i = 0; bda && i < VK_MAX_BINDINGS; i++)
        push.addr[i] = d->views[i].buf ? d->views[i].addr : be->dummy.addr;
    tm_status s = vk_pipeline_get(be, d->shader, bda, d->spec, d->n_spec, &pipe);
    if (!s)
        s = write_set(be, pool, d, &set);
    if (s)
        return s;
    for (int i = 0; i < 3; i++)
        if (d->groups[i] > be->caps.max_wg_count[i])
            return tm_fail(be->ctx, TM_ERR_UNSUPPORTED,
                           "image too large for this device: %u workgroups needed, %u allowed",
                           d->groups[i], be->caps.max_wg_count[i]);
    be->fn.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    be->fn.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, be->pipe_layout, 0, 1,
                                   &set, 0, NULL);
    be->fn.vkCmdPushConstants(cmd, be->pipe_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                              sizeof push, &push);
    be->fn.vkCmdDispatch(cmd, d->groups[0], d->groups[1], d->groups[2]);
    return TM_OK;
}

static uint32_t div_up(uint64_t a, uint64_t b)
{
    return (uint32_t)((a + b - 1) / b);
}

/* Elementwise grids are capped at the device limit; the shaders loop. */
static uint32_t eltwise_groups(struct vk_backend *be, uint64_t n)
{
    uint32_t g = div_up(n, ELTWISE_WG);
    return g < be->caps.max_wg_count[0] ? (g ? g : 1) : be->caps.max_wg_count[0];
}

static void set_shapes(struct vk_push *p, const struct tm_tensor *in, const struct tm_tensor *out)
{
    p->c_in = in->c;
    p->h_in = in->h;
    p->w_in = in->w;
    p->c_out = out->c;
    p->h_out = out->h;
    p->w_out = out->w;
}

/* Conv shapes (see shaders/gemm_conv.glsl): form 0 is the shared-memory
 * tiled GEMM for GPUs, where few output channels (the RGB head) would waste
 * most of a 64-row tile and so get flat tiles; forms 1 and 2 are the direct
 * forms for CPU implementations. */
struct tile {
    uint32_t wg_n, wg_m, rm, rn, bk, form;
};

bool vk_conv_direct(const struct vk_backend *be)
{
    return be->caps.conv_direct;
}

uint32_t vk_direct_rm(int cout)
{
    return cout <= 4 ? 4 : 8;
}

int vk_direct_m_pad(int cout)
{
    int rm = (int)vk_direct_rm(cout);
    return (cout + rm - 1) / rm * rm;
}

/* Direct form: 64 invocations of 4 pixels x 8 channels, the best of the
 * shapes measured on lavapipe (more accumulators spill); layers of few
 * pixels put channels across the lanes instead. */
static struct tile pick_tile(const struct vk_backend *be, int cout, uint64_t pixels)
{
    if (vk_conv_direct(be) && pixels < 256 && cout >= 32)
        return (struct tile){64, 1, 1, 4, 1, 2};
    if (vk_conv_direct(be))
        return (struct tile){64, 1, vk_direct_rm(cout), 4, 1, 1};
    if (cout > 16)
        return (struct tile){16, 16, 4, 4, 16, 0};
    if (cout > 4)
        return (struct tile){64, 4, 4, 4, 16, 0};
    return (struct tile){256, 1, 4, 1, 16, 0};
}

static tm_status record_conv(struct vk_backend *be, VkCommandBuffer cmd, VkDescriptorPool pool,
                             const struct tm_graph *g, const struct tm_node *nd,
                             const struct vk_node_io *io)
{
    const struct tm_tensor *out = &g->tensors[nd->out];
    uint64_t pixels = (uint64_t)out->h * (uint64_t)out->w;
    struct tile t = pick_tile(be, out->c, pixels);
    if (t.wg_n * t.wg_m > be->caps.max_wg_invocations ||
        4 * t.bk * (t.wg_m * t.rm + t.wg_n * t.rn) > be->caps.shared_memory)
        return tm_fail(be->ctx, TM_ERR_UNSUPPORTED,
                       "device too small for the conv shader (%u invocations, %u bytes shared)",
                       be->caps.max_wg_invocations, be->caps.shared_memory);
    struct dispatch d = {
        .shader = nd->op == TM_OP_CONVT2D ? VK_SH_CONVT2D : VK_SH_CONV2D,
        .spec = {t.wg_n, t.wg_m, t.rm, t.rn, t.bk, (uint32_t)nd->conv.kh,
                 (uint32_t)nd->conv.kw, (uint32_t)nd->conv.stride, (uint32_t)nd->conv.pad,
                 (uint32_t)(nd->op == TM_OP_CONV2D ? nd->conv.pad_mode : TM_PAD_ZERO),
                 (uint32_t)nd->act, io->has_b, t.form,
                 (uint32_t)(nd->op == TM_OP_CONV2D ? nd->conv.dil : 1)},
        .n_spec = 14,
        .views = {io->in[0], io->w, io->has_b ? io->b : (struct vk_view){0}, io->out},
        .push = {.slope = nd->slope, .m_pad = vk_direct_m_pad(out->c)},
        .groups = {div_up(pixels, t.wg_n * t.rn), div_up((uint64_t)out->c, t.wg_m * t.rm), 1},
    };
    if (t.form == 2) { /* channels across x, pixels across y */
        d.groups[0] = div_up((uint64_t)out->c, t.wg_n);
        d.groups[1] = div_up(pixels, t.rn);
    }
    if (t.form == 1 && nd->op == TM_OP_CONV2D) /* blocks of rn pixels in a row */
        d.groups[0] = div_up((uint64_t)out->h * div_up(out->w, t.rn), t.wg_n);
    if (t.form == 1 && nd->op == TM_OP_CONVT2D) { /* one stride phase per z */
        uint64_t s = (uint64_t)nd->conv.stride;
        d.groups[0] = div_up(div_up(out->h, s) * (uint64_t)div_up(out->w, s), t.wg_n * t.rn);
        d.groups[2] = (uint32_t)(s * s);
    }
    set_shapes(&d.push, &g->tensors[nd->in[0]], out);
    return record(be, cmd, pool, &d);
}

/* Smoothing: the statistics just taken (mean, var) blend with the carried
 * ones into the (mean, rstd) the apply reads. */
static tm_status record_ema(struct vk_backend *be, VkCommandBuffer cmd, VkDescriptorPool pool,
                            const struct tm_tensor *in, const struct tm_node *nd,
                            const struct vk_node_io *io)
{
    struct dispatch d = {
        .shader = VK_SH_NORM_EMA,
        .views = {io->scratch, io->carried, io->weight},
        .push = {.eps = nd->norm.eps},
        .groups = {div_up((uint64_t)in->c, 64), 1, 1},
    };
    set_shapes(&d.push, in, in);
    tm_status s = record(be, cmd, pool, &d);
    if (!s)
        vk_barrier_compute(be, cmd);
    return s;
}

static tm_status record_norm(struct vk_backend *be, VkCommandBuffer cmd, VkDescriptorPool pool,
                             const struct tm_graph *g, const struct tm_node *nd,
                             const struct vk_node_io *io)
{
    const struct tm_tensor *in = &g->tensors[nd->in[0]];
    struct vk_view stats = io->has_stats ? io->stats : io->scratch;
    tm_status s;
    if (!io->has_stats) {
        struct dispatch st = {
            .shader = VK_SH_NORM_STATS,
            .spec = {io->has_carried}, /* VAR, for norm_ema */
            .n_spec = io->has_carried ? 1 : 0,
            .views = {io->in[0], io->scratch},
            .push = {.eps = nd->norm.eps},
            .groups = {(uint32_t)in->c, 1, 1},
        };
        set_shapes(&st.push, in, in);
        if ((s = record(be, cmd, pool, &st)))
            return s;
        vk_barrier_compute(be, cmd);
        if (io->has_carried && (s = record_ema(be, cmd, pool, in, nd, io)))
            return s;
    }
    bool has_gamma = nd->w >= 0, has_beta = nd->b >= 0;
    struct dispatch ap = {
        .shader = VK_SH_NORM_APPLY,
        .spec = {(uint32_t)nd->act, has_gamma, has_beta},
        .n_spec = 3,
        .views = {io->in[0], stats, has_gamma ? io->w : (struct vk_view){0},
                  has_beta ? io->b : (struct vk_view){0}, io->out},
        .push = {.slope = nd->slope, .eps = nd->norm.eps},
        .groups = {eltwise_groups(be, (uint64_t)in->h * (uint64_t)in->w), (uint32_t)in->c, 1},
    };
    set_shapes(&ap.push, in, &g->tensors[nd->out]);
    return record(be, cmd, pool, &ap);
}

/* act, scale and PReLU: shaders/act.comp, its kind a specialization. */
static tm_status record_unary(struct vk_backend *be, VkCommandBuffer cmd, VkDescriptorPool pool,
                              const struct tm_graph *g, const struct tm_node *nd,
                              const struct vk_node_io *io)
{
    const struct tm_tensor *in = &g->tensors[nd->in[0]];
    uint64_t n = tm_value_numel(in);
    bool prelu = nd->op == TM_OP_PRELU;
    bool per_channel = false; /* tm_graph_infer allows 1 slope or one per channel */
    for (int i = 0; prelu && i < g->tensors[nd->w].ndim; i++)
        per_channel |= g->tensors[nd->w].dims[i] > 1;
    struct dispatch d = {
        .shader = VK_SH_ACT,
        .spec = {(uint32_t)(tm_op_takes_act(nd->op) ? nd->act : TM_ACT_NONE),
                 prelu ? 2u : nd->op == TM_OP_SCALE ? 1u : 0u, per_channel},
        .n_spec = 3,
        .views = {io->in[0], io->out, prelu ? io->w : (struct vk_view){0}},
        .push = {.slope = nd->slope, .alpha = nd->alpha, .n = (int32_t)n},
        .groups = {eltwise_groups(be, n), 1, 1},
    };
    set_shapes(&d.push, in, &g->tensors[nd->out]);
    return record(be, cmd, pool, &d);
}

static tm_status record_add(struct vk_backend *be, VkCommandBuffer cmd, VkDescriptorPool pool,
                            const struct tm_graph *g, const struct tm_node *nd,
                            const struct vk_node_io *io)
{
    const struct tm_tensor *out = &g->tensors[nd->out];
    uint64_t n = tm_value_numel(out);
    struct dispatch d = {
        .shader = VK_SH_ADD,
        .spec = {(uint32_t)nd->act},
        .n_spec = 1,
        .views = {io->in[0], io->in[1], io->out},
        .push = {.slope = nd->slope, .n = (int32_t)n},
        .groups = {eltwise_groups(be, n), 1, 1},
    };
    set_shapes(&d.push, &g->tensors[nd->in[0]], out);
    return record(be, cmd, pool, &d);
}

/* One copy per input into its run of the output; the copies write
 * disjoint ranges, so they need no barrier between them. */
static tm_status record_concat(struct vk_backend *be, VkCommandBuffer cmd,
                               VkDescriptorPool pool, const struct tm_graph *g,
                               const struct tm_node *nd, const struct vk_node_io *io)
{
    uint64_t off = 0;
    for (int k = 0; k < nd->n_in; k++) {
        const struct tm_tensor *in = &g->tensors[nd->in[k]];
        uint64_t n = tm_value_numel(in);
        struct dispatch d = {
            .shader = VK_SH_CONCAT,
            .views = {io->in[k], io->out},
            .push = {.n0 = (int32_t)off, .n = (int32_t)n},
            .groups = {eltwise_groups(be, n), 1, 1},
        };
        set_shapes(&d.push, in, &g->tensors[nd->out]);
        tm_status s = record(be, cmd, pool, &d);
        if (s)
            return s;
        off += n;
    }
    return TM_OK;
}

static tm_status record_resample(struct vk_backend *be, VkCommandBuffer cmd,
                                 VkDescriptorPool pool, const struct tm_graph *g,
                                 const struct tm_node *nd, const struct vk_node_io *io)
{
    const struct tm_tensor *out = &g->tensors[nd->out];
    uint64_t n = tm_value_numel(out);
    uint32_t kind = nd->op == TM_OP_UPSAMPLE ? 0 : nd->op == TM_OP_DEPTH2SPACE ? 1 : 2;
    struct dispatch d = {
        .shader = VK_SH_RESAMPLE,
        .spec = {kind, (uint32_t)nd->rs.factor, nd->rs.order == TM_D2S_TORCH},
        .n_spec = 3,
        .views = {io->in[0], io->out},
        .push = {.n = (int32_t)n},
        .groups = {eltwise_groups(be, n), 1, 1},
    };
    set_shapes(&d.push, &g->tensors[nd->in[0]], out);
    return record(be, cmd, pool, &d);
}

uint32_t vk_node_sets(const struct tm_node *nd, bool smooth)
{
    switch (nd->op) {
    case TM_OP_INSTNORM:
    case TM_OP_BATCHNORM:
        return smooth ? 3 : 2; /* statistics, (blend,) apply */
    case TM_OP_CONCAT:
        return (uint32_t)nd->n_in;
    default:
        return 1;
    }
}

tm_status vk_record_node(struct vk_backend *be, VkCommandBuffer cmd, VkDescriptorPool pool,
                         const struct tm_graph *g, const struct tm_node *nd,
                         const struct vk_node_io *io)
{
    switch (nd->op) {
    case TM_OP_CONV2D:
    case TM_OP_CONVT2D:
        return record_conv(be, cmd, pool, g, nd, io);
    case TM_OP_INSTNORM:
    case TM_OP_BATCHNORM:
        return record_norm(be, cmd, pool, g, nd, io);
    case TM_OP_ACT:
    case TM_OP_SCALE:
    case TM_OP_PRELU:
        return record_unary(be, cmd, pool, g, nd, io);
    case TM_OP_ADD:
        return record_add(be, cmd, pool, g, nd, io);
    case TM_OP_CONCAT:
        return record_concat(be, cmd, pool, g, nd, io);
    case TM_OP_UPSAMPLE:
    case TM_OP_DEPTH2SPACE:
    case TM_OP_SPACE2DEPTH:
        return record_resample(be, cmd, pool, g, nd, io);
    default:
        return tm_fail(be->ctx, TM_ERR_UNSUPPORTED, "vulkan: op %d not supported", (int)nd->op);
    }
}
