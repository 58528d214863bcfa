#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d.comp: Conv2d with zero or reflect padding folded into the input
// indexing (no padded copy of the input is ever made).
#include "common.glsl"
#include "gemm_conv.glsl"

// PyTorch ReflectionPad2d: mirror about the edge without repeating it;
// the host guarantees pad < size. Branch-free: on CPU implementations a
// lane-divergent branch costs both sides anyway.
int reflect(int i, int size)
{
    i = abs(i);
    return min(i, 2 * size - 2 - i);
}

float load_input(uint ci, int ky, int kx, int oy, int ox)
{
    int iy = oy * STRIDE - PAD + ky;
    int ix = ox * STRIDE - PAD + kx;
    bool inside = true;
    if (PAD_MODE == 1) {
        iy = reflect(iy, pc.h_in);
        ix = reflect(ix, pc.w_in);
    } else {
        inside = iy >= 0 && iy < pc.h_in && ix >= 0 && ix < pc.w_in;
        iy = clamp(iy, 0, pc.h_in - 1);
        ix = clamp(ix, 0, pc.w_in - 1);
    }
    // Always an in-bounds load; zero padding selects afterwards.
    float v = t_in[(ci * uint(pc.h_in) + uint(iy)) * uint(pc.w_in) + uint(ix)];
    return inside ? v : 0.0;
}
