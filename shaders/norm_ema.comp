#version 450
#extension GL_GOOGLE_include_directive : require
// norm_ema.comp: smoothing of a norm's statistics across runs (video),
// between norm_stats (its VAR variant) and norm_apply. Per channel, with w
// the weight of the carried statistics (0 on a fresh start, when Carried
// holds nothing yet):
//   (mean, var) = w * carried + (1 - w) * this image's;  carried = (mean, var)
// and norm_apply gets (mean, 1/sqrt(var + eps)). w is in a buffer the host
// writes before each run, not in the push block: the pass is recorded once
// and each run may smooth by another weight.
#include "common.glsl"

layout(local_size_x = 64) in;

TM_PARAM(0, restrict, Stats, vec2)              // in: mean, var; out: mean, rstd
TM_PARAM(1, restrict, Carried, vec2)            // mean, var
TM_PARAM(2, restrict readonly, Weight, float)   // [0]: w
#define t_stats TM_P(Stats)
#define t_carried TM_P(Carried)
#define t_weight TM_P(Weight)

void main()
{
    uint c = gl_GlobalInvocationID.x;
    if (c >= uint(pc.c_in))
        return;
    float w = t_weight[0];
    vec2 st = t_stats[c];
    if (w > 0.0)
        st = mix(st, t_carried[c], w);
    t_carried[c] = st;
    t_stats[c] = vec2(st.x, inversesqrt(st.y + pc.eps));
}
