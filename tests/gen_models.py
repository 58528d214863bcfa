#!/usr/bin/python3
"""Random-weight GAN generators in PyTorch, written as Transmute .safetensors.

The module layouts reproduce the parameter names of the official
junyanz/pytorch-CycleGAN-and-pix2pix generators (ResnetGenerator and
UnetGenerator), so that a state_dict of this code and one of the official code
have the same keys, shapes and meaning. The weights are random (fixed seed);
normalisation affine parameters and running statistics are random too, so a
loader that ignores or swaps them gives a visibly wrong image.

Used two ways:
  * command line: writes one model file (see --help);
  * module: tests/test_parity.py and bench/run_bench.py import it for
    build_generator(), write_safetensors(), reference_translate(), PFM I/O.

Needs torch and numpy only (Debian: /usr/bin/python3 with python3-torch).
No `safetensors` package: the format is written by hand (docs/FORMAT.md).
"""

import argparse
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

DTYPES = ("F32", "F16", "BF16")
_TORCH_DTYPE = {"F32": torch.float32, "F16": torch.float16,
                "BF16": torch.bfloat16, "I64": torch.int64}
_ELEM_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}


# ---------------------------------------------------------------------------
# Model definitions
# ---------------------------------------------------------------------------

def _norm(kind, channels):
    """The normalisation layer the official get_norm_layer() would build."""
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False,
                                 track_running_stats=False)
    if kind == "none":
        return nn.Identity()   # keeps the Sequential indices of the others
    raise ValueError("unknown norm %r" % kind)


