"""Losses with Keras 3's names, formulas and reduction.

Built-in losses run natively (fused with the output activation where Keras's
math allows); these numpy versions compute the same values for direct calls,
``evaluate`` with custom pieces and tests.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from ._autodiff import _v, squeeze_or_expand_to_same_rank
from ._naming import snake_case

__all__ = [
    "Loss", "LossFunctionWrapper", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "CosineSimilarity",
    "Huber", "LogCosh", "Hinge", "SquaredHinge", "CategoricalHinge", "KLDivergence", "Poisson",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "cosine_similarity", "huber", "log_cosh", "hinge",
    "squared_hinge", "categorical_hinge", "kl_divergence", "poisson",
    "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy", "Dice", "Tversky",
    "binary_focal_crossentropy", "categorical_focal_crossentropy", "dice", "tversky",
    "CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy", "Circle",
    "circle", "get", "serialize", "deserialize",
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
    if isinstance(axis, bool):
        raise ValueError("`axis` must be of type `int`. "
                         f"Received: axis={axis} of type {type(axis)}")
    if label_smoothing:
        n = np.shape(y_true)[-1]  # Keras: the number of classes is y_true.shape[-1]
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
    if labels.ndim == np.ndim(y_pred) and labels.shape[axis] == 1:
        labels = np.squeeze(labels, axis=axis)
    n = np.shape(y_pred)[axis]
    one_hot = (labels.astype(np.int64)[..., None] == np.arange(n)).astype(np.float32)
    if axis not in (-1, np.ndim(y_pred) - 1):
        one_hot = np.moveaxis(one_hot, -1, axis)
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


# The functions below follow keras/src/losses/losses.py (Keras 3.15) line by
# line, in float32, with numpy ufuncs only so that they also run on the
# autodiff tracer (fastdense._autodiff) when used as a loss.  Like Keras, the
# regression losses rank-match y_true / y_pred themselves; the hinge, KL and
# Poisson functions do not (LossFunctionWrapper.call does it for the classes).

def _prepare(y_true: Any, y_pred: Any, match_rank: bool = True) -> Tuple[Any, Any]:
    y_true, y_pred = _f32(y_true), _f32(y_pred)
    if match_rank:
        y_true, y_pred = _match_rank(y_true, y_pred)
    return y_true, y_pred


def mean_absolute_error(y_true: Any, y_pred: Any) -> Any:
    """``mean(abs(y_true - y_pred), axis=-1)``."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return np.mean(np.abs(y_true - y_pred), axis=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Any:
    """``100 * mean(abs((y_true - y_pred) / maximum(abs(y_true), epsilon)), axis=-1)``."""
    y_true, y_pred = _prepare(y_true, y_pred)
    diff = np.abs((y_true - y_pred) / np.maximum(np.abs(y_true), np.float32(EPSILON)))
    return np.float32(100.0) * np.mean(diff, axis=-1)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Any:
    """``mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)``."""
    y_true, y_pred = _prepare(y_true, y_pred)
    eps = np.float32(EPSILON)
    first_log = np.log(np.maximum(y_pred, eps) + np.float32(1.0))
    second_log = np.log(np.maximum(y_true, eps) + np.float32(1.0))
    return np.mean(np.square(first_log - second_log), axis=-1)


def _l2_normalize(x: Any, axis: int) -> Any:
    """Keras's ops.nn.normalize(order=2): ``x * min(rsqrt(sum(x**2)), 1/epsilon)``,
    written as ``x / sqrt(max(sum(x**2), epsilon**2))`` (the same value) so
    the gradient stays finite for an all-zero vector."""
    square_sum = np.sum(np.square(x), axis=axis, keepdims=True)
    return x / np.sqrt(np.maximum(square_sum, np.float32(EPSILON) ** 2))


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Any:
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)`` (a loss:
    -1 is best; 0 when either vector is all zeros)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    y_pred = _l2_normalize(y_pred, axis)
    y_true = _l2_normalize(y_true, axis)
    return -np.sum(y_true * y_pred, axis=axis)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Any:
    """Mean over the last axis of ``0.5 * x**2`` where ``|x| <= delta``, else
    ``delta * |x| - 0.5 * delta**2``, with ``x = y_pred - y_true``."""
    y_true, y_pred = _prepare(y_true, y_pred)
    d = np.float32(delta)
    half = np.float32(0.5)
    error = y_pred - y_true
    abs_error = np.abs(error)
    return np.mean(np.where(np.asarray(abs_error <= d), half * np.square(error),
                            d * abs_error - half * np.square(d)), axis=-1)


