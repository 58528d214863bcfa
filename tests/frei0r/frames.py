#!/usr/bin/python3
"""frames.py: PNG frame folders for tests/frei0r/test_frei0r.sh.

    frames.py diff REF OUT [--width W] [--frame K]
        the largest |difference| (0..255) of RGB samples between the frames
        of two folders, in name order, over the left W columns of both
        (default: all; sizes must then match), or only the K-th frames (1-based)
    frames.py blend IN TRANSLATED OUT BLEND
        IN + BLEND * (TRANSLATED - IN), rounded: what the filter's blend gives
    frames.py still IMAGE OUT COUNT WIDTH HEIGHT [--cut K]
        IMAGE at WIDTH x HEIGHT, still but for a patch of fresh noise in the
        top-left corner of every frame; from frame K on, another scene (the
        image upside down in inverted colours)
    frames.py pan IMAGE OUT COUNT WIDTH HEIGHT STEP
        a WIDTH x HEIGHT window moving right by STEP pixels a frame over IMAGE
    frames.py flicker DIR
        the mean |change| from frame to frame of the still part of `still`
        frames (outside the noise patch and the network's reach from it)
Exits 2 with a message on unusable input.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

PATCH_W, PATCH_H = 48, 40
REACH = 32  # beyond the patch by this much, the still part is taken as unaffected


def frames(folder):
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png")) \
        if os.path.isdir(folder) else []
    if not names:
        sys.exit("frames.py: no PNG frames in " + folder)
    return [os.path.join(folder, n) for n in names]


def rgb(path):
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int32)


def diff(a):
    ref, out = frames(a.ref), frames(a.out)
    if len(ref) != len(out):
        sys.exit("frames.py: %d frames in %s, %d in %s" % (len(ref), a.ref, len(out), a.out))
    pairs = list(zip(ref, out))
    if a.frame:
        pairs = [pairs[a.frame - 1]]
    worst = 0
    for r, o in pairs:
        x, y = rgb(r), rgb(o)
        if a.width:
            x, y = x[:, :a.width], y[:, :a.width]
        if x.shape != y.shape:
            sys.exit("frames.py: %s is %s, %s is %s" % (r, x.shape, o, y.shape))
        worst = max(worst, int(np.abs(x - y).max()))
    print(worst)


def blend(a):
    os.makedirs(a.out, exist_ok=True)
    for i, t in zip(frames(a.input), frames(a.translated)):
        x, y = rgb(i).astype(np.float32), rgb(t).astype(np.float32)
        mix = np.rint(x + np.float32(a.blend) * (y - x)).astype(np.uint8)
        Image.fromarray(mix).save(os.path.join(a.out, os.path.basename(i)))


def still(a):
    os.makedirs(a.out, exist_ok=True)
    base = np.asarray(Image.open(a.image).convert("RGB").resize((a.width, a.height)))
    other = 255 - base[::-1]
    rng = np.random.default_rng(2026)
    for i in range(1, a.count + 1):
        f = (other if a.cut and i >= a.cut else base).copy()
        f[:PATCH_H, :PATCH_W] = rng.integers(0, 256, (PATCH_H, PATCH_W, 3))
        Image.fromarray(f).save(os.path.join(a.out, "%03d.png" % i))


def pan(a):
    os.makedirs(a.out, exist_ok=True)
    wide = Image.open(a.image).convert("RGB").resize((a.width + a.step * a.count, a.height))
    for i in range(a.count):
        box = (a.step * i, 0, a.step * i + a.width, a.height)
        wide.crop(box).save(os.path.join(a.out, "%03d.png" % (i + 1)))


def flicker(a):
    f = [rgb(p) for p in frames(a.dir)]
    if len(f) < 2:
        sys.exit("frames.py: flicker needs two frames or more in " + a.dir)
    still_part = np.ones(f[0].shape[:2], bool)
    still_part[:PATCH_H + REACH, :PATCH_W + REACH] = False
    print("%.3f" % np.mean([np.abs(x - y)[still_part].mean() for x, y in zip(f, f[1:])]))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("diff")
    d.add_argument("ref")
    d.add_argument("out")
    d.add_argument("--width", type=int)
    d.add_argument("--frame", type=int)
    b = sub.add_parser("blend")
    b.add_argument("input")
    b.add_argument("translated")
    b.add_argument("out")
    b.add_argument("blend", type=float)
    s = sub.add_parser("still")
    s.add_argument("image")
    s.add_argument("out")
    s.add_argument("count", type=int)
    s.add_argument("width", type=int)
    s.add_argument("height", type=int)
    s.add_argument("--cut", type=int)
    n = sub.add_parser("pan")
    n.add_argument("image")
    n.add_argument("out")
    n.add_argument("count", type=int)
    n.add_argument("width", type=int)
    n.add_argument("height", type=int)
    n.add_argument("step", type=int)
    f = sub.add_parser("flicker")
    f.add_argument("dir")
    a = p.parse_args()
    {"diff": diff, "blend": blend, "still": still, "pan": pan, "flicker": flicker}[a.cmd](a)


if __name__ == "__main__":
    main()
