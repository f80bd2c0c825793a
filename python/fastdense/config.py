"""``keras.config`` for fastdense: the global settings, as a module.

    import fastdense as keras
    keras.config.floatx()              # "float32"
    keras.config.epsilon()             # 1e-07
    keras.config.backend()             # "numpy" (see fastdense.backend)

Calling the module itself, ``fastdense.config()``, still returns fastdense's
native configuration (version, kernel ISA, threads), as it did before this
module existed; ``fastdense.show_config()`` prints it.
"""
from __future__ import annotations

import os as _os
import sys as _sys
import types as _types
from typing import Any, Dict

from .backend import (backend, epsilon, floatx, image_data_format, set_epsilon,  # noqa: F401
                      set_floatx, set_image_data_format)

__all__ = [
    "backend", "epsilon", "set_epsilon", "floatx", "set_floatx", "image_data_format",
    "set_image_data_format", "enable_unsafe_deserialization", "native_config",
]

_unsafe_deserialization = False


def enable_unsafe_deserialization() -> None:
    """Keras's switch for loading lambdas stored in ``.keras`` files.  It is
    accepted and recorded, but changes nothing: fastdense never executes code
    read from a file, with or without ``safe_mode``; pass your functions in
    ``custom_objects`` instead."""
    global _unsafe_deserialization
    _unsafe_deserialization = True


def native_config() -> Dict[str, Any]:
    """The native configuration: version, kernel ISA, thread count, and how
    fit / evaluate / predict treat subnormal floats."""
    from . import _core
    from ._version import __version__
    return {
        "version": __version__,
        "isa": _core.kernel_isa(),
        "available_isas": _core.available_isas().split(","),
        "num_threads": int(_core.get_num_threads()),
        "FASTDENSE_ISA": _os.environ.get("FASTDENSE_ISA"),
        "FASTDENSE_NUM_THREADS": _os.environ.get("FASTDENSE_NUM_THREADS"),
        # (as Keras's TensorFlow and JAX backends compute; the caller's own
        # floating-point mode is restored after each call)
        "subnormals": ("flushed to zero in native computation" if _core.flushes_subnormals()
                       else "kept (IEEE)"),
    }


class _CallableModule(_types.ModuleType):
    """``fastdense.config`` is a module (like ``keras.config``) that can also
    be called, for the ``fastdense.config()`` of earlier versions."""

    def __call__(self) -> Dict[str, Any]:
        return native_config()


_sys.modules[__name__].__class__ = _CallableModule
