/* vk.h: private header of the Vulkan backend.
 *
 * Vulkan is reached only through dlopen("libvulkan.so.1") and the function
 * table below, so the library links and runs on machines without a loader
 * and keeps no global state: each backend owns its own table. */
#ifndef TM_VK_H
#define TM_VK_H

#define VK_NO_PROTOTYPES
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#include "backend.h"

/* The newest Vulkan version the backend uses (VkApplicationInfo): 1.2 for
 * bufferDeviceAddress, 1.3 for maxBufferSize. Older devices still run, at
 * their own version (vk_backend.api). */
#define VK_TM_API_VERSION VK_API_VERSION_1_3

/* ---- Function table (loader.c) ---------------------------------------- */

#define VK_GLOBAL_FUNCS(X)                   \
    X(vkCreateInstance)                      \
    X(vkEnumerateInstanceLayerProperties)    \
    X(vkEnumerateInstanceExtensionProperties)

#define VK_INSTANCE_FUNCS(X)                     \
    X(vkDestroyInstance)                         \
    X(vkEnumeratePhysicalDevices)                \
    X(vkGetPhysicalDeviceProperties)             \
    X(vkGetPhysicalDeviceProperties2)            \
    X(vkGetPhysicalDeviceFeatures2)              \
    X(vkGetPhysicalDeviceMemoryProperties)       \
    X(vkGetPhysicalDeviceQueueFamilyProperties)  \
    X(vkEnumerateDeviceExtensionProperties)      \
    X(vkCreateDevice)                            \
    X(vkGetDeviceProcAddr)

/* Present only when VK_EXT_debug_utils is enabled. */
#define VK_DEBUG_FUNCS(X)                \
    X(vkCreateDebugUtilsMessengerEXT)    \
    X(vkDestroyDebugUtilsMessengerEXT)

/* Present only when bufferDeviceAddress is enabled (Vulkan 1.2 core). */
#define VK_BDA_FUNCS(X) X(vkGetBufferDeviceAddress)

#define VK_DEVICE_FUNCS(X)                   \
    X(vkDestroyDevice)                       \
    X(vkGetDeviceQueue)                      \
    X(vkDeviceWaitIdle)                      \
    X(vkCreateBuffer)                        \
    X(vkDestroyBuffer)                       \
    X(vkGetBufferMemoryRequirements)         \
    X(vkAllocateMemory)                      \
    X(vkFreeMemory)                          \
    X(vkBindBufferMemory)                    \
    X(vkMapMemory)                           \
    X(vkUnmapMemory)                         \
    X(vkFlushMappedMemoryRanges)             \
    X(vkInvalidateMappedMemoryRanges)        \
    X(vkCreateShaderModule)                  \
    X(vkDestroyShaderModule)                 \
    X(vkCreatePipelineCache)                 \
    X(vkDestroyPipelineCache)                \
    X(vkGetPipelineCacheData)                \
    X(vkCreateComputePipelines)              \
    X(vkDestroyPipeline)                     \
    X(vkCreatePipelineLayout)                \
    X(vkDestroyPipelineLayout)               \
    X(vkCreateDescriptorSetLayout)           \
    X(vkDestroyDescriptorSetLayout)          \
    X(vkCreateDescriptorPool)                \
    X(vkDestroyDescriptorPool)               \
    X(vkAllocateDescriptorSets)              \
    X(vkUpdateDescriptorSets)                \
    X(vkCreateCommandPool)                   \
    X(vkDestroyCommandPool)                  \
    X(vkAllocateCommandBuffers)              \
    X(vkFreeCommandBuffers)                  \
    X(vkBeginCommandBuffer)                  \
    X(vkEndCommandBuffer)                    \
    X(vkCmdBindPipeline)                     \
    X(vkCmdBindDescriptorSets)               \
    X(vkCmdPushConstants)                    \
    X(vkCmdDispatch)                         \
    X(vkCmdPipelineBarrier)                  \
    X(vkCmdCopyBuffer)                       \
    X(vkCreateFence)                         \
    X(vkDestroyFence)                        \
    X(vkResetFences)                         \
    X(vkWaitForFences)                       \
    X(vkQueueSubmit)

#define VK_FN_FIELD(name) PFN_##name name;

struct vk_fns {
    void *lib; /* dlopen handle */
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    VK_GLOBAL_FUNCS(VK_FN_FIELD)
    VK_INSTANCE_FUNCS(VK_FN_FIELD)
    VK_DEBUG_FUNCS(VK_FN_FIELD)
    VK_DEVICE_FUNCS(VK_FN_FIELD)
    VK_BDA_FUNCS(VK_FN_FIELD)
};

