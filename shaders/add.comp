#version 450
#extension GL_GOOGLE_include_directive : require
// add.comp: out = act(a + b); out may alias a or b.
#include "common.glsl"
#include "eltwise.glsl"

layout(constant_id = 0) const int ACT = 0;

TM_VALUE(0, readonly, A)
TM_VALUE(1, readonly, B)
TM_VALUE(2, writeonly, Out)
#define t_a TM_AT(A, 0)
#define t_b TM_AT(B, 1)
#define t_out TM_AT(Out, 2)

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < uint(pc.n); i += eltwise_step())
        t_out[i] = act_apply(ACT, t_a[i] + t_b[i]);
}
