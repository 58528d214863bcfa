#!/usr/bin/python3
"""Parity test: Transmute's output against PyTorch on the same weights.

    test_parity.py [options] path/to/transmute

For each case a random-weight generator is written (tests/gen_models.py)
into a temporary folder, a random image is translated by PyTorch (the
reference, fp32) and by `transmute translate` on the CPU backend and on the
Vulkan device (lavapipe in CI, with TRANSMUTE_VALIDATE=1 so any validation
message fails the run), and the outputs are compared on the model's -1..1
scale:  max |2*out01 - 1 - y| <= 1e-3.

The reference reproduces tm_translate's contract: x in [0,1] -> x*2-1;
sides reflect-padded at the bottom and right to the model's multiple
(4 for ResNet, 2^num_downs for U-Net) and to at least 8 for a ResNet,
mirrored repeatedly when the pad is not smaller than the side; output
cropped back and mapped to (y+1)/2.

Exit status: 0 all passed, 1 any failure or when torch is missing (a parity
test that cannot run is a failure, never a skip). Environment: TRANSMUTE_PARITY_VK_DEVICE overrides the Vulkan
selector (default "llvmpipe"); TRANSMUTE_PARITY_SKIP_VK=1 skips Vulkan.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import numpy as np
    import torch
    import gen_models as gm
except ImportError as e:   # pragma: no cover
    print("FAIL: %s (run with /usr/bin/python3 and python3-torch)" % e)
    print("0 passed, 1 failed")
    sys.exit(1)

TOL = 1e-3

# (name, model options, image sizes (W, H) for the CPU backend, for Vulkan)
# Sizes are chosen so that padding is needed; lavapipe is slow, so the big
# models get smaller images there (a U-Net always runs at >= 2^num_downs).
CASES = [
    ("resnet_9blocks_ngf64",
     dict(arch="resnet", n_blocks=9, ngf=64, norm="instance", seed=1),
     [(70, 50)], [(38, 22)]),
    ("resnet_9blocks_ngf8",
     dict(arch="resnet", n_blocks=9, ngf=8, norm="instance", seed=2),
     [(70, 50), (9, 6), (3, 2)], [(70, 50), (9, 6), (3, 2)]),
    ("resnet_9blocks_ngf16_larger",   # bigger dispatches on the Vulkan side
     dict(arch="resnet", n_blocks=9, ngf=16, norm="instance", seed=14),
     [(130, 98)], [(130, 98)]),
    ("resnet_6blocks",
     dict(arch="resnet", n_blocks=6, ngf=32, norm="instance", seed=3),
     [(70, 50)], [(46, 30)]),
    ("resnet_zero_pad_dropout",
     dict(arch="resnet", n_blocks=4, ngf=16, norm="instance", padding="zero",
          dropout=True, seed=4),
     [(70, 50)], [(70, 50)]),
    ("resnet_batch_image",
     dict(arch="resnet", n_blocks=3, ngf=16, norm="batch", norm_stats="image",
          seed=5),
     [(70, 50)], [(70, 50)]),
    ("resnet_batch_running_dropout",
     dict(arch="resnet", n_blocks=3, ngf=16, norm="batch",
          norm_stats="running", dropout=True, seed=6),
     [(70, 50)], [(70, 50)]),
    ("resnet_norm_none",
     dict(arch="resnet", n_blocks=6, ngf=8, norm="none", seed=7),
     [(70, 50)], [(70, 50)]),
    ("unet_256_batch_image",
     dict(arch="unet", num_downs=8, ngf=64, norm="batch", norm_stats="image",
          seed=8),
     [(256, 256), (200, 130)], [(200, 130)]),
    ("unet_256_batch_running",
     dict(arch="unet", num_downs=8, ngf=64, norm="batch",
          norm_stats="running", seed=9),
     [(200, 130)], [(256, 256)]),
    ("unet_128_instance",
     dict(arch="unet", num_downs=7, ngf=32, norm="instance", seed=10),
     [(200, 130), (40, 24)], [(40, 24)]),
    ("unet_32_none_dropout",
     dict(arch="unet", num_downs=5, ngf=8, norm="none", dropout=True,
          seed=11),
     [(45, 70)], [(45, 70)]),
    ("resnet_6blocks_f16",
     dict(arch="resnet", n_blocks=6, ngf=16, norm="instance", dtype="F16",
          seed=12),
     [(70, 50)], [(70, 50)]),
    ("unet_64_batch_bf16",
     dict(arch="unet", num_downs=6, ngf=16, norm="batch", norm_stats="image",
          dtype="BF16", seed=13),
     [(100, 70)], [(100, 70)]),
]


def run_transmute(exe, device, model, inp, out, validate):
    env = dict(os.environ)
    env.pop("TRANSMUTE_DEVICE", None)
    if validate:
        env["TRANSMUTE_VALIDATE"] = "1"
    cmd = [exe, "translate", "--device", device, "-m", model, "-o", out, inp]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "timed out", time.monotonic() - t0
    dt = time.monotonic() - t0
    if p.returncode != 0:
        msg = p.stdout.decode(errors="replace").strip().splitlines()
        return None, "exit %d: %s" % (p.returncode, " | ".join(msg[-3:])), dt
    return gm.read_pfm(out), None, dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("transmute", help="path to the built transmute executable")
    ap.add_argument("--only", help="run the cases whose name contains this")
    ap.add_argument("--skip-vulkan", action="store_true")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--vk-device",
                    default=os.environ.get("TRANSMUTE_PARITY_VK_DEVICE", "llvmpipe"))
    ap.add_argument("--keep", help="write fixtures here and keep them")
    a = ap.parse_args()

    exe = os.path.abspath(a.transmute)
    if not os.access(exe, os.X_OK):
        print("FAIL: %s is not an executable" % exe)
        return 1
    skip_vk = a.skip_vulkan or os.environ.get("TRANSMUTE_PARITY_SKIP_VK", "") not in ("", "0")
    torch.set_num_threads(os.cpu_count() or 1)

    devices = []
    if not a.skip_cpu:
        devices.append(("cpu", "cpu", False))
    if not skip_vk:
        devices.append(("vulkan", a.vk_device, True))

    tmpctx = None
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        work = a.keep
    else:
        tmpctx = tempfile.TemporaryDirectory(prefix="tm_parity_")
        work = tmpctx.name

    passed = failed = 0
    t_start = time.monotonic()
    for name, opts, cpu_sizes, vk_sizes in CASES:
        if a.only and a.only not in name:
            continue
        path = os.path.join(work, name + ".safetensors")
        model = gm.generate(path, **opts)
        rng = np.random.default_rng(opts.get("seed", 0) + 1000)
        refs = {}
        for label, selector, validate in devices:
            for (w, h) in (cpu_sizes if label == "cpu" else vk_sizes):
                if (w, h) not in refs:
                    img = rng.random((h, w, model.tm_config["input_nc"]),
                                     dtype=np.float32)
                    inp = os.path.join(work, "%s_%dx%d_in.pfm" % (name, w, h))
                    gm.write_pfm(inp, img)
                    t0 = time.monotonic()
                    y = gm.reference_translate(model, img)
                    refs[(w, h)] = (inp, y, time.monotonic() - t0)
                inp, y, t_ref = refs[(w, h)]
                out = os.path.join(work, "%s_%dx%d_%s.pfm" % (name, w, h, label))
                got, err, dt = run_transmute(exe, selector, path, inp, out, validate)
                tag = "%-30s %-6s %4dx%-4d" % (name, label, w, h)
                if err is None and got.shape != y.shape:
                    err = "output shape %s, expected %s" % (got.shape, y.shape)
                if err is None:
                    diff = float(np.max(np.abs(got.astype(np.float64) * 2 - 1 - y)))
                    if not np.isfinite(diff):
                        err = "non-finite output"
                if err is not None:
                    failed += 1
                    print("FAIL %s  %s" % (tag, err), flush=True)
                    continue
                ok = diff <= TOL
                passed += ok
                failed += not ok
                print("%s %s  max_diff %.3g  (transmute %.2fs, torch %.2fs)" % (
                    "PASS" if ok else "FAIL", tag, diff, dt, t_ref), flush=True)
    print("total %.1fs" % (time.monotonic() - t_start))
    print("%d passed, %d failed" % (passed, failed))
    if tmpctx:
        tmpctx.cleanup()
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
