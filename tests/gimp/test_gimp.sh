#!/usr/bin/env bash
# test_gimp.sh: the GIMP 2.10 plug-in (plugins/gimp) in real GIMP.
#
#   tests/gimp/test_gimp.sh path/to/plugin path/to/transmute [source-root]
#
# Installs the built plug-in into a throw-away GIMP folder (GIMP2_DIRECTORY)
# and runs gimp-console-2.10 in batch mode: each case loads a small PNG,
# calls plug-in-transmute non-interactively from Script-Fu and saves the top
# and bottom layers (and the new image of output-mode 2). Results must equal
# `transmute translate` on the same pixels (<= 1/255), with the GAN demo
# models and a 2x super-resolution model (tests/gen_sr_model.py: the layer
# scaled, a new image); bad inputs must fail with their message on GIMP's
# output and leave the image untouched (same pixels, no new layer). GIMP's
# batch mode exits 0 even when a command fails, so cases are judged by their
# files and messages, never by the exit code.
# Needs gimp-console-2.10 (missing is a failure, not a skip) and
# /usr/bin/python3 with numpy, PIL and torch (tests/gen_models.py).
# Ends with "N passed, M failed"; exits 1 when anything failed.
set -u

if [ $# -lt 2 ]; then
  echo "usage: $0 path/to/plugin path/to/transmute [source-root]" >&2
  exit 2
fi
PLUGIN=$(realpath "$1")
T=$(realpath "$2")
SRC=$(realpath "${3:-$(dirname "$0")/../..}")
PY=/usr/bin/python3
GIMP=gimp-console-2.10
W=$(mktemp -d "${TMPDIR:-/tmp}/transmute-gimp.XXXXXX")
trap 'rm -rf "$W"' EXIT

. "$SRC/tests/lib.sh"
png() { "$PY" "$SRC/tests/gimp/png_tool.py" "$@"; }

if ! command -v "$GIMP" >/dev/null; then
  bad "$GIMP not found (Debian package gimp; scripts/install-deps.sh installs it)"
  finish
fi

# ---- a GIMP folder of its own, with the plug-in ---------------------------
export GIMP2_DIRECTORY="$W/gimp"
mkdir -p "$GIMP2_DIRECTORY/plug-ins/transmute"
cp "$PLUGIN" "$GIMP2_DIRECTORY/plug-ins/transmute/transmute"
chmod +x "$GIMP2_DIRECTORY/plug-ins/transmute/transmute"
# GIMP complains on exit about writable data folders that do not exist.
for d in brushes dynamics fonts gradients mypaint-brushes palettes patterns tool-presets; do
  mkdir -p "$GIMP2_DIRECTORY/$d"
done
unset TRANSMUTE_DEVICE
# The Vulkan case runs under the validation layer; CPU contexts ignore it.
export TRANSMUTE_VALIDATE=1

# ---- inputs, models and `transmute translate` references ------------------
RESNET=$SRC/models/demo-resnet6-random.safetensors
STARGAN=$SRC/models/demo-stargan-random.safetensors
GRAY1=$W/gray1.safetensors
SEL=20,16,48,40
png make "$SRC/samples/chelsea_256.jpg" "$W/rgb.png" 96 80 RGB
png make "$SRC/samples/chelsea_256.jpg" "$W/rgba.png" 96 80 RGBA
png make "$SRC/samples/chelsea_256.jpg" "$W/gray.png" 96 80 L
png crop "$W/rgb.png" "$W/rgb-crop.png" "$SEL"
"$PY" "$SRC/tests/gen_models.py" --input_nc 1 --output_nc 1 --ngf 8 --n_blocks 2 -o "$GRAY1" \
  >/dev/null || bad "tests/gen_models.py could not write the 1-channel model"
# A tiny random 2x super-resolution model (arch=graph).
SR=$W/sr2x.safetensors
"$PY" "$SRC/tests/gen_sr_model.py" -o "$SR" >/dev/null || bad "tests/gen_sr_model.py could not write the 2x model"
head -c 4000 "$RESNET" >"$W/corrupt.safetensors"

ref() { # OUT MODEL INPUT [translate options]
  local out=$1 model=$2 in=$3
  shift 3
  "$T" translate -q -d cpu -m "$model" -o "$W/$out" "$W/$in" "$@" ||
    bad "transmute translate $in with $(basename "$model") failed"
}
ref ref-rgb.png "$RESNET" rgb.png
ref ref-rgba.png "$RESNET" rgba.png
ref ref-crop.png "$RESNET" rgb-crop.png
ref ref-gray1.png "$GRAY1" gray.png
ref ref-star.png "$STARGAN" rgb.png --domain Blond_Hair
ref ref-sr.png "$SR" rgb.png
ref ref-sr-rgba.png "$SR" rgba.png
ref ref-sr-crop.png "$SR" rgb-crop.png

# ---- the GIMP run ----------------------------------------------------------
# Each -b command is evaluated on its own (definitions do not carry over), so
# every case repeats the helper. (tm-case NAME IN MODEL BLEND OUTPUT DOMAINS DEVICE SELECTION RUN-MODE) loads
# IN, selects SELECTION (x y w h, or ()), calls the plug-in, saves the top and
# bottom layers as out-NAME-top.png / -bottom.png, and the image the call
# returned (output-mode 2) as out-NAME-new.png, and prints a line
# "transmute-test: end NAME ok|failed layers=N size=WxH new=WxH|none top=LAYER-NAME".
helper='
(define (tm-save img drw path)
  (file-png-save2 RUN-NONINTERACTIVE img drw path path 0 9 0 0 0 0 0 0 1))
(define (tm-size img)
  (string-append (number->string (car (gimp-image-width img))) "x"
                 (number->string (car (gimp-image-height img)))))
(define (tm-case name in model blend output domains device sel run-mode)
  (gimp-message (string-append "transmute-test: begin " name))
  (let* ((img (car (gimp-file-load RUN-NONINTERACTIVE in in)))
         (drw (car (gimp-image-get-active-drawable img))))
    (if (= (length sel) 4)
        (gimp-image-select-rectangle img CHANNEL-OP-REPLACE
                                     (car sel) (cadr sel) (caddr sel) (list-ref sel 3)))
    (let* ((ret (catch #f (plug-in-transmute run-mode img drw model blend output domains device)))
           (ok (if ret #t #f))
           (new (if (pair? ret) (car ret) -1))
           (layers (gimp-image-get-layers img))
           (n (car layers))
           (ids (cadr layers)))
      (tm-save img (vector-ref ids 0) (string-append "'"$W"'/out-" name "-top.png"))
      (tm-save img (vector-ref ids (- n 1)) (string-append "'"$W"'/out-" name "-bottom.png"))
      (if (> new 0)
          (tm-save new (vector-ref (cadr (gimp-image-get-layers new)) 0)
                   (string-append "'"$W"'/out-" name "-new.png")))
      (gimp-message (string-append "transmute-test: end " name (if ok " ok" " failed")
                                   " layers=" (number->string n)
                                   " size=" (tm-size img)
                                   " new=" (if (> new 0) (tm-size new) "none")
                                   " top=" (car (gimp-item-get-name (vector-ref ids 0)))))
      (if (> new 0) (gimp-image-delete new))
      (gimp-image-delete img))))'

batch=()
add() { # NAME IN MODEL BLEND OUTPUT DOMAINS DEVICE SELECTION [RUN-MODE]
  batch+=(-b "$helper (tm-case \"$1\" \"$W/$2\" \"$3\" $4 $5 \"$6\" \"$7\" '($8) ${9:-RUN-NONINTERACTIVE})")
}
add whole rgb.png "$RESNET" 1.0 0 "" "" ""
add selection rgb.png "$RESNET" 1.0 0 "" cpu "${SEL//,/ }"
add newlayer rgb.png "$RESNET" 1.0 1 "" "" ""
add newlayer-sel rgb.png "$RESNET" 1.0 1 "" "" "${SEL//,/ }"
add blend rgb.png "$RESNET" 0.25 0 "" "" ""
add alpha rgba.png "$RESNET" 1.0 0 "" "" ""
add gray1 gray.png "$GRAY1" 1.0 0 "" "" ""
add gray-rgbmodel gray.png "$RESNET" 1.0 0 "" "" ""
add stargan rgb.png "$STARGAN" 1.0 0 "Blond_Hair" "" ""
add vulkan rgb.png "$RESNET" 1.0 0 "" vulkan ""
add missing rgb.png "$W/missing.safetensors" 1.0 0 "" "" ""
add corrupt rgb.png "$W/corrupt.safetensors" 1.0 1 "" "" ""
add channels rgb.png "$GRAY1" 1.0 1 "" "" ""
add no-domains rgb.png "$STARGAN" 1.0 0 "" "" ""
add bad-domain rgb.png "$STARGAN" 1.0 0 "Purple_Hair" "" ""
add two-datasets rgb.png "$STARGAN" 1.0 0 "Blond_Hair,happy" "" ""
add extra-domains rgb.png "$RESNET" 1.0 0 "Blond_Hair" "" ""
add no-device rgb.png "$RESNET" 1.0 0 "" no-such-gpu ""
add bad-blend rgb.png "$RESNET" 1.5 0 "" "" ""
add last-values rgb.png "" 1.0 0 "" "" "" RUN-WITH-LAST-VALS
# New image, and a 2x super-resolution model (on the CPU: no Vulkan start-up).
add newimage rgb.png "$RESNET" 1.0 2 "" cpu ""
add sr-scale rgb.png "$SR" 1.0 0 "" cpu ""
add sr-scale-alpha rgba.png "$SR" 1.0 0 "" cpu ""
add sr-newimage rgb.png "$SR" 1.0 2 "" cpu "${SEL//,/ }"
add sr-selection rgb.png "$SR" 1.0 0 "" cpu "${SEL//,/ }"
add sr-newlayer rgb.png "$SR" 1.0 1 "" cpu ""
add sr-blend rgb.png "$SR" 0.5 0 "" cpu ""
add bad-mode rgb.png "$RESNET" 1.0 3 "" cpu ""

gimp_run() { # LOG [env assignments...]: the cases in $batch, one GIMP process
  local log=$1
  shift
  env "$@" timeout 300 "$GIMP" -i -d -f "${batch[@]}" -b '(gimp-quit 0)' \
    >"$log" 2>&1 </dev/null
}
gimp_run "$W/gimp.log"
n_main=$((${#batch[@]} / 2))
# No Vulkan driver at all, and Vulkan asked for.
batch=()
add no-vulkan rgb.png "$RESNET" 1.0 0 "" vulkan ""
gimp_run "$W/gimp-novk.log" VK_ICD_FILENAMES=/nonexistent VK_DRIVER_FILES=/nonexistent

# ---- checks ----------------------------------------------------------------
n_ok=$(grep -c 'batch command executed successfully' "$W/gimp.log")
if [ "$n_ok" -eq "$n_main" ]; then
  ok "GIMP ran the $n_main cases: every batch command executed successfully"
else
  bad "GIMP: $n_ok of $n_main batch commands succeeded" "$(tail -n 40 "$W/gimp.log")"
fi

# The lines a case printed, from its begin marker to its end marker.
segment() { # NAME [LOG]
  awk -v b="transmute-test: begin $1" -v e="transmute-test: end $1 " '
    index($0, b) && substr($0, index($0, b) + length(b)) == "" { on = 1; next }
    on && index($0, e) { print; exit }
    on { print }' "${2:-$W/gimp.log}"
}

# expect_ok NAME DESCRIPTION [LAYERS]: the call succeeded and left LAYERS layers.
expect_ok() {
  local s
  s=$(segment "$1")
  if printf '%s\n' "$s" | grep -q "transmute-test: end $1 ok layers=${3:-1} "; then
    return 0
  fi
  bad "$1: $2: the call failed or left the wrong layers" "$s"
  return 1
}

# within NAME WHAT MAX VALUE: VALUE (a max difference) is at most MAX.
within() {
  if [ -n "$4" ] && [ "$4" -le "$3" ]; then
    ok "$1: $2 (max difference $4)"
  else
    bad "$1: $2: max difference ${4:-?} > $3"
  fi
}

if expect_ok whole "whole image"; then
  within whole "equals transmute translate" 1 "$(png diff "$W/out-whole-top.png" "$W/ref-rgb.png")"
fi
if expect_ok selection "rectangular selection, device cpu"; then
  within selection "outside the selection unchanged" 0 \
    "$(png outside "$W/out-selection-top.png" "$W/rgb.png" "$SEL")"
  within selection "inside equals transmute translate of the crop" 1 \
    "$(png diff "$W/out-selection-top.png" "$W/ref-crop.png" "$SEL")"
fi
# new_layer NAME: the new layer's name, and the original layer unchanged.
new_layer() {
  if segment "$1" | grep -q "top=Transmute: demo-resnet6-random$"; then
    ok "$1: the new layer is named after the model"
  else
    bad "$1: new layer name" "$(segment "$1" | tail -n 1)"
  fi
  within "$1" "original layer unchanged" 0 "$(png diff "$W/out-$1-bottom.png" "$W/rgb.png")"
}
if expect_ok newlayer "new-layer mode" 2; then
  new_layer newlayer
  within newlayer "new layer equals transmute translate" 1 \
    "$(png diff "$W/out-newlayer-top.png" "$W/ref-rgb.png")"
fi
if expect_ok newlayer-sel "new-layer mode with a selection" 2; then
  new_layer newlayer-sel
  within newlayer-sel "new layer outside the selection is the original" 0 \
    "$(png outside "$W/out-newlayer-sel-top.png" "$W/rgb.png" "$SEL")"
  within newlayer-sel "new layer inside equals transmute translate of the crop" 1 \
    "$(png diff "$W/out-newlayer-sel-top.png" "$W/ref-crop.png" "$SEL")"
fi
if expect_ok blend "blend 0.25"; then
  within blend "a quarter of the translation over the original" 1 \
    "$(png blend "$W/out-blend-top.png" "$W/rgb.png" "$W/ref-rgb.png" 0.25)"
fi
if expect_ok alpha "RGBA layer"; then
  within alpha "colour equals transmute translate" 1 "$(png diff "$W/out-alpha-top.png" "$W/ref-rgba.png")"
  within alpha "alpha untouched" 0 "$(png alpha "$W/out-alpha-top.png" "$W/rgba.png")"
fi
if expect_ok gray1 "1-channel model on a grayscale layer"; then
  within gray1 "equals transmute translate" 1 "$(png diff "$W/out-gray1-top.png" "$W/ref-gray1.png")"
fi
if expect_ok gray-rgbmodel "RGB model on a grayscale layer"; then
  d=$(png diff "$W/out-gray-rgbmodel-top.png" "$W/gray.png")
  if [ -n "$d" ] && [ "$d" -gt 0 ]; then
    ok "gray-rgbmodel: the layer stays grayscale and changed (max difference $d)"
  else
    bad "gray-rgbmodel: the layer is not a changed grayscale layer (${d:-different shape})"
  fi
fi
if expect_ok stargan "StarGAN, domain Blond_Hair"; then
  within stargan "equals transmute translate --domain Blond_Hair" 1 \
    "$(png diff "$W/out-stargan-top.png" "$W/ref-star.png")"
fi
if expect_ok vulkan "device vulkan (lavapipe), validation on"; then
  within vulkan "equals the CPU's transmute translate" 1 \
    "$(png diff "$W/out-vulkan-top.png" "$W/ref-rgb.png")"
  if segment vulkan | grep -qi 'vulkan \(error\|warning\)\|validation'; then
    bad "vulkan: validation messages" "$(segment vulkan | grep -i 'vulkan\|validation')"
  else
    ok "vulkan: no validation messages"
  fi
fi

# expect_error NAME MESSAGE [LOG]: the call failed with MESSAGE on GIMP's
# output, and the image is as it was: one layer, the input's pixels.
expect_error() {
  local s d
  s=$(segment "$1" "${3:-$W/gimp.log}")
  d=$(png diff "$W/out-$1-top.png" "$W/rgb.png" 2>&1)
  if ! printf '%s\n' "$s" | grep -q "transmute-test: end $1 failed layers=1 "; then
    bad "$1: the call should fail and leave one layer" "$s"
  elif ! printf '%s\n' "$s" | grep -qF -- "$2"; then
    bad "$1: the message should contain '$2'" "$s"
  elif [ "$d" != 0 ]; then
    bad "$1: the image changed (max difference $d)"
  else
    ok "$1: fails with: $(printf '%s\n' "$s" | grep -F -- "$2" | head -n 1 | sed 's/^Error: //')"
  fi
}
expect_error missing "cannot open model '$W/missing.safetensors': No such file or directory"
expect_error corrupt "model '$W/corrupt.safetensors': tensor 'model.1.weight': data ends at byte"
expect_error channels "model 'resnet_2blocks' takes 1-channel (grayscale) images, the layer is RGB"
expect_error no-domains "model 'demo-stargan-random' needs target domains, one or more of: Black_Hair, Blond_Hair"
expect_error bad-domain "unknown domain 'Purple_Hair'"
expect_error two-datasets "domains from two datasets (CelebA and RaFD) cannot be combined"
expect_error extra-domains "model 'demo-resnet6-random' has no domains to choose"
expect_error no-device "no Vulkan device matches 'no-such-gpu'"
expect_error bad-blend "blend must be 0..1, not 1.5"
expect_error last-values "no last values yet"

# ---- a new image, and super-resolution (2x) ----------------------------------
# expect_new NAME SIZE: the call left the source image as it was (one layer,
# its size, its pixels) and returned a new image of SIZE.
expect_new() {
  local s
  s=$(segment "$1")
  if ! printf '%s\n' "$s" | grep -q "transmute-test: end $1 ok layers=1 size=96x80 new=$2 "; then
    bad "$1: should leave the image as it was and return a $2 image" "$s"
    return 1
  fi
  within "$1" "source image unchanged" 0 "$(png diff "$W/out-$1-top.png" "$W/rgb.png")"
}
if expect_new newimage 96x80; then
  within newimage "new image equals transmute translate" 1 "$(png diff "$W/out-newimage-new.png" "$W/ref-rgb.png")"
fi
if expect_ok sr-scale "2x model scales the layer" &&
   segment sr-scale | grep -q "transmute-test: end sr-scale ok layers=1 size=192x160 new=none "; then
  ok "sr-scale: the layer and the canvas are 192x160, one layer"
  within sr-scale "equals transmute translate (2x)" 1 "$(png diff "$W/out-sr-scale-top.png" "$W/ref-sr.png")"
else
  bad "sr-scale: image size" "$(segment sr-scale | tail -n 1)"
fi
if expect_ok sr-scale-alpha "2x model scales an RGBA layer"; then
  within sr-scale-alpha "colour and alpha equal transmute translate (2x)" 1 \
    "$(png diff "$W/out-sr-scale-alpha-top.png" "$W/ref-sr-rgba.png")"
fi
if expect_new sr-newimage 96x80; then
  within sr-newimage "new image equals transmute translate of the crop (2x)" 1 \
    "$(png diff "$W/out-sr-newimage-new.png" "$W/ref-sr-crop.png")"
fi
expect_error sr-selection "model 'tiny-sr2x-random' is a 2x super-resolution model: it scales the whole layer and cannot keep to a selection"
expect_error sr-newlayer "model 'tiny-sr2x-random' is a 2x super-resolution model: its result does not fit a new layer"
expect_error sr-blend "model 'tiny-sr2x-random' is a 2x super-resolution model: blend must be 1"
expect_error bad-mode "output-mode must be 0 (replace), 1 (new layer) or 2 (new image), not 3"
expect_error no-vulkan "device 'vulkan' asked for, but there is no Vulkan device" "$W/gimp-novk.log"

if [ "$fail" -gt 0 ]; then
  echo "---- GIMP's output"
  cat "$W/gimp.log" "$W/gimp-novk.log"
fi
finish
