/* pipeline.c: compute pipelines, built on first use and kept for the
 * backend's lifetime, and the on-disk VkPipelineCache that makes the next
 * process skip shader compilation.
 *
 * Every shader uses the same interface (VK_MAX_BINDINGS storage buffers in
 * set 0 and one push block), so a single set layout and pipeline layout
 * serve all pipelines; the buffer-device-address variants simply leave the
 * set unused. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vk.h"

#include "act.spv.h"
#include "act_bda.spv.h"
#include "add.spv.h"
#include "add_bda.spv.h"
#include "concat.spv.h"
#include "concat_bda.spv.h"
#include "conv2d.spv.h"
#include "conv2d_bda.spv.h"
#include "convt2d.spv.h"
#include "convt2d_bda.spv.h"
#include "norm_apply.spv.h"
#include "norm_apply_bda.spv.h"
#include "norm_ema.spv.h"
#include "norm_ema_bda.spv.h"
#include "norm_stats.spv.h"
#include "norm_stats_bda.spv.h"
#include "resample.spv.h"
#include "resample_bda.spv.h"

/* code[0]: tensors through descriptors, code[1]: through device addresses. */
#define SHADER(name) {#name, {tm_spv_##name, tm_spv_##name##_bda}, \
                      {sizeof tm_spv_##name, sizeof tm_spv_##name##_bda}}
static const struct {
    const char *name;
    const uint32_t *code[2];
    size_t size[2];
} shaders[VK_SH_COUNT] = {
    [VK_SH_CONV2D] = SHADER(conv2d),
    [VK_SH_CONVT2D] = SHADER(convt2d),
    [VK_SH_NORM_STATS] = SHADER(norm_stats),
    [VK_SH_NORM_APPLY] = SHADER(norm_apply),
    [VK_SH_NORM_EMA] = SHADER(norm_ema),
    [VK_SH_ACT] = SHADER(act),
    [VK_SH_ADD] = SHADER(add),
    [VK_SH_CONCAT] = SHADER(concat),
    [VK_SH_RESAMPLE] = SHADER(resample),
};
#undef SHADER

/* ---- Pipeline cache file ------------------------------------------------ */

static char *cache_path(struct vk_backend *be)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[4096];
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/transmute", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.cache/transmute", home);
    else
        return NULL;
    char uuid[2 * VK_UUID_SIZE + 1];
    for (unsigned i = 0; i < VK_UUID_SIZE; i++)
        snprintf(uuid + 2 * i, 3, "%02x", be->props.pipelineCacheUUID[i]);
    size_t len = strlen(dir) + 64 + sizeof uuid;
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "%s/pipelines-%04x-%04x-%s.bin", dir, be->props.vendorID,
                 be->props.deviceID, uuid);
    return path;
}

/* Whether data starts with a header this device wrote; a cache from another
 * driver version is useless and feeding garbage to a driver is risky. */
static bool cache_header_ok(struct vk_backend *be, const unsigned char *data, size_t size)
{
    VkPipelineCacheHeaderVersionOne h;
    if (size < sizeof h)
        return false;
    memcpy(&h, data, sizeof h);
    return h.headerSize >= sizeof h && h.headerSize <= size &&
           h.headerVersion == VK_PIPELINE_CACHE_HEADER_VERSION_ONE &&
           h.vendorID == be->props.vendorID && h.deviceID == be->props.deviceID &&
           !memcmp(h.pipelineCacheUUID, be->props.pipelineCacheUUID, VK_UUID_SIZE);
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *data = NULL;
    long len = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    if (len > 0 && len < (1L << 30) && !fseek(f, 0, SEEK_SET)) {
        data = malloc((size_t)len);
        if (data && fread(data, 1, (size_t)len, f) != (size_t)len) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    *size = data ? (size_t)len : 0;
    return data;
}

static tm_status cache_create(struct vk_backend *be)
{
    const char *off = getenv("TRANSMUTE_NO_PIPELINE_CACHE");
    if (!(off && !strcmp(off, "1")))
        be->pipe_cache_path = cache_path(be);
    size_t size = 0;
    unsigned char *data = be->pipe_cache_path ? read_file(be->pipe_cache_path, &size) : NULL;
    if (data && !cache_header_ok(be, data, size)) {
        TM_INFO(be->ctx, "vulkan: ignoring pipeline cache %s (corrupt or from another driver)",
                be->pipe_cache_path);
        free(data);
        data = NULL;
        size = 0;
    }
    VkPipelineCacheCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = size,
        .pInitialData = data,
    };
    VkResult r = be->fn.vkCreatePipelineCache(be->device, &ci, NULL, &be->pipe_cache);
    if (r != VK_SUCCESS && data) {
        TM_INFO(be->ctx, "vulkan: pipeline cache %s rejected by the driver", be->pipe_cache_path);
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = be->fn.vkCreatePipelineCache(be->device, &ci, NULL, &be->pipe_cache);
    }
    free(data);
    VK(r);
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

static int mkdir_parents(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int r = mkdir(path, 0755);
        *p = '/';
        if (r && errno != EEXIST)
            return -1;
    }
    return 0;
}

