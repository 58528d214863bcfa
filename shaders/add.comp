#version 450
#extension GL_GOOGLE_include_directive : require
// add.comp: out = act(a + b); out may alias a or b.
#include "common.glsl"
#include "eltwise.glsl"

layout(constant_id = 0) const int ACT = 0;

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer Out { float y[]; };

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < uint(pc.n); i += eltwise_step())
        y[i] = act_apply(ACT, a[i] + b[i]);
}
