#!/usr/bin/python3
"""Super-resolution checkpoints through `transmute convert` and `translate`,
against PyTorch.

ESRGAN's RRDBNet as BasicSR's rrdbnet_arch.py defines it (scales 4, 2 and 1,
the last two folding the image into channels with pixel_unshuffle) and
SRGAN's generator as leftthomas/SRGAN's model.py defines it (PReLU with one
shared slope, BatchNorm2d in eval mode with random running statistics,
(tanh + 1) / 2 out) are written here from their descriptions, given random
weights, saved with torch.save in the legacy and the zip format (one
wrapped as BasicSR saves them: {'params_ema': ..., 'params': ...}),
converted, translated from a float PFM on the CPU and on the Vulkan device
(lavapipe, validation on: any message or no device fails) and compared with
PyTorch on the same input: max abs difference <= 1e-3 on the clamped 0..1
output. Then the converter's errors, `transmute info`'s scale line, and the
overlapping-tile path (--tile) against the whole image (<= 1e-5).

Usage: test_sr_torch.py PATH/TO/transmute
"""
import collections
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_models  # noqa: E402  (PFM I/O, reflect padding)
from checks import check, summary  # noqa: E402

TRANSMUTE = sys.argv[1]
TOL = 1e-3
TILE_TOL = 1e-5
DEVICES = ("cpu", "vulkan")


def run(args, device="cpu"):
    """The CLI; on Vulkan with the validation layer on (exit 3 when it
    speaks) and an explicit device, so a missing one is an error."""
    env = dict(os.environ)
    env.pop("TRANSMUTE_DEVICE", None)
    if device != "cpu":
        env["TRANSMUTE_VALIDATE"] = "1"
    if args[0] == "translate":
        args = args + ["--device", device]
    return subprocess.run([TRANSMUTE] + args, capture_output=True, text=True, env=env)


# ---------------------------------------------------------------------------
# ESRGAN's RRDBNet, BasicSR layout and key names
# ---------------------------------------------------------------------------

