"""Metrics with Keras 3's names and semantics.

The accuracy family runs natively inside the training loop; any other metric
(objects, functions, your own callables) is updated from each batch's
predictions, which the engine records before that batch's update.
"""
from __future__ import annotations

import warnings
from enum import Enum
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from . import losses as _losses
from ._autodiff import squeeze_or_expand_to_same_rank as _same_rank
from ._naming import snake_case, unique_name
from .variables import Variable as _Variable

__all__ = [
    "Metric", "Mean", "Sum", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
    "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy", "MeanSquaredError", "MeanAbsoluteError",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "RootMeanSquaredError",
    "CosineSimilarity", "LogCoshError", "Hinge", "SquaredHinge", "CategoricalHinge",
    "KLDivergence", "Poisson", "BinaryCrossentropy", "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy", "TruePositives", "FalsePositives", "TrueNegatives",
    "FalseNegatives", "Precision", "Recall", "AUC", "AUCCurve", "AUCSummationMethod",
    "SensitivityAtSpecificity", "SpecificityAtSensitivity", "PrecisionAtRecall",
    "RecallAtPrecision", "PearsonCorrelation", "ConcordanceCorrelation", "pearson_correlation",
    "concordance_correlation", "IoU", "BinaryIoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU",
    "FBetaScore", "F1Score", "R2Score", "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "mean_squared_error",
    "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
    "cosine_similarity", "log_cosh", "huber", "hinge", "squared_hinge", "categorical_hinge",
    "kl_divergence", "poisson", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "binary_focal_crossentropy",
    "categorical_focal_crossentropy", "get", "resolve", "serialize", "deserialize",
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


def _in_top_k(targets: np.ndarray, predictions: np.ndarray, k: int) -> np.ndarray:
    """Keras's ops.in_top_k (JAX backend): the target's rank is 1 + the number
    of strictly larger scores (ties count in the target's favour); a NaN
    score at the target counts as -inf."""
    at_label = np.take_along_axis(predictions, targets[:, None].astype(np.int64), axis=-1)
    at_label = np.where(np.isnan(at_label), -np.inf, at_label)
    rank = 1 + np.sum(predictions > at_label, axis=-1)
    return rank <= k


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    """1.0 where ``argmax(y_true)`` is among the ``k`` highest scores of ``y_pred``."""
    y_pred = np.asarray(y_pred, dtype=np.float32)
    labels = np.argmax(np.asarray(y_true, dtype=np.float32), axis=-1)
    shape = labels.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    matches = _in_top_k(labels.reshape(-1), y_pred, k).astype(np.float32)
    return matches.reshape(shape) if len(shape) > 1 else matches


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5,
                                      from_sorted_ids: bool = False) -> np.ndarray:
    """1.0 where the integer label is among the ``k`` highest scores of
    ``y_pred`` (or, with ``from_sorted_ids``, among its first ``k`` ids);
    the result has ``y_true``'s shape."""
    y_pred = np.asarray(y_pred)
    if not from_sorted_ids:
        y_pred = y_pred.astype(np.float32)
    y_true = np.asarray(y_true)
    y_true = y_true.astype(y_pred.dtype if from_sorted_ids else np.int32)
    shape = y_true.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    flat = y_true.reshape(-1)
    if from_sorted_ids:
        matches = np.any(flat[:, None] == y_pred[:, :k], axis=1)
    else:
        matches = _in_top_k(flat, y_pred, k)
    matches = matches.astype(np.float32)
    return matches.reshape(shape) if len(shape) > 1 else matches


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """The metric's (positive) cosine similarity: ``sum(l2_normalize(y_true) *
    l2_normalize(y_pred), axis)`` (the loss of that name is its negative)."""
    return -_losses.cosine_similarity(y_true, y_pred, axis=axis)


