#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d.comp: Conv2d with zero or reflect padding folded into the input
// indexing (no padded copy of the input is ever made), and dilation.
#define TM_TRANSPOSED 0
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

int pad_index(int i, int size, out bool inside)
{
    inside = true;
    if (PAD_MODE == 1)
        return reflect(i, size);
    inside = i >= 0 && i < size;
    return clamp(i, 0, size - 1);
}

uint input_offset(int ky, int kx, int oy, int ox, out bool inside)
{
    bool in_y, in_x;
    int iy = pad_index(oy * STRIDE - PAD + ky * DIL, pc.h_in, in_y);
    int ix = pad_index(ox * STRIDE - PAD + kx * DIL, pc.w_in, in_x);
    inside = in_y && in_x;
    return uint(iy) * uint(pc.w_in) + uint(ix);
}
