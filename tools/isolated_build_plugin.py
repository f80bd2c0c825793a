"""pytest plugin for the tools that test a build of their own (sanitize.sh,
emulate_avx512.sh): copied next to that build as ``fastdense_isolated_build.py``
and loaded first (``-p fastdense_isolated_build``). It drops the import hooks of
editable installs (they would serve the normal build), checks that
``fastdense._core`` comes from the build beside it and, with
FASTDENSE_BUILD_REQUIRE_ISA set, that the build offers that kernel path.
FASTDENSE_BUILD_TOOL names the tool in its messages."""
import os
import sys

_tool = os.environ.get("FASTDENSE_BUILD_TOOL", "isolated build")
sys.meta_path[:] = [f for f in sys.meta_path
                    if "editable" not in (type(f).__module__ or "").lower()
                    and "Redirecting" not in type(f).__name__]
for name in [m for m in sys.modules if m == "fastdense" or m.startswith("fastdense.")]:
    del sys.modules[name]
import fastdense._core  # noqa: E402

_here = os.path.dirname(os.path.realpath(__file__))
if not os.path.realpath(fastdense._core.__file__).startswith(_here + os.sep):
    raise SystemExit(f"{_tool}: imported {fastdense._core.__file__}, not the build in {_here}")
_isas = fastdense._core.available_isas()
_need = os.environ.get("FASTDENSE_BUILD_REQUIRE_ISA")
if _need and _need not in _isas.split(","):
    raise SystemExit(f"{_tool}: the build does not offer the {_need} path (paths {_isas})")
print(f"{_tool}: testing {fastdense._core.__file__} "
      f"(kernels {fastdense._core.kernel_isa()}, paths {_isas})", file=sys.stderr)
