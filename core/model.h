/* model.h: the model object shared by model.c (loading) and translate.c. */
#ifndef TM_MODEL_H
#define TM_MODEL_H

#include "backend.h"
#include "domains.h"
#include "models/models.h"
#include "smooth.h"

struct tm_model {
    tm_ctx *ctx;
    struct tm_model_info info;
    struct tm_arch arch;
    int min_side;               /* smallest padded side the graph accepts */
    int reach;                  /* receptive radius in input pixels (tm_graph_reach) */
    struct tm_safetensors st;   /* names and metadata; data pointers are dropped */
    struct tm_domains domains;  /* conditioned models; empty otherwise */
    float *arena;               /* float32 copies of every weight tensor */
    struct tm_graph graph;
    void *dev_params;           /* the backend's copy of the weights */
    void *plan;                 /* the plan for the last input size */
    int plan_h, plan_w;
    int auto_h, auto_w, auto_tile; /* translate.c: the automatic tiling choice for that size */
    int overlap_core;           /* tiled_overlap.c: automatic core side, 0 until measured */
    struct tm_tiled *tiled;     /* tiled.c's per-layer conv graphs and weights, or NULL */
    /* Smoothing: the carried norm statistics live in the plan (whole image)
     * or in tiled_stats (tiled path). translate.c starts them afresh after
     * reset_stats is set (tm_model_reset_stats, a failed smoothed run) or
     * when the padded size or the path differs from stats_h, stats_w,
     * stats_tiled (those of the last run). */
    bool reset_stats;
    int stats_h, stats_w;
    bool stats_tiled;
    struct tm_smooth tiled_stats;
};

/* Makes m->plan the backend plan for a ph x pw input (reused while the size
 * stays; translate.c). */
tm_status tm_model_plan(tm_model *m, int ph, int pw);

#endif
