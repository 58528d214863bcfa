/* device.c: the logical device, its compute queue, the capability probe and
 * the one-off submission helpers used for uploads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk.h"

static tm_status pick_physical(struct vk_backend *be, int index)
{
    VkPhysicalDevice pds[16];
    uint32_t n = 16;
    char why[256];
    VK(be->fn.vkEnumeratePhysicalDevices(be->instance, &n, pds));
    if (index < 0 || (uint32_t)index >= n)
        return tm_fail(be->ctx, TM_ERR_DEVICE, "no Vulkan device with index %d (%u found)",
                       index, n);
    if (!vk_device_usable(&be->fn, pds[index], &be->queue_family, why, sizeof why))
        return tm_fail(be->ctx, TM_ERR_DEVICE, "Vulkan device %d unusable: %s", index, why);
    be->phys = pds[index];
    be->fn.vkGetPhysicalDeviceProperties(be->phys, &be->props);
    be->api = be->props.apiVersion < VK_TM_API_VERSION ? be->props.apiVersion
                                                       : VK_TM_API_VERSION;
    be->fn.vkGetPhysicalDeviceMemoryProperties(be->phys, &be->mem_props);
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

static void probe_features(struct vk_backend *be)
{
    if (be->api < VK_API_VERSION_1_2)
        return; /* both feature structs are core only from 1.2 */
    VkPhysicalDeviceBufferDeviceAddressFeatures bda = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_BUFFER_DEVICE_ADDRESS_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .pNext = &bda};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = &f16};
    be->fn.vkGetPhysicalDeviceFeatures2(be->phys, &f2);
    be->caps.fp16 = f16.shaderFloat16;
    /* Without it, tensors must fit maxStorageBufferRange (check_reach).
     * TRANSMUTE_VK_BDA=off acts as such a device, =all takes the address
     * path for every dispatch, not only those that need it (use_bda): both
     * for tests and timings. */
    const char *env = getenv("TRANSMUTE_VK_BDA");
    be->caps.bda = bda.bufferDeviceAddress && !(env && !strcmp(env, "off"));
    be->caps.bda_all = be->caps.bda && env && !strcmp(env, "all");
    /* CPU implementations want the direct conv forms, GPUs the shared-memory
     * GEMM. TRANSMUTE_VK_CONV=tiled|direct overrides, so that the GPU form is
     * tested on lavapipe too. */
    const char *conv = getenv("TRANSMUTE_VK_CONV");
    be->caps.conv_direct = conv && *conv ? !strcmp(conv, "direct")
                                         : be->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
}

static void probe_caps(struct vk_backend *be)
{
    VkPhysicalDeviceMaintenance4Properties m4 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
        .pNext = be->api >= VK_API_VERSION_1_3 ? &m4 : NULL};
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, .pNext = &m3};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &sg};
    be->fn.vkGetPhysicalDeviceProperties2(be->phys, &p2);
    const VkPhysicalDeviceLimits *l = &be->props.limits;
    struct vk_caps *c = &be->caps;
    c->subgroup_size = sg.subgroupSize;
    c->shared_memory = l->maxComputeSharedMemorySize;
    c->max_wg_invocations = l->maxComputeWorkGroupInvocations;
    memcpy(c->max_wg_size, l->maxComputeWorkGroupSize, sizeof c->max_wg_size);
    memcpy(c->max_wg_count, l->maxComputeWorkGroupCount, sizeof c->max_wg_count);
    c->max_storage_range = l->maxStorageBufferRange;
    /* Each memory block has one VkBuffer over all of it (malloc.c), so a
     * block is limited by both; maxBufferSize is known from 1.3 on. */
    c->max_alloc = m3.maxMemoryAllocationSize;
    if (be->api >= VK_API_VERSION_1_3 && m4.maxBufferSize < c->max_alloc)
        c->max_alloc = m4.maxBufferSize;
    /* 256 covers every device's storage-offset alignment in practice and
     * the non-coherent atom size, so mapped ranges flush cleanly. */
    c->align = 256;
    if (l->minStorageBufferOffsetAlignment > c->align)
        c->align = l->minStorageBufferOffsetAlignment;
    if (l->nonCoherentAtomSize > c->align)
        c->align = l->nonCoherentAtomSize;
    probe_features(be);
}

