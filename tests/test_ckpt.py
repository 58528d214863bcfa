#!/usr/bin/python3
"""The checkpoint reader and safetensors writer of tools/convert, through
tests/ckpt_dump (which also reads its output back with the core's reader).

Good checkpoints, written by torch in both formats (and one hand-made Python 2
era file), must come back bit for bit: every tensor's name, dtype, shape and
bytes, the load order, each name's prefix length, the non-tensor entries.
Bad ones must fail with exit status 1 (not a signal), a one-line message
containing a given phrase, and no output file, temporary ones included.
--half is checked against numpy's float32 -> float16 conversion.

Usage: test_ckpt.py PATH/TO/ckpt_dump
Prints one line per case and a closing "N passed, M failed" line.
"""
import collections
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch
import torch.nn as nn

DUMP = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="tm-ckpt-")
OUTDIR = os.path.join(TMP, "out")
os.mkdir(OUTDIR)
results = []
torch.manual_seed(7)

DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
         torch.int64: "I64", torch.float64: "F64"}
MAGIC = (0x1950a86a20f9469cfc6c).to_bytes(10, "little")


def report(ok, name, detail=""):
    results.append(ok)
    print("%-4s %-44s %s" % ("ok" if ok else "FAIL", name, detail))


def run_dump(ckpt, out, half=False):
    args = [DUMP] + (["--half"] if half else []) + [ckpt, out]
    p = subprocess.run(args, capture_output=True, text=True, errors="replace")
    return p.returncode, p.stderr.strip()


def read_st(path):
    """(metadata, {name: (dtype, shape, raw bytes)}), parsed by hand."""
    blob = open(path, "rb").read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    assert (8 + n) % 8 == 0, "data area not 8-aligned"
    header = __import__("json").loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], list(info["shape"]), blob[8 + n + b:8 + n + e])
    return meta, out


def raw(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def expected(obj):
    """The C loader's flattening rule: ([(name, prefix_len, tensor)], [other names])."""
    tensors, others = [], []

    def structured(v):
        return isinstance(v, dict) or (isinstance(v, (list, tuple)) and any(
            isinstance(x, (torch.Tensor, dict, list, tuple)) for x in v))

    def walk(o, prefix):
        items = o.items() if isinstance(o, dict) else enumerate(o)
        for k, v in items:
            name = prefix + str(k)
            if isinstance(v, torch.Tensor):
                tensors.append((name, len(prefix), v))
            elif structured(v):
                walk(v, name + ".")
            else:
                others.append(name)
    walk(obj, "")
    return tensors, others


def compare(path, tensors, others, fmt):
    """None when the dump at path holds exactly these tensors, else why not."""
    meta, got = read_st(path)
    if meta.get("format") != fmt:
        return "format %r" % meta.get("format")
    order = ["%d %s" % (plen, name) for name, plen, _ in tensors]
    if meta.get("order", "").splitlines() != order:
        return "order/prefix lengths %r" % meta.get("order")
    if meta.get("others", "").splitlines() != others:
        return "others %r" % meta.get("others")
    if sorted(got) != sorted(n for n, _, _ in tensors):
        return "names %r" % sorted(got)
    for name, _, t in tensors:
        dt, shape, data = got[name]
        if dt != DTYPE[t.dtype] or shape != list(t.shape) or data != raw(t):
            return "tensor %s differs (%s %s)" % (name, dt, shape)
    return None


def good(name, obj, formats=("zip", "legacy"), **save_args):
    tensors, others = expected(obj)
    for fmt in formats:
        path = os.path.join(TMP, "%s-%s.pth" % (name, fmt))
        torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"), **save_args)
        good_file("%s (%s)" % (name, fmt), path, tensors, others, fmt)


def good_file(name, path, tensors, others, fmt):
    out = os.path.join(OUTDIR, "good.safetensors")
    rc, err = run_dump(path, out)
    why = err if rc else compare(out, tensors, others, fmt)
    report(why is None, name, "%d tensors" % len(tensors) if why is None else why)
    if os.path.exists(out):
        os.remove(out)


def bad(name, content, phrase, out_name="bad.safetensors"):
    """content: bytes, or a path to use as it is."""
    if isinstance(content, bytes):
        path = os.path.join(TMP, "bad.pth")
        with open(path, "wb") as f:
            f.write(content)
    else:
        path = content
    out = os.path.join(OUTDIR, out_name)
    rc, err = run_dump(path, out)
    phrases = phrase if isinstance(phrase, tuple) else (phrase,)
    left = os.listdir(OUTDIR)
    ok = rc == 1 and len(err.splitlines()) == 1 and any(p in err for p in phrases) and not left
    report(ok, name, err if ok else "rc=%d err=%r left=%r (wanted %r)" % (rc, err, left, phrase))
    for f in left:
        os.remove(os.path.join(OUTDIR, f))


# ---- Writing checkpoints by hand ------------------------------------------

def saved(obj, fmt, **kw):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=(fmt == "zip"), **kw)
    return buf.getvalue()


