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
_py_slice = slice  # (the builtin: the module defines keras.ops.slice)

__all__ = [
    "abs", "absolute", "add", "all", "any", "arccos", "arcsin", "arctan", "argmax",
    "argmin", "binary_crossentropy", "broadcast_to", "cast", "categorical_crossentropy",
    "ceil", "clip", "concatenate", "convert_to_numpy", "convert_to_tensor", "cos",
    "cosh", "count_nonzero", "cumprod", "cumsum", "divide", "divide_no_nan", "dot", "einsum",
    "elu", "equal",
    "erf", "exp", "expand_dims", "expm1", "flip", "floor", "floor_divide", "full",
    "full_like", "gelu", "greater", "greater_equal", "hard_sigmoid", "is_tensor", "isfinite",
    "isinf", "isnan", "leaky_relu", "less", "less_equal", "log", "log10", "log1p", "log2",
    "log_sigmoid", "log_softmax", "logaddexp", "logical_and", "logical_not", "logical_or",
    "logical_xor", "logsumexp", "matmul", "max", "maximum", "mean", "min", "minimum", "mod",
    "moveaxis", "multiply", "ndim", "negative", "norm", "not_equal", "one_hot", "ones",
    "ones_like", "pad", "power", "prod", "reciprocal", "relu", "relu6", "reshape", "round", "selu",
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


def _ufunc2(uf: np.ufunc, x1: Any, x2: Any) -> Any:
    """A binary ufunc the autodiff differentiates, on keras.ops operands."""
    a, b = _arg(x1), _arg(x2)
    return _fix(_ad._apply_ufunc(uf, (a, b), {}), a, b)


def maximum(x1: Any, x2: Any) -> Any:
    return _binary(_ad.maximum, x1, x2)


def minimum(x1: Any, x2: Any) -> Any:
    return _binary(_ad.minimum, x1, x2)


def logaddexp(x1: Any, x2: Any) -> Any:
    return _ufunc2(np.logaddexp, x1, x2)


def mod(x1: Any, x2: Any) -> Any:
    return _ufunc2(np.remainder, x1, x2)


def floor_divide(x1: Any, x2: Any) -> Any:
    return _ufunc2(np.floor_divide, x1, x2)


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


def einsum(subscripts: str, *operands: Any, **kwargs: Any) -> Any:
    """keras.ops.einsum (int8 operands give int32, as Keras's); gradients for
    explicit subscripts without '...' or a repeated index in one operand."""
    items = [_arr(o) for o in operands]
    if items and builtins_all(np.dtype(i.dtype) == np.int8 for i in items):
        items = [_ad.cast(i, np.int32) for i in items]
    return _fix(_ad.einsum(subscripts, *items, **kwargs), *items)


def cumprod(x: Any, axis: Optional[int] = None, dtype: Any = None) -> Any:
    a = _arr(x)
    return _ad.cumprod(a, axis=axis, dtype=dtype)


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: Any = None) -> Any:
    """keras.ops.pad: np.pad's modes; ``constant_values`` only with
    mode="constant" (Keras's ValueError otherwise).  Differentiable for the
    constant, edge, reflect, symmetric and wrap modes."""
    if constant_values is not None and mode != "constant":
        raise ValueError("Argument `constant_values` can only be provided when "
                         f"`mode == 'constant'`. Received: mode={mode}")
    a = _arr(x)
    kw = {} if constant_values is None else {"constant_values": _ad._v(constant_values)}
    return _ad.pad(a, _pad_width(pad_width, len(shape(a))), mode=mode, **kw)


def _pad_width(pad_width: Any, ndim: int) -> Any:
    """Keras's pad_width forms: an int, one (before, after) pair for every
    axis, or one pair (or 1-tuple) per axis."""
    if isinstance(pad_width, (int, np.integer)):
        return ((int(pad_width), int(pad_width)),)
    pw = [list(p) if isinstance(p, (tuple, list)) else p for p in pad_width]
    if pw and isinstance(pw[0], (int, np.integer)):
        return (tuple(pw),)
    if builtins_any(len(p) != len(pw[0]) for p in pw):
        raise ValueError("`pad_width` should be a list of tuples of length 1 or 2. "
                         f"Received: pad_width={pad_width}")
    pw = [(p[0], p[0]) if len(p) == 1 else tuple(p) for p in pw]
    if len(pw) > 1 and len(pw) != ndim:
        raise ValueError("`pad_width` must have the same length as `x.shape`. Received: "
                         f"pad_width={tuple(pw)} (of length {len(pw)}) and x.shape of length "
                         f"{ndim}")
    return tuple(pw)


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


# ---------------------------------------------------------------------------
# more keras.ops: each written with the differentiable ops above (or a ufunc
# the autodiff knows), following the formulas and dtypes of Keras 3's
# backends, so custom losses and metrics that use them train as in Keras
# ---------------------------------------------------------------------------


def _float_unary(uf: np.ufunc, x: Any) -> Any:
    return _unary(uf, _float_arr(x))


def _float_binary(uf: np.ufunc, x1: Any, x2: Any) -> Any:
    """_ufunc2 with integer (or bool) array operands made floatx first."""
    a, b = (_float_arr(v) if _is_array(v) else _arg(v) for v in (x1, x2))
    return _ufunc2(uf, a, b)


def rsqrt(x: Any) -> Any:
    """1 / sqrt(x)."""
    a = _float_arr(x)
    return _fix(_ad.divide(1.0, _ad.unary(np.sqrt, a)), a)


def arcsinh(x: Any) -> Any:
    return _float_unary(np.arcsinh, x)


def arccosh(x: Any) -> Any:
    return _float_unary(np.arccosh, x)


def arctanh(x: Any) -> Any:
    return _float_unary(np.arctanh, x)


