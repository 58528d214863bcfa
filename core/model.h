/* model.h: the model object shared by model.c (loading) and translate.c. */
#ifndef TM_MODEL_H
#define TM_MODEL_H

#include "backend.h"
#include "domains.h"
#include "models/models.h"

struct tm_model {
    tm_ctx *ctx;
    struct tm_model_info info;
    struct tm_arch arch;
    int min_side;               /* smallest padded side the graph accepts */
    struct tm_safetensors st;   /* names and metadata; data pointers are dropped */
    struct tm_domains domains;  /* conditioned models; empty otherwise */
    float *arena;               /* float32 copies of every weight tensor */
    struct tm_graph graph;
    void *dev_params;           /* the backend's copy of the weights */
    void *plan;                 /* the plan for the last input size */
    int plan_h, plan_w;
    struct tm_tiled *tiled;     /* tiled.c's per-layer graphs and plans, or NULL */
};

#endif
