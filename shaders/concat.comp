#version 450
#extension GL_GOOGLE_include_directive : require
// concat.comp: CHW channel concatenation is two contiguous runs, so the
// output is a plain copy of a (n0 elements) followed by b.
#include "common.glsl"
#include "eltwise.glsl"

TM_VALUE(0, readonly, A)
TM_VALUE(1, readonly, B)
TM_VALUE(2, writeonly, Out)
#define t_a TM_AT(A, 0)
#define t_b TM_AT(B, 1)
#define t_out TM_AT(Out, 2)

void main()
{
    uint n0 = uint(pc.n0);
    for (uint i = gl_GlobalInvocationID.x; i < uint(pc.n); i += eltwise_step())
        t_out[i] = i < n0 ? t_a[i] : t_b[i - n0];
}
