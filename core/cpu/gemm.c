/* gemm.c: weight packing and the micro-kernels, one per instruction set.
 * The build has no -march flag, so the wide kernels are compiled with a
 * target attribute and picked at run time from cpuid; the block shape
 * follows the register file (32 zmm: 8x32 = 16 accumulators; 16 ymm: 6x16 =
 * 12 accumulators; SSE2: 4x16). */
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

/* ISO C mode turns off FMA contraction; ask for it explicitly where the
 * target has FMA, and keep a*b+c (no libcall) for the baseline. */
#define MADD_FMA(x, y, z) __builtin_fmaf((x), (y), (z))
#define MADD_PLAIN(x, y, z) ((x) * (y) + (z))

#define KNAME kernel_generic
#define KTARGET
#define KMR 4
#define KNR 16
#define KMADD MADD_PLAIN
#include "gemm_kernel.inc"
#undef KNAME
#undef KTARGET
#undef KMR
#undef KNR
#undef KMADD

static const struct gemm_isa isa_generic = { "generic", 4, 16, kernel_generic };

#if defined(__x86_64__) || defined(__i386__)
#define KNAME kernel_avx2
#define KTARGET __attribute__((target("avx2,fma")))
#define KMR 6
#define KNR 16
#define KMADD MADD_FMA
#include "gemm_kernel.inc"
#undef KNAME
#undef KTARGET
#undef KMR
#undef KNR
#undef KMADD

#define KNAME kernel_avx512
#define KTARGET __attribute__((target("avx512f,fma")))
#define KMR 8
#define KNR 32
#define KMADD MADD_FMA
#include "gemm_kernel.inc"
#undef KNAME
#undef KTARGET
#undef KMR
#undef KNR
#undef KMADD

/* Few output channels (an RGB output layer): 4 rows of 64 columns wastes
 * less on row padding than 8 x 32 and still holds 16 accumulators. */
#define KNAME kernel_avx512_narrow
#define KTARGET __attribute__((target("avx512f,fma")))
#define KMR 4
#define KNR 64
#define KMADD MADD_FMA
#include "gemm_kernel.inc"
#undef KNAME
#undef KTARGET
#undef KMR
#undef KNR
#undef KMADD

static const struct gemm_isa isa_avx512_narrow = { "avx512-narrow", 4, 64, kernel_avx512_narrow };
static const struct gemm_isa isa_avx2 = { "avx2", 6, 16, kernel_avx2 };
static const struct gemm_isa isa_avx512 = { "avx512", 8, 32, kernel_avx512 };
#endif

const struct gemm_isa *tm_gemm_isa_generic(void)
{
    return &isa_generic;
}

const struct gemm_isa *tm_gemm_isa_best(void)
{
    const char *force = getenv("TRANSMUTE_CPU_ISA");
    if (force && !strcmp(force, "generic"))
        return &isa_generic;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!(force && !strcmp(force, "avx2")) && __builtin_cpu_supports("avx512f"))
        return &isa_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return &isa_avx2;
#endif
    return &isa_generic;
}

const struct gemm_isa *tm_gemm_isa_for(const struct gemm_isa *best, int m)
{
#if defined(__x86_64__) || defined(__i386__)
    if (best == &isa_avx512 && m <= 4)
        return &isa_avx512_narrow;
#endif
    return best;
}

size_t tm_gemm_packed_a_size(const struct gemm_isa *isa, int m, int k)
{
    size_t panels = (size_t)(m + isa->mr - 1) / (size_t)isa->mr;
    return panels * (size_t)isa->mr * (size_t)k;
}

void tm_gemm_pack_a(const struct gemm_isa *isa, float *dst, const float *src, int m, int k)
{
    int mr = isa->mr;
    for (int r0 = 0; r0 < m; r0 += mr) {
        for (int p = 0; p < k; p++) {
            for (int i = 0; i < mr; i++)
                dst[i] = r0 + i < m ? src[(size_t)(r0 + i) * (size_t)k + (size_t)p] : 0.0f;
            dst += mr;
        }
    }
}