_LOG2 = np.float32(np.log(2.0))


def log_cosh(y_true: Any, y_pred: Any) -> Any:
    """``mean(log(cosh(y_pred - y_true)), axis=-1)``, computed as Keras does:
    ``x + softplus(-2x) - log(2)``."""
    y_true, y_pred = _prepare(y_true, y_pred)
    x = y_pred - y_true
    return np.mean(x + np.logaddexp(np.float32(-2.0) * x, np.float32(0.0)) - _LOG2, axis=-1)


def _convert_binary_labels_to_hinge(y_true: Any) -> Any:
    """Keras: labels that are all 0 or 1 become -1 / 1; others stay as they are."""
    values = np.asarray(y_true)
    if np.all((values == 0) | (values == 1)):
        return np.float32(2.0) * y_true - np.float32(1.0)
    return y_true


def hinge(y_true: Any, y_pred: Any) -> Any:
    """``mean(maximum(1 - y_true * y_pred, 0), axis=-1)``; {0, 1} labels are
    converted to {-1, 1}."""
    y_true, y_pred = _prepare(y_true, y_pred, match_rank=False)
    y_true = _convert_binary_labels_to_hinge(y_true)
    return np.mean(np.maximum(np.float32(1.0) - y_true * y_pred, np.float32(0.0)), axis=-1)


