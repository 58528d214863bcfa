/* unet.c: pix2pix's U-Net generator (UnetGenerator built from nested
 * UnetSkipConnectionBlocks in the official code).
 *
 * Level 0 is the outermost block, level num_downs-1 the innermost. Each
 * non-outermost block starts with an in-place LeakyReLU(0.2): it rewrites
 * the block's input, so the skip connection carries lrelu(x), not x. Fusing
 * that activation into the node that produced x reproduces it exactly. */
#include <stdio.h>

#include "models.h"

static const struct tm_conv_attr down = { .kh = 4, .kw = 4, .stride = 2, .pad = 1 };
static const struct tm_conv_attr up = { .kh = 4, .kw = 4, .stride = 2, .pad = 1 };

/* (outer_nc, inner_nc) of a level, as UnetGenerator stacks them. */
static void level_widths(const struct tm_arch *a, int level, int *outer, int *inner)
{
    int ngf = a->ngf;
    static const int mult[4] = { 0, 1, 2, 4 };
    if (level == 0) {
        *outer = a->output_nc;
        *inner = ngf;
    } else if (level < 4) {
        *outer = ngf * mult[level];
        *inner = ngf * mult[level] * 2;
    } else {
        *outer = *inner = ngf * 8;
    }
}

static int unet_level(struct tm_build *b, int x, int level, const char *prefix)
{
    const struct tm_arch *a = b->arch;
    int use_bias = a->norm == TM_NORM_INSTANCE;
    int outer, inner;
    level_widths(a, level, &outer, &inner);
    char p[512], sub[512];

    if (level == 0) {
        snprintf(p, sizeof p, "%s.0", prefix);
        int d = tm_build_conv(b, x, p, a->input_nc, inner, &down, use_bias);
        snprintf(sub, sizeof sub, "%s.1.model", prefix);
        int s = tm_build_act(b, unet_level(b, d, 1, sub), TM_ACT_RELU, 0);
        snprintf(p, sizeof p, "%s.3", prefix);
        return tm_build_act(b, tm_build_convt(b, s, p, inner * 2, outer, &up, 1), TM_ACT_TANH, 0);
    }

    x = tm_build_act(b, x, TM_ACT_LRELU, 0.2f);
    snprintf(p, sizeof p, "%s.1", prefix);
    int d = tm_build_conv(b, x, p, outer, inner, &down, use_bias);
    int u;
    if (level == a->num_downs - 1) {
        d = tm_build_act(b, d, TM_ACT_RELU, 0);
        snprintf(p, sizeof p, "%s.3", prefix);
        u = tm_build_convt(b, d, p, inner, outer, &up, use_bias);
        snprintf(p, sizeof p, "%s.4", prefix);
        u = tm_build_norm(b, u, p, outer);
    } else {
        snprintf(p, sizeof p, "%s.2", prefix);
        d = tm_build_norm(b, d, p, inner);
        snprintf(sub, sizeof sub, "%s.3.model", prefix);
        int s = tm_build_act(b, unet_level(b, d, level + 1, sub), TM_ACT_RELU, 0);
        snprintf(p, sizeof p, "%s.5", prefix);
        u = tm_build_convt(b, s, p, inner * 2, outer, &up, use_bias);
        snprintf(p, sizeof p, "%s.6", prefix);
        u = tm_build_norm(b, u, p, outer);
    }
    return tm_build_concat(b, x, u);
}

void tm_build_unet(struct tm_build *b)
{
    struct tm_graph *g = b->g;
    g->input = tm_graph_value(g);
    g->tensors[g->input].c = b->arch->input_nc;
    g->output = unet_level(b, g->input, 0, "model.model");
}
