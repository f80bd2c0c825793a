"""Minimal reverse-mode automatic differentiation over numpy.

Custom losses and metrics passed to ``model.compile`` are ordinary Python
callables ``fn(y_true, y_pred)`` written either with numpy
(``np.mean(np.square(y_true - y_pred), axis=-1)``) or with
``fastdense.ops``.  To obtain ``d(loss)/d(y_pred)`` the prediction is wrapped
in a :class:`Tensor`, which records every operation applied to it (through
its arithmetic dunders, ``__array_ufunc__`` and ``__array_function__``), and
the recorded graph is then walked backwards by :func:`backward`.

Forward values are computed with numpy on the wrapped arrays, so they have
exactly the dtype and value numpy would produce for plain inputs.  Gradients
(cotangents) are accumulated in float64.

Public entry points: :class:`Tensor`, :func:`trace`, :func:`backward`,
:func:`value_and_grad`, :func:`loss_and_grad`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "Tensor",
    "trace",
    "is_traced",
    "backward",
    "value_and_grad",
    "loss_and_grad",
    "squeeze_or_expand_to_same_rank",
    "supported_numpy_functions",
]

ArrayLike = Any
Grad = Optional[np.ndarray]
VJP = Callable[[np.ndarray], Grad]
Link = Tuple["Tensor", VJP]
Axis = Union[None, int, Sequence[int]]

_F64 = np.float64


# ---------------------------------------------------------------------------
# Tensor node
# ---------------------------------------------------------------------------


class Tensor:
    """A traced value: an ndarray plus the operations that produced it.

    ``Tensor(x)`` creates a leaf.  Non-leaf tensors are produced by the
    operations in this module; each keeps ``(parent, vjp)`` links where
    ``vjp(cotangent_of_self)`` returns the cotangent contribution for
    ``parent`` (or ``None`` for a zero contribution).
    """

    __slots__ = ("_value", "_links")
    __array_priority__ = 1000.0
    __hash__ = None  # type: ignore[assignment]  # like ndarray (``==`` is elementwise)

    def __init__(self, value: ArrayLike, _links: Sequence[Link] = ()) -> None:
        if isinstance(value, Tensor):
            value = value._value
        self._value: np.ndarray = np.asarray(value)
        self._links: Tuple[Link, ...] = tuple(_links)

    # ----- basic attributes -------------------------------------------------
    @property
    def value(self) -> np.ndarray:
        """The forward value (a plain ndarray, not traced)."""
        return self._value

    def numpy(self) -> np.ndarray:
        return self._value

    @property
    def shape(self) -> Tuple[int, ...]:
        return self._value.shape

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def size(self) -> int:
        return int(self._value.size)

    @property
    def T(self) -> Any:
        return transpose(self)

    def __len__(self) -> int:
        return len(self._value)

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"Tensor({self._value!r})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # Converting to a plain array drops the trace (like ``.numpy()``).
        if dtype is None:
            return self._value
        return self._value.astype(dtype)

    def __float__(self) -> float:
        return float(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    # ----- methods mirroring ndarray ---------------------------------------
    def astype(self, dtype: Any, **kwargs: Any) -> Any:
        return cast(self, dtype)

    def mean(self, axis: Axis = None, dtype: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return mean(self, axis=axis, dtype=dtype, keepdims=keepdims, **kw)

    def sum(self, axis: Axis = None, dtype: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return sum_(self, axis=axis, dtype=dtype, keepdims=keepdims, **kw)

    def max(self, axis: Axis = None, keepdims: bool = False, **kw: Any) -> Any:
        return amax(self, axis=axis, keepdims=keepdims, **kw)

    def min(self, axis: Axis = None, keepdims: bool = False, **kw: Any) -> Any:
        return amin(self, axis=axis, keepdims=keepdims, **kw)

    def prod(self, axis: Axis = None, dtype: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return prod(self, axis=axis, dtype=dtype, keepdims=keepdims, **kw)

    def var(self, axis: Axis = None, dtype: Any = None, ddof: int = 0, keepdims: bool = False) -> Any:
        return var(self, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)

    def std(self, axis: Axis = None, dtype: Any = None, ddof: int = 0, keepdims: bool = False) -> Any:
        return std(self, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)

    def cumsum(self, axis: Optional[int] = None, dtype: Any = None) -> Any:
        return cumsum(self, axis=axis, dtype=dtype)

    def argmax(self, axis: Optional[int] = None, **kw: Any) -> np.ndarray:
        return np.argmax(self._value, axis=axis, **kw)

    def argmin(self, axis: Optional[int] = None, **kw: Any) -> np.ndarray:
        return np.argmin(self._value, axis=axis, **kw)

    def clip(self, min: Any = None, max: Any = None, **kw: Any) -> Any:  # noqa: A002
        return clip(self, min, max)

    def reshape(self, *shape: Any, order: str = "C") -> Any:
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        return reshape(self, shape, order=order)

    def ravel(self, order: str = "C") -> Any:
        return reshape(self, (-1,), order=order)

    def flatten(self, order: str = "C") -> Any:
        return reshape(self, (-1,), order=order)

    def squeeze(self, axis: Axis = None) -> Any:
        return squeeze(self, axis)

    def transpose(self, *axes: Any) -> Any:
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], (int, np.integer))):
            axes = axes[0]  # type: ignore[assignment]
        return transpose(self, axes if axes else None)

    def swapaxes(self, axis1: int, axis2: int) -> Any:
        return swapaxes(self, axis1, axis2)

    def dot(self, other: Any) -> Any:
        return dot(self, other)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError(
            "fastdense autodiff: in-place item assignment on a traced value is not "
            "supported; build the result with np.where / concatenation instead."
        )

    # ----- operators --------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        return getitem(self, key)

    def __add__(self, o: Any) -> Any:
        return add(self, o)

    def __radd__(self, o: Any) -> Any:
        return add(o, self)

    def __sub__(self, o: Any) -> Any:
        return subtract(self, o)

    def __rsub__(self, o: Any) -> Any:
        return subtract(o, self)

    def __mul__(self, o: Any) -> Any:
        return multiply(self, o)

    def __rmul__(self, o: Any) -> Any:
        return multiply(o, self)

    def __truediv__(self, o: Any) -> Any:
        return divide(self, o)

    def __rtruediv__(self, o: Any) -> Any:
        return divide(o, self)

    def __floordiv__(self, o: Any) -> Any:
        return _apply_ufunc(np.floor_divide, (self, o), {})

    def __rfloordiv__(self, o: Any) -> Any:
        return _apply_ufunc(np.floor_divide, (o, self), {})

    def __mod__(self, o: Any) -> Any:
        return _apply_ufunc(np.remainder, (self, o), {})

    def __rmod__(self, o: Any) -> Any:
        return _apply_ufunc(np.remainder, (o, self), {})

    def __pow__(self, o: Any) -> Any:
        return power(self, o)

    def __rpow__(self, o: Any) -> Any:
        return power(o, self)

    def __matmul__(self, o: Any) -> Any:
        return matmul(self, o)

    def __rmatmul__(self, o: Any) -> Any:
        return matmul(o, self)

    def __neg__(self) -> Any:
        return negative(self)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return absolute(self)

    # comparisons are not differentiable: they return plain boolean arrays
    def __lt__(self, o: Any) -> np.ndarray:
        return np.less(self._value, _v(o))

    def __le__(self, o: Any) -> np.ndarray:
        return np.less_equal(self._value, _v(o))

    def __gt__(self, o: Any) -> np.ndarray:
        return np.greater(self._value, _v(o))

    def __ge__(self, o: Any) -> np.ndarray:
        return np.greater_equal(self._value, _v(o))

    def __eq__(self, o: Any) -> np.ndarray:  # type: ignore[override]
        return np.equal(self._value, _v(o))

    def __ne__(self, o: Any) -> np.ndarray:  # type: ignore[override]
        return np.not_equal(self._value, _v(o))

    def __invert__(self) -> np.ndarray:
        return np.invert(self._value)

    # ----- numpy protocols --------------------------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        if out is not None and any(isinstance(o, Tensor) for o in (out if isinstance(out, tuple) else (out,))):
            raise TypeError(
                f"fastdense autodiff: np.{ufunc.__name__}(..., out=...) cannot write into a traced value."
            )
        if ufunc in _NONDIFF_UFUNCS:
            return getattr(ufunc, method)(*_unwrap_all(inputs), **_unwrap_all(kwargs))
        if out is not None:
            raise TypeError(
                f"fastdense autodiff: np.{ufunc.__name__}(..., out=...) is not supported on traced values."
            )
        if method == "__call__":
            return _apply_ufunc(ufunc, inputs, kwargs)
        if method == "reduce" and ufunc in _UFUNC_REDUCERS and len(inputs) == 1:
            axis = kwargs.pop("axis", 0)
            return _UFUNC_REDUCERS[ufunc](inputs[0], axis=axis, **kwargs)
        raise TypeError(
            f"fastdense autodiff: np.{ufunc.__name__}.{method} is not supported on traced values "
            f"(only np.add/multiply/maximum/minimum.reduce and plain ufunc calls are)."
        )

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        impl = _FUNCTIONS.get(func)
        if impl is not None:
            return impl(*args, **kwargs)
        if func in _NONDIFF_FUNCTIONS:
            return func(*_unwrap_all(args), **_unwrap_all(kwargs))
        raise TypeError(
            f"fastdense autodiff: numpy function {_func_name(func)} is not supported on traced "
            f"values, so a loss using it cannot be differentiated. Supported numpy functions: "
            f"{', '.join(supported_numpy_functions())}; plus the ufuncs "
            f"{', '.join(sorted(u.__name__ for u in _UFUNCS))}. "
            f"Alternatively use fastdense.ops."
        )


def _func_name(func: Any) -> str:
    mod = getattr(func, "__module__", None) or "numpy"
    if mod.startswith("numpy.linalg"):
        return f"np.linalg.{func.__name__}"
    return f"np.{getattr(func, '__name__', repr(func))}"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _v(x: Any) -> Any:
    return x._value if isinstance(x, Tensor) else x


def _unwrap_all(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x._value
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap_all(i) for i in x)
    if isinstance(x, dict):
        return {k: _unwrap_all(i) for k, i in x.items()}
    return x


def is_traced(x: Any) -> bool:
    return isinstance(x, Tensor)


def trace(x: ArrayLike) -> Tensor:
    """Create a leaf :class:`Tensor` whose gradient can be requested."""
    return Tensor(np.asarray(_v(x)))


def _make(value: Any, *links: Tuple[Any, VJP]) -> Any:
    """Wrap ``value`` as a Tensor if any parent is traced, else return ndarray."""
    value = np.asarray(value)
    real = tuple((p, f) for p, f in links if isinstance(p, Tensor))
    if not real or not np.issubdtype(value.dtype, np.inexact):
        return value
    return Tensor(value, real)


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=_F64)


def _unbroadcast(g: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over broadcast dimensions so that it has ``shape``."""
    g = np.asarray(g, dtype=_F64)
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if g.shape != tuple(shape):
        g = np.broadcast_to(g, shape)
    return g


