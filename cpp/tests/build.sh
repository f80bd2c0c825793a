#!/bin/sh
# Builds and runs the kernel checks + benchmarks.
#   cpp/tests/build.sh            correctness on all paths, then timings
#   cpp/tests/build.sh --check    correctness only
#   cpp/tests/build.sh --bench    timings only
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD_DIR:-/tmp/fastdense_kernel_build}
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2 >/dev/null
"$build/kernel_bench" "$@"