def make_zip(records):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in records.items():
            z.writestr(name, data)
    return buf.getvalue()


def zip_records(blob):
    z = zipfile.ZipFile(io.BytesIO(blob))
    return {n: z.read(n) for n in z.namelist()}


def legacy(obj_pickle, storages, sys_info=None):
    """A legacy file: storages is [(key, numel, raw bytes)]."""
    head = (b"\x80\x02\x8a\x0a" + MAGIC + b"." + pickle.dumps(1001, protocol=2) +
            (sys_info or pickle.dumps({"protocol_version": 1001, "little_endian": True,
                                       "type_sizes": {"short": 2, "int": 4, "long": 4}},
                                      protocol=2)))
    keys = pickle.dumps([k for k, _, _ in storages], protocol=2)
    data = b"".join(struct.pack("<q", n) + d for _, n, d in storages)
    return head + obj_pickle + keys + data


def zip_ckpt(data_pkl, storages):
    """A zip checkpoint: storages is [(key, raw bytes)]."""
    records = {"archive/data.pkl": data_pkl}
    records.update({"archive/data/%s" % k: d for k, d in storages})
    return make_zip(records)


class Py2:
    """Opcodes as a Python 2 era torch.save (protocol 2) wrote them."""

    @staticmethod
    def s(text):
        b = text.encode()
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    @staticmethod
    def i(v):
        return b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)

    @staticmethod
    def tup(items):
        return b"(" + b"".join(items) + b"t"

    @classmethod
    def storage(cls, typ, key, numel, view=None):
        vm = b"N" if view is None else cls.tup([cls.s(view[0]), cls.i(view[1]), cls.i(view[2])])
        return cls.tup([cls.s("storage"), typ, cls.s(key), cls.s("cuda:0"), cls.i(numel), vm]) + b"Q"

    @classmethod
    def tensor(cls, storage, offset, size, stride):
        return (b"h\x01" + cls.tup([storage, cls.i(offset), cls.tup(map(cls.i, size)),
                                    cls.tup(map(cls.i, stride))]) + b"R")