def _norm_axes(axis: Axis, ndim: int) -> Tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    out = []
    for a in axis:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise np.exceptions.AxisError(a, ndim) if hasattr(np, "exceptions") else ValueError(a)
        out.append(a % ndim if ndim else 0)
    return tuple(out)


def _expand_reduced(g: np.ndarray, axes: Tuple[int, ...], keepdims: bool, ndim: int) -> np.ndarray:
    g = np.asarray(g, dtype=_F64)
    if not keepdims and ndim:
        g = np.expand_dims(g, axes) if axes else g
    return g


def _cast_result(x: Any, dtype: Any) -> Any:
    if dtype is None:
        return x
    return cast(x, dtype)


# ---------------------------------------------------------------------------
# elementwise ufuncs
# ---------------------------------------------------------------------------

# unary: d(out)/d(a) given (g, a64, out)
_UNARY_DERIVS: Dict[np.ufunc, Callable[[np.ndarray, np.ndarray, np.ndarray], Grad]] = {
    np.negative: lambda g, a, o: -g,
    np.positive: lambda g, a, o: g,
    np.square: lambda g, a, o: g * 2.0 * a,
    np.sqrt: lambda g, a, o: g * 0.5 / _f64(o),
    np.cbrt: lambda g, a, o: g / (3.0 * np.square(_f64(o))),
    np.absolute: lambda g, a, o: g * np.sign(a),
    np.fabs: lambda g, a, o: g * np.sign(a),
    np.exp: lambda g, a, o: g * _f64(o),
    np.exp2: lambda g, a, o: g * _f64(o) * math.log(2.0),
    np.expm1: lambda g, a, o: g * (_f64(o) + 1.0),
    np.log: lambda g, a, o: g / a,
    np.log2: lambda g, a, o: g / (a * math.log(2.0)),
    np.log10: lambda g, a, o: g / (a * math.log(10.0)),
    np.log1p: lambda g, a, o: g / (1.0 + a),
    np.reciprocal: lambda g, a, o: -g * np.square(_f64(o)),
    np.sin: lambda g, a, o: g * np.cos(a),
    np.cos: lambda g, a, o: -g * np.sin(a),
    np.tan: lambda g, a, o: g * (1.0 + np.square(_f64(o))),
    np.arcsin: lambda g, a, o: g / np.sqrt(1.0 - a * a),
    np.arccos: lambda g, a, o: -g / np.sqrt(1.0 - a * a),
    np.arctan: lambda g, a, o: g / (1.0 + a * a),
    np.sinh: lambda g, a, o: g * np.cosh(a),
    np.cosh: lambda g, a, o: g * np.sinh(a),
    np.tanh: lambda g, a, o: g * (1.0 - np.square(_f64(o))),
    np.arcsinh: lambda g, a, o: g / np.sqrt(a * a + 1.0),
    np.arccosh: lambda g, a, o: g / np.sqrt(a * a - 1.0),
    np.arctanh: lambda g, a, o: g / (1.0 - a * a),
    # piecewise constant: zero gradient (result stays traced)
    np.sign: lambda g, a, o: None,
    np.floor: lambda g, a, o: None,
    np.ceil: lambda g, a, o: None,
    np.rint: lambda g, a, o: None,
    np.trunc: lambda g, a, o: None,
}


