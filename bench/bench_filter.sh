#!/usr/bin/env bash
# bench_filter.sh: frames per second of the FFmpeg filter against the core
# alone on the same clip, on the CPU.
#
# Usage: bench/bench_filter.sh [BUILD_DIR] [MODEL] [WxH] [FRAMES] [RUNS]
#   defaults: build, models/demo-resnet6-random.safetensors, 256x256, 100, 3
#
# Builds ffmpeg with the filter if needed (filters/ffmpeg/build-ffmpeg.sh),
# makes clips of FRAMES and 2 x FRAMES testsrc2 frames (yuv420p in FFV1:
# decoded video arrives as YUV) and measures steady rates, what a long video
# gets, without the one-time costs (starting, loading the model, planning
# the first frame):
#   core      bench_frames: tm_translate on the clip's frames, converted to
#             rgb24 beforehand, the first frame left out
#   ffmpeg    the same ffmpeg runs without the filter: decoding and the
#             yuv420p -> rgb24 conversion, what the filter's worker thread
#             overlaps with the model
#   filter    ffmpeg -benchmark -i CLIP -vf transmute=... -f null -: FRAMES
#             over the difference of the two clips' rtime; and again with
#             pipeline=0 (one frame at a time, nothing overlapped)
# Each is run RUNS times, taking turns, and the fastest kept: other work on
# the machine only slows runs down. The processor time a frame (user and
# system, all threads) is printed too: it varies less than the wall time on
# a busy machine.
#
# Then the pipelining on its own: the model on one core (cpu_threads=1)
# while ffmpeg decodes a 1920x1080 clip of FRAMES frames and scales it to
# WxH, with and without pipeline=0; the whole runs' rtime. With the model
# on every core, as above, there is no core left to overlap anything with.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
model=$(realpath "${2:-$root/models/demo-resnet6-random.safetensors}")
size=${3:-256x256}
n=${4:-100}
runs=${5:-3}

ff=$("$root/filters/ffmpeg/build-ffmpeg.sh" "$build" | tail -n 1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for frames in "$n" $((2 * n)); do
  "$ff" -nostdin -loglevel error -f lavfi -i "testsrc2=size=$size:rate=25,trim=end_frame=$frames" \
    -pix_fmt yuv420p -c:v ffv1 "$tmp/clip$frames.mkv"
done
"$ff" -nostdin -loglevel error -i "$tmp/clip$n.mkv" -f rawvideo -pix_fmt rgb24 "$tmp/frames.rgb"

# "rtime cputime" of `ffmpeg -benchmark -i CLIP ARGS... -f null -`, in
# seconds; cputime is utime + stime, all threads.
times() {
  local clip=$1
  shift
  "$ff" -nostdin -hide_banner -benchmark -i "$clip" "$@" -f null - 2>&1 |
    sed -n 's/.*utime=\([0-9.]*\)s stime=\([0-9.]*\)s rtime=\([0-9.]*\)s.*/\3 \1 \2/p' |
    awk '{ print $1, $2 + $3 }'
}

# "wall cpu" seconds for n more frames: the 2n-frame clip's less the
# n-frame one's.
extra() {
  local a b
  a=$(times "$tmp/clip$n.mkv" "$@")
  b=$(times "$tmp/clip$((2 * n)).mkv" "$@")
  echo "$a $b" | awk '{ print $3 - $1, $4 - $2 }'
}

# The smaller of two numbers, or the first one.
min() { awk -v a="$1" -v b="${2:-$1}" 'BEGIN { print (b < a ? b : a) }'; }

# The best (smallest wall time) of two "wall cpu" pairs, or the first one.
best() { echo "$1 ${2:-$1}" | awk '{ if ($3 < $1) print $3, $4; else print $1, $2 }'; }

core="" rest="" filter="" serial=""
for _ in $(seq "$runs"); do
  line=$("$build/bench/bench_frames" -m "$model" -d cpu -s "$size" --in "$tmp/frames.rgb")
  core=$(best "$(echo "$line" | awk -v n="$n" '{ print n / $11, n * $9 / 1000 }')" "$core")
  rest=$(best "$(extra -vf format=rgb24)" "$rest")
  filter=$(best "$(extra -vf "transmute=model=$model:device=cpu")" "$filter")
  serial=$(best "$(extra -vf "transmute=model=$model:device=cpu:pipeline=0")" "$serial")
done

echo "$core $rest $filter $serial" | awk -v n="$n" -v size="$size" -v runs="$runs" \
    -v model="$(basename "$model")" -v line="$line" '{
  split(line, f, " ")
  printf "%s, %s, CPU, steady rates, best of %d runs (model load %s ms, first frame %s ms)\n",
         model, size, runs, f[5], f[7]
  printf "  core alone (bench_frames)  %8.2f fps, %7.1f ms of CPU a frame\n", n / $1, 1000 * $2 / n
  if ($3 > 0)
    printf "  ffmpeg without the filter  %8.1f fps, %7.1f ms of CPU a frame (decoding, yuv420p -> rgb24)\n",
           n / $3, 1000 * $4 / n
  printf "  filter                     %8.2f fps, %7.1f ms of CPU a frame: %.1f%% of the core'"'"'s fps\n",
         n / $5, 1000 * $6 / n, 100 * $1 / $5
  printf "  filter, pipeline=0         %8.2f fps, %7.1f ms of CPU a frame: %.1f%% of the core'"'"'s fps\n",
         n / $7, 1000 * $8 / n, 100 * $1 / $7
}'

"$ff" -nostdin -loglevel error -f lavfi -i "testsrc2=size=1920x1080:rate=25,trim=end_frame=$n" \
  -pix_fmt yuv420p -c:v ffv1 "$tmp/clip1080.mkv"
scale="scale=${size%x*}:${size#*x}"
big="" piped="" serial1=""
for _ in $(seq "$runs"); do
  big=$(min "$(times "$tmp/clip1080.mkv" -vf "$scale,format=rgb24" | cut -d' ' -f1)" "$big")
  piped=$(min "$(times "$tmp/clip1080.mkv" -vf "$scale,transmute=model=$model:device=cpu:cpu_threads=1" |
    cut -d' ' -f1)" "$piped")
  serial1=$(min "$(times "$tmp/clip1080.mkv" \
    -vf "$scale,transmute=model=$model:device=cpu:cpu_threads=1:pipeline=0" | cut -d' ' -f1)" "$serial1")
done
awk -v n="$n" -v big="$big" -v p="$piped" -v s="$serial1" 'BEGIN {
  printf "pipelining: 1920x1080 decoded and scaled, model on one core (cpu_threads=1), %d frames\n", n
  printf "  ffmpeg without the filter  %8.2f fps\n", n / big
  printf "  filter                     %8.2f fps\n", n / p
  printf "  filter, pipeline=0         %8.2f fps (pipelining: %+.0f%%)\n", n / s, 100 * (s / p - 1)
}'
