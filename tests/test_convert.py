#!/usr/bin/python3
"""`transmute convert` on PyTorch checkpoints, end to end, against PyTorch.

Random-weight generators in the official layouts (tests/gen_models.py,
tests/stargan_ref.py) are saved the ways real checkpoints come: the legacy
format (torch.save(..., _use_new_zipfile_serialization=False), as the
2017-2019 official files) and the zip format; F32 and F16 tensors; tensors
that are views with offsets into one shared storage, one of them not
contiguous; a DataParallel `module.` prefix; pre-0.4 InstanceNorm running
statistics; nested dicts. Each is converted by `transmute convert`,
translated by `transmute translate` and compared with the torch model on the
same weights: max abs difference <= 1e-3 on the 0..1 output (fp32).

Then the command's own errors: wrong options, unknown layouts, empty and
ambiguous checkpoints. Every failure must leave no output file behind and
keep an existing one intact.

Usage: test_convert.py PATH/TO/transmute
"""
import collections
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_models  # noqa: E402
from checks import check, run_cli, summary  # noqa: E402
import stargan_ref  # noqa: E402

TRANSMUTE = sys.argv[1]
TOL = 1e-3


def run(args, device="cpu"):
    return run_cli(TRANSMUTE, args, device)


# ---------------------------------------------------------------------------
# Checkpoint variants
# ---------------------------------------------------------------------------

def save(obj, path, fmt):
    torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"))


def as_views(sd):
    """The same values as views into one storage, at offsets, the first 4-D
    tensor transposed (not contiguous); what optimizers' flat buffers and
    some exporters leave in checkpoints."""
    floats = [k for k, v in sd.items() if v.is_floating_point()]
    total = sum(sd[k].numel() for k in floats) + 7 * len(floats)
    dtype = sd[floats[0]].dtype
    base = torch.zeros(total, dtype=dtype)
    out = collections.OrderedDict()
    off, transposed = 3, False
    for k, v in sd.items():
        if not v.is_floating_point():
            out[k] = v
            continue
        n = v.numel()
        if v.dim() == 4 and not transposed:
            t = v.transpose(0, 1).contiguous()
            base[off:off + n] = t.flatten()
            out[k] = base[off:off + n].view(t.shape).transpose(0, 1)
            assert not out[k].is_contiguous()
            transposed = True
        else:
            base[off:off + n] = v.flatten()
            out[k] = base[off:off + n].view(v.shape)
        off += n + 7
    return out


def with_instnorm_stats(model, sd):
    """PyTorch < 0.4 saved running statistics for every InstanceNorm2d."""
    sd = collections.OrderedDict(sd)
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            sd[name + ".running_mean"] = torch.zeros(m.num_features)
            sd[name + ".running_var"] = torch.ones(m.num_features)
    return sd


def half(sd):
    return collections.OrderedDict(
        (k, v.half() if v.is_floating_point() else v) for k, v in sd.items())


# ---------------------------------------------------------------------------
# Parity
# ---------------------------------------------------------------------------

def image(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx[..., None] * [0.11, 0.07, 0.05] + yy[..., None] * [0.05, 0.09, 0.13])
    return np.clip(base + rng.normal(0, 0.08, (h, w, 3)), 0, 1).astype(np.float32)


def translate(model_path, img, tmp, device, extra=()):
    src, dst = os.path.join(tmp, "in.pfm"), os.path.join(tmp, "out.pfm")
    gen_models.write_pfm(src, img)
    p = run(["translate", "-q", "-m", model_path, "-o", dst, src] + list(extra), device)
    if p.returncode:
        return None, p.stderr.strip()
    return gen_models.read_pfm(dst), ""


def convert(ckpt, out, args=()):
    return run(["convert", "-q", ckpt, "-o", out] + list(args))