def _safe_log(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, np.log(np.where(a > 0, a, 1.0)), 0.0)


def _pow_da(g: np.ndarray, a: np.ndarray, b: np.ndarray, o: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return g * b * np.power(a, b - 1.0)


# binary: (d/da, d/db) given (g, a64, b64, out)
_BINARY_DERIVS: Dict[np.ufunc, Tuple[Callable[..., Grad], Callable[..., Grad]]] = {
    np.add: (lambda g, a, b, o: g, lambda g, a, b, o: g),
    np.subtract: (lambda g, a, b, o: g, lambda g, a, b, o: -g),
    np.multiply: (lambda g, a, b, o: g * b, lambda g, a, b, o: g * a),
    np.true_divide: (lambda g, a, b, o: g / b, lambda g, a, b, o: -g * a / (b * b)),
    np.power: (_pow_da, lambda g, a, b, o: g * _f64(o) * _safe_log(a)),
    np.float_power: (_pow_da, lambda g, a, b, o: g * _f64(o) * _safe_log(a)),
    np.maximum: (lambda g, a, b, o: g * (a >= b), lambda g, a, b, o: g * (a < b)),
    np.minimum: (lambda g, a, b, o: g * (a <= b), lambda g, a, b, o: g * (a > b)),
    np.fmax: (lambda g, a, b, o: g * (a >= b), lambda g, a, b, o: g * (a < b)),
    np.fmin: (lambda g, a, b, o: g * (a <= b), lambda g, a, b, o: g * (a > b)),
    np.logaddexp: (
        lambda g, a, b, o: g * np.exp(a - _f64(o)),
        lambda g, a, b, o: g * np.exp(b - _f64(o)),
    ),
    np.hypot: (lambda g, a, b, o: g * a / _f64(o), lambda g, a, b, o: g * b / _f64(o)),
    np.arctan2: (
        lambda g, a, b, o: g * b / (a * a + b * b),
        lambda g, a, b, o: -g * a / (a * a + b * b),
    ),
    np.remainder: (lambda g, a, b, o: g, lambda g, a, b, o: -g * np.floor(a / b)),
    np.floor_divide: (lambda g, a, b, o: None, lambda g, a, b, o: None),
    np.logaddexp2: (lambda g, a, b, o: g * np.exp2(a - _f64(o)),
                    lambda g, a, b, o: g * np.exp2(b - _f64(o))),
    np.fmod: (lambda g, a, b, o: g, lambda g, a, b, o: -g * np.trunc(a / b)),
    np.copysign: (lambda g, a, b, o: g * np.sign(a) * np.sign(_f64(o)), lambda g, a, b, o: None),
}

_NONDIFF_UFUNCS = frozenset(
    [
        np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
        np.logical_and, np.logical_or, np.logical_xor, np.logical_not,
        np.isnan, np.isinf, np.isfinite, np.signbit,
        np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert,
    ]
)


def _apply_ufunc(ufunc: np.ufunc, inputs: Sequence[Any], kwargs: Dict[str, Any]) -> Any:
    kwargs = dict(kwargs)
    kwargs.pop("out", None)
    if "where" in kwargs:
        raise TypeError(f"fastdense autodiff: np.{ufunc.__name__}(..., where=...) is not supported on traced values.")
    if ufunc is np.matmul:
        if kwargs:
            raise TypeError("fastdense autodiff: np.matmul keyword arguments are not supported on traced values.")
        return matmul(*inputs)
    if ufunc in _NONDIFF_UFUNCS:
        return ufunc(*_unwrap_all(inputs), **kwargs)
    raw = [_v(x) for x in inputs]
    if ufunc in _UNARY_DERIVS and len(inputs) == 1:
        (a,) = inputs
        out = ufunc(raw[0], **kwargs)
        d = _UNARY_DERIVS[ufunc]
        av = raw[0]
        return _make(out, (a, lambda g: _none_or(d(g, _f64(av), out), np.shape(av))))
    if ufunc in _BINARY_DERIVS and len(inputs) == 2:
        a, b = inputs
        av, bv = raw
        out = ufunc(av, bv, **kwargs)
        da, db = _BINARY_DERIVS[ufunc]
        return _make(
            out,
            (a, lambda g: _none_or(da(g, _f64(av), _f64(bv), out), np.shape(av))),
            (b, lambda g: _none_or(db(g, _f64(av), _f64(bv), out), np.shape(bv))),
        )
    raise TypeError(
        f"fastdense autodiff: numpy ufunc np.{ufunc.__name__} is not supported on traced values. "
        f"Supported ufuncs: {', '.join(sorted(u.__name__ for u in _UFUNCS))}."
    )


def _none_or(g: Grad, shape: Tuple[int, ...]) -> Grad:
    if g is None:
        return None
    return _unbroadcast(g, shape)


_UFUNCS = frozenset(list(_UNARY_DERIVS) + list(_BINARY_DERIVS) + [np.matmul] + list(_NONDIFF_UFUNCS))


def add(a: Any, b: Any) -> Any:
    return _apply_ufunc(np.add, (a, b), {})


def subtract(a: Any, b: Any) -> Any:
    return _apply_ufunc(np.subtract, (a, b), {})


def multiply(a: Any, b: Any) -> Any:
    return _apply_ufunc(np.multiply, (a, b), {})


def divide(a: Any, b: Any) -> Any:
    return _apply_ufunc(np.true_divide, (a, b), {})


def power(a: Any, b: Any) -> Any:
    return _apply_ufunc(np.power, (a, b), {})


def maximum(a: Any, b: Any) -> Any:
    return _apply_ufunc(np.maximum, (a, b), {})


def minimum(a: Any, b: Any) -> Any:
    return _apply_ufunc(np.minimum, (a, b), {})


def negative(a: Any) -> Any:
    return _apply_ufunc(np.negative, (a,), {})


def absolute(a: Any) -> Any:
    return _apply_ufunc(np.absolute, (a,), {})


def unary(ufunc: np.ufunc, a: Any) -> Any:
    """Apply a supported unary ufunc (traced if ``a`` is)."""
    return _apply_ufunc(ufunc, (a,), {})


# ---------------------------------------------------------------------------
# non-elementwise primitives
# ---------------------------------------------------------------------------


def matmul(a: Any, b: Any) -> Any:
    av, bv = np.asarray(_v(a)), np.asarray(_v(b))
    if av.ndim == 0 or bv.ndim == 0:
        raise ValueError("matmul: input operands must be at least 1-D")
    out = np.matmul(av, bv)
    a2 = av[None, :] if av.ndim == 1 else av
    b2 = bv[:, None] if bv.ndim == 1 else bv

    def g2(g: np.ndarray) -> np.ndarray:
        g = _f64(g)
        if av.ndim == 1:
            g = np.expand_dims(g, -2)
        if bv.ndim == 1:
            g = np.expand_dims(g, -1)
        return g

    def ga(g: np.ndarray) -> np.ndarray:
        r = np.matmul(g2(g), np.swapaxes(_f64(b2), -1, -2))
        return _unbroadcast(r, a2.shape).reshape(av.shape)

    def gb(g: np.ndarray) -> np.ndarray:
        r = np.matmul(np.swapaxes(_f64(a2), -1, -2), g2(g))
        return _unbroadcast(r, b2.shape).reshape(bv.shape)

    return _make(out, (a, ga), (b, gb))


def dot(a: Any, b: Any, out: Any = None) -> Any:
    if out is not None:
        raise TypeError("fastdense autodiff: np.dot(..., out=...) is not supported on traced values.")
    na, nb = np.ndim(_v(a)), np.ndim(_v(b))
    if na == 0 or nb == 0:
        return multiply(a, b)
    if na <= 2 and nb <= 2:
        return matmul(a, b)
    if nb == 1:
        return matmul(a, b)
    raise TypeError(
        "fastdense autodiff: np.dot with operands of rank > 2 is not supported on traced values; use np.matmul."
    )


def sum_(
    a: Any, axis: Axis = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
    initial: Any = None, where: Any = None,
) -> Any:
    if out is not None or where is not None:
        raise TypeError("fastdense autodiff: np.sum out=/where= are not supported on traced values.")
    av = np.asarray(_v(a))
    kw: Dict[str, Any] = {} if initial is None else {"initial": initial}
    res = np.sum(av, axis=axis, dtype=dtype, keepdims=keepdims, **kw)
    axes = _norm_axes(axis, av.ndim)

    def vjp(g: np.ndarray) -> np.ndarray:
        return np.broadcast_to(_expand_reduced(g, axes, keepdims, av.ndim), av.shape)

    return _make(res, (a, vjp))


def mean(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None, keepdims: bool = False, where: Any = None) -> Any:
    if out is not None or where is not None:
        raise TypeError("fastdense autodiff: np.mean out=/where= are not supported on traced values.")
    av = np.asarray(_v(a))
    res = np.mean(av, axis=axis, dtype=dtype, keepdims=keepdims)
    axes = _norm_axes(axis, av.ndim)
    count = int(np.prod([av.shape[i] for i in axes])) if av.ndim else 1

    def vjp(g: np.ndarray) -> np.ndarray:
        return np.broadcast_to(_expand_reduced(g, axes, keepdims, av.ndim) / max(count, 1), av.shape)

    return _make(res, (a, vjp))


def _extremum(fn: Callable[..., Any], a: Any, axis: Axis, keepdims: bool, initial: Any, out: Any, where: Any) -> Any:
    if out is not None or where is not None:
        raise TypeError(f"fastdense autodiff: np.{fn.__name__} out=/where= are not supported on traced values.")
    av = np.asarray(_v(a))
    kw: Dict[str, Any] = {} if initial is None else {"initial": initial}
    res = fn(av, axis=axis, keepdims=keepdims, **kw)
    axes = _norm_axes(axis, av.ndim)

    def vjp(g: np.ndarray) -> np.ndarray:
        rk = fn(av, axis=axis, keepdims=True, **kw)
        mask = (av == rk).astype(_F64)
        cnt = mask.sum(axis=axes, keepdims=True) if av.ndim else mask
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(cnt > 0, mask / np.where(cnt > 0, cnt, 1.0), 0.0)
        return share * _expand_reduced(g, axes, keepdims, av.ndim)

    return _make(res, (a, vjp))


def amax(a: Any, axis: Axis = None, out: Any = None, keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
    return _extremum(np.max, a, axis, keepdims, initial, out, where)


def amin(a: Any, axis: Axis = None, out: Any = None, keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
    return _extremum(np.min, a, axis, keepdims, initial, out, where)


def prod(
    a: Any, axis: Axis = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
    initial: Any = None, where: Any = None,
) -> Any:
    if out is not None or where is not None or initial is not None:
        raise TypeError("fastdense autodiff: np.prod out=/where=/initial= are not supported on traced values.")
    av = np.asarray(_v(a))
    res = np.prod(av, axis=axis, dtype=dtype, keepdims=keepdims)
    axes = _norm_axes(axis, av.ndim)

    def vjp(g: np.ndarray) -> np.ndarray:
        # product of all other elements, computed without division (zeros safe)
        keep = [i for i in range(av.ndim) if i not in axes]
        perm = keep + list(axes)
        x = np.transpose(_f64(av), perm)
        lead = x.shape[: len(keep)]
        flat = x.reshape(lead + (-1,))
        ones = np.ones(lead + (1,))
        left = np.concatenate([ones, np.cumprod(flat, axis=-1)[..., :-1]], axis=-1)
        right = np.concatenate([np.cumprod(flat[..., ::-1], axis=-1)[..., :-1][..., ::-1], ones], axis=-1)
        others = (left * right).reshape(x.shape)
        inv = np.argsort(perm)
        others = np.transpose(others, inv)
        return others * _expand_reduced(g, axes, keepdims, av.ndim)

    return _make(res, (a, vjp))


def cumsum(a: Any, axis: Optional[int] = None, dtype: Any = None, out: Any = None) -> Any:
    if out is not None:
        raise TypeError("fastdense autodiff: np.cumsum(out=...) is not supported on traced values.")
    av = np.asarray(_v(a))
    res = np.cumsum(av, axis=axis, dtype=dtype)

    def vjp(g: np.ndarray) -> np.ndarray:
        g = _f64(g)
        if axis is None:
            return np.cumsum(g[::-1])[::-1].reshape(av.shape)
        return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)

    return _make(res, (a, vjp))


def cumprod(a: Any, axis: Optional[int] = None, dtype: Any = None, out: Any = None) -> Any:
    if out is not None:
        raise TypeError("fastdense autodiff: np.cumprod(out=...) is not supported on traced values.")
    av = np.asarray(_v(a))
    res = np.cumprod(av, axis=axis, dtype=dtype)

    def vjp(g: np.ndarray) -> np.ndarray:
        # y_j = x_0 ... x_j, so dL/dx_i = (x_0 ... x_{i-1}) * S_i with
        # S_i = g_i + x_{i+1} S_{i+1} (S_last = g_last): no division, so
        # zeros in x are exact (as jax.grad of jnp.cumprod).
        x = _f64(av).reshape(-1) if axis is None else np.moveaxis(_f64(av), axis, -1)
        gg = _f64(g).reshape(-1) if axis is None else np.moveaxis(_f64(g), axis, -1)
        n = x.shape[-1]
        if n == 0:
            return np.zeros(av.shape)
        before = np.concatenate([np.ones(x.shape[:-1] + (1,)),
                                 np.cumprod(x[..., :-1], axis=-1)], axis=-1)
        acc = np.empty_like(gg)
        acc[..., n - 1] = gg[..., n - 1]
        for i in range(n - 2, -1, -1):
            acc[..., i] = gg[..., i] + x[..., i + 1] * acc[..., i + 1]
        d = before * acc
        return d.reshape(av.shape) if axis is None else np.moveaxis(d, -1, axis)

    return _make(res, (a, vjp))


def pad(a: Any, pad_width: Any, mode: Any = "constant", **kw: Any) -> Any:
    """np.pad: the padded entries of the modes that copy entries of ``a``
    (edge, reflect, symmetric, wrap) take their gradients back there; the
    constant mode's are constants.  Other modes (the statistics, linear_ramp)
    are not differentiated."""
    av = np.asarray(_v(a))
    res = np.pad(av, pad_width, mode=mode, **kw)
    if mode == "constant":
        inner = tuple(slice(lo, lo + n) for (lo, _), n in
                      zip(np.broadcast_to(np.asarray(pad_width, dtype=np.int64),
                                          (av.ndim, 2)), av.shape))

        def vjp_c(g: np.ndarray) -> np.ndarray:
            return _f64(g)[inner]

        return _make(res, (a, vjp_c))
    if mode in ("edge", "reflect", "symmetric", "wrap"):
        src = np.pad(np.arange(av.size).reshape(av.shape), pad_width, mode=mode, **kw)

        def vjp_i(g: np.ndarray) -> np.ndarray:
            out = np.zeros(av.size)
            np.add.at(out, src.reshape(-1), _f64(g).reshape(-1))
            return out.reshape(av.shape)

        return _make(res, (a, vjp_i))
    if is_traced(a):
        raise TypeError(f"fastdense autodiff: np.pad(mode={mode!r}) is not differentiable here; "
                        "modes constant, edge, reflect, symmetric and wrap are.")
    return res


def einsum(subscripts: str, *operands: Any, **kw: Any) -> Any:
    """np.einsum.  Differentiable for explicit subscripts without '...' and
    without an index repeated within one operand (a diagonal): the gradient
    of operand i is the einsum of the output's gradient with the other
    operands, broadcast over the indices only operand i has (the forward sums
    them)."""
    vals = [np.asarray(_v(o)) for o in operands]
    res = np.einsum(subscripts, *vals, **kw)
    if not any(isinstance(o, Tensor) for o in operands):
        return res
    spec = str(subscripts).replace(" ", "")
    if "..." in spec:
        raise TypeError("fastdense autodiff: einsum with '...' is not differentiable here; "
                        "write the axes out.")
    if "->" in spec:
        ins, out = spec.split("->")
    else:  # (numpy's implicit output: the indices seen once, sorted)
        ins = spec
        seen = ins.replace(",", "")
        out = "".join(sorted(c for c in set(seen) if seen.count(c) == 1))
    subs = ins.split(",")
    links = []
    for i, (op, s_i) in enumerate(zip(operands, subs)):
        if not isinstance(op, Tensor):
            continue
        if len(set(s_i)) != len(s_i):
            raise TypeError(f"fastdense autodiff: einsum's operand {i} repeats an index "
                            f"({s_i!r}, a diagonal): not differentiable here.")
        others = [(subs[j], vals[j]) for j in range(len(vals)) if j != i]
        avail = set(out) | set("".join(s for s, _ in others))
        keep = "".join(c for c in s_i if c in avail)
        shape_i = vals[i].shape

        def vjp(g: np.ndarray, s_i: str = s_i, others: Any = others, keep: str = keep,
                shape_i: Tuple[int, ...] = shape_i) -> np.ndarray:
            expr = ",".join([out] + [s for s, _ in others]) + "->" + keep
            gi = np.einsum(expr, _f64(g), *[_f64(v) for _, v in others])
            size = dict(zip(s_i, shape_i))
            gi = gi.reshape([size[c] if c in keep else 1 for c in s_i])
            return np.broadcast_to(gi, shape_i)

        links.append((op, vjp))
    return _make(res, *links)


def clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, **kw: Any) -> Any:
    if out is not None:
        raise TypeError("fastdense autodiff: np.clip(out=...) is not supported on traced values.")
    if "min" in kw:
        a_min = kw.pop("min")
    if "max" in kw:
        a_max = kw.pop("max")
    if kw:
        raise TypeError(f"fastdense autodiff: np.clip keyword arguments {sorted(kw)} are not supported.")
    novalue = getattr(np, "_NoValue", None)
    if a_min is novalue:
        a_min = None
    if a_max is novalue:
        a_max = None
    av, lo, hi = _v(a), _v(a_min), _v(a_max)
    res = np.clip(av, lo, hi)
    shape = np.shape(av)

    # np.clip(a, lo, hi) == minimum(maximum(a, lo), hi)
    def masks() -> Tuple[np.ndarray, np.ndarray]:
        x = np.asarray(av)
        m1 = np.ones(np.shape(x), dtype=bool) if lo is None else (x >= lo)
        inner = x if lo is None else np.where(m1, x, lo)
        m2 = np.ones(np.shape(inner), dtype=bool) if hi is None else (inner <= hi)
        return m1, m2

    def ga(g: np.ndarray) -> np.ndarray:
        m1, m2 = masks()
        return _unbroadcast(g * (m1 & m2), shape)

    def glo(g: np.ndarray) -> np.ndarray:
        m1, m2 = masks()
        return _unbroadcast(g * (~m1 & m2), np.shape(lo))

    def ghi(g: np.ndarray) -> np.ndarray:
        _, m2 = masks()
        return _unbroadcast(g * ~m2, np.shape(hi))

    return _make(res, (a, ga), (a_min, glo), (a_max, ghi))


def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    cond = np.asarray(_v(condition))
    if x is None and y is None:
        return np.where(cond)
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    xv, yv = _v(x), _v(y)
    res = np.where(cond, xv, yv)
    return _make(
        res,
        (x, lambda g: _unbroadcast(np.where(cond, g, 0.0), np.shape(xv))),
        (y, lambda g: _unbroadcast(np.where(cond, 0.0, g), np.shape(yv))),
    )


def cast(a: Any, dtype: Any) -> Any:
    av = np.asarray(_v(a))
    res = av.astype(dtype)
    if not isinstance(a, Tensor) or not np.issubdtype(res.dtype, np.inexact):
        return res
    return _make(res, (a, lambda g: g))


def stop_gradient(a: Any) -> np.ndarray:
    return np.asarray(_v(a))


def reshape(a: Any, newshape: Any = None, order: str = "C", **kw: Any) -> Any:
    if newshape is None:
        newshape = kw.pop("shape", None)
    if "copy" in kw:
        kw.pop("copy")
    av = np.asarray(_v(a))
    res = np.reshape(av, newshape, order=order)  # type: ignore[call-overload]
    return _make(res, (a, lambda g: np.reshape(g, av.shape, order=order)))  # type: ignore[call-overload]


def ravel(a: Any, order: str = "C") -> Any:
    return reshape(a, (-1,), order=order)


def expand_dims(a: Any, axis: Any) -> Any:
    av = np.asarray(_v(a))
    res = np.expand_dims(av, axis)
    return _make(res, (a, lambda g: np.reshape(g, av.shape)))


def squeeze(a: Any, axis: Axis = None) -> Any:
    av = np.asarray(_v(a))
    res = np.squeeze(av, axis=axis)
    return _make(res, (a, lambda g: np.reshape(g, av.shape)))


def broadcast_to(a: Any, shape: Any, subok: bool = False) -> Any:
    av = np.asarray(_v(a))
    res = np.broadcast_to(av, shape)
    return _make(res, (a, lambda g: _unbroadcast(g, av.shape)))


def transpose(a: Any, axes: Any = None) -> Any:
    av = np.asarray(_v(a))
    res = np.transpose(av, axes)
    if axes is None:
        inv: Any = None
    else:
        inv = np.argsort([int(i) % max(av.ndim, 1) for i in axes])
    return _make(res, (a, lambda g: np.transpose(g, inv)))


def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    av = np.asarray(_v(a))
    return _make(np.swapaxes(av, axis1, axis2), (a, lambda g: np.swapaxes(g, axis1, axis2)))


def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    av = np.asarray(_v(a))
    return _make(np.moveaxis(av, source, destination), (a, lambda g: np.moveaxis(g, destination, source)))


def flip(a: Any, axis: Axis = None) -> Any:
    av = np.asarray(_v(a))
    return _make(np.flip(av, axis), (a, lambda g: np.flip(g, axis)))  # type: ignore[arg-type]


def _index_key(key: Any) -> Any:
    if isinstance(key, tuple):
        return tuple(_v(k) for k in key)
    return _v(key)


def getitem(a: Any, key: Any) -> Any:
    av = np.asarray(_v(a))
    key = _index_key(key)
    res = av[key]

    def vjp(g: np.ndarray) -> np.ndarray:
        out = np.zeros(av.shape, dtype=_F64)
        np.add.at(out, key, g)
        return out

    return _make(res, (a, vjp))


def take(a: Any, indices: Any, axis: Optional[int] = None, out: Any = None, mode: str = "raise") -> Any:
    if out is not None:
        raise TypeError("fastdense autodiff: np.take(out=...) is not supported on traced values.")
    if isinstance(indices, Tensor):
        indices = indices._value
    idx = np.asarray(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        idx = idx.astype(np.int64)
    if axis is None:
        return getitem(ravel(a), idx)
    nd = np.ndim(_v(a))
    ax = int(axis) % nd
    return getitem(a, (slice(None),) * ax + (idx,))


def take_along_axis(a: Any, indices: Any, axis: Optional[int]) -> Any:
    idx = np.asarray(_v(indices))
    if axis is None:
        return take(a, idx.ravel())
    av = np.asarray(_v(a))
    res = np.take_along_axis(av, idx, axis)
    ax = int(axis) % av.ndim

    def vjp(g: np.ndarray) -> np.ndarray:
        shape = np.shape(g)
        full = list(np.ix_(*[np.arange(s) if av.shape[d] != 1 or d == ax else np.zeros(s, dtype=np.intp)
                             for d, s in enumerate(shape)]))
        full[ax] = np.broadcast_to(idx, shape)
        out = np.zeros(av.shape, dtype=_F64)
        np.add.at(out, tuple(full), g)
        return out

    return _make(res, (a, vjp))


def concatenate(arrays: Sequence[Any], axis: Optional[int] = 0, out: Any = None, **kw: Any) -> Any:
    if out is not None:
        raise TypeError("fastdense autodiff: np.concatenate(out=...) is not supported on traced values.")
    arrays = list(arrays)
    if axis is None:
        arrays = [ravel(x) for x in arrays]
        axis = 0
    vals = [np.asarray(_v(x)) for x in arrays]
    res = np.concatenate(vals, axis=axis, **kw)
    ax = int(axis) % res.ndim
    bounds = np.cumsum([v.shape[ax] for v in vals])[:-1]
    links = []
    for i, x in enumerate(arrays):
        def vjp(g: np.ndarray, i: int = i) -> np.ndarray:
            return np.split(g, bounds, axis=ax)[i]
        links.append((x, vjp))
    return _make(res, *links)


def stack(arrays: Sequence[Any], axis: int = 0, out: Any = None, **kw: Any) -> Any:
    if out is not None:
        raise TypeError("fastdense autodiff: np.stack(out=...) is not supported on traced values.")
    arrays = list(arrays)
    vals = [np.asarray(_v(x)) for x in arrays]
    res = np.stack(vals, axis=axis, **kw)
    ax = int(axis) % res.ndim
    links = []
    for i, x in enumerate(arrays):
        def vjp(g: np.ndarray, i: int = i) -> np.ndarray:
            return np.take(g, i, axis=ax)
        links.append((x, vjp))
    return _make(res, *links)


def tile(a: Any, reps: Any) -> Any:
    av = np.asarray(_v(a))
    res = np.tile(av, reps)
    r = (1,) * (res.ndim - len(np.atleast_1d(reps))) + tuple(np.atleast_1d(reps))
    base = (1,) * (res.ndim - av.ndim) + av.shape

    def vjp(g: np.ndarray) -> np.ndarray:
        inter: List[int] = []
        for k, s in zip(r, base):
            inter += [k, s]
        g = np.reshape(g, inter).sum(axis=tuple(range(0, 2 * res.ndim, 2)))
        return g.reshape(av.shape)

    return _make(res, (a, vjp))


# ----- composites (differentiable through the primitives above) -------------


def var(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None, ddof: float = 0, keepdims: bool = False, **kw: Any) -> Any:
    if out is not None or kw:
        raise TypeError("fastdense autodiff: np.var out=/where=/mean= are not supported on traced values.")
    av = np.asarray(_v(a))
    axes = _norm_axes(axis, av.ndim)
    n = int(np.prod([av.shape[i] for i in axes])) if av.ndim else 1
    x = _cast_result(a, dtype)
    m = mean(x, axis=axis, keepdims=True)
    d = subtract(x, m)
    s = sum_(multiply(d, d), axis=axis, keepdims=keepdims)
    res = divide(s, max(n - ddof, 0))
    if not isinstance(res, Tensor):
        return np.var(av, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
    return res


def std(a: Any, axis: Axis = None, dtype: Any = None, out: Any = None, ddof: float = 0, keepdims: bool = False, **kw: Any) -> Any:
    return unary(np.sqrt, var(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, **kw))


def norm(x: Any, ord: Any = None, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A002
    xv = np.asarray(_v(x))
    if not isinstance(x, Tensor):
        return np.linalg.norm(xv, ord=ord, axis=axis, keepdims=keepdims)  # type: ignore[arg-type]
    vector = axis is None and xv.ndim == 1 or isinstance(axis, (int, np.integer)) or (
        isinstance(axis, (tuple, list)) and len(axis) == 1
    )
    if axis is None and xv.ndim == 2 and ord not in (None, "fro"):
        raise TypeError(f"fastdense autodiff: matrix norm ord={ord!r} is not supported on traced values.")
    if ord is None or ord == "fro" or (vector and ord == 2):
        return unary(np.sqrt, sum_(unary(np.square, x), axis=axis, keepdims=keepdims))
    if vector and ord == 1:
        return sum_(absolute(x), axis=axis, keepdims=keepdims)
    if vector and ord in (np.inf, float("inf")):
        return amax(absolute(x), axis=axis, keepdims=keepdims)
    if vector and isinstance(ord, (int, float)) and ord > 0:
        return power(sum_(power(absolute(x), ord), axis=axis, keepdims=keepdims), 1.0 / ord)
    raise TypeError(f"fastdense autodiff: norm with ord={ord!r}, axis={axis!r} is not supported on traced values.")


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    xv = np.asarray(_v(x))
    m = np.max(xv, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(xv.dtype)
    s = sum_(unary(np.exp, subtract(x, m)), axis=axis, keepdims=True)
    out = add(unary(np.log, s), m)
    if not keepdims:
        out = squeeze(out, axis=_norm_axes(axis, xv.ndim)) if xv.ndim else out
    return out


def softmax(x: Any, axis: Axis = -1) -> Any:
    xv = np.asarray(_v(x))
    m = np.max(xv, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(xv.dtype)
    e = unary(np.exp, subtract(x, m))
    return divide(e, sum_(e, axis=axis, keepdims=True))


def log_softmax(x: Any, axis: Axis = -1) -> Any:
    return subtract(x, logsumexp(x, axis=axis, keepdims=True))


def sigmoid(x: Any) -> Any:
    xv = np.asarray(_v(x))
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(xv))
        res = np.where(xv >= 0, 1 / (1 + e), e / (1 + e))
    res = res.astype(xv.dtype if xv.dtype.kind == "f" else np.float64)

    def vjp(g: np.ndarray) -> np.ndarray:
        s = _f64(res)
        return g * s * (1.0 - s)

    return _make(res, (x, vjp))


def softplus(x: Any) -> Any:
    xv = np.asarray(_v(x))
    res = np.logaddexp(np.zeros((), dtype=xv.dtype if xv.dtype.kind == "f" else np.float64), xv)

    def vjp(g: np.ndarray) -> np.ndarray:
        a = _f64(xv)
        return g * np.where(a >= 0, 1.0 / (1.0 + np.exp(-np.abs(a))), np.exp(-np.abs(a)) / (1.0 + np.exp(-np.abs(a))))

    return _make(res, (x, vjp))


def erf(x: Any) -> Any:
    xv = np.asarray(_v(x))
    res = np.vectorize(math.erf, otypes=[np.float64])(xv)
    if xv.dtype.kind == "f":
        res = res.astype(xv.dtype)
    return _make(res, (x, lambda g: g * (2.0 / math.sqrt(math.pi)) * np.exp(-np.square(_f64(xv)))))


def relu(x: Any) -> Any:
    xv = np.asarray(_v(x))
    res = np.maximum(xv, np.zeros((), dtype=xv.dtype))
    return _make(res, (x, lambda g: g * (_f64(xv) > 0)))


# ---------------------------------------------------------------------------
# numpy function dispatch tables
# ---------------------------------------------------------------------------


def _like(fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    def impl(a: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        return fn(np.asarray(_v(a)), *args, **_unwrap_all(kwargs))

    return impl


def _asarray_impl(a: Any, *args: Any, **kwargs: Any) -> np.ndarray:
    return np.asarray(_unwrap_all(a), *args, **kwargs)


def _abs_impl(a: Any, *args: Any, **kwargs: Any) -> Any:
    return _apply_ufunc(np.absolute, (a,), kwargs)


def _round_impl(a: Any, decimals: int = 0, out: Any = None) -> Any:
    av = np.asarray(_v(a))
    return _make(np.round(av, decimals), (a, lambda g: None))


_FUNCTIONS: Dict[Any, Callable[..., Any]] = {
    np.sum: sum_,
    np.mean: mean,
    np.max: amax,
    np.min: amin,
    np.prod: prod,
    np.cumsum: cumsum,
    np.cumprod: cumprod,
    np.einsum: einsum,
    np.pad: pad,
    np.clip: clip,
    np.where: where,
    np.reshape: reshape,
    np.ravel: ravel,
    np.expand_dims: expand_dims,
    np.squeeze: squeeze,
    np.broadcast_to: broadcast_to,
    np.transpose: transpose,
    np.swapaxes: swapaxes,
    np.moveaxis: moveaxis,
    np.flip: flip,
    np.concatenate: concatenate,
    np.stack: stack,
    np.tile: tile,
    np.take: take,
    np.take_along_axis: take_along_axis,
    np.dot: dot,
    np.var: var,
    np.std: std,
    np.linalg.norm: norm,
    np.round: _round_impl,
    np.ones_like: _like(np.ones_like),
    np.zeros_like: _like(np.zeros_like),
    np.full_like: _like(np.full_like),
    np.empty_like: _like(np.empty_like),
}
if getattr(np, "astype", None) is not None:
    _FUNCTIONS[np.astype] = lambda x, dtype, **kw: cast(x, dtype)
for _alias in ("amax", "amin", "around", "concat", "permute_dims", "absolute", "abs"):
    _f = getattr(np, _alias, None)
    if _f is None or isinstance(_f, np.ufunc):
        continue
    _impls: Dict[str, Callable[..., Any]] = {
        "amax": amax, "amin": amin, "around": _round_impl, "concat": concatenate,
        "permute_dims": transpose}
    _FUNCTIONS.setdefault(_f, _impls.get(_alias, _abs_impl))

_NONDIFF_FUNCTIONS = frozenset(
    f
    for f in (
        np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.all, np.any,
        np.count_nonzero, np.nonzero, np.isclose, np.allclose, np.array_equal,
        np.result_type, np.can_cast,
    )
    if f is not None
)

_UFUNC_REDUCERS: Dict[np.ufunc, Callable[..., Any]] = {
    np.add: sum_,
    np.multiply: prod,
    np.maximum: amax,
    np.minimum: amin,
}


def supported_numpy_functions() -> List[str]:
    """Names of numpy functions (non-ufunc) that work on traced values."""
    names = {_func_name(f) for f in _FUNCTIONS} | {_func_name(f) for f in _NONDIFF_FUNCTIONS}
    return sorted(names)


# ---------------------------------------------------------------------------
# backward pass and public entry points
# ---------------------------------------------------------------------------


def backward(output: Any, seed: ArrayLike = None, wrt: Sequence[Tensor] = ()) -> List[np.ndarray]:
    """Reverse-mode sweep: gradients of ``sum(output * seed)`` w.r.t. ``wrt``.

    ``seed`` is the cotangent of ``output`` (broadcast to its shape; ones when
    omitted).  Returns one float64 array per entry of ``wrt`` (zeros for
    tensors the output does not depend on).
    """
    if not isinstance(output, Tensor):
        return [np.zeros(np.shape(w), dtype=_F64) for w in wrt]
    g0 = np.ones(output.shape, dtype=_F64) if seed is None else np.array(
        np.broadcast_to(np.asarray(seed, dtype=_F64), output.shape)
    )
    # iterative post-order DFS -> topological order (parents after children)
    order: List[Tensor] = []
    visited: set = set()
    stack: List[Tuple[Tensor, bool]] = [(output, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent, _ in node._links:
            if id(parent) not in visited:
                stack.append((parent, False))
    wanted = {id(w) for w in wrt}
    grads: Dict[int, np.ndarray] = {id(output): g0}
    for node in reversed(order):
        key = id(node)
        g = grads.get(key) if key in wanted else grads.pop(key, None)
        if g is None:
            continue
        for parent, vjp in node._links:
            gp = vjp(g)
            if gp is None:
                continue
            gp = np.asarray(gp, dtype=_F64)
            if gp.shape != parent.shape:
                gp = np.reshape(np.broadcast_to(gp, parent.shape), parent.shape)
            pk = id(parent)
            prev = grads.get(pk)
            grads[pk] = gp if prev is None else prev + gp
    return [np.asarray(grads.get(id(w), np.zeros(w.shape, dtype=_F64)), dtype=_F64) for w in wrt]


def _fn_name(fn: Any) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return repr(name)


def _not_differentiable(fn: Any, out: Any) -> TypeError:
    return TypeError(
        f"fastdense: the custom loss {_fn_name(fn)} returned a value of type {type(out).__name__} "
        f"that is not connected to y_pred, so its gradient cannot be computed. Write the loss "
        f"with numpy ufuncs/functions applied directly to y_pred (e.g. np.mean(np.square(y_true - "
        f"y_pred), axis=-1)) or with fastdense.ops; do not convert y_pred with np.asarray/np.array/"
        f"float() or compute it via Python loops over scalars. Or supply the gradient yourself: "
        f"a losses.Loss subclass may define gradient(y_true, y_pred) (see losses.Loss)."
    )


def value_and_grad(
    fn: Callable[[Any, Any], Any], y_true: ArrayLike, y_pred: ArrayLike, seed: ArrayLike = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Call ``fn(y_true, y_pred)`` with ``y_pred`` traced.

    Returns ``(value, grad)`` where ``value`` is fn's output as an ndarray
    (identical to calling fn on plain arrays) and ``grad`` is
    ``d sum(value * seed) / d y_pred`` (float64, shape of ``y_pred``; ``seed``
    defaults to ones).  Raises TypeError when the output is not connected to
    ``y_pred``.
    """
    x = trace(y_pred)
    out = fn(y_true, x)
    if not isinstance(out, Tensor):
        raise _not_differentiable(fn, out)
    (g,) = backward(out, seed, [x])
    return out.value, g


def squeeze_or_expand_to_same_rank(x1: Any, x2: Any, expand_rank_1: bool = True) -> Tuple[Any, Any]:
    """Keras' rule: squeeze/expand the last dim if ranks differ by exactly one."""
    r1, r2 = np.ndim(_v(x1)), np.ndim(_v(x2))
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and np.shape(_v(x1))[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = expand_dims(x2, -1)
        else:
            x1 = squeeze(x1, -1)
    if r2 == r1 + 1 and np.shape(_v(x2))[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = expand_dims(x1, -1)
        else:
            x2 = squeeze(x2, -1)
    return x1, x2


def loss_and_grad(
    fn: Callable[[Any, Any], Any],
    y_true: ArrayLike,
    y_pred: ArrayLike,
    sample_weight: ArrayLike = None,
    *,
    dtype: Any = "float32",
    match_ranks: bool = True,
) -> Tuple[float, np.ndarray]:
    """Loss value and gradient w.r.t. ``y_pred`` with Keras' default reduction.

    Mirrors ``keras.losses.LossFunctionWrapper`` + ``reduce_weighted_values``
    with ``reduction="sum_over_batch_size"``:

    1. ``y_true`` and ``y_pred`` are converted to ``dtype`` (Keras floatx,
       float32) and, if ``match_ranks``, brought to the same rank with
       ``squeeze_or_expand_to_same_rank`` (e.g. ``y_true`` of shape ``(B,)``
       vs ``y_pred`` of shape ``(B, 1)``).
    2. ``values = fn(y_true, y_pred)`` (cast to ``dtype``).
    3. If ``sample_weight`` is given it is cast to ``dtype``, rank-matched with
       ``values`` (same rule), then, if still of lower rank than ``values``,
       given trailing unit axes so it broadcasts over the batch axis (e.g.
       ``(B,)`` weights with ``(B, k)`` values; Keras would broadcast against
       the last axis or fail there), and ``values = values * sample_weight``.
    4. If ``values`` is a scalar it is the loss; if it has shape ``(0,)`` the
       loss is ``0.0``; otherwise ``loss = sum(values) / values.size``.

    Returns ``(loss as Python float, d loss / d y_pred)`` with the gradient an
    ndarray of ``dtype`` with ``y_pred``'s shape (computed in float64).
    Raises TypeError (naming ``fn``) when fn's result is not connected to
    ``y_pred``.
    """
    yt = np.asarray(_v(y_true), dtype=dtype)
    leaf = trace(np.asarray(_v(y_pred), dtype=dtype))
    a, b = (yt, leaf)
    if match_ranks:
        a, b = squeeze_or_expand_to_same_rank(yt, leaf)
    values = fn(a, b)
    if isinstance(values, (list, tuple)) and any(isinstance(v, Tensor) for v in values):
        values = stack(values)
    if not isinstance(values, Tensor):
        raise _not_differentiable(fn, values)
    values = cast(values, dtype) if values.dtype != np.dtype(dtype) else values
    if sample_weight is not None:
        sw = np.asarray(_v(sample_weight), dtype=dtype)
        values, sw = squeeze_or_expand_to_same_rank(values, sw)
        vnd = np.ndim(_v(values))
        if 1 <= sw.ndim < vnd:
            # broadcast over the batch axis: (B,) weights for (B, k) values
            sw = sw.reshape(sw.shape + (1,) * (vnd - sw.ndim))
        values = multiply(values, sw)
    shape = np.shape(_v(values))
    if shape == (0,):
        return 0.0, np.zeros(leaf.shape, dtype=dtype)
    if shape == ():
        loss = values
    else:
        loss = divide(sum_(values), np.asarray(int(np.prod(shape)), dtype=dtype))
    (g,) = backward(loss, None, [leaf])
    return float(np.asarray(_v(loss))), g.astype(dtype)