def squared_hinge(y_true: Any, y_pred: Any) -> Any:
    """``mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)``; {0, 1}
    labels are converted to {-1, 1}."""
    y_true, y_pred = _prepare(y_true, y_pred, match_rank=False)
    y_true = _convert_binary_labels_to_hinge(y_true)
    return np.mean(np.square(np.maximum(np.float32(1.0) - y_true * y_pred, np.float32(0.0))),
                   axis=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> Any:
    """``maximum(neg - pos + 1, 0)`` with ``pos = sum(y_true * y_pred)`` and
    ``neg = max((1 - y_true) * y_pred)`` over the last axis."""
    y_true, y_pred = _prepare(y_true, y_pred, match_rank=False)
    pos = np.sum(y_true * y_pred, axis=-1)
    neg = np.max((np.float32(1.0) - y_true) * y_pred, axis=-1)
    return np.maximum(neg - pos + np.float32(1.0), np.float32(0.0))


def kl_divergence(y_true: Any, y_pred: Any) -> Any:
    """``sum(y_true * log(y_true / y_pred), axis=-1)`` with both clipped to
    ``[epsilon, 1]``."""
    y_true, y_pred = _prepare(y_true, y_pred, match_rank=False)
    eps, one = np.float32(EPSILON), np.float32(1.0)
    y_true = np.clip(y_true, eps, one)
    y_pred = np.clip(y_pred, eps, one)
    return np.sum(y_true * np.log(y_true / y_pred), axis=-1)


def poisson(y_true: Any, y_pred: Any) -> Any:
    """``mean(y_pred - y_true * log(y_pred + epsilon), axis=-1)``."""
    y_true, y_pred = _prepare(y_true, y_pred, match_rank=False)
    return np.mean(y_pred - y_true * np.log(y_pred + np.float32(EPSILON)), axis=-1)


def binary_focal_crossentropy(y_true: Any, y_pred: Any, apply_class_balancing: bool = False,
                              alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                              label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """Keras's focal binary crossentropy: ``(1 - p_t) ** gamma * bce`` (times
    ``alpha`` / ``1 - alpha`` with ``apply_class_balancing``), the mean over
    ``axis``; ``p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)``."""
    y_true, y_pred = _f32(y_true), _f32(y_pred)
    y_true, y_pred = _match_rank(y_true, y_pred)
    one = np.float32(1.0)
    if label_smoothing:
        y_true = y_true * (one - np.float32(label_smoothing)) + np.float32(0.5 * label_smoothing)
    if from_logits:
        y_pred = one / (one + np.exp(-y_pred))
    out = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
    bce = -(y_true * np.log(out) + (one - y_true) * np.log(one - out))
    p_t = y_true * y_pred + (one - y_true) * (one - y_pred)
    focal_bce = np.power(one - p_t, np.float32(gamma)) * bce
    if apply_class_balancing:
        a = np.float32(alpha)
        focal_bce = (y_true * a + (one - y_true) * (one - a)) * focal_bce
    return np.mean(focal_bce, axis=axis)


def categorical_focal_crossentropy(y_true: Any, y_pred: Any, alpha: float = 0.25,
                                   gamma: float = 2.0, from_logits: bool = False,
                                   label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """Keras's focal categorical crossentropy: the sum over ``axis`` of
    ``alpha * (1 - p) ** gamma * -y_true * log(p)``, ``p`` the normalized,
    clipped ``y_pred``."""
    if isinstance(axis, bool):
        raise ValueError("`axis` must be of type `int`. "
                         f"Received: axis={axis} of type {type(axis)}")
    y_true, y_pred = _f32(y_true), _f32(y_pred)
    one = np.float32(1.0)
    if label_smoothing:
        n = np.shape(y_true)[-1]
        y_true = y_true * (one - np.float32(label_smoothing)) + np.float32(label_smoothing / n)
    if from_logits:
        e = np.exp(y_pred - np.max(y_pred, axis=axis, keepdims=True))
        y_pred = e / np.sum(e, axis=axis, keepdims=True)
    out = y_pred / np.sum(y_pred, axis=axis, keepdims=True)
    out = np.clip(out, EPSILON, 1.0 - EPSILON)
    cce = -y_true * np.log(out)
    return np.sum(np.power(one - out, np.float32(gamma)) * np.float32(alpha) * cce, axis=axis)


def dice(y_true: Any, y_pred: Any, axis: Any = None) -> Any:
    """``1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + epsilon)``
    over ``axis`` (all axes by default: one value for the batch, as Keras)."""
    y_true, y_pred = _f32(y_true), _f32(y_pred)
    intersection = np.sum(y_true * y_pred, axis=axis)
    return np.float32(1.0) - np.float32(2.0) * intersection / (
        np.sum(y_true, axis=axis) + np.sum(y_pred, axis=axis) + np.float32(EPSILON))


def tversky(y_true: Any, y_pred: Any, alpha: float = 0.5, beta: float = 0.5,
            axis: Any = None) -> Any:
    """``1 - tp / (tp + alpha * fp + beta * fn + epsilon)`` over ``axis``
    (all axes by default), as Keras's tversky."""
    y_true, y_pred = _f32(y_true), _f32(y_pred)
    one = np.float32(1.0)
    tp = np.sum(y_true * y_pred, axis=axis)
    fp = np.sum((one - y_pred) * y_true, axis=axis)
    fn = np.sum(y_pred * (one - y_true), axis=axis)
    return one - tp / (tp + fp * np.float32(alpha) + fn * np.float32(beta)
                       + np.float32(EPSILON))


def categorical_generalized_cross_entropy(y_true: Any, y_pred: Any, q: float) -> Any:
    """Keras's generalized cross entropy for noisy labels (Zhang & Sabuncu
    2018): ``(1 - p ** q) / q``, ``p`` the predicted probability of the
    integer label ``y_true``."""
    from .ops import one_hot  # (out-of-range labels: rows of zeros, as Keras's)
    y_pred = _f32(y_pred)
    labels = np.asarray(_v(y_true)).astype(np.int64)
    p = np.sum(y_pred * one_hot(labels, np.shape(y_pred)[-1], dtype="float32"), axis=-1)
    one = np.float32(1.0)
    return (one - np.power(p, np.float32(q))) / np.float32(q)


def _circle_parts(y_true: Any, y_pred: Any, ref_labels: Any, ref_embeddings: Any,
                  remove_diagonal: bool, gamma: float, margin: float) -> Tuple[Any, np.ndarray]:
    """(per-sample circle losses, the rows that have a positive and a negative
    pair): Keras's formula, with the masked pairs at a very negative finite
    value instead of -inf (the same sums; rows without pairs give 0 and no
    gradient, where -inf would give NaN gradients)."""
    y_pred = _f32(y_pred)
    labels = np.asarray(_v(y_true)).astype(np.int32).reshape(-1, 1)
    ref = y_pred if ref_embeddings is None else _f32(ref_embeddings)
    ref_l = labels if ref_labels is None else \
        np.asarray(_v(ref_labels)).astype(np.int32).reshape(-1, 1)
    one = np.float32(1.0)
    dist = np.maximum(one - np.matmul(y_pred, np.swapaxes(ref, 0, 1)), np.float32(0.0))
    pos = labels == ref_l.T
    neg = ~pos
    if remove_diagonal:
        pos = pos & ~np.eye(labels.size, ref_l.size, dtype=bool)
    posf, negf = pos.astype(np.float32), neg.astype(np.float32)
    m = np.float32(margin)
    pos_w = np.maximum((m + dist) * posf, np.float32(0.0))
    neg_w = np.maximum((one + m - dist) * negf, np.float32(0.0))
    g = np.float32(gamma)
    pos_wd = np.float32(-1.0) * g * pos_w * (m - dist)
    neg_wd = g * neg_w * ((one - m) - dist)
    low = np.float32(-1e30)

    def lse(v: Any, mask: np.ndarray) -> Any:
        x = np.where(mask, v, low)
        top = np.max(np.asarray(_v(x)), axis=1, keepdims=True)
        return np.log(np.sum(np.exp(x - top), axis=1)) + top[:, 0]

    valid = pos.any(axis=1) & neg.any(axis=1)
    z = lse(pos_wd, pos) + lse(neg_wd, neg)
    soft = np.logaddexp(np.float32(0.0), np.where(valid, z, np.float32(0.0)))
    return np.where(valid, soft, np.float32(0.0)), valid


def circle(y_true: Any, y_pred: Any, ref_labels: Any = None, ref_embeddings: Any = None,
           remove_diagonal: bool = True, gamma: float = 80, margin: float = 0.4) -> Any:
    """Keras's Circle loss (Sun et al. 2020) per sample: from the cosine
    distances between the (unit-normalized) embeddings ``y_pred`` and
    ``ref_embeddings`` (the batch itself by default), pairs with the same
    integer label as positives, the others as negatives."""
    return _circle_parts(y_true, y_pred, ref_labels, ref_embeddings, remove_diagonal, gamma,
                         margin)[0]


class Loss:
    """Base class: subclasses implement ``call(y_true, y_pred)`` returning
    per-sample values; ``__call__`` applies ``sample_weight`` and the reduction.

    To train, fastdense needs ``d loss / d y_pred``. By default it
    differentiates ``call`` automatically (write it with numpy or
    ``fastdense.ops``). A subclass may instead supply the gradient itself
    (a fastdense extension; Keras ignores the method)::

        class MyMSE(fastdense.losses.Loss):
            def call(self, y_true, y_pred):
                return fastdense.ops.mean(fastdense.ops.square(y_pred - y_true), axis=-1)

            def gradient(self, y_true, y_pred):
                return 2.0 * (y_pred - y_true) / y_pred.shape[-1]

    ``gradient(y_true, y_pred)`` gets the same arguments as ``call`` (float32
    arrays, brought to the same rank as Keras does) and returns an array of
    ``y_pred``'s shape: the gradient of the *per-sample* losses, i.e.
    ``d sum(call(y_true, y_pred)) / d y_pred``, whose row ``i`` is the gradient
    of sample ``i``'s loss (each sample's loss must depend only on its own
    row of ``y_pred``). It must not apply ``sample_weight`` nor the reduction:
    fastdense scales row ``i`` by the sample's weight (from ``sample_weight``
    or ``class_weight``) and by the reduction exactly as for ``call``'s values
    (``"sum_over_batch_size"``: divided by the number of loss values, not by
    the sum of the weights; ``"sum"``: not divided; ``"mean_with_sample_weight"``:
    divided by the sum of the weights). When ``gradient`` is defined, ``call``
    is only evaluated for the loss value (on plain arrays, so any numpy code
    works) and never traced.
    """

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


def has_gradient(loss: Any) -> bool:
    """True when ``loss`` is a Loss that supplies ``gradient(y_true, y_pred)``."""
    return isinstance(loss, Loss) and callable(getattr(loss, "gradient", None))


def value_and_gradient(loss: Loss, y_true: Any, y_pred: Any, sample_weight: Any = None
                       ) -> Tuple[float, np.ndarray]:
    """Reduced loss value and ``d loss / d y_pred`` for a Loss with a
    ``gradient`` method (see :class:`Loss`): ``call`` gives the per-sample
    values, ``gradient`` their per-sample gradients, and the weights and the
    reduction are applied to both as fastdense's automatic differentiation
    would (``fit`` / ``train_on_batch``)."""
    from ._autodiff import loss_and_grad
    y_pred_arr = np.asarray(y_pred, dtype=np.float32)
    t, p = squeeze_or_expand_to_same_rank(np.asarray(y_true, dtype=np.float32), y_pred_arr)
    values = np.asarray(loss.call(t, p), dtype=np.float32)
    name = f"{type(loss).__name__}.gradient(y_true, y_pred)"
    out = loss.gradient(t, p)  # type: ignore[attr-defined]
    try:
        grad = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must return a numeric array of y_pred's shape "
                         f"{tuple(np.shape(p))}. Received: {out!r} of type "
                         f"{type(out).__name__}") from None
    if grad.shape != np.shape(p):
        raise ValueError(f"{name} must return an array of y_pred's shape {tuple(np.shape(p))} "
                         "(the gradient of each sample's loss with respect to its row of "
                         f"y_pred). Received: an array of shape {grad.shape}")
    reduction = loss.reduction
    # d(reduced loss) / d(values): linear in the values, so the same rule as
    # the automatic path (values * weights, then the reduction).
    value, dvalues = loss_and_grad(
        lambda _, v: reduce_values(v, sample_weight, reduction), values, values,
        match_ranks=False)
    if dvalues.ndim == 0:
        scale = dvalues.astype(np.float64)
    else:
        if dvalues.shape[0] != grad.shape[0]:
            raise ValueError(f"{type(loss).__name__}.call(y_true, y_pred) must return one loss "
                             f"value per sample (shape ({grad.shape[0]},) or ({grad.shape[0]}, "
                             f"...)) when the loss supplies `gradient`. Received: shape "
                             f"{values.shape}")
        scale = dvalues.reshape(dvalues.shape[0], -1)[:, 0].astype(np.float64)
        scale = scale.reshape((-1,) + (1,) * (grad.ndim - 1))
    return float(value), (grad * scale).astype(np.float32).reshape(y_pred_arr.shape)


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
        if type(self).call is not LossFunctionWrapper.call or has_gradient(self):
            return None  # a subclass's own values or gradient: the Python path
        code = _NATIVE_FUNCTIONS.get(self.fn)
        kw = dict(self._fn_kwargs)
        from_logits = bool(kw.pop("from_logits", False))
        if kw.pop("axis", -1) not in (-1, 1):  # the engine reduces over the units axis
            return None
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
    # Keras 3 has no label_smoothing here; its argument order puts axis before name.
    def __init__(self, from_logits: bool = False, ignore_class: Optional[int] = None,
                 reduction: Optional[str] = "sum_over_batch_size", axis: int = -1,
                 name: str = "sparse_categorical_crossentropy", dtype: Any = None) -> None:
        if ignore_class is not None:
            sparse_categorical_crossentropy([0], [[1.0]], ignore_class=ignore_class)  # raises
        super().__init__(sparse_categorical_crossentropy, reduction=reduction, name=name,
                         dtype=dtype, from_logits=from_logits, ignore_class=ignore_class,
                         axis=axis)
        self.from_logits, self.ignore_class, self.axis = from_logits, ignore_class, axis

    def get_config(self) -> Dict[str, Any]:
        # Keras's keys (no axis); a non-default axis is kept so it survives a reload.
        config = {**Loss.get_config(self), "from_logits": self.from_logits,
                  "ignore_class": self.ignore_class}
        if self.axis != -1:
            config["axis"] = self.axis
        return config


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


class MeanAbsoluteError(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "mean_absolute_error", dtype: Any = None) -> None:
        super().__init__(mean_absolute_error, reduction=reduction, name=name, dtype=dtype)


class MeanAbsolutePercentageError(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "mean_absolute_percentage_error", dtype: Any = None) -> None:
        super().__init__(mean_absolute_percentage_error, reduction=reduction, name=name,
                         dtype=dtype)


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "mean_squared_logarithmic_error", dtype: Any = None) -> None:
        super().__init__(mean_squared_logarithmic_error, reduction=reduction, name=name,
                         dtype=dtype)


class CosineSimilarity(LossFunctionWrapper):
    # Keras's get_config drops `axis`; fastdense keeps it (Keras loads it back).
    def __init__(self, axis: int = -1, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "cosine_similarity", dtype: Any = None) -> None:
        super().__init__(cosine_similarity, reduction=reduction, name=name, dtype=dtype,
                         axis=axis)
        self.axis = axis


class Huber(LossFunctionWrapper):
    # Keras's get_config drops `delta`; fastdense keeps it (Keras loads it back).
    def __init__(self, delta: float = 1.0, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "huber_loss", dtype: Any = None) -> None:
        super().__init__(huber, reduction=reduction, name=name, dtype=dtype, delta=delta)
        self.delta = delta


class LogCosh(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "log_cosh", dtype: Any = None) -> None:
        super().__init__(log_cosh, reduction=reduction, name=name, dtype=dtype)


class Hinge(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "hinge", dtype: Any = None) -> None:
        super().__init__(hinge, reduction=reduction, name=name, dtype=dtype)


class SquaredHinge(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "squared_hinge", dtype: Any = None) -> None:
        super().__init__(squared_hinge, reduction=reduction, name=name, dtype=dtype)


class CategoricalHinge(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "categorical_hinge", dtype: Any = None) -> None:
        super().__init__(categorical_hinge, reduction=reduction, name=name, dtype=dtype)


class KLDivergence(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "kl_divergence", dtype: Any = None) -> None:
        super().__init__(kl_divergence, reduction=reduction, name=name, dtype=dtype)


class Poisson(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "poisson", dtype: Any = None) -> None:
        super().__init__(poisson, reduction=reduction, name=name, dtype=dtype)


class BinaryFocalCrossentropy(LossFunctionWrapper):
    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25,
                 gamma: float = 2.0, from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "binary_focal_crossentropy", dtype: Any = None) -> None:
        # (keyword order: Keras's get_config order)
        super().__init__(binary_focal_crossentropy, reduction=reduction, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma)
        self.apply_class_balancing, self.alpha, self.gamma = apply_class_balancing, alpha, gamma
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis


