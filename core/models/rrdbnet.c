/* rrdbnet.c: ESRGAN's generator as BasicSR / Real-ESRGAN define it
 * (RRDBNet): keys conv_first, body.N.rdbK.convJ, conv_body, conv_up1,
 * conv_up2, conv_hr, conv_last. Residual-in-residual dense blocks whose
 * residuals are scaled by 0.2, two nearest 2x upsamplings, LeakyReLU 0.2.
 * Scales 2 and 1 first fold the image into channels (pixel_unshuffle). */
#include <stdio.h>

#include "models.h"

static const struct tm_conv_attr c3 = { .kh = 3, .kw = 3, .stride = 1, .pad = 1 };

/* x1 = lrelu(conv1(x)), x2 = lrelu(conv2([x, x1])), ... x5 = conv5([x..x4]);
 * x + 0.2 * x5. */
static int dense_block(struct tm_build *b, int x, const char *prefix, int nf, int gc)
{
    int feats[5] = { x };
    char p[96];
    for (int j = 1; j <= 5; j++) {
        int in = j == 1 ? x : tm_build_concat_n(b, feats, j);
        snprintf(p, sizeof p, "%s.conv%d", prefix, j);
        int y = tm_build_conv(b, in, p, nf + (j - 1) * gc, j == 5 ? nf : gc, &c3, 1);
        if (j == 5)
            return tm_build_add(b, x, tm_build_scale(b, y, 0.2f));
        feats[j] = tm_build_act(b, y, TM_ACT_LRELU, 0.2f);
    }
    return -1;
}

static int rrdb(struct tm_build *b, int x, int i, int nf, int gc)
{
    char p[64];
    int y = x;
    for (int k = 1; k <= 3; k++) {
        snprintf(p, sizeof p, "body.%d.rdb%d", i, k);
        y = dense_block(b, y, p, nf, gc);
    }
    return tm_build_add(b, x, tm_build_scale(b, y, 0.2f));
}

static int conv_lrelu(struct tm_build *b, int x, const char *name, int cin, int cout)
{
    return tm_build_act(b, tm_build_conv(b, x, name, cin, cout, &c3, 1), TM_ACT_LRELU, 0.2f);
}

void tm_build_rrdbnet(struct tm_build *b)
{
    const struct tm_arch *a = b->arch;
    struct tm_graph *g = b->g;
    int nf = a->ngf, fold = 4 / a->scale;
    g->input = tm_graph_value(g);
    if (g->input < 0) {
        b->status = TM_ERR_NOMEM;
        return;
    }
    g->tensors[g->input].c = a->input_nc;
    int x = g->input;
    if (fold > 1)
        x = tm_build_resample(b, x, TM_OP_SPACE2DEPTH, fold, TM_D2S_TORCH);
    int feat = tm_build_conv(b, x, "conv_first", a->input_nc * fold * fold, nf, &c3, 1);
    int y = feat;
    for (int i = 0; i < a->n_blocks; i++)
        y = rrdb(b, y, i, nf, a->grow);
    y = tm_build_add(b, feat, tm_build_conv(b, y, "conv_body", nf, nf, &c3, 1));
    y = conv_lrelu(b, tm_build_resample(b, y, TM_OP_UPSAMPLE, 2, 0), "conv_up1", nf, nf);
    y = conv_lrelu(b, tm_build_resample(b, y, TM_OP_UPSAMPLE, 2, 0), "conv_up2", nf, nf);
    y = conv_lrelu(b, y, "conv_hr", nf, nf);
    g->output = tm_build_conv(b, y, "conv_last", nf, a->output_nc, &c3, 1);
}
