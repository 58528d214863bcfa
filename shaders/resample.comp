#version 450
#extension GL_GOOGLE_include_directive : require
// resample.comp: nearest-neighbour upsampling, depth-to-space and
// space-to-depth, one output element per step: each reads the one input
// element it copies (gather), so every output is written exactly once.
// Channel orders follow enum tm_d2s_order in core/graph.h.
#include "common.glsl"
#include "eltwise.glsl"

layout(constant_id = 0) const int KIND = 0;  // 0 upsample, 1 depth2space, 2 space2depth
layout(constant_id = 1) const int F = 2;     // the factor
layout(constant_id = 2) const bool TORCH = false;  // TM_D2S_TORCH order, else TF

TM_VALUE(0, readonly, In)
TM_VALUE(1, writeonly, Out)
#define t_in TM_AT(In, 0)
#define t_out TM_AT(Out, 1)

// The deep channel that holds sub-pixel q = dy*F + dx of space channel c.
uint deep_channel(uint c, uint space_c, uint q)
{
    return TORCH ? c * uint(F * F) + q : q * space_c + c;
}

uint source(uint i)
{
    uint f = uint(F), w = uint(pc.w_out), h = uint(pc.h_out);
    uint x = i % w, r = i / w, y = r % h, c = r / h;
    uint iy = y / f, ix = x / f;
    if (KIND == 1)
        c = deep_channel(c, uint(pc.c_out), (y % f) * f + x % f);
    if (KIND == 2) {  // c is the deep channel; find its space channel and sub-pixel
        uint q = TORCH ? c % (f * f) : c / uint(pc.c_in);
        c = TORCH ? c / (f * f) : c % uint(pc.c_in);
        iy = y * f + q / f;
        ix = x * f + q % f;
    }
    return (c * uint(pc.h_in) + iy) * uint(pc.w_in) + ix;
}

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < uint(pc.n); i += eltwise_step())
        t_out[i] = t_in[source(i)];
}
