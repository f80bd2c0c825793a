"""fastdense: train Keras-style dense networks several times faster.

The Keras ``Sequential`` / ``compile`` / ``fit`` API over native C++ kernels::

    import fastdense as keras
    model = keras.Sequential([keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
"""
from __future__ import annotations

from . import _core
from ._version import __version__
from . import activations, callbacks, datasets, initializers, layers, losses, metrics
from . import models, ops, optimizers, random, regularizers, saving, utils
from . import backend, config
from .initializers import Initializer
from .layers import Input, InputSpec, Layer
from .losses import Loss
from .metrics import Metric
from .models import Model, Sequential
from .optimizers import Optimizer
from .regularizers import Regularizer
from .variables import Variable

__all__ = [
    "__version__", "activations", "backend", "callbacks", "datasets", "initializers", "layers",
    "losses", "metrics", "models", "ops", "optimizers", "random", "regularizers", "saving", "utils",
    "Input", "Model",
    "Sequential", "Variable", "set_num_threads", "get_num_threads", "show_config",
    "config", "version", "Layer", "Loss", "Metric", "Optimizer", "Initializer", "Regularizer",
    "InputSpec",
]


def version() -> str:
    """fastdense's version (as ``keras.version()``)."""
    return __version__


def set_num_threads(n: int) -> None:
    """Sets how many threads the native kernels use (default: physical cores,
    or ``FASTDENSE_NUM_THREADS``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"Expected a positive integer. Received: n={n!r}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads the native kernels use."""
    return int(_core.get_num_threads())


# `config` is the module fastdense/config.py (Keras's keras.config: floatx(),
# epsilon(), ...); calling it, `fastdense.config()`, returns the native
# configuration: version, kernel ISA and thread count.


def show_config() -> None:
    """Prints the native configuration (see ``config()``)."""
    for k, v in config.native_config().items():
        print(f"{k}: {v}")
