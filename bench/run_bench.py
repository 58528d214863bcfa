#!/usr/bin/python3
"""Benchmark: CycleGAN resnet_9blocks (ngf 64, random weights) on Transmute's
CPU backend, its Vulkan device(s) and PyTorch on the CPU, in one run.

    /usr/bin/python3 bench/run_bench.py [--build build] [--sizes 256,1024]
        [--reps 5] [--reps-large 2] [--skip vulkan@1024,torch] [--json FILE]

Every backend runs in a process of its own (bench/bench_translate for
Transmute, this script in --torch-worker mode for PyTorch) so that its peak
RSS can be measured (os.wait4 rusage of that child). Each process loads the
model, translates once as a warm-up and then REPS times; the table shows the
median per image, the fastest rep, the speed relative to PyTorch
(torch_ms / ms: above 1 is faster than PyTorch) and the peak RSS.

Before any timing, each Transmute backend's output at 256x256 is checked
against PyTorch on the same weights and input (max |diff| on the -1..1
scale must be <= 1e-3); a backend that fails is not timed (--force times
it anyway).

--skip takes a comma list of BACKEND or BACKEND@SIZE where BACKEND is cpu,
vulkan (every Vulkan device), a Vulkan device index, or torch.
"""

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

TOL = 1e-3


def find_bench_exe(build):
    cands = [os.path.join(build, "bench", "bench_translate")] if build else \
        sorted(glob.glob(os.path.join(ROOT, "build*", "bench", "bench_translate")),
               key=os.path.getmtime, reverse=True)
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    sys.exit("run_bench: bench_translate not found (build it: ninja -C BUILD "
             "bench/bench_translate, or pass --build/--exe)")


