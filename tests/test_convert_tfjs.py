#!/usr/bin/python3
"""`transmute convert` on TF.js layers-models, end to end, against PyTorch.

Tiny Keras functional models are written here as TF.js saves them: a
model.json (modelTopology + weightsManifest) and binary weight shards, with
random float32 weights, float16 weights, uint8/uint16/float16 quantization,
and shards cut so that weights straddle them. The layers cover what the
converter maps: Conv2D (same, valid, dilated, 1x1, 5x5, strided 1x1, no
bias, activations), Conv2DTranspose, Activation (relu, tanh, linear),
ReLU, LeakyReLU, PReLU, Concatenate of three, Add of three, UpscalerJS'
MultiplyBeta and PixelShuffle2x, UpSampling2D, BatchNormalization.

Each model is converted, the written safetensors is checked (tensor names,
OIHW kernels against numpy, metadata, the graph JSON), then an image is
translated by `transmute translate` and compared with an independent torch
implementation of the Keras ops (NHWC semantics, TF "same" padding):
max abs difference <= 1e-3 on the 0..1 output. A model the core cannot load
or run fails the test.

Then the converter's errors: each must print its one-line reason, exit 1
(2 for a bad command line), and leave no output or temporary file behind.

Usage: test_convert_tfjs.py PATH/TO/transmute
"""
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_models  # noqa: E402
from checks import check, run_cli, summary  # noqa: E402

TRANSMUTE = sys.argv[1]
TOL = 1e-3


def run(args, device="cpu"):
    return run_cli(TRANSMUTE, args, device)


# ---------------------------------------------------------------------------
# A tiny layers-model writer
# ---------------------------------------------------------------------------

