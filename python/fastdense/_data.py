"""Checking and converting user arrays at the API boundary.

Every failure names the argument, what was expected and what was received.
Conversions avoid copies when the input is already float32 and C-contiguous.
"""
from __future__ import annotations

import itertools
import warnings
from typing import Any, List, Optional, Tuple

import numpy as np

from . import _core
from . import losses as _losses

_RAGGED_WARNING = (np.exceptions.VisibleDeprecationWarning if hasattr(np, "exceptions")
                   else np.VisibleDeprecationWarning)  # type: ignore[attr-defined]
# (np.VisibleDeprecationWarning: numpy < 1.25, where np.exceptions does not exist)


def dense(value: Any) -> Any:
    """A scipy.sparse matrix (e.g. TF-IDF features) densified, as Keras's JAX
    and torch backends take it; anything else as it is."""
    return value.toarray() if hasattr(value, "toarray") and hasattr(value, "nnz") else value


def _array(value: Any, name: str) -> np.ndarray:
    if value is None:
        raise ValueError(f"Argument `{name}` must be provided. Received: {name}=None")
    value = dense(value)
    try:
        if isinstance(value, (list, tuple)):
            # (numpy < 1.24 makes an object array of a ragged list, with a
            # VisibleDeprecationWarning, where newer numpy raises: the same
            # error on both)
            with warnings.catch_warnings():
                warnings.simplefilter("error", _RAGGED_WARNING)
                arr = np.asarray(value)
        else:
            arr = np.asarray(value)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"Argument `{name}` could not be converted to an array: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"Argument `{name}` must hold numbers (bool, int or float). "
            f"Received: {name} with dtype={arr.dtype}")
    return arr


def _all_finite(arr: np.ndarray) -> bool:
    """True when no element is NaN or infinite, without a temporary as large
    as the array: float32 / float64 in one native pass over the thread pool
    (60000 MNIST images: ~4 ms, where numpy's min and max took ~12 ms on one
    core), other floats through min and max (they propagate NaN and expose
    infinities)."""
    if arr.size == 0 or arr.dtype.kind not in "fc":
        return True
    if (arr.dtype in (np.float32, np.float64) and arr.flags.c_contiguous
            and arr.flags.aligned):
        return _core.all_finite(arr)
    return bool(np.isfinite(arr.min()) and np.isfinite(arr.max()))


def _engine_array(arr: np.ndarray, dtype: Any) -> np.ndarray:
    """``arr`` as a C-contiguous, aligned array of ``dtype``: the array itself
    when it already is one, else one copy."""
    with np.errstate(over="ignore"):  # overflow to inf is reported by the caller
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not out.flags.aligned:  # e.g. np.frombuffer at an odd offset
        out = out.copy()
    return out


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
    if arr.shape[1] == 0:
        raise ValueError(f"Argument `{name}` has no features (0 columns). "
                         f"Received: {name}.shape={arr.shape}")
    out = _engine_array(arr, np.float32)
    if not _all_finite(out):
        if _all_finite(arr):
            raise ValueError(f"Argument `{name}` holds values too large for float32 (the "
                             f"engine's precision): they overflow to infinity.")
        raise ValueError(f"Argument `{name}` contains NaN or infinite values.")
    return out


