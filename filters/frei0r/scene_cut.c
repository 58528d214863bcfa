/* scene_cut.c: the scene-cut detector of scene_cut.h. */
#include "scene_cut.h"

#include <math.h>

/* How much of the running mean a new difference replaces: a few frames'
 * worth, so that a pan sets the usual level within a second or so. */
#define USUAL_WEIGHT 0.25

/* Mean luma (BT.601 weights, 0..1) of the cell's even pixels on even rows;
 * 0 for a cell with no pixel (a frame narrower than the grid). */
static float cell_luma(const uint8_t *rgba, size_t stride, int x0, int x1, int y0, int y1)
{
    uint32_t sum = 0, n = 0;
    for (int y = y0; y < y1; y += 2) {
        const uint8_t *row = rgba + (size_t)y * stride;
        for (int x = x0; x < x1; x += 2, n++) {
            const uint8_t *p = row + (size_t)x * 4;
            sum += 77u * p[0] + 150u * p[1] + 29u * p[2];
        }
    }
    return n ? (float)sum / (float)n / (256.0f * 255.0f) : 0.0f;
}

/* The mean absolute change of the cells since the last frame; the cells
 * then hold this frame. */
static double difference(struct scene_cut *s, const uint8_t *rgba, int width, int height,
                         size_t stride)
{
    double change = 0.0;
    for (int gy = 0; gy < SCENE_CUT_GRID; gy++)
        for (int gx = 0; gx < SCENE_CUT_GRID; gx++) {
            float l = cell_luma(rgba, stride, gx * width / SCENE_CUT_GRID,
                                (gx + 1) * width / SCENE_CUT_GRID, gy * height / SCENE_CUT_GRID,
                                (gy + 1) * height / SCENE_CUT_GRID);
            float *c = &s->cells[gy * SCENE_CUT_GRID + gx];
            change += fabsf(l - *c);
            *c = l;
        }
    return change / (SCENE_CUT_GRID * SCENE_CUT_GRID);
}

bool scene_cut(struct scene_cut *s, const uint8_t *rgba, int width, int height, size_t stride,
               double threshold)
{
    bool comparable = s->have && s->width == width && s->height == height;
    double d = difference(s, rgba, width, height, stride);
    s->have = true;
    s->width = width;
    s->height = height;
    /* The first difference within a scene sets its usual level: the
     * difference across a cut says nothing about the new scene's motion. */
    bool cut = !comparable || (s->have_usual && d - s->usual > threshold);
    if (cut)
        s->have_usual = false;
    else if (s->have_usual)
        s->usual += USUAL_WEIGHT * (d - s->usual);
    else
        s->usual = d;
    s->have_usual |= !cut;
    return cut;
}
