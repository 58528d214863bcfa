/* malloc.c: sub-allocator for device and staging memory.
 *
 * Drivers limit the number of VkDeviceMemory objects and allocating them is
 * slow, so memory comes in big blocks (BLOCK_SIZE, or one whole allocation
 * when it is larger), each with a single VkBuffer spanning it. A tensor is a
 * range of a block: first fit, aligned, ranges returned and coalesced on
 * free, and a block that becomes empty is released. A tensor larger than
 * BLOCK_SIZE gets a block of its own, up to the device's allocation limit
 * (caps.max_alloc). */
#include <stdlib.h>
#include <string.h>

#include "vk.h"

#define BLOCK_SIZE ((VkDeviceSize)64 << 20)

void vk_heap_init(struct vk_heap *h, const char *name, VkMemoryPropertyFlags required,
                  VkMemoryPropertyFlags preferred, VkBufferUsageFlags usage)
{
    memset(h, 0, sizeof *h);
    h->name = name;
    h->required = required;
    h->preferred = preferred;
    h->usage = usage;
}

/* Index of the memory type allowed by bits with the required flags, the
 * one with the most preferred flags; -1 when none. */
static int pick_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits,
                     VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred)
{
    int best = -1, best_score = -1;
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (f & required) != required)
            continue;
        int score = __builtin_popcount(f & preferred);
        if (score > best_score) {
            best = (int)i;
            best_score = score;
        }
    }
    return best;
}

static void block_free(struct vk_backend *be, struct vk_block *b)
{
    if (b->buf)
        be->fn.vkDestroyBuffer(be->device, b->buf, NULL);
    if (b->mem)
        be->fn.vkFreeMemory(be->device, b->mem, NULL);
    free(b->free);
    free(b);
}

static tm_status nomem(struct vk_backend *be, struct vk_heap *h, VkDeviceSize size,
                       VkResult r)
{
    return tm_fail(be->ctx, TM_ERR_NOMEM,
                   "out of %s memory: cannot allocate %llu bytes (%.1f MiB) (%s)", h->name,
                   (unsigned long long)size, (double)size / (1 << 20), vk_result_str(r));
}

/* A single tensor beyond what one allocation may hold: splitting it over
 * blocks would need every shader to handle several addresses. */
static tm_status too_large(struct vk_backend *be, struct vk_heap *h, VkDeviceSize size)
{
    return tm_fail(be->ctx, TM_ERR_NOMEM,
                   "out of %s memory: a %.1f MiB buffer exceeds this Vulkan device's largest "
                   "allocation (maxMemoryAllocationSize/maxBufferSize %.1f MiB)",
                   h->name, (double)size / (1 << 20), (double)be->caps.max_alloc / (1 << 20));
}

static tm_status block_memory(struct vk_backend *be, struct vk_heap *h, struct vk_block *b)
{
    VkMemoryRequirements req;
    be->fn.vkGetBufferMemoryRequirements(be->device, b->buf, &req);
    int type = pick_type(&be->mem_props, req.memoryTypeBits, h->required, h->preferred);
    if (type < 0)
        return tm_fail(be->ctx, TM_ERR_DEVICE, "no Vulkan memory type fits %s buffers",
                       h->name);
    if (req.size > be->caps.max_alloc)
        return too_large(be, h, req.size);
    /* Shaders reach tensors through the buffer's address when the heap's
     * buffers ask for one; the memory must then allow it too. */
    bool bda = h->usage & VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT;
    VkMemoryAllocateFlagsInfo fi = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
        .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT,
    };
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .pNext = bda ? &fi : NULL,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)type,
    };
    VkResult r = be->fn.vkAllocateMemory(be->device, &ai, NULL, &b->mem);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
        return nomem(be, h, b->size, r);
    VK(r);
    VK(be->fn.vkBindBufferMemory(be->device, b->buf, b->mem, 0));
    if (bda) {
        VkBufferDeviceAddressInfo ai2 = {
            .sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
            .buffer = b->buf,
        };
        b->addr = be->fn.vkGetBufferDeviceAddress(be->device, &ai2);
    }
    VkMemoryPropertyFlags f = be->mem_props.memoryTypes[type].propertyFlags;
    h->coherent = f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)
        VK(be->fn.vkMapMemory(be->device, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map));
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

static tm_status block_new(struct vk_backend *be, struct vk_heap *h, VkDeviceSize size,
                           struct vk_block **out)
{
    struct vk_block *b = calloc(1, sizeof *b);
    struct vk_block **list = realloc(h->blocks, sizeof *list * (size_t)(h->n_blocks + 1));
    if (list)
        h->blocks = list;
    if (!b || !list || !(b->free = malloc(sizeof *b->free))) {
        free(b);
        return tm_fail(be->ctx, TM_ERR_NOMEM, "out of host memory");
    }
    b->size = size;
    b->free[0] = (struct vk_range){0, size};
    b->n_free = b->cap_free = 1;
    VkBufferCreateInfo bi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = h->usage,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    tm_status s = TM_ERR_DEVICE;
    VkResult r = be->fn.vkCreateBuffer(be->device, &bi, NULL, &b->buf);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
        s = nomem(be, h, size, r);
    else if (r != VK_SUCCESS)
        s = vk_check_fail(be, r, "vkCreateBuffer", __FILE__, __LINE__);
    else
        s = block_memory(be, h, b);
    if (s) {
        block_free(be, b);
        return s;
    }
    h->blocks[h->n_blocks++] = b;
    *out = b;
    return TM_OK;
}

