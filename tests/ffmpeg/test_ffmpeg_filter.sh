#!/usr/bin/env bash
# test_ffmpeg_filter.sh BUILD_DIR TRANSMUTE SOURCE_ROOT
#
# The native FFmpeg filter (filters/ffmpeg/vf_transmute.c) in an ffmpeg
# built by filters/ffmpeg/build-ffmpeg.sh, which runs first (the first time
# it downloads FFmpeg's Debian source and builds it: minutes). Short clips
# from the built ffmpeg's testsrc2 go through the filter on the CPU, and
# every output frame is compared in RGB with `transmute translate -d cpu` on
# the same input frames, extracted by the same ffmpeg: within 2/255.
# Needs /usr/bin/python3 with numpy (tests/ffmpeg/frames.py).
set -euo pipefail

build=$(cd "$1" && pwd)
tm=$(realpath "$2")
root=$(cd "$3" && pwd)
model=$root/models/demo-resnet6-random.safetensors
stargan=$root/models/demo-stargan-random.safetensors
frames="/usr/bin/python3 $root/tests/ffmpeg/frames.py"

ff=$("$root/filters/ffmpeg/build-ffmpeg.sh" "$build" | tail -n 1)
fp=$(dirname "$ff")/ffprobe
[ -x "$ff" ] && [ -x "$fp" ] || { echo "FAIL - no ffmpeg/ffprobe built at $ff"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'echo "FAIL - line $LINENO: $BASH_COMMAND"' ERR
cd "$tmp"

. "$root/tests/lib.sh"
ffq() { "$ff" -nostdin -hide_banner -loglevel error -y "$@"; }
# Raw frames out, every one as it comes: no frame dropped or repeated to keep
# a constant rate.
raw=(-fps_mode passthrough -f rawvideo)

# transmute translate over a folder of PNGs, the result as one raw file.
# ref_raw MODEL IN_DIR OUT_RAW PIX_FMT [translate options]
ref_raw() {
  local m=$1 dir=$2 out=$3 fmt=$4
  shift 4
  rm -rf "$out.d" && mkdir "$out.d"
  "$tm" translate -q -d cpu -m "$m" --outdir "$out.d" "$@" "$dir"/*.png
  ffq -i "$out.d/%03d.png" -autoscale 0 "${raw[@]}" -pix_fmt "$fmt" "$out"
}

# PNG frames of a clip: extract CLIP DIR PIX_FMT
extract() {
  rm -rf "$2" && mkdir "$2"
  ffq -i "$1" -pix_fmt "$3" "$2/%03d.png"
}

# ---- Clips: 8 frames of moving pictures (yuv420p, as most video is) with
# a sine, and the same with an alpha channel (rgba).
ffq -f lavfi -i "testsrc2=size=96x64:rate=25,trim=end_frame=8" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000,atrim=end=0.32" \
    -pix_fmt yuv420p -c:v ffv1 -c:a pcm_s16le clip.mkv
ffq -f lavfi -i "testsrc2=size=96x64:rate=25:alpha=160,trim=end_frame=8" \
    -pix_fmt rgba -c:v rawvideo clip-rgba.nut
# testsrc2 and YUV make even sizes only.
ffq -f lavfi -i "testsrc2=size=98x62:rate=25,format=rgb24,crop=97:61:0:0,trim=end_frame=4" -pix_fmt rgb24 \
    -c:v rawvideo clip-odd.nut
ffq -f lavfi -i "testsrc2=size=322x182:rate=25,trim=end_frame=3" -pix_fmt yuv420p -c:v ffv1 clip-322.mkv

extract clip.mkv in rgb24
ref_raw "$model" in ref.rgb rgb24
extract clip-rgba.nut in-rgba rgba
ref_raw "$model" in-rgba ref-rgba.raw rgba
extract clip-odd.nut in-odd rgb24
ref_raw "$model" in-odd ref-odd.rgb rgb24
extract clip-322.mkv in-322 rgb24
ref_raw "$model" in-322 ref-322.rgb rgb24
ffq -i "in/%03d.png" "${raw[@]}" -pix_fmt rgb24 in.rgb

tx="transmute=model=$model:device=cpu"

# check_frames NAME OUT FMT REF REF_FMT SIZES [frames.py options]
check_frames() {
  local name=$1
  shift
  if msg=$($frames compare "$@" 2>&1); then ok "$name: $msg"; else bad "$name: $msg"; fi
}

# ---- Pixel formats: rgb24 (converted from yuv420p by FFmpeg), and the
# others forced before the filter; the output stays in that format.
ffq -i clip.mkv -vf "$tx" "${raw[@]}" -pix_fmt rgb24 out.rgb
check_frames "rgb24 from yuv420p" out.rgb rgb24 ref.rgb rgb24 96x64
for fmt in rgba rgba64le gbrapf32le; do
  ffq -i clip-rgba.nut -vf "format=$fmt,$tx" "${raw[@]}" -pix_fmt "$fmt" "out-$fmt.raw"
  # Alpha included: it passes through.
  check_frames "$fmt (alpha kept)" "out-$fmt.raw" "$fmt" ref-rgba.raw rgba 96x64
done
for fmt in rgb48le gbrpf32le; do
  ffq -i clip-rgba.nut -vf "format=$fmt,$tx" "${raw[@]}" -pix_fmt "$fmt" "out-$fmt.raw"
  check_frames "$fmt" "out-$fmt.raw" "$fmt" ref-rgba.raw rgba 96x64
done

# ---- Sizes that are no multiple of the model's 4: odd ones, and 322x182.
ffq -i clip-odd.nut -vf "$tx" "${raw[@]}" -pix_fmt rgb24 out-odd.rgb
check_frames "97x61" out-odd.rgb rgb24 ref-odd.rgb rgb24 97x61
ffq -i clip-322.mkv -vf "$tx:cpu_threads=1" "${raw[@]}" -pix_fmt rgb24 out-322.rgb
check_frames "322x182 (cpu_threads=1)" out-322.rgb rgb24 ref-322.rgb rgb24 322x182

# ---- The size changing mid-stream: a PNG sequence of 96x64 then 80x48
# frames. With -reinit_filter 0 the same filter instance gets both sizes
# (the library plans the new size). By default ffmpeg 5.1 builds a new graph
# instead, without draining the old one: the frame the filter holds then
# (frame 3) is lost, as with any filter holding one (yadif, dnn_processing),
# unless pipeline=0. -autoscale 0: ffmpeg would scale every frame to the
# first one's size.
mkdir seq
ffq -f lavfi -i "testsrc2=size=96x64:rate=25,trim=end_frame=4" -pix_fmt rgb24 "seq/%03d.png"
ffq -f lavfi -i "testsrc2=size=80x48:rate=25,trim=start_frame=4:end_frame=8" -pix_fmt rgb24 \
    -start_number 5 "seq/%03d.png"
ref_raw "$model" seq ref-seq.rgb rgb24
ffq -reinit_filter 0 -i "seq/%03d.png" -vf "$tx" -autoscale 0 "${raw[@]}" -pix_fmt rgb24 out-seq.rgb
check_frames "size change 96x64 -> 80x48" out-seq.rgb rgb24 ref-seq.rgb rgb24 "96x64*4,80x48*4"
ffq -i "seq/%03d.png" -vf "$tx" -autoscale 0 "${raw[@]}" -pix_fmt rgb24 out-seq-reinit.rgb
check_frames "size change, new graph: frame 3 lost, the others right" out-seq-reinit.rgb rgb24 \
  ref-seq.rgb rgb24 "96x64*3,80x48*4" --sizes-b "96x64*4,80x48*4" --drop-b 3
ffq -i "seq/%03d.png" -vf "$tx:pipeline=0" -autoscale 0 "${raw[@]}" -pix_fmt rgb24 out-seq-p0.rgb
check_frames "size change, new graph, pipeline=0" out-seq-p0.rgb rgb24 ref-seq.rgb rgb24 "96x64*4,80x48*4"

# ---- Timestamps, frame properties and audio pass through: irregular
# timestamps (a jump after frame 3), the audio stream copied bit for bit.
ffq -i clip.mkv -vf "setpts='PTS+gte(N,4)*0.5/TB'" -c:v ffv1 -c:a copy -fps_mode passthrough ts.nut
ffq -i ts.nut -c:v ffv1 -c:a copy -fps_mode passthrough ts-plain.nut
ffq -i ts.nut -vf "$tx" -c:v ffv1 -c:a copy -fps_mode passthrough ts-filtered.nut
probe() {
  "$fp" -v error -select_streams "$2" -show_entries frame=pts,pkt_duration,sample_aspect_ratio \
    -of csv=p=0 "$1"
}
if [ "$(probe ts-plain.nut v)" = "$(probe ts-filtered.nut v)" ] && [ -n "$(probe ts-plain.nut v)" ]; then
  ok "video timestamps pass through ($(probe ts-filtered.nut v | tr '\n' ' '))"
else
  bad "video timestamps differ: $(probe ts-plain.nut v | tr '\n' ' ') / $(probe ts-filtered.nut v | tr '\n' ' ')"
fi
a1=$(ffq -i ts-plain.nut -map 0:a -f md5 -)
a2=$(ffq -i ts-filtered.nut -map 0:a -f md5 -)
a0=$(ffq -i clip.mkv -map 0:a -f md5 -)
[ "$a1" = "$a2" ] && [ "$a0" = "$a2" ] && ok "audio untouched ($a2)" || bad "audio changed: $a0 $a1 $a2"

# ---- Blend 0 passes the frames through as they are; blend 0.5 from 0.12 s
# (frame 3) on, through sendcmd.
ffq -i clip.mkv -vf "$tx:blend=0" "${raw[@]}" -pix_fmt rgb24 out-b0.rgb
check_frames "blend=0 is the input" out-b0.rgb rgb24 in.rgb rgb24 96x64 --tol 0
$frames mix in.rgb rgb24 ref.rgb rgb24 96x64 0.5 3 mix.rgb
ffq -i clip.mkv -vf "sendcmd=c='0.12 transmute blend 0.5',$tx" "${raw[@]}" -pix_fmt rgb24 out-cmd.rgb
check_frames "sendcmd blend 0.5 at frame 3" out-cmd.rgb rgb24 mix.rgb rgb24 96x64
if $frames compare out-cmd.rgb rgb24 ref.rgb rgb24 96x64 --from 3 >/dev/null 2>&1; then
  bad "sendcmd: frames after the command are the unblended translation"
fi

# ---- Timeline: frames 2..4 translated, the others untouched.
ffq -i clip.mkv -vf "$tx:enable='between(n,2,4)'" "${raw[@]}" -pix_fmt rgb24 out-tl.rgb
/usr/bin/python3 - "$tmp" <<'EOF' && ok "timeline enable='between(n,2,4)'" || bad "timeline"
import sys, numpy as np
d = sys.argv[1]
n = 96 * 64 * 3
out, inp, ref = (np.fromfile(f'{d}/{f}', 'u1').reshape(-1, n).astype(int)
                 for f in ('out-tl.rgb', 'in.rgb', 'ref.rgb'))
for i in range(len(inp)):
    want = ref[i] if 2 <= i <= 4 else inp[i]
    tol = 2 if 2 <= i <= 4 else 0
    if len(out) != len(inp) or np.abs(out[i] - want).max() > tol:
        sys.exit(f'frame {i} is not what the timeline asks')
EOF

# ---- StarGAN: the target domain, and switching it with sendcmd.
ffq -i clip.mkv -vf "transmute=model=$stargan:device=cpu:domains=Blond_Hair" \
    "${raw[@]}" -pix_fmt rgb24 out-sg.rgb
ref_raw "$stargan" in ref-sg.rgb rgb24 --domain Blond_Hair
ref_raw "$stargan" in ref-sg-happy.rgb rgb24 --domain happy
check_frames "StarGAN domains=Blond_Hair" out-sg.rgb rgb24 ref-sg.rgb rgb24 96x64
ffq -i clip.mkv -vf "sendcmd=c='0.12 transmute domains happy',transmute=model=$stargan:device=cpu:domains=Blond_Hair" \
    "${raw[@]}" -pix_fmt rgb24 out-sg-cmd.rgb
/usr/bin/python3 - "$tmp" <<'EOF' && ok "StarGAN sendcmd domains happy at frame 3" || bad "StarGAN sendcmd domains"
import sys, numpy as np
d = sys.argv[1]
n = 96 * 64 * 3
out, a, b = (np.fromfile(f'{d}/{f}', 'u1').reshape(-1, n).astype(int)
             for f in ('out-sg-cmd.rgb', 'ref-sg.rgb', 'ref-sg-happy.rgb'))
if np.abs(a[3:] - b[3:]).max() <= 2:
    sys.exit('the two targets give the same frames: the test shows nothing')
for i in range(len(a)):
    if len(out) != len(a) or np.abs(out[i] - (a[i] if i < 3 else b[i])).max() > 2:
        sys.exit(f'frame {i} has the wrong target')
EOF

# ---- Super-resolution: a tiny random 2x model (tests/gen_sr_model.py). The
# output frames are twice the input's size, equal to transmute translate per
# frame; the sample aspect ratio stays; a size change mid-stream; frames the
# timeline disables are the input with every pixel repeated 2x2.
sr=$tmp/sr2x.safetensors
/usr/bin/python3 "$root/tests/gen_sr_model.py" -o "$sr"
srtx="transmute=model=$sr:device=cpu"
ref_raw "$sr" in ref-sr.rgb rgb24
ffq -i clip.mkv -vf "$srtx" "${raw[@]}" -pix_fmt rgb24 out-sr.rgb
check_frames "SR 2x: rgb24 96x64 -> 192x128, as transmute translate" out-sr.rgb rgb24 ref-sr.rgb rgb24 \
  192x128 --tol 1
ref_raw "$sr" in-rgba ref-sr-rgba.raw rgba
for fmt in rgba gbrapf32le; do
  ffq -i clip-rgba.nut -vf "format=$fmt,$srtx" "${raw[@]}" -pix_fmt "$fmt" "out-sr-$fmt.raw"
  check_frames "SR 2x: $fmt (alpha resized)" "out-sr-$fmt.raw" "$fmt" ref-sr-rgba.raw rgba 192x128
done
ffq -f lavfi -i "testsrc2=size=96x64:rate=25:sar=2/3,trim=end_frame=2" -vf "$srtx" -c:v ffv1 sr-sar.nut
got=$("$fp" -v error -select_streams v -show_entries stream=width,height,sample_aspect_ratio -of csv=p=0 sr-sar.nut)
[ "$got" = "192,128,2:3" ] && ok "SR 2x: the stream is 192x128, sample aspect ratio 2:3 kept" ||
  bad "SR 2x: stream size and sample aspect ratio: '$got', expected 192,128,2:3"
ref_raw "$sr" seq ref-sr-seq.rgb rgb24
ffq -reinit_filter 0 -i "seq/%03d.png" -vf "$srtx" -autoscale 0 "${raw[@]}" -pix_fmt rgb24 out-sr-seq.rgb
check_frames "SR 2x: size change 96x64 -> 80x48 (one instance)" out-sr-seq.rgb rgb24 ref-sr-seq.rgb rgb24 \
  "192x128*4,160x96*4" --tol 1
ffq -i "seq/%03d.png" -vf "$srtx:pipeline=0" -autoscale 0 "${raw[@]}" -pix_fmt rgb24 out-sr-seq-p0.rgb
check_frames "SR 2x: size change, new graph, pipeline=0" out-sr-seq-p0.rgb rgb24 ref-sr-seq.rgb rgb24 \
  "192x128*4,160x96*4" --tol 1
ffq -i clip.mkv -vf "$srtx:enable='between(n,2,4)'" "${raw[@]}" -pix_fmt rgb24 out-sr-tl.rgb
/usr/bin/python3 - "$tmp" <<'EOF' && ok "SR 2x: timeline: frames 2..4 upscaled by the model, the others by pixel repetition" || bad "SR 2x: timeline"
import sys, numpy as np
d = sys.argv[1]
inp = np.fromfile(f'{d}/in.rgb', 'u1').reshape(-1, 64, 96, 3).astype(int)
out, ref = (np.fromfile(f'{d}/{f}', 'u1').reshape(-1, 128, 192, 3).astype(int)
            for f in ('out-sr-tl.rgb', 'ref-sr.rgb'))
for i in range(len(inp)):
    want = ref[i] if 2 <= i <= 4 else inp[i].repeat(2, 0).repeat(2, 1)
    if len(out) != len(inp) or np.abs(out[i] - want).max() > (1 if 2 <= i <= 4 else 0):
        sys.exit(f'frame {i} is not what the timeline asks')
EOF

# ---- Errors at configuration: a clear message naming the problem, a
# non-zero exit, no signal.
# expect_error NAME PATTERN ffmpeg-args...
expect_error() {
  local name=$1 pattern=$2 rc=0
  shift 2
  "$ff" -nostdin -hide_banner -loglevel error -y "$@" >err.txt 2>&1 || rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q -- "$pattern" err.txt; then
    ok "$name: exit $rc, $(grep -m1 -- "$pattern" err.txt)"
  else
    bad "$name: exit $rc, expected a message matching '$pattern': $(head -c 600 err.txt)"
  fi
}
printf 'not a model' >corrupt.safetensors
expect_error "missing model" "transmute.*$tmp/missing.safetensors" \
  -i clip.mkv -vf "transmute=model=$tmp/missing.safetensors:device=cpu" -f null -
expect_error "corrupt model" "transmute.*$tmp/corrupt.safetensors" \
  -i clip.mkv -vf "transmute=model=$tmp/corrupt.safetensors:device=cpu" -f null -
expect_error "no model" "no model given" -i clip.mkv -vf "transmute=device=cpu" -f null -
expect_error "StarGAN without domains" "one or more of: Black_Hair, Blond_Hair" \
  -i clip.mkv -vf "transmute=model=$stargan:device=cpu" -f null -
expect_error "unknown domain" "domains='Purple_Hair'" \
  -i clip.mkv -vf "transmute=model=$stargan:device=cpu:domains=Purple_Hair" -f null -
expect_error "unknown device" "cannot use device 'nosuchgpu'" \
  -i clip.mkv -vf "transmute=model=$model:device=nosuchgpu" -f null -
expect_error "SR 2x with blend 0.5" "is a 2x super-resolution model: blend must be 1" \
  -i clip.mkv -vf "$srtx:blend=0.5" -f null -

# ---- stats=smooth: a still picture with fresh noise on every frame in its
# left quarter, as a scene where only a small part moves. The still right
# part flickers clearly less than with stats=frame (noise over the whole
# frame would not show it: each frame's own statistics cancel that already);
# smoothing=0 is stats=frame exactly. Then a cut to another picture: the
# first frame after it is translated with its own statistics again.
ffq -f lavfi -i "testsrc2=size=96x64" -frames:v 1 "${raw[@]}" -pix_fmt rgb24 still.rgb
ffq -f lavfi -i "testsrc=size=96x64" -frames:v 1 "${raw[@]}" -pix_fmt rgb24 still2.rgb
$frames noisy noisy.rgb 96x64 still.rgb:12
$frames noisy cut.rgb 96x64 still.rgb:12 still2.rgb:6
raw_in=(-f rawvideo -pix_fmt rgb24 -video_size 96x64 -framerate 25)
ffq "${raw_in[@]}" -i noisy.rgb -vf "$tx:stats=frame" "${raw[@]}" -pix_fmt rgb24 sm-frame.rgb
ffq "${raw_in[@]}" -i noisy.rgb -vf "$tx:stats=smooth" "${raw[@]}" -pix_fmt rgb24 sm-smooth.rgb
ffq "${raw_in[@]}" -i noisy.rgb -vf "$tx:stats=smooth:smoothing=0" "${raw[@]}" -pix_fmt rgb24 sm-zero.rgb
f_frame=$($frames flicker sm-frame.rgb rgb24 96x64 --x0 48)
f_smooth=$($frames flicker sm-smooth.rgb rgb24 96x64 --x0 48)
if awk -v a="$f_smooth" -v b="$f_frame" 'BEGIN { exit !(a < 0.7 * b) }'; then
  ok "stats=smooth: the still part changes by $f_smooth/255 a frame, $f_frame with stats=frame"
else
  bad "stats=smooth: the still part changes by $f_smooth/255 a frame, not clearly below stats=frame's $f_frame"
fi
cmp -s sm-zero.rgb sm-frame.rgb && ok "smoothing=0 equals stats=frame exactly" ||
  bad "smoothing=0 differs from stats=frame"
ffq "${raw_in[@]}" -i cut.rgb -vf "$tx:stats=frame" "${raw[@]}" -pix_fmt rgb24 cut-frame.rgb
ffq "${raw_in[@]}" -i cut.rgb -vf "$tx:stats=smooth" "${raw[@]}" -pix_fmt rgb24 cut-smooth.rgb
ffq "${raw_in[@]}" -i cut.rgb -vf "$tx:stats=smooth:scene=1" "${raw[@]}" -pix_fmt rgb24 cut-nodetect.rgb
check_frames "scene cut at frame 12 starts fresh statistics" cut-smooth.rgb rgb24 cut-frame.rgb rgb24 \
  96x64 --from 12 --to 13 --tol 0
if $frames compare cut-nodetect.rgb rgb24 cut-frame.rgb rgb24 96x64 --from 12 --to 13 --tol 0 \
    >/dev/null 2>&1; then
  bad "scene=1 (no detection) also starts afresh at the cut: the test shows nothing"
fi

# ---- Vulkan (lavapipe here) with the validation layer: two frames, within
# 2/255 of the CPU, no validation message.
ffq -i clip.mkv -vf "trim=end_frame=2,$tx" "${raw[@]}" -pix_fmt rgb24 vk-cpu.rgb
if TRANSMUTE_VALIDATE=1 "$ff" -nostdin -hide_banner -loglevel warning -y -i clip.mkv \
    -vf "trim=end_frame=2,transmute=model=$model:device=vulkan" "${raw[@]}" -pix_fmt rgb24 vk.rgb 2>vk.log; then
  if grep -qi "vulkan error\|vulkan warning" vk.log; then
    bad "Vulkan: validation messages: $(grep -i -m3 'vulkan error\|vulkan warning' vk.log)"
  else
    check_frames "Vulkan (validation on) against the CPU" vk.rgb rgb24 vk-cpu.rgb rgb24 96x64
  fi
else
  bad "Vulkan run failed: $(tail -n 5 vk.log)"
fi

finish
