"""Utilities: ``to_categorical`` and ``set_random_seed``."""
from __future__ import annotations

import random
from typing import Any, Optional

import numpy as np

__all__ = ["to_categorical", "set_random_seed"]


def to_categorical(x: Any, num_classes: Optional[int] = None) -> np.ndarray:
    """One-hot encodes integer class ids: ``(n,)`` -> float32 ``(n, num_classes)``.

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
    out = np.zeros((x.size, num_classes), dtype=np.float32)
    out[np.arange(x.size), x] = 1.0
    return out.reshape(tuple(shape) + (num_classes,))


def set_random_seed(seed: int) -> None:
    """Seeds Python's, numpy's and so fastdense's random numbers (weight
    initialisation and the per-epoch shuffle), like ``keras.utils.set_random_seed``."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % (2**32))
