#!/bin/sh
# Builds and runs the kernel checks + benchmarks.
#   cpp/tests/build.sh            correctness on all paths, then timings
#   cpp/tests/build.sh --check    correctness only
#   cpp/tests/build.sh --bench    timings only
#   cpp/tests/build.sh --peak     FMA peak per ISA, 1 and 2 threads
#   cpp/tests/build.sh --gemm [rounds [threads [misalign]]]  the MNIST training GEMMs
#                                 (SIMD paths, default 5 rounds, 2 threads,
#                                 arrays 64-byte aligned + misalign bytes):
#                                 GFLOP/s and % of FMA peak, medians
#   cpp/tests/build.sh --small [B...]  MNIST predict latency for small B,
#                                 back to back and after 1 ms idle
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD_DIR:-/tmp/fastdense_kernel_build}
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2 >/dev/null
"$build/kernel_bench" "$@"
