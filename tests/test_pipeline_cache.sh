#!/bin/sh
# test_pipeline_cache.sh: the Vulkan pipeline cache under $XDG_CACHE_HOME.
# A run writes it; a corrupt or foreign file is ignored (the run succeeds and
# the file is rewritten with a valid header); TRANSMUTE_NO_PIPELINE_CACHE=1
# leaves no file. Runs on the Vulkan device with the validation layer.
# Usage: test_pipeline_cache.sh TRANSMUTE SOURCE_ROOT
set -u
exe=$1; root=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
model=$root/models/demo-resnet6-random.safetensors
img=$root/samples/chelsea_256.jpg
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; fi; }
run() {
  XDG_CACHE_HOME=$tmp/cache TRANSMUTE_VALIDATE=1 "$exe" translate -q -v --device vulkan \
    -m "$model" -o "$tmp/out.png" "$img" 2>"$tmp/log"
}
# The file starts with VkPipelineCacheHeaderVersionOne: size 32 (or more), version 1.
header_ok() { f=$(ls "$tmp"/cache/transmute/pipelines-*.bin 2>/dev/null | head -n 1)
  [ -n "$f" ] && [ "$(od -An -tu4 -N8 "$f" | awk '{print ($1 >= 32 && $2 == 1)}')" = 1 ]; }

run; rc=$?
check "first run succeeds" '[ $rc -eq 0 ] && [ -s "$tmp/out.png" ]'
check "cache file written with a valid header" header_ok
cp "$tmp/out.png" "$tmp/ref.png"

f=$(ls "$tmp"/cache/transmute/pipelines-*.bin | head -n 1)
head -c 4096 /dev/urandom > "$f"
run; rc=$?
check "corrupt cache: run succeeds" '[ $rc -eq 0 ] && cmp -s "$tmp/out.png" "$tmp/ref.png"'
check "corrupt cache: ignored with a message" 'grep -q "ignoring pipeline cache" "$tmp/log"'
check "corrupt cache: rewritten" header_ok

# A cache from another device: valid header layout, other vendor/device id.
printf '\040\000\000\000\001\000\000\000\357\276\000\000\255\336\000\000' > "$f"
head -c 16 /dev/zero >> "$f"
run; rc=$?
check "foreign cache: run succeeds" '[ $rc -eq 0 ] && cmp -s "$tmp/out.png" "$tmp/ref.png"'
check "foreign cache: ignored" 'grep -q "ignoring pipeline cache" "$tmp/log"'

rm -rf "$tmp/cache"
XDG_CACHE_HOME=$tmp/cache TRANSMUTE_NO_PIPELINE_CACHE=1 "$exe" translate -q --device vulkan \
  -m "$model" -o "$tmp/out.png" "$img"; rc=$?
check "TRANSMUTE_NO_PIPELINE_CACHE=1 writes nothing" '[ $rc -eq 0 ] && [ -z "$(ls -A "$tmp/cache/transmute" 2>/dev/null)" ]'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
