#!/usr/bin/python3
"""Bad model files: each must give a one-line error naming the problem and a
non-zero exit from `transmute info` (and leave no output from `translate`).

Usage: test_model_errors.py PATH/TO/transmute
Prints one line per case and a closing "N passed, M failed" line.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_models  # noqa: E402

TRANSMUTE = sys.argv[1]
results = []


def pack(header, data=b""):
    hj = json.dumps(header).encode()
    return struct.pack("<Q", len(hj)) + hj + data


def split(blob):
    (n,) = struct.unpack_from("<Q", blob, 0)
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def run(args):
    p = subprocess.run([TRANSMUTE] + args, capture_output=True, text=True,
                       env=dict(os.environ, TRANSMUTE_DEVICE="cpu"))
    return p.returncode, p.stderr.strip()


def expect_error(name, path, needle, tmp):
    rc, err = run(["info", path])
    out = os.path.join(tmp, "out.png")
    rc2, _ = run(["translate", "-m", path, "-o", out, os.path.join(tmp, "in.png")])
    lines = [l for l in err.splitlines() if l]
    ok = (rc != 0 and rc2 != 0 and needle in err and len(lines) == 1
          and not os.path.exists(out) and "Segmentation" not in err)
    results.append(ok)
    print("%-4s %-28s rc=%d %s" % ("ok" if ok else "FAIL", name, rc, err))
    if not ok:
        print("     expected a one-line error containing %r" % needle)


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

    n_ok = sum(results)
    print("%d passed, %d failed" % (n_ok, len(results) - n_ok))
    return 0 if n_ok == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
