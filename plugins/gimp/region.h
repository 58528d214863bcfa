/*
 * region.h: a drawable's pixels through the engine (GIMP 2). Pixels are read
 * and written as float (R'G'B'A, or Y'A for a 1-channel model on a gray
 * layer) whatever the image's precision; GEGL converts.
 */
#ifndef TRANSMUTE_PLUGIN_REGION_H
#define TRANSMUTE_PLUGIN_REGION_H

#include <libgimp/gimp.h>

#include "engine.h"
#include "values.h"

/* The babl format of an engine layout (engine_layer_channels). */
const Babl *region_format(int channels);

/* Reads rect (drawable coordinates) and translates it with v's domains and
 * blend. On success *px holds the result (g_free it): rect's size times the
 * model's scale on each side, *channels floats a pixel; else err holds a
 * one-line message. */
tm_status region_translate(struct engine *e, gint32 drawable, const GeglRectangle *rect,
                           const struct plug_values *v, tm_progress_fn progress, void *priv,
                           float **px, int *channels, char *err, size_t errlen);

/* Writes px into rect through the drawable's shadow buffer and merges it, so
 * that GIMP applies the selection (feathering included) and records undo. */
void region_write(gint32 drawable, const GeglRectangle *rect, int channels, const float *px);

#endif