static void log_caps(struct vk_backend *be, int index)
{
    struct tm_device_info d;
    const struct vk_caps *c = &be->caps;
    vk_describe_device(be, index, &d);
    TM_INFO(be->ctx,
            "vulkan: %s (%s), subgroup %u, shared memory %u KiB, workgroup %u (%u,%u,%u), "
            "storage range %u MiB, allocation %llu MiB, buffer device address %s, fp16 %s, "
            "conv %s",
            d.name, d.driver, c->subgroup_size, c->shared_memory / 1024,
            c->max_wg_invocations, c->max_wg_size[0], c->max_wg_size[1], c->max_wg_size[2],
            c->max_storage_range >> 20, (unsigned long long)(c->max_alloc >> 20),
            c->bda ? "yes" : "no", c->fp16 ? "yes" : "no", c->conv_direct ? "direct" : "tiled");
}

static tm_status create_logical(struct vk_backend *be)
{
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = be->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkPhysicalDeviceBufferDeviceAddressFeatures bda = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_BUFFER_DEVICE_ADDRESS_FEATURES,
        .bufferDeviceAddress = VK_TRUE,
    };
    VkDeviceCreateInfo di = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = be->caps.bda ? &bda : NULL,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qi,
    };
    VK(be->fn.vkCreateDevice(be->phys, &di, NULL, &be->device));
    const char *missing = vk_load_device(&be->fn, be->device, be->caps.bda);
    if (missing)
        return tm_fail(be->ctx, TM_ERR_DEVICE, "Vulkan device lacks %s", missing);
    be->fn.vkGetDeviceQueue(be->device, be->queue_family, 0, &be->queue);
    VkCommandPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = be->queue_family,
    };
    VK(be->fn.vkCreateCommandPool(be->device, &pi, NULL, &be->cmd_pool));
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

tm_status vk_device_create(struct vk_backend *be, int index)
{
    tm_status s = pick_physical(be, index);
    if (!s) {
        probe_caps(be);
        s = create_logical(be);
    }
    if (!s)
        log_caps(be, index);
    return s;
}

void vk_device_destroy(struct vk_backend *be)
{
    if (!be->device)
        return;
    if (be->cmd_pool)
        be->fn.vkDestroyCommandPool(be->device, be->cmd_pool, NULL);
    be->fn.vkDestroyDevice(be->device, NULL);
    be->cmd_pool = VK_NULL_HANDLE;
    be->device = VK_NULL_HANDLE;
}

tm_status vk_oneshot_begin(struct vk_backend *be, VkCommandBuffer *cmd)
{
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = be->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    *cmd = VK_NULL_HANDLE;
    VK(be->fn.vkAllocateCommandBuffers(be->device, &ai, cmd));
    VK(be->fn.vkBeginCommandBuffer(*cmd, &bi));
    return TM_OK;
error:
    if (*cmd)
        be->fn.vkFreeCommandBuffers(be->device, be->cmd_pool, 1, cmd);
    *cmd = VK_NULL_HANDLE;
    return TM_ERR_DEVICE;
}

tm_status vk_submit_wait(struct vk_backend *be, VkCommandBuffer cmd, VkFence fence)
{
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cmd,
    };
    VK(be->fn.vkResetFences(be->device, 1, &fence));
    VK(be->fn.vkQueueSubmit(be->queue, 1, &si, fence));
    VK(be->fn.vkWaitForFences(be->device, 1, &fence, VK_TRUE, UINT64_MAX));
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

/* Ends, submits, waits for and frees a command buffer from vk_oneshot_begin. */
tm_status vk_oneshot_end(struct vk_backend *be, VkCommandBuffer cmd)
{
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence fence = VK_NULL_HANDLE;
    tm_status s = TM_ERR_DEVICE;
    VK(be->fn.vkEndCommandBuffer(cmd));
    VK(be->fn.vkCreateFence(be->device, &fi, NULL, &fence));
    s = vk_submit_wait(be, cmd, fence);
error:
    if (fence)
        be->fn.vkDestroyFence(be->device, fence, NULL);
    be->fn.vkFreeCommandBuffers(be->device, be->cmd_pool, 1, &cmd);
    return s;
}