def targets(value: Any, n: int, units: int, loss_code: Optional[int],
            name: str = "y", batch_size: Optional[int] = None
            ) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Converts labels for the given loss (``batch_size``: the batches the
    labels will be cut into, None for one batch of all ``n``).

    Returns (y_user, y_dense, labels): the user's array (for Python metrics),
    float32 (n, units) targets for dense losses, int32 (n,) ids for sparse.
    """
    arr = _array(value, name)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(
            f"Arguments `x` and `{name}` must have the same number of samples. "
            f"Received: x.shape[0]={n}, {name}.shape={arr.shape}")
    if not _all_finite(arr):
        raise ValueError(f"Argument `{name}` contains NaN or infinite values.")
    if loss_code == _losses.SCCE:
        lab = arr[..., 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr
        if lab.ndim != 1:
            raise ValueError(
                f"sparse_categorical_crossentropy expects integer class ids of shape "
                f"(samples,) or (samples, 1). Received: {name}.shape={arr.shape}"
                + (". For one-hot labels use categorical_crossentropy."
                   if arr.ndim == 2 and arr.shape[1] == units else ""))
        if lab.min() < 0 or lab.max() >= units:
            raise ValueError(
                f"Argument `{name}` holds class ids outside [0, {units}) for a model with "
                f"{units} outputs. Received: min={lab.min()}, max={lab.max()}")
        ids = _engine_array(lab, np.int32)  # in range, so exact for integers
        # (compared without a float temporary the size of the labels)
        if lab.dtype.kind == "f" and not np.array_equal(ids, lab):
            raise ValueError(f"Argument `{name}` must hold integer class ids for "
                             f"sparse_categorical_crossentropy; it has fractional values.")
        return arr, None, ids
    dense = arr
    one_row_batches = n == 1 or batch_size == 1
    if units > 1 and loss_code in (_losses.BCE, _losses.MSE) and (
            (dense.ndim == 1 and (loss_code == _losses.BCE or not one_row_batches))
            or (loss_code == _losses.BCE and dense.ndim == 2 and dense.shape[1] == 1)):
        # As Keras: binary crossentropy needs the output's shape; the
        # elementwise losses broadcast a (samples, 1) target across the
        # outputs, but a batch of (samples,) targets broadcasts against
        # (samples, units) outputs only when it is one row (Keras's
        # EarlyStopping docstring example: 10 outputs, zeros of shape (5,),
        # batch_size=1).
        fn = "binary_crossentropy" if loss_code == _losses.BCE else "mean_squared_error"
        allowed = f"(samples, {units})" + (" or (samples, 1)" if loss_code == _losses.MSE else "")
        raise ValueError(
            f"Arguments `target` and `output` must have the same shape for {fn}: `{name}` "
            f"must have shape {allowed} for a model with {units} outputs. Received: "
            f"{name}.shape={arr.shape}, output.shape={(n, units)}")
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
    out = _engine_array(dense, np.float32)
    if not _all_finite(out):
        raise ValueError(f"Argument `{name}` holds values too large for float32 (the engine's "
                         f"precision): they overflow to infinity.")
    return arr, out, None


def batch_size(value: Any, default: int = 32, name: str = "batch_size") -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Argument `{name}` must be a positive integer. "
                         f"Received: {name}={value!r}")
    # a batch larger than the data is the whole data; cap so it fits in int64
    return int(min(int(value), 2**62))


def verbose(value: Any) -> int:
    """Keras's verbose levels: "auto" is 1, booleans and integers as Python
    reads them; as Keras, a level above 2 prints only fit's "Epoch i/N"
    headers."""
    if isinstance(value, str):
        if value == "auto":
            return 1
    elif isinstance(value, (bool, int, np.integer)) and int(value) >= 0:
        return min(int(value), 3)
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
        checked = {}
        for cls, w in class_weight.items():
            if isinstance(cls, (float, np.floating)) and float(cls).is_integer():
                cls = int(cls)  # (e.g. the keys of np.unique of float labels, as Keras)
            if isinstance(cls, (bool, np.bool_)) or not isinstance(cls, (int, np.integer)):
                raise ValueError("Argument `class_weight` must map integer class ids to "
                                 f"weights. Received the key {cls!r} ({type(cls).__name__})")
            try:
                weight = float(w)
            except (TypeError, ValueError):
                weight = float("nan")
            if not np.isfinite(weight):
                raise ValueError("Argument `class_weight` must map class ids to finite numbers. "
                                 f"Received: class_weight[{cls!r}]={w!r}")
            checked[int(cls)] = weight
        y = np.asarray(y_user)
        if y.ndim > 1:
            y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[..., 0]
        ids = np.round(y).astype(np.int64).reshape(-1)
        out = np.ones(n, np.float32)
        for cls, weight in checked.items():
            out[ids == cls] = weight
        return out
    if sample_weight is None:
        return None
    sw = _array(sample_weight, "sample_weight")
    if sw.ndim == 2 and sw.shape[1] == 1:
        sw = sw[:, 0]
    if sw.ndim != 1 or sw.shape[0] != n:
        raise ValueError(f"Argument `sample_weight` must have shape ({n},), one weight per "
                         f"sample. Received: sample_weight.shape={sw.shape}")
    out = _engine_array(sw, np.float32)
    if not _all_finite(out):
        raise ValueError("Argument `sample_weight` contains NaN or infinite values.")
    return out


# ------------------------------------------------------------------ batch streams
def is_stream(x: Any) -> bool:
    """Whether ``x`` is a stream of batches (a ``PyDataset`` / Keras ``Sequence``
    or a Python generator / iterator) rather than an array."""
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)):
        return False
    if hasattr(x, "shape") or hasattr(x, "__array__") or hasattr(x, "toarray"):
        return False  # (array-likes: tensors, DataFrames, sparse matrices)
    if hasattr(x, "__next__"):
        return True  # a generator or an iterator
    # a PyDataset (batches by index), or an iterable of batches with a length
    # (e.g. a torch DataLoader)
    return hasattr(x, "__len__") and (hasattr(x, "__getitem__") or hasattr(x, "__iter__"))


def stream_kind(x: Any) -> str:
    """How Keras names the input type in its messages."""
    if hasattr(x, "__next__"):
        return "generator"
    if hasattr(x, "__getitem__"):
        return "PyDataset"
    return "data loader"


class BatchStream:
    """Keras's data adapters for a PyDataset (batches by index, each epoch
    afresh, shuffled in order when asked) or a generator (one iterator that
    the epochs share, as Keras's)."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.iterator = hasattr(data, "__next__")  # one pass, shared by the epochs
        self.indexed = not self.iterator and hasattr(data, "__getitem__")
        self._iterator: Any = iter(data) if self.iterator else None

    @property
    def num_batches(self) -> Optional[int]:
        if self.iterator:
            return None
        if not self.indexed:
            return len(self.data)
        if hasattr(self.data, "num_batches"):  # (a PyDataset: None when it is endless)
            n = self.data.num_batches
            return None if n is None else int(n)
        return len(self.data)

    def batches(self, shuffle: bool = False, steps: Optional[int] = None) -> Any:
        """This epoch's batches (at most ``steps``)."""
        if self.indexed:
            n = self.num_batches
            if n is None and steps is None:
                raise ValueError("The PyDataset has no length (num_batches is None): pass "
                                 "`steps_per_epoch` (fit) or `steps` (evaluate / predict).")
            indices: Any = range(n) if n is not None else itertools.count()
            if shuffle and n is not None:
                indices = list(indices)
                np.random.shuffle(indices)
            for i in itertools.islice(indices, steps):
                yield self.data[i]
        else:
            if not self.iterator:  # a re-iterable (a data loader): afresh each epoch
                self._iterator = iter(self.data)
            yield from itertools.islice(self._iterator, steps)

    def on_epoch_begin(self) -> None:
        if self.indexed and hasattr(self.data, "on_epoch_begin"):
            self.data.on_epoch_begin()

    def on_epoch_end(self) -> None:
        if self.indexed and hasattr(self.data, "on_epoch_end"):
            self.data.on_epoch_end()


def unpack_batch(batch: Any) -> Tuple[Any, Any, Any]:
    """A batch as Keras's unpack_x_y_sample_weight takes it: ``x``, ``(x,)``,
    ``(x, y)`` or ``(x, y, sample_weight)`` (a list counts as a tuple)."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch, None, None
    if len(batch) not in (1, 2, 3):
        raise ValueError("Data is expected to be in format `x`, `(x,)`, `(x, y)`, or "
                         f"`(x, y, sample_weight)`, found a tuple of {len(batch)} elements")
    return (batch + (None, None))[:3]  # type: ignore[return-value]


def collect_stream(data: Any, steps: Optional[int], what: str) -> Tuple[Any, Any, Any, int]:
    """The batches of a stream (at most ``steps``) concatenated: (x, y, sample
    weights, the first batch's size), for evaluate / predict / validation."""
    stream = BatchStream(data)
    stream.on_epoch_begin()
    xs, ys, sws = [], [], []
    for batch in stream.batches(False, steps):
        x, y, sw = unpack_batch(batch)
        xs.append(x if isinstance(x, (list, tuple, dict)) else np.asarray(dense(x)))
        ys.append(y)
        sws.append(sw)
    stream.on_epoch_end()
    if not xs:
        raise ValueError(f"The data given to {what} yielded no batches.")

    def cat(parts: List[Any], name: str) -> Any:
        if all(p is None for p in parts):
            return None
        if any(p is None for p in parts):
            raise ValueError(f"Some batches given to {what} have {name} and some do not.")
        first = parts[0]
        if isinstance(first, (list, tuple, dict)):  # (several outputs' or inputs' arrays)
            keys = list(first) if isinstance(first, dict) else range(len(first))
            if any(type(p) is not type(first) or len(p) != len(first)
                   or (isinstance(p, dict) and set(p) != set(first)) for p in parts):
                raise ValueError(f"The batches given to {what} have {name} of different "
                                 "structures.")
            joined = {k: cat([p[k] for p in parts], name) for k in keys}
            return joined if isinstance(first, dict) else [joined[k] for k in keys]
        return np.concatenate([np.asarray(p) for p in parts], axis=0)
    first = xs[0]
    while isinstance(first, (list, tuple, dict)):  # (several inputs: the first's rows)
        first = next(iter(first.values())) if isinstance(first, dict) else first[0]
    return cat(xs, "x"), cat(ys, "y"), cat(sws, "sample weights"), int(np.shape(first)[0])
