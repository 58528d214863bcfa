#version 450
#extension GL_GOOGLE_include_directive : require
// convt2d.comp: ConvTranspose2d in the gather form, so it shares the conv
// GEMM: output (oy, ox) takes tap (ky, kx) of input (iy, ix) when
// oy + pad - ky = iy * stride. The host re-lays the weight from PyTorch's
// [Cin][Cout][KH][KW] to [Cout][Cin*KH*KW].
#include "common.glsl"
#include "gemm_conv.glsl"

float load_input(uint ci, int ky, int kx, int oy, int ox)
{
    int ty = oy + PAD - ky, tx = ox + PAD - kx;
    int iy = ty / STRIDE, ix = tx / STRIDE;  // only used when ty, tx >= 0
    bool inside = ty >= 0 && tx >= 0 && iy * STRIDE == ty && ix * STRIDE == tx &&
                  iy < pc.h_in && ix < pc.w_in;
    // Branch-free, always in bounds: the select drops the clamped value.
    iy = clamp(iy, 0, pc.h_in - 1);
    ix = clamp(ix, 0, pc.w_in - 1);
    float v = t_in[(ci * uint(pc.h_in) + uint(iy)) * uint(pc.w_in) + uint(ix)];
    return inside ? v : 0.0;
}
