#version 450
#extension GL_GOOGLE_include_directive : require
// norm_stats.comp: per-channel mean and 1/sqrt(biased var + eps), one
// workgroup per channel (with VAR: the variance itself, for norm_ema to
// blend with the carried statistics). Two passes over the channel (mean,
// then squared deviations) instead of sum/sum-of-squares: the latter
// cancels badly when the mean is large against the spread. Each invocation
// sums its strided share (few thousand values even at 1M pixels) before a
// shared-memory tree, so no single float accumulator sees the whole channel.
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const bool VAR = false;

TM_VALUE(0, readonly, In)
TM_PARAM(1, writeonly, Stats, vec2)  // mean, rstd (VAR: mean, var)
#define t_in TM_AT(In, 0)
#define t_stats TM_P(Stats)

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
        s += t_in[base + i];
    float mean = reduce_sum(s) / float(hw);

    float q = 0.0;
    for (uint i = t; i < hw; i += 256u) {
        float d = t_in[base + i] - mean;
        q += d * d;
    }
    float var = reduce_sum(q) / float(hw);
    if (t == 0u)
        t_stats[c] = vec2(mean, VAR ? var : inversesqrt(var + pc.eps));
}
