#!/usr/bin/env bash
# build-ffmpeg.sh: builds an ffmpeg (and ffprobe) with the native `transmute`
# video filter, from the FFmpeg 5.1 source that Debian 12 ships.
#
# Usage: filters/ffmpeg/build-ffmpeg.sh [BUILD_DIR]
#
# BUILD_DIR is this project's meson build folder (default: build); its
# core/libtransmute.so must be built already. The last line printed is the
# path of the built ffmpeg, BUILD_DIR/ffmpeg/src/ffmpeg (ffprobe lies next
# to it). It links BUILD_DIR/core/libtransmute.so through an rpath, so a
# rebuilt core is picked up without relinking; nothing is installed.
#
# Steps:
#  1. Download, once: `apt-get source --download-only ffmpeg` into
#     ${XDG_CACHE_HOME:-~/.cache}/transmute/ffmpeg-source. When apt knows no
#     source package for ffmpeg, it first writes
#     /etc/apt/sources.list.d/transmute-deb-src.sources (deb-src of Debian's
#     archive: bookworm, bookworm-updates, bookworm-security) and runs
#     apt-get update, as root or through sudo.
#  2. Unpack with dpkg-source (Debian's patches applied) into
#     BUILD_DIR/ffmpeg/src, copy vf_transmute.c into libavfilter/, register
#     it in libavfilter/Makefile, libavfilter/allfilters.c and configure.
#  3. configure --disable-everything plus what the filter's users and tests
#     need (see `components` below), make -j$(nproc).
#
# Idempotent: BUILD_DIR/ffmpeg/stamp holds hashes of this script (the
# configuration) and of vf_transmute.c with transmute.h. When both match and
# the binary exists nothing is done; when only the filter changed, only it is
# recompiled and the programs relinked; otherwise the tree is unpacked and
# configured afresh.
#
# Packages (scripts/install-deps.sh installs them): dpkg-dev (apt-get
# source), nasm (FFmpeg's x86 assembly), libx264-dev (optional: H.264
# encoding, which makes the ffmpeg built GPL), zlib1g-dev (PNG).
set -euo pipefail

