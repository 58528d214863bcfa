/* resnet.c: CycleGAN's ResNet generator (ResnetGenerator in the official
 * pytorch-CycleGAN-and-pix2pix code), keys model.N..., blocks
 * model.N.conv_block.K...
 *
 * Layer indices follow the official nn.Sequential exactly: padding, norm
 * (Identity for norm=none), ReLU and Dropout layers occupy indices too. */
#include <stdio.h>

#include "models.h"

/* conv_block indices of the two convs and norms, by padding and dropout. */
static void block_indices(const struct tm_arch *a, int idx[4])
{
    int pad = a->reflect;           /* a ReflectionPad2d precedes each conv */
    int drop = a->dropout;
    idx[0] = pad;                   /* conv 1 */
    idx[1] = pad + 1;               /* norm 1; ReLU follows */
    idx[2] = pad + 3 + drop + pad;  /* conv 2, after ReLU, Dropout and pad */
    idx[3] = idx[2] + 1;            /* norm 2 */
}

static int resnet_block(struct tm_build *b, int x, int layer, int dim)
{
    const struct tm_arch *a = b->arch;
    int use_bias = a->norm == TM_NORM_INSTANCE;
    struct tm_conv_attr c3 = { .kh = 3, .kw = 3, .stride = 1, .pad = 1,
                               .pad_mode = a->reflect ? TM_PAD_REFLECT : TM_PAD_ZERO };
    int idx[4];
    char p[96];
    block_indices(a, idx);

    snprintf(p, sizeof p, "model.%d.conv_block.%d", layer, idx[0]);
    int y = tm_build_conv(b, x, p, dim, dim, &c3, use_bias);
    snprintf(p, sizeof p, "model.%d.conv_block.%d", layer, idx[1]);
    y = tm_build_act(b, tm_build_norm(b, y, p, dim), TM_ACT_RELU, 0);
    snprintf(p, sizeof p, "model.%d.conv_block.%d", layer, idx[2]);
    y = tm_build_conv(b, y, p, dim, dim, &c3, use_bias);
    snprintf(p, sizeof p, "model.%d.conv_block.%d", layer, idx[3]);
    y = tm_build_norm(b, y, p, dim);
    return tm_build_add(b, x, y);
}

/* conv (or convT) at model.<layer>, its norm at <layer+1>, ReLU at <layer+2> */
static int conv_norm_relu(struct tm_build *b, int x, int layer, int cin, int cout,
                          const struct tm_conv_attr *c, int transposed)
{
    int use_bias = b->arch->norm == TM_NORM_INSTANCE;
    char p[64];
    snprintf(p, sizeof p, "model.%d", layer);
    x = transposed ? tm_build_convt(b, x, p, cin, cout, c, use_bias)
                   : tm_build_conv(b, x, p, cin, cout, c, use_bias);
    snprintf(p, sizeof p, "model.%d", layer + 1);
    return tm_build_act(b, tm_build_norm(b, x, p, cout), TM_ACT_RELU, 0);
}

void tm_build_resnet(struct tm_build *b)
{
    const struct tm_arch *a = b->arch;
    struct tm_graph *g = b->g;
    int ngf = a->ngf;
    struct tm_conv_attr c7 = { .kh = 7, .kw = 7, .stride = 1, .pad = 3, .pad_mode = TM_PAD_REFLECT };
    struct tm_conv_attr down = { .kh = 3, .kw = 3, .stride = 2, .pad = 1, .pad_mode = TM_PAD_ZERO };
    struct tm_conv_attr up = { .kh = 3, .kw = 3, .stride = 2, .pad = 1, .out_pad = 1 };

    g->input = tm_graph_value(g);
    g->tensors[g->input].c = a->input_nc;
    int x = conv_norm_relu(b, g->input, 1, a->input_nc, ngf, &c7, 0);
    x = conv_norm_relu(b, x, 4, ngf, ngf * 2, &down, 0);
    x = conv_norm_relu(b, x, 7, ngf * 2, ngf * 4, &down, 0);
    for (int i = 0; i < a->n_blocks; i++)
        x = resnet_block(b, x, 10 + i, ngf * 4);
    int layer = 10 + a->n_blocks;
    x = conv_norm_relu(b, x, layer, ngf * 4, ngf * 2, &up, 1);
    x = conv_norm_relu(b, x, layer + 3, ngf * 2, ngf, &up, 1);
    char p[64];
    snprintf(p, sizeof p, "model.%d", layer + 7); /* after ReflectionPad2d(3) */
    x = tm_build_act(b, tm_build_conv(b, x, p, ngf, a->output_nc, &c7, 1), TM_ACT_TANH, 0);
    g->output = x;
}
