#version 450
#extension GL_GOOGLE_include_directive : require
// act.comp: out = act(in). out may alias in (the memory plan lets an
// elementwise op write over its dying input), so no restrict qualifiers.
#include "common.glsl"
#include "eltwise.glsl"

layout(constant_id = 0) const int ACT = 0;

TM_VALUE(0, readonly, In)
TM_VALUE(1, writeonly, Out)
#define t_in TM_AT(In, 0)
#define t_out TM_AT(Out, 1)

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < uint(pc.n); i += eltwise_step())
        t_out[i] = act_apply(ACT, t_in[i]);
}
