#version 450
#extension GL_GOOGLE_include_directive : require
// act.comp: out = act(in). out may alias in (the memory plan lets an
// elementwise op write over its dying input), so no restrict qualifiers.
#include "common.glsl"
#include "eltwise.glsl"

layout(constant_id = 0) const int ACT = 0;

layout(binding = 0) readonly buffer In { float x[]; };
layout(binding = 1) writeonly buffer Out { float y[]; };

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < uint(pc.n); i += eltwise_step())
        y[i] = act_apply(ACT, x[i]);
}