/* Opens the loader and resolves the global functions; false with a reason. */
bool vk_load_loader(struct vk_fns *fn, char *why, size_t whylen);
/* Resolves instance-level functions; returns the first missing name or NULL. */
const char *vk_load_instance(struct vk_fns *fn, VkInstance inst, bool debug_utils);
const char *vk_load_device(struct vk_fns *fn, VkDevice dev, bool bda);
void vk_unload(struct vk_fns *fn);
const char *vk_result_str(VkResult r);

/* ---- Memory (malloc.c) ------------------------------------------------ */

struct vk_range {
    VkDeviceSize off, size;
};

/* One VkDeviceMemory with one VkBuffer over all of it; sub-allocations are
 * offsets into that buffer, so no per-tensor VkBuffer exists. */
struct vk_block {
    VkDeviceMemory mem;
    VkBuffer buf;
    VkDeviceAddress addr;    /* of buf; 0 unless the heap's usage asks for it */
    VkDeviceSize size;
    void *map;               /* persistent mapping when host visible */
    struct vk_range *free;   /* sorted by offset, coalesced */
    int n_free, cap_free;
};

struct vk_heap {
    const char *name;               /* "device" or "staging", for messages */
    VkMemoryPropertyFlags required, preferred;
    VkBufferUsageFlags usage;
    bool coherent;                  /* of the type chosen */
    struct vk_block **blocks;
    int n_blocks;
};

struct vk_alloc {
    struct vk_block *block;  /* NULL: nothing allocated */
    VkBuffer buf;
    VkDeviceAddress addr;    /* device address at off, or 0 */
    VkDeviceSize off, size;
    void *map;               /* host pointer at off, or NULL */
};

struct vk_backend;

void vk_heap_init(struct vk_heap *h, const char *name, VkMemoryPropertyFlags required,
                  VkMemoryPropertyFlags preferred, VkBufferUsageFlags usage);
tm_status vk_alloc(struct vk_backend *be, struct vk_heap *h, VkDeviceSize size,
                   struct vk_alloc *out);
void vk_free(struct vk_backend *be, struct vk_heap *h, struct vk_alloc *a);
void vk_heap_destroy(struct vk_backend *be, struct vk_heap *h);
/* Makes host writes visible to the device / device writes to the host when
 * the memory type is not coherent. */
tm_status vk_flush(struct vk_backend *be, const struct vk_heap *h, const struct vk_alloc *a);
tm_status vk_invalidate(struct vk_backend *be, const struct vk_heap *h,
                        const struct vk_alloc *a);

/* ---- Pipelines (pipeline.c) ------------------------------------------- */

enum vk_shader {
    VK_SH_CONV2D,
    VK_SH_CONVT2D,
    VK_SH_NORM_STATS,
    VK_SH_NORM_APPLY,
    VK_SH_NORM_EMA,
    VK_SH_ACT,
    VK_SH_ADD,
    VK_SH_CONCAT,
    VK_SH_RESAMPLE,
    VK_SH_COUNT
};

#define VK_MAX_SPEC 16
#define VK_MAX_BINDINGS 5

/* Mirrors the push block in shaders/common.glsl. addr is read only by the
 * buffer-device-address variant of the shaders: the tensor of each slot. */
struct vk_push {
    uint64_t addr[VK_MAX_BINDINGS];
    int32_t c_in, h_in, w_in;
    int32_t c_out, h_out, w_out;
    int32_t n0, n;
    float slope, eps;
    int32_t m_pad;
    float alpha;
};
_Static_assert(sizeof(struct vk_push) <= 128, "push constants are limited to 128 bytes");

struct vk_pipeline {
    enum vk_shader shader;
    bool bda;
    uint32_t spec[VK_MAX_SPEC];
    int n_spec;
    VkPipeline pipe;
};

tm_status vk_pipelines_init(struct vk_backend *be);
void vk_pipelines_destroy(struct vk_backend *be);
/* The pipeline for shader (its descriptor or, with bda, its device-address
 * variant) with specialization constants 0..n_spec-1 (each 32 bits), built
 * on first use and cached for the backend's lifetime. */
tm_status vk_pipeline_get(struct vk_backend *be, enum vk_shader sh, bool bda,
                          const uint32_t *spec, int n_spec, VkPipeline *out);

/* ---- Device and backend (instance.c, device.c) ------------------------ */

struct vk_caps {
    uint32_t subgroup_size;
    uint32_t shared_memory;
    uint32_t max_wg_invocations;
    uint32_t max_wg_size[3];
    uint32_t max_wg_count[3];
    uint32_t max_storage_range;  /* largest tensor a descriptor can reach */
    VkDeviceSize max_alloc;      /* largest VkDeviceMemory (and VkBuffer) */
    VkDeviceSize align;          /* sub-allocation alignment */
    bool fp16;
    bool bda;                    /* bufferDeviceAddress enabled on the device */
    bool bda_all;                /* every dispatch by address (testing, timing) */
    bool conv_direct;            /* direct conv forms (CPU devices) instead of tiled GEMM */
};