class Keras:
    """Builds the layer list of a Keras functional model and its weights."""

    def __init__(self, channels=3, seed=0, input_name="input_1"):
        self.rng = np.random.default_rng(seed)
        self.layers = []
        self.weights = []          # [(name, float32 array)] in manifest order
        self.channels = {}
        self.input = input_name
        self.layers.append({"class_name": "InputLayer", "name": input_name, "inbound_nodes": [],
                            "config": {"batch_input_shape": [None, None, None, channels],
                                       "dtype": "float32", "sparse": False, "name": input_name}})
        self.channels[input_name] = channels
        self.output = input_name

    def add(self, cls, name, inputs, config=None, weights=(), channels=None):
        if isinstance(inputs, str):
            inputs = [inputs]
        cfg = {"name": name, "trainable": True, "dtype": "float32"}
        cfg.update(config or {})
        self.layers.append({"class_name": cls, "name": name, "config": cfg,
                            "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]]})
        for wname, arr in weights:
            self.weights.append((name + "/" + wname, np.asarray(arr, np.float32)))
        self.channels[name] = channels if channels is not None else self.channels[inputs[0]]
        self.output = name
        return name

    def rand(self, *shape, scale=1.0):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def conv(self, name, x, filters, k, padding="same", act="linear", strides=1, dilation=1,
             bias=True, cls="Conv2D"):
        cin = self.channels[x]
        cfg = {"filters": filters, "kernel_size": [k, k], "strides": [strides, strides],
               "padding": padding, "data_format": "channels_last", "activation": act,
               "use_bias": bias}
        if cls == "Conv2D":
            cfg.update({"dilation_rate": [dilation, dilation], "groups": 1})
            shape = (k, k, cin, filters)
        else:
            cfg.update({"dilation_rate": [1, 1], "output_padding": None})
            shape = (k, k, filters, cin)
        w = [("kernel", self.rand(*shape, scale=1.0 / math.sqrt(k * k * cin)))]
        if bias:
            w.append(("bias", self.rand(filters, scale=0.1)))
        return self.add(cls, name, x, cfg, w, channels=filters)

    def topology(self, name="tiny"):
        return {"keras_version": "2.10.0", "backend": "tensorflow",
                "model_config": {"class_name": "Functional", "config": {
                    "name": name, "layers": self.layers,
                    "input_layers": [[self.input, 0, 0]],
                    "output_layers": [[self.output, 0, 0]]}}}


def encode(arr, storage):
    """(bytes, manifest extras, the values TF.js would load) for one weight."""
    a = np.asarray(arr, np.float32)
    if storage == "float32":
        return a.astype("<f4").tobytes(), {"dtype": "float32"}, a
    if storage == "float16":
        h = a.astype("<f2")
        return h.tobytes(), {"dtype": "float16"}, h.astype(np.float32)
    if storage == "qfloat16":
        h = a.astype("<f2")
        return h.tobytes(), {"dtype": "float32", "quantization": {"dtype": "float16"}}, h.astype(np.float32)
    bits = {"uint8": 8, "uint16": 16}[storage]
    lo, hi = float(a.min()), float(a.max())
    scale = (hi - lo) / (2 ** bits - 1) if hi > lo else 1.0
    q = np.clip(np.round((a - lo) / scale), 0, 2 ** bits - 1).astype("<u%d" % (bits // 8))
    deq = (q.astype(np.float64) * scale + lo).astype(np.float32)
    return q.tobytes(), {"dtype": "float32", "quantization": {"dtype": storage, "scale": scale, "min": lo}}, deq


def write_model(folder, model, storage="float32", shards=1, fname="model.json", topology=None,
                tweak=None):
    """Writes model.json and its shards; returns ({weight name: loaded values}, path).
    tweak(doc, blob) may change the document and the data before writing."""
    os.makedirs(folder, exist_ok=True)
    entries, blob, loaded = [], b"", {}
    for name, arr in model.weights:
        data, extra, values = encode(arr, storage)
        entries.append(dict({"name": name, "shape": list(arr.shape)}, **extra))
        blob += data
        loaded[name] = values
    cut = [len(blob) * i // shards for i in range(shards + 1)]
    paths = ["group1-shard%dof%d.bin" % (i + 1, shards) for i in range(shards)]
    doc = {"format": "layers-model", "generatedBy": "keras v2.10.0",
           "convertedBy": "TensorFlow.js Converter v1.2.6",
           "modelTopology": topology or model.topology(),
           "weightsManifest": [{"paths": paths, "weights": entries}]}
    parts = [blob[cut[i]:cut[i + 1]] for i in range(shards)]
    if tweak:
        parts = tweak(doc, parts) or parts
    for p, data in zip(doc["weightsManifest"][0]["paths"] if doc.get("weightsManifest") else [], parts):
        with open(os.path.join(folder, p), "wb") as f:
            f.write(data)
    path = os.path.join(folder, fname)
    with open(path, "w") as f:
        json.dump(doc, f)
    return loaded, path


# ---------------------------------------------------------------------------
# The Keras ops in torch (NCHW tensors, TF semantics)
# ---------------------------------------------------------------------------

def tf_same_pad(x, k, s, d):
    """TF's SAME padding: the total split with the smaller half first."""
    out = []
    for size in (x.shape[3], x.shape[2]):          # F.pad wants (left, right, top, bottom)
        eff = (k - 1) * d + 1
        total = max((math.ceil(size / s) - 1) * s + eff - size, 0)
        out += [total // 2, total - total // 2]
    return F.pad(x, out)


def keras_act(x, name):
    return {"linear": lambda v: v, "relu": torch.relu, "tanh": torch.tanh}[name](x)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def ref_conv(x, cfg, w):
    k, s, d = cfg["kernel_size"][0], cfg["strides"][0], cfg["dilation_rate"][0]
    kern = t(w["kernel"]).permute(3, 2, 0, 1)
    if cfg["padding"] == "same":
        x = tf_same_pad(x, k, s, d)
    y = F.conv2d(x, kern, t(w["bias"]) if cfg["use_bias"] else None, stride=s, dilation=d)
    return keras_act(y, cfg["activation"])


def ref_convt(x, cfg, w):
    k, s = cfg["kernel_size"][0], cfg["strides"][0]
    y = F.conv_transpose2d(x, t(w["kernel"]).permute(3, 2, 0, 1), stride=s)
    h, wd = x.shape[2] * s, x.shape[3] * s
    if cfg["padding"] == "same":
        b = max(k - s, 0) // 2
        y = y[:, :, b:b + h, b:b + wd]
    else:
        h, wd = h + max(k - s, 0), wd + max(k - s, 0)
        y = F.pad(y, (0, wd - y.shape[3], 0, h - y.shape[2]))
    if cfg["use_bias"]:
        y = y + t(w["bias"]).view(1, -1, 1, 1)
    return keras_act(y, cfg["activation"])


def depth_to_space(x, f):
    n, c, h, w = x.shape
    y = x.permute(0, 2, 3, 1).reshape(n, h, w, f, f, c // (f * f))
    return y.permute(0, 1, 3, 2, 4, 5).reshape(n, h * f, w * f, c // (f * f)).permute(0, 3, 1, 2)


def reference(model, loaded, img, lo, hi):
    """The model on img (H, W, C in 0..1) with pixels mapped to lo..hi and back."""
    vals = {model.input: t(img.transpose(2, 0, 1)[None].astype(np.float32) * (hi - lo) + lo)}
    with torch.no_grad():
        for L in model.layers[1:]:
            cfg, name = L["config"], L["name"]
            ins = [vals[i[0]] for i in L["inbound_nodes"][0]]
            w = {k.split("/", 1)[1]: v for k, v in loaded.items() if k.split("/", 1)[0] == name}
            x = ins[0]
            cls = L["class_name"]
            if cls == "Conv2D":
                y = ref_conv(x, cfg, w)
            elif cls == "Conv2DTranspose":
                y = ref_convt(x, cfg, w)
            elif cls == "Activation":
                y = keras_act(x, cfg["activation"])
            elif cls == "LeakyReLU":
                y = F.leaky_relu(x, cfg.get("alpha", 0.3))
            elif cls == "ReLU":
                y = F.leaky_relu(x, cfg.get("negative_slope", 0.0))
            elif cls == "PReLU":
                a = t(w["alpha"]).reshape(1, -1, 1, 1)
                y = torch.relu(x) + a * torch.clamp(x, max=0)
            elif cls == "Concatenate":
                y = torch.cat(ins, 1)
            elif cls == "Add":
                y = sum(ins[1:], ins[0])
            elif cls == "MultiplyBeta":
                y = x * cfg.get("beta", 0.2)
            elif cls == "UpSampling2D":
                y = F.interpolate(x, scale_factor=cfg["size"][0], mode="nearest")
            elif cls.startswith("PixelShuffle"):
                y = depth_to_space(x, cfg["scale"])
            elif cls == "BatchNormalization":
                y = (x - t(w["moving_mean"]).view(1, -1, 1, 1)) / torch.sqrt(
                    t(w["moving_variance"]).view(1, -1, 1, 1) + cfg["epsilon"])
                y = y * t(w["gamma"]).view(1, -1, 1, 1) + t(w["beta"]).view(1, -1, 1, 1)
            else:
                raise ValueError(cls)
            vals[name] = y
    out = vals[model.output][0].numpy().transpose(1, 2, 0)
    return (out - lo) / (hi - lo)


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------

def mixed_model(seed=1):
    """Every plain layer type on one path or another; scale 4, 3 -> 3."""
    m = Keras(3, seed)
    a = m.conv("c3", m.input, 8, 3, act="relu")
    b = m.conv("c5", m.input, 8, 5)
    d = m.conv("dil", m.input, 8, 3, dilation=2)
    cat = m.add("Concatenate", "cat3", [a, b, d], {"axis": -1}, channels=24)
    p = m.conv("c1", cat, 8, 1, padding="valid", act="tanh")
    lr = m.add("LeakyReLU", "lrelu", b, {"alpha": 0.1})
    pr = m.add("PReLU", "prelu", d, {"shared_axes": [1, 2]},
               [("alpha", m.rand(1, 1, 8, scale=0.3))])
    s = m.add("Add", "sum3", [p, lr, pr])
    mb = m.add("MultiplyBeta", "multiply_beta", s, {"beta": 0.2})
    res = m.add("Add", "res", [mb, a])
    th = m.add("Activation", "th", res, {"activation": "tanh"})
    lin = m.add("Activation", "lin", th, {"activation": "linear"})
    rl = m.add("ReLU", "relu_layer", lin, {"max_value": None, "negative_slope": 0.0, "threshold": 0.0})
    up = m.add("UpSampling2D", "up", rl, {"size": [2, 2], "data_format": "channels_last",
                                          "interpolation": "nearest"})
    c = m.conv("pre", up, 12, 3, bias=False)
    ps = m.add("PixelShuffle2x", "shuffle", c, {"scale": 2}, channels=3)
    m.conv("SR", ps, 3, 3)
    return m


def norm_deconv_model(seed=2):
    """BatchNormalization, ReLU with a slope, strided 1x1, transposed convs; scale 2."""
    m = Keras(3, seed)
    x = m.conv("head", m.input, 8, 3)
    bn = m.add("BatchNormalization", "bn", x, {"axis": -1, "epsilon": 0.001, "center": True, "scale": True},
               [("gamma", 1 + m.rand(8, scale=0.1)), ("beta", m.rand(8, scale=0.1)),
                ("moving_mean", m.rand(8, scale=0.1)), ("moving_variance", 0.5 + np.abs(m.rand(8)))])
    r = m.add("ReLU", "leaky", bn, {"negative_slope": 0.05})
    s2 = m.conv("down", r, 8, 1, strides=2)
    u1 = m.conv("deconv4", s2, 8, 4, strides=2, cls="Conv2DTranspose", act="relu")
    u2 = m.conv("deconv2", u1, 6, 2, strides=2, padding="valid", cls="Conv2DTranspose")
    m.conv("out", u2, 3, 3)
    return m


def small_model(seed=3):
    m = Keras(3, seed)
    x = m.conv("a", m.input, 6, 3, act="relu")
    y = m.conv("b", x, 6, 3)
    z = m.add("Concatenate", "cat", [x, y, m.input], {"axis": 3}, channels=15)
    m.conv("out", z, 3, 3)
    return m


def image(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx[..., None] * [0.31, 0.17, 0.25] + yy[..., None] * [0.15, 0.29, 0.13])
    return np.clip(base + rng.normal(0, 0.08, (h, w, 3)), 0, 1).astype(np.float32)


def translate(model_path, img, tmp, device="cpu"):
    src, dst = os.path.join(tmp, "in.pfm"), os.path.join(tmp, "out.pfm")
    gen_models.write_pfm(src, img)
    p = run(["translate", "-q", "-m", model_path, "-o", dst, src], device)
    if p.returncode:
        return None, p.stderr.strip()
    return gen_models.read_pfm(dst), ""


def convert(src, out, args=()):
    return run(["convert", src, "-o", out] + list(args))


def parity(name, model, loaded, src, tmp, rng=(-2.0, 2.0), args=(), devices=("cpu",), size=(20, 16)):
    """Converts src, translates an image, compares with the torch reference."""
    out = os.path.join(tmp, name.replace(" ", "_") + ".safetensors")
    if "--range" not in args:
        args = list(args) + ["--range", "%g,%g" % rng]
    p = convert(src, out, args)
    ok = p.returncode == 0 and os.path.exists(out)
    check(name + ": converts", ok, (p.stderr or p.stdout).strip().splitlines()[-1] if (p.stderr or p.stdout)
          else "rc %d" % p.returncode)
    if not ok:
        return None
    img = image(size[0], size[1], 7)
    ref = reference(model, loaded, img, *rng)
    unclipped = float(((ref > 0) & (ref < 1)).mean())
    for dev in devices:
        got, err = translate(out, img, tmp, dev)
        if got is None:
            check("%s: translates on %s" % (name, dev), False, err)
            continue
        if got.shape != ref.shape:
            check("%s %s: output size" % (name, dev), False, "%s vs %s" % (got.shape, ref.shape))
            continue
        d = float(np.abs(got - np.clip(ref, 0, 1)).max())
        check("%s %s" % (name, dev), d <= TOL and unclipped > 0.3,
              "max |diff| %.2e, %.0f%% unclipped" % (d, 100 * unclipped))
    return out


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def content_checks(out, model, loaded):
    """The written file: names, OIHW values, metadata, the graph."""
    meta, tensors, dts = gen_models.read_safetensors(out)
    want = set()
    for L in model.layers[1:]:
        n, cls = L["name"], L["class_name"]
        if cls in ("Conv2D", "Conv2DTranspose"):
            want |= {n + ".weight"} | ({n + ".bias"} if L["config"]["use_bias"] else set())
        elif cls == "PReLU":
            want.add(n + ".weight")
    check("tensor names", set(tensors) == want, str(sorted(set(tensors) ^ want)))
    ok = True
    for n in want:
        layer, kind = n.rsplit(".", 1)
        src = loaded[layer + "/" + {"weight": "alpha" if layer == "prelu" else "kernel", "bias": "bias"}[kind]]
        exp = src.transpose(3, 2, 0, 1) if src.ndim == 4 else src.reshape(-1)
        ok = ok and tensors[n].shape == exp.shape and np.array_equal(tensors[n], exp)
    check("kernels OIHW, values exact", ok)
    check("F32 stored", set(dts.values()) == {"F32"}, str(set(dts.values())))
    check("metadata", meta.get("arch") == "graph" and meta.get("input_nc") == "3" and
          meta.get("output_nc") == "3" and meta.get("scale") == "4" and meta.get("range") == "-2,2" and
          meta.get("name") == "mine" and meta.get("description") == "a test" and
          meta.get("license") == "CC0" and "keras v2.10.0" in meta.get("source", "") and
          "TensorFlow.js Converter v1.2.6" in meta.get("source", ""), json.dumps(
              {k: v for k, v in meta.items() if k != "graph"}))
    g = json.loads(meta.get("graph", "{}"))
    nodes = {n["name"]: n for n in g.get("nodes", [])}
    order = [n["name"] for n in g.get("nodes", [])]
    check("graph input/output", g.get("input") == "input_1" and g.get("output") == "SR", str(g.get("output")))
    check("graph nodes in order, linear activation dropped",
          order == [L["name"] for L in model.layers[1:] if L["name"] != "lin"], " ".join(order))
    exp = {
        "c3": {"op": "conv2d", "kernel": [3, 3], "pad": 1, "act": "relu", "inputs": ["input_1"]},
        "c5": {"op": "conv2d", "kernel": [5, 5], "pad": 2},
        "dil": {"op": "conv2d", "kernel": [3, 3], "pad": 2, "dilation": 2},
        "c1": {"op": "conv2d", "kernel": [1, 1], "pad": 0, "act": "tanh", "inputs": ["cat3"]},
        "cat3": {"op": "concat", "inputs": ["c3", "c5", "dil"]},
        "lrelu": {"op": "act", "act": "lrelu", "slope": 0.1},
        "prelu": {"op": "prelu"},
        "sum3": {"op": "add", "inputs": ["c1", "lrelu", "prelu"]},
        "multiply_beta": {"op": "scale", "value": 0.2},
        "th": {"op": "act", "act": "tanh"},
        "relu_layer": {"op": "act", "act": "relu", "inputs": ["th"]},
        "up": {"op": "upsample", "factor": 2},
        "pre": {"op": "conv2d", "bias": False},
        "shuffle": {"op": "depth_to_space", "factor": 2, "order": "tf"},
    }
    bad = [k for k, e in exp.items() if any(nodes.get(k, {}).get(a) != v for a, v in e.items())]
    check("graph node attributes", not bad, "; ".join(json.dumps(nodes.get(k)) for k in bad))
    check("no defaults written", "stride" not in nodes.get("c3", {}) and "act" not in nodes.get("c5", {}) and
          "bias" not in nodes.get("c3", {}), json.dumps(nodes.get("c3")))
    check("PReLU weight [C]", tensors.get("prelu.weight", np.zeros(0)).shape == (8,))


def parity_cases(tmp):
    m = mixed_model()
    loaded, src = write_model(os.path.join(tmp, "mixed"), m)
    out = parity("mixed f32", m, loaded, src, tmp, devices=("cpu", "vulkan"),
                 args=["--name", "mine", "--description", "a test", "--license", "CC0"])
    if out:
        content_checks(out, m, loaded)

    # storage variants of one model; the reference uses what TF.js would load
    for storage, shards in (("float16", 1), ("uint8", 1), ("uint16", 2), ("qfloat16", 1), ("float32", 3)):
        m = small_model(seed=10 + shards)
        folder = os.path.join(tmp, "s_%s_%d" % (storage, shards))
        loaded, src = write_model(folder, m, storage, shards)
        parity("%s, %d shard%s" % (storage, shards, "s" if shards > 1 else ""), m, loaded, src, tmp)
        if shards == 3:
            ends = np.cumsum([a.size * 4 for _, a in m.weights])
            cuts = np.cumsum([os.path.getsize(os.path.join(folder, "group1-shard%dof3.bin" % i)) for i in (1, 2)])
            check("the shards cut weights in the middle", not set(cuts) & set(ends), str(cuts))

    # --half: F16 tensors, compared with the rounded weights
    m = small_model(seed=21)
    loaded, src = write_model(os.path.join(tmp, "half"), m)
    rounded = {k: v.astype(np.float16).astype(np.float32) for k, v in loaded.items()}
    out = parity("--half", m, rounded, src, tmp, args=["--half"])
    if out:
        _, _, dts = gen_models.read_safetensors(out)
        check("--half stores F16", set(dts.values()) == {"F16"}, str(set(dts.values())))

    # the 0..255 range of UpscalerJS' RDN models: a residual net, so that
    # most of the output stays within the range
    m = Keras(3, 22)
    r = m.add("MultiplyBeta", "beta", m.conv("b", m.conv("a", m.input, 6, 3, act="relu"), 3, 3), {"beta": 0.05})
    m.add("Add", "out", [m.input, r])
    loaded, src = write_model(os.path.join(tmp, "r255"), m)
    parity("--range 0,255", m, loaded, src, tmp, rng=(0.0, 255.0))

    m = norm_deconv_model()
    loaded, src = write_model(os.path.join(tmp, "normdeconv"), m)
    out = parity("batchnorm, ReLU slope, strided 1x1, Conv2DTranspose", m, loaded, src, tmp, size=(24, 16))
    if out:
        meta, tensors, _ = gen_models.read_safetensors(out)
        nodes = {n["name"]: n for n in json.loads(meta["graph"])["nodes"]}
        check("Conv2DTranspose attributes", nodes["deconv4"].get("op") == "convt2d" and
              nodes["deconv4"].get("pad") == 1 and nodes["deconv4"].get("stride") == 2 and
              nodes["deconv2"].get("pad") == 0 and "out_pad" not in nodes["deconv2"] and
              tensors["deconv4.weight"].shape == (8, 8, 4, 4), json.dumps(nodes["deconv4"]))
        check("batchnorm tensors", {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"} <= set(tensors)
              and nodes["bn"].get("eps") == 0.001 and meta.get("scale") == "2", json.dumps(nodes["bn"]))

    # found by its first byte, not its name
    m = small_model(seed=23)
    loaded, src = write_model(os.path.join(tmp, "noext"), m, fname="model.txt")
    parity("a model.json named model.txt", m, loaded, src, tmp)


def family_cases(tmp):
    """The UpscalerJS layouts are recognized by their layer names."""
    m = Keras(3, 30, input_name="LR")
    x = m.conv("F_m1", m.input, 8, 3)
    y = m.conv("F_0", x, 8, 3)
    g = m.conv("GFF_1", y, 8, 1)
    f = m.add("Add", "FDF", [g, x])
    u = m.conv("UPN1", f, 8, 5, act="relu")
    m.conv("SR", u, 3, 3)
    _, src = write_model(os.path.join(tmp, "rdn"), m)
    out = os.path.join(tmp, "rdn.safetensors")
    p = convert(src, out)
    check("RDN layout: range 0,255", p.returncode == 0 and "0,255" in p.stdout and "RDN" in p.stdout and
          gen_models.read_safetensors(out)[0].get("range") == "0,255", (p.stdout + p.stderr).strip())
    p = convert(src, out, ["--range", "0,1"])
    check("RDN layout: --range overrides", p.returncode == 0 and
          gen_models.read_safetensors(out)[0].get("range") == "0,1", (p.stdout + p.stderr).strip())

    m = Keras(3, 31, input_name="LR_input")
    pre = m.conv("Pre_blocks_conv", m.input, 8, 3)
    f = m.conv("F_1_1_1", pre, 8, 3, act="relu")
    mb = m.add("MultiplyBeta", "multiply_beta", f, {"beta": 0.2})
    post = m.conv("post_blocks_conv", m.add("Add", "LRL_1_1", [pre, mb]), 8, 3)
    grl = m.add("Add", "GRL", [post, pre])
    ps = m.add("PixelShuffle4x", "pixel_shuffle", m.conv("PreShuffle", grl, 48, 3), {"scale": 4}, channels=3)
    m.conv("SR", ps, 3, 3)
    _, src = write_model(os.path.join(tmp, "rrdn"), m)
    out = os.path.join(tmp, "rrdn.safetensors")
    p = convert(src, out)
    meta = gen_models.read_safetensors(out)[0] if p.returncode == 0 else {}
    check("RRDN layout: range 0,1, scale 4", p.returncode == 0 and "RRDN" in p.stdout and
          meta.get("range") == "0,1" and meta.get("scale") == "4" and meta.get("name") == "esrgan-rrdn-x4",
          (p.stdout + p.stderr).strip())


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

def error_cases(tmp):
    out = os.path.join(tmp, "err.safetensors")
    keep = os.path.join(tmp, "keep.safetensors")
    n = [0]

    def leftovers():
        return [f for f in os.listdir(tmp) if ".tmp." in f or ".new." in f]

    def expect(name, src, needle, args=("--range", "0,1"), rc=1, target=out):
        p = convert(src, target, args)
        lines = p.stderr.strip().splitlines()
        ok = p.returncode == rc and len(lines) == (1 if rc == 1 else 2) and needle in p.stderr
        ok = ok and (target == keep or not os.path.exists(target)) and not leftovers()
        check("error: " + name, ok, "rc %d: %s" % (p.returncode, p.stderr.strip()[:300]))

    def model_with(name, edit=None, tweak=None, base=small_model, storage="float32", shards=1):
        """A copy of a small model changed by edit(model) and tweak(doc, parts)."""
        n[0] += 1
        m = base(seed=40 + n[0])
        if edit:
            edit(m)
        return write_model(os.path.join(tmp, "e%d_%s" % (n[0], name)), m, storage, shards, tweak=tweak)[1]

    def layer(m, lname):
        return next(L for L in m.layers if L["name"] == lname)

    def weight_entries(doc):
        return doc["weightsManifest"][0]["weights"]

    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write('{"format": "layers-model", "modelTopology": ')
    expect("not JSON", bad, "not a JSON document")
    with open(bad, "w") as f:
        json.dump({"format": "graph-model", "modelTopology": {"node": []}, "weightsManifest": []}, f)
    expect("graph-model", bad, "graph-model")
    with open(bad, "w") as f:
        json.dump({"format": "layers-model", "modelTopology": {"model_config": {"class_name": "Sequential",
                                                                                "config": {}}},
                   "weightsManifest": []}, f)
    expect("Sequential", bad, "Sequential model is not supported")
    with open(bad, "w") as f:
        json.dump({"format": "layers-model", "modelTopology": {}}, f)
    expect("not a layers-model", bad, "not a TF.js layers-model")

    def add_layer(cls, cfg, weights=(), ch=None):
        def edit(m):
            m.add(cls, "odd", m.output, cfg, weights, channels=ch)
        return edit

    expect("Lambda", model_with("lambda", add_layer("Lambda", {"function": "x"})),
           "layer 'odd': unsupported layer type Lambda")
    expect("Dense", model_with("dense", add_layer("Dense", {"units": 3})), "unsupported layer type Dense")
    expect("sigmoid", model_with("sigmoid", add_layer("Activation", {"activation": "sigmoid"})),
           "layer 'odd': activation 'sigmoid' is not supported")
    expect("bilinear upsampling", model_with("bilinear", add_layer(
        "UpSampling2D", {"size": [2, 2], "interpolation": "bilinear"})), "bilinear interpolation is not supported")
    expect("concat axis 1", model_with("axis", lambda m: layer(m, "cat")["config"].update(axis=1)),
           "layer 'cat': concatenation along axis 1")
    expect("relu6", model_with("relu6", add_layer("ReLU", {"max_value": 6.0})), "max_value")

    def conv_edit(**kw):
        def edit(m):
            m.conv("odd", m.output, 3, kw.pop("k", 3), **kw)
        return edit

    expect("same, even kernel", model_with("even", conv_edit(k=4)), "layer 'odd': padding 'same' with a 4x4")
    expect("same, stride 2", model_with("stride", conv_edit(strides=2)), "pads unevenly")
    expect("groups", model_with("groups", lambda m: (conv_edit()(m), layer(m, "odd")["config"].update(groups=3))),
           "grouped convolutions")
    expect("Conv2DTranspose k3 s2 same", model_with("convt", conv_edit(strides=2, cls="Conv2DTranspose")),
           "crops unevenly")
    # "valid" is pad 0: the image shrinks, which the core refuses when the
    # converter loads the result before writing it
    expect("valid 3x3 conv at the output", model_with("valid", lambda m: layer(m, "out")["config"].update(
        padding="valid")), "does not load as a Transmute model")
    expect("8 output channels", model_with("out8", lambda m: m.conv("wide", m.output, 8, 3)), "8 channels")
    expect("no --range", model_with("norange"), "--range", args=())

    def set_manifest(fn):
        def tweak(doc, parts):
            fn(doc)
        return tweak

    def drop_weight(doc):
        del weight_entries(doc)[-1]     # out/bias: its bytes stay, so cut them too
    expect("weight missing from the manifest", model_with("missing", tweak=lambda doc, parts: (
        drop_weight(doc), [parts[0][:-12]])[1]), "weight 'out/bias' is not in the weightsManifest")

    def extra_weight(doc, parts):
        weight_entries(doc).append({"name": "ghost/kernel", "shape": [2], "dtype": "float32"})
        return [parts[0] + b"\0" * 8]
    expect("unused manifest weight", model_with("unused", tweak=extra_weight),
           "weight 'ghost/kernel' in the weightsManifest belongs to no layer")

    def wrong_shape(m):
        layer(m, "b")["config"]["filters"] = 8
    expect("kernel shape disagrees", model_with("shape", wrong_shape),
           "weight 'b/kernel' has shape [3, 3, 6, 6] in the weightsManifest, the layer needs [3, 3, 6, 8]")
    expect("int32 dtype", model_with("int32", tweak=set_manifest(
        lambda doc: weight_entries(doc)[0].update(dtype="int32"))), "dtype int32 is not supported")
    expect("int8 quantization", model_with("int8", storage="uint8", tweak=set_manifest(
        lambda doc: weight_entries(doc)[0]["quantization"].update(dtype="int8"))), "quantization to int8")
    expect("uint8 without scale", model_with("noscale", storage="uint8", tweak=set_manifest(
        lambda doc: weight_entries(doc)[0]["quantization"].pop("scale"))), "finite scale and min")

    src = model_with("noshard", shards=2)
    os.unlink(os.path.join(os.path.dirname(src), "group1-shard2of2.bin"))
    expect("missing shard", src, "group1-shard2of2.bin")
    expect("short shard", model_with("short", tweak=lambda doc, parts: [parts[0][:-5]]),
           "the weightsManifest needs")
    expect("long shards", model_with("long", shards=2, tweak=lambda doc, parts: [parts[0], parts[1] + b"\0" * 4]),
           "describes only")
    expect("shard outside the folder", model_with("escape", tweak=lambda doc, parts: (
        doc["weightsManifest"][0]["paths"].__setitem__(0, "../x.bin"), parts)[1]), "leaves the model's folder")

    def inbound(lname, refs):
        return lambda m: layer(m, lname).__setitem__("inbound_nodes", refs)
    expect("unknown inbound layer", model_with("ghost", inbound("b", [[["ghost", 0, 0, {}]]])),
           "layer 'b': its input 'ghost' is not a layer of the model")
    expect("cycle", model_with("cycle", inbound("a", [[["b", 0, 0, {}]]])), "cycle")
    expect("shared layer", model_with("shared", inbound("b", [[["a", 0, 0, {}]], [["a", 0, 0, {}]]])),
           "shared")
    expect("unused layer", model_with("dangling", lambda m: (m.conv("spare", "a", 6, 1), setattr(m, "output", "out"))),
           "layer 'spare': the model's output does not depend on it")

    def two_inputs(m):
        m.layers.insert(1, dict(m.layers[0], name="input_2"))
        m.layers[1]["config"] = dict(m.layers[0]["config"], name="input_2")
    expect("two inputs", model_with("inputs2", tweak=lambda doc, parts: (
        doc["modelTopology"]["model_config"]["config"]["input_layers"].append(["input_2", 0, 0]), parts)[1],
        edit=two_inputs), "2 inputs")
    expect("two outputs", model_with("outputs2", tweak=lambda doc, parts: (
        doc["modelTopology"]["model_config"]["config"]["output_layers"].append(["a", 0, 0]), parts)[1]),
        "2 outputs")
    expect("unknown input channels", model_with("nochan", lambda m: m.layers[0]["config"].update(
        batch_input_shape=[None, None, None, None])), "1..4 channels")

    # hostile files: bounded numbers and names
    expect("huge shape", model_with("huge", tweak=set_manifest(
        lambda doc: weight_entries(doc)[0].update(shape=[65536, 65536, 65536, 65536]))), "too large")
    expect("long name", model_with("longname", tweak=set_manifest(
        lambda doc: weight_entries(doc)[0].update(name="x" * 300))), "too long")
    expect("negative size", model_with("negative", tweak=set_manifest(
        lambda doc: weight_entries(doc)[0].update(shape=[-1, 3]))), "not a size")
    expect("a newline in a name", model_with("newline", lambda m: m.add("Lambda", "odd\nline", m.output)),
           "layer 'odd?line': unsupported layer type Lambda")
    with open(bad, "w") as f:
        f.write("[" * 100000 + "]" * 100000)
    expect("deep nesting", bad, "not a JSON document")

    # the command line
    src = model_with("cli")
    expect("bad --range", src, "--range", args=("--range", "1,0"), rc=2)
    expect("--key with a model.json", src, "--key", args=("--key", "G_A"), rc=2)
    expect("--range with a checkpoint", os.path.join(tmp, "x.pth"), "--range", args=("--range", "0,1"), rc=2)
    with open(keep, "wb") as f:
        f.write(b"precious")
    expect("existing output kept", model_with("keep", add_layer("Lambda", {})), "Lambda", target=keep)
    with open(keep, "rb") as f:
        check("error: existing output unchanged", f.read() == b"precious")
    p = run(["convert", "--help"])
    check("--help tells of TF.js", p.returncode == 0 and "--range" in p.stdout and "layers-model" in p.stdout
          and "--key" in p.stdout)


def main():
    with tempfile.TemporaryDirectory(prefix="tm-convert-tfjs-") as tmp:
        for group in (parity_cases, family_cases, error_cases):
            group(tmp)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
