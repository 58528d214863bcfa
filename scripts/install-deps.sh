#!/usr/bin/env bash
# Installs the Debian 12 packages Transmute builds and tests with.
# Idempotent and non-interactive; uses sudo when not run as root.
set -euo pipefail

pkgs=(
  build-essential meson ninja-build pkg-config
  libvulkan-dev glslang-tools libpng-dev libjpeg-dev libjson-c-dev
  mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
  libzip-dev clang libclang-rt-14-dev
  python3 python3-numpy python3-torch
  gimp libgimp2.0-dev python3-pil
  frei0r-plugins-dev ffmpeg melt gstreamer1.0-tools   # filters/frei0r and its test
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  dpkg-dev nasm libx264-dev zlib1g-dev   # filters/ffmpeg/build-ffmpeg.sh
)
# tests/test_sr_tfjs.py runs TF.js in Node (packages from the npm registry).
# A Node installed another way (e.g. NodeSource, which bundles npm) is kept.
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
