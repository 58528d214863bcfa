/*
 * scene_cut.h: finds scene cuts cheaply, so that norm statistics smoothed
 * across frames restart with the new scene instead of dragging the old
 * one's into it.
 *
 * A frame is reduced to the mean luma of a coarse grid of cells (every
 * second pixel of every second row is read): per-pixel noise averages out
 * inside a cell, a change of content does not. Its difference from the
 * previous frame is the mean absolute change of the cells (0..1). A cut is
 * a jump of that difference above its running mean: a camera pan changes
 * every frame about as much as a cut between two similar shots (0.1 for 5%
 * of the width per frame), but steadily.
 */
#ifndef TRANSMUTE_FREI0R_SCENE_CUT_H
#define TRANSMUTE_FREI0R_SCENE_CUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCENE_CUT_GRID 16

struct scene_cut {
    bool have;          /* cells holds a previous frame */
    int width, height;  /* its size */
    bool have_usual;    /* usual holds a level */
    double usual;       /* running mean of the differences since the last cut */
    float cells[SCENE_CUT_GRID * SCENE_CUT_GRID];
};

/* Whether an 8-bit RGBA frame starts a new scene: its difference from the
 * previous frame given exceeds the usual one by more than threshold (0..1;
 * 1 never), or there is nothing to compare it with (the first frame, a new
 * size). */
bool scene_cut(struct scene_cut *s, const uint8_t *rgba, int width, int height, size_t stride,
               double threshold);

#endif