class ResBlock(nn.Module):
    """One residual block; parameters live under `conv_block.<i>`."""

    def __init__(self, dim, padding, norm, dropout, bias):
        super().__init__()
        layers = []
        for second in (False, True):
            if padding == "reflect":
                layers.append(nn.ReflectionPad2d(1))
                conv_pad = 0
            elif padding == "zero":
                conv_pad = 1
            else:
                raise ValueError("unknown padding %r" % padding)
            layers.append(nn.Conv2d(dim, dim, 3, padding=conv_pad, bias=bias))
            layers.append(_norm(norm, dim))
            if not second:
                layers.append(nn.ReLU())
                if dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGen(nn.Module):
    """CycleGAN ResNet generator: keys model.1 ... model.26 for 9 blocks."""

    def __init__(self, input_nc=3, output_nc=3, ngf=64, norm="instance",
                 n_blocks=9, padding="reflect", dropout=False):
        super().__init__()
        bias = norm == "instance"   # official: conv bias only next to instance norm
        seq = [nn.ReflectionPad2d(3),
               nn.Conv2d(input_nc, ngf, 7, padding=0, bias=bias),
               _norm(norm, ngf), nn.ReLU()]
        ch = ngf
        for _ in range(2):   # two stride-2 convs; always zero padding 1
            seq += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias),
                    _norm(norm, ch * 2), nn.ReLU()]
            ch *= 2
        for _ in range(n_blocks):
            seq.append(ResBlock(ch, padding, norm, dropout, bias))
        for _ in range(2):
            seq += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1,
                                       output_padding=1, bias=bias),
                    _norm(norm, ch // 2), nn.ReLU()]
            ch //= 2
        seq += [nn.ReflectionPad2d(3),
                nn.Conv2d(ch, output_nc, 7, padding=0),   # always has a bias
                nn.Tanh()]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


class UnetLevel(nn.Module):
    """One level of the U-Net; its layers are `model.<i>`, the next level
    sits inside as one entry of that Sequential."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, inner=None,
                 outermost=False, innermost=False, norm="batch",
                 dropout=False):
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"
        if input_nc is None:
            input_nc = outer_nc
        down = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if outermost:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2,
                                    padding=1)             # always has a bias
            layers = [down, inner, nn.ReLU(), up, nn.Tanh()]
        elif innermost:
            up = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2,
                                    padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down, nn.ReLU(), up,
                      _norm(norm, outer_nc)]
        else:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2,
                                    padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down, _norm(norm, inner_nc), inner,
                      nn.ReLU(), up, _norm(norm, outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        # The official block starts with an in-place LeakyReLU, which also
        # rewrites the tensor the skip connection concatenates: the skip
        # path therefore carries lrelu(x), not x. Done explicitly here.
        a = self.model[0](x)
        y = self.model[1:](a)
        return torch.cat([a, y], 1)


class UnetGen(nn.Module):
    """pix2pix U-Net generator: keys model.model.0 ..., nested
    model.model.1.model.1 ... for each deeper level."""

    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64,
                 norm="batch", dropout=False):
        super().__init__()
        if num_downs < 5:
            raise ValueError("num_downs must be >= 5")
        lvl = UnetLevel(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            lvl = UnetLevel(ngf * 8, ngf * 8, inner=lvl, norm=norm,
                            dropout=dropout)
        lvl = UnetLevel(ngf * 4, ngf * 8, inner=lvl, norm=norm)
        lvl = UnetLevel(ngf * 2, ngf * 4, inner=lvl, norm=norm)
        lvl = UnetLevel(ngf, ngf * 2, inner=lvl, norm=norm)
        self.model = UnetLevel(output_nc, ngf, input_nc=input_nc, inner=lvl,
                               outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


# ---------------------------------------------------------------------------
# Configuration, random weights, metadata
# ---------------------------------------------------------------------------

DEFAULTS = dict(arch="resnet", input_nc=3, output_nc=3, ngf=64,
                norm="instance", norm_stats="image", n_blocks=9, num_downs=8,
                padding="reflect", dropout=False, seed=0, dtype="F32",
                name=None, description=None)


def make_config(**kw):
    cfg = dict(DEFAULTS)
    for k, v in kw.items():
        if k not in cfg:
            raise TypeError("unknown option %r" % k)
        if v is not None:
            cfg[k] = v
    if cfg["arch"] not in ("resnet", "unet"):
        raise ValueError("arch must be resnet or unet")
    if cfg["norm"] not in ("instance", "batch", "none"):
        raise ValueError("norm must be instance, batch or none")
    if cfg["norm_stats"] not in ("image", "running"):
        raise ValueError("norm_stats must be image or running")
    if cfg["dtype"] not in DTYPES:
        raise ValueError("dtype must be one of %s" % ", ".join(DTYPES))
    return cfg


def pad_multiple(cfg):
    return 4 if cfg["arch"] == "resnet" else 2 ** cfg["num_downs"]


def _round_to(t, dtype):
    return t.to(_TORCH_DTYPE[dtype]).to(torch.float32)


def _make_module(cfg):
    """The untrained torch module the options describe."""
    if cfg["arch"] == "resnet":
        return ResnetGen(cfg["input_nc"], cfg["output_nc"], cfg["ngf"],
                         cfg["norm"], cfg["n_blocks"], cfg["padding"],
                         cfg["dropout"])
    return UnetGen(cfg["input_nc"], cfg["output_nc"], cfg["num_downs"],
                   cfg["ngf"], cfg["norm"], cfg["dropout"])


def build_generator(cfg):
    """A generator with random weights already rounded to cfg['dtype'], so
    that the torch model computes exactly with what the file stores."""
    cfg = make_config(**cfg)
    model = _make_module(cfg)
    g = torch.Generator().manual_seed(int(cfg["seed"]))

    def randn(shape, std=1.0, mean=0.0):
        return torch.randn(shape, generator=g) * std + mean

    def rand(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
                mod.weight.copy_(randn(mod.weight.shape, (2.0 / fan_in) ** 0.5))
            elif isinstance(mod, nn.ConvTranspose2d):
                # each output pixel sees about in*k*k/stride^2 inputs
                fan_in = (mod.in_channels * mod.kernel_size[0] *
                          mod.kernel_size[1]) / (mod.stride[0] * mod.stride[1])
                mod.weight.copy_(randn(mod.weight.shape, (2.0 / fan_in) ** 0.5))
            elif isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(rand(c, 0.5, 1.5))
                mod.bias.copy_(randn(c, 0.3))
                # running statistics: plausible but not the identity, so a
                # loader that mixes up `image` and `running` fails the tests
                mod.running_mean.copy_(randn(c, 0.3))
                mod.running_var.copy_(rand(c, 0.3, 1.5))
                mod.num_batches_tracked.fill_(1000)
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)) and \
                    mod.bias is not None:
                mod.bias.copy_(randn(mod.bias.shape, 0.1))
        if cfg["norm"] == "none":
            _calibrate_output(model, cfg, g)
        if cfg["dtype"] != "F32":
            for t in list(model.parameters()) + list(model.buffers()):
                if t.is_floating_point():
                    t.copy_(_round_to(t, cfg["dtype"]))
    set_inference_mode(model, cfg["norm_stats"])
    model.tm_config = cfg
    return model


def _final_conv(model):
    if isinstance(model, ResnetGen):
        return model.model[-2]
    return model.model.model[3]


def _calibrate_output(model, cfg, g):
    """Without normalisation the activations of random weights grow through
    the network and tanh saturates, which would hide errors: rescale the
    last conv so that its output has a standard deviation of about 1."""
    side = 32 if cfg["arch"] == "resnet" else 2 ** cfg["num_downs"]
    x = torch.rand((1, cfg["input_nc"], side, side), generator=g) * 2 - 1
    conv = _final_conv(model)
    seen = []
    h = conv.register_forward_hook(lambda m, i, o: seen.append(o.std().item()))
    model.eval()
    model(x)
    h.remove()
    s = max(seen[0], 1e-6)
    conv.weight.div_(s)
    conv.bias.div_(s)


def set_inference_mode(model, norm_stats):
    """Dropout is identity; batch norm uses per-image statistics ('image',
    like the official test script, which never calls eval()) or the stored
    running statistics ('running')."""
    if norm_stats == "image":
        model.train()
        # train-mode batch norm updates running stats; harmless, but keep
        # them as stored by not tracking (momentum 0 leaves them unchanged)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.0
            if isinstance(m, nn.Dropout):
                m.eval()
    else:
        model.eval()
    return model


def metadata(cfg):
    cfg = make_config(**cfg)
    md = {"arch": cfg["arch"],
          "input_nc": str(cfg["input_nc"]),
          "output_nc": str(cfg["output_nc"]),
          "ngf": str(cfg["ngf"]),
          "norm": cfg["norm"]}
    if cfg["arch"] == "resnet":
        md["n_blocks"] = str(cfg["n_blocks"])
        md["padding"] = cfg["padding"]
    else:
        md["num_downs"] = str(cfg["num_downs"])
    if cfg["norm"] == "batch":
        md["norm_stats"] = cfg["norm_stats"]
    md["dropout"] = "true" if cfg["dropout"] else "false"
    if cfg["name"] is None:
        if cfg["arch"] == "resnet":
            md["name"] = "resnet_%dblocks" % cfg["n_blocks"]
        else:
            md["name"] = "unet_%d" % (2 ** cfg["num_downs"])
    else:
        md["name"] = cfg["name"]
    md["description"] = cfg["description"] or (
        "random weights (seed %d) for testing, not a trained model" % cfg["seed"])
    md["source"] = "tests/gen_models.py"
    md["license"] = "CC0-1.0"
    return md


# ---------------------------------------------------------------------------
# safetensors writer / reader
# ---------------------------------------------------------------------------

def _tensor_bytes(t, dtype):
    t = t.detach().cpu().contiguous()
    if dtype == "F32":
        return t.to(torch.float32).numpy().astype("<f4").tobytes()
    if dtype == "F16":
        return t.to(torch.float16).numpy().astype("<f2").tobytes()
    if dtype == "BF16":
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    if dtype == "I64":
        return t.to(torch.int64).numpy().astype("<i8").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, meta, dtype="F32"):
    """tensors: ordered {name: torch tensor}. Floating tensors are stored as
    `dtype`, integer ones as I64. 8-byte tensors go first so that every
    tensor starts at a multiple of its element size."""
    items = []
    for name, t in tensors.items():
        dt = dtype if t.is_floating_point() else "I64"
        items.append((name, dt, list(t.shape), _tensor_bytes(t, dt)))
    items.sort(key=lambda it: -_ELEM_SIZE[it[1]])   # stable: keeps name order
    header = {"__metadata__": {str(k): str(v) for k, v in meta.items()}}
    off = 0
    for name, dt, shape, data in items:
        header[name] = {"dtype": dt, "shape": shape,
                        "data_offsets": [off, off + len(data)]}
        off += len(data)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * (-len(hj) % 8)   # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for _, _, _, data in items:
            f.write(data)


def read_safetensors(path):
    """Returns (metadata, {name: float32/int64 numpy array}, {name: dtype})."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out, dts = {}, {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = blob[base + b:base + e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, "<f4").astype(np.float32)
        elif dt == "F16":
            a = np.frombuffer(raw, "<f2").astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "I64":
            a = np.frombuffer(raw, "<i8").copy()
        else:
            raise ValueError("unsupported dtype %s" % dt)
        out[name] = a.reshape(info["shape"])
        dts[name] = dt
    return meta, out, dts


def save_generator(model, path):
    cfg = model.tm_config
    write_safetensors(path, model.state_dict(), metadata(cfg), cfg["dtype"])


def generate(path, **kw):
    """Builds a random model for the options and writes it; returns it."""
    model = build_generator(make_config(**kw))
    save_generator(model, path)
    return model


def load_generator(path, norm_stats=None):
    """Builds the torch generator a .safetensors file describes (from its
    metadata) and loads its tensors (converted to float32)."""
    meta, arrays, dts = read_safetensors(path)
    md = lambda k, d=None: meta.get(k, d)
    fdt = [d for d in dts.values() if d != "I64"]
    cfg = make_config(arch=md("arch"), input_nc=int(md("input_nc")),
                      output_nc=int(md("output_nc")), ngf=int(md("ngf")),
                      norm=md("norm"),
                      norm_stats=norm_stats or md("norm_stats", "image"),
                      n_blocks=int(md("n_blocks", 9)),
                      num_downs=int(md("num_downs", 8)),
                      padding=md("padding", "reflect"),
                      dropout=md("dropout", "false") == "true",
                      dtype=fdt[0] if fdt else "F32",
                      name=md("name"), description=md("description"))
    model = _make_module(cfg)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    model.load_state_dict(sd, strict=True)
    set_inference_mode(model, cfg["norm_stats"])
    model.tm_config = cfg
    return model


# ---------------------------------------------------------------------------
# Reference pre/post-processing (what tm_translate computes)
# ---------------------------------------------------------------------------

def mirror_index(n, size):
    """Indices 0..size-1 into an axis of length n, continuing past the end
    by reflection without repeating the edge sample (PyTorch 'reflect'),
    repeated as often as needed: period 2n-2."""
    i = np.arange(size)
    if n == 1:
        return np.zeros(size, dtype=np.int64)
    p = i % (2 * n - 2)
    return np.where(p < n, p, 2 * n - 2 - p)


def min_side(cfg):
    """The smallest padded side the network accepts: a ResNet needs its
    trunk (1/4 scale) to be at least 2 for the reflect padding of 1."""
    return 8 if cfg["arch"] == "resnet" else 2 ** cfg["num_downs"]


def padded_side(n, m, least=1):
    return max(n + (-n % m), least)


def pad_to_multiple(img, m, least=1):
    """img: (H, W, C). Reflect-pads at the bottom and right only, up to the
    next multiple of m and at least `least`."""
    h, w = img.shape[:2]
    return img[mirror_index(h, padded_side(h, m, least))][
        :, mirror_index(w, padded_side(w, m, least))]


@torch.no_grad()
def reference_translate(model, img01, multiple=None):
    """img01: float32 (H, W, input_nc) in [0, 1]. Returns the model output
    (H, W, output_nc) on the -1..1 scale (before the (y+1)/2 mapping),
    computed in fp32 exactly as Transmute's contract describes:
    x*2-1, reflect-pad bottom/right to the multiple (and at least the
    smallest side the network takes), run, crop."""
    if multiple is None:
        multiple = pad_multiple(model.tm_config)
    h, w = img01.shape[:2]
    x = pad_to_multiple(np.asarray(img01, np.float32), multiple,
                        min_side(model.tm_config))
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    y = model(x * 2.0 - 1.0)
    return y[0, :, :h, :w].permute(1, 2, 0).numpy()


# ---------------------------------------------------------------------------
# PFM (Portable Float Map) I/O: colour only, little-endian
# ---------------------------------------------------------------------------

def write_pfm(path, img):
    img = np.asarray(img, np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    h, w, c = img.shape
    if c not in (1, 3):
        raise ValueError("PFM holds 1 or 3 channels")
    with open(path, "wb") as f:
        f.write(("%s\n%d %d\n-1.0\n" % ("PF" if c == 3 else "Pf", w, h)).encode())
        f.write(np.ascontiguousarray(img[::-1]).astype("<f4").tobytes())


def read_pfm(path):
    with open(path, "rb") as f:
        data = f.read()
    # three whitespace-terminated header tokens: magic, "W H", scale
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos].decode())
    pos += 1   # the single whitespace after the scale
    magic, w, h, scale = fields[0], int(fields[1]), int(fields[2]), float(fields[3])
    c = {"PF": 3, "Pf": 1}[magic]
    a = np.frombuffer(data, "<f4" if scale < 0 else ">f4", w * h * c, pos)
    return a.reshape(h, w, c)[::-1].astype(np.float32)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write a random-weight CycleGAN/pix2pix generator as "
                    "Transmute .safetensors (official state_dict key names).")
    ap.add_argument("--arch", choices=("resnet", "unet"), default="resnet")
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--n_blocks", type=int, default=9)
    ap.add_argument("--num_downs", type=int, default=8)
    ap.add_argument("--norm", choices=("instance", "batch", "none"),
                    default=None, help="default: instance (resnet), batch (unet)")
    ap.add_argument("--norm_stats", choices=("image", "running"), default="image")
    ap.add_argument("--padding", choices=("reflect", "zero"), default="reflect")
    ap.add_argument("--input_nc", type=int, default=3)
    ap.add_argument("--output_nc", type=int, default=3)
    ap.add_argument("--dropout", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=DTYPES, default="F32")
    ap.add_argument("--name")
    ap.add_argument("--description")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args(argv)
    norm = a.norm or ("instance" if a.arch == "resnet" else "batch")
    model = generate(a.output, arch=a.arch, ngf=a.ngf, n_blocks=a.n_blocks,
                     num_downs=a.num_downs, norm=norm, norm_stats=a.norm_stats,
                     padding=a.padding, input_nc=a.input_nc,
                     output_nc=a.output_nc, dropout=a.dropout, seed=a.seed,
                     dtype=a.dtype, name=a.name, description=a.description)
    n = sum(p.numel() for p in model.parameters())
    print("%s: %s, %d parameters, %d tensors" % (
        a.output, metadata(model.tm_config)["name"], n, len(model.state_dict())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
