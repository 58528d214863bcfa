/*
 * values.h: the plug-in's settings, the PDB parameters after run-mode,
 * image and drawable. Kept between runs with gimp_set_data, so plain
 * fixed-size data.
 */
#ifndef TRANSMUTE_PLUGIN_VALUES_H
#define TRANSMUTE_PLUGIN_VALUES_H

#define PLUG_PROC "plug-in-transmute"
#define PLUG_BINARY "transmute"

/* With a super-resolution model (scale > 1), REPLACE scales the whole
 * layer by the model's factor and fills it with the result; NEW_LAYER
 * cannot hold a result of another size and is refused. */
enum output_mode {
    OUTPUT_REPLACE = 0,   /* the drawable's pixels (its selection) */
    OUTPUT_NEW_LAYER = 1, /* a copy of the layer above it, translated */
    OUTPUT_NEW_IMAGE = 2, /* a new image of the result of the selection's bounds */
};

struct plug_values {
    char model[4096];  /* model file path */
    double blend;      /* 0..1: 1 the translation, 0 the original */
    int output;        /* enum output_mode */
    char domains[1024]; /* comma-separated target domains, "" without */
    char device[256];  /* "" automatic, else as tm_ctx_params.device */
    int preview;       /* the dialog's preview toggle */
};

#define PLUG_VALUES_DEFAULT { .model = "", .blend = 1.0, .output = OUTPUT_REPLACE, \
                              .domains = "", .device = "", .preview = 1 }

#endif
