#!/usr/bin/python3
"""Seed corpora and dictionaries for the fuzz targets of tests/fuzz.

Usage: make_seeds.py OUTDIR
Writes OUTDIR/ckpt/ (tiny checkpoints of both torch.save formats),
OUTDIR/pickle/ (their pickles and a few hand-made ones), OUTDIR/safetensors/
(small files written by hand), OUTDIR/graph/ (node lists for the tensors
of fuzz_graph.c, valid ones using every op and a few broken ones) and
OUTDIR/{pickle,safetensors,graph}.dict.
Needs torch (Debian: /usr/bin/python3 with python3-torch).
"""
import collections
import io
import json
import os
import pickle
import pickletools
import struct
import sys
import zipfile

import torch


def save(obj, fmt, **kw):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=(fmt == "zip"), **kw)
    return buf.getvalue()


def legacy_pickles(blob):
    """The five pickles at the start of a legacy file (found, not loaded)."""
    f = io.BytesIO(blob)
    out = []
    for _ in range(5):
        start = f.tell()
        for _ in pickletools.genops(f):
            pass
        out.append(blob[start:f.tell()])
    return out


class Reduce:
    """Pickles as the call fn(*args)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def checkpoints():
    base = torch.arange(12, dtype=torch.float32)
    objs = {
        "sd": collections.OrderedDict([("model.1.weight", torch.randn(2, 3)),
                                       ("model.1.bias", torch.randn(2))]),
        "dtypes": {"h": torch.randn(3).half(), "b": torch.randn(2).bfloat16(),
                   "n": torch.tensor(4), "d": torch.randn(2, dtype=torch.float64)},
        "views": {"a": base[2:8].view(2, 3), "t": base.view(3, 4).t(), "s": base[::5]},
        "nested": {"genA2B": {"w": torch.randn(2)}, "epoch": 3, "opt": [torch.zeros(0), 1.5]},
        "module": torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.BatchNorm2d(1)).state_dict(),
        "empty": {},
        "many": {"t%d" % i: torch.full((i % 3,), float(i)) for i in range(40)},
        "param": {"w": torch.nn.Parameter(torch.ones(2))},
        "expanded": {"x": torch.zeros(1).expand(300)},
        "huge-shape": {"x": Reduce(torch._utils._rebuild_tensor_v2, base.storage(), 0,
                                   (1 << 32, 1 << 32, 4), (0, 0, 0), False,
                                   collections.OrderedDict())},
    }
    seeds = {}
    for name, obj in objs.items():
        for fmt in ("zip", "legacy"):
            seeds["%s-%s" % (name, fmt)] = save(obj, fmt)
        seeds["%s-p4" % name] = save(obj, "zip", pickle_protocol=4)
    z = zipfile.ZipFile(io.BytesIO(seeds["sd-zip"]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for n in z.namelist():
            out.writestr(n, z.read(n), zipfile.ZIP_DEFLATED)
        out.writestr(n.split("/")[0] + "/byteorder", b"little")
    seeds["deflated-byteorder"] = buf.getvalue()
    return seeds


def pickles(ckpts):
    seeds = {}
    for name, blob in ckpts.items():
        if blob[:2] == b"PK":
            z = zipfile.ZipFile(io.BytesIO(blob))
            pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            seeds[name] = z.read(pkl)
        else:
            for i, p in enumerate(legacy_pickles(blob)):
                seeds["%s-%d" % (name, i)] = p
    # Python 2 era opcodes: byte strings, OrderedDict from a list of pairs,
    # the old _rebuild_tensor, a storage view.
    seeds["py2"] = (b"\x80\x02ccollections\nOrderedDict\nq\x00ctorch._utils\n_rebuild_tensor\nq\x010]("
                    b"](U\x01actorch.cuda\nFloatStorage\nq\x020h\x01((U\x07storageh\x02U\x01kU\x03cpuK\x0c"
                    b"(U\x02v1K\x02K\x06ttQK\x01(K\x02K\x02t(K\x02K\x01ttRe"
                    b"](T\x01\x00\x00\x00bh\x01((U\x07storageh\x02U\x01kU\x03cpuK\x0cNtQK\x00(t(ttRe"
                    b"e\x85R.")
    seeds["deep"] = b"\x80\x02" + b"]" * 1001 + b"a" * 1000 + b"."
    seeds["scalars"] = pickle.dumps([None, True, False, 1, -2, 300, 70000, -(1 << 40), 1 << 70,
                                     2.5, "s", b"b", ("t",), {"k": [1]}], protocol=4)
    return seeds


def safetensors():
    def pack(header, data=b""):
        hj = json.dumps(header).encode()
        hj += b" " * (-len(hj) % 8)
        return struct.pack("<Q", len(hj)) + hj + data

    f32 = struct.pack("<4f", 1, -2, 0.5, 3)
    return {
        "f32": pack({"__metadata__": {"arch": "resnet", "ngf": "4"},
                     "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, f32),
        "mixed": pack({"n": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]},
                       "h": {"dtype": "F16", "shape": [2], "data_offsets": [8, 12]},
                       "b": {"dtype": "BF16", "shape": [1, 1], "data_offsets": [12, 14]},
                       "e": {"dtype": "F32", "shape": [0], "data_offsets": [14, 14]}},
                      struct.pack("<q", 7) + b"\x00\x3c\x00\xc0" + b"\x80\x3f"),
        "other": pack({"d": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
                       "u": {"dtype": "U8", "shape": [3], "data_offsets": [8, 11]}},
                      struct.pack("<d", 1.5) + b"abc"),
        "meta-only": pack({"__metadata__": {"k": "v\n\u00e9"}}),
    }


def node(name, op, inputs, **attrs):
    return dict(name=name, op=op, inputs=inputs, **attrs)


def graphs():
    """Node lists over fuzz_graph.c's tensors (a: conv 3->8 with bias, b:
    conv 12->8 or convt 8->12 without, p: prelu 8, n: norm 8), 2x."""
    docs = {
        "convt-batchnorm": {"input": "x", "output": "up", "nodes": [
            node("a", "conv2d", ["x"], kernel=[3, 3], pad=1, act="lrelu", slope=0.1),
            node("n", "batchnorm", ["a"], eps=1e-5),
            node("p", "prelu", ["n"]),
            node("b", "convt2d", ["p"], kernel=[1, 1], bias=False),
            node("up", "depth_to_space", ["b"], factor=2, order="torch")]},
        "every-op": {"input": "x", "output": "o", "nodes": [
            node("sd", "space_to_depth", ["x"], factor=2, order="tf"),
            node("b", "conv2d", ["sd"], kernel=[1, 1], bias=False),
            node("a", "conv2d", ["x"], kernel=[3, 3], stride=2, pad=1, pad_mode="reflect", dilation=1),
            node("sum", "add", ["a", "b"], act="relu"),
            node("n", "instnorm", ["sum"], affine=True),
            node("i", "instnorm", ["n"], eps=0.001),
            node("p", "prelu", ["i"]),
            node("s", "scale", ["p"], value=0.5),
            node("t", "act", ["s"], act="tanh"),
            node("r", "act", ["p"], act="lrelu", slope=0.3),
            node("c", "concat", ["t", "r", "t", "r", "p", "t"]),
            node("d", "depth_to_space", ["c"], factor=4, order="tf"),
            node("u", "upsample", ["x"], factor=2),
            node("o", "add", ["d", "u", "d"], act="none")]},
        "concat-chain": {"input": "x", "output": "o", "nodes": [
            node("a", "conv2d", ["x"], kernel=[3, 3], stride=4, pad=1, bias=True),
            node("n", "batchnorm", ["a"], act="relu"),
            node("p", "prelu", ["n"]),
            node("c", "concat", ["p"] * 24),
            node("d", "depth_to_space", ["c"], factor=8, order="torch"),
            node("b", "convt2d", ["p"], kernel=[1, 1], stride=1, pad=0, out_pad=0, bias=False),
            node("e", "depth_to_space", ["b"], factor=2, order="tf"),
            node("u", "upsample", ["e"], factor=4),
            node("o", "add", ["d", "u"], act="tanh")]},
        "dilated": {"input": "in", "output": "o", "nodes": [
            node("a", "conv2d", ["in"], kernel=[3, 3], pad=2, dilation=2, act="relu"),
            node("p", "prelu", ["a"]),
            node("n", "instnorm", ["p"], affine=True, eps=0.01),
            node("b", "convt2d", ["n"], kernel=[1, 1], bias=False),
            node("o", "depth_to_space", ["b"], factor=2, order="tf")]},
        "broken-order": {"input": "x", "output": "b", "nodes": [
            node("b", "conv2d", ["a"], kernel=[1, 1]),
            node("a", "conv2d", ["x"], kernel=[3, 3])]},
        "one-node": {"input": "x", "output": "y", "nodes": [
            node("y", "upsample", ["x"], factor=2)]},
    }
    seeds = {k: json.dumps(v).encode() for k, v in docs.items()}
    seeds["not-an-object"] = b'["x"]'
    return seeds


PICKLE_DICT = [b"collections\nOrderedDict\n", b"torch._utils\n_rebuild_tensor_v2\n",
               b"torch._utils\n_rebuild_tensor\n", b"torch._utils\n_rebuild_parameter\n",
               b"torch\nFloatStorage\n", b"torch\nHalfStorage\n", b"torch\nBFloat16Storage\n",
               b"torch\nLongStorage\n", b"torch\nDoubleStorage\n", b"torch.cuda\nFloatStorage\n",
               b"storage", b"cpu", b"\x80\x02", b"\x80\x04\x95", b"\x8c\x07storage", b"PK\x03\x04",
               b"PK\x05\x06", b"archive/data.pkl", b"archive/data/0", b"archive/byteorder",
               b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", b"M\xe9\x03", b"little_endian"]
ST_DICT = [b'"dtype"', b'"shape"', b'"data_offsets"', b'"__metadata__"', b'"F32"', b'"F16"',
           b'"BF16"', b'"I64"', b'"F64"', b'"U8"', b'"BOOL"', b'"F8_E4M3"', b"[0, 0]", b"[]"]

GRAPH_DICT = [b'"%s"' % w.encode() for w in (
    "input", "output", "nodes", "name", "op", "inputs", "conv2d", "convt2d", "act", "add",
    "concat", "scale", "prelu", "upsample", "depth_to_space", "space_to_depth", "instnorm",
    "batchnorm", "kernel", "stride", "pad", "pad_mode", "dilation", "out_pad", "bias", "slope",
    "value", "factor", "order", "eps", "affine", "none", "relu", "lrelu", "tanh", "zero",
    "reflect", "tf", "torch", "a", "b", "n", "p", "x")] + [b"true", b"false", b"[1, 1]", b"[3, 3]"]


def write_dict(path, tokens):
    with open(path, "w") as f:
        for t in tokens:
            f.write('"%s"\n' % "".join("\\x%02x" % c for c in t))


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    ckpts = checkpoints()
    for sub, seeds in (("ckpt", ckpts), ("pickle", pickles(ckpts)), ("safetensors", safetensors()),
                       ("graph", graphs())):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        for name, blob in seeds.items():
            with open(os.path.join(out, sub, name), "wb") as f:
                f.write(blob)
    write_dict(os.path.join(out, "pickle.dict"), PICKLE_DICT)
    write_dict(os.path.join(out, "safetensors.dict"), ST_DICT)
    write_dict(os.path.join(out, "graph.dict"), GRAPH_DICT)


if __name__ == "__main__":
    main()
