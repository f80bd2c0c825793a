#!/usr/bin/env bash
# The test suite against the oldest numpy 1.x that has wheels for this
# Python (pyproject declares numpy>=1.22), in a fresh venv beside the main one:
# numpy 1.x's value-based casting and its ragged-list handling differ from
# numpy 2's, and the library must give the same results and errors on both.
#
#   tools/numpy_floor.sh                 # all of tests/
#   tools/numpy_floor.sh tests/test_x.py # any pytest arguments
#
# Environment: PYTHON (default python3), FASTDENSE_DATA as for the suite.
# Python 3.13 and newer have no numpy 1.x wheels: nothing to run there. If the
# numpy cannot be installed (no index), it says so and exits 0; a test that
# fails exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PYTHON=${PYTHON:-python3}
case $("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') in
  3.9 | 3.10) numpy=1.22.4 ;;
  3.11) numpy=1.23.5 ;;
  3.12) numpy=1.26.4 ;;
  *) echo "numpy_floor.sh: no numpy 1.x wheels for this Python: skipped"; exit 0 ;;
esac
venv=$(mktemp -d /tmp/fastdense-numpy-floor.XXXXXX)
trap 'rm -rf "$venv"' EXIT
"$PYTHON" -m venv "$venv"
if ! "$venv/bin/python" -m pip install -q "numpy==$numpy" pytest; then
  echo "numpy_floor.sh: numpy==$numpy could not be installed: skipped"
  exit 0
fi
"$venv/bin/python" -m pip install -q "$root"
"$venv/bin/python" -c "import numpy; assert numpy.__version__ == '$numpy', numpy.__version__"
echo "numpy_floor.sh: the suite with numpy $numpy"
# (the package under test is the installed one: the sources sit in python/)
"$venv/bin/python" -m pytest -q -p no:cacheprovider "${@:-tests}"
