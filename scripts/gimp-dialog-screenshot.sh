#!/usr/bin/env bash
# Renders the GIMP plug-in's dialog under Xvfb and saves a screenshot of it.
#
#   scripts/gimp-dialog-screenshot.sh [BUILD_DIR [OUT.png]]
#
# BUILD_DIR (default build) holds the built plug-in; OUT defaults to
# docs/gimp-dialog.png. GIMP runs with a throw-away config folder and opens
# the dialog on samples/chelsea_256.jpg with the StarGAN demo model and the
# domain Blond_Hair preset; the window is captured once its preview is drawn.
# Needs gimp, xvfb, x11-utils (xwininfo) and imagemagick (import).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-docs/gimp-dialog.png}
plugin=$build/plugins/gimp/transmute
title="Transmute (GAN translation, super-resolution)"

for tool in gimp-2.10 Xvfb xwininfo import; do
  command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install gimp xvfb x11-utils imagemagick)" >&2; exit 1; }
done
[ -x "$plugin" ] || { echo "no plug-in at $plugin: build first (ninja -C $build)" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/transmute-shot.XXXXXX")
xvfb_pid=""
gimp_pid=""
cleanup() {
  [ -z "$gimp_pid" ] || kill "$gimp_pid" 2>/dev/null || true
  [ -z "$xvfb_pid" ] || kill "$xvfb_pid" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

export GIMP2_DIRECTORY=$W/gimp
mkdir -p "$GIMP2_DIRECTORY/plug-ins/transmute" "$W/data/transmute/models"
cp "$plugin" "$GIMP2_DIRECTORY/plug-ins/transmute/transmute"
chmod +x "$GIMP2_DIRECTORY/plug-ins/transmute/transmute"
# The dialog lists the models of the user's folder: the two shipped ones.
cp models/*.safetensors "$W/data/transmute/models/"
export XDG_DATA_HOME=$W/data

# A free display number.
display=99
while [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ]; do display=$((display + 1)); done
Xvfb ":$display" -screen 0 1280x900x24 -nolisten tcp >"$W/xvfb.log" 2>&1 &
xvfb_pid=$!
export DISPLAY=:$display
sleep 2

image=$PWD/samples/chelsea_256.jpg
model=$W/data/transmute/models/demo-stargan-random.safetensors
gimp-2.10 -d -f -s -b "(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE \"$image\" \"$image\")))
                              (drw (car (gimp-image-get-active-drawable img))))
                         (plug-in-transmute RUN-INTERACTIVE img drw \"$model\" 0.8 0 \"Blond_Hair\" \"cpu\"))" \
  >"$W/gimp.log" 2>&1 &
gimp_pid=$!

for _ in $(seq 120); do
  xwininfo -name "$title" >/dev/null 2>&1 && break
  sleep 1
done
xwininfo -name "$title" >/dev/null 2>&1 || { echo "the dialog did not appear; GIMP said:" >&2; cat "$W/gimp.log" >&2; exit 1; }
sleep 5 # the preview is drawn 200 ms after the dialog settles, then translated
import -window "$title" "$out"
echo "wrote $out"
