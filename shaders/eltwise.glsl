// eltwise.glsl: grid-stride loop shared by the elementwise shaders. The
// dispatch is capped at the workgroup-count limit, so each invocation may
// handle several elements.
layout(local_size_x = 256) in;

uint eltwise_step()
{
    return gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}
