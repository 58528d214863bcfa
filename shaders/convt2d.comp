#version 450
#extension GL_GOOGLE_include_directive : require
// convt2d.comp: ConvTranspose2d in the gather form, so it shares the conv
// GEMM: output (oy, ox) takes tap (ky, kx) of input (iy, ix) when
// oy + pad - ky = iy * stride. The host re-lays the weight from PyTorch's
// [Cin][Cout][KH][KW] to [Cout][Cin*KH*KW] (or [K][m_pad], direct form).
//
// The direct form splits the output into its stride phases (oy % stride,
// ox % stride), one per workgroup z: within a phase the taps that hit an
// input pixel are the same for every output, ky = (phase + pad) mod stride
// stepping by stride, so it skips the others (3/4 of them at stride 2)
// instead of multiplying by zero.
#define TM_TRANSPOSED 1
#include "common.glsl"
#include "gemm_conv.glsl"

uint input_offset(int ky, int kx, int oy, int ox, out bool inside)
{
    int ty = oy + PAD - ky, tx = ox + PAD - kx;
    int iy = ty / STRIDE, ix = tx / STRIDE;  // only used when ty, tx >= 0
    inside = ty >= 0 && tx >= 0 && iy * STRIDE == ty && ix * STRIDE == tx &&
             iy < pc.h_in && ix < pc.w_in;
    // Always in bounds: the caller drops the clamped value.
    iy = clamp(iy, 0, pc.h_in - 1);
    ix = clamp(ix, 0, pc.w_in - 1);
    return uint(iy) * uint(pc.w_in) + uint(ix);
}

// Every phase gets the grid of the largest one (phase 0); the host sizes
// the dispatch to match.
uint phase_w()
{
    return uint((pc.w_out + STRIDE - 1) / STRIDE);
}

uint direct_pixels()
{
    return uint((pc.h_out + STRIDE - 1) / STRIDE) * phase_w();
}

ivec2 phase()
{
    int p = int(gl_WorkGroupID.z);
    return ivec2(p % STRIDE, p / STRIDE);
}

ivec2 direct_pixel(uint n)
{
    int w = int(phase_w());
    return ivec2(int(n) % w, int(n) / w) * STRIDE + phase();
}

ivec2 direct_tap0()
{
    return (phase() + PAD) % STRIDE;
}
