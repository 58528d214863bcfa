#!/usr/bin/python3
"""PNG helpers for tests/gimp/test_gimp.sh (numpy and PIL).

  png_tool.py make SAMPLE OUT W H MODE     a W x H crop-and-resize of SAMPLE in
                                           PIL mode MODE (RGB, RGBA, L); RGBA
                                           gets a horizontal alpha ramp 0..255
  png_tool.py crop IN OUT X,Y,W,H          the rectangle of IN
  png_tool.py diff A B [X,Y,W,H]           max |A-B| over every channel; with a
                                           rectangle, A's crop against B
  png_tool.py outside A B X,Y,W,H          max |A-B| outside the rectangle
  png_tool.py blend OUT IN REF T           max |OUT - (IN + T*(REF-IN))| over
                                           the colour channels
  png_tool.py alpha A B                    max |alpha(A) - alpha(B)|
Numbers are printed in 8-bit steps.
"""
import sys

import numpy as np
from PIL import Image


def load(path):
    a = np.asarray(Image.open(path)).astype(np.int64)
    return a[:, :, None] if a.ndim == 2 else a


def rect(spec):
    x, y, w, h = (int(v) for v in spec.split(','))
    return x, y, w, h


def crop(a, spec):
    x, y, w, h = rect(spec)
    return a[y:y + h, x:x + w]


def maxdiff(a, b):
    if a.shape != b.shape:
        sys.exit('shapes differ: %s and %s' % (a.shape, b.shape))
    return int(np.abs(a - b).max())


def make(sample, out, w, h, mode):
    im = Image.open(sample).convert('RGB').resize((int(w), int(h)), Image.BICUBIC)
    if mode == 'RGBA':
        im.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, int(w)).astype(np.uint8),
                                            (int(h), 1))))
    im.convert(mode).save(out)


def main(cmd, *args):
    if cmd == 'make':
        make(*args)
    elif cmd == 'crop':
        Image.fromarray(crop(np.asarray(Image.open(args[0])), args[2])).save(args[1])
    elif cmd == 'diff':
        a, b = load(args[0]), load(args[1])
        print(maxdiff(crop(a, args[2]) if len(args) > 2 else a, b))
    elif cmd == 'outside':
        a, b = load(args[0]), load(args[1])
        x, y, w, h = rect(args[2])
        mask = np.ones(a.shape[:2], bool)
        mask[y:y + h, x:x + w] = False
        print(maxdiff(a[mask], b[mask]))
    elif cmd == 'blend':
        out, inp, ref = (load(p) for p in args[:3])
        t = float(args[3])
        want = np.rint(inp + t * (ref - inp))
        print(maxdiff(out[:, :, :3], want[:, :, :3].astype(np.int64)))
    elif cmd == 'alpha':
        print(maxdiff(load(args[0])[:, :, -1:], load(args[1])[:, :, -1:]))
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(*sys.argv[1:]) if len(sys.argv) > 1 else sys.exit(__doc__)
