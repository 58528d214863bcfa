#!/usr/bin/python3
"""PyTorch reference for tests/test_smoothing.c (tm_translate_params.smoothing).

Writes into OUTDIR:
  resnet.safetensors        ResNet, ngf 8, 2 blocks, instance norm (random weights)
  unet-image.safetensors    U-Net (5 downs), ngf 8, batch norm with image statistics
  unet-running.safetensors  the same with running statistics (never smoothed)
  frame<k>.pfm              N_FRAMES frames of a slowly changing clip, RGB 0..1
  ref-<name>-<k>.pfm        what a fresh model makes of frames 0..k with SMOOTHING,
                            (y+1)/2 clamped to 0..1, for resnet, unet-image and
                            stargan (STARGAN_MODEL with the label Blond_Hair,Young)

The reference replaces the forward of every norm that normalizes with the
image's statistics (InstanceNorm2d, and BatchNorm2d in training mode) by the
rule the core implements: per channel, in double,
  used = s * carried + (1 - s) * this frame's   (mean, biased variance)
  carried = used   (the first frame uses, and carries, its own)
Usage: smoothing_ref.py OUTDIR STARGAN_MODEL
"""

import sys

import numpy as np
import torch
import torch.nn as nn

import gen_models as gm
import stargan_ref as sr

SMOOTHING = 0.6
N_FRAMES = 4
WIDTH, HEIGHT = 45, 37
STARGAN_LABEL = [0, 1, 0, 0, 1] + [0] * 8 + [1, 0]  # Blond_Hair, Young; CelebA mask


def frames():
    """A pattern whose phase drifts from frame to frame, so that every norm's
    statistics move a little."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    clip = []
    for f in range(N_FRAMES):
        planes = [0.5 + 0.4 * np.sin(0.21 * (c + 1) * xx + 0.13 * yy + 0.7 * f) *
                  np.cos(0.09 * (c + 2) * yy - 0.3 * f) for c in range(3)]
        clip.append(np.stack(planes, -1).astype(np.float32))
    return clip


def smoothed_forward(mod, s):
    carried = []

    def forward(x):
        x = x.double()
        mean = x.mean(dim=(0, 2, 3))
        var = ((x - mean[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))
        if carried:
            cm, cv = carried.pop()
            mean = s * cm + (1 - s) * mean
            var = s * cv + (1 - s) * var
        carried.append((mean, var))
        y = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + mod.eps)
        if mod.affine:
            y = y * mod.weight.double()[None, :, None, None] + mod.bias.double()[None, :, None, None]
        return y.float()
    return forward


def smooth_norms(model, s):
    """Patches every norm that PyTorch would run with the batch's (here the
    image's) statistics; batch norm with running statistics stays as it is."""
    for mod in model.modules():
        if isinstance(mod, (nn.InstanceNorm2d, nn.BatchNorm2d)) and \
                (mod.training or not mod.track_running_stats):
            mod.forward = smoothed_forward(mod, s)
    return model


def load_stargan(path):
    meta, arrays, _ = gm.read_safetensors(path)
    model = sr.StarGen(int(meta["ngf"]), len(STARGAN_LABEL), int(meta["n_blocks"]))
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()},
                          strict=True)
    return model.train()


@torch.no_grad()
def stargan_translate(model, img01):
    """As tm_translate: sides mirrored out to a multiple of 4, then cropped."""
    h, w = img01.shape[:2]
    x = gm.pad_to_multiple(img01, 4, 4)
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None] * 2 - 1
    c = torch.tensor(STARGAN_LABEL, dtype=torch.float32)[None]
    return model(x, c)[0, :, :h, :w].permute(1, 2, 0).numpy()


def write_refs(outdir, name, model, translate, clip):
    smooth_norms(model, SMOOTHING)
    for k, img in enumerate(clip):
        y = translate(model, img)
        gm.write_pfm("%s/ref-%s-%d.pfm" % (outdir, name, k), np.clip((y + 1) / 2, 0, 1))


def main():
    outdir, stargan = sys.argv[1], sys.argv[2]
    gm.generate(outdir + "/resnet.safetensors", arch="resnet", ngf=8, n_blocks=2, seed=21)
    for stats in ("image", "running"):
        gm.generate("%s/unet-%s.safetensors" % (outdir, stats), arch="unet", num_downs=5,
                    ngf=8, norm="batch", norm_stats=stats, seed=22)
    clip = frames()
    for k, img in enumerate(clip):
        gm.write_pfm("%s/frame%d.pfm" % (outdir, k), img)
    for name in ("resnet", "unet-image"):
        model = gm.load_generator("%s/%s.safetensors" % (outdir, name))
        write_refs(outdir, name, model, gm.reference_translate, clip)
    write_refs(outdir, "stargan", load_stargan(stargan), stargan_translate, clip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