static bool ranges_reserve(struct vk_block *b, int n)
{
    if (n <= b->cap_free)
        return true;
    int cap = b->cap_free * 2 > n ? b->cap_free * 2 : n;
    struct vk_range *nr = realloc(b->free, sizeof *nr * (size_t)cap);
    if (!nr)
        return false;
    b->free = nr;
    b->cap_free = cap;
    return true;
}

/* First fit in b; false when nothing fits (or no host memory to split). */
static bool block_take(struct vk_block *b, VkDeviceSize size, VkDeviceSize align,
                       VkDeviceSize *off)
{
    for (int i = 0; i < b->n_free; i++) {
        struct vk_range r = b->free[i];
        VkDeviceSize start = (r.off + align - 1) / align * align, end = r.off + r.size;
        if (start > end || end - start < size)
            continue;
        VkDeviceSize head = start - r.off, tail = end - start - size;
        if (head && tail) {
            if (!ranges_reserve(b, b->n_free + 1))
                return false;
            memmove(&b->free[i + 2], &b->free[i + 1],
                    sizeof r * (size_t)(b->n_free - i - 1));
            b->n_free++;
            b->free[i].size = head;
            b->free[i + 1] = (struct vk_range){start + size, tail};
        } else if (head) {
            b->free[i].size = head;
        } else if (tail) {
            b->free[i] = (struct vk_range){start + size, tail};
        } else {
            memmove(&b->free[i], &b->free[i + 1], sizeof r * (size_t)(b->n_free - i - 1));
            b->n_free--;
        }
        *off = start;
        return true;
    }
    return false;
}

/* Returns [off, off+size) to b's free list, merging with its neighbours. */
static bool block_give(struct vk_block *b, VkDeviceSize off, VkDeviceSize size)
{
    int i = 0;
    while (i < b->n_free && b->free[i].off < off)
        i++;
    bool join_prev = i > 0 && b->free[i - 1].off + b->free[i - 1].size == off;
    bool join_next = i < b->n_free && off + size == b->free[i].off;
    if (join_prev && join_next) {
        b->free[i - 1].size += size + b->free[i].size;
        memmove(&b->free[i], &b->free[i + 1], sizeof *b->free * (size_t)(b->n_free - i - 1));
        b->n_free--;
    } else if (join_prev) {
        b->free[i - 1].size += size;
    } else if (join_next) {
        b->free[i].off = off;
        b->free[i].size += size;
    } else {
        if (!ranges_reserve(b, b->n_free + 1))
            return false;
        memmove(&b->free[i + 1], &b->free[i], sizeof *b->free * (size_t)(b->n_free - i));
        b->free[i] = (struct vk_range){off, size};
        b->n_free++;
    }
    return true;
}

tm_status vk_alloc(struct vk_backend *be, struct vk_heap *h, VkDeviceSize size,
                   struct vk_alloc *out)
{
    VkDeviceSize align = be->caps.align;
    size = (size ? size + align - 1 : align) / align * align;
    memset(out, 0, sizeof *out);
    if (size > be->caps.max_alloc)
        return too_large(be, h, size);
    struct vk_block *b = NULL;
    VkDeviceSize off = 0;
    for (int i = 0; i < h->n_blocks && !b; i++)
        if (block_take(h->blocks[i], size, align, &off))
            b = h->blocks[i];
    if (!b) {
        tm_status s = block_new(be, h, size > BLOCK_SIZE ? size : BLOCK_SIZE, &b);
        if (s)
            return s;
        if (!block_take(b, size, align, &off))
            return tm_fail(be->ctx, TM_ERR_NOMEM, "out of host memory");
    }
    out->block = b;
    out->buf = b->buf;
    out->addr = b->addr ? b->addr + off : 0;
    out->off = off;
    out->size = size;
    out->map = b->map ? (char *)b->map + off : NULL;
    return TM_OK;
}

void vk_free(struct vk_backend *be, struct vk_heap *h, struct vk_alloc *a)
{
    struct vk_block *b = a->block;
    if (!b)
        return;
    /* A failed list insertion only leaks the range until the heap goes. */
    block_give(b, a->off, a->size);
    memset(a, 0, sizeof *a);
    if (b->n_free != 1 || b->free[0].size != b->size)
        return;
    for (int i = 0; i < h->n_blocks; i++) {
        if (h->blocks[i] == b) {
            h->blocks[i] = h->blocks[--h->n_blocks];
            block_free(be, b);
            return;
        }
    }
}

void vk_heap_destroy(struct vk_backend *be, struct vk_heap *h)
{
    for (int i = 0; i < h->n_blocks; i++)
        block_free(be, h->blocks[i]);
    free(h->blocks);
    h->blocks = NULL;
    h->n_blocks = 0;
}

static VkMappedMemoryRange mapped_range(const struct vk_alloc *a)
{
    /* off and size are multiples of caps.align, itself a multiple of
     * nonCoherentAtomSize, as the spec requires here. */
    return (VkMappedMemoryRange){
        .sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
        .memory = a->block->mem,
        .offset = a->off,
        .size = a->size,
    };
}

tm_status vk_flush(struct vk_backend *be, const struct vk_heap *h, const struct vk_alloc *a)
{
    if (h->coherent)
        return TM_OK;
    VkMappedMemoryRange r = mapped_range(a);
    VK(be->fn.vkFlushMappedMemoryRanges(be->device, 1, &r));
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}

tm_status vk_invalidate(struct vk_backend *be, const struct vk_heap *h,
                        const struct vk_alloc *a)
{
    if (h->coherent)
        return TM_OK;
    VkMappedMemoryRange r = mapped_range(a);
    VK(be->fn.vkInvalidateMappedMemoryRanges(be->device, 1, &r));
    return TM_OK;
error:
    return TM_ERR_DEVICE;
}
