#!/usr/bin/env bash
# Builds fastdense's native extension with AddressSanitizer and
# UndefinedBehaviorSanitizer (GCC or Clang) into its own folder, apart from
# any normal or editable install, and runs the kernel and engine tests with it.
#
#   tools/sanitize.sh                      # the kernel and engine tests (below)
#   tools/sanitize.sh tests/test_saving.py -k keras   # any pytest arguments instead
#
# Environment: PYTHON (default python3), CXX (default g++), SANITIZE_DIR
# (default build/sanitize; the CMake build there is reused, so a second run
# only recompiles what changed). Exit status: pytest's; any sanitizer report
# aborts the process, which fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PYTHON=${PYTHON:-python3}
CXX=${CXX:-g++}
dir=${SANITIZE_DIR:-$root/build/sanitize}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [ $# -eq 0 ]; then
  # the kernel and engine tests; the MNIST runs repeat the same paths on
  # 60,000 samples (minutes under the sanitizers) and are left out
  set -- tests/test_kernels.py tests/test_narrow_upstream.py tests/test_losses.py tests/test_optimizers.py \
         tests/test_models.py tests/test_fuzz_bindings.py tests/test_robustness.py \
         tests/test_reliability.py tests/test_activations.py tests/test_layers.py \
         tests/test_layernorm.py tests/test_prelu.py tests/test_noise_layers.py \
         tests/test_graphs.py tests/test_nested.py tests/test_shared_layers.py \
         tests/test_multi_output.py tests/test_repeated_calls.py tests/test_scalar_ops.py \
         tests/test_ema.py tests/test_grad_accumulation.py \
         -k "not mnist"
fi

san="-fsanitize=address,undefined"
cxxflags="$san -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
runtime=$("$CXX" -print-file-name=libasan.so)
if [ ! -e "$runtime" ]; then
  runtime=$("$CXX" -print-file-name=libclang_rt.asan-x86_64.so)
fi
if [ ! -e "$runtime" ]; then
  echo "sanitize.sh: no ASan runtime for $CXX (install libasan / libclang-rt-dev)" >&2
  exit 2
fi

# --- build: a regular (non-editable) install into $dir/pkg ------------------------
start=$(date +%s)
isolation=--no-build-isolation
if ! "$PYTHON" -c "import scikit_build_core, pybind11" 2>/dev/null; then
  isolation=  # let pip fetch the build requirements
fi
rm -rf "$dir/pkg"
CXX="$CXX" "$PYTHON" -m pip install -q --no-deps $isolation --target "$dir/pkg" \
  -C build-dir="$dir/cmake" \
  -C cmake.build-type=RelWithDebInfo \
  -C cmake.define.CMAKE_CXX_FLAGS="$cxxflags" \
  -C cmake.define.CMAKE_MODULE_LINKER_FLAGS="$san" \
  -C cmake.define.CMAKE_SHARED_LINKER_FLAGS="$san" \
  "$root"
echo "sanitize.sh: built with $CXX $cxxflags in $(( $(date +%s) - start )) s"

# The pytest plugin that checks the build beside it is the one imported
# (tools/isolated_build_plugin.py).
cp "$root/tools/isolated_build_plugin.py" "$dir/pkg/fastdense_isolated_build.py"
export FASTDENSE_BUILD_TOOL=sanitize.sh

# --- run -------------------------------------------------------------------------
# detect_leaks=0: CPython keeps objects alive at exit on purpose.
# allocator_may_return_null=1: absurd allocations fail (MemoryError), as they
# do without ASan, instead of aborting.
# libstdc++ is preloaded too: ASan resolves __cxa_throw when it starts, and
# python itself does not load libstdc++ (without it the first C++ throw fails
# an ASan CHECK).
cxxlib=$("$CXX" -print-file-name=libstdc++.so)
export LD_PRELOAD="$runtime:$(readlink -f "$cxxlib")${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export PYTHONPATH="$dir/pkg${PYTHONPATH:+:$PYTHONPATH}"
export FASTDENSE_SANITIZED=1  # tests may skip what ASan cannot do
start=$(date +%s)
set +e
# --capture=sys: pytest captures Python's output only, so a sanitizer's
# report (written to file descriptor 2 just before it aborts) is shown.
"$PYTHON" -m pytest -p fastdense_isolated_build -p no:cacheprovider --capture=sys -q "$@"
status=$?
set -e
echo "sanitize.sh: tests ran in $(( $(date +%s) - start )) s (exit status $status)"
exit $status
