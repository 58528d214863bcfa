/* loader.c: opens the Vulkan loader at run time and fills the function table.
 * dlopen instead of linking keeps the library usable (CPU fallback) on
 * machines with no Vulkan loader installed. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "vk.h"

struct fn_entry {
    const char *name;
    size_t off;
};

#define FN_ENTRY(name) {#name, offsetof(struct vk_fns, name)},
static const struct fn_entry global_fns[] = {VK_GLOBAL_FUNCS(FN_ENTRY)};
static const struct fn_entry instance_fns[] = {VK_INSTANCE_FUNCS(FN_ENTRY)};
static const struct fn_entry debug_fns[] = {VK_DEBUG_FUNCS(FN_ENTRY)};
static const struct fn_entry device_fns[] = {VK_DEVICE_FUNCS(FN_ENTRY)};
static const struct fn_entry bda_fns[] = {VK_BDA_FUNCS(FN_ENTRY)};
#undef FN_ENTRY

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Resolves a list through vkGetInstanceProcAddr (dev == NULL) or
 * vkGetDeviceProcAddr; returns the first missing name or NULL. */
static const char *load_list(struct vk_fns *fn, const struct fn_entry *e, size_t n,
                             VkInstance inst, VkDevice dev)
{
    for (size_t i = 0; i < n; i++) {
        PFN_vkVoidFunction p = dev ? fn->vkGetDeviceProcAddr(dev, e[i].name)
                                   : fn->vkGetInstanceProcAddr(inst, e[i].name);
        if (!p)
            return e[i].name;
        memcpy((char *)fn + e[i].off, &p, sizeof p);
    }
    return NULL;
}

bool vk_load_loader(struct vk_fns *fn, char *why, size_t whylen)
{
    memset(fn, 0, sizeof *fn);
    fn->lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!fn->lib) {
        snprintf(why, whylen, "no Vulkan loader (%s)", dlerror());
        return false;
    }
    void *sym = dlsym(fn->lib, "vkGetInstanceProcAddr");
    const char *missing = "vkGetInstanceProcAddr";
    if (sym) {
        memcpy(&fn->vkGetInstanceProcAddr, &sym, sizeof sym);
        missing = load_list(fn, global_fns, N_OF(global_fns), NULL, NULL);
    }
    if (missing) {
        snprintf(why, whylen, "the Vulkan loader lacks %s", missing);
        dlclose(fn->lib);
        fn->lib = NULL;
        return false;
    }
    return true;
}

const char *vk_load_instance(struct vk_fns *fn, VkInstance inst, bool debug_utils)
{
    const char *missing = load_list(fn, instance_fns, N_OF(instance_fns), inst, NULL);
    if (!missing && debug_utils)
        missing = load_list(fn, debug_fns, N_OF(debug_fns), inst, NULL);
    return missing;
}

const char *vk_load_device(struct vk_fns *fn, VkDevice dev, bool bda)
{
    const char *missing = load_list(fn, device_fns, N_OF(device_fns), VK_NULL_HANDLE, dev);
    if (!missing && bda)
        missing = load_list(fn, bda_fns, N_OF(bda_fns), VK_NULL_HANDLE, dev);
    return missing;
}

void vk_unload(struct vk_fns *fn)
{
    if (fn->lib)
        dlclose(fn->lib);
    memset(fn, 0, sizeof *fn);
}

const char *vk_result_str(VkResult r)
{
    switch (r) {
#define R(x) case x: return #x;
    R(VK_SUCCESS) R(VK_NOT_READY) R(VK_TIMEOUT) R(VK_INCOMPLETE)
    R(VK_ERROR_OUT_OF_HOST_MEMORY) R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    R(VK_ERROR_INITIALIZATION_FAILED) R(VK_ERROR_DEVICE_LOST)
    R(VK_ERROR_MEMORY_MAP_FAILED) R(VK_ERROR_LAYER_NOT_PRESENT)
    R(VK_ERROR_EXTENSION_NOT_PRESENT) R(VK_ERROR_FEATURE_NOT_PRESENT)
    R(VK_ERROR_INCOMPATIBLE_DRIVER) R(VK_ERROR_TOO_MANY_OBJECTS)
    R(VK_ERROR_FORMAT_NOT_SUPPORTED) R(VK_ERROR_FRAGMENTED_POOL)
    R(VK_ERROR_UNKNOWN) R(VK_ERROR_OUT_OF_POOL_MEMORY)
    R(VK_ERROR_INVALID_EXTERNAL_HANDLE) R(VK_ERROR_FRAGMENTATION)
    R(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS) R(VK_PIPELINE_COMPILE_REQUIRED)
    R(VK_ERROR_VALIDATION_FAILED_EXT)
#undef R
    default: return "VK_ERROR_(unknown)";
    }
}
