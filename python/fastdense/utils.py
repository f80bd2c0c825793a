"""Utilities: ``to_categorical``, ``normalize``, ``set_random_seed``, ``get_file``,
and Keras's ``clear_session``, ``Progbar`` and custom-object registry under
``keras.utils``."""
from __future__ import annotations

import random
from typing import Any, Optional

import numpy as np

from ._files import get_file
from ._progbar import Progbar
from ._visualization import model_to_dot, plot_model
from ._sequences import pack_x_y_sample_weight, pad_sequences, unpack_x_y_sample_weight
from ._registry import (CustomObjectScope, custom_object_scope, get_custom_objects,
                        get_registered_name, get_registered_object, register_keras_serializable)

__all__ = ["to_categorical", "normalize", "set_random_seed", "plot_history", "clear_session",
           "Progbar", "register_keras_serializable", "get_registered_name",
           "get_registered_object", "get_custom_objects", "custom_object_scope",
           "CustomObjectScope", "PyDataset", "Sequence", "get_file", "pad_sequences",
           "pack_x_y_sample_weight", "unpack_x_y_sample_weight", "is_keras_tensor",
           "get_source_inputs", "model_to_dot", "plot_model"]


class PyDataset:
    """Keras's ``keras.utils.PyDataset``: a dataset of batches by index.
    Subclasses implement ``__len__`` (the number of batches) and
    ``__getitem__(index)`` (``x``, ``(x, y)`` or ``(x, y, sample_weight)``),
    and optionally ``on_epoch_begin`` / ``on_epoch_end``. ``fit`` /
    ``evaluate`` / ``predict`` take it as ``x``; the batches are read in the
    calling thread (``workers`` / ``use_multiprocessing`` / ``max_queue_size``
    are accepted and kept, as Keras's attributes)."""

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10) -> None:
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def num_batches(self) -> Optional[int]:
        """The number of batches (``len(self)``), or None when unknown."""
        try:
            return len(self)
        except NotImplementedError:
            return None

    def on_epoch_begin(self) -> None:
        """Called at the start of each epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of each epoch."""


Sequence = PyDataset  # (Keras 3's keras.utils.Sequence is PyDataset)


def clear_session(free_memory: bool = True) -> None:
    """Keras's ``keras.utils.clear_session``: default names start again."""
    from .backend import clear_session as _clear
    _clear(free_memory)


def to_categorical(x: Any, num_classes: Optional[int] = None) -> np.ndarray:
    """One-hot encodes integer class ids: ``(n,)`` -> ``(n, num_classes)``,
    float64 as Keras's (the engine trains on a float32 copy).

    A trailing axis of size 1 is dropped first, as in Keras.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"Argument `x` must hold integer class ids. Received: dtype={x.dtype}")
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)) or not np.all(x == np.floor(x)):
            raise ValueError("Argument `x` must hold integer class ids; it has "
                             "fractional, NaN or infinite values.")
    x = x.astype(np.int64)
    shape = x.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    x = x.reshape(-1)
    if x.size and x.min() < 0:
        raise ValueError(f"Argument `x` must hold non-negative class ids. Received: min={x.min()}")
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    elif x.size and x.max() >= num_classes:
        raise ValueError(f"Argument `x` holds class id {x.max()}, which is not smaller than "
                         f"num_classes={num_classes}")
    out = np.zeros((x.size, num_classes))
    out[np.arange(x.size), x] = 1.0
    return out.reshape(tuple(shape) + (num_classes,))


def normalize(x: Any, axis: int = -1, order: int = 2) -> np.ndarray:
    """``keras.utils.normalize``: ``x`` divided by its ``order``-norm along
    ``axis`` (zero norms left at 1), computed as Keras computes it for numpy
    arrays."""
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    axis = axis or -1
    return x / np.expand_dims(norm, axis)


def set_random_seed(seed: int) -> None:
    """Seeds Python's, numpy's and so fastdense's random numbers (weight
    initialisation and the per-epoch shuffle), like ``keras.utils.set_random_seed``."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % (2**32))


def plot_history(history: Any, path: Optional[str] = None, metrics: Optional[list] = None) -> Any:
    """Draws the loss and metric curves of a ``History`` (or its ``.history``
    dict): one panel per quantity, training and ``val_`` curves together.

    Saves to ``path`` when given (the format follows the extension) and
    returns the matplotlib Figure. Needs matplotlib (``pip install
    fastdense[plot]``).
    """
    try:
        import matplotlib
        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plot_history needs matplotlib, an optional extra: "
                          "pip install matplotlib (or pip install fastdense[plot])") from e
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError("Argument `history` must be a History or a non-empty dict of lists. "
                         f"Received: {type(history).__name__}")
    names = [k for k in logs if not k.startswith("val_")]
    names += [k[4:] for k in logs if k.startswith("val_") and k[4:] not in names]
    if metrics is not None:
        names = [k for k in names if k in metrics]
    epochs = getattr(history, "epoch", None)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for key, label in ((name, "train"), ("val_" + name, "validation")):
            if key in logs:
                values = logs[key]
                xs = (epochs if epochs is not None and len(epochs) == len(values)
                      else range(len(values)))
                ax.plot([e + 1 for e in xs], values, marker="o", label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def is_keras_tensor(x: Any) -> bool:
    """Whether x is a symbolic tensor (``Input()`` or a layer's output on one)."""
    from .layers import KerasTensor
    return isinstance(x, KerasTensor)


def get_source_inputs(tensor: Any) -> Any:
    """The ``Input`` tensors a symbolic tensor is computed from (a list, each
    once, in the order first reached), as ``keras.utils.get_source_inputs``;
    anything else is returned as it is."""
    from .layers import KerasTensor
    if not isinstance(tensor, KerasTensor):
        return tensor
    found: list = []
    stack = [tensor]
    seen = set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        hist = t._history
        if hist is None:
            if all(t is not f for f in found):
                found.append(t)
            continue
        inputs = hist[1]
        parents = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        stack.extend(reversed([p for p in parents if isinstance(p, KerasTensor)]))
    return found
