#version 450
#extension GL_GOOGLE_include_directive : require
// norm_apply.comp: y = act((x - mean) * rstd * gamma + beta) per channel,
// for instance norm and both batch-norm modes (running statistics arrive
// as a precomputed stats buffer). out may alias in.
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const int ACT = 0;
layout(constant_id = 1) const bool HAS_GAMMA = false;
layout(constant_id = 2) const bool HAS_BETA = false;

TM_VALUE(0, readonly, In)
TM_PARAM(1, readonly, Stats, vec2)
TM_PARAM(2, readonly, Gamma, float)
TM_PARAM(3, readonly, Beta, float)
TM_VALUE(4, writeonly, Out)
#define t_in TM_AT(In, 0)
#define t_stats TM_P(Stats)
#define t_gamma TM_P(Gamma)
#define t_beta TM_P(Beta)
#define t_out TM_AT(Out, 4)

void main()
{
    uint c = gl_WorkGroupID.y;  // one row of workgroups per channel: no division
    uint hw = uint(pc.h_in * pc.w_in);
    if (c >= uint(pc.c_in))
        return;
    vec2 st = t_stats[c];
    float scale = st.y, shift = -st.x * st.y;
    if (HAS_GAMMA) {
        scale *= t_gamma[c];
        shift *= t_gamma[c];
    }
    if (HAS_BETA)
        shift += t_beta[c];
    uint step = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < hw; i += step)
        t_out[c * hw + i] = act_apply(ACT, t_in[c * hw + i] * scale + shift);
}
