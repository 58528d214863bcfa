#!/usr/bin/env bash
# test_frei0r.sh: the frei0r plug-in (filters/frei0r) in stock hosts.
#
#   tests/frei0r/test_frei0r.sh path/to/transmute.so path/to/transmute [source-root]
#
# Copies the built plug-in into a throw-away folder that FREI0R_PATH names and
# runs it through Debian's ffmpeg (-vf frei0r=transmute:...), GStreamer's
# frei0r wrapper (frei0r-filter-transmute) and MLT's melt (frei0r.transmute),
# on short lossless clips (PNG frames in Matroska, with a PCM audio track)
# made by ffmpeg. Every output frame is compared in RGB with `transmute
# translate -d cpu` on the same input frames (at most 2/255 apart). Also:
# the plug-in's frei0r interface through ctypes (tests/frei0r/probe.py),
# construct loading nothing, the pad-and-crop recipe for widths that are not
# a multiple of 16, StarGAN domains, blend, a missing model (frames
# unchanged, one message, exit 0), and smoothing of the norm statistics
# with its scene cuts (a cut restarts them, a fast pan does not).
# Needs ffmpeg, gst-launch-1.0 with gstreamer1.0-plugins-bad (frei0r) and
# -good (matroska, png), melt, and /usr/bin/python3 with numpy and PIL;
# missing is a failure, not a skip.
# Ends with "N passed, M failed"; exits 1 when anything failed.
set -u

