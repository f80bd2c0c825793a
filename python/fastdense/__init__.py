"""fastdense: train Keras-style dense networks several times faster.

The Keras ``Sequential`` / ``compile`` / ``fit`` API over native C++ kernels::

    import fastdense as keras
    model = keras.Sequential([keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
"""
from __future__ import annotations

import os as _os
from typing import Any, Dict

from . import _core
from ._version import __version__
from . import activations, callbacks, datasets, initializers, layers, losses, metrics
from . import models, ops, optimizers, regularizers, saving, utils
from .layers import Input
from .models import Model, Sequential
from .variables import Variable

__all__ = [
    "__version__", "activations", "callbacks", "datasets", "initializers", "layers",
    "losses", "metrics", "models", "ops", "optimizers", "regularizers", "saving", "utils", "Input", "Model",
    "Sequential", "Variable", "set_num_threads", "get_num_threads", "show_config",
    "config",
]


def set_num_threads(n: int) -> None:
    """Sets how many threads the native kernels use (default: physical cores,
    or ``FASTDENSE_NUM_THREADS``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"Expected a positive integer. Received: n={n!r}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads the native kernels use."""
    return int(_core.get_num_threads())


def config() -> Dict[str, Any]:
    """The native configuration: version, kernel ISA and thread count."""
    return {
        "version": __version__,
        "isa": _core.kernel_isa(),
        "available_isas": _core.available_isas().split(","),
        "num_threads": get_num_threads(),
        "FASTDENSE_ISA": _os.environ.get("FASTDENSE_ISA"),
        "FASTDENSE_NUM_THREADS": _os.environ.get("FASTDENSE_NUM_THREADS"),
    }


def show_config() -> None:
    """Prints the native configuration (see ``config()``)."""
    for k, v in config().items():
        print(f"{k}: {v}")