def pearson_correlation(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """Keras's per-sample Pearson correlation over ``axis``: the mean of the
    product of the standardized ``y_true`` and ``y_pred``."""
    y_pred = np.asarray(y_pred, np.float32)
    y_true = np.asarray(y_true, np.float32)
    y_true, y_pred = _same_rank(y_true, y_pred)
    t = y_true - np.mean(y_true, axis=axis, keepdims=True)
    p = y_pred - np.mean(y_pred, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = t / np.std(t, axis=axis, keepdims=True)
        p = p / np.std(p, axis=axis, keepdims=True)
    return np.asarray(np.mean(t * p, axis=axis), np.float32)


def concordance_correlation(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """Keras's per-sample concordance correlation over ``axis``, as Keras 3.15
    computes it (its covariance term centres ``y_true`` on ``y_pred``'s mean)."""
    y_pred = np.asarray(y_pred, np.float32)
    y_true = np.asarray(y_true, np.float32)
    y_true, y_pred = _same_rank(y_true, y_pred)
    t_mean = np.mean(y_true, axis=axis, keepdims=True)
    p_mean = np.mean(y_pred, axis=axis, keepdims=True)
    t_var = np.var(y_true - t_mean, axis=axis, keepdims=True)
    p_var = np.var(y_pred - p_mean, axis=axis, keepdims=True)
    covar = (y_true - p_mean) * (y_pred - p_mean)
    norm = t_var + p_var + np.square(t_mean - p_mean)
    return np.asarray(np.mean(2 * covar / (norm + np.float32(1e-7)), axis=axis), np.float32)


# Keras exports these loss functions as metric functions too.
mean_squared_error = _losses.mean_squared_error
mean_absolute_error = _losses.mean_absolute_error
mean_absolute_percentage_error = _losses.mean_absolute_percentage_error
mean_squared_logarithmic_error = _losses.mean_squared_logarithmic_error
log_cosh = _losses.log_cosh
huber = _losses.huber
hinge = _losses.hinge
squared_hinge = _losses.squared_hinge
categorical_hinge = _losses.categorical_hinge
kl_divergence = _losses.kl_divergence
poisson = _losses.poisson
binary_crossentropy = _losses.binary_crossentropy
categorical_crossentropy = _losses.categorical_crossentropy
sparse_categorical_crossentropy = _losses.sparse_categorical_crossentropy
binary_focal_crossentropy = _losses.binary_focal_crossentropy
categorical_focal_crossentropy = _losses.categorical_focal_crossentropy

# Functions whose MeanMetricWrapper is maximised ("up"); every loss function
# is minimised ("down"), as Keras registers for wrapped losses.
_UP_FUNCTIONS = (accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
                 top_k_categorical_accuracy, sparse_top_k_categorical_accuracy,
                 cosine_similarity)


class Metric:
    """Base class: ``update_state``, ``result`` and ``reset_state``.

    As in Keras 3, a subclass keeps its state in variables created in
    ``__init__`` with ``self.add_variable(shape, initializer, name=...)`` (or
    the older ``self.add_weight(name=..., initializer=...)``), updates them
    with ``var.assign(...)`` / ``var.assign_add(...)`` in ``update_state`` and
    reads them in ``result``; the default ``reset_state`` sets every variable
    to zeros (as Keras's does, whatever the initializer) and resets the
    metrics held in attributes.  Variables are ``fastdense.Variable`` objects:
    numpy-backed, usable with ``keras.ops``, numpy and Python operators.
    """

    def __init__(self, dtype: Any = None, name: Optional[str] = None) -> None:
        # (Keras's auto_name: the snake_case class name, made unique)
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.dtype = dtype or "float32"
        self._variables: List[Any] = []
        self._metrics: List["Metric"] = []

    def __setattr__(self, name: str, value: Any) -> None:
        # Tracks the variables and metrics held in attributes, as Keras does.
        if isinstance(value, (Metric, _Variable)) and value is not self:
            store = self.__dict__.get("_metrics" if isinstance(value, Metric)
                                      else "_variables")
            if store is not None and not any(v is value for v in store):
                store.append(value)
        object.__setattr__(self, name, value)

    def _check_super_called(self) -> None:
        if "_variables" not in self.__dict__:
            raise RuntimeError("You forgot to call `super().__init__()` in the `__init__()` "
                               "method. Go add it!")

    def add_variable(self, shape: Any, initializer: Any, dtype: Any = None,
                     aggregation: str = "sum", name: Optional[str] = None) -> Any:
        """A new non-trainable state variable of this metric (Keras 3's
        ``Metric.add_variable``): ``initializer`` is a name (``"zeros"``), an
        initializer object or callable, or a Keras config dict."""
        self._check_super_called()
        if initializer is None:
            raise ValueError(f"Metric variable {name!r} of {self.name!r} needs an "
                             "`initializer`, e.g. initializer='zeros'.")
        from . import initializers as _initializers
        init = _initializers.get(initializer)
        shape = () if shape is None else (
            (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape))
        variable = _Variable(init, shape=shape, dtype=dtype or self.dtype, trainable=False,
                             name=name)
        variable.path = f"{self.name.replace('/', '>')}/{variable.name}"
        variable.aggregation = aggregation  # type: ignore[attr-defined]
        if not any(v is variable for v in self._variables):
            self._variables.append(variable)
        return variable

    def add_weight(self, shape: Any = (), initializer: Any = None, dtype: Any = None,
                   name: Optional[str] = None) -> Any:
        """Keras's backwards-compatible alias of ``add_variable``."""
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, name=name)

    @property
    def variables(self) -> List[Any]:
        """This metric's variables, then those of the metrics it holds."""
        out = list(self.__dict__.get("_variables", []))
        for m in self.__dict__.get("_metrics", []):
            out.extend(m.variables)
        return out

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError

    def reset_state(self) -> None:
        """Sets every variable to zeros (Keras's default) and resets the
        metrics held in attributes."""
        for v in self.__dict__.get("_variables", []):
            v.assign(np.zeros(v.shape, dtype=v.dtype))
        for m in self.__dict__.get("_metrics", []):
            m.reset_state()

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


class Sum(Metric):
    """Weighted sum of the values seen."""

    def __init__(self, name: str = "sum", dtype: Any = None) -> None:
        super().__init__(dtype=dtype, name=name)
        self.total = 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Keras 3's reduce_to_samplewise_values (reducing with sum), then
        total += the sum of the weighted values."""
        values = np.asarray(values, dtype=np.float32)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float32)
            values, sw = _losses._match_rank(values, sw)
            if values.ndim > sw.ndim:
                values = values.sum(axis=tuple(range(sw.ndim, values.ndim)))
            values = values * np.broadcast_to(sw, values.shape)
        self.total += float(np.sum(values, dtype=np.float64))

    def result(self) -> np.float32:
        return np.float32(self.total)

    def reset_state(self) -> None:
        self.total = 0.0


class MeanMetricWrapper(Mean):
    """Wraps ``fn(y_true, y_pred, **kwargs)`` returning per-sample values."""

    def __init__(self, fn: Callable[..., Any], name: Optional[str] = None, dtype: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(name=name or str(getattr(fn, "__name__", "mean_metric_wrapper")),
                         dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs
        if fn in _losses._FUNCTIONS or isinstance(fn, _losses.Loss):
            self._direction = "down"  # a loss used as a metric is minimised
        elif fn in _UP_FUNCTIONS:
            self._direction = "up"  # what Keras's class for this function sets

    def update_state(  # type: ignore[override]  # (Keras: Mean subclasses take y_true, y_pred)
            self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
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


class TopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy",
                 dtype: Any = None) -> None:
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k
        self._direction = "up"


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy",
                 dtype: Any = None, from_sorted_ids: bool = False) -> None:
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
        self.k = k
        self.from_sorted_ids = from_sorted_ids
        self._direction = "up"

    def get_config(self) -> Dict[str, Any]:
        config: Dict[str, Any] = {"name": self.name, "dtype": self.dtype, "k": self.k}
        if self.from_sorted_ids:
            config["from_sorted_ids"] = True
        return config


# ------------------------------------------------------------ regression
class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name: str = "mean_squared_error", dtype: Any = None) -> None:
        super().__init__(mean_squared_error, name=name, dtype=dtype)
        self._direction = "down"


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None) -> None:
        super().__init__(mean_absolute_error, name=name, dtype=dtype)
        self._direction = "down"


class MeanAbsolutePercentageError(MeanMetricWrapper):
    def __init__(self, name: str = "mean_absolute_percentage_error", dtype: Any = None) -> None:
        super().__init__(mean_absolute_percentage_error, name=name, dtype=dtype)
        self._direction = "down"


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    def __init__(self, name: str = "mean_squared_logarithmic_error", dtype: Any = None) -> None:
        super().__init__(mean_squared_logarithmic_error, name=name, dtype=dtype)
        self._direction = "down"


class RootMeanSquaredError(Mean):
    """``sqrt`` of the weighted mean of the squared errors."""

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self._direction = "down"

    def update_state(  # type: ignore[override]  # (as Keras: y_true, y_pred)
            self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true, y_pred = _losses._match_rank(np.asarray(y_true, np.float32),
                                             np.asarray(y_pred, np.float32))
        super().update_state(np.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self) -> np.float32:
        return np.float32(np.sqrt(super().result()))


class CosineSimilarity(MeanMetricWrapper):
    # Keras's get_config drops `axis`; fastdense keeps it (Keras loads it back).
    def __init__(self, name: str = "cosine_similarity", dtype: Any = None,
                 axis: int = -1) -> None:
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)
        self.axis = axis
        self._direction = "up"


class PearsonCorrelation(MeanMetricWrapper):
    """The mean over samples of ``pearson_correlation`` (over ``axis``)."""

    def __init__(self, name: str = "pearson_correlation", dtype: Any = None,
                 axis: int = -1) -> None:
        super().__init__(pearson_correlation, name=name, dtype=dtype, axis=axis)
        self.axis = axis
        self._direction = "up"

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "axis": self.axis}


class ConcordanceCorrelation(MeanMetricWrapper):
    """The mean over samples of ``concordance_correlation`` (over ``axis``)."""

    def __init__(self, name: str = "concordance_correlation", dtype: Any = None,
                 axis: int = -1) -> None:
        super().__init__(concordance_correlation, name=name, dtype=dtype, axis=axis)
        self.axis = axis
        self._direction = "up"

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "axis": self.axis}


class LogCoshError(MeanMetricWrapper):
    def __init__(self, name: str = "logcosh", dtype: Any = None) -> None:
        super().__init__(log_cosh, name=name, dtype=dtype)
        self._direction = "down"


# ------------------------------------------------------------ hinge
class Hinge(MeanMetricWrapper):
    def __init__(self, name: str = "hinge", dtype: Any = None) -> None:
        super().__init__(hinge, name=name, dtype=dtype)
        self._direction = "down"


class SquaredHinge(MeanMetricWrapper):
    def __init__(self, name: str = "squared_hinge", dtype: Any = None) -> None:
        super().__init__(squared_hinge, name=name, dtype=dtype)
        self._direction = "down"


class CategoricalHinge(MeanMetricWrapper):
    def __init__(self, name: str = "categorical_hinge", dtype: Any = None) -> None:
        super().__init__(categorical_hinge, name=name, dtype=dtype)
        self._direction = "down"


# ------------------------------------------------------------ probabilistic
class KLDivergence(MeanMetricWrapper):
    def __init__(self, name: str = "kl_divergence", dtype: Any = None) -> None:
        super().__init__(kl_divergence, name=name, dtype=dtype)


class Poisson(MeanMetricWrapper):
    def __init__(self, name: str = "poisson", dtype: Any = None) -> None:
        super().__init__(poisson, name=name, dtype=dtype)


class BinaryCrossentropy(MeanMetricWrapper):
    def __init__(self, name: str = "binary_crossentropy", dtype: Any = None,
                 from_logits: bool = False, label_smoothing: float = 0) -> None:
        super().__init__(binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing)
        self.from_logits, self.label_smoothing = from_logits, label_smoothing
        self._direction = "down"


class CategoricalCrossentropy(MeanMetricWrapper):
    def __init__(self, name: str = "categorical_crossentropy", dtype: Any = None,
                 from_logits: bool = False, label_smoothing: float = 0, axis: int = -1) -> None:
        super().__init__(categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis
        self._direction = "down"


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    def __init__(self, name: str = "sparse_categorical_crossentropy", dtype: Any = None,
                 from_logits: bool = False, ignore_class: Optional[int] = None,
                 axis: int = -1) -> None:
        if ignore_class is not None:
            raise NotImplementedError("SparseCategoricalCrossentropy(ignore_class=...) is not "
                                      "supported by fastdense yet. "
                                      f"Received: ignore_class={ignore_class}")
        super().__init__(sparse_categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class, axis=axis)
        self.from_logits, self.ignore_class, self.axis = from_logits, ignore_class, axis
        self._direction = "down"


# ------------------------------------------------------------ confusion matrix
# keras/src/metrics/metrics_utils.py (Keras 3.15), in numpy: inputs are cast
# to float32 and compared in float32 as Keras does; counts accumulate in
# float64.
NEG_INF = -1e10
_EPSILON = 1e-7


class AUCCurve(str, Enum):
    ROC = "ROC"
    PR = "PR"
    PRGAIN = "PRGAIN"

    @staticmethod
    def from_str(key: Any) -> "AUCCurve":
        if key in ("pr", "PR"):
            return AUCCurve.PR
        if key in ("roc", "ROC"):
            return AUCCurve.ROC
        if key in ("prgain", "PRGAIN"):
            return AUCCurve.PRGAIN
        raise ValueError(f'Invalid AUC curve value: "{key}". '
                         'Expected values are ["PR", "ROC", "PRGAIN"]')


class AUCSummationMethod(str, Enum):
    INTERPOLATION = "interpolation"
    MAJORING = "majoring"
    MINORING = "minoring"

    @staticmethod
    def from_str(key: Any) -> "AUCSummationMethod":
        if key in ("interpolation", "Interpolation"):
            return AUCSummationMethod.INTERPOLATION
        if key in ("majoring", "Majoring"):
            return AUCSummationMethod.MAJORING
        if key in ("minoring", "Minoring"):
            return AUCSummationMethod.MINORING
        raise ValueError(f'Invalid AUC summation method value: "{key}". '
                         'Expected values are ["interpolation", "majoring", "minoring"]')


def _to_list(x: Any) -> List[Any]:
    if isinstance(x, list):
        return x
    if isinstance(x, tuple):
        return list(x)
    return [x]


def _parse_init_thresholds(thresholds: Any, default_threshold: float = 0.5) -> List[Any]:
    if thresholds is not None:
        invalid = [t for t in _to_list(thresholds) if t is None or t < 0 or t > 1]
        if invalid:
            raise ValueError(f"Threshold values must be in [0, 1]. Received: {invalid}")
    return _to_list(default_threshold if thresholds is None else thresholds)


def _is_evenly_distributed(thresholds: Union[Sequence[float], np.ndarray]) -> bool:
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=_EPSILON))


def _divide_no_nan(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    out = np.zeros(a.shape)
    np.divide(a, b, out=out, where=b != 0)
    return out


def _filter_top_k(x: np.ndarray, k: int) -> np.ndarray:
    """Keeps the ``k`` largest scores of the last axis (the lower index wins
    ties, as ops.top_k does) and sets the others to NEG_INF."""
    idx = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(x.shape, np.float32)
    np.put_along_axis(mask, idx, 1.0, axis=-1)
    return x * mask + np.float32(NEG_INF) * (np.float32(1.0) - mask)


def _update_confusion_matrix(counts: Dict[str, np.ndarray], y_true: Any, y_pred: Any,
                             thresholds: Union[Sequence[float], np.ndarray],
                             top_k: Optional[int] = None,
                             class_id: Optional[int] = None, sample_weight: Any = None,
                             multi_label: bool = False, label_weights: Any = None,
                             thresholds_distributed_evenly: bool = False) -> None:
    """Keras's update_confusion_matrix_variables: adds the (weighted) counts of
    ``y_pred > threshold`` against ``y_true != 0`` to ``counts`` (keys
    "tp", "fp", "tn", "fn"), one entry per threshold (and per label when
    ``multi_label``)."""
    y_true = np.asarray(y_true).astype(np.float32)
    y_pred = np.asarray(y_pred).astype(np.float32)
    with_epsilon = bool(thresholds_distributed_evenly) and (
        thresholds[0] < 0.0 or thresholds[-1] > 1.0)
    thr = np.asarray(thresholds, dtype=np.float32)
    y_pred, y_true = _same_rank(y_pred, y_true)
    sw = None
    if sample_weight is not None:
        sw = np.expand_dims(np.asarray(sample_weight, dtype=np.float32), -1)
        _, sw = _same_rank(y_true, sw, expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError("When class_id is provided, y_pred must be a 2D array with shape "
                             f"(num_samples, num_classes), found shape: {y_pred.shape}")
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    lw = None
    if label_weights is not None:
        lw = np.broadcast_to(np.expand_dims(np.asarray(label_weights, np.float32), 0),
                             y_pred.shape)
    if sw is not None:
        sw = np.broadcast_to(sw, y_pred.shape)
    weights = None
    if sw is not None or lw is not None:
        weights = (np.float32(1.0) if sw is None else sw) * (np.float32(1.0) if lw is None
                                                              else lw)
        weights = np.broadcast_to(weights, y_pred.shape)
    labels = y_true != 0
    if multi_label:
        if y_pred.ndim != 2:
            raise ValueError("`y_pred` must have rank 2 when `multi_label=True`. "
                             f"Found rank {y_pred.ndim}. Full shape received for `y_pred`: "
                             f"{y_pred.shape}")
    else:
        y_pred, labels = y_pred.reshape(-1, 1), labels.reshape(-1, 1)
        weights = None if weights is None else weights.reshape(-1, 1)
    w = np.ones(y_pred.shape, np.float64) if weights is None else weights.astype(np.float64)
    n_t = thr.shape[0]
    if thresholds_distributed_evenly:
        # Bucketed counting (Keras's _update_confusion_matrix_variables_optimized):
        # predictions are clipped to [0, 1] and a prediction p counts for
        # threshold i when ceil(p * (n - 1)) - 1 >= i.
        y_pred = np.clip(y_pred, np.float32(0.0), np.float32(1.0))
        bucket = np.ceil(y_pred * np.float32(n_t - 1)) - np.float32(1.0)
        if with_epsilon:
            bucket = np.maximum(bucket, 0)
        bucket = bucket.astype(np.int64)
        pos_w, neg_w = w * labels, w * ~labels
        tp = np.zeros((n_t, y_pred.shape[1]))
        fp = np.zeros((n_t, y_pred.shape[1]))
        for j in range(y_pred.shape[1]):
            b = bucket[:, j]
            ok = (b >= 0) & (b < n_t)  # out-of-range ids are dropped (segment_sum)
            tp[:, j] = np.bincount(b[ok], weights=pos_w[ok, j], minlength=n_t)
            fp[:, j] = np.bincount(b[ok], weights=neg_w[ok, j], minlength=n_t)
        tp = np.cumsum(tp[::-1], axis=0)[::-1]
        fp = np.cumsum(fp[::-1], axis=0)[::-1]
        fn = pos_w.sum(axis=0) - tp
        tn = neg_w.sum(axis=0) - fp
    else:
        pred_pos = y_pred[None] > thr.reshape(-1, 1, 1)  # (thresholds, samples, labels)
        lab = labels[None]
        tp = np.sum(w * (lab & pred_pos), axis=1)
        fp = np.sum(w * (~lab & pred_pos), axis=1)
        fn = np.sum(w * (lab & ~pred_pos), axis=1)
        tn = np.sum(w * (~lab & ~pred_pos), axis=1)
    if not multi_label:
        tp, fp, tn, fn = tp[:, 0], fp[:, 0], tn[:, 0], fn[:, 0]
    for key, value in (("tp", tp), ("fp", fp), ("tn", tn), ("fn", fn)):
        if key in counts:
            counts[key] += value


class _ConfusionMatrixConditionCount(Metric):
    _condition = ""

    def __init__(self, thresholds: Any = None, name: Optional[str] = None,
                 dtype: Any = None) -> None:
        super().__init__(dtype=dtype,
                         name=name or unique_name(snake_case(type(self).__name__)))
        self.init_thresholds = thresholds
        self.thresholds = _parse_init_thresholds(thresholds, default_threshold=0.5)
        self._thresholds_distributed_evenly = _is_evenly_distributed(self.thresholds)
        self.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        counts = {self._condition: self.accumulator}
        _update_confusion_matrix(counts, y_true, y_pred, self.thresholds,
                                 sample_weight=sample_weight,
                                 thresholds_distributed_evenly=self._thresholds_distributed_evenly)

    def result(self) -> Any:
        out = self.accumulator.astype(np.float32)
        return out[0] if len(self.thresholds) == 1 else out

    def reset_state(self) -> None:
        self.accumulator = np.zeros(len(self.thresholds))

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    _condition = "tp"


class FalsePositives(_ConfusionMatrixConditionCount):
    _condition = "fp"


class TrueNegatives(_ConfusionMatrixConditionCount):
    _condition = "tn"


class FalseNegatives(_ConfusionMatrixConditionCount):
    _condition = "fn"


class _PrecisionRecall(Metric):
    _other = ""  # "fp" for precision, "fn" for recall
    true_positives: np.ndarray

    def __init__(self, thresholds: Any = None, top_k: Optional[int] = None,
                 class_id: Optional[int] = None, name: Optional[str] = None,
                 dtype: Any = None) -> None:
        super().__init__(dtype=dtype,
                         name=name or unique_name(snake_case(type(self).__name__)))
        self._direction = "up"
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default_threshold = 0.5 if top_k is None else NEG_INF
        self.thresholds = _parse_init_thresholds(thresholds, default_threshold=default_threshold)
        self._thresholds_distributed_evenly = _is_evenly_distributed(self.thresholds)
        self.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        counts = {"tp": self.true_positives, self._other: self._other_counts()}
        _update_confusion_matrix(counts, y_true, y_pred, self.thresholds, top_k=self.top_k,
                                 class_id=self.class_id, sample_weight=sample_weight,
                                 thresholds_distributed_evenly=self._thresholds_distributed_evenly)

    def _other_counts(self) -> np.ndarray:
        raise NotImplementedError

    def result(self) -> Any:
        out = _divide_no_nan(self.true_positives,
                             self.true_positives + self._other_counts()).astype(np.float32)
        return out[0] if len(self.thresholds) == 1 else out

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """``tp / (tp + fp)`` at each threshold (``y_pred > threshold``), among the
    ``top_k`` scores and/or for ``class_id`` only when given."""

    _other = "fp"

    def _other_counts(self) -> np.ndarray:
        return self.false_positives

    def reset_state(self) -> None:
        self.true_positives = np.zeros(len(self.thresholds))
        self.false_positives = np.zeros(len(self.thresholds))


class Recall(_PrecisionRecall):
    """``tp / (tp + fn)`` at each threshold (``y_pred > threshold``), among the
    ``top_k`` scores and/or for ``class_id`` only when given."""

    _other = "fn"

    def _other_counts(self) -> np.ndarray:
        return self.false_negatives

    def reset_state(self) -> None:
        self.true_positives = np.zeros(len(self.thresholds))
        self.false_negatives = np.zeros(len(self.thresholds))


class _SensitivitySpecificityBase(Metric):
    """Keras's SensitivitySpecificityBase: the confusion counts at
    ``num_thresholds`` evenly spaced thresholds in [0, 1] (one, 0.5, when
    ``num_thresholds == 1``); the result is the largest ``dependent`` rate
    among the thresholds whose ``constrained`` rate reaches ``value``."""

    _value_arg = ""

    def __init__(self, value: float, num_thresholds: int = 200,
                 class_id: Optional[int] = None, name: Optional[str] = None,
                 dtype: Any = None) -> None:
        if (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
                or value < 0 or value > 1):
            raise ValueError(f"Argument `{self._value_arg}` must be in the range [0, 1]. "
                             f"Received: {self._value_arg}={value}")
        if (isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer))
                or num_thresholds <= 0):
            raise ValueError("Argument `num_thresholds` must be an integer > 0. "
                             f"Received: num_thresholds={num_thresholds}")
        super().__init__(dtype=dtype, name=name)
        self._direction = "up"
        self.value = value
        setattr(self, self._value_arg, value)
        self.num_thresholds = int(num_thresholds)
        self.class_id = class_id
        if num_thresholds == 1:
            self.thresholds: List[float] = [0.5]
            self._thresholds_distributed_evenly = False
        else:
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self.thresholds = [0.0] + inner + [1.0]
            self._thresholds_distributed_evenly = True
        self.reset_state()

    def reset_state(self) -> None:
        n = len(self.thresholds)
        self.true_positives, self.false_positives = np.zeros(n), np.zeros(n)
        self.true_negatives, self.false_negatives = np.zeros(n), np.zeros(n)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        counts = {"tp": self.true_positives, "fp": self.false_positives,
                  "tn": self.true_negatives, "fn": self.false_negatives}
        _update_confusion_matrix(counts, y_true, y_pred, self.thresholds,
                                 class_id=self.class_id, sample_weight=sample_weight,
                                 thresholds_distributed_evenly=self._thresholds_distributed_evenly)

    def _rates(self) -> Dict[str, np.ndarray]:
        tp, fp, tn, fn = (a.astype(np.float32) for a in (
            self.true_positives, self.false_positives, self.true_negatives,
            self.false_negatives))
        recall = _divide_no_nan(tp, tp + fn).astype(np.float32)
        return {"sensitivity": recall, "recall": recall,
                "specificity": _divide_no_nan(tn, tn + fp).astype(np.float32),
                "precision": _divide_no_nan(tp, tp + fp).astype(np.float32)}

    def _max_under_constraint(self, constrained: str, dependent: str) -> Any:
        rates = self._rates()
        feasible = rates[constrained] >= np.float32(self.value)
        return np.float32(max(0.0, float(np.max(np.where(feasible, rates[dependent], 0)))))

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "class_id": self.class_id,
                "num_thresholds": self.num_thresholds, self._value_arg: self.value}


class SensitivityAtSpecificity(_SensitivitySpecificityBase):
    """The best sensitivity (recall) at a specificity of at least ``specificity``."""

    _value_arg = "specificity"

    def __init__(self, specificity: float, num_thresholds: int = 200,
                 class_id: Optional[int] = None, name: Optional[str] = None,
                 dtype: Any = None) -> None:
        super().__init__(specificity, num_thresholds, class_id, name, dtype)

    def result(self) -> Any:
        return self._max_under_constraint("specificity", "sensitivity")


class SpecificityAtSensitivity(_SensitivitySpecificityBase):
    """The best specificity at a sensitivity (recall) of at least ``sensitivity``."""

    _value_arg = "sensitivity"

    def __init__(self, sensitivity: float, num_thresholds: int = 200,
                 class_id: Optional[int] = None, name: Optional[str] = None,
                 dtype: Any = None) -> None:
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)

    def result(self) -> Any:
        return self._max_under_constraint("sensitivity", "specificity")


class PrecisionAtRecall(_SensitivitySpecificityBase):
    """The best precision at a recall of at least ``recall``."""

    _value_arg = "recall"

    def __init__(self, recall: float, num_thresholds: int = 200,
                 class_id: Optional[int] = None, name: Optional[str] = None,
                 dtype: Any = None) -> None:
        super().__init__(recall, num_thresholds, class_id, name, dtype)

    def result(self) -> Any:
        return self._max_under_constraint("recall", "precision")


class RecallAtPrecision(_SensitivitySpecificityBase):
    """The best recall at a precision of at least ``precision``."""

    _value_arg = "precision"

    def __init__(self, precision: float, num_thresholds: int = 200,
                 class_id: Optional[int] = None, name: Optional[str] = None,
                 dtype: Any = None) -> None:
        super().__init__(precision, num_thresholds, class_id, name, dtype)

    def result(self) -> Any:
        return self._max_under_constraint("precision", "recall")


def _sigmoid32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


class AUC(Metric):
    """Area under the ROC or PR curve from confusion counts at
    ``num_thresholds`` thresholds (Keras 3's AUC, incl. multi_label,
    label_weights and from_logits)."""

    def __init__(self, num_thresholds: int = 200, curve: Any = "ROC",
                 summation_method: Any = "interpolation", name: Optional[str] = None,
                 dtype: Any = None, thresholds: Optional[Sequence[float]] = None,
                 multi_label: bool = False, num_labels: Optional[int] = None,
                 label_weights: Any = None, from_logits: bool = False) -> None:
        self._direction = "up"
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            self.num_thresholds = len(thresholds) + 2
            thresholds = sorted(thresholds)
            self._thresholds_distributed_evenly = _is_evenly_distributed(
                np.array([0.0] + thresholds + [1.0]))
        else:
            if num_thresholds <= 1:
                raise ValueError("Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds}")
            self.num_thresholds = num_thresholds
            thresholds = [(i + 1) * 1.0 / (num_thresholds - 1)
                          for i in range(num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        # endpoints just outside [0, 1] catch floating point imprecision
        self._thresholds = np.array([0.0 - _EPSILON] + list(thresholds) + [1.0 + _EPSILON])
        self.curve = curve if isinstance(curve, AUCCurve) else AUCCurve.from_str(curve)
        self.summation_method = (summation_method
                                 if isinstance(summation_method, AUCSummationMethod)
                                 else AUCSummationMethod.from_str(summation_method))
        super().__init__(dtype=dtype, name=name or unique_name("auc"))
        self.multi_label = multi_label
        self.num_labels = num_labels
        self.label_weights = (None if label_weights is None
                              else np.asarray(label_weights, dtype=np.float32))
        self._from_logits = from_logits
        self._built = False
        if multi_label:
            if num_labels:
                self._build((None, num_labels))
        else:
            if num_labels:
                raise ValueError("`num_labels` is needed only when `multi_label` is True.")
            self._build(None)

    @property
    def thresholds(self) -> List[float]:
        return list(self._thresholds)

    def _build(self, shape: Any) -> None:
        if self.multi_label:
            if len(shape) != 2:
                raise ValueError("`y_pred` must have rank 2 when `multi_label=True`. "
                                 f"Found rank {len(shape)}. "
                                 f"Full shape received for `y_pred`: {shape}")
            self._num_labels = shape[1]
            self._variable_shape: Tuple[int, ...] = (self.num_thresholds, self._num_labels)
        else:
            self._variable_shape = (self.num_thresholds,)
        self._built = True
        self.reset_state()

    def reset_state(self) -> None:
        if self._built:
            self.true_positives = np.zeros(self._variable_shape)
            self.false_positives = np.zeros(self._variable_shape)
            self.true_negatives = np.zeros(self._variable_shape)
            self.false_negatives = np.zeros(self._variable_shape)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = np.asarray(y_pred)
        if not self._built:
            self._build(y_pred.shape)
        if self._from_logits:
            y_pred = _sigmoid32(y_pred)
        counts = {"tp": self.true_positives, "fp": self.false_positives,
                  "tn": self.true_negatives, "fn": self.false_negatives}
        _update_confusion_matrix(
            counts, y_true, y_pred, self._thresholds,
            thresholds_distributed_evenly=self._thresholds_distributed_evenly,
            sample_weight=sample_weight, multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights)

    def _average(self, by_label: np.ndarray) -> float:
        if self.label_weights is None:
            return float(np.mean(by_label))
        lw = self.label_weights.astype(np.float64)
        return float(_divide_no_nan(np.sum(by_label * lw), np.sum(lw)))

    def interpolate_pr_auc(self) -> np.float32:
        """Davis & Goadrich (2006) interpolation of the PR curve, as Keras."""
        n = self.num_thresholds
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[: n - 1] - tp[1:]
        p = tp + fp
        dp = p[: n - 1] - p[1:]
        prec_slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - prec_slope * p[1:]
        safe_p_ratio = np.where((p[: n - 1] > 0) & (p[1:] > 0),
                                _divide_no_nan(p[: n - 1], np.maximum(p[1:], 0)),
                                np.ones_like(p[1:]))
        with np.errstate(divide="ignore"):
            log_ratio = np.log(safe_p_ratio)
        increment = _divide_no_nan(prec_slope * (dtp + intercept * log_ratio),
                                   np.maximum(tp[1:] + fn[1:], 0))
        if self.multi_label:
            return np.float32(self._average(np.sum(increment, axis=0)))
        return np.float32(np.sum(increment))

    def result(self) -> np.float32:
        if not self._built:
            return np.float32(0.0)
        if (self.curve == AUCCurve.PR
                and self.summation_method == AUCSummationMethod.INTERPOLATION):
            return self.interpolate_pr_auc()
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == AUCCurve.ROC:
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == AUCCurve.PR:
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:  # PRGAIN
            scaling = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = 1.0 - scaling * _divide_no_nan(fn, tp)
            precision_gain = 1.0 - scaling * _divide_no_nan(fp, tp)
            recall_gain = np.where(tp == 0, 0.0, recall_gain)
            precision_gain = np.where(tp == 0, 1.0, precision_gain)
            x, y = np.maximum(recall_gain, 0.0), precision_gain
        n = self.num_thresholds
        if self.summation_method == AUCSummationMethod.INTERPOLATION:
            heights = (y[: n - 1] + y[1:]) / 2.0
        elif self.summation_method == AUCSummationMethod.MINORING:
            heights = np.minimum(y[: n - 1], y[1:])
        else:
            heights = np.maximum(y[: n - 1], y[1:])
        riemann = (x[: n - 1] - x[1:]) * heights
        if self.multi_label:
            return np.float32(self._average(np.sum(riemann, axis=0)))
        return np.float32(np.sum(riemann))

    def get_config(self) -> Dict[str, Any]:
        config: Dict[str, Any] = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve.value,
            "summation_method": self.summation_method.value,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else [
                float(v) for v in self.label_weights],
            "from_logits": self._from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = [float(t) for t in self.thresholds[1:-1]]
        return config


class FBetaScore(Metric):
    """Keras's FBetaScore: ``(1 + beta^2) * precision * recall / (beta^2 *
    precision + recall)`` per class from one-hot ``y_true`` and scores
    ``y_pred`` (a score counts as predicted where it is the row's maximum, or
    above ``threshold`` when given); ``average``: None (one value per class),
    "micro", "macro" or "weighted" (by each class's support)."""

    def __init__(self, average: Optional[str] = None, beta: float = 1.0,
                 threshold: Optional[float] = None, name: str = "fbeta_score",
                 dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError("Invalid `average` argument value. Expected one of: "
                             "{None, 'micro', 'macro', 'weighted'}. "
                             f"Received: average={average}")
        if not isinstance(beta, float):
            raise ValueError("Invalid `beta` argument value. It should be a Python float. "
                             f"Received: beta={beta} of type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError(f"Invalid `beta` argument value. It should be > 0. Received: "
                             f"beta={beta}")
        if threshold is not None:
            if not isinstance(threshold, float):
                raise ValueError("Invalid `threshold` argument value. It should be a Python "
                                 f"float. Received: threshold={threshold} of type "
                                 f"'{type(threshold)}'")
            if threshold > 1.0 or threshold <= 0.0:
                raise ValueError("Invalid `threshold` argument value. It should verify "
                                 f"0 < threshold <= 1. Received: threshold={threshold}")
        self.average, self.beta, self.threshold = average, beta, threshold
        self._axis = None if average == "micro" else 0
        self._counts: Optional[np.ndarray] = None  # [tp, fp, fn, support] per class

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = np.asarray(y_true, np.float32)
        y_pred = np.asarray(y_pred, np.float32)
        if y_pred.ndim != 2 or y_true.ndim != 2:
            raise ValueError(f"{type(self).__name__} expects 2D inputs with shape "
                             "(batch_size, output_dim). Received input shapes: "
                             f"y_pred.shape={y_pred.shape} and y_true.shape={y_true.shape}.")
        if self._counts is None:
            self._counts = np.zeros((4,) if self.average == "micro" else (4, y_pred.shape[-1]),
                                    np.float32)
        if self.threshold is None:
            top = y_pred.max(axis=-1, keepdims=True)
            pred = ((y_pred >= top) & (np.abs(y_pred) > 1e-9)).astype(np.float32)
        else:
            pred = (y_pred > self.threshold).astype(np.float32)
        w = None if sample_weight is None else np.asarray(sample_weight, np.float32)

        def wsum(v: np.ndarray) -> Any:
            if w is not None:
                v = v * np.expand_dims(w, 1)
            return np.sum(v, axis=self._axis, dtype=np.float32)

        self._counts = self._counts + np.stack([
            wsum(pred * y_true), wsum(pred * (1 - y_true)), wsum((1 - pred) * y_true),
            wsum(y_true)]).astype(np.float32)

    def result(self) -> Any:
        if self._counts is None:
            return np.float32(0.0)
        eps = np.float32(1e-7)
        tp, fp, fn, support = self._counts
        precision = tp / (tp + fp + eps)
        recall = tp / (tp + fn + eps)
        b2 = np.float32(self.beta ** 2)
        f = (precision * recall) / (b2 * precision + recall + eps) * (np.float32(1) + b2)
        if self.average == "weighted":
            return np.float32(np.sum(f * (support / (np.sum(support) + eps))))
        if self.average is not None:
            return np.float32(np.mean(f))
        return f.astype(np.float32)

    def reset_state(self) -> None:
        if self._counts is not None:
            self._counts = np.zeros_like(self._counts)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "average": self.average,
                "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """Keras's F1Score: FBetaScore with ``beta=1``."""

    def __init__(self, average: Optional[str] = None, threshold: Optional[float] = None,
                 name: str = "f1_score", dtype: Any = None) -> None:
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config


class R2Score(Metric):
    """Keras's R2Score (coefficient of determination) per output, then
    ``class_aggregation``: "uniform_average", "variance_weighted_average" or
    None (one value per output); ``num_regressors`` > 0 gives the adjusted
    score."""

    def __init__(self, class_aggregation: Optional[str] = "uniform_average",
                 num_regressors: int = 0, name: str = "r2_score", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        valid = (None, "uniform_average", "variance_weighted_average")
        if class_aggregation not in valid:
            raise ValueError("Invalid value for argument `class_aggregation`. Expected one of "
                             f"{valid}. Received: class_aggregation={class_aggregation}")
        if num_regressors < 0:
            raise ValueError("Invalid value for argument `num_regressors`. Expected a value "
                             f">= 0. Received: num_regressors={num_regressors}")
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self._state: Optional[np.ndarray] = None  # [sum, squared_sum, residual, count]
        self._num_samples = np.float32(0)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = np.asarray(y_true, np.float32)
        y_pred = np.asarray(y_pred, np.float32)
        if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
            y_true = y_true[..., None]
        elif y_pred.ndim == y_true.ndim - 1 and y_true.shape[-1] == 1:
            y_pred = y_pred[..., None]
        if y_pred.ndim != 2 or y_true.ndim != 2:
            raise ValueError("R2Score expects 2D inputs with shape (batch_size, output_dim). "
                             f"Received input shapes: y_pred.shape={y_pred.shape} and "
                             f"y_true.shape={y_true.shape}.")
        if self._state is None:
            self._state = np.zeros((4, y_pred.shape[-1]), np.float32)
        w: Any = np.float32(1) if sample_weight is None else np.asarray(sample_weight,
                                                                           np.float32)
        if np.ndim(w) == 1:
            w = w[:, None]
        w = np.broadcast_to(w, y_true.shape).astype(np.float32)
        wy = y_true * w
        self._state = self._state + np.stack([
            np.sum(wy, axis=0), np.sum(y_true * wy, axis=0),
            np.sum((y_true - y_pred) ** 2 * w, axis=0), np.sum(w, axis=0)]).astype(np.float32)
        self._num_samples = np.float32(self._num_samples + y_true.size)

    def result(self) -> Any:
        if self._state is None:
            return np.float32(0.0)
        s, sq, res, count = self._state
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = s / count
            total = sq - s * mean
            raw = np.float32(1) - res / total
        raw = np.where(np.isinf(raw), np.float32(0), raw).astype(np.float32)
        if self.class_aggregation == "uniform_average":
            r2: Any = np.float32(np.mean(raw))
        elif self.class_aggregation == "variance_weighted_average":
            r2 = np.float32(np.sum(total * raw) / np.sum(total))
        else:
            r2 = raw
        if self.num_regressors != 0:
            n, p = float(self._num_samples), float(self.num_regressors)
            if p > n - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 "
                              "score. Falling back to standard R2 score.", stacklevel=2)
            elif p == n - 1:
                warnings.warn("Division by zero in Adjusted R2 score. Falling back to "
                              "standard R2 score.", stacklevel=2)
            else:
                r2 = (np.float32(1) - (np.float32(1) - r2) * np.float32(n - 1)
                      / np.float32(n - p - 1)).astype(np.float32)
        return r2

    def reset_state(self) -> None:
        if self._state is not None:
            self._state = np.zeros_like(self._state)
        self._num_samples = np.float32(0)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype,
                "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


class _IoUBase(Metric):
    """Keras's IoU metrics: a confusion matrix of integer class ids (argmax of
    one-hot / probability inputs unless sparse) accumulated over the batches,
    in the metric's dtype (int32 by default, as Keras's ``"int"``: float sample
    weights are truncated, with Keras's warning)."""

    def __init__(self, num_classes: int, name: Optional[str] = None, dtype: Any = None,
                 ignore_class: Optional[int] = None, sparse_y_true: bool = True,
                 sparse_y_pred: bool = True, axis: int = -1) -> None:
        # (Keras's default "int", standardized as its JAX backend does)
        super().__init__(name=name, dtype="int32" if dtype in (None, "int") else dtype)
        self._direction = "up"
        self.num_classes = int(num_classes)
        self.ignore_class = ignore_class
        self.sparse_y_true = sparse_y_true
        self.sparse_y_pred = sparse_y_pred
        self.axis = axis
        self._cm_dtype = np.dtype(self.dtype)
        self._cm = np.zeros((self.num_classes, self.num_classes), self._cm_dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        yt, yp = np.asarray(y_true), np.asarray(y_pred)
        if not self.sparse_y_true:
            yt = np.argmax(yt, axis=self.axis)
        if not self.sparse_y_pred:
            yp = np.argmax(yp, axis=self.axis)
        yt = yt.astype(self._cm_dtype).reshape(-1)
        yp = yp.astype(self._cm_dtype).reshape(-1)
        if sample_weight is None:
            w = np.ones(yt.shape, self._cm_dtype)
        else:
            sw = np.asarray(sample_weight)
            if sw.dtype.kind == "f" and self._cm_dtype.kind in "iu":
                warnings.warn("You are passing weight as `float`, but dtype is `int`. This may "
                              "result in an incorrect weight due to type casting Consider using "
                              "integer weights.", stacklevel=2)
            flat = sw.astype(self._cm_dtype).reshape(-1) if sw.ndim > 1 \
                else sw.astype(self._cm_dtype)
            try:
                w = np.broadcast_to(flat, yt.shape)
            except ValueError:
                raise ValueError(f"`sample_weight` of shape {sw.shape} does not broadcast to "
                                 f"the {yt.size} class ids of `y_true` (as Keras, the ids are "
                                 "flattened first: give one weight per id).") from None
        n = self.num_classes
        keep = (yt >= 0) & (yt < n) & (yp >= 0) & (yp < n)
        if self.ignore_class is not None:
            keep &= yt != self.ignore_class
        cm = np.zeros((n, n), self._cm_dtype)
        np.add.at(cm, (yt[keep].astype(np.int64), yp[keep].astype(np.int64)), w[keep])
        self._cm = self._cm + cm

    def reset_state(self) -> None:
        self._cm = np.zeros_like(self._cm)

    @property
    def variables(self) -> List[Any]:
        return [_Variable(self._cm.copy(), name="total_confusion_matrix", trainable=False)]


class IoU(_IoUBase):
    """Intersection over union of ``target_class_ids``: TP / (TP + FP + FN) per
    class from the confusion matrix, averaged over the classes that occur."""

    def __init__(self, num_classes: int, target_class_ids: Sequence[int],
                 name: Optional[str] = None, dtype: Any = None,
                 ignore_class: Optional[int] = None, sparse_y_true: bool = True,
                 sparse_y_pred: bool = True, axis: int = -1) -> None:
        super().__init__(name=name, num_classes=num_classes, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis,
                         dtype=dtype)
        if max(target_class_ids) >= num_classes:
            raise ValueError(f"Target class id {max(target_class_ids)} is out of range, which "
                             f"is [{0}, {num_classes}).")
        self.target_class_ids = list(target_class_ids)

    def result(self) -> Any:
        cm = self._cm
        row = np.sum(cm, axis=0).astype(self._cm_dtype)
        col = np.sum(cm, axis=1).astype(self._cm_dtype)
        tp = np.diag(cm).astype(self._cm_dtype)
        denom = row + col - tp
        ids = np.asarray(self.target_class_ids, np.int64)
        tp = tp[ids].astype(np.float32)
        denom = denom[ids].astype(np.float32)
        valid = (denom > np.float32(1e-9)).astype(np.float32)
        from .backend import epsilon
        eps = np.float32(epsilon())
        iou = np.where(valid > 0, tp / (denom + eps), np.float32(0.0)).astype(np.float32)
        return np.float32(np.sum(iou, axis=self.axis) / (np.sum(valid) + eps))

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of the two classes of a binary output, ``y_pred >= threshold`` as 1."""

    def __init__(self, target_class_ids: Sequence[int] = (0, 1), threshold: float = 0.5,
                 name: Optional[str] = None, dtype: Any = None) -> None:
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name,
                         dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        yp = (np.asarray(y_pred, np.float32) >= np.float32(self.threshold)).astype(self._cm_dtype)
        super().update_state(np.asarray(y_true).astype(self._cm_dtype), yp, sample_weight)

    def get_config(self) -> Dict[str, Any]:
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold,
                "name": self.name, "dtype": self.dtype}


class MeanIoU(IoU):
    """IoU averaged over all ``num_classes`` classes."""

    def __init__(self, num_classes: int, name: Optional[str] = None, dtype: Any = None,
                 ignore_class: Optional[int] = None, sparse_y_true: bool = True,
                 sparse_y_pred: bool = True, axis: int = -1) -> None:
        super().__init__(name=name, num_classes=num_classes,
                         target_class_ids=list(range(num_classes)), axis=axis, dtype=dtype,
                         ignore_class=ignore_class, sparse_y_true=sparse_y_true,
                         sparse_y_pred=sparse_y_pred)

    def get_config(self) -> Dict[str, Any]:
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class OneHotIoU(IoU):
    """IoU with one-hot targets (and, unless ``sparse_y_pred``, probabilities)."""

    def __init__(self, num_classes: int, target_class_ids: Sequence[int],
                 name: Optional[str] = None, dtype: Any = None,
                 ignore_class: Optional[int] = None, sparse_y_pred: bool = False,
                 axis: int = -1) -> None:
        super().__init__(num_classes=num_classes, target_class_ids=target_class_ids, name=name,
                         dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> Dict[str, Any]:
        return {"num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                "name": self.name, "dtype": self.dtype, "ignore_class": self.ignore_class,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class OneHotMeanIoU(MeanIoU):
    """MeanIoU with one-hot targets (and, unless ``sparse_y_pred``, probabilities)."""

    def __init__(self, num_classes: int, name: Optional[str] = None, dtype: Any = None,
                 ignore_class: Optional[int] = None, sparse_y_pred: bool = False,
                 axis: int = -1) -> None:
        super().__init__(num_classes=num_classes, axis=axis, name=name, dtype=dtype,
                         ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred)

    def get_config(self) -> Dict[str, Any]:
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


_NATIVE_FUNCTIONS: Dict[Callable[..., Any], int] = {
    categorical_accuracy: CATEGORICAL_ACCURACY,
    sparse_categorical_accuracy: SPARSE_CATEGORICAL_ACCURACY,
    binary_accuracy: BINARY_ACCURACY,
}

_CLASSES = (
    Mean, Sum, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError,
    MeanAbsolutePercentageError, MeanSquaredLogarithmicError, RootMeanSquaredError,
    CosineSimilarity, LogCoshError, Hinge, SquaredHinge, CategoricalHinge, KLDivergence, Poisson,
    BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, TruePositives,
    FalsePositives, TrueNegatives, FalseNegatives, Precision, Recall, AUC, FBetaScore, F1Score,
    R2Score, SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall,
    RecallAtPrecision, PearsonCorrelation, ConcordanceCorrelation, IoU, BinaryIoU, MeanIoU,
    OneHotIoU, OneHotMeanIoU,
)

# Keras 3's keras.metrics.get(): class names, their snake_case and a few
# aliases map to the classes.  The names fastdense had before (the accuracy
# functions and mean_squared_error / mse) stay functions; compiled through
# resolve() they give the same values, names and direction.
_BY_NAME: Dict[str, Any] = {c.__name__: c for c in _CLASSES}
_BY_NAME.update({snake_case(c.__name__): c for c in _CLASSES})
_BY_NAME.update({
    "bce": BinaryCrossentropy, "BCE": BinaryCrossentropy,
    "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
    "MSE": MeanSquaredError,
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
})

# Keras metrics fastdense does not implement (a clearer error than "unknown").
_KERAS_UNSUPPORTED: set = set()

MetricLike = Union[str, Metric, Callable[..., Any]]


def _lookup(identifier: str) -> Any:
    """The metric class or function a name stands for (nothing instantiated,
    so no auto-name is used up), or Keras's error for an unknown name."""
    obj = _BY_NAME.get(identifier)
    if obj is None:
        valid = sorted(set(_BY_NAME) | {"accuracy", "acc"})
        if identifier in _KERAS_UNSUPPORTED:
            raise ValueError(f"Could not interpret metric identifier: {identifier}. The "
                             f"Keras metric {identifier!r} is not supported by fastdense "
                             f"yet. Supported: {valid}")
        raise ValueError(f"Could not interpret metric identifier: {identifier}. "
                         f"Supported: {valid}")
    return obj


def check(identifier: MetricLike) -> None:
    """Raises as ``get`` would for an identifier it cannot interpret, without
    creating a metric (compile checks its metrics this way; fit creates them)."""
    if isinstance(identifier, str):
        _lookup(identifier)
    elif not (isinstance(identifier, Metric) or callable(identifier)):
        raise ValueError(f"Could not interpret metric identifier: {identifier}")


def get(identifier: MetricLike) -> Union[Metric, Callable[..., Any]]:
    """A metric function or Metric instance for a name, an instance or a callable."""
    if isinstance(identifier, str):
        obj = _lookup(identifier)
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


def serialize(metric: Any) -> Any:
    """Keras's ``metrics.serialize``: a Metric as ``{"module":
    "keras.metrics", "class_name", "config", "registered_name"}``, a function
    as Keras's function record, a name as itself."""
    from . import saving as _saving
    return _saving._serialize_object(metric, "keras.metrics", "metric")


def deserialize(config: Any, custom_objects: Optional[Dict[str, Any]] = None) -> Any:
    """Keras's ``metrics.deserialize``: the metric of ``serialize``'s output
    (or of a name), looked up in ``custom_objects`` and the registry first."""
    from . import saving as _saving
    return _saving.deserialize_named(config, custom_objects, "metric", _BY_NAME, Metric, get)
