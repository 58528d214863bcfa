/* smooth.c: host-side carried norm statistics (see smooth.h). */
#include <stdlib.h>

#include "smooth.h"

tm_status tm_smooth_init(tm_ctx *ctx, struct tm_smooth *s, const struct tm_graph *g)
{
    *s = (struct tm_smooth){ .at = calloc((size_t)g->n_nodes + 1, sizeof *s->at) };
    size_t pairs = 0;
    for (int i = 0; s->at && i < g->n_nodes; i++) {
        s->at[i] = pairs;
        if (tm_norm_smoothable(&g->nodes[i]))
            pairs += (size_t)g->tensors[g->nodes[i].in[0]].c;
    }
    s->stats = calloc(2 * pairs + 1, sizeof *s->stats);
    if (s->at && s->stats)
        return TM_OK;
    tm_smooth_free(s);
    return tm_fail(ctx, TM_ERR_NOMEM, "out of memory for the smoothed norm statistics");
}

void tm_smooth_free(struct tm_smooth *s)
{
    free(s->stats);
    free(s->at);
    *s = (struct tm_smooth){ 0 };
}

bool tm_smooth_begin(struct tm_smooth *s, const struct tm_run_opts *opts)
{
    if (!opts || !(opts->smoothing > 0.0f))
        return false;
    s->weight = s->carried && !opts->reset_stats ? (double)opts->smoothing : 0.0;
    s->carried = true;
    return true;
}

void tm_smooth_use(const struct tm_smooth *s, int node, int c, double *mean, double *var)
{
    double *carried = s->stats + 2 * (s->at[node] + (size_t)c);
    if (s->weight > 0.0) {
        *mean = s->weight * carried[0] + (1.0 - s->weight) * *mean;
        *var = s->weight * carried[1] + (1.0 - s->weight) * *var;
    }
    carried[0] = *mean;
    carried[1] = *var;
}
