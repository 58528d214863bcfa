/* stargan.c: StarGAN's generator (the Generator of the official yunjey/stargan
 * code), keys main.N..., residual blocks main.N.main.K...
 *
 * The target label is tiled to the image size and concatenated after the
 * colour channels (translate.c builds those planes), so the first conv takes
 * input_nc + label_size channels. Convolutions have no bias and zero
 * padding; every InstanceNorm2d is affine and, because the official test
 * never calls eval(), normalizes with the image's own statistics even though
 * the file stores running ones. */
#include <stdio.h>

#include "models.h"

static int conv_in_relu(struct tm_build *b, int x, int layer, int cin, int cout,
                        const struct tm_conv_attr *c, int transposed)
{
    char p[64];
    snprintf(p, sizeof p, "main.%d", layer);
    x = transposed ? tm_build_convt(b, x, p, cin, cout, c, 0) : tm_build_conv(b, x, p, cin, cout, c, 0);
    snprintf(p, sizeof p, "main.%d", layer + 1);
    return tm_build_act(b, tm_build_instnorm_affine(b, x, p, cout), TM_ACT_RELU, 0);
}

static int residual_block(struct tm_build *b, int x, int layer, int dim)
{
    static const struct tm_conv_attr c3 = { .kh = 3, .kw = 3, .stride = 1, .pad = 1 };
    char p[64];
    snprintf(p, sizeof p, "main.%d.main.0", layer);
    int y = tm_build_conv(b, x, p, dim, dim, &c3, 0);
    snprintf(p, sizeof p, "main.%d.main.1", layer);
    y = tm_build_act(b, tm_build_instnorm_affine(b, y, p, dim), TM_ACT_RELU, 0);
    snprintf(p, sizeof p, "main.%d.main.3", layer);
    y = tm_build_conv(b, y, p, dim, dim, &c3, 0);
    snprintf(p, sizeof p, "main.%d.main.4", layer);
    y = tm_build_instnorm_affine(b, y, p, dim);
    return tm_build_add(b, x, y);
}

void tm_build_stargan(struct tm_build *b)
{
    static const struct tm_conv_attr c7 = { .kh = 7, .kw = 7, .stride = 1, .pad = 3 };
    static const struct tm_conv_attr c4 = { .kh = 4, .kw = 4, .stride = 2, .pad = 1 };
    const struct tm_arch *a = b->arch;
    struct tm_graph *g = b->g;
    int dim = a->ngf, cin = a->input_nc + a->label_size;

    g->input = tm_graph_value(g);
    g->tensors[g->input].c = cin;
    int x = conv_in_relu(b, g->input, 0, cin, dim, &c7, 0);
    x = conv_in_relu(b, x, 3, dim, dim * 2, &c4, 0);
    x = conv_in_relu(b, x, 6, dim * 2, dim * 4, &c4, 0);
    dim *= 4;
    for (int i = 0; i < a->n_blocks; i++)
        x = residual_block(b, x, 9 + i, dim);
    int layer = 9 + a->n_blocks;
    x = conv_in_relu(b, x, layer, dim, dim / 2, &c4, 1);
    x = conv_in_relu(b, x, layer + 3, dim / 2, dim / 4, &c4, 1);
    char p[64];
    snprintf(p, sizeof p, "main.%d", layer + 6);
    x = tm_build_conv(b, x, p, dim / 4, a->output_nc, &c7, 0);
    g->output = tm_build_act(b, x, TM_ACT_TANH, 0);
}
