#!/usr/bin/env bash
# Smoke test of `transmute convert` on the real UpscalerJS ESRGAN packages.
#
#   scripts/convert-upscalerjs.sh NODE_MODULES_DIR OUTDIR
#
# NODE_MODULES_DIR holds @upscalerjs/esrgan-slim, -medium and/or -thick, as
#   npm install @upscalerjs/esrgan-slim @upscalerjs/esrgan-thick
# leaves them. For each package present and each scale in $SCALES (default
# 4; e.g. SCALES="2 3 4 8"), models/x<N>/model.json is converted to
# OUTDIR/esrgan-<size>-x<N>.safetensors (the converter must recognize the
# layout and pick the range: slim/medium 0,255, thick 0,1), shown by
# `transmute info`, and the package's assets/fixture.png is upscaled to
# OUTDIR/esrgan-<size>-x<N>-fixture.png. When the package ships the
# published result (assets/samples/<N>x/result.png) and $PYTHON has numpy and
# PIL, the two must agree within 2/255 on every pixel (TF.js and Transmute
# round differently; the results agree to about 1e-6 before rounding).
#
# $TRANSMUTE names the binary (default: build/tools/transmute, else the one
# on PATH), $PYTHON the python (default /usr/bin/python3, else python3).
# Exit status: 0 when every model passed, 1 otherwise.
set -uo pipefail

[ $# -eq 2 ] || { sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
mods=$1
out=$2
root=$(cd "$(dirname "$0")/.." && pwd)
tm=${TRANSMUTE:-$root/build/tools/transmute}
[ -x "$tm" ] || tm=$(command -v transmute) || { echo "no transmute binary: set TRANSMUTE" >&2; exit 1; }
mkdir -p "$out" || exit 1
py=${PYTHON:-/usr/bin/python3}
[ -x "$py" ] || py=python3

declare -A want_range=([slim]=0,255 [medium]=0,255 [thick]=0,1)
failed=0 done=0

# max |a - b| over RGB, in 1/255 steps, of two PNGs of the same size
compare() {
  "$py" - "$1" "$2" <<'EOF'
import sys
import numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in sys.argv[1:3])
if a.shape != b.shape:
    sys.exit("sizes differ: %s vs %s" % (a.shape, b.shape))
print(int(np.abs(a - b).max()))
EOF
}

fail() {
  echo "FAIL $1" >&2
  failed=$((failed + 1))
}

for size in slim medium thick; do
  pkg=$mods/@upscalerjs/esrgan-$size
  [ -d "$pkg" ] || { echo "skip esrgan-$size: not in $mods"; continue; }
  for n in ${SCALES:-4}; do
    json=$pkg/models/x$n/model.json
    [ -f "$json" ] || { echo "skip esrgan-$size x$n: no $json"; continue; }
    name=esrgan-$size-x$n
    model=$out/$name.safetensors
    done=$((done + 1))
    log=$("$tm" convert "$json" -o "$model" --name "$name" 2>&1) || { fail "$name: convert: $log"; continue; }
    echo "$log" | sed "s/^/$name: /"
    echo "$log" | grep -q "^pixel range ${want_range[$size]} " ||
      { fail "$name: expected pixel range ${want_range[$size]}"; continue; }
    "$tm" info "$model" | grep -E '^(architecture|channels|scale|parameters):' | sed "s/^/$name: /"
    png=$out/$name-fixture.png
    msg=$("$tm" translate -q -m "$model" -o "$png" "$pkg/assets/fixture.png" 2>&1) ||
      { fail "$name: translate: $msg"; continue; }
    ref=$pkg/assets/samples/${n}x/result.png
    if [ ! -f "$ref" ] || ! "$py" -c 'import numpy, PIL' 2>/dev/null; then
      echo "$name: wrote $png (no published result or no numpy/PIL in $py to compare with)"
      continue
    fi
    d=$(compare "$png" "$ref" 2>&1) || { fail "$name: $d"; continue; }
    if [ "$d" -le 2 ]; then
      echo "ok   $name: fixture upscaled, max |diff| $d/255 against the published $n""x result"
    else
      fail "$name: max |diff| $d/255 against $ref"
    fi
  done
done

[ "$done" -gt 0 ] || { echo "no UpscalerJS ESRGAN model found under $mods/@upscalerjs" >&2; exit 1; }
echo "$((done - failed)) of $done models passed"
[ "$failed" -eq 0 ]
