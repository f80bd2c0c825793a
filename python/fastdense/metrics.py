"""Metrics with Keras 3's names and semantics.

The accuracy family runs natively inside the training loop; any other metric
(objects, functions, your own callables) is updated from each batch's
predictions, which the engine records before that batch's update.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from . import losses as _losses
from ._naming import snake_case

__all__ = [
    "Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
    "CategoricalAccuracy", "SparseCategoricalAccuracy", "MeanSquaredError",
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "mean_squared_error", "get",
]

# Native metric codes (cpp/metrics.h, enum MetricKind).
CATEGORICAL_ACCURACY, SPARSE_CATEGORICAL_ACCURACY, BINARY_ACCURACY = 0, 1, 2


def _labels(y_true: Any, y_pred: Any) -> np.ndarray:
    y_true = np.asarray(y_true)
    if y_true.ndim == np.ndim(y_pred) and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return y_true


def accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """Element-wise 1.0 where ``y_true == y_pred`` exactly, else 0.0."""
    y_true, y_pred = _losses._match_rank(np.asarray(y_true), np.asarray(y_pred))
    return (np.asarray(y_true, np.float32) == np.asarray(y_pred, np.float32)).astype(np.float32)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """Element-wise ``y_true == (y_pred > threshold)`` as 1.0 / 0.0 (Mean then
    averages each sample's elements, as Keras does)."""
    y_true, y_pred = _losses._match_rank(np.asarray(y_true, np.float32),
                                         np.asarray(y_pred, np.float32))
    return (y_true == (y_pred > threshold).astype(np.float32)).astype(np.float32)


def categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where ``argmax(y_true) == argmax(y_pred)``."""
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where the integer label equals ``argmax(y_pred)``."""
    labels = _labels(y_true, y_pred)
    return (labels.astype(np.float32) == np.argmax(y_pred, axis=-1)).astype(np.float32)


mean_squared_error = _losses.mean_squared_error


class Metric:
    """Base class: ``update_state``, ``result`` and ``reset_state``."""

    def __init__(self, dtype: Any = None, name: Optional[str] = None) -> None:
        self.name = name or snake_case(type(self).__name__)
        self.dtype = dtype or "float32"

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError

    def reset_state(self) -> None:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Metric":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"

    # (native code, threshold) when the engine can compute this metric itself.
    def _native(self) -> Optional[Tuple[int, float]]:
        return None


class Mean(Metric):
    """Weighted mean of the values seen (per-sample mean over non-batch axes)."""

    def __init__(self, name: str = "mean", dtype: Any = None) -> None:
        super().__init__(dtype=dtype, name=name)
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Keras 3's reduce_to_samplewise_values, then total += sum of the
        per-sample values, count += sum of the weights (or the sample count)."""
        values = np.asarray(values, dtype=np.float32)
        sw = None
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float32)
            values, sw = _losses._match_rank(values, sw)
            weight_ndim = sw.ndim
            if values.ndim > weight_ndim:
                values = values.mean(axis=tuple(range(weight_ndim, values.ndim)))
            sw = np.broadcast_to(sw, values.shape)
            values = values * sw
            if weight_ndim > 1:
                sw = sw.mean(axis=tuple(range(1, weight_ndim)))
        if values.ndim > 1:
            values = values.mean(axis=tuple(range(1, values.ndim)))
        self.total += float(np.sum(values, dtype=np.float64))
        if sw is not None:
            self.count += float(np.sum(sw, dtype=np.float64))
        else:
            self.count += float(values.shape[0]) if values.ndim >= 1 else 1.0

    def result(self) -> np.float32:
        return np.float32(self.total / self.count if self.count else 0.0)

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0


class MeanMetricWrapper(Mean):
    """Wraps ``fn(y_true, y_pred, **kwargs)`` returning per-sample values."""

    def __init__(self, fn: Callable[..., Any], name: Optional[str] = None, dtype: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(name=name or getattr(fn, "__name__", "mean_metric_wrapper"),
                         dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs
        if fn in _losses._NATIVE_FUNCTIONS or isinstance(fn, _losses.Loss):
            self._direction = "down"  # a loss used as a metric is minimised

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(np.asarray(values), sample_weight=sample_weight)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(self._fn_kwargs)
        return config

    def _native(self) -> Optional[Tuple[int, float]]:
        code = _NATIVE_FUNCTIONS.get(self._fn)
        if code is None:
            return None
        return code, float(self._fn_kwargs.get("threshold", 0.5))


class Accuracy(MeanMetricWrapper):
    def __init__(self, name: str = "accuracy", dtype: Any = None) -> None:
        super().__init__(accuracy, name=name, dtype=dtype)
        self._direction = "up"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name: str = "binary_accuracy", dtype: Any = None,
                 threshold: float = 0.5) -> None:
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold
        self._direction = "up"


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(categorical_accuracy, name=name, dtype=dtype)
        self._direction = "up"


class SparseCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)
        self._direction = "up"


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name: str = "mean_squared_error", dtype: Any = None) -> None:
        super().__init__(mean_squared_error, name=name, dtype=dtype)


_NATIVE_FUNCTIONS: Dict[Callable[..., Any], int] = {
    categorical_accuracy: CATEGORICAL_ACCURACY,
    sparse_categorical_accuracy: SPARSE_CATEGORICAL_ACCURACY,
    binary_accuracy: BINARY_ACCURACY,
}

_BY_NAME: Dict[str, Any] = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
    "Accuracy": Accuracy,
    "BinaryAccuracy": BinaryAccuracy,
    "CategoricalAccuracy": CategoricalAccuracy,
    "SparseCategoricalAccuracy": SparseCategoricalAccuracy,
    "MeanSquaredError": MeanSquaredError,
    "Mean": Mean,
}

MetricLike = Union[str, Metric, Callable[..., Any]]


def get(identifier: MetricLike) -> Union[Metric, Callable[..., Any]]:
    """A metric function or Metric instance for a name, an instance or a callable."""
    if isinstance(identifier, str):
        obj = _BY_NAME.get(identifier)
        if obj is None:
            valid = sorted(set(_BY_NAME) | {"accuracy", "acc"})
            raise ValueError(f"Could not interpret metric identifier: {identifier}. "
                             f"Supported: {valid}")
        return obj() if isinstance(obj, type) else obj
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, Metric) or callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret metric identifier: {identifier}")


def resolve(identifier: MetricLike, y_true_shape: Tuple[int, ...],
            y_pred_shape: Tuple[int, ...]) -> Metric:
    """Keras 3's compile-time resolution: "accuracy"/"acc" picks binary,
    sparse categorical or categorical accuracy from the shapes; functions are
    wrapped in MeanMetricWrapper; a string keeps its spelling as the name."""
    if str(identifier).lower() in ("accuracy", "acc"):
        is_binary = y_pred_shape[-1] == 1
        is_sparse = len(y_true_shape) < len(y_pred_shape) or (
            y_true_shape[-1] == 1 and y_pred_shape[-1] > 1)
        if is_binary:
            obj: Any = BinaryAccuracy(name=str(identifier))
        elif is_sparse:
            obj = SparseCategoricalAccuracy(name=str(identifier))
        else:
            obj = CategoricalAccuracy(name=str(identifier))
    else:
        obj = get(identifier)
    if isinstance(identifier, str):
        name = identifier
    else:
        name = getattr(obj, "name", None) or getattr(obj, "__name__", None) or "metric"
    if not isinstance(obj, Metric):
        obj = MeanMetricWrapper(obj)
    obj.name = name
    return obj