def exp2(x: Any) -> Any:
    return _float_unary(np.exp2, x)


def cbrt(x: Any) -> Any:
    return _float_unary(np.cbrt, x)


def fabs(x: Any) -> Any:
    return _float_unary(np.fabs, x)


def trunc(x: Any) -> Any:
    a = _arr(x)
    if np.dtype(a.dtype).kind in "biu":
        return a
    return _unary(np.trunc, a)


def deg2rad(x: Any) -> Any:
    a = _float_arr(x)
    return _fix(_ad.multiply(a, math.pi / 180.0), a)


def rad2deg(x: Any) -> Any:
    a = _float_arr(x)
    return _fix(_ad.multiply(a, 180.0 / math.pi), a)


def arctan2(x1: Any, x2: Any) -> Any:
    return _float_binary(np.arctan2, x1, x2)


def hypot(x1: Any, x2: Any) -> Any:
    return _float_binary(np.hypot, x1, x2)


def logaddexp2(x1: Any, x2: Any) -> Any:
    return _float_binary(np.logaddexp2, x1, x2)


def fmod(x1: Any, x2: Any) -> Any:
    return _ufunc2(np.fmod, x1, x2)


def fmax(x1: Any, x2: Any) -> Any:
    return _ufunc2(np.fmax, x1, x2)


def fmin(x1: Any, x2: Any) -> Any:
    return _ufunc2(np.fmin, x1, x2)


def signbit(x: Any) -> np.ndarray:
    return np.signbit(_ad._v(_arr(x)))


def heaviside(x1: Any, x2: Any) -> np.ndarray:
    """0 where x1 < 0, x2 where x1 == 0, 1 where x1 > 0 (no gradient)."""
    a, b = np.asarray(_ad._v(_arr(x1))), np.asarray(_ad._v(_arr(x2)))
    dt = np.result_type(a, b)
    if dt.kind in "biu":
        dt = np.dtype("float64") if dt == np.int64 else np.dtype(_FLOATX)
    return np.heaviside(a, b).astype(dt)


