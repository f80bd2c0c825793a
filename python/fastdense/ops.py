"""``keras.ops``-compatible functions that are differentiable by fastdense.

Use them in custom losses and metrics exactly as with Keras 3::

    import fastdense as keras

    def my_loss(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)

On plain numpy input they return numpy arrays; on traced input (the
``y_pred`` that fastdense passes while computing loss gradients) they return
traced values, so the gradient can be obtained by reverse-mode autodiff.

Dtypes follow Keras' conventions: Keras' default float type (``floatx``) is
float32, so Python data is converted to float32/int32 and operations that
produce floats from non-float64 inputs (``mean`` of ints, ``sqrt``,
``divide``...) return float32 where plain numpy would return float64.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _autodiff as _ad

Tensor = _ad.Tensor
Axis = Union[None, int, Sequence[int]]

_FLOATX = "float32"
_EPSILON = 1e-7

__all__ = [
    "abs", "absolute", "add", "all", "any", "arccos", "arcsin", "arctan", "argmax",
    "argmin", "binary_crossentropy", "broadcast_to", "cast", "categorical_crossentropy",
    "ceil", "clip", "concatenate", "convert_to_numpy", "convert_to_tensor", "cos",
    "cosh", "count_nonzero", "cumsum", "divide", "divide_no_nan", "dot", "elu", "equal",
    "erf", "exp", "expand_dims", "expm1", "flip", "floor", "floor_divide", "full",
    "full_like", "gelu", "greater", "greater_equal", "hard_sigmoid", "is_tensor", "isfinite",
    "isinf", "isnan", "leaky_relu", "less", "less_equal", "log", "log10", "log1p", "log2",
    "log_sigmoid", "log_softmax", "logaddexp", "logical_and", "logical_not", "logical_or",
    "logical_xor", "logsumexp", "matmul", "max", "maximum", "mean", "min", "minimum", "mod",
    "moveaxis", "multiply", "ndim", "negative", "norm", "not_equal", "one_hot", "ones",
    "ones_like", "power", "prod", "reciprocal", "relu", "relu6", "reshape", "round", "selu",
    "shape", "sigmoid", "sign", "silu", "sin", "sinh", "size", "softmax", "softplus",
    "softsign", "sparse_categorical_crossentropy", "sqrt", "square", "squeeze", "stack",
    "std", "stop_gradient", "subtract", "sum", "swapaxes", "swish", "take",
    "take_along_axis", "tan", "tanh", "tile", "transpose", "true_divide", "var", "where",
    "zeros", "zeros_like",
]


# ---------------------------------------------------------------------------
# conversion helpers
# ---------------------------------------------------------------------------


def _is_array(x: Any) -> bool:
    return isinstance(x, (Tensor, np.ndarray, np.generic))


def _is_weak(x: Any) -> bool:
    return isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic)


def _arg(x: Any) -> Any:
    """Operand of a binary op: keep arrays/tensors and Python scalars (weakly
    typed, as in Keras/NEP 50), convert anything else (lists...)."""
    if _is_array(x) or _is_weak(x):
        return x
    return convert_to_tensor(x)


def _arr(x: Any) -> Any:
    """Operand of a unary op: always an array or tensor."""
    if _is_array(x):
        return x
    return convert_to_tensor(x)


def _has_f64(inputs: Sequence[Any]) -> bool:
    for x in inputs:
        if _is_array(x) and np.dtype(x.dtype) == np.float64:
            return True
    return False


def _fix(res: Any, *inputs: Any) -> Any:
    """Keras promotion: a float64 result from non-float64 inputs -> floatx."""
    dt = getattr(res, "dtype", None)
    if dt is not None and np.dtype(dt) == np.float64 and not _has_f64(inputs):
        return _ad.cast(res, _FLOATX)
    return res


def _float_arr(x: Any) -> Any:
    """Operand converted to a float dtype (ints/bools -> floatx)."""
    x = _arr(x)
    if np.dtype(x.dtype).kind not in "fc":
        return _ad.cast(x, _FLOATX)
    return x


def convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None, ragged: Any = None) -> Any:
    """Convert to an ndarray (traced values are kept, cast when ``dtype`` is given).

    Python data converts like Keras: floats -> float32, ints -> int32.
    """
    if isinstance(x, Tensor):
        return x if dtype is None or np.dtype(dtype) == x.dtype else _ad.cast(x, dtype)
    if isinstance(x, (list, tuple)) and _contains_tensor(x):
        stacked = _ad.stack([convert_to_tensor(i) for i in x])
        return stacked if dtype is None else _ad.cast(stacked, dtype)
    if dtype is not None:
        return np.asarray(x, dtype=dtype)
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    arr = np.asarray(x)
    if arr.dtype == np.float64:
        return arr.astype(_FLOATX)
    if arr.dtype == np.int64:
        return arr.astype(np.int32)
    return arr


def _contains_tensor(x: Any) -> bool:
    if isinstance(x, Tensor):
        return True
    if isinstance(x, (list, tuple)):
        for i in x:
            if _contains_tensor(i):
                return True
    return False


def convert_to_numpy(x: Any) -> np.ndarray:
    """Plain ndarray (drops the trace)."""
    return np.asarray(_ad._v(x))


def is_tensor(x: Any) -> bool:
    return isinstance(x, (Tensor, np.ndarray))


def cast(x: Any, dtype: Any) -> Any:
    return _ad.cast(_arr(x), dtype)


def stop_gradient(variable: Any) -> np.ndarray:
    return _ad.stop_gradient(variable)


def shape(x: Any) -> Tuple[int, ...]:
    return tuple(np.shape(_ad._v(x)))


def ndim(x: Any) -> int:
    return int(np.ndim(_ad._v(x)))


def size(x: Any) -> int:
    return int(np.size(_ad._v(x)))


# ---------------------------------------------------------------------------
# elementwise arithmetic
# ---------------------------------------------------------------------------


def _binary(fn: Any, x1: Any, x2: Any) -> Any:
    a, b = _arg(x1), _arg(x2)
    return _fix(fn(a, b), a, b)


def add(x1: Any, x2: Any) -> Any:
    return _binary(_ad.add, x1, x2)


def subtract(x1: Any, x2: Any) -> Any:
    return _binary(_ad.subtract, x1, x2)


def multiply(x1: Any, x2: Any) -> Any:
    return _binary(_ad.multiply, x1, x2)


def divide(x1: Any, x2: Any) -> Any:
    return _binary(_ad.divide, x1, x2)


def true_divide(x1: Any, x2: Any) -> Any:
    return divide(x1, x2)


def divide_no_nan(x1: Any, x2: Any) -> Any:
    """``x1 / x2`` with 0 where ``x2 == 0`` (gradient also 0 there)."""
    a, b = _arg(x1), _arg(x2)
    zero = np.equal(_ad._v(b), 0)
    safe_b = _ad.where(zero, 1, b)
    return _fix(_ad.where(zero, 0, _ad.divide(a, safe_b)), a, b)


def power(x1: Any, x2: Any) -> Any:
    return _binary(_ad.power, x1, x2)


def maximum(x1: Any, x2: Any) -> Any:
    return _binary(_ad.maximum, x1, x2)


def minimum(x1: Any, x2: Any) -> Any:
    return _binary(_ad.minimum, x1, x2)


def logaddexp(x1: Any, x2: Any) -> Any:
    a, b = _arg(x1), _arg(x2)
    return _fix(_ad._apply_ufunc(np.logaddexp, (a, b), {}), a, b)


def mod(x1: Any, x2: Any) -> Any:
    a, b = _arg(x1), _arg(x2)
    return _fix(_ad._apply_ufunc(np.remainder, (a, b), {}), a, b)


def floor_divide(x1: Any, x2: Any) -> Any:
    a, b = _arg(x1), _arg(x2)
    return _fix(_ad._apply_ufunc(np.floor_divide, (a, b), {}), a, b)


def _unary(uf: np.ufunc, x: Any) -> Any:
    a = _arr(x)
    return _fix(_ad.unary(uf, a), a)


def negative(x: Any) -> Any:
    return _unary(np.negative, x)


def square(x: Any) -> Any:
    return _unary(np.square, x)


def sqrt(x: Any) -> Any:
    return _unary(np.sqrt, x)


def abs(x: Any) -> Any:  # noqa: A001
    return _unary(np.absolute, x)


def absolute(x: Any) -> Any:
    return _unary(np.absolute, x)


def exp(x: Any) -> Any:
    return _unary(np.exp, x)


def expm1(x: Any) -> Any:
    return _unary(np.expm1, x)


def log(x: Any) -> Any:
    return _unary(np.log, x)


def log1p(x: Any) -> Any:
    return _unary(np.log1p, x)


def log2(x: Any) -> Any:
    return _unary(np.log2, x)


def log10(x: Any) -> Any:
    return _unary(np.log10, x)


def reciprocal(x: Any) -> Any:
    return _unary(np.reciprocal, _float_arr(x))


def sign(x: Any) -> Any:
    return _unary(np.sign, x)


def floor(x: Any) -> Any:
    return _unary(np.floor, x)


def ceil(x: Any) -> Any:
    return _unary(np.ceil, x)


def round(x: Any, decimals: int = 0) -> Any:  # noqa: A001
    a = _arr(x)
    return _fix(_ad._round_impl(a, decimals), a)


def sin(x: Any) -> Any:
    return _unary(np.sin, x)


def cos(x: Any) -> Any:
    return _unary(np.cos, x)


def tan(x: Any) -> Any:
    return _unary(np.tan, x)


def arcsin(x: Any) -> Any:
    return _unary(np.arcsin, x)


def arccos(x: Any) -> Any:
    return _unary(np.arccos, x)


def arctan(x: Any) -> Any:
    return _unary(np.arctan, x)


def sinh(x: Any) -> Any:
    return _unary(np.sinh, x)


def cosh(x: Any) -> Any:
    return _unary(np.cosh, x)


def tanh(x: Any) -> Any:
    return _unary(np.tanh, x)


def erf(x: Any) -> Any:
    a = _float_arr(x)
    return _fix(_ad.erf(a), a)


def clip(x: Any, x_min: Any, x_max: Any) -> Any:
    a = _arr(x)
    lo, hi = _arg(x_min), _arg(x_max)
    return _fix(_ad.clip(a, lo, hi), a, lo, hi)


def where(condition: Any, x1: Any = None, x2: Any = None) -> Any:
    if x1 is None and x2 is None:
        return np.where(np.asarray(_ad._v(condition)))
    a, b = _arg(x1), _arg(x2)
    return _fix(_ad.where(_ad._v(condition), a, b), a, b)


# ---------------------------------------------------------------------------
# comparisons / logical (not differentiable: plain boolean arrays)
# ---------------------------------------------------------------------------


def _cmp(uf: np.ufunc, x1: Any, x2: Any) -> np.ndarray:
    return uf(_ad._v(_arg(x1)), _ad._v(_arg(x2)))


def equal(x1: Any, x2: Any) -> np.ndarray:
    return _cmp(np.equal, x1, x2)


def not_equal(x1: Any, x2: Any) -> np.ndarray:
    return _cmp(np.not_equal, x1, x2)


def greater(x1: Any, x2: Any) -> np.ndarray:
    return _cmp(np.greater, x1, x2)


def greater_equal(x1: Any, x2: Any) -> np.ndarray:
    return _cmp(np.greater_equal, x1, x2)


def less(x1: Any, x2: Any) -> np.ndarray:
    return _cmp(np.less, x1, x2)


def less_equal(x1: Any, x2: Any) -> np.ndarray:
    return _cmp(np.less_equal, x1, x2)


def logical_and(x1: Any, x2: Any) -> np.ndarray:
    return _cmp(np.logical_and, x1, x2)


def logical_or(x1: Any, x2: Any) -> np.ndarray:
    return _cmp(np.logical_or, x1, x2)


def logical_xor(x1: Any, x2: Any) -> np.ndarray:
    return _cmp(np.logical_xor, x1, x2)


def logical_not(x: Any) -> np.ndarray:
    return np.logical_not(_ad._v(_arr(x)))


def isnan(x: Any) -> np.ndarray:
    return np.isnan(_ad._v(_arr(x)))


def isinf(x: Any) -> np.ndarray:
    return np.isinf(_ad._v(_arr(x)))


def isfinite(x: Any) -> np.ndarray:
    return np.isfinite(_ad._v(_arr(x)))


def all(x: Any, axis: Axis = None, keepdims: bool = False) -> np.ndarray:  # noqa: A001
    return np.all(_ad._v(_arr(x)), axis=_ax(axis), keepdims=keepdims)


def any(x: Any, axis: Axis = None, keepdims: bool = False) -> np.ndarray:  # noqa: A001
    return np.any(_ad._v(_arr(x)), axis=_ax(axis), keepdims=keepdims)


def count_nonzero(x: Any, axis: Axis = None) -> np.ndarray:
    return np.asarray(np.count_nonzero(_ad._v(_arr(x)), axis=_ax(axis))).astype(np.int32)


def argmax(x: Any, axis: Optional[int] = None, keepdims: bool = False) -> np.ndarray:
    return np.argmax(_ad._v(_arr(x)), axis=axis, keepdims=keepdims).astype(np.int32)


def argmin(x: Any, axis: Optional[int] = None, keepdims: bool = False) -> np.ndarray:
    return np.argmin(_ad._v(_arr(x)), axis=axis, keepdims=keepdims).astype(np.int32)


# ---------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------


def _ax(axis: Axis) -> Any:
    if isinstance(axis, list):
        return tuple(axis)
    return axis


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    a = _arr(x)
    return _fix(_ad.mean(a, axis=_ax(axis), keepdims=keepdims), a)


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    a = _arr(x)
    return _ad.sum_(a, axis=_ax(axis), keepdims=keepdims)


def max(x: Any, axis: Axis = None, keepdims: bool = False, initial: Any = None) -> Any:  # noqa: A001
    a = _arr(x)
    return _ad.amax(a, axis=_ax(axis), keepdims=keepdims, initial=initial)


def min(x: Any, axis: Axis = None, keepdims: bool = False, initial: Any = None) -> Any:  # noqa: A001
    a = _arr(x)
    return _ad.amin(a, axis=_ax(axis), keepdims=keepdims, initial=initial)


def prod(x: Any, axis: Axis = None, keepdims: bool = False, dtype: Any = None) -> Any:
    a = _arr(x)
    return _ad.prod(a, axis=_ax(axis), keepdims=keepdims, dtype=dtype)


def var(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    a = _float_arr(x)
    return _fix(_ad.var(a, axis=_ax(axis), keepdims=keepdims), a)


def std(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    a = _float_arr(x)
    return _fix(_ad.std(a, axis=_ax(axis), keepdims=keepdims), a)


def cumsum(x: Any, axis: Optional[int] = None, dtype: Any = None) -> Any:
    a = _arr(x)
    return _ad.cumsum(a, axis=axis, dtype=dtype)


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    a = _float_arr(x)
    return _fix(_ad.logsumexp(a, axis=_ax(axis), keepdims=keepdims), a)


def norm(x: Any, ord: Any = None, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A002
    a = _float_arr(x)
    return _fix(_ad.norm(a, ord=ord, axis=_ax(axis), keepdims=keepdims), a)


# ---------------------------------------------------------------------------
# activations (keras.ops / keras.ops.nn names)
# ---------------------------------------------------------------------------


def sigmoid(x: Any) -> Any:
    a = _float_arr(x)
    return _fix(_ad.sigmoid(a), a)


def log_sigmoid(x: Any) -> Any:
    a = _float_arr(x)
    return _fix(_ad.negative(_ad.softplus(_ad.negative(a))), a)


def relu(x: Any) -> Any:
    a = _arr(x)
    return _ad.relu(a)


def relu6(x: Any) -> Any:
    a = _arr(x)
    return _ad.clip(a, 0, 6)


def softplus(x: Any) -> Any:
    a = _float_arr(x)
    return _fix(_ad.softplus(a), a)


def softsign(x: Any) -> Any:
    a = _float_arr(x)
    return _ad.divide(a, _ad.add(_ad.absolute(a), 1))


def silu(x: Any) -> Any:
    a = _float_arr(x)
    return _fix(_ad.multiply(a, _ad.sigmoid(a)), a)


swish = silu


def elu(x: Any, alpha: float = 1.0) -> Any:
    a = _float_arr(x)
    neg = _ad.multiply(alpha, _ad.unary(np.expm1, _ad.minimum(a, 0)))
    return _fix(_ad.where(np.greater(_ad._v(a), 0), a, neg), a)


def selu(x: Any) -> Any:
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946
    return multiply(scale, elu(x, alpha))


def leaky_relu(x: Any, negative_slope: float = 0.2) -> Any:
    a = _float_arr(x)
    return _ad.maximum(a, _ad.multiply(negative_slope, a))


def hard_sigmoid(x: Any) -> Any:
    a = _float_arr(x)
    return _ad.divide(_ad.clip(_ad.add(a, 3.0), 0.0, 6.0), 6.0)


def gelu(x: Any, approximate: bool = True) -> Any:
    a = _float_arr(x)
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        inner = _ad.multiply(c, _ad.add(a, _ad.multiply(0.044715, _ad.power(a, 3))))
        res = _ad.multiply(_ad.multiply(0.5, a), _ad.add(1.0, _ad.unary(np.tanh, inner)))
    else:
        res = _ad.multiply(_ad.multiply(0.5, a), _ad.add(1.0, _ad.erf(_ad.divide(a, math.sqrt(2.0)))))
    return _fix(res, a)


def softmax(x: Any, axis: Axis = -1) -> Any:
    a = _float_arr(x)
    return _fix(_ad.softmax(a, axis=_ax(axis)), a)


def log_softmax(x: Any, axis: Axis = -1) -> Any:
    a = _float_arr(x)
    return _fix(_ad.log_softmax(a, axis=_ax(axis)), a)


# ---------------------------------------------------------------------------
# losses (elementwise / per-sample, as keras.ops.*_crossentropy)
# ---------------------------------------------------------------------------


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Any:
    t, o = _float_arr(target), _float_arr(output)
    if shape(t) != shape(o):
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. "
            f"Received: target.shape={shape(t)}, output.shape={shape(o)}"
        )
    if from_logits:
        o = _ad.sigmoid(o)
    o = _ad.clip(o, _EPSILON, 1.0 - _EPSILON)
    bce = _ad.add(_ad.multiply(t, _ad.unary(np.log, o)),
                  _ad.multiply(_ad.subtract(1.0, t), _ad.unary(np.log, _ad.subtract(1.0, o))))
    return _fix(_ad.negative(bce), t, o)


def categorical_crossentropy(target: Any, output: Any, from_logits: bool = False, axis: int = -1) -> Any:
    t, o = _float_arr(target), _float_arr(output)
    if shape(t) != shape(o):
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. "
            f"Received: target.shape={shape(t)}, output.shape={shape(o)}"
        )
    if from_logits:
        log_prob = _ad.log_softmax(o, axis=axis)
    else:
        o = _ad.divide(o, _ad.sum_(o, axis=axis, keepdims=True))
        o = _ad.clip(o, _EPSILON, 1.0 - _EPSILON)
        log_prob = _ad.unary(np.log, o)
    return _fix(_ad.negative(_ad.sum_(_ad.multiply(t, log_prob), axis=axis)), t, o)


def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False, axis: int = -1) -> Any:
    t = np.asarray(_ad._v(_arr(target)))
    o = _float_arr(output)
    if t.ndim == len(shape(o)) and t.shape[-1] == 1:
        t = np.squeeze(t, axis=-1)
    oh = one_hot(t.astype(np.int64), shape(o)[axis], axis=axis, dtype=o.dtype)
    return categorical_crossentropy(oh, o, from_logits=from_logits, axis=axis)


# ---------------------------------------------------------------------------
# shape manipulation
# ---------------------------------------------------------------------------


def reshape(x: Any, newshape: Any) -> Any:
    return _ad.reshape(_arr(x), newshape)


def expand_dims(x: Any, axis: Any) -> Any:
    return _ad.expand_dims(_arr(x), _ax(axis))


def squeeze(x: Any, axis: Axis = None) -> Any:
    return _ad.squeeze(_arr(x), _ax(axis))


def transpose(x: Any, axes: Any = None) -> Any:
    return _ad.transpose(_arr(x), axes)


def swapaxes(x: Any, axis1: int, axis2: int) -> Any:
    return _ad.swapaxes(_arr(x), axis1, axis2)


def moveaxis(x: Any, source: Any, destination: Any) -> Any:
    return _ad.moveaxis(_arr(x), source, destination)


def flip(x: Any, axis: Axis = None) -> Any:
    return _ad.flip(_arr(x), _ax(axis))


def broadcast_to(x: Any, shape: Any) -> Any:  # noqa: F811
    return _ad.broadcast_to(_arr(x), tuple(shape))


def tile(x: Any, repeats: Any) -> Any:
    return _ad.tile(_arr(x), repeats)


def stack(x: Sequence[Any], axis: int = 0) -> Any:
    items = [_arr(i) for i in x]
    return _fix(_ad.stack(items, axis=axis), *items)


def concatenate(xs: Sequence[Any], axis: Optional[int] = 0) -> Any:
    items = [_arr(i) for i in xs]
    return _fix(_ad.concatenate(items, axis=axis), *items)


def take(x: Any, indices: Any, axis: Optional[int] = None) -> Any:
    return _ad.take(_arr(x), np.asarray(_ad._v(indices)), axis=axis)


def take_along_axis(x: Any, indices: Any, axis: Optional[int] = None) -> Any:
    return _ad.take_along_axis(_arr(x), np.asarray(_ad._v(indices)), axis=axis)


def matmul(x1: Any, x2: Any) -> Any:
    a, b = _arr(x1), _arr(x2)
    return _fix(_ad.matmul(a, b), a, b)


def dot(x1: Any, x2: Any) -> Any:
    a, b = _arr(x1), _arr(x2)
    return _fix(_ad.dot(a, b), a, b)


# ---------------------------------------------------------------------------
# creation
# ---------------------------------------------------------------------------


def ones_like(x: Any, dtype: Any = None) -> np.ndarray:
    return np.ones_like(_ad._v(_arr(x)), dtype=dtype)


def zeros_like(x: Any, dtype: Any = None) -> np.ndarray:
    return np.zeros_like(_ad._v(_arr(x)), dtype=dtype)


def full_like(x: Any, fill_value: Any, dtype: Any = None) -> np.ndarray:
    return np.full_like(_ad._v(_arr(x)), _ad._v(fill_value), dtype=dtype)


def ones(shape: Any, dtype: Any = None) -> np.ndarray:  # noqa: F811
    return np.ones(shape, dtype=dtype or _FLOATX)


def zeros(shape: Any, dtype: Any = None) -> np.ndarray:  # noqa: F811
    return np.zeros(shape, dtype=dtype or _FLOATX)


def full(shape: Any, fill_value: Any, dtype: Any = None) -> np.ndarray:  # noqa: F811
    return np.full(shape, _ad._v(fill_value), dtype=dtype or _FLOATX)


def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None, sparse: bool = False) -> np.ndarray:
    """One-hot encode integer ``x``; out-of-range/negative indices give zeros."""
    if sparse:
        raise ValueError("fastdense.ops.one_hot does not support sparse=True")
    idx = np.asarray(_ad._v(x)).astype(np.int64)
    out = (idx[..., None] == np.arange(int(num_classes))).astype(dtype or _FLOATX)
    if axis != -1 and axis != out.ndim - 1:
        out = np.moveaxis(out, -1, axis)
    return out
