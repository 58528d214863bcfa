#version 450
#extension GL_GOOGLE_include_directive : require
// act.comp: the unary elementwise ops, out = act(f(in)) with f the identity
// (act), a constant factor (scale) or PReLU. out may alias in (the memory
// plan lets an elementwise op write over its dying input), so no restrict
// qualifiers.
#include "common.glsl"
#include "eltwise.glsl"

layout(constant_id = 0) const int ACT = 0;
layout(constant_id = 1) const int KIND = 0;              // 0 act, 1 scale, 2 PReLU
layout(constant_id = 2) const bool PER_CHANNEL = false;  // PReLU: a slope per channel

TM_VALUE(0, readonly, In)
TM_VALUE(1, writeonly, Out)
TM_PARAM(2, readonly, Slopes, float)
#define t_in TM_AT(In, 0)
#define t_out TM_AT(Out, 1)
#define t_slopes TM_P(Slopes)

float unary(uint i, float x)
{
    if (KIND == 1)
        return x * pc.alpha;
    if (KIND == 2) {
        float w = t_slopes[PER_CHANNEL ? i / uint(pc.h_in * pc.w_in) : 0u];
        return x > 0.0 ? x : x * w;
    }
    return x;
}

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < uint(pc.n); i += eltwise_step())
        t_out[i] = act_apply(ACT, unary(i, t_in[i]));
}
