#!/usr/bin/python3
"""A tiny random-weight super-resolution model (arch=graph, docs/GRAPH.md)
and its PyTorch reference, for the front ends' tests.

The network, 2x, RGB, pixel range 0..1:

    LR -> conv3x3 3->8 (pad 1) -> PReLU -> conv3x3 8->12 (pad 1)
       -> depth_to_space 2 (torch order: nn.PixelShuffle) -> 3 channels at 2x
       -> add the input upsampled 2x (nearest) -> SR

The skip path keeps the output near the (upsampled) input, so little of it
is clamped to 0..1 (about 3% of the samples of a photo) and a comparison
sees the network's values; the conv branch moves pixels by about 0.09 on
average, so a backend that gets it wrong shows. Its receptive radius is 2
input pixels: tiles (--tile 16) have margins to cut.

    gen_sr_model.py -o sr2x.safetensors [--seed N]
        writes the model
    gen_sr_model.py --reference MODEL IN OUT
        what tm_translate must give for IN, clamped to 0..1: a PFM (RGB,
        float) to a PFM, or any image PIL reads (alpha is dropped) to an
        8-bit RGB PNG (needs PIL)

Needs torch and numpy (Debian: /usr/bin/python3 with python3-torch).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_models import read_pfm, read_safetensors, write_pfm, write_safetensors  # noqa: E402

SCALE = 2


class TinySR(nn.Module):
    """The network above; state_dict keys are the graph's tensor names."""

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.PReLU(8)
        self.body = nn.Conv2d(8, 3 * SCALE * SCALE, 3, padding=1)
        self.shuffle = nn.PixelShuffle(SCALE)
        self.up = nn.Upsample(scale_factor=SCALE, mode="nearest")

    def forward(self, x):
        return self.shuffle(self.body(self.act(self.head(x)))) + self.up(x)

    def graph_tensors(self):
        return {
            "head.weight": self.head.weight, "head.bias": self.head.bias,
            "act.weight": self.act.weight,
            "body.weight": self.body.weight, "body.bias": self.body.bias,
        }


GRAPH = {
    "input": "LR", "output": "SR",
    "nodes": [
        {"name": "head", "op": "conv2d", "inputs": ["LR"], "kernel": [3, 3], "pad": 1},
        {"name": "act", "op": "prelu", "inputs": ["head"]},
        {"name": "body", "op": "conv2d", "inputs": ["act"], "kernel": [3, 3], "pad": 1},
        {"name": "shuffle", "op": "depth_to_space", "inputs": ["body"], "factor": SCALE,
         "order": "torch"},
        {"name": "up", "op": "upsample", "inputs": ["LR"], "factor": SCALE},
        {"name": "SR", "op": "add", "inputs": ["shuffle", "up"]},
    ],
}


def build(seed):
    g = torch.Generator().manual_seed(seed)
    m = TinySR()
    with torch.no_grad():
        m.head.weight.copy_(torch.randn(m.head.weight.shape, generator=g) * 0.4)
        m.head.bias.copy_(torch.randn(m.head.bias.shape, generator=g) * 0.1)
        # Slopes of both signs, so a backend that ignores them shows.
        m.act.weight.copy_(torch.rand(m.act.weight.shape, generator=g) * 1.2 - 0.4)
        m.body.weight.copy_(torch.randn(m.body.weight.shape, generator=g) * 0.03)
        m.body.bias.copy_(torch.randn(m.body.bias.shape, generator=g) * 0.02)
    return m.eval()


def write(model, path, seed):
    meta = {
        "arch": "graph", "input_nc": 3, "output_nc": 3, "scale": SCALE, "range": "0,1",
        "graph": json.dumps(GRAPH, separators=(",", ":")),
        "name": "tiny-sr2x-random",
        "description": "random weights (seed %d), tests only" % seed,
    }
    write_safetensors(path, model.graph_tensors(), meta)


def load(path):
    meta, arrays, _ = read_safetensors(path)
    if meta.get("arch") != "graph" or json.loads(meta["graph"]) != GRAPH:
        raise SystemExit("%s: not a model written by gen_sr_model.py" % path)
    m = TinySR()
    with torch.no_grad():
        for name, t in m.graph_tensors().items():
            t.copy_(torch.from_numpy(np.ascontiguousarray(arrays[name])))
    return m.eval()


@torch.no_grad()
def reference(model, img01):
    """img01: float32 (H, W, 3) in 0..1 -> (2H, 2W, 3) in 0..1, unclamped.
    Range 0..1 both ways: no mapping; no padding (the graph has none)."""
    x = torch.from_numpy(np.ascontiguousarray(img01.transpose(2, 0, 1)))[None]
    return model(x)[0].permute(1, 2, 0).numpy()


def run_reference(mpath, ipath, opath):
    """PFM to PFM needs no PIL (tests/test_cli.sh has none)."""
    if ipath.endswith(".pfm"):
        img = read_pfm(ipath)
        if img.shape[2] != 3:
            raise SystemExit("%s: an RGB PFM is needed" % ipath)
        write_pfm(opath, np.clip(reference(load(mpath), img), 0, 1))
        return
    from PIL import Image
    img = np.asarray(Image.open(ipath).convert("RGB"), np.float32) / 255.0
    y = reference(load(mpath), img)
    Image.fromarray(np.rint(np.clip(y, 0, 1) * 255).astype(np.uint8)).save(opath)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", help="write the model here")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reference", nargs=3, metavar=("MODEL", "IN", "OUT"))
    a = ap.parse_args()
    if a.output:
        write(build(a.seed), a.output, a.seed)
    if a.reference:
        run_reference(*a.reference)
    if not a.output and not a.reference:
        ap.error("nothing to do: -o and/or --reference")


if __name__ == "__main__":
    main()
