#!/usr/bin/env bash
# Runs the Python test suite on 64-bit Arm (aarch64 Linux) under qemu's user
# mode: Debian's arm64 Python 3.11 and numpy, extracted into a folder (not
# installed), the extension built by tools/cross_build_arm.sh, and pytest's
# pure-Python packages copied from this machine's interpreter. The portable
# kernel path is the only one there, as on a real Arm machine; what this
# does not show is speed (every instruction is emulated).
#
#   tools/cross_build_arm.sh        # builds build/cross_arm/_core.so (and runs
#                                   # the kernel checks under qemu)
#   tools/arm_pytest.sh             # the whole suite
#   tools/arm_pytest.sh tests/test_models.py -x    # any pytest arguments
#
# Needs (Debian, as root, once): apt-get install qemu-user-static
# libc6-arm64-cross; dpkg --add-architecture arm64 && apt-get update (the
# arm64 packages are downloaded, not installed). Environment: PYTHON (the
# host interpreter whose pytest is copied, default python3), ARM_DIR (default
# build/arm_root), FASTDENSE_DATA (MNIST; unset, those tests skip). It runs
# HEAD's tests and Python package (a clone) with the extension built from the
# working tree. Not part of .ci/run: it downloads ~60 MB and takes ~15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PYTHON=${PYTHON:-python3}
dir=${ARM_DIR:-$root/build/arm_root}
so=$root/build/cross_arm/_core.so
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
[ -n "$qemu" ] || { echo "arm_pytest.sh: no qemu-aarch64(-static) on PATH" >&2; exit 2; }
[ -f "$so" ] || { echo "arm_pytest.sh: $so missing: run tools/cross_build_arm.sh" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
sysroot=$dir/sysroot
site=$dir/site

if [ ! -x "$sysroot/usr/bin/python3.11" ]; then
  mkdir -p "$dir/debs" "$sysroot"
  (cd "$dir/debs" && for p in python3.11-minimal libpython3.11-minimal libpython3.11-stdlib \
      python3-numpy libc6 libexpat1 zlib1g libffi8 libssl3 libbz2-1.0 liblzma5 libsqlite3-0 \
      libstdc++6 libgcc-s1 libgfortran5 libncursesw6 libtinfo6 libreadline8 libuuid1 libcrypt1 \
      libnsl2 libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 \
      libkeyutils1 libdb5.3 libgdbm6 libblas3 liblapack3 libopenblas0-pthread; do
    apt-get download -q "$p:arm64" >/dev/null
  done)
  for f in "$dir"/debs/*.deb; do dpkg -x "$f" "$sysroot"; done
  # (update-alternatives would link these when installed)
  lib=$sysroot/usr/lib/aarch64-linux-gnu
  ln -sf openblas-pthread/libblas.so.3 "$lib/libblas.so.3"
  ln -sf openblas-pthread/liblapack.so.3 "$lib/liblapack.so.3"
  ln -sf openblas-pthread/libopenblas.so.0 "$lib/libopenblas.so.0"
fi

rm -rf "$site" && mkdir -p "$site"
host_site=$("$PYTHON" -c "import pytest, os; print(os.path.dirname(os.path.dirname(pytest.__file__)))")
for m in _pytest pytest pluggy iniconfig packaging pygments py.py; do
  [ -e "$host_site/$m" ] && cp -r "$host_site/$m" "$site/"
done
cp -r "$host_site"/pytest-*.dist-info "$host_site"/pluggy-*.dist-info "$site/"
# The suite runs from a clone of HEAD, where no ../shared holds MNIST: its
# tests skip unless FASTDENSE_DATA names the folder (each MNIST epoch takes
# minutes under emulation).
rm -rf "$dir/repo" && git clone -q "$root" "$dir/repo"
cp -r "$dir/repo/python/fastdense" "$site/"
find "$site/fastdense" -name '*.so' -delete
cp "$so" "$site/fastdense/_core.cpython-311-aarch64-linux-gnu.so"

# The tests that start a Python child are left out: the child would be an
# arm64 binary, which runs only through qemu (without binfmt_misc, exec
# fails: "Exec format error").
cd "$dir/repo"
PYTHONPATH=$site exec "$qemu" -L "$sysroot" "$sysroot/usr/bin/python3.11" -m pytest \
  -p no:cacheprovider \
  --deselect tests/test_bench.py::test_bench_reexec_sets_numpy_threads \
  --deselect tests/test_dispatch.py::test_env_variables_are_honoured \
  --deselect tests/test_robustness.py::test_sigint_to_a_training_process_stops_it_promptly \
  --deselect tests/test_tools.py::test_package_build_prints_no_region_profile \
  "${@:-tests}"
