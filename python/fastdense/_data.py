"""Checking and converting user arrays at the API boundary.

Every failure names the argument, what was expected and what was received.
Conversions avoid copies when the input is already float32 and C-contiguous.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from . import losses as _losses


def _array(value: Any, name: str) -> np.ndarray:
    if value is None:
        raise ValueError(f"Argument `{name}` must be provided. Received: {name}=None")
    try:
        arr = np.asarray(value)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"Argument `{name}` could not be converted to an array: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"Argument `{name}` must hold numbers (bool, int or float). "
            f"Received: {name} with dtype={arr.dtype}")
    return arr


def features(value: Any, name: str = "x", input_dim: Optional[int] = None) -> np.ndarray:
    """A (samples, features) float32 C-contiguous array with finite values."""
    arr = _array(value, name)
    if arr.ndim != 2:
        hint = ""
        if arr.ndim > 2:
            hint = (f" Flatten each sample first, e.g. {name}.reshape(len({name}), -1).")
        elif arr.ndim == 1:
            hint = f" For one feature per sample use {name}.reshape(-1, 1)."
        raise ValueError(f"Argument `{name}` must be a 2D array of shape (samples, features). "
                         f"Received: {name}.shape={arr.shape}.{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"Argument `{name}` is empty. Received: {name}.shape={arr.shape}")
    if input_dim is not None and arr.shape[1] != input_dim:
        raise ValueError(
            f"Input 0 of the model is incompatible: expected axis -1 of `{name}` to have "
            f"value {input_dim}, but received input with shape {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"Argument `{name}` contains NaN or infinite values.")
    return out


def targets(value: Any, n: int, units: int, loss_code: Optional[int],
            name: str = "y") -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Converts labels for the given loss.

    Returns (y_user, y_dense, labels): the user's array (for Python metrics),
    float32 (n, units) targets for dense losses, int32 (n,) ids for sparse.
    """
    arr = _array(value, name)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(
            f"Arguments `x` and `{name}` must have the same number of samples. "
            f"Received: x.shape[0]={n}, {name}.shape={arr.shape}")
    if not np.isfinite(arr.astype(np.float64, copy=False)).all():
        raise ValueError(f"Argument `{name}` contains NaN or infinite values.")
    if loss_code == _losses.SCCE:
        lab = arr[..., 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr
        if lab.ndim != 1:
            raise ValueError(
                f"sparse_categorical_crossentropy expects integer class ids of shape "
                f"(samples,) or (samples, 1). Received: {name}.shape={arr.shape}"
                + (". For one-hot labels use categorical_crossentropy."
                   if arr.ndim == 2 and arr.shape[1] == units else ""))
        if lab.dtype.kind == "f" and not np.all(lab == np.floor(lab)):
            raise ValueError(f"Argument `{name}` must hold integer class ids for "
                             f"sparse_categorical_crossentropy; it has fractional values.")
        if lab.min() < 0 or lab.max() >= units:
            raise ValueError(
                f"Argument `{name}` holds class ids outside [0, {units}) for a model with "
                f"{units} outputs. Received: min={lab.min()}, max={lab.max()}")
        return arr, None, np.ascontiguousarray(lab, dtype=np.int32)
    dense = arr
    if dense.ndim == 1:
        dense = dense.reshape(-1, 1)
    if dense.ndim == 2 and dense.shape[1] == 1 and units > 1 and loss_code != _losses.CCE:
        # one target per sample against several outputs: Keras broadcasts it
        # across the outputs in the elementwise losses (mse, binary crossentropy)
        dense = np.broadcast_to(dense, (n, units))
    if dense.ndim != 2 or dense.shape[1] != units:
        hint = ""
        if loss_code == _losses.CCE and dense.shape[1] == 1 and units > 1:
            hint = (" categorical_crossentropy expects one-hot labels: use "
                    "fastdense.utils.to_categorical(y), or the loss "
                    "sparse_categorical_crossentropy for integer labels.")
        raise ValueError(
            f"Argument `{name}` must have shape (samples, {units}) to match the model's "
            f"output. Received: {name}.shape={arr.shape}.{hint}")
    return arr, np.ascontiguousarray(dense, dtype=np.float32), None


def batch_size(value: Any, default: int = 32, name: str = "batch_size") -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Argument `{name}` must be a positive integer. "
                         f"Received: {name}={value!r}")
    return int(value)


def verbose(value: Any) -> int:
    if value == "auto":
        return 1
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError(f"Argument `verbose` must be 'auto', 0, 1 or 2. Received: verbose={value!r}")
    return int(value)


def sample_weights(sample_weight: Any, class_weight: Any, y_user: np.ndarray,
                   n: int) -> Optional[np.ndarray]:
    """Per-sample loss weights as float32 (n,), from ``sample_weight`` or from
    ``class_weight`` (a dict class id -> weight, classes from one-hot argmax
    or the labels; missing classes weigh 1), as Keras derives them."""
    if class_weight is not None and sample_weight is not None:
        raise ValueError("You cannot `class_weight` and `sample_weight` at the same time.")
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise ValueError("Argument `class_weight` must be a dict mapping class ids to "
                             f"weights. Received: class_weight={class_weight!r}")
        y = np.asarray(y_user)
        if y.ndim > 1:
            y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[..., 0]
        ids = np.round(y).astype(np.int64).reshape(-1)
        out = np.ones(n, np.float32)
        for cls, w in class_weight.items():
            out[ids == int(cls)] = float(w)
        return out
    if sample_weight is None:
        return None
    sw = _array(sample_weight, "sample_weight")
    if sw.ndim == 2 and sw.shape[1] == 1:
        sw = sw[:, 0]
    if sw.ndim != 1 or sw.shape[0] != n:
        raise ValueError(f"Argument `sample_weight` must have shape ({n},), one weight per "
                         f"sample. Received: sample_weight.shape={sw.shape}")
    out = np.ascontiguousarray(sw, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ValueError("Argument `sample_weight` contains NaN or infinite values.")
    return out
