#!/usr/bin/python3
"""Parity with a real client: the UpscalerJS ESRGAN models run by TF.js in
Node against the same models converted by `transmute convert` and run by
`transmute translate`, on both backends.

The npm packages (@tensorflow/tfjs, pure JavaScript, and the MIT-licensed
@upscalerjs/esrgan-slim and -thick model packages, pinned below) are
installed from the npm registry into a cache folder on first use
($TRANSMUTE_NPM_CACHE, default ~/.cache/transmute/npm); nothing is
downloaded at run time by Transmute itself. For slim (RDN, 0..255) and thick
(RRDN, 0..1) at 2x and 4x: the original model.json is converted (F32), a small
image is upscaled by TF.js and by Transmute on the CPU backend and on Vulkan
(lavapipe, validation layer on), and the outputs are compared on the 0..255
scale before rounding: max abs difference <= 0.5 (TF.js clamped to the
displayable range, as every client does). The shipped F16 models in
models/ are held to the same bound.

Usage: test_sr_tfjs.py PATH/TO/transmute SOURCE_ROOT
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_models  # noqa: E402
from checks import check, run_cli, summary  # noqa: E402

TRANSMUTE, ROOT = sys.argv[1], sys.argv[2]
PACKAGES = ["@tensorflow/tfjs@4.11.0", "@upscalerjs/esrgan-slim@1.0.0",
            "@upscalerjs/esrgan-thick@1.0.0"]
CACHE = os.environ.get("TRANSMUTE_NPM_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache", "transmute", "npm"))
TOL = 0.5


def npm_modules():
    mods = os.path.join(CACHE, "node_modules")
    want = [os.path.join(mods, "@upscalerjs", p, "models") for p in ("esrgan-slim", "esrgan-thick")]
    want.append(os.path.join(mods, "@tensorflow", "tfjs"))
    if not all(os.path.isdir(w) for w in want):
        os.makedirs(CACHE, exist_ok=True)
        print(f"installing {' '.join(PACKAGES)} into {CACHE}", flush=True)
        r = subprocess.run(["npm", "install", "--prefix", CACHE, "--no-audit", "--no-fund",
                            "--no-save"] + PACKAGES, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"FAIL npm install: {r.stderr.strip()[-600:]}")
    return mods


def run(args, device="cpu"):
    return run_cli(TRANSMUTE, args, device)


def photo_like(h, w):
    """A crop of the README's sample photograph, shrunk: real edges and texture."""
    from PIL import Image
    img = Image.open(os.path.join(ROOT, "samples", "chelsea_256.jpg")).convert("RGB")
    img = img.crop((60, 40, 60 + 4 * w, 40 + 4 * h)).resize((w, h), Image.BICUBIC)
    return np.asarray(img).astype(np.float32) / 255


def tfjs(mods, model_dir, img, lo, hi, tmp):
    h, w, _ = img.shape
    fin, fout = os.path.join(tmp, "t.in"), os.path.join(tmp, "t.out")
    (lo + img * (hi - lo)).astype("<f4").tofile(fin)
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "sr", "tfjs_run.js"), model_dir, fin,
                        str(h), str(w), "3", fout], capture_output=True, text=True,
                       env=dict(os.environ, NODE_PATH=mods))
    if r.returncode:
        sys.exit(f"FAIL tfjs on {model_dir}: {r.stderr.strip()[-400:]}")
    out = np.fromfile(fout, "<f4")
    s = int(round((out.size / (h * w * 3)) ** 0.5))
    return (out.reshape(h * s, w * s, 3) - lo) / (hi - lo)


def transmute(model, img, device, tmp):
    src, dst = os.path.join(tmp, "in.pfm"), os.path.join(tmp, "out.pfm")
    gen_models.write_pfm(src, img)
    p = run(["translate", "-q", "-m", model, "-o", dst, src], device)
    return (gen_models.read_pfm(dst), "") if not p.returncode else (None, p.stderr.strip())


def compare(name, model, ref, img, tmp, devices=("cpu", "vulkan")):
    for dev in devices:
        out, err = transmute(model, img, dev, tmp)
        if out is None:
            check(f"{name} on {dev}", False, err)
            continue
        if out.shape != ref.shape:
            check(f"{name} on {dev}", False, f"shape {out.shape} vs TF.js {ref.shape}")
            continue
        d = float(np.abs(out - np.clip(ref, 0, 1)).max() * 255)
        check(f"{name} on {dev}: max |diff| {d:.4f}/255", d <= TOL)


def main():
    mods = npm_modules()
    ranges = {"esrgan-slim": (0.0, 255.0), "esrgan-thick": (0.0, 1.0)}
    sizes = {"esrgan-slim": (24, 32), "esrgan-thick": (16, 20)}
    with tempfile.TemporaryDirectory() as tmp:
        for pkg, (lo, hi) in ranges.items():
            img = photo_like(*sizes[pkg])
            for scale in (2, 4):
                src = os.path.join(mods, "@upscalerjs", pkg, "models", f"x{scale}")
                st = os.path.join(tmp, f"{pkg}-x{scale}.safetensors")
                p = run(["convert", "-q", os.path.join(src, "model.json"), "-o", st])
                check(f"convert {pkg} x{scale}", p.returncode == 0, p.stderr.strip())
                if p.returncode:
                    continue
                ref = tfjs(mods, src, img, lo, hi, tmp)
                compare(f"{pkg} x{scale}", st, ref, img, tmp)
                shipped = os.path.join(ROOT, "models", f"{pkg}-x{scale}.safetensors")
                if os.path.exists(shipped):
                    compare(f"shipped models/{os.path.basename(shipped)}", shipped, ref, img, tmp,
                            ("cpu",))
        for pkg in ranges:
            check(f"models/{pkg}-x4.safetensors is shipped",
                  os.path.exists(os.path.join(ROOT, "models", f"{pkg}-x4.safetensors")))
    sys.exit(summary())


if __name__ == "__main__":
    main()
