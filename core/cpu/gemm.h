/* gemm.h: the packed-GEMM building blocks the convolutions are made of.
 *
 * C[M x N] = A[M x K] * B[K x N] where M = output channels, K = input taps,
 * N = output pixels. A (weights) is packed once into MR-row panels; B is an
 * im2col panel of one pixel tile, built per task by the conv code. The
 * micro-kernel computes one MR x NR block of C in registers. */
#ifndef TM_CPU_GEMM_H
#define TM_CPU_GEMM_H

#include <stddef.h>

/* c[MR x NR] (row stride ldc) = (load ? c : 0) + a * b, with a packed as
 * k x MR and b as k rows of NR floats at row stride ldb. */
typedef void (*gemm_kernel_fn)(int k, const float *restrict a, const float *restrict b,
                               ptrdiff_t ldb, float *restrict c, ptrdiff_t ldc, int load);

struct gemm_isa {
    const char *name;
    int mr, nr;
    gemm_kernel_fn kernel;
};

/* The best kernel this CPU runs (checked once per backend). */
const struct gemm_isa *tm_gemm_isa_best(void);
/* The portable kernel, for tests and for TRANSMUTE_CPU_ISA=generic. */
const struct gemm_isa *tm_gemm_isa_generic(void);

/* The kernel for a GEMM with m rows: best, or a narrower relative of it
 * when m is far below its MR. */
const struct gemm_isa *tm_gemm_isa_for(const struct gemm_isa *best, int m);

/* Floats in a packed A for m x k. */
size_t tm_gemm_packed_a_size(const struct gemm_isa *isa, int m, int k);

/* Packs row-major src (m x k, row stride k) into MR-row panels: panel i holds
 * rows i*MR.. as k groups of MR floats, zero rows past m. */
void tm_gemm_pack_a(const struct gemm_isa *isa, float *dst, const float *src, int m, int k);

#endif