struct vk_backend {
    struct tm_backend base;
    tm_ctx *ctx;
    struct vk_fns fn;
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice phys;
    VkPhysicalDeviceProperties props;
    uint32_t api;                 /* version in use: the device's, capped at ours */
    VkPhysicalDeviceMemoryProperties mem_props;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool cmd_pool;
    struct vk_caps caps;
    struct vk_heap dev_heap, host_heap;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout pipe_layout;
    VkPipelineCache pipe_cache;
    char *pipe_cache_path;        /* NULL: not persisted */
    VkShaderModule modules[2][VK_SH_COUNT]; /* [bda][shader] */
    struct vk_pipeline *pipes;
    int n_pipes, cap_pipes;
    struct vk_alloc dummy;        /* bound to unused descriptor slots */
};

/* Reports a failed Vulkan call through tm_fail; used by VK() only. */
tm_status vk_check_fail(struct vk_backend *be, VkResult r, const char *call,
                        const char *file, int line);

/* Checks a VkResult-returning call; on failure records the call, the result
 * and the place, and jumps to the calling function's error: label. */
#define VK(call)                                                         \
    do {                                                                 \
        VkResult vk_res_ = (call);                                       \
        if (vk_res_ != VK_SUCCESS) {                                     \
            vk_check_fail(be, vk_res_, #call, __FILE__, __LINE__);       \
            goto error;                                                  \
        }                                                                \
    } while (0)

/* instance.c */
tm_status vk_instance_create(struct vk_backend *be, bool validate);
void vk_instance_destroy(struct vk_backend *be);
/* Whether a physical device can run the backend; why gets the reason if not. */
bool vk_device_usable(struct vk_fns *fn, VkPhysicalDevice pd, uint32_t *queue_family,
                      char *why, size_t whylen);

/* Fills d for the backend's physical device (for log lines). */
void vk_describe_device(struct vk_backend *be, int index, struct tm_device_info *d);

/* device.c */
tm_status vk_device_create(struct vk_backend *be, int index);
void vk_device_destroy(struct vk_backend *be);

/* Submits cmd, waits for it and returns; for one-off work (uploads). */
tm_status vk_submit_wait(struct vk_backend *be, VkCommandBuffer cmd, VkFence fence);
/* One-off command buffer recording helpers for uploads. */
tm_status vk_oneshot_begin(struct vk_backend *be, VkCommandBuffer *cmd);
tm_status vk_oneshot_end(struct vk_backend *be, VkCommandBuffer cmd);

/* ---- Ops (ops.c) ------------------------------------------------------ */

struct vk_params; /* backend_vk.c */

/* Everything record_node needs about a buffer: where it is, as a
 * descriptor range and as a device address (0 without bufferDeviceAddress). */
struct vk_view {
    VkBuffer buf;
    VkDeviceSize off, size;
    VkDeviceAddress addr;
};

/* A node's buffers, resolved: in/out are activations, w/b the conv weight
 * and bias, the norm gamma and beta or the PReLU slopes (w), stats precomputed running statistics
 * (batch norm in eval mode), scratch room for per-image statistics; in a
 * smoothing pass, carried the norm's carried statistics and weight the
 * run's weight of them (shaders/norm_ema.comp). */
struct vk_node_io {
    struct vk_view in[TM_MAX_IN], out, w, b, gamma, beta, stats, scratch, carried, weight;
    bool has_w, has_b, has_stats, has_carried;
};

/* CPU implementations run convolutions in the direct form (see
 * shaders/gemm_conv.glsl), which wants weights as [K][m_pad]: output
 * channels innermost, padded with zeros to a multiple of the channels one
 * invocation computes. */
bool vk_conv_direct(const struct vk_backend *be);
uint32_t vk_direct_rm(int cout);
int vk_direct_m_pad(int cout);

/* Descriptor sets vk_record_node takes for nd (smooth: in a smoothing pass). */
uint32_t vk_node_sets(const struct tm_node *nd, bool smooth);
/* Records one node's dispatches (descriptor sets come from pool). */
tm_status vk_record_node(struct vk_backend *be, VkCommandBuffer cmd, VkDescriptorPool pool,
                         const struct tm_graph *g, const struct tm_node *nd,
                         const struct vk_node_io *io);
void vk_barrier_compute(struct vk_backend *be, VkCommandBuffer cmd);
/* vkCmdCopyBuffer of one range, in pieces a driver can take. */
void vk_copy(struct vk_backend *be, VkCommandBuffer cmd, VkBuffer src, VkDeviceSize src_off,
             VkBuffer dst, VkDeviceSize dst_off, VkDeviceSize size);
void vk_barrier(struct vk_backend *be, VkCommandBuffer cmd, VkPipelineStageFlags src,
                VkAccessFlags src_access, VkPipelineStageFlags dst, VkAccessFlags dst_access);

#endif
