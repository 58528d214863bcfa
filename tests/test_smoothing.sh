#!/bin/sh
# test_smoothing.sh: writes the random-weight models, the clip and PyTorch's
# smoothed outputs that tests/test_smoothing.c compares with
# (tests/smoothing_ref.py; needs /usr/bin/python3 with torch) into a
# temporary folder, then runs test_smoothing on them and the shipped StarGAN
# demo.
# Usage: test_smoothing.sh TEST_SMOOTHING SOURCE_ROOT
set -u
exe=$1; root=$2
stargan=$root/models/demo-stargan-random.safetensors
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if ! /usr/bin/python3 "$root/tests/smoothing_ref.py" "$tmp" "$stargan" >"$tmp/ref.txt" 2>&1; then
  cat "$tmp/ref.txt"
  echo "FAIL smoothing_ref.py could not write the references (needs /usr/bin/python3 with torch)"
  echo "0 passed, 1 failed"
  exit 1
fi
"$exe" "$tmp" "$stargan"
