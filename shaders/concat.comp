#version 450
#extension GL_GOOGLE_include_directive : require
// concat.comp: in CHW, each input of a channel concatenation is one
// contiguous run of the output, so a concat is one copy per input: this
// one writes its n elements at element n0 of the output. The output range
// is bound whole, so no binding offset has to meet the device's alignment.
#include "common.glsl"
#include "eltwise.glsl"

TM_VALUE(0, readonly, In)
TM_VALUE(1, writeonly, Out)
#define t_in TM_AT(In, 0)
#define t_out TM_AT(Out, 1)

void main()
{
    uint n0 = uint(pc.n0);
    for (uint i = gl_GlobalInvocationID.x; i < uint(pc.n); i += eltwise_step())
        t_out[n0 + i] = t_in[i];
}
