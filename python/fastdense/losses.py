"""Losses with Keras 3's names, formulas and reduction.

Built-in losses run natively (fused with the output activation where Keras's
math allows); these numpy versions compute the same values for direct calls,
``evaluate`` with custom pieces and tests.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from ._autodiff import squeeze_or_expand_to_same_rank
from ._naming import snake_case

__all__ = [
    "Loss", "LossFunctionWrapper", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "BinaryCrossentropy", "MeanSquaredError", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "binary_crossentropy", "mean_squared_error",
    "get", "serialize",
]

EPSILON = 1e-7
_REDUCTIONS = (None, "none", "sum", "sum_over_batch_size", "mean", "mean_with_sample_weight")

# Native loss codes (cpp/losses.h, enum LossKind).
CCE, SCCE, BCE, MSE = 0, 1, 2, 3


def _f32(x: Any) -> Any:
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        return np.asarray(x, dtype=np.float32)
    return x  # traced values (fastdense.ops) pass through


def _match_rank(y_true: Any, y_pred: Any) -> Tuple[Any, Any]:
    """Keras's squeeze_or_expand_to_same_rank (e.g. (batch,) vs (batch, 1))."""
    return squeeze_or_expand_to_same_rank(y_true, y_pred)


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """Per-sample categorical crossentropy, shape ``y_pred.shape[:-1]``."""
    y_true, y_pred = _f32(y_true), _f32(y_pred)
    if label_smoothing:
        n = np.shape(y_pred)[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / n
    if from_logits:
        shifted = y_pred - np.max(y_pred, axis=axis, keepdims=True)
        log_prob = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        return -np.sum(y_true * log_prob, axis=axis)
    out = y_pred / np.sum(y_pred, axis=axis, keepdims=True)
    out = np.clip(out, EPSILON, 1.0 - EPSILON)
    return -np.sum(y_true * np.log(out), axis=axis)


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                                    ignore_class: Optional[int] = None, axis: int = -1) -> Any:
    """Per-sample crossentropy with integer labels of shape (batch,) or (batch, 1)."""
    if ignore_class is not None:
        raise NotImplementedError("sparse_categorical_crossentropy(ignore_class=...) is not "
                                  f"supported by fastdense yet. Received: ignore_class={ignore_class}")
    labels = np.asarray(y_true)
    if labels.ndim == np.ndim(y_pred) and labels.shape[-1] == 1:
        labels = labels[..., 0]
    n = np.shape(y_pred)[axis]
    one_hot = (labels.astype(np.int64)[..., None] == np.arange(n)).astype(np.float32)
    return categorical_crossentropy(one_hot, y_pred, from_logits=from_logits, axis=axis)


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                        label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """Per-sample binary crossentropy, the mean over ``axis``."""
    y_true, y_pred = _f32(y_true), _f32(y_pred)
    y_true, y_pred = _match_rank(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        bce = np.maximum(y_pred, 0) - y_pred * y_true + np.log1p(np.exp(-np.abs(y_pred)))
    else:
        out = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
        bce = -(y_true * np.log(out) + (1.0 - y_true) * np.log(1.0 - out))
    return np.mean(bce, axis=axis)


def mean_squared_error(y_true: Any, y_pred: Any) -> Any:
    """Per-sample mean of squared errors over the last axis."""
    y_true, y_pred = _f32(y_true), _f32(y_pred)
    y_true, y_pred = _match_rank(y_true, y_pred)
    return np.mean(np.square(y_true - y_pred), axis=-1)


class Loss:
    """Base class: subclasses implement ``call(y_true, y_pred)`` returning
    per-sample values; ``__call__`` applies ``sample_weight`` and the reduction."""

    def __init__(self, name: Optional[str] = None, reduction: Optional[str] = "sum_over_batch_size",
                 dtype: Any = None) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"Invalid value for argument `reduction`. Expected one of "
                             f"{_REDUCTIONS}. Received: reduction={reduction}")
        self.name = name or snake_case(type(self).__name__)
        self.reduction = reduction
        self.dtype = dtype or "float32"

    def call(self, y_true: Any, y_pred: Any) -> Any:
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        values = self.call(y_true, y_pred)
        return reduce_values(values, sample_weight, self.reduction)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Loss":
        return cls(**config)

    # (native code, from_logits) when the engine can compute this loss itself.
    def _native(self) -> Optional[Tuple[int, bool]]:
        return None