if [ $# -lt 2 ]; then
  echo "usage: $0 path/to/transmute.so path/to/transmute [source-root]" >&2
  exit 2
fi
PLUGIN=$(realpath "$1")
T=$(realpath "$2")
SRC=$(realpath "${3:-$(dirname "$0")/../..}")
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/transmute-frei0r.XXXXXX")
trap 'rm -rf "$W"' EXIT

. "$SRC/tests/lib.sh"
frames() { "$PY" "$SRC/tests/frei0r/frames.py" "$@"; }

for tool in ffmpeg ffprobe gst-launch-1.0 gst-inspect-1.0 melt; do
  command -v "$tool" >/dev/null || bad "$tool not found (scripts/install-deps.sh installs it)"
done
[ "$fail" -eq 0 ] || finish

# ---- the plug-in where the hosts look for it ------------------------------
mkdir -p "$W/frei0r"
cp "$PLUGIN" "$W/frei0r/transmute.so"
export FREI0R_PATH=$W/frei0r
# GStreamer's registry of its own, so that the frei0r wrapper scans this
# FREI0R_PATH and nothing cached elsewhere.
export GST_REGISTRY=$W/gst-registry.bin
unset TRANSMUTE_DEVICE
RESNET=$SRC/models/demo-resnet6-random.safetensors
STARGAN=$SRC/models/demo-stargan-random.safetensors
MISSING=$W/no-such-model.safetensors

# ---- the frei0r interface, and construct loading nothing -------------------
out=$("$PY" "$SRC/tests/frei0r/probe.py" info "$W/frei0r/transmute.so" 2>&1) &&
  ok "plugin and parameter descriptions" || bad "plugin and parameter descriptions" "$out"
# A host that only constructs the filter (GStreamer's registry scan does)
# must not see the missing model or device: nothing is loaded yet.
out=$("$PY" "$SRC/tests/frei0r/probe.py" construct "$W/frei0r/transmute.so" "$MISSING" no-such-gpu \
      2>"$W/probe.err")
[ $? -eq 0 ] && [ ! -s "$W/probe.err" ] && ok "construct and parameters load nothing" ||
  bad "construct and parameters load nothing" "$out$(cat "$W/probe.err")"
# The same missing model and device once frames come: one line each.
probe_update() { # NAME MODEL DEVICE EXPECTED-MESSAGE
  local out
  out=$("$PY" "$SRC/tests/frei0r/probe.py" update "$W/frei0r/transmute.so" "$2" "$3" \
        2>"$W/probe.err")
  if [ $? -eq 0 ] && [ "$(wc -l <"$W/probe.err")" -eq 1 ] && grep -qF "$4" "$W/probe.err"; then
    ok "$1: frames pass through, one message"
  else
    bad "$1: frames pass through, one message" "$out$(cat "$W/probe.err")"
  fi
}
probe_update "missing model" "$MISSING" cpu \
  "transmute (frei0r): cannot load model '$MISSING': No such file or directory"
probe_update "missing device" "$RESNET" no-such-gpu \
  "transmute (frei0r): no Vulkan device matches 'no-such-gpu'"
# A super-resolution model would change the frame size, which frei0r cannot.
SR=$W/sr2x.safetensors
"$PY" "$SRC/tests/gen_sr_model.py" -o "$SR" || bad "tests/gen_sr_model.py could not write the 2x model"
SR_MSG="transmute (frei0r): model '$SR' is a 2x super-resolution model; frei0r cannot change the frame size"
probe_update "2x super-resolution model" "$SR" cpu "$SR_MSG"

out=$(gst-inspect-1.0 frei0r-filter-transmute 2>&1)
if [ $? -eq 0 ] && ! grep -q "transmute (frei0r)" <<<"$out" &&
   [ "$(grep -cE '^  (model|blend|domains|device|smoothing|scene-cut) +:' <<<"$out")" -eq 6 ]; then
  ok "gst-inspect-1.0 frei0r-filter-transmute: six properties, no message"
else
  bad "gst-inspect-1.0 frei0r-filter-transmute: six properties, no message" "$out"
fi

# ---- clips and `transmute translate` references ---------------------------
clip() { # NAME WIDTHxHEIGHT: 6 frames of testsrc2 and a sine, and their frames
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=$2:rate=25" \
    -f lavfi -i sine=frequency=440:sample_rate=48000:duration=0.24 \
    -frames:v 6 -c:v png -pix_fmt rgb24 -c:a pcm_s16le "$W/$1.mkv" &&
  mkdir -p "$W/$1-in" && ffmpeg -nostdin -v error -i "$W/$1.mkv" -pix_fmt rgb24 "$W/$1-in/%03d.png" ||
    bad "ffmpeg could not make the $2 clip $1"
}
mux() { # NAME: the frames in NAME/ as a clip NAME.mkv, with a sine track
  ffmpeg -nostdin -v error -y -framerate 25 -i "$W/$1/%03d.png" \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -shortest \
    -c:v png -c:a pcm_s16le "$W/$1.mkv" || bad "ffmpeg could not make the clip $1"
}
ref() { # OUT-DIR IN-DIR MODEL [translate options]
  local out=$1 in=$2 model=$3
  shift 3
  mkdir -p "$W/$out"
  "$T" translate -q -d cpu -m "$model" --outdir "$W/$out" "$W/$in"/*.png "$@" ||
    bad "transmute translate $in with $(basename "$model") failed"
}
clip c320 320x182
clip c322 322x182
ref ref320 c320-in "$RESNET"
ref ref320-star c320-in "$STARGAN" --domain Blond_Hair
ref ref320-star2 c320-in "$STARGAN" --domain Blond_Hair,Young
frames blend "$W/c320-in" "$W/ref320" "$W/ref320-blend" 0.5
# The recipe's padding is part of what the model sees: its reference is the
# padded frames translated, cropped by the comparison.
mkdir -p "$W/c322-padded"
ffmpeg -nostdin -v error -i "$W/c322.mkv" -vf "pad=ceil(iw/16)*16:ih" -pix_fmt rgb24 "$W/c322-padded/%03d.png"
ref ref322 c322-padded "$RESNET"

# compare NAME REF-DIR OUT-DIR TOLERANCE [diff options]
compare() {
  local d
  d=$(frames diff "$W/$2" "$W/$3" "${@:5}" 2>&1)
  if [[ "$d" =~ ^[0-9]+$ ]] && [ "$d" -le "$4" ]; then
    ok "$1 (max |diff| $d/255)"
  else
    bad "$1: max |diff| ${d} > $4/255" "$(cat "$W/$3.log" 2>/dev/null)"
  fi
}

# ---- stock ffmpeg -----------------------------------------------------------
# ffm NAME CLIP FILTERS: CLIP.mkv through -vf FILTERS into NAME.mkv with the
# audio copied, then its frames into NAME/; ffmpeg's output in NAME.log.
ffm() {
  mkdir -p "$W/$1"
  ffmpeg -nostdin -v error -y -i "$W/$2.mkv" -vf "$3" -c:v png -c:a copy "$W/$1.mkv" \
    2>"$W/$1.log" &&
    ffmpeg -nostdin -v error -i "$W/$1.mkv" -pix_fmt rgb24 "$W/$1/%03d.png" 2>>"$W/$1.log"
}
ffm ff320 c320 "frei0r=transmute:$RESNET|1.0||cpu" || bad "ffmpeg frei0r 320x182" "$(cat "$W/ff320.log")"
compare "ffmpeg, RGBA route at 320x182" ref320 ff320 2
[ "$(ffprobe -v error -select_streams a -show_entries stream=codec_name -of csv=p=0 "$W/ff320.mkv")" = pcm_s16le ] &&
  ok "ffmpeg keeps the audio track (-c:a copy)" || bad "ffmpeg keeps the audio track (-c:a copy)"

ffm ff322 c322 "pad=ceil(iw/16)*16:ih,frei0r=transmute:$RESNET|1.0||cpu,crop=322:ih:0:0" ||
  bad "ffmpeg pad-and-crop recipe at 322x182" "$(cat "$W/ff322.log")"
compare "ffmpeg, pad-and-crop recipe at 322x182 (vs the padded frames translated)" ref322 ff322 2 --width 322

ffm ff-star c320 "frei0r=transmute:$STARGAN|1.0|Blond_Hair|cpu" || bad "ffmpeg StarGAN" "$(cat "$W/ff-star.log")"
compare "ffmpeg, StarGAN, domains Blond_Hair" ref320-star ff-star 2
# A comma inside a filter argument is escaped for FFmpeg's filtergraph parser.
ffm ff-star2 c320 "frei0r=transmute:$STARGAN|1.0|Blond_Hair\\,Young|cpu" ||
  bad "ffmpeg StarGAN two domains" "$(cat "$W/ff-star2.log")"
compare "ffmpeg, StarGAN, domains Blond_Hair\\,Young" ref320-star2 ff-star2 2

ffm ff-blend c320 "frei0r=transmute:$RESNET|0.5||cpu" || bad "ffmpeg blend" "$(cat "$W/ff-blend.log")"
compare "ffmpeg, blend 0.5" ref320-blend ff-blend 2

# frei0r has no error channel: ffmpeg runs to the end and exits 0, the
# frames pass through, and the plug-in says why once (not once per frame).
ffm ff-missing c320 "frei0r=transmute:$MISSING|1.0||cpu"
rc=$?
n=$(grep -c "transmute (frei0r)" "$W/ff-missing.log")
if [ $rc -eq 0 ] && [ "$n" -eq 1 ] &&
   grep -qF "transmute (frei0r): cannot load model '$MISSING': No such file or directory" "$W/ff-missing.log"; then
  ok "ffmpeg, missing model: exit 0, one message for 6 frames"
else
  bad "ffmpeg, missing model: exit 0, one message for 6 frames (exit $rc, $n messages)" \
    "$(cat "$W/ff-missing.log")"
fi
compare "ffmpeg, missing model: frames unchanged" c320-in ff-missing 0
ffm ff-sr c320 "frei0r=transmute:$SR|1.0||cpu"
rc=$?
n=$(grep -c "transmute (frei0r)" "$W/ff-sr.log")
if [ $rc -eq 0 ] && [ "$n" -eq 1 ] && grep -qF "$SR_MSG" "$W/ff-sr.log"; then
  ok "ffmpeg, 2x super-resolution model: exit 0, one message for 6 frames"
else
  bad "ffmpeg, 2x super-resolution model: exit 0, one message for 6 frames (exit $rc, $n messages)" \
    "$(cat "$W/ff-sr.log")"
fi
compare "ffmpeg, 2x super-resolution model: frames unchanged" c320-in ff-sr 0

# ---- GStreamer's frei0r wrapper ---------------------------------------------
# gst NAME CLIP PROPERTIES...: CLIP.mkv through frei0r-filter-transmute into
# NAME/ (the audio to a fakesink: every clip has a track, as a pending link
# to a missing one would stall the pipeline); gst-launch's output in NAME.log.
gst() {
  local name=$1 clip=$2
  shift 2
  mkdir -p "$W/$name"
  gst-launch-1.0 -q filesrc location="$W/$clip.mkv" ! decodebin name=d \
    d. ! video/x-raw ! queue ! videoconvert ! frei0r-filter-transmute "$@" ! videoconvert ! \
    video/x-raw,format=RGB ! pngenc ! multifilesink location="$W/$name/%03d.png" \
    d. ! audio/x-raw ! queue ! fakesink >"$W/$name.log" 2>&1
}
gst gst320 c320 model="$RESNET" device=cpu || bad "gst-launch-1.0 frei0r-filter-transmute" "$(cat "$W/gst320.log")"
compare "GStreamer, 320x182" ref320 gst320 2
gst gst322 c322 model="$RESNET" device=cpu || bad "gst-launch-1.0 at 322x182" "$(cat "$W/gst322.log")"
ref ref322-direct c322-in "$RESNET"
compare "GStreamer, 322x182 as it is (GStreamer's RGBA rows are not padded)" ref322-direct gst322 2
gst gst-star c320 model="$STARGAN" domains=Blond_Hair,Young blend=0.5 device=cpu ||
  bad "gst-launch-1.0 StarGAN" "$(cat "$W/gst-star.log")"
frames blend "$W/c320-in" "$W/ref320-star2" "$W/ref320-star2-blend" 0.5
compare "GStreamer, StarGAN Blond_Hair,Young, blend 0.5" ref320-star2-blend gst-star 2

# ---- MLT, the engine of Kdenlive and Shotcut ---------------------------------
# Parameters by name; MLT's frames have no row padding, so any width works.
mkdir -p "$W/mlt322"
melt -silent "$W/c322.mkv" -filter frei0r.transmute model="$STARGAN" domains=Blond_Hair,Young \
  blend=0.5 device=cpu -consumer avformat:"$W/mlt322.mkv" vcodec=png acodec=pcm_s16le \
  >"$W/mlt322.log" 2>&1 &&
  ffmpeg -nostdin -v error -i "$W/mlt322.mkv" -pix_fmt rgb24 "$W/mlt322/%03d.png" 2>>"$W/mlt322.log" ||
  bad "melt frei0r.transmute" "$(cat "$W/mlt322.log")"
ref ref322-star2 c322-in "$STARGAN" --domain Blond_Hair,Young
frames blend "$W/c322-in" "$W/ref322-star2" "$W/ref322-star2-blend" 0.5
compare "MLT (melt), 322x182, StarGAN Blond_Hair,Young, blend 0.5" ref322-star2-blend mlt322 2

# ---- smoothing of the norm statistics ----------------------------------------
# A still image with a patch of fresh noise in every frame: with each frame's
# own statistics the noise moves the whole picture; carried statistics keep
# the still part still. Width 192: a multiple of 16 for ffmpeg.
frames still "$SRC/samples/chelsea_256.jpg" "$W/still" 12 192 128
mux still
ref ref-still still "$RESNET"
ffm still-default still "frei0r=transmute:$RESNET|1.0||cpu"
ffm still-frame still "frei0r=transmute:$RESNET|1.0||cpu|0"
ffm still-smooth still "frei0r=transmute:$RESNET|1.0||cpu|0.9" ||
  bad "ffmpeg smoothing 0.9" "$(cat "$W/still-smooth.log")"
compare "smoothing 0 is frame mode: the same as translating each frame" ref-still still-frame 2
compare "smoothing 0 equals the default exactly" still-default still-frame 0
f_frame=$(frames flicker "$W/still-frame")
f_smooth=$(frames flicker "$W/still-smooth")
if "$PY" -c "import sys; sys.exit(not 0 < $f_smooth < 0.5 * $f_frame)" 2>/dev/null; then
  ok "smoothing 0.9 steadies the still part: mean change $f_smooth/255 per frame, $f_frame without"
else
  bad "smoothing 0.9 steadies the still part: mean change $f_smooth/255 per frame, $f_frame without"
fi
compare "smoothing 0.9: the first frame has its own statistics" ref-still still-smooth 2 --frame 1

# A scene cut at frame 5 restarts the statistics: that frame is translated
# with its own, as in frame mode; after it they are carried again. With the
# detection off (scene_cut 1) frame 5 still leans on the old scene's.
frames still "$SRC/samples/chelsea_256.jpg" "$W/cut" 8 192 128 --cut 5
mux cut
ref ref-cut cut "$RESNET"
ffm cut-smooth cut "frei0r=transmute:$RESNET|1.0||cpu|0.9"
ffm cut-off cut "frei0r=transmute:$RESNET|1.0||cpu|0.9|1"
compare "scene cut: frame 5 has its own statistics" ref-cut cut-smooth 2 --frame 5
differs() { # NAME REF OUT FRAME
  local d
  d=$(frames diff "$W/$2" "$W/$3" --frame "$4" 2>&1)
  [[ "$d" =~ ^[0-9]+$ ]] && [ "$d" -gt 2 ] && ok "$1 (max |diff| $d/255)" || bad "$1: max |diff| $d"
}
differs "scene cut: frame 6 carries statistics again" ref-cut cut-smooth 6
differs "scene_cut 1: frame 5 keeps the old scene's statistics" ref-cut cut-off 5
# A fast pan over a detailed picture (16 pixels a frame, 8% of the width)
# changes every frame by more than the threshold (0.07 to 0.09 of the
# default 0.05), but steadily: no frame after the first restarts the
# statistics.
ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=320x128 -frames:v 1 "$W/pan-source.png"
frames pan "$W/pan-source.png" "$W/pan" 8 192 128 16
mux pan
ref ref-pan pan "$RESNET"
ffm pan-smooth pan "frei0r=transmute:$RESNET|1.0||cpu|0.9"
for k in 2 3 4 5 6 7 8; do
  differs "pan: frame $k carries the statistics" ref-pan pan-smooth $k
done

gst gst-smooth still model="$RESNET" device=cpu smoothing=0.9 ||
  bad "gst-launch-1.0 smoothing" "$(cat "$W/gst-smooth.log")"
compare "GStreamer, smoothing 0.9: the same frames as ffmpeg" still-smooth gst-smooth 0

finish
