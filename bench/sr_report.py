#!/usr/bin/python3
"""Super-resolution report: quality (PSNR) and speed of Transmute's SR models
against bicubic and against the same models in TF.js, in one run.

    /usr/bin/python3 bench/sr_report.py --build build \\
        --model slim=models/esrgan-slim-x4.safetensors:DIR_OF_slim/x4 \\
        --model thick=models/esrgan-thick-x4.safetensors:DIR_OF_thick/x4 \\
        --node-path CACHE/node_modules [--photo JPG] [--crop 768x480]
        [--time-size 64x48] [--reps 3] [--devices cpu,vulkan]

Quality: a centre crop of a real photograph (default: EveningGlow from
Debian's plasma-workspace-wallpapers) is the ground truth; it is shrunk 4x
with PIL's antialiased bicubic and brought back up by bicubic and by each
model (Transmute, CPU backend). PSNR is over RGB at 8 bits, with 4 pixels
shaved at each border (as SR papers do).

Speed: each model on a fixed TIME-SIZE input, on every device asked for
(bench/bench_translate, one process each: median of REPS after a warm-up,
peak RSS) and in TF.js on the CPU (tests/sr/tfjs_run.js, pure JavaScript
backend, median of REPS after a warm-up). Reported as milliseconds per
megapixel of output, with the ratio TF.js / Transmute (above 1: Transmute
is faster). The TF.js output on the same input is compared with
Transmute's (max abs difference on 0..255).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PHOTO = "/usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg"


def psnr(a, b, shave=4):
    a = a[shave:-shave, shave:-shave].astype(np.float64)
    b = b[shave:-shave, shave:-shave].astype(np.float64)
    mse = np.mean((a - b) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def size_arg(s):
    w, h = s.lower().split("x")
    return int(w), int(h)


def run_transmute(build, model, lr, device, reps, tmp):
    """bench_translate on lr (HxWx3 float 0..1): (output HxWx3 0..1, json)."""
    h, w, _ = lr.shape
    fin, fout = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.f32")
    lr.astype("<f4").tofile(fin)
    cmd = [os.path.join(build, "bench", "bench_translate"), "-m", model, "-d", device,
           "-s", f"{w}x{h}", "-n", str(reps), "--in", fin, "--out", fout]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"sr_report: {' '.join(cmd)}: {r.stderr.strip()}")
    info = json.loads(r.stdout)
    s = info["scale"]
    return np.fromfile(fout, "<f4").reshape(h * s, w * s, 3), info


def run_tfjs(node_path, model_dir, lr, lo, hi, reps, tmp):
    """tfjs_run.js on lr (0..1): (output 0..1 before clamping, seconds, peak MiB)."""
    h, w, _ = lr.shape
    fin, fout = os.path.join(tmp, "tin.f32"), os.path.join(tmp, "tout.f32")
    (lo + lr * (hi - lo)).astype("<f4").tofile(fin)
    env = dict(os.environ, NODE_PATH=node_path)
    cmd = ["node", os.path.join(ROOT, "tests", "sr", "tfjs_run.js"), model_dir, fin,
           str(h), str(w), "3", fout, str(reps + 1)]
    with open(os.path.join(tmp, "tfjs.log"), "w+") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)   # this child's own rusage: its peak RSS
        log.seek(0)
        text = log.read()
    if status:
        sys.exit(f"sr_report: tfjs: {text.strip()}")
    secs = float([l for l in text.splitlines() if l.startswith("seconds:")][0].split()[1])
    out = np.fromfile(fout, "<f4")
    s = int(round((out.size / (h * w * 3)) ** 0.5))
    return (out.reshape(h * s, w * s, 3) - lo) / (hi - lo), secs, ru.ru_maxrss / 1024


def model_range(model):
    """The network's input value range, from the file's metadata."""
    meta = read_meta(model)
    rng = meta.get("input_range", meta.get("range", "-1,1"))
    lo, hi = (float(v) for v in rng.split(","))
    return lo, hi


def read_meta(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n)).get("__metadata__", {})


def to8(x):
    return np.clip(np.rint(np.clip(x, 0, 1) * 255), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", action="append", required=True,
                    help="NAME=FILE.safetensors:TFJS_MODEL_DIR")
    ap.add_argument("--node-path", required=True)
    ap.add_argument("--photo", default=PHOTO)
    ap.add_argument("--crop", type=size_arg, default=(768, 480))
    ap.add_argument("--time-size", type=size_arg, default=(64, 48))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--devices", default="cpu,vulkan")
    a = ap.parse_args()

    if not os.path.exists(a.photo):
        sys.exit(f"sr_report: {a.photo} missing (apt-get install plasma-workspace-wallpapers)")
    img = Image.open(a.photo).convert("RGB")
    cw, ch = a.crop
    x0, y0 = (img.width - cw) // 2, (img.height - ch) // 2
    hr = img.crop((x0, y0, x0 + cw, y0 + ch))
    lr = hr.resize((cw // 4, ch // 4), Image.BICUBIC)
    hr8 = np.asarray(hr)
    lr01 = np.asarray(lr).astype(np.float32) / 255
    print(f"photo {a.photo}: centre {cw}x{ch} crop, shrunk to {cw // 4}x{ch // 4} (PIL bicubic)")
    print(f"{'method':<24} {'PSNR dB':>8}")
    bic = np.asarray(lr.resize((cw, ch), Image.BICUBIC))
    print(f"{'bicubic':<24} {psnr(bic, hr8):8.2f}")

    tw, th = a.time_size
    small = np.asarray(hr.resize((tw, th), Image.BICUBIC)).astype(np.float32) / 255
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in a.model:
            name, rest = spec.split("=", 1)
            model, tfjs_dir = rest.split(":", 1)
            up, _ = run_transmute(a.build, model, lr01, "cpu", 0, tmp)
            print(f"{name + ' (transmute)':<24} {psnr(to8(up), hr8):8.2f}")
            lo, hi = model_range(model)
            ours = {}
            for dev in a.devices.split(","):
                out, info = run_transmute(a.build, model, small, dev, a.reps, tmp)
                ours[dev] = (out, info)
            ref, secs, rss = run_tfjs(a.node_path, tfjs_dir, small, lo, hi, a.reps, tmp)
            s = ours["cpu"][1]["scale"] if "cpu" in ours else 4
            mp = tw * s * th * s / 1e6
            for dev, (out, info) in ours.items():
                diff = np.abs(out - np.clip(ref, 0, 1)).max() * 255
                rows.append((name, f"{dev} ({info['device'][:28]})", info["median_ms"] / mp,
                             secs * 1e3 / mp / (info["median_ms"] / mp), info["peak_rss_kib"] / 1024,
                             diff))
            rows.append((name, "tfjs 4 cpu (node)", secs * 1e3 / mp, 1.0, rss, 0.0))
    print(f"\nspeed on {tw}x{th} -> {tw * 4}x{th * 4} (ms per output megapixel, median of {a.reps})")
    print(f"{'model':<8} {'engine':<40} {'ms/MP':>10} {'vs tfjs':>8} {'peak MiB':>9} {'|d| /255':>9}")
    for r in rows:
        print(f"{r[0]:<8} {r[1]:<40} {r[2]:10.0f} {r[3]:8.2f} {r[4]:9.0f} {r[5]:9.3f}")


if __name__ == "__main__":
    main()
