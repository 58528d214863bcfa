/* srresnet.c: SRGAN's generator (SRResNet) in the layout of the most used
 * PyTorch implementation (leftthomas/SRGAN, model.py Generator): block1 =
 * 9x9 conv + PReLU; block2..block(n+1) = residual blocks (conv1, bn1,
 * prelu, conv2, bn2); block(n+2) = conv + BN; block(n+3) = log2(scale)
 * upsampling blocks (conv to 4x channels, PixelShuffle(2), PReLU) and a
 * final 9x9 conv, applied to block1 + block(n+2); tanh out. Batch norm
 * uses its running statistics (the model is evaluated in eval mode). */
#include <stdio.h>

#include "models.h"

static const struct tm_conv_attr c3 = { .kh = 3, .kw = 3, .stride = 1, .pad = 1 };
static const struct tm_conv_attr c9 = { .kh = 9, .kw = 9, .stride = 1, .pad = 4 };

static int residual_block(struct tm_build *b, int x, int k, int nf)
{
    char p[64];
    snprintf(p, sizeof p, "block%d.conv1", k);
    int y = tm_build_conv(b, x, p, nf, nf, &c3, 1);
    snprintf(p, sizeof p, "block%d.bn1", k);
    y = tm_build_norm(b, y, p, nf);
    snprintf(p, sizeof p, "block%d.prelu", k);
    y = tm_build_prelu(b, y, p, nf);
    snprintf(p, sizeof p, "block%d.conv2", k);
    y = tm_build_conv(b, y, p, nf, nf, &c3, 1);
    snprintf(p, sizeof p, "block%d.bn2", k);
    return tm_build_add(b, x, tm_build_norm(b, y, p, nf));
}

void tm_build_srresnet(struct tm_build *b)
{
    const struct tm_arch *saved = b->arch;
    struct tm_arch arch = *saved;
    arch.norm = TM_NORM_BATCH; /* tm_build_norm: batch norm, running statistics */
    arch.image_stats = 0;
    b->arch = &arch;
    struct tm_graph *g = b->g;
    int nf = arch.ngf, n = arch.n_blocks;
    char p[64];
    g->input = tm_graph_value(g);
    if (g->input < 0) {
        b->status = TM_ERR_NOMEM;
        return;
    }
    g->tensors[g->input].c = arch.input_nc;
    int head = tm_build_prelu(b, tm_build_conv(b, g->input, "block1.0", arch.input_nc, nf, &c9, 1),
                              "block1.1", nf);
    int y = head;
    for (int k = 2; k <= n + 1; k++)
        y = residual_block(b, y, k, nf);
    snprintf(p, sizeof p, "block%d.0", n + 2);
    y = tm_build_conv(b, y, p, nf, nf, &c3, 1);
    snprintf(p, sizeof p, "block%d.1", n + 2);
    y = tm_build_add(b, head, tm_build_norm(b, y, p, nf));
    int ups = 0;
    while ((1 << ups) < arch.scale)
        ups++;
    for (int j = 0; j < ups; j++) {
        snprintf(p, sizeof p, "block%d.%d.conv", n + 3, j);
        y = tm_build_conv(b, y, p, nf, nf * 4, &c3, 1);
        y = tm_build_resample(b, y, TM_OP_DEPTH2SPACE, 2, TM_D2S_TORCH);
        snprintf(p, sizeof p, "block%d.%d.prelu", n + 3, j);
        y = tm_build_prelu(b, y, p, nf);
    }
    snprintf(p, sizeof p, "block%d.%d", n + 3, ups);
    y = tm_build_conv(b, y, p, nf, arch.output_nc, &c9, 1);
    g->output = tm_build_act(b, y, TM_ACT_TANH, 0);
    b->arch = saved;
}
