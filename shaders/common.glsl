// common.glsl: what every Transmute compute shader shares.
// The push block mirrors struct vk_push in core/vulkan/vk.h; keep them in step.

layout(push_constant) uniform Push {
    int c_in, h_in, w_in;     // first input
    int c_out, h_out, w_out;  // output
    int n0;                   // concat: elements of the first input
    int n;                    // elementwise: elements to process
    float slope;              // LeakyReLU negative slope
    float eps;                // norm epsilon
    int m_pad;                // direct conv: weight row length (Cout rounded up)
} pc;

const int ACT_NONE = 0;
const int ACT_RELU = 1;
const int ACT_LRELU = 2;
const int ACT_TANH = 3;

// Same definition as tm_act_apply() in core/graph.h.
float act_apply(int act, float x)
{
    if (act == ACT_RELU)
        return max(x, 0.0);
    if (act == ACT_LRELU)
        return x > 0.0 ? x : x * pc.slope;
    if (act == ACT_TANH)
        // Clamped: some drivers build tanh from exp() and overflow to NaN.
        return tanh(clamp(x, -15.0, 15.0));
    return x;
}