class CategoricalFocalCrossentropy(LossFunctionWrapper):
    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, axis: int = -1,
                 reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "categorical_focal_crossentropy", dtype: Any = None) -> None:
        super().__init__(categorical_focal_crossentropy, reduction=reduction, name=name,
                         dtype=dtype, from_logits=from_logits, label_smoothing=label_smoothing,
                         axis=axis, alpha=alpha, gamma=gamma)
        self.alpha, self.gamma = alpha, gamma
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis


class Dice(LossFunctionWrapper):
    def __init__(self, reduction: Optional[str] = "sum_over_batch_size", name: str = "dice",
                 axis: Any = None, dtype: Any = None) -> None:
        super().__init__(dice, reduction=reduction, name=name, dtype=dtype, axis=axis)
        self.axis = axis


class CategoricalGeneralizedCrossEntropy(LossFunctionWrapper):
    """Generalized cross entropy (``q`` in (0, 1): towards MAE as q -> 1,
    towards crossentropy as q -> 0), for integer labels and probabilities."""

    def __init__(self, q: float = 0.5, reduction: Optional[str] = "sum_over_batch_size",
                 name: str = "categorical_generalized_cross_entropy", dtype: Any = None) -> None:
        if not 0 < q < 1:
            raise ValueError("q must be in the interval (0, 1)")
        super().__init__(categorical_generalized_cross_entropy, reduction=reduction, name=name,
                         dtype=dtype, q=q)
        self.q = q


