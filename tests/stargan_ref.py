#!/usr/bin/python3
"""StarGAN's generator in PyTorch with random weights, for parity tests.

The module reproduces the parameter names of the official yunjey/stargan
Generator (main.0 ... main.21 for 6 residual blocks; blocks keep theirs under
main.N.main.K), so a state_dict of this code and one of the official code have
the same keys, shapes and meaning. Affine parameters and running statistics
are random: a loader that used the running statistics, or ignored gamma and
beta, would give a visibly different image.

Used as a module by tests/test_convert.py; `python3 stargan_ref.py -o F`
writes one .safetensors model.
"""

import argparse

import numpy as np
import torch
import torch.nn as nn

import gen_models

CELEBA = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
RAFD = ["angry", "contemptuous", "disgusted", "fearful", "happy", "neutral",
        "sad", "surprised"]


def _in(c):
    return nn.InstanceNorm2d(c, affine=True, track_running_stats=True)


class ResidualBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _in(dim), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _in(dim))

    def forward(self, x):
        return x + self.main(x)


class StarGen(nn.Module):
    def __init__(self, conv_dim=64, c_dim=5, repeat_num=6):
        super().__init__()
        layers = [nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False), _in(conv_dim),
                  nn.ReLU(inplace=True)]
        d = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(d, d * 2, 4, 2, 1, bias=False), _in(d * 2), nn.ReLU(inplace=True)]
            d *= 2
        layers += [ResidualBlock(d) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False), _in(d // 2),
                       nn.ReLU(inplace=True)]
            d //= 2
        layers += [nn.Conv2d(d, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x, c):
        c = c.view(c.size(0), c.size(1), 1, 1).repeat(1, 1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


def build(conv_dim=16, c_dim=5, repeat_num=6, seed=0, dtype="F32"):
    """Random weights rounded to dtype; train() mode, as the official test
    (per-image statistics; momentum 0 keeps the stored running ones)."""
    model = StarGen(conv_dim, c_dim, repeat_num)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = m.weight[0].numel() / (m.stride[0] * m.stride[1] if
                                                isinstance(m, nn.ConvTranspose2d) else 1)
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.InstanceNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.3)
                m.running_mean.copy_(torch.randn(c, generator=g))
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.num_batches_tracked.fill_(200000)
                m.momentum = 0.0
        if dtype != "F32":
            for t in list(model.parameters()) + list(model.buffers()):
                if t.is_floating_point():
                    t.copy_(gen_models._round_to(t, dtype))
    model.train()
    return model


def metadata(model, domains, groups=None):
    conv = model.main[0]
    md = {"arch": "stargan", "input_nc": "3", "output_nc": "3",
          "ngf": str(conv.out_channels),
          "n_blocks": str(sum(isinstance(m, ResidualBlock) for m in model.main)),
          "domains": ",".join(domains), "name": "stargan-random",
          "description": "random weights for testing, not a trained model",
          "license": "CC0-1.0"}
    if groups:
        md["domain_groups"] = groups
    return md


@torch.no_grad()
def reference_translate(model, img01, label):
    """img01: float32 (H, W, 3) in 0..1 with sides a multiple of 4; label:
    the full label vector. Returns the -1..1 output (H, W, 3)."""
    x = torch.from_numpy(np.ascontiguousarray(img01.transpose(2, 0, 1)))[None] * 2 - 1
    c = torch.from_numpy(np.asarray(label, np.float32))[None]
    return model(x, c)[0].permute(1, 2, 0).numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conv_dim", type=int, default=16)
    ap.add_argument("--repeat_num", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--multi", action="store_true",
                    help="CelebA and RaFD labels plus the dataset mask (15 values)")
    ap.add_argument("--dtype", choices=gen_models.DTYPES, default="F32")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    names = CELEBA + (RAFD if a.multi else [])
    model = build(a.conv_dim, len(names) + (2 if a.multi else 0), a.repeat_num, a.seed, a.dtype)
    md = metadata(model, names, "CelebA:5,RaFD:8" if a.multi else None)
    md["name"] = "demo-stargan-random"
    md["source"] = "tests/stargan_ref.py --conv_dim %d --repeat_num %d --seed %d%s --dtype %s" % (
        a.conv_dim, a.repeat_num, a.seed, " --multi" if a.multi else "", a.dtype)
    gen_models.write_safetensors(a.output, model.state_dict(), md, a.dtype)


if __name__ == "__main__":
    main()
