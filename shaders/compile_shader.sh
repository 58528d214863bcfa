#!/bin/sh
# Compiles one compute shader to a C header of SPIR-V words.
# glslangValidator exits 0 on warnings and always echoes the input name, so
# its output is filtered here: any other line is a message, and a message
# fails the build (the style guide treats shader warnings as errors).
# usage: compile_shader.sh GLSLANG NAME BDA INPUT OUTPUT DEPFILE
# BDA (0 or 1) selects the tensor access variant (see common.glsl); the
# array is named tm_spv_NAME or tm_spv_NAME_bda.
set -u
glslang=$1 name=$2 bda=$3 input=$4 output=$5 depfile=$6
[ "$bda" = 1 ] && name=${name}_bda
log=$("$glslang" -V --target-env vulkan1.1 -DTM_BDA="$bda" --vn "tm_spv_$name" \
      --depfile "$depfile" -o "$output" "$input" 2>&1)
rc=$?
msgs=$(printf '%s\n' "$log" | grep -vxF -e "$input" -e '')
if [ $rc -ne 0 ] || [ -n "$msgs" ]; then
    printf '%s\n' "$log" >&2
    rm -f "$output"
    exit 1
fi
exit 0
