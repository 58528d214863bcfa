#!/bin/sh
# Compiles one compute shader to a C header of SPIR-V words.
# glslangValidator exits 0 on warnings and always echoes the input name, so
# its output is filtered here: any other line is a message, and a message
# fails the build (the style guide treats shader warnings as errors).
# usage: compile_shader.sh GLSLANG NAME INPUT OUTPUT DEPFILE
set -u
glslang=$1 name=$2 input=$3 output=$4 depfile=$5
log=$("$glslang" -V --target-env vulkan1.1 --vn "tm_spv_$name" \
      --depfile "$depfile" -o "$output" "$input" 2>&1)
rc=$?
msgs=$(printf '%s\n' "$log" | grep -vxF -e "$input" -e '')
if [ $rc -ne 0 ] || [ -n "$msgs" ]; then
    printf '%s\n' "$log" >&2
    rm -f "$output"
    exit 1
fi
exit 0