/* Writes to a temporary file in the same directory, then renames it over the
 * cache, so a crash or a concurrent process never leaves a torn file. */
static int write_atomic(char *path, const void *data, size_t size)
{
    if (mkdir_parents(path))
        return -1;
    size_t len = strlen(path) + 8;
    char *tmp = malloc(len);
    if (!tmp)
        return -1;
    snprintf(tmp, len, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    int ok = fd >= 0;
    const char *p = data;
    while (ok && size) {
        ssize_t n = write(fd, p, size);
        ok = n > 0;
        p += ok ? n : 0;
        size -= ok ? (size_t)n : 0;
    }
    ok = ok && !fsync(fd);
    if (fd >= 0)
        ok = !close(fd) && ok;
    ok = ok && !rename(tmp, path);
    if (!ok && fd >= 0)
        unlink(tmp);
    free(tmp);
    return ok ? 0 : -1;
}

static void cache_save(struct vk_backend *be)
{
    size_t size = 0;
    void *data = NULL;
    if (be->fn.vkGetPipelineCacheData(be->device, be->pipe_cache, &size, NULL) == VK_SUCCESS &&
        size)
        data = malloc(size);
    if (data &&
        be->fn.vkGetPipelineCacheData(be->device, be->pipe_cache, &size, data) == VK_SUCCESS &&
        !write_atomic(be->pipe_cache_path, data, size))
        TM_DEBUG(be->ctx, "vulkan: saved pipeline cache %s (%zu bytes)", be->pipe_cache_path,
                 size);
    else
        TM_WARN(be->ctx, "vulkan: could not save pipeline cache %s: %s", be->pipe_cache_path,
                errno ? strerror(errno) : "no data");
    free(data);
}

/* ---- Layouts and pipelines --------------------------------------------- */

static tm_status layouts_create(struct vk_backend *be)
{
    VkDescriptorSetLayoutBinding b[VK_MAX_BINDINGS];
    for (int i = 0; i < VK_MAX_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = (uint32_t)i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo si = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = VK_MAX_BINDINGS,
        .pBindings = b,
    };
    VK(be->fn.vkCreateDescriptorSetLayout(be->device, &si, NULL, &be->set_layout));
    VkPushConstantRange pr = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        .size = sizeof(struct vk_push),
    };
    VkPipelineLayoutCreateInfo li = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &be->set_layout,
        .pushConstantRangeCount = 1,
        .pPushConstantRanges = &pr,
    };
    VK(be->fn.vkCreatePipelineLayout(be->device, &li, NULL, &be->pipe_layout));
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

tm_status vk_pipelines_init(struct vk_backend *be)
{
    tm_status s = layouts_create(be);
    return s ? s : cache_create(be);
}