def py2_file():
    """OrderedDict([[key, tensor], ...]) with byte-string keys, the old
    four-argument _rebuild_tensor, a torch.cuda storage type, and a storage
    view. Returns (file bytes, {name: expected tensor})."""
    P = Py2
    root = torch.arange(12, dtype=torch.float32) * 0.25 - 1
    other = torch.tensor([5, -6, 7], dtype=torch.int64)
    fs = b"ctorch.cuda\nFloatStorage\n"
    pairs = [
        ("model.1.weight", P.tensor(P.storage(fs, "root", 12), 0, (3, 4), (4, 1))),
        ("x" * 300, P.tensor(P.storage(fs, "root", 12), 2, (2, 2), (1, 4))),
        ("viewed", P.tensor(P.storage(fs, "root", 12, ("v1", 4, 6)), 1, (2, 2), (2, 1))),
        ("num_batches_tracked", P.tensor(P.storage(b"ctorch\nLongStorage\n", "long", 3), 1, (), ())),
    ]
    # OrderedDict, then _rebuild_tensor memoized as 1 and popped, then
    # OrderedDict(([[key, tensor], ...],))
    obj = (b"\x80\x02ccollections\nOrderedDict\nq\x00ctorch._utils\n_rebuild_tensor\nq\x010](" +
           b"".join(b"](" + P.s(k) + v + b"e" for k, v in pairs) + b"e\x85R.")
    sys_info = (b"\x80\x02}q\x00(" + P.s("protocol_version") + b"M\xe9\x03" + P.s("little_endian") +
                b"\x88" + P.s("type_sizes") + b"}(" + P.s("short") + b"K\x02" + P.s("int") + b"K\x04" +
                P.s("long") + b"K\x08uu.")
    keys = b"\x80\x02](" + P.s("root") + P.s("long") + b"e."
    blob = (b"\x80\x02\x8a\x0a" + MAGIC + b"." + b"\x80\x02M\xe9\x03." + sys_info + obj + keys +
            struct.pack("<q", 12) + root.numpy().tobytes() + struct.pack("<q", 3) +
            other.numpy().tobytes())
    want = {"model.1.weight": root.view(3, 4), "x" * 300: root.as_strided((2, 2), (1, 4), 2),
            "viewed": root[4:10].clone().as_strided((2, 2), (2, 1), 1), "num_batches_tracked": other[1]}
    return blob, want