class Circle(LossFunctionWrapper):
    """Circle loss for metric learning: integer labels, unit-normalized
    embeddings (e.g. after ``UnitNormalization``).  As in Keras, samples
    without both a positive and a negative pair in the batch are left out of
    the mean (Keras masks the losses that are 0)."""

    def __init__(self, gamma: float = 80.0, margin: float = 0.4, remove_diagonal: bool = True,
                 reduction: Optional[str] = "sum_over_batch_size", name: str = "circle",
                 dtype: Any = None) -> None:
        super().__init__(circle, reduction=reduction, name=name, dtype=dtype, gamma=gamma,
                         margin=margin, remove_diagonal=remove_diagonal)
        self.gamma, self.margin, self.remove_diagonal = gamma, margin, remove_diagonal

    def call(self, y_true: Any, y_pred: Any) -> Any:
        values, _ = _circle_parts(y_true, y_pred, None, None, self.remove_diagonal, self.gamma,
                                  self.margin)
        # (Keras's mask, loss > 0, in the reduction: the kept values weigh
        # total / kept under a mean, 1 otherwise)
        kept = np.asarray(_v(values)) > 0
        if self.reduction in ("mean", "sum_over_batch_size"):
            n = float(kept.sum())
            scale = np.where(kept, np.float32(kept.size / n) if n else np.float32(0.0),
                             np.float32(0.0)).astype(np.float32)
        else:
            scale = kept.astype(np.float32)
        return values * scale