void vk_pipelines_destroy(struct vk_backend *be)
{
    VkDevice d = be->device;
    if (!d)
        return;
    for (int i = 0; i < be->n_pipes; i++)
        be->fn.vkDestroyPipeline(d, be->pipes[i].pipe, NULL);
    free(be->pipes);
    be->pipes = NULL;
    be->n_pipes = be->cap_pipes = 0;
    for (int v = 0; v < 2; v++)
        for (int i = 0; i < VK_SH_COUNT; i++)
            if (be->modules[v][i])
                be->fn.vkDestroyShaderModule(d, be->modules[v][i], NULL);
    memset(be->modules, 0, sizeof be->modules);
    if (be->pipe_cache && be->pipe_cache_path)
        cache_save(be);
    if (be->pipe_cache)
        be->fn.vkDestroyPipelineCache(d, be->pipe_cache, NULL);
    free(be->pipe_cache_path);
    be->pipe_cache_path = NULL;
    be->pipe_cache = VK_NULL_HANDLE;
    if (be->pipe_layout)
        be->fn.vkDestroyPipelineLayout(d, be->pipe_layout, NULL);
    if (be->set_layout)
        be->fn.vkDestroyDescriptorSetLayout(d, be->set_layout, NULL);
    be->pipe_layout = VK_NULL_HANDLE;
    be->set_layout = VK_NULL_HANDLE;
}

static tm_status module_get(struct vk_backend *be, enum vk_shader sh, bool bda,
                            VkShaderModule *out)
{
    VkShaderModule *m = &be->modules[bda][sh];
    if (!*m) {
        VkShaderModuleCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
            .codeSize = shaders[sh].size[bda],
            .pCode = shaders[sh].code[bda],
        };
        VK(be->fn.vkCreateShaderModule(be->device, &ci, NULL, m));
    }
    *out = *m;
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

static tm_status pipeline_build(struct vk_backend *be, enum vk_shader sh, bool bda,
                                const uint32_t *spec, int n_spec, VkPipeline *out)
{
    VkShaderModule mod;
    tm_status s = module_get(be, sh, bda, &mod);
    if (s)
        return s;
    VkSpecializationMapEntry map[VK_MAX_SPEC];
    for (int i = 0; i < n_spec; i++)
        map[i] = (VkSpecializationMapEntry){(uint32_t)i, (uint32_t)(4 * i), 4};
    VkSpecializationInfo si = {
        .mapEntryCount = (uint32_t)n_spec,
        .pMapEntries = map,
        .dataSize = 4 * (size_t)n_spec,
        .pData = spec,
    };
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = mod,
            .pName = "main",
            .pSpecializationInfo = n_spec ? &si : NULL,
        },
        .layout = be->pipe_layout,
    };
    VK(be->fn.vkCreateComputePipelines(be->device, be->pipe_cache, 1, &ci, NULL, out));
    TM_DEBUG(be->ctx, "vulkan: built pipeline %s%s/%d", shaders[sh].name, bda ? "_bda" : "",
             n_spec);
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

tm_status vk_pipeline_get(struct vk_backend *be, enum vk_shader sh, bool bda,
                          const uint32_t *spec, int n_spec, VkPipeline *out)
{
    for (int i = 0; i < be->n_pipes; i++) {
        const struct vk_pipeline *p = &be->pipes[i];
        if (p->shader == sh && p->bda == bda && p->n_spec == n_spec &&
            !memcmp(p->spec, spec, sizeof *spec * (size_t)n_spec)) {
            *out = p->pipe;
            return TM_OK;
        }
    }
    if (be->n_pipes == be->cap_pipes) {
        int cap = be->cap_pipes ? 2 * be->cap_pipes : 32;
        struct vk_pipeline *np = realloc(be->pipes, sizeof *np * (size_t)cap);
        if (!np)
            return tm_fail(be->ctx, TM_ERR_NOMEM, "out of host memory");
        be->pipes = np;
        be->cap_pipes = cap;
    }
    struct vk_pipeline *p = &be->pipes[be->n_pipes];
    memset(p, 0, sizeof *p);
    tm_status s = pipeline_build(be, sh, bda, spec, n_spec, &p->pipe);
    if (s)
        return s;
    p->shader = sh;
    p->bda = bda;
    p->n_spec = n_spec;
    memcpy(p->spec, spec, sizeof *spec * (size_t)n_spec);
    be->n_pipes++;
    *out = p->pipe;
    return TM_OK;
}
