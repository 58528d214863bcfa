#!/usr/bin/python3
"""frames.py: raw video frames for tests/ffmpeg/test_ffmpeg_filter.sh.

A raw file is frames of one pixel format back to back, as ffmpeg's
`-f rawvideo` writes them; SIZES gives their sizes: "96x64" for all of
them, or "96x64*4,80x48*4" for a size change after four frames. Samples are
compared as 0..255 values whatever the format.

  frames.py compare A FMT_A B FMT_B SIZES [--tol T] [--from N] [--to M]
                    [--sizes-b SIZES_B --drop-b K]
      every frame of A within T (default 2) of B's, frames N to M - 1 (default
      all); B's frames have sizes SIZES_B (default SIZES) and its frame K is
      left out. The frame counts must agree. Prints the largest difference.
  frames.py mix IN FMT REF FMT SIZES BLEND N OUT
      writes OUT (rgb24): REF's frames before N, then IN + BLEND * (REF - IN).
  frames.py noisy OUT SIZE STILL:N... [--cols C] [--sigma S]
      writes OUT (rgb24): N frames of each STILL (one rgb24 frame) with fresh
      Gaussian noise (S/255, default 8) in their first C columns (default
      24) on every frame, the rest still.
  frames.py flicker A FMT SIZES [--x0 X]
      prints the mean absolute change between consecutive frames, of the
      columns from X on.
"""
import argparse
import sys

import numpy as np

# format: (numpy type, channels, scale to 0..255, planar GBR(A) order)
FORMATS = {
    'rgb24': ('u1', 3, 1.0, False),
    'rgba': ('u1', 4, 1.0, False),
    'rgb48le': ('<u2', 3, 255 / 65535, False),
    'rgba64le': ('<u2', 4, 255 / 65535, False),
    'gbrpf32le': ('<f4', 3, 255.0, True),
    'gbrapf32le': ('<f4', 4, 255.0, True),
}


def parse_sizes(spec):
    sizes = []
    for part in spec.split(','):
        dims, _, count = part.partition('*')
        w, h = (int(v) for v in dims.split('x'))
        sizes.append((w, h, int(count) if count else None))
    return sizes


def read(path, fmt, spec):
    """The frames of path as float arrays (h, w, channels), R G B (A)."""
    dtype, ch, scale, planar = FORMATS[fmt]
    data = np.fromfile(path, dtype=dtype)
    frames, pos = [], 0
    for w, h, count in parse_sizes(spec):
        n = w * h * ch
        taken = 0
        while pos + n <= data.size and (count is None or taken < count):
            f = data[pos:pos + n].astype(np.float64) * scale
            if planar:
                f = f.reshape(ch, h, w)[[2, 0, 1, 3][:ch]].transpose(1, 2, 0)
            else:
                f = f.reshape(h, w, ch)
            frames.append(f)
            pos += n
            taken += 1
        if count is not None and taken != count:
            sys.exit(f'{path}: {taken} frames of {w}x{h}, expected {count}')
    if pos != data.size:
        sys.exit(f'{path}: {data.size - pos} samples left over after {len(frames)} frames')
    return frames


def compare(a, fmt_a, b, fmt_b, sizes, tol, first, end, sizes_b, drop_b):
    fa, fb = read(a, fmt_a, sizes), read(b, fmt_b, sizes_b or sizes)
    if drop_b is not None:
        del fb[drop_b]
    if len(fa) != len(fb):
        sys.exit(f'{a}: {len(fa)} frames, {b}: {len(fb)}')
    worst = 0.0
    for i, (x, y) in enumerate(zip(fa, fb)):
        if i < first or (end is not None and i >= end):
            continue
        ch = min(x.shape[2], y.shape[2])
        d = float(np.abs(x[..., :ch] - y[..., :ch]).max())
        worst = max(worst, d)
        if d > tol:
            sys.exit(f'{a}: frame {i} differs from {b} by {d:.2f}/255 (tolerance {tol})')
    print(f'{len(fa)} frames, largest difference {worst:.2f}/255')


def mix(inp, fmt_in, ref, fmt_ref, sizes, blend, first, out):
    fi, fr = read(inp, fmt_in, sizes), read(ref, fmt_ref, sizes)
    with open(out, 'wb') as f:
        for i, (x, t) in enumerate(zip(fi, fr)):
            m = t if i < first else x + blend * (t - x)
            f.write(np.clip(np.rint(m[..., :3]), 0, 255).astype('u1').tobytes())


def noisy(out, size, stills, cols, sigma):
    rng = np.random.default_rng(2026)
    with open(out, 'wb') as f:
        for spec in stills:
            path, _, count = spec.rpartition(':')
            still = read(path, 'rgb24', size)[0]
            for _ in range(int(count)):
                frame = still.copy()
                frame[:, :cols] += rng.normal(0, sigma, frame[:, :cols].shape)
                f.write(np.clip(np.rint(frame), 0, 255).astype('u1').tobytes())


def flicker(a, fmt, sizes, x0):
    fa = read(a, fmt, sizes)
    diffs = [np.abs(fa[i][:, x0:, :3] - fa[i - 1][:, x0:, :3]).mean() for i in range(1, len(fa))]
    print(f'{float(np.mean(diffs)):.4f}')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    c = sub.add_parser('compare')
    for name in ('a', 'fmt_a', 'b', 'fmt_b', 'sizes'):
        c.add_argument(name)
    c.add_argument('--tol', type=float, default=2.0)
    c.add_argument('--from', dest='first', type=int, default=0)
    c.add_argument('--to', dest='end', type=int)
    c.add_argument('--sizes-b')
    c.add_argument('--drop-b', type=int)
    m = sub.add_parser('mix')
    for name in ('inp', 'fmt_in', 'ref', 'fmt_ref', 'sizes'):
        m.add_argument(name)
    m.add_argument('blend', type=float)
    m.add_argument('first', type=int)
    m.add_argument('out')
    n = sub.add_parser('noisy')
    n.add_argument('out')
    n.add_argument('size')
    n.add_argument('stills', nargs='+')
    n.add_argument('--cols', type=int, default=24)
    n.add_argument('--sigma', type=float, default=8.0)
    f = sub.add_parser('flicker')
    for name in ('a', 'fmt', 'sizes'):
        f.add_argument(name)
    f.add_argument('--x0', type=int, default=0)
    args = vars(ap.parse_args())
    cmd = args.pop('cmd')
    {'compare': compare, 'mix': mix, 'noisy': noisy, 'flicker': flicker}[cmd](**args)


if __name__ == '__main__':
    main()
