/* ref_ops.h: plain-loop reference implementations of the graph ops, written
 * independently of core/cpu (only tm_act_apply is shared) to check the
 * backends. Tensors are CHW float; sums are taken in double. */
#ifndef TM_REF_OPS_H
#define TM_REF_OPS_H

struct ref_conv {
    int cin, ih, iw, cout, oh, ow;
    int kh, kw, stride, pad, reflect, out_pad;
    int dil;              /* conv2d dilation; 0 is taken as 1 */
    const float *w, *b;   /* b may be NULL */
    int act;
    float slope;
};

/* PyTorch Conv2d (zero or ReflectionPad2d padding): direct nested loops. */
void ref_conv2d(const struct ref_conv *p, const float *in, float *out);
/* PyTorch ConvTranspose2d, weight [Cin,Cout,KH,KW]: direct scatter. */
void ref_convt2d(const struct ref_conv *p, const float *in, float *out);
/* Normalization per channel: image statistics (biased variance) when mean
 * is NULL, else the given running statistics; gamma/beta may be NULL. */
void ref_norm(const float *in, int c, int h, int w, const float *gamma, const float *beta,
              const float *mean, const float *var, float eps, int act, float slope, float *out);
void ref_act(const float *in, long n, int act, float slope, float *out);
void ref_add(const float *a, const float *b, long n, int act, float slope, float *out);
void ref_concat(const float *a, long na, const float *b, long nb, float *out);
/* out = act(alpha * in). */
void ref_scale(const float *in, long n, float alpha, int act, float slope, float *out);
/* PReLU over c planes of hw: slope w[ch], or w[0] for all when n_w is 1. */
void ref_prelu(const float *in, int c, long hw, const float *w, int n_w, float *out);
/* Nearest neighbour: in [c,h,w] -> out [c,h*f,w*f]. */
void ref_upsample(const float *in, int c, int h, int w, int f, float *out);
/* in [c*f*f,h,w] -> out [c,h*f,w*f] (torch: nn.PixelShuffle order, else
 * tf.nn.depth_to_space's), written by scattering each input element. */
void ref_depth2space(const float *in, int c, int h, int w, int f, int torch, float *out);
/* The inverse: in [c,h*f,w*f] -> out [c*f*f,h,w], scattering each input element. */
void ref_space2depth(const float *in, int c, int h, int w, int f, int torch, float *out);

#endif