def isclose(x1: Any, x2: Any, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> np.ndarray:
    return np.isclose(_ad._v(_arr(x1)), _ad._v(_arr(x2)), rtol, atol, equal_nan)


def allclose(x1: Any, x2: Any, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    return bool(np.allclose(_ad._v(_arr(x1)), _ad._v(_arr(x2)), rtol, atol, equal_nan))


def amax(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    return max(x, axis=axis, keepdims=keepdims)


def amin(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    return min(x, axis=axis, keepdims=keepdims)


def ptp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """max - min along axis."""
    return subtract(max(x, axis=axis, keepdims=keepdims), min(x, axis=axis, keepdims=keepdims))


def average(x: Any, axis: Optional[int] = None, weights: Any = None) -> Any:
    """The mean of x along axis, weighted by weights (np.average's rules: 1-D
    weights along axis, or weights of x's shape)."""
    a = _float_arr(x)
    if weights is None:
        return mean(a, axis=axis)
    w = _float_arr(weights)
    nd = len(shape(a))
    if len(shape(w)) == 1 and nd > 1:
        if axis is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        ax = int(axis) % nd
        if shape(w)[0] != shape(a)[ax]:
            raise ValueError("Length of weights not compatible with specified axis.")
        w = reshape(w, [shape(w)[0] if i == ax else 1 for i in range(nd)])
        w = broadcast_to(w, shape(a))
    elif shape(w) != shape(a):
        raise TypeError("Axis must be specified when shapes of a and weights differ."
                        if axis is None else
                        "Shape of weights must be consistent with shape of a along "
                        "specified axis.")
    return divide(sum(multiply(a, w), axis=axis), sum(w, axis=axis))


def moments(x: Any, axes: Any, keepdims: bool = False, synchronized: bool = False) -> Any:
    """(mean, variance) over axes, variance as E[x^2] - E[x]^2 (Keras's formula)."""
    if synchronized:
        raise NotImplementedError("Argument synchronized=True is not supported by fastdense.")
    a = _float_arr(x)
    ax = tuple(axes) if isinstance(axes, (list, tuple)) else axes
    m = mean(a, axis=ax, keepdims=True)
    v = subtract(mean(square(a), axis=ax, keepdims=True), square(m))
    if not keepdims:
        m, v = squeeze(m, axis=ax), squeeze(v, axis=ax)
    return m, v


def normalize(x: Any, axis: int = -1, order: int = 2, epsilon: Optional[float] = None) -> Any:
    """x divided by its order-norm along axis (L2: x * min(rsqrt(sum x^2), 1/eps))."""
    if not isinstance(order, int) or not order >= 1:
        raise ValueError(f"Argument `order` must be an int >= 1. Received: order={order}")
    a = _float_arr(x)
    if len(shape(a)) == 0:
        a = expand_dims(a, 0)
    eps = _EPSILON if epsilon is None else epsilon
    if order == 2:
        inv = minimum(rsqrt(sum(square(a), axis=axis, keepdims=True)), 1.0 / eps)
        return multiply(a, inv)
    return divide(a, maximum(norm(a, ord=order, axis=axis, keepdims=True), eps))


def ravel(x: Any) -> Any:
    return reshape(x, (-1,))


def copy(x: Any) -> Any:
    a = _arr(x)
    return np.array(a, copy=True) if isinstance(a, np.ndarray) else a


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """Pieces of x along axis, as np.split cuts them."""
    a = _arr(x)
    nd = len(shape(a))
    ax = int(axis) % nd
    pieces = np.split(np.arange(shape(a)[ax]), indices_or_sections)
    out = []
    for p in pieces:
        lo = int(p[0]) if len(p) else 0
        key = tuple(_py_slice(lo, lo + len(p)) if i == ax else _py_slice(None) for i in range(nd))
        out.append(_ad.getitem(a, key))
    return out


def unstack(x: Any, num: Optional[int] = None, axis: int = 0) -> list:
    a = _arr(x)
    nd = len(shape(a))
    ax = int(axis) % nd
    n = shape(a)[ax]
    if num is not None and num != n:
        raise ValueError(f"Cannot unstack {n} values along axis {axis} into num={num}.")
    return [_ad.getitem(a, tuple(i if d == ax else _py_slice(None) for d in range(nd)))
            for i in range(n)]


def hstack(xs: Sequence[Any]) -> Any:
    items = [_arr(i) for i in xs]
    one_d = builtins_all(len(shape(i)) == 1 for i in items)
    return concatenate(items, axis=0 if one_d else 1)


def vstack(xs: Sequence[Any]) -> Any:
    items = [_arr(i) for i in xs]
    items = [reshape(i, (1, -1)) if len(shape(i)) < 2 else i for i in items]
    return concatenate(items, axis=0)


def outer(x1: Any, x2: Any) -> Any:
    return multiply(reshape(_arr(x1), (-1, 1)), reshape(_arr(x2), (1, -1)))


def vdot(x1: Any, x2: Any) -> Any:
    return sum(multiply(ravel(x1), ravel(x2)))


def _tri_mask(n: int, m: int, k: int) -> np.ndarray:
    return np.tri(n, m, k, dtype=bool)


def tril(x: Any, k: int = 0) -> Any:
    a = _arr(x)
    n, m = shape(a)[-2:]
    return where(_tri_mask(n, m, k), a, np.zeros((), dtype=a.dtype))


def triu(x: Any, k: int = 0) -> Any:
    a = _arr(x)
    n, m = shape(a)[-2:]
    return where(~_tri_mask(n, m, k - 1), a, np.zeros((), dtype=a.dtype))


def diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """The diagonal of x's axis1/axis2 planes (as np.diagonal: last axis)."""
    a = _arr(x)
    nd = len(shape(a))
    a1, a2 = int(axis1) % nd, int(axis2) % nd
    rest = [d for d in range(nd) if d not in (a1, a2)]
    t = transpose(a, rest + [a1, a2])
    n, m = shape(t)[-2:]
    i = np.arange(builtins_max(0, builtins_min(n, m - offset) if offset >= 0 else
                               builtins_min(n + offset, m)))
    rows, cols = (i, i + offset) if offset >= 0 else (i - offset, i)
    return _ad.getitem(t, (Ellipsis, rows, cols))


def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    return sum(diagonal(x, offset, axis1, axis2), axis=-1)


def diag(x: Any, k: int = 0) -> Any:
    """A 1-D x's square matrix with x on diagonal k, or a 2-D x's diagonal k."""
    a = _arr(x)
    if len(shape(a)) == 2:
        return diagonal(a, k)
    if len(shape(a)) != 1:
        raise ValueError(f"diag expects a 1-D or 2-D input. Received: x.shape={shape(a)}")
    n = shape(a)[0] + abs(k)
    r, c = np.indices((n, n))
    mask = (c - r) == k
    src = np.clip(r if k >= 0 else c, 0, builtins_max(shape(a)[0] - 1, 0))
    return where(mask, take(a, src), np.zeros((), dtype=a.dtype))


def repeat(x: Any, repeats: Any, axis: Optional[int] = None) -> Any:
    a = _arr(x)
    if axis is None:
        a, ax = ravel(a), 0
    else:
        ax = int(axis) % len(shape(a))
    idx = np.repeat(np.arange(shape(a)[ax]), np.asarray(_ad._v(repeats)))
    return take(a, idx, axis=ax)


def roll(x: Any, shift: Any, axis: Any = None) -> Any:
    a = _arr(x)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), shape(a))
    shifts = np.broadcast_to(np.asarray(shift), np.shape(axis)).ravel()
    axes = np.asarray(axis).ravel()
    for s, ax in zip(shifts, axes):
        ax = int(ax) % len(shape(a))
        a = take(a, np.roll(np.arange(shape(a)[ax]), int(s)), axis=ax)
    return a


def nan_to_num(x: Any, nan: float = 0.0, posinf: Optional[float] = None,
               neginf: Optional[float] = None) -> Any:
    """NaN -> nan, +inf -> posinf (the dtype's largest), -inf -> neginf (its most
    negative); the other entries pass (and their gradients)."""
    a = _arr(x)
    if np.dtype(a.dtype).kind not in "fc":
        return a
    v = np.asarray(_ad._v(a))
    info = np.finfo(v.dtype)
    hi = info.max if posinf is None else posinf
    lo = info.min if neginf is None else neginf
    fill = np.where(np.isnan(v), nan, np.where(v > 0, hi, lo)).astype(v.dtype)
    return where(np.isfinite(v), a, fill)


def select(condlist: Sequence[Any], choicelist: Sequence[Any], default: Any = 0) -> Any:
    """choicelist[i] where condlist[i] is the first true condition, else default."""
    if len(condlist) != len(choicelist):
        raise ValueError("condlist and choicelist must have the same length. Received: "
                         f"len(condlist)={len(condlist)}, len(choicelist)={len(choicelist)}")
    out = _arg(default)
    for c, v in zip(reversed(list(condlist)), reversed(list(choicelist))):
        out = where(np.asarray(_ad._v(c), dtype=bool), v, out)
    return out


def sort(x: Any, axis: int = -1) -> Any:
    a = _arr(x)
    idx = np.argsort(np.asarray(_ad._v(a)), axis=axis, kind="stable")
    return take_along_axis(a, idx, axis=axis)


def argsort(x: Any, axis: int = -1) -> np.ndarray:
    return np.argsort(np.asarray(_ad._v(_arr(x))), axis=axis, kind="stable").astype(np.int32)


def top_k(x: Any, k: int, sorted: bool = True) -> Tuple[Any, np.ndarray]:  # noqa: A002
    """(values, indices) of the k largest entries along the last axis, largest
    first (ties: the lower index first)."""
    a = _arr(x)
    v = np.asarray(_ad._v(a))
    if k > v.shape[-1]:
        raise ValueError(f"k={k} is larger than the last axis ({v.shape[-1]}).")
    idx = np.argsort(-v, axis=-1, kind="stable")[..., :k]
    return take_along_axis(a, idx, axis=-1), idx.astype(np.int32)


def quantile(x: Any, q: Any, axis: Axis = None, method: str = "linear",
             keepdims: bool = False) -> Any:
    """np.quantile's methods linear / lower / higher / midpoint / nearest, the
    gradient flowing to the order statistics it reads."""
    a = _float_arr(x)
    nd = len(shape(a))
    if axis is None:
        t = ravel(a)
        axes: tuple = tuple(range(nd))
    else:
        listed: Any = axis if isinstance(axis, (list, tuple)) else [axis]
        axes = tuple(int(i) % nd for i in listed)
        rest = [d for d in range(nd) if d not in axes]
        t = transpose(a, rest + list(axes))
        t = reshape(t, tuple(shape(a)[d] for d in rest) + (-1,))
    s = sort(t, axis=-1)
    n = shape(s)[-1]
    qv = np.asarray(_ad._v(q), dtype=np.float64)
    if np.any((qv < 0) | (qv > 1)):
        raise ValueError(f"Quantiles must be in the range [0, 1]. Received: q={qv}")
    pos = qv * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    if method == "lower":
        hi, frac = lo, np.zeros_like(frac)
    elif method == "higher":
        lo = np.ceil(pos).astype(np.int64)
        hi, frac = lo, np.zeros_like(frac)
    elif method == "nearest":
        lo = np.round(pos).astype(np.int64)  # (numpy's: round half to even)
        hi, frac = lo, np.zeros_like(frac)
    elif method == "midpoint":
        frac = np.where(hi > lo, 0.5, 0.0)
    elif method != "linear":
        raise ValueError("`method` must be one of 'linear', 'lower', 'higher', 'midpoint' "
                         f"or 'nearest'. Received: method={method}")
    lo_v = take(s, lo.ravel(), axis=-1)
    hi_v = take(s, hi.ravel(), axis=-1)
    f = frac.ravel().astype(np.dtype(s.dtype))
    out = add(lo_v, multiply(subtract(hi_v, lo_v), f))  # (numpy's lerp)
    out = moveaxis(out, -1, 0) if qv.ndim else squeeze(out, axis=-1)
    if qv.ndim:
        out = reshape(out, qv.shape + tuple(shape(out)[1:]))
    if keepdims:
        full = list(shape(a))
        for d in axes:
            full[d] = 1
        out = reshape(out, tuple(qv.shape) + tuple(full))
    return out


def percentile(x: Any, q: Any, axis: Axis = None, method: str = "linear",
               keepdims: bool = False) -> Any:
    return quantile(x, np.asarray(_ad._v(q), dtype=np.float64) / 100.0, axis=axis,
                    method=method, keepdims=keepdims)


def median(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    return quantile(x, 0.5, axis=axis, keepdims=keepdims)


def eye(N: int, M: Optional[int] = None, k: int = 0, dtype: Any = None) -> np.ndarray:  # noqa: N803
    return np.eye(N, M, k, dtype=dtype or _FLOATX)


def identity(n: int, dtype: Any = None) -> np.ndarray:
    return np.identity(n, dtype=dtype or _FLOATX)


def tri(N: int, M: Optional[int] = None, k: int = 0, dtype: Any = None) -> np.ndarray:  # noqa: N803
    return np.tri(N, M, k, dtype=dtype or _FLOATX)


def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None) -> np.ndarray:
    """np.arange with Keras's dtypes: int32 for ints, float32 for floats."""
    if dtype is None:
        vals = [v for v in (start, stop, step) if v is not None]
        is_float = builtins_any(isinstance(v, float) or np.dtype(np.asarray(v).dtype).kind == "f"
                                for v in vals)
        dtype = _FLOATX if is_float else "int32"
    if stop is None:
        return np.arange(start, dtype=dtype) if step is None else \
            np.arange(0, start, step, dtype=dtype)
    return np.arange(start, stop, 1 if step is None else step, dtype=dtype)


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype: Any = None, axis: int = 0) -> Any:
    fn: Any = np.linspace
    return fn(start, stop, num, endpoint=endpoint, retstep=retstep, dtype=dtype or _FLOATX,
              axis=axis)


# -- activations (keras.ops.nn)


def celu(x: Any, alpha: float = 1.0) -> Any:
    a = _float_arr(x)
    return add(maximum(a, 0.0), multiply(alpha, expm1(divide(minimum(a, 0.0), alpha))))


def hard_tanh(x: Any) -> Any:
    return clip(_float_arr(x), -1.0, 1.0)


def hard_silu(x: Any) -> Any:
    a = _float_arr(x)
    return multiply(a, hard_sigmoid(a))


hard_swish = hard_silu


def squareplus(x: Any, b: float = 4) -> Any:
    a = _float_arr(x)
    return divide(add(a, sqrt(add(power(a, 2), float(b)))), 2)


def soft_shrink(x: Any, threshold: float = 0.5) -> Any:
    a = _float_arr(x)
    return where(greater(a, threshold), subtract(a, threshold),
                 where(less(a, -threshold), add(a, threshold), np.zeros((), a.dtype)))


def tanh_shrink(x: Any) -> Any:
    a = _float_arr(x)
    return subtract(a, tanh(a))


def sparse_plus(x: Any) -> Any:
    a = _float_arr(x)
    return where(less_equal(a, -1), np.zeros((), a.dtype),
                 where(less(a, 1), multiply(0.25, square(add(a, 1))), a))


def sparse_sigmoid(x: Any) -> Any:
    a = _float_arr(x)
    return where(less_equal(a, -1), np.zeros((), a.dtype),
                 where(greater_equal(a, 1), np.ones((), a.dtype), multiply(0.5, add(a, 1))))


def glu(x: Any, axis: int = -1) -> Any:
    a = _float_arr(x)
    if shape(a)[axis] % 2 != 0:
        raise ValueError(f"axis size must be divisible by 2. Received: x.shape={shape(a)} "
                         f"with axis={axis}")
    x1, x2 = split(a, 2, axis=axis)
    return multiply(x1, sigmoid(x2))


def threshold(x: Any, threshold: float, default_value: float) -> Any:  # noqa: F811
    a = _float_arr(x)
    return where(greater(a, threshold), a, np.asarray(default_value, dtype=a.dtype))


def sparsemax(x: Any, axis: int = -1) -> Any:
    """Sparsemax (Martins & Astudillo 2016): the Euclidean projection onto the
    probability simplex, tau = (sum of the sorted logits in the support - 1) / k.
    (Keras up to 3.15 summed the support's cumulative sums instead, whose
    outputs do not sum to 1 once the support holds two logits or more; Keras
    fixed it in keras-team/keras#23469: this is the fixed formula.)"""
    a = _float_arr(x)
    s = negative(sort(negative(a), axis=axis))
    cs = cumsum(s, axis=axis)
    n = shape(a)[axis]
    rshape = [1] * len(shape(a))
    rshape[axis] = -1
    r = np.arange(1, n + 1).reshape(rshape).astype(a.dtype)
    support = np.asarray(_ad._v(subtract(s, divide(subtract(cs, 1), r)))) > 0
    k = np.sum(support, axis=axis, keepdims=True).astype(a.dtype)
    tau = divide(subtract(sum(where(support, s, np.zeros((), a.dtype)), axis=axis,
                              keepdims=True), 1), k)
    return maximum(subtract(a, tau), 0.0)


# -- more: special functions, nan-reductions, shape helpers, control flow (eager)


def erfc(x: Any) -> Any:
    a = _float_arr(x)
    return _fix(_ad.subtract(1.0, _ad.erf(a)), a)


def erfinv(x: Any) -> Any:
    """The inverse of erf on (-1, 1) (Newton steps from Giles' approximation),
    its derivative sqrt(pi) / 2 * exp(erfinv(x)^2)."""
    a = _float_arr(x)
    v = np.asarray(_ad._v(a), np.float64)
    w = -np.log((1.0 - v) * (1.0 + v))
    small = w < 5.0
    ws, wl = w - 2.5, np.sqrt(np.maximum(w, 5.0)) - 3.0
    ps = np.polyval([2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                     0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941], ws)
    pl = np.polyval([-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                     0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682], wl)
    y = np.where(small, ps, pl) * v
    erf_v = np.vectorize(math.erf, otypes=[np.float64])
    for _ in range(2):  # (Newton on erf(y) = v)
        y = y - (erf_v(y) - v) / (2.0 / math.sqrt(math.pi) * np.exp(-y * y))
    y = np.where(v == 1, np.inf, np.where(v == -1, -np.inf, y))
    res = y.astype(np.dtype(a.dtype))
    if not _ad.is_traced(a):
        return res
    return _ad._make(res, (a, lambda g: g * (math.sqrt(math.pi) / 2.0) * np.exp(y * y)))


def sinc(x: Any) -> Any:
    """sin(pi x) / (pi x), 1 at 0."""
    a = _float_arr(x)
    px = multiply(a, math.pi)
    zero = np.asarray(_ad._v(a)) == 0
    safe = where(zero, np.ones((), np.dtype(a.dtype)), px)
    return where(zero, np.ones((), np.dtype(a.dtype)), divide(sin(safe), safe))


def hard_shrink(x: Any, threshold: float = 0.5) -> Any:
    a = _float_arr(x)
    return where(greater(abs(a), threshold), a, np.zeros((), np.dtype(a.dtype)))


def ldexp(x1: Any, x2: Any) -> Any:
    """x1 * 2 ** x2 (x2 integer)."""
    a = _float_arr(x1)
    e = np.asarray(_ad._v(x2))
    if e.dtype.kind not in "biu":
        raise TypeError(f"ldexp exponent must be an integer type. Received: x2={e.dtype}")
    return multiply(a, np.ldexp(np.ones((), np.dtype(a.dtype)), e))


def diff(a: Any, n: int = 1, axis: int = -1) -> Any:
    """The n-th differences along axis."""
    x = _arr(a)
    nd = len(shape(x))
    ax = int(axis) % nd
    for _ in range(n):
        hi = tuple(_py_slice(1, None) if d == ax else _py_slice(None) for d in range(nd))
        lo = tuple(_py_slice(None, -1) if d == ax else _py_slice(None) for d in range(nd))
        x = subtract(_ad.getitem(x, hi), _ad.getitem(x, lo))
    return x


def fliplr(x: Any) -> Any:
    return flip(x, 1)


def flipud(x: Any) -> Any:
    return flip(x, 0)


def rot90(array: Any, k: int = 1, axes: Tuple[int, int] = (0, 1)) -> Any:
    a = _arr(array)
    k %= 4
    a0, a1 = axes
    for _ in range(k):
        a = swapaxes(flip(a, a1), a0, a1)
    return a


def isneginf(x: Any) -> np.ndarray:
    v = np.asarray(_ad._v(_arr(x)))
    return np.isneginf(v) if v.dtype.kind == "f" else np.zeros(v.shape, bool)


def isposinf(x: Any) -> np.ndarray:
    v = np.asarray(_ad._v(_arr(x)))
    return np.isposinf(v) if v.dtype.kind == "f" else np.zeros(v.shape, bool)


def _nan_masked(x: Any, fill: float) -> Tuple[Any, np.ndarray]:
    a = _float_arr(x)
    nan = np.isnan(np.asarray(_ad._v(a)))
    return where(nan, np.asarray(fill, np.dtype(a.dtype)), a), nan


def nansum(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    a, _ = _nan_masked(x, 0.0)
    return sum(a, axis=axis, keepdims=keepdims)


def nanmean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    a, nan = _nan_masked(x, 0.0)
    count = np.sum(~nan, axis=_ax(axis), keepdims=keepdims).astype(np.dtype(a.dtype))
    with np.errstate(invalid="ignore", divide="ignore"):
        return divide(sum(a, axis=axis, keepdims=keepdims), count)


def nanvar(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    a, nan = _nan_masked(x, 0.0)
    m = nanmean(x, axis=axis, keepdims=True)
    dev = where(nan, np.zeros((), np.dtype(a.dtype)), subtract(a, m))
    count = np.sum(~nan, axis=_ax(axis), keepdims=keepdims).astype(np.dtype(a.dtype))
    with np.errstate(invalid="ignore", divide="ignore"):
        return divide(sum(square(dev), axis=axis, keepdims=keepdims), count)


def nanstd(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    return sqrt(nanvar(x, axis=axis, keepdims=keepdims))


def nanmax(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    a, _ = _nan_masked(x, -np.inf)
    return max(a, axis=axis, keepdims=keepdims)


def nanmin(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    a, _ = _nan_masked(x, np.inf)
    return min(a, axis=axis, keepdims=keepdims)


def nanprod(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    a, _ = _nan_masked(x, 1.0)
    return prod(a, axis=axis, keepdims=keepdims)


def inner(x1: Any, x2: Any) -> Any:
    """The sum of products over the last axes (vectors: a dot product)."""
    a, b = _arr(x1), _arr(x2)
    if len(shape(a)) == 0 or len(shape(b)) == 0:
        return multiply(a, b)
    return tensordot(a, b, axes=([-1], [-1]))


def tensordot(x1: Any, x2: Any, axes: Any = 2) -> Any:
    """Sum of products over the given axes, as np.tensordot (a transpose,
    reshape and matmul each way, so it differentiates)."""
    a, b = _arr(x1), _arr(x2)
    na, nb = len(shape(a)), len(shape(b))
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(na - int(axes), na))
        ax_b = list(range(int(axes)))
    else:
        ax_a, ax_b = ([int(axes[0])] if isinstance(axes[0], (int, np.integer)) else list(axes[0]),
                      [int(axes[1])] if isinstance(axes[1], (int, np.integer)) else list(axes[1]))
    ax_a = [d % na for d in ax_a]
    ax_b = [d % nb for d in ax_b]
    free_a = [d for d in range(na) if d not in ax_a]
    free_b = [d for d in range(nb) if d not in ax_b]
    sa, sb = shape(a), shape(b)
    k = int(np.prod([sa[d] for d in ax_a])) if ax_a else 1
    left = reshape(transpose(a, free_a + ax_a), (-1, k))
    right = reshape(transpose(b, ax_b + free_b), (k, -1))
    out = matmul(left, right)
    return reshape(out, tuple(sa[d] for d in free_a) + tuple(sb[d] for d in free_b))


def kron(x1: Any, x2: Any) -> Any:
    """The Kronecker product of two 2-D arrays (or vectors)."""
    a, b = _arr(x1), _arr(x2)
    if len(shape(a)) == 1 and len(shape(b)) == 1:
        return reshape(outer(a, b), (-1,))
    (m, n), (p, q) = shape(a), shape(b)
    prod4 = multiply(reshape(a, (m, 1, n, 1)), reshape(b, (1, p, 1, q)))
    return reshape(prod4, (m * p, n * q))


def array_split(x: Any, indices_or_sections: Any, axis: int = 0) -> list:
    a = _arr(x)
    nd = len(shape(a))
    ax = int(axis) % nd
    out = []
    for p in np.array_split(np.arange(shape(a)[ax]), indices_or_sections):
        lo = int(p[0]) if len(p) else 0
        key = tuple(_py_slice(lo, lo + len(p)) if i == ax else _py_slice(None) for i in range(nd))
        out.append(_ad.getitem(a, key))
    return out


def hsplit(x: Any, indices_or_sections: Any) -> list:
    return split(x, indices_or_sections, axis=1 if len(shape(x)) > 1 else 0)


def vsplit(x: Any, indices_or_sections: Any) -> list:
    return split(x, indices_or_sections, axis=0)


def dstack(xs: Sequence[Any]) -> Any:
    items = []
    for i in xs:
        i = _arr(i)
        if len(shape(i)) == 1:
            i = reshape(i, (1, -1, 1))
        elif len(shape(i)) == 2:
            i = expand_dims(i, -1)
        items.append(i)
    return concatenate(items, axis=2)


def array(x: Any, dtype: Any = None) -> Any:
    return convert_to_tensor(x, dtype=dtype)


def get_item(x: Any, key: Any) -> Any:
    return _ad.getitem(_arr(x), key)


def slice(inputs: Any, start_indices: Sequence[int], shape: Sequence[int]) -> Any:  # noqa: A001
    """inputs[start : start + shape] along each axis."""
    a = _arr(inputs)
    key = tuple(_py_slice(int(s0), int(s0) + int(n)) for s0, n in zip(start_indices, shape))
    return _ad.getitem(a, key)


def dtype(x: Any) -> str:
    """The dtype's name, as Keras standardizes it ("float32", "int32", ...)."""
    return str(np.dtype(getattr(x, "dtype", None) or np.asarray(_ad._v(x)).dtype))


def saturate_cast(x: Any, dtype: Any) -> Any:
    """Cast with the values clipped to the target dtype's range first."""
    dt = np.dtype(dtype)
    a = _arr(x)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        a = clip(a, float(info.min), float(info.max))
    elif dt.kind == "f" and np.dtype(a.dtype).kind == "f":
        fi = np.finfo(dt)
        a = clip(a, float(fi.min), float(fi.max))
    return cast(a, dt)


def isin(x1: Any, x2: Any, assume_unique: bool = False, invert: bool = False) -> np.ndarray:
    return np.isin(np.asarray(_ad._v(x1)), np.asarray(_ad._v(x2)), assume_unique=assume_unique,
                   invert=invert)


def searchsorted(sorted_sequence: Any, values: Any, side: str = "left") -> np.ndarray:
    fn: Any = np.searchsorted
    return np.asarray(fn(np.asarray(_ad._v(sorted_sequence)), np.asarray(_ad._v(values)),
                         side=side)).astype(np.int32)


def digitize(x: Any, bins: Any) -> np.ndarray:
    return np.digitize(np.asarray(_ad._v(x)), np.asarray(_ad._v(bins))).astype(np.int32)


def in_top_k(targets: Any, predictions: Any, k: int) -> np.ndarray:
    """Whether each row's target class is among its k largest predictions
    (ties with the k-th value count as in)."""
    p = np.asarray(_ad._v(predictions))
    t = np.asarray(_ad._v(targets)).astype(np.int64).reshape(-1)
    target_values = p[np.arange(len(t)), t]
    kth = -np.sort(-p, axis=-1)[:, k - 1] if k <= p.shape[-1] else np.full(len(t), -np.inf)
    return target_values >= kth


def bincount(x: Any, weights: Any = None, minlength: int = 0, sparse: bool = False) -> np.ndarray:
    if sparse:
        raise ValueError("fastdense.ops.bincount does not support sparse=True")
    v = np.asarray(_ad._v(x))
    w = None if weights is None else np.asarray(_ad._v(weights))
    if v.ndim == 2:  # (Keras: a count per row)
        n = builtins_max(int(v.max()) + 1 if v.size else 0, minlength)
        return np.stack([np.bincount(r, None if w is None else wr, minlength=n)
                         for r, wr in zip(v, w if w is not None else [None] * len(v))])
    out = np.bincount(v, w, minlength=minlength)
    return out.astype(w.dtype) if w is not None else out.astype(np.int32)


def multi_hot(inputs: Any, num_classes: Optional[int] = None, axis: int = -1, dtype: Any = None,
              sparse: bool = False, **kwargs: Any) -> np.ndarray:
    """1 at each class an input row lists (out-of-range ids ignored)."""
    if sparse:
        raise ValueError("fastdense.ops.multi_hot does not support sparse=True")
    if num_classes is None:
        num_classes = kwargs.pop("num_tokens", None)
    if num_classes is None:
        raise ValueError("Argument `num_classes` must be set.")
    v = np.asarray(_ad._v(inputs)).astype(np.int64)
    oh = one_hot(v, num_classes, axis=-1, dtype=dtype or _FLOATX)
    reduce = -2 if v.ndim > 1 else 0
    out = np.max(oh, axis=reduce)
    return np.moveaxis(out, -1, axis) if axis != -1 else out


def meshgrid(*x: Any, indexing: str = "xy") -> list:
    fn: Any = np.meshgrid
    return list(fn(*[np.asarray(_ad._v(i)) for i in x], indexing=indexing))


def logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, base: float = 10,
             dtype: Any = None, axis: int = 0) -> np.ndarray:
    return np.logspace(start, stop, num, endpoint=endpoint, base=base,
                       dtype=dtype or _FLOATX, axis=axis)


def geomspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None,
              axis: int = 0) -> np.ndarray:
    return np.geomspace(start, stop, num, endpoint=endpoint, dtype=dtype or _FLOATX, axis=axis)


def empty(shape: Any, dtype: Any = None) -> np.ndarray:  # noqa: F811
    return np.empty(shape, dtype=dtype or _FLOATX)


def empty_like(x: Any, dtype: Any = None) -> np.ndarray:
    v = np.asarray(_ad._v(x))
    return np.empty(v.shape, dtype=dtype or v.dtype)


def real(x: Any) -> Any:
    return _arr(x)


def imag(x: Any) -> np.ndarray:
    v = np.asarray(_ad._v(x))
    return np.zeros(v.shape, v.dtype)


def conj(x: Any) -> Any:
    return _arr(x)


conjugate = conj


def layer_normalization(x: Any, gamma: Any = None, beta: Any = None, axis: Any = -1,
                        epsilon: Optional[float] = None, **kwargs: Any) -> Any:
    """(x - mean) * rsqrt(var + eps) * gamma + beta over axis, in Keras's order
    (x * inv + (-mean * inv + beta))."""
    if kwargs.pop("rms_scaling", False):
        raise NotImplementedError("rms_scaling=True is deprecated in Keras; use "
                                  "rms_normalization.")
    a = _float_arr(x)
    eps = _EPSILON if epsilon is None else epsilon
    axes = [axis] if isinstance(axis, (int, np.integer)) else sorted(axis)
    m, v = moments(a, axes=axes, keepdims=True)
    inv = rsqrt(add(v, eps))
    if gamma is not None:
        inv = multiply(inv, _arr(gamma))
    res = multiply(negative(m), inv)
    if beta is not None:
        res = add(res, _arr(beta))
    return add(multiply(a, inv), res)


def rms_normalization(x: Any, scale: Any = None, axis: Any = -1,
                      epsilon: Optional[float] = None) -> Any:
    """x * rsqrt(mean(x^2) + eps) * scale over axis."""
    a = _float_arr(x)
    eps = _EPSILON if epsilon is None else epsilon
    if len(shape(a)) == 0:
        a = expand_dims(a, 0)
    ax = tuple(sorted(axis)) if isinstance(axis, (list, tuple)) else axis
    out = multiply(a, rsqrt(add(mean(square(a), axis=ax, keepdims=True), eps)))
    return out if scale is None else multiply(out, _arr(scale))


def batch_normalization(x: Any, mean: Any, variance: Any, axis: int, offset: Any = None,
                        scale: Any = None, epsilon: float = 1e-3) -> Any:
    """x * inv + (offset - mean * inv), inv = rsqrt(variance + eps) * scale, the
    statistics along ``axis`` (Keras's JAX order)."""
    a = _float_arr(x)
    shp = [1] * len(shape(a))
    m = _arr(mean)
    shp[axis] = shape(m)[0]
    m = reshape(m, shp)
    inv = rsqrt(add(reshape(_arr(variance), shp), epsilon))
    if scale is not None:
        inv = multiply(inv, reshape(_arr(scale), shp))
    res = multiply(negative(m), inv)
    if offset is not None:
        res = add(res, reshape(_arr(offset), shp))
    return add(multiply(a, inv), res)


def cond(pred: Any, true_fn: Any, false_fn: Any) -> Any:
    """true_fn() if pred else false_fn() (eager, as every fastdense op)."""
    return true_fn() if bool(np.asarray(_ad._v(pred))) else false_fn()


def switch(index: Any, branches: Sequence[Any], *operands: Any) -> Any:
    i = int(np.clip(int(np.asarray(_ad._v(index))), 0, len(branches) - 1))
    return branches[i](*operands)


def map(f: Any, xs: Any) -> Any:  # noqa: A001
    return stack([f(x) for x in unstack(xs)])


def vectorized_map(function: Any, elements: Any) -> Any:
    return map(function, elements)


def fori_loop(lower: int, upper: int, body_fun: Any, init_val: Any) -> Any:
    val = init_val
    for i in range(int(lower), int(upper)):
        val = body_fun(i, val)
    return val


def while_loop(cond: Any, body: Any, loop_vars: Any,  # noqa: F811
               maximum_iterations: Optional[int] = None) -> Any:
    single = not isinstance(loop_vars, (list, tuple))
    state = (loop_vars,) if single else tuple(loop_vars)
    n = 0
    while bool(np.asarray(_ad._v(cond(*state)))) and (maximum_iterations is None
                                                      or n < maximum_iterations):
        out = body(*state)
        state = (out,) if single else tuple(out)
        n += 1
    return state[0] if single else type(loop_vars)(state)


def scan(f: Any, init: Any, xs: Any = None, length: Optional[int] = None, reverse: bool = False,
         unroll: int = 1) -> Tuple[Any, Any]:
    """(final carry, stacked outputs) of carry, y = f(carry, x) over xs."""
    items = list(unstack(xs)) if xs is not None else [None] * int(length or 0)
    if reverse:
        items = items[::-1]
    carry, ys = init, []
    for x in items:
        carry, y = f(carry, x)
        ys.append(y)
    if reverse:
        ys = ys[::-1]
    return carry, (stack(ys) if ys and ys[0] is not None else None)


import builtins as _builtins  # noqa: E402

builtins_max, builtins_min, builtins_any, builtins_all = (_builtins.max, _builtins.min,
                                                          _builtins.any, _builtins.all)

__all__ += [
    "rsqrt", "arcsinh", "arccosh", "arctanh", "exp2", "cbrt", "fabs", "trunc", "deg2rad",
    "rad2deg", "arctan2", "hypot", "logaddexp2", "fmod", "fmax", "fmin", "signbit", "heaviside",
    "isclose", "allclose", "amax", "amin", "ptp", "average", "moments", "normalize", "ravel",
    "copy", "split", "unstack", "hstack", "vstack", "outer", "vdot", "tril", "triu", "diagonal",
    "trace", "diag", "repeat", "roll", "nan_to_num", "select", "sort", "argsort", "top_k",
    "quantile", "percentile", "median", "eye", "identity", "tri", "arange", "linspace", "celu",
    "hard_tanh", "hard_silu", "hard_swish", "squareplus", "soft_shrink", "tanh_shrink",
    "sparse_plus", "sparse_sigmoid", "glu", "threshold", "sparsemax",
    "erfc", "erfinv", "sinc", "hard_shrink", "ldexp", "diff", "fliplr", "flipud", "rot90",
    "isneginf", "isposinf", "nansum", "nanmean", "nanvar", "nanstd", "nanmax", "nanmin",
    "nanprod", "inner", "tensordot", "kron", "array_split", "hsplit", "vsplit", "dstack",
    "array", "get_item", "slice", "dtype", "saturate_cast", "isin", "searchsorted", "digitize",
    "in_top_k", "bincount", "multi_hot", "meshgrid", "logspace", "geomspace", "empty",
    "empty_like", "real", "imag", "conj", "conjugate", "layer_normalization",
    "rms_normalization", "batch_normalization", "cond", "switch", "map", "vectorized_map",
    "fori_loop", "while_loop", "scan",
]
