// common.glsl: what every Transmute compute shader shares.
// The push block mirrors struct vk_push in core/vulkan/vk.h; keep them in step.
//
// Every shader is compiled twice (shaders/meson.build): TM_BDA 0 reaches
// every tensor through storage-buffer descriptors, TM_BDA 1 reaches the
// activations through buffer device addresses in the push block instead.
// Descriptors are limited to maxStorageBufferRange (128 MiB on lavapipe),
// addresses only by the allocation; the backend takes the TM_BDA 1 variant
// only for dispatches that need it (see use_bda() in ops.c).
// Addresses are uvec2 (GL_EXT_buffer_reference_uvec2) so the shaders do not
// need shaderInt64.
#if TM_BDA
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_buffer_reference_uvec2 : require
#endif

layout(push_constant) uniform Push {
    uvec2 addr[5];            // TM_BDA: tensor addresses by slot (low, high word)
    int c_in, h_in, w_in;     // first input
    int c_out, h_out, w_out;  // output
    int n0;                   // concat: elements of the first input
    int n;                    // elementwise: elements to process
    float slope;              // LeakyReLU negative slope
    float eps;                // norm epsilon
    int m_pad;                // direct conv: weight row length (Cout rounded up)
    float alpha;              // scale: the constant factor
} pc;

// TM_VALUE(slot, qualifiers, Block) declares the activation (float) tensor
// of slot `slot` and TM_AT(Block, slot) is its array; TM_PARAM(slot,
// qualifiers, Block, type) declares a parameter or statistics buffer and
// TM_P(Block) is its array. Shaders name each with a #define (t_in, t_out,
// ...), so both variants share one body.
// Parameters are always descriptors: they are small, and lavapipe turns a
// subgroup-uniform load (the weights in conv_direct) into one scalar load
// only for descriptor buffers; through an address it is a per-lane gather
// (the whole resnet ran about 35% slower).
// Indices are uint element indices; the host keeps every tensor below 2^31
// elements because drivers sign-extend 32-bit array indices into 64-bit
// addresses.
#define TM_PARAM(slot, qual, Block, type) \
    layout(binding = slot) qual buffer Block { type v[]; } Block##_b;
#define TM_P(Block) Block##_b.v
#if TM_BDA
#define TM_VALUE(slot, qual, Block) \
    layout(buffer_reference, std430, buffer_reference_align = 4) qual buffer Block { float v[]; };
#define TM_AT(Block, slot) Block(pc.addr[slot]).v
#else
#define TM_VALUE(slot, qual, Block) TM_PARAM(slot, qual, Block, float)
#define TM_AT(Block, slot) Block##_b.v
#endif

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