die() { echo "build-ffmpeg.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
[ -d "$build" ] || die "build folder '$build' does not exist (meson setup $build && ninja -C $build)"
build=$(cd "$build" && pwd)
[ -e "$build/core/libtransmute.so" ] ||
  die "'$build/core/libtransmute.so' is missing: build the project first (ninja -C $build)"

filter_src=$here/vf_transmute.c
header=$repo/core/include/transmute.h
cache=${XDG_CACHE_HOME:-$HOME/.cache}/transmute/ffmpeg-source
work=$build/ffmpeg
src=$work/src
stamp=$work/stamp

have_x264=no
pkg-config --exists x264 2>/dev/null && have_x264=yes

# What the filter's users and tests/ffmpeg need, and no more: build time
# counts in CI. The commas are configure's lists.
# shellcheck disable=SC2054
components=(
  --enable-filter=transmute,scale,format,aformat,null,anull,aresample,copy
  --enable-filter=sendcmd,asendcmd,select,setpts,asetpts,concat,trim,atrim
  --enable-filter=split,asplit,noise,crop,pad,fps,showinfo
  --enable-filter=testsrc,testsrc2,color,sine,anullsrc
  --enable-indev=lavfi
  --enable-protocol=file,pipe
  --enable-demuxer=rawvideo,image2,png_pipe,nut,mov,matroska,concat,wav,aac
  --enable-muxer=rawvideo,image2,image2pipe,nut,mov,mp4,matroska,null,wav
  --enable-muxer=md5,crc,framemd5,framecrc
  --enable-decoder=rawvideo,png,mjpeg,ffv1,h264,aac,pcm_s16le,pcm_f32le
  --enable-encoder=rawvideo,wrapped_avframe,png,mjpeg,ffv1,aac,pcm_s16le
  --enable-parser=h264,aac,png,mjpeg
)
[ "$have_x264" = yes ] && components+=(--enable-gpl --enable-libx264 --enable-encoder=libx264)

hash_of() { cat "$@" | sha256sum | cut -c1-64; }
want_config=$( { cat "${BASH_SOURCE[0]}"; echo "x264=$have_x264 build=$build"; } | sha256sum | cut -c1-64)
want_filter=$(hash_of "$filter_src" "$header")
have_config=$(sed -n 's/^config //p' "$stamp" 2>/dev/null || true)
have_filter=$(sed -n 's/^filter //p' "$stamp" 2>/dev/null || true)

if [ -x "$src/ffmpeg" ] && [ "$have_config" = "$want_config" ] && [ "$have_filter" = "$want_filter" ]; then
  echo "$src/ffmpeg"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

# deb-src entries are off by default on Debian 12; apt-get source needs them.
enable_deb_src() {
  local list=/etc/apt/sources.list.d/transmute-deb-src.sources
  if [ ! -e "$list" ]; then
    echo "build-ffmpeg.sh: adding Debian source entries in $list" >&2
    printf '%s\n' \
      'Types: deb-src' \
      'URIs: http://deb.debian.org/debian' \
      'Suites: bookworm bookworm-updates' \
      'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
      '' \
      'Types: deb-src' \
      'URIs: http://deb.debian.org/debian-security' \
      'Suites: bookworm-security' \
      'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
      $sudo tee "$list" >/dev/null
  fi
  $sudo apt-get update -qq
}

# The newest downloaded .dsc, or nothing.
cached_dsc() { ls "$cache"/ffmpeg_*.dsc 2>/dev/null | sort -V | tail -n 1; }

fetch_source() {
  [ -n "$(cached_dsc)" ] && return
  command -v dpkg-source >/dev/null || die "dpkg-source is missing (apt-get install dpkg-dev)"
  [ -n "$(apt-cache showsrc ffmpeg 2>/dev/null)" ] || enable_deb_src
  mkdir -p "$cache"
  echo "build-ffmpeg.sh: downloading FFmpeg's Debian source into $cache" >&2
  # As root apt warns that it cannot drop privileges for a folder _apt may
  # not write: harmless.
  (cd "$cache" && apt-get source --download-only -qq ffmpeg 2>&1 | grep -v 'unsandboxed' >&2 || true)
  [ -n "$(cached_dsc)" ] || die "apt-get source ffmpeg downloaded nothing into $cache"
}

# Inserts line before the first line matching anchor in file, once.
insert_before() {
  local file=$1 anchor=$2 line=$3
  grep -qxF "$line" "$file" && return
  grep -q "$anchor" "$file" || die "$file: no line matching '$anchor' to register the filter"
  sed -i "0,/$anchor/s//$(printf '%s' "$line" | sed 's/[&/\]/\\&/g')\n&/" "$file"
  grep -qxF "$line" "$file" || die "$file: could not add '$line'"
}

unpack_and_configure() {
  command -v nasm >/dev/null || die "nasm is missing (scripts/install-deps.sh installs it)"
  fetch_source
  local dsc
  dsc=$(cached_dsc)
  rm -rf "$work"
  mkdir -p "$work"
  echo "build-ffmpeg.sh: unpacking $(basename "$dsc")" >&2
  dpkg-source -x "$dsc" "$src" >/dev/null 2>"$work/unpack.log" ||
    die "dpkg-source -x $dsc failed (see $work/unpack.log)"
  cp "$filter_src" "$src/libavfilter/vf_transmute.c"
  # Alphabetical places, as a filter of FFmpeg's own would have.
  insert_before "$src/libavfilter/Makefile" '^OBJS-$(CONFIG_TRANSPOSE_FILTER)' \
    'OBJS-$(CONFIG_TRANSMUTE_FILTER)              += vf_transmute.o'
  insert_before "$src/libavfilter/allfilters.c" '^extern const AVFilter ff_vf_transpose;' \
    'extern const AVFilter ff_vf_transmute;'
  # The filter runs the model on a thread of its own, and detects scene
  # cuts as the select filter does.
  insert_before "$src/configure" '^transpose_opencl_filter_deps=' 'transmute_filter_deps="pthreads"'
  insert_before "$src/configure" '^transpose_opencl_filter_deps=' 'transmute_filter_select="scene_sad"'

  echo "build-ffmpeg.sh: configuring (log: $src/ffbuild/config.log)" >&2
  (cd "$src" && ./configure \
    --disable-everything --disable-autodetect --disable-network --disable-doc --disable-debug \
    --disable-ffplay \
    --enable-zlib "${components[@]}" \
    --extra-cflags="-I$repo/core/include" \
    --extra-ldflags="-L$build/core -Wl,-rpath,$build/core" \
    --extra-libs=-ltransmute >"$work/configure.log" 2>&1) ||
    die "configure failed (see $work/configure.log and $src/ffbuild/config.log)"
  grep -q '^#define CONFIG_TRANSMUTE_FILTER 1' "$src/config_components.h" ||
    die "configure did not enable the transmute filter (see $work/configure.log)"
}

start=$(date +%s)
if [ "$have_config" != "$want_config" ] || [ ! -f "$src/config_components.h" ]; then
  unpack_and_configure
else
  cp "$filter_src" "$src/libavfilter/vf_transmute.c"
fi

echo "build-ffmpeg.sh: building FFmpeg with $(nproc) jobs (log: $work/make.log)" >&2
make -C "$src" -j"$(nproc)" ffmpeg ffprobe >"$work/make.log" 2>&1 ||
  { tail -n 30 "$work/make.log" >&2; die "make failed (see $work/make.log)"; }
printf 'config %s\nfilter %s\n' "$want_config" "$want_filter" >"$stamp"
echo "build-ffmpeg.sh: built in $(( $(date +%s) - start )) s" >&2
echo "$src/ffmpeg"