def parity(name, ckpt, args, ref_fn, img, tmp, labels=None, devices=("cpu",), expect=""):
    out = os.path.join(tmp, name + ".safetensors")
    p = run(["convert", ckpt, "-o", out] + list(args))
    ok = p.returncode == 0 and os.path.exists(out)
    check(name + ": converts", ok, (p.stderr or p.stdout).strip().splitlines()[-1] if not ok else
          p.stdout.strip().splitlines()[0] if p.stdout.strip() else "")
    if not ok:
        return None
    if expect:
        check(name + ": says what it detected", expect in p.stdout, p.stdout.strip())
    outputs = []
    for extra, ref_label in labels or [((), None)]:
        ref = np.clip((ref_fn(img, ref_label) + 1) / 2, 0, 1)
        for dev in devices:
            got, err = translate(out, img, tmp, dev, extra)
            tag = "%s %s %s" % (name, dev, " ".join(extra))
            if got is None:
                check(tag, False, err)
                continue
            d = float(np.abs(got - ref).max())
            check(tag, d <= TOL, "max |diff| %.2e" % d)
            outputs.append(got)
    return out, outputs


def resnet_cases(tmp):
    cfg = dict(arch="resnet", ngf=32, n_blocks=9, norm="instance", seed=11)
    model = gen_models.build_generator(cfg)
    ref = lambda img, _: gen_models.reference_translate(model, img)
    img = image(52, 60, 1)

    # The 2017-2019 official files: legacy format, InstanceNorm statistics.
    ck = os.path.join(tmp, "resnet_legacy.pth")
    save(with_instnorm_stats(model, model.state_dict()), ck, "legacy")
    parity("resnet_9blocks legacy", ck, [], ref, img, tmp, devices=("cpu", "vulkan"),
           expect="resnet_9blocks")

    # zip format, DataParallel prefix, every tensor a view, --netG checked.
    ck = os.path.join(tmp, "resnet_zip_views.pth")
    sd = as_views(model.state_dict())
    save(collections.OrderedDict(("module." + k, v) for k, v in sd.items()), ck, "zip")
    parity("resnet_9blocks zip views module.", ck, ["--netG", "resnet_9blocks", "--ngf", "32"],
           ref, img, tmp)

    # F16 in the checkpoint; the model computes with the same rounded weights.
    m16 = gen_models.build_generator(dict(cfg, n_blocks=6, dtype="F16", seed=12))
    ref16 = lambda img, _: gen_models.reference_translate(m16, img)
    for fmt in ("legacy", "zip"):
        ck = os.path.join(tmp, "resnet6_f16_%s.pth" % fmt)
        save(as_views(half(m16.state_dict())), ck, fmt)
        parity("resnet_6blocks F16 views %s" % fmt, ck, [], ref16, img, tmp, expect="resnet_6blocks")

    # --half on an F32 checkpoint: compared with torch on the rounded weights.
    mh = gen_models.build_generator(dict(cfg, n_blocks=6, seed=13))
    ck = os.path.join(tmp, "resnet6_for_half.pth")
    save(mh.state_dict(), ck, "zip")
    mr = gen_models.build_generator(dict(cfg, n_blocks=6, seed=13, dtype="F16"))
    r = parity("resnet_6blocks --half", ck, ["--half"], lambda img, _: gen_models.reference_translate(mr, img),
               img, tmp)
    if r:
        _, dts = gen_models.read_safetensors(r[0])[1:]
        check("--half stores F16", set(dts.values()) == {"F16"}, str(set(dts.values())))


