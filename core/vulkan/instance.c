/* instance.c: the Vulkan instance, the validation messenger and the device
 * listing used by tm_devices_list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk.h"

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

static bool has_layer(struct vk_fns *fn, const char *name)
{
    uint32_t n = 0;
    if (fn->vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n)
        return false;
    VkLayerProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && fn->vkEnumerateInstanceLayerProperties(&n, p) >= 0)
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(p[i].layerName, name);
    free(p);
    return found;
}

/* Whether the loader (layer NULL) or the layer offers an instance extension. */
static bool has_instance_ext(struct vk_fns *fn, const char *layer, const char *name)
{
    uint32_t n = 0;
    if (fn->vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || !n)
        return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && fn->vkEnumerateInstanceExtensionProperties(layer, &n, p) >= 0)
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(p[i].extensionName, name);
    free(p);
    return found;
}

/* Every validation warning or error is a bug in this backend: the tests fail
 * on a non-zero count, so each one is counted and logged loudly. */
static VKAPI_ATTR VkBool32 VKAPI_CALL debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                              VkDebugUtilsMessageTypeFlagsEXT type,
                                              const VkDebugUtilsMessengerCallbackDataEXT *data,
                                              void *user)
{
    tm_ctx *ctx = user;
    ctx->validation_messages++;
    tm_log(ctx, TM_LOG_ERR, "vulkan %s: %s",
           sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
           data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE;
}

static VkDebugUtilsMessengerCreateInfoEXT messenger_info(tm_ctx *ctx)
{
    return (VkDebugUtilsMessengerCreateInfoEXT){
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = debug_cb,
        .pUserData = ctx,
    };
}

static tm_status check_validation(struct vk_backend *be, bool *sync_val)
{
    if (!has_layer(&be->fn, VALIDATION_LAYER))
        return tm_fail(be->ctx, TM_ERR_DEVICE,
                       "validation requested but %s is not installed", VALIDATION_LAYER);
    if (!has_instance_ext(&be->fn, NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) &&
        !has_instance_ext(&be->fn, VALIDATION_LAYER, VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
        return tm_fail(be->ctx, TM_ERR_DEVICE,
                       "validation requested but %s is not available",
                       VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    *sync_val = has_instance_ext(&be->fn, VALIDATION_LAYER,
                                 VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
    return TM_OK;
}

tm_status vk_instance_create(struct vk_backend *be, bool validate)
{
    bool sync_val = false;
    if (validate && check_validation(be, &sync_val))
        return TM_ERR_DEVICE;

    const char *layers[] = {VALIDATION_LAYER};
    const char *exts[2] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME,
                           VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME};
    VkValidationFeatureEnableEXT enables[] = {
        VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    VkDebugUtilsMessengerCreateInfoEXT mi = messenger_info(be->ctx);
    VkValidationFeaturesEXT vf = {
        .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
        .pNext = &mi,
        .enabledValidationFeatureCount = 1,
        .pEnabledValidationFeatures = enables,
    };
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "transmute",
        .pEngineName = "transmute",
        .apiVersion = VK_TM_API_VERSION,
    };
    /* Chaining the messenger here also reports problems inside
     * vkCreateInstance and vkDestroyInstance themselves. */
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = validate ? (sync_val ? (const void *)&vf : (const void *)&mi) : NULL,
        .pApplicationInfo = &app,
        .enabledLayerCount = validate ? 1 : 0,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = validate ? (sync_val ? 2 : 1) : 0,
        .ppEnabledExtensionNames = exts,
    };
    VK(be->fn.vkCreateInstance(&ci, NULL, &be->instance));
    const char *missing = vk_load_instance(&be->fn, be->instance, validate);
    if (missing)
        return tm_fail(be->ctx, TM_ERR_DEVICE, "Vulkan instance lacks %s", missing);
    if (validate)
        VK(be->fn.vkCreateDebugUtilsMessengerEXT(be->instance, &mi, NULL, &be->messenger));
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

void vk_instance_destroy(struct vk_backend *be)
{
    if (be->messenger)
        be->fn.vkDestroyDebugUtilsMessengerEXT(be->instance, be->messenger, NULL);
    if (be->instance)
        be->fn.vkDestroyInstance(be->instance, NULL);
    be->messenger = VK_NULL_HANDLE;
    be->instance = VK_NULL_HANDLE;
}

bool vk_device_usable(struct vk_fns *fn, VkPhysicalDevice pd, uint32_t *queue_family,
                      char *why, size_t whylen)
{
    VkPhysicalDeviceProperties p;
    fn->vkGetPhysicalDeviceProperties(pd, &p);
    if (p.apiVersion < VK_API_VERSION_1_1) {
        snprintf(why, whylen, "%s supports only Vulkan %u.%u (1.1 needed)", p.deviceName,
                 VK_API_VERSION_MAJOR(p.apiVersion), VK_API_VERSION_MINOR(p.apiVersion));
        return false;
    }
    uint32_t n = 0;
    fn->vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[32];
    if (n > 32)
        n = 32;
    fn->vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    for (uint32_t i = 0; i < n; i++) {
        if (q[i].queueCount && (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) {
            *queue_family = i;
            return true;
        }
    }
    snprintf(why, whylen, "%s has no compute queue", p.deviceName);
    return false;
}

static tm_device_kind kind_of(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return TM_DEVICE_VK_DISCRETE;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return TM_DEVICE_VK_INTEGRATED;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return TM_DEVICE_VK_VIRTUAL;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return TM_DEVICE_VK_SOFTWARE;
    default: return TM_DEVICE_VK_OTHER;
    }
}

static bool has_device_ext(struct vk_fns *fn, VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (fn->vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || !n)
        return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && fn->vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p) >= 0)
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(p[i].extensionName, name);
    free(p);
    return found;
}

static void driver_string(struct vk_fns *fn, VkPhysicalDevice pd,
                          const VkPhysicalDeviceProperties *p, char *out, size_t len)
{
    uint32_t v = p->driverVersion;
    if (p->apiVersion >= VK_API_VERSION_1_2 ||
        has_device_ext(fn, pd, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME)) {
        VkPhysicalDeviceDriverProperties dp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                          .pNext = &dp};
        fn->vkGetPhysicalDeviceProperties2(pd, &p2);
        snprintf(out, len, "%.60s %.60s", dp.driverName, dp.driverInfo);
        return;
    }
    if (p->vendorID == 0x10de) /* NVIDIA packs 10.8.8.6 bits */
        snprintf(out, len, "%u.%u.%u", v >> 22, (v >> 14) & 0xff, (v >> 6) & 0xff);
    else
        snprintf(out, len, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
                 VK_API_VERSION_PATCH(v));
}

static uint64_t largest_local_heap(struct vk_fns *fn, VkPhysicalDevice pd)
{
    VkPhysicalDeviceMemoryProperties mp;
    fn->vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    uint64_t best = 0;
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if ((mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            mp.memoryHeaps[i].size > best)
            best = mp.memoryHeaps[i].size;
    return best;
}

static void fill_info(struct vk_fns *fn, VkPhysicalDevice pd, int index,
                      struct tm_device_info *d)
{
    VkPhysicalDeviceProperties p;
    fn->vkGetPhysicalDeviceProperties(pd, &p);
    memset(d, 0, sizeof *d);
    d->kind = kind_of(p.deviceType);
    d->index = index;
    snprintf(d->name, sizeof d->name, "%s", p.deviceName);
    driver_string(fn, pd, &p, d->driver, sizeof d->driver);
    d->memory = largest_local_heap(fn, pd);
}

static int list_devices(struct vk_fns *fn, VkInstance inst, struct tm_device_info *list,
                        int max, char *why, size_t whylen)
{
    VkPhysicalDevice pds[16];
    uint32_t n = 16;
    VkResult r = fn->vkEnumeratePhysicalDevices(inst, &n, pds);
    if (r < 0 || n == 0) {
        snprintf(why, whylen, "no Vulkan device found (no driver installed?)");
        return 0;
    }
    int found = 0;
    for (uint32_t i = 0; i < n && found < max; i++) {
        uint32_t qf;
        if (vk_device_usable(fn, pds[i], &qf, why, whylen))
            fill_info(fn, pds[i], (int)i, &list[found++]);
    }
    return found;
}

int tm_vk_enumerate(struct tm_device_info *list, int max, char *why, size_t whylen)
{
    struct vk_fns fn;
    if (!vk_load_loader(&fn, why, whylen))
        return 0;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
    VkInstance inst = VK_NULL_HANDLE;
    int found = 0;
    VkResult r = fn.vkCreateInstance(&ci, NULL, &inst);
    if (r != VK_SUCCESS) {
        snprintf(why, whylen, "no usable Vulkan driver (vkCreateInstance: %s)",
                 vk_result_str(r));
    } else {
        const char *missing = vk_load_instance(&fn, inst, false);
        if (missing)
            snprintf(why, whylen, "Vulkan instance lacks %s", missing);
        else
            found = list_devices(&fn, inst, list, max, why, whylen);
        if (fn.vkDestroyInstance)
            fn.vkDestroyInstance(inst, NULL);
    }
    vk_unload(&fn);
    return found;
}

void vk_describe_device(struct vk_backend *be, int index, struct tm_device_info *d)
{
    fill_info(&be->fn, be->phys, index, d);
}