def pixel_unshuffle(x, r):
    """(b, c, h*r, w*r) -> (b, c*r*r, h, w); channel c*r*r + i*r + j holds
    the pixels at row offset i, column offset j."""
    b, c, hh, ww = x.shape
    x = x.view(b, c, hh // r, r, ww // r, r)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, c * r * r, hh // r, ww // r)


class DenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the block input and every earlier output."""

    def __init__(self, nf, gc):
        super().__init__()
        for j in range(1, 6):
            cout = nf if j == 5 else gc
            setattr(self, "conv%d" % j, nn.Conv2d(nf + (j - 1) * gc, cout, 3, 1, 1))

    def forward(self, x):
        feats = [x]
        for j in range(1, 5):
            y = getattr(self, "conv%d" % j)(torch.cat(feats, 1))
            feats.append(F.leaky_relu(y, 0.2))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.rdb1 = DenseBlock(nf, gc)
        self.rdb2 = DenseBlock(nf, gc)
        self.rdb3 = DenseBlock(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    def __init__(self, in_nc=3, out_nc=3, scale=4, nf=64, nb=23, gc=32):
        super().__init__()
        self.scale = scale
        fold = {4: 1, 2: 2, 1: 4}[scale]
        self.conv_first = nn.Conv2d(in_nc * fold * fold, nf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)

    def head(self, x):
        if self.scale < 4:
            x = pixel_unshuffle(x, 4 // self.scale)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in (self.conv_up1, self.conv_up2):
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return F.leaky_relu(self.conv_hr(feat), 0.2)

    def forward(self, x):
        return self.conv_last(self.head(x))


# ---------------------------------------------------------------------------
# SRGAN's generator, leftthomas/SRGAN layout and key names
# ---------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    def __init__(self, nf):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(nf)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(nf, nf, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(nf)

    def forward(self, x):
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class UpsampleBlock(nn.Module):
    def __init__(self, nf):
        super().__init__()
        self.conv = nn.Conv2d(nf, nf * 4, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.prelu = nn.PReLU()

    def forward(self, x):
        return self.prelu(self.pixel_shuffle(self.conv(x)))


class SRGenerator(nn.Module):
    """block1, block2..block(n+1) residual, block(n+2) conv+BN, block(n+3)
    upsampling blocks and the last 9x9 conv (n = 5 in model.py)."""

    def __init__(self, scale=4, n_res=5, nf=64, in_nc=3, out_nc=3):
        super().__init__()
        self.n = n_res
        self.block1 = nn.Sequential(nn.Conv2d(in_nc, nf, 9, padding=4), nn.PReLU())
        for k in range(2, n_res + 2):
            self.add_module("block%d" % k, ResidualBlock(nf))
        self.add_module("block%d" % (n_res + 2),
                        nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.BatchNorm2d(nf)))
        ups = [UpsampleBlock(nf) for _ in range(int(np.log2(scale)))]
        self.add_module("block%d" % (n_res + 3),
                        nn.Sequential(*ups, nn.Conv2d(nf, out_nc, 9, padding=4)))

    def block(self, k):
        return getattr(self, "block%d" % k)

    def pre_tanh(self, x):
        b1 = self.block1(x)
        y = b1
        for k in range(2, self.n + 3):
            y = self.block(k)(y)
        return self.block(self.n + 3)(b1 + y)

    def forward(self, x):
        return (torch.tanh(self.pre_tanh(x)) + 1) / 2


# ---------------------------------------------------------------------------
# Random weights that make a lively image
# ---------------------------------------------------------------------------

def randomize(model, seed):
    """Uniform conv weights (1.7 times PyTorch's default bound, so that deep
    stacks do not fade out), random biases, PReLU slopes, batch norm affine
    parameters and running statistics: a loader that drops or swaps any of
    them gives a visibly different image."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
            elif "prelu" in name or name.endswith("block1.1.weight"):
                p.copy_(0.05 + 0.4 * torch.rand(p.shape, generator=g))
            elif p.dim() == 1:   # batch norm gamma
                p.copy_(0.6 + 0.8 * torch.rand(p.shape, generator=g))
            else:
                bound = 1.0 / np.sqrt(p[0].numel())
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound * 1.7)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.num_batches_tracked.fill_(1000)
    model.eval()
    return model


def calibrate(model, last, pre_fn, img, target_mean, target_std):
    """Rescales the last conv per channel so that its output over img has the
    given mean and spread (a random net's is near-constant)."""
    with torch.no_grad():
        y = pre_fn(to_tensor(img))   # with the current bias
        w_only = y - last.bias.view(1, -1, 1, 1)
        mean = w_only.mean(dim=(0, 2, 3))
        std = w_only.std(dim=(0, 2, 3)).clamp_min(1e-6)
        a = target_std / std
        last.weight.mul_(a.view(-1, 1, 1, 1))
        last.bias.copy_(target_mean - a * mean)