def unet_cases(tmp):
    img = image(256, 256, 2)
    # pix2pix: batch norm, per-image statistics (the official test without --eval).
    model = gen_models.build_generator(dict(arch="unet", num_downs=8, ngf=16, norm="batch", seed=21))
    ck = os.path.join(tmp, "unet256_legacy.pth")
    save(model.state_dict(), ck, "legacy")
    parity("unet_256 batch legacy", ck, [], lambda im, _: gen_models.reference_translate(model, im),
           img, tmp, expect="unet_256")
    # and with the stored statistics (--eval)
    model_r = gen_models.build_generator(dict(arch="unet", num_downs=8, ngf=16, norm="batch",
                                              norm_stats="running", seed=21))
    parity("unet_256 batch --norm_stats running", ck, ["--norm_stats", "running"],
           lambda im, _: gen_models.reference_translate(model_r, im), img, tmp)
    # instance norm, zip, views
    m128 = gen_models.build_generator(dict(arch="unet", num_downs=7, ngf=16, norm="instance", seed=22))
    ck = os.path.join(tmp, "unet128_zip.pth")
    save(as_views(m128.state_dict()), ck, "zip")
    parity("unet_128 instance zip views", ck, ["--norm", "instance"],
           lambda im, _: gen_models.reference_translate(m128, im), image(128, 128, 3), tmp,
           expect="unet_128")


def stargan_cases(tmp):
    img = image(64, 72, 4)
    model = stargan_ref.build(conv_dim=32, c_dim=5, repeat_num=6, seed=31)
    ref = lambda im, lab: stargan_ref.reference_translate(model, im, lab)
    ck = os.path.join(tmp, "stargan_celeba.ckpt")
    save(model.state_dict(), ck, "legacy")
    labels = [(["--domain", "Blond_Hair,Young"], [0, 1, 0, 0, 1]),
              (["--domain", "Black_Hair,Male"], [1, 0, 0, 1, 0]),
              (["--label", "0,0,1,0.5,0"], [0, 0, 1, 0.5, 0])]
    r = parity("stargan celeba legacy", ck, [], ref, img, tmp, labels=labels,
               devices=("cpu", "vulkan"), expect="stargan")
    if r:
        outs = r[1]
        check("stargan: the label changes the image",
              len(outs) >= 3 and float(np.abs(outs[0] - outs[2]).max()) > 0.05)
        info = run(["info", r[0]])
        check("stargan: info lists the domains",
              "Black_Hair, Blond_Hair, Brown_Hair, Male, Young" in info.stdout, info.stdout)

    # Multi-dataset StarGAN (CelebA + RaFD + mask), zip, F16, own names.
    mm = stargan_ref.build(conv_dim=16, c_dim=15, repeat_num=6, seed=32, dtype="F16")
    ck = os.path.join(tmp, "stargan_both.ckpt")
    save(half(mm.state_dict()), ck, "zip")
    labels = [(["--domain", "Blond_Hair"], [0, 1, 0, 0, 0] + [0] * 8 + [1, 0]),
              (["--domain", "happy"], [0] * 5 + [0, 0, 0, 0, 1, 0, 0, 0] + [0, 1])]
    parity("stargan celeba+rafd mask zip F16", ck, [], lambda im, lab: stargan_ref.reference_translate(mm, im, lab),
           img, tmp, labels=labels, expect="label of 15")
    ck8 = os.path.join(tmp, "stargan_custom.ckpt")
    m3 = stargan_ref.build(conv_dim=8, c_dim=3, repeat_num=2, seed=33)
    save(m3.state_dict(), ck8, "zip")
    parity("stargan custom domains", ck8, ["--domains", "Smiling,Eyeglasses,Bald", "--name", "mine"],
           lambda im, lab: stargan_ref.reference_translate(m3, im, lab), img, tmp,
           labels=[(["--domain", "Bald"], [0, 0, 1])])
    p = convert(ck8, os.path.join(tmp, "x.safetensors"))
    check("stargan: unknown label size needs --domains", p.returncode == 1 and "--domains" in p.stderr,
          p.stderr.strip())


