#!/usr/bin/env bash
# test_cli.sh: end-to-end tests of the `transmute` command-line tool.
#
#   tests/test_cli.sh path/to/transmute [source-root]
#
# Bad inputs: each must fail with its one-line message, a non-zero exit and
# no output file (nor temporary file) left behind. Good paths translate
# small images with a tiny random-weight model written by tests/gen_models.py
# and a 2x super-resolution one by tests/gen_sr_model.py, checked against its
# PyTorch reference (needs /usr/bin/python3 with torch and numpy); image checks use a small
# stdlib-only Python helper (PNG/PFM/JPEG parsing), no PIL.
# Ends with "N passed, M failed"; exits 1 when anything failed.
set -u

if [ $# -lt 1 ]; then
  echo "usage: $0 path/to/transmute [source-root]" >&2
  exit 2
fi
T=$(realpath "$1")
SRC=$(realpath "${2:-$(dirname "$0")/..}")
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/transmute-cli.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1

# The tests decide the device themselves.
unset TRANSMUTE_DEVICE TRANSMUTE_VALIDATE

. "$SRC/tests/lib.sh"

# run CMD...: runs with stdout in $W/out.txt, stderr in $W/err.txt; rc in $rc.
run() {
  "$@" >"$W/out.txt" 2>"$W/err.txt" </dev/null
  rc=$?
}

# ---- helper: stdlib-only image files --------------------------------------
cat >"$W/img.py" <<'EOF'
import random, struct, sys, zlib

def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)

def png_bytes(w, h, ch, depth, samples, ihdr_w=None, ihdr_h=None):
    ct = {1: 0, 2: 4, 3: 2, 4: 6}[ch]
    bps = depth // 8
    raw = bytearray()
    i = 0
    for y in range(h):
        raw.append(0)
        for x in range(w * ch):
            raw += samples[i].to_bytes(bps, 'big')
            i += 1
    iw = w if ihdr_w is None else ihdr_w
    ih = h if ihdr_h is None else ihdr_h
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', iw, ih, depth, ct, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(bytes(raw))) + chunk(b'IEND', b''))