def reduce_values(values: Any, sample_weight: Any = None,
                  reduction: Optional[str] = "sum_over_batch_size") -> Any:
    """Keras 3's reduce_weighted_values: rank-match and apply ``sample_weight``,
    then reduce (``sum_over_batch_size`` divides by the element count, not by
    the sum of the weights)."""
    if not hasattr(values, "shape"):
        values = np.asarray(values, dtype=np.float32)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float32)
        values, sw = squeeze_or_expand_to_same_rank(values, sw)
        values = values * sw
    if reduction in (None, "none") or tuple(values.shape) in ((), (0,)):
        return values
    total = np.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = float(np.sum(sw))
    else:
        divisor = float(np.prod(values.shape))
    return total / divisor if divisor != 0 else total * 0.0


class LossFunctionWrapper(Loss):
    """Wraps a function ``fn(y_true, y_pred, **kwargs)`` as a Loss."""

    def __init__(self, fn: Callable[..., Any], reduction: Optional[str] = "sum_over_batch_size",
                 name: Optional[str] = None, dtype: Any = None, **kwargs: Any) -> None:
        super().__init__(name=name or getattr(fn, "__name__", None), reduction=reduction,
                         dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(self._fn_kwargs)
        return config

    def _native(self) -> Optional[Tuple[int, bool]]:
        if self.reduction != "sum_over_batch_size":
            return None
        code = _NATIVE_FUNCTIONS.get(self.fn)
        kw = dict(self._fn_kwargs)
        from_logits = bool(kw.pop("from_logits", False))
        kw.pop("axis", None)
        if code is None or kw.get("label_smoothing", 0.0) or kw.get("ignore_class") is not None:
            return None
        return code, from_logits


class CategoricalCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "categorical_crossentropy", dtype: Any = None) -> None:
        super().__init__(categorical_crossentropy, reduction=reduction, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits: bool = False, ignore_class: Optional[int] = None,
                 reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "sparse_categorical_crossentropy", dtype: Any = None) -> None:
        super().__init__(sparse_categorical_crossentropy, reduction=reduction, name=name,
                         dtype=dtype, from_logits=from_logits, ignore_class=ignore_class)
        self.from_logits, self.ignore_class = from_logits, ignore_class


class BinaryCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "binary_crossentropy", dtype: Any = None) -> None:
        super().__init__(binary_crossentropy, reduction=reduction, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis


class MeanSquaredError(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "mean_squared_error", dtype: Any = None) -> None:
        super().__init__(mean_squared_error, reduction=reduction, name=name, dtype=dtype)


_NATIVE_FUNCTIONS: Dict[Callable[..., Any], int] = {
    categorical_crossentropy: CCE,
    sparse_categorical_crossentropy: SCCE,
    binary_crossentropy: BCE,
    mean_squared_error: MSE,
}

_BY_NAME: Dict[str, Any] = {
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "binary_crossentropy": binary_crossentropy,
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
    "MSE": mean_squared_error,
    "CategoricalCrossentropy": CategoricalCrossentropy,
    "SparseCategoricalCrossentropy": SparseCategoricalCrossentropy,
    "BinaryCrossentropy": BinaryCrossentropy,
    "MeanSquaredError": MeanSquaredError,
}

LossLike = Union[str, Loss, Callable[..., Any]]


def get(identifier: LossLike) -> Union[Loss, Callable[..., Any]]:
    """A loss function or Loss instance for a name, an instance or a callable."""
    if isinstance(identifier, str):
        obj = _BY_NAME.get(identifier)
        if obj is None:
            raise ValueError(f"Could not interpret loss identifier: {identifier}. "
                             f"Supported: {sorted(_BY_NAME)}")
        return obj() if isinstance(obj, type) else obj
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, Loss) or callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret loss identifier: {identifier}")


def to_loss_object(identifier: LossLike) -> Loss:
    """Keras's compile-time wrapping: functions become LossFunctionWrapper
    named after the string given, or the function's name."""
    obj = get(identifier)
    if isinstance(obj, Loss):
        return obj
    name = identifier if isinstance(identifier, str) else getattr(obj, "__name__", "loss")
    return LossFunctionWrapper(obj, name=name)


def serialize(loss: Any) -> Any:
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    return getattr(loss, "__name__", str(loss))
