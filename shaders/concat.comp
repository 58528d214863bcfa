#version 450
#extension GL_GOOGLE_include_directive : require
// concat.comp: CHW channel concatenation is two contiguous runs, so the
// output is a plain copy of a (n0 elements) followed by b.
#include "common.glsl"
#include "eltwise.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer Out { float y[]; };

void main()
{
    uint n0 = uint(pc.n0);
    for (uint i = gl_GlobalInvocationID.x; i < uint(pc.n); i += eltwise_step())
        y[i] = i < n0 ? a[i] : b[i - n0];
}