def nested_cases(tmp):
    g = gen_models.build_generator(dict(arch="resnet", ngf=8, n_blocks=2, seed=41))
    f = gen_models.build_generator(dict(arch="resnet", ngf=8, n_blocks=3, seed=42))
    ck = os.path.join(tmp, "nested.pth")
    save({"G_A": g.state_dict(), "G_B": f.state_dict(), "epoch": 200, "lr": 2e-4,
          "name": "horse2zebra"}, ck, "zip")
    out = os.path.join(tmp, "nested.safetensors")
    p = convert(ck, out)
    check("nested: several state_dicts need --key", p.returncode == 1 and "--key" in p.stderr and
          "G_A" in p.stderr and "G_B" in p.stderr and not os.path.exists(out), p.stderr.strip())
    parity("nested --key G_B", ck, ["--key", "G_B"], lambda im, _: gen_models.reference_translate(f, im),
           image(32, 40, 5), tmp, expect="resnet_3blocks")
    p = convert(ck, out, ["--key", "G_C"])
    check("nested: unknown --key", p.returncode == 1 and "G_C" in p.stderr and "G_A" in p.stderr,
          p.stderr.strip())
    p = run(["convert", "--list", ck])
    check("--list prints tensors", p.returncode == 0 and "G_A.model.1.weight" in p.stdout and
          "F32" in p.stdout, p.stdout[:200])


def error_cases(tmp):
    out = os.path.join(tmp, "err.safetensors")
    keep = os.path.join(tmp, "keep.safetensors")

    def expect_fail(name, ckpt, args, needle, target=out):
        p = convert(ckpt, target, args)
        lines = p.stderr.strip().splitlines()
        ok = p.returncode in (1, 2) and len(lines) >= 1 and needle in p.stderr
        ok = ok and (target == keep or not os.path.exists(target))
        ok = ok and not [f for f in os.listdir(tmp) if ".tmp" in f]
        check("error: " + name, ok, "rc %d: %s" % (p.returncode, p.stderr.strip()[:300]))

    empty = os.path.join(tmp, "empty_sd.pth")
    save(collections.OrderedDict(), empty, "zip")
    expect_fail("empty state_dict", empty, [], "no tensors")
    other = os.path.join(tmp, "other.pth")
    save({"fc.weight": torch.randn(4, 4), "fc.bias": torch.randn(4)}, other, "legacy")
    expect_fail("unknown layout", other, [], "not a generator")
    g = gen_models.build_generator(dict(arch="resnet", ngf=8, n_blocks=2, seed=43))
    ck = os.path.join(tmp, "small.pth")
    save(g.state_dict(), ck, "zip")
    expect_fail("--netG contradicts", ck, ["--netG", "resnet_9blocks"], "resnet_2blocks")
    expect_fail("--ngf contradicts", ck, ["--ngf", "64"], "8 filters")
    expect_fail("--norm contradicts", ck, ["--norm", "batch"], "norm instance")
    expect_fail("bad --netG", ck, ["--netG", "vgg16"], "vgg16")
    broken = collections.OrderedDict(g.state_dict())
    broken["model.4.weight"] = broken["model.4.weight"][:, :5]
    bk = os.path.join(tmp, "broken.pth")
    save(broken, bk, "zip")
    expect_fail("mis-shaped tensor", bk, [], "model.4.weight")
    with open(ck, "rb") as f:
        blob = f.read()
    cut = os.path.join(tmp, "cut.pth")
    with open(cut, "wb") as f:
        f.write(blob[:len(blob) // 2])
    expect_fail("truncated", cut, [], "")
    expect_fail("missing file", os.path.join(tmp, "nope.pth"), [], "nope.pth")
    with open(keep, "wb") as f:
        f.write(b"precious")
    expect_fail("existing output kept on failure", cut, [], "", target=keep)
    with open(keep, "rb") as f:
        check("error: existing output unchanged", f.read() == b"precious")
    p = run(["convert", ck])
    check("error: no -o", p.returncode == 2 and "-o" in p.stderr, p.stderr.strip())
    p = run(["convert", "--help"])
    check("--help", p.returncode == 0 and "--key" in p.stdout and "--half" in p.stdout)


def main():
    with tempfile.TemporaryDirectory(prefix="tm-convert-") as tmp:
        for group in (resnet_cases, unet_cases, stargan_cases, nested_cases, error_cases):
            group(tmp)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
