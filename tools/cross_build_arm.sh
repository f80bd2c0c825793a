#!/usr/bin/env bash
# Checks that the native code builds for 64-bit Arm (aarch64 Linux), where
# only the portable kernel path exists: every source under cpp/ but the x86
# ones (dense_avx2.cpp, dense_avx512.cpp) compiled with Zig's Clang for
# aarch64-linux-gnu, -Wall -Wextra -Werror; then linked twice: the extension
# as a shared object (Python's symbols left to the interpreter, as a real
# build does) and the C++ kernel checks (cpp/tests/kernel_bench.cpp) as an
# executable, which runs (`--check`) where qemu-aarch64 is on PATH.
#
#   tools/cross_build_arm.sh
#
# Environment: PYTHON (default python3), CROSS_DIR (default build/cross_arm).
# Needs network access once: pip installs ziglang and pybind11 into
# $CROSS_DIR/venv. Not part of .ci/run (it would add that download); run it
# after changing what the generic path or the dispatcher compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PYTHON=${PYTHON:-python3}
dir=${CROSS_DIR:-$root/build/cross_arm}
mkdir -p "$dir/obj"
dir=$(cd "$dir" && pwd)

if [ ! -x "$dir/venv/bin/python" ] || ! "$dir/venv/bin/python" -c "import ziglang, pybind11" 2>/dev/null; then
  "$PYTHON" -m venv "$dir/venv"
  "$dir/venv/bin/python" -m pip install -q ziglang pybind11
fi
zig=("$dir/venv/bin/python" -m ziglang)
pybind_inc=$("$dir/venv/bin/python" -c "import pybind11; print(pybind11.get_include())")
py_inc=$("$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
target=aarch64-linux-gnu
flags=(-target "$target" -std=c++17 -O2 -fPIC -Wall -Wextra -Werror -Icpp)
# (as CMake compiles them: every source this builds is a baseline one, which
# cpp/kernels.cmake and CMakeLists.txt give -ffp-contract=off; the engine's
# and fused_update.cpp also -fno-math-errno)
base_flags=(-ffp-contract=off -fno-math-errno)

objs=()
for src in cpp/*.cpp; do
  name=$(basename "$src" .cpp)
  case $name in dense_avx2 | dense_avx512) continue ;; esac
  extra=()
  [ "$name" = bindings ] && extra=(-I"$pybind_inc" -I"$py_inc")
  "${zig[@]}" c++ "${flags[@]}" "${base_flags[@]}" "${extra[@]}" -c "$src" -o "$dir/obj/$name.o"
  objs+=("$dir/obj/$name.o")
done
kernel_objs=()
for o in "${objs[@]}"; do
  case $(basename "$o") in bindings.o | network.o | optimizers.o | losses.o | metrics.o | \
      activations.o | batchnorm.o | constraints.o | regularizers.o | finite.o) ;;
    *) kernel_objs+=("$o") ;;
  esac
done
"${zig[@]}" c++ -target "$target" -shared -o "$dir/_core.so" "${objs[@]}" \
  -Wl,--allow-shlib-undefined -Wl,-z,undefs
"${zig[@]}" c++ "${flags[@]}" -c cpp/tests/kernel_bench.cpp -o "$dir/obj/kernel_bench.o"
"${zig[@]}" c++ -target "$target" -o "$dir/kernel_bench" "$dir/obj/kernel_bench.o" \
  "${kernel_objs[@]}" -lpthread
echo "cross_build_arm.sh: ${#objs[@]} sources compiled for $target; _core.so and kernel_bench linked"
qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
if [ -n "$qemu" ]; then
  "$qemu" -L /usr/aarch64-linux-gnu "$dir/kernel_bench" --check
else
  echo "cross_build_arm.sh: no qemu-aarch64 on PATH: built, not run"
fi
