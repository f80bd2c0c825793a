#!/usr/bin/env bash
# Tests the avx512 kernel path on a machine without AVX-512: builds the native
# extension with FASTDENSE_EMULATE_AVX512=ON (the 16-lane code of
# cpp/dense_simd.inc with its AVX-512 intrinsics emulated on AVX2,
# cpp/avx512_emu.h) into its own folder and runs the tests that go through
# every ISA path with it (the C++ kernel checks, then pytest).
#
#   tools/emulate_avx512.sh                 # the ISA-parametrized tests (below)
#   tools/emulate_avx512.sh tests/test_models.py   # any pytest arguments instead
#
# Environment: PYTHON (default python3), EMULATE_DIR (default build/emulate_avx512).
# Exits 0 without testing where the CPU has AVX-512 (the real path is tested
# there) or lacks AVX2; otherwise pytest's exit status.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PYTHON=${PYTHON:-python3}
dir=${EMULATE_DIR:-$root/build/emulate_avx512}

if grep -q -w avx512f /proc/cpuinfo 2>/dev/null; then
  echo "emulate_avx512.sh: this CPU has AVX-512; its real path is what the tests run"
  exit 0
fi
if ! grep -q -w avx2 /proc/cpuinfo 2>/dev/null || ! grep -q -w fma /proc/cpuinfo; then
  echo "emulate_avx512.sh: no AVX2+FMA here to emulate with; skipped"
  exit 0
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [ $# -eq 0 ]; then
  set -- tests/test_kernels.py tests/test_column_selection.py tests/test_fused_update.py \
         tests/test_narrow_upstream.py \
         tests/test_dispatch.py
fi

start=$(date +%s)
isolation=--no-build-isolation
if ! "$PYTHON" -c "import scikit_build_core, pybind11" 2>/dev/null; then
  isolation=  # let pip fetch the build requirements
fi
rm -rf "$dir/pkg"
"$PYTHON" -m pip install -q --no-deps $isolation --target "$dir/pkg" \
  -C build-dir="$dir/cmake" \
  -C cmake.define.FASTDENSE_EMULATE_AVX512=ON \
  "$root"
echo "emulate_avx512.sh: built in $(( $(date +%s) - start )) s"

# The C++ kernel checks (every path, 1 and 2 threads) with the emulated table.
if command -v cmake >/dev/null; then
  cmake -S "$root/cpp/tests" -B "$dir/kernel_tests" -DCMAKE_BUILD_TYPE=Release \
    -DFASTDENSE_EMULATE_AVX512=ON >/dev/null
  cmake --build "$dir/kernel_tests" -j 2 >/dev/null
  "$dir/kernel_tests/kernel_bench" --check
else
  echo "emulate_avx512.sh: no cmake on PATH; the C++ kernel checks are skipped"
fi

# The pytest plugin that checks the build beside it is the one imported
# (tools/isolated_build_plugin.py).
cp "$root/tools/isolated_build_plugin.py" "$dir/pkg/fastdense_isolated_build.py"
export FASTDENSE_BUILD_TOOL=emulate_avx512.sh
export FASTDENSE_BUILD_REQUIRE_ISA=avx512

export PYTHONPATH="$dir/pkg${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
set +e
"$PYTHON" -m pytest -p fastdense_isolated_build -p no:cacheprovider -q "$@"
status=$?
set -e
echo "emulate_avx512.sh: tests ran in $(( $(date +%s) - start )) s (exit status $status)"
exit $status