class Tversky(LossFunctionWrapper):
    def __init__(self, alpha: float = 0.5, beta: float = 0.5,
                 reduction: Optional[str] = "sum_over_batch_size", name: str = "tversky",
                 axis: Any = None, dtype: Any = None) -> None:
        super().__init__(tversky, reduction=reduction, name=name, dtype=dtype, alpha=alpha,
                         beta=beta, axis=axis)
        self.alpha, self.beta, self.axis = alpha, beta, axis


_NATIVE_FUNCTIONS: Dict[Callable[..., Any], int] = {
    categorical_crossentropy: CCE,
    sparse_categorical_crossentropy: SCCE,
    binary_crossentropy: BCE,
    mean_squared_error: MSE,
}

_FUNCTIONS = (
    categorical_crossentropy, sparse_categorical_crossentropy, binary_crossentropy,
    mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_logarithmic_error, cosine_similarity, huber, log_cosh, hinge, squared_hinge,
    categorical_hinge, kl_divergence, poisson, binary_focal_crossentropy,
    categorical_focal_crossentropy, dice, tversky, categorical_generalized_cross_entropy, circle,
)
_CLASSES = (
    CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, CosineSimilarity, Huber, LogCosh, Hinge, SquaredHinge,
    CategoricalHinge, KLDivergence, Poisson, BinaryFocalCrossentropy,
    CategoricalFocalCrossentropy, Dice, Tversky, CategoricalGeneralizedCrossEntropy, Circle,
)

