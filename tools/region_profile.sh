#!/usr/bin/env bash
# Where the MNIST training step spends its time, region by region: builds the
# extension with -DFASTDENSE_PROFILE_REGIONS=ON (the pool times each parallel
# region; symbols kept) into its own folder and runs tools/region_profile.py
# with it, which prints microseconds per step per region at each thread count.
#
#   tools/region_profile.sh                          # 1 and 2 threads, 2 epochs
#   tools/region_profile.sh --threads 2 --rounds 5   # any region_profile.py arguments
#
# Environment: PYTHON (default python3), PROFILE_DIR (default build/region_profile),
# FASTDENSE_DATA (MNIST). The build is not installed anywhere else.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PYTHON=${PYTHON:-python3}
dir=${PROFILE_DIR:-$root/build/region_profile}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

isolation=--no-build-isolation
if ! "$PYTHON" -c "import scikit_build_core, pybind11" 2>/dev/null; then
  isolation=  # let pip fetch the build requirements
fi
start=$(date +%s)
rm -rf "$dir/pkg"
"$PYTHON" -m pip install -q --no-deps $isolation --target "$dir/pkg" \
  -C build-dir="$dir/cmake" \
  -C cmake.define.FASTDENSE_PROFILE_REGIONS=ON \
  "$root"
echo "region_profile.sh: built in $(( $(date +%s) - start )) s" >&2
cp "$root/tools/isolated_build_plugin.py" "$dir/pkg/fastdense_isolated_build.py"
exec "$PYTHON" "$root/tools/region_profile.py" --pkg "$dir/pkg" "$@"