def run_child(cmd, timeout):
    """Runs cmd; returns (rc, stdout, stderr, peak_rss_kib, wall_s)."""
    # the device and validation are chosen on the command line, never
    # inherited (the validation layer would distort the timings)
    env = {k: v for k, v in os.environ.items()
           if k not in ("TRANSMUTE_DEVICE", "TRANSMUTE_VALIDATE")}
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                status = -9
                break
            time.sleep(0.05)
        p.returncode = 0   # reaped by wait4; keep Popen from waiting again
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
    if status == -9:
        rc = "timeout"
    else:
        rc = os.waitstatus_to_exitcode(status)
    return rc, out, err, ru.ru_maxrss, time.monotonic() - t0


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") or line.startswith("["):
            return json.loads(line)
    raise ValueError("no JSON in output")


# ---------------------------------------------------------------------------
# PyTorch worker (a separate process, so that its RSS is its own)
# ---------------------------------------------------------------------------

def torch_worker(a):
    import torch
    import gen_models as gm
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    t0 = time.monotonic()
    model = gm.load_generator(a.model)
    load_ms = (time.monotonic() - t0) * 1e3
    w, h = map(int, a.size.split("x"))
    g = torch.Generator().manual_seed(0)
    x = torch.rand((1, 3, h, w), generator=g) * 2 - 1   # already a multiple of 4
    times = []
    with torch.no_grad():
        for r in range(a.reps + 1):
            t0 = time.monotonic()
            y = model(x)
            dt = (time.monotonic() - t0) * 1e3
            times.append(dt)
            print("torch: %s %.1f ms" % ("warm-up" if r == 0 else "rep", dt),
                  file=sys.stderr, flush=True)
    assert y.shape == (1, 3, h, w)
    reps = times[1:]
    print(json.dumps({"device": "PyTorch %s CPU, %d threads" % (
                          torch.__version__, torch.get_num_threads()),
                      "kind": "torch", "width": w, "height": h,
                      "load_ms": load_ms, "warmup_ms": times[0],
                      "reps_ms": reps,
                      "median_ms": statistics.median(reps) if reps else 0.0}))
    return 0


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def validate(exe, model_path, selector, is_vk, work, timeout, img, y):
    """Transmute's output for img against PyTorch's y on the same input."""
    import numpy as np
    raw_in = os.path.join(work, "val_in.f32")
    raw_out = os.path.join(work, "val_out_%s.f32" % selector.replace("/", "_"))
    img.astype("<f4").tofile(raw_in)
    cmd = [exe, "-m", model_path, "-d", selector, "-s", "%dx%d" % (img.shape[1], img.shape[0]),
           "-n", "0", "--in", raw_in, "--out", raw_out]
    if is_vk:
        cmd.append("--validate")
    rc, out, err, _, wall = run_child(cmd, timeout)
    if rc != 0:
        msgs = [l for l in err.strip().splitlines() if "error" in l] or \
            err.strip().splitlines()[-1:]
        uniq = list(dict.fromkeys(m[:400] for m in msgs))
        return None, "bench_translate exit %s (%d messages): %s" % (
            rc, len(msgs), "\n      ".join(uniq[:3]))
    got = np.fromfile(raw_out, "<f4").reshape(img.shape)
    return float(np.max(np.abs(got.astype(np.float64) * 2 - 1 - y))), None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", help="meson build folder (default: newest build*/)")
    ap.add_argument("--exe", help="path to bench_translate")
    ap.add_argument("--sizes", default="256,1024")
    ap.add_argument("--reps", type=int, default=5, help="timed reps (sizes <= 512)")
    ap.add_argument("--reps-large", type=int, default=2, help="timed reps (sizes > 512)")
    ap.add_argument("--vk-reps", type=int, help="timed reps on Vulkan devices "
                    "(default: as for the CPU; lavapipe is slow)")
    ap.add_argument("--skip", default="", help="comma list: cpu, vulkan, torch, "
                    "a Vulkan index, each optionally @SIZE")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    ap.add_argument("--timeout", type=float, default=1800, help="per process, seconds")
    ap.add_argument("--vk-late-validate", action="store_true",
                    help="check Vulkan devices on the output of their 256x256 timing run "
                    "instead of a separate run first (saves a run on slow devices; "
                    "no validation layer)")
    ap.add_argument("--force", action="store_true", help="time backends that fail validation")
    ap.add_argument("--model", help="use this .safetensors instead of a random resnet_9blocks")
    ap.add_argument("--json", help="also write all results here")
    # worker mode
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        return torch_worker(a)

    import numpy as np
    import torch
    import gen_models as gm

    exe = a.exe or find_bench_exe(a.build)
    sizes = [int(s) for s in a.sizes.split(",") if s]
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    ncpu = os.cpu_count() or 1
    torch.set_num_threads(a.threads or ncpu)

    def skipped(backend, size, aliases=()):
        for b in (backend,) + tuple(aliases):
            if b in skip or "%s@%d" % (b, size) in skip:
                return True
        return False

    work = tempfile.mkdtemp(prefix="tm_bench_")
    model_path = a.model or os.path.join(work, "resnet_9blocks.safetensors")
    if not a.model:
        gm.generate(model_path, arch="resnet", n_blocks=9, ngf=64, norm="instance",
                    seed=0, name="resnet_9blocks", description="benchmark, random weights")

    rc, out, err, _, _ = run_child([exe, "--list-devices"], 120)
    devs = last_json(out) if rc == 0 else []
    backends = [("cpu", "cpu", False, ("cpu",))]
    for d in devs:
        if d["index"] >= 0:
            backends.append(("vk%d" % d["index"], str(d["index"]), True,
                             ("vulkan", str(d["index"]))))
    print("bench_translate: %s" % exe)
    print("devices: " + "; ".join("%s [%s] %s" % (d["name"], d["kind"], d["driver"])
                                  for d in devs))
    print("cpu cores: %d, torch %s threads %d" % (ncpu, torch.__version__,
                                                    torch.get_num_threads()))

    # ---- validation at 256x256
    model = gm.load_generator(model_path)
    rng = np.random.default_rng(0)
    img = rng.random((256, 256, 3), dtype=np.float32)
    y_ref = gm.reference_translate(model, img)
    del model
    valid = {}
    print("\nvalidation at 256x256 against PyTorch (max |diff| on -1..1, limit %g):" % TOL)
    late = {}
    raw_in = os.path.join(work, "val_in.f32")
    img.astype("<f4").tofile(raw_in)
    for label, sel, is_vk, aliases in backends:
        if all(skipped(label, s, aliases) for s in sizes):
            continue
        if is_vk and a.vk_late_validate and 256 in sizes and not skipped(label, 256, aliases):
            late[label] = os.path.join(work, "late_out_%s.f32" % label)
            print("  %-6s checked on its 256x256 timing run" % label)
            continue
        diff, e = validate(exe, model_path, sel, is_vk, work, a.timeout, img, y_ref)
        ok = e is None and diff <= TOL
        valid[label] = ok
        print("  %-6s %s" % (label, ("max_diff %.3g  %s" % (diff, "ok" if ok else "FAILED"))
                              if e is None else "ERROR " + e), flush=True)

    # ---- timing
    results = []
    for size in sizes:
        reps = a.reps if size <= 512 else a.reps_large
        runs = []
        if not skipped("torch", size):
            runs.append(("torch", reps, [sys.executable, os.path.abspath(__file__), "--torch-worker",
                                   "--model", model_path, "--size", "%dx%d" % (size, size),
                                   "--reps", str(reps), "--threads", str(a.threads)]))
        for label, sel, is_vk, aliases in backends:
            if skipped(label, size, aliases):
                continue
            if not valid.get(label) and label not in late and not a.force:
                print("skipping %s at %d: failed validation" % (label, size))
                continue
            n = a.vk_reps if is_vk and a.vk_reps is not None else reps
            cmd = [exe, "-m", model_path, "-d", sel, "-s", "%dx%d" % (size, size),
                   "-n", str(n), "-t", str(a.threads)]
            if label in late and size == 256:
                cmd += ["--in", raw_in, "--out", late[label]]
            runs.append((label, n, cmd))
        for label, n_reps, cmd in runs:
            print("running %s at %dx%d (%d reps + warm-up) ..." % (label, size, size, n_reps),
                  flush=True)
            rc, out, err, rss, wall = run_child(cmd, a.timeout)
            if rc != 0:
                print("  %s failed (%s): %s" % (label, rc, " | ".join(
                    err.strip().splitlines()[-2:])))
                results.append(dict(backend=label, size=size, error=str(rc)))
                continue
            r = last_json(out)
            r.update(backend=label, size=size, peak_rss_kib_wait4=rss, wall_s=wall)
            results.append(r)
            if label in late and size == 256:
                got = np.fromfile(late[label], "<f4").reshape(img.shape)
                diff = float(np.max(np.abs(got.astype(np.float64) * 2 - 1 - y_ref)))
                valid[label] = diff <= TOL
                r["max_diff"] = diff
                print("  %s output vs PyTorch: max_diff %.3g  %s" % (
                    label, diff, "ok" if valid[label] else "FAILED"), flush=True)

    # ---- table
    print()
    hdr = "%-6s %-7s %-44s %10s %10s %10s %9s %10s" % (
        "size", "backend", "device", "median ms", "min ms", "warmup ms",
        "vs torch", "peak RSS")
    print(hdr)
    print("-" * len(hdr))
    for size in sizes:
        rows = [r for r in results if r["size"] == size]
        tms = [r["median_ms"] for r in rows if r["backend"] == "torch" and "median_ms" in r]
        t = tms[0] if tms else None
        for r in rows:
            if "error" in r:
                print("%-6s %-7s %s" % ("%d²" % size, r["backend"], "error: " + r["error"]))
                continue
            mn = min(r["reps_ms"]) if r["reps_ms"] else float("nan")
            ratio = "%8.2fx" % (t / r["median_ms"]) if t and r["median_ms"] else "%9s" % "-"
            print("%-6s %-7s %-44s %10.1f %10.1f %10.1f %s %7.0f MiB" % (
                "%d²" % size, r["backend"], r["device"][:44], r["median_ms"], mn,
                r["warmup_ms"], ratio, r["peak_rss_kib_wait4"] / 1024))
    print("\nvs torch = PyTorch median / backend median (above 1: faster than PyTorch).")
    print("peak RSS = ru_maxrss of the backend's own process (model load included).")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(devices=devs, validation=valid, results=results,
                           cpu_count=ncpu), f, indent=1)
    return 0 if all(valid.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
