#!/bin/sh
# test_tiled.sh: writes the random-weight models tests/test_tiled.c needs
# with tests/gen_models.py (one Python process; needs /usr/bin/python3 with
# torch) into a temporary folder, then runs test_tiled on them and on the
# shipped StarGAN demo.
# Usage: test_tiled.sh TEST_TILED SOURCE_ROOT
set -u
exe=$1; root=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if ! /usr/bin/python3 - "$root/tests" "$tmp" >"$tmp/gen.txt" 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import gen_models as g
d = sys.argv[2]
g.generate(d + "/resnet8.safetensors", arch="resnet", ngf=8, n_blocks=3, seed=11)
g.generate(d + "/resnet4.safetensors", arch="resnet", ngf=4, n_blocks=2, seed=12)
g.generate(d + "/resnet-zero-batch.safetensors", arch="resnet", ngf=8, n_blocks=2,
           padding="zero", norm="batch", norm_stats="image", seed=13)
for stats in ("image", "running"):
    g.generate(d + "/unet-batch-%s.safetensors" % stats, arch="unet", ngf=8,
               norm="batch", norm_stats=stats, seed=14)
g.generate(d + "/unet-instance.safetensors", arch="unet", ngf=8, norm="instance", seed=15)
PY
then
  cat "$tmp/gen.txt"
  echo "FAIL gen_models.py could not write the models (needs /usr/bin/python3 with torch)"
  echo "0 passed, 1 failed"
  exit 1
fi
exec "$exe" "$tmp/resnet8.safetensors" "$tmp/resnet4.safetensors" \
  "$tmp/resnet-zero-batch.safetensors" "$tmp/unet-batch-image.safetensors" \
  "$tmp/unet-batch-running.safetensors" "$tmp/unet-instance.safetensors" \
  "$root/models/demo-stargan-random.safetensors"