def make_rrdbnet(seed, img, far=0.0, **kw):
    """far > 0 adds strong random taps at two opposite corners of every 3x3
    kernel: with only random weights the far field of 17 chained convs (and
    residuals times 0.2) is so faint that a tile margin a few pixels short
    would hide below any tolerance; corner taps carry it to the full reach."""
    torch.manual_seed(seed)
    m = randomize(RRDBNet(**kw), seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in m.parameters():
            if far and p.dim() == 4:
                amp = far / np.sqrt(p.shape[1])
                p[..., 0, 0] += torch.randn(p.shape[:2], generator=g) * amp
                p[..., 2, 2] += torch.randn(p.shape[:2], generator=g) * amp
    calibrate(m, m.conv_last, lambda x: m.conv_last(m.head(x)), img, 0.5, 0.3)
    return m


def make_srgan(seed, img, **kw):
    torch.manual_seed(seed)
    m = randomize(SRGenerator(**kw), seed)
    calibrate(m, m.block(m.n + 3)[-1], m.pre_tanh, img, 0.0, 0.9)
    return m


def to_tensor(img):
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


@torch.no_grad()
def reference(model, img, scale, multiple):
    """The model on img reflect-padded at the bottom and right to the
    multiple (as tm_translate pads), cropped to scale times img, 0..1."""
    h, w = img.shape[:2]
    x = gen_models.pad_to_multiple(img, multiple)
    y = model(to_tensor(np.ascontiguousarray(x)))[0, :, :h * scale, :w * scale]
    return np.clip(y.permute(1, 2, 0).numpy(), 0, 1)


def image(h, w, seed, c=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f = np.array([0.11, 0.07, 0.05, 0.03])[:c]
    g = np.array([0.05, 0.09, 0.13, 0.02])[:c]
    base = 0.5 + 0.3 * np.sin(xx[..., None] * f + yy[..., None] * g)
    return np.clip(base + rng.normal(0, 0.08, (h, w, c)), 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------
# CLI helpers
# ---------------------------------------------------------------------------

def save(obj, path, fmt):
    torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"))


def translate(model_path, img, tmp, device, extra=()):
    src, dst = os.path.join(tmp, "in.pfm"), os.path.join(tmp, "out.pfm")
    gen_models.write_pfm(src, img)
    if os.path.exists(dst):
        os.unlink(dst)
    p = run(["translate", "-q", "-m", model_path, "-o", dst, src] + list(extra), device)
    if p.returncode:
        return None, "exit %d: %s" % (p.returncode, p.stderr.strip()[-300:])
    return gen_models.read_pfm(dst), ""


def convert_ok(name, ckpt, out, args=(), expect=()):
    p = run(["convert", ckpt, "-o", out] + list(args))
    ok = p.returncode == 0 and os.path.exists(out)
    lines = p.stdout.strip().splitlines()
    detected = [l for l in lines if l.startswith("detected")]
    check(name + ": converts", ok, (p.stderr or p.stdout).strip()[-300:] if not ok else
          detected[0] if detected else "")
    for needle in expect:
        check(name + ": prints '%s'" % needle, needle in p.stdout, p.stdout.strip())
    return ok


def parity(name, ckpt, args, model, img, scale, multiple, tmp, devices=DEVICES, expect=()):
    out = os.path.join(tmp, name.replace(" ", "_") + ".safetensors")
    if not convert_ok(name, ckpt, out, args, expect):
        return None
    ref = reference(model, img, scale, multiple)
    for dev in devices:
        t0 = time.monotonic()
        got, err = translate(out, img, tmp, dev)
        tag = "%s %s" % (name, dev)
        if got is None:
            check(tag, False, err)
            continue
        if got.shape != ref.shape:
            check(tag, False, "output %s, torch %s" % (got.shape, ref.shape))
            continue
        d = float(np.abs(got - ref).max())
        check(tag, d <= TOL, "%dx%d -> %dx%d, max |diff| %.2e (%.1f s)" % (
            img.shape[1], img.shape[0], got.shape[1], got.shape[0], d, time.monotonic() - t0))
    return out


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def rrdbnet_cases(tmp):
    img = image(20, 24, 1)
    # x4, legacy format, wrapped as BasicSR saves: params_ema must be used.
    ema = make_rrdbnet(101, img, scale=4, nf=16, nb=2, gc=8)
    other = make_rrdbnet(102, img, scale=4, nf=16, nb=2, gc=8)
    ck = os.path.join(tmp, "rrdb_x4_basicsr.pth")
    save({"params_ema": ema.state_dict(), "params": other.state_dict()}, ck, "legacy")
    out = parity("rrdbnet x4 legacy params_ema", ck, [], ema, img, 4, 1, tmp,
                 expect=("params_ema", "rrdbnet x4", "2 RRDB blocks", "num_grow_ch 8"))
    if out:
        d = float(np.abs(reference(ema, img, 4, 1) - reference(other, img, 4, 1)).max())
        check("rrdbnet: params and params_ema differ (the check means something)", d > 0.05,
              "%.2f" % d)
        p = run(["info", out])
        check("info: rrdbnet scale line", p.returncode == 0 and
              "scale:         4x, values 0..1 in, 0..1 out" in p.stdout, p.stdout.strip())
    # --key params still picks the other one.
    parity("rrdbnet x4 --key params", ck, ["--key", "params", "--netG", "rrdbnet", "--scale", "4",
                                            "--ngf", "16"], other, img, 4, 1, tmp, devices=("cpu",))

    # x2: pixel_unshuffle by 2; zip, a bare state_dict; odd size (mirrored to even).
    m2 = make_rrdbnet(103, img, scale=2, nf=16, nb=2, gc=8)
    ck = os.path.join(tmp, "rrdb_x2.pth")
    save(m2.state_dict(), ck, "zip")
    parity("rrdbnet x2 zip", ck, [], m2, img, 2, 2, tmp, expect=("rrdbnet x2",))
    parity("rrdbnet x2 odd 23x17", ck, [], m2, image(17, 23, 2), 2, 2, tmp)

    # x1: pixel_unshuffle by 4; zip, {'params': sd} only; odd size (to a multiple of 4).
    m1 = make_rrdbnet(104, img, scale=1, nf=16, nb=3, gc=8)
    ck = os.path.join(tmp, "rrdb_x1.pth")
    save({"params": m1.state_dict()}, ck, "zip")
    parity("rrdbnet x1 params zip", ck, [], m1, img, 1, 4, tmp, expect=("rrdbnet x1", "3 RRDB blocks"))
    parity("rrdbnet x1 odd 21x18", ck, [], m1, image(18, 21, 3), 1, 4, tmp, devices=("cpu",))

    # Three channels in, one out: the scale cannot be guessed, --scale says it.
    mg = make_rrdbnet(105, img, in_nc=3, out_nc=1, scale=4, nf=8, nb=1, gc=4)
    ck = os.path.join(tmp, "rrdb_3to1.pth")
    save(mg.state_dict(), ck, "legacy")
    p = run(["convert", ck, "-o", os.path.join(tmp, "g.safetensors")])
    check("rrdbnet 3->1 without --scale asks for it", p.returncode == 1 and "--scale" in p.stderr and
          len(p.stderr.strip().splitlines()) == 1, p.stderr.strip())
    parity("rrdbnet 3->1 --scale 4", ck, ["--scale", "4"], mg, img, 4, 1, tmp, devices=("cpu",))


def real_size_case(tmp):
    """ESRGAN's released sizes (num_feat 64, 23 blocks, num_grow_ch 32) at a
    tiny image (a few seconds on the CPU, about 10 on lavapipe)."""
    img = image(12, 16, 4)
    m = make_rrdbnet(106, img, scale=4)
    ck = os.path.join(tmp, "rrdb_x4_real.pth")
    save({"params_ema": m.state_dict()}, ck, "zip")
    parity("rrdbnet x4 64-23-32", ck, [], m, img, 4, 1, tmp,
           expect=("num_feat 64, 23 RRDB blocks, num_grow_ch 32",))


def srgan_cases(tmp):
    img = image(20, 24, 5)
    m2 = make_srgan(201, img, scale=2, nf=32)
    ck = os.path.join(tmp, "srgan_x2.pth")
    save(m2.state_dict(), ck, "legacy")
    out = parity("srresnet x2 legacy", ck, [], m2, img, 2, 1, tmp,
                 expect=("srresnet x2", "5 residual blocks"))
    if out:
        p = run(["info", out])
        check("info: srresnet scale line", p.returncode == 0 and
              "scale:         2x, values 0..1 in, -1..1 out" in p.stdout, p.stdout.strip())
    # The model.py sizes (64 filters, 5 blocks), x4, zip, DataParallel prefix.
    m4 = make_srgan(202, img, scale=4)
    ck = os.path.join(tmp, "srgan_x4.pth")
    save(collections.OrderedDict(("module." + k, v) for k, v in m4.state_dict().items()), ck, "zip")
    parity("srresnet x4 zip module.", ck, ["--netG", "srresnet", "--scale", "4", "--norm", "batch"],
           m4, img, 4, 1, tmp, expect=("srresnet x4",))
    # Other block counts and an odd size.
    m8 = make_srgan(203, img, scale=2, n_res=8, nf=16)
    ck = os.path.join(tmp, "srgan_x2_8.pth")
    save(m8.state_dict(), ck, "zip")
    parity("srresnet x2 8 blocks odd 19x13", ck, [], m8, image(13, 19, 6), 2, 1, tmp,
           expect=("8 residual blocks",))


def error_cases(tmp):
    img = image(16, 16, 7)
    m = make_rrdbnet(301, img, scale=4, nf=8, nb=2, gc=4)
    good = os.path.join(tmp, "err_rrdb.pth")
    save(m.state_dict(), good, "zip")
    s = make_srgan(302, img, scale=2, nf=8, n_res=2)
    sgood = os.path.join(tmp, "err_srgan.pth")
    save(s.state_dict(), sgood, "zip")
    out = os.path.join(tmp, "err.safetensors")

    def expect_fail(name, ckpt, args, needles, rc=1):
        p = run(["convert", ckpt, "-o", out] + list(args))
        lines = p.stderr.strip().splitlines()
        ok = p.returncode == rc and len(lines) == (1 if rc == 1 else 2)
        ok = ok and all(n in p.stderr for n in needles) and not os.path.exists(out)
        ok = ok and not [f for f in os.listdir(tmp) if ".new." in f]
        check("error: " + name, ok, "rc %d: %s" % (p.returncode, p.stderr.strip()[:300]))

    for missing in ("body.1.rdb2.conv3.weight", "conv_up2.bias"):
        sd = collections.OrderedDict(m.state_dict())
        del sd[missing]
        ck = os.path.join(tmp, "missing.pth")
        save(sd, ck, "legacy")
        expect_fail("rrdbnet without " + missing, ck, [], [missing])
    sd = collections.OrderedDict(m.state_dict())
    del sd["conv_last.weight"]
    save(sd, os.path.join(tmp, "nolast.pth"), "zip")
    expect_fail("rrdbnet without conv_last.weight", os.path.join(tmp, "nolast.pth"), [], ["conv_last"])
    sd = collections.OrderedDict(s.state_dict())
    del sd["block5.0.prelu.weight"]
    save(sd, os.path.join(tmp, "noprelu.pth"), "zip")
    expect_fail("srresnet without block5.0.prelu.weight", os.path.join(tmp, "noprelu.pth"), [],
                ["block5.0.prelu.weight"])
    expect_fail("--netG srresnet on an RRDBNet", good, ["--netG", "srresnet"], ["srresnet", "rrdbnet"])
    expect_fail("--netG rrdbnet on an SRGAN", sgood, ["--netG", "rrdbnet"], ["rrdbnet", "srresnet"])
    expect_fail("--netG resnet_9blocks on an RRDBNet", good, ["--netG", "resnet_9blocks"], ["rrdbnet"])
    expect_fail("unknown --netG", good, ["--netG", "esrgan"], ["esrgan", "rrdbnet"], rc=2)
    expect_fail("--scale 2 on an RRDBNet x4", good, ["--scale", "2"], ["--scale 2", "conv_first"])
    expect_fail("--scale 3 on an RRDBNet", good, ["--scale", "3"], ["--scale 3"])
    expect_fail("--scale 4 on an SRGAN x2", sgood, ["--scale", "4"], ["--scale 4", "scale 2"])
    expect_fail("--ngf 64 on an RRDBNet of 8", good, ["--ngf", "64"], ["8 filters"])
    expect_fail("--norm instance on an SRGAN", sgood, ["--norm", "instance"], ["norm batch"])
    expect_fail("--scale 0", good, ["--scale", "0"], ["--scale"], rc=2)
    r = gen_models.build_generator(dict(arch="resnet", ngf=8, n_blocks=2, seed=303))
    rk = os.path.join(tmp, "err_resnet.pth")
    save(r.state_dict(), rk, "zip")
    expect_fail("--scale 4 on a ResNet generator", rk, ["--scale", "4"], ["--scale 4", "keeps"])
    p = run(["convert", "--help"])
    check("--help names the new options", p.returncode == 0 and all(
        n in p.stdout for n in ("--scale", "rrdbnet", "srresnet", "params_ema")))


def tile_cases(tmp):
    """The overlapping-tile path (--tile) against the whole image, on the
    same device: nearly exact (only the plans' summation order may differ)."""
    img = image(80, 96, 8)
    m = make_rrdbnet(401, img, far=3.0, scale=4, nf=16, nb=1, gc=8)
    ck = os.path.join(tmp, "tile_rrdb.pth")
    save(m.state_dict(), ck, "zip")
    rr = os.path.join(tmp, "tile_rrdb.safetensors")
    s = make_srgan(402, img, scale=2, nf=16, n_res=3)
    ck2 = os.path.join(tmp, "tile_srgan.pth")
    save(s.state_dict(), ck2, "zip")
    sr = os.path.join(tmp, "tile_srgan.safetensors")
    m2 = make_rrdbnet(403, img, far=3.0, scale=2, nf=8, nb=1, gc=4)
    ck3 = os.path.join(tmp, "tile_rrdb2.pth")
    save(m2.state_dict(), ck3, "zip")
    r2 = os.path.join(tmp, "tile_rrdb2.safetensors")
    m1 = make_rrdbnet(404, img, far=3.0, scale=1, nf=8, nb=1, gc=4)
    ck4 = os.path.join(tmp, "tile_rrdb1.pth")
    save(m1.state_dict(), ck4, "zip")
    r1 = os.path.join(tmp, "tile_rrdb1.safetensors")
    if not all(convert_ok(n, c, o) for n, c, o in (("tile rrdbnet x4", ck, rr),
                                                  ("tile srresnet x2", ck2, sr),
                                                  ("tile rrdbnet x2", ck3, r2),
                                                  ("tile rrdbnet x1", ck4, r1))):
        return
    cases = [(rr, "rrdbnet x4", img, "32"), (sr, "srresnet x2", img, "32"),
             (rr, "rrdbnet x4", image(41, 75, 9), "32"), (sr, "srresnet x2", image(41, 75, 9), "16"),
             (r2, "rrdbnet x2", image(41, 75, 9), "16"), (r1, "rrdbnet x1", image(41, 75, 9), "16"),
             (rr, "rrdbnet x4", img, "1024"), (sr, "srresnet x2", image(41, 75, 9), "4096")]
    # The path really cuts the image (its -v line: "WxH in NxM tiles of ...").
    src = os.path.join(tmp, "in.pfm")
    gen_models.write_pfm(src, img)
    for tile, many in (("32", True), ("1024", False)):
        p = run(["translate", "-v", "-m", rr, "-o", os.path.join(tmp, "v.pfm"), src, "--tile", tile])
        line = [l for l in p.stderr.splitlines() if " tiles of " in l]
        ok = p.returncode == 0 and len(line) == 1 and ("1x1 tiles" not in line[0]) == many
        check("tile rrdbnet x4 96x80 --tile %s: %s" % (tile, "several windows" if many else "one window"),
              ok, line[0] if line else p.stderr.strip()[-300:])
    for dev in DEVICES:
        for path, name, im, tile in cases:
            whole, err = translate(path, im, tmp, dev, ["--tile", "-1"])
            tiled, err2 = translate(path, im, tmp, dev, ["--tile", tile])
            tag = "tile %s %dx%d --tile %s %s" % (name, im.shape[1], im.shape[0], tile, dev)
            if whole is None or tiled is None:
                check(tag, False, err or err2)
                continue
            d = float(np.abs(whole - tiled).max())
            check(tag, d <= TILE_TOL, "max |diff| %.2e" % d)


def main():
    only = sys.argv[2] if len(sys.argv) > 2 else ""
    with tempfile.TemporaryDirectory(prefix="tm-sr-") as tmp:
        for group in (rrdbnet_cases, srgan_cases, error_cases, tile_cases, real_size_case):
            if only in group.__name__:
                group(tmp)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