# Keras 3's keras.losses.get(): the names of its loss classes and functions
# plus its short aliases (and nothing else: no lower-casing).
_BY_NAME: Dict[str, Any] = {f.__name__: f for f in _FUNCTIONS}
_BY_NAME.update({c.__name__: c for c in _CLASSES})
_BY_NAME.update({
    "bce": binary_crossentropy, "BCE": binary_crossentropy,
    "kld": kl_divergence, "KLD": kl_divergence,
    "mae": mean_absolute_error, "MAE": mean_absolute_error,
    "mse": mean_squared_error, "MSE": mean_squared_error,
    "mape": mean_absolute_percentage_error, "MAPE": mean_absolute_percentage_error,
    "msle": mean_squared_logarithmic_error, "MSLE": mean_squared_logarithmic_error,
})

# Keras losses fastdense does not implement (a clearer error than "unknown").
_KERAS_UNSUPPORTED = ("CTC", "ctc")

LossLike = Union[str, Loss, Callable[..., Any]]


def get(identifier: LossLike) -> Union[Loss, Callable[..., Any]]:
    """A loss function or Loss instance for a name, an instance or a callable."""
    if isinstance(identifier, str):
        obj = _BY_NAME.get(identifier)
        if obj is None:
            if identifier in _KERAS_UNSUPPORTED:
                raise ValueError(f"Could not interpret loss identifier: {identifier}. The "
                                 f"Keras loss {identifier!r} is not supported by fastdense "
                                 f"yet. Supported: {sorted(_BY_NAME)}")
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
    """Keras's ``losses.serialize``: a Loss as ``{"module": "keras.losses",
    "class_name", "config", "registered_name"}``, a function as Keras's
    function record (its name in ``"config"``), a name as itself."""
    from . import saving as _saving
    return _saving._serialize_object(loss, "keras.losses", "loss")


def deserialize(config: Any, custom_objects: Optional[Dict[str, Any]] = None) -> Any:
    """Keras's ``losses.deserialize``: the loss of ``serialize``'s output (or
    of a name), looked up in ``custom_objects`` and the registry first."""
    from . import saving as _saving
    return _saving.deserialize_named(config, custom_objects, "loss", _BY_NAME, Loss, get)
