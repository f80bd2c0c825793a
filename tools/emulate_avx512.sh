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

# A pytest plugin, loaded first: drops import hooks of editable installs and
# checks that the emulating build is the one imported.
cat > "$dir/pkg/fastdense_emulated.py" <<'EOF'
import os
import sys

sys.meta_path[:] = [f for f in sys.meta_path
                    if "editable" not in (type(f).__module__ or "").lower()
                    and "Redirecting" not in type(f).__name__]
for name in [m for m in sys.modules if m == "fastdense" or m.startswith("fastdense.")]:
    del sys.modules[name]
import fastdense._core  # noqa: E402

_here = os.path.dirname(os.path.realpath(__file__))
if not os.path.realpath(fastdense._core.__file__).startswith(_here + os.sep):
    raise SystemExit(f"emulate_avx512.sh: imported {fastdense._core.__file__}, not the "
                     f"build in {_here}")
if "avx512" not in fastdense._core.available_isas().split(","):
    raise SystemExit("emulate_avx512.sh: the build does not offer the avx512 path")
print(f"emulate_avx512.sh: testing {fastdense._core.__file__} "
      f"(paths {fastdense._core.available_isas()})", file=sys.stderr)
EOF

export PYTHONPATH="$dir/pkg${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
set +e
"$PYTHON" -m pytest -p fastdense_emulated -p no:cacheprovider -q "$@"
status=$?
set -e
echo "emulate_avx512.sh: tests ran in $(( $(date +%s) - start )) s (exit status $status)"
exit $status
