#!/usr/bin/env bash
# Installs the built GIMP 2.10 plug-in (plugins/gimp) and the shipped models.
#
#   scripts/install-gimp-plugin.sh [--user] [BUILD_DIR]
#
# BUILD_DIR defaults to build. Without --user: GIMP's own plug-in folder
# (pkg-config gimp-2.0 gimplibdir, /usr/lib/gimp/2.0 on Debian) and
# <prefix>/share/transmute/models, through `meson install --tags gimp,models`
# (needs root for those folders; sudo is used when not root).
# With --user: your own folders, no root needed:
#   ${XDG_CONFIG_HOME:-~/.config}/GIMP/2.10/plug-ins/transmute/transmute
#   ${XDG_DATA_HOME:-~/.local/share}/transmute/models/*.safetensors
# (GIMP2_DIRECTORY, when set, replaces the GIMP folder, as GIMP itself does.)
# Restart GIMP afterwards: Filters > Generic > Transmute (GAN translation, super-resolution).
set -euo pipefail
cd "$(dirname "$0")/.."

user=false
if [ "${1:-}" = "--user" ]; then
  user=true
  shift
fi
build=${1:-build}
plugin=$build/plugins/gimp/transmute
[ -x "$plugin" ] || { echo "no plug-in at $plugin: build it first (meson setup $build && ninja -C $build)" >&2; exit 1; }

if ! $user; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  exec $sudo meson install -C "$build" --no-rebuild --tags gimp,models
fi

gimp_dir=${GIMP2_DIRECTORY:-${XDG_CONFIG_HOME:-$HOME/.config}/GIMP/2.10}
model_dir=${XDG_DATA_HOME:-$HOME/.local/share}/transmute/models
install -D -m 755 "$plugin" "$gimp_dir/plug-ins/transmute/transmute"
install -d "$model_dir"
install -m 644 models/*.safetensors "$model_dir/"
echo "installed $gimp_dir/plug-ins/transmute/transmute"
echo "models in $model_dir (add your own .safetensors files there)"
