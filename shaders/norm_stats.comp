#version 450
#extension GL_GOOGLE_include_directive : require
// norm_stats.comp: per-channel mean and 1/sqrt(biased var + eps), one
// workgroup per channel. Two passes over the channel (mean, then squared
// deviations) instead of sum/sum-of-squares: the latter cancels badly when
// the mean is large against the spread. Each invocation sums its strided
// share (few thousand values even at 1M pixels) before a shared-memory tree,
// so no single float accumulator sees the whole channel.
#include "common.glsl"

layout(local_size_x = 256) in;

layout(binding = 0) readonly buffer In { float x[]; };
layout(binding = 1) writeonly buffer Stats { vec2 stats[]; };  // mean, rstd

shared float red[256];

float reduce_sum(float v)
{
    uint t = gl_LocalInvocationID.x;
    red[t] = v;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (t < s)
            red[t] += red[t + s];
        barrier();
    }
    float r = red[0];
    barrier();  // red is reused by the next reduction
    return r;
}

void main()
{
    uint c = gl_WorkGroupID.x;
    if (c >= uint(pc.c_in))
        return;  // uniform per workgroup, so no barrier is skipped unevenly
    uint hw = uint(pc.h_in * pc.w_in);
    uint base = c * hw;
    uint t = gl_LocalInvocationID.x;

    float s = 0.0;
    for (uint i = t; i < hw; i += 256u)
        s += x[base + i];
    float mean = reduce_sum(s) / float(hw);

    float q = 0.0;
    for (uint i = t; i < hw; i += 256u) {
        float d = x[base + i] - mean;
        q += d * d;
    }
    float var = reduce_sum(q) / float(hw);
    if (t == 0u)
        stats[c] = vec2(mean, inversesqrt(var + pc.eps));
}
