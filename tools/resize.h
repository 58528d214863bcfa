/*
 * resize.h: bicubic resampling of float images, as PIL's Image.resize with
 * BICUBIC does it: Keys' cubic with a = -0.5, separable (horizontal pass,
 * then vertical), and when shrinking the kernel's support is widened by the
 * scale factor so every source pixel contributes (antialiasing). Weights are
 * normalized per output pixel; the window is clipped at the borders.
 */
#ifndef TRANSMUTE_RESIZE_H
#define TRANSMUTE_RESIZE_H

/* Resizes src (sw x sh, ch interleaved float channels, tightly packed) into
 * dst (dw x dh, ch channels, tightly packed, allocated by the caller).
 * Works per channel. levels = 0: plain float (values are not clamped).
 * levels > 0: the data stands for integers 0..levels (scaled to 0..1), and
 * each pass's result is clamped to 0..1 and rounded to a multiple of
 * 1/levels, as PIL does for 8-bit images (levels = 255), which matters where
 * the cubic overshoots. Returns 0, or -1 when out of memory. */
int resize_bicubic(const float *src, int sw, int sh, float *dst, int dw, int dh, int ch,
                   int levels);

#endif