def read_png(path):
    d = open(path, 'rb').read()
    assert d[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    p = 8; idat = b''
    while p < len(d):
        n, = struct.unpack('>I', d[p:p + 4]); t = d[p + 4:p + 8]; body = d[p + 8:p + 8 + n]; p += 12 + n
        if t == b'IHDR':
            w, h, depth, ct, _, _, il = struct.unpack('>IIBBBBB', body)
        elif t == b'IDAT':
            idat += body
        elif t == b'IEND':
            break
    assert il == 0 and ct in (0, 2, 4, 6) and depth in (8, 16), 'unexpected PNG layout'
    ch = {0: 1, 4: 2, 2: 3, 6: 4}[ct]; bpp = ch * depth // 8; stride = w * bpp
    raw = zlib.decompress(idat); out = bytearray(); prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]; line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa = abs(b - c); pb = abs(a - c); pc = abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line; prev = line
    s = list(struct.unpack('>%dH' % (len(out) // 2), bytes(out))) if depth == 16 else list(out)
    return w, h, ch, depth, s

def write_pfm(path, w, h, ch, vals):
    rows = [vals[y * w * ch:(y + 1) * w * ch] for y in range(h)]
    with open(path, 'wb') as f:
        f.write(b'%s\n%d %d\n-1.0\n' % (b'PF' if ch == 3 else b'Pf', w, h))
        for r in reversed(rows):
            f.write(struct.pack('<%df' % len(r), *r))

def read_pfm(path):
    d = open(path, 'rb').read()
    magic, dims, scale, data = d.split(b'\n', 3)
    ch = 3 if magic == b'PF' else 1
    w, h = map(int, dims.split()); sc = float(scale)
    v = struct.unpack(('<' if sc < 0 else '>') + '%df' % (w * h * ch), data[:w * h * ch * 4])
    rows = [v[(h - 1 - y) * w * ch:(h - y) * w * ch] for y in range(h)]
    return w, h, ch, [x for r in rows for x in r]

def jpeg_info(path):
    d = open(path, 'rb').read()
    assert d[:2] == b'\xff\xd8' and d[-2:] == b'\xff\xd9', 'no SOI/EOI'
    p = 2
    while p < len(d):
        assert d[p] == 0xff, 'bad marker'
        m = d[p + 1]; n, = struct.unpack('>H', d[p + 2:p + 4])
        if m in (0xc0, 0xc1, 0xc2):
            h, w = struct.unpack('>HH', d[p + 5:p + 9])
            return w, h, d[p + 9]
        p += 2 + n
    raise AssertionError('no SOF')

def load(path):
    if open(path, 'rb').read(2) in (b'PF', b'Pf'):
        w, h, ch, v = read_pfm(path)
        return w, h, ch, 'f', v
    w, h, ch, depth, s = read_png(path)
    return w, h, ch, depth, s

def pattern(w, h, ch, seed):
    r = random.Random(seed)
    # smooth gradients plus noise: a plausible image
    return [min(255, max(0, int(128 + 100 * ((x / w) if c % 3 == 0 else (y / h) if c % 3 == 1 else ((x + y) / (w + h))) - 50 + r.randrange(-20, 21))))
            for y in range(h) for x in range(w) for c in range(ch)]

def fail(msg):
    print(msg); sys.exit(1)

cmd = sys.argv[1]; a = sys.argv[2:]
if cmd == 'png':          # png PATH W H CH DEPTH SEED [src.png: take samples from an 8-bit PNG]
    w, h, ch, depth, seed = map(int, a[1:6])
    s = pattern(w, h, ch, seed)
    if depth == 16:
        s = [v * 257 for v in s]
    open(a[0], 'wb').write(png_bytes(w, h, ch, depth, s))
elif cmd == 'gray_of':    # gray_of SRC_RGB_PNG DST_GRAY_PNG DST_RGB_EQUAL_PNG: R channel as gray, and R=G=B
    w, h, ch, depth, s = read_png(a[0])
    g = s[0::ch]
    open(a[1], 'wb').write(png_bytes(w, h, 1, depth, g))
    open(a[2], 'wb').write(png_bytes(w, h, 3, depth, [v for v in g for _ in range(3)]))
elif cmd == 'strip_alpha':  # strip_alpha RGBA_PNG RGB_PNG
    w, h, ch, depth, s = read_png(a[0])
    open(a[1], 'wb').write(png_bytes(w, h, 3, depth, [v for i, v in enumerate(s) if i % 4 != 3]))
elif cmd == 'to16':       # to16 SRC8 DST16
    w, h, ch, depth, s = read_png(a[0])
    open(a[1], 'wb').write(png_bytes(w, h, ch, 16, [v * 257 for v in s]))
elif cmd == 'to_pfm':     # to_pfm SRC8_RGB_PNG DST.pfm
    w, h, ch, depth, s = read_png(a[0])
    write_pfm(a[1], w, h, ch, [v / 255.0 for v in s])
elif cmd == 'zero_png':
    open(a[0], 'wb').write(png_bytes(0, 0, 3, 8, [], 0, 0))
elif cmd == 'huge_png':   # IHDR says 100000 x 100000; the data is tiny
    open(a[0], 'wb').write(png_bytes(1, 1, 3, 8, [0, 0, 0], 100000, 100000))
elif cmd == 'shape':      # shape PATH W H CH DEPTH  (DEPTH: 8, 16 or f)
    w, h, ch, depth, s = load(a[0])
    got = '%d %d %d %s' % (w, h, ch, depth)
    if got != ' '.join(a[1:5]):
        fail('%s: got %s, expected %s' % (a[0], got, ' '.join(a[1:5])))
elif cmd == 'jpeg':       # jpeg PATH W H NCOMP
    try:
        got = '%d %d %d' % jpeg_info(a[0])
    except AssertionError as e:
        fail('%s: %s' % (a[0], e))
    if got != ' '.join(a[1:4]):
        fail('%s: got %s, expected %s' % (a[0], got, ' '.join(a[1:4])))
elif cmd == 'close':      # close A B TOL [CHANNELS-of-A to compare, e.g. 0,1,2]: max |a-b| in 8-bit units
    wa, ha, ca, da, sa = load(a[0]); wb, hb, cb, db, sb = load(a[1]); tol = float(a[2])
    if (wa, ha) != (wb, hb):
        fail('sizes differ: %dx%d vs %dx%d' % (wa, ha, wb, hb))
    chans = [int(c) for c in a[3].split(',')] if len(a) > 3 else list(range(min(ca, cb)))
    def unit(d):
        return 255.0 if d == 'f' else 1.0 if d == 8 else 1 / 257.0
    ua, ub = unit(da), unit(db); worst = 0.0
    for i in range(wa * ha):
        for c in chans:
            worst = max(worst, abs(sa[i * ca + c] * ua - sb[i * cb + c] * ub))
    if worst > tol:
        fail('max difference %.3f > %.3f (8-bit units)' % (worst, tol))
    print('max difference %.3f' % worst)
elif cmd == 'alpha_same':  # alpha_same IN OUT: last channels byte-identical
    wa, ha, ca, da, sa = load(a[0]); wb, hb, cb, db, sb = load(a[1])
    if sa[ca - 1::ca] != sb[cb - 1::cb] or da != db:
        fail('alpha differs')
elif cmd == 'unquantized':  # unquantized PFM: some values are not multiples of 1/255, all in 0..1
    w, h, ch, v = read_pfm(a[0])
    if any(not (0.0 <= x <= 1.0) for x in v):
        fail('values outside 0..1')
    if all(abs(x * 255 - round(x * 255)) < 1e-4 for x in v):
        fail('all values are multiples of 1/255')
elif cmd == 'safetensors':  # safetensors PATH KIND: crafted bad models
    import json
    kind = a[1]
    def st(header, data=b''):
        h = json.dumps(header).encode()
        return struct.pack('<Q', len(h)) + h + data
    if kind == 'lying':
        d = st({'__metadata__': {'arch': 'resnet', 'input_nc': '3', 'output_nc': '3', 'ngf': '4',
                                 'norm': 'instance', 'n_blocks': '1', 'padding': 'reflect'},
                'model.1.weight': {'dtype': 'F32', 'shape': [4, 3, 7, 7], 'data_offsets': [0, 1 << 30]}},
               b'\0' * 64)
    elif kind == 'arch':
        d = st({'__metadata__': {'arch': 'transformer', 'input_nc': '3', 'output_nc': '3'},
                'w': {'dtype': 'F32', 'shape': [1], 'data_offsets': [0, 4]}}, b'\0' * 4)
    elif kind == 'random':
        r = random.Random(7); d = bytes(r.randrange(256) for _ in range(4096))
    open(a[0], 'wb').write(d)
else:
    fail('unknown helper command ' + cmd)
EOF
img() { "$PY" "$W/img.py" "$@"; }

# ---- fixtures --------------------------------------------------------------
mkdir -p in
img png in/rgb.png 37 53 3 8 1
img png in/rgba.png 37 53 4 8 2
img strip_alpha in/rgba.png in/rgba_rgb.png
img gray_of in/rgb.png in/gray.png in/gray_rgb.png
img to16 in/rgb.png in/rgb16.png
img to_pfm in/rgb.png in/rgb.pfm
cp "$SRC/samples/chelsea_256.jpg" in/photo.jpg
head -c 300 in/rgb.png >in/trunc.png
head -c 4000 in/photo.jpg >in/trunc.jpg
echo "this is not an image" >in/text.png
img zero_png in/zero.png
img huge_png in/huge.png

MODEL=$W/m.safetensors
if "$PY" "$SRC/tests/gen_models.py" --arch resnet --ngf 4 --n_blocks 1 --seed 1 -o "$MODEL" >"$W/gen.txt" 2>&1; then
  ok "gen_models.py wrote a tiny resnet model"
else
  bad "gen_models.py could not write the test model (needs /usr/bin/python3 with torch)" "$(tail -5 "$W/gen.txt")"
  echo "$pass passed, $fail failed"
  exit 1
fi
head -c 3000 "$MODEL" >"$W/trunc.safetensors"
img safetensors "$W/random.safetensors" random
img safetensors "$W/lying.safetensors" lying
img safetensors "$W/arch.safetensors" arch

# ---- bad inputs --------------------------------------------------------------
# expect_fail NAME REGEX CMD...: CMD writes to $W/o (an empty folder); it must
# exit 1, print exactly one line matching REGEX on stderr, nothing on stdout,
# and leave $W/o empty.
expect_fail() {
  local name=$1 re=$2; shift 2
  rm -rf "$W/o"; mkdir "$W/o"
  run "$@"
  local lines left
  lines=$(grep -c . "$W/err.txt")
  left=$(ls -A "$W/o")
  if [ "$rc" -ne 1 ]; then
    bad "$name: exit status $rc, expected 1" "$(cat "$W/err.txt")"
  elif [ "$lines" -ne 1 ]; then
    bad "$name: expected one line on stderr, got $lines" "$(cat "$W/err.txt")"
  elif ! grep -Eq -- "$re" "$W/err.txt"; then
    bad "$name: message does not match /$re/" "$(cat "$W/err.txt")"
  elif [ -n "$left" ]; then
    bad "$name: left files behind: $left"
  else
    ok "$name: $(cat "$W/err.txt")"
  fi
}

tcpu() { "$T" translate --device cpu -q -m "$MODEL" "$@"; }
expect_fail "truncated PNG" '^transmute: in/trunc\.png: truncated PNG file$' tcpu -o o/x.png in/trunc.png
expect_fail "truncated JPEG" '^transmute: in/trunc\.jpg: truncated JPEG file' tcpu -o o/x.jpg in/trunc.jpg
expect_fail "non-image file" '^transmute: in/text\.png: not a PNG, JPEG or PFM image$' tcpu -o o/x.png in/text.png
expect_fail "0x0 image" '^transmute: in/zero\.png: empty image \(0x0 pixels\)$' tcpu -o o/x.png in/zero.png
expect_fail "absurd size in header" '^transmute: in/huge\.png: image too large \(100000x100000' tcpu -o o/x.png in/huge.png
expect_fail "missing input" '^transmute: in/missing\.png: cannot open: No such file or directory$' tcpu -o o/x.png in/missing.png
expect_fail "output folder missing (-o)" "output folder 'o/nowhere' does not exist" tcpu -o o/nowhere/x.png in/rgb.png
expect_fail "output folder missing (--outdir)" "output folder 'o/nowhere' does not exist" tcpu --outdir o/nowhere in/rgb.png
cp in/rgb.png "$W/self.png"
expect_fail "refuse to overwrite the input" 'refusing to overwrite the input file' \
  "$T" translate --device cpu -q -m "$MODEL" -o "$W/self.png" "$W/self.png"
if cmp -s in/rgb.png "$W/self.png"; then ok "input left intact"; else bad "input was modified"; fi
expect_fail "model: random bytes" "model '.*random\.safetensors': (not a safetensors file|corrupt safetensors header)" \
  "$T" translate --device cpu -q -m "$W/random.safetensors" -o o/x.png in/rgb.png
expect_fail "model: truncated" "model '.*trunc\.safetensors': .*(past the|does not fit|truncated)" \
  "$T" translate --device cpu -q -m "$W/trunc.safetensors" -o o/x.png in/rgb.png
expect_fail "model: header lies about offsets" "model '.*lying\.safetensors': .*(data_offsets|past the)" \
  "$T" translate --device cpu -q -m "$W/lying.safetensors" -o o/x.png in/rgb.png
expect_fail "model: unknown arch" "model '.*arch\.safetensors': .*arch.*(not supported|unknown|unsupported)" \
  "$T" translate --device cpu -q -m "$W/arch.safetensors" -o o/x.png in/rgb.png
expect_fail "model: missing file" "model '.*nothere\.safetensors'.*No such file" \
  "$T" translate --device cpu -q -m "$W/nothere.safetensors" -o o/x.png in/rgb.png
expect_fail "info: corrupt model" "model '.*random\.safetensors'" "$T" info "$W/random.safetensors"

# ---- usage -----------------------------------------------------------------
expect_usage() {
  local name=$1; shift
  run "$@"
  if [ "$rc" -eq 2 ] && grep -q "Try 'transmute" "$W/err.txt"; then
    ok "usage error: $name"
  else
    bad "usage error: $name (exit $rc)" "$(cat "$W/err.txt")"
  fi
}
expect_usage "unknown option" "$T" translate --bogus -m "$MODEL" -o x.png in/rgb.png
expect_usage "unknown short option" "$T" translate -Z -m "$MODEL" -o x.png in/rgb.png
expect_usage "unknown command" "$T" frobnicate
expect_usage "no model" "$T" translate -o x.png in/rgb.png
expect_usage "-o with two inputs" "$T" translate -m "$MODEL" -o x.png in/rgb.png in/gray.png
expect_usage "unknown output extension" "$T" translate -m "$MODEL" -o x.gif in/rgb.png
expect_usage "bad --size" "$T" translate -m "$MODEL" --size 0 -o x.png in/rgb.png
expect_usage "info unknown option" "$T" info --frob "$MODEL"
for c in "" translate info devices; do
  run "$T" $c --help
  if [ "$rc" -eq 0 ] && grep -q '^Usage: transmute' "$W/out.txt"; then ok "help: transmute $c --help"
  else bad "help: transmute $c --help (exit $rc)"; fi
done
run "$T" --version
if [ "$rc" -eq 0 ] && grep -Eq '^transmute [0-9]+\.[0-9]+' "$W/out.txt"; then ok "--version: $(cat "$W/out.txt")"
else bad "--version (exit $rc)"; fi

# ---- good paths (CPU backend) ----------------------------------------------
mkdir -p cpu
# check NAME CMD...: must exit 0
check() {
  local name=$1; shift
  run "$@"
  if [ "$rc" -eq 0 ]; then ok "$name"; return 0; fi
  bad "$name (exit $rc)" "$(cat "$W/err.txt" "$W/out.txt")"
  return 1
}
# expect NAME helper-args...: an img.py check
expect() {
  local name=$1; shift
  local msg
  if msg=$(img "$@" 2>&1); then ok "$name${msg:+ ($msg)}"; else bad "$name" "$msg"; fi
}

check "translate PNG 8-bit RGB 37x53" "$T" translate --device cpu -m "$MODEL" -o cpu/rgb.png in/rgb.png &&
  expect "  output is 37x53 RGB 8-bit" shape cpu/rgb.png 37 53 3 8
if grep -Eq '^\[1/1\] rgb\.png 37x53 \.\.\. [0-9.]+ s$' "$W/err.txt"; then ok "  progress line: $(cat "$W/err.txt")"
else bad "  progress line" "$(cat "$W/err.txt")"; fi
check "translate again: same bytes" "$T" translate --device cpu -q -m "$MODEL" -o cpu/rgb2.png in/rgb.png &&
  { cmp -s cpu/rgb.png cpu/rgb2.png && ok "  deterministic" || bad "  two runs differ"; }

check "translate PNG RGBA" tcpu -o cpu/rgba.png in/rgba.png &&
  { expect "  output is RGBA 8-bit" shape cpu/rgba.png 37 53 4 8
    expect "  alpha byte-identical" alpha_same in/rgba.png cpu/rgba.png
    tcpu -o cpu/rgba_rgb.png in/rgba_rgb.png && expect "  color equals the RGB-only translation" close cpu/rgba.png cpu/rgba_rgb.png 0 0,1,2; }

check "translate PNG gray" tcpu -o cpu/gray.png in/gray.png &&
  { expect "  gray in -> RGB out" shape cpu/gray.png 37 53 3 8
    tcpu -o cpu/gray_rgb.png in/gray_rgb.png && expect "  equals R=G=B input" close cpu/gray.png cpu/gray_rgb.png 0; }

check "translate PNG 16-bit" tcpu -o cpu/rgb16.png in/rgb16.png &&
  { expect "  output stays 16-bit" shape cpu/rgb16.png 37 53 3 16
    expect "  agrees with the 8-bit translation within 1" close cpu/rgb16.png cpu/rgb.png 1.0; }

check "translate JPEG -> JPEG" tcpu -o cpu/photo.jpg in/photo.jpg &&
  expect "  output is a 256x256 3-component JPEG" jpeg cpu/photo.jpg 256 256 3
check "translate JPEG -> PNG" tcpu -o cpu/photo.png in/photo.jpg &&
  expect "  output is 256x256 RGB" shape cpu/photo.png 256 256 3 8

check "translate PFM -> PFM" tcpu -o cpu/rgb.pfm in/rgb.pfm &&
  { expect "  output is 37x53 float RGB" shape cpu/rgb.pfm 37 53 3 f
    expect "  floats carry through unquantized" unquantized cpu/rgb.pfm
    expect "  agrees with the PNG translation within 1" close cpu/rgb.pfm cpu/rgb.png 1.0; }
check "translate PNG -> PFM (--format pfm)" tcpu --format pfm -o cpu/fmt.out in/rgb.png &&
  expect "  output is float RGB" shape cpu/fmt.out 37 53 3 f

check "translate --size 64" tcpu --size 64 -o cpu/s64.png in/rgb.png &&
  expect "  output is 64x64" shape cpu/s64.png 64 64 3 8
check "translate --size 16 (downscale) RGBA" tcpu --size 16 -o cpu/s16.png in/rgba.png &&
  expect "  output is 16x16 RGBA" shape cpu/s16.png 16 16 4 8

mkdir -p od od2
check "--outdir with several files" "$T" translate --device cpu -m "$MODEL" --outdir od in/rgb.png in/gray.png in/photo.jpg in/rgb.pfm &&
  { for f in rgb.png gray.png photo.jpg rgb.pfm; do
      [ -f "od/$f" ] && ok "  od/$f written" || bad "  od/$f missing"; done
    [ "$(grep -c '^\[[1-4]/4\] ' "$W/err.txt")" -eq 4 ] && ok "  four progress lines" || bad "  progress lines" "$(cat "$W/err.txt")"
    cmp -s od/rgb.png cpu/rgb.png && ok "  same result as -o" || bad "  --outdir result differs from -o"; }
check "--outdir --format png renames" tcpu --outdir od2 --format png in/photo.jpg in/rgb.pfm &&
  { expect "  od2/photo.png" shape od2/photo.png 256 256 3 8
    expect "  od2/rgb.png (16-bit from float)" shape od2/rgb.png 37 53 3 16; }
rm -rf od3; mkdir od3
run "$T" translate --device cpu -q -m "$MODEL" --outdir od3 in/rgb.png in/trunc.png in/gray.png
if [ "$rc" -eq 1 ] && [ -f od3/rgb.png ] && [ -f od3/gray.png ] && [ ! -e od3/trunc.png ] &&
  grep -q 'in/trunc.png: truncated PNG file' "$W/err.txt" && grep -q '1 of 3 files failed' "$W/err.txt"; then
  ok "--outdir goes on after a bad file, exits 1 and counts it"
else
  bad "--outdir with a bad file (exit $rc; $(ls od3 | tr '\n' ' '))" "$(cat "$W/err.txt")"
fi
[ -z "$(ls -A od3 | grep '^\.')" ] && ok "  no temporary files left" || bad "  temporary files left: $(ls -A od3)"

check "info" "$T" info "$MODEL" &&
  { size=$(stat -c %s "$MODEL")
    for re in '^architecture: +resnet$' '^channels: +3 in, 3 out$' '^ +ngf = 4$' '^ +n_blocks = 1$' \
              '^parameters: +[0-9,]+$' '^tensors: +[0-9]+$' "^file size: .*\\b$size bytes"; do
      grep -Eq -- "$re" "$W/out.txt" && ok "  info shows /$re/" || bad "  info lacks /$re/" "$(cat "$W/out.txt")"
    done; }

check "devices" "$T" devices &&
  { if grep -Eq '^[* ] +cpu +cpu ' "$W/out.txt" && grep -q '^\* picked' "$W/out.txt" &&
        [ "$(grep -c '^\* ' "$W/out.txt")" -eq 2 ]; then
      ok "  lists the CPU and marks the one pick"
    else
      bad "  devices listing" "$(cat "$W/out.txt")"
    fi; }

# ---- no Vulkan driver: the CPU backend runs, -v says why -----------------
run env VK_ICD_FILENAMES=/nonexistent VK_DRIVER_FILES=/nonexistent \
  "$T" translate -v -m "$MODEL" -o cpu/novk.png in/rgb.png
nlines=$(grep -Eic 'no vulkan|vulkan.*(not found|unavailable|no device|no driver)' "$W/err.txt")
if [ "$rc" -eq 0 ] && cmp -s cpu/novk.png cpu/rgb.png && [ "$nlines" -eq 1 ]; then
  ok "no Vulkan driver: CPU backend used, one line says so: $(grep -Ei 'no vulkan|vulkan.*(not found|unavailable|no device|no driver)' "$W/err.txt")"
else
  bad "no Vulkan driver (exit $rc, $nlines matching lines)" "$(cat "$W/err.txt")"
fi

# ---- TRANSMUTE_PROFILE=1: one timing line per graph node, same output -------
run env TRANSMUTE_PROFILE=1 "$T" translate -v --device cpu -m "$MODEL" -o cpu/prof.png in/rgb.png
nprof=$(grep -c 'profile: .* ms' "$W/err.txt")
if [ "$rc" -eq 0 ] && cmp -s cpu/prof.png cpu/rgb.png && [ "$nprof" -ge 10 ]; then
  ok "TRANSMUTE_PROFILE=1 logs $nprof node timings"
else
  bad "TRANSMUTE_PROFILE=1 (exit $rc, $nprof profile lines)" "$(cat "$W/err.txt")"
fi

# ---- the tiled path (whole-image statistics) gives the whole-image result ----
run "$T" translate -d cpu -q --tile 16 -m "$MODEL" -o cpu/tiled.png in/rgb.png
if [ "$rc" -eq 0 ]; then
  expect "--tile 16 agrees with the whole image within 1/255" close cpu/tiled.png cpu/rgb.png 1.0
else
  bad "--tile 16 (exit $rc)" "$(cat "$W/err.txt")"
fi
for t in 8 x; do
  run "$T" translate -d cpu -q --tile $t -m "$MODEL" -o cpu/bad.png in/rgb.png
  if [ "$rc" -eq 2 ] && grep -q -- "--tile needs" "$W/err.txt" && [ ! -e cpu/bad.png ]; then
    ok "--tile $t is a usage error"
  else
    bad "--tile $t is a usage error (exit $rc)" "$(cat "$W/err.txt")"
  fi
done

# ---- a super-resolution model (2x): the output is twice the input's size ---
# tests/gen_sr_model.py writes a tiny random 2x graph model and computes its
# PyTorch reference (PFM in, PFM out: no PIL needed).
SR=$W/sr2x.safetensors
if "$PY" "$SRC/tests/gen_sr_model.py" -o "$SR" >"$W/gen.txt" 2>&1 &&
   "$PY" "$SRC/tests/gen_sr_model.py" --reference "$SR" in/rgb.pfm cpu/sr-ref.pfm >>"$W/gen.txt" 2>&1; then
  ok "gen_sr_model.py wrote a 2x model and its torch reference"
  mkdir -p sr
  check "SR: translate PNG 37x53" "$T" translate --device cpu -m "$SR" -o sr/rgb.png in/rgb.png &&
    { expect "  output is 74x106 RGB 8-bit" shape sr/rgb.png 74 106 3 8
      expect "  equals the torch reference within 1/255" close sr/rgb.png cpu/sr-ref.pfm 1.0
      if grep -Eq '^\[1/1\] rgb\.png 37x53 -> 74x106 \.\.\. [0-9.]+ s$' "$W/err.txt"; then
        ok "  progress line: $(cat "$W/err.txt")"
      else
        bad "  progress line" "$(cat "$W/err.txt")"
      fi; }
  check "SR: --tile 16 (overlapping tiles)" "$T" translate -d cpu -q --tile 16 -m "$SR" -o sr/tiled.png in/rgb.png &&
    expect "  equals the torch reference within 1/255" close sr/tiled.png cpu/sr-ref.pfm 1.0
  check "SR: PFM -> PFM" "$T" translate -d cpu -q -m "$SR" -o sr/rgb.pfm in/rgb.pfm &&
    { expect "  output is 74x106 float RGB" shape sr/rgb.pfm 74 106 3 f
      expect "  equals the torch reference within 1/255" close sr/rgb.pfm cpu/sr-ref.pfm 1.0; }
  check "SR: RGBA" "$T" translate -d cpu -q -m "$SR" -o sr/rgba.png in/rgba.png &&
    { expect "  output is 74x106 RGBA" shape sr/rgba.png 74 106 4 8
      "$T" translate -d cpu -q -m "$SR" -o sr/rgba_rgb.png in/rgba_rgb.png &&
        expect "  colour equals the RGB-only result" close sr/rgba.png sr/rgba_rgb.png 0 0,1,2; }
  check "SR: --size 16" "$T" translate -d cpu -q --size 16 -m "$SR" -o sr/s16.png in/rgb.png &&
    expect "  output is 32x32" shape sr/s16.png 32 32 3 8
  img png in/wide.png 40000 1 3 8 3
  expect_fail "SR: output beyond the size limit" \
    '^transmute: in/wide\.png: a 2x model would make a 80000x2 image, more than the limit' \
    "$T" translate -d cpu -q -m "$SR" -o o/x.png in/wide.png
else
  bad "gen_sr_model.py could not write the 2x model or its reference" "$(tail -5 "$W/gen.txt")"
fi

# ---- Vulkan (llvmpipe) with validation agrees with the CPU -----------------
run "$T" devices --device llvmpipe
if [ "$rc" -ne 0 ]; then
  bad "no llvmpipe Vulkan device (install mesa-vulkan-drivers)" "$(cat "$W/out.txt" "$W/err.txt")"
else
  mkdir -p vk
  for f in rgb.png rgba.png gray.png rgb16.png photo.jpg rgb.pfm; do
    run env TRANSMUTE_VALIDATE=1 "$T" translate --device llvmpipe -q -m "$MODEL" -o "vk/$f" "in/$f"
    if [ "$rc" -ne 0 ]; then
      bad "llvmpipe: $f (exit $rc)" "$(cat "$W/err.txt")"
      continue
    fi
    [ -f "cpu/$f" ] || tcpu -o "cpu/$f" "in/$f"
    case $f in
      *.jpg) ok "llvmpipe: $f translated with validation on" ;;
      *) expect "llvmpipe: $f agrees with the CPU within 1/255" close "vk/$f" "cpu/$f" 1.0 ;;
    esac
  done
  run env TRANSMUTE_VALIDATE=1 "$T" translate --device llvmpipe -q --tile 16 -m "$MODEL" -o vk/tiled.png in/rgb.png
  if [ "$rc" -eq 0 ]; then
    expect "llvmpipe: --tile 16 agrees with the CPU within 1/255" close vk/tiled.png cpu/rgb.png 1.0
  else
    bad "llvmpipe: --tile 16 (exit $rc)" "$(cat "$W/err.txt")"
  fi
  run env TRANSMUTE_VALIDATE=1 "$T" translate --device llvmpipe -q -m "$MODEL" --size 64 -o vk/s64.png in/rgb.png
  if [ "$rc" -eq 0 ]; then
    expect "llvmpipe: --size 64 agrees with the CPU within 1/255" close vk/s64.png cpu/s64.png 1.0
  else
    bad "llvmpipe: --size 64 (exit $rc)" "$(cat "$W/err.txt")"
  fi
  if [ -f cpu/sr-ref.pfm ]; then
    for t in 0 16; do
      run env TRANSMUTE_VALIDATE=1 "$T" translate --device llvmpipe -q --tile $t -m "$SR" -o vk/sr$t.png in/rgb.png
      if [ "$rc" -eq 0 ]; then
        expect "llvmpipe: SR 2x (--tile $t) equals the torch reference within 1/255" close vk/sr$t.png cpu/sr-ref.pfm 1.0
      else
        bad "llvmpipe: SR 2x --tile $t (exit $rc)" "$(cat "$W/err.txt")"
      fi
    done
  fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