class Reduce:
    """Pickles as an arbitrary call: fn(*args)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class Net(nn.Module):
    """A small generator-like net: conv, batch norm, transposed conv."""

    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, 4, 7), nn.BatchNorm2d(4),
                                   nn.ReLU(), nn.ConvTranspose2d(4, 2, 3, stride=2, bias=False),
                                   nn.InstanceNorm2d(2), nn.Conv2d(2, 3, 1))
        with torch.no_grad():
            self.model[2].running_mean.normal_()
            self.model[2].num_batches_tracked += 12


def evil_tensor(storage, offset, size, stride):
    return Reduce(torch._utils._rebuild_tensor_v2, storage, offset, size, stride, False,
                  collections.OrderedDict())


# ---- Cases -----------------------------------------------------------------

def good_cases():
    good("dtypes", {"f32": torch.randn(3, 4), "f16": torch.randn(5).half(),
                    "bf16": torch.randn(2, 3).bfloat16(), "i64": torch.tensor(7),
                    "f64": torch.randn(4, dtype=torch.float64)})
    good("non-contiguous", {"t": torch.randn(3, 5).t(), "p": torch.randn(2, 3, 4).permute(2, 0, 1),
                            "s": torch.randn(4, 6)[:, ::2]})
    base = torch.randn(100)
    good("views into one storage", {"a": base[10:30].view(4, 5), "b": base[50:60], "c": base[::3],
                                    "base": base, "d": base[99:]})
    good("0-dim and empty", {"s": torch.tensor(3.5), "e": torch.zeros(0), "e2": torch.zeros(3, 0, 2),
                             "i": torch.tensor(5), "h": torch.tensor(1.5).half()})
    sd1 = {"model.1.weight": torch.randn(4, 3, 7, 7), "model.1.bias": torch.randn(4)}
    sd2 = {"model.1.weight": torch.randn(4, 3, 7, 7), "model.1.bias": torch.randn(4)}
    good("nested dicts", {"genA2B": sd1, "genB2A": sd2, "epoch": 3, "lr": 2e-4, "name": "h2z",
                          "opt": [torch.randn(2), {"m": torch.randn(3)}], "hist": [1, 2, 3],
                          "none": None, 7: {"k": torch.randn(1)}})
    good("DataParallel module. prefix", {"module." + k: v for k, v in sd1.items()})
    net = Net()
    good("nn.Module state_dict with _metadata", net.state_dict())
    good("pickle protocol 4", net.state_dict(), pickle_protocol=4)
    good("nn.Parameter values", {"w": nn.Parameter(torch.randn(3, 2)), "b": nn.Parameter(torch.randn(2))})
    good("empty state_dict", {})
    good("tied weights", {"a": sd1["model.1.bias"], "b": sd1["model.1.bias"]})
    good("top-level list", [torch.randn(2), {"x": torch.randn(1)}])
    good("names JSON must escape", {'we"ird\\na/me \u00e9\u4e2d': torch.randn(2), "": torch.randn(1)})
    good("bigger tensor", {"w": torch.randn(64, 32, 3, 3)}, formats=("zip",))
    blob, want = py2_file()
    path = os.path.join(TMP, "py2.pth")
    with open(path, "wb") as f:
        f.write(blob)
    good_file("hand-made Python 2 era legacy file", path,
              [(k, 0, v) for k, v in want.items()], [], "legacy")


def half_patterns():
    hi = np.arange(1 << 16, dtype=np.uint32) << 16
    lows = np.array([0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0xffff], np.uint32)
    pats = [(hi[:, None] | lows[None, :]).ravel()]
    for sign in (0, 0x80000000):
        for e in range(98, 116):
            for s in range(13, 25):
                for k in range(8):
                    h = 1 << (s - 1)
                    m = np.array([k << s, (k << s) + h - 1, (k << s) + h, (k << s) + h + 1],
                                 np.uint32) & 0x7fffff
                    pats.append(sign | (e << 23) | m)
    pats.append(np.random.default_rng(1).integers(0, 1 << 32, 1 << 20, dtype=np.uint32))
    return np.concatenate(pats).astype(np.uint32)


def half_case():
    bits = half_patterns()
    path = os.path.join(TMP, "half.pth")
    torch.save({"v": torch.from_numpy(bits.view(np.float32).copy()), "i": torch.tensor(3)}, path)
    out = os.path.join(OUTDIR, "half.safetensors")
    rc, err = run_dump(path, out, half=True)
    if rc:
        report(False, "--half: float32 -> float16", err)
        return
    meta, got = read_st(out)
    os.remove(out)
    h = np.frombuffer(got["v"][2], np.uint16)
    with np.errstate(over="ignore"):
        want = bits.view(np.float32).astype(np.float16).view(np.uint16)
    wrong = np.flatnonzero(h != want)
    ok = got["v"][0] == "F16" and not len(wrong) and got["i"][0] == "I64"
    detail = "%d values match numpy" % len(bits) if ok else "%d differ, first f32 0x%08x: 0x%04x vs 0x%04x" % (
        len(wrong), bits[wrong[0]], h[wrong[0]], want[wrong[0]]) if len(wrong) else got["v"][0]
    report(ok, "--half: float32 -> float16 (numpy)", detail)


def cut_cases():
    sd = {"a": torch.randn(5, 3), "b": torch.randn(4).half(), "n": torch.tensor(2)}
    for fmt, phrases in (("zip", ("zip", "truncated", "not a PyTorch checkpoint")),
                         ("legacy", ("truncated", "not a PyTorch checkpoint"))):
        blob = saved(sd, fmt)
        cuts = sorted(set([1, 2, 8, 15, 16, len(blob) - 1, len(blob) - 8] +
                          [len(blob) * k // 21 for k in range(1, 21)]))
        for c in cuts:
            bad("%s cut at %d of %d" % (fmt, c, len(blob)), blob[:c], phrases)


def hostile_cases():
    marker = os.path.join(TMP, "pwned")
    for fmt in ("zip", "legacy"):
        bad("os.system (%s)" % fmt, saved({"x": Reduce(os.system, ("echo pwned > " + marker,))}, fmt),
            ("posix.system", "refusing"))
        evil = {"x": Reduce(eval, ("open(%r, 'w')" % marker,))}
        bad("__builtin__.eval, protocol 2 (%s)" % fmt, saved(evil, fmt), "__builtin__.eval")
        bad("builtins.eval, protocol 4 (%s)" % fmt, saved(evil, fmt, pickle_protocol=4),
            "builtins.eval")
    report(not os.path.exists(marker), "no code ran", "")
    pk = lambda body: zip_ckpt(b"\x80\x02" + body, [])  # noqa: E731
    bad("__builtin__ getattr (GLOBAL)", pk(b"c__builtin__\ngetattr\n."), "__builtin__.getattr")
    bad("plain pickle of os.system", zip_ckpt(pickle.dumps(Reduce(os.system, ("true",))), []),
        "posix.system")
    bad("unknown opcode", pk(b"}\xff."), "unknown pickle opcode 0xff")
    bad("unsupported opcode INT", pk(b"I1\n."), "(INT)")
    bad("nesting: 100000 MARKs", pk(b"(" * 100000 + b"."), "nests deeper than 1000")
    bad("nesting: 100000 nested lists", pk(b"]" * 100000 + b"a" * 99999 + b"."), "nests deeper than 1000")
    bad("nesting in a legacy file", legacy(b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b".", []),
        "nests deeper than 1000")
    lst = []
    lst.append(lst)
    bad("a list that contains itself", zip_ckpt(pickle.dumps({"x": lst}, protocol=2), []),
        "contain itself")
    a, b_ = [], []
    a.append(b_)
    b_.append(a)
    bad("two lists that contain each other", zip_ckpt(pickle.dumps([a], protocol=2), []),
        "already placed")
    laughs = [1]
    for _ in range(64):
        laughs = [laughs, laughs]
    bad("2^64 shared subtrees, deep", zip_ckpt(pickle.dumps({"x": laughs}, protocol=2), []),
        "names take more than 64 MiB")
    wide = [[{}] * 2000] * 2100
    bad("4.2 million shared entries, wide", zip_ckpt(pickle.dumps({"x": wide}, protocol=2), []),
        "more than 4194304 entries")
    bad("memo index 2^32-1", pk(b"Nr\xff\xff\xff\xff."), "memo index")
    bad("memo entry never written", pk(b"h\x05."), "never written")
    bad("stack underflow", pk(b"a."), "stack underflow")
    bad("no STOP", pk(b"}"), "without a STOP")
    bad("huge string length", pk(b"X\xff\xff\xff\x7f"), "over the limit")


def storage_cases():
    st = torch.arange(10, dtype=torch.float32).storage()
    for fmt in ("zip", "legacy"):
        bad("shape product overflows (%s)" % fmt,
            saved({"x": evil_tensor(st, 0, (1 << 32, 1 << 32, 4), (0, 0, 0))}, fmt),
            "has too many elements")
        bad("view reaches past its storage (%s)" % fmt,
            saved({"x": evil_tensor(st, 1, (4,), (3,))}, fmt), "reaches past its storage")
        bad("offset past its storage (%s)" % fmt,
            saved({"x": evil_tensor(st, 10, (1,), (1,))}, fmt), "reaches past its storage")
        bad("stride overflows (%s)" % fmt,
            saved({"x": evil_tensor(st, 0, (3,), (1 << 62,))}, fmt), "strides overflow")
        bad("negative stride (%s)" % fmt, saved({"x": evil_tensor(st, 0, (2,), (-1,))}, fmt),
            "negative")
        bad("9 dimensions (%s)" % fmt, saved({"x": evil_tensor(st, 0, (1,) * 9, (1,) * 9)}, fmt),
            "at most 8")
        bad("int32 tensor (%s)" % fmt, saved({"x": torch.zeros(3, dtype=torch.int32)}, fmt),
            "IntStorage")
        bad("a bare tensor (%s)" % fmt, saved(torch.zeros(3), fmt), "not a dict of tensors")
        bad("duplicate names (%s)" % fmt,
            saved({"a.b": torch.zeros(1), "a": {"b": torch.zeros(1)}}, fmt), "two tensors are named 'a.b'")
        bad("expanded far beyond its storage (%s)" % fmt,
            saved({"x": torch.zeros(1).expand(1 << 22)}, fmt), "times the bytes")

    sd = {"a": torch.randn(6), "b": torch.randn(3)}
    recs = zip_records(saved(sd, "zip"))
    folder = next(n for n in recs if n.endswith("/data.pkl")).split("/")[0]
    short = dict(recs)
    short[folder + "/data/1"] = recs[folder + "/data/1"][:-4]
    bad("zip: storage record shorter than its tensor", make_zip(short), "holds 8 bytes but")
    missing = {k: v for k, v in recs.items() if k != folder + "/data/0"}
    bad("zip: storage record missing", make_zip(missing), "is missing")
    bad("zip: empty archive", make_zip({}), "no <folder>/data.pkl")
    bad("zip: no data.pkl", make_zip({"archive/version": b"3\n", "archive/data/0": b"1234"}),
        "no <folder>/data.pkl")
    two = dict(recs)
    two["other/data.pkl"] = recs[folder + "/data.pkl"]
    bad("zip: two data.pkl", make_zip(two), "more than one")
    bigend = dict(recs)
    bigend[folder + "/byteorder"] = b"big"
    bad("zip: big-endian byteorder", make_zip(bigend), "big-endian")
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in recs.items():
            z.writestr(name, data)
    good_file("zip: records deflated (a repacked archive)", _write(deflated.getvalue()),
              [("a", 0, sd["a"]), ("b", 0, sd["b"])], [], "zip")
    little = dict(recs)
    little[folder + "/byteorder"] = b"little"
    good_file("zip: byteorder little", _write(make_zip(little)),
              [("a", 0, sd["a"]), ("b", 0, sd["b"])], [], "zip")

    blob = saved(sd, "legacy")
    bad("legacy: last storage cut short", blob[:-4], "truncated")
    pos = blob.rfind(struct.pack("<q", 3))  # b's element count
    bad("legacy: storage size field edited",
        blob[:pos] + struct.pack("<q", 2) + blob[pos + 8:], "different number of elements")
    bad("legacy: wrong magic", blob[:5] + bytes([blob[5] ^ 1]) + blob[6:], "not a PyTorch checkpoint")
    bad("legacy: big-endian sys_info", blob.replace(b"little_endianq\x02\x88", b"little_endianq\x02\x89"),
        "big-endian")
    bad("legacy: protocol version 1000", blob.replace(b"M\xe9\x03.", b"M\xe8\x03.", 1), "1001")
    P = Py2
    fs = b"ctorch\nFloatStorage\n"
    twice = (b"\x80\x02}(" + P.s("a") + P.tensor(P.storage(fs, "k", 4), 0, (4,), (1,)) +
             P.s("b") + P.tensor(P.storage(fs, "k", 5), 0, (4,), (1,)) + b"u.")
    twice = twice.replace(b"}(", b"ctorch._utils\n_rebuild_tensor\nq\x010}(", 1)
    bad("one storage key with two sizes", legacy(twice, [("k", 4, b"\0" * 16)]), "declared twice")
    bad("a key with a newline", saved({"a\nb": torch.zeros(1)}, "zip"), "control character")
    bad("a key that is not UTF-8", saved({b"\xe9": torch.zeros(1)}, "zip", pickle_protocol=4),
        "not UTF-8")
    bad("a tensor named __metadata__", saved({"__metadata__": torch.zeros(1)}, "zip"), "reserved")
    bad("empty file", b"", "empty")
    bad("text file", b"hello world\n", "not a PyTorch checkpoint")
    bad("a directory", TMP, "not a regular file")
    bad("a missing file", os.path.join(TMP, "nope.pth"), "cannot open")


def _write(blob):
    path = os.path.join(TMP, "made.pth")
    with open(path, "wb") as f:
        f.write(blob)
    return path


def output_cases():
    path = _write(saved({"a": torch.randn(3)}, "zip"))
    rc, err = run_dump(path, os.path.join(TMP, "no-such-dir", "x.safetensors"))
    report(rc == 1 and "cannot create" in err, "output in a missing folder", err)
    os.mkdir(os.path.join(OUTDIR, "taken"))
    rc, err = run_dump(path, os.path.join(OUTDIR, "taken"))
    left = sorted(os.listdir(OUTDIR))
    report(rc == 1 and left == ["taken"], "output path is a folder: no temporary file left",
           "%s %r" % (err, left))
    os.rmdir(os.path.join(OUTDIR, "taken"))


def main():
    good_cases()
    half_case()
    cut_cases()
    hostile_cases()
    storage_cases()
    output_cases()
    failed = results.count(False)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
