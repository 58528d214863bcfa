#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz with clang (AddressSanitizer,
# UndefinedBehaviorSanitizer, LeakSanitizer) straight from the sources they
# test, writes a seed corpus (tests/fuzz/make_seeds.py, needs torch), and
# runs each target for SECONDS. Fails on any crash, leak, timeout, or build
# error; prints each target's executions and coverage. New inputs are kept in
# BUILDDIR/corpus-<target>, so later runs start from where earlier ones got.
#
# Usage: run_fuzz.sh SRCROOT BUILDDIR SECONDS
set -eu

if [ $# -ne 3 ]; then
    echo "usage: run_fuzz.sh SRCROOT BUILDDIR SECONDS" >&2
    exit 2
fi
src=$1
out=$2
secs=$3
cc=
for c in "${CC_FUZZ:-}" clang clang-14; do
    if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then
        cc=$c
        break
    fi
done
if [ -z "$cc" ]; then
    echo "run_fuzz.sh: clang not found (install clang and libclang-rt-14-dev)" >&2
    exit 1
fi
mkdir -p "$out"

flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -std=c11 -D_GNU_SOURCE -I$src/core/include -I$src/core -I$src/tools/convert"
conv=$src/tools/convert
# shellcheck disable=SC2086 # flags are word lists
$cc $flags "$src/tests/fuzz/fuzz_pickle.c" "$conv/pickle.c" "$conv/pickle_torch.c" -o "$out/fuzz_pickle"
# shellcheck disable=SC2086
$cc $flags "$src/tests/fuzz/fuzz_ckpt.c" "$conv/pickle.c" "$conv/pickle_torch.c" "$conv/ckpt_zip.c" \
    "$conv/ckpt_legacy.c" "$conv/torch_ckpt.c" $(pkg-config --cflags --libs libzip) \
    -o "$out/fuzz_ckpt"
# shellcheck disable=SC2086
$cc $flags "$src/tests/fuzz/fuzz_safetensors.c" "$src/core/weights/safetensors.c" \
    $(pkg-config --cflags --libs json-c) -o "$out/fuzz_safetensors"
# The whole core but the Vulkan backend (fuzz_graph.c stands in for it).
# shellcheck disable=SC2086
$cc $flags "$src/tests/fuzz/fuzz_graph.c" "$src"/core/*.c "$src"/core/cpu/*.c "$src"/core/models/*.c \
    "$src"/core/weights/*.c $(pkg-config --cflags --libs json-c) -lm -lpthread -o "$out/fuzz_graph"

/usr/bin/python3 "$src/tests/fuzz/make_seeds.py" "$out/seeds"

status=0
for t in pickle ckpt safetensors graph; do
    dict=
    case $t in
    pickle | ckpt) dict=-dict=$out/seeds/pickle.dict ;;
    safetensors) dict=-dict=$out/seeds/safetensors.dict ;;
    graph) dict=-dict=$out/seeds/graph.dict ;;
    esac
    mkdir -p "$out/corpus-$t"
    log=$out/fuzz_$t.log
    if "$out/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$out/crash-$t-" "$dict" \
        "$out/corpus-$t" "$out/seeds/$t" >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
    echo "fuzz_$t: $result, ${execs:-?} executions in ${secs} s, $cov"
    if [ $result = FAILED ]; then
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written|Assertion' "$log" | head -n 20
        echo "(full log: $log)"
    fi
done
exit $status
