#!/usr/bin/python3
"""Bad model files: each must give a one-line error naming the problem and a
non-zero exit from `transmute info` (and leave no output from `translate`).

Graph models (arch=graph, docs/GRAPH.md): a broken node list, attributes of
the wrong type or range, tensors that do not fit it, and metadata that
disagrees with it; the message names the node where there is one.

Usage: test_model_errors.py PATH/TO/transmute
Prints one line per case and a closing "N passed, M failed" line.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_models  # noqa: E402
import torch  # noqa: E402

TRANSMUTE = sys.argv[1]
results = []


def pack(header, data=b""):
    hj = json.dumps(header).encode()
    return struct.pack("<Q", len(hj)) + hj + data


def split(blob):
    (n,) = struct.unpack_from("<Q", blob, 0)
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def run(args):
    try:
        p = subprocess.run([TRANSMUTE] + args, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, TRANSMUTE_DEVICE="cpu"))
    except subprocess.TimeoutExpired:
        return -1, "timed out (hang?)"
    return p.returncode, p.stderr.strip()


def expect_error(name, path, needle, tmp):
    rc, err = run(["info", path])
    out = os.path.join(tmp, "out.png")
    if os.path.exists(out):
        os.unlink(out)
    rc2, _ = run(["translate", "-m", path, "-o", out, os.path.join(tmp, "in.png")])
    lines = [l for l in err.splitlines() if l]
    # > 0: a signal (crash, sanitizer abort) or a hang gives rc < 0
    ok = (rc > 0 and rc2 > 0 and needle in err and len(lines) == 1
          and not os.path.exists(out) and "Segmentation" not in err)
    results.append(ok)
    print("%-4s %-28s rc=%d %s" % ("ok" if ok else "FAIL", name, rc, err))
    if not ok:
        print("     expected a one-line error containing %r" % needle)


# A 2x graph model using its five tensors (docs/GRAPH.md); each graph case
# changes one thing in it.
GRAPH = {"input": "x", "output": "up", "nodes": [
    {"name": "a", "op": "conv2d", "inputs": ["x"], "kernel": [3, 3], "pad": 1, "act": "lrelu"},
    {"name": "p", "op": "prelu", "inputs": ["a"]},
    {"name": "s", "op": "add", "inputs": ["a", "p"]},
    {"name": "b", "op": "conv2d", "inputs": ["s"], "kernel": [1, 1]},
    {"name": "up", "op": "depth_to_space", "inputs": ["b"], "factor": 2, "order": "torch"}]}
GRAPH_SHAPES = {"a.weight": [8, 3, 3, 3], "a.bias": [8], "p.weight": [8],
                "b.weight": [12, 8, 1, 1], "b.bias": [12]}
GRAPH_META = {"arch": "graph", "input_nc": "3", "output_nc": "3", "scale": "2", "range": "0,1"}


def graph_model(graph=GRAPH, meta=None, shapes=None, text=None):
    """The model's bytes; graph is the node list (dict), or text the raw
    metadata string; meta entries set to None are left out."""
    g = torch.Generator().manual_seed(5)
    tensors = {k: torch.randn(v, generator=g) for k, v in (shapes or GRAPH_SHAPES).items()}
    m = dict(GRAPH_META, graph=text if text is not None else json.dumps(graph))
    for k, v in (meta or {}).items():
        m[k] = v
    m = {k: v for k, v in m.items() if v is not None}
    path = tempfile.mktemp(suffix=".safetensors")
    gen_models.write_safetensors(path, tensors, m)
    with open(path, "rb") as f:
        blob = f.read()
    os.unlink(path)
    return blob


def edit(fn):
    """GRAPH changed by fn(graph, nodes by name)."""
    g = json.loads(json.dumps(GRAPH))
    fn(g, {n["name"]: n for n in g["nodes"]})
    return graph_model(g)


def graph_cases(tmp, case):
    path = os.path.join(tmp, "graph.safetensors")
    with open(path, "wb") as f:
        f.write(graph_model())
    rc, err = run(["info", path])
    rc2, _ = run(["translate", "-m", path, "-o", os.path.join(tmp, "graph.png"),
                  os.path.join(tmp, "in.png")])
    ok = rc == 0 and rc2 == 0
    results.append(ok)
    print("%-4s %-28s rc=%d,%d %s" % ("ok" if ok else "FAIL", "valid graph model runs", rc, rc2, err))
    nodes = GRAPH["nodes"]

    # An act node whose input is read again must not fold into that input's
    # producer: s = a + tanh(a), not 2 tanh(a). Range 0,4 keeps it unclipped.
    import numpy as np
    wa = np.full((3, 3, 1, 1), 0.05, np.float32)
    wa[0, 1] = 0.2
    g = {"input": "x", "output": "s", "nodes": [
        {"name": "a", "op": "conv2d", "inputs": ["x"], "kernel": [1, 1], "bias": False},
        {"name": "t", "op": "act", "inputs": ["a"], "act": "tanh"},
        {"name": "s", "op": "add", "inputs": ["a", "t"]}]}
    gen_models.write_safetensors(path, {"a.weight": torch.from_numpy(wa)}, dict(
        GRAPH_META, scale="1", range="0,4", graph=json.dumps(g)))
    x = np.random.RandomState(2).rand(4, 5, 3).astype(np.float32)
    gen_models.write_pfm(os.path.join(tmp, "x.pfm"), x)
    rc, err = run(["translate", "-m", path, "-o", os.path.join(tmp, "y.pfm"), os.path.join(tmp, "x.pfm")])
    a = np.einsum("oi,hwi->hwo", wa[:, :, 0, 0], 4 * x)
    diff = (np.abs(gen_models.read_pfm(os.path.join(tmp, "y.pfm")) - (a + np.tanh(a)) / 4).max()
            if rc == 0 else float("nan"))
    results.append(diff < 1e-5)
    print("%-4s %-28s rc=%d max diff %g %s" % ("ok" if diff < 1e-5 else "FAIL", "graph: act's input read again",
                                             rc, diff, err))

    case("graph: no 'graph'", graph_model(meta={"graph": None}), "metadata lacks 'graph'")
    case("graph: not json", graph_model(text="{nodes: ["), "'graph' is not a JSON object: ")
    case("graph: not an object", graph_model(text="[1, 2]"), "'graph' is not a JSON object")
    case("graph: nodes not a list", edit(lambda g, n: g.__setitem__("nodes", {"a": 1})),
         "needs 'input', 'output' and a 'nodes' list")
    case("graph: no nodes", edit(lambda g, n: g.__setitem__("nodes", [])), "0 nodes (1..100000)")
    case("graph: node without name", edit(lambda g, n: n["p"].pop("name")),
         "node 2 is not an object with a 'name'")
    case("graph: node not an object", edit(lambda g, n: g["nodes"].insert(1, "p")),
         "node 2 is not an object with a 'name'")
    case("graph: empty name", edit(lambda g, n: n["a"].__setitem__("name", "")),
         "node names must be 1..120 characters")
    case("graph: duplicate name", edit(lambda g, n: g["nodes"].insert(
        1, {"name": "a", "op": "act", "inputs": ["a"], "act": "relu"})),
         "graph node 'a': name 'a' is defined twice")
    case("graph: name is the input", edit(lambda g, n: g["nodes"].insert(
        0, {"name": "x", "op": "act", "inputs": ["x"], "act": "relu"})),
         "graph node 'x': name 'x' is the graph's input")
    case("graph: unknown op", edit(lambda g, n: n["p"].__setitem__("op", "softmax")),
         "graph node 'p': op 'softmax' is not supported")
    case("graph: node without op", edit(lambda g, n: n["p"].pop("op")), "graph node 'p': lacks 'op'")
    case("graph: unknown attribute", edit(lambda g, n: n["a"].__setitem__("strides", 1)),
         "graph node 'a': unknown attribute 'strides'")
    case("graph: kernel a string", edit(lambda g, n: n["a"].__setitem__("kernel", "3x3")),
         "graph node 'a': 'kernel' is not [kh, kw]")
    case("graph: kernel of strings", edit(lambda g, n: n["a"].__setitem__("kernel", ["3", "3"])),
         "graph node 'a': 'kernel' is not [kh, kw]")
    case("graph: kernel of floats", edit(lambda g, n: n["a"].__setitem__("kernel", [3.5, 3])),
         "graph node 'a': 'kernel' is not [kh, kw]")
    case("graph: kernel 0", edit(lambda g, n: n["a"].__setitem__("kernel", [0, 3])),
         "graph node 'a': kernel 0x3 is outside 1..64")
    case("graph: factor 2.5", edit(lambda g, n: n["up"].__setitem__("factor", 2.5)),
         "graph node 'up': 'factor' is not an integer")
    case("graph: factor 0", edit(lambda g, n: n["up"].__setitem__("factor", 0)),
         "graph node 'up': 'factor' = 0 is outside 1..16")
    case("graph: factor 17", edit(lambda g, n: n["up"].__setitem__("factor", 17)),
         "graph node 'up': 'factor' = 17 is outside 1..16")
    case("graph: pad -1", edit(lambda g, n: n["a"].__setitem__("pad", -1)),
         "graph node 'a': 'pad' = -1 is outside 0..256")
    case("graph: dilation 0", edit(lambda g, n: n["a"].__setitem__("dilation", 0)),
         "graph node 'a': 'dilation' = 0 is outside 1..64")
    case("graph: bias not a bool", edit(lambda g, n: n["b"].__setitem__("bias", 1)),
         "graph node 'b': 'bias' is not true or false")
    case("graph: unknown act", edit(lambda g, n: n["a"].__setitem__("act", "gelu")),
         "graph node 'a': act 'gelu' is not supported")
    case("graph: scale value a string", edit(lambda g, n: g["nodes"].insert(
        1, {"name": "k", "op": "scale", "inputs": ["a"], "value": "x"}) or
        n["p"].__setitem__("inputs", ["k"])), "graph node 'k': 'value' is not a number")
    case("graph: scale value huge", edit(lambda g, n: g["nodes"].insert(
        1, {"name": "k", "op": "scale", "inputs": ["a"], "value": 1e300}) or
        n["p"].__setitem__("inputs", ["k"])), "graph node 'k': 'value' = 1e+300 is outside")
    case("graph: slope huge", edit(lambda g, n: n["a"].__setitem__("slope", -1e39)),
         "graph node 'a': 'slope' = -1e+39 is outside")
    case("graph: kernel vs weight", edit(lambda g, n: n["a"].__setitem__("kernel", [5, 5])),
         "graph node 'a': 'a.weight' is not a [out, in, 5, 5] kernel")
    case("graph: missing weight", graph_model(shapes={k: v for k, v in GRAPH_SHAPES.items()
                                                      if k != "a.weight"}),
         "graph node 'a': missing tensor 'a.weight'")
    case("graph: missing bias", graph_model(shapes={k: v for k, v in GRAPH_SHAPES.items()
                                                    if k != "b.bias"}),
         "missing tensor 'b.bias'")
    case("graph: input after its use", edit(lambda g, n: g.__setitem__(
        "nodes", [nodes[0], nodes[2], nodes[1]] + nodes[3:])),
         "graph node 's': input 'p' is not defined before it")
    case("graph: input names nothing", edit(lambda g, n: n["s"].__setitem__("inputs", ["a", "q"])),
         "graph node 's': input 'q' is not defined before it")
    case("graph: inputs not a list", edit(lambda g, n: n["p"].__setitem__("inputs", "a")),
         "graph node 'p': lacks an 'inputs' list")
    case("graph: node not used", edit(lambda g, n: g["nodes"].insert(
        1, {"name": "dead", "op": "act", "inputs": ["a"], "act": "relu"})),
         "node 'dead' is not used by the output")
    case("graph: output names nothing", edit(lambda g, n: g.__setitem__("output", "zz")),
         "output 'zz' is not a node")
    case("graph: output is the input", edit(lambda g, n: g.__setitem__("output", "x")),
         "output 'x' is not a node")
    case("graph: add of 1 input", edit(lambda g, n: n["s"].__setitem__("inputs", ["a"])),
         "graph node 's': has 1 inputs (takes 2..4096)")
    case("graph: concat of 1 input", edit(lambda g, n: n["s"].update(op="concat", inputs=["p"])),
         "graph node 's': has 1 inputs (takes 2..4096)")
    case("graph: depth_to_space channels", edit(lambda g, n: n["up"].__setitem__("factor", 3)),
         "does not fit together: up: 12 channels do not divide by 9")
    case("graph: depth_to_space no order", edit(lambda g, n: n["up"].pop("order")),
         "graph node 'up': lacks 'order'")
    case("graph: conv in-channels", graph_model(shapes=dict(GRAPH_SHAPES, **{"b.weight": [12, 4, 1, 1]})),
         "does not fit together: b.weight: weight does not take 8 input channels")
    case("graph: concat changes channels", edit(lambda g, n: n["s"].__setitem__("op", "concat")),
         "does not fit together: b.weight: weight does not take 16 input channels")
    case("graph: prelu channels", graph_model(shapes=dict(GRAPH_SHAPES, **{"p.weight": [3]})),
         "does not fit together: p.weight: 3 slopes for 8 channels")
    case("graph: output channels", graph_model(meta={"output_nc": "1"}),
         "the network makes 3 channels, metadata output_nc says 1")
    case("graph: scale disagrees", graph_model(meta={"scale": "4"}),
         "into 128x128, not the 4x scale the metadata says")
    case("graph: scale missing", graph_model(meta={"scale": None}),
         "into 128x128, not the 1x scale the metadata says")
    case("graph: range 1,0", graph_model(meta={"range": "1,0"}),
         "metadata range='1,0' is not a range lo,hi with lo < hi")
    case("graph: range a,b", graph_model(meta={"range": "a,b"}),
         "metadata range='a,b' is not a range lo,hi with lo < hi")
    case("graph: extra tensor", graph_model(shapes=dict(GRAPH_SHAPES, **{"q.weight": [8]})),
         "unexpected tensor 'q.weight': no graph node reads it")
    big = {"input": "x", "output": "n100001", "nodes": [
        {"name": "n%d" % i, "op": "act", "inputs": ["n%d" % (i - 1) if i > 1 else "x"], "act": "relu"}
        for i in range(1, 100002)]}
    case("graph: 100001 nodes", graph_model(big), "100001 nodes (1..100000)")


def main():
    tmp = tempfile.mkdtemp(prefix="tm-model-errors-")
    good = os.path.join(tmp, "good.safetensors")
    gen_models.generate(good, arch="resnet", ngf=4, n_blocks=1, seed=3)
    # a tiny valid input image for the translate runs
    with open(os.path.join(tmp, "in.png"), "wb") as f:
        import zlib
        raw = b"".join(b"\0" + bytes([x * 30, 90, 200]) * 8 for x in range(8))
        def chunk(t, d):
            return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

    rc, err = run(["info", good])
    results.append(rc == 0)
    print("%-4s %-28s rc=%d" % ("ok" if rc == 0 else "FAIL", "valid model loads", rc))

    blob = open(good, "rb").read()
    header, data = split(blob)

    def case(name, content, needle):
        path = os.path.join(tmp, name.replace(" ", "_") + ".safetensors")
        with open(path, "wb") as f:
            f.write(content)
        expect_error(name, path, needle, tmp)

    def with_header(mutate):
        h = json.loads(json.dumps(header))
        mutate(h)
        return pack(h, data)

    def meta_set(k, v):
        return lambda h: h["__metadata__"].__setitem__(k, v)

    case("empty file", b"", "too short")
    case("random bytes", os.urandom(4096), "not a safetensors file")
    case("truncated data", blob[:len(blob) - 100], "past the")
    case("truncated header", blob[:40], "header size")
    case("header not json", struct.pack("<Q", 12) + b"{not json!!}" + data, "corrupt safetensors header")
    deep = b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"
    case("deeply nested json", struct.pack("<Q", len(deep)) + deep, "corrupt safetensors header")
    case("offsets past end", with_header(lambda h: h["model.1.weight"].__setitem__(
        "data_offsets", [0, 10 ** 9])), "past the")
    case("shape lies about size", with_header(lambda h: h["model.1.weight"].__setitem__(
        "shape", [4, 3, 7, 8])), "shape needs")
    case("shape product overflows", with_header(lambda h: h["model.1.weight"].__setitem__(
        "shape", [2 ** 40, 2 ** 40, 2 ** 40, 16])), "invalid shape")
    first, second = "model.1.weight", "model.1.bias"
    case("overlapping tensors", with_header(lambda h: h[second].__setitem__(
        "data_offsets", [h[first]["data_offsets"][0],
                         h[first]["data_offsets"][0] + h[second]["data_offsets"][1]
                         - h[second]["data_offsets"][0]])), "overlap")
    case("unknown dtype", with_header(lambda h: h[first].__setitem__("dtype", "Q8")), "unknown dtype")
    case("integer weights", with_header(lambda h: h[second].update({"dtype": "I32"})), "dtype I32")
    case("non-string metadata", with_header(meta_set("ngf", 4)), "is not a string")
    case("unknown arch", with_header(meta_set("arch", "transformer")), "arch='transformer' is not supported")
    case("missing arch", with_header(lambda h: h["__metadata__"].pop("arch")), "lacks 'arch'")
    case("absurd ngf", with_header(meta_set("ngf", "100000")), "ngf='100000'")
    case("absurd n_blocks", with_header(meta_set("n_blocks", "-3")), "n_blocks='-3'")
    case("bad norm", with_header(meta_set("norm", "layer")), "norm='layer'")
    case("wrong ngf for tensors", with_header(meta_set("ngf", "8")), "has shape")
    case("more blocks than tensors", with_header(meta_set("n_blocks", "2")), "missing tensor 'model.11.conv_block.1.weight'")
    case("fewer blocks than tensors", with_header(meta_set("n_blocks", "0")), "missing tensor 'model.10.weight'")
    case("missing tensor", with_header(lambda h: h.pop("model.14.bias")), "missing tensor 'model.14.bias'")
    h2 = json.loads(json.dumps(header))
    h2["extra.weight"] = dict(h2["model.1.bias"])
    off = len(data)
    h2["extra.weight"]["data_offsets"] = [off, off + 16]
    h2["extra.weight"]["shape"] = [4]
    case("extra tensor", pack(h2, data + b"\0" * 16), "unexpected tensor 'extra.weight'")
    case("unet without num_downs", with_header(meta_set("arch", "unet")), "lacks 'num_downs'")
    graph_cases(tmp, case)

    n_ok = sum(results)
    print("%d passed, %d failed" % (n_ok, len(results) - n_ok))
    if n_ok == len(results):  # kept for a look when something failed
        shutil.rmtree(tmp)
    return 0 if n_ok == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
